/*
 * netlink.c - AF_NETLINK/NETLINK_ROUTE sockets (link, address and route
 * dumps, single-link requests, acks and errors, addressing, MSG_PEEK/TRUNC),
 * getifaddrs()/if_nameindex() over them, and the interface ioctls
 * (SIOCGIFCONF, SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFFLAGS, ...).
 *
 * Natively this runs in a new network namespace (unshare --net), whose only
 * interface is lo, down: setup brings it up, so that both sides see just
 * lo with 127.0.0.1/8 and ::1/128. Only what is the same in any such
 * namespace is checked.
 */
#define _GNU_SOURCE
#include "harness.h"
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif
#define OPER_UNKNOWN 0 /* IF_OPER_UNKNOWN */
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

/* Brings lo up if it is down (natively, in the fresh namespace). */
__attribute__((constructor)) static void lo_up(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
            perror("bringing lo up");
    }
    if (fd >= 0)
        close(fd);
}

static int nl_open(void)
{
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

/* Sends a request with a `hlen`-byte zeroed header whose first byte is
 * `family`. */
static int nl_send(int fd, int type, int flags, unsigned seq, int family, size_t hlen)
{
    char buf[NLMSG_SPACE(64)];
    memset(buf, 0, sizeof buf);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    h->nlmsg_len = NLMSG_LENGTH(hlen);
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    h->nlmsg_seq = seq;
    ((unsigned char *)NLMSG_DATA(h))[0] = family;
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    return sendto(fd, buf, h->nlmsg_len, 0, (struct sockaddr *)&k, sizeof k);
}

static char dump_buf[1 << 16];

/* Receives a whole dump into dump_buf (messages only, concatenated);
 * returns its length, or -1 on an error, with *nmsg messages before DONE. */
static int nl_dump(int fd, unsigned seq, int *nmsg, int *bad)
{
    int total = 0;
    *nmsg = 0;
    *bad = 0;
    for (;;) {
        char buf[8192];
        struct sockaddr_nl from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return -1;
        if (fl != sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0)
            (*bad)++;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq)
                (*bad)++;
            if (h->nlmsg_type == NLMSG_DONE)
                return total;
            if (h->nlmsg_type == NLMSG_ERROR || !(h->nlmsg_flags & NLM_F_MULTI))
                return -1;
            if (total + (int)NLMSG_ALIGN(h->nlmsg_len) > (int)sizeof dump_buf)
                return -1;
            memcpy(dump_buf + total, h, h->nlmsg_len);
            total += NLMSG_ALIGN(h->nlmsg_len);
            (*nmsg)++;
        }
    }
}

/* The payload of attribute `type` in the attributes after a fixed header. */
static struct rtattr *find_attr(struct nlmsghdr *h, size_t fixed, int type)
{
    int len = h->nlmsg_len - NLMSG_LENGTH(fixed);
    for (struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(fixed));
         RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == type)
            return a;
    return NULL;
}

/* Receives one datagram; returns the first message's type (or -1) and its
 * NLMSG_ERROR code in *err. */
static int nl_recv_one(int fd, char *buf, size_t len, int *err)
{
    ssize_t n = recv(fd, buf, len, 0);
    if (n < (ssize_t)NLMSG_HDRLEN)
        return -1;
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (h->nlmsg_type == NLMSG_ERROR)
        *err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    return h->nlmsg_type;
}

TEST(socket_types_and_protocols)
{
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    ASSERT_OK(fd);
    int v;
    socklen_t l = sizeof v;
    EXPECT_OK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l));
    EXPECT_EQ(v, SOCK_RAW);
    EXPECT_OK(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l));
    EXPECT_EQ(v, AF_NETLINK);
    EXPECT_OK(getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &l));
    EXPECT_EQ(v, NETLINK_ROUTE);
    close(fd);
    fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK, NETLINK_ROUTE);
    EXPECT_OK(fd);
    close(fd);
    EXPECT_ERRNO(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE), ESOCKTNOSUPPORT);
    EXPECT_ERRNO(socket(AF_NETLINK, SOCK_SEQPACKET, NETLINK_ROUTE), ESOCKTNOSUPPORT);
    EXPECT_ERRNO(socket(AF_NETLINK, SOCK_RAW, 32), EPROTONOSUPPORT);
    EXPECT_ERRNO(socket(AF_NETLINK, SOCK_RAW, -1), EPROTONOSUPPORT);
    /* Protocol 1 has never been assigned. */
    EXPECT_ERRNO(socket(AF_NETLINK, SOCK_RAW, 1), EPROTONOSUPPORT);
    int sv[2];
    EXPECT_ERRNO(socketpair(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, sv), EOPNOTSUPP);
}

TEST(bind_and_names)
{
    int a = nl_open(), b = nl_open();
    ASSERT_OK(a);
    ASSERT_OK(b);
    struct sockaddr_nl sa;
    socklen_t l = sizeof sa;
    /* Unbound: port 0. */
    EXPECT_OK(getsockname(a, (struct sockaddr *)&sa, &l));
    EXPECT_EQ(l, sizeof sa);
    EXPECT_EQ(sa.nl_family, AF_NETLINK);
    EXPECT_EQ(sa.nl_pid, 0u);
    struct sockaddr_nl any = {.nl_family = AF_NETLINK};
    ASSERT_OK(bind(a, (struct sockaddr *)&any, sizeof any));
    l = sizeof sa;
    EXPECT_OK(getsockname(a, (struct sockaddr *)&sa, &l));
    /* The first socket of a process gets its pid. */
    EXPECT_EQ(sa.nl_pid, (unsigned)getpid());
    /* Binding again to the same address is fine; to another, not. */
    EXPECT_OK(bind(a, (struct sockaddr *)&sa, sizeof sa));
    EXPECT_ERRNO(bind(a, (struct sockaddr *)&any, sizeof any), EINVAL);
    struct sockaddr_nl other = {.nl_family = AF_NETLINK, .nl_pid = 12345};
    EXPECT_ERRNO(bind(a, (struct sockaddr *)&other, sizeof other), EINVAL);
    /* A taken port. */
    struct sockaddr_nl mine = {.nl_family = AF_NETLINK, .nl_pid = getpid()};
    EXPECT_ERRNO(bind(b, (struct sockaddr *)&mine, sizeof mine), EADDRINUSE);
    EXPECT_ERRNO(bind(b, (struct sockaddr *)&any, 8), EINVAL);
    struct sockaddr_nl wrong = {.nl_family = AF_INET};
    EXPECT_ERRNO(bind(b, (struct sockaddr *)&wrong, sizeof wrong), EINVAL);
    /* Autobind on first send: a negative id once the pid is taken. */
    ASSERT_GT(nl_send(b, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, AF_UNSPEC, sizeof(struct ifinfomsg)), 0);
    l = sizeof sa;
    EXPECT_OK(getsockname(b, (struct sockaddr *)&sa, &l));
    EXPECT_LT((int)sa.nl_pid, 0);
    /* getpeername: the kernel, connected or not. */
    l = sizeof sa;
    EXPECT_OK(getpeername(b, (struct sockaddr *)&sa, &l));
    EXPECT_EQ(sa.nl_pid, 0u);
    EXPECT_OK(connect(b, (struct sockaddr *)&any, sizeof any));
    close(a);
    close(b);
    /* The port is free again. */
    a = nl_open();
    EXPECT_OK(bind(a, (struct sockaddr *)&mine, sizeof mine));
    close(a);
}

TEST(socket_options)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    int one = 1, v = 0;
    socklen_t l = sizeof v;
    EXPECT_OK(setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one));
    EXPECT_OK(setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one));
    EXPECT_OK(getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &l));
    EXPECT_EQ(v, 1);
    int group = RTNLGRP_LINK;
    EXPECT_OK(setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group));
    int zero = 0;
    EXPECT_ERRNO(setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &zero, sizeof zero), EINVAL);
    EXPECT_ERRNO(setsockopt(fd, SOL_NETLINK, 999, &one, sizeof one), ENOPROTOOPT);
    int sz = 32768;
    EXPECT_OK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz));
    l = sizeof v;
    EXPECT_OK(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l));
    EXPECT_EQ(v, 65536);
    EXPECT_OK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz));
    EXPECT_OK(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one));
    /* The joined group shows in getsockname. */
    struct sockaddr_nl sa;
    l = sizeof sa;
    EXPECT_OK(getsockname(fd, (struct sockaddr *)&sa, &l));
    EXPECT_EQ(sa.nl_groups, 1u << (RTNLGRP_LINK - 1));
    close(fd);
}

TEST(link_dump)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    ASSERT_GT(nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 7, AF_UNSPEC, sizeof(struct ifinfomsg)), 0);
    int n, bad;
    int len = nl_dump(fd, 7, &n, &bad);
    ASSERT_GE(len, 0);
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(n, 1);
    struct sockaddr_nl sa;
    socklen_t l = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &l);
    struct nlmsghdr *h = (struct nlmsghdr *)dump_buf;
    EXPECT_EQ(h->nlmsg_type, RTM_NEWLINK);
    EXPECT_EQ(h->nlmsg_pid, sa.nl_pid);
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    EXPECT_EQ(ifi->ifi_index, 1);
    EXPECT_EQ(ifi->ifi_type, ARPHRD_LOOPBACK);
    EXPECT_EQ(ifi->ifi_flags & (IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP),
              (unsigned)(IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP));
    struct rtattr *a = find_attr(h, sizeof *ifi, IFLA_IFNAME);
    ASSERT_TRUE(a != NULL);
    EXPECT_STREQ((char *)RTA_DATA(a), "lo");
    a = find_attr(h, sizeof *ifi, IFLA_MTU);
    ASSERT_TRUE(a != NULL);
    EXPECT_EQ(*(unsigned *)RTA_DATA(a), 65536u);
    a = find_attr(h, sizeof *ifi, IFLA_ADDRESS);
    ASSERT_TRUE(a != NULL);
    EXPECT_EQ(RTA_PAYLOAD(a), 6u);
    a = find_attr(h, sizeof *ifi, IFLA_OPERSTATE);
    ASSERT_TRUE(a != NULL);
    EXPECT_EQ(*(unsigned char *)RTA_DATA(a), OPER_UNKNOWN);
    EXPECT_TRUE(find_attr(h, sizeof *ifi, IFLA_STATS64) != NULL);
    EXPECT_TRUE(find_attr(h, sizeof *ifi, IFLA_TXQLEN) != NULL);
    close(fd);
}

TEST(link_by_index_and_name)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    struct {
        struct nlmsghdr h;
        struct ifinfomsg i;
        char attrs[32];
    } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.i);
    req.h.nlmsg_type = RTM_GETLINK;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.h.nlmsg_seq = 11;
    req.i.ifi_index = 1;
    ASSERT_OK(send(fd, &req, req.h.nlmsg_len, 0));
    char buf[8192];
    int err = 1;
    EXPECT_EQ(nl_recv_one(fd, buf, sizeof buf, &err), RTM_NEWLINK);
    EXPECT_EQ(((struct nlmsghdr *)buf)->nlmsg_seq, 11u);
    EXPECT_EQ(((struct nlmsghdr *)buf)->nlmsg_flags & NLM_F_MULTI, 0);
    EXPECT_EQ(nl_recv_one(fd, buf, sizeof buf, &err), NLMSG_ERROR);
    EXPECT_EQ(err, 0);
    /* By name. */
    req.i.ifi_index = 0;
    struct rtattr *a = (struct rtattr *)req.attrs;
    a->rta_type = IFLA_IFNAME;
    a->rta_len = RTA_LENGTH(3);
    memcpy(RTA_DATA(a), "lo", 3);
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.i) + RTA_SPACE(3);
    req.h.nlmsg_flags = NLM_F_REQUEST;
    ASSERT_OK(send(fd, &req, req.h.nlmsg_len, 0));
    EXPECT_EQ(nl_recv_one(fd, buf, sizeof buf, &err), RTM_NEWLINK);
    EXPECT_EQ(((struct ifinfomsg *)NLMSG_DATA((struct nlmsghdr *)buf))->ifi_index, 1);
    /* Unknown ones. */
    memcpy(RTA_DATA(a), "zz", 3);
    ASSERT_OK(send(fd, &req, req.h.nlmsg_len, 0));
    err = 0;
    EXPECT_EQ(nl_recv_one(fd, buf, sizeof buf, &err), NLMSG_ERROR);
    EXPECT_EQ(err, -ENODEV);
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.i);
    req.i.ifi_index = 99999;
    ASSERT_OK(send(fd, &req, req.h.nlmsg_len, 0));
    err = 0;
    EXPECT_EQ(nl_recv_one(fd, buf, sizeof buf, &err), NLMSG_ERROR);
    EXPECT_EQ(err, -ENODEV);
    close(fd);
}

static int count_addrs(int fd, int family, int *v4, int *v6, int *lo4, int *lo6)
{
    static unsigned seq = 100;
    seq++;
    *v4 = *v6 = *lo4 = *lo6 = 0;
    if (nl_send(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, family, sizeof(struct ifaddrmsg)) < 0)
        return -1;
    int n, bad;
    int len = nl_dump(fd, seq, &n, &bad);
    if (len < 0 || bad)
        return -1;
    struct nlmsghdr *h = (struct nlmsghdr *)dump_buf;
    for (; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type != RTM_NEWADDR)
            return -1;
        struct ifaddrmsg *ifa = NLMSG_DATA(h);
        struct rtattr *a = find_attr(h, sizeof *ifa, IFA_ADDRESS);
        if (!a)
            return -1;
        if (ifa->ifa_family == AF_INET) {
            (*v4)++;
            struct rtattr *lab = find_attr(h, sizeof *ifa, IFA_LABEL);
            struct rtattr *loc = find_attr(h, sizeof *ifa, IFA_LOCAL);
            if (ifa->ifa_index == 1 && ifa->ifa_prefixlen == 8 && ifa->ifa_scope == RT_SCOPE_HOST &&
                *(uint32_t *)RTA_DATA(a) == htonl(INADDR_LOOPBACK) && loc &&
                *(uint32_t *)RTA_DATA(loc) == htonl(INADDR_LOOPBACK) && lab &&
                strcmp(RTA_DATA(lab), "lo") == 0)
                (*lo4)++;
        } else if (ifa->ifa_family == AF_INET6) {
            (*v6)++;
            if (ifa->ifa_index == 1 && ifa->ifa_prefixlen == 128 && ifa->ifa_scope == RT_SCOPE_HOST &&
                RTA_PAYLOAD(a) == 16 && memcmp(RTA_DATA(a), &in6addr_loopback, 16) == 0)
                (*lo6)++;
        } else {
            return -1;
        }
    }
    return 0;
}

TEST(addr_dump)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    int v4, v6, lo4, lo6;
    ASSERT_OK(count_addrs(fd, AF_UNSPEC, &v4, &v6, &lo4, &lo6));
    EXPECT_EQ(v4, 1);
    EXPECT_EQ(lo4, 1);
    EXPECT_EQ(v6, 1);
    EXPECT_EQ(lo6, 1);
    ASSERT_OK(count_addrs(fd, AF_INET, &v4, &v6, &lo4, &lo6));
    EXPECT_EQ(lo4, 1);
    EXPECT_EQ(v6, 0);
    ASSERT_OK(count_addrs(fd, AF_INET6, &v4, &v6, &lo4, &lo6));
    EXPECT_EQ(v4, 0);
    EXPECT_EQ(lo6, 1);
    close(fd);
}

TEST(route_dump)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    for (int fam = 0; fam < 3; fam++) {
        int family = fam == 0 ? AF_UNSPEC : fam == 1 ? AF_INET : AF_INET6;
        ASSERT_GT(nl_send(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 20 + fam, family, sizeof(struct rtmsg)), 0);
        int n, bad;
        int len = nl_dump(fd, 20 + fam, &n, &bad);
        ASSERT_GE(len, 0);
        EXPECT_EQ(bad, 0);
        int local4 = 0, local6 = 0, wrongfam = 0;
        struct nlmsghdr *h = (struct nlmsghdr *)dump_buf;
        for (; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            EXPECT_EQ(h->nlmsg_type, RTM_NEWROUTE);
            struct rtmsg *rt = NLMSG_DATA(h);
            if (family != AF_UNSPEC && rt->rtm_family != family)
                wrongfam++;
            struct rtattr *dst = find_attr(h, sizeof *rt, RTA_DST);
            struct rtattr *oif = find_attr(h, sizeof *rt, RTA_OIF);
            struct rtattr *tab = find_attr(h, sizeof *rt, RTA_TABLE);
            if (!dst || !oif || !tab)
                continue;
            if (rt->rtm_family == AF_INET && rt->rtm_dst_len == 8 && rt->rtm_type == RTN_LOCAL &&
                rt->rtm_table == RT_TABLE_LOCAL && rt->rtm_scope == RT_SCOPE_HOST &&
                rt->rtm_protocol == RTPROT_KERNEL && *(uint32_t *)RTA_DATA(dst) == htonl(0x7f000000) &&
                *(int *)RTA_DATA(oif) == 1 && *(unsigned *)RTA_DATA(tab) == RT_TABLE_LOCAL)
                local4++;
            if (rt->rtm_family == AF_INET6 && rt->rtm_dst_len == 128 && rt->rtm_type == RTN_LOCAL &&
                memcmp(RTA_DATA(dst), &in6addr_loopback, 16) == 0 && *(int *)RTA_DATA(oif) == 1)
                local6++;
        }
        EXPECT_EQ(wrongfam, 0);
        EXPECT_EQ(local4, family != AF_INET6);
        EXPECT_EQ(local6 > 0, family != AF_INET);
    }
    close(fd);
}

TEST(errors_and_acks)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    char buf[8192];
    int err = 0;
    /* A type beyond RTM_MAX. */
    ASSERT_GT(nl_send(fd, 0x7ff0, NLM_F_REQUEST, 31, AF_UNSPEC, 16), 0);
    EXPECT_EQ(nl_recv_one(fd, buf, sizeof buf, &err), NLMSG_ERROR);
    EXPECT_EQ(err, -EOPNOTSUPP);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    struct nlmsgerr *e = NLMSG_DATA(h);
    EXPECT_EQ(h->nlmsg_seq, 31u);
    /* The error quotes the request. */
    EXPECT_EQ(e->msg.nlmsg_seq, 31u);
    EXPECT_EQ(e->msg.nlmsg_type, 0x7ff0);
    EXPECT_EQ(h->nlmsg_len, NLMSG_LENGTH(sizeof(int) + NLMSG_LENGTH(16)));
    /* A no-op with an ack: NLMSG_ERROR 0 quoting only the header. */
    ASSERT_GT(nl_send(fd, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 32, 0, 4), 0);
    err = 1;
    EXPECT_EQ(nl_recv_one(fd, buf, sizeof buf, &err), NLMSG_ERROR);
    EXPECT_EQ(err, 0);
    EXPECT_EQ(h->nlmsg_len, NLMSG_LENGTH(sizeof(struct nlmsgerr)));
    EXPECT_EQ(h->nlmsg_flags & NLM_F_CAPPED, NLM_F_CAPPED);
    /* Without NLM_F_ACK or NLM_F_REQUEST: nothing. */
    ASSERT_GT(nl_send(fd, NLMSG_NOOP, NLM_F_REQUEST, 33, 0, 4), 0);
    ASSERT_GT(nl_send(fd, RTM_GETLINK, NLM_F_DUMP, 34, 0, sizeof(struct ifinfomsg)), 0);
    EXPECT_ERRNO(recv(fd, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    /* A short header is ignored; a truncated message too. */
    EXPECT_EQ(send(fd, buf, 8, 0), 8);
    struct nlmsghdr big = {.nlmsg_len = 1000, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK};
    EXPECT_EQ(send(fd, &big, sizeof big, 0), (ssize_t)sizeof big);
    EXPECT_ERRNO(recv(fd, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    /* Out-of-band data has no meaning here. */
    EXPECT_ERRNO(recv(fd, buf, sizeof buf, MSG_OOB | MSG_DONTWAIT), EOPNOTSUPP);
    close(fd);
}

TEST(peek_trunc_and_poll)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    EXPECT_EQ(poll(&p, 1, 0), 1);
    EXPECT_EQ(p.revents, POLLOUT);
    ASSERT_GT(nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 40, AF_UNSPEC, sizeof(struct ifinfomsg)), 0);
    p.revents = 0;
    EXPECT_EQ(poll(&p, 1, 0), 1);
    EXPECT_EQ(p.revents, POLLIN | POLLOUT);
    /* glibc sizes its buffer so: MSG_PEEK|MSG_TRUNC gives the full length. */
    char small[16];
    ssize_t full = recv(fd, small, 0, MSG_PEEK | MSG_TRUNC);
    EXPECT_GT(full, 100);
    struct iovec iov = {small, sizeof small};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    EXPECT_EQ(recvmsg(fd, &m, MSG_PEEK), (ssize_t)sizeof small);
    EXPECT_EQ(m.msg_flags & MSG_TRUNC, MSG_TRUNC);
    char buf[8192];
    EXPECT_EQ(recv(fd, buf, sizeof buf, 0), full);
    /* NLMSG_DONE comes on its own. */
    EXPECT_EQ(recv(fd, buf, sizeof buf, 0), (ssize_t)NLMSG_LENGTH(sizeof(int)));
    EXPECT_EQ(((struct nlmsghdr *)buf)->nlmsg_type, NLMSG_DONE);
    /* The rest of the datagram is gone with a short read. */
    ASSERT_GT(nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 41, AF_UNSPEC, sizeof(struct ifinfomsg)), 0);
    EXPECT_EQ(recv(fd, small, sizeof small, 0), (ssize_t)sizeof small);
    EXPECT_EQ(recv(fd, buf, sizeof buf, 0), (ssize_t)NLMSG_LENGTH(sizeof(int)));
    EXPECT_ERRNO(recv(fd, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    /* read(2) and write(2) work as flagless recv/send. */
    struct {
        struct nlmsghdr h;
        struct ifinfomsg i;
    } req = {.h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 42}};
    EXPECT_EQ(write(fd, &req, sizeof req), (ssize_t)sizeof req);
    EXPECT_EQ(read(fd, buf, sizeof buf), full);
    close(fd);
}

TEST(getifaddrs_finds_lo)
{
    struct ifaddrs *ifa;
    ASSERT_OK(getifaddrs(&ifa));
    int v4 = 0, v6 = 0, packet = 0, others = 0;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (strcmp(i->ifa_name, "lo") != 0) {
            others++;
            continue;
        }
        EXPECT_EQ(i->ifa_flags & (IFF_UP | IFF_LOOPBACK), (unsigned)(IFF_UP | IFF_LOOPBACK));
        if (!i->ifa_addr)
            continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            struct sockaddr_in *s = (struct sockaddr_in *)i->ifa_addr;
            struct sockaddr_in *mask = (struct sockaddr_in *)i->ifa_netmask;
            if (s->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && mask &&
                mask->sin_addr.s_addr == htonl(0xff000000))
                v4++;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)i->ifa_addr;
            if (memcmp(&s->sin6_addr, &in6addr_loopback, 16) == 0)
                v6++;
        } else if (i->ifa_addr->sa_family == AF_PACKET) {
            packet++;
        }
    }
    freeifaddrs(ifa);
    EXPECT_EQ(v4, 1);
    EXPECT_EQ(v6, 1);
    EXPECT_EQ(packet, 1);
    EXPECT_EQ(others, 0);
}

TEST(if_nameindex_lists_lo)
{
    struct if_nameindex *ni = if_nameindex();
    ASSERT_TRUE(ni != NULL);
    int n = 0;
    for (struct if_nameindex *p = ni; p->if_index; p++, n++) {
        EXPECT_EQ(p->if_index, 1u);
        EXPECT_STREQ(p->if_name, "lo");
    }
    EXPECT_EQ(n, 1);
    if_freenameindex(ni);
    /* if_nametoindex and if_indextoname ask an AF_UNIX (or AF_INET) socket
     * with ioctls: checked once such sockets can be made. */
    int u = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (u < 0)
        return;
    close(u);
    EXPECT_EQ(if_nametoindex("lo"), 1u);
    EXPECT_EQ(if_nametoindex("nosuchif0"), 0u);
    char name[IF_NAMESIZE];
    EXPECT_TRUE(if_indextoname(1, name) != NULL);
    EXPECT_STREQ(name, "lo");
}

TEST(interface_ioctls)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    ASSERT_OK(ioctl(fd, SIOCGIFINDEX, &ifr));
    EXPECT_EQ(ifr.ifr_ifindex, 1);
    strcpy(ifr.ifr_name, "lo");
    ASSERT_OK(ioctl(fd, SIOCGIFFLAGS, &ifr));
    EXPECT_EQ(ifr.ifr_flags & (IFF_UP | IFF_LOOPBACK | IFF_RUNNING), IFF_UP | IFF_LOOPBACK | IFF_RUNNING);
    ASSERT_OK(ioctl(fd, SIOCGIFMTU, &ifr));
    EXPECT_EQ(ifr.ifr_mtu, 65536);
    ASSERT_OK(ioctl(fd, SIOCGIFHWADDR, &ifr));
    EXPECT_EQ(ifr.ifr_hwaddr.sa_family, ARPHRD_LOOPBACK);
    EXPECT_MEMEQ(ifr.ifr_hwaddr.sa_data, "\0\0\0\0\0\0", 6);
    ASSERT_OK(ioctl(fd, SIOCGIFTXQLEN, &ifr));
    EXPECT_GT(ifr.ifr_qlen, 0);
    /* An alias label names its device. */
    strcpy(ifr.ifr_name, "lo:7");
    EXPECT_OK(ioctl(fd, SIOCGIFINDEX, &ifr));
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = 1;
    ASSERT_OK(ioctl(fd, SIOCGIFNAME, &ifr));
    EXPECT_STREQ(ifr.ifr_name, "lo");
    ifr.ifr_ifindex = 4242;
    EXPECT_ERRNO(ioctl(fd, SIOCGIFNAME, &ifr), ENODEV);
    strcpy(ifr.ifr_name, "nosuchif0");
    EXPECT_ERRNO(ioctl(fd, SIOCGIFINDEX, &ifr), ENODEV);
    EXPECT_ERRNO(ioctl(fd, SIOCGIFFLAGS, &ifr), ENODEV);
    EXPECT_ERRNO(ioctl(fd, SIOCGIFMTU, &ifr), ENODEV);
    /* A name without its NUL is cut at IFNAMSIZ-1. */
    memset(ifr.ifr_name, 'x', IFNAMSIZ);
    EXPECT_ERRNO(ioctl(fd, SIOCGIFINDEX, &ifr), ENODEV);
    EXPECT_ERRNO(ioctl(fd, SIOCGIFINDEX, (void *)8), EFAULT);
    /* Addresses are AF_INET's ioctls: not a netlink socket's. */
    strcpy(ifr.ifr_name, "lo");
    EXPECT_ERRNO(ioctl(fd, SIOCGIFADDR, &ifr), ENOTTY);
    EXPECT_ERRNO(ioctl(fd, SIOCGIFNETMASK, &ifr), ENOTTY);
    int n;
    EXPECT_ERRNO(ioctl(fd, FIONREAD, &n), ENOTTY);
    close(fd);
}

TEST(ifconf)
{
    int fd = nl_open();
    ASSERT_OK(fd);
    struct ifconf ifc = {.ifc_len = 0, .ifc_buf = NULL};
    ASSERT_OK(ioctl(fd, SIOCGIFCONF, &ifc));
    /* One IPv4 address: lo's. */
    EXPECT_EQ(ifc.ifc_len, (int)sizeof(struct ifreq));
    struct ifreq reqs[4];
    memset(reqs, 0xaa, sizeof reqs);
    ifc.ifc_len = sizeof reqs;
    ifc.ifc_req = reqs;
    ASSERT_OK(ioctl(fd, SIOCGIFCONF, &ifc));
    EXPECT_EQ(ifc.ifc_len, (int)sizeof(struct ifreq));
    EXPECT_STREQ(reqs[0].ifr_name, "lo");
    struct sockaddr_in *s = (struct sockaddr_in *)&reqs[0].ifr_addr;
    EXPECT_EQ(s->sin_family, AF_INET);
    EXPECT_EQ(s->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    /* Too small a buffer: nothing. */
    ifc.ifc_len = sizeof(struct ifreq) - 1;
    ASSERT_OK(ioctl(fd, SIOCGIFCONF, &ifc));
    EXPECT_EQ(ifc.ifc_len, 0);
    ifc.ifc_len = sizeof reqs;
    ifc.ifc_buf = (void *)8;
    EXPECT_ERRNO(ioctl(fd, SIOCGIFCONF, &ifc), EFAULT);
    EXPECT_ERRNO(ioctl(fd, SIOCGIFCONF, (void *)8), EFAULT);
    close(fd);
}

TEST(interface_ioctls_on_unix_sockets)
{
    /* Linux's sock_ioctl answers the device ioctls on any socket. */
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    EXPECT_OK(ioctl(sv[0], SIOCGIFINDEX, &ifr));
    EXPECT_EQ(ifr.ifr_ifindex, 1);
    EXPECT_OK(ioctl(sv[0], SIOCGIFFLAGS, &ifr));
    EXPECT_EQ(ifr.ifr_flags & IFF_LOOPBACK, IFF_LOOPBACK);
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = 1;
    EXPECT_OK(ioctl(sv[1], SIOCGIFNAME, &ifr));
    EXPECT_STREQ(ifr.ifr_name, "lo");
    strcpy(ifr.ifr_name, "nosuchif0");
    EXPECT_ERRNO(ioctl(sv[1], SIOCGIFINDEX, &ifr), ENODEV);
    struct ifconf ifc = {.ifc_len = 0, .ifc_buf = NULL};
    EXPECT_OK(ioctl(sv[0], SIOCGIFCONF, &ifc));
    EXPECT_EQ(ifc.ifc_len, (int)sizeof(struct ifreq));
    /* Not AF_INET: no addresses by ioctl. */
    strcpy(ifr.ifr_name, "lo");
    EXPECT_ERRNO(ioctl(sv[0], SIOCGIFADDR, &ifr), ENOTTY);
    close(sv[0]);
    close(sv[1]);
}


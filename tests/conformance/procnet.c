/*
 * procnet.c - the network parts of /proc: /proc/net (dev, route, if_inet6,
 * ipv6_route, tcp, tcp6, udp, unix), /proc/sys/net, and
 * net.ipv4.ping_group_range, which gates ICMP "ping" datagram sockets
 * (Linux's ping_init_sock: the effective gid or a supplementary group must
 * be in the range; a new namespace's "1 0" allows nobody).
 *
 * Natively this runs in a new network namespace (unshare --net), whose only
 * interface is lo, down: setup brings it up, so that both sides see just
 * lo with 127.0.0.1/8 and ::1/128. Only what is the same in any such
 * namespace is checked. Run as root (it writes ping_group_range).
 */
#define _GNU_SOURCE
#include "harness.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PGR "/proc/sys/net/ipv4/ping_group_range"

/* Brings lo up if it is down (natively, in the fresh namespace). */
__attribute__((constructor)) static void lo_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
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

/* The whole text of `path` (NUL-terminated) in buf; its length or -1. */
static int slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += r;
    }
    close(fd);
    buf[n] = 0;
    return (int)n;
}

/* Writes `s` to `path` in one write: 0, or -1 with errno. */
static int put(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t r = write(fd, s, strlen(s));
    int e = errno;
    close(fd);
    errno = e;
    return r == (ssize_t)strlen(s) ? 0 : -1;
}

/* socket(family, SOCK_DGRAM, ICMP): 0 if made, else errno. */
static int ping_socket(int v6)
{
    int fd = v6 ? socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)
                : socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static char buf[65536];

TEST(ping_group_range_default_denies)
{
    ASSERT_GE(slurp(PGR, buf, sizeof buf), 0);
    EXPECT_STREQ(buf, "1\t0\n");
    /* Even root: ping sockets need the group range, not a capability. */
    EXPECT_EQ(ping_socket(0), EACCES);
    EXPECT_EQ(ping_socket(1), EACCES);
    /* Other datagram sockets are not affected. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    EXPECT_GE(fd, 0);
    if (fd >= 0)
        close(fd);
    /* Not an ICMP protocol for the family: still EPROTONOSUPPORT. */
    EXPECT_ERRNO(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6), EPROTONOSUPPORT);
    struct stat st;
    ASSERT_OK(stat(PGR, &st));
    EXPECT_EQ(st.st_mode & 07777, 0644);
    EXPECT_EQ(st.st_uid, 0);
}

TEST(ping_group_range_write)
{
    ASSERT_OK(put(PGR, "0 0"));
    ASSERT_GE(slurp(PGR, buf, sizeof buf), 0);
    EXPECT_STREQ(buf, "0\t0\n");
    EXPECT_EQ(ping_socket(0), 0);
    EXPECT_EQ(ping_socket(1), 0);
    /* high < low: back to the empty "1 0". */
    ASSERT_OK(put(PGR, "5 3"));
    slurp(PGR, buf, sizeof buf);
    EXPECT_STREQ(buf, "1\t0\n");
    EXPECT_EQ(ping_socket(0), EACCES);
    /* Out of range or malformed: EINVAL, unchanged. */
    EXPECT_ERRNO(put(PGR, "0 4294967295"), EINVAL);
    EXPECT_ERRNO(put(PGR, "-1 3"), EINVAL);
    EXPECT_ERRNO(put(PGR, "a b"), EINVAL);
    slurp(PGR, buf, sizeof buf);
    EXPECT_STREQ(buf, "1\t0\n");
    ASSERT_OK(put(PGR, "0 4294967294"));
    slurp(PGR, buf, sizeof buf);
    EXPECT_STREQ(buf, "0\t4294967294\n");
    EXPECT_EQ(ping_socket(0), 0);
    ASSERT_OK(put(PGR, "0\t2147483647\n"));
    slurp(PGR, buf, sizeof buf);
    EXPECT_STREQ(buf, "0\t2147483647\n");
    ASSERT_OK(put(PGR, "1 0"));
    slurp(PGR, buf, sizeof buf);
    EXPECT_STREQ(buf, "1\t0\n");
}

TEST(ping_socket_echo_when_allowed)
{
    ASSERT_OK(put(PGR, "0 0"));
    int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    ASSERT_GE(fd, 0);
    struct sockaddr_in to = {.sin_family = AF_INET};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct icmphdr h;
    memset(&h, 0, sizeof h);
    h.type = ICMP_ECHO;
    h.un.echo.sequence = htons(7);
    EXPECT_EQ(sendto(fd, &h, sizeof h, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)sizeof h);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    EXPECT_EQ(poll(&p, 1, 5000), 1);
    struct icmphdr r;
    memset(&r, 0xff, sizeof r);
    EXPECT_EQ(recv(fd, &r, sizeof r, MSG_DONTWAIT), (ssize_t)sizeof r);
    EXPECT_EQ(r.type, ICMP_ECHOREPLY);
    EXPECT_EQ(ntohs(r.un.echo.sequence), 7);
    close(fd);
    put(PGR, "1 0");
}

/* In a child with effective gid 100 and supplementary group 50: the codes
 * of ping_socket(0) under ranges "100 100", "50 60", "0 0", packed. */
static int child_groups(void)
{
    gid_t g = 50;
    if (setgroups(1, &g) != 0 || setresgid(100, 100, 100) != 0)
        return 255;
    int r = 0;
    put(PGR, "100 100");
    r |= ping_socket(0) == 0 ? 1 : 0;
    put(PGR, "50 60");
    r |= ping_socket(0) == 0 ? 2 : 0;
    put(PGR, "0 0");
    r |= ping_socket(0) == EACCES ? 4 : 0;
    put(PGR, "1 0");
    /* A user without CAP_NET_ADMIN may not write it. */
    if (setresuid(1000, 1000, 1000) != 0)
        return 254;
    r |= open(PGR, O_WRONLY) < 0 && errno == EACCES ? 8 : 0;
    r |= open(PGR, O_RDONLY) >= 0 ? 16 : 0;
    return r;
}

TEST(ping_group_range_egid_and_groups)
{
    pid_t p = fork();
    ASSERT_GE(p, 0);
    if (p == 0)
        _exit(child_groups());
    int st;
    ASSERT_EQ(waitpid(p, &st, 0), p);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 31);
    put(PGR, "1 0");
}

TEST(proc_net_is_self_net)
{
    char l[64];
    ssize_t n = readlink("/proc/net", l, sizeof l - 1);
    ASSERT_GT(n, 0);
    l[n] = 0;
    EXPECT_STREQ(l, "self/net");
    static char other[65536];
    ASSERT_GE(slurp("/proc/self/net/route", buf, sizeof buf), 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/net/route", getpid());
    ASSERT_GE(slurp(path, other, sizeof other), 0);
    EXPECT_STREQ(buf, other);
    struct stat st;
    ASSERT_OK(stat("/proc/net", &st));
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_OK(access("/proc/net/dev", R_OK));
    EXPECT_ERRNO(access("/proc/net/nosuchfile", F_OK), ENOENT);
}

TEST(proc_net_dev)
{
    ASSERT_GT(slurp("/proc/net/dev", buf, sizeof buf), 0);
    const char *head =
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
        "packets errs drop fifo colls carrier compressed\n";
    EXPECT_EQ(strncmp(buf, head, strlen(head)), 0);
    char *lo = strstr(buf, "\n    lo: ");
    ASSERT_TRUE(lo != NULL);
    /* 16 counters after the name. */
    unsigned long long v[16];
    int n = sscanf(lo + 9, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
                   &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
    EXPECT_EQ(n, 16);
    /* Nothing but lo in the namespace. */
    EXPECT_EQ(strchr(lo + 1, '\n')[1], 0);
}

TEST(proc_net_route_and_v6)
{
    /* lo's routes are all in the local table: route lists only the header,
     * padded to 127 columns. */
    ASSERT_GT(slurp("/proc/net/route", buf, sizeof buf), 0);
    char want[256];
    snprintf(want, sizeof want, "%-127s\n",
             "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT");
    EXPECT_STREQ(buf, want);
    ASSERT_GT(slurp("/proc/net/if_inet6", buf, sizeof buf), 0);
    EXPECT_STREQ(buf, "00000000000000000000000000000001 01 80 10 80       lo\n");
    ASSERT_GT(slurp("/proc/net/ipv6_route", buf, sizeof buf), 0);
    EXPECT_TRUE(strstr(buf, "00000000000000000000000000000001 80 00000000000000000000000000000000 00 "
                            "00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n") != NULL);
    ASSERT_GT(slurp("/proc/net/unix", buf, sizeof buf), 0);
    EXPECT_EQ(strncmp(buf, "Num       RefCount Protocol Flags    Type St Inode Path\n", 55), 0);
}

/* The line of `file` whose local/remote/state columns contain `key`. */
static int has_sock(const char *file, const char *key)
{
    if (slurp(file, buf, sizeof buf) < 0)
        return 0;
    return strstr(buf, key) != NULL;
}

TEST(proc_net_sockets)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ASSERT_OK(bind(l, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(listen(l, 5));
    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(8081)};
    ASSERT_OK(bind(l6, (struct sockaddr *)&a6, sizeof a6));
    ASSERT_OK(listen(l6, 5));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_port = htons(5353)};
    ASSERT_OK(bind(u, (struct sockaddr *)&ua, sizeof ua));

    ASSERT_GT(slurp("/proc/net/tcp", buf, sizeof buf), 0);
    char want[256];
    snprintf(want, sizeof want, "%-149s\n",
             "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode");
    EXPECT_EQ(strncmp(buf, want, strlen(want)), 0);
    EXPECT_TRUE(has_sock("/proc/net/tcp", ": 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "));
    EXPECT_TRUE(has_sock("/proc/net/tcp6", ": 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A "));
    EXPECT_FALSE(has_sock("/proc/net/tcp", ":1F91 "));
    ASSERT_GT(slurp("/proc/net/tcp6", buf, sizeof buf), 0);
    EXPECT_EQ(strncmp(buf, "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n", 140), 0);
    EXPECT_TRUE(has_sock("/proc/net/udp", ": 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0 "));
    ASSERT_GT(slurp("/proc/net/udp", buf, sizeof buf), 0);
    snprintf(want, sizeof want, "%-127s\n",
             "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops");
    EXPECT_EQ(strncmp(buf, want, strlen(want)), 0);

    /* A connection: both ends established. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_OK(connect(c, (struct sockaddr *)&a, sizeof a));
    int s = accept(l, NULL, NULL);
    ASSERT_GE(s, 0);
    struct sockaddr_in ca;
    socklen_t cl = sizeof ca;
    ASSERT_OK(getsockname(c, (struct sockaddr *)&ca, &cl));
    char k1[64], k2[64];
    snprintf(k1, sizeof k1, ": 0100007F:%04X 0100007F:1F90 01 ", ntohs(ca.sin_port));
    snprintf(k2, sizeof k2, ": 0100007F:1F90 0100007F:%04X 01 ", ntohs(ca.sin_port));
    EXPECT_TRUE(has_sock("/proc/net/tcp", k1));
    EXPECT_TRUE(has_sock("/proc/net/tcp", k2));
    close(c);
    close(s);
    close(l);
    close(l6);
    close(u);
    EXPECT_FALSE(has_sock("/proc/net/tcp", ":1F90 00000000:0000 0A"));
}

TEST(proc_sys_net)
{
    struct {
        const char *path, *want;
    } cases[] = {
        {"/proc/sys/net/core/somaxconn", "4096\n"},
        {"/proc/sys/net/core/rmem_default", "212992\n"},
        {"/proc/sys/net/core/wmem_default", "212992\n"},
        {"/proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n"},
        {"/proc/sys/net/ipv4/tcp_keepalive_time", "7200\n"},
        {"/proc/sys/net/ipv4/tcp_keepalive_intvl", "75\n"},
        {"/proc/sys/net/ipv4/tcp_keepalive_probes", "9\n"},
        {"/proc/sys/net/ipv4/tcp_fin_timeout", "60\n"},
        {"/proc/sys/net/ipv4/tcp_syncookies", "1\n"},
        {"/proc/sys/net/ipv4/ip_unprivileged_port_start", "1024\n"},
        {"/proc/sys/net/ipv6/conf/all/disable_ipv6", "0\n"},
        {"/proc/sys/net/ipv6/conf/lo/disable_ipv6", "0\n"},
        {"/proc/sys/net/ipv6/bindv6only", "0\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (slurp(cases[i].path, buf, sizeof buf) < 0) {
            printf("FAIL proc_sys_net: %s: %s\n", cases[i].path, strerror(errno));
            harness_current_failed = 1;
            continue;
        }
        if (strcmp(buf, cases[i].want) != 0) {
            printf("FAIL proc_sys_net: %s: got %s", cases[i].path, buf);
            harness_current_failed = 1;
        }
    }
    /* tcp_rmem/tcp_wmem: min and default are Linux's, the max depends on memory. */
    unsigned a, b, c;
    ASSERT_GT(slurp("/proc/sys/net/ipv4/tcp_rmem", buf, sizeof buf), 0);
    EXPECT_EQ(sscanf(buf, "%u\t%u\t%u", &a, &b, &c), 3);
    EXPECT_EQ(a, 4096);
    EXPECT_EQ(b, 131072);
    ASSERT_GT(slurp("/proc/sys/net/ipv4/tcp_wmem", buf, sizeof buf), 0);
    EXPECT_EQ(sscanf(buf, "%u\t%u\t%u", &a, &b, &c), 3);
    EXPECT_EQ(a, 4096);
    EXPECT_EQ(b, 16384);
}

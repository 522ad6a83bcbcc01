/*
 * inet.c - AF_INET / AF_INET6 sockets over the loopback (127.0.0.1, ::1):
 * TCP and UDP, the socket calls and their errors as Linux gives them.
 *
 * Ports are ephemeral (bind to port 0, read back with getsockname) and are
 * never printed: the output is the same on every host.
 */
#define _GNU_SOURCE
#include "harness.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif

static volatile sig_atomic_t got_pipe;

static void on_pipe(int sig)
{
    (void)sig;
    got_pipe++;
}

static short revents(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 0) < 0)
        return -1;
    return p.revents;
}

/* Waits up to 2 s for any of events on fd; returns revents (0 on timeout). */
static short wait_for(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 2000) < 0)
        return -1;
    return p.revents;
}

static struct sockaddr_in lo4(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static struct sockaddr_in6 lo6(uint16_t port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    a.sin6_addr = in6addr_loopback;
    return a;
}

/* The port a socket is bound to (0 on error). */
static uint16_t port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* A TCP listener on 127.0.0.1 (or ::1) at an ephemeral port; -1 on error. */
static int listener(int family, int backlog)
{
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int r;
    if (family == AF_INET) {
        struct sockaddr_in a = lo4(0);
        r = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in6 a = lo6(0);
        r = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (r < 0 || listen(fd, backlog) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Connects a new blocking socket to the loopback port; -1 on error. */
static int connect_to(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int r;
    if (family == AF_INET) {
        struct sockaddr_in a = lo4(port);
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in6 a = lo6(port);
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (r < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* A connected TCP pair over the loopback: c (client), s (accepted). */
static int tcp_pair(int family, int *c, int *s)
{
    int l = listener(family, 4);
    if (l < 0)
        return -1;
    *c = connect_to(family, port_of(l));
    if (*c < 0) {
        close(l);
        return -1;
    }
    *s = accept(l, NULL, NULL);
    close(l);
    if (*s < 0) {
        close(*c);
        return -1;
    }
    return 0;
}

/* A UDP socket bound to 127.0.0.1 (or ::1) at an ephemeral port. */
static int udp_bound(int family)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    int r;
    if (family == AF_INET) {
        struct sockaddr_in a = lo4(0);
        r = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in6 a = lo6(0);
        r = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (r < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int geti(int fd, int level, int opt)
{
    int v = -12345;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, opt, &v, &len) < 0)
        return -1000 - errno;
    if (len != sizeof v)
        return -2000;
    return v;
}

static int seti(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof v);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The ephemeral port range (the host's, else Linux's default). */
static void port_range(int *lo, int *hi)
{
    *lo = 32768;
    *hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        int a, b;
        if (fscanf(f, "%d %d", &a, &b) == 2) {
            *lo = a;
            *hi = b;
        }
        fclose(f);
    }
}

/* ------------------------------------------------------------ socket(2) */

TEST(socket_create_errors)
{
    EXPECT_ERRNO(socket(12345, SOCK_STREAM, 0), EAFNOSUPPORT);
    EXPECT_ERRNO(socket(AF_INET, SOCK_STREAM | 0x100, 0), EINVAL);
    EXPECT_ERRNO(socket(AF_INET, 11, 0), EINVAL);
    EXPECT_ERRNO(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    EXPECT_ERRNO(socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
    EXPECT_ERRNO(socket(AF_INET6, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    EXPECT_ERRNO(socket(AF_INET, SOCK_STREAM, -1), EINVAL);
    EXPECT_ERRNO(socket(AF_INET, SOCK_STREAM, 1000), EINVAL);
}

TEST(socket_create_ok_and_flags)
{
    int fds[4] = {
        socket(AF_INET, SOCK_STREAM, IPPROTO_TCP),
        socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP),
        socket(AF_INET6, SOCK_STREAM, 0),
        socket(AF_INET6, SOCK_DGRAM, 0),
    };
    for (int i = 0; i < 4; i++) {
        EXPECT_GE(fds[i], 0);
        EXPECT_EQ(fcntl(fds[i], F_GETFL) & O_NONBLOCK, 0);
        EXPECT_EQ(fcntl(fds[i], F_GETFD), 0);
        close(fds[i]);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFL) & (O_NONBLOCK | O_ACCMODE), O_NONBLOCK | O_RDWR);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    close(fd);
}

TEST(socket_type_domain_protocol)
{
    struct {
        int family, type, proto;
    } c[] = {
        {AF_INET, SOCK_STREAM, IPPROTO_TCP},
        {AF_INET, SOCK_DGRAM, IPPROTO_UDP},
        {AF_INET6, SOCK_STREAM, IPPROTO_TCP},
        {AF_INET6, SOCK_DGRAM, IPPROTO_UDP},
    };
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) {
        int fd = socket(c[i].family, c[i].type, 0);
        ASSERT_GE(fd, 0);
        EXPECT_EQ(geti(fd, SOL_SOCKET, SO_TYPE), c[i].type);
        EXPECT_EQ(geti(fd, SOL_SOCKET, SO_DOMAIN), c[i].family);
        EXPECT_EQ(geti(fd, SOL_SOCKET, SO_PROTOCOL), c[i].proto);
        EXPECT_EQ(geti(fd, SOL_SOCKET, SO_ERROR), 0);
        EXPECT_EQ(geti(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
        close(fd);
    }
}

/* ------------------------------------------------------------ bind */

TEST(bind_port_zero_gets_ephemeral_port)
{
    int lo, hi;
    port_range(&lo, &hi);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    /* Unbound: 0.0.0.0:0. */
    memset(&a, 0xff, sizeof a);
    EXPECT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
    EXPECT_EQ(len, sizeof a);
    EXPECT_EQ(a.sin_family, AF_INET);
    EXPECT_EQ(a.sin_port, 0);
    EXPECT_EQ(a.sin_addr.s_addr, htonl(INADDR_ANY));
    struct sockaddr_in b = lo4(0);
    ASSERT_OK(bind(fd, (struct sockaddr *)&b, sizeof b));
    len = sizeof a;
    EXPECT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
    EXPECT_EQ(len, sizeof a);
    EXPECT_EQ(a.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    EXPECT_GE(ntohs(a.sin_port), lo);
    EXPECT_LE(ntohs(a.sin_port), hi);
    close(fd);

    /* UDP and IPv6 too. */
    fd = udp_bound(AF_INET);
    ASSERT_GE(fd, 0);
    EXPECT_GE(port_of(fd), lo);
    EXPECT_LE(port_of(fd), hi);
    close(fd);
    fd = udp_bound(AF_INET6);
    ASSERT_GE(fd, 0);
    struct sockaddr_in6 a6;
    len = sizeof a6;
    EXPECT_OK(getsockname(fd, (struct sockaddr *)&a6, &len));
    EXPECT_EQ(len, sizeof a6);
    EXPECT_EQ(a6.sin6_family, AF_INET6);
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&a6.sin6_addr));
    EXPECT_GE(ntohs(a6.sin6_port), lo);
    EXPECT_LE(ntohs(a6.sin6_port), hi);
    close(fd);
}

TEST(bind_errors)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in a = lo4(0);
    /* Too short an address. */
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)&a, sizeof a - 1), EINVAL);
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)&a, 0), EINVAL);
    /* A bad pointer. */
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)8, sizeof a), EFAULT);
    /* An AF_INET6 address on an AF_INET socket. */
    struct sockaddr_in6 a6 = lo6(0);
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)&a6, sizeof a6), EAFNOSUPPORT);
    /* An address that is not local. */
    struct sockaddr_in far = lo4(0);
    far.sin_addr.s_addr = htonl(0x01020304);
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)&far, sizeof far), EADDRNOTAVAIL);
    /* Bound once: a second bind is EINVAL. */
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)&a, sizeof a), EINVAL);
    /* The same port from another socket: EADDRINUSE. */
    struct sockaddr_in same = lo4(port_of(fd));
    int fd2 = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd2, 0);
    EXPECT_ERRNO(bind(fd2, (struct sockaddr *)&same, sizeof same), EADDRINUSE);
    close(fd2);
    close(fd);

    /* IPv4 address on an IPv6 socket, short IPv6 address. */
    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)&a, sizeof a), EINVAL);
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)&a6, sizeof a6 - 5), EINVAL);
    close(fd);
}

TEST(bind_af_unspec_any_is_accepted_on_inet)
{
    /* Linux accepts AF_UNSPEC with INADDR_ANY on AF_INET (compatibility). */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_UNSPEC};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    EXPECT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    EXPECT_NE(port_of(fd), 0);
    close(fd);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_ERRNO(bind(fd, (struct sockaddr *)&a, sizeof a), EAFNOSUPPORT);
    close(fd);
}

TEST(bind_reuseaddr)
{
    /* Both with SO_REUSEADDR but one listening: still EADDRINUSE. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(l, 0);
    EXPECT_EQ(geti(l, SOL_SOCKET, SO_REUSEADDR), 0);
    EXPECT_OK(seti(l, SOL_SOCKET, SO_REUSEADDR, 1));
    EXPECT_EQ(geti(l, SOL_SOCKET, SO_REUSEADDR), 1);
    struct sockaddr_in a = lo4(0);
    ASSERT_OK(bind(l, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(listen(l, 4));
    uint16_t port = port_of(l);
    a = lo4(port);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(b, 0);
    EXPECT_OK(seti(b, SOL_SOCKET, SO_REUSEADDR, 1));
    EXPECT_ERRNO(bind(b, (struct sockaddr *)&a, sizeof a), EADDRINUSE);
    close(b);

    /* The server closes first: its end lingers (FIN_WAIT/TIME_WAIT) on the
     * port. Without SO_REUSEADDR the port is busy, with it it binds. */
    int c = connect_to(AF_INET, port);
    ASSERT_GE(c, 0);
    int s = accept(l, NULL, NULL);
    ASSERT_GE(s, 0);
    close(l);
    close(s);
    char buf[4];
    EXPECT_EQ(wait_for(c, POLLIN) & POLLIN, POLLIN);
    EXPECT_EQ(read(c, buf, sizeof buf), 0);
    close(c);
    b = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(b, 0);
    EXPECT_ERRNO(bind(b, (struct sockaddr *)&a, sizeof a), EADDRINUSE);
    EXPECT_OK(seti(b, SOL_SOCKET, SO_REUSEADDR, 1));
    EXPECT_OK(bind(b, (struct sockaddr *)&a, sizeof a));
    EXPECT_OK(listen(b, 1));
    close(b);
}

/* ------------------------------------------------------------ listen, accept */

TEST(listen_errors_and_autobind)
{
    /* listen on an unbound stream socket binds it to an ephemeral port. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    EXPECT_OK(listen(fd, 1));
    EXPECT_NE(port_of(fd), 0);
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
    /* listen again (a new backlog) is fine. */
    EXPECT_OK(listen(fd, 5));
    close(fd);
    /* UDP cannot listen or accept. */
    fd = udp_bound(AF_INET);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(listen(fd, 1), EOPNOTSUPP);
    EXPECT_ERRNO(accept(fd, NULL, NULL), EOPNOTSUPP);
    close(fd);
    /* A connected stream socket cannot listen. */
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    EXPECT_ERRNO(listen(c, 1), EINVAL);
    EXPECT_ERRNO(listen(s, 1), EINVAL);
    close(c);
    close(s);
}

TEST(accept_errors)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(accept(fd, NULL, NULL), EINVAL);
    struct sockaddr_in a = lo4(0);
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    EXPECT_ERRNO(accept(fd, NULL, NULL), EINVAL);
    close(fd);

    int l = listener(AF_INET, 4);
    ASSERT_GE(l, 0);
    EXPECT_ERRNO(accept4(l, NULL, NULL, 0x1), EINVAL);
    /* Empty and nonblocking: EAGAIN (by flag or by O_NONBLOCK). */
    int fl = fcntl(l, F_GETFL);
    ASSERT_OK(fcntl(l, F_SETFL, fl | O_NONBLOCK));
    EXPECT_ERRNO(accept(l, NULL, NULL), EAGAIN);
    close(l);
}

TEST(accept4_flags_and_peer_address)
{
    int l = listener(AF_INET, 4);
    ASSERT_GE(l, 0);
    /* The listener is nonblocking; what accept returns is not. */
    ASSERT_OK(fcntl(l, F_SETFL, O_NONBLOCK));
    int c = connect_to(AF_INET, port_of(l));
    ASSERT_GE(c, 0);
    int c2 = connect_to(AF_INET, port_of(l));
    ASSERT_GE(c2, 0);
    EXPECT_EQ(wait_for(l, POLLIN), POLLIN);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int s = accept4(l, (struct sockaddr *)&peer, &len, 0);
    ASSERT_GE(s, 0);
    EXPECT_EQ(len, sizeof peer);
    EXPECT_EQ(peer.sin_family, AF_INET);
    EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    EXPECT_EQ(ntohs(peer.sin_port), port_of(c));
    EXPECT_EQ(fcntl(s, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(fcntl(s, F_GETFD), 0);
    EXPECT_EQ(geti(s, SOL_SOCKET, SO_ACCEPTCONN), 0);
    int s2 = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_GE(s2, 0);
    EXPECT_EQ(fcntl(s2, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    EXPECT_EQ(fcntl(s2, F_GETFD), FD_CLOEXEC);
    char b;
    EXPECT_ERRNO(read(s2, &b, 1), EAGAIN);
    /* The accepted socket's name is the listener's address. */
    EXPECT_EQ(port_of(s2), port_of(l));
    EXPECT_ERRNO(accept(l, NULL, NULL), EAGAIN);
    close(s);
    close(s2);
    close(c);
    close(c2);
    close(l);
}

TEST(backlog_eight_clients_all_accepted)
{
    int l = listener(AF_INET, 8);
    ASSERT_GE(l, 0);
    uint16_t port = port_of(l);
    int c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = connect_to(AF_INET, port);
        EXPECT_GE(c[i], 0);
        if (c[i] >= 0)
            EXPECT_EQ(write(c[i], &"01234567"[i], 1), 1);
    }
    int seen = 0;
    for (int i = 0; i < 8; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int s = accept(l, (struct sockaddr *)&peer, &len);
        EXPECT_GE(s, 0);
        if (s < 0)
            continue;
        char ch = 0;
        EXPECT_EQ(read(s, &ch, 1), 1);
        /* Which client this is: by its port. */
        for (int j = 0; j < 8; j++) {
            if (c[j] >= 0 && port_of(c[j]) == ntohs(peer.sin_port)) {
                EXPECT_EQ(ch, "01234567"[j]);
                seen |= 1 << j;
            }
        }
        close(s);
    }
    EXPECT_EQ(seen, 0xff);
    for (int i = 0; i < 8; i++)
        close(c[i]);
    close(l);
}

TEST(blocking_accept_wakes_on_connect)
{
    int l = listener(AF_INET, 4);
    ASSERT_GE(l, 0);
    uint16_t port = port_of(l);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        usleep(50000);
        int c = connect_to(AF_INET, port);
        if (c < 0 || write(c, "hi", 2) != 2)
            _exit(1);
        char b;
        /* Wait for the server to close. */
        _exit(read(c, &b, 1) == 0 ? 0 : 2);
    }
    int s = accept(l, NULL, NULL);
    EXPECT_GE(s, 0);
    char buf[4];
    EXPECT_EQ(recv(s, buf, 2, MSG_WAITALL), 2);
    EXPECT_MEMEQ(buf, "hi", 2);
    close(s);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    close(l);
}

/* ------------------------------------------------------------ connect */

TEST(connect_refused_to_closed_port)
{
    /* A port that was just ours and is closed now. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in a = lo4(0);
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    a = lo4(port_of(fd));
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)&a, sizeof a), ECONNREFUSED);
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_ERROR), 0);
    close(fd);
    /* Nonblocking: EINPROGRESS, then the error in SO_ERROR. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)&a, sizeof a), EINPROGRESS);
    EXPECT_NE(wait_for(fd, POLLOUT) & POLLOUT, 0);
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_ERROR), ECONNREFUSED);
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_ERROR), 0);
    close(fd);
    /* IPv6. */
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in6 a6 = lo6(0);
    ASSERT_OK(bind(fd, (struct sockaddr *)&a6, sizeof a6));
    a6 = lo6(port_of(fd));
    close(fd);
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)&a6, sizeof a6), ECONNREFUSED);
    close(fd);
}

TEST(connect_errors)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in a = lo4(1);
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)&a, sizeof a - 1), EINVAL);
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)8, sizeof a), EFAULT);
    struct sockaddr_in6 a6 = lo6(1);
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)&a6, sizeof a6), EAFNOSUPPORT);
    close(fd);
}

TEST(connect_nonblocking_inprogress_then_connected)
{
    int l = listener(AF_INET, 4);
    ASSERT_GE(l, 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in a = lo4(port_of(l));
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)&a, sizeof a), EINPROGRESS);
    EXPECT_NE(wait_for(fd, POLLOUT) & POLLOUT, 0);
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_ERROR), 0);
    /* Linux: the first connect after completion reports success, later
     * ones EISCONN. */
    EXPECT_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)&a, sizeof a), EISCONN);
    int s = accept(l, NULL, NULL);
    EXPECT_GE(s, 0);
    EXPECT_EQ(write(fd, "x", 1), 1);
    char b;
    EXPECT_EQ(read(s, &b, 1), 1);
    close(s);
    close(fd);
    /* A blocking connect: connecting again is EISCONN at once. */
    fd = connect_to(AF_INET, port_of(l));
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(connect(fd, (struct sockaddr *)&a, sizeof a), EISCONN);
    close(fd);
    close(l);
}

/* ------------------------------------------------------------ send, recv */

TEST(tcp_round_trip_v4_and_v6)
{
    int fams[2] = {AF_INET, AF_INET6};
    for (int i = 0; i < 2; i++) {
        int c, s;
        ASSERT_OK(tcp_pair(fams[i], &c, &s));
        char buf[64];
        EXPECT_EQ(write(c, "ping", 4), 4);
        EXPECT_EQ(read(s, buf, sizeof buf), 4);
        EXPECT_MEMEQ(buf, "ping", 4);
        EXPECT_EQ(send(s, "pong!", 5, 0), 5);
        EXPECT_EQ(recv(c, buf, sizeof buf, 0), 5);
        EXPECT_MEMEQ(buf, "pong!", 5);
        struct iovec wv[2] = {{"12", 2}, {"345", 3}};
        EXPECT_EQ(writev(c, wv, 2), 5);
        char x[2], y[8];
        struct iovec rv[2] = {{x, 2}, {y, 8}};
        EXPECT_EQ(readv(s, rv, 2), 5);
        EXPECT_MEMEQ(x, "12", 2);
        EXPECT_MEMEQ(y, "345", 3);
        /* recvfrom on a stream: the address is the peer's (Linux fills it in). */
        EXPECT_EQ(send(c, "ab", 2, 0), 2);
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        EXPECT_EQ(recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 2);
        /* recvmsg flags. */
        EXPECT_EQ(send(s, "msg", 3, 0), 3);
        struct iovec riov = {buf, sizeof buf};
        struct msghdr rm = {.msg_iov = &riov, .msg_iovlen = 1, .msg_flags = -1};
        EXPECT_EQ(recvmsg(c, &rm, 0), 3);
        EXPECT_EQ(rm.msg_flags, 0);
        close(c);
        close(s);
    }
}

TEST(tcp_bulk_transfer_one_mib)
{
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    const size_t total = 1 << 20;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(s);
        static unsigned char chunk[8192];
        size_t sent = 0;
        while (sent < total) {
            for (size_t k = 0; k < sizeof chunk; k++)
                chunk[k] = (unsigned char)((sent + k) * 7 + 3);
            ssize_t n = write(c, chunk, sizeof chunk);
            if (n != (ssize_t)sizeof chunk)
                _exit(1);
            sent += n;
        }
        _exit(0);
    }
    close(c);
    static unsigned char buf[65536];
    size_t got = 0;
    int bad = 0;
    for (;;) {
        ssize_t n = read(s, buf, sizeof buf);
        if (n <= 0) {
            EXPECT_EQ(n, 0);
            break;
        }
        for (ssize_t k = 0; k < n; k++)
            if (buf[k] != (unsigned char)((got + k) * 7 + 3))
                bad++;
        got += n;
    }
    EXPECT_EQ(got, total);
    EXPECT_EQ(bad, 0);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    close(s);
}

TEST(recv_peek_dontwait_waitall)
{
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    char buf[16];
    EXPECT_ERRNO(recv(s, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    EXPECT_EQ(send(c, "hello", 5, 0), 5);
    EXPECT_NE(wait_for(s, POLLIN) & POLLIN, 0);
    EXPECT_EQ(recv(s, buf, 3, MSG_PEEK), 3);
    EXPECT_MEMEQ(buf, "hel", 3);
    EXPECT_EQ(recv(s, buf, sizeof buf, MSG_PEEK), 5);
    EXPECT_EQ(recv(s, buf, sizeof buf, 0), 5);
    EXPECT_MEMEQ(buf, "hello", 5);
    EXPECT_ERRNO(recv(s, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    /* MSG_WAITALL gathers the writes of a slow writer. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (write(c, "abc", 3) != 3)
            _exit(1);
        usleep(50000);
        if (write(c, "defg", 4) != 4)
            _exit(1);
        usleep(50000);
        _exit(write(c, "hij", 3) == 3 ? 0 : 1);
    }
    EXPECT_EQ(recv(s, buf, 10, MSG_WAITALL), 10);
    EXPECT_MEMEQ(buf, "abcdefghij", 10);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    /* MSG_WAITALL stops short at EOF. */
    EXPECT_EQ(send(c, "xy", 2, 0), 2);
    EXPECT_OK(shutdown(c, SHUT_WR));
    EXPECT_EQ(recv(s, buf, 10, MSG_WAITALL), 2);
    close(c);
    close(s);
}

TEST(unconnected_stream_send_recv)
{
    struct sigaction sa = {.sa_handler = on_pipe}, old;
    sigaction(SIGPIPE, &sa, &old);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    char b = 'x';
    EXPECT_ERRNO(recv(fd, &b, 1, 0), ENOTCONN);
    EXPECT_ERRNO(read(fd, &b, 1), ENOTCONN);
    got_pipe = 0;
    EXPECT_ERRNO(send(fd, &b, 1, MSG_NOSIGNAL), EPIPE);
    EXPECT_EQ(got_pipe, 0);
    EXPECT_ERRNO(write(fd, &b, 1), EPIPE);
    EXPECT_EQ(got_pipe, 1);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    EXPECT_ERRNO(getpeername(fd, (struct sockaddr *)&peer, &len), ENOTCONN);
    EXPECT_ERRNO(shutdown(fd, SHUT_RDWR), ENOTCONN);
    close(fd);
    /* A listener: the same. */
    int l = listener(AF_INET, 1);
    ASSERT_GE(l, 0);
    EXPECT_ERRNO(recv(l, &b, 1, 0), ENOTCONN);
    EXPECT_ERRNO(send(l, &b, 1, MSG_NOSIGNAL), EPIPE);
    EXPECT_ERRNO(getpeername(l, (struct sockaddr *)&peer, &len), ENOTCONN);
    close(l);
    sigaction(SIGPIPE, &old, NULL);
}

/* ------------------------------------------------------------ shutdown, close */

TEST(shutdown_wr_eof_epipe_sigpipe)
{
    struct sigaction sa = {.sa_handler = on_pipe}, old;
    sigaction(SIGPIPE, &sa, &old);
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    EXPECT_ERRNO(shutdown(c, 7), EINVAL);
    EXPECT_EQ(write(c, "last", 4), 4);
    EXPECT_OK(shutdown(c, SHUT_WR));
    char buf[16];
    EXPECT_EQ(read(s, buf, sizeof buf), 4);
    EXPECT_EQ(read(s, buf, sizeof buf), 0);
    EXPECT_EQ(read(s, buf, sizeof buf), 0);
    /* The other direction still works. */
    EXPECT_EQ(write(s, "back", 4), 4);
    EXPECT_EQ(read(c, buf, sizeof buf), 4);
    got_pipe = 0;
    EXPECT_ERRNO(write(c, "x", 1), EPIPE);
    EXPECT_EQ(got_pipe, 1);
    EXPECT_ERRNO(send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    EXPECT_EQ(got_pipe, 1);
    /* Shutting down again is fine. */
    EXPECT_OK(shutdown(c, SHUT_WR));
    /* SHUT_RD: reads return EOF at once. */
    EXPECT_OK(shutdown(s, SHUT_RD));
    EXPECT_EQ(read(s, buf, sizeof buf), 0);
    close(c);
    close(s);
    sigaction(SIGPIPE, &old, NULL);
}

TEST(close_with_unread_data_resets_peer)
{
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    EXPECT_EQ(write(c, "unread", 6), 6);
    EXPECT_NE(wait_for(s, POLLIN) & POLLIN, 0);
    close(s);
    EXPECT_NE(wait_for(c, POLLIN), 0);
    EXPECT_NE(revents(c, POLLIN) & POLLHUP, 0);
    char b;
    EXPECT_ERRNO(read(c, &b, 1), ECONNRESET);
    /* Reported once; then EOF, and writing is EPIPE. */
    EXPECT_EQ(read(c, &b, 1), 0);
    EXPECT_ERRNO(send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    close(c);

    /* SO_LINGER with a zero timeout: close resets too. */
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    EXPECT_OK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    close(s);
    EXPECT_NE(wait_for(c, POLLIN), 0);
    EXPECT_EQ(geti(c, SOL_SOCKET, SO_ERROR), ECONNRESET);
    EXPECT_EQ(read(c, &b, 1), 0);
    close(c);
}

TEST(close_normal_peer_reads_eof)
{
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET6, &c, &s));
    EXPECT_EQ(write(s, "bye", 3), 3);
    close(s);
    char buf[8];
    EXPECT_EQ(read(c, buf, sizeof buf), 3);
    EXPECT_EQ(read(c, buf, sizeof buf), 0);
    close(c);
}

/* ------------------------------------------------------------ names */

TEST(sockname_peername)
{
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    struct sockaddr_in cn, cp, sn, sp;
    socklen_t l1 = sizeof cn, l2 = sizeof cp, l3 = sizeof sn, l4 = sizeof sp;
    EXPECT_OK(getsockname(c, (struct sockaddr *)&cn, &l1));
    EXPECT_OK(getpeername(c, (struct sockaddr *)&cp, &l2));
    EXPECT_OK(getsockname(s, (struct sockaddr *)&sn, &l3));
    EXPECT_OK(getpeername(s, (struct sockaddr *)&sp, &l4));
    EXPECT_EQ(l1 + l2 + l3 + l4, 4 * sizeof cn);
    EXPECT_EQ(cn.sin_port, sp.sin_port);
    EXPECT_EQ(cp.sin_port, sn.sin_port);
    EXPECT_EQ(cn.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    EXPECT_EQ(sp.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    /* A short buffer: truncated, the full length returned. */
    char small[4];
    socklen_t sl = sizeof small;
    EXPECT_OK(getsockname(c, (struct sockaddr *)small, &sl));
    EXPECT_EQ(sl, sizeof cn);
    EXPECT_MEMEQ(small, &cn, 4);
    socklen_t neg = (socklen_t)-1;
    EXPECT_ERRNO(getsockname(c, (struct sockaddr *)&cn, &neg), EINVAL);
    EXPECT_ERRNO(getpeername(c, (struct sockaddr *)8, &l1), EFAULT);
    close(c);
    close(s);

    /* IPv6: 28-byte names, ::1. */
    ASSERT_OK(tcp_pair(AF_INET6, &c, &s));
    struct sockaddr_in6 p6;
    socklen_t l6 = sizeof p6;
    EXPECT_OK(getpeername(s, (struct sockaddr *)&p6, &l6));
    EXPECT_EQ(l6, sizeof p6);
    EXPECT_EQ(p6.sin6_family, AF_INET6);
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&p6.sin6_addr));
    EXPECT_EQ(ntohs(p6.sin6_port), port_of(c));
    EXPECT_EQ(p6.sin6_flowinfo, 0);
    EXPECT_EQ(p6.sin6_scope_id, 0);
    close(c);
    close(s);
}

/* ------------------------------------------------------------ options */

TEST(sockopt_round_trips)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    EXPECT_OK(seti(fd, SOL_SOCKET, SO_KEEPALIVE, 1));
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    /* Any nonzero value is "on". */
    EXPECT_OK(seti(fd, SOL_SOCKET, SO_REUSEADDR, 42));
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_REUSEADDR), 1);
    EXPECT_OK(seti(fd, SOL_SOCKET, SO_REUSEADDR, 0));
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_REUSEADDR), 0);
    EXPECT_EQ(geti(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    EXPECT_OK(seti(fd, IPPROTO_TCP, TCP_NODELAY, 1));
    EXPECT_EQ(geti(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    EXPECT_OK(seti(fd, IPPROTO_TCP, TCP_KEEPIDLE, 30));
    EXPECT_EQ(geti(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
    EXPECT_ERRNO(seti(fd, IPPROTO_TCP, TCP_KEEPIDLE, 0), EINVAL);
    /* The kernel doubles SO_RCVBUF and SO_SNDBUF. */
    EXPECT_OK(seti(fd, SOL_SOCKET, SO_RCVBUF, 65536));
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_RCVBUF), 131072);
    EXPECT_OK(seti(fd, SOL_SOCKET, SO_SNDBUF, 65536));
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_SNDBUF), 131072);
    struct linger lg = {.l_onoff = 1, .l_linger = 5}, lg2 = {0, 0};
    socklen_t ll = sizeof lg2;
    EXPECT_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    EXPECT_OK(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg2, &ll));
    EXPECT_EQ(ll, sizeof lg2);
    EXPECT_EQ(lg2.l_onoff, 1);
    EXPECT_EQ(lg2.l_linger, 5);
    EXPECT_EQ(geti(fd, IPPROTO_IP, IP_TTL), 64);
    EXPECT_OK(seti(fd, IPPROTO_IP, IP_TTL, 32));
    EXPECT_EQ(geti(fd, IPPROTO_IP, IP_TTL), 32);
    EXPECT_ERRNO(seti(fd, IPPROTO_IP, IP_TTL, 0), EINVAL);
    close(fd);

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_BROADCAST), 0);
    EXPECT_OK(seti(fd, SOL_SOCKET, SO_BROADCAST, 1));
    EXPECT_EQ(geti(fd, SOL_SOCKET, SO_BROADCAST), 1);
    /* TCP options on a UDP socket. */
    EXPECT_ERRNO(seti(fd, IPPROTO_TCP, TCP_NODELAY, 1), ENOPROTOOPT);
    close(fd);
}

TEST(sockopt_errors)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    int v = 1;
    socklen_t len = sizeof v;
    EXPECT_ERRNO(getsockopt(fd, SOL_SOCKET, 9999, &v, &len), ENOPROTOOPT);
    EXPECT_ERRNO(setsockopt(fd, SOL_SOCKET, 9999, &v, sizeof v), ENOPROTOOPT);
    EXPECT_ERRNO(getsockopt(fd, IPPROTO_TCP, 9999, &v, &len), ENOPROTOOPT);
    EXPECT_ERRNO(setsockopt(fd, IPPROTO_TCP, 9999, &v, sizeof v), ENOPROTOOPT);
    /* IPv6 options on an IPv4 socket. */
    EXPECT_ERRNO(seti(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1), ENOPROTOOPT);
    /* optlen too small for an int option. */
    EXPECT_ERRNO(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, 2), EINVAL);
    EXPECT_ERRNO(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, 2), EINVAL);
    len = (socklen_t)-1;
    EXPECT_ERRNO(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &len), EINVAL);
    len = sizeof v;
    EXPECT_ERRNO(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, (void *)8, &len), EFAULT);
    EXPECT_ERRNO(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, (void *)8, sizeof v), EFAULT);
    close(fd);
}

TEST(fionread)
{
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    int n = -1;
    EXPECT_OK(ioctl(s, FIONREAD, &n));
    EXPECT_EQ(n, 0);
    EXPECT_EQ(write(c, "12345", 5), 5);
    EXPECT_NE(wait_for(s, POLLIN) & POLLIN, 0);
    EXPECT_OK(ioctl(s, FIONREAD, &n));
    EXPECT_EQ(n, 5);
    close(c);
    close(s);
    int l = listener(AF_INET, 1);
    ASSERT_GE(l, 0);
    EXPECT_ERRNO(ioctl(l, FIONREAD, &n), EINVAL);
    close(l);
    /* UDP: the size of the next datagram. */
    int a = udp_bound(AF_INET), b = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    struct sockaddr_in to = lo4(port_of(b));
    EXPECT_OK(ioctl(b, FIONREAD, &n));
    EXPECT_EQ(n, 0);
    EXPECT_EQ(sendto(a, "abc", 3, 0, (struct sockaddr *)&to, sizeof to), 3);
    EXPECT_EQ(sendto(a, "defghij", 7, 0, (struct sockaddr *)&to, sizeof to), 7);
    EXPECT_NE(wait_for(b, POLLIN) & POLLIN, 0);
    EXPECT_OK(ioctl(b, FIONREAD, &n));
    EXPECT_EQ(n, 3);
    close(a);
    close(b);
}

/* ------------------------------------------------------------ readiness */

TEST(poll_readiness)
{
    /* A fresh TCP socket: writable and hung up. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(revents(fd, POLLIN | POLLOUT), POLLOUT | POLLHUP);
    close(fd);

    int l = listener(AF_INET, 4);
    ASSERT_GE(l, 0);
    EXPECT_EQ(revents(l, POLLIN | POLLOUT), 0);
    int c = connect_to(AF_INET, port_of(l));
    ASSERT_GE(c, 0);
    EXPECT_EQ(wait_for(l, POLLIN | POLLOUT), POLLIN);
    int s = accept(l, NULL, NULL);
    ASSERT_GE(s, 0);
    EXPECT_EQ(revents(l, POLLIN), 0);
    EXPECT_EQ(revents(c, POLLIN | POLLOUT | POLLRDHUP), POLLOUT);
    EXPECT_EQ(revents(s, POLLIN | POLLOUT | POLLRDHUP), POLLOUT);
    EXPECT_EQ(write(c, "x", 1), 1);
    EXPECT_EQ(wait_for(s, POLLIN), POLLIN);
    EXPECT_EQ(revents(s, POLLIN | POLLOUT | POLLRDHUP), POLLIN | POLLOUT);
    char b;
    EXPECT_EQ(read(s, &b, 1), 1);
    /* Peer shuts down writing: readable (EOF) and POLLRDHUP. */
    EXPECT_OK(shutdown(c, SHUT_WR));
    EXPECT_EQ(wait_for(s, POLLRDHUP), POLLRDHUP);
    EXPECT_EQ(revents(s, POLLIN | POLLOUT | POLLRDHUP), POLLIN | POLLOUT | POLLRDHUP);
    /* Both directions shut: POLLHUP. */
    EXPECT_OK(shutdown(s, SHUT_WR));
    EXPECT_NE(wait_for(c, POLLRDHUP) & POLLRDHUP, 0);
    EXPECT_EQ(revents(s, POLLIN | POLLOUT | POLLRDHUP),
              POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
    EXPECT_EQ(revents(c, POLLIN | POLLOUT | POLLRDHUP),
              POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
    close(c);
    close(s);
    close(l);
}

TEST(select_and_epoll_readiness)
{
    int l = listener(AF_INET6, 4);
    ASSERT_GE(l, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev));
    struct epoll_event out[4];
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    int c = connect_to(AF_INET6, port_of(l));
    ASSERT_GE(c, 0);
    EXPECT_EQ(epoll_wait(ep, out, 4, 2000), 1);
    EXPECT_EQ(out[0].events, EPOLLIN);
    EXPECT_EQ(out[0].data.u32, 1);
    fd_set rf, wf;
    FD_ZERO(&rf);
    FD_SET(l, &rf);
    struct timeval tv = {0, 0};
    EXPECT_EQ(select(l + 1, &rf, NULL, NULL, &tv), 1);
    EXPECT_TRUE(FD_ISSET(l, &rf));
    int s = accept(l, NULL, NULL);
    ASSERT_GE(s, 0);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);

    /* The connection: edge-triggered EPOLLIN, then EPOLLRDHUP. */
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u32 = 2;
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    EXPECT_EQ(epoll_wait(ep, out, 4, 2000), 1);
    EXPECT_EQ(out[0].events, EPOLLOUT);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    EXPECT_EQ(write(c, "data", 4), 4);
    EXPECT_EQ(epoll_wait(ep, out, 4, 2000), 1);
    EXPECT_EQ(out[0].events, EPOLLIN | EPOLLOUT);
    EXPECT_EQ(out[0].data.u32, 2);
    FD_ZERO(&rf);
    FD_ZERO(&wf);
    FD_SET(s, &rf);
    FD_SET(s, &wf);
    EXPECT_EQ(select(s + 1, &rf, &wf, NULL, &tv), 2);
    EXPECT_OK(shutdown(c, SHUT_WR));
    EXPECT_EQ(epoll_wait(ep, out, 4, 2000), 1);
    EXPECT_EQ(out[0].events, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    close(ep);
    close(c);
    close(s);
    close(l);
}

TEST(blocking_read_wakes_on_data)
{
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        usleep(50000);
        _exit(write(c, "late", 4) == 4 ? 0 : 1);
    }
    char buf[8];
    EXPECT_EQ(read(s, buf, sizeof buf), 4);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    close(c);
    close(s);
}

TEST(so_rcvtimeo_eagain)
{
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    struct timeval tv = {0, 100000};
    ASSERT_OK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char b;
    EXPECT_ERRNO(read(s, &b, 1), EAGAIN);
    EXPECT_GE(ms_since(&t0), 90);
    close(c);
    close(s);
    int u = udp_bound(AF_INET);
    ASSERT_GE(u, 0);
    ASSERT_OK(setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    EXPECT_ERRNO(recv(u, &b, 1, 0), EAGAIN);
    EXPECT_GE(ms_since(&t0), 90);
    close(u);
}

/* ------------------------------------------------------------ UDP */

TEST(udp_sendto_recvfrom)
{
    int a = udp_bound(AF_INET), b = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    struct sockaddr_in to = lo4(port_of(b)), from;
    EXPECT_EQ(sendto(a, "hello", 5, 0, (struct sockaddr *)&to, sizeof to), 5);
    char buf[64];
    socklen_t fl = sizeof from;
    memset(&from, 0, sizeof from);
    EXPECT_EQ(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 5);
    EXPECT_MEMEQ(buf, "hello", 5);
    EXPECT_EQ(fl, sizeof from);
    EXPECT_EQ(from.sin_family, AF_INET);
    EXPECT_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    EXPECT_EQ(ntohs(from.sin_port), port_of(a));
    /* Reply to the sender's address. */
    EXPECT_EQ(sendto(b, "re", 2, 0, (struct sockaddr *)&from, fl), 2);
    EXPECT_EQ(recv(a, buf, sizeof buf, 0), 2);
    /* Datagram boundaries, an empty datagram. */
    EXPECT_EQ(sendto(a, "abc", 3, 0, (struct sockaddr *)&to, sizeof to), 3);
    EXPECT_EQ(sendto(a, "", 0, 0, (struct sockaddr *)&to, sizeof to), 0);
    EXPECT_EQ(sendto(a, "defgh", 5, 0, (struct sockaddr *)&to, sizeof to), 5);
    EXPECT_EQ(recv(b, buf, sizeof buf, 0), 3);
    EXPECT_EQ(recv(b, buf, sizeof buf, 0), 0);
    EXPECT_EQ(recv(b, buf, sizeof buf, 0), 5);
    EXPECT_MEMEQ(buf, "defgh", 5);
    EXPECT_ERRNO(recv(b, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    close(a);
    close(b);
}

TEST(udp_autobind_on_sendto)
{
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    EXPECT_EQ(port_of(a), 0);
    struct sockaddr_in to = lo4(port_of(b));
    EXPECT_EQ(sendto(a, "x", 1, 0, (struct sockaddr *)&to, sizeof to), 1);
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    EXPECT_OK(getsockname(a, (struct sockaddr *)&me, &len));
    EXPECT_NE(me.sin_port, 0);
    EXPECT_EQ(me.sin_addr.s_addr, htonl(INADDR_ANY));
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    char c;
    EXPECT_EQ(recvfrom(b, &c, 1, 0, (struct sockaddr *)&from, &fl), 1);
    EXPECT_EQ(from.sin_port, me.sin_port);
    close(a);
    close(b);
}

TEST(udp_errors)
{
    int a = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    char buf[8];
    /* No destination. */
    EXPECT_ERRNO(send(a, "x", 1, 0), EDESTADDRREQ);
    EXPECT_ERRNO(write(a, "x", 1), EDESTADDRREQ);
    struct sockaddr_in p;
    socklen_t pl = sizeof p;
    EXPECT_ERRNO(getpeername(a, (struct sockaddr *)&p, &pl), ENOTCONN);
    /* A short or foreign address. */
    struct sockaddr_in to = lo4(port_of(a));
    EXPECT_ERRNO(sendto(a, "x", 1, 0, (struct sockaddr *)&to, sizeof to - 1), EINVAL);
    struct sockaddr_in6 to6 = lo6(port_of(a));
    EXPECT_ERRNO(sendto(a, "x", 1, 0, (struct sockaddr *)&to6, sizeof to6), EAFNOSUPPORT);
    /* The largest IPv4 datagram is 65507 bytes. */
    static char big[65508];
    EXPECT_ERRNO(sendto(a, big, sizeof big, 0, (struct sockaddr *)&to, sizeof to), EMSGSIZE);
    EXPECT_EQ(sendto(a, big, sizeof big - 1, 0, (struct sockaddr *)&to, sizeof to), 65507);
    EXPECT_EQ(recv(a, big, sizeof big, 0), 65507);
    EXPECT_ERRNO(recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    close(a);
}

TEST(udp_msg_trunc)
{
    int a = udp_bound(AF_INET), b = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    struct sockaddr_in to = lo4(port_of(b));
    for (int i = 0; i < 2; i++)
        EXPECT_EQ(sendto(a, "0123456789", 10, 0, (struct sockaddr *)&to, sizeof to), 10);
    char buf[16] = {0};
    /* MSG_TRUNC: the datagram's real length; the rest is dropped. */
    EXPECT_EQ(recv(b, buf, 4, MSG_TRUNC), 10);
    EXPECT_MEMEQ(buf, "0123", 4);
    EXPECT_EQ(buf[4], 0);
    struct iovec iov = {buf, 4};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    EXPECT_EQ(recvmsg(b, &m, 0), 4);
    EXPECT_EQ(m.msg_flags & MSG_TRUNC, MSG_TRUNC);
    EXPECT_ERRNO(recv(b, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    /* MSG_PEEK keeps the datagram. */
    EXPECT_EQ(sendto(a, "peek", 4, 0, (struct sockaddr *)&to, sizeof to), 4);
    EXPECT_EQ(recv(b, buf, 2, MSG_PEEK), 2);
    EXPECT_EQ(recv(b, buf, sizeof buf, MSG_PEEK | MSG_TRUNC), 4);
    EXPECT_EQ(recv(b, buf, sizeof buf, 0), 4);
    EXPECT_MEMEQ(buf, "peek", 4);
    close(a);
    close(b);
}

TEST(udp_connect_filters_and_disconnects)
{
    int a = udp_bound(AF_INET), b = udp_bound(AF_INET), c = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    ASSERT_GE(c, 0);
    struct sockaddr_in ta = lo4(port_of(a)), tb = lo4(port_of(b));
    ASSERT_OK(connect(a, (struct sockaddr *)&tb, sizeof tb));
    struct sockaddr_in p;
    socklen_t pl = sizeof p;
    EXPECT_OK(getpeername(a, (struct sockaddr *)&p, &pl));
    EXPECT_EQ(p.sin_port, tb.sin_port);
    EXPECT_EQ(send(a, "to-b", 4, 0), 4);
    char buf[16];
    EXPECT_EQ(recv(b, buf, sizeof buf, 0), 4);
    /* A datagram from c (not the peer) is dropped; b's arrives. */
    EXPECT_EQ(sendto(c, "from-c", 6, 0, (struct sockaddr *)&ta, sizeof ta), 6);
    EXPECT_EQ(sendto(b, "from-b", 6, 0, (struct sockaddr *)&ta, sizeof ta), 6);
    EXPECT_EQ(recv(a, buf, sizeof buf, 0), 6);
    EXPECT_MEMEQ(buf, "from-b", 6);
    EXPECT_ERRNO(recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    /* Connecting again re-targets; AF_UNSPEC disconnects. */
    struct sockaddr_in tc = lo4(port_of(c));
    EXPECT_OK(connect(a, (struct sockaddr *)&tc, sizeof tc));
    EXPECT_EQ(write(a, "to-c", 4), 4);
    EXPECT_EQ(read(c, buf, sizeof buf), 4);
    struct sockaddr un = {.sa_family = AF_UNSPEC};
    EXPECT_OK(connect(a, &un, sizeof un));
    pl = sizeof p;
    EXPECT_ERRNO(getpeername(a, (struct sockaddr *)&p, &pl), ENOTCONN);
    EXPECT_ERRNO(send(a, "x", 1, 0), EDESTADDRREQ);
    close(a);
    close(b);
    close(c);
}

TEST(udp_connected_refused)
{
    /* A connected UDP socket learns of ICMP port unreachable. */
    int a = udp_bound(AF_INET), gone = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    ASSERT_GE(gone, 0);
    struct sockaddr_in t = lo4(port_of(gone));
    close(gone);
    ASSERT_OK(connect(a, (struct sockaddr *)&t, sizeof t));
    EXPECT_EQ(send(a, "x", 1, 0), 1);
    EXPECT_NE(wait_for(a, POLLIN) & POLLERR, 0);
    char b;
    EXPECT_ERRNO(recv(a, &b, 1, 0), ECONNREFUSED);
    EXPECT_ERRNO(recv(a, &b, 1, MSG_DONTWAIT), EAGAIN);
    close(a);
}

TEST(udp_ipv6_and_v6only)
{
    int a = udp_bound(AF_INET6), b = udp_bound(AF_INET6);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    struct sockaddr_in6 to = lo6(port_of(b)), from;
    EXPECT_EQ(sendto(a, "six", 3, 0, (struct sockaddr *)&to, sizeof to), 3);
    char buf[8];
    socklen_t fl = sizeof from;
    EXPECT_EQ(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 3);
    EXPECT_EQ(fl, sizeof from);
    EXPECT_EQ(from.sin6_family, AF_INET6);
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&from.sin6_addr));
    EXPECT_EQ(ntohs(from.sin6_port), port_of(a));
    /* Bound to a specific IPv6 address: V6ONLY is set (Linux), and
     * cannot change once bound. */
    EXPECT_EQ(geti(a, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    EXPECT_ERRNO(seti(a, IPPROTO_IPV6, IPV6_V6ONLY, 1), EINVAL);
    /* IPv4 datagrams reach an IPv6 wildcard socket as v4-mapped. */
    int w = socket(AF_INET6, SOCK_DGRAM, 0);
    ASSERT_GE(w, 0);
    struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
    ASSERT_OK(bind(w, (struct sockaddr *)&any, sizeof any));
    int v4 = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(v4, 0);
    struct sockaddr_in t4 = lo4(port_of(w));
    EXPECT_EQ(sendto(v4, "four", 4, 0, (struct sockaddr *)&t4, sizeof t4), 4);
    fl = sizeof from;
    EXPECT_EQ(recvfrom(w, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 4);
    EXPECT_EQ(fl, sizeof from);
    EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&from.sin6_addr));
    EXPECT_EQ(ntohs(from.sin6_port), port_of(v4));
    close(v4);
    close(w);
    close(a);
    close(b);
}

TEST(tcp_v6only_and_dual_stack)
{
    /* An IPv6 wildcard listener takes IPv4 connections unless V6ONLY. */
    for (int only = 0; only < 2; only++) {
        int l = socket(AF_INET6, SOCK_STREAM, 0);
        ASSERT_GE(l, 0);
        EXPECT_EQ(geti(l, IPPROTO_IPV6, IPV6_V6ONLY), 0);
        EXPECT_OK(seti(l, IPPROTO_IPV6, IPV6_V6ONLY, only));
        EXPECT_EQ(geti(l, IPPROTO_IPV6, IPV6_V6ONLY), only);
        struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
        ASSERT_OK(bind(l, (struct sockaddr *)&any, sizeof any));
        ASSERT_OK(listen(l, 4));
        uint16_t port = port_of(l);
        /* The same port on IPv4's wildcard: taken unless V6ONLY. */
        int b4 = socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_GE(b4, 0);
        struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port)};
        if (only)
            EXPECT_OK(bind(b4, (struct sockaddr *)&a4, sizeof a4));
        else
            EXPECT_ERRNO(bind(b4, (struct sockaddr *)&a4, sizeof a4), EADDRINUSE);
        close(b4);
        int c = connect_to(AF_INET, port);
        int e = errno;
        if (only) {
            EXPECT_EQ(c, -1);
            EXPECT_EQ(e, ECONNREFUSED);
        } else {
            EXPECT_GE(c, 0);
            struct sockaddr_in6 peer;
            socklen_t len = sizeof peer;
            int s = accept(l, (struct sockaddr *)&peer, &len);
            EXPECT_GE(s, 0);
            EXPECT_EQ(len, sizeof peer);
            EXPECT_EQ(peer.sin6_family, AF_INET6);
            EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));
            EXPECT_EQ(ntohs(peer.sin6_port), port_of(c));
            EXPECT_EQ(geti(s, SOL_SOCKET, SO_DOMAIN), AF_INET6);
            close(s);
        }
        if (c >= 0)
            close(c);
        /* IPv6 clients always connect. */
        c = connect_to(AF_INET6, port);
        EXPECT_GE(c, 0);
        if (c >= 0)
            close(c);
        close(l);
    }
}

TEST(udp_sendmmsg_recvmmsg)
{
    int a = udp_bound(AF_INET), b = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    struct sockaddr_in to = lo4(port_of(b));
    ASSERT_OK(connect(a, (struct sockaddr *)&to, sizeof to));
    const char *msgs[4] = {"one", "two!", "three", "four!!"};
    struct iovec siov[4];
    struct mmsghdr sm[4];
    memset(sm, 0, sizeof sm);
    for (int i = 0; i < 4; i++) {
        siov[i].iov_base = (void *)msgs[i];
        siov[i].iov_len = strlen(msgs[i]);
        sm[i].msg_hdr.msg_iov = &siov[i];
        sm[i].msg_hdr.msg_iovlen = 1;
    }
    EXPECT_EQ(sendmmsg(a, sm, 4, 0), 4);
    for (int i = 0; i < 4; i++)
        EXPECT_EQ(sm[i].msg_len, strlen(msgs[i]));
    char bufs[4][16];
    struct iovec riov[4];
    struct mmsghdr rm[4];
    struct sockaddr_in from[4];
    memset(rm, 0, sizeof rm);
    for (int i = 0; i < 4; i++) {
        riov[i].iov_base = bufs[i];
        riov[i].iov_len = sizeof bufs[i];
        rm[i].msg_hdr.msg_iov = &riov[i];
        rm[i].msg_hdr.msg_iovlen = 1;
        rm[i].msg_hdr.msg_name = &from[i];
        rm[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    EXPECT_NE(wait_for(b, POLLIN) & POLLIN, 0);
    EXPECT_EQ(recvmmsg(b, rm, 4, MSG_WAITFORONE, NULL), 4);
    for (int i = 0; i < 4; i++) {
        EXPECT_EQ(rm[i].msg_len, strlen(msgs[i]));
        EXPECT_MEMEQ(bufs[i], msgs[i], strlen(msgs[i]));
        EXPECT_EQ(rm[i].msg_hdr.msg_namelen, sizeof from[i]);
        EXPECT_EQ(ntohs(from[i].sin_port), port_of(a));
    }
    EXPECT_ERRNO(recvmmsg(b, rm, 4, MSG_DONTWAIT, NULL), EAGAIN);
    close(a);
    close(b);
}

TEST(udp_shutdown_unconnected)
{
    /* Linux: shutdown of an unconnected UDP socket fails with ENOTCONN but
     * still shuts it down: sends fail with EPIPE. */
    int a = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    EXPECT_ERRNO(shutdown(a, SHUT_RDWR), ENOTCONN);
    struct sockaddr_in to = lo4(port_of(a));
    EXPECT_ERRNO(sendto(a, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&to, sizeof to), EPIPE);
    close(a);
    /* Connected: shutdown works; SHUT_WR makes sends EPIPE. */
    a = udp_bound(AF_INET);
    ASSERT_GE(a, 0);
    to = lo4(port_of(a));
    ASSERT_OK(connect(a, (struct sockaddr *)&to, sizeof to));
    EXPECT_EQ(send(a, "y", 1, 0), 1);
    EXPECT_OK(shutdown(a, SHUT_WR));
    EXPECT_ERRNO(send(a, "z", 1, MSG_NOSIGNAL), EPIPE);
    char b;
    EXPECT_EQ(recv(a, &b, 1, 0), 1);
    EXPECT_EQ(b, 'y');
    close(a);
}

TEST(getsockopt_short_optlen_truncates)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    unsigned char v[4] = {0xaa, 0xaa, 0xaa, 0xaa};
    socklen_t len = 1;
    EXPECT_OK(getsockopt(fd, SOL_SOCKET, SO_TYPE, v, &len));
    EXPECT_EQ(len, 1);
    EXPECT_EQ(v[0], SOCK_STREAM);
    EXPECT_EQ(v[1], 0xaa);
    /* A longer buffer: only an int is written. */
    int big[2] = {-1, -1};
    len = sizeof big;
    EXPECT_OK(getsockopt(fd, SOL_SOCKET, SO_TYPE, big, &len));
    EXPECT_EQ(len, sizeof(int));
    EXPECT_EQ(big[0], SOCK_STREAM);
    EXPECT_EQ(big[1], -1);
    close(fd);
}

TEST(sendfile_to_tcp_socket)
{
    int mfd = memfd_create("inet-sendfile", 0);
    ASSERT_GE(mfd, 0);
    static char data[100000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 13);
    ASSERT_EQ(write(mfd, data, sizeof data), sizeof data);
    int c, s;
    ASSERT_OK(tcp_pair(AF_INET, &c, &s));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        off_t off = 0;
        size_t left = sizeof data;
        while (left > 0) {
            ssize_t n = sendfile(c, mfd, &off, left);
            if (n <= 0)
                _exit(1);
            left -= n;
        }
        _exit(off == sizeof data ? 0 : 2);
    }
    close(c);
    static char got[sizeof data];
    EXPECT_EQ(recv(s, got, sizeof got, MSG_WAITALL), sizeof got);
    EXPECT_MEMEQ(got, data, sizeof data);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    close(s);
    close(mfd);
}

TEST(ipv6_socket_connects_to_v4_mapped)
{
    int l = listener(AF_INET, 4);
    ASSERT_GE(l, 0);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    ASSERT_GE(c, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port_of(l))};
    ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr), 1);
    ASSERT_OK(connect(c, (struct sockaddr *)&a, sizeof a));
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &len);
    ASSERT_GE(s, 0);
    EXPECT_EQ(peer.sin_family, AF_INET);
    EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    struct sockaddr_in6 me;
    len = sizeof me;
    EXPECT_OK(getsockname(c, (struct sockaddr *)&me, &len));
    EXPECT_EQ(len, sizeof me);
    EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&me.sin6_addr));
    EXPECT_EQ(ntohs(me.sin6_port), ntohs(peer.sin_port));
    EXPECT_EQ(write(c, "m", 1), 1);
    char b;
    EXPECT_EQ(read(s, &b, 1), 1);
    close(c);
    close(s);
    /* With V6ONLY, a v4-mapped destination is unreachable. */
    c = socket(AF_INET6, SOCK_STREAM, 0);
    ASSERT_GE(c, 0);
    EXPECT_OK(seti(c, IPPROTO_IPV6, IPV6_V6ONLY, 1));
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&a, sizeof a), ENETUNREACH);
    close(c);
    close(l);
}

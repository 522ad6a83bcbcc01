/*
 * socketpair.c - socketpair(AF_UNIX, ...): stream, seqpacket and dgram pairs,
 * send/recv flags, shutdown, EOF/EPIPE/SIGPIPE, readiness, socket options,
 * names, fstat and argument errors, as Linux gives them.
 */
#define _GNU_SOURCE
#include "harness.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

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

TEST(stream_round_trip_both_ways)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    char buf[64];
    EXPECT_EQ(write(sv[0], "ping", 4), 4);
    EXPECT_EQ(read(sv[1], buf, sizeof buf), 4);
    EXPECT_MEMEQ(buf, "ping", 4);
    EXPECT_EQ(send(sv[1], "pong!", 5, 0), 5);
    EXPECT_EQ(recv(sv[0], buf, sizeof buf, 0), 5);
    EXPECT_MEMEQ(buf, "pong!", 5);
    /* A byte stream: two writes read as one. */
    EXPECT_EQ(write(sv[0], "ab", 2), 2);
    EXPECT_EQ(write(sv[0], "cd", 2), 2);
    EXPECT_EQ(read(sv[1], buf, sizeof buf), 4);
    EXPECT_MEMEQ(buf, "abcd", 4);
    /* readv/writev */
    struct iovec wv[2] = {{"12", 2}, {"345", 3}};
    EXPECT_EQ(writev(sv[1], wv, 2), 5);
    char x[2], y[8];
    struct iovec rv[2] = {{x, 2}, {y, 8}};
    EXPECT_EQ(readv(sv[0], rv, 2), 5);
    EXPECT_MEMEQ(x, "12", 2);
    EXPECT_MEMEQ(y, "345", 3);
    /* sendmsg/recvmsg */
    struct iovec siov = {"msg", 3};
    struct msghdr sm = {.msg_iov = &siov, .msg_iovlen = 1};
    EXPECT_EQ(sendmsg(sv[0], &sm, 0), 3);
    struct iovec riov = {buf, sizeof buf};
    struct msghdr rm = {.msg_iov = &riov, .msg_iovlen = 1, .msg_flags = -1};
    EXPECT_EQ(recvmsg(sv[1], &rm, 0), 3);
    EXPECT_EQ(rm.msg_flags, 0);
    EXPECT_EQ(rm.msg_controllen, 0);
    /* sendto/recvfrom with an address: the peer is unnamed. */
    EXPECT_EQ(sendto(sv[1], "to", 2, 0, NULL, 0), 2);
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    EXPECT_EQ(recvfrom(sv[0], buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 2);
    EXPECT_EQ(fl, 0);
    close(sv[0]);
    close(sv[1]);
}

TEST(stream_eof_after_close_and_shutdown)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    char buf[8];
    EXPECT_EQ(write(sv[0], "x", 1), 1);
    EXPECT_OK(shutdown(sv[0], SHUT_WR));
    EXPECT_EQ(read(sv[1], buf, sizeof buf), 1);
    EXPECT_EQ(read(sv[1], buf, sizeof buf), 0);
    /* The other direction still works. */
    EXPECT_EQ(write(sv[1], "y", 1), 1);
    EXPECT_EQ(read(sv[0], buf, sizeof buf), 1);
    EXPECT_ERRNO(shutdown(sv[0], 3), EINVAL);
    EXPECT_ERRNO(shutdown(0x7fff, SHUT_RD), EBADF);
    close(sv[0]);
    EXPECT_EQ(read(sv[1], buf, sizeof buf), 0);
    close(sv[1]);
}

TEST(stream_epipe_sigpipe_and_nosignal)
{
    struct sigaction sa = {.sa_handler = on_pipe}, old;
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGPIPE, &sa, &old));
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    close(sv[1]);
    got_pipe = 0;
    EXPECT_ERRNO(write(sv[0], "x", 1), EPIPE);
    EXPECT_EQ(got_pipe, 1);
    EXPECT_ERRNO(send(sv[0], "x", 1, 0), EPIPE);
    EXPECT_EQ(got_pipe, 2);
    EXPECT_ERRNO(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    EXPECT_EQ(got_pipe, 2);
    close(sv[0]);
    /* SIGPIPE ignored: only EPIPE. */
    sa.sa_handler = SIG_IGN;
    ASSERT_OK(sigaction(SIGPIPE, &sa, NULL));
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    EXPECT_OK(shutdown(sv[1], SHUT_RD));
    EXPECT_ERRNO(write(sv[0], "x", 1), EPIPE);
    close(sv[0]);
    close(sv[1]);
    sigaction(SIGPIPE, &old, NULL);
}

TEST(stream_nonblocking_fill_and_poll)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
    EXPECT_EQ(fcntl(sv[0], F_GETFD), FD_CLOEXEC);
    EXPECT_TRUE(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    char buf[4096];
    EXPECT_ERRNO(read(sv[1], buf, sizeof buf), EAGAIN);
    EXPECT_EQ(revents(sv[0], POLLIN | POLLOUT), POLLOUT);
    EXPECT_EQ(revents(sv[1], POLLIN | POLLOUT), POLLOUT);
    memset(buf, 'z', sizeof buf);
    long total = 0;
    for (;;) {
        ssize_t n = write(sv[0], buf, sizeof buf);
        if (n < 0) {
            int e = errno;
            EXPECT_EQ(e, EAGAIN);
            break;
        }
        total += n;
        if (total > (64L << 20))
            break;
    }
    EXPECT_GT(total, 4096);
    EXPECT_LT(total, 1L << 20);
    EXPECT_EQ(revents(sv[0], POLLOUT), 0);
    EXPECT_EQ(revents(sv[1], POLLIN), POLLIN);
    long got = 0;
    for (;;) {
        ssize_t n = read(sv[1], buf, sizeof buf);
        if (n <= 0)
            break;
        got += n;
    }
    EXPECT_EQ(got, total);
    EXPECT_EQ(revents(sv[0], POLLOUT), POLLOUT);
    /* MSG_DONTWAIT on a blocking socket. */
    int bv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, bv));
    EXPECT_ERRNO(recv(bv[0], buf, 1, MSG_DONTWAIT), EAGAIN);
    /* Hang-up readiness after the peer closes. */
    close(bv[1]);
    EXPECT_EQ(revents(bv[0], POLLIN | POLLOUT | POLLRDHUP),
              POLLIN | POLLOUT | POLLHUP | POLLRDHUP);
    close(bv[0]);
    EXPECT_OK(shutdown(sv[0], SHUT_WR));
    EXPECT_EQ(revents(sv[1], POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    EXPECT_EQ(revents(sv[0], POLLIN | POLLOUT), POLLOUT);
    close(sv[0]);
    close(sv[1]);
}

TEST(stream_peek_and_waitall)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    char buf[16] = {0};
    EXPECT_EQ(write(sv[0], "hello", 5), 5);
    EXPECT_EQ(recv(sv[1], buf, 3, MSG_PEEK), 3);
    EXPECT_MEMEQ(buf, "hel", 3);
    EXPECT_EQ(recv(sv[1], buf, sizeof buf, MSG_PEEK), 5);
    EXPECT_EQ(recv(sv[1], buf, sizeof buf, 0), 5);
    EXPECT_MEMEQ(buf, "hello", 5);
    /* MSG_WAITALL waits for all of it, or for EOF. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        for (int i = 0; i < 4; i++) {
            usleep(10000);
            if (write(sv[0], "ab", 2) != 2)
                _exit(1);
        }
        _exit(0);
    }
    EXPECT_EQ(recv(sv[1], buf, 8, MSG_WAITALL), 8);
    EXPECT_MEMEQ(buf, "abababab", 8);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    EXPECT_EQ(write(sv[0], "xyz", 3), 3);
    EXPECT_OK(shutdown(sv[0], SHUT_WR));
    EXPECT_EQ(recv(sv[1], buf, 8, MSG_WAITALL), 3);
    close(sv[0]);
    close(sv[1]);
}

TEST(seqpacket_and_dgram_boundaries_trunc)
{
    int types[2] = {SOCK_SEQPACKET, SOCK_DGRAM};
    for (int i = 0; i < 2; i++) {
        int sv[2];
        ASSERT_OK(socketpair(AF_UNIX, types[i], 0, sv));
        char buf[16];
        EXPECT_EQ(write(sv[0], "one", 3), 3);
        EXPECT_EQ(write(sv[0], "three", 5), 5);
        EXPECT_EQ(send(sv[0], "sixsix", 6, 0), 6);
        EXPECT_EQ(read(sv[1], buf, sizeof buf), 3);
        /* A short read discards the rest; MSG_TRUNC says so. */
        struct iovec iov = {buf, 2};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        EXPECT_EQ(recvmsg(sv[1], &m, 0), 2);
        EXPECT_EQ(m.msg_flags, MSG_TRUNC);
        EXPECT_MEMEQ(buf, "th", 2);
        /* MSG_PEEK keeps it; MSG_TRUNC returns the real length. */
        EXPECT_EQ(recv(sv[1], buf, 3, MSG_PEEK | MSG_TRUNC), 6);
        EXPECT_EQ(recv(sv[1], buf, sizeof buf, 0), 6);
        EXPECT_MEMEQ(buf, "sixsix", 6);
        EXPECT_ERRNO(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
        /* Both ways. */
        EXPECT_EQ(write(sv[1], "back", 4), 4);
        EXPECT_EQ(read(sv[0], buf, sizeof buf), 4);
        int ty = -1;
        socklen_t l = sizeof ty;
        EXPECT_OK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &ty, &l));
        EXPECT_EQ(ty, types[i]);
        close(sv[0]);
        close(sv[1]);
    }
}

TEST(seqpacket_eof_and_dgram_disconnect)
{
    int sv[2];
    char buf[8];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    close(sv[1]);
    EXPECT_EQ(read(sv[0], buf, sizeof buf), 0);
    /* No SIGPIPE from a seqpacket or dgram socket. */
    struct sigaction sa = {.sa_handler = on_pipe}, old;
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGPIPE, &sa, &old));
    got_pipe = 0;
    EXPECT_ERRNO(send(sv[0], "x", 1, 0), EPIPE);
    EXPECT_ERRNO(write(sv[0], "x", 1), EPIPE);
    EXPECT_EQ(got_pipe, 0);
    close(sv[0]);
    ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    EXPECT_OK(shutdown(sv[1], SHUT_RD));
    EXPECT_ERRNO(write(sv[0], "x", 1), EPIPE);
    EXPECT_EQ(got_pipe, 0);
    close(sv[0]);
    close(sv[1]);
    sigaction(SIGPIPE, &old, NULL);
    ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    close(sv[1]);
    EXPECT_ERRNO(send(sv[0], "x", 1, 0), ECONNREFUSED);
    EXPECT_ERRNO(send(sv[0], "x", 1, 0), ENOTCONN);
    close(sv[0]);
}

TEST(sockopts_names_and_fstat)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int v = -1;
    socklen_t l = sizeof v;
    EXPECT_OK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l));
    EXPECT_EQ(v, SOCK_STREAM);
    EXPECT_EQ(l, sizeof v);
    EXPECT_OK(getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &l));
    EXPECT_EQ(v, AF_UNIX);
    EXPECT_OK(getsockopt(sv[0], SOL_SOCKET, SO_PROTOCOL, &v, &l));
    EXPECT_EQ(v, 0);
    EXPECT_OK(getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &v, &l));
    EXPECT_EQ(v, 0);
    EXPECT_OK(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &l));
    EXPECT_GT(v, 0);
    v = 65536;
    EXPECT_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    EXPECT_OK(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &l));
    EXPECT_EQ(v, 131072);
    v = 32768;
    EXPECT_OK(setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
    EXPECT_OK(getsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, &l));
    EXPECT_EQ(v, 65536);
    EXPECT_ERRNO(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, 2), EINVAL);
    struct ucred cr;
    l = sizeof cr;
    EXPECT_OK(getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &cr, &l));
    EXPECT_EQ(l, sizeof cr);
    EXPECT_EQ(cr.pid, getpid());
    EXPECT_EQ(cr.uid, geteuid());
    EXPECT_EQ(cr.gid, getegid());
    struct sockaddr_un sa;
    memset(&sa, 0x55, sizeof sa);
    socklen_t al = sizeof sa;
    EXPECT_OK(getsockname(sv[0], (struct sockaddr *)&sa, &al));
    EXPECT_EQ(al, 2);
    EXPECT_EQ(sa.sun_family, AF_UNIX);
    EXPECT_EQ((unsigned char)sa.sun_path[0], 0x55);
    al = sizeof sa;
    EXPECT_OK(getpeername(sv[0], (struct sockaddr *)&sa, &al));
    EXPECT_EQ(al, 2);
    struct stat st;
    EXPECT_OK(fstat(sv[0], &st));
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    char link[64], want[64];
    ssize_t n = readlink("/proc/self/fd/3", link, sizeof link - 1);
    (void)n;
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", sv[0]);
    n = readlink(path, link, sizeof link - 1);
    ASSERT_GT(n, 0);
    link[n] = 0;
    snprintf(want, sizeof want, "socket:[%lu]", (unsigned long)st.st_ino);
    EXPECT_STREQ(link, want);
    /* Not a socket. */
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_ERRNO(getsockopt(p[0], SOL_SOCKET, SO_TYPE, &v, &l), ENOTSOCK);
    EXPECT_ERRNO(send(p[1], "x", 1, 0), ENOTSOCK);
    EXPECT_ERRNO(shutdown(p[0], SHUT_RD), ENOTSOCK);
    close(p[0]);
    close(p[1]);
    EXPECT_ERRNO(lseek(sv[0], 0, SEEK_SET), ESPIPE);
    close(sv[0]);
    close(sv[1]);
}

TEST(socketpair_bad_args)
{
    /* (Linux stores the fd numbers in sv before it checks the family.) */
    int sv[2];
    EXPECT_ERRNO(socketpair(12345, SOCK_STREAM, 0, sv), EAFNOSUPPORT);
    EXPECT_ERRNO(socketpair(AF_INET, SOCK_STREAM, 0, sv), EOPNOTSUPP);
    EXPECT_ERRNO(socketpair(AF_UNIX, SOCK_STREAM, 7, sv), EPROTONOSUPPORT);
    EXPECT_ERRNO(socketpair(AF_UNIX, SOCK_STREAM | 0x100, 0, sv), EINVAL);
    EXPECT_ERRNO(socketpair(AF_UNIX, 0, 0, sv), ESOCKTNOSUPPORT);
    EXPECT_ERRNO(socketpair(AF_UNIX, 11, 0, sv), EINVAL);
    /* A bad sv pointer: EFAULT and no fds left behind. */
    int before = dup(0);
    ASSERT_GE(before, 0);
    close(before);
    EXPECT_ERRNO(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, (void *)8), EFAULT);
    int after = dup(0);
    EXPECT_EQ(after, before);
    close(after);
}

TEST(fork_ping_pong)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(sv[0]);
        char c;
        for (int i = 0; i < 100; i++) {
            if (read(sv[1], &c, 1) != 1)
                _exit(1);
            c++;
            if (write(sv[1], &c, 1) != 1)
                _exit(2);
        }
        _exit(0);
    }
    close(sv[1]);
    char c = 0;
    int ok = 1;
    for (int i = 0; i < 100; i++) {
        char d = (char)i;
        if (write(sv[0], &d, 1) != 1 || read(sv[0], &c, 1) != 1 || c != (char)(i + 1))
            ok = 0;
    }
    EXPECT_TRUE(ok);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char b;
    EXPECT_EQ(read(sv[0], &b, 1), 0);
    close(sv[0]);
}

static int send_fds(int sock, int type, const int *fds, int n, const char *data, size_t len)
{
    char ctl[CMSG_SPACE(4 * sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {(void *)data, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = CMSG_SPACE(n * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    return sendmsg(sock, &m, 0);
}

TEST(scm_rights_passes_files)
{
    int types[2] = {SOCK_STREAM, SOCK_SEQPACKET};
    for (int i = 0; i < 2; i++) {
        int sv[2], p[2];
        ASSERT_OK(socketpair(AF_UNIX, types[i], 0, sv));
        ASSERT_OK(pipe(p));
        EXPECT_EQ(send_fds(sv[0], SCM_RIGHTS, p, 2, "fd", 2), 2);
        close(p[0]);
        close(p[1]);
        char buf[8];
        char ctl[CMSG_SPACE(2 * sizeof(int))];
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
        EXPECT_EQ(recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC), 2);
        /* Linux reflects MSG_CMSG_CLOEXEC in msg_flags. */
        EXPECT_EQ(m.msg_flags, MSG_CMSG_CLOEXEC);
        EXPECT_EQ(m.msg_controllen, CMSG_SPACE(2 * sizeof(int)));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        ASSERT_TRUE(c != NULL);
        EXPECT_EQ(c->cmsg_level, SOL_SOCKET);
        EXPECT_EQ(c->cmsg_type, SCM_RIGHTS);
        EXPECT_EQ(c->cmsg_len, CMSG_LEN(2 * sizeof(int)));
        int r[2];
        memcpy(r, CMSG_DATA(c), sizeof r);
        EXPECT_EQ(fcntl(r[0], F_GETFD), FD_CLOEXEC);
        /* The received ends are the same pipe. */
        EXPECT_EQ(write(r[1], "via", 3), 3);
        EXPECT_EQ(read(r[0], buf, sizeof buf), 3);
        EXPECT_MEMEQ(buf, "via", 3);
        close(r[0]);
        close(r[1]);
        /* Too small a control buffer: MSG_CTRUNC, the rest are closed. */
        ASSERT_OK(pipe(p));
        EXPECT_EQ(send_fds(sv[0], SCM_RIGHTS, p, 2, "x", 1), 1);
        close(p[0]);
        close(p[1]);
        char small[CMSG_SPACE(sizeof(int))] __attribute__((aligned(8)));
        m.msg_control = small;
        m.msg_controllen = CMSG_LEN(sizeof(int));
        EXPECT_EQ(recvmsg(sv[1], &m, 0), 1);
        EXPECT_EQ(m.msg_flags, MSG_CTRUNC);
        EXPECT_EQ(m.msg_controllen, CMSG_LEN(sizeof(int)));
        c = CMSG_FIRSTHDR(&m);
        ASSERT_TRUE(c != NULL);
        EXPECT_EQ(c->cmsg_len, CMSG_LEN(sizeof(int)));
        int one;
        memcpy(&one, CMSG_DATA(c), sizeof one);
        EXPECT_OK(fcntl(one, F_GETFD));
        close(one);
        /* A bad fd is EBADF. */
        int bad = 0x7ff0;
        EXPECT_ERRNO(send_fds(sv[0], SCM_RIGHTS, &bad, 1, "x", 1), EBADF);
        close(sv[0]);
        close(sv[1]);
    }
}

TEST(scm_rights_to_child)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(sv[0]);
        char buf[4], ctl[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
        if (recvmsg(sv[1], &m, 0) != 1)
            _exit(1);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        if (!c || c->cmsg_type != SCM_RIGHTS)
            _exit(2);
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        _exit(write(fd, "kid", 3) == 3 ? 0 : 3);
    }
    close(sv[1]);
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(send_fds(sv[0], SCM_RIGHTS, &p[1], 1, "w", 1), 1);
    close(p[1]);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char buf[8];
    EXPECT_EQ(read(p[0], buf, sizeof buf), 3);
    EXPECT_MEMEQ(buf, "kid", 3);
    EXPECT_EQ(read(p[0], buf, sizeof buf), 0);
    close(p[0]);
    close(sv[0]);
}

TEST(fionread_epoll_and_blocking_write)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    int n = -1;
    EXPECT_OK(ioctl(sv[1], FIONREAD, &n));
    EXPECT_EQ(n, 0);
    EXPECT_EQ(write(sv[0], "abc", 3), 3);
    EXPECT_EQ(write(sv[0], "de", 2), 2);
    EXPECT_OK(ioctl(sv[1], FIONREAD, &n));
    EXPECT_EQ(n, 5);
    int ep = epoll_create1(0);
    ASSERT_GE(ep, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = 7};
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev));
    struct epoll_event out[2];
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 1);
    EXPECT_EQ(out[0].events, EPOLLIN);
    char buf[8];
    EXPECT_EQ(read(sv[1], buf, sizeof buf), 3);
    EXPECT_EQ(read(sv[1], buf, sizeof buf), 2);
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 0);
    close(sv[0]);
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 1);
    EXPECT_EQ(out[0].events, EPOLLIN | EPOLLRDHUP | EPOLLHUP);
    close(ep);
    close(sv[1]);
    /* A blocking write larger than the buffer completes as the reader drains. */
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(sv[1]);
        static char big[1 << 20];
        memset(big, 'q', sizeof big);
        _exit(write(sv[0], big, sizeof big) == sizeof big ? 0 : 1);
    }
    close(sv[0]);
    static char rb[65536];
    long total = 0;
    int ok = 1;
    for (;;) {
        ssize_t r = read(sv[1], rb, sizeof rb);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (rb[i] != 'q')
                ok = 0;
        total += r;
    }
    EXPECT_EQ(total, 1 << 20);
    EXPECT_TRUE(ok);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(sv[1]);
}

static void on_alarm(int sig)
{
    (void)sig;
}

TEST(blocking_recv_eintr_and_restart)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGALRM, &sa, &old));
    struct itimerval it = {.it_value = {.tv_usec = 20000}};
    char buf[8];
    ASSERT_OK(setitimer(ITIMER_REAL, &it, NULL));
    EXPECT_ERRNO(recv(sv[0], buf, sizeof buf, 0), EINTR);
    /* With SA_RESTART the call resumes and gets the later data. */
    sa.sa_flags = SA_RESTART;
    ASSERT_OK(sigaction(SIGALRM, &sa, NULL));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        usleep(100000);
        _exit(write(sv[1], "late", 4) == 4 ? 0 : 1);
    }
    ASSERT_OK(setitimer(ITIMER_REAL, &it, NULL));
    EXPECT_EQ(read(sv[0], buf, sizeof buf), 4);
    EXPECT_MEMEQ(buf, "late", 4);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    sigaction(SIGALRM, &old, NULL);
    close(sv[0]);
    close(sv[1]);
}

static volatile sig_atomic_t sigio_count;
static void on_sigio(int sig)
{
    (void)sig;
    sigio_count++;
}

TEST(fioasync_sigio_and_enotty)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct sigaction sa = {.sa_handler = on_sigio}, old;
    ASSERT_OK(sigaction(SIGIO, &sa, &old));
    ASSERT_OK(fcntl(sv[0], F_SETOWN, getpid()));
    int on = 1;
    EXPECT_OK(ioctl(sv[0], FIOASYNC, &on));
    EXPECT_NE(fcntl(sv[0], F_GETFL) & O_ASYNC, 0);
    sigio_count = 0;
    EXPECT_EQ(write(sv[1], "x", 1), 1);
    for (int i = 0; i < 100 && sigio_count == 0; i++)
        usleep(1000);
    EXPECT_NE(sigio_count, 0);
    int off = 0;
    EXPECT_OK(ioctl(sv[0], FIOASYNC, &off));
    EXPECT_EQ(fcntl(sv[0], F_GETFL) & O_ASYNC, 0);
    EXPECT_ERRNO(ioctl(sv[0], FIOASYNC, (int *)8), EFAULT);
    /* A regular file has no fasync: ENOTTY (turning it off is a no-op). */
    char path[] = "/tmp/fioasyncXXXXXX";
    int f = mkstemp(path);
    ASSERT_GE(f, 0);
    unlink(path);
    EXPECT_ERRNO(ioctl(f, FIOASYNC, &on), ENOTTY);
    EXPECT_OK(ioctl(f, FIOASYNC, &off));
    close(f);
    sigaction(SIGIO, &old, NULL);
    close(sv[0]);
    close(sv[1]);
}

TEST(epollet_input_watch_ignores_output_wakeups)
{
    /* An EPOLLIN|EPOLLET watch is re-armed by new input only: the peer
     * draining what this end sent (a write-space wakeup of this end) is no
     * new edge. */
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int ep = epoll_create1(0);
    ASSERT_GE(ep, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev));
    EXPECT_EQ(write(sv[1], "in", 2), 2);
    struct epoll_event out;
    EXPECT_EQ(epoll_wait(ep, &out, 1, 1000), 1);
    EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);
    char buf[4];
    EXPECT_EQ(write(sv[0], "out", 3), 3);
    EXPECT_EQ(read(sv[1], buf, sizeof buf), 3);
    EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);
    /* New input is an edge again. */
    EXPECT_EQ(write(sv[1], "z", 1), 1);
    EXPECT_EQ(epoll_wait(ep, &out, 1, 1000), 1);
    close(ep);
    close(sv[0]);
    close(sv[1]);
}

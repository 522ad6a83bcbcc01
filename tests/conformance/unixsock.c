/*
 * unixsock.c - AF_UNIX sockets beyond socketpair: socket(2) types, bind to
 * path and abstract names (and autobind), listen/connect/accept with the
 * backlog, unconnected and connected datagrams with sender addresses,
 * SO_PEERCRED / SO_PASSCRED / SCM_CREDENTIALS, names, shutdown and close,
 * and the errors, as Linux gives them. Path sockets live in a mkdtemp
 * directory under /tmp.
 */
#define _GNU_SOURCE
#include "harness.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAMLEN ((socklen_t)offsetof(struct sockaddr_un, sun_path))

static char dir[64];

static const char *tmpdir(void)
{
    if (!dir[0]) {
        strcpy(dir, "/tmp/unixsock.XXXXXX");
        if (!mkdtemp(dir))
            dir[0] = 0;
    }
    return dir;
}

/* A path address in the test directory; its length in *len. */
static struct sockaddr_un path_addr(const char *name, socklen_t *len)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", tmpdir(), name);
    *len = FAMLEN + strlen(a.sun_path) + 1;
    return a;
}

/* An abstract address "\0unixsock-<pid>-<name>". */
static struct sockaddr_un abs_addr(const char *name, socklen_t *len)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "unixsock-%d-%s",
                     (int)getpid(), name);
    *len = FAMLEN + 1 + n;
    return a;
}

static short revents(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 0) < 0)
        return -1;
    return p.revents;
}

/* A listening stream socket at path `name`. */
static int listener(int type, const char *name, int backlog)
{
    socklen_t len;
    struct sockaddr_un a = path_addr(name, &len);
    int s = socket(AF_UNIX, type, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, len) < 0 || listen(s, backlog) < 0)
        return -1;
    return s;
}

static int connect_to(int type, int flags, const char *name)
{
    socklen_t len;
    struct sockaddr_un a = path_addr(name, &len);
    int c = socket(AF_UNIX, type | flags, 0);
    if (c < 0)
        return -1;
    if (connect(c, (struct sockaddr *)&a, len) < 0) {
        int e = errno;
        close(c);
        errno = e;
        return -1;
    }
    return c;
}

static int sockopt_int(int fd, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, name, &v, &l) < 0)
        return -1;
    return v;
}

TEST(socket_types_and_protocols)
{
    int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    for (int i = 0; i < 3; i++) {
        int s = socket(AF_UNIX, types[i], 0);
        ASSERT_GE(s, 0);
        EXPECT_EQ(sockopt_int(s, SO_TYPE), types[i]);
        EXPECT_EQ(sockopt_int(s, SO_DOMAIN), AF_UNIX);
        EXPECT_EQ(sockopt_int(s, SO_ACCEPTCONN), 0);
        close(s);
    }
    int s = socket(AF_UNIX, SOCK_RAW, PF_UNIX);
    ASSERT_GE(s, 0);
    EXPECT_EQ(sockopt_int(s, SO_TYPE), SOCK_DGRAM);
    close(s);
    EXPECT_ERRNO(socket(AF_UNIX, SOCK_STREAM, 2), EPROTONOSUPPORT);
    EXPECT_ERRNO(socket(AF_UNIX, SOCK_RDM, 0), ESOCKTNOSUPPORT);
    EXPECT_ERRNO(socket(AF_UNIX, SOCK_PACKET, 0), ESOCKTNOSUPPORT);
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    EXPECT_TRUE(fcntl(s, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(fcntl(s, F_GETFD) & FD_CLOEXEC);
    struct stat st;
    EXPECT_OK(fstat(s, &st));
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    /* Unbound and unconnected. */
    struct sockaddr_un a;
    socklen_t l = sizeof a;
    EXPECT_OK(getsockname(s, (struct sockaddr *)&a, &l));
    EXPECT_EQ(l, FAMLEN);
    EXPECT_EQ(a.sun_family, AF_UNIX);
    l = sizeof a;
    EXPECT_ERRNO(getpeername(s, (struct sockaddr *)&a, &l), ENOTCONN);
    char c;
    EXPECT_ERRNO(send(s, "x", 1, MSG_NOSIGNAL), ENOTCONN);
    EXPECT_ERRNO(recv(s, &c, 1, 0), EINVAL);
    EXPECT_ERRNO(accept(s, NULL, NULL), EINVAL);
    /* listen needs a name. */
    EXPECT_ERRNO(listen(s, 1), EINVAL);
    close(s);
    s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    ASSERT_GE(s, 0);
    EXPECT_ERRNO(recv(s, &c, 1, MSG_DONTWAIT), ENOTCONN);
    EXPECT_ERRNO(send(s, "x", 1, MSG_NOSIGNAL), ENOTCONN);
    close(s);
}

TEST(bind_path_errors)
{
    ASSERT_TRUE(tmpdir()[0]);
    socklen_t len;
    struct sockaddr_un a = path_addr("bound", &len);
    int s = socket(AF_UNIX, SOCK_STREAM, 0), t = socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT_GE(s, 0);
    ASSERT_GE(t, 0);
    /* A wrong family, a short address. */
    struct sockaddr_in in = {.sin_family = AF_INET};
    EXPECT_ERRNO(bind(s, (struct sockaddr *)&in, sizeof in), EINVAL);
    EXPECT_ERRNO(bind(s, (struct sockaddr *)&a, 1), EINVAL);
    ASSERT_OK(bind(s, (struct sockaddr *)&a, len));
    struct stat st;
    EXPECT_OK(stat(a.sun_path, &st));
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    /* The name is taken, by the file. */
    EXPECT_ERRNO(bind(t, (struct sockaddr *)&a, len), EADDRINUSE);
    /* Already bound. */
    socklen_t len2;
    struct sockaddr_un b = path_addr("other", &len2);
    EXPECT_ERRNO(bind(s, (struct sockaddr *)&b, len2), EINVAL);
    struct sockaddr_un got;
    socklen_t l = sizeof got;
    EXPECT_OK(getsockname(s, (struct sockaddr *)&got, &l));
    EXPECT_EQ(l, len);
    EXPECT_STREQ(got.sun_path, a.sun_path);
    /* A path in a missing directory. */
    struct sockaddr_un m = {.sun_family = AF_UNIX};
    snprintf(m.sun_path, sizeof m.sun_path, "%s/nodir/s", tmpdir());
    EXPECT_ERRNO(bind(t, (struct sockaddr *)&m, sizeof m), ENOENT);
    /* Bound but not listening, and not stream. */
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(c, 0);
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&a, len), ECONNREFUSED);
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&a, FAMLEN), EINVAL);
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&in, sizeof in), EINVAL);
    /* A file that is not a socket. */
    struct sockaddr_un f = path_addr("file", &len2);
    int fd = open(f.sun_path, O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    close(fd);
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&f, len2), ECONNREFUSED);
    unlink(f.sun_path);
    /* Datagram sockets do not listen. */
    ASSERT_OK(bind(t, (struct sockaddr *)&b, len2));
    EXPECT_ERRNO(listen(t, 1), EOPNOTSUPP);
    EXPECT_ERRNO(accept(t, NULL, NULL), EOPNOTSUPP);
    /* A stream socket cannot connect to a datagram one. */
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&b, len2), EPROTOTYPE);
    close(c);
    close(s);
    close(t);
    /* The file outlives the socket: binding it again is EADDRINUSE. */
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_ERRNO(bind(s, (struct sockaddr *)&a, len), EADDRINUSE);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&a, len), ECONNREFUSED);
    EXPECT_OK(unlink(a.sun_path));
    EXPECT_OK(bind(s, (struct sockaddr *)&a, len));
    close(s);
    close(c);
    unlink(a.sun_path);
    unlink(b.sun_path);
}

TEST(stream_listen_connect_accept)
{
    int l = listener(SOCK_STREAM, "stream", 4);
    ASSERT_GE(l, 0);
    EXPECT_EQ(sockopt_int(l, SO_ACCEPTCONN), 1);
    EXPECT_EQ(revents(l, POLLIN | POLLOUT), 0);
    int c = connect_to(SOCK_STREAM, 0, "stream");
    ASSERT_GE(c, 0);
    EXPECT_EQ(revents(l, POLLIN), POLLIN);
    socklen_t len;
    struct sockaddr_un a = path_addr("stream", &len);
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&a, len), EISCONN);
    EXPECT_ERRNO(listen(c, 1), EINVAL);
    struct sockaddr_un peer;
    socklen_t pl = sizeof peer;
    int s = accept4(l, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
    ASSERT_GE(s, 0);
    /* The client is unnamed. */
    EXPECT_EQ(pl, FAMLEN);
    EXPECT_EQ(revents(l, POLLIN), 0);
    EXPECT_EQ(sockopt_int(s, SO_ACCEPTCONN), 0);
    /* The accepted socket has the listener's name, the client the peer's. */
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    EXPECT_OK(getsockname(s, (struct sockaddr *)&got, &gl));
    EXPECT_EQ(gl, len);
    EXPECT_STREQ(got.sun_path, a.sun_path);
    gl = sizeof got;
    EXPECT_OK(getpeername(c, (struct sockaddr *)&got, &gl));
    EXPECT_EQ(gl, len);
    EXPECT_STREQ(got.sun_path, a.sun_path);
    gl = sizeof got;
    EXPECT_OK(getpeername(s, (struct sockaddr *)&got, &gl));
    EXPECT_EQ(gl, FAMLEN);
    /* SO_PEERCRED both ways; a listener reports its own. */
    struct ucred uc;
    socklen_t ul = sizeof uc;
    EXPECT_OK(getsockopt(l, SOL_SOCKET, SO_PEERCRED, &uc, &ul));
    EXPECT_EQ(uc.pid, getpid());
    ul = sizeof uc;
    EXPECT_OK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &ul));
    EXPECT_EQ(uc.pid, getpid());
    EXPECT_EQ(uc.uid, geteuid());
    ul = sizeof uc;
    EXPECT_OK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &uc, &ul));
    EXPECT_EQ(uc.pid, getpid());
    EXPECT_EQ(uc.gid, getegid());
    char buf[16];
    EXPECT_EQ(write(c, "hello", 5), 5);
    EXPECT_EQ(read(s, buf, sizeof buf), 5);
    EXPECT_MEMEQ(buf, "hello", 5);
    EXPECT_EQ(send(s, "back", 4, 0), 4);
    /* Stream reads report the sender's name too (none for the client). */
    gl = sizeof got;
    EXPECT_EQ(recvfrom(c, buf, sizeof buf, 0, (struct sockaddr *)&got, &gl), 4);
    EXPECT_EQ(gl, len);
    EXPECT_STREQ(got.sun_path, a.sun_path);
    EXPECT_EQ(send(c, "fwd", 3, 0), 3);
    gl = sizeof got;
    EXPECT_EQ(recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&got, &gl), 3);
    EXPECT_EQ(gl, 0);
    /* Unconnected stream sockets poll hung up and writable. */
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_EQ(revents(u, POLLIN | POLLOUT), POLLOUT | POLLHUP);
    close(u);
    /* sendto on a connected stream socket. */
    EXPECT_ERRNO(sendto(c, "x", 1, 0, (struct sockaddr *)&a, len), EISCONN);
    /* Connecting needs write permission on the socket file. */
    EXPECT_OK(chmod(tmpdir(), 0711));
    EXPECT_OK(chmod(a.sun_path, 0755));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
            _exit(0);
        _exit(connect_to(SOCK_STREAM, 0, "stream") < 0 && errno == EACCES ? 0 : 1);
    }
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    EXPECT_OK(chmod(tmpdir(), 0700));
    /* Unlinking the name: no new connections, the old one lives. */
    EXPECT_OK(unlink(a.sun_path));
    EXPECT_ERRNO(connect_to(SOCK_STREAM, 0, "stream"), ENOENT);
    EXPECT_EQ(write(c, "more", 4), 4);
    EXPECT_EQ(read(s, buf, sizeof buf), 4);
    /* shutdown: EOF for the reader, EPIPE for the writer. */
    EXPECT_OK(shutdown(c, SHUT_WR));
    EXPECT_EQ(read(s, buf, sizeof buf), 0);
    EXPECT_ERRNO(send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    close(s);
    EXPECT_EQ(read(c, buf, sizeof buf), 0);
    EXPECT_TRUE(revents(c, POLLIN) & POLLHUP);
    close(c);
    close(l);
}

TEST(seqpacket_keeps_boundaries)
{
    int l = listener(SOCK_SEQPACKET, "seq", 1);
    ASSERT_GE(l, 0);
    /* A named client: accept reports its name. */
    socklen_t cl;
    struct sockaddr_un ca = abs_addr("seqclient", &cl), sa;
    socklen_t sl;
    struct sockaddr_un la = path_addr("seq", &sl);
    int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    ASSERT_OK(bind(c, (struct sockaddr *)&ca, cl));
    /* The accepted socket inherits the listener's SO_PASSCRED. */
    int on = 1;
    ASSERT_OK(setsockopt(l, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    ASSERT_OK(connect(c, (struct sockaddr *)&la, sl));
    socklen_t pl = sizeof sa;
    int s = accept(l, (struct sockaddr *)&sa, &pl);
    ASSERT_GE(s, 0);
    EXPECT_EQ(pl, cl);
    EXPECT_MEMEQ(sa.sun_path, ca.sun_path, cl - FAMLEN);
    EXPECT_EQ(sockopt_int(s, SO_PASSCRED), 1);
    EXPECT_EQ(send(c, "one", 3, 0), 3);
    EXPECT_EQ(send(c, "three", 5, 0), 5);
    char buf[16];
    EXPECT_EQ(recv(s, buf, sizeof buf, 0), 3);
    EXPECT_EQ(recv(s, buf, sizeof buf, 0), 5);
    /* A stream socket cannot connect to a seqpacket listener. */
    EXPECT_ERRNO(connect_to(SOCK_STREAM, 0, "seq"), EPROTOTYPE);
    close(c);
    EXPECT_EQ(recv(s, buf, sizeof buf, 0), 0);
    close(s);
    close(l);
    char p[128];
    snprintf(p, sizeof p, "%s/seq", tmpdir());
    unlink(p);
}

TEST(backlog_full)
{
    int l = listener(SOCK_STREAM, "backlog", 1);
    ASSERT_GE(l, 0);
    /* Linux queues backlog + 1 connections. */
    int c1 = connect_to(SOCK_STREAM, SOCK_NONBLOCK, "backlog");
    int c2 = connect_to(SOCK_STREAM, SOCK_NONBLOCK, "backlog");
    EXPECT_GE(c1, 0);
    EXPECT_GE(c2, 0);
    EXPECT_ERRNO(connect_to(SOCK_STREAM, SOCK_NONBLOCK, "backlog"), EAGAIN);
    /* A blocking connect waits until accept makes room. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        usleep(100000);
        int s = accept(l, NULL, NULL);
        _exit(s >= 0 ? 0 : 1);
    }
    int c3 = connect_to(SOCK_STREAM, 0, "backlog");
    EXPECT_GE(c3, 0);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    /* A listener shut down for reading takes no more connections. */
    int l2 = listener(SOCK_STREAM, "shutlisten", 1);
    ASSERT_GE(l2, 0);
    EXPECT_OK(shutdown(l2, SHUT_RD));
    EXPECT_ERRNO(connect_to(SOCK_STREAM, SOCK_NONBLOCK, "shutlisten"), ECONNREFUSED);
    close(l2);
    char p2[128];
    snprintf(p2, sizeof p2, "%s/shutlisten", tmpdir());
    unlink(p2);
    /* Closing the listener resets the connections never accepted. */
    close(l);
    char b;
    EXPECT_ERRNO(recv(c2, &b, 1, MSG_DONTWAIT), ECONNRESET);
    EXPECT_EQ(recv(c2, &b, 1, MSG_DONTWAIT), 0);
    EXPECT_ERRNO(send(c3, "x", 1, MSG_NOSIGNAL), EPIPE);
    EXPECT_TRUE(revents(c3, POLLOUT) & POLLHUP);
    /* The name is unbound: the file remains, nobody listens. */
    EXPECT_ERRNO(connect_to(SOCK_STREAM, 0, "backlog"), ECONNREFUSED);
    close(c1);
    close(c2);
    close(c3);
    char p[128];
    snprintf(p, sizeof p, "%s/backlog", tmpdir());
    unlink(p);
}

TEST(abstract_names_and_autobind)
{
    socklen_t len;
    struct sockaddr_un a = abs_addr("abs", &len);
    int s = socket(AF_UNIX, SOCK_STREAM, 0), t = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    ASSERT_GE(t, 0);
    ASSERT_OK(bind(s, (struct sockaddr *)&a, len));
    EXPECT_ERRNO(bind(t, (struct sockaddr *)&a, len), EADDRINUSE);
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    EXPECT_OK(getsockname(s, (struct sockaddr *)&got, &gl));
    EXPECT_EQ(gl, len);
    EXPECT_MEMEQ(got.sun_path, a.sun_path, len - FAMLEN);
    /* A prefix is another name. */
    EXPECT_OK(bind(t, (struct sockaddr *)&a, len - 1));
    close(t);
    ASSERT_OK(listen(s, 1));
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_OK(connect(c, (struct sockaddr *)&a, len));
    /* Autobind: five hex digits after a NUL. */
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT_OK(bind(d, (struct sockaddr *)&a, FAMLEN));
    gl = sizeof got;
    EXPECT_OK(getsockname(d, (struct sockaddr *)&got, &gl));
    EXPECT_EQ(gl, FAMLEN + 6);
    EXPECT_EQ(got.sun_path[0], 0);
    int hex = 1;
    for (int i = 1; i < 6; i++)
        hex &= !!strchr("0123456789abcdef", got.sun_path[i]);
    EXPECT_TRUE(hex);
    /* Autobinding a bound socket does nothing. */
    EXPECT_OK(bind(d, (struct sockaddr *)&a, FAMLEN));
    struct sockaddr_un again;
    socklen_t al = sizeof again;
    EXPECT_OK(getsockname(d, (struct sockaddr *)&again, &al));
    EXPECT_MEMEQ(again.sun_path, got.sun_path, 6);
    close(d);
    close(c);
    /* The name is free once its socket is closed. */
    close(s);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_ERRNO(connect(c, (struct sockaddr *)&a, len), ECONNREFUSED);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_OK(bind(s, (struct sockaddr *)&a, len));
    close(s);
    close(c);
}

TEST(dgram_names_and_peers)
{
    socklen_t la, lb;
    struct sockaddr_un a = path_addr("da", &la), b = path_addr("db", &lb);
    int x = socket(AF_UNIX, SOCK_DGRAM, 0), y = socket(AF_UNIX, SOCK_DGRAM, 0),
        z = socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT_OK(bind(x, (struct sockaddr *)&a, la));
    ASSERT_OK(bind(y, (struct sockaddr *)&b, lb));
    EXPECT_ERRNO(send(z, "x", 1, 0), ENOTCONN);
    /* recvfrom reports the sender: named, then unnamed. */
    EXPECT_EQ(sendto(y, "hi", 2, 0, (struct sockaddr *)&a, la), 2);
    EXPECT_EQ(sendto(z, "yo", 2, 0, (struct sockaddr *)&a, la), 2);
    char buf[8];
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    EXPECT_EQ(recvfrom(x, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 2);
    EXPECT_EQ(fl, lb);
    EXPECT_STREQ(from.sun_path, b.sun_path);
    fl = sizeof from;
    EXPECT_EQ(recvfrom(x, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 2);
    /* An unnamed sender has no address at all (unix_copy_addr). */
    EXPECT_EQ(fl, 0);
    /* Nobody there. */
    socklen_t ln, lab;
    struct sockaddr_un n = path_addr("nobody", &ln), ab = abs_addr("nobody", &lab);
    EXPECT_ERRNO(sendto(z, "x", 1, 0, (struct sockaddr *)&n, ln), ENOENT);
    ln = lab;
    EXPECT_ERRNO(sendto(z, "x", 1, 0, (struct sockaddr *)&ab, ln), ECONNREFUSED);
    EXPECT_ERRNO(connect(z, (struct sockaddr *)&ab, ln), ECONNREFUSED);
    /* A default peer. */
    ASSERT_OK(connect(y, (struct sockaddr *)&a, la));
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    EXPECT_OK(getpeername(y, (struct sockaddr *)&got, &gl));
    EXPECT_STREQ(got.sun_path, a.sun_path);
    EXPECT_EQ(send(y, "p", 1, 0), 1);
    EXPECT_EQ(recv(x, buf, sizeof buf, 0), 1);
    /* x connected to y takes datagrams from y only. */
    ASSERT_OK(connect(x, (struct sockaddr *)&b, lb));
    EXPECT_ERRNO(sendto(z, "x", 1, 0, (struct sockaddr *)&a, la), EPERM);
    EXPECT_ERRNO(connect(z, (struct sockaddr *)&a, la), EPERM);
    EXPECT_EQ(send(y, "q", 1, 0), 1);
    EXPECT_EQ(recv(x, buf, sizeof buf, 0), 1);
    /* AF_UNSPEC dissolves the association. */
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    EXPECT_OK(connect(x, &unspec, sizeof unspec));
    gl = sizeof got;
    EXPECT_ERRNO(getpeername(x, (struct sockaddr *)&got, &gl), ENOTCONN);
    EXPECT_EQ(sendto(z, "r", 1, 0, (struct sockaddr *)&a, la), 1);
    EXPECT_EQ(recv(x, buf, sizeof buf, 0), 1);
    /* The peer closes: ECONNREFUSED once, then no peer. */
    close(x);
    EXPECT_ERRNO(send(y, "x", 1, 0), ECONNREFUSED);
    EXPECT_ERRNO(send(y, "x", 1, 0), ENOTCONN);
    /* A datagram socket cannot reach a stream one. */
    int l = listener(SOCK_STREAM, "dstream", 1);
    socklen_t ls;
    struct sockaddr_un sa = path_addr("dstream", &ls);
    EXPECT_ERRNO(sendto(z, "x", 1, 0, (struct sockaddr *)&sa, ls), EPROTOTYPE);
    EXPECT_ERRNO(connect(z, (struct sockaddr *)&sa, ls), EPROTOTYPE);
    close(l);
    close(y);
    close(z);
    unlink(a.sun_path);
    unlink(b.sun_path);
    unlink(sa.sun_path);
}

TEST(dgram_queue_full)
{
    socklen_t la;
    struct sockaddr_un a = abs_addr("full", &la);
    int r = socket(AF_UNIX, SOCK_DGRAM, 0), s = socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT_OK(bind(r, (struct sockaddr *)&a, la));
    ASSERT_OK(connect(s, (struct sockaddr *)&a, la));
    int n = 0;
    int err = 0;
    while (n < 100000 && send(s, "m", 1, MSG_DONTWAIT) == 1)
        n++;
    err = errno;
    EXPECT_EQ(err, EAGAIN);
    EXPECT_GT(n, 0);
    EXPECT_EQ(revents(s, POLLOUT), 0);
    /* A blocking send waits until the receiver reads. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char b;
        usleep(100000);
        _exit(recv(r, &b, 1, 0) == 1 ? 0 : 1);
    }
    EXPECT_EQ(send(s, "m", 1, 0), 1);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    close(r);
    close(s);
}

static int recv_creds(int fd, struct ucred *uc, char *buf, int len)
{
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {buf, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    int n = recvmsg(fd, &m, 0);
    if (n < 0)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS)
        return -2;
    memcpy(uc, CMSG_DATA(c), sizeof *uc);
    return n;
}

TEST(passcred_and_scm_credentials)
{
    socklen_t la;
    struct sockaddr_un a = abs_addr("cred", &la);
    int r = socket(AF_UNIX, SOCK_DGRAM, 0), s = socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT_OK(bind(r, (struct sockaddr *)&a, la));
    int on = 1;
    ASSERT_OK(setsockopt(r, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    EXPECT_EQ(sockopt_int(r, SO_PASSCRED), 1);
    /* Without SCM_CREDENTIALS the sender's own arrive. */
    EXPECT_EQ(sendto(s, "a", 1, 0, (struct sockaddr *)&a, la), 1);
    struct ucred uc = {0};
    char buf[8];
    EXPECT_EQ(recv_creds(r, &uc, buf, sizeof buf), 1);
    EXPECT_EQ(uc.pid, getpid());
    EXPECT_EQ(uc.uid, geteuid());
    EXPECT_EQ(uc.gid, getegid());
    /* Explicit ones. */
    char ctl[CMSG_SPACE(sizeof(struct ucred))] = {0};
    struct ucred mine = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
    struct iovec iov = {"b", 1};
    struct msghdr m = {.msg_name = &a, .msg_namelen = la, .msg_iov = &iov,
                       .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof mine);
    memcpy(CMSG_DATA(c), &mine, sizeof mine);
    EXPECT_EQ(sendmsg(s, &m, 0), 1);
    memset(&uc, 0, sizeof uc);
    EXPECT_EQ(recv_creds(r, &uc, buf, sizeof buf), 1);
    EXPECT_EQ(uc.pid, getpid());
    EXPECT_EQ(uc.uid, getuid());
    /* A sender with SO_PASSCRED is autobound when it sends. */
    int p = socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT_OK(setsockopt(p, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    EXPECT_EQ(sendto(p, "c", 1, 0, (struct sockaddr *)&a, la), 1);
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    EXPECT_OK(getsockname(p, (struct sockaddr *)&got, &gl));
    EXPECT_EQ(gl, FAMLEN + 6);
    EXPECT_EQ(recv(r, buf, sizeof buf, 0), 1);
    close(p);
    /* Streams: the accepted socket asks for credentials. */
    int l = listener(SOCK_STREAM, "credstream", 1);
    ASSERT_GE(l, 0);
    int cl = connect_to(SOCK_STREAM, 0, "credstream");
    ASSERT_GE(cl, 0);
    int sv = accept(l, NULL, NULL);
    ASSERT_GE(sv, 0);
    ASSERT_OK(setsockopt(sv, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    EXPECT_EQ(write(cl, "xyz", 3), 3);
    memset(&uc, 0, sizeof uc);
    EXPECT_EQ(recv_creds(sv, &uc, buf, sizeof buf), 3);
    EXPECT_EQ(uc.pid, getpid());
    close(sv);
    close(cl);
    close(l);
    close(r);
    close(s);
    char path[128];
    snprintf(path, sizeof path, "%s/credstream", tmpdir());
    unlink(path);
}

/* The generic SOL_SOCKET flags (sock_setsockopt) are kept on AF_UNIX too:
 * socketserver sets SO_REUSEADDR on its UnixStreamServer. */
TEST(generic_socket_flags)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    int opts[] = {SO_REUSEADDR, SO_KEEPALIVE, SO_BROADCAST, SO_OOBINLINE, SO_DONTROUTE};
    for (unsigned i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        int v = -1;
        socklen_t len = sizeof v;
        EXPECT_OK(getsockopt(s, SOL_SOCKET, opts[i], &v, &len));
        EXPECT_EQ(v, 0);
        int on = 5;
        EXPECT_OK(setsockopt(s, SOL_SOCKET, opts[i], &on, sizeof on));
        len = sizeof v;
        EXPECT_OK(getsockopt(s, SOL_SOCKET, opts[i], &v, &len));
        EXPECT_EQ(v, 1);
        int off = 0;
        EXPECT_OK(setsockopt(s, SOL_SOCKET, opts[i], &off, sizeof off));
        len = sizeof v;
        EXPECT_OK(getsockopt(s, SOL_SOCKET, opts[i], &v, &len));
        EXPECT_EQ(v, 0);
    }
    close(s);
}

TEST(forked_client_server)
{
    int l = listener(SOCK_STREAM, "fork", 8);
    ASSERT_GE(l, 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int c = connect_to(SOCK_STREAM, 0, "fork");
        if (c < 0)
            _exit(1);
        struct ucred uc;
        socklen_t ul = sizeof uc;
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 || uc.pid != getppid())
            _exit(2);
        char buf[8];
        if (write(c, "ping", 4) != 4 || read(c, buf, sizeof buf) != 4 ||
            memcmp(buf, "pong", 4))
            _exit(3);
        _exit(0);
    }
    struct pollfd p = {.fd = l, .events = POLLIN};
    EXPECT_EQ(poll(&p, 1, 5000), 1);
    EXPECT_EQ(p.revents, POLLIN);
    int s = accept(l, NULL, NULL);
    ASSERT_GE(s, 0);
    struct ucred uc;
    socklen_t ul = sizeof uc;
    EXPECT_OK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &uc, &ul));
    EXPECT_EQ(uc.pid, pid);
    char buf[8];
    EXPECT_EQ(read(s, buf, sizeof buf), 4);
    EXPECT_MEMEQ(buf, "ping", 4);
    EXPECT_EQ(write(s, "pong", 4), 4);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    EXPECT_EQ(read(s, buf, sizeof buf), 0);
    close(s);
    close(l);
    char path[128];
    snprintf(path, sizeof path, "%s/fork", tmpdir());
    unlink(path);
}

/* Last (tests run in file order): removes the directory. */
TEST(zz_cleanup)
{
    if (dir[0])
        EXPECT_OK(rmdir(dir));
}

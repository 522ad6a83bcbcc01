/*
 * pipes_poll.c - pipes and readiness (issue 3): pipe/pipe2 flags, the 64 KiB
 * default capacity, F_GETPIPE_SZ/F_SETPIPE_SZ, non-blocking EAGAIN, EOF,
 * EPIPE, PIPE_BUF atomicity with two writer processes, FIONREAD, and
 * poll/ppoll/select/pselect6 on pipes (timeouts, POLLHUP, POLLERR,
 * POLLNVAL, EBADF, EINTR).
 *
 * An issue-3 program (see tests/tests/conformance.rs): it forks and uses
 * timers. Children never print and leave with _exit().
 */
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static int wait_for(pid_t pid)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? st : -1;
}

/* SIGPIPE ignored for the whole program: writes to broken pipes give EPIPE. */
__attribute__((constructor)) static void ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------ pipe2 */

TEST(pipe2_flags)
{
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(fcntl(p[0], F_GETFD), 0);
    EXPECT_EQ(fcntl(p[0], F_GETFL) & O_ACCMODE, O_RDONLY);
    EXPECT_EQ(fcntl(p[1], F_GETFL) & O_ACCMODE, O_WRONLY);
    EXPECT_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    close(p[0]);
    close(p[1]);

    ASSERT_OK(pipe2(p, O_CLOEXEC));
    EXPECT_EQ(fcntl(p[0], F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(fcntl(p[1], F_GETFD), FD_CLOEXEC);
    close(p[0]);
    close(p[1]);

    ASSERT_OK(pipe2(p, O_NONBLOCK));
    EXPECT_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    EXPECT_EQ(fcntl(p[1], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    EXPECT_EQ(fcntl(p[0], F_GETFD), 0);
    close(p[0]);
    close(p[1]);

    EXPECT_ERRNO(pipe2(p, O_RDWR), EINVAL);
    EXPECT_ERRNO(pipe2(p, 0x40000000), EINVAL);
    EXPECT_ERRNO(syscall(SYS_pipe2, (int *)8, 0), EFAULT);
}

TEST(pipe_wrong_direction_ebadf)
{
    int p[2];
    ASSERT_OK(pipe(p));
    char c = 'x';
    EXPECT_ERRNO(write(p[0], &c, 1), EBADF);
    EXPECT_ERRNO(read(p[1], &c, 1), EBADF);
    EXPECT_ERRNO(lseek(p[0], 0, SEEK_SET), ESPIPE);
    EXPECT_ERRNO(pread(p[0], &c, 1, 0), ESPIPE);
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------------ capacity */

TEST(pipe_capacity_default_64k)
{
    int p[2];
    ASSERT_OK(pipe2(p, O_NONBLOCK));
    EXPECT_EQ(fcntl(p[0], F_GETPIPE_SZ), 65536);
    EXPECT_EQ(fcntl(p[1], F_GETPIPE_SZ), 65536);
    static char buf[70000];
    memset(buf, 'a', sizeof buf);
    /* A large non-blocking write fills the pipe and stops there. */
    EXPECT_EQ(write(p[1], buf, sizeof buf), 65536);
    EXPECT_ERRNO(write(p[1], buf, 1), EAGAIN);
    int n = -1;
    EXPECT_OK(ioctl(p[0], FIONREAD, &n));
    EXPECT_EQ(n, 65536);
    /* Drain. */
    size_t total = 0;
    ssize_t r;
    while ((r = read(p[0], buf, sizeof buf)) > 0)
        total += r;
    int e = errno;
    EXPECT_EQ(r, -1);
    EXPECT_EQ(e, EAGAIN);
    EXPECT_EQ(total, 65536);
    close(p[0]);
    close(p[1]);
}

TEST(pipe_small_write_atomic_when_nearly_full)
{
    int p[2];
    ASSERT_OK(pipe2(p, O_NONBLOCK));
    static char buf[65536];
    memset(buf, 'b', sizeof buf);
    EXPECT_EQ(write(p[1], buf, 65536 - 100), 65536 - 100);
    /* <= PIPE_BUF bytes are written all at once or not at all. */
    EXPECT_ERRNO(write(p[1], buf, 200), EAGAIN);
    EXPECT_EQ(write(p[1], buf, 100), 100);
    EXPECT_ERRNO(write(p[1], buf, 1), EAGAIN);
    close(p[0]);
    close(p[1]);
}

TEST(pipe_setpipe_sz_rounding)
{
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(fcntl(p[1], F_SETPIPE_SZ, 1), 4096);
    EXPECT_EQ(fcntl(p[0], F_GETPIPE_SZ), 4096);
    EXPECT_EQ(fcntl(p[1], F_SETPIPE_SZ, 5000), 8192);
    EXPECT_EQ(fcntl(p[1], F_SETPIPE_SZ, 65537), 131072);
    EXPECT_EQ(fcntl(p[0], F_GETPIPE_SZ), 131072);
    EXPECT_EQ(fcntl(p[1], F_SETPIPE_SZ, 4096 * 3), 16384);
    /* Can't shrink below what it holds. */
    static char buf[12000];
    memset(buf, 'c', sizeof buf);
    EXPECT_EQ(write(p[1], buf, sizeof buf), (ssize_t)sizeof buf);
    EXPECT_ERRNO(fcntl(p[1], F_SETPIPE_SZ, 4096), EBUSY);
    EXPECT_EQ(fcntl(p[0], F_GETPIPE_SZ), 16384);
    EXPECT_ERRNO(fcntl(p[1], F_SETPIPE_SZ, -1), EINVAL);
    int fd = open("/etc/passwd", O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(fcntl(fd, F_GETPIPE_SZ), EBADF);
    close(fd);
    close(p[0]);
    close(p[1]);
}

TEST(pipe_nonblocking_empty_eagain_then_eof)
{
    int p[2];
    ASSERT_OK(pipe2(p, O_NONBLOCK));
    char c;
    EXPECT_ERRNO(read(p[0], &c, 1), EAGAIN);
    EXPECT_EQ(write(p[1], "hi", 2), 2);
    close(p[1]);
    char buf[8];
    EXPECT_EQ(read(p[0], buf, sizeof buf), 2);
    EXPECT_EQ(read(p[0], buf, sizeof buf), 0); /* EOF even when non-blocking */
    close(p[0]);
}

TEST(pipe_eof_and_epipe)
{
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(write(p[1], "abc", 3), 3);
    close(p[1]);
    char buf[8];
    EXPECT_EQ(read(p[0], buf, 2), 2);
    EXPECT_EQ(read(p[0], buf, 8), 1);
    EXPECT_EQ(read(p[0], buf, 8), 0);
    close(p[0]);

    ASSERT_OK(pipe(p));
    close(p[0]);
    EXPECT_ERRNO(write(p[1], "x", 1), EPIPE);
    EXPECT_EQ(write(p[1], "", 0), 0);
    close(p[1]);
}

TEST(pipe_blocking_transfer_between_processes)
{
    int p[2];
    ASSERT_OK(pipe(p));
    enum { TOTAL = 1 << 20 };
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(p[0]);
        static char buf[9000];
        size_t sent = 0;
        unsigned char v = 0;
        while (sent < TOTAL) {
            size_t n = TOTAL - sent < sizeof buf ? TOTAL - sent : sizeof buf;
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)v++;
            ssize_t w = write(p[1], buf, n);
            if (w != (ssize_t)n) /* blocking writes are complete */
                _exit(1);
            sent += n;
        }
        _exit(0);
    }
    close(p[1]);
    static char buf[7777];
    size_t got = 0;
    unsigned char v = 0;
    int bad = 0;
    ssize_t r;
    while ((r = read(p[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            if ((unsigned char)buf[i] != v++)
                bad++;
        got += r;
    }
    EXPECT_EQ(r, 0);
    EXPECT_EQ(got, TOTAL);
    EXPECT_EQ(bad, 0);
    close(p[0]);
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(pipe_buf_atomic_two_writers)
{
    enum { REC = PIPE_BUF, NREC = 200 };
    EXPECT_EQ(PIPE_BUF, 4096);
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        ASSERT_GE(kids[k], 0);
        if (kids[k] == 0) {
            close(p[0]);
            static char rec[REC];
            memset(rec, k ? 'B' : 'A', sizeof rec);
            for (int i = 0; i < NREC; i++)
                if (write(p[1], rec, REC) != REC)
                    _exit(1);
            _exit(0);
        }
    }
    close(p[1]);
    static char stream[2 * NREC * REC];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof stream && (r = read(p[0], stream + got, sizeof stream - got)) > 0)
        got += r;
    EXPECT_EQ(got, sizeof stream);
    int mixed = 0, na = 0, nb = 0;
    for (size_t off = 0; off + REC <= got; off += REC) {
        char first = stream[off];
        for (size_t i = 1; i < REC; i++)
            if (stream[off + i] != first) {
                mixed++;
                break;
            }
        if (first == 'A')
            na++;
        else if (first == 'B')
            nb++;
    }
    EXPECT_EQ(mixed, 0);
    EXPECT_EQ(na, NREC);
    EXPECT_EQ(nb, NREC);
    close(p[0]);
    for (int k = 0; k < 2; k++) {
        int st = wait_for(kids[k]);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

/* ------------------------------------------------------------ poll */

TEST(poll_pipe_states)
{
    int p[2];
    ASSERT_OK(pipe(p));
    struct pollfd fds[2] = {{p[0], POLLIN, -1}, {p[1], POLLOUT, -1}};
    EXPECT_EQ(poll(fds, 2, 0), 1);
    EXPECT_EQ(fds[0].revents, 0);
    EXPECT_EQ(fds[1].revents, POLLOUT);

    EXPECT_EQ(write(p[1], "x", 1), 1);
    EXPECT_EQ(poll(fds, 2, 0), 2);
    EXPECT_EQ(fds[0].revents, POLLIN);

    /* Writer closed with data left: POLLIN|POLLHUP; drained: POLLHUP. */
    close(p[1]);
    EXPECT_EQ(poll(fds, 1, 0), 1);
    EXPECT_EQ(fds[0].revents, POLLIN | POLLHUP);
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    EXPECT_EQ(poll(fds, 1, 0), 1);
    EXPECT_EQ(fds[0].revents, POLLHUP);
    /* POLLHUP is reported even if not requested. */
    fds[0].events = 0;
    EXPECT_EQ(poll(fds, 1, 0), 1);
    EXPECT_EQ(fds[0].revents, POLLHUP);
    close(p[0]);

    /* Reader closed: the writer sees POLLOUT|POLLERR. */
    ASSERT_OK(pipe(p));
    close(p[0]);
    struct pollfd w = {p[1], POLLOUT, 0};
    EXPECT_EQ(poll(&w, 1, 0), 1);
    EXPECT_EQ(w.revents, POLLOUT | POLLERR);
    w.events = 0;
    EXPECT_EQ(poll(&w, 1, 0), 1);
    EXPECT_EQ(w.revents, POLLERR);
    close(p[1]);
}

TEST(poll_full_pipe_not_writable)
{
    int p[2];
    ASSERT_OK(pipe2(p, O_NONBLOCK));
    static char buf[65536];
    EXPECT_EQ(write(p[1], buf, sizeof buf), 65536);
    struct pollfd w = {p[1], POLLOUT, 0};
    EXPECT_EQ(poll(&w, 1, 0), 0);
    EXPECT_EQ(w.revents, 0);
    /* Reading a page makes room for PIPE_BUF again. */
    EXPECT_EQ(read(p[0], buf, 4096), 4096);
    EXPECT_EQ(poll(&w, 1, 0), 1);
    EXPECT_EQ(w.revents, POLLOUT);
    close(p[0]);
    close(p[1]);
}

TEST(poll_nval_and_negative_fd)
{
    int p[2];
    ASSERT_OK(pipe(p));
    close(p[0]);
    close(p[1]);
    struct pollfd fds[3] = {{p[0], POLLIN, -1}, {-1, POLLIN, -1}, {-5, POLLIN, -1}};
    EXPECT_EQ(poll(fds, 3, 0), 1);
    EXPECT_EQ(fds[0].revents, POLLNVAL);
    EXPECT_EQ(fds[1].revents, 0);
    EXPECT_EQ(fds[2].revents, 0);
    /* No fds, a timeout: a plain sleep. */
    long long t0 = mono_ms();
    EXPECT_EQ(poll(NULL, 0, 30), 0);
    EXPECT_GE(mono_ms() - t0, 29);
    EXPECT_ERRNO(syscall(SYS_poll, (struct pollfd *)8, 1, 0), EFAULT);
    EXPECT_ERRNO(syscall(SYS_poll, fds, 1 << 30, 0), EINVAL);
}

TEST(poll_timeout_elapses)
{
    int p[2];
    ASSERT_OK(pipe(p));
    struct pollfd r = {p[0], POLLIN, 0};
    long long t0 = mono_ms();
    EXPECT_EQ(poll(&r, 1, 50), 0);
    long long dt = mono_ms() - t0;
    EXPECT_GE(dt, 49);
    EXPECT_LT(dt, 5000);

    struct timespec ts = {0, 30 * 1000000};
    t0 = mono_ms();
    EXPECT_EQ(ppoll(&r, 1, &ts, NULL), 0);
    EXPECT_GE(mono_ms() - t0, 29);
    struct timespec bad = {0, -1};
    EXPECT_ERRNO(ppoll(&r, 1, &bad, NULL), EINVAL);
    close(p[0]);
    close(p[1]);
}

TEST(poll_wakes_on_write_from_child)
{
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        struct timespec t = {0, 20 * 1000000};
        nanosleep(&t, NULL);
        _exit(write(p[1], "w", 1) == 1 ? 0 : 1);
    }
    struct pollfd r = {p[0], POLLIN, 0};
    EXPECT_EQ(poll(&r, 1, 10000), 1);
    EXPECT_EQ(r.revents, POLLIN);
    int st = wait_for(pid);
    EXPECT_EQ(WEXITSTATUS(st), 0);
    close(p[0]);
    close(p[1]);
}

static volatile int alarm_count;

static void alarm_handler(int sig)
{
    (void)sig;
    alarm_count++;
}

static void arm_ms(int ms)
{
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

TEST(poll_select_eintr_even_with_sa_restart)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alarm_handler;
    sa.sa_flags = SA_RESTART;
    ASSERT_OK(sigaction(SIGALRM, &sa, NULL));
    int p[2];
    ASSERT_OK(pipe(p));
    struct pollfd r = {p[0], POLLIN, 0};
    alarm_count = 0;
    arm_ms(20);
    EXPECT_ERRNO(poll(&r, 1, 5000), EINTR);
    EXPECT_EQ(alarm_count, 1);
    arm_ms(20);
    EXPECT_ERRNO(poll(&r, 1, -1), EINTR);

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {5, 0};
    arm_ms(20);
    EXPECT_ERRNO(select(p[0] + 1, &rs, NULL, NULL, &tv), EINTR);
    EXPECT_EQ(alarm_count, 3);
    signal(SIGALRM, SIG_DFL);
    close(p[0]);
    close(p[1]);
}

static volatile int usr1_count;

static void usr1_handler(int sig)
{
    (void)sig;
    usr1_count++;
}

TEST(ppoll_pselect_sigmask)
{
    signal(SIGUSR1, usr1_handler);
    sigset_t blk, empty, cur;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR1);
    sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &blk, NULL);
    int p[2];
    ASSERT_OK(pipe(p));
    struct pollfd r = {p[0], POLLIN, 0};

    usr1_count = 0;
    raise(SIGUSR1); /* pending, delivered only inside ppoll */
    EXPECT_EQ(usr1_count, 0);
    EXPECT_ERRNO(ppoll(&r, 1, NULL, &empty), EINTR);
    EXPECT_EQ(usr1_count, 1);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    EXPECT_EQ(sigismember(&cur, SIGUSR1), 1);

    raise(SIGUSR1);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    EXPECT_ERRNO(pselect(p[0] + 1, &rs, NULL, NULL, NULL, &empty), EINTR);
    EXPECT_EQ(usr1_count, 2);

    /* With the signal blocked by the temporary mask, ppoll just times out. */
    raise(SIGUSR1);
    struct timespec ts = {0, 10 * 1000000};
    EXPECT_EQ(ppoll(&r, 1, &ts, &blk), 0);
    EXPECT_EQ(usr1_count, 2);
    sigprocmask(SIG_UNBLOCK, &blk, NULL);
    EXPECT_EQ(usr1_count, 3);
    signal(SIGUSR1, SIG_DFL);
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------------ select */

TEST(select_pipe_readiness)
{
    int p[2];
    ASSERT_OK(pipe(p));
    fd_set rs, ws;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_SET(p[0], &rs);
    FD_SET(p[1], &ws);
    struct timeval tv = {0, 0};
    EXPECT_EQ(select(p[1] + 1, &rs, &ws, NULL, &tv), 1);
    EXPECT_FALSE(FD_ISSET(p[0], &rs));
    EXPECT_TRUE(FD_ISSET(p[1], &ws));

    EXPECT_EQ(write(p[1], "x", 1), 1);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    tv.tv_sec = 1;
    tv.tv_usec = 0;
    EXPECT_EQ(select(p[0] + 1, &rs, NULL, NULL, &tv), 1);
    EXPECT_TRUE(FD_ISSET(p[0], &rs));
    /* Linux updates the timeout with the time left. */
    EXPECT_TRUE(tv.tv_sec == 0 || tv.tv_sec == 1);
    EXPECT_GT(tv.tv_sec * 1000000 + tv.tv_usec, 500000);

    /* EOF is readable. */
    char c;
    read(p[0], &c, 1);
    close(p[1]);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    tv.tv_sec = 0;
    EXPECT_EQ(select(p[0] + 1, &rs, NULL, NULL, &tv), 1);
    EXPECT_TRUE(FD_ISSET(p[0], &rs));
    close(p[0]);
}

TEST(select_timeout_and_errors)
{
    int p[2];
    ASSERT_OK(pipe(p));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 40000};
    long long t0 = mono_ms();
    EXPECT_EQ(select(p[0] + 1, &rs, NULL, NULL, &tv), 0);
    EXPECT_GE(mono_ms() - t0, 39);
    EXPECT_EQ(tv.tv_sec, 0);
    EXPECT_EQ(tv.tv_usec, 0);
    EXPECT_FALSE(FD_ISSET(p[0], &rs));

    struct timespec ts = {0, 20 * 1000000};
    FD_SET(p[0], &rs);
    t0 = mono_ms();
    EXPECT_EQ(pselect(p[0] + 1, &rs, NULL, NULL, &ts, NULL), 0);
    EXPECT_GE(mono_ms() - t0, 19);

    /* A closed fd in the set: EBADF. */
    int q[2];
    ASSERT_OK(pipe(q));
    close(q[0]);
    close(q[1]);
    FD_ZERO(&rs);
    FD_SET(q[0], &rs);
    tv.tv_sec = 0;
    tv.tv_usec = 0;
    EXPECT_ERRNO(select(q[0] + 1, &rs, NULL, NULL, &tv), EBADF);
    FD_ZERO(&rs);
    EXPECT_ERRNO(select(-1, &rs, NULL, NULL, &tv), EINVAL);
    struct timeval bad = {0, -1};
    EXPECT_ERRNO(select(1, NULL, NULL, NULL, &bad), EINVAL);
    /* nfds = 0: a sleep. */
    tv.tv_usec = 20000;
    t0 = mono_ms();
    EXPECT_EQ(select(0, NULL, NULL, NULL, &tv), 0);
    EXPECT_GE(mono_ms() - t0, 19);
    close(p[0]);
    close(p[1]);
}

/*
 * anonfd.c - eventfd, epoll, timerfd, signalfd, memfd_create, close_range and
 * preadv2/pwritev2: results and errnos as Linux gives them.
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
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(eventfd_counter_and_errors)
{
    int fd = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    uint64_t v = 4;
    EXPECT_EQ(write(fd, &v, 8), 8);
    EXPECT_EQ(read(fd, &v, 8), 8);
    EXPECT_EQ(v, 7);
    EXPECT_ERRNO(read(fd, &v, 8), EAGAIN);
    EXPECT_ERRNO(read(fd, &v, 4), EINVAL);
    v = UINT64_MAX;
    EXPECT_ERRNO(write(fd, &v, 8), EINVAL);
    EXPECT_ERRNO(eventfd(0, 0x12345), EINVAL);
    close(fd);
    fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(read(fd, &v, 8), 8);
    EXPECT_EQ(v, 1);
    EXPECT_EQ(read(fd, &v, 8), 8);
    EXPECT_ERRNO(read(fd, &v, 8), EAGAIN);
    close(fd);
}

TEST(epoll_level_oneshot_and_errors)
{
    EXPECT_ERRNO(epoll_create(0), EINVAL);
    EXPECT_ERRNO(epoll_create1(0x1), EINVAL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    int p[2];
    ASSERT_OK(pipe(p));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234};
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    EXPECT_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
    EXPECT_ERRNO(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev), ENOENT);
    EXPECT_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    EXPECT_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev), EBADF);
    int reg = open("/etc/passwd", O_RDONLY);
    EXPECT_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev), EPERM);
    close(reg);
    struct epoll_event out[4];
    EXPECT_ERRNO(epoll_wait(ep, out, 0, 0), EINVAL);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    EXPECT_EQ(write(p[1], "x", 1), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 100), 1);
    EXPECT_EQ(out[0].data.u64, 0x1234);
    EXPECT_EQ(out[0].events, EPOLLIN);
    /* Level-triggered: still ready. */
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    ev.events = EPOLLIN | EPOLLONESHOT;
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    close(p[1]);
    ev.events = EPOLLIN;
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(out[0].events, EPOLLIN | EPOLLHUP);
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    close(p[0]);
    close(ep);
}

/* Deleting the entry an earlier wait reported last (asyncio closing one pipe
 * of a subprocess) must not hide the entry after it. */
TEST(epoll_del_last_reported)
{
    int ep = epoll_create1(0);
    ASSERT_GE(ep, 0);
    int a[2], b[2];
    ASSERT_OK(pipe(a));
    ASSERT_OK(pipe(b));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev));
    ev.data.u64 = 2;
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &ev));
    EXPECT_EQ(write(a[1], "x", 1), 1);
    struct epoll_event out[4];
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(out[0].data.u64, 1);
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_DEL, a[0], NULL));
    EXPECT_EQ(write(b[1], "y", 1), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(out[0].data.u64, 2);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    close(ep);
}

TEST(timerfd_expirations)
{
    EXPECT_ERRNO(timerfd_create(12345, 0), EINVAL);
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    ASSERT_GE(fd, 0);
    uint64_t n;
    EXPECT_ERRNO(read(fd, &n, 8), EAGAIN);
    struct itimerspec its = {.it_value = {0, 10 * 1000 * 1000}};
    EXPECT_OK(timerfd_settime(fd, 0, &its, NULL));
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    EXPECT_EQ(poll(&pfd, 1, 2000), 1);
    EXPECT_EQ(read(fd, &n, 8), 8);
    EXPECT_EQ(n, 1);
    struct itimerspec cur;
    EXPECT_OK(timerfd_gettime(fd, &cur));
    EXPECT_EQ(cur.it_value.tv_sec, 0);
    EXPECT_EQ(cur.it_value.tv_nsec, 0);
    its.it_value.tv_nsec = 1000000000;
    EXPECT_ERRNO(timerfd_settime(fd, 0, &its, NULL), EINVAL);
    close(fd);
}

TEST(signalfd_reads_pending_signal)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    ASSERT_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    int fd = signalfd(-1, &set, SFD_NONBLOCK);
    ASSERT_GE(fd, 0);
    struct signalfd_siginfo si;
    EXPECT_ERRNO(read(fd, &si, sizeof si), EAGAIN);
    ASSERT_OK(kill(getpid(), SIGUSR2));
    EXPECT_EQ(read(fd, &si, sizeof si), (ssize_t)sizeof si);
    EXPECT_EQ(si.ssi_signo, SIGUSR2);
    EXPECT_EQ(si.ssi_pid, (uint32_t)getpid());
    EXPECT_ERRNO(read(fd, &si, 8), EINVAL);
    close(fd);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

TEST(memfd_read_write_mmap)
{
    int fd = memfd_create("cf", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(write(fd, "hello", 5), 5);
    EXPECT_OK(ftruncate(fd, 4096));
    char *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    EXPECT_EQ(memcmp(m, "hello", 5), 0);
    EXPECT_EQ(m[4095], 0);
    munmap(m, 4096);
    char name[300];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = 0;
    EXPECT_ERRNO(memfd_create(name, 0), EINVAL);
    EXPECT_ERRNO(memfd_create("x", 0x1000), EINVAL);
    close(fd);
}

TEST(close_range_and_preadv2)
{
    int a = open("/etc/passwd", O_RDONLY);
    ASSERT_GE(a, 0);
    int b = dup(a), c = dup(a);
    EXPECT_OK(syscall(SYS_close_range, b, c, 0));
    EXPECT_ERRNO(fcntl(b, F_GETFD), EBADF);
    EXPECT_ERRNO(fcntl(c, F_GETFD), EBADF);
    EXPECT_OK(syscall(SYS_close_range, a, a, 4 /* CLOSE_RANGE_CLOEXEC */));
    EXPECT_EQ(fcntl(a, F_GETFD), FD_CLOEXEC);
    EXPECT_ERRNO(syscall(SYS_close_range, 5, 3, 0), EINVAL);
    EXPECT_ERRNO(syscall(SYS_close_range, 3, 5, 0x100), EINVAL);
    char buf[5] = {0};
    struct iovec v = {buf, 4};
    EXPECT_EQ(preadv2(a, &v, 1, 0, 0), 4);
    EXPECT_EQ(lseek(a, 0, SEEK_CUR), 0);
    EXPECT_EQ(preadv2(a, &v, 1, -1, 0), 4);
    EXPECT_EQ(lseek(a, 0, SEEK_CUR), 4);
    EXPECT_ERRNO(preadv2(a, &v, 1, 0, 0x1000), EOPNOTSUPP);
    close(a);
}

TEST(epoll_edge_triggered)
{
    int p[2];
    ASSERT_OK(pipe(p));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 42};
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    struct epoll_event out[4];
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    EXPECT_EQ(write(p[1], "a", 1), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(out[0].data.u64, 42);
    /* Still readable, but no new edge: not reported again. */
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    EXPECT_EQ(epoll_wait(ep, out, 4, 20), 0);
    /* New data is a new edge. */
    EXPECT_EQ(write(p[1], "b", 1), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    /* EPOLL_CTL_MOD re-arms: the ready pipe is reported once more. */
    ev.data.u64 = 43;
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(out[0].data.u64, 43);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    /* Drained: nothing; a write from another process wakes a blocked wait. */
    char buf[8];
    EXPECT_EQ(read(p[0], buf, sizeof buf), 2);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        usleep(50000);
        write(p[1], "c", 1);
        _exit(0);
    }
    EXPECT_EQ(epoll_wait(ep, out, 4, 5000), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    waitpid(pid, NULL, 0);
    /* A level-triggered watch on the write end keeps reporting. */
    struct epoll_event wev = {.events = EPOLLOUT, .data.u64 = 7};
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &wev));
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    close(ep);
    close(p[0]);
    close(p[1]);
}

TEST(epoll_edge_triggered_eventfd)
{
    int efd = eventfd(0, EFD_NONBLOCK);
    ASSERT_GE(efd, 0);
    int ep = epoll_create1(0);
    ASSERT_GE(ep, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = 1};
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
    struct epoll_event out[2];
    /* Writable from the start: one report. */
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 1);
    EXPECT_EQ(out[0].events, EPOLLOUT);
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 0);
    uint64_t one = 1;
    EXPECT_EQ(write(efd, &one, 8), 8);
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 1);
    EXPECT_EQ(out[0].events, EPOLLIN | EPOLLOUT);
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 0);
    close(ep);
    close(efd);
}

TEST(signalfd_wakes_blocked_waiters)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGALRM);
    ASSERT_OK(sigprocmask(SIG_BLOCK, &set, &old));
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    ASSERT_GE(sfd, 0);
    int ep = epoll_create1(0);
    ASSERT_GE(ep, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 5};
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev));
    pid_t parent = getpid();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        usleep(30000);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    struct epoll_event out;
    EXPECT_EQ(epoll_wait(ep, &out, 1, 5000), 1);
    struct signalfd_siginfo si;
    EXPECT_EQ(read(sfd, &si, sizeof si), (ssize_t)sizeof si);
    EXPECT_EQ(si.ssi_signo, SIGUSR1);
    EXPECT_EQ((pid_t)si.ssi_pid, pid);
    waitpid(pid, NULL, 0);
    /* A blocking read, woken by a timer's signal. */
    struct itimerval it = {.it_value = {.tv_usec = 20000}};
    ASSERT_OK(setitimer(ITIMER_REAL, &it, NULL));
    EXPECT_EQ(read(sfd, &si, sizeof si), (ssize_t)sizeof si);
    EXPECT_EQ(si.ssi_signo, SIGALRM);
    close(ep);
    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* A watched file closed without EPOLL_CTL_DEL drops out of the interest list
 * (nginx closes its connections so). After the last reported entry vanishes
 * that way, every other watched file is still reported: none is skipped by
 * the round-robin order of later waits. */
TEST(epoll_closed_without_del_skips_nothing)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    int a[2], b[2], c[2];
    ASSERT_OK(pipe(a));
    ASSERT_OK(pipe(b));
    ASSERT_OK(pipe(c));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev));
    ev.data.u64 = 2;
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &ev));
    ev.data.u64 = 3;
    ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, c[0], &ev));
    struct epoll_event out[4];
    /* `a` is reported, then closed without EPOLL_CTL_DEL. */
    EXPECT_EQ(write(a[1], "x", 1), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(out[0].data.u64, 1);
    close(a[0]);
    close(a[1]);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    /* Each other file, ready alone, is reported. */
    for (int i = 0; i < 2; i++) {
        int *p = i == 0 ? b : c;
        char ch;
        EXPECT_EQ(write(p[1], "y", 1), 1);
        EXPECT_EQ(epoll_wait(ep, out, 4, 100), 1);
        EXPECT_EQ(out[0].data.u64, (uint64_t)(2 + i));
        EXPECT_EQ(read(p[0], &ch, 1), 1);
        EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    }
    /* Same with a watched file that vanishes while it is the last reported
     * one and a file registered after it is the next in line. */
    EXPECT_EQ(write(b[1], "y", 1), 1);
    EXPECT_EQ(epoll_wait(ep, out, 1, 0), 1);
    EXPECT_EQ(out[0].data.u64, 2);
    close(b[0]);
    close(b[1]);
    EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
    EXPECT_EQ(write(c[1], "y", 1), 1);
    EXPECT_EQ(epoll_wait(ep, out, 4, 100), 1);
    close(c[0]);
    close(c[1]);
    close(ep);
}

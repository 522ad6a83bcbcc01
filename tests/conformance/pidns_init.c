/*
 * pidns_init.c - the init of a PID namespace (Linux's SIGNAL_UNKILLABLE):
 * signals it has no handler for are dropped when they come from inside the
 * namespace (itself, its children, timers, SIGPIPE), SIGKILL and SIGSTOP
 * included; a handler gets them (si_pid is the sender's); SIG_IGN stays
 * ignored; a blocked signal is queued and dropped when unblocked if it still
 * has no handler.
 *
 * The program must be PID 1: natively it runs under `unshare --pid --fork
 * --mount-proc` (see tests/tests/conformance.rs); under `runsc do` it is the
 * sandbox's init. Children never print and leave with _exit().
 */
#include "harness.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static int wait_for(pid_t pid)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    if (r != pid)
        return -1;
    return st;
}

static void set_handler(int sig, void (*h)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigaction(sig, &sa, NULL);
}

static sigset_t pending_set(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigpending(&s);
    return s;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Runs fn in a child; returns its wait status. */
static int in_child(void (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    if (pid < 0)
        return -1;
    return wait_for(pid);
}

TEST(is_pid_1)
{
    EXPECT_EQ(getpid(), 1);
    EXPECT_EQ(getppid(), 0);
}

TEST(self_signals_without_handler_dropped)
{
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGQUIT, SIGSEGV, SIGKILL, SIGSTOP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (sigs[i] != SIGKILL && sigs[i] != SIGSTOP)
            set_handler(sigs[i], SIG_DFL);
        EXPECT_OK(kill(getpid(), sigs[i]));
        EXPECT_OK(kill(1, sigs[i]));
        EXPECT_OK(syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sigs[i]));
        EXPECT_OK(raise(sigs[i]));
    }
    sigset_t p = pending_set();
    EXPECT_FALSE(sigismember(&p, SIGTERM));
    EXPECT_FALSE(sigismember(&p, SIGKILL));
}

static void child_kills_init(void)
{
    int sigs[] = {SIGTERM, SIGINT, SIGUSR2, SIGALRM, SIGKILL, SIGSTOP, SIGTSTP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (kill(1, sigs[i]) != 0)
            _exit(10 + i);
        if (syscall(SYS_tgkill, 1, 1, sigs[i]) != 0)
            _exit(30 + i);
        if (syscall(SYS_tkill, 1, sigs[i]) != 0)
            _exit(50 + i);
    }
    _exit(0);
}

TEST(child_signals_without_handler_dropped)
{
    set_handler(SIGTERM, SIG_DFL);
    set_handler(SIGINT, SIG_DFL);
    set_handler(SIGUSR2, SIG_DFL);
    set_handler(SIGALRM, SIG_DFL);
    set_handler(SIGTSTP, SIG_DFL);
    int st = in_child(child_kills_init);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    sleep_ms(20);
    sigset_t p = pending_set();
    EXPECT_FALSE(sigismember(&p, SIGTERM));
    EXPECT_FALSE(sigismember(&p, SIGINT));
}

static void child_sigqueue_init(void)
{
    union sigval v = {.sival_int = 7};
    if (sigqueue(1, SIGTERM, v) != 0)
        _exit(1);
    _exit(0);
}

static void child_pidfd_kill_init(void)
{
    int fd = syscall(SYS_pidfd_open, 1, 0);
    if (fd < 0)
        _exit(errno == ENOSYS ? 0 : 1);
    if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) != 0)
        _exit(2);
    if (syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0) != 0)
        _exit(3);
    _exit(0);
}

TEST(sigqueue_and_pidfd_without_handler_dropped)
{
    set_handler(SIGTERM, SIG_DFL);
    int st = in_child(child_sigqueue_init);
    EXPECT_EQ(st, 0);
    st = in_child(child_pidfd_kill_init);
    EXPECT_EQ(st, 0);
    sleep_ms(20);
    sigset_t p = pending_set();
    EXPECT_FALSE(sigismember(&p, SIGTERM));
}

static volatile sig_atomic_t got_sig, got_pid, got_code, got_value;

static void on_info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_pid = si->si_pid;
    got_code = si->si_code;
    got_value = si->si_value.sival_int;
}

static void child_term_init(void)
{
    _exit(kill(1, SIGTERM) == 0 ? 0 : 1);
}

TEST(handler_gets_signal_with_sender_pid)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    ASSERT_OK(sigaction(SIGTERM, &sa, NULL));
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    ASSERT_OK(sigprocmask(SIG_BLOCK, &block, &old));
    got_sig = got_pid = got_code = got_value = 0;

    pid_t pid = fork();
    if (pid == 0)
        child_term_init();
    ASSERT_GT(pid, 0);
    EXPECT_EQ(wait_for(pid), 0);
    sigset_t p = pending_set();
    EXPECT_TRUE(sigismember(&p, SIGTERM));
    sigsuspend(&old);
    EXPECT_EQ(got_sig, SIGTERM);
    EXPECT_EQ(got_pid, pid);
    EXPECT_EQ(got_code, SI_USER);

    /* sigqueue: SI_QUEUE with the value. */
    got_sig = got_pid = got_code = got_value = 0;
    pid = fork();
    if (pid == 0)
        child_sigqueue_init();
    ASSERT_GT(pid, 0);
    EXPECT_EQ(wait_for(pid), 0);
    sigsuspend(&old);
    EXPECT_EQ(got_sig, SIGTERM);
    EXPECT_EQ(got_pid, pid);
    EXPECT_EQ(got_code, SI_QUEUE);
    EXPECT_EQ(got_value, 7);

    /* Unblocked: the handler runs as the signal arrives. */
    ASSERT_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    got_sig = 0;
    EXPECT_OK(kill(1, SIGTERM));
    EXPECT_EQ(got_sig, SIGTERM);
    EXPECT_EQ(got_pid, 1);
    set_handler(SIGTERM, SIG_DFL);
}

TEST(blocked_signal_queued_then_dropped_without_handler)
{
    set_handler(SIGTERM, SIG_DFL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    ASSERT_OK(sigprocmask(SIG_BLOCK, &block, &old));
    int st = in_child(child_term_init);
    EXPECT_EQ(st, 0);
    sigset_t p = pending_set();
    EXPECT_TRUE(sigismember(&p, SIGTERM));
    /* Unblocking with SIG_DFL: init drops it instead of dying. */
    ASSERT_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    p = pending_set();
    EXPECT_FALSE(sigismember(&p, SIGTERM));
}

static void child_usr1_init(void)
{
    _exit(kill(1, SIGUSR1) == 0 ? 0 : 1);
}

TEST(sig_ign_stays_ignored)
{
    set_handler(SIGUSR1, SIG_IGN);
    EXPECT_EQ(in_child(child_usr1_init), 0);
    EXPECT_OK(raise(SIGUSR1));
    sigset_t p = pending_set();
    EXPECT_FALSE(sigismember(&p, SIGUSR1));
    set_handler(SIGUSR1, SIG_DFL);
}

TEST(kernel_signals_without_handler_dropped)
{
    /* SIGALRM from an interval timer. */
    set_handler(SIGALRM, SIG_DFL);
    struct itimerval it = {{0, 0}, {0, 10000}};
    ASSERT_OK(setitimer(ITIMER_REAL, &it, NULL));
    sleep_ms(50);
    sigset_t p = pending_set();
    EXPECT_FALSE(sigismember(&p, SIGALRM));

    /* SIGPIPE from a write to a pipe without readers: EPIPE only. */
    set_handler(SIGPIPE, SIG_DFL);
    int fds[2];
    ASSERT_OK(pipe(fds));
    close(fds[0]);
    EXPECT_ERRNO(write(fds[1], "x", 1), EPIPE);
    close(fds[1]);
    p = pending_set();
    EXPECT_FALSE(sigismember(&p, SIGPIPE));
}

static volatile sig_atomic_t chld;

static void on_chld(int sig)
{
    (void)sig;
    chld = 1;
}

TEST(children_remain_killable)
{
    chld = 0;
    set_handler(SIGCHLD, on_chld);
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    ASSERT_GT(pid, 0);
    EXPECT_OK(kill(pid, SIGTERM));
    int st = wait_for(pid);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGTERM);
    EXPECT_EQ(chld, 1);
    set_handler(SIGCHLD, SIG_DFL);
}

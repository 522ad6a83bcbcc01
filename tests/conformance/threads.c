/*
 * threads.c - threads (issue 3): pthread create/join/detach/cancel, mutex
 * and condvar, gettid/getpid, TLS, raw clone with CLONE_CHILD_CLEARTID,
 * tgkill to a given thread, per-thread signal masks and process-directed
 * signal routing, exit_group and execve from a non-main thread, and the main
 * thread leaving with pthread_exit while others run.
 *
 * An issue-3 program (see tests/tests/conformance.rs). Whole-process exits are
 * done in forked children; children never print and leave with _exit().
 */
#include "harness.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

__attribute__((constructor)) static void no_core_files(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
}

static pid_t my_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
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

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ mutex, condvar */

enum { NTHREADS = 16, TOTAL = 100000 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go, started;
static long counter;
static pid_t tids[NTHREADS];
static pid_t pids_seen[NTHREADS];

static void *counter_thread(void *arg)
{
    int idx = (int)(intptr_t)arg;
    tids[idx] = my_tid();
    pids_seen[idx] = getpid();
    pthread_mutex_lock(&mu);
    started++;
    pthread_cond_broadcast(&cv);
    while (!go)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < TOTAL / NTHREADS; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }
    return (void *)(intptr_t)(idx * 3 + 1);
}

TEST(mutex_condvar_counter)
{
    pthread_t th[NTHREADS];
    counter = 0;
    go = started = 0;
    for (int i = 0; i < NTHREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, counter_thread, (void *)(intptr_t)i), 0);
    pthread_mutex_lock(&mu);
    while (started < NTHREADS)
        pthread_cond_wait(&cv, &mu);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < NTHREADS; i++) {
        void *ret = NULL;
        EXPECT_EQ(pthread_join(th[i], &ret), 0);
        EXPECT_EQ((intptr_t)ret, i * 3 + 1);
    }
    EXPECT_EQ(counter, TOTAL);
    /* Distinct tids, none equal to the main thread's, same pid everywhere. */
    pid_t main_tid = my_tid();
    EXPECT_EQ(main_tid, getpid());
    for (int i = 0; i < NTHREADS; i++) {
        EXPECT_EQ(pids_seen[i], getpid());
        EXPECT_NE(tids[i], main_tid);
        EXPECT_GT(tids[i], 0);
        for (int j = 0; j < i; j++)
            EXPECT_NE(tids[i], tids[j]);
    }
}

static __thread int tls_var = 5;

static void *tls_thread(void *arg)
{
    (void)arg;
    int before = tls_var;
    tls_var = 77;
    return (void *)(intptr_t)before;
}

TEST(thread_local_storage)
{
    tls_var = 9;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, tls_thread, NULL), 0);
    void *ret;
    EXPECT_EQ(pthread_join(t, &ret), 0);
    EXPECT_EQ((intptr_t)ret, 5); /* a fresh copy of the initial value */
    EXPECT_EQ(tls_var, 9);       /* ours untouched */
}

static void *sleeper(void *arg)
{
    sleep_ms((int)(intptr_t)arg);
    return NULL;
}

TEST(join_errors_and_detach)
{
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, sleeper, (void *)(intptr_t)1), 0);
    EXPECT_EQ(pthread_join(t, NULL), 0);
    EXPECT_RET_ERR(pthread_join(pthread_self(), NULL), EDEADLK);
    /* Many short-lived detached threads. */
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 50; i++)
        EXPECT_EQ(pthread_create(&t, &a, sleeper, (void *)(intptr_t)0), 0);
    pthread_attr_destroy(&a);
    /* And many sequential joined ones (tids get recycled correctly). */
    for (int i = 0; i < 200; i++) {
        ASSERT_EQ(pthread_create(&t, NULL, sleeper, (void *)(intptr_t)0), 0);
        ASSERT_EQ(pthread_join(t, NULL), 0);
    }
    sleep_ms(20);
}

static void *cancel_me(void *arg)
{
    (void)arg;
    for (;;)
        pause(); /* a cancellation point */
    return NULL;
}

TEST(pthread_cancel_in_pause)
{
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, cancel_me, NULL), 0);
    sleep_ms(10);
    EXPECT_EQ(pthread_cancel(t), 0);
    void *ret = NULL;
    EXPECT_EQ(pthread_join(t, &ret), 0);
    EXPECT_TRUE(ret == PTHREAD_CANCELED);
}

static pthread_barrier_t bar;
static atomic_int after_barrier;

static void *barrier_thread(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&bar);
    atomic_fetch_add(&after_barrier, 1);
    return NULL;
}

TEST(barrier)
{
    enum { N = 6 };
    pthread_t t[N];
    atomic_store(&after_barrier, 0);
    ASSERT_EQ(pthread_barrier_init(&bar, NULL, N + 1), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, barrier_thread, NULL), 0);
    sleep_ms(10);
    EXPECT_EQ(atomic_load(&after_barrier), 0);
    pthread_barrier_wait(&bar);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    EXPECT_EQ(atomic_load(&after_barrier), N);
    pthread_barrier_destroy(&bar);
}

/* ------------------------------------------------------------ raw clone */

static int raw_thread_fn(void *arg)
{
    /* No libc here: the thread shares the creator's TLS. */
    *(volatile int *)arg = 99;
    return 0; /* glibc's clone calls SYS_exit (this thread only) */
}

TEST(clone_child_cleartid_wakes)
{
    size_t sz = 128 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    ASSERT_TRUE(stack != MAP_FAILED);
    static volatile pid_t ctid;
    static volatile int touched;
    touched = 0;
    ctid = -1;
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    pid_t tid = clone(raw_thread_fn, stack + sz, flags, (void *)&touched,
                      (pid_t *)&ctid, NULL, (pid_t *)&ctid);
    ASSERT_GT(tid, 0);
    EXPECT_NE(tid, getpid());
    /* Wait for the kernel to clear ctid and wake us. */
    for (;;) {
        pid_t v = ctid;
        if (v == 0)
            break;
        long r = syscall(SYS_futex, &ctid, FUTEX_WAIT, v, NULL, NULL, 0);
        if (r != 0 && errno != EAGAIN && errno != EINTR) {
            FAIL("futex wait: errno %d", errno);
            break;
        }
    }
    EXPECT_EQ(ctid, 0);
    EXPECT_EQ(touched, 99);
    /* The thread is gone: tgkill finds nothing. */
    EXPECT_ERRNO(syscall(SYS_tgkill, getpid(), tid, 0), ESRCH);
    /* CLONE_THREAD children are not waitable. */
    EXPECT_ERRNO(waitpid(tid, NULL, __WALL | WNOHANG), ECHILD);
    munmap(stack, sz);
}

static int sta_dummy;
static volatile pid_t sta_tid;
static volatile long sta_ret;

static void *sta_thread(void *a)
{
    (void)a;
    long r = syscall(SYS_set_tid_address, &sta_dummy);
    sta_ret = r;
    sta_tid = my_tid();
    return NULL;
}

TEST(set_tid_address_returns_tid)
{
    pthread_t t;
    sta_tid = 0;
    sta_ret = -1;
    ASSERT_EQ(pthread_create(&t, NULL, sta_thread, NULL), 0);
    /* The thread's clear_child_tid now points at sta_dummy, so pthread_join
     * would never be woken: wait for the thread to vanish instead. */
    for (int i = 0; i < 5000; i++) {
        if (sta_tid != 0 && syscall(SYS_tgkill, getpid(), sta_tid, 0) != 0)
            break;
        sleep_ms(1);
    }
    EXPECT_EQ(sta_ret, sta_tid);
    EXPECT_ERRNO(syscall(SYS_tgkill, getpid(), sta_tid, 0), ESRCH);
    EXPECT_EQ(sta_dummy, 0);
    pthread_detach(t);
}

/* ------------------------------------------------------------ signals */

static volatile pid_t handled_by;
static volatile int handled_count;

static void record_tid_handler(int sig)
{
    (void)sig;
    handled_by = my_tid();
    handled_count++;
}

static volatile pid_t waiter_tid;
static volatile int waiter_stop;

static void *signal_waiter(void *arg)
{
    /* Optionally block SIGUSR1 in this thread. */
    if (arg) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &s, NULL);
    }
    waiter_tid = my_tid();
    while (!waiter_stop)
        pause();
    return NULL;
}

TEST(tgkill_targets_thread)
{
    signal(SIGUSR1, record_tid_handler);
    waiter_tid = 0;
    waiter_stop = 0;
    handled_count = 0;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, signal_waiter, NULL), 0);
    while (waiter_tid == 0)
        sleep_ms(1);
    EXPECT_OK(syscall(SYS_tgkill, getpid(), waiter_tid, SIGUSR1));
    for (int i = 0; i < 5000 && handled_count == 0; i++)
        sleep_ms(1);
    EXPECT_EQ(handled_count, 1);
    EXPECT_EQ(handled_by, waiter_tid);
    /* pthread_kill too. */
    handled_count = 0;
    EXPECT_EQ(pthread_kill(t, SIGUSR1), 0);
    for (int i = 0; i < 5000 && handled_count == 0; i++)
        sleep_ms(1);
    EXPECT_EQ(handled_by, waiter_tid);
    EXPECT_EQ(pthread_kill(t, 0), 0);
    waiter_stop = 1;
    pthread_kill(t, SIGUSR1);
    EXPECT_EQ(pthread_join(t, NULL), 0);
    signal(SIGUSR1, SIG_DFL);
}

static void *unblock_waiter(void *a)
{
    (void)a;
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    if (!sigismember(&m, SIGUSR1))
        return (void *)1; /* mask not inherited */
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &m, NULL);
    waiter_tid = my_tid();
    while (!waiter_stop)
        pause();
    return NULL;
}

TEST(process_signal_goes_to_unblocked_thread)
{
    signal(SIGUSR1, record_tid_handler);
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    waiter_tid = 0;
    waiter_stop = 0;
    handled_count = 0;
    pthread_t t;
    /* The new thread inherits our mask, so it unblocks SIGUSR1 itself. */
    ASSERT_EQ(pthread_create(&t, NULL, unblock_waiter, NULL), 0);
    while (waiter_tid == 0)
        sleep_ms(1);
    EXPECT_OK(kill(getpid(), SIGUSR1)); /* process-directed */
    for (int i = 0; i < 5000 && handled_count == 0; i++)
        sleep_ms(1);
    EXPECT_EQ(handled_count, 1);
    EXPECT_EQ(handled_by, waiter_tid);
    /* Our own mask is unchanged by the thread's. */
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    EXPECT_EQ(sigismember(&cur, SIGUSR1), 1);
    waiter_stop = 1;
    pthread_kill(t, SIGUSR1);
    void *ret = (void *)7;
    EXPECT_EQ(pthread_join(t, &ret), 0);
    EXPECT_TRUE(ret == NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR1, SIG_DFL);
}

TEST(thread_directed_signal_stays_with_thread)
{
    /* A signal sent to a thread that blocks it stays pending for that thread
     * only: the main thread's sigpending doesn't show it. */
    waiter_tid = 0;
    waiter_stop = 0;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, signal_waiter, (void *)1), 0);
    while (waiter_tid == 0)
        sleep_ms(1);
    EXPECT_OK(syscall(SYS_tgkill, getpid(), waiter_tid, SIGUSR1));
    sigset_t p;
    sigpending(&p);
    EXPECT_EQ(sigismember(&p, SIGUSR1), 0);
    waiter_stop = 1;
    signal(SIGUSR2, record_tid_handler);
    pthread_kill(t, SIGUSR2);
    EXPECT_EQ(pthread_join(t, NULL), 0);
    signal(SIGUSR2, SIG_DFL);
}

/* ------------------------------------------------------------ whole process */

static int exit_pipe[2];

static void *late_writer(void *arg)
{
    (void)arg;
    sleep_ms(50);
    write(exit_pipe[1], "L", 1);
    return NULL; /* last thread returning: exit status 0 */
}

TEST(main_pthread_exit_others_continue)
{
    ASSERT_OK(pipe(exit_pipe));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, late_writer, NULL) != 0)
            _exit(2);
        pthread_exit(NULL);
    }
    close(exit_pipe[1]);
    char c = 0;
    EXPECT_EQ(read(exit_pipe[0], &c, 1), 1);
    EXPECT_EQ(c, 'L');
    close(exit_pipe[0]);
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

static void *exit_group_thread(void *arg)
{
    sleep_ms(10);
    _exit((int)(intptr_t)arg); /* exit_group: kills the whole process */
}

TEST(exit_from_thread_kills_process)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, exit_group_thread, (void *)(intptr_t)9) != 0)
            _exit(2);
        for (;;)
            pause();
    }
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 9);

    /* The main thread exiting with pthread_exit, then a thread calling exit. */
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, exit_group_thread, (void *)(intptr_t)19) != 0)
            _exit(2);
        pthread_exit(NULL);
    }
    st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 19);
}

static void *killer_thread(void *arg)
{
    (void)arg;
    sleep_ms(10);
    raise(SIGTERM);
    for (;;)
        pause();
    return NULL;
}

TEST(fatal_signal_in_thread_kills_process)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, killer_thread, NULL) != 0)
            _exit(2);
        for (;;)
            pause();
    }
    int st = wait_for(pid);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGTERM);
}

static void *exec_thread(void *arg)
{
    (void)arg;
    char *argv[] = {"sh", "-c", "exit 5", NULL};
    execve("/bin/sh", argv, environ);
    _exit(100);
}

static void *spinner(void *arg)
{
    (void)arg;
    for (;;)
        sleep_ms(1);
    return NULL;
}

TEST(execve_from_thread)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pthread_t t1, t2;
        if (pthread_create(&t1, NULL, spinner, NULL) != 0)
            _exit(2);
        if (pthread_create(&t2, NULL, exec_thread, NULL) != 0)
            _exit(2);
        for (;;)
            pause();
    }
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 5);
}

static void *fork_in_thread(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid < 0)
        return (void *)1;
    if (pid == 0)
        _exit(31);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return (void *)2;
    return (void *)(intptr_t)WEXITSTATUS(st);
}

TEST(fork_from_thread)
{
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fork_in_thread, NULL), 0);
    void *ret = NULL;
    EXPECT_EQ(pthread_join(t, &ret), 0);
    EXPECT_EQ((intptr_t)ret, 31);
}

TEST(thread_cpu_clocks)
{
    clockid_t cid;
    EXPECT_EQ(pthread_getcpuclockid(pthread_self(), &cid), 0);
    struct timespec ts;
    EXPECT_OK(clock_gettime(cid, &ts));
    EXPECT_OK(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts));
}

TEST(sched_yield_and_affinity_in_thread)
{
    EXPECT_OK(sched_yield());
    cpu_set_t set;
    CPU_ZERO(&set);
    EXPECT_EQ(pthread_getaffinity_np(pthread_self(), sizeof set, &set), 0);
    EXPECT_GT(CPU_COUNT(&set), 0);
}

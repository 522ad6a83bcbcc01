/*
 * futex.c - futexes (issue 3): WAIT/WAKE, value mismatch, relative and
 * absolute timeouts, REQUEUE/CMP_REQUEUE, WAKE_OP, WAIT_BITSET/WAKE_BITSET,
 * private vs shared (across fork on MAP_SHARED memory), PI futexes, robust
 * mutexes (owner death between threads and between processes),
 * set/get_robust_list, EFAULT/EINVAL/ENOSYS, EINTR.
 *
 * Counting waiters deterministically: FUTEX_CMP_REQUEUE with nr_wake = 0
 * from a futex to itself moves nobody and returns how many tasks wait on it,
 * so tests poll that until the expected waiters are asleep, then act.
 *
 * An issue-3 program (see tests/tests/conformance.rs): threads and fork.
 */
#include "harness.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long futex(void *uaddr, int op, int val, const void *timeout_or_val2,
                  void *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, val, timeout_or_val2, uaddr2, val3);
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* Number of tasks waiting on *f (whose value must be val); private or not. */
static long waiters(int *f, int val, int priv)
{
    int op = FUTEX_CMP_REQUEUE | (priv ? FUTEX_PRIVATE_FLAG : 0);
    return futex(f, op, 0, (void *)(long)INT_MAX, f, val);
}

/* Polls until n tasks wait on *f (up to 10 s). Returns the last count. */
static long wait_for_waiters(int *f, int val, int priv, long n)
{
    long w = -1;
    for (int i = 0; i < 10000; i++) {
        w = waiters(f, val, priv);
        if (w == n)
            break;
        sleep_ms(1);
    }
    return w;
}

/* ------------------------------------------------------------ basic */

TEST(wait_value_mismatch_eagain)
{
    int f = 1;
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT, 0, NULL, NULL, 0), EAGAIN);
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0), EAGAIN);
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_BITSET, 0, NULL, NULL, FUTEX_BITSET_MATCH_ANY), EAGAIN);
}

TEST(wake_without_waiters)
{
    int f = 0;
    EXPECT_EQ(futex(&f, FUTEX_WAKE, 1, NULL, NULL, 0), 0);
    EXPECT_EQ(futex(&f, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 0);
    EXPECT_EQ(waiters(&f, 0, 1), 0);
    EXPECT_EQ(waiters(&f, 0, 0), 0);
}

TEST(wait_relative_timeout)
{
    int f = 0;
    struct timespec to = {0, 30 * 1000000};
    long long t0 = mono_ms();
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_PRIVATE, 0, &to, NULL, 0), ETIMEDOUT);
    long long dt = mono_ms() - t0;
    EXPECT_GE(dt, 29);
    EXPECT_LT(dt, 5000);
    struct timespec zero = {0, 0};
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT, 0, &zero, NULL, 0), ETIMEDOUT);
    struct timespec bad = {0, 1000000000};
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT, 0, &bad, NULL, 0), EINVAL);
    struct timespec neg = {-1, 0};
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT, 0, &neg, NULL, 0), EINVAL);
}

TEST(wait_bitset_absolute_timeout)
{
    int f = 0;
    struct timespec now, dl;
    clock_gettime(CLOCK_MONOTONIC, &now);
    dl = now;
    dl.tv_nsec += 30 * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    long long t0 = mono_ms();
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_BITSET_PRIVATE, 0, &dl, NULL, FUTEX_BITSET_MATCH_ANY),
                 ETIMEDOUT);
    EXPECT_GE(mono_ms() - t0, 29);
    /* An absolute deadline in the past: immediate. */
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_BITSET_PRIVATE, 0, &now, NULL, FUTEX_BITSET_MATCH_ANY),
                 ETIMEDOUT);
    /* CLOCK_REALTIME deadline. */
    clock_gettime(CLOCK_REALTIME, &now);
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &now, NULL,
                       FUTEX_BITSET_MATCH_ANY),
                 ETIMEDOUT);
    /* Bitset 0 is invalid. */
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_BITSET_PRIVATE, 0, &now, NULL, 0), EINVAL);
    EXPECT_ERRNO(futex(&f, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0), EINVAL);
    /* FUTEX_CLOCK_REALTIME only goes with the bitset/PI ops... and plain WAIT. */
    EXPECT_ERRNO(futex(&f, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0), ENOSYS);
}

TEST(bad_addresses_and_ops)
{
    EXPECT_ERRNO(futex((int *)8, FUTEX_WAIT, 0, NULL, NULL, 0), EFAULT);
    EXPECT_ERRNO(futex((int *)8, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EFAULT);
    int f[2] = {0, 0};
    EXPECT_ERRNO(futex((char *)f + 1, FUTEX_WAIT, 0, NULL, NULL, 0), EINVAL);
    EXPECT_ERRNO(futex((char *)f + 2, FUTEX_WAKE, 1, NULL, NULL, 0), EINVAL);
    EXPECT_ERRNO(futex(f, 99, 0, NULL, NULL, 0), ENOSYS);
    /* Requeue to a bad address: EFAULT (the check happens while requeueing
     * only if there's someone to requeue, but the key lookup faults first). */
    EXPECT_ERRNO(futex(f, FUTEX_CMP_REQUEUE, 0, (void *)1, (int *)8, 0), EFAULT);
}

/* ------------------------------------------------------------ waiters */

struct waiter_arg {
    int *f;
    int op;
    int val;
    int bitset;
    long ret;
    int err;
};

static void *waiter_thread(void *p)
{
    struct waiter_arg *a = p;
    a->ret = futex(a->f, a->op, a->val, NULL, NULL, a->bitset);
    a->err = a->ret < 0 ? errno : 0;
    return NULL;
}

static int start_waiters(pthread_t *t, struct waiter_arg *a, int n, int *f, int op, int bitset)
{
    for (int i = 0; i < n; i++) {
        a[i] = (struct waiter_arg){f, op, 0, bitset, -9, -9};
        if (pthread_create(&t[i], NULL, waiter_thread, &a[i]) != 0)
            return -1;
    }
    return 0;
}

TEST(wake_counts)
{
    enum { N = 5 };
    static int f;
    f = 0;
    pthread_t t[N];
    struct waiter_arg a[N];
    ASSERT_OK(start_waiters(t, a, N, &f, FUTEX_WAIT_PRIVATE, 0));
    ASSERT_EQ(wait_for_waiters(&f, 0, 1, N), N);
    EXPECT_EQ(futex(&f, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0), 2);
    EXPECT_EQ(wait_for_waiters(&f, 0, 1, N - 2), N - 2);
    EXPECT_EQ(futex(&f, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), N - 2);
    EXPECT_EQ(futex(&f, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        EXPECT_EQ(a[i].ret, 0);
    }
}

TEST(requeue_and_cmp_requeue)
{
    enum { N = 4 };
    static int f1, f2;
    f1 = 0;
    f2 = 0;
    pthread_t t[N];
    struct waiter_arg a[N];
    ASSERT_OK(start_waiters(t, a, N, &f1, FUTEX_WAIT_PRIVATE, 0));
    ASSERT_EQ(wait_for_waiters(&f1, 0, 1, N), N);
    /* Value check fails: nothing moves. */
    EXPECT_ERRNO(futex(&f1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)(long)INT_MAX, &f2, 123),
                 EAGAIN);
    EXPECT_EQ(waiters(&f1, 0, 1), N);
    /* Wake 1, requeue the rest: returns woken + requeued. */
    EXPECT_EQ(futex(&f1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)(long)INT_MAX, &f2, 0), N);
    EXPECT_EQ(wait_for_waiters(&f2, 0, 1, N - 1), N - 1);
    EXPECT_EQ(waiters(&f1, 0, 1), 0);
    /* Plain FUTEX_REQUEUE back, one task. Linux returns woken + requeued
     * here too (the man page says only woken). */
    EXPECT_EQ(futex(&f2, FUTEX_REQUEUE_PRIVATE, 0, (void *)(long)1, &f1, 0), 1);
    EXPECT_EQ(waiters(&f1, 0, 1), 1);
    EXPECT_EQ(waiters(&f2, 0, 1), N - 2);
    EXPECT_EQ(futex(&f1, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), 1);
    EXPECT_EQ(futex(&f2, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0), N - 2);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        EXPECT_EQ(a[i].ret, 0);
    }
    EXPECT_ERRNO(futex(&f1, FUTEX_CMP_REQUEUE_PRIVATE, -1, (void *)1, &f2, 0), EINVAL);
}

TEST(wake_op)
{
    static int f1, f2;
    f1 = 0;
    f2 = 0;
    /* No waiters: just the atomic op on *f2 (old value 0, += 5). */
    EXPECT_EQ(futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
                    FUTEX_OP(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_EQ, 0)),
              0);
    EXPECT_EQ(f2, 5);
    EXPECT_EQ(futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
                    FUTEX_OP(FUTEX_OP_OR, 0x30, FUTEX_OP_CMP_GT, 100)),
              0);
    EXPECT_EQ(f2, 0x35);
    EXPECT_EQ(futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
                    FUTEX_OP(FUTEX_OP_ANDN, 0x10, FUTEX_OP_CMP_NE, 0)),
              0);
    EXPECT_EQ(f2, 0x25);
    EXPECT_EQ(futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
                    FUTEX_OP(FUTEX_OP_XOR, 0x5, FUTEX_OP_CMP_LT, 0)),
              0);
    EXPECT_EQ(f2, 0x20);
    /* OPARG_SHIFT: oparg is 1 << 3. */
    EXPECT_EQ(futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
                    FUTEX_OP((FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT), 3, FUTEX_OP_CMP_EQ, 0)),
              0);
    EXPECT_EQ(f2, 8);

    /* With one waiter on each: wakes f1's, and f2's only if the compare
     * (on the old value of *f2) is true. */
    f2 = 0;
    pthread_t t[2];
    struct waiter_arg a[2];
    a[0] = (struct waiter_arg){&f1, FUTEX_WAIT_PRIVATE, 0, 0, -9, -9};
    a[1] = (struct waiter_arg){&f2, FUTEX_WAIT_PRIVATE, 0, 0, -9, -9};
    ASSERT_EQ(pthread_create(&t[0], NULL, waiter_thread, &a[0]), 0);
    ASSERT_EQ(pthread_create(&t[1], NULL, waiter_thread, &a[1]), 0);
    ASSERT_EQ(wait_for_waiters(&f1, 0, 1, 1), 1);
    ASSERT_EQ(wait_for_waiters(&f2, 0, 1, 1), 1);
    EXPECT_EQ(futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
                    FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0)),
              2);
    EXPECT_EQ(f2, 1);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    EXPECT_EQ(a[0].ret, 0);
    EXPECT_EQ(a[1].ret, 0);
    /* Bad op / compare codes. */
    EXPECT_ERRNO(futex(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &f2,
                       FUTEX_OP(7, 1, FUTEX_OP_CMP_EQ, 0)),
                 ENOSYS);
}

TEST(bitset_matching)
{
    static int f;
    f = 0;
    pthread_t t;
    struct waiter_arg a = {&f, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x1, -9, -9};
    ASSERT_EQ(pthread_create(&t, NULL, waiter_thread, &a), 0);
    ASSERT_EQ(wait_for_waiters(&f, 0, 1, 1), 1);
    EXPECT_EQ(futex(&f, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x2), 0);
    EXPECT_EQ(waiters(&f, 0, 1), 1);
    EXPECT_EQ(futex(&f, FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL, NULL, 0x3), 1);
    pthread_join(t, NULL);
    EXPECT_EQ(a.ret, 0);

    /* A plain FUTEX_WAKE matches any bitset. */
    a = (struct waiter_arg){&f, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x40, -9, -9};
    ASSERT_EQ(pthread_create(&t, NULL, waiter_thread, &a), 0);
    ASSERT_EQ(wait_for_waiters(&f, 0, 1, 1), 1);
    EXPECT_EQ(futex(&f, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 1);
    pthread_join(t, NULL);
    EXPECT_EQ(a.ret, 0);
}

TEST(private_and_shared_keys_differ)
{
    static int f;
    f = 0;
    pthread_t t;
    struct waiter_arg a = {&f, FUTEX_WAIT, 0, 0, -9, -9}; /* shared wait */
    ASSERT_EQ(pthread_create(&t, NULL, waiter_thread, &a), 0);
    ASSERT_EQ(wait_for_waiters(&f, 0, 0, 1), 1);
    /* A private wake doesn't reach a shared waiter: the keys differ. */
    EXPECT_EQ(futex(&f, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 0);
    EXPECT_EQ(futex(&f, FUTEX_WAKE, 1, NULL, NULL, 0), 1);
    pthread_join(t, NULL);
    EXPECT_EQ(a.ret, 0);
}

static volatile int alrm;

static void on_alarm(int sig)
{
    (void)sig;
    alrm++;
}

TEST(wait_interrupted_by_signal)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    ASSERT_OK(sigaction(SIGALRM, &sa, NULL)); /* no SA_RESTART */
    int f = 0;
    alrm = 0;
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EINTR);
    EXPECT_EQ(alrm, 1);
    /* With a timeout, also EINTR. */
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec to = {5, 0};
    EXPECT_ERRNO(futex(&f, FUTEX_WAIT_PRIVATE, 0, &to, NULL, 0), EINTR);
    EXPECT_EQ(alrm, 2);
    signal(SIGALRM, SIG_DFL);
}

/* ------------------------------------------------------------ across fork */

TEST(shared_futex_across_fork)
{
    int *f = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(f != MAP_FAILED);
    *f = 0;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        while (__atomic_load_n(f, __ATOMIC_SEQ_CST) == 0) {
            long r = futex(f, FUTEX_WAIT, 0, NULL, NULL, 0);
            if (r != 0 && errno != EAGAIN && errno != EINTR)
                _exit(1);
        }
        _exit(*f == 1 ? 0 : 2);
    }
    ASSERT_EQ(wait_for_waiters(f, 0, 0, 1), 1);
    __atomic_store_n(f, 1, __ATOMIC_SEQ_CST);
    EXPECT_EQ(futex(f, FUTEX_WAKE, 1, NULL, NULL, 0), 1);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    munmap(f, 4096);
}

TEST(private_futex_after_fork_is_separate)
{
    /* MAP_PRIVATE memory after fork: the child's copy is a different futex. */
    static int f;
    f = 0;
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        struct timespec to = {0, 50 * 1000000};
        close(p[0]);
        write(p[1], "r", 1);
        long r = futex(&f, FUTEX_WAIT, 0, &to, NULL, 0);
        _exit(r == -1 && errno == ETIMEDOUT ? 0 : 1);
    }
    close(p[1]);
    char c;
    read(p[0], &c, 1);
    close(p[0]);
    /* Nobody waits on *our* f. */
    EXPECT_EQ(futex(&f, FUTEX_WAKE, 1, NULL, NULL, 0), 0);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

/* ------------------------------------------------------------ PI */

TEST(pi_lock_unlock_uncontended)
{
    int f = 0;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    EXPECT_EQ(futex(&f, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    EXPECT_EQ(f & FUTEX_TID_MASK, tid);
    EXPECT_ERRNO(futex(&f, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0), EDEADLK);
    EXPECT_ERRNO(futex(&f, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EDEADLK);
    EXPECT_EQ(futex(&f, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), 0);
    EXPECT_EQ(f, 0);
    /* Unlocking a lock we don't own. */
    f = tid + 1;
    EXPECT_ERRNO(futex(&f, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EPERM);
    f = 0;
    EXPECT_ERRNO(futex(&f, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0), EPERM);
    /* Owned by a tid that doesn't exist. */
    f = 0x3ffffff0;
    EXPECT_ERRNO(futex(&f, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0), ESRCH);
}

static pthread_mutex_t pi_mu;
static atomic_int pi_stage;

static void *pi_holder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pi_mu);
    atomic_store(&pi_stage, 1);
    while (atomic_load(&pi_stage) != 2)
        sleep_ms(1);
    sleep_ms(20); /* let the main thread block in FUTEX_LOCK_PI */
    pthread_mutex_unlock(&pi_mu);
    return NULL;
}

TEST(pi_mutex_contended)
{
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    ASSERT_EQ(pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT), 0);
    ASSERT_EQ(pthread_mutex_init(&pi_mu, &at), 0);
    atomic_store(&pi_stage, 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, pi_holder, NULL), 0);
    while (atomic_load(&pi_stage) != 1)
        sleep_ms(1);
    EXPECT_RET_ERR(pthread_mutex_trylock(&pi_mu), EBUSY);
    atomic_store(&pi_stage, 2);
    EXPECT_EQ(pthread_mutex_lock(&pi_mu), 0);
    EXPECT_EQ(pthread_mutex_unlock(&pi_mu), 0);
    pthread_join(t, NULL);
    pthread_mutex_destroy(&pi_mu);
}

/* ------------------------------------------------------------ robust */

TEST(robust_list_syscalls)
{
    struct robust_list_head *head = NULL;
    size_t len = 0;
    EXPECT_OK(syscall(SYS_get_robust_list, 0, &head, &len));
    EXPECT_EQ(len, sizeof(struct robust_list_head));
    EXPECT_TRUE(head != NULL); /* glibc registers one per thread */
    EXPECT_ERRNO(syscall(SYS_set_robust_list, head, len + 1), EINVAL);
    EXPECT_ERRNO(syscall(SYS_get_robust_list, 0x3fffffff, &head, &len), ESRCH);
    EXPECT_OK(syscall(SYS_set_robust_list, head, len));
}

static pthread_mutex_t robust_mu;

static void *die_holding(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&robust_mu);
    return NULL; /* exits with the mutex held */
}

TEST(robust_mutex_owner_thread_dies)
{
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    ASSERT_EQ(pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST), 0);
    ASSERT_EQ(pthread_mutex_init(&robust_mu, &at), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, die_holding, NULL), 0);
    pthread_join(t, NULL);
    EXPECT_RET_ERR(pthread_mutex_lock(&robust_mu), EOWNERDEAD);
    EXPECT_EQ(pthread_mutex_consistent(&robust_mu), 0);
    EXPECT_EQ(pthread_mutex_unlock(&robust_mu), 0);
    EXPECT_EQ(pthread_mutex_lock(&robust_mu), 0);
    EXPECT_EQ(pthread_mutex_unlock(&robust_mu), 0);
    pthread_mutex_destroy(&robust_mu);
}

TEST(robust_mutex_owner_process_dies)
{
    pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    ASSERT_EQ(pthread_mutex_init(m, &at), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (pthread_mutex_lock(m) != 0)
            _exit(1);
        _exit(0); /* dies holding it */
    }
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(WEXITSTATUS(st), 0);
    EXPECT_RET_ERR(pthread_mutex_lock(m), EOWNERDEAD);
    EXPECT_EQ(pthread_mutex_consistent(m), 0);
    EXPECT_EQ(pthread_mutex_unlock(m), 0);

    /* A waiter blocked in the kernel is woken with EOWNERDEAD when the
     * owner is killed. */
    int p[2];
    ASSERT_OK(pipe(p));
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(p[0]);
        if (pthread_mutex_lock(m) != 0)
            _exit(1);
        write(p[1], "l", 1);
        for (;;)
            pause();
    }
    close(p[1]);
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    close(p[0]);
    EXPECT_RET_ERR(pthread_mutex_trylock(m), EBUSY);
    kill(pid, SIGKILL);
    EXPECT_RET_ERR(pthread_mutex_lock(m), EOWNERDEAD);
    pthread_mutex_consistent(m);
    pthread_mutex_unlock(m);
    waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    munmap(m, 4096);
}

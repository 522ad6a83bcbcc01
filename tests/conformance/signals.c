/*
 * signals.c - signal delivery (issue 3): SA_SIGINFO siginfo and ucontext,
 * rt_sigreturn restoring registers and FPU state, sa_mask/SA_NODEFER/
 * SA_RESETHAND/SA_ONSTACK, sigaltstack, sigsuspend, sigpending, sigtimedwait,
 * sigqueue and rt_sigqueueinfo, standard vs real-time queueing, SA_RESTART vs
 * EINTR, nanosleep/pause interruption, hardware faults (SIGSEGV MAPERR/ACCERR,
 * SIGFPE, SIGILL, SIGTRAP, SIGBUS) with si_code/si_addr, siglongjmp out of
 * handlers, default actions, stop/continue seen by the parent, SIGPIPE.
 *
 * An issue-3 program (see tests/tests/conformance.rs): it forks and delivers
 * signals. Children never print and leave with _exit(). Nothing is written to
 * the filesystem; RLIMIT_CORE is 0 so killed children dump no core.
 */
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

__attribute__((constructor)) static void no_core_files(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
}

static int wait_for(pid_t pid, int options)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, options);
    while (r < 0 && errno == EINTR);
    if (r != pid)
        return -1;
    return st;
}

/* Installs handler h (a 3-argument SA_SIGINFO handler if siginfo != 0). */
static int install(int sig, void *h, int flags, const sigset_t *mask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    if (flags & SA_SIGINFO)
        sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))h;
    else
        sa.sa_handler = (void (*)(int))h;
    sa.sa_flags = flags;
    if (mask)
        sa.sa_mask = *mask;
    else
        sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

static void restore_default(int sig)
{
    signal(sig, SIG_DFL);
}

static void unblock_all(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigprocmask(SIG_SETMASK, &s, NULL);
}

static void block(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_BLOCK, &s, NULL);
}

static void unblock(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
}

static void arm_real_timer_ms(int ms)
{
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* ------------------------------------------------------------ siginfo */

static volatile sig_atomic_t got_count;
static volatile int got_sig, got_code, got_pid, got_uid, got_value, got_errno_field;
static volatile int got_mask_has_usr2, got_mask_has_usr1;
static volatile long got_rip;

static void info_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    got_count++;
    got_sig = si->si_signo;
    got_code = si->si_code;
    got_pid = si->si_pid;
    got_uid = si->si_uid;
    got_value = si->si_value.sival_int;
    got_errno_field = si->si_errno;
    got_rip = uc->uc_mcontext.gregs[REG_RIP];
    got_mask_has_usr1 = sigismember(&uc->uc_sigmask, SIGUSR1);
    got_mask_has_usr2 = sigismember(&uc->uc_sigmask, SIGUSR2);
    (void)sig;
}

static void reset_got(void)
{
    got_count = 0;
    got_sig = got_code = got_pid = got_uid = got_value = -1;
    got_errno_field = -1;
    got_rip = 0;
    got_mask_has_usr1 = got_mask_has_usr2 = -1;
}

TEST(siginfo_kill_si_user)
{
    ASSERT_OK(install(SIGUSR1, info_handler, SA_SIGINFO, NULL));
    reset_got();
    EXPECT_OK(kill(getpid(), SIGUSR1));
    EXPECT_EQ(got_count, 1);
    EXPECT_EQ(got_sig, SIGUSR1);
    EXPECT_EQ(got_code, SI_USER);
    EXPECT_EQ(got_pid, getpid());
    EXPECT_EQ(got_uid, getuid());
    EXPECT_EQ(got_errno_field, 0);
    EXPECT_NE(got_rip, 0);
    restore_default(SIGUSR1);
}

TEST(siginfo_tgkill_si_tkill)
{
    ASSERT_OK(install(SIGUSR1, info_handler, SA_SIGINFO, NULL));
    reset_got();
    EXPECT_OK(syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1));
    EXPECT_EQ(got_count, 1);
    EXPECT_EQ(got_code, SI_TKILL);
    EXPECT_EQ(got_pid, getpid());
    reset_got();
    EXPECT_OK(syscall(SYS_tkill, syscall(SYS_gettid), SIGUSR1));
    EXPECT_EQ(got_count, 1);
    EXPECT_EQ(got_code, SI_TKILL);
    reset_got();
    EXPECT_OK(raise(SIGUSR1));
    EXPECT_EQ(got_code, SI_TKILL);
    restore_default(SIGUSR1);
}

TEST(siginfo_sigqueue_value)
{
    ASSERT_OK(install(SIGUSR1, info_handler, SA_SIGINFO, NULL));
    reset_got();
    union sigval v = {.sival_int = 4242};
    EXPECT_OK(sigqueue(getpid(), SIGUSR1, v));
    EXPECT_EQ(got_count, 1);
    EXPECT_EQ(got_code, SI_QUEUE);
    EXPECT_EQ(got_value, 4242);
    EXPECT_EQ(got_pid, getpid());
    restore_default(SIGUSR1);
}

TEST(rt_sigqueueinfo_rules)
{
    ASSERT_OK(install(SIGUSR1, info_handler, SA_SIGINFO, NULL));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = -42; /* any negative code may be sent */
    si.si_value.sival_int = 99;
    reset_got();
    EXPECT_OK(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si));
    EXPECT_EQ(got_code, -42);
    EXPECT_EQ(got_value, 99);
    reset_got();
    EXPECT_OK(syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), SIGUSR1, &si));
    EXPECT_EQ(got_code, -42);

    /* To another process, si_code >= 0 (kernel-generated) is refused. */
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(fds[1]);
        read(fds[0], &c, 1);
        _exit(0);
    }
    close(fds[0]);
    si.si_code = SI_USER;
    EXPECT_ERRNO(syscall(SYS_rt_sigqueueinfo, pid, SIGUSR1, &si), EPERM);
    si.si_code = SI_TKILL;
    EXPECT_ERRNO(syscall(SYS_rt_sigqueueinfo, pid, SIGUSR1, &si), EPERM);
    close(fds[1]);
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    restore_default(SIGUSR1);
}

TEST(ucontext_sigmask_is_interrupted_mask)
{
    ASSERT_OK(install(SIGUSR1, info_handler, SA_SIGINFO, NULL));
    block(SIGUSR2);
    reset_got();
    raise(SIGUSR1);
    EXPECT_EQ(got_count, 1);
    EXPECT_EQ(got_mask_has_usr2, 1);
    EXPECT_EQ(got_mask_has_usr1, 0);
    unblock_all();
    restore_default(SIGUSR1);
}

/* ------------------------------------------------------------ sigreturn */

static void clobber_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    (void)sig;
    (void)si;
    /* Change one saved register: rt_sigreturn must load it. */
    uc->uc_mcontext.gregs[REG_R13] = 0x2222;
    /* Trash callee-saved registers and an SSE register here. */
    __asm__ volatile("mov $-1, %%r12\n\t"
                     "mov $-1, %%r14\n\t"
                     "mov $-1, %%r15\n\t"
                     "mov $-1, %%rbx\n\t"
                     "pcmpeqd %%xmm9, %%xmm9\n\t"
                     :
                     :
                     : "r12", "r14", "r15", "rbx", "xmm9", "memory");
}

TEST(sigreturn_restores_registers)
{
    ASSERT_OK(install(SIGUSR1, clobber_handler, SA_SIGINFO, NULL));
    register long r12 __asm__("r12") = 0x1111;
    register long r13 __asm__("r13") = 0x1313;
    register long r14 __asm__("r14") = 0x1414;
    register long r15 __asm__("r15") = 0x1515;
    long ret;
    unsigned long long xin = 0x0123456789abcdefULL, xout = 0;
    __asm__ volatile("movq %[xin], %%xmm9\n\t"
                     "syscall\n\t"
                     "movq %%xmm9, %[xout]\n\t"
                     : "=a"(ret), "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15),
                       [xout] "=m"(xout)
                     : "a"((long)SYS_kill), "D"((long)getpid()), "S"((long)SIGUSR1),
                       [xin] "m"(xin)
                     : "rcx", "r11", "xmm9", "memory");
    EXPECT_EQ(ret, 0);
    EXPECT_EQ(r12, 0x1111);
    EXPECT_EQ(r13, 0x2222);
    EXPECT_EQ(r14, 0x1414);
    EXPECT_EQ(r15, 0x1515);
    EXPECT_EQ(xout, 0x0123456789abcdefULL);
    restore_default(SIGUSR1);
}

/* ------------------------------------------------------------ masks, flags */

static volatile int order[8];
static volatile int norder;
static volatile int usr2_pending_in_handler, usr1_blocked_in_handler, usr2_blocked_in_handler;

static void mask_usr1(int sig)
{
    sigset_t cur, pend;
    (void)sig;
    order[norder++] = 1;
    raise(SIGUSR2); /* blocked by sa_mask: stays pending */
    sigpending(&pend);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    usr2_pending_in_handler = sigismember(&pend, SIGUSR2);
    usr1_blocked_in_handler = sigismember(&cur, SIGUSR1);
    usr2_blocked_in_handler = sigismember(&cur, SIGUSR2);
    order[norder++] = 2;
}

static void mask_usr2(int sig)
{
    (void)sig;
    order[norder++] = 3;
}

TEST(sa_mask_defers_signals)
{
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    ASSERT_OK(install(SIGUSR1, mask_usr1, 0, &m));
    ASSERT_OK(install(SIGUSR2, mask_usr2, 0, NULL));
    norder = 0;
    raise(SIGUSR1);
    EXPECT_EQ(norder, 3);
    EXPECT_EQ(order[0], 1);
    EXPECT_EQ(order[1], 2);
    EXPECT_EQ(order[2], 3);
    EXPECT_EQ(usr2_pending_in_handler, 1);
    EXPECT_EQ(usr1_blocked_in_handler, 1);
    EXPECT_EQ(usr2_blocked_in_handler, 1);
    /* The mask is back to normal afterwards. */
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    EXPECT_EQ(sigismember(&cur, SIGUSR1), 0);
    EXPECT_EQ(sigismember(&cur, SIGUSR2), 0);
    restore_default(SIGUSR1);
    restore_default(SIGUSR2);
}

static volatile int depth, max_depth, nodefer_blocked, nodefer_calls;

static void nodefer_handler(int sig)
{
    sigset_t cur;
    depth++;
    nodefer_calls++;
    if (depth > max_depth)
        max_depth = depth;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    if (nodefer_calls == 1) {
        nodefer_blocked = sigismember(&cur, sig);
        raise(sig); /* delivered immediately, nested */
    }
    depth--;
}

TEST(sa_nodefer_allows_nesting)
{
    ASSERT_OK(install(SIGUSR1, nodefer_handler, SA_NODEFER, NULL));
    depth = max_depth = nodefer_calls = 0;
    nodefer_blocked = -1;
    raise(SIGUSR1);
    EXPECT_EQ(nodefer_calls, 2);
    EXPECT_EQ(max_depth, 2);
    EXPECT_EQ(nodefer_blocked, 0);
    /* Without SA_NODEFER the second one waits for the first to return. */
    ASSERT_OK(install(SIGUSR1, nodefer_handler, 0, NULL));
    depth = max_depth = nodefer_calls = 0;
    raise(SIGUSR1);
    EXPECT_EQ(nodefer_calls, 2);
    EXPECT_EQ(max_depth, 1);
    EXPECT_EQ(nodefer_blocked, 1);
    restore_default(SIGUSR1);
}

static volatile int resethand_count;

static void resethand_handler(int sig)
{
    (void)sig;
    resethand_count++;
}

TEST(sa_resethand_one_shot)
{
    ASSERT_OK(install(SIGUSR1, resethand_handler, SA_RESETHAND, NULL));
    resethand_count = 0;
    raise(SIGUSR1);
    EXPECT_EQ(resethand_count, 1);
    struct sigaction cur;
    ASSERT_OK(sigaction(SIGUSR1, NULL, &cur));
    EXPECT_TRUE(cur.sa_handler == SIG_DFL);
    /* Now the default action (terminate) applies: check it in a child. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        raise(SIGUSR1);
        _exit(0);
    }
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGUSR1);
}

/* ------------------------------------------------------------ sigaltstack */

static char *alt_base;
static size_t alt_size;
static volatile int on_alt, ss_flags_in_handler, altstack_eperm;

static void onstack_handler(int sig)
{
    volatile char local;
    stack_t ss, nss;
    (void)sig;
    on_alt = (char *)&local >= alt_base && (char *)&local < alt_base + alt_size;
    sigaltstack(NULL, &ss);
    ss_flags_in_handler = ss.ss_flags;
    nss.ss_sp = alt_base;
    nss.ss_size = alt_size;
    nss.ss_flags = 0;
    altstack_eperm = sigaltstack(&nss, NULL) == -1 && errno == EPERM;
}

TEST(sigaltstack_sa_onstack)
{
    alt_size = 64 * 1024;
    alt_base = mmap(NULL, alt_size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(alt_base != MAP_FAILED);
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0};
    ASSERT_OK(sigaltstack(&ss, NULL));

    ASSERT_OK(install(SIGUSR1, onstack_handler, SA_ONSTACK, NULL));
    on_alt = -1;
    raise(SIGUSR1);
    EXPECT_EQ(on_alt, 1);
    EXPECT_EQ(ss_flags_in_handler, SS_ONSTACK);
    EXPECT_EQ(altstack_eperm, 1);
    stack_t cur;
    ASSERT_OK(sigaltstack(NULL, &cur));
    EXPECT_EQ(cur.ss_flags, 0);
    EXPECT_TRUE(cur.ss_sp == alt_base);

    /* Without SA_ONSTACK the normal stack is used. */
    ASSERT_OK(install(SIGUSR1, onstack_handler, 0, NULL));
    on_alt = -1;
    raise(SIGUSR1);
    EXPECT_EQ(on_alt, 0);
    EXPECT_EQ(ss_flags_in_handler, 0);

    ss.ss_flags = SS_DISABLE;
    EXPECT_OK(sigaltstack(&ss, NULL));
    ASSERT_OK(install(SIGUSR1, onstack_handler, SA_ONSTACK, NULL));
    on_alt = -1;
    raise(SIGUSR1);
    EXPECT_EQ(on_alt, 0); /* disabled: SA_ONSTACK has no effect */
    EXPECT_EQ(ss_flags_in_handler, SS_DISABLE);
    restore_default(SIGUSR1);
    munmap(alt_base, alt_size);
}

/* ------------------------------------------------------------ waiting */

static volatile int simple_count;

static void simple_handler(int sig)
{
    (void)sig;
    simple_count++;
}

TEST(sigpending_and_unblock)
{
    ASSERT_OK(install(SIGUSR1, simple_handler, 0, NULL));
    simple_count = 0;
    block(SIGUSR1);
    raise(SIGUSR1);
    raise(SIGUSR1); /* standard signals don't queue */
    sigset_t p;
    ASSERT_OK(sigpending(&p));
    EXPECT_EQ(sigismember(&p, SIGUSR1), 1);
    EXPECT_EQ(sigismember(&p, SIGUSR2), 0);
    EXPECT_EQ(simple_count, 0);
    unblock(SIGUSR1);
    EXPECT_EQ(simple_count, 1);
    ASSERT_OK(sigpending(&p));
    EXPECT_EQ(sigismember(&p, SIGUSR1), 0);
    restore_default(SIGUSR1);
}

TEST(ignored_signal_is_discarded)
{
    signal(SIGUSR1, SIG_IGN);
    raise(SIGUSR1); /* ignored and not blocked: dropped at once */
    sigset_t p;
    sigpending(&p);
    EXPECT_EQ(sigismember(&p, SIGUSR1), 0);
    /* Blocked signals are never ignored at generation time... */
    block(SIGUSR1);
    raise(SIGUSR1);
    sigpending(&p);
    EXPECT_EQ(sigismember(&p, SIGUSR1), 1);
    /* ...and unblocking an ignored one discards it. */
    unblock(SIGUSR1);
    sigpending(&p);
    EXPECT_EQ(sigismember(&p, SIGUSR1), 0);
    /* Setting SIG_IGN discards a pending signal. */
    restore_default(SIGUSR1);
    block(SIGUSR1);
    raise(SIGUSR1);
    signal(SIGUSR1, SIG_IGN);
    sigpending(&p);
    EXPECT_EQ(sigismember(&p, SIGUSR1), 0);
    unblock(SIGUSR1);
    restore_default(SIGUSR1);
    /* Default-ignored signals do nothing. */
    EXPECT_OK(raise(SIGURG));
    EXPECT_OK(raise(SIGWINCH));
    EXPECT_OK(raise(SIGCHLD));
}

static volatile int rt_vals[16];
static volatile int n_rt, n_usr1_seen, first_was;

static void rt_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (first_was == 0)
        first_was = sig;
    if (sig == SIGUSR1)
        n_usr1_seen++;
    else if (n_rt < 16)
        rt_vals[n_rt++] = si->si_value.sival_int;
}

TEST(realtime_signals_queue_in_order)
{
    int rt = SIGRTMIN + 2;
    ASSERT_OK(install(rt, rt_handler, SA_SIGINFO, NULL));
    ASSERT_OK(install(SIGUSR1, rt_handler, SA_SIGINFO, NULL));
    n_rt = n_usr1_seen = first_was = 0;
    sigset_t both;
    sigemptyset(&both);
    sigaddset(&both, rt);
    sigaddset(&both, SIGUSR1);
    sigprocmask(SIG_BLOCK, &both, NULL);
    for (int i = 1; i <= 3; i++) {
        union sigval v = {.sival_int = i * 10};
        EXPECT_OK(sigqueue(getpid(), rt, v));
        EXPECT_OK(sigqueue(getpid(), SIGUSR1, v));
    }
    sigprocmask(SIG_UNBLOCK, &both, NULL);
    EXPECT_EQ(n_usr1_seen, 1);
    EXPECT_EQ(n_rt, 3);
    EXPECT_EQ(rt_vals[0], 10);
    EXPECT_EQ(rt_vals[1], 20);
    EXPECT_EQ(rt_vals[2], 30);
    /* Dequeued lowest number first. */
    sigprocmask(SIG_BLOCK, &both, NULL);
    union sigval v = {.sival_int = 1};
    sigqueue(getpid(), rt, v);
    sigqueue(getpid(), SIGUSR1, v);
    siginfo_t si;
    EXPECT_EQ(sigwaitinfo(&both, &si), SIGUSR1);
    EXPECT_EQ(sigwaitinfo(&both, &si), rt);
    sigprocmask(SIG_UNBLOCK, &both, NULL);
    (void)first_was;
    restore_default(rt);
    restore_default(SIGUSR1);
}

TEST(sigsuspend_returns_eintr)
{
    ASSERT_OK(install(SIGUSR1, simple_handler, 0, NULL));
    simple_count = 0;
    block(SIGUSR1);
    raise(SIGUSR1);
    sigset_t empty;
    sigemptyset(&empty);
    EXPECT_ERRNO(sigsuspend(&empty), EINTR);
    EXPECT_EQ(simple_count, 1);
    /* The old mask is restored: SIGUSR1 is blocked again. */
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    EXPECT_EQ(sigismember(&cur, SIGUSR1), 1);
    unblock_all();

    /* Woken by a timer signal. */
    ASSERT_OK(install(SIGALRM, simple_handler, 0, NULL));
    simple_count = 0;
    block(SIGALRM);
    arm_real_timer_ms(20);
    EXPECT_ERRNO(sigsuspend(&empty), EINTR);
    EXPECT_EQ(simple_count, 1);
    unblock_all();
    restore_default(SIGUSR1);
    restore_default(SIGALRM);
}

TEST(sigtimedwait_semantics)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    block(SIGUSR2);
    struct timespec to = {0, 20 * 1000000};
    siginfo_t si;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    EXPECT_ERRNO(sigtimedwait(&set, &si, &to), EAGAIN);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    EXPECT_GE(ms, 19);
    struct timespec zero = {0, 0};
    EXPECT_ERRNO(sigtimedwait(&set, &si, &zero), EAGAIN);
    struct timespec bad = {0, 1000000000};
    EXPECT_ERRNO(sigtimedwait(&set, &si, &bad), EINVAL);

    union sigval v = {.sival_int = 7};
    sigqueue(getpid(), SIGUSR2, v);
    memset(&si, 0, sizeof si);
    EXPECT_EQ(sigtimedwait(&set, &si, &to), SIGUSR2);
    EXPECT_EQ(si.si_signo, SIGUSR2);
    EXPECT_EQ(si.si_code, SI_QUEUE);
    EXPECT_EQ(si.si_value.sival_int, 7);
    EXPECT_EQ(si.si_pid, getpid());
    raise(SIGUSR2);
    /* Raw syscall: glibc's sigwaitinfo folds SI_TKILL into SI_USER. */
    EXPECT_EQ(syscall(SYS_rt_sigtimedwait, &set, &si, NULL, 8), SIGUSR2);
    EXPECT_EQ(si.si_code, SI_TKILL);
    raise(SIGUSR2);
    EXPECT_EQ(sigwaitinfo(&set, &si), SIGUSR2);
    EXPECT_EQ(si.si_code, SI_USER);
    int sig = 0;
    raise(SIGUSR2);
    EXPECT_EQ(sigwait(&set, &sig), 0);
    EXPECT_EQ(sig, SIGUSR2);
    unblock_all();
}

TEST(pause_interrupted)
{
    ASSERT_OK(install(SIGALRM, simple_handler, SA_RESTART, NULL));
    simple_count = 0;
    arm_real_timer_ms(20);
    EXPECT_ERRNO(pause(), EINTR); /* never restarted, even with SA_RESTART */
    EXPECT_EQ(simple_count, 1);
    restore_default(SIGALRM);
}

TEST(nanosleep_interrupted_remaining)
{
    ASSERT_OK(install(SIGALRM, simple_handler, SA_RESTART, NULL));
    simple_count = 0;
    arm_real_timer_ms(30);
    struct timespec req = {5, 0}, rem = {0, 0};
    EXPECT_ERRNO(nanosleep(&req, &rem), EINTR);
    EXPECT_EQ(simple_count, 1);
    long long left = rem.tv_sec * 1000000000LL + rem.tv_nsec;
    EXPECT_GT(left, 3000000000LL);
    EXPECT_LT(left, 5000000000LL);
    restore_default(SIGALRM);
}

static int restart_pipe[2];

static void write_pipe_handler(int sig)
{
    (void)sig;
    simple_count++;
    write(restart_pipe[1], "z", 1);
}

TEST(sa_restart_read_restarts)
{
    ASSERT_OK(pipe(restart_pipe));
    ASSERT_OK(install(SIGALRM, write_pipe_handler, SA_RESTART, NULL));
    simple_count = 0;
    arm_real_timer_ms(20);
    char c = 0;
    /* Interrupted, handler writes a byte, read restarts and gets it. */
    EXPECT_EQ(read(restart_pipe[0], &c, 1), 1);
    EXPECT_EQ(c, 'z');
    EXPECT_EQ(simple_count, 1);

    ASSERT_OK(install(SIGALRM, write_pipe_handler, 0, NULL));
    simple_count = 0;
    arm_real_timer_ms(20);
    EXPECT_ERRNO(read(restart_pipe[0], &c, 1), EINTR);
    EXPECT_EQ(simple_count, 1);
    EXPECT_EQ(read(restart_pipe[0], &c, 1), 1); /* the byte is there */
    close(restart_pipe[0]);
    close(restart_pipe[1]);
    restore_default(SIGALRM);
}

TEST(sa_restart_wait4_restarts)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(fds[1]);
        read(fds[0], &c, 1);
        _exit(4);
    }
    close(fds[0]);
    restart_pipe[1] = fds[1];
    /* The handler closes nothing; it writes the byte that lets the child go. */
    ASSERT_OK(install(SIGALRM, write_pipe_handler, SA_RESTART, NULL));
    simple_count = 0;
    arm_real_timer_ms(20);
    int st = -1;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(WEXITSTATUS(st), 4);
    EXPECT_EQ(simple_count, 1);
    close(fds[1]);
    restore_default(SIGALRM);
}

/* ------------------------------------------------------------ faults */

static sigjmp_buf fault_jmp;
static volatile int fault_sig, fault_code;
static void *volatile fault_addr;
static volatile long fault_rip;

static void fault_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    fault_sig = sig;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    fault_rip = uc->uc_mcontext.gregs[REG_RIP];
    siglongjmp(fault_jmp, 1);
}

static void fault_setup(int sig)
{
    fault_sig = fault_code = -1;
    fault_addr = (void *)-1;
    fault_rip = 0;
    install(sig, fault_handler, SA_SIGINFO, NULL);
}

TEST(sigsegv_null_maperr)
{
    fault_setup(SIGSEGV);
    volatile int *volatile p = NULL;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        (void)*p;
        FAIL("no fault");
    }
    EXPECT_EQ(fault_sig, SIGSEGV);
    EXPECT_EQ(fault_code, SEGV_MAPERR);
    EXPECT_TRUE(fault_addr == NULL);
    /* siglongjmp restored the mask: SIGSEGV is not blocked any more. */
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    EXPECT_EQ(sigismember(&cur, SIGSEGV), 0);

    /* A second fault works the same way (the handler is still installed). */
    p = (volatile int *)0x1008;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        *p = 1;
        FAIL("no fault");
    }
    EXPECT_EQ(fault_code, SEGV_MAPERR);
    EXPECT_TRUE(fault_addr == (void *)0x1008);
    restore_default(SIGSEGV);
}

TEST(sigsegv_readonly_accerr)
{
    fault_setup(SIGSEGV);
    char *page = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(page != MAP_FAILED);
    volatile char *p = page + 4096 + 123;
    EXPECT_EQ(*p, 0); /* readable */
    if (sigsetjmp(fault_jmp, 1) == 0) {
        *p = 1;
        FAIL("no fault");
    }
    EXPECT_EQ(fault_sig, SIGSEGV);
    EXPECT_EQ(fault_code, SEGV_ACCERR);
    EXPECT_TRUE(fault_addr == page + 4096 + 123);

    ASSERT_OK(mprotect(page, 8192, PROT_NONE));
    if (sigsetjmp(fault_jmp, 1) == 0) {
        (void)*(volatile char *)page;
        FAIL("no fault");
    }
    EXPECT_EQ(fault_code, SEGV_ACCERR);
    EXPECT_TRUE(fault_addr == page);
    munmap(page, 8192);
    /* Unmapped now: MAPERR. */
    if (sigsetjmp(fault_jmp, 1) == 0) {
        (void)*(volatile char *)page;
        FAIL("no fault");
    }
    EXPECT_EQ(fault_code, SEGV_MAPERR);
    restore_default(SIGSEGV);
}

TEST(sigfpe_intdiv)
{
    fault_setup(SIGFPE);
    volatile int zero = 0, one = 1, r = 0;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        r = one / zero;
        FAIL("no fault (r=%d)", r);
    }
    EXPECT_EQ(fault_sig, SIGFPE);
    EXPECT_EQ(fault_code, FPE_INTDIV);
    EXPECT_TRUE(fault_addr == (void *)fault_rip); /* the instruction */
    volatile long long mn = (long long)1 << 63, m1 = -1, q = 0;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        q = mn / m1; /* overflow: #DE too */
        FAIL("no fault (q=%lld)", q);
    }
    EXPECT_EQ(fault_sig, SIGFPE);
    EXPECT_EQ(fault_code, FPE_INTDIV);
    restore_default(SIGFPE);
}

extern char sig_ud2_insn[];

__attribute__((noinline)) static void do_ud2(void)
{
    __asm__ volatile(".globl sig_ud2_insn\n"
                     "sig_ud2_insn: ud2\n");
}

TEST(sigill_ud2)
{
    fault_setup(SIGILL);
    if (sigsetjmp(fault_jmp, 1) == 0) {
        do_ud2();
        FAIL("no fault");
    }
    EXPECT_EQ(fault_sig, SIGILL);
    EXPECT_EQ(fault_code, ILL_ILLOPN);
    EXPECT_TRUE(fault_addr == (void *)sig_ud2_insn);
    EXPECT_EQ(fault_rip, (long)sig_ud2_insn);
    restore_default(SIGILL);
}

static volatile int trap_code, trap_count;
static volatile long trap_rip;

static void trap_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    (void)sig;
    trap_count++;
    trap_code = si->si_code;
    trap_rip = uc->uc_mcontext.gregs[REG_RIP];
}

extern char sig_after_int3[];

TEST(sigtrap_int3_resumes)
{
    ASSERT_OK(install(SIGTRAP, trap_handler, SA_SIGINFO, NULL));
    trap_count = 0;
    __asm__ volatile("int3\n"
                     ".globl sig_after_int3\n"
                     "sig_after_int3: nop\n");
    EXPECT_EQ(trap_count, 1);
    EXPECT_EQ(trap_code, SI_KERNEL);
    EXPECT_EQ(trap_rip, (long)sig_after_int3); /* rip is after the int3 */
    restore_default(SIGTRAP);
}

TEST(sigbus_past_eof)
{
    int fd = open("/etc/passwd", O_RDONLY);
    ASSERT_GE(fd, 0);
    struct stat st;
    ASSERT_OK(fstat(fd, &st));
    size_t eof_page = ((size_t)st.st_size + 4095) & ~(size_t)4095;
    char *m = mmap(NULL, eof_page + 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    ASSERT_TRUE(m != MAP_FAILED);
    fault_setup(SIGBUS);
    EXPECT_EQ(m[0], st.st_size > 0 ? m[0] : 0);
    if (sigsetjmp(fault_jmp, 1) == 0) {
        (void)*(volatile char *)(m + eof_page + 16);
        FAIL("no fault");
    }
    EXPECT_EQ(fault_sig, SIGBUS);
    EXPECT_EQ(fault_code, BUS_ADRERR);
    EXPECT_TRUE(fault_addr == m + eof_page + 16);
    munmap(m, eof_page + 4096);
    restore_default(SIGBUS);
}

TEST(blocked_fault_kills)
{
    /* A fault with the signal blocked (or ignored) kills the process. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        block(SIGSEGV);
        *(volatile int *volatile)NULL = 1;
        _exit(0);
    }
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGSEGV);

    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        signal(SIGFPE, SIG_IGN);
        volatile int z = 0, seven = 7;
        _exit(seven / z);
    }
    st = wait_for(pid, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGFPE);
}

/* ------------------------------------------------------------ default actions */

TEST(default_actions_in_children)
{
    const int term[] = {SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGHUP,
                        SIGINT, SIGABRT, SIGQUIT, SIGSEGV, SIGRTMIN + 1};
    for (unsigned i = 0; i < sizeof term / sizeof term[0]; i++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            raise(term[i]);
            _exit(0);
        }
        int st = wait_for(pid, 0);
        EXPECT_TRUE(WIFSIGNALED(st));
        EXPECT_EQ(WTERMSIG(st), term[i]);
    }
    /* Ignored by default: the child lives on. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        raise(SIGCHLD);
        raise(SIGURG);
        raise(SIGWINCH);
        raise(SIGCONT);
        _exit(6);
    }
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 6);
}

TEST(sigkill_sigstop_uncatchable)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = simple_handler;
    EXPECT_ERRNO(sigaction(SIGKILL, &sa, NULL), EINVAL);
    EXPECT_ERRNO(sigaction(SIGSTOP, &sa, NULL), EINVAL);
    sa.sa_handler = SIG_IGN;
    EXPECT_ERRNO(sigaction(SIGKILL, &sa, NULL), EINVAL);
    EXPECT_OK(sigaction(SIGKILL, NULL, &sa));
    sigset_t all, cur;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    sigprocmask(SIG_SETMASK, NULL, &cur);
    EXPECT_EQ(sigismember(&cur, SIGKILL), 0);
    EXPECT_EQ(sigismember(&cur, SIGSTOP), 0);
    EXPECT_EQ(sigismember(&cur, SIGUSR1), 1);
    unblock_all();
    EXPECT_ERRNO(kill(getpid(), 65), EINVAL);
    EXPECT_ERRNO(kill(getpid(), -1), EINVAL);
    EXPECT_ERRNO(syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), 65), EINVAL);
    EXPECT_ERRNO(syscall(SYS_tgkill, getpid(), 0x3fffffff, SIGUSR1), ESRCH);
    EXPECT_ERRNO(syscall(SYS_tgkill, 0x3fffffff, syscall(SYS_gettid), SIGUSR1), ESRCH);
    EXPECT_ERRNO(syscall(SYS_tgkill, 0, syscall(SYS_gettid), SIGUSR1), EINVAL);
}

TEST(stop_continue_seen_by_parent)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(fds[1]);
        while (read(fds[0], &c, 1) < 0)
            ;
        _exit(0);
    }
    close(fds[0]);
    int st = -1;
    EXPECT_OK(kill(pid, SIGSTOP));
    EXPECT_EQ(waitpid(pid, &st, WUNTRACED), pid);
    EXPECT_TRUE(WIFSTOPPED(st));
    EXPECT_EQ(WSTOPSIG(st), SIGSTOP);
    /* Reported once. */
    EXPECT_EQ(waitpid(pid, &st, WUNTRACED | WNOHANG), 0);

    EXPECT_OK(kill(pid, SIGCONT));
    EXPECT_EQ(waitpid(pid, &st, WCONTINUED), pid);
    EXPECT_TRUE(WIFCONTINUED(st));
    EXPECT_EQ(waitpid(pid, &st, WCONTINUED | WNOHANG), 0);

    /* waitid flavour. */
    EXPECT_OK(kill(pid, SIGSTOP));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    EXPECT_OK(waitid(P_PID, pid, &si, WSTOPPED));
    EXPECT_EQ(si.si_code, CLD_STOPPED);
    EXPECT_EQ(si.si_status, SIGSTOP);
    EXPECT_EQ(si.si_pid, pid);
    /* While stopped, SIGKILL still kills it. */
    EXPECT_OK(kill(pid, SIGKILL));
    st = wait_for(pid, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGKILL);
    close(fds[1]);
}

TEST(stopped_child_resumes_and_exits)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(fds[1]);
        raise(SIGSTOP); /* stops itself */
        _exit(read(fds[0], &c, 1) == 1 && c == 'g' ? 10 : 11);
    }
    close(fds[0]);
    int st;
    EXPECT_EQ(waitpid(pid, &st, WUNTRACED), pid);
    EXPECT_TRUE(WIFSTOPPED(st));
    EXPECT_EQ(write(fds[1], "g", 1), 1);
    EXPECT_OK(kill(pid, SIGCONT));
    st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 10);
    close(fds[1]);
}

TEST(sigpipe_default_kills_writer)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    close(fds[0]);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(fds[1], "x", 1);
        _exit(0);
    }
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGPIPE);

    /* Ignored: EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    EXPECT_ERRNO(write(fds[1], "x", 1), EPIPE);
    /* Blocked: EPIPE and SIGPIPE pending for this thread. */
    signal(SIGPIPE, SIG_DFL);
    block(SIGPIPE);
    EXPECT_ERRNO(write(fds[1], "x", 1), EPIPE);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    siginfo_t si;
    struct timespec zero = {0, 0};
    EXPECT_EQ(sigtimedwait(&set, &si, &zero), SIGPIPE);
    EXPECT_EQ(si.si_code, SI_USER);
    unblock_all();
    close(fds[1]);
}

TEST(signal_to_child_handler_and_exit)
{
    int ready[2];
    ASSERT_OK(pipe(ready));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        install(SIGUSR1, info_handler, SA_SIGINFO, NULL);
        reset_got();
        close(ready[0]);
        write(ready[1], "r", 1);
        while (got_count == 0)
            pause();
        _exit(got_code == SI_USER && got_pid == getppid() ? 0 : 1);
    }
    close(ready[1]);
    char c;
    EXPECT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    EXPECT_OK(kill(pid, SIGUSR1));
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(handlers_reset_by_exec_mask_kept)
{
    /* After execve, caught signals revert to default, ignored stay ignored,
     * and the mask is inherited: `sh` sees SIGUSR2 ignored and SIGUSR1
     * blocked; kill -USR1 $$ then stays pending and the shell exits 0. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        install(SIGTERM, simple_handler, 0, NULL);
        signal(SIGUSR2, SIG_IGN);
        block(SIGUSR1);
        char *argv[] = {"sh", "-c", "kill -USR2 $$; kill -USR1 $$; kill -TERM $$; exit 3", NULL};
        extern char **environ;
        execve("/bin/sh", argv, environ);
        _exit(127);
    }
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGTERM);
}

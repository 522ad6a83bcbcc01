/*
 * creds_time.c - credentials and time (issue 3): the setuid family and
 * dropping privileges in a forked child, setgroups, setfsuid, capget/capset,
 * all clocks incl. CPU clocks, clock_getcpuclockid, alarm, setitimer/
 * getitimer (REAL, VIRTUAL, PROF), POSIX timers (SIGEV_SIGNAL, SIGEV_NONE,
 * SIGEV_THREAD_ID, overruns), times, getrusage, priorities, sched_*, getcpu,
 * personality, prctl names.
 *
 * Expects to run as root (natively and in the sandbox); privilege changes are
 * made only in forked children. An issue-3 program (see
 * tests/tests/conformance.rs).
 */
#include "harness.h"

#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int wait_for(pid_t pid)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? st : -1;
}

/* Runs fn in a child; returns its exit code (or 100 + signal). */
static int in_child(int (*fn)(void))
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(fn());
    int st = wait_for(pid);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 100 + WTERMSIG(st);
    return -1;
}

static long long ts_ns(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static long long clock_ns(clockid_t c)
{
    struct timespec t;
    if (clock_gettime(c, &t) != 0)
        return -1;
    return ts_ns(&t);
}

static void busy_cpu_ms(int ms)
{
    long long start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    while (clock_ns(CLOCK_THREAD_CPUTIME_ID) - start < ms * 1000000LL)
        ;
}

/* ------------------------------------------------------------ credentials */

TEST(root_resuid)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;
    ASSERT_OK(getresuid(&r, &e, &s));
    ASSERT_OK(getresgid(&rg, &eg, &sg));
    if (e != 0)
        SKIP("not running as root");
    EXPECT_EQ(r, 0);
    EXPECT_EQ(s, 0);
    EXPECT_EQ(setfsuid(-1), 0); /* query: fsuid follows euid */
    EXPECT_EQ(setfsgid(-1), eg);
}

static int drop_all(void)
{
    if (setgroups(0, NULL) != 0)
        return 1;
    if (setresgid(2000, 2000, 2000) != 0)
        return 2;
    if (setresuid(1000, 1000, 1000) != 0)
        return 3;
    uid_t r, e, s;
    gid_t rg, eg, sg;
    getresuid(&r, &e, &s);
    getresgid(&rg, &eg, &sg);
    if (r != 1000 || e != 1000 || s != 1000 || rg != 2000 || eg != 2000 || sg != 2000)
        return 4;
    if (getuid() != 1000 || geteuid() != 1000 || getgid() != 2000 || getegid() != 2000)
        return 5;
    /* No way back. */
    if (setuid(0) != -1 || errno != EPERM)
        return 6;
    if (setresuid(-1, 0, -1) != -1 || errno != EPERM)
        return 7;
    if (setgid(0) != -1 || errno != EPERM)
        return 8;
    gid_t g = 5;
    if (setgroups(1, &g) != -1 || errno != EPERM)
        return 9;
    /* Unprivileged: may set uids only among real/effective/saved. */
    if (setuid(1000) != 0 || setreuid(1000, 1000) != 0)
        return 10;
    /* Capabilities are gone. */
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return 11;
    if (d[0].effective || d[0].permitted || d[1].effective || d[1].permitted)
        return 12;
    /* Can't kill a root process now. */
    if (kill(getppid(), 0) != -1 || errno != EPERM)
        return 13;
    /* setfsuid: unprivileged may only pick one of r/e/s uids; returns old. */
    if (setfsuid(0) != 1000 || setfsuid(-1) != 1000)
        return 14;
    return 0;
}

TEST(drop_privileges_in_child)
{
    if (geteuid() != 0)
        SKIP("not running as root");
    EXPECT_EQ(in_child(drop_all), 0);
}

static int temp_drop(void)
{
    /* Drop only the effective uid: the saved 0 lets us come back. */
    if (setresuid(-1, 1000, -1) != 0)
        return 1;
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    if (r != 0 || e != 1000 || s != 0)
        return 2;
    if (seteuid(0) != 0)
        return 3;
    if (geteuid() != 0)
        return 4;
    /* setreuid with a new real uid sets saved = new effective. */
    if (setreuid(1001, 1002) != 0)
        return 5;
    getresuid(&r, &e, &s);
    if (r != 1001 || e != 1002 || s != 1002)
        return 6;
    /* setfsuid as "root-turned-user" */
    if (setfsuid(1001) != 1002)
        return 7;
    if (setfsuid(-1) != 1001)
        return 8;
    return 0;
}

TEST(temporary_euid_drop)
{
    if (geteuid() != 0)
        SKIP("not running as root");
    EXPECT_EQ(in_child(temp_drop), 0);
}

static int groups_child(void)
{
    gid_t set[3] = {10, 20, 30}, got[8];
    if (setgroups(3, set) != 0)
        return 1;
    if (getgroups(0, NULL) != 3)
        return 2;
    if (getgroups(8, got) != 3 || got[0] != 10 || got[1] != 20 || got[2] != 30)
        return 3;
    if (getgroups(2, got) != -1 || errno != EINVAL)
        return 4;
    if (setgroups(65537, set) != -1 || errno != EINVAL)
        return 5;
    if (setgroups(0, NULL) != 0 || getgroups(0, NULL) != 0)
        return 6;
    return 0;
}

TEST(setgroups_getgroups)
{
    if (geteuid() != 0)
        SKIP("not running as root");
    EXPECT_EQ(in_child(groups_child), 0);
}

TEST(capget_versions)
{
    struct __user_cap_header_struct h = {0, 0};
    struct __user_cap_data_struct d[2];
    /* Unknown version: EINVAL, and the kernel writes its preferred one. */
    EXPECT_ERRNO(syscall(SYS_capget, &h, d), EINVAL);
    EXPECT_EQ(h.version, _LINUX_CAPABILITY_VERSION_3);
    /* With NULL data a bad version is not an error: the probe succeeds and
     * reports the preferred version. */
    h.version = 0x12345;
    EXPECT_OK(syscall(SYS_capget, &h, NULL));
    EXPECT_EQ(h.version, _LINUX_CAPABILITY_VERSION_3);
    /* A known version with NULL data: just a probe. */
    h.version = _LINUX_CAPABILITY_VERSION_1;
    EXPECT_OK(syscall(SYS_capget, &h, NULL));
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = 0;
    EXPECT_OK(syscall(SYS_capget, &h, d));
    /* Effective is a subset of permitted. */
    EXPECT_EQ(d[0].effective & ~d[0].permitted, 0);
    EXPECT_EQ(d[1].effective & ~d[1].permitted, 0);
    h.pid = 0x3fffffff;
    EXPECT_ERRNO(syscall(SYS_capget, &h, d), ESRCH);
}

static int capset_child(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return 1;
    if (!(d[0].effective & (1u << CAP_SETUID)))
        return 0; /* nothing to drop: treat as pass */
    d[0].effective &= ~(1u << CAP_SETUID);
    if (syscall(SYS_capset, &h, d) != 0)
        return 2;
    if (setuid(1000) != -1 || errno != EPERM)
        return 3;
    /* Raising effective again from permitted is allowed. */
    d[0].effective |= 1u << CAP_SETUID;
    if (syscall(SYS_capset, &h, d) != 0)
        return 4;
    /* Adding to permitted is not. */
    d[0].permitted &= ~(1u << CAP_SETUID);
    d[0].effective &= ~(1u << CAP_SETUID);
    if (syscall(SYS_capset, &h, d) != 0)
        return 5;
    d[0].permitted |= 1u << CAP_SETUID;
    if (syscall(SYS_capset, &h, d) != -1 || errno != EPERM)
        return 6;
    return 0;
}

TEST(capset_drop_cap)
{
    if (geteuid() != 0)
        SKIP("not running as root");
    EXPECT_EQ(in_child(capset_child), 0);
}

/* ------------------------------------------------------------ clocks */

TEST(all_clocks_readable)
{
    static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC,
                                    CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
                                    CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
                                    CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME, CLOCK_TAI};
    for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct timespec t = {-1, -1}, r = {-1, -1};
        EXPECT_OK(clock_gettime(ids[i], &t));
        EXPECT_GE(t.tv_sec, 0);
        EXPECT_TRUE(t.tv_nsec >= 0 && t.tv_nsec < 1000000000);
        EXPECT_OK(clock_getres(ids[i], &r));
        EXPECT_GT(ts_ns(&r), 0);
    }
    struct timespec t;
    EXPECT_ERRNO(clock_gettime(100, &t), EINVAL);
    EXPECT_ERRNO(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)8), EFAULT);
    /* BOOTTIME >= MONOTONIC. */
    long long m = clock_ns(CLOCK_MONOTONIC), b = clock_ns(CLOCK_BOOTTIME);
    EXPECT_GE(b, m);
}

TEST(cpu_clocks_advance_with_work)
{
    long long p0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    long long t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    busy_cpu_ms(30);
    long long p1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    long long t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    EXPECT_GE(p1 - p0, 30000000LL);
    EXPECT_GE(t1 - t0, 30000000LL);
    /* Sleeping doesn't count. */
    long long s0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    struct timespec d = {0, 50 * 1000000};
    nanosleep(&d, NULL);
    EXPECT_LT(clock_ns(CLOCK_THREAD_CPUTIME_ID) - s0, 25000000LL);
}

TEST(clock_getcpuclockid)
{
    clockid_t c;
    EXPECT_EQ(clock_getcpuclockid(0, &c), 0);
    struct timespec t;
    EXPECT_OK(clock_gettime(c, &t));
    EXPECT_EQ(clock_getcpuclockid(getpid(), &c), 0);
    EXPECT_OK(clock_gettime(c, &t));
    /* A child's CPU clock is readable by its parent. */
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char ch;
        close(p[1]);
        busy_cpu_ms(20);
        read(p[0], &ch, 1);
        _exit(0);
    }
    close(p[0]);
    EXPECT_EQ(clock_getcpuclockid(pid, &c), 0);
    EXPECT_OK(clock_gettime(c, &t));
    close(p[1]);
    wait_for(pid);
    /* clock_nanosleep on the thread CPU clock is refused. */
    struct timespec d = {0, 1000};
    EXPECT_EQ(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &d, NULL), EINVAL);
}

/* ------------------------------------------------------------ alarm, itimers */

static volatile int sig_count;
static volatile int last_code, last_value, last_overrun;

static void count_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    sig_count++;
    last_code = si->si_code;
    last_value = si->si_value.sival_int;
    last_overrun = si->si_overrun;
}

static void install(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = count_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(sig, &sa, NULL);
}

TEST(alarm_return_values)
{
    EXPECT_EQ(alarm(10), 0);
    EXPECT_EQ(alarm(5), 10); /* 9.99.. rounds up */
    EXPECT_EQ(alarm(0), 5);
    EXPECT_EQ(alarm(0), 0);
    /* alarm shares ITIMER_REAL. */
    alarm(7);
    struct itimerval it;
    ASSERT_OK(getitimer(ITIMER_REAL, &it));
    EXPECT_TRUE(it.it_value.tv_sec == 6 || it.it_value.tv_sec == 7);
    EXPECT_EQ(it.it_interval.tv_sec, 0);
    EXPECT_EQ(alarm(0), 7);
    /* Delivered as SIGALRM with SI_KERNEL. */
    install(SIGALRM);
    sig_count = 0;
    alarm(1);
    while (sig_count == 0)
        pause();
    EXPECT_EQ(last_code, SI_KERNEL);
    signal(SIGALRM, SIG_DFL);
}

TEST(setitimer_getitimer_real)
{
    struct itimerval it = {{0, 250000}, {1, 500000}}, old, cur;
    ASSERT_OK(setitimer(ITIMER_REAL, &it, &old));
    EXPECT_EQ(old.it_value.tv_sec, 0);
    EXPECT_EQ(old.it_value.tv_usec, 0);
    ASSERT_OK(getitimer(ITIMER_REAL, &cur));
    EXPECT_EQ(cur.it_interval.tv_sec, 0);
    EXPECT_EQ(cur.it_interval.tv_usec, 250000);
    long long v = cur.it_value.tv_sec * 1000000LL + cur.it_value.tv_usec;
    EXPECT_LE(v, 1500000);
    EXPECT_GT(v, 1000000);
    struct itimerval zero = {{0, 0}, {0, 0}};
    ASSERT_OK(setitimer(ITIMER_REAL, &zero, &old));
    EXPECT_EQ(old.it_interval.tv_usec, 250000);
    ASSERT_OK(getitimer(ITIMER_REAL, &cur));
    EXPECT_EQ(cur.it_value.tv_sec, 0);
    EXPECT_EQ(cur.it_value.tv_usec, 0);
    struct itimerval bad = {{0, 0}, {0, 1000000}};
    EXPECT_ERRNO(setitimer(ITIMER_REAL, &bad, NULL), EINVAL);
    EXPECT_ERRNO(setitimer((__itimer_which_t)5, &zero, NULL), EINVAL);
    EXPECT_ERRNO(getitimer((__itimer_which_t)5, &cur), EINVAL);

    /* A periodic timer fires repeatedly. */
    install(SIGALRM);
    sig_count = 0;
    struct itimerval per = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &per, NULL);
    while (sig_count < 3)
        pause();
    setitimer(ITIMER_REAL, &zero, NULL);
    EXPECT_GE(sig_count, 3);
    signal(SIGALRM, SIG_DFL);
}

TEST(itimer_virtual_and_prof)
{
    install(SIGVTALRM);
    install(SIGPROF);
    sig_count = 0;
    struct itimerval it = {{0, 0}, {0, 20000}}, zero = {{0, 0}, {0, 0}};
    ASSERT_OK(setitimer(ITIMER_VIRTUAL, &it, NULL));
    long long start = clock_ns(CLOCK_MONOTONIC);
    while (sig_count == 0 && clock_ns(CLOCK_MONOTONIC) - start < 10000000000LL)
        ;
    EXPECT_EQ(sig_count, 1);
    sig_count = 0;
    ASSERT_OK(setitimer(ITIMER_PROF, &it, NULL));
    start = clock_ns(CLOCK_MONOTONIC);
    while (sig_count == 0 && clock_ns(CLOCK_MONOTONIC) - start < 10000000000LL)
        ;
    EXPECT_EQ(sig_count, 1);
    setitimer(ITIMER_VIRTUAL, &zero, NULL);
    setitimer(ITIMER_PROF, &zero, NULL);
    signal(SIGVTALRM, SIG_DFL);
    signal(SIGPROF, SIG_DFL);
}

/* ------------------------------------------------------------ POSIX timers */

TEST(timer_sigev_signal)
{
    install(SIGUSR1);
    sig_count = 0;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 1234;
    timer_t t;
    ASSERT_OK(timer_create(CLOCK_MONOTONIC, &ev, &t));
    struct itimerspec its = {{0, 0}, {0, 10 * 1000000}};
    ASSERT_OK(timer_settime(t, 0, &its, NULL));
    while (sig_count == 0)
        pause();
    EXPECT_EQ(sig_count, 1);
    EXPECT_EQ(last_code, SI_TIMER);
    EXPECT_EQ(last_value, 1234);
    struct itimerspec cur;
    ASSERT_OK(timer_gettime(t, &cur));
    EXPECT_EQ(cur.it_value.tv_sec, 0);
    EXPECT_EQ(cur.it_value.tv_nsec, 0); /* one-shot: disarmed */
    EXPECT_OK(timer_delete(t));
    EXPECT_ERRNO(timer_gettime(t, &cur), EINVAL);
    EXPECT_ERRNO(timer_delete(t), EINVAL);
    signal(SIGUSR1, SIG_DFL);
}

TEST(timer_overrun)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR2;
    ev.sigev_value.sival_int = 5;
    timer_t t;
    ASSERT_OK(timer_create(CLOCK_MONOTONIC, &ev, &t));
    struct itimerspec its = {{0, 1000000}, {0, 1000000}};
    ASSERT_OK(timer_settime(t, 0, &its, NULL));
    struct timespec d = {0, 60 * 1000000};
    nanosleep(&d, NULL);
    siginfo_t si;
    EXPECT_EQ(sigwaitinfo(&set, &si), SIGUSR2);
    EXPECT_EQ(si.si_code, SI_TIMER);
    EXPECT_EQ(si.si_value.sival_int, 5);
    EXPECT_GT(si.si_overrun, 5); /* ~59 expirations coalesced */
    int ov = timer_getoverrun(t);
    EXPECT_EQ(ov, si.si_overrun);
    struct itimerspec cur;
    ASSERT_OK(timer_gettime(t, &cur));
    EXPECT_EQ(cur.it_interval.tv_nsec, 1000000);
    timer_delete(t);
    /* Drain a possible pending one. */
    struct timespec zero = {0, 0};
    sigtimedwait(&set, &si, &zero);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

TEST(timer_sigev_none_and_abstime)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_NONE;
    timer_t t;
    ASSERT_OK(timer_create(CLOCK_REALTIME, &ev, &t));
    struct itimerspec its = {{0, 0}, {10, 0}}, old, cur;
    ASSERT_OK(timer_settime(t, 0, &its, &old));
    EXPECT_EQ(old.it_value.tv_sec, 0);
    ASSERT_OK(timer_gettime(t, &cur));
    EXPECT_TRUE(cur.it_value.tv_sec == 9 || cur.it_value.tv_sec == 10);
    /* Absolute time in the past: expires at once (no signal: SIGEV_NONE). */
    its.it_value.tv_sec = 1;
    ASSERT_OK(timer_settime(t, TIMER_ABSTIME, &its, NULL));
    ASSERT_OK(timer_gettime(t, &cur));
    EXPECT_EQ(cur.it_value.tv_sec, 0);
    EXPECT_EQ(cur.it_value.tv_nsec, 0);
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    EXPECT_ERRNO(timer_settime(t, 0, &bad, NULL), EINVAL);
    EXPECT_OK(timer_delete(t));
    EXPECT_ERRNO(timer_create(100, &ev, &t), EINVAL);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 99;
    EXPECT_ERRNO(timer_create(CLOCK_MONOTONIC, &ev, &t), EINVAL);
}

TEST(timer_sigev_thread_id)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 77;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t t;
    ASSERT_OK(timer_create(CLOCK_MONOTONIC, &ev, &t));
    struct itimerspec its = {{0, 0}, {0, 5 * 1000000}};
    ASSERT_OK(timer_settime(t, 0, &its, NULL));
    siginfo_t si;
    EXPECT_EQ(sigwaitinfo(&set, &si), SIGUSR1);
    EXPECT_EQ(si.si_code, SI_TIMER);
    EXPECT_EQ(si.si_value.sival_int, 77);
    timer_delete(t);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    /* A tid outside this process: EINVAL. */
    ev._sigev_un._tid = 0x3fffffff;
    EXPECT_ERRNO(timer_create(CLOCK_MONOTONIC, &ev, &t), EINVAL);
}

TEST(timer_on_cpu_clock)
{
    install(SIGUSR2);
    sig_count = 0;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR2;
    timer_t t;
    ASSERT_OK(timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &t));
    struct itimerspec its = {{0, 0}, {0, 20 * 1000000}};
    ASSERT_OK(timer_settime(t, 0, &its, NULL));
    long long start = clock_ns(CLOCK_MONOTONIC);
    while (sig_count == 0 && clock_ns(CLOCK_MONOTONIC) - start < 10000000000LL)
        ;
    EXPECT_EQ(sig_count, 1);
    timer_delete(t);
    signal(SIGUSR2, SIG_DFL);
}

/* ------------------------------------------------------------ usage */

TEST(times_and_rusage_children)
{
    struct tms t0, t1;
    clock_t c0 = times(&t0);
    EXPECT_NE(c0, (clock_t)-1);
    struct rusage ru0, ru1;
    ASSERT_OK(getrusage(RUSAGE_CHILDREN, &ru0));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        busy_cpu_ms(120);
        _exit(0);
    }
    /* Not counted until reaped. */
    wait_for(pid);
    ASSERT_OK(getrusage(RUSAGE_CHILDREN, &ru1));
    long long d = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1000000LL +
                  (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                  (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000LL +
                  (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    EXPECT_GE(d, 100000);
    EXPECT_GT(ru1.ru_maxrss, 0);
    clock_t c1 = times(&t1);
    EXPECT_GE(c1, c0);
    long hz = sysconf(_SC_CLK_TCK);
    EXPECT_EQ(hz, 100);
    EXPECT_GE((t1.tms_cutime + t1.tms_cstime) - (t0.tms_cutime + t0.tms_cstime), 8);
}

TEST(getrusage_self_thread)
{
    struct rusage a, b;
    ASSERT_OK(getrusage(RUSAGE_SELF, &a));
    busy_cpu_ms(30);
    ASSERT_OK(getrusage(RUSAGE_SELF, &b));
    long long d = (b.ru_utime.tv_sec - a.ru_utime.tv_sec) * 1000000LL +
                  (b.ru_utime.tv_usec - a.ru_utime.tv_usec) +
                  (b.ru_stime.tv_sec - a.ru_stime.tv_sec) * 1000000LL +
                  (b.ru_stime.tv_usec - a.ru_stime.tv_usec);
    EXPECT_GE(d, 25000);
    EXPECT_GT(b.ru_maxrss, 0);
    EXPECT_OK(getrusage(RUSAGE_THREAD, &b));
    EXPECT_ERRNO(getrusage(5, &b), EINVAL);
    EXPECT_ERRNO(syscall(SYS_getrusage, RUSAGE_SELF, (void *)8), EFAULT);
}

/* ------------------------------------------------------------ scheduling */

static int nice_child(void)
{
    errno = 0;
    int p = getpriority(PRIO_PROCESS, 0);
    if (errno)
        return 1;
    if (p > 18)
        return 0;
    if (setpriority(PRIO_PROCESS, 0, p + 1) != 0)
        return 2;
    if (getpriority(PRIO_PROCESS, 0) != p + 1)
        return 3;
    if (getpriority(PRIO_PROCESS, getpid()) != p + 1)
        return 4;
    /* Clamped to 19. */
    if (setpriority(PRIO_PROCESS, 0, 100) != 0 || getpriority(PRIO_PROCESS, 0) != 19)
        return 5;
    /* nice() adds and returns the new value. */
    if (geteuid() == 0) {
        errno = 0;
        if (nice(-1) != 18 || errno)
            return 6;
        if (setpriority(PRIO_PROCESS, 0, -100) != 0 || getpriority(PRIO_PROCESS, 0) != -20)
            return 7;
    }
    return 0;
}

TEST(priorities)
{
    EXPECT_EQ(in_child(nice_child), 0);
    EXPECT_ERRNO(getpriority(42, 0), EINVAL);
    EXPECT_ERRNO(setpriority(42, 0, 0), EINVAL);
    EXPECT_ERRNO(getpriority(PRIO_PROCESS, 0x3fffffff), ESRCH);
}

TEST(sched_policy_queries)
{
    EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);
    struct sched_param sp = {.sched_priority = -1};
    EXPECT_OK(sched_getparam(0, &sp));
    EXPECT_EQ(sp.sched_priority, 0);
    EXPECT_EQ(sched_get_priority_max(SCHED_FIFO), 99);
    EXPECT_EQ(sched_get_priority_min(SCHED_FIFO), 1);
    EXPECT_EQ(sched_get_priority_max(SCHED_RR), 99);
    EXPECT_EQ(sched_get_priority_max(SCHED_OTHER), 0);
    EXPECT_EQ(sched_get_priority_min(SCHED_OTHER), 0);
    EXPECT_ERRNO(sched_get_priority_max(42), EINVAL);
    EXPECT_ERRNO(sched_getscheduler(-1), EINVAL);
    EXPECT_ERRNO(sched_getscheduler(0x3fffffff), ESRCH);
    sp.sched_priority = 0;
    EXPECT_OK(sched_setscheduler(0, SCHED_OTHER, &sp));
    sp.sched_priority = 5;
    EXPECT_ERRNO(sched_setscheduler(0, SCHED_OTHER, &sp), EINVAL);
    struct timespec ts;
    EXPECT_OK(sched_rr_get_interval(0, &ts));
    EXPECT_OK(sched_yield());
}

TEST(getcpu_in_affinity)
{
    unsigned cpu = 9999, node = 9999;
    ASSERT_OK(syscall(SYS_getcpu, &cpu, &node, NULL));
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_OK(sched_getaffinity(0, sizeof set, &set));
    EXPECT_LT(cpu, CPU_SETSIZE);
    EXPECT_TRUE(CPU_ISSET(cpu, &set));
    EXPECT_LT(node, 1024);
    EXPECT_GE(sched_getcpu(), 0);
}

/* ------------------------------------------------------------ misc */

static int personality_child(void)
{
    int old = personality(0xffffffff);
    if (personality(old | ADDR_NO_RANDOMIZE) != old)
        return 1;
    if (personality(0xffffffff) != (old | ADDR_NO_RANDOMIZE))
        return 2;
    return 0;
}

TEST(personality_query)
{
    int p = personality(0xffffffff);
    EXPECT_GE(p, 0);
    EXPECT_EQ(p & PER_MASK, PER_LINUX);
    EXPECT_EQ(personality(0xffffffff), p);
    EXPECT_EQ(in_child(personality_child), 0);
}

TEST(prctl_name)
{
    char old[32] = {0}, name[32] = {0};
    ASSERT_OK(prctl(PR_GET_NAME, old, 0, 0, 0));
    EXPECT_OK(prctl(PR_SET_NAME, "conf-test", 0, 0, 0));
    EXPECT_OK(prctl(PR_GET_NAME, name, 0, 0, 0));
    EXPECT_STREQ(name, "conf-test");
    /* Truncated to 15 bytes. */
    EXPECT_OK(prctl(PR_SET_NAME, "0123456789abcdefghij", 0, 0, 0));
    memset(name, 'x', sizeof name);
    EXPECT_OK(prctl(PR_GET_NAME, name, 0, 0, 0));
    EXPECT_STREQ(name, "0123456789abcde");
    EXPECT_OK(prctl(PR_SET_NAME, old, 0, 0, 0));
    EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
    EXPECT_ERRNO(prctl(PR_SET_DUMPABLE, 2, 0, 0, 0), EINVAL);
    EXPECT_ERRNO(prctl(0x7fff1234, 0, 0, 0, 0), EINVAL);
    int keep = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
    EXPECT_EQ(keep, 0);
}

TEST(prctl_name_per_thread_in_child)
{
    /* A fork child inherits the name. */
    EXPECT_OK(prctl(PR_SET_NAME, "parent-name", 0, 0, 0));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char n[32] = {0};
        prctl(PR_GET_NAME, n, 0, 0, 0);
        _exit(strcmp(n, "parent-name") == 0 ? 0 : 1);
    }
    int st = wait_for(pid);
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(membarrier_query)
{
    long r = syscall(SYS_membarrier, 0 /* MEMBARRIER_CMD_QUERY */, 0, 0);
    EXPECT_GE(r, 0);
    EXPECT_ERRNO(syscall(SYS_membarrier, 0, 1, 0), EINVAL);
}

/*
 * process.c - process lifecycle (issue 3): fork/vfork/clone, wait4/waitpid/
 * waitid statuses and options, SIGCHLD, execve errors and #! scripts,
 * PR_SET_CHILD_SUBREAPER and PR_SET_PDEATHSIG, process groups and sessions.
 *
 * Unlike the older conformance programs this one forks and execs (it is one
 * of the issue-3 programs, see tests/tests/conformance.rs). Rules for the
 * children: they never print (the parent checks everything through exit
 * statuses and pipes) and leave with _exit() so stdio buffers are not flushed
 * twice. Nothing is written to the filesystem; RLIMIT_CORE is set to 0 at
 * start-up so that children killed by SIGABRT/SIGSEGV never write core files.
 */
#include "harness.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __WALL
#define __WALL 0x40000000
#endif
#ifndef __WCLONE
#define __WCLONE 0x80000000
#endif

/* A pid no process can have (above PID_MAX_LIMIT). */
#define NO_SUCH_PID 0x3fffffff

extern char **environ;

__attribute__((constructor)) static void no_core_files(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
}

/* waitpid that retries EINTR; returns the status, or -1 (errno set). */
static int wait_for(pid_t pid, int options)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, options);
    while (r < 0 && errno == EINTR);
    if (r < 0 || (pid > 0 && r != pid))
        return -1;
    return st;
}

static void busy_ms(int ms)
{
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    do
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ fork + wait */

TEST(fork_exit_codes)
{
    static const int codes[] = {0, 1, 42, 127, 255, 256 + 3};
    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0)
            _exit(codes[i]);
        int st = 0;
        struct rusage ru;
        EXPECT_EQ(wait4(pid, &st, 0, &ru), pid);
        EXPECT_TRUE(WIFEXITED(st));
        EXPECT_FALSE(WIFSIGNALED(st));
        EXPECT_EQ(WEXITSTATUS(st), codes[i] & 0xff);
    }
}

TEST(fork_returns_child_pid_and_copies_memory)
{
    static volatile int shared_var = 1;
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t parent = getpid();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        shared_var = 2;
        pid_t me = getpid();
        int ok = me != parent && getppid() == parent &&
                 syscall(SYS_gettid) == me && shared_var == 2;
        if (write(fds[1], &me, sizeof me) != sizeof me)
            _exit(3);
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    pid_t reported = 0;
    EXPECT_EQ(read(fds[0], &reported, sizeof reported), sizeof reported);
    EXPECT_EQ(reported, pid);
    close(fds[0]);
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT_EQ(shared_var, 1); /* the child's write went to its own copy */
}

TEST(fork_many_children)
{
    enum { N = 24 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        ASSERT_GE(pids[i], 0);
        if (pids[i] == 0)
            _exit(i + 1);
    }
    int seen[N + 1] = {0};
    for (int i = 0; i < N; i++) {
        int st;
        pid_t r = wait(&st);
        ASSERT_GT(r, 0);
        EXPECT_TRUE(WIFEXITED(st));
        int code = WEXITSTATUS(st);
        ASSERT_TRUE(code >= 1 && code <= N);
        EXPECT_EQ(pids[code - 1], r);
        seen[code]++;
    }
    for (int i = 1; i <= N; i++)
        EXPECT_EQ(seen[i], 1);
    EXPECT_ERRNO(wait(NULL), ECHILD);
}

TEST(wait_killed_by_signal)
{
    static const int sigs[] = {SIGKILL, SIGTERM, SIGUSR1, SIGHUP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        int fds[2];
        ASSERT_OK(pipe(fds));
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            char c;
            close(fds[1]);
            read(fds[0], &c, 1); /* blocks until killed */
            _exit(0);
        }
        close(fds[0]);
        EXPECT_OK(kill(pid, sigs[i]));
        int st = wait_for(pid, 0);
        EXPECT_TRUE(WIFSIGNALED(st));
        EXPECT_FALSE(WIFEXITED(st));
        EXPECT_EQ(WTERMSIG(st), sigs[i]);
        close(fds[1]);
    }
}

TEST(wait_core_signals_termsig)
{
    /* Only WTERMSIG: the core bit depends on RLIMIT_CORE and the host. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        abort();
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGABRT);

    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        volatile int *volatile p = NULL;
        *p = 1;
        _exit(0);
    }
    st = wait_for(pid, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGSEGV);
}

TEST(waitpid_echild)
{
    EXPECT_ERRNO(waitpid(-1, NULL, 0), ECHILD);
    EXPECT_ERRNO(waitpid(-1, NULL, WNOHANG), ECHILD);
    EXPECT_ERRNO(waitpid(getpid(), NULL, 0), ECHILD);
    EXPECT_ERRNO(waitpid(NO_SUCH_PID, NULL, 0), ECHILD);
    EXPECT_ERRNO(wait4(-1, NULL, 0, NULL), ECHILD);
    siginfo_t si;
    EXPECT_ERRNO(waitid(P_ALL, 0, &si, WEXITED), ECHILD);
}

TEST(waitpid_bad_options)
{
    EXPECT_ERRNO(waitpid(-1, NULL, 0x10000000), EINVAL);
    siginfo_t si;
    EXPECT_ERRNO(waitid(P_ALL, 0, &si, 0), EINVAL); /* no WEXITED etc. */
    EXPECT_ERRNO(waitid((idtype_t)42, 0, &si, WEXITED), EINVAL);
}

TEST(wnohang_returns_zero)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(fds[1]);
        _exit(read(fds[0], &c, 1) == 0 ? 9 : 1);
    }
    close(fds[0]);
    int st = -1;
    EXPECT_EQ(waitpid(pid, &st, WNOHANG), 0);
    EXPECT_EQ(waitpid(-1, &st, WNOHANG), 0);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    EXPECT_EQ(waitid(P_ALL, 0, &si, WEXITED | WNOHANG), 0);
    EXPECT_EQ(si.si_pid, 0); /* nothing ready: si_pid zeroed */
    close(fds[1]); /* EOF: the child exits */
    st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 9);
}

TEST(waitid_wnowait_then_reap)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        _exit(5);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    EXPECT_OK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    EXPECT_EQ(si.si_signo, SIGCHLD);
    EXPECT_EQ(si.si_code, CLD_EXITED);
    EXPECT_EQ(si.si_pid, pid);
    EXPECT_EQ(si.si_status, 5);
    EXPECT_EQ(si.si_uid, getuid());
    /* Still there: WNOWAIT left it a zombie. */
    memset(&si, 0, sizeof si);
    EXPECT_OK(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT));
    EXPECT_EQ(si.si_pid, pid);
    /* Now reap it. */
    memset(&si, 0, sizeof si);
    EXPECT_OK(waitid(P_PID, pid, &si, WEXITED));
    EXPECT_EQ(si.si_pid, pid);
    EXPECT_EQ(si.si_code, CLD_EXITED);
    EXPECT_EQ(si.si_status, 5);
    EXPECT_ERRNO(waitpid(pid, NULL, 0), ECHILD);
}

TEST(waitid_killed_code)
{
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
    kill(pid, SIGTERM);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    EXPECT_OK(waitid(P_PID, pid, &si, WEXITED));
    EXPECT_EQ(si.si_code, CLD_KILLED);
    EXPECT_EQ(si.si_status, SIGTERM);
    EXPECT_EQ(si.si_pid, pid);
    close(fds[1]);
}

TEST(waitid_p_pgid)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(fds[1]);
        if (setpgid(0, 0) != 0)
            _exit(1);
        read(fds[0], &c, 1);
        _exit(11);
    }
    close(fds[0]);
    /* Both sides call setpgid so the group exists before we wait on it. */
    int r = setpgid(pid, pid), e = errno;
    EXPECT_TRUE(r == 0 || e == EACCES);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    EXPECT_EQ(waitid(P_PGID, pid, &si, WEXITED | WNOHANG), 0);
    EXPECT_EQ(si.si_pid, 0);
    /* Our own group has no children in it. */
    EXPECT_ERRNO(waitid(P_PGID, getpgrp(), &si, WEXITED | WNOHANG), ECHILD);
    EXPECT_ERRNO(waitpid(0, NULL, WNOHANG), ECHILD);
    close(fds[1]);
    memset(&si, 0, sizeof si);
    EXPECT_OK(waitid(P_PGID, pid, &si, WEXITED));
    EXPECT_EQ(si.si_pid, pid);
    EXPECT_EQ(si.si_status, 11);
}

TEST(waitpid_negative_pgid)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        _exit(12);
    }
    int r = setpgid(pid, pid), e = errno;
    EXPECT_TRUE(r == 0 || e == EACCES || e == ESRCH);
    int st = wait_for(-pid, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 12);
}

TEST(wait4_rusage)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        busy_ms(60);
        _exit(0);
    }
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    int st;
    EXPECT_EQ(wait4(pid, &st, 0, &ru), pid);
    long us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec +
              ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    EXPECT_GE(us, 30000);
    EXPECT_LT(us, 30000000);
    EXPECT_GT(ru.ru_maxrss, 0);
}

TEST(sigchld_siginfo)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    ASSERT_OK(sigprocmask(SIG_BLOCK, &set, &old));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        _exit(77);
    siginfo_t si;
    struct timespec to = {10, 0};
    EXPECT_EQ(sigtimedwait(&set, &si, &to), SIGCHLD);
    EXPECT_EQ(si.si_signo, SIGCHLD);
    EXPECT_EQ(si.si_code, CLD_EXITED);
    EXPECT_EQ(si.si_pid, pid);
    EXPECT_EQ(si.si_status, 77);
    int st = wait_for(pid, 0);
    EXPECT_EQ(WEXITSTATUS(st), 77);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

TEST(sigchld_ignored_autoreaps)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    ASSERT_OK(sigaction(SIGCHLD, &sa, &old));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        _exit(1);
    /* Blocks until the child is gone, then there is nothing to reap. */
    EXPECT_ERRNO(waitpid(pid, NULL, 0), ECHILD);
    sigaction(SIGCHLD, &old, NULL);
}

TEST(sa_nocldwait_autoreaps)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = SA_NOCLDWAIT;
    ASSERT_OK(sigaction(SIGCHLD, &sa, &old));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        _exit(1);
    EXPECT_ERRNO(waitpid(pid, NULL, 0), ECHILD);
    sigaction(SIGCHLD, &old, NULL);
}

TEST(getppid_in_child)
{
    pid_t me = getpid();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        _exit(getppid() == me ? 0 : 1);
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

/* ------------------------------------------------------------ vfork, clone */

TEST(vfork_shares_memory_and_suspends_parent)
{
    static volatile int flag;
    flag = 0;
    pid_t pid = vfork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        flag = 42; /* visible to the parent: same memory */
        _exit(3);
    }
    /* The parent runs again only after the child has exited. */
    EXPECT_EQ(flag, 42);
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 3);
}

TEST(vfork_execve)
{
    pid_t pid = vfork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char *argv[] = {"sh", "-c", "exit 17", NULL};
        execve("/bin/sh", argv, environ);
        _exit(126);
    }
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 17);
}

static volatile int clone_touched;

static int clone_vm_fn(void *arg)
{
    clone_touched = (int)(intptr_t)arg;
    return 21;
}

TEST(clone_vm_vfork)
{
    size_t sz = 256 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    ASSERT_TRUE(stack != MAP_FAILED);
    clone_touched = 0;
    pid_t pid = clone(clone_vm_fn, stack + sz, CLONE_VM | CLONE_VFORK | SIGCHLD,
                      (void *)(intptr_t)1234);
    ASSERT_GT(pid, 0);
    EXPECT_EQ(clone_touched, 1234); /* shared VM, child already finished */
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 21);
    munmap(stack, sz);
}

static int clone_plain_fn(void *arg)
{
    (void)arg;
    return 8;
}

TEST(clone_exit_signal_zero_needs_wclone)
{
    size_t sz = 256 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    ASSERT_TRUE(stack != MAP_FAILED);
    /* No CLONE_VM: the child runs on its own copy of the stack mapping. */
    pid_t pid = clone(clone_plain_fn, stack + sz, 0, NULL);
    ASSERT_GT(pid, 0);
    /* Not a "normal" child: invisible to a plain wait. */
    EXPECT_ERRNO(waitpid(pid, NULL, WNOHANG), ECHILD);
    EXPECT_ERRNO(waitpid(-1, NULL, WNOHANG), ECHILD);
    int st = wait_for(pid, __WCLONE);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 8);

    pid = clone(clone_plain_fn, stack + sz, 0, NULL);
    ASSERT_GT(pid, 0);
    st = wait_for(pid, __WALL);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 8);
    munmap(stack, sz);
}

TEST(clone_parent_settid)
{
    size_t sz = 256 * 1024;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    ASSERT_TRUE(stack != MAP_FAILED);
    pid_t ptid = 0;
    pid_t pid = clone(clone_plain_fn, stack + sz, CLONE_PARENT_SETTID | SIGCHLD,
                      NULL, &ptid);
    ASSERT_GT(pid, 0);
    EXPECT_EQ(ptid, pid);
    int st = wait_for(pid, 0);
    EXPECT_EQ(WEXITSTATUS(st), 8);
    munmap(stack, sz);
}

TEST(clone_invalid_flags)
{
    /* CLONE_SIGHAND without CLONE_VM, CLONE_THREAD without CLONE_SIGHAND. */
    EXPECT_ERRNO(syscall(SYS_clone, CLONE_SIGHAND | SIGCHLD, 0, 0, 0, 0), EINVAL);
    EXPECT_ERRNO(syscall(SYS_clone, CLONE_THREAD | SIGCHLD, 0, 0, 0, 0), EINVAL);
}

/* ------------------------------------------------------------ execve */

/* Runs execve(path, argv) in a child; returns its wait status. The child
 * exits with 200 + errno if execve fails. */
static int exec_status(const char *path, char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execve(path, argv, environ);
        _exit(200 + errno);
    }
    return wait_for(pid, 0);
}

TEST(execve_true_false)
{
    char *t[] = {"true", NULL};
    int st = exec_status("/bin/true", t);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    char *f[] = {"false", NULL};
    st = exec_status("/bin/false", f);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 1);
}

TEST(execve_passes_argv)
{
    char *argv[] = {"sh", "-c", "exit $#", "zero", "a", "b", "c", NULL};
    int st = exec_status("/bin/sh", argv);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 3);
}

TEST(execve_errors)
{
    char *argv[] = {"x", NULL};
    int st = exec_status("/nonexistent/prog", argv);
    EXPECT_EQ(WEXITSTATUS(st), 200 + ENOENT);
    st = exec_status("/etc/passwd", argv); /* not executable */
    EXPECT_EQ(WEXITSTATUS(st), 200 + EACCES);
    st = exec_status("/", argv); /* a directory */
    EXPECT_EQ(WEXITSTATUS(st), 200 + EACCES);
    st = exec_status("/etc", argv);
    EXPECT_EQ(WEXITSTATUS(st), 200 + EACCES);
    st = exec_status("/etc/passwd/x", argv);
    EXPECT_EQ(WEXITSTATUS(st), 200 + ENOTDIR);
    st = exec_status("", argv);
    EXPECT_EQ(WEXITSTATUS(st), 200 + ENOENT);
    /* A failed execve returns in the caller (here directly, no fork). */
    EXPECT_ERRNO(execve("/nonexistent/prog", argv, environ), ENOENT);
    EXPECT_ERRNO(execve("/dev/null/x", argv, environ), ENOTDIR);
    EXPECT_ERRNO(syscall(SYS_execve, "/bin/true", (char **)8, environ), EFAULT);
    EXPECT_ERRNO(syscall(SYS_execve, (char *)8, argv, environ), EFAULT);
}

TEST(execveat_empty_path)
{
    int fd = open("/bin/true", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char *argv[] = {"true", NULL};
        syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
        _exit(200 + errno);
    }
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    char *argv[] = {"true", NULL};
    EXPECT_ERRNO(syscall(SYS_execveat, fd, "", argv, environ, 0), ENOENT);
    EXPECT_ERRNO(syscall(SYS_execveat, fd, "", argv, environ, 0x12345678), EINVAL);
    close(fd);
    int dfd = open("/bin", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dfd, 0);
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char *argv2[] = {"false", NULL};
        syscall(SYS_execveat, dfd, "false", argv2, environ, 0);
        _exit(200 + errno);
    }
    st = wait_for(pid, 0);
    EXPECT_EQ(WEXITSTATUS(st), 1);
    close(dfd);
}

/* comm is the last component of the path execve was given: a symlink's own
 * name, not its target's ("sleep" for busybox's applet links). */
TEST(execve_comm_is_the_name_given)
{
    char dir[] = "/dev/shm/conf-comm-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    char link[128];
    snprintf(link, sizeof link, "%s/my-comm-link", dir);
    ASSERT_EQ(symlink("/bin/sh", link), 0);
    char *argv[] = {"sh", "-c", "read c < /proc/$$/comm; [ \"$c\" = my-comm-link ]", NULL};
    int st = exec_status(link, argv);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    unlink(link);
    rmdir(dir);
}

TEST(execve_closes_cloexec_fds)
{
    int keep = open("/etc/passwd", O_RDONLY);
    int gone = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(keep, 0);
    ASSERT_GE(gone, 0);
    char script[128];
    /* exit 0 only if `keep` is open and `gone` is not. */
    snprintf(script, sizeof script,
             "(: <&%d) 2>/dev/null || exit 1; (: <&%d) 2>/dev/null && exit 2; exit 0",
             keep, gone);
    char *argv[] = {"sh", "-c", script, NULL};
    int st = exec_status("/bin/sh", argv);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    close(keep);
    close(gone);
}

TEST(execve_shebang_script)
{
    /* /usr/bin/ldd is a #!/bin/bash script in glibc's libc-bin. */
    char head[2] = {0};
    int fd = open("/usr/bin/ldd", O_RDONLY);
    if (fd < 0 || read(fd, head, 2) != 2 || memcmp(head, "#!", 2) != 0) {
        if (fd >= 0)
            close(fd);
        SKIP("/usr/bin/ldd is not a #! script on this host");
    }
    close(fd);
    int out[2];
    ASSERT_OK(pipe(out));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(out[1], 2);
        close(out[0]);
        close(out[1]);
        char *argv[] = {"ldd", "--version", NULL};
        execve("/usr/bin/ldd", argv, environ);
        _exit(200 + errno);
    }
    close(out[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while ((r = read(out[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    buf[n] = 0;
    close(out[0]);
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    EXPECT_EQ(strncmp(buf, "ldd ", 4), 0);

    /* The script's own exit status comes back through the interpreter. */
    char *argv[] = {"ldd", NULL};
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int p[2];
        if (pipe(p) == 0) { /* swallow the usage message */
            dup2(p[1], 1);
            dup2(p[1], 2);
        }
        execve("/usr/bin/ldd", argv, environ);
        _exit(200 + errno);
    }
    st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 1); /* "ldd: missing file arguments" */
}

TEST(exit_status_through_sh)
{
    char *argv[] = {"sh", "-c", "kill -TERM $$", NULL};
    int st = exec_status("/bin/sh", argv);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGTERM);
    char *argv2[] = {"sh", "-c", "(exit 4); echo $? >/dev/null; sh -c 'exit 6'", NULL};
    st = exec_status("/bin/sh", argv2);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 6);
}

/* ------------------------------------------------------------ subreaper, pdeathsig */

TEST(child_subreaper_adopts_grandchild)
{
    int r = -1;
    ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
    EXPECT_OK(prctl(PR_GET_CHILD_SUBREAPER, &r, 0, 0, 0));
    EXPECT_EQ(r, 1);
    pid_t me = getpid();
    int info[2], go[2];
    ASSERT_OK(pipe(info));
    ASSERT_OK(pipe(go));
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        pid_t gc = fork();
        if (gc < 0)
            _exit(2);
        if (gc == 0) {
            char c;
            close(go[1]);
            /* Wait until the test has reaped our parent. */
            if (read(go[0], &c, 1) != 1)
                _exit(3);
            _exit(getppid() == me ? 0 : 5);
        }
        write(info[1], &gc, sizeof gc);
        _exit(0);
    }
    close(go[0]);
    close(info[1]);
    pid_t gc = -1;
    EXPECT_EQ(read(info[0], &gc, sizeof gc), sizeof gc);
    close(info[0]);
    int st = wait_for(child, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT_EQ(write(go[1], "x", 1), 1);
    close(go[1]);
    /* The orphan is now our child: we can wait for it. */
    st = wait_for(gc, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    EXPECT_ERRNO(waitpid(-1, NULL, WNOHANG), ECHILD);
    EXPECT_OK(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0));
    EXPECT_OK(prctl(PR_GET_CHILD_SUBREAPER, &r, 0, 0, 0));
    EXPECT_EQ(r, 0);
}

TEST(pdeathsig_on_parent_exit)
{
    ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
    int info[2];
    ASSERT_OK(pipe(info));
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        int ready[2];
        if (pipe(ready) != 0)
            _exit(2);
        pid_t gc = fork();
        if (gc < 0)
            _exit(2);
        if (gc == 0) {
            int sig = 0;
            if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
                _exit(3);
            if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) != 0 || sig != SIGKILL)
                _exit(4);
            write(ready[1], "r", 1);
            for (;;)
                pause(); /* killed when the parent exits */
        }
        char c;
        if (read(ready[0], &c, 1) != 1)
            _exit(5);
        write(info[1], &gc, sizeof gc);
        _exit(0);
    }
    close(info[1]);
    pid_t gc = -1;
    EXPECT_EQ(read(info[0], &gc, sizeof gc), sizeof gc);
    close(info[0]);
    int st = wait_for(child, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = wait_for(gc, 0);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGKILL);
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    EXPECT_ERRNO(prctl(PR_SET_PDEATHSIG, 65, 0, 0, 0), EINVAL);
    int sig = -1;
    EXPECT_OK(prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0));
    EXPECT_EQ(sig, 0);
}

TEST(pdeathsig_cleared_in_fork_child)
{
    ASSERT_OK(prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int sig = -1;
        prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
        _exit(sig == 0 ? 0 : 1);
    }
    int st = wait_for(pid, 0);
    EXPECT_EQ(WEXITSTATUS(st), 0);
    EXPECT_OK(prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0));
}

/* ------------------------------------------------------------ pgrp, session */

TEST(pgid_queries)
{
    EXPECT_EQ(getpgrp(), getpgid(0));
    EXPECT_EQ(getpgid(0), getpgid(getpid()));
    EXPECT_EQ(getsid(0), getsid(getpid()));
    /* 0 when the session leader lives outside our pid namespace (CI containers). */
    EXPECT_GE(getsid(0), 0);
    EXPECT_ERRNO(getpgid(NO_SUCH_PID), ESRCH);
    EXPECT_ERRNO(getsid(NO_SUCH_PID), ESRCH);
    EXPECT_ERRNO(setpgid(NO_SUCH_PID, 0), ESRCH);
    EXPECT_ERRNO(setpgid(0, -1), EINVAL);
    EXPECT_ERRNO(kill(NO_SUCH_PID, 0), ESRCH);
    EXPECT_OK(kill(getpid(), 0));
    EXPECT_OK(kill(0, 0));
}

TEST(setpgid_in_child)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pid_t me = getpid(), old = getpgrp();
        if (old == me)
            _exit(1);
        if (setpgid(0, 0) != 0)
            _exit(2);
        if (getpgrp() != me || getpgid(0) != me)
            _exit(3);
        /* Back to the parent's group (same session): allowed. A group outside
         * our pid namespace reads as 0 and cannot be named. */
        if (old != 0 && setpgid(0, old) != 0)
            _exit(4);
        if (old != 0 && getpgrp() != old)
            _exit(5);
        /* A group that does not exist in this session. */
        if (setpgid(0, NO_SUCH_PID) == 0 || errno != EPERM)
            _exit(6);
        _exit(0);
    }
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(setsid_semantics)
{
    int fds[2], back[2];
    ASSERT_OK(pipe(fds));
    ASSERT_OK(pipe(back));
    pid_t parent_sid = getsid(0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[1]);
        close(back[0]);
        pid_t me = getpid();
        int code = 0;
        if (getsid(0) != parent_sid)
            code = 1;
        else if (setsid() != me)
            code = 2;
        else if (getsid(0) != me || getpgrp() != me)
            code = 3;
        else if (setsid() != -1 || errno != EPERM) /* already a group leader */
            code = 4;
        else if (setpgid(0, 0) != -1 || errno != EPERM) /* session leader */
            code = 5;
        write(back[1], "s", 1);
        char c;
        read(fds[0], &c, 1);
        _exit(code);
    }
    close(fds[0]);
    close(back[1]);
    char c;
    EXPECT_EQ(read(back[0], &c, 1), 1);
    EXPECT_EQ(getsid(pid), pid);
    EXPECT_EQ(getpgid(pid), pid);
    /* A session leader's group can't be changed, nor moved across sessions. */
    EXPECT_ERRNO(setpgid(pid, getpgrp()), EPERM);
    EXPECT_ERRNO(setpgid(pid, pid), EPERM);
    close(fds[1]);
    close(back[0]);
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(setsid_group_leader_eperm)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setpgid(0, 0) != 0)
            _exit(1);
        _exit(setsid() == -1 && errno == EPERM ? 0 : 2);
    }
    int st = wait_for(pid, 0);
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(setpgid_after_exec_eacces)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[1]);
        dup2(fds[0], 0);
        char *argv[] = {"sh", "-c", "read x", NULL};
        execve("/bin/sh", argv, environ);
        _exit(127);
    }
    close(fds[0]);
    /* Wait until the child has exec'd: poll its /bin/sh-ness via a retry of
     * setpgid, which succeeds until the exec and fails with EACCES after. */
    int r = 0, e = 0;
    for (int i = 0; i < 2000; i++) {
        r = setpgid(pid, pid);
        e = errno;
        if (r != 0)
            break;
        sleep_ms(2);
    }
    EXPECT_EQ(r, -1);
    EXPECT_EQ(e, EACCES);
    close(fds[1]);
    int st = wait_for(pid, 0);
    EXPECT_TRUE(WIFEXITED(st));
}

TEST(exit_group_via_exit_and_status_of_last_child)
{
    /* _exit from a grandchild is only visible to its own parent. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        pid_t g = fork();
        if (g < 0)
            _exit(1);
        if (g == 0)
            _exit(33);
        int st;
        if (waitpid(g, &st, 0) != g)
            _exit(2);
        _exit(WEXITSTATUS(st) + 1);
    }
    int st = wait_for(pid, 0);
    EXPECT_EQ(WEXITSTATUS(st), 34);
}

/* ------------------------------------------------------------ pidfd */

#include <poll.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open_(pid_t pid, unsigned flags)
{
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int pidfd_send_signal_(int fd, int sig, siginfo_t *info, unsigned flags)
{
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

TEST(pidfd_poll_and_waitid)
{
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(p[1]);
        read(p[0], &c, 1); /* until the parent closes its end */
        _exit(7);
    }
    close(p[0]);
    int fd = pidfd_open_(pid, 0);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    EXPECT_EQ(poll(&pfd, 1, 0), 0);
    close(p[1]); /* the child exits */
    EXPECT_EQ(poll(&pfd, 1, 5000), 1);
    EXPECT_TRUE(pfd.revents & POLLIN);
    char buf[8];
    EXPECT_ERRNO(read(fd, buf, sizeof buf), EINVAL);
    /* Exited but not reaped: still exists, the signal is dropped. */
    EXPECT_OK(pidfd_send_signal_(fd, SIGTERM, NULL, 0));
    siginfo_t si = {0};
    EXPECT_OK(waitid(P_PIDFD, fd, &si, WEXITED));
    EXPECT_EQ(si.si_pid, pid);
    EXPECT_EQ(si.si_code, CLD_EXITED);
    EXPECT_EQ(si.si_status, 7);
    /* Reaped: gone. */
    EXPECT_ERRNO(pidfd_send_signal_(fd, SIGTERM, NULL, 0), ESRCH);
    close(fd);
}

TEST(pidfd_send_signal_kills)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    int fd = pidfd_open_(pid, 0);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(pidfd_send_signal_(fd, SIGTERM, NULL, 0x80), EINVAL);
    EXPECT_OK(pidfd_send_signal_(fd, 0, NULL, 0));
    siginfo_t info = {0};
    info.si_signo = SIGUSR1; /* does not match the signal sent */
    info.si_code = SI_QUEUE;
    EXPECT_ERRNO(pidfd_send_signal_(fd, SIGTERM, &info, 0), EINVAL);
    EXPECT_OK(pidfd_send_signal_(fd, SIGKILL, NULL, 0));
    int st = 0;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(fd);
}

TEST(pidfd_errors)
{
    EXPECT_ERRNO(pidfd_open_(0, 0), EINVAL);
    EXPECT_ERRNO(pidfd_open_(-1, 0), EINVAL);
    EXPECT_ERRNO(pidfd_open_(getpid(), 1), EINVAL);
    EXPECT_ERRNO(pidfd_open_(NO_SUCH_PID, 0), ESRCH);
    EXPECT_ERRNO(pidfd_send_signal_(0x7fff, SIGTERM, NULL, 0), EBADF);
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_ERRNO(pidfd_send_signal_(p[0], SIGTERM, NULL, 0), EBADF);
    siginfo_t si;
    EXPECT_ERRNO(waitid(P_PIDFD, p[0], &si, WEXITED | WNOHANG), EBADF);
    close(p[0]);
    close(p[1]);
    /* Our own pidfd: not our child. */
    int fd = pidfd_open_(getpid(), 0);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG), ECHILD);
    close(fd);
}

TEST(pidfd_nonblock_waitid)
{
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(p[1]);
        read(p[0], &c, 1);
        _exit(0);
    }
    close(p[0]);
    int fd = pidfd_open_(pid, O_NONBLOCK);
    ASSERT_GE(fd, 0);
    siginfo_t si;
    EXPECT_ERRNO(waitid(P_PIDFD, fd, &si, WEXITED), EAGAIN);
    close(p[1]);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    close(fd);
}

TEST(kill_zombie_succeeds)
{
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        _exit(3);
    siginfo_t si;
    /* Wait for the exit without reaping. */
    EXPECT_OK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    EXPECT_OK(kill(pid, SIGTERM));
    EXPECT_OK(kill(pid, 0));
    EXPECT_OK(sigqueue(pid, SIGTERM, (union sigval){0}));
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    EXPECT_ERRNO(kill(pid, 0), ESRCH);
}

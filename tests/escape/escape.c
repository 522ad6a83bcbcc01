/*
 * escape.c - escape attempts made from INSIDE the sandbox.
 *
 * Run ONLY inside runsc (tests/tests/escape.rs builds an OCI bundle with this
 * program as /escape and runs `runsc run`): several of these attempts would
 * succeed, and do real damage, as root on the host (kill(-1, SIGKILL),
 * clock_settime, reboot(CAD_OFF), writing /proc/sys, mount, ...). As a safety
 * net, main() refuses to run when it can see the host test process
 * ($HOST_PID), i.e. when it is not in a separate pid namespace.
 *
 * Usage: /escape <attempt>   (exactly one attempt, by exact name)
 *
 * Output (stdout):
 *   ATTEMPT <name>
 *   INFO ...                  what each call returned (errno names)
 *   FAIL <name>: file:line: ... an attempt that was not contained
 *   ALIVE <name>              the sandbox still works after the attempt
 *   RESULT <name> contained   (or "RESULT <name> NOT-CONTAINED")
 * Exit status 0 only if the attempt was contained and the sandbox is alive.
 *
 * Environment, set by the driver:
 *   HOST_PID      pid of the host test process (invisible in here)
 *   HOST_SLEEPER  pid of a host `sleep` process that must survive
 *   HOST_CANARY   absolute HOST path of a canary file outside the rootfs
 *   HOST_DIR      its directory (the test's directory on the host)
 *   HOST_ABSTRACT name of an abstract unix socket a host process listens on
 *   RUNSC_PID_FILE file (in the rootfs) the driver writes runsc's host pid to
 * The bundle has /vol bind-mounted from HOST_DIR/vol (rw) with the symlinks
 * rootlink -> /, uplink -> .., canlink -> $HOST_CANARY in it, and in the
 * rootfs /abslink -> $HOST_CANARY, /hostup -> ../../canary.txt.
 */
#define main harness_unused_main
#include "harness.h"
#undef main

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

static const char *env(const char *k)
{
    const char *v = getenv(k);
    if (!v || !*v) {
        printf("FAIL %s: environment variable %s missing\n", harness_current, k);
        fflush(stdout);
        exit(3);
    }
    return v;
}

static int env_pid(const char *k) { return atoi(env(k)); }

static int errno_in(int e, const int *list)
{
    for (; *list; list++)
        if (*list == e)
            return 1;
    return 0;
}

/* expr must fail (-1) with one of the listed errnos. */
#define EXPECT_FAILS(expr, ...)                                              \
    do {                                                                     \
        errno = 0;                                                           \
        long long _r = (long long)(expr);                                    \
        int _e = errno;                                                      \
        static const int _ok[] = {__VA_ARGS__, 0};                           \
        if (_r != -1)                                                        \
            FAIL("NOT CONTAINED: %s succeeded (returned %lld)", #expr, _r);  \
        else if (!errno_in(_e, _ok))                                         \
            FAIL("%s failed with unexpected errno %s", #expr,                \
                 harness_errname(_e));                                       \
        else                                                                 \
            printf("INFO %s -> %s\n", #expr, harness_errname(_e));           \
    } while (0)

/* Logs what expr returned (for calls that may legitimately succeed inside). */
#define INFO_CALL(expr)                                                      \
    ({                                                                       \
        errno = 0;                                                           \
        long long _r = (long long)(expr);                                    \
        printf("INFO %s -> %lld %s\n", #expr, _r,                            \
               _r == -1 ? harness_errname(errno) : "");                      \
        _r;                                                                  \
    })

static char canary_host[4096], hostdir[4096];

static void load_paths(void)
{
    snprintf(canary_host, sizeof canary_host, "%s", env("HOST_CANARY"));
    snprintf(hostdir, sizeof hostdir, "%s", env("HOST_DIR"));
}

/* `path` must not open, or if it opens (a sandbox file of the same name), it
 * must not be the host's canary (which lives outside the rootfs). */
static void expect_not_host_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("INFO open(%s) -> %s\n", path, harness_errname(errno));
        return;
    }
    char buf[256] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0 && strstr(buf, "dummy-inside") == buf)
        return; /* the sandbox's own decoy */
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n')
            buf[i] = ' ';
    FAIL("NOT CONTAINED: opened %s, read %zd bytes: [%s]", path, n, buf);
}

/* A directory that must be the sandbox's root: it has our /escape and /vol. */
static void expect_sandbox_root(const char *dir)
{
    char p[8400];
    struct stat st;
    load_paths();
    snprintf(p, sizeof p, "%s/escape", dir);
    EXPECT_OK(stat(p, &st));
    snprintf(p, sizeof p, "%s/vol/rootlink", dir);
    EXPECT_OK(lstat(p, &st));
    snprintf(p, sizeof p, "%s/etc/shadow", dir);
    EXPECT_ERRNO(stat(p, &st), ENOENT);
    snprintf(p, sizeof p, "%s/%s", dir, canary_host);
    EXPECT_ERRNO(stat(p, &st), ENOENT);
}

static void write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
        FAIL("cannot write %s: %s", path, harness_errname(errno));
    if (fd >= 0)
        close(fd);
}

/* Runs fn in a child process (for attempts that change the process: chroot,
 * unshare, pivot_root); the child's failures fail the attempt. */
static void in_child(void (*fn)(void))
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        harness_current_failed = 0;
        fn();
        fflush(stdout);
        _exit(harness_current_failed ? 1 : 0);
    }
    ASSERT_GT(p, 0);
    int st = 0;
    ASSERT_EQ(waitpid(p, &st, 0), p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("child part of the attempt failed (status %#x)", st);
}

static pid_t sandbox_sleeper(void)
{
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    return p;
}

/* ---- 1-3: symlinks and .. out of the root ------------------------------ */

TEST(symlink_absolute_to_host_paths)
{
    struct stat st;
    load_paths();
    /* Links made on the host in the rootfs: followed inside, not on the host. */
    expect_not_host_file("/abslink");
    expect_not_host_file("/hostup");
    EXPECT_ERRNO(stat("/abslink", &st), ENOENT);
    /* Links made inside. */
    EXPECT_OK(symlink(canary_host, "/tmp/l-canary"));
    EXPECT_OK(symlink("/etc/shadow", "/tmp/l-shadow"));
    EXPECT_OK(symlink("/etc/passwd", "/tmp/l-passwd"));
    expect_not_host_file("/tmp/l-canary");
    expect_not_host_file("/tmp/l-shadow");
    expect_not_host_file("/tmp/l-passwd");
    expect_not_host_file(canary_host);
    expect_not_host_file("/etc/shadow");
    /* Writing and creating through the links: never the host's file. */
    EXPECT_FAILS(open("/abslink", O_WRONLY | O_CREAT | O_TRUNC, 0644), ENOENT);
    EXPECT_FAILS(open("/vol/canlink", O_WRONLY | O_CREAT | O_APPEND, 0644),
                 ENOENT);
    EXPECT_FAILS(open("/tmp/l-canary", O_WRONLY | O_CREAT, 0644), ENOENT);
    EXPECT_FAILS(truncate("/abslink", 0), ENOENT);
    EXPECT_FAILS(chmod("/vol/canlink", 0777), ENOENT);
    EXPECT_FAILS(unlink(canary_host), ENOENT);
    /* /hostup resolves inside to /canary.txt: created in the rootfs. */
    int fd = open("/hostup", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        EXPECT_EQ(write(fd, "written-inside\n", 15), 15);
        close(fd);
    }
    struct stat mine;
    EXPECT_OK(stat("/canary.txt", &mine));
    EXPECT_OK(unlink("/canary.txt"));
    /* Dangling links whose host-absolute target's parent exists on the host
     * (made by the driver): creating through them creates nothing there. */
    EXPECT_FAILS(open("/dangle", O_WRONLY | O_CREAT, 0644), ENOENT);
    EXPECT_FAILS(open("/vol/dangle", O_WRONLY | O_CREAT, 0644), ENOENT);
    EXPECT_FAILS(mkdir("/vol/dangle", 0755), EEXIST);
    EXPECT_FAILS(symlink("x", "/vol/dangle"), EEXIST);
    write_file("/vol/uplink/created-inside", "written-inside\n");
    EXPECT_OK(stat("/created-inside", &st));
    EXPECT_OK(unlink("/created-inside"));
}

TEST(dotdot_walk_from_root)
{
    char p[8192];
    struct stat root, up;
    load_paths();
    ASSERT_OK(stat("/", &root));
    ASSERT_OK(stat("/../../../../..", &up));
    EXPECT_EQ(up.st_ino, root.st_ino);
    EXPECT_EQ(up.st_dev, root.st_dev);
    snprintf(p, sizeof p, "/../../../../../../..%s", canary_host);
    expect_not_host_file(p);
    snprintf(p, sizeof p, "/tmp/../../../../..%s", canary_host);
    expect_not_host_file(p);
    expect_not_host_file("/../../../../../etc/shadow");
    /* chdir("..") forever stays at /. */
    ASSERT_OK(chdir("/tmp"));
    for (int i = 0; i < 64; i++)
        EXPECT_OK(chdir(".."));
    char cwd[4096];
    EXPECT_STREQ(getcwd(cwd, sizeof cwd), "/");
    expect_sandbox_root(".");
    /* openat(dirfd, "..") from the root, and from /vol. */
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 8; i++) {
        int nfd = openat(fd, "..", O_RDONLY | O_DIRECTORY);
        ASSERT_GE(nfd, 0);
        close(fd);
        fd = nfd;
    }
    ASSERT_OK(fstat(fd, &up));
    EXPECT_EQ(up.st_ino, root.st_ino);
    close(fd);
}

static void swap_loop(const char *dir, const char *linktarget)
{
    /* d alternates between a directory with a decoy canary.txt and a
     * symlink whose target, resolved ON THE HOST, reaches the real canary. */
    char d[256], dd[256], l[256], decoy[300];
    snprintf(d, sizeof d, "%s/d", dir);
    snprintf(dd, sizeof dd, "%s/d.dir", dir);
    snprintf(l, sizeof l, "%s/d.lnk", dir);
    snprintf(decoy, sizeof decoy, "%s/canary.txt", dd);
    mkdir(dd, 0755);
    write_file(decoy, "dummy-inside\n");
    symlink(linktarget, l);
    for (int i = 0; i < 3000; i++) {
        rename(dd, d);
        rename(d, dd);
        rename(l, d);
        rename(d, l);
    }
}

static void race(const char *dir, const char *linktarget)
{
    char path[300];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/d/canary.txt", dir);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        swap_loop(dir, linktarget);
        _exit(0);
    }
    ASSERT_GT(p, 0);
    int opened = 0, refused = 0;
    for (;;) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            char buf[128] = {0};
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n < 0 || strcmp(buf, "dummy-inside\n") != 0) {
                for (ssize_t i = 0; i < n; i++)
                    if (buf[i] == '\n')
                        buf[i] = ' ';
                FAIL("NOT CONTAINED: %s read [%s]", path, buf);
                break;
            }
            opened++;
        } else {
            refused++;
        }
        /* Operations the gofer does by name in the parent directory: if it
         * followed the link on the host, the real canary would be moved,
         * chmod'ed, or a file created next to it. */
        char moved[320], made[320];
        snprintf(moved, sizeof moved, "%s/d/canary.moved", dir);
        snprintf(made, sizeof made, "%s/d/made-by-race", dir);
        if (rename(path, moved) == 0)
            rename(moved, path);
        chmod(path, 0644);
        int mfd = open(made, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (mfd >= 0) {
            close(mfd);
            unlink(made);
        }
        int st;
        if (waitpid(p, &st, WNOHANG) == p)
            break;
    }
    printf("INFO race in %s: %d decoy opens, %d refused\n", dir, opened,
           refused);
}

TEST(symlink_race_dir_swap)
{
    load_paths();
    /* rootfs/tmp/race/d -> ../../../.. is the test directory on the host. */
    race("/tmp/race", "../../../..");
    /* HOST_DIR/vol/race/d -> ../.. is the test directory on the host. */
    race("/vol/race", "../..");
}

/* ---- 4-5: out of bind mounts ------------------------------------------ */

TEST(bindmount_symlink_to_host_root)
{
    char p[8192];
    load_paths();
    expect_sandbox_root("/vol/rootlink");
    snprintf(p, sizeof p, "/vol/rootlink%s", canary_host);
    expect_not_host_file(p);
    expect_not_host_file("/vol/rootlink/etc/shadow");
    expect_not_host_file("/vol/uplink/canary.txt");
    expect_not_host_file("/vol/canlink");
    struct stat a, b;
    EXPECT_OK(stat("/vol/uplink", &a));
    EXPECT_OK(stat("/", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    /* A link made inside the mount, to the host's parent directory. */
    EXPECT_OK(symlink("../../..", "/vol/mine"));
    expect_not_host_file("/vol/mine/canary.txt");
    snprintf(p, sizeof p, "/vol/mine%s", canary_host);
    expect_not_host_file(p);
}

TEST(bindmount_dotdot)
{
    char p[8192];
    load_paths();
    expect_not_host_file("/vol/../canary.txt");
    expect_not_host_file("/vol/../../../canary.txt");
    snprintf(p, sizeof p, "/vol/../../..%s", canary_host);
    expect_not_host_file(p);
    int fd = open("/vol", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(openat(fd, "../canary.txt", O_RDONLY), ENOENT);
    int up = openat(fd, "..", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(up, 0);
    struct stat a, b;
    EXPECT_OK(fstat(up, &a));
    EXPECT_OK(stat("/", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_ERRNO(faccessat(up, "canary.txt", F_OK, 0), ENOENT);
    close(up);
    close(fd);
    ASSERT_OK(chdir("/vol"));
    EXPECT_OK(chdir("../../.."));
    char cwd[4096];
    EXPECT_STREQ(getcwd(cwd, sizeof cwd), "/");
}

/* ---- 6-7: /proc/<pid>/root, cwd, fd ------------------------------------ */

TEST(proc_root_links)
{
    char p[8192], l[4096];
    load_paths();
    ssize_t n = readlink("/proc/1/root", l, sizeof l - 1);
    ASSERT_GT(n, 0);
    l[n] = 0;
    EXPECT_STREQ(l, "/");
    expect_sandbox_root("/proc/1/root");
    expect_sandbox_root("/proc/self/root/..");
    expect_not_host_file("/proc/1/root/../../etc/shadow");
    expect_not_host_file("/proc/self/root/../../../etc/passwd");
    snprintf(p, sizeof p, "/proc/1/root/../../..%s", canary_host);
    expect_not_host_file(p);
    snprintf(p, sizeof p, "/proc/self/root/proc/1/root/..%s", canary_host);
    expect_not_host_file(p);
    expect_not_host_file("/proc/1/root/vol/../../canary.txt");
    /* Other pids: only the sandbox's. */
    for (int pid = 2; pid < 64; pid++) {
        snprintf(p, sizeof p, "/proc/%d/root/..%s", pid, canary_host);
        expect_not_host_file(p);
    }
}

TEST(proc_cwd_and_fd_of_dirs)
{
    char p[8192];
    load_paths();
    ASSERT_OK(chdir("/vol"));
    snprintf(p, sizeof p, "/proc/self/cwd/../..%s", canary_host);
    expect_not_host_file(p);
    expect_not_host_file("/proc/self/cwd/../canary.txt");
    expect_not_host_file("/proc/1/cwd/../../canary.txt");
    int dfd = open("/vol", O_RDONLY | O_DIRECTORY);
    int pfd = open("/vol/uplink", O_PATH);
    ASSERT_GE(dfd, 0);
    ASSERT_GE(pfd, 0);
    snprintf(p, sizeof p, "/proc/self/fd/%d/../canary.txt", dfd);
    expect_not_host_file(p);
    snprintf(p, sizeof p, "/proc/self/fd/%d/../../..%s", dfd, canary_host);
    expect_not_host_file(p);
    snprintf(p, sizeof p, "/proc/self/fd/%d/canary.txt", pfd);
    expect_not_host_file(p);
    snprintf(p, sizeof p, "/proc/self/fd/%d", dfd);
    int again = open(p, O_RDONLY | O_DIRECTORY);
    ASSERT_GE(again, 0);
    EXPECT_ERRNO(openat(again, "../canary.txt", O_RDONLY), ENOENT);
    int up = openat(again, "..", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(up, 0);
    EXPECT_OK(fchdir(up));
    char cwd[4096];
    EXPECT_STREQ(getcwd(cwd, sizeof cwd), "/");
    close(up);
    close(again);
    close(dfd);
    close(pfd);
}

/* ---- 8: file handles --------------------------------------------------- */

TEST(open_by_handle_at)
{
    struct {
        unsigned int bytes;
        int type;
        unsigned char f[128];
    } h;
    int mnt = -1;
    memset(&h, 0, sizeof h);
    h.bytes = 128;
    long r = syscall(SYS_name_to_handle_at, AT_FDCWD, "/vol", &h, &mnt, 0);
    printf("INFO name_to_handle_at(/vol) -> %ld %s\n", r,
           r < 0 ? harness_errname(errno) : "");
    /* A forged handle: FILEID_INO32_GEN for inode 2 (a host fs root), and
     * others, relative to the root, /vol and AT_FDCWD. */
    int fds[3] = {AT_FDCWD, open("/", O_RDONLY), open("/vol", O_RDONLY)};
    for (int type = 1; type <= 2; type++) {
        for (int k = 0; k < 3; k++) {
            memset(&h, 0, sizeof h);
            h.bytes = 8;
            h.type = type;
            uint32_t ino = 2, gen = 0;
            memcpy(h.f, &ino, 4);
            memcpy(h.f + 4, &gen, 4);
            EXPECT_FAILS(syscall(SYS_open_by_handle_at, fds[k], &h, O_RDONLY),
                         ENOSYS, EPERM, EOPNOTSUPP, EBADF, ESTALE, EINVAL);
        }
    }
}

/* ---- 9-10, 13: ptrace ------------------------------------------------------ */

TEST(ptrace_attach_host_pid)
{
    int host = env_pid("HOST_PID"), sleeper = env_pid("HOST_SLEEPER");
    EXPECT_FAILS(syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, host, 0, 0),
                 ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, host, 0, 0),
                 ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_ptrace, 16, sleeper, 0, 0), ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_ptrace, 2 /* PEEKDATA */, sleeper, 0x400000, 0),
                 ESRCH, ENOSYS, EPERM, EIO);
}

TEST(ptrace_attach_pid1)
{
    /* pid 1 is this process; a child tries to attach to it. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        long r = syscall(SYS_ptrace, 16, 1, 0, 0);
        printf("INFO child ptrace(ATTACH, 1) -> %ld %s\n", r,
               r < 0 ? harness_errname(errno) : "");
        if (r == 0) {
            /* Allowed inside the sandbox (it is the sandbox's own process):
             * then it must only see the sandbox's process. */
            int st;
            waitpid(1, &st, __WALL);
            syscall(SYS_ptrace, 17 /* DETACH */, 1, 0, 0);
        }
        fflush(stdout);
        _exit(0);
    }
    ASSERT_GT(c, 0);
    int st;
    EXPECT_EQ(waitpid(c, &st, 0), c);
    EXPECT_FAILS(syscall(SYS_ptrace, 16, 1, 0, 0), EPERM, ENOSYS);
}

/* The sandbox's host parent (runsc run) and the host test process. */
TEST(signal_host_parent)
{
    int host = env_pid("HOST_PID");
    const char *f = env("RUNSC_PID_FILE");
    int runsc = 0;
    for (int i = 0; i < 500 && runsc == 0; i++) {
        FILE *fp = fopen(f, "r");
        if (fp) {
            if (fscanf(fp, "%d", &runsc) != 1)
                runsc = 0;
            fclose(fp);
        }
        if (!runsc)
            usleep(10000);
    }
    ASSERT_GT(runsc, 1);
    printf("INFO getppid() -> %d\n", getppid());
    EXPECT_EQ(getppid(), 0);
    int sigs[] = {SIGKILL, SIGTERM, SIGSTOP, SIGINT, SIGHUP, SIGUSR1, 0};
    for (int i = 0; sigs[i]; i++) {
        EXPECT_FAILS(kill(runsc, sigs[i]), ESRCH);
        EXPECT_FAILS(kill(host, sigs[i]), ESRCH);
        EXPECT_FAILS(kill(-runsc, sigs[i]), ESRCH);
        EXPECT_FAILS(syscall(SYS_tgkill, runsc, runsc, sigs[i]), ESRCH);
        EXPECT_FAILS(syscall(SYS_tkill, host, sigs[i]), ESRCH);
    }
    EXPECT_FAILS(syscall(SYS_ptrace, 16, runsc, 0, 0), ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_pidfd_open, runsc, 0), ESRCH);
}

/* ---- 11-12: kill --------------------------------------------------------- */

TEST(kill_minus_one)
{
    pid_t c = sandbox_sleeper();
    ASSERT_GT(c, 0);
    /* Kills every sandbox process we may signal, but nothing on the host. */
    EXPECT_OK(kill(-1, SIGKILL));
    int st;
    EXPECT_EQ(waitpid(c, &st, 0), c);
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* From a child too (pid 1 is spared). */
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        kill(-1, SIGKILL);
        kill(-1, SIGSTOP);
        _exit(0);
    }
    EXPECT_EQ(waitpid(k, &st, 0), k);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_FAILS(kill(-1, SIGTERM), ESRCH);
}

TEST(kill_host_pid)
{
    int host = env_pid("HOST_PID"), sleeper = env_pid("HOST_SLEEPER");
    EXPECT_FAILS(kill(sleeper, SIGKILL), ESRCH);
    EXPECT_FAILS(kill(sleeper, SIGSTOP), ESRCH);
    EXPECT_FAILS(kill(sleeper, 0), ESRCH);
    EXPECT_FAILS(kill(-sleeper, SIGKILL), ESRCH);
    EXPECT_FAILS(kill(host, SIGKILL), ESRCH);
    EXPECT_FAILS(syscall(SYS_tgkill, sleeper, sleeper, SIGKILL), ESRCH);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGKILL;
    si.si_code = SI_QUEUE;
    EXPECT_FAILS(syscall(SYS_rt_sigqueueinfo, sleeper, SIGKILL, &si), ESRCH,
                 ENOSYS);
    EXPECT_FAILS(syscall(SYS_pidfd_open, sleeper, 0), ESRCH);
    /* Large and odd pids. */
    EXPECT_FAILS(kill(0x7fffffff, SIGKILL), ESRCH);
    EXPECT_FAILS(kill(-0x7fffffff, SIGKILL), ESRCH);
    EXPECT_FAILS(kill(INT32_MIN, SIGKILL), ESRCH, EINVAL);
}

/* ---- 14-16, 19: devices ----------------------------------------------- */

/* A device node: creating it may be allowed (the sandbox's own node), opening
 * it must not reach a host device. */
static void try_device(const char *path, mode_t type, int maj, int min)
{
    long r = mknod(path, type | 0600, makedev(maj, min));
    printf("INFO mknod(%s, %s %d:%d) -> %ld %s\n", path,
           S_ISBLK(type) ? "blk" : "chr", maj, min, r,
           r < 0 ? harness_errname(errno) : "");
    if (r == 0) {
        EXPECT_FAILS(open(path, O_RDONLY), ENXIO, EPERM, EACCES, ENODEV,
                     ENOENT);
        EXPECT_FAILS(open(path, O_RDWR), ENXIO, EPERM, EACCES, ENODEV, ENOENT);
        unlink(path);
    } else if (errno != EPERM && errno != EACCES && errno != EROFS) {
        FAIL("mknod(%s) failed with %s", path, harness_errname(errno));
    }
}

TEST(mknod_block_device)
{
    /* The host's root filesystem device (major:minor from the driver). */
    unsigned hmaj = 0, hmin = 0;
    if (sscanf(env("HOST_ROOT_DEV"), "%u:%u", &hmaj, &hmin) == 2) {
        try_device("/tmp/hostroot", S_IFBLK, hmaj, hmin);
        try_device("/vol/hostroot", S_IFBLK, hmaj, hmin);
        try_device("/tmp/hostroot", S_IFCHR, hmaj, hmin);
    }
    int majors[][2] = {{8, 0}, {8, 1}, {253, 0}, {259, 0}, {7, 0}, {254, 0},
                       {202, 0}, {1, 0}, {3, 0}, {9, 0}};
    for (size_t i = 0; i < sizeof majors / sizeof majors[0]; i++) {
        try_device("/tmp/blk", S_IFBLK, majors[i][0], majors[i][1]);
        try_device("/vol/blk", S_IFBLK, majors[i][0], majors[i][1]);
    }
    /* A few dangerous character devices: kvm, tty0, fuse, mapper. */
    try_device("/tmp/kvm", S_IFCHR, 10, 232);
    try_device("/tmp/tty0", S_IFCHR, 4, 0);
    try_device("/tmp/fuse", S_IFCHR, 10, 229);
    try_device("/vol/mapper", S_IFCHR, 10, 236);
}

TEST(open_host_disk_nodes)
{
    const char *nodes[] = {"/dev/sda", "/dev/sda1", "/dev/vda", "/dev/vda1",
                           "/dev/nvme0n1", "/dev/nvme0", "/dev/xvda",
                           "/dev/loop0", "/dev/loop-control", "/dev/dm-0",
                           "/dev/mapper/control", "/dev/kvm", "/dev/fuse",
                           "/dev/tty0", "/dev/console", "/dev/hda",
                           "/dev/root", "/dev/disk/by-uuid", "/dev/vhost-net",
                           "/dev/net/tun", 0};
    for (int i = 0; nodes[i]; i++)
        EXPECT_FAILS(open(nodes[i], O_RDONLY), ENOENT);
    DIR *d = opendir("/dev");
    ASSERT_TRUE(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[300];
        struct stat st;
        snprintf(p, sizeof p, "/dev/%s", e->d_name);
        if (lstat(p, &st) == 0 && S_ISBLK(st.st_mode))
            FAIL("block device in /dev: %s", p);
    }
    closedir(d);
}

TEST(mount_block_device)
{
    mkdir("/tmp/m", 0755);
    const char *types[] = {"ext4", "xfs", "btrfs", "vfat", "iso9660", 0};
    const char *srcs[] = {"/dev/sda", "/dev/vda", "/dev/nvme0n1", "/tmp/blk",
                          "/dev/null", 0};
    mknod("/tmp/blk", S_IFBLK | 0600, makedev(8, 0));
    for (int t = 0; types[t]; t++)
        for (int s = 0; srcs[s]; s++)
            EXPECT_FAILS(mount(srcs[s], "/tmp/m", types[t], 0, NULL), ENODEV,
                         ENOENT, EPERM, ENOTBLK, EACCES, ENXIO);
    /* A loop device is not there to be set up either. */
    EXPECT_FAILS(open("/dev/loop-control", O_RDWR), ENOENT);
    unlink("/tmp/blk");
}

/* A filesystem the sandbox mounted for us: no device nodes, no host block
 * devices or network interfaces, no writable kernel knobs. */
static void check_mounted_instance(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode))
            FAIL("NOT CONTAINED: device node %s in a fresh mount", p);
        if (depth == 1 && strcmp(dir + strlen(dir) - 6, "/block") == 0)
            FAIL("NOT CONTAINED: host block device %s", p);
        if (strcmp(e->d_name, "uevent_helper") == 0 ||
            strcmp(e->d_name, "state") == 0 || strcmp(e->d_name, "register") == 0) {
            int fd = open(p, O_WRONLY);
            if (fd >= 0) {
                FAIL("NOT CONTAINED: %s is writable", p);
                close(fd);
            }
        }
        if (S_ISDIR(st.st_mode) && depth < 3)
            check_mounted_instance(p, depth + 1);
    }
    closedir(d);
}

TEST(mount_host_filesystems)
{
    mkdir("/tmp/m", 0755);
    /* Filesystems that would expose the host kernel's devices and state. */
    const char *types[] = {"devtmpfs", "sysfs", "debugfs", "securityfs",
                           "tracefs", "cgroup", "cgroup2", "bpf", "configfs",
                           "hugetlbfs", "mqueue", "fusectl", "efivarfs",
                           "pstore", "binfmt_misc", "nfs", "9p", "overlay",
                           0};
    for (int t = 0; types[t]; t++) {
        errno = 0;
        long r = mount("none", "/tmp/m", types[t], 0, NULL);
        printf("INFO mount(none, /tmp/m, %s) -> %ld %s\n", types[t], r,
               r < 0 ? harness_errname(errno) : "");
        if (r < 0) {
            if (errno != ENODEV && errno != EPERM && errno != ENOENT &&
                errno != EINVAL)
                FAIL("mount %s: unexpected errno %s", types[t],
                     harness_errname(errno));
            continue;
        }
        /* The sandbox may have its own emulated instance (its sysfs): then
         * nothing of the host's devices or kernel knobs is in it. */
        check_mounted_instance("/tmp/m", 0);
        EXPECT_OK(umount("/tmp/m"));
    }
    /* binfmt_misc registration is another classic. */
    EXPECT_FAILS(open("/proc/sys/fs/binfmt_misc/register", O_WRONLY), ENOENT,
                 EACCES, EROFS);
}

TEST(mount_proc_over_paths)
{
    char p[8192];
    load_paths();
    mkdir("/tmp/p", 0755);
    /* Mounting proc is allowed inside; it must be the sandbox's procfs. */
    long r = INFO_CALL(mount("proc", "/tmp/p", "proc", 0, NULL));
    if (r == 0) {
        expect_sandbox_root("/tmp/p/1/root");
        snprintf(p, sizeof p, "/tmp/p/1/root/../..%s", canary_host);
        expect_not_host_file(p);
        struct stat st;
        EXPECT_ERRNO(stat("/tmp/p/kcore", &st), ENOENT);
        EXPECT_ERRNO(stat("/tmp/p/sysrq-trigger", &st), ENOENT);
        /* Host pids are not there. */
        snprintf(p, sizeof p, "/tmp/p/%d", env_pid("HOST_SLEEPER"));
        EXPECT_ERRNO(stat(p, &st), ENOENT);
        EXPECT_OK(umount("/tmp/p"));
    }
    /* proc over / , /vol and /proc itself (stacking) */
    r = INFO_CALL(mount("proc", "/vol", "proc", 0, NULL));
    if (r == 0) {
        struct stat st;
        snprintf(p, sizeof p, "/vol/%d", env_pid("HOST_SLEEPER"));
        EXPECT_ERRNO(stat(p, &st), ENOENT);
        EXPECT_OK(umount("/vol"));
    }
    r = INFO_CALL(mount("proc", "/proc", "proc", 0, NULL));
    if (r == 0)
        EXPECT_OK(umount("/proc"));
    /* A bind of / over /tmp/p: still the sandbox's root. */
    r = INFO_CALL(mount("/", "/tmp/p", NULL, MS_BIND | MS_REC, NULL));
    if (r == 0) {
        expect_sandbox_root("/tmp/p");
        expect_not_host_file("/tmp/p/../canary.txt");
        EXPECT_OK(umount2("/tmp/p", MNT_DETACH));
    }
    expect_sandbox_root("/");
}

TEST(dev_mem_kmem_port)
{
    EXPECT_FAILS(open("/dev/mem", O_RDONLY), ENOENT);
    EXPECT_FAILS(open("/dev/kmem", O_RDONLY), ENOENT);
    EXPECT_FAILS(open("/dev/port", O_RDWR), ENOENT);
    EXPECT_FAILS(open("/dev/mem", O_RDWR | O_CREAT, 0600), EACCES, EPERM,
                 EROFS, ENOENT);
    /* Making the nodes ourselves (1:1 mem, 1:2 kmem, 1:4 port). */
    try_device("/tmp/mem", S_IFCHR, 1, 1);
    try_device("/tmp/kmem", S_IFCHR, 1, 2);
    try_device("/tmp/port", S_IFCHR, 1, 4);
    try_device("/vol/mem", S_IFCHR, 1, 1);
    /* An existing host-backed device, remade in the rootfs: /dev/null works
     * only as the sandbox's own null. */
    struct stat st;
    EXPECT_ERRNO(stat("/dev/mem", &st), ENOENT);
}

TEST(proc_kcore)
{
    EXPECT_FAILS(open("/proc/kcore", O_RDONLY), ENOENT, EACCES, EPERM);
    EXPECT_FAILS(open("/proc/kallsyms", O_RDONLY), ENOENT, EACCES, EPERM);
    EXPECT_FAILS(open("/proc/kmsg", O_RDONLY), ENOENT, EACCES, EPERM);
    EXPECT_FAILS(open("/proc/iomem", O_RDONLY), ENOENT, EACCES, EPERM);
    EXPECT_FAILS(open("/proc/vmallocinfo", O_RDONLY), ENOENT, EACCES, EPERM);
    EXPECT_FAILS(open("/proc/keys", O_RDONLY), ENOENT, EACCES, EPERM);
    EXPECT_FAILS(open("/sys/kernel/debug", O_RDONLY), ENOENT, EACCES, EPERM);
}

TEST(proc_sysrq_trigger)
{
    EXPECT_FAILS(open("/proc/sysrq-trigger", O_WRONLY), ENOENT, EACCES, EPERM,
                 EROFS);
    EXPECT_FAILS(open("/proc/sys/kernel/sysrq", O_WRONLY), ENOENT, EACCES,
                 EPERM, EROFS);
    EXPECT_FAILS(creat("/proc/sysrq-trigger", 0200), ENOENT, EACCES, EPERM,
                 EROFS);
}

/* ---- 21-22: sockets ---------------------------------------------------- */

TEST(host_abstract_unix_socket)
{
    const char *name = env("HOST_ABSTRACT");
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(sa.sun_path + 1, name, n); /* abstract: leading NUL */
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
    int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    for (int i = 0; i < 3; i++) {
        int s = socket(AF_UNIX, types[i], 0);
        if (s < 0) {
            printf("INFO socket(AF_UNIX, %d) -> %s\n", types[i],
                   harness_errname(errno));
            if (errno != ENOSYS && errno != EAFNOSUPPORT)
                FAIL("socket(AF_UNIX) failed with %s", harness_errname(errno));
            continue;
        }
        EXPECT_FAILS(connect(s, (struct sockaddr *)&sa, len), ECONNREFUSED,
                     ENOENT, EPROTOTYPE);
        if (types[i] == SOCK_DGRAM)
            EXPECT_FAILS(sendto(s, "x", 1, 0, (struct sockaddr *)&sa, len),
                         ECONNREFUSED, ENOENT, EPROTOTYPE);
        close(s);
    }
    /* Binding the same name is allowed (the sandbox's own namespace), and
     * what connects to it is only the sandbox. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s >= 0) {
        INFO_CALL(bind(s, (struct sockaddr *)&sa, len));
        close(s);
    }
    /* The raw syscall numbers, in case libc wrappers differ. */
    EXPECT_TRUE(syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0) >= 0 ||
                errno == ENOSYS || errno == EAFNOSUPPORT);
}

TEST(raw_sockets)
{
    EXPECT_FAILS(socket(AF_PACKET, SOCK_RAW, htons(0x0003 /* ETH_P_ALL */)),
                 ENOSYS, EPERM, EAFNOSUPPORT, EACCES);
    EXPECT_FAILS(socket(AF_PACKET, SOCK_DGRAM, 0), ENOSYS, EPERM,
                 EAFNOSUPPORT, EACCES);
    EXPECT_FAILS(socket(AF_INET, SOCK_RAW, IPPROTO_RAW), ENOSYS, EPERM,
                 EAFNOSUPPORT, EACCES, EPROTONOSUPPORT);
    /* NETLINK_ROUTE may be the sandbox's own (gVisor has one): logged. */
    long nl = INFO_CALL(socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */));
    if (nl >= 0)
        close(nl);
    EXPECT_FAILS(socket(AF_NETLINK, SOCK_RAW, 9 /* NETLINK_AUDIT */), ENOSYS,
                 EPERM, EAFNOSUPPORT, EACCES, EPROTONOSUPPORT);
    EXPECT_FAILS(socket(40 /* AF_VSOCK */, SOCK_STREAM, 0), ENOSYS, EPERM,
                 EAFNOSUPPORT, EACCES);
}

/* ---- 23: setns ---------------------------------------------------------- */

TEST(setns_proc_ns)
{
    const char *ns[] = {"mnt", "pid", "net", "user", "uts", "ipc", "cgroup",
                        "time", 0};
    char p[256];
    int pids[] = {1, env_pid("HOST_SLEEPER"), env_pid("HOST_PID"), 0};
    for (int i = 0; pids[i]; i++) {
        for (int j = 0; ns[j]; j++) {
            snprintf(p, sizeof p, "/proc/%d/ns/%s", pids[i], ns[j]);
            int fd = open(p, O_RDONLY);
            if (fd < 0) {
                if (errno != ENOENT)
                    FAIL("open(%s) -> %s", p, harness_errname(errno));
                continue;
            }
            /* Joining the sandbox's own namespaces may work: only pid 1. */
            if (pids[i] != 1)
                FAIL("NOT CONTAINED: opened %s", p);
            INFO_CALL(syscall(SYS_setns, fd, 0));
            close(fd);
        }
    }
    EXPECT_FAILS(syscall(SYS_setns, 0, CLONE_NEWNS), EINVAL, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_setns, 9999, 0), EBADF, ENOSYS);
    int pfd = syscall(SYS_pidfd_open, 1, 0);
    if (pfd >= 0) {
        EXPECT_FAILS(syscall(SYS_setns, pfd, CLONE_NEWNS | CLONE_NEWPID |
                                                 CLONE_NEWNET),
                     EINVAL, ENOSYS, EPERM);
        close(pfd);
    }
    expect_sandbox_root("/");
}

/* ---- 24: /proc/sys ------------------------------------------------------- */

static void try_write(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) {
        printf("INFO open(%s, O_WRONLY) -> %s\n", path,
               harness_errname(errno));
        return;
    }
    ssize_t n = write(fd, s, strlen(s));
    printf("INFO write(%s) -> %zd %s\n", path, n,
           n < 0 ? harness_errname(errno) : "");
    close(fd);
}

TEST(proc_sys_writes)
{
    /* The host checks its own values of these afterwards. */
    try_write("/proc/sys/kernel/hostname", "escaped-host\n");
    try_write("/proc/sys/kernel/domainname", "escaped-domain\n");
    try_write("/proc/sys/kernel/core_pattern", "|/tmp/pwn %p\n");
    try_write("/proc/sys/kernel/modprobe", "/tmp/pwn\n");
    try_write("/proc/sys/kernel/ctrl-alt-del", "1\n");
    try_write("/proc/sys/vm/drop_caches", "3\n");
    try_write("/proc/sys/kernel/panic", "1\n");
    try_write("/proc/sys/net/ipv4/ip_forward", "1\n");
    try_write("/proc/sys/fs/file-max", "10\n");
    try_write("/sys/kernel/uevent_helper", "/tmp/pwn\n");
    try_write("/sys/power/state", "mem\n");
    /* Inside, the hostname may be the sandbox's own; never "escaped-host"
     * on the host (checked by the driver). */
    char h[256] = {0};
    gethostname(h, sizeof h);
    printf("INFO hostname inside: %s\n", h);
}

/* ---- 25-30: privileged kernel interfaces ------------------------------------ */

TEST(kernel_modules)
{
    static char img[512] = "\177ELF";
    EXPECT_FAILS(syscall(SYS_init_module, img, sizeof img, ""), ENOSYS, EPERM);
    int fd = open("/escape", O_RDONLY);
    EXPECT_FAILS(syscall(SYS_finit_module, fd, "", 0), ENOSYS, EPERM);
    close(fd);
    EXPECT_FAILS(syscall(SYS_delete_module, "ext4", O_NONBLOCK), ENOSYS,
                 EPERM);
    EXPECT_FAILS(syscall(SYS_delete_module, "overlay", 0), ENOSYS, EPERM);
}

TEST(keyctl_add_key)
{
    EXPECT_FAILS(syscall(SYS_add_key, "user", "escape", "secret", 6,
                         -2 /* KEY_SPEC_PROCESS_KEYRING */),
                 ENOSYS, EPERM, EACCES);
    EXPECT_FAILS(syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */,
                         -4 /* KEY_SPEC_USER_KEYRING */, 0),
                 ENOSYS, EPERM, EACCES);
    EXPECT_FAILS(syscall(SYS_keyctl, 6 /* KEYCTL_DESCRIBE */, 1, 0, 0),
                 ENOSYS, EPERM, EACCES, ENOKEY);
    EXPECT_FAILS(syscall(SYS_request_key, "user", "escape", 0, 0), ENOSYS,
                 EPERM, EACCES, ENOKEY);
}

TEST(bpf_syscall)
{
    /* BPF_PROG_LOAD of a socket filter "return 0". */
    uint64_t insns[2] = {0x00000000000000b7ull /* mov r0,0 */,
                         0x0000000000000095ull /* exit */};
    union {
        struct {
            uint32_t prog_type, insn_cnt;
            uint64_t insns, license;
        } load;
        char raw[128];
    } attr;
    memset(&attr, 0, sizeof attr);
    attr.load.prog_type = 1;
    attr.load.insn_cnt = 2;
    attr.load.insns = (uintptr_t)insns;
    attr.load.license = (uintptr_t) "GPL";
    EXPECT_FAILS(syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, &attr, sizeof attr),
                 ENOSYS, EPERM);
    memset(&attr, 0, sizeof attr);
    uint32_t *m = (uint32_t *)attr.raw;
    m[0] = 2; /* array */
    m[1] = 4;
    m[2] = 4;
    m[3] = 1;
    EXPECT_FAILS(syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, &attr, sizeof attr),
                 ENOSYS, EPERM);
}

TEST(perf_event_open)
{
    char attr[128];
    memset(attr, 0, sizeof attr);
    uint32_t *a = (uint32_t *)attr;
    a[0] = 1;   /* PERF_TYPE_SOFTWARE */
    a[1] = 128; /* size */
    EXPECT_FAILS(syscall(SYS_perf_event_open, attr, -1, 0, -1, 0), ENOSYS,
                 EPERM, EACCES, ENOENT, EINVAL);
    EXPECT_FAILS(syscall(SYS_perf_event_open, attr, 0, -1, -1, 0), ENOSYS,
                 EPERM, EACCES, ENOENT, EINVAL);
    a[0] = 2; /* PERF_TYPE_TRACEPOINT */
    EXPECT_FAILS(syscall(SYS_perf_event_open, attr, -1, 0, -1, 0), ENOSYS,
                 EPERM, EACCES, ENOENT, EINVAL);
}

TEST(io_uring_setup)
{
    char params[120];
    memset(params, 0, sizeof params);
    EXPECT_FAILS(syscall(SYS_io_uring_setup, 8, params), ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_io_uring_enter, 0, 1, 0, 0, NULL, 0), ENOSYS,
                 EBADF, EOPNOTSUPP);
    EXPECT_FAILS(syscall(SYS_io_uring_register, 0, 0, NULL, 0), ENOSYS, EBADF,
                 EOPNOTSUPP);
}

TEST(userfaultfd)
{
    EXPECT_FAILS(syscall(SYS_userfaultfd, O_CLOEXEC), ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */),
                 ENOSYS, EPERM, EINVAL);
    EXPECT_FAILS(open("/dev/userfaultfd", O_RDWR), ENOENT);
}

/* ---- 31-34: namespaces, chroot, pivot_root ---------------------------------- */

static void unshare_mount_child(void)
{
    long r = INFO_CALL(unshare(CLONE_NEWNS));
    long u = INFO_CALL(unshare(CLONE_NEWUSER));
    (void)r;
    (void)u;
    mkdir("/tmp/u", 0755);
    long b = INFO_CALL(mount("/", "/tmp/u", NULL, MS_BIND | MS_REC, NULL));
    if (b == 0) {
        expect_sandbox_root("/tmp/u");
        expect_not_host_file("/tmp/u/../../canary.txt");
    }
    long p = INFO_CALL(mount("proc", "/tmp/u", "proc", 0, NULL));
    if (p == 0)
        expect_sandbox_root("/tmp/u/1/root");
    EXPECT_FAILS(mount("/dev/sda", "/tmp/u", "ext4", 0, NULL), ENOENT, ENODEV,
                 EPERM, ENOTBLK);
    EXPECT_FAILS(mount("none", "/tmp/u", "devtmpfs", 0, NULL), ENODEV, EPERM,
                 EINVAL);
    /* Remounting / read-write or making it shared must stay inside. */
    INFO_CALL(mount(NULL, "/", NULL, MS_REMOUNT, NULL));
    INFO_CALL(mount(NULL, "/", NULL, MS_SHARED | MS_REC, NULL));
    load_paths();
    expect_not_host_file(canary_host);
}

TEST(unshare_then_mount)
{
    load_paths();
    in_child(unshare_mount_child);
    expect_sandbox_root("/");
}

static void chroot_classic_child(void)
{
    /* Classic: chroot into a subdirectory keeping the cwd outside it, then
     * walk up with .. and chroot(".") to the "real" root. */
    mkdir("/tmp/jail", 0755);
    mkdir("/tmp/jail/inner", 0755);
    ASSERT_OK(chdir("/"));
    ASSERT_OK(chroot("/tmp/jail"));
    for (int i = 0; i < 100; i++)
        chdir("..");
    ASSERT_OK(chroot("."));
    expect_sandbox_root("/");
    expect_not_host_file(canary_host);
    expect_not_host_file("/../canary.txt");
    /* Chroot in a chroot. */
    ASSERT_OK(chroot("/tmp/jail"));
    ASSERT_OK(chdir("/"));
    ASSERT_OK(chroot("inner"));
    for (int i = 0; i < 100; i++)
        chdir("..");
    ASSERT_OK(chroot("."));
    expect_sandbox_root("/");
    expect_not_host_file(canary_host);
}

static void chroot_fchdir_child(void)
{
    int out = open("/", O_RDONLY | O_DIRECTORY);
    int vol = open("/vol", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(out, 0);
    mkdir("/tmp/jail", 0755);
    ASSERT_OK(chroot("/tmp/jail"));
    ASSERT_OK(chdir("/"));
    ASSERT_OK(fchdir(out));
    for (int i = 0; i < 100; i++)
        chdir("..");
    ASSERT_OK(chroot("."));
    expect_sandbox_root("/");
    expect_not_host_file(canary_host);
    /* The same through a bind-mounted (host-backed) directory fd. */
    ASSERT_OK(chroot("/tmp/jail"));
    ASSERT_OK(fchdir(vol));
    for (int i = 0; i < 100; i++)
        chdir("..");
    ASSERT_OK(chroot("."));
    expect_sandbox_root("/");
    expect_not_host_file("/canary.txt");
    expect_not_host_file(canary_host);
    /* openat(fd, "..") loops from a dir fd outside the chroot. */
    ASSERT_OK(chroot("/tmp/jail"));
    int fd = dup(vol);
    for (int i = 0; i < 50; i++) {
        int n = openat(fd, "..", O_RDONLY | O_DIRECTORY);
        ASSERT_GE(n, 0);
        close(fd);
        fd = n;
    }
    EXPECT_ERRNO(openat(fd, "canary.txt", O_RDONLY), ENOENT);
    char p[8192];
    snprintf(p, sizeof p, ".%s", canary_host);
    EXPECT_ERRNO(openat(fd, p, O_RDONLY), ENOENT);
}

TEST(chroot_classic_escape)
{
    load_paths();
    in_child(chroot_classic_child);
}

TEST(chroot_fchdir_outside_fd)
{
    load_paths();
    in_child(chroot_fchdir_child);
}

static void pivot_child(void)
{
    long u = INFO_CALL(unshare(CLONE_NEWNS));
    (void)u;
    /* pivot_root(".", ".") at /, the runc trick, and into a subdir. */
    ASSERT_OK(chdir("/"));
    long r = INFO_CALL(syscall(SYS_pivot_root, ".", "."));
    if (r == 0)
        INFO_CALL(umount2(".", MNT_DETACH));
    expect_not_host_file(canary_host);
    mkdir("/tmp/new", 0755);
    INFO_CALL(mount("tmpfs", "/tmp/new", "tmpfs", 0, NULL));
    mkdir("/tmp/new/old", 0755);
    r = INFO_CALL(syscall(SYS_pivot_root, "/tmp/new", "/tmp/new/old"));
    if (r == 0) {
        ASSERT_OK(chdir("/"));
        expect_sandbox_root("/old");
        char p[8192];
        snprintf(p, sizeof p, "/old/../..%s", canary_host);
        expect_not_host_file(p);
        expect_not_host_file("/old/../canary.txt");
    }
    /* new_root = a host-backed bind mount. */
    r = INFO_CALL(syscall(SYS_pivot_root, "/vol", "/vol"));
    expect_not_host_file("/canary.txt");
    expect_not_host_file(canary_host);
}

TEST(pivot_root_games)
{
    load_paths();
    in_child(pivot_child);
    expect_sandbox_root("/");
}

/* ---- 35-36: fds and memory ----------------------------------------------- */

TEST(fd_leaks_from_sentry)
{
    /* Before this program opens anything: only 0, 1, 2. */
    for (int fd = 3; fd < 1024; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0) {
            char l[4096] = {0}, p[64];
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            readlink(p, l, sizeof l - 1);
            char buf[64] = {0};
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            FAIL("NOT CONTAINED: fd %d is open (mode %o ino %lu -> %s), read "
                 "%zd",
                 fd, st.st_mode, (unsigned long)st.st_ino, l, n);
        } else if (errno != EBADF) {
            FAIL("fstat(%d) -> %s", fd, harness_errname(errno));
        }
    }
    const char *dirs[] = {"/proc/self/fd", "/proc/1/fd", "/proc/self/fdinfo",
                          0};
    for (int i = 0; dirs[i]; i++) {
        DIR *d = opendir(dirs[i]);
        ASSERT_TRUE(d != NULL);
        int self = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            int fd = atoi(e->d_name);
            char p[300], l[4096] = {0};
            snprintf(p, sizeof p, "%s/%s", dirs[i], e->d_name);
            readlink(p, l, sizeof l - 1);
            printf("INFO %s -> %s\n", p, l);
            if (fd > 2 && fd != self)
                FAIL("unexpected fd %s -> %s", p, l);
            /* The host paths of stdout/stderr are not revealed. */
            if (strstr(l, env("HOST_DIR")))
                FAIL("NOT CONTAINED: %s reveals a host path: %s", p, l);
        }
        closedir(d);
    }
    /* stdin/stdout/stderr: reopening through /proc gives the same files and
     * nothing else; the rest of their host directory is not reachable. */
    for (int fd = 0; fd < 3; fd++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d/../canary.txt", fd);
        expect_not_host_file(p);
    }
}

TEST(proc_self_mem_strange_addresses)
{
    int fd = open("/proc/self/mem", O_RDWR);
    printf("INFO open(/proc/self/mem) -> %d %s\n", fd,
           fd < 0 ? harness_errname(errno) : "");
    if (fd < 0) {
        if (errno != ENOENT && errno != EACCES && errno != EPERM)
            FAIL("open(/proc/self/mem) -> %s", harness_errname(errno));
    } else {
        uint64_t addrs[] = {0,
                            0x1000,
                            0x7ffffffff000ull,
                            0x7fffffffe000ull,
                            0x800000000000ull,
                            0xffff800000000000ull,
                            0xffffffff81000000ull,
                            0xffffffffff600000ull,
                            0x555555554000ull,
                            0x7f0000000000ull};
        for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
            char buf[64];
            errno = 0;
            ssize_t n = pread(fd, buf, sizeof buf, (off_t)addrs[i]);
            printf("INFO pread(mem, %#llx) -> %zd %s\n",
                   (unsigned long long)addrs[i], n,
                   n < 0 ? harness_errname(errno) : "");
            if (n > 0 && addrs[i] >= 0x800000000000ull &&
                addrs[i] != 0xffffffffff600000ull)
                FAIL("NOT CONTAINED: read kernel address %#llx",
                     (unsigned long long)addrs[i]);
        }
        close(fd);
    }
    int m1 = open("/proc/1/mem", O_RDONLY);
    printf("INFO open(/proc/1/mem) -> %d %s\n", m1,
           m1 < 0 ? harness_errname(errno) : "");
    if (m1 >= 0) {
        char b[16];
        EXPECT_FAILS(pread(m1, b, sizeof b, (off_t)0xffffffff81000000ull),
                     EIO, EFAULT, EINVAL);
        close(m1);
    }
}

TEST(process_vm_readv_pid1)
{
    static char secret[] = "own-memory";
    char buf[64];
    struct iovec local = {buf, sizeof buf}, remote;
    /* Strange addresses in pid 1 (this process) and in a child. */
    uint64_t addrs[] = {0xffffffff81000000ull, 0xffff800000000000ull,
                        0x800000000000ull, 0};
    for (int i = 0; i < 4; i++) {
        remote.iov_base = (void *)(uintptr_t)addrs[i];
        remote.iov_len = 16;
        EXPECT_FAILS(syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0),
                     EFAULT, ENOSYS, EPERM);
    }
    remote.iov_base = secret;
    remote.iov_len = sizeof secret;
    long r = INFO_CALL(syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0));
    if (r > 0)
        EXPECT_MEMEQ(buf, secret, sizeof secret);
    int host = env_pid("HOST_SLEEPER");
    remote.iov_base = (void *)0x400000;
    remote.iov_len = 16;
    EXPECT_FAILS(syscall(SYS_process_vm_readv, host, &local, 1, &remote, 1, 0),
                 ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_process_vm_writev, host, &local, 1, &remote, 1, 0),
                 ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_process_vm_readv, env_pid("HOST_PID"), &local, 1,
                         &remote, 1, 0),
                 ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_kcmp, 1, host, 0, 0, 0), ESRCH, ENOSYS, EPERM);
}

/* ---- 37-44: privileged machine operations ------------------------------------ */

TEST(iopl_ioperm)
{
    EXPECT_FAILS(syscall(SYS_iopl, 3), ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_ioperm, 0x80, 1, 1), ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_ioperm, 0x3f8, 8, 1), ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_ioperm, 0, 65536, 1), ENOSYS, EPERM, EINVAL);
}

TEST(modify_ldt)
{
    struct {
        unsigned int entry_number;
        unsigned int base_addr;
        unsigned int limit;
        unsigned int flags;
    } d = {0, 0, 0xfffff, 0x51 /* seg_32bit | limit_in_pages | useable */};
    EXPECT_FAILS(syscall(SYS_modify_ldt, 1, &d, sizeof d), ENOSYS, EPERM,
                 EINVAL);
    EXPECT_FAILS(syscall(SYS_modify_ldt, 0x11, &d, sizeof d), ENOSYS, EPERM,
                 EINVAL);
    char buf[64];
    long r = INFO_CALL(syscall(SYS_modify_ldt, 0, buf, sizeof buf));
    (void)r;
}

TEST(reboot_kexec)
{
    /* Only harmless commands: CAD on/off, and bad magic. */
    EXPECT_FAILS(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                         LINUX_REBOOT_CMD_CAD_OFF, 0),
                 ENOSYS, EPERM, EINVAL);
    EXPECT_FAILS(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                         LINUX_REBOOT_CMD_CAD_ON, 0),
                 ENOSYS, EPERM, EINVAL);
    EXPECT_FAILS(syscall(SYS_reboot, 0, 0, 0, 0), ENOSYS, EPERM, EINVAL);
    EXPECT_FAILS(syscall(SYS_kexec_load, 0, 0, NULL, 0), ENOSYS, EPERM,
                 EINVAL);
    int fd = open("/escape", O_RDONLY);
    EXPECT_FAILS(syscall(SYS_kexec_file_load, fd, -1, 1, "", 4 /* NO_INITRAMFS */),
                 ENOSYS, EPERM, EINVAL, ENOEXEC);
    close(fd);
}

TEST(swapon_acct_quotactl)
{
    int fd = open("/tmp/swapfile", O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    static char page[65536];
    memcpy(page + 4086, "SWAPSPACE2", 10);
    write(fd, page, sizeof page);
    close(fd);
    EXPECT_FAILS(swapon("/tmp/swapfile", 0), ENOSYS, EPERM, EINVAL);
    EXPECT_FAILS(swapoff("/tmp/swapfile"), ENOSYS, EPERM, EINVAL);
    EXPECT_FAILS(swapoff("/dev/sda"), ENOSYS, EPERM, ENOENT);
    EXPECT_FAILS(acct("/tmp/acct"), ENOSYS, EPERM, ENOENT);
    EXPECT_FAILS(acct(NULL), ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_quotactl, (0x800002 << 8) | 0 /* Q_QUOTAON usr */,
                         "/dev/sda", 2, "/tmp/aquota.user"),
                 ENOSYS, EPERM, ENOENT, ENOTBLK, EINVAL);
    EXPECT_FAILS(syscall(SYS_quotactl, (0x800007 << 8) | 0 /* Q_GETQUOTA */,
                         "/dev/sda", 0, page),
                 ENOSYS, EPERM, ENOENT, ENOTBLK, EINVAL);
    unlink("/tmp/swapfile");
}

TEST(syslog_dmesg)
{
    char buf[4096];
    long r = syscall(SYS_syslog, 3 /* READ_ALL */, buf, sizeof buf - 1);
    printf("INFO syslog(READ_ALL) -> %ld %s\n", r,
           r < 0 ? harness_errname(errno) : "");
    if (r > 0) {
        /* The sandbox may emulate a log, never the host kernel's. */
        buf[r] = 0;
        if (strstr(buf, "Command line:") || strstr(buf, "BIOS-e820"))
            FAIL("NOT CONTAINED: the host kernel log: %.200s", buf);
    }
    EXPECT_FAILS(syscall(SYS_syslog, 5 /* CLEAR */, 0, 0), ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_syslog, 8 /* CONSOLE_LEVEL */, 0, 7), ENOSYS,
                 EPERM);
    EXPECT_FAILS(syscall(SYS_syslog, 6 /* CONSOLE_OFF */, 0, 0), ENOSYS,
                 EPERM);
    EXPECT_FAILS(open("/dev/kmsg", O_RDWR), ENOENT);
    EXPECT_FAILS(open("/proc/kmsg", O_RDONLY), ENOENT, EPERM, EACCES);
}

TEST(clock_settime_settimeofday)
{
    struct timespec ts;
    ASSERT_OK(clock_gettime(CLOCK_REALTIME, &ts));
    ts.tv_sec += 86400 * 400;
    EXPECT_FAILS(clock_settime(CLOCK_REALTIME, &ts), EPERM, ENOSYS);
    struct timeval tv = {ts.tv_sec, 0};
    EXPECT_FAILS(settimeofday(&tv, NULL), EPERM, ENOSYS);
    struct timezone tz = {-600, 0};
    long r = INFO_CALL(settimeofday(NULL, &tz));
    (void)r;
    struct {
        unsigned int modes;
        long pad[30];
    } tx;
    memset(&tx, 0, sizeof tx);
    tx.modes = 0x0001 | 0x2000; /* ADJ_OFFSET | ADJ_NANO-ish */
    EXPECT_FAILS(syscall(SYS_adjtimex, &tx) < 0 ? -1 : 0, EPERM, ENOSYS,
                 EINVAL);
    EXPECT_FAILS(syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx) < 0 ? -1 : 0,
                 EPERM, ENOSYS, EINVAL);
    EXPECT_FAILS(open("/dev/rtc0", O_RDWR), ENOENT);
    EXPECT_FAILS(open("/dev/rtc", O_RDWR), ENOENT);
    struct timespec now;
    ASSERT_OK(clock_gettime(CLOCK_REALTIME, &now));
    EXPECT_LT(now.tv_sec, ts.tv_sec - 86400);
}

TEST(sethostname_stays_inside)
{
    ASSERT_OK(sethostname("escaped-host", 12));
    char h[64] = {0};
    EXPECT_OK(gethostname(h, sizeof h));
    EXPECT_STREQ(h, "escaped-host");
    EXPECT_OK(setdomainname("escaped-domain", 14));
    /* And again from a child in a new uts namespace, if allowed. */
    INFO_CALL(unshare(CLONE_NEWUTS));
    INFO_CALL(sethostname("escaped-host2", 13));
}

/* ---- 47-48: other processes' limits and scheduling ----------------------------- */

TEST(prlimit_host_pid)
{
    int sleeper = env_pid("HOST_SLEEPER"), host = env_pid("HOST_PID");
    struct rlimit rl = {1, 1};
    EXPECT_FAILS(prlimit(sleeper, RLIMIT_NOFILE, &rl, NULL), ESRCH, ENOSYS,
                 EPERM);
    EXPECT_FAILS(prlimit(sleeper, RLIMIT_CPU, &rl, NULL), ESRCH, ENOSYS,
                 EPERM);
    EXPECT_FAILS(prlimit(host, RLIMIT_AS, &rl, NULL), ESRCH, ENOSYS, EPERM);
    struct rlimit old;
    EXPECT_FAILS(prlimit(sleeper, RLIMIT_NOFILE, NULL, &old), ESRCH, ENOSYS,
                 EPERM);
    /* Our own hard limit: raising it past the sandbox's is refused. */
    struct rlimit big = {RLIM_INFINITY, RLIM_INFINITY};
    EXPECT_FAILS(prlimit(0, RLIMIT_NOFILE, &big, NULL), EPERM);
}

TEST(sched_setaffinity_host_pid)
{
    int sleeper = env_pid("HOST_SLEEPER");
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    EXPECT_FAILS(sched_setaffinity(sleeper, sizeof set, &set), ESRCH, ENOSYS,
                 EPERM);
    EXPECT_FAILS(sched_getaffinity(sleeper, sizeof set, &set), ESRCH, ENOSYS,
                 EPERM);
    struct sched_param sp = {0};
    EXPECT_FAILS(sched_setscheduler(sleeper, SCHED_IDLE, &sp), ESRCH, ENOSYS,
                 EPERM);
    sp.sched_priority = 99;
    EXPECT_FAILS(sched_setscheduler(sleeper, SCHED_FIFO, &sp), ESRCH, ENOSYS,
                 EPERM);
    EXPECT_FAILS(setpriority(PRIO_PROCESS, sleeper, 19), ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_ioprio_set, 1 /* WHO_PROCESS */, sleeper,
                         (3 << 13) /* IDLE */),
                 ESRCH, ENOSYS, EPERM);
    EXPECT_FAILS(syscall(SYS_migrate_pages, sleeper, 64, NULL, NULL) < 0 ? -1 : 0,
                 ESRCH, ENOSYS, EPERM, EINVAL, EFAULT);
}

static void newuser_child(void)
{
    long r = INFO_CALL(unshare(CLONE_NEWUSER | CLONE_NEWNS));
    if (r == 0) {
        /* Map every host uid: only the sandbox's ids can be mapped. */
        int fd = open("/proc/self/uid_map", O_WRONLY);
        if (fd >= 0) {
            INFO_CALL(write(fd, "0 0 4294967295\n", 15));
            close(fd);
        }
        INFO_CALL(setuid(0));
        INFO_CALL(mount("none", "/tmp", "tmpfs", 0, NULL));
    }
    expect_not_host_file(canary_host);
    EXPECT_FAILS(syscall(SYS_init_module, "x", 1, ""), ENOSYS, EPERM);
    EXPECT_FAILS(mount("none", "/tmp", "devtmpfs", 0, NULL), ENODEV, EPERM,
                 EINVAL);
    /* clone(CLONE_NEWUSER|CLONE_NEWPID) child: still only sandbox pids. */
    fflush(stdout);
    long c = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, 0, 0,
                     0, 0);
    if (c == 0) {
        int ok = kill(env_pid("HOST_SLEEPER"), SIGKILL) == -1 && errno == ESRCH;
        _exit(ok ? 0 : 1);
    }
    printf("INFO clone(NEWUSER|NEWPID) -> %ld %s\n", c,
           c < 0 ? harness_errname(errno) : "");
    if (c > 0) {
        int st;
        EXPECT_EQ(waitpid(c, &st, 0), c);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

TEST(clone_newuser_games)
{
    load_paths();
    in_child(newuser_child);
}

/* ---- 50: terminals ------------------------------------------------------------- */

TEST(tty_tiocsti)
{
    const char *cmd = "echo ESCAPED-VIA-TIOCSTI > /tmp/pwned\n";
    /* stdin is a HOST terminal (the driver passes a pty). */
    for (const char *c = cmd; *c; c++)
        EXPECT_FAILS(ioctl(0, TIOCSTI, c), ENOTTY, EPERM, EIO, EINVAL);
    for (int fd = 1; fd < 3; fd++)
        EXPECT_FAILS(ioctl(fd, TIOCSTI, "x"), ENOTTY, EPERM, EIO, EINVAL);
    char l[256] = {0};
    readlink("/proc/self/fd/0", l, sizeof l - 1);
    printf("INFO stdin is %s, isatty %d\n", l, isatty(0));
    /* No controlling terminal of the host's: /dev/tty. */
    int t = open("/dev/tty", O_RDWR);
    printf("INFO open(/dev/tty) -> %d %s\n", t,
           t < 0 ? harness_errname(errno) : "");
    if (t >= 0) {
        EXPECT_FAILS(ioctl(t, TIOCSTI, "x"), ENOTTY, EPERM, EIO, EINVAL);
        close(t);
    }
    /* Making stdin our controlling terminal, then injecting. */
    INFO_CALL(setsid());
    INFO_CALL(ioctl(0, TIOCSCTTY, 1));
    EXPECT_FAILS(ioctl(0, TIOCSTI, "y"), ENOTTY, EPERM, EIO, EINVAL);
    /* TIOCLINUX / TIOCCONS (console redirection) too. */
    char sub = 3;
    EXPECT_FAILS(ioctl(0, TIOCLINUX, &sub), ENOTTY, EPERM, EINVAL);
    EXPECT_FAILS(ioctl(0, TIOCCONS), ENOTTY, EPERM, EINVAL);
    /* A sandbox pty: TIOCSTI there stays in the sandbox. */
    int m = open("/dev/ptmx", O_RDWR | O_NOCTTY);
    if (m >= 0) {
        INFO_CALL(ioctl(m, TIOCSTI, "z"));
        close(m);
    }
}

/* ---- more: stdio host fds, /proc/self/exe, host paths, syscall entry points ---- */

/* stdout/stderr are HOST files (the driver's output files): writing them is
 * the point, changing their metadata on the host is not. */
TEST(stdio_host_fd_metadata)
{
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    for (int fd = 1; fd <= 2; fd++) {
        EXPECT_FAILS(fchmod(fd, 04777), EPERM, EROFS, EACCES);
        EXPECT_FAILS(fchown(fd, 1234, 1234), EPERM, EROFS, EACCES);
        EXPECT_FAILS(fsetxattr(fd, "user.escape", "x", 1, 0), EPERM, EROFS,
                     EACCES, EOPNOTSUPP);
        EXPECT_FAILS(fsetxattr(fd, "security.capability", "x", 1, 0), EPERM,
                     EROFS, EACCES, EOPNOTSUPP);
        EXPECT_FAILS(futimens(fd, ts), EPERM, EROFS, EACCES);
        EXPECT_FAILS(fchmodat(AT_FDCWD, fd == 1 ? "/proc/self/fd/1"
                                                : "/proc/self/fd/2",
                              04777, 0),
                     EPERM, EROFS, EACCES);
        EXPECT_FAILS(ftruncate(fd, 1 << 30), EINVAL, EPERM, EROFS);
        EXPECT_FAILS(fallocate(fd, 0, 0, 1 << 30), ENODEV, EPERM, EROFS,
                     ESPIPE, EOPNOTSUPP, EBADF);
        EXPECT_FAILS(fcntl(fd, F_SETLEASE, F_WRLCK), EINVAL, EAGAIN, EACCES,
                     EPERM);
    }
    /* Reopening them through /proc gives the same host files only. */
    int fd = open("/proc/self/fd/1", O_WRONLY);
    printf("INFO reopen(/proc/self/fd/1) -> %d %s\n", fd,
           fd < 0 ? harness_errname(errno) : "");
    if (fd >= 0) {
        EXPECT_FAILS(fchmod(fd, 04777), EPERM, EROFS, EACCES);
        close(fd);
    }
}

/* CVE-2019-5736 style: /proc/self/exe (and every /proc/N/exe) is the
 * sandbox's own binary, never runsc or another host file; writing through it
 * reaches at most the sandbox's own file (the driver checks that runsc and
 * the host copy of this program are unchanged). */
TEST(proc_self_exe_not_runsc)
{
    char l[4096] = {0};
    EXPECT_GT(readlink("/proc/self/exe", l, sizeof l - 1), 0);
    EXPECT_STREQ(l, "/escape");
    struct stat a, b;
    EXPECT_OK(stat("/proc/self/exe", &a));
    EXPECT_OK(stat("/escape", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(a.st_dev, b.st_dev);
    EXPECT_OK(stat("/proc/1/exe", &a));
    EXPECT_EQ(a.st_ino, b.st_ino);
    /* A child running busybox: its exe is the sandbox's busybox. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        execl("/bin/busybox", "sleep", "1", (char *)NULL);
        _exit(127);
    }
    usleep(200000);
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/exe", c);
    memset(l, 0, sizeof l);
    readlink(p, l, sizeof l - 1);
    EXPECT_STREQ(l, "/bin/busybox");
    EXPECT_OK(stat(p, &a));
    EXPECT_OK(stat("/bin/busybox", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    /* No exe of a process outside the sandbox is reachable. */
    snprintf(p, sizeof p, "/proc/%d/exe", env_pid("HOST_PID"));
    EXPECT_FAILS(open(p, O_RDONLY), ENOENT);
    snprintf(p, sizeof p, "/proc/%d/exe", env_pid("HOST_SLEEPER"));
    EXPECT_FAILS(open(p, O_RDONLY), ENOENT);
    int st;
    EXPECT_EQ(waitpid(c, &st, 0), c);
}

/* Linux refuses to open a running executable for writing (ETXTBSY): the
 * runc exploit needed exactly that. */
TEST(proc_self_exe_etxtbsy)
{
    EXPECT_FAILS(open("/proc/self/exe", O_WRONLY), ETXTBSY);
    EXPECT_FAILS(open("/proc/1/exe", O_RDWR), ETXTBSY);
    EXPECT_FAILS(open("/escape", O_WRONLY), ETXTBSY);
    EXPECT_FAILS(truncate("/proc/self/exe", 1 << 20), ETXTBSY);
}

/* The sandbox's /proc shows no host paths (the rootfs, the volume source,
 * runsc's state directory, the test directory). */
TEST(proc_reveals_no_host_paths)
{
    const char *files[] = {"/proc/self/mountinfo", "/proc/self/mounts",
                           "/proc/mounts", "/proc/1/cmdline",
                           "/proc/self/maps", "/proc/self/cgroup",
                           "/proc/self/status", "/proc/cmdline",
                           "/proc/self/stat", "/proc/1/comm", 0};
    const char *dir = env("HOST_DIR");
    for (int i = 0; files[i]; i++) {
        int fd = open(files[i], O_RDONLY);
        if (fd < 0) {
            printf("INFO open(%s) -> %s\n", files[i], harness_errname(errno));
            continue;
        }
        static char buf[65536];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 0)
            continue;
        buf[n] = 0;
        for (ssize_t j = 0; j < n; j++)
            if (buf[j] == 0)
                buf[j] = ' ';
        if (strstr(buf, dir) || strstr(buf, "/rootfs") ||
            (strstr(buf, "runsc") && !strstr(files[i], "cgroup")))
            FAIL("NOT CONTAINED: %s reveals host paths: %.300s", files[i], buf);
    }
    /* Every link under /proc/self and /proc/1. */
    const char *dirs[] = {"/proc/self", "/proc/1", "/proc/self/fd", 0};
    for (int i = 0; dirs[i]; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            char p[512], l[4096] = {0};
            snprintf(p, sizeof p, "%s/%s", dirs[i], e->d_name);
            if (readlink(p, l, sizeof l - 1) > 0 &&
                (strstr(l, dir) || strstr(l, "rootfs")))
                FAIL("NOT CONTAINED: %s -> %s", p, l);
        }
        closedir(d);
    }
}

/* Other ways into the kernel than `syscall`: int $0x80 (the i386 ABI),
 * x32-numbered syscalls, and the vsyscall page. Each runs in a child; the
 * result must come from the sandbox (its pid, an error), or the child is
 * killed: never the host kernel (the host check: no /tmp/int80-made on the
 * host). */
static long entry_point(int k)
{
    long r = -1;
    const char *p = "/tmp/int80-made";
    switch (k) {
    case 0: /* i386 getpid */
        asm volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        break;
    case 1: /* i386 mkdir(p, 0755) */
        asm volatile("int $0x80"
                     : "=a"(r)
                     : "a"(39L), "b"(p), "c"(0755L)
                     : "memory");
        break;
    case 2: /* x32 getpid */
        asm volatile("syscall"
                     : "=a"(r)
                     : "a"(0x40000000L | 39)
                     : "rcx", "r11", "memory");
        break;
    case 3: /* x32 mkdir */
        asm volatile("syscall"
                     : "=a"(r)
                     : "a"(0x40000000L | 83), "D"(p), "S"(0755L)
                     : "rcx", "r11", "memory");
        break;
    case 4: { /* vsyscall time() */
        long (*vtime)(long *) = (long (*)(long *))0xffffffffff600400ul;
        r = vtime(NULL);
        break;
    }
    case 5: /* a syscall number past every table */
        asm volatile("syscall"
                     : "=a"(r)
                     : "a"(0x7fffffffL)
                     : "rcx", "r11", "memory");
        break;
    }
    return r;
}

TEST(compat_syscall_entry_points)
{
    for (int k = 0; k < 6; k++) {
        int pfd[2];
        ASSERT_OK(pipe(pfd));
        fflush(stdout);
        pid_t c = fork();
        if (c == 0) {
            long r = entry_point(k);
            long out[2] = {r, getpid()};
            write(pfd[1], out, sizeof out);
            _exit(0);
        }
        close(pfd[1]);
        long res[2] = {0, 0};
        ssize_t n = read(pfd[0], res, sizeof res);
        close(pfd[0]);
        int st;
        EXPECT_EQ(waitpid(c, &st, 0), c);
        if (n != sizeof res) {
            printf("INFO entry %d: child ended with status %#x\n", k, st);
            EXPECT_TRUE(WIFSIGNALED(st));
            continue;
        }
        printf("INFO entry %d: returned %ld (child pid %ld)\n", k, res[0],
               res[1]);
        if (k == 4)
            continue; /* a time */
        /* A sandbox pid is small; an error is negative; 0 is mkdir inside. */
        if (!(res[0] < 0 || res[0] == 0 || res[0] == res[1] || res[0] == 1))
            FAIL("NOT CONTAINED: entry point %d returned %ld (a host pid?)",
                 k, res[0]);
    }
    rmdir("/tmp/int80-made");
}

/* Path operations the gofer performs on the host, through links that point
 * out of the rootfs and the volume: every one stays inside (the driver checks
 * the canary's metadata and that nothing appears next to it). */
TEST(gofer_ops_through_host_links)
{
    load_paths();
    const char *links[] = {"/abslink", "/vol/canlink", "/dangle",
                           "/vol/dangle", canary_host, 0};
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    struct stat st;
    for (int i = 0; links[i]; i++) {
        const char *l = links[i];
        char sub[8400];
        snprintf(sub, sizeof sub, "%s/x", l);
        EXPECT_FAILS(chown(l, 1234, 1234), ENOENT);
        EXPECT_FAILS(chmod(l, 04777), ENOENT);
        EXPECT_FAILS(utimensat(AT_FDCWD, l, ts, 0), ENOENT);
        EXPECT_FAILS(setxattr(l, "user.escape", "x", 1, 0), ENOENT);
        EXPECT_FAILS(getxattr(l, "user.escape", NULL, 0), ENOENT);
        EXPECT_FAILS(truncate(l, 0), ENOENT);
        EXPECT_FAILS(linkat(AT_FDCWD, l, AT_FDCWD, "/tmp/hardlink",
                            AT_SYMLINK_FOLLOW),
                     ENOENT);
        EXPECT_FAILS(mkdir(sub, 0755), ENOENT, ENOTDIR);
        EXPECT_FAILS(mknod(sub, S_IFIFO | 0644, 0), ENOENT, ENOTDIR);
        EXPECT_FAILS(symlink("/", sub), ENOENT, ENOTDIR);
        EXPECT_FAILS(rename("/tmp", sub), ENOENT, ENOTDIR, EXDEV);
        EXPECT_FAILS(stat(l, &st), ENOENT);
        EXPECT_FAILS(access(l, F_OK), ENOENT);
        EXPECT_FAILS(open(l, O_PATH), ENOENT);
        EXPECT_FAILS(chdir(l), ENOENT);
        EXPECT_FAILS(chroot(l), ENOENT);
        EXPECT_FAILS(mount("/tmp", l, NULL, MS_BIND, NULL), ENOENT);
        EXPECT_FAILS(execl(l, "x", (char *)NULL), ENOENT);
        EXPECT_FAILS(unlinkat(AT_FDCWD, sub, 0), ENOENT, ENOTDIR);
    }
    /* Renaming a host link over itself or onto the real path's name. */
    EXPECT_OK(rename("/vol/canlink", "/vol/canlink2"));
    EXPECT_OK(rename("/vol/canlink2", "/vol/canlink"));
    /* Hard link of the link itself (not followed) stays a link. */
    if (linkat(AT_FDCWD, "/vol/canlink", AT_FDCWD, "/vol/canlink.hl", 0) == 0) {
        EXPECT_OK(lstat("/vol/canlink.hl", &st));
        EXPECT_TRUE(S_ISLNK(st.st_mode));
        expect_not_host_file("/vol/canlink.hl");
        EXPECT_OK(unlink("/vol/canlink.hl"));
    }
    /* inotify on the links' targets. */
    int in = inotify_init1(IN_NONBLOCK);
    if (in >= 0) {
        EXPECT_FAILS(inotify_add_watch(in, "/abslink", IN_ALL_EVENTS), ENOENT);
        EXPECT_FAILS(inotify_add_watch(in, "/vol/uplink/../canary.txt",
                                       IN_ALL_EVENTS),
                     ENOENT);
        close(in);
    }
}

/* The new mount API: fsopen/fsmount/open_tree/move_mount/mount_setattr. */
TEST(new_mount_api)
{
    const char *types[] = {"ext4", "devtmpfs", "sysfs", "proc", "tmpfs", 0};
    for (int i = 0; types[i]; i++) {
        long fd = syscall(SYS_fsopen, types[i], 0);
        printf("INFO fsopen(%s) -> %ld %s\n", types[i], fd,
               fd < 0 ? harness_errname(errno) : "");
        if (fd >= 0) {
            /* A filesystem context of the sandbox's own; a block source is
             * refused. */
            EXPECT_FAILS(syscall(SYS_fsconfig, fd, 1 /* SET_STRING */,
                                 "source", "/dev/sda", 0),
                         ENOENT, EINVAL, ENODEV, EPERM, ENOTBLK);
            close(fd);
        }
    }
    long t = syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */ |
                                                       0x8000 /* RECURSIVE */);
    printf("INFO open_tree(/) -> %ld %s\n", t, t < 0 ? harness_errname(errno) : "");
    if (t >= 0) {
        char p[8400];
        load_paths();
        snprintf(p, sizeof p, "..%s", canary_host);
        EXPECT_FAILS(openat(t, p, O_RDONLY), ENOENT);
        close(t);
    }
    EXPECT_FAILS(syscall(SYS_move_mount, AT_FDCWD, "/vol", AT_FDCWD, "/tmp", 0),
                 ENOSYS, EINVAL, EPERM);
    EXPECT_FAILS(syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, NULL, 0),
                 ENOSYS, EINVAL, EPERM, EFAULT);
    EXPECT_FAILS(syscall(SYS_fspick, AT_FDCWD, "/", 0), ENOSYS, EINVAL, EPERM);
    expect_sandbox_root("/");
}

/* The ptrace platform's stub code lives at the top of every workload address
 * space, above what the sandbox lets it map. Mapping over it, unmapping,
 * mprotecting, writing or jumping into the top of the address space affects
 * only the child that does it; the sandbox survives. */
static void top_of_memory_child(int k, uintptr_t a)
{
    volatile unsigned char *p = (void *)a;
    switch (k) {
    case 0:
        (void)*p;
        break;
    case 1:
        *p = 0xcc;
        break;
    case 2:
        ((void (*)(void))a)();
        break;
    case 3:
        mmap((void *)a, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC,
             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *p = 0xcc;
        break;
    case 4:
        munmap((void *)a, 0x10000);
        mprotect((void *)a, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC);
        madvise((void *)a, 0x10000, MADV_DONTNEED);
        *p = 0xcc;
        break;
    case 5:
        /* Everything above 128 TiB - 16 GiB, at once. */
        munmap((void *)0x7ffc00000000ul, 0x3fffff000ul);
        mremap((void *)a, 0x1000, 0x2000, MREMAP_MAYMOVE);
        break;
    }
}

TEST(ptrace_stub_region)
{
    uintptr_t top = 0x7ffffffff000ul;
    /* 64 KiB-aligned slots below the top (where a stub region would be). */
    uintptr_t addrs[] = {top - 0x1000, 0x7fffffff0000ul, 0x7ffffffe0000ul,
                         0x7ffffffd0000ul, 0x7ffffffc0000ul, 0x7fffff000000ul};
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        for (int k = 0; k < 6; k++) {
            fflush(stdout);
            pid_t c = fork();
            if (c == 0) {
                top_of_memory_child(k, addrs[i]);
                _exit(0);
            }
            ASSERT_GT(c, 0);
            int st = 0, done = 0;
            for (int n = 0; n < 200 && !done; n++) {
                if (waitpid(c, &st, WNOHANG) == c)
                    done = 1;
                else
                    usleep(10000);
            }
            if (!done) {
                /* Spinning in stub code: still ours to kill. */
                EXPECT_OK(kill(c, SIGKILL));
                EXPECT_EQ(waitpid(c, &st, 0), c);
                EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
            }
            printf("INFO top-of-memory op %d at %#lx -> status %#x%s\n", k,
                   (unsigned long)addrs[i], st, done ? "" : " (killed)");
        }
    }
    /* The syscalls on that range, from this process: refused, or harmless. */
    void *r = mmap((void *)(top - 0x20000), 0x10000, PROT_READ | PROT_WRITE,
                   MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("INFO mmap(NOREPLACE, top - 0x20000) -> %p %s\n", r,
           r == MAP_FAILED ? harness_errname(errno) : "");
    if (r != MAP_FAILED)
        munmap(r, 0x10000);
}

/* stderr is a host file that already held data before the sandbox started
 * (the driver pre-fills it with a secret and passes it O_WRONLY|O_APPEND):
 * reopening it through /proc for reading must not read the host file. */
TEST(stdio_reopen_for_reading)
{
    const char *paths[] = {"/proc/self/fd/2", "/proc/1/fd/2", "/dev/stderr",
                           "/proc/self/fd/1", 0};
    int modes[] = {O_RDONLY, O_RDWR};
    for (int i = 0; paths[i]; i++) {
        for (int m = 0; m < 2; m++) {
            int fd = open(paths[i], modes[m]);
            if (fd < 0) {
                printf("INFO open(%s, %d) -> %s\n", paths[i], modes[m],
                       harness_errname(errno));
                continue;
            }
            char buf[256] = {0};
            errno = 0;
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            if (n < 0)
                n = read(fd, buf, sizeof buf - 1);
            printf("INFO open(%s, %d) then read -> %zd %s\n", paths[i],
                   modes[m], n, n < 0 ? harness_errname(errno) : "");
            if (n > 0) {
                for (ssize_t j = 0; j < n; j++)
                    if (buf[j] == '\n')
                        buf[j] = ' ';
                FAIL("NOT CONTAINED: read the host's %s through %s: [%s]",
                     i == 3 ? "stdout" : "stderr", paths[i], buf);
            }
            close(fd);
        }
    }
    /* Nor through the original descriptors. */
    char b[16];
    EXPECT_FAILS(read(2, b, sizeof b), EBADF);
    EXPECT_FAILS(pread(2, b, sizeof b, 0), EBADF, ESPIPE);
    EXPECT_FAILS(mmap(NULL, 4096, PROT_READ, MAP_SHARED, 2, 0) == MAP_FAILED
                     ? -1
                     : 0,
                 EACCES, ENODEV, EBADF);
}

/* O_PATH|O_NOFOLLOW fds of the host-made links, then the magic link of that
 * fd, AT_EMPTY_PATH calls and execveat: the link's target is resolved in
 * the sandbox, or not at all. */
TEST(opath_symlink_fd_tricks)
{
    load_paths();
    const char *links[] = {"/abslink", "/vol/canlink", "/hostup",
                           "/vol/uplink", "/vol/rootlink", 0};
    for (int i = 0; links[i]; i++) {
        int fd = open(links[i], O_PATH | O_NOFOLLOW);
        ASSERT_GE(fd, 0);
        char p[64], t[4096] = {0};
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        readlinkat(fd, "", t, sizeof t - 1);
        printf("INFO %s: readlinkat(fd, \"\") -> %s\n", links[i], t);
        expect_not_host_file(p);
        int r = open(p, O_RDONLY | O_DIRECTORY);
        if (r >= 0) {
            /* /vol/uplink and /vol/rootlink: the sandbox's root. */
            char q[8400];
            snprintf(q, sizeof q, "..%s", canary_host);
            EXPECT_ERRNO(openat(r, "canary.txt", O_RDONLY), ENOENT);
            EXPECT_ERRNO(openat(r, q, O_RDONLY), ENOENT);
            EXPECT_OK(faccessat(r, "escape", F_OK, 0));
            close(r);
        }
        struct stat st;
        EXPECT_OK(fstatat(fd, "", &st, AT_EMPTY_PATH));
        EXPECT_TRUE(S_ISLNK(st.st_mode));
        /* Changes the link itself (lchown), in the rootfs: logged; the
         * driver checks the canary's owner. */
        INFO_CALL(fchownat(fd, "", 1234, 1234, AT_EMPTY_PATH));
        /* A hard link of the fd: of the link itself, inside. */
        if (linkat(fd, "", AT_FDCWD, "/tmp/fdlink", AT_EMPTY_PATH) == 0) {
            expect_not_host_file("/tmp/fdlink/canary.txt");
            unlink("/tmp/fdlink");
        }
        fflush(stdout);
        pid_t c = fork();
        if (c == 0) {
            char *argv[] = {"x", NULL};
            syscall(SYS_execveat, fd, "", argv, argv, AT_EMPTY_PATH);
            _exit(errno == 0 ? 99 : 0);
        }
        int st2;
        EXPECT_EQ(waitpid(c, &st2, 0), c);
        EXPECT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
        close(fd);
    }
    /* openat2 with the resolve flags a gofer relies on. */
    struct {
        uint64_t flags, mode, resolve;
    } how = {O_RDONLY, 0, 0};
    char q[8400];
    snprintf(q, sizeof q, "../../..%s", canary_host);
    for (uint64_t res = 0; res <= 0x10; res = res ? res << 1 : 1) {
        how.resolve = res;
        long r = syscall(SYS_openat2, AT_FDCWD, q, &how, sizeof how);
        printf("INFO openat2(resolve=%#llx) -> %ld %s\n",
               (unsigned long long)res, r, r < 0 ? harness_errname(errno) : "");
        if (r >= 0) {
            FAIL("NOT CONTAINED: openat2 opened %s", q);
            close(r);
        }
    }
}

/* ---- main ------------------------------------------------------------------ */

/* Checks the sandbox still works after an attempt. */
static int alive(void)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0)
        _exit(42);
    int st = 0;
    if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 42)
        return 0;
    int fd = open("/tmp/.alive", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "ok", 2) != 2)
        return 0;
    char b[2];
    if (pread(fd, b, 2, 0) != 2 || memcmp(b, "ok", 2) != 0)
        return 0;
    close(fd);
    unlink("/tmp/.alive");
    return getpid() == 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, harness_stdout_buf, _IOLBF, sizeof harness_stdout_buf);
    if (argc != 2) {
        fprintf(stderr, "usage: %s <attempt>\n", argv[0]);
        return 2;
    }
    /* Safety net: never run where the host test process is visible. */
    const char *hp = getenv("HOST_PID");
    if (!hp || kill(atoi(hp), 0) == 0 || errno != ESRCH || getpid() != 1) {
        fprintf(stderr, "escape: refusing to run outside the sandbox\n");
        return 2;
    }
    for (int i = 0; i < harness_ntests; i++) {
        if (strcmp(harness_tests[i].name, argv[1]) != 0)
            continue;
        harness_current = harness_tests[i].name;
        printf("ATTEMPT %s\n", harness_current);
        harness_tests[i].fn();
        fflush(stdout);
        int ok = !harness_current_failed;
        if (!alive()) {
            printf("FAIL %s: the sandbox does not work after the attempt\n",
                   harness_current);
            ok = 0;
        } else {
            printf("ALIVE %s\n", harness_current);
        }
        printf("RESULT %s %s\n", harness_current,
               ok ? "contained" : "NOT-CONTAINED");
        fflush(stdout);
        return ok ? 0 : 1;
    }
    printf("no attempt named %s\n", argv[1]);
    return 2;
}

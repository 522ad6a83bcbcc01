/*
 * capfs.c - file-system permission checks follow capabilities and the
 * fsuid/fsgid, not "uid 0": root without CAP_DAC_OVERRIDE cannot read another
 * user's 0600 file, without CAP_CHOWN cannot chown, without CAP_FOWNER cannot
 * chmod another user's file or delete it from a sticky directory, and so on.
 *
 * The program runs as root. Each case forks a child that lowers its
 * capability sets with a raw capset(2) (version 3, no libcap) and reports
 * through its exit status: 0 = as expected, else the number of the first check
 * that failed. Files live in a fresh directory under /dev/shm (a tmpfs
 * natively and in the sandbox).
 */
#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define OTHER 1234 /* the owner of the files root does not own */

#define CAP_CHOWN 0
#define CAP_DAC_OVERRIDE 1
#define CAP_DAC_READ_SEARCH 2
#define CAP_FOWNER 3
#define CAP_FSETID 4
#define CAP_SETGID 6
#define CAP_SETUID 7
#define CAP_SYS_ADMIN 21
#define CAP_MKNOD 27
#define BIT(c) (1ULL << (c))

#define LINUX_CAPABILITY_VERSION_3 0x20080522

struct cap_header {
    uint32_t version;
    int pid;
};
struct cap_data {
    uint32_t effective, permitted, inheritable;
};

static char dir[64];

static int capget_sets(uint64_t *eff, uint64_t *prm)
{
    struct cap_header h = {LINUX_CAPABILITY_VERSION_3, 0};
    struct cap_data d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    *eff = d[0].effective | (uint64_t)d[1].effective << 32;
    *prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
    return 0;
}

/* Lowers the effective and permitted sets to `keep` (of what we hold). */
static int keep_caps(uint64_t keep)
{
    uint64_t eff, prm;
    if (capget_sets(&eff, &prm) != 0)
        return -1;
    keep &= prm;
    struct cap_header h = {LINUX_CAPABILITY_VERSION_3, 0};
    struct cap_data d[2] = {{(uint32_t)keep, (uint32_t)keep, 0},
                            {(uint32_t)(keep >> 32), (uint32_t)(keep >> 32), 0}};
    return (int)syscall(SYS_capset, &h, d);
}

static void cleanup(void)
{
    const char *names[] = {"f",        "rootonly", "mine",    "x",      "priv/f",
                           "priv/new", "priv",     "sticky/g", "sticky/h", "sticky",
                           "suid",     "sg/file",  "sg/sub",  "sg",     "fifo",
                           "dev",      "byfs",     "byfs2",   NULL};
    for (int i = 0; names[i]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

static int make_file(const char *p, mode_t mode, uid_t uid, gid_t gid)
{
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    if (write(fd, "hello", 5) != 5 || close(fd) != 0)
        return -1;
    if (chown(p, uid, gid) != 0 || chmod(p, mode) != 0)
        return -1;
    return 0;
}

/* A fresh directory (0777) with:
 *   f         0600 OTHER:OTHER "hello"
 *   rootonly  0600 root:root
 *   mine      0644 root:root
 *   x         0700 OTHER:OTHER (executable by its owner only)
 *   priv/     0700 OTHER:OTHER, with priv/f 0644
 *   sticky/   1777 4321:4321, with sticky/g 0666 OTHER:OTHER
 *   suid      04755 root:root
 *   sg/       02777 root:OTHER
 */
static int setup(void)
{
    if (!dir[0]) {
        strcpy(dir, "/dev/shm/capfs.XXXXXX");
        if (!mkdtemp(dir))
            return -1;
        atexit(cleanup);
    }
    cleanup();
    umask(0);
    if (mkdir(dir, 0777) != 0 || chmod(dir, 0777) != 0 || chdir(dir) != 0)
        return -1;
    if (make_file("f", 0600, OTHER, OTHER) || make_file("rootonly", 0600, 0, 0) ||
        make_file("mine", 0644, 0, 0) || make_file("x", 0700, OTHER, OTHER))
        return -1;
    if (mkdir("priv", 0700) || make_file("priv/f", 0644, OTHER, OTHER) ||
        chown("priv", OTHER, OTHER))
        return -1;
    if (mkdir("sticky", 01777) || chown("sticky", 4321, 4321) || chmod("sticky", 01777) ||
        make_file("sticky/g", 0666, OTHER, OTHER))
        return -1;
    if (make_file("suid", 04755, 0, 0))
        return -1;
    if (mkdir("sg", 0777) || chown("sg", 0, OTHER) || chmod("sg", 02777))
        return -1;
    return 0;
}

/* Runs fn in a child holding only `keep` (of the current capabilities). */
static int with_caps(uint64_t keep, int (*fn)(void))
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || keep_caps(keep) != 0)
            _exit(100);
        _exit(fn());
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -2;
    return WEXITSTATUS(st);
}

#define ALL (~0ULL)

#define CHECK_ERR(n, expr, err)                                                \
    do {                                                                       \
        errno = 0;                                                             \
        if ((expr) != -1 || errno != (err))                                    \
            return (n);                                                        \
    } while (0)
#define CHECK_OK(n, expr)                                                      \
    do {                                                                       \
        if ((expr) < 0)                                                        \
            return (n);                                                        \
    } while (0)
#define CHECK(n, cond)                                                         \
    do {                                                                       \
        if (!(cond))                                                           \
            return (n);                                                        \
    } while (0)

static int open_close(const char *p, int flags)
{
    int fd = open(p, flags);
    if (fd >= 0)
        close(fd);
    return fd < 0 ? -1 : 0;
}

static int read_is_hello(const char *p)
{
    char b[8] = {0};
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    return n == 5 && memcmp(b, "hello", 5) == 0;
}

static mode_t mode_of(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0)
        return (mode_t)-1;
    return st.st_mode & 07777;
}

/* ---- DAC override ---- */

static int no_dac(void)
{
    CHECK_ERR(1, open("f", O_RDONLY), EACCES);
    CHECK_ERR(2, open("f", O_WRONLY), EACCES);
    CHECK_ERR(3, access("f", R_OK), EACCES);
    /* Root still owns its own files. */
    CHECK(4, read_is_hello("rootonly"));
    /* Another user's 0700 directory can be neither searched nor listed. */
    CHECK_ERR(5, open("priv/f", O_RDONLY), EACCES);
    CHECK_ERR(6, open("priv", O_RDONLY | O_DIRECTORY), EACCES);
    struct stat st;
    CHECK_ERR(7, stat("priv/f", &st), EACCES);
    CHECK_ERR(8, access("x", X_OK), EACCES);
    return 0;
}

static int read_search_only(void)
{
    CHECK(1, read_is_hello("f"));
    CHECK_ERR(2, open("f", O_WRONLY), EACCES);
    CHECK_ERR(3, open("f", O_RDWR), EACCES);
    CHECK_OK(4, access("f", R_OK));
    CHECK_ERR(5, access("f", W_OK), EACCES);
    /* Directories: search and list, but not write. */
    CHECK(6, read_is_hello("priv/f"));
    CHECK_OK(7, open_close("priv", O_RDONLY | O_DIRECTORY));
    CHECK_ERR(8, open("priv/new", O_CREAT | O_WRONLY, 0644), EACCES);
    CHECK_ERR(9, access("x", X_OK), EACCES);
    return 0;
}

static int dac_override_only(void)
{
    CHECK(1, read_is_hello("f"));
    CHECK_OK(2, open_close("f", O_RDWR));
    CHECK_OK(3, access("f", R_OK | W_OK));
    /* Execute needs at least one x bit. */
    CHECK_ERR(4, access("f", X_OK), EACCES);
    CHECK_OK(5, access("x", X_OK));
    CHECK(6, read_is_hello("priv/f"));
    CHECK_OK(7, open_close("priv/new", O_CREAT | O_WRONLY));
    CHECK_OK(8, unlink("priv/new"));
    return 0;
}

TEST(no_dac_capabilities)
{
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(ALL & ~(BIT(CAP_DAC_OVERRIDE) | BIT(CAP_DAC_READ_SEARCH)), no_dac), 0);
    /* With no capabilities at all, too. */
    EXPECT_EQ(with_caps(0, no_dac), 0);
}

TEST(dac_read_search_only)
{
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(BIT(CAP_DAC_READ_SEARCH), read_search_only), 0);
}

TEST(dac_override_only)
{
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(BIT(CAP_DAC_OVERRIDE), dac_override_only), 0);
}

/* ---- CAP_CHOWN ---- */

static int no_chown(void)
{
    CHECK_ERR(1, chown("f", 5, -1), EPERM);
    CHECK_ERR(2, chown("f", -1, 5), EPERM);
    /* Our own file: the same owner, or a group we are in, is fine... */
    CHECK_OK(3, chown("mine", 0, 0));
    CHECK_OK(4, chown("mine", -1, 0));
    /* ...another owner or a group we are not in is not. */
    CHECK_ERR(5, chown("mine", 5, -1), EPERM);
    CHECK_ERR(6, chown("mine", -1, 5), EPERM);
    CHECK_ERR(7, lchown("f", OTHER, OTHER), EPERM);
    return 0;
}

static int chown_only(void)
{
    struct stat st;
    CHECK_OK(1, chown("f", 5, 6));
    CHECK(2, stat("f", &st) == 0 && st.st_uid == 5 && st.st_gid == 6);
    CHECK_OK(3, chown("f", OTHER, OTHER));
    return 0;
}

TEST(chown_needs_cap_chown)
{
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(ALL & ~BIT(CAP_CHOWN), no_chown), 0);
    EXPECT_EQ(with_caps(BIT(CAP_CHOWN), chown_only), 0);
}

/* ---- CAP_FOWNER ---- */

static int no_fowner(void)
{
    CHECK_ERR(1, chmod("f", 0644), EPERM);
    struct timeval tv[2] = {{1, 0}, {2, 0}};
    CHECK_ERR(2, utimes("f", tv), EPERM);
    /* "Now" needs only write access, which CAP_DAC_OVERRIDE gives. */
    CHECK_OK(3, utimes("f", NULL));
    CHECK_ERR(4, open("f", O_RDONLY | O_NOATIME), EPERM);
    int fd = open("f", O_RDONLY);
    CHECK_OK(5, fd);
    CHECK_ERR(6, fcntl(fd, F_SETFL, O_NOATIME), EPERM);
    close(fd);
    /* Our own file is fine. */
    CHECK_OK(7, chmod("mine", 0640));
    CHECK_OK(8, utimes("mine", tv));
    CHECK_OK(9, open_close("mine", O_RDONLY | O_NOATIME));
    /* Sticky directory: another user's entry cannot go. */
    CHECK_ERR(10, unlink("sticky/g"), EPERM);
    CHECK_ERR(11, rename("sticky/g", "sticky/h"), EPERM);
    CHECK_ERR(12, rename("mine", "sticky/g"), EPERM);
    return 0;
}

static int fowner_only(void)
{
    CHECK_OK(1, chmod("f", 0640));
    struct timeval tv[2] = {{1, 0}, {2, 0}};
    CHECK_OK(2, utimes("f", tv));
    CHECK_OK(3, unlink("sticky/g"));
    /* Without CAP_DAC_OVERRIDE the file itself stays closed. */
    CHECK_ERR(4, open("f", O_RDONLY), EACCES);
    return 0;
}

TEST(chmod_utimes_sticky_need_cap_fowner)
{
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(ALL & ~BIT(CAP_FOWNER), no_fowner), 0);
    EXPECT_EQ(mode_of("f"), 0600);
    EXPECT_EQ(with_caps(BIT(CAP_FOWNER), fowner_only), 0);
    EXPECT_EQ(mode_of("f"), 0640);
}

/* ---- CAP_FSETID ---- */

static int no_fsetid(void)
{
    /* chmod of a file whose group we are not in drops set-group-ID. */
    CHECK_OK(1, chown("mine", 0, OTHER));
    CHECK_OK(2, chmod("mine", 02755));
    CHECK(3, mode_of("mine") == 0755);
    /* A write drops set-user-ID. */
    CHECK(4, mode_of("suid") == 04755);
    int fd = open("suid", O_WRONLY);
    CHECK_OK(5, fd);
    CHECK(6, write(fd, "x", 1) == 1);
    close(fd);
    CHECK(7, mode_of("suid") == 0755);
    /* In a set-group-ID directory of a group we are not in, a new
     * group-executable file loses set-group-ID; a directory keeps it. */
    fd = open("sg/file", O_CREAT | O_WRONLY, 02755);
    CHECK_OK(8, fd);
    close(fd);
    struct stat st;
    CHECK(9, stat("sg/file", &st) == 0 && st.st_gid == OTHER && (st.st_mode & 07777) == 0755);
    CHECK_OK(10, mkdir("sg/sub", 0755));
    CHECK(11, stat("sg/sub", &st) == 0 && st.st_gid == OTHER && (st.st_mode & 07777) == 02755);
    return 0;
}

static int with_fsetid(void)
{
    CHECK_OK(1, chown("mine", 0, OTHER));
    CHECK_OK(2, chmod("mine", 02755));
    CHECK(3, mode_of("mine") == 02755);
    int fd = open("suid", O_WRONLY);
    CHECK_OK(4, fd);
    CHECK(5, write(fd, "x", 1) == 1);
    close(fd);
    CHECK(6, mode_of("suid") == 04755);
    fd = open("sg/file", O_CREAT | O_WRONLY, 02755);
    CHECK_OK(7, fd);
    close(fd);
    CHECK(8, mode_of("sg/file") == 02755);
    /* chown drops set-user-ID even with every capability. */
    CHECK_OK(9, chown("suid", 0, 0));
    CHECK(10, mode_of("suid") == 0755);
    return 0;
}

TEST(setid_bits_follow_cap_fsetid)
{
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(ALL & ~BIT(CAP_FSETID), no_fsetid), 0);
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(ALL, with_fsetid), 0);
}

/* ---- CAP_MKNOD, CAP_SYS_ADMIN (trusted.*) ---- */

static int no_mknod(void)
{
    CHECK_ERR(1, mknod("dev", S_IFCHR | 0600, makedev(1, 3)), EPERM);
    CHECK_ERR(2, mknod("dev", S_IFBLK | 0600, makedev(7, 0)), EPERM);
    CHECK_OK(3, mknod("fifo", S_IFIFO | 0600, 0));
    return 0;
}

static int no_sys_admin(void)
{
    char b[8];
    CHECK_ERR(1, setxattr("mine", "trusted.t", "v", 1, 0), EPERM);
    CHECK_ERR(2, getxattr("mine", "trusted.t", b, sizeof b), ENODATA);
    CHECK_ERR(3, removexattr("mine", "trusted.t"), EPERM);
    return 0;
}

TEST(mknod_and_trusted_xattrs)
{
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(ALL & ~BIT(CAP_MKNOD), no_mknod), 0);
    EXPECT_EQ(with_caps(ALL & ~BIT(CAP_SYS_ADMIN), no_sys_admin), 0);
}

/* ---- fsuid / fsgid ---- */

static int fsuid_without_caps(void)
{
    /* Only CAP_SETUID and CAP_SETGID: setfsuid(OTHER) makes OTHER's file ours. */
    CHECK_ERR(1, open("f", O_RDONLY), EACCES);
    CHECK(2, setfsuid(OTHER) == 0);
    CHECK(3, setfsuid(-1) == OTHER);
    CHECK(4, read_is_hello("f"));
    CHECK_OK(5, chmod("f", 0640));
    /* ...and root's no longer. */
    CHECK_ERR(6, open("rootonly", O_RDONLY), EACCES);
    /* New files belong to the fsuid (and the fsgid). */
    CHECK(7, setfsgid(77) == 0);
    CHECK_OK(8, open_close("byfs", O_CREAT | O_WRONLY));
    struct stat st;
    CHECK(9, stat("byfs", &st) == 0 && st.st_uid == OTHER && st.st_gid == 77);
    /* The process's own ids did not change. */
    CHECK(10, geteuid() == 0 && getegid() == 0);
    return 0;
}

static int fsuid_drops_fs_caps(void)
{
    /* With every capability: moving fsuid away from 0 drops the file-system
     * capabilities from the effective set; moving it back restores them. */
    CHECK(1, read_is_hello("f"));
    CHECK(2, setfsuid(OTHER) == 0);
    CHECK_ERR(3, open("rootonly", O_RDONLY), EACCES);
    CHECK_OK(5, open_close("byfs2", O_CREAT | O_WRONLY));
    CHECK_ERR(6, chown("byfs2", 5, -1), EPERM);
    uint64_t eff, prm;
    CHECK_OK(7, capget_sets(&eff, &prm));
    CHECK(8, !(eff & (BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FOWNER))));
    CHECK(9, eff & BIT(CAP_SETUID));
    CHECK(10, setfsuid(0) == OTHER);
    CHECK(11, read_is_hello("rootonly"));
    CHECK_OK(12, chown("byfs2", 5, -1));
    CHECK_OK(13, capget_sets(&eff, &prm));
    CHECK(14, eff & BIT(CAP_DAC_OVERRIDE));
    return 0;
}

static int access_uses_real_ids(void)
{
    /* Real uid OTHER, effective root: access(2) checks the real uid without
     * capabilities; AT_EACCESS the effective one with them. */
    CHECK_OK(1, setresuid(OTHER, 0, 0));
    CHECK_ERR(2, access("rootonly", R_OK), EACCES);
    CHECK_OK(3, access("f", R_OK | W_OK));
    CHECK_OK(4, faccessat(AT_FDCWD, "rootonly", R_OK, AT_EACCESS));
    CHECK_OK(5, open_close("rootonly", O_RDONLY));
    return 0;
}

TEST(fsuid_and_fsgid)
{
    ASSERT_OK(setup());
    EXPECT_EQ(with_caps(BIT(CAP_SETUID) | BIT(CAP_SETGID), fsuid_without_caps), 0);
    EXPECT_EQ(with_caps(ALL, fsuid_drops_fs_caps), 0);
    EXPECT_EQ(with_caps(ALL, access_uses_real_ids), 0);
}

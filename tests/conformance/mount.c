/*
 * mount.c - mount(2) and umount2(2): tmpfs (with options), proc, bind mounts,
 * remounts (ro/rw, noexec), propagation changes, busy and detached unmounts,
 * /proc/self/mounts, and the errors (EPERM, ENOENT, ENOTDIR, ENODEV, EINVAL,
 * EBUSY, EROFS).
 *
 * Natively this runs under `unshare --mount --propagation private` (see
 * tests/tests/conformance.rs), so its mounts never reach the host's mount
 * table; in the sandbox they only change the sandbox's own tree. Everything
 * happens below a fresh directory in /dev/shm.
 */
#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMPFS_MAGIC 0x01021994
#define PROC_SUPER_MAGIC 0x9fa0

static char dir[64];

static void cleanup(void)
{
    const char *names[] = {"a/sub/f", "a/sub", "a/f", "a", "b/f", "b", "c/f", "c/x.sh",
                           "c",       "p",     "file", NULL};
    for (int i = 0; names[i]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        umount2(p, MNT_DETACH);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

static int setup(void)
{
    if (dir[0])
        return chdir(dir);
    strcpy(dir, "/dev/shm/mount.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    atexit(cleanup);
    if (chdir(dir) != 0)
        return -1;
    if (mkdir("a", 0755) || mkdir("b", 0755) || mkdir("c", 0755) || mkdir("p", 0755))
        return -1;
    return close(open("file", O_CREAT | O_WRONLY, 0644));
}

/* Whether /proc/self/mounts has a line with mount point `point` and type `type`. */
static int in_mounts(const char *point, const char *type)
{
    FILE *f = fopen("/proc/self/mounts", "r");
    if (!f)
        return -1;
    char line[1024], src[512], mp[512], ty[64];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%511s %511s %63s", src, mp, ty) == 3 && strcmp(mp, point) == 0 &&
            strcmp(ty, type) == 0)
            found = 1;
    }
    fclose(f);
    return found;
}

TEST(tmpfs_mount_and_umount)
{
    ASSERT_OK(setup());
    ASSERT_OK(mount("none", "a", "tmpfs", 0, "size=1m,mode=0700"));
    struct statfs sf;
    ASSERT_OK(statfs("a", &sf));
    EXPECT_EQ(sf.f_type, TMPFS_MAGIC);
    EXPECT_EQ((long long)sf.f_blocks * sf.f_bsize, 1 << 20);
    struct stat st;
    ASSERT_OK(stat("a", &st));
    EXPECT_EQ(st.st_mode & 07777, 0700);
    char point[128];
    snprintf(point, sizeof point, "%s/a", dir);
    EXPECT_EQ(in_mounts(point, "tmpfs"), 1);
    int fd = open("a/f", O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    /* Past the size limit: ENOSPC. */
    static char buf[1 << 16];
    memset(buf, 'x', sizeof buf);
    ssize_t n = 0, w = 0;
    while ((w = write(fd, buf, sizeof buf)) > 0)
        n += w;
    int err = errno;
    EXPECT_EQ(w, -1);
    EXPECT_EQ(err, ENOSPC);
    EXPECT_LE(n, 1 << 20);
    close(fd);
    EXPECT_OK(umount("a"));
    EXPECT_EQ(in_mounts(point, "tmpfs"), 0);
    /* The file was on the tmpfs: the directory below is empty again. */
    EXPECT_ERRNO(stat("a/f", &st), ENOENT);
    /* Not a mount point (any more). */
    EXPECT_ERRNO(umount("a"), EINVAL);
}

TEST(mount_errors)
{
    ASSERT_OK(setup());
    EXPECT_ERRNO(mount("none", "nosuchdir", "tmpfs", 0, NULL), ENOENT);
    EXPECT_ERRNO(mount("none", "file", "tmpfs", 0, NULL), ENOTDIR);
    EXPECT_ERRNO(mount("none", "a", "no-such-fs-type", 0, NULL), ENODEV);
    EXPECT_ERRNO(mount("none", "a", "tmpfs", 0, "bogus-option=1"), EINVAL);
    EXPECT_ERRNO(umount2("a", 0x100), EINVAL);
    EXPECT_ERRNO(umount2("a", MNT_EXPIRE | MNT_DETACH), EINVAL);
    EXPECT_ERRNO(umount("nosuchdir"), ENOENT);
    EXPECT_ERRNO(umount("a"), EINVAL);
    EXPECT_ERRNO(mount("none", "a", NULL, MS_REMOUNT, NULL), EINVAL);
    EXPECT_ERRNO(mount("none", "a", NULL, 0, NULL), EINVAL);
    EXPECT_ERRNO(mount("none", "a", (const char *)1, 0, NULL), EFAULT);
}

TEST(recursive_bind)
{
    ASSERT_OK(setup());
    ASSERT_OK(mount("none", "a", "tmpfs", 0, NULL));
    ASSERT_OK(mkdir("a/sub", 0755));
    ASSERT_OK(mount("none", "a/sub", "tmpfs", 0, NULL));
    ASSERT_OK(close(open("a/sub/f", O_CREAT | O_WRONLY, 0644)));
    struct stat st;
    /* A plain bind does not bring the submount along, MS_REC does. */
    ASSERT_OK(mount("a", "b", NULL, MS_BIND, NULL));
    EXPECT_ERRNO(stat("b/sub/f", &st), ENOENT);
    EXPECT_OK(umount("b"));
    ASSERT_OK(mount("a", "b", NULL, MS_BIND | MS_REC, NULL));
    EXPECT_OK(stat("b/sub/f", &st));
    EXPECT_OK(umount2("b", MNT_DETACH));
    EXPECT_OK(umount2("a", MNT_DETACH));
}

TEST(unprivileged_gets_eperm)
{
    ASSERT_OK(setup());
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
            _exit(100);
        /* (Our test directory is 0700: a path into it would be EACCES first.) */
        if (mount("none", "/dev/shm", "tmpfs", 0, NULL) == 0 || errno != EPERM)
            _exit(1);
        if (umount("/dev/shm") == 0 || errno != EPERM)
            _exit(2);
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
}

TEST(bind_and_remount_readonly)
{
    ASSERT_OK(setup());
    ASSERT_OK(mount("none", "a", "tmpfs", 0, NULL));
    ASSERT_OK(mount("a", "b", NULL, MS_BIND, NULL));
    int fd = open("a/f", O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(write(fd, "hi", 2), 2);
    close(fd);
    /* The same files through both. */
    struct stat sa, sb;
    ASSERT_OK(stat("a/f", &sa));
    ASSERT_OK(stat("b/f", &sb));
    EXPECT_EQ(sa.st_ino, sb.st_ino);
    EXPECT_EQ(sa.st_dev, sb.st_dev);
    /* Read-only on b only. */
    ASSERT_OK(mount(NULL, "b", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    EXPECT_ERRNO(open("b/g", O_CREAT | O_WRONLY, 0644), EROFS);
    EXPECT_ERRNO(unlink("b/f"), EROFS);
    struct statfs sf;
    ASSERT_OK(statfs("b", &sf));
    EXPECT_TRUE(sf.f_flags & ST_RDONLY);
    fd = open("a/g", O_CREAT | O_WRONLY, 0644);
    EXPECT_GE(fd, 0);
    close(fd);
    EXPECT_OK(unlink("a/g"));
    /* And writable again. */
    ASSERT_OK(mount(NULL, "b", NULL, MS_REMOUNT | MS_BIND, NULL));
    EXPECT_OK(unlink("b/f"));
    EXPECT_OK(umount("b"));
    EXPECT_OK(umount("a"));
}

TEST(remount_tmpfs_readonly_and_noexec)
{
    ASSERT_OK(setup());
    ASSERT_OK(mount("none", "c", "tmpfs", 0, NULL));
    int fd = open("c/x.sh", O_CREAT | O_WRONLY, 0755);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(write(fd, "#!/bin/sh\nexit 7\n", 17), 17);
    close(fd);
    ASSERT_OK(mount(NULL, "c", NULL, MS_REMOUNT | MS_RDONLY, NULL));
    EXPECT_ERRNO(open("c/f", O_CREAT | O_WRONLY, 0644), EROFS);
    ASSERT_OK(mount(NULL, "c", NULL, MS_REMOUNT | MS_NOEXEC, NULL));
    struct statfs sf;
    ASSERT_OK(statfs("c", &sf));
    EXPECT_TRUE(sf.f_flags & ST_NOEXEC);
    EXPECT_FALSE(sf.f_flags & ST_RDONLY);
    EXPECT_ERRNO(execl("c/x.sh", "x.sh", (char *)NULL), EACCES);
    ASSERT_OK(mount(NULL, "c", NULL, MS_REMOUNT, NULL));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        execl("c/x.sh", "x.sh", (char *)NULL);
        _exit(99);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    EXPECT_OK(umount("c"));
}

TEST(busy_and_detached_unmount)
{
    ASSERT_OK(setup());
    ASSERT_OK(mount("none", "a", "tmpfs", 0, NULL));
    ASSERT_OK(mkdir("a/sub", 0755));
    ASSERT_OK(mount("none", "a/sub", "tmpfs", 0, NULL));
    EXPECT_ERRNO(umount("a"), EBUSY);
    EXPECT_OK(umount2("a", MNT_DETACH));
    struct stat st;
    EXPECT_ERRNO(stat("a/sub", &st), ENOENT);
}

TEST(propagation_and_proc)
{
    ASSERT_OK(setup());
    ASSERT_OK(mount("none", "p", "tmpfs", 0, NULL));
    EXPECT_OK(mount(NULL, "p", NULL, MS_PRIVATE, NULL));
    EXPECT_OK(mount(NULL, "p", NULL, MS_REC | MS_SLAVE, NULL));
    /* Propagation changes need a mount point. */
    EXPECT_ERRNO(mount(NULL, "b", NULL, MS_PRIVATE, NULL), EINVAL);
    EXPECT_OK(umount("p"));
    ASSERT_OK(mount("proc", "p", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    struct statfs sf;
    ASSERT_OK(statfs("p", &sf));
    EXPECT_EQ(sf.f_type, PROC_SUPER_MAGIC);
    char path[64];
    snprintf(path, sizeof path, "p/%d/stat", getpid());
    EXPECT_OK(access(path, R_OK));
    EXPECT_OK(umount("p"));
}

#include <sched.h>
#include <sys/syscall.h>

/* pivot_root in a child: the new root is a tmpfs holding only what the child
 * put there, the old root stays reachable at put_old until it is unmounted.
 * Natively the child first takes a mount namespace of its own, so the
 * parent's root is not moved; the sandbox's pivot_root moves the caller's
 * root only, so there unshare(CLONE_NEWNS) (unsupported) is not needed. */
TEST(pivot_root_in_child)
{
    ASSERT_OK(setup());
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) == 0)
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        if (mount("none", "a", "tmpfs", 0, NULL) != 0)
            _exit(1);
        if (mkdir("a/old", 0755) != 0 || close(open("a/marker", O_CREAT | O_WRONLY, 0644)) != 0)
            _exit(2);
        /* Errors first: put_old outside new_root, new_root not a mount. */
        if (syscall(SYS_pivot_root, "a", "b") == 0 || errno != EINVAL)
            _exit(3);
        if (syscall(SYS_pivot_root, "c", "c") == 0 || errno != EINVAL)
            _exit(4);
        if (syscall(SYS_pivot_root, "a", "a/old") != 0)
            _exit(5);
        if (chdir("/") != 0)
            _exit(6);
        if (access("/marker", F_OK) != 0)
            _exit(7);
        /* The old root is at /old: its /dev/shm holds our test directory. */
        char p[128];
        snprintf(p, sizeof p, "/old%s/file", dir);
        if (access(p, F_OK) != 0)
            _exit(8);
        if (umount2("/old", MNT_DETACH) != 0)
            _exit(9);
        if (access(p, F_OK) == 0)
            _exit(10);
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    /* The parent's root did not move. (The child's tmpfs on "a" is its own
     * natively; the sandbox has one mount table, so drop it either way.) */
    EXPECT_OK(access("file", F_OK));
    umount2("a", MNT_DETACH);
}

/*
 * perm.c - permission errors for an unprivileged user (EACCES, EPERM) on the
 * file syscalls, and chroot(2).
 *
 * The program runs as root; each case forks a child that drops to uid/gid
 * 65534 (nobody) and reports through its exit status: 0 = as expected, else
 * the number of the first check that failed. Files live in a fresh directory
 * under /dev/shm (a tmpfs natively and in the sandbox), made by root with
 * modes chosen per case.
 */
#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534

static char dir[64];

static void cleanup(void)
{
    const char *names[] = {"ro/f", "ro",  "rw/f", "rw/sub", "rw",     "sticky/f",
                           "sticky", "nox/f", "nox",  "jail/inner", "jail/f",
                           "jail", "own", "other", NULL};
    for (int i = 0; names[i]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

static int setup(void)
{
    if (dir[0])
        return chdir(dir);
    strcpy(dir, "/dev/shm/perm.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    atexit(cleanup);
    if (chmod(dir, 0755) != 0 || chdir(dir) != 0)
        return -1;
    /* ro: a directory nobody may read and search but not write; f in it 0644 root. */
    if (mkdir("ro", 0755) != 0 || close(open("ro/f", O_CREAT | O_WRONLY, 0644)) != 0)
        return -1;
    /* rw: world-writable, not sticky. */
    if (mkdir("rw", 0777) != 0 || chmod("rw", 0777) != 0)
        return -1;
    if (close(open("rw/f", O_CREAT | O_WRONLY, 0600)) != 0 || mkdir("rw/sub", 0700) != 0)
        return -1;
    /* sticky: 1777 with a root-owned file. */
    if (mkdir("sticky", 0777) != 0 || chmod("sticky", 01777) != 0)
        return -1;
    if (close(open("sticky/f", O_CREAT | O_WRONLY, 0666)) != 0 || chmod("sticky/f", 0666) != 0)
        return -1;
    /* nox: readable but not searchable. */
    if (mkdir("nox", 0755) != 0 || close(open("nox/f", O_CREAT | O_WRONLY, 0644)) != 0 ||
        chmod("nox", 0744) != 0)
        return -1;
    /* own: a file owned by nobody; other: by root, mode 0666. */
    if (close(open("own", O_CREAT | O_WRONLY, 0644)) != 0 || chown("own", NOBODY, NOBODY) != 0)
        return -1;
    if (close(open("other", O_CREAT | O_WRONLY, 0666)) != 0 || chmod("other", 0666) != 0)
        return -1;
    return 0;
}

/* Runs fn as nobody in a child; returns its exit status (0 = all as expected). */
static int as_nobody(int (*fn)(void))
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(100);
        _exit(fn());
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -2;
    return WEXITSTATUS(st);
}

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

static int creation_in_readonly_dir(void)
{
    CHECK_ERR(1, open("ro/new", O_CREAT | O_WRONLY, 0644), EACCES);
    CHECK_ERR(2, mkdir("ro/d", 0755), EACCES);
    CHECK_ERR(3, unlink("ro/f"), EACCES);
    CHECK_ERR(4, rename("ro/f", "rw/g"), EACCES);
    CHECK_ERR(5, symlink("x", "ro/l"), EACCES);
    CHECK_ERR(6, link("own", "ro/l"), EACCES);
    CHECK_ERR(7, mknod("ro/fifo", S_IFIFO | 0644, 0), EACCES);
    CHECK_ERR(8, open("ro/f", O_WRONLY), EACCES);
    CHECK_ERR(9, open("ro/f", O_RDWR | O_TRUNC), EACCES);
    CHECK_ERR(10, truncate("ro/f", 0), EACCES);
    CHECK_OK(11, access("ro/f", R_OK));
    CHECK_ERR(12, access("ro/f", W_OK), EACCES);
    CHECK_ERR(13, access("ro/f", X_OK), EACCES);
    return 0;
}

static int search_permission(void)
{
    struct stat st;
    CHECK_ERR(1, stat("nox/f", &st), EACCES);
    CHECK_ERR(2, open("nox/f", O_RDONLY), EACCES);
    CHECK_ERR(3, chdir("nox"), EACCES);
    /* Listing needs read only. */
    int fd = open("nox", O_RDONLY | O_DIRECTORY);
    CHECK_OK(4, fd);
    close(fd);
    return 0;
}

static int ownership_rules(void)
{
    CHECK_ERR(1, chmod("other", 0600), EPERM);
    CHECK_OK(2, chmod("own", 0600));
    CHECK_ERR(3, chown("own", 0, 0), EPERM);
    /* chown to yourself, same group: allowed (no change). */
    CHECK_OK(4, chown("own", NOBODY, NOBODY));
    CHECK_ERR(5, chown("other", NOBODY, NOBODY), EPERM);
    /* utimes to explicit times needs ownership; to "now" write access suffices. */
    struct timeval tv[2] = {{1, 0}, {2, 0}};
    CHECK_ERR(6, utimes("other", tv), EPERM);
    CHECK_OK(7, utimes("other", NULL));
    CHECK_ERR(8, utimes("ro/f", NULL), EACCES);
    /* Another user's 0600 file. */
    CHECK_ERR(9, open("rw/f", O_RDONLY), EACCES);
    /* Removing it from a world-writable non-sticky dir is allowed... */
    return 0;
}

static int sticky_dir(void)
{
    CHECK_ERR(1, unlink("sticky/f"), EPERM);
    CHECK_ERR(2, rename("sticky/f", "sticky/g"), EPERM);
    /* Our own file in the sticky dir can go. */
    int fd = open("sticky/mine", O_CREAT | O_WRONLY, 0644);
    CHECK_OK(3, fd);
    close(fd);
    CHECK_OK(4, unlink("sticky/mine"));
    return 0;
}

static int chroot_unprivileged(void)
{
    CHECK_ERR(1, chroot("rw"), EPERM);
    return 0;
}

TEST(creation_in_readonly_dir)
{
    ASSERT_OK(setup());
    EXPECT_EQ(as_nobody(creation_in_readonly_dir), 0);
}

TEST(search_permission)
{
    ASSERT_OK(setup());
    EXPECT_EQ(as_nobody(search_permission), 0);
}

TEST(ownership_rules)
{
    ASSERT_OK(setup());
    EXPECT_EQ(as_nobody(ownership_rules), 0);
}

TEST(sticky_dir)
{
    ASSERT_OK(setup());
    EXPECT_EQ(as_nobody(sticky_dir), 0);
}

TEST(world_writable_dir)
{
    ASSERT_OK(setup());
    /* nobody may remove root's file from a world-writable, non-sticky dir. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(100);
        if (rename("rw/f", "rw/g") != 0)
            _exit(1);
        if (rename("rw/g", "rw/f") != 0)
            _exit(2);
        /* A directory owned by root, mode 0700: moving it to another parent
         * needs write permission in it (to update ".."): EACCES. Within the
         * same parent it does not. */
        if (rename("rw/sub", "sticky/sub2") == 0 || errno != EACCES)
            _exit(3);
        if (rename("rw/sub", "rw/sub2") != 0 || rename("rw/sub2", "rw/sub") != 0)
            _exit(4);
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(chroot)
{
    ASSERT_OK(setup());
    EXPECT_EQ(as_nobody(chroot_unprivileged), 0);
    EXPECT_ERRNO(chroot("no-such-dir"), ENOENT);
    EXPECT_ERRNO(chroot("own"), ENOTDIR);
    ASSERT_OK(mkdir("jail", 0755));
    ASSERT_OK(mkdir("jail/inner", 0755));
    ASSERT_OK(close(open("jail/f", O_CREAT | O_WRONLY, 0644)));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (chroot("jail") != 0)
            _exit(1);
        /* The cwd is unchanged (outside the new root) until chdir. */
        if (chdir("/") != 0)
            _exit(2);
        if (access("/f", F_OK) != 0)
            _exit(3);
        if (access("/inner", F_OK) != 0)
            _exit(4);
        /* ".." at the root stays there. */
        if (access("/../../f", F_OK) != 0)
            _exit(5);
        if (access("/../own", F_OK) == 0)
            _exit(6);
        char buf[64];
        if (chdir("/inner") != 0 || !getcwd(buf, sizeof buf) || strcmp(buf, "/inner") != 0)
            _exit(7);
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    unlink("jail/f");
    rmdir("jail/inner");
    rmdir("jail");
}

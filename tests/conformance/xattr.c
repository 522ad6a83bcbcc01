/*
 * xattr.c - extended attributes (get/set/list/removexattr and their l* and f*
 * forms) with Linux's errnos. Works in a fresh directory under /dev/shm (a tmpfs
 * both natively and in the sandbox; tmpfs keeps user.* since Linux 6.6 and
 * trusted.* always) and removes it again.
 */
#define _GNU_SOURCE
#include "harness.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static char dir[64];
/* An unmapped address (volatile: the compiler may not reason about it). */
static char *volatile bad = (char *)1;

static void cleanup(void)
{
    const char *names[] = {"f", "g", "s", "d", NULL};
    for (int i = 0; names[i]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

static int setup_dir(void)
{
    if (dir[0])
        return chdir(dir);
    strcpy(dir, "/dev/shm/xattr.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    atexit(cleanup);
    return chdir(dir);
}

/* A fresh empty regular file `name` in the test directory. */
static int fresh(const char *name)
{
    if (setup_dir() != 0)
        return -1;
    unlink(name);
    int fd = open(name, O_CREAT | O_EXCL | O_RDWR, 0644);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* Whether the NUL-separated list `l` of `n` bytes holds `name`. */
static int has_name(const char *l, ssize_t n, const char *name)
{
    for (ssize_t i = 0; i < n; i += strlen(l + i) + 1)
        if (strcmp(l + i, name) == 0)
            return 1;
    return 0;
}

TEST(set_get_basic)
{
    ASSERT_OK(fresh("f"));
    char b[64] = {0};
    if (setxattr("f", "user.a", "hello", 5, 0) != 0 && errno == EOPNOTSUPP)
        SKIP("no user.* xattrs on this host's tmpfs (Linux < 6.6)");
    EXPECT_EQ(getxattr("f", "user.a", NULL, 0), 5);
    EXPECT_EQ(getxattr("f", "user.a", b, sizeof b), 5);
    EXPECT_MEMEQ(b, "hello", 5);
    EXPECT_ERRNO(getxattr("f", "user.a", b, 4), ERANGE);
    EXPECT_EQ(getxattr("f", "user.a", b, 5), 5);
    EXPECT_ERRNO(getxattr("f", "user.none", b, sizeof b), ENODATA);
    EXPECT_ERRNO(getxattr("f", "user.none", NULL, 0), ENODATA);
    /* Overwrite with a longer, then an empty value. */
    EXPECT_OK(setxattr("f", "user.a", "0123456789", 10, 0));
    EXPECT_EQ(getxattr("f", "user.a", b, sizeof b), 10);
    EXPECT_MEMEQ(b, "0123456789", 10);
    EXPECT_OK(setxattr("f", "user.a", NULL, 0, 0));
    EXPECT_EQ(getxattr("f", "user.a", b, sizeof b), 0);
    /* Binary values with NULs survive. */
    EXPECT_OK(setxattr("f", "user.bin", "a\0b\0", 4, 0));
    EXPECT_EQ(getxattr("f", "user.bin", b, sizeof b), 4);
    EXPECT_MEMEQ(b, "a\0b\0", 4);
}

TEST(create_replace_flags)
{
    ASSERT_OK(fresh("f"));
    char b[16] = {0};
    if (setxattr("f", "user.x", "1", 1, XATTR_CREATE) != 0 && errno == EOPNOTSUPP)
        SKIP("no user.* xattrs on this host's tmpfs");
    EXPECT_ERRNO(setxattr("f", "user.x", "2", 1, XATTR_CREATE), EEXIST);
    EXPECT_ERRNO(setxattr("f", "user.y", "2", 1, XATTR_REPLACE), ENODATA);
    EXPECT_ERRNO(getxattr("f", "user.y", b, sizeof b), ENODATA);
    EXPECT_OK(setxattr("f", "user.x", "3", 1, XATTR_REPLACE));
    EXPECT_EQ(getxattr("f", "user.x", b, sizeof b), 1);
    EXPECT_EQ(b[0], '3');
    /* Both flags: EEXIST if present, ENODATA if absent. */
    EXPECT_ERRNO(setxattr("f", "user.x", "4", 1, XATTR_CREATE | XATTR_REPLACE), EEXIST);
    EXPECT_ERRNO(setxattr("f", "user.z", "4", 1, XATTR_CREATE | XATTR_REPLACE), ENODATA);
    /* Unknown flags: EINVAL, even for a missing file. */
    EXPECT_ERRNO(setxattr("f", "user.x", "5", 1, 4), EINVAL);
    EXPECT_ERRNO(setxattr("f", "user.x", "5", 1, -1), EINVAL);
    EXPECT_ERRNO(setxattr("nonexistent", "user.x", "5", 1, 8), EINVAL);
}

TEST(name_rules)
{
    ASSERT_OK(fresh("f"));
    char b[16];
    char name[300];
    if (setxattr("f", "user.probe", "", 0, 0) != 0 && errno == EOPNOTSUPP)
        SKIP("no user.* xattrs on this host's tmpfs");
    /* Empty and over-long names: ERANGE. */
    EXPECT_ERRNO(setxattr("f", "", "v", 1, 0), ERANGE);
    EXPECT_ERRNO(getxattr("f", "", b, sizeof b), ERANGE);
    EXPECT_ERRNO(removexattr("f", ""), ERANGE);
    strcpy(name, "user.");
    memset(name + 5, 'n', 251);
    name[256] = 0; /* 256 bytes */
    EXPECT_ERRNO(setxattr("f", name, "v", 1, 0), ERANGE);
    EXPECT_ERRNO(getxattr("f", name, b, sizeof b), ERANGE);
    EXPECT_ERRNO(removexattr("f", name), ERANGE);
    name[255] = 0; /* 255 bytes: the longest */
    EXPECT_OK(setxattr("f", name, "v", 1, 0));
    EXPECT_EQ(getxattr("f", name, b, sizeof b), 1);
    EXPECT_OK(removexattr("f", name));
    /* A bare namespace prefix is EINVAL; an unknown namespace EOPNOTSUPP. */
    EXPECT_ERRNO(setxattr("f", "user.", "v", 1, 0), EINVAL);
    EXPECT_ERRNO(getxattr("f", "user.", b, sizeof b), EINVAL);
    EXPECT_ERRNO(setxattr("f", "nonamespace", "v", 1, 0), EOPNOTSUPP);
    EXPECT_ERRNO(getxattr("f", "bogus.x", b, sizeof b), EOPNOTSUPP);
    EXPECT_ERRNO(removexattr("f", "bogus.x"), EOPNOTSUPP);
    /* Bad name pointers: EFAULT. */
    EXPECT_ERRNO(setxattr("f", NULL, "v", 1, 0), EFAULT);
    EXPECT_ERRNO(getxattr("f", bad, b, sizeof b), EFAULT);
    EXPECT_ERRNO(removexattr("f", bad), EFAULT);
}

TEST(value_sizes_and_faults)
{
    ASSERT_OK(fresh("f"));
    char b[16];
    if (setxattr("f", "user.probe", "", 0, 0) != 0 && errno == EOPNOTSUPP)
        SKIP("no user.* xattrs on this host's tmpfs");
    static char big[65537];
    memset(big, 'v', sizeof big);
    EXPECT_ERRNO(setxattr("f", "user.big", big, 65537, 0), E2BIG);
    EXPECT_ERRNO(getxattr("f", "user.big", NULL, 0), ENODATA);
    EXPECT_OK(setxattr("f", "user.mid", big, 4096, 0));
    EXPECT_EQ(getxattr("f", "user.mid", NULL, 0), 4096);
    EXPECT_ERRNO(getxattr("f", "user.mid", b, sizeof b), ERANGE);
    static char back[4096];
    EXPECT_EQ(getxattr("f", "user.mid", back, sizeof back), 4096);
    EXPECT_MEMEQ(back, big, 4096);
    /* Bad value pointers: EFAULT (nothing is set). */
    EXPECT_ERRNO(setxattr("f", "user.fault", bad, 10, 0), EFAULT);
    EXPECT_ERRNO(getxattr("f", "user.fault", NULL, 0), ENODATA);
    EXPECT_ERRNO(getxattr("f", "user.mid", bad, 4096), EFAULT);
    EXPECT_ERRNO(listxattr("f", bad, 4096), EFAULT);
}

TEST(list_and_remove)
{
    ASSERT_OK(fresh("f"));
    char l[1024];
    if (setxattr("f", "user.one", "1", 1, 0) != 0 && errno == EOPNOTSUPP)
        SKIP("no user.* xattrs on this host's tmpfs");
    EXPECT_OK(setxattr("f", "user.two", "22", 2, 0));
    ssize_t need = listxattr("f", NULL, 0);
    EXPECT_GE(need, (ssize_t)(sizeof "user.one" + sizeof "user.two"));
    ssize_t n = listxattr("f", l, sizeof l);
    EXPECT_EQ(n, need);
    if (n > 0) {
        EXPECT_EQ(l[n - 1], 0);
        EXPECT_TRUE(has_name(l, n, "user.one"));
        EXPECT_TRUE(has_name(l, n, "user.two"));
    }
    EXPECT_ERRNO(listxattr("f", l, 1), ERANGE);
    EXPECT_ERRNO(listxattr("f", l, need - 1), ERANGE);
    EXPECT_OK(removexattr("f", "user.one"));
    EXPECT_ERRNO(removexattr("f", "user.one"), ENODATA);
    EXPECT_ERRNO(getxattr("f", "user.one", NULL, 0), ENODATA);
    n = listxattr("f", l, sizeof l);
    EXPECT_EQ(n, need - (ssize_t)sizeof "user.one");
    if (n > 0) {
        EXPECT_FALSE(has_name(l, n, "user.one"));
        EXPECT_TRUE(has_name(l, n, "user.two"));
    }
    EXPECT_OK(removexattr("f", "user.two"));
    EXPECT_ERRNO(removexattr("f", "user.never"), ENODATA);
}

TEST(symlinks_follow_or_eperm)
{
    ASSERT_OK(fresh("f"));
    char b[16];
    if (setxattr("f", "user.t", "target", 6, 0) != 0 && errno == EOPNOTSUPP)
        SKIP("no user.* xattrs on this host's tmpfs");
    unlink("s");
    ASSERT_OK(symlink("f", "s"));
    /* The plain calls follow the link. */
    EXPECT_EQ(getxattr("s", "user.t", b, sizeof b), 6);
    EXPECT_OK(setxattr("s", "user.via", "1", 1, 0));
    EXPECT_EQ(getxattr("f", "user.via", b, sizeof b), 1);
    /* user.* on the link itself: EPERM to change, ENODATA to read. */
    EXPECT_ERRNO(lsetxattr("s", "user.x", "1", 1, 0), EPERM);
    EXPECT_ERRNO(lgetxattr("s", "user.t", b, sizeof b), ENODATA);
    EXPECT_ERRNO(lremovexattr("s", "user.t"), EPERM);
    EXPECT_EQ(lgetxattr("f", "user.t", b, sizeof b), 6);
    EXPECT_OK(lremovexattr("f", "user.via"));
    EXPECT_OK(unlink("s"));
    /* A dangling link: the plain calls see ENOENT. */
    ASSERT_OK(symlink("nowhere", "s"));
    EXPECT_ERRNO(getxattr("s", "user.t", b, sizeof b), ENOENT);
    EXPECT_ERRNO(setxattr("s", "user.t", "1", 1, 0), ENOENT);
    EXPECT_OK(unlink("s"));
}

TEST(fd_forms)
{
    ASSERT_OK(fresh("f"));
    char b[64];
    int fd = open("f", O_RDONLY);
    ASSERT_GE(fd, 0);
    if (fsetxattr(fd, "user.fd", "abc", 3, 0) != 0 && errno == EOPNOTSUPP) {
        close(fd);
        SKIP("no user.* xattrs on this host's tmpfs");
    }
    EXPECT_EQ(fgetxattr(fd, "user.fd", b, sizeof b), 3);
    EXPECT_EQ(getxattr("f", "user.fd", b, sizeof b), 3);
    ssize_t n = flistxattr(fd, b, sizeof b);
    EXPECT_GE(n, (ssize_t)sizeof "user.fd");
    if (n > 0)
        EXPECT_TRUE(has_name(b, n, "user.fd"));
    EXPECT_ERRNO(fsetxattr(fd, "user.fd", "x", 1, XATTR_CREATE), EEXIST);
    EXPECT_OK(fremovexattr(fd, "user.fd"));
    EXPECT_ERRNO(fgetxattr(fd, "user.fd", b, sizeof b), ENODATA);
    EXPECT_ERRNO(fremovexattr(fd, "user.fd"), ENODATA);
    close(fd);
    /* Bad and O_PATH descriptors: EBADF. */
    EXPECT_ERRNO(fgetxattr(fd, "user.fd", b, sizeof b), EBADF);
    EXPECT_ERRNO(fsetxattr(-1, "user.fd", "x", 1, 0), EBADF);
    EXPECT_ERRNO(flistxattr(9999, b, sizeof b), EBADF);
    EXPECT_ERRNO(fremovexattr(9999, "user.fd"), EBADF);
    int pfd = open("f", O_PATH);
    ASSERT_GE(pfd, 0);
    EXPECT_ERRNO(fgetxattr(pfd, "user.fd", b, sizeof b), EBADF);
    EXPECT_ERRNO(fsetxattr(pfd, "user.fd", "x", 1, 0), EBADF);
    close(pfd);
}

TEST(directories)
{
    ASSERT_OK(setup_dir());
    char b[16];
    rmdir("d");
    ASSERT_OK(mkdir("d", 0755));
    if (setxattr("d", "user.dir", "D", 1, 0) != 0 && errno == EOPNOTSUPP)
        SKIP("no user.* xattrs on this host's tmpfs");
    EXPECT_EQ(getxattr("d", "user.dir", b, sizeof b), 1);
    EXPECT_EQ(b[0], 'D');
    int fd = open("d", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fgetxattr(fd, "user.dir", b, sizeof b), 1);
    close(fd);
    EXPECT_OK(removexattr("d", "user.dir"));
    EXPECT_OK(rmdir("d"));
}

TEST(missing_paths)
{
    ASSERT_OK(fresh("f"));
    char b[16];
    EXPECT_ERRNO(getxattr("nonexistent", "user.x", b, sizeof b), ENOENT);
    EXPECT_ERRNO(setxattr("nonexistent", "user.x", "v", 1, 0), ENOENT);
    EXPECT_ERRNO(listxattr("nonexistent", b, sizeof b), ENOENT);
    EXPECT_ERRNO(removexattr("nonexistent", "user.x"), ENOENT);
    EXPECT_ERRNO(getxattr("f/x", "user.x", b, sizeof b), ENOTDIR);
    EXPECT_ERRNO(llistxattr("", b, sizeof b), ENOENT);
    EXPECT_ERRNO(getxattr(NULL, "user.x", b, sizeof b), EFAULT);
}

TEST(trusted_namespace_as_root)
{
    ASSERT_OK(fresh("g"));
    char b[16];
    char l[512];
    if (geteuid() != 0)
        SKIP("trusted.* needs CAP_SYS_ADMIN");
    EXPECT_OK(setxattr("g", "trusted.t", "T", 1, 0));
    EXPECT_EQ(getxattr("g", "trusted.t", b, sizeof b), 1);
    EXPECT_EQ(b[0], 'T');
    ssize_t n = listxattr("g", l, sizeof l);
    EXPECT_GE(n, (ssize_t)sizeof "trusted.t");
    if (n > 0)
        EXPECT_TRUE(has_name(l, n, "trusted.t"));
    EXPECT_ERRNO(setxattr("g", "trusted.", "T", 1, 0), EINVAL);
    EXPECT_OK(removexattr("g", "trusted.t"));
    EXPECT_ERRNO(getxattr("g", "trusted.t", b, sizeof b), ENODATA);
}

TEST(special_files_without_xattrs)
{
    int p[2];
    char b[16];
    ASSERT_OK(pipe(p));
    /* user.* exists only on regular files and directories. */
    EXPECT_ERRNO(fgetxattr(p[0], "user.x", b, sizeof b), ENODATA);
    EXPECT_ERRNO(fsetxattr(p[1], "user.x", "v", 1, 0), EPERM);
    EXPECT_ERRNO(fremovexattr(p[1], "user.x"), EPERM);
    EXPECT_ERRNO(fgetxattr(p[0], "bogus.x", b, sizeof b), EOPNOTSUPP);
    EXPECT_EQ(flistxattr(p[0], b, sizeof b), 0);
    close(p[0]);
    close(p[1]);
}

TEST(unprivileged_rules)
{
    ASSERT_OK(fresh("g"));
    char b[16];
    char l[512];
    if (geteuid() != 0)
        SKIP("needs root to switch to an unprivileged uid");
    if (setxattr("g", "user.r", "1", 1, 0) != 0 && errno == EOPNOTSUPP)
        SKIP("no user.* xattrs on this host's tmpfs");
    ASSERT_OK(setxattr("g", "trusted.t", "T", 1, 0));
    rmdir("d");
    ASSERT_OK(mkdir("d", 0777));
    ASSERT_OK(chmod("d", 01777));
    ASSERT_OK(chmod(dir, 0755)); /* searchable by the unprivileged uid */
    ASSERT_OK(seteuid(65534));
    EXPECT_EQ(getxattr("g", "user.r", b, sizeof b), 1);
    /* No write permission on the file: EACCES. */
    EXPECT_ERRNO(setxattr("g", "user.w", "1", 1, 0), EACCES);
    EXPECT_ERRNO(removexattr("g", "user.r"), EACCES);
    /* trusted.* needs CAP_SYS_ADMIN: invisible and unchangeable. */
    EXPECT_ERRNO(getxattr("g", "trusted.t", b, sizeof b), ENODATA);
    EXPECT_ERRNO(setxattr("g", "trusted.x", "1", 1, 0), EPERM);
    ssize_t n = listxattr("g", l, sizeof l);
    EXPECT_GE(n, (ssize_t)sizeof "user.r");
    if (n > 0) {
        EXPECT_TRUE(has_name(l, n, "user.r"));
        EXPECT_FALSE(has_name(l, n, "trusted.t"));
    }
    /* A sticky directory: only its owner may set user.* on it. */
    EXPECT_ERRNO(setxattr("d", "user.x", "1", 1, 0), EPERM);
    EXPECT_OK(seteuid(0));
    EXPECT_OK(setxattr("d", "user.x", "1", 1, 0));
    EXPECT_OK(removexattr("g", "trusted.t"));
    EXPECT_OK(rmdir("d"));
}

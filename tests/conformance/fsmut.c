/*
 * fsmut.c - creating, renaming and removing files, with Linux's errnos. Works
 * in a fresh directory under /dev/shm (a tmpfs both natively and in the
 * sandbox) and removes it again.
 */
#define _GNU_SOURCE
#include "harness.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static void cleanup(void)
{
    /* Remove whatever a failed test left, by name. */
    const char *names[] = {"f", "g", "h", "l", "s", "d/e", "d", "x/y", "x", "fifo", "at1", "at2", "atl", "ath", "sub/in", "sub", NULL};
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
    strcpy(dir, "/dev/shm/fsmut.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    atexit(cleanup);
    return chdir(dir);
}

TEST(create_write_read_stat)
{
    ASSERT_OK(setup_dir());
    int fd = open("f", O_CREAT | O_EXCL | O_RDWR, 0640);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(open("f", O_CREAT | O_EXCL | O_RDWR, 0640), EEXIST);
    EXPECT_EQ(write(fd, "abcdef", 6), 6);
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_size, 6);
    EXPECT_EQ(st.st_mode, S_IFREG | 0640);
    EXPECT_EQ(st.st_nlink, 1);
    char b[8] = {0};
    EXPECT_EQ(pread(fd, b, 8, 2), 4);
    EXPECT_STREQ(b, "cdef");
    EXPECT_OK(ftruncate(fd, 2));
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_size, 2);
    close(fd);
    fd = open("f", O_WRONLY | O_TRUNC);
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_size, 0);
    close(fd);
}

TEST(mkdir_rmdir_errors)
{
    EXPECT_OK(mkdir("d", 0755));
    EXPECT_ERRNO(mkdir("d", 0755), EEXIST);
    EXPECT_ERRNO(mkdir("nope/x", 0755), ENOENT);
    EXPECT_ERRNO(mkdir("f/x", 0755), ENOTDIR);
    EXPECT_OK(mkdir("d/e", 0755));
    EXPECT_ERRNO(rmdir("d"), ENOTEMPTY);
    EXPECT_ERRNO(rmdir("f"), ENOTDIR);
    EXPECT_ERRNO(unlink("d"), EISDIR);
    EXPECT_ERRNO(rmdir("d/."), EINVAL);
    struct stat st;
    EXPECT_OK(stat("d", &st));
    EXPECT_EQ(st.st_nlink, 3);
    EXPECT_OK(rmdir("d/e"));
    EXPECT_OK(stat("d", &st));
    EXPECT_EQ(st.st_nlink, 2);
    char longname[NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    EXPECT_ERRNO(mkdir(longname, 0755), ENAMETOOLONG);
}

TEST(links_and_symlinks)
{
    EXPECT_OK(link("f", "g"));
    struct stat st;
    EXPECT_OK(stat("f", &st));
    EXPECT_EQ(st.st_nlink, 2);
    EXPECT_ERRNO(link("f", "g"), EEXIST);
    EXPECT_ERRNO(link("d", "h"), EPERM);
    EXPECT_OK(symlink("f", "s"));
    char t[16] = {0};
    EXPECT_EQ(readlink("s", t, sizeof t), 1);
    EXPECT_STREQ(t, "f");
    EXPECT_OK(lstat("s", &st));
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_OK(symlink("s", "l"));
    EXPECT_ERRNO(open("l", O_RDONLY | O_NOFOLLOW), ELOOP);
    EXPECT_OK(unlink("l"));
    EXPECT_OK(unlink("g"));
    EXPECT_OK(stat("f", &st));
    EXPECT_EQ(st.st_nlink, 1);
}

TEST(rename_rules)
{
    EXPECT_OK(rename("f", "h"));
    EXPECT_ERRNO(access("f", F_OK), ENOENT);
    EXPECT_OK(rename("h", "f"));
    EXPECT_ERRNO(rename("d", "d/e"), EINVAL);
    EXPECT_ERRNO(rename("f", "d"), EISDIR);
    EXPECT_ERRNO(rename("d", "f"), ENOTDIR);
    EXPECT_ERRNO(rename("nope", "x"), ENOENT);
    EXPECT_OK(mkdir("x", 0755));
    EXPECT_OK(mkdir("x/y", 0755));
    EXPECT_ERRNO(rename("d", "x"), ENOTEMPTY);
    EXPECT_OK(rmdir("x/y"));
    EXPECT_OK(rename("d", "x"));
    EXPECT_ERRNO(access("d", F_OK), ENOENT);
    EXPECT_OK(rename("x", "d"));
}

TEST(chmod_utimes)
{
    EXPECT_OK(chmod("f", 0600));
    struct stat st;
    EXPECT_OK(stat("f", &st));
    EXPECT_EQ(st.st_mode & 07777, 0600);
    struct timespec ts[2] = {{1000, 5}, {2000, 7}};
    EXPECT_OK(utimensat(AT_FDCWD, "f", ts, 0));
    EXPECT_OK(stat("f", &st));
    EXPECT_EQ(st.st_atim.tv_sec, 1000);
    EXPECT_EQ(st.st_mtim.tv_sec, 2000);
    EXPECT_EQ(st.st_mtim.tv_nsec, 7);
    EXPECT_ERRNO(chmod("nope", 0600), ENOENT);
    EXPECT_OK(unlink("s"));
    EXPECT_OK(unlink("f"));
    EXPECT_OK(rmdir("d"));
}

TEST(named_pipes)
{
    ASSERT_OK(setup_dir());
    ASSERT_OK(mkfifo("fifo", 0644));
    struct stat st, fst;
    ASSERT_OK(stat("fifo", &st));
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
    /* No reader: a nonblocking writer gets ENXIO; a nonblocking reader opens. */
    EXPECT_ERRNO(open("fifo", O_WRONLY | O_NONBLOCK), ENXIO);
    int r = open("fifo", O_RDONLY | O_NONBLOCK);
    ASSERT_GE(r, 0);
    char b[16];
    /* No writer: EOF. */
    EXPECT_EQ(read(r, b, sizeof b), 0);
    int w = open("fifo", O_WRONLY | O_NONBLOCK);
    ASSERT_GE(w, 0);
    EXPECT_OK(fstat(w, &fst));
    EXPECT_TRUE(S_ISFIFO(fst.st_mode));
    EXPECT_EQ(fst.st_ino, st.st_ino);
    EXPECT_EQ(write(w, "abc", 3), 3);
    EXPECT_EQ(read(r, b, sizeof b), 3);
    /* With the writer open and nothing buffered: EAGAIN. */
    EXPECT_ERRNO(read(r, b, sizeof b), EAGAIN);
    EXPECT_EQ(write(w, "zz", 2), 2);
    close(w);
    close(r);
    /* Unread data goes with the last close. */
    int rw = open("fifo", O_RDWR | O_NONBLOCK);
    ASSERT_GE(rw, 0);
    EXPECT_ERRNO(read(rw, b, sizeof b), EAGAIN);
    EXPECT_EQ(write(rw, "x", 1), 1);
    EXPECT_EQ(read(rw, b, sizeof b), 1);
    close(rw);
    /* A blocking reader waits for a writer. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        usleep(50000);
        int fd = open("fifo", O_WRONLY);
        if (fd < 0)
            _exit(1);
        if (write(fd, "hello", 5) != 5)
            _exit(2);
        close(fd);
        _exit(0);
    }
    r = open("fifo", O_RDONLY);
    ASSERT_GE(r, 0);
    ssize_t n = 0, k;
    while ((k = read(r, b + n, sizeof b - n)) > 0)
        n += k;
    EXPECT_EQ(n, 5);
    EXPECT_MEMEQ(b, "hello", 5);
    close(r);
    int status;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_EQ(status, 0);
    /* A blocking writer waits for a reader; a reader that finds the writer
     * already open does not wait, even if the writer is gone by the time it
     * runs again (fifo_open decides at open time). Several rounds. */
    for (int round = 0; round < 8; round++) {
        pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            usleep(round % 2 ? 20000 : 0);
            int fd = open("fifo", O_RDONLY);
            char c[4];
            _exit(fd >= 0 && read(fd, c, 4) == 2 ? 0 : 1);
        }
        w = open("fifo", O_WRONLY);
        ASSERT_GE(w, 0);
        EXPECT_EQ(write(w, "ok", 2), 2);
        close(w);
        EXPECT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_EQ(status, 0);
    }
    EXPECT_OK(unlink("fifo"));
}

#include <linux/openat2.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

static int renameat2_(int od, const char *o, int nd, const char *n, unsigned flags)
{
    return (int)syscall(SYS_renameat2, od, o, nd, n, flags);
}

static char read1(const char *p)
{
    char c = 0;
    int fd = open(p, O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &c, 1) != 1)
            c = 0;
        close(fd);
    }
    return c;
}

static void put1(const char *p, char c)
{
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, &c, 1) != 1)
            c = 0;
        close(fd);
    }
}

TEST(at_variants)
{
    ASSERT_OK(setup_dir());
    int d = open(".", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(d, 0);
    put1("at1", '1');
    put1("at2", '2');
    /* renameat2: NOREPLACE, EXCHANGE, bad flags. */
    EXPECT_ERRNO(renameat2_(d, "at1", d, "at2", RENAME_NOREPLACE), EEXIST);
    EXPECT_ERRNO(renameat2_(d, "at1", d, "at2", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
    EXPECT_ERRNO(renameat2_(d, "at1", d, "at2", 0x80), EINVAL);
    EXPECT_ERRNO(renameat2_(d, "at1", d, "nothere", RENAME_EXCHANGE), ENOENT);
    EXPECT_OK(renameat2_(d, "at1", d, "at2", RENAME_EXCHANGE));
    EXPECT_EQ(read1("at1"), '2');
    EXPECT_EQ(read1("at2"), '1');
    /* symlinkat, linkat (AT_SYMLINK_FOLLOW links the target). */
    EXPECT_OK(symlinkat("at1", d, "atl"));
    EXPECT_OK(linkat(d, "atl", d, "ath", AT_SYMLINK_FOLLOW));
    struct stat a, b;
    ASSERT_OK(stat("at1", &a));
    ASSERT_OK(lstat("ath", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(b.st_nlink, 2);
    EXPECT_OK(unlink("ath"));
    EXPECT_ERRNO(linkat(d, "atl", d, "ath", 0x8000), EINVAL);
    EXPECT_ERRNO(symlinkat("x", d, "atl"), EEXIST);
    /* fchmodat, fchownat on the link itself, lchown. */
    EXPECT_OK(fchmodat(d, "at1", 0600, 0));
    ASSERT_OK(stat("at1", &a));
    EXPECT_EQ(a.st_mode & 07777, 0600);
    EXPECT_ERRNO(fchmodat(d, "at1", 0600, 0x8000), EINVAL);
    EXPECT_OK(fchownat(d, "atl", 1, 2, AT_SYMLINK_NOFOLLOW));
    ASSERT_OK(lstat("atl", &b));
    EXPECT_EQ(b.st_uid, 1);
    EXPECT_EQ(b.st_gid, 2);
    ASSERT_OK(stat("at1", &a));
    EXPECT_EQ(a.st_uid, 0);
    EXPECT_OK(lchown("atl", 3, 3));
    ASSERT_OK(lstat("atl", &b));
    EXPECT_EQ(b.st_uid, 3);
    EXPECT_ERRNO(fchownat(d, "at1", 0, 0, 0x8000), EINVAL);
    /* futimesat. */
    struct timeval tv[2] = {{100, 0}, {200, 0}};
    EXPECT_OK(futimesat(d, "at1", tv));
    ASSERT_OK(stat("at1", &a));
    EXPECT_EQ(a.st_atime, 100);
    EXPECT_EQ(a.st_mtime, 200);
    /* fstatfs of a tmpfs file. */
    int fd = open("at1", O_RDONLY);
    struct statfs sf;
    EXPECT_OK(fstatfs(fd, &sf));
    EXPECT_EQ(sf.f_type, 0x01021994);
    close(fd);
    EXPECT_ERRNO(fstatfs(-1, &sf), EBADF);
    /* Across mounts: EXDEV. */
    EXPECT_ERRNO(rename("at1", "/proc/at1"), EXDEV);
    EXPECT_OK(unlink("atl"));
    close(d);
}

static long openat2_(int dirfd, const char *path, struct open_how *how, size_t size)
{
    return syscall(SYS_openat2, dirfd, path, how, size);
}

TEST(openat2_resolve)
{
    ASSERT_OK(setup_dir());
    ASSERT_OK(mkdir("sub", 0755));
    put1("sub/in", 'i');
    ASSERT_OK(symlink("in", "atl"));
    int d = open("sub", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(d, 0);
    struct open_how how = {.flags = O_RDONLY};
    long fd = openat2_(d, "in", &how, sizeof how);
    EXPECT_GE(fd, 0);
    close((int)fd);
    /* Escapes. */
    how.resolve = RESOLVE_BENEATH;
    EXPECT_ERRNO(openat2_(d, "../at2", &how, sizeof how), EXDEV);
    EXPECT_ERRNO(openat2_(d, "/etc/passwd", &how, sizeof how), EXDEV);
    /* IN_ROOT: "/" is the dirfd. */
    how.resolve = RESOLVE_IN_ROOT;
    fd = openat2_(d, "/in", &how, sizeof how);
    EXPECT_GE(fd, 0);
    close((int)fd);
    /* No symlinks at all. */
    how.resolve = RESOLVE_NO_SYMLINKS;
    EXPECT_ERRNO(openat2_(AT_FDCWD, "atl", &how, sizeof how), ELOOP);
    /* Argument checks. */
    how.resolve = 0x1000;
    EXPECT_ERRNO(openat2_(d, "in", &how, sizeof how), EINVAL);
    how.resolve = 0;
    EXPECT_ERRNO(openat2_(d, "in", &how, 8), EINVAL);
    how.flags = O_RDONLY;
    how.mode = 0644; /* mode without O_CREAT/O_TMPFILE */
    EXPECT_ERRNO(openat2_(d, "in", &how, sizeof how), EINVAL);
    struct {
        struct open_how h;
        unsigned long long extra;
    } big = {{.flags = O_RDONLY}, 1};
    EXPECT_ERRNO(openat2_(d, "in", &big.h, sizeof big), E2BIG);
    big.extra = 0;
    fd = openat2_(d, "in", &big.h, sizeof big);
    EXPECT_GE(fd, 0);
    close((int)fd);
    close(d);
    unlink("atl");
    unlink("sub/in");
    rmdir("sub");
}

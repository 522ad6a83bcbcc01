/*
 * file_read.c - read-only file system behaviour: open/openat, read, pread,
 * readv/preadv, lseek, stat family, readlink, getdents64, cwd, dup family,
 * fcntl, access, and the errnos of the usual mistakes.
 *
 * Only reads host files that exist on every Debian system (/etc/passwd,
 * /etc, /usr/bin, /bin). Never writes to the file system.
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#define PASSWD "/etc/passwd"

/* The kernel reports O_LARGEFILE in F_GETFL on 64-bit (glibc defines it 0). */
#define KERNEL_O_LARGEFILE 0100000

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static char passwd_data[1 << 20];
static ssize_t passwd_len = -1;

/* The whole of /etc/passwd, read with plain read() in small chunks. */
static ssize_t load_passwd(void)
{
    if (passwd_len >= 0)
        return passwd_len;
    int fd = open(PASSWD, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t total = 0, n;
    while ((n = read(fd, passwd_data + total, 100)) > 0)
        total += n;
    close(fd);
    if (n < 0)
        return -1;
    passwd_len = total;
    return total;
}

static int is_symlink(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

/* ---------------------------------------------------------------- open */

TEST(open_read_whole_file_matches_size)
{
    struct stat st;
    ASSERT_GT(load_passwd(), 0);
    ASSERT_OK(stat(PASSWD, &st));
    EXPECT_EQ(passwd_len, st.st_size);
    EXPECT_EQ(memcmp(passwd_data, "root:", 5), 0);
    EXPECT_EQ(passwd_data[passwd_len - 1], '\n');
}

TEST(open_returns_lowest_free_fd)
{
    int a = open(PASSWD, O_RDONLY);
    ASSERT_GE(a, 0);
    /* Every fd below the one returned is in use. */
    for (int fd = 0; fd < a; fd++)
        EXPECT_GE(fcntl(fd, F_GETFD), 0);
    int b = open(PASSWD, O_RDONLY);
    EXPECT_GT(b, a);
    close(a);
    int c = open(PASSWD, O_RDONLY);
    EXPECT_EQ(c, a);
    close(b);
    close(c);
}

TEST(open_missing_enoent)
{
    EXPECT_ERRNO(open("/nonexistent-conformance-file", O_RDONLY), ENOENT);
    EXPECT_ERRNO(open("/nonexistent-dir/file", O_RDONLY), ENOENT);
    EXPECT_ERRNO(open("", O_RDONLY), ENOENT);
}

TEST(open_through_file_enotdir)
{
    EXPECT_ERRNO(open("/etc/passwd/x", O_RDONLY), ENOTDIR);
    EXPECT_ERRNO(open("/etc/passwd/", O_RDONLY), ENOTDIR);
    EXPECT_ERRNO(open("/etc/passwd/..", O_RDONLY), ENOTDIR);
    struct stat st;
    EXPECT_ERRNO(stat("/etc/passwd/", &st), ENOTDIR);
    EXPECT_ERRNO(stat("/etc/passwd/x", &st), ENOTDIR);
}

TEST(open_o_directory)
{
    EXPECT_ERRNO(open(PASSWD, O_RDONLY | O_DIRECTORY), ENOTDIR);
    int fd = open("/etc", O_RDONLY | O_DIRECTORY);
    EXPECT_GE(fd, 0);
    close(fd);
    fd = open("/etc/", O_RDONLY);
    EXPECT_GE(fd, 0);
    close(fd);
}

TEST(open_bad_pointer_efault)
{
    EXPECT_ERRNO(syscall(SYS_openat, AT_FDCWD, (char *)1, O_RDONLY), EFAULT);
    EXPECT_ERRNO(syscall(SYS_open, (char *)0, O_RDONLY), EFAULT);
}

TEST(open_name_too_long)
{
    static char name[NAME_MAX + 10];
    static char path[PATH_MAX + 10];
    name[0] = '/';
    memset(name + 1, 'a', NAME_MAX + 1);
    name[NAME_MAX + 2] = 0;
    EXPECT_ERRNO(open(name, O_RDONLY), ENAMETOOLONG);
    /* PATH_MAX counts the NUL: a string of PATH_MAX chars is too long. */
    for (int i = 0; i < PATH_MAX; i += 2) {
        path[i] = '/';
        path[i + 1] = '.';
    }
    path[PATH_MAX] = 0;
    EXPECT_ERRNO(open(path, O_RDONLY), ENAMETOOLONG);
}

TEST(open_path_normalisation)
{
    struct stat a, b;
    ASSERT_OK(stat(PASSWD, &a));
    ASSERT_OK(stat("//etc///passwd", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    ASSERT_OK(stat("/etc/./passwd", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    ASSERT_OK(stat("/usr/../etc/passwd", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    ASSERT_OK(stat("/", &a));
    ASSERT_OK(stat("/..", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(a.st_dev, b.st_dev);
    ASSERT_OK(stat("/../../..", &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST(open_creat_excl_existing_eexist)
{
    /* An existing file: EEXIST is reported before anything is written. */
    EXPECT_ERRNO(open(PASSWD, O_RDONLY | O_CREAT | O_EXCL, 0644), EEXIST);
    EXPECT_ERRNO(open("/etc", O_RDONLY | O_CREAT | O_EXCL, 0644), EEXIST);
}

TEST(open_creat_on_directory_eisdir)
{
    EXPECT_ERRNO(open("/etc", O_RDONLY | O_CREAT, 0644), EISDIR);
}

/* ---------------------------------------------------------------- symlinks */

TEST(symlink_bin_nofollow_eloop)
{
    if (!is_symlink("/bin"))
        SKIP("/bin is not a symlink on this system");
    EXPECT_ERRNO(open("/bin", O_RDONLY | O_NOFOLLOW), ELOOP);
    /* Only the last component is affected by O_NOFOLLOW. */
    int fd = open("/bin/", O_RDONLY | O_NOFOLLOW);
    EXPECT_GE(fd, 0);
    close(fd);
    fd = open("/bin", O_RDONLY | O_DIRECTORY);
    EXPECT_GE(fd, 0);
    close(fd);
}

TEST(symlink_stat_vs_lstat)
{
    if (!is_symlink("/bin"))
        SKIP("/bin is not a symlink on this system");
    struct stat l, s, u;
    ASSERT_OK(lstat("/bin", &l));
    ASSERT_OK(stat("/bin", &s));
    ASSERT_OK(stat("/usr/bin", &u));
    EXPECT_TRUE(S_ISLNK(l.st_mode));
    EXPECT_TRUE(S_ISDIR(s.st_mode));
    EXPECT_EQ(s.st_ino, u.st_ino);
    EXPECT_NE(l.st_ino, s.st_ino);
    EXPECT_EQ(l.st_size, (off_t)strlen("usr/bin"));
    ASSERT_OK(fstatat(AT_FDCWD, "/bin", &s, AT_SYMLINK_NOFOLLOW));
    EXPECT_EQ(s.st_ino, l.st_ino);
}

TEST(readlink_basic)
{
    if (!is_symlink("/bin"))
        SKIP("/bin is not a symlink on this system");
    char buf[64];
    memset(buf, 'X', sizeof buf);
    ssize_t n = readlink("/bin", buf, sizeof buf);
    EXPECT_EQ(n, 7);
    EXPECT_MEMEQ(buf, "usr/bin", 7);
    EXPECT_EQ(buf[7], 'X'); /* no NUL terminator */
    /* A short buffer truncates silently. */
    memset(buf, 'X', sizeof buf);
    EXPECT_EQ(readlink("/bin", buf, 3), 3);
    EXPECT_MEMEQ(buf, "usrX", 4);
    int dfd = open("/", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dfd, 0);
    EXPECT_EQ(readlinkat(dfd, "bin", buf, sizeof buf), 7);
    close(dfd);
}

TEST(readlink_errors)
{
    char buf[64];
    EXPECT_ERRNO(readlink(PASSWD, buf, sizeof buf), EINVAL);
    EXPECT_ERRNO(readlink("/etc", buf, sizeof buf), EINVAL);
    EXPECT_ERRNO(readlink("/nonexistent-conformance", buf, sizeof buf),
                 ENOENT);
    EXPECT_ERRNO(readlink("/etc/passwd/x", buf, sizeof buf), ENOTDIR);
    if (is_symlink("/bin"))
        EXPECT_ERRNO(syscall(SYS_readlink, "/bin", buf, 0), EINVAL);
}

/* ---------------------------------------------------------------- read */

TEST(read_sequential_and_eof)
{
    ASSERT_GT(load_passwd(), 0);
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    char buf[16];
    EXPECT_EQ(read(fd, buf, 0), 0);
    EXPECT_EQ(read(fd, buf, 5), 5);
    EXPECT_MEMEQ(buf, passwd_data, 5);
    EXPECT_EQ(read(fd, buf, 5), 5);
    EXPECT_MEMEQ(buf, passwd_data + 5, 5);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 10);
    EXPECT_EQ(lseek(fd, 0, SEEK_END), passwd_len);
    EXPECT_EQ(read(fd, buf, sizeof buf), 0);
    EXPECT_EQ(read(fd, buf, sizeof buf), 0);
    close(fd);
}

TEST(read_large_count_short_read)
{
    ASSERT_GT(load_passwd(), 0);
    static char big[1 << 20];
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(read(fd, big, sizeof big), passwd_len);
    EXPECT_MEMEQ(big, passwd_data, passwd_len);
    close(fd);
}

TEST(read_directory_eisdir)
{
    char buf[16];
    int fd = open("/etc", O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(read(fd, buf, sizeof buf), EISDIR);
    EXPECT_ERRNO(pread(fd, buf, sizeof buf, 0), EISDIR);
    close(fd);
}

TEST(read_bad_buffer_efault)
{
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(syscall(SYS_read, fd, (void *)0, 10), EFAULT);
    EXPECT_ERRNO(syscall(SYS_read, fd, (void *)1, 10), EFAULT);
    /* A failed read does not move the offset. */
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 0);
    close(fd);
}

TEST(pread_does_not_move_offset)
{
    ASSERT_GT(load_passwd(), 0);
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    char buf[32];
    EXPECT_EQ(read(fd, buf, 10), 10);
    EXPECT_EQ(pread(fd, buf, 8, 3), 8);
    EXPECT_MEMEQ(buf, passwd_data + 3, 8);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 10);
    EXPECT_EQ(pread(fd, buf, 8, passwd_len - 4), 4);
    EXPECT_MEMEQ(buf, passwd_data + passwd_len - 4, 4);
    EXPECT_EQ(pread(fd, buf, 8, passwd_len), 0);
    EXPECT_EQ(pread(fd, buf, 8, passwd_len + 1000000), 0);
    EXPECT_ERRNO(pread(fd, buf, 8, -1), EINVAL);
    close(fd);
}

TEST(lseek_whence)
{
    ASSERT_GT(load_passwd(), 0);
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    char c;
    EXPECT_EQ(lseek(fd, 7, SEEK_SET), 7);
    EXPECT_EQ(lseek(fd, 3, SEEK_CUR), 10);
    EXPECT_EQ(lseek(fd, -4, SEEK_CUR), 6);
    EXPECT_EQ(read(fd, &c, 1), 1);
    EXPECT_EQ(c, passwd_data[6]);
    EXPECT_EQ(lseek(fd, 0, SEEK_END), passwd_len);
    EXPECT_EQ(lseek(fd, -1, SEEK_END), passwd_len - 1);
    EXPECT_EQ(read(fd, &c, 1), 1);
    EXPECT_EQ(c, '\n');
    /* Beyond EOF is allowed; reads there return 0. */
    EXPECT_EQ(lseek(fd, 100000, SEEK_END), passwd_len + 100000);
    EXPECT_EQ(read(fd, &c, 1), 0);
    EXPECT_EQ(lseek(fd, 1LL << 40, SEEK_SET), 1LL << 40);
    /* Negative results and bad whence are EINVAL and leave the offset. */
    EXPECT_EQ(lseek(fd, 5, SEEK_SET), 5);
    EXPECT_ERRNO(lseek(fd, -1, SEEK_SET), EINVAL);
    EXPECT_ERRNO(lseek(fd, -6, SEEK_CUR), EINVAL);
    EXPECT_ERRNO(lseek(fd, -passwd_len - 1, SEEK_END), EINVAL);
    EXPECT_ERRNO(lseek(fd, 0, 99), EINVAL);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 5);
    close(fd);
}

TEST(readv_scatter)
{
    ASSERT_GT(load_passwd(), 20);
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    char a[3], b[1], c[6];
    struct iovec iov[4] = {
        {a, sizeof a}, {NULL, 0}, {b, sizeof b}, {c, sizeof c}};
    EXPECT_EQ(readv(fd, iov, 4), 10);
    EXPECT_MEMEQ(a, passwd_data, 3);
    EXPECT_MEMEQ(b, passwd_data + 3, 1);
    EXPECT_MEMEQ(c, passwd_data + 4, 6);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 10);
    EXPECT_EQ(readv(fd, iov, 0), 0);
    EXPECT_ERRNO(syscall(SYS_readv, fd, iov, -1), EINVAL);
    EXPECT_ERRNO(syscall(SYS_readv, fd, iov, 1025), EINVAL); /* > IOV_MAX */
    EXPECT_EQ(preadv(fd, iov, 1, 2), 3);
    EXPECT_MEMEQ(a, passwd_data + 2, 3);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 10);
    struct iovec bad = {NULL, 10};
    EXPECT_ERRNO(readv(fd, &bad, 1), EFAULT);
    EXPECT_ERRNO(syscall(SYS_readv, fd, (void *)8, 1), EFAULT);
    /* At EOF readv returns 0. */
    lseek(fd, 0, SEEK_END);
    EXPECT_EQ(readv(fd, iov, 4), 0);
    close(fd);
}

TEST(write_to_rdonly_fd_ebadf)
{
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(write(fd, "x", 1), EBADF);
    EXPECT_ERRNO(pwrite(fd, "x", 1, 0), EBADF);
    struct iovec iov = {"x", 1};
    EXPECT_ERRNO(writev(fd, &iov, 1), EBADF);
    close(fd);
    fd = open("/etc", O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(write(fd, "x", 1), EBADF);
    close(fd);
}

/* ---------------------------------------------------------------- stat */

TEST(fstat_matches_stat)
{
    struct stat a, b, c;
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_OK(fstat(fd, &a));
    ASSERT_OK(stat(PASSWD, &b));
    ASSERT_OK(fstatat(fd, "", &c, AT_EMPTY_PATH));
    EXPECT_TRUE(S_ISREG(a.st_mode));
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(a.st_dev, b.st_dev);
    EXPECT_EQ(a.st_mode, b.st_mode);
    EXPECT_EQ(a.st_nlink, b.st_nlink);
    EXPECT_EQ(a.st_uid, b.st_uid);
    EXPECT_EQ(a.st_gid, b.st_gid);
    EXPECT_EQ(a.st_size, b.st_size);
    EXPECT_EQ(a.st_blocks, b.st_blocks);
    EXPECT_EQ(a.st_mtim.tv_sec, b.st_mtim.tv_sec);
    EXPECT_EQ(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
    EXPECT_EQ(a.st_ino, c.st_ino);
    EXPECT_EQ(a.st_size, c.st_size);
    EXPECT_EQ(a.st_nlink, 1);
    EXPECT_EQ(a.st_mode & 07777, 0644);
    EXPECT_GT(a.st_blksize, 0);
    close(fd);
}

TEST(stat_directory)
{
    struct stat st;
    ASSERT_OK(stat("/etc", &st));
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_GE(st.st_nlink, 2);
    ASSERT_OK(stat("/", &st));
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    ASSERT_OK(stat("/usr/bin/true", &st));
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_TRUE(st.st_mode & S_IXUSR);
}

TEST(fstatat_relative_and_flags)
{
    struct stat a, b;
    int dfd = open("/etc", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dfd, 0);
    ASSERT_OK(fstatat(dfd, "passwd", &a, 0));
    ASSERT_OK(stat(PASSWD, &b));
    EXPECT_EQ(a.st_ino, b.st_ino);
    /* An absolute path ignores dirfd, even a bad one. */
    EXPECT_OK(fstatat(-1, PASSWD, &a, 0));
    EXPECT_OK(fstatat(12345, PASSWD, &a, 0));
    EXPECT_ERRNO(fstatat(12345, "passwd", &a, 0), EBADF);
    EXPECT_ERRNO(fstatat(dfd, "", &a, 0), ENOENT);
    EXPECT_ERRNO(fstatat(dfd, "passwd", &a, 0x40000000), EINVAL);
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(fstatat(fd, "x", &a, 0), ENOTDIR);
    close(fd);
    close(dfd);
}

TEST(statx_matches_stat)
{
    struct statx sx;
    struct stat st;
    ASSERT_OK(stat(PASSWD, &st));
    ASSERT_OK(statx(AT_FDCWD, PASSWD, 0, STATX_BASIC_STATS, &sx));
    EXPECT_EQ(sx.stx_mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
    EXPECT_EQ(sx.stx_ino, st.st_ino);
    EXPECT_EQ(sx.stx_size, st.st_size);
    EXPECT_EQ(sx.stx_mode, st.st_mode);
    EXPECT_EQ(sx.stx_nlink, st.st_nlink);
    EXPECT_EQ(sx.stx_uid, st.st_uid);
    EXPECT_EQ(sx.stx_mtime.tv_sec, st.st_mtim.tv_sec);
    EXPECT_EQ(sx.stx_mtime.tv_nsec, st.st_mtim.tv_nsec);
    EXPECT_EQ(makedev(sx.stx_dev_major, sx.stx_dev_minor), st.st_dev);
    EXPECT_ERRNO(statx(AT_FDCWD, "/nonexistent-conformance", 0,
                       STATX_BASIC_STATS, &sx),
                 ENOENT);
    /* STATX__RESERVED in the mask is EINVAL. */
    EXPECT_ERRNO(statx(AT_FDCWD, PASSWD, 0, 0x80000000U, &sx), EINVAL);
}

TEST(stat_bad_pointer_efault)
{
    EXPECT_ERRNO(syscall(SYS_stat, PASSWD, (void *)8), EFAULT);
    EXPECT_ERRNO(syscall(SYS_stat, (void *)8, (void *)8), EFAULT);
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(syscall(SYS_fstat, fd, (void *)8), EFAULT);
    close(fd);
}

/* ---------------------------------------------------------------- getdents */

struct dents_result {
    int count, has_dot, has_dotdot, has_passwd, passwd_is_reg, bad_reclen;
};

static int scan_dents(int fd, size_t bufsize, struct dents_result *r)
{
    static char buf[1 << 16];
    memset(r, 0, sizeof *r);
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, bufsize);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (void *)(buf + off);
            if (d->d_reclen == 0 || d->d_reclen % 8 != 0 ||
                off + d->d_reclen > n) {
                r->bad_reclen = 1;
                return 0;
            }
            r->count++;
            if (strcmp(d->d_name, ".") == 0)
                r->has_dot = 1;
            else if (strcmp(d->d_name, "..") == 0)
                r->has_dotdot = 1;
            else if (strcmp(d->d_name, "passwd") == 0) {
                r->has_passwd = 1;
                r->passwd_is_reg = d->d_type == DT_REG;
            }
            off += d->d_reclen;
        }
    }
}

TEST(getdents64_etc)
{
    struct dents_result r, r2;
    int fd = open("/etc", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    ASSERT_OK(scan_dents(fd, 1 << 16, &r));
    EXPECT_FALSE(r.bad_reclen);
    EXPECT_TRUE(r.has_dot);
    EXPECT_TRUE(r.has_dotdot);
    EXPECT_TRUE(r.has_passwd);
    EXPECT_TRUE(r.passwd_is_reg);
    EXPECT_GT(r.count, 10);
    /* At the end, further calls return 0. */
    char tmp[512];
    EXPECT_EQ(syscall(SYS_getdents64, fd, tmp, sizeof tmp), 0);
    /* Rewinding lists the same entries again, also with a small buffer. */
    EXPECT_EQ(lseek(fd, 0, SEEK_SET), 0);
    ASSERT_OK(scan_dents(fd, 300, &r2));
    EXPECT_EQ(r2.count, r.count);
    EXPECT_TRUE(r2.has_passwd);
    EXPECT_FALSE(r2.bad_reclen);
    close(fd);
}

TEST(getdents64_errors)
{
    char buf[256];
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(syscall(SYS_getdents64, fd, buf, sizeof buf), ENOTDIR);
    close(fd);
    EXPECT_ERRNO(syscall(SYS_getdents64, fd, buf, sizeof buf), EBADF);
    fd = open("/etc", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    /* Too small for even one entry. */
    EXPECT_ERRNO(syscall(SYS_getdents64, fd, buf, 1), EINVAL);
    EXPECT_ERRNO(syscall(SYS_getdents64, fd, (void *)8, 4096), EFAULT);
    close(fd);
}

/* ---------------------------------------------------------------- cwd */

static int save_cwd(void)
{
    return open(".", O_RDONLY | O_DIRECTORY);
}

static void restore_cwd(int fd)
{
    if (fd >= 0) {
        if (fchdir(fd) != 0)
            FAIL("cannot restore cwd");
        close(fd);
    }
}

TEST(chdir_getcwd)
{
    char buf[PATH_MAX];
    int saved = save_cwd();
    ASSERT_GE(saved, 0);
    EXPECT_OK(chdir("/etc"));
    EXPECT_STREQ(getcwd(buf, sizeof buf), "/etc");
    /* Relative opens use the new cwd. */
    int fd = open("passwd", O_RDONLY);
    EXPECT_GE(fd, 0);
    close(fd);
    EXPECT_OK(chdir(".."));
    EXPECT_STREQ(getcwd(buf, sizeof buf), "/");
    EXPECT_OK(chdir("usr/./bin/"));
    EXPECT_STREQ(getcwd(buf, sizeof buf), "/usr/bin");
    if (is_symlink("/bin")) {
        /* getcwd shows the resolved path, never the symlink. */
        EXPECT_OK(chdir("/bin"));
        EXPECT_STREQ(getcwd(buf, sizeof buf), "/usr/bin");
    }
    EXPECT_OK(chdir("/"));
    EXPECT_STREQ(getcwd(buf, sizeof buf), "/");
    restore_cwd(saved);
}

TEST(chdir_errors)
{
    char buf[PATH_MAX], before[PATH_MAX];
    ASSERT_TRUE(getcwd(before, sizeof before) != NULL);
    EXPECT_ERRNO(chdir(PASSWD), ENOTDIR);
    EXPECT_ERRNO(chdir("/nonexistent-conformance"), ENOENT);
    EXPECT_ERRNO(chdir(""), ENOENT);
    EXPECT_ERRNO(syscall(SYS_chdir, (char *)8), EFAULT);
    /* Failed chdir leaves the cwd. */
    EXPECT_STREQ(getcwd(buf, sizeof buf), before);
}

TEST(fchdir_semantics)
{
    char buf[PATH_MAX];
    int saved = save_cwd();
    ASSERT_GE(saved, 0);
    int dfd = open("/usr", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dfd, 0);
    EXPECT_OK(fchdir(dfd));
    EXPECT_STREQ(getcwd(buf, sizeof buf), "/usr");
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(fchdir(fd), ENOTDIR);
    close(fd);
    EXPECT_ERRNO(fchdir(fd), EBADF);
    EXPECT_ERRNO(fchdir(-1), EBADF);
    EXPECT_STREQ(getcwd(buf, sizeof buf), "/usr");
    close(dfd);
    restore_cwd(saved);
}

TEST(getcwd_errors)
{
    char buf[PATH_MAX];
    int saved = save_cwd();
    ASSERT_GE(saved, 0);
    EXPECT_OK(chdir("/etc"));
    /* The raw syscall returns the length including the NUL. */
    EXPECT_EQ(syscall(SYS_getcwd, buf, sizeof buf), 5);
    EXPECT_STREQ(buf, "/etc");
    EXPECT_ERRNO(syscall(SYS_getcwd, buf, 4), ERANGE);
    EXPECT_ERRNO(syscall(SYS_getcwd, buf, 0), ERANGE);
    EXPECT_EQ(syscall(SYS_getcwd, buf, 5), 5);
    EXPECT_ERRNO(syscall(SYS_getcwd, (char *)8, sizeof buf), EFAULT);
    restore_cwd(saved);
}

TEST(openat_dirfd)
{
    int dfd = open("/etc", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dfd, 0);
    int fd = openat(dfd, "passwd", O_RDONLY);
    EXPECT_GE(fd, 0);
    close(fd);
    fd = openat(dfd, "../etc/passwd", O_RDONLY);
    EXPECT_GE(fd, 0);
    close(fd);
    /* Absolute path ignores dirfd. */
    fd = openat(-1, PASSWD, O_RDONLY);
    EXPECT_GE(fd, 0);
    close(fd);
    EXPECT_ERRNO(openat(-1, "passwd", O_RDONLY), EBADF);
    EXPECT_ERRNO(openat(9999, "passwd", O_RDONLY), EBADF);
    fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(openat(fd, "x", O_RDONLY), ENOTDIR);
    close(fd);
    close(dfd);
}

/* ---------------------------------------------------------------- dup */

TEST(dup_shares_offset)
{
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    int d = dup(fd);
    ASSERT_GE(d, 0);
    EXPECT_NE(d, fd);
    EXPECT_EQ(lseek(fd, 7, SEEK_SET), 7);
    EXPECT_EQ(lseek(d, 0, SEEK_CUR), 7);
    char c;
    EXPECT_EQ(read(d, &c, 1), 1);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 8);
    /* Closing one leaves the other working. */
    close(fd);
    EXPECT_EQ(read(d, &c, 1), 1);
    close(d);
}

TEST(dup_lowest_fd_and_no_cloexec)
{
    int fd = open(PASSWD, O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    int hole = dup(fd);
    ASSERT_GE(hole, 0);
    int after = dup(fd);
    ASSERT_GE(after, 0);
    close(hole);
    int d = dup(fd);
    EXPECT_EQ(d, hole);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(fcntl(d, F_GETFD), 0);
    close(d);
    close(after);
    close(fd);
}

TEST(dup2_semantics)
{
    int a = open(PASSWD, O_RDONLY);
    int b = open("/etc", O_RDONLY);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    /* Same fd: returns it, no-op. */
    EXPECT_EQ(dup2(a, a), a);
    /* Replaces an open fd silently. */
    EXPECT_EQ(dup2(a, b), b);
    struct stat sa, sb;
    ASSERT_OK(fstat(a, &sa));
    ASSERT_OK(fstat(b, &sb));
    EXPECT_EQ(sa.st_ino, sb.st_ino);
    /* Target far above the current table. */
    EXPECT_EQ(dup2(a, 200), 200);
    EXPECT_OK(fstat(200, &sb));
    close(200);
    EXPECT_ERRNO(dup2(a, -1), EBADF);
    EXPECT_ERRNO(dup2(a, 1 << 30), EBADF);
    close(b);
    EXPECT_ERRNO(dup2(b, b), EBADF);
    EXPECT_ERRNO(dup2(b, a), EBADF);
    EXPECT_OK(fstat(a, &sa)); /* a untouched by the failed dup2 */
    close(a);
}

TEST(dup3_semantics)
{
    int a = open(PASSWD, O_RDONLY);
    ASSERT_GE(a, 0);
    EXPECT_ERRNO(dup3(a, a, 0), EINVAL);
    EXPECT_ERRNO(dup3(a, a, O_CLOEXEC), EINVAL);
    EXPECT_ERRNO(dup3(a, 100, O_NONBLOCK), EINVAL);
    EXPECT_EQ(dup3(a, 100, O_CLOEXEC), 100);
    EXPECT_EQ(fcntl(100, F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(dup3(a, 101, 0), 101);
    EXPECT_EQ(fcntl(101, F_GETFD), 0);
    close(100);
    close(101);
    EXPECT_ERRNO(dup3(100, 102, 0), EBADF);
    close(a);
}

/* ---------------------------------------------------------------- fcntl */

TEST(fcntl_fd_flags)
{
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), 0);
    EXPECT_EQ(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(fcntl(fd, F_SETFD, 0), 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), 0);
    /* Unknown bits are ignored. */
    EXPECT_EQ(fcntl(fd, F_SETFD, 0xfe | FD_CLOEXEC), 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    close(fd);
    fd = open(PASSWD, O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    close(fd);
}

TEST(fcntl_status_flags)
{
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFL), O_RDONLY | KERNEL_O_LARGEFILE);
    EXPECT_EQ(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    EXPECT_EQ(fcntl(fd, F_GETFL), O_RDONLY | O_NONBLOCK | KERNEL_O_LARGEFILE);
    /* The access mode and creation flags cannot be changed by F_SETFL. */
    EXPECT_EQ(fcntl(fd, F_SETFL, O_RDWR | O_TRUNC | O_CREAT), 0);
    EXPECT_EQ(fcntl(fd, F_GETFL), O_RDONLY | KERNEL_O_LARGEFILE);
    /* Status flags are shared by dup'ed fds; fd flags are not. */
    int d = dup(fd);
    ASSERT_GE(d, 0);
    EXPECT_EQ(fcntl(d, F_SETFL, O_NONBLOCK | O_APPEND), 0);
    EXPECT_EQ(fcntl(fd, F_GETFL) & (O_NONBLOCK | O_APPEND),
              O_NONBLOCK | O_APPEND);
    EXPECT_EQ(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
    EXPECT_EQ(fcntl(d, F_GETFD), 0);
    close(d);
    close(fd);
    fd = open("/etc", O_RDONLY | O_DIRECTORY | O_NONBLOCK);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFL),
              O_RDONLY | O_DIRECTORY | O_NONBLOCK | KERNEL_O_LARGEFILE);
    close(fd);
}

TEST(fcntl_dupfd)
{
    int fd = open(PASSWD, O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    int d = fcntl(fd, F_DUPFD, 50);
    EXPECT_EQ(d, 50);
    EXPECT_EQ(fcntl(d, F_GETFD), 0);
    int d2 = fcntl(fd, F_DUPFD, 50);
    EXPECT_EQ(d2, 51);
    int d3 = fcntl(fd, F_DUPFD_CLOEXEC, 50);
    EXPECT_EQ(d3, 52);
    EXPECT_EQ(fcntl(d3, F_GETFD), FD_CLOEXEC);
    int d4 = fcntl(fd, F_DUPFD, 0);
    EXPECT_GE(d4, 0);
    EXPECT_LT(d4, 50);
    EXPECT_ERRNO(fcntl(fd, F_DUPFD, -1), EINVAL);
    EXPECT_ERRNO(fcntl(fd, F_DUPFD, 1 << 30), EINVAL);
    close(d);
    close(d2);
    close(d3);
    close(d4);
    close(fd);
}

TEST(fcntl_errors)
{
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(fcntl(fd, 12345), EINVAL);
    close(fd);
    EXPECT_ERRNO(fcntl(fd, F_GETFD), EBADF);
    EXPECT_ERRNO(fcntl(fd, F_GETFL), EBADF);
    EXPECT_ERRNO(fcntl(fd, F_DUPFD, 0), EBADF);
    EXPECT_ERRNO(fcntl(-1, F_GETFD), EBADF);
}

/* ---------------------------------------------------------------- ebadf */

TEST(closed_fd_ebadf)
{
    char buf[4];
    struct stat st;
    struct iovec iov = {buf, sizeof buf};
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(close(fd), 0);
    EXPECT_ERRNO(close(fd), EBADF);
    EXPECT_ERRNO(read(fd, buf, sizeof buf), EBADF);
    EXPECT_ERRNO(pread(fd, buf, sizeof buf, 0), EBADF);
    EXPECT_ERRNO(readv(fd, &iov, 1), EBADF);
    EXPECT_ERRNO(write(fd, buf, 1), EBADF);
    EXPECT_ERRNO(lseek(fd, 0, SEEK_SET), EBADF);
    EXPECT_ERRNO(fstat(fd, &st), EBADF);
    EXPECT_ERRNO(dup(fd), EBADF);
    EXPECT_ERRNO(ioctl(fd, FIONREAD, buf), EBADF);
    EXPECT_ERRNO(close(-1), EBADF);
    EXPECT_ERRNO(read(-1, buf, 1), EBADF);
    EXPECT_ERRNO(close(1 << 30), EBADF);
    EXPECT_ERRNO(fstat(4000, &st), EBADF);
}

/* ---------------------------------------------------------------- access */

TEST(access_modes)
{
    EXPECT_EQ(access(PASSWD, F_OK), 0);
    EXPECT_EQ(access(PASSWD, R_OK), 0);
    EXPECT_EQ(access("/etc", R_OK | X_OK), 0);
    EXPECT_EQ(access("/usr/bin/true", X_OK), 0);
    /* No execute bit at all: EACCES even for root. */
    EXPECT_ERRNO(access(PASSWD, X_OK), EACCES);
    EXPECT_ERRNO(access("/nonexistent-conformance", F_OK), ENOENT);
    EXPECT_ERRNO(access("/etc/passwd/x", F_OK), ENOTDIR);
    EXPECT_ERRNO(access(PASSWD, 8), EINVAL);
    EXPECT_ERRNO(access("", F_OK), ENOENT);
}

TEST(faccessat_dirfd)
{
    int dfd = open("/etc", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dfd, 0);
    EXPECT_EQ(syscall(SYS_faccessat, dfd, "passwd", R_OK), 0);
    EXPECT_ERRNO(syscall(SYS_faccessat, dfd, "nonexistent-conformance", F_OK),
                 ENOENT);
    EXPECT_ERRNO(syscall(SYS_faccessat, 9999, "passwd", F_OK), EBADF);
    EXPECT_EQ(syscall(SYS_faccessat, 9999, PASSWD, F_OK), 0);
    EXPECT_EQ(faccessat(dfd, "passwd", R_OK, 0), 0);
    close(dfd);
}

/* ---------------------------------------------------------------- ioctl */

TEST(ioctl_regular_file)
{
    ASSERT_GT(load_passwd(), 0);
    int fd = open(PASSWD, O_RDONLY);
    ASSERT_GE(fd, 0);
    int avail = -1;
    EXPECT_EQ(ioctl(fd, FIONREAD, &avail), 0);
    EXPECT_EQ(avail, passwd_len);
    EXPECT_EQ(lseek(fd, 10, SEEK_SET), 10);
    EXPECT_EQ(ioctl(fd, FIONREAD, &avail), 0);
    EXPECT_EQ(avail, passwd_len - 10);
    struct termios t;
    EXPECT_ERRNO(ioctl(fd, TCGETS, &t), ENOTTY);
    EXPECT_FALSE(isatty(fd));
    close(fd);
}

TEST(fadvise)
{
    int fd = open("/etc/passwd", O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED), 0);
    EXPECT_EQ(posix_fadvise(fd, 0, 4096, POSIX_FADV_SEQUENTIAL), 0);
    EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    EXPECT_EQ(posix_fadvise(fd, 0, 0, 99), EINVAL);
    EXPECT_EQ(posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL), EINVAL);
    close(fd);
    EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL), EBADF);
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL), ESPIPE);
    close(p[0]);
    close(p[1]);
}

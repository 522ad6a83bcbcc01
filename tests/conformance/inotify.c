/*
 * inotify.c - inotify_init1, inotify_add_watch, inotify_rm_watch and the
 * events of changes made by the program itself, in a fresh directory under
 * /dev/shm (tmpfs natively and in the sandbox).
 */
#define _GNU_SOURCE
#include "harness.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct ev {
    int wd;
    uint32_t mask;
    uint32_t cookie;
    uint32_t len;
    char name[256];
};

#define MAXEV 64

/* Reads every queued event (the fd is nonblocking) into out; returns the count. */
static int get_events(int fd, struct ev *out, int max)
{
    static char buf[1 << 16] __attribute__((aligned(8)));
    int n = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        for (char *p = buf; p < buf + r;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (n < max) {
                out[n].wd = e->wd;
                out[n].mask = e->mask;
                out[n].cookie = e->cookie;
                out[n].len = e->len;
                snprintf(out[n].name, sizeof out[n].name, "%s",
                         e->len ? e->name : "");
            }
            n++;
            p += sizeof *e + e->len;
        }
    }
    return n;
}

#define EXPECT_EV(e, WD, MASK, NAME)                                         \
    do {                                                                     \
        EXPECT_EQ((e).wd, (WD));                                             \
        EXPECT_EQ((e).mask, (MASK));                                         \
        EXPECT_STREQ((e).name, (NAME));                                      \
    } while (0)

static void mkdir_tmp(char *dir)
{
    strcpy(dir, "/dev/shm/inotifyXXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
}

static void rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *de;
    char p[512];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        rmtree(p);
    }
    closedir(d);
    rmdir(path);
}

static void path(char *out, const char *dir, const char *name)
{
    sprintf(out, "%s/%s", dir, name);
}

TEST(init_flags_and_fd_properties)
{
    EXPECT_ERRNO(inotify_init1(1), EINVAL);
    EXPECT_ERRNO(inotify_init1(IN_CLOEXEC | 0x10), EINVAL);
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK),
              O_RDONLY | O_NONBLOCK);
    char b[64];
    EXPECT_ERRNO(read(fd, b, sizeof b), EAGAIN);
    EXPECT_ERRNO(write(fd, "x", 1), EBADF);
    EXPECT_EQ(lseek(fd, 0, SEEK_SET), 0);
    EXPECT_ERRNO(pread(fd, b, sizeof b, 0), ESPIPE);
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_mode & S_IFMT, 0);
    close(fd);
    fd = inotify_init();
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GETFD), 0);
    EXPECT_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
}

TEST(add_watch_errors)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "f");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    int fd = inotify_init1(IN_NONBLOCK);
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(inotify_add_watch(fd, f, 0), EINVAL);
    EXPECT_ERRNO(inotify_add_watch(fd, f, IN_MODIFY | 0x00800000), EINVAL);
    EXPECT_ERRNO(inotify_add_watch(fd, f, IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE),
                 EINVAL);
    EXPECT_ERRNO(inotify_add_watch(fd, f, IN_MODIFY | IN_ONLYDIR), ENOTDIR);
    EXPECT_ERRNO(inotify_add_watch(fd, "/dev/shm/no-such-inotify-x", IN_MODIFY),
                 ENOENT);
    EXPECT_ERRNO(inotify_add_watch(fd, NULL, IN_MODIFY), EFAULT);
    EXPECT_ERRNO(inotify_add_watch(999, f, IN_MODIFY), EBADF);
    /* The mask is checked before the fd. */
    EXPECT_ERRNO(inotify_add_watch(999, f, 0), EINVAL);
    int notino = open(f, O_RDONLY);
    EXPECT_ERRNO(inotify_add_watch(notino, f, IN_MODIFY), EINVAL);
    EXPECT_ERRNO(inotify_rm_watch(notino, 1), EINVAL);
    close(notino);
    EXPECT_ERRNO(inotify_rm_watch(999, 1), EBADF);
    EXPECT_ERRNO(inotify_rm_watch(fd, 12345), EINVAL);
    EXPECT_ERRNO(inotify_rm_watch(fd, -1), EINVAL);
    /* A flag alone is a valid (eventless) watch; IN_ONLYDIR on a directory is fine. */
    int wd = inotify_add_watch(fd, f, IN_DONT_FOLLOW);
    EXPECT_GT(wd, 0);
    EXPECT_GT(inotify_add_watch(fd, dir, IN_ONLYDIR | IN_CREATE), 0);
    struct ev e[MAXEV];
    EXPECT_EQ(get_events(fd, e, MAXEV), 0);
    close(fd);
    rmtree(dir);
}

TEST(create_modify_close_write)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "file");
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    ASSERT_GT(wd, 0);
    int h = open(f, O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(h, 0);
    EXPECT_EQ(write(h, "hello", 5), 5);
    close(h);
    struct ev e[MAXEV];
    int n = get_events(fd, e, MAXEV);
    ASSERT_EQ(n, 4);
    EXPECT_EV(e[0], wd, IN_CREATE, "file");
    EXPECT_EQ(e[0].len, 16);
    EXPECT_EQ(e[0].cookie, 0);
    EXPECT_EV(e[1], wd, IN_OPEN, "file");
    EXPECT_EV(e[2], wd, IN_MODIFY, "file");
    EXPECT_EV(e[3], wd, IN_CLOSE_WRITE, "file");
    close(fd);
    rmtree(dir);
}

TEST(open_access_close_nowrite_and_child_watch)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "a-rather-long-file-name");
    int h = open(f, O_CREAT | O_WRONLY, 0644);
    EXPECT_EQ(write(h, "abc", 3), 3);
    close(h);
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    int wf = inotify_add_watch(fd, f, IN_ALL_EVENTS);
    ASSERT_GT(wf, 0);
    EXPECT_NE(wd, wf);
    h = open(f, O_RDONLY);
    char b[8];
    EXPECT_EQ(read(h, b, 8), 3);
    EXPECT_EQ(read(h, b, 8), 0); /* end of file: no event */
    close(h);
    struct ev e[MAXEV];
    int n = get_events(fd, e, MAXEV);
    ASSERT_EQ(n, 6);
    /* The parent's watch first (with the name), then the file's own. */
    EXPECT_EV(e[0], wd, IN_OPEN, "a-rather-long-file-name");
    EXPECT_EQ(e[0].len, 32);
    EXPECT_EV(e[1], wf, IN_OPEN, "");
    EXPECT_EQ(e[1].len, 0);
    EXPECT_EV(e[2], wd, IN_ACCESS, "a-rather-long-file-name");
    EXPECT_EV(e[3], wf, IN_ACCESS, "");
    EXPECT_EV(e[4], wd, IN_CLOSE_NOWRITE, "a-rather-long-file-name");
    EXPECT_EV(e[5], wf, IN_CLOSE_NOWRITE, "");
    close(fd);
    rmtree(dir);
}

TEST(attrib_truncate_and_times)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "f");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    int fd = inotify_init1(IN_NONBLOCK);
    int wf = inotify_add_watch(fd, f, IN_ALL_EVENTS);
    struct ev e[MAXEV];
    EXPECT_OK(chmod(f, 0600));
    EXPECT_OK(chown(f, getuid(), getgid()));
    ASSERT_EQ(get_events(fd, e, MAXEV), 1); /* identical events merge */
    EXPECT_EV(e[0], wf, IN_ATTRIB, "");
    EXPECT_OK(truncate(f, 10));
    ASSERT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EV(e[0], wf, IN_MODIFY, "");
    struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
    EXPECT_OK(utimensat(AT_FDCWD, f, ts, 0));
    ASSERT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EV(e[0], wf, IN_ACCESS, "");
    ts[0].tv_nsec = UTIME_OMIT;
    ts[1].tv_nsec = UTIME_NOW;
    EXPECT_OK(utimensat(AT_FDCWD, f, ts, 0));
    ASSERT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EV(e[0], wf, IN_MODIFY, "");
    EXPECT_OK(utimensat(AT_FDCWD, f, NULL, 0));
    ASSERT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EV(e[0], wf, IN_ATTRIB, "");
    /* O_TRUNC: IN_OPEN, then IN_MODIFY. */
    int h = open(f, O_WRONLY | O_TRUNC);
    close(h);
    ASSERT_EQ(get_events(fd, e, MAXEV), 3);
    EXPECT_EV(e[0], wf, IN_OPEN, "");
    EXPECT_EV(e[1], wf, IN_MODIFY, "");
    EXPECT_EV(e[2], wf, IN_CLOSE_WRITE, "");
    close(fd);
    rmtree(dir);
}

TEST(identical_events_coalesce)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "f");
    int h = open(f, O_CREAT | O_WRONLY, 0644);
    int fd = inotify_init1(IN_NONBLOCK);
    int wf = inotify_add_watch(fd, f, IN_MODIFY);
    for (int i = 0; i < 5; i++)
        EXPECT_EQ(write(h, "x", 1), 1);
    int avail = -1;
    EXPECT_OK(ioctl(fd, FIONREAD, &avail));
    EXPECT_EQ(avail, 16);
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EV(e[0], wf, IN_MODIFY, "");
    close(h);
    close(fd);
    rmtree(dir);
}

TEST(unlink_delete_self_ignored)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "victim");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    int wf = inotify_add_watch(fd, f, IN_ALL_EVENTS);
    EXPECT_OK(unlink(f));
    struct ev e[MAXEV];
    int n = get_events(fd, e, MAXEV);
    ASSERT_EQ(n, 4);
    EXPECT_EV(e[0], wf, IN_ATTRIB, "");
    EXPECT_EV(e[1], wf, IN_DELETE_SELF, "");
    EXPECT_EV(e[2], wf, IN_IGNORED, "");
    EXPECT_EV(e[3], wd, IN_DELETE, "victim");
    /* The watch is gone. */
    EXPECT_ERRNO(inotify_rm_watch(fd, wf), EINVAL);
    close(fd);
    rmtree(dir);
}

TEST(unlink_open_file_defers_delete_self)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "g");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    int h = open(f, O_RDONLY);
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    int wf = inotify_add_watch(fd, f, IN_ALL_EVENTS);
    EXPECT_OK(unlink(f));
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 2);
    EXPECT_EV(e[0], wf, IN_ATTRIB, "");
    EXPECT_EV(e[1], wd, IN_DELETE, "g");
    close(h);
    ASSERT_EQ(get_events(fd, e, MAXEV), 4);
    EXPECT_EV(e[0], wd, IN_CLOSE_NOWRITE, "g");
    EXPECT_EV(e[1], wf, IN_CLOSE_NOWRITE, "");
    EXPECT_EV(e[2], wf, IN_DELETE_SELF, "");
    EXPECT_EV(e[3], wf, IN_IGNORED, "");
    close(fd);
    rmtree(dir);
}

TEST(excl_unlink_drops_events_of_unlinked_children)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "g");
    int h = open(f, O_CREAT | O_RDWR, 0644);
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_MODIFY | IN_DELETE | IN_EXCL_UNLINK);
    EXPECT_EQ(write(h, "x", 1), 1);
    EXPECT_OK(unlink(f));
    EXPECT_EQ(write(h, "y", 1), 1);
    close(h);
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 2);
    EXPECT_EV(e[0], wd, IN_MODIFY, "g");
    EXPECT_EV(e[1], wd, IN_DELETE, "g");
    close(fd);
    rmtree(dir);
}

TEST(rename_cookie_pairing_and_move_self)
{
    char dir[64], sub[128], a[128], b[192];
    mkdir_tmp(dir);
    path(sub, dir, "sub");
    EXPECT_OK(mkdir(sub, 0755));
    path(a, dir, "a");
    path(b, sub, "b");
    close(open(a, O_CREAT | O_WRONLY, 0644));
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    int ws = inotify_add_watch(fd, sub, IN_ALL_EVENTS);
    int wa = inotify_add_watch(fd, a, IN_ALL_EVENTS);
    EXPECT_OK(rename(a, b));
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 3);
    EXPECT_EV(e[0], wd, IN_MOVED_FROM, "a");
    EXPECT_EV(e[1], ws, IN_MOVED_TO, "b");
    EXPECT_EV(e[2], wa, IN_MOVE_SELF, "");
    EXPECT_NE(e[0].cookie, 0);
    EXPECT_EQ(e[0].cookie, e[1].cookie);
    EXPECT_EQ(e[2].cookie, 0);
    /* A second rename gets a different cookie. */
    uint32_t first = e[0].cookie;
    EXPECT_OK(rename(b, a));
    ASSERT_EQ(get_events(fd, e, MAXEV), 3);
    EXPECT_EV(e[0], ws, IN_MOVED_FROM, "b");
    EXPECT_EV(e[1], wd, IN_MOVED_TO, "a");
    EXPECT_EQ(e[0].cookie, e[1].cookie);
    EXPECT_NE(e[0].cookie, first);
    /* Directories carry IN_ISDIR (but not on IN_MOVE_SELF). */
    char sub2[128];
    path(sub2, dir, "sub2");
    EXPECT_OK(rename(sub, sub2));
    ASSERT_EQ(get_events(fd, e, MAXEV), 3);
    EXPECT_EV(e[0], wd, IN_MOVED_FROM | IN_ISDIR, "sub");
    EXPECT_EV(e[1], wd, IN_MOVED_TO | IN_ISDIR, "sub2");
    EXPECT_EV(e[2], ws, IN_MOVE_SELF, "");
    close(fd);
    rmtree(dir);
}

TEST(rename_over_watched_target)
{
    char dir[64], a[128], b[128];
    mkdir_tmp(dir);
    path(a, dir, "a");
    path(b, dir, "b");
    close(open(a, O_CREAT | O_WRONLY, 0644));
    close(open(b, O_CREAT | O_WRONLY, 0644));
    int fd = inotify_init1(IN_NONBLOCK);
    int wa = inotify_add_watch(fd, a, IN_ALL_EVENTS);
    int wb = inotify_add_watch(fd, b, IN_ALL_EVENTS);
    EXPECT_OK(rename(a, b));
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 4);
    EXPECT_EV(e[0], wb, IN_ATTRIB, "");
    EXPECT_EV(e[1], wa, IN_MOVE_SELF, "");
    EXPECT_EV(e[2], wb, IN_DELETE_SELF, "");
    EXPECT_EV(e[3], wb, IN_IGNORED, "");
    close(fd);
    rmtree(dir);
}

TEST(mkdir_rmdir_isdir)
{
    char dir[64], sub[128];
    mkdir_tmp(dir);
    path(sub, dir, "d");
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    EXPECT_OK(mkdir(sub, 0755));
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EV(e[0], wd, IN_CREATE | IN_ISDIR, "d");
    int ws = inotify_add_watch(fd, sub, IN_ALL_EVENTS);
    /* Reading a directory is IN_ACCESS | IN_ISDIR. */
    int dh = open(sub, O_RDONLY | O_DIRECTORY);
    ASSERT_GE(dh, 0);
    char dents[1024] __attribute__((aligned(8)));
    EXPECT_GT(syscall(SYS_getdents64, dh, dents, sizeof dents), 0);
    close(dh);
    int n = get_events(fd, e, MAXEV);
    ASSERT_EQ(n, 6);
    EXPECT_EV(e[0], wd, IN_OPEN | IN_ISDIR, "d");
    EXPECT_EV(e[1], ws, IN_OPEN | IN_ISDIR, "");
    EXPECT_EV(e[2], wd, IN_ACCESS | IN_ISDIR, "d");
    EXPECT_EV(e[3], ws, IN_ACCESS | IN_ISDIR, "");
    EXPECT_EV(e[4], wd, IN_CLOSE_NOWRITE | IN_ISDIR, "d");
    EXPECT_EV(e[5], ws, IN_CLOSE_NOWRITE | IN_ISDIR, "");
    EXPECT_OK(chmod(sub, 0700));
    ASSERT_EQ(get_events(fd, e, MAXEV), 2);
    EXPECT_EV(e[0], wd, IN_ATTRIB | IN_ISDIR, "d");
    EXPECT_EV(e[1], ws, IN_ATTRIB | IN_ISDIR, "");
    EXPECT_OK(rmdir(sub));
    ASSERT_EQ(get_events(fd, e, MAXEV), 3);
    EXPECT_EV(e[0], ws, IN_DELETE_SELF, "");
    EXPECT_EV(e[1], ws, IN_IGNORED, "");
    EXPECT_EV(e[2], wd, IN_DELETE | IN_ISDIR, "d");
    close(fd);
    rmtree(dir);
}

TEST(symlink_mknod_link_create)
{
    char dir[64], f[128], l[128], s[128];
    mkdir_tmp(dir);
    path(f, dir, "f");
    path(l, dir, "hard");
    path(s, dir, "sym");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_CREATE | IN_DELETE);
    int wf = inotify_add_watch(fd, f, IN_ATTRIB);
    EXPECT_OK(symlink("f", s));
    EXPECT_OK(link(f, l));
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 3);
    EXPECT_EV(e[0], wd, IN_CREATE, "sym");
    EXPECT_EV(e[1], wf, IN_ATTRIB, "");
    EXPECT_EV(e[2], wd, IN_CREATE, "hard");
    /* The same inode by another name: the same watch descriptor. */
    EXPECT_EQ(inotify_add_watch(fd, l, IN_ATTRIB), wf);
    /* Following the symlink reaches the same inode too; IN_DONT_FOLLOW does not. */
    EXPECT_EQ(inotify_add_watch(fd, s, IN_ATTRIB), wf);
    int wsym = inotify_add_watch(fd, s, IN_ATTRIB | IN_DONT_FOLLOW);
    EXPECT_GT(wsym, 0);
    EXPECT_NE(wsym, wf);
    /* Dropping one link: IN_ATTRIB (link count), no IN_DELETE_SELF. */
    EXPECT_OK(unlink(l));
    ASSERT_EQ(get_events(fd, e, MAXEV), 2);
    EXPECT_EV(e[0], wf, IN_ATTRIB, "");
    EXPECT_EV(e[1], wd, IN_DELETE, "hard");
    close(fd);
    rmtree(dir);
}

TEST(oneshot_mask_add_mask_create)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "f");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    int fd = inotify_init1(IN_NONBLOCK);
    int wf = inotify_add_watch(fd, f, IN_OPEN | IN_ONESHOT);
    close(open(f, O_RDONLY));
    close(open(f, O_RDONLY));
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 2);
    EXPECT_EV(e[0], wf, IN_OPEN, "");
    EXPECT_EV(e[1], wf, IN_IGNORED, "");
    EXPECT_ERRNO(inotify_rm_watch(fd, wf), EINVAL);

    int w = inotify_add_watch(fd, f, IN_OPEN | IN_MASK_CREATE);
    EXPECT_GT(w, 0);
    EXPECT_NE(w, wf); /* descriptors are not reused at once */
    EXPECT_ERRNO(inotify_add_watch(fd, f, IN_CLOSE | IN_MASK_CREATE), EEXIST);
    EXPECT_EQ(inotify_add_watch(fd, f, IN_CLOSE_NOWRITE | IN_MASK_ADD), w);
    close(open(f, O_RDONLY));
    ASSERT_EQ(get_events(fd, e, MAXEV), 2);
    EXPECT_EV(e[0], w, IN_OPEN, "");
    EXPECT_EV(e[1], w, IN_CLOSE_NOWRITE, "");
    /* Without IN_MASK_ADD the mask is replaced. */
    EXPECT_EQ(inotify_add_watch(fd, f, IN_ATTRIB), w);
    close(open(f, O_RDONLY));
    EXPECT_EQ(get_events(fd, e, MAXEV), 0);
    EXPECT_OK(chmod(f, 0600));
    ASSERT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EV(e[0], w, IN_ATTRIB, "");
    /* rm_watch queues IN_IGNORED. */
    EXPECT_OK(inotify_rm_watch(fd, w));
    ASSERT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EV(e[0], w, IN_IGNORED, "");
    EXPECT_ERRNO(inotify_rm_watch(fd, w), EINVAL);
    EXPECT_OK(chmod(f, 0644));
    EXPECT_EQ(get_events(fd, e, MAXEV), 0);
    close(fd);
    rmtree(dir);
}

TEST(read_buffer_sizes_and_fionread)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_CREATE);
    path(f, dir, "x");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    path(f, dir, "seventeen-chars-x"); /* name + NUL pads to 32 */
    close(open(f, O_CREAT | O_WRONLY, 0644));
    int avail = -1;
    EXPECT_OK(ioctl(fd, FIONREAD, &avail));
    EXPECT_EQ(avail, 32 + 48);
    char buf[256] __attribute__((aligned(8)));
    EXPECT_ERRNO(read(fd, buf, 0), EINVAL);
    EXPECT_ERRNO(read(fd, buf, 16), EINVAL);
    EXPECT_ERRNO(read(fd, buf, 31), EINVAL);
    /* Only whole events: the second does not fit in 32 + 47. */
    EXPECT_EQ(read(fd, buf, 32 + 47), 32);
    struct inotify_event *e = (struct inotify_event *)buf;
    EXPECT_EQ(e->wd, wd);
    EXPECT_EQ(e->mask, IN_CREATE);
    EXPECT_EQ(e->len, 16);
    EXPECT_STREQ(e->name, "x");
    EXPECT_OK(ioctl(fd, FIONREAD, &avail));
    EXPECT_EQ(avail, 48);
    EXPECT_EQ(read(fd, buf, sizeof buf), 48);
    EXPECT_EQ(e->len, 32);
    EXPECT_STREQ(e->name, "seventeen-chars-x");
    for (int i = strlen(e->name); i < 32; i++)
        EXPECT_EQ(e->name[i], 0);
    EXPECT_OK(ioctl(fd, FIONREAD, &avail));
    EXPECT_EQ(avail, 0);
    EXPECT_ERRNO(read(fd, buf, sizeof buf), EAGAIN);
    close(fd);
    rmtree(dir);
}

TEST(poll_and_epoll_readiness)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    int fd = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(fd, dir, IN_CREATE);
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    EXPECT_EQ(poll(&p, 1, 0), 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    struct epoll_event out[2];
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 0);
    path(f, dir, "x");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    EXPECT_EQ(poll(&p, 1, 0), 1);
    EXPECT_EQ(p.revents, POLLIN);
    EXPECT_EQ(epoll_wait(ep, out, 2, 1000), 1);
    EXPECT_EQ(out[0].events, EPOLLIN);
    EXPECT_EQ(out[0].data.u64, 7);
    struct ev e[MAXEV];
    EXPECT_EQ(get_events(fd, e, MAXEV), 1);
    EXPECT_EQ(poll(&p, 1, 0), 0);
    close(ep);
    close(fd);
    rmtree(dir);
}

static char thread_path[128];

static void *create_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    close(open(thread_path, O_CREAT | O_WRONLY, 0644));
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
}

TEST(blocking_read_wakes_and_is_interruptible)
{
    char dir[64];
    mkdir_tmp(dir);
    int fd = inotify_init1(0);
    int wd = inotify_add_watch(fd, dir, IN_CREATE);
    path(thread_path, dir, "late");
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, create_later, NULL), 0);
    char buf[256] __attribute__((aligned(8)));
    EXPECT_EQ(read(fd, buf, sizeof buf), 32);
    struct inotify_event *e = (struct inotify_event *)buf;
    EXPECT_EQ(e->wd, wd);
    EXPECT_STREQ(e->name, "late");
    pthread_join(th, NULL);
    /* A signal without SA_RESTART interrupts the blocked read. */
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    sigaction(SIGALRM, &sa, &old);
    struct itimerval it = {.it_value = {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    EXPECT_ERRNO(read(fd, buf, sizeof buf), EINTR);
    sigaction(SIGALRM, &old, NULL);
    close(fd);
    rmtree(dir);
}

TEST(queue_overflow)
{
    char dir[64], f[128];
    mkdir_tmp(dir);
    path(f, dir, "f");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    int fd = inotify_init1(IN_NONBLOCK);
    int wf = inotify_add_watch(fd, f, IN_OPEN | IN_CLOSE_NOWRITE);
    /* Alternating events never merge: 2 * 8200 > 16384. */
    for (int i = 0; i < 8200; i++)
        close(open(f, O_RDONLY));
    int avail = -1;
    EXPECT_OK(ioctl(fd, FIONREAD, &avail));
    EXPECT_EQ(avail, (16384 + 1) * 16);
    static char big[(16384 + 1) * 16 + 64] __attribute__((aligned(8)));
    EXPECT_EQ(read(fd, big, sizeof big), (16384 + 1) * 16);
    struct inotify_event *first = (struct inotify_event *)big;
    struct inotify_event *last = (struct inotify_event *)(big + 16384 * 16);
    EXPECT_EQ(first->wd, wf);
    EXPECT_EQ(first->mask, IN_OPEN);
    EXPECT_EQ(last->wd, -1);
    EXPECT_EQ(last->mask, IN_Q_OVERFLOW);
    EXPECT_EQ(last->len, 0);
    /* Events queue again once read. */
    close(open(f, O_RDONLY));
    struct ev e[MAXEV];
    EXPECT_EQ(get_events(fd, e, MAXEV), 2);
    close(fd);
    rmtree(dir);
}

TEST(watch_on_deleted_dir_and_close_of_instance)
{
    char dir[64];
    mkdir_tmp(dir);
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    /* A second instance's watch on the same inode is independent. */
    int fd2 = inotify_init1(IN_NONBLOCK);
    int wd2 = inotify_add_watch(fd2, dir, IN_DELETE_SELF);
    EXPECT_GT(wd2, 0);
    close(fd2);
    EXPECT_OK(rmdir(dir));
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 2);
    EXPECT_EV(e[0], wd, IN_DELETE_SELF, "");
    EXPECT_EV(e[1], wd, IN_IGNORED, "");
    close(fd);
}

TEST(add_watch_needs_read_permission)
{
    char dir[64], f[128], g[128];
    mkdir_tmp(dir);
    EXPECT_OK(chmod(dir, 0755));
    path(f, dir, "private");
    path(g, dir, "public");
    close(open(f, O_CREAT | O_WRONLY, 0600));
    close(open(g, O_CREAT | O_WRONLY, 0644));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        int fd = inotify_init1(0);
        if (fd < 0)
            _exit(11);
        if (inotify_add_watch(fd, f, IN_MODIFY) != -1 || errno != EACCES)
            _exit(12);
        if (inotify_add_watch(fd, g, IN_MODIFY) <= 0)
            _exit(13);
        _exit(0);
    }
    int status = -1;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    rmtree(dir);
}

TEST(tmpfile_events_name_its_inode)
{
    char dir[64], want[32];
    mkdir_tmp(dir);
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    int t = open(dir, O_TMPFILE | O_RDWR, 0600);
    ASSERT_GE(t, 0);
    struct stat st;
    EXPECT_OK(fstat(t, &st));
    snprintf(want, sizeof want, "#%llu", (unsigned long long)st.st_ino);
    EXPECT_EQ(write(t, "x", 1), 1);
    close(t);
    struct ev e[MAXEV];
    ASSERT_EQ(get_events(fd, e, MAXEV), 3);
    EXPECT_EV(e[0], wd, IN_OPEN, want);
    EXPECT_EV(e[1], wd, IN_MODIFY, want);
    EXPECT_EV(e[2], wd, IN_CLOSE_WRITE, want);
    close(fd);
    rmtree(dir);
}

TEST(instance_limit_emfile)
{
    /* Linux's max_user_instances (128 by default) counts every instance of
     * the user, so some may be in use elsewhere: only the bound is checked. */
    static int fds[256];
    int n = 0, err = 0;
    while (n < 256) {
        int fd = inotify_init1(IN_CLOEXEC);
        if (fd < 0) {
            err = errno;
            break;
        }
        fds[n++] = fd;
    }
    EXPECT_GT(n, 0);
    EXPECT_LE(n, 128);
    EXPECT_EQ(err, EMFILE);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    int fd = inotify_init1(0);
    EXPECT_GE(fd, 0);
    close(fd);
}

/*
 * locks.c - advisory file locks and signal-driven I/O: flock(2) between open
 * file descriptions (and across fork), POSIX record locks (conflicts seen
 * from a child, F_GETLK, range splitting, release on closing any fd of the
 * file, EDEADLK, F_SETLKW blocking and EINTR/SA_RESTART), OFD locks, the
 * errors of each; F_SETOWN/F_SETOWN_EX/F_SETSIG with O_ASYNC on a pipe.
 *
 * Works in a fresh directory under /dev/shm (a tmpfs both natively and in the
 * sandbox). Children never print and leave with _exit(): their result is
 * their exit status (0 = as expected, otherwise an errno or a step number).
 */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char path[96];

static void cleanup(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/hl", dir);
    unlink(p);
    unlink(path);
    rmdir(dir);
}

/* The test file: 200 bytes in a fresh directory. */
__attribute__((constructor)) static void setup(void)
{
    strcpy(dir, "/dev/shm/locks.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 200) != 0) {
        perror("create");
        exit(2);
    }
    close(fd);
    atexit(cleanup);
}

static int open_rw(void)
{
    return open(path, O_RDWR);
}

static int wait_for(pid_t pid)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    if (r != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

static int setlk(int fd, int cmd, short type, short whence, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = whence, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

/* 0 on success, else errno (for children's exit statuses). */
static int try_lock(int fd, int cmd, short type, off_t start, off_t len)
{
    return setlk(fd, cmd, type, SEEK_SET, start, len) == 0 ? 0 : errno;
}

/* Runs F_SETLK(type, start, len) on a fresh description in a child: 0 or errno. */
static int child_setlk(short type, off_t start, off_t len)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open_rw();
        if (fd < 0)
            _exit(100);
        _exit(try_lock(fd, F_SETLK, type, start, len));
    }
    return wait_for(pid);
}

/* F_GETLK in a child, the result sent back through a pipe. */
static int child_getlk(short type, off_t start, off_t len, struct flock *out)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int fd = open_rw();
        struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len,
                           .l_pid = 12345};
        if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0)
            _exit(errno);
        _exit(write(p[1], &fl, sizeof fl) == sizeof fl ? 0 : 101);
    }
    close(p[1]);
    int r = wait_for(pid);
    if (r == 0 && read(p[0], out, sizeof *out) != sizeof *out)
        r = 102;
    close(p[0]);
    return r;
}

/* ------------------------------------------------------------ flock */

TEST(flock_between_descriptions)
{
    int a = open_rw(), b = open_rw();
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    EXPECT_OK(flock(a, LOCK_EX));
    EXPECT_ERRNO(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    EXPECT_ERRNO(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    /* Re-locking and converting one's own lock never conflicts. */
    EXPECT_OK(flock(a, LOCK_EX | LOCK_NB));
    EXPECT_OK(flock(a, LOCK_SH));
    EXPECT_OK(flock(b, LOCK_SH | LOCK_NB));
    EXPECT_ERRNO(flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    /* The failed conversion dropped a's shared lock: b can upgrade now. */
    EXPECT_OK(flock(b, LOCK_EX | LOCK_NB));
    EXPECT_ERRNO(flock(a, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    EXPECT_OK(flock(b, LOCK_UN));
    EXPECT_OK(flock(b, LOCK_UN));
    EXPECT_OK(flock(a, LOCK_SH | LOCK_NB));
    EXPECT_OK(flock(a, LOCK_UN));

    /* A dup shares the description (and the lock); the lock goes with the
     * description's last fd. */
    EXPECT_OK(flock(a, LOCK_EX));
    int a2 = dup(a);
    EXPECT_OK(flock(a2, LOCK_EX | LOCK_NB));
    close(a);
    EXPECT_ERRNO(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    close(a2);
    EXPECT_OK(flock(b, LOCK_EX | LOCK_NB));
    close(b);
}

TEST(flock_inherited_across_fork)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(flock(a, LOCK_EX));
    pid_t pid = fork();
    if (pid == 0) {
        /* Same description: no conflict. A new one conflicts. */
        if (flock(a, LOCK_EX | LOCK_NB) != 0)
            _exit(1);
        int b = open_rw();
        if (flock(b, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
            _exit(2);
        _exit(0);
    }
    EXPECT_EQ(wait_for(pid), 0);
    /* The child's exit closed its copy only: the lock stays. */
    int b = open_rw();
    EXPECT_ERRNO(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    close(a);
    EXPECT_OK(flock(b, LOCK_SH | LOCK_NB));
    close(b);
}

TEST(flock_blocks_until_unlocked)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(flock(a, LOCK_EX));
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int b = open_rw();
        if (flock(b, LOCK_EX) != 0)
            _exit(errno);
        _exit(write(p[1], "x", 1) == 1 ? 0 : 100);
    }
    close(p[1]);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    EXPECT_EQ(poll(&pfd, 1, 100), 0);
    EXPECT_OK(flock(a, LOCK_UN));
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    EXPECT_EQ(wait_for(pid), 0);
    close(p[0]);
    close(a);
}

TEST(flock_errors)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_ERRNO(flock(-1, LOCK_SH), EBADF);
    EXPECT_ERRNO(flock(999, LOCK_SH), EBADF);
    EXPECT_ERRNO(flock(a, 0), EINVAL);
    EXPECT_ERRNO(flock(a, LOCK_SH | LOCK_EX), EINVAL);
    EXPECT_ERRNO(flock(a, LOCK_NB), EINVAL);
    EXPECT_ERRNO(flock(a, 64), EINVAL);
    /* The operation is checked before the fd. */
    EXPECT_ERRNO(flock(-1, 0), EINVAL);
    int o = open(path, O_PATH);
    ASSERT_GE(o, 0);
    EXPECT_ERRNO(flock(o, LOCK_SH), EBADF);
    close(o);
    /* Directories and pipes can be locked too. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    EXPECT_OK(flock(dfd, LOCK_EX | LOCK_NB));
    int dfd2 = open(dir, O_RDONLY | O_DIRECTORY);
    EXPECT_ERRNO(flock(dfd2, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    close(dfd);
    close(dfd2);
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_OK(flock(p[0], LOCK_EX | LOCK_NB));
    EXPECT_ERRNO(flock(p[1], LOCK_EX | LOCK_NB), EWOULDBLOCK);
    EXPECT_OK(setlk(p[1], F_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    EXPECT_ERRNO(setlk(p[0], F_SETLK, F_WRLCK, SEEK_SET, 0, 0), EBADF);
    EXPECT_OK(setlk(p[0], F_SETLK, F_RDLCK, SEEK_CUR, 0, 0));
    close(p[0]);
    close(p[1]);
    /* Any access mode may take either lock. */
    int r = open(path, O_RDONLY);
    EXPECT_OK(flock(r, LOCK_EX | LOCK_NB));
    close(r);
    close(a);
}

TEST(flock_and_posix_locks_are_independent)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(flock(a, LOCK_EX));
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 0), 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 0));
    pid_t pid = fork();
    if (pid == 0) {
        int b = open_rw();
        if (flock(b, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
            _exit(1);
        _exit(0);
    }
    EXPECT_EQ(wait_for(pid), 0);
    close(a);
}

/* ------------------------------------------------------------ POSIX locks */

TEST(posix_same_process_never_conflicts)
{
    int a = open_rw(), b = open_rw();
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 100));
    EXPECT_OK(setlk(b, F_SETLK, F_WRLCK, SEEK_SET, 50, 100));
    EXPECT_OK(setlk(b, F_SETLK, F_RDLCK, SEEK_SET, 0, 10));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    EXPECT_OK(fcntl(a, F_GETLK, &fl));
    EXPECT_EQ(fl.l_type, F_UNLCK);
    /* Unchanged apart from l_type. */
    EXPECT_EQ(fl.l_start, 0);
    EXPECT_EQ(fl.l_len, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 0), 0);
    close(a);
    close(b);
}

TEST(posix_conflicts_seen_from_child)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 100));
    EXPECT_EQ(child_setlk(F_RDLCK, 50, 1), EAGAIN);
    EXPECT_EQ(child_setlk(F_WRLCK, 99, 0), EAGAIN);
    EXPECT_EQ(child_setlk(F_WRLCK, 100, 0), 0);
    struct flock fl;
    EXPECT_EQ(child_getlk(F_RDLCK, 10, 5, &fl), 0);
    EXPECT_EQ(fl.l_type, F_WRLCK);
    EXPECT_EQ(fl.l_whence, SEEK_SET);
    EXPECT_EQ(fl.l_start, 0);
    EXPECT_EQ(fl.l_len, 100);
    EXPECT_EQ(fl.l_pid, getpid());
    EXPECT_EQ(child_getlk(F_WRLCK, 100, 0, &fl), 0);
    EXPECT_EQ(fl.l_type, F_UNLCK);
    EXPECT_EQ(fl.l_start, 100);
    EXPECT_EQ(fl.l_pid, 12345);

    /* Read locks share. */
    EXPECT_OK(setlk(a, F_SETLK, F_RDLCK, SEEK_SET, 0, 100));
    EXPECT_EQ(child_setlk(F_RDLCK, 0, 0), 0);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), EAGAIN);
    EXPECT_EQ(child_getlk(F_WRLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_type, F_RDLCK);
    EXPECT_EQ(fl.l_len, 100);
    EXPECT_EQ(child_getlk(F_RDLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_type, F_UNLCK);
    /* A lock to end of file reports l_len 0. */
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 150, 0));
    EXPECT_EQ(child_getlk(F_RDLCK, 120, 0, &fl), 0);
    EXPECT_EQ(fl.l_type, F_WRLCK);
    EXPECT_EQ(fl.l_start, 150);
    EXPECT_EQ(fl.l_len, 0);
    close(a);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 0), 0);
}

TEST(posix_split_and_merge)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 101));
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 40, 21));
    struct flock fl;
    EXPECT_EQ(child_getlk(F_WRLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_start, 0);
    EXPECT_EQ(fl.l_len, 40);
    EXPECT_EQ(child_getlk(F_WRLCK, 40, 0, &fl), 0);
    EXPECT_EQ(fl.l_type, F_WRLCK);
    EXPECT_EQ(fl.l_start, 61);
    EXPECT_EQ(fl.l_len, 40);
    EXPECT_EQ(child_getlk(F_WRLCK, 40, 21, &fl), 0);
    EXPECT_EQ(fl.l_type, F_UNLCK);
    EXPECT_EQ(child_setlk(F_WRLCK, 40, 21), 0);
    EXPECT_EQ(child_setlk(F_WRLCK, 39, 1), EAGAIN);
    EXPECT_EQ(child_setlk(F_WRLCK, 61, 1), EAGAIN);
    /* A read lock in the hole, then downgrading everything: one read lock. */
    EXPECT_OK(setlk(a, F_SETLK, F_RDLCK, SEEK_SET, 40, 21));
    EXPECT_EQ(child_getlk(F_RDLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_start, 0);
    EXPECT_EQ(fl.l_len, 40);
    EXPECT_OK(setlk(a, F_SETLK, F_RDLCK, SEEK_SET, 0, 101));
    EXPECT_EQ(child_getlk(F_WRLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_type, F_RDLCK);
    EXPECT_EQ(fl.l_start, 0);
    EXPECT_EQ(fl.l_len, 101);
    EXPECT_EQ(child_getlk(F_RDLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_type, F_UNLCK);
    close(a);
}

TEST(posix_whence_and_negative_length)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    struct flock fl;
    /* l_len < 0 covers the bytes before l_start. */
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 10, -5));
    EXPECT_EQ(child_getlk(F_WRLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_start, 5);
    EXPECT_EQ(fl.l_len, 5);
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    /* SEEK_CUR counts from the file offset. */
    EXPECT_EQ(lseek(a, 20, SEEK_SET), 20);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_CUR, 5, 1));
    EXPECT_EQ(child_getlk(F_WRLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_start, 25);
    EXPECT_EQ(fl.l_len, 1);
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_CUR, -20, 0));
    /* SEEK_END from the size (200). */
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_END, -10, 0));
    EXPECT_EQ(child_getlk(F_WRLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_start, 190);
    EXPECT_EQ(fl.l_len, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_END, 0, -200));
    EXPECT_EQ(child_getlk(F_WRLCK, 0, 0, &fl), 0);
    EXPECT_EQ(fl.l_start, 0);
    EXPECT_EQ(fl.l_len, 0);
    /* Beyond end of file is fine. */
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 1000000, 10));
    EXPECT_EQ(child_setlk(F_WRLCK, 1000009, 1), EAGAIN);
    close(a);
}

TEST(posix_errors)
{
    int a = open_rw();
    int r = open(path, O_RDONLY);
    int w = open(path, O_WRONLY);
    ASSERT_GE(a, 0);
    ASSERT_GE(r, 0);
    ASSERT_GE(w, 0);
    EXPECT_ERRNO(setlk(r, F_SETLK, F_WRLCK, SEEK_SET, 0, 1), EBADF);
    EXPECT_ERRNO(setlk(w, F_SETLK, F_RDLCK, SEEK_SET, 0, 1), EBADF);
    EXPECT_ERRNO(setlk(r, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1), EBADF);
    EXPECT_OK(setlk(r, F_SETLK, F_UNLCK, SEEK_SET, 0, 1));
    EXPECT_OK(setlk(r, F_SETLK, F_RDLCK, SEEK_SET, 0, 1));
    EXPECT_OK(setlk(w, F_SETLK, F_WRLCK, SEEK_SET, 0, 1));
    /* F_GETLK does not care about the access mode. */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    EXPECT_OK(fcntl(r, F_GETLK, &fl));
    EXPECT_ERRNO(setlk(-1, F_SETLK, F_RDLCK, SEEK_SET, 0, 1), EBADF);
    EXPECT_ERRNO(setlk(a, F_SETLK, 7, SEEK_SET, 0, 1), EINVAL);
    EXPECT_ERRNO(setlk(a, F_SETLK, F_RDLCK, 3, 0, 1), EINVAL);
    EXPECT_ERRNO(setlk(a, F_SETLK, F_RDLCK, SEEK_SET, -1, 1), EINVAL);
    EXPECT_ERRNO(setlk(a, F_SETLK, F_RDLCK, SEEK_SET, 5, -6), EINVAL);
    EXPECT_ERRNO(setlk(a, F_SETLK, F_RDLCK, SEEK_END, -201, 1), EINVAL);
    EXPECT_ERRNO(setlk(a, F_SETLK, F_RDLCK, SEEK_SET, INT64_MAX, 2), EOVERFLOW);
    EXPECT_ERRNO(setlk(a, F_SETLK, F_RDLCK, SEEK_END, INT64_MAX, 1), EOVERFLOW);
    EXPECT_OK(setlk(a, F_SETLK, F_RDLCK, SEEK_SET, INT64_MAX, 1));
    fl.l_type = F_UNLCK;
    EXPECT_ERRNO(fcntl(a, F_GETLK, &fl), EINVAL);
    fl.l_type = 9;
    EXPECT_ERRNO(fcntl(a, F_GETLK, &fl), EINVAL);
    EXPECT_ERRNO(fcntl(a, F_SETLK, (void *)8), EFAULT);
    EXPECT_ERRNO(fcntl(a, F_GETLK, (void *)8), EFAULT);
    int o = open(path, O_PATH);
    ASSERT_GE(o, 0);
    EXPECT_ERRNO(setlk(o, F_SETLK, F_UNLCK, SEEK_SET, 0, 1), EBADF);
    fl.l_type = F_RDLCK;
    EXPECT_ERRNO(fcntl(o, F_GETLK, &fl), EBADF);
    close(o);
    close(a);
    close(r);
    close(w);
}

TEST(posix_released_by_closing_any_fd_of_the_file)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    /* Another description of the same file, closed: a's lock goes too. */
    int b = open(path, O_RDONLY);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), EAGAIN);
    close(b);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), 0);

    /* Through a hard link as well. */
    char hl[128];
    snprintf(hl, sizeof hl, "%s/hl", dir);
    ASSERT_OK(link(path, hl));
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    int c = open(hl, O_RDONLY);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), EAGAIN);
    close(c);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), 0);
    unlink(hl);

    /* dup2 over an fd of the file closes it. */
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    int d = dup(a);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), EAGAIN);
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(dup2(p[0], d), d);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), 0);
    close(d);
    close(p[0]);
    close(p[1]);

    /* Closing an unrelated file keeps it. */
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    int n = open("/dev/null", O_RDONLY);
    close(n);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), EAGAIN);
    close(a);
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 1), 0);
}

TEST(posix_not_inherited_and_released_at_exit)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        /* The parent holds no lock here yet; take one and exit. */
        if (try_lock(a, F_SETLK, F_WRLCK, 0, 10) != 0)
            _exit(1);
        _exit(write(p[1], "x", 1) == 1 ? 0 : 2);
    }
    close(p[1]);
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    EXPECT_EQ(wait_for(pid), 0);
    close(p[0]);
    /* The child's lock went with it. */
    EXPECT_EQ(child_setlk(F_WRLCK, 0, 0), 0);

    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    pid = fork();
    if (pid == 0) {
        /* Inherited fd, but the lock is the parent's. */
        _exit(try_lock(a, F_SETLK, F_WRLCK, 0, 1));
    }
    EXPECT_EQ(wait_for(pid), EAGAIN);
    close(a);
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

TEST(posix_released_when_threaded_process_exits)
{
    for (int round = 0; round < 3; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            pthread_t th[3];
            for (int i = 0; i < 3; i++)
                pthread_create(&th[i], NULL, sleeper, NULL);
            int b = open_rw();
            if (try_lock(b, F_SETLK, F_WRLCK, 0, 0) != 0)
                _exit(1);
            _exit(0);
        }
        EXPECT_EQ(wait_for(pid), 0);
        /* Gone by the time wait returns. */
        EXPECT_EQ(child_setlk(F_WRLCK, 0, 0), 0);
    }
}

TEST(posix_setlkw_waits_for_release)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int b = open_rw();
        int r = try_lock(b, F_SETLKW, F_RDLCK, 5, 1);
        if (r)
            _exit(r);
        _exit(write(p[1], "x", 1) == 1 ? 0 : 100);
    }
    close(p[1]);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    EXPECT_EQ(poll(&pfd, 1, 100), 0);
    /* Releasing part of the range is not enough. */
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 5));
    EXPECT_EQ(poll(&pfd, 1, 50), 0);
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 5, 1));
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    EXPECT_EQ(wait_for(pid), 0);
    close(p[0]);
    close(a);
}

TEST(posix_edeadlk)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 1));
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int b = open_rw();
        if (try_lock(b, F_SETLK, F_WRLCK, 1, 1) != 0)
            _exit(100);
        if (write(p[1], "x", 1) != 1)
            _exit(101);
        /* Blocks on the parent's byte 0. */
        _exit(try_lock(b, F_SETLKW, F_WRLCK, 0, 1));
    }
    close(p[1]);
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    close(p[0]);
    usleep(300000);
    /* The child waits for us: waiting for its byte 1 would deadlock. */
    int r = try_lock(a, F_SETLKW, F_WRLCK, 1, 1);
    int st;
    if (r == EDEADLK) {
        EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 1));
        st = wait_for(pid);
        EXPECT_EQ(st, 0);
    } else {
        /* The child was not waiting yet: it got EDEADLK instead. */
        st = wait_for(pid);
        EXPECT_EQ(r, 0);
        EXPECT_EQ(st, EDEADLK);
    }
    /* F_SETLK never reports EDEADLK. */
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
    close(a);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static int child_setlkw_with_alarm(int restart)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0};
        sigaction(SIGALRM, &sa, NULL);
        int b = open_rw();
        struct itimerval it = {.it_value = {.tv_usec = 50000}};
        setitimer(ITIMER_REAL, &it, NULL);
        int r = try_lock(b, F_SETLKW, F_WRLCK, 0, 1);
        if (alarms != 1)
            _exit(100);
        _exit(r);
    }
    return pid;
}

TEST(posix_setlkw_interrupted)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(setlk(a, F_SETLK, F_WRLCK, SEEK_SET, 0, 1));
    /* Without SA_RESTART: EINTR. */
    pid_t pid = child_setlkw_with_alarm(0);
    EXPECT_EQ(wait_for(pid), EINTR);
    /* With SA_RESTART the wait resumes after the handler. */
    pid = child_setlkw_with_alarm(1);
    usleep(300000);
    EXPECT_OK(setlk(a, F_SETLK, F_UNLCK, SEEK_SET, 0, 1));
    EXPECT_EQ(wait_for(pid), 0);
    close(a);
}

TEST(flock_interrupted)
{
    int a = open_rw();
    ASSERT_GE(a, 0);
    EXPECT_OK(flock(a, LOCK_EX));
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = on_alarm};
        sigaction(SIGALRM, &sa, NULL);
        int b = open_rw();
        struct itimerval it = {.it_value = {.tv_usec = 50000}};
        setitimer(ITIMER_REAL, &it, NULL);
        int r = flock(b, LOCK_SH) == 0 ? 0 : errno;
        _exit(alarms == 1 ? r : 100);
    }
    EXPECT_EQ(wait_for(pid), EINTR);
    close(a);
}

/* ------------------------------------------------------------ OFD locks */

static int ofd(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

TEST(ofd_locks)
{
    int a = open_rw(), b = open_rw();
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    EXPECT_OK(ofd(a, F_OFD_SETLK, F_WRLCK, 0, 10));
    /* Owned by the description: another one conflicts, even in this process. */
    EXPECT_ERRNO(ofd(b, F_OFD_SETLK, F_RDLCK, 5, 1), EAGAIN);
    EXPECT_ERRNO(setlk(b, F_SETLK, F_RDLCK, SEEK_SET, 5, 1), EAGAIN);
    EXPECT_OK(ofd(a, F_OFD_SETLK, F_RDLCK, 0, 5));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    EXPECT_OK(fcntl(b, F_OFD_GETLK, &fl));
    EXPECT_EQ(fl.l_type, F_RDLCK);
    EXPECT_EQ(fl.l_start, 0);
    EXPECT_EQ(fl.l_len, 5);
    EXPECT_EQ(fl.l_pid, -1);
    /* Classic F_GETLK sees them too, with l_pid -1. */
    struct flock g = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    EXPECT_OK(fcntl(b, F_GETLK, &g));
    EXPECT_EQ(g.l_type, F_WRLCK);
    EXPECT_EQ(g.l_start, 5);
    EXPECT_EQ(g.l_len, 5);
    EXPECT_EQ(g.l_pid, -1);
    struct flock h = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    EXPECT_OK(fcntl(a, F_OFD_GETLK, &h));
    EXPECT_EQ(h.l_type, F_UNLCK);

    /* Closing another fd of the file does not release OFD locks. */
    int c = open_rw();
    close(c);
    EXPECT_ERRNO(ofd(b, F_OFD_SETLK, F_WRLCK, 5, 1), EAGAIN);
    /* A forked child shares the description. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(ofd(a, F_OFD_SETLK, F_WRLCK, 0, 20) == 0 ? 0 : errno);
    EXPECT_EQ(wait_for(pid), 0);
    EXPECT_ERRNO(ofd(b, F_OFD_SETLK, F_WRLCK, 15, 1), EAGAIN);
    /* A dup too; the lock goes with the last fd. */
    int a2 = dup(a);
    close(a);
    EXPECT_ERRNO(ofd(b, F_OFD_SETLK, F_WRLCK, 15, 1), EAGAIN);
    close(a2);
    EXPECT_OK(ofd(b, F_OFD_SETLK, F_WRLCK, 0, 0));
    EXPECT_EQ(child_setlk(F_RDLCK, 100, 1), EAGAIN);
    EXPECT_OK(ofd(b, F_OFD_SETLK, F_UNLCK, 0, 0));
    EXPECT_EQ(child_setlk(F_RDLCK, 100, 1), 0);
    close(b);
}

TEST(ofd_blocking_and_errors)
{
    int a = open_rw(), b = open_rw();
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 1};
    EXPECT_ERRNO(fcntl(a, F_OFD_SETLK, &fl), EINVAL);
    EXPECT_ERRNO(fcntl(a, F_OFD_SETLKW, &fl), EINVAL);
    EXPECT_ERRNO(fcntl(a, F_OFD_GETLK, &fl), EINVAL);
    int r = open(path, O_RDONLY);
    EXPECT_ERRNO(ofd(r, F_OFD_SETLK, F_WRLCK, 0, 1), EBADF);
    close(r);
    EXPECT_OK(ofd(a, F_OFD_SETLK, F_WRLCK, 0, 1));
    int p[2];
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (ofd(b, F_OFD_SETLKW, F_WRLCK, 0, 1) != 0)
            _exit(errno);
        _exit(write(p[1], "x", 1) == 1 ? 0 : 100);
    }
    close(p[1]);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    EXPECT_EQ(poll(&pfd, 1, 100), 0);
    EXPECT_OK(ofd(a, F_OFD_SETLK, F_UNLCK, 0, 1));
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    EXPECT_EQ(wait_for(pid), 0);
    close(p[0]);
    close(a);
    close(b);
}

/* ------------------------------------------------------------ F_SETOWN, O_ASYNC */

static volatile sig_atomic_t sigios, last_fd, last_code;
static volatile long last_band;

static void on_sigio(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    sigios++;
    last_fd = si->si_fd;
    last_code = si->si_code;
    last_band = si->si_band;
}

TEST(setown_getown)
{
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(fcntl(p[0], F_GETOWN), 0);
    EXPECT_OK(fcntl(p[0], F_SETOWN, getpid()));
    EXPECT_EQ(fcntl(p[0], F_GETOWN), getpid());
    struct f_owner_ex ex;
    EXPECT_OK(fcntl(p[0], F_GETOWN_EX, &ex));
    EXPECT_EQ(ex.type, F_OWNER_PID);
    EXPECT_EQ(ex.pid, getpid());
    ex.type = F_OWNER_TID;
    ex.pid = (pid_t)syscall(SYS_gettid);
    EXPECT_OK(fcntl(p[0], F_SETOWN_EX, &ex));
    struct f_owner_ex got;
    EXPECT_OK(fcntl(p[0], F_GETOWN_EX, &got));
    EXPECT_EQ(got.type, F_OWNER_TID);
    EXPECT_EQ(got.pid, ex.pid);
    EXPECT_EQ(fcntl(p[0], F_GETOWN), ex.pid);
    ex.type = 3;
    EXPECT_ERRNO(fcntl(p[0], F_SETOWN_EX, &ex), EINVAL);
    EXPECT_ERRNO(fcntl(p[0], F_SETOWN_EX, (void *)8), EFAULT);
    EXPECT_ERRNO(fcntl(p[0], F_GETOWN_EX, (void *)8), EFAULT);
    pid_t pg = getpgrp();
    if (pg > 0) {
        EXPECT_OK(fcntl(p[0], F_SETOWN, -pg));
        EXPECT_EQ(fcntl(p[0], F_GETOWN), -pg);
        EXPECT_OK(fcntl(p[0], F_GETOWN_EX, &got));
        EXPECT_EQ(got.type, F_OWNER_PGRP);
        EXPECT_EQ(got.pid, pg);
    }
    /* An owner that is gone: ESRCH. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    wait_for(pid);
    EXPECT_ERRNO(fcntl(p[0], F_SETOWN, pid), ESRCH);
    EXPECT_OK(fcntl(p[0], F_SETOWN, 0));
    EXPECT_EQ(fcntl(p[0], F_GETOWN), 0);
    /* The owner belongs to the description: a dup shares it. */
    EXPECT_OK(fcntl(p[0], F_SETOWN, getpid()));
    int d = dup(p[0]);
    EXPECT_EQ(fcntl(d, F_GETOWN), getpid());
    close(d);
    EXPECT_EQ(fcntl(p[0], F_GETSIG), 0);
    EXPECT_OK(fcntl(p[0], F_SETSIG, SIGRTMIN));
    EXPECT_EQ(fcntl(p[0], F_GETSIG), SIGRTMIN);
    EXPECT_ERRNO(fcntl(p[0], F_SETSIG, 65), EINVAL);
    EXPECT_ERRNO(fcntl(p[0], F_SETSIG, -1), EINVAL);
    EXPECT_OK(fcntl(p[0], F_SETSIG, 0));
    EXPECT_ERRNO(fcntl(-1, F_SETOWN, getpid()), EBADF);
    close(p[0]);
    close(p[1]);
}

TEST(o_async_sigio_on_pipe)
{
    struct sigaction sa = {.sa_sigaction = on_sigio, .sa_flags = SA_SIGINFO};
    sigaction(SIGIO, &sa, NULL);
    sigaction(SIGRTMIN, &sa, NULL);
    int p[2];
    ASSERT_OK(pipe(p));
    /* An owner but no O_ASYNC: nothing. */
    EXPECT_OK(fcntl(p[0], F_SETOWN, getpid()));
    sigios = 0;
    EXPECT_EQ(write(p[1], "a", 1), 1);
    EXPECT_EQ(sigios, 0);
    EXPECT_OK(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC));
    EXPECT_EQ(fcntl(p[0], F_GETFL) & O_ASYNC, O_ASYNC);
    EXPECT_EQ(write(p[1], "b", 1), 1);
    EXPECT_EQ(sigios, 1);
    EXPECT_EQ(last_code, SI_KERNEL);
    /* F_SETSIG: the chosen signal, with si_fd and si_band. */
    EXPECT_OK(fcntl(p[0], F_SETSIG, SIGRTMIN));
    EXPECT_EQ(write(p[1], "c", 1), 1);
    EXPECT_EQ(sigios, 2);
    EXPECT_EQ(last_fd, p[0]);
    EXPECT_EQ(last_code, POLL_IN);
    EXPECT_EQ(last_band, POLLIN | POLLRDNORM);
    /* Reading does not signal the read end. */
    char buf[8];
    EXPECT_EQ(read(p[0], buf, sizeof buf), 3);
    EXPECT_EQ(sigios, 2);
    /* The write end, with O_ASYNC: reads signal it, with POLL_OUT. */
    EXPECT_OK(fcntl(p[1], F_SETOWN, getpid()));
    EXPECT_OK(fcntl(p[1], F_SETSIG, SIGRTMIN));
    EXPECT_OK(fcntl(p[1], F_SETFL, O_ASYNC));
    EXPECT_EQ(write(p[1], "d", 1), 1);
    EXPECT_EQ(sigios, 3);
    EXPECT_EQ(last_fd, p[0]);
    EXPECT_EQ(read(p[0], buf, sizeof buf), 1);
    EXPECT_EQ(sigios, 4);
    EXPECT_EQ(last_fd, p[1]);
    EXPECT_EQ(last_code, POLL_OUT);
    EXPECT_EQ(last_band, POLLOUT | POLLWRNORM | POLLWRBAND);
    /* O_ASYNC off: silence. */
    EXPECT_OK(fcntl(p[0], F_SETFL, 0));
    EXPECT_OK(fcntl(p[1], F_SETFL, 0));
    EXPECT_EQ(write(p[1], "e", 1), 1);
    EXPECT_EQ(read(p[0], buf, sizeof buf), 1);
    EXPECT_EQ(sigios, 4);

    /* A child's write signals the owner process. */
    EXPECT_OK(fcntl(p[0], F_SETFL, O_ASYNC));
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t pid = fork();
    if (pid == 0)
        _exit(write(p[1], "f", 1) == 1 ? 0 : 1);
    EXPECT_EQ(wait_for(pid), 0);
    siginfo_t si;
    struct timespec ts = {5, 0};
    EXPECT_EQ(sigtimedwait(&block, &si, &ts), SIGRTMIN);
    EXPECT_EQ(si.si_fd, p[0]);
    EXPECT_EQ(si.si_code, POLL_IN);
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* A thread owner (F_OWNER_TID). */
    struct f_owner_ex ex = {.type = F_OWNER_TID, .pid = (pid_t)syscall(SYS_gettid)};
    EXPECT_OK(fcntl(p[0], F_SETOWN_EX, &ex));
    int before = sigios;
    EXPECT_EQ(read(p[0], buf, sizeof buf), 1);
    EXPECT_EQ(write(p[1], "g", 1), 1);
    EXPECT_EQ(sigios, before + 1);
    EXPECT_EQ(last_fd, p[0]);
    close(p[0]);
    close(p[1]);

    /* Files without fasync support do not take O_ASYNC and never signal... */
    sigios = 0;
    int e = eventfd(0, 0);
    ASSERT_GE(e, 0);
    EXPECT_OK(fcntl(e, F_SETOWN, getpid()));
    EXPECT_OK(fcntl(e, F_SETFL, O_ASYNC));
    EXPECT_EQ(fcntl(e, F_GETFL) & O_ASYNC, 0);
    uint64_t one = 1;
    EXPECT_EQ(write(e, &one, 8), 8);
    EXPECT_EQ(read(e, &one, 8), 8);
    close(e);
    int f = open_rw();
    EXPECT_OK(fcntl(f, F_SETOWN, getpid()));
    EXPECT_OK(fcntl(f, F_SETFL, O_ASYNC));
    EXPECT_EQ(fcntl(f, F_GETFL) & O_ASYNC, 0);
    EXPECT_EQ(write(f, "x", 1), 1);
    close(f);
    /* ...nor clear it once open(2) has set it. */
    f = open(path, O_RDWR | O_ASYNC);
    EXPECT_EQ(fcntl(f, F_GETFL) & O_ASYNC, O_ASYNC);
    EXPECT_OK(fcntl(f, F_SETFL, 0));
    EXPECT_EQ(fcntl(f, F_GETFL) & O_ASYNC, O_ASYNC);
    EXPECT_EQ(write(f, "x", 1), 1);
    close(f);
    EXPECT_EQ(sigios, 0);
    signal(SIGIO, SIG_DFL);
    signal(SIGRTMIN, SIG_DFL);
}

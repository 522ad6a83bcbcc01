/*
 * splice.c - moving data between descriptors without a user buffer
 * (sendfile, splice, tee, vmsplice, copy_file_range) and the sync family
 * (sync, syncfs, fsync, fdatasync, sync_file_range), with Linux's
 * errnos. Files live in a fresh directory under /dev/shm (a tmpfs both
 * natively and in the sandbox), removed at exit.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static const char *const names[] = {"a", "b", "c", "d", "big", "sub", NULL};

static void cleanup(void)
{
    for (int i = 0; names[i]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

/* Once: a fresh directory to work in; SIGPIPE ignored (EPIPE instead). */
__attribute__((constructor)) static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    strcpy(dir, "/dev/shm/splice.XXXXXX");
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        perror("setup");
        exit(2);
    }
    atexit(cleanup);
}

/* A new file `name` (truncated) holding `data`, open O_RDWR at offset 0. */
static int file_with(const char *name, const char *data, size_t n)
{
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    if (n && pwrite(fd, data, n, 0) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}

static off_t pos_of(int fd)
{
    return lseek(fd, 0, SEEK_CUR);
}

/* The whole content of `name` into buf (at most cap bytes); its length. */
static ssize_t slurp(const char *name, char *buf, size_t cap)
{
    int fd = open(name, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, buf, cap, 0);
    close(fd);
    return n;
}

static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* ------------------------------------------------------------ sendfile */

TEST(sendfile_file_to_file_uses_and_moves_offsets)
{
    int in = file_with("a", digits, 36);
    int out = file_with("b", "", 0);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_OK(lseek(in, 10, SEEK_SET));
    EXPECT_EQ(sendfile(out, in, NULL, 5), 5);
    EXPECT_EQ(pos_of(in), 15);
    EXPECT_EQ(pos_of(out), 5);
    /* Past the end of the input: a short count, then 0. */
    EXPECT_EQ(sendfile(out, in, NULL, 100), 21);
    EXPECT_EQ(sendfile(out, in, NULL, 100), 0);
    EXPECT_EQ(pos_of(out), 26);
    char buf[64] = {0};
    EXPECT_EQ(slurp("b", buf, sizeof buf), 26);
    EXPECT_MEMEQ(buf, digits + 10, 26);
    close(in);
    close(out);
}

TEST(sendfile_offset_pointer_leaves_file_offset)
{
    int in = file_with("a", digits, 36);
    int out = file_with("b", "", 0);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_OK(lseek(in, 3, SEEK_SET));
    off_t off = 20;
    EXPECT_EQ(sendfile(out, in, &off, 4), 4);
    EXPECT_EQ(off, 24);
    EXPECT_EQ(pos_of(in), 3);
    char buf[8] = {0};
    EXPECT_EQ(pread(out, buf, 8, 0), 4);
    EXPECT_MEMEQ(buf, "klmn", 4);
    /* At EOF: 0 and the offset stays. */
    off = 36;
    EXPECT_EQ(sendfile(out, in, &off, 4), 0);
    EXPECT_EQ(off, 36);
    close(in);
    close(out);
}

TEST(sendfile_to_pipe)
{
    int in = file_with("a", digits, 36);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_OK(pipe(p));
    EXPECT_EQ(sendfile(p[1], in, NULL, 10), 10);
    EXPECT_EQ(pos_of(in), 10);
    char buf[16] = {0};
    EXPECT_EQ(read(p[0], buf, sizeof buf), 10);
    EXPECT_MEMEQ(buf, "0123456789", 10);
    close(p[0]);
    close(p[1]);
    close(in);
}

/* Spliced data takes pipe slots of its own: a write does not merge into it. */
TEST(spliced_data_takes_its_own_slots)
{
    int in = file_with("a", digits, 36);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_OK(pipe2(p, O_NONBLOCK));
    EXPECT_EQ(sendfile(p[1], in, NULL, 10), 10);
    EXPECT_EQ(write(p[1], "abc", 3), 3);
    static char fill[65536];
    EXPECT_EQ(write(p[1], fill, sizeof fill), 65536 - 2 * 4096);
    close(p[0]);
    close(p[1]);
    /* From a file: a slot per page of the file. */
    ASSERT_OK(pipe2(p, O_NONBLOCK));
    static char two[8192];
    memset(two, 'p', sizeof two);
    int big = file_with("c", two, sizeof two);
    ASSERT_GE(big, 0);
    loff_t off = 4090;
    EXPECT_EQ(splice(big, &off, p[1], NULL, 12, 0), 12);
    EXPECT_EQ(write(p[1], fill, sizeof fill), 65536 - 2 * 4096);
    close(big);
    close(p[0]);
    close(p[1]);
    /* vmsplice: a slot per iovec and per page of each. */
    static char pages[8192] __attribute__((aligned(4096)));
    ASSERT_OK(pipe2(p, O_NONBLOCK));
    struct iovec iov[3] = {{pages, 10}, {pages + 100, 10}, {pages + 4090, 12}};
    EXPECT_EQ(vmsplice(p[1], iov, 3, 0), 32);
    EXPECT_EQ(write(p[1], fill, sizeof fill), 65536 - 4 * 4096);
    close(p[0]);
    close(p[1]);
    close(in);
}

TEST(sendfile_to_pipe_stops_when_full)
{
    static char big[200000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    int in = file_with("big", big, sizeof big);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_OK(pipe2(p, O_NONBLOCK));
    ASSERT_EQ(fcntl(p[1], F_GETPIPE_SZ), 65536);
    EXPECT_EQ(sendfile(p[1], in, NULL, sizeof big), 65536);
    EXPECT_EQ(pos_of(in), 65536);
    /* Full and non-blocking. */
    EXPECT_ERRNO(sendfile(p[1], in, NULL, 10), EAGAIN);
    static char got[65536];
    EXPECT_EQ(read(p[0], got, sizeof got), 65536);
    EXPECT_MEMEQ(got, big, sizeof got);
    close(p[0]);
    close(p[1]);
    close(in);
    unlink("big");
}

TEST(sendfile_errors)
{
    int in = file_with("a", digits, 36);
    int out = file_with("b", "", 0);
    int wo = open("a", O_WRONLY);
    int ro = open("b", O_RDONLY);
    int app = open("b", O_WRONLY | O_APPEND);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_GE(wo, 0);
    ASSERT_GE(ro, 0);
    ASSERT_GE(app, 0);
    ASSERT_OK(pipe(p));
    off_t off = 0;
    EXPECT_ERRNO(sendfile(out, -1, NULL, 1), EBADF);
    EXPECT_ERRNO(sendfile(out, 999, NULL, 1), EBADF);
    EXPECT_ERRNO(sendfile(-1, in, NULL, 1), EBADF);
    EXPECT_ERRNO(sendfile(out, wo, NULL, 1), EBADF);
    EXPECT_ERRNO(sendfile(ro, in, NULL, 1), EBADF);
    EXPECT_ERRNO(sendfile(app, in, NULL, 1), EINVAL);
    /* A pipe is no sendfile source; with an offset it is ESPIPE. */
    EXPECT_ERRNO(write(p[1], "x", 1) == 1 ? sendfile(out, p[0], NULL, 1) : -2, EINVAL);
    EXPECT_ERRNO(sendfile(out, p[0], &off, 1), ESPIPE);
    off = -1;
    EXPECT_ERRNO(sendfile(out, in, &off, 1), EINVAL);
    EXPECT_ERRNO(sendfile(out, in, NULL, (size_t)-1), EINVAL);
    EXPECT_ERRNO(sendfile(out, in, (off_t *)8, 1), EFAULT);
    int d = open(".", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(d, 0);
    EXPECT_ERRNO(sendfile(out, d, NULL, 1), EINVAL);
    int path = open("a", O_PATH);
    ASSERT_GE(path, 0);
    EXPECT_ERRNO(sendfile(out, path, NULL, 1), EBADF);
    /* Nothing was written by the failures. */
    struct stat st;
    EXPECT_OK(fstat(out, &st));
    EXPECT_EQ(st.st_size, 0);
    /* A pipe without readers: EPIPE. */
    close(p[0]);
    EXPECT_ERRNO(sendfile(p[1], in, NULL, 1), EPIPE);
    close(p[1]);
    close(path);
    close(d);
    close(app);
    close(ro);
    close(wo);
    close(in);
    close(out);
}

/* ------------------------------------------------------------ splice */

TEST(splice_file_to_pipe_to_file)
{
    int in = file_with("a", digits, 36);
    int out = file_with("b", "", 0);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_OK(pipe(p));
    loff_t off = 4;
    EXPECT_EQ(splice(in, &off, p[1], NULL, 8, 0), 8);
    EXPECT_EQ(off, 12);
    EXPECT_EQ(pos_of(in), 0);
    /* Without an offset pointer, the file offset moves. */
    EXPECT_EQ(splice(in, NULL, p[1], NULL, 2, SPLICE_F_MOVE | SPLICE_F_MORE), 2);
    EXPECT_EQ(pos_of(in), 2);
    EXPECT_EQ(splice(p[0], NULL, out, NULL, 100, 0), 10);
    EXPECT_EQ(pos_of(out), 10);
    char buf[16] = {0};
    EXPECT_EQ(pread(out, buf, sizeof buf, 0), 10);
    EXPECT_MEMEQ(buf, "456789ab01", 10);
    /* Into the output at an offset: the file offset stays. */
    EXPECT_EQ(write(p[1], "XY", 2), 2);
    off = 20;
    EXPECT_EQ(splice(p[0], NULL, out, &off, 2, 0), 2);
    EXPECT_EQ(off, 22);
    EXPECT_EQ(pos_of(out), 10);
    struct stat st;
    EXPECT_OK(fstat(out, &st));
    EXPECT_EQ(st.st_size, 22);
    EXPECT_EQ(pread(out, buf, 2, 20), 2);
    EXPECT_MEMEQ(buf, "XY", 2);
    close(p[0]);
    close(p[1]);
    close(in);
    close(out);
}

TEST(splice_large_file_through_a_pipe)
{
    static char big[150000], got[150000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 13 + 1);
    int in = file_with("big", big, sizeof big);
    int out = file_with("c", "", 0);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_OK(pipe(p));
    size_t moved = 0;
    while (moved < sizeof big) {
        ssize_t n = splice(in, NULL, p[1], NULL, sizeof big - moved, 0);
        ASSERT_GT(n, 0);
        EXPECT_LE(n, 65536);
        ssize_t m = splice(p[0], NULL, out, NULL, (size_t)n, 0);
        ASSERT_EQ(m, n);
        moved += (size_t)n;
    }
    EXPECT_EQ(splice(in, NULL, p[1], NULL, 10, 0), 0);
    EXPECT_EQ(slurp("c", got, sizeof got), (ssize_t)sizeof big);
    EXPECT_MEMEQ(got, big, sizeof big);
    close(p[0]);
    close(p[1]);
    close(in);
    close(out);
    unlink("big");
    unlink("c");
}

/* Lengths past SSIZE_MAX are EINVAL (rw_verify_area); others are clamped. */
TEST(splice_huge_lengths)
{
    int in = file_with("a", digits, 36);
    int out = file_with("b", "", 0);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_OK(pipe(p));
    EXPECT_ERRNO(splice(in, NULL, p[1], NULL, SIZE_MAX, 0), EINVAL);
    EXPECT_EQ(splice(in, NULL, p[1], NULL, SSIZE_MAX, 0), 36);
    EXPECT_ERRNO(splice(p[0], NULL, out, NULL, SIZE_MAX, 0), EINVAL);
    EXPECT_EQ(splice(p[0], NULL, out, NULL, SSIZE_MAX, 0), 36);
    close(p[0]);
    close(p[1]);
    close(in);
    close(out);
}

TEST(splice_pipe_to_pipe)
{
    int p[2], q[2];
    ASSERT_OK(pipe(p));
    ASSERT_OK(pipe(q));
    EXPECT_EQ(write(p[1], "hello world", 11), 11);
    EXPECT_EQ(splice(p[0], NULL, q[1], NULL, 5, 0), 5);
    char buf[16] = {0};
    EXPECT_EQ(read(q[0], buf, sizeof buf), 5);
    EXPECT_MEMEQ(buf, "hello", 5);
    EXPECT_EQ(read(p[0], buf, sizeof buf), 6);
    EXPECT_MEMEQ(buf, " world", 6);
    /* Splicing a pipe into itself. */
    EXPECT_EQ(write(p[1], "x", 1), 1);
    EXPECT_ERRNO(splice(p[0], NULL, p[1], NULL, 1, 0), EINVAL);
    /* EOF: no writers, nothing buffered. */
    close(q[1]);
    EXPECT_EQ(splice(q[0], NULL, p[1], NULL, 1, 0), 0);
    close(p[0]);
    close(p[1]);
    close(q[0]);
}

TEST(splice_errors)
{
    int in = file_with("a", digits, 36);
    int out = file_with("b", "", 0);
    int app = open("b", O_WRONLY | O_APPEND);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_GE(app, 0);
    ASSERT_OK(pipe(p));
    loff_t off = 0;
    /* A zero length succeeds before anything is looked at. */
    EXPECT_EQ(splice(-1, NULL, -1, NULL, 0, 0), 0);
    EXPECT_ERRNO(splice(in, NULL, out, NULL, 1, 0), EINVAL);
    EXPECT_ERRNO(splice(in, NULL, p[1], NULL, 1, 0x100), EINVAL);
    EXPECT_ERRNO(splice(-1, NULL, p[1], NULL, 1, 0), EBADF);
    EXPECT_ERRNO(splice(in, NULL, -1, NULL, 1, 0), EBADF);
    /* The wrong end of the pipe. */
    EXPECT_ERRNO(splice(in, NULL, p[0], NULL, 1, 0), EBADF);
    EXPECT_ERRNO(splice(p[1], NULL, out, NULL, 1, 0), EBADF);
    /* Offsets on the pipe side. */
    EXPECT_ERRNO(splice(p[0], &off, out, NULL, 1, 0), ESPIPE);
    EXPECT_ERRNO(splice(in, NULL, p[1], &off, 1, 0), ESPIPE);
    EXPECT_ERRNO(splice(in, (loff_t *)8, p[1], NULL, 1, 0), EFAULT);
    off = -1;
    EXPECT_ERRNO(splice(in, &off, p[1], NULL, 1, 0), EINVAL);
    /* An O_APPEND output. */
    EXPECT_EQ(write(p[1], "z", 1), 1);
    EXPECT_ERRNO(splice(p[0], NULL, app, NULL, 1, 0), EINVAL);
    /* A directory is no splice source. */
    int d = open(".", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(d, 0);
    EXPECT_ERRNO(splice(d, NULL, p[1], NULL, 1, 0), EINVAL);
    close(d);
    close(p[0]);
    close(p[1]);
    close(app);
    close(in);
    close(out);
}

TEST(splice_nonblock_eagain_and_epipe)
{
    int out = file_with("b", "", 0);
    int in = file_with("a", digits, 36);
    int p[2];
    ASSERT_GE(out, 0);
    ASSERT_GE(in, 0);
    ASSERT_OK(pipe(p));
    /* Empty pipe with writers. */
    EXPECT_ERRNO(splice(p[0], NULL, out, NULL, 10, SPLICE_F_NONBLOCK), EAGAIN);
    /* A full pipe. */
    ASSERT_OK(fcntl(p[1], F_SETFL, O_NONBLOCK));
    char page[4096];
    memset(page, 'q', sizeof page);
    while (write(p[1], page, sizeof page) > 0)
        ;
    EXPECT_ERRNO(splice(in, NULL, p[1], NULL, 10, 0), EAGAIN);
    EXPECT_EQ(pos_of(in), 0);
    /* No readers: EPIPE. */
    close(p[0]);
    EXPECT_ERRNO(splice(in, NULL, p[1], NULL, 10, SPLICE_F_NONBLOCK), EPIPE);
    close(p[1]);
    close(in);
    close(out);
}

/* With SIGPIPE's default action, EPIPE from each call kills the caller. */
TEST(epipe_raises_sigpipe)
{
    int in = file_with("a", digits, 36);
    ASSERT_GE(in, 0);
    for (int which = 0; which < 4; which++) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            signal(SIGPIPE, SIG_DFL);
            int p[2], q[2];
            if (pipe(p) != 0 || pipe(q) != 0)
                _exit(10);
            close(p[0]);
            if (write(q[1], "x", 1) != 1)
                _exit(11);
            char c = 'v';
            struct iovec iov = {&c, 1};
            switch (which) {
            case 0:
                sendfile(p[1], in, NULL, 1);
                break;
            case 1:
                splice(in, NULL, p[1], NULL, 1, 0);
                break;
            case 2:
                tee(q[0], p[1], 1, 0);
                break;
            case 3:
                vmsplice(p[1], &iov, 1, 0);
                break;
            }
            _exit(12);
        }
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
    }
    close(in);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

TEST(splice_blocks_until_data_and_is_interruptible)
{
    int out = file_with("b", "", 0);
    int p[2];
    ASSERT_GE(out, 0);
    ASSERT_OK(pipe(p));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        usleep(50000);
        ssize_t w = write(p[1], "late", 4);
        _exit(w == 4 ? 0 : 1);
    }
    EXPECT_EQ(splice(p[0], NULL, out, NULL, 100, 0), 4);
    int st;
    EXPECT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    /* A signal (without SA_RESTART) interrupts a blocked splice: EINTR. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    ASSERT_OK(sigaction(SIGALRM, &sa, NULL));
    struct itimerval it = {{0, 0}, {0, 50000}};
    ASSERT_OK(setitimer(ITIMER_REAL, &it, NULL));
    EXPECT_ERRNO(splice(p[0], NULL, out, NULL, 100, 0), EINTR);
    EXPECT_EQ(alarms, 1);
    signal(SIGALRM, SIG_DFL);
    close(p[0]);
    close(p[1]);
    close(out);
}

/* file->pipe, vmsplice and tee wait for room or data, then complete. */
TEST(blocked_transfers_complete_when_ready)
{
    int in = file_with("a", digits, 36);
    ASSERT_GE(in, 0);
    for (int which = 0; which < 3; which++) {
        int p[2], q[2];
        ASSERT_OK(pipe(p));
        ASSERT_OK(pipe(q));
        if (which < 2) {
            /* Fill p: the transfer into it must wait for the child's read. */
            ASSERT_OK(fcntl(p[1], F_SETFL, O_NONBLOCK));
            char page[4096];
            memset(page, 'q', sizeof page);
            while (write(p[1], page, sizeof page) > 0)
                ;
            ASSERT_OK(fcntl(p[1], F_SETFL, 0));
        }
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            usleep(50000);
            char buf[4096];
            if (which < 2)
                _exit(read(p[0], buf, sizeof buf) == sizeof buf ? 0 : 1);
            _exit(write(q[1], "tee!", 4) == 4 ? 0 : 1);
        }
        char c[] = "vm";
        struct iovec iov = {c, 2};
        char buf[8] = {0};
        switch (which) {
        case 0:
            EXPECT_EQ(splice(in, NULL, p[1], NULL, 10, 0), 10);
            break;
        case 1:
            EXPECT_EQ(vmsplice(p[1], &iov, 1, 0), 2);
            break;
        case 2:
            EXPECT_EQ(tee(q[0], p[1], 10, 0), 4);
            EXPECT_EQ(read(p[0], buf, sizeof buf), 4);
            EXPECT_MEMEQ(buf, "tee!", 4);
            break;
        }
        int st;
        EXPECT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_EQ(st, 0);
        close(p[0]);
        close(p[1]);
        close(q[0]);
        close(q[1]);
    }
    close(in);
}

/* ------------------------------------------------------------ tee */

TEST(tee_copies_and_leaves_the_source)
{
    int p[2], q[2];
    ASSERT_OK(pipe(p));
    ASSERT_OK(pipe(q));
    EXPECT_EQ(write(p[1], "hello", 5), 5);
    EXPECT_EQ(tee(p[0], q[1], 100, 0), 5);
    char buf[16] = {0};
    EXPECT_EQ(read(q[0], buf, sizeof buf), 5);
    EXPECT_MEMEQ(buf, "hello", 5);
    /* A shorter tee copies a prefix. */
    EXPECT_EQ(tee(p[0], q[1], 2, 0), 2);
    EXPECT_EQ(read(q[0], buf, sizeof buf), 2);
    EXPECT_MEMEQ(buf, "he", 2);
    memset(buf, 0, sizeof buf);
    EXPECT_EQ(read(p[0], buf, sizeof buf), 5);
    EXPECT_MEMEQ(buf, "hello", 5);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

TEST(tee_errors)
{
    int p[2], q[2];
    int f = file_with("a", digits, 36);
    ASSERT_GE(f, 0);
    ASSERT_OK(pipe(p));
    ASSERT_OK(pipe(q));
    EXPECT_EQ(tee(-1, -1, 0, 0), 0);
    EXPECT_ERRNO(tee(p[0], q[1], 0, 0x100), EINVAL);
    EXPECT_ERRNO(tee(p[0], q[1], 1, SPLICE_F_NONBLOCK), EAGAIN);
    EXPECT_ERRNO(tee(-1, q[1], 1, 0), EBADF);
    EXPECT_ERRNO(tee(p[0], -1, 1, 0), EBADF);
    EXPECT_ERRNO(tee(p[1], q[1], 1, 0), EBADF);
    EXPECT_ERRNO(tee(p[0], q[0], 1, 0), EBADF);
    EXPECT_ERRNO(tee(f, q[1], 1, 0), EINVAL);
    EXPECT_ERRNO(tee(p[0], f, 1, 0), EINVAL);
    EXPECT_EQ(write(p[1], "x", 1), 1);
    EXPECT_ERRNO(tee(p[0], p[1], 1, 0), EINVAL);
    /* No readers on the output. */
    close(q[0]);
    EXPECT_ERRNO(tee(p[0], q[1], 1, 0), EPIPE);
    /* EOF on the input. */
    int r[2];
    ASSERT_OK(pipe(r));
    close(r[1]);
    EXPECT_EQ(tee(r[0], p[1], 1, 0), 0);
    close(r[0]);
    close(p[0]);
    close(p[1]);
    close(q[1]);
    close(f);
}

/* ------------------------------------------------------------ vmsplice */

TEST(vmsplice_into_and_out_of_a_pipe)
{
    int p[2];
    ASSERT_OK(pipe(p));
    char a[] = "abc", b[] = "defgh";
    struct iovec iov[2] = {{a, 3}, {b, 5}};
    EXPECT_EQ(vmsplice(p[1], iov, 2, 0), 8);
    EXPECT_EQ(vmsplice(p[1], iov, 1, SPLICE_F_GIFT), 3);
    char x[4] = {0}, y[16] = {0};
    struct iovec out[2] = {{x, 4}, {y, sizeof y}};
    /* The read end copies out to user memory, consuming. */
    EXPECT_EQ(vmsplice(p[0], out, 2, 0), 11);
    EXPECT_MEMEQ(x, "abcd", 4);
    EXPECT_MEMEQ(y, "efghabc", 7);
    EXPECT_ERRNO(vmsplice(p[0], out, 2, SPLICE_F_NONBLOCK), EAGAIN);
    /* Zero-length iovecs: nothing to do. */
    struct iovec none = {a, 0};
    EXPECT_EQ(vmsplice(p[1], &none, 1, 0), 0);
    close(p[0]);
    close(p[1]);
}

TEST(vmsplice_errors)
{
    int p[2];
    int f = file_with("a", digits, 36);
    ASSERT_GE(f, 0);
    ASSERT_OK(pipe(p));
    char a[] = "abc";
    struct iovec iov = {a, 3};
    EXPECT_ERRNO(vmsplice(-1, &iov, 1, 0), EBADF);
    EXPECT_ERRNO(vmsplice(f, &iov, 1, 0), EBADF);
    EXPECT_ERRNO(vmsplice(p[1], &iov, 1, 0x100), EINVAL);
    EXPECT_ERRNO(vmsplice(p[1], (struct iovec *)8, 1, 0), EFAULT);
    struct iovec bad = {(void *)8, 3};
    EXPECT_ERRNO(vmsplice(p[1], &bad, 1, 0), EFAULT);
    EXPECT_ERRNO(vmsplice(p[1], &iov, 1025, 0), EINVAL);
    /* A full pipe, SPLICE_F_NONBLOCK: EAGAIN. */
    ASSERT_OK(fcntl(p[1], F_SETFL, O_NONBLOCK));
    char page[4096];
    memset(page, 'q', sizeof page);
    while (write(p[1], page, sizeof page) > 0)
        ;
    EXPECT_ERRNO(vmsplice(p[1], &iov, 1, SPLICE_F_NONBLOCK), EAGAIN);
    close(p[0]);
    EXPECT_ERRNO(vmsplice(p[1], &iov, 1, 0), EPIPE);
    close(p[1]);
    close(f);
}

/* ------------------------------------------------------------ copy_file_range */

TEST(copy_file_range_copies_and_moves_offsets)
{
    int in = file_with("a", digits, 36);
    int out = file_with("b", "", 0);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_OK(lseek(in, 5, SEEK_SET));
    EXPECT_EQ(copy_file_range(in, NULL, out, NULL, 4, 0), 4);
    EXPECT_EQ(pos_of(in), 9);
    EXPECT_EQ(pos_of(out), 4);
    /* With offset pointers the file offsets stay. */
    loff_t oi = 30, oo = 10;
    EXPECT_EQ(copy_file_range(in, &oi, out, &oo, 100, 0), 6);
    EXPECT_EQ(oi, 36);
    EXPECT_EQ(oo, 16);
    EXPECT_EQ(pos_of(in), 9);
    EXPECT_EQ(pos_of(out), 4);
    char buf[32] = {0};
    EXPECT_EQ(pread(out, buf, sizeof buf, 0), 16);
    EXPECT_MEMEQ(buf, "5678", 4);
    EXPECT_MEMEQ(buf + 4, "\0\0\0\0\0\0", 6);
    EXPECT_MEMEQ(buf + 10, "uvwxyz", 6);
    /* At or past the end of the input: 0. */
    oi = 36;
    EXPECT_EQ(copy_file_range(in, &oi, out, NULL, 10, 0), 0);
    oi = 1000;
    EXPECT_EQ(copy_file_range(in, &oi, out, NULL, 10, 0), 0);
    EXPECT_EQ(copy_file_range(in, NULL, out, NULL, 0, 0), 0);
    /* Huge lengths: shortened to the end of the input, unless an offset
     * would wrap (EOVERFLOW). */
    oi = 0;
    oo = 0;
    EXPECT_EQ(copy_file_range(in, &oi, out, &oo, SIZE_MAX, 0), 36);
    EXPECT_EQ(oo, 36);
    oi = 1;
    oo = 0;
    EXPECT_ERRNO(copy_file_range(in, &oi, out, &oo, SIZE_MAX, 0), EOVERFLOW);
    oi = 0;
    oo = 100;
    EXPECT_ERRNO(copy_file_range(in, &oi, out, &oo, SIZE_MAX, 0), EOVERFLOW);
    EXPECT_EQ(oi, 0);
    /* Within one file, ranges that do not overlap. */
    oi = 0;
    oo = 40;
    EXPECT_EQ(copy_file_range(in, &oi, in, &oo, 4, 0), 4);
    EXPECT_EQ(pread(in, buf, 4, 40), 4);
    EXPECT_MEMEQ(buf, "0123", 4);
    close(in);
    close(out);
}

TEST(copy_file_range_errors)
{
    int in = file_with("a", digits, 36);
    int out = file_with("b", "", 0);
    int wo = open("a", O_WRONLY);
    int ro = open("b", O_RDONLY);
    int app = open("b", O_WRONLY | O_APPEND);
    int d = open(".", O_RDONLY | O_DIRECTORY);
    int p[2];
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_GE(wo, 0);
    ASSERT_GE(ro, 0);
    ASSERT_GE(app, 0);
    ASSERT_GE(d, 0);
    ASSERT_OK(pipe(p));
    loff_t oi = 0, oo = 0;
    EXPECT_ERRNO(copy_file_range(-1, NULL, out, NULL, 1, 0), EBADF);
    EXPECT_ERRNO(copy_file_range(in, NULL, -1, NULL, 1, 0), EBADF);
    EXPECT_ERRNO(copy_file_range(in, NULL, out, NULL, 1, 1), EINVAL);
    EXPECT_ERRNO(copy_file_range(wo, NULL, out, NULL, 1, 0), EBADF);
    EXPECT_ERRNO(copy_file_range(in, NULL, ro, NULL, 1, 0), EBADF);
    EXPECT_ERRNO(copy_file_range(in, NULL, app, NULL, 1, 0), EBADF);
    EXPECT_ERRNO(copy_file_range(d, NULL, out, NULL, 1, 0), EISDIR);
    EXPECT_ERRNO(copy_file_range(in, NULL, d, NULL, 1, 0), EISDIR);
    EXPECT_ERRNO(copy_file_range(p[0], NULL, out, NULL, 1, 0), EINVAL);
    EXPECT_ERRNO(copy_file_range(in, NULL, p[1], NULL, 1, 0), EINVAL);
    EXPECT_ERRNO(copy_file_range(in, (loff_t *)8, out, NULL, 1, 0), EFAULT);
    /* Overlapping ranges of one file. */
    oi = 0;
    oo = 10;
    EXPECT_ERRNO(copy_file_range(in, &oi, in, &oo, 20, 0), EINVAL);
    oo = 0;
    EXPECT_ERRNO(copy_file_range(in, &oi, in, &oo, 1, 0), EINVAL);
    /* Another file system. */
    int etc = open("/etc/passwd", O_RDONLY);
    if (etc >= 0) {
        EXPECT_ERRNO(copy_file_range(etc, NULL, out, NULL, 1, 0), EXDEV);
        close(etc);
    }
    struct stat st;
    EXPECT_OK(fstat(out, &st));
    EXPECT_EQ(st.st_size, 0);
    close(p[0]);
    close(p[1]);
    close(d);
    close(app);
    close(ro);
    close(wo);
    close(in);
    close(out);
}

/* ------------------------------------------------------------ sync family */

TEST(fsync_and_fdatasync)
{
    int f = file_with("a", digits, 36);
    int p[2];
    ASSERT_GE(f, 0);
    ASSERT_OK(pipe(p));
    EXPECT_OK(fsync(f));
    EXPECT_OK(fdatasync(f));
    int d = open(".", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(d, 0);
    EXPECT_OK(fsync(d));
    /* A host-backed file (read-only is fine). */
    int etc = open("/etc/passwd", O_RDONLY);
    if (etc >= 0) {
        EXPECT_OK(fsync(etc));
        EXPECT_OK(fdatasync(etc));
        close(etc);
    }
    EXPECT_ERRNO(fsync(p[0]), EINVAL);
    EXPECT_ERRNO(fdatasync(p[1]), EINVAL);
    int null = open("/dev/null", O_WRONLY);
    ASSERT_GE(null, 0);
    EXPECT_ERRNO(fsync(null), EINVAL);
    EXPECT_ERRNO(fsync(-1), EBADF);
    EXPECT_ERRNO(fdatasync(999), EBADF);
    int path = open("a", O_PATH);
    ASSERT_GE(path, 0);
    EXPECT_ERRNO(fsync(path), EBADF);
    close(path);
    close(null);
    close(d);
    close(p[0]);
    close(p[1]);
    close(f);
}

TEST(sync_and_syncfs)
{
    int f = file_with("a", digits, 36);
    int p[2];
    ASSERT_GE(f, 0);
    ASSERT_OK(pipe(p));
    sync();
    EXPECT_OK(syscall(SYS_sync));
    EXPECT_OK(syncfs(f));
    EXPECT_OK(syncfs(p[0]));
    EXPECT_ERRNO(syncfs(-1), EBADF);
    EXPECT_ERRNO(syncfs(999), EBADF);
    close(p[0]);
    close(p[1]);
    close(f);
}

TEST(sync_file_range_checks)
{
    int f = file_with("a", digits, 36);
    int p[2];
    ASSERT_GE(f, 0);
    ASSERT_OK(pipe(p));
    EXPECT_OK(sync_file_range(f, 0, 0, 0));
    EXPECT_OK(sync_file_range(f, 0, 10,
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                  SYNC_FILE_RANGE_WAIT_AFTER));
    EXPECT_OK(sync_file_range(f, 100, 0, SYNC_FILE_RANGE_WRITE));
    EXPECT_ERRNO(sync_file_range(f, 0, 0, 8), EINVAL);
    EXPECT_ERRNO(sync_file_range(f, -1, 0, 0), EINVAL);
    EXPECT_ERRNO(sync_file_range(f, 10, -20, 0), EINVAL);
    EXPECT_ERRNO(sync_file_range(f, INT64_MAX, 1, 0), EINVAL);
    EXPECT_ERRNO(sync_file_range(p[0], 0, 0, 0), ESPIPE);
    EXPECT_ERRNO(sync_file_range(-1, 0, 0, 0), EBADF);
    close(p[0]);
    close(p[1]);
    close(f);
}

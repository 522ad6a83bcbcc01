/*
 * shm.c - shared memory on tmpfs: MAP_SHARED mappings of /dev/shm files and
 * memfds are coherent with read/write, with each other and across fork;
 * MAP_PRIVATE does not write through; SIGBUS past end of file; memfd seals;
 * shm_open; sparse files (st_blocks, SEEK_DATA/SEEK_HOLE); msync errors.
 *
 * Files live in a mkdtemp directory under /dev/shm (tmpfs natively and in the
 * sandbox), removed at the end of each test.
 */
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL

static char dir[64];
static char path[128];

/* A fresh empty file in a fresh /dev/shm directory, open O_RDWR. */
static int tmpfile_rw(void)
{
    strcpy(dir, "/dev/shm/shmtest.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/f", dir);
    return open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
}

static void cleanup(int fd)
{
    if (fd >= 0)
        close(fd);
    unlink(path);
    rmdir(dir);
}

static sigjmp_buf jb;
static volatile int got_sig;

static void on_fault(int sig)
{
    got_sig = sig;
    siglongjmp(jb, 1);
}

/* The signal (SIGBUS/SIGSEGV) touching *p raises, or 0. `write` stores. */
static int touch(volatile char *p, int write)
{
    struct sigaction sa = {0}, obus, osegv;
    sa.sa_handler = on_fault;
    sigaction(SIGBUS, &sa, &obus);
    sigaction(SIGSEGV, &sa, &osegv);
    got_sig = 0;
    if (sigsetjmp(jb, 1) == 0) {
        if (write)
            *p = 'w';
        else
            (void)*p;
    }
    sigaction(SIGBUS, &obus, NULL);
    sigaction(SIGSEGV, &osegv, NULL);
    return got_sig;
}

TEST(write_then_read_through_mapping)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    EXPECT_EQ(pwrite(fd, "hello", 5, 0), 5);
    EXPECT_EQ(pwrite(fd, "world", 5, PG + 10), 5);
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    EXPECT_TRUE(m != MAP_FAILED);
    if (m != MAP_FAILED) {
        EXPECT_MEMEQ(m, "hello", 5);
        EXPECT_MEMEQ(m + PG + 10, "world", 5);
        EXPECT_EQ(m[5], 0);
        /* A write(2) after the mapping is made shows through it. */
        EXPECT_EQ(pwrite(fd, "later", 5, 100), 5);
        EXPECT_MEMEQ(m + 100, "later", 5);
        munmap(m, 2 * PG);
    }
    cleanup(fd);
}

TEST(mapping_write_then_read)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 3 * PG));
    char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    memcpy(m + 2 * PG + 7, "mapped", 6);
    memcpy(m, "first", 5);
    char buf[8] = {0};
    EXPECT_EQ(pread(fd, buf, 6, 2 * PG + 7), 6);
    EXPECT_MEMEQ(buf, "mapped", 6);
    EXPECT_EQ(pread(fd, buf, 5, 0), 5);
    EXPECT_MEMEQ(buf, "first", 5);
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_size, 3 * PG);
    munmap(m, 3 * PG);
    /* The data stays after the mapping goes. */
    EXPECT_EQ(pread(fd, buf, 6, 2 * PG + 7), 6);
    EXPECT_MEMEQ(buf, "mapped", 6);
    cleanup(fd);
}

TEST(read_syscall_into_shared_mapping)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, PG));
    char *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(write(p[1], "viapipe", 7), 7);
    /* The kernel stores into the mapping: the file sees it. */
    EXPECT_EQ(read(p[0], m + 50, 7), 7);
    char buf[8] = {0};
    EXPECT_EQ(pread(fd, buf, 7, 50), 7);
    EXPECT_MEMEQ(buf, "viapipe", 7);
    /* And write(2) from the mapping reads it. */
    EXPECT_EQ(write(p[1], m + 50, 7), 7);
    EXPECT_EQ(read(p[0], buf, 7), 7);
    EXPECT_MEMEQ(buf, "viapipe", 7);
    close(p[0]);
    close(p[1]);
    munmap(m, PG);
    cleanup(fd);
}

TEST(two_mappings_see_each_other)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 2 * PG));
    int fd2 = open(path, O_RDWR);
    ASSERT_GE(fd2, 0);
    char *a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *b = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, PG);
    ASSERT_TRUE(a != MAP_FAILED && b != MAP_FAILED);
    a[PG + 1] = 'x';
    EXPECT_EQ(b[1], 'x');
    b[2] = 'y';
    EXPECT_EQ(a[PG + 2], 'y');
    munmap(a, 2 * PG);
    munmap(b, PG);
    close(fd2);
    cleanup(fd);
}

TEST(shared_mapping_across_fork)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, PG));
    char *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    pid_t pid = fork();
    if (pid == 0) {
        memcpy(m + 10, "child", 5);
        _exit(0);
    }
    ASSERT_GT(pid, 0);
    int status;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_MEMEQ(m + 10, "child", 5);
    char buf[5];
    EXPECT_EQ(pread(fd, buf, 5, 10), 5);
    EXPECT_MEMEQ(buf, "child", 5);
    munmap(m, PG);
    cleanup(fd);
}

TEST(private_mapping_does_not_write_through)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    EXPECT_EQ(pwrite(fd, "original", 8, 0), 8);
    char *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    EXPECT_MEMEQ(m, "original", 8);
    memcpy(m, "changed!", 8);
    char buf[8];
    EXPECT_EQ(pread(fd, buf, 8, 0), 8);
    EXPECT_MEMEQ(buf, "original", 8);
    munmap(m, PG);
    cleanup(fd);
}

TEST(sigbus_past_eof)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    EXPECT_EQ(pwrite(fd, "abc", 3, 0), 3);
    char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    /* The rest of the last page is there (zeros); the next page is not. */
    EXPECT_EQ(touch(m + 100, 0), 0);
    EXPECT_EQ(m[100], 0);
    EXPECT_EQ(touch(m + PG, 0), SIGBUS);
    EXPECT_EQ(touch(m + 2 * PG + 5, 1), SIGBUS);
    /* A syscall storing there fails with EFAULT. */
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(write(p[1], "z", 1), 1);
    EXPECT_ERRNO(read(p[0], m + PG, 1), EFAULT);
    close(p[0]);
    close(p[1]);
    /* Growing the file makes the pages accessible. */
    ASSERT_OK(ftruncate(fd, 3 * PG));
    EXPECT_EQ(touch(m + PG, 0), 0);
    EXPECT_EQ(touch(m + 2 * PG + 5, 1), 0);
    char c = 0;
    EXPECT_EQ(pread(fd, &c, 1, 2 * PG + 5), 1);
    EXPECT_EQ(c, 'w');
    /* Shrinking takes them away again. */
    ASSERT_OK(ftruncate(fd, PG));
    EXPECT_EQ(touch(m + 2 * PG + 5, 0), SIGBUS);
    EXPECT_EQ(touch(m + 10, 1), 0);
    munmap(m, 3 * PG);
    cleanup(fd);
}

TEST(o_trunc_takes_mapped_pages_away)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 2 * PG));
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    m[PG] = 'a';
    int fd2 = open(path, O_RDWR | O_TRUNC);
    ASSERT_GE(fd2, 0);
    EXPECT_EQ(touch(m + PG, 0), SIGBUS);
    EXPECT_EQ(touch(m, 0), SIGBUS);
    /* Written again, the file's new pages show through (zeros). */
    EXPECT_EQ(pwrite(fd2, "n", 1, 0), 1);
    EXPECT_EQ(touch(m, 0), 0);
    EXPECT_EQ(m[0], 'n');
    EXPECT_EQ(touch(m + PG, 0), SIGBUS);
    close(fd2);
    munmap(m, 2 * PG);
    cleanup(fd);
}

TEST(truncate_by_another_process)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 2 * PG));
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    memset(m, 'o', 2 * PG);
    pid_t pid = fork();
    if (pid == 0) {
        /* Drop the second page, and zero the first by shrinking and growing. */
        if (ftruncate(fd, 0) != 0 || ftruncate(fd, PG) != 0)
            _exit(1);
        _exit(0);
    }
    int status;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(touch(m + PG, 0), SIGBUS);
    EXPECT_EQ(touch(m, 0), 0);
    EXPECT_EQ(m[0], 0);
    m[1] = 'n';
    char c = 0;
    EXPECT_EQ(pread(fd, &c, 1, 1), 1);
    EXPECT_EQ(c, 'n');
    munmap(m, 2 * PG);
    cleanup(fd);
}

TEST(unlinked_file_stays_mapped)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, PG));
    char *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    memcpy(m, "kept", 4);
    cleanup(fd);
    EXPECT_MEMEQ(m, "kept", 4);
    m[4] = '!';
    EXPECT_EQ(m[4], '!');
    munmap(m, PG);
}

TEST(mprotect_and_mremap_shared_file)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 4 * PG));
    char *m = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    EXPECT_OK(mprotect(m, 2 * PG, PROT_READ | PROT_WRITE));
    m[PG] = 'p';
    /* PROT_NONE is SIGSEGV, inside the file or past its end alike. */
    EXPECT_OK(mprotect(m, 2 * PG, PROT_NONE));
    EXPECT_EQ(touch(m + PG, 0), SIGSEGV);
    EXPECT_EQ(touch(m, 0), SIGSEGV);
    EXPECT_OK(mprotect(m, 2 * PG, PROT_READ | PROT_WRITE));
    char *n = mremap(m, 2 * PG, 4 * PG, MREMAP_MAYMOVE);
    ASSERT_TRUE(n != MAP_FAILED);
    EXPECT_EQ(n[PG], 'p');
    n[3 * PG] = 'q';
    char c = 0;
    EXPECT_EQ(pread(fd, &c, 1, 3 * PG), 1);
    EXPECT_EQ(c, 'q');
    munmap(n, 4 * PG);
    cleanup(fd);
}

TEST(mremap_grown_private_file_mapping_shows_file)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    char buf[2 * PG];
    memset(buf, 'a', PG);
    memset(buf + PG, 'b', PG);
    ASSERT_EQ(pwrite(fd, buf, sizeof buf, 0), (long)sizeof buf);
    /* Reserve room after the mapping so that it can grow in place. */
    char *area = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(area != MAP_FAILED);
    ASSERT_OK(munmap(area + PG, 3 * PG));
    char *m = mmap(area, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    ASSERT_TRUE(m == area);
    m[0] = 'x';
    char *g = mremap(m, PG, 3 * PG, 0);
    ASSERT_TRUE(g == m);
    EXPECT_EQ(g[0], 'x');
    EXPECT_EQ(g[PG], 'b');
    EXPECT_EQ(touch(g + 2 * PG, 0), SIGBUS);
    /* Moving and growing alike. */
    char *h = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    ASSERT_TRUE(h != MAP_FAILED);
    char *blocker = mmap(h + PG, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    char *n = mremap(h, PG, 2 * PG, MREMAP_MAYMOVE);
    ASSERT_TRUE(n != MAP_FAILED);
    EXPECT_EQ(n[0], 'a');
    EXPECT_EQ(n[PG], 'b');
    munmap(n, 2 * PG);
    if (blocker != MAP_FAILED)
        munmap(blocker, PG);
    munmap(g, 3 * PG);
    cleanup(fd);
}

/* ---------------------------------------------------------------- memfd */

TEST(memfd_shared_mapping)
{
    int fd = memfd_create("shmtest", 0);
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 2 * PG));
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    memcpy(m + PG, "memfd", 5);
    char buf[5];
    EXPECT_EQ(pread(fd, buf, 5, PG), 5);
    EXPECT_MEMEQ(buf, "memfd", 5);
    EXPECT_EQ(pwrite(fd, "back", 4, 0), 4);
    EXPECT_MEMEQ(m, "back", 4);
    pid_t pid = fork();
    if (pid == 0) {
        m[20] = 'c';
        _exit(0);
    }
    int status;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_EQ(m[20], 'c');
    /* Without MFD_ALLOW_SEALING the file is sealed against new seals. */
    EXPECT_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SEAL);
    EXPECT_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EPERM);
    munmap(m, 2 * PG);
    close(fd);
}

TEST(memfd_seal_write)
{
    int fd = memfd_create("sealw", MFD_ALLOW_SEALING);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GET_SEALS), 0);
    ASSERT_OK(ftruncate(fd, PG));
    char *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    EXPECT_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EBUSY);
    EXPECT_EQ(fcntl(fd, F_GET_SEALS), 0);
    munmap(m, PG);
    EXPECT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    EXPECT_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_WRITE);
    EXPECT_ERRNO(write(fd, "x", 1), EPERM);
    EXPECT_ERRNO(pwrite(fd, "x", 1, 0), EPERM);
    EXPECT_ERRNO(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) ==
                     MAP_FAILED ? -1 : 0,
                 EPERM);
    /* Private and read-only shared mappings are fine. */
    char *r = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    EXPECT_TRUE(r != MAP_FAILED);
    if (r != MAP_FAILED) {
        EXPECT_ERRNO(mprotect(r, PG, PROT_READ | PROT_WRITE), EACCES);
        munmap(r, PG);
    }
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    EXPECT_TRUE(p != MAP_FAILED);
    if (p != MAP_FAILED)
        munmap(p, PG);
    /* Size changes are still allowed. */
    EXPECT_OK(ftruncate(fd, 2 * PG));
    close(fd);
}

TEST(memfd_seal_shrink_grow_seal)
{
    int fd = memfd_create("sealsg", MFD_ALLOW_SEALING);
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 2 * PG));
    EXPECT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK));
    EXPECT_ERRNO(ftruncate(fd, PG), EPERM);
    EXPECT_OK(ftruncate(fd, 3 * PG));
    EXPECT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
    EXPECT_ERRNO(ftruncate(fd, 4 * PG), EPERM);
    EXPECT_OK(ftruncate(fd, 3 * PG));
    /* Writes inside the file work; past its end they would grow it. */
    EXPECT_EQ(pwrite(fd, "in", 2, 3 * PG - 2), 2);
    /* A write that would cross the end stops there; one at the end fails. */
    EXPECT_EQ(pwrite(fd, "out", 3, 3 * PG - 1), 1);
    EXPECT_ERRNO(pwrite(fd, "out", 3, 3 * PG), EPERM);
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_size, 3 * PG);
    EXPECT_ERRNO(fcntl(fd, F_ADD_SEALS, 0x1000), EINVAL);
    EXPECT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL));
    EXPECT_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EPERM);
    EXPECT_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW);
    close(fd);
}

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

TEST(memfd_noexec_seal)
{
    int fd = memfd_create("noexec", MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL)
        SKIP("MFD_NOEXEC_SEAL not supported");
    ASSERT_GE(fd, 0);
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_mode & 0111, 0);
    EXPECT_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_EXEC);
    EXPECT_ERRNO(fchmod(fd, 0755), EPERM);
    EXPECT_OK(fchmod(fd, 0600));
    /* Sealing stays allowed. */
    EXPECT_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
    close(fd);
}

TEST(seals_on_other_files)
{
    /* A tmpfs file has seals (F_SEAL_SEAL); other files have none. */
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SEAL);
    EXPECT_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), EPERM);
    cleanup(fd);
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_ERRNO(fcntl(p[0], F_GET_SEALS), EINVAL);
    EXPECT_ERRNO(fcntl(p[1], F_ADD_SEALS, F_SEAL_GROW), EINVAL);
    close(p[0]);
    close(p[1]);
    /* Adding seals needs a writable descriptor. */
    int m = memfd_create("ro", MFD_ALLOW_SEALING);
    ASSERT_GE(m, 0);
    char proc[64];
    snprintf(proc, sizeof proc, "/dev/fd/%d", m);
    int ro = open(proc, O_RDONLY);
    if (ro >= 0) {
        EXPECT_ERRNO(fcntl(ro, F_ADD_SEALS, F_SEAL_GROW), EPERM);
        EXPECT_EQ(fcntl(ro, F_GET_SEALS), 0);
        close(ro);
    }
    close(m);
}

/* ---------------------------------------------------------------- shm_open */

TEST(shm_open_shared_across_fork)
{
    char name[64];
    snprintf(name, sizeof name, "/shmtest-%d", (int)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, PG));
    int *counter = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(counter != MAP_FAILED);
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = shm_open(name, O_RDWR, 0);
        if (cfd < 0)
            _exit(2);
        int *c = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (c == MAP_FAILED)
            _exit(3);
        c[1] = 41;
        __atomic_add_fetch(&c[0], 5, __ATOMIC_SEQ_CST);
        _exit(0);
    }
    int status;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(counter[0], 5);
    EXPECT_EQ(counter[1], 41);
    EXPECT_OK(shm_unlink(name));
    EXPECT_ERRNO(shm_open(name, O_RDWR, 0), ENOENT);
    EXPECT_ERRNO(shm_unlink(name), ENOENT);
    /* The mapping outlives the name. */
    counter[2] = 7;
    EXPECT_EQ(counter[2], 7);
    munmap(counter, PG);
    close(fd);
}

/* ---------------------------------------------------------------- sparse */

TEST(sparse_file_blocks)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 256 * PG));
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_size, 256 * PG);
    EXPECT_EQ(st.st_blocks, 0);
    EXPECT_EQ(pwrite(fd, "x", 1, 100 * PG + 3), 1);
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_blocks, PG / 512);
    /* A write across a page boundary fills two pages. */
    EXPECT_EQ(pwrite(fd, "yy", 2, 10 * PG - 1), 2);
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_blocks, 3 * PG / 512);
    /* Holes read as zeros. */
    char buf[16];
    memset(buf, 1, sizeof buf);
    EXPECT_EQ(pread(fd, buf, sizeof buf, 50 * PG), (long)sizeof buf);
    EXPECT_TRUE(buf[0] == 0 && buf[15] == 0);
    /* Shrinking frees the pages past the end. */
    ASSERT_OK(ftruncate(fd, 50 * PG));
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_blocks, 2 * PG / 512);
    /* and zeroes them: growing again shows zeros. */
    ASSERT_OK(ftruncate(fd, 10 * PG - 1));
    ASSERT_OK(ftruncate(fd, 10 * PG + 1));
    char c = 1;
    EXPECT_EQ(pread(fd, &c, 1, 10 * PG - 1), 1);
    EXPECT_EQ(c, 0);
    cleanup(fd);
}

TEST(seek_data_hole)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 10 * PG));
    EXPECT_ERRNO(lseek(fd, 0, SEEK_DATA), ENXIO);
    EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), 0);
    EXPECT_EQ(pwrite(fd, "d", 1, 4 * PG + 9), 1);
    EXPECT_EQ(pwrite(fd, "e", 1, 5 * PG), 1);
    EXPECT_EQ(lseek(fd, 0, SEEK_DATA), 4 * PG);
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 4 * PG);
    EXPECT_EQ(lseek(fd, 4 * PG + 100, SEEK_DATA), 4 * PG + 100);
    EXPECT_EQ(lseek(fd, 4 * PG, SEEK_HOLE), 6 * PG);
    EXPECT_EQ(lseek(fd, 7 * PG + 1, SEEK_HOLE), 7 * PG + 1);
    EXPECT_ERRNO(lseek(fd, 6 * PG, SEEK_DATA), ENXIO);
    EXPECT_ERRNO(lseek(fd, 10 * PG, SEEK_HOLE), ENXIO);
    EXPECT_ERRNO(lseek(fd, 10 * PG, SEEK_DATA), ENXIO);
    EXPECT_ERRNO(lseek(fd, -1, SEEK_DATA), ENXIO);
    /* End of file is a hole, even inside a page with data. */
    ASSERT_OK(ftruncate(fd, 5 * PG + 10));
    EXPECT_EQ(lseek(fd, 5 * PG, SEEK_HOLE), 5 * PG + 10);
    cleanup(fd);
}

TEST(punch_hole)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    char buf[4 * PG];
    memset(buf, 'p', sizeof buf);
    ASSERT_EQ(pwrite(fd, buf, sizeof buf, 0), (long)sizeof buf);
    char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    EXPECT_EQ(m[2 * PG], 'p');
    EXPECT_ERRNO(fallocate(fd, FALLOC_FL_PUNCH_HOLE, PG, PG), EOPNOTSUPP);
    EXPECT_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PG - 1,
                        2 * PG + 2));
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_size, 4 * PG);
    EXPECT_EQ(st.st_blocks, 2 * PG / 512);
    EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), PG);
    EXPECT_EQ(lseek(fd, PG, SEEK_DATA), 3 * PG);
    /* The mapping sees the zeros, and its pages come back on a write. */
    EXPECT_EQ(m[PG - 2], 'p');
    EXPECT_EQ(m[PG - 1], 0);
    EXPECT_EQ(m[2 * PG], 0);
    EXPECT_EQ(m[3 * PG], 0);
    EXPECT_EQ(m[3 * PG + 1], 'p');
    m[2 * PG] = 'w';
    char c = 0;
    EXPECT_EQ(pread(fd, &c, 1, 2 * PG), 1);
    EXPECT_EQ(c, 'w');
    munmap(m, 4 * PG);
    cleanup(fd);
}

TEST(madvise_remove)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    char buf[3 * PG];
    memset(buf, 'r', sizeof buf);
    ASSERT_EQ(pwrite(fd, buf, sizeof buf, 0), (long)sizeof buf);
    char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    EXPECT_OK(madvise(m + PG, PG, MADV_REMOVE));
    EXPECT_EQ(m[PG], 0);
    EXPECT_EQ(m[2 * PG], 'r');
    char c = 1;
    EXPECT_EQ(pread(fd, &c, 1, PG + 5), 1);
    EXPECT_EQ(c, 0);
    struct stat st;
    EXPECT_OK(fstat(fd, &st));
    EXPECT_EQ(st.st_size, 3 * PG);
    /* Only for shared writable mappings. */
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_ERRNO(madvise(p, PG, MADV_REMOVE), EACCES);
    munmap(p, PG);
    /* Shared anonymous memory reads as zeros afterwards. */
    char *a = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(a != MAP_FAILED);
    a[0] = 'a';
    a[PG] = 'b';
    EXPECT_OK(madvise(a, PG, MADV_REMOVE));
    EXPECT_EQ(a[0], 0);
    EXPECT_EQ(a[PG], 'b');
    munmap(a, 2 * PG);
    munmap(m, 3 * PG);
    cleanup(fd);
}

/* ---------------------------------------------------------------- msync */

TEST(msync_errors)
{
    int fd = tmpfile_rw();
    ASSERT_GE(fd, 0);
    ASSERT_OK(ftruncate(fd, 2 * PG));
    char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    ASSERT_OK(munmap(m + 2 * PG, PG));
    m[0] = 's';
    EXPECT_OK(msync(m, 2 * PG, MS_SYNC));
    EXPECT_OK(msync(m, 1, MS_ASYNC));
    EXPECT_OK(msync(m, 0, MS_SYNC));
    EXPECT_OK(msync(m + PG, PG, MS_INVALIDATE));
    EXPECT_ERRNO(msync(m + 1, PG, MS_SYNC), EINVAL);
    EXPECT_ERRNO(msync(m, PG, MS_SYNC | MS_ASYNC), EINVAL);
    EXPECT_ERRNO(msync(m, PG, 0x100), EINVAL);
    /* Any unmapped page in the range: ENOMEM. */
    EXPECT_ERRNO(msync(m, 3 * PG, MS_SYNC), ENOMEM);
    munmap(m, 2 * PG);
    EXPECT_ERRNO(msync(m, PG, MS_SYNC), ENOMEM);
    char c = 0;
    EXPECT_EQ(pread(fd, &c, 1, 0), 1);
    EXPECT_EQ(c, 's');
    cleanup(fd);
}

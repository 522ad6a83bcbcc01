/*
 * mm.c - memory management: mmap (anonymous, file-backed, fixed, hints),
 * munmap, mprotect, mremap, brk, madvise, and EFAULT from syscalls that are
 * handed unmapped or inaccessible buffers.
 *
 * No test touches an inaccessible page directly (signal delivery is not
 * assumed); "is this page mapped / readable?" is asked through read(),
 * which must fail with EFAULT for a page the process cannot write to.
 */
#include "harness.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096UL
#define PASSWD "/etc/passwd"

static int passwd_fd(void)
{
    return open(PASSWD, O_RDONLY);
}

/* 1 if `read()` can store into [p, p+1): the page is mapped and writable. */
static int writable_by_kernel(void *p)
{
    int fd = passwd_fd();
    if (fd < 0)
        return -1;
    long r = syscall(SYS_read, fd, p, 1);
    int e = errno;
    close(fd);
    if (r == 1)
        return 1;
    if (r == -1 && e == EFAULT)
        return 0;
    return -1;
}

static void *map_anon(size_t len, int prot)
{
    return mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static int all_bytes(const void *p, int c, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)c)
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- mmap */

TEST(mmap_anon_rw_zeroed)
{
    size_t len = 16 * PG;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_EQ((uintptr_t)p % PG, 0);
    EXPECT_TRUE(all_bytes(p, 0, len));
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 7);
    int ok = 1;
    for (size_t i = 0; i < len; i++)
        ok &= p[i] == (unsigned char)(i * 7);
    EXPECT_TRUE(ok);
    EXPECT_EQ(munmap(p, len), 0);
}

TEST(mmap_unaligned_length_rounds_up)
{
    unsigned char *p = map_anon(PG + 1, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    /* The whole second page is usable. */
    p[2 * PG - 1] = 1;
    EXPECT_EQ(writable_by_kernel(p + 2 * PG - 1), 1);
    EXPECT_EQ(munmap(p, 2 * PG), 0);
}

TEST(mmap_invalid_args)
{
    EXPECT_TRUE(map_anon(0, PROT_READ) == MAP_FAILED && errno == EINVAL);
    EXPECT_TRUE(mmap((void *)(0x10000000 + 1), PG, PROT_READ,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                     0) == MAP_FAILED &&
                errno == EINVAL);
    /* Neither MAP_PRIVATE nor MAP_SHARED. */
    EXPECT_TRUE(mmap(NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0) ==
                    MAP_FAILED &&
                errno == EINVAL);
    int fd = passwd_fd();
    ASSERT_GE(fd, 0);
    /* Unaligned file offset. */
    EXPECT_TRUE(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 100) ==
                    MAP_FAILED &&
                errno == EINVAL);
    /* Shared writable mapping of a read-only fd. */
    EXPECT_TRUE(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) ==
                    MAP_FAILED &&
                errno == EACCES);
    close(fd);
    /* A closed fd for a file mapping. */
    EXPECT_TRUE(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED &&
                errno == EBADF);
    /* Length overflowing the address space. */
    EXPECT_TRUE(map_anon(1UL << 62, PROT_READ) == MAP_FAILED &&
                errno == ENOMEM);
    EXPECT_TRUE(map_anon((size_t)-PG, PROT_READ) == MAP_FAILED &&
                errno == ENOMEM);
    /* MAP_FIXED beyond the user address space. */
    EXPECT_TRUE(mmap((void *)0x800000000000UL, PG, PROT_READ,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                     0) == MAP_FAILED &&
                errno == ENOMEM);
}

TEST(mmap_directory_enodev)
{
    int fd = open("/etc", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED &&
                errno == ENODEV);
    close(fd);
}

TEST(mmap_fixed_replaces_existing)
{
    unsigned char *p = map_anon(3 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    memset(p, 0xaa, 3 * PG);
    void *q = mmap(p + PG, PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    EXPECT_TRUE(q == p + PG);
    EXPECT_TRUE(all_bytes(p, 0xaa, PG));
    EXPECT_TRUE(all_bytes(p + PG, 0, PG));
    EXPECT_TRUE(all_bytes(p + 2 * PG, 0xaa, PG));
    munmap(p, 3 * PG);
}

TEST(mmap_fixed_noreplace)
{
    unsigned char *p = map_anon(2 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_TRUE(mmap(p + PG, PG, PROT_READ,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
                     0) == MAP_FAILED &&
                errno == EEXIST);
    EXPECT_EQ(munmap(p + PG, PG), 0);
    void *q = mmap(p + PG, PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    EXPECT_TRUE(q == p + PG);
    munmap(p, 2 * PG);
}

TEST(mmap_hint_is_honoured_when_free)
{
    unsigned char *p = map_anon(4 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_EQ(munmap(p, 4 * PG), 0);
    unsigned char *q = mmap(p + PG, PG, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_TRUE(q == p + PG);
    /* An unaligned hint is rounded down, not an error, without MAP_FIXED. */
    unsigned char *r = mmap(p + 2 * PG + 5, PG, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_TRUE(r == p + 2 * PG);
    munmap(q, PG);
    munmap(r, PG);
}

TEST(mmap_file_private_matches_read)
{
    static char buf[1 << 20];
    struct stat st;
    int fd = passwd_fd();
    ASSERT_GE(fd, 0);
    ASSERT_OK(fstat(fd, &st));
    ASSERT_GT(st.st_size, 0);
    ASSERT_TRUE(st.st_size < (off_t)sizeof buf);
    ASSERT_EQ(pread(fd, buf, sizeof buf, 0), st.st_size);
    size_t maplen = (st.st_size + PG - 1) / PG * PG;
    char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_MEMEQ(p, buf, st.st_size);
    /* The tail of the last page beyond EOF reads as zeros. */
    EXPECT_TRUE(all_bytes(p + st.st_size, 0, maplen - st.st_size));
    /* The mapping survives close of the fd. */
    close(fd);
    EXPECT_MEMEQ(p, buf, st.st_size);
    /* A read-only mapping cannot be written by the kernel either. */
    EXPECT_EQ(writable_by_kernel(p), 0);
    munmap(p, st.st_size);
}

TEST(mmap_file_private_write_is_private)
{
    static char buf[64];
    int fd = passwd_fd();
    ASSERT_GE(fd, 0);
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    memcpy(p, "XXXX", 4);
    EXPECT_MEMEQ(p, "XXXX", 4);
    ASSERT_EQ(pread(fd, buf, 4, 0), 4);
    EXPECT_MEMEQ(buf, "root", 4);
    /* A second private mapping sees the file, not the first one's copy. */
    char *q = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    ASSERT_TRUE(q != MAP_FAILED);
    EXPECT_MEMEQ(q, "root", 4);
    /* MADV_DONTNEED drops the private copy: the file shows through again. */
    EXPECT_EQ(madvise(p, PG, MADV_DONTNEED), 0);
    EXPECT_MEMEQ(p, "root", 4);
    munmap(p, PG);
    munmap(q, PG);
    close(fd);
}

TEST(mmap_file_offset)
{
    /* Map page 1 of a file larger than 2 pages and compare with pread. */
    static char buf[PG];
    const char *candidates[] = {"/usr/bin/true", "/usr/bin/ls",
                                "/usr/bin/env"};
    int fd = -1;
    struct stat st;
    for (unsigned i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        fd = open(candidates[i], O_RDONLY);
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > (off_t)(3 * PG))
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    if (fd < 0)
        SKIP("no file larger than 3 pages");
    ASSERT_EQ(pread(fd, buf, PG, PG), PG);
    char *p = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, PG);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_MEMEQ(p, buf, PG);
    munmap(p, PG);
    close(fd);
}

/* ---------------------------------------------------------------- munmap */

TEST(munmap_semantics)
{
    unsigned char *p = map_anon(4 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_ERRNO(munmap(p + 1, PG), EINVAL);
    EXPECT_ERRNO(munmap(p, 0), EINVAL);
    /* Unmapping a hole in the middle splits the mapping. */
    EXPECT_EQ(munmap(p + PG, PG), 0);
    EXPECT_EQ(writable_by_kernel(p), 1);
    EXPECT_EQ(writable_by_kernel(p + PG), 0);
    EXPECT_EQ(writable_by_kernel(p + 2 * PG), 1);
    /* Unmapping a range that includes a hole, or only a hole, succeeds. */
    EXPECT_EQ(munmap(p + PG, PG), 0);
    EXPECT_EQ(munmap(p, 4 * PG), 0);
    EXPECT_EQ(writable_by_kernel(p), 0);
    EXPECT_EQ(writable_by_kernel(p + 3 * PG), 0);
    /* Unaligned length is rounded up. */
    p = map_anon(2 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_EQ(munmap(p, PG + 1), 0);
    EXPECT_EQ(writable_by_kernel(p + PG), 0);
}

TEST(read_into_unmapped_efault)
{
    unsigned char *p = map_anon(PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    ASSERT_EQ(munmap(p, PG), 0);
    int fd = passwd_fd();
    ASSERT_GE(fd, 0);
    EXPECT_ERRNO(read(fd, p, 10), EFAULT);
    /* Nothing consumed from the file. */
    EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 0);
    close(fd);
}

/* ---------------------------------------------------------------- mprotect */

TEST(mprotect_semantics)
{
    unsigned char *p = map_anon(3 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    memset(p, 0x5a, 3 * PG);
    EXPECT_EQ(mprotect(p + PG, PG, PROT_READ), 0);
    EXPECT_EQ(writable_by_kernel(p), 1);
    EXPECT_EQ(writable_by_kernel(p + PG), 0);
    EXPECT_EQ(writable_by_kernel(p + 2 * PG), 1);
    /* Still readable, contents kept. */
    EXPECT_TRUE(all_bytes(p + PG, 0x5a, PG));
    EXPECT_EQ(mprotect(p + PG, PG, PROT_NONE), 0);
    EXPECT_EQ(writable_by_kernel(p + PG), 0);
    EXPECT_EQ(mprotect(p, 3 * PG, PROT_READ | PROT_WRITE), 0);
    p[PG] = 1;
    EXPECT_EQ(p[PG], 1);
    EXPECT_TRUE(all_bytes(p + PG + 1, 0x5a, PG - 1));
    EXPECT_EQ(writable_by_kernel(p + PG), 1);
    EXPECT_ERRNO(mprotect(p + 1, PG, PROT_READ), EINVAL);
    EXPECT_ERRNO(mprotect(p, PG, 0x1000), EINVAL);
    EXPECT_EQ(mprotect(p, 0, PROT_READ), 0);
    munmap(p, 3 * PG);
    /* Unmapped range: ENOMEM. */
    EXPECT_ERRNO(mprotect(p, PG, PROT_READ), ENOMEM);
}

TEST(mprotect_partially_unmapped_enomem)
{
    unsigned char *p = map_anon(3 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_EQ(munmap(p + 2 * PG, PG), 0);
    EXPECT_ERRNO(mprotect(p, 3 * PG, PROT_READ), ENOMEM);
    munmap(p, 2 * PG);
}

TEST(mprotect_file_shared_write_eacces)
{
    int fd = passwd_fd();
    ASSERT_GE(fd, 0);
    void *p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_ERRNO(mprotect(p, PG, PROT_READ | PROT_WRITE), EACCES);
    munmap(p, PG);
    close(fd);
}

/* ---------------------------------------------------------------- mremap */

TEST(mremap_grow_in_place)
{
    unsigned char *p = map_anon(2 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    ASSERT_EQ(munmap(p + PG, PG), 0);
    p[0] = 42;
    unsigned char *q = mremap(p, PG, 2 * PG, 0);
    EXPECT_TRUE(q == p);
    if (q == p) {
        EXPECT_EQ(p[0], 42);
        EXPECT_TRUE(all_bytes(p + PG, 0, PG));
        p[2 * PG - 1] = 1;
    }
    munmap(p, 2 * PG);
}

TEST(mremap_shrink)
{
    unsigned char *p = map_anon(3 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    memset(p, 7, 3 * PG);
    unsigned char *q = mremap(p, 3 * PG, PG, 0);
    EXPECT_TRUE(q == p);
    EXPECT_TRUE(all_bytes(p, 7, PG));
    EXPECT_EQ(writable_by_kernel(p + PG), 0);
    EXPECT_EQ(writable_by_kernel(p + 2 * PG), 0);
    munmap(p, PG);
}

TEST(mremap_maymove)
{
    unsigned char *p = map_anon(3 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    memset(p, 9, PG);
    /* The page after the first one is in use: can't grow in place. */
    EXPECT_TRUE(mremap(p, PG, 2 * PG, 0) == MAP_FAILED && errno == ENOMEM);
    unsigned char *q = mremap(p, PG, 8 * PG, MREMAP_MAYMOVE);
    ASSERT_TRUE(q != MAP_FAILED);
    EXPECT_TRUE(q != p);
    EXPECT_TRUE(all_bytes(q, 9, PG));
    EXPECT_TRUE(all_bytes(q + PG, 0, 7 * PG));
    /* The old range is gone; its neighbour stays. */
    EXPECT_EQ(writable_by_kernel(p), 0);
    EXPECT_EQ(writable_by_kernel(p + PG), 1);
    munmap(q, 8 * PG);
    munmap(p + PG, 2 * PG);
}

TEST(mremap_fixed)
{
    unsigned char *p = map_anon(PG, PROT_READ | PROT_WRITE);
    unsigned char *t = map_anon(2 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED && t != MAP_FAILED);
    memset(p, 3, PG);
    memset(t, 4, 2 * PG);
    unsigned char *q = mremap(p, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, t);
    EXPECT_TRUE(q == t);
    EXPECT_TRUE(all_bytes(t, 3, PG));
    EXPECT_TRUE(all_bytes(t + PG, 4, PG));
    EXPECT_EQ(writable_by_kernel(p), 0);
    munmap(t, 2 * PG);
}

TEST(mremap_errors)
{
    unsigned char *p = map_anon(2 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_TRUE(mremap(p + 1, PG, 2 * PG, MREMAP_MAYMOVE) == MAP_FAILED &&
                errno == EINVAL);
    EXPECT_TRUE(mremap(p, PG, 0, MREMAP_MAYMOVE) == MAP_FAILED &&
                errno == EINVAL);
    EXPECT_TRUE(mremap(p, PG, 2 * PG, 0x100) == MAP_FAILED &&
                errno == EINVAL);
    /* MREMAP_FIXED requires MREMAP_MAYMOVE. */
    EXPECT_TRUE(mremap(p, PG, PG, MREMAP_FIXED, p + PG) == MAP_FAILED &&
                errno == EINVAL);
    munmap(p, 2 * PG);
    /* Old range not mapped. */
    EXPECT_TRUE(mremap(p, PG, 2 * PG, MREMAP_MAYMOVE) == MAP_FAILED &&
                errno == EFAULT);
}

TEST(mremap_shared_anon_keeps_contents)
{
    unsigned char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    memset(p, 0x11, PG);
    unsigned char *q = mremap(p, PG, 4 * PG, MREMAP_MAYMOVE);
    ASSERT_TRUE(q != MAP_FAILED);
    EXPECT_TRUE(all_bytes(q, 0x11, PG));
    /* Pages past the shmem object's size (1 page) would SIGBUS: not
     * touched here. */
    munmap(q, 4 * PG);
}

/* ---------------------------------------------------------------- brk */

static uintptr_t sys_brk(uintptr_t v)
{
    return (uintptr_t)syscall(SYS_brk, v);
}

TEST(brk_grow_and_shrink)
{
    uintptr_t cur = sys_brk(0);
    ASSERT_GT(cur, 0);
    EXPECT_EQ(sys_brk(0), cur);
    /* Grow by 1 MiB: the new memory is zeroed and usable. */
    uintptr_t want = cur + (1 << 20);
    EXPECT_EQ(sys_brk(want), want);
    EXPECT_EQ(sys_brk(0), want);
    unsigned char *base = (unsigned char *)((cur + PG - 1) & ~(PG - 1));
    EXPECT_TRUE(all_bytes(base, 0, (1 << 20) - PG));
    memset(base, 0xee, (1 << 20) - PG);
    EXPECT_EQ(writable_by_kernel(base + 8 * PG), 1);
    /* Shrink: the pages are released. */
    EXPECT_EQ(sys_brk(cur), cur);
    EXPECT_EQ(writable_by_kernel(base + 8 * PG), 0);
    /* Grow again: fresh zero pages, not the old contents. */
    EXPECT_EQ(sys_brk(want), want);
    EXPECT_TRUE(all_bytes(base, 0, (1 << 20) - PG));
    EXPECT_EQ(sys_brk(cur), cur);
}

TEST(brk_unaligned_and_invalid)
{
    uintptr_t cur = sys_brk(0);
    ASSERT_GT(cur, 0);
    /* An unaligned break is returned as asked. */
    EXPECT_EQ(sys_brk(cur + 1), cur + 1);
    EXPECT_EQ(sys_brk(0), cur + 1);
    EXPECT_EQ(sys_brk(cur + PG + 123), cur + PG + 123);
    EXPECT_EQ(sys_brk(cur), cur);
    /* Below the start of the heap: unchanged (brk never returns -1). */
    EXPECT_EQ(sys_brk(4096), cur);
    /* Far too large: unchanged. */
    EXPECT_EQ(sys_brk(0x7fffffffffffUL), cur);
    EXPECT_EQ(sys_brk(0), cur);
}

TEST(brk_does_not_overwrite_mapping)
{
    uintptr_t cur = sys_brk(0);
    ASSERT_GT(cur, 0);
    uintptr_t next = (cur + PG - 1) & ~(PG - 1);
    /* Put a mapping right after the break; growing into it must fail. */
    unsigned char *m = mmap((void *)(next + 4 * PG), PG,
                            PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                            -1, 0);
    if (m == MAP_FAILED)
        SKIP("address after the break is in use");
    m[0] = 0x77;
    EXPECT_EQ(sys_brk(next + 8 * PG), cur);
    EXPECT_EQ(m[0], 0x77);
    EXPECT_EQ(sys_brk(next + 2 * PG), next + 2 * PG);
    EXPECT_EQ(sys_brk(cur), cur);
    munmap(m, PG);
}

/* ---------------------------------------------------------------- madvise */

TEST(madvise_dontneed_zeroes_anon)
{
    unsigned char *p = map_anon(4 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    memset(p, 0x33, 4 * PG);
    EXPECT_EQ(madvise(p + PG, 2 * PG, MADV_DONTNEED), 0);
    EXPECT_TRUE(all_bytes(p, 0x33, PG));
    EXPECT_TRUE(all_bytes(p + PG, 0, 2 * PG));
    EXPECT_TRUE(all_bytes(p + 3 * PG, 0x33, PG));
    munmap(p, 4 * PG);
}

TEST(madvise_shared_anon_keeps_contents)
{
    unsigned char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    memset(p, 0x44, PG);
    EXPECT_EQ(madvise(p, PG, MADV_DONTNEED), 0);
    EXPECT_TRUE(all_bytes(p, 0x44, PG));
    munmap(p, PG);
}

TEST(madvise_errors)
{
    unsigned char *p = map_anon(2 * PG, PROT_READ | PROT_WRITE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_EQ(madvise(p, 2 * PG, MADV_NORMAL), 0);
    EXPECT_EQ(madvise(p, 2 * PG, MADV_WILLNEED), 0);
    EXPECT_EQ(madvise(p, 0, MADV_DONTNEED), 0);
    EXPECT_ERRNO(madvise(p + 1, PG, MADV_DONTNEED), EINVAL);
    EXPECT_ERRNO(madvise(p, PG, 12345), EINVAL);
    munmap(p, 2 * PG);
    EXPECT_ERRNO(madvise(p, PG, MADV_NORMAL), ENOMEM);
}

/* ---------------------------------------------------------------- misc */

TEST(mmap_prot_none_efault)
{
    unsigned char *p = map_anon(PG, PROT_NONE);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_EQ(writable_by_kernel(p), 0);
    EXPECT_EQ(mprotect(p, PG, PROT_READ | PROT_WRITE), 0);
    EXPECT_TRUE(all_bytes(p, 0, PG));
    EXPECT_EQ(writable_by_kernel(p), 1);
    munmap(p, PG);
}

TEST(mmap_large_noreserve)
{
    size_t len = 1UL << 32; /* 4 GiB of address space, a few pages touched */
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    for (size_t off = 0; off < len; off += len / 8)
        p[off] = 1;
    p[len - 1] = 2;
    EXPECT_EQ(p[len - 1], 2);
    EXPECT_EQ(p[len / 2], 1);
    EXPECT_EQ(p[len / 2 + 1], 0);
    munmap(p, len);
}

TEST(mmap_populate_and_exec)
{
    unsigned char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE | PROT_EXEC,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    EXPECT_TRUE(all_bytes(p, 0, 4 * PG));
    /* A tiny function: mov eax, 42; ret */
    static const unsigned char code[] = {0xb8, 0x2a, 0, 0, 0, 0xc3};
    memcpy(p, code, sizeof code);
    EXPECT_EQ(mprotect(p, 4 * PG, PROT_READ | PROT_EXEC), 0);
    int (*fn)(void) = (int (*)(void))(void *)p;
    EXPECT_EQ(fn(), 42);
    munmap(p, 4 * PG);
}

TEST(stack_is_writable_by_kernel)
{
    char local[64];
    EXPECT_EQ(writable_by_kernel(local), 1);
    static char bss[64];
    EXPECT_EQ(writable_by_kernel(bss), 1);
    /* Text is not writable. */
    EXPECT_EQ(writable_by_kernel((void *)&main), 0);
}

/* fsops.c - file-system microbenchmarks; prints "<ns per operation>" (for
 * getdents: per full scan of the directory, in us).
 * Usage: fsops OP N BASEDIR
 *   stat     stat() of one file
 *   open     open(O_RDONLY) + close of one file
 *   create   open(O_CREAT|O_EXCL|O_WRONLY) + close + unlink of a new file
 *   read4k   pread() of 4 KiB at offset 0 of a 1 MiB file
 *   write4k  pwrite() of 4 KiB at offset 0 of a file
 *   getdents open + getdents64 until the end + close of a directory of
 *            10,000 empty files (created before timing, removed after); us/scan
 * Works in a fresh directory BASEDIR/fsops.XXXXXX (BASEDIR must be writable:
 * /dev/shm natively and in the sandboxes) and removes it again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DIR_ENTRIES 10000

static char dir[256];

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int make_file(const char *path, size_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die(path);
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    for (size_t done = 0; done < size;) {
        size_t k = size - done < sizeof buf ? size - done : sizeof buf;
        if (write(fd, buf, k) != (ssize_t)k)
            die("write");
        done += k;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: fsops OP N BASEDIR\n");
        return 2;
    }
    const char *op = argv[1];
    long n = atol(argv[2]);
    if (n <= 0)
        n = 1;
    snprintf(dir, sizeof dir, "%s/fsops.XXXXXX", argv[3]);
    if (!mkdtemp(dir))
        die(dir);
    if (chdir(dir) != 0)
        die("chdir");
    static char buf[4096];
    char name[64];
    struct stat st;
    double per = 0;
    long long t0, t1;
    int rc = 0;

    if (strcmp(op, "stat") == 0 || strcmp(op, "open") == 0) {
        close(make_file("f", 100));
        int is_stat = op[0] == 's';
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (is_stat) {
                if (stat("f", &st) != 0)
                    die("stat");
            } else {
                int fd = open("f", O_RDONLY);
                if (fd < 0)
                    die("open");
                close(fd);
            }
        }
        t1 = now_ns();
        unlink("f");
        per = (double)(t1 - t0) / (double)n;
    } else if (strcmp(op, "create") == 0) {
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            int fd = open("c", O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd < 0)
                die("create");
            close(fd);
            if (unlink("c") != 0)
                die("unlink");
        }
        t1 = now_ns();
        per = (double)(t1 - t0) / (double)n;
    } else if (strcmp(op, "read4k") == 0 || strcmp(op, "write4k") == 0) {
        int fd = make_file("f", 1 << 20);
        int rd = op[0] == 'r';
        memset(buf, 'y', sizeof buf);
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            ssize_t r = rd ? pread(fd, buf, sizeof buf, 0) : pwrite(fd, buf, sizeof buf, 0);
            if (r != (ssize_t)sizeof buf)
                die(op);
        }
        t1 = now_ns();
        close(fd);
        unlink("f");
        per = (double)(t1 - t0) / (double)n;
    } else if (strcmp(op, "getdents") == 0) {
        if (mkdir("d", 0700) != 0)
            die("mkdir");
        for (int i = 0; i < DIR_ENTRIES; i++) {
            snprintf(name, sizeof name, "d/file-%05d", i);
            int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd < 0)
                die(name);
            close(fd);
        }
        static char dbuf[32768];
        long entries = 0;
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            int fd = open("d", O_RDONLY | O_DIRECTORY);
            if (fd < 0)
                die("open d");
            long got;
            while ((got = syscall(SYS_getdents64, fd, dbuf, sizeof dbuf)) > 0) {
                for (long off = 0; off < got;) {
                    unsigned short reclen;
                    memcpy(&reclen, dbuf + off + 16, sizeof reclen);
                    off += reclen;
                    entries++;
                }
            }
            if (got < 0)
                die("getdents64");
            close(fd);
        }
        t1 = now_ns();
        if (entries != (long)(DIR_ENTRIES + 2) * n) {
            fprintf(stderr, "getdents: %ld entries, expected %ld\n", entries,
                    (long)(DIR_ENTRIES + 2) * n);
            rc = 1;
        }
        for (int i = 0; i < DIR_ENTRIES; i++) {
            snprintf(name, sizeof name, "d/file-%05d", i);
            unlink(name);
        }
        rmdir("d");
        per = (double)(t1 - t0) / (double)n / 1000.0;
    } else {
        fprintf(stderr, "fsops: unknown op %s\n", op);
        rc = 2;
    }
    if (chdir("/") != 0 || rmdir(dir) != 0)
        perror(dir);
    if (rc == 0)
        printf("%.1f\n", per);
    return rc;
}

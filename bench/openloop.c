/* openloop.c - file-system syscall path: N iterations of
 * open("/etc/passwd") + fstat + close; prints "<ns per iteration>".
 * Usage: openloop [N] [PATH]   (default 20000 /etc/passwd) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    const char *path = argc > 2 ? argv[2] : "/etc/passwd";
    struct stat st;
    if (n <= 0)
        n = 1;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0 || fstat(fd, &st) != 0) {
            perror(path);
            return 1;
        }
        close(fd);
    }
    long long t1 = now_ns();
    printf("%.1f\n", (double)(t1 - t0) / (double)n);
    return 0;
}

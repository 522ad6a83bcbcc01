/* readfile.c - bulk read throughput: reads PATH in 1 MiB chunks with read(2)
 * and prints "<MB/s>" (MB = 10^6 bytes) on stdout, the byte count on stderr.
 * Usage: readfile PATH */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: readfile PATH\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    long long total = 0, t0 = now_ns();
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    long long t1 = now_ns();
    if (n < 0) {
        perror("read");
        return 1;
    }
    close(fd);
    double secs = (double)(t1 - t0) / 1e9;
    printf("%.1f\n", secs > 0 ? (double)total / 1e6 / secs : 0.0);
    fprintf(stderr, "%lld bytes\n", total);
    return 0;
}

/* getpid.c - syscall round-trip cost: N raw syscall(SYS_getpid) calls
 * (no libc caching), prints "<ns per call>" on stdout.
 * Usage: getpid [N]   (default 200000) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
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
    long n = argc > 1 ? atol(argv[1]) : 200000;
    if (n <= 0)
        n = 1;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        syscall(SYS_getpid);
    long long t1 = now_ns();
    printf("%.1f\n", (double)(t1 - t0) / (double)n);
    return 0;
}

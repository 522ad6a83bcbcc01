/* pingpong.c - IPC round trip between two processes: a 1-byte message goes
 * parent -> child over one pipe and back over another, N times.
 * Prints "<ns per round trip>" on stdout.
 * Usage: pingpong [N]   (default 20000) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
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
    if (n <= 0)
        n = 1;
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0) {
        perror("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    char c = 'p';
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        while (read(down[0], &c, 1) == 1)
            if (write(up[1], &c, 1) != 1)
                _exit(1);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (write(down[1], &c, 1) != 1 || read(up[0], &c, 1) != 1) {
            fprintf(stderr, "pingpong: short read/write at %ld\n", i);
            return 1;
        }
    }
    long long t1 = now_ns();
    close(down[1]);
    int st;
    waitpid(pid, &st, 0);
    printf("%.1f\n", (double)(t1 - t0) / (double)n);
    return 0;
}

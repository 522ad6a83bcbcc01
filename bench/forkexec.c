/* forkexec.c - process creation cost: N times fork(), execve(PROG) in the
 * child (a static program that exits at once), waitpid() in the parent.
 * Prints "<us per iteration>" on stdout.
 * Usage: forkexec [N] [PROG]   (defaults 200, target/bench/nop next to us) */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200;
    char prog[PATH_MAX];
    if (argc > 2) {
        snprintf(prog, sizeof prog, "%s", argv[2]);
    } else {
        /* "nop" in the same directory as argv[0]. */
        snprintf(prog, sizeof prog, "%s", argv[0]);
        char *slash = strrchr(prog, '/');
        if (slash)
            snprintf(slash + 1, sizeof prog - (size_t)(slash + 1 - prog), "nop");
        else
            snprintf(prog, sizeof prog, "./nop");
    }
    if (n <= 0)
        n = 1;
    char *cargv[] = {prog, NULL};
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            execve(prog, cargv, environ);
            _exit(127);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0) {
            if (errno != EINTR) {
                perror("waitpid");
                return 1;
            }
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "forkexec: %s failed (status 0x%x)\n", prog, st);
            return 1;
        }
    }
    long long t1 = now_ns();
    printf("%.1f\n", (double)(t1 - t0) / 1000.0 / (double)n);
    return 0;
}

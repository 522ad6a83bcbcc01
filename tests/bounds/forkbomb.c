/* Forks children that pause until fork fails; reports the count and errno,
 * then kills and reaps them all. `threads` does the same with pthreads. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX 100000
static pid_t kids[MAX];

static void *idle(void *a) {
    (void)a;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv) {
    int n = 0, err = 0;
    if (argc > 1 && strcmp(argv[1], "threads") == 0) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 65536);
        for (;;) {
            pthread_t t;
            int e = pthread_create(&t, &at, idle, NULL);
            if (e) {
                err = e;
                break;
            }
            if (++n >= MAX)
                break;
        }
        printf("threads %d errno %s\n", n, err == EAGAIN ? "EAGAIN" : strerror(err));
        return err == EAGAIN ? 0 : 1;
    }
    for (; n < MAX; n++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;)
                pause();
        }
        if (p < 0) {
            err = errno;
            break;
        }
        kids[n] = p;
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    int reaped = 0, killed = 0, st;
    while (wait(&st) > 0) {
        reaped++;
        killed += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    }
    printf("forked %d errno %s reaped %d killed %d\n", n, err == EAGAIN ? "EAGAIN" : strerror(err),
           reaped, killed);
    return err == EAGAIN && reaped == n && killed == n ? 0 : 1;
}

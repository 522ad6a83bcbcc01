/* mutexpp.c - thread wake-up round trip: two threads take turns through a
 * pthread mutex + condition variable (futex WAIT/WAKE underneath), N round
 * trips. Prints "<ns per round trip>" on stdout.
 * Usage: mutexpp [N]   (default 20000) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn; /* 0: main's turn, 1: the other thread's */
static long rounds;

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *other(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (long i = 0; i < rounds; i++) {
        while (turn != 1)
            pthread_cond_wait(&cv, &mu);
        turn = 0;
        pthread_cond_signal(&cv);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atol(argv[1]) : 20000;
    if (rounds <= 0)
        rounds = 1;
    pthread_t t;
    if (pthread_create(&t, NULL, other, NULL) != 0) {
        fprintf(stderr, "mutexpp: pthread_create failed\n");
        return 1;
    }
    long long t0 = now_ns();
    pthread_mutex_lock(&mu);
    for (long i = 0; i < rounds; i++) {
        turn = 1;
        pthread_cond_signal(&cv);
        while (turn != 0)
            pthread_cond_wait(&cv, &mu);
    }
    pthread_mutex_unlock(&mu);
    long long t1 = now_ns();
    pthread_join(t, NULL);
    printf("%.1f\n", (double)(t1 - t0) / (double)rounds);
    return 0;
}

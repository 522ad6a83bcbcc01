/*
 * sigwatch.c - the HOST process that escape attempts try to signal
 * (tests/tests/escape.rs runs it on the host as $HOST_SLEEPER).
 *
 * Catches every catchable signal and appends "<signo>\n" to the log file
 * argv[1] (the driver checks that it stays empty); SIGKILL and SIGSTOP are
 * seen by the driver as a dead or stopped process. Prints "ready" on stdout
 * once the handlers are installed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int logfd = -1;

static void on_signal(int sig)
{
    char b[16];
    int n = snprintf(b, sizeof b, "%d\n", sig);
    if (write(logfd, b, n) < 0)
        _exit(3);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    logfd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    for (int s = 1; s < 65; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}

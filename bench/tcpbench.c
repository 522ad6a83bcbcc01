/* tcpbench.c - TCP over the loopback (127.0.0.1), between two processes.
 *
 *   tcpbench throughput [MIB]  the child sends MIB MiB (default 256) in 64 KiB
 *                              writes, the parent reads them; prints MB/s
 *                              (10^6 bytes/s, connect to EOF)
 *   tcpbench rtt [N]           1-byte ping-pong (TCP_NODELAY), N round trips
 *                              (default 20000); prints ns per round trip
 *   tcpbench freeport          prints a TCP port free on 127.0.0.1 now
 *
 * The number is the last line of stdout; errors go to stderr, exit 1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* A listener on 127.0.0.1 at an ephemeral port; its address in *a. */
static int listener(struct sockaddr_in *a)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0)
        die("socket");
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *a;
    if (bind(l, (struct sockaddr *)a, sizeof *a) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)a, &len) < 0)
        die("bind/listen");
    return l;
}

static int connect_to(const struct sockaddr_in *a)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (const struct sockaddr *)a, sizeof *a) < 0)
        die("connect");
    return c;
}

static void nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        die("TCP_NODELAY");
}

static int reap(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "tcpbench: the child failed\n");
        return 1;
    }
    return 0;
}

static int throughput(long mib)
{
    struct sockaddr_in a;
    int l = listener(&a);
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(l);
        int c = connect_to(&a);
        static char buf[65536];
        memset(buf, 'x', sizeof buf);
        long long left = (long long)mib << 20;
        while (left > 0) {
            ssize_t n = write(c, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
            if (n <= 0)
                _exit(1);
            left -= n;
        }
        _exit(close(c) == 0 ? 0 : 1);
    }
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("accept");
    static char buf[65536];
    long long got = 0;
    for (;;) {
        ssize_t n = read(s, buf, sizeof buf);
        if (n < 0)
            die("read");
        if (n == 0)
            break;
        got += n;
    }
    long long t1 = now_ns();
    if (reap(pid))
        return 1;
    if (got != (long long)mib << 20) {
        fprintf(stderr, "tcpbench: got %lld bytes, want %lld\n", got, (long long)mib << 20);
        return 1;
    }
    printf("%.1f\n", (double)got / ((double)(t1 - t0) / 1e9) / 1e6);
    return 0;
}

static int rtt(long n)
{
    struct sockaddr_in a;
    int l = listener(&a);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(l);
        int c = connect_to(&a);
        nodelay(c);
        char ch;
        while (read(c, &ch, 1) == 1)
            if (write(c, &ch, 1) != 1)
                _exit(1);
        _exit(0);
    }
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("accept");
    nodelay(s);
    char ch = 'p';
    /* One untimed trip: the child is connected and running. */
    if (write(s, &ch, 1) != 1 || read(s, &ch, 1) != 1)
        die("warm-up");
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (write(s, &ch, 1) != 1 || read(s, &ch, 1) != 1)
            die("ping-pong");
    long long t1 = now_ns();
    close(s);
    if (reap(pid))
        return 1;
    printf("%.0f\n", (double)(t1 - t0) / (double)n);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    long arg = argc > 2 ? atol(argv[2]) : 0;
    if (strcmp(mode, "throughput") == 0)
        return throughput(arg > 0 ? arg : 256);
    if (strcmp(mode, "rtt") == 0)
        return rtt(arg > 0 ? arg : 20000);
    if (strcmp(mode, "freeport") == 0) {
        struct sockaddr_in a;
        int l = listener(&a);
        printf("%d\n", ntohs(a.sin_port));
        close(l);
        return 0;
    }
    fprintf(stderr, "usage: tcpbench throughput [MIB] | rtt [N] | freeport\n");
    return 2;
}

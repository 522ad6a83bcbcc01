/* RLIMIT_NOFILE: open is EMFILE at the limit, dup2 past it EBADF, F_DUPFD
 * past it EINVAL. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

int main(void) {
    struct rlimit r = {16, 16};
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
        perror("setrlimit");
        return 1;
    }
    int n = 0, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0)
        n++;
    if (errno != EMFILE) {
        printf("FAIL: open errno %d after %d\n", errno, n);
        return 1;
    }
    if (dup2(0, 16) != -1 || errno != EBADF) {
        printf("FAIL: dup2 past the limit: errno %d\n", errno);
        return 1;
    }
    if (fcntl(0, F_DUPFD, 16) != -1 || errno != EINVAL) {
        printf("FAIL: F_DUPFD past the limit: errno %d\n", errno);
        return 1;
    }
    if (dup(0) != -1 || errno != EMFILE) {
        printf("FAIL: dup at the limit: errno %d\n", errno);
        return 1;
    }
    printf("nofile ok: %d opened\n", n);
    return 0;
}

/* Memory bounds: `touch` allocates and touches 1 MiB chunks until malloc fails
 * (prints "ENOMEM after N MiB", exit 3) or the sandbox's OOM killer kills it;
 * `reserve` checks commit accounting: a huge writable private mapping is
 * ENOMEM, a PROT_NONE reservation is not, until mprotect makes it writable;
 * MAP_NORESERVE is not; one malloc larger than the limit is. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int touch(void) {
    size_t chunk = 1 << 20, total = 0;
    for (int i = 0; i < 8192; i++) {
        char *p = malloc(chunk);
        if (!p) {
            printf("ENOMEM after %zu MiB\n", total >> 20);
            return 3;
        }
        memset(p, 1, chunk);
        total += chunk;
    }
    printf("allocated %zu MiB: not bounded\n", total >> 20);
    return 0;
}

static int reserve(void) {
    size_t big = (size_t)4 << 30;
    void *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED || errno != ENOMEM) {
        printf("FAIL: 4 GiB read-write mmap: %p errno %d\n", p, errno);
        return 1;
    }
    p = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("FAIL: 4 GiB PROT_NONE reservation: errno %d\n", errno);
        return 1;
    }
    if (mprotect(p, 1 << 20, PROT_READ | PROT_WRITE) != 0) {
        printf("FAIL: mprotect 1 MiB of it: errno %d\n", errno);
        return 1;
    }
    memset(p, 1, 1 << 20);
    if (mprotect(p, big, PROT_READ | PROT_WRITE) == 0 || errno != ENOMEM) {
        printf("FAIL: mprotect 4 GiB writable: errno %d\n", errno);
        return 1;
    }
    /* MAP_NORESERVE commits nothing, even writable. */
    void *q = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (q == MAP_FAILED) {
        printf("FAIL: 4 GiB MAP_NORESERVE: errno %d\n", errno);
        return 1;
    }
    munmap(q, big);
    /* One request larger than the sandbox's memory fails (heuristic
     * overcommit); several smaller ones, untouched, do not. */
    if (malloc(100 << 20) != NULL) {
        printf("FAIL: malloc of 100 MiB\n");
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        if (malloc(48 << 20) == NULL) {
            printf("FAIL: malloc %d of 48 MiB\n", i);
            return 1;
        }
    }
    void *b = sbrk(0);
    if (sbrk((intptr_t)big) != (void *)-1 || sbrk(0) != b) {
        printf("FAIL: sbrk 4 GiB\n");
        return 1;
    }
    printf("reserve ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "reserve") == 0)
        return reserve();
    return touch();
}

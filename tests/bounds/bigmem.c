/* Touches 4 GiB of anonymous memory in 1 GiB steps, freeing each step before
 * the next: mmap(MAP_ANONYMOUS) + write every page + verify a sample +
 * munmap, then the same through malloc/free (glibc serves 1 GiB with mmap
 * too, so the memory goes back at free). The sentry's memory must stay
 * bounded by about one step (tests/tests/scale.rs watches it from the host).
 * Usage: bigmem [steps=4] [step MiB=1024]. Exit 0 and one line per step. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int touch(unsigned char *p, size_t len, unsigned step) {
  long page = sysconf(_SC_PAGESIZE);
  for (size_t off = 0; off < len; off += page)
    *(uint64_t *)(p + off) = (off / page) * 2654435761u + step;
  /* Verify a spread of pages (first, last, and every 4099th). */
  for (size_t off = 0; off < len; off += (size_t)page * 4099) {
    if (*(uint64_t *)(p + off) != (off / page) * 2654435761u + step) {
      printf("step %u: page at offset %zu corrupted\n", step, off);
      return -1;
    }
  }
  size_t last = len - page;
  if (*(uint64_t *)(p + last) != (last / page) * 2654435761u + step) {
    printf("step %u: last page corrupted\n", step);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  unsigned steps = argc > 1 ? atoi(argv[1]) : 4;
  size_t mib = argc > 2 ? atoi(argv[2]) : 1024;
  size_t len = mib << 20;
  for (unsigned s = 0; s < steps; s++) {
    int use_malloc = s % 2 == 1;
    unsigned char *p;
    if (use_malloc) {
      p = malloc(len);
      if (!p) {
        printf("step %u: malloc(%zu MiB) failed\n", s, mib);
        return 1;
      }
    } else {
      p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        printf("step %u: mmap(%zu MiB) failed\n", s, mib);
        return 1;
      }
    }
    if (touch(p, len, s))
      return 2;
    if (use_malloc) {
      free(p);
    } else if (munmap(p, len)) {
      perror("munmap");
      return 3;
    }
    printf("step %u: %zu MiB %s, touched, verified, freed\n", s, mib,
           use_malloc ? "malloc" : "mmap");
    fflush(stdout);
  }
  printf("%u steps, %zu MiB touched in all\n", steps, steps * mib);
  return 0;
}

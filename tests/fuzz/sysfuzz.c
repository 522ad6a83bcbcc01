/*
 * sysfuzz: a random system call fuzzer for the sandbox (issue 6).
 *
 *   sysfuzz [-v] [-w WORKERS] [-b BATCH] [-i FIRST_WORKER] SEED COUNT
 *
 * Issues COUNT random system calls (random numbers 0..~460 and beyond, random
 * integer and flag arguments, pointers that are NULL, small, unmapped, kernel,
 * non-canonical, or into guarded buffers of random bytes). 40% of the calls
 * are "structured": a real syscall with plausible arguments (the worker's
 * real fds of many kinds, real paths, iovec arrays, file-backed mappings in a
 * scratch region and truncations under them, futexes, epoll, fcntl/ioctl
 * commands, splice, signal handlers on alternate stacks and signals to
 * deliver on them, timers, poll/select, process_vm_* on itself, robust lists
 * and rseq areas), to get past the first argument checks. Half of the
 * workers run a second thread (a raw CLONE_THREAD clone) fuzzing the same
 * process concurrently. At the end it prints
 *
 *   sysfuzz: seed S: N syscalls issued by W worker processes (D died by a signal, K killed as stuck)
 *
 * and exits 0. The calls are made by worker processes that the parent forks
 * (at most WORKERS at a time, each issuing at most BATCH calls, then _exit(0)).
 * A worker that dies (a signal it provoked, a watchdog kill) is counted and
 * replaced; the calls it did not get to are handed to the next worker. Worker
 * i's random stream is derived from (SEED, i) only, so a run is reproducible
 * up to timing; with -v each worker logs every call on stderr before making it
 * (`sysfuzz -v -w 1 SEED COUNT 2>log` then the tail of the log names the call
 * that killed or wedged the sandbox), and the parent prints the last calls of
 * a worker that died or got stuck (kept in shared memory, so they survive the
 * worker closing its log fd); -i K starts at worker K, to replay one
 * worker's stream alone: `sysfuzz -v -w 1 -i K SEED N`.
 *
 * Run it only in the sandbox, never natively as root: its random calls
 * (mount, settimeofday, sethostname, swapoff, ...) would change the host.
 *
 * The parent is the sandbox's init (PID 1 under `runsc do`) and reaps every
 * process that ends up as its child (workers' orphans too).
 *
 * What the fuzzer deliberately does NOT let a worker do (it would test the
 * fuzzer, not the kernel): exit/exit_group (except to end a forked child),
 * execve/execveat, rt_sigreturn, vfork and CLONE_VM/CLONE_SETTLS clones (the
 * flags are stripped), signals or ptrace/prlimit/process_vm_* aimed at the
 * parent or at every process (pid arguments never name the parent and kill's
 * -1 becomes the worker itself), SIGSTOP-like signals, munmap/mprotect/mremap/
 * madvise/MAP_FIXED/shmat on anything but a scratch region (or on addresses
 * that map nothing: NULL, low, kernel, non-canonical), brk, arch_prctl
 * (ARCH_SET_FS), seccomp/PR_SET_SECCOMP filters, PR_SET_MM, changes of
 * SIGALRM's disposition or mask (a periodic ITIMER_REAL SIGALRM with a
 * non-SA_RESTART handler breaks every blocking call with EINTR), ITIMER_REAL/
 * alarm, and huge fallocate/MAP_POPULATE/mlock (they would allocate real host
 * memory). Workers' stdio is /dev/null, so their writes cannot reach the
 * parent's output. The parent kills a worker that makes no progress for
 * STUCK_MS (e.g. blocked with SIGALRM masked some other way, or a signal
 * livelock from a timer it armed: legitimate, and Linux behaves the same).
 * Signal frames and other kernel writes can only land in the buffers or the
 * scratch region: alternate stacks are moved there, and the parent trusts
 * the shared slots only for progress counts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_WORKERS 16
#define NBUF 8
#define BUFSZ 8192
#define SCRATCH_SIZE (16UL << 20)
#define STUCK_MS 1500
#define MAXNR 470
#define RING 24

/* ---- random numbers (splitmix64 / xorshift) ---- */

/* One random state per thread of a worker: [0] the main thread, [1] the
 * second thread (told apart by the stack they run on; they share TLS). */
static uint64_t rngs[2];
static char *tstack;
#define TSTACK_SIZE (256UL << 10)

static uint64_t *rng_state(void) {
  char here;
  return (uintptr_t)&here - (uintptr_t)tstack < TSTACK_SIZE ? &rngs[1] : &rngs[0];
}

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t rnd(void) {
  uint64_t *r = rng_state();
  uint64_t x = *r;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *r = x;
  return x;
}

static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static int chance(int percent) { return (int)below(100) < percent; }

/* ---- raw syscalls (no errno, no TLS) ---- */

static long raw6(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

static void raw_exit(int code) {
  for (;;)
    raw6(SYS_exit, code, 0, 0, 0, 0, 0);
}

/* ---- worker state ---- */

struct slot {
  volatile uint64_t issued; /* calls made by the worker in this slot */
  volatile uint64_t assigned;
  volatile int pid;
  volatile int idx; /* the worker's index (its random stream) */
  volatile long last_nr; /* the call in progress (or last made) */
  volatile uint64_t last_args[6];
  volatile uint64_t fault_addr, fault_ip; /* of a fatal fault, for -v */
  /* The last RING calls (number, args, result), for -v reports. */
  volatile uint64_t ring[RING][8];
};

static struct slot *slots; /* MAP_SHARED, one per worker slot */
static int verbose;
static int logfd = -1;
static pid_t parent_pid, my_pid;
static char *bufs[NBUF];     /* each BUFSZ bytes followed by a PROT_NONE page */
static char *scratch;        /* SCRATCH_SIZE, PROT_NONE until workers map it */
static int fds[32];
static int nfds;

static const char *const paths[] = {
    "/proc/self/maps", "/proc/self/status", "/proc/self/stat", "/proc/self/fd",
    "/proc/self/mem",  "/proc/self/cmdline", "/proc/self/exe", "/proc",
    "/proc/self/task", "/proc/mounts", "/dev/null", "/dev/zero", "/dev/full",
    "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/shm", "/tmp", "/", ".",
    "..", "", "fz", "fz/a", "../fz", "/etc/passwd", "/etc", "/sys",
    "/proc/self/root", "/proc/self/cwd", "/nonexistent/x", "fzlink",
};

static void wlog(const char *fmt, ...) {
  char b[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof b - 1)
    n = sizeof b - 1;
  raw6(SYS_write, logfd, (long)b, n, 0, 0, 0);
}

static void fill_random(char *p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rnd();
    memcpy(p + i, &v, n - i < 8 ? n - i : 8);
  }
}

/* Re-randomizes the buffers: random bytes, sometimes a path, sometimes
 * pointers into other buffers (for iovecs, msghdrs, pointer arrays). */
static void refill_buffer(int i) {
  char *b = bufs[i];
  fill_random(b, BUFSZ);
  switch (below(6)) {
  case 0: {
    const char *p = paths[below(sizeof paths / sizeof paths[0])];
    memcpy(b, p, strlen(p) + 1);
    break;
  }
  case 1: /* a plausible iovec/pointer array: (ptr, small len) pairs */
    for (int k = 0; k + 16 <= 512; k += 16) {
      uint64_t ptr = (uint64_t)(bufs[below(NBUF)] + below(BUFSZ));
      uint64_t len = below(4) ? below(256) : rnd();
      memcpy(b + k, &ptr, 8);
      memcpy(b + k + 8, &len, 8);
    }
    break;
  case 2: /* mostly zeros: small structs with a few set fields */
    memset(b, 0, BUFSZ);
    for (int k = 0; k < 8; k++)
      b[below(256)] = (char)rnd();
    break;
  default:
    break;
  }
}

/* A pointer argument. */
static uint64_t rand_ptr(void) {
  switch (below(16)) {
  case 0:
    return 0;
  case 1:
    return below(0x10000);
  case 2:
    return 0xffff800000000000ULL + below(1ULL << 40);
  case 3:
    return 0x0000800000000000ULL + (rnd() & 0x00007fffffffffffULL); /* non-canonical */
  case 4:
    return rnd();
  case 5:
    return (uint64_t)scratch + below(SCRATCH_SIZE);
  case 6:
    return 0x7ffffffff000ULL + below(0x1000); /* top of user space */
  case 7: /* the last bytes before a guard page */
    return (uint64_t)bufs[below(NBUF)] + BUFSZ - below(64);
  default:
    return (uint64_t)bufs[below(NBUF)] + (below(2) ? 0 : below(BUFSZ));
  }
}

/* A pid-like argument that never names the parent (or, for kill, everyone). */
static long rand_pid(void) {
  long v;
  switch (below(8)) {
  case 0:
    v = 0;
    break;
  case 1:
  case 2:
    v = my_pid;
    break;
  case 3:
    v = -my_pid;
    break;
  case 4:
    v = 99999 + below(10);
    break;
  case 5:
    v = (long)(int)rnd();
    break;
  default:
    v = my_pid + 1 + below(4); /* likely a child */
    break;
  }
  if (v == -1 || v == parent_pid || v == -parent_pid || v == 1 || v == -1)
    v = my_pid;
  return v;
}

static long rand_fd(void) {
  switch (below(8)) {
  case 0:
    return -1;
  case 1:
    return -100; /* AT_FDCWD */
  case 2:
    return below(64);
  case 3:
    return (long)(int)rnd();
  default:
    return nfds ? fds[below(nfds)] : 0;
  }
}

static uint64_t rand_len(void) {
  switch (below(8)) {
  case 0:
    return 0;
  case 1:
    return below(16);
  case 2:
    return below(BUFSZ);
  case 3:
    return 4096 * (1 + below(16));
  case 4:
    return rnd();
  case 5:
    return 1ULL << below(64);
  case 6:
    return (1ULL << below(64)) - 1;
  default:
    return below(256);
  }
}

/* A generic argument: integer, flags, length, fd or pointer. */
static uint64_t rand_arg(void) {
  switch (below(12)) {
  case 0:
    return 0;
  case 1:
    return below(8);
  case 2:
    return (uint64_t)-1;
  case 3:
    return rnd() & 0xfffff; /* flag-ish */
  case 4:
    return 1ULL << below(64);
  case 5:
    return (uint64_t)rand_fd();
  case 6:
    return rand_len();
  case 7:
    return (uint32_t)rnd();
  case 8:
    return rnd();
  default:
    return rand_ptr();
  }
}

/* An address for calls that unmap/modify memory: the scratch region, or
 * addresses where nothing of ours is mapped. */
static uint64_t rand_mm_addr(void) {
  switch (below(8)) {
  case 0:
    return 0;
  case 1:
    return below(0x10000) & ~0xfffULL;
  case 2:
    return 0xffff800000000000ULL;
  case 3:
    return 0x0000800000000000ULL + (below(1ULL << 40) << 12);
  case 4:
    return (uint64_t)scratch + below(SCRATCH_SIZE); /* unaligned */
  default:
    return (uint64_t)scratch + (below(SCRATCH_SIZE / 4096) << 12);
  }
}

/* A length for such calls: within the scratch region from addr, or so
 * large that the kernel must reject it (never one reaching our mappings). */
static uint64_t rand_mm_len(uint64_t addr) {
  uint64_t s = (uint64_t)scratch;
  if (below(5) == 0)
    return below(4) ? ((uint64_t)-1 - below(0x10000)) : (1ULL << (48 + below(16)));
  if (addr >= s && addr < s + SCRATCH_SIZE) {
    uint64_t room = s + SCRATCH_SIZE - addr;
    return below(2) ? below(room + 1) : (below(room / 4096 + 1) << 12);
  }
  if (addr < 0x10000)
    return below(0x10000 - addr + 1);
  return below(1ULL << 30);
}

static void clear_sigalrm_bit(uint64_t p) {
  for (int i = 0; i < NBUF; i++) {
    uint64_t b = (uint64_t)bufs[i];
    if (p >= b && p <= b + BUFSZ - 8) {
      uint64_t m;
      memcpy(&m, (void *)p, 8);
      m &= ~(1ULL << (SIGALRM - 1));
      memcpy((void *)p, &m, 8);
    }
  }
}

static int bad_signal(long sig) {
  sig &= 0xffffffff;
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU ||
         (sig == SIGKILL && !chance(10));
}

/* Makes the call safe for the fuzzer. Returns 0 to skip this number. */
static int sanitize(long nr, uint64_t a[6]) {
  switch (nr) {
  case SYS_exit:
  case SYS_exit_group:
  case SYS_execve:
  case SYS_execveat:
  case SYS_rt_sigreturn:
  case SYS_brk:
  case SYS_pause: /* no timeout: the alarm breaks it, but it is pointless */
  case SYS_alarm:
  case SYS_arch_prctl: /* ARCH_SET_FS breaks TLS */
  case SYS_reboot:
  case SYS_vhangup:
  case SYS_setsid: /* harmless, but setsid then setpgid juggling can join the parent's group */
    return 0;
  case SYS_vfork:
    return 0;
  case SYS_clone: /* clone(flags, stack, ptid, ctid, tls) */
    a[0] &= ~(uint64_t)(CLONE_VM | CLONE_VFORK | CLONE_SETTLS | CLONE_THREAD |
                        CLONE_SIGHAND);
    a[1] = 0;
    if (bad_signal(a[0] & 0xff))
      a[0] = (a[0] & ~0xffULL) | SIGCHLD;
    break;
  case SYS_clone3: {
    if (chance(50))
      break; /* random pointer / size: must fail cleanly */
    uint64_t *ca = (uint64_t *)bufs[0];
    memset(ca, 0, 88);
    ca[0] = rnd() & ~(uint64_t)(CLONE_VM | CLONE_VFORK | CLONE_SETTLS |
                                CLONE_THREAD | CLONE_SIGHAND);
    ca[4] = below(2) ? SIGCHLD : below(70); /* exit_signal */
    if (bad_signal((long)ca[4]))
      ca[4] = SIGCHLD;
    if (chance(30))
      ca[1] = rand_ptr(); /* pidfd */
    a[0] = (uint64_t)ca;
    a[1] = below(4) ? 88 : rand_len();
    break;
  }
  case SYS_kill:
  case SYS_tkill:
    a[0] = rand_pid();
    if (bad_signal(a[1]))
      a[1] = 0;
    break;
  case SYS_tgkill:
    a[0] = rand_pid();
    a[1] = rand_pid();
    if (bad_signal(a[2]))
      a[2] = 0;
    break;
  case SYS_rt_sigqueueinfo:
    a[0] = rand_pid();
    if (bad_signal(a[1]))
      a[1] = 0;
    break;
  case SYS_rt_tgsigqueueinfo:
    a[0] = rand_pid();
    a[1] = rand_pid();
    if (bad_signal(a[2]))
      a[2] = 0;
    break;
  case SYS_pidfd_send_signal:
    if (bad_signal(a[1]))
      a[1] = 0;
    break;
  case SYS_ptrace:
  case SYS_process_vm_readv:
  case SYS_process_vm_writev:
  case SYS_prlimit64:
  case SYS_wait4:
  case SYS_getpgid:
  case SYS_getsid:
  case SYS_sched_setaffinity:
  case SYS_sched_getaffinity:
  case SYS_sched_setparam:
  case SYS_sched_getparam:
  case SYS_sched_setscheduler:
  case SYS_sched_getscheduler:
  case SYS_sched_rr_get_interval:
  case SYS_sched_setattr:
  case SYS_sched_getattr:
  case SYS_pidfd_open:
  case SYS_kcmp:
  case SYS_get_robust_list:
  case SYS_move_pages:
  case SYS_migrate_pages:
  case SYS_capset:
  case SYS_capget:
    if (nr == SYS_ptrace) {
      a[1] = rand_pid();
    } else if (nr == SYS_kcmp) {
      a[0] = rand_pid();
      a[1] = rand_pid();
    } else if (nr != SYS_capset && nr != SYS_capget) {
      a[0] = rand_pid();
    }
    break;
  case SYS_setpgid: /* setpgid(pid, pgid): only ourselves and our children */
    a[0] = rand_pid();
    a[1] = below(2) ? 0 : (uint64_t)rand_pid();
    break;
  case SYS_setpriority:
  case SYS_getpriority:
  case SYS_ioprio_set:
  case SYS_ioprio_get:
    a[1] = rand_pid();
    break;
  case SYS_waitid: /* waitid(idtype, id, ...): P_ALL is fine, ids are ours */
    a[1] = rand_pid();
    break;
  case SYS_sigaltstack: /* a stack among our buffers: move it to the scratch region */
    for (int i = 0; i < NBUF; i++) {
      uint64_t b = (uint64_t)bufs[i];
      if (a[0] >= b && a[0] <= b + BUFSZ - 24) {
        uint64_t *ss = (uint64_t *)a[0];
        uint64_t sp = rand_mm_addr(), size = rand_mm_len(sp);
        memcpy(&ss[0], &sp, 8);
        memcpy(&ss[2], &size, 8);
      }
    }
    break;
  case SYS_rt_sigaction:
    if ((a[0] & 0xffffffff) == SIGALRM)
      a[0] = SIGUSR2;
    break;
  case SYS_rt_sigprocmask:
    clear_sigalrm_bit(a[1]);
    break;
  case SYS_rt_sigsuspend:
  case SYS_ppoll:
  case SYS_epoll_pwait:
  case SYS_epoll_pwait2:
    clear_sigalrm_bit(nr == SYS_rt_sigsuspend ? a[0] : nr == SYS_ppoll ? a[3] : a[4]);
    break;
  case SYS_setitimer:
    if ((a[0] & 0xffffffff) == ITIMER_REAL)
      a[0] = ITIMER_VIRTUAL;
    break;
  case SYS_munmap:
  case SYS_mprotect:
  case SYS_madvise:
  case SYS_mlock:
  case SYS_munlock:
  case SYS_msync:
  case SYS_mincore:
  case SYS_remap_file_pages:
  case SYS_mbind:
  case SYS_pkey_mprotect:
  case SYS_mlock2:
    a[0] = rand_mm_addr();
    a[1] = rand_mm_len(a[0]);
    if ((nr == SYS_mlock || nr == SYS_mlock2) && a[1] > (1UL << 20) && a[1] < (1ULL << 48))
      a[1] = 1UL << 20;
    break;
  case SYS_mlockall:
    return 0;
  case SYS_mremap: /* mremap(old, old_len, new_len, flags, new_addr) */
    a[0] = rand_mm_addr();
    a[1] = rand_mm_len(a[0]);
    a[2] = below(2) ? rand_len() : rand_mm_len(a[0]);
    a[4] = rand_mm_addr();
    if (a[3] & 2) /* MREMAP_FIXED: the new range is unmapped first */
      a[2] = rand_mm_len(a[4]);
    break;
  case SYS_mmap: /* mmap(addr, len, prot, flags, fd, off) */
    if (a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
      a[0] = rand_mm_addr();
      if (a[1] < (1ULL << 48))
        a[1] = rand_mm_len(a[0]);
    }
    if (a[1] > (16UL << 20))
      a[3] &= ~(uint64_t)(MAP_POPULATE | MAP_LOCKED);
    if (chance(30))
      a[3] = (a[3] & (MAP_FIXED | MAP_POPULATE | MAP_NORESERVE | MAP_GROWSDOWN)) |
             (below(2) ? MAP_PRIVATE : MAP_SHARED) | (below(2) ? MAP_ANONYMOUS : 0);
    if (a[1] > (16UL << 20))
      a[3] &= ~(uint64_t)(MAP_POPULATE | MAP_LOCKED);
    break;
  case SYS_shmat:
    a[1] = rand_mm_addr();
    a[2] &= ~(uint64_t)040000; /* SHM_REMAP could map over more than the scratch region */
    break;
  case SYS_fallocate: /* fallocate(fd, mode, off, len) */
  case SYS_fadvise64:
    if (a[3] > (16UL << 20) && a[3] < (1ULL << 62))
      a[3] = below(16UL << 20);
    if (a[2] > (1ULL << 40) && a[2] < (1ULL << 62))
      a[2] = below(1ULL << 30);
    break;
  case SYS_prctl:
    if ((a[0] & 0xffffffff) == PR_SET_SECCOMP || (a[0] & 0xffffffff) == 35 /* PR_SET_MM */)
      return 0;
    break;
  case SYS_seccomp:
    if ((a[0] & 0xffffffff) <= 1)
      return 0;
    break;
  case SYS_close:
  case SYS_close_range:
  case SYS_dup2:
  case SYS_dup3:
    /* fine: the worker's fds are its own (stdio is /dev/null) */
    break;
  case SYS_io_uring_setup: /* may map rings at hinted addresses */
    break;
  case SYS_setrlimit:
    /* RLIMIT_CPU would SIGKILL the worker later: harmless but slow. */
    break;
  case SYS_unshare:
  case SYS_setns:
    break;
  }
  return 1;
}

static void on_alarm(int sig);
void sysfuzz_restorer(void);
static void (*const on_alarm_ptr)(int) = on_alarm;
static void (*const restorer_ptr)(void) = sysfuzz_restorer;

static uint64_t valid_fd(void) { return nfds ? (uint64_t)fds[below(nfds)] : 0; }
static uint64_t buf_ptr(void) { return (uint64_t)bufs[below(NBUF)] + below(BUFSZ); }

/* A path: one of ours, in a buffer (so the kernel reads it from our memory). */
static uint64_t path_ptr(void) {
  char *b = bufs[below(NBUF)];
  const char *p = paths[below(sizeof paths / sizeof paths[0])];
  size_t n = strlen(p);
  char *at = b + BUFSZ - n - 1 - below(64); /* near the guard page */
  memcpy(at, p, n + 1);
  if (chance(5)) /* unterminated, running into the guard page */
    at = b + BUFSZ - n, memcpy(at, p, n);
  return (uint64_t)at;
}

/* An iovec array of `n` entries in a buffer, pointing at buffers, scratch
 * or bad addresses. */
static uint64_t iov_ptr(int n) {
  char *b = bufs[below(NBUF)];
  uint64_t *v = (uint64_t *)(b + (below(2) ? 0 : BUFSZ - 16 * (uint64_t)n));
  for (int k = 0; k < n; k++) {
    v[2 * k] = below(4) ? buf_ptr() : rand_ptr();
    v[2 * k + 1] = below(4) ? below(512) : rand_len();
  }
  return (uint64_t)v;
}

/* Calls with plausible arguments, to get past the first checks into the
 * kernel's deeper paths. Returns the syscall number. */
static long structured(uint64_t a[6]) {
  switch (below(24)) {
  case 0: { /* read/write family on real fds */
    static const long nrs[] = {SYS_read, SYS_write, SYS_pread64, SYS_pwrite64};
    a[0] = valid_fd();
    a[1] = below(3) ? buf_ptr() : rand_ptr();
    a[2] = below(4) ? below(BUFSZ) : rand_len();
    a[3] = below(2) ? below(1 << 20) : rnd();
    return nrs[below(4)];
  }
  case 1: { /* vectored I/O */
    static const long nrs[] = {SYS_readv, SYS_writev, SYS_preadv, SYS_pwritev, SYS_preadv2,
                               SYS_pwritev2};
    int n = (int)below(20);
    a[0] = valid_fd();
    a[1] = iov_ptr(n);
    a[2] = below(8) ? (uint64_t)n : rand_arg();
    a[3] = below(2) ? 0 : rnd();
    a[4] = below(2) ? 0 : rnd();
    a[5] = below(2) ? 0 : (rnd() & 0x1f);
    return nrs[below(6)];
  }
  case 2: /* file-backed and anonymous mappings in the scratch region */
    a[0] = rand_mm_addr();
    a[1] = rand_mm_len(a[0]);
    a[2] = below(8);
    a[3] = MAP_FIXED | (below(2) ? MAP_SHARED : MAP_PRIVATE) | (below(3) ? 0 : MAP_ANONYMOUS) |
           (below(8) ? 0 : MAP_GROWSDOWN);
    a[4] = valid_fd();
    a[5] = below(4) ? (below(32) << 12) : rnd();
    return SYS_mmap;
  case 3: /* resize the files behind those mappings */
    a[0] = valid_fd();
    a[1] = below(4) ? below(1 << 18) : rnd();
    return SYS_ftruncate;
  case 4: { /* madvise with real advice values */
    static const uint64_t adv[] = {0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 25, 100};
    a[0] = rand_mm_addr();
    a[1] = rand_mm_len(a[0]);
    a[2] = adv[below(sizeof adv / sizeof adv[0])];
    return SYS_madvise;
  }
  case 5: /* mremap in the scratch region */
    a[0] = rand_mm_addr();
    a[1] = rand_mm_len(a[0]);
    a[4] = rand_mm_addr();
    a[2] = rand_mm_len(a[4] < a[0] ? a[4] : a[0]);
    a[3] = below(8);
    return SYS_mremap;
  case 6: /* memory-touching calls into the scratch region (mapped or not) */
    a[0] = valid_fd();
    a[1] = (uint64_t)scratch + below(SCRATCH_SIZE);
    a[2] = below(3) ? below(3 * 4096) : rand_len();
    return below(2) ? SYS_read : SYS_write;
  case 7: { /* futexes on real words */
    a[0] = below(4) ? buf_ptr() & ~3ULL : rand_ptr();
    a[1] = below(14) | (below(2) ? 128 : 0) | (below(4) ? 0 : 256);
    a[2] = below(3) ? below(4) : rnd();
    a[3] = below(3) ? 0 : rand_ptr(); /* timeout or val2 */
    if ((a[1] & 127) == 6 || (a[1] & 127) == 13) { /* LOCK_PI restarts after signals: */
      uint64_t *ts = (uint64_t *)bufs[below(NBUF)]; /* an expired absolute timeout */
      ts[0] = 0;
      ts[1] = 0;
      a[3] = (uint64_t)ts;
    }
    a[4] = below(2) ? buf_ptr() & ~3ULL : rand_ptr();
    a[5] = below(3) ? (uint32_t)rnd() : below(4);
    return SYS_futex;
  }
  case 8: /* epoll on real fds */
    a[0] = valid_fd();
    a[1] = 1 + below(3);
    a[2] = valid_fd();
    a[3] = below(4) ? buf_ptr() : rand_ptr();
    return SYS_epoll_ctl;
  case 9:
    a[0] = valid_fd();
    a[1] = buf_ptr();
    a[2] = below(4) ? below(64) : rand_arg();
    a[3] = 0;
    return SYS_epoll_wait;
  case 10: { /* fcntl and ioctl with real commands */
    static const uint64_t cmds[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 36, 37, 38, 1024, 1025, 1026,
                                    1029, 1030, 1031, 1032, 1033, 1034, 1035, 1036, 1037, 1038};
    a[0] = valid_fd();
    a[1] = cmds[below(sizeof cmds / sizeof cmds[0])];
    a[2] = below(2) ? buf_ptr() : rand_arg();
    return SYS_fcntl;
  }
  case 11: {
    static const uint64_t reqs[] = {0x5401, 0x5402, 0x5403, 0x5404, 0x5413, 0x5414, 0x541b, 0x5421,
                                    0x5422, 0x540f, 0x5410, 0x5429, 0x80045430, 0x40045431,
                                    0x5451, 0x5450, 0x541c, 0x540e, 0x5420, 0x80086601, 0xc0189436};
    a[0] = valid_fd();
    a[1] = reqs[below(sizeof reqs / sizeof reqs[0])];
    a[2] = below(3) ? buf_ptr() : rand_ptr();
    return SYS_ioctl;
  }
  case 12: { /* splice family between real fds */
    static const long nrs[] = {SYS_splice, SYS_tee, SYS_sendfile, SYS_copy_file_range, SYS_vmsplice};
    long nr = nrs[below(5)];
    a[0] = valid_fd();
    a[1] = below(2) ? 0 : buf_ptr();
    a[2] = valid_fd();
    a[3] = below(2) ? 0 : buf_ptr();
    a[4] = below(3) ? below(65536) : rand_len();
    a[5] = below(16);
    if (nr == SYS_sendfile) {
      a[1] = valid_fd();
      a[2] = below(2) ? 0 : buf_ptr();
      a[3] = below(3) ? below(65536) : rand_len();
    } else if (nr == SYS_tee) {
      a[1] = valid_fd();
      a[2] = below(65536);
      a[3] = below(16);
    } else if (nr == SYS_vmsplice) {
      a[1] = iov_ptr((int)below(8));
      a[2] = below(9);
      a[3] = below(16);
    }
    return nr;
  }
  case 13: /* signal handlers, some on an alternate stack in the scratch region */
    if (below(2)) {
      uint64_t *ss = (uint64_t *)bufs[below(NBUF)];
      /* In the scratch region (mapped or not) or nowhere: a frame on a
       * stack among our own buffers could land on anything of ours. */
      ss[0] = rand_mm_addr();
      ss[1] = below(2) ? 0 : 2; /* SS_DISABLE sometimes */
      ss[2] = rand_mm_len(ss[0]);
      a[0] = (uint64_t)ss;
      a[1] = below(2) ? 0 : buf_ptr();
      return SYS_sigaltstack;
    } else {
      uint64_t *act = (uint64_t *)bufs[below(NBUF)];
      /* Mostly a real handler or SIG_IGN: SIG_DFL only where the default is
       * to ignore, a wild handler rarely (the next such signal kills us). */
      static const int dfl_ok[] = {SIGCHLD, SIGCONT, SIGURG, SIGWINCH};
      a[0] = 1 + below(64);
      switch (below(16)) {
      case 0:
        act[0] = rand_ptr();
        break;
      case 1:
        act[0] = 0; /* SIG_DFL */
        a[0] = dfl_ok[below(4)];
        break;
      case 2:
      case 3:
      case 4:
        act[0] = 1; /* SIG_IGN */
        break;
      default:
        act[0] = (uint64_t)on_alarm_ptr;
      }
      act[1] = (rnd() & (0x08000000 | 0x04 | 0x40000000 | 0x80000000 | 0x10000000 | 0x01)) |
               0x04000000; /* SA_RESTORER */
      act[2] = below(2) ? (uint64_t)restorer_ptr : rand_ptr();
      act[3] = below(2) ? 0 : rnd();
      a[1] = (uint64_t)act;
      a[2] = below(2) ? 0 : buf_ptr();
      a[3] = below(8) ? 8 : rand_arg();
      return SYS_rt_sigaction;
    }
  case 14: /* ... and signals to ourselves to deliver on them (not the
             * ones that kill us by default) */
    a[0] = my_pid;
    do
      a[1] = 1 + below(64);
    while (a[1] == SIGSEGV || a[1] == SIGBUS || a[1] == SIGILL || a[1] == SIGFPE ||
           a[1] == SIGTRAP || a[1] == SIGSYS || a[1] == SIGKILL || a[1] == 32 || a[1] == 33);
    return SYS_kill;
  case 15: { /* open/stat family with real paths */
    static const long nrs[] = {SYS_openat, SYS_newfstatat, SYS_statx, SYS_faccessat2,
                               SYS_readlinkat, SYS_mkdirat, SYS_unlinkat, SYS_renameat2,
                               SYS_symlinkat, SYS_linkat, SYS_fchmodat, SYS_fchownat,
                               SYS_utimensat, SYS_mknodat, SYS_openat2, SYS_inotify_add_watch};
    long nr = nrs[below(sizeof nrs / sizeof nrs[0])];
    a[0] = below(3) ? (uint64_t)-100 : valid_fd();
    a[1] = path_ptr();
    a[2] = below(2) ? (rnd() & 0x7fffff) : below(0x10000);
    a[3] = below(2) ? buf_ptr() : rand_arg();
    a[4] = below(2) ? path_ptr() : rand_arg();
    if (nr == SYS_renameat2 || nr == SYS_linkat) {
      a[2] = below(3) ? (uint64_t)-100 : valid_fd();
      a[3] = path_ptr();
      a[4] = below(8);
    } else if (nr == SYS_symlinkat) {
      a[0] = path_ptr();
      a[1] = below(3) ? (uint64_t)-100 : valid_fd();
      a[2] = path_ptr();
    } else if (nr == SYS_openat2) {
      uint64_t *how = (uint64_t *)bufs[below(NBUF)];
      how[0] = rnd() & 0x7fffff;
      how[1] = below(0x1000);
      how[2] = below(0x40);
      a[2] = (uint64_t)how;
      a[3] = below(4) ? 24 : rand_len();
    } else if (nr == SYS_inotify_add_watch) {
      a[0] = valid_fd();
      a[2] = rnd() & 0xffffffff;
    }
    return nr;
  }
  case 16: /* directories */
    a[0] = valid_fd();
    a[1] = below(3) ? buf_ptr() : rand_ptr();
    a[2] = below(3) ? below(BUFSZ) : rand_len();
    return SYS_getdents64;
  case 17:
    a[0] = valid_fd();
    a[1] = below(2) ? below(4096) : rnd();
    a[2] = below(6);
    return SYS_lseek;
  case 18: { /* timers */
    static const long nrs[] = {SYS_timerfd_settime, SYS_timer_create, SYS_timer_settime,
                               SYS_setitimer, SYS_clock_nanosleep, SYS_nanosleep};
    long nr = nrs[below(6)];
    uint64_t *ts = (uint64_t *)bufs[below(NBUF)];
    /* Intervals of 1 ms or more: a signal every few microseconds would
     * keep the worker in its handler for good (as it would on Linux). */
    ts[0] = below(2) ? 0 : below(2);
    ts[1] = below(4) ? 1000000 + below(2000000) : rnd();
    ts[2] = below(2) ? 0 : below(2);
    ts[3] = below(4) ? below(2000000) : rnd();
    a[0] = nr == SYS_timerfd_settime ? valid_fd() : below(12);
    a[1] = below(2);
    a[2] = (uint64_t)ts;
    a[3] = below(2) ? 0 : buf_ptr();
    if (nr == SYS_timer_create) {
      ts[0] = 0; /* sigev_value */
      ts[1] = (1 + below(64)) | (below(4) << 32); /* signo, notify */
      if (bad_signal((long)(ts[1] & 0xffffffff)))
        ts[1] = (ts[1] & ~0xffffffffULL) | SIGUSR1;
      a[1] = below(2) ? (uint64_t)ts : 0;
      a[2] = buf_ptr();
    } else if (nr == SYS_setitimer) {
      a[0] = 1 + below(2); /* not ITIMER_REAL */
      a[1] = (uint64_t)ts;
      a[2] = below(2) ? 0 : buf_ptr();
    } else if (nr == SYS_nanosleep) {
      a[0] = (uint64_t)ts;
      a[1] = below(2) ? 0 : buf_ptr();
    }
    return nr;
  }
  case 19: /* poll/select on real fds with short timeouts */
    if (below(2)) {
      int32_t *pfd = (int32_t *)bufs[below(NBUF)];
      int n = (int)below(16);
      for (int k = 0; k < n; k++) {
        pfd[2 * k] = (int32_t)valid_fd();
        pfd[2 * k + 1] = (int32_t)(rnd() & 0xffff);
      }
      a[0] = (uint64_t)pfd;
      a[1] = below(8) ? (uint64_t)n : rand_arg();
      a[2] = below(3);
      return SYS_poll;
    } else {
      a[0] = below(4) ? below(64) : rand_arg();
      a[1] = buf_ptr();
      a[2] = buf_ptr();
      a[3] = buf_ptr();
      uint64_t *tv = (uint64_t *)bufs[below(NBUF)];
      tv[0] = 0;
      tv[1] = below(1000);
      a[4] = (uint64_t)tv;
      return SYS_select;
    }
  case 20: { /* process_vm_* on ourselves */
    int n = (int)below(8);
    a[0] = my_pid;
    a[1] = iov_ptr(n);
    a[2] = n;
    a[3] = iov_ptr(n);
    a[4] = n;
    a[5] = below(4) ? 0 : rnd();
    return below(2) ? SYS_process_vm_readv : SYS_process_vm_writev;
  }
  case 21: /* robust and rseq registrations read at exit and preemption */
    if (below(2)) {
      uint64_t *h = (uint64_t *)bufs[below(NBUF)];
      h[0] = below(2) ? (uint64_t)h : buf_ptr(); /* next: self (empty), or into random bytes */
      h[1] = below(2) ? 0 : rnd();
      h[2] = below(2) ? 0 : buf_ptr();
      a[0] = (uint64_t)h;
      a[1] = below(8) ? 24 : rand_len();
      return SYS_set_robust_list;
    } else {
      a[0] = below(4) ? buf_ptr() : rand_ptr();
      a[1] = below(2) ? 32 : rand_len();
      a[2] = below(2);
      a[3] = below(2) ? 0x53053053 : rnd();
      return SYS_rseq;
    }
  case 22: /* socket-ish calls on the fds we have (pipes, unix sockets) */
  {
    static const long nrs[] = {SYS_sendmsg, SYS_recvmsg, SYS_sendto, SYS_recvfrom, SYS_shutdown,
                               SYS_getsockopt, SYS_setsockopt, SYS_getsockname, SYS_getpeername};
    long nr = nrs[below(sizeof nrs / sizeof nrs[0])];
    uint64_t *m = (uint64_t *)bufs[below(NBUF)];
    int n = (int)below(6);
    m[0] = below(2) ? 0 : buf_ptr();
    m[1] = below(128);
    m[2] = iov_ptr(n);
    m[3] = n;
    m[4] = below(2) ? 0 : buf_ptr(); /* control */
    m[5] = below(4) ? below(256) : rnd();
    m[6] = 0;
    a[0] = valid_fd();
    a[1] = (nr == SYS_sendmsg || nr == SYS_recvmsg) ? (uint64_t)m : buf_ptr();
    a[2] = below(3) ? (rnd() & 0x4fff) : rand_arg();
    a[3] = below(2) ? buf_ptr() : rand_arg();
    a[4] = buf_ptr();
    a[5] = below(128);
    return nr;
  }
  default: /* dup/close juggling of real fds */
    a[0] = valid_fd();
    a[1] = below(2) ? valid_fd() : below(1100);
    a[2] = below(2) ? 0 : O_CLOEXEC;
    return below(3) ? SYS_dup3 : SYS_dup;
  }
}

static long pick_nr(void) {
  switch (below(40)) {
  case 0:
    return MAXNR + below(600);
  case 1:
    return 0x40000000 + below(MAXNR); /* x32 */
  case 2:
    return (long)rnd();
  case 3:
    return -1 - (long)below(10);
  default:
    return below(MAXNR);
  }
}

static void on_alarm(int sig) { (void)sig; }

/* The sa_restorer for handlers installed by structured(): rt_sigreturn. */
__asm__(".text\n"
        ".globl sysfuzz_restorer\n"
        "sysfuzz_restorer:\n\t"
        "mov $15, %eax\n\t"
        "syscall\n\t"
        "hlt\n");

static struct slot *my_slot;

/* Records where a fault happened, then dies of it (SA_RESETHAND). */
static void on_fault(int sig, siginfo_t *si, void *uc) {
  ucontext_t *u = uc;
  my_slot->fault_addr = (uint64_t)si->si_addr;
  my_slot->fault_ip = (uint64_t)u->uc_mcontext.gregs[REG_RIP];
  raw6(SYS_tkill, raw6(SYS_gettid, 0, 0, 0, 0, 0, 0), sig, 0, 0, 0, 0);
}

static void worker_setup(int idx) {
  my_pid = (pid_t)raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
  /* Own process group: kill(0, ...) reaches only us and our children. */
  setpgid(0, 0);
  int null = open("/dev/null", O_RDWR);
  if (verbose)
    logfd = dup2(2, 1000);
  else
    logfd = null;
  dup2(null, 0);
  dup2(null, 1);
  dup2(null, 2);
  /* Fuzz in a private scratch directory. */
  char dir[64];
  snprintf(dir, sizeof dir, "w%d", idx);
  mkdir(dir, 0777);
  if (chdir(dir) != 0) {
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  for (int s = 1; s < 65; s++)
    if (s != SIGKILL && s != SIGSTOP && s != SIGALRM)
      sigaction(s, &sa, NULL);
  /* Faults must kill the worker (ignored synchronous signals would loop). */
  sa.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  sigaction(SIGILL, &sa, NULL);
  sigaction(SIGFPE, &sa, NULL);
  sigaction(SIGTRAP, &sa, NULL);
  sigaction(SIGSYS, &sa, NULL);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  sa.sa_flags = 0;
  sa.sa_handler = on_alarm;
  sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
  sigaction(SIGALRM, &sa, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  struct itimerval it = {{0, 20000}, {0, 20000}};
  setitimer(ITIMER_REAL, &it, NULL);

  /* Some real descriptors to aim at. */
  int p[2];
  nfds = 0;
  if (pipe2(p, O_NONBLOCK) == 0) {
    fds[nfds++] = p[0];
    fds[nfds++] = p[1];
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0) {
    fds[nfds++] = sv[0];
    fds[nfds++] = sv[1];
  }
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) == 0) {
    fds[nfds++] = sv[0];
    fds[nfds++] = sv[1];
  }
  int f = open("fz", O_RDWR | O_CREAT, 0644);
  if (f >= 0) {
    char junk[300];
    fill_random(junk, sizeof junk);
    if (write(f, junk, sizeof junk) < 0) {
    }
    fds[nfds++] = f;
  }
  if (symlink("fz", "fzlink") != 0) {
  }
  fds[nfds++] = null;
  int e = eventfd(0, EFD_NONBLOCK);
  if (e >= 0)
    fds[nfds++] = e;
  int ep = (int)syscall(SYS_epoll_create1, 0);
  if (ep >= 0)
    fds[nfds++] = ep;
  int d = open(".", O_RDONLY | O_DIRECTORY);
  if (d >= 0)
    fds[nfds++] = d;
  int pm = open("/proc/self/maps", O_RDONLY);
  if (pm >= 0)
    fds[nfds++] = pm;
  int mfd = (int)syscall(SYS_memfd_create, "fz", 0);
  if (mfd >= 0) {
    if (ftruncate(mfd, 65536) != 0) {
    }
    fds[nfds++] = mfd;
  }
  int tfd = (int)syscall(SYS_timerfd_create, CLOCK_MONOTONIC, O_NONBLOCK);
  if (tfd >= 0)
    fds[nfds++] = tfd;
  int u = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
  if (u >= 0)
    fds[nfds++] = u;
  /* More kinds of file: anon inodes, procfs, devices, a pty, a pidfd. */
  static const char *const more[] = {"/proc/self/mem", "/proc/self/status", "/proc/self",
                                     "/dev/ptmx", "/dev/urandom", "/proc/self/fd", "/dev/shm",
                                     "/proc/self/mountinfo"};
  for (unsigned k = 0; k < sizeof more / sizeof more[0] && nfds < 30; k++) {
    int m = open(more[k], (k == 0 || k == 3 ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
    if (m >= 0)
      fds[nfds++] = m;
  }
  int ino = (int)syscall(SYS_inotify_init1, O_NONBLOCK);
  if (ino >= 0 && nfds < 30)
    fds[nfds++] = ino;
  sigset_t ss;
  sigemptyset(&ss);
  sigaddset(&ss, SIGUSR1);
  int sfd = (int)syscall(SYS_signalfd4, -1, &ss, 8, O_NONBLOCK);
  if (sfd >= 0 && nfds < 30)
    fds[nfds++] = sfd;
  int pfd = (int)syscall(SYS_pidfd_open, my_pid, 0);
  if (pfd >= 0 && nfds < 30)
    fds[nfds++] = pfd;
}

static int w_idx;
static struct slot *w_slot;
static uint64_t w_n;

/* Issues random calls until the worker's batch (shared by its threads) is
 * done. Thread t is 0 (main) or 1. */
static void fuzz_loop(int t) {
  struct slot *s = w_slot;
  for (uint64_t i = 0;; i++) {
    if ((i & 63) == 63)
      refill_buffer((int)below(NBUF));
    long nr;
    uint64_t a[6];
    do {
      nr = pick_nr();
      for (int k = 0; k < 6; k++)
        a[k] = rand_arg();
      if (chance(40)) {
        nr = structured(a);
        continue;
      }
      /* Most calls take (fd, buffer, length, ...): bias toward that shape so
       * more calls get past the first argument check. */
      if (chance(35))
        a[0] = (uint64_t)rand_fd();
      if (chance(40))
        a[1] = rand_ptr();
      if (chance(30))
        a[2] = rand_len();
    } while (!sanitize(nr, a));
    uint64_t seq = __atomic_fetch_add(&s->issued, 1, __ATOMIC_RELAXED);
    if (seq >= w_n) {
      __atomic_fetch_sub(&s->issued, 1, __ATOMIC_RELAXED);
      return;
    }
    if (verbose)
      wlog("w%d.%d %llu: syscall(%ld, %#llx, %#llx, %#llx, %#llx, %#llx, %#llx)\n", w_idx, t,
           (unsigned long long)seq, nr, (unsigned long long)a[0], (unsigned long long)a[1],
           (unsigned long long)a[2], (unsigned long long)a[3], (unsigned long long)a[4],
           (unsigned long long)a[5]);
    s->last_nr = nr;
    for (int k = 0; k < 6; k++)
      s->last_args[k] = a[k];
    volatile uint64_t *rec = s->ring[seq % RING];
    rec[0] = (uint64_t)nr;
    for (int k = 0; k < 6; k++)
      rec[k + 1] = a[k];
    rec[7] = (uint64_t)-4096; /* in progress */
    long r = raw6(nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
    rec[7] = (uint64_t)r;
    if (r == 0 && (nr == SYS_fork || nr == SYS_clone || nr == SYS_clone3))
      raw_exit(0); /* a new child: leave at once */
    if (verbose)
      wlog("w%d.%d %llu: = %ld\n", w_idx, t, (unsigned long long)seq, r);
  }
}

static void thread_main(void) {
  fuzz_loop(1);
  /* Done: end the whole worker (the other thread may be blocked). */
  for (;;)
    raw6(SYS_exit_group, 0, 0, 0, 0, 0, 0);
}

/* Starts thread_main on tstack (a raw CLONE_THREAD clone: no libc thread). */
static long spawn_thread(void) {
  long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
               CLONE_SYSVSEM;
  char *top = tstack + TSTACK_SIZE;
  long ret;
  register long r10 __asm__("r10") = 0;
  register long r8 __asm__("r8") = 0;
  __asm__ volatile("syscall\n\t"
                   "test %%rax, %%rax\n\t"
                   "jnz 1f\n\t"
                   "xor %%ebp, %%ebp\n\t"
                   "call *%%rbx\n\t"
                   "hlt\n"
                   "1:\n\t"
                   : "=a"(ret)
                   : "a"(SYS_clone), "D"(flags), "S"(top), "d"(0), "r"(r10), "r"(r8),
                     "b"(thread_main)
                   : "rcx", "r11", "memory");
  return ret;
}

static void worker(int idx, struct slot *s, uint64_t seed, uint64_t n) {
  rngs[0] = mix64(seed ^ mix64((uint64_t)idx + 1)) | 1;
  rngs[1] = mix64(rngs[0]) | 1;
  w_idx = idx;
  w_slot = s;
  w_n = n;
  my_slot = s;
  s->fault_addr = s->fault_ip = 0;
  worker_setup(idx);
  for (int i = 0; i < NBUF; i++)
    refill_buffer(i);
  /* Half of the workers have a second thread fuzzing concurrently. */
  if (below(2)) {
    tstack = mmap(NULL, TSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tstack == MAP_FAILED || spawn_thread() < 0)
      tstack = NULL;
  }
  fuzz_loop(0);
  for (;;)
    raw6(SYS_exit_group, 0, 0, 0, 0, 0, 0);
}

/* Prints a worker's last calls (-v). */
static void print_ring(struct slot *s) {
  uint64_t n = s->issued;
  for (uint64_t q = n > RING ? n - RING : 0; q < n; q++) {
    volatile uint64_t *r = s->ring[q % RING];
    fprintf(stderr, "    #%llu syscall(%ld, %#llx, %#llx, %#llx, %#llx, %#llx, %#llx) = ",
            (unsigned long long)q, (long)r[0], (unsigned long long)r[1], (unsigned long long)r[2],
            (unsigned long long)r[3], (unsigned long long)r[4], (unsigned long long)r[5],
            (unsigned long long)r[6]);
    if (r[7] == (uint64_t)-4096)
      fprintf(stderr, "(in progress)\n");
    else
      fprintf(stderr, "%ld\n", (long)r[7]);
  }
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void usage(void) {
  fprintf(stderr, "usage: sysfuzz [-v] [-w WORKERS] [-b BATCH] [-i FIRST_WORKER] SEED COUNT\n");
  exit(2);
}

int main(int argc, char **argv) {
  int nworkers = 2, first_idx = 0;
  uint64_t batch = 4000;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "-v"))
      verbose = 1;
    else if (!strcmp(argv[i], "-w") && i + 1 < argc)
      nworkers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-i") && i + 1 < argc)
      first_idx = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-b") && i + 1 < argc)
      batch = strtoull(argv[++i], NULL, 0);
    else
      usage();
  }
  if (argc - i != 2 || nworkers < 1 || nworkers > MAX_WORKERS || batch < 1)
    usage();
  uint64_t seed = strtoull(argv[i], NULL, 0);
  uint64_t count = strtoull(argv[i + 1], NULL, 0);
  printf("sysfuzz: seed %llu, %llu syscalls, %d workers, batch %llu\n",
         (unsigned long long)seed, (unsigned long long)count, nworkers,
         (unsigned long long)batch);
  fflush(stdout);
  parent_pid = getpid();

  /* A scratch directory for the workers' file system calls. */
  char dir[] = "/tmp/sysfuzz.XXXXXX";
  if (!mkdtemp(dir) || chdir(dir) != 0) {
    perror("sysfuzz: scratch dir");
    return 1;
  }

  /* The shared slots, away from the buffers the workers aim at. */
  slots = mmap((void *)0x200000000000ULL, sizeof(struct slot) * MAX_WORKERS,
               PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (slots == MAP_FAILED)
    slots = mmap(NULL, sizeof(struct slot) * MAX_WORKERS, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  /* The scratch region lies far from everything else, so that even a
   * length miscomputed here could not reach the fuzzer's own memory. */
  scratch = mmap((void *)0x100000000000ULL, SCRATCH_SIZE, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (scratch == MAP_FAILED)
    scratch = mmap(NULL, SCRATCH_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (slots == MAP_FAILED || scratch == MAP_FAILED) {
    perror("sysfuzz: mmap");
    return 1;
  }
  for (int b = 0; b < NBUF; b++) {
    char *p = mmap(NULL, BUFSZ + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED || mprotect(p + BUFSZ, 4096, PROT_NONE) != 0) {
      perror("sysfuzz: buffers");
      return 1;
    }
    bufs[b] = p;
  }
  /* The parent ignores job control and SIGPIPE; it is never a target. */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTTOU, SIG_IGN);
  signal(SIGTTIN, SIG_IGN);
  signal(SIGTSTP, SIG_IGN);
  signal(SIGHUP, SIG_IGN);

  uint64_t sigs[65] = {0};
  uint64_t unassigned = count, total = 0, started = 0, died = 0, stuck = 0;
  uint64_t last_issued[MAX_WORKERS] = {0}, last_progress[MAX_WORKERS] = {0};
  int killed[MAX_WORKERS] = {0};
  /* The parent's own record of its workers: the shared slots are only
   * trusted for progress counts (a worker can scribble over them, e.g. with
   * a signal frame on a wild alternate stack). */
  int wpid[MAX_WORKERS] = {0}, widx[MAX_WORKERS] = {0};
  uint64_t wassigned[MAX_WORKERS] = {0};
  int next_idx = first_idx, running = 0;
  for (;;) {
    /* Start workers into free slots while there is work. */
    for (int w = 0; w < nworkers && unassigned > 0; w++) {
      if (wpid[w])
        continue;
      uint64_t n = unassigned < batch ? unassigned : batch;
      int idx = next_idx++;
      slots[w].issued = 0;
      wassigned[w] = n;
      unassigned -= n;
      pid_t pid = fork();
      if (pid < 0) {
        perror("sysfuzz: fork");
        return 1;
      }
      if (pid == 0)
        worker(idx, &slots[w], seed, n);
      wpid[w] = pid;
      widx[w] = idx;
      killed[w] = 0;
      last_issued[w] = 0;
      last_progress[w] = now_ms();
      started++;
      running++;
    }
    if (running == 0 && unassigned == 0)
      break;
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid > 0) {
      for (int w = 0; w < nworkers; w++) {
        if (wpid[w] != pid)
          continue;
        uint64_t issued = slots[w].issued;
        if (issued > wassigned[w])
          issued = wassigned[w];
        total += issued;
        unassigned += wassigned[w] - issued;
        if (WIFSIGNALED(st)) {
          died++;
          if (WTERMSIG(st) < 65)
            sigs[WTERMSIG(st)]++;
          if (verbose)
            fprintf(stderr,
                    "sysfuzz: worker %d pid %d killed by signal %d after %llu calls; last: "
                    "syscall(%ld, %#llx, %#llx, %#llx, %#llx, %#llx, %#llx); fault addr %#llx ip %#llx\n",
                    widx[w], pid, WTERMSIG(st), (unsigned long long)slots[w].issued, slots[w].last_nr,
                    (unsigned long long)slots[w].last_args[0],
                    (unsigned long long)slots[w].last_args[1],
                    (unsigned long long)slots[w].last_args[2],
                    (unsigned long long)slots[w].last_args[3],
                    (unsigned long long)slots[w].last_args[4],
                    (unsigned long long)slots[w].last_args[5],
                    (unsigned long long)slots[w].fault_addr,
                    (unsigned long long)slots[w].fault_ip);
        }
        wpid[w] = 0;
        running--;
      }
      continue; /* reap everything that is ready (orphans too) */
    }
    if (pid < 0 && errno == ECHILD && running > 0) {
      fprintf(stderr, "sysfuzz: lost track of %d workers\n", running);
      return 1;
    }
    /* Watchdog: kill workers that made no progress for STUCK_MS. */
    uint64_t t = now_ms();
    for (int w = 0; w < nworkers; w++) {
      if (!wpid[w])
        continue;
      if (slots[w].issued != last_issued[w]) {
        last_issued[w] = slots[w].issued;
        last_progress[w] = t;
      } else if (!killed[w] && t - last_progress[w] > STUCK_MS) {
        killed[w] = 1;
        char state = '?';
        if (verbose) {
          char path[64], b[256];
          snprintf(path, sizeof path, "/proc/%d/stat", wpid[w]);
          FILE *f = fopen(path, "r");
          if (f) {
            if (fgets(b, sizeof b, f)) {
              char *c = strrchr(b, ')');
              if (c && c[1] == ' ')
                state = c[2];
            }
            fclose(f);
          }
        }
        if (verbose)
          fprintf(stderr, "sysfuzz: worker %d pid %d (state %c) stuck in syscall(%ld, %#llx, %#llx, %#llx, %#llx, %#llx, %#llx)\n",
                  widx[w], wpid[w], state, slots[w].last_nr, (unsigned long long)slots[w].last_args[0],
                  (unsigned long long)slots[w].last_args[1], (unsigned long long)slots[w].last_args[2],
                  (unsigned long long)slots[w].last_args[3], (unsigned long long)slots[w].last_args[4],
                  (unsigned long long)slots[w].last_args[5]);
        if (verbose)
          print_ring(&slots[w]);
        kill(wpid[w], SIGKILL);
        stuck++;
      }
    }
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  /* Reap any stragglers (orphaned grandchildren). */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  printf("sysfuzz: deaths by signal:");
  for (int k = 0; k < 65; k++)
    if (sigs[k])
      printf(" %d:%llu", k, (unsigned long long)sigs[k]);
  printf("\n");
  printf("sysfuzz: seed %llu: %llu syscalls issued by %llu worker processes "
         "(%llu died by a signal, %llu killed as stuck)\n",
         (unsigned long long)seed, (unsigned long long)total, (unsigned long long)started,
         (unsigned long long)died, (unsigned long long)stuck);
  return total == count ? 0 : 1;
}

/*
 * sysfuzz: a random system call fuzzer for the sandbox (issue 6).
 *
 *   sysfuzz [-v] [-w WORKERS] [-b BATCH] [-i FIRST_WORKER] SEED COUNT
 *
 * Issues COUNT random system calls (random numbers 0..~460 and beyond, random
 * integer and flag arguments, pointers that are NULL, small, unmapped, kernel,
 * non-canonical, or into guarded buffers of random bytes), then prints
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
 * that killed or wedged the sandbox; -i K starts at worker K, to replay
 * one worker's stream alone: `sysfuzz -v -w 1 -i K SEED N`).
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
 * STUCK_MS (e.g. blocked with SIGALRM masked some other way).
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
#define STUCK_MS 3000
#define MAXNR 470

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
  volatile long last_nr; /* the call in progress (or last made) */
  volatile uint64_t last_args[6];
  volatile uint64_t fault_addr, fault_ip; /* of a fatal fault, for -v */
};

static struct slot *slots; /* MAP_SHARED, one per worker slot */
static int verbose;
static int logfd = -1;
static pid_t parent_pid, my_pid;
static char *bufs[NBUF];     /* each BUFSZ bytes followed by a PROT_NONE page */
static char *scratch;        /* SCRATCH_SIZE, PROT_NONE until workers map it */
static int fds[24];
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
    break;
  case SYS_mmap: /* mmap(addr, len, prot, flags, fd, off) */
    if (a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
      a[0] = rand_mm_addr();
      if (a[1] >= (1ULL << 32) && a[1] < (1ULL << 48))
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
    long r = raw6(nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
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

  slots = mmap(NULL, sizeof(struct slot) * MAX_WORKERS, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
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
  int next_idx = first_idx, running = 0;
  for (int w = 0; w < MAX_WORKERS; w++)
    slots[w].pid = 0;
  for (;;) {
    /* Start workers into free slots while there is work. */
    for (int w = 0; w < nworkers && unassigned > 0; w++) {
      if (slots[w].pid)
        continue;
      uint64_t n = unassigned < batch ? unassigned : batch;
      int idx = next_idx++;
      slots[w].issued = 0;
      slots[w].assigned = n;
      unassigned -= n;
      pid_t pid = fork();
      if (pid < 0) {
        perror("sysfuzz: fork");
        return 1;
      }
      if (pid == 0)
        worker(idx, &slots[w], seed, n);
      slots[w].pid = pid;
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
        if (slots[w].pid != pid)
          continue;
        uint64_t issued = slots[w].issued;
        if (issued > slots[w].assigned)
          issued = slots[w].assigned;
        total += issued;
        unassigned += slots[w].assigned - issued;
        if (WIFSIGNALED(st)) {
          died++;
          if (WTERMSIG(st) < 65)
            sigs[WTERMSIG(st)]++;
          if (verbose)
            fprintf(stderr,
                    "sysfuzz: worker pid %d killed by signal %d after %llu calls; last: "
                    "syscall(%ld, %#llx, %#llx, %#llx, %#llx, %#llx, %#llx); fault addr %#llx ip %#llx\n",
                    pid, WTERMSIG(st), (unsigned long long)slots[w].issued, slots[w].last_nr,
                    (unsigned long long)slots[w].last_args[0],
                    (unsigned long long)slots[w].last_args[1],
                    (unsigned long long)slots[w].last_args[2],
                    (unsigned long long)slots[w].last_args[3],
                    (unsigned long long)slots[w].last_args[4],
                    (unsigned long long)slots[w].last_args[5],
                    (unsigned long long)slots[w].fault_addr,
                    (unsigned long long)slots[w].fault_ip);
        }
        slots[w].pid = 0;
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
      if (!slots[w].pid)
        continue;
      if (slots[w].issued != last_issued[w]) {
        last_issued[w] = slots[w].issued;
        last_progress[w] = t;
      } else if (t - last_progress[w] > STUCK_MS) {
        if (verbose)
          fprintf(stderr, "sysfuzz: worker pid %d stuck in syscall(%ld, %#llx, %#llx, %#llx, %#llx, %#llx, %#llx)\n",
                  slots[w].pid, slots[w].last_nr, (unsigned long long)slots[w].last_args[0],
                  (unsigned long long)slots[w].last_args[1], (unsigned long long)slots[w].last_args[2],
                  (unsigned long long)slots[w].last_args[3], (unsigned long long)slots[w].last_args[4],
                  (unsigned long long)slots[w].last_args[5]);
        kill(slots[w].pid, SIGKILL);
        stuck++;
        last_progress[w] = t + 60000; /* once */
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

/*
 * cpu_hostile.c - hostile CPU-level operations from user mode
 * (tests/tests/cpu_hostile.rs): touching upper-half (kernel) addresses, jumping
 * to the KVM platform's guest-kernel stubs, and privileged instructions.
 *
 * Each case runs in a forked child whose signal handlers print what arrived
 * (signal, si_code, si_addr and where rip was, relative to the faulting
 * instruction or as an absolute upper-half address) and _exit. One line per
 * case on stdout:
 *   <case>: SIGSEGV code=128 addr=0 rip=insn
 *   <case>: exit 0 (no signal)
 * The driver compares the output natively and in the sandbox (every
 * platform): the same lines. Lines starting with "PLATFORM " are compared
 * between sandbox platforms only (int $0x80: the i386 ABI, which the sandbox
 * does not implement and the host may).
 *
 * Safe to run natively: every case faults in user mode (or is an int $0x80
 * getpid).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

/* The KVM platform's guest kernel (platform/src/kvm/kernel.rs): KERNEL_VA,
 * the code page (syscall stub = LSTAR, cstar, iret, exception tail, flush),
 * the IDT and a vCPU page. */
#define KVA 0xffffffffffe00000ul
#define KCODE (KVA + 5 * 4096)

static uintptr_t expect_rip; /* the faulting instruction, 0: absolute */

static const char *signame(int s)
{
    switch (s) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGFPE: return "SIGFPE";
    }
    return "?";
}

static void handler(int sig, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;
    uintptr_t rip = uc->uc_mcontext.gregs[REG_RIP];
    char r[64];
    if (expect_rip && rip >= expect_rip && rip - expect_rip < 64)
        snprintf(r, sizeof r, "insn+%lu", (unsigned long)(rip - expect_rip));
    else if (rip >= 0x800000000000ul)
        snprintf(r, sizeof r, "%#lx", (unsigned long)rip);
    else
        snprintf(r, sizeof r, "other");
    printf("%s code=%d addr=%#lx rip=%s\n", signame(sig), si->si_code,
           (unsigned long)si->si_addr, r);
    fflush(stdout);
    _exit(0);
}

static void run(const char *name, void (*fn)(uintptr_t), uintptr_t arg)
{
    printf("%s: ", name);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = handler;
        sa.sa_flags = SA_SIGINFO;
        static char stack[65536];
        stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack};
        sigaltstack(&ss, NULL);
        sa.sa_flags |= SA_ONSTACK;
        int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE};
        for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            sigaction(sigs[i], &sa, NULL);
        expect_rip = 0;
        fn(arg);
        printf("exit 0 (no signal)\n");
        fflush(stdout);
        _exit(0);
    }
    int st;
    if (waitpid(c, &st, 0) != c)
        printf("waitpid failed\n");
    else if (WIFSIGNALED(st))
        printf("killed by signal %d\n", WTERMSIG(st));
    else if (WEXITSTATUS(st) != 0)
        printf("exit %d\n", WEXITSTATUS(st));
    fflush(stdout);
}

/* ---- upper-half addresses ---- */

static void do_read(uintptr_t a) { (void)*(volatile unsigned char *)a; }
static void do_write(uintptr_t a) { *(volatile unsigned char *)a = 0xf4; }
static void do_read8(uintptr_t a) { (void)*(volatile uint64_t *)a; }

/* Jump to `a` with rcx and r11 as a `syscall` would leave them if it came
 * from `jump_syscall_insn` (a real syscall instruction below), rax = getpid:
 * a jump to LSTAR must not pass for a syscall. */
extern char jump_syscall_insn[];
static void do_jump(uintptr_t a)
{
    __asm__ volatile("lea jump_syscall_insn+2(%%rip), %%rcx\n"
                     "pushfq\n"
                     "pop %%r11\n"
                     "mov $39, %%eax\n"
                     "jmp *%0\n"
                     "jump_syscall_insn: syscall\n"
                     :
                     : "r"(a)
                     : "rax", "rcx", "r11", "memory");
}

/* As do_jump, rcx pointing after bytes that are not a syscall. */
static void do_jump_garbage_rcx(uintptr_t a)
{
    __asm__ volatile("lea 1f(%%rip), %%rcx\n"
                     "mov $39, %%eax\n"
                     "jmp *%0\n"
                     "nop; nop\n"
                     "1: nop\n"
                     :
                     : "r"(a)
                     : "rax", "rcx", "r11", "memory");
}

/* rcx cleared: right after a syscall it points past one, which makes a call
 * to LSTAR the "syscall-like rcx" case on a PVM host (see do_jump). */
static void do_call(uintptr_t a)
{
    __asm__ volatile("xor %%ecx, %%ecx\n"
                     "call *%0\n"
                     :
                     : "r"(a)
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10",
                       "r11", "memory");
}

/* ---- privileged and trapping instructions ---- */

#define INSN(fname, text)                                                   \
    extern char fname##_at[];                                               \
    static void fname(uintptr_t a)                                          \
    {                                                                       \
        (void)a;                                                            \
        expect_rip = (uintptr_t)fname##_at;                                 \
        __asm__ volatile(".globl " #fname "_at\n" #fname "_at: " text "\n" \
                         :                                                  \
                         :                                                  \
                         : "rax", "rcx", "rdx", "memory");                  \
    }

INSN(i_hlt, "hlt")
INSN(i_cli, "cli")
INSN(i_sti, "sti")
INSN(i_mov_cr3_w, "xor %%eax, %%eax; mov %%rax, %%cr3")
INSN(i_mov_cr3_r, "mov %%cr3, %%rax")
INSN(i_mov_cr0_w, "mov %%cr0, %%rax")
INSN(i_lgdt, "lgdt (%%rsp)")
INSN(i_lidt, "lidt (%%rsp)")
INSN(i_ltr, "mov $0x40, %%eax; ltr %%ax")
INSN(i_wrmsr, "mov $0xc0000082, %%ecx; xor %%eax, %%eax; xor %%edx, %%edx; wrmsr")
INSN(i_rdmsr, "mov $0xc0000082, %%ecx; rdmsr")
INSN(i_in, "in $0x80, %%al")
INSN(i_out, "out %%al, $0x80")
INSN(i_in_dx, "mov $0xcf8, %%edx; in %%dx, %%eax")
INSN(i_invlpg, "invlpg (%%rsp)")
INSN(i_wbinvd, "wbinvd")
INSN(i_clts, "clts")
INSN(i_swapgs, "swapgs")
INSN(i_sysret, "sysretq")
INSN(i_load_kernel_ds, "mov $0x18, %%eax; mov %%eax, %%ds")
INSN(i_load_kernel_ss, "mov $0x18, %%eax; mov %%eax, %%ss")
INSN(i_far_jmp_kernel_cs, "pushq $0x10; lea 1f(%%rip), %%rax; push %%rax; lretq; 1: nop")
INSN(i_iretq_ring0, "mov %%ss, %%eax; push %%rax; push %%rsp; pushfq; pushq $0x10; lea 1f(%%rip), %%rax; push %%rax; iretq; 1: nop")
INSN(i_int3, "int3")
INSN(i_int_3, "int $3")
INSN(i_int1, ".byte 0xf1")
INSN(i_int_1, "int $1")
INSN(i_int_4, "int $4")
INSN(i_int_5, "int $5")
INSN(i_int_0e, "int $0x0e")
INSN(i_int_0d, "int $0x0d")
INSN(i_int_08, "int $0x08")
INSN(i_int_20, "int $0x20")
INSN(i_int_ff, "int $0xff")
INSN(i_ud2, "ud2")
INSN(i_into, ".byte 0xce")

/* sigreturn to a state the return to user mode cannot load: a
 * non-canonical rip (Linux: the iret faults, SIGSEGV SI_KERNEL). */
static uintptr_t bad_rip;
static void set_rip(int sig, siginfo_t *si, void *uc_)
{
    (void)sig;
    (void)si;
    ((ucontext_t *)uc_)->uc_mcontext.gregs[REG_RIP] = bad_rip;
}

static void sigreturn_rip(uintptr_t a)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = set_rip;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    bad_rip = a;
    raise(SIGUSR1);
}

/* PLATFORM: int $0x80 getpid (i386 ABI). */
static void i_int80(uintptr_t a)
{
    (void)a;
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    printf("returned %s ", r == getpid() ? "pid" : r < 0 ? "error" : "other");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct {
        const char *name;
        uintptr_t a;
    } addrs[] = {
        {"kernel_pml4", KVA},
        {"kernel_idt", KVA + 4 * 4096},
        {"kernel_code_lstar", KCODE},
        {"kernel_vcpu_page", KVA + 6 * 4096},
        {"kernel_vcpu_stack_top", KVA + 7 * 4096 - 8},
        {"kernel_region_end", 0xfffffffffffff000ul},
        {"upper_half_start", 0xffff800000000000ul},
        {"linux_text", 0xffffffff81000000ul},
        {"noncanonical", 0x0000800000000000ul},
        {"noncanonical_high", 0x8000000000000000ul},
    };
    char n[128];
    for (unsigned i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        snprintf(n, sizeof n, "read %s", addrs[i].name);
        run(n, do_read, addrs[i].a);
        snprintf(n, sizeof n, "read8 %s", addrs[i].name);
        run(n, do_read8, addrs[i].a);
        snprintf(n, sizeof n, "write %s", addrs[i].name);
        run(n, do_write, addrs[i].a);
        snprintf(n, sizeof n, "call %s", addrs[i].name);
        run(n, do_call, addrs[i].a);
    }
    static const struct {
        const char *name;
        uintptr_t a;
    } stubs[] = {
        {"lstar", KCODE},
        {"lstar+1", KCODE + 1},
        {"cstar", KCODE + 0x10},
        {"iret", KCODE + 0x20},
        {"exception_tail", KCODE + 0x40},
        {"exception_hlt", KCODE + 0x45},
        {"flush", KCODE + 0x60},
        {"vector14", KCODE + 0x100 + 14 * 16},
    };
    for (unsigned i = 0; i < sizeof stubs / sizeof stubs[0]; i++) {
        snprintf(n, sizeof n, "jump %s (syscall-like rcx)", stubs[i].name);
        run(n, do_jump, stubs[i].a);
        snprintf(n, sizeof n, "jump %s (other rcx)", stubs[i].name);
        run(n, do_jump_garbage_rcx, stubs[i].a);
    }
    static const struct {
        const char *name;
        void (*fn)(uintptr_t);
    } insns[] = {
        {"hlt", i_hlt},
        {"cli", i_cli},
        {"sti", i_sti},
        {"mov to cr3", i_mov_cr3_w},
        {"mov from cr3", i_mov_cr3_r},
        {"mov from cr0", i_mov_cr0_w},
        {"lgdt", i_lgdt},
        {"lidt", i_lidt},
        {"ltr", i_ltr},
        {"wrmsr", i_wrmsr},
        {"rdmsr", i_rdmsr},
        {"in imm", i_in},
        {"out imm", i_out},
        {"in dx", i_in_dx},
        {"invlpg", i_invlpg},
        {"wbinvd", i_wbinvd},
        {"clts", i_clts},
        {"swapgs", i_swapgs},
        {"sysret", i_sysret},
        {"load kernel ds", i_load_kernel_ds},
        {"load kernel ss", i_load_kernel_ss},
        {"far return to kernel cs", i_far_jmp_kernel_cs},
        {"iretq to ring 0", i_iretq_ring0},
        {"int3", i_int3},
        {"int $3", i_int_3},
        {"int1 (icebp)", i_int1},
        {"int $1", i_int_1},
        {"int $4", i_int_4},
        {"int $5", i_int_5},
        {"int $0x0e", i_int_0e},
        {"int $0x0d", i_int_0d},
        {"int $0x08", i_int_08},
        {"int $0x20", i_int_20},
        {"int $0xff", i_int_ff},
        {"ud2", i_ud2},
        {"into", i_into},
    };
    for (unsigned i = 0; i < sizeof insns / sizeof insns[0]; i++)
        run(insns[i].name, insns[i].fn, 0);
    run("sigreturn to noncanonical rip", sigreturn_rip, 0x8000000000000000ul);
    run("sigreturn to noncanonical rip (low)", sigreturn_rip, 0x0000800000000000ul);
    /* (Not LSTAR: rcx, just past the syscall of raise(), would make it the
     * PVM "syscall-like rcx" case of do_jump.) */
    run("sigreturn to kernel rip", sigreturn_rip, KCODE + 0x20);
    printf("PLATFORM ");
    run("int $0x80 getpid", i_int80, 0);
    printf("done\n");
    return 0;
}

//! The stub: one page of machine code that every stub process runs. It is mapped
//! at a fixed high address (which bounds the workload's address space), holds no
//! data, and needs no stack.
//!
//! Entry points (offsets from `runsc_stub_start`):
//! - `start`: the master, after fork: unmaps everything but this page, then stops.
//! - `stop`: `kill(getpid(), SIGSTOP)` in a loop; a new stub waits here to be attached.
//! - `syscall`: `syscall; int3`: where the sentry injects map/unmap/protect calls.
//! - `clone`: `syscall` (clone) then the child sets PDEATHSIG and parks in
//!   `pause()` until it is seized; the parent traps with int3. Used both on the
//!   master (new stub processes) and on a stub thread (new stub threads).

use std::arch::global_asm;

// r12 = stub page address, r13 = end of the stub region, r14 = TASK_SIZE
// (set by the forked child before it jumps here; syscalls preserve them).
global_asm!(
    ".pushsection .text.runsc_stub,\"ax\",@progbits",
    ".p2align 12",
    ".globl runsc_stub_start",
    "runsc_stub_start:",
    // munmap(0, stub)
    "mov eax, 11",
    "xor edi, edi",
    "mov rsi, r12",
    "syscall",
    // munmap(stub_end, TASK_SIZE - stub_end)
    "mov eax, 11",
    "mov rdi, r13",
    "mov rsi, r14",
    "sub rsi, r13",
    "syscall",
    ".globl runsc_stub_stop",
    "runsc_stub_stop:",
    "mov eax, 39",
    "syscall",
    "mov edi, eax",
    "mov esi, 19",
    "mov eax, 62",
    "syscall",
    "jmp runsc_stub_stop",
    ".globl runsc_stub_syscall",
    "runsc_stub_syscall:",
    "syscall",
    "int3",
    ".globl runsc_stub_clone",
    "runsc_stub_clone:",
    "syscall",
    "test rax, rax",
    "jnz 2f",
    // child (a new stub process or thread): prctl(PR_SET_PDEATHSIG, SIGKILL),
    // then park in pause() until a tracer seizes and interrupts it.
    "mov eax, 157",
    "mov edi, 1",
    "mov esi, 9",
    "syscall",
    ".globl runsc_stub_park",
    "runsc_stub_park:",
    "mov eax, 34",
    "syscall",
    "jmp runsc_stub_park",
    "2:",
    "int3",
    ".globl runsc_stub_end",
    "runsc_stub_end:",
    ".popsection",
);

extern "C" {
    fn runsc_stub_start();
    fn runsc_stub_syscall();
    fn runsc_stub_clone();
    fn runsc_stub_park();
    fn runsc_stub_end();
}

/// The stub's code bytes and entry offsets within them.
pub struct StubCode {
    pub bytes: &'static [u8],
    pub syscall: u64,
    pub clone: u64,
    pub park: u64,
}

/// Returns the stub code linked into this binary.
pub fn code() -> StubCode {
    let start = runsc_stub_start as *const () as usize;
    let end = runsc_stub_end as *const () as usize;
    // SAFETY: [start, end) is the stub's code in our own text section, which is
    // mapped readable for the life of the process.
    let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
    StubCode {
        bytes,
        syscall: (runsc_stub_syscall as *const () as usize - start) as u64,
        clone: (runsc_stub_clone as *const () as usize - start) as u64,
        park: (runsc_stub_park as *const () as usize - start) as u64,
    }
}

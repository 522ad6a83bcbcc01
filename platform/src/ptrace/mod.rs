//! The ptrace platform. Workload code runs in stub processes under PTRACE_SYSEMU,
//! so its syscalls stop in the tracer (the task's host thread) instead of running.
//!
//! One master stub is forked early: it keeps only the stub page (and the memory
//! file's fd), installs a seccomp filter that kills it on any syscall not made
//! from the stub page, and stops. A dedicated "creator" thread traces it; every new
//! address space is a process cloned from the master by an injected `clone()` with
//! CLONE_FILES (so it shares the fd table holding the memory file), then attached
//! by the host thread that asked for it. map/unmap/protect are `mmap`/`munmap`/
//! `mprotect` calls injected into a stopped stub thread traced by the calling thread.

mod stub;

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{
    AddressSpace, Context, Event, Interrupter, MemoryFile, Platform, PlatformError, Prot, Regs,
};

/// One past the highest user address on x86-64 with 4-level paging.
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Bytes reserved for the stub region (the code uses one page).
const STUB_REGION: u64 = 0x10000;
/// Preferred stub address; lower free addresses are tried if taken.
const STUB_PREFERRED: u64 = TASK_SIZE - 0xf000 - STUB_REGION;

use crate::host::gettid as host_tid;

/// Waits for a ptrace stop of `tid`, retrying EINTR. Returns the raw status.
fn wait(tid: i32) -> Result<i32, PlatformError> {
    loop {
        let mut status = 0;
        // SAFETY: plain syscall with a valid status pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        if r == tid {
            return Ok(status);
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return Err(PlatformError::last("waitpid"));
    }
}

fn describe_exit(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status:#x}")
    }
}

fn ptrace(
    req: libc::c_uint,
    tid: i32,
    addr: usize,
    data: usize,
) -> Result<libc::c_long, PlatformError> {
    // SAFETY: every caller passes pointers to live, correctly sized buffers for the
    // requests that take them (GETREGS/SETREGS/GETSIGINFO) and plain values otherwise.
    let r = unsafe {
        libc::ptrace(
            req,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    };
    if r < 0 {
        let op = match req {
            libc::PTRACE_ATTACH => "ptrace(PTRACE_ATTACH)",
            libc::PTRACE_SETOPTIONS => "ptrace(PTRACE_SETOPTIONS)",
            libc::PTRACE_GETREGS => "ptrace(PTRACE_GETREGS)",
            libc::PTRACE_SETREGS => "ptrace(PTRACE_SETREGS)",
            libc::PTRACE_CONT => "ptrace(PTRACE_CONT)",
            libc::PTRACE_SYSEMU => "ptrace(PTRACE_SYSEMU)",
            libc::PTRACE_GETSIGINFO => "ptrace(PTRACE_GETSIGINFO)",
            _ => "ptrace",
        };
        return Err(PlatformError::last(op));
    }
    Ok(r)
}

fn get_regs(tid: i32, regs: &mut Regs) -> Result<(), PlatformError> {
    ptrace(libc::PTRACE_GETREGS, tid, 0, regs as *mut Regs as usize).map(|_| ())
}

fn set_regs(tid: i32, regs: &Regs) -> Result<(), PlatformError> {
    ptrace(libc::PTRACE_SETREGS, tid, 0, regs as *const Regs as usize).map(|_| ())
}

/// Attaches the calling thread to `tid` (stopped in the stub's stop loop) and
/// waits for the attach stop.
fn attach(tid: i32) -> Result<(), PlatformError> {
    ptrace(libc::PTRACE_ATTACH, tid, 0, 0)?;
    loop {
        let status = wait(tid)?;
        if libc::WIFSTOPPED(status) {
            break;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Err(PlatformError::StubDied(describe_exit(status)));
        }
    }
    let opts = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD;
    ptrace(libc::PTRACE_SETOPTIONS, tid, 0, opts as usize)?;
    Ok(())
}

/// Seizes `tid` (parked in the stub's pause loop) for the calling thread and
/// waits for the interrupt stop. Unlike PTRACE_ATTACH this sends no SIGSTOP.
fn seize(tid: i32) -> Result<(), PlatformError> {
    let opts = libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACESYSGOOD;
    ptrace(libc::PTRACE_SEIZE, tid, 0, opts as usize)?;
    ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0)?;
    loop {
        let status = wait(tid)?;
        if libc::WIFSTOPPED(status) {
            return Ok(());
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Err(PlatformError::StubDied(describe_exit(status)));
        }
    }
}

/// Pins the calling (tracer) thread and stub thread `tid` to one CPU.
///
/// Every workload syscall is a round trip between the two; on the same CPU it is a
/// direct switch, across CPUs it costs two cross-CPU wakeups (measured here: ~3 us
/// versus ~30-50 us per syscall under nested virtualisation). Tracers take CPUs
/// round-robin from the sentry's allowed set so threads still run in parallel.
fn pin_with_tracer(tid: i32) {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static CPU: Cell<Option<usize>> = const { Cell::new(None) });
    let cpu = CPU.with(|c| {
        if let Some(cpu) = c.get() {
            return Some(cpu);
        }
        // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer and size.
        if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            != 0
        {
            return None;
        }
        // SAFETY: CPU_ISSET reads within the set.
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
            .collect();
        if allowed.is_empty() {
            return None;
        }
        let cpu = allowed[NEXT.fetch_add(1, Ordering::Relaxed) % allowed.len()];
        if set_affinity(0, cpu) {
            c.set(Some(cpu));
            Some(cpu)
        } else {
            None
        }
    });
    if let Some(cpu) = cpu {
        set_affinity(tid, cpu);
    }
}

fn set_affinity(tid: i32, cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: cpu < CPU_SETSIZE (it came from an allowed set).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: valid pointer and size.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// A stub thread traced by the current host thread.
struct StubThread {
    tid: i32,
    /// Register template with the stub's segment registers, for injected calls.
    template: Regs,
    /// Wall time spent running workload code (the host cannot read another
    /// process's thread CPU clock, so this is the per-thread CPU estimate).
    run_ns: AtomicU64,
}

impl StubThread {
    /// Attaches to the master (stopped by itself in the stub's stop loop).
    fn attach(tid: i32) -> Result<StubThread, PlatformError> {
        attach(tid)?;
        Self::adopt(tid)
    }

    /// Seizes a new stub process or thread parked in the stub.
    fn seize(tid: i32) -> Result<StubThread, PlatformError> {
        seize(tid)?;
        pin_with_tracer(tid);
        Self::adopt(tid)
    }

    fn adopt(tid: i32) -> Result<StubThread, PlatformError> {
        let mut template = crate::zeroed_regs();
        get_regs(tid, &mut template)?;
        Ok(StubThread {
            tid,
            template,
            run_ns: AtomicU64::new(0),
        })
    }

    /// Resumes with `req` (PTRACE_CONT or PTRACE_SYSEMU) until a stop that is not
    /// a stray SIGSTOP (left over from attaching) or an asynchronous host signal,
    /// which are suppressed. Returns the stop signal.
    ///
    /// With `interruptible`, a SIGSTOP (the sentry's kick, see [`Kick`]) ends the
    /// run and is returned.
    fn resume(&self, req: libc::c_uint, interruptible: bool) -> Result<i32, PlatformError> {
        loop {
            ptrace(req, self.tid, 0, 0)?;
            let status = wait(self.tid)?;
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Err(PlatformError::StubDied(describe_exit(status)));
            }
            if !libc::WIFSTOPPED(status) || status >> 16 != 0 {
                // Not stopped, or a PTRACE_EVENT stop (group-stop of a seized
                // thread): nothing the workload did.
                continue;
            }
            let sig = libc::WSTOPSIG(status);
            match sig {
                libc::SIGSTOP if interruptible => return Ok(sig),
                s if s == libc::SIGTRAP | 0x80 => return Ok(s),
                libc::SIGTRAP | libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL => {
                    return Ok(sig)
                }
                _ => continue,
            }
        }
    }

    /// Creates another host thread of this stub process, parked in the stub until
    /// seized; returns its TID.
    fn clone_thread(&self, layout: &Layout) -> Result<i32, PlatformError> {
        let flags = libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM;
        self.clone_at_stub(layout, flags as u64)
    }

    /// Injects `clone(flags)` at the stub's clone entry: the child parks in the
    /// stub, this thread traps back. Returns the child's TID.
    fn clone_at_stub(&self, layout: &Layout, flags: u64) -> Result<i32, PlatformError> {
        let mut r = self.template;
        r.rip = layout.clone_addr;
        r.rax = libc::SYS_clone as u64;
        r.orig_rax = u64::MAX;
        r.rdi = flags;
        r.rsi = 0;
        r.rdx = 0;
        r.r10 = 0;
        r.r8 = 0;
        set_regs(self.tid, &r)?;
        let sig = self.resume(libc::PTRACE_CONT, false)?;
        if sig != libc::SIGTRAP {
            return Err(PlatformError::StubDied(format!(
                "stub clone stopped with signal {sig}"
            )));
        }
        get_regs(self.tid, &mut r)?;
        let tid = r.rax as i64;
        if tid < 0 {
            return Err(PlatformError::Host {
                op: "clone stub",
                errno: -tid as i32,
            });
        }
        Ok(tid as i32)
    }

    /// Runs one host syscall in the stub and returns its raw result.
    fn inject(&self, code: &Layout, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
        let mut r = self.template;
        r.rip = code.syscall_addr;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        set_regs(self.tid, &r)?;
        let sig = self.resume(libc::PTRACE_CONT, false)?;
        if sig != libc::SIGTRAP {
            return Err(PlatformError::StubDied(format!(
                "injected syscall {nr} stopped with signal {sig}"
            )));
        }
        get_regs(self.tid, &mut r)?;
        Ok(r.rax as i64)
    }
}

/// Where the stub lives (fixed for the life of the sentry).
#[derive(Clone, Copy)]
struct Layout {
    stub_addr: u64,
    syscall_addr: u64,
    clone_addr: u64,
    park_addr: u64,
}

/// Requests to the creator thread.
type CloneRequest = mpsc::Sender<Result<i32, PlatformError>>;

/// The ptrace platform.
pub struct Ptrace {
    mf: Arc<MemoryFile>,
    layout: Layout,
    creator: Mutex<mpsc::Sender<CloneRequest>>,
}

impl Ptrace {
    /// Sets up the stub page and forks the master stub. Call before the sentry
    /// confines itself.
    pub fn new(mf: Arc<MemoryFile>) -> Result<Arc<Ptrace>, PlatformError> {
        let code = stub::code();
        let stub_addr = map_stub_page(code.bytes)?;
        let layout = Layout {
            stub_addr,
            syscall_addr: stub_addr + code.syscall,
            clone_addr: stub_addr + code.clone,
            park_addr: stub_addr + code.park,
        };
        let (tx, rx) = mpsc::channel::<CloneRequest>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let memfd = mf.fd();
        std::thread::Builder::new()
            .name("stub-creator".into())
            .spawn(move || creator_thread(layout, memfd, rx, ready_tx))
            .map_err(|_| PlatformError::last("spawn"))?;
        ready_rx
            .recv()
            .map_err(|_| PlatformError::StubDied("creator thread exited".into()))??;
        Ok(Arc::new(Ptrace {
            mf,
            layout,
            creator: Mutex::new(tx),
        }))
    }

    /// A context without a platform reference (tests).
    #[cfg(test)]
    fn new_context_static() -> Box<dyn Context> {
        Box::new(PtraceContext {
            kick: Arc::new(Kick::default()),
        })
    }

    fn clone_stub(&self) -> Result<i32, PlatformError> {
        let (tx, rx) = mpsc::channel();
        self.creator
            .lock()
            .unwrap()
            .send(tx)
            .map_err(|_| PlatformError::StubDied("creator thread gone".into()))?;
        rx.recv()
            .map_err(|_| PlatformError::StubDied("creator thread gone".into()))?
    }
}

/// Maps the stub code at the highest free address at or below STUB_PREFERRED, in
/// the sentry itself, so every process forked from it has the page.
fn map_stub_page(bytes: &[u8]) -> Result<u64, PlatformError> {
    let mut addr = STUB_PREFERRED;
    while addr > TASK_SIZE / 2 {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                STUB_REGION as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED && p as u64 == addr {
            // SAFETY: we just mapped this region read-write and own it.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), p as *mut u8, bytes.len());
                libc::mprotect(p, STUB_REGION as usize, libc::PROT_READ | libc::PROT_EXEC);
            }
            return Ok(addr);
        }
        if p != libc::MAP_FAILED {
            // SAFETY: an old kernel placed it elsewhere; drop that mapping.
            unsafe { libc::munmap(p, STUB_REGION as usize) };
        }
        addr -= STUB_REGION;
    }
    Err(PlatformError::NoMemory)
}

/// A seccomp filter for stubs: allow syscalls made from the stub region, kill the
/// process on any other (workload syscalls never get here: SYSEMU stops them first).
fn stub_seccomp_filter(stub_addr: u64) -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let s = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let lo = stub_addr as u32;
    let hi = (stub_addr >> 32) as u32;
    let end_lo = lo.wrapping_add(STUB_REGION as u32);
    // stub region never straddles a 4 GiB boundary (STUB_REGION-aligned, below 2^47).
    vec![
        s(LD_W_ABS, 0, 0, 4),      // arch
        s(JEQ, 1, 0, 0xc000_003e), // AUDIT_ARCH_X86_64
        s(RET, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        s(LD_W_ABS, 0, 0, 12), // instruction_pointer high
        s(JEQ, 1, 0, hi),
        s(RET, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        s(LD_W_ABS, 0, 0, 8), // instruction_pointer low
        s(JGE, 1, 0, lo),
        s(RET, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        s(JGE, 0, 1, end_lo),
        s(RET, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        s(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

extern "C" {
    /// glibc (>= 2.35): offset of the thread's rseq area from the thread pointer.
    static __rseq_offset: isize;
    /// glibc: size of the registered rseq area; 0 when glibc did not register one.
    static __rseq_size: u32;
}

/// The rseq signature glibc registers with.
const RSEQ_SIG: u32 = 0x5305_3053;

/// The calling thread's rseq registration (area, length), if glibc made one. A
/// forked child inherits it, and once the stub unmaps the area the kernel's rseq
/// updates would fault, so the master drops it first.
fn current_rseq() -> Option<(u64, u32)> {
    // SAFETY: reading glibc's exported, immutable-after-startup variables.
    let (off, size) = unsafe { (__rseq_offset, __rseq_size) };
    if size == 0 {
        return None;
    }
    let tp: u64;
    // SAFETY: on x86-64 glibc the thread pointer's first word points to itself.
    unsafe {
        std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags))
    };
    Some((tp.wrapping_add(off as u64), size.max(32)))
}

/// The creator thread: forks the master stub (so it is the master's parent and
/// tracer) and clones new stubs from it on request.
fn creator_thread(
    layout: Layout,
    memfd: i32,
    rx: mpsc::Receiver<CloneRequest>,
    ready: mpsc::Sender<Result<(), PlatformError>>,
) {
    let filter = stub_seccomp_filter(layout.stub_addr);
    let rseq = current_rseq();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: after fork the child runs only async-signal-safe raw syscalls on
    // data prepared before the fork, then jumps into the stub page, never returning.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let _ = ready.send(Err(PlatformError::last("fork")));
        return;
    }
    if pid == 0 {
        // SAFETY: see above; this is the child and never returns to Rust code.
        unsafe { master_child(layout.stub_addr, memfd, &prog, rseq) }
    }
    // Wait until the master has confined itself and stopped in the stub before
    // attaching: attaching earlier could stop it halfway through its setup.
    let confined = loop {
        let mut status = 0;
        // SAFETY: plain syscall on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
        if r == pid {
            if libc::WIFSTOPPED(status) {
                break Ok(());
            }
            break Err(PlatformError::StubDied(describe_exit(status)));
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break Err(PlatformError::last("waitpid"));
        }
    };
    if let Err(e) = confined {
        let _ = ready.send(Err(e));
        return;
    }
    let master = match StubThread::attach(pid) {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let flags = (libc::CLONE_FILES | libc::SIGCHLD) as u64;
    for reply in rx {
        let _ = reply.send(master.clone_at_stub(&layout, flags));
    }
    // Platform dropped: kill the master (its children follow via PDEATHSIG).
    // SAFETY: plain syscalls on our own child.
    unsafe {
        libc::kill(master.tid, libc::SIGKILL);
    }
    let _ = wait(master.tid);
}

/// The forked master: drop everything but the stub page and the memory file,
/// confine itself, and enter the stub.
///
/// # Safety
/// Must only be called in a freshly forked child.
unsafe fn master_child(
    stub_addr: u64,
    memfd: i32,
    prog: &libc::sock_fprog,
    rseq: Option<(u64, u32)>,
) -> ! {
    if let Some((area, len)) = rseq {
        const RSEQ_FLAG_UNREGISTER: i32 = 1;
        if libc::syscall(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) != 0
            && libc::syscall(libc::SYS_rseq, area, 32u32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) != 0
        {
            libc::_exit(102);
        }
    }
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    // Out of the caller's session and process group: terminal signals must not
    // reach stubs.
    libc::setsid();
    libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    // Keep only the memory file (and stdio-less): close every other fd.
    if memfd > 0 {
        libc::syscall(libc::SYS_close_range, 0u32, (memfd - 1) as u32, 0u32);
    }
    libc::syscall(libc::SYS_close_range, (memfd + 1) as u32, u32::MAX, 0u32);
    // Block every signal but the unblockable ones: stubs handle none.
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if libc::syscall(
        libc::SYS_seccomp,
        libc::SECCOMP_SET_MODE_FILTER,
        0,
        prog as *const _,
    ) != 0
    {
        libc::_exit(101);
    }
    std::arch::asm!(
        "jmp {entry}",
        entry = in(reg) stub_addr,
        in("r12") stub_addr,
        in("r13") stub_addr + STUB_REGION,
        in("r14") TASK_SIZE,
        options(noreturn)
    );
}

impl Platform for Ptrace {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    fn max_user_address(&self) -> u64 {
        self.layout.stub_addr
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let pid = self.clone_stub()?;
        let made = (|| {
            // The process's first thread only spawns a worker thread for us and is
            // then parked untraced: a host thread-group leader cannot be reaped
            // while other threads live, so tasks never run on it (their threads
            // must be able to exit one by one).
            let leader = StubThread::seize(pid)?;
            let tid = leader.clone_thread(&self.layout)?;
            let worker = StubThread::seize(tid)?;
            let mut r = leader.template;
            r.rip = self.layout.park_addr;
            r.orig_rax = u64::MAX;
            set_regs(leader.tid, &r)?;
            ptrace(libc::PTRACE_DETACH, leader.tid, 0, 0)?;
            Ok(worker)
        })();
        let thread = match made {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: plain syscall on the stub we just created (not reaped:
                // the master ignores SIGCHLD only once we stop tracing it).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return Err(e);
            }
        };
        let mut threads = HashMap::new();
        threads.insert(host_tid(), Arc::new(thread));
        Ok(Arc::new(PtraceAddressSpace {
            pid,
            memfd: self.mf.fd(),
            layout: self.layout,
            threads: Mutex::new(threads),
            dead: AtomicBool::new(false),
            final_cpu_ns: AtomicU64::new(0),
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(PtraceContext {
            kick: Arc::new(Kick::default()),
        }))
    }
}

/// One stub process.
pub struct PtraceAddressSpace {
    pid: i32,
    memfd: i32,
    layout: Layout,
    /// The stub thread each host thread traces, by host thread ID.
    threads: Mutex<HashMap<i32, Arc<StubThread>>>,
    /// The process is gone (its last thread was released): never signal its PID.
    dead: AtomicBool,
    /// The process's CPU time when its last thread was released.
    final_cpu_ns: AtomicU64,
}

impl PtraceAddressSpace {
    fn current(&self) -> Result<Arc<StubThread>, PlatformError> {
        let t = self.threads.lock().unwrap().get(&host_tid()).cloned();
        t.ok_or(PlatformError::StubDied(
            "no stub thread for this host thread".into(),
        ))
    }

    fn inject(&self, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
        let t = self.current()?;
        t.inject(&self.layout, nr, args)
    }

    fn inject_ok(&self, nr: i64, args: [u64; 6]) -> Result<(), PlatformError> {
        let r = self.inject(nr, args)?;
        if r < 0 {
            return Err(PlatformError::Host {
                op: "stub syscall",
                errno: -r as i32,
            });
        }
        Ok(())
    }
}

impl AddressSpace for PtraceAddressSpace {
    fn map(&self, va: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        self.inject_ok(
            libc::SYS_mmap,
            [va, len, prot as u64, flags, self.memfd as u64, offset],
        )
    }

    fn unmap(&self, va: u64, len: u64) -> Result<(), PlatformError> {
        self.inject_ok(libc::SYS_munmap, [va, len, 0, 0, 0, 0])
    }

    fn protect(&self, va: u64, len: u64, prot: Prot) -> Result<(), PlatformError> {
        self.inject_ok(libc::SYS_mprotect, [va, len, prot as u64, 0, 0, 0])
    }

    fn new_thread(&self) -> Result<u64, PlatformError> {
        let t = self.current()?;
        t.clone_thread(&self.layout).map(|tid| tid as u64)
    }

    fn attach_thread(&self, token: u64) -> Result<(), PlatformError> {
        let tid = token as i32;
        let t = StubThread::seize(tid)?;
        self.threads.lock().unwrap().insert(host_tid(), Arc::new(t));
        Ok(())
    }

    fn release_thread(&self) {
        let mut threads = self.threads.lock().unwrap();
        let Some(t) = threads.remove(&host_tid()) else {
            return;
        };
        if threads.is_empty() {
            // The last user: end the process while we still trace it, so its PID
            // cannot have been reused by the time anyone would signal it.
            if let Some(d) = self.cpu_time() {
                self.final_cpu_ns
                    .store(d.as_nanos() as u64, Ordering::SeqCst);
            }
            self.dead.store(true, Ordering::SeqCst);
            drop(threads);
            // SAFETY: plain syscall on our stub process, which still exists (we
            // trace one of its threads and have not reaped it).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = wait(t.tid);
            return;
        }
        drop(threads);
        // Only this thread of the stub process exits; the process (and its
        // memory) stays for the tasks still using it.
        let mut r = t.template;
        r.rip = self.layout.syscall_addr;
        r.rax = libc::SYS_exit as u64;
        r.orig_rax = u64::MAX;
        r.rdi = 0;
        if set_regs(t.tid, &r).is_err() {
            return;
        }
        // A stop can come first: an interrupt's SIGSTOP still pending (a
        // kick that landed after the task left workload code) or a group
        // stop. Resume through it, dropping the signal, until the thread is
        // gone: left stopped, the thread would be untraced when this host
        // thread ends, take the SIGSTOP and bring down the whole stub process
        // with the tasks still using it.
        for _ in 0..1000 {
            if ptrace(libc::PTRACE_CONT, t.tid, 0, 0).is_err() {
                return;
            }
            match wait(t.tid) {
                Ok(st) if libc::WIFSTOPPED(st) => continue,
                _ => return,
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn cpu_time(&self) -> Option<Duration> {
        if self.dead.load(Ordering::SeqCst) {
            return Some(Duration::from_nanos(
                self.final_cpu_ns.load(Ordering::SeqCst),
            ));
        }
        // The stub process's CPUCLOCK_SCHED clock; Linux lets any process read
        // another's process CPU clock (not its thread clocks).
        let id = (!self.pid << 3) | 2;
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid pointer to a timespec.
        if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
            return None;
        }
        Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    fn thread_cpu_time(&self, host_tid: i32) -> Option<Duration> {
        let t = self.threads.lock().unwrap().get(&host_tid).cloned()?;
        Some(Duration::from_nanos(t.run_ns.load(Ordering::Relaxed)))
    }

    /// Looks (without reaping) whether one of the stub's traced threads has
    /// exited: a stub killed from the host dies as a whole. Any sentry thread
    /// may wait for the tracees of another.
    fn alive(&self) -> bool {
        if self.dead.load(Ordering::SeqCst) {
            return true;
        }
        let Some(tid) = self.threads.lock().unwrap().values().next().map(|t| t.tid) else {
            return true;
        };
        // SAFETY: siginfo_t is plain data; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain syscall with a valid siginfo pointer; WNOWAIT leaves the
        // thread for its tracer to reap.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                tid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
            )
        };
        // SAFETY: si_pid is valid for the SIGCHLD siginfo waitid reports.
        if r != 0 || unsafe { info.si_pid() } != tid {
            return true;
        }
        // Tracees report ptrace stops even without WSTOPPED: only an exit counts.
        if !matches!(
            info.si_code,
            libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
        ) {
            return true;
        }
        // A thread being released (removed from the map first) exits on purpose.
        let ours = self.threads.lock().unwrap().values().any(|t| t.tid == tid);
        !ours || self.dead.load(Ordering::SeqCst)
    }
}

impl Drop for PtraceAddressSpace {
    fn drop(&mut self) {
        if self.dead.load(Ordering::SeqCst) {
            return;
        }
        // Threads are still attached (their tasks are gone without releasing
        // them, e.g. on a failed exec): the process is alive, so its PID is ours.
        // SAFETY: plain syscall on our stub process.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let me = host_tid();
        let threads = self.threads.get_mut().unwrap();
        if let Some(t) = threads.get(&me) {
            let _ = wait(t.tid);
        }
    }
}

/// Lets other sentry threads stop a task that is running workload code: they
/// send its stub thread a SIGSTOP, which the tracer sees as an interrupt.
#[derive(Default)]
struct Kick {
    /// Set by `interrupt`; consumed by the next switch.
    requested: AtomicBool,
    /// The stub (process, thread) while the workload runs.
    running: Mutex<Option<(i32, i32)>>,
}

impl Interrupter for Kick {
    fn interrupt(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Some((pid, tid)) = *self.running.lock().unwrap() {
            // SAFETY: plain syscall; the stub thread is ours.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGSTOP) };
        }
    }
}

/// A task's execution context: the host thread itself; the stub thread it runs
/// in is found through the address space.
struct PtraceContext {
    kick: Arc<Kick>,
}

fn downcast(space: &dyn AddressSpace) -> Result<&PtraceAddressSpace, PlatformError> {
    space
        .as_any()
        .downcast_ref::<PtraceAddressSpace>()
        .ok_or(PlatformError::StubDied("not a ptrace address space".into()))
}

/// NT_X86_XSTATE: the regset holding the XSAVE area.
const NT_X86_XSTATE: usize = 0x202;

/// Size of the XSAVE area for the host's enabled features (CPUID.(EAX=0xD,ECX=0).EBX).
pub fn xsave_size() -> usize {
    let r = std::arch::x86_64::__cpuid_count(0xd, 0);
    (r.ebx as usize).max(512 + 64)
}

impl Context for PtraceContext {
    fn switch(
        &mut self,
        space: &dyn AddressSpace,
        regs: &mut Regs,
    ) -> Result<Event, PlatformError> {
        let space = downcast(space)?;
        let t = space.current()?;
        *self.kick.running.lock().unwrap() = Some((space.pid, t.tid));
        if self.kick.requested.swap(false, Ordering::SeqCst) {
            *self.kick.running.lock().unwrap() = None;
            return Ok(Event::Interrupted);
        }
        let start = std::time::Instant::now();
        let res = (|| {
            set_regs(t.tid, regs)?;
            t.resume(libc::PTRACE_SYSEMU, true)
        })();
        t.run_ns
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        *self.kick.running.lock().unwrap() = None;
        let sig = res?;
        get_regs(t.tid, regs)?;
        if sig == libc::SIGTRAP | 0x80 {
            return Ok(Event::Syscall);
        }
        if sig == libc::SIGSTOP {
            self.kick.requested.store(false, Ordering::SeqCst);
            return Ok(Event::Interrupted);
        }
        // SAFETY: siginfo_t is plain data; GETSIGINFO fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        ptrace(
            libc::PTRACE_GETSIGINFO,
            t.tid,
            0,
            &mut info as *mut _ as usize,
        )?;
        // SAFETY: si_addr is valid to read for the fault signals we stop on.
        let addr = unsafe { info.si_addr() } as u64;
        Ok(Event::Fault {
            signo: sig,
            code: info.si_code,
            addr,
        })
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.kick.clone()
    }

    fn fpu_state(&mut self, space: &dyn AddressSpace) -> Result<Vec<u8>, PlatformError> {
        let t = downcast(space)?.current()?;
        let mut buf = vec![0u8; xsave_size()];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        ptrace(
            libc::PTRACE_GETREGSET,
            t.tid,
            NT_X86_XSTATE,
            &mut iov as *mut _ as usize,
        )?;
        buf.truncate(iov.iov_len);
        Ok(buf)
    }

    fn set_fpu_state(
        &mut self,
        space: &dyn AddressSpace,
        state: &[u8],
    ) -> Result<(), PlatformError> {
        let t = downcast(space)?.current()?;
        let mut buf = state.to_vec();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        ptrace(
            libc::PTRACE_SETREGSET,
            t.tid,
            NT_X86_XSTATE,
            &mut iov as *mut _ as usize,
        )?;
        Ok(())
    }
}

/// Registers for starting a program at `entry` with stack `sp`.
pub fn initial_regs(entry: u64, sp: u64) -> Regs {
    let mut r = crate::zeroed_regs();
    r.rip = entry;
    r.rsp = sp;
    r.cs = 0x33;
    r.ss = 0x2b;
    r.eflags = 0x202;
    r.orig_rax = u64::MAX;
    r
}

#[cfg(test)]
mod tests;

//! Signals: siginfo, pending queues, actions, default actions, and the x86-64
//! rt_sigframe built on the workload stack for a handler (and undone by
//! rt_sigreturn), laid out as Linux's arch/x86/kernel/signal_64.c does.

use abi::linux::{le_u32, le_u64, Encoder};
use abi::Errno;

use crate::task::Task;

/// Number of signals (1..=64).
pub const NSIG: usize = 64;

/// The mask bit of signal `sig`.
pub const fn sigbit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// SIGKILL and SIGSTOP can be neither caught, blocked nor ignored.
pub const UNBLOCKABLE: u64 = sigbit(libc::SIGKILL) | sigbit(libc::SIGSTOP);

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 0x1;
pub const SA_NOCLDWAIT: u64 = 0x2;
pub const SA_SIGINFO: u64 = 0x4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

/// A recorded `struct sigaction` (kernel layout: handler, flags, restorer, mask).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// A `siginfo_t` (128 bytes), built field by field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    pub bytes: [u8; 128],
}

impl std::fmt::Debug for SigInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigInfo{{signo: {}, code: {}}}",
            self.signo(),
            self.code()
        )
    }
}

impl SigInfo {
    pub fn new(signo: i32, code: i32) -> SigInfo {
        let mut s = SigInfo { bytes: [0; 128] };
        s.put_i32(0, signo);
        s.put_i32(8, code);
        s
    }

    fn put_i32(&mut self, off: usize, v: i32) {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn put_u64(&mut self, off: usize, v: u64) {
        self.bytes[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// From a sender (kill, tkill, sigqueue): si_pid, si_uid.
    pub fn from_sender(signo: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.put_i32(16, pid);
        s.put_i32(20, uid as i32);
        s
    }

    /// A synchronous fault: si_addr.
    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.put_u64(16, addr);
        s
    }

    /// SIGCHLD: si_pid, si_uid, si_status, si_utime, si_stime (clock ticks).
    pub fn child(code: i32, pid: i32, uid: u32, status: i32, utime: i64, stime: i64) -> SigInfo {
        let mut s = SigInfo::from_sender(libc::SIGCHLD, code, pid, uid);
        s.put_i32(24, status);
        s.put_u64(32, utime as u64);
        s.put_u64(40, stime as u64);
        s
    }

    /// A timer expiry: si_tid (timer id), si_overrun, si_value.
    pub fn timer(signo: i32, timer_id: i32, overrun: i32, value: u64) -> SigInfo {
        let mut s = SigInfo::new(signo, SI_TIMER);
        s.put_i32(16, timer_id);
        s.put_i32(20, overrun);
        s.put_u64(24, value);
        s
    }

    /// SIGIO-style notification of an O_ASYNC file: si_band, si_fd.
    pub fn sigio(signo: i32, code: i32, band: i64, fd: i32) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.put_u64(16, band as u64);
        s.put_i32(24, fd);
        s
    }

    /// From raw workload bytes (rt_sigqueueinfo), with the signal number forced.
    pub fn from_bytes(signo: i32, b: &[u8]) -> SigInfo {
        let mut s = SigInfo { bytes: [0; 128] };
        let n = b.len().min(128);
        s.bytes[..n].copy_from_slice(&b[..n]);
        s.put_i32(0, signo);
        s
    }

    pub fn signo(&self) -> i32 {
        le_u32(&self.bytes, 0) as i32
    }

    pub fn code(&self) -> i32 {
        le_u32(&self.bytes, 8) as i32
    }

    pub fn set_value(&mut self, v: u64) {
        self.put_u64(24, v);
    }
}

/// What a signal does when its action is SIG_DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate with a core dump (the wait status gets the core bit).
    Core,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    use libc::*;
    match sig {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::Core,
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// Whether `sig` with action `act` would be discarded on arrival (Linux's
/// sig_ignored: ignored and not blocked).
pub fn is_ignored(act: &SigAction, sig: i32) -> bool {
    act.handler == SIG_IGN
        || (act.handler == SIG_DFL && matches!(default_action(sig), DefaultAction::Ignore))
}

/// Signals Linux dequeues before others (synchronous faults).
const SYNCHRONOUS: u64 = sigbit(libc::SIGSEGV)
    | sigbit(libc::SIGBUS)
    | sigbit(libc::SIGILL)
    | sigbit(libc::SIGTRAP)
    | sigbit(libc::SIGFPE)
    | sigbit(libc::SIGSYS);

/// A queue of pending signals: one instance of each standard signal, every
/// instance of real-time signals, in order.
#[derive(Default, Debug)]
pub struct SigPending {
    queue: Vec<SigInfo>,
}

/// Most real-time signals queued per queue (RLIMIT_SIGPENDING-like bound).
const MAX_QUEUED: usize = 4096;

impl SigPending {
    /// Queues `info`; false if dropped (a standard signal already pending, or full).
    pub fn push(&mut self, info: SigInfo) -> bool {
        let sig = info.signo();
        if sig < libc::SIGRTMIN() && self.set() & sigbit(sig) != 0 {
            return false;
        }
        if self.queue.len() >= MAX_QUEUED && sig >= libc::SIGRTMIN() {
            return false;
        }
        self.queue.push(info);
        true
    }

    /// The set of pending signals.
    pub fn set(&self) -> u64 {
        self.queue.iter().fold(0, |m, i| m | sigbit(i.signo()))
    }

    /// Takes the first deliverable signal not in `blocked`: synchronous faults
    /// first, then the lowest-numbered.
    pub fn take(&mut self, blocked: u64) -> Option<SigInfo> {
        let avail = self.set() & !blocked;
        if avail == 0 {
            return None;
        }
        let pick = if avail & SYNCHRONOUS != 0 {
            avail & SYNCHRONOUS
        } else {
            avail
        };
        let sig = pick.trailing_zeros() as i32 + 1;
        self.take_signal(sig)
    }

    /// Takes the first queued instance of `sig`.
    pub fn take_signal(&mut self, sig: i32) -> Option<SigInfo> {
        let i = self.queue.iter().position(|s| s.signo() == sig)?;
        Some(self.queue.remove(i))
    }

    /// Drops every pending instance of the signals in `mask`.
    pub fn discard(&mut self, mask: u64) {
        self.queue.retain(|s| mask & sigbit(s.signo()) == 0);
    }
}

// ---- the signal frame ----

/// Size of `struct rt_sigframe` without the FPU state: pretcode, ucontext, siginfo.
const FRAME_SIZE: u64 = 8 + UCONTEXT_SIZE + 128;
/// `struct ucontext`: flags, link, stack_t, sigcontext (256), sigset.
const UCONTEXT_SIZE: u64 = 8 + 8 + 24 + 256 + 8;
/// Offsets inside the frame.
const UC_OFF: u64 = 8;
const MCONTEXT_OFF: u64 = UC_OFF + 40;
const SIGMASK_OFF: u64 = MCONTEXT_OFF + 256;
const INFO_OFF: u64 = UC_OFF + UCONTEXT_SIZE;
const UC_FP_XSTATE: u64 = 0x1;
const UC_SIGCONTEXT_SS: u64 = 0x2;
const UC_STRICT_RESTORE_SS: u64 = 0x4;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// eflags bits a signal frame may restore (Linux's FIX_EFLAGS).
const FIX_EFLAGS: u64 =
    0x0004_0000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x0001_0000;

/// sigaltstack state flags of stack pointer `sp` (SS_ONSTACK / SS_DISABLE / 0).
pub fn altstack_flags(t: &Task, sp: u64) -> i32 {
    let (ss_sp, flags, size) = t.altstack;
    if flags & libc::SS_DISABLE != 0 || size == 0 {
        return libc::SS_DISABLE;
    }
    if sp > ss_sp && sp - ss_sp <= size {
        libc::SS_ONSTACK
    } else {
        0
    }
}

/// Builds the frame for a handler of `sig` and points the registers at it.
/// EFAULT when the stack is unusable (the caller then forces SIGSEGV).
pub fn setup_frame(
    t: &mut Task,
    info: &SigInfo,
    act: &SigAction,
    old_mask: u64,
) -> Result<(), Errno> {
    if act.flags & SA_RESTORER == 0 {
        return Err(Errno::EFAULT);
    }
    let regs = t.regs;
    // Skip the red zone, then maybe switch to the alternate stack.
    let mut sp = regs.rsp.wrapping_sub(128);
    let on_alt = altstack_flags(t, regs.rsp);
    if act.flags & SA_ONSTACK != 0 && on_alt == 0 {
        sp = t.altstack.0.wrapping_add(t.altstack.2);
    }
    let fpu = t.fpu_state().map_err(|_| Errno::EFAULT)?;
    let xsize = fpu.len() as u64;
    sp = sp.wrapping_sub(xsize + 4) & !63;
    let fpstate = sp;
    sp = (sp.wrapping_sub(FRAME_SIZE) & !15).wrapping_sub(8);
    let frame = sp;

    // The FPU state with the software-reserved bytes that tell user space (and
    // rt_sigreturn) it is an XSAVE area.
    let mut x = fpu;
    if x.len() >= 512 {
        let xfeatures = if x.len() >= 520 { le_u64(&x, 512) } else { 3 };
        x[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
        x[468..472].copy_from_slice(&((xsize + 4) as u32).to_le_bytes());
        x[472..480].copy_from_slice(&xfeatures.to_le_bytes());
        x[480..484].copy_from_slice(&(xsize as u32).to_le_bytes());
    }
    x.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    t.copy_out(fpstate, &x)?;

    let mut e = Encoder::with_capacity(FRAME_SIZE as usize);
    e.u64(act.restorer);
    // ucontext
    e.u64(UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS)
        .u64(0);
    e.u64(t.altstack.0)
        .u32(on_alt as u32)
        .u32(0)
        .u64(t.altstack.2);
    // sigcontext
    for v in [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.eflags,
    ] {
        e.u64(v);
    }
    e.u16(regs.cs as u16).u16(0).u16(0).u16(regs.ss as u16);
    let (trapno, err, cr2) = t.fault_context.unwrap_or((0, 0, 0));
    e.u64(err).u64(trapno).u64(old_mask).u64(cr2).u64(fpstate);
    e.zeros(64);
    e.u64(old_mask);
    e.bytes(&info.bytes);
    let bytes = e.finish();
    debug_assert_eq!(bytes.len() as u64, FRAME_SIZE);
    t.copy_out(frame, &bytes)?;

    if on_alt == 0 && act.flags & SA_ONSTACK != 0 && t.altstack.1 & SS_AUTODISARM != 0 {
        t.altstack = (0, libc::SS_DISABLE, 0);
    }
    let r = &mut t.regs;
    r.rsp = frame;
    r.rip = act.handler;
    r.rdi = info.signo() as u64;
    r.rsi = frame + INFO_OFF;
    r.rdx = frame + UC_OFF;
    r.rax = 0;
    r.eflags &= !(0x400 | 0x100 | 0x0001_0000); // DF, TF, RF
    r.cs = 0x33;
    r.ss = 0x2b;
    Ok(())
}

/// SS_AUTODISARM (not in the libc crate).
pub const SS_AUTODISARM: i32 = 1 << 31;

/// rt_sigreturn: restores registers, mask, alternate stack and FPU state from the
/// frame the handler returned through. Returns the restored rax.
pub fn restore_frame(t: &mut Task) -> Result<u64, Errno> {
    let frame = t.regs.rsp.wrapping_sub(8);
    let b = t.copy_in_vec(frame, FRAME_SIZE as usize)?;
    let m = MCONTEXT_OFF as usize;
    let g = |i: usize| le_u64(&b, m + i * 8);
    let mut r = t.regs;
    r.r8 = g(0);
    r.r9 = g(1);
    r.r10 = g(2);
    r.r11 = g(3);
    r.r12 = g(4);
    r.r13 = g(5);
    r.r14 = g(6);
    r.r15 = g(7);
    r.rdi = g(8);
    r.rsi = g(9);
    r.rbp = g(10);
    r.rbx = g(11);
    r.rdx = g(12);
    r.rax = g(13);
    r.rcx = g(14);
    r.rsp = g(15);
    r.rip = g(16);
    r.eflags = (t.regs.eflags & !FIX_EFLAGS) | (g(17) & FIX_EFLAGS);
    r.cs = 0x33;
    r.ss = 0x2b;
    r.orig_rax = u64::MAX;
    let fpstate = le_u64(&b, m + 23 * 8);
    let mask = le_u64(&b, SIGMASK_OFF as usize) & !UNBLOCKABLE;
    // uc_stack: restore the alternate stack settings (ignored if invalid, as a
    // failing sigaltstack would be).
    let u = UC_OFF as usize + 16;
    let (ss_sp, ss_flags, ss_size) = (le_u64(&b, u), le_u32(&b, u + 8) as i32, le_u64(&b, u + 16));
    if fpstate != 0 {
        let head = t.copy_in_vec(fpstate, 512)?;
        let size = if le_u32(&head, 464) == FP_XSTATE_MAGIC1 {
            le_u32(&head, 480) as usize
        } else {
            512
        };
        if size < 512 || size > platform::ptrace::xsave_size().max(512) {
            return Err(Errno::EFAULT);
        }
        let mut x = t.copy_in_vec(fpstate, size)?;
        // The software-reserved bytes are ours, not the CPU's.
        x[464..512].fill(0);
        t.set_fpu_state(&x).map_err(|_| Errno::EFAULT)?;
    }
    t.regs = r;
    t.set_sigmask(mask);
    if altstack_flags(t, r.rsp) != libc::SS_ONSTACK {
        let mode = ss_flags & !SS_AUTODISARM;
        if mode == libc::SS_DISABLE {
            t.altstack = (0, libc::SS_DISABLE, 0);
        } else if ss_size >= 2048 {
            t.altstack = (ss_sp, ss_flags & SS_AUTODISARM, ss_size);
        }
    }
    Ok(r.rax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_order_and_coalescing() {
        let mut p = SigPending::default();
        assert!(p.push(SigInfo::new(libc::SIGUSR1, SI_USER)));
        assert!(
            !p.push(SigInfo::new(libc::SIGUSR1, SI_USER)),
            "standard signals coalesce"
        );
        assert!(p.push(SigInfo::new(libc::SIGRTMIN(), SI_QUEUE)));
        assert!(
            p.push(SigInfo::new(libc::SIGRTMIN(), SI_QUEUE)),
            "real-time signals queue"
        );
        assert!(p.push(SigInfo::new(libc::SIGSEGV, SI_KERNEL)));
        assert_eq!(p.take(0).unwrap().signo(), libc::SIGSEGV, "faults first");
        assert_eq!(
            p.take(sigbit(libc::SIGUSR1)).unwrap().signo(),
            libc::SIGRTMIN()
        );
        assert_eq!(p.take(0).unwrap().signo(), libc::SIGUSR1);
        assert_eq!(p.take(0).unwrap().signo(), libc::SIGRTMIN());
        assert!(p.take(0).is_none());
    }

    #[test]
    fn frame_layout_constants() {
        assert_eq!(UCONTEXT_SIZE, 304);
        assert_eq!(FRAME_SIZE, 440);
        assert_eq!(INFO_OFF, 312);
    }
}

use super::*;

/// x86-64 code: getpid(); exit_group(42) — both emulated by the test.
const CODE: &[u8] = &[
    0xb8, 0x27, 0x00, 0x00, 0x00, // mov eax, 39
    0x0f, 0x05, // syscall
    0xbf, 0x2a, 0x00, 0x00, 0x00, // mov edi, 42
    0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
    0x0f, 0x05, // syscall
    0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, // mov rax, [0] -> fault
];

#[test]
fn runs_code_and_catches_syscalls_and_faults() {
    let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
    let p = Ptrace::new(mf.clone()).unwrap();
    let space = p.new_address_space().unwrap();
    let off = mf.allocate(4096).unwrap();
    mf.write_at(off, CODE);
    space
        .map(0x400000, 4096, off, libc::PROT_READ | libc::PROT_EXEC)
        .unwrap();
    let mut ctx = p.new_context().unwrap();
    let mut regs = initial_regs(0x400000, 0);
    assert_eq!(
        ctx.switch(space.as_ref(), &mut regs).unwrap(),
        Event::Syscall
    );
    assert_eq!(regs.orig_rax, 39);
    regs.rax = 1234;
    assert_eq!(
        ctx.switch(space.as_ref(), &mut regs).unwrap(),
        Event::Syscall
    );
    assert_eq!(regs.orig_rax, 231);
    assert_eq!(regs.rdi, 42);
    match ctx.switch(space.as_ref(), &mut regs).unwrap() {
        Event::Fault { signo, addr, .. } => {
            assert_eq!(signo, libc::SIGSEGV);
            assert_eq!(addr, 0);
        }
        e => panic!("unexpected {e:?}"),
    }
    // Memory written through the memory file is visible to the workload's mapping
    // and protect/unmap work.
    space.protect(0x400000, 4096, libc::PROT_READ).unwrap();
    regs.rip = 0x400000;
    match ctx.switch(space.as_ref(), &mut regs).unwrap() {
        Event::Fault { signo, addr, .. } => {
            assert_eq!(signo, libc::SIGSEGV);
            assert_eq!(addr, 0x400000);
        }
        e => panic!("unexpected {e:?}"),
    }
    space.unmap(0x400000, 4096).unwrap();
    // A second address space is independent.
    let space2 = p.new_address_space().unwrap();
    space2
        .map(0x400000, 4096, off, libc::PROT_READ | libc::PROT_EXEC)
        .unwrap();
    let mut regs = initial_regs(0x400000, 0);
    assert_eq!(
        ctx.switch(space2.as_ref(), &mut regs).unwrap(),
        Event::Syscall
    );
    assert_eq!(regs.orig_rax, 39);
    drop(space);
    drop(space2);
}

/// x86-64 code: loop { getpid() }.
const LOOP: &[u8] = &[
    0xb8, 0x27, 0x00, 0x00, 0x00, // mov eax, 39
    0x0f, 0x05, // syscall
    0xeb, 0xf7, // jmp -9
];

/// x86-64 code: spin forever without syscalls.
const SPIN: &[u8] = &[0xeb, 0xfe];

#[test]
fn threads_interrupts_and_fpu() {
    let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
    let p = Ptrace::new(mf.clone()).unwrap();
    let space = p.new_address_space().unwrap();
    let off = mf.allocate(4096).unwrap();
    mf.write_at(off, LOOP);
    mf.write_at(off + 64, SPIN);
    space
        .map(0x400000, 4096, off, libc::PROT_READ | libc::PROT_EXEC)
        .unwrap();
    let mut ctx = p.new_context().unwrap();
    let mut regs = initial_regs(0x400000, 0);
    assert_eq!(
        ctx.switch(space.as_ref(), &mut regs).unwrap(),
        Event::Syscall
    );

    // FPU state round-trips (MXCSR lives at byte 24 of the XSAVE area).
    let mut fpu = ctx.fpu_state(space.as_ref()).unwrap();
    assert!(fpu.len() >= 512);
    fpu[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    ctx.set_fpu_state(space.as_ref(), &fpu).unwrap();

    // A second task's thread shares the address space.
    let token = space.new_thread().unwrap();
    let s2 = space.clone();
    let handle = std::thread::spawn(move || {
        s2.attach_thread(token).unwrap();
        let mut ctx = Ptrace::new_context_static();
        let mut regs = initial_regs(0x400000 + 64, 0);
        let kick = ctx.interrupter();
        let k2 = kick.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            k2.interrupt();
        });
        // The spinning thread is stopped by the interrupt.
        assert_eq!(
            ctx.switch(s2.as_ref(), &mut regs).unwrap(),
            Event::Interrupted
        );
        assert_eq!(regs.rip, 0x400000 + 64);
        waker.join().unwrap();
        // An interrupt requested while not running makes the next switch return at once.
        kick.interrupt();
        assert_eq!(
            ctx.switch(s2.as_ref(), &mut regs).unwrap(),
            Event::Interrupted
        );
        s2.release_thread();
    });
    handle.join().unwrap();
    // The first thread still runs.
    assert_eq!(
        ctx.switch(space.as_ref(), &mut regs).unwrap(),
        Event::Syscall
    );
    assert_eq!(regs.orig_rax, 39);
}

/// Found by the syscall fuzzer (tests/fuzz): a thread released while a SIGSTOP
/// (an interrupt's kick) was pending stopped on it instead of exiting; the
/// stub thread was left behind, stopped and soon untraced, and the stub
/// process (with the address space's other threads) died of SIGKILL. Its
/// task saw "platform failure: stub process died". The released thread must
/// exit and the other threads keep running.
#[test]
fn release_thread_with_pending_stop() {
    let mf = Arc::new(MemoryFile::new(1 << 30).unwrap());
    let p = Ptrace::new(mf.clone()).unwrap();
    let space = p.new_address_space().unwrap();
    let off = mf.allocate(4096).unwrap();
    mf.write_at(off, CODE);
    space
        .map(0x400000, 4096, off, libc::PROT_READ | libc::PROT_EXEC)
        .unwrap();
    let mut ctx = p.new_context().unwrap();
    let mut regs = initial_regs(0x400000, 0);
    for round in 0..20 {
        let token = space.new_thread().unwrap();
        let s2 = space.clone();
        let (pid, tid) = std::thread::spawn(move || {
            s2.attach_thread(token).unwrap();
            let mut ctx = Ptrace::new_context_static();
            let mut regs = initial_regs(0x400000, 0);
            assert_eq!(ctx.switch(s2.as_ref(), &mut regs).unwrap(), Event::Syscall);
            let a = s2.as_any().downcast_ref::<PtraceAddressSpace>().unwrap();
            let tid = a.current().unwrap().tid;
            // A kick that lands after the task left workload code.
            // SAFETY: plain syscall on our own stub thread.
            unsafe { libc::syscall(libc::SYS_tgkill, a.pid, tid, libc::SIGSTOP) };
            if round % 2 == 1 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            s2.release_thread();
            (a.pid, tid)
        })
        .join()
        .unwrap();
        // The released thread is gone, not stopped.
        let task = format!("/proc/{pid}/task/{tid}");
        for _ in 0..100 {
            if !std::path::Path::new(&task).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            !std::path::Path::new(&task).exists(),
            "round {round}: {task} still exists"
        );
        // The first thread still runs.
        regs.rip = 0x400000;
        assert_eq!(
            ctx.switch(space.as_ref(), &mut regs).unwrap(),
            Event::Syscall,
            "round {round}"
        );
        assert_eq!(regs.orig_rax, 39);
    }
}

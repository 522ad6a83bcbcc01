//! Tests and probes of [`super`]: what the host's KVM does with a PVM-style
//! guest (informational: they print what they find and assert only what the
//! platform relies on), the rewriter, the syscall exit, and cost figures.
//!
//! The probes that assert nothing are `#[ignore]`d: run them on a PVM host with
//! `cargo test --release -p platform kvm_pvm -- --ignored --nocapture`; figures
//! with `... cost -- --test-threads=1 --nocapture`.

mod probe {
    //! What this host's KVM offers of the PVM guest ABI. Found on the host this
    //! was written on (kvm_pvm, 6.18.44-fc): KVM_GET_MSRS / KVM_SET_MSRS process
    //! none of 0x4b564df0..=0x4b564dff (before and after KVM_SET_CPUID2); the
    //! guest's `rdmsr` of 0x4b564df0 in ring 0 raises #GP; the synthetic CPUID
    //! in ring 0 answers leaf 0x40000000 with the plain KVM signature and max
    //! leaf 0x40000001 (no PVM leaves at 0x40000200); KVM_GET_MSR_INDEX_LIST
    //! has KVM's own 0x4b564d00..=07 only.
    use kvm_bindings::{kvm_msr_entry, Msrs, KVM_MAX_CPUID_ENTRIES};
    use kvm_ioctls::Kvm;

    /// `vmcall` from ring 0 with KVM_HC_VAPIC_POLL_IRQ (1, a no-op on KVM) and
    /// PVM's TLB-flush hypercall numbers (RFC v1: 0x17088200 + 3..=5); prints
    /// what comes back. Each run is kicked (SIGUSR2 -> EINTR) after 1 s: on the
    /// host this was written on, none exits: the vCPU stays at the `vmcall`
    /// inside KVM_RUN until the signal.
    #[test]
    #[ignore = "probe without assertions: prints what this host's KVM does (--ignored --nocapture)"]
    fn kvm_pvm_probe_hypercalls() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let nrs = [1u64, 0x1708_8203, 0x1708_8204, 0x1708_8205];
        let mut code = Vec::new();
        for nr in nrs {
            code.push(0xb8); // mov eax, nr
            code.extend_from_slice(&(nr as u32).to_le_bytes());
            code.extend_from_slice(&[0x0f, 0x01, 0xc1, 0xf4]); // vmcall; hlt
        }
        let Some(mut m) = super::mini::Mini::new(&code, false) else {
            return;
        };
        extern "C" fn nothing(_: i32) {}
        // SAFETY: a handler that does nothing, without SA_RESTART (KVM_RUN then
        // returns EINTR); the same one the platform installs for this signal.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = nothing as extern "C" fn(i32) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(crate::kvm::vcpu::KICK_SIGNAL, &sa, std::ptr::null_mut());
        }
        // SAFETY: plain syscall.
        let tid = unsafe { libc::gettid() };
        for (i, nr) in nrs.into_iter().enumerate() {
            let mut r = m.cpu.get_regs().unwrap();
            r.rip = super::mini::CODE + 9 * i as u64;
            m.cpu.set_regs(&r).unwrap();
            let done = Arc::new(AtomicBool::new(false));
            let d2 = done.clone();
            let kicker = std::thread::spawn(move || {
                for _ in 0..100 {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    if d2.load(Ordering::SeqCst) {
                        return;
                    }
                }
                while !d2.load(Ordering::SeqCst) {
                    // SAFETY: plain syscall to this process's thread.
                    unsafe {
                        libc::syscall(
                            libc::SYS_tgkill,
                            libc::getpid(),
                            tid,
                            crate::kvm::vcpu::KICK_SIGNAL,
                        )
                    };
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            });
            let e = m.run();
            done.store(true, Ordering::SeqCst);
            kicker.join().unwrap();
            let r = m.cpu.get_regs().unwrap();
            println!(
                "kvm: vmcall {nr:#x}: {e} rip {:#x} rax {}",
                r.rip, r.rax as i64
            );
        }
    }

    #[test]
    #[ignore = "probe without assertions: prints what this host's KVM does (--ignored --nocapture)"]
    fn kvm_pvm_probe_abi() {
        let Ok(kvm) = Kvm::new() else { return };
        let abi = crate::kvm::pvm::probe_abi(&kvm).unwrap();
        println!("kvm: PVM guest ABI: {abi:?}, usable {}", abi.usable());
    }

    #[test]
    #[ignore = "probe without assertions: prints what this host's KVM does (--ignored --nocapture)"]
    fn kvm_pvm_probe_guest_msrs() {
        // rdmsr of each PVM MSR, then hlt (a #GP with no IDT is a shutdown).
        let mut code = Vec::new();
        for i in [0xc000_0081u32, 0x4b56_4d01]
            .into_iter()
            .chain(0x4b56_4df0u32..=0x4b56_4df7)
        {
            code.push(0xb9);
            code.extend_from_slice(&i.to_le_bytes());
            code.extend_from_slice(&[0x0f, 0x32, 0xf4]);
        }
        // synthetic cpuid 0x40000000 from ring 0
        code.push(0xb8);
        code.extend_from_slice(&0x4000_0000u32.to_le_bytes());
        code.extend_from_slice(&[
            0x31, 0xc9, 0x0f, 0x01, 0x3c, 0x25, 0x50, 0x56, 0x4d, 0xff, 0x0f, 0xa2, 0xf4,
        ]);
        let Some(mut m) = super::mini::Mini::new(&code, false) else {
            return;
        };
        // skip straight to the synthetic cpuid first
        let mut r = m.cpu.get_regs().unwrap();
        r.rip = super::mini::CODE + 10 * 8;
        m.cpu.set_regs(&r).unwrap();
        let e = m.run();
        let r = m.cpu.get_regs().unwrap();
        println!(
            "guest synthetic cpuid: {e} rip {:#x} rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x}",
            r.rip, r.rax, r.rbx, r.rcx, r.rdx
        );
        let mut r = m.cpu.get_regs().unwrap();
        r.rip = super::mini::CODE;
        m.cpu.set_regs(&r).unwrap();
        for i in [0xc000_0081u32, 0x4b56_4d01]
            .into_iter()
            .chain(0x4b56_4df0u32..=0x4b56_4df8)
        {
            let e = m.run();
            let r = m.cpu.get_regs().unwrap();
            println!(
                "guest rdmsr {i:#x}: {e} rip {:#x} rax {:#x} rdx {:#x}",
                r.rip, r.rax, r.rdx
            );
            if !e.contains("Hlt") {
                break;
            }
        }
    }

    #[test]
    #[ignore = "probe without assertions: prints what this host's KVM does (--ignored --nocapture)"]
    fn kvm_pvm_probe_msrs() {
        let Ok(kvm) = Kvm::new() else { return };
        let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).unwrap();
        for e in cpuid.as_slice() {
            if e.function == 0x8000_0001 {
                println!("pdpe1gb: {}", e.edx & (1 << 26) != 0);
            }
            if e.function >= 0x4000_0000 && e.function < 0x5000_0000 {
                println!(
                    "cpuid {:#x}/{}: eax {:#x} ebx {:#x} ecx {:#x} edx {:#x}",
                    e.function, e.index, e.eax, e.ebx, e.ecx, e.edx
                );
            }
        }
        let list = kvm.get_msr_index_list().unwrap();
        let pvm: Vec<u32> = list
            .as_slice()
            .iter()
            .copied()
            .filter(|i| i >> 8 == 0x4b564d)
            .collect();
        println!("msr index list pvm: {pvm:x?}");
        let vm = kvm.create_vm().unwrap();
        let cpu = vm.create_vcpu(0).unwrap();
        cpu.set_cpuid2(&cpuid).unwrap();
        for i in 0x4b56_4df0u32..=0x4b56_4dffu32 {
            let mut m = Msrs::from_entries(&[kvm_msr_entry {
                index: i,
                ..Default::default()
            }])
            .unwrap();
            let n = cpu.get_msrs(&mut m);
            println!("get msr {i:#x}: {:?} {:#x}", n, m.as_slice()[0].data);
        }
        for (i, v) in [
            (0x4b56_4df0u32, 0xff81_ff81_ffff_ff80u64),
            (0x4b56_4df1, 0x1000),
            (0x4b56_4df2, 0x8000),
            (0x4b56_4df4, 0x2000),
            (0x4b56_4df5, 0x3000),
            (0x4b56_4df6, 0x3100),
            (0x4b56_4df7, 0x4000),
        ] {
            let m = Msrs::from_entries(&[kvm_msr_entry {
                index: i,
                data: v,
                ..Default::default()
            }])
            .unwrap();
            let n = cpu.set_msrs(&m);
            let mut g = Msrs::from_entries(&[kvm_msr_entry {
                index: i,
                ..Default::default()
            }])
            .unwrap();
            let r = cpu.get_msrs(&mut g);
            println!(
                "set msr {i:#x} = {v:#x}: {n:?}; get {r:?} {:#x}",
                g.as_slice()[0].data
            );
        }
    }
}

pub(crate) mod mini {
    //! A minimal long-mode guest for probing: 4 MiB at GPA 0 identity mapped with
    //! 2 MiB pages, code at 0x10000, GDT at 0x5000.
    use crate::kvm::vcpu::seg;
    use kvm_bindings::{kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES};
    use kvm_ioctls::{Kvm, VcpuFd, VmFd};

    pub struct Mini {
        pub kvm: Kvm,
        pub vm: VmFd,
        pub cpu: VcpuFd,
        pub mem: *mut u8,
    }

    pub const SIZE: usize = 4 << 20;
    pub const CODE: u64 = 0x10000;

    impl Mini {
        pub fn w64(&self, at: u64, v: u64) {
            assert!((at as usize) + 8 <= SIZE);
            // SAFETY: in bounds of the test mapping.
            unsafe { (self.mem.add(at as usize) as *mut u64).write_unaligned(v) }
        }
        pub fn r64(&self, at: u64) -> u64 {
            // SAFETY: as w64.
            unsafe { (self.mem.add(at as usize) as *const u64).read_unaligned() }
        }
        pub fn bytes(&self, at: u64, b: &[u8]) {
            // SAFETY: as w64.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.mem.add(at as usize), b.len()) }
        }

        /// `user`: the 2 MiB pages are user-accessible.
        pub fn new(code: &[u8], user: bool) -> Option<Mini> {
            let kvm = Kvm::new().ok()?;
            let vm = kvm.create_vm().ok()?;
            // SAFETY: fresh anonymous mapping, leaked for the test's lifetime.
            let mem = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            } as *mut u8;
            let r = kvm_userspace_memory_region {
                slot: 0,
                flags: 0,
                guest_phys_addr: 0,
                memory_size: SIZE as u64,
                userspace_addr: mem as u64,
            };
            // SAFETY: the mapping lives for the process.
            unsafe { vm.set_user_memory_region(r) }.unwrap();
            let cpu = vm.create_vcpu(0).unwrap();
            let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).unwrap();
            cpu.set_cpuid2(&cpuid).unwrap();
            let m = Mini { kvm, vm, cpu, mem };
            let u = if user { 4 } else { 0 };
            m.w64(0x1000, 0x2000 | 7);
            m.w64(0x2000, 0x3000 | 7);
            m.w64(0x3000, 0x83 | u);
            m.w64(0x3008, 0x20_0000 | 0x83 | u);
            let gdt: [u64; 7] = [
                0,
                0,
                0x00af_9b00_0000_ffff,
                0x00cf_9300_0000_ffff,
                0x00cf_fb00_0000_ffff,
                0x00cf_f300_0000_ffff,
                0x00af_fb00_0000_ffff,
            ];
            for (i, d) in gdt.iter().enumerate() {
                m.w64(0x5000 + i as u64 * 8, *d);
            }
            m.bytes(CODE, code);
            let mut s = m.cpu.get_sregs().unwrap();
            s.cs = seg(0x10, true, 0);
            s.ss = seg(0x18, false, 0);
            let d = seg(0, false, 3);
            s.ds = d;
            s.es = d;
            s.fs = d;
            s.gs = d;
            s.gdt.base = 0x5000;
            s.gdt.limit = 7 * 8 - 1;
            s.cr0 = 0x8005_0033;
            s.cr4 = 0x20 | 0x200 | 0x400;
            s.cr3 = 0x1000;
            s.efer = 0x1 | 0x100 | 0x400 | 0x800;
            m.cpu.set_sregs(&s).unwrap();
            let mut r = m.cpu.get_regs().unwrap();
            r.rip = CODE;
            r.rsp = 0x9000;
            r.rflags = 2;
            m.cpu.set_regs(&r).unwrap();
            Some(m)
        }

        pub fn run(&mut self) -> String {
            match self.cpu.run() {
                Ok(e) => format!("{e:?}"),
                Err(e) => format!("err {e}"),
            }
        }
    }
}

mod cost {
    //! Where a ring-3 round trip's time goes on this host (mini guest).
    use super::mini::{Mini, CODE};
    use kvm_bindings::{kvm_msr_entry, kvm_segment, Msrs};
    use std::time::Instant;

    const STUB: u64 = CODE; // ring-0 entry stub
    const LSTAR: u64 = CODE + 0x100;
    const UD_HANDLER: u64 = CODE + 0x200;
    const BARE: u64 = CODE + 0x300;
    const NOPS: u64 = CODE + 0x400;
    const USER: u64 = CODE + 0x1000;

    fn jmp_to(from_next: u64, to: u64) -> Vec<u8> {
        let mut v = vec![0xe9];
        v.extend_from_slice(&((to as i64 - from_next as i64) as i32).to_le_bytes());
        v
    }

    /// Loads the IDT (0x7000) and TSS (0x6000) the mini guest's stubs use, with
    /// `adjust` applied to the special registers, and the syscall MSRs.
    /// (LSTAR: `CODE + 0x100` in both probe guests.)
    pub(super) fn load_tables(m: &Mini, adjust: impl FnOnce(&mut kvm_bindings::kvm_sregs)) {
        let mut s = m.cpu.get_sregs().unwrap();
        s.idt.base = 0x7000;
        s.idt.limit = 32 * 16 - 1;
        s.tr = kvm_segment {
            base: 0x6000,
            limit: 103,
            selector: 0x40,
            type_: 11,
            present: 1,
            ..Default::default()
        };
        adjust(&mut s);
        m.cpu.set_sregs(&s).unwrap();
        let msr = |index, data| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        };
        let msrs = Msrs::from_entries(&[
            msr(0xc000_0081, 0x23u64 << 48 | 0x10u64 << 32),
            msr(0xc000_0082, LSTAR),
            msr(0xc000_0084, 0x4_7700),
        ])
        .unwrap();
        assert_eq!(m.cpu.set_msrs(&msrs).unwrap(), 3);
    }

    fn setup(m: &Mini, entry: &[u8], user: &[u8]) {
        m.bytes(STUB, entry);
        // LSTAR: hlt; jmp STUB
        let mut l = vec![0xf4];
        l.extend(jmp_to(LSTAR + 6, STUB));
        m.bytes(LSTAR, &l);
        // #UD handler: hlt; add rsp, 40; jmp STUB
        let mut u = vec![0xf4, 0x48, 0x83, 0xc4, 40];
        u.extend(jmp_to(UD_HANDLER + 10, STUB));
        m.bytes(UD_HANDLER, &u);
        let mut b = vec![0xf4];
        b.extend(jmp_to(BARE + 6, BARE));
        m.bytes(BARE, &b);
        let mut n = vec![0x90; 100];
        n.push(0xf4);
        n.extend(jmp_to(NOPS + 106, NOPS));
        m.bytes(NOPS, &n);
        m.bytes(USER, user);
        // IDT at 0x7000: vector 6 -> UD_HANDLER; TSS at 0x6000 with RSP0 0x8000.
        let at = UD_HANDLER;
        let lo = (at & 0xffff) | 0x10 << 16 | 0x8e << 40 | ((at >> 16) & 0xffff) << 48;
        m.w64(0x7000 + 6 * 16, lo);
        m.w64(0x7000 + 6 * 16 + 8, 0);
        m.w64(0x6000 + 4, 0x8000);
        load_tables(m, |_| {});
    }

    fn bench(m: &mut Mini, rip: u64, n: u32) -> (f64, String) {
        let mut r = m.cpu.get_regs().unwrap();
        r.rip = rip;
        r.rsp = 0x9000;
        m.cpu.set_regs(&r).unwrap();
        let first = m.run();
        if !first.contains("Hlt") {
            let r = m.cpu.get_regs().unwrap();
            return (0.0, format!("{first} at {:#x}", r.rip));
        }
        let start = Instant::now();
        for _ in 0..n {
            let e = m.run();
            if !e.contains("Hlt") {
                return (0.0, e);
            }
        }
        let r = m.cpu.get_regs().unwrap();
        (
            start.elapsed().as_secs_f64() * 1e6 / n as f64,
            format!("rip {:#x}", r.rip),
        )
    }

    fn lstar_for(name: &str) -> Option<u64> {
        if name.contains("supervisor LSTAR") {
            Some(0x80_0000 + LSTAR)
        } else if name.contains("non-canonical") {
            Some(0x8000_0000_0000)
        } else {
            None
        }
    }

    #[test]
    #[ignore = "probe without assertions: prints what this host's KVM does (--ignored --nocapture)"]
    fn kvm_pvm_cost_breakdown() {
        // Entry by sysretq: mov rsp, 0x9000; mov rcx, USER; mov r11d, 0x202; sysretq
        let mut sysret = vec![0x48, 0xc7, 0xc4, 0x00, 0x90, 0, 0, 0x48, 0xc7, 0xc1];
        sysret.extend_from_slice(&(USER as u32).to_le_bytes());
        sysret.extend_from_slice(&[0x41, 0xbb, 0x02, 0x02, 0, 0, 0x48, 0x0f, 0x07]);
        // Entry by iretq: mov rsp, 0x9000; push 0x2b; push 0x9000; push 0x202; push 0x33; push USER; iretq
        let mut iret = vec![0x48, 0xc7, 0xc4, 0x00, 0x90, 0, 0];
        iret.extend_from_slice(&[
            0x6a, 0x2b, 0x68, 0x00, 0x90, 0, 0, 0x68, 0x02, 0x02, 0, 0, 0x6a, 0x33, 0x68,
        ]);
        iret.extend_from_slice(&(USER as u32).to_le_bytes());
        iret.extend_from_slice(&[0x48, 0xcf]);
        let syscall_user = [0x0f, 0x05, 0xeb, 0xfc];
        let ud_user = [0x0f, 0x0b, 0xeb, 0xfc];
        let n = 5000;
        for (name, entry, user, rip) in [
            ("bare ring-0 hlt", &sysret, &syscall_user, BARE),
            ("ring-0 100 nops + hlt", &sysret, &syscall_user, NOPS),
            ("sysretq -> syscall -> hlt", &sysret, &syscall_user, STUB),
            ("iretq -> syscall -> hlt", &iret, &syscall_user, STUB),
            ("sysretq -> ud2 -> hlt", &sysret, &ud_user, STUB),
            ("iretq -> ud2 -> hlt", &iret, &ud_user, STUB),
            (
                "iretq -> syscall with EFER.SCE=0 -> hlt",
                &iret,
                &syscall_user,
                STUB,
            ),
            (
                "iretq -> syscall -> #PF at supervisor LSTAR -> hlt",
                &iret,
                &syscall_user,
                STUB,
            ),
            (
                "iretq -> syscall -> #GP at non-canonical LSTAR -> hlt",
                &iret,
                &syscall_user,
                STUB,
            ),
        ] {
            let Some(mut m) = Mini::new(&[], true) else {
                return;
            };
            setup(&m, entry, user);
            if name.contains("SCE=0") {
                let mut s = m.cpu.get_sregs().unwrap();
                s.efer &= !1;
                m.cpu.set_sregs(&s).unwrap();
            }
            if let Some(lstar) = lstar_for(name) {
                // #PF (14) and #GP (13) handlers: hlt; add rsp, 48; jmp STUB
                let h = CODE + 0x500;
                let mut u = vec![0xf4, 0x48, 0x83, 0xc4, 48];
                u.extend(jmp_to(h + 10, STUB));
                m.bytes(h, &u);
                for v in [13u64, 14] {
                    let lo = (h & 0xffff) | 0x10 << 16 | 0x8e << 40 | ((h >> 16) & 0xffff) << 48;
                    m.w64(0x7000 + v * 16, lo);
                    m.w64(0x7000 + v * 16 + 8, 0);
                }
                // PD[4]: VA 8 MiB -> GPA 0, supervisor only.
                m.w64(0x3020, 0x83);
                let msrs = Msrs::from_entries(&[kvm_msr_entry {
                    index: 0xc000_0082,
                    data: lstar,
                    ..Default::default()
                }])
                .unwrap();
                m.cpu.set_msrs(&msrs).unwrap();
            }
            let (us, what) = bench(&mut m, rip, n);
            if lstar_for(name).is_some() {
                let r = m.cpu.get_regs().unwrap();
                let f: Vec<String> = (0..6)
                    .map(|i| format!("{:#x}", m.r64(r.rsp + i * 8)))
                    .collect();
                println!(
                    "mini: {name}: frame [err rip cs rflags rsp ss] {f:?} rcx {:#x} r11 {:#x}",
                    r.rcx, r.r11
                );
            }
            println!("mini: {name}: {us:.2} us ({what})");
        }
    }
}

mod ring3 {
    //! Can a vCPU that never leaves ring 3 exit to the host cheaply? `syscall`
    //! reaches LSTAR still in ring 3 here; LSTAR points at a user page whose
    //! store to an address without a memslot exits (KVM_EXIT_MMIO).
    use super::cost::load_tables;
    use super::mini::{Mini, CODE};
    use crate::kvm::vcpu::seg;
    use std::time::Instant;

    const LSTAR: u64 = CODE + 0x100;
    const UD_HANDLER: u64 = CODE + 0x200;
    const USER: u64 = CODE + 0x1000;
    const MMIO_VA: u64 = 0x40_0000;

    /// `mov [rip+d], al` targeting MMIO_VA, for an instruction at `at`.
    fn mmio_store(at: u64) -> Vec<u8> {
        let mut v = vec![0x88, 0x05];
        v.extend_from_slice(&((MMIO_VA as i64 - (at as i64 + 6)) as i32).to_le_bytes());
        v
    }

    #[test]
    fn kvm_pvm_ring3_exits() {
        let Some(mut m) = Mini::new(&[], true) else {
            return;
        };
        // PD[2]: VA 4 MiB -> GPA 1 GiB (no memslot), user.
        m.w64(0x3010, 0x4000_0000 | 0x87);
        // LSTAR: store; jmp rcx
        let mut l = mmio_store(LSTAR);
        l.extend_from_slice(&[0xff, 0xe1]);
        m.bytes(LSTAR, &l);
        // #UD handler (ring 3 via a DPL-3 code segment, IST 1): store; jmp USER+4
        let mut u = mmio_store(UD_HANDLER);
        u.push(0xe9);
        u.extend_from_slice(&((USER as i64 + 4 - (UD_HANDLER as i64 + 11)) as i32).to_le_bytes());
        m.bytes(UD_HANDLER, &u);
        // user: syscall; jmp back   ... at +4: ud2; jmp back; at +8: store; jmp back
        m.bytes(USER, &[0x0f, 0x05, 0xeb, 0xfc, 0x0f, 0x0b, 0xeb, 0xfc]);
        let mut st = mmio_store(USER + 8);
        st.extend_from_slice(&[0xeb, 0xf8]);
        m.bytes(USER + 8, &st);
        // user at +0x20: 1000 x (add rax,1) loop: mov ecx, 1000; l: add rax,1; dec ecx; jnz l; store; jmp start
        let mut lp = vec![
            0xb9, 0xe8, 0x03, 0, 0, 0x48, 0x83, 0xc0, 0x01, 0xff, 0xc9, 0x75, 0xf8,
        ];
        lp.extend(mmio_store(USER + 0x20 + 13));
        lp.extend_from_slice(&[0xeb, 0xeb]);
        m.bytes(USER + 0x20, &lp);
        let at = UD_HANDLER;
        let lo = (at & 0xffff) | 0x33 << 16 | 1 << 32 | 0x8e << 40 | ((at >> 16) & 0xffff) << 48;
        m.w64(0x7000 + 6 * 16, lo);
        m.w64(0x7000 + 6 * 16 + 8, 0);
        m.w64(0x6000 + 4, 0x8000);
        m.w64(0x6000 + 0x24, 0x8800); // IST1
        load_tables(&m, |s| {
            s.cs = seg(0x33, true, 3);
            s.ss = seg(0x2b, false, 3);
        });
        for (name, rip) in [
            ("syscall", USER),
            ("ud2", USER + 4),
            ("user store", USER + 8),
            ("user loop+store", USER + 0x20),
        ] {
            let mut r = m.cpu.get_regs().unwrap();
            r.rip = rip;
            r.rsp = 0x9000;
            r.rflags = 0x202;
            m.cpu.set_regs(&r).unwrap();
            let first = m.run();
            let r = m.cpu.get_regs().unwrap();
            let s = m.cpu.get_sregs().unwrap();
            println!(
                "ring3 {name}: first exit {first} rip {:#x} rcx {:#x} r11 {:#x} rsp {:#x} cs {:#x} dpl {}",
                r.rip, r.rcx, r.r11, r.rsp, s.cs.selector, s.cs.dpl
            );
            if name == "ud2" {
                for i in 0..6 {
                    print!("{:#x} ", m.r64(0x8800 - 48 + i * 8));
                }
                println!();
            }
            if !first.contains("Mmio") {
                continue;
            }
            let n = 5000;
            let start = Instant::now();
            let mut bad = None;
            for _ in 0..n {
                let e = m.run();
                if !e.contains("Mmio") {
                    bad = Some(e);
                    break;
                }
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!("ring3 {name}: {us:.2} us per round trip ({bad:?})");
        }
    }
}

mod rewrite {
    //! Does a guest (emulated ring-0) write of a page-table entry make a host
    //! edit visible to the shadow MMU, where CR3 loads and invlpg do not?
    use super::mini::{Mini, CODE};
    use crate::kvm::vcpu::seg;
    use kvm_ioctls::VcpuExit;

    const USER: u64 = CODE + 0x1000;
    const MMIO_VA: u64 = 0x40_0000;
    const DATA_VA: u64 = 0x20_0000;
    const PT: u64 = 0x4000;

    #[test]
    #[ignore = "probe without assertions: prints what this host's KVM does (--ignored --nocapture)"]
    fn kvm_pvm_guest_rewrite() {
        let Some(mut m) = Mini::new(&[], true) else {
            return;
        };
        m.w64(0x3010, 0x4000_0000 | 0x87);
        // PD[1] -> 4 KiB table at PT; PT[0] -> GPA 0x100000 (user, rw).
        m.w64(0x3008, PT | 7);
        m.w64(PT, 0x10_0000 | 7);
        m.w64(0x10_0000, 0x1234);
        // user: mov rax, [DATA_VA]; mov [rip+d], al; jmp user
        let mut u = vec![0x48, 0x8b, 0x04, 0x25];
        u.extend_from_slice(&(DATA_VA as u32).to_le_bytes());
        u.extend_from_slice(&[0x88, 0x05]);
        u.extend_from_slice(&((MMIO_VA as i64 - (USER as i64 + 14)) as i32).to_le_bytes());
        u.extend_from_slice(&[0xeb, 0xf0]);
        m.bytes(USER, &u);
        let mut s = m.cpu.get_sregs().unwrap();
        s.cs = seg(0x33, true, 3);
        s.ss = seg(0x2b, false, 3);
        m.cpu.set_sregs(&s).unwrap();
        let go = |m: &mut Mini| {
            let mut r = m.cpu.get_regs().unwrap();
            r.rip = USER;
            r.rax = 0;
            r.rflags = 0x202;
            m.cpu.set_regs(&r).unwrap();
            let e = m.run();
            let r = m.cpu.get_regs().unwrap();
            format!("{e} rip {:#x} rax {:#x}", r.rip, r.rax)
        };
        println!("rewrite: mapped: {}", go(&mut m));
        m.w64(PT, 0);
        println!("rewrite: after host unmap: {}", go(&mut m));
        // A second vCPU, ring 0: mov qword [PT], 0; hlt
        let mut helper = m.vm.create_vcpu(1).unwrap();
        let cpuid = m
            .kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .unwrap();
        helper.set_cpuid2(&cpuid).unwrap();
        let mut hs = m.cpu.get_sregs().unwrap();
        hs.cs = seg(0x10, true, 0);
        hs.ss = seg(0x18, false, 0);
        helper.set_sregs(&hs).unwrap();
        let stub = CODE + 0x800;
        m.bytes(
            stub,
            &[0x48, 0xc7, 0x04, 0x25, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0xf4],
        );
        let mut r = helper.get_regs().unwrap();
        r.rip = stub;
        r.rsp = 0x9000;
        r.rflags = 2;
        helper.set_regs(&r).unwrap();
        let e = match helper.run() {
            Ok(VcpuExit::Hlt) => "hlt".to_string(),
            other => format!("{other:?}"),
        };
        println!("rewrite: helper: {e}");
        println!("rewrite: after guest rewrite: {}", go(&mut m));
    }
}

mod bench {
    use std::sync::Arc;
    use std::time::Instant;

    use crate::kvm::KvmPlatform;
    use crate::{zeroed_regs, Event, MemoryFile, Platform};

    const CODE: u64 = 0x40_0000;
    const DATA: u64 = 0x50_0000;

    /// Per iteration: map DATA (rw), run code that reads it (syscall exit),
    /// then unmap (or mprotect to none) and run again (expecting the fault).
    /// Prints the unmap/protect call time and the whole iteration time.
    #[test]
    fn kvm_unmap_protect_cost() {
        let mf = Arc::new(MemoryFile::new(64 << 20).unwrap());
        let p = match KvmPlatform::new(mf.clone()) {
            Ok(p) => p,
            Err(e) => {
                println!("SKIP: /dev/kvm not usable: {e}");
                return;
            }
        };
        let space = p.new_address_space().unwrap();
        // mov rax, [DATA]; syscall; jmp start
        let code = [
            0x48, 0x8b, 0x04, 0x25, 0, 0, 0x50, 0, 0x0f, 0x05, 0xeb, 0xf4,
        ];
        let off = mf.allocate(4096).unwrap();
        mf.write_at(off, &code);
        space
            .map(CODE, 4096, off, libc::PROT_READ | libc::PROT_EXEC)
            .unwrap();
        let data = mf.allocate(4096).unwrap();
        mf.write_at(data, &0x77u64.to_le_bytes());
        let mut ctx = p.new_context().unwrap();
        for op in ["none", "unmap", "protect"] {
            let n = 300;
            let mut call = 0.0;
            let start = Instant::now();
            for _ in 0..n {
                space
                    .map(DATA, 4096, data, libc::PROT_READ | libc::PROT_WRITE)
                    .unwrap();
                let mut r = zeroed_regs();
                r.rip = CODE;
                r.eflags = 0x202;
                assert_eq!(ctx.switch(&*space, &mut r).unwrap(), Event::Syscall);
                assert_eq!(r.rax, 0x77);
                let t = Instant::now();
                match op {
                    "unmap" => space.unmap(DATA, 4096).unwrap(),
                    "protect" => space.protect(DATA, 4096, libc::PROT_NONE).unwrap(),
                    _ => {}
                }
                call += t.elapsed().as_secs_f64();
                r.rip = CODE;
                let ev = ctx.switch(&*space, &mut r).unwrap();
                if op == "none" {
                    assert_eq!(ev, Event::Syscall);
                } else {
                    assert!(
                        matches!(
                            ev,
                            Event::Fault {
                                signo: libc::SIGSEGV,
                                ..
                            }
                        ),
                        "{ev:?}"
                    );
                }
            }
            let total = start.elapsed().as_secs_f64();
            println!(
                "kvm: {op}: {:.1} us per call, {:.1} us per iteration (map, run, {op}, run to the fault)",
                call * 1e6 / n as f64,
                total * 1e6 / n as f64
            );
        }
    }
}

mod rewriter_tests {
    //! The rewriter on real page tables (each test passes trivially where
    //! KVM does not shadow page tables, and says so).
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::kvm::{Exit, PageTables, Vcpu, Vm};
    use crate::{zeroed_regs, MemoryFile, Regs};

    const CODE: u64 = 0x40_0000;

    struct Env {
        mf: Arc<MemoryFile>,
        vm: Arc<Vm>,
        pt: PageTables,
    }

    fn env(code: &[u8]) -> Option<Env> {
        let mf = Arc::new(MemoryFile::new(256 << 20).unwrap());
        let vm = match Vm::new(mf.clone()) {
            Ok(vm) => vm,
            Err(e) => {
                println!("SKIP: /dev/kvm not usable: {e}");
                return None;
            }
        };
        println!(
            "kvm: shadow paging {}, rewriter {}",
            vm.shadow_paging(),
            vm.rewrites_page_tables()
        );
        let pt = PageTables::new(mf.clone()).unwrap();
        let off = mf.allocate(4096).unwrap();
        mf.write_at(off, code);
        pt.map(CODE, 4096, off, libc::PROT_READ | libc::PROT_EXEC)
            .unwrap();
        Some(Env { mf, vm, pt })
    }

    fn regs_at(rip: u64) -> Regs {
        let mut r = zeroed_regs();
        r.rip = rip;
        r.eflags = 0x202;
        r
    }

    /// `mov rax, [rbx]; syscall; mov [rbx], rax; syscall` then loops.
    const READ_WRITE: [u8; 12] = [
        0x48, 0x8b, 0x03, 0x0f, 0x05, 0x48, 0x89, 0x03, 0x0f, 0x05, 0xeb, 0xf4,
    ];

    fn sync(e: &Env) {
        e.vm.sync_translations(&e.pt).unwrap();
    }

    #[test]
    fn kvm_rewriter_unmap_protect_replace() {
        let Some(e) = env(&READ_WRITE) else { return };
        if e.vm.shadow_paging() {
            assert!(e.vm.rewrites_page_tables(), "the rewriter probe failed");
        }
        let mut cpu = Vcpu::new(&e.vm).unwrap();
        // Pages in three different leaf tables (and two PDPT slots).
        let vas = [0x50_0000u64, 0x50_1000, 0x60_0000, 0x80_0000_0000];
        let mut offs = Vec::new();
        for (i, va) in vas.iter().enumerate() {
            let off = e.mf.allocate(4096).unwrap();
            e.mf.write_at(off, &(0x100 + i as u64).to_le_bytes());
            e.pt.map(*va, 4096, off, libc::PROT_READ | libc::PROT_WRITE)
                .unwrap();
            offs.push(off);
        }
        let read = |cpu: &mut Vcpu, va: u64| {
            let mut r = regs_at(CODE);
            r.rbx = va;
            let exit = cpu.run(&e.pt, &mut r).unwrap();
            (exit, r.rax)
        };
        let write = |cpu: &mut Vcpu, va: u64| {
            let mut r = regs_at(CODE + 5);
            r.rbx = va;
            r.rax = 0x5555;
            cpu.run(&e.pt, &mut r).unwrap()
        };
        for (i, va) in vas.iter().enumerate() {
            assert_eq!(read(&mut cpu, *va), (Exit::Syscall, 0x100 + i as u64));
            assert_eq!(write(&mut cpu, *va), Exit::Syscall);
        }
        // Unmap one, write-protect one, make one PROT_NONE, replace one.
        e.pt.unmap(vas[0], 4096).unwrap();
        sync(&e);
        e.pt.protect(vas[1], 4096, libc::PROT_READ).unwrap();
        sync(&e);
        e.pt.protect(vas[2], 4096, libc::PROT_NONE).unwrap();
        sync(&e);
        let fresh = e.mf.allocate(4096).unwrap();
        e.mf.write_at(fresh, &0x777u64.to_le_bytes());
        e.pt.map(vas[3], 4096, fresh, libc::PROT_READ).unwrap();
        sync(&e);
        let pf = |cpu: &mut Vcpu, va: u64, w: bool| {
            let exit = if w { write(cpu, va) } else { read(cpu, va).0 };
            match exit {
                Exit::Exception {
                    vector: 14,
                    error,
                    cr2,
                } if cr2 == va => error,
                other => panic!("{va:#x} write {w}: {other:?}"),
            }
        };
        assert_eq!(pf(&mut cpu, vas[0], false) & 1, 0, "unmapped: not present");
        assert_eq!(
            read(&mut cpu, vas[1]),
            (Exit::Syscall, 0x5555),
            "read-only still reads"
        );
        assert_eq!(
            pf(&mut cpu, vas[1], true) & 3,
            3,
            "read-only: write protection fault"
        );
        assert_eq!(pf(&mut cpu, vas[2], false) & 1, 0, "PROT_NONE: not present");
        assert_eq!(
            read(&mut cpu, vas[3]),
            (Exit::Syscall, 0x777),
            "replaced: new frame"
        );
        assert_eq!(pf(&mut cpu, vas[3], true) & 3, 3, "replaced read-only");
        // Freed tables: unmapping the last page of a leaf table prunes it; a new
        // mapping there gets a fresh table.
        e.pt.unmap(vas[1], 4096).unwrap();
        e.pt.unmap(vas[2], 4096).unwrap();
        sync(&e);
        e.pt.map(vas[2], 4096, offs[0], libc::PROT_READ).unwrap();
        sync(&e);
        assert_eq!(
            read(&mut cpu, vas[2]),
            (Exit::Syscall, 0x5555),
            "offs[0] holds what the first loop wrote"
        );
        assert_eq!(pf(&mut cpu, vas[1], false) & 1, 0);
    }

    /// An unmap reaches a vCPU that is running the table at that moment (it
    /// loops reading the page, with no exit of its own).
    #[test]
    fn kvm_rewriter_running_vcpu() {
        // loop: mov rax, [rbx]; jmp loop
        let Some(e) = env(&[0x48, 0x8b, 0x03, 0xeb, 0xfb]) else {
            return;
        };
        let data = e.mf.allocate(4096).unwrap();
        let va = 0x50_0000;
        e.pt.map(va, 4096, data, libc::PROT_READ).unwrap();
        let e = Arc::new(e);
        let e2 = e.clone();
        let t = std::thread::spawn(move || {
            let mut cpu = Vcpu::new(&e2.vm).unwrap();
            let mut r = regs_at(CODE);
            r.rbx = va;
            let start = Instant::now();
            let exit = cpu.run(&e2.pt, &mut r).unwrap();
            (exit, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        let unmapped = Instant::now();
        e.pt.unmap(va, 4096).unwrap();
        e.vm.sync_translations(&e.pt).unwrap();
        let (exit, ran) = t.join().unwrap();
        assert!(
            matches!(exit, Exit::Exception { vector: 14, cr2, .. } if cr2 == va),
            "{exit:?}"
        );
        println!(
            "kvm: running vCPU faulted {:?} after the unmap began (ran {ran:?})",
            unmapped.elapsed()
        );
    }

    /// More edits than the list holds: the zap covers them.
    #[test]
    fn kvm_rewriter_overflow_zaps() {
        let Some(e) = env(&READ_WRITE) else { return };
        let mut cpu = Vcpu::new(&e.vm).unwrap();
        let base = 0x1000_0000u64;
        let n = 5000u64;
        let off = e.mf.allocate(n * 4096).unwrap();
        e.pt.map(base, n * 4096, off, libc::PROT_READ).unwrap();
        let mut r = regs_at(CODE);
        r.rbx = base + (n - 1) * 4096;
        assert_eq!(cpu.run(&e.pt, &mut r).unwrap(), Exit::Syscall);
        e.pt.unmap(base, n * 4096).unwrap();
        sync(&e);
        let mut r = regs_at(CODE);
        r.rbx = base + (n - 1) * 4096;
        let exit = cpu.run(&e.pt, &mut r).unwrap();
        assert!(
            matches!(exit, Exit::Exception { vector: 14, .. }),
            "{exit:?}"
        );
    }

    /// Table pages of a dropped address space reused by the next one: KVM must
    /// not reuse what it derived from them (the old mappings).
    #[test]
    fn kvm_rewriter_dropped_tables_reused() {
        use crate::kvm::KvmPlatform;
        use crate::{Event, Platform};
        let mf = Arc::new(MemoryFile::new(64 << 20).unwrap());
        let p = match KvmPlatform::new(mf.clone()) {
            Ok(p) => p,
            Err(e) => {
                println!("SKIP: /dev/kvm not usable: {e}");
                return;
            }
        };
        println!("kvm: rewriter {}", p.vm().rewrites_page_tables());
        let code = mf.allocate(4096).unwrap();
        mf.write_at(code, &READ_WRITE);
        let frames: Vec<u64> = (0..3).map(|_| mf.allocate(4096).unwrap()).collect();
        for (i, f) in frames.iter().enumerate() {
            mf.write_at(*f, &(0x11 * (i as u64 + 1)).to_le_bytes());
        }
        let mut ctx = p.new_context().unwrap();
        let va = 0x50_0000;
        for (round, f) in frames.iter().enumerate() {
            let space = p.new_address_space().unwrap();
            space
                .map(CODE, 4096, code, libc::PROT_READ | libc::PROT_EXEC)
                .unwrap();
            space.map(va, 4096, *f, libc::PROT_READ).unwrap();
            let mut r = regs_at(CODE);
            r.rbx = va;
            assert_eq!(ctx.switch(&*space, &mut r).unwrap(), Event::Syscall);
            assert_eq!(
                r.rax,
                0x11 * (round as u64 + 1),
                "round {round}: a stale mapping"
            );
        }
    }

    /// A leaf table freed by an unmap and reused for another range: KVM must
    /// not reuse what it derived from it.
    #[test]
    fn kvm_rewriter_pruned_table_reused() {
        let Some(e) = env(&READ_WRITE) else { return };
        let mut cpu = Vcpu::new(&e.vm).unwrap();
        let frames: Vec<u64> = (0..4).map(|_| e.mf.allocate(4096).unwrap()).collect();
        for (i, f) in frames.iter().enumerate() {
            e.mf.write_at(*f, &(0x11 * (i as u64 + 1)).to_le_bytes());
        }
        let read = |cpu: &mut Vcpu, va: u64| {
            let mut r = regs_at(CODE);
            r.rbx = va;
            let exit = cpu.run(&e.pt, &mut r).unwrap();
            (exit, r.rax)
        };
        // Each round maps the same slot of a leaf table 2 MiB further on; the
        // previous round's table was freed by its unmap.
        for (i, f) in frames.iter().enumerate() {
            let va = 0x1000_0000 + (i as u64) * (2 << 20) + 0x5000;
            e.pt.map(va, 4096, *f, libc::PROT_READ).unwrap();
            sync(&e);
            assert_eq!(
                read(&mut cpu, va),
                (Exit::Syscall, 0x11 * (i as u64 + 1)),
                "round {i}"
            );
            e.pt.unmap(va, 4096).unwrap();
            sync(&e);
            assert!(matches!(
                read(&mut cpu, va).0,
                Exit::Exception { vector: 14, .. }
            ));
        }
    }

    /// The syscall exit (whichever LSTAR this host got) leaves the registers
    /// as Linux shows them: rcx = rip after the instruction, r11 = rflags.
    #[test]
    fn kvm_syscall_registers() {
        // stc; mov eax, 39; syscall; syscall
        let Some(e) = env(&[0xf9, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x05]) else {
            return;
        };
        println!(
            "kvm: LSTAR {:#x}{}",
            e.vm.lstar(),
            if e.vm.lstar() == crate::kvm::pvm::SYSCALL_GP_LSTAR {
                " (syscalls exit through #GP)"
            } else {
                ""
            }
        );
        let mut cpu = Vcpu::new(&e.vm).unwrap();
        let mut r = regs_at(CODE);
        r.rsp = 0x7fff_0000;
        r.fs_base = 0x1234_5000;
        r.gs_base = 0x5678_9000;
        r.r10 = 0x1010;
        assert_eq!(cpu.run(&e.pt, &mut r).unwrap(), Exit::Syscall);
        assert_eq!((r.orig_rax, r.rax), (39, 39));
        assert_eq!((r.rip, r.rcx), (CODE + 8, CODE + 8));
        assert_eq!(r.r11 & 0xfff, 0x203, "r11: rflags with CF");
        assert_eq!(r.eflags & 0xfff, 0x203);
        assert_eq!(r.rsp, 0x7fff_0000);
        assert_eq!(r.r10, 0x1010);
        assert_eq!((r.fs_base, r.gs_base), (0x1234_5000, 0x5678_9000));
        assert_eq!((r.cs, r.ss), (0x33, 0x2b));
        r.rax = 5;
        assert_eq!(cpu.run(&e.pt, &mut r).unwrap(), Exit::Syscall);
        assert_eq!((r.rip, r.rcx, r.orig_rax), (CODE + 10, CODE + 10, 5));
    }

    /// Interrupts landing anywhere in a syscall loop (including between the
    /// emulated `syscall` and its fault at LSTAR on PVM hosts) lose no state.
    #[test]
    fn kvm_syscall_interrupt_stress() {
        // loop: mov eax, 39; syscall; jmp loop
        let Some(e) = env(&[0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]) else {
            return;
        };
        let mut cpu = Vcpu::new(&e.vm).unwrap();
        let intr = cpu.interrupter();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            let mut n = 0u64;
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(20 + (n * 37) % 150));
                intr.interrupt();
                n += 1;
            }
        });
        let mut r = regs_at(CODE);
        let (mut syscalls, mut interrupts) = (0, 0);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            match cpu.run(&e.pt, &mut r).expect("run") {
                Exit::Syscall => {
                    assert_eq!((r.rip, r.rcx, r.orig_rax), (CODE + 7, CODE + 7, 39));
                    syscalls += 1;
                }
                Exit::Interrupted => {
                    assert!(r.rip >= CODE && r.rip < CODE + 9, "rip {:#x}", r.rip);
                    interrupts += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        t.join().unwrap();
        println!("kvm: {syscalls} syscalls, {interrupts} interrupts");
        assert!(interrupts > 0);
    }

    /// Unmap/protect cost with a working set: the workload reads `pages` pages,
    /// then one of them is unmapped and mapped again, per iteration. The zap
    /// makes every page refault; the rewriter only the one edited.
    #[test]
    fn kvm_rewriter_cost_working_set() {
        // loop: mov rax, [rbx]; add rbx, 4096; dec ecx; jnz loop; syscall
        let code = [
            0x48, 0x8b, 0x03, 0x48, 0x81, 0xc3, 0x00, 0x10, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xf2,
            0x0f, 0x05,
        ];
        let Some(e) = env(&code) else { return };
        if !e.vm.shadow_paging() {
            return;
        }
        let mut cpu = Vcpu::new(&e.vm).unwrap();
        let pages = 256u64;
        let base = 0x1000_0000u64;
        let off = e.mf.allocate(pages * 4096).unwrap();
        e.pt.map(base, pages * 4096, off, libc::PROT_READ).unwrap();
        let run = |cpu: &mut Vcpu| {
            let mut r = regs_at(CODE);
            r.rbx = base;
            r.rcx = pages;
            assert_eq!(cpu.run(&e.pt, &mut r).unwrap(), Exit::Syscall);
        };
        run(&mut cpu);
        for mode in ["rewriter", "zap"] {
            if mode == "zap" {
                e.vm.disable_rewriter();
            }
            let n = 200;
            let mut call = 0.0;
            let mut after = 0.0;
            for i in 0..n {
                let va = base + (i % pages) * 4096;
                let t = Instant::now();
                e.pt.protect(va, 4096, libc::PROT_NONE).unwrap();
                sync(&e);
                e.pt.protect(va, 4096, libc::PROT_READ).unwrap();
                call += t.elapsed().as_secs_f64();
                let t = Instant::now();
                run(&mut cpu);
                after += t.elapsed().as_secs_f64();
            }
            println!(
                "kvm: {mode}: protect(NONE)+sync {:.1} us; then a run touching {pages} pages {:.1} us",
                call * 1e6 / n as f64,
                after * 1e6 / n as f64
            );
        }
    }
}

//! Hostile CPU-level operations from user mode (`tests/hostile/cpu_hostile.c`):
//! reads, writes and jumps to upper-half addresses (the KVM platform's guest
//! kernel region at 0xffffffffffe00000 included), jumps into its entry stubs
//! (LSTAR, the exception tail, the iret/flush stubs), and privileged or
//! trapping instructions (hlt, cli, mov to/from CR3, lgdt, wrmsr, in/out,
//! swapgs, sysret, kernel selectors, `int $n`, int3, icebp, ud2).
//!
//! Run natively, then under `runsc --platform=P do` for every platform in
//! `tests::all_platforms`: every line (signal, si_code, si_addr, where rip
//! was) must be the native one. Lines starting with `PLATFORM ` (int $0x80:
//! the i386 ABI, which the host may serve and the sandbox does not) are
//! compared between the sandbox platforms only.
//!
//! Tolerated divergence, on PVM hosts only (`/sys/module/kvm_pvm`) whose VM
//! keeps LSTAR at the guest-kernel stub (where the non-canonical-LSTAR probe
//! of platform/src/kvm/pvm.rs fails; on this host it succeeds and the jump
//! gives SIGSEGV as natively): there a real `syscall` reaches LSTAR still in
//! ring 3 and faults fetching it, so a jump to LSTAR with rcx pointing just
//! past a real `syscall` instruction and rax a syscall number is
//! indistinguishable from that syscall, and is served as it (Linux:
//! SIGSEGV). It gains nothing a jump to that `syscall` would not
//! (platform/src/kvm/vcpu.rs). Any other rcx gives SIGSEGV, as natively.

use std::path::Path;
use tests::{all_platforms, compile_c_file, Cmd, Exit, Failures, Link, RunOutput};

/// The case whose result may differ on a PVM host (see above), and what it
/// gives there.
const PVM_LSTAR_CASE: &str = "jump lstar (syscall-like rcx): ";
const PVM_LSTAR_RESULT: &str = "exit 0 (no signal)";

fn host_is_pvm() -> bool {
    let loaded = |m: &str| Path::new("/sys/module").join(m).exists();
    loaded("kvm_pvm") && !loaded("kvm_intel") && !loaded("kvm_amd")
}

fn split(out: &RunOutput) -> (Vec<String>, Vec<String>) {
    out.stdout
        .lines()
        .map(str::to_string)
        .partition(|l| !l.starts_with("PLATFORM "))
}

#[test]
fn hostile_cpu_operations_fault_as_on_linux() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("hostile/cpu_hostile.c");
    let bin = compile_c_file(&src, "cpu_hostile.static", Link::Static);
    let cmd = Cmd::new([bin.as_os_str()]);
    let native = cmd.run_native();
    assert!(
        native.exit == Exit::Code(0) && native.stdout.ends_with("done\n"),
        "native run:\n{}",
        native.describe()
    );
    let (native_lines, _) = split(&native);
    let mut f = Failures::new();
    let mut first_platform: Option<(&str, Vec<String>)> = None;
    for platform in all_platforms() {
        let sb = cmd.run_sandbox(platform);
        if sb.exit != Exit::Code(0) || !sb.stdout.ends_with("done\n") {
            f.add(format!("{platform}: did not finish:\n{}", sb.describe()));
            continue;
        }
        let (lines, plat) = split(&sb);
        for (i, want) in native_lines.iter().enumerate() {
            let got = lines.get(i).map_or("<missing>", String::as_str);
            if got == want {
                continue;
            }
            if platform == "kvm"
                && host_is_pvm()
                && got.strip_prefix(PVM_LSTAR_CASE) == Some(PVM_LSTAR_RESULT)
            {
                eprintln!("kvm (PVM host): known divergence: {got}");
                continue;
            }
            f.add(format!(
                "{platform}: line {}: native {want:?}, sandbox {got:?}",
                i + 1
            ));
        }
        if lines.len() != native_lines.len() {
            f.add(format!(
                "{platform}: {} lines, native {}",
                lines.len(),
                native_lines.len()
            ));
        }
        match &first_platform {
            None => first_platform = Some((platform, plat)),
            Some((p0, plat0)) if *plat0 != plat => f.add(format!(
                "{platform}: PLATFORM lines {plat:?} differ from {p0}'s {plat0:?}"
            )),
            _ => {}
        }
    }
    f.check("cpu_hostile");
}

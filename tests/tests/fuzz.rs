//! Syscall fuzzing (issue 6): `tests/fuzz/sysfuzz.c`, compiled static, issues
//! random system calls (random numbers, flags, lengths and hostile pointers)
//! from worker processes inside `runsc --platform=P do` for every platform in
//! `tests::all_platforms` (ptrace, and kvm where /dev/kvm works; on kvm a
//! shorter run, see `KVM_SHARE`). It must end normally: exit status 0 with its summary
//! line counting every call, no sentry panic on stderr, within the time limit,
//! and the host must be untouched (a canary file keeps its content, nothing
//! the fuzzer wrote reached the host's /tmp, and a new sandbox still runs).
//!
//! Environment:
//!   SYSFUZZ_SEED=N     the seed (default 20261129, so CI is deterministic;
//!                      `SYSFUZZ_SEED=clock` picks one from the clock to
//!                      explore; always printed and named in a failure).
//!                      Seed 1795994834 fills the sandbox's memory with
//!                      something no process owns, so the in-sandbox OOM
//!                      killer ends init (the host is safe): an open bug.
//!   SYSFUZZ_COUNT=N    syscalls on ptrace (default 1,000,000); kvm runs
//!                      COUNT / KVM_SHARE of them
//!   SYSFUZZ_WORKERS=N  concurrent worker processes (default 2)
//!   SYSFUZZ_STRACE_COUNT=N  syscalls of a second run with `--strace`, whose
//!                      formatter decodes every hostile argument (default
//!                      100,000; 0 skips it)
//!
//! The fuzzer is never run natively: as root on the host its random calls
//! (mount, settimeofday, sethostname, swapoff, ...) would change the host.
//! To chase a failure by hand, run it in the sandbox with -v (each call is
//! logged to stderr before it is made, and a dead or stuck worker's last call
//! is named):
//!   target/release/runsc do -- target/conformance/sysfuzz -v -w 1 SEED COUNT 2>log

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tests::{all_platforms, compile_c_file, Cmd, Exit, Failures, Link};

/// Limit for one platform's run. 1,000,000 calls take ~20 s on ptrace on a
/// 2-core machine.
const TIME_LIMIT: Duration = Duration::from_secs(240);

/// On kvm the fuzzer issues 1/KVM_SHARE of the ptrace count (same seed, so
/// the same first calls), and the `--strace` run is skipped (the formatter
/// does not depend on the platform): on this PVM host every syscall is a
/// ring-3 round trip of ~80 us, and the CI machine has 2 cores. What kvm adds
/// over ptrace (the workload's faults and syscalls decoded from VM exits,
/// hostile pointers resolved through the guest page tables, mappings
/// changed under running vCPUs) shows in the first calls.
const KVM_SHARE: u64 = 10;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

fn sysfuzz_entries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/tmp")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("sysfuzz."))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn sysfuzz() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/sysfuzz.c");
    let bin = compile_c_file(&src, "sysfuzz", Link::Static);
    let seed = match std::env::var("SYSFUZZ_SEED").as_deref() {
        Ok("clock") => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        _ => env_u64("SYSFUZZ_SEED").unwrap_or(20261129),
    };
    let count = env_u64("SYSFUZZ_COUNT").unwrap_or(1_000_000);
    let workers = env_u64("SYSFUZZ_WORKERS").unwrap_or(2);
    eprintln!("sysfuzz: seed {seed} (set SYSFUZZ_SEED={seed} to repeat), {count} syscalls");

    // Host canaries.
    let canary_dir = std::env::temp_dir().join(format!("sysfuzz-canary-{}", std::process::id()));
    std::fs::create_dir_all(&canary_dir).unwrap();
    let canary = canary_dir.join("canary");
    std::fs::write(&canary, b"untouched\n").unwrap();
    let tmp_before = sysfuzz_entries();

    let strace_count = env_u64("SYSFUZZ_STRACE_COUNT").unwrap_or(100_000);
    let mut runs: Vec<(&str, u64, &[&str])> = Vec::new();
    for platform in all_platforms() {
        if platform == "kvm" {
            runs.push((platform, (count / KVM_SHARE).max(1), &[]));
            continue;
        }
        runs.push((platform, count, &[]));
        if strace_count > 0 {
            runs.push((platform, strace_count, &["--strace"]));
        }
    }

    let mut f = Failures::new();
    for (platform, count, flags) in runs {
        let out = Cmd::new([
            bin.to_string_lossy().into_owned(),
            "-w".into(),
            workers.to_string(),
            seed.to_string(),
            count.to_string(),
        ])
        .timeout(TIME_LIMIT)
        .run_sandbox_with(platform, flags);
        let platform = format!(
            "{platform}{}",
            if flags.is_empty() { "" } else { " --strace" }
        );
        let rate = count as f64 / out.elapsed.as_secs_f64();
        eprintln!(
            "sysfuzz on {platform}: {} after {:.1}s ({rate:.0} syscalls/s)",
            out.exit,
            out.elapsed.as_secs_f64()
        );
        let what = format!("sysfuzz on {platform} (SYSFUZZ_SEED={seed}, {count} syscalls)");
        if out.exit == Exit::TimedOut {
            f.add(format!(
                "{what}: no result within {}s (sentry hang?):\n{}",
                TIME_LIMIT.as_secs(),
                out.describe()
            ));
            continue;
        }
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "internal error",
            "platform failure",
        ] {
            if out.stderr.contains(bad) {
                f.add(format!(
                    "{what}: the sentry failed ({bad:?} on stderr):\n{}",
                    out.describe()
                ));
            }
        }
        if out.exit != Exit::Code(0) {
            f.add(format!(
                "{what}: the sandbox did not exit 0:\n{}",
                out.describe()
            ));
        }
        let want = format!("sysfuzz: seed {seed}: {count} syscalls issued by ");
        match out.last_line() {
            Some(l) if l.starts_with(&want) => eprintln!("  {l}"),
            _ => f.add(format!(
                "{what}: the last line is not {want:?}...:\n{}",
                out.describe()
            )),
        }
    }

    // The host is fine.
    match std::fs::read(&canary) {
        Ok(b) if b == b"untouched\n" => {}
        other => f.add(format!(
            "host canary {} changed: {other:?}",
            canary.display()
        )),
    }
    let tmp_after = sysfuzz_entries();
    if tmp_after != tmp_before {
        f.add(format!(
            "the fuzzer's scratch directory reached the host's /tmp: before {tmp_before:?}, after {tmp_after:?}"
        ));
    }
    for platform in all_platforms() {
        let out = Cmd::new(["/bin/echo", "still alive"]).run_sandbox(platform);
        if out.exit != Exit::Code(0) || out.stdout != "still alive\n" {
            f.add(format!(
                "a new sandbox on {platform} does not run after fuzzing:\n{}",
                out.describe()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&canary_dir);
    f.check("sysfuzz");
}

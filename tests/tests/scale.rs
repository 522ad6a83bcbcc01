//! Scale (issue 8), on every platform ([`all_platforms`]), C programs in
//! `tests/bounds/`: 200 processes of 4 threads each, all alive at once, exit
//! cleanly; 4 GiB of anonymous memory touched in 1 GiB steps (each freed
//! before the next) works while the sentry's memory, sampled from the host,
//! stays bounded by about one step.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tests::{all_platforms, compile_c_file, Cmd, Exit, Link, RunOutput};

fn program(name: &str) -> PathBuf {
    let src = tests::workspace_root().join(format!("tests/bounds/{name}.c"));
    compile_c_file(&src, &format!("bounds-{name}"), Link::Static)
}

/// Nothing alarming from the sandbox on stderr (no panic, no error line).
fn quiet(out: &RunOutput) {
    for bad in ["panic", "ERROR", "RUST_BACKTRACE"] {
        assert!(!out.stderr.contains(bad), "stderr: {}", out.describe());
    }
}

#[test]
fn two_hundred_processes_of_four_threads_exit_cleanly() {
    let prog = program("forkthreads");
    let cmd = Cmd::new([prog.as_os_str()]).timeout(Duration::from_secs(120));
    let native = cmd.run_native();
    assert_eq!(native.exit, Exit::Code(0), "native: {}", native.describe());
    assert_eq!(
        native.stdout,
        "200/200 children with 4 threads exited cleanly\n",
        "native: {}",
        native.describe()
    );
    for platform in all_platforms() {
        let out = cmd.run_sandbox(platform);
        println!(
            "forkthreads on {platform}: {} in {:.2}s",
            out.exit,
            out.elapsed.as_secs_f64()
        );
        assert_eq!(out.exit, Exit::Code(0), "{platform}: {}", out.describe());
        assert_eq!(out.stdout, native.stdout, "{platform}: {}", out.describe());
        quiet(&out);
    }
}

/// Peaks (bytes) of what the sentry (the `runsc boot` process) holds.
#[derive(Default, Debug, Clone, Copy)]
struct Peaks {
    samples: u64,
    vm_rss: u64,
    rss_anon: u64,
    rss_shmem: u64,
    /// Bytes allocated in the sandbox's memory file (the memfd
    /// "runsc-memory" the sentry holds; its blocks, not its size). On
    /// ptrace the workload's pages are there and in the stubs' mappings,
    /// not in the sentry's RSS.
    memfile: u64,
}

fn read_stat_ppid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The `runsc boot` process running `prog` below this test process.
fn find_sentry(prog: &Path) -> Option<u32> {
    let me = std::process::id();
    let prog = prog.to_string_lossy();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let argv = cmdline(pid);
        if !argv.iter().any(|a| a == "boot") || !argv.iter().any(|a| *a == prog) {
            continue;
        }
        // One of ours: its parent chain reaches this process.
        let mut p = pid;
        for _ in 0..16 {
            match read_stat_ppid(p) {
                Some(pp) if pp == me => return Some(pid),
                Some(pp) if pp > 1 => p = pp,
                _ => break,
            }
        }
    }
    None
}

/// One sample of `pid`'s memory into `peaks`; false once it is gone.
fn sample(pid: u32, peaks: &mut Peaks) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    peaks.samples += 1;
    peaks.vm_rss = peaks.vm_rss.max(kb("VmRSS:"));
    peaks.rss_anon = peaks.rss_anon.max(kb("RssAnon:"));
    peaks.rss_shmem = peaks.rss_shmem.max(kb("RssShmem:"));
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            let is_memfile = std::fs::read_link(fd.path())
                .is_ok_and(|l| l.to_string_lossy().contains("memfd:runsc-memory"));
            if is_memfile {
                if let Ok(m) = std::fs::metadata(fd.path()) {
                    use std::os::unix::fs::MetadataExt;
                    peaks.memfile = peaks.memfile.max(m.blocks() * 512);
                }
            }
        }
    }
    true
}

/// Samples the sentry running `prog` every ~50 ms until `done`.
fn watch_sentry(prog: PathBuf, done: Arc<AtomicBool>) -> Peaks {
    let mut peaks = Peaks::default();
    let mut sentry = None;
    while !done.load(Ordering::Relaxed) {
        if sentry.is_none() {
            sentry = find_sentry(&prog);
        }
        if let Some(pid) = sentry {
            if !sample(pid, &mut peaks) {
                break;
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    peaks
}

const MIB: u64 = 1 << 20;
/// One 1 GiB step plus overhead.
const BOUND: u64 = 1792 * MIB;

#[test]
fn four_gib_in_one_gib_steps_keeps_the_sentry_bounded() {
    let prog = program("bigmem");
    let cmd = Cmd::new([prog.as_os_str()]).timeout(Duration::from_secs(180));
    let native = cmd.run_native();
    assert_eq!(native.exit, Exit::Code(0), "native: {}", native.describe());
    assert!(
        native
            .stdout
            .ends_with("4 steps, 4096 MiB touched in all\n"),
        "native: {}",
        native.describe()
    );
    println!("bigmem natively: {:.2}s", native.elapsed.as_secs_f64());
    for platform in all_platforms() {
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (prog, done) = (prog.clone(), done.clone());
            thread::spawn(move || watch_sentry(prog, done))
        };
        let start = Instant::now();
        let out = cmd.run_sandbox(platform);
        done.store(true, Ordering::Relaxed);
        let peaks = watcher.join().unwrap();
        println!(
            "bigmem on {platform}: {} in {:.2}s; sentry peaks over {} samples: \
             VmRSS {} MiB (RssAnon {} MiB, RssShmem {} MiB), memory file {} MiB",
            out.exit,
            start.elapsed().as_secs_f64(),
            peaks.samples,
            peaks.vm_rss / MIB,
            peaks.rss_anon / MIB,
            peaks.rss_shmem / MIB,
            peaks.memfile / MIB,
        );
        assert_eq!(out.exit, Exit::Code(0), "{platform}: {}", out.describe());
        assert_eq!(out.stdout, native.stdout, "{platform}: {}", out.describe());
        quiet(&out);
        assert!(
            peaks.samples >= 10,
            "{platform}: the sentry was sampled {} times: {peaks:?}",
            peaks.samples
        );
        assert!(
            peaks.vm_rss < BOUND && peaks.memfile < BOUND,
            "{platform}: the sentry's memory grew past {} MiB: {peaks:?}",
            BOUND / MIB
        );
    }
}

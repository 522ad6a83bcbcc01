//! Sandbox-wide resource bounds: the memory limit (commit limit and the
//! in-sandbox OOM killer) and the task limit.
//!
//! Memory. Workload memory and tmpfs data live in one sparse memfd (the
//! [`MemoryFile`]); the host backs its pages lazily when the workload touches
//! them, without a trip through the sentry. Two mechanisms keep the sandbox
//! within its limit, so that the host's OOM killer never has to act:
//!
//! - commit accounting (Linux's VM_ACCOUNT): private writable mappings commit
//!   their size when they are made (mmap, brk, mremap growth, mprotect to
//!   writable, fork); past `limit * OVERCOMMIT_RATIO` in all, or past `limit`
//!   in one request (Linux's heuristic overcommit with the limit as the
//!   machine's memory), they fail with ENOMEM. PROT_NONE reservations and
//!   MAP_NORESERVE mappings commit nothing (Go and the JVM reserve huge heaps
//!   the first way, sanitizers their shadow the second), and the ratio leaves
//!   room for the usual gap between committed
//!   and touched memory (8 MiB glibc thread stacks of which a few pages are
//!   used, malloc arenas, sparse arrays): a hard ceiling at the limit itself
//!   would fail programs that would run fine.
//! - an OOM killer: a sentry thread polls the memory file's backed bytes
//!   (fstat's st_blocks) every few milliseconds, and when they pass the limit
//!   SIGKILLs the process with the most resident memory, as Linux's OOM killer
//!   does in a memory cgroup. The sentry itself is never the victim. Near the
//!   limit, tmpfs writes that need new pages fail with ENOSPC first.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use platform::MemoryFile;

use crate::kernel::Kernel;
use crate::task::ExitStatus;
use crate::thread_group::ThreadGroup;

/// Committed private writable memory may reach this multiple of the limit.
pub const OVERCOMMIT_RATIO: u64 = 8;

/// File data (tmpfs) stops growing (ENOSPC) once the sandbox uses all but
/// 1/PRESSURE_FRACTION of its memory, so that filling a tmpfs fails a write
/// instead of OOM-killing processes.
const PRESSURE_FRACTION: u64 = 16;

/// How long the OOM killer waits for its last victim to go before it picks
/// another one.
const VICTIM_GRACE: Duration = Duration::from_secs(2);

/// The bounds of one sandbox (0: none).
#[derive(Default)]
pub struct Limits {
    memory: AtomicU64,
    max_tasks: AtomicUsize,
    mf: OnceLock<Arc<MemoryFile>>,
    /// Processes the OOM killer has killed.
    pub oom_kills: AtomicU64,
}

impl Limits {
    /// The memory limit in bytes, if any.
    pub fn memory(&self) -> Option<u64> {
        Some(self.memory.load(Ordering::Relaxed)).filter(|m| *m != 0)
    }

    /// Bytes of memory the sandbox uses (workload memory and tmpfs data), when
    /// a memory limit is set.
    pub fn memory_usage(&self) -> Option<u64> {
        self.mf.get().map(|mf| mf.backed_bytes())
    }

    /// (total, free) bytes of memory as the sandbox's /proc/meminfo and
    /// sysinfo(2) show them, when a memory limit is set.
    pub fn memory_totals(&self) -> Option<(u64, u64)> {
        let total = self.memory()?;
        let used = self.memory_usage().unwrap_or(0);
        Some((total, total.saturating_sub(used)))
    }

    /// Bytes of private writable memory the sandbox has committed, when a
    /// memory limit is set.
    pub fn committed(&self) -> Option<u64> {
        self.mf.get().map(|mf| mf.committed())
    }

    /// The most tasks (threads) the sandbox may have, if limited.
    pub fn max_tasks(&self) -> Option<usize> {
        Some(self.max_tasks.load(Ordering::Relaxed)).filter(|m| *m != 0)
    }

    pub fn set_max_tasks(&self, n: usize) {
        self.max_tasks.store(n, Ordering::Relaxed);
    }
}

impl Kernel {
    /// Limits the sandbox's memory (the platform's memory file) to `limit`
    /// bytes, 0 for no limit: sets the commit limit and starts the OOM killer
    /// the first time. At boot, and again when the limit is updated (`runsc
    /// update`).
    pub fn set_memory_limit(self: &Arc<Kernel>, limit: u64) {
        let mf = self.platform.memory_file().clone();
        let limit = if limit == 0 {
            0
        } else {
            limit.max(abi::PAGE_SIZE)
        };
        self.limits.memory.store(limit, Ordering::Relaxed);
        match limit {
            0 => mf.set_commit_limit(u64::MAX, u64::MAX),
            l => mf.set_commit_limit(l.saturating_mul(OVERCOMMIT_RATIO), l),
        }
        if limit == 0 || self.limits.mf.set(mf.clone()).is_err() {
            return;
        }
        let k = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("oom-killer".into())
            .spawn(move || oom_killer(k, mf));
        if let Err(e) = spawned {
            tracing::error!("cannot start the OOM killer: {e}");
        }
    }
}

/// The poll period: shorter as usage nears the limit (a workload touching
/// memory at a few GiB/s overshoots by at most that rate times the period
/// before it is stopped).
fn period(used: u64, limit: u64) -> Duration {
    if used < limit / 2 {
        Duration::from_millis(20)
    } else if used < limit / 4 * 3 {
        Duration::from_millis(5)
    } else {
        Duration::from_millis(1)
    }
}

fn oom_killer(k: Weak<Kernel>, mf: Arc<MemoryFile>) {
    let mut last: Option<(Weak<ThreadGroup>, Instant)> = None;
    let mut pause = Duration::from_millis(1);
    loop {
        std::thread::sleep(pause);
        let Some(k) = k.upgrade() else { return };
        let Some(limit) = k.limits.memory() else {
            // The limit was lifted (`runsc update`).
            mf.set_pressure(false);
            pause = Duration::from_millis(100);
            continue;
        };
        let used = mf.backed_bytes();
        pause = period(used, limit);
        mf.set_pressure(used > limit - limit / PRESSURE_FRACTION);
        if used <= limit {
            continue;
        }
        // The last victim is still on its way out: its memory goes when it does.
        if let Some((v, at)) = &last {
            let going = v.upgrade().is_some_and(|g| g.lock().zombie.is_none());
            if going && at.elapsed() < VICTIM_GRACE {
                continue;
            }
        }
        match pick_victim(&k) {
            Some((tg, rss_kb, comm)) => {
                tracing::warn!(
                    "Out of memory: Killed process {} ({comm}) anon-rss:{rss_kb}kB; \
                     sandbox memory {}kB > limit {}kB",
                    tg.tgid,
                    used / 1024,
                    limit / 1024
                );
                k.limits.oom_kills.fetch_add(1, Ordering::Relaxed);
                k.kill_group(&tg, ExitStatus::Signaled(libc::SIGKILL));
                last = Some((Arc::downgrade(&tg), Instant::now()));
            }
            None => {
                if last.is_none() {
                    tracing::warn!(
                        "sandbox memory {}kB > limit {}kB, and no process holds it",
                        used / 1024,
                        limit / 1024
                    );
                }
                last = Some((Weak::new(), Instant::now()));
            }
        }
    }
}

/// The live process with the most resident memory (Linux's oom_badness
/// without the adjustments), with its resident KiB and name.
fn pick_victim(k: &Kernel) -> Option<(Arc<ThreadGroup>, u64, String)> {
    let mut best: Option<(Arc<ThreadGroup>, u64, String)> = None;
    for g in k.all_groups() {
        let task = {
            let st = g.lock();
            if st.group_exit.is_some() {
                continue;
            }
            st.tasks.first().cloned()
        };
        let Some(t) = task else { continue };
        let (mm, comm) = {
            let v = t.proc.lock().unwrap_or_else(|e| e.into_inner());
            (v.mm.clone(), v.comm)
        };
        let Some(mm) = mm else { continue };
        let rss = mm.resident_kb();
        if rss > 0 && best.as_ref().is_none_or(|(_, b, _)| rss > *b) {
            let n = comm.iter().position(|&c| c == 0).unwrap_or(comm.len());
            best = Some((g, rss, String::from_utf8_lossy(&comm[..n]).into_owned()));
        }
    }
    best
}

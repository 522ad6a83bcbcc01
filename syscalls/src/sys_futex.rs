//! futex(2): WAIT/WAKE and their BITSET forms.

use std::time::{Duration, Instant};

use abi::linux::Timespec;
use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::futex::FutexKey;
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(
        FUTEX,
        sys_futex,
        &[Arg::Hex, Arg::Hex, Arg::Dec, Arg::Hex, Arg::Hex, Arg::Hex],
    );
}

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

fn sys_futex(t: &mut Task, a: &Args) -> SysResult {
    let (addr, op, val) = (a.u64(0), a.i32(1), a.u32(2));
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    if realtime && cmd != FUTEX_WAIT_BITSET && cmd != FUTEX_WAIT {
        return Err(Errno::ENOSYS);
    }
    let key = FutexKey {
        mm: std::sync::Arc::as_ptr(&t.mm) as usize,
        addr,
    };
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                a.u32(5)
            };
            let deadline = if a.u64(3) == 0 {
                None
            } else {
                let ts = Timespec::from_bytes(&t.copy_in_vec(a.u64(3), Timespec::SIZE)?);
                let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
                if cmd == FUTEX_WAIT {
                    // Relative timeout.
                    Some(Instant::now() + Duration::from_nanos(ns.min(u64::MAX as u128) as u64))
                } else {
                    // Absolute, on CLOCK_REALTIME or CLOCK_MONOTONIC.
                    let clock = if realtime {
                        libc::CLOCK_REALTIME
                    } else {
                        libc::CLOCK_MONOTONIC
                    };
                    let (s, n) = platform::host::clock_gettime(clock);
                    let now = s as u128 * 1_000_000_000 + n as u128;
                    Some(
                        Instant::now()
                            + Duration::from_nanos(
                                ns.saturating_sub(now).min(u64::MAX as u128) as u64
                            ),
                    )
                }
            };
            let mm = t.mm.clone();
            let check = move || -> Result<bool, Errno> {
                let mut b = [0u8; 4];
                mm.copy_in(addr, &mut b)?;
                Ok(u32::from_le_bytes(b) == val)
            };
            t.kernel
                .futexes
                .wait(key, bitset, check, deadline)
                .map(|_| 0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                a.u32(5)
            };
            t.kernel.futexes.wake(key, bitset, val)
        }
        _ => {
            tracing::warn!(tid = t.tid, "unimplemented futex operation {cmd}");
            Err(Errno::ENOSYS)
        }
    }
}

//! futex(2): WAIT/WAKE and their BITSET forms, REQUEUE, CMP_REQUEUE, WAKE_OP,
//! and the PI lock operations LOCK_PI, LOCK_PI2, TRYLOCK_PI and UNLOCK_PI.
//! WAIT_REQUEUE_PI and CMP_REQUEUE_PI are not implemented (ENOSYS).

use std::time::{Duration, Instant};

use abi::linux::Timespec;
use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::futex::{FutexKey, MATCH_ANY};
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
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_TRYLOCK_PI: i32 = 8;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_WAIT_REQUEUE_PI: i32 = 11;
const FUTEX_LOCK_PI2: i32 = 13;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;

/// A relative (WAIT) or absolute (WAIT_BITSET) timeout as a deadline.
fn deadline(t: &Task, addr: u64, absolute: bool, realtime: bool) -> Result<Option<Instant>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts = Timespec::from_bytes(&t.copy_in_vec(addr, Timespec::SIZE)?);
    let ns = ts.to_nanos().ok_or(Errno::EINVAL)?;
    let rel = if absolute {
        let clock = if realtime {
            libc::CLOCK_REALTIME
        } else {
            libc::CLOCK_MONOTONIC
        };
        let (s, n) = platform::host::clock_gettime(clock);
        ns.saturating_sub(s as u128 * 1_000_000_000 + n as u128)
    } else {
        ns
    };
    Ok(Some(
        Instant::now() + Duration::from_nanos(rel.min(u64::MAX as u128 / 2) as u64),
    ))
}

/// Decodes FUTEX_WAKE_OP's encoded operation and applies it to `old`.
fn wake_op_apply(encoded: u32, old: u32) -> Result<u32, Errno> {
    let op = (encoded >> 28) & 7;
    let shift = encoded & (8 << 28) != 0;
    let mut arg = (encoded >> 12) & 0xfff;
    if shift {
        arg = 1u32.checked_shl(arg).unwrap_or(0);
    }
    Ok(match op {
        0 => arg,
        1 => old.wrapping_add(arg),
        2 => old | arg,
        3 => old & !arg,
        4 => old ^ arg,
        _ => return Err(Errno::ENOSYS),
    })
}

fn wake_op_cmp(encoded: u32, old: u32) -> bool {
    let cmp = (encoded >> 24) & 15;
    let arg = encoded & 0xfff;
    let (o, a) = (old as i32, arg as i32);
    match cmp {
        0 => o == a,
        1 => o != a,
        2 => o < a,
        3 => o <= a,
        4 => o > a,
        5 => o >= a,
        _ => false,
    }
}

fn sys_futex(t: &mut Task, a: &Args) -> SysResult {
    let (addr, op, val) = (a.u64(0), a.i32(1), a.u32(2));
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    if realtime
        && !matches!(
            cmd,
            FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
        )
    {
        return Err(Errno::ENOSYS);
    }
    let key = FutexKey::of(t, addr, private)?;
    let k = t.kernel.clone();
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                MATCH_ANY
            } else {
                a.u32(5)
            };
            let dl = deadline(t, a.u64(3), cmd == FUTEX_WAIT_BITSET, realtime)?;
            let mm = t.mm.clone();
            let check = move || -> Result<bool, Errno> {
                let mut b = [0u8; 4];
                mm.copy_in(addr, &mut b)?;
                Ok(u32::from_le_bytes(b) == val)
            };
            let w = t.waiter().clone();
            k.futexes.wait(&w, key, bitset, check, dl).map(|_| 0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                MATCH_ANY
            } else {
                a.u32(5)
            };
            k.futexes.wake(key, bitset, val)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let n_requeue = a.u64(3) as u32;
            if (val as i32) < 0 || (n_requeue as i32) < 0 {
                return Err(Errno::EINVAL);
            }
            let to = FutexKey::of(t, a.u64(4), private)?;
            let expected = a.u32(5);
            let mm = t.mm.clone();
            let cmp = cmd == FUTEX_CMP_REQUEUE;
            k.futexes.requeue(key, to, val, n_requeue, move || {
                if !cmp {
                    return Ok(true);
                }
                let mut b = [0u8; 4];
                mm.copy_in(addr, &mut b)?;
                Ok(u32::from_le_bytes(b) == expected)
            })
        }
        FUTEX_WAKE_OP => {
            let addr2 = a.u64(4);
            let key2 = FutexKey::of(t, addr2, private)?;
            let encoded = a.u32(5);
            let n2 = a.u64(3) as u32;
            let mm = t.mm.clone();
            wake_op_apply(encoded, 0)?;
            k.futexes.wake_op(
                key,
                key2,
                val,
                n2,
                move || mm.update_u32(addr2, |old| wake_op_apply(encoded, old).unwrap_or(old)),
                move |old| wake_op_cmp(encoded, old),
            )
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            // LOCK_PI's timeout is absolute on CLOCK_REALTIME; LOCK_PI2's on
            // CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME; TRYLOCK_PI has none.
            let dl = match cmd {
                FUTEX_LOCK_PI => deadline(t, a.u64(3), true, true)?,
                FUTEX_LOCK_PI2 => deadline(t, a.u64(3), true, realtime)?,
                _ => None,
            };
            k.futexes
                .lock_pi(t, key, addr, dl, cmd == FUTEX_TRYLOCK_PI)
                .map(|_| 0)
        }
        FUTEX_UNLOCK_PI => k.futexes.unlock_pi(t, key, addr).map(|_| 0),
        _ => {
            tracing::warn!(tid = t.tid, "unimplemented futex operation {cmd}");
            Err(Errno::ENOSYS)
        }
    }
}

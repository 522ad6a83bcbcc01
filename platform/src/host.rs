//! Safe wrappers for the few host queries the kernel answers from the host
//! (clocks, memory totals, randomness), so that the crates above need no `unsafe`.

/// Reads host clock `id` as (seconds, nanoseconds).
pub fn clock_gettime(id: libc::clockid_t) -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; an unsupported id leaves it zero.
    unsafe { libc::clock_gettime(id, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}

/// Resolution of host clock `id` as (seconds, nanoseconds).
pub fn clock_getres(id: libc::clockid_t) -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_getres(id, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}

/// Host RAM as (total bytes, free bytes).
pub fn memory() -> (u64, u64) {
    // SAFETY: plain data, filled by the host.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::sysinfo(&mut si) };
    let unit = si.mem_unit.max(1) as u64;
    (si.totalram * unit, si.freeram * unit)
}

/// Fills `buf` from the host's CSPRNG (getrandom(2), blocking until seeded).
pub fn fill_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the host writes at most `buf.len() - done` bytes into buf[done..].
        let n = unsafe {
            libc::getrandom(
                buf[done..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - done,
                0,
            )
        };
        if n > 0 {
            done += n as usize;
        }
    }
}

/// The calling thread's host thread ID.
pub fn gettid() -> i32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

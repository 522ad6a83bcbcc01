//! Moving data between files without a user buffer: sendfile, splice, tee,
//! vmsplice and copy_file_range; and the sync family: sync, syncfs, fsync,
//! fdatasync, sync_file_range (msync is the memory manager's, in sys_mm).
//!
//! Data goes through sentry buffers of at most [`CHUNK`] bytes (no zero copy).
//! Transfers that involve a pipe use the pipe's own splice methods
//! ([`fs::Pipe::splice_in`], [`fs::Pipe::splice_out`], [`fs::Pipe::transfer`]),
//! which work under the pipe's lock so that nothing read from one side is lost
//! when the other takes less. Blocking follows Linux: only the first transfer
//! of a call waits (for pipe data or room, or a stream's readiness); once some
//! data has moved the call returns what it moved.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use abi::sysno as nr;
use abi::{Errno, SysResult};
use fs::waiter::{self, WaitQueue, EVENT_IN, EVENT_OUT};
use fs::OpenFile;
use sentry::Task;

use crate::sys_file::read_iovecs;
use crate::{Arg, Args, Table};

/// Largest single transfer (Linux's MAX_RW_COUNT).
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Sentry staging buffers are at most this big.
const CHUNK: usize = 64 << 10;

const SPLICE_F_NONBLOCK: u32 = 0x2;
/// MOVE, NONBLOCK, MORE, GIFT: every flag splice, tee and vmsplice accept.
const SPLICE_F_ALL: u32 = 0xf;

pub(crate) fn register(t: &mut Table) {
    use Arg::*;
    t.add(nr::SENDFILE, sys_sendfile, &[Fd, Fd, Hex, UDec]);
    t.add(nr::SPLICE, sys_splice, &[Fd, Hex, Fd, Hex, UDec, Hex]);
    t.add(nr::TEE, sys_tee, &[Fd, Fd, UDec, Hex]);
    t.add(nr::VMSPLICE, sys_vmsplice, &[Fd, Hex, UDec, Hex]);
    t.add(
        nr::COPY_FILE_RANGE,
        sys_copy_file_range,
        &[Fd, Hex, Fd, Hex, UDec, Hex],
    );
    t.add(nr::SYNC, sys_sync, &[]);
    t.add(nr::SYNCFS, sys_syncfs, &[Fd]);
    t.add(nr::FSYNC, sys_fsync, &[Fd]);
    t.add(nr::FDATASYNC, sys_fdatasync, &[Fd]);
    t.add(
        nr::SYNC_FILE_RANGE,
        sys_sync_file_range,
        &[Fd, Dec, Dec, Hex],
    );
}

// ---- helpers ----

/// Linux's fdget: O_PATH descriptors do not count (EBADF).
fn get_file(t: &Task, fd: i32) -> Result<Arc<OpenFile>, Errno> {
    let f = t.fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// Reads the `loff_t` an offset pointer points to (None for NULL).
fn read_off(t: &Task, addr: u64) -> Result<Option<i64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let mut b = [0u8; 8];
    t.copy_in(addr, &mut b)?;
    Ok(Some(i64::from_le_bytes(b)))
}

fn write_off(t: &Task, addr: u64, v: i64) -> Result<(), Errno> {
    t.copy_out(addr, &v.to_le_bytes())
}

/// The description's file position (0 for streams, as Linux's f_pos).
fn file_pos(f: &OpenFile) -> Result<i64, Errno> {
    if f.ops().seekable() && !f.is_dir() {
        Ok(f.lseek(0, libc::SEEK_CUR)? as i64)
    } else {
        Ok(0)
    }
}

fn set_file_pos(f: &OpenFile, pos: i64) {
    if f.ops().seekable() {
        let _ = f.lseek(pos, libc::SEEK_SET);
    }
}

/// Linux's rw_verify_area: the count must fit in a ssize_t, the offset must be
/// non-negative and offset + count must not overflow.
fn verify_area(pos: Option<i64>, count: u64) -> Result<(), Errno> {
    if count as i64 <= -1 {
        return Err(Errno::EINVAL);
    }
    if let Some(p) = pos {
        if p < 0 || p.checked_add(count as i64).is_none() {
            return Err(Errno::EINVAL);
        }
    }
    Ok(())
}

/// Whether the file can be a splice source (Linux: has ->splice_read): regular
/// and other seekable files, and host streams (ttys, sockets).
fn can_splice_read(f: &OpenFile) -> bool {
    !f.is_dir() && (f.ops().seekable() || f.ops().host_fd().is_some())
}

/// Whether the file can be a splice destination (has ->splice_write).
fn can_splice_write(f: &OpenFile) -> bool {
    !f.is_dir() && (f.ops().seekable() || f.ops().host_fd().is_some() || f.ops().socket().is_some())
}

/// Runs `op` until it stops returning EAGAIN, sleeping until one of `waits`
/// (a file and the events awaited on it) may have changed; `nonblock` runs it
/// once. A seekable file's host fd is always "ready", so only streams' host
/// fds are watched. Err(EAGAIN) from `op` means "wait"; a final EAGAIN (a
/// non-blocking stream's) travels as Ok(Err(EAGAIN)).
fn wait_io(
    t: &Task,
    nonblock: bool,
    waits: &[(&OpenFile, u32)],
    mut op: impl FnMut() -> Result<Result<usize, Errno>, Errno>,
) -> Result<usize, Errno> {
    let mut queues: Vec<(&WaitQueue, u32)> = Vec::new();
    let mut host = Vec::new();
    for (f, ev) in waits {
        if let Some(q) = f.ops().wait_queue() {
            queues.push((q, *ev));
        }
        if !f.ops().seekable() {
            if let Some(fd) = f.ops().host_fd() {
                host.push((fd.as_raw_fd(), *ev as i16));
            }
        }
    }
    let r = if nonblock || (queues.is_empty() && host.is_empty()) {
        op()
    } else {
        waiter::block(t.waiter(), &queues, &host, None, op)
    };
    r?
}

/// Reads from a splice source: positional for seekable files, else a stream
/// read; EAGAIN from a non-blocking stream is final (Ok(Err)).
fn read_src(f: &OpenFile, buf: &mut [u8], pos: i64) -> Result<Result<usize, Errno>, Errno> {
    let r = if f.ops().seekable() {
        f.pread(buf, pos)
    } else {
        f.read(buf)
    };
    match r {
        Err(Errno::EAGAIN) if f.status_flags() & libc::O_NONBLOCK != 0 => Ok(Err(Errno::EAGAIN)),
        r => r.map(Ok),
    }
}

/// Writes to a splice destination (positional for seekable files).
fn write_dst(f: &OpenFile, buf: &[u8], pos: i64) -> Result<Result<usize, Errno>, Errno> {
    let r = if f.ops().seekable() {
        f.pwrite(buf, pos)
    } else {
        f.write(buf)
    };
    match r {
        Err(Errno::EAGAIN) if f.status_flags() & libc::O_NONBLOCK != 0 => Ok(Err(Errno::EAGAIN)),
        r => r.map(Ok),
    }
}

/// An error from a pipe side: EPIPE raises SIGPIPE, as Linux's pipe code does.
fn pipe_err(t: &mut Task, e: Errno) -> Errno {
    if e == Errno::EPIPE {
        t.send_signal_to_self(libc::SIGPIPE);
    }
    e
}

/// The copy loop of file<->pipe splices: `step(at, want)` moves up to `want`
/// bytes at file position `at` (`Ok(Err(e))`: the file's own error, which only
/// counts when nothing moved). The first chunk may block on `waits`; later ones
/// take what is ready. A short step ends the loop.
fn chunked_splice(
    t: &mut Task,
    pos: i64,
    len: u64,
    nonblock: bool,
    waits: &[(&OpenFile, u32)],
    mut step: impl FnMut(i64, usize) -> Result<Result<usize, Errno>, Errno>,
) -> SysResult {
    let len = len.min(MAX_RW_COUNT) as usize;
    let mut done = 0usize;
    while done < len {
        let want = (len - done).min(CHUNK);
        let at = pos.saturating_add(done as i64);
        let r = if done == 0 {
            wait_io(t, nonblock, waits, || step(at, want))
        } else {
            step(at, want).and_then(|r| r)
        };
        match r {
            Ok(n) => {
                done += n;
                if n < want {
                    break;
                }
            }
            Err(_) if done > 0 => break,
            Err(e) => return Err(pipe_err(t, e)),
        }
    }
    Ok(done as u64)
}

/// Moves up to `len` bytes from `src` (at `pos` when seekable) into the pipe
/// behind `out` (Linux's splice_file_to_pipe). Returns the count moved.
fn file_to_pipe(
    t: &mut Task,
    src: &OpenFile,
    pos: i64,
    out: &OpenFile,
    len: u64,
    nonblock: bool,
) -> SysResult {
    let pipe = out.ops().pipe().ok_or(Errno::EINVAL)?;
    if !can_splice_read(src) {
        return Err(Errno::EINVAL);
    }
    let seekable = src.ops().seekable();
    let waits = [(out, EVENT_OUT), (src, EVENT_IN)];
    chunked_splice(t, pos, len, nonblock, &waits, |at, want| {
        // A slot per page of the file, as the page cache splices it.
        let skew = if seekable {
            (at as u64 % abi::PAGE_SIZE) as usize
        } else {
            0
        };
        let mut src_res = Ok(());
        let r = pipe.splice_in_pieces(file_pieces(skew, want), |buf| {
            match read_src(src, buf, at)? {
                Ok(n) => Ok(n),
                Err(e) => {
                    src_res = Err(e);
                    Ok(0)
                }
            }
        });
        match (r, src_res) {
            (Ok(0), Err(e)) => Ok(Err(e)),
            (r, _) => r.map(Ok),
        }
    })
}

/// `len` bytes from a file position `skew` bytes into a page, split where the
/// file's pages end.
fn file_pieces(skew: usize, len: usize) -> impl Iterator<Item = usize> + Clone {
    let page = abi::PAGE_SIZE as usize;
    let first = (page - skew % page).min(len);
    std::iter::once(first).chain((0..(len - first).div_ceil(page)).map(move |i| {
        let left = len - first - i * page;
        left.min(page)
    }))
}

/// Moves up to `len` bytes out of the pipe behind `inp` into `dst` (at `pos`
/// when seekable): Linux's do_splice_from. Returns the count moved.
fn pipe_to_file(
    t: &mut Task,
    inp: &OpenFile,
    dst: &OpenFile,
    pos: i64,
    len: u64,
    nonblock: bool,
) -> SysResult {
    let pipe = inp.ops().pipe().ok_or(Errno::EINVAL)?;
    if !can_splice_write(dst) {
        return Err(Errno::EINVAL);
    }
    let waits = [(inp, EVENT_IN), (dst, EVENT_OUT)];
    chunked_splice(t, pos, len, nonblock, &waits, |at, want| {
        let mut dst_res = Ok(());
        let r = pipe.splice_out(want, |data| match write_dst(dst, data, at)? {
            Ok(n) => Ok(n),
            Err(e) => {
                dst_res = Err(e);
                Ok(0)
            }
        });
        match (r, dst_res) {
            (Ok(0), Err(e)) => Ok(Err(e)),
            (r, _) => r.map(Ok),
        }
    })
}

/// splice between pipes (`consume`) or tee (`!consume`).
fn pipe_to_pipe(
    t: &mut Task,
    inp: &OpenFile,
    out: &OpenFile,
    len: u64,
    flags: u32,
    consume: bool,
) -> SysResult {
    let (Some(ip), Some(op)) = (inp.ops().pipe(), out.ops().pipe()) else {
        return Err(Errno::EINVAL);
    };
    if std::ptr::eq(ip, op) {
        return Err(Errno::EINVAL);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0
        || (inp.status_flags() | out.status_flags()) & libc::O_NONBLOCK != 0;
    let len = len.min(MAX_RW_COUNT) as usize;
    let r = wait_io(t, nonblock, &[(inp, EVENT_IN), (out, EVENT_OUT)], || {
        ip.transfer(op, len, consume).map(Ok)
    });
    r.map(|n| n as u64).map_err(|e| pipe_err(t, e))
}

// ---- sendfile ----

fn sys_sendfile(t: &mut Task, a: &Args) -> SysResult {
    let (out_fd, in_fd, off_addr, count) = (a.fd(0), a.fd(1), a.u64(2), a.u64(3));
    let off = read_off(t, off_addr)?;
    let inf = get_file(t, in_fd)?;
    if !inf.readable() {
        return Err(Errno::EBADF);
    }
    if off.is_some() && !inf.ops().seekable() {
        return Err(Errno::ESPIPE);
    }
    let pos = match off {
        Some(p) => p,
        None => file_pos(&inf)?,
    };
    verify_area(Some(pos), count)?;
    let count = count.min(MAX_RW_COUNT);
    let outf = get_file(t, out_fd)?;
    if !outf.writable() {
        return Err(Errno::EBADF);
    }
    let n = if outf.ops().pipe().is_some() {
        let nonblock = outf.status_flags() & libc::O_NONBLOCK != 0;
        if count == 0 {
            0
        } else {
            file_to_pipe(t, &inf, pos, &outf, count, nonblock)?
        }
    } else {
        if outf.status_flags() & libc::O_APPEND != 0 {
            return Err(Errno::EINVAL);
        }
        let out_pos = file_pos(&outf)?;
        verify_area(Some(out_pos), count)?;
        // Linux's splice_direct_to_actor: the input must be a regular file (or
        // a block device), so no stream data is dropped on a short write.
        let in_mode = inf.stat()?.mode & libc::S_IFMT;
        if !matches!(in_mode, libc::S_IFREG | libc::S_IFBLK) || !can_splice_write(&outf) {
            return Err(Errno::EINVAL);
        }
        let n = copy_direct(t, &inf, pos, &outf, out_pos, count as usize)?;
        if n > 0 {
            set_file_pos(&outf, out_pos.saturating_add(n as i64));
        }
        n as u64
    };
    match off {
        Some(_) => write_off(t, off_addr, pos.saturating_add(n as i64))?,
        None if n > 0 => set_file_pos(&inf, pos.saturating_add(n as i64)),
        None => {}
    }
    Ok(n)
}

/// Copies `count` bytes from `src` at `pos` to `dst` at `out_pos` (positions are
/// used for seekable files only) through a staging buffer: Linux's
/// do_splice_direct. Stops early at end of input, on a short write, or when a
/// signal is pending after some progress; returns the count written.
fn copy_direct(
    t: &mut Task,
    src: &OpenFile,
    pos: i64,
    dst: &OpenFile,
    out_pos: i64,
    count: usize,
) -> Result<usize, Errno> {
    let mut buf = vec![0u8; count.min(CHUNK)];
    let mut done = 0usize;
    let err = loop {
        if done == count {
            break None;
        }
        if done > 0 && t.waiter().is_interrupted() {
            break None;
        }
        let want = (count - done).min(CHUNK);
        let at = pos.saturating_add(done as i64);
        let r = if done == 0 {
            wait_io(t, false, &[(src, EVENT_IN)], || {
                read_src(src, &mut buf[..want], at)
            })
        } else {
            read_src(src, &mut buf[..want], at).and_then(|r| r)
        };
        let got = match r {
            Ok(0) => break None,
            Ok(n) => n,
            Err(e) => break Some(e),
        };
        // Write all of it (a stream may take it in pieces).
        let mut put = 0usize;
        let werr = loop {
            if put == got {
                break None;
            }
            let at = out_pos.saturating_add((done + put) as i64);
            let piece = &buf[put..got];
            let r = wait_io(t, false, &[(dst, EVENT_OUT)], || write_dst(dst, piece, at));
            match r {
                Ok(0) => break None,
                Ok(n) => put += n,
                Err(e) => break Some(e),
            }
        };
        done += put;
        if let Some(e) = werr {
            break Some(e);
        }
        if put < got || got < want {
            break None;
        }
    };
    match err {
        Some(e) if done == 0 => {
            if e == Errno::EPIPE {
                t.send_signal_to_self(libc::SIGPIPE);
            }
            Err(e)
        }
        _ => Ok(done),
    }
}

// ---- splice, tee, vmsplice ----

fn sys_splice(t: &mut Task, a: &Args) -> SysResult {
    let (in_fd, off_in, out_fd, off_out, len, flags) =
        (a.fd(0), a.u64(1), a.fd(2), a.u64(3), a.u64(4), a.u32(5));
    if len == 0 {
        return Ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = get_file(t, in_fd)?;
    let outf = get_file(t, out_fd)?;
    let in_pipe = inf.ops().pipe().is_some();
    let out_pipe = outf.ops().pipe().is_some();
    if (in_pipe && off_in != 0) || (out_pipe && off_out != 0) {
        return Err(Errno::ESPIPE);
    }
    let out_off = read_off(t, off_out)?;
    let in_off = read_off(t, off_in)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    match (in_pipe, out_pipe) {
        (true, true) => pipe_to_pipe(t, &inf, &outf, len, flags, true),
        (true, false) => {
            if out_off.is_some() && !outf.ops().seekable() {
                return Err(Errno::EINVAL);
            }
            let pos = match out_off {
                Some(p) => p,
                None => file_pos(&outf)?,
            };
            if outf.status_flags() & libc::O_APPEND != 0 {
                return Err(Errno::EINVAL);
            }
            verify_area(Some(pos), len)?;
            let nonblock = nonblock || inf.status_flags() & libc::O_NONBLOCK != 0;
            let n = pipe_to_file(t, &inf, &outf, pos, len, nonblock)?;
            match out_off {
                Some(_) => write_off(t, off_out, pos.saturating_add(n as i64))?,
                None => set_file_pos(&outf, pos.saturating_add(n as i64)),
            }
            Ok(n)
        }
        (false, true) => {
            if in_off.is_some() && !inf.ops().seekable() {
                return Err(Errno::EINVAL);
            }
            let pos = match in_off {
                Some(p) => p,
                None => file_pos(&inf)?,
            };
            verify_area(Some(pos), len)?;
            let nonblock = nonblock || outf.status_flags() & libc::O_NONBLOCK != 0;
            let n = file_to_pipe(t, &inf, pos, &outf, len, nonblock)?;
            match in_off {
                Some(_) => write_off(t, off_in, pos.saturating_add(n as i64))?,
                None if n > 0 => set_file_pos(&inf, pos.saturating_add(n as i64)),
                None => {}
            }
            Ok(n)
        }
        (false, false) => Err(Errno::EINVAL),
    }
}

fn sys_tee(t: &mut Task, a: &Args) -> SysResult {
    let (in_fd, out_fd, len, flags) = (a.fd(0), a.fd(1), a.u64(2), a.u32(3));
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let inf = get_file(t, in_fd)?;
    let outf = get_file(t, out_fd)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    pipe_to_pipe(t, &inf, &outf, len, flags, false)
}

/// Copies `data` to the iovecs from byte `pos` on; the count copied before the
/// first fault (EFAULT if nothing could be copied).
fn copy_out_iov_partial(
    t: &Task,
    iov: &[(u64, usize)],
    mut pos: usize,
    data: &[u8],
) -> Result<usize, Errno> {
    let mut done = 0usize;
    for &(base, len) in iov {
        if done == data.len() {
            break;
        }
        if pos >= len {
            pos -= len;
            continue;
        }
        let n = (len - pos).min(data.len() - done);
        if let Err(e) = t.copy_out(base.wrapping_add(pos as u64), &data[done..done + n]) {
            // Copy what fits before the bad page, page by page.
            let mut ok = 0usize;
            while ok < n {
                let a = base.wrapping_add((pos + ok) as u64);
                let k = ((abi::PAGE_SIZE - a % abi::PAGE_SIZE) as usize).min(n - ok);
                if t.copy_out(a, &data[done + ok..done + ok + k]).is_err() {
                    break;
                }
                ok += k;
            }
            done += ok;
            return if done == 0 { Err(e) } else { Ok(done) };
        }
        done += n;
        pos = 0;
    }
    Ok(done)
}

/// Copies from the iovecs (from byte `pos` on) into `buf`; the count copied
/// before the first fault (EFAULT if nothing could be copied).
fn copy_in_iov_partial(
    t: &Task,
    iov: &[(u64, usize)],
    mut pos: usize,
    buf: &mut [u8],
) -> Result<usize, Errno> {
    let mut done = 0usize;
    for &(base, len) in iov {
        if done == buf.len() {
            break;
        }
        if pos >= len {
            pos -= len;
            continue;
        }
        let n = (len - pos).min(buf.len() - done);
        if let Err(e) = t.copy_in(base.wrapping_add(pos as u64), &mut buf[done..done + n]) {
            let mut ok = 0usize;
            while ok < n {
                let a = base.wrapping_add((pos + ok) as u64);
                let k = ((abi::PAGE_SIZE - a % abi::PAGE_SIZE) as usize).min(n - ok);
                if t.copy_in(a, &mut buf[done + ok..done + ok + k]).is_err() {
                    break;
                }
                ok += k;
            }
            done += ok;
            return if done == 0 { Err(e) } else { Ok(done) };
        }
        done += n;
        pos = 0;
    }
    Ok(done)
}

/// The iovecs' bytes from `pos` on (at most `max`), split where the iovecs
/// and the pages of user memory end: vmsplice puts each piece in a pipe slot
/// of its own.
fn page_pieces(iov: &[(u64, usize)], mut pos: usize, max: usize) -> Vec<usize> {
    let page = abi::PAGE_SIZE as usize;
    let mut out = Vec::new();
    let mut total = 0usize;
    for &(base, len) in iov {
        if pos >= len {
            pos -= len;
            continue;
        }
        let mut addr = base.wrapping_add(pos as u64);
        let mut left = len - pos;
        pos = 0;
        while left > 0 && total < max {
            let k = (page - (addr % page as u64) as usize)
                .min(left)
                .min(max - total);
            out.push(k);
            total += k;
            left -= k;
            addr = addr.wrapping_add(k as u64);
        }
        if total == max {
            break;
        }
    }
    out
}

fn sys_vmsplice(t: &mut Task, a: &Args) -> SysResult {
    let (fd, iov_addr, nr_segs, flags) = (a.fd(0), a.u64(1), a.u64(2), a.u32(3));
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let f = get_file(t, fd)?;
    let to_pipe = if f.writable() {
        true
    } else if f.readable() {
        false
    } else {
        return Err(Errno::EBADF);
    };
    let iov = read_iovecs(t, iov_addr, nr_segs)?;
    let total: usize = iov.iter().map(|v| v.1).sum();
    if total == 0 {
        return Ok(0);
    }
    let pipe = f.ops().pipe().ok_or(Errno::EBADF)?;
    // vmsplice ignores the description's O_NONBLOCK: only the flag counts.
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let queue = f.ops().wait_queue();
    let mut done = 0usize;
    while done < total {
        let pieces = if to_pipe {
            page_pieces(&iov, done, CHUNK)
        } else {
            Vec::new()
        };
        let want = if to_pipe {
            pieces.iter().sum()
        } else {
            (total - done).min(CHUNK)
        };
        let op = || {
            if to_pipe {
                pipe.splice_in_pieces(pieces.iter().copied(), |buf| {
                    copy_in_iov_partial(t, &iov, done, buf)
                })
            } else {
                pipe.splice_out(want, |data| copy_out_iov_partial(t, &iov, done, data))
            }
        };
        let ev = if to_pipe { EVENT_OUT } else { EVENT_IN };
        let r = match queue {
            Some(q) if done == 0 && !nonblock => {
                waiter::block(t.waiter(), &[(q, ev)], &[], None, op)
            }
            _ => op(),
        };
        match r {
            Ok(n) => {
                done += n;
                if n < want {
                    break;
                }
            }
            Err(_) if done > 0 => break,
            Err(e) => return Err(pipe_err(t, e)),
        }
    }
    Ok(done as u64)
}

// ---- copy_file_range ----

fn sys_copy_file_range(t: &mut Task, a: &Args) -> SysResult {
    let (fd_in, off_in, fd_out, off_out, len, flags) =
        (a.fd(0), a.u64(1), a.fd(2), a.u64(3), a.u64(4), a.u32(5));
    let fin = get_file(t, fd_in)?;
    let fout = get_file(t, fd_out)?;
    let in_off = read_off(t, off_in)?;
    let out_off = read_off(t, off_out)?;
    let pos_in = match in_off {
        Some(p) => p,
        None => file_pos(&fin)?,
    };
    let pos_out = match out_off {
        Some(p) => p,
        None => file_pos(&fout)?,
    };
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    // generic_file_rw_checks.
    let (sin, sout) = (fin.stat()?, fout.stat()?);
    let fmt = |m: u32| m & libc::S_IFMT;
    if fmt(sin.mode) == libc::S_IFDIR || fmt(sout.mode) == libc::S_IFDIR {
        return Err(Errno::EISDIR);
    }
    if fmt(sin.mode) != libc::S_IFREG || fmt(sout.mode) != libc::S_IFREG {
        return Err(Errno::EINVAL);
    }
    if !fin.readable() || !fout.writable() || fout.status_flags() & libc::O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    // Since Linux 5.19 only copies within one file system instance.
    if sin.dev != sout.dev {
        return Err(Errno::EXDEV);
    }
    // generic_copy_file_checks (unsigned arithmetic, as the kernel's).
    let mut count = len;
    let (ui, uo) = (pos_in as u64, pos_out as u64);
    if ui.wrapping_add(count) < ui || uo.wrapping_add(count) < uo {
        return Err(Errno::EOVERFLOW);
    }
    let size_in = sin.size;
    if pos_in >= size_in {
        count = 0;
    } else {
        count = count.min((size_in as u64).wrapping_sub(ui));
    }
    if pos_out == i64::MAX && count > 0 {
        return Err(Errno::EFBIG);
    }
    if sin.dev == sout.dev
        && sin.ino == sout.ino
        && uo.wrapping_add(count) > ui
        && uo < ui.wrapping_add(count)
    {
        return Err(Errno::EINVAL);
    }
    verify_area(Some(pos_in), count)?;
    verify_area(Some(pos_out), count)?;
    if count == 0 {
        return Ok(0);
    }
    let count = count.min(MAX_RW_COUNT) as usize;
    let n = copy_direct(t, &fin, pos_in, &fout, pos_out, count)? as i64;
    if n > 0 {
        let mut ret = Ok(n as u64);
        match in_off {
            Some(_) => {
                if write_off(t, off_in, pos_in.saturating_add(n)).is_err() {
                    ret = Err(Errno::EFAULT);
                }
            }
            None => set_file_pos(&fin, pos_in.saturating_add(n)),
        }
        match out_off {
            Some(_) => {
                if write_off(t, off_out, pos_out.saturating_add(n)).is_err() {
                    ret = Err(Errno::EFAULT);
                }
            }
            None => set_file_pos(&fout, pos_out.saturating_add(n)),
        }
        return ret;
    }
    Ok(0)
}

// ---- the sync family ----

/// sync(2): file data lives in sentry memory or in host files the host kernel
/// writes back; there is nothing to wait for.
fn sys_sync(_t: &mut Task, _a: &Args) -> SysResult {
    Ok(0)
}

fn sys_syncfs(t: &mut Task, a: &Args) -> SysResult {
    get_file(t, a.fd(0))?;
    Ok(0)
}

fn sys_fsync(t: &mut Task, a: &Args) -> SysResult {
    get_file(t, a.fd(0))?.ops().fsync(false).map(|_| 0)
}

fn sys_fdatasync(t: &mut Task, a: &Args) -> SysResult {
    get_file(t, a.fd(0))?.ops().fsync(true).map(|_| 0)
}

/// sync_file_range(2): validated as Linux does; a request that writes or waits
/// becomes an fdatasync of the file (a no-op for in-memory files).
fn sys_sync_file_range(t: &mut Task, a: &Args) -> SysResult {
    const VALID: u32 = 0x1 | 0x2 | 0x4;
    let (off, nbytes, flags) = (a.i64(1), a.i64(2), a.u32(3));
    let f = get_file(t, a.fd(0))?;
    if flags & !VALID != 0 {
        return Err(Errno::EINVAL);
    }
    let end = off.wrapping_add(nbytes);
    if off < 0 || end < 0 || end < off {
        return Err(Errno::EINVAL);
    }
    let mode = f.stat()?.mode & libc::S_IFMT;
    if !matches!(
        mode,
        libc::S_IFREG | libc::S_IFBLK | libc::S_IFDIR | libc::S_IFLNK
    ) {
        return Err(Errno::ESPIPE);
    }
    if flags != 0 && mode == libc::S_IFREG {
        f.ops().fsync(true)?;
    }
    Ok(0)
}

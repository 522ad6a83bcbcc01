//! Pipes (Linux's fs/pipe.c): a bounded in-sentry byte buffer with a read end and
//! a write end, each an open file description of its own.
//!
//! As in Linux, the buffer is a ring of page-sized slots (16 by default): small
//! writes merge into the last page while it has room, so capacity and POLLOUT
//! match Linux exactly. Writes of at most [`PIPE_BUF`] bytes are all-or-nothing,
//! larger ones may be split; reads return what is there; EOF once the last writer
//! is gone, EPIPE once the last reader is gone. A write end opened with O_DIRECT is
//! in packet mode: each page of a write is one packet, and a read consumes at most
//! one packet, discarding what does not fit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use abi::linux::{Stat, Timespec, S_IFIFO};
use abi::Errno;

use crate::file::{FileOps, FileState, OpenFile};
use crate::inode::StatFs;
use crate::waiter::{WaitQueue, EVENT_ERR, EVENT_HUP, EVENT_IN, EVENT_OUT};
use crate::UserIo;

/// Writes of at most this many bytes are atomic.
pub const PIPE_BUF: usize = 4096;
const PAGE_SIZE: usize = 4096;
/// A new pipe's capacity (16 pages, as Linux).
pub const DEFAULT_PIPE_SIZE: usize = 16 * PAGE_SIZE;
/// /proc/sys/fs/pipe-max-size: the largest F_SETPIPE_SZ an unprivileged task may
/// grow a pipe to.
pub const PIPE_MAX_SIZE: usize = 1 << 20;
/// The largest capacity even a privileged task gets. Linux allows up to 2 GiB;
/// pipe data lives on the sentry's heap, so we stop well short of that.
pub const PIPE_MAX_SIZE_PRIVILEGED: usize = 64 << 20;
/// statfs f_type of pipefs.
pub const PIPEFS_MAGIC: u64 = 0x5049_5045;
/// FIONREAD: bytes available to read.
const FIONREAD: u32 = 0x541b;

/// Readable: what poll reports for a read end with data.
const READABLE: u32 = EVENT_IN | libc::POLLRDNORM as u32;
/// Writable: what poll reports for a write end with room.
const WRITABLE: u32 = EVENT_OUT | libc::POLLWRNORM as u32;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// One slot of the ring: up to a page of data, `data[start..]` unread.
struct PipeBuffer {
    data: Vec<u8>,
    start: usize,
    /// Written in packet mode: read whole (or truncated), never merged into.
    packet: bool,
    /// Later writes may append to it (Linux's PIPE_BUF_FLAG_CAN_MERGE): set
    /// for what write(2) put there, not for spliced, vmspliced or tee'd data.
    merge: bool,
}

struct PipeState {
    buffers: VecDeque<PipeBuffer>,
    /// Capacity in slots (Linux's max_usage).
    slots: usize,
    readers: usize,
    writers: usize,
    /// FIFO opens of each end so far (Linux's r_counter/w_counter): an opener
    /// waiting for the other end also wakes for one that came and went.
    reader_opens: u64,
    writer_opens: u64,
}

impl PipeState {
    fn full(&self) -> bool {
        self.buffers.len() >= self.slots
    }

    fn bytes(&self) -> usize {
        self.buffers.iter().map(|b| b.data.len() - b.start).sum()
    }

    /// Moves up to `out.len()` bytes out (Linux's pipe_read): a read takes from
    /// successive buffers and ends after a packet, whose unread rest is dropped.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let Some(b) = self.buffers.front_mut() else {
                break;
            };
            let k = (b.data.len() - b.start).min(out.len() - n);
            out[n..n + k].copy_from_slice(&b.data[b.start..b.start + k]);
            n += k;
            b.start += k;
            let packet = b.packet;
            if packet || b.start == b.data.len() {
                self.buffers.pop_front();
            }
            if packet {
                break;
            }
        }
        n
    }

    /// Copies in as much of `buf` as fits (Linux's pipe_write): the sub-page
    /// remainder may merge into the last buffer, the rest takes a page per slot.
    /// A write of at most PIPE_BUF bytes thus lands whole or not at all.
    fn put(&mut self, buf: &[u8], packet: bool) -> usize {
        let mut done = 0;
        let chars = buf.len() % PAGE_SIZE;
        if chars != 0 {
            if let Some(last) = self.buffers.back_mut() {
                if last.merge && last.data.len() + chars <= PAGE_SIZE {
                    last.data.extend_from_slice(&buf[..chars]);
                    done = chars;
                }
            }
        }
        while done < buf.len() && !self.full() {
            let k = (buf.len() - done).min(PAGE_SIZE);
            let mut data = Vec::with_capacity(PAGE_SIZE);
            data.extend_from_slice(&buf[done..done + k]);
            self.buffers.push_back(PipeBuffer {
                data,
                start: 0,
                packet,
                merge: !packet,
            });
            done += k;
        }
        done
    }
}

/// The pipe object both ends share.
pub struct Pipe {
    /// The buffer, its capacity and the count of open ends.
    state: Mutex<PipeState>,
    /// Waiters for either end: notified on every change of readiness.
    queue: WaitQueue,
    stat: Stat,
}

impl Pipe {
    fn new(uid: u32, gid: u32) -> Pipe {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now = Timespec {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos() as i64,
        };
        Pipe {
            state: Mutex::new(PipeState {
                buffers: VecDeque::new(),
                slots: DEFAULT_PIPE_SIZE / PAGE_SIZE,
                readers: 0,
                writers: 0,
                reader_opens: 0,
                writer_opens: 0,
            }),
            queue: WaitQueue::default(),
            stat: Stat {
                // pipefs is one anonymous device (0:12 on a typical Linux).
                dev: abi::linux::makedev(0, 12),
                ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
                nlink: 1,
                mode: S_IFIFO | 0o600,
                uid,
                gid,
                blksize: PAGE_SIZE as i64,
                atime: now,
                mtime: now,
                ctime: now,
                ..Default::default()
            },
        }
    }

    /// pipe2(2): a new pipe owned by `uid`/`gid`, as (read end, write end).
    /// `flags` may hold O_NONBLOCK (both ends) and O_DIRECT (the write end: packet
    /// mode), as Linux's create_pipe_files.
    pub fn new_pair(uid: u32, gid: u32, flags: i32) -> (Arc<OpenFile>, Arc<OpenFile>) {
        let pipe = Arc::new(Pipe::new(uid, gid));
        {
            let mut s = pipe.lock();
            s.readers = 1;
            s.writers = 1;
        }
        let r = OpenFile::new(
            Box::new(PipeReader(pipe.clone())),
            libc::O_RDONLY | (flags & libc::O_NONBLOCK),
            None,
        );
        let w = OpenFile::new(
            Box::new(PipeWriter(pipe)),
            libc::O_WRONLY | (flags & (libc::O_NONBLOCK | libc::O_DIRECT)),
            None,
        );
        (r, w)
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads what is buffered (up to `buf.len()`); 0 at EOF (empty, no writers);
    /// EAGAIN when empty with writers.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = {
            let mut s = self.lock();
            if s.buffers.is_empty() {
                return if s.writers == 0 {
                    Ok(0)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            s.take(buf)
        };
        self.queue.notify(WRITABLE);
        Ok(n)
    }

    /// Writes `buf` (packets when `packet`): all of it when it is at most PIPE_BUF
    /// bytes, else as much as fits. EAGAIN when that is nothing, EPIPE without
    /// readers (the caller sends SIGPIPE).
    pub fn write(&self, buf: &[u8], packet: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = {
            let mut s = self.lock();
            if s.readers == 0 {
                return Err(Errno::EPIPE);
            }
            match s.put(buf, packet) {
                0 => return Err(Errno::EAGAIN),
                n => n,
            }
        };
        self.queue.notify(READABLE);
        Ok(n)
    }

    /// splice/sendfile into the pipe (Linux's splice_file_to_pipe): `fill`
    /// supplies up to `max` bytes (at most the pipe's free slots' worth) into a
    /// sentry buffer while the pipe is locked, so what it produced always fits;
    /// the data takes fresh page-sized slots. EPIPE without readers (the caller
    /// sends SIGPIPE), EAGAIN when full; errors of `fill` pass through.
    pub fn splice_in(
        &self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        let pages = (0..max.div_ceil(PAGE_SIZE)).map(move |i| (max - i * PAGE_SIZE).min(PAGE_SIZE));
        self.splice_in_pieces(pages, fill)
    }

    /// Like [`Pipe::splice_in`], but each of `pieces` (lengths, at most a page
    /// each) takes a slot of its own, as vmsplice's pieces of user pages do
    /// (Linux's iter_to_pipe); as many pieces as there are free slots.
    pub fn splice_in_pieces(
        &self,
        pieces: impl IntoIterator<Item = usize>,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        let n = {
            let mut s = self.lock();
            if s.readers == 0 {
                return Err(Errno::EPIPE);
            }
            let free = s.slots.saturating_sub(s.buffers.len());
            if free == 0 {
                return Err(Errno::EAGAIN);
            }
            let pieces: Vec<usize> = pieces
                .into_iter()
                .map(|k| k.min(PAGE_SIZE))
                .filter(|&k| k > 0)
                .take(free)
                .collect();
            let mut buf = vec![0u8; pieces.iter().sum()];
            if buf.is_empty() {
                return Ok(0);
            }
            let n = fill(&mut buf)?.min(buf.len());
            let mut at = 0;
            for k in pieces {
                if at >= n {
                    break;
                }
                let k = k.min(n - at);
                s.buffers.push_back(PipeBuffer {
                    data: buf[at..at + k].to_vec(),
                    start: 0,
                    packet: false,
                    merge: false,
                });
                at += k;
            }
            n
        };
        if n > 0 {
            self.queue.notify(READABLE);
        }
        Ok(n)
    }

    /// splice/vmsplice out of the pipe (Linux's __splice_from_pipe): offers up
    /// to `max` buffered bytes to `sink` while the pipe is locked and consumes
    /// only what it accepted. 0 at EOF (empty, no writers); EAGAIN when empty
    /// with writers; errors of `sink` pass through and consume nothing.
    pub fn splice_out(
        &self,
        max: usize,
        sink: impl FnOnce(&[u8]) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        if max == 0 {
            return Ok(0);
        }
        let n = {
            let mut s = self.lock();
            if s.buffers.is_empty() {
                return if s.writers == 0 {
                    Ok(0)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            let mut data = Vec::with_capacity(max.min(s.bytes()));
            for b in s.buffers.iter() {
                let k = (b.data.len() - b.start).min(max - data.len());
                data.extend_from_slice(&b.data[b.start..b.start + k]);
                if data.len() == max {
                    break;
                }
            }
            let n = sink(&data)?.min(data.len());
            let mut left = n;
            while left > 0 {
                let Some(b) = s.buffers.front_mut() else {
                    break;
                };
                let k = (b.data.len() - b.start).min(left);
                b.start += k;
                left -= k;
                if b.start == b.data.len() {
                    s.buffers.pop_front();
                }
            }
            n
        };
        if n > 0 {
            self.queue.notify(WRITABLE);
        }
        Ok(n)
    }

    /// splice between two pipes (`consume`) or tee (`!consume`: the source keeps
    /// its data): copies up to `max` bytes buffer by buffer into fresh slots of
    /// `dst`, as Linux's splice_pipe_to_pipe and link_pipe. Checks the source
    /// first: 0 when it is empty without writers, EAGAIN when empty; then the
    /// destination: EPIPE without readers (the caller sends SIGPIPE), EAGAIN
    /// when full. EINVAL when both are the same pipe.
    pub fn transfer(&self, dst: &Pipe, max: usize, consume: bool) -> Result<usize, Errno> {
        if std::ptr::eq(self, dst) {
            return Err(Errno::EINVAL);
        }
        if max == 0 {
            return Ok(0);
        }
        // Lock in address order: two tasks splicing A->B and B->A must not deadlock.
        let (mut src, mut out) = if (self as *const Pipe) < (dst as *const Pipe) {
            let a = self.lock();
            let b = dst.lock();
            (a, b)
        } else {
            let b = dst.lock();
            let a = self.lock();
            (a, b)
        };
        if src.buffers.is_empty() {
            return if src.writers == 0 {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        if out.readers == 0 {
            return Err(Errno::EPIPE);
        }
        if out.full() {
            return Err(Errno::EAGAIN);
        }
        let mut n = 0;
        let mut i = 0;
        while n < max && !out.full() && i < src.buffers.len() {
            let b = &src.buffers[i];
            let k = (b.data.len() - b.start).min(max - n);
            // A whole buffer moved keeps its flags; a copy or a part may not
            // be merged into (Linux's splice_pipe_to_pipe and link_pipe).
            let whole = consume && k == b.data.len() - b.start;
            out.buffers.push_back(PipeBuffer {
                data: b.data[b.start..b.start + k].to_vec(),
                start: 0,
                packet: b.packet,
                merge: whole && b.merge,
            });
            n += k;
            if consume {
                let b = &mut src.buffers[i];
                b.start += k;
                if b.start == b.data.len() {
                    src.buffers.pop_front();
                }
            } else {
                i += 1;
            }
        }
        drop(src);
        drop(out);
        dst.queue.notify(READABLE);
        if consume {
            self.queue.notify(WRITABLE);
        }
        Ok(n)
    }

    /// Bytes buffered (FIONREAD).
    pub fn len(&self) -> usize {
        self.lock().bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().buffers.is_empty()
    }

    /// F_GETPIPE_SZ.
    pub fn capacity(&self) -> usize {
        self.lock().slots * PAGE_SIZE
    }

    /// F_SETPIPE_SZ: rounds `size` up to a power-of-two number of pages (at least
    /// one) and returns the new capacity. Growing past pipe-max-size needs
    /// `privileged` (CAP_SYS_RESOURCE), else EPERM; EBUSY when the buffers in use
    /// would not fit; EINVAL past 2 GiB.
    pub fn set_capacity(&self, size: u64, privileged: bool) -> Result<usize, Errno> {
        if size > 1 << 31 {
            return Err(Errno::EINVAL);
        }
        let size = (size as usize).max(PAGE_SIZE).next_power_of_two();
        let slots = size / PAGE_SIZE;
        let grew = {
            let mut s = self.lock();
            if slots > s.slots && size > PIPE_MAX_SIZE {
                if !privileged {
                    return Err(Errno::EPERM);
                }
                if size > PIPE_MAX_SIZE_PRIVILEGED {
                    return Err(Errno::ENOMEM);
                }
            }
            if s.buffers.len() > slots {
                return Err(Errno::EBUSY);
            }
            let grew = slots > s.slots;
            s.slots = slots;
            grew
        };
        if grew {
            self.queue.notify(WRITABLE);
        }
        Ok(size)
    }

    fn read_readiness(&self) -> u32 {
        let s = self.lock();
        let mut r = 0;
        if !s.buffers.is_empty() {
            r |= READABLE;
        }
        if s.writers == 0 {
            r |= EVENT_HUP;
        }
        r
    }

    fn write_readiness(&self) -> u32 {
        let s = self.lock();
        let mut r = 0;
        // POLLOUT while a slot is free: a PIPE_BUF write fits.
        if !s.full() {
            r |= WRITABLE;
        }
        if s.readers == 0 {
            r |= EVENT_ERR;
        }
        r
    }

    fn statfs() -> StatFs {
        StatFs {
            fs_type: PIPEFS_MAGIC,
            bsize: PAGE_SIZE as u64,
            namelen: 255,
            frsize: PAGE_SIZE as u64,
            ..Default::default()
        }
    }

    fn ioctl(&self, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        match cmd {
            FIONREAD => {
                let n = self.len().min(i32::MAX as usize) as u32;
                io.copy_out(arg, &n.to_le_bytes())?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}

/// The read end's file operations.
struct PipeReader(Arc<Pipe>);

/// The write end's file operations.
struct PipeWriter(Arc<Pipe>);

impl Drop for PipeReader {
    fn drop(&mut self) {
        let last = {
            let mut s = self.0.lock();
            s.readers -= 1;
            s.readers == 0
        };
        if last {
            // Blocked writers wake to EPIPE.
            self.0.queue.notify(EVENT_ERR | WRITABLE);
        }
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let last = {
            let mut s = self.0.lock();
            s.writers -= 1;
            s.writers == 0
        };
        if last {
            // Blocked readers wake to EOF.
            self.0.queue.notify(EVENT_HUP | READABLE);
        }
    }
}

/// The file operations common to both ends.
macro_rules! pipe_end_ops {
    () => {
        fn seekable(&self) -> bool {
            false
        }
        fn stat(&self) -> Result<Stat, Errno> {
            Ok(self.0.stat)
        }
        fn statfs(&self) -> Result<StatFs, Errno> {
            Ok(Pipe::statfs())
        }
        fn ioctl(
            &self,
            _st: &FileState,
            io: &dyn UserIo,
            cmd: u32,
            arg: u64,
        ) -> Result<u64, Errno> {
            self.0.ioctl(io, cmd, arg)
        }
        fn wait_queue(&self) -> Option<&WaitQueue> {
            Some(&self.0.queue)
        }
        fn supports_fasync(&self) -> bool {
            true
        }
        fn pipe(&self) -> Option<&Pipe> {
            Some(&self.0)
        }
    };
}

impl FileOps for PipeReader {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.read(buf)
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.0.read_readiness() & mask
    }
    pipe_end_ops!();
}

impl FileOps for PipeWriter {
    fn write(&self, st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        self.0.write(buf, st.flags() & libc::O_DIRECT != 0)
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.0.write_readiness() & mask
    }
    pipe_end_ops!();
}

/// Both ends in one description: a FIFO opened O_RDWR.
struct PipeReadWrite(Arc<Pipe>);

impl Drop for PipeReadWrite {
    fn drop(&mut self) {
        {
            let mut s = self.0.lock();
            s.readers -= 1;
            s.writers -= 1;
        }
        self.0
            .queue
            .notify(EVENT_ERR | EVENT_HUP | READABLE | WRITABLE);
    }
}

impl FileOps for PipeReadWrite {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.0.read(buf)
    }
    fn write(&self, st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        self.0.write(buf, st.flags() & libc::O_DIRECT != 0)
    }
    fn readiness(&self, mask: u32) -> u32 {
        (self.0.read_readiness() | self.0.write_readiness()) & mask
    }
    pipe_end_ops!();
}

/// The pipe of a named pipe (FIFO) inode: made by the first open, shared by
/// every open end, gone (with any unread data) once the last end closes.
#[derive(Default)]
pub struct Fifo {
    pipe: Mutex<std::sync::Weak<Pipe>>,
}

impl Fifo {
    /// Opens an end as Linux's fifo_open, minus the wait for the other end
    /// (see [`Pipe::fifo_partner`]): O_RDONLY a read end, O_WRONLY a write end
    /// (ENXIO with O_NONBLOCK and no reader), O_RDWR both.
    pub fn open(&self, flags: i32, uid: u32, gid: u32) -> Result<Box<dyn FileOps>, Errno> {
        let pipe = {
            let mut w = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
            match w.upgrade() {
                Some(p) => p,
                None => {
                    let p = Arc::new(Pipe::new(uid, gid));
                    *w = Arc::downgrade(&p);
                    p
                }
            }
        };
        let ops: Box<dyn FileOps> = {
            let mut s = pipe.lock();
            match flags & libc::O_ACCMODE {
                libc::O_RDONLY => {
                    s.readers += 1;
                    s.reader_opens += 1;
                    if flags & libc::O_NONBLOCK == 0 {
                        // As fifo_open: a writer present now means no wait at all.
                        let seen = if s.writers > 0 {
                            PARTNER_PRESENT
                        } else {
                            s.writer_opens
                        };
                        remember_partner_opens(&pipe, seen);
                    }
                    Box::new(PipeReader(pipe.clone()))
                }
                libc::O_WRONLY => {
                    if flags & libc::O_NONBLOCK != 0 && s.readers == 0 {
                        return Err(Errno::ENXIO);
                    }
                    s.writers += 1;
                    s.writer_opens += 1;
                    if flags & libc::O_NONBLOCK == 0 {
                        let seen = if s.readers > 0 {
                            PARTNER_PRESENT
                        } else {
                            s.reader_opens
                        };
                        remember_partner_opens(&pipe, seen);
                    }
                    Box::new(PipeWriter(pipe.clone()))
                }
                _ => {
                    s.readers += 1;
                    s.writers += 1;
                    s.reader_opens += 1;
                    s.writer_opens += 1;
                    Box::new(PipeReadWrite(pipe.clone()))
                }
            }
        };
        // Wake openers waiting for this end.
        pipe.queue
            .notify(EVENT_ERR | EVENT_HUP | READABLE | WRITABLE);
        Ok(ops)
    }
}

thread_local! {
    /// The other end's open count as this thread's last FIFO open saw it, under
    /// the pipe's lock (pipe address, count): the blocking wait that follows the
    /// open compares against it, so a partner that comes and goes in between
    /// still ends the wait.
    static PARTNER_OPENS: std::cell::Cell<Option<(usize, u64)>> =
        const { std::cell::Cell::new(None) };
}

/// A "seen" count meaning the other end was open when this one was opened.
const PARTNER_PRESENT: u64 = u64::MAX;

fn remember_partner_opens(pipe: &Arc<Pipe>, n: u64) {
    PARTNER_OPENS.with(|c| c.set(Some((Arc::as_ptr(pipe) as usize, n))));
}

impl Pipe {
    /// For a blocking FIFO open, right after [`Fifo::open`] on the same thread:
    /// how many times the other end had been opened when this end was
    /// (`reader`: we are a read end, waiting for writers).
    pub fn fifo_partner_opens(&self, reader: bool) -> u64 {
        let me = self as *const Pipe as usize;
        if let Some((p, n)) = PARTNER_OPENS.with(|c| c.take()) {
            if p == me {
                return n;
            }
        }
        let s = self.lock();
        let (count, opens) = if reader {
            (s.writers, s.writer_opens)
        } else {
            (s.readers, s.reader_opens)
        };
        if count > 0 {
            PARTNER_PRESENT
        } else {
            opens
        }
    }

    /// For a blocking FIFO open: Ok once the other end is open or was opened
    /// since `seen` (from [`Pipe::fifo_partner_opens`]), EAGAIN before.
    pub fn fifo_partner(&self, reader: bool, seen: u64) -> Result<(), Errno> {
        if seen == PARTNER_PRESENT {
            return Ok(());
        }
        let s = self.lock();
        let (count, opens) = if reader {
            (s.writers, s.writer_opens)
        } else {
            (s.readers, s.reader_opens)
        };
        if count > 0 || opens != seen {
            Ok(())
        } else {
            Err(Errno::EAGAIN)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use abi::errno::ERESTARTSYS;

    use super::*;
    use crate::testutil::FakeMem;
    use crate::waiter::{Waiter, EVENT_ALL};

    fn pair(flags: i32) -> (Arc<OpenFile>, Arc<OpenFile>) {
        Pipe::new_pair(1000, 1000, flags)
    }

    #[test]
    fn data_flows_and_eof_after_writers_close() {
        let (r, w) = pair(0);
        assert_eq!(w.write(b"hello"), Ok(5));
        let mut buf = [0u8; 16];
        // Reads return what is there, not what was asked for.
        assert_eq!(r.read(&mut buf), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(r.read(&mut buf), Err(Errno::EAGAIN));
        w.write(b"abc").unwrap();
        drop(w);
        assert_eq!(r.read(&mut buf[..2]), Ok(2));
        assert_eq!(r.read(&mut buf), Ok(1));
        assert_eq!(r.read(&mut buf), Ok(0), "EOF");
        // Ends are one-way.
        let (r, w) = pair(0);
        assert_eq!(r.write(b"x"), Err(Errno::EBADF));
        assert_eq!(w.read(&mut buf), Err(Errno::EBADF));
    }

    #[test]
    fn epipe_without_readers() {
        let (r, w) = pair(0);
        drop(r);
        assert_eq!(w.write(b"x"), Err(Errno::EPIPE));
        assert_eq!(w.write(b""), Ok(0), "empty writes succeed, as Linux");
        assert_eq!(w.readiness(EVENT_ALL), EVENT_ERR | WRITABLE);
    }

    #[test]
    fn capacity_and_atomicity() {
        let (r, w) = pair(libc::O_NONBLOCK);
        assert_eq!(w.ops().pipe().unwrap().capacity(), DEFAULT_PIPE_SIZE);
        let big = vec![7u8; DEFAULT_PIPE_SIZE + 100];
        // Larger than PIPE_BUF: a partial write of what fits.
        assert_eq!(w.write(&big), Ok(DEFAULT_PIPE_SIZE));
        assert_eq!(w.write(b"x"), Err(Errno::EAGAIN));
        assert_eq!(w.readiness(EVENT_ALL), 0);
        // Reading part of the first page frees no slot (as Linux).
        let mut buf = vec![0u8; PIPE_BUF];
        assert_eq!(r.read(&mut buf[..100]), Ok(100));
        assert_eq!(w.write(b"x"), Err(Errno::EAGAIN));
        assert_eq!(r.read(&mut buf[..PIPE_BUF - 100]), Ok(PIPE_BUF - 100));
        assert_eq!(w.readiness(EVENT_OUT), EVENT_OUT);
        // Small writes merge into the last page while it has room...
        assert_eq!(w.write(&[1u8; 3000]), Ok(3000));
        assert_eq!(w.readiness(EVENT_OUT), 0);
        assert_eq!(w.write(&[1u8; 1096]), Ok(1096));
        // ...and a write of at most PIPE_BUF that does not fit is all-or-nothing.
        assert_eq!(w.write(&[1u8; 1]), Err(Errno::EAGAIN));
        assert_eq!(r.ops().pipe().unwrap().len(), DEFAULT_PIPE_SIZE);
        let (r, w) = pair(libc::O_NONBLOCK);
        w.write(&[0u8; 10]).unwrap();
        assert_eq!(
            w.write(&[1u8; PIPE_BUF]),
            Ok(PIPE_BUF),
            "a whole page takes a slot"
        );
        assert_eq!(w.write(&[1u8; PIPE_BUF - 10]), Ok(PIPE_BUF - 10), "merged");
        assert_eq!(r.ops().pipe().unwrap().len(), 2 * PIPE_BUF);
        // A write over PIPE_BUF merges its sub-page remainder, then takes pages.
        assert_eq!(w.write(&[2u8; 2 * PIPE_BUF + 5]), Ok(2 * PIPE_BUF + 5));
    }

    #[test]
    fn set_pipe_size() {
        let (r, w) = pair(0);
        let p = r.ops().pipe().unwrap();
        assert_eq!(p.set_capacity(0, false), Ok(PAGE_SIZE));
        assert_eq!(p.set_capacity(4097, false), Ok(8192));
        assert_eq!(
            p.set_capacity(3 * PAGE_SIZE as u64, false),
            Ok(4 * PAGE_SIZE)
        );
        assert_eq!(
            p.set_capacity(PIPE_MAX_SIZE as u64, false),
            Ok(PIPE_MAX_SIZE)
        );
        assert_eq!(
            p.set_capacity(PIPE_MAX_SIZE as u64 + 1, false),
            Err(Errno::EPERM)
        );
        assert_eq!(
            p.set_capacity(PIPE_MAX_SIZE as u64 + 1, true),
            Ok(2 * PIPE_MAX_SIZE)
        );
        assert_eq!(p.set_capacity((1 << 31) + 1, true), Err(Errno::EINVAL));
        // Two slots in use.
        w.write(&[0u8; 5000]).unwrap();
        assert_eq!(p.set_capacity(PAGE_SIZE as u64, false), Err(Errno::EBUSY));
        assert_eq!(p.set_capacity(8192, false), Ok(8192));
        assert_eq!(w.ops().pipe().unwrap().capacity(), 8192);
    }

    #[test]
    fn readiness_of_both_ends() {
        let all = EVENT_ALL;
        let (r, w) = pair(0);
        assert_eq!(r.readiness(all), 0);
        assert_eq!(w.readiness(all), WRITABLE);
        w.write(b"x").unwrap();
        assert_eq!(r.readiness(all), READABLE);
        assert_eq!(r.readiness(EVENT_OUT), 0, "filtered by the mask");
        drop(w);
        assert_eq!(r.readiness(all), READABLE | EVENT_HUP);
        r.read(&mut [0u8; 4]).unwrap();
        assert_eq!(r.readiness(all), EVENT_HUP);
    }

    #[test]
    fn stat_fionread_and_espipe() {
        let (r, w) = pair(0);
        let (sr, sw) = (r.stat().unwrap(), w.stat().unwrap());
        assert_eq!(sr.mode, S_IFIFO | 0o600);
        assert_eq!(sr.ino, sw.ino);
        assert_eq!(sr.blksize, 4096);
        let (r2, _w2) = pair(0);
        assert_ne!(r2.stat().unwrap().ino, sr.ino);
        assert_eq!(r.statfs().unwrap().fs_type, PIPEFS_MAGIC);
        w.write(b"12345").unwrap();
        let mem = FakeMem(std::cell::RefCell::new(vec![0u8; 8]));
        assert_eq!(w.ioctl(&mem, FIONREAD, 0x1000), Ok(0));
        assert_eq!(&mem.0.borrow()[..4], &5u32.to_le_bytes());
        assert_eq!(r.lseek(0, libc::SEEK_CUR), Err(Errno::ESPIPE));
        assert_eq!(r.pread(&mut [0u8; 4], 0), Err(Errno::ESPIPE));
        assert_eq!(w.pwrite(b"x", 0), Err(Errno::ESPIPE));
        assert_eq!(r.status_flags() & libc::O_ACCMODE, libc::O_RDONLY);
        assert_eq!(w.status_flags() & libc::O_ACCMODE, libc::O_WRONLY);
    }

    #[test]
    fn splice_in_fills_room_and_reports_epipe() {
        let (r, w) = pair(0);
        let p = w.ops().pipe().unwrap();
        assert_eq!(
            p.splice_in(10, |b| {
                b.copy_from_slice(b"0123456789");
                Ok(10)
            }),
            Ok(10)
        );
        // The buffer offered is bounded by the free slots.
        let mut offered = 0;
        assert_eq!(
            p.splice_in(usize::MAX, |b| {
                offered = b.len();
                Ok(b.len())
            }),
            Ok(DEFAULT_PIPE_SIZE - PAGE_SIZE)
        );
        assert_eq!(offered, DEFAULT_PIPE_SIZE - PAGE_SIZE);
        assert_eq!(p.splice_in(1, |_| Ok(1)), Err(Errno::EAGAIN));
        // Errors of the source pass through and add nothing.
        let mut buf = [0u8; 10];
        assert_eq!(r.read(&mut buf), Ok(10));
        assert_eq!(&buf, b"0123456789");
        assert_eq!(p.splice_in(5, |_| Err(Errno::EIO)), Err(Errno::EIO));
        assert_eq!(p.len(), DEFAULT_PIPE_SIZE - PAGE_SIZE);
        drop(r);
        assert_eq!(p.splice_in(1, |_| Ok(1)), Err(Errno::EPIPE));
        // Spliced data takes its own slot: writes do not merge into it.
        let (_r, w) = pair(0);
        let p = w.ops().pipe().unwrap();
        assert_eq!(p.splice_in(10, |_| Ok(10)), Ok(10));
        w.write(&[1u8; 10]).unwrap();
        assert_eq!(
            w.write(&vec![2u8; DEFAULT_PIPE_SIZE]),
            Ok(DEFAULT_PIPE_SIZE - 2 * PAGE_SIZE)
        );
        // Pieces take a slot each, as many as there are free slots.
        let (r, w) = pair(0);
        let p = w.ops().pipe().unwrap();
        p.set_capacity(2 * PAGE_SIZE as u64, false).unwrap();
        let mut offered = 0;
        let n = p.splice_in_pieces([3, 0, 5, PAGE_SIZE], |b| {
            offered = b.len();
            b.copy_from_slice(b"abcdefgh");
            Ok(8)
        });
        assert_eq!((n, offered), (Ok(8), 8));
        assert_eq!(p.splice_in_pieces([1], |_| Ok(1)), Err(Errno::EAGAIN));
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf), Ok(8));
        assert_eq!(&buf[..8], b"abcdefgh");
    }

    #[test]
    fn splice_out_consumes_what_the_sink_took() {
        let (r, w) = pair(0);
        let p = r.ops().pipe().unwrap();
        assert_eq!(p.splice_out(10, |_| Ok(0)), Err(Errno::EAGAIN));
        w.write(b"hello").unwrap();
        w.write(&[b'x'; PIPE_BUF]).unwrap();
        assert_eq!(
            p.splice_out(7, |d| {
                assert_eq!(d, b"helloxx");
                Ok(3)
            }),
            Ok(3)
        );
        assert_eq!(p.splice_out(7, |_| Err(Errno::ENOSPC)), Err(Errno::ENOSPC));
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf), Ok(4));
        assert_eq!(&buf, b"loxx");
        drop(w);
        let rest = p.len();
        assert_eq!(p.splice_out(usize::MAX, |d| Ok(d.len())), Ok(rest));
        assert_eq!(p.splice_out(10, |_| Ok(0)), Ok(0), "EOF");
    }

    #[test]
    fn transfer_moves_or_tees() {
        let (r1, w1) = pair(0);
        let (r2, w2) = pair(0);
        let (p1, p2) = (r1.ops().pipe().unwrap(), w2.ops().pipe().unwrap());
        assert_eq!(p1.transfer(p2, 10, true), Err(Errno::EAGAIN), "empty");
        assert_eq!(p1.transfer(p1, 10, true), Err(Errno::EINVAL));
        w1.write(b"hello world").unwrap();
        // tee: the source keeps its data.
        assert_eq!(p1.transfer(p2, 5, false), Ok(5));
        assert_eq!(p1.len(), 11);
        let mut buf = [0u8; 16];
        assert_eq!(r2.read(&mut buf), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        // splice: moved.
        assert_eq!(p1.transfer(p2, 100, true), Ok(11));
        assert!(p1.is_empty());
        assert_eq!(r2.read(&mut buf), Ok(11));
        assert_eq!(&buf[..11], b"hello world");
        // A full destination, then one without readers.
        w2.write(&vec![0u8; DEFAULT_PIPE_SIZE]).unwrap();
        w1.write(b"x").unwrap();
        assert_eq!(p1.transfer(p2, 1, true), Err(Errno::EAGAIN));
        drop(r2);
        assert_eq!(p1.transfer(p2, 1, false), Err(Errno::EPIPE));
        // EOF on the source wins.
        r1.read(&mut buf).unwrap();
        drop(w1);
        assert_eq!(p1.transfer(p2, 1, true), Ok(0));
    }

    #[test]
    fn packet_mode() {
        let (r, w) = pair(libc::O_DIRECT);
        assert_eq!(
            r.status_flags() & libc::O_DIRECT,
            0,
            "O_DIRECT is the write end's"
        );
        w.write(b"one").unwrap();
        w.write(b"two!").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf), Ok(3));
        assert_eq!(&buf[..3], b"one");
        // A short read discards the rest of the packet.
        assert_eq!(r.read(&mut buf[..2]), Ok(2));
        assert_eq!(&buf[..2], b"tw");
        assert_eq!(r.read(&mut buf), Err(Errno::EAGAIN));
        // Writes larger than PIPE_BUF are split into PIPE_BUF packets.
        w.write(&vec![1u8; PIPE_BUF + 10]).unwrap();
        assert_eq!(r.read(&mut vec![0u8; 2 * PIPE_BUF]), Ok(PIPE_BUF));
        assert_eq!(r.read(&mut vec![0u8; 2 * PIPE_BUF]), Ok(10));
    }

    #[test]
    fn blocked_reader_is_woken_by_a_writer() {
        let (r, w) = pair(0);
        let waiter = Waiter::new().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            w.write(b"wake").unwrap();
            w
        });
        let mut buf = [0u8; 8];
        let n = r.block(&waiter, EVENT_IN, || r.read(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"wake");
        // The last writer closing wakes a blocked reader to EOF.
        let w = writer.join().unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(w);
        });
        assert_eq!(r.block(&waiter, EVENT_IN, || r.read(&mut buf)), Ok(0));
        closer.join().unwrap();
    }

    #[test]
    fn blocked_writer_is_woken_by_a_reader_and_by_close() {
        let (r, w) = pair(0);
        let waiter = Waiter::new().unwrap();
        w.write(&vec![0u8; DEFAULT_PIPE_SIZE]).unwrap();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            r.read(&mut [0u8; PIPE_BUF]).unwrap();
            r
        });
        assert_eq!(w.block(&waiter, EVENT_OUT, || w.write(b"more")), Ok(4));
        let r = reader.join().unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(r);
        });
        let big = vec![0u8; PIPE_BUF];
        assert_eq!(
            w.block(&waiter, EVENT_OUT, || w.write(&big)),
            Err(Errno::EPIPE)
        );
        closer.join().unwrap();
    }

    #[test]
    fn nonblocking_does_not_wait_and_signals_interrupt() {
        let (r, _w) = pair(libc::O_NONBLOCK);
        let waiter = Waiter::new().unwrap();
        let t0 = Instant::now();
        assert_eq!(
            r.block(&waiter, EVENT_IN, || r.read(&mut [0u8; 1])),
            Err(Errno::EAGAIN)
        );
        assert!(t0.elapsed() < Duration::from_secs(1));

        let (r, _w) = pair(0);
        let w2 = waiter.clone();
        let sig = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            w2.interrupt();
        });
        assert_eq!(
            r.block(&waiter, EVENT_IN, || r.read(&mut [0u8; 1])),
            Err(Errno(ERESTARTSYS))
        );
        sig.join().unwrap();
        waiter.clear_interrupt();
    }
}

//! Pseudo-terminals: the devpts file system (/dev/pts), the /dev/ptmx
//! multiplexer, the terminal line discipline (termios input/output processing,
//! canonical mode, echo, ISIG) and controlling-terminal job control.
//!
//! A [`Terminal`] is one master/replica pair. Opening /dev/ptmx makes one with
//! the lowest free index; /dev/pts/N names its replica while the master is open
//! (as Linux, the node goes when the master closes; the index is freed when both
//! ends are gone). Data written to the master passes through the input side of
//! the line discipline to the replica's readers; data written to the replica
//! passes through output processing (OPOST/ONLCR) to the master's readers, as do
//! echoes.
//!
//! Job control needs kernel state the fs crate does not have (the caller's
//! process, group and session; signal delivery): the sentry registers
//! [`TtyHooks`] with [`DevPts::set_hooks`]. A terminal records the session it
//! controls and its foreground process group as ids; a session's controlling
//! terminal is the terminal whose session is that id. Locks: a terminal's state
//! lock is a leaf; hooks are never called while it is held.
//!
//! Known differences from Linux: the controlling terminal is per session, not
//! per process (a process forked before its session leader acquired one, or one
//! that did TIOCNOTTY without being the leader, still has it); with VMIN > 0
//! and VTIME > 0 a read returns as soon as any byte is there (no inter-byte
//! timer); TCSETSW/TCSBRK do not wait for output to drain; echoes are not held
//! back while output is stopped; packet mode (TIOCPKT) only ever reports
//! TIOCPKT_DATA.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use abi::errno::ERESTARTSYS;
use abi::linux::{makedev, Stat, S_IFCHR, S_IFDIR};
use abi::Errno;

use crate::file::{DirEntry, FileOps, FileState, OpenFile};
use crate::inode::{Attr, Inode, SetAttr, StatFs};
use crate::synthetic::now;
use crate::waiter::{WaitQueue, EVENT_ERR, EVENT_HUP, EVENT_IN, EVENT_OUT};
use crate::UserIo;

/// The session of the sandbox's first process (its init, PID 1).
const INIT_SESSION: i32 = 1;
/// statfs f_type of devpts.
pub const DEVPTS_SUPER_MAGIC: u64 = 0x1cd1;
/// Major number of the replicas (Unix98 pty slaves).
const PTS_MAJOR: u32 = 136;
/// Most ptys at once (/proc/sys/kernel/pty/max).
const MAX_PTYS: u32 = 4096;
/// Input queue size (Linux's N_TTY_BUF_SIZE).
const INPUT_MAX: usize = 4096;
/// Bytes the replica may write before the master reads them.
const OUTPUT_MAX: usize = 16384;

// termios flags (asm-generic/termbits.h).
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IUTF8: u32 = 0o40000;
pub const OPOST: u32 = 0o1;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
const TABDLY: u32 = 0o14000;
const XTABS: u32 = 0o14000;
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;
const B38400: u32 = 0o17;
const CS8: u32 = 0o60;
const CREAD: u32 = 0o200;

pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;
const NCCS: usize = 19;

// ioctls.
pub const TCGETS: u32 = 0x5401;
pub const TCSETS: u32 = 0x5402;
pub const TCSETSW: u32 = 0x5403;
pub const TCSETSF: u32 = 0x5404;
const TCSBRK: u32 = 0x5409;
const TCXONC: u32 = 0x540a;
const TCFLSH: u32 = 0x540b;
const TIOCEXCL: u32 = 0x540c;
const TIOCNXCL: u32 = 0x540d;
pub const TIOCSCTTY: u32 = 0x540e;
pub const TIOCGPGRP: u32 = 0x540f;
pub const TIOCSPGRP: u32 = 0x5410;
const TIOCOUTQ: u32 = 0x5411;
const TIOCSTI: u32 = 0x5412;
pub const TIOCGWINSZ: u32 = 0x5413;
pub const TIOCSWINSZ: u32 = 0x5414;
const FIONREAD: u32 = 0x541b;
const TIOCPKT: u32 = 0x5420;
pub const TIOCNOTTY: u32 = 0x5422;
const TIOCSETD: u32 = 0x5423;
const TIOCGETD: u32 = 0x5424;
const TCSBRKP: u32 = 0x5425;
pub const TIOCGSID: u32 = 0x5429;
const TCGETS2: u32 = 0x802c_542a;
const TCSETS2: u32 = 0x402c_542b;
const TCSETSW2: u32 = 0x402c_542c;
const TCSETSF2: u32 = 0x402c_542d;
pub const TIOCGPTN: u32 = 0x8004_5430;
pub const TIOCSPTLCK: u32 = 0x4004_5431;
const TIOCGPTLCK: u32 = 0x8004_5439;
/// Opens the replica of a master: handled by the syscall layer (it installs an fd).
pub const TIOCGPTPEER: u32 = 0x5441;
const TIOCVHANGUP: u32 = 0x5437;

/// The kernel's `struct termios2` (the first 36 bytes are `struct termios`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
    pub ispeed: u32,
    pub ospeed: u32,
}

impl Termios {
    /// A replica's initial termios (Linux's tty_std_termios for pts).
    pub fn default_replica() -> Termios {
        let mut cc = [0u8; NCCS];
        cc[VINTR] = 3;
        cc[VQUIT] = 0o34;
        cc[VERASE] = 0o177;
        cc[VKILL] = 0o25;
        cc[VEOF] = 4;
        cc[VMIN] = 1;
        cc[VSTART] = 0o21;
        cc[VSTOP] = 0o23;
        cc[VSUSP] = 0o32;
        cc[12] = 0o22; // VREPRINT
        cc[13] = 0o17; // VDISCARD
        cc[VWERASE] = 0o27;
        cc[VLNEXT] = 0o26;
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
            ispeed: 38400,
            ospeed: 38400,
        }
    }

    /// `struct termios` (36 bytes) or `struct termios2` (44 bytes).
    fn to_bytes(self, len: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(44);
        for v in [self.iflag, self.oflag, self.cflag, self.lflag] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(self.line);
        b.extend_from_slice(&self.cc);
        b.extend_from_slice(&self.ispeed.to_le_bytes());
        b.extend_from_slice(&self.ospeed.to_le_bytes());
        b.truncate(len);
        b
    }

    fn from_bytes(b: &[u8], old: &Termios) -> Termios {
        let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..17 + NCCS]);
        let (ispeed, ospeed) = if b.len() >= 44 {
            (u(36), u(40))
        } else {
            (old.ispeed, old.ospeed)
        };
        Termios {
            iflag: u(0),
            oflag: u(4),
            cflag: u(8),
            lflag: u(12),
            line: b[16],
            cc,
            ispeed,
            ospeed,
        }
    }

    fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }
    fn i(&self, f: u32) -> bool {
        self.iflag & f != 0
    }
    /// Whether `c` is the (enabled) special character `idx`.
    fn is(&self, c: u8, idx: usize) -> bool {
        self.cc[idx] != 0 && self.cc[idx] == c
    }
}

/// The calling process, as the job-control code needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub tgid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// CAP_SYS_ADMIN (TIOCSCTTY stealing).
    pub admin: bool,
    /// File-system uid and gid (owner of a new pty).
    pub uid: u32,
    pub gid: u32,
}

/// What the sentry provides for job control.
pub trait TtyHooks: Send + Sync {
    /// The calling process (None outside a task).
    fn caller(&self) -> Option<Caller>;
    /// The session of process group `pgid`, None if no such group.
    fn pgrp_session(&self, pgid: i32) -> Option<i32>;
    /// Sends `sig` to every process of group `pgid`.
    fn signal_pgrp(&self, pgid: i32, sig: i32);
    /// Sends `sig` to process `tgid`.
    fn signal_process(&self, tgid: i32, sig: i32);
    /// Whether the calling thread blocks or ignores `sig`.
    fn caller_blocks_or_ignores(&self, sig: i32) -> bool;
    /// Whether process group `pgid` is orphaned (no member has a parent in
    /// another group of the same session).
    fn pgrp_orphaned(&self, pgid: i32) -> bool;
}

/// The devpts instance: the ptys and the /dev/pts directory.
pub struct DevPts {
    terminals: Mutex<BTreeMap<u32, Weak<Terminal>>>,
    hooks: RwLock<Option<Arc<dyn TtyHooks>>>,
    console: RwLock<Option<Arc<OpenFile>>>,
    /// Session -> foreground group of its terminal when that hung up.
    old_fg: Mutex<BTreeMap<i32, i32>>,
    /// The foreground group of the initial session on the host terminal.
    console_fg: Mutex<i32>,
    dir_stat: Stat,
    ptmx_stat: Stat,
    me: Weak<DevPts>,
}

static NEXT_INO: AtomicU64 = AtomicU64::new(3);

fn fs_dev() -> u64 {
    makedev(0, 24)
}

impl DevPts {
    pub fn new() -> Arc<DevPts> {
        let t = now();
        Arc::new_cyclic(|me| DevPts {
            terminals: Mutex::new(BTreeMap::new()),
            hooks: RwLock::new(None),
            console: RwLock::new(None),
            old_fg: Mutex::new(BTreeMap::new()),
            console_fg: Mutex::new(INIT_SESSION),
            dir_stat: Stat {
                dev: fs_dev(),
                ino: 1,
                nlink: 2,
                mode: S_IFDIR | 0o755,
                blksize: 1024,
                atime: t,
                mtime: t,
                ctime: t,
                ..Default::default()
            },
            ptmx_stat: Stat {
                dev: makedev(0, 5),
                ino: NEXT_INO.fetch_add(1, Ordering::Relaxed) + 0x10_0000,
                nlink: 1,
                mode: S_IFCHR | 0o666,
                rdev: makedev(5, 2),
                blksize: 4096,
                atime: t,
                mtime: t,
                ctime: t,
                ..Default::default()
            },
            me: me.clone(),
        })
    }

    /// Registers the kernel's job-control hooks.
    pub fn set_hooks(&self, h: Arc<dyn TtyHooks>) {
        *self.hooks.write().unwrap_or_else(|e| e.into_inner()) = Some(h);
    }

    /// Makes /dev/console an alias of `f` (the sandbox's initial stdout, when
    /// that is a terminal).
    pub fn set_console(&self, f: Arc<OpenFile>) {
        *self.console.write().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    /// Job-control ioctls on a host terminal the workload inherited, when the
    /// sandbox runs on one (see [`DevPts::set_console`]): the host's process
    /// groups mean nothing inside, so the host terminal acts as the
    /// controlling terminal of the initial session with a sandbox-side
    /// foreground group (initially that session's). None: not handled here.
    pub fn host_tty_ioctl(
        &self,
        io: &dyn UserIo,
        cmd: u32,
        arg: u64,
    ) -> Option<Result<u64, Errno>> {
        if !matches!(cmd, TIOCGPGRP | TIOCSPGRP | TIOCGSID) {
            return None;
        }
        self.console()?;
        let h = self.hooks()?;
        let c = h.caller()?;
        Some((|| {
            if c.sid != INIT_SESSION {
                return Err(Errno::ENOTTY);
            }
            let put = |v: i32| -> Result<u64, Errno> {
                io.copy_out(arg, &v.to_le_bytes())?;
                Ok(0)
            };
            let mut fg = self.console_fg.lock().unwrap_or_else(|e| e.into_inner());
            match cmd {
                TIOCGPGRP => put(*fg),
                TIOCGSID => put(INIT_SESSION),
                _ => {
                    let mut b = [0u8; 4];
                    io.copy_in(arg, &mut b)?;
                    let pgid = i32::from_le_bytes(b);
                    if pgid < 0 {
                        return Err(Errno::EINVAL);
                    }
                    drop(fg);
                    match h.pgrp_session(pgid) {
                        None => return Err(Errno::ESRCH),
                        Some(s) if s != INIT_SESSION => return Err(Errno::EPERM),
                        _ => {}
                    }
                    fg = self.console_fg.lock().unwrap_or_else(|e| e.into_inner());
                    *fg = pgid;
                    Ok(0)
                }
            }
        })())
    }

    pub fn console(&self) -> Option<Arc<OpenFile>> {
        self.console
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn hooks(&self) -> Option<Arc<dyn TtyHooks>> {
        self.hooks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn terms(&self) -> MutexGuard<'_, BTreeMap<u32, Weak<Terminal>>> {
        self.terminals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The /dev/pts directory inode.
    pub fn root(self: &Arc<Self>) -> Arc<dyn Inode> {
        Arc::new(PtsDir { fs: self.clone() })
    }

    /// The /dev/ptmx node.
    pub fn ptmx_node(self: &Arc<Self>) -> Arc<dyn Inode> {
        Arc::new(PtmxNode { fs: self.clone() })
    }

    /// The /dev/tty node.
    pub fn tty_node(self: &Arc<Self>) -> Arc<dyn Inode> {
        let t = now();
        Arc::new(TtyNode {
            fs: self.clone(),
            stat: Stat {
                dev: makedev(0, 5),
                ino: NEXT_INO.fetch_add(1, Ordering::Relaxed) + 0x10_0000,
                nlink: 1,
                mode: S_IFCHR | 0o666,
                rdev: makedev(5, 0),
                blksize: 4096,
                atime: t,
                mtime: t,
                ctime: t,
                ..Default::default()
            },
        })
    }

    fn live(&self, index: u32) -> Option<Arc<Terminal>> {
        self.terms().get(&index).and_then(Weak::upgrade)
    }

    fn all(&self) -> Vec<Arc<Terminal>> {
        self.terms().values().filter_map(Weak::upgrade).collect()
    }

    /// The controlling terminal of session `sid`.
    pub fn ctty_of(&self, sid: i32) -> Option<Arc<Terminal>> {
        self.all().into_iter().find(|t| t.jc().session == Some(sid))
    }

    /// A new master/replica pair (opening /dev/ptmx by `uid`/`gid`).
    fn new_pair(&self, uid: u32, gid: u32) -> Result<Arc<Terminal>, Errno> {
        let fs = self.me.upgrade().ok_or(Errno::ENODEV)?;
        let mut terms = self.terms();
        terms.retain(|_, w| w.strong_count() > 0);
        let index = (0..MAX_PTYS)
            .find(|i| !terms.contains_key(i))
            .ok_or(Errno::ENOSPC)?;
        let t = now();
        let term = Arc::new(Terminal {
            index,
            fs,
            state: Mutex::new(TermState {
                termios: Termios::default_replica(),
                winsize: [0; 4],
                line: Vec::new(),
                lines: VecDeque::new(),
                raw: VecDeque::new(),
                output: VecDeque::new(),
                lnext: false,
                column: 0,
                masters: 1,
                replicas: 0,
                replica_closed: false,
                locked: true,
                hung_up: false,
                packet: false,
                stopped: false,
            }),
            jc: Mutex::new(JobState::default()),
            queue: WaitQueue::default(),
            stat: Mutex::new(Stat {
                dev: fs_dev(),
                ino: index as u64 + 3,
                nlink: 1,
                mode: S_IFCHR | 0o620,
                uid,
                gid,
                rdev: makedev(PTS_MAJOR, index),
                blksize: 1024,
                atime: t,
                mtime: t,
                ctime: t,
                ..Default::default()
            }),
        });
        terms.insert(index, Arc::downgrade(&term));
        Ok(term)
    }

    /// The leader of session `sid` exited: its terminal's foreground group gets
    /// SIGHUP and the terminal no longer controls a session.
    pub fn session_leader_exited(&self, sid: i32) {
        let old = self.old_fg().remove(&sid);
        let Some(h) = self.hooks() else {
            return;
        };
        if let Some(t) = self.ctty_of(sid) {
            let fg = {
                let mut jc = t.jc();
                let fg = jc.fg;
                *jc = JobState::default();
                fg
            };
            if let Some(fg) = fg {
                h.signal_pgrp(fg, libc::SIGHUP);
            }
        } else if let Some(old) = old {
            // The terminal hung up earlier: its last foreground group is told
            // now (Linux's tty_old_pgrp).
            h.signal_pgrp(old, libc::SIGHUP);
            h.signal_pgrp(old, libc::SIGCONT);
        }
    }

    /// A new pty for a container's console (`process.terminal`), made
    /// outside any task: unlocked, owned by `uid`/`gid`, with its replica
    /// already open and the terminal controlling session `sid` with `sid`'s
    /// group in the foreground (as a session leader's TIOCSCTTY). Returns the
    /// terminal, the master and the replica.
    #[allow(clippy::type_complexity)]
    pub fn new_console(
        &self,
        uid: u32,
        gid: u32,
        sid: i32,
    ) -> Result<(Arc<Terminal>, Box<dyn FileOps>, Box<dyn FileOps>), Errno> {
        let t = self.new_pair(uid, gid)?;
        t.st().locked = false;
        let master = t.master_file();
        let replica = t.open_replica(libc::O_RDWR | libc::O_NOCTTY)?;
        *t.jc() = JobState {
            session: Some(sid),
            fg: Some(sid),
        };
        Ok((t, master, replica))
    }

    fn old_fg(&self) -> MutexGuard<'_, BTreeMap<i32, i32>> {
        self.old_fg.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The session a terminal controls and its foreground group.
#[derive(Clone, Copy, Debug, Default)]
struct JobState {
    session: Option<i32>,
    fg: Option<i32>,
}

struct TermState {
    termios: Termios,
    /// ws_row, ws_col, ws_xpixel, ws_ypixel.
    winsize: [u16; 4],
    /// Canonical mode: the line being edited.
    line: Vec<u8>,
    /// Canonical mode: completed lines (a line ended by VEOF has no
    /// terminator; an empty one is an end-of-file read).
    lines: VecDeque<Vec<u8>>,
    /// Non-canonical mode: input ready to read.
    raw: VecDeque<u8>,
    /// Replica output (and echoes), for the master to read.
    output: VecDeque<u8>,
    /// The previous byte was VLNEXT: take this one literally.
    lnext: bool,
    /// Output column (for erasing tabs approximately).
    column: usize,
    masters: usize,
    replicas: usize,
    /// The last replica closed (master reads fail with EIO once drained).
    replica_closed: bool,
    /// TIOCSPTLCK: replica opens fail with EIO.
    locked: bool,
    /// The master has closed: the replica is hung up.
    hung_up: bool,
    packet: bool,
    /// Output stopped (IXON's VSTOP, TCOOFF): replica writes wait.
    stopped: bool,
}

impl TermState {
    fn input_len(&self) -> usize {
        self.line.len() + self.lines.iter().map(|l| l.len().max(1)).sum::<usize>() + self.raw.len()
    }

    /// Bytes a read would see (FIONREAD on the replica).
    fn readable_len(&self) -> usize {
        if self.termios.l(ICANON) {
            self.lines.iter().map(Vec::len).sum()
        } else {
            self.raw.len()
        }
    }

    fn flush_input(&mut self) {
        self.line.clear();
        self.lines.clear();
        self.raw.clear();
        self.lnext = false;
    }

    /// Appends `c` to the output queue with output processing. Echoes beyond
    /// twice the queue's size are dropped (nobody reads the master).
    fn out_byte(&mut self, c: u8) {
        if self.output.len() >= 2 * OUTPUT_MAX {
            return;
        }
        let t = &self.termios;
        if t.oflag & OPOST != 0 {
            if c == b'\n' && t.oflag & ONLCR != 0 {
                self.output.push_back(b'\r');
                self.output.push_back(b'\n');
                self.column = 0;
                return;
            }
            if c == b'\r' && t.oflag & OCRNL != 0 {
                self.output.push_back(b'\n');
                self.column = 0;
                return;
            }
        }
        if c == b'\t' && t.oflag & OPOST != 0 && t.oflag & TABDLY == XTABS {
            // XTABS: tabs become spaces to the next multiple of eight.
            let n = 8 - self.column % 8;
            for _ in 0..n {
                self.output.push_back(b' ');
            }
            self.column = self.column.saturating_add(n);
            return;
        }
        match c {
            b'\r' | b'\n' => self.column = 0,
            8 => self.column = self.column.saturating_sub(1),
            b'\t' => self.column = (self.column | 7).saturating_add(1),
            c if c & 0xc0 == 0x80 && t.iflag & IUTF8 != 0 => {}
            c if c >= 0x20 && c != 0x7f => self.column = self.column.saturating_add(1),
            _ => {}
        }
        self.output.push_back(c);
    }

    /// Echoes `c` (ECHOCTL shows control characters as ^X).
    fn echo_char(&mut self, c: u8) {
        if self.termios.l(ECHOCTL) && (c < 0x20 || c == 0x7f) && c != b'\t' && c != b'\n' {
            self.out_byte(b'^');
            self.out_byte(c ^ 0o100);
        } else {
            self.out_byte(c);
        }
    }

    /// Width of `c` as echoed (for erasing it): control characters take two
    /// columns with ECHOCTL and none without.
    fn echo_width(&self, c: u8) -> usize {
        if (c < 0x20 || c == 0x7f) && c != b'\t' {
            if self.termios.l(ECHOCTL) {
                2
            } else {
                0
            }
        } else {
            1
        }
    }

    /// Erases the last character of the line (echoing per ECHOE).
    fn erase_one(&mut self) -> bool {
        let Some(mut c) = self.line.pop() else {
            return false;
        };
        // IUTF8: a multi-byte character goes whole.
        if self.termios.i(IUTF8) {
            while c & 0xc0 == 0x80 {
                match self.line.pop() {
                    Some(p) => c = p,
                    None => break,
                }
            }
        }
        if self.termios.l(ECHO) {
            if self.termios.l(ECHOE) {
                for _ in 0..self.echo_width(c) {
                    self.out_byte(8);
                    self.out_byte(b' ');
                    self.out_byte(8);
                }
            } else {
                self.echo_char(self.termios.cc[VERASE]);
            }
        }
        true
    }

    /// One input byte from the master. Returns a signal to send to the
    /// foreground group, if it is one.
    fn receive(&mut self, mut c: u8) -> Option<i32> {
        let t = self.termios;
        if t.i(ISTRIP) {
            c &= 0x7f;
        }
        if self.lnext {
            self.lnext = false;
            self.store(c);
            return None;
        }
        if c == b'\r' {
            if t.i(IGNCR) {
                return None;
            }
            if t.i(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(INLCR) {
            c = b'\r';
        }
        // IXON: VSTOP stops the replica's output, VSTART (or, with IXANY, any
        // byte) resumes it.
        if t.i(IXON) {
            if t.is(c, VSTART) {
                self.stopped = false;
                return None;
            }
            if t.is(c, VSTOP) {
                self.stopped = true;
                return None;
            }
            if t.i(IXANY) {
                self.stopped = false;
            }
        }
        if t.l(ISIG) {
            let sig = if t.is(c, VINTR) {
                Some(libc::SIGINT)
            } else if t.is(c, VQUIT) {
                Some(libc::SIGQUIT)
            } else if t.is(c, VSUSP) {
                Some(libc::SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                if t.i(IXON) {
                    self.stopped = false;
                }
                if !t.l(NOFLSH) {
                    self.flush_input();
                    self.output.clear();
                }
                if t.l(ECHO) {
                    self.echo_char(c);
                }
                return Some(sig);
            }
        }
        if t.l(IEXTEN) && t.is(c, VLNEXT) {
            self.lnext = true;
            if t.l(ECHO) && t.l(ICANON) {
                self.out_byte(b'^');
                self.out_byte(8);
            }
            return None;
        }
        if t.l(ICANON) {
            if t.is(c, VERASE) {
                self.erase_one();
                return None;
            }
            if t.is(c, VKILL) {
                if t.l(ECHO) && !(t.l(ECHOE) && t.l(ECHOKE)) {
                    self.line.clear();
                    self.echo_char(c);
                    if t.l(ECHOK) {
                        self.out_byte(b'\n');
                    }
                } else {
                    while self.erase_one() {}
                }
                return None;
            }
            if t.l(IEXTEN) && t.is(c, VWERASE) {
                while self.line.last().is_some_and(|b| b.is_ascii_whitespace()) {
                    self.erase_one();
                }
                while self.line.last().is_some_and(|b| !b.is_ascii_whitespace()) {
                    self.erase_one();
                }
                return None;
            }
            if t.is(c, VEOF) {
                let l = std::mem::take(&mut self.line);
                self.lines.push_back(l);
                return None;
            }
            if c == b'\n' || t.is(c, VEOL) || (t.l(IEXTEN) && t.is(c, VEOL2)) {
                if t.l(ECHO) || (c == b'\n' && t.l(ECHONL)) {
                    if c == b'\n' {
                        self.out_byte(b'\n');
                    } else {
                        self.echo_char(c);
                    }
                }
                let mut l = std::mem::take(&mut self.line);
                l.push(c);
                self.lines.push_back(l);
                return None;
            }
        }
        self.store(c);
        None
    }

    /// Stores an ordinary input byte (or one quoted by VLNEXT), echoing it.
    fn store(&mut self, c: u8) {
        let t = self.termios;
        if t.l(ICANON) {
            // A full line drops further bytes (only a line end gets in).
            if self.line.len() >= INPUT_MAX - 1 {
                return;
            }
            if t.l(ECHO) {
                self.echo_char(c);
            }
            self.line.push(c);
        } else {
            if t.l(ECHO) {
                if c == b'\n' {
                    self.out_byte(b'\n');
                } else {
                    self.echo_char(c);
                }
            }
            self.raw.push_back(c);
        }
    }

    /// The termios changed from `old`: move input between the canonical and
    /// raw queues when ICANON flips.
    fn termios_changed(&mut self, old: &Termios) {
        let was = old.l(ICANON);
        let is = self.termios.l(ICANON);
        if was && !is {
            let mut all: Vec<u8> = Vec::new();
            for l in self.lines.drain(..) {
                all.extend_from_slice(&l);
            }
            all.append(&mut self.line);
            self.raw.extend(all);
        } else if !was && is && !self.raw.is_empty() {
            // Pending input stays readable as one line (Linux pushes it).
            let raw: Vec<u8> = self.raw.drain(..).collect();
            self.lines.push_back(raw);
        }
    }
}

/// One pseudo-terminal.
pub struct Terminal {
    index: u32,
    fs: Arc<DevPts>,
    state: Mutex<TermState>,
    jc: Mutex<JobState>,
    /// Readiness of both ends.
    queue: WaitQueue,
    stat: Mutex<Stat>,
}

impl Terminal {
    fn st(&self) -> MutexGuard<'_, TermState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn jc(&self) -> MutexGuard<'_, JobState> {
        self.jc.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    /// The foreground process group (tpgid in /proc/[pid]/stat).
    pub fn foreground(&self) -> Option<i32> {
        self.jc().fg
    }

    /// The replica's device number in /proc/[pid]/stat's tty_nr encoding.
    pub fn tty_nr(&self) -> u32 {
        (PTS_MAJOR << 8) | (self.index & 0xff) | ((self.index & !0xff) << 12)
    }

    fn notify(&self) {
        self.queue
            .notify(EVENT_IN | EVENT_OUT | EVENT_HUP | EVENT_ERR);
    }

    fn stat(&self) -> Stat {
        *self.stat.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn visible(&self) -> bool {
        self.st().masters > 0
    }

    /// Opens the replica (/dev/pts/N, /dev/tty, TIOCGPTPEER). Without
    /// O_NOCTTY a session leader without a controlling terminal acquires it.
    pub fn open_replica(self: &Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        {
            let mut s = self.st();
            if s.locked || s.masters == 0 || s.hung_up {
                return Err(Errno::EIO);
            }
            s.replicas += 1;
            s.replica_closed = false;
        }
        let f = Box::new(ReplicaFile { t: self.clone() });
        // Write-only opens never acquire (Linux's tty_open_proc_set_tty).
        if flags & libc::O_NOCTTY == 0 && flags & libc::O_ACCMODE != libc::O_WRONLY {
            if let Some(h) = self.fs.hooks() {
                if let Some(c) = h.caller() {
                    if c.sid == c.tgid && self.fs.ctty_of(c.sid).is_none() {
                        let mut jc = self.jc();
                        if jc.session.is_none() {
                            jc.session = Some(c.sid);
                            jc.fg = Some(c.pgid);
                        }
                    }
                }
            }
        }
        self.notify();
        Ok(f)
    }

    /// The master's file operations (made once, when /dev/ptmx is opened).
    fn master_file(self: &Arc<Self>) -> Box<dyn FileOps> {
        Box::new(MasterFile { t: self.clone() })
    }

    /// Sends `sig` to the foreground process group, if any.
    fn signal_fg(&self, sig: i32) {
        let fg = self.jc().fg;
        if let (Some(h), Some(fg)) = (self.fs.hooks(), fg) {
            h.signal_pgrp(fg, sig);
        }
    }

    /// Sets the window size as TIOCSWINSZ does (SIGWINCH to the foreground
    /// group when it changes): a console's size forwarded from the host.
    pub fn set_winsize(&self, w: [u16; 4]) {
        let changed = {
            let mut s = self.st();
            let changed = s.winsize != w;
            s.winsize = w;
            changed
        };
        if changed {
            self.signal_fg(libc::SIGWINCH);
        }
    }

    // ---- data paths ----

    /// A write to the master: input to the replica.
    fn master_write(&self, buf: &[u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut sigs = Vec::new();
        let n = {
            let mut s = self.st();
            let mut n = 0;
            for &c in buf {
                // Canonical mode never blocks on a full line (the excess is
                // dropped); otherwise stop when the input queue is full.
                let canon = s.termios.l(ICANON);
                if s.input_len() >= INPUT_MAX && !(canon && s.lines.is_empty()) {
                    break;
                }
                if let Some(sig) = s.receive(c) {
                    sigs.push(sig);
                }
                n += 1;
            }
            n
        };
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        self.notify();
        for sig in sigs {
            self.signal_fg(sig);
        }
        Ok(n)
    }

    /// A read on the master: replica output. EIO once the replica has closed
    /// and everything is read.
    fn master_read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = {
            let mut s = self.st();
            if s.output.is_empty() {
                return if s.replica_closed {
                    Err(Errno::EIO)
                } else if buf.is_empty() {
                    Ok(0)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            // Packet mode (TIOCPKT): data follows a TIOCPKT_DATA (0) byte.
            let skip = s.packet as usize;
            if buf.len() <= skip {
                return Ok(0);
            }
            let n = (buf.len() - skip).min(s.output.len());
            for (i, b) in s.output.drain(..n).enumerate() {
                buf[skip + i] = b;
            }
            if skip == 1 {
                buf[0] = 0;
            }
            n + skip
        };
        self.notify();
        Ok(n)
    }

    /// A write to the replica: output processing towards the master.
    fn replica_write(&self, buf: &[u8]) -> Result<usize, Errno> {
        if self.st().termios.l(TOSTOP) {
            self.check_change(libc::SIGTTOU)?;
        }
        let n = {
            let mut s = self.st();
            if s.hung_up {
                return Err(Errno::EIO);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if s.stopped {
                return Err(Errno::EAGAIN);
            }
            let mut n = 0;
            for &c in buf {
                if s.output.len() >= OUTPUT_MAX {
                    break;
                }
                s.out_byte(c);
                n += 1;
            }
            n
        };
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        self.notify();
        Ok(n)
    }

    /// Linux's tty_check_change: a process of a background group touching its
    /// controlling terminal gets `sig` (SIGTTIN for reads; SIGTTOU for writes
    /// with TOSTOP and for changes of the terminal's settings) and the call
    /// restarts once it is continued. A blocked or ignored SIGTTIN makes it
    /// EIO, a blocked or ignored SIGTTOU lets it proceed; an orphaned group
    /// (nobody to continue it) gets EIO.
    fn check_change(&self, sig: i32) -> Result<(), Errno> {
        let jc = *self.jc();
        let Some(sid) = jc.session else {
            return Ok(());
        };
        let Some(h) = self.fs.hooks() else {
            return Ok(());
        };
        let Some(c) = h.caller() else {
            return Ok(());
        };
        if c.sid != sid || jc.fg.is_none_or(|fg| fg == c.pgid) {
            return Ok(());
        }
        if h.caller_blocks_or_ignores(sig) {
            return if sig == libc::SIGTTIN {
                Err(Errno::EIO)
            } else {
                Ok(())
            };
        }
        if h.pgrp_orphaned(c.pgid) {
            return Err(Errno::EIO);
        }
        h.signal_pgrp(c.pgid, sig);
        Err(Errno(ERESTARTSYS))
    }

    /// A read on the replica.
    fn replica_read(&self, st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.check_change(libc::SIGTTIN)?;
        let n = {
            let mut s = self.st();
            if buf.is_empty() {
                return Ok(0);
            }
            if s.termios.l(ICANON) {
                let Some(front) = s.lines.front_mut() else {
                    return if s.hung_up { Ok(0) } else { Err(Errno::EAGAIN) };
                };
                let n = buf.len().min(front.len());
                buf[..n].copy_from_slice(&front[..n]);
                front.drain(..n);
                if front.is_empty() {
                    s.lines.pop_front();
                }
                n
            } else {
                let vmin = s.termios.cc[VMIN] as usize;
                let vtime = s.termios.cc[VTIME];
                let avail = s.raw.len();
                if avail == 0 {
                    if s.hung_up || (vmin == 0 && vtime == 0) {
                        return Ok(0);
                    }
                    // VMIN 0 with VTIME: the blocked read times out (see
                    // `read_timeout`).
                    return Err(Errno::EAGAIN);
                }
                // With VTIME, any data ends the read (Linux would wait up to
                // VTIME between bytes for VMIN of them).
                let need = if vtime > 0 { 1 } else { vmin.min(buf.len()) };
                if avail < need && !st.nonblocking() && !s.hung_up {
                    return Err(Errno::EAGAIN);
                }
                let n = buf.len().min(avail);
                for (i, b) in s.raw.drain(..n).enumerate() {
                    buf[i] = b;
                }
                n
            }
        };
        self.notify();
        Ok(n)
    }

    fn replica_readiness(&self, mask: u32) -> u32 {
        let s = self.st();
        if s.hung_up {
            return (EVENT_IN
                | EVENT_OUT
                | EVENT_ERR
                | EVENT_HUP
                | libc::POLLRDNORM as u32
                | libc::POLLWRNORM as u32)
                & mask;
        }
        let mut r = 0;
        let readable = if s.termios.l(ICANON) {
            !s.lines.is_empty()
        } else {
            let vmin = s.termios.cc[VMIN] as usize;
            let need = if s.termios.cc[VTIME] == 0 && vmin > 0 {
                vmin
            } else {
                1
            };
            s.raw.len() >= need
        };
        if readable {
            r |= EVENT_IN | libc::POLLRDNORM as u32;
        }
        if s.output.len() < OUTPUT_MAX && !s.stopped {
            r |= EVENT_OUT | libc::POLLWRNORM as u32;
        }
        r & mask
    }

    fn master_readiness(&self, mask: u32) -> u32 {
        let s = self.st();
        let mut r = 0;
        if !s.output.is_empty() {
            r |= EVENT_IN | libc::POLLRDNORM as u32;
        }
        if s.replica_closed {
            r |= EVENT_HUP;
        }
        let canon = s.termios.l(ICANON);
        if s.input_len() < INPUT_MAX || (canon && s.lines.is_empty()) {
            r |= EVENT_OUT | libc::POLLWRNORM as u32;
        }
        r & mask
    }

    // ---- ioctls ----

    fn ioctl(&self, master: bool, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        if !master && self.st().hung_up {
            // Linux's hung_up_tty_ioctl.
            return match cmd {
                TIOCSPGRP => Err(Errno::ENOTTY),
                _ => Err(Errno::EIO),
            };
        }
        let put_u32 = |v: u32| -> Result<u64, Errno> {
            io.copy_out(arg, &v.to_le_bytes())?;
            Ok(0)
        };
        let get_i32 = || -> Result<i32, Errno> {
            let mut b = [0u8; 4];
            io.copy_in(arg, &mut b)?;
            Ok(i32::from_le_bytes(b))
        };
        match cmd {
            TCGETS | TCGETS2 => {
                let len = if cmd == TCGETS { 36 } else { 44 };
                // The master's termios ioctls act on the replica (Linux's
                // tty_pair_get_tty).
                let t = self.st().termios;
                io.copy_out(arg, &t.to_bytes(len))?;
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
                self.check_change(libc::SIGTTOU)?;
                let len = if matches!(cmd, TCSETS | TCSETSW | TCSETSF) {
                    36
                } else {
                    44
                };
                let mut b = vec![0u8; len];
                io.copy_in(arg, &mut b)?;
                {
                    let mut s = self.st();
                    if matches!(cmd, TCSETSF | TCSETSF2) {
                        s.flush_input();
                    }
                    let old = s.termios;
                    s.termios = Termios::from_bytes(&b, &old);
                    s.termios_changed(&old);
                }
                self.notify();
                Ok(0)
            }
            TIOCGWINSZ => {
                let w = self.st().winsize;
                let mut b = [0u8; 8];
                for (i, v) in w.iter().enumerate() {
                    b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
                }
                io.copy_out(arg, &b)?;
                Ok(0)
            }
            TIOCSWINSZ => {
                let mut b = [0u8; 8];
                io.copy_in(arg, &mut b)?;
                let w = [0, 1, 2, 3].map(|i| u16::from_le_bytes([b[i * 2], b[i * 2 + 1]]));
                let changed = {
                    let mut s = self.st();
                    let changed = s.winsize != w;
                    s.winsize = w;
                    changed
                };
                if changed {
                    self.signal_fg(libc::SIGWINCH);
                }
                Ok(0)
            }
            FIONREAD => {
                let s = self.st();
                let n = if master {
                    s.output.len()
                } else {
                    s.readable_len()
                };
                drop(s);
                put_u32(n as u32)
            }
            TIOCOUTQ => {
                let s = self.st();
                let n = if master {
                    s.input_len()
                } else {
                    s.output.len()
                };
                drop(s);
                put_u32(n as u32)
            }
            TCFLSH => {
                self.check_change(libc::SIGTTOU)?;
                let which = arg as i32;
                if !(0..=2).contains(&which) {
                    return Err(Errno::EINVAL);
                }
                {
                    let mut s = self.st();
                    // The master's input is the replica's output and vice versa.
                    let (flush_in, flush_out) = (which != 1, which != 0);
                    let (replica_in, replica_out) = if master {
                        (flush_out, flush_in)
                    } else {
                        (flush_in, flush_out)
                    };
                    if replica_in {
                        s.flush_input();
                    }
                    if replica_out {
                        s.output.clear();
                    }
                }
                self.notify();
                Ok(0)
            }
            TCXONC => {
                self.check_change(libc::SIGTTOU)?;
                {
                    let mut s = self.st();
                    match arg {
                        // TCOOFF / TCOON: stop or restart the output.
                        0 => s.stopped = true,
                        1 => s.stopped = false,
                        // TCIOFF / TCION: send VSTOP / VSTART the other way.
                        2 | 3 => {
                            let c = s.termios.cc[if arg == 2 { VSTOP } else { VSTART }];
                            if c != 0 {
                                s.output.push_back(c);
                            }
                        }
                        _ => return Err(Errno::EINVAL),
                    }
                }
                self.notify();
                Ok(0)
            }
            TCSBRK | TCSBRKP | TIOCEXCL | TIOCNXCL => Ok(0),
            TIOCGETD => put_u32(0),
            TIOCSETD => {
                if get_i32()? != 0 {
                    return Err(Errno::EINVAL);
                }
                Ok(0)
            }
            TIOCGPTN if master => put_u32(self.index),
            TIOCSPTLCK if master => {
                let v = get_i32()?;
                self.st().locked = v != 0;
                Ok(0)
            }
            TIOCGPTLCK if master => put_u32(self.st().locked as u32),
            TIOCPKT if master => {
                let v = get_i32()?;
                self.st().packet = v != 0;
                Ok(0)
            }
            TIOCSCTTY => self.tiocsctty(master, arg, true),
            TIOCNOTTY => self.tiocnotty(master),
            TIOCGPGRP => {
                let jc = *self.jc();
                if !master && !self.is_caller_ctty(&jc) {
                    return Err(Errno::ENOTTY);
                }
                put_u32(jc.fg.unwrap_or(0) as u32)
            }
            TIOCGSID => {
                let jc = *self.jc();
                if !master && !self.is_caller_ctty(&jc) {
                    return Err(Errno::ENOTTY);
                }
                put_u32(jc.session.ok_or(Errno::ENOTTY)? as u32)
            }
            TIOCSPGRP => self.tiocspgrp(get_i32()?),
            TIOCSTI => self.tiocsti(master, io, arg),
            TIOCVHANGUP => Err(Errno::EPERM),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// TIOCSTI: `*arg` as if typed (into the master's own input for a master).
    /// Needs the terminal to be the caller's controlling terminal, or
    /// CAP_SYS_ADMIN.
    fn tiocsti(&self, master: bool, io: &dyn UserIo, arg: u64) -> Result<u64, Errno> {
        let c = self.fs.hooks().and_then(|h| h.caller());
        let jc = *self.jc();
        let own = !master && matches!((c, jc.session), (Some(c), Some(s)) if c.sid == s);
        if !own && !c.is_some_and(|c| c.admin) {
            return Err(Errno::EPERM);
        }
        let mut b = [0u8; 1];
        io.copy_in(arg, &mut b)?;
        let sig = {
            let mut s = self.st();
            if master {
                s.output.push_back(b[0]);
                None
            } else {
                s.receive(b[0])
            }
        };
        self.notify();
        if let Some(sig) = sig {
            self.signal_fg(sig);
        }
        Ok(0)
    }

    fn is_caller_ctty(&self, jc: &JobState) -> bool {
        let c = self.fs.hooks().and_then(|h| h.caller());
        matches!((c, jc.session), (Some(c), Some(s)) if c.sid == s)
    }

    fn tiocsctty(&self, master: bool, arg: u64, readable: bool) -> Result<u64, Errno> {
        if master {
            return Err(Errno::EPERM);
        }
        let h = self.fs.hooks().ok_or(Errno::EPERM)?;
        let c = h.caller().ok_or(Errno::EPERM)?;
        let leader = c.sid == c.tgid;
        if leader && self.jc().session == Some(c.sid) {
            return Ok(0);
        }
        if !leader || self.fs.ctty_of(c.sid).is_some() {
            return Err(Errno::EPERM);
        }
        let mut jc = self.jc();
        if jc.session.is_some() && !(arg == 1 && c.admin) {
            return Err(Errno::EPERM);
        }
        // Only a description open for reading (or CAP_SYS_ADMIN).
        if !readable && !c.admin {
            return Err(Errno::EPERM);
        }
        jc.session = Some(c.sid);
        jc.fg = Some(c.pgid);
        Ok(0)
    }

    fn tiocnotty(&self, master: bool) -> Result<u64, Errno> {
        let h = self.fs.hooks().ok_or(Errno::ENOTTY)?;
        let c = h.caller().ok_or(Errno::ENOTTY)?;
        let fg = {
            let mut jc = self.jc();
            if master || jc.session != Some(c.sid) {
                return Err(Errno::ENOTTY);
            }
            if c.sid != c.tgid {
                return Ok(0);
            }
            let fg = jc.fg;
            *jc = JobState::default();
            fg
        };
        if let Some(fg) = fg {
            h.signal_pgrp(fg, libc::SIGHUP);
            h.signal_pgrp(fg, libc::SIGCONT);
        }
        Ok(0)
    }

    fn tiocspgrp(&self, pgid: i32) -> Result<u64, Errno> {
        let h = self.fs.hooks().ok_or(Errno::ENOTTY)?;
        let c = h.caller().ok_or(Errno::ENOTTY)?;
        let sid = self.jc().session;
        if sid != Some(c.sid) {
            return Err(Errno::ENOTTY);
        }
        match self.check_change(libc::SIGTTOU) {
            Err(Errno::EIO) => return Err(Errno::ENOTTY),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        if pgid < 0 {
            return Err(Errno::EINVAL);
        }
        match h.pgrp_session(pgid) {
            None => return Err(Errno::ESRCH),
            Some(s) if s != c.sid => return Err(Errno::EPERM),
            _ => {}
        }
        let mut jc = self.jc();
        if jc.session != Some(c.sid) {
            return Err(Errno::ENOTTY);
        }
        jc.fg = Some(pgid);
        Ok(0)
    }

    /// The master closed: the replica hangs up and the session leader gets
    /// SIGHUP and SIGCONT.
    fn hang_up(&self) {
        {
            let mut s = self.st();
            s.hung_up = true;
        }
        self.notify();
        let jc = std::mem::take(&mut *self.jc());
        if let (Some(sid), Some(fg)) = (jc.session, jc.fg) {
            self.fs.old_fg().insert(sid, fg);
        }
        if let (Some(h), Some(sid)) = (self.fs.hooks(), jc.session) {
            h.signal_process(sid, libc::SIGHUP);
            h.signal_process(sid, libc::SIGCONT);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let mut terms = self.fs.terms();
        if terms
            .get(&self.index)
            .is_some_and(|w| w.strong_count() == 0)
        {
            terms.remove(&self.index);
        }
    }
}

fn statfs() -> StatFs {
    StatFs {
        fs_type: DEVPTS_SUPER_MAGIC,
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
        ..Default::default()
    }
}

// ---- open files ----

/// An open master (/dev/ptmx).
pub struct MasterFile {
    t: Arc<Terminal>,
}

impl Drop for MasterFile {
    fn drop(&mut self) {
        let last = {
            let mut s = self.t.st();
            s.masters -= 1;
            s.masters == 0
        };
        if last {
            self.t.hang_up();
        }
    }
}

impl FileOps for MasterFile {
    fn read(&self, _st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.t.master_read(buf)
    }
    fn write(&self, _st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        self.t.master_write(buf)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.t.fs.ptmx_stat)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
    fn ioctl(&self, _st: &FileState, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        self.t.ioctl(true, io, cmd, arg)
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.t.master_readiness(mask)
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.t.queue)
    }
    fn terminal(&self) -> Option<(&Arc<Terminal>, bool)> {
        Some((&self.t, true))
    }
}

/// An open replica (/dev/pts/N, /dev/tty).
pub struct ReplicaFile {
    t: Arc<Terminal>,
}

impl Drop for ReplicaFile {
    fn drop(&mut self) {
        {
            let mut s = self.t.st();
            s.replicas -= 1;
            if s.replicas == 0 {
                s.replica_closed = true;
            }
        }
        self.t.notify();
    }
}

impl FileOps for ReplicaFile {
    fn read(&self, st: &FileState, buf: &mut [u8]) -> Result<usize, Errno> {
        self.t.replica_read(st, buf)
    }
    fn write(&self, _st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        self.t.replica_write(buf)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.t.stat())
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
    fn ioctl(&self, st: &FileState, io: &dyn UserIo, cmd: u32, arg: u64) -> Result<u64, Errno> {
        if matches!(cmd, TIOCGPTN | TIOCSPTLCK | TIOCGPTLCK | TIOCPKT) {
            return Err(Errno::ENOTTY);
        }
        if cmd == TIOCSCTTY && !self.t.st().hung_up {
            let readable = st.flags() & libc::O_ACCMODE != libc::O_WRONLY;
            return self.t.tiocsctty(false, arg, readable);
        }
        self.t.ioctl(false, io, cmd, arg)
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.t.replica_readiness(mask)
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.t.queue)
    }
    fn terminal(&self) -> Option<(&Arc<Terminal>, bool)> {
        Some((&self.t, false))
    }
    fn read_timeout(&self) -> Option<std::time::Duration> {
        let s = self.t.st();
        let t = &s.termios;
        (!t.l(ICANON) && t.cc[VMIN] == 0 && t.cc[VTIME] > 0)
            .then(|| std::time::Duration::from_millis(100 * t.cc[VTIME] as u64))
    }
}

// ---- nodes ----

/// /dev/pts.
struct PtsDir {
    fs: Arc<DevPts>,
}

impl Inode for PtsDir {
    fn attr(&self) -> Attr {
        Attr {
            mode: self.fs.dir_stat.mode,
            uid: 0,
            gid: 0,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.fs.dir_stat)
    }
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if name == b"ptmx" {
            let mut st = self.fs.ptmx_stat;
            st.mode = S_IFCHR;
            st.dev = fs_dev();
            st.ino = 2;
            return Ok(Arc::new(PtmxNode2 {
                fs: self.fs.clone(),
                stat: st,
            }));
        }
        let s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        if s.is_empty()
            || (s.len() > 1 && s.starts_with('0'))
            || !s.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Errno::ENOENT);
        }
        let i: u32 = s.parse().map_err(|_| Errno::ENOENT)?;
        let t = self.fs.live(i).ok_or(Errno::ENOENT)?;
        if !t.visible() {
            return Err(Errno::ENOENT);
        }
        Ok(Arc::new(PtsNode {
            t: Arc::downgrade(&t),
            stat: t.stat(),
        }))
    }
    fn open(self: Arc<Self>, _flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        Ok(Box::new(PtsDirFile {
            fs: self.fs.clone(),
        }))
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

struct PtsDirFile {
    fs: Arc<DevPts>,
}

impl FileOps for PtsDirFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.fs.dir_stat)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn readdir(&self, off: u64, _max: usize) -> Result<Vec<DirEntry>, Errno> {
        let dt_dir = abi::linux::dtype_of_mode(S_IFDIR);
        let dt_chr = abi::linux::dtype_of_mode(S_IFCHR);
        let mut all = vec![
            DirEntry {
                ino: 1,
                next_off: 1,
                dtype: dt_dir,
                name: b".".to_vec(),
            },
            DirEntry {
                ino: 1,
                next_off: 2,
                dtype: dt_dir,
                name: b"..".to_vec(),
            },
            DirEntry {
                ino: 2,
                next_off: 3,
                dtype: dt_chr,
                name: b"ptmx".to_vec(),
            },
        ];
        // Offsets past the fixed entries are index + 4, so a reader's position
        // survives ptys coming and going.
        for t in self.fs.all() {
            if !t.visible() {
                continue;
            }
            all.push(DirEntry {
                ino: t.index as u64 + 3,
                next_off: t.index as u64 + 4,
                dtype: dt_chr,
                name: t.index.to_string().into_bytes(),
            });
        }
        Ok(all.into_iter().filter(|e| e.next_off > off).collect())
    }
}

/// /dev/pts/N.
struct PtsNode {
    t: Weak<Terminal>,
    stat: Stat,
}

impl PtsNode {
    fn term(&self) -> Result<Arc<Terminal>, Errno> {
        self.t.upgrade().filter(|t| t.visible()).ok_or(Errno::EIO)
    }
}

impl Inode for PtsNode {
    fn attr(&self) -> Attr {
        let st = self.t.upgrade().map_or(self.stat, |t| t.stat());
        Attr {
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.t.upgrade().map_or(self.stat, |t| t.stat()))
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn open(self: Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        self.term()?.open_replica(flags)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
    fn is_stale(&self) -> bool {
        self.t.upgrade().is_none_or(|t| !t.visible())
    }
    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        let t = self.t.upgrade().ok_or(Errno::ENOENT)?;
        let mut st = t.stat.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = a.mode {
            st.mode = S_IFCHR | (m & 0o7777);
        }
        if let Some(u) = a.uid {
            st.uid = u;
        }
        if let Some(g) = a.gid {
            st.gid = g;
        }
        st.ctime = now();
        Ok(())
    }
}

/// /dev/ptmx: each open makes a new pty.
struct PtmxNode {
    fs: Arc<DevPts>,
}

impl Inode for PtmxNode {
    fn attr(&self) -> Attr {
        Attr {
            mode: self.fs.ptmx_stat.mode,
            uid: 0,
            gid: 0,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.fs.ptmx_stat)
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn open(self: Arc<Self>, _flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        let (uid, gid) = self
            .fs
            .hooks()
            .and_then(|h| h.caller())
            .map_or((0, 0), |c| (c.uid, c.gid));
        let t = self.fs.new_pair(uid, gid)?;
        Ok(t.master_file())
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(crate::devfs::devfs_statfs())
    }
}

/// /dev/pts/ptmx (mode 0, as Linux's default ptmxmode).
struct PtmxNode2 {
    fs: Arc<DevPts>,
    stat: Stat,
}

impl Inode for PtmxNode2 {
    fn attr(&self) -> Attr {
        Attr {
            mode: self.stat.mode,
            uid: 0,
            gid: 0,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn open(self: Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        Arc::new(PtmxNode {
            fs: self.fs.clone(),
        })
        .open(flags)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

/// /dev/tty: the caller's controlling terminal.
struct TtyNode {
    fs: Arc<DevPts>,
    stat: Stat,
}

impl Inode for TtyNode {
    fn attr(&self) -> Attr {
        Attr {
            mode: self.stat.mode,
            uid: 0,
            gid: 0,
        }
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    fn open(self: Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        let c = self
            .fs
            .hooks()
            .and_then(|h| h.caller())
            .ok_or(Errno::ENXIO)?;
        if let Some(t) = self.fs.ctty_of(c.sid) {
            return t.open_replica(flags | libc::O_NOCTTY);
        }
        // The initial session's controlling terminal is the console, when the
        // sandbox was started on a terminal (as a container's init started
        // with a terminal has it).
        if c.sid == INIT_SESSION {
            if let Some(f) = self.fs.console() {
                return Ok(Box::new(crate::file::SharedOps(f)));
            }
        }
        Err(Errno::ENXIO)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(crate::devfs::devfs_statfs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(std::cell::RefCell<Vec<u8>>);
    impl UserIo for Mem {
        fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
            let m = self.0.borrow();
            let a = addr as usize;
            buf.copy_from_slice(m.get(a..a + buf.len()).ok_or(Errno::EFAULT)?);
            Ok(())
        }
        fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
            let mut m = self.0.borrow_mut();
            let a = addr as usize;
            m.get_mut(a..a + buf.len())
                .ok_or(Errno::EFAULT)?
                .copy_from_slice(buf);
            Ok(())
        }
    }

    type Pair = (
        Arc<DevPts>,
        Arc<Terminal>,
        Box<dyn FileOps>,
        Box<dyn FileOps>,
    );

    fn pair() -> Pair {
        let fs = DevPts::new();
        let t = fs.new_pair(0, 0).unwrap();
        let m = t.master_file();
        assert_eq!(t.open_replica(libc::O_NOCTTY).err(), Some(Errno::EIO));
        t.st().locked = false;
        let r = t.open_replica(libc::O_NOCTTY).unwrap();
        (fs, t, m, r)
    }

    fn st() -> FileState {
        crate::file::test_state(0)
    }

    #[test]
    fn canonical_line_and_echo() {
        let (_fs, _t, m, r) = pair();
        let s = st();
        assert_eq!(m.write(&s, b"ab\x7fc\r"), Ok(5));
        let mut b = [0u8; 64];
        assert_eq!(r.read(&s, &mut b), Ok(3));
        assert_eq!(&b[..3], b"ac\n");
        let n = m.read(&s, &mut b).unwrap();
        assert_eq!(&b[..n], b"ab\x08 \x08c\r\n");
        assert_eq!(r.read(&s, &mut b), Err(Errno::EAGAIN));
        // VEOF on an empty line: end of file.
        m.write(&s, b"\x04").unwrap();
        assert_eq!(r.read(&s, &mut b), Ok(0));
        // Output processing.
        assert_eq!(r.write(&s, b"x\n"), Ok(2));
        let n = m.read(&s, &mut b).unwrap();
        assert_eq!(&b[..n], b"x\r\n");
    }

    #[test]
    fn isig_lnext_packet_and_limits() {
        let (_fs, t, m, r) = pair();
        let s = st();
        let mut b = [0u8; 64];
        // ^C flushes the pending line and echoes as ^C (no hooks: no signal).
        m.write(&s, b"abc\x03").unwrap();
        assert_eq!(r.read(&s, &mut b), Err(Errno::EAGAIN));
        let n = m.read(&s, &mut b).unwrap();
        assert_eq!(&b[..n], b"^C");
        // ^V quotes the next byte.
        m.write(&s, b"\x16\x03\n").unwrap();
        assert_eq!(r.read(&s, &mut b), Ok(2));
        assert_eq!(&b[..2], b"\x03\n");
        m.read(&s, &mut b).unwrap();
        // Packet mode prefixes TIOCPKT_DATA.
        t.st().packet = true;
        r.write(&s, b"z").unwrap();
        assert_eq!(m.read(&s, &mut b), Ok(2));
        assert_eq!(&b[..2], b"\0z");
        t.st().packet = false;
        // Replica output stops at the queue limit; echo is capped.
        let big = vec![b'y'; OUTPUT_MAX + 10];
        assert_eq!(r.write(&s, &big), Ok(OUTPUT_MAX));
        assert_eq!(r.write(&s, b"y"), Err(Errno::EAGAIN));
        for _ in 0..4 * OUTPUT_MAX / 100 {
            m.write(&s, &[b'q'; 100]).ok();
            t.st().flush_input();
        }
        assert!(t.st().output.len() <= 2 * OUTPUT_MAX);
        // The canonical input never blocks on a long line; extra bytes drop.
        t.st().output.clear();
        let long = vec![b'l'; INPUT_MAX + 100];
        assert_eq!(m.write(&s, &long), Ok(long.len()));
        assert_eq!(m.write(&s, b"\n"), Ok(1));
        let mut lb = vec![0u8; 2 * INPUT_MAX];
        assert_eq!(r.read(&s, &mut lb), Ok(INPUT_MAX));
    }

    #[test]
    fn raw_mode_and_hangup() {
        let (fs, t, m, r) = pair();
        let s = st();
        let io = Mem(std::cell::RefCell::new(vec![0u8; 64]));
        r.ioctl(&s, &io, TCGETS, 0).unwrap();
        let mut tio = Termios::from_bytes(&io.0.borrow()[..36], &Termios::default_replica());
        assert_eq!(tio, Termios::default_replica());
        tio.lflag &= !(ICANON | ECHO);
        io.0.borrow_mut()[..36].copy_from_slice(&tio.to_bytes(36));
        r.ioctl(&s, &io, TCSETS, 0).unwrap();
        m.write(&s, b"q").unwrap();
        let mut b = [0u8; 8];
        assert_eq!(r.read(&s, &mut b), Ok(1));
        assert_eq!(m.read(&s, &mut b), Err(Errno::EAGAIN));
        io.0.borrow_mut()[..4].fill(0);
        m.ioctl(&s, &io, TIOCGPTN, 0).unwrap();
        assert_eq!(
            u32::from_le_bytes(io.0.borrow()[..4].try_into().unwrap()),
            0
        );
        assert!(fs.root().lookup(b"0").is_ok());
        drop(r);
        assert_eq!(m.read(&s, &mut b), Err(Errno::EIO));
        drop(m);
        assert!(fs.root().lookup(b"0").is_err());
        drop(t);
        assert!(fs.terms().is_empty());
    }

    #[test]
    fn console_made_outside_a_task() {
        let pts = DevPts::new();
        let (t, m, r) = pts.new_console(1000, 5, 1).unwrap();
        assert_eq!(pts.ctty_of(1).map(|c| c.index()), Some(t.index()));
        assert_eq!(t.foreground(), Some(1));
        assert_eq!(t.stat().uid, 1000);
        let m = OpenFile::new(m, libc::O_RDWR, None);
        let r = OpenFile::new(r, libc::O_RDWR, None);
        assert_eq!(m.write(b"hi\n"), Ok(3));
        let mut b = [0u8; 16];
        assert_eq!(r.read(&mut b), Ok(3));
        assert_eq!(&b[..3], b"hi\n");
        // The echo, with output processing.
        assert_eq!(m.read(&mut b), Ok(4));
        assert_eq!(&b[..4], b"hi\r\n");
        t.set_winsize([24, 80, 0, 0]);
        assert_eq!(t.st().winsize, [24, 80, 0, 0]);
        drop(r);
        assert_eq!(m.read(&mut b), Err(Errno::EIO));
    }
}

//! procfs: the sandbox's /proc, generated from kernel state with sandbox PIDs.
//!
//! Every node is a [`Node`] (a kind plus a weak reference to the kernel); the
//! per-process nodes name their task by TID and look it up on each access, so a
//! cached dentry of a process that has gone answers ENOENT. Files are generated
//! whole when opened (as Linux's seq_file does for small files) and read from
//! that snapshot. `/proc/self` resolves through the calling host thread's task
//! ([`crate::task::current_task`]).

mod files;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use abi::linux::{makedev, Stat, Timespec, S_IFDIR, S_IFLNK, S_IFREG};
use abi::Errno;
use fs::file::{DirEntry, FileOps, FileState};
use fs::inode::{Attr, Inode, MagicTarget, StatFs};

use crate::kernel::Kernel;
use crate::task::TaskShared;

pub use files::{cpu_count, sysfs_root};

static NEXT_INO: AtomicU64 = AtomicU64::new(2);

fn next_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

const PROC_DEV_MINOR: u32 = 22;

/// Applies a write to a sysctl.
pub(crate) type Setter = fn(&Kernel, &[u8]) -> Result<(), Errno>;

/// What a node is.
#[derive(Clone)]
pub(crate) enum Kind {
    Root,
    /// A fixed directory (/proc/sys/...).
    Static(Arc<Vec<(&'static str, Arc<Node>)>>),
    /// A file whose text is generated from the kernel.
    Global(fn(&Kernel) -> Vec<u8>),
    /// A writable sysctl: its text, and the setter a write calls with the
    /// bytes written.
    Sysctl(fn(&Kernel) -> Vec<u8>, Setter),
    /// A file whose text needs no kernel (sysfs).
    Text(fn() -> Vec<u8>),
    SelfLink,
    ThreadSelfLink,
    /// /proc/net -> self/net.
    NetLink,
    /// /proc/[pid] (tid == tgid) or /proc/[pid]/task/[tid].
    PidDir {
        tid: i32,
        thread: bool,
    },
    TaskDir {
        tgid: i32,
    },
    FdDir {
        tid: i32,
        info: bool,
    },
    FdLink {
        tid: i32,
        fd: i32,
    },
    FdInfo {
        tid: i32,
        fd: i32,
    },
    PidFile {
        tid: i32,
        which: PidFile,
    },
    PidLink {
        tid: i32,
        which: PidLink,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidFile {
    Stat,
    Status,
    Statm,
    Cmdline,
    Environ,
    Comm,
    Maps,
    Mounts,
    Limits,
    Cgroup,
    OomScoreAdj,
    OomScore,
    Auxv,
    Io,
    LoginUid,
    Wchan,
    MountInfo,
    UidMap,
    GidMap,
    SetGroups,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidLink {
    Exe,
    Cwd,
    Root,
}

const PID_ENTRIES: &[&str] = &[
    "auxv",
    "cgroup",
    "cmdline",
    "comm",
    "cwd",
    "environ",
    "exe",
    "fd",
    "fdinfo",
    "gid_map",
    "io",
    "limits",
    "loginuid",
    "maps",
    "mountinfo",
    "mounts",
    "net",
    "oom_score",
    "oom_score_adj",
    "root",
    "setgroups",
    "stat",
    "statm",
    "status",
    "task",
    "uid_map",
    "wchan",
];

/// A procfs node.
pub struct Node {
    ino: u64,
    kind: Kind,
    k: Weak<Kernel>,
    /// Whether it belongs to the sysfs instance (statfs magic).
    sysfs: bool,
}

impl Node {
    pub(crate) fn new(k: &Weak<Kernel>, kind: Kind) -> Arc<Node> {
        Arc::new(Node {
            ino: next_ino(),
            kind,
            k: k.clone(),
            sysfs: false,
        })
    }

    pub(crate) fn new_sys(kind: Kind) -> Arc<Node> {
        Arc::new(Node {
            ino: next_ino(),
            kind,
            k: Weak::new(),
            sysfs: true,
        })
    }

    fn kernel(&self) -> Result<Arc<Kernel>, Errno> {
        self.k.upgrade().ok_or(Errno::ENOENT)
    }

    /// The task this node is about.
    fn task(&self) -> Result<Arc<TaskShared>, Errno> {
        let tid = match self.kind {
            Kind::PidDir { tid, .. }
            | Kind::FdDir { tid, .. }
            | Kind::FdLink { tid, .. }
            | Kind::FdInfo { tid, .. }
            | Kind::PidFile { tid, .. }
            | Kind::PidLink { tid, .. } => tid,
            Kind::TaskDir { tgid } => tgid,
            _ => return Err(Errno::ENOENT),
        };
        self.kernel()?.task(tid).ok_or(Errno::ENOENT)
    }

    fn mode(&self) -> u32 {
        match &self.kind {
            Kind::Root | Kind::Static(_) | Kind::PidDir { .. } | Kind::TaskDir { .. } => {
                S_IFDIR | 0o555
            }
            Kind::FdDir { info: false, .. } => S_IFDIR | 0o500,
            Kind::FdDir { info: true, .. } => S_IFDIR | 0o500,
            Kind::SelfLink | Kind::ThreadSelfLink | Kind::NetLink => S_IFLNK | 0o777,
            Kind::FdLink { .. } => {
                // Linux: r-x for a readable description, -wx for a writable one.
                let f = self.task().ok().and_then(|t| {
                    let fds = t.proc.lock().unwrap_or_else(|e| e.into_inner()).fds.clone();
                    fds?.get(self.fd_num()).ok()
                });
                match f {
                    Some(f) => {
                        let mut m = 0;
                        if f.readable() {
                            m |= 0o500;
                        }
                        if f.writable() {
                            m |= 0o300;
                        }
                        S_IFLNK | m
                    }
                    None => S_IFLNK | 0o700,
                }
            }
            Kind::PidLink { .. } => S_IFLNK | 0o777,
            Kind::FdInfo { .. } => S_IFREG | 0o400,
            Kind::Global(_) | Kind::Text(_) => S_IFREG | 0o444,
            Kind::Sysctl(..) => S_IFREG | 0o644,
            Kind::PidFile { which, .. } => match which {
                PidFile::Environ | PidFile::Auxv => S_IFREG | 0o400,
                PidFile::OomScoreAdj | PidFile::Comm | PidFile::LoginUid => S_IFREG | 0o644,
                _ => S_IFREG | 0o444,
            },
        }
    }

    fn owner(&self) -> (u32, u32) {
        match self.kind {
            Kind::Root
            | Kind::Static(_)
            | Kind::Global(_)
            | Kind::Sysctl(..)
            | Kind::Text(_)
            | Kind::SelfLink
            | Kind::NetLink
            | Kind::ThreadSelfLink => (0, 0),
            _ => match self.task() {
                Ok(t) => {
                    let v = t.proc.lock().unwrap_or_else(|e| e.into_inner());
                    (v.creds.euid, v.creds.egid)
                }
                Err(_) => (0, 0),
            },
        }
    }

    /// Directory entries (name, mode) after "." and "..".
    fn children(&self) -> Result<Vec<(Vec<u8>, u32, u64)>, Errno> {
        let dt = |n: &str, m: u32| (n.as_bytes().to_vec(), m, 0u64);
        Ok(match &self.kind {
            Kind::Root => {
                let k = self.kernel()?;
                let mut v: Vec<(Vec<u8>, u32, u64)> = files::ROOT_ENTRIES
                    .iter()
                    .map(|(n, _)| {
                        let m = if files::root_entry_is_dir(n) {
                            S_IFDIR
                        } else {
                            S_IFREG
                        };
                        dt(n, m)
                    })
                    .collect();
                v.push(dt("net", S_IFLNK));
                v.push(dt("self", S_IFLNK));
                v.push(dt("thread-self", S_IFLNK));
                let mut pids: Vec<i32> = k.pids().groups.keys().copied().collect();
                pids.sort();
                v.extend(
                    pids.into_iter()
                        .map(|p| (p.to_string().into_bytes(), S_IFDIR, 0)),
                );
                v
            }
            Kind::Static(ents) => ents.iter().map(|(n, node)| dt(n, node.mode())).collect(),
            Kind::PidDir { thread, .. } => PID_ENTRIES
                .iter()
                .filter(|n| !(*thread && **n == "task"))
                .map(|n| {
                    let node = pid_child(&self.k, self.pid_tid(), n).unwrap();
                    dt(n, node.mode())
                })
                .collect(),
            Kind::TaskDir { .. } => {
                let t = self.task()?;
                let mut tids: Vec<i32> = t.tg.lock().tasks.iter().map(|t| t.tid()).collect();
                tids.sort();
                tids.into_iter()
                    .map(|p| (p.to_string().into_bytes(), S_IFDIR, 0))
                    .collect()
            }
            Kind::FdDir { info, .. } => {
                let t = self.task()?;
                let fds = t.proc.lock().unwrap_or_else(|e| e.into_inner()).fds.clone();
                let Some(fds) = fds else {
                    return Ok(Vec::new());
                };
                let mut list = fds.fds();
                list.sort();
                let m = if *info { S_IFREG } else { S_IFLNK };
                list.into_iter()
                    .map(|fd| (fd.to_string().into_bytes(), m, 0))
                    .collect()
            }
            _ => return Err(Errno::ENOTDIR),
        })
    }

    fn fd_num(&self) -> i32 {
        match self.kind {
            Kind::FdLink { fd, .. } | Kind::FdInfo { fd, .. } => fd,
            _ => -1,
        }
    }

    fn pid_tid(&self) -> i32 {
        match self.kind {
            Kind::PidDir { tid, .. } => tid,
            _ => 0,
        }
    }
}

fn pid_child(k: &Weak<Kernel>, tid: i32, name: &str) -> Option<Arc<Node>> {
    let f = |which| Some(Node::new(k, Kind::PidFile { tid, which }));
    let l = |which| Some(Node::new(k, Kind::PidLink { tid, which }));
    match name {
        "auxv" => f(PidFile::Auxv),
        "cgroup" => f(PidFile::Cgroup),
        "cmdline" => f(PidFile::Cmdline),
        "comm" => f(PidFile::Comm),
        "environ" => f(PidFile::Environ),
        "io" => f(PidFile::Io),
        "limits" => f(PidFile::Limits),
        "loginuid" => f(PidFile::LoginUid),
        "maps" => f(PidFile::Maps),
        "mounts" => f(PidFile::Mounts),
        "mountinfo" => f(PidFile::MountInfo),
        "uid_map" => f(PidFile::UidMap),
        "gid_map" => f(PidFile::GidMap),
        "setgroups" => f(PidFile::SetGroups),
        "oom_score" => f(PidFile::OomScore),
        "oom_score_adj" => f(PidFile::OomScoreAdj),
        "stat" => f(PidFile::Stat),
        "statm" => f(PidFile::Statm),
        "status" => f(PidFile::Status),
        "wchan" => f(PidFile::Wchan),
        "exe" => l(PidLink::Exe),
        "cwd" => l(PidLink::Cwd),
        "root" => l(PidLink::Root),
        "fd" => Some(Node::new(k, Kind::FdDir { tid, info: false })),
        "fdinfo" => Some(Node::new(k, Kind::FdDir { tid, info: true })),
        "task" => Some(Node::new(k, Kind::TaskDir { tgid: tid })),
        "net" => Some(files::proc_net(k)),
        _ => None,
    }
}

fn parse_id(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 10 || name[0] == b'0' || !name.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

fn ts(d: std::time::Duration) -> Timespec {
    Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos() as i64,
    }
}

fn statfs_of(sysfs: bool) -> StatFs {
    StatFs {
        fs_type: if sysfs {
            fs::synthetic::SYSFS_MAGIC
        } else {
            fs::synthetic::PROC_SUPER_MAGIC
        },
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
        ..Default::default()
    }
}

impl Inode for Node {
    fn attr(&self) -> Attr {
        let (uid, gid) = self.owner();
        Attr {
            mode: self.mode(),
            uid,
            gid,
        }
    }

    fn stat(&self) -> Result<Stat, Errno> {
        // A process node of a process that has gone is gone.
        let start = match self.kind {
            Kind::Root
            | Kind::Static(_)
            | Kind::Global(_)
            | Kind::Sysctl(..)
            | Kind::Text(_)
            | Kind::SelfLink
            | Kind::NetLink
            | Kind::ThreadSelfLink => None,
            _ => Some(self.task()?.start_time),
        };
        let t = match (start, self.k.upgrade()) {
            (Some(st), _) => ts(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_sub(st.elapsed())),
            (None, Some(k)) => ts(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_sub(k.boot_time.elapsed())),
            _ => ts(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()),
        };
        let a = self.attr();
        let nlink = if a.is_dir() { 2 } else { 1 };
        let size = match &self.kind {
            Kind::SelfLink
            | Kind::ThreadSelfLink
            | Kind::NetLink
            | Kind::PidLink { .. }
            | Kind::FdLink { .. } => self.readlink().map(|v| v.len() as i64).unwrap_or(0),
            _ => 0,
        };
        Ok(Stat {
            dev: makedev(
                0,
                if self.sysfs {
                    PROC_DEV_MINOR + 1
                } else {
                    PROC_DEV_MINOR
                },
            ),
            ino: self.ino,
            nlink,
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            size,
            blksize: 1024,
            atime: t,
            mtime: t,
            ctime: t,
            ..Default::default()
        })
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let name_s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        match &self.kind {
            Kind::Root => {
                if name == b"self" {
                    return Ok(Node::new(&self.k, Kind::SelfLink));
                }
                if name == b"thread-self" {
                    return Ok(Node::new(&self.k, Kind::ThreadSelfLink));
                }
                if name == b"net" {
                    return Ok(Node::new(&self.k, Kind::NetLink));
                }
                if let Some(pid) = parse_id(name) {
                    let k = self.kernel()?;
                    if k.group(pid).is_some() && k.task(pid).is_some() {
                        return Ok(Node::new(
                            &self.k,
                            Kind::PidDir {
                                tid: pid,
                                thread: false,
                            },
                        ));
                    }
                    return Err(Errno::ENOENT);
                }
                files::root_lookup(&self.k, name_s)
                    .map(|n| n as Arc<dyn Inode>)
                    .ok_or(Errno::ENOENT)
            }
            Kind::Static(ents) => ents
                .iter()
                .find(|(n, _)| *n == name_s)
                .map(|(_, n)| n.clone() as Arc<dyn Inode>)
                .ok_or(Errno::ENOENT),
            Kind::PidDir { tid, thread } => {
                self.task()?;
                if *thread && name == b"task" {
                    return Err(Errno::ENOENT);
                }
                pid_child(&self.k, *tid, name_s)
                    .map(|n| n as Arc<dyn Inode>)
                    .ok_or(Errno::ENOENT)
            }
            Kind::TaskDir { .. } => {
                let t = self.task()?;
                let tid = parse_id(name).ok_or(Errno::ENOENT)?;
                if !t.tg.lock().tasks.iter().any(|x| x.tid() == tid) {
                    return Err(Errno::ENOENT);
                }
                Ok(Node::new(&self.k, Kind::PidDir { tid, thread: true }))
            }
            Kind::FdDir { tid, info } => {
                let t = self.task()?;
                let fd = name_s.parse::<i32>().map_err(|_| Errno::ENOENT)?;
                let fds = t.proc.lock().unwrap_or_else(|e| e.into_inner()).fds.clone();
                fds.ok_or(Errno::ENOENT)?
                    .get(fd)
                    .map_err(|_| Errno::ENOENT)?;
                Ok(Node::new(
                    &self.k,
                    if *info {
                        Kind::FdInfo { tid: *tid, fd }
                    } else {
                        Kind::FdLink { tid: *tid, fd }
                    },
                ))
            }
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.kind {
            Kind::SelfLink => {
                let t = crate::task::current_task().ok_or(Errno::ENOENT)?;
                Ok(t.tg.tgid.to_string().into_bytes())
            }
            Kind::NetLink => Ok(b"self/net".to_vec()),
            Kind::ThreadSelfLink => {
                let t = crate::task::current_task().ok_or(Errno::ENOENT)?;
                Ok(format!("{}/task/{}", t.tg.tgid, t.tid()).into_bytes())
            }
            Kind::PidLink { which, .. } => {
                let t = self.task()?;
                let k = self.kernel()?;
                let v = t.proc.lock().unwrap_or_else(|e| e.into_inner());
                match which {
                    PidLink::Exe => {
                        if v.exe.is_empty() {
                            Err(Errno::ENOENT)
                        } else {
                            Ok(v.exe.clone())
                        }
                    }
                    PidLink::Cwd | PidLink::Root => {
                        let ctx = v.fs.clone().ok_or(Errno::ENOENT)?;
                        drop(v);
                        let loc = if *which == PidLink::Cwd {
                            ctx.cwd()
                        } else {
                            ctx.root()
                        };
                        Ok(k.vfs.path_of(&ctx, &loc))
                    }
                }
            }
            Kind::FdLink { fd, .. } => {
                let t = self.task()?;
                let k = self.kernel()?;
                let (fds, ctx) = {
                    let v = t.proc.lock().unwrap_or_else(|e| e.into_inner());
                    (v.fds.clone(), v.fs.clone())
                };
                let file = fds
                    .ok_or(Errno::ENOENT)?
                    .get(*fd)
                    .map_err(|_| Errno::ENOENT)?;
                Ok(files::file_name(&k, ctx.as_deref(), &file))
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// /proc/[pid]/fd/N leads to the open file itself (Linux's proc_fd_link):
    /// its location when it has one, else the file (pipes, host stdio, ...).
    fn follow_magic(&self) -> Option<Result<MagicTarget, Errno>> {
        let Kind::FdLink { fd, .. } = &self.kind else {
            return None;
        };
        let fd = *fd;
        Some((|| {
            let t = self.task()?;
            let fds = t.proc.lock().unwrap_or_else(|e| e.into_inner()).fds.clone();
            let file = fds
                .ok_or(Errno::ENOENT)?
                .get(fd)
                .map_err(|_| Errno::ENOENT)?;
            Ok(match file.location() {
                Some(l) => MagicTarget::Location(l.clone()),
                None => MagicTarget::File(file),
            })
        })())
    }

    fn open(self: Arc<Self>, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
        let st = self.stat()?;
        if self.attr().is_dir() {
            return Ok(Box::new(DirFile {
                node: self,
                stat: st,
            }));
        }
        let data = files::generate(&self)?;
        let writable = matches!(
            self.kind,
            Kind::PidFile {
                which: PidFile::OomScoreAdj | PidFile::Comm | PidFile::LoginUid,
                ..
            }
        );
        let _ = flags;
        let setter = match self.kind {
            Kind::Sysctl(_, set) => Some((self.k.clone(), set)),
            _ => None,
        };
        Ok(Box::new(SnapFile {
            data,
            stat: st,
            writable,
            sysfs: self.sysfs,
            setter,
        }))
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs_of(self.sysfs))
    }

    /// O_TRUNC on a proc file is ignored, as on Linux; nothing else may change.
    fn setattr(&self, a: &fs::inode::SetAttr) -> Result<(), Errno> {
        let only_size = a.mode.is_none()
            && a.uid.is_none()
            && a.gid.is_none()
            && a.atime.is_none()
            && a.mtime.is_none();
        if only_size && self.attr().is_regular() {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }
}

/// An open procfs file: the text generated at open.
struct SnapFile {
    data: Vec<u8>,
    stat: Stat,
    writable: bool,
    sysfs: bool,
    /// A sysctl's setter: each write(2) is parsed as the whole new value.
    setter: Option<(Weak<Kernel>, Setter)>,
}

impl FileOps for SnapFile {
    fn pread(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if off >= self.data.len() as u64 {
            return Ok(0);
        }
        let src = &self.data[off as usize..];
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
    fn pwrite(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        if let Some((k, set)) = &self.setter {
            let k = k.upgrade().ok_or(Errno::ENOENT)?;
            set(&k, buf)?;
            return Ok(buf.len());
        }
        // Accepted and dropped (oom_score_adj, comm, loginuid).
        if self.writable {
            Ok(buf.len())
        } else {
            Err(Errno::EACCES)
        }
    }
    fn write(&self, _st: &FileState, buf: &[u8]) -> Result<usize, Errno> {
        self.pwrite(buf, 0)
    }
    fn lseek(&self, st: &FileState, off: i64, whence: i32) -> Result<u64, Errno> {
        fs::file::generic_lseek(st, off, whence, Some(self.data.len() as u64))
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs_of(self.sysfs))
    }
}

/// An open procfs directory.
struct DirFile {
    node: Arc<Node>,
    stat: Stat,
}

impl FileOps for DirFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs_of(self.node.sysfs))
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn readdir(&self, off: u64, _max: usize) -> Result<Vec<DirEntry>, Errno> {
        let dt_dir = abi::linux::dtype_of_mode(S_IFDIR);
        let mut all = vec![
            DirEntry {
                ino: self.node.ino,
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
        ];
        for (i, (name, mode, _)) in self.node.children()?.into_iter().enumerate() {
            all.push(DirEntry {
                ino: 0x1000_0000 + i as u64 + self.node.ino * 4096,
                next_off: i as u64 + 3,
                dtype: abi::linux::dtype_of_mode(mode),
                name,
            });
        }
        Ok(all.into_iter().skip(off as usize).collect())
    }
}

/// The /proc file system for `kernel`.
/// Reads the host facts it reports (CPUs, memory) now: call it before the
/// sentry confines itself.
pub fn new_procfs(kernel: &Arc<Kernel>) -> Arc<dyn Inode> {
    cpu_count();
    Node::new(&Arc::downgrade(kernel), Kind::Root)
}

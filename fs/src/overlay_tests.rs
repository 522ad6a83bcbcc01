//! Overlay tests: a tmpfs (or a gofer-served temp tree) as the lower layer, a
//! fresh tmpfs as the upper, driven through the VFS as the syscalls drive it.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use abi::linux::{Timespec, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;

use crate::file::OpenFile;
use crate::inode::{Inode, SetAttr, TimeSet};
use crate::overlay::{OverlayFs, OVERLAYFS_SUPER_MAGIC};
use crate::tmpfs::TmpFs;
use crate::vfs::{NewNode, OpenHow, WalkOpts};
use crate::{Creds, FsContext, Vfs};

struct T {
    vfs: Arc<Vfs>,
    ctx: Arc<FsContext>,
    lower: Arc<dyn Inode>,
}

fn root() -> Creds {
    Creds::root()
}

fn put(dir: &Arc<dyn Inode>, name: &str, data: &str, mode: u32) -> Arc<dyn Inode> {
    let f = dir.create(name.as_bytes(), mode, 0, 0).unwrap();
    f.clone()
        .open(libc::O_RDWR)
        .unwrap()
        .pwrite(data.as_bytes(), 0)
        .unwrap();
    f
}

/// Lower: /etc/passwd, /etc/shadow (0640, uid 5, old mtime), /dir/{a,b,sub/c},
/// /many/f000..f099, /empty/, /link -> etc/passwd.
fn setup() -> T {
    let lower: Arc<dyn Inode> = TmpFs::new_root(0o755, 64 << 20);
    let etc = lower.mkdir(b"etc", 0o755, 0, 0).unwrap();
    put(&etc, "passwd", "root:x:0:0\n", 0o644);
    let sh = put(&etc, "shadow", "secret\n", 0o640);
    sh.setattr(&SetAttr {
        uid: Some(5),
        gid: Some(6),
        mtime: Some(TimeSet::At(Timespec { sec: 1000, nsec: 7 })),
        ..Default::default()
    })
    .unwrap();
    let dir = lower.mkdir(b"dir", 0o755, 0, 0).unwrap();
    put(&dir, "a", "A", 0o644);
    put(&dir, "b", "B", 0o644);
    let sub = dir.mkdir(b"sub", 0o700, 0, 0).unwrap();
    put(&sub, "c", "C", 0o644);
    let many = lower.mkdir(b"many", 0o755, 0, 0).unwrap();
    for i in 0..100 {
        put(&many, &format!("f{i:03}"), "", 0o644);
    }
    lower.mkdir(b"empty", 0o755, 0, 0).unwrap();
    lower.symlink(b"link", b"etc/passwd", 0, 0).unwrap();
    let upper = TmpFs::new_root(0o755, 16 << 20);
    let ovl = OverlayFs::new_root(upper, lower.clone()).unwrap();
    let vfs = Vfs::new(ovl, false);
    let ctx = FsContext::new(vfs.root());
    T { vfs, ctx, lower }
}

impl T {
    fn open(&self, p: &str, flags: i32) -> Result<Arc<OpenFile>, Errno> {
        self.vfs.open(
            &self.ctx,
            &root(),
            &self.vfs.root(),
            p.as_bytes(),
            &OpenHow {
                flags,
                mode: 0o644,
                resolve: 0,
            },
        )
    }
    fn read(&self, p: &str) -> Result<String, Errno> {
        let f = self.open(p, libc::O_RDONLY)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(String::from_utf8(out).unwrap());
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
    fn write(&self, p: &str, data: &str, flags: i32) -> Result<(), Errno> {
        let f = self.open(p, libc::O_WRONLY | flags)?;
        assert_eq!(f.write(data.as_bytes())?, data.len());
        Ok(())
    }
    fn stat(&self, p: &str) -> Result<abi::linux::Stat, Errno> {
        self.vfs
            .walk(
                &self.ctx,
                &root(),
                &self.vfs.root(),
                p.as_bytes(),
                &WalkOpts::nofollow(),
            )?
            .stat()
    }
    fn mk(&self, p: &str, what: NewNode) -> Result<(), Errno> {
        self.vfs
            .make_node_at(&self.ctx, &root(), &self.vfs.root(), p.as_bytes(), what)
    }
    fn mkdir(&self, p: &str) -> Result<(), Errno> {
        self.mk(p, NewNode::Dir { mode: 0o755 })
    }
    fn rm(&self, p: &str, dir: bool) -> Result<(), Errno> {
        self.vfs
            .remove_at(&self.ctx, &root(), &self.vfs.root(), p.as_bytes(), dir)
    }
    fn mv(&self, a: &str, b: &str, flags: u32) -> Result<(), Errno> {
        let r = self.vfs.root();
        self.vfs.rename_at2(
            &self.ctx,
            &root(),
            &r,
            a.as_bytes(),
            &r,
            b.as_bytes(),
            flags,
        )
    }
    /// Names listed by getdents64 with a `cap`-byte buffer (several calls).
    fn ls(&self, p: &str, cap: usize) -> Vec<String> {
        let f = self.open(p, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let mut names = Vec::new();
        loop {
            let b = f.getdents64(cap).unwrap();
            if b.is_empty() {
                return names;
            }
            let mut i = 0;
            while i < b.len() {
                let reclen = u16::from_le_bytes([b[i + 16], b[i + 17]]) as usize;
                let name = &b[i + 19..i + reclen];
                let end = name.iter().position(|&c| c == 0).unwrap();
                names.push(String::from_utf8(name[..end].to_vec()).unwrap());
                i += reclen;
            }
        }
    }
    fn lower_read(&self, p: &str) -> Result<String, Errno> {
        let mut cur = self.lower.clone();
        for c in p.split('/').filter(|c| !c.is_empty()) {
            cur = cur.lookup(c.as_bytes())?;
        }
        let f = cur.open(libc::O_RDONLY)?;
        let mut buf = vec![0u8; 4096];
        let n = f.pread(&mut buf, 0)?;
        Ok(String::from_utf8(buf[..n].to_vec()).unwrap())
    }
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn lookup_precedence_and_copy_up() {
    let t = setup();
    assert_eq!(t.read("/etc/passwd").unwrap(), "root:x:0:0\n");
    let before = t.stat("/etc/shadow").unwrap();
    assert_eq!(before.mode, S_IFREG | 0o640);
    assert_eq!((before.uid, before.gid), (5, 6));
    // Open for appending: copied up with data, mode, owner, times and ino.
    t.write("/etc/shadow", "more\n", libc::O_APPEND).unwrap();
    let after = t.stat("/etc/shadow").unwrap();
    assert_eq!(t.read("/etc/shadow").unwrap(), "secret\nmore\n");
    assert_eq!(after.ino, before.ino);
    assert_eq!(after.dev, before.dev);
    assert_eq!(after.mode, before.mode);
    assert_eq!((after.uid, after.gid), (5, 6));
    assert_eq!(after.size, 12);
    // The lower layer is untouched; the upper copy wins from now on.
    assert_eq!(t.lower_read("/etc/shadow").unwrap(), "secret\n");
    // Metadata-only changes copy up too, keeping the data and the times not set.
    let ts = Timespec { sec: 1000, nsec: 7 };
    assert_eq!(t.stat("/etc/passwd").unwrap().nlink, 1);
    let loc = t
        .vfs
        .walk(
            &t.ctx,
            &root(),
            &t.vfs.root(),
            b"/dir/a",
            &WalkOpts::follow(),
        )
        .unwrap();
    let ino = loc.stat().unwrap().ino;
    t.vfs
        .setattr(
            &root(),
            &loc,
            &SetAttr {
                mode: Some(0o600),
                atime: Some(TimeSet::At(ts)),
                ..Default::default()
            },
            false,
        )
        .unwrap();
    let st = t.stat("/dir/a").unwrap();
    assert_eq!((st.mode, st.ino, st.atime), (S_IFREG | 0o600, ino, ts));
    assert_eq!(t.read("/dir/a").unwrap(), "A");
    assert_eq!(
        t.lower
            .lookup(b"dir")
            .unwrap()
            .lookup(b"a")
            .unwrap()
            .attr()
            .mode,
        S_IFREG | 0o644
    );
    // O_TRUNC: copied up empty.
    t.write("/dir/b", "new", libc::O_TRUNC).unwrap();
    assert_eq!(t.read("/dir/b").unwrap(), "new");
    assert_eq!(t.lower_read("/dir/b").unwrap(), "B");
    // A symlink copied up (chown) keeps its target.
    let l = t
        .vfs
        .walk(
            &t.ctx,
            &root(),
            &t.vfs.root(),
            b"/link",
            &WalkOpts::nofollow(),
        )
        .unwrap();
    t.vfs
        .setattr(
            &root(),
            &l,
            &SetAttr {
                uid: Some(3),
                ..Default::default()
            },
            false,
        )
        .unwrap();
    let st = t.stat("/link").unwrap();
    assert_eq!((st.mode & S_IFMT, st.uid), (S_IFLNK, 3));
    assert_eq!(t.vfs.readlink(&l).unwrap(), b"etc/passwd");
    assert_eq!(t.read("/link").unwrap(), "root:x:0:0\n");
    // One device for the whole overlay; statfs says overlay.
    assert_eq!(t.stat("/").unwrap().dev, st.dev);
    assert_eq!(t.stat("/many/f001").unwrap().dev, st.dev);
    assert_eq!(
        t.vfs.root().statfs().unwrap().fs_type,
        OVERLAYFS_SUPER_MAGIC
    );
}

#[test]
fn open_file_sees_fstat_with_overlay_identity() {
    let t = setup();
    let f = t.open("/etc/passwd", libc::O_RDONLY).unwrap();
    let st = t.stat("/etc/passwd").unwrap();
    let fst = f.stat().unwrap();
    assert_eq!((fst.dev, fst.ino), (st.dev, st.ino));
    let w = t.open("/etc/passwd", libc::O_RDWR).unwrap();
    let wst = w.stat().unwrap();
    assert_eq!((wst.dev, wst.ino), (st.dev, st.ino));
    w.pwrite(b"ROOT", 0).unwrap();
    // The description opened before the copy-up still reads the lower file.
    let mut b = [0u8; 4];
    assert_eq!(f.pread(&mut b, 0).unwrap(), 4);
    assert_eq!(&b, b"root");
    assert_eq!(&t.read("/etc/passwd").unwrap()[..4], "ROOT");
}

#[test]
fn whiteout_on_unlink() {
    let t = setup();
    let before = t.stat("/dir").unwrap().mtime;
    t.rm("/dir/a", false).unwrap();
    assert_eq!(t.stat("/dir/a").err(), Some(Errno::ENOENT));
    assert_eq!(t.read("/dir/a").err(), Some(Errno::ENOENT));
    let after = t.stat("/dir").unwrap().mtime;
    assert!((after.sec, after.nsec) > (before.sec, before.nsec));
    assert_eq!(t.rm("/dir/a", false), Err(Errno::ENOENT));
    assert_eq!(
        t.ls("/dir", 4096).into_iter().collect::<BTreeSet<_>>(),
        set(&[".", "..", "b", "sub"])
    );
    assert_eq!(t.lower_read("/dir/a").unwrap(), "A");
    // A new file under the whited-out name; removing it hides the lower again.
    t.write("/dir/a", "again", libc::O_CREAT).unwrap();
    assert_eq!(t.read("/dir/a").unwrap(), "again");
    assert_eq!(t.ls("/dir", 4096).iter().filter(|n| *n == "a").count(), 1);
    t.rm("/dir/a", false).unwrap();
    assert_eq!(t.stat("/dir/a").err(), Some(Errno::ENOENT));
    // Unlink of a copied-up file.
    t.write("/dir/b", "x", 0).unwrap();
    t.rm("/dir/b", false).unwrap();
    assert_eq!(t.stat("/dir/b").err(), Some(Errno::ENOENT));
    assert_eq!(t.rm("/dir/sub", false), Err(Errno::EISDIR));
    assert_eq!(t.rm("/etc/passwd", true), Err(Errno::ENOTDIR));
}

#[test]
fn readdir_merges_across_small_getdents() {
    let t = setup();
    for i in 0..50 {
        t.write(&format!("/many/new{i:02}"), "n", libc::O_CREAT)
            .unwrap();
    }
    for i in 10..20 {
        t.rm(&format!("/many/f{i:03}"), false).unwrap();
    }
    // Copied up: listed once.
    t.write("/many/f050", "x", 0).unwrap();
    let mut expect: BTreeSet<String> = (0..100)
        .filter(|i| !(10..20).contains(i))
        .map(|i| format!("f{i:03}"))
        .chain((0..50).map(|i| format!("new{i:02}")))
        .collect();
    expect.insert(".".into());
    expect.insert("..".into());
    for cap in [40usize, 64, 100, 333, 65536] {
        let names = t.ls("/many", cap);
        assert_eq!(names.len(), expect.len(), "cap {cap}: duplicates or misses");
        assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), expect);
    }
    // d_ino is what stat says.
    let f = t.open("/many", libc::O_RDONLY).unwrap();
    let b = f.getdents64(4096).unwrap();
    let mut i = 0;
    let mut checked = 0;
    while i < b.len() {
        let d_ino = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let reclen = u16::from_le_bytes([b[i + 16], b[i + 17]]) as usize;
        let name = &b[i + 19..i + reclen];
        let end = name.iter().position(|&c| c == 0).unwrap();
        let name = String::from_utf8(name[..end].to_vec()).unwrap();
        if name != ".." {
            let p = format!("/many/{name}");
            assert_eq!(t.stat(&p).unwrap().ino, d_ino, "{name}");
            checked += 1;
        }
        i += reclen;
    }
    assert!(checked > 10);
}

#[test]
fn rmdir_and_opaque_dirs() {
    let t = setup();
    // Non-empty through the lower layer only.
    assert_eq!(t.rm("/dir", true), Err(Errno::ENOTEMPTY));
    assert_eq!(t.rm("/dir/sub", true), Err(Errno::ENOTEMPTY));
    t.rm("/dir/sub/c", false).unwrap();
    t.rm("/dir/sub", true).unwrap();
    assert_eq!(t.stat("/dir/sub").err(), Some(Errno::ENOENT));
    // Re-made: opaque, the old lower entries stay hidden.
    t.mkdir("/dir/sub").unwrap();
    assert_eq!(t.ls("/dir/sub", 4096), vec![".", ".."]);
    assert_eq!(t.stat("/dir/sub/c").err(), Some(Errno::ENOENT));
    assert_eq!(t.stat("/dir/sub").unwrap().mode, S_IFDIR | 0o755);
    t.write("/dir/sub/d", "d", libc::O_CREAT).unwrap();
    assert_eq!(t.ls("/dir/sub", 4096), vec![".", "..", "d"]);
    // A lower-only empty directory goes; a merged one after emptying too.
    t.rm("/empty", true).unwrap();
    assert_eq!(t.stat("/empty").err(), Some(Errno::ENOENT));
    t.write("/dir/new", "n", libc::O_CREAT).unwrap();
    for n in ["a", "b", "new", "sub/d"] {
        t.rm(&format!("/dir/{n}"), false).unwrap();
    }
    assert_eq!(t.rm("/dir", true), Err(Errno::ENOTEMPTY));
    t.rm("/dir/sub", true).unwrap();
    t.rm("/dir", true).unwrap();
    assert_eq!(t.stat("/dir").err(), Some(Errno::ENOENT));
    assert!(!t.ls("/", 4096).contains(&"dir".to_string()));
    assert_eq!(t.lower_read("/dir/sub/c").unwrap(), "C");
}

#[test]
fn rename_cases() {
    let t = setup();
    let ino = t.stat("/etc/passwd").unwrap().ino;
    t.mv("/etc/passwd", "/etc/pw2", 0).unwrap();
    assert_eq!(t.stat("/etc/passwd").err(), Some(Errno::ENOENT));
    assert_eq!(t.read("/etc/pw2").unwrap(), "root:x:0:0\n");
    assert_eq!(t.stat("/etc/pw2").unwrap().ino, ino);
    assert_eq!(t.lower_read("/etc/passwd").unwrap(), "root:x:0:0\n");
    // Over a lower file; removing the result does not bring the lower back.
    t.mv("/etc/pw2", "/dir/a", 0).unwrap();
    assert_eq!(t.read("/dir/a").unwrap(), "root:x:0:0\n");
    t.rm("/dir/a", false).unwrap();
    assert_eq!(t.stat("/dir/a").err(), Some(Errno::ENOENT));
    // Directories with lower contents: EXDEV (mv copies instead).
    assert_eq!(t.mv("/dir", "/dir2", 0), Err(Errno::EXDEV));
    assert_eq!(t.mv("/empty", "/empty2", 0), Err(Errno::EXDEV));
    t.write("/dir/sub/x", "x", libc::O_CREAT).unwrap();
    assert_eq!(t.mv("/dir/sub", "/sub2", 0), Err(Errno::EXDEV));
    // Directories made in the overlay move, with their contents.
    t.mkdir("/nd").unwrap();
    t.write("/nd/f", "f", libc::O_CREAT).unwrap();
    t.mv("/nd", "/nd2", 0).unwrap();
    assert_eq!(t.read("/nd2/f").unwrap(), "f");
    assert_eq!(t.stat("/nd").err(), Some(Errno::ENOENT));
    // Over an empty lower directory: the result is opaque.
    t.mv("/nd2", "/empty", 0).unwrap();
    assert_eq!(t.ls("/empty", 4096), vec![".", "..", "f"]);
    // Over a non-empty merged directory: ENOTEMPTY; type mismatches.
    t.mkdir("/nd3").unwrap();
    assert_eq!(t.mv("/nd3", "/many", 0), Err(Errno::ENOTEMPTY));
    assert_eq!(t.mv("/nd3", "/etc/shadow", 0), Err(Errno::ENOTDIR));
    assert_eq!(t.mv("/etc/shadow", "/nd3", 0), Err(Errno::EISDIR));
    assert_eq!(t.mv("/etc/shadow", "/dir/b", 1), Err(Errno::EEXIST));
    // Exchange of two files, one of them lower-only.
    t.mv("/etc/shadow", "/dir/b", 2).unwrap();
    assert_eq!(t.read("/etc/shadow").unwrap(), "B");
    assert_eq!(t.read("/dir/b").unwrap(), "secret\n");
    assert_eq!(t.lower_read("/etc/shadow").unwrap(), "secret\n");
    // Moving a lower file into a new directory.
    t.mv("/many/f000", "/nd3/g", 0).unwrap();
    assert_eq!(t.stat("/nd3/g").unwrap().mode & S_IFMT, S_IFREG);
    assert!(!t.ls("/many", 4096).contains(&"f000".to_string()));
}

#[test]
fn hard_links_after_copy_up() {
    let t = setup();
    let r = t.vfs.root();
    let target = t
        .vfs
        .walk(&t.ctx, &root(), &r, b"/etc/passwd", &WalkOpts::nofollow())
        .unwrap();
    let ino = target.stat().unwrap().ino;
    t.mk("/etc/pwlink", NewNode::Link { target }).unwrap();
    let a = t.stat("/etc/passwd").unwrap();
    let b = t.stat("/etc/pwlink").unwrap();
    assert_eq!((a.ino, a.nlink), (ino, 2));
    assert_eq!((b.ino, b.nlink), (ino, 2));
    t.write("/etc/pwlink", "LINK", 0).unwrap();
    assert_eq!(&t.read("/etc/passwd").unwrap()[..4], "LINK");
    // Renaming one link over the other does nothing.
    t.mv("/etc/pwlink", "/etc/passwd", 0).unwrap();
    assert_eq!(t.stat("/etc/pwlink").unwrap().nlink, 2);
    assert_eq!(t.stat("/etc/passwd").unwrap().ino, ino);
    t.rm("/etc/passwd", false).unwrap();
    assert_eq!(t.stat("/etc/pwlink").unwrap().nlink, 1);
    assert_eq!(t.stat("/etc/passwd").err(), Some(Errno::ENOENT));
    assert_eq!(&t.read("/etc/pwlink").unwrap()[..4], "LINK");
    // Directories cannot be linked.
    let d = t
        .vfs
        .walk(&t.ctx, &root(), &r, b"/dir", &WalkOpts::nofollow())
        .unwrap();
    assert_eq!(
        t.mk("/dlink", NewNode::Link { target: d }),
        Err(Errno::EPERM)
    );
}

#[test]
fn create_kinds_and_errnos() {
    let t = setup();
    assert_eq!(t.mkdir("/dir"), Err(Errno::EEXIST));
    assert_eq!(t.mkdir("/dir/a"), Err(Errno::EEXIST));
    t.mk(
        "/dir/sub/s",
        NewNode::Symlink {
            target: b"../a".to_vec(),
        },
    )
    .unwrap();
    assert_eq!(t.read("/dir/sub/s").unwrap(), "A");
    t.mk(
        "/dir/fifo",
        NewNode::Node {
            mode: abi::linux::S_IFIFO | 0o644,
            rdev: 0,
        },
    )
    .unwrap();
    assert_eq!(
        t.stat("/dir/fifo").unwrap().mode & S_IFMT,
        abi::linux::S_IFIFO
    );
    // Copy-up keeps the parents' times.
    let before = t.stat("/many").unwrap();
    t.write("/many/f007", "x", 0).unwrap();
    let after = t.stat("/many").unwrap();
    assert_eq!((after.mtime, after.atime), (before.mtime, before.atime));
    // The parent chain was copied up with its attributes.
    assert_eq!(t.stat("/dir/sub").unwrap().mode, S_IFDIR | 0o700);
    assert_eq!(t.stat("/dir").unwrap().nlink, 1);
    assert_eq!(t.stat("/empty").unwrap().nlink, 2);
    // Space is the upper's.
    let f = t.open("/big", libc::O_CREAT | libc::O_RDWR).unwrap();
    // A write that runs out of space is short, the next one ENOSPC (as Linux).
    let n = f.pwrite(&vec![1u8; 17 << 20], 0).unwrap();
    assert!(n < 17 << 20);
    assert_eq!(f.pwrite(&[1u8; 4096], n as i64).err(), Some(Errno::ENOSPC));
    // fallocate copies up.
    let loc = f.location().unwrap().clone();
    t.vfs.allocate(&loc, 0, 100, false).unwrap();
    // (Allocating inside the file never shrinks it.)
    assert_eq!(t.stat("/big").unwrap().size, n as i64);
}

/// The `runsc do` layout: a gofer-served host directory as the lower layer.
#[test]
fn gofer_lower_is_never_modified() {
    let dir = std::env::temp_dir().join(format!("fs-ovl-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tmp/keep")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    std::fs::write(dir.join("tmp/keep/k"), "k").unwrap();
    let host_root = OwnedFd::from(std::fs::File::open(&dir).unwrap());
    let (a, b) = gofer::socketpair().unwrap();
    std::thread::spawn(move || gofer::server::serve(host_root, b, true));
    let client = Arc::new(gofer::Client::new(a));
    let vfs = Vfs::new_with_overlay_root(client, 1 << 20).unwrap();
    let ctx = FsContext::new(vfs.root());
    let lower: Arc<dyn Inode> = TmpFs::new_root(0o755, 1);
    let t = T { vfs, ctx, lower };
    t.write("/etc/hosts", "::1 x\n", libc::O_APPEND).unwrap();
    assert_eq!(
        t.read("/etc/hosts").unwrap(),
        "127.0.0.1 localhost\n::1 x\n"
    );
    t.write("/tmp/new", "n", libc::O_CREAT).unwrap();
    t.rm("/tmp/keep/k", false).unwrap();
    t.rm("/tmp/keep", true).unwrap();
    assert_eq!(t.ls("/tmp", 64), vec![".", "..", "new"]);
    // /dev is the sentry's own even though the host tree has none.
    assert!(t.stat("/dev/null").is_ok());
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/hosts")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    assert!(!dir.join("tmp/new").exists());
    assert!(dir.join("tmp/keep/k").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_changes_in_one_merged_dir() {
    let t = Arc::new(setup());
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let n = k * 25 + i;
                    // Copy-up, create, rename and unlink, all in /many.
                    t.write(&format!("/many/f{n:03}"), "w", libc::O_APPEND)
                        .unwrap();
                    t.write(&format!("/many/t{k}"), "t", libc::O_CREAT | libc::O_TRUNC)
                        .unwrap();
                    t.mv(&format!("/many/t{k}"), &format!("/many/m{n:03}"), 0)
                        .unwrap();
                    if n % 2 == 0 {
                        t.rm(&format!("/many/f{n:03}"), false).unwrap();
                    }
                    let _ = t.ls("/many", 512);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let names = t.ls("/many", 700);
    assert_eq!(names.len(), 2 + 50 + 100);
    let uniq: BTreeSet<_> = names.iter().collect();
    assert_eq!(uniq.len(), names.len());
    assert_eq!(t.read("/many/f001").unwrap(), "w");
    assert_eq!(t.stat("/many/f002").err(), Some(Errno::ENOENT));
    assert_eq!(t.read("/many/m099").unwrap(), "t");
}

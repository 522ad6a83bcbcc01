//! The writable gofer fs: mutations through the VFS against a real gofer server
//! over a temp directory, checked on the host side.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use abi::linux::{Timespec, S_IFCHR, S_IFIFO, S_IFREG, S_IFSOCK};
use abi::Errno;

use crate::file::OpenFile;
use crate::inode::{Inode, SetAttr, TimeSet, XATTR_CREATE, XATTR_REPLACE};
use crate::remote::RemoteInode;
use crate::testutil::{serve, temp_dir, tree, tree_rw, Tree};
use crate::vfs::{NewNode, OpenHow, WalkOpts};
use crate::{Creds, Location, Vfs};

fn root() -> Creds {
    Creds::root()
}

impl Tree {
    fn at(&self, p: &str) -> Result<Location, Errno> {
        self.vfs.walk(
            &self.ctx,
            &root(),
            &self.vfs.root(),
            p.as_bytes(),
            &WalkOpts::nofollow(),
        )
    }
    fn mk(&self, p: &str, what: NewNode) -> Result<(), Errno> {
        self.vfs
            .make_node_at(&self.ctx, &root(), &self.vfs.root(), p.as_bytes(), what)
    }
    fn creat(&self, p: &str, mode: u32) -> Result<Arc<OpenFile>, Errno> {
        let how = OpenHow {
            flags: libc::O_CREAT | libc::O_RDWR,
            mode,
            resolve: 0,
        };
        self.vfs
            .open(&self.ctx, &root(), &self.vfs.root(), p.as_bytes(), &how)
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
    fn set(&self, p: &str, a: SetAttr) -> Result<(), Errno> {
        let loc = self.at(p)?;
        self.vfs.setattr(&root(), &loc, &a, false)
    }
    fn host(&self, p: &str) -> std::path::PathBuf {
        self.dir.join(p)
    }
}

fn lmeta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

#[test]
fn create_write_mkdir_symlink_link() {
    let t = tree_rw();
    let f = t.creat("/f", 0o640).unwrap();
    assert_eq!(f.write(b"hello").unwrap(), 5);
    assert_eq!(std::fs::read(t.host("f")).unwrap(), b"hello");
    assert_eq!(lmeta(&t.host("f")).mode(), S_IFREG | 0o640);
    assert_eq!(t.at("/f").unwrap().attr().mode, S_IFREG | 0o640);
    // O_CREAT of an existing name opens it; O_EXCL is EEXIST.
    t.creat("/f", 0o600).unwrap();
    let how = OpenHow {
        flags: libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
        mode: 0o600,
        resolve: 0,
    };
    assert_eq!(
        t.vfs
            .open(&t.ctx, &root(), &t.vfs.root(), b"/f", &how)
            .err(),
        Some(Errno::EEXIST)
    );
    // Created 0444 but opened read-write by the creating open: still writable.
    let ro = t.creat("/ro", 0o444).unwrap();
    assert_eq!(ro.write(b"x").unwrap(), 1);
    assert_eq!(lmeta(&t.host("ro")).mode() & 0o7777, 0o444);

    t.mk("/d", NewNode::Dir { mode: 0o750 }).unwrap();
    assert!(lmeta(&t.host("d")).is_dir());
    assert_eq!(lmeta(&t.host("d")).mode() & 0o7777, 0o750);
    assert_eq!(t.mk("/d", NewNode::Dir { mode: 0o750 }), Err(Errno::EEXIST));
    t.mk("/d/e", NewNode::Dir { mode: 0o700 }).unwrap();
    assert!(lmeta(&t.host("d/e")).is_dir());

    t.mk(
        "/s",
        NewNode::Symlink {
            target: b"../../etc/passwd".to_vec(),
        },
    )
    .unwrap();
    assert_eq!(
        std::fs::read_link(t.host("s")).unwrap(),
        Path::new("../../etc/passwd")
    );
    assert_eq!(
        t.vfs.readlink(&t.at("/s").unwrap()).unwrap(),
        b"../../etc/passwd"
    );

    let target = t.at("/f").unwrap();
    t.mk("/d/h", NewNode::Link { target }).unwrap();
    assert_eq!(lmeta(&t.host("f")).nlink(), 2);
    assert_eq!(lmeta(&t.host("d/h")).ino(), lmeta(&t.host("f")).ino());
    assert_eq!(t.at("/d/h").unwrap().stat().unwrap().nlink, 2);
    let dir = t.at("/d").unwrap();
    assert_eq!(
        t.mk("/dl", NewNode::Link { target: dir }),
        Err(Errno::EPERM)
    );
}

#[test]
fn mknod_types() {
    let t = tree_rw();
    t.mk(
        "/fifo",
        NewNode::Node {
            mode: S_IFIFO | 0o600,
            rdev: 0,
        },
    )
    .unwrap();
    assert!(lmeta(&t.host("fifo")).file_type().is_fifo());
    assert_eq!(lmeta(&t.host("fifo")).mode() & 0o7777, 0o600);
    t.mk(
        "/sock",
        NewNode::Node {
            mode: S_IFSOCK | 0o644,
            rdev: 0,
        },
    )
    .unwrap();
    assert!(lmeta(&t.host("sock")).file_type().is_socket());
    t.mk(
        "/reg",
        NewNode::Node {
            mode: S_IFREG | 0o604,
            rdev: 0,
        },
    )
    .unwrap();
    assert!(lmeta(&t.host("reg")).is_file());
    // Devices are never made on the host, even by root.
    assert_eq!(
        t.mk(
            "/null",
            NewNode::Node {
                mode: S_IFCHR | 0o666,
                rdev: abi::linux::makedev(1, 3),
            },
        ),
        Err(Errno::EPERM)
    );
    assert!(!t.host("null").exists());
}

#[test]
fn unlink_rmdir_rename() {
    let t = tree_rw();
    t.mk("/d", NewNode::Dir { mode: 0o755 }).unwrap();
    t.creat("/d/f", 0o644).unwrap();
    t.creat("/g", 0o644).unwrap();
    assert_eq!(t.rm("/d", true), Err(Errno::ENOTEMPTY));
    assert_eq!(t.rm("/d", false), Err(Errno::EISDIR));
    assert_eq!(t.rm("/d/f", true), Err(Errno::ENOTDIR));
    // Rename within and across directories; handles follow.
    let f = t
        .vfs
        .open(
            &t.ctx,
            &root(),
            &t.vfs.root(),
            b"/d/f",
            &OpenHow {
                flags: libc::O_RDWR,
                mode: 0,
                resolve: 0,
            },
        )
        .unwrap();
    t.mv("/d/f", "/d/f2", 0).unwrap();
    assert!(t.host("d/f2").exists() && !t.host("d/f").exists());
    t.mv("/d/f2", "/f3", 0).unwrap();
    assert!(t.host("f3").exists());
    f.write(b"moved").unwrap();
    assert_eq!(std::fs::read(t.host("f3")).unwrap(), b"moved");
    // A renamed node can still be changed through its handle.
    t.set(
        "/f3",
        SetAttr {
            mode: Some(0o600),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(lmeta(&t.host("f3")).mode() & 0o7777, 0o600);
    // NOREPLACE and EXCHANGE.
    assert_eq!(t.mv("/f3", "/g", 1), Err(Errno::EEXIST));
    let (ig, i3) = (lmeta(&t.host("g")).ino(), lmeta(&t.host("f3")).ino());
    t.mv("/f3", "/g", 2).unwrap();
    assert_eq!(lmeta(&t.host("g")).ino(), i3);
    assert_eq!(lmeta(&t.host("f3")).ino(), ig);
    t.mv("/d", "/f3", 2).unwrap();
    assert!(lmeta(&t.host("f3")).is_dir());
    assert!(lmeta(&t.host("d")).is_file());
    // Replace.
    t.mv("/d", "/g", 0).unwrap();
    assert!(!t.host("d").exists());
    assert_eq!(lmeta(&t.host("g")).ino(), ig);
    // Removal.
    t.rm("/g", false).unwrap();
    assert!(!t.host("g").exists());
    assert_eq!(t.at("/g").err(), Some(Errno::ENOENT));
    t.rm("/f3", true).unwrap();
    assert!(!t.host("f3").exists());
    assert_eq!(
        std::fs::read_dir(&t.dir).unwrap().count(),
        0,
        "only what the test made, and all of it removed"
    );
}

#[test]
fn setattr_keeps_cache_fresh() {
    let t = tree_rw();
    let f = t.creat("/f", 0o644).unwrap();
    f.write(b"0123456789").unwrap();
    t.set(
        "/f",
        SetAttr {
            size: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(lmeta(&t.host("f")).len(), 4);
    t.set(
        "/f",
        SetAttr {
            size: Some(100),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(lmeta(&t.host("f")).len(), 100);
    t.set(
        "/f",
        SetAttr {
            mode: Some(0o4711),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(t.at("/f").unwrap().attr().mode, S_IFREG | 0o4711);
    assert_eq!(lmeta(&t.host("f")).mode() & 0o7777, 0o4711);
    let ts = Timespec {
        sec: 978_307_200,
        nsec: 5,
    };
    t.set(
        "/f",
        SetAttr {
            atime: Some(TimeSet::At(ts)),
            mtime: Some(TimeSet::At(ts)),
            ..Default::default()
        },
    )
    .unwrap();
    let m = lmeta(&t.host("f"));
    assert_eq!((m.mtime(), m.mtime_nsec()), (978_307_200, 5));
    assert_eq!((m.atime(), m.atime_nsec()), (978_307_200, 5));
    t.set(
        "/f",
        SetAttr {
            mtime: Some(TimeSet::Now),
            ..Default::default()
        },
    )
    .unwrap();
    let m = lmeta(&t.host("f"));
    assert!(m.mtime() > 978_307_200);
    assert_eq!(m.atime(), 978_307_200);
    // Owner: chown to our own ids works (a no-op for the host).
    let (uid, gid) = (m.uid(), m.gid());
    t.set(
        "/f",
        SetAttr {
            uid: Some(uid),
            gid: Some(gid),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(t.at("/f").unwrap().attr().uid, uid);
    // Directories cannot be truncated.
    t.mk("/d", NewNode::Dir { mode: 0o755 }).unwrap();
    assert_eq!(
        t.set(
            "/d",
            SetAttr {
                size: Some(0),
                ..Default::default()
            }
        ),
        Err(Errno::EISDIR)
    );
}

#[test]
fn fsync_and_fallocate_use_the_host_fd() {
    let t = tree_rw();
    let f = t.creat("/f", 0o644).unwrap();
    f.write(b"abc").unwrap();
    f.ops().fsync(false).unwrap();
    f.ops().fsync(true).unwrap();
    f.ops().fallocate(0, 0, 8192).unwrap().unwrap();
    assert_eq!(lmeta(&t.host("f")).len(), 8192);
    // FALLOC_FL_KEEP_SIZE allocates without growing.
    f.ops().fallocate(1, 0, 65536).unwrap().unwrap();
    assert_eq!(lmeta(&t.host("f")).len(), 8192);
}

#[test]
fn read_only_mounts_are_erofs() {
    // Read-only in the sentry: refused before any message is sent.
    let dir = temp_dir("ro");
    std::fs::write(dir.join("f"), b"x").unwrap();
    let client: Arc<dyn crate::RemoteFs> = serve(&dir, false);
    let r = RemoteInode::mount_root(client, true).unwrap();
    assert_eq!(r.create(b"n", 0o644, 0, 0).err(), Some(Errno::EROFS));
    assert_eq!(r.mkdir(b"n", 0o755, 0, 0).err(), Some(Errno::EROFS));
    assert_eq!(r.unlink(b"f").err(), Some(Errno::EROFS));
    assert_eq!(r.symlink(b"n", b"f", 0, 0).err(), Some(Errno::EROFS));
    let f = r.lookup(b"f").unwrap();
    assert_eq!(
        f.setattr(&SetAttr {
            size: Some(0),
            ..Default::default()
        }),
        Err(Errno::EROFS)
    );
    assert_eq!(f.setxattr(b"user.a", b"v", 0), Err(Errno::EROFS));
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"x");
    let _ = std::fs::remove_dir_all(&dir);
    // The read-only root of the standard tree, through the VFS.
    let t = tree();
    let r = t.vfs.root();
    assert_eq!(
        t.vfs.make_node_at(
            &t.ctx,
            &root(),
            &r,
            b"/newdir",
            NewNode::Dir { mode: 0o755 }
        ),
        Err(Errno::EROFS)
    );
    assert_eq!(
        t.vfs.remove_at(&t.ctx, &root(), &r, b"/etc/passwd", false),
        Err(Errno::EROFS)
    );
}

#[test]
fn hostile_names_rejected_in_the_sentry() {
    let t = tree_rw();
    let r = t.vfs.root();
    let root_inode = r.inode().clone();
    for bad in [&b"../x"[..], b"a/b", b"", b".", b"..", b"a\0b"] {
        assert_eq!(
            root_inode.create(bad, 0o644, 0, 0).err(),
            Some(Errno::EINVAL),
            "{bad:?}"
        );
        assert_eq!(
            root_inode.mkdir(bad, 0o755, 0, 0).err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(root_inode.unlink(bad).err(), Some(Errno::EINVAL));
    }
    assert_eq!(
        root_inode.create(&[b'x'; 256], 0o644, 0, 0).err(),
        Some(Errno::ENAMETOOLONG)
    );
    assert_eq!(std::fs::read_dir(&t.dir).unwrap().count(), 0);
    assert!(!t.dir.parent().unwrap().join("x").exists());
}

#[test]
fn xattrs_through_the_gofer() {
    let t = tree_rw();
    t.creat("/f", 0o644).unwrap();
    let loc = t.at("/f").unwrap();
    match t.vfs.setxattr(&root(), true, &loc, b"user.a", b"v1", 0) {
        Err(Errno::EOPNOTSUPP) => {
            eprintln!("SKIP: the host file system has no user xattrs");
            return;
        }
        r => r.unwrap(),
    }
    assert_eq!(
        t.vfs.getxattr(&root(), true, &loc, b"user.a").unwrap(),
        b"v1"
    );
    assert_eq!(
        t.vfs
            .setxattr(&root(), true, &loc, b"user.a", b"v2", XATTR_CREATE),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        t.vfs
            .setxattr(&root(), true, &loc, b"user.b", b"v2", XATTR_REPLACE),
        Err(Errno::ENODATA)
    );
    assert_eq!(
        t.vfs.setxattr(
            &root(),
            true,
            &loc,
            b"user.a",
            b"",
            XATTR_CREATE | XATTR_REPLACE
        ),
        Err(Errno::EEXIST)
    );
    let l = t.vfs.listxattr(true, &loc).unwrap();
    assert!(l.split(|&c| c == 0).any(|n| n == b"user.a"));
    // Only user.* passes through the gofer; a bare prefix is EINVAL.
    assert_eq!(
        t.vfs.setxattr(&root(), true, &loc, b"trusted.a", b"v", 0),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        t.vfs.getxattr(&root(), true, &loc, b"user."),
        Err(Errno::EINVAL)
    );
    t.vfs.removexattr(&root(), true, &loc, b"user.a").unwrap();
    assert_eq!(
        t.vfs.getxattr(&root(), true, &loc, b"user.a"),
        Err(Errno::ENODATA)
    );
    // user.* on a symlink: EPERM to set, ENODATA to get (Linux's xattr_permission).
    t.mk(
        "/s",
        NewNode::Symlink {
            target: b"f".to_vec(),
        },
    )
    .unwrap();
    let s = t.at("/s").unwrap();
    assert_eq!(
        t.vfs.setxattr(&root(), true, &s, b"user.a", b"v", 0),
        Err(Errno::EPERM)
    );
    assert_eq!(
        t.vfs.getxattr(&root(), true, &s, b"user.a"),
        Err(Errno::ENODATA)
    );
    // trusted.* without CAP_SYS_ADMIN.
    assert_eq!(
        t.vfs.getxattr(&root(), false, &loc, b"trusted.a"),
        Err(Errno::ENODATA)
    );
}

#[test]
fn mount_at_path_makes_synthetic_dirs() {
    let t = tree(); // read-only root
    let vol = temp_dir("vol");
    let r = RemoteInode::mount_root(serve(&vol, false), false).unwrap();
    t.vfs.mount_at_path(b"/a/b/c", r, false).unwrap();
    assert!(t.at("/a").unwrap().is_dir());
    assert!(t.at("/a/b/c").unwrap().is_dir());
    let f = t.creat("/a/b/c/new", 0o644).unwrap();
    f.write(b"in volume").unwrap();
    assert_eq!(std::fs::read(vol.join("new")).unwrap(), b"in volume");
    assert!(
        !t.dir.join("a").exists(),
        "nothing made in the root's host dir"
    );
    // Over an existing directory of the root.
    let vol2 = temp_dir("vol2");
    let r2 = RemoteInode::mount_root(serve(&vol2, false), true).unwrap();
    t.vfs.mount_at_path(b"/etc", r2, true).unwrap();
    assert_eq!(t.at("/etc/passwd").err(), Some(Errno::ENOENT));
    assert_eq!(t.creat("/etc/x", 0o644).err(), Some(Errno::EROFS));
    // Bad paths.
    let r3 = || RemoteInode::mount_root(serve(&vol2, true), true).unwrap() as Arc<dyn Inode>;
    assert_eq!(
        t.vfs.mount_at_path(b"rel", r3(), true).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        t.vfs.mount_at_path(b"/", r3(), true).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        t.vfs.mount_at_path(b"/a/../x", r3(), true).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        t.vfs.mount_at_path(b"/bin/sh/x", r3(), true).err(),
        Some(Errno::ENOTDIR)
    );
    for d in [vol, vol2] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn writable_remote_root_for_bundles() {
    // Vfs::new_with_remote_root(client, false): the bundle root is writable and
    // the sentry's own /proc, /sys, /dev still cover the served tree's.
    let t = tree_rw();
    std::fs::create_dir(t.host("proc")).unwrap();
    let vfs: Arc<Vfs> = t.vfs.clone();
    assert!(!vfs.root().mount.read_only());
    t.creat("/top", 0o600).unwrap();
    assert!(t.host("top").exists());
    assert_eq!(
        t.vfs.root().statfs().unwrap().flags & crate::inode::ST_RDONLY,
        0
    );
    std::fs::write(t.host("proc/host_secret"), b"host").unwrap();
    let p = t.at("/proc").unwrap();
    assert_eq!(
        p.statfs().unwrap().fs_type,
        crate::synthetic::PROC_SUPER_MAGIC
    );
    assert_eq!(t.at("/proc/host_secret").err(), Some(Errno::ENOENT));
}

#[test]
fn setgid_directories_pass_their_group_on() {
    let t = tree_rw();
    t.mk("/sg", NewNode::Dir { mode: 0o755 }).unwrap();
    // Needs a gofer allowed to chown (root); otherwise nothing to check.
    if t.set(
        "/sg",
        SetAttr {
            gid: Some(54321),
            ..Default::default()
        },
    )
    .is_err()
    {
        eprintln!("SKIP: cannot chown as this user");
        return;
    }
    t.set(
        "/sg",
        SetAttr {
            mode: Some(0o2775),
            ..Default::default()
        },
    )
    .unwrap();
    t.creat("/sg/f", 0o644).unwrap();
    t.mk("/sg/d", NewNode::Dir { mode: 0o755 }).unwrap();
    assert_eq!(lmeta(&t.host("sg/f")).gid(), 54321);
    assert_eq!(lmeta(&t.host("sg/d")).gid(), 54321);
    assert_eq!(lmeta(&t.host("sg/d")).mode() & 0o7777, 0o2755);
    assert_eq!(t.at("/sg/d").unwrap().attr().mode & 0o7777, 0o2755);
}

#[test]
fn mount_file_at_path_over_files() {
    let t = tree(); // read-only root
    let vol = temp_dir("filevol");
    std::fs::write(vol.join("hosts"), "host file\n").unwrap();
    let file = |ro: bool| {
        let (a, b) = gofer::socketpair().unwrap();
        let dir = std::os::fd::OwnedFd::from(std::fs::File::open(&vol).unwrap());
        std::thread::spawn(move || gofer::server::serve_file(dir, b"hosts", b, ro));
        let c: Arc<dyn crate::RemoteFs> = Arc::new(gofer::Client::new(a));
        RemoteInode::mount_root(c, ro).unwrap() as Arc<dyn Inode>
    };
    // Over an existing file, writable: writes reach the host file.
    t.vfs
        .mount_file_at_path(b"/etc/passwd", file(false), false)
        .unwrap();
    let l = t.at("/etc/passwd").unwrap();
    assert!(l.attr().is_regular());
    let f = t.creat("/etc/passwd", 0o644).unwrap();
    f.write(b"changed\n").unwrap();
    assert!(std::fs::read(vol.join("hosts"))
        .unwrap()
        .starts_with(b"changed\n"));
    assert_eq!(
        std::fs::read(t.dir.join("etc/passwd")).unwrap(),
        b"root:x:0:0:root:/root:/bin/sh\n"
    );
    // Where nothing was, in a missing directory, read-only.
    t.vfs
        .mount_file_at_path(b"/new/dir/hosts", file(true), true)
        .unwrap();
    assert!(t.at("/new/dir/hosts").unwrap().attr().is_regular());
    assert_eq!(t.creat("/new/dir/hosts", 0o644).err(), Some(Errno::EROFS));
    assert!(!t.dir.join("new").exists());
    // Not over a directory; bad paths.
    assert_eq!(
        t.vfs.mount_file_at_path(b"/etc", file(true), true).err(),
        Some(Errno::EISDIR)
    );
    for bad in [&b"rel"[..], b"/", b"/a/../x"] {
        assert_eq!(
            t.vfs.mount_file_at_path(bad, file(true), true).err(),
            Some(Errno::EINVAL)
        );
    }
    let _ = std::fs::remove_dir_all(vol);
}

//! VFS tests against a real gofer server over a temp tree.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use abi::linux::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;

use crate::file::OpenFile;
use crate::host::HostFile;
use crate::synthetic::PROC_SUPER_MAGIC;
use crate::testutil::{tree, FakeMem, Tree};
use crate::vfs::{
    OpenHow, WalkOpts, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};
use crate::{Creds, FdTable, Location};

fn root() -> Creds {
    Creds::root()
}

fn user() -> Creds {
    Creds::user(54321, 54321, vec![])
}

impl Tree {
    fn walk(&self, p: &str, follow: bool) -> Result<Location, Errno> {
        let o = if follow {
            WalkOpts::follow()
        } else {
            WalkOpts::nofollow()
        };
        self.vfs
            .walk(&self.ctx, &root(), &self.ctx.cwd(), p.as_bytes(), &o)
    }
    fn mode(&self, p: &str) -> Result<u32, Errno> {
        Ok(self.walk(p, true)?.attr().mode & S_IFMT)
    }
    fn path(&self, p: &str) -> String {
        String::from_utf8(self.vfs.path_of(&self.ctx, &self.walk(p, true).unwrap())).unwrap()
    }
    fn open(&self, p: &str, flags: i32) -> Result<Arc<OpenFile>, Errno> {
        self.open_as(&root(), p, flags, 0)
    }
    fn open_as(
        &self,
        c: &Creds,
        p: &str,
        flags: i32,
        resolve: u64,
    ) -> Result<Arc<OpenFile>, Errno> {
        let how = OpenHow {
            flags,
            mode: 0,
            resolve,
        };
        self.vfs
            .open(&self.ctx, c, &self.ctx.cwd(), p.as_bytes(), &how)
    }
}

fn read_all(f: &OpenFile) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return String::from_utf8(out).unwrap();
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Parses linux_dirent64 records into (name, d_off, d_type).
fn parse_dirents(b: &[u8]) -> Vec<(String, i64, u8)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let off = i64::from_le_bytes(b[i + 8..i + 16].try_into().unwrap());
        let reclen = u16::from_le_bytes(b[i + 16..i + 18].try_into().unwrap()) as usize;
        let dt = b[i + 18];
        let name = &b[i + 19..i + reclen];
        let end = name.iter().position(|&c| c == 0).unwrap();
        v.push((String::from_utf8(name[..end].to_vec()).unwrap(), off, dt));
        assert_eq!(reclen % 8, 0);
        i += reclen;
    }
    v
}

fn list(f: &OpenFile, cap: usize) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        let b = f.getdents64(cap).unwrap();
        if b.is_empty() {
            return names;
        }
        names.extend(parse_dirents(&b).into_iter().map(|e| e.0));
    }
}

#[test]
fn walk_basics() {
    let t = tree();
    assert_eq!(t.mode("/etc/passwd"), Ok(S_IFREG));
    assert_eq!(t.mode("/etc"), Ok(S_IFDIR));
    assert_eq!(t.mode("etc/passwd"), Ok(S_IFREG));
    assert_eq!(t.mode("//etc//./passwd"), Ok(S_IFREG));
    assert_eq!(t.path("/etc/../etc/./passwd"), "/etc/passwd");
    assert_eq!(t.path("/.."), "/");
    assert_eq!(t.path("/../../.."), "/");
    assert_eq!(t.path("dir/sub/../sub/file"), "/dir/sub/file");
    assert_eq!(t.path("/"), "/");
    assert_eq!(t.path("."), "/");
    assert_eq!(t.mode("/nope"), Err(Errno::ENOENT));
    assert_eq!(t.mode("/etc/nope/x"), Err(Errno::ENOENT));
    assert_eq!(t.mode("/etc/passwd/x"), Err(Errno::ENOTDIR));
    assert_eq!(t.mode("/etc/passwd/."), Err(Errno::ENOTDIR));
    assert_eq!(t.mode("/etc/passwd/"), Err(Errno::ENOTDIR));
    assert_eq!(t.mode("/etc/"), Ok(S_IFDIR));
    assert_eq!(t.mode(""), Err(Errno::ENOENT));
    let long = "a".repeat(256);
    assert_eq!(t.mode(&long), Err(Errno::ENAMETOOLONG));
    assert_eq!(t.mode(&"a/".repeat(2100)), Err(Errno::ENAMETOOLONG));
    // AT_EMPTY_PATH: the start itself.
    let etc = t.walk("/etc", true).unwrap();
    let o = WalkOpts {
        allow_empty: true,
        ..WalkOpts::follow()
    };
    assert!(t
        .vfs
        .walk(&t.ctx, &root(), &etc, b"", &o)
        .unwrap()
        .same(&etc));
    assert_eq!(
        t.vfs
            .walk(&t.ctx, &root(), &etc, b"passwd", &o)
            .unwrap()
            .attr()
            .mode
            & S_IFMT,
        S_IFREG
    );
    // A relative walk from a file start: ENOTDIR.
    let pw = t.walk("/etc/passwd", true).unwrap();
    assert_eq!(
        t.vfs.walk(&t.ctx, &root(), &pw, b"x", &o).err(),
        Some(Errno::ENOTDIR)
    );
    // cwd-relative.
    t.ctx.set_cwd(t.walk("/dir/sub", true).unwrap());
    assert_eq!(t.path("file"), "/dir/sub/file");
    assert_eq!(t.path("../../etc"), "/etc");
}

#[test]
fn symlinks() {
    let t = tree();
    assert_eq!(t.path("/link_abs"), "/etc/passwd");
    assert_eq!(t.path("/link_rel"), "/etc/passwd");
    assert_eq!(t.path("/dir/up/passwd"), "/etc/passwd");
    assert_eq!(t.path("/dirlink/sub"), "/dir/sub");
    assert_eq!(t.path("/dirlink"), "/dir");
    assert_eq!(t.path("/escape/passwd"), "/etc/passwd");
    assert_eq!(
        t.walk("/link_abs", false).unwrap().attr().mode & S_IFMT,
        S_IFLNK
    );
    assert_eq!(t.mode("/link_abs/"), Err(Errno::ENOTDIR));
    assert_eq!(t.mode("/loop1"), Err(Errno::ELOOP));
    assert_eq!(t.mode("/self"), Err(Errno::ELOOP));
    assert_eq!(t.mode("/self/x"), Err(Errno::ELOOP));
    assert!(t.walk("/self", false).is_ok());
    assert_eq!(t.mode("/dangling"), Err(Errno::ENOENT));
    assert_eq!(t.mode("/c2"), Ok(S_IFREG)); // 40 links
    assert_eq!(t.mode("/c1"), Err(Errno::ELOOP)); // 41
    assert_eq!(
        t.vfs
            .readlink(&t.walk("/link_rel", false).unwrap())
            .unwrap(),
        b"etc/passwd"
    );
    assert_eq!(
        t.vfs.readlink(&t.walk("/etc", false).unwrap()).err(),
        Some(Errno::EINVAL)
    );
    // O_NOFOLLOW / O_PATH.
    assert_eq!(
        t.open("/link_abs", libc::O_RDONLY | libc::O_NOFOLLOW).err(),
        Some(Errno::ELOOP)
    );
    let p = t
        .open("/link_abs", libc::O_PATH | libc::O_NOFOLLOW)
        .unwrap();
    assert_eq!(p.stat().unwrap().mode & S_IFMT, S_IFLNK);
    assert_eq!(p.read(&mut [0u8; 4]).err(), Some(Errno::EBADF));
    assert_eq!(
        read_all(&t.open("/link_rel", libc::O_RDONLY).unwrap()),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    // A chroot-like context: absolute links resolve from the task root.
    let ctx2 = crate::FsContext::new(t.walk("/dir", true).unwrap());
    let r = t
        .vfs
        .walk(&ctx2, &root(), &ctx2.cwd(), b"/up", &WalkOpts::nofollow())
        .unwrap();
    assert_eq!(t.vfs.path_of(&ctx2, &r), b"/up");
    assert_eq!(
        t.vfs
            .walk(
                &ctx2,
                &root(),
                &ctx2.cwd(),
                b"/up/passwd",
                &WalkOpts::follow()
            )
            .err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(
        t.vfs.path_of(
            &ctx2,
            &t.vfs
                .walk(
                    &ctx2,
                    &root(),
                    &ctx2.cwd(),
                    b"/../../sub",
                    &WalkOpts::follow()
                )
                .unwrap()
        ),
        b"/sub"
    );
}

#[test]
fn resolve_flags() {
    let t = tree();
    let c = root();
    assert_eq!(
        t.open_as(&c, "/link_abs", libc::O_RDONLY, RESOLVE_NO_SYMLINKS)
            .err(),
        Some(Errno::ELOOP)
    );
    assert_eq!(
        t.open_as(&c, "/proc", libc::O_RDONLY, RESOLVE_NO_XDEV)
            .err(),
        Some(Errno::EXDEV)
    );
    assert!(t
        .open_as(&c, "/etc", libc::O_RDONLY, RESOLVE_NO_XDEV)
        .is_ok());
    t.ctx.set_cwd(t.walk("/dir", true).unwrap());
    assert_eq!(
        t.open_as(&c, "..", libc::O_RDONLY, RESOLVE_BENEATH).err(),
        Some(Errno::EXDEV)
    );
    assert_eq!(
        t.open_as(&c, "/etc", libc::O_RDONLY, RESOLVE_BENEATH).err(),
        Some(Errno::EXDEV)
    );
    assert_eq!(
        t.open_as(&c, "up/passwd", libc::O_RDONLY, RESOLVE_BENEATH)
            .err(),
        Some(Errno::EXDEV)
    );
    assert!(t
        .open_as(&c, "sub/../sub/file", libc::O_RDONLY, RESOLVE_BENEATH)
        .is_ok());
    // IN_ROOT: ".." clamps at the start.
    let f = t
        .open_as(&c, "../../sub/file", libc::O_RDONLY, RESOLVE_IN_ROOT)
        .unwrap();
    assert_eq!(read_all(&f), "deep\n");
    let f = t
        .open_as(&c, "/sub/file", libc::O_RDONLY, RESOLVE_IN_ROOT)
        .unwrap();
    assert_eq!(read_all(&f), "deep\n");
    assert_eq!(
        t.open_as(&c, "/etc/passwd", libc::O_RDONLY, RESOLVE_IN_ROOT)
            .err(),
        Some(Errno::ENOENT)
    );
}

#[test]
fn walk_parent_cases() {
    use crate::vfs::Last;
    let t = tree();
    let r = t.vfs.root();
    let wp = |p: &str| {
        t.vfs
            .walk_parent(&t.ctx, &root(), &r, p.as_bytes(), &WalkOpts::default())
    };
    let (d, l, tr) = wp("/etc/passwd").unwrap();
    assert_eq!(
        (t.vfs.path_of(&t.ctx, &d), l, tr),
        (b"/etc".to_vec(), Last::Normal(b"passwd".to_vec()), false)
    );
    let (d, l, tr) = wp("/newdir//").unwrap();
    assert_eq!(
        (t.vfs.path_of(&t.ctx, &d), l, tr),
        (b"/".to_vec(), Last::Normal(b"newdir".to_vec()), true)
    );
    assert_eq!(wp("///").unwrap().1, Last::Root);
    assert_eq!(wp("/etc/..").unwrap().1, Last::DotDot);
    assert_eq!(wp("x").unwrap().1, Last::Normal(b"x".to_vec()));
    assert_eq!(wp("/etc/passwd/x").err(), Some(Errno::ENOTDIR));
    assert_eq!(wp("/nope/x").err(), Some(Errno::ENOENT));
    assert_eq!(wp("").err(), Some(Errno::ENOENT));
    let (d, _, _) = wp("/dirlink/x").unwrap();
    assert_eq!(t.vfs.path_of(&t.ctx, &d), b"/dir");
}

#[test]
fn synthetic_mounts_shadow_host_dirs() {
    let t = tree();
    for d in ["/proc", "/sys"] {
        let f = t.open(d, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        assert_eq!(list(&f, 4096), vec![".", ".."], "{d}");
        assert_eq!(t.path(d), d);
    }
    // /dev is the sentry's devfs: its devices and links, never the host's nodes
    // (no console: the tests' stdout is not registered as one).
    let f = t.open("/dev", libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    assert_eq!(
        list(&f, 4096),
        vec![
            ".", "..", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
            "stdout", "tty", "urandom", "zero"
        ]
    );
    assert_eq!(t.mode("/proc/host_secret"), Err(Errno::ENOENT));
    assert_eq!(t.mode("/dev/host_dev"), Err(Errno::ENOENT));
    assert_eq!(t.path("/proc/.."), "/");
    assert_eq!(t.path("/proc/../etc"), "/etc");
    assert_eq!(t.path("/sys/."), "/sys");
    let f = t.open("/proc", libc::O_RDONLY).unwrap();
    assert_eq!(f.statfs().unwrap().fs_type, PROC_SUPER_MAGIC);
    assert_eq!(f.stat().unwrap().mode, S_IFDIR | 0o555);
    assert_eq!(t.open("/proc", libc::O_RDWR).err(), Some(Errno::EISDIR));
    assert_eq!(
        t.vfs
            .create_at(&t.ctx, &root(), &t.vfs.root(), b"/proc/x", false),
        Err(Errno::EROFS)
    );
    assert_eq!(
        t.vfs
            .create_at(&t.ctx, &root(), &t.vfs.root(), b"/proc", true),
        Err(Errno::EEXIST)
    );
}

#[test]
fn open_read_seek() {
    let t = tree();
    let f = t.open("/etc/passwd", libc::O_RDONLY).unwrap();
    assert_eq!(read_all(&f), "root:x:0:0:root:/root:/bin/sh\n");
    assert_eq!(f.lseek(0, libc::SEEK_CUR), Ok(30));
    assert_eq!(f.lseek(-4, libc::SEEK_END), Ok(26));
    assert_eq!(read_all(&f), "/sh\n");
    assert_eq!(f.lseek(-100, libc::SEEK_CUR), Err(Errno::EINVAL));
    assert_eq!(f.lseek(0, 99), Err(Errno::EINVAL));
    let mut b = [0u8; 4];
    assert_eq!(f.pread(&mut b, 5), Ok(4));
    assert_eq!(&b, b"x:0:");
    assert_eq!(f.pread(&mut b, -1), Err(Errno::EINVAL));
    assert_eq!(f.write(b"x"), Err(Errno::EBADF));
    assert_eq!(f.getdents64(4096), Err(Errno::ENOTDIR));
    assert_eq!(f.status_flags() & libc::O_ACCMODE, libc::O_RDONLY);
    let mut b = [0u8; 4];
    assert_eq!(crate::ReadAt::read_at(&*f, 0, &mut b), Ok(4));
    assert_eq!(&b, b"root");
    // Directories.
    let d = t.open("/etc", libc::O_RDONLY).unwrap();
    assert_eq!(d.read(&mut b), Err(Errno::EISDIR));
    assert_eq!(t.open("/etc", libc::O_WRONLY).err(), Some(Errno::EISDIR));
    assert_eq!(
        t.open("/etc/passwd", libc::O_RDONLY | libc::O_DIRECTORY)
            .err(),
        Some(Errno::ENOTDIR)
    );
    // Read-only root.
    assert_eq!(
        t.open("/etc/passwd", libc::O_RDWR).err(),
        Some(Errno::EROFS)
    );
    assert_eq!(
        t.open("/etc/passwd", libc::O_RDONLY | libc::O_TRUNC).err(),
        Some(Errno::EROFS)
    );
    assert!(t
        .open("/etc/passwd", libc::O_RDONLY | libc::O_CREAT)
        .is_ok());
    assert_eq!(
        t.open("/etc/passwd", libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL)
            .err(),
        Some(Errno::EEXIST)
    );
    assert_eq!(
        t.open("/etc/new", libc::O_WRONLY | libc::O_CREAT).err(),
        Some(Errno::EROFS)
    );
    assert_eq!(
        t.open("/nodir/new", libc::O_WRONLY | libc::O_CREAT).err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(
        t.open("/etc/new/", libc::O_WRONLY | libc::O_CREAT).err(),
        Some(Errno::EISDIR)
    );
    assert_eq!(
        t.open("/dangling", libc::O_WRONLY | libc::O_CREAT).err(),
        Some(Errno::EROFS)
    );
    assert_eq!(
        t.open("/etc", libc::O_RDONLY | libc::O_CREAT).err(),
        Some(Errno::EISDIR)
    );
    // Mutations.
    let (v, c, r) = (&t.vfs, &t.ctx, t.vfs.root());
    assert_eq!(
        v.create_at(c, &root(), &r, b"/etc", true),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        v.create_at(c, &root(), &r, b"/etc/newdir", true),
        Err(Errno::EROFS)
    );
    assert_eq!(
        v.create_at(c, &root(), &r, b"/nope/newdir", true),
        Err(Errno::ENOENT)
    );
    assert_eq!(v.create_at(c, &root(), &r, b"/", true), Err(Errno::EEXIST));
    assert_eq!(
        v.remove_at(c, &root(), &r, b"/etc/passwd", false),
        Err(Errno::EROFS)
    );
    assert_eq!(
        v.remove_at(c, &root(), &r, b"/nope/x", false),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        v.remove_at(c, &root(), &r, b"/etc/.", true),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        v.rename_at(c, &root(), &r, b"/etc/passwd", &r, b"/proc/x"),
        Err(Errno::EXDEV)
    );
    assert_eq!(
        v.rename_at(c, &root(), &r, b"/etc/passwd", &r, b"/etc/y"),
        Err(Errno::EROFS)
    );
}

#[test]
fn permissions() {
    let t = tree();
    let u = user();
    let w = |p: &str| {
        t.vfs
            .walk(&t.ctx, &u, &t.ctx.cwd(), p.as_bytes(), &WalkOpts::follow())
    };
    assert_eq!(w("/private/f").err(), Some(Errno::EACCES));
    assert!(w("/private").is_ok());
    assert!(t.open_as(&u, "/etc/passwd", libc::O_RDONLY, 0).is_ok());
    assert_eq!(
        t.open_as(&u, "/etc/shadow", libc::O_RDONLY, 0).err(),
        Some(Errno::EACCES)
    );
    assert!(t.open_as(&root(), "/etc/shadow", libc::O_RDONLY, 0).is_ok());
    assert!(t.open_as(&u, "/etc/shadow", libc::O_PATH, 0).is_ok());
    let pw = w("/etc/passwd").unwrap();
    assert_eq!(t.vfs.access(&u, &pw, 4), Ok(()));
    assert_eq!(t.vfs.access(&u, &pw, 2), Err(Errno::EROFS));
    assert_eq!(t.vfs.access(&u, &pw, 1), Err(Errno::EACCES));
    assert_eq!(t.vfs.access(&root(), &pw, 1), Err(Errno::EACCES));
    assert_eq!(t.vfs.access(&root(), &w("/bin/sh").unwrap(), 1), Ok(()));
    // exec.
    let (f, p) = t.vfs.open_exec(&t.ctx, &u, b"/bin/sh").unwrap();
    assert_eq!(p, b"/bin/sh");
    assert_eq!(read_all(&f), "#!fake\n");
    t.ctx.set_cwd(w("/bin").unwrap());
    assert_eq!(t.vfs.open_exec(&t.ctx, &u, b"sh").unwrap().1, b"/bin/sh");
    assert_eq!(
        t.vfs.open_exec(&t.ctx, &root(), b"noexec").err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        t.vfs.open_exec(&t.ctx, &root(), b"/etc").err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        t.vfs.open_exec(&t.ctx, &root(), b"/nope").err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(
        t.vfs.check_chdir(&u, &w("/private").unwrap()),
        Err(Errno::EACCES)
    );
    assert_eq!(t.vfs.check_chdir(&u, &pw), Err(Errno::ENOTDIR));
}

#[test]
fn getdents_packing() {
    let t = tree();
    let f = t.open("/many", libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    let mut expect: BTreeSet<String> = (0..100)
        .map(|i| format!("file_with_a_longish_name_{i:03}"))
        .collect();
    expect.insert(".".into());
    expect.insert("..".into());
    for cap in [48usize, 100, 333, 4096, 65536] {
        assert_eq!(f.lseek(0, libc::SEEK_SET), Ok(0));
        let names = list(&f, cap);
        assert_eq!(names.len(), 102, "cap {cap}");
        assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), expect);
    }
    // Offsets resume where d_off says.
    f.lseek(0, libc::SEEK_SET).unwrap();
    let first = parse_dirents(&f.getdents64(200).unwrap());
    let (_, off, _) = first[2].clone();
    f.lseek(off, libc::SEEK_SET).unwrap();
    let again = parse_dirents(&f.getdents64(200).unwrap());
    assert_eq!(again[0].0, first[3].0);
    // Too small for one entry.
    f.lseek(0, libc::SEEK_SET).unwrap();
    assert_eq!(f.getdents64(10), Err(Errno::EINVAL));
    // At the end a small buffer is fine.
    while !f.getdents64(4096).unwrap().is_empty() {}
    assert_eq!(f.getdents64(10).unwrap().len(), 0);
    // Types.
    let f = t.open("/", libc::O_RDONLY).unwrap();
    let all = parse_dirents(&f.getdents64(65536).unwrap());
    let ty = |n: &str| all.iter().find(|e| e.0 == n).unwrap().2;
    assert_eq!(ty("etc"), libc::DT_DIR);
    assert_eq!(ty("link_abs"), libc::DT_LNK);
    // Old layout.
    let f = t.open("/empty", libc::O_RDONLY).unwrap();
    let b = f.getdents(4096).unwrap();
    assert_eq!(b.len(), 48);
    assert_eq!(b[23], libc::DT_DIR);
}

#[test]
fn fd_table() {
    let t = tree();
    let fds = FdTable::new();
    let f = t.open("/etc/passwd", libc::O_RDONLY).unwrap();
    assert_eq!(fds.insert(f.clone(), false, 1024), Ok(0));
    assert_eq!(fds.insert(f.clone(), true, 1024), Ok(1));
    assert_eq!(fds.insert(f.clone(), false, 1024), Ok(2));
    assert!(fds.remove(1).is_ok());
    assert_eq!(fds.remove(1).err(), Some(Errno::EBADF));
    assert_eq!(fds.get(1).err(), Some(Errno::EBADF));
    assert_eq!(fds.get(-1).err(), Some(Errno::EBADF));
    assert_eq!(fds.insert(f.clone(), false, 1024), Ok(1));
    assert_eq!(fds.insert(f.clone(), false, 4), Ok(3));
    assert_eq!(fds.insert(f.clone(), false, 4), Err(Errno::EMFILE));
    assert_eq!(fds.insert_from(10, f.clone(), true, 1024), Ok(10));
    assert_eq!(fds.insert_from(10, f.clone(), false, 1024), Ok(11));
    assert_eq!(
        fds.insert_from(2000, f.clone(), false, 1024),
        Err(Errno::EINVAL)
    );
    assert!(fds.get_cloexec(10).unwrap());
    fds.set_cloexec(10, false).unwrap();
    fds.set_cloexec(11, true).unwrap();
    assert_eq!(fds.set_cloexec(50, true), Err(Errno::EBADF));
    // dup2 semantics.
    let g = t.open("/etc/shadow", libc::O_RDONLY).unwrap();
    let old = fds.insert_at(0, g.clone(), false, 1024).unwrap();
    assert!(Arc::ptr_eq(&old.unwrap(), &f));
    assert!(Arc::ptr_eq(&fds.get(0).unwrap(), &g));
    assert!(fds.insert_at(500, g.clone(), true, 1024).unwrap().is_none());
    assert_eq!(
        fds.insert_at(1024, g.clone(), true, 1024).err(),
        Some(Errno::EBADF)
    );
    let forked = fds.fork();
    fds.close_on_exec();
    assert_eq!(fds.fds(), vec![0, 1, 2, 3, 10]);
    assert_eq!(forked.fds(), vec![0, 1, 2, 3, 10, 11, 500]);
    // Shared description: the offset moves for every fd.
    let a = fds.get(2).unwrap();
    let mut b = [0u8; 5];
    a.read(&mut b).unwrap();
    assert_eq!(fds.get(3).unwrap().lseek(0, libc::SEEK_CUR), Ok(5));
    fds.clear();
    assert!(fds.is_empty());
}

#[test]
fn locks_follow_descriptions_and_fd_tables() {
    use crate::file::{Flock, LockCmd};
    use crate::lock::{FlockOp, LockType};
    use crate::waiter::Waiter;
    let t = tree();
    let w = Waiter::new().unwrap();
    // Two opens of one gofer-backed file share its locks.
    let a = t.open("/etc/passwd", libc::O_RDONLY).unwrap();
    let b = t.open("/etc/passwd", libc::O_RDONLY).unwrap();
    let fds = FdTable::new();
    let fa = fds.insert(a.clone(), false, 1024).unwrap();
    let fb = fds.insert(b.clone(), false, 1024).unwrap();
    let owner = fds.posix_lock_owner();
    let other = crate::lock::new_owner_id();
    let read_lock = Flock {
        l_type: libc::F_RDLCK as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 10,
        l_pid: 0,
    };
    let probe = |f: &OpenFile| {
        let mut q = Flock {
            l_type: libc::F_WRLCK as i16,
            l_len: 0,
            ..read_lock
        };
        f.record_lock(LockCmd::Get, false, other, 2, &mut q, &w)
            .unwrap();
        q
    };
    let mut fl = read_lock;
    a.record_lock(LockCmd::Set, false, owner, 1, &mut fl, &w)
        .unwrap();
    let q = probe(&b);
    assert_eq!((q.l_type, q.l_start, q.l_len, q.l_pid), (0, 0, 10, 1));
    // A write lock needs a writable description.
    let mut wl = Flock {
        l_type: libc::F_WRLCK as i16,
        ..read_lock
    };
    assert_eq!(
        a.record_lock(LockCmd::Set, false, owner, 1, &mut wl, &w),
        Err(Errno::EBADF)
    );
    // Closing the other description's fd releases the table's locks.
    drop(fds.remove(fb).unwrap());
    assert_eq!(probe(&a).l_type, libc::F_UNLCK as i16);
    // So does dropping the table.
    let mut fl = read_lock;
    a.record_lock(LockCmd::Set, false, owner, 1, &mut fl, &w)
        .unwrap();
    assert_eq!(probe(&b).l_type, libc::F_RDLCK as i16);
    let forked = fds.fork();
    drop(fds);
    assert_eq!(probe(&b).l_type, libc::F_UNLCK as i16);

    // flock locks belong to the description, whatever the fd tables do.
    a.flock(FlockOp::Lock(LockType::Write), true, &w).unwrap();
    assert_eq!(
        b.flock(FlockOp::Lock(LockType::Read), true, &w),
        Err(Errno::EAGAIN)
    );
    drop(forked.remove(fa).unwrap());
    assert_eq!(
        b.flock(FlockOp::Lock(LockType::Read), true, &w),
        Err(Errno::EAGAIN)
    );
    drop(forked);
    drop(a);
    b.flock(FlockOp::Lock(LockType::Read), true, &w).unwrap();
}

#[test]
fn host_file_pipe() {
    let mut p = [0i32; 2];
    // SAFETY: pipe2 fills the two-int array.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds we own.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1]))
    };
    let r = HostFile::new(r).unwrap();
    let w = HostFile::new(w).unwrap();
    assert!(r.readable() && !r.writable());
    assert_eq!(w.write(b"hello"), Ok(5));
    let mem = FakeMem(RefCell::new(vec![0u8; 64]));
    assert_eq!(r.ioctl(&mem, 0x541b, 0x1000), Ok(0));
    assert_eq!(&mem.0.borrow()[..4], &5i32.to_le_bytes());
    assert_eq!(r.ioctl(&mem, 0x5401, 0x1000), Err(Errno::ENOTTY)); // TCGETS on a pipe
    assert_eq!(r.ioctl(&mem, 0x1234, 0x1000), Err(Errno::ENOTTY));
    let mut b = [0u8; 16];
    assert_eq!(r.pread(&mut b, 0), Err(Errno::ESPIPE));
    assert_eq!(r.lseek(0, libc::SEEK_SET), Err(Errno::ESPIPE));
    assert_eq!(r.read(&mut b), Ok(5));
    assert_eq!(&b[..5], b"hello");
    assert_eq!(r.write(b"x"), Err(Errno::EBADF));
    // O_NONBLOCK emulation: an empty pipe is EAGAIN, not a hang.
    r.set_status_flags(libc::O_NONBLOCK).unwrap();
    assert_eq!(r.status_flags() & libc::O_NONBLOCK, libc::O_NONBLOCK);
    assert_eq!(r.read(&mut b), Err(Errno::EAGAIN));
    assert_eq!(r.stat().unwrap().mode & S_IFMT, libc::S_IFIFO);
    drop(w);
    assert_eq!(r.read(&mut b), Ok(0));
}

/// A host pipe as inherited stdio: reads and writes never block the host thread
/// uninterruptibly; the task waits in `OpenFile::block`, which polls the host fd.
#[test]
fn host_stream_blocks_interruptibly() {
    use crate::waiter::{Waiter, EVENT_IN, EVENT_OUT};
    use std::time::Duration;

    let mut p = [0i32; 2];
    // SAFETY: pipe2 fills the two-int array.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds we own.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1]))
    };
    let r = HostFile::new(r).unwrap();
    let w = HostFile::new(w).unwrap();
    assert_eq!(r.status_flags() & libc::O_NONBLOCK, 0);
    let waiter = Waiter::new().unwrap();
    let mut b = [0u8; 16];
    // Empty: the blocking description still reports EAGAIN to its caller...
    assert_eq!(r.read(&mut b), Err(Errno::EAGAIN));
    assert_eq!(r.readiness(EVENT_IN | EVENT_OUT), 0);
    // ...which sleeps until the host fd is readable,
    let w2 = w.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        w2.write(b"hi").unwrap();
    });
    assert_eq!(r.block(&waiter, EVENT_IN, || r.read(&mut b)), Ok(2));
    writer.join().unwrap();
    // ...or a signal interrupts it.
    let w3 = waiter.clone();
    let sig = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        w3.interrupt();
    });
    assert_eq!(
        r.block(&waiter, EVENT_IN, || r.read(&mut b)),
        Err(Errno(abi::errno::ERESTARTSYS))
    );
    sig.join().unwrap();
    waiter.clear_interrupt();
    // Writes go in PIPE_BUF pieces while the host pipe has room, then EAGAIN.
    assert_eq!(w.write(&[0u8; 10000]), Ok(crate::pipe::PIPE_BUF));
    let mut total = crate::pipe::PIPE_BUF;
    while let Ok(n) = w.write(&[0u8; 10000]) {
        total += n;
    }
    assert!(total >= 65536 - crate::pipe::PIPE_BUF, "{total}");
    assert_eq!(w.write(b"x"), Err(Errno::EAGAIN));
    assert_eq!(w.readiness(EVENT_OUT), 0);
    drop(r);
    assert_eq!(w.write(b"x"), Err(Errno::EPIPE));
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(".".to_string()),
            Just("..".to_string()),
            Just("".to_string()),
            Just("etc".to_string()),
            Just("passwd".to_string()),
            Just("dir".to_string()),
            Just("sub".to_string()),
            Just("up".to_string()),
            Just("proc".to_string()),
            Just("loop1".to_string()),
            Just("self".to_string()),
            Just("link_rel".to_string()),
            Just("dirlink".to_string()),
            Just("c1".to_string()),
            Just("\u{0}x".to_string()),
            "[a-z.]{0,5}",
            "x{250,260}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn random_paths_never_panic(abs in any::<bool>(), comps in proptest::collection::vec(component(), 0..12),
                                    trailing in any::<bool>(), follow in any::<bool>(), flags in 0u8..8) {
            thread_local! { static T: Tree = tree(); }
            T.with(|t| {
                let mut p = comps.join("/");
                if abs { p.insert(0, '/'); }
                if trailing { p.push('/'); }
                let o = WalkOpts { follow_final: follow, must_dir: flags & 1 != 0, beneath: flags & 2 != 0,
                                   in_root: flags & 4 != 0, ..Default::default() };
                let start = t.vfs.walk(&t.ctx, &root(), &t.vfs.root(), b"/dir", &WalkOpts::follow()).unwrap();
                if let Ok(l) = t.vfs.walk(&t.ctx, &root(), &start, p.as_bytes(), &o) {
                    let abs = t.vfs.path_of(&t.ctx, &l);
                    prop_assert!(abs.starts_with(b"/"));
                    // The absolute path names the same place.
                    let again = t.vfs.walk(&t.ctx, &root(), &start, &abs, &WalkOpts::nofollow()).unwrap();
                    prop_assert!(again.same(&l));
                }
                let _ = t.vfs.walk_parent(&t.ctx, &root(), &start, p.as_bytes(), &o);
                let _ = t.vfs.open(&t.ctx, &root(), &start, p.as_bytes(), &OpenHow { flags: libc::O_RDONLY | libc::O_CREAT, ..Default::default() });
                Ok(())
            })?;
        }
    }
}

/// The file half of MAP_SHARED write-back (the memory manager's half is tested
/// in the sentry): a gofer file writes back through its host fd, and reports
/// its size; a tmpfs file has its pages instead.
#[test]
fn shared_mapping_write_back_reaches_gofer_file() {
    use crate::ReadAt;
    let dir = std::env::temp_dir().join(format!("fs-wb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), b"0123456789").unwrap();
    let rootfd = OwnedFd::from(std::fs::File::open(&dir).unwrap());
    let (a, b) = gofer::socketpair().unwrap();
    std::thread::spawn(move || gofer::server::serve(rootfd, b, false));
    let vfs = crate::Vfs::new_with_remote_root(Arc::new(gofer::Client::new(a)), false).unwrap();
    let ctx = crate::FsContext::new(vfs.root());
    let open = |p: &[u8], flags| {
        let how = OpenHow {
            flags,
            mode: 0o600,
            resolve: 0,
        };
        vfs.open(&ctx, &root(), &ctx.cwd(), p, &how)
    };
    let f = open(b"/f", libc::O_RDWR).unwrap();
    assert!(ReadAt::page_store(&*f).is_none());
    assert_eq!(ReadAt::size(&*f), Some(10));
    assert_eq!(ReadAt::write_back(&*f, 2, b"ab"), Ok(2));
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"01ab456789");
    let ro = open(b"/f", libc::O_RDONLY).unwrap();
    assert_eq!(ReadAt::write_back(&*ro, 0, b"x"), Err(Errno::EBADF));
    // /dev/shm is tmpfs: its files' data is in the memory file.
    let shm = open(b"/dev/shm/x", libc::O_RDWR | libc::O_CREAT).unwrap();
    let store = ReadAt::page_store(&*shm).expect("tmpfs page store");
    shm.pwrite(b"hi", 0).unwrap();
    assert_eq!(store.size(), 2);
    drop((f, ro, shm));
    let _ = std::fs::remove_dir_all(&dir);
}

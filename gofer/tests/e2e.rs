//! End-to-end: a real server on a thread over a SOCK_SEQPACKET socketpair.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use abi::linux::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;
use gofer::proto::{Request, Response};
use gofer::{server, Client};

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tree() -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "gofer-e2e-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(p.join("root/sub")).unwrap();
    let r = p.join("root");
    fs::write(r.join("file.txt"), b"hello gofer").unwrap();
    fs::write(r.join("sub/inner"), b"inner data").unwrap();
    symlink("file.txt", r.join("link")).unwrap();
    symlink("../../etc/passwd", r.join("escape")).unwrap();
    symlink("/etc", r.join("abs")).unwrap();
    fs::write(p.join("outside"), b"secret").unwrap();
    TempDir(p)
}

fn root_fd(dir: &Path) -> OwnedFd {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .unwrap()
        .into()
}

fn start(dir: &Path, read_only: bool) -> (Client, JoinHandle<std::io::Result<()>>) {
    let (a, b) = gofer::socketpair().unwrap();
    let root = root_fd(dir);
    let t = std::thread::spawn(move || server::serve(root, b, read_only));
    (Client::new(a), t)
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut f = fs::File::from(fd);
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn client_is_send_sync() {
    fn ok<T: Send + Sync>() {}
    ok::<Client>();
}

#[test]
fn walk_stat_open_read() {
    let t = tree();
    let (c, srv) = start(&t.0.join("root"), false);
    let (root, st) = c.mount().unwrap();
    assert_eq!(st.mode & S_IFMT, S_IFDIR);
    let (f, st) = c.walk(root, b"file.txt").unwrap();
    assert_eq!(st.mode & S_IFMT, S_IFREG);
    assert_eq!(st.size, 11);
    assert_eq!(c.stat(f).unwrap().ino, st.ino);
    assert_eq!(read_all(c.open(f, libc::O_RDONLY).unwrap()), b"hello gofer");

    let v = c.walk_many(root, &[b"sub", b"inner"]).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].1.mode & S_IFMT, S_IFDIR);
    assert_eq!(
        read_all(c.open(v[1].0, libc::O_RDONLY).unwrap()),
        b"inner data"
    );
    assert_eq!(c.walk_many(root, &[]).unwrap().len(), 0);

    // Opening a directory.
    let d = c.open(v[0].0, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    assert!(fs::File::from(d).metadata().unwrap().is_dir());
    assert_eq!(
        c.open(f, libc::O_RDONLY | libc::O_DIRECTORY).unwrap_err(),
        Errno::ENOTDIR
    );
    assert_eq!(c.open(v[0].0, libc::O_WRONLY).unwrap_err(), Errno::EISDIR);
    // O_CREAT/O_PATH stripped, O_CLOEXEC added.
    let fd = c
        .open(f, libc::O_RDONLY | libc::O_CREAT | libc::O_PATH)
        .unwrap();
    let file = fs::File::from(fd);
    let mut s = String::new();
    (&file).read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello gofer");

    // Writes through a read-write server.
    let fd = c.open(f, libc::O_WRONLY | libc::O_APPEND).unwrap();
    fs::File::from(fd).write_all(b"!").unwrap();
    assert_eq!(
        fs::read(t.0.join("root/file.txt")).unwrap(),
        b"hello gofer!"
    );
    let fd = c.open(f, libc::O_RDWR | libc::O_TRUNC).unwrap();
    drop(fd);
    assert_eq!(c.stat(f).unwrap().size, 0);
    assert_eq!(c.open(f, libc::O_ACCMODE).unwrap_err(), Errno::EINVAL);

    // Stat of a closed handle.
    c.close(f);
    assert_eq!(c.stat(f).unwrap_err(), Errno::EBADF);
    drop(c);
    srv.join().unwrap().unwrap();
}

#[test]
fn symlinks_never_followed() {
    let t = tree();
    let (c, _srv) = start(&t.0.join("root"), false);
    let (root, _) = c.mount().unwrap();
    for (name, target) in [
        (&b"link"[..], &b"file.txt"[..]),
        (b"escape", b"../../etc/passwd"),
        (b"abs", b"/etc"),
    ] {
        let (h, st) = c.walk(root, name).unwrap();
        assert_eq!(st.mode & S_IFMT, S_IFLNK);
        assert_eq!(c.stat(h).unwrap().mode & S_IFMT, S_IFLNK);
        assert_eq!(c.readlink(h).unwrap(), target);
        assert_eq!(c.open(h, libc::O_RDONLY).unwrap_err(), Errno::ELOOP);
        assert_eq!(
            c.open(h, libc::O_RDONLY | libc::O_DIRECTORY).unwrap_err(),
            Errno::ELOOP
        );
        assert_eq!(c.getdents(h, 0, 4096).unwrap_err(), Errno::ENOTDIR);
    }
    // Walking through a symlink to a directory does not follow it.
    let (v, e) = c.walk_partial(root, &[b"abs", b"passwd"]);
    assert_eq!(v.len(), 1);
    assert_eq!(e, Some(Errno::ENOTDIR));
    assert_eq!(c.walk_many(root, &[b"abs", b"passwd"]).unwrap().len(), 1);
    // readlink of a non-symlink.
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    assert_eq!(c.readlink(f).unwrap_err(), Errno::EINVAL);
    assert_eq!(c.readlink(root).unwrap_err(), Errno::EINVAL);
}

#[test]
fn bad_names_and_missing() {
    let t = tree();
    let (c, _srv) = start(&t.0.join("root"), false);
    let (root, _) = c.mount().unwrap();
    let (sub, _) = c.walk(root, b"sub").unwrap();
    let long = vec![b'x'; 256];
    for bad in [
        &b".."[..],
        b".",
        b"a/b",
        b"",
        b"/",
        b"sub/inner",
        b"a\0b",
        &long,
    ] {
        assert_eq!(c.walk(root, bad).unwrap_err(), Errno::EINVAL, "{bad:?}");
        assert_eq!(c.walk(sub, bad).unwrap_err(), Errno::EINVAL, "{bad:?}");
    }
    assert_eq!(c.walk(root, &[b'x'; 255]).unwrap_err(), Errno::ENOENT);
    assert_eq!(c.walk(root, b"nope").unwrap_err(), Errno::ENOENT);
    assert_eq!(
        c.walk_many(root, &[b"nope", b"x"]).unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(
        c.walk_partial(root, &[b"sub", b".."]).1,
        Some(Errno::EINVAL)
    );
    assert_eq!(c.walk_partial(root, &[b"sub", b".."]).0.len(), 1);
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    assert_eq!(c.walk(f, b"x").unwrap_err(), Errno::ENOTDIR);
    // Bad handles.
    for h in [0, 9999, u64::MAX] {
        assert_eq!(c.stat(h).unwrap_err(), Errno::EBADF);
        assert_eq!(c.walk(h, b"sub").unwrap_err(), Errno::EBADF);
        assert_eq!(c.open(h, libc::O_RDONLY).unwrap_err(), Errno::EBADF);
        assert_eq!(c.readlink(h).unwrap_err(), Errno::EBADF);
        assert_eq!(c.getdents(h, 0, 100).unwrap_err(), Errno::EBADF);
        assert_eq!(c.statfs(h).unwrap_err(), Errno::EBADF);
        c.close(h);
    }
    // Still healthy.
    assert!(c.stat(root).is_ok());
}

#[test]
fn getdents_lists_everything() {
    let t = tree();
    let r = t.0.join("root");
    for i in 0..300 {
        fs::write(r.join(format!("many-{i:03}-{}", "y".repeat(i % 50))), b"").unwrap();
    }
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    for max in [1u32, 64, 1000, u32::MAX] {
        let mut names = Vec::new();
        let mut off = 0;
        loop {
            let v = c.getdents(root, off, max).unwrap();
            if v.is_empty() {
                break;
            }
            for d in &v {
                assert!(d.next_offset > off);
                off = d.next_offset;
                names.push(String::from_utf8(d.name.clone()).unwrap());
            }
            if max == 1 {
                assert_eq!(v.len(), 1);
            }
        }
        names.sort();
        let mut want: Vec<String> = [".", "..", "file.txt", "sub", "link", "escape", "abs"]
            .iter()
            .map(|s| s.to_string())
            .chain((0..300).map(|i| format!("many-{i:03}-{}", "y".repeat(i % 50))))
            .collect();
        want.sort();
        assert_eq!(names, want, "max {max}");
    }
    // Past the end.
    assert!(c.getdents(root, 1 << 40, 4096).unwrap().is_empty());
    // dtypes.
    let v = c.getdents(root, 0, u32::MAX).unwrap();
    let dt = |n: &[u8]| v.iter().find(|d| d.name == n).unwrap().dtype;
    assert_eq!(dt(b"sub"), libc::DT_DIR);
    assert_eq!(dt(b"link"), libc::DT_LNK);
    assert_eq!(dt(b"file.txt"), libc::DT_REG);
    // Not a directory.
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    assert_eq!(c.getdents(f, 0, 100).unwrap_err(), Errno::ENOTDIR);
}

#[test]
fn read_only_server() {
    let t = tree();
    let (c, srv) = start(&t.0.join("root"), true);
    let (root, _) = c.mount().unwrap();
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    for fl in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_RDONLY | libc::O_TRUNC,
        libc::O_WRONLY | libc::O_APPEND,
    ] {
        assert_eq!(c.open(f, fl).unwrap_err(), Errno::EROFS, "{fl:#x}");
    }
    assert_eq!(read_all(c.open(f, libc::O_RDONLY).unwrap()), b"hello gofer");
    assert_eq!(fs::read(t.0.join("root/file.txt")).unwrap(), b"hello gofer");
    let sf = c.statfs(root).unwrap();
    assert_ne!(sf.flags & libc::ST_RDONLY, 0);
    drop(c);
    srv.join().unwrap().unwrap();
}

#[test]
fn statfs_works() {
    let t = tree();
    let (c, _srv) = start(&t.0.join("root"), false);
    let (root, _) = c.mount().unwrap();
    let sf = c.statfs(root).unwrap();
    assert!(sf.bsize > 0);
    assert!(sf.namelen >= 255);
    assert_eq!(sf.flags & libc::ST_RDONLY, 0);
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    assert_eq!(c.statfs(f).unwrap().fs_type, sf.fs_type);
}

#[test]
fn special_files_not_opened() {
    let t = tree();
    let r = t.0.join("root");
    let _l = UnixListener::bind(r.join("sock")).unwrap();
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (s, _) = c.walk(root, b"sock").unwrap();
    assert_eq!(c.open(s, libc::O_RDWR).unwrap_err(), Errno::ENXIO);
}

#[test]
fn replaced_file_is_stale() {
    let t = tree();
    let r = t.0.join("root");
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    fs::remove_file(r.join("file.txt")).unwrap();
    fs::write(r.join("file.txt"), b"other").unwrap();
    assert_eq!(c.open(f, libc::O_RDONLY).unwrap_err(), Errno::ESTALE);
    // The node is still stat-able (it is the old inode).
    assert_eq!(c.stat(f).unwrap().size, 11);
}

#[test]
fn long_walk_is_chunked() {
    let t = tree();
    let r = t.0.join("root");
    let mut p = r.clone();
    for _ in 0..150 {
        p.push("d");
    }
    fs::create_dir_all(&p).unwrap();
    fs::write(p.join("leaf"), b"deep").unwrap();
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let mut names: Vec<&[u8]> = vec![b"d"; 150];
    names.push(b"leaf");
    let v = c.walk_many(root, &names).unwrap();
    assert_eq!(v.len(), 151);
    assert_eq!(read_all(c.open(v[150].0, libc::O_RDONLY).unwrap()), b"deep");
    names[100] = b"nope";
    let (v, e) = c.walk_partial(root, &names);
    assert_eq!((v.len(), e), (100, Some(Errno::ENOENT)));
}

#[test]
fn malformed_frames_get_einval() {
    let t = tree();
    let (a, b) = gofer::socketpair().unwrap();
    let root = root_fd(&t.0.join("root"));
    let srv = std::thread::spawn(move || server::serve(root, b, false));
    let s = UnixDatagram::from(a);
    let mut buf = vec![0u8; 70000];
    let mut rt = |frame: &[u8]| {
        s.send(frame).unwrap();
        let n = s.recv(&mut buf).unwrap();
        Response::decode(&buf[..n]).unwrap()
    };
    let einval = Response::Error(Errno::EINVAL.0);
    assert_eq!(rt(&[1, 2, 3]), einval);
    assert_eq!(rt(&[0xff; 100]), einval);
    let mut walk = Request::Walk {
        dir: 1,
        names: vec![b"sub".to_vec()],
    }
    .encode();
    walk.push(0);
    assert_eq!(rt(&walk), einval);
    walk.truncate(walk.len() - 2);
    assert_eq!(rt(&walk), einval);
    // A huge name count.
    let mut f = 2u32.to_le_bytes().to_vec();
    f.extend_from_slice(&1u64.to_le_bytes());
    f.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(rt(&f), einval);
    // An oversized frame.
    assert_eq!(rt(&vec![0u8; 65 * 1024]), einval);
    // A response tag sent as a request.
    assert_eq!(rt(&Response::Open.encode()), einval);
    // Still serving.
    let Response::Mount { handle, .. } = rt(&Request::Mount.encode()) else {
        panic!()
    };
    assert!(matches!(
        rt(&Request::Stat { handle }.encode()),
        Response::Stat(_)
    ));
    assert_eq!(
        rt(&Request::Stat { handle: handle + 1 }.encode()),
        Response::Error(Errno::EBADF.0)
    );
    drop(s);
    srv.join().unwrap().unwrap();
}

#[test]
fn server_gone_gives_eio() {
    let (a, b) = gofer::socketpair().unwrap();
    drop(b);
    let c = Client::new(a);
    assert_eq!(c.mount().unwrap_err(), Errno::EIO);
    assert_eq!(c.stat(1).unwrap_err(), Errno::EIO);
    c.close(1);
}

#[test]
fn bogus_server_replies_give_eio() {
    let (a, b) = gofer::socketpair().unwrap();
    let peer = UnixDatagram::from(b);
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 70000];
        let replies: Vec<Vec<u8>> = vec![
            vec![9, 9, 9],                               // garbage
            Response::Open.encode(),                     // Open without an fd
            Response::Stat(Default::default()).encode(), // wrong variant for walk
            Response::Walk {
                nodes: vec![(5, Default::default()), (6, Default::default())],
                error: 0,
            }
            .encode(),
            Response::Error(-7).encode(), // bogus errno
        ];
        for r in replies {
            peer.recv(&mut buf).unwrap();
            peer.send(&r).unwrap();
        }
        // Swallow closes from the bad walk reply.
        while let Ok(n) = peer.recv(&mut buf) {
            if n == 0 {
                break;
            }
            peer.send(&Response::Closed.encode()).unwrap();
        }
    });
    let c = Client::new(a);
    assert_eq!(c.mount().unwrap_err(), Errno::EIO);
    assert_eq!(c.open(1, libc::O_RDONLY).unwrap_err(), Errno::EIO);
    assert_eq!(c.walk(1, b"x").unwrap_err(), Errno::EIO);
    assert_eq!(c.walk(1, b"x").unwrap_err(), Errno::EIO);
    assert_eq!(c.stat(1).unwrap_err(), Errno::EIO);
    drop(c);
    t.join().unwrap();
}

#[test]
fn concurrent_clients_threads() {
    let t = tree();
    let (c, _srv) = start(&t.0.join("root"), false);
    let c = std::sync::Arc::new(c);
    let (root, _) = c.mount().unwrap();
    let ths: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let (f, _) = c.walk(root, b"file.txt").unwrap();
                    assert_eq!(read_all(c.open(f, libc::O_RDONLY).unwrap()), b"hello gofer");
                    c.close(f);
                }
            })
        })
        .collect();
    for t in ths {
        t.join().unwrap();
    }
}

// ---------------------------------------------------------------------------
// Write messages.

use abi::linux::{Timespec, S_IFIFO, S_IFSOCK};
use gofer::proto::{self, setstat};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const KEEP: u32 = u32::MAX;

fn lmeta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

fn ts(sec: i64, nsec: i64) -> Timespec {
    Timespec { sec, nsec }
}

fn setstat_mask(c: &Client, h: gofer::Handle, mask: u32) -> Result<abi::linux::Stat, Errno> {
    c.setstat(h, mask, 0o700, KEEP, KEEP, 0, ts(0, 0), ts(0, 0))
}

#[test]
fn create_file() {
    let t = tree();
    let r = t.0.join("root");
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (h, st, fd) = c
        .create(root, b"new", libc::O_RDWR, 0o640, KEEP, KEEP)
        .unwrap();
    assert_eq!(st.mode, S_IFREG | 0o640); // exact mode: no umask
    assert_eq!(c.stat(h).unwrap().ino, st.ino);
    // Blocking unless O_NONBLOCK was asked for; close-on-exec.
    let f = fs::File::from(fd);
    let fl = unsafe_free_getfl(&f);
    assert_eq!(fl & libc::O_NONBLOCK, 0);
    assert_ne!(fl & libc::O_CLOEXEC, 0);
    (&f).write_all(b"created").unwrap();
    assert_eq!(fs::read(r.join("new")).unwrap(), b"created");
    assert_eq!(lmeta(&r.join("new")).mode() & 0o7777, 0o640);
    // The node is walkable and openable like any other.
    assert_eq!(read_all(c.open(h, libc::O_RDONLY).unwrap()), b"created");
    let (_, _, fd) = c
        .create(
            root,
            b"nb",
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_APPEND,
            0,
            KEEP,
            KEEP,
        )
        .unwrap();
    let fl = unsafe_free_getfl(&fs::File::from(fd));
    assert_ne!(fl & libc::O_NONBLOCK, 0);
    assert_ne!(fl & libc::O_APPEND, 0);
    // Owner (the tests run as root when possible).
    if unsafe_free_is_root() {
        let (_, st, _) = c
            .create(root, b"owned", libc::O_RDONLY, 0o4755, 1234, 5678)
            .unwrap();
        assert_eq!((st.uid, st.gid, st.mode & 0o7777), (1234, 5678, 0o4755));
    } else {
        assert_eq!(
            c.create(root, b"owned", libc::O_RDONLY, 0o644, 0, 0)
                .unwrap_err(),
            Errno::EPERM
        );
        assert!(!r.join("owned").exists(), "failed create is rolled back");
    }
    // Errors.
    for existing in [&b"new"[..], b"file.txt", b"sub", b"link", b"escape"] {
        assert_eq!(
            c.create(root, existing, libc::O_RDWR, 0o644, KEEP, KEEP)
                .unwrap_err(),
            Errno::EEXIST,
            "{existing:?}"
        );
    }
    for bad in [&b"a/b"[..], b"..", b".", b"", b"x\0y", &[b'x'; 256]] {
        assert_eq!(
            c.create(root, bad, libc::O_RDWR, 0o644, KEEP, KEEP)
                .unwrap_err(),
            Errno::EINVAL
        );
    }
    for flags in [
        libc::O_DIRECTORY,
        libc::O_PATH,
        libc::O_TMPFILE,
        libc::O_ACCMODE,
        1 << 30,
    ] {
        assert_eq!(
            c.create(root, b"z", flags, 0o644, KEEP, KEEP).unwrap_err(),
            Errno::EINVAL,
            "{flags:#x}"
        );
    }
    assert_eq!(
        c.create(root, b"z", 0, S_IFREG | 0o644, KEEP, KEEP)
            .unwrap_err(),
        Errno::EINVAL
    );
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    assert_eq!(
        c.create(f, b"z", 0, 0o644, KEEP, KEEP).unwrap_err(),
        Errno::ENOTDIR
    );
    assert_eq!(
        c.create(9999, b"z", 0, 0o644, KEEP, KEEP).unwrap_err(),
        Errno::EBADF
    );
    assert!(!r.join("z").exists());
    // Malformed raw frames with bad args also get EINVAL from the server itself.
    let req = Request::Create {
        dir: root,
        name: b"../x".to_vec(),
        flags: 0,
        mode: 0o644,
        uid: KEEP,
        gid: KEEP,
    };
    assert_eq!(proto::validate(&req), Err(Errno::EINVAL));
}

fn unsafe_free_getfl(f: &fs::File) -> i32 {
    // Read the flags from /proc/self/fdinfo (no unsafe in tests).
    use std::os::fd::AsRawFd;
    let s = fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd())).unwrap();
    let line = s.lines().find(|l| l.starts_with("flags:")).unwrap();
    i32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

fn unsafe_free_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(|l| l.split_whitespace().nth(2) == Some("0"))
        .unwrap()
}

#[test]
fn mkdir_mknod_symlink() {
    let t = tree();
    let r = t.0.join("root");
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (d, st) = c.mkdir(root, b"dir", 0o751, KEEP, KEEP).unwrap();
    assert_eq!(st.mode, S_IFDIR | 0o751);
    assert!(lmeta(&r.join("dir")).is_dir());
    assert_eq!(
        c.mkdir(root, b"dir", 0o755, KEEP, KEEP).unwrap_err(),
        Errno::EEXIST
    );
    assert_eq!(
        c.mkdir(root, b"link", 0o755, KEEP, KEEP).unwrap_err(),
        Errno::EEXIST
    );
    assert_eq!(
        c.mkdir(root, b"..", 0o755, KEEP, KEEP).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.mkdir(root, b"x", 0o40755, KEEP, KEEP).unwrap_err(),
        Errno::EINVAL
    );
    // Nested creation through the new handle.
    let (_, _, fd) = c
        .create(d, b"f", libc::O_WRONLY, 0o600, KEEP, KEEP)
        .unwrap();
    fs::File::from(fd).write_all(b"nested").unwrap();
    assert_eq!(fs::read(r.join("dir/f")).unwrap(), b"nested");
    let (d2, _) = c.mkdir(d, b"d2", 0o700, KEEP, KEEP).unwrap();
    assert!(r.join("dir/d2").is_dir());
    assert_eq!(c.getdents(d2, 0, 4096).unwrap().len(), 2);
    if unsafe_free_is_root() {
        let (_, st) = c.mkdir(root, b"owned", 0o2775, 42, 43).unwrap();
        assert_eq!((st.uid, st.gid, st.mode & 0o7777), (42, 43, 0o2775));
    }

    // mknod: FIFOs, sockets, regular files; never devices.
    let (p, st) = c
        .mknod(root, b"fifo", S_IFIFO | 0o620, 0, KEEP, KEEP)
        .unwrap();
    assert_eq!(st.mode, S_IFIFO | 0o620);
    assert_eq!(c.open(p, libc::O_RDONLY).unwrap_err(), Errno::ENXIO);
    let (_, st) = c
        .mknod(root, b"sock", S_IFSOCK | 0o600, 0, KEEP, KEEP)
        .unwrap();
    assert_eq!(st.mode & S_IFMT, S_IFSOCK);
    let (rf, st) = c.mknod(root, b"reg", 0o604, 0, KEEP, KEEP).unwrap();
    assert_eq!(st.mode, S_IFREG | 0o604);
    assert_eq!(read_all(c.open(rf, libc::O_RDONLY).unwrap()), b"");
    for dev in [abi::linux::S_IFCHR | 0o666, abi::linux::S_IFBLK | 0o666] {
        assert_eq!(
            c.mknod(root, b"dev", dev, 0x0103, KEEP, KEEP).unwrap_err(),
            Errno::EPERM
        );
    }
    assert!(!r.join("dev").exists());
    assert_eq!(
        c.mknod(root, b"d", S_IFDIR | 0o755, 0, KEEP, KEEP)
            .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.mknod(root, b"fifo", S_IFIFO | 0o600, 0, KEEP, KEEP)
            .unwrap_err(),
        Errno::EEXIST
    );

    // symlink: the target is opaque and never followed.
    let (s, st) = c
        .symlink(root, b"sl", b"../../../etc/shadow", KEEP, KEEP)
        .unwrap();
    assert_eq!(st.mode & S_IFMT, S_IFLNK);
    assert_eq!(c.readlink(s).unwrap(), b"../../../etc/shadow");
    assert_eq!(
        fs::read_link(r.join("sl")).unwrap(),
        Path::new("../../../etc/shadow")
    );
    assert_eq!(
        c.symlink(root, b"sl", b"x", KEEP, KEEP).unwrap_err(),
        Errno::EEXIST
    );
    assert_eq!(
        c.symlink(root, b"s2", b"", KEEP, KEEP).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.symlink(root, b"s2", b"a\0b", KEEP, KEEP).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.symlink(root, b"s2", &[b'a'; proto::PATH_MAX], KEEP, KEEP)
            .unwrap_err(),
        Errno::ENAMETOOLONG
    );
    assert_eq!(
        c.symlink(root, b"a/b", b"x", KEEP, KEEP).unwrap_err(),
        Errno::EINVAL
    );
    if unsafe_free_is_root() {
        let (_, st) = c.symlink(root, b"s3", b"x", 7, 8).unwrap();
        assert_eq!((st.uid, st.gid), (7, 8));
        assert_eq!(lmeta(&r.join("s3")).uid(), 7);
    }
}

#[test]
fn link_and_unlink() {
    let t = tree();
    let r = t.0.join("root");
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (f, st0) = c.walk(root, b"file.txt").unwrap();
    let (sub, _) = c.walk(root, b"sub").unwrap();
    let st = c.link(sub, b"hard", f).unwrap();
    assert_eq!((st.ino, st.nlink), (st0.ino, 2));
    assert_eq!(fs::read(r.join("sub/hard")).unwrap(), b"hello gofer");
    assert_eq!(c.link(sub, b"hard", f).unwrap_err(), Errno::EEXIST);
    assert_eq!(c.link(root, b"sub2", sub).unwrap_err(), Errno::EPERM);
    assert_eq!(c.link(root, b"..", f).unwrap_err(), Errno::EINVAL);
    assert_eq!(c.link(f, b"x", f).unwrap_err(), Errno::ENOTDIR);
    // Linking a symlink links the symlink itself.
    let (l, _) = c.walk(root, b"escape").unwrap();
    c.link(root, b"escape2", l).unwrap();
    assert!(lmeta(&r.join("escape2")).file_type().is_symlink());

    // unlink
    c.unlink(root, b"file.txt", 0).unwrap();
    assert!(!r.join("file.txt").exists());
    assert_eq!(c.unlink(root, b"file.txt", 0).unwrap_err(), Errno::ENOENT);
    // The handle still describes the old inode; name-based ops say ENOENT.
    assert_eq!(c.stat(f).unwrap().nlink, 1);
    assert_eq!(c.open(f, libc::O_RDONLY).unwrap_err(), Errno::ENOENT);
    assert_eq!(c.link(root, b"again", f).unwrap_err(), Errno::ENOENT);
    assert_eq!(c.unlink(root, b"sub", 0).unwrap_err(), Errno::EISDIR);
    assert_eq!(
        c.unlink(root, b"sub", libc::AT_REMOVEDIR).unwrap_err(),
        Errno::ENOTEMPTY
    );
    assert_eq!(
        c.unlink(root, b"link", libc::AT_REMOVEDIR).unwrap_err(),
        Errno::ENOTDIR
    );
    assert_eq!(c.unlink(root, b"sub", 0x1000).unwrap_err(), Errno::EINVAL);
    assert_eq!(
        c.unlink(root, b"..", libc::AT_REMOVEDIR).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.unlink(root, b".", libc::AT_REMOVEDIR).unwrap_err(),
        Errno::EINVAL
    );
    // Unlinking a symlink removes the link, not its target.
    c.unlink(root, b"link", 0).unwrap();
    assert!(r.join("sub/hard").exists());
    c.unlink(sub, b"hard", 0).unwrap();
    c.unlink(sub, b"inner", 0).unwrap();
    c.unlink(root, b"sub", libc::AT_REMOVEDIR).unwrap();
    assert!(!r.join("sub").exists());
    assert_eq!(
        c.create(sub, b"x", 0, 0o644, KEEP, KEEP).unwrap_err(),
        Errno::ENOENT
    );
    assert!(t.0.join("outside").exists());
}

#[test]
fn rename_moves_handles() {
    let t = tree();
    let r = t.0.join("root");
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    let (sub, _) = c.walk(root, b"sub").unwrap();
    let (inner, _) = c.walk(sub, b"inner").unwrap();
    c.rename(root, b"file.txt", sub, b"moved", 0).unwrap();
    assert!(!r.join("file.txt").exists());
    assert_eq!(fs::read(r.join("sub/moved")).unwrap(), b"hello gofer");
    // The handle followed the rename.
    assert_eq!(read_all(c.open(f, libc::O_RDONLY).unwrap()), b"hello gofer");
    assert_eq!(
        setstat_mask(&c, f, setstat::MODE).unwrap().mode & 0o7777,
        0o700
    );

    // NOREPLACE / EXCHANGE.
    assert_eq!(
        c.rename(sub, b"moved", sub, b"inner", proto::RENAME_NOREPLACE)
            .unwrap_err(),
        Errno::EEXIST
    );
    c.rename(sub, b"moved", sub, b"inner", proto::RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(fs::read(r.join("sub/inner")).unwrap(), b"hello gofer");
    assert_eq!(fs::read(r.join("sub/moved")).unwrap(), b"inner data");
    assert_eq!(read_all(c.open(f, libc::O_RDONLY).unwrap()), b"hello gofer");
    assert_eq!(
        read_all(c.open(inner, libc::O_RDONLY).unwrap()),
        b"inner data"
    );
    assert_eq!(
        c.rename(sub, b"nope", sub, b"inner", proto::RENAME_EXCHANGE)
            .unwrap_err(),
        Errno::ENOENT
    );

    // Replacing a name makes handles to the replaced node stale.
    c.rename(sub, b"moved", sub, b"inner", 0).unwrap(); // `inner` node now: moved onto f's name
    assert_eq!(
        read_all(c.open(inner, libc::O_RDONLY).unwrap()),
        b"inner data"
    );
    assert_eq!(c.open(f, libc::O_RDONLY).unwrap_err(), Errno::ESTALE);
    assert_eq!(
        setstat_mask(&c, f, setstat::MODE).unwrap_err(),
        Errno::ESTALE
    );

    // Errors.
    assert_eq!(
        c.rename(root, b"nope", root, b"x", 0).unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(
        c.rename(root, b"sub", root, b"..", 0).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.rename(root, b"a/b", root, b"x", 0).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.rename(root, b"sub", root, b"x", 4).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.rename(root, b"sub", sub, b"x", 0).unwrap_err(),
        Errno::EINVAL
    ); // into itself
    fs::create_dir(r.join("full")).unwrap();
    fs::write(r.join("full/x"), b"").unwrap();
    fs::create_dir(r.join("empty")).unwrap();
    assert_eq!(
        c.rename(root, b"empty", root, b"full", 0).unwrap_err(),
        Errno::ENOTEMPTY
    );
    assert_eq!(
        c.rename(root, b"sub", root, b"abs", 0).unwrap_err(),
        Errno::ENOTDIR
    );
    // Renaming a directory moves its handle; children stay reachable through it.
    c.rename(root, b"sub", root, b"sub2", 0).unwrap();
    assert_eq!(
        setstat_mask(&c, sub, setstat::MODE).unwrap().mode & 0o7777,
        0o700
    );
    let (_, _, fd) = c
        .create(sub, b"after", libc::O_WRONLY, 0o644, KEEP, KEEP)
        .unwrap();
    drop(fd);
    assert!(r.join("sub2/after").exists());
}

#[test]
fn setstat_attributes() {
    let t = tree();
    let r = t.0.join("root");
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    // mask 0: just a fresh stat.
    assert_eq!(
        c.setstat(f, 0, 0, 0, 0, 0, ts(0, 0), ts(0, 0))
            .unwrap()
            .size,
        11
    );
    let st = c
        .setstat(
            f,
            setstat::MODE | setstat::SIZE,
            0o4711,
            0,
            0,
            5,
            ts(0, 0),
            ts(0, 0),
        )
        .unwrap();
    assert_eq!((st.mode, st.size), (S_IFREG | 0o4711, 5));
    assert_eq!(fs::read(r.join("file.txt")).unwrap(), b"hello");
    let st = c
        .setstat(f, setstat::SIZE, 0, 0, 0, 1 << 20, ts(0, 0), ts(0, 0))
        .unwrap();
    assert_eq!(st.size, 1 << 20);
    let st = c
        .setstat(
            f,
            setstat::ATIME | setstat::MTIME,
            0,
            0,
            0,
            0,
            ts(1000, 5),
            ts(2000, 999_999_999),
        )
        .unwrap();
    assert_eq!((st.atime, st.mtime), (ts(1000, 5), ts(2000, 999_999_999)));
    let m = lmeta(&r.join("file.txt"));
    assert_eq!((m.atime(), m.mtime()), (1000, 2000));
    let st = c
        .setstat(f, setstat::MTIME_NOW, 0, 0, 0, 0, ts(0, 0), ts(0, 0))
        .unwrap();
    assert!(st.mtime.sec > 2000);
    assert_eq!(st.atime, ts(1000, 5)); // untouched
    if unsafe_free_is_root() {
        let st = c
            .setstat(f, setstat::UID, 0, 99, 77, 0, ts(0, 0), ts(0, 0))
            .unwrap();
        assert_eq!((st.uid, st.gid), (99, 0)); // only the masked id changes
        let st = c
            .setstat(f, setstat::GID, 0, 99, 77, 0, ts(0, 0), ts(0, 0))
            .unwrap();
        assert_eq!((st.uid, st.gid), (99, 77));
    }
    // Directories: mode and times yes, size no.
    let (sub, _) = c.walk(root, b"sub").unwrap();
    assert_eq!(
        setstat_mask(&c, sub, setstat::MODE).unwrap().mode,
        S_IFDIR | 0o700
    );
    assert_eq!(
        setstat_mask(&c, sub, setstat::SIZE).unwrap_err(),
        Errno::EISDIR
    );
    assert_eq!(
        setstat_mask(&c, root, setstat::SIZE).unwrap_err(),
        Errno::EISDIR
    );
    setstat_mask(&c, root, setstat::ATIME_NOW).unwrap();
    // Symlinks: times and owner apply to the link itself; mode and size are refused.
    let (l, _) = c.walk(root, b"link").unwrap();
    let before = lmeta(&r.join("file.txt"));
    assert_eq!(
        setstat_mask(&c, l, setstat::MODE).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    assert_eq!(
        setstat_mask(&c, l, setstat::SIZE).unwrap_err(),
        Errno::EINVAL
    );
    let st = c
        .setstat(l, setstat::MTIME, 0, 0, 0, 0, ts(0, 0), ts(3, 0))
        .unwrap();
    assert_eq!(st.mtime, ts(3, 0));
    assert_eq!(lmeta(&r.join("link")).mtime(), 3);
    let after = lmeta(&r.join("file.txt"));
    assert_eq!(
        (before.mode(), before.len(), before.mtime()),
        (after.mode(), after.len(), after.mtime())
    );
    // FIFOs: mode without opening.
    let (p, _) = c
        .mknod(root, b"fifo", S_IFIFO | 0o600, 0, KEEP, KEEP)
        .unwrap();
    let st = c
        .setstat(p, setstat::MODE, 0o640, 0, 0, 0, ts(0, 0), ts(0, 0))
        .unwrap();
    assert_eq!(st.mode, S_IFIFO | 0o640);
    assert_eq!(
        setstat_mask(&c, p, setstat::SIZE).unwrap_err(),
        Errno::EINVAL
    );
    // Bad arguments.
    for (mask, mode, size, at) in [
        (1u32 << 8, 0, 0, ts(0, 0)),
        (setstat::ATIME | setstat::ATIME_NOW, 0, 0, ts(0, 0)),
        (setstat::MODE, 0o170000, 0, ts(0, 0)),
        (setstat::SIZE, 0, u64::MAX, ts(0, 0)),
        (setstat::ATIME, 0, 0, ts(0, 1_000_000_000)),
        (setstat::ATIME, 0, 0, ts(0, libc::UTIME_NOW)),
    ] {
        assert_eq!(
            c.setstat(f, mask, mode, 0, 0, size, at, ts(0, 0))
                .unwrap_err(),
            Errno::EINVAL
        );
    }
    assert_eq!(
        setstat_mask(&c, 9999, setstat::MODE).unwrap_err(),
        Errno::EBADF
    );
    // A replaced node is stale.
    fs::remove_file(r.join("file.txt")).unwrap();
    fs::write(r.join("file.txt"), b"other").unwrap();
    for mask in [
        setstat::MODE,
        setstat::SIZE,
        setstat::UID,
        setstat::MTIME_NOW,
    ] {
        assert_eq!(setstat_mask(&c, f, mask).unwrap_err(), Errno::ESTALE);
    }
    assert_eq!(lmeta(&r.join("file.txt")).len(), 5);
}

#[test]
fn xattrs() {
    let t = tree();
    let r = t.0.join("root");
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    match c.setxattr(f, b"user.probe", b"1", 0) {
        Err(Errno::EOPNOTSUPP) => {
            eprintln!("skipping: the temp fs has no user xattrs");
            return;
        }
        r => r.unwrap(),
    }
    c.removexattr(f, b"user.probe").unwrap();
    c.setxattr(f, b"user.a", b"value-a", proto::XATTR_CREATE)
        .unwrap();
    assert_eq!(c.getxattr(f, b"user.a", 0).unwrap(), b"value-a");
    assert_eq!(c.getxattr(f, b"user.a", 7).unwrap(), b"value-a");
    assert_eq!(c.getxattr(f, b"user.a", 6).unwrap_err(), Errno::ERANGE);
    assert_eq!(
        c.setxattr(f, b"user.a", b"x", proto::XATTR_CREATE)
            .unwrap_err(),
        Errno::EEXIST
    );
    assert_eq!(
        c.setxattr(f, b"user.b", b"x", proto::XATTR_REPLACE)
            .unwrap_err(),
        Errno::ENODATA
    );
    c.setxattr(f, b"user.a", b"", proto::XATTR_REPLACE).unwrap();
    assert_eq!(c.getxattr(f, b"user.a", 0).unwrap(), b"");
    let big = vec![0xabu8; 4000];
    c.setxattr(f, b"user.big", &big, 0).unwrap();
    assert_eq!(c.getxattr(f, b"user.big", 0).unwrap(), big);
    let list = c.listxattr(f, 0).unwrap();
    let mut names: Vec<&[u8]> = list.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
    names.sort();
    assert_eq!(names, [&b"user.a"[..], b"user.big"]);
    assert_eq!(c.listxattr(f, 3).unwrap_err(), Errno::ERANGE);
    assert_eq!(c.getxattr(f, b"user.none", 0).unwrap_err(), Errno::ENODATA);
    c.removexattr(f, b"user.a").unwrap();
    assert_eq!(c.removexattr(f, b"user.a").unwrap_err(), Errno::ENODATA);
    // Directories too.
    let (sub, _) = c.walk(root, b"sub").unwrap();
    c.setxattr(sub, b"user.d", b"dir", 0).unwrap();
    assert_eq!(c.getxattr(sub, b"user.d", 0).unwrap(), b"dir");
    c.setxattr(root, b"user.r", b"root", 0).unwrap();
    assert_eq!(c.getxattr(root, b"user.r", 0).unwrap(), b"root");
    // Namespaces and names.
    for ns in [&b"system.posix_acl_access"[..], b"os2.x", b"user.", b"foo"] {
        assert_eq!(c.getxattr(f, ns, 0).unwrap_err(), Errno::EOPNOTSUPP);
        assert_eq!(c.setxattr(f, ns, b"v", 0).unwrap_err(), Errno::EOPNOTSUPP);
        assert_eq!(c.removexattr(f, ns).unwrap_err(), Errno::EOPNOTSUPP);
    }
    assert_eq!(c.getxattr(f, b"", 0).unwrap_err(), Errno::EINVAL);
    assert_eq!(
        c.setxattr(f, b"user.a", b"v", 3).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        c.setxattr(f, b"user.a", &vec![0; proto::MAX_XATTR_SIZE + 1], 0)
            .unwrap_err(),
        Errno::E2BIG
    );
    // Symlinks and special files: EOPNOTSUPP (never followed to the target).
    let (l, _) = c.walk(root, b"link").unwrap();
    assert_eq!(
        c.setxattr(l, b"user.l", b"v", 0).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    assert_eq!(
        c.getxattr(l, b"user.big", 0).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    assert_eq!(c.listxattr(l, 0).unwrap_err(), Errno::EOPNOTSUPP);
    let (p, _) = c
        .mknod(root, b"fifo", S_IFIFO | 0o600, 0, KEEP, KEEP)
        .unwrap();
    assert_eq!(c.listxattr(p, 0).unwrap_err(), Errno::EOPNOTSUPP);
    // A read-only server reads xattrs but refuses changes.
    let (ro, _srv2) = start(&r, true);
    let (rroot, _) = ro.mount().unwrap();
    let (rf, _) = ro.walk(rroot, b"file.txt").unwrap();
    assert_eq!(ro.getxattr(rf, b"user.big", 0).unwrap(), big);
    assert_eq!(ro.listxattr(rf, 0).unwrap(), b"user.big\0");
    assert_eq!(
        ro.setxattr(rf, b"user.x", b"v", 0).unwrap_err(),
        Errno::EROFS
    );
    assert_eq!(ro.removexattr(rf, b"user.big").unwrap_err(), Errno::EROFS);
    // Stale handles.
    fs::remove_file(r.join("file.txt")).unwrap();
    fs::write(r.join("file.txt"), b"other").unwrap();
    assert_eq!(c.getxattr(f, b"user.big", 0).unwrap_err(), Errno::ESTALE);
    assert_eq!(
        c.setxattr(f, b"user.big", b"v", 0).unwrap_err(),
        Errno::ESTALE
    );
    assert_eq!(c.listxattr(f, 0).unwrap_err(), Errno::ESTALE);
    assert_eq!(c.removexattr(f, b"user.big").unwrap_err(), Errno::ESTALE);
}

#[test]
fn read_only_server_refuses_writes() {
    let t = tree();
    let r = t.0.join("root");
    let (c, srv) = start(&r, true);
    let (root, _) = c.mount().unwrap();
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    let rofs = Errno::EROFS;
    assert_eq!(
        c.create(root, b"n", libc::O_RDONLY, 0o644, KEEP, KEEP)
            .unwrap_err(),
        rofs
    );
    assert_eq!(c.mkdir(root, b"n", 0o755, KEEP, KEEP).unwrap_err(), rofs);
    assert_eq!(
        c.mknod(root, b"n", S_IFIFO | 0o644, 0, KEEP, KEEP)
            .unwrap_err(),
        rofs
    );
    assert_eq!(c.symlink(root, b"n", b"x", KEEP, KEEP).unwrap_err(), rofs);
    assert_eq!(c.link(root, b"n", f).unwrap_err(), rofs);
    assert_eq!(c.unlink(root, b"file.txt", 0).unwrap_err(), rofs);
    assert_eq!(
        c.unlink(root, b"sub", libc::AT_REMOVEDIR).unwrap_err(),
        rofs
    );
    assert_eq!(
        c.rename(root, b"file.txt", root, b"n", 0).unwrap_err(),
        rofs
    );
    for mask in [
        setstat::MODE,
        setstat::UID,
        setstat::SIZE,
        setstat::ATIME_NOW,
    ] {
        assert_eq!(setstat_mask(&c, f, mask).unwrap_err(), rofs);
    }
    // mask 0 is a plain stat; bad names are still EINVAL.
    assert_eq!(setstat_mask(&c, f, 0).unwrap().size, 11);
    assert_eq!(
        c.mkdir(root, b"..", 0o755, KEEP, KEEP).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(fs::read(r.join("file.txt")).unwrap(), b"hello gofer");
    assert!(!r.join("n").exists());
    // Raw frames bypassing the client's checks get the same answer.
    drop(c);
    srv.join().unwrap().unwrap();
    let (a, b) = gofer::socketpair().unwrap();
    let rootfd = root_fd(&r);
    let srv = std::thread::spawn(move || server::serve(rootfd, b, true));
    let s = UnixDatagram::from(a);
    let mut buf = vec![0u8; 70000];
    let mut rt = |req: Request| {
        s.send(&req.encode()).unwrap();
        let n = s.recv(&mut buf).unwrap();
        Response::decode(&buf[..n]).unwrap()
    };
    let Response::Mount { handle, .. } = rt(Request::Mount) else {
        panic!()
    };
    let unlink = |name: &[u8]| Request::Unlink {
        dir: handle,
        name: name.to_vec(),
        flags: 0,
    };
    assert_eq!(rt(unlink(b"file.txt")), Response::Error(Errno::EROFS.0));
    assert_eq!(rt(unlink(b"../outside")), Response::Error(Errno::EINVAL.0));
    drop(s);
    srv.join().unwrap().unwrap();
}

/// The server re-validates everything the client checks, for a peer that skips the client.
#[test]
fn server_validates_raw_write_frames() {
    let t = tree();
    let r = t.0.join("root");
    let (a, b) = gofer::socketpair().unwrap();
    let rootfd = root_fd(&r);
    let _srv = std::thread::spawn(move || server::serve(rootfd, b, false));
    let s = UnixDatagram::from(a);
    let mut buf = vec![0u8; 70000];
    let mut rt = |req: Request| {
        s.send(&req.encode()).unwrap();
        let n = s.recv(&mut buf).unwrap();
        Response::decode(&buf[..n]).unwrap()
    };
    let Response::Mount { handle: root, .. } = rt(Request::Mount) else {
        panic!()
    };
    let e = |e: Errno| Response::Error(e.0);
    for name in [&b"../outside"[..], b"..", b".", b"", b"sub/inner", b"a\0"] {
        assert_eq!(
            rt(Request::Create {
                dir: root,
                name: name.to_vec(),
                flags: libc::O_RDWR,
                mode: 0o644,
                uid: KEEP,
                gid: KEEP
            }),
            e(Errno::EINVAL)
        );
        assert_eq!(
            rt(Request::Unlink {
                dir: root,
                name: name.to_vec(),
                flags: 0
            }),
            e(Errno::EINVAL)
        );
        assert_eq!(
            rt(Request::Rename {
                old_dir: root,
                old_name: b"file.txt".to_vec(),
                new_dir: root,
                new_name: name.to_vec(),
                flags: 0
            }),
            e(Errno::EINVAL)
        );
        assert_eq!(
            rt(Request::Rename {
                old_dir: root,
                old_name: name.to_vec(),
                new_dir: root,
                new_name: b"renamed".to_vec(),
                flags: 0
            }),
            e(Errno::EINVAL)
        );
        assert_eq!(
            rt(Request::Mkdir {
                dir: root,
                name: name.to_vec(),
                mode: 0o755,
                uid: KEEP,
                gid: KEEP
            }),
            e(Errno::EINVAL)
        );
        assert_eq!(
            rt(Request::Mknod {
                dir: root,
                name: name.to_vec(),
                mode: abi::linux::S_IFIFO | 0o644,
                rdev: 0,
                uid: KEEP,
                gid: KEEP
            }),
            e(Errno::EINVAL)
        );
        assert_eq!(
            rt(Request::Symlink {
                dir: root,
                name: name.to_vec(),
                target: b"/etc/passwd".to_vec(),
                uid: KEEP,
                gid: KEEP
            }),
            e(Errno::EINVAL)
        );
        assert_eq!(
            rt(Request::Link {
                dir: root,
                name: name.to_vec(),
                target: root,
            }),
            e(Errno::EINVAL)
        );
        assert_eq!(
            rt(Request::Unlink {
                dir: root,
                name: name.to_vec(),
                flags: libc::AT_REMOVEDIR
            }),
            e(Errno::EINVAL)
        );
    }
    assert!(!r.join("renamed").exists());
    assert_eq!(
        rt(Request::Mknod {
            dir: root,
            name: b"null".to_vec(),
            mode: abi::linux::S_IFCHR | 0o666,
            rdev: 0x0103,
            uid: KEEP,
            gid: KEEP
        }),
        e(Errno::EPERM)
    );
    assert_eq!(
        rt(Request::Create {
            dir: root,
            name: b"x".to_vec(),
            flags: libc::O_RDWR | libc::O_PATH,
            mode: 0o644,
            uid: KEEP,
            gid: KEEP
        }),
        e(Errno::EINVAL)
    );
    assert_eq!(
        rt(Request::Unlink {
            dir: root,
            name: b"sub".to_vec(),
            flags: libc::AT_REMOVEDIR | libc::AT_SYMLINK_NOFOLLOW
        }),
        e(Errno::EINVAL)
    );
    assert_eq!(
        rt(Request::GetXattr {
            handle: root,
            name: b"system.posix_acl_access".to_vec(),
            size: 0
        }),
        e(Errno::EOPNOTSUPP)
    );
    assert!(r.join("file.txt").exists());
    assert!(t.0.join("outside").exists());
    assert!(!r.join("null").exists());
}

/// No write op follows a symlink: not to create beneath one, not on the final component,
/// and not for a stale handle whose name was replaced by a symlink pointing outside.
#[test]
fn symlinks_never_followed_by_writes() {
    let t = tree();
    let r = t.0.join("root");
    fs::create_dir(t.0.join("outdir")).unwrap();
    symlink("../outdir", r.join("dirlink")).unwrap();
    symlink("../outside", r.join("outlink")).unwrap();
    let (c, _srv) = start(&r, false);
    let (root, _) = c.mount().unwrap();
    let (dl, _) = c.walk(root, b"dirlink").unwrap();
    let (ol, _) = c.walk(root, b"outlink").unwrap();
    let (f, _) = c.walk(root, b"file.txt").unwrap();
    let notdir = |e: Errno| assert!(e == Errno::ENOTDIR || e == Errno::ELOOP, "{e:?}");
    // Through a symlinked directory.
    notdir(
        c.create(dl, b"x", libc::O_RDWR, 0o644, KEEP, KEEP)
            .unwrap_err(),
    );
    notdir(c.mkdir(dl, b"x", 0o755, KEEP, KEEP).unwrap_err());
    notdir(
        c.mknod(dl, b"x", S_IFIFO | 0o644, 0, KEEP, KEEP)
            .unwrap_err(),
    );
    notdir(c.symlink(dl, b"x", b"y", KEEP, KEEP).unwrap_err());
    notdir(c.link(dl, b"x", f).unwrap_err());
    notdir(c.unlink(dl, b"x", 0).unwrap_err());
    notdir(c.rename(root, b"file.txt", dl, b"x", 0).unwrap_err());
    notdir(c.rename(dl, b"x", root, b"y", 0).unwrap_err());
    assert_eq!(fs::read_dir(t.0.join("outdir")).unwrap().count(), 0);
    // On a symlink itself: the link is the object, never its target.
    assert_eq!(
        c.create(
            root,
            b"outlink",
            libc::O_RDWR | libc::O_TRUNC,
            0o644,
            KEEP,
            KEEP
        )
        .unwrap_err(),
        Errno::EEXIST
    );
    assert_eq!(
        setstat_mask(&c, ol, setstat::SIZE).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        setstat_mask(&c, ol, setstat::MODE).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    c.setstat(ol, setstat::MTIME, 0, 0, 0, 0, ts(0, 0), ts(5, 0))
        .unwrap();
    assert_eq!(
        c.setxattr(ol, b"user.x", b"v", 0).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    let (_, st) = c.walk(root, b"outlink").unwrap();
    assert_eq!(st.mtime, ts(5, 0));
    c.link(root, b"outlink2", ol).unwrap(); // links the symlink, not ../outside
    assert!(lmeta(&r.join("outlink2")).file_type().is_symlink());
    c.rename(root, b"outlink2", root, b"outlink3", 0).unwrap();
    assert!(lmeta(&r.join("outlink3")).file_type().is_symlink());
    c.unlink(root, b"outlink3", 0).unwrap();
    // A stale handle whose name is now a symlink to outside the root.
    fs::remove_file(r.join("file.txt")).unwrap();
    symlink("../outside", r.join("file.txt")).unwrap();
    for mask in [
        setstat::SIZE,
        setstat::MODE,
        setstat::UID,
        setstat::MTIME_NOW,
    ] {
        assert_eq!(setstat_mask(&c, f, mask).unwrap_err(), Errno::ESTALE);
    }
    assert_eq!(
        c.setxattr(f, b"user.x", b"v", 0).unwrap_err(),
        Errno::ESTALE
    );
    assert_eq!(c.link(root, b"x", f).unwrap_err(), Errno::ESTALE);
    // (Open reaches the name first and refuses the symlink itself.)
    let e = c.open(f, libc::O_RDWR).unwrap_err();
    assert!(e == Errno::ESTALE || e == Errno::ELOOP, "{e:?}");
    // A directory handle whose name became a symlink keeps naming the real directory
    // (inside the root), never the symlink's target.
    let (sub, _) = c.walk(root, b"sub").unwrap();
    fs::rename(r.join("sub"), r.join("sub-moved")).unwrap();
    symlink("../outdir", r.join("sub")).unwrap();
    let (_, _, fd) = c
        .create(sub, b"new", libc::O_WRONLY, 0o644, KEEP, KEEP)
        .unwrap();
    drop(fd);
    assert!(r.join("sub-moved/new").exists());
    c.mkdir(sub, b"nd", 0o755, KEEP, KEEP).unwrap();
    assert!(r.join("sub-moved/nd").is_dir());
    assert_eq!(fs::read_dir(t.0.join("outdir")).unwrap().count(), 0);
    // Everything outside is untouched.
    let m = lmeta(&t.0.join("outside"));
    assert_eq!((m.len(), m.permissions().mode() & 0o7777), (6, 0o644));
    assert_eq!(fs::read(t.0.join("outside")).unwrap(), b"secret");
}

/// Handles follow a rename even when it names the directories through other handles.
#[test]
fn rename_through_other_handles() {
    let t = tree();
    let r = t.0.join("root");
    let (c, _srv) = start(&r, false);
    let (root1, _) = c.mount().unwrap();
    let (root2, _) = c.mount().unwrap();
    let (f, _) = c.walk(root1, b"file.txt").unwrap();
    let (sub_a, _) = c.walk(root1, b"sub").unwrap();
    let (sub_b, _) = c.walk(root2, b"sub").unwrap();
    c.rename(root2, b"file.txt", sub_b, b"f2", 0).unwrap();
    assert_eq!(read_all(c.open(f, libc::O_RDONLY).unwrap()), b"hello gofer");
    c.rename(sub_a, b"f2", root1, b"f3", 0).unwrap();
    assert_eq!(read_all(c.open(f, libc::O_RDONLY).unwrap()), b"hello gofer");
    assert!(r.join("f3").exists());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn pick_name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"a".to_vec()),
            Just(b"b".to_vec()),
            Just(b"sub".to_vec()),
            Just(b"file.txt".to_vec()),
            Just(b"escape".to_vec()),
            Just(b"abs".to_vec()),
            Just(b"..".to_vec()),
            Just(b".".to_vec()),
            Just(b"../outside".to_vec()),
            Just(b"".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Walk(usize, Vec<u8>),
        Create(usize, Vec<u8>, i32),
        Mkdir(usize, Vec<u8>),
        Mknod(usize, Vec<u8>, u32),
        Symlink(usize, Vec<u8>, Vec<u8>),
        Link(usize, Vec<u8>, usize),
        Unlink(usize, Vec<u8>, bool),
        Rename(usize, Vec<u8>, usize, Vec<u8>, u32),
        SetStat(usize, u32, u64),
        SetXattr(usize, Vec<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        let h = 0usize..16;
        prop_oneof![
            (h.clone(), pick_name()).prop_map(|(d, n)| Op::Walk(d, n)),
            (h.clone(), pick_name(), any::<i32>()).prop_map(|(d, n, f)| Op::Create(d, n, f)),
            (h.clone(), pick_name()).prop_map(|(d, n)| Op::Mkdir(d, n)),
            (h.clone(), pick_name(), any::<u32>()).prop_map(|(d, n, m)| Op::Mknod(d, n, m)),
            (h.clone(), pick_name(), pick_name()).prop_map(|(d, n, t)| Op::Symlink(d, n, t)),
            (h.clone(), pick_name(), h.clone()).prop_map(|(d, n, t)| Op::Link(d, n, t)),
            (h.clone(), pick_name(), any::<bool>()).prop_map(|(d, n, x)| Op::Unlink(d, n, x)),
            (h.clone(), pick_name(), h.clone(), pick_name(), 0u32..4)
                .prop_map(|(a, n, b, m, f)| Op::Rename(a, n, b, m, f)),
            (h.clone(), any::<u32>(), 0u64..100).prop_map(|(x, m, s)| Op::SetStat(x, m, s)),
            (h, pick_name()).prop_map(|(x, n)| Op::SetXattr(x, n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Write-message tags followed by random bytes, straight to a live read-write
        /// server: every frame gets a well-formed reply (an error for anything
        /// malformed), nothing appears outside the root, and the server keeps serving.
        #[test]
        fn raw_garbage_write_frames(frames in proptest::collection::vec((9u32..=20, proptest::collection::vec(any::<u8>(), 0..80)), 1..30)) {
            let t = tree();
            let r = t.0.join("root");
            let before = fs::read_dir(&t.0).unwrap().count();
            let (a, b) = gofer::socketpair().unwrap();
            let rootfd = root_fd(&r);
            let srv = std::thread::spawn(move || server::serve(rootfd, b, false));
            let s = UnixDatagram::from(a);
            let mut buf = vec![0u8; 70000];
            for (tag, body) in frames {
                let mut f = tag.to_le_bytes().to_vec();
                f.extend_from_slice(&body);
                s.send(&f).unwrap();
                let n = s.recv(&mut buf).unwrap();
                prop_assert!(Response::decode(&buf[..n]).is_ok());
            }
            s.send(&Request::Mount.encode()).unwrap();
            let n = s.recv(&mut buf).unwrap();
            let mounted = matches!(Response::decode(&buf[..n]), Ok(Response::Mount { .. }));
            prop_assert!(mounted);
            prop_assert_eq!(fs::read_dir(&t.0).unwrap().count(), before);
            drop(s);
            prop_assert!(srv.join().unwrap().is_ok());
        }

        /// Random write sequences never touch anything outside the root, never kill the
        /// server, and only ever get errno replies for bad input.
        #[test]
        fn random_writes_stay_inside(ops in proptest::collection::vec(op(), 1..40)) {
            let t = tree();
            let r = t.0.join("root");
            fs::create_dir(t.0.join("outdir")).unwrap();
            symlink("../outdir", r.join("dirlink")).unwrap();
            let (c, srv) = start(&r, false);
            let (root, _) = c.mount().unwrap();
            let mut hs = vec![root];
            for n in [&b"sub"[..], b"file.txt", b"escape", b"abs", b"dirlink"] {
                hs.push(c.walk(root, n).unwrap().0);
            }
            macro_rules! h {
                ($i:expr) => {
                    hs[$i % hs.len()]
                };
            }
            for o in ops {
                match o {
                    Op::Walk(d, n) => {
                        if let Ok((x, _)) = c.walk(h!(d), &n) {
                            hs.push(x);
                        }
                    }
                    Op::Create(d, n, f) => {
                        if let Ok((x, _, _)) = c.create(h!(d), &n, f, 0o644, KEEP, KEEP) {
                            hs.push(x);
                        }
                    }
                    Op::Mkdir(d, n) => {
                        if let Ok((x, _)) = c.mkdir(h!(d), &n, 0o755, KEEP, KEEP) {
                            hs.push(x);
                        }
                    }
                    Op::Mknod(d, n, m) => {
                        if let Ok((x, _)) = c.mknod(h!(d), &n, m, 0, KEEP, KEEP) {
                            hs.push(x);
                        }
                    }
                    Op::Symlink(d, n, tg) => {
                        if let Ok((x, _)) = c.symlink(h!(d), &n, &tg, KEEP, KEEP) {
                            hs.push(x);
                        }
                    }
                    Op::Link(d, n, x) => {
                        let _ = c.link(h!(d), &n, h!(x));
                    }
                    Op::Unlink(d, n, dir) => {
                        let _ = c.unlink(h!(d), &n, if dir { libc::AT_REMOVEDIR } else { 0 });
                    }
                    Op::Rename(a, n, b, m, f) => {
                        let _ = c.rename(h!(a), &n, h!(b), &m, f);
                    }
                    Op::SetStat(x, m, s) => {
                        let _ = c.setstat(h!(x), m, 0o755, KEEP, KEEP, s, ts(1, 0), ts(2, 0));
                    }
                    Op::SetXattr(x, n) => {
                        let mut name = b"user.".to_vec();
                        name.extend_from_slice(&n);
                        let _ = c.setxattr(h!(x), &name, b"v", 0);
                    }
                }
            }
            prop_assert!(c.stat(root).is_ok());
            prop_assert_eq!(fs::read(t.0.join("outside")).unwrap(), b"secret");
            let m = lmeta(&t.0.join("outside"));
            prop_assert_eq!(m.permissions().mode() & 0o7777, 0o644);
            prop_assert_eq!(fs::read_dir(t.0.join("outdir")).unwrap().count(), 0);
            let entries: Vec<_> = fs::read_dir(&t.0).unwrap().map(|e| e.unwrap().file_name()).collect();
            prop_assert_eq!(entries.len(), 3, "{:?}", entries); // root, outside, outdir
            drop(c);
            srv.join().unwrap().unwrap();
        }
    }
}

/// Single-file mode (a bind mount of one file): the mount handle is the file;
/// nothing else in its directory is reachable, and writes follow read_only.
#[test]
fn serve_one_file() {
    let t = tree();
    let r = t.0.join("root");
    for read_only in [true, false] {
        let (a, b) = gofer::socketpair().unwrap();
        let dir = root_fd(&r);
        let srv = std::thread::spawn(move || server::serve_file(dir, b"file.txt", b, read_only));
        let c = Client::new(a);
        let (h, st) = c.mount().unwrap();
        assert_eq!(st.mode & S_IFMT, S_IFREG);
        assert_eq!(read_all(c.open(h, libc::O_RDONLY).unwrap()), b"hello gofer");
        for name in [&b"."[..], b"..", b"sub", b"link", b"file.txt"] {
            assert!(c.walk(h, name).is_err(), "walk {name:?} from the file");
        }
        assert!(c.getdents(h, 0, 100).is_err());
        assert!(c.create(h, b"new", libc::O_RDWR, 0o644, 0, 0).is_err());
        assert!(c.unlink(h, b"file.txt", 0).is_err());
        if read_only {
            assert_eq!(c.open(h, libc::O_WRONLY).unwrap_err(), Errno::EROFS);
        } else {
            let mut f = fs::File::from(c.open(h, libc::O_WRONLY | libc::O_APPEND).unwrap());
            f.write_all(b"!").unwrap();
        }
        drop(c);
        srv.join().unwrap().unwrap();
    }
    assert_eq!(fs::read(r.join("file.txt")).unwrap(), b"hello gofer!");
    assert!(r.join("sub/inner").exists());
    // Only regular files, only plain names.
    for name in [&b"sub"[..], b"link", b"a/b", b".."] {
        let (_a, b) = gofer::socketpair().unwrap();
        assert!(
            server::serve_file(root_fd(&r), name, b, true).is_err(),
            "{name:?}"
        );
    }
}

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

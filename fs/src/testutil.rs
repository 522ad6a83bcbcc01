//! Test fixtures: a temp directory tree served by a real gofer server on a thread.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use abi::Errno;

use crate::{FsContext, UserIo, Vfs};

static N: AtomicU32 = AtomicU32::new(0);

pub struct Tree {
    pub dir: PathBuf,
    pub vfs: Arc<Vfs>,
    pub ctx: Arc<FsContext>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(p: &Path, data: &str, mode: u32) {
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds the standard tree and serves it read-only.
pub fn tree() -> Tree {
    let dir = std::env::temp_dir().join(format!(
        "fs-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let d = |p: &str| dir.join(p);
    for sub in [
        "etc", "bin", "dir/sub", "proc", "dev", "private", "many", "empty",
    ] {
        std::fs::create_dir_all(d(sub)).unwrap();
    }
    write(&d("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644);
    write(&d("etc/shadow"), "secret\n", 0o600);
    write(&d("bin/sh"), "#!fake\n", 0o755);
    write(&d("bin/noexec"), "data\n", 0o644);
    write(&d("dir/sub/file"), "deep\n", 0o644);
    write(&d("proc/host_secret"), "host\n", 0o644);
    write(&d("dev/host_dev"), "host\n", 0o644);
    write(&d("private/f"), "p\n", 0o644);
    std::fs::set_permissions(d("private"), std::fs::Permissions::from_mode(0o700)).unwrap();
    for i in 0..100 {
        write(
            &d(&format!("many/file_with_a_longish_name_{i:03}")),
            "",
            0o644,
        );
    }
    symlink("/etc/passwd", d("link_abs")).unwrap();
    symlink("etc/passwd", d("link_rel")).unwrap();
    symlink("../etc", d("dir/up")).unwrap();
    symlink("loop2", d("loop1")).unwrap();
    symlink("loop1", d("loop2")).unwrap();
    symlink("self", d("self")).unwrap();
    symlink("nonexistent", d("dangling")).unwrap();
    symlink("dir/", d("dirlink")).unwrap();
    symlink("/../../../../etc", d("escape")).unwrap();
    // A chain c1 -> c2 -> ... -> c41 -> etc/passwd (41 links from c1, 40 from c2).
    for i in 1..=41 {
        let target = if i == 41 {
            "etc/passwd".to_string()
        } else {
            format!("c{}", i + 1)
        };
        symlink(target, d(&format!("c{i}"))).unwrap();
    }

    let root = OwnedFd::from(std::fs::File::open(&dir).unwrap());
    let (a, b) = gofer::socketpair().unwrap();
    std::thread::spawn(move || gofer::server::serve(root, b, true));
    let client = Arc::new(gofer::Client::new(a));
    let vfs = Vfs::new_with_gofer_root(client).unwrap();
    let ctx = FsContext::new(vfs.root());
    Tree { dir, vfs, ctx }
}

/// A fresh empty temp directory (removed on drop).
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fs-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A gofer client serving `dir` (writable unless `read_only`) from a server thread.
pub fn serve(dir: &Path, read_only: bool) -> Arc<gofer::Client> {
    let root = OwnedFd::from(std::fs::File::open(dir).unwrap());
    let (a, b) = gofer::socketpair().unwrap();
    std::thread::spawn(move || gofer::server::serve(root, b, read_only));
    Arc::new(gofer::Client::new(a))
}

/// An empty directory served WRITABLE as the root
/// (`Vfs::new_with_remote_root(client, false)`, as for OCI bundles with
/// root.readonly=false).
pub fn tree_rw() -> Tree {
    let dir = temp_dir("rw");
    let vfs = Vfs::new_with_remote_root(serve(&dir, false), false).unwrap();
    let ctx = FsContext::new(vfs.root());
    Tree { dir, vfs, ctx }
}

/// Workload memory for ioctl tests: a flat buffer at address 0x1000.
pub struct FakeMem(pub RefCell<Vec<u8>>);

impl UserIo for FakeMem {
    fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let m = self.0.borrow();
        let a = addr.checked_sub(0x1000).ok_or(Errno::EFAULT)? as usize;
        buf.copy_from_slice(m.get(a..a + buf.len()).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        let mut m = self.0.borrow_mut();
        let a = addr.checked_sub(0x1000).ok_or(Errno::EFAULT)? as usize;
        m.get_mut(a..a + buf.len())
            .ok_or(Errno::EFAULT)?
            .copy_from_slice(buf);
        Ok(())
    }
}

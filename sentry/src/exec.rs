//! execve: resolving the file (and `#!` interpreters), building a fresh address
//! space and loading the image into it. Nothing of the old image is touched until
//! the new one is complete, so a failed exec returns to the caller intact.

use std::sync::Arc;

use abi::Errno;
use platform::Regs;

use crate::kernel::Kernel;
use crate::loader::{self, LoadArgs};
use crate::mm::MemoryManager;
use crate::task::Credentials;

mod creds;
pub use creds::{exec_creds, ExecCreds, ExecFile, FileCaps, XATTR_SECURITY_CAPABILITY};

/// Nested `#!` interpreters allowed (Linux allows 4 levels of binfmt recursion).
const MAX_INTERP_DEPTH: usize = 4;

/// A loaded program, ready to replace a task's image.
pub struct Image {
    pub mm: Arc<MemoryManager>,
    pub regs: Regs,
    /// Resolved absolute path of the executable (not the interpreter of a script).
    pub exe_path: Vec<u8>,
    /// The task's new comm: the last component of the path as execve was
    /// given it (a symlink's own name, a script's name), as Linux's
    /// `kbasename(bprm->filename)`.
    pub comm: Vec<u8>,
    /// The credentials the task runs the image with, whether the exec was
    /// privilege-changing (AT_SECURE) and whether the task stays dumpable
    /// ([`exec_creds`]).
    pub creds: ExecCreds,
}

/// Loads `path` with `argv` and `envp` into a new address space, for a task
/// with credentials `creds` and the no_new_privs flag `no_new_privs` (which
/// decide the image's credentials: set-id files, capabilities).
#[allow(clippy::too_many_arguments)]
pub fn load_image(
    kernel: &Arc<Kernel>,
    fsctx: &fs::FsContext,
    creds: &Credentials,
    no_new_privs: bool,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    stack_size: u64,
) -> Result<Image, Errno> {
    let fcreds = fs_creds(creds);
    let mut path = path.to_vec();
    let execfn = path.clone();
    let comm = path.rsplit(|&c| c == b'/').next().unwrap_or(&[]).to_vec();
    let mut depth = 0;
    let (file, resolved) = loop {
        let (file, resolved) = kernel.vfs.open_exec(fsctx, &fcreds, &path)?;
        let mut head = [0u8; 256];
        let n = fs::ReadAt::read_at(file.as_ref(), 0, &mut head)?;
        if !head[..n].starts_with(b"#!") {
            break (file, resolved);
        }
        depth += 1;
        if depth > MAX_INTERP_DEPTH {
            return Err(Errno::ELOOP);
        }
        let (interp, arg) = loader::parse_shebang(&head[..n]).ok_or(Errno::ENOEXEC)?;
        // argv[0] is replaced by: interpreter, optional argument, script path.
        let mut new_argv = vec![interp.clone()];
        new_argv.extend(arg);
        new_argv.push(path.clone());
        new_argv.extend(argv.into_iter().skip(1));
        argv = new_argv;
        path = interp;
    };
    let new_creds = exec_creds(creds, &exec_file(&file)?, no_new_privs)?;
    let nc = &new_creds.creds;
    let space = kernel.platform.new_address_space().map_err(|e| {
        tracing::warn!("exec: cannot create address space: {e}");
        Errno::ENOMEM
    })?;
    let mm = Arc::new(MemoryManager::new(
        kernel.platform.memory_file().clone(),
        space,
        kernel.platform.max_user_address(),
    ));
    let mut random = [0u8; 16];
    platform::fill_random(&mut random);
    let open_interp = |p: &[u8]| -> Result<Arc<dyn fs::ReadAt>, Errno> {
        let (f, _) = kernel.vfs.open_exec(fsctx, &fcreds, p)?;
        Ok(f)
    };
    let loaded = loader::load(LoadArgs {
        mm: &mm,
        file,
        file_name: resolved.clone(),
        execfn,
        argv,
        envp,
        open_interp: &open_interp,
        uid: nc.uid,
        euid: nc.euid,
        gid: nc.gid,
        egid: nc.egid,
        secure: new_creds.secure,
        random,
        stack_size,
    })?;
    mm.set_brk_start(loaded.brk_start);
    Ok(Image {
        mm,
        regs: platform::initial_regs(loaded.entry, loaded.stack_pointer),
        exe_path: resolved,
        comm,
        creds: new_creds,
    })
}

/// The mode, owner, mount flags and capabilities of the file exec runs.
fn exec_file(file: &fs::OpenFile) -> Result<ExecFile, Errno> {
    let Some(loc) = file.location() else {
        return Ok(ExecFile::default());
    };
    let a = loc.attr();
    let nosuid = loc.mount.flags() & libc::MS_NOSUID != 0;
    // No stored capabilities (ENODATA) or none supported (EOPNOTSUPP): none.
    let caps = if nosuid {
        None
    } else {
        match loc.inode().getxattr(XATTR_SECURITY_CAPABILITY) {
            Ok(v) => Some(FileCaps::parse(&v)?),
            Err(_) => None,
        }
    };
    Ok(ExecFile {
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        nosuid,
        caps,
    })
}

/// The credentials the VFS checks permissions against: the fsuid/fsgid, the
/// supplementary groups and the effective capabilities.
pub fn fs_creds(c: &Credentials) -> fs::Creds {
    fs::Creds {
        uid: c.fsuid,
        gid: c.fsgid,
        groups: c.groups.clone(),
        caps: c.cap_effective,
    }
}

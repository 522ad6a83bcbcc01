//! Permission checks: the classic owner/group/other bits (no ACLs) and the
//! file-system capabilities that override them (fs/namei.c `generic_permission`,
//! fs/attr.c, fs/inode.c `inode_owner_or_capable`).
//!
//! The sandbox has a single user namespace in which every id is mapped, so
//! Linux's `capable_wrt_inode_uidgid` is plain [`Creds::capable`].

use abi::linux::{S_IFDIR, S_IFMT};
use abi::Errno;

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

// Capability numbers (linux/capability.h) the file-system checks use.
pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_LINUX_IMMUTABLE: u32 = 9;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_MKNOD: u32 = 27;

/// Every capability (up to CAP_CHECKPOINT_RESTORE, 40).
pub const ALL_CAPS: u64 = (1 << 41) - 1;

/// The identity a file-system access is checked against: `uid`/`gid` are the
/// task's fsuid/fsgid (or the real ids for access(2) without AT_EACCESS), `caps`
/// its effective capability set (bit n = capability n).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    /// The fsuid.
    pub uid: u32,
    /// The fsgid.
    pub gid: u32,
    pub groups: Vec<u32>,
    /// The effective capabilities.
    pub caps: u64,
}

impl Creds {
    /// Root (uid 0, gid 0) with every capability: internal callers and tests.
    pub fn root() -> Creds {
        Creds {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            caps: ALL_CAPS,
        }
    }

    /// An unprivileged identity (no capabilities).
    pub fn user(uid: u32, gid: u32, groups: Vec<u32>) -> Creds {
        Creds {
            uid,
            gid,
            groups,
            caps: 0,
        }
    }

    /// The fsuid.
    pub fn fsuid(&self) -> u32 {
        self.uid
    }

    /// The fsgid.
    pub fn fsgid(&self) -> u32 {
        self.gid
    }

    /// Whether capability `cap` is effective (Linux's `capable`).
    pub fn capable(&self, cap: u32) -> bool {
        cap < 64 && self.caps & (1 << cap) != 0
    }

    /// `in_group_p`: the fsgid or a supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// `inode_owner_or_capable`: the fsuid owns the file, or CAP_FOWNER.
    pub fn owner_or_capable(&self, file_uid: u32) -> bool {
        self.uid == file_uid || self.capable(CAP_FOWNER)
    }

    /// `in_group_or_capable`: a member of `gid`, or CAP_FSETID.
    pub fn in_group_or_capable(&self, gid: u32) -> bool {
        self.in_group(gid) || self.capable(CAP_FSETID)
    }
}

/// The owner/group/other bits alone (`acl_permission_check`).
fn mode_allows(creds: &Creds, mode: u32, uid: u32, gid: u32, mask: u32) -> bool {
    let bits = if creds.uid == uid {
        (mode >> 6) & 7
    } else if creds.in_group(gid) {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    bits & mask == mask
}

/// Checks `mask` (MAY_*) against a file's mode/owner (`generic_permission`):
/// the mode bits, then CAP_DAC_READ_SEARCH (read files; read and search
/// directories) and CAP_DAC_OVERRIDE (anything on a directory; read and write
/// on a file, and execute if any x bit is set).
pub fn check(creds: &Creds, mode: u32, uid: u32, gid: u32, mask: u32) -> Result<(), Errno> {
    let mask = mask & 7;
    if mode_allows(creds, mode, uid, gid, mask) {
        return Ok(());
    }
    if mode & S_IFMT == S_IFDIR {
        if mask & MAY_WRITE == 0 && creds.capable(CAP_DAC_READ_SEARCH) {
            return Ok(());
        }
        if creds.capable(CAP_DAC_OVERRIDE) {
            return Ok(());
        }
        return Err(Errno::EACCES);
    }
    if mask == MAY_READ && creds.capable(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    if (mask & MAY_EXEC == 0 || mode & 0o111 != 0) && creds.capable(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    Err(Errno::EACCES)
}

/// The mode bits a write, truncate or chown by `creds` leaves on a file
/// (`setattr_should_drop_suidgid` for regular files): None if unchanged.
/// Set-user-ID is dropped, and set-group-ID when group-executable or when the
/// writer is not in the file's group, unless the writer has CAP_FSETID.
pub fn mode_after_write(creds: &Creds, mode: u32, gid: u32) -> Option<u32> {
    if mode & S_IFMT != abi::linux::S_IFREG || creds.capable(CAP_FSETID) {
        return None;
    }
    let m = mode & 0o7777;
    let mut new = m & !0o4000;
    if m & 0o2000 != 0 && (m & 0o010 != 0 || !creds.in_group(gid)) {
        new &= !0o2000;
    }
    (new != m).then_some(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::linux::S_IFREG;

    #[test]
    fn owner_group_other() {
        let u = Creds::user(1000, 100, vec![5]);
        assert!(check(&u, S_IFREG | 0o600, 1000, 0, MAY_READ | MAY_WRITE).is_ok());
        assert_eq!(
            check(&u, S_IFREG | 0o066, 1000, 100, MAY_READ),
            Err(Errno::EACCES)
        );
        assert!(check(&u, S_IFREG | 0o040, 0, 5, MAY_READ).is_ok());
        assert!(check(&u, S_IFREG | 0o004, 0, 0, MAY_READ).is_ok());
        assert_eq!(
            check(&u, S_IFREG | 0o004, 0, 0, MAY_WRITE),
            Err(Errno::EACCES)
        );
        let r = Creds::root();
        assert!(check(&r, S_IFREG, 5, 5, MAY_READ | MAY_WRITE).is_ok());
        assert_eq!(
            check(&r, S_IFREG | 0o644, 5, 5, MAY_EXEC),
            Err(Errno::EACCES)
        );
        assert!(check(&r, S_IFREG | 0o010, 5, 5, MAY_EXEC).is_ok());
        assert!(check(&r, S_IFDIR, 5, 5, MAY_EXEC).is_ok());
    }

    #[test]
    fn capabilities_override_dac() {
        let none = Creds {
            caps: 0,
            ..Creds::root()
        };
        assert_eq!(
            check(&none, S_IFREG | 0o600, 5, 5, MAY_READ),
            Err(Errno::EACCES)
        );
        assert_eq!(
            check(&none, S_IFDIR | 0o700, 5, 5, MAY_EXEC),
            Err(Errno::EACCES)
        );
        // Root still owns its own files.
        assert!(check(&none, S_IFREG | 0o600, 0, 5, MAY_READ).is_ok());
        let rs = Creds {
            caps: 1 << CAP_DAC_READ_SEARCH,
            ..Creds::root()
        };
        assert!(check(&rs, S_IFREG | 0o600, 5, 5, MAY_READ).is_ok());
        assert_eq!(
            check(&rs, S_IFREG | 0o600, 5, 5, MAY_WRITE),
            Err(Errno::EACCES)
        );
        assert_eq!(
            check(&rs, S_IFREG | 0o600, 5, 5, MAY_READ | MAY_WRITE),
            Err(Errno::EACCES)
        );
        assert!(check(&rs, S_IFDIR | 0o700, 5, 5, MAY_READ | MAY_EXEC).is_ok());
        assert_eq!(
            check(&rs, S_IFDIR | 0o700, 5, 5, MAY_WRITE),
            Err(Errno::EACCES)
        );
        let ov = Creds {
            caps: 1 << CAP_DAC_OVERRIDE,
            ..Creds::root()
        };
        assert!(check(&ov, S_IFREG | 0o600, 5, 5, MAY_READ | MAY_WRITE).is_ok());
        assert_eq!(
            check(&ov, S_IFREG | 0o600, 5, 5, MAY_EXEC),
            Err(Errno::EACCES)
        );
        assert!(check(&ov, S_IFDIR, 5, 5, MAY_WRITE | MAY_EXEC).is_ok());
    }

    #[test]
    fn suid_dropped_on_write() {
        let u = Creds::user(1000, 100, vec![]);
        assert_eq!(mode_after_write(&u, S_IFREG | 0o4755, 100), Some(0o755));
        assert_eq!(mode_after_write(&u, S_IFREG | 0o2755, 100), Some(0o755));
        assert_eq!(mode_after_write(&u, S_IFREG | 0o2745, 100), None);
        assert_eq!(mode_after_write(&u, S_IFREG | 0o2745, 7), Some(0o745));
        assert_eq!(mode_after_write(&Creds::root(), S_IFREG | 0o6755, 7), None);
        assert_eq!(mode_after_write(&u, S_IFDIR | 0o2755, 7), None);
    }
}

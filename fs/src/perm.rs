//! Permission checks (the classic owner/group/other bits; no ACLs, no capabilities
//! beyond "uid 0 is root").

use abi::linux::{S_IFDIR, S_IFMT};
use abi::Errno;

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

/// The identity a file-system access is checked against (the fsuid/fsgid, i.e. the
/// effective ids, or the real ids for access(2) without AT_EACCESS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Creds {
    /// Root (uid 0, gid 0).
    pub fn root() -> Creds {
        Creds::default()
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Checks `mask` (MAY_*) against a file's mode/owner. Root passes everything except
/// exec of a non-directory with no x bit at all.
pub fn check(creds: &Creds, mode: u32, uid: u32, gid: u32, mask: u32) -> Result<(), Errno> {
    let mask = mask & 7;
    if creds.uid == 0 {
        if mask & MAY_EXEC != 0 && mode & S_IFMT != S_IFDIR && mode & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        return Ok(());
    }
    let bits = if creds.uid == uid {
        (mode >> 6) & 7
    } else if creds.in_group(gid) {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    if bits & mask == mask {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::linux::S_IFREG;

    #[test]
    fn owner_group_other() {
        let u = Creds {
            uid: 1000,
            gid: 100,
            groups: vec![5],
        };
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
}

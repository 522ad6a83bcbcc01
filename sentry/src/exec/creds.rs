//! The credentials a task has after execve: Linux's `bprm_fill_uid` (set-user-ID
//! and set-group-ID files), `cap_bprm_creds_from_file` (security/commoncap.c:
//! the capabilities(7) transformation, file capabilities, no_new_privs) and the
//! dumpability and AT_SECURE that follow from them.

use abi::Errno;

use crate::task::{Credentials, CAP_FULL_SET};

/// securebits: root gets no capabilities by being root (SECBIT_NOROOT).
const SECBIT_NOROOT: u32 = 1 << 0;
/// securebits: PR_SET_KEEPCAPS, cleared by every exec.
const SECBIT_KEEP_CAPS: u32 = 1 << 4;

/// The `security.capability` extended attribute (linux/capability.h).
pub const XATTR_SECURITY_CAPABILITY: &[u8] = b"security.capability";
const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;
const VFS_CAP_REVISION_1: u32 = 0x0100_0000;
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;

/// A file's capabilities (the `security.capability` xattr, capabilities(7)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileCaps {
    pub permitted: u64,
    pub inheritable: u64,
    /// The effective bit: the new effective set is the new permitted set.
    pub effective: bool,
}

impl FileCaps {
    /// Decodes a `vfs_cap_data` / `vfs_ns_cap_data` value (revisions 1 to 3);
    /// EINVAL if malformed (Linux then fails the exec).
    pub fn parse(v: &[u8]) -> Result<FileCaps, Errno> {
        let word = |i: usize| -> Result<u32, Errno> {
            v.get(i * 4..i * 4 + 4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                .ok_or(Errno::EINVAL)
        };
        let magic = word(0)?;
        let (len, words) = match magic & VFS_CAP_REVISION_MASK {
            VFS_CAP_REVISION_1 => (12, 1),
            VFS_CAP_REVISION_2 => (20, 2),
            // The root id of revision 3 names the owning user namespace's root;
            // the sandbox has one user namespace.
            VFS_CAP_REVISION_3 => (24, 2),
            _ => return Err(Errno::EINVAL),
        };
        if v.len() != len {
            return Err(Errno::EINVAL);
        }
        let (mut permitted, mut inheritable) = (0u64, 0u64);
        for i in 0..words {
            permitted |= (word(1 + 2 * i)? as u64) << (32 * i);
            inheritable |= (word(2 + 2 * i)? as u64) << (32 * i);
        }
        Ok(FileCaps {
            permitted: permitted & CAP_FULL_SET,
            inheritable: inheritable & CAP_FULL_SET,
            effective: magic & VFS_CAP_FLAGS_EFFECTIVE != 0,
        })
    }
}

/// What of the executable decides the new credentials (the file exec runs in
/// the end: the interpreter of a `#!` script, never the script).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecFile {
    /// st_mode (S_ISUID, S_ISGID, S_IXGRP matter).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The file's mount is MS_NOSUID: set-id bits and file capabilities are
    /// ignored.
    pub nosuid: bool,
    /// Its file capabilities, if it has any.
    pub caps: Option<FileCaps>,
}

/// The outcome of [`exec_creds`].
#[derive(Clone, Debug)]
pub struct ExecCreds {
    pub creds: Credentials,
    /// bprm->secureexec: AT_SECURE in the auxiliary vector.
    pub secure: bool,
    /// Whether the process stays dumpable (PR_GET_DUMPABLE 1); false when
    /// exec changed its identity or privileges (Linux sets suid_dumpable,
    /// 0 by default).
    pub dumpable: bool,
    /// Whether the credentials changed so that the parent-death signal and
    /// similar ties to the old identity are dropped (commit_creds).
    pub privileged: bool,
}

/// The credentials after exec of `file` by a task with credentials `old` and
/// the no_new_privs flag `no_new_privs`, as Linux's `bprm_fill_uid` and
/// `cap_bprm_creds_from_file` compute them (ptrace is not considered: a traced
/// task execs as an untraced one). EPERM when the file's capabilities have the
/// effective bit and cannot all be granted; EINVAL for malformed ones.
pub fn exec_creds(
    old: &Credentials,
    file: &ExecFile,
    no_new_privs: bool,
) -> Result<ExecCreds, Errno> {
    let mut new = old.clone();
    // bprm_fill_uid.
    if !file.nosuid && !no_new_privs {
        if file.mode & libc::S_ISUID != 0 {
            new.euid = file.uid;
        }
        if file.mode & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP {
            new.egid = file.gid;
        }
    }

    // get_file_caps: pP' = (X & fP) | (pI & fI).
    new.cap_permitted = 0;
    let mut effective = false;
    let mut has_fcap = false;
    if let Some(fc) = file.caps.filter(|_| !file.nosuid) {
        has_fcap = true;
        effective = fc.effective;
        new.cap_permitted =
            (new.cap_bounding & fc.permitted) | (new.cap_inheritable & fc.inheritable);
        if effective && fc.permitted & !new.cap_permitted != 0 {
            // A capability-dumb binary (effective bit) that would not get
            // every capability it names is refused.
            return Err(Errno::EPERM);
        }
    }

    // handle_privileged_root.
    let root_privileged = old.securebits & SECBIT_NOROOT == 0;
    let is_suid_root = new.uid != 0 && new.euid == 0;
    if root_privileged && !(has_fcap && is_suid_root) {
        if new.euid == 0 || new.uid == 0 {
            new.cap_permitted = old.cap_bounding | old.cap_inheritable;
        }
        if new.euid == 0 {
            effective = true;
        }
    }

    let gained = |n: &Credentials| n.cap_permitted & !old.cap_permitted != 0;
    let is_setid = new.euid != old.uid || new.egid != old.gid;
    // With no_new_privs nothing is gained (the LSM_UNSAFE_NO_NEW_PRIVS
    // downgrade; set-id bits were already ignored). `is_setid` keeps its
    // value from before, as Linux's does.
    if (is_setid || gained(&new)) && no_new_privs {
        new.euid = new.uid;
        new.egid = new.gid;
        new.cap_permitted &= old.cap_permitted;
    }

    new.suid = new.euid;
    new.fsuid = new.euid;
    new.sgid = new.egid;
    new.fsgid = new.egid;

    // File capabilities or a set-id exec cancel the ambient set.
    if has_fcap || is_setid {
        new.cap_ambient = 0;
    }
    new.cap_permitted |= new.cap_ambient;
    new.cap_effective = if effective {
        new.cap_permitted
    } else {
        new.cap_ambient
    };
    new.securebits &= !SECBIT_KEEP_CAPS;

    let secure =
        is_setid || (new.uid != 0 && (effective || new.cap_permitted & !new.cap_ambient != 0));
    // commit_creds's test, and begin_new_exec's (a task already running
    // with differing real and effective ids stays undumpable).
    let privileged = new.euid != old.euid
        || new.egid != old.egid
        || new.fsuid != old.fsuid
        || new.fsgid != old.fsgid
        || gained(&new);
    let dumpable = !privileged && old.euid == old.uid && old.egid == old.gid;
    Ok(ExecCreds {
        creds: new,
        secure,
        dumpable,
        privileged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_BIND: u64 = 1 << 10;

    fn user(uid: u32, gid: u32) -> Credentials {
        Credentials {
            uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            gid,
            egid: gid,
            sgid: gid,
            fsgid: gid,
            cap_bounding: CAP_FULL_SET,
            ..Default::default()
        }
    }

    fn root() -> Credentials {
        Credentials {
            cap_effective: CAP_FULL_SET,
            cap_permitted: CAP_FULL_SET,
            ..user(0, 0)
        }
    }

    fn file(mode: u32, uid: u32, gid: u32) -> ExecFile {
        ExecFile {
            mode: libc::S_IFREG | mode,
            uid,
            gid,
            ..Default::default()
        }
    }

    fn ids(c: &Credentials) -> [u32; 8] {
        [
            c.uid, c.euid, c.suid, c.fsuid, c.gid, c.egid, c.sgid, c.fsgid,
        ]
    }

    #[test]
    fn plain_exec_keeps_ids() {
        let r = exec_creds(&user(1000, 100), &file(0o755, 0, 0), false).unwrap();
        assert_eq!(ids(&r.creds), [1000, 1000, 1000, 1000, 100, 100, 100, 100]);
        assert_eq!(r.creds.cap_permitted, 0);
        assert!(!r.secure);
        assert!(r.dumpable);
    }

    #[test]
    fn setuid_file() {
        let r = exec_creds(&user(1000, 100), &file(0o4755, 1234, 1234), false).unwrap();
        assert_eq!(ids(&r.creds), [1000, 1234, 1234, 1234, 100, 100, 100, 100]);
        assert_eq!(r.creds.cap_effective, 0);
        assert!(r.secure);
        assert!(!r.dumpable);
    }

    #[test]
    fn setuid_root_file_gives_full_caps() {
        let r = exec_creds(&user(1000, 100), &file(0o4755, 0, 0), false).unwrap();
        assert_eq!(ids(&r.creds)[..4], [1000, 0, 0, 0]);
        assert_eq!(r.creds.cap_permitted, CAP_FULL_SET);
        assert_eq!(r.creds.cap_effective, CAP_FULL_SET);
        assert!(r.secure);
        // SECBIT_NOROOT: no capabilities for root.
        let mut old = user(1000, 100);
        old.securebits = SECBIT_NOROOT;
        let r = exec_creds(&old, &file(0o4755, 0, 0), false).unwrap();
        assert_eq!(r.creds.euid, 0);
        assert_eq!(r.creds.cap_permitted, 0);
    }

    #[test]
    fn setgid_needs_group_exec() {
        let r = exec_creds(&user(1000, 100), &file(0o2755, 0, 1234), false).unwrap();
        assert_eq!(
            ids(&r.creds),
            [1000, 1000, 1000, 1000, 100, 1234, 1234, 1234]
        );
        assert!(r.secure);
        // S_ISGID without S_IXGRP marks mandatory locking, not set-group-ID.
        let r = exec_creds(&user(1000, 100), &file(0o2745, 0, 1234), false).unwrap();
        assert_eq!(r.creds.egid, 100);
        assert!(!r.secure);
    }

    #[test]
    fn nosuid_and_no_new_privs_ignore_set_id() {
        let mut f = file(0o6755, 0, 0);
        f.nosuid = true;
        let r = exec_creds(&user(1000, 100), &f, false).unwrap();
        assert_eq!(ids(&r.creds), ids(&user(1000, 100)));
        assert_eq!(r.creds.cap_permitted, 0);
        assert!(!r.secure);
        let r = exec_creds(&user(1000, 100), &file(0o6755, 0, 0), true).unwrap();
        assert_eq!(ids(&r.creds), ids(&user(1000, 100)));
        assert_eq!(r.creds.cap_permitted, 0);
        assert!(!r.secure);
        assert!(r.dumpable);
    }

    #[test]
    fn root_keeps_full_caps() {
        let r = exec_creds(&root(), &file(0o755, 1, 1), false).unwrap();
        assert_eq!(r.creds.cap_effective, CAP_FULL_SET);
        assert!(!r.secure);
        // A limited bounding set limits what root gets.
        let mut old = root();
        old.cap_bounding = NET_BIND;
        let r = exec_creds(&old, &file(0o755, 1, 1), false).unwrap();
        assert_eq!(r.creds.cap_permitted, NET_BIND);
        assert_eq!(r.creds.cap_effective, NET_BIND);
    }

    #[test]
    fn root_exec_of_setuid_user_file() {
        let r = exec_creds(&root(), &file(0o4755, 1234, 1234), false).unwrap();
        assert_eq!(ids(&r.creds)[..4], [0, 1234, 1234, 1234]);
        assert_eq!(r.creds.cap_permitted, CAP_FULL_SET);
        assert_eq!(r.creds.cap_effective, 0);
        assert!(r.secure);
    }

    #[test]
    fn non_root_loses_caps_without_ambient() {
        let mut old = user(1000, 100);
        old.cap_permitted = NET_BIND;
        old.cap_effective = NET_BIND;
        old.cap_inheritable = NET_BIND;
        old.securebits = SECBIT_KEEP_CAPS;
        let r = exec_creds(&old, &file(0o755, 0, 0), false).unwrap();
        assert_eq!(r.creds.cap_permitted, 0);
        assert_eq!(r.creds.cap_effective, 0);
        assert_eq!(r.creds.cap_inheritable, NET_BIND);
        assert_eq!(r.creds.securebits, 0);
    }

    #[test]
    fn ambient_kept_unless_set_id() {
        let mut old = user(1000, 100);
        old.cap_permitted = NET_BIND;
        old.cap_effective = NET_BIND;
        old.cap_inheritable = NET_BIND;
        old.cap_ambient = NET_BIND;
        let r = exec_creds(&old, &file(0o755, 0, 0), false).unwrap();
        assert_eq!(r.creds.cap_permitted, NET_BIND);
        assert_eq!(r.creds.cap_effective, NET_BIND);
        assert_eq!(r.creds.cap_ambient, NET_BIND);
        assert!(!r.secure);
        assert!(r.dumpable);
        let r = exec_creds(&old, &file(0o4755, 1234, 0), false).unwrap();
        assert_eq!(r.creds.cap_permitted, 0);
        assert_eq!(r.creds.cap_effective, 0);
        assert_eq!(r.creds.cap_ambient, 0);
        assert!(r.secure);
        // File capabilities also clear the ambient set.
        let mut f = file(0o755, 0, 0);
        f.caps = Some(FileCaps::default());
        let r = exec_creds(&old, &f, false).unwrap();
        assert_eq!(r.creds.cap_ambient, 0);
        assert_eq!(r.creds.cap_permitted, 0);
    }

    #[test]
    fn file_capabilities() {
        let mut f = file(0o755, 0, 0);
        f.caps = Some(FileCaps {
            permitted: NET_BIND,
            inheritable: 0,
            effective: true,
        });
        let r = exec_creds(&user(1000, 100), &f, false).unwrap();
        assert_eq!(r.creds.cap_permitted, NET_BIND);
        assert_eq!(r.creds.cap_effective, NET_BIND);
        assert!(r.secure);
        assert!(!r.dumpable);
        // no_new_privs: nothing gained.
        let r = exec_creds(&user(1000, 100), &f, true).unwrap();
        assert_eq!(r.creds.cap_permitted, 0);
        // Ignored on a nosuid mount.
        f.nosuid = true;
        let r = exec_creds(&user(1000, 100), &f, false).unwrap();
        assert_eq!(r.creds.cap_permitted, 0);
        assert!(!r.secure);
        // Not all granted (bounding set) with the effective bit: EPERM.
        f.nosuid = false;
        let mut old = user(1000, 100);
        old.cap_bounding = 0;
        assert_eq!(exec_creds(&old, &f, false).unwrap_err(), Errno::EPERM);
    }

    #[test]
    fn no_new_privs_downgrades_differing_euid() {
        let mut old = user(1000, 100);
        old.euid = 0;
        old.cap_permitted = CAP_FULL_SET;
        let r = exec_creds(&old, &file(0o755, 0, 0), true).unwrap();
        assert_eq!(ids(&r.creds)[..4], [1000, 1000, 1000, 1000]);
        // Without no_new_privs the effective uid stays (and is saved).
        let r = exec_creds(&old, &file(0o755, 0, 0), false).unwrap();
        assert_eq!(ids(&r.creds)[..4], [1000, 0, 0, 0]);
        assert!(!r.dumpable);
    }

    #[test]
    fn parse_file_caps() {
        let mut v = Vec::new();
        for w in [VFS_CAP_REVISION_2 | 1, 1 << 10, 0, 1, 0] {
            v.extend_from_slice(&u32::to_le_bytes(w));
        }
        let c = FileCaps::parse(&v).unwrap();
        assert_eq!(c.permitted, NET_BIND | 1 << 32);
        assert!(c.effective);
        v.extend_from_slice(&[0; 4]);
        assert_eq!(FileCaps::parse(&v).unwrap_err(), Errno::EINVAL);
        v[3] = 3;
        assert_eq!(FileCaps::parse(&v).unwrap(), c);
        assert_eq!(FileCaps::parse(&[1, 2]).unwrap_err(), Errno::EINVAL);
    }
}

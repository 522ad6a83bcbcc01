//! Credentials: the set*id family, supplementary groups and capabilities
//! (kernel/sys.c, kernel/groups.c, kernel/capability.c, security/commoncap.c).
//!
//! Root in the sandbox is root only inside it: these calls change the sentry's
//! record of the task's identity, never the host credentials of any process.

use abi::sysno::*;
use abi::{Errno, SysResult};
use sentry::task::{Credentials, CAP_FULL_SET, CAP_LAST_CAP};
use sentry::Task;

use crate::{Arg, Args, Table};

pub(crate) fn register(t: &mut Table) {
    t.add(GETUID, |t, _| Ok(t.creds.uid as u64), &[]);
    t.add(GETEUID, |t, _| Ok(t.creds.euid as u64), &[]);
    t.add(GETGID, |t, _| Ok(t.creds.gid as u64), &[]);
    t.add(GETEGID, |t, _| Ok(t.creds.egid as u64), &[]);
    t.add(GETRESUID, sys_getresuid, &[Arg::Hex, Arg::Hex, Arg::Hex]);
    t.add(GETRESGID, sys_getresgid, &[Arg::Hex, Arg::Hex, Arg::Hex]);
    t.add(
        SETUID,
        |t, a| setuid(&mut t.creds, a.u32(0)).map(|_| 0),
        &[Arg::UDec],
    );
    t.add(
        SETGID,
        |t, a| setgid(&mut t.creds, a.u32(0)).map(|_| 0),
        &[Arg::UDec],
    );
    t.add(
        SETREUID,
        |t, a| setreuid(&mut t.creds, a.u32(0), a.u32(1)).map(|_| 0),
        &[Arg::Dec, Arg::Dec],
    );
    t.add(
        SETREGID,
        |t, a| setregid(&mut t.creds, a.u32(0), a.u32(1)).map(|_| 0),
        &[Arg::Dec, Arg::Dec],
    );
    t.add(
        SETRESUID,
        |t, a| setresuid(&mut t.creds, a.u32(0), a.u32(1), a.u32(2)).map(|_| 0),
        &[Arg::Dec, Arg::Dec, Arg::Dec],
    );
    t.add(
        SETRESGID,
        |t, a| setresgid(&mut t.creds, a.u32(0), a.u32(1), a.u32(2)).map(|_| 0),
        &[Arg::Dec, Arg::Dec, Arg::Dec],
    );
    t.add(
        SETFSUID,
        |t, a| Ok(setfsuid(&mut t.creds, a.u32(0)) as u64),
        &[Arg::Dec],
    );
    t.add(
        SETFSGID,
        |t, a| Ok(setfsgid(&mut t.creds, a.u32(0)) as u64),
        &[Arg::Dec],
    );
    t.add(GETGROUPS, sys_getgroups, &[Arg::Dec, Arg::Hex]);
    t.add(SETGROUPS, sys_setgroups, &[Arg::Dec, Arg::Hex]);
    t.add(CAPGET, sys_capget, &[Arg::Hex, Arg::Hex]);
    t.add(CAPSET, sys_capset, &[Arg::Hex, Arg::Hex]);
}

pub(crate) const CAP_CHOWN: u32 = 0;
pub(crate) const CAP_DAC_OVERRIDE: u32 = 1;
pub(crate) const CAP_DAC_READ_SEARCH: u32 = 2;
pub(crate) const CAP_FOWNER: u32 = 3;
pub(crate) const CAP_FSETID: u32 = 4;
pub(crate) const CAP_SETGID: u32 = 6;
pub(crate) const CAP_SETUID: u32 = 7;
pub(crate) const CAP_SETPCAP: u32 = 8;
pub(crate) const CAP_LINUX_IMMUTABLE: u32 = 9;
pub(crate) const CAP_SYS_NICE: u32 = 23;
pub(crate) const CAP_SYS_RESOURCE: u32 = 24;
pub(crate) const CAP_MKNOD: u32 = 27;
pub(crate) const CAP_MAC_OVERRIDE: u32 = 32;

/// The capabilities that follow fsuid 0 (CAP_FS_SET).
const CAP_FS_SET: u64 = 1 << CAP_CHOWN
    | 1 << CAP_DAC_OVERRIDE
    | 1 << CAP_DAC_READ_SEARCH
    | 1 << CAP_FOWNER
    | 1 << CAP_FSETID
    | 1 << CAP_LINUX_IMMUTABLE
    | 1 << CAP_MKNOD
    | 1 << CAP_MAC_OVERRIDE;

/// Securebits (linux/securebits.h); each lock bit is its flag's bit + 1.
pub(crate) const SECBIT_NOROOT: u32 = 1 << 0;
pub(crate) const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
pub(crate) const SECBIT_KEEP_CAPS: u32 = 1 << 4;
pub(crate) const SECBIT_KEEP_CAPS_LOCKED: u32 = 1 << 5;
pub(crate) const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
pub(crate) const SECURE_ALL_BITS: u32 =
    SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS | SECBIT_NO_CAP_AMBIENT_RAISE;
pub(crate) const SECURE_ALL_LOCKS: u32 = SECURE_ALL_BITS << 1;

/// The invalid id, meaning "unchanged" where an id may be left out.
const NO_ID: u32 = u32::MAX;

/// Largest supplementary group list (NGROUPS_MAX).
const NGROUPS_MAX: usize = 65536;

/// Whether capability number `n` (a syscall argument) names a capability.
pub(crate) fn cap_valid(n: u64) -> bool {
    n <= CAP_LAST_CAP as u64
}

// ---- set*id ----
//
// Every id except -1 is valid: the sandbox's user namespace maps them all.

/// Capability fix-up after a [res]uid change (cap_emulate_setxuid): leaving
/// root drops the permitted and effective sets unless SECBIT_KEEP_CAPS, and the
/// effective set follows euid to and from 0.
fn fix_caps_after_setuid(new: &mut Credentials, old: &Credentials) {
    if new.securebits & SECBIT_NO_SETUID_FIXUP != 0 {
        return;
    }
    let was_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
    let is_root = new.uid == 0 || new.euid == 0 || new.suid == 0;
    if was_root && !is_root {
        if new.securebits & SECBIT_KEEP_CAPS == 0 {
            new.cap_permitted = 0;
            new.cap_effective = 0;
        }
        new.cap_ambient = 0;
    }
    if old.euid == 0 && new.euid != 0 {
        new.cap_effective = 0;
    }
    if old.euid != 0 && new.euid == 0 {
        new.cap_effective = new.cap_permitted;
    }
}

/// Applies `change` to a copy of `c` and commits it with the capability fix-up.
fn commit_uid_change(c: &mut Credentials, change: impl FnOnce(&mut Credentials)) {
    let old = c.clone();
    change(c);
    fix_caps_after_setuid(c, &old);
}

pub(crate) fn setuid(c: &mut Credentials, uid: u32) -> Result<(), Errno> {
    if uid == NO_ID {
        return Err(Errno::EINVAL);
    }
    if c.has_capability(CAP_SETUID) {
        commit_uid_change(c, |n| {
            (n.uid, n.euid, n.suid, n.fsuid) = (uid, uid, uid, uid)
        });
    } else if uid == c.uid || uid == c.suid {
        commit_uid_change(c, |n| (n.euid, n.fsuid) = (uid, uid));
    } else {
        return Err(Errno::EPERM);
    }
    Ok(())
}

pub(crate) fn setreuid(c: &mut Credentials, ruid: u32, euid: u32) -> Result<(), Errno> {
    let cap = c.has_capability(CAP_SETUID);
    if ruid != NO_ID && ruid != c.uid && ruid != c.euid && !cap {
        return Err(Errno::EPERM);
    }
    if euid != NO_ID && euid != c.uid && euid != c.euid && euid != c.suid && !cap {
        return Err(Errno::EPERM);
    }
    let old_uid = c.uid;
    commit_uid_change(c, |n| {
        if ruid != NO_ID {
            n.uid = ruid;
        }
        if euid != NO_ID {
            n.euid = euid;
        }
        // The saved uid follows euid when the real uid is set or euid moves away
        // from the (old) real uid.
        if ruid != NO_ID || (euid != NO_ID && euid != old_uid) {
            n.suid = n.euid;
        }
        n.fsuid = n.euid;
    });
    Ok(())
}

pub(crate) fn setresuid(c: &mut Credentials, ruid: u32, euid: u32, suid: u32) -> Result<(), Errno> {
    let unchanged = (ruid == NO_ID || ruid == c.uid)
        && (euid == NO_ID || (euid == c.euid && euid == c.fsuid))
        && (suid == NO_ID || suid == c.suid);
    if unchanged {
        return Ok(());
    }
    let is_new = |id: u32| id != NO_ID && id != c.uid && id != c.euid && id != c.suid;
    if (is_new(ruid) || is_new(euid) || is_new(suid)) && !c.has_capability(CAP_SETUID) {
        return Err(Errno::EPERM);
    }
    commit_uid_change(c, |n| {
        if ruid != NO_ID {
            n.uid = ruid;
        }
        if euid != NO_ID {
            n.euid = euid;
        }
        if suid != NO_ID {
            n.suid = suid;
        }
        n.fsuid = n.euid;
    });
    Ok(())
}

/// setfsuid(2): returns the old fsuid whether or not the change is allowed.
pub(crate) fn setfsuid(c: &mut Credentials, uid: u32) -> u32 {
    let old = c.fsuid;
    if uid == NO_ID || uid == old {
        return old;
    }
    if uid == c.uid || uid == c.euid || uid == c.suid || c.has_capability(CAP_SETUID) {
        c.fsuid = uid;
        // The file-system capabilities follow fsuid 0 (cap_task_fix_setuid, LSM_SETID_FS).
        if c.securebits & SECBIT_NO_SETUID_FIXUP == 0 {
            if old == 0 && uid != 0 {
                c.cap_effective &= !CAP_FS_SET;
            }
            if old != 0 && uid == 0 {
                c.cap_effective |= c.cap_permitted & CAP_FS_SET;
            }
        }
    }
    old
}

pub(crate) fn setgid(c: &mut Credentials, gid: u32) -> Result<(), Errno> {
    if gid == NO_ID {
        return Err(Errno::EINVAL);
    }
    if c.has_capability(CAP_SETGID) {
        (c.gid, c.egid, c.sgid, c.fsgid) = (gid, gid, gid, gid);
    } else if gid == c.gid || gid == c.sgid {
        (c.egid, c.fsgid) = (gid, gid);
    } else {
        return Err(Errno::EPERM);
    }
    Ok(())
}

pub(crate) fn setregid(c: &mut Credentials, rgid: u32, egid: u32) -> Result<(), Errno> {
    let cap = c.has_capability(CAP_SETGID);
    if rgid != NO_ID && rgid != c.gid && rgid != c.egid && !cap {
        return Err(Errno::EPERM);
    }
    if egid != NO_ID && egid != c.gid && egid != c.egid && egid != c.sgid && !cap {
        return Err(Errno::EPERM);
    }
    let old_gid = c.gid;
    if rgid != NO_ID {
        c.gid = rgid;
    }
    if egid != NO_ID {
        c.egid = egid;
    }
    if rgid != NO_ID || (egid != NO_ID && egid != old_gid) {
        c.sgid = c.egid;
    }
    c.fsgid = c.egid;
    Ok(())
}

pub(crate) fn setresgid(c: &mut Credentials, rgid: u32, egid: u32, sgid: u32) -> Result<(), Errno> {
    let unchanged = (rgid == NO_ID || rgid == c.gid)
        && (egid == NO_ID || (egid == c.egid && egid == c.fsgid))
        && (sgid == NO_ID || sgid == c.sgid);
    if unchanged {
        return Ok(());
    }
    let is_new = |id: u32| id != NO_ID && id != c.gid && id != c.egid && id != c.sgid;
    if (is_new(rgid) || is_new(egid) || is_new(sgid)) && !c.has_capability(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    if rgid != NO_ID {
        c.gid = rgid;
    }
    if egid != NO_ID {
        c.egid = egid;
    }
    if sgid != NO_ID {
        c.sgid = sgid;
    }
    c.fsgid = c.egid;
    Ok(())
}

/// setfsgid(2): returns the old fsgid whether or not the change is allowed.
pub(crate) fn setfsgid(c: &mut Credentials, gid: u32) -> u32 {
    let old = c.fsgid;
    if gid != NO_ID
        && (gid == c.gid
            || gid == c.egid
            || gid == c.sgid
            || gid == c.fsgid
            || c.has_capability(CAP_SETGID))
    {
        c.fsgid = gid;
    }
    old
}

fn sys_getresuid(t: &mut Task, a: &Args) -> SysResult {
    let c = &t.creds;
    let (r, e, s) = (c.uid, c.euid, c.suid);
    t.copy_out_u32(a.u64(0), r)?;
    t.copy_out_u32(a.u64(1), e)?;
    t.copy_out_u32(a.u64(2), s)?;
    Ok(0)
}

fn sys_getresgid(t: &mut Task, a: &Args) -> SysResult {
    let c = &t.creds;
    let (r, e, s) = (c.gid, c.egid, c.sgid);
    t.copy_out_u32(a.u64(0), r)?;
    t.copy_out_u32(a.u64(1), e)?;
    t.copy_out_u32(a.u64(2), s)?;
    Ok(0)
}

// ---- supplementary groups ----

fn sys_getgroups(t: &mut Task, a: &Args) -> SysResult {
    let size = a.i32(0);
    let n = t.creds.groups.len();
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(n as u64);
    }
    if (size as usize) < n {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = t
        .creds
        .groups
        .iter()
        .flat_map(|g| g.to_le_bytes())
        .collect();
    t.copy_out(a.u64(1), &bytes)?;
    Ok(n as u64)
}

fn sys_setgroups(t: &mut Task, a: &Args) -> SysResult {
    // Linux checks the capability before the size.
    if !t.creds.has_capability(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let n = a.u32(0) as usize;
    if n > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let bytes = t.copy_in_vec(a.u64(1), n * 4)?;
    let groups: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if groups.contains(&NO_ID) {
        return Err(Errno::EINVAL);
    }
    t.creds.groups = groups;
    Ok(0)
}

// ---- capget / capset ----

const LINUX_CAPABILITY_VERSION_1: u32 = 0x1998_0330;
const LINUX_CAPABILITY_VERSION_2: u32 = 0x2007_1026;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Checks the header's version and returns how many 32-bit words each set
/// takes. An unknown version is EINVAL, and the kernel writes its preferred
/// version back so the caller can retry (cap_validate_magic).
fn cap_words(t: &Task, header: u64) -> Result<usize, Errno> {
    match t.copy_in_u32(header)? {
        LINUX_CAPABILITY_VERSION_1 => Ok(1),
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => Ok(2),
        _ => {
            t.copy_out_u32(header, LINUX_CAPABILITY_VERSION_3)?;
            Err(Errno::EINVAL)
        }
    }
}

fn sys_capget(t: &mut Task, a: &Args) -> SysResult {
    let (header, data) = (a.u64(0), a.u64(1));
    let words = match cap_words(t, header) {
        // A NULL data pointer is how callers probe the version.
        Err(Errno::EINVAL) if data == 0 => return Ok(0),
        Err(e) => return Err(e),
        Ok(_) if data == 0 => return Ok(0),
        Ok(w) => w,
    };
    let pid = t.copy_in_u32(header + 4)? as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid != 0 && pid != t.tid && t.kernel.task(pid).is_none() {
        return Err(Errno::ESRCH);
    }
    // Approximation: another task's credentials are not reachable from here, so
    // a query about another live task reports the caller's sets.
    let c = &t.creds;
    let mut out = Vec::with_capacity(words * 12);
    for w in 0..words {
        for set in [c.cap_effective, c.cap_permitted, c.cap_inheritable] {
            out.extend_from_slice(&((set >> (32 * w)) as u32).to_le_bytes());
        }
    }
    t.copy_out(data, &out)?;
    Ok(0)
}

fn sys_capset(t: &mut Task, a: &Args) -> SysResult {
    let (header, data) = (a.u64(0), a.u64(1));
    let words = cap_words(t, header)?;
    let pid = t.copy_in_u32(header + 4)? as i32;
    // Only the caller's own capabilities may be set.
    if pid != 0 && pid != t.tid {
        return Err(Errno::EPERM);
    }
    let b = t.copy_in_vec(data, words * 12)?;
    let word = |i: usize| abi::linux::le_u32(&b, i * 4) as u64;
    let (mut eff, mut prm, mut inh) = (0u64, 0u64, 0u64);
    for w in 0..words {
        eff |= word(w * 3) << (32 * w);
        prm |= word(w * 3 + 1) << (32 * w);
        inh |= word(w * 3 + 2) << (32 * w);
    }
    // Bits past the last capability are ignored.
    let (eff, prm, inh) = (eff & CAP_FULL_SET, prm & CAP_FULL_SET, inh & CAP_FULL_SET);
    capset(&mut t.creds, eff, prm, inh)?;
    Ok(0)
}

/// The rules of cap_capset: no new inheritable capability without CAP_SETPCAP
/// or outside the bounding set, no new permitted one, effective within permitted.
pub(crate) fn capset(c: &mut Credentials, eff: u64, prm: u64, inh: u64) -> Result<(), Errno> {
    let subset = |a: u64, b: u64| a & !b == 0;
    if !c.has_capability(CAP_SETPCAP) && !subset(inh, c.cap_inheritable | c.cap_permitted) {
        return Err(Errno::EPERM);
    }
    if !subset(inh, c.cap_inheritable | c.cap_bounding) {
        return Err(Errno::EPERM);
    }
    if !subset(prm, c.cap_permitted) || !subset(eff, prm) {
        return Err(Errno::EPERM);
    }
    c.cap_effective = eff;
    c.cap_permitted = prm;
    c.cap_inheritable = inh;
    // Ambient capabilities must stay both permitted and inheritable.
    c.cap_ambient &= prm & inh;
    Ok(())
}

// ---- prctl capability and securebits operations (cap_task_prctl) ----

pub(crate) const PR_CAP_AMBIENT_IS_SET: u64 = 1;
pub(crate) const PR_CAP_AMBIENT_RAISE: u64 = 2;
pub(crate) const PR_CAP_AMBIENT_LOWER: u64 = 3;
pub(crate) const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;

/// prctl(PR_CAP_AMBIENT, op, cap, arg4, arg5).
pub(crate) fn prctl_cap_ambient(
    c: &mut Credentials,
    op: u64,
    cap: u64,
    rest: [u64; 2],
) -> Result<u64, Errno> {
    if op == PR_CAP_AMBIENT_CLEAR_ALL {
        if cap | rest[0] | rest[1] != 0 {
            return Err(Errno::EINVAL);
        }
        c.cap_ambient = 0;
        return Ok(0);
    }
    if !cap_valid(cap) || rest[0] | rest[1] != 0 {
        return Err(Errno::EINVAL);
    }
    let bit = 1u64 << cap;
    match op {
        PR_CAP_AMBIENT_IS_SET => Ok((c.cap_ambient & bit != 0) as u64),
        PR_CAP_AMBIENT_RAISE => {
            if c.cap_permitted & bit == 0
                || c.cap_inheritable & bit == 0
                || c.securebits & SECBIT_NO_CAP_AMBIENT_RAISE != 0
            {
                return Err(Errno::EPERM);
            }
            c.cap_ambient |= bit;
            Ok(0)
        }
        PR_CAP_AMBIENT_LOWER => {
            c.cap_ambient &= !bit;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// prctl(PR_CAPBSET_DROP, cap).
pub(crate) fn prctl_capbset_drop(c: &mut Credentials, cap: u64) -> Result<u64, Errno> {
    if !c.has_capability(CAP_SETPCAP) {
        return Err(Errno::EPERM);
    }
    if !cap_valid(cap) {
        return Err(Errno::EINVAL);
    }
    c.cap_bounding &= !(1 << cap);
    Ok(0)
}

/// prctl(PR_SET_SECUREBITS, bits): locked bits cannot change, locks cannot be
/// released, and CAP_SETPCAP is required.
pub(crate) fn prctl_set_securebits(c: &mut Credentials, bits: u64) -> Result<u64, Errno> {
    let old = c.securebits as u64;
    let locks = old & SECURE_ALL_LOCKS as u64;
    if (locks >> 1) & (old ^ bits) != 0
        || locks & !bits != 0
        || bits & !(SECURE_ALL_LOCKS | SECURE_ALL_BITS) as u64 != 0
        || !c.has_capability(CAP_SETPCAP)
    {
        return Err(Errno::EPERM);
    }
    c.securebits = bits as u32;
    Ok(0)
}

/// prctl(PR_SET_KEEPCAPS, flag).
pub(crate) fn prctl_set_keepcaps(c: &mut Credentials, keep: u64) -> Result<u64, Errno> {
    if keep > 1 {
        return Err(Errno::EINVAL);
    }
    if c.securebits & SECBIT_KEEP_CAPS_LOCKED != 0 {
        return Err(Errno::EPERM);
    }
    if keep == 1 {
        c.securebits |= SECBIT_KEEP_CAPS;
    } else {
        c.securebits &= !SECBIT_KEEP_CAPS;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Credentials {
        Credentials {
            cap_effective: CAP_FULL_SET,
            cap_permitted: CAP_FULL_SET,
            cap_bounding: CAP_FULL_SET,
            ..Default::default()
        }
    }

    #[test]
    fn setuid_from_root_drops_capabilities() {
        let mut c = root();
        setuid(&mut c, 1000).unwrap();
        assert_eq!((c.uid, c.euid, c.suid, c.fsuid), (1000, 1000, 1000, 1000));
        assert_eq!((c.cap_permitted, c.cap_effective), (0, 0));
        assert_eq!(setuid(&mut c, 0), Err(Errno::EPERM));
    }

    #[test]
    fn keepcaps_keeps_permitted_but_not_effective() {
        let mut c = root();
        prctl_set_keepcaps(&mut c, 1).unwrap();
        setresuid(&mut c, 1000, 1000, 1000).unwrap();
        assert_eq!(c.cap_permitted, CAP_FULL_SET);
        assert_eq!(c.cap_effective, 0);
    }

    #[test]
    fn seteuid_round_trip_restores_effective() {
        let mut c = root();
        setreuid(&mut c, NO_ID, 1000).unwrap();
        assert_eq!((c.uid, c.euid, c.suid), (0, 1000, 1000));
        assert_eq!(c.cap_effective, 0);
        setreuid(&mut c, NO_ID, 0).unwrap();
        assert_eq!(c.cap_effective, CAP_FULL_SET);
    }

    #[test]
    fn setfsuid_adjusts_fs_capabilities() {
        let mut c = root();
        assert_eq!(setfsuid(&mut c, 1000), 0);
        assert_eq!(c.cap_effective, CAP_FULL_SET & !CAP_FS_SET);
        assert_eq!(setfsuid(&mut c, 0), 1000);
        assert_eq!(c.cap_effective, CAP_FULL_SET);
        assert_eq!(setfsuid(&mut c, NO_ID), 0);
    }

    #[test]
    fn capset_cannot_add_permitted() {
        let mut c = Credentials {
            uid: 5,
            euid: 5,
            suid: 5,
            fsuid: 5,
            cap_bounding: CAP_FULL_SET,
            ..Default::default()
        };
        assert_eq!(capset(&mut c, 0, 1, 0), Err(Errno::EPERM));
        assert_eq!(capset(&mut c, 0, 0, 0), Ok(()));
    }
}

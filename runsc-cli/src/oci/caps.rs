//! `process.capabilities` and `process.noNewPrivileges`: capability names,
//! the sets as the spec gives them, and the credentials a process ends up with
//! once runc would have applied them and exec'd it.
//!
//! runc drops the bounding set, keeps capabilities across the switch to the
//! spec's user, sets the inheritable, permitted and effective sets, raises
//! the ambient ones and then execs the command; the kernel's exec
//! transformation (capabilities(7), no file capabilities) gives the result.
//! So root ends with permitted = effective = bounding | inheritable |
//! ambient, and another user with permitted = effective = ambient. The sentry
//! starts the process with those credentials directly.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use sentry::task::{Credentials, CAP_FULL_SET};

/// The number of capability `name` ("CAP_SYS_ADMIN"), spelled exactly as
/// runc accepts it.
pub fn cap_number(name: &str) -> Option<u32> {
    crate::features::CAPABILITIES
        .iter()
        .position(|c| *c == name)
        .map(|i| i as u32)
}

/// The five sets of `process.capabilities`, one bit per capability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

/// The set named by a list of capability names; unknown names are skipped
/// (runc warns and ignores them), with a debug log line.
pub fn set_of<S: AsRef<str>>(names: &[S], field: &str) -> u64 {
    let mut set = 0;
    for n in names {
        match cap_number(n.as_ref()) {
            Some(c) => set |= 1u64 << c,
            None => tracing::debug!("{field}: unknown capability {:?} ignored", n.as_ref()),
        }
    }
    set
}

const MEMBERS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// Parses a `capabilities` object (`field` names it in errors): a missing or
/// null member is the empty set; a member that is not an array of strings is
/// a one-line error naming it.
pub fn parse(v: &Value, field: &str) -> Result<Caps, String> {
    let o: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| format!("{field}: expected an object"))?;
    let mut sets = [0u64; 5];
    for (i, m) in MEMBERS.iter().enumerate() {
        let f = format!("{field}.{m}");
        let Some(x) = o.get(*m).filter(|x| !x.is_null()) else {
            continue;
        };
        let a = x
            .as_array()
            .ok_or_else(|| format!("{f}: expected an array of capability names"))?;
        let mut names = Vec::with_capacity(a.len());
        for (j, n) in a.iter().enumerate() {
            names.push(
                n.as_str()
                    .ok_or_else(|| format!("{f}[{j}]: expected a string"))?,
            );
        }
        sets[i] = set_of(&names, &f);
    }
    for k in o.keys() {
        if !MEMBERS.contains(&k.as_str()) {
            tracing::debug!("{field}.{k} ignored");
        }
    }
    Ok(Caps {
        bounding: sets[0],
        effective: sets[1],
        inheritable: sets[2],
        permitted: sets[3],
        ambient: sets[4],
    })
}

impl Caps {
    /// `--caps=` as `runsc boot` takes it: the five sets in hex, in the order
    /// bounding, effective, inheritable, permitted, ambient.
    pub fn to_arg(self) -> String {
        format!(
            "{:x},{:x},{:x},{:x},{:x}",
            self.bounding, self.effective, self.inheritable, self.permitted, self.ambient
        )
    }

    pub fn from_arg(v: &str) -> Result<Caps, String> {
        let bad = || format!("bad --caps {v:?}");
        let s: Vec<u64> = v
            .split(',')
            .map(|x| u64::from_str_radix(x, 16).map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [bounding, effective, inheritable, permitted, ambient] = s[..] else {
            return Err(bad());
        };
        Ok(Caps {
            bounding,
            effective,
            inheritable,
            permitted,
            ambient,
        })
    }

    /// Adds capability sets as `runc exec --cap` does (bounding, effective
    /// and permitted).
    pub fn add(&mut self, set: u64) {
        self.bounding |= set;
        self.effective |= set;
        self.permitted |= set;
    }
}

/// Gives `c` (whose ids are the process's) the capabilities the process has
/// after runc set `caps` and exec'd it.
pub fn apply(c: &mut Credentials, caps: &Caps) {
    let full = CAP_FULL_SET;
    // What capset(2) and PR_CAP_AMBIENT_RAISE allow runc to set before the exec.
    let bounding = caps.bounding & full;
    let inheritable = caps.inheritable & bounding;
    let permitted = caps.permitted & full;
    let ambient = caps.ambient & permitted & inheritable;
    // The exec (no file capabilities, not set-id).
    let mut new_permitted = if c.uid == 0 || c.euid == 0 {
        bounding | inheritable
    } else {
        0
    };
    new_permitted |= ambient;
    c.cap_bounding = bounding;
    c.cap_inheritable = inheritable;
    c.cap_ambient = ambient;
    c.cap_permitted = new_permitted;
    c.cap_effective = if c.euid == 0 { new_permitted } else { ambient };
    c.securebits = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Docker's default set.
    const DOCKER: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];

    #[test]
    fn names() {
        assert_eq!(cap_number("CAP_CHOWN"), Some(0));
        assert_eq!(cap_number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_number("CAP_BPF"), Some(39));
        assert_eq!(cap_number("SYS_ADMIN"), None);
        assert_eq!(cap_number("cap_sys_admin"), None);
        assert_eq!(cap_number("CAP_NOPE"), None);
        assert_eq!(
            crate::features::CAPABILITIES.len() as u64,
            CAP_FULL_SET.count_ones() as u64
        );
        assert_eq!(set_of(DOCKER, "x"), 0xa80425fb);
        assert_eq!(set_of(&["CAP_KILL", "CAP_BOGUS"], "x"), 1 << 5);
    }

    #[test]
    fn parse_sets() {
        let v: Value = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"],
                "permitted":["CAP_KILL","CAP_UNKNOWN"],"ambient":null}"#,
        )
        .unwrap();
        let c = parse(&v, "process.capabilities").unwrap();
        assert_eq!(
            c,
            Caps {
                bounding: 0x21,
                effective: 0x20,
                inheritable: 0,
                permitted: 0x20,
                ambient: 0,
            }
        );
        let e = parse(
            &serde_json::json!({"bounding": "CAP_KILL"}),
            "process.capabilities",
        )
        .unwrap_err();
        assert!(
            e.contains("process.capabilities.bounding") && !e.contains('\n'),
            "{e}"
        );
        let e = parse(&serde_json::json!({"ambient": [1]}), "process.capabilities").unwrap_err();
        assert!(e.contains("process.capabilities.ambient[0]"), "{e}");
        assert!(parse(&serde_json::json!([]), "process.capabilities").is_err());
        assert_eq!(Caps::from_arg(&c.to_arg()).unwrap(), c);
        assert!(Caps::from_arg("1,2,3").is_err());
        assert!(Caps::from_arg("1,2,3,4,zz").is_err());
    }

    fn creds(uid: u32) -> Credentials {
        Credentials {
            uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            cap_effective: CAP_FULL_SET,
            cap_permitted: CAP_FULL_SET,
            cap_bounding: CAP_FULL_SET,
            ..Default::default()
        }
    }

    #[test]
    fn as_runc_leaves_them() {
        let d = set_of(DOCKER, "x");
        let caps = Caps {
            bounding: d,
            effective: d,
            permitted: d,
            ..Default::default()
        };
        let mut root = creds(0);
        apply(&mut root, &caps);
        assert_eq!(
            (
                root.cap_inheritable,
                root.cap_permitted,
                root.cap_effective,
                root.cap_bounding,
                root.cap_ambient
            ),
            (0, d, d, d, 0)
        );
        let mut user = creds(1000);
        apply(&mut user, &caps);
        assert_eq!(
            (user.cap_permitted, user.cap_effective, user.cap_bounding),
            (0, 0, d)
        );
        // Ambient capabilities survive the exec of a non-root user, as far
        // as they are permitted and inheritable.
        let kill = 1 << 5;
        let chown = 1;
        let mut user = creds(1000);
        apply(
            &mut user,
            &Caps {
                bounding: d,
                effective: d,
                permitted: d,
                inheritable: kill,
                ambient: kill | chown,
            },
        );
        assert_eq!(
            (user.cap_permitted, user.cap_effective, user.cap_ambient),
            (kill, kill, kill)
        );
        // Root's permitted set is the bounding set, whatever the spec's.
        let mut root = creds(0);
        apply(
            &mut root,
            &Caps {
                bounding: d,
                effective: kill,
                permitted: kill,
                ..Default::default()
            },
        );
        assert_eq!((root.cap_permitted, root.cap_effective), (d, d));
    }
}

//! `--strace`: prints each syscall as strace does, e.g.
//! `openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3`.

use std::io::Write;

use abi::SysResult;
use sentry::Task;

use crate::{Args, Syscall};

/// How to print one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Signed decimal.
    Dec,
    /// Unsigned decimal (sizes, counts).
    UDec,
    /// Hexadecimal (pointers, masks).
    Hex,
    /// Octal (modes).
    Oct,
    /// A file descriptor.
    Fd,
    /// A directory fd of the *at calls (AT_FDCWD by name).
    DirFd,
    /// A NUL-terminated path or string in workload memory.
    Path,
    /// A buffer the workload passes in, with its length in argument `.0`.
    InBuf(usize),
    /// A buffer the kernel fills; printed after the call, result = length.
    OutBuf,
    /// open(2) flags.
    OpenFlags,
    /// mmap(2) protection.
    Prot,
    /// A NULL-terminated array of string pointers (argv, envp).
    StrArray,
}

const MAX_STR: usize = 32;

fn quote(b: &[u8], truncated: bool) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\{c:o}")),
        }
    }
    s.push('"');
    if truncated {
        s.push_str("...");
    }
    s
}

fn string_at(t: &Task, addr: u64) -> String {
    if addr == 0 {
        return "NULL".into();
    }
    match t.mm.copy_in_string(addr, 4096) {
        Ok(v) => quote(&v, false),
        Err(_) => format!("{addr:#x}"),
    }
}

fn buf_at(t: &Task, addr: u64, len: u64) -> String {
    let n = (len as usize).min(MAX_STR);
    match t.copy_in_vec(addr, n) {
        Ok(v) => quote(&v, len as usize > MAX_STR),
        Err(_) => format!("{addr:#x}"),
    }
}

fn open_flags(f: u64) -> String {
    let f = f as i32;
    let mut parts = vec![match f & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    }
    .to_string()];
    let names = [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_DSYNC, "O_DSYNC"),
        (libc::O_DIRECT, "O_DIRECT"),
        (abi::linux::O_LARGEFILE, "O_LARGEFILE"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_NOATIME, "O_NOATIME"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        (libc::O_PATH, "O_PATH"),
    ];
    let mut rest = f & !libc::O_ACCMODE;
    for (bit, name) in names {
        if rest & bit == bit && bit != 0 {
            parts.push(name.into());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#o}"));
    }
    parts.join("|")
}

fn prot(p: u64) -> String {
    if p == 0 {
        return "PROT_NONE".into();
    }
    let mut parts = Vec::new();
    for (bit, name) in [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")] {
        if p & bit != 0 {
            parts.push(name.to_string());
        }
    }
    if p & !7 != 0 {
        parts.push(format!("{:#x}", p & !7));
    }
    parts.join("|")
}

fn str_array(t: &Task, addr: u64) -> String {
    if addr == 0 {
        return "NULL".into();
    }
    let mut out = Vec::new();
    for i in 0..8u64 {
        match t.copy_in_u64(addr + i * 8) {
            Ok(0) => return format!("[{}]", out.join(", ")),
            Ok(p) => out.push(string_at(t, p)),
            Err(_) => return format!("{addr:#x}"),
        }
    }
    format!("[{}, ...]", out.join(", "))
}

fn format_arg(t: &Task, a: Arg, args: &Args, i: usize) -> String {
    let v = args.0[i];
    match a {
        Arg::Dec => format!("{}", v as i64),
        Arg::UDec => format!("{v}"),
        Arg::Hex => {
            if v == 0 {
                "NULL".into()
            } else {
                format!("{v:#x}")
            }
        }
        Arg::Oct => format!("{v:#o}"),
        Arg::Fd => format!("{}", v as i32),
        Arg::DirFd => {
            if v as i32 == libc::AT_FDCWD {
                "AT_FDCWD".into()
            } else {
                format!("{}", v as i32)
            }
        }
        Arg::Path => string_at(t, v),
        Arg::InBuf(len) => buf_at(t, v, args.0[len]),
        Arg::OutBuf => format!("{v:#x}"),
        Arg::OpenFlags => open_flags(v),
        Arg::Prot => prot(v),
        Arg::StrArray => str_array(t, v),
    }
}

/// What was printable before the call ran (exec replaces memory, so inputs are
/// formatted first; output buffers are formatted after).
pub struct Entry {
    before: Vec<Option<String>>,
}

impl Entry {
    pub fn before(t: &Task, sc: &Syscall, args: &Args) -> Entry {
        let before = sc
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if *a == Arg::OutBuf {
                    None
                } else {
                    Some(format_arg(t, *a, args, i))
                }
            })
            .collect();
        Entry { before }
    }

    pub fn after(self, t: &Task, sc: &Syscall, args: &Args, res: &SysResult) {
        let parts: Vec<String> = self
            .before
            .into_iter()
            .enumerate()
            .map(|(i, s)| match s {
                Some(s) => s,
                None => match res {
                    Ok(n) => buf_at(t, args.0[i], *n),
                    Err(_) => format!("{:#x}", args.0[i]),
                },
            })
            .collect();
        let ret = match res {
            _ if t.is_exiting() => "?".to_string(),
            Ok(v) => {
                if matches!(sc.name, "mmap" | "brk" | "mremap") {
                    format!("{v:#x}")
                } else {
                    format!("{}", *v as i64)
                }
            }
            Err(e) => format!("-1 {} ({})", e.name(), e.description()),
        };
        emit(t, &format!("{}({}) = {}", sc.name, parts.join(", "), ret));
    }
}

/// Prints a call the table does not implement.
pub fn print_unimplemented(t: &Task, nr: u64, name: &str, args: &Args) {
    let a: Vec<String> = args.0.iter().map(|v| format!("{v:#x}")).collect();
    emit(
        t,
        &format!(
            "{name}({}) = -1 ENOSYS (Function not implemented) [unimplemented syscall {nr}]",
            a.join(", ")
        ),
    );
}

fn emit(t: &Task, line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "[pid {:>5}] {line}", t.tid);
}

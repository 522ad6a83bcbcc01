//! CPython's own regression tests (Debian's libpython3.11-testsuite), run
//! natively and under `runsc do`: every test must have the same outcome (ok,
//! skip, fail, error, expected failure) in both, except the ones listed in
//! `tests/python/EXCLUDE`, each with its reason.
//!
//! `tests/python/run_suite.py` runs a module and prints one line per test; this
//! file compares the two runs. One #[test] per module, so cargo runs two at a
//! time on a 2-core machine.
//!
//! `PYSUITE_DO_FLAGS` adds flags of `runsc do` to the sandbox run (space-separated).
//! The sandbox run skips the excluded tests; `PYSUITE_RUN_EXCLUDED=1` runs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tests::{workspace_root, Cmd, Exit, Failures, RunOutput, PLATFORMS};

const PYTHON: &str = "/usr/bin/python3.11";
const MARK: &str = "@@PYSUITE@@";

fn suite_dir() -> PathBuf {
    workspace_root().join("tests/python")
}

/// One exclusion: a test id, or a prefix of ids when it ends with `*`.
struct Exclusion {
    pattern: String,
    reason: String,
}

impl Exclusion {
    fn matches(&self, id: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => id == self.pattern,
        }
    }
}

/// Parses EXCLUDE: `<id or prefix*>  # reason`; blank lines and lines starting
/// with `#` are comments. Every entry needs a reason.
fn exclusions() -> Vec<Exclusion> {
    let path = suite_dir().join("EXCLUDE");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (pattern, reason) = match line.split_once('#') {
            Some((p, r)) if !r.trim().is_empty() => (p.trim(), r.trim()),
            _ => panic!(
                "{}:{}: every exclusion needs a reason after '#': {line}",
                path.display(),
                n + 1
            ),
        };
        out.push(Exclusion {
            pattern: pattern.to_string(),
            reason: reason.to_string(),
        });
    }
    out
}

/// test id -> outcome, from the result lines of one run.
fn outcomes(out: &RunOutput, module: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    let mut done = false;
    for line in out.stdout.lines() {
        let mut it = line.splitn(3, ' ');
        if it.next() != Some(MARK) {
            continue;
        }
        match (it.next(), it.next()) {
            (Some("done"), Some(rest)) if rest.starts_with(module) => done = true,
            (Some(outcome), Some(id)) => {
                m.insert(id.to_string(), outcome.to_string());
            }
            _ => {}
        }
    }
    if !done {
        return Err(format!("the run did not finish:\n{}", out.describe()));
    }
    Ok(m)
}

/// The traceback the runner printed on stderr for `id`, if any (cut short).
fn trace_of(stderr: &str, id: &str) -> String {
    let head = format!("=== {MARK} {id}");
    let mut lines = stderr.lines().skip_while(|l| !l.starts_with(&head));
    let mut out = Vec::new();
    if lines.next().is_some() {
        for l in lines.take(30) {
            if l.starts_with("=== ") {
                break;
            }
            out.push(format!("      | {l}"));
        }
    }
    out.join("\n")
}

fn cmd(module: &str) -> Cmd {
    let runner = suite_dir().join("run_suite.py");
    Cmd::new([Path::new(PYTHON), runner.as_path(), Path::new(module)])
        .timeout(Duration::from_secs(900))
}

/// The sandbox run: the tests EXCLUDE lists are not run (their outcome is
/// ignored anyway; many fail only after a timeout each: test_socket's
/// UDPLITE and RFC 3542 cases take 180 s that way). `PYSUITE_RUN_EXCLUDED=1`
/// runs them, to see whether an exclusion still applies.
fn sandbox_cmd(module: &str) -> Cmd {
    let runner = suite_dir().join("run_suite.py");
    let mut argv = vec![PYTHON.to_string(), runner.display().to_string()];
    if std::env::var("PYSUITE_RUN_EXCLUDED").map_or(true, |v| v != "1") {
        argv.push(format!("--not={}", suite_dir().join("EXCLUDE").display()));
    }
    argv.push(module.to_string());
    Cmd::new(argv).timeout(Duration::from_secs(900))
}

fn run_module(module: &str) {
    if !Path::new("/usr/lib/python3.11/test/regrtest.py").exists() {
        panic!(
            "CPython's test suite is missing: install the Debian package \
             libpython3.11-testsuite (`bash .ci/run` does)"
        );
    }
    let excl = exclusions();
    let mut f = Failures::new();
    let native = cmd(module).run_native();
    let native_res = match outcomes(&native, module) {
        Ok(m) if native.exit == Exit::Code(0) && !m.is_empty() => m,
        Ok(_) | Err(_) => {
            f.add(format!("{module} natively:\n{}", native.describe()));
            f.check(module);
            return;
        }
    };
    let flags_env = std::env::var("PYSUITE_DO_FLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags_env.split_whitespace().collect();
    for platform in PLATFORMS {
        let sb = sandbox_cmd(module).run_sandbox_do(platform, &[], &flags);
        let sb_res = match outcomes(&sb, module) {
            Ok(m) => m,
            Err(e) => {
                // A module-level exclusion covers a run that cannot finish.
                let id = format!("test.{module}");
                if !excl.iter().any(|x| x.matches(&id)) {
                    f.add(format!("{module} --platform={platform}: {e}"));
                }
                continue;
            }
        };
        let mut agree = 0;
        let mut excluded = 0;
        let ids: std::collections::BTreeSet<&String> =
            native_res.keys().chain(sb_res.keys()).collect();
        for id in ids {
            let n = native_res.get(id).map(String::as_str).unwrap_or("missing");
            let s = sb_res.get(id).map(String::as_str).unwrap_or("missing");
            if n == s {
                agree += 1;
                continue;
            }
            // A module that failed to import in the sandbox reports under its
            // own name; its tests are "missing" there.
            if let Some(x) = excl.iter().find(|x| x.matches(id)) {
                excluded += 1;
                eprintln!("  excluded {id}: native {n}, sandbox {s} ({})", x.reason);
                continue;
            }
            f.add(format!(
                "{id} --platform={platform}: native {n}, sandbox {s}\n{}",
                trace_of(&sb.stderr, id)
            ));
        }
        eprintln!(
            "{module} --platform={platform}: {agree} agree, {excluded} excluded, \
             native {:.1}s, sandbox {:.1}s",
            native.elapsed.as_secs_f64(),
            sb.elapsed.as_secs_f64()
        );
    }
    f.check(&format!("python {module} (native vs sandbox)"));
}

macro_rules! modules {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_module(stringify!($name));
            }
        )*
        const MODULES: &[&str] = &[$(stringify!($name)),*];
    };
}

modules!(
    test_os,
    test_posix,
    test_shutil,
    test_tempfile,
    test_fileio,
    test_io,
    test_mmap,
    test_fcntl,
    test_stat,
    test_glob,
    test_pathlib,
    test_tarfile,
    test_zipfile,
    test_epoll,
    test_selectors,
    test_poll,
);

/// Network modules (issue 7), by their dotted names. Tests that cannot run on
/// some hosts are listed in tests/python/NORUN (run_suite.py never runs them).
macro_rules! net_modules {
    ($($name:ident = $module:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_module($module);
            }
        )*
        const NET_MODULES: &[&str] = &[$($module),*];
    };
}

net_modules!(
    test_socket = "test_socket",
    test_asyncio_events = "test_asyncio.test_events",
    test_asyncio_sock_lowlevel = "test_asyncio.test_sock_lowlevel",
    test_asyncio_streams = "test_asyncio.test_streams",
    test_ssl = "test_ssl",
);

/// Every exclusion names a module of the lists (typos exclude nothing).
#[test]
fn exclusions_name_known_modules() {
    for x in exclusions() {
        let ok = MODULES.iter().chain(NET_MODULES).any(|m| {
            let p = format!("test.{m}");
            x.pattern == p
                || x.pattern.starts_with(&format!("{p}."))
                || x.pattern == format!("{p}*")
        });
        assert!(
            ok,
            "EXCLUDE entry {} names no module of the list",
            x.pattern
        );
    }
}

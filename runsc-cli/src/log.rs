//! A minimal `tracing` subscriber: one line per event, to the debug log file
//! (`--debug-log`) or, for errors only, to stderr.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    max: Level,
    next_span: AtomicU64,
    prefix: String,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Subscriber for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= self.max
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut f = Fields(String::new());
        e.record(&mut f);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let line = format!(
            "{}.{:06} {} {} {}:{}\n",
            t.as_secs(),
            t.subsec_micros(),
            self.prefix,
            e.metadata().level(),
            e.metadata().target(),
            f.0
        );
        let _ = self.out.lock().unwrap().write_all(line.as_bytes());
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Installs the logger for this process. `prefix` names the process ("boot", "gofer").
pub fn init(debug_log: Option<&str>, debug: bool, prefix: &str) {
    let (out, max): (Box<dyn Write + Send>, Level) = match debug_log {
        Some(pattern) => match open_debug_log(pattern, prefix) {
            Ok(f) => (Box::new(f), if debug { Level::TRACE } else { Level::INFO }),
            Err(e) => {
                eprintln!("runsc: cannot open debug log {pattern}: {e}");
                (Box::new(std::io::stderr()), Level::ERROR)
            }
        },
        None => (
            Box::new(std::io::stderr()),
            if debug { Level::DEBUG } else { Level::ERROR },
        ),
    };
    let logger = Logger {
        out: Mutex::new(out),
        max,
        next_span: AtomicU64::new(1),
        prefix: prefix.to_string(),
    };
    let _ = tracing::subscriber::set_global_default(logger);
}

/// The debug log's file name, as gVisor's `--debug-log`: a value ending in '/'
/// is a directory (created if missing) holding one file per process,
/// `runsc.log.%TIMESTAMP%.%COMMAND%.txt`; `%TIMESTAMP%` and `%COMMAND%` are
/// substituted anywhere in the value (engines pass a directory, so that every
/// command of every container logs without clobbering the others).
pub fn debug_log_path(pattern: &str, command: &str, now: std::time::SystemTime) -> String {
    let mut p = pattern.to_string();
    if p.ends_with('/') {
        p.push_str("runsc.log.%TIMESTAMP%.%COMMAND%.txt");
    }
    if p.contains("%TIMESTAMP%") {
        // 2023-11-14T22:13:20.000000005Z -> 20231114-221320.000005
        let t = crate::oci::state::rfc3339(now);
        let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
        let stamp = format!("{}-{}.{}", &digits[..8], &digits[8..14], &digits[14..20]);
        p = p.replace("%TIMESTAMP%", &stamp);
    }
    p.replace("%COMMAND%", command)
}

fn open_debug_log(pattern: &str, command: &str) -> std::io::Result<File> {
    let path = debug_log_path(pattern, command, std::time::SystemTime::now());
    if let Some(dir) = std::path::Path::new(&path).parent() {
        if !dir.as_os_str().is_empty() && pattern.ends_with('/') {
            std::fs::create_dir_all(dir)?;
        }
    }
    File::options().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::debug_log_path;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn debug_log_patterns() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5_000);
        assert_eq!(debug_log_path("/tmp/x.log", "boot", t), "/tmp/x.log");
        assert_eq!(
            debug_log_path("/tmp/logs/", "gofer", t),
            "/tmp/logs/runsc.log.20231114-221320.000005.gofer.txt"
        );
        assert_eq!(
            debug_log_path("/l/%COMMAND%-%TIMESTAMP%.txt", "boot", t),
            "/l/boot-20231114-221320.000005.txt"
        );
    }
}

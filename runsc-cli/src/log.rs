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
        Some(path) => match File::options().create(true).append(true).open(path) {
            Ok(f) => (Box::new(f), if debug { Level::TRACE } else { Level::INFO }),
            Err(e) => {
                eprintln!("runsc: cannot open debug log {path}: {e}");
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

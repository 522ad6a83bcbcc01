#![allow(dead_code)]
pub mod link;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use netstack::{Errno, Notify};

/// Counts notifications; lets a test thread block until the next one.
#[derive(Clone, Default)]
pub struct Waiter(Arc<(Mutex<u64>, Condvar)>);

impl Waiter {
    pub fn notify(&self) -> Notify {
        let w = self.0.clone();
        Arc::new(move |_bits| {
            *w.0.lock().unwrap() += 1;
            w.1.notify_all();
        })
    }
    pub fn gen(&self) -> u64 {
        *self.0 .0.lock().unwrap()
    }
    pub fn count(&self) -> u64 {
        self.gen()
    }
    pub fn wait_past(&self, g: u64, t: Duration) {
        let guard = self.0 .0.lock().unwrap();
        let _ = self.0 .1.wait_timeout_while(guard, t, |v| *v == g).unwrap();
    }
    /// Retries `op` while it returns EAGAIN/EINPROGRESS/EALREADY, waiting for
    /// notifications (10 s overall).
    pub fn block<R>(&self, mut op: impl FnMut() -> Result<R, Errno>) -> Result<R, Errno> {
        let start = std::time::Instant::now();
        loop {
            let g = self.gen();
            match op() {
                Err(e) if e == Errno::EAGAIN || e == Errno::EALREADY || e == Errno::EINPROGRESS => {
                    assert!(
                        start.elapsed() < Duration::from_secs(20),
                        "timed out blocking"
                    );
                    self.wait_past(g, Duration::from_millis(2000));
                }
                r => return r,
            }
        }
    }
}

pub fn wait_until(mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "condition not reached"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

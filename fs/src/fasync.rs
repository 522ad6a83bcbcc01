//! Signal-driven I/O: F_SETOWN / F_SETOWN_EX / F_SETSIG and O_ASYNC.
//!
//! An open file description keeps its owner (a thread, process or process
//! group) and the signal to send ([`Fown`]). Turning O_ASYNC on (F_SETFL)
//! registers the description on its file's wait queue; every notification of
//! that queue with an event the description cares about (input for a
//! readable description, output for a writable one) then sends SIGIO, or the
//! F_SETSIG signal with si_fd and si_band, to the owner. The sending itself is
//! the kernel's: it hands in a [`SigioSender`] (the fs crate cannot reach
//! tasks).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::waiter::{EVENT_ERR, EVENT_HUP, EVENT_IN, EVENT_OUT};

/// si_code values of SIGIO (Linux's POLL_IN, POLL_OUT).
pub const POLL_IN: i32 = 1;
pub const POLL_OUT: i32 = 2;

/// si_band for each si_code, as Linux reports it (its band_table through
/// mangle_poll, which drops EPOLLMSG).
pub fn band(code: i32) -> i64 {
    match code {
        POLL_IN => (libc::POLLIN | libc::POLLRDNORM) as i64,
        POLL_OUT => (libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND) as i64,
        _ => !0,
    }
}

/// What kind of id an owner is (F_OWNER_TID / F_OWNER_PID / F_OWNER_PGRP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OwnerKind {
    /// One thread. Linux's default type for a description never given an owner.
    #[default]
    Tid,
    Pid,
    Pgrp,
}

impl OwnerKind {
    /// From `struct f_owner_ex`'s type; None for an unknown type.
    pub fn from_ex(t: i32) -> Option<OwnerKind> {
        match t {
            0 => Some(OwnerKind::Tid),
            1 => Some(OwnerKind::Pid),
            2 => Some(OwnerKind::Pgrp),
            _ => None,
        }
    }

    pub fn to_ex(self) -> i32 {
        match self {
            OwnerKind::Tid => 0,
            OwnerKind::Pid => 1,
            OwnerKind::Pgrp => 2,
        }
    }
}

/// The owner of a description: `id` 0 is nobody.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FOwner {
    pub kind: OwnerKind,
    pub id: i32,
}

/// Delivers SIGIO; implemented by the kernel.
pub trait SigioSender: Send + Sync {
    /// Sends signal `sig` to `owner`: with sig 0, a plain SIGIO (SI_KERNEL);
    /// otherwise `sig` with si_code `code`, si_band `band` and si_fd `fd`.
    fn send_sigio(&self, owner: FOwner, sig: i32, fd: i32, code: i32, band: i64);
}

/// Where O_ASYNC notifications go: the fd it was enabled on and the sender.
struct Target {
    fd: i32,
    sender: Arc<dyn SigioSender>,
    /// Queue events that mean input / output for this description.
    in_mask: u32,
    out_mask: u32,
}

/// A description's F_SETOWN/F_SETSIG state.
#[derive(Default)]
pub struct Fown {
    owner: Mutex<FOwner>,
    sig: AtomicI32,
    target: Mutex<Option<Target>>,
}

impl Fown {
    fn target(&self) -> MutexGuard<'_, Option<Target>> {
        self.target.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn owner(&self) -> FOwner {
        *self.owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_owner(&self, o: FOwner) {
        *self.owner.lock().unwrap_or_else(|e| e.into_inner()) = o;
    }

    /// F_GETSIG: 0 means SIGIO without siginfo details.
    pub fn sig(&self) -> i32 {
        self.sig.load(Ordering::Relaxed)
    }

    pub fn set_sig(&self, sig: i32) {
        self.sig.store(sig, Ordering::Relaxed);
    }

    /// Starts notifying for fd `fd`; `readable`/`writable` is the access mode.
    pub(crate) fn enable(
        &self,
        fd: i32,
        sender: Arc<dyn SigioSender>,
        readable: bool,
        writable: bool,
    ) {
        let in_mask = if readable { EVENT_IN | EVENT_HUP } else { 0 };
        let out_mask = if writable { EVENT_OUT | EVENT_ERR } else { 0 };
        *self.target() = Some(Target {
            fd,
            sender,
            in_mask,
            out_mask,
        });
    }

    pub(crate) fn disable(&self) {
        *self.target() = None;
    }

    /// A queue this description is registered on was notified of `events`.
    pub(crate) fn notify(&self, events: u32) {
        let (fd, sender, codes) = {
            let g = self.target();
            let Some(t) = g.as_ref() else { return };
            let mut codes = Vec::new();
            if events & t.in_mask != 0 {
                codes.push(POLL_IN);
            }
            if events & t.out_mask != 0 {
                codes.push(POLL_OUT);
            }
            (t.fd, t.sender.clone(), codes)
        };
        let owner = self.owner();
        if owner.id == 0 {
            return;
        }
        let sig = self.sig();
        for code in codes {
            sender.send_sigio(owner, sig, fd, code, band(code));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::Pipe;

    /// (owner, signal, fd, si_code, si_band) of each send.
    type Sent = (FOwner, i32, i32, i32, i64);

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Sent>>);

    impl SigioSender for Recorder {
        fn send_sigio(&self, owner: FOwner, sig: i32, fd: i32, code: i32, band: i64) {
            self.0.lock().unwrap().push((owner, sig, fd, code, band));
        }
    }

    #[test]
    fn pipe_ends_signal_their_owner() {
        let rec = Arc::new(Recorder::default());
        let (r, w) = Pipe::new_pair(0, 0, 0);
        let owner = FOwner {
            kind: OwnerKind::Pid,
            id: 7,
        };
        r.fown().set_owner(owner);
        // O_ASYNC off: nothing.
        w.write(b"a").unwrap();
        assert!(rec.0.lock().unwrap().is_empty());
        r.set_status_flags_async(libc::O_ASYNC, 3, rec.clone())
            .unwrap();
        w.write(b"b").unwrap();
        assert_eq!(
            rec.0.lock().unwrap().pop(),
            Some((owner, 0, 3, POLL_IN, band(POLL_IN)))
        );
        // Reading signals the write end only, which has no O_ASYNC.
        r.read(&mut [0; 4]).unwrap();
        assert!(rec.0.lock().unwrap().is_empty());
        r.fown().set_sig(libc::SIGRTMIN());
        w.write(b"c").unwrap();
        assert_eq!(
            rec.0.lock().unwrap().pop().map(|x| x.1),
            Some(libc::SIGRTMIN())
        );
        // No owner: nothing; O_ASYNC off again: nothing.
        r.fown().set_owner(FOwner::default());
        w.write(b"d").unwrap();
        assert!(rec.0.lock().unwrap().is_empty());
        r.fown().set_owner(owner);
        r.set_status_flags_async(0, 3, rec.clone()).unwrap();
        w.write(b"e").unwrap();
        assert!(rec.0.lock().unwrap().is_empty());
        // Closing the write end wakes the reader: POLL_IN (EOF) once more.
        r.set_status_flags_async(libc::O_ASYNC, 3, rec.clone())
            .unwrap();
        drop(w);
        assert_eq!(rec.0.lock().unwrap().pop().map(|x| x.3), Some(POLL_IN));
    }
}

//! The Linux x86-64 ABI as the workload sees it: errno values, syscall numbers,
//! flags and the byte encodings of the structs that cross the syscall boundary.
//!
//! Structs are encoded by hand into little-endian byte arrays so that this crate
//! (and everything that copies them to workload memory) needs no `unsafe`.
#![forbid(unsafe_code)]

pub mod errno;
pub mod linux;
pub mod sysno;

pub use errno::{Errno, SysResult};

/// Page size of the x86-64 ABI.
pub const PAGE_SIZE: u64 = 4096;

/// Rounds `x` down to a page boundary.
pub const fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// Rounds `x` up to a page boundary, or None on overflow.
pub const fn page_up(x: u64) -> Option<u64> {
    match x.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

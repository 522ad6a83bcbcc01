//! An address space that maps nothing, for testing the layers above the platform
//! (memory manager, loader) without stub processes. It checks that every call is
//! page aligned, as a real platform requires.

use std::any::Any;

use crate::{AddressSpace, PlatformError, Prot};

const PAGE: u64 = 4096;

/// See the module documentation.
pub struct NullAddressSpace;

fn check(v: &[u64]) -> Result<(), PlatformError> {
    if v.iter().all(|x| x % PAGE == 0) {
        Ok(())
    } else {
        Err(PlatformError::Host {
            op: "unaligned address space update",
            errno: libc::EINVAL,
        })
    }
}

impl AddressSpace for NullAddressSpace {
    fn map(&self, va: u64, len: u64, offset: u64, _: Prot) -> Result<(), PlatformError> {
        check(&[va, len, offset])
    }
    fn unmap(&self, va: u64, len: u64) -> Result<(), PlatformError> {
        check(&[va, len])
    }
    fn protect(&self, va: u64, len: u64, _: Prot) -> Result<(), PlatformError> {
        check(&[va, len])
    }
    fn new_thread(&self) -> Result<u64, PlatformError> {
        Ok(0)
    }
    fn attach_thread(&self, _: u64) -> Result<(), PlatformError> {
        Ok(())
    }
    fn release_thread(&self) {}
    fn as_any(&self) -> &dyn Any {
        self
    }
}

//! (being written)

use crate::Table;

pub(crate) fn register(_t: &mut Table) {}

//! The kernel: tasks, the memory manager, the ELF loader and the run loop.

pub mod exec;
pub mod futex;
pub mod kernel;
pub mod limits;
pub mod loader;
pub mod mm;
pub mod net;
pub mod pidfd;
pub mod process;
pub mod procfs;
pub mod signal;
pub mod signalfd;
pub mod task;
pub mod thread_group;
pub mod timer;
pub mod tty;

pub use kernel::{Kernel, SyscallTable};
pub use task::Task;

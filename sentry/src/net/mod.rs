//! Networking: the sandbox's sockets of the Internet families.

pub mod hostinet;

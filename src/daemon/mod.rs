//! Daemon mode. So far the two pure cores: the Apache-child-to-daemon
//! protocol ([`protocol`], see docs/daemon-protocol.md) and the restart
//! decisions of the parent's supervisor ([`supervisor`]). The processes,
//! sockets and client that use them come next.

pub mod protocol;
pub mod supervisor;

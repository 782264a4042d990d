//! Daemon mode (`WSGIDaemonProcess` / `WSGIProcessGroup`).
//!
//! * [`protocol`]: the pure Apache-child-to-daemon frame codec
//!   (docs/daemon-protocol.md).
//! * [`supervisor`]: the pure restart decisions for each daemon slot.
//! * [`policy`]: the pure decisions inside a daemon process (queue,
//!   start-up and deadlock timers, draining, resource limits).
//! * [`parent`]: Apache's parent process: sockets, forks, supervision
//!   through httpd's other-child callbacks, shutdown.
//! * [`worker`]: the daemon process itself: privileges, Python, worker
//!   threads, timers.
//! * [`client`]: the Apache child's side of one request.
//! * [`cgi`]: the pure reading of a daemon's response head as mod_wsgi's
//!   Apache child reads it (like a CGI script's).
//! * [`sys`]: the system calls (the only `unsafe` here).

pub mod cgi;
pub(crate) mod client;
pub(crate) mod parent;
pub mod policy;
pub mod protocol;
pub mod supervisor;
pub(crate) mod sys;
pub(crate) mod worker;

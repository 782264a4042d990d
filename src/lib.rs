//! mod_wsgi-rs: Apache httpd's mod_wsgi, rebuilt in Rust.
//!
//! The layers, outermost first, and the rules between them:
//!
//! - [`module`]: Apache's face. The `wsgi_module` record, the directive
//!   table, and `extern "C"` trampolines that catch panics. Calls inward.
//! - `httpd`: the only code that sees bindgen output; small wrappers that
//!   borrow from the request or pool they came from.
//! - [`config`]: pure Rust. Directive parsing, per-server and per-directory
//!   configuration, merging. Never calls into Apache.
//! - [`wsgi`]: PEP 3333 over io traits (`BodySource`, `ResponseSink`), so one
//!   implementation serves embedded mode, daemon mode and tests.
//! - [`python`]: the interpreter's lifecycle, script loading and reloading,
//!   the `mod_wsgi` Python module, log streams.
//! - `handler` and `auth`: the request flow (mapping, embedded mode,
//!   handing over to daemons) and the access-control scripts, which always
//!   run in Apache's children.
//!
//! Unsafe code lives only in `httpd/`, `module.rs`, `python/init.rs` and
//! `python/interp.rs` (and later `daemon/sys.rs`).

mod auth;
pub mod config;
pub mod daemon;
mod dispatch;
pub mod express;
mod handler;
mod httpd;
pub mod module;
pub mod python;
pub mod wsgi;

/// This process's id, as log lines show it (`mod_wsgi (pid=…)`), without a
/// `getpid` system call per request: Apache's children note it in
/// `child_init` and daemon processes as they start (see
/// [`note_process_id`]). Elsewhere (Apache's parent, tests) it asks the
/// kernel each time.
pub fn process_id() -> u32 {
    match PROCESS_ID.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::process::id(),
        pid => pid,
    }
}

static PROCESS_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Records the id of a process that will serve requests and will not fork
/// again to serve them: an Apache child, a daemon process.
pub(crate) fn note_process_id() {
    PROCESS_ID.store(std::process::id(), std::sync::atomic::Ordering::Relaxed);
}

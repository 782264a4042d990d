//! Writing to Apache's error log, and the `log` crate backend.
//!
//! Messages always pass through the shim's fixed `"%s"`, never as a format
//! string; the level is checked first so disabled debug logging costs one
//! comparison. Records are tagged with the module (`[wsgi:LEVEL]`) because
//! the record's name is `mod_wsgi.c`, so `LogLevel wsgi:debug` works as it
//! does with mod_wsgi.

use super::server::ServerRef;
use super::{Request, Server, sys};
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicPtr, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
#[allow(dead_code)] // the full APLOG scale, for completeness
pub(crate) enum Level {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
    Trace1 = 8,
}

fn to_cstring(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).unwrap_or_default()
}

/// The server whose log takes what belongs to no request in this process:
/// null (the main server) except in a daemon process, which sets the
/// server its WSGIDaemonProcess was read in. A daemon process lives for one
/// configuration generation and never reloads the module, so this cannot
/// outlive the server_rec it points at.
static PROCESS_SERVER: AtomicPtr<sys::server_rec> = AtomicPtr::new(std::ptr::null_mut());

/// Sends this process's lines that belong to no request to `s`'s ErrorLog
/// (a daemon process: the server its WSGIDaemonProcess was read in).
pub(crate) fn set_process_server(s: &'static Server) {
    PROCESS_SERVER.store(s.as_ptr(), Ordering::Release);
}

/// The server_rec [`server`] logs to for `s`.
fn server_ptr(s: Option<&Server>) -> *mut sys::server_rec {
    match s {
        Some(s) => s.as_ptr(),
        None => {
            let p = PROCESS_SERVER.load(Ordering::Acquire);
            if p.is_null() {
                Server::main().map_or(std::ptr::null_mut(), Server::as_ptr)
            } else {
                p
            }
        }
    }
}

/// Whether [`server`] would log at `level` for `s`.
fn server_enabled(s: Option<&Server>, level: Level) -> bool {
    let s = server_ptr(s);
    // SAFETY: s is a live server_rec or NULL.
    s.is_null()
        || unsafe { sys::mwrs_server_is_level(s, crate::module::module_index(), level as c_int) }
            != 0
}

/// `ap_log_error` for `s` (when None: this process's server, see
/// [`set_process_server`], else the main server).
pub(crate) fn server(s: Option<&Server>, level: Level, msg: &str) {
    let s = server_ptr(s);
    let idx = crate::module::module_index();
    // SAFETY: s is a live server_rec or NULL (allowed: logs to stderr).
    unsafe {
        if !s.is_null() && sys::mwrs_server_is_level(s, idx, level as c_int) == 0 {
            return;
        }
        let m = to_cstring(msg);
        sys::mwrs_log_error(std::ptr::null(), 0, idx, level as c_int, 0, s, m.as_ptr());
    }
}

/// `ap_log_rerror`: tagged with the client and logged to the request's
/// VirtualHost's ErrorLog.
pub(crate) fn request(r: &Request, level: Level, msg: &str) {
    let idx = crate::module::module_index();
    // SAFETY: r is live for &r.
    unsafe {
        if sys::mwrs_request_is_level(r.as_ptr(), idx, level as c_int) == 0 {
            return;
        }
        let m = to_cstring(msg);
        sys::mwrs_log_rerror(
            std::ptr::null(),
            0,
            idx,
            level as c_int,
            0,
            r.as_ptr(),
            m.as_ptr(),
        );
    }
}

thread_local! {
    /// The request this Apache thread is serving, so that records from deep
    /// inside (the `log` crate, `sys.stderr`) land in its VirtualHost's log.
    static CURRENT: Cell<*const sys::request_rec> = const { Cell::new(std::ptr::null()) };
}

/// Marks `r` as this thread's current request until the guard drops.
pub(crate) struct CurrentRequest {
    prev: *const sys::request_rec,
}

impl CurrentRequest {
    pub(crate) fn enter(r: &Request) -> CurrentRequest {
        let prev = CURRENT.with(|c| c.replace(r.as_ptr()));
        CurrentRequest { prev }
    }
}

impl Drop for CurrentRequest {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

thread_local! {
    /// In a daemon process, which has no request_rec: the VirtualHost of
    /// the request this thread serves, and the `[client ...] ` tag that
    /// `ap_log_rerror` would have added.
    static CURRENT_SERVER: RefCell<Option<(ServerRef, String)>> = const { RefCell::new(None) };
}

/// Marks `server` (with the client tag `tag`) as the log of the request
/// this daemon thread serves, until the guard drops.
pub(crate) struct CurrentServer {
    prev: Option<(ServerRef, String)>,
}

impl CurrentServer {
    pub(crate) fn enter(server: ServerRef, tag: String) -> CurrentServer {
        let prev = CURRENT_SERVER.with(|c| c.replace(Some((server, tag))));
        CurrentServer { prev }
    }
}

impl Drop for CurrentServer {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT_SERVER.with(|c| *c.borrow_mut() = prev);
    }
}

/// Logs to the current request if this thread is serving one (in a daemon
/// process: to its VirtualHost, tagged with the client), else to this
/// process's server.
pub(crate) fn current(level: Level, msg: &str) {
    let r = CURRENT.with(|c| c.get());
    if !r.is_null() {
        // SAFETY: CURRENT is only set while the handler runs with a live r.
        request(unsafe { Request::from_ptr(r as *mut _) }, level, msg);
        return;
    }
    let handled = CURRENT_SERVER.with(|c| match &*c.borrow() {
        Some((s, tag)) => {
            server(Some(s), level, &format!("{tag}{msg}"));
            true
        }
        None => false,
    });
    if !handled {
        server(None, level, msg);
    }
}

/// Whether [`current`] would log at `level`: checked before a `log`
/// record is formatted, so a disabled `debug!` on every request costs no
/// allocation.
fn current_enabled(level: Level) -> bool {
    let r = CURRENT.with(|c| c.get());
    if !r.is_null() {
        // SAFETY: CURRENT is only set while the handler runs with a live r.
        return unsafe {
            sys::mwrs_request_is_level(r as *mut _, crate::module::module_index(), level as c_int)
        } != 0;
    }
    CURRENT_SERVER.with(|c| match &*c.borrow() {
        Some((s, _)) => server_enabled(Some(s), level),
        None => server_enabled(None, level),
    })
}

struct ApacheLogger;

impl log::Log for ApacheLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug => Level::Debug,
            log::Level::Trace => Level::Trace1,
        };
        if current_enabled(level) {
            current(level, &record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGGER: ApacheLogger = ApacheLogger;

/// Routes `log` records to Apache. Idempotent; the level filter is Apache's
/// (`LogLevel wsgi:LEVEL`), checked per record.
pub(crate) fn install_logger() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

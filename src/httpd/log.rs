//! Writing to Apache's error log, and the `log` crate backend.
//!
//! Messages always pass through the shim's fixed `"%s"`, never as a format
//! string; the level is checked first so disabled debug logging costs one
//! comparison. Records are tagged with the module (`[wsgi:LEVEL]`) because
//! the record's name is `mod_wsgi.c`, so `LogLevel wsgi:debug` works as it
//! does with mod_wsgi.

use super::{Request, Server, sys};
use std::cell::Cell;
use std::ffi::CString;
use std::os::raw::c_int;

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

/// `ap_log_error` for `s` (the main server when None).
pub(crate) fn server(s: Option<&Server>, level: Level, msg: &str) {
    let s = match s {
        Some(s) => s.as_ptr(),
        None => Server::main().map_or(std::ptr::null_mut(), Server::as_ptr),
    };
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

/// Logs to the current request if this thread is serving one, else to the
/// main server.
pub(crate) fn current(level: Level, msg: &str) {
    let r = CURRENT.with(|c| c.get());
    if r.is_null() {
        server(None, level, msg);
    } else {
        // SAFETY: CURRENT is only set while the handler runs with a live r.
        request(unsafe { Request::from_ptr(r as *mut _) }, level, msg);
    }
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
        current(level, &record.args().to_string());
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

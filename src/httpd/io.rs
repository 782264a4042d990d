//! Embedded mode's side of the io seam: Apache's request behind the
//! [`BodySource`], [`ResponseSink`] and [`RequestLog`] traits.
//!
//! These hold a raw `request_rec` pointer because the WSGI objects that own
//! them are Python objects (no lifetimes). They are only used on the
//! request's own thread while the handler runs; the handler takes them back
//! (and marks the log dead) before it returns.

use super::body::ClientBody;
use super::log::{self, Level};
use super::{Request, sys};
use crate::wsgi::{BodySource, LogLevel, RequestLog, ResponseHead, ResponseSink};
use std::ffi::CString;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

#[derive(Clone, Copy)]
struct RequestPtr(*mut sys::request_rec);
// SAFETY: the pointer is only dereferenced on the thread running the
// handler, while the request is live (see the module comment); Send is
// needed because the GIL is released around the calls that use it.
unsafe impl Send for RequestPtr {}
unsafe impl Sync for RequestPtr {}

impl RequestPtr {
    fn get(&self) -> &Request {
        // SAFETY: see the module comment: the handler outlives every use.
        unsafe { Request::from_ptr(self.0) }
    }
}

pub(crate) struct ApacheBody(ClientBody);

impl ApacheBody {
    pub(crate) fn new(r: &Request) -> ApacheBody {
        ApacheBody(ClientBody::new(r))
    }
}

impl BodySource for ApacheBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_init(buf)
    }

    fn read_uninit(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

pub(crate) struct ApacheSink {
    r: RequestPtr,
    sendfile: bool,
    /// WSGIErrorOverride On: an error status from the application is handed
    /// to Apache (ErrorDocument) instead of sending the application's body.
    error_override: Option<Arc<AtomicU16>>,
    suppress_body: bool,
}

impl ApacheSink {
    /// `sendfile`: WSGIEnableSendfile; httpd's own EnableSendfile applies
    /// too. With `error_override`, a status >= 400 is stored there instead of
    /// being sent, for the handler to return to Apache.
    pub(crate) fn new(
        r: &Request,
        sendfile: bool,
        error_override: Option<Arc<AtomicU16>>,
    ) -> ApacheSink {
        ApacheSink {
            r: RequestPtr(r.as_ptr()),
            sendfile,
            error_override,
            suppress_body: false,
        }
    }
}

fn cstring(s: &str) -> CString {
    // Header text was validated (no NUL, CR or LF) by start_response.
    CString::new(s).unwrap_or_default()
}

impl ApacheSink {
    /// Sets a daemon process's response head the way mod_wsgi's Apache
    /// child does, reading it like a CGI script's (see
    /// [`crate::daemon::cgi`]): `Status` sets the status, repeats merge,
    /// `Last-Modified` is rewritten by httpd. Unlike [`ResponseSink::start`]
    /// it leaves `r->expecting_100` alone, as mod_wsgi's daemon mode does.
    pub(crate) fn start_from_daemon(&mut self, head: &ResponseHead) {
        let cgi = crate::daemon::cgi::scan(head.status, &head.status_line, &head.headers);
        let r = self.r.get();
        r.set_status(cgi.status as i32, cgi.status_line.as_bytes());
        if let Some(ct) = &cgi.content_type {
            r.set_content_type(&crate::wsgi::latin1_bytes(ct));
        }
        let out = r.headers_out();
        for (name, value) in &cgi.headers {
            let v = crate::wsgi::latin1_bytes(value);
            if name.eq_ignore_ascii_case("content-length") {
                if let Ok(n) = value.trim().parse::<i64>() {
                    r.set_content_length(n);
                }
            } else if name.eq_ignore_ascii_case("last-modified") {
                r.set_last_modified_from(&v);
            } else {
                out.add(&cstring(name), &CString::new(v).unwrap_or_default());
            }
        }
        for (name, value) in &cgi.err_headers {
            let v = CString::new(crate::wsgi::latin1_bytes(value)).unwrap_or_default();
            r.err_headers_out().add(&cstring(name), &v);
        }
    }
}

impl ResponseSink for ApacheSink {
    fn start(&mut self, head: &ResponseHead) -> io::Result<()> {
        if let Some(slot) = &self.error_override
            && head.status >= 400
        {
            slot.store(head.status, Ordering::Release);
            self.suppress_body = true;
            return Ok(());
        }
        let r = self.r.get();
        r.set_status(head.status as i32, head.status_line.as_bytes());
        r.clear_expecting_100();
        let out = r.headers_out();
        for (name, value) in &head.headers {
            let v = crate::wsgi::latin1_bytes(value);
            if name.eq_ignore_ascii_case("content-type") {
                r.set_content_type(&v);
            } else if name.eq_ignore_ascii_case("content-length") {
                if let Ok(n) = value.trim().parse::<i64>() {
                    r.set_content_length(n);
                }
            } else {
                let v = CString::new(v).unwrap_or_default();
                out.add(&cstring(name), &v);
            }
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.suppress_body {
            return Ok(());
        }
        self.r.get().write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.r.get().flush()
    }

    fn body_complete(&mut self) -> io::Result<()> {
        // Sent now, in the handler, rather than with the end of the request:
        // httpd looks for a pipelined next request before it passes the end
        // of this one, and a client that already has its answer may have
        // sent one by then. The worker thread then serves it at once instead
        // of handing the connection back to the MPM's listener: mod_wsgi
        // flushes every block, and gets this for free.
        if self.suppress_body {
            return Ok(());
        }
        self.r.get().flush()
    }

    fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> io::Result<()> {
        if self.suppress_body {
            return Ok(());
        }
        // SAFETY: fd belongs to a Python file object that the response loop
        // keeps alive (and open) for the duration of this call.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        self.r
            .get()
            .send_file(fd, offset as i64, len as i64, self.sendfile)
    }
}

fn level(l: LogLevel) -> Level {
    match l {
        LogLevel::Error => Level::Error,
        LogLevel::Warning => Level::Warning,
        LogLevel::Info => Level::Info,
        LogLevel::Debug => Level::Debug,
    }
}

/// `wsgi.errors`: the request's log while it lives, the server's after.
pub(crate) struct ApacheRequestLog {
    r: RequestPtr,
    live: AtomicBool,
}

impl ApacheRequestLog {
    pub(crate) fn new(r: &Request) -> ApacheRequestLog {
        ApacheRequestLog {
            r: RequestPtr(r.as_ptr()),
            live: AtomicBool::new(true),
        }
    }

    pub(crate) fn end(&self) {
        self.live.store(false, Ordering::Release);
    }
}

impl RequestLog for ApacheRequestLog {
    fn log(&self, l: LogLevel, msg: &str) {
        if self.live.load(Ordering::Acquire) {
            log::request(self.r.get(), level(l), msg);
        } else {
            log::server(None, level(l), msg);
        }
    }
}

/// `sys.stdout` / `sys.stderr`: the request this thread serves, if any,
/// else the main server's log.
pub(crate) struct ProcessLog;

impl RequestLog for ProcessLog {
    fn log(&self, l: LogLevel, msg: &str) {
        log::current(level(l), msg);
    }
}

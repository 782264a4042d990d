//! PEP 3333 over io traits.
//!
//! One implementation serves embedded mode (Apache's request behind the
//! traits), daemon mode (a socket behind them) and tests. Everything that
//! blocks (reading the body, writing the response, logging) runs with the
//! GIL released.
#![forbid(unsafe_code)]

pub mod environ;
pub mod errors;
pub mod input;
pub mod proxy;
pub mod response;
pub mod validate;

use std::io;

/// Where the request body comes from.
pub trait BodySource: Send {
    /// Reads up to `buf.len()` bytes; `Ok(0)` at the end of the body.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Like [`BodySource::read`], into memory that may be uninitialised
    /// (the `bytes` object `wsgi.input.read()` returns, filled in place).
    /// Only writes `buf`, and returns how many bytes it wrote at its start.
    fn read_uninit(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize>;
}

/// Status and headers as the application gave them, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseHead {
    pub status: u16,
    /// The whole status line, e.g. `200 OK`.
    pub status_line: String,
    pub headers: Vec<(String, String)>,
}

/// Where the response goes.
pub trait ResponseSink: Send {
    /// Records the head; it must not block (it is called with the GIL
    /// held): the head goes out with the first write or flush.
    fn start(&mut self, head: &ResponseHead) -> io::Result<()>;
    /// Writes a block. With at most a few KiB written in all and no flush,
    /// it must only buffer (it is then called with the GIL held).
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    /// Writes a block that must reach the client now (a block an iterator
    /// yielded, or `write()`): `write` then `flush`, or one step where the
    /// sink can do both at once.
    fn write_flush(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data)?;
        self.flush()
    }
    /// The application has produced the whole body, and blocks written
    /// without a flush are still held back. A sink whose held-back bytes
    /// wait for the end of the request anyway (a daemon's: the end frame
    /// follows) does nothing; Apache's flushes them now (see
    /// [`crate::httpd::io::ApacheSink`]).
    fn body_complete(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Sends `len` bytes of the open file `fd` from `offset`. `fd` is
    /// borrowed from a Python file object for the duration of the call.
    fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> io::Result<()>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
}

/// The error log as the request sees it: tagged with the client and sent
/// to its VirtualHost's ErrorLog while the request lives.
pub trait RequestLog: Send + Sync {
    fn log(&self, level: LogLevel, msg: &str);
}

/// Microseconds since the epoch, the unit of `mod_wsgi.request_start` and
/// the other `mod_wsgi.*_start` keys.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Latin-1 text (as `start_response` validated it) as the bytes that go on
/// the wire.
pub fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

/// `mod_wsgi.thread_id` and `mod_wsgi.thread_requests` for the calling
/// thread: a small id given on first use, and how many requests the thread
/// served before this one.
pub fn thread_counters() -> (u64, u64) {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: Cell<u64> = const { Cell::new(0) };
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }
    let id = ID.with(|c| {
        if c.get() == 0 {
            c.set(NEXT_ID.fetch_add(1, Ordering::Relaxed));
        }
        c.get()
    });
    let n = COUNT.with(|c| c.replace(c.get() + 1));
    (id, n)
}

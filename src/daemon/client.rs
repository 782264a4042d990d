//! The Apache child's side of daemon mode: hands a request to its group's
//! daemon over the UNIX socket and relays the response to the client,
//! following `docs/daemon-protocol.md`. No Python here at all: the GIL is
//! never involved in a daemon request on this side.
//!
//! Failures are logged once, here, with the group, the daemon pid, the
//! request's URI and id, and answered as the protocol document's table
//! says: 503 when the daemon cannot be reached, 502 when it died or spoke
//! nonsense, 504 on timeouts, 500 when the application failed.
#![forbid(unsafe_code)]

use super::protocol::{
    self, Decoder, Frame, FrameReader, FrameWriter, Hello, Limits, Peer, ProtocolError,
    RequestBody, RequestMeta,
};
use super::sys;
use crate::config::DaemonProcess;
use crate::httpd::Request;
use crate::httpd::io::ApacheSink;
use crate::httpd::log::{self, Level};
use crate::wsgi::{self, ResponseSink};
use std::cell::RefCell;
use std::os::fd::AsFd;
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bodies up to this size with a known length go with the head, unasked.
const BODY_FOLLOWS_MAX: u64 = 64 * 1024;

/// What the handler knows about the request beyond the CGI variables.
pub(crate) struct Target<'a> {
    pub script_filename: &'a str,
    pub application_group: &'a str,
    pub callable_object: &'a str,
    pub script_reloading: bool,
}

/// Bytes as a latin-1 `String` (header text travels as bytes).
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// The handler for a request whose process group is a configured daemon
/// group: forward it, relay the answer, return the handler's status.
pub(crate) fn forward(
    r: &Request,
    group: &DaemonProcess,
    socket: &Path,
    vars: &[(&[u8], &[u8])],
    t: &Target<'_>,
) -> c_int {
    let pid = std::process::id();
    let name = &group.name;
    let request_id = r.log_id().to_string_lossy().into_owned();
    let uri = r.uri().to_string_lossy().into_owned();
    let fail = |status: u32, msg: String| -> c_int {
        log::request(r, Level::Error, &format!("mod_wsgi (pid={pid}): {msg}"));
        status as c_int
    };

    let timeout = group
        .socket_timeout
        .unwrap_or_else(|| sys::server_timeout(r.server()));
    let timeout = (!timeout.is_zero()).then_some(timeout);

    // The body's shape; small known bodies go with the head.
    let body = if r.read_chunked() {
        RequestBody::Chunked
    } else if r.remaining() > 0 {
        RequestBody::Length(r.remaining() as u64)
    } else {
        RequestBody::None
    };
    let expects = r.headers_in().get(c"Expect").is_some();
    let mut small_body: Option<Vec<u8>> = None;
    if let RequestBody::Length(n) = body
        && n <= BODY_FOLLOWS_MAX
        && !expects
    {
        let mut buf = vec![0u8; n as usize];
        let mut got = 0;
        if r.should_client_block() {
            while got < buf.len() {
                match r.get_client_block(&mut buf[got..]) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) => {
                        return fail(
                            400,
                            format!(
                                "Failed to read the request body of '{uri}' from the client: {e}."
                            ),
                        );
                    }
                }
            }
        }
        buf.truncate(got);
        small_body = Some(buf);
    }

    let limits = Limits {
        header_buffer_size: group
            .header_buffer_size
            .unwrap_or(protocol::DEFAULT_HEADER_BUFFER_SIZE),
        ..Limits::default()
    };
    let mut meta = RequestMeta {
        request_id: 0,
        request_start_us: r.request_time().max(0) as u64,
        queue_start_us: 0,
        timeout_ms: timeout.map_or(0, |d| d.as_millis().min(u32::MAX as u128) as u32),
        script_reloading: t.script_reloading,
        body,
        body_follows: small_body.is_some(),
        process_group: name.as_bytes(),
        application_group: t.application_group.as_bytes(),
        script_filename: t.script_filename.as_bytes(),
        callable_object: t.callable_object.as_bytes(),
        handler_script: b"",
    };
    let extra: [(&[u8], &[u8]); 1] = [(b"mod_wsgi.request_id", request_id.as_bytes())];

    // A request without a body may go over an idle connection kept from an
    // earlier request of this thread. If a connection turns out to be dead
    // in a way that proves the daemon never read the request (see
    // `Failure::is_unread`: an idle connection the daemon closed as it was
    // reused, or one a stopping daemon accepted but never served), the
    // request is sent again on a fresh connection.
    let mut pooled = if body == RequestBody::None {
        pool_take(socket)
    } else {
        None
    };
    let (mut bufs_r, mut bufs_w) = buffers_take();
    let mut retries = 0;
    let (conn, result, x_head_sent, daemon_pid) = loop {
        let mut conn = match pooled.take() {
            Some(c) => c,
            None => {
                let connect_timeout = group.connect_timeout;
                match sys::connect_unix(socket, connect_timeout) {
                    Ok(stream) => Pooled {
                        path: socket.to_path_buf(),
                        stream,
                        timeout: None,
                        daemon_pid: None,
                        greeted: false,
                    },
                    Err(e) => {
                        buffers_put(bufs_r, bufs_w);
                        return fail(
                            503,
                            format!(
                                "Unable to connect to WSGI daemon process '{name}' on '{}' within connect-timeout ({} s): {e}. \
                                 Check that the daemon processes are running (look for messages about them exiting) and that \
                                 Apache's User may access the socket (WSGISocketPrefix).",
                                socket.display(),
                                connect_timeout.as_secs()
                            ),
                        );
                    }
                }
            }
        };
        if !conn.greeted || conn.timeout != timeout {
            let _ = conn.stream.set_read_timeout(timeout);
            let _ = conn.stream.set_write_timeout(timeout);
            conn.timeout = timeout;
        }
        meta.queue_start_us = crate::wsgi::now_micros() as u64;
        let hello = Hello {
            role: Peer::ApacheChild,
            pid,
        };
        let mut writer = if conn.greeted {
            FrameWriter::resume(&conn.stream, Peer::Daemon, std::mem::take(&mut bufs_w))
        } else {
            FrameWriter::with_buffer(
                &conn.stream,
                Peer::Daemon,
                &hello,
                std::mem::take(&mut bufs_w),
            )
        };
        if let Err(e) = protocol::encode_request_head(
            &meta,
            vars.iter().copied().chain(extra.iter().copied()),
            &limits,
            writer.pending_mut(),
        ) {
            buffers_put(bufs_r, writer.into_parts().1);
            return fail(
                500,
                format!("Request to daemon process group '{name}' failed: {e}"),
            );
        }
        if let Some(b) = &small_body {
            if !b.is_empty() {
                protocol::encode_body(b, false, writer.pending_mut());
            }
            protocol::encode_end(writer.pending_mut());
        }
        let decoder = if conn.greeted {
            Decoder::resume(Peer::Daemon, limits)
        } else {
            Decoder::new(Peer::Daemon, limits)
        };
        let mut reader =
            FrameReader::with_buffer(&conn.stream, decoder, std::mem::take(&mut bufs_r));
        let mut x = Exchange {
            r,
            writer,
            daemon_pid: conn.daemon_pid,
            head_sent: false,
            got_frame: false,
            body_done: small_body.is_some() || body == RequestBody::None,
            asked_client: false,
            client_gone: false,
        };
        let result = match x.writer.flush() {
            Ok(()) => x.relay(&mut reader),
            Err(e) => Err(Failure::Protocol(e)),
        };
        // Reusable only after a clean exchange with nothing left unread
        // (a goodbye after the end frame stays in the buffer).
        let clean = result.is_ok() && reader.buffered().is_empty();
        let daemon_pid = x.daemon_pid;
        let head_sent = x.head_sent;
        let retry = body == RequestBody::None
            && retries < 3
            && !x.got_frame
            && matches!(&result, Err(f) if f.is_unread());
        bufs_r = reader.into_parts().1;
        bufs_w = x.writer.into_parts().1;
        conn.daemon_pid = daemon_pid;
        conn.greeted = true;
        if retry {
            retries += 1;
            continue;
        }
        break (clean.then_some(conn), result, head_sent, daemon_pid);
    };
    buffers_put(bufs_r, bufs_w);
    if let Some(c) = conn {
        pool_put(c);
    }
    let who = match daemon_pid {
        Some(p) => format!("daemon process (pid {p})"),
        None => "daemon process".to_string(),
    };
    let status = match result {
        Ok(()) => return crate::httpd::OK,
        Err(Failure::Protocol(e)) => {
            let msg = format!(
                "Request to daemon process group '{name}' failed: {e}. The {who} was serving '{uri}' (request id {request_id})."
            );
            log::request(r, Level::Error, &format!("mod_wsgi (pid={pid}): {msg}"));
            e.gateway_status()
        }
        Err(Failure::Daemon { status, message }) => {
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={pid}): Request to daemon process group '{name}' failed: the {who} reported: {message} (serving '{uri}', request id {request_id})."
                ),
            );
            status
        }
        Err(Failure::BadHeader(why)) => {
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={pid}): Request to daemon process group '{name}' failed: the {who} sent an invalid response header ({why}) for '{uri}' (request id {request_id})."
                ),
            );
            502
        }
        Err(Failure::ClientGone) => {
            log::request(
                r,
                Level::Info,
                &format!(
                    "mod_wsgi (pid={pid}): The client went away while '{uri}' was streamed from daemon process group '{name}'."
                ),
            );
            r.abort_connection();
            return crate::httpd::OK;
        }
    };
    if x_head_sent {
        // The status is already on its way: cut the response short.
        r.abort_connection();
        return crate::httpd::OK;
    }
    status as c_int
}

/// A connection to a daemon kept by an Apache worker thread between
/// requests (docs/daemon-protocol.md, "Connection reuse").
struct Pooled {
    path: PathBuf,
    stream: UnixStream,
    /// The socket timeouts set on it.
    timeout: Option<Duration>,
    daemon_pid: Option<u32>,
    /// The greetings went both ways with its first request.
    greeted: bool,
}

/// Idle connections a thread keeps, one per daemon socket, at most this many.
const POOL_MAX: usize = 4;

thread_local! {
    static POOL: RefCell<Vec<Pooled>> = const { RefCell::new(Vec::new()) };
}

/// Frame reader and writer buffers, shared by the process's threads: as
/// many stay allocated as requests ran at once (up to `SPARE_BUFFERS`),
/// not one 64 KiB read buffer per Apache thread.
static BUFFERS: std::sync::Mutex<Vec<(Vec<u8>, Vec<u8>)>> = std::sync::Mutex::new(Vec::new());
const SPARE_BUFFERS: usize = 16;

fn buffers_take() -> (Vec<u8>, Vec<u8>) {
    BUFFERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .unwrap_or_default()
}

fn buffers_put(read: Vec<u8>, write: Vec<u8>) {
    let mut b = BUFFERS.lock().unwrap_or_else(|e| e.into_inner());
    if b.len() < SPARE_BUFFERS {
        b.push((read, write));
    }
}

/// This thread's idle connection to `path`, if it is still alive.
fn pool_take(path: &Path) -> Option<Pooled> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let i = p.iter().position(|c| c.path == path)?;
        let c = p.swap_remove(i);
        sys::idle_connection_alive(c.stream.as_fd()).then_some(c)
    })
}

fn pool_put(c: Pooled) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.retain(|old| old.path != c.path);
        if p.len() >= POOL_MAX {
            p.remove(0);
        }
        p.push(c);
    })
}

enum Failure {
    Protocol(ProtocolError),
    Daemon { status: u16, message: String },
    BadHeader(String),
    ClientGone,
}

impl Failure {
    /// Whether the daemon provably never read the request: writing found
    /// the connection closed (`EPIPE`), or it was reset, which a UNIX
    /// socket reports only when the daemon closed it with bytes of ours
    /// unread. A daemon that read the request and then died gives a plain
    /// end of file instead, and the request is not retried.
    fn is_unread(&self) -> bool {
        match self {
            Failure::Protocol(ProtocolError::Io { source, .. }) => matches!(
                source.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            _ => false,
        }
    }
}

impl From<ProtocolError> for Failure {
    fn from(e: ProtocolError) -> Self {
        Failure::Protocol(e)
    }
}

struct Exchange<'r, 's> {
    r: &'r Request,
    writer: FrameWriter<&'s UnixStream>,
    daemon_pid: Option<u32>,
    head_sent: bool,
    /// A frame other than a greeting or goodbye arrived.
    got_frame: bool,
    body_done: bool,
    asked_client: bool,
    client_gone: bool,
}

impl Exchange<'_, '_> {
    fn relay(&mut self, reader: &mut FrameReader<&UnixStream>) -> Result<(), Failure> {
        let mut body_buf: Vec<u8> = Vec::new();
        let mut sink = ApacheSink::new(self.r, false, None);
        // A block sent with the flush flag reaches the client before this
        // thread waits for the daemon again, as PEP 3333 asks; but blocks
        // that are already here (the application yielded faster than they
        // travel) go down the filters together and are flushed once, as the
        // C module's socket buckets and the core output filter do.
        let mut unflushed = false;
        loop {
            if unflushed
                && reader.buffered().is_empty()
                && !sys::readable_now(reader.get_ref().as_fd())
            {
                unflushed = false;
                if self.r.flush().is_err() {
                    return Err(self.client_went_away());
                }
            }
            let frame = reader.next_frame()?;
            if !matches!(frame, Frame::Hello(_) | Frame::Goodbye) {
                self.got_frame = true;
            }
            match frame {
                Frame::Hello(h) => self.daemon_pid = Some(h.pid),
                Frame::BodyCredit(n) => self.answer_credit(n.get() as usize, &mut body_buf)?,
                Frame::ResponseHead(h) => {
                    let status_line = latin1(h.status);
                    let status = wsgi::validate::status_code(&status_line)
                        .map_err(|e| Failure::BadHeader(format!("status '{status_line}': {e}")))?;
                    let mut headers = Vec::with_capacity(h.headers.len());
                    for (k, v) in h.headers.iter() {
                        let (k, v) = (latin1(k), latin1(v));
                        wsgi::validate::header(&k, &v).map_err(Failure::BadHeader)?;
                        headers.push((k, v));
                    }
                    let head = wsgi::ResponseHead {
                        status,
                        status_line,
                        headers,
                    };
                    let _ = sink.start(&head);
                }
                Frame::Body { data, flush } => {
                    if self.client_gone {
                        continue;
                    }
                    self.head_sent = true;
                    if self.r.write(data).is_err() {
                        return Err(self.client_went_away());
                    }
                    unflushed |= flush;
                }
                Frame::End => return Ok(()),
                Frame::Error { kind, message } => {
                    return Err(Failure::Daemon {
                        status: kind.http_status(),
                        message: String::from_utf8_lossy(message).into_owned(),
                    });
                }
                Frame::Goodbye => {}
                Frame::RequestHead(_) | Frame::Abort { .. } => {
                    // The decoder refuses Apache-only frames from a daemon.
                }
            }
        }
    }

    /// Tells the daemon that the client went away (best effort).
    fn client_went_away(&mut self) -> Failure {
        self.client_gone = true;
        protocol::encode_abort(b"the client went away", self.writer.pending_mut());
        let _ = self.writer.flush();
        Failure::ClientGone
    }

    /// Answers a body credit with exactly one body frame of 1..=N bytes
    /// read from the client, or an end frame, or an abort.
    fn answer_credit(&mut self, n: usize, buf: &mut Vec<u8>) -> Result<(), Failure> {
        if self.body_done {
            protocol::encode_end(self.writer.pending_mut());
            self.writer.flush()?;
            return Ok(());
        }
        if !self.asked_client {
            self.asked_client = true;
            // Sends "100 Continue" when the client waits for it.
            if !self.r.should_client_block() {
                self.body_done = true;
                protocol::encode_end(self.writer.pending_mut());
                self.writer.flush()?;
                return Ok(());
            }
        }
        let want = n.min(256 * 1024);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        match self.r.get_client_block(&mut buf[..want]) {
            Ok(0) => {
                self.body_done = true;
                protocol::encode_end(self.writer.pending_mut());
            }
            Ok(k) => {
                self.writer.body(&buf[..k], false)?;
            }
            Err(e) => {
                self.body_done = true;
                protocol::encode_abort(e.to_string().as_bytes(), self.writer.pending_mut());
            }
        }
        self.writer.flush()?;
        Ok(())
    }
}

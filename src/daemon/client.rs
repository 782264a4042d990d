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
    self, Decoder, ErrorKind, Frame, FrameReader, FrameWriter, Hello, Limits, Peer, ProtocolError,
    RequestBody, RequestMeta,
};
use super::sys;
use crate::config::DaemonProcess;
use crate::httpd::Request;
use crate::httpd::body::ClientBody;
use crate::httpd::io::ApacheSink;
use crate::httpd::log::{self, Level};
use crate::httpd::request::ConnSocketProbe;
use crate::wsgi;
use std::cell::RefCell;
use std::os::fd::AsFd;
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many times a request is sent again to a daemon process group whose
/// processes restart because the script changed (one per process, plus
/// room for a script that keeps changing).
const MAX_RESENDS: u32 = 8;

/// The most request body bytes read from the client to answer one body
/// credit (the daemon asks for 256 KiB at a time).
const MAX_CREDIT_ANSWER: usize = 256 * 1024;

/// Bodies up to this size with a known length go with the head, unasked.
const BODY_FOLLOWS_MAX: u64 = 64 * 1024;

/// SO_SNDBUF of a connection that carries a request body read on credit:
/// room for a whole credit answer and the next, so that writing one does
/// not block while the daemon is still reading the last (the kernel's
/// default, 208 KiB, is less than one 256 KiB answer). The kernel caps it
/// at net.core.wmem_max; bytes in it are bytes in flight only.
const BODY_SEND_BUFFER: u32 = 1024 * 1024;

/// What the handler knows about the request beyond the CGI variables.
pub(crate) struct Target<'a> {
    pub script_filename: &'a str,
    pub application_group: &'a str,
    pub callable_object: &'a str,
    /// WSGIHandlerScript to run in place of `script_filename`, "" for none.
    pub handler_script: &'a str,
    pub script_reloading: bool,
    /// WSGIErrorOverride: an error status from the application is answered
    /// by Apache (ErrorDocument) instead of with the application's body.
    pub error_override: bool,
    /// WSGIEnableSendfile, for files the daemon passes (wsgi.file_wrapper).
    pub enable_sendfile: bool,
}

/// The read side of the daemon socket: bytes through `recvmsg`, keeping the
/// descriptors a daemon passes with file frames, in order.
struct FdReader<'s> {
    stream: &'s UnixStream,
    fds: std::collections::VecDeque<std::os::fd::OwnedFd>,
    /// socket-timeout for one read (None: wait for ever).
    timeout: Option<Duration>,
    /// Whether httpd closed the client's connection (an ungraceful stop).
    client_closed: ConnSocketProbe,
}

/// How often a read waiting for the daemon looks at the client connection.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// The read buffer for a daemon's response when `response-buffer-size` is
/// not set (mod_wsgi's default is 64 KiB). A 1 MiB response then takes 4
/// reads and 4 writes to the client instead of 16 of each, and the daemon
/// blocks on a full socket less often: about a fifth less CPU per 1 MiB
/// response in the benchmark. Reads start at 8 KiB and grow to this only
/// while a large response streams through (`FrameReader::with_sizes`).
const DEFAULT_RESPONSE_BUFFER: usize = 256 * 1024;

/// More unclaimed descriptors than this is a daemon misbehaving.
const MAX_PENDING_FDS: usize = 8;

impl std::io::Read for FdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // A blocking recvmsg, with no poll before it: one system call per
        // read when the daemon has answered. The socket's receive timeout
        // is at most STOP_CHECK (see `read_slice`), so a wait is cut into
        // slices: when httpd stops this child ungracefully it closes the
        // client sockets, and a thread blocked here for the whole
        // socket-timeout would keep the child alive until it is SIGKILLed.
        let start = Instant::now();
        loop {
            let mut got = Vec::new();
            match sys::recv_with_fds(self.stream.as_fd(), buf, &mut got) {
                Ok(n) => {
                    self.fds.extend(got);
                    if self.fds.len() > MAX_PENDING_FDS {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "the daemon process sent file descriptors without file frames",
                        ));
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if let Some(t) = self.timeout
                && start.elapsed() >= t
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "timed out waiting for the daemon process",
                ));
            }
            if self.client_closed.closed() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "Apache is stopping this child process and closed the client connection",
                ));
            }
        }
    }
}

/// The receive timeout a daemon connection gets: one slice of a wait for
/// the daemon (socket-timeout, when shorter, is the whole wait).
fn read_slice(timeout: Option<Duration>) -> Duration {
    timeout.map_or(STOP_CHECK, |t| t.min(STOP_CHECK))
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
    let pid = crate::process_id();
    let name = &group.name;
    let request_id = r.log_id().to_string_lossy().into_owned();
    let uri = r.uri().to_string_lossy().into_owned();
    let fail = |status: u32, msg: String| -> c_int {
        log::request(r, Level::Error, &format!("mod_wsgi (pid={pid}): {msg}"));
        status as c_int
    };

    if let Some(why) = script_owner_refusal(group, t.script_filename) {
        return fail(403, why);
    }

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
        server_index: r.server().position(),
        script_reloading: t.script_reloading,
        body,
        body_follows: small_body.is_some(),
        process_group: name.as_bytes(),
        application_group: t.application_group.as_bytes(),
        script_filename: t.script_filename.as_bytes(),
        callable_object: t.callable_object.as_bytes(),
        handler_script: t.handler_script.as_bytes(),
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
    let mut restarts = 0;
    // response-socket-timeout (which defaults to socket-timeout): how long
    // a write of the response to a slow client may block.
    let restore = group
        .response_socket_timeout
        .filter(|d| !d.is_zero())
        .and_then(|d| r.set_client_timeout(Some(d)));
    let (conn, result, x_head_sent, daemon_pid, overridden) = loop {
        let mut conn = match pooled.take() {
            Some(c) => c,
            None => {
                let connect_timeout = group.connect_timeout;
                match sys::connect_unix(socket, connect_timeout) {
                    Ok(stream) => {
                        if let Err(why) = check_listener(name, socket, &stream) {
                            buffers_put(bufs_r, bufs_w);
                            return fail(503, why);
                        }
                        Pooled {
                            path: socket.to_path_buf(),
                            stream,
                            timeout: None,
                            daemon_pid: None,
                            greeted: false,
                        }
                    }
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
            let _ = conn.stream.set_read_timeout(Some(read_slice(timeout)));
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
        // response-buffer-size: the most response bytes read ahead of what
        // went to the client (one read of the daemon socket). Reads start
        // smaller: a short response fits in a few KiB, and a buffer grows
        // to the full size only while a large one streams through it.
        let max_read = group
            .response_buffer_size
            .map_or(DEFAULT_RESPONSE_BUFFER, |n| n as usize);
        let first_read = max_read.min(protocol::INITIAL_READ_BUFFER);
        let mut reader = FrameReader::with_sizes(
            FdReader {
                stream: &conn.stream,
                fds: Default::default(),
                timeout,
                client_closed: r.socket_closed_probe(),
            },
            decoder,
            std::mem::take(&mut bufs_r),
            first_read,
            max_read,
        );
        let mut x = Exchange {
            r,
            writer,
            daemon_pid: conn.daemon_pid,
            head_sent: false,
            got_frame: false,
            body_done: small_body.is_some() || body == RequestBody::None,
            asked_client: false,
            client_body: ClientBody::new(r),
            client_gone: false,
            error_override: t.error_override,
            overridden: None,
            sendfile: t.enable_sendfile,
        };
        let result = match x.writer.flush() {
            Ok(()) => x.relay(&mut reader),
            Err(e) => Err(Failure::Protocol(e)),
        };
        // Reusable only after a clean exchange with nothing left unread
        // (a goodbye after the end frame stays in the buffer) and no
        // descriptor left unclaimed.
        let clean =
            result.is_ok() && reader.buffered().is_empty() && reader.get_ref().fds.is_empty();
        let daemon_pid = x.daemon_pid;
        let head_sent = x.head_sent;
        let overridden = x.overridden;
        let retry = body == RequestBody::None
            && retries < 3
            && !x.got_frame
            && matches!(&result, Err(f) if f.is_unread());
        // The daemon restarts because the script changed: send the request
        // again, to its replacement (or to another process of the group,
        // which may restart in turn). No body byte was read from the
        // client yet, and a small body is still at hand.
        let resend = matches!(&result, Err(Failure::Restarting))
            && !x.asked_client
            && restarts < MAX_RESENDS;
        bufs_r = reader.into_parts_keeping_capacity().1;
        bufs_w = x.writer.into_parts().1;
        conn.daemon_pid = daemon_pid;
        conn.greeted = true;
        if retry {
            retries += 1;
            continue;
        }
        if resend {
            restarts += 1;
            log::request(
                r,
                Level::Info,
                &format!(
                    "mod_wsgi (pid={pid}): The daemon process of group '{name}' restarts because its WSGI script changed; sending request {request_id} again."
                ),
            );
            continue;
        }
        break (
            clean.then_some(conn),
            result,
            head_sent,
            daemon_pid,
            overridden,
        );
    };
    buffers_put(bufs_r, bufs_w);
    if let Some(old) = restore {
        r.set_client_timeout(old);
    }
    if let Some(c) = conn {
        pool_put(c);
    }
    let who = match daemon_pid {
        Some(p) => format!("daemon process (pid {p})"),
        None => "daemon process".to_string(),
    };
    let status = match result {
        Ok(()) => match overridden {
            // Apache answers with its own error page (ErrorDocument).
            Some(code) => return code as c_int,
            None => return crate::httpd::OK,
        },
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
        Err(Failure::BadFile(why)) => {
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={pid}): Request to daemon process group '{name}' failed: the {who} passed an unusable file ({why}) for '{uri}' (request id {request_id})."
                ),
            );
            502
        }
        Err(Failure::Restarting) => {
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={pid}): Request to daemon process group '{name}' failed: its processes kept restarting because the WSGI script changed ({MAX_RESENDS} times in a row while serving '{uri}', request id {request_id})."
                ),
            );
            503
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

/// `script-user=` / `script-group=`: mod_wsgi answers 403 Forbidden for a
/// script not owned by that user or group.
fn script_owner_refusal(group: &DaemonProcess, script: &str) -> Option<String> {
    use super::policy::{ScriptOwner, script_owner_allowed};
    use std::os::unix::fs::MetadataExt;
    let (rule, option, spec) = match (&group.script_user, &group.script_group) {
        (Some(u), _) => (
            sys::lookup_user(u).map(|u| ScriptOwner::User(u.uid)),
            "script-user",
            u,
        ),
        (None, Some(g)) => (
            sys::lookup_group(g).map(ScriptOwner::Group),
            "script-group",
            g,
        ),
        (None, None) => return None,
    };
    let name = &group.name;
    let Some(rule) = rule else {
        return Some(format!(
            "The {option} '{spec}' of daemon process group '{name}' does not exist; refusing to run '{script}'."
        ));
    };
    match std::fs::metadata(script) {
        Ok(m) if script_owner_allowed(rule, m.uid(), m.gid()) => None,
        Ok(m) => Some(format!(
            "Script '{script}' is owned by uid {} and gid {}, but daemon process group '{name}' only runs scripts owned by {option} '{spec}'.",
            m.uid(),
            m.gid()
        )),
        Err(e) => Some(format!(
            "Cannot check the owner of script '{script}' for {option} of daemon process group '{name}': {e}."
        )),
    }
}

/// Only the group's daemons may get the request (with its cookies and
/// credentials): the process that listens on the socket must run as the
/// daemons' user, or be root (Apache's parent, which created the socket,
/// until the first daemon listens on it after switching user). Checked
/// once per connection, when it is made.
fn check_listener(name: &str, socket: &Path, stream: &UnixStream) -> Result<(), String> {
    let expected_uid = super::parent::daemon_uid(name);
    match sys::peer_credentials(stream.as_fd()) {
        Ok((uid, _)) if uid == 0 || Some(uid) == expected_uid => Ok(()),
        Ok((uid, peer_pid)) => {
            let expected =
                expected_uid.map_or("an unknown uid".to_string(), |u| format!("uid {u}"));
            Err(format!(
                "Refusing to send the request to WSGI daemon process '{name}': the process listening on \
                 '{}' (pid {peer_pid}) runs as uid {uid}, but the group's daemon processes run as {expected}. \
                 Another program may have taken the socket's place: make sure only root can write to the \
                 socket directory (WSGISocketPrefix).",
                socket.display()
            ))
        }
        Err(e) => Err(format!(
            "Cannot check who listens on the socket '{}' of WSGI daemon process '{name}': {e}.",
            socket.display()
        )),
    }
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

/// Pipes for moving request bodies (see `Exchange::answer_by_splice`),
/// shared by the process's threads: only uploads in progress need one, and
/// pipe pages count against a per-user limit (pipe-user-pages-soft).
static PIPES: std::sync::Mutex<Vec<sys::SplicePipe>> = std::sync::Mutex::new(Vec::new());
const SPARE_PIPES: usize = 4;

fn pipe_take() -> Option<sys::SplicePipe> {
    let spare = PIPES.lock().unwrap_or_else(|e| e.into_inner()).pop();
    spare.or_else(|| sys::SplicePipe::new(MAX_CREDIT_ANSWER).ok())
}

/// Keeps an empty pipe for the next upload.
fn pipe_put(p: sys::SplicePipe) {
    let mut spares = PIPES.lock().unwrap_or_else(|e| e.into_inner());
    if spares.len() < SPARE_PIPES {
        spares.push(p);
    }
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

/// How many spare read buffers keep the size they grew to for a large
/// response. Growing one again costs a reallocation and a zero-fill of up
/// to 256 KiB per response (about a tenth of the CPU of relaying 1 MiB);
/// keeping every spare grown would cost up to 4 MiB per child.
const GROWN_SPARES: usize = 4;

fn buffers_put(mut read: Vec<u8>, write: Vec<u8>) {
    let mut b = BUFFERS.lock().unwrap_or_else(|e| e.into_inner());
    if b.len() >= SPARE_BUFFERS {
        return;
    }
    let grown = |v: &Vec<u8>| v.capacity() > protocol::INITIAL_READ_BUFFER;
    if grown(&read) && b.iter().filter(|(r, _)| grown(r)).count() >= GROWN_SPARES {
        read.shrink_to(protocol::INITIAL_READ_BUFFER);
    }
    b.push((read, write));
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
    Daemon {
        status: u16,
        message: String,
    },
    BadHeader(String),
    BadFile(String),
    ClientGone,
    /// The daemon restarts because the request's script changed.
    Restarting,
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
    /// The request body, read as the daemon asks for it.
    client_body: ClientBody,
    client_gone: bool,
    /// WSGIErrorOverride is on for this request.
    error_override: bool,
    /// The application's error status, held back for Apache to answer;
    /// its body is read and dropped.
    overridden: Option<u16>,
    /// WSGIEnableSendfile.
    sendfile: bool,
}

impl Exchange<'_, '_> {
    fn relay(&mut self, reader: &mut FrameReader<FdReader<'_>>) -> Result<(), Failure> {
        let mut body_buf: Option<sys::MappedBuf> = None;
        let mut sink = ApacheSink::new(self.r, false, None);
        // A block sent with the flush flag reaches the client before this
        // thread waits for the daemon again, as PEP 3333 asks; but blocks
        // that are already here (the application yielded faster than they
        // travel) go down the filters together and are flushed once, as the
        // C module's socket buckets and the core output filter do.
        let mut unflushed = false;
        // The first flagged block is flushed at once even so: Apache must
        // not see the end of the body before a flush, or it would compute a
        // Content-Length where mod_wsgi's response is chunked (or keeps the
        // application's shorter one). Responses whose blocks fill their
        // Content-Length come unflagged and are never flushed early.
        let mut flushed_once = false;
        // Body bytes went down the filters after the last flush.
        let mut held = false;
        loop {
            if unflushed
                && reader.buffered().is_empty()
                && !sys::readable_now(reader.get_ref().stream.as_fd())
            {
                unflushed = false;
                held = false;
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
                    if self.error_override && status >= 400 {
                        self.overridden = Some(status);
                        continue;
                    }
                    let head = wsgi::ResponseHead {
                        status,
                        status_line,
                        headers,
                    };
                    sink.start_from_daemon(&head);
                }
                Frame::Body { data, flush } => {
                    if self.client_gone || self.overridden.is_some() {
                        continue;
                    }
                    self.head_sent = true;
                    if self.r.write(data).is_err() {
                        return Err(self.client_went_away());
                    }
                    held = true;
                    if flush && !flushed_once {
                        flushed_once = true;
                        held = false;
                        if self.r.flush().is_err() {
                            return Err(self.client_went_away());
                        }
                    } else {
                        unflushed |= flush;
                    }
                }
                Frame::File { offset, len } => {
                    let fd = reader.get_mut().fds.pop_front().ok_or_else(|| {
                        Failure::BadFile("a file frame came without a file descriptor".into())
                    })?;
                    if self.client_gone || self.overridden.is_some() {
                        continue;
                    }
                    self.send_file(fd, offset, len)?;
                }
                Frame::End => {
                    // The rest goes to the client now, not with the end of
                    // the request: httpd looks for a pipelined next request
                    // before it passes that end, and a client that has its
                    // answer may have sent one by then, which this thread
                    // then serves without handing the connection back to
                    // the MPM's listener. (A failure here means the client
                    // went away; the daemon is done either way.)
                    if held {
                        let _ = self.r.flush();
                    }
                    return Ok(());
                }
                Frame::Error {
                    kind: ErrorKind::Restarting,
                    ..
                } if !self.head_sent => return Err(Failure::Restarting),
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

    /// Sends `len` bytes from `offset` of a file the daemon passed, with
    /// Apache's file bucket (sendfile when enabled): the bytes never cross
    /// the daemon socket. Only a regular file holding those bytes is used.
    fn send_file(
        &mut self,
        fd: std::os::fd::OwnedFd,
        offset: u64,
        len: u64,
    ) -> Result<(), Failure> {
        let file = std::fs::File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Failure::BadFile(format!("fstat failed: {e}")))?;
        if !meta.is_file() {
            return Err(Failure::BadFile("not a regular file".into()));
        }
        if offset.saturating_add(len) > meta.len() {
            return Err(Failure::BadFile(format!(
                "{len} bytes from offset {offset} were asked for, but the file has {} bytes",
                meta.len()
            )));
        }
        log::request(
            self.r,
            Level::Debug,
            &format!(
                "mod_wsgi (pid={}): Sending {len} bytes from offset {offset} of a file passed by the daemon process (sendfile {}).",
                crate::process_id(),
                if self.sendfile { "on" } else { "off" }
            ),
        );
        self.head_sent = true;
        if self
            .r
            .send_file(file.as_fd(), offset as i64, len as i64, self.sendfile)
            .is_err()
        {
            return Err(self.client_went_away());
        }
        Ok(())
    }

    /// Moves up to `n` body bytes from the client socket to the daemon
    /// socket through `pipe`, never through this process's memory, as one
    /// body frame. The outer error is the daemon socket's (the pipe may
    /// then hold bytes and is dropped); the inner result is the client's:
    /// bytes sent, or 0 at the end of the body.
    fn send_spliced(
        &mut self,
        n: usize,
        pipe: sys::SplicePipe,
    ) -> Result<std::io::Result<usize>, Failure> {
        let moved = self
            .client_body
            .splice_into(pipe.write_end(), n.min(pipe.capacity));
        if let Ok(k) = moved
            && k > 0
        {
            protocol::encode_body_header(k as u32, false, self.writer.pending_mut());
            self.writer
                .send_raw(|sock| pipe.drain_into(sock.as_fd(), k))?;
        }
        pipe_put(pipe);
        Ok(moved)
    }

    /// Answers a body credit with exactly one body frame of 1..=N bytes
    /// read from the client, or an end frame, or an abort.
    fn answer_credit(&mut self, n: usize, buf: &mut Option<sys::MappedBuf>) -> Result<(), Failure> {
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
            let _ = sys::set_buffer_size(self.writer.get_ref().as_fd(), true, BODY_SEND_BUFFER);
        }
        // Once the body is read from the client socket (see ClientBody),
        // its bytes are spliced; else (or without a pipe) they are read
        // into this buffer and written.
        let got = match self.client_body.is_direct().then(pipe_take).flatten() {
            Some(pipe) => self.send_spliced(n, pipe)?,
            None => {
                let mapped = match buf {
                    Some(b) => Ok(b),
                    None => sys::MappedBuf::new(MAX_CREDIT_ANSWER).map(|b| buf.insert(b)),
                };
                match mapped {
                    Ok(buf) => {
                        let want = n.min(buf.len());
                        let read = self.client_body.read_init(&mut buf[..want]);
                        if let Ok(k) = read
                            && k > 0
                        {
                            self.writer.body(&buf[..k], false)?;
                        }
                        read
                    }
                    Err(e) => Err(std::io::Error::other(format!(
                        "no memory to read the request body into: {e}"
                    ))),
                }
            }
        };
        match got {
            Ok(0) => {
                self.body_done = true;
                protocol::encode_end(self.writer.pending_mut());
            }
            Ok(_) => {}
            Err(e) => {
                self.body_done = true;
                protocol::encode_abort(e.to_string().as_bytes(), self.writer.pending_mut());
            }
        }
        self.writer.flush()?;
        Ok(())
    }
}

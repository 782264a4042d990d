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
use crate::httpd::request::ConnSocketProbe;
use crate::wsgi;
use std::os::fd::AsFd;
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bodies up to this size with a known length go with the head, unasked.
const BODY_FOLLOWS_MAX: u64 = 64 * 1024;

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
struct FdReader {
    stream: UnixStream,
    fds: std::collections::VecDeque<std::os::fd::OwnedFd>,
    /// socket-timeout for one read (None: wait for ever).
    timeout: Option<Duration>,
    /// Whether httpd closed the client's connection (an ungraceful stop).
    client_closed: ConnSocketProbe,
}

/// How often a read waiting for the daemon looks at the client connection.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// More unclaimed descriptors than this is a daemon misbehaving.
const MAX_PENDING_FDS: usize = 8;

impl std::io::Read for FdReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Wait in short slices: when httpd stops this child ungracefully it
        // closes the client sockets; a thread blocked here for the whole
        // socket-timeout would keep the child alive until it is SIGKILLed.
        let start = Instant::now();
        loop {
            let slice = match self.timeout {
                Some(t) => match t.checked_sub(start.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(STOP_CHECK),
                    _ => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "timed out waiting for the daemon process",
                        ));
                    }
                },
                None => STOP_CHECK,
            };
            if sys::poll_readable(self.stream.as_fd(), slice)? {
                break;
            }
            if self.client_closed.closed() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "Apache is stopping this child process and closed the client connection",
                ));
            }
        }
        let mut got = Vec::new();
        let n = sys::recv_with_fds(self.stream.as_fd(), buf, &mut got)?;
        self.fds.extend(got);
        if self.fds.len() > MAX_PENDING_FDS {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the daemon process sent file descriptors without file frames",
            ));
        }
        Ok(n)
    }
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

    if let Some(why) = script_owner_refusal(group, t.script_filename) {
        return fail(403, why);
    }

    let connect_timeout = group.connect_timeout;
    let stream = match sys::connect_unix(socket, connect_timeout) {
        Ok(s) => s,
        Err(e) => {
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
    };
    // Only the group's daemons may get the request (with its cookies and
    // credentials): the process that listens on the socket must run as the
    // daemons' user, or be root (Apache's parent, which created the socket,
    // until the first daemon listens on it after switching user).
    let expected_uid = super::parent::daemon_uid(name);
    match sys::peer_credentials(stream.as_fd()) {
        Ok((uid, _)) if uid == 0 || Some(uid) == expected_uid => {}
        Ok((uid, peer_pid)) => {
            let expected =
                expected_uid.map_or("an unknown uid".to_string(), |u| format!("uid {u}"));
            return fail(
                503,
                format!(
                    "Refusing to send the request to WSGI daemon process '{name}': the process listening on \
                     '{}' (pid {peer_pid}) runs as uid {uid}, but the group's daemon processes run as {expected}. \
                     Another program may have taken the socket's place: make sure only root can write to the \
                     socket directory (WSGISocketPrefix).",
                    socket.display()
                ),
            );
        }
        Err(e) => {
            return fail(
                503,
                format!(
                    "Cannot check who listens on the socket '{}' of WSGI daemon process '{name}': {e}.",
                    socket.display()
                ),
            );
        }
    }
    let timeout = group
        .socket_timeout
        .unwrap_or_else(|| sys::server_timeout(r.server()));
    let timeout = (!timeout.is_zero()).then_some(timeout);
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let queue_start = crate::wsgi::now_micros() as u64;

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
    let meta = RequestMeta {
        request_id: 0,
        request_start_us: r.request_time().max(0) as u64,
        queue_start_us: queue_start,
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
    let Ok(write_half) = stream.try_clone() else {
        return fail(
            503,
            format!("Cannot use the socket of daemon process group '{name}'."),
        );
    };
    let hello = Hello {
        role: Peer::ApacheChild,
        pid,
    };
    let mut writer = FrameWriter::new(write_half, Peer::Daemon, &hello);
    let extra: [(&[u8], &[u8]); 1] = [(b"mod_wsgi.request_id", request_id.as_bytes())];
    if let Err(e) = protocol::encode_request_head(
        &meta,
        vars.iter().copied().chain(extra.iter().copied()),
        &limits,
        writer.pending_mut(),
    ) {
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
    // response-buffer-size: the most response bytes read ahead of what
    // went to the client (one read of the daemon socket).
    let buffer = group
        .response_buffer_size
        .unwrap_or(crate::config::daemon::DEFAULT_RESPONSE_BUFFER_SIZE) as usize;
    let mut reader = FrameReader::with_buffer(
        FdReader {
            stream,
            fds: Default::default(),
            timeout,
            client_closed: r.socket_closed_probe(),
        },
        Decoder::new(Peer::Daemon, limits),
        Vec::with_capacity(buffer),
    );
    let mut x = Exchange {
        r,
        writer,
        daemon_pid: None,
        head_sent: false,
        body_done: small_body.is_some() || body == RequestBody::None,
        asked_client: false,
        client_gone: false,
        error_override: t.error_override,
        overridden: None,
        sendfile: t.enable_sendfile,
    };
    // response-socket-timeout (which defaults to socket-timeout): how long
    // a write of the response to a slow client may block.
    let restore = group
        .response_socket_timeout
        .filter(|d| !d.is_zero())
        .and_then(|d| r.set_client_timeout(Some(d)));
    let result = match x.writer.flush() {
        Ok(()) => x.relay(&mut reader),
        Err(e) => Err(Failure::Protocol(e)),
    };
    if let Some(old) = restore {
        r.set_client_timeout(old);
    }
    let who = match x.daemon_pid {
        Some(p) => format!("daemon process (pid {p})"),
        None => "daemon process".to_string(),
    };
    let status = match result {
        Ok(()) => match x.overridden {
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
    if x.head_sent {
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

enum Failure {
    Protocol(ProtocolError),
    Daemon { status: u16, message: String },
    BadHeader(String),
    BadFile(String),
    ClientGone,
}

impl From<ProtocolError> for Failure {
    fn from(e: ProtocolError) -> Self {
        Failure::Protocol(e)
    }
}

struct Exchange<'r> {
    r: &'r Request,
    writer: FrameWriter<UnixStream>,
    daemon_pid: Option<u32>,
    head_sent: bool,
    body_done: bool,
    asked_client: bool,
    client_gone: bool,
    /// WSGIErrorOverride is on for this request.
    error_override: bool,
    /// The application's error status, held back for Apache to answer;
    /// its body is read and dropped.
    overridden: Option<u16>,
    /// WSGIEnableSendfile.
    sendfile: bool,
}

impl Exchange<'_> {
    fn relay(&mut self, reader: &mut FrameReader<FdReader>) -> Result<(), Failure> {
        let mut body_buf: Vec<u8> = Vec::new();
        let mut sink = ApacheSink::new(self.r, false, None);
        loop {
            match reader.next_frame()? {
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
                    if self.r.write(data).is_err() || (flush && self.r.flush().is_err()) {
                        self.client_gone = true;
                        let mut out = Vec::new();
                        protocol::encode_abort(b"the client went away", &mut out);
                        self.writer.pending_mut().extend_from_slice(&out);
                        let _ = self.writer.flush();
                        return Err(Failure::ClientGone);
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
                std::process::id(),
                if self.sendfile { "on" } else { "off" }
            ),
        );
        self.head_sent = true;
        if self
            .r
            .send_file(file.as_fd(), offset as i64, len as i64, self.sendfile)
            .is_err()
        {
            self.client_gone = true;
            let mut out = Vec::new();
            protocol::encode_abort(b"the client went away", &mut out);
            self.writer.pending_mut().extend_from_slice(&out);
            let _ = self.writer.flush();
            return Err(Failure::ClientGone);
        }
        Ok(())
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

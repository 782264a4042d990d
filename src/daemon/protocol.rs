//! The daemon-mode wire protocol: a pure frame codec for the UNIX stream
//! socket between an Apache child thread and a daemon process.
//!
//! This module owns the bytes on that socket and nothing else: no Apache, no
//! Python, no sockets of its own. `daemon::client` (Apache side) and
//! `daemon::worker` (daemon side) drive it over a `UnixStream`; the unit tests
//! drive it over in-memory buffers. The full design, with byte diagrams, the
//! conversation, flow control and the status code Apache answers for each
//! failure, is in `docs/daemon-protocol.md`.
//!
//! # Wire format in one screen
//!
//! Each direction opens with a 16-byte [`Hello`] (the magic `mwsgi-rs`, the
//! protocol version, the sender's role and pid). Its layout is frozen for all
//! versions so that an old Apache child and a new daemon (or the reverse) fail
//! with "speaks version 1 but this process speaks version 2", not with garbage.
//! After it come frames, each an 8-byte header and a payload:
//!
//! ```text
//! type:u8  flags:u8  reserved:u16 (zero)  length:u32 (little endian)  payload
//! ```
//!
//! | type | name            | sent by | payload                                  |
//! |------|-----------------|---------|------------------------------------------|
//! | 0x11 | request head    | Apache  | metadata, then the CGI variables         |
//! | 0x12 | abort           | Apache  | reason text (client gone, body error)    |
//! | 0x21 | response head   | daemon  | status line, then the response headers   |
//! | 0x22 | body credit     | daemon  | u32: "send me up to N request body bytes"|
//! | 0x23 | error           | daemon  | kind byte, message (maps to 500/503/504) |
//! | 0x24 | file            | daemon  | offset, length; a descriptor via SCM_RIGHTS |
//! | 0x31 | body            | both    | raw bytes; flag 0x01 = flush             |
//! | 0x32 | end             | both    | empty: end of request body / response    |
//! | 0x33 | goodbye         | both    | empty: "I will close, do not reuse"      |
//!
//! # API
//!
//! * Encoding is pure and appends to a caller's `Vec<u8>`, so one request
//!   (hello, head, small body, end) becomes one buffer and one `write`:
//!   [`encode_hello`], [`encode_request_head`], [`encode_response_head`],
//!   [`encode_body`], [`encode_body_header`], [`encode_end`],
//!   [`encode_goodbye`], [`encode_body_credit`], [`encode_error`], [`encode_file`],
//!   [`encode_abort`], and [`RequestHead::encode`] for the owned form.
//! * [`Decoder::decode`] is incremental: give it whatever bytes you have and
//!   it answers [`Decoded::NeedMore`] (with how many more bytes it needs at
//!   least) or a borrowed [`Frame`] plus how many bytes it consumed. It never
//!   allocates. Head frames are length-checked against [`Limits`] *before* the
//!   caller is asked for their bytes, so a hostile length never makes anyone
//!   allocate. Body frames are not buffered at all: they come out in pieces as
//!   bytes arrive, so a 1 GiB body costs one read buffer, not 1 GiB.
//! * [`FrameReader`] runs a decoder over any blocking [`Read`] (a socket with
//!   a receive timeout) with one reusable buffer; [`FrameWriter`] coalesces
//!   small frames into one buffer and sends large bodies with `write_vectored`
//!   (frame header and caller's bytes in one syscall, no copy).
//! * The CGI variables, the value that flows from `httpd` through here into
//!   `wsgi::environ`, are encoded from any iterator of byte pairs and decoded
//!   as a validated, zero-copy [`Pairs`] view; [`RequestHead`] is the owned
//!   form with `Vec<(Vec<u8>, Vec<u8>)>`.
//!
//! Every failure is a [`ProtocolError`] whose `Display` is a sentence for the
//! Apache error log; the caller prefixes the group, e.g. "Request to daemon
//! process group 'django' failed: {err}". After an error the stream is out of
//! step and the connection must be closed.
//!
//! The codec is byte-transparent: names and values may hold any bytes,
//! including NUL and 0xFF. Checking that header names are tokens and values
//! hold no CR/LF is the `wsgi` layer's job (in the daemon, before encoding, and
//! again in the Apache child before the headers reach `r->headers_out`).

#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::num::NonZeroU32;

/// The first eight bytes each side sends on a connection.
pub const MAGIC: [u8; 8] = *b"mwsgi-rs";

/// The protocol version spoken by this build. Both sides must match exactly.
pub const PROTOCOL_VERSION: u16 = 2;

/// Length of the [`Hello`] greeting, frozen for all protocol versions.
pub const HELLO_LEN: usize = 16;

/// Length of every frame header.
pub const FRAME_HEADER_LEN: usize = 8;

/// mod_wsgi's default `header-buffer-size`: the largest single response
/// header (name and value) or status line a daemon may send.
pub const DEFAULT_HEADER_BUFFER_SIZE: u32 = 32 * 1024;

/// Default limit on a whole request or response head frame.
pub const DEFAULT_MAX_HEAD: u32 = 1024 * 1024;

/// Longest message carried by an error or abort frame; longer ones are cut.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// Default size of a [`FrameReader`] buffer, the same as mod_wsgi's default
/// `response-buffer-size`.
pub const DEFAULT_READ_BUFFER: usize = 64 * 1024;

/// Where a growing [`FrameReader`] buffer starts ([`FrameReader::with_sizes`]):
/// a whole short response (head, body, end) fits in one read.
pub const INITIAL_READ_BUFFER: usize = 8 * 1024;

/// Body flag: after this frame, pass everything on now (generator yields).
const FLAG_FLUSH: u8 = 0x01;

// Request head flags.
const REQ_SCRIPT_RELOADING: u32 = 0x1;
const REQ_BODY_LENGTH: u32 = 0x2;
const REQ_BODY_CHUNKED: u32 = 0x4;
const REQ_BODY_FOLLOWS: u32 = 0x8;
const REQ_KNOWN_FLAGS: u32 =
    REQ_SCRIPT_RELOADING | REQ_BODY_LENGTH | REQ_BODY_CHUNKED | REQ_BODY_FOLLOWS;

/// Fixed part of a request head payload: ids, times, length, timeout,
/// server index, flags.
const REQ_FIXED_LEN: usize = 8 + 8 + 8 + 8 + 4 + 4 + 4;

/// Bodies up to this size are copied into the writer's pending buffer (one
/// `write` for many small frames); larger ones go out with `write_vectored`.
const COPY_THRESHOLD: usize = 16 * 1024;

/// The writer sends its pending buffer once it holds this much.
const PENDING_LIMIT: usize = 64 * 1024;

/// The capacity a [`FrameWriter`] buffer keeps when handed back for reuse:
/// room for an ordinary head and a few small frames.
pub const SPARE_PENDING: usize = 16 * 1024;

/// Which end of the socket sent the bytes being described.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// An Apache child (worker) thread forwarding a request.
    ApacheChild,
    /// A daemon process running the WSGI application.
    Daemon,
}

impl Peer {
    const fn role_byte(self) -> u8 {
        match self {
            Peer::ApacheChild => 1,
            Peer::Daemon => 2,
        }
    }

    const fn from_role_byte(byte: u8) -> Option<Peer> {
        match byte {
            1 => Some(Peer::ApacheChild),
            2 => Some(Peer::Daemon),
            _ => None,
        }
    }

    /// The other end of the socket.
    pub const fn other(self) -> Peer {
        match self {
            Peer::ApacheChild => Peer::Daemon,
            Peer::Daemon => Peer::ApacheChild,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Peer::ApacheChild => "Apache child process",
            Peer::Daemon => "daemon process",
        })
    }
}

/// The greeting that opens each direction of a connection.
///
/// Layout (16 bytes, never to change): magic `mwsgi-rs`, version `u16`, role
/// `u8` (1 Apache child, 2 daemon), reserved `u8` (0), pid `u32`. The pid lets
/// the Apache side name the daemon process that failed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Who is speaking.
    pub role: Peer,
    /// The sender's process id.
    pub pid: u32,
}

/// Frame types. The high nibble says who may send it: 1 Apache, 2 daemon,
/// 3 either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// The request: metadata and CGI variables.
    RequestHead = 0x11,
    /// Apache gives up on the request (client gone, body read failed).
    Abort = 0x12,
    /// Status line and response headers.
    ResponseHead = 0x21,
    /// The daemon asks for up to N more bytes of request body.
    BodyCredit = 0x22,
    /// The daemon failed the request.
    Error = 0x23,
    /// Response body bytes from a file: a descriptor passed with the frame
    /// (SCM_RIGHTS), an offset and a length.
    File = 0x24,
    /// Request or response body bytes.
    Body = 0x31,
    /// End of the request body or of the response.
    End = 0x32,
    /// The sender will close the connection: do not reuse it.
    Goodbye = 0x33,
}

impl FrameType {
    /// The frame type for a header's first byte.
    pub const fn from_byte(byte: u8) -> Option<FrameType> {
        Some(match byte {
            0x11 => FrameType::RequestHead,
            0x12 => FrameType::Abort,
            0x21 => FrameType::ResponseHead,
            0x22 => FrameType::BodyCredit,
            0x23 => FrameType::Error,
            0x24 => FrameType::File,
            0x31 => FrameType::Body,
            0x32 => FrameType::End,
            0x33 => FrameType::Goodbye,
            _ => return None,
        })
    }

    /// Who may send this frame; `None` when both sides may.
    pub const fn sender(self) -> Option<Peer> {
        match (self as u8) >> 4 {
            1 => Some(Peer::ApacheChild),
            2 => Some(Peer::Daemon),
            _ => None,
        }
    }

    /// The frame's name in log messages.
    pub const fn name(self) -> &'static str {
        match self {
            FrameType::RequestHead => "request headers frame",
            FrameType::Abort => "abort frame",
            FrameType::ResponseHead => "response headers frame",
            FrameType::BodyCredit => "body credit frame",
            FrameType::Error => "error frame",
            FrameType::File => "file frame",
            FrameType::Body => "body frame",
            FrameType::End => "end frame",
            FrameType::Goodbye => "goodbye frame",
        }
    }

    /// "the rest of a ..." for timeout and truncation messages.
    const fn rest_of(self) -> &'static str {
        match self {
            FrameType::RequestHead => "the rest of a request headers frame",
            FrameType::Abort => "the rest of an abort frame",
            FrameType::ResponseHead => "the rest of a response headers frame",
            FrameType::BodyCredit => "the rest of a body credit frame",
            FrameType::Error => "the rest of an error frame",
            FrameType::File => "the rest of a file frame",
            FrameType::Body => "the rest of a body frame",
            FrameType::End => "the rest of an end frame",
            FrameType::Goodbye => "the rest of a goodbye frame",
        }
    }
}

/// Why the daemon failed a request, carried by an error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorKind {
    /// The application failed before sending headers: the script did not
    /// load, the callable raised, or its headers were invalid.
    Application = 1,
    /// The request waited longer than `queue-timeout` for a daemon thread.
    QueueTimeout = 2,
    /// The request ran past `request-timeout` and was interrupted.
    RequestTimeout = 3,
    /// The daemon is shutting down or restarting, or the request was for
    /// another process group.
    Unavailable = 4,
    /// The daemon could not make sense of the request frames, or failed
    /// internally.
    Internal = 5,
    /// The request's WSGI script changed since this process loaded it
    /// (`WSGIScriptReloading On`): the daemon restarts, as mod_wsgi's do,
    /// and the Apache child sends the request again, to the new process.
    /// Sent before any body was asked for.
    Restarting = 6,
}

impl ErrorKind {
    /// The error kind for an error frame's first payload byte.
    pub const fn from_byte(byte: u8) -> Option<ErrorKind> {
        Some(match byte {
            1 => ErrorKind::Application,
            2 => ErrorKind::QueueTimeout,
            3 => ErrorKind::RequestTimeout,
            4 => ErrorKind::Unavailable,
            5 => ErrorKind::Internal,
            6 => ErrorKind::Restarting,
            _ => return None,
        })
    }

    /// The status the Apache child answers with when this arrives before the
    /// response head. After the head, it can only abort the client connection.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorKind::Application | ErrorKind::Internal => 500,
            ErrorKind::Unavailable | ErrorKind::Restarting => 503,
            ErrorKind::QueueTimeout | ErrorKind::RequestTimeout => 504,
        }
    }
}

/// What the request body looks like, as the Apache child knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestBody {
    /// No body: no body frames and no end frame follow the head.
    #[default]
    None,
    /// `Content-Length` is known.
    Length(u64),
    /// Length unknown (chunked transfer encoding, HTTP/2 without a length).
    Chunked,
}

/// Size limits the decoder enforces before it asks for a frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head frame (metadata and CGI variables).
    pub max_request_head: u32,
    /// Largest response head frame in total.
    pub max_response_head: u32,
    /// Largest single response header (name plus value) or status line:
    /// the `header-buffer-size` option of `WSGIDaemonProcess`.
    pub header_buffer_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_head: DEFAULT_MAX_HEAD,
            max_response_head: DEFAULT_MAX_HEAD,
            header_buffer_size: DEFAULT_HEADER_BUFFER_SIZE,
        }
    }
}

/// Everything in a request head except the CGI variables, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestMeta<'a> {
    /// Ties the Apache and daemon log lines of one request together.
    pub request_id: u64,
    /// `r->request_time`: when Apache read the request line, µs since the epoch.
    pub request_start_us: u64,
    /// When the Apache child connected to the daemon, µs since the epoch; the
    /// daemon measures `queue-timeout` from here.
    pub queue_start_us: u64,
    /// How long the Apache child waits on any single socket read or write for
    /// this request (`socket-timeout`), in milliseconds; 0 means no limit.
    pub timeout_ms: u32,
    /// Position of the request's `server_rec` (its VirtualHost) in httpd's
    /// server list, 0 for the main server. The daemon was forked from the
    /// same configuration, so it has the same list and logs the request's
    /// lines to that server's ErrorLog.
    pub server_index: u32,
    /// `WSGIScriptReloading`: reload the script when its mtime changes.
    pub script_reloading: bool,
    /// The request body's shape.
    pub body: RequestBody,
    /// The whole body follows the head at once, unasked (small bodies only);
    /// otherwise body bytes flow only in answer to body credit frames.
    pub body_follows: bool,
    /// `WSGIProcessGroup`: the daemon checks it serves this group.
    pub process_group: &'a [u8],
    /// `WSGIApplicationGroup`, already expanded (`%{GLOBAL}` is empty).
    pub application_group: &'a [u8],
    /// The WSGI script file.
    pub script_filename: &'a [u8],
    /// `WSGICallableObject`, usually `application`.
    pub callable_object: &'a [u8],
    /// `WSGIHandlerScript`, empty when none.
    pub handler_script: &'a [u8],
}

/// A decoded request head, borrowing the decoder's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeadRef<'a> {
    /// The metadata.
    pub meta: RequestMeta<'a>,
    /// The CGI variables in Apache's order.
    pub cgi_vars: Pairs<'a>,
}

impl RequestHeadRef<'_> {
    /// Copy into the owned form.
    pub fn into_owned(self) -> RequestHead {
        let m = self.meta;
        RequestHead {
            request_id: m.request_id,
            request_start_us: m.request_start_us,
            queue_start_us: m.queue_start_us,
            timeout_ms: m.timeout_ms,
            server_index: m.server_index,
            script_reloading: m.script_reloading,
            body: m.body,
            body_follows: m.body_follows,
            process_group: m.process_group.to_vec(),
            application_group: m.application_group.to_vec(),
            script_filename: m.script_filename.to_vec(),
            callable_object: m.callable_object.to_vec(),
            handler_script: m.handler_script.to_vec(),
            cgi_vars: self.cgi_vars.to_owned_pairs(),
        }
    }
}

/// An owned request head; see [`RequestMeta`] for the fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHead {
    pub request_id: u64,
    pub request_start_us: u64,
    pub queue_start_us: u64,
    pub timeout_ms: u32,
    pub server_index: u32,
    pub script_reloading: bool,
    pub body: RequestBody,
    pub body_follows: bool,
    pub process_group: Vec<u8>,
    pub application_group: Vec<u8>,
    pub script_filename: Vec<u8>,
    pub callable_object: Vec<u8>,
    pub handler_script: Vec<u8>,
    /// The CGI variables as ordered (name, value) byte pairs.
    pub cgi_vars: OwnedPairs,
}

impl RequestHead {
    /// The metadata, borrowed.
    pub fn meta(&self) -> RequestMeta<'_> {
        RequestMeta {
            request_id: self.request_id,
            request_start_us: self.request_start_us,
            queue_start_us: self.queue_start_us,
            timeout_ms: self.timeout_ms,
            server_index: self.server_index,
            script_reloading: self.script_reloading,
            body: self.body,
            body_follows: self.body_follows,
            process_group: &self.process_group,
            application_group: &self.application_group,
            script_filename: &self.script_filename,
            callable_object: &self.callable_object,
            handler_script: &self.handler_script,
        }
    }

    /// Append this head as a frame; see [`encode_request_head`].
    pub fn encode(&self, limits: &Limits, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        encode_request_head(&self.meta(), self.cgi_vars.iter(), limits, out)
    }
}

/// A decoded response head, borrowing the decoder's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeadRef<'a> {
    /// The status line without the protocol, e.g. `b"200 OK"`.
    pub status: &'a [u8],
    /// The response headers in the application's order.
    pub headers: Pairs<'a>,
}

impl ResponseHeadRef<'_> {
    /// Copy into the owned form.
    pub fn into_owned(self) -> ResponseHead {
        ResponseHead {
            status: self.status.to_vec(),
            headers: self.headers.to_vec(),
        }
    }
}

/// An owned response head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseHead {
    /// The status line without the protocol, e.g. `b"200 OK"`.
    pub status: Vec<u8>,
    /// The response headers in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ResponseHead {
    /// Append this head as a frame; see [`encode_response_head`].
    pub fn encode(&self, limits: &Limits, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        encode_response_head(
            &self.status,
            self.headers.iter().map(|(n, v)| (n, v)),
            limits,
            out,
        )
    }
}

/// A validated run of (name, value) byte pairs inside a decoded frame.
///
/// Iterating never fails and never allocates: the decoder checked every
/// length when it produced this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pairs<'a> {
    bytes: &'a [u8],
    count: u32,
}

impl<'a> Pairs<'a> {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The pairs in order.
    pub fn iter(&self) -> PairsIter<'a> {
        PairsIter {
            cur: Cursor::new(self.bytes),
            left: self.count,
        }
    }

    /// The value of the first pair with exactly this name.
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Copy into owned pairs.
    pub fn to_vec(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
    }

    /// Copy into one owned run of bytes: a single allocation, where
    /// [`Pairs::to_vec`] makes two per pair (some 80 for a request's CGI
    /// variables, in a daemon's hot path).
    pub fn to_owned_pairs(&self) -> OwnedPairs {
        OwnedPairs {
            bytes: self.bytes.to_vec(),
            count: self.count,
        }
    }
}

/// Owned (name, value) byte pairs, kept in their wire layout: one buffer.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct OwnedPairs {
    bytes: Vec<u8>,
    count: u32,
}

impl OwnedPairs {
    /// The pairs, borrowed.
    pub fn as_pairs(&self) -> Pairs<'_> {
        Pairs {
            bytes: &self.bytes,
            count: self.count,
        }
    }

    /// The pairs in order.
    pub fn iter(&self) -> PairsIter<'_> {
        self.as_pairs().iter()
    }

    /// The value of the first pair with exactly this name.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.as_pairs().get(name)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for OwnedPairs {
    /// Panics if a name or value is 4 GiB or more, or there are 2^32 pairs
    /// (the wire format's limits).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut bytes = Vec::new();
        push_pairs(pairs, &mut bytes, |_, _| Ok(()))
            .expect("pairs within the wire format's limits");
        let count = u32::from_le_bytes(bytes[..4].try_into().expect("a count prefix"));
        bytes.drain(..4);
        OwnedPairs { bytes, count }
    }
}

impl std::fmt::Debug for OwnedPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl<'a> IntoIterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = PairsIter<'a>;
    fn into_iter(self) -> PairsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Pairs`].
#[derive(Debug, Clone)]
pub struct PairsIter<'a> {
    cur: Cursor<'a>,
    left: u32,
}

impl<'a> Iterator for PairsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let pair = read_pair(&mut self.cur);
        // Validated at decode time, so `None` cannot happen; if it somehow
        // did, stop rather than panic.
        self.left = if pair.is_some() { self.left - 1 } else { 0 };
        pair
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for PairsIter<'_> {}

/// One decoded frame, borrowing the bytes given to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The peer's greeting (always the first frame of a direction).
    Hello(Hello),
    /// A request (Apache to daemon).
    RequestHead(RequestHeadRef<'a>),
    /// Apache gave up on the request; the reason is text for the log.
    Abort { reason: &'a [u8] },
    /// The response status and headers (daemon to Apache).
    ResponseHead(ResponseHeadRef<'a>),
    /// The daemon asks for up to this many more request body bytes.
    BodyCredit(NonZeroU32),
    /// The daemon failed the request.
    Error { kind: ErrorKind, message: &'a [u8] },
    /// Response body: `len` bytes from `offset` of the file whose descriptor
    /// came with this frame (SCM_RIGHTS, outside the byte stream).
    File { offset: u64, len: u64 },
    /// Body bytes. A large body frame arrives as several pieces; `flush` is
    /// true only on the last piece of a frame sent with the flush flag.
    Body { data: &'a [u8], flush: bool },
    /// End of the request body or of the response.
    End,
    /// The peer will close the connection; do not reuse it.
    Goodbye,
}

/// What [`Decoder::decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not enough bytes yet: call again with at least this many more.
    NeedMore(usize),
    /// A frame, and how many bytes of the input it used.
    Frame { frame: Frame<'a>, consumed: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hello,
    Frames,
    Body { remaining: u32, flush: bool },
}

/// What a decoding step found, as positions only so that [`FrameReader`] can
/// refill its buffer in a loop and borrow it only once a frame is ready.
#[derive(Debug, Clone, Copy)]
enum Step {
    NeedMore(usize),
    Ready {
        what: Ready,
        start: usize,
        end: usize,
        consumed: usize,
    },
}

#[derive(Debug, Clone, Copy)]
enum Ready {
    Hello(Hello),
    Body { flush: bool },
    Frame(FrameType),
}

/// Incremental decoder for one direction of one connection.
///
/// It expects the peer's [`Hello`] first, then frames. It keeps only a few
/// bytes of state (where it is inside a body frame), so it can sit under a
/// blocking or a non-blocking socket with one reusable buffer.
#[derive(Debug, Clone)]
pub struct Decoder {
    from: Peer,
    limits: Limits,
    state: State,
    /// The most body bytes handed out as one piece (see
    /// [`FrameReader::next_frame_max`]).
    max_piece: usize,
}

impl Decoder {
    /// A decoder for bytes sent by `from`, on a fresh connection.
    pub fn new(from: Peer, limits: Limits) -> Decoder {
        Decoder {
            from,
            limits,
            state: State::Hello,
            max_piece: usize::MAX,
        }
    }

    /// A decoder for bytes sent by `from` on a reused connection: the
    /// greeting was exchanged with the first request, so frames come next.
    pub fn resume(from: Peer, limits: Limits) -> Decoder {
        Decoder {
            from,
            limits,
            state: State::Frames,
            max_piece: usize::MAX,
        }
    }

    /// Who sends the bytes this decoder reads.
    pub fn peer(&self) -> Peer {
        self.from
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the decoder sits between frames (after the greeting), where
    /// the peer may close a reusable connection cleanly.
    pub fn at_frame_boundary(&self) -> bool {
        self.state == State::Frames
    }

    /// Decode the next frame from the start of `buf`.
    ///
    /// Returns [`Decoded::NeedMore`] when `buf` holds too little; nothing is
    /// consumed then, so call again with the same bytes and more appended.
    /// The count is a lower bound that never overshoots the frame, and it is
    /// given only after the frame's length passed [`Limits`]. Body bytes are
    /// returned as soon as at least one is available.
    pub fn decode<'b>(&mut self, buf: &'b [u8]) -> Result<Decoded<'b>, ProtocolError> {
        match self.step(buf)? {
            Step::NeedMore(n) => Ok(Decoded::NeedMore(n)),
            Step::Ready {
                what,
                start,
                end,
                consumed,
            } => {
                let frame = self.materialize(what, &buf[start..end])?;
                Ok(Decoded::Frame { frame, consumed })
            }
        }
    }

    /// The error for the peer closing the connection while `buffered` bytes
    /// of an incomplete frame are held. At a frame boundary with nothing
    /// buffered this is [`ProtocolError::Closed`], which a caller waiting for
    /// the next request on a reused connection treats as a clean close.
    pub fn eof_error(&self, buffered: &[u8]) -> ProtocolError {
        let peer = self.from;
        match self.state {
            State::Hello if buffered.is_empty() => ProtocolError::Closed {
                peer,
                expecting: "its greeting",
            },
            State::Hello => ProtocolError::Truncated {
                peer,
                what: "its greeting",
                missing: HELLO_LEN.saturating_sub(buffered.len()) as u64,
            },
            State::Body { remaining, .. } => ProtocolError::Truncated {
                peer,
                what: "a body frame",
                missing: u64::from(remaining),
            },
            State::Frames if buffered.is_empty() => ProtocolError::Closed {
                peer,
                expecting: "the next frame",
            },
            State::Frames if buffered.len() < FRAME_HEADER_LEN => ProtocolError::Truncated {
                peer,
                what: "a frame header",
                missing: (FRAME_HEADER_LEN - buffered.len()) as u64,
            },
            State::Frames => {
                let len = u64::from(le_u32(&buffered[4..8]));
                let have = (buffered.len() - FRAME_HEADER_LEN) as u64;
                let what = FrameType::from_byte(buffered[0])
                    .map_or("a frame", FrameType::name_with_article);
                ProtocolError::Truncated {
                    peer,
                    what,
                    missing: len.saturating_sub(have),
                }
            }
        }
    }

    /// What the decoder waits for, for timeout messages ("timed out waiting
    /// for the daemon process to send {expecting}").
    pub fn expecting(&self, buffered: &[u8]) -> &'static str {
        match self.state {
            State::Hello => "its greeting",
            State::Body { .. } => "the rest of a body frame",
            State::Frames if buffered.len() < FRAME_HEADER_LEN => {
                if buffered.is_empty() {
                    "the next frame"
                } else {
                    "the rest of a frame header"
                }
            }
            State::Frames => {
                FrameType::from_byte(buffered[0]).map_or("the rest of a frame", FrameType::rest_of)
            }
        }
    }

    fn step(&mut self, buf: &[u8]) -> Result<Step, ProtocolError> {
        match self.state {
            State::Hello => self.step_hello(buf),
            State::Body { remaining, flush } => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore(1));
                }
                let n = buf.len().min(remaining as usize).min(self.max_piece);
                // n <= remaining, so this cannot wrap.
                let left = remaining - n as u32;
                if left == 0 {
                    self.state = State::Frames;
                    Ok(Step::Ready {
                        what: Ready::Body { flush },
                        start: 0,
                        end: n,
                        consumed: n,
                    })
                } else {
                    self.state = State::Body {
                        remaining: left,
                        flush,
                    };
                    Ok(Step::Ready {
                        what: Ready::Body { flush: false },
                        start: 0,
                        end: n,
                        consumed: n,
                    })
                }
            }
            State::Frames => self.step_frame(buf),
        }
    }

    fn step_hello(&mut self, buf: &[u8]) -> Result<Step, ProtocolError> {
        let peer = self.from;
        // Reject a stranger on its first wrong byte rather than waiting for 16.
        let seen = buf.len().min(MAGIC.len());
        if buf[..seen] != MAGIC[..seen] {
            return Err(ProtocolError::BadMagic {
                peer,
                got: buf[..seen].to_vec(),
            });
        }
        if buf.len() < HELLO_LEN {
            return Ok(Step::NeedMore(HELLO_LEN - buf.len()));
        }
        let version = u16::from_le_bytes([buf[8], buf[9]]);
        if version != PROTOCOL_VERSION {
            return Err(ProtocolError::VersionMismatch {
                peer,
                theirs: version,
                ours: PROTOCOL_VERSION,
            });
        }
        if Peer::from_role_byte(buf[10]) != Some(peer) {
            return Err(ProtocolError::WrongPeer {
                peer,
                role: buf[10],
            });
        }
        if buf[11] != 0 {
            return Err(ProtocolError::Malformed {
                peer,
                frame: "greeting",
                problem: "its reserved byte is not zero",
            });
        }
        let pid = le_u32(&buf[12..16]);
        self.state = State::Frames;
        Ok(Step::Ready {
            what: Ready::Hello(Hello { role: peer, pid }),
            start: 0,
            end: 0,
            consumed: HELLO_LEN,
        })
    }

    fn step_frame(&mut self, buf: &[u8]) -> Result<Step, ProtocolError> {
        let peer = self.from;
        let Some(&type_byte) = buf.first() else {
            return Ok(Step::NeedMore(FRAME_HEADER_LEN));
        };
        // Check the type as soon as it arrives: garbage fails fast.
        let Some(ty) = FrameType::from_byte(type_byte) else {
            return Err(ProtocolError::UnknownFrameType {
                peer,
                byte: type_byte,
            });
        };
        if ty.sender().is_some_and(|sender| sender != peer) {
            return Err(ProtocolError::WrongDirection {
                peer,
                frame: ty.name(),
            });
        }
        if buf.len() < FRAME_HEADER_LEN {
            return Ok(Step::NeedMore(FRAME_HEADER_LEN - buf.len()));
        }
        let flags = buf[1];
        let reserved = u16::from_le_bytes([buf[2], buf[3]]);
        let len = le_u32(&buf[4..8]);
        let allowed_flags = if ty == FrameType::Body { FLAG_FLUSH } else { 0 };
        if flags & !allowed_flags != 0 || reserved != 0 {
            return Err(ProtocolError::BadFrameHeader {
                peer,
                frame: ty.name(),
                flags,
                reserved,
            });
        }
        let h = FRAME_HEADER_LEN;
        let (limit, limit_name) = match ty {
            FrameType::Body => {
                let flush = flags & FLAG_FLUSH != 0;
                if len == 0 {
                    return Ok(Step::Ready {
                        what: Ready::Body { flush },
                        start: h,
                        end: h,
                        consumed: h,
                    });
                }
                // Hand out body bytes as they come; never buffer a frame.
                let avail = buf.len() - h;
                if avail == 0 {
                    return Ok(Step::NeedMore(1));
                }
                let n = avail.min(len as usize).min(self.max_piece);
                let left = len - n as u32;
                let piece_flush = if left == 0 {
                    flush
                } else {
                    self.state = State::Body {
                        remaining: left,
                        flush,
                    };
                    false
                };
                return Ok(Step::Ready {
                    what: Ready::Body { flush: piece_flush },
                    start: h,
                    end: h + n,
                    consumed: h + n,
                });
            }
            FrameType::End | FrameType::Goodbye if len != 0 => {
                return Err(ProtocolError::Malformed {
                    peer,
                    frame: ty.name(),
                    problem: "it must be empty",
                });
            }
            FrameType::BodyCredit if len != 4 => {
                return Err(ProtocolError::Malformed {
                    peer,
                    frame: ty.name(),
                    problem: "its payload is not 4 bytes",
                });
            }
            FrameType::File if len != 16 => {
                return Err(ProtocolError::Malformed {
                    peer,
                    frame: ty.name(),
                    problem: "its payload is not 16 bytes",
                });
            }
            FrameType::End | FrameType::Goodbye | FrameType::BodyCredit | FrameType::File => {
                (len, "")
            }
            FrameType::RequestHead => (self.limits.max_request_head, "the request head limit"),
            FrameType::ResponseHead => (self.limits.max_response_head, "the response head limit"),
            FrameType::Error => (MAX_MESSAGE_LEN as u32 + 1, "the error message limit"),
            FrameType::Abort => (MAX_MESSAGE_LEN as u32, "the abort message limit"),
        };
        if len > limit {
            return Err(ProtocolError::FrameTooLarge {
                peer,
                frame: ty.name(),
                len,
                limit,
                limit_name,
            });
        }
        let total = h + len as usize;
        if buf.len() < total {
            return Ok(Step::NeedMore(total - buf.len()));
        }
        Ok(Step::Ready {
            what: Ready::Frame(ty),
            start: h,
            end: total,
            consumed: total,
        })
    }

    fn materialize<'b>(&self, what: Ready, payload: &'b [u8]) -> Result<Frame<'b>, ProtocolError> {
        let peer = self.from;
        let malformed = |frame: FrameType, problem: &'static str| ProtocolError::Malformed {
            peer,
            frame: frame.name(),
            problem,
        };
        Ok(match what {
            Ready::Hello(hello) => Frame::Hello(hello),
            Ready::Body { flush } => Frame::Body {
                data: payload,
                flush,
            },
            Ready::Frame(ty) => match ty {
                FrameType::RequestHead => {
                    Frame::RequestHead(parse_request_head(payload).map_err(|p| malformed(ty, p))?)
                }
                FrameType::ResponseHead => Frame::ResponseHead(self.parse_response_head(payload)?),
                FrameType::BodyCredit => {
                    let n = payload.try_into().map(u32::from_le_bytes).unwrap_or(0);
                    Frame::BodyCredit(
                        NonZeroU32::new(n).ok_or_else(|| malformed(ty, "it grants zero bytes"))?,
                    )
                }
                FrameType::Error => {
                    let (&kind, message) = payload.split_first().ok_or_else(|| {
                        malformed(ty, "it is empty; an error kind byte was expected")
                    })?;
                    let kind = ErrorKind::from_byte(kind)
                        .ok_or_else(|| malformed(ty, "its error kind byte is unknown"))?;
                    Frame::Error { kind, message }
                }
                FrameType::File => {
                    let offset = le_u64(&payload[..8]);
                    let len = le_u64(&payload[8..16]);
                    if len == 0 {
                        return Err(malformed(ty, "it sends zero bytes"));
                    }
                    if offset.checked_add(len).is_none_or(|e| e > i64::MAX as u64) {
                        return Err(malformed(
                            ty,
                            "its offset and length run past the largest file",
                        ));
                    }
                    Frame::File { offset, len }
                }
                FrameType::Abort => Frame::Abort { reason: payload },
                FrameType::End => Frame::End,
                FrameType::Goodbye => Frame::Goodbye,
                // Body frames never reach here as `Ready::Frame`.
                FrameType::Body => Frame::Body {
                    data: payload,
                    flush: false,
                },
            },
        })
    }

    fn parse_response_head<'b>(
        &self,
        payload: &'b [u8],
    ) -> Result<ResponseHeadRef<'b>, ProtocolError> {
        let peer = self.from;
        let malformed = |problem| ProtocolError::Malformed {
            peer,
            frame: FrameType::ResponseHead.name(),
            problem,
        };
        let limit = self.limits.header_buffer_size;
        let mut cur = Cursor::new(payload);
        let status = cur
            .bytes()
            .ok_or_else(|| malformed("the status line runs past the end of the frame"))?;
        if status.len() as u64 > u64::from(limit) {
            return Err(ProtocolError::HeaderTooLarge {
                peer,
                what: "the status line".to_owned(),
                len: status.len() as u64,
                limit,
            });
        }
        let headers = read_pairs(&mut cur, |name, value| {
            let len = name.len() as u64 + value.len() as u64;
            if len > u64::from(limit) {
                return Err(ProtocolError::HeaderTooLarge {
                    peer,
                    what: describe_header(name),
                    len,
                    limit,
                });
            }
            Ok(())
        })
        .map_err(|e| e.into_error(malformed))?;
        Ok(ResponseHeadRef { status, headers })
    }
}

impl FrameType {
    fn name_with_article(self) -> &'static str {
        match self {
            FrameType::RequestHead => "a request headers frame",
            FrameType::Abort => "an abort frame",
            FrameType::ResponseHead => "a response headers frame",
            FrameType::BodyCredit => "a body credit frame",
            FrameType::Error => "an error frame",
            FrameType::File => "a file frame",
            FrameType::Body => "a body frame",
            FrameType::End => "an end frame",
            FrameType::Goodbye => "a goodbye frame",
        }
    }
}

fn describe_header(name: &[u8]) -> String {
    let shown = &name[..name.len().min(64)];
    format!("the response header '{}'", shown.escape_ascii())
}

enum PairsError {
    Malformed(&'static str),
    Rejected(ProtocolError),
}

impl PairsError {
    fn into_error(self, malformed: impl Fn(&'static str) -> ProtocolError) -> ProtocolError {
        match self {
            PairsError::Malformed(p) => malformed(p),
            PairsError::Rejected(e) => e,
        }
    }
}

/// Read a count and that many pairs, which must end exactly at the end of
/// the frame, calling `check` on each.
fn read_pairs<'b>(
    cur: &mut Cursor<'b>,
    mut check: impl FnMut(&[u8], &[u8]) -> Result<(), ProtocolError>,
) -> Result<Pairs<'b>, PairsError> {
    let count = cur.u32().ok_or(PairsError::Malformed(
        "the header count runs past the end of the frame",
    ))?;
    let start = cur.pos;
    // Each pair takes at least 8 bytes: reject impossible counts up front.
    if u64::from(count) * 8 > cur.remaining() as u64 {
        return Err(PairsError::Malformed(
            "its header count is larger than the frame could hold",
        ));
    }
    for _ in 0..count {
        let (name, value) = read_pair(cur).ok_or(PairsError::Malformed(
            "a header name or value runs past the end of the frame",
        ))?;
        check(name, value).map_err(PairsError::Rejected)?;
    }
    if cur.remaining() != 0 {
        return Err(PairsError::Malformed(
            "there are bytes after the last header",
        ));
    }
    Ok(Pairs {
        bytes: &cur.buf[start..cur.pos],
        count,
    })
}

fn read_pair<'b>(cur: &mut Cursor<'b>) -> Option<(&'b [u8], &'b [u8])> {
    let name_len = cur.u32()?;
    let value_len = cur.u32()?;
    let name = cur.take(name_len as usize)?;
    let value = cur.take(value_len as usize)?;
    Some((name, value))
}

fn parse_request_head(payload: &[u8]) -> Result<RequestHeadRef<'_>, &'static str> {
    const SHORT: &str = "it is shorter than its fixed fields";
    const STRING: &str = "a group, script or callable name runs past the end of the frame";
    let mut cur = Cursor::new(payload);
    let request_id = cur.u64().ok_or(SHORT)?;
    let request_start_us = cur.u64().ok_or(SHORT)?;
    let queue_start_us = cur.u64().ok_or(SHORT)?;
    let content_length = cur.u64().ok_or(SHORT)?;
    let timeout_ms = cur.u32().ok_or(SHORT)?;
    let server_index = cur.u32().ok_or(SHORT)?;
    let flags = cur.u32().ok_or(SHORT)?;
    if flags & !REQ_KNOWN_FLAGS != 0 {
        return Err("it has unknown flag bits set");
    }
    let body = match (flags & REQ_BODY_LENGTH != 0, flags & REQ_BODY_CHUNKED != 0) {
        (false, false) => RequestBody::None,
        (true, false) => RequestBody::Length(content_length),
        (false, true) => RequestBody::Chunked,
        (true, true) => return Err("it says the body has both a known length and no known length"),
    };
    if !matches!(body, RequestBody::Length(_)) && content_length != 0 {
        return Err("it gives a content length for a body without a known length");
    }
    let body_follows = flags & REQ_BODY_FOLLOWS != 0;
    if body_follows && body == RequestBody::None {
        return Err("it says a body follows a request without a body");
    }
    let process_group = cur.bytes().ok_or(STRING)?;
    let application_group = cur.bytes().ok_or(STRING)?;
    let script_filename = cur.bytes().ok_or(STRING)?;
    let callable_object = cur.bytes().ok_or(STRING)?;
    let handler_script = cur.bytes().ok_or(STRING)?;
    let cgi_vars = read_pairs(&mut cur, |_, _| Ok(())).map_err(|e| match e {
        PairsError::Malformed(p) => p,
        PairsError::Rejected(_) => "a CGI variable was rejected",
    })?;
    Ok(RequestHeadRef {
        meta: RequestMeta {
            request_id,
            request_start_us,
            queue_start_us,
            timeout_ms,
            server_index,
            script_reloading: flags & REQ_SCRIPT_RELOADING != 0,
            body,
            body_follows,
            process_group,
            application_group,
            script_filename,
            callable_object,
            handler_script,
        },
        cgi_vars,
    })
}

/// A bounds-checked reader over a frame payload: every accessor returns
/// `None` instead of panicking or wrapping.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(le_u32)
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(n as usize)
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

// ---------------------------------------------------------------------------
// Encoding

/// Append the greeting. Send it before the first frame of a connection (in
/// the same write).
pub fn encode_hello(hello: &Hello, out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.push(hello.role.role_byte());
    out.push(0);
    out.extend_from_slice(&hello.pid.to_le_bytes());
}

fn push_header(ty: FrameType, flags: u8, len: u32, out: &mut Vec<u8>) {
    out.push(ty as u8);
    out.push(flags);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&len.to_le_bytes());
}

fn push_bytes(b: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
    let n = u32::try_from(b.len()).map_err(|_| b.len())?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// Writes a head frame's payload after a placeholder header, then patches
/// the length in; on any error `out` is restored to its old length.
fn encode_head_frame(
    ty: FrameType,
    limit: u32,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), ProtocolError>,
) -> Result<(), ProtocolError> {
    let start = out.len();
    push_header(ty, 0, 0, out);
    let result = body(out).and_then(|()| {
        let len = (out.len() - start - FRAME_HEADER_LEN) as u64;
        if len > u64::from(limit) {
            let what = match ty {
                FrameType::RequestHead => "the request head (CGI variables and metadata)",
                _ => "the response head (status line and headers)",
            };
            return Err(ProtocolError::EncodeTooLarge {
                what: what.to_owned(),
                len,
                limit,
            });
        }
        Ok(len as u32)
    });
    match result {
        Ok(len) => {
            out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

fn push_pairs<K, V>(
    pairs: impl IntoIterator<Item = (K, V)>,
    out: &mut Vec<u8>,
    mut check: impl FnMut(&[u8], &[u8]) -> Result<(), ProtocolError>,
) -> Result<(), ProtocolError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let count_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut count: u32 = 0;
    for (name, value) in pairs {
        let (name, value) = (name.as_ref(), value.as_ref());
        check(name, value)?;
        let too_large = |len| ProtocolError::EncodeTooLarge {
            what: "one header".to_owned(),
            len,
            limit: u32::MAX,
        };
        let nl = u32::try_from(name.len()).map_err(|_| too_large(name.len() as u64))?;
        let vl = u32::try_from(value.len()).map_err(|_| too_large(value.len() as u64))?;
        out.extend_from_slice(&nl.to_le_bytes());
        out.extend_from_slice(&vl.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(value);
        count = count
            .checked_add(1)
            .ok_or_else(|| ProtocolError::EncodeTooLarge {
                what: "the header count".to_owned(),
                len: u64::from(u32::MAX) + 1,
                limit: u32::MAX,
            })?;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    Ok(())
}

/// Append a request head frame: `meta`, then the CGI variables in order.
///
/// `cgi_vars` is any iterator of byte pairs, so the Apache side can encode
/// straight from its tables without building a `Vec` first. Fails, leaving
/// `out` as it was, when the frame would exceed `limits.max_request_head`
/// (the daemon would refuse it anyway).
pub fn encode_request_head<K, V>(
    meta: &RequestMeta<'_>,
    cgi_vars: impl IntoIterator<Item = (K, V)>,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    encode_head_frame(
        FrameType::RequestHead,
        limits.max_request_head,
        out,
        |out| {
            let mut flags = 0;
            if meta.script_reloading {
                flags |= REQ_SCRIPT_RELOADING;
            }
            let content_length = match meta.body {
                RequestBody::None => 0,
                RequestBody::Length(n) => {
                    flags |= REQ_BODY_LENGTH;
                    n
                }
                RequestBody::Chunked => {
                    flags |= REQ_BODY_CHUNKED;
                    0
                }
            };
            if meta.body_follows && meta.body != RequestBody::None {
                flags |= REQ_BODY_FOLLOWS;
            }
            out.reserve(REQ_FIXED_LEN);
            out.extend_from_slice(&meta.request_id.to_le_bytes());
            out.extend_from_slice(&meta.request_start_us.to_le_bytes());
            out.extend_from_slice(&meta.queue_start_us.to_le_bytes());
            out.extend_from_slice(&content_length.to_le_bytes());
            out.extend_from_slice(&meta.timeout_ms.to_le_bytes());
            out.extend_from_slice(&meta.server_index.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            for s in [
                meta.process_group,
                meta.application_group,
                meta.script_filename,
                meta.callable_object,
                meta.handler_script,
            ] {
                push_bytes(s, out).map_err(|len| ProtocolError::EncodeTooLarge {
                    what: "a group, script or callable name".to_owned(),
                    len: len as u64,
                    limit: u32::MAX,
                })?;
            }
            push_pairs(cgi_vars, out, |_, _| Ok(()))
        },
    )
}

/// Append a response head frame: the status line (e.g. `b"200 OK"`) and
/// the headers in order.
///
/// Fails, leaving `out` as it was, when one header or the status line is
/// longer than `limits.header_buffer_size` or the whole head longer than
/// `limits.max_response_head`; the daemon then sends an
/// [`ErrorKind::Application`] error instead, so the Apache child answers 500
/// and logs which header was too large.
pub fn encode_response_head<K, V>(
    status: &[u8],
    headers: impl IntoIterator<Item = (K, V)>,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let limit = limits.header_buffer_size;
    encode_head_frame(
        FrameType::ResponseHead,
        limits.max_response_head,
        out,
        |out| {
            if status.len() as u64 > u64::from(limit) {
                return Err(ProtocolError::EncodeTooLarge {
                    what: "the status line".to_owned(),
                    len: status.len() as u64,
                    limit,
                });
            }
            // The check above bounds the length well below u32::MAX.
            push_bytes(status, out).map_err(|len| ProtocolError::EncodeTooLarge {
                what: "the status line".to_owned(),
                len: len as u64,
                limit,
            })?;
            push_pairs(headers, out, |name, value| {
                let len = name.len() as u64 + value.len() as u64;
                if len > u64::from(limit) {
                    return Err(ProtocolError::EncodeTooLarge {
                        what: describe_header(name),
                        len,
                        limit,
                    });
                }
                Ok(())
            })
        },
    )
}

/// Append `data` as body frames (more than one only past 4 GiB). With
/// `flush`, the receiver passes everything on after the last of them: set it
/// for each block a WSGI iterable yields. Empty `data` with `flush` is a bare
/// flush; empty `data` without it appends nothing.
pub fn encode_body(data: &[u8], flush: bool, out: &mut Vec<u8>) {
    push_body_frames(data, flush, u32::MAX as usize, out);
}

fn push_body_frames(data: &[u8], flush: bool, max_frame: usize, out: &mut Vec<u8>) {
    if data.is_empty() {
        if flush {
            push_header(FrameType::Body, FLAG_FLUSH, 0, out);
        }
        return;
    }
    let mut chunks = data.chunks(max_frame.max(1)).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        encode_body_header(chunk.len() as u32, flush && last, out);
        out.extend_from_slice(chunk);
    }
}

/// Append only the header of a body frame of `len` bytes, for writing the
/// payload from the caller's own buffer (see [`FrameWriter::body`]).
pub fn encode_body_header(len: u32, flush: bool, out: &mut Vec<u8>) {
    push_header(
        FrameType::Body,
        if flush { FLAG_FLUSH } else { 0 },
        len,
        out,
    );
}

/// Append an end frame: end of the request body, or of the response.
pub fn encode_end(out: &mut Vec<u8>) {
    push_header(FrameType::End, 0, 0, out);
}

/// Append a goodbye frame: this side will close the connection (idle timeout,
/// shutdown, maximum-requests), so the peer must not reuse it.
pub fn encode_goodbye(out: &mut Vec<u8>) {
    push_header(FrameType::Goodbye, 0, 0, out);
}

/// Append a body credit frame: the daemon asks for up to `bytes` more bytes
/// of request body. The Apache child answers with exactly one body frame of
/// 1..=`bytes` bytes, optionally followed by an end frame, or with an end
/// frame alone.
pub fn encode_body_credit(bytes: NonZeroU32, out: &mut Vec<u8>) {
    push_header(FrameType::BodyCredit, 0, 4, out);
    out.extend_from_slice(&bytes.get().to_le_bytes());
}

/// Append a file frame: `len` (> 0) response body bytes from `offset` of
/// the file whose descriptor the caller sends with these bytes (SCM_RIGHTS
/// on the frame's first byte). The receiver reads the file itself, so the
/// bytes never cross the socket.
pub fn encode_file(offset: u64, len: u64, out: &mut Vec<u8>) {
    push_header(FrameType::File, 0, 16, out);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

/// Append an error frame. Messages longer than [`MAX_MESSAGE_LEN`] are cut.
pub fn encode_error(kind: ErrorKind, message: &[u8], out: &mut Vec<u8>) {
    let message = &message[..message.len().min(MAX_MESSAGE_LEN)];
    push_header(FrameType::Error, 0, message.len() as u32 + 1, out);
    out.push(kind as u8);
    out.extend_from_slice(message);
}

/// Append an abort frame. Reasons longer than [`MAX_MESSAGE_LEN`] are cut.
pub fn encode_abort(reason: &[u8], out: &mut Vec<u8>) {
    let reason = &reason[..reason.len().min(MAX_MESSAGE_LEN)];
    push_header(FrameType::Abort, 0, reason.len() as u32, out);
    out.extend_from_slice(reason);
}

// ---------------------------------------------------------------------------
// Blocking I/O helpers

/// Reads frames from a blocking stream (a socket with `SO_RCVTIMEO`) through
/// one reusable buffer.
///
/// The buffer holds at most one head frame (bounded by [`Limits`]) or one
/// read's worth of body bytes; after a large head it shrinks back to its
/// initial size at the next frame boundary. A reader made with
/// [`FrameReader::with_sizes`] starts small and grows only while a large
/// frame fills it, so that a thread relaying short responses holds a few
/// KiB, not a whole `response-buffer-size`.
/// A stream that reads into memory that may be uninitialised (it only
/// writes to it), for [`FrameReader::read_body_into`].
pub trait ReadUninit {
    fn read_uninit(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize>;
}

#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    decoder: Decoder,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base_len: usize,
    /// What the buffer may grow to while body bytes fill it.
    max_len: usize,
}

impl<R: Read + ReadUninit> FrameReader<R> {
    /// Inside a body frame, with nothing buffered: one read of up to
    /// `dst.len()` of the frame's remaining bytes straight into `dst`, the
    /// same bytes [`FrameReader::next_frame_max`] would hand out, without
    /// their copy through the reader's buffer. None anywhere else: use
    /// `next_frame_max`.
    pub fn read_body_into(
        &mut self,
        dst: &mut [std::mem::MaybeUninit<u8>],
    ) -> Option<Result<usize, ProtocolError>> {
        let State::Body { remaining, flush } = self.decoder.state else {
            return None;
        };
        if self.start != self.end || dst.is_empty() {
            return None;
        }
        let n = dst.len().min(remaining as usize);
        loop {
            return Some(match self.inner.read_uninit(&mut dst[..n]) {
                Ok(0) => Err(self.decoder.eof_error(&[])),
                Ok(k) => {
                    let k = k.min(n);
                    // k <= remaining, so this cannot wrap.
                    let left = remaining - k as u32;
                    self.decoder.state = if left == 0 {
                        State::Frames
                    } else {
                        State::Body {
                            remaining: left,
                            flush,
                        }
                    };
                    Ok(k)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(self.read_error(e)),
            });
        }
    }
}

impl<R: Read> FrameReader<R> {
    /// A reader with a [`DEFAULT_READ_BUFFER`]-byte buffer.
    pub fn new(inner: R, decoder: Decoder) -> Self {
        Self::with_buffer(inner, decoder, Vec::new())
    }

    /// A reader reusing `buf` (from [`FrameReader::into_parts`] of an earlier
    /// connection); an empty `buf` gets [`DEFAULT_READ_BUFFER`] bytes.
    pub fn with_buffer(inner: R, decoder: Decoder, buf: Vec<u8>) -> Self {
        let base_len = if buf.capacity() == 0 {
            DEFAULT_READ_BUFFER
        } else {
            buf.capacity()
        };
        Self::with_sizes(inner, decoder, buf, base_len, base_len)
    }

    /// A reader whose buffer (reusing `buf`'s allocation) holds `base`
    /// bytes, and grows to `max` when a read fills it: a large frame is
    /// arriving, and is read on in pieces of `max` bytes.
    /// [`FrameReader::into_parts`] hands it back at `base` bytes, so what a
    /// pool keeps never follows the size of a response.
    pub fn with_sizes(
        inner: R,
        decoder: Decoder,
        mut buf: Vec<u8>,
        base: usize,
        max: usize,
    ) -> Self {
        let base_len = base.max(1);
        // A buffer handed back by `into_parts` is already base_len long:
        // its stale bytes are never read, so it is not zeroed again.
        if buf.len() != base_len {
            buf.clear();
            buf.resize(base_len, 0);
        }
        FrameReader {
            inner,
            decoder,
            buf,
            start: 0,
            end: 0,
            base_len,
            max_len: max.max(base_len),
        }
    }

    /// The next frame, reading as needed.
    ///
    /// A timeout of the underlying socket (`WouldBlock`/`TimedOut`) becomes
    /// [`ProtocolError::ReadTimedOut`]; end of stream becomes
    /// [`ProtocolError::Closed`] between frames and
    /// [`ProtocolError::Truncated`] inside one.
    pub fn next_frame(&mut self) -> Result<Frame<'_>, ProtocolError> {
        self.decoder.max_piece = usize::MAX;
        self.read_frame()
    }

    /// Like [`FrameReader::next_frame`], but a body frame's bytes come in
    /// pieces of at most `max` bytes (at least one); the rest stays in the
    /// buffer for the next call. A reader feeding a caller's buffer of
    /// `max` bytes never has to keep bytes aside.
    pub fn next_frame_max(&mut self, max: usize) -> Result<Frame<'_>, ProtocolError> {
        self.decoder.max_piece = max.max(1);
        self.read_frame()
    }

    fn read_frame(&mut self) -> Result<Frame<'_>, ProtocolError> {
        // Only a head larger than the largest read leaves the buffer
        // longer than `max_len`; a buffer grown for body bytes stays grown
        // until `into_parts` (it would grow again with the next piece).
        if self.start == self.end && self.buf.len() > self.max_len {
            self.buf.truncate(self.base_len);
            self.buf.shrink_to(self.base_len);
        }
        loop {
            match self.decoder.step(&self.buf[self.start..self.end])? {
                Step::NeedMore(n) => self.fill(n)?,
                Step::Ready {
                    what,
                    start,
                    end,
                    consumed,
                } => {
                    let base = self.start;
                    self.start += consumed;
                    if self.start == self.end {
                        // The frame's bytes stay in place until the next call.
                        self.start = 0;
                        self.end = 0;
                    }
                    return self
                        .decoder
                        .materialize(what, &self.buf[base + start..base + end]);
                }
            }
        }
    }

    /// Read until at least `n` more bytes are buffered (usually more: each
    /// read asks for all the free space).
    fn fill(&mut self, n: usize) -> Result<(), ProtocolError> {
        let needed = self.end - self.start + n;
        if self.start + needed > self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if needed > self.buf.len() {
                // Only head frames get here, and their length passed `Limits`.
                self.buf.resize(needed, 0);
            }
        }
        let target = self.end + n;
        while self.end < target {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(self.decoder.eof_error(&self.buf[self.start..self.end])),
                Ok(k) => {
                    self.end += k;
                    if self.end == self.buf.len() && self.buf.len() < self.max_len {
                        // The read filled the buffer: more is waiting.
                        self.buf.resize(self.max_len, 0);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
        Ok(())
    }

    /// A failed read of the stream as a [`ProtocolError`]: a timeout of the
    /// underlying socket (`WouldBlock`/`TimedOut`) becomes
    /// [`ProtocolError::ReadTimedOut`].
    fn read_error(&self, source: io::Error) -> ProtocolError {
        if matches!(
            source.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            ProtocolError::ReadTimedOut {
                peer: self.decoder.from,
                expecting: self.decoder.expecting(&self.buf[self.start..self.end]),
            }
        } else {
            ProtocolError::Io {
                peer: self.decoder.from,
                writing: false,
                source,
            }
        }
    }

    /// The decoder (to ask where in the stream it is).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Bytes read but not yet decoded.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying stream, to change its timeout.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The stream and the buffer (back at its initial size), for reuse on the
    /// next connection.
    pub fn into_parts(mut self) -> (R, Vec<u8>) {
        self.buf.truncate(self.base_len);
        self.buf.shrink_to(self.base_len);
        (self.inner, self.buf)
    }

    /// Like [`FrameReader::into_parts`], but a buffer grown for a large
    /// response keeps its allocation (its length is back at the base size):
    /// the next reader made with it grows again without reallocating. For a
    /// pool that decides itself how many grown buffers it keeps.
    pub fn into_parts_keeping_capacity(mut self) -> (R, Vec<u8>) {
        self.buf.truncate(self.base_len);
        (self.inner, self.buf)
    }
}

/// Writes frames to a blocking stream with as few syscalls as possible.
///
/// Frames are appended to a pending buffer (which starts with this side's
/// [`Hello`], so it goes out with the first frame) and sent when the caller
/// flushes, ends, or the buffer passes 64 KiB. A body larger than 16 KiB is
/// not copied: it goes out with `write_vectored` together with whatever is
/// pending and its own frame header.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    to: Peer,
    pending: Vec<u8>,
}

impl<W: Write> FrameWriter<W> {
    /// A writer to `to` for a new connection; `hello` is this side's greeting.
    pub fn new(inner: W, to: Peer, hello: &Hello) -> Self {
        Self::with_buffer(inner, to, hello, Vec::with_capacity(4096))
    }

    /// Like [`FrameWriter::new`], reusing `buf` from an earlier connection.
    pub fn with_buffer(inner: W, to: Peer, hello: &Hello, mut buf: Vec<u8>) -> Self {
        buf.clear();
        encode_hello(hello, &mut buf);
        FrameWriter {
            inner,
            to,
            pending: buf,
        }
    }

    /// A writer for a reused connection (the greeting went out with the
    /// first request), reusing `buf`.
    pub fn resume(inner: W, to: Peer, mut buf: Vec<u8>) -> Self {
        buf.clear();
        FrameWriter {
            inner,
            to,
            pending: buf,
        }
    }

    /// The pending buffer, to append frames with the `encode_*` functions.
    pub fn pending_mut(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }

    /// Bytes waiting to be sent.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Send `data` as a body frame; with `flush`, also send everything
    /// pending now and tell the receiver to pass it on.
    pub fn body(&mut self, data: &[u8], flush: bool) -> Result<(), ProtocolError> {
        if data.len() <= COPY_THRESHOLD {
            encode_body(data, flush, &mut self.pending);
            if flush || self.pending.len() >= PENDING_LIMIT {
                self.flush()?;
            }
            return Ok(());
        }
        let mut chunks = data.chunks(u32::MAX as usize).peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            encode_body_header(chunk.len() as u32, flush && last, &mut self.pending);
            let mut slices = [IoSlice::new(&self.pending), IoSlice::new(chunk)];
            let result = write_all_vectored(&mut self.inner, &mut slices);
            self.pending.clear();
            result.map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    /// Append an end frame and send everything pending.
    pub fn end(&mut self) -> Result<(), ProtocolError> {
        encode_end(&mut self.pending);
        self.flush()
    }

    /// Send everything pending.
    pub fn flush(&mut self) -> Result<(), ProtocolError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.inner.write_all(&self.pending);
        self.pending.clear();
        result.map_err(|e| self.write_error(e))
    }

    /// Send everything pending, then let `f` write to the socket itself
    /// (a frame that carries a file descriptor needs `sendmsg`); its errors
    /// become the same [`ProtocolError`]s as the writer's own.
    pub fn send_raw(
        &mut self,
        f: impl FnOnce(&mut W) -> io::Result<()>,
    ) -> Result<(), ProtocolError> {
        self.flush()?;
        f(&mut self.inner).map_err(|e| self.write_error(e))
    }

    fn write_error(&self, source: io::Error) -> ProtocolError {
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ProtocolError::WriteTimedOut { peer: self.to }
            }
            _ => ProtocolError::Io {
                peer: self.to,
                writing: true,
                source,
            },
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The underlying stream, to change its timeout.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The stream and the (emptied) buffer, for reuse. The buffer keeps at
    /// most [`SPARE_PENDING`] bytes of capacity: a large head or a run of
    /// small frames may have grown it, and a pool of spares would
    /// otherwise each hold the largest exchange its process ever saw.
    pub fn into_parts(mut self) -> (W, Vec<u8>) {
        self.pending.clear();
        if self.pending.capacity() > SPARE_PENDING {
            self.pending.shrink_to(SPARE_PENDING);
        }
        (self.inner, self.pending)
    }
}

fn write_all_vectored(w: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the socket accepted no bytes",
                ));
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Errors

/// A failure on the daemon socket. `Display` is one sentence for the error
/// log; the caller adds the process group, e.g. "Request to daemon process
/// group 'django' failed: {err}".
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The first bytes were not the greeting.
    #[error(
        "the {peer} does not speak the mod_wsgi-rs daemon protocol: it sent \"{shown}\" where the greeting \"mwsgi-rs\" was expected{hint}",
        shown = .got.escape_ascii(),
        hint = bad_magic_hint(.peer)
    )]
    BadMagic { peer: Peer, got: Vec<u8> },

    /// The peer speaks another protocol version.
    #[error(
        "the {peer} speaks daemon protocol version {theirs} but this process speaks version {ours}; the Apache child processes and the daemon processes come from different mod_wsgi-rs builds, so stop and start Apache completely"
    )]
    VersionMismatch { peer: Peer, theirs: u16, ours: u16 },

    /// The greeting came from the wrong kind of process.
    #[error(
        "expected a greeting from the {peer} but the greeting on this connection has role byte {role} ({}); the socket is connected to the wrong kind of process",
        role_name(.role)
    )]
    WrongPeer { peer: Peer, role: u8 },

    /// A frame header started with a byte that is no frame type.
    #[error(
        "the {peer} sent a frame of unknown type 0x{byte:02x} where a frame header was expected; the stream is corrupt or out of step"
    )]
    UnknownFrameType { peer: Peer, byte: u8 },

    /// A frame only the other side may send.
    #[error("the {peer} sent a {frame}, which only the {} may send", .peer.other())]
    WrongDirection { peer: Peer, frame: &'static str },

    /// Unknown flag bits or non-zero reserved bits in a frame header.
    #[error(
        "the {peer} sent a {frame} with flags 0x{flags:02x} and reserved bits 0x{reserved:04x}, but only known flags may be set and the reserved bits must be zero"
    )]
    BadFrameHeader {
        peer: Peer,
        frame: &'static str,
        flags: u8,
        reserved: u16,
    },

    /// A frame longer than its limit; nothing past its header was read.
    #[error(
        "the {peer} announced a {len}-byte {frame}, but {limit_name} allows at most {limit} bytes; the frame was refused before reading it"
    )]
    FrameTooLarge {
        peer: Peer,
        frame: &'static str,
        len: u32,
        limit: u32,
        limit_name: &'static str,
    },

    /// One response header or the status line exceeds `header-buffer-size`.
    #[error(
        "the {peer} sent {what} of {len} bytes, larger than header-buffer-size={limit}; raise the header-buffer-size option of WSGIDaemonProcess if the application really sends such headers"
    )]
    HeaderTooLarge {
        peer: Peer,
        what: String,
        len: u64,
        limit: u32,
    },

    /// A frame whose contents do not add up.
    #[error("the {peer} sent a malformed {frame}: {problem}")]
    Malformed {
        peer: Peer,
        frame: &'static str,
        problem: &'static str,
    },

    /// End of stream inside a frame.
    #[error(
        "the {peer} closed the connection in the middle of {what}, {missing} bytes short of its end; {}",
        closed_hint(.peer)
    )]
    Truncated {
        peer: Peer,
        what: &'static str,
        missing: u64,
    },

    /// End of stream between frames. Normal for a reused connection while
    /// waiting for the next request; an error anywhere else.
    #[error("the {peer} closed the connection while {expecting} was awaited; {}", closed_hint(.peer))]
    Closed { peer: Peer, expecting: &'static str },

    /// The socket's receive timeout expired.
    #[error("timed out waiting for the {peer} to send {expecting}")]
    ReadTimedOut { peer: Peer, expecting: &'static str },

    /// The socket's send timeout expired.
    #[error(
        "timed out waiting for the {peer} to accept more data; it has stopped reading from the socket"
    )]
    WriteTimedOut { peer: Peer },

    /// Any other I/O failure.
    #[error("{} the {peer} failed: {source}", io_verb(.writing))]
    Io {
        peer: Peer,
        writing: bool,
        #[source]
        source: io::Error,
    },

    /// Something this side tried to encode is over a limit or over 4 GiB.
    #[error("{what} takes {len} bytes, more than the limit of {limit} bytes, so it cannot be sent")]
    EncodeTooLarge { what: String, len: u64, limit: u32 },
}

impl ProtocolError {
    /// Whether this is the peer closing the connection between frames (the
    /// normal end of a reused connection).
    pub fn is_clean_close(&self) -> bool {
        matches!(self, ProtocolError::Closed { .. })
    }

    /// The status an Apache child answers with when this error happens
    /// before response headers were sent: 504 for a timeout, 500 for a
    /// response this side could not encode, 502 (bad gateway) otherwise.
    pub fn gateway_status(&self) -> u16 {
        match self {
            ProtocolError::ReadTimedOut { .. } | ProtocolError::WriteTimedOut { .. } => 504,
            ProtocolError::EncodeTooLarge { .. } => 500,
            _ => 502,
        }
    }
}

fn io_verb(writing: &bool) -> &'static str {
    if *writing {
        "writing to"
    } else {
        "reading from"
    }
}

fn bad_magic_hint(peer: &Peer) -> &'static str {
    match peer {
        Peer::Daemon => "; is another program listening on the daemon socket?",
        Peer::ApacheChild => {
            "; something other than an Apache child connected to the daemon socket"
        }
    }
}

fn closed_hint(peer: &Peer) -> &'static str {
    match peer {
        Peer::Daemon => {
            "the daemon process probably crashed or was killed (look for a message about it exiting, or about the client going away)"
        }
        Peer::ApacheChild => "the Apache child probably gave up on the request or exited",
    }
}

fn role_name(role: &u8) -> &'static str {
    match Peer::from_role_byte(*role) {
        Some(Peer::ApacheChild) => "an Apache child process",
        Some(Peer::Daemon) => "a daemon process",
        None => "an unknown role",
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny xorshift generator: deterministic, no crates.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// Owned frames for comparisons; adjacent body pieces are merged.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Hello(Hello),
        Request(RequestHead),
        Abort(Vec<u8>),
        Response(ResponseHead),
        Credit(u32),
        Error(ErrorKind, Vec<u8>),
        File(u64, u64),
        Body(Vec<u8>, bool),
        End,
        Goodbye,
    }

    fn own(frame: Frame<'_>) -> Owned {
        match frame {
            Frame::Hello(h) => Owned::Hello(h),
            Frame::RequestHead(r) => Owned::Request(r.into_owned()),
            Frame::Abort { reason } => Owned::Abort(reason.to_vec()),
            Frame::ResponseHead(r) => Owned::Response(r.into_owned()),
            Frame::BodyCredit(n) => Owned::Credit(n.get()),
            Frame::Error { kind, message } => Owned::Error(kind, message.to_vec()),
            Frame::File { offset, len } => Owned::File(offset, len),
            Frame::Body { data, flush } => Owned::Body(data.to_vec(), flush),
            Frame::End => Owned::End,
            Frame::Goodbye => Owned::Goodbye,
        }
    }

    fn push(frames: &mut Vec<Owned>, f: Owned) {
        if let (Some(Owned::Body(prev, prev_flush @ false)), Owned::Body(data, flush)) =
            (frames.last_mut(), &f)
        {
            prev.extend_from_slice(data);
            *prev_flush = *flush;
            return;
        }
        // Empty non-flush pieces carry nothing.
        if f == Owned::Body(Vec::new(), false) {
            return;
        }
        frames.push(f);
    }

    /// Decode a whole stream fed in the given pieces, as a socket would
    /// deliver it; returns the frames or the first error.
    fn decode_pieces(from: Peer, pieces: &[&[u8]]) -> Result<Vec<Owned>, ProtocolError> {
        let mut dec = Decoder::new(from, Limits::default());
        let mut buf: Vec<u8> = Vec::new();
        let mut frames = Vec::new();
        for piece in pieces {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&buf)? {
                    Decoded::NeedMore(n) => {
                        assert!(n >= 1);
                        break;
                    }
                    Decoded::Frame { frame, consumed } => {
                        assert!(consumed >= 1 && consumed <= buf.len());
                        let f = own(frame);
                        buf.drain(..consumed);
                        push(&mut frames, f);
                    }
                }
            }
        }
        Ok(frames)
    }

    fn hello(role: Peer) -> Hello {
        Hello { role, pid: 4242 }
    }

    fn sample_request() -> RequestHead {
        RequestHead {
            request_id: 0x0102_0304_0506_0708,
            request_start_us: 1_700_000_000_123_456,
            queue_start_us: 1_700_000_000_123_999,
            timeout_ms: 60_000,
            server_index: 0x0a0b_0c0d,
            script_reloading: true,
            body: RequestBody::Length(11),
            body_follows: true,
            process_group: b"django".to_vec(),
            application_group: b"".to_vec(),
            script_filename: b"/srv/app/wsgi.py".to_vec(),
            callable_object: b"application".to_vec(),
            handler_script: Vec::new(),
            cgi_vars: [
                (b"REQUEST_METHOD".to_vec(), b"POST".to_vec()),
                (b"PATH_INFO".to_vec(), b"/caf\xc3\xa9/\xff\xfe".to_vec()),
                (b"QUERY_STRING".to_vec(), Vec::new()),
                (b"HTTP_X_NUL".to_vec(), b"a\0b".to_vec()),
                (Vec::new(), b"empty name".to_vec()),
                (b"SERVER_PORT".to_vec(), b"80".to_vec()),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn sample_response() -> ResponseHead {
        ResponseHead {
            status: b"200 OK".to_vec(),
            headers: vec![
                (
                    b"Content-Type".to_vec(),
                    b"text/plain; charset=utf-8".to_vec(),
                ),
                (b"Set-Cookie".to_vec(), b"a=1".to_vec()),
                (b"Set-Cookie".to_vec(), b"b=\xff".to_vec()),
                (b"X-Empty".to_vec(), Vec::new()),
            ],
        }
    }

    /// Every frame Apache may send, after its hello.
    fn apache_stream() -> (Vec<u8>, Vec<Owned>) {
        let limits = Limits::default();
        let mut out = Vec::new();
        encode_hello(&hello(Peer::ApacheChild), &mut out);
        sample_request().encode(&limits, &mut out).unwrap();
        encode_body(b"hello world", false, &mut out);
        encode_end(&mut out);
        let empty = RequestHead::default();
        empty.encode(&limits, &mut out).unwrap();
        encode_abort(b"client closed connection", &mut out);
        encode_abort(b"", &mut out);
        encode_goodbye(&mut out);
        let expected = vec![
            Owned::Hello(hello(Peer::ApacheChild)),
            Owned::Request(sample_request()),
            Owned::Body(b"hello world".to_vec(), false),
            Owned::End,
            Owned::Request(empty),
            Owned::Abort(b"client closed connection".to_vec()),
            Owned::Abort(Vec::new()),
            Owned::Goodbye,
        ];
        (out, expected)
    }

    /// Every frame a daemon may send, after its hello.
    fn daemon_stream() -> (Vec<u8>, Vec<Owned>) {
        let limits = Limits::default();
        let mut out = Vec::new();
        encode_hello(&hello(Peer::Daemon), &mut out);
        encode_body_credit(NonZeroU32::new(65536).unwrap(), &mut out);
        sample_response().encode(&limits, &mut out).unwrap();
        encode_body(b"chunk one", true, &mut out);
        encode_body(b"", true, &mut out);
        encode_body(&[0u8, 0xff, 0x00, 0x80], false, &mut out);
        encode_file(4096, 1 << 40, &mut out);
        encode_end(&mut out);
        encode_response_head(b"", Vec::<(&[u8], &[u8])>::new(), &limits, &mut out).unwrap();
        for kind in [
            ErrorKind::Application,
            ErrorKind::QueueTimeout,
            ErrorKind::RequestTimeout,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            encode_error(kind, b"Traceback (most recent call last): ...", &mut out);
        }
        encode_error(ErrorKind::Internal, b"", &mut out);
        encode_goodbye(&mut out);
        let mut expected = vec![
            Owned::Hello(hello(Peer::Daemon)),
            Owned::Credit(65536),
            Owned::Response(sample_response()),
            Owned::Body(b"chunk one".to_vec(), true),
            Owned::Body(Vec::new(), true),
            Owned::Body(vec![0, 0xff, 0, 0x80], false),
            Owned::File(4096, 1 << 40),
            Owned::End,
            Owned::Response(ResponseHead::default()),
        ];
        for kind in [
            ErrorKind::Application,
            ErrorKind::QueueTimeout,
            ErrorKind::RequestTimeout,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            expected.push(Owned::Error(
                kind,
                b"Traceback (most recent call last): ...".to_vec(),
            ));
        }
        expected.push(Owned::Error(ErrorKind::Internal, Vec::new()));
        expected.push(Owned::Goodbye);
        (out, expected)
    }

    fn streams() -> [(Peer, Vec<u8>, Vec<Owned>); 2] {
        let (a, ae) = apache_stream();
        let (d, de) = daemon_stream();
        [(Peer::ApacheChild, a, ae), (Peer::Daemon, d, de)]
    }

    #[test]
    fn round_trip_every_frame_type() {
        for (peer, bytes, expected) in streams() {
            assert_eq!(decode_pieces(peer, &[&bytes]).unwrap(), expected);
        }
    }

    #[test]
    fn owned_pairs_keep_order_duplicates_and_odd_bytes() {
        let pairs = [
            (&b"A"[..], &b"1"[..]),
            (b"", b"empty name"),
            (b"A", b"second A"),
            (b"B", b"\0\xff"),
            (b"C", b""),
        ];
        let owned: OwnedPairs = pairs.iter().copied().collect();
        assert_eq!(owned.len(), 5);
        assert!(!owned.is_empty());
        assert_eq!(owned.iter().collect::<Vec<_>>(), pairs.to_vec());
        assert_eq!(owned.get(b"A"), Some(&b"1"[..]), "the first of two");
        assert_eq!(owned.get(b"C"), Some(&b""[..]));
        assert_eq!(owned.get(b"D"), None);
        // Borrowed from a decoded frame and copied: the same pairs.
        assert_eq!(owned.as_pairs().to_owned_pairs(), owned);
        let none: OwnedPairs = std::iter::empty::<(&[u8], &[u8])>().collect();
        assert!(none.is_empty() && none.iter().next().is_none());
        assert_eq!(none, OwnedPairs::default());
    }

    #[test]
    fn decoded_request_head_borrows_pairs_in_order() {
        let mut out = Vec::new();
        encode_hello(&hello(Peer::ApacheChild), &mut out);
        let req = sample_request();
        req.encode(&Limits::default(), &mut out).unwrap();
        let mut dec = Decoder::new(Peer::ApacheChild, Limits::default());
        let Decoded::Frame { consumed, .. } = dec.decode(&out).unwrap() else {
            panic!()
        };
        let Decoded::Frame {
            frame: Frame::RequestHead(head),
            consumed: c2,
        } = dec.decode(&out[consumed..]).unwrap()
        else {
            panic!()
        };
        assert_eq!(consumed + c2, out.len());
        assert_eq!(head.cgi_vars.len(), 6);
        assert_eq!(head.cgi_vars.iter().len(), 6);
        assert_eq!(head.cgi_vars.get(b"REQUEST_METHOD"), Some(&b"POST"[..]));
        assert_eq!(head.cgi_vars.get(b"HTTP_X_NUL"), Some(&b"a\0b"[..]));
        assert_eq!(head.cgi_vars.get(b"MISSING"), None);
        let names: Vec<&[u8]> = head.cgi_vars.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[0], b"REQUEST_METHOD");
        assert_eq!(names[5], b"SERVER_PORT");
        assert_eq!(head.meta.body, RequestBody::Length(11));
        assert!(head.meta.body_follows && head.meta.script_reloading);
    }

    #[test]
    fn server_index_round_trips_and_sits_before_the_flags() {
        for index in [0u32, 1, 7, u32::MAX] {
            let req = RequestHead {
                server_index: index,
                ..sample_request()
            };
            let mut out = Vec::new();
            encode_hello(&hello(Peer::ApacheChild), &mut out);
            req.encode(&Limits::default(), &mut out).unwrap();
            let payload = &out[HELLO_LEN + FRAME_HEADER_LEN..];
            assert_eq!(le_u32(&payload[36..40]), index);
            let back = decode_pieces(Peer::ApacheChild, &[&out]).unwrap();
            assert_eq!(
                back,
                vec![Owned::Hello(hello(Peer::ApacheChild)), Owned::Request(req)]
            );
        }
        // A head cut inside the server index (an old, shorter layout) is
        // refused as too short, not read with the flags shifted.
        let p = valid_request_payload();
        let err = frames_state(Peer::ApacheChild)
            .decode(&request_payload_frame(&p[..38]))
            .unwrap_err();
        assert!(
            err.to_string().contains("shorter than its fixed fields"),
            "{err}"
        );
    }

    #[test]
    fn request_body_shapes_round_trip() {
        for (body, follows) in [
            (RequestBody::None, false),
            (RequestBody::Length(0), false),
            (RequestBody::Length(u64::MAX), true),
            (RequestBody::Chunked, false),
            (RequestBody::Chunked, true),
        ] {
            let req = RequestHead {
                body,
                body_follows: follows,
                ..RequestHead::default()
            };
            let mut out = Vec::new();
            encode_hello(&hello(Peer::ApacheChild), &mut out);
            req.encode(&Limits::default(), &mut out).unwrap();
            let frames = decode_pieces(Peer::ApacheChild, &[&out]).unwrap();
            assert_eq!(frames[1], Owned::Request(req));
        }
        // A "body follows" flag without a body is dropped when encoding.
        let req = RequestHead {
            body_follows: true,
            ..RequestHead::default()
        };
        let mut out = Vec::new();
        req.encode(&Limits::default(), &mut out).unwrap();
        let flags = le_u32(&out[FRAME_HEADER_LEN + 36..FRAME_HEADER_LEN + 40]);
        assert_eq!(flags, 0);
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        for (peer, bytes, expected) in streams() {
            for cut in 0..=bytes.len() {
                let got = decode_pieces(peer, &[&bytes[..cut], &bytes[cut..]]).unwrap();
                assert_eq!(got, expected, "cut at {cut}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_and_random_splits_give_the_same_frames() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for (peer, bytes, expected) in streams() {
            let singles: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(decode_pieces(peer, &singles).unwrap(), expected);
            for _ in 0..200 {
                let mut pieces = Vec::new();
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let n = 1 + rng.below(rest.len().min(40));
                    pieces.push(&rest[..n]);
                    rest = &rest[n..];
                }
                assert_eq!(decode_pieces(peer, &pieces).unwrap(), expected);
            }
        }
    }

    #[test]
    fn truncated_head_frames_ask_for_more_and_never_overshoot() {
        let limits = Limits::default();
        let mut frames: Vec<(Peer, Vec<u8>)> = Vec::new();
        let mut f = Vec::new();
        sample_request().encode(&limits, &mut f).unwrap();
        frames.push((Peer::ApacheChild, f));
        let mut f = Vec::new();
        sample_response().encode(&limits, &mut f).unwrap();
        frames.push((Peer::Daemon, f));
        let mut f = Vec::new();
        encode_error(ErrorKind::Application, b"boom", &mut f);
        frames.push((Peer::Daemon, f));
        let mut f = Vec::new();
        encode_body_credit(NonZeroU32::new(7).unwrap(), &mut f);
        frames.push((Peer::Daemon, f));
        let mut f = Vec::new();
        encode_abort(b"gone", &mut f);
        frames.push((Peer::ApacheChild, f));
        for (peer, frame) in frames {
            for p in 0..frame.len() {
                let mut dec = Decoder::resume(peer, limits);
                match dec.decode(&frame[..p]).unwrap() {
                    Decoded::NeedMore(n) => assert!(n >= 1 && p + n <= frame.len(), "p={p} n={n}"),
                    other => panic!("prefix of {p} bytes decoded as {other:?}"),
                }
                assert!(dec.at_frame_boundary());
            }
        }
        // The greeting too.
        let mut h = Vec::new();
        encode_hello(&hello(Peer::Daemon), &mut h);
        for p in 0..h.len() {
            let mut dec = Decoder::new(Peer::Daemon, limits);
            assert_eq!(
                dec.decode(&h[..p]).unwrap(),
                Decoded::NeedMore(HELLO_LEN - p)
            );
        }
    }

    #[test]
    fn body_frames_stream_without_buffering() {
        // A body frame claiming 4 GiB - 1 asks for one byte, not 4 GiB.
        let mut dec = Decoder::resume(Peer::Daemon, Limits::default());
        let mut f = Vec::new();
        encode_body_header(u32::MAX, true, &mut f);
        assert_eq!(dec.decode(&f).unwrap(), Decoded::NeedMore(1));
        f.extend_from_slice(b"abc");
        assert_eq!(
            dec.decode(&f).unwrap(),
            Decoded::Frame {
                frame: Frame::Body {
                    data: b"abc",
                    flush: false
                },
                consumed: 11
            }
        );
        assert_eq!(
            dec.state,
            State::Body {
                remaining: u32::MAX - 3,
                flush: true
            }
        );
        assert_eq!(dec.decode(&[]).unwrap(), Decoded::NeedMore(1));
        assert_eq!(dec.expecting(&[]), "the rest of a body frame");
        match dec.eof_error(&[]) {
            ProtocolError::Truncated { missing, .. } => {
                assert_eq!(missing, u64::from(u32::MAX - 3))
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn flush_is_reported_once_on_the_last_piece() {
        let mut f = Vec::new();
        encode_body(b"abcdef", true, &mut f);
        let mut dec = Decoder::resume(Peer::Daemon, Limits::default());
        let Decoded::Frame { frame, consumed } = dec.decode(&f[..10]).unwrap() else {
            panic!()
        };
        assert_eq!(
            frame,
            Frame::Body {
                data: b"ab",
                flush: false
            }
        );
        let Decoded::Frame {
            frame,
            consumed: c2,
        } = dec.decode(&f[consumed..]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            frame,
            Frame::Body {
                data: b"cdef",
                flush: true
            }
        );
        assert_eq!(consumed + c2, f.len());
        assert!(dec.at_frame_boundary());
    }

    #[test]
    fn large_bodies_split_into_several_frames() {
        let mut out = Vec::new();
        push_body_frames(b"abcdefg", true, 3, &mut out);
        let mut full = Vec::new();
        encode_hello(&hello(Peer::Daemon), &mut full);
        full.extend_from_slice(&out);
        let frames = decode_pieces(Peer::Daemon, &[&full]).unwrap();
        assert_eq!(frames[1], Owned::Body(b"abcdefg".to_vec(), true));
        // Three frames: 3 + 3 + 1 bytes, flush only on the last.
        assert_eq!(out.len(), 3 * FRAME_HEADER_LEN + 7);
        assert_eq!(out[1], 0);
        assert_eq!(out[FRAME_HEADER_LEN + 3 + 1], 0);
        assert_eq!(out[2 * (FRAME_HEADER_LEN + 3) + 1], FLAG_FLUSH);
        // Empty data without flush writes nothing.
        let mut none = Vec::new();
        encode_body(b"", false, &mut none);
        assert!(none.is_empty());
    }

    fn frames_state(from: Peer) -> Decoder {
        Decoder::resume(from, Limits::default())
    }

    #[test]
    fn oversized_heads_are_refused_from_the_header_alone() {
        let limits = Limits::default();
        for (peer, ty, limit) in [
            (
                Peer::ApacheChild,
                FrameType::RequestHead,
                limits.max_request_head,
            ),
            (
                Peer::Daemon,
                FrameType::ResponseHead,
                limits.max_response_head,
            ),
            (Peer::Daemon, FrameType::Error, MAX_MESSAGE_LEN as u32 + 1),
            (Peer::ApacheChild, FrameType::Abort, MAX_MESSAGE_LEN as u32),
        ] {
            for len in [limit + 1, u32::MAX] {
                let mut f = Vec::new();
                push_header(ty, 0, len, &mut f);
                match frames_state(peer).decode(&f) {
                    Err(ProtocolError::FrameTooLarge {
                        len: l, limit: lim, ..
                    }) => {
                        assert_eq!((l, lim), (len, limit));
                    }
                    other => panic!("{ty:?} {len}: {other:?}"),
                }
            }
            // At the limit, it merely asks for the bytes.
            let mut f = Vec::new();
            push_header(ty, 0, limit, &mut f);
            assert_eq!(
                frames_state(peer).decode(&f).unwrap(),
                Decoded::NeedMore(limit as usize)
            );
        }
        for (ty, peer) in [
            (FrameType::End, Peer::Daemon),
            (FrameType::Goodbye, Peer::ApacheChild),
        ] {
            let mut f = Vec::new();
            push_header(ty, 0, 1, &mut f);
            assert!(matches!(
                frames_state(peer).decode(&f),
                Err(ProtocolError::Malformed { .. })
            ));
        }
        let mut f = Vec::new();
        push_header(FrameType::BodyCredit, 0, 3, &mut f);
        f.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            frames_state(Peer::Daemon).decode(&f),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn oversized_response_headers_are_rejected_per_header() {
        let limits = Limits {
            header_buffer_size: 16,
            ..Limits::default()
        };
        let ok = [(&b"Name"[..], &b"0123456789ab"[..])]; // 16 bytes: allowed
        let mut out = Vec::new();
        encode_response_head(b"200 OK", ok, &limits, &mut out).unwrap();
        let mut dec = Decoder::resume(Peer::Daemon, limits);
        assert!(matches!(
            dec.decode(&out).unwrap(),
            Decoded::Frame {
                frame: Frame::ResponseHead(_),
                ..
            }
        ));

        // Encoding a 17-byte header fails and leaves the buffer untouched.
        let big = [(&b"Name"[..], &b"0123456789abc"[..])];
        let mut out = b"keep".to_vec();
        let err = encode_response_head(b"200 OK", big, &limits, &mut out).unwrap_err();
        assert_eq!(out, b"keep");
        assert_eq!(
            err.to_string(),
            "the response header 'Name' takes 17 bytes, more than the limit of 16 bytes, so it cannot be sent"
        );
        assert_eq!(err.gateway_status(), 500);

        // A daemon that sends one anyway is refused on decode.
        let mut out = Vec::new();
        encode_response_head(b"200 OK", big, &Limits::default(), &mut out).unwrap();
        let mut dec = Decoder::resume(Peer::Daemon, limits);
        let err = dec.decode(&out).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the daemon process sent the response header 'Name' of 17 bytes, larger than header-buffer-size=16; \
             raise the header-buffer-size option of WSGIDaemonProcess if the application really sends such headers"
        );
        // So is an overlong status line.
        let mut out = Vec::new();
        encode_response_head(
            b"200 OK and then a lot more",
            ok,
            &Limits::default(),
            &mut out,
        )
        .unwrap();
        let mut dec = Decoder::resume(Peer::Daemon, limits);
        assert!(
            matches!(dec.decode(&out), Err(ProtocolError::HeaderTooLarge { ref what, .. }) if what == "the status line")
        );
    }

    #[test]
    fn oversized_request_head_is_refused_when_encoding() {
        let limits = Limits {
            max_request_head: 100,
            ..Limits::default()
        };
        let big = [(b"HTTP_X".to_vec(), vec![b'x'; 100])];
        let mut out = Vec::new();
        let err = encode_request_head(
            &RequestMeta::default(),
            big.iter().map(|(n, v)| (n, v)),
            &limits,
            &mut out,
        )
        .unwrap_err();
        assert!(out.is_empty());
        assert!(
            matches!(err, ProtocolError::EncodeTooLarge { limit: 100, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("the request head (CGI variables and metadata) takes")
        );
    }

    #[test]
    fn garbage_type_bytes_are_refused_at_once() {
        for byte in 0..=255u8 {
            for peer in [Peer::ApacheChild, Peer::Daemon] {
                let input = [byte];
                let result = frames_state(peer).decode(&input);
                match FrameType::from_byte(byte) {
                    None => assert!(
                        matches!(result, Err(ProtocolError::UnknownFrameType { byte: b, .. }) if b == byte),
                        "{byte:#x}"
                    ),
                    Some(ty) if ty.sender().is_some_and(|s| s != peer) => {
                        assert!(
                            matches!(result, Err(ProtocolError::WrongDirection { .. })),
                            "{byte:#x}"
                        )
                    }
                    Some(_) => assert_eq!(result.unwrap(), Decoded::NeedMore(7)),
                }
            }
        }
        let err = frames_state(Peer::Daemon).decode(&[0x7f]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the daemon process sent a frame of unknown type 0x7f where a frame header was expected; \
             the stream is corrupt or out of step"
        );
        let err = frames_state(Peer::Daemon).decode(&[0x11]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the daemon process sent a request headers frame, which only the Apache child process may send"
        );
    }

    #[test]
    fn bad_flags_and_reserved_bits_are_refused() {
        let cases: [(Peer, [u8; 8]); 4] = [
            (Peer::Daemon, [0x32, 0x01, 0, 0, 0, 0, 0, 0]), // flush on an end frame
            (Peer::Daemon, [0x31, 0x02, 0, 0, 1, 0, 0, 0]), // unknown body flag
            (Peer::Daemon, [0x31, 0x00, 1, 0, 1, 0, 0, 0]), // reserved bits
            (Peer::ApacheChild, [0x11, 0x00, 0, 0x80, 0, 0, 0, 0]),
        ];
        for (peer, header) in cases {
            assert!(
                matches!(
                    frames_state(peer).decode(&header),
                    Err(ProtocolError::BadFrameHeader { .. })
                ),
                "{header:?}"
            );
        }
    }

    fn request_payload_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        push_header(FrameType::RequestHead, 0, payload.len() as u32, &mut f);
        f.extend_from_slice(payload);
        f
    }

    fn valid_request_payload() -> Vec<u8> {
        let mut f = Vec::new();
        sample_request().encode(&Limits::default(), &mut f).unwrap();
        f.split_off(FRAME_HEADER_LEN)
    }

    #[test]
    fn lengths_inside_heads_that_overflow_are_malformed() {
        let fixed = REQ_FIXED_LEN;
        let base = valid_request_payload();
        // Offsets: the first string length, and the CGI count.
        let strings_len: usize = sample_request().meta().process_group.len()
            + sample_request().meta().script_filename.len()
            + sample_request().meta().callable_object.len();
        let count_at = fixed + 5 * 4 + strings_len;
        assert_eq!(le_u32(&base[count_at..count_at + 4]), 6);
        let first_pair = count_at + 4;
        let mutations: Vec<(usize, [u8; 4])> = vec![
            (fixed, u32::MAX.to_le_bytes()),                // group name length
            (fixed, (u32::MAX - 3).to_le_bytes()),          // would wrap a 32-bit offset
            (count_at, u32::MAX.to_le_bytes()),             // count
            (count_at, 7u32.to_le_bytes()),                 // one pair too many
            (count_at, 5u32.to_le_bytes()),                 // trailing bytes
            (first_pair, u32::MAX.to_le_bytes()),           // name length
            (first_pair + 4, u32::MAX.to_le_bytes()),       // value length
            (first_pair + 4, 0x8000_0000u32.to_le_bytes()), // value length
        ];
        for (at, bytes) in mutations {
            let mut p = base.clone();
            p[at..at + 4].copy_from_slice(&bytes);
            let err = frames_state(Peer::ApacheChild)
                .decode(&request_payload_frame(&p))
                .unwrap_err();
            assert!(
                matches!(err, ProtocolError::Malformed { .. }),
                "{at}: {err:?}"
            );
        }
        // Flags: unknown bits, contradictory body shapes, stray length.
        let flags_at = fixed - 4;
        for flags in [
            0x10u32,
            REQ_BODY_LENGTH | REQ_BODY_CHUNKED,
            REQ_BODY_FOLLOWS,
            REQ_BODY_CHUNKED,
        ] {
            let mut p = base.clone();
            p[flags_at..flags_at + 4].copy_from_slice(&flags.to_le_bytes());
            let err = frames_state(Peer::ApacheChild)
                .decode(&request_payload_frame(&p))
                .unwrap_err();
            assert!(
                matches!(err, ProtocolError::Malformed { .. }),
                "{flags:#x}: {err:?}"
            );
        }
        // Too short for the fixed fields.
        let err = frames_state(Peer::ApacheChild)
            .decode(&request_payload_frame(&base[..10]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Apache child process sent a malformed request headers frame: it is shorter than its fixed fields"
        );
    }

    #[test]
    fn malformed_file_frames() {
        let mut ok = Vec::new();
        encode_file(7, 9, &mut ok);
        assert_eq!(ok.len(), FRAME_HEADER_LEN + 16);
        assert_eq!(
            own(match frames_state(Peer::Daemon).decode(&ok).unwrap() {
                Decoded::Frame { frame, .. } => frame,
                other => panic!("{other:?}"),
            }),
            Owned::File(7, 9)
        );
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                {
                    let mut f = Vec::new();
                    push_header(FrameType::File, 0, 15, &mut f);
                    f.extend_from_slice(&[0; 15]);
                    f
                },
                "its payload is not 16 bytes",
            ),
            (
                {
                    let mut f = Vec::new();
                    push_header(FrameType::File, 0, 17, &mut f);
                    f
                },
                "its payload is not 16 bytes",
            ),
            (
                {
                    let mut f = Vec::new();
                    encode_file(7, 0, &mut f);
                    f
                },
                "it sends zero bytes",
            ),
            (
                {
                    let mut f = Vec::new();
                    encode_file(u64::MAX, 2, &mut f);
                    f
                },
                "its offset and length run past the largest file",
            ),
            (
                {
                    let mut f = Vec::new();
                    encode_file(i64::MAX as u64, 1, &mut f);
                    f
                },
                "its offset and length run past the largest file",
            ),
        ];
        for (bytes, problem) in cases {
            let err = frames_state(Peer::Daemon).decode(&bytes).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the daemon process sent a malformed file frame: {problem}")
            );
        }
        // Only a daemon sends files.
        assert!(matches!(
            frames_state(Peer::ApacheChild).decode(&ok),
            Err(ProtocolError::WrongDirection { .. })
        ));
    }

    #[test]
    fn malformed_small_frames() {
        let mut f = Vec::new();
        push_header(FrameType::BodyCredit, 0, 4, &mut f);
        f.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            frames_state(Peer::Daemon).decode(&f),
            Err(ProtocolError::Malformed { .. })
        ));
        let mut f = Vec::new();
        push_header(FrameType::Error, 0, 0, &mut f);
        assert!(matches!(
            frames_state(Peer::Daemon).decode(&f),
            Err(ProtocolError::Malformed { .. })
        ));
        let mut f = Vec::new();
        push_header(FrameType::Error, 0, 1, &mut f);
        f.push(99);
        let err = frames_state(Peer::Daemon).decode(&f).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the daemon process sent a malformed error frame: its error kind byte is unknown"
        );
        // Messages longer than the limit are cut when encoding.
        let mut f = Vec::new();
        encode_error(
            ErrorKind::Application,
            &vec![b'x'; MAX_MESSAGE_LEN + 10],
            &mut f,
        );
        assert_eq!(f.len(), FRAME_HEADER_LEN + 1 + MAX_MESSAGE_LEN);
        assert!(matches!(
            frames_state(Peer::Daemon).decode(&f).unwrap(),
            Decoded::Frame { .. }
        ));
        let mut f = Vec::new();
        encode_abort(&vec![b'x'; MAX_MESSAGE_LEN + 10], &mut f);
        assert!(matches!(
            frames_state(Peer::ApacheChild).decode(&f).unwrap(),
            Decoded::Frame { .. }
        ));
    }

    #[test]
    fn greeting_errors() {
        // A stranger is refused on its first wrong byte.
        let err = Decoder::new(Peer::Daemon, Limits::default())
            .decode(b"G")
            .unwrap_err();
        assert!(matches!(err, ProtocolError::BadMagic { .. }));
        let err = Decoder::new(Peer::Daemon, Limits::default())
            .decode(b"GET / HTTP/1.1\r\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the daemon process does not speak the mod_wsgi-rs daemon protocol: it sent \"GET / HT\" where the \
             greeting \"mwsgi-rs\" was expected; is another program listening on the daemon socket?"
        );
        let err = Decoder::new(Peer::ApacheChild, Limits::default())
            .decode(b"mw\xff")
            .unwrap_err();
        assert!(err.to_string().contains("it sent \"mw\\xff\""), "{err}");

        let mut h = Vec::new();
        encode_hello(&hello(Peer::Daemon), &mut h);
        // A daemon from the build before the request head carried the
        // server index.
        let mut v1 = h.clone();
        v1[8..10].copy_from_slice(&1u16.to_le_bytes());
        let err = Decoder::new(Peer::Daemon, Limits::default())
            .decode(&v1)
            .unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::VersionMismatch {
                theirs: 1,
                ours: 2,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "the daemon process speaks daemon protocol version 1 but this process speaks version 2; the Apache \
             child processes and the daemon processes come from different mod_wsgi-rs builds, so stop and start \
             Apache completely"
        );
        let err = Decoder::new(Peer::ApacheChild, Limits::default())
            .decode(&h)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a greeting from the Apache child process but the greeting on this connection has role \
             byte 2 (a daemon process); the socket is connected to the wrong kind of process"
        );
        let mut bad = h.clone();
        bad[11] = 1;
        assert!(matches!(
            Decoder::new(Peer::Daemon, Limits::default()).decode(&bad),
            Err(ProtocolError::Malformed { .. })
        ));
        let mut bad = h.clone();
        bad[10] = 9;
        assert!(matches!(
            Decoder::new(Peer::Daemon, Limits::default()).decode(&bad),
            Err(ProtocolError::WrongPeer { role: 9, .. })
        ));
        // A second greeting is garbage: 'm' is no frame type.
        let mut twice = h.clone();
        twice.extend_from_slice(&h);
        assert!(matches!(
            decode_pieces(Peer::Daemon, &[&twice]),
            Err(ProtocolError::UnknownFrameType { byte: b'm', .. })
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let (a, _) = apache_stream();
        let (d, _) = daemon_stream();
        for round in 0..20_000 {
            let peer = if round % 2 == 0 {
                Peer::ApacheChild
            } else {
                Peer::Daemon
            };
            let mut input = match round % 4 {
                // Pure noise, with or without a valid greeting in front.
                0 => {
                    let n = rng.below(64);
                    rng.bytes(n)
                }
                1 => {
                    let mut v = Vec::new();
                    encode_hello(&hello(peer), &mut v);
                    let n = rng.below(64);
                    v.extend(rng.bytes(n));
                    v
                }
                // Valid streams with a few bytes flipped.
                _ => {
                    let mut v = if peer == Peer::ApacheChild {
                        a.clone()
                    } else {
                        d.clone()
                    };
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(v.len());
                        v[i] = rng.next() as u8;
                    }
                    v
                }
            };
            if round % 8 == 7 {
                let n = rng.below(input.len() + 1);
                input.truncate(n);
            }
            let limits = Limits {
                max_request_head: 512,
                max_response_head: 512,
                header_buffer_size: 64,
            };
            let mut dec = Decoder::new(peer, limits);
            let mut rest = &input[..];
            let mut steps = 0;
            loop {
                steps += 1;
                assert!(steps <= input.len() + 2, "no progress");
                match dec.decode(rest) {
                    Ok(Decoded::NeedMore(n)) => {
                        assert!(n >= 1);
                        let _ = dec.eof_error(rest).to_string();
                        let _ = dec.expecting(rest);
                        break;
                    }
                    Ok(Decoded::Frame { frame, consumed }) => {
                        assert!(consumed >= 1 && consumed <= rest.len());
                        if let Frame::RequestHead(h) = frame {
                            assert_eq!(h.cgi_vars.iter().count(), h.cgi_vars.len());
                        }
                        if let Frame::ResponseHead(h) = frame {
                            assert_eq!(h.headers.iter().count(), h.headers.len());
                        }
                        rest = &rest[consumed..];
                    }
                    Err(e) => {
                        let _ = e.to_string();
                        break;
                    }
                }
            }
        }
    }

    /// A reader that hands out at most `step` bytes per call, with scripted
    /// interruptions, and then reports `end`.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        reads: usize,
        end: Option<io::ErrorKind>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.reads.is_multiple_of(3) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.pos == self.data.len() {
                return match self.end {
                    Some(kind) => Err(kind.into()),
                    None => Ok(0),
                };
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// A Trickle that keeps a copy of what its last `read_uninit` wrote.
    struct Recording {
        inner: Trickle,
        last: Vec<u8>,
    }

    impl Read for Recording {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.inner.read(buf)
        }
    }

    impl ReadUninit for Recording {
        fn read_uninit(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
            let mut tmp = vec![0u8; buf.len()];
            let n = self.inner.read(&mut tmp)?;
            for (o, i) in buf.iter_mut().zip(&tmp[..n]) {
                o.write(*i);
            }
            self.last = tmp[..n].to_vec();
            Ok(n)
        }
    }

    #[test]
    fn body_bytes_not_yet_buffered_are_read_straight_into_the_callers_buffer() {
        let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = Vec::new();
        encode_body(&body, false, &mut stream);
        encode_end(&mut stream);
        let trickle = |end| Recording {
            inner: Trickle {
                data: stream.clone(),
                pos: 0,
                step: 100,
                reads: 0,
                end,
            },
            last: Vec::new(),
        };
        let mut reader = FrameReader::with_buffer(
            trickle(None),
            Decoder::resume(Peer::ApacheChild, Limits::default()),
            Vec::with_capacity(64),
        );
        let mut dst = [std::mem::MaybeUninit::<u8>::uninit(); 300];
        // Between frames there is nothing to read directly.
        assert!(reader.read_body_into(&mut dst).is_none());
        // The header and the first bytes come through the buffer.
        let mut got = match reader.next_frame_max(10).unwrap() {
            Frame::Body { data, .. } => data.to_vec(),
            f => panic!("{f:?}"),
        };
        // Bytes still in the buffer are handed out first, by next_frame_max.
        while !reader.buffered().is_empty() {
            assert!(reader.read_body_into(&mut dst).is_none());
            match reader.next_frame_max(10).unwrap() {
                Frame::Body { data, .. } => got.extend_from_slice(data),
                f => panic!("{f:?}"),
            }
        }
        // Then the rest of the frame goes straight from the stream, in
        // reads no larger than the caller's buffer and never past the frame.
        while !reader.decoder().at_frame_boundary() {
            let n = reader.read_body_into(&mut dst).unwrap().unwrap();
            assert!(n > 0 && n <= dst.len());
            assert_eq!(reader.get_ref().last.len(), n);
            got.extend_from_slice(&reader.get_ref().last);
        }
        assert_eq!(got, body);
        assert!(reader.read_body_into(&mut dst).is_none());
        assert!(matches!(reader.next_frame().unwrap(), Frame::End));

        // A stream that ends inside the frame is truncated, a timeout is one.
        for (end, timed_out) in [(None, false), (Some(io::ErrorKind::WouldBlock), true)] {
            let mut src = trickle(end);
            src.inner.data.truncate(8 + 500);
            let mut reader = FrameReader::with_buffer(
                src,
                Decoder::resume(Peer::ApacheChild, Limits::default()),
                Vec::with_capacity(16),
            );
            assert!(matches!(
                reader.next_frame_max(8).unwrap(),
                Frame::Body { .. }
            ));
            let mut err = None;
            for _ in 0..100 {
                match reader.read_body_into(&mut dst) {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        err = Some(e);
                        break;
                    }
                    None => {
                        let _ = reader.next_frame_max(8);
                    }
                }
            }
            let err = err.expect("an error");
            assert_eq!(
                matches!(err, ProtocolError::ReadTimedOut { .. }),
                timed_out,
                "{err:?}"
            );
            if !timed_out {
                assert!(matches!(err, ProtocolError::Truncated { .. }), "{err:?}");
            }
        }
    }

    fn read_all(reader: &mut FrameReader<Trickle>) -> (Vec<Owned>, ProtocolError) {
        let mut frames = Vec::new();
        loop {
            match reader.next_frame() {
                Ok(f) => {
                    let f = own(f);
                    push(&mut frames, f);
                }
                Err(e) => return (frames, e),
            }
        }
    }

    #[test]
    fn frame_reader_reads_whole_streams_through_small_buffers() {
        for (peer, bytes, expected) in streams() {
            for (step, cap) in [(1, 1), (3, 7), (7, 64), (4096, 4096)] {
                let src = Trickle {
                    data: bytes.clone(),
                    pos: 0,
                    step,
                    reads: 0,
                    end: None,
                };
                let mut reader = FrameReader::with_buffer(
                    src,
                    Decoder::new(peer, Limits::default()),
                    Vec::with_capacity(cap),
                );
                let (frames, end) = read_all(&mut reader);
                assert_eq!(frames, expected, "step {step} cap {cap}");
                assert!(end.is_clean_close(), "{end:?}");
                assert_eq!(end.gateway_status(), 502);
                // The buffer went back to its base size after the heads.
                let (_, buf) = reader.into_parts();
                assert_eq!(buf.len(), cap);
            }
        }
    }

    #[test]
    fn frame_reader_reports_truncation_and_timeouts() {
        let (bytes, _) = daemon_stream();
        // Cut inside the response head: hello (16) + credit (12) + 10 bytes.
        let cut = HELLO_LEN + 12 + 10;
        let src = Trickle {
            data: bytes[..cut].to_vec(),
            pos: 0,
            step: 5,
            reads: 0,
            end: None,
        };
        let mut reader = FrameReader::new(src, Decoder::new(Peer::Daemon, Limits::default()));
        let (frames, err) = read_all(&mut reader);
        assert_eq!(frames.len(), 2);
        let mut head = Vec::new();
        sample_response()
            .encode(&Limits::default(), &mut head)
            .unwrap();
        let missing = head.len() - 10;
        assert_eq!(
            err.to_string(),
            format!(
                "the daemon process closed the connection in the middle of a response headers frame, {missing} bytes \
                 short of its end; the daemon process probably crashed or was killed (look for a message about it \
                 exiting, or about the client going away)"
            )
        );
        // Nothing at all: closed before the greeting.
        let src = Trickle {
            data: Vec::new(),
            pos: 0,
            step: 5,
            reads: 0,
            end: None,
        };
        let mut reader = FrameReader::new(src, Decoder::new(Peer::Daemon, Limits::default()));
        let err = reader.next_frame().unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::Closed {
                expecting: "its greeting",
                ..
            }
        ));
        // A receive timeout in the middle of a frame header.
        let src = Trickle {
            data: bytes[..HELLO_LEN + 3].to_vec(),
            pos: 0,
            step: 100,
            reads: 0,
            end: Some(io::ErrorKind::WouldBlock),
        };
        let mut reader = FrameReader::new(src, Decoder::new(Peer::Daemon, Limits::default()));
        assert!(matches!(reader.next_frame().unwrap(), Frame::Hello(_)));
        let err = reader.next_frame().unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out waiting for the daemon process to send the rest of a frame header"
        );
        assert_eq!(err.gateway_status(), 504);
        // Other errors keep their cause.
        let src = Trickle {
            data: Vec::new(),
            pos: 0,
            step: 1,
            reads: 0,
            end: Some(io::ErrorKind::ConnectionReset),
        };
        let mut reader = FrameReader::new(src, Decoder::new(Peer::ApacheChild, Limits::default()));
        let err = reader.next_frame().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("reading from the Apache child process failed: "),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    /// A writer that records each call and accepts at most `max` bytes each.
    #[derive(Default)]
    struct Recorder {
        out: Vec<u8>,
        calls: Vec<(&'static str, usize)>,
        max: usize,
        fail: Option<io::ErrorKind>,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(kind) = self.fail {
                return Err(kind.into());
            }
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            self.calls.push(("write", n));
            Ok(n)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if let Some(kind) = self.fail {
                return Err(kind.into());
            }
            let mut left = self.max;
            for b in bufs {
                let n = b.len().min(left);
                self.out.extend_from_slice(&b[..n]);
                left -= n;
            }
            let n = self.max - left;
            self.calls.push(("writev", n));
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn frame_writer_sends_a_small_response_in_one_write() {
        let limits = Limits::default();
        let rec = Recorder {
            max: usize::MAX,
            ..Recorder::default()
        };
        let mut w = FrameWriter::new(rec, Peer::ApacheChild, &hello(Peer::Daemon));
        sample_response().encode(&limits, w.pending_mut()).unwrap();
        w.body(b"Hello World!", false).unwrap();
        w.end().unwrap();
        let (rec, _) = w.into_parts();
        assert_eq!(rec.calls.len(), 1, "{:?}", rec.calls);
        let frames = decode_pieces(Peer::Daemon, &[&rec.out]).unwrap();
        assert_eq!(
            frames,
            vec![
                Owned::Hello(hello(Peer::Daemon)),
                Owned::Response(sample_response()),
                Owned::Body(b"Hello World!".to_vec(), false),
                Owned::End,
            ]
        );
    }

    #[test]
    fn frame_writer_sends_large_bodies_vectored_and_survives_partial_writes() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for max in [usize::MAX, 1000, 7] {
            let rec = Recorder {
                max,
                ..Recorder::default()
            };
            let mut w = FrameWriter::new(rec, Peer::ApacheChild, &hello(Peer::Daemon));
            w.body(b"small", false).unwrap();
            w.body(&big, true).unwrap();
            w.body(b"tail", true).unwrap();
            w.end().unwrap();
            let (rec, _) = w.into_parts();
            if max == usize::MAX {
                // hello+small+header+big in one writev; tail flushed; end.
                assert_eq!(
                    rec.calls,
                    vec![
                        ("writev", HELLO_LEN + 13 + 8 + big.len()),
                        ("write", 12),
                        ("write", 8)
                    ]
                );
            }
            let frames = decode_pieces(Peer::Daemon, &[&rec.out]).unwrap();
            let mut body = b"small".to_vec();
            body.extend_from_slice(&big);
            assert_eq!(
                frames,
                vec![
                    Owned::Hello(hello(Peer::Daemon)),
                    Owned::Body(body, true),
                    Owned::Body(b"tail".to_vec(), true),
                    Owned::End
                ]
            );
        }
    }

    #[test]
    fn frame_writer_errors_name_the_peer() {
        let rec = Recorder {
            max: usize::MAX,
            fail: Some(io::ErrorKind::BrokenPipe),
            ..Recorder::default()
        };
        let mut w = FrameWriter::new(rec, Peer::Daemon, &hello(Peer::ApacheChild));
        let err = w.end().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("writing to the daemon process failed: "),
            "{err}"
        );
        assert!(w.pending().is_empty());
        let rec = Recorder {
            max: usize::MAX,
            fail: Some(io::ErrorKind::WouldBlock),
            ..Recorder::default()
        };
        let mut w = FrameWriter::new(rec, Peer::ApacheChild, &hello(Peer::Daemon));
        let err = w.body(&[0; 20_000], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out waiting for the Apache child process to accept more data; it has stopped reading from the socket"
        );
        assert_eq!(err.gateway_status(), 504);
    }

    #[test]
    fn error_kinds_map_to_statuses() {
        assert_eq!(ErrorKind::Application.http_status(), 500);
        assert_eq!(ErrorKind::Internal.http_status(), 500);
        assert_eq!(ErrorKind::Unavailable.http_status(), 503);
        assert_eq!(ErrorKind::Restarting.http_status(), 503);
        assert_eq!(ErrorKind::from_byte(6), Some(ErrorKind::Restarting));
        assert_eq!(ErrorKind::QueueTimeout.http_status(), 504);
        assert_eq!(ErrorKind::RequestTimeout.http_status(), 504);
        for b in 0..=255u8 {
            if let Some(k) = ErrorKind::from_byte(b) {
                assert_eq!(k as u8, b);
            }
            if let Some(t) = FrameType::from_byte(b) {
                assert_eq!(t as u8, b);
            }
        }
    }

    #[test]
    fn closed_between_frames_is_clean_and_says_so() {
        let dec = frames_state(Peer::Daemon);
        let err = dec.eof_error(&[]);
        assert!(err.is_clean_close());
        assert_eq!(
            err.to_string(),
            "the daemon process closed the connection while the next frame was awaited; the daemon process probably \
             crashed or was killed (look for a message about it exiting, or about the client going away)"
        );
        let err = dec.eof_error(&[0x31, 0, 0]);
        assert!(matches!(
            err,
            ProtocolError::Truncated {
                what: "a frame header",
                missing: 5,
                ..
            }
        ));
    }

    #[test]
    fn a_reused_connection_carries_a_second_exchange_without_greetings() {
        let limits = Limits::default();
        // First exchange: greetings ride along with the first frames.
        let rec = Recorder {
            max: usize::MAX,
            ..Recorder::default()
        };
        let mut w = FrameWriter::new(rec, Peer::ApacheChild, &hello(Peer::Daemon));
        sample_response().encode(&limits, w.pending_mut()).unwrap();
        w.body(b"one", true).unwrap();
        w.end().unwrap();
        let (rec, buf) = w.into_parts();
        // Second exchange on the same connection: no greeting.
        let mut w = FrameWriter::resume(rec, Peer::ApacheChild, buf);
        sample_response().encode(&limits, w.pending_mut()).unwrap();
        w.body(b"two", false).unwrap();
        w.end().unwrap();
        let (rec, _) = w.into_parts();
        let first_len = rec.calls[0].1 + rec.calls[1].1;
        let (first, second) = rec.out.split_at(first_len);
        assert_eq!(
            decode_pieces(Peer::Daemon, &[first]).unwrap(),
            vec![
                Owned::Hello(hello(Peer::Daemon)),
                Owned::Response(sample_response()),
                Owned::Body(b"one".to_vec(), true),
                Owned::End,
            ]
        );
        // A resumed decoder reads the second exchange as frames...
        let mut dec = Decoder::resume(Peer::Daemon, limits);
        assert!(dec.at_frame_boundary());
        let mut got = Vec::new();
        let mut rest = second;
        while !rest.is_empty() {
            match dec.decode(rest).unwrap() {
                Decoded::Frame { frame, consumed } => {
                    got.push(own(frame));
                    rest = &rest[consumed..];
                }
                Decoded::NeedMore(n) => panic!("needs {n} more"),
            }
        }
        assert_eq!(
            got,
            vec![
                Owned::Response(sample_response()),
                Owned::Body(b"two".to_vec(), false),
                Owned::End,
            ]
        );
        // ... and a second greeting on it is garbage, not a greeting.
        let mut dec = Decoder::resume(Peer::Daemon, limits);
        let mut again = Vec::new();
        encode_hello(&hello(Peer::Daemon), &mut again);
        assert!(matches!(
            dec.decode(&again),
            Err(ProtocolError::UnknownFrameType { byte: b'm', .. })
        ));
        // A FrameReader given back its buffer reads on without re-zeroing it.
        let mut stream = Vec::new();
        sample_response().encode(&limits, &mut stream).unwrap();
        encode_end(&mut stream);
        let r = FrameReader::new(&stream[..], Decoder::resume(Peer::Daemon, limits));
        let (_, buf) = r.into_parts();
        let mut r =
            FrameReader::with_buffer(&stream[..], Decoder::resume(Peer::Daemon, limits), buf);
        assert_eq!(
            own(r.next_frame().unwrap()),
            Owned::Response(sample_response())
        );
        assert_eq!(own(r.next_frame().unwrap()), Owned::End);
        assert!(r.next_frame().unwrap_err().is_clean_close());
    }

    #[test]
    fn a_growing_reader_grows_for_a_large_body_only_and_hands_back_its_base_size() {
        let limits = Limits::default();
        let (base, max) = (1024, 8192);
        // A short response fits the first read: the buffer never grows.
        let mut short = Vec::new();
        sample_response().encode(&limits, &mut short).unwrap();
        encode_body(b"hello world\n", false, &mut short);
        encode_end(&mut short);
        assert!(short.len() < base);
        let mut r = FrameReader::with_sizes(
            &short[..],
            Decoder::resume(Peer::Daemon, limits),
            Vec::new(),
            base,
            max,
        );
        while !matches!(r.next_frame().unwrap(), Frame::End) {}
        assert_eq!(r.buf.len(), base);
        // A 1 MiB body streams through pieces of at most `max` bytes.
        let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        let mut large = Vec::new();
        sample_response().encode(&limits, &mut large).unwrap();
        encode_body(&body, false, &mut large);
        encode_end(&mut large);
        let (_, buf) = r.into_parts();
        let mut r = FrameReader::with_sizes(
            &large[..],
            Decoder::resume(Peer::Daemon, limits),
            buf,
            base,
            max,
        );
        assert_eq!(
            own(r.next_frame().unwrap()),
            Owned::Response(sample_response())
        );
        let (mut got, mut largest) = (Vec::new(), 0);
        loop {
            match r.next_frame().unwrap() {
                Frame::Body { data, .. } => {
                    largest = largest.max(data.len());
                    got.extend_from_slice(data);
                }
                Frame::End => break,
                f => panic!("unexpected {:?}", own(f)),
            }
            assert!(r.buf.capacity() <= max, "{}", r.buf.capacity());
        }
        assert!(got == body);
        assert_eq!(largest, max, "the buffer grew to the full read size");
        // Handed back at its base size, whatever went through it.
        let (_, buf) = r.into_parts();
        assert_eq!(buf.len(), base);
        assert!(buf.capacity() < max, "{}", buf.capacity());
    }

    #[test]
    fn a_reader_may_hand_back_its_grown_allocation_for_the_next_reader() {
        let limits = Limits::default();
        let (base, max) = (1024, 8192);
        let response = |n: usize| {
            let mut out = Vec::new();
            sample_response().encode(&limits, &mut out).unwrap();
            encode_body(&vec![7u8; n], false, &mut out);
            encode_end(&mut out);
            out
        };
        let drain = |r: &mut FrameReader<&[u8]>| {
            let mut n = 0;
            loop {
                match r.next_frame().unwrap() {
                    Frame::Body { data, .. } => n += data.len(),
                    Frame::End => return n,
                    _ => {}
                }
            }
        };
        let large = response(100_000);
        let mut r = FrameReader::with_sizes(
            &large[..],
            Decoder::resume(Peer::Daemon, limits),
            Vec::new(),
            base,
            max,
        );
        assert_eq!(drain(&mut r), 100_000);
        let (_, buf) = r.into_parts_keeping_capacity();
        assert_eq!(buf.len(), base, "back at its base length");
        assert!(
            buf.capacity() >= max,
            "keeps its allocation: {}",
            buf.capacity()
        );
        let ptr = buf.as_ptr();
        // The next reader starts small on the same allocation, and grows in
        // place for another large response.
        let mut r = FrameReader::with_sizes(
            &large[..],
            Decoder::resume(Peer::Daemon, limits),
            buf,
            base,
            max,
        );
        assert_eq!(drain(&mut r), 100_000);
        assert_eq!(r.buf.as_ptr(), ptr, "grew without reallocating");
        // A short response through a grown buffer reads it all.
        let short = response(12);
        let (_, buf) = r.into_parts_keeping_capacity();
        let mut r = FrameReader::with_sizes(
            &short[..],
            Decoder::resume(Peer::Daemon, limits),
            buf,
            base,
            max,
        );
        assert_eq!(drain(&mut r), 12);
    }

    #[test]
    fn a_writer_hands_back_a_buffer_no_larger_than_a_spare() {
        let rec = Recorder {
            max: usize::MAX,
            ..Recorder::default()
        };
        let mut w = FrameWriter::new(rec, Peer::ApacheChild, &hello(Peer::Daemon));
        // Small frames are gathered in the pending buffer: 100 KiB of them
        // grow it well past a spare's size before they go out.
        for _ in 0..100 {
            encode_body(&[b'x'; 1024], false, w.pending_mut());
        }
        assert!(w.pending().len() > SPARE_PENDING);
        w.end().unwrap();
        let (rec, buf) = w.into_parts();
        assert!(buf.is_empty());
        assert!(buf.capacity() <= SPARE_PENDING, "{}", buf.capacity());
        assert!(rec.out.len() > 100 * 1024);
        // A buffer within the limit keeps its capacity (no reallocation
        // per request).
        let mut w = FrameWriter::resume(rec, Peer::ApacheChild, Vec::with_capacity(4096));
        w.body(b"small", true).unwrap();
        let (_, buf) = w.into_parts();
        assert_eq!(buf.capacity(), 4096);
    }

    #[test]
    fn next_frame_max_hands_out_body_pieces_no_larger_than_asked() {
        let limits = Limits::default();
        let mut stream = Vec::new();
        sample_response().encode(&limits, &mut stream).unwrap();
        encode_body(b"0123456789", true, &mut stream);
        encode_body(b"ab", false, &mut stream);
        encode_end(&mut stream);
        let mut r = FrameReader::new(&stream[..], Decoder::resume(Peer::Daemon, limits));
        // A head comes whole whatever the limit.
        assert_eq!(
            own(r.next_frame_max(3).unwrap()),
            Owned::Response(sample_response())
        );
        let mut pieces = Vec::new();
        loop {
            match r.next_frame_max(3).unwrap() {
                Frame::Body { data, flush } => pieces.push((data.to_vec(), flush)),
                Frame::End => break,
                f => panic!("unexpected {:?}", own(f)),
            }
        }
        let want: Vec<(Vec<u8>, bool)> = vec![
            (b"012".to_vec(), false),
            (b"345".to_vec(), false),
            (b"678".to_vec(), false),
            // The flush flag comes with the frame's last piece.
            (b"9".to_vec(), true),
            (b"ab".to_vec(), false),
        ];
        assert_eq!(pieces, want);
        assert!(r.decoder().at_frame_boundary());
    }
}

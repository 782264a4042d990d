//! Reading a request body: through Apache's input filters, or, for a large
//! body of known length on a plain connection, straight from the client
//! socket.
//!
//! httpd's core input filter reads the socket 8,000 bytes at a time (APR's
//! socket bucket size) and copies them through a brigade: a 50 MiB upload
//! costs about 6,500 `read`s, each of which also makes the kernel send a
//! window update to the client. When nothing but Apache's own HTTP, core
//! and byte-counting filters stands between the request and the socket (no
//! TLS, no mod_reqtimeout, no input filter such as DEFLATE), the reads the
//! application asks for go to the socket directly, as large as it asks.
//!
//! Switching is safe only when httpd holds none of the body in its buffers.
//! The first read always goes through the filters (HTTP_IN sends `100
//! Continue` and checks the length against `LimitRequestBody`). Before each
//! later read, the core input filter's brigade (`core_net_rec` and
//! `core_filter_ctx`, declared in http_core.h) shows how many bytes it holds:
//! those are taken through the filters first, without touching the socket,
//! and once it holds none the reads go to the socket. From then on this
//! reader reads exactly the rest of the declared `Content-Length` and never
//! a byte more, so a pipelined next request stays in the socket for httpd.
//! HTTP_IN still believes the body unread, so a filter of ours goes in front
//! of it: anything that reads the body later (httpd's
//! `ap_discard_request_body`, an internal redirect) gets the rest read and
//! dropped and then the end of the body. In daemon mode the bytes go on from
//! the client socket to the daemon socket with `splice`, without being
//! copied into the Apache child at all (`daemon::client`).

use super::request::READ_FAILED;
use super::{Request, sys};
use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

/// Below this many bytes left, the filters are as good: the switch is not
/// worth a look at the filter chain.
const DIRECT_MIN: u64 = 256 * 1024;

/// The filters that may stand between the request and the socket (httpd
/// stores filter names in lower case).
const PLAIN_FILTERS: [&CStr; 3] = [c"http_in", c"log_input_output", c"core_in"];

const FILTER_NAME: &CStr = c"WSGI_DIRECT_BODY";

static FILTER: AtomicPtr<sys::ap_filter_rec_t> = AtomicPtr::new(std::ptr::null_mut());

/// `mod_logio`'s `ap_logio_add_bytes_in`, when it is loaded.
type AddBytesIn = unsafe extern "C" fn(*mut sys::conn_rec, sys::apr_off_t);

/// Registers the filter that stands in for HTTP_IN after a switch. Called
/// from register_hooks.
pub(crate) fn register_filter() {
    // SAFETY: registering a filter with a static name during register_hooks.
    let rec = unsafe {
        sys::ap_register_input_filter(
            FILTER_NAME.as_ptr(),
            Some(finished_body_filter),
            None,
            sys::ap_filter_type_AP_FTYPE_RESOURCE,
        )
    };
    FILTER.store(rec, Ordering::Release);
}

/// What the socket reads need, in the request's pool so that the filter can
/// reach it after the reader is gone.
#[repr(C)]
struct Direct {
    fd: c_int,
    /// Body bytes not yet read from the socket.
    left: u64,
    /// The socket's APR timeout, microseconds; negative: none.
    timeout_us: i64,
    c: *mut sys::conn_rec,
    r: *mut sys::request_rec,
    add_bytes_in: Option<AddBytesIn>,
    failed: bool,
}

/// The request body as the application (embedded mode) or the daemon's
/// credits (daemon mode) read it.
pub(crate) struct ClientBody {
    r: *mut sys::request_rec,
    /// Bytes of the declared Content-Length not read yet; None when the
    /// body is chunked.
    left: Option<u64>,
    /// A read went through the filters already.
    read_before: bool,
    chain: Chain,
    direct: *mut Direct,
}

#[derive(Clone, Copy, PartialEq)]
enum Chain {
    NotLooked,
    /// Only the filters in PLAIN_FILTERS: the core input filter, and
    /// whether mod_logio counts bytes.
    Plain {
        core: *mut sys::ap_filter_t,
        logio: bool,
    },
    /// Something else is in the way, or the core filter's buffer does not
    /// look as expected: the body goes through the filters.
    Filtered,
}

// SAFETY: used only by the thread serving the request (the GIL is released
// around reads, which is why it must be Send).
unsafe impl Send for ClientBody {}

impl ClientBody {
    /// After `ap_setup_client_block`.
    pub(crate) fn new(r: &Request) -> ClientBody {
        let left = if r.read_chunked() || r.remaining() < 0 {
            None
        } else {
            Some(r.remaining() as u64)
        };
        ClientBody {
            r: r.as_ptr(),
            left,
            read_before: false,
            chain: Chain::NotLooked,
            direct: std::ptr::null_mut(),
        }
    }

    /// Reads up to `buf.len()` bytes; Ok(0) at the end of the body.
    pub(crate) fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        if !self.direct.is_null() {
            // SAFETY: allocated from r->pool by switch(); the request is live.
            return unsafe { read_direct(&mut *self.direct, buf) };
        }
        // SAFETY: a live request.
        let r = unsafe { Request::from_ptr(self.r) };
        let mut ask = buf.len();
        // The first read goes through the filters: HTTP_IN sends "100
        // Continue" and checks the length against LimitRequestBody.
        if let Some(left) = self.left
            && left >= DIRECT_MIN
            && self.read_before
            && let Chain::Plain { core, logio } = self.look(r)
        {
            // SAFETY: the core filter of a live request's connection.
            match unsafe { core_buffered(core, (*self.r).connection) } {
                Some(0) => {
                    if self.switch(r, left, logio) {
                        // SAFETY: as above.
                        return unsafe { read_direct(&mut *self.direct, buf) };
                    }
                    self.chain = Chain::Filtered;
                }
                // Take what httpd holds first, without touching the socket.
                Some(held) => ask = ask.min(usize::try_from(held).unwrap_or(usize::MAX)),
                None => self.chain = Chain::Filtered,
            }
        }
        let n = r.get_client_block_uninit(&mut buf[..ask])?;
        self.read_before = true;
        if let Some(left) = &mut self.left {
            *left = left.saturating_sub(n as u64);
        }
        Ok(n)
    }

    /// Whether reads now go to the client socket.
    pub(crate) fn is_direct(&self) -> bool {
        !self.direct.is_null()
    }

    /// When [`ClientBody::is_direct`]: moves up to `want` bytes of the body
    /// from the socket into the pipe `into` (which has room for them)
    /// without copying them; Ok(0) at the end of the body.
    pub(crate) fn splice_into(
        &mut self,
        into: std::os::fd::BorrowedFd<'_>,
        want: usize,
    ) -> io::Result<usize> {
        if self.direct.is_null() {
            return Err(io::Error::other(
                "the request body is not read from the socket",
            ));
        }
        // SAFETY: allocated from r->pool by switch(); the request is live.
        let d = unsafe { &mut *self.direct };
        direct_io(d, want, |fd, n| {
            // SAFETY: plain descriptors; the kernel moves page references.
            unsafe {
                libc::splice(
                    fd,
                    std::ptr::null_mut(),
                    std::os::fd::AsRawFd::as_raw_fd(&into),
                    std::ptr::null_mut(),
                    n,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            }
        })
    }

    /// [`ClientBody::read`] into initialised memory.
    pub(crate) fn read_init(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: initialised bytes are valid MaybeUninit bytes, and read()
        // only writes initialised bytes to them.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut MaybeUninit<u8>, buf.len())
        };
        self.read(buf)
    }

    /// Looks at the request's input filters (once).
    fn look(&mut self, r: &Request) -> Chain {
        if self.chain != Chain::NotLooked {
            return self.chain;
        }
        self.chain = Chain::Filtered;
        let mut core = std::ptr::null_mut();
        let mut logio = false;
        // SAFETY: the filter list of a live request; names are static
        // strings registered with httpd.
        unsafe {
            let mut f = (*r.as_ptr()).input_filters;
            while !f.is_null() {
                let name = CStr::from_ptr((*(*f).frec).name);
                if !PLAIN_FILTERS.contains(&name) {
                    super::log::request(
                        r,
                        super::log::Level::Trace1,
                        &format!(
                            "mod_wsgi (pid={}): Reading the request body through Apache's input filters: the filter '{}' is in the way.",
                            crate::process_id(),
                            name.to_string_lossy()
                        ),
                    );
                    return self.chain;
                }
                if name == c"core_in" {
                    core = f;
                }
                logio |= name == c"log_input_output";
                f = (*f).next;
            }
        }
        if !core.is_null() {
            self.chain = Chain::Plain { core, logio };
        }
        self.chain
    }

    /// From now on the body is read from the socket. False when the socket
    /// cannot be had.
    fn switch(&mut self, r: &Request, left: u64, logio: bool) -> bool {
        let filter = FILTER.load(Ordering::Acquire);
        if filter.is_null() {
            return false;
        }
        let raw = r.as_ptr();
        // SAFETY: a live request; the connection and its socket live in the
        // connection's pool, the state in the request's.
        unsafe {
            let c = (*raw).connection;
            let sock = sys::ap_get_conn_socket(c);
            if sock.is_null() {
                return false;
            }
            let mut fd: sys::apr_os_sock_t = -1;
            sys::apr_os_sock_get(&mut fd, sock);
            let mut timeout: sys::apr_interval_time_t = -1;
            sys::apr_socket_timeout_get(sock, &mut timeout);
            if fd < 0 {
                return false;
            }
            let add_bytes_in = if logio {
                let p = sys::apr_dynamic_fn_retrieve(c"ap_logio_add_bytes_in".as_ptr());
                // SAFETY: mod_logio registers this name with this signature.
                p.map(|p| std::mem::transmute::<unsafe extern "C" fn(), AddBytesIn>(p))
            } else {
                None
            };
            let d = sys::apr_palloc((*raw).pool, std::mem::size_of::<Direct>()) as *mut Direct;
            if d.is_null() {
                return false;
            }
            d.write(Direct {
                fd,
                left,
                timeout_us: timeout,
                c,
                r: raw,
                add_bytes_in,
                failed: false,
            });
            sys::ap_add_input_filter_handle(filter, d as *mut c_void, raw, c);
            self.direct = d;
        }
        super::log::request(
            r,
            super::log::Level::Debug,
            &format!(
                "mod_wsgi (pid={}): Reading the remaining {left} bytes of the request body directly from the client socket.",
                crate::process_id()
            ),
        );
        true
    }
}

/// How many bytes the core input filter holds, read from the client but
/// not handed out yet: the lengths of the buckets before its socket bucket.
/// None unless its brigade is data buckets then that connection's socket
/// bucket (`core_net_rec` and `core_filter_ctx` are declared in
/// http_core.h).
///
/// # Safety
/// `core` is the core input filter of the live connection `c`.
unsafe fn core_buffered(core: *mut sys::ap_filter_t, c: *mut sys::conn_rec) -> Option<u64> {
    // SAFETY: the caller's; every pointer is checked before use.
    unsafe {
        let net = (*core).ctx as *mut sys::core_net_rec;
        if net.is_null() || (*net).in_ctx.is_null() || (*net).c != c {
            return None;
        }
        let b = (*(*net).in_ctx).b;
        if b.is_null() || (*b).bucket_alloc != (*c).bucket_alloc {
            return None;
        }
        let sentinel = sys::mwrs_brigade_sentinel(b);
        let mut e = sys::mwrs_brigade_first(b);
        let mut held: u64 = 0;
        while e != sentinel {
            if sys::mwrs_bucket_is_socket(e) != 0 {
                let ours = (*e).data == (*net).client_socket as *mut c_void;
                let last = sys::mwrs_bucket_next(e) == sentinel;
                return (ours && last).then_some(held);
            }
            if (*e).length == usize::MAX as sys::apr_size_t {
                return None;
            }
            held += (*e).length as u64;
            e = sys::mwrs_bucket_next(e);
        }
        None
    }
}

/// One read from the socket, waiting up to the socket's timeout for data.
fn read_direct(d: &mut Direct, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    let len = buf.len();
    direct_io(d, len, |fd, n| {
        // SAFETY: buf is valid for writes of n <= len bytes; the kernel
        // reports how many it wrote.
        unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut c_void, n, libc::MSG_DONTWAIT) }
    })
}

/// One transfer of at most `len` body bytes from the socket by `io(fd, n)`
/// (a `recv` or a `splice`, which must not block), waiting up to the
/// socket's timeout for data, and counted as httpd counts what it reads.
fn direct_io(
    d: &mut Direct,
    len: usize,
    mut io: impl FnMut(c_int, usize) -> isize,
) -> io::Result<usize> {
    if d.failed {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            READ_FAILED,
        ));
    }
    if d.left == 0 || len == 0 {
        return Ok(0);
    }
    let want = (len as u64).min(d.left) as usize;
    loop {
        let n = io(d.fd, want);
        if n > 0 {
            let n = n as usize;
            d.left -= n as u64;
            // SAFETY: the request and connection are live while the body
            // is read (reader or filter).
            unsafe {
                (*d.r).read_length += n as sys::apr_off_t;
                if let Some(add) = d.add_bytes_in {
                    add(d.c, n as sys::apr_off_t);
                }
            }
            return Ok(n);
        }
        let err = if n == 0 {
            None
        } else {
            Some(io::Error::last_os_error())
        };
        match err.as_ref().and_then(io::Error::raw_os_error) {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) if wait_readable(d.fd, d.timeout_us) => continue,
            _ => {
                // The rest of the body is lost: the connection cannot carry
                // another request.
                d.failed = true;
                // SAFETY: a live connection.
                unsafe { (*d.c).keepalive = sys::ap_conn_keepalive_e_AP_CONN_CLOSE };
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    READ_FAILED,
                ));
            }
        }
    }
}

/// Waits for the socket to become readable; false on timeout or error.
fn wait_readable(fd: c_int, timeout_us: i64) -> bool {
    let ms = if timeout_us < 0 {
        -1
    } else {
        (timeout_us / 1000).clamp(1, c_int::MAX as i64) as c_int
    };
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc > 0 {
            return true;
        }
        if rc == 0 {
            return false;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// Stands in front of HTTP_IN once the body is read from the socket: reads
/// and drops what the application left unread, then answers end of body.
unsafe extern "C" fn finished_body_filter(
    f: *mut sys::ap_filter_t,
    bb: *mut sys::apr_bucket_brigade,
    _mode: sys::ap_input_mode_t,
    _block: sys::apr_read_type_e,
    _readbytes: sys::apr_off_t,
) -> sys::apr_status_t {
    // SAFETY: httpd calls the filter with its own filter and a brigade; ctx
    // is the Direct that switch() allocated from the request's pool.
    unsafe {
        let d = (*f).ctx as *mut Direct;
        if !d.is_null() {
            let d = &mut *d;
            let mut scratch = [MaybeUninit::<u8>::uninit(); 16 * 1024];
            while d.left > 0 {
                if read_direct(d, &mut scratch).is_err() {
                    return sys::APR_EGENERAL as sys::apr_status_t;
                }
            }
        }
        let eos = sys::apr_bucket_eos_create((*bb).bucket_alloc);
        sys::mwrs_brigade_insert_tail(bb, eos);
    }
    sys::APR_SUCCESS as sys::apr_status_t
}

//! `request_rec`: one HTTP request, borrowed for the duration of a hook.

use super::{Pool, Server, Table, sys};
use std::ffi::{CStr, CString, c_void};
use std::io;
use std::os::raw::{c_char, c_int};

/// What `wsgi.input` reports when the request body cannot be read.
pub(crate) const READ_FAILED: &str =
    "Apache/mod_wsgi failed to read request body (client closed the connection or timed out)";

#[repr(transparent)]
/// Wraps the C struct in an UnsafeCell: httpd and our own setters write
/// through shared references, which is only sound through UnsafeCell.
pub(crate) struct Request(std::cell::UnsafeCell<sys::request_rec>);

fn opt_cstr<'a>(p: *const c_char) -> Option<&'a CStr> {
    if p.is_null() {
        None
    } else {
        // SAFETY: httpd strings are NUL-terminated and live in r->pool,
        // which outlives the borrow of the request they were read from.
        Some(unsafe { CStr::from_ptr(p) })
    }
}

impl Request {
    /// # Safety
    /// `r` must be a live request_rec whose pool outlives `'a`: Apache calls
    /// request hooks with such a request.
    pub(crate) unsafe fn from_ptr<'a>(r: *mut sys::request_rec) -> &'a Request {
        // SAFETY: repr(transparent); liveness is the caller's.
        unsafe { &*(r as *const Request) }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::request_rec {
        self as *const Request as *mut sys::request_rec
    }

    fn raw(&self) -> &sys::request_rec {
        // SAFETY: reads of fields httpd does not change concurrently (one
        // thread owns a request).
        unsafe { &*self.0.get() }
    }

    fn raw_mut(&self) -> *mut sys::request_rec {
        self.as_ptr()
    }

    pub(crate) fn pool(&self) -> &Pool {
        // SAFETY: r->pool lives as long as the request.
        unsafe { Pool::from_ptr(self.raw().pool) }
    }

    pub(crate) fn server(&self) -> &Server {
        // SAFETY: r->server is the (virtual) server that took the request.
        unsafe { Server::from_ptr(self.raw().server) }
    }

    pub(crate) fn uri(&self) -> &CStr {
        opt_cstr(self.raw().uri).unwrap_or(c"")
    }

    pub(crate) fn filename(&self) -> Option<&CStr> {
        opt_cstr(self.raw().filename)
    }

    pub(crate) fn handler(&self) -> Option<&CStr> {
        opt_cstr(self.raw().handler)
    }

    pub(crate) fn header_only(&self) -> bool {
        self.raw().header_only != 0
    }

    pub(crate) fn hostname(&self) -> Option<&CStr> {
        opt_cstr(self.raw().hostname)
    }

    /// r->request_time: microseconds since the epoch.
    pub(crate) fn request_time(&self) -> i64 {
        self.raw().request_time
    }

    pub(crate) fn is_regular_file(&self) -> bool {
        self.raw().finfo.filetype == sys::apr_filetype_e_APR_REG
    }

    pub(crate) fn is_directory(&self) -> bool {
        self.raw().finfo.filetype == sys::apr_filetype_e_APR_DIR
    }

    /// Modification time of r->filename as stat'ed by httpd (µs).
    pub(crate) fn file_mtime(&self) -> i64 {
        self.raw().finfo.mtime
    }

    fn table(&self, t: *mut sys::apr_table_t) -> &Table {
        // SAFETY: request tables live in r->pool.
        unsafe { Table::from_ptr(t) }
    }

    pub(crate) fn headers_in(&self) -> &Table {
        self.table(self.raw().headers_in)
    }
    pub(crate) fn headers_out(&self) -> &Table {
        self.table(self.raw().headers_out)
    }
    pub(crate) fn subprocess_env(&self) -> &Table {
        self.table(self.raw().subprocess_env)
    }
    pub(crate) fn notes(&self) -> &Table {
        self.table(self.raw().notes)
    }
    pub(crate) fn err_headers_out(&self) -> &Table {
        self.table(self.raw().err_headers_out)
    }

    /// A `Last-Modified` header as httpd sets one from a CGI script's:
    /// `apr_date_parse_http`, `ap_update_mtime` and `ap_set_last_modified`,
    /// so the header is in RFC 1123 form and never later than the request
    /// (an unparsable date counts as the epoch, as in httpd).
    pub(crate) fn set_last_modified_from(&self, value: &[u8]) {
        let v = Request::owned_cstring(value);
        // SAFETY: v is NUL-terminated; a live request on its own thread.
        unsafe {
            let t = sys::apr_date_parse_http(v.as_ptr());
            sys::ap_update_mtime(self.raw_mut(), t);
            sys::ap_set_last_modified(self.raw_mut());
        }
    }

    pub(crate) fn set_filename(&self, f: &[u8]) {
        let p = self.pool().strdup(f);
        // SAFETY: the string lives in r->pool, as httpd expects.
        unsafe { (*self.raw_mut()).filename = p as *mut c_char };
    }

    pub(crate) fn set_handler(&self, h: &'static CStr) {
        // SAFETY: a static string outlives the request.
        unsafe { (*self.raw_mut()).handler = h.as_ptr() };
    }

    /// The per-directory configuration of this module for this request.
    pub(crate) fn dir_config(&self) -> *mut c_void {
        // SAFETY: per_dir_config is the merged vector for this request.
        unsafe { sys::ap_get_module_config(self.raw().per_dir_config, crate::module::module_ptr()) }
    }

    /// `ap_allow_options(r) & OPT_EXECCGI`
    pub(crate) fn exec_cgi_allowed(&self) -> bool {
        // SAFETY: a live request.
        (unsafe { sys::ap_allow_options(self.raw_mut()) } as u32 & sys::OPT_EXECCGI) != 0
    }

    /// `r->log_id`, generating it with `ap_run_generate_log_id` when no
    /// module (mod_unique_id) has done so, so that `%L` in ErrorLogFormat
    /// and mod_wsgi.request_id agree.
    pub(crate) fn log_id(&self) -> &CStr {
        // SAFETY: the id is allocated in r->pool by the hook.
        unsafe {
            if self.raw().log_id.is_null() {
                let mut id: *const c_char = std::ptr::null();
                sys::ap_run_generate_log_id(self.raw().connection, self.raw_mut(), &mut id);
                if id.is_null() {
                    let fallback =
                        format!("{:x}{:x}", self.raw().request_time, self.raw_mut() as usize);
                    id = self.pool().strdup(fallback.as_bytes());
                }
                (*self.raw_mut()).log_id = id;
            }
            CStr::from_ptr(self.raw().log_id)
        }
    }

    /// `ap_add_common_vars` + `ap_add_cgi_vars`: fills subprocess_env with
    /// the CGI variables.
    pub(crate) fn add_cgi_vars(&self) {
        // SAFETY: a live request in its handler phase.
        unsafe {
            sys::ap_add_common_vars(self.raw_mut());
            sys::ap_add_cgi_vars(self.raw_mut());
        }
    }

    pub(crate) fn set_status(&self, status: c_int, line: &[u8]) {
        let p = self.pool().strdup(line);
        // SAFETY: status_line lives in r->pool.
        unsafe {
            (*self.raw_mut()).status = status;
            (*self.raw_mut()).status_line = p;
        }
    }

    /// `ap_set_content_type`: httpd keeps the pointer, so it is copied into
    /// r->pool first.
    pub(crate) fn set_content_type(&self, ct: &[u8]) {
        let p = self.pool().strdup(ct);
        // SAFETY: p lives in r->pool.
        unsafe { sys::ap_set_content_type(self.raw_mut(), p) };
    }

    /// `ap_set_content_length`
    pub(crate) fn set_content_length(&self, n: i64) {
        // SAFETY: a live request.
        unsafe { sys::ap_set_content_length(self.raw_mut(), n) };
    }

    /// `ap_setup_client_block`: returns an HTTP status when the body cannot
    /// be read under `policy` (411 for chunked with REQUEST_CHUNKED_ERROR).
    pub(crate) fn setup_client_block(&self, dechunk: bool) -> Result<(), c_int> {
        let policy = if dechunk {
            sys::REQUEST_CHUNKED_DECHUNK
        } else {
            sys::REQUEST_CHUNKED_ERROR
        };
        // SAFETY: a live request.
        let rc = unsafe { sys::ap_setup_client_block(self.raw_mut(), policy as c_int) };
        if rc == super::OK { Ok(()) } else { Err(rc) }
    }

    /// `ap_get_client_block`: Ok(0) at the end of the body.
    pub(crate) fn get_client_block(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid for len bytes.
        unsafe { self.client_block(buf.as_mut_ptr() as *mut c_char, buf.len()) }
    }

    /// `ap_get_client_block` into memory that may be uninitialised: httpd
    /// only copies into it, and reports how much it wrote.
    pub(crate) fn get_client_block_uninit(
        &self,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> io::Result<usize> {
        // SAFETY: buf is valid for writes of len bytes; httpd never reads it.
        unsafe { self.client_block(buf.as_mut_ptr() as *mut c_char, buf.len()) }
    }

    /// # Safety
    /// `buf` is valid for writes of `len` bytes.
    unsafe fn client_block(&self, buf: *mut c_char, len: usize) -> io::Result<usize> {
        // SAFETY: the caller's; httpd writes at most len bytes.
        let n = unsafe { sys::ap_get_client_block(self.raw_mut(), buf, len) };
        if n < 0 {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                READ_FAILED,
            ))
        } else {
            Ok((n as usize).min(len))
        }
    }

    /// `ap_rwrite`
    pub(crate) fn write(&self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        // SAFETY: data is valid for len bytes; httpd copies what it keeps.
        let n = unsafe {
            sys::ap_rwrite(
                data.as_ptr() as *const c_void,
                data.len() as c_int,
                self.raw_mut(),
            )
        };
        if n < 0 {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "failed to write data",
            ))
        } else {
            Ok(())
        }
    }

    /// `ap_rflush`
    pub(crate) fn flush(&self) -> io::Result<()> {
        // SAFETY: a live request.
        let rc = unsafe { sys::ap_rflush(self.raw_mut()) };
        if rc < 0 {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "failed to flush data",
            ))
        } else {
            Ok(())
        }
    }

    /// Sends `len` bytes of `fd` from `offset` as a file bucket followed by a
    /// flush, so httpd can use sendfile (EnableSendfile) and the descriptor
    /// is no longer needed when this returns.
    pub(crate) fn send_file(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        offset: i64,
        len: i64,
        sendfile: bool,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: all objects are allocated from r->pool and the connection's
        // bucket allocator; the apr_file_t wraps fd without owning it
        // (APR_FOPEN_NOCLEANUP) and the brigade is flushed before return.
        unsafe {
            let pool = self.raw().pool;
            let mut file: *mut sys::apr_file_t = std::ptr::null_mut();
            let mut raw_fd: c_int = fd.as_raw_fd();
            let rc = sys::apr_os_file_put(
                &mut file,
                &mut raw_fd,
                (sys::APR_FOPEN_READ
                    | sys::APR_FOPEN_NOCLEANUP
                    | if sendfile {
                        sys::APR_FOPEN_SENDFILE_ENABLED
                    } else {
                        0
                    }) as i32,
                pool,
            );
            if rc != 0 {
                return Err(io::Error::other("apr_os_file_put failed"));
            }
            let ba = (*self.raw().connection).bucket_alloc;
            let bb = sys::apr_brigade_create(pool, ba);
            sys::apr_brigade_insert_file(bb, file, offset, len, pool);
            sys::mwrs_brigade_insert_tail(bb, sys::apr_bucket_flush_create(ba));
            let rc = sys::ap_pass_brigade(self.raw().output_filters, bb);
            sys::apr_brigade_cleanup(bb as *mut c_void);
            if rc != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "failed to write file data",
                ));
            }
        }
        Ok(())
    }

    /// `apr_socket_timeout_set` on the client connection's socket
    /// (`ap_get_conn_socket`): how long a write to the client may block
    /// (None: no limit). Returns the setting it replaced, to put back
    /// afterwards, or None when the connection has no socket.
    pub(crate) fn set_client_timeout(
        &self,
        timeout: Option<std::time::Duration>,
    ) -> Option<Option<std::time::Duration>> {
        // SAFETY: a live connection; its socket (NULL for connections that
        // have none, then nothing is done) lives as long as it does.
        unsafe {
            let sock = sys::ap_get_conn_socket(self.raw().connection);
            if sock.is_null() {
                return None;
            }
            let mut old: sys::apr_interval_time_t = -1;
            sys::apr_socket_timeout_get(sock, &mut old);
            let new = match timeout {
                Some(t) => t.as_micros().min(i64::MAX as u128) as sys::apr_interval_time_t,
                None => -1,
            };
            sys::apr_socket_timeout_set(sock, new);
            Some((old >= 0).then(|| std::time::Duration::from_micros(old as u64)))
        }
    }

    /// A probe for "httpd closed this connection's socket under us": what
    /// the event and worker MPMs do to every busy connection when a child
    /// is stopped ungracefully (SIGTERM, `-k stop`, `-k restart`). A thread
    /// blocked on something else (a daemon's answer) calls it now and then
    /// so the child can exit at once instead of being SIGKILLed later.
    pub(crate) fn socket_closed_probe(&self) -> ConnSocketProbe {
        // SAFETY: a live connection.
        ConnSocketProbe(unsafe { sys::ap_get_conn_socket(self.raw().connection) })
    }

    /// Mark that no more output will follow and the connection should not be
    /// kept alive (used when a response is cut short after headers went out).
    pub(crate) fn abort_connection(&self) {
        // SAFETY: a live connection.
        unsafe { (*self.raw().connection).keepalive = sys::ap_conn_keepalive_e_AP_CONN_CLOSE };
    }

    /// Clears `r->expecting_100` once the response head is set, as mod_wsgi
    /// does: httpd would otherwise neither keep the connection alive nor
    /// chunk the response of a request that sent `Expect: 100-continue`
    /// (and would write a "100 Continue" into the body if the application
    /// read its input only after starting the response).
    pub(crate) fn clear_expecting_100(&self) {
        // SAFETY: a live request on its own thread.
        unsafe { (*self.raw_mut()).expecting_100 = 0 };
    }

    /// Marks the end of the response as already sent (`r->eos_sent`) when
    /// it is chunked, so httpd never writes the last chunk: a response cut
    /// short by an error then reads as incomplete to the client, as with
    /// mod_wsgi.
    pub(crate) fn withhold_last_chunk(&self) {
        // SAFETY: a live request; httpd reads the flag when it finalises.
        unsafe {
            if self.raw().chunked != 0 {
                (*self.raw_mut()).eos_sent = 1;
            }
        }
    }

    pub(crate) fn owned_cstring(s: &[u8]) -> CString {
        CString::new(s.iter().copied().filter(|b| *b != 0).collect::<Vec<u8>>()).unwrap_or_default()
    }
}

impl Request {
    /// The local port the connection arrived on.
    pub(crate) fn local_port(&self) -> u16 {
        // SAFETY: conn->local_addr is set for every connection.
        unsafe {
            let a = (*self.raw().connection).local_addr;
            if a.is_null() { 0 } else { (*a).port }
        }
    }

    /// `c->local_addr->hostname`: the host of the `Listen` directive the
    /// connection arrived on ("" for a wildcard `Listen 80`), mod_wsgi's
    /// `mod_wsgi.listener_host`.
    pub(crate) fn listener_host(&self) -> String {
        // SAFETY: conn->local_addr is set for every connection; its hostname
        // is NULL or a string in the listener's pool.
        unsafe {
            let a = (*self.raw().connection).local_addr;
            if a.is_null() || (*a).hostname.is_null() {
                String::new()
            } else {
                CStr::from_ptr((*a).hostname).to_string_lossy().into_owned()
            }
        }
    }

    /// `ap_get_server_port(r)`: the port the request names (its Host
    /// header, else the server's, else the scheme's default), as in
    /// `SERVER_PORT`.
    pub(crate) fn server_port(&self) -> u16 {
        // SAFETY: a live request.
        unsafe { sys::ap_get_server_port(self.as_ptr()) }
    }
}

impl Request {
    /// Whether an output filter that works on content (below the protocol
    /// level: mod_deflate, mod_include, ...) is on this request, i.e. one that
    /// may need to see the body a HEAD request would otherwise not produce.
    pub(crate) fn has_content_filters(&self) -> bool {
        let mut f = self.raw().output_filters;
        // SAFETY: the filter chain belongs to the live request.
        unsafe {
            while !f.is_null() {
                let rec = (*f).frec;
                if !rec.is_null() && (*rec).ftype < sys::ap_filter_type_AP_FTYPE_PROTOCOL {
                    return true;
                }
                f = (*f).next;
            }
        }
        false
    }
}

// ---- daemon mode (branch daemon): the request body's shape, for the
// Apache child side of daemon mode (daemon/client.rs).
impl Request {
    /// `ap_should_client_block`: sends `100 Continue` when the client asked.
    pub(crate) fn should_client_block(&self) -> bool {
        // SAFETY: a live request after setup_client_block.
        unsafe { sys::ap_should_client_block(self.as_ptr()) != 0 }
    }

    /// Declared Content-Length of the request body (after
    /// setup_client_block), or -1 when chunked.
    pub(crate) fn remaining(&self) -> i64 {
        // SAFETY: reads one field of a live request.
        unsafe { (*self.as_ptr()).remaining }
    }

    /// Whether the body uses chunked transfer encoding.
    pub(crate) fn read_chunked(&self) -> bool {
        // SAFETY: reads one field of a live request.
        unsafe { (*self.as_ptr()).read_chunked != 0 }
    }
}
// ---- end daemon mode

/// See [`Request::socket_closed_probe`]. Holds the connection's
/// `apr_socket_t`, which lives in the connection's pool: only the thread
/// serving the request may use it, while the request is live.
pub(crate) struct ConnSocketProbe(*mut sys::apr_socket_t);

impl ConnSocketProbe {
    /// Whether the socket has been closed (APR sets its descriptor to -1).
    pub(crate) fn closed(&self) -> bool {
        if self.0.is_null() {
            return false;
        }
        let mut fd: sys::apr_os_sock_t = 0;
        // SAFETY: the socket struct outlives the request (connection pool);
        // another thread may close it concurrently, which only changes the
        // descriptor value we read.
        unsafe { sys::apr_os_sock_get(&mut fd, self.0) };
        fd < 0
    }
}

//! `start_response`, `write()`, `wsgi.file_wrapper` and the loop that
//! drives an application's response to the [`ResponseSink`].
//!
//! Headers are validated when the application calls `start_response` (so
//! the exception points at its code) and sent with the first non-empty
//! body block, as PEP 3333 says. Output past a declared Content-Length is
//! dropped. The iterable's `close()` is always called.
#![forbid(unsafe_code)]

use super::{LogLevel, RequestLog, ResponseHead, ResponseSink, validate};
use pyo3::exceptions::{PyIOError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use std::sync::{Arc, Mutex};

pub struct State {
    sink: Option<Box<dyn ResponseSink>>,
    pending: Option<ResponseHead>,
    headers_sent: bool,
    content_length: Option<u64>,
    written: u64,
    header_only: bool,
    /// Set when writing to the client failed: the rest is discarded.
    client_gone: bool,
    /// Body bytes went to the sink without a flush after them.
    unflushed: bool,
}

pub type Shared = Arc<Mutex<State>>;

impl State {
    pub fn new(sink: Box<dyn ResponseSink>, header_only: bool) -> Shared {
        Arc::new(Mutex::new(State {
            sink: Some(sink),
            pending: None,
            headers_sent: false,
            content_length: None,
            written: 0,
            header_only,
            client_gone: false,
            unflushed: false,
        }))
    }
}

fn lock<'a>(py: Python<'_>, s: &'a Shared) -> std::sync::MutexGuard<'a, State> {
    s.lock_py_attached(py).unwrap_or_else(|e| e.into_inner())
}

/// Sends the pending head if it has not gone out yet.
fn ensure_started(_py: Python<'_>, st: &mut State) -> PyResult<()> {
    if st.headers_sent {
        return Ok(());
    }
    let Some(head) = st.pending.as_ref() else {
        return Err(PyRuntimeError::new_err("response has not been started"));
    };
    let sink = st
        .sink
        .as_mut()
        .ok_or_else(|| PyIOError::new_err("request has completed"))?;
    st.headers_sent = true;
    // With the GIL held: `start` only records the head (see ResponseSink),
    // and each release is a hand-off to another thread under load.
    sink.start(head)
        .map_err(|e| PyIOError::new_err(e.to_string()))
}

/// How much unflushed body may be written with the GIL held: well under
/// what either sink buffers before it writes to a socket (httpd's
/// `ap_rwrite` buffer holds 8,000 bytes; a daemon's frame buffer far more).
const HELD_WRITE_MAX: u64 = 4096;

/// Writes one block of body, GIL released for the write itself unless it
/// only lands in a buffer. With
/// `flush` the block goes to the client now: PEP 3333 forbids holding back
/// a block an iterator yielded while the application produces the next.
fn write_block(py: Python<'_>, shared: &Shared, data: &[u8], flush: bool) -> PyResult<()> {
    let mut st = lock(py, shared);
    if data.is_empty() {
        return Ok(());
    }
    ensure_started(py, &mut st)?;
    let mut n = data.len() as u64;
    if let Some(cl) = st.content_length {
        n = n.min(cl.saturating_sub(st.written));
    }
    st.written += n;
    if n == 0 || st.header_only || st.client_gone {
        return Ok(());
    }
    let chunk = &data[..n as usize];
    // A small start of a body that is not flushed stays in memory (Apache's
    // output buffer, the daemon's frame buffer): written with the GIL held,
    // as a release costs a hand-off to another thread under load. Anything
    // that may reach a socket is written with the GIL released.
    let buffered = !flush && st.written <= HELD_WRITE_MAX;
    let sink = st
        .sink
        .as_mut()
        .ok_or_else(|| PyIOError::new_err("request has completed"))?;
    let r = if buffered {
        sink.write(chunk)
    } else {
        py.detach(|| {
            if flush {
                sink.write_flush(chunk)
            } else {
                sink.write(chunk)
            }
        })
    };
    st.unflushed = !flush;
    if let Err(e) = r {
        st.client_gone = true;
        return Err(PyIOError::new_err(e.to_string()));
    }
    Ok(())
}

#[pyclass(module = "mod_wsgi", name = "StartResponse", frozen)]
pub struct StartResponse {
    state: Shared,
}

#[pyclass(module = "mod_wsgi", name = "Write", frozen)]
pub struct Write {
    state: Shared,
}

#[pymethods]
impl Write {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let b = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "byte string value expected, value of type {} found",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        // write() is for legacy streaming code: push each block out now.
        write_block(py, &self.state, b.as_bytes(), true)
    }
}

fn type_name(o: &Bound<'_, PyAny>) -> String {
    o.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

fn to_str(o: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    match o.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "expected unicode object for {what}, value of type {} found",
            type_name(o)
        ))),
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, response_headers, exc_info=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        response_headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Write> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let st = lock(py, &self.state);
            if let Some(exc) = exc_info {
                if st.headers_sent {
                    // PEP 3333: too late to change the response; re-raise.
                    drop(st);
                    let t = exc.cast::<PyTuple>()?;
                    let value = t.get_item(1)?;
                    let tb = t.get_item(2)?;
                    let err = PyErr::from_value(value);
                    if !tb.is_none() {
                        err.set_traceback(py, Some(tb.cast_into()?));
                    }
                    return Err(err);
                }
            } else if st.headers_sent {
                // As mod_wsgi: until the head goes out, a second call
                // replaces the first.
                return Err(PyRuntimeError::new_err("headers have already been sent"));
            }
        }
        let status = to_str(status, "status")?;
        let code = validate::status_code(&status).map_err(PyValueError::new_err)?;
        let list = response_headers.cast::<PyList>().map_err(|_| {
            PyTypeError::new_err(format!(
                "response headers must be a list, not {}",
                type_name(response_headers)
            ))
        })?;
        let mut headers = Vec::with_capacity(list.len());
        let mut content_length = None;
        for item in list.iter() {
            let t = item.cast::<PyTuple>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "list of tuple values expected, value of type {} found",
                    type_name(&item)
                ))
            })?;
            if t.len() != 2 {
                return Err(PyValueError::new_err(format!(
                    "tuple of length 2 expected, length is {}",
                    t.len()
                )));
            }
            let name = to_str(&t.get_item(0)?, "header name")?;
            let value = to_str(&t.get_item(1)?, "header value")?;
            validate::header(&name, &value).map_err(PyValueError::new_err)?;
            if name.eq_ignore_ascii_case("content-length") {
                let v = value.trim();
                let n: u64 = v.parse().map_err(|_| {
                    PyValueError::new_err(format!(
                        "invalid value for Content-Length header: '{value}'"
                    ))
                })?;
                content_length = Some(n);
            }
            headers.push((name, value));
        }
        let mut st = lock(py, &self.state);
        st.pending = Some(ResponseHead {
            status: code,
            status_line: status,
            headers,
        });
        st.content_length = content_length;
        Ok(Write {
            state: self.state.clone(),
        })
    }
}

/// `wsgi.file_wrapper`: iterates a file in blocks; when it is returned
/// as the response and wraps a real file, the file is sent by Apache
/// itself (sendfile where enabled) instead of being read into Python.
#[pyclass(module = "mod_wsgi", name = "FileWrapper", frozen)]
pub struct FileWrapper {
    #[pyo3(get)]
    filelike: Py<PyAny>,
    #[pyo3(get)]
    blksize: isize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: isize) -> Self {
        FileWrapper { filelike, blksize }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        if data.len().unwrap_or(0) == 0 {
            Ok(None)
        } else {
            Ok(Some(data))
        }
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}

/// How a request ended, for the caller to turn into an HTTP status.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The response went out (possibly cut short by the client leaving).
    Complete,
    /// The application failed before any header was sent: answer 500.
    FailedBeforeHeaders,
    /// The application failed after the headers went out: the response is
    /// truncated and the connection must not be reused.
    FailedAfterHeaders,
}

/// Logs a Python exception the way mod_wsgi does: a first line naming the
/// script, then the traceback, one log record per line.
pub fn log_exception(py: Python<'_>, log: &dyn RequestLog, err: &PyErr, first_line: &str) {
    let mut lines = vec![first_line.to_string()];
    let formatted = (|| -> PyResult<Vec<String>> {
        let tb = py.import("traceback")?;
        let list = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        let mut out = Vec::new();
        for chunk in list.try_iter()? {
            let s: String = chunk?.extract()?;
            out.extend(s.lines().map(str::to_string));
        }
        Ok(out)
    })();
    match formatted {
        Ok(l) => lines.extend(l),
        Err(_) => lines.push(format!("{}", err)),
    }
    py.detach(|| {
        for l in &lines {
            log.log(LogLevel::Error, l);
        }
    });
}

/// Runs `app(environ, start_response)` and sends what it returns.
pub fn run(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    environ: &Bound<'_, PyAny>,
    state: &Shared,
    log: &dyn RequestLog,
    script: &str,
    request_id: &str,
) -> Outcome {
    let sr = match Bound::new(
        py,
        StartResponse {
            state: state.clone(),
        },
    ) {
        Ok(s) => s,
        Err(_) => return Outcome::FailedBeforeHeaders,
    };
    let pid = crate::process_id();
    let fail = |py: Python<'_>, e: &PyErr| {
        log_exception(
            py,
            log,
            e,
            &format!(
                "mod_wsgi (pid={pid}, request='{request_id}'): Exception occurred processing WSGI script '{script}'."
            ),
        );
        if lock(py, state).headers_sent {
            Outcome::FailedAfterHeaders
        } else {
            Outcome::FailedBeforeHeaders
        }
    };
    let result = match app.call1((environ, sr)) {
        Ok(r) => r,
        Err(e) => return fail(py, &e),
    };
    let outcome = match pump(py, &result, state) {
        // An empty body still sends the head, before close() (as mod_wsgi).
        Ok(()) => {
            let mut st = lock(py, state);
            match ensure_started(py, &mut st) {
                Ok(()) => {
                    complete_body(py, &mut st);
                    Outcome::Complete
                }
                Err(e) => {
                    drop(st);
                    fail(py, &e)
                }
            }
        }
        Err(e) => {
            if lock(py, state).client_gone {
                // The client went away: mod_wsgi logs this at debug-ish level
                // as an IOError; it is not the application's fault.
                log.log(
                    LogLevel::Info,
                    &format!("mod_wsgi (pid={pid}): Failed to write response data: {e}."),
                );
                Outcome::Complete
            } else {
                fail(py, &e)
            }
        }
    };
    // close() is always called, whatever happened above. What it raises is
    // logged; the response has gone out complete or not already.
    if let Ok(true) = result.hasattr("close")
        && let Err(e) = result.call_method0("close")
    {
        fail(py, &e);
    }
    if outcome == Outcome::Complete {
        let st = lock(py, state);
        if let Some(cl) = st.content_length
            && st.written < cl
            && !st.header_only
            && !st.client_gone
        {
            log.log(
                LogLevel::Debug,
                &format!("mod_wsgi (pid={pid}): Response content shorter than Content-Length ({} < {cl}).", st.written),
            );
        }
    }
    outcome
}

/// One request, whichever mode: builds `wsgi.input`, `wsgi.errors` and the
/// environ, runs the application into `sink`, and cuts every object the
/// application may keep off from the request before returning.
#[allow(clippy::too_many_arguments)]
pub fn serve(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    vars: &[(&[u8], &[u8])],
    extras: &super::environ::Extras<'_>,
    body: Box<dyn super::BodySource>,
    sink: Box<dyn ResponseSink>,
    header_only: bool,
    log: Arc<dyn RequestLog>,
    script: &str,
) -> Outcome {
    use super::{environ, errors::Log, input::Input};
    let made = (|| -> PyResult<_> {
        let input = Bound::new(py, Input::new(body))?;
        let errors = Bound::new(py, Log::new(log.clone(), LogLevel::Error, "<wsgi.errors>"))?;
        let fw = py.get_type::<FileWrapper>().into_any();
        let env = environ::build(
            py,
            vars,
            extras,
            input.clone().into_any(),
            super::errors::text_wrapper(&errors)?,
            fw,
        )?;
        Ok((input, errors, env))
    })();
    let (input, errors, env) = match made {
        Ok(v) => v,
        Err(e) => {
            let pid = crate::process_id();
            log_exception(
                py,
                &*log,
                &e,
                &format!("mod_wsgi (pid={pid}): Failed to build WSGI environment for '{script}'."),
            );
            return Outcome::FailedBeforeHeaders;
        }
    };
    let state = State::new(sink, header_only);
    let outcome = run(
        py,
        app,
        env.as_any(),
        &state,
        &*log,
        script,
        extras.request_id,
    );
    finish(py, &state);
    input.get().detach_source(py);
    errors.get().flush_pending(py);
    outcome
}

/// Tells the sink the body is complete when blocks are held back unflushed,
/// before `close()` and the clean-up that follow (see
/// [`ResponseSink::body_complete`]). A failure means the client went away;
/// there is nothing left to lose.
fn complete_body(py: Python<'_>, st: &mut State) {
    if !std::mem::take(&mut st.unflushed) || st.client_gone {
        return;
    }
    if let Some(sink) = st.sink.as_mut()
        && py.detach(|| sink.body_complete()).is_err()
    {
        st.client_gone = true;
    }
}

/// Finishes with the sink: no object the application kept can reach the
/// request after this.
pub fn finish(py: Python<'_>, state: &Shared) -> Option<Box<dyn ResponseSink>> {
    lock(py, state).sink.take()
}

fn pump(py: Python<'_>, result: &Bound<'_, PyAny>, state: &Shared) -> PyResult<()> {
    // A list or tuple is the common case: no iterator protocol needed.
    // Each block is flushed as mod_wsgi does, so a response without a
    // Content-Length goes out chunked (HTTP/1.1) exactly as mod_wsgi sends
    // it, and one shorter than its Content-Length keeps that header, not a
    // length Apache computed. When the blocks fill the application's
    // Content-Length, flushing changes nothing the client sees: they (usually
    // one) go out with the end of the response, in one write, and in daemon
    // mode in one frame write instead of two.
    if let Ok(list) = result.cast::<PyList>() {
        let flush = must_flush_blocks(py, state, list.iter());
        for item in list.iter() {
            write_item(py, &item, state, flush)?;
        }
        return Ok(());
    }
    if let Ok(t) = result.cast_exact::<PyTuple>() {
        let flush = must_flush_blocks(py, state, t.iter());
        for item in t.iter() {
            write_item(py, &item, state, flush)?;
        }
        return Ok(());
    }
    if let Ok(fw) = result.cast::<FileWrapper>()
        && send_wrapped_file(py, fw.get(), state)?
    {
        return Ok(());
    }
    // An iterator may take its time producing the next block.
    for item in result.try_iter()? {
        write_item(py, &item?, state, true)?;
    }
    Ok(())
}

/// Whether the blocks of a list or tuple response must each be flushed to
/// look as mod_wsgi's do: unless they are all bytes and fill the
/// application's Content-Length.
fn must_flush_blocks<'py>(
    py: Python<'py>,
    state: &Shared,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
) -> bool {
    let Some(cl) = lock(py, state).content_length else {
        return true;
    };
    let mut total = 0u64;
    for item in items {
        match item.cast::<PyBytes>() {
            Ok(b) => total += b.as_bytes().len() as u64,
            Err(_) => return true,
        }
    }
    total < cl
}

fn write_item(
    py: Python<'_>,
    item: &Bound<'_, PyAny>,
    state: &Shared,
    flush: bool,
) -> PyResult<()> {
    match item.cast::<PyBytes>() {
        Ok(b) => write_block(py, state, b.as_bytes(), flush),
        Err(_) => Err(PyTypeError::new_err(format!(
            "sequence of byte string values expected, value of type {} found",
            type_name(item)
        ))),
    }
}

/// The sendfile path: only for a real file (has fileno() and is a regular
/// file) and, as with mod_wsgi, only when write() sent nothing before.
/// Without a Content-Length from the application, the rest of the file is
/// announced as one. Returns false to fall back to iterating.
fn send_wrapped_file(py: Python<'_>, fw: &FileWrapper, state: &Shared) -> PyResult<bool> {
    if lock(py, state).written > 0 {
        return Ok(false);
    }
    let f = fw.filelike.bind(py);
    let Ok(fd) = f.call_method0("fileno").and_then(|v| v.extract::<i32>()) else {
        return Ok(false);
    };
    let os = py.import("os")?;
    let stat = os.call_method1("fstat", (fd,))?;
    let mode: u32 = stat.getattr("st_mode")?.extract()?;
    if mode & 0o170000 != 0o100000 {
        return Ok(false);
    }
    let size: u64 = stat.getattr("st_size")?.extract()?;
    // Respect the file position the application left (it may have seeked).
    let offset: u64 = f
        .call_method0("tell")
        .and_then(|v| v.extract::<u64>())
        .unwrap_or_default();
    let mut st = lock(py, state);
    if st.content_length.is_none()
        && !st.headers_sent
        && let Some(head) = st.pending.as_mut()
    {
        let len = size.saturating_sub(offset);
        head.headers
            .push(("Content-Length".to_string(), len.to_string()));
        st.content_length = Some(len);
    }
    ensure_started(py, &mut st)?;
    let mut len = size.saturating_sub(offset);
    if let Some(cl) = st.content_length {
        len = len.min(cl.saturating_sub(st.written));
    }
    st.written += len;
    if len == 0 || st.header_only {
        return Ok(true);
    }
    let sink = st
        .sink
        .as_mut()
        .ok_or_else(|| PyIOError::new_err("request has completed"))?;
    let r = py.detach(|| sink.send_file(fd, offset, len));
    if let Err(e) = r {
        st.client_gone = true;
        return Err(PyIOError::new_err(e.to_string()));
    }
    Ok(true)
}

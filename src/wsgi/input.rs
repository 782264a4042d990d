//! `wsgi.input`: the request body as a file-like object.
//!
//! Reads go to the [`BodySource`] with the GIL released, through one
//! bounded buffer: a huge upload is never held in memory unless the
//! application itself asks for all of it with `read()`.
#![forbid(unsafe_code)]

use super::BodySource;
use crate::python::bytes::NewBytes;
use pyo3::exceptions::PyIOError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyBytes;
use std::sync::Mutex;

const CHUNK: usize = 64 * 1024;

/// `read(n)` below this size is served from the staging buffer.
const SMALL_READ: usize = 8 * 1024;

struct Inner {
    source: Option<Box<dyn BodySource>>,
    /// Staging for `readline` and for what a `read(n)` left over:
    /// buffered bytes are buf[start..end]. Zeroed once when it grows, never
    /// per read.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

fn read_error(e: std::io::Error) -> PyErr {
    PyIOError::new_err(format!("request data read error: {e}"))
}

impl Inner {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The first `n` buffered bytes as a new `bytes` (one copy).
    fn take<'py>(&mut self, py: Python<'py>, n: usize) -> Bound<'py, PyBytes> {
        let n = n.min(self.end - self.start);
        let out = PyBytes::new(py, &self.buf[self.start..self.start + n]);
        self.consume(n);
        out
    }

    fn source(&mut self) -> PyResult<&mut Box<dyn BodySource>> {
        self.source
            .as_mut()
            .ok_or_else(|| PyIOError::new_err("request data read error: request has completed"))
    }

    /// Reads more from the source into the staging buffer, GIL released.
    /// Returns false at the end of the body.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        if self.eof {
            return Ok(false);
        }
        self.source()?;
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let grow = self.buf.len().max(CHUNK);
                self.buf.resize(self.buf.len() + grow, 0);
            }
        }
        let Inner {
            source, buf, end, ..
        } = self;
        let source = source.as_mut().expect("checked above");
        let tail = &mut buf[*end..];
        match py.detach(|| source.read(tail)) {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(e) => Err(read_error(e)),
        }
    }

    /// `read(limit)`: up to `limit` bytes (all with `usize::MAX`) read from
    /// the source straight into the `bytes` object returned, after what is
    /// buffered. No zero-fill and no staging copy for the body's bytes.
    fn read_into_bytes<'py>(
        &mut self,
        py: Python<'py>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let have = self.end - self.start;
        if have >= limit {
            return Ok(self.take(py, limit));
        }
        if self.eof {
            return Ok(self.take(py, have));
        }
        if limit < SMALL_READ {
            // Small reads go through the staging buffer, a chunk at a time,
            // rather than one source call (and, in daemon mode, one body
            // frame piece) per read.
            while self.end - self.start < limit {
                if !self.fill(py)? {
                    break;
                }
            }
            let n = limit.min(self.end - self.start);
            return Ok(self.take(py, n));
        }
        self.source()?;
        let first = limit.min(have + CHUNK);
        let mut out = NewBytes::with_capacity(py, first)?;
        out.extend_from_slice(self.buffered());
        self.consume(have);
        while out.len() < limit {
            if out.spare_len() == 0 {
                let cap = limit.min(out.len().saturating_mul(2));
                out.reserve_total(py, cap)?;
            }
            let source = self.source.as_mut().expect("checked above");
            let r = py.detach(|| out.fill(|tail| source.read_uninit(tail)));
            match r {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    // Keep what was read for the next call, as a file would.
                    let got = out.finish(py)?;
                    self.unread(got.as_bytes());
                    return Err(read_error(e));
                }
            }
        }
        out.finish(py)
    }

    /// Puts bytes back in front of the staging buffer (after a failed read).
    fn unread(&mut self, data: &[u8]) {
        let mut v = Vec::with_capacity(data.len() + self.end - self.start);
        v.extend_from_slice(data);
        v.extend_from_slice(self.buffered());
        self.end = v.len();
        self.start = 0;
        self.buf = v;
    }
}

#[pyclass(module = "mod_wsgi", name = "Input", frozen)]
pub struct Input {
    inner: Mutex<Inner>,
}

impl Input {
    pub fn new(source: Box<dyn BodySource>) -> Input {
        Input {
            inner: Mutex::new(Inner {
                source: Some(source),
                buf: Vec::new(),
                start: 0,
                end: 0,
                eof: false,
            }),
        }
    }

    /// Cuts the object off from the request once the response is done, so
    /// an application that kept it cannot reach a finished request.
    pub fn detach_source(&self, py: Python<'_>) {
        let mut g = self
            .inner
            .lock_py_attached(py)
            .unwrap_or_else(|e| e.into_inner());
        g.source = None;
        g.eof = true;
    }

    fn read_impl<'py>(
        &self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut g = self
            .inner
            .lock_py_attached(py)
            .unwrap_or_else(|e| e.into_inner());
        let limit = match size {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        g.read_into_bytes(py, limit)
    }

    fn readline_impl<'py>(
        &self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let limit = match size {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        let mut g = self
            .inner
            .lock_py_attached(py)
            .unwrap_or_else(|e| e.into_inner());
        let mut scanned = 0;
        loop {
            let b = g.buffered();
            if let Some(i) = b[scanned..].iter().position(|c| *c == b'\n') {
                let end = (scanned + i + 1).min(limit);
                return Ok(g.take(py, end));
            }
            scanned = b.len();
            if scanned >= limit {
                return Ok(g.take(py, limit));
            }
            if !g.fill(py)? {
                let n = g.buffered().len();
                return Ok(g.take(py, n));
            }
        }
    }
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.read_impl(py, size)
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.readline_impl(py, size)
    }

    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = match hint {
            Some(h) if h > 0 => h as usize,
            _ => usize::MAX,
        };
        let mut out = Vec::new();
        let mut total = 0;
        loop {
            let line = self.readline_impl(py, None)?;
            if line.as_bytes().is_empty() {
                break;
            }
            total += line.as_bytes().len();
            out.push(line);
            if total >= hint {
                break;
            }
        }
        Ok(out)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.readline_impl(py, None)?;
        if line.as_bytes().is_empty() {
            Ok(None)
        } else {
            Ok(Some(line))
        }
    }

    fn close(&self) {}
}

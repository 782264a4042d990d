//! `wsgi.input`: the request body as a file-like object.
//!
//! Reads go to the [`BodySource`] with the GIL released, through one
//! bounded buffer: a huge upload is never held in memory unless the
//! application itself asks for all of it with `read()`.
#![forbid(unsafe_code)]

use super::BodySource;
use pyo3::exceptions::PyIOError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyBytes;
use std::sync::Mutex;

const CHUNK: usize = 64 * 1024;

struct Inner {
    source: Option<Box<dyn BodySource>>,
    /// Bytes read from the source and not yet handed out: buf[pos..].
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Inner {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.buf.len() - self.pos);
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        out
    }

    /// Reads more from the source into the buffer, GIL released. Returns
    /// false at the end of the body.
    fn fill(&mut self, py: Python<'_>, want: usize) -> PyResult<bool> {
        if self.eof {
            return Ok(false);
        }
        let Some(source) = self.source.as_mut() else {
            return Err(PyIOError::new_err(
                "request data read error: request has completed",
            ));
        };
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        let want = want.clamp(1, CHUNK);
        self.buf.resize(old + want, 0);
        let tail = &mut self.buf[old..];
        let r = py.detach(|| source.read(tail));
        match r {
            Ok(0) => {
                self.buf.truncate(old);
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.buf.truncate(old + n);
                Ok(true)
            }
            Err(e) => {
                self.buf.truncate(old);
                Err(PyIOError::new_err(format!("request data read error: {e}")))
            }
        }
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
                pos: 0,
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

    fn read_impl(&self, py: Python<'_>, size: Option<isize>) -> PyResult<Vec<u8>> {
        let mut g = self
            .inner
            .lock_py_attached(py)
            .unwrap_or_else(|e| e.into_inner());
        match size {
            Some(n) if n >= 0 => {
                let n = n as usize;
                while g.buffered().len() < n {
                    let need = n - g.buffered().len();
                    if !g.fill(py, need)? {
                        break;
                    }
                }
                Ok(g.take(n))
            }
            _ => {
                while g.fill(py, CHUNK)? {}
                let n = g.buffered().len();
                Ok(g.take(n))
            }
        }
    }

    fn readline_impl(&self, py: Python<'_>, size: Option<isize>) -> PyResult<Vec<u8>> {
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
                return Ok(g.take(end));
            }
            scanned = b.len();
            if scanned >= limit {
                return Ok(g.take(limit));
            }
            if !g.fill(py, CHUNK)? {
                let n = g.buffered().len();
                return Ok(g.take(n));
            }
        }
    }
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let v = self.read_impl(py, size)?;
        Ok(PyBytes::new(py, &v))
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let v = self.readline_impl(py, size)?;
        Ok(PyBytes::new(py, &v))
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
            if line.is_empty() {
                break;
            }
            total += line.len();
            out.push(PyBytes::new(py, &line));
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
        if line.is_empty() {
            Ok(None)
        } else {
            Ok(Some(PyBytes::new(py, &line)))
        }
    }

    fn close(&self) {}
}

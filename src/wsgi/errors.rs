//! `wsgi.errors`, and the objects behind `sys.stdout`/`sys.stderr`: text
//! streams whose complete lines go to Apache's error log.
//!
//! As with mod_wsgi, `wsgi.errors` is an `io.TextIOWrapper` (UTF-8,
//! errors replaced, line buffered, write-through) around a [`Log`], which
//! then takes the encoded bytes as its buffer; a `Log` used directly (as
//! `sys.stdout`) takes `str`.
#![forbid(unsafe_code)]

use super::{LogLevel, RequestLog};
use pyo3::exceptions::{PyIOError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::{MutexExt, PyOnceLock};
use pyo3::types::{PyByteArray, PyBytes, PyString};
use std::sync::{Arc, Mutex};

/// `io.TextIOWrapper(log, "utf-8", "replace", None, True, True)`: the
/// text stream mod_wsgi hands out as `wsgi.errors`.
pub fn text_wrapper<'py>(log: &Bound<'py, Log>) -> PyResult<Bound<'py, PyAny>> {
    static WRAPPER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = log.py();
    let cls = WRAPPER.get_or_try_init(py, || -> PyResult<_> {
        Ok(py.import("io")?.getattr("TextIOWrapper")?.unbind())
    })?;
    cls.bind(py)
        .call1((log, "utf-8", "replace", py.None(), true, true))
}

#[pyclass(module = "mod_wsgi", name = "Log", frozen)]
pub struct Log {
    sink: Arc<dyn RequestLog>,
    level: LogLevel,
    pending: Mutex<String>,
    /// Set for a restricted sys.stdout/sys.stdin: every use raises.
    restricted: Option<&'static str>,
    name: &'static str,
}

impl Log {
    pub fn new(sink: Arc<dyn RequestLog>, level: LogLevel, name: &'static str) -> Log {
        Log {
            sink,
            level,
            pending: Mutex::new(String::new()),
            restricted: None,
            name,
        }
    }

    /// A stream that refuses all use with mod_wsgi's message, for
    /// `WSGIRestrictStdout On` / `WSGIRestrictStdin On`.
    pub fn restricted(sink: Arc<dyn RequestLog>, name: &'static str, msg: &'static str) -> Log {
        Log {
            sink,
            level: LogLevel::Error,
            pending: Mutex::new(String::new()),
            restricted: Some(msg),
            name,
        }
    }

    fn check(&self) -> PyResult<()> {
        match self.restricted {
            Some(m) => Err(PyIOError::new_err(m)),
            None => Ok(()),
        }
    }

    fn emit(&self, py: Python<'_>, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let sink = self.sink.clone();
        let level = self.level;
        // A piped ErrorLog can stall: never hold the GIL while writing.
        py.detach(move || {
            for l in &lines {
                sink.log(level, l);
            }
        });
    }

    pub fn flush_pending(&self, py: Python<'_>) {
        let rest = {
            let mut p = self
                .pending
                .lock_py_attached(py)
                .unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *p)
        };
        if !rest.is_empty() {
            self.emit(py, vec![rest]);
        }
    }
}

#[pymethods]
impl Log {
    fn write(&self, py: Python<'_>, msg: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.check()?;
        // Bytes come from the TextIOWrapper around us (already UTF-8).
        let (text, n): (String, usize) = if let Ok(s) = msg.cast::<PyString>() {
            let t = s.to_cow()?.into_owned();
            let n = t.chars().count();
            (t, n)
        } else if let Ok(b) = msg.cast::<PyBytes>() {
            let b = b.as_bytes();
            (String::from_utf8_lossy(b).into_owned(), b.len())
        } else if let Ok(b) = msg.cast::<PyByteArray>() {
            let b = b.to_vec();
            (String::from_utf8_lossy(&b).into_owned(), b.len())
        } else if msg.get_type().name()? == "memoryview" {
            let b: Vec<u8> = msg.call_method0("tobytes")?.extract()?;
            (String::from_utf8_lossy(&b).into_owned(), b.len())
        } else {
            return Err(PyTypeError::new_err(format!(
                "{}.write() argument must be str, not {}",
                self.name,
                msg.get_type().name()?
            )));
        };
        let lines = {
            let mut p = self
                .pending
                .lock_py_attached(py)
                .unwrap_or_else(|e| e.into_inner());
            p.push_str(&text);
            let mut lines = Vec::new();
            while let Some(i) = p.find('\n') {
                let line: String = p.drain(..=i).collect();
                lines.push(line.trim_end_matches('\n').to_string());
            }
            lines
        };
        self.emit(py, lines);
        Ok(n)
    }

    fn writelines(&self, py: Python<'_>, seq: &Bound<'_, PyAny>) -> PyResult<()> {
        self.check()?;
        for item in seq.try_iter()? {
            self.write(py, &item?)?;
        }
        Ok(())
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.check()?;
        self.flush_pending(py);
        Ok(())
    }

    fn close(&self) -> PyResult<()> {
        Err(PyIOError::new_err("log object cannot be closed"))
    }

    fn isatty(&self) -> bool {
        false
    }

    fn writable(&self) -> bool {
        self.restricted.is_none()
    }

    fn readable(&self) -> bool {
        false
    }

    fn seekable(&self) -> bool {
        false
    }

    #[pyo3(signature = (*_args))]
    fn read(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.check()?;
        Err(PyIOError::new_err("not readable"))
    }

    #[pyo3(signature = (*_args))]
    fn readline(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.check()?;
        Err(PyIOError::new_err("not readable"))
    }

    #[getter]
    fn closed(&self) -> bool {
        false
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        "utf-8"
    }

    #[getter]
    fn errors(&self) -> &'static str {
        "backslashreplace"
    }

    #[getter]
    fn name(&self) -> &'static str {
        self.name
    }
}

//! Loading WSGI script files as modules named `_mod_wsgi_<md5 of path>`,
//! and reloading them when the file changes (`WSGIScriptReloading On`).
#![forbid(unsafe_code)]

use crate::wsgi::response::log_exception;
use crate::wsgi::{LogLevel, RequestLog};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyModule};
use std::collections::HashMap;
use std::sync::Mutex;

struct Entry {
    module: Py<PyModule>,
    mtime: i64,
}

/// Loaded scripts of one interpreter. Loading holds the lock (taken with
/// the GIL released, so a thread waiting for it never blocks the one
/// importing), so two threads never execute the same script at once.
#[derive(Default)]
pub struct Scripts {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Why a script could not provide an application.
pub enum LoadError {
    /// The script raised while executing: log the traceback.
    Exec(PyErr),
    /// The script ran but has no such callable.
    NoCallable,
}

/// Where the application's identity is logged from.
pub struct LoadContext<'a> {
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub request_id: &'a str,
}

/// The application object, loading the script as needed; failures are
/// logged mod_wsgi's way (with the traceback and the request id) and give
/// None, for a 500.
#[allow(clippy::too_many_arguments)]
pub fn load_application<'py>(
    py: Python<'py>,
    scripts: &Scripts,
    path: &str,
    mtime: i64,
    reload: bool,
    callable: &str,
    cx: &LoadContext<'_>,
    log: &dyn RequestLog,
) -> Option<Bound<'py, PyAny>> {
    load_application_or(py, scripts, path, mtime, reload, callable, cx, log).ok()
}

/// Why [`load_application_or`] has no application (already logged).
#[derive(Debug, PartialEq)]
pub enum Unavailable {
    /// The script raised: mod_wsgi answers 500.
    Failed,
    /// The script has no such callable: mod_wsgi answers 404.
    NoCallable,
}

/// [`load_application`], saying why there is no application.
#[allow(clippy::too_many_arguments)]
pub fn load_application_or<'py>(
    py: Python<'py>,
    scripts: &Scripts,
    path: &str,
    mtime: i64,
    reload: bool,
    callable: &str,
    cx: &LoadContext<'_>,
    log: &dyn RequestLog,
) -> Result<Bound<'py, PyAny>, Unavailable> {
    let pid = crate::process_id();
    let on_load = |path: &str| {
        log.log(
            LogLevel::Info,
            &format!(
                "mod_wsgi (pid={pid}, process='{}', application='{}'): Loading Python script file '{path}'.",
                cx.process_group, cx.application_group
            ),
        )
    };
    match scripts.application(py, path, mtime, reload, callable, &on_load) {
        Ok(app) => Ok(app),
        Err(LoadError::Exec(e)) => {
            let id = cx.request_id;
            log.log(
                LogLevel::Error,
                &format!("mod_wsgi (pid={pid}, request='{id}'): Failed to exec Python script file '{path}'."),
            );
            log_exception(
                py,
                log,
                &e,
                &format!(
                    "mod_wsgi (pid={pid}, request='{id}'): Exception occurred processing WSGI script '{path}'."
                ),
            );
            Err(Unavailable::Failed)
        }
        Err(LoadError::NoCallable) => {
            log.log(
                LogLevel::Error,
                &format!("mod_wsgi (pid={pid}): Target WSGI script '{path}' does not contain WSGI application '{callable}'."),
            );
            Err(Unavailable::NoCallable)
        }
    }
}

/// A file's modification time in µs since the epoch, 0 when it cannot be
/// stat'ed (the script cache's notion of mtime).
pub fn file_mtime(path: &str) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub fn module_name(py: Python<'_>, path: &str) -> PyResult<String> {
    let hashlib = py.import("hashlib")?;
    let h = hashlib.call_method1("md5", (path.as_bytes(),))?;
    let hex: String = h.call_method0("hexdigest")?.extract()?;
    Ok(format!("_mod_wsgi_{hex}"))
}

impl Scripts {
    /// Whether script `path` is loaded here from a file whose mtime (µs)
    /// was not `mtime`: it changed since.
    pub fn is_stale(&self, py: Python<'_>, path: &str, mtime: i64) -> bool {
        let entries = self
            .entries
            .lock_py_attached(py)
            .unwrap_or_else(|e| e.into_inner());
        entries.get(path).is_some_and(|e| e.mtime != mtime)
    }

    /// The application object `callable` of script `path`, (re)loading the
    /// script when it is not loaded yet or, with `reload`, when its mtime
    /// (as Apache stat'ed it, µs) differs from the loaded one.
    pub fn application<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        mtime: i64,
        reload: bool,
        callable: &str,
        on_load: &dyn Fn(&str),
    ) -> Result<Bound<'py, PyAny>, LoadError> {
        let mut entries = self
            .entries
            .lock_py_attached(py)
            .unwrap_or_else(|e| e.into_inner());
        let fresh = match entries.get(path) {
            Some(e) if !reload || e.mtime == mtime => None,
            _ => Some(()),
        };
        let module = if fresh.is_some() {
            on_load(path);
            let m = exec_script(py, path, mtime).map_err(LoadError::Exec)?;
            entries.insert(
                path.to_string(),
                Entry {
                    module: m.clone().unbind(),
                    mtime,
                },
            );
            m
        } else {
            entries[path].module.bind(py).clone()
        };
        drop(entries);
        let dict = module.dict();
        match dict.get_item(callable) {
            Ok(Some(app)) => Ok(app),
            Ok(None) => Err(LoadError::NoCallable),
            Err(e) => Err(LoadError::Exec(e)),
        }
    }
}

/// Executes the script file as a fresh module, registered in sys.modules
/// under its mod_wsgi name while it runs (so it can import itself and
/// pickle classes defined in it) and removed again if it fails.
fn exec_script<'py>(py: Python<'py>, path: &str, mtime: i64) -> PyResult<Bound<'py, PyModule>> {
    let name = module_name(py, path)?;
    let source = std::fs::read(path)
        .map_err(|e| pyo3::exceptions::PyIOError::new_err(format!("{e}: '{path}'")))?;
    let builtins = py.import("builtins")?;
    let code = builtins
        .getattr("compile")?
        .call1((source, path, "exec", 0, true))?;
    let module = PyModule::new(py, &name)?;
    module.setattr("__file__", path)?;
    module.setattr("__mtime__", mtime)?;
    let modules = py
        .import("sys")?
        .getattr("modules")?
        .cast_into::<PyDict>()?;
    modules.set_item(&name, &module)?;
    let globals = module.dict();
    globals.set_item("__builtins__", builtins)?;
    if let Err(e) = py
        .import("builtins")?
        .getattr("exec")?
        .call1((code, globals))
    {
        let _ = modules.del_item(&name);
        return Err(e);
    }
    Ok(module)
}

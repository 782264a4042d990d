//! Builds the WSGI `environ` dict from the CGI variables (ordered byte
//! pairs, the one value that flows from Apache, or from the daemon
//! protocol, to here) plus the `wsgi.*` and `mod_wsgi.*` keys.
//!
//! Per-request cost matters here: keys are interned once per process and
//! ASCII values (nearly all of them) skip the latin-1 codec.
#![forbid(unsafe_code)]

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};
use std::collections::HashMap;
use std::sync::Mutex;

/// The crate's version as mod_wsgi reports its own (`mod_wsgi.version`).
pub const MOD_WSGI_VERSION: (u32, u32, u32) = (6, 0, 0);

/// What the module knows about the request beyond the CGI variables.
pub struct Extras<'a> {
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub callable_object: &'a str,
    /// The WSGIHandlerScript serving the request, "" for none.
    pub handler_script: &'a str,
    pub script_reloading: bool,
    pub request_id: &'a str,
    pub request_start: i64,
    pub script_start: i64,
    pub enable_sendfile: bool,
    pub multithread: bool,
    pub multiprocess: bool,
    pub url_scheme: &'a str,
    pub total_requests: u64,
    pub thread_id: u64,
    pub thread_requests: u64,
    pub listener_host: &'a str,
    pub listener_port: &'a str,
    pub daemon: Option<DaemonExtras>,
}

pub struct DaemonExtras {
    pub queue_start: i64,
    pub daemon_connects: u64,
    pub daemon_restarts: u64,
    pub daemon_start: i64,
}

/// `wsgi.url_scheme` from the CGI variables: a trusted proxy's scheme
/// (`mod_wsgi.url_scheme`, set by the WSGITrustedProxyHeaders handling)
/// wins over the connection's own TLS (`HTTPS` on, in any case, or 1).
pub fn url_scheme(var: impl Fn(&[u8]) -> Option<String>) -> &'static str {
    match (
        var(b"mod_wsgi.url_scheme").as_deref(),
        var(b"HTTPS").as_deref(),
    ) {
        (Some("https"), _) => "https",
        (Some(_), _) => "http",
        (None, Some(v)) if v.eq_ignore_ascii_case("on") || v == "1" => "https",
        _ => "http",
    }
}

/// A latin-1 `str` from bytes (PEP 3333's "native strings").
pub fn latin1<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
    if b.is_ascii() {
        // ASCII is valid UTF-8 and identical in latin-1.
        Ok(PyString::new(
            py,
            std::str::from_utf8(b).unwrap_or_default(),
        ))
    } else {
        Ok(PyBytes::new(py, b)
            .call_method1(intern!(py, "decode"), (intern!(py, "latin-1"),))?
            .cast_into()?)
    }
}

fn cached_key<'py>(
    py: Python<'py>,
    cache: &mut HashMap<Vec<u8>, Py<PyString>>,
    k: &[u8],
) -> PyResult<Bound<'py, PyString>> {
    if let Some(s) = cache.get(k) {
        return Ok(s.bind(py).clone());
    }
    let s = latin1(py, k)?;
    let s = if let Ok(text) = s.to_str() {
        PyString::intern(py, text)
    } else {
        s
    };
    if cache.len() < 4096 {
        cache.insert(k.to_vec(), s.clone().unbind());
    }
    Ok(s)
}

pub fn build<'py>(
    py: Python<'py>,
    vars: &[(&[u8], &[u8])],
    x: &Extras<'_>,
    input: Bound<'py, PyAny>,
    errors: Bound<'py, PyAny>,
    file_wrapper: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    static KEYS: PyOnceLock<Mutex<HashMap<Vec<u8>, Py<PyString>>>> = PyOnceLock::new();
    let keys = KEYS.get_or_init(py, || Mutex::new(HashMap::new()));
    let env = PyDict::new(py);
    {
        let mut cache = keys.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in vars {
            // mod_wsgi leaves the server's PATH out of the environ.
            if *k == b"PATH" {
                continue;
            }
            let key = cached_key(py, &mut cache, k)?;
            env.set_item(key, latin1(py, v)?)?;
        }
    }
    let s = |v: &str| PyString::new(py, v);
    let us = |v: i64| PyString::new(py, &v.to_string());
    env.set_item(intern!(py, "mod_wsgi.process_group"), s(x.process_group))?;
    env.set_item(
        intern!(py, "mod_wsgi.application_group"),
        s(x.application_group),
    )?;
    env.set_item(
        intern!(py, "mod_wsgi.callable_object"),
        s(x.callable_object),
    )?;
    env.set_item(
        intern!(py, "mod_wsgi.request_handler"),
        intern!(py, "wsgi-script"),
    )?;
    env.set_item(intern!(py, "mod_wsgi.handler_script"), s(x.handler_script))?;
    env.set_item(
        intern!(py, "mod_wsgi.script_reloading"),
        if x.script_reloading { "1" } else { "0" },
    )?;
    // The Apache child sends its connection's listener with the CGI
    // variables; these are only the fallback for a caller that did not.
    if !env.contains(intern!(py, "mod_wsgi.listener_host"))? {
        env.set_item(intern!(py, "mod_wsgi.listener_host"), s(x.listener_host))?;
    }
    if !env.contains(intern!(py, "mod_wsgi.listener_port"))? {
        env.set_item(intern!(py, "mod_wsgi.listener_port"), s(x.listener_port))?;
    }
    env.set_item(
        intern!(py, "mod_wsgi.enable_sendfile"),
        if x.enable_sendfile { "1" } else { "0" },
    )?;
    env.set_item(intern!(py, "mod_wsgi.ignore_activity"), "0")?;
    env.set_item(intern!(py, "mod_wsgi.request_start"), us(x.request_start))?;
    env.set_item(intern!(py, "mod_wsgi.request_id"), s(x.request_id))?;
    if let Some(d) = &x.daemon {
        env.set_item(intern!(py, "mod_wsgi.queue_start"), us(d.queue_start))?;
        env.set_item(
            intern!(py, "mod_wsgi.daemon_connects"),
            d.daemon_connects.to_string(),
        )?;
        env.set_item(
            intern!(py, "mod_wsgi.daemon_restarts"),
            d.daemon_restarts.to_string(),
        )?;
        env.set_item(intern!(py, "mod_wsgi.daemon_start"), us(d.daemon_start))?;
    }
    env.set_item(intern!(py, "mod_wsgi.script_start"), us(x.script_start))?;
    env.set_item(intern!(py, "wsgi.version"), PyTuple::new(py, [1, 0])?)?;
    env.set_item(intern!(py, "wsgi.multithread"), x.multithread)?;
    env.set_item(intern!(py, "wsgi.multiprocess"), x.multiprocess)?;
    env.set_item(intern!(py, "wsgi.run_once"), false)?;
    env.set_item(intern!(py, "wsgi.url_scheme"), s(x.url_scheme))?;
    env.set_item(intern!(py, "wsgi.errors"), errors)?;
    env.set_item(intern!(py, "wsgi.input"), input)?;
    env.set_item(intern!(py, "wsgi.input_terminated"), true)?;
    env.set_item(intern!(py, "wsgi.file_wrapper"), file_wrapper)?;
    let (a, b, c) = crate::httpd::auth::APACHE_VERSION;
    env.set_item(intern!(py, "apache.version"), PyTuple::new(py, [a, b, c])?)?;
    let (a, b, c) = MOD_WSGI_VERSION;
    env.set_item(
        intern!(py, "mod_wsgi.version"),
        PyTuple::new(py, [a, b, c])?,
    )?;
    env.set_item(intern!(py, "mod_wsgi.total_requests"), x.total_requests)?;
    env.set_item(intern!(py, "mod_wsgi.thread_id"), x.thread_id)?;
    env.set_item(intern!(py, "mod_wsgi.thread_requests"), x.thread_requests)?;
    Ok(env)
}

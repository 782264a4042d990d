//! `WSGIDispatchScript`: a script whose optional `process_group(environ)`,
//! `application_group(environ)` and `callable_object(environ)` choose, per
//! request, where and what the WSGI application runs. A function returning
//! a string overrides WSGIProcessGroup / WSGIApplicationGroup /
//! WSGICallableObject for the request (expanded as the directive would
//! be); None, or a missing function, leaves the configured value.
//!
//! It runs in Apache's child (also when the request then goes to a daemon
//! process group), in the handler, after the CGI variables are built: its
//! environ holds them, as the application's will, plus the values chosen
//! so far under `mod_wsgi.*`. Loading and calling go through the same
//! machinery as the access-control scripts ([`crate::auth`]).
#![forbid(unsafe_code)]

use crate::auth::{Called, EnvironFn, call_function};
use crate::config::AuthScript;
use crate::httpd::Request;
use crate::httpd::auth::APACHE_VERSION;
use crate::wsgi::environ::{MOD_WSGI_VERSION, latin1};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

/// What the script chose; None where it kept the configured value.
#[derive(Debug, Default)]
pub(crate) struct Choice {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
}

/// The values chosen before the dispatch script ran, as expanded.
pub(crate) struct Current<'a> {
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub callable_object: &'a str,
}

/// Runs the dispatch script's functions. Err when the script could not be
/// loaded, raised or returned something other than a string or None (all
/// logged with the traceback): the request fails with 500.
pub(crate) fn run(
    r: &Request,
    script: &AuthScript,
    vars: &[(&[u8], &[u8])],
    current: &Current<'_>,
) -> Result<Choice, ()> {
    let make_environ: &EnvironFn<'_> =
        &|py, _r, _group, reload, errors| environ(py, vars, current, reload, errors);
    let mut choice = Choice::default();
    for (function, what, slot) in [
        ("process_group", "Process group", &mut choice.process_group),
        (
            "application_group",
            "Application group",
            &mut choice.application_group,
        ),
        (
            "callable_object",
            "Callable object",
            &mut choice.callable_object,
        ),
    ] {
        let got = call_function(
            r,
            script,
            function,
            "dispatch",
            make_environ,
            |_py| Ok(Vec::new()),
            |_py, result| chosen(result, what),
        );
        match got {
            Called::Value(v) => *slot = v,
            Called::NoFunction => {}
            Called::Failed => return Err(()),
        }
    }
    Ok(choice)
}

/// None, or the string a dispatch function returned (bytes as latin-1).
fn chosen(result: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<String>> {
    if result.is_none() {
        return Ok(None);
    }
    if let Ok(s) = result.cast::<PyString>() {
        return Ok(Some(s.to_str()?.to_string()));
    }
    if let Ok(b) = result.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes().iter().map(|&c| c as char).collect()));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a string object"
    )))
}

fn environ<'py>(
    py: Python<'py>,
    vars: &[(&[u8], &[u8])],
    current: &Current<'_>,
    reload: bool,
    errors: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    for (k, v) in vars {
        env.set_item(latin1(py, k)?, latin1(py, v)?)?;
    }
    let (a, b, c) = APACHE_VERSION;
    env.set_item("apache.version", PyTuple::new(py, [a, b, c])?)?;
    let (a, b, c) = MOD_WSGI_VERSION;
    env.set_item("mod_wsgi.version", PyTuple::new(py, [a, b, c])?)?;
    env.set_item("mod_wsgi.process_group", current.process_group)?;
    env.set_item("mod_wsgi.application_group", current.application_group)?;
    env.set_item("mod_wsgi.callable_object", current.callable_object)?;
    env.set_item("mod_wsgi.script_reloading", i32::from(reload))?;
    env.set_item("wsgi.errors", errors)?;
    Ok(env)
}

//! mod_wsgi's access-control scripts: `WSGIAuthUserScript` behind the
//! `wsgi` authn provider (`check_password`, `get_realm_hash`),
//! `WSGIAuthGroupScript` behind the `wsgi-group` authz provider
//! (`groups_for_user`), and `WSGIAccessScript` in the access checker
//! (`allow_access`).
//!
//! They always run in Apache's children (embedded mode), also for a
//! location whose application runs in a daemon process group, in the
//! interpreter of their `application-group=` (`%{GLOBAL}` by default; all
//! groups share one interpreter for now). The script is loaded through the
//! same cache as WSGI scripts, so a file used both as `WSGIScriptAlias`
//! target and as auth script (Django's `wsgi.py`) is one module, reloaded
//! when it changes under `WSGIScriptReloading On`.
//!
//! Each function gets a cut-down environ: the request headers (without
//! credentials), some CGI variables computed from the request, and a few
//! `mod_wsgi.*` keys, never `SetEnv` values, which `.htaccess` could set.
#![forbid(unsafe_code)]

use crate::config::{AuthScript, GroupContext};
use crate::httpd::Request;
use crate::httpd::auth::{APACHE_VERSION, Authn, Authz};
use crate::httpd::io::ApacheRequestLog;
use crate::httpd::log::{self, CurrentRequest, Level};
use crate::module::dir_config;
use crate::python::{init, script};
use crate::wsgi::environ::{MOD_WSGI_VERSION, latin1};
use crate::wsgi::errors::Log;
use crate::wsgi::response::log_exception;
use crate::wsgi::{LogLevel, RequestLog};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyString, PyTuple};
use std::ffi::CStr;
use std::os::raw::c_int;
use std::sync::Arc;

/// What a script is, for the messages about it.
struct Role {
    /// The Python function the script must define.
    function: &'static str,
    /// The sentence after "Target WSGI ... script '<path>' " when it does not.
    missing: &'static str,
    /// "user authentication", "group authentication", "host access".
    noun: &'static str,
}

const BASIC: Role = Role {
    function: "check_password",
    missing: "does not provide 'Basic' auth provider.",
    noun: "user authentication",
};
const DIGEST: Role = Role {
    function: "get_realm_hash",
    missing: "does not provide 'Digest' auth provider.",
    noun: "user authentication",
};
const GROUPS: Role = Role {
    function: "groups_for_user",
    missing: "does not provide group provider.",
    noun: "group authentication",
};
const ACCESS: Role = Role {
    function: "allow_access",
    missing: "does not provide host validator.",
    noun: "host access",
};

/// `check_password(environ, user, password)`: True, False, None (no such
/// user) or a user name (which replaces `r->user`).
pub(crate) fn check_password(r: &Request, user: &CStr, password: &CStr) -> Authn {
    let _current = CurrentRequest::enter(r);
    let Some(script) = dir_config(r).auth_user_script().cloned() else {
        no_script("user authentication");
        return Authn::GeneralError;
    };
    let mut new_user: Option<Vec<u8>> = None;
    let status = call(
        r,
        &script,
        &BASIC,
        |py| {
            Ok(vec![
                latin1(py, user.to_bytes())?.into_any(),
                latin1(py, password.to_bytes())?.into_any(),
            ])
        },
        |_py, result| {
            if result.is_none() {
                Ok(Authn::UserNotFound)
            } else if let Ok(b) = result.cast::<PyBool>() {
                // bool cannot be subclassed: this is True or False itself.
                Ok(if b.is_true() {
                    Authn::Granted
                } else {
                    Authn::Denied
                })
            } else if let Ok(s) = result.cast::<PyString>() {
                new_user = Some(s.to_str()?.as_bytes().to_vec());
                Ok(Authn::Granted)
            } else {
                Err(PyTypeError::new_err(
                    "Basic auth provider must return True, False None or user name as string",
                ))
            }
        },
    );
    if let Some(u) = new_user {
        r.set_user(&u);
    }
    status.unwrap_or(Authn::GeneralError)
}

/// `get_realm_hash(environ, user, realm)`: None (no such user) or the hex
/// MD5 of `user:realm:password`, as str or bytes.
pub(crate) fn get_realm_hash(r: &Request, user: &CStr, realm: &CStr) -> Authn {
    let _current = CurrentRequest::enter(r);
    let Some(script) = dir_config(r).auth_user_script().cloned() else {
        no_script("user authentication");
        return Authn::GeneralError;
    };
    call(
        r,
        &script,
        &DIGEST,
        |py| {
            Ok(vec![
                latin1(py, user.to_bytes())?.into_any(),
                latin1(py, realm.to_bytes())?.into_any(),
            ])
        },
        |_py, result| {
            if result.is_none() {
                Ok(Authn::UserNotFound)
            } else if let Ok(b) = result.cast::<PyBytes>() {
                Ok(Authn::UserFound(b.as_bytes().to_vec()))
            } else if let Ok(s) = result.cast::<PyString>() {
                let b = s.call_method1("encode", ("latin-1",)).map_err(|_| {
                    PyTypeError::new_err(
                        "Digest auth provider must return None or string object, value \
                         containing non 'latin-1' characters found",
                    )
                })?;
                Ok(Authn::UserFound(b.cast::<PyBytes>()?.as_bytes().to_vec()))
            } else {
                Err(PyTypeError::new_err(
                    "Digest auth provider must return None or string object",
                ))
            }
        },
    )
    .unwrap_or(Authn::GeneralError)
}

/// `Require wsgi-group name ...`: granted when `groups_for_user(environ,
/// user)` yields one of the names.
pub(crate) fn check_groups(r: &Request, require_args: &str) -> Authz {
    let Some(user) = r.user().map(|u| u.to_bytes().to_vec()) else {
        return Authz::DeniedNoUser;
    };
    let _current = CurrentRequest::enter(r);
    let pid = crate::process_id();
    let Some(script) = dir_config(r).auth_group_script().cloned() else {
        log::server(
            None,
            Level::Error,
            &format!(
                "mod_wsgi (pid={pid}): Location of WSGI group authorization script not provided."
            ),
        );
        return Authz::Denied;
    };
    let path = script.path.clone();
    let groups = call(
        r,
        &script,
        &GROUPS,
        |py| Ok(vec![latin1(py, &user)?.into_any()]),
        |_py, result| {
            let not_seq = format!(
                "mod_wsgi (pid={pid}): Groups for user returned from '{path}' must be an \
                 iterable sequence of byte strings"
            );
            let Ok(iter) = result.try_iter() else {
                return Ok(Err(format!("{not_seq}.")));
            };
            let mut names: Vec<Vec<u8>> = Vec::new();
            for item in iter {
                let item = item?;
                if let Ok(b) = item.cast::<PyBytes>() {
                    names.push(b.as_bytes().to_vec());
                } else if let Ok(s) = item.cast::<PyString>() {
                    let Ok(b) = s.call_method1("encode", ("latin-1",)) else {
                        return Ok(Err(format!(
                            "{not_seq}, value containing non 'latin-1' characters found"
                        )));
                    };
                    names.push(b.cast::<PyBytes>()?.as_bytes().to_vec());
                } else {
                    return Ok(Err(format!("{not_seq}.")));
                }
            }
            Ok(Ok(names))
        },
    );
    // An exception while iterating denies, like any other failure of the
    // script (mod_wsgi would go on with the groups seen so far).
    let groups = match groups {
        Some(Ok(g)) => g,
        Some(Err(msg)) => {
            log::request(r, Level::Error, &msg);
            return Authz::Denied;
        }
        None => return Authz::Denied,
    };
    let user = String::from_utf8_lossy(&user);
    let uri = r.uri().to_string_lossy();
    if groups.is_empty() {
        log::request(
            r,
            Level::Error,
            &format!(
                "mod_wsgi (pid={pid}): Authorization of user '{user}' to access '{uri}' failed. \
                 User is not a member of any groups."
            ),
        );
        return Authz::Denied;
    }
    if required_groups(require_args).any(|want| groups.iter().any(|g| g == want.as_bytes())) {
        return Authz::Granted;
    }
    log::request(
        r,
        Level::Error,
        &format!(
            "mod_wsgi (pid={pid}): Authorization of user '{user}' to access '{uri}' failed. \
             User is not a member of designated groups."
        ),
    );
    Authz::Denied
}

/// The group names of a `Require wsgi-group` line, split as httpd splits
/// configuration words (quotes allowed).
fn required_groups(args: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = args;
    std::iter::from_fn(move || {
        let (w, r) = crate::config::getword_conf(rest);
        rest = r;
        (!w.is_empty()).then_some(w)
    })
}

/// The access checker: `allow_access(environ, host)` True (OK), False
/// (403) or None (no opinion: DECLINED).
pub(crate) fn access_checker(r: &Request) -> c_int {
    let Some(script) = dir_config(r).access_script().cloned() else {
        return crate::httpd::DECLINED;
    };
    let _current = CurrentRequest::enter(r);
    let host = r.remote_host_or_ip();
    let path = script.path.clone();
    let allow = call(
        r,
        &script,
        &ACCESS,
        |py| {
            Ok(vec![match &host {
                Some(h) => latin1(py, h)?.into_any(),
                None => py.None().into_bound(py),
            }])
        },
        |_py, result| {
            if result.is_none() {
                return Ok(Ok(None));
            }
            if let Ok(b) = result.cast::<PyBool>() {
                return Ok(Ok(Some(b.is_true())));
            }
            Ok(Err(()))
        },
    );
    let allow = match allow {
        Some(Ok(a)) => a,
        Some(Err(())) => {
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Indicator of host accessibility returned from '{path}' \
                     must a boolean or None.",
                    crate::process_id()
                ),
            );
            Some(false)
        }
        None => Some(false),
    };
    match allow {
        None => crate::httpd::DECLINED,
        Some(true) => crate::httpd::OK,
        // False, or the script could not answer.
        _ => {
            let filename = r
                .filename()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Client denied by server configuration: '{filename}'.",
                    crate::process_id()
                ),
            );
            crate::httpd::sys::HTTP_FORBIDDEN as c_int
        }
    }
}

fn no_script(noun: &str) {
    log::server(
        None,
        Level::Error,
        &format!(
            "mod_wsgi (pid={}): Location of WSGI {noun} script not provided.",
            crate::process_id()
        ),
    );
}

/// Loads `script` and calls its `role.function(environ, *args)`, turning
/// the result into `R` with `interpret`. None, after logging why (with the
/// traceback), when the script could not be loaded, lacks the function,
/// raised, or returned something `interpret` refused.
fn call<R>(
    r: &Request,
    script: &AuthScript,
    role: &Role,
    args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>>,
    interpret: impl for<'py> FnOnce(Python<'py>, &Bound<'py, PyAny>) -> PyResult<R>,
) -> Option<R> {
    match call_function(
        r,
        script,
        role.function,
        role.noun,
        &cut_down_environ,
        args,
        interpret,
    ) {
        Called::Value(v) => Some(v),
        Called::Failed => None,
        Called::NoFunction => {
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={}): Target WSGI {} script '{}' {}",
                    crate::process_id(),
                    role.noun,
                    script.path,
                    role.missing
                ),
            );
            None
        }
    }
}

/// What calling a function of a script run in Apache's child gave.
pub(crate) enum Called<R> {
    Value(R),
    /// The script loaded but does not define the function.
    NoFunction,
    /// It could not be loaded, raised, or its result was refused; logged.
    Failed,
}

/// Builds the environ a script function gets: `(py, request, application
/// group, script reloading, wsgi.errors)`.
pub(crate) type EnvironFn<'a> = dyn for<'py> Fn(
        Python<'py>,
        &Request,
        &str,
        bool,
        &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>>
    + 'a;

/// Loads `script` (through the embedded script cache, in the interpreter
/// of its `application-group=`) and calls its `function(environ, *args)`,
/// turning the result into `R` with `interpret`. Failures are logged with
/// the traceback. `noun` names the script in messages ("user
/// authentication", "dispatch").
pub(crate) fn call_function<R>(
    r: &Request,
    script: &AuthScript,
    function: &str,
    noun: &str,
    make_environ: &EnvironFn<'_>,
    args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>>,
    interpret: impl for<'py> FnOnce(Python<'py>, &Bound<'py, PyAny>) -> PyResult<R>,
) -> Called<R> {
    let pid = crate::process_id();
    let path = script.path.as_str();
    let scripts = match crate::handler::embedded_scripts() {
        Ok(s) => s,
        Err(why) => {
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={pid}): Python is not available in this process, so the WSGI \
                     {noun} script '{path}' cannot run: {why}"
                ),
            );
            return Called::Failed;
        }
    };
    let dc = dir_config(r);
    let group = application_group(r, script);
    crate::handler::note_application_group(r, &group, path);
    let reload = dc.script_reloading();
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let reqlog = Arc::new(ApacheRequestLog::new(r));
    let result = init::with_gil(|py| {
        let on_load = |p: &str| {
            reqlog.log(
                LogLevel::Info,
                &format!(
                    "mod_wsgi (pid={pid}, process='', application='{group}'): Loading Python \
                     script file '{p}'."
                ),
            )
        };
        let func = match scripts.application(py, path, mtime, reload, function, &on_load) {
            Ok(f) => f,
            Err(script::LoadError::Exec(e)) => {
                reqlog.log(
                    LogLevel::Error,
                    &format!("mod_wsgi (pid={pid}): Failed to exec Python script file '{path}'."),
                );
                log_exception(
                    py,
                    &*reqlog,
                    &e,
                    &format!(
                        "mod_wsgi (pid={pid}): Exception occurred processing WSGI script '{path}'."
                    ),
                );
                return Called::Failed;
            }
            Err(script::LoadError::NoCallable) => return Called::NoFunction,
        };
        let made = Bound::new(
            py,
            Log::new(reqlog.clone(), LogLevel::Error, "<wsgi.errors>"),
        )
        .and_then(|l| Ok((crate::wsgi::errors::text_wrapper(&l)?, l)));
        let (errors, log_obj) = match made {
            Ok(l) => l,
            Err(e) => {
                log_exception(py, &*reqlog, &e, "mod_wsgi: creating wsgi.errors failed.");
                return Called::Failed;
            }
        };
        let outcome = (|| -> PyResult<R> {
            let environ = make_environ(py, r, &group, reload, &errors)?;
            let mut all: Vec<Bound<'_, PyAny>> = vec![environ.into_any()];
            all.extend(args(py)?);
            let result = func.call1(PyTuple::new(py, all)?)?;
            interpret(py, &result)
        })();
        log_obj.get().flush_pending(py);
        match outcome {
            Ok(v) => Called::Value(v),
            Err(e) => {
                log_exception(
                    py,
                    &*reqlog,
                    &e,
                    &format!(
                        "mod_wsgi (pid={pid}): Exception occurred processing WSGI script '{path}'."
                    ),
                );
                Called::Failed
            }
        }
    });
    reqlog.end();
    result
}

/// The script's interpreter name, from its `application-group=`.
fn application_group(r: &Request, script: &AuthScript) -> String {
    let server = r.server();
    let host = r.hostname().and_then(|h| h.to_str().ok());
    let no_env = |_: &str| None;
    let cx = GroupContext {
        server_hostname: server.hostname(),
        server_port: r.server_port(),
        host_header: host,
        script_name: "",
        env: &no_env,
    };
    crate::config::expand_server_group(script.application_group.as_deref(), &cx)
}

/// The cut-down environ mod_wsgi gives access-control scripts.
fn cut_down_environ<'py>(
    py: Python<'py>,
    r: &Request,
    group: &str,
    reload: bool,
    errors: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    let os = py.import("os")?;
    for (k, v) in r.access_script_vars() {
        let key = latin1(py, &k)?;
        if k == b"DOCUMENT_ROOT" {
            env.set_item(key, os.call_method1("fsdecode", (PyBytes::new(py, &v),))?)?;
        } else {
            env.set_item(key, latin1(py, &v)?)?;
        }
    }
    let (a, b, c) = APACHE_VERSION;
    env.set_item("apache.version", PyTuple::new(py, [a, b, c])?)?;
    let (a, b, c) = MOD_WSGI_VERSION;
    env.set_item("mod_wsgi.version", PyTuple::new(py, [a, b, c])?)?;
    env.set_item("mod_wsgi.process_group", "")?;
    env.set_item("mod_wsgi.application_group", group)?;
    env.set_item("mod_wsgi.script_reloading", i32::from(reload))?;
    env.set_item("wsgi.errors", errors)?;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_line_words() {
        let v: Vec<String> = required_groups("staff  'domain admins' \"x y\" last").collect();
        assert_eq!(v, ["staff", "domain admins", "x y", "last"]);
        assert_eq!(required_groups("").count(), 0);
        assert_eq!(required_groups("   ").count(), 0);
    }
}

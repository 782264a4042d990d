//! The request flow: mapping URLs to scripts (translate_name), checking
//! what may run, building the CGI variables, and running the application
//! in this process (embedded mode).
#![forbid(unsafe_code)]

use crate::config::{self, DirConfig, GroupContext, ScriptAlias};
use crate::httpd::io::{ApacheBody, ApacheRequestLog, ApacheSink, ProcessLog};
use crate::httpd::log::{self, CurrentRequest, Level};
use crate::httpd::{Pool, Request, Server, sys};
use crate::module::{dir_config, regex_match, server_config};
use crate::python::{init, modwsgi, script};
use crate::wsgi::{self, environ, errors::Log, response};
use ::log as rlog;
use pyo3::prelude::*;
use std::collections::HashSet;
use std::ffi::CStr;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

const HANDLER: &CStr = c"wsgi-script";
const HANDLER_ALT: &CStr = c"application/x-httpd-wsgi";

const NOTE_PROCESS_GROUP: &CStr = c"mod_wsgi.process_group";
const NOTE_APPLICATION_GROUP: &CStr = c"mod_wsgi.application_group";
const NOTE_CALLABLE_OBJECT: &CStr = c"mod_wsgi.callable_object";
const NOTE_PASS_AUTHORIZATION: &CStr = c"mod_wsgi.pass_authorization";

/// Per-process state of embedded mode.
struct Process {
    /// Why Python could not start, if it could not: requests get 500s and
    /// this reason in the log instead of the child crash-looping.
    failed: Option<String>,
    scripts: script::Scripts,
    total_requests: AtomicU64,
    /// (application group, script) pairs run so far.
    groups_seen: Mutex<HashSet<(String, String)>>,
    /// Set once the shared-interpreter warning went out: from then on no
    /// request needs the lock above.
    groups_warned: AtomicBool,
    multithread: bool,
    multiprocess: bool,
}

impl Process {
    fn new(failed: Option<String>) -> Process {
        Process {
            failed,
            scripts: script::Scripts::default(),
            total_requests: AtomicU64::new(0),
            groups_seen: Mutex::new(HashSet::new()),
            groups_warned: AtomicBool::new(false),
            multithread: crate::httpd::mpm_threads() > 1,
            multiprocess: crate::httpd::mpm_multiprocess(),
        }
    }
}

static PROCESS: OnceLock<Process> = OnceLock::new();

/// The script cache of this process's embedded interpreter, for the
/// access-control scripts (crate::auth); Err says why Python is missing.
pub(crate) fn embedded_scripts() -> Result<&'static script::Scripts, String> {
    let process = PROCESS
        .get()
        .ok_or_else(|| "Python is not initialised in this process.".to_string())?;
    match &process.failed {
        Some(why) => Err(why.clone()),
        None => Ok(&process.scripts),
    }
}

/// [`note_group`] for code outside the handler.
pub(crate) fn note_application_group(r: &Request, group: &str, script: &str) {
    if let Some(process) = PROCESS.get() {
        note_group(r, process, group, script);
    }
}

// ---------------------------------------------------------------- start-up

pub(crate) fn post_config(s: &Server) {
    warn_shared_interpreter(s);
    log::server(
        Some(s),
        Level::Info,
        &format!(
            "mod_wsgi (pid={}): mod_wsgi-rs {} configured, Python {} embedded in Apache's children.",
            crate::process_id(),
            env!("CARGO_PKG_VERSION"),
            init::BUILD_PYTHON
        ),
    );
}

/// Set in Apache's parent when the start-up warning below went out; the
/// children forked afterwards see it, and do not repeat it per process.
static SHARING_WARNED: AtomicBool = AtomicBool::new(false);

/// Sub-interpreters are not implemented yet: say so once at start-up when
/// the configuration puts scripts in different application groups of
/// Apache's children, since they will share one interpreter (see
/// [`config::sharing`]).
fn warn_shared_interpreter(main: &Server) {
    let mut servers = Vec::new();
    let mut server = Some(main);
    while let Some(s) = server {
        let sections = s.sections();
        servers.push(config::sharing::ServerView {
            hostname: s.hostname(),
            defaults: crate::module::dir_config_at(s.default_dir_module_config()),
            sections: sections
                .iter()
                .filter_map(|sec| {
                    Some(config::sharing::Section {
                        kind: if sec.is_directory {
                            config::sharing::SectionKind::Directory
                        } else {
                            config::sharing::SectionKind::Location
                        },
                        path: sec.path,
                        is_pattern: sec.is_pattern,
                        components: sec.components,
                        config: crate::module::dir_config_at(sec.module_config)?,
                    })
                })
                .collect(),
            aliases: server_config(s).script_aliases(),
        });
        server = s.next();
    }
    let scripts = config::sharing::scripts_sharing_the_interpreter(&servers);
    SHARING_WARNED.store(!scripts.is_empty(), Ordering::Relaxed);
    if scripts.len() > 1 {
        log::server(
            Some(main),
            Level::Warning,
            &format!(
                "mod_wsgi (pid={}): {} WSGI scripts are configured with their own application groups, but \
                 mod_wsgi-rs does not create sub-interpreters yet: they share one Python interpreter per \
                 process (sys.modules, os.environ, settings). Set 'WSGIApplicationGroup %{{GLOBAL}}' to \
                 make this explicit, or give each its own daemon process group. Scripts: {}.",
                crate::process_id(),
                scripts.len(),
                scripts.join(", ")
            ),
        );
    }
}

pub(crate) fn settings(sc: &config::ServerConfig) -> init::Settings {
    init::Settings {
        home: sc.python_home().map(str::to_string),
        optimize: sc.python_optimize(),
        hash_seed: sc.python_hash_seed().map(|s| match s {
            config::PythonHashSeed::Random => "random".to_string(),
            config::PythonHashSeed::Value(n) => n.to_string(),
        }),
        warnings: sc.python_warnings().to_vec(),
        dont_write_bytecode: sc.dont_write_bytecode(),
    }
}

pub(crate) fn child_init(pchild: &Pool, s: &Server) {
    let sc = server_config(s);
    let pid = crate::process_id();
    // Access-control scripts always run here, so they need Python even
    // under WSGIRestrictEmbedded On (as mod_wsgi's wsgi_python_required).
    let access_scripts = crate::module::globals().is_some_and(|g| g.access_scripts);
    if sc.restrict_embedded() && !access_scripts {
        // WSGIRestrictEmbedded On: Apache's children never start Python.
        let _ = PROCESS.set(Process::new(Some(
            "embedded mode is disabled by WSGIRestrictEmbedded".into(),
        )));
        return;
    }
    let failed = match init::initialize(&settings(sc)) {
        Ok(()) => {
            let info = modwsgi::Info {
                process_group: "",
                application_group: "",
                maximum_processes: 1,
                threads_per_process: crate::httpd::mpm_threads().max(1) as u32,
            };
            init::with_gil(|py| setup_interpreter(py, sc, &info, sc.python_path())).err()
        }
        Err(e) => Some(e),
    };
    if let Some(why) = &failed {
        log::server(
            Some(s),
            Level::Crit,
            &format!("mod_wsgi (pid={pid}): Python could not be initialised: {why}"),
        );
        log::server(
            Some(s),
            Level::Crit,
            &format!(
                "mod_wsgi (pid={pid}): Requests for WSGI applications will fail with 500 until this is fixed and Apache restarted."
            ),
        );
    } else {
        log::server(
            Some(s),
            Level::Info,
            &format!("mod_wsgi (pid={pid}): Initializing Python."),
        );
    }
    let started = failed.is_none();
    let _ = PROCESS.set(Process::new(failed));
    if started && !sc.restrict_embedded() {
        import_scripts(s);
    }
    // WSGIDestroyInterpreter Off: skip finalisation (atexit callbacks do
    // not run) for applications whose threads hang interpreter shutdown.
    let destroy = sc.destroy_interpreter();
    pchild.on_cleanup(Box::new(move || {
        if destroy {
            log::server(
                None,
                Level::Info,
                &format!(
                    "mod_wsgi (pid={}): Destroying interpreters.",
                    crate::process_id()
                ),
            );
            init::finalize();
        }
    }));
}

/// WSGIImportScript (and preloading WSGIScriptAlias entries) for embedded
/// mode: loaded when the child starts instead of on the first request.
fn import_scripts(s: &Server) {
    let Some(g) = crate::module::globals() else {
        return;
    };
    let Some(process) = PROCESS.get() else { return };
    let pid = crate::process_id();
    for imp in g
        .import_scripts()
        .iter()
        .filter(|i| i.process_group.is_empty())
    {
        let mtime = std::fs::metadata(&imp.script)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        init::with_gil(|py| {
            log::server(
                Some(s),
                Level::Info,
                &format!(
                    "mod_wsgi (pid={pid}, process='', application='{}'): Loading Python script file '{}'.",
                    imp.application_group, imp.script
                ),
            );
            // The callable is looked up only to load the module; a script
            // without `application` is fine for an import script.
            if let Err(script::LoadError::Exec(e)) =
                process
                    .scripts
                    .application(py, &imp.script, mtime, false, "application", &|_| {})
            {
                let log = ProcessLog;
                response::log_exception(
                    py,
                    &log,
                    &e,
                    &format!(
                        "mod_wsgi (pid={pid}): Failed to exec Python script file '{}'.",
                        imp.script
                    ),
                );
            }
        });
    }
}

/// After Py_Initialize: the log streams, the `mod_wsgi` module, the
/// WSGIPythonPath directories (through site.addsitedir so .pth files count).
/// After Py_Initialize, in embedded mode and in daemon processes alike.
/// `python_path` is WSGIPythonPath (embedded) or the group's python-path=.
pub(crate) fn setup_interpreter(
    py: Python<'_>,
    sc: &config::ServerConfig,
    info: &modwsgi::Info<'_>,
    python_path: &[String],
) -> Result<(), String> {
    let r = (|| -> PyResult<()> {
        let sys_mod = py.import("sys")?;
        // Import threading here, on the process's main thread: imported
        // first from an Apache worker thread, it records that thread as the
        // main one and interpreter shutdown then waits for it forever, so
        // the child ignores SIGTERM until Apache kills it.
        py.import("threading")?;
        // WSGIPythonEggs; a daemon's python-eggs= overrides it afterwards.
        if let Some(eggs) = sc.python_eggs() {
            py.import("os")?
                .getattr("environ")?
                .set_item("PYTHON_EGG_CACHE", eggs)?;
        }
        let process_log: Arc<dyn wsgi::RequestLog> = Arc::new(ProcessLog);
        let out = if sc.restrict_stdout() {
            Log::restricted(
                process_log.clone(),
                "<stdout>",
                "sys.stdout access restricted by mod_wsgi",
            )
        } else {
            Log::new(process_log.clone(), wsgi::LogLevel::Error, "<stdout>")
        };
        sys_mod.setattr("stdout", Bound::new(py, out)?)?;
        sys_mod.setattr(
            "stderr",
            Bound::new(
                py,
                Log::new(process_log.clone(), wsgi::LogLevel::Error, "<stderr>"),
            )?,
        )?;
        if sc.restrict_stdin() {
            sys_mod.setattr(
                "stdin",
                Bound::new(
                    py,
                    Log::restricted(
                        process_log,
                        "<stdin>",
                        "sys.stdin access restricted by mod_wsgi",
                    ),
                )?,
            )?;
        }
        // sys.argv is expected by some libraries; mod_wsgi sets ['mod_wsgi'].
        sys_mod.setattr("argv", vec!["mod_wsgi"])?;
        modwsgi::install(py, info)?;
        if sc.restrict_signal() {
            restrict_signals(py)?;
        }
        let site = py.import("site")?;
        for dir in python_path {
            site.call_method1("addsitedir", (dir,))?;
        }
        Ok(())
    })();
    r.map_err(|e| format!("setting up the interpreter failed: {e}"))
}

/// WSGIRestrictSignal On: applications may not take over Apache's signals.
/// `signal.signal()` logs and ignores the registration, as mod_wsgi does.
fn restrict_signals(py: Python<'_>) -> PyResult<()> {
    let code = c"
import signal as _signal, sys as _sys
_original = _signal.signal
def _mod_wsgi_signal(signum, handler):
    _sys.stderr.write('mod_wsgi (pid=%d): Callback registration for signal %d ignored.\\n' % (__import__('os').getpid(), signum))
    _sys.stderr.flush()
    return _signal.getsignal(signum)
_signal.signal = _mod_wsgi_signal
";
    py.run(code, None, None)
}

// ---------------------------------------------------------------- mapping

/// Length of the prefix of `uri` matched by the alias location `fake`, with
/// mod_alias's rules: runs of slashes in either compare equal, and the
/// match must end at a path segment boundary.
pub(crate) fn alias_matches(uri: &[u8], fake: &[u8]) -> Option<usize> {
    let (mut u, mut f) = (0, 0);
    while f < fake.len() {
        if fake[f] == b'/' {
            if u >= uri.len() || uri[u] != b'/' {
                return None;
            }
            while f < fake.len() && fake[f] == b'/' {
                f += 1;
            }
            while u < uri.len() && uri[u] == b'/' {
                u += 1;
            }
        } else {
            if u >= uri.len() || uri[u] != fake[f] {
                return None;
            }
            u += 1;
            f += 1;
        }
    }
    // A location ending in '/' has matched a boundary already; otherwise
    // the next URI character must start a new segment (or be the end).
    if !fake.ends_with(b"/") && u < uri.len() && uri[u] != b'/' {
        return None;
    }
    Some(u)
}

/// The file name for a URI that matched `alias` up to `matched` bytes: the
/// script followed by the rest of the URI, which httpd's directory walk
/// then splits off into PATH_INFO.
///
/// As with mod_wsgi, only `WSGIScriptAlias / ...` keeps the whole URI
/// (so `/x` is PATH_INFO `/x`); any other location is cut off exactly
/// where it matched, so `WSGIScriptAlias /app/ /srv/app.wsgi` serves
/// `/app/` (SCRIPT_NAME `/app/`) but maps `/app/x` to the missing file
/// `/srv/app.wsgix`: the location and the path should both end in '/'
/// or neither, as mod_wsgi's documentation says.
fn prefix_target(alias: &ScriptAlias, uri: &[u8], matched: usize) -> Vec<u8> {
    let rest = if alias.location == "/" {
        uri
    } else {
        &uri[matched..]
    };
    let mut f = alias.path.as_bytes().to_vec();
    f.extend_from_slice(rest);
    f
}

/// `$0`..`$9` substitution as ap_pregsub does it.
fn regex_target(template: &str, uri: &[u8], m: &[(usize, usize)]) -> Vec<u8> {
    let t = template.as_bytes();
    let mut out = Vec::with_capacity(t.len() + uri.len());
    let mut i = 0;
    while i < t.len() {
        let c = t[i];
        if (c == b'$' || c == b'\\') && i + 1 < t.len() && t[i + 1].is_ascii_digit() {
            let n = (t[i + 1] - b'0') as usize;
            if let Some(&(s, e)) = m.get(n) {
                out.extend_from_slice(&uri[s..e]);
            }
            i += 2;
        } else if c == b'\\' && i + 1 < t.len() && (t[i + 1] == b'$' || t[i + 1] == b'\\') {
            out.push(t[i + 1]);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

pub(crate) fn translate_name(r: &Request) -> c_int {
    let sc = server_config(r.server());
    if sc.script_aliases().is_empty() {
        return crate::httpd::DECLINED;
    }
    let uri = r.uri();
    let ub = uri.to_bytes();
    if ub.first() != Some(&b'/') {
        return crate::httpd::DECLINED;
    }
    for alias in sc.script_aliases() {
        let target = if alias.is_regex {
            let Some(h) = alias.compiled else { continue };
            let Some(m) = regex_match(h, uri) else {
                continue;
            };
            let end = m.first().map(|x| x.1).unwrap_or(0);
            let mut t = regex_target(&alias.path, ub, &m);
            t.extend_from_slice(&ub[end..]);
            t
        } else {
            let Some(n) = alias_matches(ub, alias.location.as_bytes()) else {
                continue;
            };
            prefix_target(alias, ub, n)
        };
        {
            // Through the `log` crate: Rust records reach Apache's log, tagged
            // with the request, under `LogLevel wsgi:debug`.
            let _current = CurrentRequest::enter(r);
            rlog::debug!(
                "mod_wsgi: WSGIScriptAlias mapped {} to {}",
                uri.to_string_lossy(),
                String::from_utf8_lossy(&target)
            );
        }
        r.set_filename(&target);
        r.set_handler(HANDLER);
        r.notes().set(c"alias-forced-type", HANDLER);
        let note = |k: &CStr, v: &Option<String>| {
            if let Some(v) = v {
                r.notes().set(k, &Request::owned_cstring(v.as_bytes()));
            }
        };
        note(NOTE_PROCESS_GROUP, &alias.process_group);
        note(NOTE_APPLICATION_GROUP, &alias.application_group);
        note(NOTE_CALLABLE_OBJECT, &alias.callable_object);
        if let Some(p) = alias.pass_authorization {
            r.notes()
                .set(NOTE_PASS_AUTHORIZATION, if p { c"1" } else { c"0" });
        }
        return crate::httpd::OK;
    }
    crate::httpd::DECLINED
}

// ---------------------------------------------------------------- handler

fn status(code: u32) -> c_int {
    code as c_int
}

fn note<'r>(r: &'r Request, k: &CStr) -> Option<&'r str> {
    r.notes().get(k).and_then(|v| v.to_str().ok())
}

pub(crate) fn handler(r: &Request) -> c_int {
    let dc = dir_config(r);
    // A WSGIHandlerScript named by SetHandler/AddHandler runs its script's
    // `handle_request` for the requested file instead of the file itself.
    let handler_script = match r.handler() {
        Some(h) if h == HANDLER || h == HANDLER_ALT => None,
        Some(h) => match h.to_str().ok().and_then(|h| dc.handler_script(h)) {
            Some(hs) => Some(hs),
            None => return crate::httpd::DECLINED,
        },
        None => return crate::httpd::DECLINED,
    };
    let _current = CurrentRequest::enter(r);
    let pid = crate::process_id();
    let filename = r
        .filename()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aliased = r.notes().get(c"alias-forced-type").is_some();
    // The requested file of a handler script is data, not a program.
    if handler_script.is_none() && !aliased && !r.exec_cgi_allowed() {
        log::request(
            r,
            Level::Error,
            &format!("Options ExecCGI is off in this directory: {filename}"),
        );
        return status(sys::HTTP_FORBIDDEN);
    }
    if r.is_directory() {
        log::request(
            r,
            Level::Error,
            &format!(
                "mod_wsgi (pid={pid}): Attempt to invoke directory as WSGI application: {filename}"
            ),
        );
        return status(sys::HTTP_FORBIDDEN);
    }
    if !r.is_regular_file() {
        log::request(
            r,
            Level::Error,
            &format!(
                "mod_wsgi (pid={pid}): Target WSGI script not found or unable to stat: {filename}"
            ),
        );
        return status(sys::HTTP_NOT_FOUND);
    }
    if let Some(p) = handler_script.and_then(|h| h.pass_authorization) {
        r.notes()
            .set(NOTE_PASS_AUTHORIZATION, if p { c"1" } else { c"0" });
    }
    if let Err(st) = r.setup_client_block(dc.chunked_request()) {
        return st;
    }

    let server = r.server();
    let host_header = r.hostname().and_then(|h| h.to_str().ok());
    let mut vars = cgi_vars(r, dc);
    // WSGIMapHEADToGET: let the application produce a body for HEAD when
    // asked to, or (Auto) when a content filter might need it to compute
    // headers such as Content-Length or ETag. httpd still sends no body.
    if r.header_only() {
        let map = match dc.map_head_to_get() {
            config::MapHeadToGet::On => true,
            config::MapHeadToGet::Off => false,
            config::MapHeadToGet::Auto => r.has_content_filters(),
        };
        if map {
            for (k, v) in vars.iter_mut() {
                if *k == b"REQUEST_METHOD" {
                    *v = b"GET";
                }
            }
        }
    }
    let var = |k: &[u8]| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let path_info = var(b"PATH_INFO").unwrap_or_default();
    let script_name = config::group::resource_script_name(
        &r.uri().to_string_lossy(),
        &path_info,
        server_config(server).case_sensitivity(),
    );
    // %{ENV:name}: r->notes, then the request's environment, then the process's.
    let env_lookup = |k: &str| {
        let ck = Request::owned_cstring(k.as_bytes());
        r.notes()
            .get(&ck)
            .map(|v| v.to_string_lossy().into_owned())
            .or_else(|| var(k.as_bytes()))
            .or_else(|| std::env::var(k).ok())
    };
    let gcx = GroupContext {
        server_hostname: server.hostname(),
        server_port: r.server_port(),
        host_header,
        script_name: &script_name,
        env: &env_lookup,
    };
    // A handler script's own options win over the alias's and the
    // directory's; its callable is always `handle_request`.
    let mut process_group_t = handler_script
        .and_then(|h| h.process_group.as_deref())
        .or_else(|| note(r, NOTE_PROCESS_GROUP))
        .unwrap_or(dc.process_group())
        .to_string();
    let mut application_group_t = handler_script
        .and_then(|h| h.application_group.as_deref())
        .or_else(|| note(r, NOTE_APPLICATION_GROUP))
        .unwrap_or(dc.application_group())
        .to_string();
    let mut callable_t = if handler_script.is_some() {
        "handle_request".to_string()
    } else {
        note(r, NOTE_CALLABLE_OBJECT)
            .unwrap_or(dc.callable_object())
            .to_string()
    };
    // WSGIDispatchScript: may override all three for this request.
    if let Some(ds) = dc.dispatch_script() {
        let current = crate::dispatch::Current {
            process_group: &config::expand_process_group(&process_group_t, &gcx),
            application_group: &config::expand_application_group(&application_group_t, &gcx),
            callable_object: &config::expand_callable_object(&callable_t, &gcx),
        };
        match crate::dispatch::run(r, ds, &vars, &current) {
            Ok(choice) => {
                if let Some(v) = choice.process_group {
                    process_group_t = v;
                }
                if let Some(v) = choice.application_group {
                    application_group_t = v;
                }
                if let Some(v) = choice.callable_object {
                    callable_t = v;
                }
            }
            Err(()) => return status(sys::HTTP_INTERNAL_SERVER_ERROR),
        }
    }
    let process_group = config::expand_process_group(&process_group_t, &gcx);
    let application_group = config::expand_application_group(&application_group_t, &gcx);
    let callable = config::expand_callable_object(&callable_t, &gcx);
    let handler_path = handler_script.map(|h| h.path.as_str()).unwrap_or("");

    // WSGIRestrictProcess, and mod_wsgi's rule that a group declared in a
    // VirtualHost serves only servers with the same ServerName.
    let daemon = crate::module::globals().and_then(|g| g.find_daemon(&process_group));
    let from = config::ServerScope {
        hostname: (!server.hostname().is_empty()).then(|| server.hostname().to_string()),
        is_virtual: server.is_virtual(),
        server_id: server.id(),
    };
    let daemon_serves = |d: &config::DaemonProcess| {
        let declared_in = crate::httpd::Server::by_id(d.scope.server_id)
            .map(|s| s.hostname())
            .unwrap_or("");
        d.scope.serves_request_of(&from, declared_in)
    };
    if !dc.may_select(&process_group) || daemon.is_some_and(|d| !daemon_serves(d)) {
        let shown = if process_group.is_empty() {
            "%{GLOBAL}"
        } else {
            process_group.as_str()
        };
        log::request(
            r,
            Level::Error,
            &format!(
                "mod_wsgi (pid={pid}): Daemon process called '{shown}' cannot be accessed by this WSGI application: {filename}"
            ),
        );
        return status(sys::HTTP_INTERNAL_SERVER_ERROR);
    }
    if !process_group.is_empty() {
        let known = daemon.is_some();
        if !known {
            log::request(
                r,
                Level::Error,
                &format!(
                    "mod_wsgi (pid={pid}): No WSGI daemon process called '{process_group}' has been configured: {filename}"
                ),
            );
            return status(sys::HTTP_INTERNAL_SERVER_ERROR);
        }
        // ---- daemon mode (branch daemon): hand the request to the group.
        if let Some((socket, group, _)) = crate::daemon::parent::find_group(&process_group) {
            let target = crate::daemon::client::Target {
                script_filename: &filename,
                application_group: &application_group,
                callable_object: &callable,
                handler_script: handler_path,
                script_reloading: dc.script_reloading(),
                error_override: dc.error_override(),
                enable_sendfile: dc.enable_sendfile(),
            };
            return crate::daemon::client::forward(r, group, &socket, &vars, &target);
        }
        // ---- end daemon mode
    }

    if process_group.is_empty() && server_config(server).restrict_embedded() {
        log::request(
            r,
            Level::Error,
            &format!(
                "mod_wsgi (pid={pid}): Embedded mode of mod_wsgi disabled by runtime configuration: {filename}"
            ),
        );
        return status(sys::HTTP_INTERNAL_SERVER_ERROR);
    }

    let Some(process) = PROCESS.get() else {
        log::request(
            r,
            Level::Error,
            &format!("mod_wsgi (pid={pid}): Python is not initialised in this process."),
        );
        return status(sys::HTTP_INTERNAL_SERVER_ERROR);
    };
    if let Some(why) = &process.failed {
        log::request(
            r,
            Level::Error,
            &format!(
                "mod_wsgi (pid={pid}): Python could not be initialised, so '{filename}' cannot run: {why}"
            ),
        );
        return status(sys::HTTP_INTERNAL_SERVER_ERROR);
    }
    let script_path = if handler_path.is_empty() {
        filename.as_str()
    } else {
        handler_path
    };
    note_group(r, process, &application_group, script_path);

    let request_id = r.log_id().to_string_lossy().into_owned();
    let total = process.total_requests.fetch_add(1, Ordering::Relaxed) + 1;
    let (thread_id, thread_requests) = wsgi::thread_counters();
    let url_scheme = environ::url_scheme(|k| var(k));
    let port = r.local_port().to_string();
    let extras = environ::Extras {
        process_group: &process_group,
        application_group: &application_group,
        callable_object: &callable,
        handler_script: handler_path,
        script_reloading: dc.script_reloading(),
        request_id: &request_id,
        request_start: r.request_time(),
        script_start: wsgi::now_micros(),
        enable_sendfile: dc.enable_sendfile(),
        multithread: process.multithread,
        multiprocess: process.multiprocess,
        url_scheme,
        total_requests: total,
        thread_id,
        thread_requests,
        listener_host: "",
        listener_port: &port,
        daemon: None,
    };
    let reqlog = Arc::new(ApacheRequestLog::new(r));
    // WSGIErrorOverride has no effect in embedded mode, as with mod_wsgi
    // (whose documentation says so): only daemon mode applies it.
    let outcome = init::with_gil(|py| {
        run_embedded(
            py,
            r,
            process,
            &filename,
            &callable,
            &vars,
            &extras,
            dc.script_reloading(),
            dc.enable_sendfile(),
            reqlog.clone(),
        )
    });
    reqlog.end();
    let outcome = match outcome {
        Ok(o) => o,
        Err(code) => return code,
    };
    match outcome {
        response::Outcome::Complete => crate::httpd::OK,
        response::Outcome::FailedBeforeHeaders => status(sys::HTTP_INTERNAL_SERVER_ERROR),
        response::Outcome::FailedAfterHeaders => {
            r.withhold_last_chunk();
            r.abort_connection();
            crate::httpd::OK
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_embedded(
    py: Python<'_>,
    r: &Request,
    process: &Process,
    filename: &str,
    callable: &str,
    vars: &[(&[u8], &[u8])],
    extras: &environ::Extras<'_>,
    reload: bool,
    sendfile: bool,
    reqlog: Arc<ApacheRequestLog>,
) -> Result<response::Outcome, c_int> {
    let cx = script::LoadContext {
        process_group: extras.process_group,
        application_group: extras.application_group,
        request_id: extras.request_id,
    };
    // A handler script is loaded in place of the requested file.
    let (script_path, mtime) = if extras.handler_script.is_empty() {
        (filename, r.file_mtime())
    } else {
        let h = extras.handler_script;
        (h, script::file_mtime(h))
    };
    let app = match script::load_application_or(
        py,
        &process.scripts,
        script_path,
        mtime,
        reload,
        callable,
        &cx,
        &*reqlog,
    ) {
        Ok(app) => app,
        // A script without the callable is "not found", as with mod_wsgi.
        Err(script::Unavailable::NoCallable) => return Err(status(sys::HTTP_NOT_FOUND)),
        Err(script::Unavailable::Failed) => return Err(status(sys::HTTP_INTERNAL_SERVER_ERROR)),
    };
    let sink = ApacheSink::new(r, sendfile, None);
    let body = Box::new(ApacheBody::new(r));
    Ok(response::serve(
        py,
        &app,
        vars,
        extras,
        body,
        Box::new(sink),
        r.header_only(),
        reqlog,
        filename,
    ))
}

/// The CGI variables of the request, as ordered byte pairs borrowed from
/// r->subprocess_env (built by httpd's own ap_add_cgi_vars).
fn cgi_vars<'r>(r: &'r Request, dc: &DirConfig) -> Vec<(&'r [u8], &'r [u8])> {
    // Header names with anything but letters, digits and '-' could pose as
    // other headers once mapped to HTTP_*; mod_wsgi drops them.
    let bad: Vec<std::ffi::CString> = r
        .headers_in()
        .iter()
        .filter(|(k, _)| !wsgi::validate::request_header_name_ok(k.to_bytes()))
        .map(|(k, _)| k.to_owned())
        .collect();
    for k in &bad {
        r.headers_in().unset(k);
    }
    r.add_cgi_vars();
    let env = r.subprocess_env();
    let pass_auth = match note(r, NOTE_PASS_AUTHORIZATION) {
        Some(v) => v == "1",
        None => dc.pass_authorization(),
    };
    if pass_auth {
        if let Some(a) = r.headers_in().get(c"Authorization") {
            env.set(c"HTTP_AUTHORIZATION", a);
        }
    } else {
        env.unset(c"HTTP_AUTHORIZATION");
    }
    // httpoxy: a client's "Proxy:" header must never become HTTP_PROXY.
    env.unset(c"HTTP_PROXY");
    // mod_wsgi always sets both, empty when httpd left them out.
    let script_name = env
        .get(c"SCRIPT_NAME")
        .map(|v| v.to_owned())
        .unwrap_or_default();
    let path_info = env
        .get(c"PATH_INFO")
        .map(|v| v.to_owned())
        .unwrap_or_default();
    env.set(c"SCRIPT_NAME", &script_name);
    env.set(c"PATH_INFO", &path_info);
    env.set(c"mod_wsgi.script_name", &script_name);
    env.set(c"mod_wsgi.path_info", &path_info);
    // The connection's listener, set here (not by the process that runs
    // the application) so that a daemon process sees the Apache child's.
    let host = Request::owned_cstring(r.listener_host().as_bytes());
    let port = Request::owned_cstring(r.local_port().to_string().as_bytes());
    env.set(c"mod_wsgi.listener_host", &host);
    env.set(c"mod_wsgi.listener_port", &port);
    apply_trusted_proxy_headers(r, dc);
    // Sized once: grown by doubling, the vector would leave a chunk of
    // each size it passed through in this Apache thread's malloc cache
    // (reallocation never takes from it), for every thread of the child.
    let entries = env.iter();
    let mut vars = Vec::with_capacity(entries.size_hint().1.unwrap_or(0));
    vars.extend(entries.map(|(k, v)| (k.to_bytes(), v.to_bytes())));
    vars
}

/// WSGITrustedProxyHeaders / WSGITrustedProxies: honour the trusted
/// X-Forwarded-* headers of a trusted proxy, and remove every other header
/// of the same kind so an application cannot be fooled by a client.
fn apply_trusted_proxy_headers(r: &Request, dc: &DirConfig) {
    let headers = dc.trusted_proxy_headers();
    if headers.is_empty() {
        return;
    }
    let env = r.subprocess_env();
    let lookup = |k: &str| {
        let ck = Request::owned_cstring(k.as_bytes());
        env.get(&ck).map(|v| v.to_string_lossy().into_owned())
    };
    let proxies = dc.trusted_proxies();
    let is_trusted =
        |ip: std::net::IpAddr| proxies.is_some_and(|l| l.iter().any(|p| p.contains(ip)));
    let edits = wsgi::proxy::apply(
        &lookup,
        headers,
        proxies.map(|_| &is_trusted as &dyn Fn(std::net::IpAddr) -> bool),
    );
    for k in &edits.remove {
        env.unset(&Request::owned_cstring(k.as_bytes()));
    }
    for (k, v) in &edits.set {
        env.set(
            &Request::owned_cstring(k.as_bytes()),
            &Request::owned_cstring(v.as_bytes()),
        );
    }
    if let Some(scheme) = edits.url_scheme {
        env.set(
            c"mod_wsgi.url_scheme",
            &Request::owned_cstring(scheme.as_bytes()),
        );
    }
}

/// Logs once per process, when the start-up check could not foresee it
/// (groups from `%{ENV:...}`, a dispatch script, ...), that two scripts
/// ran in different application groups of this one interpreter:
/// sub-interpreters are not implemented yet.
fn note_group(r: &Request, process: &Process, group: &str, script: &str) {
    if process.groups_warned.load(Ordering::Relaxed) || SHARING_WARNED.load(Ordering::Relaxed) {
        return;
    }
    let mut seen = process
        .groups_seen
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (group.to_string(), script.to_string());
    if seen.contains(&key) {
        return;
    }
    let other = seen
        .iter()
        .find(|(g, s)| g != group && s != script)
        .cloned();
    seen.insert(key);
    if let Some((other_group, other_script)) = other {
        process.groups_warned.store(true, Ordering::Relaxed);
        log::request(
            r,
            Level::Warning,
            &format!(
                "mod_wsgi (pid={}): Application groups '{other_group}' ('{other_script}') and '{group}' \
                 ('{script}') share one Python interpreter in this process: mod_wsgi-rs does not isolate \
                 application groups in sub-interpreters yet. Use 'WSGIApplicationGroup %{{GLOBAL}}' to \
                 silence this, or separate daemon process groups.",
                crate::process_id(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_prefixes() {
        assert_eq!(alias_matches(b"/myapp", b"/myapp"), Some(6));
        assert_eq!(alias_matches(b"/myapp/x/y", b"/myapp"), Some(6));
        assert_eq!(alias_matches(b"/myappx", b"/myapp"), None);
        assert_eq!(alias_matches(b"//myapp//x", b"/myapp"), Some(7));
        assert_eq!(alias_matches(b"/", b"/"), Some(1));
        assert_eq!(alias_matches(b"/anything", b"/"), Some(1));
        assert_eq!(alias_matches(b"/other", b"/myapp"), None);
    }

    #[test]
    fn targets() {
        let a = ScriptAlias {
            location: "/".into(),
            path: "/srv/app.wsgi".into(),
            ..Default::default()
        };
        let uri = b"/foo/bar";
        let n = alias_matches(uri, b"/").unwrap();
        assert_eq!(prefix_target(&a, uri, n), b"/srv/app.wsgi/foo/bar");
        let a = ScriptAlias {
            location: "/myapp".into(),
            path: "/srv/app.wsgi".into(),
            ..Default::default()
        };
        assert_eq!(prefix_target(&a, b"/myapp/x", 6), b"/srv/app.wsgi/x");
        assert_eq!(prefix_target(&a, b"/myapp", 6), b"/srv/app.wsgi");
        // A location ending in '/' is cut where it matched, as mod_wsgi does.
        let a = ScriptAlias {
            location: "/app/".into(),
            path: "/srv/app.wsgi".into(),
            ..Default::default()
        };
        assert_eq!(prefix_target(&a, b"/app/", 5), b"/srv/app.wsgi");
        assert_eq!(prefix_target(&a, b"/app/x", 5), b"/srv/app.wsgix");
        let a = ScriptAlias {
            location: "/dir/".into(),
            path: "/srv/scripts/".into(),
            ..Default::default()
        };
        assert_eq!(
            prefix_target(&a, b"/dir/app.wsgi/x", 5),
            b"/srv/scripts/app.wsgi/x"
        );
        assert_eq!(
            regex_target("/srv/$1.wsgi", b"/abc/def", &[(0, 4), (1, 4)]),
            b"/srv/abc.wsgi"
        );
    }
}

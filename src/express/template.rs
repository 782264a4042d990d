//! What `wsgi-express` writes into the server root: httpd.conf, the
//! handler.wsgi that loads the application, the apachectl script, and the
//! start-up banner. Pure functions of a resolved [`Plan`]; no I/O.
//!
//! The shape follows mod_wsgi-express's generated configuration (daemon
//! process group named HOST:PORT, static files in the document root served
//! before the application, a RequestReadTimeout, the MPM sized from the
//! request capacity), written for Apache 2.4 only (`Require`, not
//! `Order`/`Allow`), and without `<IfDefine>` switches: each run writes a
//! configuration with exactly what its flags asked for.
#![forbid(unsafe_code)]

use super::options::Options;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Everything the files are generated from: the options plus what was
/// resolved against the machine (absolute paths, the user, Apache's
/// location, the locale...).
#[derive(Debug, Clone)]
pub struct Plan {
    pub o: Options,
    /// Host name shown and used as ServerName ("localhost" without --host).
    pub host: String,
    pub server_root: PathBuf,
    pub httpd_conf: PathBuf,
    pub handler_script: PathBuf,
    pub document_root: PathBuf,
    pub working_directory: PathBuf,
    pub python_eggs: PathBuf,
    pub pid_file: PathBuf,
    /// A file path, or /dev/stderr with --log-to-terminal.
    pub error_log: String,
    pub access_log: String,
    pub startup_log: Option<String>,
    /// Absolute script path, or the module name for --application-type module.
    pub entry_point: String,
    pub python_paths: Vec<String>,
    pub python_home: Option<PathBuf>,
    pub mount_point: String,
    /// (URL path, absolute target, target is a directory)
    pub url_aliases: Vec<(String, PathBuf, bool)>,
    pub include_files: Vec<PathBuf>,
    pub ssl_certificate_file: Option<PathBuf>,
    pub ssl_certificate_key_file: Option<PathBuf>,
    pub user: String,
    pub group: String,
    pub uid: u32,
    pub httpd_executable: PathBuf,
    pub modules_directory: PathBuf,
    pub mod_wsgi_so: PathBuf,
    pub mime_types: PathBuf,
    /// "event", "worker" or "prefork": the first of these Apache has.
    pub mpm: &'static str,
    pub locale: String,
    pub process_group: String,
    pub application_group: String,
    /// False while the module still runs daemon process groups embedded:
    /// the banner then says so instead of promising daemon processes.
    pub daemon_mode_available: bool,
    /// The command line, recorded in apachectl.
    pub argv: Vec<String>,
}

/// Apache's MPM sizing, as mod_wsgi-express computes it from the request
/// capacity (more client connections than application threads, so that
/// static files and queued requests do not starve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub processes: u32,
    pub threads: u32,
    pub prefork_max_clients: u32,
    pub prefork_start_servers: u32,
    pub prefork_min_spare: u32,
    pub prefork_max_spare: u32,
    pub worker_server_limit: u32,
    pub worker_threads_per_child: u32,
    pub worker_max_clients: u32,
    pub worker_start_servers: u32,
    pub worker_min_spare_threads: u32,
    pub worker_max_spare_threads: u32,
}

impl Plan {
    pub fn processes(&self) -> u32 {
        self.o.processes.unwrap_or(1).max(1)
    }

    pub fn url(&self) -> String {
        let host = self.o.server_name.as_deref().unwrap_or(&self.host);
        if self.o.port == 80 {
            format!("http://{host}/")
        } else {
            format!("http://{host}:{}/", self.o.port)
        }
    }

    pub fn https_url(&self) -> Option<String> {
        let port = self.https_port()?;
        let host = self.o.server_name.as_deref().unwrap_or(&self.host);
        Some(if port == 443 {
            format!("https://{host}/")
        } else {
            format!("https://{host}:{port}/")
        })
    }

    /// The HTTPS port, when a certificate and key were given too.
    pub fn https_port(&self) -> Option<u16> {
        match (&self.ssl_certificate_file, &self.ssl_certificate_key_file) {
            (Some(_), Some(_)) => self.o.https_port,
            _ => None,
        }
    }

    /// Whether requests run in Apache's children: --embedded-mode, or a
    /// module that cannot run daemon processes yet.
    pub fn runs_embedded(&self) -> bool {
        self.o.embedded_mode || !self.daemon_mode_available
    }

    pub fn capacity(&self) -> Capacity {
        let processes = self.processes();
        let threads = self.o.threads.max(1);
        let total = processes * threads;
        if self.runs_embedded() {
            // The application runs in Apache's children: size them as the
            // request capacity, exactly, all started at once. The minimum
            // of spare workers stays at one: with a minimum as large as the
            // capacity, one busy worker is already "fewer spares than
            // wanted and no room for more", which Apache logs at level
            // error (AH10159 "server is within MinSpareThreads of
            // MaxRequestWorkers") on every maintenance pass.
            return Capacity {
                processes,
                threads,
                prefork_max_clients: total,
                prefork_start_servers: total,
                prefork_min_spare: 1,
                prefork_max_spare: total,
                worker_server_limit: processes,
                worker_threads_per_child: threads,
                worker_max_clients: total,
                worker_start_servers: processes,
                worker_min_spare_threads: 1,
                worker_max_spare_threads: total,
            };
        }
        let max_clients = match self.o.max_clients {
            Some(m) => m.max(total),
            None => 10 + 10u32.max(total * 3 / 2),
        };
        let pct = |f: f64, n: u32| (f * n as f64) as u32;
        let tpc = if max_clients > 20 {
            max_clients / (max_clients / 20 + 1)
        } else {
            10
        };
        let server_limit = max_clients.div_ceil(tpc);
        Capacity {
            processes,
            threads,
            prefork_max_clients: max_clients,
            prefork_start_servers: pct(0.05, max_clients).max(1),
            prefork_min_spare: pct(0.05, max_clients).max(1),
            prefork_max_spare: pct(0.1, max_clients).max(1),
            worker_server_limit: server_limit,
            worker_threads_per_child: tpc,
            worker_max_clients: server_limit * tpc,
            worker_start_servers: pct(0.2, server_limit).max(1),
            worker_min_spare_threads: tpc.max(pct(0.2, server_limit) * tpc),
            worker_max_spare_threads: tpc.max(pct(0.6, server_limit) * tpc),
        }
    }

    fn request_read_timeout(&self) -> String {
        let o = &self.o;
        let mut parts = Vec::new();
        if o.header_timeout > 0 {
            let mut s = format!("header={}", o.header_timeout);
            if o.header_max_timeout > 0 {
                let _ = write!(s, "-{}", o.header_max_timeout);
            }
            if o.header_min_rate > 0 {
                let _ = write!(s, ",MinRate={}", o.header_min_rate);
            }
            parts.push(s);
        }
        if o.body_timeout > 0 {
            let mut s = format!("body={}", o.body_timeout);
            if o.body_max_timeout > 0 {
                let _ = write!(s, "-{}", o.body_max_timeout);
            }
            if o.body_min_rate > 0 {
                let _ = write!(s, ",MinRate={}", o.body_min_rate);
            }
            parts.push(s);
        }
        parts.join(" ")
    }
}

/// A value inside single quotes in an Apache directive.
fn q(s: impl AsRef<str>) -> String {
    format!(
        "'{}'",
        s.as_ref().replace('\\', "\\\\").replace('\'', "\\'")
    )
}

fn qp(p: &std::path::Path) -> String {
    q(p.to_string_lossy())
}

/// A value inside double quotes (LogFormat strings, file names).
fn dq(s: impl AsRef<str>) -> String {
    format!(
        "\"{}\"",
        s.as_ref().replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// A Python string literal.
pub fn py_str(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn load(out: &mut String, module: &str, file: &str) {
    let _ = writeln!(
        out,
        "<IfModule !{module}>\nLoadModule {module} '${{MOD_WSGI_MODULES_DIRECTORY}}/{file}'\n</IfModule>"
    );
}

/// httpd.conf.
pub fn httpd_conf(p: &Plan) -> String {
    let o = &p.o;
    let cap = p.capacity();
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Generated by wsgi-express ({}); rewritten on every run.\n",
        env!("CARGO_PKG_NAME")
    );
    let _ = writeln!(c, "ServerName {}", p.host);
    let _ = writeln!(c, "ServerRoot {}", qp(&p.server_root));
    let _ = writeln!(c, "PidFile {}", qp(&p.pid_file));
    let _ = writeln!(c, "DefaultRuntimeDir {}\n", qp(&p.server_root));
    c.push_str("ServerTokens ProductOnly\nServerSignature Off\n\n");
    c.push_str("User ${MOD_WSGI_USER}\nGroup ${MOD_WSGI_GROUP}\n\n");
    match &o.host {
        Some(h) => {
            let _ = writeln!(c, "Listen {h}:{}", o.port);
        }
        None => {
            let _ = writeln!(c, "Listen {}", o.port);
        }
    }
    c.push('\n');

    load(
        &mut c,
        &format!("mpm_{}_module", p.mpm),
        &format!("mod_mpm_{}.so", p.mpm),
    );
    for (m, f) in [
        ("unixd_module", "mod_unixd.so"),
        ("authn_core_module", "mod_authn_core.so"),
        ("authz_core_module", "mod_authz_core.so"),
        ("authz_host_module", "mod_authz_host.so"),
        ("mime_module", "mod_mime.so"),
        ("rewrite_module", "mod_rewrite.so"),
        ("alias_module", "mod_alias.so"),
        ("dir_module", "mod_dir.so"),
        ("env_module", "mod_env.so"),
        ("headers_module", "mod_headers.so"),
        ("filter_module", "mod_filter.so"),
        ("reqtimeout_module", "mod_reqtimeout.so"),
    ] {
        load(&mut c, m, f);
    }
    if o.compress_responses {
        load(&mut c, "deflate_module", "mod_deflate.so");
    }
    if o.access_log {
        load(&mut c, "log_config_module", "mod_log_config.so");
    }
    if p.https_port().is_some() {
        load(&mut c, "socache_shmcb_module", "mod_socache_shmcb.so");
        load(&mut c, "ssl_module", "mod_ssl.so");
    }
    if o.http2 {
        load(&mut c, "http2_module", "mod_http2.so");
    }
    let _ = writeln!(c, "\nLoadModule wsgi_module {}\n", qp(&p.mod_wsgi_so));

    let _ = writeln!(c, "TypesConfig {}", qp(&p.mime_types));
    c.push_str("HostnameLookups Off\nMaxMemFree 64\n");
    let _ = writeln!(c, "Timeout {}", o.socket_timeout);
    let _ = writeln!(c, "ListenBacklog {}", o.server_backlog);
    if o.http2 {
        c.push_str("Protocols h2 h2c http/1.1\n");
    }
    let rrt = p.request_read_timeout();
    if !rrt.is_empty() {
        let _ = writeln!(c, "RequestReadTimeout {rrt}");
    }
    let _ = writeln!(c, "LimitRequestBody {}\n", o.limit_request_body);
    c.push_str("<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n\n");

    if let Some(home) = &p.python_home {
        let _ = writeln!(c, "WSGIPythonHome {}", qp(home));
    }
    if !p.runs_embedded() {
        let _ = writeln!(c, "WSGISocketPrefix {}/wsgi", p.server_root.display());
    }
    let pg = if o.embedded_mode {
        "%{GLOBAL}".to_string()
    } else {
        // WSGIRestrictEmbedded On (as mod_wsgi-express has) is left out on
        // purpose: while this module serves daemon groups embedded, it would
        // stop Python from starting anywhere.
        let mut d = format!("WSGIDaemonProcess {}", p.process_group);
        let mut opt = |k: &str, v: String| {
            let _ = write!(d, " \\\n   {k}={v}");
        };
        opt(
            "display-name",
            q(format!("(wsgi:{}:{}:{})", p.host, o.port, p.uid)),
        );
        opt("home", qp(&p.working_directory));
        if o.processes.is_some() {
            opt("processes", p.processes().to_string());
        }
        opt("threads", o.threads.to_string());
        opt("maximum-requests", o.maximum_requests.to_string());
        opt("python-path", q(p.python_paths.join(":")));
        opt("python-eggs", qp(&p.python_eggs));
        opt("lang", q(&p.locale));
        opt("locale", q(&p.locale));
        opt("listen-backlog", o.daemon_backlog.to_string());
        opt("queue-timeout", o.queue_timeout.to_string());
        opt("socket-timeout", o.socket_timeout.to_string());
        opt("connect-timeout", o.connect_timeout.to_string());
        opt("request-timeout", o.request_timeout.to_string());
        opt("inactivity-timeout", o.inactivity_timeout.to_string());
        opt("startup-timeout", o.startup_timeout.to_string());
        opt("deadlock-timeout", o.deadlock_timeout.to_string());
        opt("graceful-timeout", o.graceful_timeout.to_string());
        opt("eviction-timeout", o.eviction_timeout.to_string());
        opt("restart-interval", o.restart_interval.to_string());
        opt("shutdown-timeout", o.shutdown_timeout.to_string());
        opt("server-metrics", "Off".to_string());
        let _ = writeln!(c, "{d}");
        if p.daemon_mode_available {
            p.process_group.clone()
        } else {
            // This module build answers requests for a daemon group with
            // 500: serve embedded (the MPM is sized for it) until it can,
            // then the same command switches to the daemon group by itself.
            c.push_str(
                "# mod_wsgi-rs cannot run daemon processes yet: the application runs embedded.\n",
            );
            "%{GLOBAL}".to_string()
        }
    };
    c.push_str("\nWSGIPassAuthorization On\n");
    let _ = writeln!(c, "WSGIMapHEADToGET {}", o.map_head_to_get);
    if o.error_override {
        c.push_str("WSGIErrorOverride On\n");
    }
    if o.chunked_request {
        c.push_str("WSGIChunkedRequest On\n");
    }
    c.push('\n');

    if o.keep_alive_timeout != 0 {
        let _ = writeln!(c, "KeepAlive On\nKeepAliveTimeout {}", o.keep_alive_timeout);
    } else {
        c.push_str("KeepAlive Off\n");
    }
    if o.compress_responses {
        for t in [
            "text/plain",
            "text/html",
            "text/xml",
            "text/css",
            "text/javascript",
            "application/xhtml+xml",
            "application/javascript",
        ] {
            let _ = writeln!(c, "AddOutputFilterByType DEFLATE {t}");
        }
    }
    let _ = writeln!(c, "\nErrorLog {}", dq(&p.error_log));
    let _ = writeln!(c, "LogLevel {}", o.log_level);
    if o.access_log {
        c.push_str("LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common\n");
        c.push_str(
            "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b \\\"%{Referer}i\\\" \\\"%{User-agent}i\\\"\" combined\n",
        );
        let nick = match o.access_log_format.as_deref() {
            None => "common",
            Some(f @ ("common" | "combined")) => f,
            Some(f) => {
                let _ = writeln!(c, "LogFormat {} custom", dq(f));
                "custom"
            }
        };
        let _ = writeln!(c, "CustomLog {} {nick}", dq(&p.access_log));
    }
    c.push('\n');

    match p.mpm {
        "prefork" => {
            let _ = writeln!(
                c,
                "ServerLimit {0}\nStartServers {1}\nMaxRequestWorkers {0}\nMinSpareServers {2}\nMaxSpareServers {3}\nMaxConnectionsPerChild 0",
                cap.prefork_max_clients,
                cap.prefork_start_servers,
                cap.prefork_min_spare,
                cap.prefork_max_spare
            );
        }
        _ => {
            let _ = writeln!(
                c,
                "ServerLimit {}\nThreadLimit {}\nStartServers {}\nMaxRequestWorkers {}\nMinSpareThreads {}\nMaxSpareThreads {}\nThreadsPerChild {}\nMaxConnectionsPerChild 0\nThreadStackSize 262144",
                cap.worker_server_limit,
                cap.worker_threads_per_child,
                cap.worker_start_servers,
                cap.worker_max_clients,
                cap.worker_min_spare_threads,
                cap.worker_max_spare_threads,
                cap.worker_threads_per_child
            );
        }
    }
    c.push('\n');

    // --server-name: only that name (and aliases) is served; any other Host
    // gets 403 from the default virtual host, as with mod_wsgi-express.
    if let Some(name) = &o.server_name {
        let mut ports = vec![(o.port, false)];
        if let Some(sp) = p.https_port() {
            ports.push((sp, true));
        }
        for (port, ssl) in ports {
            let _ = writeln!(
                c,
                "<VirtualHost _default_:{port}>\n<Location />\n    Require all denied\n</Location>"
            );
            if ssl {
                ssl_lines(&mut c, p);
            }
            c.push_str("</VirtualHost>\n");
            let _ = writeln!(
                c,
                "<VirtualHost *:{port}>\nServerName {name}\nRewriteEngine On\nRewriteOptions Inherit"
            );
            if !o.server_aliases.is_empty() {
                let _ = writeln!(c, "ServerAlias {}", o.server_aliases.join(" "));
            }
            if ssl {
                ssl_lines(&mut c, p);
            }
            c.push_str("</VirtualHost>\n");
        }
    } else if let Some(sp) = p.https_port() {
        let _ = writeln!(
            c,
            "<VirtualHost _default_:{sp}>\nRewriteEngine On\nRewriteOptions Inherit"
        );
        ssl_lines(&mut c, p);
        c.push_str("</VirtualHost>\n");
    }
    if let Some(sp) = p.https_port() {
        match &o.host {
            Some(h) => {
                let _ = writeln!(c, "Listen {h}:{sp}");
            }
            None => {
                let _ = writeln!(c, "Listen {sp}");
            }
        }
    }
    c.push('\n');

    // Static files in the document root win over the application: a
    // server-context rewrite to the file's path maps the request before
    // WSGIScriptAlias is consulted.
    let _ = writeln!(c, "DocumentRoot {}", qp(&p.document_root));
    let _ = writeln!(
        c,
        "<Directory {}>\n    Require all granted\n</Directory>",
        qp(&p.document_root)
    );
    c.push_str(
        "RewriteEngine On\nRewriteCond %{DOCUMENT_ROOT}$1 -f\nRewriteRule ^(/.*)$ %{DOCUMENT_ROOT}$1 [L]\n\n",
    );

    // Longest first, so that /static/img is not hidden by /static.
    let mut aliases = p.url_aliases.clone();
    aliases.sort_by(|a, b| b.0.cmp(&a.0));
    for (url, target, is_dir) in &aliases {
        let _ = writeln!(c, "Alias {} {}", q(url), qp(target));
        if *is_dir {
            let _ = writeln!(
                c,
                "<Directory {}>\n    Require all granted\n</Directory>",
                qp(target)
            );
        } else {
            let dir = target.parent().unwrap_or(std::path::Path::new("/"));
            let file = target
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let _ = writeln!(
                c,
                "<Directory {}>\n<Files {}>\n    Require all granted\n</Files>\n</Directory>",
                qp(dir),
                q(file)
            );
        }
    }

    for (k, v) in &o.setenv {
        let _ = writeln!(c, "SetEnv {} {}", q(k), q(v));
    }
    for k in &o.passenv {
        let _ = writeln!(c, "PassEnv {}", q(k));
    }

    let _ = writeln!(
        c,
        "\n<Directory {}>\n<Files handler.wsgi>\n    Require all granted\n</Files>\n</Directory>",
        qp(&p.server_root)
    );
    let _ = writeln!(
        c,
        "WSGIScriptAlias {} {} \\\n    process-group={} application-group={}",
        q(&p.mount_point),
        qp(&p.handler_script),
        q(&pg),
        q(&p.application_group)
    );
    let _ = writeln!(
        c,
        "WSGIImportScript {} \\\n    process-group={} application-group={}",
        qp(&p.handler_script),
        q(&pg),
        q(&p.application_group)
    );

    for f in &p.include_files {
        let _ = writeln!(c, "\nInclude {}", qp(f));
    }
    c
}

fn ssl_lines(c: &mut String, p: &Plan) {
    if let (Some(cert), Some(key)) = (&p.ssl_certificate_file, &p.ssl_certificate_key_file) {
        let _ = writeln!(
            c,
            "SSLEngine On\nSSLCertificateFile {}\nSSLCertificateKeyFile {}",
            qp(cert),
            qp(key)
        );
    }
}

/// handler.wsgi: the script Apache maps to. It sets up sys.path and the
/// working directory, loads the user's script or module, and reloads it
/// when it changes (any of the application's own code files, with
/// --reload-on-changes). Independent of mod_wsgi's Python package, which
/// mod_wsgi-rs has no equivalent of.
pub fn handler_script(p: &Plan) -> String {
    let o = &p.o;
    let paths: Vec<String> = p.python_paths.iter().map(|s| py_str(s)).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Generated by wsgi-express: loads the application given on its command line."
    );
    let _ = writeln!(
        s,
        "working_directory = {}",
        py_str(&p.working_directory.to_string_lossy())
    );
    let _ = writeln!(s, "python_paths = [{}]", paths.join(", "));
    let _ = writeln!(s, "entry_point = {}", py_str(&p.entry_point));
    let _ = writeln!(s, "application_type = {}", py_str(&o.application_type));
    let _ = writeln!(s, "callable_object = {}", py_str(&o.callable_object));
    let _ = writeln!(
        s,
        "reload_on_changes = {}",
        if o.reload_on_changes { "True" } else { "False" }
    );
    s.push_str(HANDLER_BODY);
    s
}

const HANDLER_BODY: &str = r#"
import os
import sys
import threading
import traceback
import types

for _path in reversed([working_directory] + python_paths):
    if _path not in sys.path:
        sys.path.insert(0, _path)

try:
    os.chdir(working_directory)
except OSError as e:
    print('wsgi-express: cannot change to the working directory %r: %s' % (working_directory, e), file=sys.stderr)

_lock = threading.Lock()
_application = None
_mtimes = {}
_system = tuple(sorted({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}))


def _load():
    if application_type == 'module':
        import importlib
        name, _, attr = entry_point.partition(':')
        module = importlib.import_module(name)
        target = getattr(module, '__file__', None)
        label = 'module %r' % name
        attr = attr or callable_object
    else:
        module = types.ModuleType('__wsgi__')
        module.__file__ = entry_point
        with open(entry_point, 'rb') as fp:
            code = compile(fp.read(), entry_point, 'exec', dont_inherit=True)
        sys.modules['__wsgi__'] = module
        exec(code, module.__dict__)
        target = entry_point
        label = 'script %r' % entry_point
        attr = callable_object
    try:
        application = getattr(module, attr)
    except AttributeError:
        raise RuntimeError('Target WSGI %s does not contain WSGI application %r.' % (label, attr)) from None
    return application, target


def _own_files():
    """The application's code: modules loaded from outside the Python installation."""
    for name, module in list(sys.modules.items()):
        path = getattr(module, '__file__', None)
        if not path or name == __name__:
            continue
        real = os.path.realpath(path)
        if not real.startswith(_system):
            yield name, real


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _changed():
    for path, mtime in _mtimes.items():
        if _mtime(path) != mtime:
            return path
    return None


def _current():
    global _application
    app = _application
    if app is not None and not _mtimes:
        return app
    with _lock:
        if _application is not None:
            path = _changed()
            if path is None:
                return _application
            print('wsgi-express: %r changed, reloading the application.' % path, file=sys.stderr)
            if reload_on_changes:
                for name, _ in list(_own_files()):
                    sys.modules.pop(name, None)
            _application = None
        app, target = _load()
        _mtimes.clear()
        if target:
            _mtimes[os.path.realpath(target)] = _mtime(target)
        if reload_on_changes:
            for _, path in _own_files():
                _mtimes[path] = _mtime(path)
        _application = app
        return app


def application(environ, start_response):
    return _current()(environ, start_response)


try:
    _current()
except Exception:
    # Logged now, at start-up; every request retries (and fails with the
    # traceback in the error log) until the application loads.
    traceback.print_exc()
"#;

/// The apachectl script of setup-server: runs this Apache with this
/// configuration (start, stop, restart, graceful, configtest).
pub fn apachectl(p: &Plan) -> String {
    let sh = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let argv: Vec<String> = p.argv.iter().map(|a| sh(a)).collect();
    format!(
        r#"#!/bin/sh
# Generated by: {argv}

HTTPD={httpd}
HTTPD_CONF={conf}

MOD_WSGI_USER="${{MOD_WSGI_USER:-{user}}}"
MOD_WSGI_GROUP="${{MOD_WSGI_GROUP:-{group}}}"
MOD_WSGI_MODULES_DIRECTORY={modules}
export MOD_WSGI_USER MOD_WSGI_GROUP MOD_WSGI_MODULES_DIRECTORY

LANG={locale}
LC_ALL={locale}
export LANG LC_ALL

if test -f {root}/envvars; then
    . {root}/envvars
fi

if [ $# -eq 0 ]; then
    set -- -h
fi

case "$1" in
start|stop|restart|graceful|graceful-stop)
    exec "$HTTPD" -f "$HTTPD_CONF" -k "$@"
    ;;
configtest)
    exec "$HTTPD" -f "$HTTPD_CONF" -t
    ;;
*)
    exec "$HTTPD" -f "$HTTPD_CONF" "$@"
esac
"#,
        argv = argv.join(" ").replace('\n', " "),
        httpd = sh(&p.httpd_executable.to_string_lossy()),
        conf = sh(&p.httpd_conf.to_string_lossy()),
        user = p.user.replace(['"', '$', '`', '\\'], ""),
        group = p.group.replace(['"', '$', '`', '\\'], ""),
        modules = sh(&p.modules_directory.to_string_lossy()),
        locale = sh(&p.locale),
        root = sh(&p.server_root.to_string_lossy()),
    )
}

/// The start-up banner, line for line mod_wsgi-express's.
pub fn banner(p: &Plan, setup_server: bool) -> String {
    let o = &p.o;
    let cap = p.capacity();
    let mut b = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(b, "{k:<19}: {v}");
    };
    line("Server URL", p.url());
    if let Some(u) = p.https_url() {
        line("Server URL (HTTPS)", u);
    }
    line("Server Root", p.server_root.display().to_string());
    line("Server Conf", p.httpd_conf.display().to_string());
    line(
        "Error Log File",
        format!("{} ({})", p.error_log, o.log_level),
    );
    if o.access_log {
        line("Access Log File", p.access_log.clone());
    }
    if let Some(s) = &p.startup_log {
        line("Startup Log File", s.clone());
    }
    if setup_server {
        line(
            "Environ Variables",
            format!("{}/envvars", p.server_root.display()),
        );
        line(
            "Control Script",
            format!("{}/apachectl", p.server_root.display()),
        );
    }
    line(
        "Operating Mode",
        if o.embedded_mode {
            "embedded".to_string()
        } else if p.daemon_mode_available {
            "daemon".to_string()
        } else {
            "daemon (configured; this mod_wsgi-rs build still runs daemon groups embedded, in Apache's children)"
                .to_string()
        },
    );
    line(
        "Request Capacity",
        format!(
            "{} ({} process{} * {} threads)",
            cap.processes * cap.threads,
            cap.processes,
            if cap.processes == 1 { "" } else { "es" },
            cap.threads
        ),
    );
    line(
        "Request Timeout",
        format!("{} (seconds)", o.request_timeout),
    );
    if o.startup_timeout != 0 {
        line(
            "Startup Timeout",
            format!("{} (seconds)", o.startup_timeout),
        );
    }
    line(
        "Queue Backlog",
        format!("{} (connections)", o.daemon_backlog),
    );
    line("Queue Timeout", format!("{} (seconds)", o.queue_timeout));
    line(
        "Server Capacity",
        format!(
            "{} (event/worker), {} (prefork)",
            cap.worker_max_clients, cap.prefork_max_clients
        ),
    );
    line(
        "Server Backlog",
        format!("{} (connections)", o.server_backlog),
    );
    line("Locale Setting", p.locale.clone());
    b
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn plan(o: Options) -> Plan {
        let root = PathBuf::from("/tmp/mod_wsgi-rs-localhost:8000:0");
        Plan {
            host: o.host.clone().unwrap_or_else(|| "localhost".into()),
            httpd_conf: root.join("httpd.conf"),
            handler_script: root.join("handler.wsgi"),
            document_root: root.join("htdocs"),
            working_directory: PathBuf::from("/srv/app"),
            python_eggs: root.join("python-eggs"),
            pid_file: root.join("httpd.pid"),
            error_log: format!("{}/error_log", root.display()),
            access_log: format!("{}/access_log", root.display()),
            startup_log: None,
            entry_point: "/srv/app/app.wsgi".into(),
            python_paths: o.python_paths.clone(),
            python_home: None,
            mount_point: o.mount_point.clone(),
            url_aliases: Vec::new(),
            include_files: Vec::new(),
            ssl_certificate_file: None,
            ssl_certificate_key_file: None,
            user: "www-data".into(),
            group: "www-data".into(),
            uid: 0,
            httpd_executable: "/usr/sbin/apache2".into(),
            modules_directory: "/usr/lib/apache2/modules".into(),
            mod_wsgi_so: "/usr/lib/apache2/modules/mod_wsgi_rs.so".into(),
            mime_types: "/etc/mime.types".into(),
            mpm: "event",
            locale: "C.UTF-8".into(),
            process_group: format!("localhost:{}", o.port),
            application_group: "%{GLOBAL}".into(),
            daemon_mode_available: true,
            argv: vec!["wsgi-express".into(), "start-server".into()],
            server_root: root,
            o,
        }
    }

    #[test]
    fn banner_matches_mod_wsgi_express_defaults() {
        let b = banner(&plan(Options::default()), false);
        let want = "\
Server URL         : http://localhost:8000/
Server Root        : /tmp/mod_wsgi-rs-localhost:8000:0
Server Conf        : /tmp/mod_wsgi-rs-localhost:8000:0/httpd.conf
Error Log File     : /tmp/mod_wsgi-rs-localhost:8000:0/error_log (warn)
Operating Mode     : daemon
Request Capacity   : 5 (1 process * 5 threads)
Request Timeout    : 60 (seconds)
Startup Timeout    : 15 (seconds)
Queue Backlog      : 100 (connections)
Queue Timeout      : 45 (seconds)
Server Capacity    : 20 (event/worker), 20 (prefork)
Server Backlog     : 500 (connections)
Locale Setting     : C.UTF-8
";
        assert_eq!(b, want);
    }

    #[test]
    fn banner_counts_processes_and_modes() {
        let mut o = Options {
            processes: Some(3),
            threads: 10,
            ..Options::default()
        };
        let b = banner(&plan(o.clone()), false);
        assert!(
            b.contains("Request Capacity   : 30 (3 processes * 10 threads)\n"),
            "{b}"
        );
        // 30 threads -> 55 clients -> 4 children of 18 threads = 72
        assert!(
            b.contains("Server Capacity    : 72 (event/worker), 55 (prefork)\n"),
            "{b}"
        );
        o.embedded_mode = true;
        let b = banner(&plan(o), true);
        assert!(b.contains("Operating Mode     : embedded\n"));
        assert!(b.contains("Control Script     : /tmp/mod_wsgi-rs-localhost:8000:0/apachectl\n"));
        let mut p = plan(Options::default());
        p.daemon_mode_available = false;
        assert!(banner(&p, false).contains("Operating Mode     : daemon (configured;"));
    }

    #[test]
    fn capacity_as_mod_wsgi_express() {
        let c = plan(Options::default()).capacity();
        assert_eq!(
            (
                c.worker_server_limit,
                c.worker_threads_per_child,
                c.worker_max_clients,
                c.prefork_max_clients
            ),
            (2, 10, 20, 20)
        );
        let c = plan(Options {
            max_clients: Some(100),
            ..Options::default()
        })
        .capacity();
        assert_eq!(c.prefork_max_clients, 100);
        assert_eq!(c.worker_threads_per_child, 16);
        assert_eq!(c.worker_server_limit, 7);
    }

    #[test]
    fn daemon_config() {
        let c = httpd_conf(&plan(Options {
            processes: Some(2),
            threads: 4,
            ..Options::default()
        }));
        assert!(
            c.contains(
                "WSGIDaemonProcess localhost:8000 \\\n   display-name='(wsgi:localhost:8000:0)'"
            ),
            "{c}"
        );
        for want in [
            "processes=2 \\",
            "threads=4 \\",
            "request-timeout=60 \\",
            "queue-timeout=45 \\",
            "startup-timeout=15 \\",
            "graceful-timeout=15 \\",
            "home='/srv/app' \\",
            "WSGIScriptAlias '/' '/tmp/mod_wsgi-rs-localhost:8000:0/handler.wsgi' \\\n    process-group='localhost:8000' application-group='%{GLOBAL}'",
            "Listen 8000\n",
            "LimitRequestBody 10485760\n",
            "RequestReadTimeout header=15-30,MinRate=500 body=15,MinRate=500\n",
            "KeepAlive Off\n",
            "LogLevel warn\n",
            "LoadModule wsgi_module '/usr/lib/apache2/modules/mod_wsgi_rs.so'",
            "ThreadsPerChild 11\n",
        ] {
            assert!(c.contains(want), "missing {want:?} in\n{c}");
        }
        // Without --processes, mod_wsgi-express leaves processes= out (a
        // single process that is not flagged multiprocess).
        let c = httpd_conf(&plan(Options::default()));
        assert!(!c.contains("processes="));
    }

    #[test]
    fn embedded_config() {
        let c = httpd_conf(&plan(Options {
            embedded_mode: true,
            processes: Some(2),
            threads: 3,
            ..Options::default()
        }));
        assert!(!c.contains("WSGIDaemonProcess"));
        assert!(c.contains("process-group='%{GLOBAL}'"));
        assert!(
            c.contains("ServerLimit 2\n")
                && c.contains("StartServers 2\n")
                && c.contains("ThreadsPerChild 3\n")
                && c.contains("MaxRequestWorkers 6\n")
                && c.contains("MinSpareThreads 1\n"),
            "{c}"
        );
    }

    #[test]
    fn optional_sections() {
        let mut o = Options {
            host: Some("127.0.0.1".into()),
            keep_alive_timeout: 5,
            access_log: true,
            http2: true,
            server_name: Some("example.test".into()),
            https_port: Some(8443),
            log_level: "info".into(),
            setenv: vec![("K".into(), "it's".into())],
            ..Options::default()
        };
        o.passenv.push("HOME".into());
        let mut p = plan(o);
        p.ssl_certificate_file = Some("/c.crt".into());
        p.ssl_certificate_key_file = Some("/c.key".into());
        p.include_files.push("/x/extra.conf".into());
        p.url_aliases
            .push(("/static".into(), "/srv/static".into(), true));
        p.url_aliases
            .push(("/robots.txt".into(), "/srv/r/robots.txt".into(), false));
        let c = httpd_conf(&p);
        for want in [
            "Listen 127.0.0.1:8000\n",
            "Listen 127.0.0.1:8443\n",
            "KeepAlive On\nKeepAliveTimeout 5\n",
            "CustomLog \"/tmp/mod_wsgi-rs-localhost:8000:0/access_log\" common\n",
            "Protocols h2 h2c http/1.1\n",
            "LoadModule http2_module",
            "LoadModule ssl_module",
            "SSLCertificateFile '/c.crt'\nSSLCertificateKeyFile '/c.key'\n",
            "<VirtualHost *:8000>\nServerName example.test\n",
            "<VirtualHost _default_:8000>\n<Location />\n    Require all denied\n",
            "SetEnv 'K' 'it\\'s'\n",
            "PassEnv 'HOME'\n",
            "Include '/x/extra.conf'\n",
            "Alias '/static' '/srv/static'\n<Directory '/srv/static'>",
            "Alias '/robots.txt' '/srv/r/robots.txt'\n<Directory '/srv/r'>\n<Files 'robots.txt'>",
            "LogLevel info\n",
        ] {
            assert!(c.contains(want), "missing {want:?} in\n{c}");
        }
        let b = banner(&p, false);
        assert!(b.starts_with("Server URL         : http://example.test:8000/\nServer URL (HTTPS) : https://example.test:8443/\n"), "{b}");
        assert!(b.contains("Access Log File    : /tmp/mod_wsgi-rs-localhost:8000:0/access_log\n"));
    }

    #[test]
    fn handler_script_literals() {
        let mut o = Options {
            reload_on_changes: true,
            callable_object: "app".into(),
            ..Options::default()
        };
        o.python_paths.push("/a'b".into());
        let s = handler_script(&plan(o));
        assert!(s.contains("python_paths = ['/a\\'b']\n"), "{s}");
        assert!(s.contains("callable_object = 'app'\n"));
        assert!(s.contains("reload_on_changes = True\n"));
        assert_eq!(py_str("a\nb\\"), "'a\\x0ab\\\\'");
    }

    #[test]
    fn apachectl_quotes_paths() {
        let s = apachectl(&plan(Options::default()));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("HTTPD='/usr/sbin/apache2'\n"));
        assert!(s.contains("HTTPD_CONF='/tmp/mod_wsgi-rs-localhost:8000:0/httpd.conf'\n"));
        assert!(s.contains("MOD_WSGI_USER=\"${MOD_WSGI_USER:-www-data}\"\n"));
    }
}

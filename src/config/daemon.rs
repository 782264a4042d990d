//! WSGIDaemonProcess: every option mod_wsgi (4.9 to 6) accepts, with its
//! defaults and its validation sentences.
//!
//! What needs the system (user and group names to ids, `geteuid()` for
//! `chroot=`, `getpwuid` for `#uid` forms) is left to the caller: the
//! values are kept as written. See [`DaemonProcess::user`].
#![forbid(unsafe_code)]

use super::{ConfigError, GlobalConfig, GlobalContext, atoi, atoi64, on_off, parse_option};
use std::time::Duration;

/// mod_wsgi's `WSGI_LISTEN_BACKLOG`.
pub const DEFAULT_LISTEN_BACKLOG: i32 = 100;
/// What `header-buffer-size=0` (or unset) means: mod_wsgi's default.
pub const DEFAULT_HEADER_BUFFER_SIZE: u32 = 32768;
/// What `response-buffer-size=0` (or unset) means: mod_wsgi's default.
pub const DEFAULT_RESPONSE_BUFFER_SIZE: u32 = 65536;
/// `threads=` must be below this (mod_wsgi's `WSGI_STACK_LAST - 1`).
pub const THREADS_LIMIT: i32 = 0xffff - 1;

/// Options whose values the run-time layer acts on (`interrupt-timeout`
/// and `server-metrics` only at their "off" values: see
/// [`DaemonProcess::refuse_unimplemented`], which refuses the rest);
/// [`DaemonProcess::unimplemented_options`] reports the others a
/// configuration uses.
pub static IMPLEMENTED_OPTIONS: &[&str] = &[
    "user",
    "group",
    "supplementary-groups",
    "processes",
    "threads",
    "umask",
    "home",
    "lang",
    "locale",
    "python-home",
    "python-path",
    "python-eggs",
    "stack-size",
    "maximum-requests",
    "shutdown-timeout",
    "inactivity-timeout",
    "request-timeout",
    "graceful-timeout",
    "restart-interval",
    "connect-timeout",
    "socket-timeout",
    "listen-backlog",
    "display-name",
    "send-buffer-size",
    "receive-buffer-size",
    "header-buffer-size",
    "socket-user",
    "queue-timeout",
    "startup-timeout",
    "deadlock-timeout",
    "memory-limit",
    "virtual-memory-limit",
    "cpu-time-limit",
    "cpu-priority",
    "response-buffer-size",
    "response-socket-timeout",
    "eviction-timeout",
    "switch-interval",
    "script-user",
    "script-group",
    "interrupt-timeout",
    "server-metrics",
];

/// A WSGIDaemonProcess option mod_wsgi-rs parses but cannot honour yet:
/// Apache refuses to start rather than run without it.
fn not_implemented(option: &str, why: &str) -> ConfigError {
    ConfigError::msg(format!(
        "WSGIDaemonProcess option '{option}' is not implemented yet by mod_wsgi-rs{why}."
    ))
}

/// The server a directive appears in, as mod_wsgi checks it: a daemon
/// declared in a VirtualHost is only usable from servers with the same
/// ServerName.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerScope {
    /// `server_hostname` (None when not set when the directive was read).
    pub hostname: Option<String>,
    /// `is_virtual`: inside a `<VirtualHost>`.
    pub is_virtual: bool,
    /// Which server_rec the directive was read in: an opaque identity
    /// (httpd::Server::id), only ever compared, 0 when unknown. A daemon
    /// process logs what belongs to no request to that server's ErrorLog,
    /// as mod_wsgi does.
    pub server_id: usize,
}

impl ServerScope {
    /// Whether a directive read in `from` (WSGIImportScript, an alias that
    /// preloads) may name a daemon declared in `self`: mod_wsgi's
    /// configuration-time accessible/matchable rules. Requests follow
    /// [`Self::serves_request_of`].
    pub fn allows(&self, from: &ServerScope) -> Result<(), ConfigError> {
        if !self.is_virtual {
            return Ok(());
        }
        match (&from.hostname, &self.hostname) {
            (Some(a), Some(b)) if a != b => {
                Err(ConfigError::msg("WSGI process group not accessible."))
            }
            (None, Some(_)) | (Some(_), None) => {
                Err(ConfigError::msg("WSGI process group not matchable."))
            }
            _ => Ok(()),
        }
    }

    /// mod_wsgi's rule when a request selects a daemon group declared in
    /// `self`: a group declared at server level serves every request; one
    /// declared in a VirtualHost serves that VirtualHost's requests, and
    /// those of servers with the same ServerName. The names compared are
    /// the servers' as httpd completed them (a VirtualHost without
    /// ServerName takes the main server's), so the caller passes the
    /// declaring server's name as it is now; `from` is the request's server.
    pub fn serves_request_of(&self, from: &ServerScope, declaring_hostname_now: &str) -> bool {
        !self.is_virtual
            || self.server_id == from.server_id
            || from.hostname.as_deref().unwrap_or("") == declaring_hostname_now
    }
}

/// The checks mod_wsgi makes when a directive names a daemon process group
/// to preload into: it must be declared above, and reachable from here.
pub(crate) fn check_group_reachable(
    g: &GlobalConfig,
    name: &str,
    from: &ServerScope,
) -> Result<(), ConfigError> {
    let d = g
        .find_daemon(name)
        .ok_or_else(|| ConfigError::msg("WSGI process group not yet configured."))?;
    d.scope.allows(from)
}

/// One WSGIDaemonProcess line. Durations are whole seconds as mod_wsgi
/// reads them; `None` is mod_wsgi's 0 where 0 means "off" or "fall back".
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonProcess {
    /// The process group's name.
    pub name: String,
    /// 1-based position among all daemon groups (mod_wsgi's `id`, used in
    /// socket names). Set when added to [`GlobalConfig`].
    pub id: usize,
    /// Where it was declared.
    pub scope: ServerScope,
    /// `processes=`, default 1.
    pub processes: u32,
    /// `processes=` was given (then `wsgi.multiprocess` is True even for 1).
    pub multiprocess: bool,
    /// `threads=`, default 15; 0 is the "managed process" mode.
    pub threads: u32,
    /// `display-name=`; `%{GROUP}` means `(wsgi:NAME)`.
    pub display_name: Option<String>,
    /// `user=` as written (`name` or `#uid`); None: Apache's `User`.
    /// mod_wsgi refuses uid 0 ("WSGI process blocked from running as root.",
    /// checked here for `root` and `#0`; the caller must check names that
    /// resolve to 0) and resolves `#uid` to a name ("Couldn't determine
    /// user name from uid."). An unknown name makes httpd exit
    /// (`ap_uname2id`).
    pub user: Option<String>,
    /// `group=` as written (`name` or `#gid`); None: Apache's `Group`.
    pub group: Option<String>,
    /// `supplementary-groups=a,b`: None when not given (then `initgroups`);
    /// Some (possibly empty) when given (then `setgroups` with the primary
    /// group followed by these). Parsing stops at the first empty name.
    pub supplementary_groups: Option<Vec<String>>,
    /// `umask=` (octal).
    pub umask: Option<u32>,
    /// `chroot=` (deprecated; mod_wsgi also requires euid 0: "Cannot chroot
    /// WSGI daemon process when not root.", the caller's check).
    pub chroot: Option<String>,
    /// `home=`, absolute.
    pub home: Option<String>,
    /// `lang=` (LANG).
    pub lang: Option<String>,
    /// `locale=` (LC_ALL).
    pub locale: Option<String>,
    /// `python-home=`.
    pub python_home: Option<String>,
    /// `python-path=`, split on ':'.
    pub python_path: Vec<String>,
    /// `python-eggs=`.
    pub python_eggs: Option<String>,
    /// `stack-size=` in bytes.
    pub stack_size: Option<u32>,
    /// `maximum-requests=`, 0 = unlimited.
    pub maximum_requests: u64,
    /// `startup-timeout=`.
    pub startup_timeout: Option<Duration>,
    /// `shutdown-timeout=`, default 5 s.
    pub shutdown_timeout: Duration,
    /// `deadlock-timeout=`, default 300 s; None (0) disables detection.
    pub deadlock_timeout: Option<Duration>,
    /// `inactivity-timeout=`.
    pub inactivity_timeout: Option<Duration>,
    /// `request-timeout=`.
    pub request_timeout: Option<Duration>,
    /// `interrupt-timeout=` (mod_wsgi 6).
    pub interrupt_timeout: Option<Duration>,
    /// `graceful-timeout=`, default 15 s.
    pub graceful_timeout: Option<Duration>,
    /// `eviction-timeout=`; None falls back to `graceful_timeout`.
    pub eviction_timeout: Option<Duration>,
    /// `restart-interval=`.
    pub restart_interval: Option<Duration>,
    /// `connect-timeout=`, default 15 s.
    pub connect_timeout: Duration,
    /// `socket-timeout=`; None: Apache's `Timeout`.
    pub socket_timeout: Option<Duration>,
    /// `queue-timeout=`.
    pub queue_timeout: Option<Duration>,
    /// `listen-backlog=`, default 100.
    pub listen_backlog: i32,
    /// `socket-user=` as written (`#uid` is resolved by the caller:
    /// "Couldn't determine user name from socket user.").
    pub socket_user: Option<String>,
    /// `script-user=` as written ("Couldn't determine uid from script user.").
    pub script_user: Option<String>,
    /// `script-group=` as written ("Couldn't determine gid from script group.").
    pub script_group: Option<String>,
    /// `cpu-time-limit=` seconds.
    pub cpu_time_limit: Option<Duration>,
    /// `cpu-priority=` (nice value), default 0.
    pub cpu_priority: i32,
    /// `memory-limit=` bytes.
    pub memory_limit: Option<u64>,
    /// `virtual-memory-limit=` bytes.
    pub virtual_memory_limit: Option<u64>,
    /// `send-buffer-size=`; None: the system default.
    pub send_buffer_size: Option<u32>,
    /// `receive-buffer-size=`; None: the system default.
    pub receive_buffer_size: Option<u32>,
    /// `header-buffer-size=`; None: [`DEFAULT_HEADER_BUFFER_SIZE`].
    pub header_buffer_size: Option<u32>,
    /// `response-buffer-size=`; None: [`DEFAULT_RESPONSE_BUFFER_SIZE`].
    pub response_buffer_size: Option<u32>,
    /// `response-socket-timeout=`; 0 takes `socket_timeout` (as mod_wsgi
    /// resolves it at parse time), so None means Apache's `Timeout`.
    pub response_socket_timeout: Option<Duration>,
    /// `server-metrics=On|Off`, default Off.
    pub server_metrics: bool,
    /// `switch-interval=` seconds (mod_wsgi 6).
    pub switch_interval: Option<Duration>,
    /// `newrelic-config-file=` (mod_wsgi 4.x).
    pub newrelic_config_file: Option<String>,
    /// `newrelic-environment=` (mod_wsgi 4.x).
    pub newrelic_environment: Option<String>,
    /// The option names given, in order (for [`Self::unimplemented_options`]).
    pub options_given: Vec<&'static str>,
}

impl DaemonProcess {
    /// A group with every option at mod_wsgi's default.
    pub fn new(name: &str) -> DaemonProcess {
        DaemonProcess {
            name: name.to_string(),
            id: 0,
            scope: ServerScope::default(),
            processes: 1,
            multiprocess: false,
            threads: 15,
            display_name: None,
            user: None,
            group: None,
            supplementary_groups: None,
            umask: None,
            chroot: None,
            home: None,
            lang: None,
            locale: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            stack_size: None,
            maximum_requests: 0,
            startup_timeout: None,
            shutdown_timeout: Duration::from_secs(5),
            deadlock_timeout: Some(Duration::from_secs(300)),
            inactivity_timeout: None,
            request_timeout: None,
            interrupt_timeout: None,
            graceful_timeout: Some(Duration::from_secs(15)),
            eviction_timeout: None,
            restart_interval: None,
            connect_timeout: Duration::from_secs(15),
            socket_timeout: None,
            queue_timeout: None,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            socket_user: None,
            script_user: None,
            script_group: None,
            cpu_time_limit: None,
            cpu_priority: 0,
            memory_limit: None,
            virtual_memory_limit: None,
            send_buffer_size: None,
            receive_buffer_size: None,
            header_buffer_size: None,
            response_buffer_size: None,
            response_socket_timeout: None,
            server_metrics: false,
            switch_interval: None,
            newrelic_config_file: None,
            newrelic_environment: None,
            options_given: Vec::new(),
        }
    }

    /// Parses `name [option=value ...]` (everything but the cross-group
    /// checks, which [`apply_daemon_process`] adds).
    pub fn parse(args: &[&str]) -> Result<DaemonProcess, ConfigError> {
        let name = match args.first() {
            Some(n) if !n.is_empty() => *n,
            _ => {
                return Err(ConfigError::msg(
                    "Name of WSGI daemon process not supplied.",
                ));
            }
        };
        let mut d = DaemonProcess::new(name);
        for tok in &args[1..] {
            let Some((option, value)) = parse_option(tok) else {
                return Err(invalid_option());
            };
            let key = OPTIONS
                .iter()
                .copied()
                .find(|o| *o == option)
                .ok_or_else(invalid_option)?;
            d.set(key, &value)?;
            d.options_given.push(key);
        }
        if d.script_user.is_some() && d.script_group.is_some() {
            return Err(ConfigError::msg(
                "Only one of script-user and script-group allowed.",
            ));
        }
        if d.response_socket_timeout.is_none() {
            d.response_socket_timeout = d.socket_timeout;
        }
        Ok(d)
    }

    fn set(&mut self, key: &'static str, v: &str) -> Result<(), ConfigError> {
        // Most numeric options: empty is an error, then atoi, then a range.
        let int = |what: &str, ok: fn(i64) -> bool| -> Result<i64, ConfigError> {
            let bad = || ConfigError::msg(format!("Invalid {what} for WSGI daemon process."));
            if v.is_empty() {
                return Err(bad());
            }
            let n = i64::from(atoi(v));
            if ok(n) { Ok(n) } else { Err(bad()) }
        };
        let secs = |what: &str| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(int(what, |n| n >= 0)? as u64))
        };
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        let buffer = |what: &str, min: i64, tail: &str| -> Result<Option<u32>, ConfigError> {
            let n = int(what, |_| true)?;
            if n < min && n != 0 {
                return Err(ConfigError::msg(format!(
                    "{} buffer size must be >= {min} bytes, or 0 for {tail}.",
                    capitalise(what.trim_end_matches(" buffer size"))
                )));
            }
            Ok((n != 0).then_some(n as u32))
        };
        match key {
            "user" => {
                if v.is_empty() {
                    return Err(ConfigError::msg("Invalid user for WSGI daemon process."));
                }
                if v == "root" || (v.starts_with('#') && atoi(&v[1..]) == 0) {
                    return Err(ConfigError::msg(
                        "WSGI process blocked from running as root.",
                    ));
                }
                self.user = Some(v.to_string());
            }
            "group" => {
                if v.is_empty() {
                    return Err(ConfigError::msg("Invalid group for WSGI daemon process."));
                }
                self.group = Some(v.to_string());
            }
            "supplementary-groups" => {
                let groups = v
                    .split(',')
                    .take_while(|g| !g.is_empty())
                    .map(String::from)
                    .collect();
                self.supplementary_groups = Some(groups);
            }
            "processes" => {
                self.processes = int("process count", |n| n >= 1)? as u32;
                self.multiprocess = true;
            }
            "threads" => {
                self.threads =
                    int("thread count", |n| n >= 0 && n < i64::from(THREADS_LIMIT))? as u32;
            }
            "umask" => {
                self.umask =
                    Some(parse_umask(v).ok_or_else(|| {
                        ConfigError::msg("Invalid umask for WSGI daemon process.")
                    })?);
            }
            "chroot" => {
                if !v.starts_with('/') {
                    return Err(ConfigError::msg(
                        "Invalid chroot directory for WSGI daemon process.",
                    ));
                }
                self.chroot = Some(v.to_string());
            }
            "home" => {
                if !v.starts_with('/') {
                    return Err(ConfigError::msg(
                        "Invalid home directory for WSGI daemon process.",
                    ));
                }
                self.home = Some(v.to_string());
            }
            "lang" => self.lang = Some(v.to_string()),
            "locale" => self.locale = Some(v.to_string()),
            "python-home" => self.python_home = Some(v.to_string()),
            "python-path" => {
                self.python_path = if v.is_empty() {
                    Vec::new()
                } else {
                    v.split(':').map(String::from).collect()
                };
            }
            "python-eggs" => self.python_eggs = Some(v.to_string()),
            "stack-size" => self.stack_size = Some(int("stack size", |n| n > 0)? as u32),
            "maximum-requests" => {
                self.maximum_requests = int("request count", |n| n >= 0)? as u64;
            }
            "startup-timeout" => self.startup_timeout = nonzero(secs("startup timeout")?),
            "shutdown-timeout" => self.shutdown_timeout = secs("shutdown timeout")?,
            "deadlock-timeout" => self.deadlock_timeout = nonzero(secs("deadlock timeout")?),
            "inactivity-timeout" => {
                self.inactivity_timeout = nonzero(secs("inactivity timeout")?);
            }
            "request-timeout" => self.request_timeout = nonzero(secs("request timeout")?),
            "interrupt-timeout" => self.interrupt_timeout = nonzero(secs("interrupt timeout")?),
            "graceful-timeout" => self.graceful_timeout = nonzero(secs("graceful timeout")?),
            "eviction-timeout" => self.eviction_timeout = nonzero(secs("eviction timeout")?),
            "restart-interval" => self.restart_interval = nonzero(secs("restart interval")?),
            "connect-timeout" => self.connect_timeout = secs("connect timeout")?,
            "socket-timeout" => self.socket_timeout = nonzero(secs("socket timeout")?),
            "queue-timeout" => self.queue_timeout = nonzero(secs("queue timeout")?),
            "listen-backlog" => self.listen_backlog = int("listen backlog", |n| n >= 0)? as i32,
            "display-name" => self.display_name = Some(v.to_string()),
            "send-buffer-size" => {
                self.send_buffer_size = buffer("send buffer size", 512, "system default")?;
            }
            "receive-buffer-size" => {
                self.receive_buffer_size = buffer("receive buffer size", 512, "system default")?;
            }
            "header-buffer-size" => {
                self.header_buffer_size = buffer("header buffer size", 8192, "default")?;
            }
            "response-buffer-size" => {
                self.response_buffer_size = buffer("response buffer size", 65536, "default")?;
            }
            "response-socket-timeout" => {
                self.response_socket_timeout = nonzero(secs("response socket timeout")?);
            }
            "socket-user" => {
                if v.is_empty() {
                    return Err(ConfigError::msg(
                        "Invalid socket user for WSGI daemon process.",
                    ));
                }
                self.socket_user = Some(v.to_string());
            }
            "script-user" => {
                if v.is_empty() {
                    return Err(ConfigError::msg(
                        "Invalid script user for WSGI daemon process.",
                    ));
                }
                self.script_user = Some(v.to_string());
            }
            "script-group" => {
                if v.is_empty() {
                    return Err(ConfigError::msg(
                        "Invalid script group for WSGI daemon process.",
                    ));
                }
                self.script_group = Some(v.to_string());
            }
            "cpu-time-limit" => self.cpu_time_limit = nonzero(secs("CPU time limit")?),
            "cpu-priority" => self.cpu_priority = int("CPU priority", |_| true)? as i32,
            "memory-limit" => self.memory_limit = limit(v, "memory limit")?,
            "virtual-memory-limit" => {
                self.virtual_memory_limit = limit(v, "virtual memory limit")?;
            }
            "server-metrics" => {
                self.server_metrics = on_off(v).ok_or_else(|| {
                    ConfigError::msg("Invalid server metrics flag for WSGI daemon process.")
                })?;
            }
            "switch-interval" => {
                let s: f64 = v.trim().parse().unwrap_or(f64::NAN);
                if !(s.is_finite() && s > 0.0) {
                    return Err(ConfigError::msg(
                        "Invalid switch interval for WSGI daemon process.",
                    ));
                }
                self.switch_interval = Some(Duration::from_secs_f64(s));
            }
            "newrelic-config-file" => self.newrelic_config_file = Some(v.to_string()),
            "newrelic-environment" => self.newrelic_environment = Some(v.to_string()),
            _ => unreachable!("{key} is in OPTIONS"),
        }
        Ok(())
    }

    /// Refuses the options mod_wsgi-rs does not act on yet, so that a
    /// configuration relying on one fails to start instead of silently
    /// running without it. Their "off" values are accepted (wsgi-express
    /// writes `server-metrics=Off`, and `interrupt-timeout=0` is the
    /// default).
    pub fn refuse_unimplemented(&self) -> Result<(), ConfigError> {
        if self.chroot.is_some() {
            return Err(not_implemented(
                "chroot",
                " (mod_wsgi deprecated it; use a container instead)",
            ));
        }
        if self.interrupt_timeout.is_some_and(|t| !t.is_zero()) {
            return Err(not_implemented(
                "interrupt-timeout",
                " (only interrupt-timeout=0 is accepted: request-timeout restarts the process)",
            ));
        }
        if self.server_metrics {
            return Err(not_implemented(
                "server-metrics",
                " (only server-metrics=Off is accepted)",
            ));
        }
        for o in ["newrelic-config-file", "newrelic-environment"] {
            if self.options_given.contains(&o) {
                return Err(not_implemented(o, ""));
            }
        }
        Ok(())
    }

    /// The options this group uses that the run-time layer does not act on
    /// yet (those missing from [`IMPLEMENTED_OPTIONS`]), for a start-up log.
    pub fn unimplemented_options(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for o in &self.options_given {
            if !IMPLEMENTED_OPTIONS.contains(o) && !out.contains(o) {
                out.push(o);
            }
        }
        out
    }

    /// `display-name` as shown by `ps`: `%{GROUP}` becomes `(wsgi:NAME)`.
    pub fn display_name(&self) -> Option<String> {
        self.display_name.as_ref().map(|n| {
            if n == "%{GROUP}" {
                format!("(wsgi:{})", self.name)
            } else {
                n.clone()
            }
        })
    }
}

/// Every option name WSGIDaemonProcess accepts (mod_wsgi 4.9 to 6).
pub static OPTIONS: &[&str] = &[
    "user",
    "group",
    "supplementary-groups",
    "processes",
    "threads",
    "umask",
    "chroot",
    "home",
    "lang",
    "locale",
    "python-home",
    "python-path",
    "python-eggs",
    "stack-size",
    "maximum-requests",
    "startup-timeout",
    "shutdown-timeout",
    "deadlock-timeout",
    "inactivity-timeout",
    "request-timeout",
    "interrupt-timeout",
    "graceful-timeout",
    "eviction-timeout",
    "restart-interval",
    "connect-timeout",
    "socket-timeout",
    "queue-timeout",
    "listen-backlog",
    "display-name",
    "send-buffer-size",
    "receive-buffer-size",
    "header-buffer-size",
    "response-buffer-size",
    "response-socket-timeout",
    "socket-user",
    "script-user",
    "script-group",
    "cpu-time-limit",
    "cpu-priority",
    "memory-limit",
    "virtual-memory-limit",
    "server-metrics",
    "switch-interval",
    "newrelic-config-file",
    "newrelic-environment",
];

fn invalid_option() -> ConfigError {
    ConfigError::msg("Invalid option to WSGI daemon process definition.")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// `apr_atoi64`, negative rejected, 0 is "no limit".
fn limit(v: &str, what: &str) -> Result<Option<u64>, ConfigError> {
    let n = atoi64(v);
    if v.is_empty() || n < 0 {
        return Err(ConfigError::msg(format!(
            "Invalid {what} for WSGI daemon process."
        )));
    }
    Ok((n != 0).then_some(n as u64))
}

/// `strtol(v, &end, 8)` with the whole value consumed, no overflow, >= 0.
fn parse_umask(v: &str) -> Option<u32> {
    let t = v.trim_start_matches(|c: char| c.is_ascii() && super::is_space(c as u8));
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let n = i64::from_str_radix(digits, 8).ok()?;
    if neg && n != 0 {
        return None;
    }
    u32::try_from(n).ok()
}

/// WSGIDaemonProcess name [option=value ...]
pub(crate) fn apply_daemon_process(
    cx: &mut GlobalContext<'_>,
    args: &[&str],
) -> Result<(), ConfigError> {
    let mut d = DaemonProcess::parse(args)?;
    d.refuse_unimplemented()?;
    if cx.globals.find_daemon(&d.name).is_some() {
        return Err(ConfigError::msg(
            "Name duplicates previous WSGI daemon definition.",
        ));
    }
    d.scope = cx.scope.clone();
    d.id = cx.globals.daemon_processes.len() + 1;
    cx.globals.daemon_processes.push(d);
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn which_requests_a_virtual_host_group_serves() {
        let scope = |host: Option<&str>, virt: bool, id: usize| ServerScope {
            hostname: host.map(str::to_string),
            is_virtual: virt,
            server_id: id,
        };
        // Declared at server level: every request.
        assert!(scope(None, false, 1).serves_request_of(&scope(Some("a"), true, 2), "main"));
        // Declared in a VirtualHost without ServerName (seed 004): its own
        // requests, although its name was unknown when the line was read.
        let seed004 = scope(None, true, 2);
        assert!(seed004.serves_request_of(&scope(Some("main.example"), true, 2), "main.example"));
        // Another VirtualHost with the name the declaring one has now.
        assert!(seed004.serves_request_of(&scope(Some("main.example"), true, 3), "main.example"));
        assert!(!seed004.serves_request_of(&scope(Some("other.example"), true, 3), "main.example"));
        let one = scope(Some("one.example"), true, 4);
        assert!(!one.serves_request_of(&scope(Some("two.example"), true, 5), "one.example"));
        assert!(one.serves_request_of(&scope(Some("one.example"), true, 6), "one.example"));
    }
    use super::super::ServerConfig;
    use super::*;

    fn parse(opts: &[&str]) -> Result<DaemonProcess, ConfigError> {
        let mut args = vec!["site"];
        args.extend_from_slice(opts);
        DaemonProcess::parse(&args)
    }

    fn err(opt: &str) -> String {
        parse(&[opt]).unwrap_err().to_string()
    }

    fn add(g: &mut GlobalConfig, scope: ServerScope, args: &[&str]) -> Result<(), ConfigError> {
        let mut s = ServerConfig::default();
        apply_daemon_process(
            &mut GlobalContext {
                server: &mut s,
                globals: g,
                scope,
            },
            args,
        )
    }

    #[test]
    fn defaults() {
        let d = parse(&[]).unwrap();
        assert_eq!(d.name, "site");
        assert_eq!(d.processes, 1);
        assert!(!d.multiprocess);
        assert_eq!(d.threads, 15);
        assert_eq!(d.display_name, None);
        assert_eq!(d.user, None);
        assert_eq!(d.group, None);
        assert_eq!(d.supplementary_groups, None);
        assert_eq!(d.umask, None);
        assert_eq!(d.home, None);
        assert!(d.python_path.is_empty());
        assert_eq!(d.stack_size, None);
        assert_eq!(d.maximum_requests, 0);
        assert_eq!(d.startup_timeout, None);
        assert_eq!(d.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(d.deadlock_timeout, Some(Duration::from_secs(300)));
        assert_eq!(d.inactivity_timeout, None);
        assert_eq!(d.request_timeout, None);
        assert_eq!(d.interrupt_timeout, None);
        assert_eq!(d.graceful_timeout, Some(Duration::from_secs(15)));
        assert_eq!(d.eviction_timeout, None);
        assert_eq!(d.restart_interval, None);
        assert_eq!(d.connect_timeout, Duration::from_secs(15));
        assert_eq!(d.socket_timeout, None);
        assert_eq!(d.queue_timeout, None);
        assert_eq!(d.listen_backlog, 100);
        assert_eq!(d.cpu_time_limit, None);
        assert_eq!(d.cpu_priority, 0);
        assert_eq!(d.memory_limit, None);
        assert_eq!(d.virtual_memory_limit, None);
        assert_eq!(d.send_buffer_size, None);
        assert_eq!(d.receive_buffer_size, None);
        assert_eq!(d.header_buffer_size, None);
        assert_eq!(d.response_buffer_size, None);
        assert_eq!(d.response_socket_timeout, None);
        assert!(!d.server_metrics);
        assert_eq!(d.switch_interval, None);
        assert!(d.options_given.is_empty());
        assert!(d.unimplemented_options().is_empty());
    }

    #[test]
    fn every_option_good_value() {
        let d = parse(&[
            "user=www",
            "group=#33",
            "supplementary-groups=a,b,,c",
            "processes=1",
            "threads=0",
            "umask=0027",
            "chroot=/jail",
            "home=/srv",
            "lang=en_US.UTF-8",
            "locale=C.UTF-8",
            "python-home=/venv",
            "python-path=/a:/b",
            "python-eggs=/tmp/eggs",
            "stack-size=524288",
            "maximum-requests=1000",
            "startup-timeout=15",
            "shutdown-timeout=0",
            "deadlock-timeout=0",
            "inactivity-timeout=60",
            "request-timeout=30",
            "interrupt-timeout=10",
            "graceful-timeout=0",
            "eviction-timeout=7",
            "restart-interval=3600",
            "connect-timeout=3",
            "socket-timeout=60",
            "queue-timeout=45",
            "listen-backlog=0",
            "display-name=%{GROUP}",
            "send-buffer-size=0",
            "receive-buffer-size=512",
            "header-buffer-size=8192",
            "response-buffer-size=65536",
            "cpu-time-limit=100",
            "cpu-priority=-5",
            "memory-limit=1000000",
            "virtual-memory-limit=0",
            "server-metrics=ON",
            "switch-interval=0.002",
            "newrelic-config-file=/nr.ini",
            "newrelic-environment=prod",
            "script-user=#1000",
            "socket-user=www",
        ])
        .unwrap();
        assert_eq!(d.user.as_deref(), Some("www"));
        assert_eq!(d.group.as_deref(), Some("#33"));
        assert_eq!(d.supplementary_groups, Some(vec!["a".into(), "b".into()]));
        assert_eq!(d.processes, 1);
        assert!(d.multiprocess);
        assert_eq!(d.threads, 0);
        assert_eq!(d.umask, Some(0o27));
        assert_eq!(d.chroot.as_deref(), Some("/jail"));
        assert_eq!(d.home.as_deref(), Some("/srv"));
        assert_eq!(d.lang.as_deref(), Some("en_US.UTF-8"));
        assert_eq!(d.locale.as_deref(), Some("C.UTF-8"));
        assert_eq!(d.python_home.as_deref(), Some("/venv"));
        assert_eq!(d.python_path, ["/a", "/b"]);
        assert_eq!(d.python_eggs.as_deref(), Some("/tmp/eggs"));
        assert_eq!(d.stack_size, Some(524288));
        assert_eq!(d.maximum_requests, 1000);
        assert_eq!(d.startup_timeout, Some(Duration::from_secs(15)));
        assert_eq!(d.shutdown_timeout, Duration::ZERO);
        assert_eq!(d.deadlock_timeout, None);
        assert_eq!(d.inactivity_timeout, Some(Duration::from_secs(60)));
        assert_eq!(d.request_timeout, Some(Duration::from_secs(30)));
        assert_eq!(d.interrupt_timeout, Some(Duration::from_secs(10)));
        assert_eq!(d.graceful_timeout, None);
        assert_eq!(d.eviction_timeout, Some(Duration::from_secs(7)));
        assert_eq!(d.restart_interval, Some(Duration::from_secs(3600)));
        assert_eq!(d.connect_timeout, Duration::from_secs(3));
        assert_eq!(d.socket_timeout, Some(Duration::from_secs(60)));
        assert_eq!(d.queue_timeout, Some(Duration::from_secs(45)));
        assert_eq!(d.listen_backlog, 0);
        assert_eq!(d.display_name(), Some("(wsgi:site)".into()));
        assert_eq!(d.send_buffer_size, None);
        assert_eq!(d.receive_buffer_size, Some(512));
        assert_eq!(d.header_buffer_size, Some(8192));
        assert_eq!(d.response_buffer_size, Some(65536));
        // Unset response-socket-timeout takes socket-timeout.
        assert_eq!(d.response_socket_timeout, Some(Duration::from_secs(60)));
        assert_eq!(d.cpu_time_limit, Some(Duration::from_secs(100)));
        assert_eq!(d.cpu_priority, -5);
        assert_eq!(d.memory_limit, Some(1_000_000));
        assert_eq!(d.virtual_memory_limit, None);
        assert!(d.server_metrics);
        assert_eq!(d.switch_interval, Some(Duration::from_millis(2)));
        assert_eq!(d.newrelic_config_file.as_deref(), Some("/nr.ini"));
        assert_eq!(d.newrelic_environment.as_deref(), Some("prod"));
        assert_eq!(d.script_user.as_deref(), Some("#1000"));
        assert_eq!(d.socket_user.as_deref(), Some("www"));
        // Parsed as mod_wsgi parses them; apply_daemon_process refuses these.
        assert_eq!(
            d.unimplemented_options(),
            ["chroot", "newrelic-config-file", "newrelic-environment"]
        );
    }

    #[test]
    fn options_not_implemented_yet_are_refused() {
        let refused = |opts: &[&str]| {
            let mut g = GlobalConfig::default();
            add(&mut g, ServerScope::default(), &[&["site"], opts].concat())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(&["chroot=/jail"]),
            "WSGIDaemonProcess option 'chroot' is not implemented yet by mod_wsgi-rs \
             (mod_wsgi deprecated it; use a container instead)."
        );
        assert_eq!(
            refused(&["threads=2", "interrupt-timeout=10"]),
            "WSGIDaemonProcess option 'interrupt-timeout' is not implemented yet by mod_wsgi-rs \
             (only interrupt-timeout=0 is accepted: request-timeout restarts the process)."
        );
        assert_eq!(
            refused(&["server-metrics=On"]),
            "WSGIDaemonProcess option 'server-metrics' is not implemented yet by mod_wsgi-rs \
             (only server-metrics=Off is accepted)."
        );
        assert_eq!(
            refused(&["newrelic-config-file=/nr.ini"]),
            "WSGIDaemonProcess option 'newrelic-config-file' is not implemented yet by mod_wsgi-rs."
        );
        assert_eq!(
            refused(&["newrelic-environment=prod"]),
            "WSGIDaemonProcess option 'newrelic-environment' is not implemented yet by mod_wsgi-rs."
        );
        // Their "off" values, and every other option, are accepted and
        // acted on.
        let mut g = GlobalConfig::default();
        add(
            &mut g,
            ServerScope::default(),
            &[
                "site",
                "interrupt-timeout=0",
                "server-metrics=Off",
                "queue-timeout=5",
            ],
        )
        .unwrap();
        let d = g.find_daemon("site").unwrap();
        assert!(d.unimplemented_options().is_empty());
        for o in OPTIONS {
            let refused_always = ["chroot", "newrelic-config-file", "newrelic-environment"];
            assert_eq!(
                IMPLEMENTED_OPTIONS.contains(o),
                !refused_always.contains(o),
                "{o}"
            );
        }
    }

    #[test]
    fn quoted_and_odd_values() {
        let d = parse(&[
            "display-name='my app'",
            "processes=3x",
            "response-socket-timeout=9",
        ])
        .unwrap();
        assert_eq!(d.display_name(), Some("my app".into()));
        assert_eq!(d.processes, 3);
        assert_eq!(d.response_socket_timeout, Some(Duration::from_secs(9)));
        let d = parse(&["supplementary-groups="]).unwrap();
        assert_eq!(d.supplementary_groups, Some(vec![]));
        let d = parse(&["umask=+7", "threads=65533", "python-path="]).unwrap();
        assert_eq!(d.umask, Some(7));
        assert_eq!(d.threads, 65533);
        assert!(d.python_path.is_empty());
    }

    #[test]
    fn every_option_bad_value() {
        let cases: &[(&str, &str)] = &[
            ("user=", "Invalid user for WSGI daemon process."),
            ("user=root", "WSGI process blocked from running as root."),
            ("user=#0", "WSGI process blocked from running as root."),
            ("group=", "Invalid group for WSGI daemon process."),
            (
                "processes=",
                "Invalid process count for WSGI daemon process.",
            ),
            (
                "processes=0",
                "Invalid process count for WSGI daemon process.",
            ),
            (
                "processes=abc",
                "Invalid process count for WSGI daemon process.",
            ),
            ("threads=", "Invalid thread count for WSGI daemon process."),
            (
                "threads=-1",
                "Invalid thread count for WSGI daemon process.",
            ),
            (
                "threads=65534",
                "Invalid thread count for WSGI daemon process.",
            ),
            ("umask=", "Invalid umask for WSGI daemon process."),
            ("umask=0228", "Invalid umask for WSGI daemon process."),
            ("umask=-1", "Invalid umask for WSGI daemon process."),
            ("umask=abc", "Invalid umask for WSGI daemon process."),
            (
                "chroot=jail",
                "Invalid chroot directory for WSGI daemon process.",
            ),
            ("home=", "Invalid home directory for WSGI daemon process."),
            (
                "home=srv",
                "Invalid home directory for WSGI daemon process.",
            ),
            ("stack-size=", "Invalid stack size for WSGI daemon process."),
            (
                "stack-size=0",
                "Invalid stack size for WSGI daemon process.",
            ),
            (
                "maximum-requests=",
                "Invalid request count for WSGI daemon process.",
            ),
            (
                "maximum-requests=-1",
                "Invalid request count for WSGI daemon process.",
            ),
            (
                "startup-timeout=-1",
                "Invalid startup timeout for WSGI daemon process.",
            ),
            (
                "shutdown-timeout=",
                "Invalid shutdown timeout for WSGI daemon process.",
            ),
            (
                "deadlock-timeout=-5",
                "Invalid deadlock timeout for WSGI daemon process.",
            ),
            (
                "inactivity-timeout=",
                "Invalid inactivity timeout for WSGI daemon process.",
            ),
            (
                "request-timeout=-1",
                "Invalid request timeout for WSGI daemon process.",
            ),
            (
                "interrupt-timeout=-1",
                "Invalid interrupt timeout for WSGI daemon process.",
            ),
            (
                "graceful-timeout=",
                "Invalid graceful timeout for WSGI daemon process.",
            ),
            (
                "eviction-timeout=-2",
                "Invalid eviction timeout for WSGI daemon process.",
            ),
            (
                "restart-interval=",
                "Invalid restart interval for WSGI daemon process.",
            ),
            (
                "connect-timeout=-1",
                "Invalid connect timeout for WSGI daemon process.",
            ),
            (
                "socket-timeout=",
                "Invalid socket timeout for WSGI daemon process.",
            ),
            (
                "queue-timeout=-1",
                "Invalid queue timeout for WSGI daemon process.",
            ),
            (
                "listen-backlog=-1",
                "Invalid listen backlog for WSGI daemon process.",
            ),
            (
                "send-buffer-size=",
                "Invalid send buffer size for WSGI daemon process.",
            ),
            (
                "send-buffer-size=511",
                "Send buffer size must be >= 512 bytes, or 0 for system default.",
            ),
            (
                "receive-buffer-size=",
                "Invalid receive buffer size for WSGI daemon process.",
            ),
            (
                "receive-buffer-size=-1",
                "Receive buffer size must be >= 512 bytes, or 0 for system default.",
            ),
            (
                "header-buffer-size=",
                "Invalid header buffer size for WSGI daemon process.",
            ),
            (
                "header-buffer-size=8191",
                "Header buffer size must be >= 8192 bytes, or 0 for default.",
            ),
            (
                "response-buffer-size=",
                "Invalid response buffer size for WSGI daemon process.",
            ),
            (
                "response-buffer-size=1024",
                "Response buffer size must be >= 65536 bytes, or 0 for default.",
            ),
            (
                "response-socket-timeout=-1",
                "Invalid response socket timeout for WSGI daemon process.",
            ),
            (
                "socket-user=",
                "Invalid socket user for WSGI daemon process.",
            ),
            (
                "script-user=",
                "Invalid script user for WSGI daemon process.",
            ),
            (
                "script-group=",
                "Invalid script group for WSGI daemon process.",
            ),
            (
                "cpu-time-limit=-1",
                "Invalid CPU time limit for WSGI daemon process.",
            ),
            (
                "cpu-priority=",
                "Invalid CPU priority for WSGI daemon process.",
            ),
            (
                "memory-limit=",
                "Invalid memory limit for WSGI daemon process.",
            ),
            (
                "memory-limit=-1",
                "Invalid memory limit for WSGI daemon process.",
            ),
            (
                "virtual-memory-limit=-1",
                "Invalid virtual memory limit for WSGI daemon process.",
            ),
            (
                "server-metrics=",
                "Invalid server metrics flag for WSGI daemon process.",
            ),
            (
                "server-metrics=yes",
                "Invalid server metrics flag for WSGI daemon process.",
            ),
            (
                "switch-interval=0",
                "Invalid switch interval for WSGI daemon process.",
            ),
            (
                "switch-interval=x",
                "Invalid switch interval for WSGI daemon process.",
            ),
            (
                "bogus=1",
                "Invalid option to WSGI daemon process definition.",
            ),
            (
                "threads",
                "Invalid option to WSGI daemon process definition.",
            ),
            ("=1", "Invalid option to WSGI daemon process definition."),
            (
                "Threads=1",
                "Invalid option to WSGI daemon process definition.",
            ),
        ];
        for (opt, want) in cases {
            assert_eq!(err(opt), *want, "{opt}");
        }
        assert_eq!(
            parse(&["script-user=a", "script-group=b"])
                .unwrap_err()
                .to_string(),
            "Only one of script-user and script-group allowed."
        );
        assert_eq!(
            DaemonProcess::parse(&[]).unwrap_err().to_string(),
            "Name of WSGI daemon process not supplied."
        );
        assert_eq!(
            DaemonProcess::parse(&[""]).unwrap_err().to_string(),
            "Name of WSGI daemon process not supplied."
        );
        // Every option in the table is covered above.
        for o in OPTIONS {
            let covered = cases.iter().any(|(c, _)| c.starts_with(&format!("{o}=")))
                || [
                    "lang",
                    "locale",
                    "python-home",
                    "python-path",
                    "python-eggs",
                ]
                .contains(o)
                || [
                    "display-name",
                    "supplementary-groups",
                    "newrelic-config-file",
                ]
                .contains(o)
                || *o == "newrelic-environment";
            assert!(covered, "{o}");
        }
    }

    #[test]
    fn duplicates_ids_and_scope() {
        let mut g = GlobalConfig::default();
        let main = ServerScope {
            hostname: Some("main.example".into()),
            is_virtual: false,
            server_id: 0,
        };
        let vhost = ServerScope {
            hostname: Some("www.site1.com".into()),
            is_virtual: true,
            server_id: 0,
        };
        add(&mut g, main.clone(), &["a", "threads=2"]).unwrap();
        add(&mut g, vhost.clone(), &["b"]).unwrap();
        assert_eq!(
            add(&mut g, vhost.clone(), &["a"]).unwrap_err().to_string(),
            "Name duplicates previous WSGI daemon definition."
        );
        // Option errors are reported before the duplicate check.
        assert_eq!(
            add(&mut g, main.clone(), &["a", "threads=-1"])
                .unwrap_err()
                .to_string(),
            "Invalid thread count for WSGI daemon process."
        );
        let names: Vec<(&str, usize)> = g
            .daemon_processes()
            .iter()
            .map(|d| (d.name.as_str(), d.id))
            .collect();
        assert_eq!(names, [("a", 1), ("b", 2)]);
        assert_eq!(g.find_daemon("b").unwrap().scope, vhost);
        // Reachability, as WSGIImportScript and preloading aliases check it.
        assert_eq!(check_group_reachable(&g, "a", &vhost), Ok(()));
        assert_eq!(check_group_reachable(&g, "b", &vhost), Ok(()));
        let other = ServerScope {
            hostname: Some("www.site2.com".into()),
            is_virtual: true,
            server_id: 0,
        };
        assert_eq!(
            check_group_reachable(&g, "b", &other)
                .unwrap_err()
                .to_string(),
            "WSGI process group not accessible."
        );
        let unnamed = ServerScope {
            hostname: None,
            is_virtual: true,
            server_id: 0,
        };
        assert_eq!(
            check_group_reachable(&g, "b", &unnamed)
                .unwrap_err()
                .to_string(),
            "WSGI process group not matchable."
        );
        assert_eq!(
            check_group_reachable(&g, "c", &main)
                .unwrap_err()
                .to_string(),
            "WSGI process group not yet configured."
        );
        // The main server's groups are reachable from anywhere.
        assert_eq!(check_group_reachable(&g, "a", &unnamed), Ok(()));
    }
}

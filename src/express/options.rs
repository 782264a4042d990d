//! wsgi-express's command line: the subcommands, every flag with its
//! mod_wsgi-express default, and an optparse-style parser (`--flag value`,
//! `--flag=value`, unique prefixes, `--` ends the flags). Pure: no I/O.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("no such option: {0}")]
    NoSuchOption(String),
    #[error("ambiguous option: {0} ({1})")]
    Ambiguous(String, String),
    #[error("{0} option requires {1} argument{2}")]
    MissingValue(String, usize, &'static str),
    #[error("{0} option does not take a value")]
    UnexpectedValue(String),
    #[error("option {0}: invalid integer value: '{1}'")]
    InvalidInteger(String, String),
    #[error("option {0}: invalid choice: '{1}' (choose from {2})")]
    InvalidChoice(String, String, &'static str),
    #[error("Incorrect number of arguments.")]
    Arguments,
    #[error("No command was specified.")]
    NoCommand,
    #[error("Invalid command was specified: '{0}'.")]
    InvalidCommand(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    StartServer,
    SetupServer,
    ModuleConfig,
    ModuleLocation,
    InstallModule,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::StartServer => "start-server",
            Command::SetupServer => "setup-server",
            Command::ModuleConfig => "module-config",
            Command::ModuleLocation => "module-location",
            Command::InstallModule => "install-module",
        }
    }
    fn from_name(s: &str) -> Option<Command> {
        [
            Command::StartServer,
            Command::SetupServer,
            Command::ModuleConfig,
            Command::ModuleLocation,
            Command::InstallModule,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

/// What the user asked for, with mod_wsgi-express's defaults filled in.
/// Paths are as given (made absolute later, by `express::plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub application_type: String,
    pub entry_point: Option<String>,
    pub host: Option<String>,
    pub port: u16,
    pub https_port: Option<u16>,
    pub ssl_certificate: Option<String>,
    pub ssl_certificate_file: Option<String>,
    pub ssl_certificate_key_file: Option<String>,
    pub http2: bool,
    pub server_name: Option<String>,
    pub server_aliases: Vec<String>,
    pub processes: Option<u32>,
    pub threads: u32,
    pub max_clients: Option<u32>,
    pub limit_request_body: u64,
    pub maximum_requests: u32,
    pub startup_timeout: u32,
    pub shutdown_timeout: u32,
    pub restart_interval: u32,
    pub graceful_timeout: u32,
    pub eviction_timeout: u32,
    pub deadlock_timeout: u32,
    pub inactivity_timeout: u32,
    pub request_timeout: u32,
    pub connect_timeout: u32,
    pub socket_timeout: u32,
    pub queue_timeout: u32,
    pub header_timeout: u32,
    pub header_max_timeout: u32,
    pub header_min_rate: u32,
    pub body_timeout: u32,
    pub body_max_timeout: u32,
    pub body_min_rate: u32,
    pub server_backlog: u32,
    pub daemon_backlog: u32,
    pub reload_on_changes: bool,
    pub user: Option<String>,
    pub group: Option<String>,
    pub callable_object: String,
    pub map_head_to_get: String,
    pub document_root: Option<String>,
    pub mount_point: String,
    pub url_aliases: Vec<(String, String)>,
    pub error_override: bool,
    pub keep_alive_timeout: u32,
    pub compress_responses: bool,
    pub chunked_request: bool,
    pub include_files: Vec<String>,
    pub locale: Option<String>,
    pub setenv: Vec<(String, String)>,
    pub passenv: Vec<String>,
    pub working_directory: Option<String>,
    pub pid_file: Option<String>,
    pub server_root: Option<String>,
    pub log_directory: Option<String>,
    pub log_level: String,
    pub access_log: bool,
    pub access_log_format: Option<String>,
    pub startup_log: bool,
    pub log_to_terminal: bool,
    pub python_paths: Vec<String>,
    pub python_home: Option<String>,
    pub python_eggs: Option<String>,
    pub httpd_executable: Option<String>,
    pub modules_directory: Option<String>,
    pub mime_types: Option<String>,
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub embedded_mode: bool,
    pub setup_only: bool,
    pub help: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            application_type: "script".into(),
            entry_point: None,
            host: None,
            port: 8000,
            https_port: None,
            ssl_certificate: None,
            ssl_certificate_file: None,
            ssl_certificate_key_file: None,
            http2: false,
            server_name: None,
            server_aliases: Vec::new(),
            processes: None,
            threads: 5,
            max_clients: None,
            limit_request_body: 10_485_760,
            maximum_requests: 0,
            startup_timeout: 15,
            shutdown_timeout: 5,
            restart_interval: 0,
            graceful_timeout: 15,
            eviction_timeout: 0,
            deadlock_timeout: 60,
            inactivity_timeout: 0,
            request_timeout: 60,
            connect_timeout: 15,
            socket_timeout: 60,
            queue_timeout: 45,
            header_timeout: 15,
            header_max_timeout: 30,
            header_min_rate: 500,
            body_timeout: 15,
            body_max_timeout: 0,
            body_min_rate: 500,
            server_backlog: 500,
            daemon_backlog: 100,
            reload_on_changes: false,
            user: None,
            group: None,
            callable_object: "application".into(),
            map_head_to_get: "Auto".into(),
            document_root: None,
            mount_point: "/".into(),
            url_aliases: Vec::new(),
            error_override: false,
            keep_alive_timeout: 0,
            compress_responses: false,
            chunked_request: false,
            include_files: Vec::new(),
            locale: None,
            setenv: Vec::new(),
            passenv: Vec::new(),
            working_directory: None,
            pid_file: None,
            server_root: None,
            log_directory: None,
            log_level: "warn".into(),
            access_log: false,
            access_log_format: None,
            startup_log: false,
            log_to_terminal: false,
            python_paths: Vec::new(),
            python_home: None,
            python_eggs: None,
            httpd_executable: None,
            modules_directory: None,
            mime_types: None,
            process_group: None,
            application_group: None,
            embedded_mode: false,
            setup_only: false,
            help: false,
        }
    }
}

/// How many values a flag takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arity {
    Flag,
    One,
    Two,
}

struct Spec {
    name: &'static str,
    arity: Arity,
    metavar: &'static str,
    help: &'static str,
}

const fn flag(name: &'static str, help: &'static str) -> Spec {
    Spec {
        name,
        arity: Arity::Flag,
        metavar: "",
        help,
    }
}
const fn one(name: &'static str, metavar: &'static str, help: &'static str) -> Spec {
    Spec {
        name,
        arity: Arity::One,
        metavar,
        help,
    }
}
const fn two(name: &'static str, metavar: &'static str, help: &'static str) -> Spec {
    Spec {
        name,
        arity: Arity::Two,
        metavar,
        help,
    }
}

/// The flags of start-server and setup-server, in --help order; names,
/// meanings and defaults are mod_wsgi-express's.
const SERVER_OPTIONS: &[Spec] = &[
    one(
        "--application-type",
        "TYPE",
        "The type of WSGI application entry point: 'script' (a WSGI script file, the default) or 'module' (a Python module to import, as 'pkg.mod' or 'pkg.mod:callable').",
    ),
    one(
        "--entry-point",
        "FILE-PATH|MODULE",
        "The WSGI script file or module; the same as giving it as the argument.",
    ),
    one(
        "--host",
        "IP-ADDRESS",
        "The host (IP address) interface on which requests are accepted. Defaults to all interfaces.",
    ),
    one(
        "--port",
        "NUMBER",
        "The port on which requests are accepted. Defaults to 8000.",
    ),
    one(
        "--https-port",
        "NUMBER",
        "The port on which secure (HTTPS) requests are accepted.",
    ),
    one(
        "--ssl-certificate-file",
        "FILE-PATH",
        "The SSL certificate file.",
    ),
    one(
        "--ssl-certificate-key-file",
        "FILE-PATH",
        "The private key file of the SSL certificate.",
    ),
    one(
        "--ssl-certificate",
        "FILE-PATH",
        "The common path of the '.crt' and '.key' files of the SSL certificate.",
    ),
    flag("--http2", "Enable HTTP/2 (needs mod_http2)."),
    one(
        "--server-name",
        "HOSTNAME",
        "The primary host name of the web server; other host names are refused.",
    ),
    one(
        "--server-alias",
        "HOSTNAME",
        "A secondary host name of the web server (repeatable).",
    ),
    one(
        "--processes",
        "NUMBER",
        "The number of worker processes running the WSGI application. Defaults to 1.",
    ),
    one(
        "--threads",
        "NUMBER",
        "The number of request threads in each process. Defaults to 5.",
    ),
    one(
        "--max-clients",
        "NUMBER",
        "The maximum number of simultaneous client connections. Defaults to 1.5 times the request capacity, plus 10 (at least 20).",
    ),
    one(
        "--limit-request-body",
        "NUMBER",
        "The maximum size in bytes of a request body. Defaults to 10485760 (10MB).",
    ),
    one(
        "--maximum-requests",
        "NUMBER",
        "Restart a worker process after this many requests. Defaults to 0 (never).",
    ),
    one(
        "--startup-timeout",
        "SECONDS",
        "Restart a worker process whose application has not loaded within this time. Defaults to 15 seconds.",
    ),
    one(
        "--shutdown-timeout",
        "SECONDS",
        "Seconds a worker process may take to shut down before it is killed. Defaults to 5 seconds.",
    ),
    one(
        "--restart-interval",
        "SECONDS",
        "Restart worker processes at this interval. Defaults to 0 (never).",
    ),
    one(
        "--graceful-timeout",
        "SECONDS",
        "Grace period for active requests when a worker process restarts. Defaults to 15 seconds.",
    ),
    one(
        "--eviction-timeout",
        "SECONDS",
        "Grace period for active requests on a forced graceful restart. Defaults to 0 (the graceful timeout).",
    ),
    one(
        "--deadlock-timeout",
        "SECONDS",
        "Restart a worker process whose Python GIL seems deadlocked this long. Defaults to 60 seconds.",
    ),
    one(
        "--inactivity-timeout",
        "SECONDS",
        "Restart a worker process idle for this long. Defaults to 0 (never).",
    ),
    one(
        "--request-timeout",
        "SECONDS",
        "Restart a worker process when a request runs longer than this. Defaults to 60 seconds.",
    ),
    one(
        "--connect-timeout",
        "SECONDS",
        "Give up connecting to a worker process after this long. Defaults to 15 seconds.",
    ),
    one(
        "--socket-timeout",
        "SECONDS",
        "Timeout on socket reads and writes. Defaults to 60 seconds.",
    ),
    one(
        "--queue-timeout",
        "SECONDS",
        "Fail a request that waited this long for a worker process. Defaults to 45 seconds.",
    ),
    one(
        "--header-timeout",
        "SECONDS",
        "Seconds allowed to receive the request headers. Defaults to 15.",
    ),
    one(
        "--header-max-timeout",
        "SECONDS",
        "Hard limit on receiving the request headers. Defaults to 30.",
    ),
    one(
        "--header-min-rate",
        "BYTES",
        "Bytes per second that extend the header timeout. Defaults to 500.",
    ),
    one(
        "--body-timeout",
        "SECONDS",
        "Seconds allowed to receive the request body. Defaults to 15.",
    ),
    one(
        "--body-max-timeout",
        "SECONDS",
        "Hard limit on receiving the request body. Defaults to 0 (none).",
    ),
    one(
        "--body-min-rate",
        "BYTES",
        "Bytes per second that extend the body timeout. Defaults to 500.",
    ),
    one(
        "--server-backlog",
        "NUMBER",
        "Listen backlog of Apache's sockets. Defaults to 500.",
    ),
    one(
        "--daemon-backlog",
        "NUMBER",
        "Listen backlog of the worker processes' sockets. Defaults to 100.",
    ),
    flag(
        "--reload-on-changes",
        "Reload the application when any of its Python code files changes.",
    ),
    one(
        "--user",
        "NAME",
        "When run as root, the user the WSGI application runs as. Defaults to www-data when run as root.",
    ),
    one(
        "--group",
        "NAME",
        "When run as root, the group the WSGI application runs as.",
    ),
    one(
        "--callable-object",
        "NAME",
        "The name of the WSGI application object in the script or module. Defaults to 'application'.",
    ),
    one(
        "--map-head-to-get",
        "OFF|ON|AUTO",
        "Whether HEAD requests are given to the application as GET. Defaults to 'Auto'.",
    ),
    one(
        "--document-root",
        "DIRECTORY-PATH",
        "The directory of static files, served in preference to the application.",
    ),
    one(
        "--mount-point",
        "URL-PATH",
        "The URL path at which the WSGI application is mounted. Defaults to '/'.",
    ),
    two(
        "--url-alias",
        "URL-PATH FILE-PATH|DIRECTORY-PATH",
        "Map a static file or directory to a sub URL (repeatable).",
    ),
    flag(
        "--error-override",
        "Apache's error documents replace application error responses.",
    ),
    one(
        "--keep-alive-timeout",
        "SECONDS",
        "Seconds a client connection is kept alive between requests. Defaults to 0 (keep-alive off).",
    ),
    flag(
        "--compress-responses",
        "Compress text responses (HTML, CSS, JavaScript, XML, plain text).",
    ),
    flag(
        "--chunked-request",
        "Accept request bodies with chunked transfer encoding.",
    ),
    one(
        "--include-file",
        "FILE-PATH",
        "An additional Apache configuration file included at the end of the generated one (repeatable).",
    ),
    one(
        "--locale",
        "NAME",
        "The locale (LC_ALL) of the processes. Defaults to this process's, or C.UTF-8/en_US.UTF-8 instead of C or POSIX.",
    ),
    two(
        "--setenv",
        "KEY VALUE",
        "A name/value pair added to every request's WSGI environ (repeatable).",
    ),
    one(
        "--passenv",
        "KEY",
        "A process environment variable passed in every request's WSGI environ (repeatable).",
    ),
    one(
        "--working-directory",
        "DIRECTORY-PATH",
        "The current working directory of the application, also searched for imports. Defaults to the current directory.",
    ),
    one(
        "--pid-file",
        "FILE-PATH",
        "The file holding Apache's process ID. Defaults to httpd.pid in the server root.",
    ),
    one(
        "--server-root",
        "DIRECTORY-PATH",
        "Where the generated configuration and logs go. Defaults to $TMPDIR/mod_wsgi-rs-HOST:PORT:UID.",
    ),
    one(
        "--log-directory",
        "DIRECTORY-PATH",
        "Where the log files go. Defaults to the server root.",
    ),
    one(
        "--log-level",
        "NAME",
        "Apache's log level. Defaults to 'warn'.",
    ),
    flag("--access-log", "Write an access log."),
    one(
        "--access-log-format",
        "FORMAT",
        "The access log format: 'common', 'combined' or a LogFormat string.",
    ),
    flag(
        "--startup-log",
        "Write Apache's start-up messages to a startup_log.",
    ),
    flag(
        "--log-to-terminal",
        "Write the error log (and access log) to this terminal.",
    ),
    one(
        "--python-path",
        "DIRECTORY-PATH",
        "A directory added to the Python module search path (repeatable).",
    ),
    one(
        "--python-home",
        "DIRECTORY-PATH",
        "The Python home or virtualenv of the application. Defaults to $VIRTUAL_ENV or a virtualenv holding the script.",
    ),
    one(
        "--python-eggs",
        "DIRECTORY-PATH",
        "Where Python eggs are unpacked. Defaults to python-eggs in the server root.",
    ),
    one(
        "--httpd-executable",
        "FILE-PATH",
        "The Apache executable. Defaults to the one apxs names, or /usr/sbin/apache2 or /usr/sbin/httpd.",
    ),
    one(
        "--modules-directory",
        "DIRECTORY-PATH",
        "Apache's modules directory. Defaults to apxs -q LIBEXECDIR or the Debian/Red Hat location.",
    ),
    one(
        "--mime-types",
        "FILE-PATH",
        "The MIME types file. Defaults to /etc/mime.types.",
    ),
    one(
        "--process-group",
        "NAME",
        "The daemon process group name. Defaults to HOST:PORT.",
    ),
    one(
        "--application-group",
        "NAME",
        "The application group. Defaults to %{GLOBAL}.",
    ),
    flag(
        "--embedded-mode",
        "Run the application in Apache's child processes instead of daemon processes.",
    ),
    flag(
        "--setup-only",
        "Write the configuration and the apachectl script, then exit without starting Apache.",
    ),
];

const INSTALL_OPTIONS: &[Spec] = &[one(
    "--modules-directory",
    "DIRECTORY",
    "Where to install the module. Defaults to apxs -q LIBEXECDIR.",
)];

fn specs_for(cmd: Command) -> &'static [Spec] {
    match cmd {
        Command::StartServer | Command::SetupServer => SERVER_OPTIONS,
        Command::InstallModule => INSTALL_OPTIONS,
        Command::ModuleConfig | Command::ModuleLocation => &[],
    }
}

/// Parses `wsgi-express COMMAND [ARGS]` (argv without the program name).
pub fn parse(args: &[String]) -> Result<(Command, Options), OptionsError> {
    let Some(first) = args.first() else {
        return Err(OptionsError::NoCommand);
    };
    if first == "-h" || first == "--help" {
        return Err(OptionsError::NoCommand);
    }
    let cmd =
        Command::from_name(first).ok_or_else(|| OptionsError::InvalidCommand(first.clone()))?;
    let specs = specs_for(cmd);
    let mut o = Options::default();
    let mut positional = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        if a == "-h" || a == "--help" {
            o.help = true;
            continue;
        }
        if !a.starts_with("--") || a.len() == 2 {
            if a.starts_with('-') && a.len() > 1 {
                return Err(OptionsError::NoSuchOption(a.clone()));
            }
            positional.push(a.clone());
            continue;
        }
        let (given, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let spec = lookup(specs, given)?;
        let mut values = Vec::new();
        match spec.arity {
            Arity::Flag => {
                if inline.is_some() {
                    return Err(OptionsError::UnexpectedValue(spec.name.to_string()));
                }
            }
            Arity::One | Arity::Two => {
                let n = if spec.arity == Arity::One { 1 } else { 2 };
                values.extend(inline);
                while values.len() < n {
                    let Some(v) = args.get(i) else {
                        let (count, plural) = if n == 1 { (1, "") } else { (2, "s") };
                        return Err(OptionsError::MissingValue(
                            spec.name.to_string(),
                            count,
                            plural,
                        ));
                    };
                    values.push(v.clone());
                    i += 1;
                }
            }
        }
        apply(&mut o, spec.name, values)?;
    }
    match cmd {
        Command::StartServer | Command::SetupServer => {
            if positional.len() > 1 {
                return Err(OptionsError::Arguments);
            }
            if o.entry_point.is_none() {
                o.entry_point = positional.pop();
            }
        }
        _ => {
            if !positional.is_empty() {
                return Err(OptionsError::Arguments);
            }
        }
    }
    Ok((cmd, o))
}

/// Exact name, else a unique prefix (as optparse allows).
fn lookup<'a>(specs: &'a [Spec], given: &str) -> Result<&'a Spec, OptionsError> {
    if let Some(s) = specs.iter().find(|s| s.name == given) {
        return Ok(s);
    }
    let matches: Vec<&Spec> = specs.iter().filter(|s| s.name.starts_with(given)).collect();
    match matches.len() {
        1 => Ok(matches[0]),
        0 => Err(OptionsError::NoSuchOption(given.to_string())),
        _ => Err(OptionsError::Ambiguous(
            given.to_string(),
            matches
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

fn int<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, OptionsError> {
    v.trim()
        .parse()
        .map_err(|_| OptionsError::InvalidInteger(name.to_string(), v.to_string()))
}

fn apply(o: &mut Options, name: &str, mut v: Vec<String>) -> Result<(), OptionsError> {
    let first = || v.first().cloned().unwrap_or_default();
    let s = first();
    macro_rules! num {
        ($field:ident) => {
            o.$field = int(name, &s)?
        };
    }
    match name {
        "--application-type" => {
            if !["script", "module"].contains(&s.as_str()) {
                return Err(OptionsError::InvalidChoice(
                    name.into(),
                    s,
                    "'script', 'module'",
                ));
            }
            o.application_type = s;
        }
        "--entry-point" => o.entry_point = Some(s),
        "--host" => o.host = Some(s),
        "--port" => num!(port),
        "--https-port" => o.https_port = Some(int(name, &s)?),
        "--ssl-certificate-file" => o.ssl_certificate_file = Some(s),
        "--ssl-certificate-key-file" => o.ssl_certificate_key_file = Some(s),
        "--ssl-certificate" => o.ssl_certificate = Some(s),
        "--http2" => o.http2 = true,
        "--server-name" => o.server_name = Some(s),
        "--server-alias" => o.server_aliases.push(s),
        "--processes" => o.processes = Some(int(name, &s)?),
        "--threads" => num!(threads),
        "--max-clients" => o.max_clients = Some(int(name, &s)?),
        "--limit-request-body" => num!(limit_request_body),
        "--maximum-requests" => num!(maximum_requests),
        "--startup-timeout" => num!(startup_timeout),
        "--shutdown-timeout" => num!(shutdown_timeout),
        "--restart-interval" => num!(restart_interval),
        "--graceful-timeout" => num!(graceful_timeout),
        "--eviction-timeout" => num!(eviction_timeout),
        "--deadlock-timeout" => num!(deadlock_timeout),
        "--inactivity-timeout" => num!(inactivity_timeout),
        "--request-timeout" => num!(request_timeout),
        "--connect-timeout" => num!(connect_timeout),
        "--socket-timeout" => num!(socket_timeout),
        "--queue-timeout" => num!(queue_timeout),
        "--header-timeout" => num!(header_timeout),
        "--header-max-timeout" => num!(header_max_timeout),
        "--header-min-rate" => num!(header_min_rate),
        "--body-timeout" => num!(body_timeout),
        "--body-max-timeout" => num!(body_max_timeout),
        "--body-min-rate" => num!(body_min_rate),
        "--server-backlog" => num!(server_backlog),
        "--daemon-backlog" => num!(daemon_backlog),
        "--reload-on-changes" => o.reload_on_changes = true,
        "--user" => o.user = Some(s),
        "--group" => o.group = Some(s),
        "--callable-object" => o.callable_object = s,
        "--map-head-to-get" => {
            let norm = match s.to_ascii_lowercase().as_str() {
                "on" => "On",
                "off" => "Off",
                "auto" => "Auto",
                _ => {
                    return Err(OptionsError::InvalidChoice(
                        name.into(),
                        s,
                        "'On', 'Off', 'Auto'",
                    ));
                }
            };
            o.map_head_to_get = norm.into();
        }
        "--document-root" => o.document_root = Some(s),
        "--mount-point" => o.mount_point = s,
        "--url-alias" => {
            let target = v.pop().unwrap_or_default();
            o.url_aliases.push((s, target));
        }
        "--error-override" => o.error_override = true,
        "--keep-alive-timeout" => num!(keep_alive_timeout),
        "--compress-responses" => o.compress_responses = true,
        "--chunked-request" => o.chunked_request = true,
        "--include-file" => o.include_files.push(s),
        "--locale" => o.locale = Some(s),
        "--setenv" => {
            let value = v.pop().unwrap_or_default();
            o.setenv.push((s, value));
        }
        "--passenv" => o.passenv.push(s),
        "--working-directory" => o.working_directory = Some(s),
        "--pid-file" => o.pid_file = Some(s),
        "--server-root" => o.server_root = Some(s),
        "--log-directory" => o.log_directory = Some(s),
        "--log-level" => o.log_level = s,
        "--access-log" => o.access_log = true,
        "--access-log-format" => o.access_log_format = Some(s),
        "--startup-log" => o.startup_log = true,
        "--log-to-terminal" => o.log_to_terminal = true,
        "--python-path" => o.python_paths.push(s),
        "--python-home" => o.python_home = Some(s),
        "--python-eggs" => o.python_eggs = Some(s),
        "--httpd-executable" => o.httpd_executable = Some(s),
        "--modules-directory" => o.modules_directory = Some(s),
        "--mime-types" => o.mime_types = Some(s),
        "--process-group" => o.process_group = Some(s),
        "--application-group" => o.application_group = Some(s),
        "--embedded-mode" => o.embedded_mode = true,
        "--setup-only" => o.setup_only = true,
        other => unreachable!("flag {other} has a spec but no field"),
    }
    Ok(())
}

pub const MAIN_USAGE: &str = "Usage: wsgi-express command [params]

Commands:
    install-module
    module-config
    module-location
    setup-server
    start-server
";

/// The --help text of one command.
pub fn help(cmd: Command) -> String {
    let mut out = String::new();
    let usage = match cmd {
        Command::StartServer | Command::SetupServer => format!("{} script [options]", cmd.name()),
        Command::InstallModule => "install-module [options]".to_string(),
        _ => cmd.name().to_string(),
    };
    let _ = writeln!(out, "Usage: wsgi-express {usage}\n\nOptions:");
    let _ = writeln!(
        out,
        "  -h, --help            show this help message and exit"
    );
    for s in specs_for(cmd) {
        let head = if s.metavar.is_empty() {
            format!("  {}", s.name)
        } else {
            format!("  {} {}", s.name, s.metavar)
        };
        if head.len() < 24 {
            let _ = writeln!(out, "{head:<24}{}", s.help);
        } else {
            let _ = writeln!(out, "{head}\n{:24}{}", "", s.help);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn start(s: &[&str]) -> Result<Options, OptionsError> {
        let mut a = args(&["start-server"]);
        a.extend(args(s));
        parse(&a).map(|(_, o)| o)
    }

    #[test]
    fn defaults_are_mod_wsgi_express_defaults() {
        let o = start(&["app.wsgi"]).unwrap();
        assert_eq!(o.entry_point.as_deref(), Some("app.wsgi"));
        assert_eq!(o.port, 8000);
        assert_eq!(o.processes, None);
        assert_eq!(o.threads, 5);
        assert_eq!(o.request_timeout, 60);
        assert_eq!(o.queue_timeout, 45);
        assert_eq!(o.startup_timeout, 15);
        assert_eq!(o.graceful_timeout, 15);
        assert_eq!(o.limit_request_body, 10485760);
        assert_eq!(o.server_backlog, 500);
        assert_eq!(o.daemon_backlog, 100);
        assert_eq!(o.callable_object, "application");
        assert_eq!(o.mount_point, "/");
        assert_eq!(o.log_level, "warn");
        assert_eq!(o.application_type, "script");
        assert!(!o.embedded_mode);
    }

    #[test]
    fn space_and_equals_forms() {
        let o = start(&[
            "--port",
            "8080",
            "--threads=3",
            "x.wsgi",
            "--host=127.0.0.1",
        ])
        .unwrap();
        assert_eq!(o.port, 8080);
        assert_eq!(o.threads, 3);
        assert_eq!(o.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(o.entry_point.as_deref(), Some("x.wsgi"));
    }

    #[test]
    fn two_value_and_repeatable_flags() {
        let o = start(&[
            "--setenv",
            "A",
            "1",
            "--setenv=B",
            "two words",
            "--url-alias",
            "/s",
            "/tmp/s",
            "--python-path",
            "/a",
            "--python-path",
            "/b",
            "--include-file",
            "x.conf",
        ])
        .unwrap();
        assert_eq!(
            o.setenv,
            vec![("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        assert_eq!(o.url_aliases, vec![("/s".into(), "/tmp/s".into())]);
        assert_eq!(o.python_paths, vec!["/a".to_string(), "/b".to_string()]);
        assert_eq!(o.include_files, vec!["x.conf".to_string()]);
    }

    #[test]
    fn flags_take_no_value() {
        let o = start(&[
            "--embedded-mode",
            "--reload-on-changes",
            "--http2",
            "--access-log",
            "--log-to-terminal",
        ])
        .unwrap();
        assert!(
            o.embedded_mode && o.reload_on_changes && o.http2 && o.access_log && o.log_to_terminal
        );
        assert_eq!(
            start(&["--embedded-mode=yes"]),
            Err(OptionsError::UnexpectedValue("--embedded-mode".into()))
        );
    }

    #[test]
    fn unknown_flag_is_named() {
        let e = start(&["--no-such-thing", "1"]).unwrap_err();
        assert_eq!(e, OptionsError::NoSuchOption("--no-such-thing".into()));
        assert_eq!(e.to_string(), "no such option: --no-such-thing");
        assert_eq!(
            start(&["-x"]).unwrap_err(),
            OptionsError::NoSuchOption("-x".into())
        );
    }

    #[test]
    fn prefixes_as_optparse() {
        assert_eq!(start(&["--thr", "2"]).unwrap().threads, 2);
        let e = start(&["--ssl-certificate-k", "k"]).unwrap();
        assert_eq!(e.ssl_certificate_key_file.as_deref(), Some("k"));
        // --ssl-certificate is exact even though longer names share it.
        assert_eq!(
            start(&["--ssl-certificate", "c"])
                .unwrap()
                .ssl_certificate
                .as_deref(),
            Some("c")
        );
        assert!(matches!(
            start(&["--s", "1"]),
            Err(OptionsError::Ambiguous(..))
        ));
    }

    #[test]
    fn value_errors() {
        assert_eq!(
            start(&["--port", "eighty"]).unwrap_err().to_string(),
            "option --port: invalid integer value: 'eighty'"
        );
        assert_eq!(
            start(&["--port"]).unwrap_err().to_string(),
            "--port option requires 1 argument"
        );
        assert_eq!(
            start(&["--setenv", "A"]).unwrap_err().to_string(),
            "--setenv option requires 2 arguments"
        );
        assert!(matches!(
            start(&["--application-type", "paste"]),
            Err(OptionsError::InvalidChoice(..))
        ));
        assert_eq!(
            start(&["--map-head-to-get", "off"])
                .unwrap()
                .map_head_to_get,
            "Off"
        );
    }

    #[test]
    fn commands_and_arguments() {
        assert_eq!(parse(&[]), Err(OptionsError::NoCommand));
        assert_eq!(
            parse(&args(&["serve"])),
            Err(OptionsError::InvalidCommand("serve".into()))
        );
        assert_eq!(start(&["a.wsgi", "b.wsgi"]), Err(OptionsError::Arguments));
        assert_eq!(
            parse(&args(&["module-config", "x"])),
            Err(OptionsError::Arguments)
        );
        assert_eq!(
            parse(&args(&["module-location"])).unwrap().0,
            Command::ModuleLocation
        );
        assert!(matches!(
            parse(&args(&["module-config", "--port", "1"])),
            Err(OptionsError::NoSuchOption(_))
        ));
        let (c, o) = parse(&args(&["install-module", "--modules-directory", "/m"])).unwrap();
        assert_eq!(c, Command::InstallModule);
        assert_eq!(o.modules_directory.as_deref(), Some("/m"));
        assert_eq!(
            start(&["--", "--odd.wsgi"]).unwrap().entry_point.as_deref(),
            Some("--odd.wsgi")
        );
    }

    #[test]
    fn entry_point_flag_wins() {
        let o = start(&["--entry-point", "a.wsgi"]).unwrap();
        assert_eq!(o.entry_point.as_deref(), Some("a.wsgi"));
    }

    #[test]
    fn help_lists_every_flag() {
        let h = help(Command::StartServer);
        for s in SERVER_OPTIONS {
            assert!(h.contains(s.name), "{}", s.name);
        }
        assert!(start(&["--help"]).unwrap().help);
    }
}

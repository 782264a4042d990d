//! The configuration layer: pure Rust, no Apache calls, no unsafe.
//!
//! It owns the directive table ([`DIRECTIVES`]), one parser per directive,
//! the per-server ([`ServerConfig`]), per-directory ([`DirConfig`]) and
//! per-configuration-read ([`GlobalConfig`]) values with their merge rules,
//! and the request-time expansion of group names ([`group`]).
//!
//! Everything a user sees matches mod_wsgi (4.9 to 6): directive names, the
//! contexts they are allowed in, arguments, defaults and error sentences.
//! Every directive is registered with httpd as RAW_ARGS; httpd splits the
//! line with `ap_getword_conf` and the parsers here check the arity mod_wsgi
//! declares, printing httpd's sentence for it.
#![forbid(unsafe_code)]

pub mod alias;
pub mod auth;
pub mod daemon;
pub mod dir;
pub mod error;
pub mod group;
pub mod server;
pub mod sharing;

pub use alias::{RegexHandle, ScriptAlias};
pub use auth::AuthScript;
pub use daemon::{DaemonProcess, ServerScope};
pub use dir::{DirConfig, HandlerScript, MapHeadToGet, TrustedProxy};
pub use error::ConfigError;
pub use group::{
    GroupContext, expand_application_group, expand_callable_object, expand_process_group,
    expand_server_group,
};
pub use server::{AcceptMutex, GlobalConfig, ImportScript, PythonHashSeed, ServerConfig};

use std::ffi::CStr;

/// httpd's `req_override` bits, as `http_config.h` defines them.
pub const OR_LIMIT: u32 = 1;
pub const OR_OPTIONS: u32 = 2;
pub const OR_FILEINFO: u32 = 4;
pub const OR_AUTHCFG: u32 = 8;
pub const OR_INDEXES: u32 = 16;
pub const ACCESS_CONF: u32 = 64;
pub const RSRC_CONF: u32 = 128;

/// One directive mod_wsgi registers.
pub struct DirectiveSpec {
    /// The directive's name, spelled as mod_wsgi spells it.
    pub name: &'static CStr,
    /// httpd's override bits, exactly as mod_wsgi declares them.
    pub req_override: u32,
    /// mod_wsgi calls `ap_check_cmd_context(cmd, GLOBAL_ONLY)`.
    pub global_only: bool,
    /// mod_wsgi calls `ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)`.
    /// (No mod_wsgi directive does: RSRC_CONF alone keeps them out of
    /// sections. Kept so the lead's trampoline stays general.)
    pub not_in_dir: bool,
    /// The help string of mod_wsgi's command table.
    pub help: &'static CStr,
    pub apply: Apply,
}

/// How a directive's arguments reach the configuration.
pub enum Apply {
    /// Sets per-server state (the server or VirtualHost it appears in).
    Server(fn(&mut ServerConfig, &[&str]) -> Result<(), ConfigError>),
    /// Sets per-directory state. At server level httpd hands the server's
    /// default directory config (`lookup_defaults`), which every request's
    /// merged directory config starts from: the same precedence as
    /// mod_wsgi's "directory value, else server value, else default".
    Dir(fn(&mut DirConfig, &[&str]) -> Result<(), ConfigError>),
    /// Needs the state shared by the whole configuration read (the daemon
    /// process list and the import list are one list per server, not per
    /// virtual host, in mod_wsgi), plus the per-server config.
    Global(fn(&mut GlobalContext<'_>, &[&str]) -> Result<(), ConfigError>),
    /// Accepted by mod_wsgi but not implemented here: Apache must refuse to
    /// start with [`DirectiveSpec::not_supported`].
    NotSupported,
}

/// What an [`Apply::Global`] parser gets.
pub struct GlobalContext<'a> {
    /// The config of the server (or VirtualHost) the directive is in.
    pub server: &'a mut ServerConfig,
    /// One per configuration read; hang it off pconf (it is rebuilt on every
    /// read, like mod_wsgi's lists which a pconf cleanup resets to NULL).
    pub globals: &'a mut GlobalConfig,
    /// Which server the directive is in: `cmd->server->server_hostname`
    /// (None when not set yet) and `cmd->server->is_virtual`.
    pub scope: ServerScope,
}

impl DirectiveSpec {
    /// The directive's name as text.
    pub fn name_str(&self) -> &'static str {
        self.name.to_str().unwrap_or("")
    }

    /// The help string as text.
    pub fn help_str(&self) -> &'static str {
        self.help.to_str().unwrap_or("")
    }

    /// The error for an [`Apply::NotSupported`] directive.
    pub fn not_supported(&self) -> ConfigError {
        ConfigError::NotSupported(self.name_str().to_string())
    }

    /// Whether mod_wsgi-rs parses this directive.
    pub fn is_supported(&self) -> bool {
        !matches!(self.apply, Apply::NotSupported)
    }
}

/// The directive with this name, compared case-insensitively as httpd does.
pub fn find(name: &str) -> Option<&'static DirectiveSpec> {
    DIRECTIVES
        .iter()
        .find(|d| d.name_str().eq_ignore_ascii_case(name))
}

/// (directive, parsed by mod_wsgi-rs) for every directive, in table order:
/// what a README feature table can be checked against.
pub fn feature_table() -> impl Iterator<Item = (&'static str, bool)> {
    DIRECTIVES.iter().map(|d| (d.name_str(), d.is_supported()))
}

/// Directives that are parsed and validated but do not act yet at run time.
/// Using one logs a warning at start-up; the README's feature table marks
/// them "parsed only". Shrinks as features land.
pub static INERT_DIRECTIVES: &[&str] = &[
    "WSGIAcceptMutex",
    "WSGIPassApacheRequest",
    "WSGIIgnoreActivity",
    "WSGIServerMetrics",
];

/// Inheritance of configuration values, as mod_wsgi's merge functions do it.
pub trait Merge {
    fn merge(base: &Self, overrides: &Self) -> Self;
}

// ------------------------------------------------------------ parse helpers

/// `apr_isspace` for ASCII.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// httpd's `ap_getword_conf` on the start of `s`: returns the word (quotes
/// removed, `\\` and `\<quote>` unescaped) and the rest after the word and
/// any whitespace following it.
pub fn getword_conf(s: &str) -> (String, &str) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    if i == b.len() {
        return (String::new(), &s[i..]);
    }
    let quote = b[i];
    let (start, end, after);
    let q;
    if quote == b'"' || quote == b'\'' {
        q = Some(quote);
        start = i + 1;
        let mut j = start;
        while j < b.len() && b[j] != quote {
            if b[j] == b'\\' && j + 1 < b.len() && (b[j + 1] == quote || b[j + 1] == b'\\') {
                j += 2;
            } else {
                j += 1;
            }
        }
        end = j;
        after = if j < b.len() { j + 1 } else { j };
    } else {
        q = None;
        start = i;
        let mut j = i;
        while j < b.len() && !is_space(b[j]) {
            j += 1;
        }
        end = j;
        after = j;
    }
    let mut word = Vec::with_capacity(end - start);
    let mut k = start;
    while k < end {
        if b[k] == b'\\' && k + 1 < end && (b[k + 1] == b'\\' || Some(b[k + 1]) == q) {
            word.push(b[k + 1]);
            k += 2;
        } else {
            word.push(b[k]);
            k += 1;
        }
    }
    let mut rest = after;
    while rest < b.len() && is_space(b[rest]) {
        rest += 1;
    }
    // Only ASCII bytes were removed, so the word is still UTF-8.
    (String::from_utf8(word).unwrap_or_default(), &s[rest..])
}

/// mod_wsgi's `wsgi_parse_option` on one token: `name=value`, where the
/// value is read with `ap_getword_conf` (so `display-name='%{GROUP}'` gives
/// `%{GROUP}`). None when the token is not of that form.
pub(crate) fn parse_option(token: &str) -> Option<(&str, String)> {
    let t = token.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
    let eq = t.find(|c: char| c == '=' || (c.is_ascii() && is_space(c as u8)))?;
    if eq == 0 || t.as_bytes()[eq] != b'=' {
        return None;
    }
    let (value, _) = getword_conf(&t[eq + 1..]);
    Some((&t[..eq], value))
}

/// httpd's TAKE1 check: exactly one non-empty word.
pub(crate) fn take1<'a>(name: &str, help: &str, args: &[&'a str]) -> Result<&'a str, ConfigError> {
    match args {
        [v] if !v.is_empty() => Ok(v),
        _ => Err(ConfigError::takes_one(name, help)),
    }
}

/// A TAKE1 directive mod_wsgi parses as `Off | On` itself.
pub(crate) fn flag(name: &str, help: &str, args: &[&str]) -> Result<bool, ConfigError> {
    let v = take1(name, help, args)?;
    on_off(v).ok_or_else(|| ConfigError::on_off(name))
}

/// `strcasecmp` against Off / On.
pub(crate) fn on_off(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("off") {
        Some(false)
    } else if v.eq_ignore_ascii_case("on") {
        Some(true)
    } else {
        None
    }
}

/// C's `strtoll(s, NULL, 10)` (saturating), which `atoi` and `apr_atoi64`
/// are: leading whitespace, a sign, digits, anything after ignored.
pub(crate) fn atoi64(s: &str) -> i64 {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let mut n: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        let d = i64::from(b[i] - b'0');
        n = if neg {
            n.saturating_mul(10).saturating_sub(d)
        } else {
            n.saturating_mul(10).saturating_add(d)
        };
        i += 1;
    }
    n
}

/// glibc's `atoi`: `(int) strtol(s, NULL, 10)`.
pub(crate) fn atoi(s: &str) -> i32 {
    atoi64(s) as i32
}

// ------------------------------------------------------------ the table

const fn cs(s: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(s.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("directive strings must not contain NUL"),
    }
}

macro_rules! spec {
    ($name:literal, $ovr:expr, $global:expr, $help:literal, $apply:expr) => {
        DirectiveSpec {
            name: cs(concat!($name, "\0")),
            req_override: $ovr,
            global_only: $global,
            not_in_dir: false,
            help: cs(concat!($help, "\0")),
            apply: $apply,
        }
    };
}

/// A GLOBAL_ONLY TAKE1 `Off | On` directive stored in the server config.
macro_rules! server_flag {
    ($name:literal, $help:literal, $field:ident) => {
        spec!(
            $name,
            RSRC_CONF,
            true,
            $help,
            Apply::Server(|c, a| {
                c.$field = Some(flag($name, $help, a)?);
                Ok(())
            })
        )
    };
}

/// A TAKE1 `Off | On` directive stored in the directory config.
macro_rules! dir_flag {
    ($name:literal, $ovr:expr, $help:literal, $field:ident) => {
        spec!(
            $name,
            $ovr,
            false,
            $help,
            Apply::Dir(|c, a| {
                c.$field = Some(flag($name, $help, a)?);
                Ok(())
            })
        )
    };
}

/// A TAKE1 directive stored verbatim in the directory config.
macro_rules! dir_take1 {
    ($name:literal, $ovr:expr, $help:literal, $field:ident) => {
        spec!(
            $name,
            $ovr,
            false,
            $help,
            Apply::Dir(|c, a| {
                c.$field = Some(take1($name, $help, a)?.to_string());
                Ok(())
            })
        )
    };
}

/// A GLOBAL_ONLY TAKE1 directive stored verbatim in the server config.
macro_rules! server_take1 {
    ($name:literal, $help:literal, $field:ident) => {
        spec!(
            $name,
            RSRC_CONF,
            true,
            $help,
            Apply::Server(|c, a| {
                c.$field = Some(take1($name, $help, a)?.to_string());
                Ok(())
            })
        )
    };
}

/// A GLOBAL_ONLY TAKE1 directive with its own parser `fn(&mut ServerConfig, &str)`.
macro_rules! server_take1_with {
    ($name:literal, $help:literal, $parse:path) => {
        spec!(
            $name,
            RSRC_CONF,
            true,
            $help,
            Apply::Server(|c, a| $parse(c, take1($name, $help, a)?))
        )
    };
}

macro_rules! not_supported {
    ($name:literal, $ovr:expr, $global:expr, $help:literal) => {
        spec!($name, $ovr, $global, $help, Apply::NotSupported)
    };
}

/// Every directive mod_wsgi registers (4.9 to 6, Apache 2.4, Python 3, UNIX),
/// in the order of mod_wsgi's command table, followed by those only older
/// or newer releases (or other builds) register.
pub static DIRECTIVES: &[DirectiveSpec] = &[
    spec!(
        "WSGIScriptAlias",
        RSRC_CONF,
        false,
        "Map location to target WSGI script file.",
        Apply::Global(alias::apply_script_alias)
    ),
    spec!(
        "WSGIScriptAliasMatch",
        RSRC_CONF,
        false,
        "Map location pattern to target WSGI script file.",
        Apply::Global(alias::apply_script_alias_match)
    ),
    spec!(
        "WSGIDaemonProcess",
        RSRC_CONF,
        false,
        "Specify details of daemon processes to start.",
        Apply::Global(daemon::apply_daemon_process)
    ),
    server_take1!(
        "WSGISocketPrefix",
        "Path prefix for the daemon process sockets.",
        socket_prefix
    ),
    server_flag!(
        "WSGISocketRotation",
        "Enable/Disable rotation of daemon process sockets.",
        socket_rotation
    ),
    server_take1_with!(
        "WSGIAcceptMutex",
        "Set accept mutex type for daemon processes.",
        server::set_accept_mutex
    ),
    server_flag!(
        "WSGIVerboseDebugging",
        "Enable/Disable verbose debugging messages.",
        verbose_debugging
    ),
    server_flag!(
        "WSGIDontWriteBytecode",
        "Enable/Disable writing of byte code.",
        dont_write_bytecode
    ),
    server_take1_with!(
        "WSGIPythonWarnings",
        "Control Python warning messages.",
        server::add_python_warnings
    ),
    server_take1_with!(
        "WSGIPythonOptimize",
        "Set level of Python compiler optimisations.",
        server::set_python_optimize
    ),
    server_take1!(
        "WSGIPythonHome",
        "Python prefix/exec_prefix absolute path names.",
        python_home
    ),
    server_take1_with!(
        "WSGIPythonPath",
        "Python module search path.",
        server::set_python_path
    ),
    server_take1!(
        "WSGIPythonEggs",
        "Python eggs cache directory.",
        python_eggs
    ),
    server_take1_with!(
        "WSGIPythonHashSeed",
        "Python hash seed.",
        server::set_python_hash_seed
    ),
    not_supported!(
        "WSGISwitchInterval",
        RSRC_CONF,
        true,
        "Override Python GIL switch interval (seconds)."
    ),
    server_flag!(
        "WSGIDestroyInterpreter",
        "Enable/Disable destruction of Python interpreter.",
        destroy_interpreter
    ),
    not_supported!(
        "WSGIPerInterpreterGIL",
        RSRC_CONF,
        true,
        "Enable/Disable per-interpreter GIL for sub-interpreters (Python 3.12+)."
    ),
    server_flag!(
        "WSGIRestrictEmbedded",
        "Enable/Disable use of embedded mode.",
        restrict_embedded
    ),
    server_flag!(
        "WSGIRestrictStdin",
        "Enable/Disable restrictions on use of STDIN.",
        restrict_stdin
    ),
    server_flag!(
        "WSGIRestrictStdout",
        "Enable/Disable restrictions on use of STDOUT.",
        restrict_stdout
    ),
    server_flag!(
        "WSGIRestrictSignal",
        "Enable/Disable restrictions on use of signal().",
        restrict_signal
    ),
    server_flag!(
        "WSGICaseSensitivity",
        "Define whether file system is case sensitive.",
        case_sensitivity
    ),
    spec!(
        "WSGIRestrictProcess",
        ACCESS_CONF | RSRC_CONF,
        false,
        "Limit selectable WSGI process groups.",
        Apply::Dir(dir::set_restrict_process)
    ),
    dir_take1!(
        "WSGIProcessGroup",
        ACCESS_CONF | RSRC_CONF,
        "Name of the WSGI process group.",
        process_group
    ),
    dir_take1!(
        "WSGIApplicationGroup",
        ACCESS_CONF | RSRC_CONF,
        "Application interpreter group.",
        application_group
    ),
    dir_take1!(
        "WSGICallableObject",
        OR_FILEINFO,
        "Name of entry point in WSGI script file.",
        callable_object
    ),
    spec!(
        "WSGIImportScript",
        RSRC_CONF,
        false,
        "Location of WSGI import script.",
        Apply::Global(server::apply_import_script)
    ),
    spec!(
        "WSGIDispatchScript",
        ACCESS_CONF | RSRC_CONF,
        false,
        "Location of WSGI dispatch script.",
        Apply::Dir(auth::set_dispatch_script)
    ),
    dir_flag!(
        "WSGIPassApacheRequest",
        ACCESS_CONF | RSRC_CONF,
        "Enable/Disable Apache request object.",
        pass_apache_request
    ),
    dir_flag!(
        "WSGIPassAuthorization",
        OR_FILEINFO,
        "Enable/Disable WSGI authorization.",
        pass_authorization
    ),
    dir_flag!(
        "WSGIScriptReloading",
        OR_FILEINFO,
        "Enable/Disable script reloading mechanism.",
        script_reloading
    ),
    dir_flag!(
        "WSGIErrorOverride",
        OR_FILEINFO,
        "Enable/Disable overriding of error pages.",
        error_override
    ),
    dir_flag!(
        "WSGIChunkedRequest",
        OR_FILEINFO,
        "Enable/Disable support for chunked requests.",
        chunked_request
    ),
    spec!(
        "WSGIMapHEADToGET",
        OR_FILEINFO,
        false,
        "Enable/Disable mapping of HEAD to GET.",
        Apply::Dir(|c, a| {
            let v = take1(
                "WSGIMapHEADToGET",
                "Enable/Disable mapping of HEAD to GET.",
                a,
            )?;
            c.map_head_to_get = Some(MapHeadToGet::parse(v).ok_or_else(|| {
                ConfigError::msg("WSGIMapHEADToGET must be one of: Off | On | Auto")
            })?);
            Ok(())
        })
    ),
    // "inactvity" is mod_wsgi's spelling.
    dir_flag!(
        "WSGIIgnoreActivity",
        OR_FILEINFO,
        "Enable/Disable reset of inactvity timeout.",
        ignore_activity
    ),
    spec!(
        "WSGITrustedProxyHeaders",
        OR_FILEINFO,
        false,
        "Specify a list of trusted proxy headers.",
        Apply::Dir(dir::add_trusted_proxy_headers)
    ),
    spec!(
        "WSGITrustedProxies",
        OR_FILEINFO,
        false,
        "Specify a list of trusted proxies.",
        Apply::Dir(dir::add_trusted_proxies)
    ),
    dir_flag!(
        "WSGIEnableSendfile",
        OR_FILEINFO,
        "Enable/Disable support for kernel sendfile.",
        enable_sendfile
    ),
    spec!(
        "WSGIAccessScript",
        OR_AUTHCFG,
        false,
        "Location of WSGI host access script file.",
        Apply::Dir(auth::set_access_script)
    ),
    spec!(
        "WSGIAuthUserScript",
        OR_AUTHCFG,
        false,
        "Location of WSGI user auth script file.",
        Apply::Dir(auth::set_auth_user_script)
    ),
    spec!(
        "WSGIAuthGroupScript",
        OR_AUTHCFG,
        false,
        "Location of WSGI group auth script file.",
        Apply::Dir(auth::set_auth_group_script)
    ),
    spec!(
        "WSGIGroupAuthoritative",
        OR_AUTHCFG,
        false,
        "Enable/Disable as being authoritative on groups.",
        Apply::Dir(auth::set_group_authoritative)
    ),
    spec!(
        "WSGIHandlerScript",
        ACCESS_CONF | RSRC_CONF,
        false,
        "Location of WSGI handler script file.",
        Apply::Dir(dir::add_handler_script)
    ),
    // "Enabled" is mod_wsgi's spelling.
    server_flag!(
        "WSGIServerMetrics",
        "Enabled/Disable access to server metrics.",
        server_metrics
    ),
    not_supported!(
        "WSGIMetricsService",
        RSRC_CONF,
        true,
        "Push telemetry to a metrics service. Args: unix:/path [interval=N]"
    ),
    not_supported!(
        "WSGISlowRequests",
        RSRC_CONF,
        true,
        "Enable slow-request reporting. Arg: threshold in seconds."
    ),
    not_supported!(
        "WSGIMetricsOptions",
        RSRC_CONF,
        true,
        "Toggle metrics capture options. Args: [+|-]Flag... | None | All. Flags: CaptureUserAgent."
    ),
    // mod_wsgi 4.x only.
    server_flag!(
        "WSGILazyInitialization",
        "Enable/Disable lazy Python initialization.",
        lazy_initialization
    ),
    not_supported!(
        "WSGINewRelicConfigFile",
        RSRC_CONF,
        true,
        "New Relic monitoring agent configuration file."
    ),
    not_supported!(
        "WSGINewRelicEnvironment",
        RSRC_CONF,
        true,
        "New Relic monitoring agent environment."
    ),
    // Registered by mod_wsgi only on Apache 2.2 / Python 2: listed so that an
    // old configuration gets a clear sentence rather than "Invalid command".
    not_supported!(
        "WSGIUserAuthoritative",
        OR_AUTHCFG,
        false,
        "Enable/Disable as being authoritative on users."
    ),
    not_supported!(
        "WSGIPy3kWarningFlag",
        RSRC_CONF,
        true,
        "Enable/Disable Python 3.0 warnings."
    ),
    // mod_wsgi 6 development releases (help strings from its documentation;
    // the C table's wording was not available).
    not_supported!(
        "WSGITelemetryService",
        RSRC_CONF,
        true,
        "Enable the in-process telemetry reporter and point it at an external ingester."
    ),
    not_supported!(
        "WSGITelemetryOptions",
        RSRC_CONF,
        true,
        "Toggle optional captures for the telemetry stream."
    ),
    not_supported!(
        "WSGIFreeThreading",
        RSRC_CONF,
        true,
        "Enable free-threaded Python (GIL disabled) for the matched process."
    ),
    not_supported!(
        "<WSGIInterpreterOptions",
        RSRC_CONF,
        true,
        "Container for per-interpreter configuration directives."
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<&'static str> {
        DIRECTIVES.iter().map(|d| d.name_str()).collect()
    }

    #[test]
    fn every_mod_wsgi_directive_is_listed_once() {
        let expected = [
            "WSGIScriptAlias",
            "WSGIScriptAliasMatch",
            "WSGIDaemonProcess",
            "WSGISocketPrefix",
            "WSGISocketRotation",
            "WSGIAcceptMutex",
            "WSGIVerboseDebugging",
            "WSGIDontWriteBytecode",
            "WSGIPythonWarnings",
            "WSGIPythonOptimize",
            "WSGIPythonHome",
            "WSGIPythonPath",
            "WSGIPythonEggs",
            "WSGIPythonHashSeed",
            "WSGISwitchInterval",
            "WSGIDestroyInterpreter",
            "WSGIPerInterpreterGIL",
            "WSGIRestrictEmbedded",
            "WSGIRestrictStdin",
            "WSGIRestrictStdout",
            "WSGIRestrictSignal",
            "WSGICaseSensitivity",
            "WSGIRestrictProcess",
            "WSGIProcessGroup",
            "WSGIApplicationGroup",
            "WSGICallableObject",
            "WSGIImportScript",
            "WSGIDispatchScript",
            "WSGIPassApacheRequest",
            "WSGIPassAuthorization",
            "WSGIScriptReloading",
            "WSGIErrorOverride",
            "WSGIChunkedRequest",
            "WSGIMapHEADToGET",
            "WSGIIgnoreActivity",
            "WSGITrustedProxyHeaders",
            "WSGITrustedProxies",
            "WSGIEnableSendfile",
            "WSGIAccessScript",
            "WSGIAuthUserScript",
            "WSGIAuthGroupScript",
            "WSGIGroupAuthoritative",
            "WSGIHandlerScript",
            "WSGIServerMetrics",
            "WSGIMetricsService",
            "WSGISlowRequests",
            "WSGIMetricsOptions",
            "WSGILazyInitialization",
            "WSGINewRelicConfigFile",
            "WSGINewRelicEnvironment",
            "WSGIUserAuthoritative",
            "WSGIPy3kWarningFlag",
            "WSGITelemetryService",
            "WSGITelemetryOptions",
            "WSGIFreeThreading",
            "<WSGIInterpreterOptions",
        ];
        assert_eq!(names(), expected);
        let mut sorted = names();
        sorted.sort_by_key(|n| n.to_ascii_lowercase());
        sorted.dedup_by_key(|n| n.to_ascii_lowercase());
        assert_eq!(sorted.len(), DIRECTIVES.len());
    }

    #[test]
    fn find_is_case_insensitive() {
        assert_eq!(
            find("wsgiscriptalias").unwrap().name_str(),
            "WSGIScriptAlias"
        );
        assert_eq!(
            find("WSGIMAPHEADTOGET").unwrap().name_str(),
            "WSGIMapHEADToGET"
        );
        assert!(find("WSGIScriptAliass").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn contexts_match_mod_wsgi() {
        let ovr = |n: &str| find(n).unwrap().req_override;
        assert_eq!(ovr("WSGIScriptAlias"), 128);
        assert_eq!(ovr("WSGIDaemonProcess"), 128);
        assert_eq!(ovr("WSGIProcessGroup"), 192);
        assert_eq!(ovr("WSGIApplicationGroup"), 192);
        assert_eq!(ovr("WSGIRestrictProcess"), 192);
        assert_eq!(ovr("WSGIDispatchScript"), 192);
        assert_eq!(ovr("WSGIHandlerScript"), 192);
        assert_eq!(ovr("WSGIPassApacheRequest"), 192);
        assert_eq!(ovr("WSGICallableObject"), 4);
        assert_eq!(ovr("WSGIPassAuthorization"), 4);
        assert_eq!(ovr("WSGIScriptReloading"), 4);
        assert_eq!(ovr("WSGITrustedProxies"), 4);
        assert_eq!(ovr("WSGIEnableSendfile"), 4);
        assert_eq!(ovr("WSGIAccessScript"), 8);
        assert_eq!(ovr("WSGIGroupAuthoritative"), 8);
        assert_eq!(ovr("WSGIImportScript"), 128);
        let global: Vec<&str> = DIRECTIVES
            .iter()
            .filter(|d| d.global_only && d.is_supported())
            .map(|d| d.name_str())
            .collect();
        assert_eq!(
            global,
            [
                "WSGISocketPrefix",
                "WSGISocketRotation",
                "WSGIAcceptMutex",
                "WSGIVerboseDebugging",
                "WSGIDontWriteBytecode",
                "WSGIPythonWarnings",
                "WSGIPythonOptimize",
                "WSGIPythonHome",
                "WSGIPythonPath",
                "WSGIPythonEggs",
                "WSGIPythonHashSeed",
                "WSGIDestroyInterpreter",
                "WSGIRestrictEmbedded",
                "WSGIRestrictStdin",
                "WSGIRestrictStdout",
                "WSGIRestrictSignal",
                "WSGICaseSensitivity",
                "WSGIServerMetrics",
                "WSGILazyInitialization",
            ]
        );
        assert!(DIRECTIVES.iter().all(|d| !d.not_in_dir));
    }

    #[test]
    fn supported_and_not() {
        let not: Vec<&str> = feature_table()
            .filter(|(_, s)| !s)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            not,
            [
                "WSGISwitchInterval",
                "WSGIPerInterpreterGIL",
                "WSGIMetricsService",
                "WSGISlowRequests",
                "WSGIMetricsOptions",
                "WSGINewRelicConfigFile",
                "WSGINewRelicEnvironment",
                "WSGIUserAuthoritative",
                "WSGIPy3kWarningFlag",
                "WSGITelemetryService",
                "WSGITelemetryOptions",
                "WSGIFreeThreading",
                "<WSGIInterpreterOptions",
            ]
        );
        assert_eq!(
            find("WSGIUserAuthoritative")
                .unwrap()
                .not_supported()
                .to_string(),
            "WSGIUserAuthoritative is not supported by mod_wsgi-rs yet. It only ever applied \
             to Apache 2.2; with Apache 2.4 remove it (AuthBasicAuthoritative does the same \
             for Basic authentication)."
        );
    }

    /// Every TAKE1 directive prints httpd's arity sentence with its own name
    /// and help, for no argument, two arguments and one empty argument.
    #[test]
    fn take1_arity_sentences() {
        let raw = [
            "WSGIScriptAlias",
            "WSGIScriptAliasMatch",
            "WSGIDaemonProcess",
            "WSGIRestrictProcess",
            "WSGIImportScript",
            "WSGITrustedProxyHeaders",
            "WSGITrustedProxies",
            "WSGIAccessScript",
            "WSGIAuthUserScript",
            "WSGIAuthGroupScript",
            "WSGIDispatchScript",
            "WSGIHandlerScript",
        ];
        let mut checked = 0;
        for d in DIRECTIVES {
            if raw.contains(&d.name_str()) || !d.is_supported() {
                continue;
            }
            let want = format!("{} takes one argument, {}", d.name_str(), d.help_str());
            for args in [&[][..], &["On", "Off"][..], &[""][..]] {
                let got = match d.apply {
                    Apply::Server(f) => f(&mut ServerConfig::default(), args),
                    Apply::Dir(f) => f(&mut DirConfig::default(), args),
                    _ => unreachable!("{}", d.name_str()),
                };
                assert_eq!(got, Err(ConfigError::msg(want.clone())), "{}", d.name_str());
            }
            checked += 1;
        }
        assert_eq!(checked, 31);
    }

    #[test]
    fn flags_sentences() {
        for (name, ok_server) in [
            ("WSGIRestrictStdin", true),
            ("WSGIRestrictStdout", true),
            ("WSGIRestrictSignal", true),
            ("WSGIRestrictEmbedded", true),
            ("WSGIDontWriteBytecode", true),
            ("WSGIVerboseDebugging", true),
            ("WSGIDestroyInterpreter", true),
            ("WSGICaseSensitivity", true),
            ("WSGIServerMetrics", true),
            ("WSGISocketRotation", true),
            ("WSGILazyInitialization", true),
            ("WSGIPassAuthorization", false),
            ("WSGIPassApacheRequest", false),
            ("WSGIScriptReloading", false),
            ("WSGIErrorOverride", false),
            ("WSGIChunkedRequest", false),
            ("WSGIIgnoreActivity", false),
            ("WSGIEnableSendfile", false),
        ] {
            let d = find(name).unwrap();
            let run = |v: &str| match d.apply {
                Apply::Server(f) => f(&mut ServerConfig::default(), &[v]),
                Apply::Dir(f) => f(&mut DirConfig::default(), &[v]),
                _ => unreachable!(),
            };
            assert_eq!(matches!(d.apply, Apply::Server(_)), ok_server, "{name}");
            assert_eq!(run("oN"), Ok(()));
            assert_eq!(run("OFF"), Ok(()));
            assert_eq!(
                run("yes").unwrap_err().to_string(),
                format!("{name} must be one of: Off | On")
            );
        }
    }

    #[test]
    fn getword_conf_like_httpd() {
        assert_eq!(getword_conf("  abc def"), ("abc".into(), "def"));
        assert_eq!(getword_conf("\"a b\" c"), ("a b".into(), "c"));
        assert_eq!(getword_conf("'a b'"), ("a b".into(), ""));
        assert_eq!(getword_conf(r#""a\"b\\c\d""#), (r#"a"b\c\d"#.into(), ""));
        assert_eq!(getword_conf(r"a\\b\'c"), (r"a\b\'c".into(), ""));
        assert_eq!(
            getword_conf("\"unterminated x"),
            ("unterminated x".into(), "")
        );
        assert_eq!(getword_conf("\"a\"b"), ("a".into(), "b"));
        assert_eq!(getword_conf("   "), ("".into(), ""));
        assert_eq!(getword_conf("\"\" x"), ("".into(), "x"));
    }

    #[test]
    fn parse_option_like_mod_wsgi() {
        assert_eq!(parse_option("a=b"), Some(("a", "b".into())));
        assert_eq!(parse_option("a="), Some(("a", "".into())));
        assert_eq!(parse_option("a=b=c"), Some(("a", "b=c".into())));
        assert_eq!(
            parse_option("display-name='%{GROUP}'"),
            Some(("display-name", "%{GROUP}".into()))
        );
        assert_eq!(parse_option("=b"), None);
        assert_eq!(parse_option("ab"), None);
        assert_eq!(parse_option(""), None);
        assert_eq!(parse_option("a b=c"), None);
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("12"), 12);
        assert_eq!(atoi(" -3x"), -3);
        assert_eq!(atoi("+7"), 7);
        assert_eq!(atoi("x7"), 0);
        assert_eq!(atoi(""), 0);
        assert_eq!(atoi64("99999999999999999999"), i64::MAX);
        assert_eq!(atoi64("-99999999999999999999"), i64::MIN);
    }
}

//! Per-server configuration (the main server and each VirtualHost) and the
//! state shared by one whole configuration read ([`GlobalConfig`]).
//!
//! Per-server here means what mod_wsgi keeps in `WSGIServerConfig` and
//! cannot live in a directory config: the script aliases and the
//! GLOBAL_ONLY interpreter settings. The settings mod_wsgi allows both at
//! server level and in sections are in [`crate::config::DirConfig`].
#![forbid(unsafe_code)]

use super::daemon::{DaemonProcess, check_group_reachable};
use super::{ConfigError, GlobalContext, Merge, ScriptAlias, atoi, parse_option};

/// `WSGIPythonHashSeed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PythonHashSeed {
    /// `random`: Python's own randomisation.
    Random,
    /// A fixed seed; 0 disables randomisation.
    Value(u32),
}

/// `WSGIAcceptMutex`: the lock the daemon processes accept under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptMutex {
    Default,
    Flock,
    Fcntl,
    Sysvsem,
    Posixsem,
    Pthread,
}

/// Per-server configuration. Every field is `None`/empty when unset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerConfig {
    /// WSGIScriptAlias / WSGIScriptAliasMatch, in configuration order.
    pub script_aliases: Vec<ScriptAlias>,

    // GLOBAL_ONLY settings: only the main server can set them.
    pub socket_prefix: Option<String>,
    pub socket_rotation: Option<bool>,
    pub accept_mutex: Option<AcceptMutex>,
    pub verbose_debugging: Option<bool>,
    pub dont_write_bytecode: Option<bool>,
    /// Every WSGIPythonWarnings line, in order.
    pub python_warnings: Vec<String>,
    pub python_optimize: Option<i32>,
    pub python_home: Option<String>,
    pub python_path: Option<Vec<String>>,
    pub python_eggs: Option<String>,
    pub python_hash_seed: Option<PythonHashSeed>,
    pub destroy_interpreter: Option<bool>,
    pub restrict_embedded: Option<bool>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
    pub case_sensitivity: Option<bool>,
    pub server_metrics: Option<bool>,
    pub lazy_initialization: Option<bool>,
}

impl ServerConfig {
    /// The script aliases, this server's first and then those inherited.
    pub fn script_aliases(&self) -> &[ScriptAlias] {
        &self.script_aliases
    }

    /// For the lead, to fill [`ScriptAlias::compiled`].
    pub fn script_aliases_mut(&mut self) -> &mut Vec<ScriptAlias> {
        &mut self.script_aliases
    }

    /// WSGISocketPrefix as written. None means mod_wsgi's default,
    /// `DEFAULT_REL_RUNTIMEDIR "/wsgi"`; either way mod_wsgi resolves it with
    /// `ap_server_root_relative` (error: [`invalid_socket_prefix`]).
    pub fn socket_prefix(&self) -> Option<&str> {
        self.socket_prefix.as_deref()
    }

    /// WSGISocketRotation, default On.
    pub fn socket_rotation(&self) -> bool {
        self.socket_rotation.unwrap_or(true)
    }

    /// WSGIAcceptMutex; None means httpd's default mechanism.
    pub fn accept_mutex(&self) -> Option<AcceptMutex> {
        self.accept_mutex
    }

    /// WSGIVerboseDebugging, default Off (deprecated in mod_wsgi 6, where it
    /// logs at info "WSGIVerboseDebugging is deprecated and has no effect. ...").
    pub fn verbose_debugging(&self) -> bool {
        self.verbose_debugging.unwrap_or(false)
    }

    /// WSGIDontWriteBytecode, default Off.
    pub fn dont_write_bytecode(&self) -> bool {
        self.dont_write_bytecode.unwrap_or(false)
    }

    /// Every WSGIPythonWarnings value, in order (each is a `-W` option).
    pub fn python_warnings(&self) -> &[String] {
        &self.python_warnings
    }

    /// WSGIPythonOptimize, default 0. mod_wsgi reads it with `atoi` and only
    /// applies values above 0, so negatives and garbage read as 0.
    pub fn python_optimize(&self) -> i32 {
        self.python_optimize.unwrap_or(0).max(0)
    }

    /// WSGIPythonHome.
    pub fn python_home(&self) -> Option<&str> {
        self.python_home.as_deref()
    }

    /// WSGIPythonPath split on ':' (empty when unset). mod_wsgi passes each
    /// entry to `site.addsitedir()`.
    pub fn python_path(&self) -> &[String] {
        self.python_path.as_deref().unwrap_or(&[])
    }

    /// WSGIPythonEggs (PYTHON_EGG_CACHE).
    pub fn python_eggs(&self) -> Option<&str> {
        self.python_eggs.as_deref()
    }

    /// WSGIPythonHashSeed; None leaves Python's default.
    pub fn python_hash_seed(&self) -> Option<PythonHashSeed> {
        self.python_hash_seed
    }

    /// WSGIDestroyInterpreter, default On.
    pub fn destroy_interpreter(&self) -> bool {
        self.destroy_interpreter.unwrap_or(true)
    }

    /// WSGIRestrictEmbedded, default Off.
    pub fn restrict_embedded(&self) -> bool {
        self.restrict_embedded.unwrap_or(false)
    }

    /// WSGIRestrictStdin, default Off (since mod_wsgi 3.0).
    pub fn restrict_stdin(&self) -> bool {
        self.restrict_stdin.unwrap_or(false)
    }

    /// WSGIRestrictStdout, default Off (since mod_wsgi 3.0).
    pub fn restrict_stdout(&self) -> bool {
        self.restrict_stdout.unwrap_or(false)
    }

    /// WSGIRestrictSignal, default On.
    pub fn restrict_signal(&self) -> bool {
        self.restrict_signal.unwrap_or(true)
    }

    /// WSGICaseSensitivity: default Off on Windows and macOS, On elsewhere.
    pub fn case_sensitivity(&self) -> bool {
        self.case_sensitivity
            .unwrap_or(!cfg!(any(windows, target_os = "macos")))
    }

    /// WSGIServerMetrics, default Off.
    pub fn server_metrics(&self) -> bool {
        self.server_metrics.unwrap_or(false)
    }

    /// WSGILazyInitialization (mod_wsgi 4.x), default On: Python is
    /// initialised in the children, not the parent.
    pub fn lazy_initialization(&self) -> bool {
        self.lazy_initialization.unwrap_or(true)
    }
}

impl Merge for ServerConfig {
    /// mod_wsgi's `wsgi_merge_server_config`: the VirtualHost's aliases come
    /// first, then the main server's (so a VirtualHost's own alias wins).
    /// The GLOBAL_ONLY settings are never set in a VirtualHost; they are
    /// carried over so that any server's accessors answer as mod_wsgi's
    /// global `wsgi_server_config` (the main server's) does.
    fn merge(base: &Self, o: &Self) -> Self {
        let mut script_aliases = o.script_aliases.clone();
        script_aliases.extend(base.script_aliases.iter().cloned());
        let mut python_warnings = base.python_warnings.clone();
        python_warnings.extend(o.python_warnings.iter().cloned());
        ServerConfig {
            script_aliases,
            socket_prefix: o
                .socket_prefix
                .clone()
                .or_else(|| base.socket_prefix.clone()),
            socket_rotation: o.socket_rotation.or(base.socket_rotation),
            accept_mutex: o.accept_mutex.or(base.accept_mutex),
            verbose_debugging: o.verbose_debugging.or(base.verbose_debugging),
            dont_write_bytecode: o.dont_write_bytecode.or(base.dont_write_bytecode),
            python_warnings,
            python_optimize: o.python_optimize.or(base.python_optimize),
            python_home: o.python_home.clone().or_else(|| base.python_home.clone()),
            python_path: o.python_path.clone().or_else(|| base.python_path.clone()),
            python_eggs: o.python_eggs.clone().or_else(|| base.python_eggs.clone()),
            python_hash_seed: o.python_hash_seed.or(base.python_hash_seed),
            destroy_interpreter: o.destroy_interpreter.or(base.destroy_interpreter),
            restrict_embedded: o.restrict_embedded.or(base.restrict_embedded),
            restrict_stdin: o.restrict_stdin.or(base.restrict_stdin),
            restrict_stdout: o.restrict_stdout.or(base.restrict_stdout),
            restrict_signal: o.restrict_signal.or(base.restrict_signal),
            case_sensitivity: o.case_sensitivity.or(base.case_sensitivity),
            server_metrics: o.server_metrics.or(base.server_metrics),
            lazy_initialization: o.lazy_initialization.or(base.lazy_initialization),
        }
    }
}

/// A script to load at process start (WSGIImportScript, or a WSGIScriptAlias
/// naming both groups literally).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportScript {
    /// The script file.
    pub script: String,
    /// Daemon process group; "" is embedded mode (`%{GLOBAL}` already mapped).
    pub process_group: String,
    /// Application group; "" is the main interpreter (`%{GLOBAL}` mapped).
    pub application_group: String,
}

/// State of one whole configuration read: mod_wsgi keeps these as single
/// lists for the server, whichever VirtualHost declared the entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlobalConfig {
    /// WSGIDaemonProcess, in configuration order; `id` is the 1-based index.
    pub daemon_processes: Vec<DaemonProcess>,
    /// WSGIImportScript and preloading WSGIScriptAlias entries, in order.
    pub import_scripts: Vec<ImportScript>,
    /// A WSGIAccessScript, WSGIAuthUserScript or WSGIAuthGroupScript is in
    /// the server configuration: those run in Apache's children, which then
    /// need Python even under WSGIRestrictEmbedded On.
    pub access_scripts: bool,
}

impl GlobalConfig {
    pub fn daemon_processes(&self) -> &[DaemonProcess] {
        &self.daemon_processes
    }

    pub fn import_scripts(&self) -> &[ImportScript] {
        &self.import_scripts
    }

    /// The daemon process group with this exact name.
    pub fn find_daemon(&self, name: &str) -> Option<&DaemonProcess> {
        self.daemon_processes.iter().find(|d| d.name == name)
    }

    /// Whether the Apache children need Python: an import script runs in
    /// embedded mode (mod_wsgi's `wsgi_python_required`). Request handling
    /// in embedded mode needs it too unless WSGIRestrictEmbedded is On.
    pub fn embedded_imports(&self) -> bool {
        self.import_scripts
            .iter()
            .any(|s| s.process_group.is_empty())
    }
}

// ------------------------------------------------------------ parsers

/// `Invalid WSGISocketPrefix '<arg>'.`: when `ap_server_root_relative`
/// fails on the value (the lead resolves it).
pub fn invalid_socket_prefix(arg: &str) -> ConfigError {
    ConfigError::msg(format!("Invalid WSGISocketPrefix '{arg}'."))
}

pub(crate) fn set_accept_mutex(c: &mut ServerConfig, v: &str) -> Result<(), ConfigError> {
    let m = match v.to_ascii_lowercase().as_str() {
        "default" => AcceptMutex::Default,
        "flock" => AcceptMutex::Flock,
        "fcntl" => AcceptMutex::Fcntl,
        "sysvsem" => AcceptMutex::Sysvsem,
        "posixsem" => AcceptMutex::Posixsem,
        "pthread" => AcceptMutex::Pthread,
        _ => {
            // The list is what APR offers on Linux; mod_wsgi builds it from
            // the APR_HAS_*_SERIALIZE of the platform.
            return Err(ConfigError::msg(format!(
                "Accept mutex lock mechanism '{v}' is invalid. Valid accept mutex \
                 mechanisms for this platform are: default, flock, fcntl, sysvsem, \
                 posixsem, pthread."
            )));
        }
    };
    c.accept_mutex = Some(m);
    Ok(())
}

pub(crate) fn add_python_warnings(c: &mut ServerConfig, v: &str) -> Result<(), ConfigError> {
    c.python_warnings.push(v.to_string());
    Ok(())
}

pub(crate) fn set_python_optimize(c: &mut ServerConfig, v: &str) -> Result<(), ConfigError> {
    c.python_optimize = Some(atoi(v));
    Ok(())
}

pub(crate) fn set_python_path(c: &mut ServerConfig, v: &str) -> Result<(), ConfigError> {
    c.python_path = Some(v.split(':').map(String::from).collect());
    Ok(())
}

pub(crate) fn set_python_hash_seed(c: &mut ServerConfig, v: &str) -> Result<(), ConfigError> {
    let seed = if v == "random" {
        PythonHashSeed::Random
    } else {
        // PyOS_strtoul(v, &end, 10): leading whitespace, then digits only.
        let digits = v.trim_start_matches(|c: char| c.is_ascii() && super::is_space(c as u8));
        match digits.parse::<u32>() {
            Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => PythonHashSeed::Value(n),
            _ => {
                return Err(ConfigError::msg(
                    "WSGIPythonHashSeed must be \"random\" or an integer in range \
                     [0; 4294967295]",
                ));
            }
        }
    };
    c.python_hash_seed = Some(seed);
    Ok(())
}

/// WSGIImportScript path [process-group=NAME] [application-group=NAME]
pub(crate) fn apply_import_script(
    cx: &mut GlobalContext<'_>,
    args: &[&str],
) -> Result<(), ConfigError> {
    let script = match args.first() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => return Err(ConfigError::msg("Location of import script not supplied.")),
    };
    let mut process_group: Option<String> = None;
    let mut application_group: Option<String> = None;
    for tok in &args[1..] {
        let Some((name, value)) = parse_option(tok) else {
            return Err(ConfigError::msg(
                "Invalid option to WSGI import script definition.",
            ));
        };
        match name {
            "application-group" => {
                if value.is_empty() {
                    return Err(ConfigError::msg("Invalid name for WSGI application group."));
                }
                application_group = Some(value);
            }
            "process-group" => {
                if value.is_empty() {
                    return Err(ConfigError::msg("Invalid name for WSGI process group."));
                }
                process_group = Some(value);
            }
            _ => {
                return Err(ConfigError::msg(
                    "Invalid option to WSGI import script definition.",
                ));
            }
        }
    }
    let Some(mut application_group) = application_group else {
        return Err(ConfigError::msg("Name of WSGI application group required."));
    };
    if application_group == "%{GLOBAL}" {
        application_group.clear();
    }
    let Some(mut process_group) = process_group else {
        return Err(ConfigError::msg("Name of WSGI process group required."));
    };
    if process_group == "%{GLOBAL}" {
        process_group.clear();
    }
    if !process_group.is_empty() {
        check_group_reachable(cx.globals, &process_group, &cx.scope)?;
    }
    cx.globals.import_scripts.push(ImportScript {
        script,
        process_group,
        application_group,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Apply, ServerScope, find};
    use super::*;

    fn run(name: &str, args: &[&str]) -> Result<ServerConfig, ConfigError> {
        let mut c = ServerConfig::default();
        match find(name).unwrap().apply {
            Apply::Server(f) => f(&mut c, args)?,
            _ => panic!("{name} is not a server directive"),
        }
        Ok(c)
    }

    fn main_scope() -> ServerScope {
        ServerScope {
            hostname: Some("main.example".into()),
            is_virtual: false,
            server_id: 0,
        }
    }

    fn import(g: &mut GlobalConfig, scope: ServerScope, args: &[&str]) -> Result<(), ConfigError> {
        let mut s = ServerConfig::default();
        let mut cx = GlobalContext {
            server: &mut s,
            globals: g,
            scope,
        };
        apply_import_script(&mut cx, args)
    }

    #[test]
    fn defaults() {
        let c = ServerConfig::default();
        assert!(c.script_aliases().is_empty());
        assert_eq!(c.socket_prefix(), None);
        assert!(c.socket_rotation());
        assert_eq!(c.accept_mutex(), None);
        assert!(!c.verbose_debugging());
        assert!(!c.dont_write_bytecode());
        assert!(c.python_warnings().is_empty());
        assert_eq!(c.python_optimize(), 0);
        assert_eq!(c.python_home(), None);
        assert!(c.python_path().is_empty());
        assert_eq!(c.python_eggs(), None);
        assert_eq!(c.python_hash_seed(), None);
        assert!(c.destroy_interpreter());
        assert!(!c.restrict_embedded());
        assert!(!c.restrict_stdin());
        assert!(!c.restrict_stdout());
        assert!(c.restrict_signal());
        assert!(c.case_sensitivity());
        assert!(!c.server_metrics());
        assert!(c.lazy_initialization());
    }

    #[test]
    fn values() {
        assert_eq!(
            run("WSGIPythonHome", &["/venv"]).unwrap().python_home(),
            Some("/venv")
        );
        assert_eq!(
            run("WSGIPythonPath", &["/a:/b::/c"]).unwrap().python_path(),
            ["/a", "/b", "", "/c"]
        );
        assert_eq!(
            run("WSGIPythonEggs", &["/tmp/eggs"]).unwrap().python_eggs(),
            Some("/tmp/eggs")
        );
        assert_eq!(
            run("WSGISocketPrefix", &["run/wsgi"])
                .unwrap()
                .socket_prefix(),
            Some("run/wsgi")
        );
        assert_eq!(
            run("WSGIPythonOptimize", &["2"]).unwrap().python_optimize(),
            2
        );
        assert_eq!(
            run("WSGIPythonOptimize", &["1x"])
                .unwrap()
                .python_optimize(),
            1
        );
        assert_eq!(
            run("WSGIPythonOptimize", &["abc"])
                .unwrap()
                .python_optimize(),
            0
        );
        assert_eq!(
            run("WSGIPythonOptimize", &["-1"])
                .unwrap()
                .python_optimize(),
            0
        );
        assert!(
            run("WSGIRestrictStdout", &["On"])
                .unwrap()
                .restrict_stdout()
        );
        assert!(
            !run("WSGIRestrictSignal", &["Off"])
                .unwrap()
                .restrict_signal()
        );
        assert!(
            !run("WSGICaseSensitivity", &["off"])
                .unwrap()
                .case_sensitivity()
        );
        assert!(
            !run("WSGILazyInitialization", &["Off"])
                .unwrap()
                .lazy_initialization()
        );
        assert_eq!(
            run("WSGIAcceptMutex", &["FLOCK"]).unwrap().accept_mutex(),
            Some(AcceptMutex::Flock)
        );
    }

    #[test]
    fn python_warnings_accumulate() {
        let d = find("WSGIPythonWarnings").unwrap();
        let Apply::Server(f) = d.apply else { panic!() };
        let mut c = ServerConfig::default();
        f(&mut c, &["ignore::DeprecationWarning"]).unwrap();
        f(&mut c, &["error"]).unwrap();
        assert_eq!(c.python_warnings(), ["ignore::DeprecationWarning", "error"]);
    }

    #[test]
    fn hash_seed() {
        let seed = |v: &str| run("WSGIPythonHashSeed", &[v]).map(|c| c.python_hash_seed());
        assert_eq!(seed("random"), Ok(Some(PythonHashSeed::Random)));
        assert_eq!(seed("0"), Ok(Some(PythonHashSeed::Value(0))));
        assert_eq!(
            seed("4294967295"),
            Ok(Some(PythonHashSeed::Value(u32::MAX)))
        );
        assert_eq!(seed(" 12"), Ok(Some(PythonHashSeed::Value(12))));
        let err = "WSGIPythonHashSeed must be \"random\" or an integer in range [0; 4294967295]";
        for bad in ["4294967296", "-1", "+1", "Random", "12x", "0x10", " "] {
            assert_eq!(seed(bad).unwrap_err().to_string(), err, "{bad:?}");
        }
    }

    #[test]
    fn accept_mutex_sentence() {
        assert_eq!(
            run("WSGIAcceptMutex", &["sem"]).unwrap_err().to_string(),
            "Accept mutex lock mechanism 'sem' is invalid. Valid accept mutex mechanisms \
             for this platform are: default, flock, fcntl, sysvsem, posixsem, pthread."
        );
        assert_eq!(
            invalid_socket_prefix("x").to_string(),
            "Invalid WSGISocketPrefix 'x'."
        );
    }

    #[test]
    fn map_head_sentence_and_dir_sentences_live_in_dir() {
        // WSGIMapHEADToGET is a directory directive; checked in dir.rs.
        assert!(matches!(
            find("WSGIMapHEADToGET").unwrap().apply,
            Apply::Dir(_)
        ));
    }

    #[test]
    fn merge_vhost_over_main() {
        let mut main = ServerConfig {
            python_home: Some("/venv".into()),
            restrict_signal: Some(false),
            ..Default::default()
        };
        main.script_aliases
            .push(ScriptAlias::new("/", "/main.wsgi", false));
        let mut vhost = ServerConfig::default();
        vhost
            .script_aliases
            .push(ScriptAlias::new("/app", "/vhost.wsgi", false));
        let m = ServerConfig::merge(&main, &vhost);
        let locs: Vec<&str> = m
            .script_aliases()
            .iter()
            .map(|a| a.location.as_str())
            .collect();
        assert_eq!(locs, ["/app", "/"]);
        assert_eq!(m.python_home(), Some("/venv"));
        assert!(!m.restrict_signal());
        // Nothing set anywhere: still the defaults.
        let e = ServerConfig::merge(&ServerConfig::default(), &ServerConfig::default());
        assert_eq!(e, ServerConfig::default());
    }

    #[test]
    fn import_script() {
        let mut g = GlobalConfig::default();
        assert_eq!(
            import(&mut g, main_scope(), &[]).unwrap_err().to_string(),
            "Location of import script not supplied."
        );
        assert_eq!(
            import(&mut g, main_scope(), &[""]).unwrap_err().to_string(),
            "Location of import script not supplied."
        );
        assert_eq!(
            import(&mut g, main_scope(), &["/s.py", "bogus=1"])
                .unwrap_err()
                .to_string(),
            "Invalid option to WSGI import script definition."
        );
        assert_eq!(
            import(&mut g, main_scope(), &["/s.py", "noequals"])
                .unwrap_err()
                .to_string(),
            "Invalid option to WSGI import script definition."
        );
        assert_eq!(
            import(&mut g, main_scope(), &["/s.py", "application-group="])
                .unwrap_err()
                .to_string(),
            "Invalid name for WSGI application group."
        );
        assert_eq!(
            import(&mut g, main_scope(), &["/s.py", "process-group="])
                .unwrap_err()
                .to_string(),
            "Invalid name for WSGI process group."
        );
        assert_eq!(
            import(&mut g, main_scope(), &["/s.py", "process-group=%{GLOBAL}"])
                .unwrap_err()
                .to_string(),
            "Name of WSGI application group required."
        );
        assert_eq!(
            import(
                &mut g,
                main_scope(),
                &["/s.py", "application-group=%{GLOBAL}"]
            )
            .unwrap_err()
            .to_string(),
            "Name of WSGI process group required."
        );
        assert_eq!(
            import(
                &mut g,
                main_scope(),
                &["/s.py", "process-group=d", "application-group=a"]
            )
            .unwrap_err()
            .to_string(),
            "WSGI process group not yet configured."
        );
        import(
            &mut g,
            main_scope(),
            &[
                "/s.py",
                "process-group=%{GLOBAL}",
                "application-group=%{GLOBAL}",
            ],
        )
        .unwrap();
        assert_eq!(
            g.import_scripts(),
            [ImportScript {
                script: "/s.py".into(),
                process_group: "".into(),
                application_group: "".into()
            }]
        );
        assert!(g.embedded_imports());
    }
}

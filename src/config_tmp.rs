//! TEMPORARY minimal configuration layer, replaced by src/config/ (same
//! interface) as soon as it lands. Do not extend.
#![forbid(unsafe_code)]
use std::ffi::CStr;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{0}")]
    Message(String),
    #[error("{0} is not supported by mod_wsgi-rs yet.")]
    NotSupported(String),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegexHandle(pub usize);

#[derive(Clone, Debug, Default)]
pub struct ScriptAlias {
    pub location: String,
    pub path: String,
    pub is_regex: bool,
    pub compiled: Option<RegexHandle>,
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
}

#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    pub script_aliases: Vec<ScriptAlias>,
    pub python_home: Option<String>,
    pub python_path: Vec<String>,
}
impl ServerConfig {
    pub fn script_aliases(&self) -> &[ScriptAlias] {
        &self.script_aliases
    }
    pub fn script_aliases_mut(&mut self) -> &mut Vec<ScriptAlias> {
        &mut self.script_aliases
    }
    pub fn python_home(&self) -> Option<&str> {
        self.python_home.as_deref()
    }
    pub fn python_path(&self) -> &[String] {
        &self.python_path
    }
    pub fn python_optimize(&self) -> i32 {
        0
    }
    pub fn python_hash_seed(&self) -> Option<&str> {
        None
    }
    pub fn python_warnings(&self) -> &[String] {
        &[]
    }
    pub fn dont_write_bytecode(&self) -> bool {
        false
    }
    pub fn restrict_stdout(&self) -> bool {
        false
    }
    pub fn restrict_stdin(&self) -> bool {
        true
    }
}

#[derive(Clone, Debug, Default)]
pub struct DirConfig {
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
    pub script_reloading: Option<bool>,
    pub pass_authorization: Option<bool>,
}
impl DirConfig {
    pub fn application_group(&self) -> &str {
        self.application_group.as_deref().unwrap_or("%{RESOURCE}")
    }
    pub fn process_group(&self) -> &str {
        ""
    }
    pub fn callable_object(&self) -> &str {
        self.callable_object.as_deref().unwrap_or("application")
    }
    pub fn script_reloading(&self) -> bool {
        self.script_reloading.unwrap_or(true)
    }
    pub fn pass_authorization(&self) -> bool {
        self.pass_authorization.unwrap_or(false)
    }
    pub fn chunked_request(&self) -> bool {
        false
    }
}

pub trait Merge {
    fn merge(base: &Self, overrides: &Self) -> Self;
}
impl Merge for ServerConfig {
    fn merge(base: &Self, o: &Self) -> Self {
        let mut m = o.clone();
        if m.script_aliases.is_empty() {
            m.script_aliases = base.script_aliases.clone();
        }
        if m.python_home.is_none() {
            m.python_home = base.python_home.clone();
        }
        m
    }
}
impl Merge for DirConfig {
    fn merge(b: &Self, o: &Self) -> Self {
        DirConfig {
            application_group: o.application_group.clone().or(b.application_group.clone()),
            callable_object: o.callable_object.clone().or(b.callable_object.clone()),
            script_reloading: o.script_reloading.or(b.script_reloading),
            pass_authorization: o.pass_authorization.or(b.pass_authorization),
        }
    }
}

pub enum Apply {
    Server(fn(&mut ServerConfig, &[&str]) -> Result<(), ConfigError>),
    Dir(fn(&mut DirConfig, &[&str]) -> Result<(), ConfigError>),
    NotSupported,
}
pub struct DirectiveSpec {
    pub name: &'static CStr,
    pub req_override: u32,
    pub global_only: bool,
    pub not_in_dir: bool,
    pub help: &'static CStr,
    pub apply: Apply,
}

fn alias(c: &mut ServerConfig, a: &[&str]) -> Result<(), ConfigError> {
    if a.len() < 2 {
        return Err(ConfigError::Message(
            "WSGIScriptAlias takes at least two arguments".into(),
        ));
    }
    c.script_aliases.push(ScriptAlias {
        location: a[0].into(),
        path: a[1].into(),
        ..Default::default()
    });
    Ok(())
}
fn alias_match(c: &mut ServerConfig, a: &[&str]) -> Result<(), ConfigError> {
    alias(c, a)?;
    c.script_aliases.last_mut().unwrap().is_regex = true;
    Ok(())
}
fn onoff(name: &str, a: &[&str]) -> Result<bool, ConfigError> {
    match a {
        [v] if v.eq_ignore_ascii_case("on") => Ok(true),
        [v] if v.eq_ignore_ascii_case("off") => Ok(false),
        _ => Err(ConfigError::Message(format!(
            "{name} must be one of: Off | On"
        ))),
    }
}

pub static DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec {
        name: c"WSGIScriptAlias",
        req_override: 128,
        global_only: false,
        not_in_dir: true,
        help: c"Map location to target WSGI script file.",
        apply: Apply::Server(alias),
    },
    DirectiveSpec {
        name: c"WSGIScriptAliasMatch",
        req_override: 128,
        global_only: false,
        not_in_dir: true,
        help: c"Map location pattern to target WSGI script file.",
        apply: Apply::Server(alias_match),
    },
    DirectiveSpec {
        name: c"WSGIPythonHome",
        req_override: 128,
        global_only: true,
        not_in_dir: false,
        help: c"Python prefix/exec_prefix absolute path names.",
        apply: Apply::Server(|c, a| {
            c.python_home = Some(a[0].into());
            Ok(())
        }),
    },
    DirectiveSpec {
        name: c"WSGIPythonPath",
        req_override: 128,
        global_only: true,
        not_in_dir: false,
        help: c"Python module search path.",
        apply: Apply::Server(|c, a| {
            c.python_path = a[0].split(':').map(String::from).collect();
            Ok(())
        }),
    },
    DirectiveSpec {
        name: c"WSGIApplicationGroup",
        req_override: 192,
        global_only: false,
        not_in_dir: false,
        help: c"Application interpreter group.",
        apply: Apply::Dir(|c, a| {
            c.application_group = Some(a[0].into());
            Ok(())
        }),
    },
    DirectiveSpec {
        name: c"WSGICallableObject",
        req_override: 192,
        global_only: false,
        not_in_dir: false,
        help: c"Name of entry point in WSGI script file.",
        apply: Apply::Dir(|c, a| {
            c.callable_object = Some(a[0].into());
            Ok(())
        }),
    },
    DirectiveSpec {
        name: c"WSGIScriptReloading",
        req_override: 192,
        global_only: false,
        not_in_dir: false,
        help: c"Enable/Disable script reloading mechanism.",
        apply: Apply::Dir(|c, a| {
            c.script_reloading = Some(onoff("WSGIScriptReloading", a)?);
            Ok(())
        }),
    },
    DirectiveSpec {
        name: c"WSGIPassAuthorization",
        req_override: 192,
        global_only: false,
        not_in_dir: false,
        help: c"Enable/Disable WSGI authorization.",
        apply: Apply::Dir(|c, a| {
            c.pass_authorization = Some(onoff("WSGIPassAuthorization", a)?);
            Ok(())
        }),
    },
];

pub fn find(name: &str) -> Option<&'static DirectiveSpec> {
    DIRECTIVES.iter().find(|d| {
        d.name
            .to_str()
            .map(|n| n.eq_ignore_ascii_case(name))
            .unwrap_or(false)
    })
}

pub struct GroupContext<'a> {
    pub server_hostname: &'a str,
    pub server_port: u16,
    pub host_header: Option<&'a str>,
    pub script_name: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}
pub fn expand_application_group(t: &str, cx: &GroupContext) -> String {
    match t {
        "%{GLOBAL}" => String::new(),
        "%{RESOURCE}" => {
            if cx.server_port == 80 || cx.server_port == 443 {
                format!("{}|{}", cx.server_hostname, cx.script_name)
            } else {
                format!(
                    "{}:{}|{}",
                    cx.server_hostname, cx.server_port, cx.script_name
                )
            }
        }
        _ => t.to_string(),
    }
}
pub fn expand_process_group(t: &str, cx: &GroupContext) -> String {
    let _ = cx;
    match t {
        "%{GLOBAL}" => String::new(),
        _ => t.to_string(),
    }
}

//! WSGIScriptAlias and WSGIScriptAliasMatch.
//!
//! `WSGIScriptAlias URL-path file-path [option=value ...]` maps a URL
//! prefix (or, for the Match form, a regular expression) to a WSGI script.
//! The options `process-group`, `application-group`, `callable-object` and
//! `pass-authorization` override, for requests the alias matches, what
//! WSGIProcessGroup, WSGIApplicationGroup, WSGICallableObject and
//! WSGIPassAuthorization say.
#![forbid(unsafe_code)]

use super::daemon::check_group_reachable;
use super::{ConfigError, GlobalContext, ImportScript, on_off, parse_option};

/// An opaque token for a pattern compiled by the lead with httpd's
/// `ap_pregcomp` (so WSGIScriptAliasMatch behaves as AliasMatch does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegexHandle(pub usize);

/// One WSGIScriptAlias or WSGIScriptAliasMatch line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScriptAlias {
    /// The URL path, or the regular expression for the Match form.
    pub location: String,
    /// The script's file path (for the Match form it may hold `$1`...).
    pub path: String,
    /// WSGIScriptAliasMatch.
    pub is_regex: bool,
    /// Filled by the lead after compiling `location` (Match form only).
    pub compiled: Option<RegexHandle>,
    /// `process-group=`; `%{GLOBAL}` is stored as "" (embedded mode).
    pub process_group: Option<String>,
    /// `application-group=`; `%{GLOBAL}` is stored as "" (main interpreter).
    pub application_group: Option<String>,
    /// `callable-object=`.
    pub callable_object: Option<String>,
    /// `pass-authorization=On|Off`.
    pub pass_authorization: Option<bool>,
}

impl ScriptAlias {
    /// An alias without options.
    pub fn new(location: &str, path: &str, is_regex: bool) -> ScriptAlias {
        ScriptAlias {
            location: location.to_string(),
            path: path.to_string(),
            is_regex,
            compiled: None,
            process_group: None,
            application_group: None,
            callable_object: None,
            pass_authorization: None,
        }
    }
}

const ALIAS_HELP: &str = "Map location to target WSGI script file.";
const ALIAS_MATCH_HELP: &str = "Map location pattern to target WSGI script file.";

pub(crate) fn apply_script_alias(
    cx: &mut GlobalContext<'_>,
    a: &[&str],
) -> Result<(), ConfigError> {
    add_script_alias(cx, a, false)
}

pub(crate) fn apply_script_alias_match(
    cx: &mut GlobalContext<'_>,
    a: &[&str],
) -> Result<(), ConfigError> {
    add_script_alias(cx, a, true)
}

/// Parses one alias line into an entry. Exposed for tests and tools.
pub fn parse_script_alias(args: &[&str], is_regex: bool) -> Result<ScriptAlias, ConfigError> {
    let (name, help) = if is_regex {
        ("WSGIScriptAliasMatch", ALIAS_MATCH_HELP)
    } else {
        ("WSGIScriptAlias", ALIAS_HELP)
    };
    let (location, path) = match args {
        [l, p, ..] if !l.is_empty() && !p.is_empty() => (*l, *p),
        _ => return Err(ConfigError::at_least_two(name, help)),
    };
    let mut alias = ScriptAlias::new(location, path, is_regex);
    for tok in &args[2..] {
        let Some((option, value)) = parse_option(tok) else {
            return Err(ConfigError::msg(
                "Invalid option to WSGI script alias definition.",
            ));
        };
        match option {
            "application-group" => {
                if value.is_empty() {
                    return Err(ConfigError::msg("Invalid name for WSGI application group."));
                }
                alias.application_group = Some(global_to_empty(value));
            }
            "process-group" => {
                if value.is_empty() {
                    return Err(ConfigError::msg("Invalid name for WSGI process group."));
                }
                alias.process_group = Some(global_to_empty(value));
            }
            "callable-object" => {
                if value.is_empty() {
                    return Err(ConfigError::msg("Invalid name for WSGI callable object."));
                }
                alias.callable_object = Some(value);
            }
            "pass-authorization" => {
                let flag = on_off(&value)
                    .ok_or_else(|| ConfigError::msg("Invalid value for authorization flag."))?;
                alias.pass_authorization = Some(flag);
            }
            _ => {
                return Err(ConfigError::msg(
                    "Invalid option to WSGI script alias definition.",
                ));
            }
        }
    }
    Ok(alias)
}

fn global_to_empty(v: String) -> String {
    if v == "%{GLOBAL}" { String::new() } else { v }
}

fn add_script_alias(
    cx: &mut GlobalContext<'_>,
    args: &[&str],
    is_regex: bool,
) -> Result<(), ConfigError> {
    let alias = parse_script_alias(args, is_regex)?;
    // mod_wsgi preloads the script at process start when both groups are
    // named literally (no "%{"), and, for the Match form, the script path
    // holds no "$" substitution.
    let preload = match (&alias.process_group, &alias.application_group) {
        (Some(pg), Some(ag))
            if !pg.contains("%{")
                && !ag.contains("%{")
                && (!is_regex || !alias.path.contains('$')) =>
        {
            Some((pg.clone(), ag.clone()))
        }
        _ => None,
    };
    if let Some((process_group, application_group)) = preload {
        if !process_group.is_empty() {
            check_group_reachable(cx.globals, &process_group, &cx.scope)?;
        }
        cx.globals.import_scripts.push(ImportScript {
            script: alias.path.clone(),
            process_group,
            application_group,
        });
    }
    cx.server.script_aliases.push(alias);
    Ok(())
}

/// mod_alias's `alias_matches`, which mod_wsgi uses for WSGIScriptAlias:
/// the number of bytes of `uri` the alias matched (runs of '/' in either
/// match runs of '/' in the other; the alias must end at a path segment
/// boundary), or 0 when it does not match.
pub fn alias_matches(uri: &str, alias: &str) -> usize {
    let (u, a) = (uri.as_bytes(), alias.as_bytes());
    let (mut i, mut j) = (0, 0);
    while j < a.len() {
        if a[j] == b'/' {
            if u.get(i) != Some(&b'/') {
                return 0;
            }
            while a.get(j) == Some(&b'/') {
                j += 1;
            }
            while u.get(i) == Some(&b'/') {
                i += 1;
            }
        } else {
            if u.get(i) != Some(&a[j]) {
                return 0;
            }
            i += 1;
            j += 1;
        }
    }
    if j > 0 && a[j - 1] != b'/' && i < u.len() && u[i] != b'/' {
        return 0;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::super::{Apply, DaemonProcess, GlobalConfig, ServerConfig, ServerScope, find};
    use super::*;

    fn run(
        name: &str,
        g: &mut GlobalConfig,
        scope: ServerScope,
        args: &[&str],
    ) -> Result<ServerConfig, ConfigError> {
        let mut s = ServerConfig::default();
        let Apply::Global(f) = find(name).unwrap().apply else {
            panic!()
        };
        f(
            &mut GlobalContext {
                server: &mut s,
                globals: g,
                scope,
            },
            args,
        )?;
        Ok(s)
    }

    fn main_scope() -> ServerScope {
        ServerScope {
            hostname: Some("main.example".into()),
            is_virtual: false,
            server_id: 0,
        }
    }

    fn alias(args: &[&str]) -> Result<ScriptAlias, ConfigError> {
        let mut g = GlobalConfig::default();
        run("WSGIScriptAlias", &mut g, main_scope(), args).map(|s| s.script_aliases[0].clone())
    }

    #[test]
    fn plain() {
        let a = alias(&["/app", "/srv/app.wsgi"]).unwrap();
        assert_eq!(a, ScriptAlias::new("/app", "/srv/app.wsgi", false));
        let mut g = GlobalConfig::default();
        let s = run(
            "WSGIScriptAliasMatch",
            &mut g,
            main_scope(),
            &["^/(\\w+)", "/srv/$1.wsgi"],
        )
        .unwrap();
        assert_eq!(
            s.script_aliases[0],
            ScriptAlias::new("^/(\\w+)", "/srv/$1.wsgi", true)
        );
    }

    #[test]
    fn options() {
        let a = alias(&[
            "/",
            "/srv/app.wsgi",
            "process-group=%{GLOBAL}",
            "application-group=%{GLOBAL}",
            "callable-object=app",
            "pass-authorization=on",
        ])
        .unwrap();
        assert_eq!(a.process_group.as_deref(), Some(""));
        assert_eq!(a.application_group.as_deref(), Some(""));
        assert_eq!(a.callable_object.as_deref(), Some("app"));
        assert_eq!(a.pass_authorization, Some(true));
        let a = alias(&[
            "/",
            "/x",
            "application-group='%{SERVER}'",
            "pass-authorization=OFF",
        ])
        .unwrap();
        assert_eq!(a.application_group.as_deref(), Some("%{SERVER}"));
        assert_eq!(a.pass_authorization, Some(false));
    }

    #[test]
    fn sentences() {
        let e = |args: &[&str]| alias(args).unwrap_err().to_string();
        let two = "WSGIScriptAlias requires at least two arguments, Map location to target \
                   WSGI script file.";
        assert_eq!(e(&[]), two);
        assert_eq!(e(&["/a"]), two);
        assert_eq!(e(&["", "/x"]), two);
        assert_eq!(e(&["/a", ""]), two);
        let mut g = GlobalConfig::default();
        assert_eq!(
            run("WSGIScriptAliasMatch", &mut g, main_scope(), &["^/"])
                .unwrap_err()
                .to_string(),
            "WSGIScriptAliasMatch requires at least two arguments, Map location pattern to \
             target WSGI script file."
        );
        let bad = "Invalid option to WSGI script alias definition.";
        assert_eq!(e(&["/a", "/x", "bogus=1"]), bad);
        assert_eq!(e(&["/a", "/x", "process-group"]), bad);
        assert_eq!(e(&["/a", "/x", "=x"]), bad);
        assert_eq!(e(&["/a", "/x", "/extra"]), bad);
        assert_eq!(e(&["/a", "/x", "Process-Group=x"]), bad);
        assert_eq!(
            e(&["/a", "/x", "application-group="]),
            "Invalid name for WSGI application group."
        );
        assert_eq!(
            e(&["/a", "/x", "process-group="]),
            "Invalid name for WSGI process group."
        );
        assert_eq!(
            e(&["/a", "/x", "callable-object="]),
            "Invalid name for WSGI callable object."
        );
        assert_eq!(
            e(&["/a", "/x", "pass-authorization="]),
            "Invalid value for authorization flag."
        );
        assert_eq!(
            e(&["/a", "/x", "pass-authorization=yes"]),
            "Invalid value for authorization flag."
        );
    }

    #[test]
    fn preload_when_both_groups_literal() {
        let mut g = GlobalConfig::default();
        // Embedded + main interpreter: preloaded without any daemon.
        run(
            "WSGIScriptAlias",
            &mut g,
            main_scope(),
            &[
                "/",
                "/a.wsgi",
                "process-group=%{GLOBAL}",
                "application-group=%{GLOBAL}",
            ],
        )
        .unwrap();
        // Only one group: not preloaded.
        run(
            "WSGIScriptAlias",
            &mut g,
            main_scope(),
            &["/b", "/b.wsgi", "application-group=x"],
        )
        .unwrap();
        // Substitutions: not preloaded, not checked.
        run(
            "WSGIScriptAlias",
            &mut g,
            main_scope(),
            &[
                "/c",
                "/c.wsgi",
                "process-group=%{ENV:X}",
                "application-group=x",
            ],
        )
        .unwrap();
        run(
            "WSGIScriptAliasMatch",
            &mut g,
            main_scope(),
            &[
                "^/(d)",
                "/$1.wsgi",
                "process-group=%{GLOBAL}",
                "application-group=x",
            ],
        )
        .unwrap();
        assert_eq!(
            g.import_scripts(),
            [ImportScript {
                script: "/a.wsgi".into(),
                process_group: "".into(),
                application_group: "".into()
            }]
        );
        // A named daemon must exist already, and be reachable.
        assert_eq!(
            run(
                "WSGIScriptAlias",
                &mut g,
                main_scope(),
                &[
                    "/e",
                    "/e.wsgi",
                    "process-group=site",
                    "application-group=%{GLOBAL}"
                ],
            )
            .unwrap_err()
            .to_string(),
            "WSGI process group not yet configured."
        );
        let mut d = DaemonProcess::new("site");
        d.scope = ServerScope {
            hostname: Some("other.example".into()),
            is_virtual: true,
            server_id: 0,
        };
        g.daemon_processes.push(d);
        assert_eq!(
            run(
                "WSGIScriptAlias",
                &mut g,
                main_scope(),
                &[
                    "/e",
                    "/e.wsgi",
                    "process-group=site",
                    "application-group=%{GLOBAL}"
                ],
            )
            .unwrap_err()
            .to_string(),
            "WSGI process group not accessible."
        );
        // %{RESOURCE}, %{SERVER}, %{HOST} contain "%{": no preload, no check.
        run(
            "WSGIScriptAlias",
            &mut g,
            main_scope(),
            &[
                "/f",
                "/f.wsgi",
                "process-group=%{SERVER}",
                "application-group=x",
            ],
        )
        .unwrap();
        assert_eq!(g.import_scripts().len(), 1);
    }

    #[test]
    fn alias_matching() {
        assert_eq!(alias_matches("/app", "/app"), 4);
        assert_eq!(alias_matches("/app/x", "/app"), 4);
        assert_eq!(alias_matches("/apple", "/app"), 0);
        assert_eq!(alias_matches("//app//x", "/app"), 5);
        assert_eq!(alias_matches("/app", "/app/"), 0);
        assert_eq!(alias_matches("/app/", "/app/"), 5);
        assert_eq!(alias_matches("/anything", "/"), 1);
        assert_eq!(alias_matches("/", "/"), 1);
        assert_eq!(alias_matches("", "/"), 0);
        assert_eq!(alias_matches("/ap", "/app"), 0);
    }
}

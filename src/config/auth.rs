//! The script directives of the form `path [application-group=name]`: the
//! access-control ones (`WSGIAccessScript`, `WSGIAuthUserScript`,
//! `WSGIAuthGroupScript`, with `WSGIGroupAuthoritative`) and
//! `WSGIDispatchScript`.
//!
//! They are per-directory (AuthConfig override, so `.htaccess` too), and a
//! section's script replaces the one it inherits, as in mod_wsgi's merge.
//! The scripts always run in Apache's children (embedded mode), in the
//! named application group, `%{GLOBAL}` by default.
#![forbid(unsafe_code)]

use super::{ConfigError, DirConfig, flag, parse_option};

/// The directives whose scripts run in Apache's children, even for a
/// location served by a daemon process group.
pub const SCRIPT_DIRECTIVES: [&str; 4] = [
    "WSGIAccessScript",
    "WSGIAuthUserScript",
    "WSGIAuthGroupScript",
    "WSGIDispatchScript",
];

/// One access-control script: mod_wsgi's `WSGIScriptFile` as these
/// directives fill it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthScript {
    /// The script file, as written.
    pub path: String,
    /// `application-group=`, unexpanded; None means `%{GLOBAL}`. Expand
    /// with [`super::group::expand_server_group`].
    pub application_group: Option<String>,
}

/// Which of the three script directives, for its error sentences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptKind {
    Access,
    AuthUser,
    AuthGroup,
    Dispatch,
}

impl ScriptKind {
    /// The words mod_wsgi uses for it in "Location of ... not supplied."
    /// and "Invalid option to WSGI ... definition.".
    fn words(self) -> &'static str {
        match self {
            ScriptKind::Access => "access script",
            ScriptKind::AuthUser => "auth user script",
            ScriptKind::AuthGroup => "auth group script",
            ScriptKind::Dispatch => "dispatch script",
        }
    }
}

/// Parses `path [application-group=name]` with mod_wsgi's sentences.
pub fn parse_script(kind: ScriptKind, args: &[&str]) -> Result<AuthScript, ConfigError> {
    let path = match args.first() {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => {
            return Err(ConfigError::msg(format!(
                "Location of {} not supplied.",
                kind.words()
            )));
        }
    };
    let invalid = || {
        ConfigError::msg(format!(
            "Invalid option to WSGI {} definition.",
            kind.words()
        ))
    };
    let mut application_group = None;
    for tok in &args[1..] {
        let (name, value) = parse_option(tok).ok_or_else(invalid)?;
        if name != "application-group" {
            return Err(invalid());
        }
        if value.is_empty() {
            return Err(ConfigError::msg("Invalid name for WSGI application group."));
        }
        application_group = Some(value);
    }
    Ok(AuthScript {
        path,
        application_group,
    })
}

pub(crate) fn set_access_script(c: &mut DirConfig, args: &[&str]) -> Result<(), ConfigError> {
    c.access_script = Some(parse_script(ScriptKind::Access, args)?);
    Ok(())
}

pub(crate) fn set_auth_user_script(c: &mut DirConfig, args: &[&str]) -> Result<(), ConfigError> {
    c.auth_user_script = Some(parse_script(ScriptKind::AuthUser, args)?);
    Ok(())
}

pub(crate) fn set_auth_group_script(c: &mut DirConfig, args: &[&str]) -> Result<(), ConfigError> {
    c.auth_group_script = Some(parse_script(ScriptKind::AuthGroup, args)?);
    Ok(())
}

/// `WSGIDispatchScript path [application-group=name]`.
pub(crate) fn set_dispatch_script(c: &mut DirConfig, args: &[&str]) -> Result<(), ConfigError> {
    c.dispatch_script = Some(parse_script(ScriptKind::Dispatch, args)?);
    Ok(())
}

/// `WSGIGroupAuthoritative On|Off`. mod_wsgi stores it, but on Apache 2.4
/// it has no effect: the Apache 2.2 group check it governed (decline or
/// deny when the user is in none of the groups) became the `wsgi-group`
/// authz provider, whose DENIED mod_authz_core combines with the other
/// `Require` lines (`<RequireAny>` and friends) instead. Accepted so that
/// configurations written for mod_wsgi keep working.
pub(crate) fn set_group_authoritative(c: &mut DirConfig, args: &[&str]) -> Result<(), ConfigError> {
    c.group_authoritative = Some(flag(
        "WSGIGroupAuthoritative",
        "Enable/Disable as being authoritative on groups.",
        args,
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Apply, Merge, find};
    use super::*;

    fn run(name: &str, args: &[&str]) -> Result<DirConfig, ConfigError> {
        let mut c = DirConfig::default();
        match find(name).unwrap().apply {
            Apply::Dir(f) => f(&mut c, args)?,
            _ => panic!("{name} is not a directory directive"),
        }
        Ok(c)
    }

    fn err(name: &str, args: &[&str]) -> String {
        run(name, args).unwrap_err().to_string()
    }

    #[test]
    fn script_path_and_group() {
        let c = run("WSGIAuthUserScript", &["/srv/auth.wsgi"]).unwrap();
        assert_eq!(
            c.auth_user_script,
            Some(AuthScript {
                path: "/srv/auth.wsgi".into(),
                application_group: None
            })
        );
        let c = run(
            "WSGIAuthUserScript",
            &["/srv/a.wsgi", "application-group=%{GLOBAL}"],
        )
        .unwrap();
        assert_eq!(
            c.auth_user_script.unwrap().application_group.as_deref(),
            Some("%{GLOBAL}")
        );
        // The last option wins, as in mod_wsgi's loop.
        let c = run(
            "WSGIAuthUserScript",
            &["/a", "application-group=x", "application-group=y"],
        )
        .unwrap();
        assert_eq!(
            c.auth_user_script.unwrap().application_group.as_deref(),
            Some("y")
        );
    }

    #[test]
    fn group_script() {
        let c = run(
            "WSGIAuthGroupScript",
            &["/srv/g.wsgi", "application-group=django"],
        )
        .unwrap();
        let s = c.auth_group_script.unwrap();
        assert_eq!(s.path, "/srv/g.wsgi");
        assert_eq!(s.application_group.as_deref(), Some("django"));
        sentences("WSGIAuthGroupScript", "auth group script");
    }

    #[test]
    fn access_script() {
        let c = run("WSGIAccessScript", &["/srv/a.wsgi"]).unwrap();
        assert_eq!(c.access_script.unwrap().path, "/srv/a.wsgi");
        sentences("WSGIAccessScript", "access script");
    }

    #[test]
    fn dispatch_script() {
        let c = run(
            "WSGIDispatchScript",
            &["/srv/d.wsgi", "application-group=%{SERVER}"],
        )
        .unwrap();
        let s = c.dispatch_script.unwrap();
        assert_eq!(s.path, "/srv/d.wsgi");
        assert_eq!(s.application_group.as_deref(), Some("%{SERVER}"));
        sentences("WSGIDispatchScript", "dispatch script");
        let outer = run("WSGIDispatchScript", &["/outer.wsgi"]).unwrap();
        let m = DirConfig::merge(&outer, &DirConfig::default());
        assert_eq!(m.dispatch_script.unwrap().path, "/outer.wsgi");
    }

    #[test]
    fn user_script_sentences() {
        sentences("WSGIAuthUserScript", "auth user script");
    }

    /// mod_wsgi's sentences for a missing path and bad options.
    fn sentences(name: &str, words: &str) {
        assert_eq!(err(name, &[]), format!("Location of {words} not supplied."));
        assert_eq!(
            err(name, &[""]),
            format!("Location of {words} not supplied.")
        );
        for bad in [
            &["/a", "process-group=x"][..],
            &["/a", "nonsense"][..],
            &["/a", "=x"][..],
        ] {
            assert_eq!(
                err(name, bad),
                format!("Invalid option to WSGI {words} definition."),
                "{name} {bad:?}"
            );
        }
        assert_eq!(
            err(name, &["/a", "application-group="]),
            "Invalid name for WSGI application group."
        );
    }

    #[test]
    fn group_authoritative_flag() {
        assert_eq!(
            run("WSGIGroupAuthoritative", &["off"])
                .unwrap()
                .group_authoritative,
            Some(false)
        );
        assert_eq!(
            run("WSGIGroupAuthoritative", &["On"])
                .unwrap()
                .group_authoritative,
            Some(true)
        );
        assert_eq!(
            err("WSGIGroupAuthoritative", &["maybe"]),
            "WSGIGroupAuthoritative must be one of: Off | On"
        );
        assert_eq!(
            err("WSGIGroupAuthoritative", &[]),
            "WSGIGroupAuthoritative takes one argument, Enable/Disable as being authoritative on groups."
        );
        assert!(DirConfig::default().group_authoritative());
    }

    #[test]
    fn a_section_replaces_the_inherited_script() {
        let outer = run("WSGIAuthUserScript", &["/outer.wsgi"]).unwrap();
        let inner = run("WSGIAuthUserScript", &["/inner.wsgi"]).unwrap();
        let unrelated = DirConfig {
            pass_authorization: Some(true),
            ..DirConfig::default()
        };
        let m = DirConfig::merge(&outer, &inner);
        assert_eq!(m.auth_user_script.unwrap().path, "/inner.wsgi");
        let m = DirConfig::merge(&outer, &unrelated);
        assert_eq!(m.auth_user_script.unwrap().path, "/outer.wsgi");
        assert_eq!(m.pass_authorization, Some(true));
    }
}

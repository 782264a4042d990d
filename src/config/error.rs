//! The one error type of the configuration layer.
//!
//! `Display` is exactly the sentence Apache prints after
//! `Syntax error on line N of FILE:`. Every sentence mod_wsgi itself prints
//! is reproduced verbatim; the constructors below build the ones httpd's
//! `invoke_cmd` prints for the arity mod_wsgi declares (our directives are
//! all registered as RAW_ARGS, so the arity check happens here).
#![forbid(unsafe_code)]

/// A directive was rejected; Apache refuses to start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A sentence mod_wsgi or httpd would print, verbatim.
    #[error("{0}")]
    Message(String),
    /// The directive (named by the field) is a real mod_wsgi directive that
    /// mod_wsgi-rs does not implement yet.
    #[error("{}", not_supported_sentence(.0))]
    NotSupported(String),
}

impl ConfigError {
    /// A fixed or formatted sentence.
    pub fn msg(s: impl Into<String>) -> ConfigError {
        ConfigError::Message(s.into())
    }

    /// httpd's TAKE1 arity sentence.
    pub fn takes_one(name: &str, help: &str) -> ConfigError {
        ConfigError::Message(format!("{name} takes one argument, {help}"))
    }

    /// httpd's TAKE2 arity sentence.
    pub fn takes_two(name: &str, help: &str) -> ConfigError {
        ConfigError::Message(format!("{name} takes two arguments, {help}"))
    }

    /// httpd's TAKE12 arity sentence.
    pub fn takes_one_or_two(name: &str, help: &str) -> ConfigError {
        ConfigError::Message(format!("{name} takes 1-2 arguments, {help}"))
    }

    /// mod_wsgi's own sentence for its TAKE1 On/Off directives.
    pub fn on_off(name: &str) -> ConfigError {
        ConfigError::Message(format!("{name} must be one of: Off | On"))
    }

    /// `WSGIScriptAlias(Match)`'s own arity sentence (mod_wsgi builds it
    /// from the command table's name and help).
    pub fn at_least_two(name: &str, help: &str) -> ConfigError {
        ConfigError::Message(format!("{name} requires at least two arguments, {help}"))
    }

    /// Sentence used when httpd's `ap_pregcomp` rejects a
    /// `WSGIScriptAliasMatch` pattern (the lead compiles it).
    pub fn regex_not_compiled() -> ConfigError {
        ConfigError::Message("Regular expression could not be compiled.".into())
    }
}

/// A short pointer for the user, by directive, where one helps.
fn not_supported_hint(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "wsgiuserauthoritative" => {
            "It only ever applied to Apache 2.2; with Apache 2.4 remove it \
             (AuthBasicAuthoritative does the same for Basic authentication)."
        }
        "wsgipy3kwarningflag" => "It only ever applied to Python 2.",
        "wsginewrelicconfigfile" | "wsginewrelicenvironment" => {
            "Configure the New Relic agent from the WSGI script file instead."
        }
        "<wsgiinterpreteroptions" => "Set the directives it contains at server level instead.",
        _ => return None,
    })
}

fn not_supported_sentence(name: &str) -> String {
    match not_supported_hint(name) {
        Some(hint) => format!("{name} is not supported by mod_wsgi-rs yet. {hint}"),
        None => format!("{name} is not supported by mod_wsgi-rs yet."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_sentences() {
        assert_eq!(
            ConfigError::takes_one("WSGIPythonHome", "Python prefix.").to_string(),
            "WSGIPythonHome takes one argument, Python prefix."
        );
        assert_eq!(
            ConfigError::takes_two("X", "h.").to_string(),
            "X takes two arguments, h."
        );
        assert_eq!(
            ConfigError::takes_one_or_two("X", "h.").to_string(),
            "X takes 1-2 arguments, h."
        );
        assert_eq!(
            ConfigError::at_least_two("WSGIScriptAlias", "Map.").to_string(),
            "WSGIScriptAlias requires at least two arguments, Map."
        );
        assert_eq!(
            ConfigError::on_off("WSGIRestrictStdin").to_string(),
            "WSGIRestrictStdin must be one of: Off | On"
        );
        assert_eq!(
            ConfigError::regex_not_compiled().to_string(),
            "Regular expression could not be compiled."
        );
    }

    #[test]
    fn not_supported_sentences() {
        assert_eq!(
            ConfigError::NotSupported("WSGISwitchInterval".into()).to_string(),
            "WSGISwitchInterval is not supported by mod_wsgi-rs yet."
        );
        assert_eq!(
            ConfigError::NotSupported("WSGIPy3kWarningFlag".into()).to_string(),
            "WSGIPy3kWarningFlag is not supported by mod_wsgi-rs yet. \
             It only ever applied to Python 2."
        );
    }
}

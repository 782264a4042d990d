//! Request-time expansion of process group, application group and callable
//! object names, exactly as mod_wsgi's `wsgi_process_group`,
//! `wsgi_application_group` and `wsgi_callable_object` do it.
//!
//! Only a whole value is ever substituted: `%{GLOBAL}`, `%{RESOURCE}`,
//! `%{SERVER}`, `%{HOST}` or `%{ENV:name}`; anything else (including an
//! unknown `%{...}` or an unset variable) is used literally.
#![forbid(unsafe_code)]

/// What the request supplies to the expansion.
pub struct GroupContext<'a> {
    /// `r->server->server_hostname`.
    pub server_hostname: &'a str,
    /// `ap_get_server_port(r)`.
    pub server_port: u16,
    /// `r->hostname` (from the Host header or the request line); None or
    /// empty falls back to `server_hostname`.
    pub host_header: Option<&'a str>,
    /// The script name for `%{RESOURCE}`: [`resource_script_name`].
    pub script_name: &'a str,
    /// Variable lookup for `%{ENV:name}`: mod_wsgi looks in `r->notes`,
    /// then `r->subprocess_env`, then the process environment (`getenv`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

fn with_port(host: &str, port: u16) -> String {
    if port == 80 || port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

fn server(cx: &GroupContext) -> String {
    with_port(cx.server_hostname, cx.server_port)
}

fn host(cx: &GroupContext) -> String {
    match cx.host_header {
        Some(h) if !h.is_empty() => with_port(h, cx.server_port),
        _ => with_port(cx.server_hostname, cx.server_port),
    }
}

/// `host[:port]|script_name`, the port left out when it is 80 or 443.
fn resource(cx: &GroupContext) -> String {
    format!("{}|{}", server(cx), cx.script_name)
}

/// The variable named by `%{ENV:name}`, if `template` is of that form.
fn env_name(template: &str) -> Option<&str> {
    template
        .strip_prefix("%{ENV:")?
        .strip_suffix('}')
        .filter(|n| !n.is_empty())
}

/// Shared by the process and application group rules (they differ only
/// in what an unset WSGI*Group means, which the accessors handle).
fn expand_group(template: &str, cx: &GroupContext) -> String {
    match template {
        "%{GLOBAL}" => return String::new(),
        "%{RESOURCE}" => return resource(cx),
        "%{SERVER}" => return server(cx),
        "%{HOST}" => return host(cx),
        _ => {}
    }
    if let Some(value) = env_name(template).and_then(|name| (cx.env)(name)) {
        // A value that is itself a %{...} form is expanded once more,
        // except another %{ENV:...}, which is used literally.
        if value.starts_with('%') && !value.starts_with("%{ENV:") {
            return expand_group(&value, cx);
        }
        return value;
    }
    template.to_string()
}

/// The application group (interpreter name) for a request: "" is the main
/// interpreter. `template` is [`crate::config::DirConfig::application_group`]
/// (default `%{RESOURCE}`) or an alias's `application-group=`.
pub fn expand_application_group(template: &str, cx: &GroupContext) -> String {
    expand_group(template, cx)
}

/// The daemon process group for a request: "" is embedded mode.
/// `template` is [`crate::config::DirConfig::process_group`] (default "")
/// or an alias's `process-group=`.
pub fn expand_process_group(template: &str, cx: &GroupContext) -> String {
    expand_group(template, cx)
}

/// The interpreter for an access-control script (mod_wsgi's
/// `wsgi_server_group`): unset or `%{GLOBAL}` is the main interpreter "";
/// `%{SERVER}` and `%{HOST}` expand; anything else, `%{RESOURCE}` and
/// `%{ENV:name}` included, is a literal group name.
pub fn expand_server_group(template: Option<&str>, cx: &GroupContext) -> String {
    match template {
        None | Some("%{GLOBAL}") => String::new(),
        Some("%{SERVER}") => server(cx),
        Some("%{HOST}") => host(cx),
        Some(t) => t.to_string(),
    }
}

/// The callable object's name: a literal, or `%{ENV:name}`; any other
/// `%...` form, or an unset variable, gives "application".
pub fn expand_callable_object(template: &str, cx: &GroupContext) -> String {
    if !template.starts_with('%') {
        return template.to_string();
    }
    env_name(template)
        .and_then(|n| (cx.env)(n))
        .unwrap_or_else(|| "application".to_string())
}

/// mod_wsgi's `wsgi_script_name` (mod_wsgi 6): the part of `uri` before
/// `path_info`, with repeated slashes collapsed, lower-cased when the file
/// system is not case sensitive (WSGICaseSensitivity Off). This is the
/// `script_name` of `%{RESOURCE}`, and of the module cache key.
pub fn resource_script_name(uri: &str, path_info: &str, case_sensitive: bool) -> String {
    let mut name = if path_info.is_empty() {
        uri.to_string()
    } else {
        uri[..find_path_info(uri, path_info)].to_string()
    };
    if name.contains("//") {
        let mut out = String::with_capacity(name.len());
        let mut prev_slash = false;
        for c in name.chars() {
            if !(c == '/' && prev_slash) {
                out.push(c);
            }
            prev_slash = c == '/';
        }
        name = out;
    }
    if !case_sensitive {
        name.make_ascii_lowercase();
    }
    name
}

/// mod_wsgi's `wsgi_find_path_info`: where in `uri` the path info starts,
/// matching from the end and letting runs of '/' in the URI match one '/'.
fn find_path_info(uri: &str, path_info: &str) -> usize {
    let u = uri.as_bytes();
    let p = path_info.as_bytes();
    let mut lu = u.len() as isize;
    let mut lp = p.len() as isize;
    loop {
        // C: while (lu-- && lp-- && uri[lu] == path_info[lp])
        let old = lu;
        lu -= 1;
        if old == 0 {
            break;
        }
        let oldp = lp;
        lp -= 1;
        if oldp == 0 {
            break;
        }
        if u[lu as usize] != p[lp as usize] {
            break;
        }
        if p[lp as usize] == b'/' {
            while lu > 0 && u[lu as usize - 1] == b'/' {
                lu -= 1;
            }
        }
    }
    let mut lu = lu.max(0) as usize;
    while lu < u.len() && u[lu] != b'/' {
        lu += 1;
    }
    // Stay on a character boundary (only ASCII '/' stops the scan).
    while !uri.is_char_boundary(lu) {
        lu += 1;
    }
    lu
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "GROUP" => Some("from-env".into()),
            "SERVERISH" => Some("%{SERVER}".into()),
            "NESTED" => Some("%{ENV:GROUP}".into()),
            "PCT" => Some("%weird".into()),
            _ => None,
        }
    }

    fn cx<'a>(port: u16, host: Option<&'a str>) -> GroupContext<'a> {
        GroupContext {
            server_hostname: "www.example.com",
            server_port: port,
            host_header: host,
            script_name: "/app",
            env: &env,
        }
    }

    #[test]
    fn server_group_for_access_scripts() {
        let c = cx(8080, Some("alias.example.com"));
        assert_eq!(expand_server_group(None, &c), "");
        assert_eq!(expand_server_group(Some("%{GLOBAL}"), &c), "");
        assert_eq!(
            expand_server_group(Some("%{SERVER}"), &c),
            "www.example.com:8080"
        );
        assert_eq!(
            expand_server_group(Some("%{HOST}"), &c),
            "alias.example.com:8080"
        );
        assert_eq!(
            expand_server_group(Some("%{HOST}"), &cx(443, None)),
            "www.example.com"
        );
        // No %{RESOURCE} or %{ENV:...} for these scripts: taken literally.
        assert_eq!(expand_server_group(Some("%{RESOURCE}"), &c), "%{RESOURCE}");
        assert_eq!(
            expand_server_group(Some("%{ENV:GROUP}"), &c),
            "%{ENV:GROUP}"
        );
        assert_eq!(expand_server_group(Some("django"), &c), "django");
    }

    #[test]
    fn application_group() {
        let c = cx(80, Some("alias.example.com"));
        assert_eq!(expand_application_group("%{GLOBAL}", &c), "");
        assert_eq!(
            expand_application_group("%{RESOURCE}", &c),
            "www.example.com|/app"
        );
        assert_eq!(expand_application_group("%{SERVER}", &c), "www.example.com");
        assert_eq!(expand_application_group("%{HOST}", &c), "alias.example.com");
        assert_eq!(expand_application_group("%{ENV:GROUP}", &c), "from-env");
        assert_eq!(
            expand_application_group("%{ENV:SERVERISH}", &c),
            "www.example.com"
        );
        assert_eq!(
            expand_application_group("%{ENV:NESTED}", &c),
            "%{ENV:GROUP}"
        );
        assert_eq!(expand_application_group("%{ENV:PCT}", &c), "%weird");
        assert_eq!(expand_application_group("%{ENV:UNSET}", &c), "%{ENV:UNSET}");
        assert_eq!(expand_application_group("%{ENV:}", &c), "%{ENV:}");
        assert_eq!(expand_application_group("%{OTHER}", &c), "%{OTHER}");
        assert_eq!(expand_application_group("%", &c), "%");
        assert_eq!(expand_application_group("", &c), "");
        assert_eq!(expand_application_group("literal", &c), "literal");
        assert_eq!(expand_application_group("x%{GLOBAL}", &c), "x%{GLOBAL}");
    }

    #[test]
    fn ports() {
        assert_eq!(
            expand_application_group("%{RESOURCE}", &cx(443, None)),
            "www.example.com|/app"
        );
        assert_eq!(
            expand_application_group("%{RESOURCE}", &cx(8080, None)),
            "www.example.com:8080|/app"
        );
        assert_eq!(
            expand_application_group("%{SERVER}", &cx(8443, None)),
            "www.example.com:8443"
        );
        assert_eq!(
            expand_application_group("%{HOST}", &cx(8000, None)),
            "www.example.com:8000"
        );
        assert_eq!(
            expand_application_group("%{HOST}", &cx(8000, Some(""))),
            "www.example.com:8000"
        );
        assert_eq!(
            expand_application_group("%{HOST}", &cx(81, Some("h"))),
            "h:81"
        );
    }

    #[test]
    fn process_group() {
        let c = cx(80, None);
        assert_eq!(expand_process_group("", &c), "");
        assert_eq!(expand_process_group("%{GLOBAL}", &c), "");
        assert_eq!(expand_process_group("site", &c), "site");
        assert_eq!(
            expand_process_group("%{RESOURCE}", &c),
            "www.example.com|/app"
        );
        assert_eq!(expand_process_group("%{SERVER}", &c), "www.example.com");
        assert_eq!(expand_process_group("%{HOST}", &c), "www.example.com");
        assert_eq!(expand_process_group("%{ENV:GROUP}", &c), "from-env");
        assert_eq!(expand_process_group("%{ENV:UNSET}", &c), "%{ENV:UNSET}");
    }

    #[test]
    fn callable_object() {
        let c = cx(80, None);
        assert_eq!(expand_callable_object("application", &c), "application");
        assert_eq!(expand_callable_object("app", &c), "app");
        assert_eq!(expand_callable_object("%{ENV:GROUP}", &c), "from-env");
        assert_eq!(expand_callable_object("%{ENV:UNSET}", &c), "application");
        assert_eq!(expand_callable_object("%{GLOBAL}", &c), "application");
        assert_eq!(expand_callable_object("%", &c), "application");
    }

    #[test]
    fn script_name() {
        assert_eq!(resource_script_name("/app", "", true), "/app");
        assert_eq!(resource_script_name("/app/x/y", "/x/y", true), "/app");
        assert_eq!(resource_script_name("/app//x", "/x", true), "/app");
        assert_eq!(resource_script_name("//app///x", "/x", true), "/app");
        assert_eq!(resource_script_name("/App/X", "/X", true), "/App");
        assert_eq!(resource_script_name("/App/X", "/X", false), "/app");
        assert_eq!(resource_script_name("/a.wsgi/", "/", true), "/a.wsgi");
        assert_eq!(resource_script_name("/x", "/x", true), "");
        assert_eq!(resource_script_name("/", "", true), "/");
        assert_eq!(resource_script_name("/é/x", "/x", true), "/é");
        // path_info not a suffix of the uri (e.g. decoded): cut at a '/'.
        assert_eq!(
            resource_script_name("/app/a%20b", "/a b", true),
            "/app/a%20b"
        );
        assert_eq!(
            resource_script_name("/app/q/a%20b", "/q/a b", true),
            "/app/q/a%20b"
        );
    }
}

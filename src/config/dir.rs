//! Per-directory configuration: the settings mod_wsgi accepts at server
//! level and in `<Directory>`, `<Location>`, `<Files>` and `.htaccess`.
//!
//! mod_wsgi stores a server-level value in its server config and a section
//! value in its directory config, and at request time takes the directory
//! value, else the server value, else the default. Storing server-level
//! values in the server's default directory config (httpd's
//! `lookup_defaults`, which each request's directory merge starts from, and
//! which a VirtualHost merges over the main server's) gives the same answer.
#![forbid(unsafe_code)]

use super::{AuthScript, ConfigError, Merge, on_off, parse_option};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// WSGIMapHEADToGET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapHeadToGet {
    /// HEAD is passed to the application as HEAD.
    Off,
    /// HEAD is always passed to the application as GET.
    On,
    /// As GET only when Apache has output filters that need the body
    /// (mod_wsgi checks whether any output filter other than its own and
    /// the core ones is present).
    Auto,
}

impl MapHeadToGet {
    /// `strcasecmp` against Off / On / Auto.
    pub fn parse(v: &str) -> Option<MapHeadToGet> {
        if v.eq_ignore_ascii_case("off") {
            Some(MapHeadToGet::Off)
        } else if v.eq_ignore_ascii_case("on") {
            Some(MapHeadToGet::On)
        } else if v.eq_ignore_ascii_case("auto") {
            Some(MapHeadToGet::Auto)
        } else {
            None
        }
    }
}

/// One WSGITrustedProxies entry, as `apr_ipsubnet_create` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProxy {
    /// As written in the configuration.
    pub text: String,
    /// The network, already masked.
    pub network: IpAddr,
    /// The mask, same family as `network`.
    pub mask: IpAddr,
}

impl TrustedProxy {
    /// `apr_ipsubnet_test`: whether `ip` is in this subnet. An IPv4-mapped
    /// IPv6 client address is tested against IPv4 subnets.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if self.network.is_ipv4() => IpAddr::V4(v4),
                _ => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match (ip, self.network, self.mask) {
            (IpAddr::V4(a), IpAddr::V4(n), IpAddr::V4(m)) => {
                u32::from(a) & u32::from(m) == u32::from(n)
            }
            (IpAddr::V6(a), IpAddr::V6(n), IpAddr::V6(m)) => {
                u128::from(a) & u128::from(m) == u128::from(n)
            }
            _ => false,
        }
    }
}

/// Per-directory configuration. Every field is `None` when unset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirConfig {
    /// WSGIRestrictProcess (`%{GLOBAL}` stored as "").
    pub restrict_process: Option<Vec<String>>,
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
    pub pass_apache_request: Option<bool>,
    pub pass_authorization: Option<bool>,
    pub script_reloading: Option<bool>,
    pub error_override: Option<bool>,
    pub chunked_request: Option<bool>,
    pub map_head_to_get: Option<MapHeadToGet>,
    pub ignore_activity: Option<bool>,
    /// CGI names (`HTTP_X_FORWARDED_FOR`), in order.
    pub trusted_proxy_headers: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<TrustedProxy>>,
    pub enable_sendfile: Option<bool>,
    /// WSGIAccessScript.
    pub access_script: Option<AuthScript>,
    /// WSGIAuthUserScript.
    pub auth_user_script: Option<AuthScript>,
    /// WSGIAuthGroupScript.
    pub auth_group_script: Option<AuthScript>,
    /// WSGIGroupAuthoritative (no effect on Apache 2.4, see
    /// [`crate::config::auth`]).
    pub group_authoritative: Option<bool>,
    /// WSGIDispatchScript.
    pub dispatch_script: Option<AuthScript>,
    /// WSGIHandlerScript entries, one per handler name.
    pub handler_scripts: Option<Vec<HandlerScript>>,
}

/// One `WSGIHandlerScript name path [options]`: requests whose handler
/// (`SetHandler`/`AddHandler`) is `name` run `path`'s `handle_request`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandlerScript {
    /// The handler name, as written.
    pub name: String,
    /// The script file.
    pub path: String,
    /// `process-group=`; `%{GLOBAL}` is stored as "" (embedded mode).
    pub process_group: Option<String>,
    /// `application-group=`; `%{GLOBAL}` is stored as "".
    pub application_group: Option<String>,
    /// `pass-authorization=On|Off`.
    pub pass_authorization: Option<bool>,
}

impl DirConfig {
    /// WSGIRestrictProcess: the process groups this location may select
    /// ("" is embedded). None means no restriction; an empty list (the
    /// directive without arguments) allows none.
    pub fn restrict_process(&self) -> Option<&[String]> {
        self.restrict_process.as_deref()
    }

    /// Whether this location may run in process group `group` ("" is
    /// embedded mode) under WSGIRestrictProcess.
    pub fn may_select(&self, group: &str) -> bool {
        self.restrict_process()
            .is_none_or(|allowed| allowed.iter().any(|g| g == group))
    }

    /// WSGIProcessGroup template, default "" (embedded mode, as %{GLOBAL}).
    /// Expand with [`crate::config::expand_process_group`].
    pub fn process_group(&self) -> &str {
        self.process_group.as_deref().unwrap_or("")
    }

    /// WSGIApplicationGroup template, default "%{RESOURCE}". Expand with
    /// [`crate::config::expand_application_group`].
    pub fn application_group(&self) -> &str {
        self.application_group.as_deref().unwrap_or("%{RESOURCE}")
    }

    /// WSGICallableObject template, default "application". Expand with
    /// [`crate::config::expand_callable_object`] (it may be `%{ENV:var}`).
    pub fn callable_object(&self) -> &str {
        self.callable_object.as_deref().unwrap_or("application")
    }

    /// WSGIPassApacheRequest, default Off.
    pub fn pass_apache_request(&self) -> bool {
        self.pass_apache_request.unwrap_or(false)
    }

    /// WSGIPassAuthorization, default Off.
    pub fn pass_authorization(&self) -> bool {
        self.pass_authorization.unwrap_or(false)
    }

    /// WSGIScriptReloading, default On.
    pub fn script_reloading(&self) -> bool {
        self.script_reloading.unwrap_or(true)
    }

    /// WSGIErrorOverride, default Off.
    pub fn error_override(&self) -> bool {
        self.error_override.unwrap_or(false)
    }

    /// WSGIChunkedRequest, default Off.
    pub fn chunked_request(&self) -> bool {
        self.chunked_request.unwrap_or(false)
    }

    /// WSGIMapHEADToGET, default Auto.
    pub fn map_head_to_get(&self) -> MapHeadToGet {
        self.map_head_to_get.unwrap_or(MapHeadToGet::Auto)
    }

    /// WSGIIgnoreActivity, default Off.
    pub fn ignore_activity(&self) -> bool {
        self.ignore_activity.unwrap_or(false)
    }

    /// WSGITrustedProxyHeaders as CGI names; empty when unset.
    pub fn trusted_proxy_headers(&self) -> &[String] {
        self.trusted_proxy_headers.as_deref().unwrap_or(&[])
    }

    /// WSGITrustedProxies. None: the trusted headers are honoured whoever
    /// the client is; Some: only from a client in one of these subnets.
    pub fn trusted_proxies(&self) -> Option<&[TrustedProxy]> {
        self.trusted_proxies.as_deref()
    }

    /// WSGIEnableSendfile, default Off.
    pub fn enable_sendfile(&self) -> bool {
        self.enable_sendfile.unwrap_or(false)
    }

    /// WSGIAccessScript, if any.
    pub fn access_script(&self) -> Option<&AuthScript> {
        self.access_script.as_ref()
    }

    /// WSGIAuthUserScript, if any.
    pub fn auth_user_script(&self) -> Option<&AuthScript> {
        self.auth_user_script.as_ref()
    }

    /// WSGIAuthGroupScript, if any.
    pub fn auth_group_script(&self) -> Option<&AuthScript> {
        self.auth_group_script.as_ref()
    }

    /// WSGIGroupAuthoritative, default On.
    pub fn group_authoritative(&self) -> bool {
        self.group_authoritative.unwrap_or(true)
    }

    /// WSGIDispatchScript, if any.
    pub fn dispatch_script(&self) -> Option<&AuthScript> {
        self.dispatch_script.as_ref()
    }

    /// The WSGIHandlerScript registered for Apache handler `handler`.
    /// httpd lower-cases the names of SetHandler and AddHandler, so the
    /// comparison ignores case.
    pub fn handler_script(&self, handler: &str) -> Option<&HandlerScript> {
        self.handler_scripts
            .as_deref()?
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(handler))
    }
}

impl Merge for DirConfig {
    /// mod_wsgi's `wsgi_merge_dir_config`: each setting from the more
    /// specific section if set there, else inherited. Lists are replaced
    /// whole, never concatenated.
    fn merge(b: &Self, o: &Self) -> Self {
        DirConfig {
            restrict_process: o
                .restrict_process
                .clone()
                .or_else(|| b.restrict_process.clone()),
            process_group: o.process_group.clone().or_else(|| b.process_group.clone()),
            application_group: o
                .application_group
                .clone()
                .or_else(|| b.application_group.clone()),
            callable_object: o
                .callable_object
                .clone()
                .or_else(|| b.callable_object.clone()),
            pass_apache_request: o.pass_apache_request.or(b.pass_apache_request),
            pass_authorization: o.pass_authorization.or(b.pass_authorization),
            script_reloading: o.script_reloading.or(b.script_reloading),
            error_override: o.error_override.or(b.error_override),
            chunked_request: o.chunked_request.or(b.chunked_request),
            map_head_to_get: o.map_head_to_get.or(b.map_head_to_get),
            ignore_activity: o.ignore_activity.or(b.ignore_activity),
            trusted_proxy_headers: o
                .trusted_proxy_headers
                .clone()
                .or_else(|| b.trusted_proxy_headers.clone()),
            trusted_proxies: o
                .trusted_proxies
                .clone()
                .or_else(|| b.trusted_proxies.clone()),
            enable_sendfile: o.enable_sendfile.or(b.enable_sendfile),
            access_script: o.access_script.clone().or_else(|| b.access_script.clone()),
            auth_user_script: o
                .auth_user_script
                .clone()
                .or_else(|| b.auth_user_script.clone()),
            auth_group_script: o
                .auth_group_script
                .clone()
                .or_else(|| b.auth_group_script.clone()),
            group_authoritative: o.group_authoritative.or(b.group_authoritative),
            dispatch_script: o
                .dispatch_script
                .clone()
                .or_else(|| b.dispatch_script.clone()),
            handler_scripts: merge_handler_scripts(
                b.handler_scripts.as_deref(),
                o.handler_scripts.as_deref(),
            ),
        }
    }
}

/// A section's handler scripts are laid over the inherited ones, name by
/// name (mod_wsgi overlays the two tables).
fn merge_handler_scripts(
    b: Option<&[HandlerScript]>,
    o: Option<&[HandlerScript]>,
) -> Option<Vec<HandlerScript>> {
    match (b, o) {
        (None, None) => None,
        (Some(l), None) | (None, Some(l)) => Some(l.to_vec()),
        (Some(b), Some(o)) => {
            let mut all: Vec<HandlerScript> = b
                .iter()
                .filter(|h| !o.iter().any(|x| x.name.eq_ignore_ascii_case(&h.name)))
                .cloned()
                .collect();
            all.extend(o.iter().cloned());
            Some(all)
        }
    }
}

// ------------------------------------------------------------ parsers

/// `WSGIHandlerScript name path [process-group=...] [application-group=...]
/// [pass-authorization=On|Off]`, with mod_wsgi's sentences. A second line
/// for the same name in one section replaces the first.
pub(crate) fn add_handler_script(c: &mut DirConfig, args: &[&str]) -> Result<(), ConfigError> {
    let h = parse_handler_script(args)?;
    let list = c.handler_scripts.get_or_insert_with(Vec::new);
    list.retain(|x| !x.name.eq_ignore_ascii_case(&h.name));
    list.push(h);
    Ok(())
}

pub fn parse_handler_script(args: &[&str]) -> Result<HandlerScript, ConfigError> {
    let name = match args.first() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => return Err(ConfigError::msg("Name for handler script not supplied.")),
    };
    let path = match args.get(1) {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => {
            return Err(ConfigError::msg("Location of handler script not supplied."));
        }
    };
    let invalid = || ConfigError::msg("Invalid option to WSGI handler script definition.");
    let global = |v: String| if v == "%{GLOBAL}" { String::new() } else { v };
    let mut h = HandlerScript {
        name,
        path,
        ..HandlerScript::default()
    };
    for tok in &args[2..] {
        let (option, value) = parse_option(tok).ok_or_else(invalid)?;
        match option {
            "process-group" => {
                if value.is_empty() {
                    return Err(ConfigError::msg("Invalid name for WSGI process group."));
                }
                h.process_group = Some(global(value));
            }
            "application-group" => {
                if value.is_empty() {
                    return Err(ConfigError::msg("Invalid name for WSGI application group."));
                }
                h.application_group = Some(global(value));
            }
            "pass-authorization" => {
                let flag = on_off(&value)
                    .ok_or_else(|| ConfigError::msg("Invalid value for authorization flag."))?;
                h.pass_authorization = Some(flag);
            }
            _ => return Err(invalid()),
        }
    }
    Ok(h)
}

/// WSGIRestrictProcess [group ...]: each line replaces the previous list.
pub(crate) fn set_restrict_process(c: &mut DirConfig, args: &[&str]) -> Result<(), ConfigError> {
    let groups = args
        .iter()
        .map(|g| {
            if *g == "%{GLOBAL}" {
                String::new()
            } else {
                g.to_string()
            }
        })
        .collect();
    c.restrict_process = Some(groups);
    Ok(())
}

/// mod_wsgi's `wsgi_http2env`: `X-Forwarded-For` -> `HTTP_X_FORWARDED_FOR`;
/// None for a name with characters other than letters, digits and '-'.
pub fn http2env(name: &str) -> Option<String> {
    let mut out = String::with_capacity(5 + name.len());
    out.push_str("HTTP_");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if c == '-' {
            out.push('_');
        } else {
            return None;
        }
    }
    Some(out)
}

/// WSGITrustedProxyHeaders [header ...]: lines in the same context append.
/// A name mod_wsgi cannot convert (it would store a NULL) is skipped.
pub(crate) fn add_trusted_proxy_headers(
    c: &mut DirConfig,
    args: &[&str],
) -> Result<(), ConfigError> {
    let list = c.trusted_proxy_headers.get_or_insert_with(Vec::new);
    list.extend(args.iter().filter_map(|h| http2env(h)));
    Ok(())
}

/// WSGITrustedProxies [ip[/mask] ...]: lines in the same context append.
pub(crate) fn add_trusted_proxies(c: &mut DirConfig, args: &[&str]) -> Result<(), ConfigError> {
    let list = c.trusted_proxies.get_or_insert_with(Vec::new);
    for a in args {
        list.push(parse_trusted_proxy(a)?);
    }
    Ok(())
}

/// mod_wsgi's `wsgi_looks_like_ip` (note: lower-case hex only for IPv6).
fn looks_like_ip(ip: &str) -> bool {
    if ip.is_empty() {
        return false;
    }
    let set: &[u8] = if ip.contains(':') {
        b"0123456789abcdef:/"
    } else {
        b"0123456789./"
    };
    ip.bytes().all(|b| set.contains(&b))
}

const EBADIP: &str = "The specified IP address is invalid.";
const EBADMASK: &str = "The specified network mask is invalid.";

fn parse_trusted_proxy(text: &str) -> Result<TrustedProxy, ConfigError> {
    if !looks_like_ip(text) {
        return Err(ConfigError::msg(format!(
            "Unable to parse trusted proxy IP address/subnet of \"{text}\"."
        )));
    }
    let (ip, mask) = match text.split_once('/') {
        Some((ip, mask)) => (ip, Some(mask)),
        None => (text, None),
    };
    ipsubnet_create(ip, mask)
        .map(|(network, mask)| TrustedProxy {
            text: text.to_string(),
            network,
            mask,
        })
        .map_err(|apr| {
            ConfigError::msg(format!(
                "Unable to parse trusted proxy IP address/subnet of \"{text}\". {apr}"
            ))
        })
}

/// APR's `apr_ipsubnet_create`: (network, mask) or apr_strerror's sentence.
fn ipsubnet_create(ip: &str, mask: Option<&str>) -> Result<(IpAddr, IpAddr), &'static str> {
    // apr's looks_like_ip: a ':' means IPv6; else digits and dots only.
    if ip.is_empty() || !(ip.contains(':') || ip.bytes().all(|b| b == b'.' || b.is_ascii_digit())) {
        return Err("Invalid argument");
    }
    let (addr, mut netmask) = if let Ok(v6) = ip.parse::<Ipv6Addr>() {
        if v6.to_ipv4_mapped().is_some() {
            return Err(EBADIP);
        }
        (IpAddr::V6(v6), IpAddr::V6(Ipv6Addr::from(u128::MAX)))
    } else if let Ok(v4) = ip.parse::<Ipv4Addr>() {
        (IpAddr::V4(v4), IpAddr::V4(Ipv4Addr::from(u32::MAX)))
    } else if mask.is_none() {
        let (net, m) = parse_network(ip).ok_or(EBADIP)?;
        (IpAddr::V4(net), IpAddr::V4(m))
    } else {
        return Err(EBADIP);
    };
    if let Some(mask) = mask {
        let maxbits: i64 = if addr.is_ipv6() { 128 } else { 32 };
        let bits = strtol_whole(mask);
        netmask = match (bits, addr) {
            (Some(b), IpAddr::V4(_)) if b > 0 && b <= maxbits => {
                IpAddr::V4(Ipv4Addr::from(u32::MAX << (32 - b)))
            }
            (Some(b), IpAddr::V6(_)) if b > 0 && b <= maxbits => {
                IpAddr::V6(Ipv6Addr::from(u128::MAX << (128 - b)))
            }
            (_, IpAddr::V4(_)) => IpAddr::V4(mask.parse::<Ipv4Addr>().map_err(|_| EBADMASK)?),
            _ => return Err(EBADMASK),
        };
    }
    let network = match (addr, netmask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(m))),
        (IpAddr::V6(a), IpAddr::V6(m)) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & u128::from(m))),
        _ => unreachable!("mask and address share a family"),
    };
    Ok((network, netmask))
}

/// `strtol(s, &end, 10)` requiring `*end == '\0'`; None otherwise.
fn strtol_whole(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(|c: char| c.is_ascii() && super::is_space(c as u8));
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        // strtol consumed nothing: end is the start of s; whole only if s is "".
        return if s.is_empty() { Some(0) } else { None };
    }
    Some(super::atoi64(t))
}

/// APR's legacy partial network form: "10.1" is 10.1.0.0/16.
fn parse_network(s: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
    // APR copies it into a buffer of sizeof "255.255.255.255".
    if s.len() > "255.255.255.255".len() {
        return None;
    }
    let (mut net, mut mask) = (0u32, 0u32);
    let mut shift: i32 = 24;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            return None;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let octet = super::atoi64(&s[start..i]);
        if i < b.len() {
            // Only a '.' can follow digits here (looks_like_ip said so).
            i += 1;
        }
        if shift < 0 || !(0..=255).contains(&octet) {
            return None;
        }
        net |= (octet as u32) << shift;
        mask |= 0xff << shift;
        shift -= 8;
    }
    Some((Ipv4Addr::from(net), Ipv4Addr::from(mask)))
}

#[cfg(test)]
mod tests {
    use super::super::{Apply, find};
    use super::*;

    fn run(c: &mut DirConfig, name: &str, args: &[&str]) -> Result<(), ConfigError> {
        match find(name).unwrap().apply {
            Apply::Dir(f) => f(c, args),
            _ => panic!("{name} is not a directory directive"),
        }
    }

    fn one(name: &str, args: &[&str]) -> Result<DirConfig, ConfigError> {
        let mut c = DirConfig::default();
        run(&mut c, name, args)?;
        Ok(c)
    }

    #[test]
    fn defaults() {
        let c = DirConfig::default();
        assert_eq!(c.restrict_process(), None);
        assert_eq!(c.process_group(), "");
        assert_eq!(c.application_group(), "%{RESOURCE}");
        assert_eq!(c.callable_object(), "application");
        assert!(!c.pass_apache_request());
        assert!(!c.pass_authorization());
        assert!(c.script_reloading());
        assert!(!c.error_override());
        assert!(!c.chunked_request());
        assert_eq!(c.map_head_to_get(), MapHeadToGet::Auto);
        assert!(!c.ignore_activity());
        assert!(c.trusted_proxy_headers().is_empty());
        assert_eq!(c.trusted_proxies(), None);
        assert!(!c.enable_sendfile());
    }

    #[test]
    fn values() {
        assert_eq!(
            one("WSGIProcessGroup", &["site"]).unwrap().process_group(),
            "site"
        );
        assert_eq!(
            one("WSGIApplicationGroup", &["%{GLOBAL}"])
                .unwrap()
                .application_group(),
            "%{GLOBAL}"
        );
        assert_eq!(
            one("WSGICallableObject", &["app"])
                .unwrap()
                .callable_object(),
            "app"
        );
        assert!(
            one("WSGIPassAuthorization", &["On"])
                .unwrap()
                .pass_authorization()
        );
        assert!(
            !one("WSGIScriptReloading", &["Off"])
                .unwrap()
                .script_reloading()
        );
        assert!(one("WSGIErrorOverride", &["On"]).unwrap().error_override());
        assert!(
            one("WSGIChunkedRequest", &["On"])
                .unwrap()
                .chunked_request()
        );
        assert!(
            one("WSGIEnableSendfile", &["On"])
                .unwrap()
                .enable_sendfile()
        );
        assert!(
            one("WSGIIgnoreActivity", &["On"])
                .unwrap()
                .ignore_activity()
        );
        assert!(
            one("WSGIPassApacheRequest", &["On"])
                .unwrap()
                .pass_apache_request()
        );
        for (v, want) in [
            ("off", MapHeadToGet::Off),
            ("ON", MapHeadToGet::On),
            ("Auto", MapHeadToGet::Auto),
        ] {
            assert_eq!(
                one("WSGIMapHEADToGET", &[v]).unwrap().map_head_to_get(),
                want
            );
        }
        assert_eq!(
            one("WSGIMapHEADToGET", &["maybe"]).unwrap_err().to_string(),
            "WSGIMapHEADToGET must be one of: Off | On | Auto"
        );
    }

    #[test]
    fn restrict_process() {
        let mut c = DirConfig::default();
        run(&mut c, "WSGIRestrictProcess", &["a", "%{GLOBAL}"]).unwrap();
        assert_eq!(c.restrict_process().unwrap(), ["a", ""]);
        run(&mut c, "WSGIRestrictProcess", &["b"]).unwrap();
        assert_eq!(c.restrict_process().unwrap(), ["b"]);
        assert!(c.may_select("b"));
        assert!(!c.may_select("a"));
        assert!(!c.may_select(""));
        run(&mut c, "WSGIRestrictProcess", &[]).unwrap();
        assert_eq!(c.restrict_process().unwrap(), [] as [String; 0]);
        assert!(!c.may_select("b"));
        assert!(DirConfig::default().may_select("anything"));
    }

    #[test]
    fn trusted_proxy_headers() {
        let mut c = DirConfig::default();
        run(
            &mut c,
            "WSGITrustedProxyHeaders",
            &["X-Forwarded-For", "x-real-ip"],
        )
        .unwrap();
        run(
            &mut c,
            "WSGITrustedProxyHeaders",
            &["X_Bad", "X-Forwarded-Proto"],
        )
        .unwrap();
        assert_eq!(
            c.trusted_proxy_headers(),
            [
                "HTTP_X_FORWARDED_FOR",
                "HTTP_X_REAL_IP",
                "HTTP_X_FORWARDED_PROTO"
            ]
        );
        assert_eq!(http2env("Via"), Some("HTTP_VIA".into()));
        assert_eq!(http2env("a b"), None);
    }

    #[test]
    fn trusted_proxies_parse() {
        let mut c = DirConfig::default();
        run(
            &mut c,
            "WSGITrustedProxies",
            &[
                "127.0.0.1",
                "10.0.0.0/8",
                "192.168.1.7/255.255.255.0",
                "172.16",
            ],
        )
        .unwrap();
        run(&mut c, "WSGITrustedProxies", &["::1", "fd00::/8"]).unwrap();
        let p = c.trusted_proxies().unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p[1].network, "10.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(p[1].mask, "255.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(p[2].network, "192.168.1.0".parse::<IpAddr>().unwrap());
        assert_eq!(p[3].network, "172.16.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(p[3].mask, "255.255.0.0".parse::<IpAddr>().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(p[0].contains(ip("127.0.0.1")));
        assert!(!p[0].contains(ip("127.0.0.2")));
        assert!(p[1].contains(ip("10.200.3.4")));
        assert!(p[1].contains(ip("::ffff:10.1.1.1")));
        assert!(p[2].contains(ip("192.168.1.200")));
        assert!(p[3].contains(ip("172.16.9.9")));
        assert!(!p[3].contains(ip("172.17.0.1")));
        assert!(p[4].contains(ip("::1")));
        assert!(p[5].contains(ip("fd12::3")));
        assert!(!p[5].contains(ip("fe80::1")));
        // Empty list: trusts no client.
        let e = one("WSGITrustedProxies", &[]).unwrap();
        assert_eq!(e.trusted_proxies(), Some(&[][..]));
    }

    #[test]
    fn trusted_proxies_sentences() {
        let err = |v: &str| one("WSGITrustedProxies", &[v]).unwrap_err().to_string();
        assert_eq!(
            err("proxy.example.com"),
            "Unable to parse trusted proxy IP address/subnet of \"proxy.example.com\"."
        );
        assert_eq!(
            err("FD00::1"),
            "Unable to parse trusted proxy IP address/subnet of \"FD00::1\"."
        );
        assert_eq!(
            err("10.0.0.0/33"),
            "Unable to parse trusted proxy IP address/subnet of \"10.0.0.0/33\". \
             The specified network mask is invalid."
        );
        assert_eq!(
            err("10.0.0.0/"),
            "Unable to parse trusted proxy IP address/subnet of \"10.0.0.0/\". \
             The specified network mask is invalid."
        );
        assert_eq!(
            err("1.2.3.4.5"),
            "Unable to parse trusted proxy IP address/subnet of \"1.2.3.4.5\". \
             The specified IP address is invalid."
        );
        assert_eq!(
            err("300.1"),
            "Unable to parse trusted proxy IP address/subnet of \"300.1\". \
             The specified IP address is invalid."
        );
        assert_eq!(
            err("10.1/8"),
            "Unable to parse trusted proxy IP address/subnet of \"10.1/8\". \
             The specified IP address is invalid."
        );
        assert_eq!(
            err("::ffff:1.2.3.4"),
            "Unable to parse trusted proxy IP address/subnet of \"::ffff:1.2.3.4\"."
        );
        assert_eq!(
            err("::ffff:0102:0304"),
            "Unable to parse trusted proxy IP address/subnet of \"::ffff:0102:0304\". \
             The specified IP address is invalid."
        );
    }

    #[test]
    fn merge_section_over_parent() {
        let parent = DirConfig {
            process_group: Some("p".into()),
            application_group: Some("a".into()),
            script_reloading: Some(false),
            trusted_proxy_headers: Some(vec!["HTTP_A".into()]),
            ..Default::default()
        };
        let child = DirConfig {
            process_group: Some("c".into()),
            pass_authorization: Some(true),
            trusted_proxy_headers: Some(vec!["HTTP_B".into()]),
            ..Default::default()
        };
        let m = DirConfig::merge(&parent, &child);
        assert_eq!(m.process_group(), "c");
        assert_eq!(m.application_group(), "a");
        assert!(!m.script_reloading());
        assert!(m.pass_authorization());
        assert_eq!(m.trusted_proxy_headers(), ["HTTP_B"]);
        // An explicit Off in the child beats an On in the parent.
        let on = DirConfig {
            chunked_request: Some(true),
            ..Default::default()
        };
        let off = DirConfig {
            chunked_request: Some(false),
            ..Default::default()
        };
        assert!(!DirConfig::merge(&on, &off).chunked_request());
        assert!(DirConfig::merge(&on, &DirConfig::default()).chunked_request());
        assert_eq!(
            DirConfig::merge(&DirConfig::default(), &DirConfig::default()),
            DirConfig::default()
        );
    }
}

#[cfg(test)]
mod handler_script_tests {
    use super::*;

    fn e(args: &[&str]) -> String {
        parse_handler_script(args).unwrap_err().to_string()
    }

    #[test]
    fn parse_and_options() {
        let h = parse_handler_script(&[
            "wsgi-resource",
            "/srv/r.wsgi",
            "process-group=%{GLOBAL}",
            "application-group=app",
            "pass-authorization=On",
        ])
        .unwrap();
        assert_eq!(
            h,
            HandlerScript {
                name: "wsgi-resource".into(),
                path: "/srv/r.wsgi".into(),
                process_group: Some(String::new()),
                application_group: Some("app".into()),
                pass_authorization: Some(true),
            }
        );
        let h = parse_handler_script(&["x", "/y", "process-group=d"]).unwrap();
        assert_eq!(h.process_group.as_deref(), Some("d"));
        assert_eq!(h.application_group, None);
        assert_eq!(h.pass_authorization, None);
    }

    #[test]
    fn sentences() {
        assert_eq!(e(&[]), "Name for handler script not supplied.");
        assert_eq!(e(&[""]), "Name for handler script not supplied.");
        assert_eq!(e(&["x"]), "Location of handler script not supplied.");
        assert_eq!(e(&["x", ""]), "Location of handler script not supplied.");
        let bad = "Invalid option to WSGI handler script definition.";
        assert_eq!(e(&["x", "/y", "callable-object=f"]), bad);
        assert_eq!(e(&["x", "/y", "nonsense"]), bad);
        assert_eq!(
            e(&["x", "/y", "process-group="]),
            "Invalid name for WSGI process group."
        );
        assert_eq!(
            e(&["x", "/y", "application-group="]),
            "Invalid name for WSGI application group."
        );
        assert_eq!(
            e(&["x", "/y", "pass-authorization=maybe"]),
            "Invalid value for authorization flag."
        );
    }

    #[test]
    fn same_name_replaces_and_sections_overlay() {
        let mut outer = DirConfig::default();
        add_handler_script(&mut outer, &["a", "/a1"]).unwrap();
        add_handler_script(&mut outer, &["b", "/b1"]).unwrap();
        add_handler_script(&mut outer, &["A", "/a2"]).unwrap();
        assert_eq!(outer.handler_scripts.as_ref().unwrap().len(), 2);
        assert_eq!(outer.handler_script("a").unwrap().path, "/a2");
        let mut inner = DirConfig::default();
        add_handler_script(&mut inner, &["b", "/b2"]).unwrap();
        add_handler_script(&mut inner, &["c", "/c2"]).unwrap();
        let m = DirConfig::merge(&outer, &inner);
        assert_eq!(m.handler_script("a").unwrap().path, "/a2");
        assert_eq!(m.handler_script("B").unwrap().path, "/b2");
        assert_eq!(m.handler_script("c").unwrap().path, "/c2");
        assert!(m.handler_script("d").is_none());
        let m = DirConfig::merge(&outer, &DirConfig::default());
        assert_eq!(m.handler_script("b").unwrap().path, "/b1");
        assert!(DirConfig::default().handler_script("a").is_none());
    }
}

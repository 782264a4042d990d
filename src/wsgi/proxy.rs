//! WSGITrustedProxyHeaders / WSGITrustedProxies: rewriting the CGI
//! variables from headers a front-end proxy sent.
//!
//! This follows mod_wsgi's `wsgi_process_proxy_headers` (in
//! `wsgi_environ.c`), which runs once the CGI variables are built:
//!
//! * Nothing happens unless some trusted headers are configured.
//! * When WSGITrustedProxies is configured, the peer (`REMOTE_ADDR`) must be
//!   in it; otherwise, or when `REMOTE_ADDR` is missing or not an IP
//!   address, no header is honoured. Without WSGITrustedProxies every peer
//!   is trusted.
//! * The configured headers are walked in the order they were listed. Each
//!   one that mod_wsgi knows marks its category as "matched". If the peer is
//!   trusted and the header is present (even empty), its value is applied
//!   and it becomes the category's kept header; a later present header of
//!   the same category applies over it and becomes the kept one instead, so
//!   the *last* present header of a category wins.
//! * Finally, for every matched category, every header of that category
//!   except the kept one is removed, whether or not the peer was trusted.
//!   Categories nobody configured are left alone.
//!
//! The categories and what applying a header does:
//!
//! | Category    | Headers (CGI names)                                   | Effect |
//! |-------------|-------------------------------------------------------|--------|
//! | client      | `HTTP_X_FORWARDED_FOR`, `HTTP_X_CLIENT_IP`, `HTTP_X_REAL_IP` | `REMOTE_ADDR` |
//! | host        | `HTTP_X_FORWARDED_HOST`, `HTTP_X_HOST`                | `HTTP_HOST` |
//! | server      | `HTTP_X_FORWARDED_SERVER`                             | `SERVER_NAME` |
//! | port        | `HTTP_X_FORWARDED_PORT`                               | `SERVER_PORT` |
//! | script name | `HTTP_X_SCRIPT_NAME`, `HTTP_X_FORWARDED_SCRIPT_NAME`  | `SCRIPT_NAME`, `mod_wsgi.mount_point` |
//! | scheme      | `HTTP_X_FORWARDED_PROTO`, `HTTP_X_FORWARDED_SCHEME`, `HTTP_X_SCHEME` (`http`/`https`); `HTTP_X_FORWARDED_HTTPS`, `HTTP_X_FORWARDED_SSL`, `HTTP_X_HTTPS` (`on`/`true`/`1`, `off`/`false`/`0`) | `HTTPS` |
//!
//! Values are used verbatim (a non-numeric port becomes `SERVER_PORT` as
//! is); scheme values are compared without regard to case and an
//! unrecognised one changes nothing. `X-Forwarded-For` is special, see
//! [`apply`].
//!
//! Deviation: where mod_wsgi hands an address to `apr_sockaddr_info_get`
//! (which would resolve a host name through DNS), this module only accepts
//! numeric addresses: IPv6 (with an optional `%zone`, which is ignored) or
//! IPv4 in any form `inet_aton` accepts (`10.1`, `0x0a000001`, ...). A name
//! is treated as an invalid address.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The purpose a proxy header serves; at most one header of each is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// The client's address (`REMOTE_ADDR`).
    Client,
    /// The host the client asked for (`HTTP_HOST`).
    Host,
    /// The server name (`SERVER_NAME`).
    Server,
    /// The port the client connected to (`SERVER_PORT`).
    Port,
    /// Where the proxy mounted the application (`SCRIPT_NAME`).
    ScriptName,
    /// Whether the client used https (`HTTPS`, hence `wsgi.url_scheme`).
    Scheme,
}

impl Category {
    const ALL: [Category; 6] = [
        Category::Client,
        Category::Host,
        Category::Server,
        Category::Port,
        Category::ScriptName,
        Category::Scheme,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The CGI names of this category's headers, in mod_wsgi's order.
    pub fn headers(self) -> impl Iterator<Item = &'static str> {
        REGISTRY
            .iter()
            .filter(move |e| e.category == self)
            .map(|e| e.name)
    }
}

/// What applying a header does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    ForwardedFor,
    ClientIp,
    Host,
    Server,
    Port,
    ScriptName,
    SchemeString,
    SchemeBool,
}

struct Entry {
    name: &'static str,
    category: Category,
    action: Action,
}

const fn entry(name: &'static str, category: Category, action: Action) -> Entry {
    Entry {
        name,
        category,
        action,
    }
}

/// Every proxy header mod_wsgi understands, in its registry order.
const REGISTRY: &[Entry] = &[
    entry(
        "HTTP_X_FORWARDED_FOR",
        Category::Client,
        Action::ForwardedFor,
    ),
    entry("HTTP_X_CLIENT_IP", Category::Client, Action::ClientIp),
    entry("HTTP_X_REAL_IP", Category::Client, Action::ClientIp),
    entry("HTTP_X_FORWARDED_HOST", Category::Host, Action::Host),
    entry("HTTP_X_HOST", Category::Host, Action::Host),
    entry("HTTP_X_FORWARDED_SERVER", Category::Server, Action::Server),
    entry("HTTP_X_FORWARDED_PORT", Category::Port, Action::Port),
    entry(
        "HTTP_X_SCRIPT_NAME",
        Category::ScriptName,
        Action::ScriptName,
    ),
    entry(
        "HTTP_X_FORWARDED_SCRIPT_NAME",
        Category::ScriptName,
        Action::ScriptName,
    ),
    entry(
        "HTTP_X_FORWARDED_PROTO",
        Category::Scheme,
        Action::SchemeString,
    ),
    entry(
        "HTTP_X_FORWARDED_SCHEME",
        Category::Scheme,
        Action::SchemeString,
    ),
    entry("HTTP_X_SCHEME", Category::Scheme, Action::SchemeString),
    entry(
        "HTTP_X_FORWARDED_HTTPS",
        Category::Scheme,
        Action::SchemeBool,
    ),
    entry("HTTP_X_FORWARDED_SSL", Category::Scheme, Action::SchemeBool),
    entry("HTTP_X_HTTPS", Category::Scheme, Action::SchemeBool),
];

fn lookup(name: &str) -> Option<&'static Entry> {
    // The configuration stores names already converted by http2env, so
    // mod_wsgi compares them exactly (strcmp).
    REGISTRY.iter().find(|e| e.name == name)
}

/// The category of a proxy header given by its CGI name
/// (`HTTP_X_FORWARDED_FOR`), or `None` if mod_wsgi does not know it.
pub fn category(name: &str) -> Option<Category> {
    lookup(name).map(|e| e.category)
}

/// Changes to make to the CGI variables.
///
/// `set` and `remove` never name the same variable and each name appears
/// once, so they can be applied in either order. Names are compared
/// without regard to case, as in an APR table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edits {
    /// Variables to create or overwrite, in the order first touched.
    pub set: Vec<(String, String)>,
    /// Variables to delete (they may not exist).
    pub remove: Vec<String>,
    /// `Some` when a trusted scheme header was applied: the
    /// `wsgi.url_scheme` that results. The caller must then skip its own
    /// "is the connection TLS" check (mod_wsgi skips `ssl_is_https`). It
    /// matches what reading `HTTPS` after these edits gives (`on` in any
    /// case or `1` means https); an unrecognised header value leaves
    /// `HTTPS` as it was. `None`: decide the scheme as usual.
    pub url_scheme: Option<&'static str>,
}

impl Edits {
    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.url_scheme.is_none()
    }
}

/// The CGI variables as seen through the edits made so far.
struct Env<'a> {
    vars: &'a dyn Fn(&str) -> Option<String>,
    changes: Vec<(String, Option<String>)>,
}

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match self
            .changes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => v.clone(),
            None => (self.vars)(name),
        }
    }

    fn put(&mut self, name: &str, value: Option<String>) {
        match self
            .changes
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => *v = value,
            None => self.changes.push((name.to_string(), value)),
        }
    }

    fn set(&mut self, name: &str, value: &str) {
        self.put(name, Some(value.to_string()));
    }

    fn unset(&mut self, name: &str) {
        self.put(name, None);
    }
}

/// Applies WSGITrustedProxyHeaders / WSGITrustedProxies to a request.
///
/// * `vars` looks up the request's current CGI variables (`REMOTE_ADDR`,
///   `HTTP_X_FORWARDED_FOR`, `HTTPS`, ...).
/// * `trusted_headers` are the configured headers as CGI names, in the
///   order configured. Names mod_wsgi does not know are ignored.
/// * `is_trusted` is `None` without WSGITrustedProxies (every peer is a
///   trusted proxy), else whether an address is a trusted proxy.
///
/// `X-Forwarded-For` is a comma-separated list; empty elements are skipped
/// and surrounding whitespace trimmed. Without WSGITrustedProxies the first
/// element becomes `REMOTE_ADDR` and the header is left as is. With it, the
/// list is walked from the right while the elements are addresses of
/// trusted proxies; the element just before the leftmost of those becomes
/// `REMOTE_ADDR` (the leftmost itself if the whole list is trusted) and the
/// header is cut down to that element and those after it. If the rightmost
/// element is not a trusted proxy (or is not an address at all) it becomes
/// both `REMOTE_ADDR` and the whole header. As in mod_wsgi, the element
/// chosen is used verbatim even if it is not a valid address.
pub fn apply(
    vars: &dyn Fn(&str) -> Option<String>,
    trusted_headers: &[String],
    is_trusted: Option<&dyn Fn(IpAddr) -> bool>,
) -> Edits {
    if trusted_headers.is_empty() {
        return Edits::default();
    }

    let peer_trusted = match is_trusted {
        None => true,
        Some(f) => vars("REMOTE_ADDR")
            .and_then(|a| parse_ip(&a))
            .is_some_and(f),
    };

    let mut env = Env {
        vars,
        changes: Vec::new(),
    };
    let mut matched = [false; Category::ALL.len()];
    let mut kept: [Option<&'static str>; Category::ALL.len()] = [None; Category::ALL.len()];

    for name in trusted_headers {
        let Some(entry) = lookup(name) else {
            continue;
        };
        matched[entry.category.index()] = true;
        if !peer_trusted {
            continue;
        }
        let Some(value) = env.get(entry.name) else {
            continue;
        };
        run(entry.action, &mut env, &value, is_trusted);
        kept[entry.category.index()] = Some(entry.name);
    }

    // Strip every other header of a category the administrator trusts,
    // so an application cannot be fooled by a spoofed synonym.
    for category in Category::ALL {
        if !matched[category.index()] {
            continue;
        }
        let keep = kept[category.index()];
        for name in category.headers() {
            if keep != Some(name) {
                env.unset(name);
            }
        }
    }

    let url_scheme = kept[Category::Scheme.index()].map(|_| match env.get("HTTPS") {
        Some(v) if v.eq_ignore_ascii_case("on") || v == "1" => "https",
        _ => "http",
    });

    let mut edits = Edits {
        url_scheme,
        ..Edits::default()
    };
    for (name, value) in env.changes {
        match value {
            Some(v) => edits.set.push((name, v)),
            None => edits.remove.push(name),
        }
    }
    edits
}

fn run(
    action: Action,
    env: &mut Env<'_>,
    value: &str,
    is_trusted: Option<&dyn Fn(IpAddr) -> bool>,
) {
    match action {
        Action::ForwardedFor => forwarded_for(env, value, is_trusted),
        Action::ClientIp => env.set("REMOTE_ADDR", value),
        Action::Host => env.set("HTTP_HOST", value),
        Action::Server => env.set("SERVER_NAME", value),
        Action::Port => env.set("SERVER_PORT", value),
        Action::ScriptName => {
            env.set("mod_wsgi.mount_point", value);
            env.set("SCRIPT_NAME", value);
        }
        Action::SchemeString => {
            if value.eq_ignore_ascii_case("https") {
                env.set("HTTPS", "1");
            } else if value.eq_ignore_ascii_case("http") {
                env.unset("HTTPS");
            }
        }
        Action::SchemeBool => {
            if ["on", "true", "1"]
                .iter()
                .any(|v| value.eq_ignore_ascii_case(v))
            {
                env.set("HTTPS", "1");
            } else if ["off", "false", "0"]
                .iter()
                .any(|v| value.eq_ignore_ascii_case(v))
            {
                env.unset("HTTPS");
            }
        }
    }
}

/// C's `isspace` in the C locale, as `apr_isspace`.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn forwarded_for(env: &mut Env<'_>, value: &str, is_trusted: Option<&dyn Fn(IpAddr) -> bool>) {
    let items: Vec<&str> = value
        .split(',')
        .map(|s| s.trim_matches(is_c_space))
        .filter(|s| !s.is_empty())
        .collect();
    let Some(&last) = items.last() else {
        // Nothing but separators and whitespace: leave everything alone.
        return;
    };

    let Some(is_trusted) = is_trusted else {
        // Every peer is trusted: the client is the first in the list.
        env.set("REMOTE_ADDR", items[0]);
        return;
    };

    let mut first_trusted = None;
    for (i, item) in items.iter().enumerate().rev() {
        match parse_ip(item) {
            Some(ip) if is_trusted(ip) => first_trusted = Some(i),
            _ => break,
        }
    }

    match first_trusted {
        Some(first) => {
            let start = first.saturating_sub(1);
            env.set("REMOTE_ADDR", items[start]);
            env.set("HTTP_X_FORWARDED_FOR", &items[start..].join(", "));
        }
        None => {
            env.set("REMOTE_ADDR", last);
            env.set("HTTP_X_FORWARDED_FOR", last);
        }
    }
}

/// A numeric IP address as `getaddrinfo` reads one, without DNS.
fn parse_ip(text: &str) -> Option<IpAddr> {
    if text.contains(':') {
        // getaddrinfo accepts an IPv6 scope id ("fe80::1%eth0"); the
        // subnet test ignores it.
        let addr = text.split_once('%').map_or(text, |(a, _)| a);
        addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        inet_aton(text).map(IpAddr::V4)
    }
}

/// glibc's `__inet_aton_exact`: one to four parts, each decimal, octal
/// (leading `0`) or hex (`0x`), the last filling the remaining bytes.
fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        // from_str_radix would accept a sign; only digits are allowed.
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        values.push(u32::from_str_radix(digits, radix).ok()?);
    }
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|&v| v > 0xff) {
        return None;
    }
    let last_bits = 32 - 8 * leading.len() as u32;
    if last_bits < 32 && u64::from(*last) >= 1u64 << last_bits {
        return None;
    }
    let mut addr = 0u32;
    for (i, &v) in leading.iter().enumerate() {
        addr |= v << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(addr | *last))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.0.0/8 and fd00::/8 are trusted proxies.
    fn in_proxy_net(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.octets()[0] == 10,
            IpAddr::V6(v6) => v6.octets()[0] == 0xfd,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run_with(
        vars: &[(&str, &str)],
        headers: &[&str],
        proxies: Option<&dyn Fn(IpAddr) -> bool>,
    ) -> Edits {
        let owned: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let edits = apply(&lookup, &names(headers), proxies);
        // Invariant: set and remove are disjoint and without duplicates.
        let mut all: Vec<String> = edits
            .set
            .iter()
            .map(|(k, _)| k.to_ascii_uppercase())
            .collect();
        all.extend(edits.remove.iter().map(|k| k.to_ascii_uppercase()));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "set/remove overlap in {edits:?}");
        edits
    }

    /// With 10.0.0.0/8 as WSGITrustedProxies.
    fn trusted(vars: &[(&str, &str)], headers: &[&str]) -> Edits {
        run_with(vars, headers, Some(&in_proxy_net))
    }

    /// Without WSGITrustedProxies.
    fn anyone(vars: &[(&str, &str)], headers: &[&str]) -> Edits {
        run_with(vars, headers, None)
    }

    fn get<'a>(e: &'a Edits, name: &str) -> Option<&'a str> {
        e.set
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn removed(e: &Edits, name: &str) -> bool {
        e.remove.iter().any(|k| k == name)
    }

    const CLIENT: [&str; 3] = ["HTTP_X_FORWARDED_FOR", "HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP"];

    #[test]
    fn nothing_configured_means_no_edits() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
        ];
        assert_eq!(trusted(&vars, &[]), Edits::default());
        assert_eq!(anyone(&vars, &[]), Edits::default());
        assert!(anyone(&vars, &[]).is_empty());
    }

    #[test]
    fn unknown_header_names_are_ignored() {
        let vars = [("REMOTE_ADDR", "10.0.0.1"), ("HTTP_X_FOO", "bar")];
        let e = trusted(&vars, &["HTTP_X_FOO", "HTTP_HOST", "http_x_forwarded_for"]);
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn registry_categories() {
        assert_eq!(category("HTTP_X_REAL_IP"), Some(Category::Client));
        assert_eq!(category("HTTP_X_HOST"), Some(Category::Host));
        assert_eq!(category("HTTP_X_FORWARDED_SERVER"), Some(Category::Server));
        assert_eq!(category("HTTP_X_FORWARDED_PORT"), Some(Category::Port));
        assert_eq!(
            category("HTTP_X_FORWARDED_SCRIPT_NAME"),
            Some(Category::ScriptName)
        );
        assert_eq!(category("HTTP_X_HTTPS"), Some(Category::Scheme));
        assert_eq!(category("HTTP_X_FOO"), None);
        assert_eq!(Category::Client.headers().collect::<Vec<_>>(), CLIENT);
        assert_eq!(Category::Scheme.headers().count(), 6);
    }

    // ---- client address -------------------------------------------------

    #[test]
    fn xff_without_trusted_proxies_uses_first_and_keeps_header() {
        let vars = [
            ("REMOTE_ADDR", "192.0.2.7"),
            ("HTTP_X_FORWARDED_FOR", " 1.1.1.1 , 2.2.2.2, 10.0.0.2"),
            ("HTTP_X_REAL_IP", "6.6.6.6"),
            ("HTTP_X_CLIENT_IP", "7.7.7.7"),
        ];
        let e = anyone(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert_eq!(e.set, vec![("REMOTE_ADDR".into(), "1.1.1.1".into())]);
        assert_eq!(e.remove, names(&["HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP"]));
        assert_eq!(e.url_scheme, None);
    }

    #[test]
    fn xff_without_trusted_proxies_skips_empty_elements() {
        let vars = [("HTTP_X_FORWARDED_FOR", " ,\t, 3.3.3.3 ,4.4.4.4")];
        let e = anyone(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("3.3.3.3"));
        // No validation in this mode.
        let e = anyone(&[("HTTP_X_FORWARDED_FOR", "unknown, 1.1.1.1")], &CLIENT);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("unknown"));
    }

    #[test]
    fn xff_single_hop_from_trusted_proxy() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "203.0.113.9"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("203.0.113.9"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("203.0.113.9"));
        assert!(!removed(&e, "HTTP_X_FORWARDED_FOR"));
        assert!(removed(&e, "HTTP_X_REAL_IP") && removed(&e, "HTTP_X_CLIENT_IP"));
    }

    #[test]
    fn xff_chain_skips_trusted_proxies_from_the_right() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            (
                "HTTP_X_FORWARDED_FOR",
                "6.6.6.6, 203.0.113.9, 10.0.0.3,10.0.0.2",
            ),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
        // 6.6.6.6 is whatever the client claimed; it is dropped.
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("203.0.113.9"));
        assert_eq!(
            get(&e, "HTTP_X_FORWARDED_FOR"),
            Some("203.0.113.9, 10.0.0.3, 10.0.0.2")
        );
    }

    #[test]
    fn xff_last_entry_untrusted_is_the_client() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "1.1.1.1, 2.2.2.2"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("2.2.2.2"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("2.2.2.2"));
    }

    #[test]
    fn xff_all_trusted_uses_leftmost() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "10.0.0.3, 10.0.0.2"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("10.0.0.3"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("10.0.0.3, 10.0.0.2"));
    }

    #[test]
    fn xff_invalid_entries_as_mod_wsgi() {
        let peer = ("REMOTE_ADDR", "10.0.0.1");
        // The walk stops at the invalid entry; it is the last, so it is used.
        let e = trusted(
            &[peer, ("HTTP_X_FORWARDED_FOR", "1.1.1.1, unknown")],
            &["HTTP_X_FORWARDED_FOR"],
        );
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("unknown"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("unknown"));
        // An invalid entry just before the trusted ones is used verbatim.
        let e = trusted(
            &[peer, ("HTTP_X_FORWARDED_FOR", "1.1.1.1, garbage, 10.0.0.2")],
            &["HTTP_X_FORWARDED_FOR"],
        );
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("garbage"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("garbage, 10.0.0.2"));
        // Host names are not resolved, and ports are not stripped.
        let e = trusted(
            &[peer, ("HTTP_X_FORWARDED_FOR", "1.1.1.1, 10.0.0.2:8080")],
            &["HTTP_X_FORWARDED_FOR"],
        );
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("10.0.0.2:8080"));
    }

    #[test]
    fn xff_whitespace_and_empty_elements() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", " , 1.1.1.1 ,, \t10.0.0.2\t ,"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("1.1.1.1"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("1.1.1.1, 10.0.0.2"));
    }

    #[test]
    fn xff_empty_value_changes_nothing_but_is_kept() {
        for value in ["", " ", " , ,"] {
            let vars = [
                ("REMOTE_ADDR", "10.0.0.1"),
                ("HTTP_X_FORWARDED_FOR", value),
                ("HTTP_X_REAL_IP", "6.6.6.6"),
            ];
            let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
            assert!(e.set.is_empty(), "{value:?}: {e:?}");
            assert_eq!(e.remove, names(&["HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP"]));
            let e = anyone(&vars, &["HTTP_X_FORWARDED_FOR"]);
            assert!(e.set.is_empty(), "{value:?}: {e:?}");
        }
    }

    #[test]
    fn xff_ipv6_and_numeric_forms() {
        let vars = [
            ("REMOTE_ADDR", "fd00::1"),
            ("HTTP_X_FORWARDED_FOR", "2001:db8::7, fd00::2%eth0, 10.1"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("2001:db8::7"));
        // inet_aton forms: 012.0.0.1 is octal 10.0.0.1, 0x0a000001 hex.
        for peer in ["10.1", "012.0.0.1", "0x0a000001", "167772161", "10.0.1"] {
            let vars = [("REMOTE_ADDR", peer), ("HTTP_X_REAL_IP", "1.1.1.1")];
            let e = trusted(&vars, &["HTTP_X_REAL_IP"]);
            assert_eq!(get(&e, "REMOTE_ADDR"), Some("1.1.1.1"), "{peer}");
        }
    }

    #[test]
    fn client_ip_and_real_ip_verbatim() {
        for header in ["HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP"] {
            let vars = [
                ("REMOTE_ADDR", "10.0.0.1"),
                (header, "not-an-ip"),
                ("HTTP_X_FORWARDED_FOR", "6.6.6.6"),
            ];
            let e = trusted(&vars, &[header]);
            assert_eq!(e.set, vec![("REMOTE_ADDR".into(), "not-an-ip".into())]);
            let others: Vec<&str> = CLIENT.iter().copied().filter(|h| *h != header).collect();
            assert_eq!(e.remove, names(&others));
        }
    }

    #[test]
    fn last_present_header_of_a_category_wins() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "1.1.1.1"),
            ("HTTP_X_REAL_IP", "2.2.2.2"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("2.2.2.2"));
        // The rewritten X-Forwarded-For lost, so it is removed after all.
        assert!(removed(&e, "HTTP_X_FORWARDED_FOR"));
        assert!(!removed(&e, "HTTP_X_REAL_IP"));

        let e = trusted(&vars, &["HTTP_X_REAL_IP", "HTTP_X_FORWARDED_FOR"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("1.1.1.1"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("1.1.1.1"));
        assert!(removed(&e, "HTTP_X_REAL_IP"));

        // Only the absent one after: the present one still wins.
        let vars = [("REMOTE_ADDR", "10.0.0.1"), ("HTTP_X_REAL_IP", "2.2.2.2")];
        let e = trusted(&vars, &["HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("2.2.2.2"));
        assert!(!removed(&e, "HTTP_X_REAL_IP"));
    }

    // ---- trust of the peer ----------------------------------------------

    #[test]
    fn untrusted_peer_honours_nothing_and_strips_categories() {
        let vars = [
            ("REMOTE_ADDR", "198.51.100.1"),
            ("HTTP_X_FORWARDED_FOR", "1.1.1.1"),
            ("HTTP_X_FORWARDED_HOST", "evil.example"),
            ("HTTP_X_FORWARDED_PORT", "8443"),
            ("HTTP_X_FORWARDED_SERVER", "evil"),
            ("HTTP_X_SCRIPT_NAME", "/evil"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTPS", "on"),
        ];
        let headers = [
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_FORWARDED_HOST",
            "HTTP_X_FORWARDED_PORT",
            "HTTP_X_FORWARDED_SERVER",
            "HTTP_X_SCRIPT_NAME",
            "HTTP_X_FORWARDED_PROTO",
        ];
        let e = trusted(&vars, &headers);
        assert!(e.set.is_empty(), "{e:?}");
        assert_eq!(e.url_scheme, None);
        let all: Vec<&str> = REGISTRY.iter().map(|e| e.name).collect();
        assert_eq!(e.remove, names(&all));
        assert!(!removed(&e, "HTTPS"));
    }

    #[test]
    fn untrusted_peer_only_strips_configured_categories() {
        let vars = [
            ("REMOTE_ADDR", "198.51.100.1"),
            ("HTTP_X_FORWARDED_FOR", "1.1.1.1"),
            ("HTTP_X_FORWARDED_HOST", "h"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert!(e.set.is_empty());
        assert_eq!(e.remove, names(&CLIENT));
    }

    #[test]
    fn peer_address_missing_or_invalid_is_untrusted() {
        let headers = ["HTTP_X_REAL_IP"];
        for peer in [
            None,
            Some(""),
            Some("localhost"),
            Some("10.0.0.1.5"),
            Some("10.256.0.1"),
        ] {
            let mut vars = vec![("HTTP_X_REAL_IP", "1.1.1.1")];
            if let Some(p) = peer {
                vars.push(("REMOTE_ADDR", p));
            }
            let e = trusted(&vars, &headers);
            assert!(e.set.is_empty(), "{peer:?}: {e:?}");
            assert!(removed(&e, "HTTP_X_REAL_IP"));
            // Without WSGITrustedProxies the peer does not matter.
            let e = anyone(&vars, &headers);
            assert_eq!(get(&e, "REMOTE_ADDR"), Some("1.1.1.1"));
        }
    }

    #[test]
    fn empty_trusted_proxy_list_trusts_nobody() {
        let nobody = |_: IpAddr| false;
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "1.1.1.1"),
        ];
        let e = run_with(&vars, &["HTTP_X_FORWARDED_FOR"], Some(&nobody));
        assert!(e.set.is_empty());
        assert_eq!(e.remove, names(&CLIENT));
    }

    #[test]
    fn ipv6_peer() {
        let vars = [
            ("REMOTE_ADDR", "fd12::1"),
            ("HTTP_X_FORWARDED_HOST", "example.com"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_HOST"]);
        assert_eq!(get(&e, "HTTP_HOST"), Some("example.com"));
        let vars = [
            ("REMOTE_ADDR", "2001:db8::1"),
            ("HTTP_X_FORWARDED_HOST", "example.com"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_HOST"]);
        assert!(e.set.is_empty());
    }

    // ---- host, server, port, script name --------------------------------

    #[test]
    fn host_family() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_HOST", "backend:8080"),
            ("HTTP_X_FORWARDED_HOST", "www.example.com:443"),
            ("HTTP_X_HOST", "spoofed.example"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_HOST"]);
        assert_eq!(
            e.set,
            vec![("HTTP_HOST".into(), "www.example.com:443".into())]
        );
        assert_eq!(e.remove, names(&["HTTP_X_HOST"]));

        let e = trusted(&vars, &["HTTP_X_HOST"]);
        assert_eq!(get(&e, "HTTP_HOST"), Some("spoofed.example"));
        assert_eq!(e.remove, names(&["HTTP_X_FORWARDED_HOST"]));

        // Present but empty still applies.
        let vars = [("REMOTE_ADDR", "10.0.0.1"), ("HTTP_X_HOST", "")];
        let e = trusted(&vars, &["HTTP_X_HOST"]);
        assert_eq!(get(&e, "HTTP_HOST"), Some(""));
    }

    #[test]
    fn server_and_port() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_SERVER", "proxy.example"),
            ("HTTP_X_FORWARDED_PORT", "8443"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_SERVER", "HTTP_X_FORWARDED_PORT"]);
        assert_eq!(
            e.set,
            vec![
                ("SERVER_NAME".into(), "proxy.example".into()),
                ("SERVER_PORT".into(), "8443".into()),
            ]
        );
        assert!(e.remove.is_empty());

        // Not validated: a non-numeric port is passed on as is.
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_PORT", "abc"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_PORT"]);
        assert_eq!(get(&e, "SERVER_PORT"), Some("abc"));

        // Absent: nothing to do (and nothing of that category to strip).
        let vars = [("REMOTE_ADDR", "10.0.0.1")];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_PORT"]);
        assert!(e.set.is_empty());
        assert_eq!(e.remove, names(&["HTTP_X_FORWARDED_PORT"]));
    }

    #[test]
    fn script_name_family() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("SCRIPT_NAME", ""),
            ("HTTP_X_SCRIPT_NAME", "/app"),
            ("HTTP_X_FORWARDED_SCRIPT_NAME", "/spoofed"),
        ];
        let e = trusted(&vars, &["HTTP_X_SCRIPT_NAME"]);
        assert_eq!(
            e.set,
            vec![
                ("mod_wsgi.mount_point".into(), "/app".into()),
                ("SCRIPT_NAME".into(), "/app".into()),
            ]
        );
        assert_eq!(e.remove, names(&["HTTP_X_FORWARDED_SCRIPT_NAME"]));
    }

    // ---- scheme ---------------------------------------------------------

    #[test]
    fn scheme_string_headers() {
        for header in [
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_FORWARDED_SCHEME",
            "HTTP_X_SCHEME",
        ] {
            let vars = [("REMOTE_ADDR", "10.0.0.1"), (header, "HTTPS")];
            let e = trusted(&vars, &[header]);
            assert_eq!(e.url_scheme, Some("https"));
            assert_eq!(get(&e, "HTTPS"), Some("1"));
            assert_eq!(e.remove.len(), 5);
            assert!(!removed(&e, header));

            // "http" overrides mod_ssl's HTTPS=on for the Apache hop.
            let vars = [
                ("REMOTE_ADDR", "10.0.0.1"),
                ("HTTPS", "on"),
                (header, "http"),
            ];
            let e = trusted(&vars, &[header]);
            assert_eq!(e.url_scheme, Some("http"));
            assert!(removed(&e, "HTTPS"));
            assert_eq!(get(&e, "HTTPS"), None);
        }
    }

    #[test]
    fn scheme_bool_headers() {
        for header in [
            "HTTP_X_FORWARDED_HTTPS",
            "HTTP_X_FORWARDED_SSL",
            "HTTP_X_HTTPS",
        ] {
            for on in ["on", "ON", "true", "True", "1"] {
                let vars = [("REMOTE_ADDR", "10.0.0.1"), (header, on)];
                let e = trusted(&vars, &[header]);
                assert_eq!(e.url_scheme, Some("https"), "{header}={on}");
                assert_eq!(get(&e, "HTTPS"), Some("1"));
            }
            for off in ["off", "Off", "false", "FALSE", "0"] {
                let vars = [("REMOTE_ADDR", "10.0.0.1"), ("HTTPS", "1"), (header, off)];
                let e = trusted(&vars, &[header]);
                assert_eq!(e.url_scheme, Some("http"), "{header}={off}");
                assert!(removed(&e, "HTTPS"));
            }
        }
    }

    #[test]
    fn scheme_unrecognised_value_keeps_https_but_counts_as_applied() {
        // mod_wsgi leaves HTTPS alone and still skips its own TLS check.
        for (https, want) in [(None, "http"), (Some("on"), "https"), (Some("1"), "https")] {
            for (header, value) in [
                ("HTTP_X_FORWARDED_PROTO", "ftp"),
                ("HTTP_X_FORWARDED_PROTO", "https, http"),
                ("HTTP_X_FORWARDED_SSL", "yes"),
            ] {
                let mut vars = vec![("REMOTE_ADDR", "10.0.0.1"), (header, value)];
                if let Some(h) = https {
                    vars.push(("HTTPS", h));
                }
                let e = trusted(&vars, &[header]);
                assert_eq!(e.url_scheme, Some(want), "{header}={value} HTTPS={https:?}");
                assert!(get(&e, "HTTPS").is_none() && !removed(&e, "HTTPS"));
            }
        }
    }

    #[test]
    fn scheme_not_applied_leaves_url_scheme_to_caller() {
        // Trusted but absent.
        let vars = [("REMOTE_ADDR", "10.0.0.1"), ("HTTPS", "on")];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_PROTO"]);
        assert_eq!(e.url_scheme, None);
        assert!(!removed(&e, "HTTPS"));
        // Untrusted peer.
        let vars = [
            ("REMOTE_ADDR", "1.2.3.4"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_PROTO"]);
        assert_eq!(e.url_scheme, None);
        assert!(removed(&e, "HTTP_X_FORWARDED_PROTO"));
    }

    #[test]
    fn scheme_later_header_overrides_earlier() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_FORWARDED_SSL", "off"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_SSL"]);
        assert_eq!(e.url_scheme, Some("http"));
        assert!(removed(&e, "HTTPS"));
        assert!(removed(&e, "HTTP_X_FORWARDED_PROTO"));
        assert!(!removed(&e, "HTTP_X_FORWARDED_SSL"));
    }

    // ---- spoofing -------------------------------------------------------

    #[test]
    fn spoofed_synonyms_removed_from_trusted_proxy() {
        // The proxy sets X-Forwarded-Proto; the client added X-Forwarded-Ssl
        // and X-Real-IP hoping the application looks at them.
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_PROTO", "http"),
            ("HTTP_X_FORWARDED_SSL", "on"),
            ("HTTP_X_FORWARDED_FOR", "6.6.6.6, 203.0.113.9"),
            ("HTTP_X_REAL_IP", "6.6.6.6"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR"]);
        assert_eq!(e.url_scheme, Some("http"));
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("203.0.113.9"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("203.0.113.9"));
        assert!(removed(&e, "HTTP_X_FORWARDED_SSL"));
        assert!(removed(&e, "HTTP_X_REAL_IP"));
        assert!(!removed(&e, "HTTP_X_FORWARDED_PROTO"));
    }

    #[test]
    fn unconfigured_categories_untouched() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "1.1.1.1"),
            ("HTTP_X_FORWARDED_HOST", "h"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR"]);
        assert_eq!(e.url_scheme, None);
        assert!(
            e.remove
                .iter()
                .all(|n| category(n) == Some(Category::Client))
        );
        assert!(e.set.iter().all(|(n, _)| n != "HTTP_HOST" && n != "HTTPS"));
    }

    #[test]
    fn header_listed_twice_sees_its_rewritten_value() {
        let vars = [
            ("REMOTE_ADDR", "10.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "6.6.6.6, 1.1.1.1, 10.0.0.2"),
        ];
        let e = trusted(&vars, &["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_FOR"]);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("1.1.1.1"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), Some("1.1.1.1, 10.0.0.2"));
    }

    #[test]
    fn full_configuration() {
        let vars = [
            ("REMOTE_ADDR", "10.1.2.3"),
            ("HTTP_HOST", "backend"),
            ("SERVER_NAME", "backend"),
            ("SERVER_PORT", "80"),
            ("SCRIPT_NAME", ""),
            ("HTTP_X_FORWARDED_FOR", "203.0.113.9"),
            ("HTTP_X_FORWARDED_HOST", "www.example.com"),
            ("HTTP_X_FORWARDED_SERVER", "www.example.com"),
            ("HTTP_X_FORWARDED_PORT", "443"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_SCRIPT_NAME", "/shop"),
        ];
        let headers = [
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_FORWARDED_HOST",
            "HTTP_X_FORWARDED_SERVER",
            "HTTP_X_FORWARDED_PORT",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_SCRIPT_NAME",
        ];
        let e = trusted(&vars, &headers);
        assert_eq!(get(&e, "REMOTE_ADDR"), Some("203.0.113.9"));
        assert_eq!(get(&e, "HTTP_HOST"), Some("www.example.com"));
        assert_eq!(get(&e, "SERVER_NAME"), Some("www.example.com"));
        assert_eq!(get(&e, "SERVER_PORT"), Some("443"));
        assert_eq!(get(&e, "SCRIPT_NAME"), Some("/shop"));
        assert_eq!(get(&e, "mod_wsgi.mount_point"), Some("/shop"));
        assert_eq!(e.url_scheme, Some("https"));
        assert_eq!(
            e.remove,
            names(&[
                "HTTP_X_CLIENT_IP",
                "HTTP_X_REAL_IP",
                "HTTP_X_HOST",
                "HTTP_X_FORWARDED_SCRIPT_NAME",
                "HTTP_X_FORWARDED_SCHEME",
                "HTTP_X_SCHEME",
                "HTTP_X_FORWARDED_HTTPS",
                "HTTP_X_FORWARDED_SSL",
                "HTTP_X_HTTPS",
            ])
        );
    }

    // ---- address parsing ------------------------------------------------

    #[test]
    fn parse_ip_forms() {
        let v4 = |s: &str| parse_ip(s).map(|ip| ip.to_string());
        assert_eq!(v4("192.168.1.2").as_deref(), Some("192.168.1.2"));
        assert_eq!(v4("127.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(v4("10.0.258").as_deref(), Some("10.0.1.2"));
        assert_eq!(v4("0x7f.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(v4("0177.0.0.01").as_deref(), Some("127.0.0.1"));
        assert_eq!(v4("2130706433").as_deref(), Some("127.0.0.1"));
        assert_eq!(v4("0").as_deref(), Some("0.0.0.0"));
        assert_eq!(v4("4294967295").as_deref(), Some("255.255.255.255"));
        assert_eq!(v4("::1").as_deref(), Some("::1"));
        assert_eq!(v4("::ffff:10.0.0.1").as_deref(), Some("::ffff:10.0.0.1"));
        assert_eq!(v4("fe80::1%lo").as_deref(), Some("fe80::1"));
        for bad in [
            "",
            "1.2.3.4.5",
            "1.2.3.256",
            "256.1",
            "1.16777216",
            "4294967296",
            "1..2",
            "1.2.3.",
            ".1",
            "08",
            "0x",
            "0xg",
            "+1",
            "1.2.3.4:80",
            "[::1]",
            "::g",
            "localhost",
            " 1.2.3.4",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad:?}");
        }
    }
}

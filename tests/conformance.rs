//! Differential conformance: two Apaches with the same configuration, one
//! loading the C mod_wsgi (Debian's libapache2-mod-wsgi-py3, installed by
//! scripts/install-deps.sh) and one loading mod_wsgi-rs, get the same raw
//! HTTP requests; their status lines, response headers, bodies and the
//! environ the application sees must be the same, except where the README's
//! "Deliberate differences from mod_wsgi" says otherwise (those cases assert
//! our documented behaviour instead).

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

const C_MOD_WSGI: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

/// The configuration both servers get. Aliases are matched in order, so
/// the catch-all `/` comes last.
const CONF: &str = r#"
WSGIScriptAlias /sub {APPS}/conform.wsgi
WSGIScriptAlias /slash/ {APPS}/conform.wsgi
WSGIScriptAlias /chunked {APPS}/conform.wsgi
WSGIScriptAlias /override {APPS}/conform.wsgi
WSGIScriptAlias /passauth {APPS}/conform.wsgi
WSGIScriptAlias /nohead {APPS}/conform.wsgi
WSGIScriptAlias /missing {APPS}/no_such_script.wsgi
WSGIScriptAlias /broken {APPS}/broken_import.wsgi
WSGIScriptAlias /nocallable {APPS}/hello.wsgi callable-object=no_such_callable
WSGIScriptAlias /dir/ {APPS}/
WSGIScriptAlias / {APPS}/conform.wsgi
<Location /chunked>
    WSGIChunkedRequest On
</Location>
<Location /override>
    WSGIErrorOverride On
</Location>
<Location /passauth>
    WSGIPassAuthorization On
</Location>
<Location /nohead>
    WSGIMapHEADToGET Off
</Location>
"#;

/// Daemon mode: the same, with every alias in one daemon process group.
const DAEMON: &str = r#"
WSGIDaemonProcess conform processes=1 threads=4
WSGIProcessGroup conform
"#;

/// Environ keys whose values differ per process, per request or per
/// server without being a difference between the modules.
const VOLATILE: &[&str] = &[
    "REMOTE_PORT",
    "mod_wsgi.request_id",
    "mod_wsgi.request_start",
    "mod_wsgi.queue_start",
    "mod_wsgi.daemon_start",
    "mod_wsgi.script_start",
    "mod_wsgi.thread_id",
    "mod_wsgi.thread_requests",
    "mod_wsgi.total_requests",
    "mod_wsgi.daemon_connects",
    "mod_wsgi.daemon_restarts",
];

struct Server {
    apache: Apache,
    /// The module's own version ("6.0.0" for ours, as the README says),
    /// in `Server`, `SERVER_SOFTWARE` and `mod_wsgi.version`.
    version: String,
}

/// The installed C mod_wsgi's version, from its Debian package.
fn c_version() -> String {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "libapache2-mod-wsgi-py3"])
        .output()
        .expect("dpkg-query");
    let v = String::from_utf8_lossy(&out.stdout).into_owned();
    // "4.9.4-1+b2" -> "4.9.4"
    v.split(['-', '+', '~']).next().unwrap().to_string()
}

impl Server {
    fn start(name: &str, body: &str, module: &Path, version: &str) -> Server {
        let o = Options {
            threads: 4,
            ..Options::default()
        };
        let apache = match Apache::try_start_loading(name, body, o, module) {
            Ok(a) => a,
            Err(e) => panic!("Apache with {} did not start:\n{e}", module.display()),
        };
        Server {
            apache,
            version: version.to_string(),
        }
    }

    /// Sends `raw` (with `{HOST}` replaced) and reads until the server
    /// closes the connection.
    fn send(&self, raw: &[u8], half_close: bool) -> Vec<u8> {
        let host = format!("localhost:{}", self.apache.port);
        let raw = replace(raw, b"{HOST}", host.as_bytes());
        let mut s = TcpStream::connect(("127.0.0.1", self.apache.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&raw).unwrap();
        if half_close {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf
    }

    /// The response with this server's port and root replaced by
    /// placeholders, so both servers' answers can be compared.
    fn normalise(&self, buf: &[u8], head_request: bool) -> Answer {
        let mut a = Answer::parse(buf, head_request);
        let root = self.apache.root.to_str().unwrap().as_bytes();
        let port = self.apache.port.to_string();
        let token = format!("mod_wsgi/{}", self.version);
        let tuple = format!("mod_wsgi.version=({})", self.version.replace('.', ", "));
        let fix = |b: &[u8]| {
            let b = replace(b, root, b"{ROOT}");
            let b = replace(&b, port.as_bytes(), b"{PORT}");
            let b = replace(&b, token.as_bytes(), b"mod_wsgi/{VERSION}");
            replace(&b, tuple.as_bytes(), b"mod_wsgi.version={VERSION}")
        };
        a.status_line = String::from_utf8(fix(a.status_line.as_bytes())).unwrap();
        for h in &mut a.headers {
            *h = String::from_utf8(fix(h.as_bytes())).unwrap();
        }
        a.body = normalise_environ(&fix(&a.body));
        a
    }
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// A response, reduced to what must be the same from both modules.
#[derive(Debug, PartialEq, Clone)]
struct Answer {
    status_line: String,
    /// In order, without Date and Keep-Alive (noise).
    headers: Vec<String>,
    body: Vec<u8>,
    /// A chunked body ended with its last chunk (a response cut short by an
    /// error has none).
    complete: bool,
}

impl Answer {
    fn parse(buf: &[u8], head_request: bool) -> Answer {
        let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Answer {
                status_line: format!("<no response head: {:?}>", String::from_utf8_lossy(buf)),
                headers: vec![],
                body: vec![],
                complete: false,
            };
        };
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("").to_string();
        let headers: Vec<String> = lines
            .filter(|l| {
                let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
                !matches!(name.as_str(), "date" | "keep-alive")
            })
            .map(str::to_string)
            .collect();
        let rest = &buf[split + 4..];
        let chunked = headers.iter().any(|h| {
            h.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        let (body, complete) = if chunked && !head_request {
            dechunk(rest)
        } else {
            (rest.to_vec(), true)
        };
        Answer {
            status_line,
            headers,
            body,
            complete,
        }
    }

    /// What differs between the C module's answer (`self`) and ours.
    fn diff(&self, ours: &Answer) -> String {
        let mut out = String::new();
        if self.status_line != ours.status_line {
            out += &format!(
                "  status: C {:?}, rs {:?}\n",
                self.status_line, ours.status_line
            );
        }
        if self.headers != ours.headers {
            out += &format!(
                "  headers:\n    C  {:?}\n    rs {:?}\n",
                self.headers, ours.headers
            );
        }
        if self.complete != ours.complete {
            out += &format!(
                "  body complete: C {}, rs {}\n",
                self.complete, ours.complete
            );
        }
        if self.body != ours.body {
            match (environ_lines(&self.body), environ_lines(&ours.body)) {
                (Some(c), Some(rs)) => {
                    let keys: std::collections::BTreeSet<&String> =
                        c.keys().chain(rs.keys()).collect();
                    for k in keys {
                        if c.get(k) != rs.get(k) {
                            out += &format!(
                                "  environ {k}: C {}, rs {}\n",
                                c.get(k).map_or("<absent>", |v| v),
                                rs.get(k).map_or("<absent>", |v| v)
                            );
                        }
                    }
                }
                _ => {
                    out += &format!(
                        "  body:\n    C  {}\n    rs {}\n",
                        short(&self.body),
                        short(&ours.body)
                    );
                }
            }
        }
        out
    }

    fn render(&self) -> String {
        let body = if self.body.len() > 2000 {
            format!(
                "<{} bytes, {:?}...>",
                self.body.len(),
                String::from_utf8_lossy(&self.body[..200])
            )
        } else {
            String::from_utf8_lossy(&self.body).into_owned()
        };
        format!(
            "{}\n{}\n{}\n{}",
            self.status_line,
            self.headers.join("\n"),
            if self.complete { "" } else { "<incomplete>" },
            body
        )
    }
}

fn short(b: &[u8]) -> String {
    if b.len() > 300 {
        format!(
            "<{} bytes> {:?}...",
            b.len(),
            String::from_utf8_lossy(&b[..120])
        )
    } else {
        format!("{:?}", String::from_utf8_lossy(b))
    }
}

/// An environ dump as key -> repr, or None when `body` is not one.
fn environ_lines(body: &[u8]) -> Option<std::collections::BTreeMap<String, String>> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("\nwsgi.version=") {
        return None;
    }
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// (body, ended with the last chunk)
fn dechunk(mut b: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
        else {
            return (out, false);
        };
        b = &b[eol + 2..];
        if size == 0 {
            return (out, b.starts_with(b"\r\n"));
        }
        if b.len() < size {
            out.extend_from_slice(b);
            return (out, false);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out.extend_from_slice(b);
    (out, false)
}

/// The application's environ dump with the per-request values replaced.
fn normalise_environ(body: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(body) else {
        return body.to_vec();
    };
    if !text.contains("\nwsgi.version=") {
        return body.to_vec();
    }
    let mut out = String::new();
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or("");
        if VOLATILE.contains(&key) {
            out.push_str(&format!("{key}=<varies>\n"));
        } else if key == "apache.version" && line.starts_with("apache.version=(2, 4, ") {
            // The httpd headers each module was built against.
            out.push_str("apache.version=(2, 4, <built against>)\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// One request of the battery.
struct Case {
    name: String,
    raw: Vec<u8>,
    head: bool,
    /// The client closes its side after the request (a body shorter
    /// than its Content-Length), so neither server waits for Timeout.
    half_close: bool,
}

/// `body` in chunked transfer coding, `size` bytes a chunk.
fn chunk(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A request header: name and raw value bytes.
type Header<'a> = (&'a str, &'a [u8]);

/// Checks our answer (second) for a documented deliberate difference from
/// the C module's (first).
type Check = fn(&Answer, &Answer) -> Result<(), String>;

fn request(method: &str, target: &[u8], headers: &[Header], body: Option<&[u8]>) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.extend_from_slice(method.as_bytes());
    raw.push(b' ');
    raw.extend_from_slice(target);
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.extend_from_slice(k.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(v);
        raw.extend_from_slice(b"\r\n");
    }
    if let Some(body) = body {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
        {
            raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(body);
    } else {
        raw.extend_from_slice(b"\r\n");
    }
    raw
}

fn battery() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &str, raw: Vec<u8>| {
        let head = raw.starts_with(b"HEAD ");
        cases.push(Case {
            name: name.to_string(),
            half_close: name == "POST short body",
            raw,
            head,
        });
    };

    // Where the request lands: SCRIPT_NAME, PATH_INFO, QUERY_STRING, ...
    let paths: &[&[u8]] = &[
        b"/",
        b"/x",
        b"/x/y/",
        b"//double//slashes",
        b"/sub",
        b"/sub/",
        b"/sub/a/b",
        b"/subx",
        b"/sub//a",
        b"/slash",
        b"/slash/",
        b"/slash/a",
        b"/a%20b",
        b"/a%2Fb",
        b"/sub/a%2fb",
        b"/caf%C3%A9",
        b"/caf\xc3\xa9",
        b"/raw\xff\xfe",
        b"/a%00b",
        b"/a/./b/../c",
        b"/sub/..",
        b"/q?",
        b"/q?a=1&b=%20&c=+",
        b"/q?caf\xc3\xa9=\xff",
        b"/q?a=%2F%00",
        b"/semi;p=1",
        b"/dir/conform.wsgi",
        b"/dir/conform.wsgi/extra/path",
        b"/dir/",
        b"/dir/no_such.wsgi",
        b"http://localhost/absolute/form",
    ];
    for p in paths {
        add(
            &format!("GET {}", String::from_utf8_lossy(p)),
            request("GET", p, &[], None),
        );
    }
    add(
        "HTTP/1.0 GET",
        b"GET /http10 HTTP/1.0\r\nHost: {HOST}\r\n\r\n".to_vec(),
    );
    add(
        "HTTP/1.0 without Host",
        b"GET /nohost HTTP/1.0\r\n\r\n".to_vec(),
    );
    add("OPTIONS", request("OPTIONS", b"/options", &[], None));
    add(
        "PUT with body",
        request("PUT", b"/put", &[], Some(b"put body")),
    );
    add("DELETE", request("DELETE", b"/delete", &[], None));
    add("custom method", request("FROB", b"/frob", &[], None));
    add("lower-case method", request("get", b"/lower", &[], None));

    // HEAD, mapped to GET by default.
    add("HEAD env", request("HEAD", b"/head", &[], None));
    add(
        "HEAD list",
        request("HEAD", b"/head", &[("X-Case", b"list")], None),
    );
    add(
        "HEAD generator",
        request("HEAD", b"/head", &[("X-Case", b"generator")], None),
    );
    add(
        "HEAD cl-long",
        request("HEAD", b"/head", &[("X-Case", b"cl-long")], None),
    );
    add(
        "HEAD WSGIMapHEADToGET Off",
        request("HEAD", b"/nohead", &[], None),
    );

    // Request headers.
    let header_sets: &[(&str, &[Header])] = &[
        (
            "underscore header",
            &[("X_Under", b"spoof"), ("X-Under", b"real")],
        ),
        (
            "odd header name",
            &[("X-Odd.Chars!", b"1"), ("X-Tilde~", b"2")],
        ),
        ("duplicate headers", &[("X-Dup", b"one"), ("X-Dup", b"two")]),
        (
            "duplicate cookies",
            &[("Cookie", b"a=1"), ("Cookie", b"b=2")],
        ),
        ("empty header value", &[("X-Empty", b"")]),
        ("latin-1 header value", &[("X-Latin", b"caf\xe9")]),
        ("utf-8 header value", &[("X-Utf8", b"caf\xc3\xa9")]),
        (
            "Authorization hidden",
            &[("Authorization", b"Basic Zm9vOmJhcg==")],
        ),
        ("Proxy header", &[("Proxy", b"http://evil.example/")]),
        (
            "content headers without body",
            &[("Content-Type", b"text/plain"), ("Content-Length", b"0")],
        ),
        (
            "Host with port and case",
            &[("X-Forwarded-For", b"1.2.3.4")],
        ),
        ("Expect header", &[("Expect", b"100-continue")]),
        ("many spaces", &[("X-Spaces", b"  a   b  ")]),
    ];
    for (name, headers) in header_sets {
        add(name, request("GET", b"/hdr", headers, None));
    }
    add(
        "Authorization passed",
        request(
            "GET",
            b"/passauth",
            &[("Authorization", b"Basic Zm9vOmJhcg==")],
            None,
        ),
    );
    add(
        "folded header",
        b"GET /folded HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nX-Folded: a\r\n  b\r\n\r\n"
            .to_vec(),
    );

    // Request bodies.
    let body = b"line one\nline two\n\nlast";
    add(
        "POST read",
        request(
            "POST",
            b"/post",
            &[("X-Case", b"read"), ("Content-Type", b"text/plain")],
            Some(body),
        ),
    );
    add(
        "POST read(3)",
        request("POST", b"/post", &[("X-Case", b"read-n")], Some(body)),
    );
    add(
        "POST readlines",
        request("POST", b"/post", &[("X-Case", b"readline")], Some(body)),
    );
    add(
        "POST empty body",
        request("POST", b"/post", &[("X-Case", b"read")], Some(b"")),
    );
    add("POST env", request("POST", b"/post", &[], Some(body)));
    let big: Vec<u8> = (0..(256 * 1024u32)).map(|i| (i % 251) as u8).collect();
    add(
        "POST 256 KiB read",
        request("POST", b"/post", &[("X-Case", b"read")], Some(&big)),
    );
    add(
        "POST 256 KiB chunked read",
        request(
            "POST",
            b"/chunked",
            &[("X-Case", b"read"), ("Transfer-Encoding", b"chunked")],
            Some(&chunk(&big, 10_000)),
        ),
    );
    add(
        "POST input arguments",
        request("POST", b"/post", &[("X-Case", b"input-args")], Some(body)),
    );
    add(
        "POST input None arguments",
        request(
            "POST",
            b"/post?none",
            &[("X-Case", b"input-args")],
            Some(body),
        ),
    );
    add(
        "GET with body",
        request("GET", b"/post", &[("X-Case", b"read")], Some(b"get body")),
    );
    add(
        "POST bad Content-Length",
        b"POST /post HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nX-Case: read\r\nContent-Length: abc\r\n\r\n".to_vec(),
    );
    add(
        "POST short body",
        b"POST /post HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nX-Case: read\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
    );
    let chunked = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    let te: (&str, &[u8]) = ("Transfer-Encoding", b"chunked");
    add(
        "chunked, WSGIChunkedRequest Off",
        request("POST", b"/post", &[("X-Case", b"read"), te], Some(chunked)),
    );
    add(
        "chunked env, WSGIChunkedRequest Off",
        request("POST", b"/post", &[te], Some(chunked)),
    );
    add(
        "chunked, WSGIChunkedRequest On",
        request(
            "POST",
            b"/chunked",
            &[("X-Case", b"read"), te],
            Some(chunked),
        ),
    );
    add(
        "chunked read(3), WSGIChunkedRequest On",
        request(
            "POST",
            b"/chunked",
            &[("X-Case", b"read-n"), te],
            Some(chunked),
        ),
    );
    add(
        "chunked env, WSGIChunkedRequest On",
        request("POST", b"/chunked", &[te], Some(chunked)),
    );
    add(
        "chunked empty, WSGIChunkedRequest On",
        request(
            "POST",
            b"/chunked",
            &[("X-Case", b"read"), te],
            Some(b"0\r\n\r\n"),
        ),
    );
    add(
        "wsgi.errors",
        request("GET", b"/errors", &[("X-Case", b"errors-attrs")], None),
    );
    add(
        "input methods",
        request("GET", b"/input", &[("X-Case", b"input-type")], None),
    );

    // What the application does.
    for c in APP_CASES {
        add(
            c,
            request("GET", b"/case", &[("X-Case", c.as_bytes())], None),
        );
    }
    for c in [
        "status-404",
        "status-500",
        "status-204",
        "status-302",
        "list",
        "raise-before",
    ] {
        add(
            &format!("WSGIErrorOverride {c}"),
            request("GET", b"/override", &[("X-Case", c.as_bytes())], None),
        );
    }
    for (name, headers) in [
        ("validators", &[][..]),
        (
            "validators If-None-Match",
            &[("If-None-Match", &b"\"v1\""[..])][..],
        ),
        (
            "validators If-None-Match other",
            &[("If-None-Match", &b"\"v2\""[..])][..],
        ),
        (
            "validators If-Modified-Since",
            &[("If-Modified-Since", &b"Sun, 02 Jan 2000 00:00:00 GMT"[..])][..],
        ),
        (
            "validators If-Match other",
            &[("If-Match", &b"\"v2\""[..])][..],
        ),
    ] {
        let mut h: Vec<Header> = vec![("X-Case", b"validators")];
        h.extend_from_slice(headers);
        add(name, request("GET", b"/case", &h, None));
    }
    add(
        "If-None-Match",
        request(
            "GET",
            b"/case",
            &[("X-Case", b"status-304"), ("If-None-Match", b"\"x\"")],
            None,
        ),
    );

    // Scripts that cannot serve.
    add("missing script", request("GET", b"/missing", &[], None));
    add(
        "missing script sub-path",
        request("GET", b"/missing/x", &[], None),
    );
    add("failed import", request("GET", b"/broken", &[], None));
    add("failed import again", request("GET", b"/broken", &[], None));
    add(
        "missing callable",
        request("GET", b"/nocallable", &[], None),
    );
    cases
}

/// X-Case values of tests/apps/conform.wsgi.
const APP_CASES: &[&str] = &[
    "list",
    "list-many",
    "generator",
    "generator-empty-first",
    "big-list",
    "big-generator",
    "write",
    "write-only",
    "empty-list",
    "empty-bytes",
    "no-content-type",
    "cl-exact",
    "cl-short",
    "cl-short-many",
    "cl-long",
    "cl-zero",
    "cl-bad",
    "status-204",
    "status-204-body",
    "status-304",
    "status-304-body",
    "status-404",
    "status-500",
    "status-302",
    "status-302-relative",
    "status-custom",
    "status-lower-reason",
    "status-no-reason",
    "status-trailing-space",
    "status-abc",
    "status-99",
    "status-1000",
    "status-bytes",
    "status-crlf",
    "multi-header",
    "header-case",
    "header-empty-value",
    "header-spaces",
    "header-latin1",
    "header-non-latin1",
    "header-crlf-value",
    "header-lf-value",
    "header-crlf-name",
    "header-colon-name",
    "header-space-name",
    "header-bytes-name",
    "header-bytes-value",
    "header-int-value",
    "header-not-tuple",
    "header-three-tuple",
    "headers-tuple",
    "header-hop-by-hop",
    "header-transfer-encoding",
    "header-status",
    "header-location-200",
    "header-www-authenticate",
    "content-type-case",
    "last-modified-odd",
    "str-body",
    "str-body-late",
    "str-whole",
    "bytes-whole",
    "bytearray",
    "memoryview",
    "none-body",
    "none-item",
    "int-body",
    "write-str",
    "raise-before",
    "raise-after-start",
    "raise-in-iter-first",
    "raise-in-iter-later",
    "raise-in-iter-later-cl",
    "raise-in-close",
    "no-start",
    "no-start-empty",
    "exc-info-before-send",
    "exc-info-none",
    "exc-info-first",
    "exc-info-after-send",
    "exc-info-after-write",
    "twice",
    "twice-caught",
    "start-bad-args",
    "file",
    "file-offset",
    "file-cl-short",
    "file-bytesio",
    "file-bytesio-cl",
    "file-text",
    "file-no-read",
    "file-blksize",
    "wrapper-type",
];

/// How a case may differ from the C mod_wsgi: each entry is documented in
/// the README's "Deliberate differences from mod_wsgi" and asserts what we
/// do instead.
fn deliberate(mode: &str, case: &str) -> Option<Check> {
    match (mode, case) {
        // A header name that is not an RFC 9110 token (here 'X-Bad:Name') is
        // refused by start_response: 500 and a traceback. mod_wsgi lets
        // it through: Apache aborts the request in embedded mode (a 500
        // page without the admin's address) and the daemon's Apache child
        // splits it into 'X-Bad: Name: v' in daemon mode.
        (_, "header-colon-name") => Some(|_c, rs| {
            expect(
                rs.status_line == "HTTP/1.1 500 Internal Server Error",
                "a 500",
            )?;
            expect(
                !rs.headers.iter().any(|h| h.starts_with("X-Bad")),
                "no X-Bad header",
            )
        }),
        // An exception escaping the application after write() sent the head:
        // the response ends without its last chunk, so the client sees it
        // is incomplete. mod_wsgi appends Apache's 500 page to the 200 body
        // and ends the chunked response normally.
        ("embedded", "exc-info-after-write") => Some(|_c, rs| {
            expect(rs.status_line == "HTTP/1.1 200 OK", "the 200 already sent")?;
            expect(rs.body == b"written;", "only what write() sent")?;
            expect(!rs.complete, "no last chunk")
        }),
        // A body that ends before its Content-Length (the client gave up) is
        // the client's fault: 400, as in embedded mode. mod_wsgi's Apache
        // child answers 500 in daemon mode.
        ("daemon", "POST short body") => {
            Some(|_c, rs| expect(rs.status_line == "HTTP/1.1 400 Bad Request", "a 400"))
        }
        // An empty body from a daemon: Content-Length: 0. mod_wsgi's Apache
        // child sends it chunked or with Content-Length: 0 depending on
        // whether the daemon's end arrived before it read again.
        ("daemon", "empty-list" | "empty-bytes") => Some(|c, rs| {
            expect(
                c.status_line == rs.status_line && c.body == rs.body,
                "same status and body",
            )?;
            expect(
                rs.headers.iter().any(|h| h == "Content-Length: 0"),
                "Content-Length: 0",
            )
        }),
        // wsgi.input takes None as a size, as io streams (and most WSGI
        // servers) do: everything, or the next whole line. mod_wsgi raises
        // TypeError.
        (_, "POST input None arguments") => Some(|_c, rs| {
            expect(
                rs.body
                    == b"inp.readline(None)=b'line one\\n'\n\
                         inp.readlines(None)=[b'line two\\n', b'\\n', b'last']\n\
                         inp.read(None)=b''",
                "None read as 'no limit'",
            )
        }),
        _ => None,
    }
}

fn expect(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("expected {what}"))
    }
}

fn run(mode: &str, conf: &str) {
    assert!(
        Path::new(C_MOD_WSGI).exists(),
        "{C_MOD_WSGI} is missing: scripts/install-deps.sh installs libapache2-mod-wsgi-py3"
    );
    let c = Server::start(
        &format!("conform-c-{mode}"),
        conf,
        Path::new(C_MOD_WSGI),
        &c_version(),
    );
    // README, deliberate differences: mod_wsgi-rs reports mod_wsgi 6.0.0.
    let rs = Server::start(&format!("conform-rs-{mode}"), conf, &module_path(), "6.0.0");
    let mut diffs = Vec::new();
    let mut deliberate_failures = Vec::new();
    let cases = battery();
    for case in &cases {
        let (c_log, rs_log) = (c.apache.error_log().len(), rs.apache.error_log().len());
        let theirs = c.normalise(&c.send(&case.raw, case.half_close), case.head);
        let ours = rs.normalise(&rs.send(&case.raw, case.half_close), case.head);
        // What each server logged for this request, to explain a difference.
        let logged = |s: &Server, from: usize| {
            let log = s.apache.error_log();
            log.get(from..)
                .unwrap_or("")
                .lines()
                .filter(|l| {
                    [":error]", ":warn]", ":crit]", ":alert]"]
                        .iter()
                        .any(|k| l.contains(k))
                })
                .map(|l| format!("      {}", l.split_once("] [client").map_or(l, |(_, r)| r)))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if let Some(check) = deliberate(mode, &case.name) {
            if let Err(e) = check(&theirs, &ours) {
                deliberate_failures.push(format!(
                    "=== {}: {e}\n--- C mod_wsgi:\n{}\n--- mod_wsgi-rs:\n{}",
                    case.name,
                    theirs.render(),
                    ours.render()
                ));
            }
            continue;
        }
        if theirs != ours {
            diffs.push(format!(
                "=== {}\n{}    C logged:\n{}\n    rs logged:\n{}",
                case.name,
                theirs.diff(&ours),
                logged(&c, c_log),
                logged(&rs, rs_log)
            ));
        }
    }
    if !diffs.is_empty() || !deliberate_failures.is_empty() {
        panic!(
            "{} of {} cases differ from the C mod_wsgi ({mode}):\n{}\n{}",
            diffs.len() + deliberate_failures.len(),
            cases.len(),
            diffs.join("\n"),
            deliberate_failures.join("\n")
        );
    }
}

#[test]
fn embedded_mode_answers_as_mod_wsgi() {
    run("embedded", CONF);
}

#[test]
fn daemon_mode_answers_as_mod_wsgi() {
    run("daemon", &format!("{DAEMON}{CONF}"));
}

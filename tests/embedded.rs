//! Embedded mode against a real Apache: the flows of the seeds, PEP 3333
//! behaviour, and every bad input's error.

mod common;
use common::*;
use std::time::Duration;

fn json(r: &Response) -> serde_like::Value {
    serde_like::parse(&r.text())
}

/// A tiny JSON reader (objects of scalars/lists) so the tests need no crates.
mod serde_like {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        List(Vec<Value>),
        Obj(Vec<(String, Value)>),
    }
    impl Value {
        pub fn get(&self, k: &str) -> Option<&Value> {
            match self {
                Value::Obj(v) => v.iter().find(|(n, _)| n == k).map(|(_, v)| v),
                _ => None,
            }
        }
        pub fn str(&self, k: &str) -> Option<&str> {
            match self.get(k) {
                Some(Value::Str(s)) => Some(s),
                _ => None,
            }
        }
    }
    pub fn parse(s: &str) -> Value {
        let c: Vec<char> = s.chars().collect();
        let mut i = 0;

        val(&c, &mut i)
    }
    fn ws(c: &[char], i: &mut usize) {
        while *i < c.len() && c[*i].is_whitespace() {
            *i += 1;
        }
    }
    fn val(c: &[char], i: &mut usize) -> Value {
        ws(c, i);
        match c[*i] {
            '{' => {
                *i += 1;
                let mut out = Vec::new();
                loop {
                    ws(c, i);
                    if c[*i] == '}' {
                        *i += 1;
                        break;
                    }
                    let Value::Str(k) = val(c, i) else {
                        panic!("key")
                    };
                    ws(c, i);
                    *i += 1; // :
                    let v = val(c, i);
                    out.push((k, v));
                    ws(c, i);
                    if c[*i] == ',' {
                        *i += 1;
                    }
                }
                Value::Obj(out)
            }
            '[' => {
                *i += 1;
                let mut out = Vec::new();
                loop {
                    ws(c, i);
                    if c[*i] == ']' {
                        *i += 1;
                        break;
                    }
                    out.push(val(c, i));
                    ws(c, i);
                    if c[*i] == ',' {
                        *i += 1;
                    }
                }
                Value::List(out)
            }
            '"' => {
                *i += 1;
                let mut s = String::new();
                while c[*i] != '"' {
                    if c[*i] == '\\' {
                        *i += 1;
                        match c[*i] {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            'u' => {
                                let h: String = c[*i + 1..*i + 5].iter().collect();
                                s.push(
                                    char::from_u32(u32::from_str_radix(&h, 16).unwrap())
                                        .unwrap_or('?'),
                                );
                                *i += 4;
                            }
                            x => s.push(x),
                        }
                    } else {
                        s.push(c[*i]);
                    }
                    *i += 1;
                }
                *i += 1;
                Value::Str(s)
            }
            't' => {
                *i += 4;
                Value::Bool(true)
            }
            'f' => {
                *i += 5;
                Value::Bool(false)
            }
            'n' => {
                *i += 4;
                Value::Null
            }
            _ => {
                let st = *i;
                while *i < c.len() && "+-0123456789.eE".contains(c[*i]) {
                    *i += 1;
                }
                Value::Num(c[st..*i].iter().collect::<String>().parse().unwrap())
            }
        }
    }
}

use serde_like::Value;

#[test]
fn seed_004_hello_world_at_a_sub_path() {
    let a = Apache::start("hello", "WSGIScriptAlias /myapp {APPS}/hello.wsgi\n");
    let r = a.get("/myapp");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"Hello World!");
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.header("Content-Length"), Some("12"));
    // Outside the alias: not ours.
    assert_eq!(a.get("/myappx").status, 404);
    assert_eq!(a.get("/other").status, 404);
    // HEAD: headers, no body.
    let h = a.request("HEAD", "/myapp", &[], b"");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty(), "HEAD sent a body: {:?}", h.body);
    assert!(a.error_log().contains("Loading Python script file"));
}

#[test]
fn environ_matches_mod_wsgi() {
    let a = Apache::start(
        "environ",
        "WSGIScriptAlias /sub/app {APPS}/environ.wsgi\nWSGIScriptAlias / {APPS}/environ.wsgi\n",
    );
    let r = a.request(
        "GET",
        "/sub/app/a/b%20c?x=1&y=%C3%A9",
        &[
            ("X-Custom", "v1"),
            ("X_Under", "spoof"),
            ("Proxy", "http://evil/"),
            ("Authorization", "Basic Zm9vOmJhcg=="),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = json(&r);
    assert_eq!(e.str("SCRIPT_NAME"), Some("/sub/app"));
    assert_eq!(e.str("PATH_INFO"), Some("/a/b c"));
    assert_eq!(e.str("QUERY_STRING"), Some("x=1&y=%C3%A9"));
    assert_eq!(e.str("REQUEST_METHOD"), Some("GET"));
    assert_eq!(e.str("REQUEST_URI"), Some("/sub/app/a/b%20c?x=1&y=%C3%A9"));
    assert_eq!(e.str("SERVER_PROTOCOL"), Some("HTTP/1.1"));
    assert_eq!(e.str("HTTP_X_CUSTOM"), Some("v1"));
    assert_eq!(
        e.get("HTTP_X_UNDER"),
        None,
        "header with '_' must be dropped"
    );
    assert_eq!(e.get("HTTP_PROXY"), None, "Proxy header must never pass");
    assert_eq!(
        e.get("HTTP_AUTHORIZATION"),
        None,
        "Authorization hidden by default"
    );
    assert_eq!(e.str("wsgi.url_scheme"), Some("http"));
    assert_eq!(
        e.get("wsgi.version"),
        Some(&Value::List(vec![Value::Num(1.0), Value::Num(0.0)]))
    );
    assert_eq!(e.get("wsgi.multithread"), Some(&Value::Bool(true)));
    // The harness runs one child (ServerLimit 1): not multiprocess, as
    // mod_wsgi reports it.
    assert_eq!(e.get("wsgi.multiprocess"), Some(&Value::Bool(false)));
    assert_eq!(e.get("wsgi.run_once"), Some(&Value::Bool(false)));
    assert_eq!(e.get("wsgi.input_terminated"), Some(&Value::Bool(true)));
    assert_eq!(e.str("wsgi.input"), Some("<Input>"));
    assert_eq!(e.str("wsgi.errors"), Some("<TextIOWrapper>"));
    assert_eq!(e.str("mod_wsgi.process_group"), Some(""));
    assert_eq!(
        e.str("mod_wsgi.application_group"),
        Some(format!("localhost:{}|/sub/app", a.port).as_str())
    );
    assert_eq!(e.str("mod_wsgi.callable_object"), Some("application"));
    assert_eq!(e.str("mod_wsgi.request_handler"), Some("wsgi-script"));
    assert_eq!(e.str("mod_wsgi.script_reloading"), Some("1"));
    assert!(e.str("mod_wsgi.request_id").is_some_and(|s| !s.is_empty()));
    let start: i64 = e.str("mod_wsgi.request_start").unwrap().parse().unwrap();
    assert!(start > 1_600_000_000_000_000);
    assert!(e.str("SCRIPT_FILENAME").unwrap().ends_with("/environ.wsgi"));
    assert!(e.str("__module__").unwrap().starts_with("_mod_wsgi_"));
    assert_eq!(
        e.get("__argv__"),
        Some(&Value::List(vec![Value::Str("mod_wsgi".into())]))
    );

    // At the root: SCRIPT_NAME is empty and PATH_INFO carries the path.
    let e = json(&a.get("/x/y"));
    assert_eq!(e.str("SCRIPT_NAME"), Some(""));
    assert_eq!(e.str("PATH_INFO"), Some("/x/y"));
    assert_eq!(
        e.str("mod_wsgi.application_group"),
        Some(format!("localhost:{}|", a.port).as_str())
    );
    let e = json(&a.get("/"));
    assert_eq!(e.str("SCRIPT_NAME"), Some(""));
    assert_eq!(e.str("PATH_INFO"), Some("/"));
    // One script (twice) in default groups: no sharing warning.
    assert!(
        !a.error_log()
            .contains("does not create sub-interpreters yet")
    );
}

#[test]
fn shared_interpreter_is_announced_at_start_up() {
    let a = Apache::start(
        "shared",
        "WSGIScriptAlias /a {APPS}/hello.wsgi\nWSGIScriptAlias /b {APPS}/environ.wsgi\n",
    );
    assert!(
        a.error_log()
            .contains("2 WSGI scripts are configured with their own application groups"),
        "{}",
        a.error_log()
    );
    let b = Apache::start(
        "notshared",
        "WSGIScriptAlias /a {APPS}/hello.wsgi application-group=%{GLOBAL}\nWSGIScriptAlias /b {APPS}/environ.wsgi application-group=%{GLOBAL}\n",
    );
    assert!(
        !b.error_log()
            .contains("does not create sub-interpreters yet")
    );
}

#[test]
fn authorization_passed_when_enabled_and_groups_configurable() {
    let a = Apache::start(
        "auth",
        "WSGIScriptAlias /app {APPS}/environ.wsgi\nWSGIPassAuthorization On\nWSGIApplicationGroup %{GLOBAL}\nWSGIScriptAlias /opt {APPS}/environ.wsgi application-group=custom pass-authorization=Off\n",
    );
    let e = json(&a.request(
        "GET",
        "/app",
        &[("Authorization", "Basic Zm9vOmJhcg==")],
        b"",
    ));
    assert_eq!(e.str("HTTP_AUTHORIZATION"), Some("Basic Zm9vOmJhcg=="));
    assert_eq!(e.str("mod_wsgi.application_group"), Some(""));
    let e = json(&a.request(
        "GET",
        "/opt",
        &[("Authorization", "Basic Zm9vOmJhcg==")],
        b"",
    ));
    assert_eq!(e.get("HTTP_AUTHORIZATION"), None);
    assert_eq!(e.str("mod_wsgi.application_group"), Some("custom"));
}

#[test]
fn wsgi_input_all_read_styles() {
    let a = Apache::start("input", "WSGIScriptAlias /in {APPS}/input.wsgi\n");
    let body = b"line one\nline two\n\nlast without newline";
    let post = |q: &str| {
        a.request(
            "POST",
            &format!("/in?{q}"),
            &[("Content-Type", "text/plain")],
            body,
        )
    };
    assert_eq!(post("read").body, body);
    assert_eq!(post("readn").body, body);
    assert_eq!(
        post("readline").text(),
        "[line one\n][line two\n][\n][last without newline]"
    );
    assert_eq!(
        post("readlines").text(),
        "line one\n|line two\n|\n|last without newline"
    );
    assert_eq!(
        post("iter").text(),
        "line one\n|line two\n|\n|last without newline"
    );
    // No body at all: read() gives b''.
    assert_eq!(a.request("POST", "/in?read", &[], b"").body, b"");
}

#[test]
fn big_upload_streams_and_chunked_needs_the_directive() {
    let a = Apache::start(
        "upload",
        "WSGIScriptAlias /in {APPS}/input.wsgi\nWSGIScriptAlias /chunked {APPS}/input.wsgi\n<Location /chunked>\nWSGIChunkedRequest On\n</Location>\n",
    );
    let big: Vec<u8> = (0..(20 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let r = a.request("POST", "/in?hash", &[], &big);
    assert_eq!(r.status, 200);
    let expected = format!("{} {}", big.len(), sha256_hex(&big));
    assert_eq!(r.text(), expected);

    let chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let r = a.request(
        "POST",
        "/chunked?read",
        &[("Transfer-Encoding", "chunked")],
        chunked,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello world");
    let r = a.request(
        "POST",
        "/in?read",
        &[("Transfer-Encoding", "chunked")],
        chunked,
    );
    assert_eq!(
        r.status, 411,
        "chunked body without WSGIChunkedRequest On must be refused"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn response_shapes() {
    let a = Apache::start("resp", "WSGIScriptAlias /r {APPS}/responses.wsgi\n");
    assert_eq!(
        a.get("/r?generator").text(),
        "chunk0;chunk1;chunk2;chunk3;chunk4;"
    );
    assert_eq!(a.get("/r?write").text(), "written;returned");
    let r = a.get("/r?close");
    assert_eq!(r.text(), "ab");
    assert!(
        a.wait_log("CLOSE-CALLED close", Duration::from_secs(5)),
        "close() not called"
    );
    let r = a.get("/r?too-long");
    assert_eq!(
        r.body, b"12345",
        "output past Content-Length must be dropped"
    );
    let r = a.get("/r?exc-info");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("X-Replaced"), Some("1"));
    assert_eq!(r.text(), "replaced");
    let r = a.get("/r?empty");
    assert_eq!(r.status, 204);
    let r = a.get("/r?status-custom");
    assert_eq!(r.status, 299);
    assert!(
        r.raw_head.starts_with("HTTP/1.1 299 Custom Thing"),
        "{}",
        r.raw_head
    );
    let r = a.get("/r?multi-header");
    let cookies: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "Set-Cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let r = a.get("/r?big");
    assert_eq!(r.body.len(), 1 << 20);
}

#[test]
fn file_wrapper_sends_the_file() {
    let a = Apache::start("file", "WSGIScriptAlias /r {APPS}/responses.wsgi\n");
    let data = std::fs::read(apps_dir().join("data.bin")).unwrap();
    let r = a.get("/r?file");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data);
    let r = a.get("/r?file-offset");
    assert!(r.body == data[10..]);
    let h = a.request("HEAD", "/r?file", &[], b"");
    assert!(h.body.is_empty());
}

#[test]
fn bad_responses_give_500_and_never_leak_crlf() {
    let a = Apache::start("bad", "WSGIScriptAlias /r {APPS}/responses.wsgi\n");
    for q in [
        "crlf",
        "crlf-name",
        "non-latin1",
        "bad-status",
        "str-body",
        "no-start",
        "raise",
    ] {
        let r = a.get(&format!("/r?{q}"));
        assert_eq!(r.status, 500, "{q}: {:?}", r.raw_head);
        assert!(
            r.header("Set-Cookie").is_none(),
            "{q}: injected header reached the client"
        );
        assert!(!r.raw_head.contains("injected"), "{q}");
        assert!(!r.text().contains("should not be sent"), "{q}");
    }
    let log = a.error_log();
    assert!(
        log.contains("Exception occurred processing WSGI script"),
        "{log}"
    );
    assert!(
        log.contains("embedded newline in response header with name 'X-Evil'"),
        "{log}"
    );
    assert!(
        log.contains("RuntimeError: application raised on purpose"),
        "{log}"
    );
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(
        log.contains("sequence of byte string values expected, value of type str found"),
        "{log}"
    );
    assert!(log.contains("response has not been started"), "{log}");
    // Failure after the headers went out: the client sees a truncated body.
    let r = a.get("/r?close-raise");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"first");
    assert!(a.wait_log("generator failed midway", Duration::from_secs(5)));
    assert!(
        a.wait_log("CLOSE-CALLED close-raise", Duration::from_secs(5)),
        "close() must run after an error"
    );
}

#[test]
fn missing_script_broken_import_and_missing_callable() {
    let a = Apache::start(
        "errors",
        "WSGIScriptAlias /missing {APPS}/nope.wsgi\nWSGIScriptAlias /broken {APPS}/broken_import.wsgi\nWSGIScriptAlias /nocall {APPS}/hello.wsgi callable-object=nothere\nWSGIScriptAlias /callable {APPS}/callable.wsgi\n<Location /callable>\nWSGICallableObject myapp\n</Location>\n",
    );
    assert_eq!(a.get("/missing").status, 404);
    assert!(
        a.error_log()
            .contains("Target WSGI script not found or unable to stat")
    );
    let r = a.get("/broken");
    assert_eq!(r.status, 500);
    let log = a.error_log();
    assert!(log.contains("Failed to exec Python script file"), "{log}");
    assert!(
        log.contains("ModuleNotFoundError: No module named 'this_module_does_not_exist_anywhere'"),
        "{log}"
    );
    // A request id accompanies the failure (it is mod_wsgi.request_id).
    assert_eq!(a.get("/broken").status, 500, "still failing, not crashing");
    assert_eq!(a.get("/nocall").status, 404, "as mod_wsgi");
    assert!(
        a.error_log()
            .contains("does not contain WSGI application 'nothere'")
    );
    assert_eq!(a.get("/callable").text(), "from myapp");
}

#[test]
fn stdout_stderr_and_wsgi_errors_go_to_the_error_log() {
    let a = Apache::start("print", "WSGIScriptAlias /r {APPS}/responses.wsgi\n");
    assert_eq!(a.get("/r?print").text(), "printed");
    for needle in [
        "PRINTED-TO-STDOUT",
        "WRITTEN-TO-STDERR",
        "WRITTEN-TO-WSGI-ERRORS",
    ] {
        assert!(
            a.wait_log(needle, Duration::from_secs(5)),
            "{needle} missing"
        );
    }
    // Tagged with the request's client.
    let log = a.error_log();
    let line = log
        .lines()
        .find(|l| l.contains("WRITTEN-TO-WSGI-ERRORS"))
        .unwrap();
    assert!(line.contains("[client 127.0.0.1:"), "{line}");
    let line = log
        .lines()
        .find(|l| l.contains("PRINTED-TO-STDOUT"))
        .unwrap();
    assert!(line.contains("[client 127.0.0.1:"), "{line}");

    let a = Apache::start(
        "restrict",
        "WSGIRestrictStdout On\nWSGIScriptAlias /r {APPS}/responses.wsgi\n",
    );
    assert_eq!(a.get("/r?print").status, 500);
    assert!(
        a.error_log()
            .contains("sys.stdout access restricted by mod_wsgi")
    );
}

/// Writes tests' reload.wsgi, an app answering `v`.
fn write_reload_app(a: &Apache, v: &str) {
    let p = a.app_path("reload.wsgi");
    let src = format!("def application(e, sr):\n    sr('200 OK', [])\n    return [b'{v}']\n");
    std::fs::write(&p, src).unwrap();
    chmod(&p, 0o644);
}

#[test]
fn script_reloading() {
    let a = Apache::start("reload", "WSGIScriptAlias /app {APPS}/reload.wsgi\n");
    let write = |v: &str| write_reload_app(&a, v);
    write("version one");
    assert_eq!(a.get("/app").text(), "version one");
    std::thread::sleep(Duration::from_millis(1100));
    write("version two");
    assert_eq!(a.get("/app").text(), "version two");

    // With reloading off, the first version sticks.
    let b = Apache::start(
        "noreload",
        "WSGIScriptReloading Off\nWSGIScriptAlias /app {APPS}/reload.wsgi\n",
    );
    let write = |v: &str| write_reload_app(&b, v);
    write("first");
    // One child process: every request reaches the same interpreter.
    assert_eq!(b.get("/app").text(), "first");
    std::thread::sleep(Duration::from_millis(1100));
    write("second");
    assert_eq!(b.get("/app").text(), "first");
}

#[test]
fn add_handler_needs_exec_cgi() {
    let a = Apache::start(
        "handler",
        "Alias /noexec {APPS}\nAlias /exec {APPS}\n<Location /noexec>\nAddHandler wsgi-script .wsgi\n</Location>\n<Location /exec>\nOptions +ExecCGI\nAddHandler wsgi-script .wsgi\n</Location>\n",
    );
    assert_eq!(a.get("/noexec/hello.wsgi").status, 403);
    assert!(
        a.error_log()
            .contains("Options ExecCGI is off in this directory")
    );
    let r = a.get("/exec/hello.wsgi");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"Hello World!");
}

#[test]
fn two_virtual_hosts_with_their_own_apps_and_logs() {
    let a = Apache::start(
        "vhosts",
        r#"<VirtualHost *:{PORT}>
    ServerName one.example
    ErrorLog {ROOT}/logs/one_error_log
    WSGIScriptAlias / {APPS}/hello.wsgi
</VirtualHost>
<VirtualHost *:{PORT}>
    ServerName two.example
    ErrorLog {ROOT}/logs/two_error_log
    WSGIScriptAlias / {APPS}/responses.wsgi
</VirtualHost>
"#,
    );
    let get = |host: &str, path: &str| {
        a.raw(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
            false,
        )
    };
    assert_eq!(get("one.example", "/").body, b"Hello World!");
    assert_eq!(get("two.example", "/").body, b"default");
    assert_eq!(get("two.example", "/?print").body, b"printed");
    let two = a.root.join("logs/two_error_log");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&two)
        .unwrap_or_default()
        .contains("WRITTEN-TO-WSGI-ERRORS")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "vhost log missing app output"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let one = std::fs::read_to_string(a.root.join("logs/one_error_log")).unwrap_or_default();
    assert!(!one.contains("WRITTEN-TO-WSGI-ERRORS"));
}

#[test]
fn bad_directives_refuse_to_start() {
    let cases: &[(&str, &str)] = &[
        ("WSGIScriptReloading Maybe\n", "WSGIScriptReloading"),
        (
            "WSGIPythonOptimize\n",
            "WSGIPythonOptimize takes one argument",
        ),
        ("WSGIScriptAlias /x\n", "WSGIScriptAlias"),
        (
            "WSGIScriptAlias /x /y bogus=1\n",
            "Invalid option to WSGI script alias definition.",
        ),
        ("WSGIMapHEADToGET Sometimes\n", "WSGIMapHEADToGET"),
        (
            "WSGIDaemonProcess g processes=zero\n",
            "Invalid process count for WSGI daemon process. (WSGIDaemonProcess g processes=zero)",
        ),
        (
            "WSGIDaemonProcess g bogus=1\n",
            "Invalid option to WSGI daemon process definition.",
        ),
        (
            "WSGIDaemonProcess g\nWSGIDaemonProcess g\n",
            "Name duplicates previous WSGI daemon definition.",
        ),
        (
            "<Directory /tmp>\nWSGIDispatchScript /x.py process-group=x\n</Directory>\n",
            "Invalid option to WSGI dispatch script definition.",
        ),
        (
            "<VirtualHost *:80>\nWSGIPythonHome /usr\n</VirtualHost>\n",
            "WSGIPythonHome cannot occur within <VirtualHost> section",
        ),
        (
            "<Directory /tmp>\nWSGIScriptAlias /x /y\n</Directory>\n",
            "WSGIScriptAlias not allowed in <Directory> context",
        ),
    ];
    for (body, needle) in cases {
        let (ok, out) = config_test("badconf", body);
        assert!(!ok, "config accepted: {body}");
        assert!(
            out.contains(needle),
            "for {body:?} expected {needle:?} in:\n{out}"
        );
        assert!(out.contains("Syntax error on line"), "{out}");
    }
    // The refused line is quoted, so the directive and the value are named.
    let (ok, out) = config_test("badconf", "WSGIScriptReloading Maybe\n");
    assert!(!ok);
    assert!(out.contains("(WSGIScriptReloading Maybe)"), "{out}");
}

#[test]
fn python_settings_reach_the_interpreter() {
    let site = temp_root("site");
    std::fs::create_dir_all(site.join("lib")).unwrap();
    std::fs::create_dir_all(site.join("extra")).unwrap();
    std::fs::write(
        site.join("lib/extra.pth"),
        format!("{}\n", site.join("extra").display()),
    )
    .unwrap();
    for d in [site.join("lib"), site.join("extra")] {
        chmod(&d, 0o755);
    }
    chmod(&site.join("lib/extra.pth"), 0o644);
    let a = Apache::start(
        "pyset",
        &format!(
            "WSGIPythonPath {lib}\nWSGIPythonOptimize 1\nWSGIDontWriteBytecode On\nWSGIPythonWarnings ignore::DeprecationWarning\nWSGIPythonEggs /tmp/eggs-cache\nWSGIScriptAlias /e {{APPS}}/environ.wsgi\n",
            lib = site.join("lib").display()
        ),
    );
    let e = json(&a.get("/e"));
    let path = format!("{:?}", e.get("__sys_path__").unwrap());
    assert!(path.contains(site.join("lib").to_str().unwrap()), "{path}");
    assert!(
        path.contains(site.join("extra").to_str().unwrap()),
        ".pth not processed: {path}"
    );
    assert_eq!(e.get("__flags_optimize__"), Some(&Value::Num(1.0)));
    assert_eq!(e.get("__dont_write_bytecode__"), Some(&Value::Bool(true)));
    assert_eq!(
        e.get("__warnoptions__"),
        Some(&Value::List(vec![Value::Str(
            "ignore::DeprecationWarning".into()
        )]))
    );
    assert_eq!(
        e.get("__egg_cache__"),
        Some(&Value::Str("/tmp/eggs-cache".into()))
    );
}

#[test]
fn python_that_cannot_start_serves_500s_and_says_why() {
    let a = Apache::start(
        "nopython",
        "WSGIPythonHome /nonexistent/python/home\nWSGIScriptAlias /app {APPS}/hello.wsgi\n",
    );
    let r = a.get("/app");
    assert_eq!(r.status, 500);
    assert!(
        a.error_log().contains("Python could not be initialised"),
        "{}",
        a.error_log()
    );
    // The children did not crash-loop: the same server still answers.
    assert_eq!(a.get("/app").status, 500);
}

#[test]
fn mod_wsgi_module_and_log_level() {
    let a = Apache::start_with(
        "modwsgi",
        "WSGIScriptAlias /m {APPS}/modwsgi.wsgi\n",
        Options {
            log_level: "warn wsgi:debug",
            ..Default::default()
        },
    );
    let r = a.get("/m");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "||(6, 0, 0)");
    assert!(
        a.error_log().contains("[wsgi:debug]"),
        "LogLevel wsgi:debug should show debug records"
    );
    let b = Apache::start_with(
        "modwsgi2",
        "WSGIScriptAlias /m {APPS}/modwsgi.wsgi\n",
        Options {
            log_level: "warn",
            ..Default::default()
        },
    );
    assert_eq!(b.get("/m").status, 200);
    assert!(!b.error_log().contains("[wsgi:debug]"));
    assert!(!b.error_log().contains("[wsgi:info]"));
}

#[test]
fn sixty_four_concurrent_clients() {
    let a = Apache::start_with(
        "concurrency",
        "WSGIScriptAlias /hello {APPS}/hello.wsgi\nWSGIScriptAlias /in {APPS}/input.wsgi\n",
        // Room for all 64 clients twice over: with exactly 64 workers
        // Apache logs AH00484 (MaxRequestWorkers reached) at error level,
        // and with 96 it still did once while other tests loaded the CPU
        // (workers still closing connections count as busy).
        Options {
            threads: 32,
            servers: 4,
            log_level: "warn",
        },
    );
    let a = std::sync::Arc::new(a);
    let mut handles = Vec::new();
    for t in 0..64 {
        let a = a.clone();
        handles.push(std::thread::spawn(move || {
            let mut failures = 0;
            for i in 0..100 {
                if (t + i) % 3 == 0 {
                    let body = format!("client {t} request {i}");
                    let r = a.request("POST", "/in?read", &[], body.as_bytes());
                    if r.status != 200 || r.body != body.as_bytes() {
                        failures += 1;
                    }
                } else {
                    let r = a.get("/hello");
                    if r.status != 200 || r.body != b"Hello World!" {
                        failures += 1;
                    }
                }
            }
            failures
        }));
    }
    let failures: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(failures, 0);
    let log = a.error_log();
    assert!(
        !log.contains("Segmentation fault") && !log.contains("exit signal"),
        "{log}"
    );
    // No error at all: not from the module, not from Apache.
    assert_eq!(error_lines(&log), Vec::<&str>::new(), "{log}");
}

#[test]
fn error_override_has_no_effect_in_embedded_mode() {
    let a = Apache::start(
        "override",
        "WSGIScriptAlias /r {APPS}/responses.wsgi\nWSGIScriptAlias /o {APPS}/responses.wsgi\n<Location /o>\nWSGIErrorOverride On\n</Location>\nErrorDocument 404 \"apache error document\"\n",
    );
    let r = a.get("/r?not-found");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "application 404 body");
    // "This directive has no effect when the WSGI application is running
    // in embedded mode" (mod_wsgi's documentation); daemon.rs tests it.
    let r = a.get("/o?not-found");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "application 404 body");
    assert_eq!(
        a.get("/o?generator").text(),
        "chunk0;chunk1;chunk2;chunk3;chunk4;"
    );
}

#[test]
fn restrict_embedded_signal_and_head_mapping() {
    let a = Apache::start(
        "restrictemb",
        "WSGIRestrictEmbedded On\nWSGIScriptAlias /h {APPS}/hello.wsgi\n",
    );
    assert_eq!(a.get("/h").status, 500);
    assert!(
        a.error_log()
            .contains("Embedded mode of mod_wsgi disabled by runtime configuration")
    );

    let b = Apache::start(
        "signals",
        "WSGIScriptAlias /e {APPS}/environ.wsgi\nWSGIScriptAlias /s {APPS}/signal.wsgi\nWSGIScriptAlias /g {APPS}/environ.wsgi\n<Location /g>\nWSGIMapHEADToGET On\n</Location>\n",
    );
    assert_eq!(b.get("/s").text(), "registered");
    assert!(b.wait_log(
        "Callback registration for signal 15 ignored.",
        Duration::from_secs(5)
    ));
    // HEAD reaches the application as HEAD by default, as GET when mapped.
    let h = b.request("HEAD", "/g?log-method-1", &[], b"");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert!(
        b.wait_log("METHOD-SEEN log-method-1 GET", Duration::from_secs(5)),
        "{}",
        b.error_log()
    );
    let h = b.request("HEAD", "/e?log-method-2", &[], b"");
    assert!(h.body.is_empty());
    assert!(
        b.wait_log("METHOD-SEEN log-method-2 HEAD", Duration::from_secs(5)),
        "{}",
        b.error_log()
    );
}

#[test]
fn trusted_proxy_headers() {
    let a = Apache::start(
        "proxy",
        "WSGIScriptAlias /trusted {APPS}/environ.wsgi\nWSGIScriptAlias /untrusted {APPS}/environ.wsgi\n\
         <Location /trusted>\nWSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host\nWSGITrustedProxies 127.0.0.1\n</Location>\n\
         <Location /untrusted>\nWSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\nWSGITrustedProxies 10.9.9.9\n</Location>\n",
    );
    let hdrs = [
        ("X-Forwarded-For", "203.0.113.7, 127.0.0.1"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "public.example"),
        ("X-Real-IP", "198.51.100.1"),
    ];
    let e = json(&a.request("GET", "/trusted", &hdrs, b""));
    assert_eq!(e.str("REMOTE_ADDR"), Some("203.0.113.7"));
    assert_eq!(e.str("wsgi.url_scheme"), Some("https"));
    assert_eq!(e.str("HTTP_HOST"), Some("public.example"));
    assert_eq!(
        e.get("HTTP_X_REAL_IP"),
        None,
        "untrusted member of a trusted family must be removed"
    );
    // From a client that is not a trusted proxy: nothing honoured, spoofs removed.
    let e = json(&a.request("GET", "/untrusted", &hdrs, b""));
    assert_eq!(e.str("REMOTE_ADDR"), Some("127.0.0.1"));
    assert_eq!(e.str("wsgi.url_scheme"), Some("http"));
    assert_eq!(e.get("HTTP_X_FORWARDED_FOR"), None);
    assert_eq!(e.get("HTTP_X_FORWARDED_PROTO"), None);
}

#[test]
fn graceful_and_full_restarts_keep_serving() {
    let a = Apache::start("restart", "WSGIScriptAlias /h {APPS}/hello.wsgi\n");
    assert_eq!(a.get("/h").body, b"Hello World!");
    let pid = a.pid().unwrap() as i32;
    for (sig, expect) in [
        (libc::SIGUSR1, "Doing graceful restart"),
        (libc::SIGHUP, "SIGHUP received"),
    ] {
        // Let the worker finish closing the last connection first: SIGHUP
        // stops children ungracefully, and httpd's event MPM can crash a
        // child whose worker frees a connection while the main thread
        // closes it (close_worker_sockets), with no module involved.
        std::thread::sleep(Duration::from_millis(500));
        unsafe { libc::kill(pid, sig) };
        assert!(
            a.wait_log(expect, Duration::from_secs(10)),
            "{expect} not logged"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", a.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ =
                    s.write_all(b"GET /h HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                if buf.ends_with(b"Hello World!") {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not serving after restart:\n{}",
                a.error_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let log = a.error_log();
    assert!(!log.contains("exit signal"), "a process crashed:\n{log}");
}

#[test]
fn python_home_can_be_a_virtualenv() {
    let root = temp_root("venv");
    let venv = root.join("env");
    let st = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(st.success());
    let site = venv.join("lib/python3.11/site-packages");
    std::fs::write(site.join("venv_marker.py"), "WHERE = 'inside the venv'\n").unwrap();
    let _ = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&root)
        .status();
    let a = Apache::start(
        "venvhome",
        &format!(
            "WSGIPythonHome {}\nWSGIScriptAlias /e {{APPS}}/environ.wsgi\nWSGIScriptAlias /m {{APPS}}/venv_marker.wsgi\n",
            venv.display()
        ),
    );
    let e = json(&a.get("/e"));
    assert_eq!(
        e.str("__prefix__"),
        Some(venv.to_str().unwrap()),
        "{}",
        a.error_log()
    );
    assert_eq!(a.get("/m").text(), "inside the venv");
}

#[test]
fn script_alias_match_env_groups_and_import_script() {
    let a = Apache::start(
        "aliasmatch",
        "LoadModule setenvif_module /usr/lib/apache2/modules/mod_setenvif.so\n\
         WSGIScriptAliasMatch ^/apps/([^/]+) {APPS}/$1.wsgi\n\
         SetEnvIf Request_URI . GROUPVAR=from-env\n\
         WSGIScriptAlias /envgroup {APPS}/environ.wsgi application-group=%{ENV:GROUPVAR}\n\
         WSGIImportScript {APPS}/imported.py process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
         WSGIScriptAlias /imported {APPS}/check_import.wsgi application-group=%{GLOBAL}\n",
    );
    assert_eq!(a.get("/apps/hello").body, b"Hello World!");
    let e = json(&a.get("/apps/environ/more/path"));
    assert_eq!(e.str("SCRIPT_NAME"), Some("/apps/environ"));
    assert_eq!(e.str("PATH_INFO"), Some("/more/path"));
    assert_eq!(a.get("/apps/nope").status, 404);
    let e = json(&a.get("/envgroup"));
    assert_eq!(e.str("mod_wsgi.application_group"), Some("from-env"));
    // Loaded once at child start, before any request.
    assert!(a.error_log().contains("imported.py"), "{}", a.error_log());
    assert_eq!(a.get("/imported").text(), "1");
}

#[test]
fn daemon_groups_run_in_daemon_processes() {
    // ---- daemon mode (branch daemon): replaces the embedded fallback test.
    let a = Apache::start(
        "daemonfallback",
        "WSGIDaemonProcess mygroup processes=2 threads=4\nWSGIScriptAlias /e {APPS}/environ.wsgi process-group=mygroup\nWSGIScriptAlias /f {APPS}/environ.wsgi\n<Location /f>\nWSGIProcessGroup mygroup\n</Location>\nWSGIScriptAlias /u {APPS}/environ.wsgi process-group=unknown\n",
    );
    assert!(!a.error_log().contains("daemon mode is not implemented"));
    let r = a.get("/e");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(json(&r).str("mod_wsgi.process_group"), Some("mygroup"));
    assert_eq!(a.get("/f").status, 200);
    assert_eq!(a.get("/u").status, 500);
    assert!(
        a.error_log()
            .contains("No WSGI daemon process called 'unknown' has been configured")
    );
}

#[test]
fn children_with_python_threads_stop_promptly() {
    let mut a = Apache::start("threads", "WSGIScriptAlias /t {APPS}/threads.wsgi\n");
    for _ in 0..4 {
        assert_eq!(a.get("/t").text(), "threads ok");
    }
    let log = a.graceful_stop();
    // AH00045/AH00046: Apache had to SIGTERM/SIGKILL a child that hung.
    assert!(
        !log.contains("AH00045") && !log.contains("AH00046"),
        "a child hung at shutdown:\n{log}"
    );
    assert!(log.contains("Destroying interpreters."), "{log}");
}

#[test]
fn yielded_blocks_reach_the_client_before_the_next_is_produced() {
    let a = Apache::start("slowstream", "WSGIScriptAlias /s {APPS}/slow_stream.wsgi\n");
    common::assert_blocks_arrive_one_by_one(&a, "/s");
}

// ===========================================================================
// Issue #2 audit (branch audit2): the points of issue #2 that had no test
// against a real Apache yet. Kept together at the end of the file.
// ===========================================================================

/// Like `Apache::start`, with extra environment variables for Apache (and so
/// for its children, as `envvars` gives them on Debian).
fn start_with_env(name: &str, body: &str, env: &[(&str, &str)]) -> Apache {
    let root = temp_root(name);
    let port = free_port();
    let conf = write_conf(&root, port, body, &Options::default());
    let mut cmd = std::process::Command::new(APACHE);
    cmd.arg("-f").arg(&conf).arg("-DFOREGROUND");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8");
    for (k, v) in env {
        cmd.env(k, v.replace("{ROOT}", root.to_str().unwrap()));
    }
    let error_log = root.join("logs/error_log");
    Apache::launch(root, port, conf, error_log, cmd)
        .unwrap_or_else(|e| panic!("Apache did not start:\n{e}"))
}

/// A virtualenv made with `python3 -m venv` (no pip), readable by www-data,
/// whose site-packages holds `files` (name, contents).
fn make_venv(dir: &std::path::Path, files: &[(&str, &str)]) -> std::path::PathBuf {
    let st = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "python3 -m venv {} failed", dir.display());
    let site = dir.join("lib/python3.11/site-packages");
    assert!(site.is_dir(), "no {}", site.display());
    for (name, text) in files {
        std::fs::write(site.join(name), text).unwrap();
    }
    let _ = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .status();
    site
}

/// The lines of `text` that Apache logged at error level or worse.
fn error_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            [":error]", ":crit]", ":alert]", ":emerg]"]
                .iter()
                .any(|lvl| l.contains(lvl))
        })
        .collect()
}

fn pids_in(path: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Issue #2 point 4: Python starts in each child, never in Apache's root
/// parent, at start-up and across a graceful restart. A `.pth` file in the
/// Python home's site-packages runs whenever an interpreter initialises
/// there and records the pid that did it.
#[test]
fn python_is_initialised_in_the_children_never_in_the_parent() {
    let dir = temp_root("parentinit");
    let marker = dir.join("logs/initialised-in");
    std::fs::write(&marker, "").unwrap();
    chmod(&marker, 0o666);
    let venv = dir.join("env");
    make_venv(
        &venv,
        &[(
            "zz_init_marker.pth",
            &format!(
                "import os; open({:?}, 'a').write('%d\\n' % os.getpid())\n",
                marker.display()
            ),
        )],
    );
    let mut a = Apache::start(
        "parentinit",
        &format!(
            "WSGIPythonHome {}\nWSGIScriptAlias /h {{APPS}}/hello.wsgi\n",
            venv.display()
        ),
    );
    let parent = a.pid().unwrap() as i32;
    for _ in 0..5 {
        assert_eq!(a.get("/h").body, b"Hello World!");
    }
    let pids = pids_in(&marker);
    assert!(!pids.is_empty(), "the .pth marker never ran: {pids:?}");
    assert!(
        !pids.contains(&parent),
        "Python was initialised in Apache's parent ({parent}): {pids:?}"
    );
    // (Each child shows up twice: Debian's venv has lib64 -> lib, and site
    // reads the .pth under both names, as it does for `env/bin/python3`.)

    // A graceful restart runs post_config again in the parent and starts
    // new children.
    let before = pids.len();
    unsafe { libc::kill(parent, libc::SIGUSR1) };
    assert!(a.wait_log("Doing graceful restart", Duration::from_secs(10)));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pids_in(&marker).len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no child initialised Python after the graceful restart:\n{}",
            a.error_log()
        );
        let _ = std::net::TcpStream::connect(("127.0.0.1", a.port));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(a.get("/h").body, b"Hello World!");
    let pids = pids_in(&marker);
    assert!(!pids.contains(&parent), "{parent} in {pids:?}");
    let log = a.graceful_stop();
    assert!(!log.contains("exit signal"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #2 point 4: a script is the module `_mod_wsgi_<md5 of its path>`.
#[test]
fn script_module_is_named_after_the_md5_of_its_path() {
    let a = Apache::start("modname", "WSGIScriptAlias /e {APPS}/environ.wsgi\n");
    let e = json(&a.get("/e"));
    let path = e.str("SCRIPT_FILENAME").unwrap().to_string();
    assert_eq!(path, a.app_path("environ.wsgi").to_str().unwrap());
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.md5(sys.argv[1].encode()).hexdigest())",
            &path,
        ])
        .output()
        .unwrap();
    let md5 = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(md5.len(), 32);
    assert_eq!(
        e.str("__module__"),
        Some(format!("_mod_wsgi_{md5}").as_str())
    );
}

/// An `activate_this.py` of our own making (the `virtualenv` package writes
/// one; `python3 -m venv` does not): puts the environment's site-packages
/// first on sys.path and makes it sys.prefix, as the real one does.
const ACTIVATE_THIS: &str = r#"import os
import site
import sys

base = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["VIRTUAL_ENV"] = base
os.environ["PATH"] = os.path.join(base, "bin") + os.pathsep + os.environ.get("PATH", "")
before = list(sys.path)
site.addsitedir(os.path.join(base, "lib", "python%d.%d" % sys.version_info[:2], "site-packages"))
sys.path[:] = [p for p in sys.path if p not in before] + before
sys.real_prefix = sys.prefix
sys.prefix = base
"#;

/// Seed 000's `application` file, verbatim: `~/virtenv/bin/activate_this.py`
/// run with exec(compile(...)), `~/ROOT/` appended to sys.path, and
/// `from yourapplication import app as application`.
const SEED_000_APPLICATION: &str = r#"import os,sys
virtenv = os.path.expanduser('~') + '/virtenv/'
virtualenv = os.path.join(virtenv, 'bin/activate_this.py')
try:
   if sys.version.split(' ')[0].split('.')[0] == '3':
       exec(compile(open(virtualenv, "rb").read(), virtualenv, 'exec'), dict(__file__=virtualenv))
   else:
       execfile(virtualenv, dict(__file__=virtualenv))
except IOError:
   Pass

sys.path.append(os.path.expanduser('~'))
sys.path.append(os.path.expanduser('~') + '/ROOT/')

from yourapplication import app as application
"#;

/// The application both activation patterns import: it answers with what
/// only the activated environment provides.
const YOURAPPLICATION: &str = r#"import sys
import only_in_the_venv

def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s|%s' % (only_in_the_venv.WHERE, sys.prefix)).encode()]
"#;

/// Issue #2 point 4 and seeds 000 and 002: the `activate_this.py` pattern
/// works in embedded mode. Seed 000's file finds the virtualenv through
/// `~` (Apache's HOME here: the test's directory); seed 002's Python 3
/// variant reads it with `open()` and `exec()`.
#[test]
fn activate_this_patterns_of_seeds_000_and_002() {
    let a = start_with_env(
        "activate",
        "WSGIScriptAlias /seed000 {ROOT}/home/ROOT/application\n\
         WSGIScriptAlias /seed002 {ROOT}/home/seed002.wsgi\n\
         <Directory {ROOT}/home>\n    Require all granted\n</Directory>\n",
        &[("HOME", "{ROOT}/home")],
    );
    let home = a.root.join("home");
    std::fs::create_dir_all(home.join("ROOT")).unwrap();
    let venv = home.join("virtenv");
    make_venv(
        &venv,
        &[(
            "only_in_the_venv.py",
            "WHERE = 'imported from the virtualenv'\n",
        )],
    );
    std::fs::write(venv.join("bin/activate_this.py"), ACTIVATE_THIS).unwrap();
    std::fs::write(home.join("ROOT/application"), SEED_000_APPLICATION).unwrap();
    std::fs::write(home.join("ROOT/yourapplication.py"), YOURAPPLICATION).unwrap();
    // Seed 002's variant, with a virtualenv of its own: both scripts share
    // one interpreter, and this one must not pass thanks to the other.
    let venv002 = home.join("env002");
    make_venv(
        &venv002,
        &[("only_in_env002.py", "WHERE = 'imported from env002'\n")],
    );
    std::fs::write(venv002.join("bin/activate_this.py"), ACTIVATE_THIS).unwrap();
    let activate = venv002.join("bin/activate_this.py");
    std::fs::write(
        home.join("seed002.wsgi"),
        format!(
            "activate_this = {activate:?}\n\
             with open(activate_this) as file_:\n    exec(file_.read(), dict(__file__=activate_this))\n\n\
             import sys\nimport only_in_env002\n\n\
             def application(environ, start_response):\n    \
             start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
             return [('%s|%s' % (only_in_env002.WHERE, sys.prefix)).encode()]\n"
        ),
    )
    .unwrap();
    let _ = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&home)
        .status();
    let want = format!("imported from the virtualenv|{}", venv.display());
    let r = a.get("/seed000");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(r.text(), want);
    let r = a.get("/seed002");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(
        r.text(),
        format!("imported from env002|{}", venv002.display())
    );
}

/// Issue #2 point 5: `readline(size)`, `readlines(hint)`, and b'' / [] once
/// the body is used up, whichever method asks.
#[test]
fn wsgi_input_size_arguments_and_the_end_of_the_body() {
    let a = Apache::start(
        "inputsizes",
        "WSGIScriptAlias /in {APPS}/input_sizes.wsgi\n",
    );
    let body = b"line one\nline two\n\nlast without newline";
    let post = |q: &str| a.request("POST", &format!("/in?{q}"), &[], body).text();
    assert_eq!(
        post("readline-size"),
        "[line][ one][\n][line][ two][\n][\n][last][ wit][hout][ new][line]"
    );
    // readlines(10) stops after the line that brings the total to 10 or more.
    assert_eq!(
        post("readlines-hint"),
        "line one\n|line two\n#\n|last without newline"
    );
    assert_eq!(
        post("mixed"),
        "(b'lin', b'e one\\n', b'', b'line two\\n', b'\\nlast without newline')"
    );
    assert_eq!(post("end"), "(b'', b'', b'', b'', [], [], [])");
    // The same with a chunked body.
    let a = Apache::start(
        "inputsizeschunked",
        "WSGIChunkedRequest On\nWSGIScriptAlias /in {APPS}/input_sizes.wsgi\n",
    );
    let r = a.request(
        "POST",
        "/in?readline-size",
        &[("Transfer-Encoding", "chunked")],
        b"6\r\nline o\r\n7\r\nne\nline\r\n0\r\n\r\n",
    );
    // Chunk boundaries do not show: the same lines as from one block.
    assert_eq!(r.text(), "[line][ one][\n][line]");
}

/// Issue #2 point 5: close() is called when the client goes away in the
/// middle of the response, and the server stops iterating.
#[test]
fn close_is_called_when_the_client_disconnects() {
    use std::io::{Read, Write};
    let a = Apache::start("disconnect", "WSGIScriptAlias /d {APPS}/disconnect.wsgi\n");
    let marker = a.root.join("run/client-gone");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /d?{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        marker.display()
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(n > 0 && String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Close with unread data: the kernel resets the connection.
    drop(s);
    std::fs::write(&marker, b"").unwrap();
    assert!(
        a.wait_log("DISCONNECT-CLOSE-CALLED", Duration::from_secs(30)),
        "close() not called after the client went away:\n{}",
        a.error_log()
    );
    assert!(
        !a.error_log().contains("DISCONNECT-ITERATION-FINISHED"),
        "the server kept iterating for a client that was gone"
    );
    // Not the application's fault: no traceback, and the server goes on.
    assert!(!a.error_log().contains("Traceback"), "{}", a.error_log());
    assert_eq!(a.get("/d?/nonexistent/marker").status, 200);
}

/// A complete response reaches the client before close() is called and
/// before the request is cleaned up, as mod_wsgi's does: the application's
/// clean-up in close() does not delay the answer. (It also lets Apache serve
/// the client's next request on the same thread.)
#[test]
fn the_body_reaches_the_client_before_close_returns() {
    use std::io::{Read, Write};
    let a = Apache::start("slow-close", "WSGIScriptAlias /c {APPS}/slow_close.wsgi\n");
    let marker = a.root.join("run/body-read");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /c?{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        marker.display()
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("complete before close\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    std::fs::write(&marker, b"").unwrap();
    assert!(
        a.wait_log("SLOW-CLOSE", Duration::from_secs(30)),
        "close() never finished:\n{}",
        a.error_log()
    );
    assert!(
        a.error_log()
            .contains("SLOW-CLOSE saw the client read the body"),
        "the body went out only after close() returned:\n{}",
        a.error_log()
    );
    let head = String::from_utf8_lossy(&got).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: 22\r\n"), "{head}");
}

/// Issue #2 point 5: wsgi.file_wrapper over a real file goes out through
/// Apache's file buckets (Python's read() is never called), honours a
/// shorter Content-Length, and falls back to iterating a file-like object
/// that has no fileno().
#[test]
fn file_wrapper_goes_through_file_buckets() {
    let a = Apache::start("filebucket", "WSGIScriptAlias /f {APPS}/file_bucket.wsgi\n");
    let data = std::fs::read(apps_dir().join("data.bin")).unwrap();
    let r = a.get("/f?file");
    assert_eq!(r.status, 200);
    assert!(r.body == data, "{} bytes", r.body.len());
    let r = a.get("/f?file-length");
    assert_eq!(r.header("Content-Length"), Some("1000"));
    assert!(r.body == data[..1000], "{} bytes", r.body.len());
    let r = a.get("/f?bytes");
    assert!(r.body == data, "{} bytes", r.body.len());
    let r = a.get("/f?bytes-length");
    assert!(r.body == data[..1000], "{} bytes", r.body.len());
    assert!(a.wait_log("PYTHON-READ-CALLED bytes", Duration::from_secs(5)));
    let log = a.error_log();
    assert!(
        !log.contains("PYTHON-READ-CALLED file"),
        "a real file was read through Python instead of a file bucket:\n{log}"
    );
    // With WSGIEnableSendfile On the same file goes out too.
    let b = Apache::start(
        "filebucketsendfile",
        "EnableSendfile On\nWSGIEnableSendfile On\nWSGIScriptAlias /f {APPS}/file_bucket.wsgi\n",
    );
    let r = b.get("/f?file");
    assert!(r.body == data, "{} bytes", r.body.len());
    assert!(!b.error_log().contains("PYTHON-READ-CALLED"));
}

/// Issue #2 point 8: the module's Rust `log` records reach the error log
/// under `LogLevel wsgi:LEVEL`, independently of the server's own level.
#[test]
fn rust_log_records_follow_loglevel_wsgi() {
    let record = "mod_wsgi: WSGIScriptAlias mapped /m to ";
    let a = Apache::start_with(
        "loglevel-debug",
        "WSGIScriptAlias /m {APPS}/hello.wsgi\n",
        Options {
            log_level: "warn wsgi:debug",
            ..Default::default()
        },
    );
    assert_eq!(a.get("/m").status, 200);
    assert!(
        a.wait_log(record, Duration::from_secs(5)),
        "{}",
        a.error_log()
    );
    let line = a
        .error_log()
        .lines()
        .find(|l| l.contains(record))
        .unwrap()
        .to_string();
    assert!(line.contains("[wsgi:debug]"), "{line}");
    assert!(line.contains("[client 127.0.0.1:"), "{line}");

    // wsgi:warn hides the module's debug and info lines while the rest of
    // the server logs at info.
    let b = Apache::start_with(
        "loglevel-warn",
        "WSGIScriptAlias /m {APPS}/hello.wsgi\n",
        Options {
            log_level: "info wsgi:warn",
            ..Default::default()
        },
    );
    assert_eq!(b.get("/m").status, 200);
    assert_eq!(b.get("/m").status, 200);
    let log = b.error_log();
    assert!(!log.contains(record), "{log}");
    assert!(
        !log.contains("[wsgi:debug]") && !log.contains("[wsgi:info]"),
        "{log}"
    );
    assert!(log.contains(":info]"), "the server's own info lines: {log}");
}

/// Issue #2 point 9: the GIL is released while a request waits for its
/// body from the client and while it waits for the client to take its
/// response: another request runs Python meanwhile. (If the GIL were held,
/// the second request could only finish once Apache's Timeout ended the
/// first, and the first would then fail.)
#[test]
fn gil_is_released_while_waiting_for_the_client() {
    use std::io::{Read, Write};
    let a = Apache::start(
        "gil",
        "WSGIScriptAlias /in {APPS}/input.wsgi\nWSGIScriptAlias /big {APPS}/big_stream.wsgi\n\
         WSGIScriptAlias /h {APPS}/hello.wsgi\n",
    );
    // A body that arrives in two parts: the application blocks in read().
    let mut up = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    up.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        up,
        "POST /in?read HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 20\r\n\r\nfirst half"
    )
    .unwrap();
    assert!(a.wait_log("mapped /in", Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.get("/h").body, b"Hello World!");
    up.write_all(b"+second!!").unwrap();
    up.write_all(b"\n").unwrap();
    let mut got = Vec::new();
    up.read_to_end(&mut got).unwrap();
    let r = Response::parse(&got, false);
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(r.body, b"first half+second!!\n");

    // A response the client does not read: the application blocks in a write.
    let mut down = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    down.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        down,
        "GET /big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    assert!(a.wait_log("mapped /big", Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.get("/h").body, b"Hello World!");
    let mut got = Vec::new();
    down.read_to_end(&mut got).unwrap();
    let r = Response::parse(&got, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 64 << 20, "{}", a.error_log());
}

/// Writes `text` to `path` (creating its directory), readable by www-data.
fn put(path: &std::path::Path, text: &str) {
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    chmod(dir, 0o755);
    std::fs::write(path, text).unwrap();
    chmod(path, 0o644);
}

/// Issue #2 point 3, contexts: the FileInfo directives work in `.htaccess`
/// (also inside `<Files>`) where `AllowOverride FileInfo` allows them,
/// are ignored with `AllowOverride None`, and a server/directory-only
/// directive in `.htaccess` is refused with httpd's sentence.
#[test]
fn htaccess_takes_fileinfo_directives_where_allowed() {
    let a = Apache::start(
        "htaccess",
        "WSGIScriptAlias /fileinfo/ {ROOT}/fileinfo/\n\
         WSGIScriptAlias /none/ {ROOT}/none/\n\
         WSGIScriptAlias /authcfg/ {ROOT}/authcfg/\n\
         WSGIScriptAlias /all/ {ROOT}/all/\n\
         <Directory {ROOT}/fileinfo>\n    AllowOverride FileInfo\n    Require all granted\n</Directory>\n\
         <Directory {ROOT}/none>\n    AllowOverride None\n    Require all granted\n</Directory>\n\
         <Directory {ROOT}/authcfg>\n    AllowOverride AuthConfig\n    Require all granted\n</Directory>\n\
         <Directory {ROOT}/all>\n    AllowOverride All\n    Require all granted\n</Directory>\n",
    );
    let htaccess = "WSGIPassAuthorization On\nWSGIScriptReloading Off\n\
                    <Files callable.wsgi>\n    WSGICallableObject myapp\n</Files>\n";
    for d in ["fileinfo", "none", "authcfg"] {
        let dir = a.root.join(d);
        put(&dir.join(".htaccess"), htaccess);
        for app in ["callable.wsgi", "environ.wsgi"] {
            put(
                &dir.join(app),
                &std::fs::read_to_string(apps_dir().join(app)).unwrap(),
            );
        }
    }
    put(
        &a.root.join("all/.htaccess"),
        "WSGIProcessGroup elsewhere\n",
    );
    put(
        &a.root.join("all/hello.wsgi"),
        &std::fs::read_to_string(apps_dir().join("hello.wsgi")).unwrap(),
    );
    let auth = [("Authorization", "Basic Zm9vOmJhcg==")];

    assert_eq!(a.get("/fileinfo/callable.wsgi").text(), "from myapp");
    let e = json(&a.request("GET", "/fileinfo/environ.wsgi", &auth, b""));
    assert_eq!(e.str("HTTP_AUTHORIZATION"), Some("Basic Zm9vOmJhcg=="));
    assert_eq!(e.str("mod_wsgi.script_reloading"), Some("0"));

    assert_eq!(a.get("/none/callable.wsgi").text(), "from application");
    let e = json(&a.request("GET", "/none/environ.wsgi", &auth, b""));
    assert_eq!(e.get("HTTP_AUTHORIZATION"), None);
    assert_eq!(e.str("mod_wsgi.script_reloading"), Some("1"));

    assert_eq!(a.get("/authcfg/callable.wsgi").status, 500);
    assert!(
        a.wait_log(
            "WSGIPassAuthorization not allowed here",
            Duration::from_secs(5)
        ),
        "{}",
        a.error_log()
    );
    assert_eq!(a.get("/all/hello.wsgi").status, 500);
    assert!(
        a.wait_log("WSGIProcessGroup not allowed here", Duration::from_secs(5)),
        "{}",
        a.error_log()
    );
}

/// Issue #2 point 3: `SetHandler wsgi-script` (403 without ExecCGI), the
/// alias options `callable-object=` and `pass-authorization=On`, and
/// `WSGIScriptAlias` onto a directory of scripts.
#[test]
fn set_handler_alias_options_and_a_directory_of_scripts() {
    let a = Apache::start(
        "sethandler",
        "Alias /exec {APPS}\nAlias /noexec {APPS}\n\
         <Location /exec>\n    SetHandler wsgi-script\n    Options +ExecCGI\n</Location>\n\
         <Location /noexec>\n    SetHandler wsgi-script\n</Location>\n\
         WSGIScriptAlias /co {APPS}/callable.wsgi callable-object=myapp\n\
         WSGIScriptAlias /pa {APPS}/environ.wsgi pass-authorization=On\n\
         WSGIScriptAlias /scripts/ {APPS}/\n",
    );
    assert_eq!(a.get("/exec/hello.wsgi").body, b"Hello World!");
    assert_eq!(a.get("/noexec/hello.wsgi").status, 403);
    assert_eq!(a.get("/co").text(), "from myapp");
    let e = json(&a.request(
        "GET",
        "/pa",
        &[("Authorization", "Basic Zm9vOmJhcg==")],
        b"",
    ));
    assert_eq!(e.str("HTTP_AUTHORIZATION"), Some("Basic Zm9vOmJhcg=="));
    assert_eq!(a.get("/scripts/hello.wsgi").body, b"Hello World!");
    let e = json(&a.get("/scripts/environ.wsgi/x/y"));
    assert_eq!(e.str("SCRIPT_NAME"), Some("/scripts/environ.wsgi"));
    assert_eq!(e.str("PATH_INFO"), Some("/x/y"));
    assert_eq!(a.get("/scripts/nope.wsgi").status, 404);
}

/// Issue #2 point 3: WSGIPythonHashSeed, WSGIRestrictStdin and
/// WSGIRestrictSignal, each way.
#[test]
fn hash_seed_restrict_stdin_and_restrict_signal() {
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "print(hash('abc'))"])
        .env("PYTHONHASHSEED", "0")
        .output()
        .unwrap();
    let hash0: f64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let a = Apache::start(
        "hashseed",
        "WSGIPythonHashSeed 0\nWSGIRestrictStdin On\nWSGIScriptAlias /p {APPS}/pyflags.wsgi\n",
    );
    let e = json(&a.get("/p"));
    assert_eq!(e.get("hash_randomization"), Some(&Value::Num(0.0)));
    assert_eq!(e.get("hash_abc"), Some(&Value::Num(hash0)));
    assert_eq!(
        e.str("stdin"),
        Some("OSError: sys.stdin access restricted by mod_wsgi")
    );
    // Default WSGIRestrictSignal On: logged and ignored.
    assert_eq!(e.str("signal"), Some("registered"));
    assert!(a.wait_log(
        "Callback registration for signal 12 ignored.",
        Duration::from_secs(5)
    ));

    let b = Apache::start(
        "nohashseed",
        "WSGIPythonHashSeed random\nWSGIRestrictSignal Off\nWSGIScriptAlias /p {APPS}/pyflags.wsgi\n",
    );
    let e = json(&b.get("/p"));
    assert_eq!(e.get("hash_randomization"), Some(&Value::Num(1.0)));
    // Not restricted: whatever Apache's child has as stdin.
    assert_eq!(e.str("stdin"), Some("''"));
    // Python's own signal.signal, which only works on a main thread.
    assert_eq!(
        e.str("signal"),
        Some("ValueError: signal only works in main thread of the main interpreter")
    );
    assert!(!b.error_log().contains("Callback registration"));
    let (ok, out) = config_test("badhashseed", "WSGIPythonHashSeed 99999999999\n");
    assert!(!ok);
    assert!(
        out.contains(
            "WSGIPythonHashSeed must be \"random\" or an integer in range [0; 4294967295]"
        ),
        "{out}"
    );
}

/// Issue #2 point 3: every server-only directive (seed 004's WSGIPythonHome
/// among them) is refused inside a VirtualHost with httpd's sentence saying
/// so, and accepted at server level.
#[test]
fn server_only_directives_are_refused_inside_a_virtual_host() {
    let value = |name: &str| match name {
        "WSGISocketPrefix" | "WSGIPythonHome" | "WSGIPythonPath" | "WSGIPythonEggs" => "/tmp",
        "WSGIAcceptMutex" => "default",
        "WSGIPythonWarnings" => "ignore",
        "WSGIPythonOptimize" | "WSGIPythonHashSeed" => "1",
        _ => "On",
    };
    let mut checked = 0;
    for d in mod_wsgi_rs::config::DIRECTIVES
        .iter()
        .filter(|d| d.global_only && d.is_supported())
    {
        let name = d.name_str();
        let line = format!("{name} {}", value(name));
        let (ok, out) = config_test(
            "globalonly",
            &format!("<VirtualHost *:80>\n{line}\n</VirtualHost>\n"),
        );
        assert!(!ok, "{line} accepted in a VirtualHost");
        assert!(
            out.contains(&format!("{name} cannot occur within <VirtualHost> section")),
            "{line}:\n{out}"
        );
        let (ok, out) = config_test("globalonly", &format!("{line}\n"));
        assert!(ok, "{line} refused at server level:\n{out}");
        checked += 1;
    }
    assert!(checked >= 19, "{checked}");
}

/// Issue #2 point 3: every mod_wsgi directive that mod_wsgi-rs does not
/// implement makes `apache2 -t` fail with a sentence that says so, and
/// every directive it parses but does not act on yet is warned about at
/// start-up.
#[test]
fn unimplemented_directives_refuse_to_start_and_inert_ones_warn() {
    let refused = [
        "WSGISwitchInterval 0.005\n",
        "WSGIPerInterpreterGIL On\n",
        "WSGIMetricsService unix:/tmp/metrics.sock\n",
        "WSGISlowRequests 5\n",
        "WSGIMetricsOptions +CaptureUserAgent\n",
        "WSGINewRelicConfigFile /etc/newrelic.ini\n",
        "WSGINewRelicEnvironment production\n",
        "<Location /x>\nWSGIUserAuthoritative Off\n</Location>\n",
        "WSGIPy3kWarningFlag On\n",
        "WSGITelemetryService unix:/tmp/telemetry.sock\n",
        "WSGITelemetryOptions +CaptureUserAgent\n",
        "WSGIFreeThreading On\n",
        "<WSGIInterpreterOptions process-group=x>\nWSGIPythonPath /tmp\n</WSGIInterpreterOptions>\n",
    ];
    let names: Vec<&str> = mod_wsgi_rs::config::feature_table()
        .filter(|(_, supported)| !supported)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names.len(), refused.len(), "{names:?}");
    for (name, body) in names.iter().zip(refused) {
        assert!(body.contains(name), "{name} / {body}");
        let (ok, out) = config_test("notsupported", body);
        assert!(!ok, "{name} accepted");
        assert!(
            out.contains(&format!(
                "{} is not supported by mod_wsgi-rs yet",
                name.trim_start_matches('<')
            )) || out.contains(&format!("{name} is not supported by mod_wsgi-rs yet")),
            "{name}:\n{out}"
        );
        assert!(out.contains("Syntax error on line"), "{out}");
    }
    for (body, name) in [
        ("WSGIAcceptMutex default\n", "WSGIAcceptMutex"),
        (
            "<Location /x>\nWSGIPassApacheRequest On\n</Location>\n",
            "WSGIPassApacheRequest",
        ),
        ("WSGIIgnoreActivity On\n", "WSGIIgnoreActivity"),
        ("WSGIServerMetrics On\n", "WSGIServerMetrics"),
    ] {
        let (ok, out) = config_test("inert", body);
        assert!(ok, "{name} refused:\n{out}");
        assert!(
            out.contains(&format!(
                "{name} is accepted but has no effect yet in mod_wsgi-rs"
            )),
            "{name}:\n{out}"
        );
    }
}

/// Seed 002's embedded configuration (its "Windows" VirtualHost, without
/// WSGIDaemonProcess), as written: `<VirtualHost *>`, Apache 2.2's
/// `Order deny,allow` / `Allow from all`, `WSGIScriptReloading On` in the
/// `<Directory>`, `WSGIRestrictStdout Off`, a `.wsgi` that patches sys.path
/// and imports `app as application`, `app.run()` guarded by `__main__`,
/// and the troubleshooting list's `sys.stdout = sys.stderr`.
#[test]
fn seed_002_embedded_virtual_host() {
    let a = Apache::start(
        "seed002",
        "LoadModule access_compat_module /usr/lib/apache2/modules/mod_access_compat.so\n\
         WSGIRestrictStdout Off\n\
         <VirtualHost *>\n\
         \x20   ServerName example.com\n\
         \x20   WSGIScriptAlias / {ROOT}/yourapplication/yourapplication.wsgi\n\
         \x20   <Directory {ROOT}/yourapplication>\n\
         \x20       WSGIScriptReloading On\n\
         \x20       Order deny,allow\n\
         \x20       Allow from all\n\
         \x20   </Directory>\n\
         </VirtualHost>\n",
    );
    let dir = a.root.join("yourapplication");
    let wsgi = dir.join("yourapplication.wsgi");
    let write_wsgi = |version: &str| {
        put(
            &wsgi,
            &format!(
                "import sys\nsys.path.insert(0, {:?})\n\n\
                 from yourapplication import app as application\n\
                 application.version = {version:?}\n",
                dir.display().to_string()
            ),
        )
    };
    write_wsgi("one");
    put(
        &dir.join("yourapplication.py"),
        r#"import sys

class App:
    version = None

    def __call__(self, environ, start_response):
        print('PRINTED-WITH-RESTRICT-STDOUT-OFF')
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [('version %s at %s' % (self.version, environ['SERVER_NAME'])).encode()]

    def run(self, *args, **kwargs):
        raise SystemExit('app.run() must not be called under mod_wsgi')

app = App()

if __name__ == '__main__':
    app.run()

old_stdout = sys.stdout
sys.stdout = sys.stderr
print('PRINTED-THROUGH-STDERR')
sys.stdout = old_stdout
"#,
    );
    let get = |path: &str| {
        a.raw(
            format!("GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            false,
        )
    };
    let r = get("/");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(r.text(), "version one at example.com");
    assert!(a.wait_log("PRINTED-THROUGH-STDERR", Duration::from_secs(5)));
    assert!(a.wait_log("PRINTED-WITH-RESTRICT-STDOUT-OFF", Duration::from_secs(5)));
    // WSGIScriptReloading On: the changed .wsgi runs on the next request.
    std::thread::sleep(Duration::from_millis(1100));
    write_wsgi("two");
    assert_eq!(get("/").text(), "version two at example.com");
    assert!(!a.error_log().contains("SystemExit"));
}

/// Seed 001's VirtualHost, as written but for paths and port: a daemon
/// process group with `user=`, `group=`, `threads=12`, `WSGIScriptAlias /`,
/// and `WSGIProcessGroup` / `WSGIApplicationGroup %{GLOBAL}` inside the
/// script's `<Directory>` next to `AllowOverride none` and `Require all
/// granted`; its own ErrorLog and CustomLog.
#[test]
fn seed_001_virtual_host_with_a_daemon_process_group() {
    let a = Apache::start(
        "seed001",
        // The "combined" format, as Debian's apache2.conf defines it.
        "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"\" combined\n\
         <VirtualHost *:{PORT}>\n\
         \x20   ServerName my-application.org\n\
         \x20   ServerAdmin admin@my-application.org\n\
         \x20   DocumentRoot {ROOT}/html\n\
         \x20   ErrorLog {ROOT}/logs/error.log\n\
         \x20   CustomLog {ROOT}/logs/access.log combined\n\
         \x20   WSGIDaemonProcess my-application user=www-data group=www-data threads=12\n\
         \x20   WSGIScriptAlias / {ROOT}/my-application/my-application.wsgi\n\
         \x20   <Directory {ROOT}/my-application>\n\
         \x20       WSGIProcessGroup my-application\n\
         \x20       WSGIApplicationGroup %{GLOBAL}\n\
         \x20       AllowOverride none\n\
         \x20       Require all granted\n\
         \x20   </Directory>\n\
         </VirtualHost>\n",
    );
    let dir = a.root.join("my-application");
    put(
        &dir.join("my-application.wsgi"),
        &format!(
            "import sys\nsys.path.insert(0, {:?})\n\nfrom app import app as application\n",
            dir.display().to_string()
        ),
    );
    put(
        &dir.join("app.py"),
        "import json, os\n\n\
         def app(environ, start_response):\n    \
         body = json.dumps({'group': environ['mod_wsgi.process_group'],\n                       \
         'app_group': environ['mod_wsgi.application_group'],\n                       \
         'threads': __import__('mod_wsgi').threads_per_process,\n                       \
         'uid': os.getuid()})\n    \
         start_response('200 OK', [('Content-Type', 'application/json')])\n    \
         return [body.encode()]\n",
    );
    let r = a.raw(
        b"GET / HTTP/1.1\r\nHost: my-application.org\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 200, "{}", a.error_log());
    let e = json(&r);
    assert_eq!(e.str("group"), Some("my-application"));
    assert_eq!(e.str("app_group"), Some(""));
    assert_eq!(e.get("threads"), Some(&Value::Num(12.0)));
    let www_data = std::process::Command::new("id")
        .args(["-u", "www-data"])
        .output()
        .unwrap();
    let uid: f64 = String::from_utf8(www_data.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(e.get("uid"), Some(&Value::Num(uid)));
    let access = std::fs::read_to_string(a.root.join("logs/access.log")).unwrap_or_default();
    assert!(access.contains("\"GET / HTTP/1.1\" 200"), "{access}");
}

/// Issue #2 point 3 (WSGIScriptAlias): with both `process-group=` and
/// `application-group=` the script is loaded when the child starts, before
/// any request; without them, on the first request.
#[test]
fn script_alias_with_both_groups_is_preloaded() {
    let a = Apache::start(
        "preload",
        "WSGIScriptAlias /pre {APPS}/preload_marker.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
         WSGIScriptAlias /lazy {APPS}/hello.wsgi application-group=%{GLOBAL}\n",
    );
    let preload = format!(
        "Loading Python script file '{}'",
        a.app_path("preload_marker.wsgi").display()
    );
    assert!(
        a.wait_log(&preload, Duration::from_secs(10)),
        "not preloaded:\n{}",
        a.error_log()
    );
    let lazy = format!(
        "Loading Python script file '{}'",
        a.app_path("hello.wsgi").display()
    );
    assert!(!a.error_log().contains(&lazy));
    let r = a.get("/pre");
    assert!(r.text().starts_with("preloaded in "), "{}", r.text());
    // Loaded once: the request used the preloaded module.
    assert_eq!(a.error_log().matches(&preload).count(), 1);
    assert_eq!(a.get("/lazy").body, b"Hello World!");
    assert!(a.error_log().contains(&lazy));
}

/// Issue #2 point 7: a script that fails to import and an application that
/// raises are logged with the request's id (mod_wsgi.request_id).
#[test]
fn failures_are_logged_with_the_request_id() {
    let a = Apache::start(
        "requestid",
        "WSGIScriptAlias /broken {APPS}/broken_import.wsgi\nWSGIScriptAlias /r {APPS}/responses.wsgi\n",
    );
    assert_eq!(a.get("/broken").status, 500);
    assert_eq!(a.get("/r?raise").status, 500);
    let log = a.error_log();
    for what in [
        "Failed to exec Python script file",
        "Exception occurred processing WSGI script",
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what} not logged:\n{log}"));
        let id = line
            .split("request='")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no request id in: {line}"));
        assert!(id.len() >= 8, "{line}");
        assert!(line.contains("[client 127.0.0.1:"), "{line}");
    }
}

/// WSGIDestroyInterpreter Off: a child leaves without finalising Python.
#[test]
fn destroy_interpreter_off_skips_finalisation() {
    let mut a = Apache::start(
        "nodestroy",
        "WSGIDestroyInterpreter Off\nWSGIScriptAlias /h {APPS}/hello.wsgi\n",
    );
    assert_eq!(a.get("/h").body, b"Hello World!");
    let log = a.graceful_stop();
    assert!(!log.contains("Destroying interpreters."), "{log}");
    assert!(
        !log.contains("AH00045") && !log.contains("AH00046"),
        "{log}"
    );
}

/// Issue #2 point 4: the start-up warning that application groups are not
/// isolated yet resolves groups as a request would: the alias's options,
/// then the `<Directory>`/`<Location>` sections and the server's defaults;
/// scripts delegated to a daemon group do not count. What only a request
/// can tell is warned about once per process when it happens.
#[test]
fn shared_interpreter_warning_resolves_groups_like_a_request() {
    const WARNING: &str = "WSGI scripts are configured with their own application groups";
    const RUNTIME: &str = "share one Python interpreter in this process";
    let quiet = [
        // Seeds 001/002: WSGIApplicationGroup %{GLOBAL} in each <Directory>.
        "WSGIScriptAlias /a {ROOT}/a/hello.wsgi\nWSGIScriptAlias /b {ROOT}/b/environ.wsgi\n\
         <Directory {ROOT}/a>\nWSGIApplicationGroup %{GLOBAL}\n</Directory>\n\
         <Directory {ROOT}/b>\nWSGIApplicationGroup %{GLOBAL}\n</Directory>\n",
        // At server level.
        "WSGIApplicationGroup %{GLOBAL}\n\
         WSGIScriptAlias /a {APPS}/hello.wsgi\nWSGIScriptAlias /b {APPS}/environ.wsgi\n",
        // One of the two in a daemon process group, chosen in a <Location>.
        "WSGIDaemonProcess other threads=2\n\
         WSGIScriptAlias /a {APPS}/hello.wsgi\nWSGIScriptAlias /b {APPS}/environ.wsgi\n\
         <Location /b>\nWSGIProcessGroup other\n</Location>\n",
    ];
    for body in quiet {
        let a = Apache::start("sharingquiet", body);
        assert!(
            !a.error_log().contains(WARNING),
            "{body}\n{}",
            a.error_log()
        );
    }
    // Only one of the two in %{GLOBAL}: they differ.
    let a = Apache::start(
        "sharingloud",
        "WSGIScriptAlias /a {APPS}/hello.wsgi\nWSGIScriptAlias /b {APPS}/environ.wsgi\n\
         <Location /b>\nWSGIApplicationGroup %{GLOBAL}\n</Location>\n",
    );
    let log = a.error_log();
    assert_eq!(log.matches(WARNING).count(), 1, "{log}");
    let line = log.lines().find(|l| l.contains(WARNING)).unwrap();
    assert!(
        line.contains("hello.wsgi") && line.contains("environ.wsgi"),
        "{line}"
    );
    assert!(line.contains("[wsgi:warn]"), "{line}");
    // Said at start-up, not again per process or request.
    assert_eq!(a.get("/a").status, 200);
    assert_eq!(a.get("/b").status, 200);
    assert!(!a.error_log().contains(RUNTIME), "{}", a.error_log());

    // Groups from the environment: only the requests tell, once.
    let b = Apache::start(
        "sharingruntime",
        "LoadModule setenvif_module /usr/lib/apache2/modules/mod_setenvif.so\n\
         SetEnvIf Request_URI ^/a GROUP=first\nSetEnvIf Request_URI ^/b GROUP=second\n\
         WSGIApplicationGroup %{ENV:GROUP}\n\
         WSGIScriptAlias /a {APPS}/hello.wsgi\nWSGIScriptAlias /b {APPS}/environ.wsgi\n",
    );
    assert!(!b.error_log().contains(WARNING), "{}", b.error_log());
    assert_eq!(b.get("/a").status, 200);
    assert!(!b.error_log().contains(RUNTIME));
    for _ in 0..3 {
        assert_eq!(b.get("/b").status, 200);
        assert_eq!(b.get("/a").status, 200);
    }
    assert!(
        b.wait_log(RUNTIME, Duration::from_secs(5)),
        "{}",
        b.error_log()
    );
    assert_eq!(
        b.error_log().matches(RUNTIME).count(),
        1,
        "{}",
        b.error_log()
    );
}

/// Issue #2 point 7: a Python that cannot start (WSGIPythonHome pointing
/// nowhere) is logged once per child with the reason, every request gets a
/// 500 that names it, and the child stays: no exit, no respawn loop.
#[test]
fn python_that_cannot_start_does_not_crash_loop() {
    let a = Apache::start(
        "nopython2",
        "WSGIPythonHome /nonexistent/python/home\nWSGIScriptAlias /app {APPS}/hello.wsgi\n",
    );
    for _ in 0..10 {
        assert_eq!(a.get("/app").status, 500);
    }
    std::thread::sleep(Duration::from_millis(500));
    let log = a.error_log();
    // One child (StartServers 1), initialised once: it never restarted.
    assert_eq!(
        log.matches("Python could not be initialised:").count(),
        1,
        "{log}"
    );
    let child_pids: std::collections::BTreeSet<&str> = log
        .lines()
        .filter(|l| l.contains("cannot run:"))
        .filter_map(|l| l.split("[pid ").nth(1)?.split(':').next())
        .collect();
    assert_eq!(child_pids.len(), 1, "{log}");
    let line = log.lines().find(|l| l.contains("cannot run:")).unwrap();
    assert!(line.contains("[client 127.0.0.1:"), "{line}");
    assert!(line.contains("Python initialisation failed"), "{line}");
    assert!(
        !log.contains("exit signal") && !log.contains("AH00052"),
        "{log}"
    );
}

/// Issue #2 point 5: start_response with exc_info once the headers are out
/// re-raises the exception (PEP 3333); the client gets what was sent, the
/// log the traceback.
#[test]
fn exc_info_after_the_headers_re_raises() {
    let a = Apache::start(
        "excafter",
        "WSGIScriptAlias /x {APPS}/exc_after_headers.wsgi\n",
    );
    let r = a.get("/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"headers are out;");
    assert!(a.wait_log("EXC-INFO-RE-RAISED", Duration::from_secs(5)));
    assert!(a.wait_log(
        "ValueError: raised after the headers were sent",
        Duration::from_secs(5)
    ));
    assert!(!a.error_log().contains("EXC-INFO-SWALLOWED"));
}

/// Issue #2 point 3: WSGIMapHEADToGET's default, Auto, maps HEAD to GET
/// when a content filter (here mod_deflate's) could need the body to
/// compute headers, and Off never does.
#[test]
fn map_head_to_get_auto_follows_content_filters() {
    let a = Apache::start(
        "headauto",
        "LoadModule filter_module /usr/lib/apache2/modules/mod_filter.so\n\
         LoadModule deflate_module /usr/lib/apache2/modules/mod_deflate.so\n\
         WSGIScriptAlias /plain {APPS}/environ.wsgi\n\
         WSGIScriptAlias /filtered {APPS}/environ.wsgi\n\
         WSGIScriptAlias /off {APPS}/environ.wsgi\n\
         <Location /filtered>\n    SetOutputFilter DEFLATE\n</Location>\n\
         <Location /off>\n    SetOutputFilter DEFLATE\n    WSGIMapHEADToGET Off\n</Location>\n",
    );
    for (path, q, method) in [
        ("/plain", "log-method-plain", "HEAD"),
        ("/filtered", "log-method-filtered", "GET"),
        ("/off", "log-method-off", "HEAD"),
    ] {
        let r = a.request(
            "HEAD",
            &format!("{path}?{q}"),
            &[("Accept-Encoding", "gzip")],
            b"",
        );
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty(), "{path}: HEAD sent a body");
        assert!(
            a.wait_log(&format!("METHOD-SEEN {q} {method}"), Duration::from_secs(5)),
            "{path}: {}",
            a.error_log()
        );
    }
}

// ---- Conformance with the C mod_wsgi (branch conform). Focused checks of
// what tests/conformance.rs found against the C module; these run without
// it. The app is tests/apps/conform.wsgi (X-Case picks the behaviour).

fn conform_case(a: &Apache, path: &str, case: &str) -> Response {
    a.request("GET", path, &[("X-Case", case)], b"")
}

/// The whole raw response to `req` (sent as is, `Connection: close`).
fn raw_response(a: &Apache, req: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
}

/// conform.wsgi's environ dump: `key=repr(value)` lines.
fn environ_dump(r: &Response) -> std::collections::HashMap<String, String> {
    r.text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn responses_go_out_as_mod_wsgi_sends_them() {
    let a = Apache::start("conform_resp", "WSGIScriptAlias /c {APPS}/conform.wsgi\n");
    // Every block is flushed: without a Content-Length from the
    // application, HTTP/1.1 gets a chunked response, as from mod_wsgi.
    let r = conform_case(&a, "/c", "list-many");
    assert_eq!(
        r.header("Transfer-Encoding"),
        Some("chunked"),
        "{}",
        r.raw_head
    );
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.body, b"abcdef");
    assert_eq!(
        conform_case(&a, "/c", "cl-exact").header("Content-Length"),
        Some("6")
    );
    // wsgi.file_wrapper announces the rest of the file.
    let r = conform_case(&a, "/c", "file-offset");
    assert_eq!(r.header("Content-Length"), Some("99900"));
    assert_eq!(r.body.len(), 99900);
    assert_eq!(
        conform_case(&a, "/c", "wrapper-type").text(),
        "['blksize', 'close', 'filelike'] abc"
    );
    // A second start_response before anything was sent replaces the first.
    let r = conform_case(&a, "/c", "twice");
    assert_eq!((r.status, r.body.as_slice()), (201, &b"twice"[..]));
    // A status line needs its space after the code.
    assert_eq!(conform_case(&a, "/c", "status-no-reason").status, 500);
    assert!(a.wait_log("no space following status code", Duration::from_secs(5)));
    assert_eq!(conform_case(&a, "/c", "status-trailing-space").status, 200);
    // Expect: 100-continue does not stop chunking.
    let r = a.request(
        "GET",
        "/c",
        &[("X-Case", "list"), ("Expect", "100-continue")],
        b"",
    );
    assert_eq!(
        r.header("Transfer-Encoding"),
        Some("chunked"),
        "{}",
        r.raw_head
    );
    // An error after the head: no last chunk, so the client sees the cut.
    let req = "GET /c HTTP/1.1\r\nHost: localhost\r\nX-Case: raise-in-iter-later\r\nConnection: close\r\n\r\n";
    let raw = raw_response(&a, req);
    assert!(
        raw.ends_with(b"first;\r\n"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    // close() raising after a complete body: logged, the response complete.
    let req =
        "GET /c HTTP/1.1\r\nHost: localhost\r\nX-Case: raise-in-close\r\nConnection: close\r\n\r\n";
    let raw = raw_response(&a, req);
    assert!(
        raw.ends_with(b"0\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    assert!(a.wait_log("raised in close", Duration::from_secs(5)));
}

#[test]
fn environ_and_aliases_as_mod_wsgi_builds_them() {
    let a = Apache::start(
        "conform_env",
        "WSGIScriptAlias /slash/ {APPS}/conform.wsgi\nWSGIScriptAlias /sub {APPS}/conform.wsgi\n",
    );
    let e = environ_dump(&a.get("/sub"));
    assert_eq!(e["SCRIPT_NAME"], "'/sub'");
    assert_eq!(e["PATH_INFO"], "''", "always set, as mod_wsgi does");
    assert!(!e.contains_key("PATH"), "mod_wsgi leaves PATH out");
    assert!(
        e["apache.version"].starts_with("(2, 4, "),
        "{:?}",
        e.get("apache.version")
    );
    assert_eq!(e["mod_wsgi.listener_host"], "'127.0.0.1'");
    assert_eq!(e["mod_wsgi.listener_port"], format!("'{}'", a.port));
    assert_eq!(e["wsgi.multiprocess"], "False", "one child (ServerLimit 1)");
    assert!(
        e["SERVER_SOFTWARE"].contains(" mod_wsgi/6.0.0 Python/3."),
        "{}",
        e["SERVER_SOFTWARE"]
    );
    // A location ending in '/' is cut where it matched, as mod_wsgi does.
    let e = environ_dump(&a.get("/slash/"));
    assert_eq!(
        (e["SCRIPT_NAME"].as_str(), e["PATH_INFO"].as_str()),
        ("'/slash/'", "''")
    );
    assert_eq!(a.get("/slash/x").status, 404);
    assert!(a.error_log().contains("conform.wsgix"));
    // A request naming no port: the application group has none either.
    let r = a.raw(
        b"GET http://localhost/sub/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(
        environ_dump(&r)["mod_wsgi.application_group"],
        "'localhost|/sub'"
    );
}

#[test]
fn large_upload_is_read_from_the_socket_and_the_connection_stays_usable() {
    let a = Apache::start(
        "direct_body",
        "WSGIScriptAlias /in {APPS}/input.wsgi\nLogFormat \"%I %r\" io\nCustomLog {ROOT}/logs/access_log io\n",
    );
    common::check_body_read_from_socket(&a, "/in");
}

#[test]
fn an_input_filter_in_the_way_keeps_the_body_in_apaches_filters() {
    // mod_reqtimeout enforces its body timeouts in its own filter: reading
    // around it would lose them.
    let a = Apache::start_with(
        "filtered_body",
        "LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so\n\
         WSGIScriptAlias /in {APPS}/input.wsgi\n",
        Options {
            log_level: "info wsgi:trace1",
            ..Options::default()
        },
    );
    let body: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i * 13 % 253) as u8)
        .collect();
    let hex = common::sha256_hex(&body);
    let out = common::upload_then_pipelined(&a, "/in?hash", &body, "/in?read", b"second request");
    assert!(out.contains(&format!("{} {hex}", body.len())), "{out}");
    assert!(
        common::last_response(&out).contains("second request"),
        "{out}"
    );
    let log = a.error_log();
    assert!(
        log.contains("the filter 'reqtimeout' is in the way"),
        "{log}"
    );
    assert!(!log.contains("directly from the client socket"), "{log}");
}

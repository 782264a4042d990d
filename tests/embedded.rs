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
        Options {
            threads: 32,
            servers: 2,
            log_level: "warn",
        },
    );
    let a = std::sync::Arc::new(a);
    let mut handles = Vec::new();
    for t in 0..64 {
        let a = a.clone();
        handles.push(std::thread::spawn(move || {
            let mut failures = 0;
            for i in 0..60 {
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
    use std::io::{Read, Write};
    let a = Apache::start("slowstream", "WSGIScriptAlias /s {APPS}/slow_stream.wsgi\n");
    let marker = a.root.join("run/seen-first-block");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        s,
        "GET /s?{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        marker.display()
    )
    .unwrap();
    // The generator waits for the marker file; if the first block were held
    // back until the second, this read would time out.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("first block") {
        let n = s
            .read(&mut buf)
            .expect("first block was not sent while the generator waited");
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(!String::from_utf8_lossy(&got).contains("second block"));
    std::fs::write(&marker, b"").unwrap();
    let _ = s.read_to_end(&mut got);
    assert!(String::from_utf8_lossy(&got).contains("second block"));
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

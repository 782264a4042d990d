//! wsgi-express against a real Apache: each test runs the built
//! `wsgi-express start-server` on a free loopback port with its server root
//! in /tmp, checks the flag's effect over HTTP or in the generated
//! httpd.conf, and stops it with SIGTERM (as Ctrl-C would).

mod common;

use common::{Response, chmod, free_port};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_wsgi-express");

fn express() -> Command {
    let mut c = Command::new(EXE);
    c.env_remove("VIRTUAL_ENV")
        .env_remove("MOD_WSGI_RS_SO")
        .env_remove("HTTPD");
    c
}

/// A directory under /tmp that www-data can read, holding a copy of
/// tests/apps/express.
fn workdir(name: &str) -> PathBuf {
    let root = common::temp_root(&format!("express-{name}"));
    copy_tree(&common::apps_dir().join("express"), &root.join("app"));
    root
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    chmod(to, 0o755);
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            chmod(&dst, 0o644);
        }
    }
}

struct Server {
    dir: PathBuf,
    root: PathBuf,
    port: u16,
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// Keep the directory (a failed attempt that will be retried).
    keep: bool,
}

fn pump(r: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let mut s = into.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

impl Server {
    /// start-server ARGS --host 127.0.0.1 --port P --server-root DIR/server,
    /// run from DIR/app; waits until Apache answers.
    fn start(name: &str, args: &[&str]) -> Server {
        Self::start_in(workdir(name), args, |_| {})
    }

    fn start_in(dir: PathBuf, args: &[&str], env: impl Fn(&mut Command)) -> Server {
        // A free port can be taken by another test's server in between:
        // try again on another one when Apache could not bind.
        for attempt in 0.. {
            match Self::try_start(dir.clone(), args, &env) {
                Ok(s) => return s,
                Err(why) if attempt < 3 && why.contains("Address already in use") => continue,
                Err(why) => panic!("{why}"),
            }
        }
        unreachable!()
    }

    fn try_start(
        dir: PathBuf,
        args: &[&str],
        env: &impl Fn(&mut Command),
    ) -> Result<Server, String> {
        let port = free_port();
        let root = dir.join("server");
        let _ = std::fs::remove_file(root.join("httpd.pid"));
        let mut cmd = express();
        cmd.current_dir(dir.join("app"))
            .arg("start-server")
            .args(args)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--server-root")
            .arg(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        env(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        pump(child.stdout.take().unwrap(), stdout.clone());
        pump(child.stderr.take().unwrap(), stderr.clone());
        let mut s = Server {
            dir,
            root,
            port,
            child: Some(child),
            stdout,
            stderr,
            keep: false,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ours is up when the banner is out, Apache wrote its pid file
        // (after binding) and the port answers.
        loop {
            if let Some(st) = s.child.as_mut().unwrap().try_wait().unwrap() {
                s.child = None;
                s.keep = true;
                return Err(format!(
                    "wsgi-express exited early ({st}):\n{}\n{}",
                    s.out(),
                    s.err()
                ));
            }
            if s.out().contains("Locale Setting")
                && s.root.join("httpd.pid").exists()
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(s);
            }
            if Instant::now() > deadline {
                s.keep = true;
                return Err(format!("Apache did not start:\n{}\n{}", s.out(), s.err()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn out(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }
    fn err(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
    fn conf(&self) -> String {
        std::fs::read_to_string(self.root.join("httpd.conf")).unwrap()
    }
    fn app(&self) -> PathBuf {
        self.dir.join("app")
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut raw = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            raw.push_str(&format!("Host: 127.0.0.1:{}\r\n", self.port));
        }
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
        {
            raw.push_str("Connection: close\r\n");
        }
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "POST" {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&bytes).unwrap();
        let mut buf = Vec::new();
        let keep_alive = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v == &"keep-alive");
        if keep_alive {
            // Read the head only: the connection stays open.
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        } else {
            let _ = s.read_to_end(&mut buf);
        }
        Response::parse(&buf, false)
    }

    fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    fn json(&self, path: &str) -> String {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), self.error_log());
        r.text()
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.join("error_log")).unwrap_or_default()
    }

    /// SIGTERM, as Ctrl-C or a service manager would; the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("wsgi-express did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- wsgi-express stdout ---\n{}\n--- stderr ---\n{}\n--- error_log ---\n{}",
                self.out(),
                self.err(),
                self.error_log()
            );
        }
        if self.child.is_some() {
            self.stop();
        }
        if !std::thread::panicking() && !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn line<'a>(banner: &'a str, key: &str) -> &'a str {
    banner
        .lines()
        .find(|l| l.starts_with(&format!("{key:<19}: ")))
        .unwrap_or_else(|| panic!("no {key} line in\n{banner}"))
}

fn pid_alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn banner_defaults_and_sigterm() {
    let mut s = Server::start("banner", &["app.wsgi"]);
    let body = s.json("/");
    assert!(
        body.contains("\"uid\": 33"),
        "runs as www-data when started as root: {body}"
    );
    let b = s.out();
    let root = s.root.display().to_string();
    assert_eq!(
        line(&b, "Server URL"),
        format!("Server URL         : http://127.0.0.1:{}/", s.port)
    );
    assert_eq!(
        line(&b, "Server Root"),
        format!("Server Root        : {root}")
    );
    assert_eq!(
        line(&b, "Server Conf"),
        format!("Server Conf        : {root}/httpd.conf")
    );
    assert_eq!(
        line(&b, "Error Log File"),
        format!("Error Log File     : {root}/error_log (warn)")
    );
    assert!(line(&b, "Operating Mode").starts_with("Operating Mode     : daemon"));
    assert_eq!(
        line(&b, "Request Capacity"),
        "Request Capacity   : 5 (1 process * 5 threads)"
    );
    assert_eq!(
        line(&b, "Request Timeout"),
        "Request Timeout    : 60 (seconds)"
    );
    assert_eq!(
        line(&b, "Startup Timeout"),
        "Startup Timeout    : 15 (seconds)"
    );
    assert_eq!(
        line(&b, "Queue Backlog"),
        "Queue Backlog      : 100 (connections)"
    );
    assert_eq!(
        line(&b, "Queue Timeout"),
        "Queue Timeout      : 45 (seconds)"
    );
    assert!(line(&b, "Server Capacity").ends_with("(prefork)"));
    assert_eq!(
        line(&b, "Server Backlog"),
        "Server Backlog     : 500 (connections)"
    );
    assert!(line(&b, "Locale Setting").len() > 21);
    // The values are the configuration's.
    let conf = s.conf();
    for want in [
        format!("Listen 127.0.0.1:{}\n", s.port),
        format!("WSGIDaemonProcess 127.0.0.1:{} \\\n", s.port),
        "threads=5 \\".into(),
        "request-timeout=60 \\".into(),
        "queue-timeout=45 \\".into(),
        "startup-timeout=15 \\".into(),
        "listen-backlog=100 \\".into(),
        "ListenBacklog 500\n".into(),
    ] {
        assert!(conf.contains(&want), "{want:?} not in\n{conf}");
    }
    let server_capacity = line(&b, "Server Capacity").to_string();
    let n: String = server_capacity[21..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    assert!(
        conf.contains(&format!("MaxRequestWorkers {n}\n")),
        "{server_capacity} vs\n{conf}"
    );
    // Files in the server root are readable by Apache's User.
    for f in ["httpd.conf", "handler.wsgi", "apachectl"] {
        let mode = std::fs::metadata(s.root.join(f)).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o004, 0o004, "{f}");
    }
    // SIGTERM stops Apache and every child, and wsgi-express exits 0.
    let pid: i32 = std::fs::read_to_string(s.root.join("httpd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));
    let st = s.stop();
    assert!(st.success(), "{st}");
    assert!(!pid_alive(pid), "Apache still running");
    assert!(s.error_log().contains("caught SIGTERM, shutting down"));
}

#[test]
fn processes_threads_and_daemon_timeouts() {
    let s = Server::start(
        "daemon-opts",
        &[
            "app.wsgi",
            "--processes",
            "2",
            "--threads",
            "3",
            "--request-timeout",
            "30",
            "--queue-timeout",
            "20",
            "--maximum-requests",
            "100",
            "--startup-timeout",
            "7",
            "--graceful-timeout",
            "9",
        ],
    );
    s.json("/");
    let b = s.out();
    assert_eq!(
        line(&b, "Request Capacity"),
        "Request Capacity   : 6 (2 processes * 3 threads)"
    );
    assert_eq!(
        line(&b, "Request Timeout"),
        "Request Timeout    : 30 (seconds)"
    );
    assert_eq!(
        line(&b, "Startup Timeout"),
        "Startup Timeout    : 7 (seconds)"
    );
    assert_eq!(
        line(&b, "Queue Timeout"),
        "Queue Timeout      : 20 (seconds)"
    );
    let conf = s.conf();
    for want in [
        "processes=2 \\",
        "threads=3 \\",
        "request-timeout=30 \\",
        "queue-timeout=20 \\",
        "maximum-requests=100 \\",
        "startup-timeout=7 \\",
        "graceful-timeout=9 \\",
    ] {
        assert!(conf.contains(want), "{want:?} not in\n{conf}");
    }
}

#[test]
fn embedded_mode() {
    let s = Server::start(
        "embedded",
        &["app.wsgi", "--embedded-mode", "--threads", "4"],
    );
    let body = s.json("/");
    assert!(body.contains("\"mod_wsgi.process_group\": \"\""), "{body}");
    assert_eq!(
        line(&s.out(), "Operating Mode"),
        "Operating Mode     : embedded"
    );
    let conf = s.conf();
    assert!(!conf.contains("WSGIDaemonProcess"));
    assert!(
        conf.contains("ThreadsPerChild 4\n") && conf.contains("MaxRequestWorkers 4\n"),
        "{conf}"
    );
}

#[test]
fn mount_point_and_callable_object() {
    let s = Server::start("mount", &["app.wsgi", "--mount-point", "/app"]);
    let body = s.json("/app/x/y");
    assert!(
        body.contains("\"SCRIPT_NAME\": \"/app\"") && body.contains("\"PATH_INFO\": \"/x/y\""),
        "{body}"
    );
    assert_eq!(s.get("/elsewhere").status, 404);
    drop(s);
    let s = Server::start("callable", &["app.wsgi", "--callable-object", "other"]);
    assert_eq!(s.get("/").text(), "other callable");
}

#[test]
fn module_application_type_python_path_and_working_directory() {
    let dir = workdir("module");
    let app = dir.join("app").display().to_string();
    let s = Server::start_in(
        dir.clone(),
        &[
            "--application-type",
            "module",
            "webpkg.web:wsgi_app",
            "--python-path",
            &app,
            "--working-directory",
            "/tmp",
        ],
        |_| {},
    );
    assert_eq!(s.get("/").text(), "module app cwd=/tmp");
    drop(s);
    // Without --python-path the working directory (default: the current
    // one) is searched, and the callable defaults to 'application'.
    let s = Server::start_in(
        workdir("module2"),
        &["--application-type", "module", "webpkg.web"],
        |_| {},
    );
    let body = s.get("/").text();
    assert!(
        body.starts_with("module app cwd=") && body.ends_with("/app"),
        "{body}"
    );
}

#[test]
fn document_root_and_url_aliases() {
    let dir = workdir("static");
    for (d, f, text) in [
        ("docs", "a.txt", "static a"),
        ("assets", "b.css", "static b"),
        ("misc", "robots.txt", "robots"),
    ] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).unwrap();
        chmod(&p, 0o755);
        std::fs::write(p.join(f), text).unwrap();
        chmod(&p.join(f), 0o644);
    }
    let (docs, assets, robots) = (
        dir.join("docs").display().to_string(),
        dir.join("assets").display().to_string(),
        dir.join("misc/robots.txt").display().to_string(),
    );
    let s = Server::start_in(
        dir,
        &[
            "app.wsgi",
            "--document-root",
            &docs,
            "--url-alias",
            "/static",
            &assets,
            "--url-alias",
            "/robots.txt",
            &robots,
        ],
        |_| {},
    );
    assert_eq!(s.get("/a.txt").text(), "static a");
    assert_eq!(s.get("/static/b.css").text(), "static b");
    assert_eq!(s.get("/robots.txt").text(), "robots");
    assert!(
        s.json("/not-a-file")
            .contains("\"PATH_INFO\": \"/not-a-file\"")
    );
}

#[test]
fn setenv_passenv_and_include_file() {
    let dir = workdir("env");
    let inc = dir.join("extra.conf");
    std::fs::write(&inc, "Header always set X-Express-Include yes\n").unwrap();
    chmod(&inc, 0o644);
    let s = Server::start_in(
        dir.clone(),
        &[
            "app.wsgi",
            "--setenv",
            "EXPRESS_TEST",
            "hello world",
            "--passenv",
            "EXPRESS_PASSED",
            "--include-file",
            "../extra.conf",
        ],
        |c| {
            c.env("EXPRESS_PASSED", "from-env");
        },
    );
    let r = s.get("/");
    assert!(
        r.text().contains("\"EXPRESS_TEST\": \"hello world\""),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("\"EXPRESS_PASSED\": \"from-env\""),
        "{}",
        r.text()
    );
    assert_eq!(r.header("X-Express-Include"), Some("yes"));
    assert!(s.conf().contains(&format!("Include '{}'", inc.display())));
}

#[test]
fn limit_request_body_and_keep_alive() {
    let s = Server::start(
        "limits",
        &[
            "app.wsgi",
            "--limit-request-body",
            "100",
            "--keep-alive-timeout",
            "7",
        ],
    );
    assert_eq!(s.request("POST", "/post", &[], &[b'x'; 50]).text(), "50");
    assert_eq!(s.request("POST", "/post", &[], &[b'x'; 1000]).status, 413);
    let r = s.request("GET", "/", &[("Connection", "keep-alive")], b"");
    assert_eq!(
        r.header("Keep-Alive"),
        Some("timeout=7, max=100"),
        "{}",
        r.raw_head
    );
    assert!(s.conf().contains("KeepAliveTimeout 7\n"));
    drop(s);
    // Keep-alive is off by default, as with mod_wsgi-express.
    let s = Server::start("no-keepalive", &["app.wsgi"]);
    let r = s.request("GET", "/", &[("Connection", "keep-alive")], b"");
    assert_eq!(r.header("Connection"), Some("close"), "{}", r.raw_head);
}

#[test]
fn log_level_and_access_log() {
    let s = Server::start("logs", &["app.wsgi", "--log-level", "info", "--access-log"]);
    s.json("/logged-path");
    let b = s.out();
    let root = s.root.display().to_string();
    assert_eq!(
        line(&b, "Error Log File"),
        format!("Error Log File     : {root}/error_log (info)")
    );
    assert_eq!(
        line(&b, "Access Log File"),
        format!("Access Log File    : {root}/access_log")
    );
    assert!(s.conf().contains("LogLevel info\n"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(s.root.join("access_log")).unwrap_or_default();
        if log.contains("\"GET /logged-path HTTP/1.1\" 200") {
            break;
        }
        assert!(Instant::now() < deadline, "access_log: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.error_log().contains("[wsgi:info]"), "{}", s.error_log());
}

#[test]
fn log_to_terminal() {
    let s = Server::start("terminal", &["app.wsgi", "--log-to-terminal"]);
    assert_eq!(
        line(&s.out(), "Error Log File"),
        "Error Log File     : /dev/stderr (warn)"
    );
    assert_eq!(s.get("/stderr").text(), "logged");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.err().contains("EXPRESS-STDERR-MARK") {
        assert!(Instant::now() < deadline, "stderr: {}", s.err());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn server_name_refuses_other_hosts() {
    let s = Server::start(
        "server-name",
        &["app.wsgi", "--server-name", "express.test"],
    );
    assert_eq!(
        line(&s.out(), "Server URL"),
        format!("Server URL         : http://express.test:{}/", s.port)
    );
    let ok = s.request("GET", "/", &[("Host", "express.test")], b"");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        s.request("GET", "/", &[("Host", "other.test")], b"").status,
        403
    );
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn https_port_with_certificate_files() {
    let dir = workdir("https");
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let https = free_port();
    let s = Server::start_in(
        dir,
        &[
            "app.wsgi",
            "--https-port",
            &https.to_string(),
            "--ssl-certificate-file",
            "../server.crt",
            "--ssl-certificate-key-file",
            "../server.key",
        ],
        |_| {},
    );
    assert_eq!(
        line(&s.out(), "Server URL (HTTPS)"),
        format!("Server URL (HTTPS) : https://127.0.0.1:{https}/")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let b = curl(&["-k", &format!("https://127.0.0.1:{https}/")]);
        if !b.is_empty() || Instant::now() > deadline {
            break b;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.contains("\"wsgi.url_scheme\": \"https\""), "{body}");
    assert!(s.json("/").contains("\"wsgi.url_scheme\": \"http\""));
}

#[test]
fn http2() {
    let s = Server::start("http2", &["app.wsgi", "--http2"]);
    let v = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &format!("http://127.0.0.1:{}/", s.port),
    ]);
    assert_eq!(v, "2");
    assert!(s.conf().contains("Protocols h2 h2c http/1.1\n"));
}

#[test]
fn reload_on_changes() {
    let s = Server::start("reload", &["reload.wsgi", "--reload-on-changes"]);
    assert_eq!(s.get("/").text(), "one");
    std::fs::write(s.app().join("helper.py"), "VALUE = 'two'\n").unwrap();
    assert_eq!(s.get("/").text(), "two", "{}", s.error_log());
    drop(s);
    // Without the flag only the script itself is watched.
    let s = Server::start("no-reload", &["reload.wsgi"]);
    assert_eq!(s.get("/").text(), "one");
    std::fs::write(s.app().join("helper.py"), "VALUE = 'two'\n").unwrap();
    assert_eq!(s.get("/").text(), "one");
    let script = s.app().join("reload.wsgi");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(
        &script,
        text.replace("helper.VALUE.encode()", "(helper.VALUE + '!').encode()"),
    )
    .unwrap();
    assert_eq!(s.get("/").text(), "one!");
}

#[test]
fn user_and_group() {
    let s = Server::start(
        "user",
        &["app.wsgi", "--user", "nobody", "--group", "nogroup"],
    );
    assert!(s.json("/").contains("\"uid\": 65534"));
}

#[test]
fn apache_failure_exits_non_zero_with_error_lines() {
    let dir = workdir("fail");
    // Hold a port of our own (binding port 0 cannot race other tests).
    let _taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = _taken.local_addr().unwrap().port();
    let out = express()
        .current_dir(dir.join("app"))
        .args([
            "start-server",
            "app.wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--server-root",
        ])
        .arg(dir.join("server"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("wsgi-express: Apache exited with status 1."),
        "{err}"
    );
    assert!(err.contains("Address already in use"), "{err}");
    // A bad directive: Apache's own syntax error, and a non-zero exit.
    let inc = dir.join("bad.conf");
    std::fs::write(&inc, "NoSuchDirective on\n").unwrap();
    let out = express()
        .current_dir(dir.join("app"))
        .args([
            "start-server",
            "app.wsgi",
            "--port",
            &free_port().to_string(),
            "--include-file",
        ])
        .arg(&inc)
        .arg("--server-root")
        .arg(dir.join("server"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Invalid command 'NoSuchDirective'"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = express().args(args).current_dir("/tmp").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn command_line_errors_and_help() {
    let (code, _, err) = run(&["start-server", "x.wsgi", "--bogus-flag", "1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("wsgi-express: error: no such option: --bogus-flag"),
        "{err}"
    );
    let (code, _, err) = run(&["start-server", "--port", "http"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("option --port: invalid integer value: 'http'"),
        "{err}"
    );
    let (code, _, err) = run(&["serve"]);
    assert_eq!(code, 2);
    assert!(err.contains("Invalid command"), "{err}");
    let (code, out, _) = run(&["start-server", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--port",
        "--processes",
        "--embedded-mode",
        "--url-alias URL-PATH",
        "--setenv KEY VALUE",
        "--http2",
    ] {
        assert!(out.contains(flag), "{flag} not in\n{out}");
    }
    let (code, _, err) = run(&["start-server", "/nonexistent/app.wsgi"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("The WSGI script file '/nonexistent/app.wsgi' does not exist."),
        "{err}"
    );
}

fn built_module() -> PathBuf {
    std::fs::canonicalize(Path::new(EXE).parent().unwrap().join("libmod_wsgi_rs.so")).unwrap()
}

#[test]
fn module_location_config_and_install() {
    let so = built_module();
    let (code, out, _) = run(&["module-location"]);
    assert_eq!(code, 0);
    assert_eq!(out, format!("{}\n", so.display()));
    let (code, out, _) = run(&["module-config"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "LoadModule wsgi_module \"{}\"\nWSGIPythonHome \"/usr\"\n",
            so.display()
        )
    );
    let dir = common::temp_root("express-install");
    let (code, out, err) = run(&[
        "install-module",
        "--modules-directory",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let target = dir.join("mod_wsgi_rs.so");
    assert_eq!(
        std::fs::read(&target).unwrap().len(),
        std::fs::read(&so).unwrap().len()
    );
    assert!(
        out.starts_with(&format!(
            "LoadModule wsgi_module \"{}\"\n",
            target.display()
        )),
        "{out}"
    );
    // MOD_WSGI_RS_SO overrides; a missing module is explained.
    let out = express()
        .env("MOD_WSGI_RS_SO", "/nonexistent/mod_wsgi_rs.so")
        .arg("module-location")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("The mod_wsgi-rs module was not found (tried /nonexistent/mod_wsgi_rs.so)")
            && err.contains("cargo build --release"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn setup_server_writes_a_working_apachectl() {
    let dir = workdir("setup");
    let port = free_port();
    let root = dir.join("server");
    let out = express()
        .current_dir(dir.join("app"))
        .args([
            "setup-server",
            "app.wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--server-root",
        ])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let banner = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        line(&banner, "Control Script"),
        format!("Control Script     : {}/apachectl", root.display())
    );
    let ctl = root.join("apachectl");
    assert!(
        Command::new(&ctl)
            .arg("configtest")
            .status()
            .unwrap()
            .success()
    );
    assert!(Command::new(&ctl).arg("start").status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "apachectl start did not start Apache"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let body = curl(&[&format!("http://127.0.0.1:{port}/")]);
    let pid: i32 = std::fs::read_to_string(root.join("httpd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(Command::new(&ctl).arg("stop").status().unwrap().success());
    assert!(body.contains("\"SCRIPT_NAME\": \"\""), "{body}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while pid_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "apachectl stop did not stop Apache"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn virtualenv_python_must_match_the_module() {
    let dir = workdir("venv");
    let venv = dir.join("venv");
    std::fs::create_dir_all(&venv).unwrap();
    std::fs::write(
        venv.join("pyvenv.cfg"),
        "home = /usr/bin\nversion = 3.99.1\n",
    )
    .unwrap();
    let (code, _, err) = {
        let out = express()
            .current_dir(dir.join("app"))
            .args([
                "start-server",
                "app.wsgi",
                "--port",
                &free_port().to_string(),
                "--python-home",
                "../venv",
                "--server-root",
            ])
            .arg(dir.join("server"))
            .output()
            .unwrap();
        (
            out.status.code(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "The virtualenv {} uses Python 3.99",
            venv.display()
        )) && err.contains("was built for Python 3."),
        "{err}"
    );
    // VIRTUAL_ENV is checked the same way.
    let out = express()
        .env("VIRTUAL_ENV", &venv)
        .current_dir(dir.join("app"))
        .args([
            "setup-server",
            "app.wsgi",
            "--port",
            &free_port().to_string(),
            "--server-root",
        ])
        .arg(dir.join("server"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("uses Python 3.99"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_script_is_explained() {
    let dir = workdir("private");
    let private = dir.join("private");
    std::fs::create_dir_all(&private).unwrap();
    chmod(&private, 0o700);
    std::fs::copy(dir.join("app/app.wsgi"), private.join("app.wsgi")).unwrap();
    let out = express()
        .current_dir(&private)
        .args([
            "setup-server",
            "app.wsgi",
            "--port",
            &free_port().to_string(),
            "--server-root",
        ])
        .arg(dir.join("server"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("cannot be read by user 'www-data'")
            && err.contains(&format!("cannot enter {}", private.display())),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Test harness: a real Apache httpd per test, started on a free loopback
//! port with its own ServerRoot in a temp dir, the module under test, and
//! real Python. The server is stopped when the handle drops (also when the
//! test panics, and via PR_SET_PDEATHSIG if the test process dies), and its
//! error log is printed when the test failed.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const APACHE: &str = "/usr/sbin/apache2";
pub const MODULES: &str = "/usr/lib/apache2/modules";

/// The module built alongside this test binary (target/<profile>/), or
/// MOD_WSGI_RS_SO.
pub fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("MOD_WSGI_RS_SO") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let so = profile_dir.join("libmod_wsgi_rs.so");
    assert!(so.exists(), "module not built: {}", so.display());
    so
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory under /tmp that www-data can read (the repo may sit
/// under /root, which it cannot).
pub fn temp_root(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let base = PathBuf::from("/tmp/mod_wsgi_rs_tests");
    let dir = base.join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    for d in [&base, &dir, &dir.join("app")] {
        chmod(d, 0o755);
    }
    chown_www_data(&dir.join("logs"));
    chown_www_data(&dir.join("run"));
    dir
}

pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_www_data(p: &Path) {
    let _ = Command::new("chown")
        .arg("www-data:www-data")
        .arg(p)
        .status();
}

/// The directory of small WSGI apps used by the tests.
pub fn apps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("apps")
}

pub struct Apache {
    pub root: PathBuf,
    pub port: u16,
    pub conf: PathBuf,
    /// The server's main ErrorLog.
    pub error_log_path: PathBuf,
    child: Option<Child>,
}

pub struct Options {
    pub threads: u32,
    pub servers: u32,
    pub log_level: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 8,
            servers: 1,
            log_level: "info wsgi:debug",
        }
    }
}

/// Writes a config: `body` may use {ROOT} (the server root, whose app/ holds
/// the test apps), {PORT} and {APPS}.
pub fn write_conf(root: &Path, port: u16, body: &str, o: &Options) -> PathBuf {
    write_conf_loading(root, port, body, o, &module_path())
}

/// `write_conf` with another `wsgi_module` (the conformance test loads the
/// C mod_wsgi with the same configuration).
pub fn write_conf_loading(
    root: &Path,
    port: u16,
    body: &str,
    o: &Options,
    module: &Path,
) -> PathBuf {
    // Copy the test apps where www-data can read them.
    for e in std::fs::read_dir(apps_dir()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            let dst = root.join("app").join(e.file_name());
            std::fs::copy(e.path(), &dst).unwrap();
            chmod(&dst, 0o644);
        }
    }
    let body = body
        .replace("{ROOT}", root.to_str().unwrap())
        .replace("{PORT}", &port.to_string())
        .replace("{APPS}", root.join("app").to_str().unwrap());
    let conf = format!(
        r#"ServerRoot {root}
Listen 127.0.0.1:{port}
PidFile {root}/run/httpd.pid
CoreDumpDirectory {root}/run
DefaultRuntimeDir {root}/run
ErrorLog {root}/logs/error_log
LogLevel {level}
User www-data
Group www-data
ServerName localhost
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule mime_module {mods}/mod_mime.so
LoadModule alias_module {mods}/mod_alias.so
LoadModule wsgi_module {so}
TypesConfig /etc/mime.types
StartServers {servers}
ServerLimit {servers}
MinSpareThreads 1
MaxSpareThreads {maxspare}
ThreadsPerChild {threads}
ThreadLimit {threads}
MaxRequestWorkers {workers}
Timeout 30
GracefulShutdownTimeout 10
<Directory {root}/app>
    Require all granted
</Directory>
{body}
"#,
        root = root.display(),
        port = port,
        level = o.log_level,
        mods = MODULES,
        so = module.display(),
        servers = o.servers,
        threads = o.threads,
        maxspare = o.threads * o.servers,
        workers = o.threads * o.servers,
        body = body,
    );
    let path = root.join("httpd.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

/// `apache2 -t` on a config: (ok, output).
pub fn config_test(name: &str, body: &str) -> (bool, String) {
    let root = temp_root(name);
    let conf = write_conf(&root, free_port(), body, &Options::default());
    let out = Command::new(APACHE)
        .arg("-t")
        .arg("-f")
        .arg(&conf)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/bin")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

impl Apache {
    pub fn start(name: &str, body: &str) -> Apache {
        Self::start_with(name, body, Options::default())
    }

    pub fn start_with(name: &str, body: &str, o: Options) -> Apache {
        match Self::try_start(name, body, o) {
            Ok(a) => a,
            Err(e) => panic!("Apache did not start:\n{e}"),
        }
    }

    pub fn try_start(name: &str, body: &str, o: Options) -> Result<Apache, String> {
        Self::try_start_loading(name, body, o, &module_path())
    }

    /// `try_start` with `module` as the `wsgi_module`.
    pub fn try_start_loading(
        name: &str,
        body: &str,
        o: Options,
        module: &Path,
    ) -> Result<Apache, String> {
        let root = temp_root(name);
        let port = free_port();
        let conf = write_conf_loading(&root, port, body, &o, module);
        let mut cmd = Command::new(APACHE);
        cmd.arg("-f").arg(&conf).arg("-DFOREGROUND");
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8");
        let error_log = root.join("logs/error_log");
        Self::launch(root, port, conf, error_log, cmd)
    }

    /// Runs `cmd`, an Apache in the foreground listening on 127.0.0.1:`port`
    /// with its main ErrorLog at `error_log`, as a harness server: waits
    /// until it answers, and stops it by its pid when dropped (also on
    /// panic, and via PR_SET_PDEATHSIG if the test process dies).
    pub fn launch(
        root: PathBuf,
        port: u16,
        conf: PathBuf,
        error_log: PathBuf,
        mut cmd: Command,
    ) -> Result<Apache, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; if the test thread dies without
        // dropping us, the kernel stops Apache.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                // A crashing child leaves a core in run/ (CoreDumpDirectory);
                // Drop prints its backtrace when the test fails.
                let unlimited = libc::rlimit {
                    rlim_cur: libc::RLIM_INFINITY,
                    rlim_max: libc::RLIM_INFINITY,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &unlimited);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
        let mut a = Apache {
            root,
            port,
            conf,
            error_log_path: error_log,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // The listening socket accepts connections before post_config
            // has run; AH00489 ("configured -- resuming normal operations",
            // a notice httpd logs whatever the LogLevel) comes after it, so
            // both together mean "configured".
            if a.error_log().contains("AH00489") && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(a);
            }
            if let Some(status) = a.child.as_mut().unwrap().try_wait().unwrap() {
                let mut child = a.child.take().unwrap();
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                let _ = child.stdout.take().unwrap().read_to_string(&mut err);
                let _ = child.wait(); // already reaped by try_wait; keeps clippy sure
                return Err(format!(
                    "exit {status}\n{err}\n--- error_log ---\n{}",
                    a.error_log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out waiting for port {port}\n{}",
                    a.error_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Apache with SIGTERM and waits for it; returns the error log.
    pub fn stop(&mut self) -> String {
        self.stop_with(libc::SIGTERM)
    }

    /// `apache2 -k graceful-stop` (SIGWINCH): children finish what they are
    /// doing and exit. Tests about what happens when children exit use this:
    /// httpd's event MPM has a race in its ungraceful (SIGTERM) child exit,
    /// where the main thread closes a worker's socket while that worker
    /// frees it (seen as a segfault in `close_worker_sockets`, without any
    /// module involved), so SIGTERM right after a request can crash a child.
    pub fn graceful_stop(&mut self) -> String {
        self.stop_with(libc::SIGWINCH)
    }

    fn stop_with(&mut self, signal: i32) -> String {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, signal) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.error_log()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(&self.error_log_path).unwrap_or_default()
    }

    /// Waits until the error log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.error_log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn app_path(&self, file: &str) -> PathBuf {
        self.root.join("app").join(file)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n",
            self.port
        );
        let mut has_len = false;
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("content-length")
                || k.eq_ignore_ascii_case("transfer-encoding")
            {
                has_len = true;
            }
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_len && (!body.is_empty() || method == "POST" || method == "PUT") {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes, method == "HEAD")
    }

    /// Sends raw bytes and reads the whole response (Connection: close).
    pub fn raw(&self, bytes: &[u8], head: bool) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(bytes).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        Response::parse(&buf, head)
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- error_log of {} ---\n{}",
                self.root.display(),
                self.error_log()
            );
        }
        if let Some(mut child) = self.child.take() {
            // SIGTERM to the parent stops its children too.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        if std::thread::panicking() {
            print_core_backtraces(&self.root.join("run"));
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw_head: String,
}

impl Response {
    pub fn parse(buf: &[u8], head_only: bool) -> Response {
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "no complete response head in {:?}",
                    String::from_utf8_lossy(buf)
                )
            });
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let rest = &buf[split + 4..];
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        let body = if head_only {
            rest.to_vec()
        } else if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Response {
            status,
            headers,
            body,
            raw_head: head,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

/// Prints `thread apply all bt` for each core file a crashed Apache process
/// left in `dir`, when gdb is installed: a crash seen once in CI must leave
/// enough to fix it.
pub fn print_core_backtraces(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with("core") {
            continue;
        }
        let out = Command::new("gdb")
            .args(["-batch", "-nx", "-ex", "thread apply all bt", APACHE])
            .arg(e.path())
            .output();
        match out {
            Ok(o) => eprintln!(
                "--- backtrace of {} ---\n{}{}",
                e.path().display(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(err) => eprintln!(
                "--- core file {} (gdb not available: {err}) ---",
                e.path().display()
            ),
        }
    }
}

/// One value from the flat JSON the test apps write (tiny extraction: the
/// text after `"key": ` up to the next `,` or `}`, unquoted).
pub fn json_field(body: &str, key: &str) -> String {
    let pat = format!("\"{key}\": ");
    let start = body
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {body}"))
        + pat.len();
    let rest = &body[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().trim_matches('"').to_string()
}

/// GETs `path` of tests/apps/slow_stream.wsgi, whose generator yields a
/// first block, waits for a marker file, then yields a second: checks that
/// the first block reaches the client while the generator waits.
pub fn assert_blocks_arrive_one_by_one(a: &Apache, path: &str) {
    let marker = a.root.join("run/seen-first-block");
    let mut s = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        s,
        "GET {path}?{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        marker.display()
    )
    .unwrap();
    // If the first block were held back until the second, this read would
    // time out.
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

/// sha256 of `data` in hex, by sha256sum.
pub fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

/// Sends `POST first` with `body` and, pipelined right behind the body in
/// the same write, `POST second` with `second_body` and Connection: close;
/// returns everything the server answered on that connection.
pub fn upload_then_pipelined(
    a: &Apache,
    first: &str,
    body: &[u8],
    second: &str,
    second_body: &[u8],
) -> String {
    let mut req = format!(
        "POST {first} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req.extend_from_slice(
        format!(
            "POST {second} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            second_body.len()
        )
        .as_bytes(),
    );
    req.extend_from_slice(second_body);
    let mut s = TcpStream::connect(("127.0.0.1", a.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // Written from another thread: the server may answer the first request
    // (and drop the rest of its body) before all of it is sent.
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&req);
    });
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    writer.join().unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last of several responses in `out`.
pub fn last_response(out: &str) -> &str {
    out.rsplit("HTTP/1.1 ").next().unwrap_or("")
}

/// A large body of known length on a plain connection is read from the
/// client socket directly, once httpd's buffer is empty (see
/// src/httpd/body.rs): every byte arrives, a request pipelined behind the
/// body is served, the part of a body the application leaves unread is
/// dropped without eating into the next request, and mod_logio's %I counts
/// the bytes. `input` is the URL of tests/apps/input.wsgi; the access log
/// must be {ROOT}/logs/access_log with `LogFormat "%I %r"`.
pub fn check_body_read_from_socket(a: &Apache, input: &str) {
    let body: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i * 13 % 253) as u8)
        .collect();
    let hex = sha256_hex(&body);
    let out = upload_then_pipelined(
        a,
        &format!("{input}?hash"),
        &body,
        &format!("{input}?read"),
        b"second request",
    );
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains(&format!("{} {hex}", body.len())), "{out}");
    assert!(last_response(&out).contains("second request"), "{out}");

    let out = upload_then_pipelined(
        a,
        &format!("{input}?partial"),
        &body,
        &format!("{input}?read"),
        b"after a partial read",
    );
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains("partial 1048576"), "{out}");
    assert!(
        last_response(&out).contains("after a partial read"),
        "{out}"
    );

    let log = a.error_log();
    assert!(
        log.matches("of the request body directly from the client socket")
            .count()
            >= 2,
        "{log}"
    );
    let access = std::fs::read_to_string(a.root.join("logs/access_log")).unwrap();
    let counted: u64 = access
        .lines()
        .find(|l| l.contains("?hash"))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(counted > body.len() as u64, "%I of the upload: {access}");
}

//! Daemon mode (WSGIDaemonProcess / WSGIProcessGroup) against a real Apache.
//! Every wait is bounded; time limits are generous (the machine is slow).

mod common;

use common::{Apache, Options, Response, json_field};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn daemon_conf(options: &str) -> String {
    format!(
        r#"
WSGIDaemonProcess site user=www-data group=www-data {options} python-path={{APPS}}/lib
WSGIProcessGroup site
WSGIApplicationGroup %{{GLOBAL}}
WSGIChunkedRequest On
WSGIScriptAlias /info {{APPS}}/daemon_info.wsgi
WSGIScriptAlias /hello {{APPS}}/hello.wsgi
WSGIScriptAlias /input {{APPS}}/input.wsgi
WSGIScriptAlias /stream {{APPS}}/stream.wsgi
WSGIScriptAlias /broken {{APPS}}/broken_import.wsgi
"#
    )
}

fn pids_of_group(a: &Apache) -> Vec<u32> {
    // Daemon processes are children of the Apache parent whose cmdline is
    // the display name, or which are not Apache MPM children (those run
    // as www-data too): find them through the log's "Started ... as pid".
    let log = a.error_log();
    let mut pids: Vec<u32> = log
        .lines()
        .filter_map(|l| l.split(" as pid ").nth(1))
        .filter_map(|p| p.trim_end_matches('.').parse().ok())
        .collect();
    pids.retain(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
    pids
}

fn info(a: &Apache) -> (Response, String) {
    let r = a.get("/info");
    let t = r.text();
    (r, t)
}

#[test]
fn serves_from_daemon_processes_as_the_given_user() {
    let a = Apache::start(
        "d_basic",
        &daemon_conf("processes=2 threads=15 display-name=%{GROUP}"),
    );
    let (r, body) = info(&a);
    assert_eq!(r.status, 200, "{body}");
    assert_eq!(json_field(&body, "process_group"), "site");
    assert_eq!(json_field(&body, "application_group"), "");
    assert_eq!(json_field(&body, "multiprocess"), "true");
    assert_eq!(json_field(&body, "multithread"), "true");
    let pid: u32 = json_field(&body, "pid").parse().unwrap();
    let uid: u32 = json_field(&body, "uid").parse().unwrap();
    assert_eq!(uid, 33, "runs as www-data");
    assert!(body.contains("/app/lib"), "python-path applied: {body}");
    // The daemon is not an Apache child serving HTTP: its display name shows.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).starts_with("(wsgi:site)"),
        "cmdline {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    assert!(comm.starts_with("(wsgi:site)"), "comm {comm}");
    assert_ne!(Some(pid), a.pid());
    // hello world, and wsgi.errors reached the error log.
    let h = a.get("/hello");
    assert_eq!(h.status, 200);
    assert_eq!(h.text(), "Hello World!");
    assert!(a.wait_log(
        &format!("daemon_info served by {pid}"),
        Duration::from_secs(5)
    ));
    // Both processes serve, eventually.
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 2 && Instant::now() < deadline {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let port = a.port;
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.write_all(b"GET /info?sleep=0.2 HTTP/1.0\r\n\r\n")
                        .unwrap();
                    let mut v = Vec::new();
                    s.read_to_end(&mut v).unwrap();
                    Response::parse(&v, false).text()
                })
            })
            .collect();
        for h in handles {
            let t = h.join().unwrap();
            seen.insert(json_field(&t, "pid"));
        }
    }
    assert_eq!(seen.len(), 2, "both daemon processes served: {seen:?}");
}

#[test]
fn big_upload_and_download_stream() {
    let a = Apache::start("d_big", &daemon_conf("processes=1 threads=4"));
    // 20 MiB upload, hashed by the app while streaming.
    let body: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let r = a.request("POST", "/input?hash", &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let expected_len = body.len().to_string();
    assert!(
        r.text().starts_with(&format!("{expected_len} ")),
        "{}",
        r.text()
    );
    let hash = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&body)?;
            c.wait_with_output()
        })
        .unwrap();
    let hex = String::from_utf8_lossy(&hash.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(r.text().ends_with(&hex), "hash {} vs {hex}", r.text());
    // Small bodies (sent with the head) and chunked bodies.
    let r = a.request("POST", "/input?readn", &[], b"hello daemon world");
    assert_eq!(r.text(), "hello daemon world");
    let r = a.raw(
        b"POST /input HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        false,
    );
    assert_eq!(r.text(), "hello world");
    // 50 MiB download.
    let n = 50 * 1024 * 1024;
    let r = a.get(&format!("/stream?big={n}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert_eq!(&r.body[..4], &[0, 1, 2, 3]);
}

#[test]
fn slow_generator_reaches_client_chunk_by_chunk() {
    let a = Apache::start("d_slow", &daemon_conf("processes=1 threads=2"));
    let mut s = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /stream?delay=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("chunk 0") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    // The generator waits 3 s before each next chunk: chunk 0 arriving
    // without chunk 1 is the proof it was not held back.
    assert!(
        !String::from_utf8_lossy(&got).contains("chunk 1"),
        "chunk 1 came with chunk 0"
    );
    let _ = s.read_to_end(&mut got);
    assert!(String::from_utf8_lossy(&got).contains("chunk 2"));
}

#[test]
fn broken_script_gives_500_with_traceback_and_no_respawn_storm() {
    let a = Apache::start("d_broken", &daemon_conf("processes=1 threads=2"));
    for _ in 0..3 {
        let r = a.get("/broken");
        assert_eq!(r.status, 500);
    }
    assert!(a.wait_log("ModuleNotFoundError", Duration::from_secs(5)));
    assert!(
        a.error_log()
            .contains("this_module_does_not_exist_anywhere")
    );
    // The daemon itself stays up: no restart messages.
    std::thread::sleep(Duration::from_secs(2));
    let log = a.error_log();
    assert_eq!(
        log.matches(" as pid ").count(),
        1,
        "one daemon start only: {log}"
    );
    assert_eq!(a.get("/hello").status, 200);
    assert!(!log.contains("starting a new one"), "{log}");
}

#[test]
fn kill_9_mid_request_gives_502_and_a_quick_replacement() {
    let a = Apache::start("d_kill", &daemon_conf("processes=1 threads=4"));
    let (_, body) = info(&a);
    let pid: u32 = json_field(&body, "pid").parse().unwrap();
    let port = a.port;
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(b"GET /info?sleep=30 HTTP/1.0\r\n\r\n").unwrap();
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        Response::parse(&v, false)
    });
    std::thread::sleep(Duration::from_millis(1500));
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let r = slow.join().unwrap();
    assert_eq!(r.status, 502);
    assert!(
        a.wait_log("SIGKILL", Duration::from_secs(10)),
        "supervisor names the signal"
    );
    let log = a.error_log();
    assert!(log.contains(&format!("pid {pid}")), "{log}");
    // The next request is served by a new daemon within a few seconds.
    let start = Instant::now();
    let (r, body) = info(&a);
    assert_eq!(r.status, 200, "{body}");
    assert_ne!(json_field(&body, "pid"), pid.to_string());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn stop_leaves_no_daemon_and_no_socket() {
    let mut a = Apache::start("d_stop", &daemon_conf("processes=2 threads=2"));
    let _ = info(&a);
    let pids = pids_of_group(&a);
    assert_eq!(pids.len(), 2, "{}", a.error_log());
    let run = a.root.join("run");
    let sockets = || {
        std::fs::read_dir(&run)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
            .count()
    };
    assert_eq!(sockets(), 1);
    a.stop();
    for p in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{p}")).exists(),
            "daemon {p} survived"
        );
    }
    assert_eq!(sockets(), 0);
}

#[test]
fn graceful_restart_replaces_daemons() {
    let a = Apache::start("d_graceful", &daemon_conf("processes=1 threads=2"));
    let (_, body) = info(&a);
    let old: u32 = json_field(&body, "pid").parse().unwrap();
    unsafe { libc::kill(a.pid().unwrap() as i32, libc::SIGUSR1) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut new = old;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        let r = a.get("/info");
        if r.status == 200 {
            new = json_field(&r.text(), "pid").parse().unwrap();
            if new != old {
                break;
            }
        }
    }
    assert_ne!(new, old, "daemon replaced");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{old}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{old}")).exists(),
        "old daemon gone"
    );
}

/// `clients` threads, each sending GET `path` until `more()` says stop:
/// (requests answered 200, the failures with their status, the daemon
/// pids that answered).
fn load(
    port: u16,
    clients: usize,
    path: &'static str,
    more: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> (usize, Vec<String>, std::collections::HashSet<String>) {
    use std::sync::{Arc, Mutex};
    let more = Arc::new(more);
    let ok = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let pids = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (more, ok, failures, pids) =
                (more.clone(), ok.clone(), failures.clone(), pids.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while more(n) {
                    n += 1;
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
                        .unwrap();
                    let mut v = Vec::new();
                    let _ = s.read_to_end(&mut v);
                    let r = Response::parse(&v, false);
                    if r.status == 200 {
                        ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        pids.lock().unwrap().insert(json_field(&r.text(), "pid"));
                    } else {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", r.status, r.text()));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ok = ok.load(std::sync::atomic::Ordering::Relaxed);
    let failures = failures.lock().unwrap().clone();
    let pids = pids.lock().unwrap().clone();
    (ok, failures, pids)
}

#[test]
fn maximum_requests_recycles_without_failed_requests() {
    // 3,008 requests from 32 clients at once, over 2 daemon processes of
    // 8 threads, each replaced every 400 requests: no client may see an
    // error while a daemon stops accepting, finishes its requests and its
    // replacement takes over the shared listening socket.
    let a = Apache::start_with(
        "d_maxreq",
        &daemon_conf("processes=2 threads=8 maximum-requests=400"),
        Options {
            threads: 40,
            log_level: "info",
            ..Options::default()
        },
    );
    let (ok, failures, pids) = load(a.port, 32, "/info", |n| n < 94);
    assert!(failures.is_empty(), "{failures:?}\n{}", a.error_log());
    assert_eq!(ok, 32 * 94);
    assert!(pids.len() >= 6, "processes were recycled: {pids:?}");
    assert!(
        a.error_log()
            .contains("exited to restart because it reached maximum-requests")
    );
}

#[test]
fn restart_interval_under_steady_load_fails_no_request() {
    let a = Apache::start_with(
        "d_restartint",
        &daemon_conf("processes=1 threads=4 restart-interval=2"),
        Options {
            threads: 16,
            log_level: "info",
            ..Options::default()
        },
    );
    // Steady load for about 8 s: several restarts of the only daemon.
    let until = Instant::now() + Duration::from_secs(8);
    let (ok, failures, pids) = load(a.port, 8, "/info", move |_| Instant::now() < until);
    assert!(failures.is_empty(), "{failures:?}\n{}", a.error_log());
    assert!(ok > 0);
    assert!(pids.len() >= 2, "the daemon was restarted: {pids:?}");
    assert!(a.error_log().contains("restart-interval"));
}

#[test]
fn options_not_implemented_yet_stop_apache_from_starting() {
    for (opts, option) in [
        ("chroot=/srv/jail", "chroot"),
        ("interrupt-timeout=10", "interrupt-timeout"),
        ("server-metrics=On", "server-metrics"),
        ("newrelic-config-file=/etc/nr.ini", "newrelic-config-file"),
    ] {
        let (ok, out) = common::config_test(
            "d_refused",
            &format!("WSGIDaemonProcess site threads=2 {opts}\n"),
        );
        assert!(!ok, "{opts}: {out}");
        assert!(
            out.contains(&format!(
                "WSGIDaemonProcess option '{option}' is not implemented yet by mod_wsgi-rs"
            )),
            "{out}"
        );
    }
    let (ok, out) = common::config_test(
        "d_accepted",
        "WSGIDaemonProcess site threads=2 interrupt-timeout=0 server-metrics=Off queue-timeout=45 \
         startup-timeout=15 deadlock-timeout=60 memory-limit=1000000000 cpu-time-limit=3600 \
         response-buffer-size=131072 response-socket-timeout=10 eviction-timeout=5 switch-interval=0.005\n",
    );
    assert!(ok, "{out}");
}

#[test]
fn request_timeout_gives_504_and_recycles() {
    let a = Apache::start(
        "d_reqtimeout",
        &daemon_conf("processes=1 threads=2 request-timeout=2"),
    );
    let (_, body) = info(&a);
    let old = json_field(&body, "pid");
    let start = Instant::now();
    let r = a.get("/info?sleep=20");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(start.elapsed() < Duration::from_secs(15));
    assert!(a.wait_log("request time limit", Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{old}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (r, body) = info(&a);
    assert_eq!(r.status, 200);
    assert_ne!(json_field(&body, "pid"), old);
}

#[test]
fn inactivity_timeout_restarts_idle_daemon() {
    let a = Apache::start(
        "d_idle",
        &daemon_conf("processes=1 threads=2 inactivity-timeout=2"),
    );
    let (_, body) = info(&a);
    let old = json_field(&body, "pid");
    assert!(a.wait_log("inactivity timer expired", Duration::from_secs(15)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{old}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (r, body) = info(&a);
    assert_eq!(r.status, 200);
    assert_ne!(json_field(&body, "pid"), old);
}

#[test]
fn unreachable_daemon_gives_503() {
    // A group whose user cannot be found never starts: its socket exists
    // (held by the parent) but nobody answers; with a short connect and
    // socket timeout the client gets 504; with the socket removed, 503.
    let a = Apache::start(
        "d_503",
        &daemon_conf("processes=1 threads=2 connect-timeout=1 socket-timeout=2"),
    );
    let (r, _) = info(&a);
    assert_eq!(r.status, 200);
    for e in std::fs::read_dir(a.root.join("run")).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().ends_with(".sock") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    // Apache's threads keep their connections to the daemon for the next
    // request; kill the daemon so that they die and the request must
    // connect (its replacement listens on the now nameless socket).
    for pid in pids_of_group(&a) {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let r = a.get("/info");
    assert_eq!(r.status, 503);
    assert!(a.wait_log(
        "Unable to connect to WSGI daemon process 'site'",
        Duration::from_secs(5)
    ));
}

#[test]
fn trusted_proxy_headers_reach_the_daemon() {
    let conf = daemon_conf("processes=1 threads=2")
        + "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\nWSGITrustedProxies 127.0.0.1\n";
    let a = Apache::start("d_proxy", &conf);
    let r = a.request(
        "GET",
        "/info",
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", a.error_log());
    let t = r.text();
    assert_eq!(json_field(&t, "url_scheme"), "https");
    assert_eq!(json_field(&t, "remote_addr"), "203.0.113.9");
    let t = info(&a).1;
    assert_eq!(json_field(&t, "url_scheme"), "http");
}

#[test]
fn restrict_process_and_virtual_host_scoping() {
    // WSGIRestrictProcess limits what %{ENV:...} may select, and a group
    // declared in one VirtualHost cannot serve another ServerName.
    let a = Apache::start(
        "restrict",
        r#"LoadModule env_module /usr/lib/apache2/modules/mod_env.so
WSGIDaemonProcess allowed threads=2
WSGIDaemonProcess other threads=2
<VirtualHost *:{PORT}>
    ServerName one.example
    WSGIDaemonProcess private threads=2
    SetEnv GROUP allowed
    WSGIScriptAlias /env {APPS}/environ.wsgi process-group=%{ENV:GROUP}
    WSGIScriptAlias /other {APPS}/environ.wsgi process-group=other
    WSGIScriptAlias /embedded {APPS}/environ.wsgi process-group=%{GLOBAL}
    WSGIScriptAlias /private {APPS}/environ.wsgi process-group=private
    <Location />
        WSGIRestrictProcess allowed private
    </Location>
</VirtualHost>
<VirtualHost *:{PORT}>
    ServerName two.example
    WSGIScriptAlias /private {APPS}/environ.wsgi process-group=private
</VirtualHost>
"#,
    );
    let get = |host: &str, path: &str| {
        a.raw(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
            false,
        )
    };
    let r = get("one.example", "/env");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(json_field(&r.text(), "mod_wsgi.process_group"), "allowed");
    assert_eq!(get("one.example", "/private").status, 200);
    assert_eq!(get("one.example", "/other").status, 500);
    assert_eq!(get("one.example", "/embedded").status, 500);
    assert!(a.wait_log(
        "Daemon process called 'other' cannot be accessed by this WSGI application",
        Duration::from_secs(5)
    ));
    assert!(
        a.error_log().contains(
            "Daemon process called '%{GLOBAL}' cannot be accessed by this WSGI application"
        )
    );
    // Another ServerName cannot reach one.example's private group.
    assert_eq!(get("two.example", "/private").status, 500);
    assert!(a.wait_log(
        "Daemon process called 'private' cannot be accessed",
        Duration::from_secs(5)
    ));
}

// ------------------------------------------------ WSGIDaemonProcess options

/// A GET in a thread, answered with its status and body.
fn get_in_thread(port: u16, path: &str) -> std::thread::JoinHandle<(u16, String)> {
    let req = format!("GET {path} HTTP/1.0\r\n\r\n");
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        let r = Response::parse(&v, false);
        (r.status, r.text())
    })
}

fn wait_gone(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn limits_conf(options: &str) -> String {
    daemon_conf(options) + "WSGIScriptAlias /limits {APPS}/limits.wsgi\n"
}

#[test]
fn queue_timeout_answers_504_instead_of_piling_up() {
    let a = Apache::start(
        "d_queue",
        &limits_conf("processes=1 threads=1 queue-timeout=1"),
    );
    assert_eq!(a.get("/hello").status, 200);
    // The only thread is busy for 6 s...
    let slow = get_in_thread(a.port, "/limits?sleep=6");
    assert!(a.wait_log("limits sleep=6 started", Duration::from_secs(30)));
    // ...so these wait in the listen backlog longer than queue-timeout.
    let queued: Vec<_> = (0..4).map(|_| get_in_thread(a.port, "/hello")).collect();
    assert_eq!(slow.join().unwrap().0, 200);
    for q in queued {
        let (status, body) = q.join().unwrap();
        assert_eq!(status, 504, "{body}");
    }
    assert!(a.wait_log(
        "Queue timeout expired for WSGI daemon process 'site'.",
        Duration::from_secs(5)
    ));
    // Fresh requests still run.
    assert_eq!(a.get("/hello").status, 200);
}

#[test]
fn startup_timeout_restarts_a_daemon_whose_script_cannot_be_retried() {
    let a = Apache::start(
        "d_startup",
        &(daemon_conf("processes=1 threads=2 startup-timeout=2")
            + "WSGIScriptAlias /once {APPS}/startup_once.wsgi\n"),
    );
    let r = a.get("/once");
    assert_eq!(r.status, 500);
    assert!(a.wait_log("not configured yet", Duration::from_secs(5)));
    assert!(
        a.error_log()
            .contains("Application startup timer started for daemon process 'site'.")
    );
    let old = pids_of_group(&a);
    // Fixing the configuration is not enough in this process...
    std::fs::write(a.root.join("app/startup_ok"), b"").unwrap();
    let r = a.get("/once");
    assert_eq!(r.status, 500);
    assert!(a.wait_log("cannot be retried", Duration::from_secs(5)));
    // ...but the start-up timer replaces it, and the new one starts.
    assert!(a.wait_log(
        "Application startup timer expired, stopping process 'site'.",
        Duration::from_secs(30)
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, String::new());
    while Instant::now() < deadline {
        let r = a.get("/once");
        last = (r.status, r.text());
        if last.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(last.0, 200, "{}", last.1);
    assert!(
        !old.iter().any(|p| last.1.ends_with(&p.to_string())),
        "{old:?} {}",
        last.1
    );
    assert!(
        a.error_log()
            .contains("did not load within startup-timeout")
    );
}

#[test]
fn deadlock_timeout_restarts_a_daemon_whose_gil_is_held() {
    let a = Apache::start(
        "d_deadlock",
        &limits_conf("processes=1 threads=2 deadlock-timeout=2"),
    );
    let (_, body) = info(&a);
    let old = json_field(&body, "pid");
    // libc sleep() through ctypes.PyDLL keeps the GIL for 60 s.
    let stuck = get_in_thread(a.port, "/limits?gil=60");
    assert!(a.wait_log(
        "Daemon process deadlock timer expired, stopping process 'site'.",
        Duration::from_secs(30)
    ));
    let (status, _) = stuck.join().unwrap();
    assert_eq!(status, 502);
    wait_gone(&old);
    let (r, body) = info(&a);
    assert_eq!(r.status, 200, "{body}");
    assert_ne!(json_field(&body, "pid"), old);
    assert!(
        a.error_log()
            .contains("the Python GIL looked deadlocked for deadlock-timeout")
    );
}

#[test]
fn memory_limits_raise_memory_error_and_the_daemon_survives() {
    let conf = limits_conf(
        "processes=1 threads=2 memory-limit=268435456 switch-interval=0.002 cpu-priority=5",
    ) + "WSGIDaemonProcess vm user=www-data group=www-data threads=2 virtual-memory-limit=2147483648\n\
         WSGIScriptAlias /vm/limits {APPS}/limits.wsgi process-group=vm application-group=%{GLOBAL}\n";
    let a = Apache::start("d_memory", &conf);
    let r = a.get("/limits?rlimits");
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert_eq!(json_field(&t, "RLIMIT_DATA"), "268435456");
    assert_eq!(json_field(&t, "switchinterval"), "0.002");
    assert_eq!(json_field(&t, "nice"), "5");
    let pid = json_field(&t, "pid");
    let t = a.get("/vm/limits?rlimits").text();
    assert_eq!(json_field(&t, "RLIMIT_AS"), "2147483648");
    let vm_pid = json_field(&t, "pid");
    // 512 MiB is over memory-limit: MemoryError, a 500, and the same
    // daemon serves the next request.
    let r = a.get("/limits?alloc=536870912");
    assert_eq!(r.status, 500);
    assert!(a.wait_log("MemoryError", Duration::from_secs(5)));
    let r = a.get("/limits?alloc=16777216");
    assert_eq!(r.status, 200);
    assert_eq!(json_field(&r.text(), "pid"), pid);
    // The other group has no data limit but a 2 GiB address space.
    assert_eq!(a.get("/vm/limits?alloc=536870912").status, 200);
    let before = a.error_log().matches("MemoryError").count();
    assert_eq!(a.get("/vm/limits?alloc=3221225472").status, 500);
    assert!(a.wait_log("MemoryError", Duration::from_secs(5)));
    assert!(a.error_log().matches("MemoryError").count() > before);
    let r = a.get("/vm/limits?alloc=1024");
    assert_eq!(json_field(&r.text(), "pid"), vm_pid);
}

#[test]
fn cpu_time_limit_replaces_the_daemon_after_its_requests_finish() {
    let a = Apache::start(
        "d_cpu",
        &limits_conf("processes=1 threads=2 cpu-time-limit=2"),
    );
    let (_, body) = info(&a);
    let old = json_field(&body, "pid");
    // 4 s of CPU time: past the limit half way, yet it completes.
    let r = a.get("/limits?burn=4");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_field(&r.text(), "pid"), old);
    assert!(a.wait_log(
        "Exceeded CPU time limit, waiting for requests to complete 'site'.",
        Duration::from_secs(10)
    ));
    assert!(a.wait_log(
        "exited to restart because it used up cpu-time-limit",
        Duration::from_secs(30)
    ));
    wait_gone(&old);
    let (r, body) = info(&a);
    assert_eq!(r.status, 200, "{body}");
    assert_ne!(json_field(&body, "pid"), old);
}

#[test]
fn sigusr1_drains_requests_then_restarts_the_daemon() {
    let a = Apache::start(
        "d_usr1",
        &limits_conf("processes=1 threads=2 eviction-timeout=20"),
    );
    let (_, body) = info(&a);
    let old = json_field(&body, "pid");
    let slow = get_in_thread(a.port, "/limits?sleep=3");
    assert!(a.wait_log("limits sleep=3 started", Duration::from_secs(30)));
    unsafe { libc::kill(old.parse().unwrap(), libc::SIGUSR1) };
    assert!(a.wait_log(
        "Process eviction requested, waiting for requests to complete 'site'.",
        Duration::from_secs(10)
    ));
    // Still accepting while it drains.
    assert_eq!(json_field(&a.get("/limits?x").text(), "pid"), old);
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(a.wait_log(
        "Requests have completed, triggering immediate shutdown 'site'.",
        Duration::from_secs(10)
    ));
    wait_gone(&old);
    let (r, body) = info(&a);
    assert_eq!(r.status, 200);
    assert_ne!(json_field(&body, "pid"), old);
    assert!(a.error_log().contains("it was sent SIGUSR1"));
}

/// Apache's children (not the daemons) of the running server.
fn apache_children(a: &Apache) -> Vec<u32> {
    let parent = a.pid().unwrap();
    let daemons: Vec<u32> = pids_of_group(a);
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == parent && !daemons.contains(&pid) {
            out.push(pid);
        }
    }
    out
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn response_buffer_bounds_memory_and_response_socket_timeout_cuts_slow_clients() {
    let a = Apache::start(
        "d_respbuf",
        &daemon_conf(
            "processes=1 threads=2 socket-timeout=25 response-buffer-size=65536 response-socket-timeout=2",
        ),
    );
    // 300 MiB streams through the Apache child in bounded memory.
    let n: usize = 300 * 1024 * 1024;
    let mut s = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s.write_all(format!("GET /stream?big={n} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = s.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        total += k;
    }
    assert!(total > n, "got {total} bytes");
    let children = apache_children(&a);
    assert!(!children.is_empty());
    for c in &children {
        let peak = peak_rss_kib(*c);
        assert!(peak < 100 * 1024, "Apache child {c} peaked at {peak} KiB");
    }
    // A client that never reads: the Apache child gives up writing to it
    // after response-socket-timeout (2 s), well before Timeout (30 s).
    let mut stuck = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    stuck
        .write_all(format!("GET /stream?big={n} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    assert!(
        a.wait_log(
            "The client went away while '/stream' was streamed",
            Duration::from_secs(20)
        ),
        "{}",
        a.error_log()
    );
    drop(stuck);
    assert_eq!(a.get("/hello").status, 200);
}

#[test]
fn script_user_refuses_scripts_it_does_not_own() {
    let conf = daemon_conf("processes=1 threads=2")
        + "WSGIDaemonProcess owned user=www-data group=www-data threads=2 script-user=www-data\n\
           WSGIScriptAlias /owned/hello {APPS}/hello.wsgi process-group=owned application-group=%{GLOBAL}\n\
           WSGIScriptAlias /owned/mine {APPS}/mine.wsgi process-group=owned application-group=%{GLOBAL}\n\
           WSGIDaemonProcess grouped user=www-data group=www-data threads=2 script-group=www-data\n\
           WSGIScriptAlias /grouped/hello {APPS}/hello.wsgi process-group=grouped application-group=%{GLOBAL}\n\
           WSGIScriptAlias /grouped/mine {APPS}/mine.wsgi process-group=grouped application-group=%{GLOBAL}\n";
    let a = Apache::start("d_scriptuser", &conf);
    let mine = a.root.join("app/mine.wsgi");
    std::fs::copy(a.root.join("app/hello.wsgi"), &mine).unwrap();
    let st = std::process::Command::new("chown")
        .arg("www-data:www-data")
        .arg(&mine)
        .status()
        .unwrap();
    assert!(st.success());
    // hello.wsgi belongs to root: refused with 403, as mod_wsgi does.
    assert_eq!(a.get("/owned/hello").status, 403);
    assert!(a.wait_log(
        "only runs scripts owned by script-user 'www-data'",
        Duration::from_secs(5)
    ));
    assert_eq!(a.get("/grouped/hello").status, 403);
    assert!(a.wait_log(
        "only runs scripts owned by script-group 'www-data'",
        Duration::from_secs(5)
    ));
    let r = a.get("/owned/mine");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(r.text(), "Hello World!");
    assert_eq!(a.get("/grouped/mine").status, 200);
    // Groups without the option run any script.
    assert_eq!(a.get("/hello").status, 200);
}

#[test]
fn socket_rotation_off_keeps_the_socket_name_across_graceful_restarts() {
    let sockets = |a: &Apache| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(a.root.join("run"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sock"))
            .collect();
        v.sort();
        v
    };
    let restart = |a: &Apache, old: u32| {
        unsafe { libc::kill(a.pid().unwrap() as i32, libc::SIGUSR1) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "daemon not replaced");
            std::thread::sleep(Duration::from_millis(200));
            let r = a.get("/info");
            if r.status == 200 && json_field(&r.text(), "pid").parse::<u32>().unwrap() != old {
                return;
            }
        }
    };
    let parent = |a: &Apache| a.pid().unwrap();
    // Off: <prefix>.<pid>.<id>.sock, the same after a graceful restart.
    let a = Apache::start(
        "d_norotate",
        &format!("WSGISocketRotation Off\n{}", daemon_conf("threads=2")),
    );
    let before = sockets(&a);
    assert_eq!(before, [format!("wsgi.{}.1.sock", parent(&a))]);
    let old = json_field(&info(&a).1, "pid").parse().unwrap();
    restart(&a, old);
    assert_eq!(sockets(&a), before);
    // On (the default): the generation is part of the name and changes.
    let b = Apache::start("d_rotate", &daemon_conf("threads=2"));
    let before = sockets(&b);
    assert_eq!(before.len(), 1);
    assert!(before[0].starts_with(&format!("wsgi.{}.", parent(&b))));
    assert_eq!(before[0].split('.').count(), 5, "{before:?}");
    let old = json_field(&info(&b).1, "pid").parse().unwrap();
    restart(&b, old);
    let after = sockets(&b);
    assert_eq!(after.len(), 1);
    assert_ne!(after, before);
}

/// GET `path` with `Host: host` (name-based VirtualHosts).
fn get_host(a: &Apache, host: &str, path: &str) -> Response {
    a.raw(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        false,
    )
}

fn read_log(a: &Apache, file: &str) -> String {
    std::fs::read_to_string(a.root.join("logs").join(file)).unwrap_or_default()
}

/// Waits until every needle is in the log file.
fn wait_file_log(a: &Apache, file: &str, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = read_log(a, file);
        if needles.iter().all(|n| log.contains(n)) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemon_logs_go_to_the_error_log_of_the_requests_virtual_host() {
    // Two name-based VirtualHosts with their own ErrorLog. Group 'va' is
    // defined inside the first; group 'shared' globally, used by both.
    let conf = r#"
WSGIDaemonProcess shared user=www-data group=www-data processes=1 threads=2
<VirtualHost 127.0.0.1:{PORT}>
    ServerName a.test
    ErrorLog {ROOT}/logs/a_error_log
    WSGIDaemonProcess va user=www-data group=www-data processes=1 threads=2
    WSGIScriptAlias /own {APPS}/vhost_log.wsgi process-group=va application-group=%{GLOBAL}
    WSGIScriptAlias /shared {APPS}/vhost_log.wsgi process-group=shared application-group=%{GLOBAL}
</VirtualHost>
<VirtualHost 127.0.0.1:{PORT}>
    ServerName b.test
    ErrorLog {ROOT}/logs/b_error_log
    WSGIScriptAlias /shared {APPS}/vhost_log.wsgi process-group=shared application-group=%{GLOBAL}
</VirtualHost>
"#;
    let a = Apache::start("d_vhostlog", conf);
    let r = get_host(&a, "a.test", "/own?tag=a-own");
    assert_eq!((r.status, r.text().as_str()), (200, "a-own"));
    let r = get_host(&a, "a.test", "/shared?tag=a-shared");
    assert_eq!((r.status, r.text().as_str()), (200, "a-shared"));
    let r = get_host(&a, "b.test", "/shared?tag=b-shared");
    assert_eq!((r.status, r.text().as_str()), (200, "b-shared"));
    for (host, path, tag) in [
        ("a.test", "/own", "a-own-raise"),
        ("a.test", "/shared", "a-shared-raise"),
        ("b.test", "/shared", "b-shared-raise"),
    ] {
        let r = get_host(&a, host, &format!("{path}?tag={tag}&raise=1"));
        assert_eq!(r.status, 500);
    }

    let a_tags = ["a-own", "a-shared", "a-own-raise", "a-shared-raise"];
    let b_tags = ["b-shared", "b-shared-raise"];
    let lines = |tags: &[&str]| -> Vec<String> {
        tags.iter()
            .flat_map(|t| [format!("PRINT-{t}\n"), format!("ERRORS-{t}\n")])
            .chain(
                tags.iter()
                    .filter(|t| t.ends_with("-raise"))
                    .map(|t| format!("RuntimeError: RAISE-{t}")),
            )
            .collect()
    };
    let a_lines = lines(&a_tags);
    let b_lines = lines(&b_tags);
    let a_log = wait_file_log(
        &a,
        "a_error_log",
        &a_lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let b_log = wait_file_log(
        &a,
        "b_error_log",
        &b_lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let main_log = a.error_log();
    for l in &a_lines {
        assert!(
            a_log.contains(l.as_str()),
            "{l:?} missing in a_error_log:\n{a_log}"
        );
        assert!(
            !b_log.contains(l.as_str()),
            "{l:?} in b_error_log:\n{b_log}"
        );
        assert!(
            !main_log.contains(l.as_str()),
            "{l:?} in the main error_log"
        );
    }
    for l in &b_lines {
        assert!(
            b_log.contains(l.as_str()),
            "{l:?} missing in b_error_log:\n{b_log}"
        );
        assert!(
            !a_log.contains(l.as_str()),
            "{l:?} in a_error_log:\n{a_log}"
        );
        assert!(
            !main_log.contains(l.as_str()),
            "{l:?} in the main error_log"
        );
    }
    // sys.stderr inside a request is tagged with the client, like
    // wsgi.errors (mod_wsgi logs both with ap_log_rerror).
    let print_line = b_log
        .lines()
        .find(|l| l.ends_with("PRINT-b-shared"))
        .unwrap();
    assert!(print_line.contains("[client 127.0.0.1:"), "{print_line}");
    // The daemon's own lines go where its WSGIDaemonProcess was read.
    assert!(a_log.contains("Starting process 'va'"), "{a_log}");
    assert!(!main_log.contains("Starting process 'va'"));
    assert!(main_log.contains("Starting process 'shared'"), "{main_log}");
    assert!(!a_log.contains("Starting process 'shared'"));
    assert!(!b_log.contains("Starting process"), "{b_log}");
}

#[test]
fn error_override_hands_daemon_error_statuses_to_apache() {
    let conf = daemon_conf("processes=1 threads=2")
        + "WSGIScriptAlias /r {APPS}/responses.wsgi\nWSGIScriptAlias /o {APPS}/responses.wsgi\n<Location /o>\nWSGIErrorOverride On\n</Location>\nErrorDocument 404 \"apache error document\"\n";
    let a = Apache::start("d_override", &conf);
    // Off: the application's own error body.
    let r = a.get("/r?not-found");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "application 404 body");
    // On: Apache's ErrorDocument, for a response from the daemon.
    let r = a.get("/o?not-found");
    assert_eq!(r.status, 404, "{}", a.error_log());
    assert_eq!(r.text(), "apache error document");
    assert!(
        a.error_log().contains("process='site'"),
        "served by the daemon"
    );
    // Success statuses still stream through.
    assert_eq!(
        a.get("/o?generator").text(),
        "chunk0;chunk1;chunk2;chunk3;chunk4;"
    );
    // And the connection is still usable for the next request after a
    // dropped error body.
    let r = a.get("/o?not-found");
    assert_eq!(r.text(), "apache error document");
}

/// The daemon sockets in the server's run/ directory, by group id (the
/// number before `.sock`).
fn daemon_sockets(a: &Apache) -> Vec<(u32, std::path::PathBuf)> {
    let mut v: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(a.root.join("run"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let id = stem.rsplit('.').next().unwrap().parse().unwrap();
            (id, p)
        })
        .collect();
    v.sort();
    v
}

/// Runs a small Python program (as root; it may switch user itself) and
/// returns its output.
fn python(code: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Connects to a UNIX socket as `uid` and reports the peer's credentials
/// or the error: "peer PID UID" or "error ERRNO-NAME".
const CONNECT_AS: &str = r#"
import errno, os, socket, struct, sys
path, uid = sys.argv[1], int(sys.argv[2])
if uid:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except OSError as e:
    print('error', errno.errorcode[e.errno]); sys.exit()
pid, uid, gid = struct.unpack('3i', s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
print('peer', pid, uid)
"#;

#[test]
fn daemon_socket_is_private_to_apaches_user() {
    let conf = daemon_conf("processes=1 threads=2")
        + "WSGIDaemonProcess other user=www-data group=www-data processes=1 threads=1 socket-user=nobody\n";
    let a = Apache::start("d_sockperm", &conf);
    let (r, body) = info(&a);
    assert_eq!(r.status, 200, "{body}");
    let daemon_pid = json_field(&body, "pid");
    let socks = daemon_sockets(&a);
    assert_eq!(socks.len(), 2, "{socks:?}");
    use std::os::unix::fs::MetadataExt;
    let site = std::fs::metadata(&socks[0].1).unwrap();
    let other = std::fs::metadata(&socks[1].1).unwrap();
    // Mode 0600, owned by Apache's User (www-data), or by socket-user=.
    assert_eq!(site.mode() & 0o777, 0o600);
    assert_eq!(site.uid(), 33);
    assert_eq!(other.mode() & 0o777, 0o600);
    assert_eq!(other.uid(), 65534);
    // The directory is not writable by others, so no warning about it.
    let dir = std::fs::metadata(a.root.join("run")).unwrap();
    assert_eq!(dir.mode() & 0o002, 0);
    assert!(!a.error_log().contains("writable by other users"));

    let site_path = socks[0].1.to_str().unwrap();
    // Another user cannot connect at all.
    assert_eq!(
        python(CONNECT_AS, &[site_path, "65534"]).trim(),
        "error EACCES"
    );
    // Once a daemon listens, its peer is the daemon's user and pid (not
    // root, the parent that created the socket): what Apache's children
    // check.
    let peer = python(CONNECT_AS, &[site_path, "0"]);
    assert_eq!(peer.trim(), format!("peer {daemon_pid} 33"), "{peer}");
    // With the socket opened up by hand, the daemon still refuses the
    // stranger by its uid.
    common::chmod(&socks[0].1, 0o666);
    let out = python(CONNECT_AS, &[site_path, "65534"]);
    assert!(out.starts_with("peer "), "{out}");
    assert!(
        a.wait_log("refused a connection from pid", Duration::from_secs(10)),
        "{}",
        a.error_log()
    );
    assert!(a.error_log().contains("running as uid 65534"));
    assert_eq!(info(&a).0.status, 200);
}

#[test]
fn socket_directory_writable_by_others_is_warned_about() {
    let dir = std::path::PathBuf::from(format!(
        "/tmp/mod_wsgi_rs_tests/open-sockets-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    common::chmod(&dir, 0o777);
    let conf = daemon_conf("processes=1 threads=2")
        + &format!("WSGISocketPrefix {}/wsgi\n", dir.display());
    let a = Apache::start("d_sockdir", &conf);
    assert_eq!(info(&a).0.status, 200);
    assert!(
        a.error_log().contains(&format!(
            "The directory '{}' of the daemon process sockets is writable by other users (mode 0777)",
            dir.display()
        )),
        "{}",
        a.error_log()
    );
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Listens on a path as uid 65534 and reports how many bytes each
/// connection sent: an impostor in place of a daemon socket.
const FAKE_DAEMON: &str = r#"
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
os.setgroups([]); os.setgid(65534); os.setuid(65534)
s.listen(16)
print('listening', flush=True)
s.settimeout(30)
c, _ = s.accept()
c.settimeout(5)
n = 0
try:
    while True:
        d = c.recv(65536)
        if not d:
            break
        n += len(d)
except socket.timeout:
    pass
print('received', n, flush=True)
"#;

#[test]
fn stolen_socket_path_gets_no_request() {
    let a = Apache::start(
        "d_stolen",
        &daemon_conf("processes=1 threads=2 connect-timeout=5 socket-timeout=10"),
    );
    assert_eq!(info(&a).0.status, 200);
    let socks = daemon_sockets(&a);
    let path = socks[0].1.clone();
    std::fs::remove_file(&path).unwrap();
    let mut fake = std::process::Command::new("python3")
        .arg("-c")
        .arg(FAKE_DAEMON)
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(fake.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "listening");

    let r = a.get("/info");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        a.wait_log(
            "Refusing to send the request to WSGI daemon process 'site'",
            Duration::from_secs(5)
        ),
        "{}",
        a.error_log()
    );
    let log = a.error_log();
    assert!(
        log.contains("runs as uid 65534, but the group's daemon processes run as uid 33"),
        "{log}"
    );
    // The impostor got the connection but not one byte of the request.
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "received 0");
    let _ = fake.wait();
}

#[test]
fn file_wrapper_passes_the_file_to_apache() {
    let conf = daemon_conf("processes=1 threads=2")
        + "WSGIScriptAlias /r {APPS}/responses.wsgi\nWSGIScriptAlias /s {APPS}/responses.wsgi\n<Location /s>\nWSGIEnableSendfile On\n</Location>\n";
    let a = Apache::start("d_filewrapper", &conf);
    let data = std::fs::read(common::apps_dir().join("data.bin")).unwrap();
    let big: Vec<u8> = (0..12 * 1024 * 1024 + 7)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(a.app_path("big.bin"), &big).unwrap();
    common::chmod(&a.app_path("big.bin"), 0o644);
    let r = a.get("/r?file");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert!(r.body == data, "{} bytes", r.body.len());
    // The daemon passed the file; the Apache child sent it.
    assert!(
        a.wait_log(
            &format!("Sending {} bytes from offset 0 of a file passed by the daemon process (sendfile off)", data.len()),
            Duration::from_secs(5)
        ),
        "{}",
        a.error_log()
    );
    assert!(a.error_log().contains("process='site'"));
    let r = a.get("/r?file-offset");
    assert!(r.body == data[10..]);
    let r = a.get("/r?file-length");
    assert_eq!(r.header("Content-Length"), Some("1000"));
    assert!(r.body == data[..1000]);
    let h = a.request("HEAD", "/r?file", &[], b"");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    let r = a.get("/s?file-big");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big);
    assert!(a.error_log().contains(&format!(
        "Sending {} bytes from offset 0 of a file passed by the daemon process (sendfile on)",
        big.len()
    )));
}

#[test]
fn graceful_timeout_bounds_the_drain_and_an_idle_daemon_leaves_at_once() {
    let a = Apache::start(
        "d_graceful_timeout",
        &limits_conf("processes=1 threads=2 graceful-timeout=1 shutdown-timeout=1"),
    );
    // Idle: SIGUSR1 restarts it straight away, no timer involved.
    let idle = json_field(&info(&a).1, "pid");
    unsafe { libc::kill(idle.parse().unwrap(), libc::SIGUSR1) };
    assert!(a.wait_log(
        "Process eviction requested, triggering immediate shutdown 'site'.",
        Duration::from_secs(10)
    ));
    wait_gone(&idle);
    // Busy with a request that would take a minute: graceful-timeout (no
    // eviction-timeout given) is the deadline, then the daemon goes anyway.
    let busy = json_field(&info(&a).1, "pid");
    assert_ne!(busy, idle);
    let hung = get_in_thread(a.port, "/limits?sleep=60");
    assert!(a.wait_log("limits sleep=60 started", Duration::from_secs(30)));
    unsafe { libc::kill(busy.parse().unwrap(), libc::SIGUSR1) };
    assert!(a.wait_log(
        "Daemon process graceful timer expired 'site'.",
        Duration::from_secs(20)
    ));
    wait_gone(&busy);
    let (status, _) = hung.join().unwrap();
    assert_eq!(status, 502, "{}", a.error_log());
    let (r, body) = info(&a);
    assert_eq!(r.status, 200);
    assert_ne!(json_field(&body, "pid"), busy);
}

#[test]
fn shutdown_timeout_bounds_how_long_a_stopping_daemon_waits() {
    // Apache stops while a request hangs: the daemon gets shutdown-timeout
    // to finish, then is killed, and nothing is left behind.
    let mut a = Apache::start(
        "d_shutdown_timeout",
        &limits_conf("processes=1 threads=2 shutdown-timeout=1"),
    );
    let pid = json_field(&info(&a).1, "pid");
    let hung = get_in_thread(a.port, "/limits?sleep=120");
    assert!(a.wait_log("limits sleep=120 started", Duration::from_secs(30)));
    let log = a.stop();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "daemon {pid} outlived Apache:\n{log}"
    );
    // Apache's child relaying the hung request noticed the stop at once
    // (AH00045/AH00046: httpd had to SIGTERM/SIGKILL a child that hung).
    assert!(
        !log.contains("AH00045") && !log.contains("AH00046"),
        "an Apache child hung at shutdown:\n{log}"
    );
    // Its client was cut off (no response at all, or not a 200).
    assert!(hung.join().map_or(true, |(status, _)| status != 200));
}

/// The inodes of the connected UNIX sockets `pid` holds (the listener, in
/// state "unconnected", is left out).
fn connected_unix_sockets(pid: u32) -> std::collections::BTreeSet<u64> {
    let connected: std::collections::HashSet<u64> = std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(5) == Some(&"03")).then(|| f.get(6)?.parse().ok())?
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .filter(|i| connected.contains(i))
        .collect()
}

#[test]
fn connections_to_the_daemon_are_reused() {
    // One Apache worker thread: every request goes through it, over the one
    // connection it keeps to the daemon.
    let a = Apache::start_with(
        "d_reuse",
        &daemon_conf("processes=1 threads=2"),
        Options {
            threads: 1,
            servers: 1,
            ..Options::default()
        },
    );
    let (r, body) = info(&a);
    assert_eq!(r.status, 200, "{body}");
    let pid: u32 = json_field(&body, "pid").parse().unwrap();
    let first = connected_unix_sockets(pid);
    assert_eq!(first.len(), 1, "one kept connection: {first:?}");
    for _ in 0..10 {
        let (r, body) = info(&a);
        assert_eq!(r.status, 200, "{body}");
        assert_eq!(json_field(&body, "pid"), pid.to_string());
    }
    assert_eq!(connected_unix_sockets(pid), first, "the same connection");
    // A request with a body goes over a fresh connection, which is kept
    // afterwards in place of the old one.
    let r = a.request("POST", "/input", &[], b"some body bytes");
    assert_eq!(r.status, 200);
    let (r, _) = info(&a);
    assert_eq!(r.status, 200);
    assert_eq!(connected_unix_sockets(pid).len(), 1);
    assert!(!a.error_log().contains("Request to daemon process group"));
}

#[test]
fn yielded_blocks_reach_the_client_before_the_next_is_produced_in_daemon_mode() {
    // The Apache child passes on blocks that arrive together in one flush,
    // but must never hold one back while the daemon waits for the next.
    let conf = format!(
        "{}WSGIScriptAlias /s {{APPS}}/slow_stream.wsgi\n",
        daemon_conf("processes=1 threads=2")
    );
    let a = Apache::start("d_slowstream", &conf);
    common::assert_blocks_arrive_one_by_one(&a, "/s");
}

#[test]
fn wsgi_input_read_styles_across_body_credits() {
    // Over 64 KiB: the body moves against credits, in frames larger than
    // the application's reads, so pieces are split and kept between reads.
    let a = Apache::start("d_inputstyles", &daemon_conf("processes=1 threads=2"));
    let body: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    assert!(body.len() > 256 * 1024);
    let post = |q: &str| a.request("POST", &format!("/input?{q}"), &[], &body);
    assert_eq!(post("read").body, body);
    assert_eq!(post("readn").body, body);
    let lines: Vec<String> = body
        .split_inclusive(|&b| b == b'\n')
        .map(|l| format!("[{}]", String::from_utf8_lossy(l)))
        .collect();
    assert_eq!(post("readline").text(), lines.concat());
    let joined = body
        .split_inclusive(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("|");
    assert_eq!(post("iter").text(), joined);
}

/// Seeds 000 and 002: touching the `.wsgi` file restarts the daemon
/// processes ("mod_wsgi will reload all the daemon processes"), so the
/// modules the script imports are fresh too. The request that finds the
/// change is sent again to the new process: already the next request, with
/// or without a body, gets the new code. WSGIScriptReloading Off keeps the
/// process and the old code.
#[test]
fn touching_the_script_restarts_the_daemon_and_resends_the_request() {
    let a = Apache::start(
        "daemonrestart",
        "WSGIDaemonProcess reloaded processes=2 threads=2\n\
         WSGIDaemonProcess fixed processes=1 threads=2\n\
         WSGIScriptAlias /d {ROOT}/reload/app.wsgi process-group=reloaded application-group=%{GLOBAL}\n\
         WSGIScriptAlias /off {ROOT}/reload/app.wsgi process-group=fixed application-group=%{GLOBAL}\n\
         <Location /off>\n    WSGIScriptReloading Off\n</Location>\n\
         <Directory {ROOT}/reload>\n    Require all granted\n</Directory>\n",
    );
    let dir = a.root.join("reload");
    std::fs::create_dir_all(&dir).unwrap();
    common::chmod(&dir, 0o755);
    let write = |version: &str| {
        for (file, src) in [
            ("helper_mod.py", format!("VERSION = {version:?}\n")),
            (
                "app.wsgi",
                format!(
                    "import os, sys\nsys.path.insert(0, {:?})\nimport helper_mod\n\n\
                     def application(environ, start_response):\n    \
                     n = len(environ['wsgi.input'].read())\n    \
                     start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
                     return [('%s %d %d' % (helper_mod.VERSION, os.getpid(), n)).encode()]\n",
                    dir.display().to_string()
                ),
            ),
        ] {
            let p = dir.join(file);
            std::fs::write(&p, src).unwrap();
            common::chmod(&p, 0o644);
        }
    };
    let answer = |r: Response| -> (String, u32, usize) {
        assert_eq!(r.status, 200, "{}", r.text());
        let t = r.text();
        let mut f = t.split(' ');
        let v = f.next().unwrap().to_string();
        let pid = f.next().unwrap().parse().unwrap();
        let n = f.next().unwrap().parse().unwrap();
        (v, pid, n)
    };
    write("first");
    let mut old_pids = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (v, pid, _) = answer(a.get("/d"));
        assert_eq!(v, "first", "{}", a.error_log());
        old_pids.insert(pid);
    }
    let (v, fixed_pid, _) = answer(a.get("/off"));
    assert_eq!(v, "first");

    std::thread::sleep(Duration::from_millis(1100));
    write("second");
    // The very next requests see the new code, from new processes.
    let big = vec![b'x'; 200 * 1024];
    for body in [&b""[..], b"0123456789", &big[..], b"", b"abc"] {
        let r = if body.is_empty() {
            a.get("/d")
        } else {
            a.request("POST", "/d", &[], body)
        };
        let (v, pid, n) = answer(r);
        assert_eq!(v, "second", "{}", a.error_log());
        assert_eq!(n, body.len());
        assert!(!old_pids.contains(&pid), "served by an old process {pid}");
    }
    let log = a.error_log();
    assert!(
        log.contains("Force restart of process 'reloaded': WSGI script"),
        "{log}"
    );
    // The parent logs why the daemon left once it has reaped it.
    assert!(
        a.wait_log("its WSGI script file changed", Duration::from_secs(20)),
        "{}",
        a.error_log()
    );
    // Reloading off: same process, old code.
    assert_eq!(answer(a.get("/off")), ("first".to_string(), fixed_pid, 0));
}

// ---- Conformance with the C mod_wsgi (branch conform): what
// tests/conformance.rs found in daemon mode, checked without the C module.

#[test]
fn daemon_response_head_is_read_as_mod_wsgi_reads_it() {
    let a = Apache::start(
        "d_conform",
        "WSGIDaemonProcess conform processes=1 threads=2\nWSGIProcessGroup conform\nWSGIScriptAlias /c {APPS}/conform.wsgi\n",
    );
    let case = |c: &str| a.request("GET", "/c", &[("X-Case", c)], b"");
    // A Status header sets the status and is not sent.
    let r = case("header-status");
    assert_eq!(r.status, 404, "{}", r.raw_head);
    assert_eq!(r.header("Status"), None);
    // Repeated headers merge, Set-Cookie stays apart.
    let r = case("multi-header");
    let dup: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "X-Dup")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(dup, ["one, two"], "{}", r.raw_head);
    assert_eq!(
        r.headers.iter().filter(|(k, _)| k == "Set-Cookie").count(),
        2
    );
    // Values lose leading white space; the media type is lower-cased.
    assert!(
        case("header-spaces")
            .raw_head
            .contains("\r\nX-Spaces: padded  \r\n")
    );
    assert_eq!(
        case("content-type-case").header("Content-Type"),
        Some("text/html; Charset=UTF-8")
    );
    // httpd rewrites Last-Modified in RFC 1123 form.
    assert_eq!(
        case("last-modified-odd").header("Last-Modified"),
        Some("Sat, 01 Jan 2000 00:00:00 GMT")
    );
    // The listener is the Apache child's, not the daemon's idea of it.
    let body = case("env").text();
    assert!(
        body.contains("\nmod_wsgi.listener_host='127.0.0.1'\n"),
        "{body}"
    );
    assert!(
        body.contains(&format!("\nmod_wsgi.listener_port='{}'\n", a.port)),
        "{body}"
    );
}

#[test]
fn large_upload_goes_from_the_client_socket_to_the_daemon() {
    let a = Apache::start(
        "d_direct_body",
        &format!(
            "{}LogFormat \"%I %r\" io\nCustomLog {{ROOT}}/logs/access_log io\n",
            daemon_conf("processes=1 threads=4")
        ),
    );
    common::check_body_read_from_socket(&a, "/input");
}

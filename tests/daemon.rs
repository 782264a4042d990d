//! Daemon mode (WSGIDaemonProcess / WSGIProcessGroup) against a real Apache.
//! Every wait is bounded; time limits are generous (the machine is slow).

mod common;

use common::{Apache, Options, Response};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn json_field(body: &str, key: &str) -> String {
    // Tiny extraction for flat JSON written by daemon_info.wsgi.
    let pat = format!("\"{key}\": ");
    let start = body
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {body}"))
        + pat.len();
    let rest = &body[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().trim_matches('"').to_string()
}

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
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("chunk 0") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let first = start.elapsed();
    assert!(
        !String::from_utf8_lossy(&got).contains("chunk 1"),
        "chunk 1 came with chunk 0"
    );
    assert!(first < Duration::from_secs(3), "first chunk took {first:?}");
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

#[test]
fn maximum_requests_recycles_without_failed_requests() {
    let a = Apache::start_with(
        "d_maxreq",
        &daemon_conf("processes=2 threads=4 maximum-requests=20"),
        Options {
            threads: 40,
            ..Options::default()
        },
    );
    let port = a.port;
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let pids = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let failures = failures.clone();
            let pids = pids.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    s.write_all(b"GET /info HTTP/1.0\r\n\r\n").unwrap();
                    let mut v = Vec::new();
                    let _ = s.read_to_end(&mut v);
                    let r = Response::parse(&v, false);
                    if r.status != 200 {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        pids.lock().unwrap().insert(json_field(&r.text(), "pid"));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        failures.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "{}",
        a.error_log()
    );
    assert!(
        pids.lock().unwrap().len() >= 4,
        "processes were recycled: {:?}",
        pids.lock().unwrap()
    );
    assert!(
        a.error_log().contains("maximum-requests") || a.error_log().contains("Maximum requests")
    );
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
    let marker = a.root.join("run/seen-first-block");
    let mut s = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
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

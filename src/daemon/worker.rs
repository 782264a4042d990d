//! A daemon process (`WSGIDaemonProcess`): settles down after the fork
//! (signals, Apache's listeners, privileges, working directory, title),
//! starts Python, and serves requests from Apache's children on the
//! group's UNIX socket with a pool of `threads=` worker threads, speaking
//! `docs/daemon-protocol.md`. The main thread watches signals and the
//! timers (maximum-requests, inactivity-timeout, request-timeout,
//! restart-interval, startup-timeout, deadlock-timeout, cpu-time-limit,
//! SIGUSR1 with eviction-timeout) and leaves with `_exit` and the
//! supervisor's exit code for the reason, so the parent's log can say why.
//! The decisions themselves are in [`super::policy`].
//!
//! Script reloading: when `WSGIScriptReloading` is on and the request's
//! script changed since this process loaded it, the process restarts, as
//! mod_wsgi's daemons do, so that the modules the script imports are fresh
//! too: the request is answered with a *restarting* error frame, which makes
//! the Apache child send it again (to the replacement), and the process
//! drains its other requests and exits. Embedded mode re-executes the
//! script in place instead, as mod_wsgi does.
#![forbid(unsafe_code)]

use super::policy::{self, Drain, DrainCause, DrainStep, StartupTimer};
use super::protocol::{
    self, Decoder, ErrorKind, Frame, FrameReader, FrameWriter, Hello, Limits, Peer, RequestBody,
    RequestHead,
};
use super::supervisor::{RestartReason, STARTUP_FAILED_EXIT_CODE};
use super::sys;
use crate::config::DaemonProcess;
use crate::httpd::Server;
use crate::httpd::log::{self, Level};
use crate::httpd::server::ServerRef;
use crate::python::{init, modwsgi, script};
use crate::wsgi::{self, environ, response};
use pyo3::prelude::*;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest body credit the daemon grants at once.
const MAX_CREDIT: usize = 256 * 1024;

fn say(level: Level, msg: &str) {
    log::server(
        None,
        level,
        &format!("mod_wsgi (pid={}): {msg}", crate::process_id()),
    );
}

fn fail_startup(msg: &str) -> ! {
    say(Level::Alert, msg);
    leave(STARTUP_FAILED_EXIT_CODE)
}

/// The write end of the pipe to the parent: `R` once ready, then `X` and
/// the exit code just before leaving. httpd tells the parent only a number
/// that may be an exit code or a signal; this report says which.
static REPORT: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

/// Leaves the process with `code`, reporting it to the parent first.
fn leave(code: i32) -> ! {
    if let Some(fd) = REPORT.get() {
        sys::write_some(fd.as_fd(), &[b'X', code as u8]);
    }
    sys::exit_now(code)
}

/// What a dead daemon reported through its pipe (read by the parent).
#[derive(Debug, Default, Clone, Copy)]
pub struct ExitReport {
    pub ready: bool,
    pub exit_code: Option<i32>,
}

impl ExitReport {
    pub fn read(fd: std::os::fd::BorrowedFd<'_>) -> ExitReport {
        let mut buf = [0u8; 16];
        let n = sys::read_some(fd, &mut buf);
        let bytes = &buf[..n];
        ExitReport {
            ready: bytes.contains(&b'R'),
            exit_code: bytes
                .iter()
                .position(|&b| b == b'X')
                .and_then(|i| bytes.get(i + 1))
                .map(|&c| c as i32),
        }
    }
}

/// One request in flight, as the monitor sees it.
struct Active {
    started: Instant,
    conn: Arc<Conn>,
    request_id: String,
    uri: String,
}

/// State shared by the worker threads and the monitor.
struct Shared {
    group: DaemonProcess,
    listener: OwnedFd,
    /// uids allowed to connect: Apache's User (or socket-user) and root.
    allowed_uid: u32,
    limits: Limits,
    socket_timeout: Option<Duration>,
    stopping: AtomicBool,
    exit_code: AtomicI32,
    /// Requests taken on (maximum-requests counts these).
    requests: AtomicU64,
    total: AtomicU64,
    /// The listener and every connection between requests, one-shot: each
    /// readiness goes to exactly one worker thread.
    epoll: sys::Epoll,
    conns: Mutex<Slab>,
    /// Worker threads still running: the process exits only once they have
    /// finished the connections they accepted (or the drain deadline passed).
    alive: std::sync::atomic::AtomicUsize,
    active: Mutex<Vec<Option<Active>>>,
    last_activity: Mutex<Instant>,
    scripts: script::Scripts,
    start_us: i64,
    /// `startup-timeout`: armed by the first script load, cancelled by the
    /// first successful one.
    startup: Mutex<StartupTimer>,
    /// When the deadlock watch thread last got the GIL.
    gil_acquired: Mutex<Instant>,
    /// A graceful drain in progress (SIGUSR1, cpu-time-limit).
    drain: Mutex<Option<Drain>>,
}

impl Shared {
    fn stop(&self, code: i32) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            self.exit_code.store(code, Ordering::Release);
        }
    }
}

/// The daemon process's life, from the fork to `_exit`.
pub fn run(
    group: DaemonProcess,
    slot: u32,
    listener: OwnedFd,
    ready: OwnedFd,
    delay: Duration,
) -> ! {
    let parent = std::os::unix::process::parent_id();
    // What belongs to no request (start, stop, refused connections, output
    // outside requests) goes to the ErrorLog of the server the
    // WSGIDaemonProcess was read in, as with mod_wsgi.
    if let Some(s) = Server::by_id(group.scope.server_id) {
        log::set_process_server(s);
    }
    sys::reset_signals();
    sys::close_apache_listeners();
    let ready = REPORT.get_or_init(|| ready);
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let name = group.name.clone();

    // Who to run as: user= (or Apache's User), group= (or Apache's Group).
    let (apache_name, apache_uid, apache_gid) = sys::apache_user();
    let user = match group.user.as_deref() {
        Some(spec) => sys::lookup_user(spec).unwrap_or_else(|| {
            fail_startup(&format!(
                "Daemon process '{name}': the user '{spec}' given by user= does not exist."
            ))
        }),
        None => sys::lookup_user(&apache_name).unwrap_or(sys::User {
            name: apache_name.clone(),
            uid: apache_uid,
            gid: apache_gid,
            home: String::new(),
        }),
    };
    let gid = match group.group.as_deref() {
        Some(spec) => sys::lookup_group(spec).unwrap_or_else(|| {
            fail_startup(&format!(
                "Daemon process '{name}': the group '{spec}' given by group= does not exist."
            ))
        }),
        None => apache_gid,
    };
    let supplementary: Option<Vec<u32>> = group.supplementary_groups.as_ref().map(|names| {
        names
            .iter()
            .map(|n| {
                sys::lookup_group(n).unwrap_or_else(|| {
                    fail_startup(&format!(
                        "Daemon process '{name}': the supplementary group '{n}' does not exist."
                    ))
                })
            })
            .collect()
    });
    // cpu-priority= first: only root may lower the nice value.
    if group.cpu_priority != 0
        && let Err(e) = sys::set_priority(group.cpu_priority)
    {
        say(
            Level::Warning,
            &format!(
                "Unable to set CPU priority of {} for daemon process '{name}': {e}; it runs with the default priority.",
                group.cpu_priority
            ),
        );
    }
    if sys::is_root()
        && let Err(e) = sys::drop_privileges(&user.name, user.uid, gid, supplementary.as_deref())
    {
        fail_startup(&format!(
            "Daemon process '{name}' could not switch to uid={} gid={}: {e}.",
            user.uid, gid
        ));
    }
    // Connections made from now on get this process's uid as their peer's
    // (SO_PEERCRED), which Apache's children check before they send a
    // request: until now they saw root, the parent that created the socket.
    if let Err(e) = sys::relisten(listener.as_fd(), group.listen_backlog) {
        fail_startup(&format!(
            "Daemon process '{name}' could not listen on its socket again after switching user: {e}."
        ));
    }
    // After setuid, which clears it: die with the parent. If the parent
    // already died (before the signal was armed), leave now.
    let _ = sys::set_parent_death_signal(libc::SIGTERM);
    if std::os::unix::process::parent_id() != parent {
        leave(0);
    }
    if let Some(mask) = group.umask {
        sys::set_umask(mask);
    }
    let home = group.home.clone().unwrap_or_else(|| user.home.clone());
    if home.is_empty() || std::env::set_current_dir(&home).is_err() {
        if group.home.is_some() {
            say(
                Level::Warning,
                &format!(
                    "Daemon process '{name}': unable to change working directory to home directory '{home}'."
                ),
            );
        }
        let _ = std::env::set_current_dir("/");
    }
    let mut env: Vec<(&str, &str)> = vec![("USER", &user.name), ("LOGNAME", &user.name)];
    if !user.home.is_empty() {
        env.push(("HOME", &user.home));
    }
    if let Some(l) = group.lang.as_deref() {
        env.push(("LANG", l));
    }
    if let Some(l) = group.locale.as_deref() {
        env.push(("LC_ALL", l));
    }
    let _ = sys::set_env_single_threaded(&env);
    if let Some(title) = group.display_name() {
        sys::set_process_title(&title);
    }
    // memory-limit=, virtual-memory-limit=, cpu-time-limit=: the kernel
    // enforces them from here on (CPU time counts from the fork).
    for limit in policy::resource_limits(
        group.cpu_time_limit,
        group.memory_limit,
        group.virtual_memory_limit,
    ) {
        if let Err(e) = sys::set_rlimit(limit.resource, limit.soft) {
            say(
                Level::Warning,
                &format!(
                    "Daemon process '{name}': unable to set {}={} ({e}); it is not enforced.",
                    limit.resource.option(),
                    limit.soft
                ),
            );
        }
    }

    // Python.
    let main = Server::main();
    let mut settings = main
        .map(|s| crate::handler::settings(crate::module::server_config(s)))
        .unwrap_or_default();
    if let Some(h) = &group.python_home {
        settings.home = Some(h.clone());
    }
    say(
        Level::Info,
        &format!(
            "Starting process '{name}' with uid={}, gid={gid} and threads={}.",
            user.uid, group.threads
        ),
    );
    if let Err(e) = init::initialize(&settings) {
        fail_startup(&format!(
            "Daemon process '{name}': Python could not be initialised: {e}"
        ));
    }
    say(
        Level::Info,
        &format!("Initializing Python in daemon process '{name}'."),
    );
    if let Err(e) = init::with_gil(|py| setup_interpreter(py, &group)) {
        fail_startup(&format!("Daemon process '{name}': {e}"));
    }

    // Ready: the parent's supervisor learns this when the process exits.
    sys::write_some(ready.as_fd(), b"R");

    let timeout = group
        .socket_timeout
        .or_else(|| main.map(sys::server_timeout))
        .filter(|d| !d.is_zero());
    let allowed_uid = match group.socket_user.as_deref().and_then(sys::lookup_user) {
        Some(u) => u.uid,
        None => apache_uid,
    };
    let _ = sys::set_nonblocking(listener.as_fd(), true);
    let epoll = match sys::Epoll::new().and_then(|e| {
        e.add(listener.as_fd(), LISTENER)?;
        Ok(e)
    }) {
        Ok(e) => e,
        Err(e) => fail_startup(&format!("Daemon process '{name}': epoll failed: {e}")),
    };
    let threads = group.threads.max(1) as usize;
    let shared = Arc::new(Shared {
        limits: Limits {
            header_buffer_size: group
                .header_buffer_size
                .unwrap_or(protocol::DEFAULT_HEADER_BUFFER_SIZE),
            ..Limits::default()
        },
        group,
        listener,
        allowed_uid,
        socket_timeout: timeout,
        stopping: AtomicBool::new(false),
        exit_code: AtomicI32::new(0),
        requests: AtomicU64::new(0),
        epoll,
        conns: Mutex::new(Slab::default()),
        total: AtomicU64::new(0),
        alive: std::sync::atomic::AtomicUsize::new(threads),
        active: Mutex::new((0..threads).map(|_| None).collect()),
        last_activity: Mutex::new(Instant::now()),
        scripts: script::Scripts::default(),
        start_us: wsgi::now_micros(),
        startup: Mutex::new(StartupTimer::Idle),
        gil_acquired: Mutex::new(Instant::now()),
        drain: Mutex::new(None),
    });

    // Signals are taken by the monitor loop below, never by a handler.
    // SIGXCPU is cpu-time-limit's soft limit.
    let signals = [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGXCPU,
    ];
    sys::block_signals(&signals);
    let mut handles = Vec::new();
    for t in 0..threads {
        let sh = shared.clone();
        let mut b = std::thread::Builder::new().name(format!("wsgi-{t}"));
        if let Some(sz) = sh.group.stack_size {
            b = b.stack_size(sz as usize);
        }
        match b.spawn(move || {
            worker_thread(&sh, t);
            sh.alive.fetch_sub(1, Ordering::AcqRel);
        }) {
            Ok(h) => handles.push(h),
            Err(e) => fail_startup(&format!(
                "Daemon process '{name}': cannot start thread: {e}"
            )),
        }
    }
    let _ = slot;
    if shared.group.deadlock_timeout.is_some() {
        let sh = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("wsgi-deadlock".into())
            .stack_size(256 * 1024)
            .spawn(move || deadlock_watch(&sh));
        if let Err(e) = spawned {
            say(
                Level::Error,
                &format!(
                    "Unable to create deadlock-detection thread in daemon process '{name}': {e}; deadlock-timeout is not enforced."
                ),
            );
        }
    }
    monitor(&shared, &signals);

    // Drain: requests in flight may finish within the deadline.
    let code = shared.exit_code.load(Ordering::Acquire);
    let drain = if code == 0 {
        shared
            .group
            .shutdown_timeout
            .saturating_sub(Duration::from_secs(1))
    } else {
        shared
            .group
            .graceful_timeout
            .unwrap_or(Duration::from_secs(15))
    };
    let deadline = Instant::now() + drain;
    while Instant::now() < deadline && shared.alive.load(Ordering::Acquire) > 0 {
        // SIGTERM (Apache stopping) cuts the drain short; SIGXCPU repeats
        // every second once over cpu-time-limit and SIGUSR1 asks for what
        // is already happening.
        if let Some(sig) = sys::wait_signal(&signals, Duration::from_millis(50))
            && sig != libc::SIGXCPU
            && sig != libc::SIGUSR1
        {
            break;
        }
    }
    say(Level::Info, &format!("Stopping process '{name}'."));
    if shared.alive.load(Ordering::Acquire) == 0 {
        // Python's exit handlers, as a clean shutdown would run them.
        init::with_gil(|py| {
            if let Ok(m) = py.import("atexit") {
                let _ = m.call_method0("_run_exitfuncs");
            }
        });
    }
    leave(code)
}

fn active_count(sh: &Shared) -> usize {
    sh.active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|a| a.is_some())
        .count()
}

/// The main thread until the process should stop: signals and timers.
fn monitor(sh: &Shared, signals: &[libc::c_int]) {
    let name = &sh.group.name;
    let started = Instant::now();
    loop {
        if sh.stopping.load(Ordering::Acquire) {
            return;
        }
        if let Some(sig) = sys::wait_signal(signals, Duration::from_millis(200)) {
            let cause = match sig {
                libc::SIGUSR1 => Some(DrainCause::Eviction),
                libc::SIGXCPU => Some(DrainCause::CpuTimeLimit),
                _ => None,
            };
            match cause {
                Some(cause) => begin_drain(sh, cause),
                None => {
                    let signame = super::supervisor::signal_name(sig).unwrap_or("signal");
                    say(
                        Level::Info,
                        &format!("Daemon process '{name}' received {signame}; shutting down."),
                    );
                    sh.stop(0);
                    return;
                }
            }
        }
        let now = Instant::now();
        let drain = *sh.drain.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = drain
            && let DrainStep::Stop { log } = d.check(now, active_count(sh), name)
        {
            say(Level::Info, &log);
            sh.stop(drain_exit_code(d.cause));
            return;
        }
        if sh
            .startup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expired(now)
        {
            say(Level::Error, &policy::startup_expired_message(name));
            sh.stop(RestartReason::StartupTimeout.exit_code());
            return;
        }
        let gil = *sh.gil_acquired.lock().unwrap_or_else(|e| e.into_inner());
        if policy::deadlocked(gil, now, sh.group.deadlock_timeout) {
            // No Python can run, so no request can finish and no exit
            // handler can run: leave now.
            say(Level::Error, &policy::deadlock_message(name));
            leave(RestartReason::DeadlockTimeout.exit_code());
        }
        if let Some(limit) = sh.group.restart_interval
            && started.elapsed() >= limit
        {
            say(
                Level::Info,
                &format!("Application restart-interval expired, stopping process '{name}'."),
            );
            sh.stop(RestartReason::RestartInterval.exit_code());
            return;
        }
        if let Some(limit) = sh.group.inactivity_timeout {
            let idle = active_count(sh) == 0;
            let last = *sh.last_activity.lock().unwrap_or_else(|e| e.into_inner());
            if idle && last.elapsed() >= limit {
                say(
                    Level::Info,
                    &format!("Daemon process inactivity timer expired, stopping process '{name}'."),
                );
                sh.stop(RestartReason::InactivityTimeout.exit_code());
                return;
            }
        }
        if let Some(limit) = sh.group.request_timeout {
            let over: Vec<(Arc<Conn>, String, String)> = sh
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .flatten()
                .filter(|a| a.started.elapsed() >= limit)
                .map(|a| (a.conn.clone(), a.request_id.clone(), a.uri.clone()))
                .collect();
            if !over.is_empty() {
                // No more accepts here: the next request goes to the backlog
                // for the replacement (or another process of the group).
                sh.stop(RestartReason::RequestTimeout.exit_code());
                for (conn, id, uri) in &over {
                    say(
                        Level::Error,
                        &format!(
                            "Daemon process request time limit of {} s exceeded by request '{uri}' (request id {id}), stopping process '{name}'.",
                            limit.as_secs()
                        ),
                    );
                    conn.fail_from_monitor(
                        ErrorKind::RequestTimeout,
                        &format!(
                            "the request ran longer than request-timeout ({} s) and the daemon process is restarting",
                            limit.as_secs()
                        ),
                    );
                }
                // A Python thread cannot be interrupted safely: restart.
                leave(RestartReason::RequestTimeout.exit_code());
            }
        }
    }
}

/// SIGUSR1 or SIGXCPU: drain (keep serving until idle or the window
/// ends), or stop at once when idle. A second signal changes nothing.
fn begin_drain(sh: &Shared, cause: DrainCause) {
    let mut drain = sh.drain.lock().unwrap_or_else(|e| e.into_inner());
    if drain.is_some() {
        return;
    }
    let g = &sh.group;
    let window = Drain::window(cause, g.graceful_timeout, g.eviction_timeout);
    let (d, step) = Drain::begin(cause, Instant::now(), window, active_count(sh), &g.name);
    *drain = d;
    match step {
        DrainStep::Wait { log } => {
            if let Some(log) = log {
                say(Level::Info, &log);
            }
        }
        DrainStep::Stop { log } => {
            say(Level::Info, &log);
            sh.stop(drain_exit_code(cause));
        }
    }
}

fn drain_exit_code(cause: DrainCause) -> i32 {
    match cause {
        DrainCause::Eviction => RestartReason::Eviction.exit_code(),
        DrainCause::CpuTimeLimit => RestartReason::CpuTimeLimit.exit_code(),
    }
}

/// The deadlock-timeout watch: takes the GIL once a second and notes when
/// it got it. A C extension that holds the GIL stops this thread too, and
/// the monitor (which never needs the GIL) sees the note go stale.
fn deadlock_watch(sh: &Shared) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if sh.stopping.load(Ordering::Acquire) {
            return;
        }
        init::with_gil(|_| ());
        *sh.gil_acquired.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

/// After Py_Initialize: log streams, sys.argv, the `mod_wsgi` module with
/// this group's name, and python-path= (through site.addsitedir, so .pth
/// files count).
/// The shared interpreter set-up (log streams, `mod_wsgi`, restrictions,
/// threading imported on this main thread), then the group's own settings.
fn setup_interpreter(py: Python<'_>, group: &DaemonProcess) -> Result<(), String> {
    let default_sc = crate::config::ServerConfig::default();
    let sc = Server::main()
        .map(crate::module::server_config)
        .unwrap_or(&default_sc);
    let info = modwsgi::Info {
        process_group: &group.name,
        application_group: "",
        maximum_processes: group.processes,
        threads_per_process: group.threads.max(1),
    };
    crate::handler::setup_interpreter(py, sc, &info, &group.python_path)?;
    if let Some(interval) = group.switch_interval {
        let r = py
            .import("sys")
            .and_then(|m| m.call_method1("setswitchinterval", (interval.as_secs_f64(),)));
        r.map_err(|e| format!("switch-interval: sys.setswitchinterval failed: {e}"))?;
    }
    if let Some(eggs) = &group.python_eggs {
        let r = py
            .import("os")
            .and_then(|os| os.getattr("environ")?.set_item("PYTHON_EGG_CACHE", eggs));
        r.map_err(|e| format!("setting PYTHON_EGG_CACHE failed: {e}"))?;
    }
    Ok(())
}

// ------------------------------------------------------------ connections

/// The write side of a connection: shared by the response sink, the body
/// source (for credits) and the monitor (for a request-timeout error).
struct Conn {
    writer: Mutex<Option<FrameWriter<Sock>>>,
    /// Set once the response head went out.
    head_sent: AtomicBool,
    /// The request body's end (or an abort) was read.
    body_finished: AtomicBool,
    /// Apache gave up on the request (abort frame): do not reuse.
    aborted: AtomicBool,
}

impl Conn {
    fn with_writer<R>(
        &self,
        f: impl FnOnce(&mut FrameWriter<Sock>) -> Result<R, protocol::ProtocolError>,
    ) -> io::Result<R> {
        let mut g = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let w = g.as_mut().ok_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the request was abandoned")
        })?;
        f(w).map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()))
    }

    /// The monitor gives up on the request: an error frame if the head has
    /// not gone out yet (the client gets 504), then no more writes.
    fn fail_from_monitor(&self, kind: ErrorKind, msg: &str) {
        for _ in 0..50 {
            if let Ok(mut g) = self.writer.try_lock() {
                if let Some(w) = g.as_mut()
                    && !self.head_sent.load(Ordering::Acquire)
                {
                    protocol::encode_error(kind, msg.as_bytes(), w.pending_mut());
                    let _ = w.flush();
                }
                *g = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `ResponseSink` over the daemon socket.
struct SocketSink {
    conn: Arc<Conn>,
    limits: Limits,
}

impl wsgi::ResponseSink for SocketSink {
    fn start(&mut self, head: &wsgi::ResponseHead) -> io::Result<()> {
        let limits = self.limits;
        let status = wsgi::latin1_bytes(&head.status_line);
        let headers: Vec<(Vec<u8>, Vec<u8>)> = head
            .headers
            .iter()
            .map(|(k, v)| (wsgi::latin1_bytes(k), wsgi::latin1_bytes(v)))
            .collect();
        let r = self.conn.with_writer(|w| {
            protocol::encode_response_head(
                &status,
                headers.iter().map(|(k, v)| (k, v)),
                &limits,
                w.pending_mut(),
            )
        });
        if r.is_ok() {
            self.conn.head_sent.store(true, Ordering::Release);
        }
        r
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        // Blocks of a list or tuple: all there already, so they may wait in
        // the writer's buffer for the next write or the end frame (a small
        // response is one write: head, body and end).
        self.conn.with_writer(|w| w.body(data, false))
    }

    fn flush(&mut self) -> io::Result<()> {
        // An empty body frame carries the flush flag to the Apache child.
        self.conn.with_writer(|w| w.body(b"", true))
    }

    fn write_flush(&mut self, data: &[u8]) -> io::Result<()> {
        // Each block an iterator yields goes out now (PEP 3333), flagged so
        // that the Apache child flushes it to the client.
        self.conn.with_writer(|w| w.body(data, true))
    }

    fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> io::Result<()> {
        // The Apache child gets a descriptor of its own for the file (a new
        // open of it, so that its reads do not move the application's file
        // position) with a file frame, and sends the bytes itself with a
        // file bucket (sendfile when enabled): they never cross the socket.
        // `fd` stays owned by the Python file object.
        let dup = reopen_fd(fd)?;
        let mut frame = Vec::with_capacity(24);
        protocol::encode_file(offset, len, &mut frame);
        self.conn.with_writer(|w| {
            w.send_raw(|sock| {
                let sent = sys::send_with_fd(sock.as_fd(), &frame, dup.as_fd())?;
                io::Write::write_all(sock, &frame[sent..])
            })
        })
    }
}

/// Opens `/proc/self/fd/N` to read a file the application passed to
/// `wsgi.file_wrapper`, without taking its descriptor.
fn reopen_fd(fd: i32) -> io::Result<std::fs::File> {
    std::fs::File::open(format!("/proc/self/fd/{fd}"))
}

/// `BodySource` over the daemon socket: asks Apache for body bytes with
/// credits, as the application reads.
struct SocketBody {
    conn: Arc<Conn>,
    reader: Arc<Mutex<FrameReader<Sock>>>,
    /// Bytes still expected of the current body frame (it may arrive in
    /// pieces).
    in_frame: bool,
    done: bool,
    /// The body follows the head unasked: never send credits.
    follows: bool,
}

impl SocketBody {
    /// Reads up to `want` bytes, handing them to `put` (which copies them
    /// to the start of the caller's buffer) in one piece.
    fn read_with(&mut self, want: usize, put: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        if self.done || want == 0 {
            return Ok(0);
        }
        if !self.in_frame && !self.follows {
            // A whole credit whatever the application asked for: one round
            // trip per 256 KiB rather than per read() (the rest of the
            // frame waits in the socket and the reader's buffer).
            let n = MAX_CREDIT as u32;
            let credit = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
            self.conn.with_writer(|w| {
                protocol::encode_body_credit(credit, w.pending_mut());
                w.flush()
            })?;
        }
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // Pieces of at most `want` bytes: what the caller has no room
            // for stays in the reader's buffer (or the socket) until its
            // next read, never copied aside.
            let frame = reader
                .next_frame_max(want)
                .map_err(|e| io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()))?;
            match frame {
                Frame::Body { data, .. } => {
                    let n = data.len();
                    put(data);
                    self.in_frame = !reader.decoder().at_frame_boundary();
                    if n == 0 {
                        continue;
                    }
                    return Ok(n);
                }
                Frame::End => {
                    self.done = true;
                    self.conn.body_finished.store(true, Ordering::Release);
                    return Ok(0);
                }
                Frame::Abort { reason } => {
                    self.done = true;
                    self.conn.body_finished.store(true, Ordering::Release);
                    self.conn.aborted.store(true, Ordering::Release);
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!(
                            "Apache/mod_wsgi failed to read request body: {}",
                            String::from_utf8_lossy(reason)
                        ),
                    ));
                }
                Frame::Goodbye | Frame::Hello(_) => continue,
                _ => {
                    return Err(io::Error::other(
                        "unexpected frame while reading the request body",
                    ));
                }
            }
        }
    }
}

impl wsgi::BodySource for SocketBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len();
        self.read_with(want, &mut |d| buf[..d.len()].copy_from_slice(d))
    }

    fn read_uninit(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
        if self.in_frame && !self.done {
            // The rest of a frame that is not in the reader's buffer goes
            // from the socket straight into the application's buffer.
            let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(read) = reader.read_body_into(buf) {
                let n = read
                    .map_err(|e| io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()))?;
                self.in_frame = !reader.decoder().at_frame_boundary();
                return Ok(n);
            }
        }
        let want = buf.len();
        self.read_with(want, &mut |d| {
            let n = d.len().min(buf.len());
            sys::copy_to_uninit(&mut buf[..n], &d[..n]);
        })
    }
}

/// `wsgi.errors` and tracebacks in the daemon: the error log of the
/// VirtualHost the request came through, tagged with the client.
struct DaemonLog {
    /// None: the request named no server this process knows (this
    /// process's own server then).
    server: Option<ServerRef>,
    prefix: String,
}

impl wsgi::RequestLog for DaemonLog {
    fn log(&self, level: wsgi::LogLevel, msg: &str) {
        let l = match level {
            wsgi::LogLevel::Error => Level::Error,
            wsgi::LogLevel::Warning => Level::Warning,
            wsgi::LogLevel::Info => Level::Info,
            wsgi::LogLevel::Debug => Level::Debug,
        };
        let server = self.server.as_deref();
        log::server(server, l, &format!("{}{msg}", self.prefix));
    }
}

// ------------------------------------------------------------ worker loop

/// The listener's token in the epoll set; connections use their slab index.
const LISTENER: u64 = u64::MAX;

/// A daemon socket connection, shared by the request's reader and writer
/// (and the monitor) without `dup`ing the descriptor.
#[derive(Clone)]
struct Sock(Arc<UnixStream>);

impl std::os::fd::AsFd for Sock {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl io::Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl protocol::ReadUninit for Sock {
    fn read_uninit(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
        sys::recv_uninit(self.0.as_fd(), buf)
    }
}

impl io::Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// SO_SNDBUF of a connection from an Apache child when `send-buffer-size`
/// is not set.
const DEFAULT_SEND_BUFFER: u32 = 1024 * 1024;

/// A connection from an Apache child between requests. Connections are
/// reused (docs/daemon-protocol.md, "Connection reuse"): an idle one sits
/// in the epoll set, not on a thread.
struct Idle {
    stream: Arc<UnixStream>,
    /// The greetings went both ways with the first request.
    greeted: bool,
    /// Requests left before this connection is closed (with a goodbye).
    /// An Apache thread sticks to the daemon process that accepted its
    /// connection; renewing connections every few dozen requests lets
    /// the group's processes share the load (which process accepts a new
    /// connection is decided by whichever has a thread free first).
    requests_left: u32,
}

/// Connections by epoll token. A slot stays reserved while its
/// connection serves a request (its one-shot event is spent until rearmed).
#[derive(Default)]
struct Slab {
    slots: Vec<Option<Idle>>,
    reserved: Vec<bool>,
    free: Vec<usize>,
}

impl Slab {
    fn insert(&mut self, idle: Idle) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(idle);
                self.reserved[i] = true;
                i
            }
            None => {
                self.slots.push(Some(idle));
                self.reserved.push(true);
                self.slots.len() - 1
            }
        }
    }

    fn take(&mut self, token: u64) -> Option<Idle> {
        self.slots.get_mut(token as usize)?.take()
    }

    fn put_back(&mut self, token: u64, idle: Idle) {
        self.slots[token as usize] = Some(idle);
    }

    fn release(&mut self, token: u64) {
        let i = token as usize;
        if self.reserved.get(i).copied().unwrap_or(false) {
            self.slots[i] = None;
            self.reserved[i] = false;
            self.free.push(i);
        }
    }
}

/// How many requests a new connection may carry: 16 to 47, varied so that
/// the connections of one Apache child are not all renewed at once.
fn reuse_budget() -> u32 {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0x9e37_79b9);
    let x = NEXT.fetch_add(0x9e37_79b9, Ordering::Relaxed) ^ crate::process_id();
    16 + (x.rotate_left(7) % 32)
}

/// A worker thread's buffers, reused from request to request.
#[derive(Default)]
struct Buffers {
    read: Vec<u8>,
    write: Vec<u8>,
}

fn worker_thread(sh: &Shared, index: usize) {
    let mut bufs = Buffers::default();
    while !sh.stopping.load(Ordering::Acquire) {
        let token = match sh.epoll.wait_one(Duration::from_millis(250)) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                say(
                    Level::Error,
                    &format!("Daemon process '{}': epoll_wait failed: {e}", sh.group.name),
                );
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if token == LISTENER {
            if !sh.stopping.load(Ordering::Acquire) {
                accept_pending(sh);
                let _ = sh.epoll.rearm(sh.listener.as_fd(), LISTENER);
            }
            continue;
        }
        handle_conn(sh, index, token, &mut bufs);
    }
    // Stopping: serve the requests that already reached this process's
    // connections (an Apache child sent them and waits), accept no more.
    // Those connections then close with a goodbye.
    while let Ok(Some(token)) = sh.epoll.wait_one(Duration::ZERO) {
        if token != LISTENER {
            handle_conn(sh, index, token, &mut bufs);
        }
    }
}

/// Serves the request that made connection `token` readable, then puts
/// the connection back in the epoll set or closes it.
fn handle_conn(sh: &Shared, index: usize, token: u64, bufs: &mut Buffers) {
    let taken = sh
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(token);
    let Some(idle) = taken else { return };
    match serve_request(sh, index, idle, bufs) {
        (Some(idle), _) => {
            // Back in its slot before it is rearmed: the next event may go
            // to another thread at once.
            let stream = idle.stream.clone();
            sh.conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put_back(token, idle);
            if sh.epoll.rearm(stream.as_fd(), token).is_err() {
                let taken = sh
                    .conns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(token);
                if let Some(idle) = taken {
                    drop(stream);
                    close_conn(sh, token, idle);
                }
            }
        }
        (None, stream) => {
            if let Some(stream) = stream {
                let _ = sh.epoll.remove(stream.as_fd());
            }
            sh.conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(token);
        }
    }
    *sh.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
}

fn close_conn(sh: &Shared, token: u64, idle: Idle) {
    let _ = sh.epoll.remove(idle.stream.as_fd());
    sh.conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .release(token);
}

/// Accepts every waiting connection, checks who is at the other end, and
/// adds it to the epoll set.
fn accept_pending(sh: &Shared) {
    let name = &sh.group.name;
    for _ in 0..64 {
        let stream = match sys::accept(sh.listener.as_fd()) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                say(
                    Level::Error,
                    &format!("Daemon process '{name}': accept failed: {e}"),
                );
                return;
            }
        };
        match sys::peer_credentials(stream.as_fd()) {
            Ok((uid, _)) if uid == sh.allowed_uid || uid == 0 => {}
            Ok((uid, peer_pid)) => {
                say(
                    Level::Error,
                    &format!(
                        "Daemon process '{name}' refused a connection from pid {peer_pid} running as uid {uid}: only Apache's User (uid {}) and root may connect.",
                        sh.allowed_uid
                    ),
                );
                continue;
            }
            Err(e) => {
                say(
                    Level::Error,
                    &format!("Daemon process '{name}': SO_PEERCRED failed: {e}"),
                );
                continue;
            }
        }
        // Without send-buffer-size, a larger buffer than the system's
        // default (usually 208 KiB): a daemon writing a large response
        // blocks, and is woken, fewer times while its Apache child drains
        // it. The kernel caps it at net.core.wmem_max; bytes in it are
        // bytes in flight only.
        let sndbuf = sh.group.send_buffer_size.unwrap_or(DEFAULT_SEND_BUFFER);
        let _ = sys::set_buffer_size(stream.as_fd(), true, sndbuf);
        if let Some(n) = sh.group.receive_buffer_size {
            let _ = sys::set_buffer_size(stream.as_fd(), false, n);
        }
        let _ = stream.set_read_timeout(sh.socket_timeout);
        let _ = stream.set_write_timeout(sh.socket_timeout);
        let stream = Arc::new(stream);
        let token = sh
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Idle {
                stream: stream.clone(),
                greeted: false,
                requests_left: reuse_budget(),
            }) as u64;
        if let Err(e) = sh.epoll.add(stream.as_fd(), token) {
            say(
                Level::Error,
                &format!("Daemon process '{name}': epoll_ctl failed: {e}"),
            );
            sh.conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(token);
        }
    }
}

/// Serves the request waiting on `idle`. Returns the connection when it
/// may carry another request (a clean exchange, nothing left unread, the
/// process not stopping), else None and the stream to forget.
fn serve_request(
    sh: &Shared,
    index: usize,
    idle: Idle,
    bufs: &mut Buffers,
) -> (Option<Idle>, Option<Arc<UnixStream>>) {
    let name = &sh.group.name;
    let stream = idle.stream;
    let gone = |s: Arc<UnixStream>| (None, Some(s));
    let decoder = if idle.greeted {
        Decoder::resume(Peer::ApacheChild, sh.limits)
    } else {
        Decoder::new(Peer::ApacheChild, sh.limits)
    };
    // A request head and a small body fit the first read; an upload's
    // body frames grow the buffer to a full read's worth, for this
    // request only.
    let mut reader = FrameReader::with_sizes(
        Sock(stream.clone()),
        decoder,
        std::mem::take(&mut bufs.read),
        protocol::INITIAL_READ_BUFFER,
        protocol::DEFAULT_READ_BUFFER,
    );
    let head: RequestHead = loop {
        match reader.next_frame() {
            Ok(Frame::Hello(_)) => continue,
            Ok(Frame::RequestHead(h)) => break h.into_owned(),
            Ok(_) => {
                say(
                    Level::Error,
                    &format!("Daemon process '{name}': the Apache child sent no request head."),
                );
            }
            Err(e) => {
                // An idle connection closed by its Apache child is normal.
                if !e.is_clean_close() {
                    say(
                        Level::Error,
                        &format!("Daemon process '{name}': reading a request failed: {e}"),
                    );
                }
            }
        }
        // The thread keeps its buffer for its next connection: an Apache
        // child closing an idle connection is routine.
        bufs.read = reader.into_parts().1;
        return gone(stream);
    };
    let n = sh.requests.fetch_add(1, Ordering::AcqRel) + 1;
    let max = sh.group.maximum_requests;
    if max > 0 && n >= max {
        say(
            Level::Info,
            &format!(
                "Maximum requests reached, triggering immediate shutdown of process '{name}'."
            ),
        );
        sh.stop(RestartReason::MaximumRequests.exit_code());
    }
    let writer = if idle.greeted {
        FrameWriter::resume(
            Sock(stream.clone()),
            Peer::ApacheChild,
            std::mem::take(&mut bufs.write),
        )
    } else {
        let hello = Hello {
            role: Peer::Daemon,
            pid: crate::process_id(),
        };
        FrameWriter::with_buffer(
            Sock(stream.clone()),
            Peer::ApacheChild,
            &hello,
            std::mem::take(&mut bufs.write),
        )
    };
    let conn = Arc::new(Conn {
        writer: Mutex::new(Some(writer)),
        head_sent: AtomicBool::new(false),
        body_finished: AtomicBool::new(false),
        aborted: AtomicBool::new(false),
    });
    if head.process_group != name.as_bytes() {
        let msg = format!(
            "this daemon process serves group '{name}', not '{}'",
            String::from_utf8_lossy(&head.process_group)
        );
        let _ = conn.with_writer(|w| {
            protocol::encode_error(ErrorKind::Unavailable, msg.as_bytes(), w.pending_mut());
            w.flush()
        });
        return gone(stream);
    }
    if policy::queue_timed_out(
        head.queue_start_us,
        wsgi::now_micros(),
        sh.group.queue_timeout,
    ) {
        // Waited too long for a thread: the client has likely given up, so
        // answer 504 at once and spend the thread on fresher requests.
        let msg = policy::queue_timeout_message(name);
        say(Level::Error, &msg);
        let _ = conn.with_writer(|w| {
            protocol::encode_error(ErrorKind::QueueTimeout, msg.as_bytes(), w.pending_mut());
            w.flush()
        });
        drain_unread_body(&head, &mut reader);
        return gone(stream);
    }
    let var = |k: &[u8]| cgi_var(&head, k);
    let request_id =
        var(b"mod_wsgi.request_id").unwrap_or_else(|| format!("{:x}", head.request_id));
    let uri = var(b"REQUEST_URI").unwrap_or_default();
    {
        let mut active = sh.active.lock().unwrap_or_else(|e| e.into_inner());
        active[index] = Some(Active {
            started: Instant::now(),
            conn: conn.clone(),
            request_id: request_id.clone(),
            uri,
        });
    }
    let script = RequestScript::of(&head);
    let reader = Arc::new(Mutex::new(reader));
    // One GIL hold: the script-reloading check, then the request.
    let outcome = init::with_gil(|py| {
        let changed = head.script_reloading && sh.scripts.is_stale(py, &script.path, script.mtime);
        (!changed).then(|| run_request(py, sh, &head, &request_id, &conn, &reader, &script))
    });
    let Some(outcome) = outcome else {
        let script = &script.path;
        say(
            Level::Info,
            &format!(
                "Force restart of process '{name}': WSGI script '{script}' changed (request {request_id} is sent again to the new process)."
            ),
        );
        sh.stop(RestartReason::ScriptReloaded.exit_code());
        let _ = conn.with_writer(|w| {
            protocol::encode_error(
                ErrorKind::Restarting,
                b"the WSGI script changed; the daemon process restarts",
                w.pending_mut(),
            );
            w.flush()
        });
        sh.active.lock().unwrap_or_else(|e| e.into_inner())[index] = None;
        drain_unread_body(&head, &mut reader.lock().unwrap_or_else(|e| e.into_inner()));
        return gone(stream);
    };
    sh.active.lock().unwrap_or_else(|e| e.into_inner())[index] = None;
    let complete = matches!(outcome, response::Outcome::Complete);
    // A body sent unasked (or the rest of a body frame) may be left unread
    // if the application did not read it all: read it to its end, so the
    // connection holds nothing stale (it is bounded: 64 KiB unasked, one
    // credit otherwise). The Apache child is writing it regardless.
    let mut clean = !conn.aborted.load(Ordering::Acquire);
    {
        let mut r = reader.lock().unwrap_or_else(|e| e.into_inner());
        let must_drain = |r: &FrameReader<Sock>| {
            !r.decoder().at_frame_boundary()
                || (head.body_follows && !conn.body_finished.load(Ordering::Acquire))
        };
        while clean && must_drain(&r) {
            match r.next_frame() {
                Ok(Frame::Body { .. }) => {}
                Ok(Frame::End) => conn.body_finished.store(true, Ordering::Release),
                _ => clean = false,
            }
        }
        clean = clean && r.buffered().is_empty();
    }
    let stopping = sh.stopping.load(Ordering::Acquire);
    let requests_left = idle.requests_left.saturating_sub(1);
    let reuse = complete && clean && !stopping && requests_left > 0;
    // End of the response (with a goodbye when the connection will not be
    // reused), or an error frame in its place.
    let sent = match outcome {
        response::Outcome::Complete => conn.with_writer(|w| {
            protocol::encode_end(w.pending_mut());
            if !reuse {
                protocol::encode_goodbye(w.pending_mut());
            }
            w.flush()
        }),
        _ => conn.with_writer(|w| {
            protocol::encode_error(
                ErrorKind::Application,
                b"the WSGI application failed; see the traceback in the error log",
                w.pending_mut(),
            );
            w.flush()
        }),
    };
    // Take the buffers back for the next request on this thread.
    let writer = conn.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
    // The monitor abandons a request by taking its writer away.
    let abandoned = writer.is_none();
    if let Some(w) = writer {
        bufs.write = w.into_parts().1;
    }
    if let Ok(m) = Arc::try_unwrap(reader) {
        bufs.read = m
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_parts()
            .1;
    }
    if reuse && sent.is_ok() && !abandoned {
        (
            Some(Idle {
                stream,
                greeted: true,
                requests_left,
            }),
            None,
        )
    } else {
        gone(stream)
    }
}

/// A CGI variable of the request, as text (lossy UTF-8).
fn cgi_var(head: &RequestHead, name: &[u8]) -> Option<String> {
    head.cgi_vars
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The script file a request runs, stat'ed once per request.
struct RequestScript {
    /// WSGIHandlerScript when one is set (it serves the request in place of
    /// the requested file, still SCRIPT_FILENAME), else the script file.
    path: String,
    /// Its mtime with script reloading on, else 0.
    mtime: i64,
}

impl RequestScript {
    fn of(head: &RequestHead) -> RequestScript {
        let path = if head.handler_script.is_empty() {
            &head.script_filename
        } else {
            &head.handler_script
        };
        let path = String::from_utf8_lossy(path).into_owned();
        let mtime = if head.script_reloading {
            script::file_mtime(&path)
        } else {
            0
        };
        RequestScript { path, mtime }
    }
}

/// A small body sent unasked may be left unread when the request is
/// refused before the application runs: drain it before the connection is
/// closed, or closing would reset it (a UNIX socket closed with unread data
/// makes the peer's read fail) and the Apache child could lose the answer.
fn drain_unread_body(head: &RequestHead, reader: &mut FrameReader<Sock>) {
    if head.body_follows {
        let s = &reader.get_ref().0;
        if s.set_nonblocking(true).is_ok() {
            let mut sink = [0u8; 16384];
            for _ in 0..16 {
                match io::Read::read(&mut &**s, &mut sink) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
    }
}

fn run_request(
    py: Python<'_>,
    sh: &Shared,
    head: &RequestHead,
    request_id: &str,
    conn: &Arc<Conn>,
    reader: &Arc<Mutex<FrameReader<Sock>>>,
    script: &RequestScript,
) -> response::Outcome {
    let group = &sh.group;
    let var = |k: &[u8]| cgi_var(head, k);
    let client = match (var(b"REMOTE_ADDR"), var(b"REMOTE_PORT")) {
        (Some(a), Some(p)) => format!("[client {a}:{p}] "),
        (Some(a), None) => format!("[client {a}] "),
        _ => String::new(),
    };
    // The Apache child named the request's server by its position in the
    // server list, which is the same in this process.
    let server = Server::at_position(head.server_index).map(ServerRef::new);
    // sys.stdout, sys.stderr and `log` records on this thread go there too.
    let _current = server.map(|s| log::CurrentServer::enter(s, client.clone()));
    let reqlog: Arc<DaemonLog> = Arc::new(DaemonLog {
        server,
        prefix: client,
    });
    let filename = String::from_utf8_lossy(&head.script_filename).into_owned();
    let callable = String::from_utf8_lossy(&head.callable_object).into_owned();
    let application_group = String::from_utf8_lossy(&head.application_group).into_owned();
    let handler_script = String::from_utf8_lossy(&head.handler_script).into_owned();
    let cx = script::LoadContext {
        process_group: &group.name,
        application_group: &application_group,
        request_id,
    };
    let armed = sh
        .startup
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .on_attempt(Instant::now(), group.startup_timeout, &group.name);
    if let Some(msg) = armed {
        say(Level::Info, &msg);
    }
    let Some(app) = script::load_application(
        py,
        &sh.scripts,
        &script.path,
        script.mtime,
        head.script_reloading,
        &callable,
        &cx,
        &*reqlog,
    ) else {
        return response::Outcome::FailedBeforeHeaders;
    };
    let cancelled = sh
        .startup
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .on_loaded(&group.name);
    if let Some(msg) = cancelled {
        say(Level::Info, &msg);
    }
    let vars: Vec<(&[u8], &[u8])> = head.cgi_vars.iter().collect();
    let total = sh.total.fetch_add(1, Ordering::Relaxed) + 1;
    let (thread_id, thread_requests) = wsgi::thread_counters();
    let url_scheme = environ::url_scheme(|k| var(k));
    let port = var(b"SERVER_PORT").unwrap_or_default();
    let extras = environ::Extras {
        process_group: &group.name,
        application_group: &application_group,
        callable_object: &callable,
        handler_script: &handler_script,
        script_reloading: head.script_reloading,
        request_id,
        request_start: head.request_start_us as i64,
        script_start: wsgi::now_micros(),
        enable_sendfile: false,
        multithread: group.threads > 1,
        multiprocess: group.processes > 1 || group.multiprocess,
        url_scheme,
        total_requests: total,
        thread_id,
        thread_requests,
        listener_host: "",
        listener_port: &port,
        daemon: Some(environ::DaemonExtras {
            queue_start: head.queue_start_us as i64,
            daemon_connects: 1,
            daemon_restarts: 0,
            daemon_start: sh.start_us,
        }),
    };
    let body = SocketBody {
        conn: conn.clone(),
        reader: reader.clone(),
        in_frame: false,
        done: head.body == RequestBody::None,
        follows: head.body_follows,
    };
    let header_only = var(b"REQUEST_METHOD").as_deref() == Some("HEAD");
    let sink = SocketSink {
        conn: conn.clone(),
        limits: sh.limits,
    };
    response::serve(
        py,
        &app,
        &vars,
        &extras,
        Box::new(body),
        Box::new(sink),
        header_only,
        reqlog,
        &filename,
    )
}

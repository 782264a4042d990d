//! Apache's parent process side of daemon mode: binds each group's socket,
//! forks its `processes=` daemons, supervises them through httpd's
//! `apr_proc_other_child` callbacks (with the pure decisions of
//! [`super::supervisor`]), and stops them when the configuration pool goes
//! (stop, restart, graceful restart: httpd itself never signals them).
//!
//! The parent is single-threaded and never runs Python: everything here
//! runs in post_config's second pass, in the DEATH callbacks from httpd's
//! main loop, and in a pconf cleanup.
#![forbid(unsafe_code)]

use super::supervisor::{
    Action, Decision, Event, ExitStatus, Level, Signal, Slot, SupervisorConfig,
};
use super::sys::{self, OtherChild, PoolGlobal, ProcRecord};
use crate::config::DaemonProcess;
use crate::httpd::log::{self, Level as ApLevel};
use crate::httpd::{Pool, Server};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One configured daemon process group, as this generation runs it.
pub struct Group {
    pub config: DaemonProcess,
    /// The UNIX socket the group's daemons accept on.
    pub socket: PathBuf,
    /// The listening socket: held by the parent (so that connections queue
    /// while a daemon restarts), inherited by the daemons, closed in every
    /// Apache child by [`child_init`]. None when binding failed.
    listener: Option<OwnedFd>,
    /// Why the group cannot serve, when it cannot.
    pub broken: Option<String>,
    /// The uid its daemon processes run as (`user=`, else Apache's `User`;
    /// this process's own uid when Apache does not start as root). None
    /// when `user=` names no user (the daemons then cannot start).
    pub daemon_uid: Option<u32>,
    slots: Vec<SlotRec>,
}

struct SlotRec {
    slot: Slot,
    proc_: ProcRecord,
    /// Read end of the pipe the daemon writes one byte to once it is ready.
    ready: Option<OwnedFd>,
}

/// Every group of this configuration generation.
pub struct Registry {
    parent_pid: u32,
    pub groups: Vec<Group>,
}

static REGISTRY: PoolGlobal<Mutex<Registry>> = PoolGlobal::new();

fn lock() -> Option<std::sync::MutexGuard<'static, Registry>> {
    REGISTRY
        .get()
        .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The uid the daemon processes of group `name` run as: Apache's children
/// check it against the peer of the socket they connected to.
pub fn daemon_uid(name: &str) -> Option<u32> {
    let reg = REGISTRY.get()?;
    let reg = reg.lock().unwrap_or_else(|e| e.into_inner());
    reg.groups
        .iter()
        .find(|g| g.config.name == name)?
        .daemon_uid
}

/// The group's socket path and configuration, for the Apache child side.
pub fn find_group(name: &str) -> Option<(PathBuf, &'static DaemonProcess, Option<String>)> {
    let reg = REGISTRY.get()?;
    let reg = reg.lock().unwrap_or_else(|e| e.into_inner());
    let g = reg.groups.iter().find(|g| g.config.name == name)?;
    // The configuration itself lives in the pool-owned global config.
    let cfg = crate::module::globals()?
        .daemon_processes()
        .iter()
        .find(|d| d.name == name)?;
    Some((g.socket.clone(), cfg, g.broken.clone()))
}

fn supervisor_config(d: &DaemonProcess) -> SupervisorConfig {
    SupervisorConfig {
        shutdown_timeout: d.shutdown_timeout,
        // Apache stopping goes straight to SIGTERM; the daemons restart
        // themselves for planned reasons.
        graceful_timeout: Duration::ZERO,
        ..SupervisorConfig::default()
    }
}

fn ap_level(l: Level) -> ApLevel {
    match l {
        Level::Debug => ApLevel::Debug,
        Level::Info => ApLevel::Info,
        Level::Notice => ApLevel::Notice,
        Level::Warning => ApLevel::Warning,
        Level::Error => ApLevel::Error,
    }
}

fn say(level: ApLevel, msg: &str) {
    log::server(
        None,
        level,
        &format!("mod_wsgi (pid={}): {msg}", crate::process_id()),
    );
}

fn key(group: usize, slot: usize) -> usize {
    ((group << 16) | slot) + 1
}

/// The socket path for a group: `<prefix>.<parent pid>.<generation>.<id>.sock`
/// (without the generation under `WSGISocketRotation Off`) with the prefix from WSGISocketPrefix (relative to ServerRoot) or
/// `<DefaultRuntimeDir>/wsgi`.
fn socket_path(pconf: &Pool, s: &Server, d: &DaemonProcess) -> Option<PathBuf> {
    let sc = crate::module::server_config(s);
    let prefix = match sc.socket_prefix() {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => sys::runtime_path(pconf, p, true)?,
        None => sys::runtime_path(pconf, "wsgi", false)?,
    };
    // WSGISocketRotation Off drops the generation, so that an old child
    // still finishing keep-alive requests after a graceful restart reaches
    // the new daemons at the same path.
    let pid = crate::process_id();
    Some(PathBuf::from(if sc.socket_rotation() {
        format!("{prefix}.{pid}.{}.{}.sock", sys::config_generation(), d.id)
    } else {
        format!("{prefix}.{pid}.{}.sock", d.id)
    }))
}

/// Warns when the directory of a daemon socket lets other users replace the
/// socket (writable by others without the sticky bit): requests, with their
/// cookies and credentials, could then reach an impostor. Apache's children
/// refuse a peer that is not the daemon's user, but a socket directory only
/// root can write to is the real protection.
fn warn_if_others_may_write(socket: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = socket.parent() else { return };
    let Ok(m) = std::fs::metadata(dir) else {
        return;
    };
    let mode = m.mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        say(
            ApLevel::Warning,
            &format!(
                "The directory '{}' of the daemon process sockets is writable by other users (mode {:04o}) \
                 without the sticky bit: another user could replace a socket. Make it writable by root only \
                 (WSGISocketPrefix, DefaultRuntimeDir).",
                dir.display(),
                mode & 0o7777
            ),
        );
    }
}

/// post_config, second pass: bind, fork and register every group's daemons.
pub(crate) fn post_config(pconf: &Pool, s: &Server) {
    let Some(globals) = crate::module::globals() else {
        return;
    };
    let daemons = globals.daemon_processes();
    if daemons.is_empty() {
        return;
    }
    let (_, apache_uid, apache_gid) = sys::apache_user();
    let mut groups = Vec::new();
    for d in daemons {
        let unimplemented = d.unimplemented_options();
        if !unimplemented.is_empty() {
            // A warning, not info: a user relying on, say, memory-limit must
            // see at start-up that it is not enforced.
            say(
                ApLevel::Warning,
                &format!(
                    "WSGIDaemonProcess '{}': these options are accepted but not acted on by mod_wsgi-rs yet: {}.",
                    d.name,
                    unimplemented.join(", ")
                ),
            );
        }
        // socket-user= lets another uid (mod_ruid2, ITK) connect instead.
        let (sock_uid, sock_gid) = match d.socket_user.as_deref().and_then(sys::lookup_user) {
            Some(u) => (u.uid, u.gid),
            None => (apache_uid, apache_gid),
        };
        let daemon_uid = if !sys::is_root() {
            Some(sys::euid())
        } else {
            match d.user.as_deref() {
                Some(spec) => sys::lookup_user(spec).map(|u| u.uid),
                None => Some(apache_uid),
            }
        };
        let mut broken = None;
        let socket = socket_path(pconf, s, d).unwrap_or_default();
        warn_if_others_may_write(&socket);
        let listener = match sys::listen_unix(&socket, d.listen_backlog, sock_uid, sock_gid) {
            Ok(fd) => Some(fd),
            Err(e) => {
                let why = format!(
                    "Couldn't create the socket '{}' for daemon process group '{}': {e}. Check WSGISocketPrefix and DefaultRuntimeDir: the directory must exist and be writable by root.",
                    socket.display(),
                    d.name
                );
                say(ApLevel::Alert, &why);
                broken = Some(why);
                None
            }
        };
        let gi = groups.len();
        let slots = (0..d.processes)
            .map(|i| SlotRec {
                slot: Slot::new(d.name.clone(), i, supervisor_config(d)),
                proc_: ProcRecord::new_in(pconf, key(gi, i as usize)),
                ready: None,
            })
            .collect();
        groups.push(Group {
            config: d.clone(),
            socket,
            listener,
            broken,
            daemon_uid,
            slots,
        });
    }
    REGISTRY.set(
        pconf,
        Mutex::new(Registry {
            parent_pid: crate::process_id(),
            groups,
        }),
    );
    // Stop the daemons when this generation ends. Registered before the
    // other-child records, so it runs after their UNREGISTER callbacks.
    pconf.on_cleanup(Box::new(shutdown));
    let Some(mut reg) = lock() else { return };
    for gi in 0..reg.groups.len() {
        if reg.groups[gi].listener.is_none() {
            continue;
        }
        for si in 0..reg.groups[gi].slots.len() {
            let d = reg.groups[gi].slots[si]
                .slot
                .handle(Event::Start, Instant::now());
            carry_out(&mut reg, gi, si, d, Duration::ZERO);
        }
    }
}

/// Does what the supervisor decided, feeding back the outcome.
fn carry_out(reg: &mut Registry, gi: usize, si: usize, d: Decision, delay: Duration) {
    if let Some(line) = &d.log {
        say(ap_level(line.level), &line.message);
    }
    match d.action {
        Action::Nothing => {}
        Action::Signal { pid, signal } => {
            let sig = match signal {
                Signal::Graceful => libc::SIGUSR1,
                Signal::Terminate => libc::SIGTERM,
                Signal::Kill => libc::SIGKILL,
            };
            let _ = sys::kill(pid, sig);
        }
        Action::Spawn => {
            let now = Instant::now() + delay;
            let next = match spawn(reg, gi, si, delay) {
                Ok(pid) => {
                    reg.groups[gi].slots[si].proc_.watch(pid);
                    Event::Spawned { pid }
                }
                Err(e) => Event::SpawnFailed {
                    error: e.to_string(),
                },
            };
            let d2 = reg.groups[gi].slots[si].slot.handle(next, now);
            if let Some(line) = &d2.log {
                say(ap_level(line.level), &line.message);
            }
        }
    }
}

/// Forks slot `si` of group `gi`. The new process waits `delay` first (the
/// supervisor's backoff: the parent has no timer of its own, so the wait
/// happens in the child, which is killed like any other on shutdown).
fn spawn(reg: &mut Registry, gi: usize, si: usize, delay: Duration) -> std::io::Result<u32> {
    let (ready_r, ready_w) = sys::pipe()?;
    let config = reg.groups[gi].config.clone();
    let (mut ready_r, mut ready_w) = (Some(ready_r), Some(ready_w));
    let pid = sys::fork_daemon(|| {
        // In the daemon: keep only our own group's listener.
        drop(ready_r.take());
        let Some(ready_w) = ready_w.take() else {
            sys::exit_now(super::supervisor::STARTUP_FAILED_EXIT_CODE)
        };
        let mut listener = None;
        for (i, g) in reg.groups.iter_mut().enumerate() {
            let l = g.listener.take();
            if i == gi {
                listener = l;
            }
            for s in g.slots.iter_mut() {
                s.ready = None;
            }
        }
        match listener {
            Some(l) => super::worker::run(config, si as u32, l, ready_w, delay),
            None => sys::exit_now(super::supervisor::STARTUP_FAILED_EXIT_CODE),
        }
    })?;
    drop(ready_w);
    reg.groups[gi].slots[si].ready = ready_r;
    Ok(pid)
}

/// httpd's callback about a registered daemon process.
pub(crate) fn on_other_child(event: OtherChild, key: usize) {
    let (gi, si) = ((key - 1) >> 16, (key - 1) & 0xffff);
    // httpd passes the exit code *or* the signal number, without saying
    // which; the daemon's pipe tells: it writes its exit code there first.
    let code = match event {
        OtherChild::Death(st) => st,
        OtherChild::Lost => 0,
        // UNREGISTER: the configuration pool is going; `shutdown` stops
        // the daemons once, for all groups.
        OtherChild::Unregister | OtherChild::Other => return,
    };
    let Some(mut reg) = lock() else { return };
    if reg.parent_pid != crate::process_id() {
        return;
    }
    let Some(rec) = reg.groups.get_mut(gi).and_then(|g| g.slots.get_mut(si)) else {
        return;
    };
    let Some(pid) = rec.slot.pid() else { return };
    let now = Instant::now();
    let report = rec
        .ready
        .take()
        .map(|fd| super::worker::ExitReport::read(fd.as_fd()))
        .unwrap_or_default();
    if report.ready {
        rec.slot.handle(Event::Ready { pid }, now);
    }
    let status = match report.exit_code {
        Some(c) => ExitStatus::Code(c),
        None if matches!(event, OtherChild::Lost) => ExitStatus::Code(0),
        // No exit report: a signal ended it (or it died before it could
        // report, which only start-up failures do, with codes >= 100).
        None if code > 0 && code < 64 => ExitStatus::Signal {
            signal: code,
            core_dumped: false,
        },
        None => ExitStatus::Code(code),
    };
    let d = rec.slot.handle(Event::Exited { pid, status }, now);
    let wake = d.wake_at;
    carry_out(&mut reg, gi, si, d, Duration::ZERO);
    // Backing off: fork now, and let the child wait out the delay.
    if let Some(until) = wake {
        let rec = &mut reg.groups[gi].slots[si];
        let d = rec.slot.handle(Event::Tick, until);
        let delay = until.saturating_duration_since(now);
        carry_out(&mut reg, gi, si, d, delay);
    }
}

/// Every Apache child: close the daemons' listening sockets and pipes, so
/// that after a graceful restart nobody connects into a dead daemon's
/// backlog, and daemons' deaths are seen.
pub(crate) fn child_init() {
    let Some(mut reg) = lock() else { return };
    for g in reg.groups.iter_mut() {
        g.listener = None;
        for s in g.slots.iter_mut() {
            s.ready = None;
        }
    }
}

/// pconf cleanup in the parent: SIGTERM every daemon, wait up to
/// shutdown-timeout, SIGKILL the rest, remove the sockets.
fn shutdown() {
    let Some(mut reg) = lock() else { return };
    if reg.parent_pid != crate::process_id() {
        // An Apache child (or daemon) running pool cleanups at exit.
        return;
    }
    let now = Instant::now();
    for gi in 0..reg.groups.len() {
        for si in 0..reg.groups[gi].slots.len() {
            let d = reg.groups[gi].slots[si].slot.handle(Event::Shutdown, now);
            carry_out(&mut reg, gi, si, d, Duration::ZERO);
        }
    }
    let longest = reg
        .groups
        .iter()
        .map(|g| g.config.shutdown_timeout)
        .max()
        .unwrap_or_default();
    let give_up = Instant::now() + longest + Duration::from_secs(3);
    loop {
        let mut waiting = false;
        let now = Instant::now();
        for gi in 0..reg.groups.len() {
            for si in 0..reg.groups[gi].slots.len() {
                let rec = &mut reg.groups[gi].slots[si];
                if rec.slot.is_stopped() {
                    continue;
                }
                let Some(pid) = rec.slot.pid() else {
                    let d = rec.slot.handle(Event::Shutdown, now);
                    carry_out(&mut reg, gi, si, d, Duration::ZERO);
                    continue;
                };
                waiting = true;
                let d = match sys::try_wait(pid) {
                    Ok(Some(st)) => rec.slot.handle(
                        Event::Exited {
                            pid,
                            status: ExitStatus::from_wait_status(st),
                        },
                        now,
                    ),
                    // ECHILD: reaped by httpd already.
                    Err(_) => rec.slot.handle(
                        Event::Exited {
                            pid,
                            status: ExitStatus::Code(0),
                        },
                        now,
                    ),
                    Ok(None) => rec.slot.handle(Event::Tick, now),
                };
                carry_out(&mut reg, gi, si, d, Duration::ZERO);
            }
        }
        if !waiting || Instant::now() > give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in reg.groups.iter_mut() {
        g.listener = None;
        if !g.socket.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&g.socket);
        }
    }
}

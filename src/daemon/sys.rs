//! The system calls daemon mode needs: fork, privilege dropping, signal
//! reset, UNIX sockets with peer credentials, and Apache's process
//! bookkeeping (`apr_proc_other_child_*`). One of the few rooms with
//! `unsafe`; everything here is a thin wrapper that takes `OwnedFd` /
//! `BorrowedFd`, never raw descriptor integers, and turns -1 into
//! `io::Error` through [`cvt`].

use crate::httpd::sys as ap;
use std::ffi::{CStr, CString, c_void};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// -1 → the thread's `errno` as an `io::Error`.
pub fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// What [`fork`] returned on this side.
pub enum Forked {
    /// In the parent: the child's pid.
    Parent(u32),
    /// In the child.
    Child,
}

/// `fork()`.
///
/// # Safety
/// The calling process must be single-threaded (Apache's parent in
/// post_config or in its main loop, never an Apache child). In a
/// multi-threaded process the child could only do async-signal-safe work
/// until it execs; here, with one thread, the child owns a consistent copy
/// of every lock and may settle down (drop privileges, start Python). The
/// child must leave with [`exit_now`], never `exit()`, so that httpd's
/// `atexit` handlers do not run the parent's pool cleanups in it.
unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller guarantees a single-threaded process.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        crate::note_process_id();
        Forked::Child
    } else {
        Forked::Parent(pid as u32)
    })
}

/// `_exit(code)`: leaves without atexit handlers or stdio flushing.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// In a fresh daemon process: every signal back to its default action,
/// SIGPIPE ignored (a client going away must be an `EPIPE`, not a death),
/// and an empty signal mask.
pub fn reset_signals() {
    // SAFETY: plain signal-disposition calls on this (single-threaded)
    // process; the sigset is initialised by sigemptyset.
    unsafe {
        for sig in 1..libc::SIGRTMIN() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Blocks `signals` in the calling thread (and the threads it creates
/// later), so that one thread can take them with [`wait_signal`].
pub fn block_signals(signals: &[libc::c_int]) {
    // SAFETY: sigset initialised before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// `sigtimedwait` on `signals` (which must be blocked): the signal taken,
/// or None when `timeout` passed.
pub fn wait_signal(signals: &[libc::c_int], timeout: Duration) -> Option<libc::c_int> {
    // SAFETY: sigset and timespec initialised; siginfo may be NULL.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        let rc = libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
        if rc > 0 { Some(rc) } else { None }
    }
}

/// `kill(pid, sig)`.
pub fn kill(pid: u32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: sends a signal; no memory involved.
    cvt(unsafe { libc::kill(pid as libc::pid_t, sig) }).map(|_| ())
}

/// `waitpid(pid, WNOHANG)`: the raw wait status if the child has ended.
pub fn try_wait(pid: u32) -> io::Result<Option<i32>> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let rc = cvt(unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) })?;
    Ok(if rc == 0 { None } else { Some(status) })
}

/// `prctl(PR_SET_PDEATHSIG, sig)`: the kernel sends `sig` to this process
/// when its parent dies. `setuid` clears it, so call it afterwards.
pub fn set_parent_death_signal(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }).map(|_| ())
}

/// `setrlimit(resource, soft)`, keeping the hard limit (an unprivileged
/// process may not raise it; a hard limit below `soft` caps `soft`).
pub fn set_rlimit(resource: super::policy::Resource, soft: u64) -> io::Result<()> {
    use super::policy::Resource;
    let which = match resource {
        Resource::Cpu => libc::RLIMIT_CPU,
        Resource::Data => libc::RLIMIT_DATA,
        Resource::AddressSpace => libc::RLIMIT_AS,
    };
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer.
    cvt(unsafe { libc::getrlimit(which, &mut lim) })?;
    let soft = soft as libc::rlim_t;
    lim.rlim_cur = if lim.rlim_max != libc::RLIM_INFINITY {
        soft.min(lim.rlim_max)
    } else {
        soft
    };
    // SAFETY: lim is initialised.
    cvt(unsafe { libc::setrlimit(which, &lim) }).map(|_| ())
}

/// `setpriority(PRIO_PROCESS, 0, nice)`.
pub fn set_priority(nice: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    cvt(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) }).map(|_| ())
}

/// `umask(mask)`.
pub fn set_umask(mask: u32) {
    // SAFETY: no memory involved.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// A user as `getpwnam`/`getpwuid` found it.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

fn passwd_to_user(p: *const libc::passwd) -> Option<User> {
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-NULL passwd from getpw*_r points into our buffer.
    unsafe {
        Some(User {
            name: CStr::from_ptr((*p).pw_name).to_string_lossy().into_owned(),
            uid: (*p).pw_uid,
            gid: (*p).pw_gid,
            home: if (*p).pw_dir.is_null() {
                String::new()
            } else {
                CStr::from_ptr((*p).pw_dir).to_string_lossy().into_owned()
            },
        })
    }
}

/// Looks a user up by name, or by `#uid`.
pub fn lookup_user(spec: &str) -> Option<User> {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16384];
    if let Some(n) = spec.strip_prefix('#') {
        let uid: u32 = n.parse().ok()?;
        // SAFETY: buffers are valid for their lengths; out is checked.
        unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
        return passwd_to_user(out).or(Some(User {
            name: String::new(),
            uid,
            gid: u32::MAX,
            home: String::new(),
        }));
    }
    let c = CString::new(spec).ok()?;
    // SAFETY: as above.
    unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    passwd_to_user(out)
}

/// Looks a group up by name, or by `#gid`.
pub fn lookup_group(spec: &str) -> Option<u32> {
    if let Some(n) = spec.strip_prefix('#') {
        return n.parse().ok();
    }
    let c = CString::new(spec).ok()?;
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::group = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: buffers valid for their lengths; out checked.
    unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    if out.is_null() {
        None
    } else {
        // SAFETY: non-NULL result points at gr.
        Some(unsafe { (*out).gr_gid })
    }
}

/// Drops root: `setgid(gid)`, then `initgroups(user, gid)` (or, with
/// `supplementary`, `setgroups` with exactly those groups), then
/// `setuid(uid)`. Refuses uid 0: a WSGI daemon never runs as root.
pub fn drop_privileges(
    user: &str,
    uid: u32,
    gid: u32,
    supplementary: Option<&[u32]>,
) -> io::Result<()> {
    if uid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "WSGI process blocked from running as root",
        ));
    }
    // SAFETY: plain credential calls with valid arguments.
    unsafe {
        cvt(libc::setgid(gid))?;
        match supplementary {
            Some(groups) => {
                let mut all = vec![gid];
                all.extend_from_slice(groups);
                cvt(libc::setgroups(all.len(), all.as_ptr()))?;
            }
            None => {
                let c = CString::new(user).unwrap_or_default();
                if !user.is_empty() {
                    cvt(libc::initgroups(c.as_ptr(), gid))?;
                } else {
                    cvt(libc::setgroups(1, &gid))?;
                }
            }
        }
        cvt(libc::setuid(uid))?;
    }
    Ok(())
}

/// `geteuid()`.
pub fn euid() -> u32 {
    // SAFETY: no memory involved.
    unsafe { libc::geteuid() }
}

/// Whether this process runs as root (`geteuid() == 0`).
pub fn is_root() -> bool {
    // SAFETY: no memory involved.
    unsafe { libc::geteuid() == 0 }
}

/// Sets environment variables (LANG, LC_ALL, HOME, ...) in a fresh daemon
/// process. Refuses when other threads exist (they could be reading the
/// environment).
pub fn set_env_single_threaded(vars: &[(&str, &str)]) -> io::Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1);
    if threads > 1 {
        return Err(io::Error::other(
            "cannot change the environment: other threads run",
        ));
    }
    for (k, v) in vars {
        // SAFETY: single-threaded (checked above).
        unsafe { std::env::set_var(k, v) };
    }
    Ok(())
}

/// Shows `title` in `ps` and `/proc/PID/cmdline`: overwrites the argv area
/// httpd was started with (its strings are contiguous) and sets the thread
/// name (`comm`, 15 bytes) with `PR_SET_NAME`.
pub fn set_process_title(title: &str) {
    let c = CString::new(title.replace('\0', "")).unwrap_or_default();
    // SAFETY: PR_SET_NAME copies at most 16 bytes from a NUL-terminated
    // string. The argv strings come from the kernel's argument area, laid
    // out back to back; we write only inside [argv[0], end of last arg),
    // computed from the strings themselves, in a single-threaded process.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0);
        let Some(s) = crate::httpd::Server::main() else {
            return;
        };
        let process = (*s.as_ptr()).process;
        if process.is_null() {
            return;
        }
        let argc = (*process).argc as usize;
        let argv = (*process).argv as *const *mut libc::c_char;
        if argc == 0 || argv.is_null() || (*argv).is_null() {
            return;
        }
        let start = *argv;
        let mut end = start;
        for i in 0..argc {
            let a = *argv.add(i);
            if a.is_null() || a != end {
                break;
            }
            end = a.add(libc::strlen(a) + 1);
        }
        let room = end.offset_from(start) as usize;
        if room < 2 {
            return;
        }
        std::ptr::write_bytes(start, 0, room);
        let bytes = c.as_bytes();
        let n = bytes.len().min(room - 1);
        std::ptr::copy_nonoverlapping(bytes.as_ptr() as *const libc::c_char, start, n);
    }
}

/// `ap_close_listeners()`: closes Apache's listening sockets (port 80 ...)
/// in a daemon process, so it never accepts an HTTP connection.
pub fn close_apache_listeners() {
    unsafe extern "C" {
        fn ap_close_listeners();
    }
    // SAFETY: httpd's own function, resolved from the apache2 binary; it
    // only closes the listener sockets of this process.
    unsafe { ap_close_listeners() };
}

/// `pipe2(O_CLOEXEC | O_NONBLOCK)`: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-int array; on success both are new fds we own.
    unsafe {
        cvt(libc::pipe2(
            fds.as_mut_ptr(),
            libc::O_CLOEXEC | libc::O_NONBLOCK,
        ))?;
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// A pipe through which `splice` moves bytes from one socket to another as
/// page references, without copying them into this process.
pub struct SplicePipe {
    r: OwnedFd,
    w: OwnedFd,
    /// Bytes it holds at most.
    pub capacity: usize,
}

impl SplicePipe {
    /// A pipe of `size` bytes if the kernel allows (pipe-max-size), else of
    /// its default size.
    pub fn new(size: usize) -> io::Result<SplicePipe> {
        let (r, w) = pipe()?;
        // SAFETY: fcntl on a pipe we own.
        let set = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
        let capacity = if set > 0 {
            set
        } else {
            // SAFETY: as above.
            cvt(unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) })?
        } as usize;
        Ok(SplicePipe { r, w, capacity })
    }

    pub fn write_end(&self) -> BorrowedFd<'_> {
        self.w.as_fd()
    }

    /// Moves exactly `len` bytes that are in the pipe to `to`, blocking as
    /// writes to `to` block (its SO_SNDTIMEO applies). After an error the
    /// pipe may still hold some of them and must be dropped.
    pub fn drain_into(&self, to: BorrowedFd<'_>, len: usize) -> io::Result<()> {
        let mut left = len;
        while left > 0 {
            // SAFETY: plain descriptors; the kernel moves page references.
            let n = unsafe {
                libc::splice(
                    self.r.as_raw_fd(),
                    std::ptr::null_mut(),
                    to.as_raw_fd(),
                    std::ptr::null_mut(),
                    left,
                    libc::SPLICE_F_MOVE,
                )
            };
            if n > 0 {
                left -= n as usize;
            } else if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            } else {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// Copies `src` to the start of `dst` (as long as `src`), which may be
/// uninitialised (`<[MaybeUninit]>::write_copy_of_slice` is newer than the
/// supported Rust).
pub fn copy_to_uninit(dst: &mut [std::mem::MaybeUninit<u8>], src: &[u8]) {
    assert!(src.len() <= dst.len());
    // SAFETY: dst is valid for src.len() writes; a shared and a unique
    // borrow cannot overlap.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr() as *mut u8, src.len()) };
}

/// One `recv` into memory that may be uninitialised (the kernel only
/// writes to it): bytes read, 0 at end of stream.
pub fn recv_uninit(s: BorrowedFd<'_>, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes and says how many.
    let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr() as *mut c_void, buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One `read` into `buf` (the fd is non-blocking): bytes read, 0 when
/// nothing is there.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> usize {
    // SAFETY: reads at most buf.len() bytes into buf.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr() as *mut c_void, buf.len()) };
    n.max(0) as usize
}

/// One `write` of `data` (best effort, for a few bytes on a pipe).
pub fn write_some(fd: BorrowedFd<'_>, data: &[u8]) {
    // SAFETY: writes at most data.len() bytes from data.
    unsafe { libc::write(fd.as_raw_fd(), data.as_ptr() as *const c_void, data.len()) };
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd.
    unsafe {
        let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags))?;
    }
    Ok(())
}

/// `poll` for readability: true when readable, false on timeout.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
    match rc {
        -1 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// Whether `fd` has bytes to read right now (`poll` with a zero timeout).
pub fn readable_now(fd: BorrowedFd<'_>) -> bool {
    poll_readable(fd, Duration::ZERO).unwrap_or(false)
}

/// Whether an idle connection kept for reuse still looks usable: one
/// `recv(MSG_PEEK | MSG_DONTWAIT)`. Nothing to read (`EAGAIN`) means alive;
/// end of file, an error, or bytes the peer sent unasked (a goodbye) mean
/// it must not be reused.
pub fn idle_connection_alive(s: BorrowedFd<'_>) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: reads at most one byte into b, without consuming it.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            b.as_mut_ptr() as *mut c_void,
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// An epoll instance whose entries are one-shot: an event disables its fd
/// until [`Epoll::rearm`], so exactly one thread handles each readiness
/// (`epoll_wait` wakes one waiter per event).
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
            u64: token,
        };
        // SAFETY: valid fds and a valid event struct.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd.as_raw_fd(), &mut ev) })?;
        Ok(())
    }

    /// Watches `fd` for readability (one-shot), reporting `token`.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token)
    }

    /// Watches `fd` again after its one event was handled.
    pub fn rearm(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token)
    }

    /// Stops watching `fd` (closing it does too, when it has no duplicate).
    pub fn remove(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: valid fds and a valid event struct.
        cvt(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                &mut ev,
            )
        })?;
        Ok(())
    }

    /// Waits up to `timeout` for one event: its token, or None.
    pub fn wait_one(&self, timeout: Duration) -> io::Result<Option<u64>> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: room for one event.
        let rc = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), &mut ev, 1, ms) };
        match rc {
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            0 => Ok(None),
            _ => Ok(Some(ev.u64)),
        }
    }
}

/// The uid and pid of the process at the other end (`SO_PEERCRED`).
pub fn peer_credentials(s: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let mut cred: libc::ucred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid out-pointers of the right size.
    cvt(unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut c_void,
            &mut len,
        )
    })?;
    Ok((cred.uid, cred.pid as u32))
}

/// Sets `SO_SNDBUF` / `SO_RCVBUF`.
pub fn set_buffer_size(s: BorrowedFd<'_>, send: bool, size: u32) -> io::Result<()> {
    let v = size as libc::c_int;
    // SAFETY: v is an int of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            if send {
                libc::SO_SNDBUF
            } else {
                libc::SO_RCVBUF
            },
            &v as *const libc::c_int as *const c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

fn sockaddr_un(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the socket path is {} bytes long, but UNIX socket paths are limited to {}; use a shorter WSGISocketPrefix",
                bytes.len(),
                addr.sun_path.len() - 1
            ),
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    Ok((addr, len))
}

/// Binds and listens on a UNIX stream socket at `path` (an old file there
/// is removed first), then gives it to `uid:gid` with mode 0600, so only
/// Apache's children (and root) may connect.
pub fn listen_unix(path: &Path, backlog: i32, uid: u32, gid: u32) -> io::Result<OwnedFd> {
    let (addr, len) = sockaddr_un(path)?;
    let _ = std::fs::remove_file(path);
    // SAFETY: socket returns a new fd we own; addr/len describe a valid
    // sockaddr_un; the path strings are NUL-terminated CStrings.
    unsafe {
        let fd = OwnedFd::from_raw_fd(cvt(libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?);
        cvt(libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            len,
        ))?;
        cvt(libc::listen(fd.as_raw_fd(), backlog))?;
        use std::os::unix::ffi::OsStrExt;
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in socket path"))?;
        if is_root() {
            cvt(libc::chown(c.as_ptr(), uid, gid))?;
        }
        cvt(libc::chmod(c.as_ptr(), 0o600))?;
        Ok(fd)
    }
}

/// `listen()` again on a socket that is already listening, after the
/// daemon dropped its privileges: Linux records the credentials of the
/// last caller of `listen()` and hands them to every later `connect()` as
/// the peer's `SO_PEERCRED`, so Apache's children then see the daemon's
/// uid instead of root's (the parent's, which created the socket).
pub fn relisten(listener: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: listen on a socket fd we hold; no pointers.
    cvt(unsafe { libc::listen(listener.as_raw_fd(), backlog) }).map(|_| ())
}

/// Room for this many descriptors in one `recvmsg`; the daemon sends one
/// per file frame, and Linux never joins two of its messages carrying
/// descriptors into one read.
const MAX_FDS_PER_READ: usize = 4;
/// Room for `CMSG_SPACE` of that many descriptors (40 bytes on Linux).
const CONTROL_WORDS: usize = 8;

/// `sendmsg` of `bytes` with `fd` attached (SCM_RIGHTS): the receiver gets
/// its own descriptor for the same open file. Returns how many bytes went;
/// the descriptor travels with the first of them, so the caller writes any
/// rest as ordinary bytes.
pub fn send_with_fd(sock: BorrowedFd<'_>, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<usize> {
    let raw = fd.as_raw_fd();
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    // u64s keep the control buffer aligned for cmsghdr (as in recv_with_fds).
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: msg points at iov and control, which outlive the call; the
    // cmsg header is written inside control, which CMSG_SPACE sized for one
    // int; sendmsg only reads them.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut c_void;
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::c_int, raw);
        loop {
            let n = libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// `recvmsg` into `buf`, appending any descriptors that came with the bytes
/// (SCM_RIGHTS, close-on-exec) to `fds`. More descriptors than fit in one
/// read is an error (the kernel closed the rest).
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let int = std::mem::size_of::<libc::c_int>();
    // SAFETY: pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE((int * MAX_FDS_PER_READ) as u32) } as usize;
    // u64s keep the control buffer aligned for cmsghdr; on the stack, as
    // this runs for every read of a daemon's response.
    let mut control = [0u64; CONTROL_WORDS];
    assert!(space <= CONTROL_WORDS * 8);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: msg points at iov (over buf) and control, which outlive the
    // call; the kernel writes at most msg_controllen bytes of control and
    // buf.len() bytes of buf. The cmsg walk stays inside msg_controllen as
    // CMSG_NXTHDR guarantees, and each received descriptor is new and ours.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut c_void;
        msg.msg_controllen = space as _;
        let n = loop {
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let header = data as usize - cmsg as usize;
                let count = ((*cmsg).cmsg_len as usize).saturating_sub(header) / int;
                for i in 0..count {
                    let fd = std::ptr::read_unaligned((data as *const libc::c_int).add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the daemon process sent more file descriptors at once than expected",
            ));
        }
        Ok(n)
    }
}

/// `accept4(SOCK_CLOEXEC)` on a listener; `WouldBlock` when another
/// process or thread took the connection first (non-blocking listener).
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<UnixStream> {
    // SAFETY: NULL address pointers are allowed; the new fd is ours.
    unsafe {
        let fd = cvt(libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        ))?;
        Ok(UnixStream::from_raw_fd(fd))
    }
}

/// Connects to the UNIX socket at `path`, retrying while the daemon's
/// backlog is full or the socket is missing or refusing (a daemon being
/// restarted) until `timeout` passes. Returns the last error then.
pub fn connect_unix(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let (addr, len) = sockaddr_un(path)?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        // SAFETY: a new fd we own; addr/len describe a valid sockaddr_un.
        let attempt = unsafe {
            let fd = OwnedFd::from_raw_fd(cvt(libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            ))?);
            match cvt(libc::connect(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_un as *const libc::sockaddr,
                len,
            )) {
                Ok(_) => Ok(fd),
                Err(e) => Err(e),
            }
        };
        match attempt {
            Ok(fd) => {
                set_nonblocking(fd.as_fd(), false)?;
                return Ok(UnixStream::from(fd));
            }
            Err(e) => {
                let retry = matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN)
                        | Some(libc::ECONNREFUSED)
                        | Some(libc::ENOENT)
                        | Some(libc::EINTR)
                );
                if !retry || Instant::now() + pause > deadline {
                    return Err(e);
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

// ------------------------------------------------ Apache's process records

/// The `AP_SQ_CONFIG_GEN` counter: how many times the configuration was
/// read (grows with each restart).
pub fn config_generation() -> i32 {
    // SAFETY: reads httpd's global state.
    unsafe { ap::ap_state_query(ap::AP_SQ_CONFIG_GEN as libc::c_int) }
}

/// `ap_runtime_dir_relative(p, name)` (DefaultRuntimeDir), or
/// `ap_server_root_relative` for an explicit relative prefix.
pub fn runtime_path(pool: &crate::httpd::Pool, name: &str, server_root: bool) -> Option<String> {
    let c = CString::new(name).ok()?;
    // SAFETY: both return a string allocated in pool, or NULL.
    unsafe {
        let p = if server_root {
            ap::ap_server_root_relative(pool.as_ptr(), c.as_ptr())
        } else {
            ap::ap_runtime_dir_relative(pool.as_ptr(), c.as_ptr())
        };
        if p.is_null() {
            None
        } else {
            Some(CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }
}

/// Apache's `User` and `Group` (`ap_unixd_config`): (name, uid, gid).
pub fn apache_user() -> (String, u32, u32) {
    // SAFETY: set up by mod_unixd before post_config, only read here.
    unsafe {
        let c = (&raw const ap::ap_unixd_config).as_ref().expect("static");
        let name = if c.user_name.is_null() {
            String::new()
        } else {
            CStr::from_ptr(c.user_name).to_string_lossy().into_owned()
        };
        (name, c.user_id, c.group_id)
    }
}

/// The server's `Timeout` directive.
pub fn server_timeout(s: &crate::httpd::Server) -> Duration {
    // SAFETY: a live server_rec; reads one field.
    let us = unsafe { (*s.as_ptr()).timeout };
    Duration::from_micros(us.max(0) as u64)
}

/// `apr_proc_t` for one daemon process, allocated in the configuration
/// pool so that it lives exactly as long as httpd's registration of it.
pub struct ProcRecord {
    proc_: *mut ap::apr_proc_t,
    pool: *mut ap::apr_pool_t,
    key: usize,
    registered: bool,
}

// SAFETY: only touched by Apache's single-threaded parent.
unsafe impl Send for ProcRecord {}

impl ProcRecord {
    /// A zeroed `apr_proc_t` in `pool`.
    pub fn new_in(pool: &crate::httpd::Pool, key: usize) -> ProcRecord {
        let size = std::mem::size_of::<ap::apr_proc_t>();
        // SAFETY: apr_palloc returns pool memory of `size` bytes (it aborts
        // on allocation failure); zeroing makes a valid apr_proc_t.
        unsafe {
            let p = ap::apr_palloc(pool.as_ptr(), size) as *mut ap::apr_proc_t;
            std::ptr::write_bytes(p, 0, 1);
            ProcRecord {
                proc_: p,
                pool: pool.as_ptr(),
                key,
                registered: false,
            }
        }
    }

    /// Watches process `pid`: `apr_proc_other_child_register(proc,
    /// trampoline, key, NULL, pool)`, after unregistering the previous
    /// process (APR forgets a dead child's `proc` before calling us, so a
    /// stale registration must go: a second alert on it would crash). httpd's
    /// parent then calls [`other_child_trampoline`] with `key` when the
    /// process dies (DEATH, from its main loop) or when the pool is cleared
    /// (UNREGISTER).
    pub fn watch(&mut self, pid: u32) {
        // SAFETY: proc_ lives in pool, and the registration is removed by
        // APR's own cleanup on the same pool; `key` is an integer, not a
        // pointer, so nothing dangles. Only the single-threaded parent calls this.
        unsafe {
            if self.registered {
                // (APR dereferences NULL for a key it does not know.)
                ap::apr_proc_other_child_unregister(self.key as *mut c_void);
            }
            self.registered = true;
            (*self.proc_).pid = pid as libc::pid_t;
            ap::apr_proc_other_child_register(
                self.proc_,
                Some(other_child_trampoline),
                self.key as *mut c_void,
                std::ptr::null_mut(),
                self.pool,
            )
        };
    }
}

/// Forks a daemon process: runs `child` in the new process (it never
/// returns; it must leave with [`exit_now`]) and returns the child's pid in
/// the parent.
///
/// Refuses (with an error) when this process has more than one thread: a
/// forked copy of a multi-threaded process may only do async-signal-safe
/// work, while `child` initialises Python. Apache's parent is
/// single-threaded in post_config and in its main loop.
pub fn fork_daemon(child: impl FnOnce() -> std::convert::Infallible) -> io::Result<u32> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1);
    if threads > 1 {
        return Err(io::Error::other(format!(
            "refusing to fork a daemon process from a process with {threads} threads"
        )));
    }
    // SAFETY: single-threaded (checked above), so the child has a
    // consistent copy of every lock and may run ordinary code.
    match unsafe { fork() }? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child));
            let _ = r;
            exit_now(super::supervisor::STARTUP_FAILED_EXIT_CODE)
        }
    }
}

/// A value owned by a configuration pool and reachable from hooks that get
/// no pointer to it (the daemon registry): set once per generation, cleared
/// by the pool's cleanup before the memory goes.
pub struct PoolGlobal<T>(std::sync::atomic::AtomicPtr<T>);

impl<T: 'static> PoolGlobal<T> {
    pub const fn new() -> Self {
        PoolGlobal(std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()))
    }

    /// Moves `value` into `pool` and publishes it until the pool is cleared.
    pub fn set(&'static self, pool: &crate::httpd::Pool, value: T) {
        use std::sync::atomic::Ordering;
        let p = pool.give(value);
        self.0.store(p, Ordering::Release);
        pool.on_cleanup(Box::new(move || {
            let _ = self.0.compare_exchange(
                p,
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }));
    }

    /// The value, if this generation has one.
    ///
    /// Callers are Apache's single-threaded parent, or a child process that
    /// only reads after child_init; see [`PoolGlobal::get_mut`].
    pub fn get(&self) -> Option<&'static T> {
        // SAFETY: the pointer is live until the pool cleanup clears it;
        // shared reads only (mutation happens in the single-threaded parent
        // or in child_init before worker threads start).
        unsafe { self.0.load(std::sync::atomic::Ordering::Acquire).as_ref() }
    }
}

/// Maintenance callback for [`register_other_child`]: forwards to
/// `daemon::parent::on_other_child`, catching panics (the parent must
/// survive anything).
pub unsafe extern "C" fn other_child_trampoline(
    reason: libc::c_int,
    data: *mut c_void,
    status: libc::c_int,
) {
    let event = match reason as u32 {
        ap::APR_OC_REASON_DEATH => OtherChild::Death(status),
        ap::APR_OC_REASON_LOST => OtherChild::Lost,
        ap::APR_OC_REASON_UNREGISTER => OtherChild::Unregister,
        _ => OtherChild::Other,
    };
    let key = data as usize;
    let _ = std::panic::catch_unwind(move || super::parent::on_other_child(event, key));
}

/// What httpd told us about a daemon process.
#[derive(Debug, Clone, Copy)]
pub enum OtherChild {
    /// It died with this raw wait status.
    Death(i32),
    /// It was reaped elsewhere (status unknown).
    Lost,
    /// The pool it was registered with is being cleared.
    Unregister,
    /// RESTART, RUNNING and friends: nothing to do.
    Other,
}

/// A byte buffer in its own anonymous mapping: the pages go back to the
/// system when it is dropped. A buffer of this size from `malloc` would
/// stay with the thread's malloc arena once glibc has raised its mmap
/// threshold (it does so after the first such buffer is freed), resident
/// for the rest of the process's life.
pub struct MappedBuf {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

impl MappedBuf {
    /// `len` zero bytes (the kernel's fresh pages, touched only as used).
    pub fn new(len: usize) -> io::Result<MappedBuf> {
        let len = len.max(1);
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(p as *mut u8).ok_or_else(|| io::Error::other("mmap"))?;
        Ok(MappedBuf { ptr, len })
    }
}

impl std::ops::Deref for MappedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the mapping is len bytes, readable, zero-filled by the
        // kernel and alive until drop; `&self` keeps it borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for MappedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for MappedBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this address and
        // length, and no borrow of it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut c_void, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn descriptors_travel_with_their_bytes_in_order() {
        let dir = std::env::temp_dir().join(format!("mwsgi-fd-{}", crate::process_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (p1, p2) = (dir.join("one"), dir.join("two"));
        std::fs::write(&p1, b"first file").unwrap();
        std::fs::write(&p2, b"second file").unwrap();
        let (f1, f2) = (
            std::fs::File::open(&p1).unwrap(),
            std::fs::File::open(&p2).unwrap(),
        );
        let (mut a, b) = UnixStream::pair().unwrap();
        assert_eq!(send_with_fd(a.as_fd(), b"head1", f1.as_fd()).unwrap(), 5);
        a.write_all(b"plain").unwrap();
        assert_eq!(send_with_fd(a.as_fd(), b"head2", f2.as_fd()).unwrap(), 5);
        drop(a);
        let mut got = Vec::new();
        let mut fds = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = recv_with_fds(b.as_fd(), &mut buf, &mut fds).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"head1plainhead2");
        assert_eq!(fds.len(), 2);
        let mut texts = Vec::new();
        for fd in fds {
            let mut s = String::new();
            std::fs::File::from(fd).read_to_string(&mut s).unwrap();
            texts.push(s);
        }
        assert_eq!(texts, ["first file", "second file"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_mapped_buffer_is_zeroed_and_writable_end_to_end() {
        let mut b = MappedBuf::new(256 * 1024).unwrap();
        assert_eq!(b.len(), 256 * 1024);
        assert!(b.iter().all(|&x| x == 0));
        let last = b.len() - 1;
        b[0] = 1;
        b[last] = 2;
        assert_eq!((b[0], b[last]), (1, 2));
    }
}

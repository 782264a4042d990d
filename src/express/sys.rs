//! The few system calls wsgi-express needs that std does not offer:
//! user ids, blocking and waiting for the signals it forwards to Apache,
//! kill, and tying Apache's life to ours. The only unsafe code of
//! `express`.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The signals forwarded to Apache: stop (INT, TERM), restart (HUP),
/// graceful restart (USR1), graceful stop (WINCH).
const FORWARDED: [libc::c_int; 5] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGWINCH,
];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the set we own;
    // a zeroed sigset_t is a valid argument to sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

pub fn getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Blocks the forwarded signals in this thread, and so in every thread
/// spawned after it; they are then taken with [`wait_signal`]. Call before
/// spawning any thread; children get them back with [`prepare_child`].
pub fn block_forwarded_signals() -> io::Result<()> {
    let set = forwarded_set();
    // SAFETY: `set` is an initialised sigset_t; a null old-set is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits for one of the forwarded signals (which must be blocked).
pub fn wait_signal() -> io::Result<libc::c_int> {
    let set = forwarded_set();
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is initialised; `sig` is a valid out-pointer.
    let rc = unsafe { libc::sigwait(&set, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(sig)
}

/// kill(2) to one process we started.
pub fn kill(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill has no memory-safety preconditions; pid is positive.
    if unsafe { libc::kill(pid, sig) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// In the child before exec: unblock the forwarded signals (the mask is
/// inherited through fork and exec, and Apache must see them), and have
/// Apache get SIGTERM (and stop its children and daemons) if wsgi-express
/// dies without forwarding anything, e.g. on SIGKILL.
pub fn prepare_child(cmd: &mut Command) {
    let set = forwarded_set();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls pthread_sigmask and prctl, which are async-signal-safe, and
    // reads errno; `set` is an initialised sigset_t copied into it.
    unsafe {
        cmd.pre_exec(move || {
            let rc = libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

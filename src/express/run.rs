//! Running Apache in the foreground for start-server: its signals
//! forwarded, its exit status ours, and on failure the error log lines
//! that say why.
#![forbid(unsafe_code)]

use super::sys;
use super::template::Plan;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

/// The environment the generated configuration and apachectl expect.
pub fn httpd_command(p: &Plan, extra: &[&str]) -> Command {
    let mut cmd = Command::new(&p.httpd_executable);
    cmd.arg("-f").arg(&p.httpd_conf);
    if let Some(s) = &p.startup_log {
        cmd.arg("-E").arg(s);
    }
    cmd.args(extra)
        .env("MOD_WSGI_USER", &p.user)
        .env("MOD_WSGI_GROUP", &p.group)
        .env("MOD_WSGI_MODULES_DIRECTORY", &p.modules_directory)
        .env("LANG", &p.locale)
        .env("LC_ALL", &p.locale);
    cmd
}

/// Runs `httpd -DFOREGROUND` until it exits; returns the exit code for
/// wsgi-express.
pub fn start_foreground(p: &Plan) -> std::io::Result<i32> {
    let error_log = Path::new(&p.error_log);
    let log_start = if p.o.log_to_terminal {
        None
    } else {
        Some(std::fs::metadata(error_log).map(|m| m.len()).unwrap_or(0))
    };
    sys::block_forwarded_signals()?;
    let mut cmd = httpd_command(p, &["-DFOREGROUND"]);
    sys::prepare_child(&mut cmd);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    std::thread::spawn(move || {
        while let Ok(sig) = sys::wait_signal() {
            // Ctrl-C reaches Apache through the terminal too; a second
            // stop request is harmless. ESRCH once Apache is gone is fine.
            let _ = sys::kill(pid, sig);
        }
    });
    let status = child.wait()?;
    if status.success() {
        return Ok(0);
    }
    let code = status.code().unwrap_or(1).max(1);
    let how = match status.code() {
        Some(c) => format!("status {c}"),
        None => format!("{status}"),
    };
    eprintln!("wsgi-express: Apache exited with {how}.");
    if let Some(start) = log_start {
        let lines = new_log_lines(error_log, start, 30);
        if lines.is_empty() {
            eprintln!(
                "wsgi-express: nothing new in the error log {}.",
                error_log.display()
            );
        } else {
            eprintln!("wsgi-express: the error log {} says:", error_log.display());
            for l in lines {
                eprintln!("  {l}");
            }
        }
    }
    Ok(code)
}

/// The last `max` lines written to `path` after byte offset `start`.
pub fn new_log_lines(path: &Path, start: u64, max: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = if len < start { 0 } else { start };
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut s = String::new();
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    s.push_str(&String::from_utf8_lossy(&buf));
    let lines: Vec<String> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let skip = lines.len().saturating_sub(max);
    lines.into_iter().skip(skip).collect()
}

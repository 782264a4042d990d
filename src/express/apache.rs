//! Finding what wsgi-express runs: Apache httpd and its modules directory
//! (apxs, then the Debian and Red Hat layouts), the mod_wsgi-rs module, and
//! the Python the module was built for. Errors say what is missing and how
//! to install it.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(
        "Apache httpd was not found (tried {tried}).\n\
         Install it: `apt-get install apache2` (Debian, Ubuntu) or `dnf install httpd` (Red Hat, Fedora),\n\
         or name it with --httpd-executable or the HTTPD environment variable."
    )]
    Httpd { tried: String },
    #[error(
        "Apache's modules directory was not found (tried {tried}).\n\
         Install Apache (`apt-get install apache2` or `dnf install httpd`) or name it with --modules-directory."
    )]
    Modules { tried: String },
    #[error(
        "The mod_wsgi-rs module was not found (tried {tried}).\n\
         Build it with `cargo build --release` and install it with `apxs/install.sh`,\n\
         or point MOD_WSGI_RS_SO at mod_wsgi_rs.so."
    )]
    Module { tried: String },
    #[error(
        "Apache's modules directory {0} has no MPM module (mod_mpm_event.so, mod_mpm_worker.so or mod_mpm_prefork.so)."
    )]
    NoMpm(String),
}

/// `apxs -q NAME`, if apxs (or Debian's apxs2) is installed.
pub fn apxs_query(name: &str) -> Option<String> {
    for apxs in [
        std::env::var("APXS").unwrap_or_default().as_str(),
        "apxs",
        "apxs2",
    ] {
        if apxs.is_empty() {
            continue;
        }
        if let Ok(out) = Command::new(apxs).args(["-q", name]).output()
            && out.status.success()
        {
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    None
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The httpd binary: --httpd-executable, $HTTPD, apxs's SBINDIR/TARGET,
/// then the Debian (apache2) and Red Hat (httpd) names.
pub fn find_httpd(given: Option<&str>) -> Result<PathBuf, FindError> {
    let mut tried = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(g) = given
        .map(str::to_string)
        .or_else(|| std::env::var("HTTPD").ok())
    {
        let p = PathBuf::from(&g);
        if p.is_absolute() {
            candidates.push(p);
        } else if let Some(p) = on_path(&g) {
            candidates.push(p);
        } else {
            tried.push(g);
        }
    } else {
        if let (Some(sbin), Some(target)) = (apxs_query("SBINDIR"), apxs_query("TARGET")) {
            candidates.push(Path::new(&sbin).join(target));
        }
        for p in [
            "/usr/sbin/apache2",
            "/usr/sbin/httpd",
            "/usr/local/apache2/bin/httpd",
        ] {
            candidates.push(PathBuf::from(p));
        }
        candidates.extend(on_path("apache2"));
        candidates.extend(on_path("httpd"));
    }
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
        tried.push(c.display().to_string());
    }
    tried.dedup();
    Err(FindError::Httpd {
        tried: tried.join(", "),
    })
}

/// Apache's modules directory: --modules-directory, apxs LIBEXECDIR, then
/// Debian's and Red Hat's.
pub fn find_modules_directory(given: Option<&str>) -> Result<PathBuf, FindError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(g) = given {
        candidates.push(PathBuf::from(g));
    } else {
        candidates.extend(apxs_query("LIBEXECDIR").map(PathBuf::from));
        for p in [
            "/usr/lib/apache2/modules",
            "/usr/lib64/httpd/modules",
            "/usr/lib/httpd/modules",
            "/usr/local/apache2/modules",
        ] {
            candidates.push(PathBuf::from(p));
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    candidates
        .into_iter()
        .find(|d| d.join("mod_authz_core.so").is_file() || d.join("mod_mime.so").is_file())
        .ok_or(FindError::Modules {
            tried: tried.join(", "),
        })
}

/// The first MPM Apache has, in mod_wsgi-express's order of preference.
pub fn find_mpm(modules: &Path) -> Result<&'static str, FindError> {
    ["event", "worker", "prefork"]
        .into_iter()
        .find(|m| modules.join(format!("mod_mpm_{m}.so")).is_file())
        .ok_or_else(|| FindError::NoMpm(modules.display().to_string()))
}

pub const MODULE_FILE: &str = "mod_wsgi_rs.so";

/// Where the module may be, in order: MOD_WSGI_RS_SO; the build directory
/// when wsgi-express runs from target/{debug,release}; the install prefix of
/// the executable (PREFIX/bin/wsgi-express -> PREFIX/lib/...); Apache's
/// modules directory.
pub fn module_candidates(exe: Option<&Path>, modules_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(p) = std::env::var_os("MOD_WSGI_RS_SO") {
        c.push(PathBuf::from(p));
        return c;
    }
    if let Some(dir) = exe.and_then(Path::parent) {
        c.push(dir.join("libmod_wsgi_rs.so"));
        // Run as target/<profile>/deps/... or from an examples dir.
        if let Some(up) = dir.parent() {
            c.push(up.join("libmod_wsgi_rs.so"));
        }
        if let Some(prefix) = dir.parent() {
            for sub in [
                "lib/mod_wsgi-rs",
                "lib",
                "libexec",
                "lib/apache2/modules",
                "lib64/httpd/modules",
            ] {
                c.push(prefix.join(sub).join(MODULE_FILE));
            }
        }
    }
    if let Some(m) = modules_dir {
        c.push(m.join(MODULE_FILE));
    }
    c
}

pub fn find_module(exe: Option<&Path>, modules_dir: Option<&Path>) -> Result<PathBuf, FindError> {
    let c = module_candidates(exe, modules_dir);
    let tried = c
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    c.into_iter()
        .find(|p| p.is_file())
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .ok_or(FindError::Module { tried })
}

/// Facts read from the module file itself, so that they are true of the
/// .so that will be loaded, whichever build of wsgi-express runs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModuleFacts {
    /// (major, minor) of the libpython it links (DT_NEEDED libpythonX.Y.so).
    pub python: Option<(u32, u32)>,
    /// False while the module logs that daemon mode is not implemented yet.
    pub daemon_mode: bool,
}

pub fn module_facts(so: &Path) -> std::io::Result<ModuleFacts> {
    let bytes = std::fs::read(so)?;
    Ok(facts_from_bytes(&bytes))
}

pub fn facts_from_bytes(bytes: &[u8]) -> ModuleFacts {
    let python = find(bytes, b"libpython").and_then(|at| {
        let rest = &bytes[at + b"libpython".len()..];
        let end = rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'.'))
            .unwrap_or(rest.len());
        let v = std::str::from_utf8(&rest[..end]).ok()?;
        parse_xy(v)
    });
    let daemon_mode = find(bytes, b"daemon mode is not implemented by mod_wsgi-rs yet").is_none();
    ModuleFacts {
        python,
        daemon_mode,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// "3.11", "3.11.2" or "3.11.2.final.0" -> (3, 11).
pub fn parse_xy(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim().split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The Python X.Y of a virtualenv (or any prefix with a pyvenv.cfg).
pub fn venv_python(venv: &Path) -> Option<(u32, u32)> {
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    parse_pyvenv_cfg(&cfg)
}

pub fn parse_pyvenv_cfg(cfg: &str) -> Option<(u32, u32)> {
    let mut found = None;
    for line in cfg.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim() {
            "version" | "version_info" => found = found.or(parse_xy(v)),
            _ => {}
        }
    }
    found
}

/// The virtualenv holding `path`: the nearest ancestor with a pyvenv.cfg.
pub fn enclosing_venv(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|d| d.join("pyvenv.cfg").is_file())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_version_from_the_module() {
        let f = facts_from_bytes(b"\0libc.so.6\0libpython3.11.so.1.0\0");
        assert_eq!(f.python, Some((3, 11)));
        assert!(f.daemon_mode);
        let f =
            facts_from_bytes(b"libpython3.9.so daemon mode is not implemented by mod_wsgi-rs yet");
        assert_eq!(f.python, Some((3, 9)));
        assert!(!f.daemon_mode);
        assert_eq!(facts_from_bytes(b"nothing").python, None);
    }

    #[test]
    fn pyvenv_cfg_versions() {
        assert_eq!(
            parse_pyvenv_cfg(
                "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
            ),
            Some((3, 11))
        );
        assert_eq!(
            parse_pyvenv_cfg("home = /x\nversion_info = 3.12.1.final.0\n"),
            Some((3, 12))
        );
        assert_eq!(parse_pyvenv_cfg("home = /x\n"), None);
    }

    #[test]
    fn module_search_order() {
        let c = module_candidates(
            Some(Path::new("/r/target/debug/wsgi-express")),
            Some(Path::new("/m")),
        );
        if std::env::var_os("MOD_WSGI_RS_SO").is_none() {
            assert_eq!(c[0], PathBuf::from("/r/target/debug/libmod_wsgi_rs.so"));
            assert!(c.contains(&PathBuf::from("/r/target/lib/mod_wsgi-rs/mod_wsgi_rs.so")));
            assert_eq!(c.last().unwrap(), &PathBuf::from("/m/mod_wsgi_rs.so"));
        }
    }
}

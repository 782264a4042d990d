//! wsgi-express: mod_wsgi-express's equivalent. One command from a WSGI
//! script (or module) to a running Apache: it finds Apache and the module,
//! writes httpd.conf, handler.wsgi and apachectl into a server root, prints
//! mod_wsgi-express's banner and runs Apache in the foreground.
//!
//! - [`options`]: the command line (pure).
//! - [`template`]: the generated files and the banner (pure).
//! - [`apache`]: finding Apache, its modules and mod_wsgi-rs.
//! - [`run`]: running Apache, forwarding signals.
//! - `sys`: the only unsafe code (signals, uids).
#![deny(unsafe_code)]

pub mod apache;
pub mod options;
pub mod run;
#[allow(unsafe_code)]
mod sys;
pub mod template;

use options::{Command, Options, OptionsError};
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use template::Plan;

/// The Python the module was built against (PYO3_PYTHON at build time).
pub const BUILD_PYTHON: &str = env!("MWRS_PYTHON_EXECUTABLE");

#[derive(Debug, thiserror::Error)]
pub enum ExpressError {
    #[error("{0}")]
    Options(#[from] OptionsError),
    #[error("{0}")]
    Find(#[from] apache::FindError),
    #[error("The WSGI script file '{0}' does not exist.")]
    NoScript(String),
    #[error(
        "The virtualenv {venv} uses Python {vx}.{vy}, but {so} was built for Python {mx}.{my}.\n\
         Recreate the virtualenv with python{mx}.{my} (`python{mx}.{my} -m venv {venv}`), or rebuild the module\n\
         against the virtualenv's Python (`PYO3_PYTHON=/path/to/python{vx}.{vy} cargo build --release`)."
    )]
    PythonMismatch {
        venv: String,
        vx: u32,
        vy: u32,
        so: String,
        mx: u32,
        my: u32,
    },
    #[error(
        "Apache refuses to run its children as root. Pass an unprivileged user and group,\n\
         e.g. --user www-data --group www-data."
    )]
    RootUser,
    #[error("No such user '{0}' (--user).")]
    UnknownUser(String),
    #[error("No such group '{0}' (--group).")]
    UnknownGroup(String),
    #[error(
        "{path} cannot be read by user '{user}', whom Apache runs the application as: {why}.\n\
         Move it where '{user}' can read it (e.g. under /srv or /opt), make it readable, or pass --user."
    )]
    Unreadable {
        path: String,
        user: String,
        why: String,
    },
    #[error("{what} {path}: {err}")]
    Io {
        what: &'static str,
        path: String,
        err: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ExpressError + 'a {
    move |err| ExpressError::Io {
        what,
        path: path.display().to_string(),
        err,
    }
}

/// A user account from /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The user database: /etc/passwd and /etc/group.
#[derive(Debug, Clone, Default)]
pub struct Users {
    pub users: Vec<Account>,
    /// (name, gid, members)
    pub groups: Vec<(String, u32, Vec<String>)>,
}

impl Users {
    pub fn load() -> Users {
        let read = |p| std::fs::read_to_string(p).unwrap_or_default();
        Users::parse(&read("/etc/passwd"), &read("/etc/group"))
    }

    pub fn parse(passwd: &str, group: &str) -> Users {
        let users = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some(Account {
                    name: f.first()?.to_string(),
                    uid: f.get(2)?.parse().ok()?,
                    gid: f.get(3)?.parse().ok()?,
                })
            })
            .collect();
        let groups = group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let members = f.get(3).map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                });
                Some((
                    f.first()?.to_string(),
                    f.get(2)?.parse().ok()?,
                    members.unwrap_or_default(),
                ))
            })
            .collect();
        Users { users, groups }
    }

    pub fn by_name(&self, name: &str) -> Option<&Account> {
        match name.strip_prefix('#') {
            Some(n) => self.users.iter().find(|a| Some(a.uid) == n.parse().ok()),
            None => self.users.iter().find(|a| a.name == name),
        }
    }

    pub fn by_uid(&self, uid: u32) -> Option<&Account> {
        self.users.iter().find(|a| a.uid == uid)
    }

    pub fn group_gid(&self, name: &str) -> Option<u32> {
        match name.strip_prefix('#') {
            Some(n) => n.parse().ok(),
            None => self.groups.iter().find(|g| g.0 == name).map(|g| g.1),
        }
    }

    pub fn group_name(&self, gid: u32) -> String {
        self.groups
            .iter()
            .find(|g| g.1 == gid)
            .map(|g| g.0.clone())
            .unwrap_or_else(|| format!("#{gid}"))
    }

    /// The gids a user has: primary plus supplementary.
    pub fn gids(&self, a: &Account) -> Vec<u32> {
        let mut g = vec![a.gid];
        g.extend(
            self.groups
                .iter()
                .filter(|x| x.2.contains(&a.name))
                .map(|x| x.1),
        );
        g
    }
}

/// Everything about this machine that the plan depends on, gathered once
/// so that [`resolve`] is a pure function of it.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cwd: PathBuf,
    pub uid: u32,
    pub tmpdir: PathBuf,
    pub env: HashMap<String, String>,
    pub users: Users,
    pub httpd: PathBuf,
    pub modules_directory: PathBuf,
    pub mpm: &'static str,
    pub mod_wsgi_so: PathBuf,
    pub module: apache::ModuleFacts,
    /// `locale -a`
    pub locales: Vec<String>,
    pub argv: Vec<String>,
}

impl Machine {
    pub fn probe(o: &Options, argv: Vec<String>) -> Result<Machine, ExpressError> {
        let httpd = apache::find_httpd(o.httpd_executable.as_deref())?;
        let modules_directory = apache::find_modules_directory(o.modules_directory.as_deref())?;
        let mpm = apache::find_mpm(&modules_directory)?;
        let exe = std::env::current_exe().ok();
        let mod_wsgi_so = apache::find_module(exe.as_deref(), Some(&modules_directory))?;
        let module = apache::module_facts(&mod_wsgi_so).map_err(io("cannot read", &mod_wsgi_so))?;
        let locales = std::process::Command::new("locale")
            .arg("-a")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let env: HashMap<String, String> = std::env::vars().collect();
        Ok(Machine {
            cwd: std::env::current_dir()
                .map_err(io("cannot read the current directory", Path::new(".")))?,
            uid: sys::getuid(),
            tmpdir: PathBuf::from(
                env.get("TMPDIR")
                    .filter(|t| !t.is_empty())
                    .map(String::as_str)
                    .unwrap_or("/tmp"),
            ),
            env,
            users: Users::load(),
            httpd,
            modules_directory,
            mpm,
            mod_wsgi_so,
            module,
            locales,
            argv,
        })
    }
}

/// `path` made absolute against `cwd`, with `.` and `..` folded away
/// (without resolving symlinks, as os.path.abspath).
pub fn absolute(cwd: &Path, path: &str) -> PathBuf {
    let joined = cwd.join(path);
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// mod_wsgi-express's locale choice: this process's, but never plain C or
/// POSIX (Python would then default to ASCII): en_US.UTF-8 or C.UTF-8 if
/// installed.
pub fn choose_locale(
    given: Option<&str>,
    env: &HashMap<String, String>,
    available: &[String],
) -> String {
    if let Some(l) = given {
        return l.to_string();
    }
    let current = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|k| env.get(*k))
        .find(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| "C".to_string());
    if !matches!(current.to_ascii_uppercase().as_str(), "C" | "POSIX") {
        return current;
    }
    let has = |l: &str| available.iter().any(|a| a.eq_ignore_ascii_case(l));
    if has("en_US.utf8") || has("en_US.UTF-8") {
        "en_US.UTF-8".into()
    } else if has("C.utf8") || has("C.UTF-8") {
        "C.UTF-8".into()
    } else {
        current
    }
}

/// The Python X.Y of a Python home: a virtualenv's pyvenv.cfg, or the
/// single lib/pythonX.Y of an installation.
fn home_python(home: &Path) -> Option<(u32, u32)> {
    apache::venv_python(home).or_else(|| {
        let mut found: Vec<(u32, u32)> = std::fs::read_dir(home.join("lib"))
            .ok()?
            .filter_map(|e| {
                let name = e.ok()?.file_name().to_string_lossy().into_owned();
                apache::parse_xy(name.strip_prefix("python")?)
            })
            .collect();
        found.dedup();
        (found.len() == 1).then(|| found[0])
    })
}

/// Resolves the options against the machine: every path absolute, the
/// user, the virtualenv and its Python checked. Pure except for reading
/// the filesystem's metadata.
pub fn resolve(o: Options, m: &Machine) -> Result<Plan, ExpressError> {
    let host = o.host.clone().unwrap_or_else(|| "localhost".to_string());
    let server_root = match &o.server_root {
        Some(r) => absolute(&m.cwd, r),
        None => m
            .tmpdir
            .join(format!("mod_wsgi-rs-{host}:{}:{}", o.port, m.uid)),
    };
    let abs = |s: &str| absolute(&m.cwd, s);

    // Who the application runs as.
    let (user, group) = if m.uid == 0 {
        let user = o.user.clone().unwrap_or_else(|| "www-data".to_string());
        let acct = m
            .users
            .by_name(&user)
            .ok_or_else(|| ExpressError::UnknownUser(user.clone()))?;
        if acct.uid == 0 {
            return Err(ExpressError::RootUser);
        }
        let group = o
            .group
            .clone()
            .unwrap_or_else(|| m.users.group_name(acct.gid));
        if m.users.group_gid(&group).is_none() {
            return Err(ExpressError::UnknownGroup(group));
        }
        (user, group)
    } else {
        let me = m.users.by_uid(m.uid);
        let user = o
            .user
            .clone()
            .or_else(|| me.map(|a| a.name.clone()))
            .unwrap_or_else(|| format!("#{}", m.uid));
        let group = o
            .group
            .clone()
            .or_else(|| me.map(|a| m.users.group_name(a.gid)))
            .unwrap_or_else(|| format!("#{}", m.uid));
        (user, group)
    };

    let entry_point = match (&o.entry_point, o.application_type.as_str()) {
        (Some(e), "module") => e.clone(),
        (Some(e), _) => {
            let p = abs(e);
            if !p.is_file() {
                return Err(ExpressError::NoScript(p.display().to_string()));
            }
            p.display().to_string()
        }
        (None, _) => server_root.join("default.wsgi").display().to_string(),
    };
    let mut o = o;
    if o.entry_point.is_none() {
        o.application_type = "script".into();
        o.callable_object = "application".into();
    }

    let working_directory = o
        .working_directory
        .as_deref()
        .map(abs)
        .unwrap_or_else(|| m.cwd.clone());
    let python_home = o
        .python_home
        .as_deref()
        .map(abs)
        .or_else(|| {
            m.env
                .get("VIRTUAL_ENV")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| match o.application_type.as_str() {
            "script" if o.entry_point.is_some() => apache::enclosing_venv(Path::new(&entry_point)),
            _ => None,
        });
    if let (Some(home), Some((mx, my))) = (&python_home, m.module.python)
        && let Some((vx, vy)) = home_python(home)
        && (vx, vy) != (mx, my)
    {
        return Err(ExpressError::PythonMismatch {
            venv: home.display().to_string(),
            vx,
            vy,
            so: m.mod_wsgi_so.display().to_string(),
            mx,
            my,
        });
    }

    let log_directory = o
        .log_directory
        .as_deref()
        .map(abs)
        .unwrap_or_else(|| server_root.clone());
    let to_terminal = o.log_to_terminal && o.log_directory.is_none();
    let (error_log, access_log) = if to_terminal {
        ("/dev/stderr".to_string(), "/dev/stdout".to_string())
    } else {
        (
            log_directory.join("error_log").display().to_string(),
            log_directory.join("access_log").display().to_string(),
        )
    };
    o.log_to_terminal = to_terminal;
    let startup_log = o.startup_log.then(|| {
        if to_terminal {
            "/dev/stderr".to_string()
        } else {
            log_directory.join("startup_log").display().to_string()
        }
    });

    let mut mount_point = o.mount_point.clone();
    if !mount_point.starts_with('/') {
        mount_point.insert(0, '/');
    }
    while mount_point.len() > 1 && mount_point.ends_with('/') {
        mount_point.pop();
    }

    let (ssl_certificate_file, ssl_certificate_key_file) = match &o.ssl_certificate {
        Some(c) => (
            Some(abs(&format!("{c}.crt"))),
            Some(abs(&format!("{c}.key"))),
        ),
        None => (
            o.ssl_certificate_file.as_deref().map(abs),
            o.ssl_certificate_key_file.as_deref().map(abs),
        ),
    };

    let plan = Plan {
        host: host.clone(),
        httpd_conf: server_root.join("httpd.conf"),
        handler_script: server_root.join("handler.wsgi"),
        document_root: o
            .document_root
            .as_deref()
            .map(abs)
            .unwrap_or_else(|| server_root.join("htdocs")),
        working_directory,
        python_eggs: o
            .python_eggs
            .as_deref()
            .map(abs)
            .unwrap_or_else(|| server_root.join("python-eggs")),
        pid_file: o
            .pid_file
            .as_deref()
            .map(abs)
            .unwrap_or_else(|| server_root.join("httpd.pid")),
        error_log,
        access_log,
        startup_log,
        entry_point,
        python_paths: o
            .python_paths
            .iter()
            .map(|p| abs(p).display().to_string())
            .collect(),
        python_home,
        mount_point,
        url_aliases: o
            .url_aliases
            .iter()
            .map(|(u, t)| {
                let t = abs(t);
                let dir = t.is_dir();
                (u.clone(), t, dir)
            })
            .collect(),
        include_files: o.include_files.iter().map(|f| abs(f)).collect(),
        ssl_certificate_file,
        ssl_certificate_key_file,
        user,
        group,
        uid: m.uid,
        httpd_executable: m.httpd.clone(),
        modules_directory: m.modules_directory.clone(),
        mod_wsgi_so: m.mod_wsgi_so.clone(),
        mime_types: o
            .mime_types
            .as_deref()
            .map(abs)
            .unwrap_or_else(|| PathBuf::from("/etc/mime.types")),
        mpm: m.mpm,
        locale: choose_locale(o.locale.as_deref(), &m.env, &m.locales),
        process_group: o
            .process_group
            .clone()
            .unwrap_or_else(|| format!("{host}:{}", o.port)),
        application_group: o
            .application_group
            .clone()
            .unwrap_or_else(|| "%{GLOBAL}".to_string()),
        daemon_mode_available: m.module.daemon_mode,
        argv: m.argv.clone(),
        server_root,
        o,
    };
    Ok(plan)
}

/// Why `user` cannot read `path` (and traverse to it), if it cannot.
pub fn access_problem(
    path: &Path,
    acct: &Account,
    gids: &[u32],
    dir_needs_read: bool,
) -> Option<String> {
    if acct.uid == 0 {
        return None;
    }
    let allowed = |meta: &std::fs::Metadata, bits: u32| {
        let mode = meta.mode();
        let shift = if meta.uid() == acct.uid {
            6
        } else if gids.contains(&meta.gid()) {
            3
        } else {
            0
        };
        (mode >> shift) & bits == bits
    };
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors.reverse();
    for dir in ancestors {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        if !allowed(&meta, 0o1) {
            return Some(format!(
                "it cannot enter {} (mode {:04o})",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    let meta = std::fs::metadata(path).ok()?;
    let need = if meta.is_dir() {
        if dir_needs_read { 0o5 } else { 0o1 }
    } else {
        0o4
    };
    if !allowed(&meta, need) {
        return Some(format!(
            "it may not read it (mode {:04o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Checks that Apache's User can reach what the application needs.
fn check_readable(p: &Plan, users: &Users) -> Result<(), ExpressError> {
    let Some(acct) = users.by_name(&p.user) else {
        return Ok(());
    };
    if sys::getuid() != 0 {
        return Ok(());
    }
    let gids = match users.group_gid(&p.group) {
        Some(g) => {
            let mut v = users.gids(acct);
            v.push(g);
            v
        }
        None => users.gids(acct),
    };
    let mut paths: Vec<(PathBuf, bool)> = Vec::new();
    if p.o.application_type == "script" {
        paths.push((PathBuf::from(&p.entry_point), false));
    }
    paths.push((p.working_directory.clone(), true));
    paths.extend(p.python_paths.iter().map(|s| (PathBuf::from(s), true)));
    paths.extend(p.python_home.iter().map(|h| (h.clone(), true)));
    for (path, needs_read) in paths {
        if let Some(why) = access_problem(&path, acct, &gids, needs_read) {
            return Err(ExpressError::Unreadable {
                path: path.display().to_string(),
                user: p.user.clone(),
                why,
            });
        }
    }
    Ok(())
}

const DEFAULT_SCRIPT: &str = r#"# Served by wsgi-express when no application is given.
CONTENT = b'''<html><head><title>wsgi-express</title></head>
<body><h1>It works: mod_wsgi-rs is serving this page.</h1>
<p>Give wsgi-express a WSGI script file (or --application-type module and a module) to serve your application.</p>
</body></html>
'''

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/html'), ('Content-Length', str(len(CONTENT)))])
    return [CONTENT]
"#;

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), ExpressError> {
    std::fs::write(path, text).map_err(io("cannot write", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io("cannot chmod", path))
}

fn make_dir(path: &Path) -> Result<(), ExpressError> {
    std::fs::create_dir_all(path).map_err(io("cannot create", path))?;
    Ok(())
}

/// Writes the server root: httpd.conf, handler.wsgi, default.wsgi,
/// apachectl, envvars, htdocs/ and python-eggs/, all readable by Apache's
/// User.
pub fn setup(p: &Plan, users: &Users) -> Result<(), ExpressError> {
    check_readable(p, users)?;
    make_dir(&p.server_root)?;
    let _ = std::fs::set_permissions(&p.server_root, std::fs::Permissions::from_mode(0o755));
    make_dir(&p.document_root)?;
    make_dir(&p.python_eggs)?;
    if sys::getuid() == 0
        && let (Some(a), Some(g)) = (users.by_name(&p.user), users.group_gid(&p.group))
    {
        let _ = std::os::unix::fs::chown(&p.python_eggs, Some(a.uid), Some(g));
    }
    if !p.o.log_to_terminal
        && let Some(d) = Path::new(&p.error_log).parent()
    {
        make_dir(d)?;
    }
    write_file(&p.server_root.join("default.wsgi"), DEFAULT_SCRIPT, 0o644)?;
    write_file(&p.handler_script, &template::handler_script(p), 0o644)?;
    write_file(&p.httpd_conf, &template::httpd_conf(p), 0o644)?;
    write_file(
        &p.server_root.join("apachectl"),
        &template::apachectl(p),
        0o755,
    )?;
    let envvars = p.server_root.join("envvars");
    if !envvars.exists() {
        write_file(&envvars, "", 0o644)?;
    }
    Ok(())
}

fn python_prefix() -> PathBuf {
    // /usr/bin/python3 -> /usr, as sys.prefix.
    let exe = Path::new(BUILD_PYTHON);
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/usr"))
}

fn module_config_lines(so: &Path) -> String {
    let home = std::env::var("VIRTUAL_ENV")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(python_prefix);
    format!(
        "LoadModule wsgi_module \"{}\"\nWSGIPythonHome \"{}\"\n",
        so.display(),
        home.display()
    )
}

fn find_so() -> Result<PathBuf, ExpressError> {
    let exe = std::env::current_exe().ok();
    let modules = apache::find_modules_directory(None).ok();
    Ok(apache::find_module(exe.as_deref(), modules.as_deref())?)
}

/// The whole program: returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    match run_main(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wsgi-express: error: {e}");
            if matches!(e, ExpressError::Options(_)) {
                eprintln!("Try 'wsgi-express COMMAND --help'.");
            }
            match e {
                ExpressError::Options(_) => 2,
                _ => 1,
            }
        }
    }
}

fn run_main(argv: Vec<String>) -> Result<i32, ExpressError> {
    let args: Vec<String> = argv.iter().skip(1).cloned().collect();
    if args.is_empty() || args[0] == "-h" || args[0] == "--help" {
        print!("{}", options::MAIN_USAGE);
        return Ok(if args.is_empty() { 2 } else { 0 });
    }
    let (cmd, o) = options::parse(&args)?;
    if o.help {
        print!("{}", options::help(cmd));
        return Ok(0);
    }
    match cmd {
        Command::ModuleLocation => {
            println!("{}", find_so()?.display());
            Ok(0)
        }
        Command::ModuleConfig => {
            print!("{}", module_config_lines(&find_so()?));
            Ok(0)
        }
        Command::InstallModule => {
            let so = find_so()?;
            let dir = match &o.modules_directory {
                Some(d) => PathBuf::from(d),
                None => apache::find_modules_directory(None)?,
            };
            let target = absolute(
                &std::env::current_dir().unwrap_or_else(|_| "/".into()),
                &dir.join(apache::MODULE_FILE).to_string_lossy(),
            );
            std::fs::copy(&so, &target).map_err(io("cannot copy the module to", &target))?;
            let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644));
            print!("{}", module_config_lines(&target));
            Ok(0)
        }
        Command::StartServer | Command::SetupServer => {
            let machine = Machine::probe(&o, argv.clone())?;
            let plan = resolve(o, &machine)?;
            setup(&plan, &machine.users)?;
            let setup_only = cmd == Command::SetupServer || plan.o.setup_only;
            print!("{}", template::banner(&plan, setup_only));
            use std::io::Write;
            let _ = std::io::stdout().flush();
            if setup_only {
                return Ok(0);
            }
            run::start_foreground(&plan).map_err(io("cannot run", &plan.httpd_executable))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(uid: u32) -> Machine {
        Machine {
            cwd: PathBuf::from("/srv/app"),
            uid,
            tmpdir: PathBuf::from("/tmp"),
            env: HashMap::new(),
            users: Users::parse(
                "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/sh\n",
                "root:x:0:\nwww-data:x:33:\nalice:x:1000:\nstaff:x:50:alice\n",
            ),
            httpd: "/usr/sbin/apache2".into(),
            modules_directory: "/usr/lib/apache2/modules".into(),
            mpm: "event",
            mod_wsgi_so: "/m/mod_wsgi_rs.so".into(),
            module: apache::ModuleFacts {
                python: Some((3, 11)),
                daemon_mode: true,
            },
            locales: vec!["C".into(), "C.utf8".into(), "POSIX".into()],
            argv: vec!["wsgi-express".into()],
        }
    }

    fn opts(f: impl FnOnce(&mut Options)) -> Options {
        let mut o = Options {
            application_type: "module".into(),
            entry_point: Some("app:wsgi".into()),
            ..Options::default()
        };
        f(&mut o);
        o
    }

    #[test]
    fn server_root_and_users() {
        let p = resolve(opts(|_| {}), &machine(0)).unwrap();
        assert_eq!(
            p.server_root,
            PathBuf::from("/tmp/mod_wsgi-rs-localhost:8000:0")
        );
        assert_eq!(
            (p.user.as_str(), p.group.as_str()),
            ("www-data", "www-data")
        );
        let p = resolve(opts(|o| o.host = Some("127.0.0.1".into())), &machine(1000)).unwrap();
        assert_eq!(
            p.server_root,
            PathBuf::from("/tmp/mod_wsgi-rs-127.0.0.1:8000:1000")
        );
        assert_eq!((p.user.as_str(), p.group.as_str()), ("alice", "alice"));
        assert!(matches!(
            resolve(opts(|o| o.user = Some("root".into())), &machine(0)),
            Err(ExpressError::RootUser)
        ));
        assert!(matches!(
            resolve(opts(|o| o.user = Some("bob".into())), &machine(0)),
            Err(ExpressError::UnknownUser(_))
        ));
        let p = resolve(opts(|o| o.server_root = Some("rel".into())), &machine(0)).unwrap();
        assert_eq!(p.server_root, PathBuf::from("/srv/app/rel"));
    }

    #[test]
    fn paths_and_mount_point() {
        let p = resolve(
            opts(|o| {
                o.mount_point = "app/".into();
                o.python_paths.push("../lib".into());
                o.log_to_terminal = true;
            }),
            &machine(0),
        )
        .unwrap();
        assert_eq!(p.mount_point, "/app");
        assert_eq!(p.python_paths, vec!["/srv/lib".to_string()]);
        assert_eq!(p.error_log, "/dev/stderr");
        assert_eq!(p.working_directory, PathBuf::from("/srv/app"));
        assert_eq!(p.process_group, "localhost:8000");
    }

    #[test]
    fn missing_script_is_named() {
        let e = resolve(
            Options {
                entry_point: Some("/nonexistent/x.wsgi".into()),
                ..Options::default()
            },
            &machine(0),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "The WSGI script file '/nonexistent/x.wsgi' does not exist."
        );
    }

    #[test]
    fn locale_choice() {
        let env: HashMap<String, String> = [("LANG".to_string(), "C".to_string())].into();
        assert_eq!(choose_locale(None, &env, &["C.utf8".into()]), "C.UTF-8");
        assert_eq!(
            choose_locale(None, &env, &["en_US.utf8".into(), "C.utf8".into()]),
            "en_US.UTF-8"
        );
        let env: HashMap<String, String> = [("LANG".to_string(), "de_DE.UTF-8".to_string())].into();
        assert_eq!(choose_locale(None, &env, &[]), "de_DE.UTF-8");
        assert_eq!(choose_locale(Some("fr_FR.UTF-8"), &env, &[]), "fr_FR.UTF-8");
    }

    #[test]
    fn absolute_folds_dots() {
        assert_eq!(
            absolute(Path::new("/a/b"), "../c/./d"),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(absolute(Path::new("/a"), "/x/y"), PathBuf::from("/x/y"));
    }
}

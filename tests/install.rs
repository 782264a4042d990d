//! Installing the module the apxs way and enabling it with a2enmod, against
//! a staging root and a copy of the Apache config tree (never the live one).

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn apxs_install_stages_a_new_inode_and_prints_load_module() {
    let root = temp_root("apxs");
    let dest = root.join("stage");
    let repo = env!("CARGO_MANIFEST_DIR");
    let so = module_path();
    let (ok, out) = run(Command::new("bash")
        .arg(format!("{repo}/apxs/install.sh"))
        .arg(&so)
        .env("DESTDIR", &dest));
    assert!(ok, "{out}");
    let installed = dest.join("usr/lib/apache2/modules/mod_wsgi_rs.so");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&so).unwrap()
    );
    assert_eq!(std::fs::metadata(&installed).unwrap().mode() & 0o777, 0o644);
    assert!(
        out.contains("LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi_rs.so"),
        "{out}"
    );
    // Reinstalling replaces the file with a new inode, so a running Apache
    // keeps the mapping it has.
    let before = std::fs::metadata(&installed).unwrap().ino();
    let (ok, out) = run(Command::new("bash")
        .arg(format!("{repo}/apxs/install.sh"))
        .arg(&so)
        .env("DESTDIR", &dest));
    assert!(ok, "{out}");
    assert_ne!(std::fs::metadata(&installed).unwrap().ino(), before);
    // A missing module is explained.
    let (ok, out) = run(Command::new("bash")
        .arg(format!("{repo}/apxs/install.sh"))
        .arg(root.join("nope.so"))
        .env("DESTDIR", &dest));
    assert!(!ok);
    assert!(out.contains("nope.so"), "{out}");
}

#[test]
fn a2enmod_wsgi_rs_on_a_copy_of_the_config_tree() {
    let root = temp_root("a2enmod");
    let confdir = root.join("apache2");
    let (ok, out) = run(Command::new("cp")
        .arg("-a")
        .arg("/etc/apache2")
        .arg(&confdir));
    assert!(ok, "{out}");
    let repo = env!("CARGO_MANIFEST_DIR");
    let (ok, out) = run(Command::new("bash")
        .arg(format!("{repo}/conf/install-debian.sh"))
        .env("APACHE_CONFDIR", &confdir));
    assert!(ok, "{out}");
    // a2enmod records who enabled what in a state directory: keep it out of
    // the live /var/lib/apache2 too.
    let state = root.join("state");
    // Debian's own wsgi module (if installed) defines wsgi_module too.
    let _ = run(Command::new("a2dismod")
        .arg("-q")
        .arg("wsgi")
        .env("APACHE_CONFDIR", &confdir)
        .env("APACHE_STATE_DIRECTORY", &state));
    let (ok, out) = run(Command::new("a2enmod")
        .arg("wsgi_rs")
        .env("APACHE_CONFDIR", &confdir)
        .env("APACHE_STATE_DIRECTORY", &state));
    assert!(ok, "{out}");
    let load = confdir.join("mods-enabled/wsgi_rs.load");
    let text = std::fs::read_to_string(&load).unwrap();
    assert!(
        text.contains("LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi_rs.so"),
        "{text}"
    );
    assert!(confdir.join("mods-enabled/wsgi_rs.conf").exists());
    // The live tree is untouched.
    assert!(!std::path::Path::new("/etc/apache2/mods-enabled/wsgi_rs.load").exists());
}

/// conf/wsgi_rs.conf shows each directive commented out with its default
/// value: applying that line must leave the module's setting unchanged.
#[test]
fn wsgi_rs_conf_shows_the_real_defaults() {
    use mod_wsgi_rs::config::{Apply, ServerConfig, find};
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/wsgi_rs.conf")).unwrap();
    // What each shown directive controls, read back through the accessor.
    type Get = fn(&ServerConfig) -> String;
    let accessors: &[(&str, Get)] = &[
        ("WSGIDontWriteBytecode", |c| {
            c.dont_write_bytecode().to_string()
        }),
        ("WSGIPythonOptimize", |c| c.python_optimize().to_string()),
        ("WSGIRestrictEmbedded", |c| {
            c.restrict_embedded().to_string()
        }),
        ("WSGIRestrictStdin", |c| c.restrict_stdin().to_string()),
        ("WSGIRestrictStdout", |c| c.restrict_stdout().to_string()),
        ("WSGIRestrictSignal", |c| c.restrict_signal().to_string()),
        ("WSGILazyInitialization", |c| {
            c.lazy_initialization().to_string()
        }),
    ];
    let mut checked = 0;
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("#WSGI") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let name = format!("WSGI{}", words.next().unwrap());
        let args: Vec<&str> = words.collect();
        let Some((_, get)) = accessors.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let spec = find(&name).unwrap();
        let Apply::Server(f) = spec.apply else {
            panic!("{name} is not a server directive");
        };
        let mut set = ServerConfig::default();
        f(&mut set, &args).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(
            get(&set),
            get(&ServerConfig::default()),
            "conf/wsgi_rs.conf shows `{line}` as the default"
        );
        checked += 1;
    }
    assert_eq!(checked, accessors.len(), "{text}");
}

/// A copy of /etc/apache2 that runs as a private server: the module
/// enabled with conf/install-debian.sh and a2enmod (its .load pointed at
/// the module under test: the real path is for installed packages only),
/// its own port, run, lock and log directories (through envvars, which
/// apache2ctl reads), and no site enabled.
struct DebianTree {
    root: std::path::PathBuf,
    confdir: std::path::PathBuf,
    state: std::path::PathBuf,
    port: u16,
    env: Vec<(&'static str, String)>,
}

impl DebianTree {
    fn new(name: &str) -> DebianTree {
        let root = temp_root(name);
        let confdir = root.join("apache2");
        let state = root.join("state");
        let (ok, out) = run(Command::new("cp")
            .arg("-a")
            .arg("/etc/apache2")
            .arg(&confdir));
        assert!(ok, "{out}");
        let repo = env!("CARGO_MANIFEST_DIR");
        let (ok, out) = run(Command::new("sh")
            .arg(format!("{repo}/conf/install-debian.sh"))
            .env("APACHE_CONFDIR", &confdir));
        assert!(ok, "{out}");
        let t = DebianTree {
            port: free_port(),
            env: vec![
                ("APACHE_RUN_USER", "www-data".into()),
                ("APACHE_RUN_GROUP", "www-data".into()),
                (
                    "APACHE_PID_FILE",
                    root.join("run/apache2.pid").display().to_string(),
                ),
                ("APACHE_RUN_DIR", root.join("run").display().to_string()),
                ("APACHE_LOCK_DIR", root.join("lock").display().to_string()),
                ("APACHE_LOG_DIR", root.join("logs").display().to_string()),
                ("LANG", "C".into()),
            ],
            root,
            confdir,
            state,
        };
        // Debian's C mod_wsgi (if enabled) is wsgi_module too.
        let _ = t.a2("a2dismod", "wsgi");
        let (ok, out) = t.a2("a2enmod", "wsgi_rs");
        assert!(ok, "{out}");
        let load = t.confdir.join("mods-available/wsgi_rs.load");
        let text = std::fs::read_to_string(&load).unwrap();
        let line = "LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi_rs.so";
        assert!(text.contains(line), "{text}");
        std::fs::write(
            &load,
            text.replace(
                line,
                &format!("LoadModule wsgi_module {}", module_path().display()),
            ),
        )
        .unwrap();
        std::fs::create_dir_all(t.root.join("lock")).unwrap();
        let envvars: String = t
            .env
            .iter()
            .map(|(k, v)| format!("export {k}={v}\n"))
            .collect();
        std::fs::write(t.confdir.join("envvars"), envvars).unwrap();
        std::fs::write(
            t.confdir.join("ports.conf"),
            format!("Listen 127.0.0.1:{}\n", t.port),
        )
        .unwrap();
        for e in std::fs::read_dir(t.confdir.join("sites-enabled")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        t
    }

    /// a2enmod, a2enconf, a2ensite, ... on the copy, with their state
    /// markers in the temp dir too (never /var/lib/apache2).
    fn a2(&self, tool: &str, arg: &str) -> (bool, String) {
        run(Command::new(tool)
            .arg(arg)
            .env("APACHE_CONFDIR", &self.confdir)
            .env("APACHE_STATE_DIRECTORY", &self.state))
    }

    fn configtest(&self) -> (bool, String) {
        run(Command::new("apache2ctl")
            .arg("configtest")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/bin")
            .env("APACHE_CONFDIR", &self.confdir))
    }

    /// Started as apache2ctl would (-d, the envvars), but directly, so
    /// the harness holds Apache's own pid.
    fn start(&self) -> Apache {
        let mut cmd = Command::new(APACHE);
        cmd.arg("-d")
            .arg(&self.confdir)
            .arg("-f")
            .arg(self.confdir.join("apache2.conf"))
            .arg("-DFOREGROUND")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/bin");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        Apache::launch(
            self.root.clone(),
            self.port,
            self.confdir.join("apache2.conf"),
            self.root.join("logs/error.log"),
            cmd,
        )
        .unwrap_or_else(|e| panic!("Apache did not start from {}:\n{e}", self.confdir.display()))
    }
}

fn get_host(a: &Apache, host: &str, path: &str) -> Response {
    a.raw(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        false,
    )
}

/// Seed 004 on Debian's layout, step by step: the hello world enabled with
/// `a2enconf mod-wsgi` (conf/samples/myapp-conf-available.conf), checked
/// with `apache2ctl configtest`, served; then moved into a VirtualHost
/// enabled with `a2ensite`, with `WSGIPythonHome` at server level (refused
/// inside the VirtualHost), reloaded gracefully; then the seed's complete
/// VirtualHost with a daemon process group.
#[test]
fn seed_004_a2enconf_a2ensite_and_reload_on_a_copy_of_the_config_tree() {
    let t = DebianTree::new("seed004");
    let code = t.root.join("code");
    std::fs::create_dir_all(&code).unwrap();
    chmod(&code, 0o755);
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        repo.join("examples/hello/myapp.wsgi"),
        code.join("myapp.wsgi"),
    )
    .unwrap();
    chmod(&code.join("myapp.wsgi"), 0o644);

    // 1. conf-available/mod-wsgi.conf, a2enconf, configtest, serve.
    let sample =
        std::fs::read_to_string(repo.join("conf/samples/myapp-conf-available.conf")).unwrap();
    std::fs::write(
        t.confdir.join("conf-available/mod-wsgi.conf"),
        sample.replace("/home/anna/code", code.to_str().unwrap()),
    )
    .unwrap();
    let (ok, out) = t.a2("a2enconf", "mod-wsgi");
    assert!(ok, "{out}");
    let (ok, out) = t.configtest();
    assert!(ok && out.contains("Syntax OK"), "{out}");
    let a = t.start();
    let r = a.get("/myapp");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(r.body, b"Hello World!");
    let parent = a.pid().unwrap() as i32;

    // 2. Scoped to a VirtualHost (seed 004's, with ServerAlias and no
    // ServerName), WSGIPythonHome a virtualenv at server level.
    let (ok, out) = t.a2("a2disconf", "mod-wsgi");
    assert!(ok, "{out}");
    let venv = t.root.join("env");
    let st = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(st.success());
    let marker = t.root.join("logs/python-home-used");
    std::fs::write(
        venv.join("lib/python3.11/site-packages/zz_marker.pth"),
        format!(
            "import os; open({:?}, 'a').write('%d\\n' % os.getpid())\n",
            marker.display()
        ),
    )
    .unwrap();
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&venv)
        .status();
    std::fs::write(
        t.confdir.join("conf-available/wsgi-python-home.conf"),
        format!("WSGIPythonHome {}\n", venv.display()),
    )
    .unwrap();
    let (ok, out) = t.a2("a2enconf", "wsgi-python-home");
    assert!(ok, "{out}");
    let vhost = |inside: &str| {
        format!(
            "<VirtualHost *:{port}>\n    ServerAdmin webmaster@localhost\n    ServerAlias www.mydomain\n    \
             DocumentRoot {root}/www\n\n{inside}\n    <Directory {code}>\n        Require all granted\n    \
             </Directory>\n\n    ErrorLog ${{APACHE_LOG_DIR}}/error.log\n    \
             CustomLog ${{APACHE_LOG_DIR}}/access.log combined\n</VirtualHost>\n",
            port = t.port,
            root = t.root.display(),
            code = code.display(),
        )
    };
    let site = t.confdir.join("sites-available/mydomain.conf");
    std::fs::create_dir_all(t.root.join("www")).unwrap();
    // Inside the VirtualHost, WSGIPythonHome is refused.
    std::fs::write(
        &site,
        vhost(&format!(
            "    WSGIScriptAlias /myapp {}/myapp.wsgi\n    WSGIPythonHome {}\n",
            code.display(),
            venv.display()
        )),
    )
    .unwrap();
    let (ok, out) = t.a2("a2ensite", "mydomain.conf");
    assert!(ok, "{out}");
    let (ok, out) = t.configtest();
    assert!(!ok, "{out}");
    assert!(
        out.contains("WSGIPythonHome cannot occur within <VirtualHost> section"),
        "{out}"
    );
    std::fs::write(
        &site,
        vhost(&format!(
            "    WSGIScriptAlias /myapp {}/myapp.wsgi\n",
            code.display()
        )),
    )
    .unwrap();
    let (ok, out) = t.configtest();
    assert!(ok && out.contains("Syntax OK"), "{out}");
    // systemctl reload apache2 is apache2ctl graceful: SIGUSR1.
    unsafe { libc::kill(parent, libc::SIGUSR1) };
    let wait = |what: &dyn Fn() -> bool, why: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !what() {
            assert!(
                std::time::Instant::now() < deadline,
                "{why}:\n{}",
                a.error_log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait(
        &|| get_host(&a, "www.mydomain", "/myapp").body == b"Hello World!",
        "the VirtualHost did not serve /myapp after the reload",
    );
    wait(
        &|| {
            std::fs::read_to_string(&marker)
                .map(|s| !s.is_empty())
                .unwrap_or(false)
        },
        "WSGIPythonHome was not used",
    );
    assert!(
        !std::fs::read_to_string(&marker)
            .unwrap()
            .lines()
            .any(|l| l.trim() == parent.to_string()),
        "Python initialised in Apache's parent"
    );

    // 3. The seed's complete VirtualHost: daemon mode.
    let project = t.root.join("code/myproject");
    std::fs::create_dir_all(&project).unwrap();
    chmod(&project, 0o755);
    // (/group tells which process group answers; the seed has /myapp only.)
    std::fs::write(
        code.join("group.wsgi"),
        "def application(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
         return [environ['mod_wsgi.process_group'].encode()]\n",
    )
    .unwrap();
    chmod(&code.join("group.wsgi"), 0o644);
    std::fs::write(
        &site,
        vhost(&format!(
            "    WSGIScriptAlias /myapp {code}/myapp.wsgi\n    \
             WSGIScriptAlias /group {code}/group.wsgi\n    \
             WSGIDaemonProcess myproject  python-path={project} processes=2 threads=15\n    \
             WSGIProcessGroup myproject\n",
            code = code.display(),
            project = project.display()
        )),
    )
    .unwrap();
    let (ok, out) = t.configtest();
    assert!(ok && out.contains("Syntax OK"), "{out}");
    unsafe { libc::kill(parent, libc::SIGUSR1) };
    wait(
        &|| get_host(&a, "www.mydomain", "/group").body == b"myproject",
        "the daemon process group did not answer after the reload",
    );
    assert_eq!(get_host(&a, "www.mydomain", "/myapp").body, b"Hello World!");
    assert!(!a.error_log().contains("exit signal"), "{}", a.error_log());
}

/// Issue #2 point 1: the built module exports the `wsgi_module` record and
/// nothing else, and links the libpython of the Python it was built for
/// (Debian's /usr/bin/python3 unless PYO3_PYTHON says otherwise).
#[test]
fn module_exports_only_wsgi_module_and_links_libpython() {
    let so = module_path();
    let (ok, out) = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&so));
    assert!(ok, "{out}");
    let exported: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(exported, ["wsgi_module"], "{out}");
    let python = option_env!("PYO3_PYTHON").unwrap_or("/usr/bin/python3");
    let (ok, soname) = run(Command::new(python).args([
        "-c",
        "import sysconfig; print(sysconfig.get_config_var('INSTSONAME'))",
    ]));
    assert!(ok, "{soname}");
    let (ok, dynamic) = run(Command::new("readelf").arg("-d").arg(&so));
    assert!(ok, "{dynamic}");
    assert!(
        dynamic.contains(&format!("Shared library: [{}]", soname.trim())),
        "{dynamic}"
    );
    // Apache's and APR's own symbols come from the httpd binary: never a
    // second copy of them in the module.
    assert!(!dynamic.contains("libapr"), "{dynamic}");
}

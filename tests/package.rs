//! The Debian package, for real: `scripts/build-deb.sh` packages the build
//! these tests run with, `apt-get install` installs it, `a2enmod wsgi_rs`
//! enables it in a copy of /etc/apache2 (refused while the C mod_wsgi's
//! `wsgi` is enabled there), an Apache started from that copy serves a
//! .wsgi in embedded and daemon mode, and the package is purged at the end,
//! also when the test fails. The live /etc/apache2 only ever gains the
//! package's two mods-available files, and loses them again on purge.
//!
//! Needs root (it installs a package); without root it says it is skipped.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const PKG: &str = "mod-wsgi-rs";
const MODULE: &str = "/usr/lib/apache2/modules/mod_wsgi_rs.so";
const LOAD: &str = "/etc/apache2/mods-available/wsgi_rs.load";
const CONF: &str = "/etc/apache2/mods-available/wsgi_rs.conf";
const EXPRESS: &str = "/usr/bin/wsgi-express";
const DOC: &str = "/usr/share/doc/mod-wsgi-rs";
const LIVE: &str = "/etc/apache2";

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn must(cmd: &mut Command) -> String {
    let (ok, out) = run(cmd);
    assert!(ok, "{cmd:?} failed:\n{out}");
    out
}

/// Every path under `dir` with what it is: a symlink's target, a file's
/// mode and contents, a directory's mode. Two equal snapshots mean nothing
/// Apache reads there has changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(p: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let meta = std::fs::symlink_metadata(p).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link -> {}", std::fs::read_link(p).unwrap().display())
        } else if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, out);
            }
            format!("dir {:o}", meta.mode())
        } else {
            format!(
                "file {:o} {}",
                meta.mode(),
                String::from_utf8_lossy(&std::fs::read(p).unwrap())
            )
        };
        out.insert(p.to_path_buf(), what);
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

fn differences(a: &BTreeMap<PathBuf, String>, b: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => d.push(format!("removed: {}", k.display())),
            Some(w) if w != v => d.push(format!("changed: {}", k.display())),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        d.push(format!("added: {}", k.display()));
    }
    d
}

fn package_status() -> String {
    let (_, out) = run(Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", PKG])
        .env("LANG", "C"));
    out
}

/// The installed package: purged when dropped (a failed test included),
/// unless `purge` already did.
struct Installed {
    purged: bool,
}

impl Installed {
    /// `apt-get install ./the.deb`, or `dpkg -i` when apt-get cannot work
    /// (no network, no package lists): the package's dependencies are
    /// installed by scripts/install-deps.sh already.
    fn install(deb: &Path) -> Installed {
        let guard = Installed { purged: false };
        let (ok, out) = run(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "-o",
                "DPkg::Lock::Timeout=300",
            ])
            .arg(deb)
            .env("DEBIAN_FRONTEND", "noninteractive"));
        if !ok {
            eprintln!("apt-get install failed, trying dpkg -i:\n{out}");
            must(
                Command::new("dpkg")
                    .arg("-i")
                    .arg(deb)
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            );
        }
        guard
    }

    fn purge(&mut self) -> String {
        self.purged = true;
        let (ok, out) = run(Command::new("apt-get")
            .args(["purge", "-y", "-o", "DPkg::Lock::Timeout=300", PKG])
            .env("DEBIAN_FRONTEND", "noninteractive"));
        if ok {
            return out;
        }
        eprintln!("apt-get purge failed, trying dpkg --purge:\n{out}");
        must(Command::new("dpkg").args(["--purge", PKG]))
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.purged {
            let out = self.purge();
            eprintln!("purged {PKG} after a failure:\n{out}");
        }
    }
}

/// a2enmod/a2dismod/a2ensite on the copied tree, with their state markers
/// in the temp dir too (never /var/lib/apache2).
fn a2(tool: &str, arg: &str, confdir: &Path, state: &Path) -> (bool, String) {
    run(Command::new(tool)
        .arg(arg)
        .env("APACHE_CONFDIR", confdir)
        .env("APACHE_STATE_DIRECTORY", state))
}

/// The target directory and profile of the build these tests run with
/// (target/debug/deps/package-HASH -> target, debug).
fn build_dir() -> (PathBuf, String) {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    (
        profile_dir.parent().unwrap().to_path_buf(),
        profile_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    )
}

const INFO_APP: &str = r#"import os
import mod_wsgi

def application(environ, start_response):
    body = 'group=%r version=%r file=%s' % (
        environ.get('mod_wsgi.process_group'), mod_wsgi.version, __file__)
    body = body.encode('utf-8')
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#;

#[test]
fn debian_package_installs_enables_serves_and_purges() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "SKIPPED debian_package_installs_enables_serves_and_purges: it installs and purges \
             the {PKG} package, which needs root (CI runs it as root)."
        );
        return;
    }
    let status = package_status();
    assert!(
        !status.contains("installed"),
        "{PKG} is already installed here ({status}): this test installs and purges it. \
         Purge it first: apt-get purge {PKG}"
    );
    assert!(
        !Path::new(LIVE).join("mods-enabled/wsgi_rs.load").exists(),
        "wsgi_rs is enabled in the live {LIVE}: purging the package at the end of this test \
         would disable it, so the test does not run here."
    );
    for f in [MODULE, LOAD, CONF, EXPRESS] {
        assert!(
            !Path::new(f).exists(),
            "{f} exists although {PKG} is not installed (apxs/install.sh or \
             conf/install-debian.sh?): the purge at the end of this test would delete it. \
             Remove it first."
        );
    }

    let root = temp_root("package");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));

    // 1. The one command, on the build these tests run with.
    let (target_dir, profile) = build_dir();
    let out_dir = root.join("deb");
    let mut build = Command::new("bash");
    build
        .arg(repo.join("scripts/build-deb.sh"))
        .arg("--no-build")
        .arg("--out")
        .arg(&out_dir)
        .env("CARGO_TARGET_DIR", &target_dir);
    if profile == "debug" {
        build.arg("--debug");
    }
    let out = must(&mut build);
    let arch = must(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string();
    let deb = out_dir.join(format!("{PKG}_{}-1_{arch}.deb", env!("CARGO_PKG_VERSION")));
    assert!(deb.is_file(), "no {}:\n{out}", deb.display());

    // 2. Its control fields.
    let field = |name: &str| {
        must(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), PKG);
    assert_eq!(field("Architecture"), arch);
    assert_eq!(field("Section"), "httpd");
    assert!(field("Maintainer").contains('<'), "{}", field("Maintainer"));
    assert!(
        field("Description").starts_with("Apache httpd's mod_wsgi, rebuilt in Rust"),
        "{}",
        field("Description")
    );
    let depends = field("Depends");
    let (x, y) = mod_wsgi_rs::express::apache::module_facts(&module_path())
        .unwrap()
        .python
        .expect("the module links a libpython");
    for want in [
        "apache2-api-20120211".to_string(),
        "libc6 ".to_string(),
        format!("libpython{x}.{y} "),
    ] {
        assert!(depends.contains(&want), "Depends lacks {want:?}: {depends}");
    }
    assert!(
        field("Conflicts").is_empty() && !depends.contains("mod-wsgi"),
        "the package must install next to libapache2-mod-wsgi-py3"
    );
    let control = root.join("control");
    must(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    let mut listed: Vec<&str> = conffiles.lines().collect();
    listed.sort();
    assert_eq!(listed, [CONF, LOAD]);
    for script in ["prerm", "postrm"] {
        let p = control.join(script);
        assert!(std::fs::metadata(&p).unwrap().mode() & 0o111 != 0);
        must(Command::new("sh").arg("-n").arg(&p));
        assert!(
            std::fs::read_to_string(&p)
                .unwrap()
                .contains("apache2_invoke dismod wsgi_rs")
        );
    }
    assert!(
        !control.join("postinst").exists(),
        "enabling the module is the administrator's choice"
    );

    // 3. Install it for real.
    let live_before = snapshot(Path::new(LIVE));
    let mut installed = Installed::install(&deb);
    assert!(
        package_status().contains("install ok installed"),
        "{}",
        package_status()
    );
    let mode = |p: &str| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(MODULE), 0o644);
    assert_eq!(mode(EXPRESS), 0o755);
    assert_eq!(
        std::fs::read_to_string(LOAD).unwrap(),
        std::fs::read_to_string(repo.join("conf/wsgi_rs.load")).unwrap()
    );
    for doc in [
        "copyright",
        "changelog.Debian.gz",
        "README.md.gz",
        "README.Debian",
    ] {
        assert!(Path::new(DOC).join(doc).is_file(), "no {DOC}/{doc}");
    }
    let copyright = std::fs::read_to_string(Path::new(DOC).join("copyright")).unwrap();
    assert!(copyright.contains("pyo3 v"), "{copyright}");
    // The live tree gained the two mods-available files, nothing else.
    let mut expected = live_before.clone();
    let live_now = snapshot(Path::new(LIVE));
    for f in [LOAD, CONF] {
        expected.insert(PathBuf::from(f), live_now[Path::new(f)].clone());
    }
    assert_eq!(differences(&expected, &live_now), Vec::<String>::new());

    // 4. wsgi-express from the package finds the packaged module.
    let location = must(
        Command::new(EXPRESS)
            .arg("module-location")
            .env_remove("MOD_WSGI_RS_SO"),
    );
    assert_eq!(location.trim(), MODULE);
    let config = must(
        Command::new(EXPRESS)
            .arg("module-config")
            .env_remove("MOD_WSGI_RS_SO")
            .env_remove("VIRTUAL_ENV"),
    );
    assert!(
        config.contains(&format!("LoadModule wsgi_module \"{MODULE}\"")),
        "{config}"
    );

    // 5. a2enmod on a copy of the config tree: refused while `wsgi` is
    // enabled, as both define wsgi_module.
    let confdir = root.join("apache2");
    let state = root.join("state");
    must(Command::new("cp").arg("-a").arg(LIVE).arg(&confdir));
    if !confdir.join("mods-available/wsgi.load").exists() {
        // libapache2-mod-wsgi-py3 is not installed: its wsgi.load, as a
        // stand-in that a2enmod can enable in the copy.
        std::fs::write(
            confdir.join("mods-available/wsgi.load"),
            "LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so\n",
        )
        .unwrap();
    }
    let (ok, out) = a2("a2enmod", "wsgi", &confdir, &state);
    assert!(ok, "{out}");
    let (ok, out) = a2("a2enmod", "wsgi_rs", &confdir, &state);
    assert!(
        !ok,
        "a2enmod wsgi_rs succeeded while wsgi is enabled:\n{out}"
    );
    assert!(
        out.contains("Module wsgi is enabled - cannot proceed due to conflicts"),
        "{out}"
    );
    assert!(!confdir.join("mods-enabled/wsgi_rs.load").exists());
    let (ok, out) = a2("a2dismod", "wsgi", &confdir, &state);
    assert!(ok, "{out}");
    let (ok, out) = a2("a2enmod", "wsgi_rs", &confdir, &state);
    assert!(ok, "{out}");
    for f in ["wsgi_rs.load", "wsgi_rs.conf"] {
        let link = confdir.join("mods-enabled").join(f);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../mods-available").join(f)
        );
    }

    // 6. The copy as a private server: its own port, runtime, lock and
    // log directories under the temp dir (through its envvars, which
    // apache2ctl reads), no site but ours.
    let port = free_port();
    let run_dir = root.join("run");
    let lock_dir = root.join("lock");
    let log_dir = root.join("logs");
    std::fs::create_dir_all(&lock_dir).unwrap();
    let env = [
        ("APACHE_RUN_USER", "www-data".to_string()),
        ("APACHE_RUN_GROUP", "www-data".to_string()),
        (
            "APACHE_PID_FILE",
            run_dir.join("apache2.pid").display().to_string(),
        ),
        ("APACHE_RUN_DIR", run_dir.display().to_string()),
        ("APACHE_LOCK_DIR", lock_dir.display().to_string()),
        ("APACHE_LOG_DIR", log_dir.display().to_string()),
        ("LANG", "C".to_string()),
    ];
    let envvars: String = env
        .iter()
        .map(|(k, v)| format!("export {k}={v}\n"))
        .collect();
    std::fs::write(confdir.join("envvars"), envvars).unwrap();
    std::fs::write(
        confdir.join("ports.conf"),
        format!("Listen 127.0.0.1:{port}\n"),
    )
    .unwrap();
    for e in std::fs::read_dir(confdir.join("sites-enabled")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let app = root.join("app/info.wsgi");
    std::fs::write(&app, INFO_APP).unwrap();
    chmod(&app, 0o644);
    std::fs::write(
        confdir.join("sites-available/wsgi-rs-test.conf"),
        format!(
            r#"<VirtualHost 127.0.0.1:{port}>
    ServerName localhost
    WSGIDaemonProcess pkgtest user=www-data group=www-data processes=1 threads=2
    WSGIScriptAlias /embedded {app}
    WSGIScriptAlias /daemon {app} process-group=pkgtest application-group=%{{GLOBAL}}
    <Directory {dir}>
        Require all granted
    </Directory>
</VirtualHost>
"#,
            app = app.display(),
            dir = root.join("app").display(),
        ),
    )
    .unwrap();
    let (ok, out) = a2("a2ensite", "wsgi-rs-test", &confdir, &state);
    assert!(ok, "{out}");
    let out = must(
        Command::new("apache2ctl")
            .arg("configtest")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/bin")
            .env("APACHE_CONFDIR", &confdir),
    );
    assert!(out.contains("Syntax OK"), "{out}");

    // Started as apache2ctl would (-d, the envvars), but directly, so that
    // the harness holds Apache's own pid and stops it by that pid.
    let mut cmd = Command::new(APACHE);
    cmd.arg("-d")
        .arg(&confdir)
        .arg("-f")
        .arg(confdir.join("apache2.conf"))
        .arg("-DFOREGROUND")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/bin");
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let mut apache = Apache::launch(
        root.clone(),
        port,
        confdir.join("apache2.conf"),
        log_dir.join("error.log"),
        cmd,
    )
    .unwrap_or_else(|e| panic!("Apache did not start from {}:\n{e}", confdir.display()));

    // 7. A .wsgi served in embedded and in daemon mode, by this module
    // (mod_wsgi.version 6.0.0; the C mod_wsgi says 4.x).
    let r = apache.get("/embedded");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        format!("group='' version=(6, 0, 0) file={}", app.display())
    );
    let r = apache.get("/daemon");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        format!("group='pkgtest' version=(6, 0, 0) file={}", app.display())
    );
    let log = apache.stop();
    assert!(!log.contains("Segmentation fault"), "{log}");
    drop(apache);

    // 8. Purge: every file of the package is gone, and the live tree is as
    // it was before the install.
    let out = installed.purge();
    assert!(
        !package_status().contains("installed"),
        "{}\n{out}",
        package_status()
    );
    for f in [MODULE, LOAD, CONF, EXPRESS, DOC] {
        assert!(!Path::new(f).exists(), "{f} survived the purge:\n{out}");
    }
    assert_eq!(
        differences(&live_before, &snapshot(Path::new(LIVE))),
        Vec::<String>::new()
    );
}

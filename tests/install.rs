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

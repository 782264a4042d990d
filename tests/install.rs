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

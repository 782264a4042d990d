//! The access-control script directives against a real Apache:
//! WSGIAuthUserScript behind `AuthBasicProvider wsgi` and
//! `AuthDigestProvider wsgi`, WSGIAuthGroupScript behind
//! `Require wsgi-group`, WSGIAccessScript in the access checker, and the
//! scripts running in Apache's children for a daemon-mode application.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

/// The auth modules the harness does not load.
const AUTH_MODULES: &str = r#"
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule auth_digest_module /usr/lib/apache2/modules/mod_auth_digest.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
"#;

fn basic_location(path: &str, extra: &str) -> String {
    format!(
        r#"
WSGIScriptAlias {path} {{APPS}}/whoami.wsgi
<Location {path}>
    AuthType Basic
    AuthName "Top Secret"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{APPS}}/auth_provider.wsgi
    {extra}
</Location>
"#
    )
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_encodes() {
    assert_eq!(base64(b"spy:secret"), "c3B5OnNlY3JldA==");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
}

fn basic(a: &Apache, path: &str, user: &str, password: &str) -> Response {
    let auth = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
    a.request("GET", path, &[("Authorization", &auth)], b"")
}

/// Hex MD5 through the system Python, so the test needs no crate.
fn md5_hex(s: &str) -> String {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.md5(sys.argv[1].encode()).hexdigest())",
            s,
        ])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn md5_of_known_value() {
    assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
}

#[test]
fn basic_auth_with_check_password() {
    let body = format!(
        "{AUTH_MODULES}{}",
        basic_location("/basic", "Require valid-user")
    );
    let a = Apache::start("auth_basic", &body);

    let r = a.get("/basic");
    assert_eq!(r.status, 401, "no credentials");
    assert!(
        r.header("WWW-Authenticate")
            .is_some_and(|h| h.contains("Basic realm=\"Top Secret\"")),
        "{:?}",
        r.headers
    );

    let r = basic(&a, "/basic", "spy", "secret");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("user=spy auth=Basic "), "{}", r.text());

    let r = basic(&a, "/basic", "spy", "wrong");
    assert_eq!(r.status, 401, "wrong password");
    assert!(a.wait_log(
        "AH01617: user spy: authentication failure",
        Duration::from_secs(5)
    ));

    let r = basic(&a, "/basic", "nobody", "x");
    assert_eq!(r.status, 401, "unknown user");
    assert!(a.wait_log("AH01618: user nobody not found", Duration::from_secs(5)));

    // A user name returned by check_password becomes REMOTE_USER.
    let r = basic(&a, "/basic", "alias", "bob");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("user=renamed-bob "), "{}", r.text());
}

#[test]
fn check_password_exception_is_a_500_with_traceback() {
    let body = format!(
        "{AUTH_MODULES}{}",
        basic_location("/basic", "Require valid-user")
    );
    let a = Apache::start("auth_boom", &body);

    let r = basic(&a, "/basic", "boom", "x");
    assert_eq!(r.status, 500);
    assert!(a.wait_log(
        "RuntimeError: auth script exploded for boom",
        Duration::from_secs(5)
    ));
    let log = a.error_log();
    assert!(
        log.contains("Exception occurred processing WSGI script")
            && log.contains("auth_provider.wsgi")
            && log.contains("Traceback (most recent call last):")
            && log.contains("in check_password"),
        "{log}"
    );

    // A result that is not True, False, None or a string.
    let r = basic(&a, "/basic", "weird", "x");
    assert_eq!(r.status, 500);
    assert!(a.wait_log(
        "TypeError: Basic auth provider must return True, False None or user name as string",
        Duration::from_secs(5)
    ));

    // The failures left the interpreter fine.
    assert_eq!(basic(&a, "/basic", "spy", "secret").status, 200);
}

#[test]
fn script_without_the_function_or_file_is_a_500() {
    let body = format!(
        r#"{AUTH_MODULES}
WSGIScriptAlias /nofunc {{APPS}}/whoami.wsgi
<Location /nofunc>
    AuthType Basic
    AuthName "x"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{APPS}}/hello.wsgi
    Require valid-user
</Location>
WSGIScriptAlias /nofile {{APPS}}/whoami.wsgi
<Location /nofile>
    AuthType Basic
    AuthName "x"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{APPS}}/does-not-exist.wsgi
    Require valid-user
</Location>
"#
    );
    let a = Apache::start("auth_nofunc", &body);
    assert_eq!(basic(&a, "/nofunc", "spy", "secret").status, 500);
    assert!(a.wait_log(
        "Target WSGI user authentication script",
        Duration::from_secs(5)
    ));
    assert!(
        a.error_log()
            .contains("hello.wsgi' does not provide 'Basic' auth provider.")
    );
    assert_eq!(basic(&a, "/nofile", "spy", "secret").status, 500);
    assert!(a.wait_log("Failed to exec Python script file", Duration::from_secs(5)));
    assert!(a.error_log().contains("does-not-exist.wsgi"));
}

#[test]
fn environ_of_auth_scripts() {
    let body = format!(
        "{AUTH_MODULES}LoadModule env_module /usr/lib/apache2/modules/mod_env.so\n{}{}",
        basic_location(
            "/basic",
            "Require valid-user\n    SetEnv SECRET_SETTING leaked"
        ),
        basic_location("/grouped", "Require valid-user").replace(
            "auth_provider.wsgi",
            "auth_provider.wsgi application-group=django"
        ),
    );
    let a = Apache::start("auth_environ", &body);
    let r = a.request(
        "GET",
        "/basic/more?q=1",
        &[
            ("Authorization", &format!("Basic {}", base64(b"envdump:x"))),
            ("X-Custom", "yes"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(a.wait_log("AUTH-ENVIRON", Duration::from_secs(5)));
    let log = a.error_log();
    let line = log
        .lines()
        .find(|l| l.contains("AUTH-ENVIRON"))
        .unwrap()
        .to_string();
    for want in [
        "REQUEST_URI=/basic/more?q=1",
        "QUERY_STRING=q=1",
        "REQUEST_METHOD=GET",
        "SERVER_PROTOCOL=HTTP/1.1",
        "REMOTE_ADDR=127.0.0.1",
        "HTTP_X_CUSTOM=yes",
        "SCRIPT_NAME=/basic",
        "PATH_INFO=/more",
        "mod_wsgi.process_group= ",
        "mod_wsgi.application_group= ",
        "mod_wsgi.script_reloading=1",
        "mod_wsgi.version=(6, 0, 0)",
        "apache.version=(2, 4,",
    ] {
        assert!(line.contains(want), "{want} missing in {line}");
    }
    for unwanted in ["HTTP_AUTHORIZATION", "SECRET_SETTING", "leaked"] {
        assert!(!line.contains(unwanted), "{unwanted} in {line}");
    }

    // application-group= names the interpreter the script runs for.
    let r = basic(&a, "/grouped", "envdump", "x");
    assert_eq!(r.status, 200);
    assert!(a.wait_log("mod_wsgi.application_group=django ", Duration::from_secs(5)));
}

#[test]
fn auth_script_reloads_when_it_changes() {
    let body = format!(
        "{AUTH_MODULES}{}",
        basic_location("/basic", "Require valid-user")
    );
    let a = Apache::start_with(
        "auth_reload",
        &body,
        Options {
            servers: 1,
            threads: 2,
            ..Options::default()
        },
    );
    assert_eq!(basic(&a, "/basic", "spy", "secret").status, 200);
    let script = a.app_path("auth_provider.wsgi");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(&script, text.replace("'spy': 'secret'", "'spy': 'changed'")).unwrap();
    assert_eq!(basic(&a, "/basic", "spy", "changed").status, 200);
    assert_eq!(basic(&a, "/basic", "spy", "secret").status, 401);
}

/// The Digest client side of RFC 2617 with qop=auth.
fn digest(a: &Apache, path: &str, user: &str, password: &str) -> Response {
    let challenge = a.get(path);
    assert_eq!(challenge.status, 401);
    let h = challenge
        .header("WWW-Authenticate")
        .expect("Digest challenge")
        .to_string();
    assert!(h.starts_with("Digest "), "{h}");
    let field = |name: &str| {
        let pat = format!("{name}=\"");
        let start = h.find(&pat).unwrap_or_else(|| panic!("{name} in {h}")) + pat.len();
        h[start..start + h[start..].find('"').unwrap()].to_string()
    };
    let (realm, nonce) = (field("realm"), field("nonce"));
    let (nc, cnonce) = ("00000001", "0a4f113b");
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("GET:{path}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    let auth = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{path}\", \
         qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\", algorithm=MD5"
    );
    a.request("GET", path, &[("Authorization", &auth)], b"")
}

#[test]
fn digest_auth_with_get_realm_hash() {
    let body = format!(
        r#"{AUTH_MODULES}
WSGIScriptAlias /digest {{APPS}}/whoami.wsgi
<Location /digest>
    AuthType Digest
    AuthName "Top Secret"
    AuthDigestProvider wsgi
    WSGIAuthUserScript {{APPS}}/auth_provider.wsgi
    Require valid-user
</Location>
"#
    );
    let a = Apache::start("auth_digest", &body);
    // str result
    let r = digest(&a, "/digest", "spy", "secret");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert!(
        r.text().starts_with("user=spy auth=Digest "),
        "{}",
        r.text()
    );
    // bytes result
    let r = digest(&a, "/digest", "bond", "007");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert!(r.text().starts_with("user=bond "), "{}", r.text());
    // wrong password: the hash does not match
    assert_eq!(digest(&a, "/digest", "spy", "wrong").status, 401);
    assert!(a.wait_log(
        "AH01794: user spy: password mismatch",
        Duration::from_secs(5)
    ));
    // unknown user: get_realm_hash returned None
    assert_eq!(digest(&a, "/digest", "nobody", "x").status, 401);
    assert!(a.wait_log(
        "AH01790: user `nobody' in realm `Top Secret' not found",
        Duration::from_secs(5)
    ));
}

#[test]
fn require_wsgi_group_with_groups_for_user() {
    let group_loc = |path: &str, require: &str| {
        basic_location(
            path,
            &format!(
                "WSGIAuthGroupScript {{APPS}}/auth_provider.wsgi\n    WSGIGroupAuthoritative On\n    Require {require}"
            ),
        )
    };
    let body = format!(
        "{AUTH_MODULES}{}{}",
        group_loc("/agents", "wsgi-group secret-agents staff"),
        group_loc("/doubleo", "wsgi-group 'double-o'"),
    );
    let a = Apache::start("auth_group", &body);
    // str group
    let r = basic(&a, "/agents", "spy", "secret");
    assert_eq!(r.status, 200, "{}", r.text());
    // a second group on the line; bond's groups mix bytes and str
    assert_eq!(basic(&a, "/agents", "bond", "007").status, 200);
    assert_eq!(basic(&a, "/doubleo", "bond", "007").status, 200);
    // in other groups: Apache asks again (401), as it does for Require group
    assert_eq!(basic(&a, "/doubleo", "spy", "secret").status, 401);
    assert!(a.wait_log(
        "Authorization of user 'spy' to access '/doubleo' failed. User is not a member of designated groups.",
        Duration::from_secs(5)
    ));
    // in no group at all
    assert_eq!(basic(&a, "/agents", "loner", "alone").status, 401);
    assert!(a.wait_log(
        "Authorization of user 'loner' to access '/agents' failed. User is not a member of any groups.",
        Duration::from_secs(5)
    ));
    // groups_for_user raised: denied, with the traceback
    assert_eq!(basic(&a, "/agents", "grpboom", "pw").status, 401);
    assert!(a.wait_log("ValueError: group lookup exploded", Duration::from_secs(5)));
    assert!(a.error_log().contains("in groups_for_user"));
    // wrong password never reaches the group check
    assert_eq!(basic(&a, "/agents", "spy", "nope").status, 401);
}

#[test]
fn access_script_allows_and_denies_by_host() {
    let mut body = String::new();
    for p in ["/local", "/elsewhere", "/nobody", "/broken", "/maybe"] {
        body.push_str(&format!(
            "WSGIScriptAlias {p} {{APPS}}/whoami.wsgi\n<Location {p}>\n    WSGIAccessScript {{APPS}}/access.wsgi\n</Location>\n"
        ));
    }
    let a = Apache::start("auth_access", &body);
    let r = a.get("/local");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(a.wait_log("ACCESS-CHECK /local 127.0.0.1", Duration::from_secs(5)));

    assert_eq!(a.get("/elsewhere").status, 403);
    assert!(a.wait_log(
        "Client denied by server configuration: '",
        Duration::from_secs(5)
    ));

    // None: no opinion, the rest of the configuration decides.
    assert_eq!(a.get("/nobody").status, 200);

    assert_eq!(a.get("/broken").status, 403);
    assert!(a.wait_log("KeyError: 'access script exploded'", Duration::from_secs(5)));

    assert_eq!(a.get("/maybe").status, 403);
    assert!(a.wait_log(
        "access.wsgi' must a boolean or None.",
        Duration::from_secs(5)
    ));
}

#[test]
fn auth_runs_in_apache_child_for_a_daemon_application() {
    // WSGIRestrictEmbedded On: applications only run in the daemon, yet the
    // auth script still runs in Apache's children, as with mod_wsgi.
    let body = format!(
        r#"{AUTH_MODULES}
WSGIRestrictEmbedded On
WSGIDaemonProcess authd processes=1 threads=2
WSGIScriptAlias /daemon {{APPS}}/whoami.wsgi process-group=authd application-group=%{{GLOBAL}}
<Location /daemon>
    AuthType Basic
    AuthName "Top Secret"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{APPS}}/auth_provider.wsgi
    Require valid-user
</Location>
"#
    );
    let a = Apache::start("auth_daemon", &body);
    assert_eq!(a.get("/daemon").status, 401);
    assert_eq!(basic(&a, "/daemon", "spy", "wrong").status, 401);
    let r = basic(&a, "/daemon", "envdump", "x");
    assert_eq!(r.status, 200, "{}", a.error_log());
    let text = r.text();
    assert!(
        text.starts_with("user=envdump auth=Basic ") && text.ends_with("process_group=authd"),
        "{text}"
    );
    let app_pid: u32 = text
        .split("pid=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(a.wait_log("AUTH-PID ", Duration::from_secs(5)));
    let log = a.error_log();
    let auth_pid: u32 = log
        .lines()
        .find_map(|l| l.split("AUTH-PID ").nth(1))
        .and_then(|s| s.trim().parse().ok())
        .unwrap();
    assert_ne!(
        auth_pid, app_pid,
        "auth ran in the Apache child, not the daemon"
    );
    let comm = std::fs::read_to_string(format!("/proc/{auth_pid}/comm")).unwrap_or_default();
    assert!(
        comm.starts_with("apache2"),
        "auth pid {auth_pid} is {comm:?}"
    );
}

#[test]
fn config_errors_use_mod_wsgi_sentences() {
    let (ok, out) = config_test(
        "auth_badconf",
        "<Location />\nWSGIAuthUserScript /x.wsgi process-group=x\n</Location>\n",
    );
    assert!(!ok);
    assert!(
        out.contains("Invalid option to WSGI auth user script definition."),
        "{out}"
    );
    let (ok, out) = config_test(
        "auth_badconf",
        "<Location />\nWSGIAccessScript\n</Location>\n",
    );
    assert!(!ok);
    assert!(
        out.contains("Location of access script not supplied."),
        "{out}"
    );
    let (ok, out) = config_test(
        "auth_badconf",
        "<Location />\nWSGIGroupAuthoritative sometimes\n</Location>\n",
    );
    assert!(!ok);
    assert!(
        out.contains("WSGIGroupAuthoritative must be one of: Off | On"),
        "{out}"
    );
}

/// A site-packages with Django for the Python the module embeds: the one
/// `scripts/serve-examples.sh` (run by `scripts/test.sh`) installs, or
/// `MOD_WSGI_RS_DJANGO_SITE_PACKAGES`. None when there is none.
fn django_site_packages() -> Option<std::path::PathBuf> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys; print('python%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .ok()?;
    let pyver = String::from_utf8(out.stdout).ok()?.trim().to_string();
    let mut candidates: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("MOD_WSGI_RS_DJANGO_SITE_PACKAGES") {
        candidates.push(p.into());
    }
    for home in [
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/.pyhome"),
        "/var/tmp/mod_wsgi-rs-examples/examples/.pyhome",
    ] {
        candidates.push(
            std::path::Path::new(home)
                .join("lib")
                .join(&pyver)
                .join("site-packages"),
        );
    }
    candidates
        .into_iter()
        .find(|p| p.join("django/contrib/auth/handlers/modwsgi.py").is_file())
}

/// Django's documented flow: one wsgi.py serves the site and, through
/// WSGIAuthUserScript / WSGIAuthGroupScript, Django's own
/// `check_password` and `groups_for_user` against its user database.
#[test]
fn django_check_password_and_groups_for_user() {
    let Some(site) = django_site_packages() else {
        eprintln!(
            "SKIPPED: no Django found (run scripts/serve-examples.sh --check, or set \
             MOD_WSGI_RS_DJANGO_SITE_PACKAGES)"
        );
        return;
    };
    let body = format!(
        r#"{AUTH_MODULES}
WSGIPythonPath {site}:{{APPS}}
WSGIApplicationGroup %{{GLOBAL}}
WSGIScriptAlias /secret {{APPS}}/whoami.wsgi
<Location /secret>
    AuthType Basic
    AuthName "Top Secret"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{APPS}}/djauth.wsgi
    Require valid-user
</Location>
WSGIScriptAlias /staff {{APPS}}/whoami.wsgi
<Location /staff>
    AuthType Basic
    AuthName "Staff"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {{APPS}}/djauth.wsgi
    WSGIAuthGroupScript {{APPS}}/djauth.wsgi
    Require wsgi-group staff
</Location>
"#,
        site = site.display()
    );
    let a = Apache::start("auth_django", &body);
    // The user database, made with Django's own tools before any request.
    let python = site.join("../../../bin/python");
    let setup = Command::new(&python)
        .current_dir(a.app_path(""))
        .env("PYTHONPATH", a.app_path(""))
        .env("DJANGO_SETTINGS_MODULE", "djauth_settings")
        .args([
            "-c",
            "import django; django.setup()\n\
             from django.core.management import call_command\n\
             call_command('migrate', verbosity=0)\n\
             from django.contrib.auth.models import User, Group\n\
             User.objects.create_user('alice', password='wonderland')\n\
             bob = User.objects.create_user('bob', password='builder')\n\
             bob.groups.add(Group.objects.create(name='staff'))\n\
             User.objects.create_user('eve', password='x', is_active=False)\n",
        ])
        .output()
        .expect("running Django's python");
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    chmod(&a.app_path("djauth.sqlite3"), 0o644);

    let r = basic(&a, "/secret", "alice", "wonderland");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert!(
        r.text().starts_with("user=alice auth=Basic "),
        "{}",
        r.text()
    );
    assert_eq!(basic(&a, "/secret", "alice", "wrong").status, 401);
    assert_eq!(basic(&a, "/secret", "nobody", "x").status, 401);
    // Inactive users are unknown to Django's check_password.
    assert_eq!(basic(&a, "/secret", "eve", "x").status, 401);
    assert!(a.wait_log("AH01618: user eve not found", Duration::from_secs(5)));

    assert_eq!(basic(&a, "/staff", "bob", "builder").status, 200);
    assert_eq!(basic(&a, "/staff", "alice", "wonderland").status, 401);
    assert!(a.wait_log(
        "Authorization of user 'alice' to access '/staff' failed. User is not a member of any groups.",
        Duration::from_secs(5)
    ));
}

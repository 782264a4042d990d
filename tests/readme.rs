//! The README must say what the module does: every directive the module
//! registers is listed in its table, refused ones as "no", parsed but inert
//! ones as "parsed only"; it shows the two set-up commands. And the
//! examples it points to are served, each with the Apache configuration
//! of conf/samples/ that goes with it.

mod common;
use common::*;
use mod_wsgi_rs::config;
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn readme_feature_table_matches_the_directive_table() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (name, supported) in config::feature_table() {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("README lists no row for {name}"));
        let state = row.split('|').nth(2).unwrap().trim();
        if !supported {
            assert!(
                state.starts_with("no"),
                "{name} is refused but README says {state:?}"
            );
        } else if config::INERT_DIRECTIVES.contains(&name) {
            assert!(
                state.starts_with("parsed only"),
                "{name} is inert but README says {state:?}"
            );
        } else {
            assert!(
                state == "yes" || state == "partial",
                "{name}: README says {state:?}"
            );
        }
    }
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The ```sh blocks of `text`, each as its lines.
fn sh_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(b), "```") => {
                blocks.push(b.join("\n"));
                current = None;
            }
            (Some(b), l) => b.push(l),
            _ => {}
        }
    }
    blocks
}

/// The `--flags` in a piece of shell.
fn flags(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(['\\', ';']).to_string())
        .collect()
}

#[test]
fn readme_keeps_exactly_two_setup_commands() {
    let readme = readme();
    let start = readme
        .find("## Two commands")
        .expect("a '## Two commands' section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    assert_eq!(
        sh_blocks(section),
        ["scripts/serve-examples.sh", "scripts/test.sh"]
    );
}

/// The wsgi-express command the README shows is the one
/// scripts/serve-examples.sh runs: the same application, include file,
/// environment and flags (--embedded-mode aside, which the script adds for
/// embedded mode).
#[test]
fn readme_shows_the_wsgi_express_command_that_serve_examples_runs() {
    let readme = readme();
    let shown = sh_blocks(&readme)
        .into_iter()
        .find(|b| b.contains("wsgi-express start-server examples/flask/hello.wsgi"))
        .expect("the README shows the examples' wsgi-express command");
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/serve-examples.sh"
    ))
    .unwrap();
    let start = script
        .find("express_command() {")
        .expect("serve-examples.sh builds its command in express_command");
    let function = &script[start..start + script[start..].find("\n}\n").unwrap()];
    let mut run = flags(function);
    assert!(run.remove("--embedded-mode"), "{function}");
    assert_eq!(flags(&shown), run, "README:\n{shown}\nscript:\n{function}");
    for word in [
        "start-server",
        "/flask/hello.wsgi",
        "/wsgi-express.conf",
        "--mount-point /flask",
        "--process-group examples",
    ] {
        assert!(
            shown.contains(word) && function.contains(word),
            "{word:?} in one and not the other"
        );
    }
    for var in ["MOD_WSGI_RS_EXAMPLES=", "MOD_WSGI_RS_EXAMPLES_GROUP="] {
        assert!(shown.contains(var), "README lacks {var}");
        assert!(
            script.contains(&format!("export {var}")),
            "script lacks {var}"
        );
    }
}

// ------------------------------------------------------------ the examples

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Whether Apache's User can read `p`.
fn www_data_reads(p: &Path) -> bool {
    Command::new("su")
        .args(["-s", "/bin/sh", "www-data", "-c"])
        .arg(format!("test -r '{}'", p.display()))
        .status()
        .is_ok_and(|s| s.success())
}

/// The examples' virtualenvs, as `scripts/serve-examples.sh` creates them
/// (`scripts/test.sh` runs it first): `.pyhome` (python3 -m venv, with
/// Flask and Django) and `.venv` (made by the `virtualenv` package, with
/// Flask and bin/activate_this.py). Looked for in
/// MOD_WSGI_RS_EXAMPLES_PYHOME / MOD_WSGI_RS_EXAMPLES_VENV, the repository's
/// examples/, then the copy serve-examples.sh makes when www-data cannot
/// read the repository. None, with SKIP_EXAMPLES=1 (as for scripts/test.sh),
/// when there are none; a failure that says what to run otherwise.
fn example_venvs(what: &str) -> Option<(PathBuf, PathBuf)> {
    let mut homes: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let (Ok(h), Ok(v)) = (
        std::env::var("MOD_WSGI_RS_EXAMPLES_PYHOME"),
        std::env::var("MOD_WSGI_RS_EXAMPLES_VENV"),
    ) {
        homes.push((h.into(), v.into()));
    }
    for dir in [
        format!("{REPO}/examples"),
        "/var/tmp/mod_wsgi-rs-examples/examples".to_string(),
    ] {
        let dir = Path::new(&dir);
        homes.push((dir.join(".pyhome"), dir.join(".venv")));
    }
    let usable = |(home, venv): &(PathBuf, PathBuf)| {
        let imports = |python: PathBuf, modules: &str| {
            Command::new(python)
                .args(["-c", &format!("import {modules}")])
                .status()
                .is_ok_and(|s| s.success())
        };
        imports(home.join("bin/python"), "flask, django")
            && imports(venv.join("bin/python"), "flask")
            && venv.join("bin/activate_this.py").is_file()
            && www_data_reads(&home.join("pyvenv.cfg"))
            && www_data_reads(&venv.join("bin/activate_this.py"))
    };
    if let Some(found) = homes.into_iter().find(usable) {
        return Some(found);
    }
    if std::env::var("SKIP_EXAMPLES").as_deref() == Ok("1") {
        eprintln!("SKIPPED {what}: SKIP_EXAMPLES=1 and no example virtualenvs");
        return None;
    }
    panic!(
        "{what} needs the examples' virtualenvs (Flask, Django, activate_this.py): run \
         scripts/serve-examples.sh --check (scripts/test.sh does), or point \
         MOD_WSGI_RS_EXAMPLES_PYHOME and MOD_WSGI_RS_EXAMPLES_VENV at them, or set SKIP_EXAMPLES=1"
    );
}

/// The Debian `combined` log format and APACHE_LOG_DIR, which the samples
/// use as they would in /etc/apache2.
fn debian_context(root: &str) -> String {
    format!(
        "Define APACHE_LOG_DIR {root}/logs\n\
         LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{{Referer}}i\\\" \\\"%{{User-Agent}}i\\\"\" combined\n"
    )
}

/// A copy of examples/ (without its virtualenvs) under `root`, readable by
/// www-data wherever the repository is.
fn copy_examples(root: &Path) -> PathBuf {
    let examples = root.join("examples");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mkdir -p '{dst}' && tar -C '{REPO}/examples' --exclude=./.venv --exclude=./.pyhome \
             --exclude=__pycache__ -cf - . | tar -C '{dst}' --no-same-owner -xf - && chmod -R a+rX '{dst}'",
            dst = examples.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    examples
}

/// Starts Apache with `before` and then conf/samples/`sample`, its paths
/// replaced by `paths` ({EXAMPLES} is a www-data readable copy of
/// examples/, {ROOT} the server root), its `*:80` by the test's port;
/// `env` is Apache's environment (as Debian's envvars gives it).
fn serve_sample(
    name: &str,
    sample: &str,
    paths: &[(&str, &str)],
    before: &str,
    env: &[(&str, String)],
) -> Apache {
    let root = temp_root(name);
    let examples = copy_examples(&root);
    let mut text = std::fs::read_to_string(Path::new(REPO).join("conf/samples").join(sample))
        .unwrap_or_else(|e| panic!("conf/samples/{sample}: {e}"));
    for (from, to) in paths {
        text = text.replace(from, to);
    }
    text = text.replace("<VirtualHost *:80>", "<VirtualHost *:{PORT}>");
    let root_s = root.to_str().unwrap().to_string();
    let body = format!("{}{before}\n{text}", debian_context(&root_s))
        .replace("{EXAMPLES}", examples.to_str().unwrap());
    let port = free_port();
    let conf = write_conf(&root, port, &body, &Options::default());
    let mut cmd = Command::new(APACHE);
    cmd.arg("-f").arg(&conf).arg("-DFOREGROUND");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let log = root.join("logs/error_log");
    Apache::launch(root, port, conf, log, cmd).unwrap_or_else(|e| panic!("{sample}:\n{e}"))
}

fn get_host(a: &Apache, host: &str, path: &str) -> Response {
    a.raw(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        false,
    )
}

/// Waits until `file` (under the server root) contains `needle`.
fn wait_file(a: &Apache, file: &str, needle: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if std::fs::read_to_string(a.root.join(file)).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// Seed 004: examples/hello/myapp.wsgi, mounted at /myapp server-wide by
/// conf/samples/myapp-conf-available.conf.
#[test]
fn example_hello_world_with_its_conf_available_snippet() {
    let a = serve_sample(
        "ex-hello",
        "myapp-conf-available.conf",
        &[("/home/anna/code", "{EXAMPLES}/hello")],
        "",
        &[],
    );
    let r = a.get("/myapp");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(r.body, b"Hello World!");
    assert_eq!(r.header("Content-Length"), Some("12"));
}

/// Seeds 001/002: the Flask example behind its .wsgi wrapper, embedded in a
/// VirtualHost (conf/samples/embedded-vhost.conf, with the server-level
/// lines its comment shows: WSGIPythonHome, WSGIRestrictStdout Off).
#[test]
fn example_flask_embedded_virtual_host() {
    let Some((pyhome, _)) = example_venvs("example_flask_embedded_virtual_host") else {
        return;
    };
    let a = serve_sample(
        "ex-flask-embedded",
        "embedded-vhost.conf",
        &[
            (
                "/var/www/yourapplication/yourapplication.wsgi",
                "{EXAMPLES}/flask/hello.wsgi",
            ),
            ("/var/www/yourapplication", "{EXAMPLES}/flask"),
        ],
        &format!(
            "WSGIPythonHome {}\nWSGIRestrictStdout Off\n",
            pyhome.display()
        ),
        &[],
    );
    let host = "example.com";
    let r = get_host(&a, host, "/");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(r.text(), "Hello, I love Flask!");
    let r = get_host(&a, host, "/greet/Apache%20&%20co");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("<h1>Hello, Apache &amp; co!</h1>"),
        "{}",
        r.text()
    );
    let r = a.raw(
        b"POST /echo HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\na=1&b=two",
        false,
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"body\":\"a=1&b=two\""), "{}", r.text());
    assert_eq!(get_host(&a, host, "/print").status, 200);
    assert!(
        wait_file(
            &a,
            "logs/yourapplication-error.log",
            "hello from print() in the Flask example"
        ),
        "print() did not reach the VirtualHost's ErrorLog"
    );
    assert!(
        wait_file(
            &a,
            "logs/yourapplication-access.log",
            "\"GET /greet/Apache%20&%20co HTTP/1.1\" 200"
        ),
        "access log"
    );
}

/// Seed 001: the Flask example in a daemon process group of a VirtualHost
/// (conf/samples/daemon-vhost.conf).
#[test]
fn example_flask_daemon_virtual_host() {
    let Some((pyhome, _)) = example_venvs("example_flask_daemon_virtual_host") else {
        return;
    };
    let a = serve_sample(
        "ex-flask-daemon",
        "daemon-vhost.conf",
        &[
            (
                "/path/to/my-application/my-application.wsgi",
                "{EXAMPLES}/flask/hello.wsgi",
            ),
            ("/path/to/my-application", "{EXAMPLES}/flask"),
            (
                "user=username group=username",
                "user=www-data group=www-data",
            ),
            ("/var/www/html", "{EXAMPLES}"),
        ],
        &format!("WSGIPythonHome {}\n", pyhome.display()),
        &[],
    );
    let r = get_host(&a, "my-application.org", "/");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert_eq!(r.text(), "Hello, I love Flask!");
    let r = get_host(&a, "my-application.org", "/greet/daemon");
    assert!(r.text().contains("Hello, daemon!"), "{}", r.text());
}

/// Seed 000: the hosting provider's `application` file, which activates
/// its virtualenv with activate_this.py, in a daemon process group
/// (conf/samples/virtualenv-daemon-vhost.conf). No WSGIPythonHome: Flask
/// comes from the activated virtualenv only.
#[test]
fn example_virtualenv_application_file() {
    let Some((_, venv)) = example_venvs("example_virtualenv_application_file") else {
        return;
    };
    let a = serve_sample(
        "ex-virtualenv",
        "virtualenv-daemon-vhost.conf",
        &[
            ("/var/www/webroot/ROOT", "{EXAMPLES}/virtualenv"),
            ("home=/var/www/webroot", "home={EXAMPLES}"),
            ("user=webroot group=webroot", "user=www-data group=www-data"),
        ],
        "",
        &[("MOD_WSGI_RS_EXAMPLES_VENV", venv.display().to_string())],
    );
    let r = get_host(&a, "webroot.example.com", "/");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert!(
        r.text()
            .contains("Hello from a virtualenv activated by activate_this.py!"),
        "{}",
        r.text()
    );
    assert!(
        r.text()
            .contains(&format!("virtualenv: {}", venv.display())),
        "{}",
        r.text()
    );
}

/// Seed 004's "works for my Django project": the Django example in a
/// daemon process group with python-home= and python-path=
/// (conf/samples/django-daemon-vhost.conf).
#[test]
fn example_django_daemon_virtual_host() {
    let Some((pyhome, _)) = example_venvs("example_django_daemon_virtual_host") else {
        return;
    };
    let a = serve_sample(
        "ex-django",
        "django-daemon-vhost.conf",
        &[
            ("/home/anna/code/myproject/env", pyhome.to_str().unwrap()),
            ("/home/anna/code/myproject", "{EXAMPLES}/django"),
            ("/var/www/mydomain", "{EXAMPLES}"),
        ],
        "",
        &[],
    );
    // Django's ALLOWED_HOSTS has localhost; the VirtualHost is the only one
    // on the port, so it answers for that name too.
    let r = get_host(&a, "localhost", "/");
    assert_eq!(r.status, 200, "{}", a.error_log());
    assert!(r.text().contains("Hello from Django!"), "{}", r.text());
}

/// Every example at once through examples/wsgi-express.conf, as
/// scripts/serve-examples.sh mounts them, here in embedded mode with plain
/// Apache: the landing page, the hello world, the virtualenv file and
/// Django (through the file's WSGIPythonPath), next to the Flask app.
#[test]
fn examples_through_wsgi_express_conf_in_embedded_mode() {
    let Some((pyhome, venv)) = example_venvs("examples_through_wsgi_express_conf_in_embedded_mode")
    else {
        return;
    };
    let root = temp_root("ex-all");
    let examples = copy_examples(&root);
    let body = format!(
        "WSGIPythonHome {pyhome}\n\
         WSGIScriptAlias /flask {ex}/flask/hello.wsgi application-group=%{{GLOBAL}}\n\
         Include {ex}/wsgi-express.conf\n",
        pyhome = pyhome.display(),
        ex = examples.display(),
    );
    let port = free_port();
    let conf = write_conf(&root, port, &body, &Options::default());
    let mut cmd = Command::new(APACHE);
    cmd.arg("-f").arg(&conf).arg("-DFOREGROUND");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("MOD_WSGI_RS_EXAMPLES", &examples)
        .env("MOD_WSGI_RS_EXAMPLES_GROUP", "%{GLOBAL}")
        .env("MOD_WSGI_RS_EXAMPLES_VENV", &venv);
    let log = root.join("logs/error_log");
    let a = Apache::launch(root, port, conf, log, cmd).unwrap_or_else(|e| panic!("{e}"));
    for (path, want) in [
        ("/", "mod_wsgi-rs examples"),
        ("/", "process group '(embedded)'"),
        ("/hello", "Hello World!"),
        ("/flask/", "Hello, I love Flask!"),
        (
            "/venv/",
            "Hello from a virtualenv activated by activate_this.py!",
        ),
        ("/django/", "Hello from Django!"),
    ] {
        let r = a.get(path);
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), a.error_log());
        assert!(r.text().contains(want), "{path}: {}", r.text());
    }
    assert_eq!(a.get("/no/such/page").status, 404);
    assert!(!a.error_log().contains("Traceback"), "{}", a.error_log());
}

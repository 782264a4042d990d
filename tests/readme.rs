//! The README's directive table must say what the module does: every
//! directive the module registers is listed, refused ones as "no", parsed
//! but inert ones as "parsed only".

use mod_wsgi_rs::config;

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

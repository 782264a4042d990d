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

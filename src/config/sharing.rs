//! Which configured scripts would share the one Python interpreter of
//! Apache's children although their application groups differ.
//!
//! mod_wsgi runs each application group in its own sub-interpreter;
//! mod_wsgi-rs does not create sub-interpreters yet, so every group of the
//! embedded process runs in the main interpreter. That is harmless for one
//! application, and it is what `WSGIApplicationGroup %{GLOBAL}` asks for
//! anyway, but two applications in different groups then share
//! `sys.modules`, `os.environ` and settings. The start-up check here finds
//! that case from the configuration alone, the way a request would resolve
//! it: the alias's own `process-group=`/`application-group=`, else the
//! `<Location>` and `<Directory>` sections that cover it, else the server's
//! defaults. Whatever only a request can tell (`%{ENV:...}`, `%{HOST}`,
//! regular-expression sections, WSGIScriptAliasMatch with `%{RESOURCE}`) is
//! left to the per-process check at request time.
#![forbid(unsafe_code)]

use super::{DirConfig, ScriptAlias};
use std::collections::BTreeSet;

/// A `<Directory>` or a `<Location>` section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionKind {
    Directory,
    Location,
}

/// One section of a server's configuration with the WSGI settings made in
/// it, as httpd's core keeps them.
pub struct Section<'a> {
    pub kind: SectionKind,
    /// The path or URL as core stored it (a `<Directory>` path ends in '/').
    pub path: &'a str,
    /// A wildcard or regular-expression section: which requests it covers
    /// is only known per request.
    pub is_pattern: bool,
    /// Its number of '/' (core's `d_components`), for the order in which
    /// `<Directory>` sections apply: the shortest first.
    pub components: u32,
    pub config: &'a DirConfig,
}

/// One server (the main one or a VirtualHost), with its sections in
/// configuration order (a VirtualHost's list starts with the main
/// server's, as core merges them).
pub struct ServerView<'a> {
    pub hostname: &'a str,
    /// The server's own defaults (directives outside any section).
    pub defaults: Option<&'a DirConfig>,
    pub sections: Vec<Section<'a>>,
    pub aliases: &'a [ScriptAlias],
}

/// Where a WSGIScriptAlias's requests run, as far as the configuration
/// alone tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In a daemon process group: not Apache's children.
    Daemon,
    /// In Apache's children, in this application group ("" is %{GLOBAL};
    /// %{RESOURCE} and %{SERVER} are rendered without the port, which
    /// does not change which groups differ).
    Embedded(String),
    /// Only a request can tell.
    Unknown,
}

/// Whether `path` lies under the `<Directory>` path `dir` (core keeps it
/// with a trailing '/').
fn under_directory(path: &str, dir: &str) -> bool {
    if dir.ends_with('/') {
        path.starts_with(dir)
    } else {
        path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
    }
}

/// The process and application group templates that apply to `alias` in
/// `server`; None for a template only a request can resolve.
fn templates(server: &ServerView<'_>, alias: &ScriptAlias) -> Option<(String, String)> {
    let mut pg = server.defaults.and_then(|d| d.process_group.clone());
    let mut ag = server.defaults.and_then(|d| d.application_group.clone());
    let mut dirs: Vec<&Section<'_>> = Vec::new();
    let mut locations: Vec<&Section<'_>> = Vec::new();
    for s in &server.sections {
        let sets = s.config.process_group.is_some() || s.config.application_group.is_some();
        if !sets {
            continue;
        }
        if s.is_pattern {
            // A <DirectoryMatch>/<LocationMatch> or wildcard that sets a
            // group may or may not cover this script.
            return None;
        }
        let covers = match s.kind {
            SectionKind::Directory => under_directory(&alias.path, s.path),
            SectionKind::Location => {
                !alias.is_regex && super::alias::alias_matches(&alias.location, s.path) > 0
            }
        };
        if covers {
            match s.kind {
                SectionKind::Directory => dirs.push(s),
                SectionKind::Location => locations.push(s),
            }
        }
    }
    // httpd merges <Directory> sections from the shortest path to the
    // longest, then <Location> sections in the order they were written.
    dirs.sort_by_key(|s| s.components);
    for s in dirs.into_iter().chain(locations) {
        if let Some(v) = &s.config.process_group {
            pg = Some(v.clone());
        }
        if let Some(v) = &s.config.application_group {
            ag = Some(v.clone());
        }
    }
    // The alias's own options win over every section.
    if let Some(v) = &alias.process_group {
        pg = Some(v.clone());
    }
    if let Some(v) = &alias.application_group {
        ag = Some(v.clone());
    }
    Some((
        pg.unwrap_or_default(),
        ag.unwrap_or_else(|| "%{RESOURCE}".to_string()),
    ))
}

/// Where `alias` of `server` runs; see [`Placement`].
pub fn placement(server: &ServerView<'_>, alias: &ScriptAlias) -> Placement {
    let Some((pg, ag)) = templates(server, alias) else {
        return Placement::Unknown;
    };
    match pg.as_str() {
        "" | "%{GLOBAL}" => {}
        p if p.starts_with("%{") => return Placement::Unknown,
        _ => return Placement::Daemon,
    }
    let group = match ag.as_str() {
        "" | "%{GLOBAL}" => String::new(),
        "%{RESOURCE}" if alias.is_regex => return Placement::Unknown,
        "%{RESOURCE}" => format!("{}|{}", server.hostname, alias.location),
        "%{SERVER}" => server.hostname.to_string(),
        a if a.starts_with("%{") => return Placement::Unknown,
        a => a.to_string(),
    };
    Placement::Embedded(group)
}

/// The scripts that would run in Apache's children in application groups
/// that differ from another script's, sorted; empty when there is nothing
/// to warn about. The same script mounted twice in two groups is not
/// counted: it is one application either way.
pub fn scripts_sharing_the_interpreter(servers: &[ServerView<'_>]) -> Vec<String> {
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for server in servers {
        for alias in server.aliases {
            if let Placement::Embedded(group) = placement(server, alias) {
                pairs.insert((alias.path.clone(), group));
            }
        }
    }
    let mut scripts = BTreeSet::new();
    for (s1, g1) in &pairs {
        for (s2, g2) in &pairs {
            if s1 != s2 && g1 != g2 {
                scripts.insert(s1.clone());
            }
        }
    }
    scripts.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(location: &str, path: &str, pg: Option<&str>, ag: Option<&str>) -> ScriptAlias {
        ScriptAlias {
            process_group: pg.map(str::to_string),
            application_group: ag.map(str::to_string),
            ..ScriptAlias::new(location, path, false)
        }
    }

    fn dir(pg: Option<&str>, ag: Option<&str>) -> DirConfig {
        DirConfig {
            process_group: pg.map(str::to_string),
            application_group: ag.map(str::to_string),
            ..Default::default()
        }
    }

    fn view<'a>(
        aliases: &'a [ScriptAlias],
        defaults: Option<&'a DirConfig>,
        sections: Vec<Section<'a>>,
    ) -> ServerView<'a> {
        ServerView {
            hostname: "localhost",
            defaults,
            sections,
            aliases,
        }
    }

    fn section<'a>(kind: SectionKind, path: &'a str, config: &'a DirConfig) -> Section<'a> {
        Section {
            kind,
            path,
            is_pattern: false,
            components: path.matches('/').count() as u32,
            config,
        }
    }

    #[test]
    fn two_scripts_in_default_groups_share() {
        let a = [
            alias("/a", "/srv/a.wsgi", None, None),
            alias("/b", "/srv/b.wsgi", None, None),
        ];
        assert_eq!(
            scripts_sharing_the_interpreter(&[view(&a, None, vec![])]),
            ["/srv/a.wsgi", "/srv/b.wsgi"]
        );
    }

    #[test]
    fn one_script_mounted_twice_is_one_application() {
        let a = [
            alias("/a", "/srv/a.wsgi", None, None),
            alias("/", "/srv/a.wsgi", None, None),
        ];
        assert!(scripts_sharing_the_interpreter(&[view(&a, None, vec![])]).is_empty());
    }

    #[test]
    fn global_or_one_named_group_is_not_warned_about() {
        // %{GLOBAL} is stored as "" in alias options.
        let a = [
            alias("/a", "/srv/a.wsgi", None, Some("")),
            alias("/b", "/srv/b.wsgi", None, Some("")),
        ];
        assert!(scripts_sharing_the_interpreter(&[view(&a, None, vec![])]).is_empty());
        let a = [
            alias("/a", "/srv/a.wsgi", None, Some("apps")),
            alias("/b", "/srv/b.wsgi", None, Some("apps")),
        ];
        assert!(scripts_sharing_the_interpreter(&[view(&a, None, vec![])]).is_empty());
        let a = [
            alias("/a", "/srv/a.wsgi", None, Some("one")),
            alias("/b", "/srv/b.wsgi", None, Some("two")),
        ];
        assert_eq!(
            scripts_sharing_the_interpreter(&[view(&a, None, vec![])]).len(),
            2
        );
    }

    #[test]
    fn server_defaults_and_sections_apply() {
        let a = [
            alias("/a", "/srv/a/a.wsgi", None, None),
            alias("/b", "/srv/b/b.wsgi", None, None),
        ];
        let global = dir(None, Some("%{GLOBAL}"));
        // WSGIApplicationGroup %{GLOBAL} at server level.
        assert!(scripts_sharing_the_interpreter(&[view(&a, Some(&global), vec![])]).is_empty());
        // ... or in each script's <Directory>, as seeds 001 and 002 write it.
        let s = vec![
            section(SectionKind::Directory, "/srv/a/", &global),
            section(SectionKind::Directory, "/srv/b/", &global),
        ];
        assert!(scripts_sharing_the_interpreter(&[view(&a, None, s)]).is_empty());
        // ... but only one of them: they differ.
        let s = vec![section(SectionKind::Directory, "/srv/a/", &global)];
        assert_eq!(
            scripts_sharing_the_interpreter(&[view(&a, None, s)]).len(),
            2
        );
        // A <Location> wins over a <Directory>; a longer <Directory> over a
        // shorter one, whatever the order they were written in.
        let other = dir(None, Some("other"));
        let s = vec![
            section(SectionKind::Directory, "/srv/a/", &global),
            section(SectionKind::Directory, "/srv/", &other),
            section(SectionKind::Directory, "/srv/b/", &global),
        ];
        assert!(scripts_sharing_the_interpreter(&[view(&a, None, s)]).is_empty());
        let s = vec![
            section(SectionKind::Directory, "/srv/", &global),
            section(SectionKind::Location, "/b", &other),
        ];
        assert_eq!(
            placement(&view(&a, None, vec![]), &a[1]),
            Placement::Embedded("localhost|/b".into())
        );
        assert_eq!(
            scripts_sharing_the_interpreter(&[view(&a, None, s)]).len(),
            2
        );
        // The alias's option wins over the sections.
        let a2 = [
            alias("/a", "/srv/a/a.wsgi", None, None),
            alias("/b", "/srv/b/b.wsgi", None, Some("")),
        ];
        let s = vec![
            section(SectionKind::Directory, "/srv/", &global),
            section(SectionKind::Location, "/b", &other),
        ];
        assert!(scripts_sharing_the_interpreter(&[view(&a2, None, s)]).is_empty());
    }

    #[test]
    fn daemon_groups_do_not_share_apaches_children() {
        let a = [
            alias("/a", "/srv/a.wsgi", Some("daemon"), None),
            alias("/b", "/srv/b.wsgi", None, None),
        ];
        assert!(scripts_sharing_the_interpreter(&[view(&a, None, vec![])]).is_empty());
        // WSGIProcessGroup in the server or a section, as seed 001 does.
        let d = dir(Some("my-application"), Some("%{GLOBAL}"));
        let a = [
            alias("/", "/srv/app/app.wsgi", None, None),
            alias("/other", "/srv/other.wsgi", None, None),
        ];
        let s = vec![section(SectionKind::Directory, "/srv/app/", &d)];
        assert_eq!(
            placement(&view(&a, None, vec![]), &a[0]),
            Placement::Embedded("localhost|/".into())
        );
        let v = view(&a, None, s);
        assert_eq!(placement(&v, &a[0]), Placement::Daemon);
        assert!(scripts_sharing_the_interpreter(&[v]).is_empty());
        // %{GLOBAL} as a process group is embedded mode.
        let a = [
            alias("/a", "/srv/a.wsgi", Some(""), None),
            alias("/b", "/srv/b.wsgi", None, None),
        ];
        assert_eq!(
            scripts_sharing_the_interpreter(&[view(&a, None, vec![])]).len(),
            2
        );
    }

    #[test]
    fn what_only_a_request_can_tell_is_left_out() {
        let a = [
            alias("/a", "/srv/a.wsgi", None, Some("%{ENV:GROUP}")),
            alias("/b", "/srv/b.wsgi", None, None),
            alias("/c", "/srv/c.wsgi", Some("%{ENV:PG}"), None),
        ];
        let v = view(&a, None, vec![]);
        assert_eq!(placement(&v, &a[0]), Placement::Unknown);
        assert_eq!(placement(&v, &a[2]), Placement::Unknown);
        assert!(scripts_sharing_the_interpreter(&[v]).is_empty());
        let m = ScriptAlias::new("^/apps/([^/]+)", "/srv/$1.wsgi", true);
        let v = view(std::slice::from_ref(&m), None, vec![]);
        assert_eq!(placement(&v, &m), Placement::Unknown);
        let global = dir(None, Some("%{GLOBAL}"));
        let a = [alias("/a", "/srv/a.wsgi", None, None)];
        let mut s = section(SectionKind::Directory, "/srv/", &global);
        s.is_pattern = true;
        assert_eq!(
            placement(&view(&a, None, vec![s]), &a[0]),
            Placement::Unknown
        );
    }

    #[test]
    fn virtual_hosts_are_looked_at_together() {
        let one = [alias("/", "/srv/one.wsgi", None, None)];
        let two = [alias("/", "/srv/two.wsgi", None, None)];
        let v1 = ServerView {
            hostname: "one.example",
            defaults: None,
            sections: vec![],
            aliases: &one,
        };
        let v2 = ServerView {
            hostname: "two.example",
            defaults: None,
            sections: vec![],
            aliases: &two,
        };
        assert_eq!(
            scripts_sharing_the_interpreter(&[v1, v2]),
            ["/srv/one.wsgi", "/srv/two.wsgi"]
        );
    }

    #[test]
    fn directory_paths() {
        assert!(under_directory("/srv/a/x.wsgi", "/srv/a/"));
        assert!(!under_directory("/srv/ab/x.wsgi", "/srv/a/"));
        assert!(under_directory("/srv/a/x.wsgi", "/srv/a"));
        assert!(!under_directory("/srv/ab/x.wsgi", "/srv/a"));
        assert!(under_directory("/srv/a/x.wsgi", "/"));
    }
}

//! The structure ARCHITECTURE.md asks for, checked on the source tree: modules of one
//! layer import one another one way only (a circle — app ↔ derive ↔ keymap in the console
//! once, sys → netlink → sys in the collectors — means a shared type belongs lower down),
//! ratatui and crossterm live only in `src/ui`, gRPC only in agent, fleet and wire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first path segment of each entry of a `{…}` group, at top level only.
fn group_heads(group: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                heads.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                heads.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    heads
        .into_iter()
        .map(|p| p.trim().split("::").next().unwrap_or("").trim())
        .collect()
}

/// The modules of `modules` that `text` names after one of `prefixes` (`super::x`,
/// `super::{x, …}`, `crate::ui::x`); a name the parent re-exports counts as the module it
/// comes from.
fn imports(
    text: &str,
    prefixes: &[&str],
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in prefixes {
        for (i, _) in text.match_indices(prefix) {
            // `super::super::x` is not a sibling.
            if text[..i].ends_with("super::") {
                continue;
            }
            let rest = &text[i + prefix.len()..];
            let names = match rest.strip_prefix('{') {
                Some(group) => group_heads(group),
                None => vec![
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or(""),
                ],
            };
            for n in names {
                if modules.contains(n) {
                    out.insert(n.to_string());
                } else if let Some(m) = reexports.get(n) {
                    out.insert(m.clone());
                }
            }
        }
    }
    out
}

/// A circle in the graph, as the modules along it, if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        n: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(g, m, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

/// Every `.rs` file under `dir`, with its path.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The import graph of the modules in `dir` (files and sub-directories; `mod.rs` is the
/// parent, not a node). `path` is the directory's module path (`crate::ui`). A file of a
/// sub-directory names its siblings' modules through `path::x`; the sub-directory's own
/// `mod.rs` also through `super::x`.
fn graph_of(dir: &Path, path: &str) -> Graph {
    let mut modules: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    let mut parent = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            let mut files = Vec::new();
            rust_files(&p, &mut files);
            let texts = files
                .iter()
                .map(|f| {
                    let own_mod = f.parent() == Some(p.as_path())
                        && f.file_name().is_some_and(|n| n == "mod.rs");
                    (std::fs::read_to_string(f).unwrap(), own_mod)
                })
                .collect();
            modules.insert(stem, texts);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            if stem == "mod" {
                parent = text;
            } else {
                modules.insert(stem, vec![(text, true)]);
            }
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut reexports = BTreeMap::new();
    for line in parent.lines() {
        if let Some(p) = line.trim().strip_prefix("pub use ") {
            let p = p.trim_end_matches(';');
            if let Some((module, item)) = p.split_once("::") {
                let items = match item.strip_prefix('{') {
                    Some(group) => group_heads(group),
                    None => vec![item.rsplit("::").next().unwrap_or(item)],
                };
                for i in items {
                    reexports.insert(i.to_string(), module.to_string());
                }
            }
        }
    }
    let full = format!("{path}::");
    modules
        .iter()
        .map(|(m, texts)| {
            let mut to = BTreeSet::new();
            for (text, sees_super) in texts {
                let prefixes: Vec<&str> = if *sees_super {
                    vec!["super::", &full]
                } else {
                    vec![&full]
                };
                to.extend(imports(text, &prefixes, &names, &reexports));
            }
            to.remove(m);
            (m.clone(), to)
        })
        .collect()
}

fn assert_no_circle(dir: &str, path: &str) -> Graph {
    let g = graph_of(&root().join(dir), path);
    if let Some(c) = find_cycle(&g) {
        panic!(
            "{dir}: modules import each other in a circle: {} — move the shared type to a lower module",
            c.join(" → ")
        );
    }
    g
}

#[test]
fn collectors_import_each_other_without_a_circle() {
    let g = assert_no_circle("src/collectors", "crate::collectors");
    assert!(g["sys"].contains("netlink"), "{g:?}");
    assert!(g["hostroot"].contains("sys"), "{g:?}");
}

#[test]
fn the_console_imports_one_way() {
    let g = assert_no_circle("src/ui", "crate::ui");
    // The graph is the real one: the console knows the panels, the panels only the
    // shared vocabulary.
    assert!(g["console"].contains("panels"), "{g:?}");
    assert!(g["panels"].contains("component"), "{g:?}");
    assert!(g["panels"].contains("widgets"), "{g:?}");
    assert!(!g["panels"].contains("console"), "{g:?}");
    assert_no_circle("src/ui/panels", "crate::ui::panels");
    assert_no_circle("src/ui/widgets", "crate::ui::widgets");
}

/// Each panel is one self-contained file: it names no other panel.
#[test]
fn panels_know_no_other_panel() {
    let g = graph_of(&root().join("src/ui/panels"), "crate::ui::panels");
    assert!(g.len() >= 7, "{g:?}");
    for (panel, to) in &g {
        assert!(to.is_empty(), "panel {panel} imports {to:?}");
    }
}

#[test]
fn the_circle_check_finds_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let w = |f: &str, t: &str| {
        let p = dir.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    };
    w(
        "mod.rs",
        "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub use c::Thing;\n",
    );
    w("a.rs", "use super::{b::{X, Y}, Problems};\n");
    w("b.rs", "fn f() { crate::x::c::g() }\n");
    w("c.rs", "use super::error::E;\n");
    w("d/mod.rs", "pub mod e;\nuse super::a::A;\n");
    w("d/e.rs", "use super::f::F;\n");
    let g = graph_of(dir.path(), "crate::x");
    assert_eq!(find_cycle(&g), None, "{g:?}");
    assert_eq!(g["d"], BTreeSet::from(["a".to_string()]), "{g:?}");
    w("c.rs", "use super::Thing;\nuse super::{error::E, a};\n");
    let g = graph_of(dir.path(), "crate::x");
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]),
        "{g:?}"
    );
    // A file deep in a sub-directory closes a circle through the full path.
    w("c.rs", "use super::error::E;\n");
    w("d/e.rs", "use crate::x::d::f;\n");
    w("a.rs", "use super::d::E;\n");
    w("d/e.rs", "fn g() { crate::x::a::h() }\n");
    let g = graph_of(dir.path(), "crate::x");
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "d".into(), "a".into()]),
        "{g:?}"
    );
}

/// Source files under `dir` that mention any of `needles` (tests excluded).
fn mentions(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root().join(dir), &mut files);
    files
        .into_iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            needles.iter().any(|n| code.contains(n))
        })
        .map(|f| {
            f.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn terminal_code_lives_in_ui_and_grpc_in_agent_fleet_and_wire() {
    let tui: Vec<_> = mentions("src", &["ratatui::", "crossterm::"])
        .into_iter()
        .filter(|f| !f.starts_with("src/ui/"))
        .collect();
    assert!(tui.is_empty(), "terminal code outside src/ui: {tui:?}");
    let grpc: Vec<_> = mentions("src", &["tonic::", "h2::"])
        .into_iter()
        .filter(|f| {
            !["src/agent/", "src/fleet/", "src/wire/"]
                .iter()
                .any(|d| f.starts_with(d))
        })
        .collect();
    assert!(
        grpc.is_empty(),
        "gRPC outside agent, fleet and wire: {grpc:?}"
    );
    assert!(!mentions("src/ui", &["ratatui::"]).is_empty());
}

#[test]
fn the_data_plane_depends_on_model_alone() {
    let above = [
        "crate::agent",
        "crate::fleet",
        "crate::collectors",
        "crate::actions",
        "crate::ui",
        "crate::commands",
        "crate::wire",
        "crate::cli",
    ];
    let bad = mentions("src/dataplane", &above);
    assert!(bad.is_empty(), "src/dataplane reaches above model: {bad:?}");
    // The check sees a use when there is one.
    assert!(!mentions("src/commands", &["crate::dataplane"]).is_empty());
}

//! Host facts → model, node_exporter style: one module per collector, each a function from
//! files under a `HostRoot` (and, where there is no file, the syscall seam in `sys`) to
//! plain model data. Collectors never shell out and never panic on what they read.

pub mod bounded_read;
pub mod checks;
pub mod error;
pub mod hostroot;
pub mod iproute_json;
pub mod net;
pub mod netlink;
pub mod nvme;
pub mod pinning;
pub mod probes;
pub mod smart;
pub mod sys;
pub mod topology;

pub use error::CollectError;
pub use hostroot::HostRoot;

/// Non-fatal problems met during one collection: a broken file for one CPU or one drive is
/// reported here while the rest of the section is still collected.
#[derive(Debug, Default)]
pub struct Problems(Vec<CollectError>);

impl Problems {
    pub fn push(&mut self, e: CollectError) {
        self.0.push(e);
    }

    /// Keeps the value, or records the error and yields None.
    pub fn take<T>(&mut self, r: Result<T, CollectError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &CollectError> {
        self.0.iter()
    }

    /// One line for a status field: the first problem and how many more there were.
    pub fn summary(&self) -> Option<String> {
        let first = self.0.first()?;
        Some(match self.0.len() {
            1 => first.to_string(),
            n => format!("{first} (and {} more)", n - 1),
        })
    }
}

#[cfg(test)]
mod tests {
    //! The collectors import one another one way only: a circle (sys → netlink → sys, as
    //! once through `RoutingFacts`) means a shared fact type belongs in `model`.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    type Graph = BTreeMap<String, BTreeSet<String>>;

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

    /// The sibling modules a source file names through `super::x`, `super::{x, …}` or
    /// `crate::collectors::x`; a name that `mod.rs` re-exports (`HostRoot`) counts as the
    /// module it comes from.
    fn imports(
        text: &str,
        modules: &BTreeSet<String>,
        reexports: &BTreeMap<String, String>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for prefix in ["super::", "crate::collectors::"] {
            for (i, _) in text.match_indices(prefix) {
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

    /// The import graph of the source files in `dir` (`mod.rs` is the parent, not a node).
    fn graph_of(dir: &Path) -> Graph {
        let mut sources = BTreeMap::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") {
                let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
                sources.insert(stem, std::fs::read_to_string(&p).unwrap());
            }
        }
        let parent = sources.remove("mod").unwrap_or_default();
        let modules: BTreeSet<String> = sources.keys().cloned().collect();
        let mut reexports = BTreeMap::new();
        for line in parent.lines() {
            if let Some(path) = line.trim().strip_prefix("pub use ") {
                let path = path.trim_end_matches(';');
                if let Some((module, item)) = path.split_once("::") {
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
        sources
            .iter()
            .map(|(m, text)| {
                let mut to = imports(text, &modules, &reexports);
                to.remove(m);
                (m.clone(), to)
            })
            .collect()
    }

    #[test]
    fn collectors_import_each_other_without_a_circle() {
        let g = graph_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/collectors"));
        assert!(
            g.contains_key("sys") && g["sys"].contains("netlink"),
            "{g:?}"
        );
        assert!(g["hostroot"].contains("sys"), "{g:?}");
        if let Some(c) = find_cycle(&g) {
            panic!(
                "collectors import each other in a circle: {} — move the shared type to model",
                c.join(" → ")
            );
        }
    }

    #[test]
    fn the_circle_check_finds_a_circle() {
        let dir = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| std::fs::write(dir.path().join(f), t).unwrap();
        w(
            "mod.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub use c::Thing;\n",
        );
        w("a.rs", "use super::{b::{X, Y}, Problems};\n");
        w("b.rs", "fn f() { crate::collectors::c::g() }\n");
        w("c.rs", "use super::error::E;\n");
        let g = graph_of(dir.path());
        assert_eq!(find_cycle(&g), None, "{g:?}");
        w("c.rs", "use super::Thing;\nuse super::{error::E, a};\n");
        let g = graph_of(dir.path());
        assert_eq!(
            find_cycle(&g),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]),
            "{g:?}"
        );
    }
}

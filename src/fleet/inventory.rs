//! Which agents the console follows: from `--hosts` (host list syntax) or an inventory file
//! (TOML). The file sets defaults (port, token file) and lists nodes, each of which may
//! override them:
//!
//! ```toml
//! token_file = "/etc/axon/reader.token"   # default for every node
//! port = 14000
//! metrics_port = 14090
//! hosts = "axon[001-200]"                 # optional: nodes by host list
//!
//! [[node]]                                # optional: per-node entries / overrides
//! name = "axon007"
//! address = "10.0.0.7"                    # default: the name
//! port = 14100
//! token_file = "/etc/axon/axon007.token"
//! fingerprint = "sha256:…"                # the agent's TLS certificate, pinned
//! ```
//!
//! `ca_file = "/etc/axon/ca.pem"` (file level or per node) trusts agents whose certificates
//! that CA signed instead of pinning each; see `fleet::tls` for how trust is decided.
//!
//! The whole file is validated before anything connects: every problem (unknown keys,
//! empty names, addresses that are URLs or hold a space, ports outside 1-65535, bad host
//! lists, duplicate nodes, token files that are missing, empty, several lines or not
//! text) is reported at once, each with the file, its line and the remedy.

use super::tls::Trust;
use crate::model::hostlist;
use crate::model::ports::{CONTROL_PORT, METRICS_PORT};
use crate::wire::tls::Fingerprint;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// `address:port`, an IPv6 address in brackets.
pub fn host_port(address: &str, port: u16) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub metrics_port: u16,
    pub token_file: Option<PathBuf>,
    /// The agent's TLS certificate fingerprint, pinned.
    pub fingerprint: Option<Fingerprint>,
    /// A CA that signs the agent's certificate.
    pub ca_file: Option<PathBuf>,
}

impl NodeSpec {
    pub fn endpoint(&self) -> String {
        host_port(&self.address, self.port)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub nodes: Vec<NodeSpec>,
    /// How agents' certificates are trusted (flags); pins come from `nodes`.
    pub trust: std::sync::Arc<Trust>,
    /// The file the nodes came from, to name it in messages; None when they came from
    /// the command line (`--hosts`), so messages suggest no entry of a file.
    pub path: Option<PathBuf>,
}

/// One problem of an inventory or of the command line: where (line of the file, or the
/// flag), what is wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the inventory file; None for the file as a whole or a flag.
    pub line: Option<usize>,
    pub text: String,
}

// No variant has a `source`: each message already says what went wrong, so an error
// chain printer (anyhow's `{:#}`) must not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("inventory {}: {reason} — {remedy}", path.display())]
    Read {
        path: PathBuf,
        reason: String,
        remedy: String,
    },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    /// Problems with `--hosts`, `--port` or `--token-file`.
    #[error("{}", render_args(.0))]
    Args(Vec<String>),
    #[error(
        "no nodes: pass --hosts 'axon[001-022]' or --inventory FILE (axon demo --headless writes one)"
    )]
    Empty,
    /// Token files that became unreadable between validation and use (Fleet::start).
    #[error("{}", render_args(.0))]
    Token(Vec<String>),
    /// A CA file that cannot be used (named in the message).
    #[error("{0}")]
    Tls(String),
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let at = |p: &Problem| match p.line {
        Some(l) => format!("{}:{l}: {}", path.display(), p.text),
        None => format!("{}: {}", path.display(), p.text),
    };
    match problems {
        [one] => at(one),
        many => {
            let mut s = format!(
                "inventory {} has {} problems (nothing was started):",
                path.display(),
                many.len()
            );
            for p in many {
                s.push_str("\n  ");
                s.push_str(&at(p));
            }
            s
        }
    }
}

fn render_args(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => format!("{} problems:\n  {}", many.len(), many.join("\n  ")),
    }
}

impl InventoryError {
    /// The individual problems (tests and tools that want them one by one).
    pub fn problems(&self) -> Vec<String> {
        match self {
            InventoryError::Invalid { path, problems } => problems
                .iter()
                .map(|p| render_problems(path, std::slice::from_ref(p)))
                .collect(),
            InventoryError::Args(v) | InventoryError::Token(v) => v.clone(),
            other => vec![other.to_string()],
        }
    }
}

// ------------------------------------------------------------------ token files

/// Reads a bearer token file as the console uses it: one line of printable ASCII. Every
/// other content is refused with what is wrong and the remedy (not the caller's path
/// context, which the caller adds).
pub fn read_token(path: &Path) -> Result<String, String> {
    const COPY: &str = "copy the agent's reader.token (admin.token for probes) from its --state-dir (default /var/lib/axon)";
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("not found — {COPY}, or pass --token-file with the right path")
                }
                std::io::ErrorKind::PermissionDenied => "permission denied — run as a user that may read it (the agent writes it mode 0600 for root), or pass --token-file with a readable copy".to_string(),
                std::io::ErrorKind::IsADirectory => {
                    "is a directory — name the token file inside it, e.g. /var/lib/axon/reader.token".to_string()
                }
                _ => format!(
                    "unreadable ({}) — check the path, or pass --token-file with a readable copy",
                    io_words(&e)
                ),
            });
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(format!(
            "is not text (not valid UTF-8) — a token file holds the one line the agent wrote; {COPY}"
        ));
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => Err(format!("is empty — {COPY}")),
        [token] => {
            if let Some(c) = token.chars().find(|c| !c.is_ascii_graphic()) {
                Err(format!(
                    "holds {c:?}, which a bearer token cannot contain (printable ASCII without spaces only) — {COPY} unchanged"
                ))
            } else {
                Ok(token.to_string())
            }
        }
        many => Err(format!(
            "has {} non-empty lines; a token file holds one token on one line — keep only the token, or {COPY}",
            many.len()
        )),
    }
}

/// An io::Error's words without the "(os error N)" suffix.
fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s.to_lowercase(),
    }
}

// ------------------------------------------------------------------ names and addresses

/// Why `name` cannot be a node name, if it cannot.
fn bad_name(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("is empty — give the node's host name, e.g. name = \"axon007\"".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':')))
    {
        return Some(format!(
            "`{name}` contains {c:?} — a node name is a host name (letters, digits, `-`, `.`, `_`); put an address in `address =`"
        ));
    }
    None
}

/// Why `address` cannot be connected to, if it cannot: a URL, a port glued on, a space,
/// characters no host name has.
fn bad_address(address: &str) -> Option<String> {
    if address.trim().is_empty() {
        return Some(
            "is empty — give a host name or IP address, or leave `address` out to use the name"
                .into(),
        );
    }
    if let Some((scheme, rest)) = address.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let (host, port) = split_port(authority).unwrap_or((authority, "…"));
        return Some(format!(
            "`{address}` is a URL ({scheme}://) — give only the host (`{host}`), and the port as `port = {port}`"
        ));
    }
    if address.chars().any(char::is_whitespace) {
        return Some(format!(
            "`{address}` contains a space — give one host name or IP address per node"
        ));
    }
    let inner = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    if inner.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    if let Some((host, port)) = split_port(address) {
        return Some(format!(
            "`{address}` includes a port — give `address = \"{host}\"` and `port = {port}`"
        ));
    }
    if address.contains(':') || address.starts_with('[') {
        return Some(format!("`{address}` is not an IPv6 address"));
    }
    if let Some(c) = address
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Some(format!(
            "`{address}` contains {c:?}, which no host name or IP address has"
        ));
    }
    if address.len() > 253 || address.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Some(format!(
            "`{address}` is not a host name (empty or over-long label)"
        ));
    }
    None
}

/// `host:port` or `[v6]:port` → (host, port), when the part after the last colon is a
/// number.
fn split_port(s: &str) -> Option<(&str, &str)> {
    let (host, port) = s.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return Some((host, port));
    }
    // A bare IPv6 address has more colons: `fd00::1` is not `fd00:` port 1.
    (!host.contains(':') && !host.is_empty()).then_some((host, port))
}

/// Levenshtein distance, for "did you mean" on unknown keys.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unknown_key(key: &str, table: &str, known: &[&str]) -> String {
    let hint = known
        .iter()
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    format!(
        "unknown key `{key}` in {table} — {hint}known keys: {}",
        known.join(", ")
    )
}

// ------------------------------------------------------------------ the file

const TOP_KEYS: [&str; 6] = [
    "token_file",
    "port",
    "metrics_port",
    "hosts",
    "ca_file",
    "node",
];
const NODE_KEYS: [&str; 7] = [
    "name",
    "address",
    "port",
    "metrics_port",
    "token_file",
    "fingerprint",
    "ca_file",
];

/// Collects problems with their lines while the file is walked.
struct Checker<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn at(&mut self, offset: usize, text: impl Into<String>) {
        let line = Some(self.line(offset));
        self.problems.push(Problem {
            line,
            text: text.into(),
        });
    }

    fn string<'a>(&mut self, key: &str, v: &'a Spanned<DeValue>) -> Option<&'a str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.at(
                    v.span().start,
                    format!(
                        "{key} must be a string in quotes, not {} {}",
                        article(other.type_str()),
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn port(&mut self, key: &str, v: &Spanned<DeValue>) -> Option<u16> {
        let remedy = if key == "metrics_port" {
            "give the agents' /metrics port, 1-65535 (default 14090)"
        } else {
            "give the agents' gRPC port, 1-65535 (default 14000)"
        };
        match v.get_ref() {
            DeValue::Integer(i) => {
                match i128::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .and_then(|n| u16::try_from(n).ok())
                {
                    Some(p) if p > 0 => Some(p),
                    _ => {
                        self.at(
                            v.span().start,
                            format!("{key} = {i} is not a TCP port — {remedy}"),
                        );
                        None
                    }
                }
            }
            other => {
                self.at(
                    v.span().start,
                    format!(
                        "{key} must be a number, not {} {} — {remedy}",
                        article(other.type_str()),
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    /// A token file path, anchored at the inventory's directory when relative, and its
    /// content checked.
    fn token_file(
        &mut self,
        v: &Spanned<DeValue>,
        base: &Path,
        read: bool,
        checked: &mut HashMap<PathBuf, bool>,
    ) -> Option<PathBuf> {
        let s = self.string("token_file", v)?;
        if s.trim().is_empty() {
            self.at(
                v.span().start,
                "token_file is empty — give the path of the agent's reader.token (or admin.token), or leave the key out",
            );
            return None;
        }
        let p = PathBuf::from(s);
        let p = if p.is_relative() { base.join(p) } else { p };
        if read && !checked.contains_key(&p) {
            let ok = match read_token(&p) {
                Ok(_) => true,
                Err(why) => {
                    self.at(v.span().start, format!("token_file {}: {why}", p.display()));
                    false
                }
            };
            checked.insert(p.clone(), ok);
        }
        Some(p)
    }
}

impl Checker<'_> {
    /// A CA file path, anchored at the inventory's directory when relative; it must be
    /// readable (its content is checked when the fleet starts).
    fn ca_file(&mut self, v: &Spanned<DeValue>, base: &Path) -> Option<PathBuf> {
        let s = self.string("ca_file", v)?;
        let p = PathBuf::from(s);
        let p = if p.is_relative() { base.join(p) } else { p };
        if let Err(e) = std::fs::File::open(&p) {
            self.at(
                v.span().start,
                format!(
                    "ca_file {}: {} — give the PEM certificate of the CA that signed the agents' certificates",
                    p.display(),
                    io_words(&e)
                ),
            );
            return None;
        }
        Some(p)
    }

    fn fingerprint(&mut self, v: &Spanned<DeValue>) -> Option<Fingerprint> {
        let s = self.string("fingerprint", v)?;
        match Fingerprint::parse(s) {
            Ok(f) => Some(f),
            Err(e) => {
                self.at(v.span().start, format!("fingerprint {e}"));
                None
            }
        }
    }
}

fn article(type_str: &str) -> &'static str {
    if type_str.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Where a node came from, for duplicate and override messages.
struct Origin {
    line: usize,
}

impl Inventory {
    /// Nodes from a host list, all with the same port and token file. The token file is
    /// read and checked here, so a bad one is an error at start.
    pub fn from_hosts(
        list: &str,
        port: u16,
        token_file: Option<PathBuf>,
    ) -> Result<Self, InventoryError> {
        let mut problems = Vec::new();
        if port == 0 {
            problems.push(
                "--port 0 is not a TCP port — give the agents' gRPC port, 1-65535 (default 14000)"
                    .to_string(),
            );
        }
        if let Some(t) = &token_file {
            if let Err(why) = read_token(t) {
                problems.push(format!("--token-file {}: {why}", t.display()));
            }
        }
        let names = match hostlist::expand(list) {
            Ok(n) => n,
            Err(e) => {
                problems.push(format!("--hosts: {e}"));
                Vec::new()
            }
        };
        let mut nodes = Vec::new();
        for name in names {
            match bad_address(&name) {
                Some(why) => problems.push(format!("--hosts: {why}")),
                None => nodes.push(NodeSpec {
                    address: name.clone(),
                    name,
                    port,
                    metrics_port: METRICS_PORT,
                    token_file: token_file.clone(),
                    fingerprint: None,
                    ca_file: None,
                }),
            }
        }
        if !problems.is_empty() {
            return Err(InventoryError::Args(problems));
        }
        if nodes.is_empty() {
            return Err(InventoryError::Empty);
        }
        Ok(Inventory {
            nodes,
            ..Default::default()
        })
    }

    /// Reads and validates an inventory file, including every token file it names.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        Self::load_with_token(path, None)
    }

    /// Like `load`, with `--token-file` given: that file replaces every node's token file
    /// (the operator's credential for this session, e.g. the admin token for probes), and
    /// the file's own token files are neither read nor required.
    pub fn load_with_token(
        path: &Path,
        token_file: Option<PathBuf>,
    ) -> Result<Self, InventoryError> {
        let bytes = std::fs::read(path).map_err(|e| {
            let (reason, remedy) = match e.kind() {
                std::io::ErrorKind::NotFound => (
                    "not found".to_string(),
                    "check the path given to --inventory (`axon demo --headless` writes one)",
                ),
                std::io::ErrorKind::PermissionDenied => (
                    "permission denied".to_string(),
                    "run as a user that may read it, or copy it somewhere readable",
                ),
                std::io::ErrorKind::IsADirectory => (
                    "is a directory".to_string(),
                    "give the inventory file inside it, e.g. cluster.toml",
                ),
                _ => (io_words(&e), "check the path given to --inventory"),
            };
            InventoryError::Read {
                path: path.to_path_buf(),
                reason,
                remedy: remedy.to_string(),
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|e| InventoryError::Invalid {
            path: path.to_path_buf(),
            problems: vec![Problem {
                line: Some(
                    e.as_bytes()[..e.utf8_error().valid_up_to()]
                        .iter()
                        .filter(|b| **b == b'\n')
                        .count()
                        + 1,
                ),
                text: "not UTF-8 text — save the inventory as UTF-8 TOML".into(),
            }],
        })?;
        let mut problems = Vec::new();
        if let Some(t) = &token_file {
            if let Err(why) = read_token(t) {
                problems.push(format!("--token-file {}: {why}", t.display()));
            }
        }
        let inv = Self::check(&text, path, token_file.is_none());
        match (inv, problems.is_empty()) {
            (Ok(mut inv), true) => {
                if let Some(t) = token_file {
                    for n in &mut inv.nodes {
                        n.token_file = Some(t.clone());
                    }
                }
                Ok(inv)
            }
            (Ok(_), false) => Err(InventoryError::Args(problems)),
            // The file's problems first; a bad --token-file joins them.
            (
                Err(InventoryError::Invalid {
                    path,
                    problems: mut p,
                }),
                false,
            ) => {
                p.extend(
                    problems
                        .into_iter()
                        .map(|text| Problem { line: None, text }),
                );
                Err(InventoryError::Invalid { path, problems: p })
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Parses and validates inventory TOML without reading token files; `path` names the
    /// file in errors and anchors relative token file paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InventoryError> {
        Self::check(text, path, false)
    }

    fn check(text: &str, path: &Path, read_tokens: bool) -> Result<Self, InventoryError> {
        let invalid = |problems: Vec<Problem>| InventoryError::Invalid {
            path: path.to_path_buf(),
            problems,
        };
        let mut c = Checker {
            text,
            problems: Vec::new(),
        };
        let (doc, errors) = DeTable::parse_recoverable(text);
        if !errors.is_empty() {
            for e in errors {
                let at = e.span().map(|s| s.start).unwrap_or(0);
                c.at(
                    at,
                    format!(
                        "not valid TOML: {} — fix the syntax (strings in \"quotes\", one key = value per line, [[node]] for each node)",
                        e.message().trim().trim_end_matches('.')
                    ),
                );
            }
            c.problems.sort_by_key(|p| p.line);
            return Err(invalid(c.problems));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut checked_tokens: HashMap<PathBuf, bool> = HashMap::new();
        let (mut port, mut metrics_port, mut token_file) = (CONTROL_PORT, METRICS_PORT, None);
        let mut ca_file: Option<PathBuf> = None;
        let mut hosts: Option<&Spanned<DeValue>> = None;
        let mut node_tables: Vec<&Spanned<DeValue>> = Vec::new();
        for (k, v) in doc.get_ref().iter() {
            match k.get_ref().as_ref() {
                "port" => port = c.port("port", v).unwrap_or(port),
                "metrics_port" => metrics_port = c.port("metrics_port", v).unwrap_or(metrics_port),
                "token_file" => {
                    token_file = c.token_file(v, base, read_tokens, &mut checked_tokens)
                }
                "hosts" => hosts = Some(v),
                "ca_file" => ca_file = c.ca_file(v, base),
                "node" => match v.get_ref() {
                    DeValue::Array(a) => node_tables.extend(a.iter()),
                    _ => c.at(
                        k.span().start,
                        "node must be a list of tables: write each node as a [[node]] section",
                    ),
                },
                other => c.at(
                    k.span().start,
                    unknown_key(other, "the inventory", &TOP_KEYS),
                ),
            }
        }
        let mut nodes: Vec<NodeSpec> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        if let Some(v) = hosts {
            if let Some(list) = c.string("hosts", v) {
                match hostlist::expand(list) {
                    Ok(names) => {
                        for name in names {
                            if let Some(why) = bad_address(&name) {
                                c.at(v.span().start, format!("hosts: {why}"));
                                continue;
                            }
                            index.insert(name.clone(), nodes.len());
                            nodes.push(NodeSpec {
                                address: name.clone(),
                                name,
                                port,
                                metrics_port,
                                token_file: token_file.clone(),
                                fingerprint: None,
                                ca_file: ca_file.clone(),
                            });
                        }
                    }
                    Err(e) => c.at(v.span().start, format!("hosts: {e}")),
                }
            }
        }
        let mut seen: HashMap<String, Origin> = HashMap::new();
        for t in node_tables {
            let start = t.span().start;
            let DeValue::Table(table) = t.get_ref() else {
                c.at(
                    start,
                    "each node must be a table: write it as a [[node]] section with name = …",
                );
                continue;
            };
            let mut name: Option<(String, usize)> = None;
            let mut address: Option<(String, usize)> = None;
            let mut spec_port = port;
            let mut spec_metrics = metrics_port;
            let mut spec_token = token_file.clone();
            let mut spec_fingerprint = None;
            let mut spec_ca = ca_file.clone();
            let mut ok = true;
            for (k, v) in table.iter() {
                match k.get_ref().as_ref() {
                    "name" => match c.string("name", v) {
                        Some(s) => match bad_name(s) {
                            Some(why) => {
                                c.at(v.span().start, format!("node name {why}"));
                                ok = false;
                            }
                            None => name = Some((s.to_string(), v.span().start)),
                        },
                        None => ok = false,
                    },
                    "address" => match c.string("address", v) {
                        Some(s) => match bad_address(s) {
                            Some(why) => {
                                c.at(v.span().start, format!("address {why}"));
                                ok = false;
                            }
                            None => address = Some((s.to_string(), v.span().start)),
                        },
                        None => ok = false,
                    },
                    "port" => match c.port("port", v) {
                        Some(p) => spec_port = p,
                        None => ok = false,
                    },
                    "metrics_port" => match c.port("metrics_port", v) {
                        Some(p) => spec_metrics = p,
                        None => ok = false,
                    },
                    "token_file" => match c.token_file(v, base, read_tokens, &mut checked_tokens) {
                        Some(p) => spec_token = Some(p),
                        None => ok = false,
                    },
                    "fingerprint" => match c.fingerprint(v) {
                        Some(f) => spec_fingerprint = Some(f),
                        None => ok = false,
                    },
                    "ca_file" => match c.ca_file(v, base) {
                        Some(p) => spec_ca = Some(p),
                        None => ok = false,
                    },
                    other => {
                        c.at(k.span().start, unknown_key(other, "[[node]]", &NODE_KEYS));
                        ok = false;
                    }
                }
            }
            let Some((name, name_at)) = name else {
                if !table.iter().any(|(k, _)| k.get_ref() == "name") {
                    c.at(
                        start,
                        "[[node]] without a name — add name = \"<host name>\" (and address = … if the name does not resolve)",
                    );
                }
                continue;
            };
            let line = c.line(name_at);
            if let Some(first) = seen.get(&name) {
                c.at(
                    name_at,
                    format!(
                        "node `{name}` is listed twice (first at line {}) — keep one [[node]] entry per node",
                        first.line
                    ),
                );
                continue;
            }
            seen.insert(name.clone(), Origin { line });
            // Without an address the name is the address: it must be one.
            if address.is_none() {
                if let Some(why) = bad_address(&name) {
                    c.at(
                        name_at,
                        format!("node `{name}` has no address and its name is not one: {why}"),
                    );
                    continue;
                }
            }
            if !ok {
                continue;
            }
            let spec = NodeSpec {
                address: address.map(|a| a.0).unwrap_or_else(|| name.clone()),
                port: spec_port,
                metrics_port: spec_metrics,
                token_file: spec_token,
                fingerprint: spec_fingerprint,
                ca_file: spec_ca,
                name,
            };
            match index.get(&spec.name) {
                Some(&i) => nodes[i] = spec,
                None => {
                    index.insert(spec.name.clone(), nodes.len());
                    nodes.push(spec);
                }
            }
        }
        // Two entries that reach the same agent are one node twice.
        let mut endpoints: HashMap<String, &str> = HashMap::new();
        let mut clashes = Vec::new();
        for n in &nodes {
            if let Some(other) = endpoints.insert(n.endpoint(), &n.name) {
                clashes.push(format!(
                    "nodes `{other}` and `{}` both connect to {} — give each node its own address or port",
                    n.name,
                    n.endpoint()
                ));
            }
        }
        for text in clashes {
            c.problems.push(Problem { line: None, text });
        }
        if nodes.is_empty() && c.problems.is_empty() {
            c.problems.push(Problem {
                line: None,
                text: "lists no nodes — add hosts = \"axon[001-022]\" or a [[node]] section with name = … per node".into(),
            });
        }
        if !c.problems.is_empty() {
            c.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            return Err(invalid(c.problems));
        }
        Ok(Inventory {
            nodes,
            trust: Default::default(),
            path: Some(path.to_path_buf()),
        })
    }

    /// The security to reach one node with: its pin or CA file under the fleet's trust.
    pub fn security(&self, spec: &NodeSpec) -> Result<super::tls::Security, InventoryError> {
        let source = match &self.path {
            Some(p) => format!("inventory {} (node {})", p.display(), spec.name),
            None => format!("the inventory (node {})", spec.name),
        };
        let listed = match &self.path {
            Some(p) => super::tls::Listed::Inventory(Some(p.clone())),
            None => super::tls::Listed::Hosts,
        };
        self.trust
            .for_agent_listed(
                &spec.endpoint(),
                spec.fingerprint.map(|f| (f, source)),
                spec.ca_file.as_deref(),
                listed,
            )
            .map_err(InventoryError::Tls)
    }

    /// Reads every distinct token file once. Every unusable one is reported, each with
    /// its path, what is wrong and the remedy.
    pub fn load_tokens(&self) -> Result<HashMap<PathBuf, String>, InventoryError> {
        let mut out = HashMap::new();
        let mut problems = Vec::new();
        let mut tried = std::collections::HashSet::new();
        for p in self.nodes.iter().filter_map(|n| n.token_file.as_ref()) {
            if !tried.insert(p.clone()) {
                continue;
            }
            match read_token(p) {
                Ok(t) => {
                    out.insert(p.clone(), t);
                }
                Err(why) => problems.push(format!("token file {}: {why}", p.display())),
            }
        }
        if !problems.is_empty() {
            return Err(InventoryError::Token(problems));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_defaults_hostlists_and_overrides() {
        let inv = Inventory::parse(
            "token_file = \"tok\"\nport = 15000\nhosts = \"axon[001-003]\"\n\n[[node]]\nname = \"axon002\"\naddress = \"10.0.0.2\"\nport = 15100\n\n[[node]]\nname = \"login\"\n",
            Path::new("/etc/axon/inventory.toml"),
        )
        .unwrap();
        assert_eq!(inv.nodes.len(), 4);
        assert_eq!(inv.nodes[0].endpoint(), "axon001:15000");
        assert_eq!(inv.nodes[1].endpoint(), "10.0.0.2:15100");
        assert_eq!(inv.nodes[3].name, "login");
        assert_eq!(
            inv.nodes[3].token_file.as_deref(),
            Some(Path::new("/etc/axon/tok"))
        );
    }

    fn problems(text: &str) -> Vec<String> {
        Inventory::parse(text, Path::new("inv.toml"))
            .expect_err("refused")
            .problems()
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let p = Path::new("inv.toml");
        let e = problems("[[node]]\nnmae = \"x\"\n");
        assert!(
            e.iter()
                .any(|e| e.starts_with("inv.toml:2: unknown key `nmae`")
                    && e.contains("did you mean `name`")),
            "{e:?}"
        );
        let e = problems("hosts = \"a[1-\"\n");
        assert!(
            e[0].starts_with("inv.toml:1: hosts: ") && e[0].contains("unbalanced"),
            "{e:?}"
        );
        let e = problems("[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n");
        assert!(
            e[0].starts_with("inv.toml:4:") && e[0].contains("listed twice (first at line 2)"),
            "{e:?}"
        );
        let e = Inventory::parse("", p).unwrap_err().to_string();
        assert!(e.starts_with("inv.toml: lists no nodes"), "{e}");
        let e = problems("port = 99999\nhosts = \"a\"\n");
        assert!(
            e[0].starts_with("inv.toml:1: port = 99999 is not a TCP port"),
            "{e:?}"
        );
        let e = problems("port = 14000\nhosts = \"a\"\n[x\n");
        assert!(e[0].starts_with("inv.toml:3: not valid TOML"), "{e:?}");
    }

    #[test]
    fn inventory_with_empty_name_is_refused_with_file_and_line() {
        let e = Inventory::parse(
            "[[node]]\nname = \"\"\naddress = \"10.0.0.1\"\n",
            Path::new("/etc/axon/inv.toml"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "/etc/axon/inv.toml:2: node name is empty — give the node's host name, e.g. name = \"axon007\""
        );
    }

    #[test]
    fn inventory_reports_every_problem_with_its_line_and_remedy() {
        let text = "port = 0\n\
                    hosts = \"ok[1-2]\"\n\
                    [[node]]\n\
                    name = \"a\"\n\
                    address = \"a b\"\n\
                    [[node]]\n\
                    name = \"b\"\n\
                    address = \"https://10.0.0.7:14000/\"\n\
                    [[node]]\n\
                    name = \"c\"\n\
                    address = \"10.0.0.8:14000\"\n\
                    metrics_port = \"14090\"\n";
        let e = problems(text);
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(
            e[0].starts_with("inv.toml:1: port = 0 is not a TCP port — give the agents' gRPC port"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("inv.toml:5: address `a b` contains a space"),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("inv.toml:8: address `https://10.0.0.7:14000/` is a URL")
                && e[2].contains("give only the host (`10.0.0.7`), and the port as `port = 14000`"),
            "{e:?}"
        );
        assert!(
            e[3].starts_with("inv.toml:11: address `10.0.0.8:14000` includes a port")
                && e[3].contains("port = 14000"),
            "{e:?}"
        );
        assert!(
            e[4].starts_with("inv.toml:12: metrics_port must be a number, not a string"),
            "{e:?}"
        );
        let all = Inventory::parse(text, Path::new("inv.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            all.starts_with(
                "inventory inv.toml has 5 problems (nothing was started):\n  inv.toml:1:"
            ),
            "{all}"
        );
    }

    #[test]
    fn addresses_that_are_valid_pass() {
        for a in [
            "10.0.0.7",
            "fd00::7",
            "[fd00::7]",
            "axon007",
            "axon007.cluster.local",
            "node_7",
        ] {
            assert_eq!(bad_address(a), None, "{a}");
        }
        for a in [
            "",
            "a b",
            "http://x",
            "x:80",
            "[fd00::1]:14000",
            "a/b",
            "a..b",
        ] {
            assert!(bad_address(a).is_some(), "{a}");
        }
    }

    #[test]
    fn token_files_that_are_empty_multi_line_or_not_text_are_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, data: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            p
        };
        assert_eq!(read_token(&write("good", b"abc123\n")).unwrap(), "abc123");
        let empty = write("empty", b"\n\n");
        let multi = write("multi", b"abc\ndef\n");
        let binary = write("binary", b"\xff\xfe\x00");
        let inv = dir.path().join("inv.toml");
        std::fs::write(
            &inv,
            "token_file = \"empty\"\n[[node]]\nname = \"a\"\ntoken_file = \"multi\"\n[[node]]\nname = \"b\"\ntoken_file = \"binary\"\n[[node]]\nname = \"c\"\ntoken_file = \"dir\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("dir")).unwrap();
        let e = Inventory::load(&inv).unwrap_err().problems();
        let d = dir.path().display();
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].contains(&format!(
                "inv.toml:1: token_file {}: is empty — copy the agent's reader.token",
                empty.display()
            )),
            "{e:?}"
        );
        assert!(
            e[1].contains(&format!(
                "inv.toml:4: token_file {}: has 2 non-empty lines",
                multi.display()
            )),
            "{e:?}"
        );
        assert!(
            e[2].contains(&format!(
                "inv.toml:7: token_file {}: is not text (not valid UTF-8)",
                binary.display()
            )),
            "{e:?}"
        );
        assert!(
            e[3].contains(&format!("inv.toml:10: token_file {d}/dir: is a directory")),
            "{e:?}"
        );
        for p in &e {
            assert!(!p.contains("create the directory"), "{p}");
        }
        // --token-file replaces the file's token files, which are then not needed.
        let good = write("admin", b"tok\n");
        let inv2 = Inventory::load_with_token(&inv, Some(good.clone())).unwrap();
        assert!(
            inv2.nodes
                .iter()
                .all(|n| n.token_file.as_ref() == Some(&good))
        );
        let e = Inventory::load_with_token(&inv, Some(empty.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("--token-file {}: is empty", empty.display())),
            "{e}"
        );
        // --hosts with a bad token file or port 0.
        let e = Inventory::from_hosts("a[1-2]", 0, Some(multi))
            .unwrap_err()
            .problems();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("--port 0 is not a TCP port"), "{e:?}");
        assert!(e[1].contains("has 2 non-empty lines"), "{e:?}");
    }

    #[test]
    fn errors_do_not_repeat_themselves() {
        let e =
            anyhow::Error::from(Inventory::load(Path::new("/nonexistent/inv.toml")).unwrap_err());
        let s = format!("{e:#}");
        assert_eq!(
            s,
            "inventory /nonexistent/inv.toml: not found — check the path given to --inventory (`axon demo --headless` writes one)"
        );
        let e = anyhow::Error::from(
            Inventory::parse("hosts = \"a[1-\"\n", Path::new("i.toml")).unwrap_err(),
        );
        let s = format!("{e:#}");
        assert_eq!(s.matches("unbalanced").count(), 1, "{s}");
    }

    #[test]
    fn ipv6_endpoints_are_bracketed() {
        let inv = Inventory::from_hosts("fd00::1", 14000, None);
        // `:` is allowed in host names so IPv6 literals pass through.
        assert_eq!(inv.unwrap().nodes[0].endpoint(), "[fd00::1]:14000");
    }
}

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
//! fingerprint = "sha256:…"                # the agent's TLS certificate (pinned)
//! ```
//!
//! `ca_file = "/etc/axon/ca.pem"` (file level or per node) trusts agents whose certificates
//! that CA signed instead; see `fleet::tls` for the order in which trust is decided.

use super::tls::Trust;
use crate::model::hostlist;
use crate::model::ports::{CONTROL_PORT, METRICS_PORT};
use crate::wire::tls::Fingerprint;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub metrics_port: u16,
    pub token_file: Option<PathBuf>,
    /// The agent's certificate fingerprint, pinned.
    pub fingerprint: Option<Fingerprint>,
    /// A CA that signs the agent's certificate.
    pub ca_file: Option<PathBuf>,
}

impl NodeSpec {
    pub fn endpoint(&self) -> String {
        if self.address.contains(':') && !self.address.starts_with('[') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub nodes: Vec<NodeSpec>,
    /// How agents' certificates are trusted (flags); pins come from `nodes`.
    pub trust: std::sync::Arc<Trust>,
    /// The file the nodes came from, to name it in messages.
    pub path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{}: {source} — check the path given to --inventory", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Parse { path: PathBuf, detail: String },
    #[error("{0}")]
    Hostlist(#[from] hostlist::HostlistError),
    #[error("{}: node `{name}` is listed twice", path.display())]
    Duplicate { path: PathBuf, name: String },
    #[error(
        "no nodes: pass --hosts 'axon[001-022]' or --inventory FILE (axon demo --headless writes one)"
    )]
    Empty,
    #[error("{0}")]
    Tls(String),
    #[error("token file {}: {source} — run as root, or pass --token-file with a readable copy of the agent's reader.token", path.display())]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNode {
    name: String,
    address: Option<String>,
    port: Option<u16>,
    metrics_port: Option<u16>,
    token_file: Option<PathBuf>,
    fingerprint: Option<String>,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    token_file: Option<PathBuf>,
    port: Option<u16>,
    metrics_port: Option<u16>,
    hosts: Option<String>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    node: Vec<FileNode>,
}

impl Inventory {
    /// Nodes from a host list, all with the same port and token file.
    pub fn from_hosts(
        list: &str,
        port: u16,
        token_file: Option<PathBuf>,
    ) -> Result<Self, InventoryError> {
        let nodes: Vec<NodeSpec> = hostlist::expand(list)?
            .into_iter()
            .map(|name| NodeSpec {
                address: name.clone(),
                name,
                port,
                metrics_port: METRICS_PORT,
                token_file: token_file.clone(),
                fingerprint: None,
                ca_file: None,
            })
            .collect();
        if nodes.is_empty() {
            return Err(InventoryError::Empty);
        }
        Ok(Inventory {
            nodes,
            ..Default::default()
        })
    }

    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses inventory TOML; `path` names the file in errors and anchors relative token
    /// file paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InventoryError> {
        let f: File = toml::from_str(text).map_err(|e| InventoryError::Parse {
            path: path.to_path_buf(),
            detail: e.to_string().trim().replace('\n', " "),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let anchor = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        let port = f.port.unwrap_or(CONTROL_PORT);
        let metrics_port = f.metrics_port.unwrap_or(METRICS_PORT);
        let token_file = f.token_file.map(anchor);
        let ca_file = f.ca_file.map(anchor);
        let mut nodes: Vec<NodeSpec> = match &f.hosts {
            Some(h) => hostlist::expand(h)?
                .into_iter()
                .map(|name| NodeSpec {
                    address: name.clone(),
                    name,
                    port,
                    metrics_port,
                    token_file: token_file.clone(),
                    fingerprint: None,
                    ca_file: ca_file.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        let mut index: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for n in f.node {
            if !seen.insert(n.name.clone()) {
                return Err(InventoryError::Duplicate {
                    path: path.to_path_buf(),
                    name: n.name,
                });
            }
            let fingerprint = match &n.fingerprint {
                Some(s) => Some(Fingerprint::parse(s).map_err(|e| InventoryError::Parse {
                    path: path.to_path_buf(),
                    detail: format!("node `{}`: fingerprint {e}", n.name),
                })?),
                None => None,
            };
            let spec = NodeSpec {
                fingerprint,
                ca_file: n.ca_file.map(anchor).or_else(|| ca_file.clone()),
                address: n.address.unwrap_or_else(|| n.name.clone()),
                port: n.port.unwrap_or(port),
                metrics_port: n.metrics_port.unwrap_or(metrics_port),
                token_file: n.token_file.map(anchor).or_else(|| token_file.clone()),
                name: n.name,
            };
            match index.get(&spec.name) {
                Some(&i) => nodes[i] = spec,
                None => {
                    index.insert(spec.name.clone(), nodes.len());
                    nodes.push(spec);
                }
            }
        }
        if nodes.is_empty() {
            return Err(InventoryError::Empty);
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
        self.trust
            .for_agent(
                &spec.name,
                &spec.endpoint(),
                spec.fingerprint.map(|f| (f, source)),
                spec.ca_file.as_deref(),
            )
            .map_err(InventoryError::Tls)
    }

    /// Reads every distinct token file once.
    pub fn load_tokens(&self) -> Result<HashMap<PathBuf, String>, InventoryError> {
        let mut out = HashMap::new();
        for p in self.nodes.iter().filter_map(|n| n.token_file.as_ref()) {
            if out.contains_key(p) {
                continue;
            }
            let t = std::fs::read_to_string(p).map_err(|source| InventoryError::Token {
                path: p.clone(),
                source,
            })?;
            out.insert(p.clone(), t.trim().to_string());
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

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let p = Path::new("inv.toml");
        let e = Inventory::parse("[[node]]\nnmae = \"x\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("inv.toml:") && e.contains("nmae"), "{e}");
        let e = Inventory::parse("hosts = \"a[1-\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unbalanced"), "{e}");
        let e = Inventory::parse("[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
        assert!(matches!(
            Inventory::parse("", p),
            Err(InventoryError::Empty)
        ));
        let e = Inventory::parse("port = 99999\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("inv.toml"), "{e}");
    }

    #[test]
    fn ipv6_endpoints_are_bracketed() {
        let inv = Inventory::from_hosts("fd00::1", 14000, None);
        // `:` is allowed in host names so IPv6 literals pass through.
        assert_eq!(inv.unwrap().nodes[0].endpoint(), "[fd00::1]:14000");
    }
}

//! On-demand full-range port probe from one node: asks its agent (ControlService, admin
//! token) to probe every port of the chosen groups, one peer at a time so progress can be
//! reported, and sums up what is blocked.

use crate::fleet::client::{self, Target};
use crate::fleet::inventory::NodeSpec;
use crate::fleet::tls::Security;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Step {
        name: String,
        done: usize,
        total: usize,
    },
    Log(String),
    /// A one-line summary, or why it failed.
    Finished(Result<String, String>),
}

/// Probes `groups` (e.g. `core`: 14000-14100, 15000-15100, 16000-16100) from `spec` to each
/// of `peers`. Sends progress per peer and a summary at the end.
pub async fn full_probe(
    spec: NodeSpec,
    token: Option<String>,
    security: Security,
    peers: Vec<String>,
    groups: Vec<String>,
    tx: mpsc::Sender<Progress>,
) {
    let r = run(&spec, token, security, &peers, &groups, &tx).await;
    let _ = tx.send(Progress::Finished(r)).await;
}

async fn run(
    spec: &NodeSpec,
    token: Option<String>,
    security: Security,
    peers: &[String],
    groups: &[String],
    tx: &mpsc::Sender<Progress>,
) -> Result<String, String> {
    if peers.is_empty() {
        return Err(format!(
            "{} has no peers configured (start its agent with --peers)",
            spec.name
        ));
    }
    let mut c = client::connect(
        &Target::Tcp {
            addr: spec.endpoint(),
            token,
            security,
        },
        Duration::from_secs(3),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut total = 0u32;
    let mut blocked: Vec<String> = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        let _ = tx
            .send(Progress::Step {
                name: format!("{} → {peer}", spec.name),
                done: i,
                total: peers.len(),
            })
            .await;
        let rep = c
            .probe_ports(peer, groups, Duration::from_millis(500), 256)
            .await
            .map_err(|e| format!("{}: {e}", spec.name))?;
        total += rep.probes_total;
        blocked.extend(
            rep.results
                .iter()
                .filter(|r| !r.state.passes_firewall())
                .map(|r| format!("{}:{}/{}", r.peer, r.port, r.proto.as_str())),
        );
    }
    let _ = tx
        .send(Progress::Step {
            name: spec.name.clone(),
            done: peers.len(),
            total: peers.len(),
        })
        .await;
    Ok(if blocked.is_empty() {
        format!(
            "full probe from {} ({}): {total} probes to {} peers, none blocked",
            spec.name,
            groups.join(","),
            peers.len()
        )
    } else {
        format!(
            "full probe from {} ({}): {} of {total} blocked: {}",
            spec.name,
            groups.join(","),
            blocked.len(),
            blocked
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

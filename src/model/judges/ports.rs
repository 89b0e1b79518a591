//! Judge of the firewall between nodes: every probed cluster port reachable.

use super::{CheckInputs, plural, result, unknown, unknown_with};
use crate::model::checks::{CheckResult, CheckStatus};

pub fn ports_open(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "ports.open";
    const EXP: &str =
        "every cluster port reachable (open, or closed with no listener) between nodes";
    let p = match &inp.probes {
        None => {
            return unknown_with(
                ID,
                "no peers to probe",
                EXP,
                "give the peers: `axon check --peers 'axon[001-022]'` (the agent probes its --peers continuously)",
            );
        }
        Some(Err(e)) => return unknown(ID, e.clone(), EXP),
        Some(Ok(p)) => *p,
    };
    if p.results.is_empty() {
        return unknown_with(
            ID,
            "no probe results yet",
            EXP,
            "wait for the first probe round",
        );
    }
    let blocked: Vec<String> = p
        .blocked()
        .map(|r| {
            format!(
                "{}:{}/{} {}",
                r.peer,
                r.port,
                r.proto.as_str(),
                r.state.as_str()
            )
        })
        .collect();
    let open = p
        .results
        .iter()
        .filter(|r| r.state == crate::model::probes::ProbeState::Open)
        .count();
    if blocked.is_empty() {
        result(
            ID,
            CheckStatus::Pass,
            format!(
                "{} to {}: {open} open, {} closed (no listener)",
                plural(p.results.len(), "probe"),
                plural(p.peers.len(), "peer"),
                p.results.len() - open
            ),
            EXP,
            "",
        )
    } else {
        let shown: Vec<&String> = blocked.iter().take(5).collect();
        let more = if blocked.len() > 5 {
            format!(" and {} more", blocked.len() - 5)
        } else {
            String::new()
        };
        result(
            ID,
            CheckStatus::Fail,
            format!(
                "{} of {} blocked: {}{more}",
                blocked.len(),
                plural(p.results.len(), "probe"),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            EXP,
            "open 14000-14100, 15000-15100, 16000-16100 (TCP+UDP), 22, 123, 443, 5696, 8200-8201 (TCP) between all nodes in the host and network firewalls",
        )
    }
}

//! The data plane as a node reports it (DATAPLANE.md): its share of the cluster's stripes
//! counted by chunks lost, the rebuild it runs, its drives with their state and usage, the
//! containers it runs, and its operations. The agent publishes it as the `dataplane`
//! section of its snapshot (and on `DataplaneService`); the console adds the members'
//! shares up into the cluster's.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Rebuild progress, as the node running it reports it every 2 s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RebuildProgress {
    pub active: bool,
    /// Stripes this pass must repair, and those done.
    pub stripes_total: u64,
    pub stripes_done: u64,
    /// Bytes written by this pass.
    pub bytes: u64,
    /// Bytes per second over the pass so far.
    pub rate: u64,
    /// Seconds left at that rate (0 when unknown or done).
    pub eta_secs: u64,
    /// Passes completed since the agent started.
    pub passes: u64,
    /// Bytes rebuilt since the agent started, all passes.
    #[serde(default)]
    pub bytes_total: u64,
    pub last_error: Option<String>,
}

/// One node's share of the cluster's data, as it sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataStatus {
    pub node: u64,
    /// Stripes this node is responsible for, by chunks lost: `[0]` whole, `[1]` one lost…
    /// up to m+1 (more than m: unreadable).
    pub stripes_by_lost: Vec<u64>,
    pub objects: u64,
    pub bytes: u64,
    /// Members not answering now, and those away longer than the grace period.
    pub away: Vec<u64>,
    pub failed: Vec<u64>,
    pub protection: String,
    pub rebuild: RebuildProgress,
    /// Chunks this node holds but cannot serve (on a failed drive, or damaged), which it
    /// is rewriting from the other chunks of their stripes (while IO is started).
    #[serde(default)]
    pub lost_chunks: u64,
    /// The lost chunks wait: IO is stopped, and nothing rewrites them until it starts.
    #[serde(default)]
    pub repair_paused: bool,
    /// Chunks this node has rewritten since it started.
    #[serde(default)]
    pub repaired_chunks: u64,
    /// Orphaned chunks this node has freed since it started.
    #[serde(default)]
    pub orphans_freed: u64,
    /// Chunks this node holds now.
    #[serde(default)]
    pub chunks_held: u64,
    /// Chunks this node has moved to even out the members' usage since it started
    /// (redistribution onto a returning or added member).
    #[serde(default)]
    pub moved_chunks: u64,
}

/// OK, REBUILDING, PARTIALLY_PROTECTED, UNPROTECTED or UNAVAILABLE, from stripe counts by
/// chunks lost (the most severe wins; REBUILDING while a rebuild runs and nothing is
/// unavailable).
pub fn word(by_lost: &[u64], m: usize, rebuilding: bool) -> &'static str {
    let worst = by_lost
        .iter()
        .enumerate()
        .rev()
        .find(|(_, n)| **n > 0)
        .map_or(0, |(i, _)| i);
    if worst > m {
        "UNAVAILABLE"
    } else if rebuilding && worst > 0 {
        "REBUILDING"
    } else if worst == m && m > 0 {
        "UNPROTECTED"
    } else if worst > 0 {
        "PARTIALLY_PROTECTED"
    } else {
        "OK"
    }
}

/// A rebuild's ETA in words: "ETA 22 s", or "ETA not known yet" before a stripe of
/// `total` is done (no rate to go by; 0 s would read as finished).
pub fn eta_words(done: u64, total: u64, eta_secs: u64) -> String {
    if done < total && (done == 0 || eta_secs == 0) {
        "ETA not known yet".into()
    } else {
        format!("ETA {eta_secs} s")
    }
}

/// What is done about the lost chunks, for the repair lines of `cluster status` and the
/// Stripes panel.
pub fn repair_words(d: &DataStatus) -> &'static str {
    if d.repair_paused {
        "not rewritten while IO is stopped (axon start-io rewrites them)"
    } else {
        "being rewritten from parity"
    }
}

/// Sums the members' shares into the cluster's: stripes by lost, objects, bytes, and the
/// rebuild (active if any member's is). `io_started`: the configuration's IO status is
/// STARTED; otherwise no lost chunk is being rewritten, whatever a share says (an older
/// agent keeps its last count across stop-io).
pub fn sum(parts: &[DataStatus], m: usize, io_started: bool) -> DataStatus {
    let mut out = DataStatus {
        stripes_by_lost: vec![0; m + 2],
        ..Default::default()
    };
    let mut away: HashSet<u64> = HashSet::new();
    let mut failed: HashSet<u64> = HashSet::new();
    for p in parts {
        for (i, n) in p.stripes_by_lost.iter().enumerate() {
            let i = i.min(m + 1);
            out.stripes_by_lost[i] += n;
        }
        out.objects += p.objects;
        out.bytes += p.bytes;
        out.lost_chunks += p.lost_chunks;
        out.repaired_chunks += p.repaired_chunks;
        out.orphans_freed += p.orphans_freed;
        out.chunks_held += p.chunks_held;
        out.moved_chunks += p.moved_chunks;
        away.extend(&p.away);
        failed.extend(&p.failed);
        let r = &p.rebuild;
        out.rebuild.active |= r.active;
        out.rebuild.stripes_total += r.stripes_total;
        out.rebuild.stripes_done += r.stripes_done;
        out.rebuild.bytes += r.bytes;
        out.rebuild.rate += r.rate;
        out.rebuild.eta_secs = out.rebuild.eta_secs.max(r.eta_secs);
        out.rebuild.passes += r.passes;
        out.rebuild.bytes_total += r.bytes_total;
        if r.last_error.is_some() {
            out.rebuild.last_error = r.last_error.clone();
        }
    }
    out.away = away.into_iter().collect();
    out.away.sort_unstable();
    out.failed = failed.into_iter().collect();
    out.failed.sort_unstable();
    // Chunks lost inside a node (a failed drive, damage) are counted in their stripes
    // and, while IO is started, being rewritten by their holders: a rebuild too.
    let repairing = io_started && parts.iter().any(|p| p.lost_chunks > 0 && !p.repair_paused);
    out.repair_paused = out.lost_chunks > 0 && !repairing;
    out.protection = word(&out.stripes_by_lost, m, out.rebuild.active || repairing).to_string();
    // Stripes reported whole while chunks are still lost: the counts have not caught up.
    if out.lost_chunks > 0 && out.protection == "OK" {
        out.protection = if repairing {
            "REBUILDING"
        } else {
            "PARTIALLY_PROTECTED"
        }
        .to_string();
    }
    // Every stripe whole, and chunks moving onto a member that came back or was added.
    if out.protection == "OK" && parts.iter().any(|p| p.protection == "REDISTRIBUTING") {
        out.protection = "REDISTRIBUTING".to_string();
    }
    out
}

/// One of this node's drives, as its store has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataDrive {
    /// The drive's id (UUID) in the store and the cluster configuration.
    pub id: String,
    pub path: String,
    /// ACTIVE, PHASING_IN, PHASING_OUT, INACTIVE or FAILED.
    pub state: String,
    /// Chunk slots, and those in use; bytes are slots × the slot size.
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub chunks: u64,
    /// Why the drive cannot be used, when it cannot.
    pub problem: Option<String>,
}

/// A data-plane container (DATAPLANE.md, "Containers"): a named group of threads with the
/// cores of the plan it is pinned to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// `axon-drives0`, `axon-compute0`, `axon-frontend0`, …
    pub name: String,
    /// drives, compute or frontend.
    pub role: String,
    /// The cores of the plan it is pinned to (CPU ids).
    pub cores: Vec<u32>,
    /// Its threads' ids (Linux TIDs), as the pinning collector sees them.
    pub threads: Vec<u32>,
    /// True when the pinning was recorded, not applied (an emulated host).
    pub emulated: bool,
    /// Why pinning failed, if it did (the threads run unpinned).
    pub problem: Option<String>,
}

/// An operation in flight on this node, in brief.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpBrief {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub summary: String,
    pub done: u64,
    pub total: u64,
}

/// Everything one node reports of the data plane. `cluster` is empty when the node hosts
/// a store but is not (yet) a member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeDataplane {
    pub cluster: String,
    pub node_id: u64,
    /// The Raft leader this member knows, 0 when none.
    pub leader: u64,
    /// The epoch of the configuration this member applied: the console fetches the
    /// configuration again when a member reports a newer one.
    pub epoch: u64,
    pub k: u32,
    pub m: u32,
    pub hot_spares: u32,
    /// STOPPED, STARTING or STARTED.
    pub io: String,
    /// Its share of the stripes and the rebuild; None without a data port.
    pub share: Option<DataStatus>,
    pub drives: Vec<DataDrive>,
    pub containers: Vec<Container>,
    /// Operations not yet ended.
    pub operations: Vec<OpBrief>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eta_is_not_known_before_a_stripe_is_done() {
        assert_eq!(eta_words(0, 351, 0), "ETA not known yet");
        assert_eq!(eta_words(0, 351, 40), "ETA not known yet");
        assert_eq!(eta_words(8, 20, 0), "ETA not known yet");
        assert_eq!(eta_words(8, 20, 3), "ETA 3 s");
        assert_eq!(eta_words(20, 20, 0), "ETA 0 s");
    }
}

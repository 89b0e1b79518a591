//! Protection (DATAPLANE.md, "Protection status"): stripes counted by chunks lost — on
//! nodes away — and the word `weka status` would say. Each object is counted by one node
//! only, its *responsible* node (the first of the key's home ranking that is not away), so
//! the members' counts add up to the cluster's.

use super::objects::{Manifest, NodeId, home_ranking};
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
    pub node: NodeId,
    /// Stripes this node is responsible for, by chunks lost: `[0]` whole, `[1]` one lost…
    /// up to m+1 (more than m: unreadable).
    pub stripes_by_lost: Vec<u64>,
    pub objects: u64,
    pub bytes: u64,
    /// Members not answering now, and those away longer than the grace period.
    pub away: Vec<NodeId>,
    pub failed: Vec<NodeId>,
    pub protection: String,
    pub rebuild: RebuildProgress,
    /// Chunks this node holds but cannot serve (on a failed drive, or damaged), which it
    /// is rewriting from the other chunks of their stripes.
    #[serde(default)]
    pub lost_chunks: u64,
    /// Chunks this node has rewritten since it started.
    #[serde(default)]
    pub repaired_chunks: u64,
    /// Orphaned chunks this node has freed since it started.
    #[serde(default)]
    pub orphans_freed: u64,
    /// Chunks this node holds now.
    #[serde(default)]
    pub chunks_held: u64,
}

/// Whether `me` counts (and repairs) the object of `key`: the first of its home ranking
/// among the members that are not away.
pub fn responsible(key: &str, members: &[NodeId], away: &HashSet<NodeId>, me: NodeId) -> bool {
    home_ranking(key, members)
        .into_iter()
        .find(|n| !away.contains(n))
        == Some(me)
}

/// Stripes of `manifests` by chunks on `away` nodes, capped at m+1.
pub fn count(manifests: &[&Manifest], m: usize, away: &HashSet<NodeId>) -> Vec<u64> {
    let mut by = vec![0u64; m + 2];
    for man in manifests {
        for st in &man.stripes {
            let lost = st.nodes.iter().filter(|n| away.contains(n)).count();
            by[lost.min(m + 1)] += 1;
        }
    }
    by
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

/// Sums the members' shares into the cluster's: stripes by lost, objects, bytes, and the
/// rebuild (active if any member's is).
pub fn sum(parts: &[DataStatus], m: usize) -> DataStatus {
    let mut out = DataStatus {
        stripes_by_lost: vec![0; m + 2],
        ..Default::default()
    };
    let mut away: HashSet<NodeId> = HashSet::new();
    let mut failed: HashSet<NodeId> = HashSet::new();
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
    out.protection = word(&out.stripes_by_lost, m, out.rebuild.active).to_string();
    // Chunks lost inside a node (a failed drive, damage) leave their stripes short of one
    // until the holder rewrites them.
    if out.lost_chunks > 0 && out.protection == "OK" {
        out.protection = "REBUILDING".to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::cluster::objects::StripeMap;

    fn man(key: &str, stripes: Vec<Vec<NodeId>>) -> Manifest {
        Manifest {
            key: key.into(),
            generation: 1,
            writer: 1,
            revision: 0,
            object: "o".into(),
            size: 1,
            k: 2,
            m: 2,
            chunk_size: 4096,
            deleted: false,
            stripes: stripes
                .into_iter()
                .map(|nodes| StripeMap {
                    len: 1,
                    crcs: vec![0; nodes.len()],
                    nodes,
                })
                .collect(),
        }
    }

    #[test]
    fn stripes_are_counted_by_chunks_on_nodes_away() {
        let a = man(
            "a",
            vec![vec![1, 2, 3, 4], vec![2, 3, 4, 5], vec![3, 4, 5, 6]],
        );
        let away: HashSet<NodeId> = [3, 4, 5].into();
        assert_eq!(count(&[&a], 2, &away), vec![0, 0, 1, 2]);
        assert_eq!(word(&[0, 0, 1, 2], 2, false), "UNAVAILABLE");
        assert_eq!(word(&[5, 0, 1, 0], 2, false), "UNPROTECTED");
        assert_eq!(word(&[5, 1, 0, 0], 2, false), "PARTIALLY_PROTECTED");
        assert_eq!(word(&[5, 1, 0, 0], 2, true), "REBUILDING");
        assert_eq!(word(&[5, 0, 0, 0], 2, true), "OK");
        assert_eq!(word(&[], 2, false), "OK");
    }

    #[test]
    fn exactly_one_member_is_responsible_for_each_key() {
        let members: Vec<NodeId> = (1..=6).collect();
        for away in [
            HashSet::new(),
            HashSet::from([1, 2]),
            HashSet::from([3, 4, 5]),
        ] {
            for i in 0..100 {
                let key = format!("k{i}");
                let n = members
                    .iter()
                    .filter(|&&me| !away.contains(&me) && responsible(&key, &members, &away, me))
                    .count();
                assert_eq!(n, 1, "{key} with {away:?} away");
            }
        }
    }

    #[test]
    fn shares_add_up() {
        let p = |by: Vec<u64>, active| DataStatus {
            stripes_by_lost: by,
            objects: 1,
            rebuild: RebuildProgress {
                active,
                stripes_total: 4,
                ..Default::default()
            },
            ..Default::default()
        };
        let s = sum(&[p(vec![3, 1, 0, 0], true), p(vec![2, 0, 0, 0], false)], 2);
        assert_eq!(s.stripes_by_lost, vec![5, 1, 0, 0]);
        assert_eq!(s.objects, 2);
        assert_eq!(s.rebuild.stripes_total, 8);
        assert_eq!(s.protection, "REBUILDING");
    }
}

//! Protection (DATAPLANE.md, "Protection status"): stripes counted by chunks lost — on
//! nodes away, or held unreadable by a node that answers (a failed drive, damage) — and
//! the word `weka status` would say. Each object is counted by one node
//! only, its *responsible* node (the first of the key's home ranking that is not away), so
//! the members' counts add up to the cluster's.

use super::objects::{Manifest, NodeId, home_ranking, parse_chunk_key};
use std::collections::{HashMap, HashSet};

pub use crate::model::dataplane::{DataStatus, RebuildProgress, sum, word};

/// Whether `me` counts (and repairs) the object of `key`: the first of its home ranking
/// among the members that are not away.
pub fn responsible(key: &str, members: &[NodeId], away: &HashSet<NodeId>, me: NodeId) -> bool {
    home_ranking(key, members)
        .into_iter()
        .find(|n| !away.contains(n))
        == Some(me)
}

/// Chunks one node holds but cannot serve (on a failed or missing drive, or damaged), as
/// it reported them: by object, (stripe, index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Losses {
    by_object: HashMap<String, HashSet<(usize, usize)>>,
    /// How many the node has in all: more than were listed when its list was cut.
    pub total: u64,
    /// An older whole list these keys came on top of (`over`).
    base: Option<std::sync::Arc<Losses>>,
}

impl Losses {
    /// From chunk keys (`objects::chunk_key`); keys of another shape are skipped.
    pub fn from_keys<S: AsRef<str>>(keys: &[S], total: u64) -> Losses {
        let mut by_object: HashMap<String, HashSet<(usize, usize)>> = HashMap::new();
        for k in keys {
            if let Some((o, i, idx)) = parse_chunk_key(k.as_ref()) {
                by_object.entry(o.to_string()).or_default().insert((i, idx));
            }
        }
        Losses {
            by_object,
            total: total.max(keys.len() as u64),
            base: None,
        }
    }

    /// `keys` (a node's newest, cut report) over `base` (its last whole list): a chunk
    /// either lists counts as lost, so chunks lost since `base` count, and those repaired
    /// since still do until a newer whole list comes.
    pub fn over<S: AsRef<str>>(base: std::sync::Arc<Losses>, keys: &[S], total: u64) -> Losses {
        let mut l = Losses::from_keys(keys, total);
        l.base = Some(base);
        l
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether chunk `idx` of stripe `i` of `object` is among them.
    pub fn has(&self, object: &str, i: usize, idx: usize) -> bool {
        self.by_object
            .get(object)
            .is_some_and(|s| s.contains(&(i, idx)))
            || self.base.as_ref().is_some_and(|b| b.has(object, i, idx))
    }
}

/// Stripes of `manifests` by chunks lost, capped at m+1: a chunk is lost when its node is
/// `away`, or when the node answers but listed it among its `losses`.
pub fn count<L: std::borrow::Borrow<Losses>>(
    manifests: &[&Manifest],
    m: usize,
    away: &HashSet<NodeId>,
    losses: &HashMap<NodeId, L>,
) -> Vec<u64> {
    let mut by = vec![0u64; m + 2];
    let losses: HashMap<NodeId, &Losses> = losses
        .iter()
        .map(|(n, l)| (*n, l.borrow()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    for man in manifests {
        for (i, st) in man.stripes.iter().enumerate() {
            let lost = st
                .nodes
                .iter()
                .enumerate()
                .filter(|(idx, n)| {
                    away.contains(n) || losses.get(n).is_some_and(|l| l.has(&man.object, i, *idx))
                })
                .count();
            by[lost.min(m + 1)] += 1;
        }
    }
    by
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::cluster::objects::{StripeMap, chunk_key};

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
        assert_eq!(
            count(&[&a], 2, &away, &HashMap::<NodeId, Losses>::new()),
            vec![0, 0, 1, 2]
        );
        assert_eq!(word(&[0, 0, 1, 2], 2, false), "UNAVAILABLE");
        assert_eq!(word(&[5, 0, 1, 0], 2, false), "UNPROTECTED");
        assert_eq!(word(&[5, 1, 0, 0], 2, false), "PARTIALLY_PROTECTED");
        assert_eq!(word(&[5, 1, 0, 0], 2, true), "REBUILDING");
        assert_eq!(word(&[5, 0, 0, 0], 2, true), "OK");
        assert_eq!(word(&[], 2, false), "OK");
    }

    #[test]
    fn chunks_a_node_cannot_serve_count_as_lost_in_their_own_stripe_only() {
        // Object "o": stripe 0 on 1..4, stripe 1 on 2..5.
        let a = man("a", vec![vec![1, 2, 3, 4], vec![2, 3, 4, 5]]);
        let none = HashSet::new();
        assert_eq!(
            count(&[&a], 2, &none, &HashMap::<NodeId, Losses>::new()),
            vec![2, 0, 0, 0]
        );
        // Node 3 lost chunk 1 of stripe 1 (it holds it: nodes [2,3,4,5][1] = 3).
        let lost = HashMap::from([(3, Losses::from_keys(&[chunk_key("o", 1, 1)], 1))]);
        assert_eq!(count(&[&a], 2, &none, &lost), vec![1, 1, 0, 0]);
        // The same key listed by a node that does not hold it there counts for nothing.
        let elsewhere = HashMap::from([(4, Losses::from_keys(&[chunk_key("o", 1, 1)], 1))]);
        assert_eq!(count(&[&a], 2, &none, &elsewhere), vec![2, 0, 0, 0]);
        // Another object's chunk, and a key of another shape, count for nothing.
        let other = HashMap::from([(
            3,
            Losses::from_keys(&[chunk_key("p", 1, 1), "junk".into()], 2),
        )]);
        assert_eq!(count(&[&a], 2, &none, &other), vec![2, 0, 0, 0]);
        // A loss on a node also away is one chunk lost, not two.
        let away: HashSet<NodeId> = [3].into();
        assert_eq!(count(&[&a], 2, &away, &lost), vec![0, 2, 0, 0]);
        // With node 5 away too, stripe 1 has two lost.
        let away: HashSet<NodeId> = [5].into();
        assert_eq!(count(&[&a], 2, &away, &lost), vec![1, 0, 1, 0]);
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
        let s = sum(
            &[p(vec![3, 1, 0, 0], true), p(vec![2, 0, 0, 0], false)],
            2,
            true,
        );
        assert_eq!(s.stripes_by_lost, vec![5, 1, 0, 0]);
        assert_eq!(s.objects, 2);
        assert_eq!(s.rebuild.stripes_total, 8);
        assert_eq!(s.protection, "REBUILDING");
    }

    #[test]
    fn lost_chunks_rebuild_only_while_their_holders_rewrite_them() {
        let p = |by: Vec<u64>, lost, paused| DataStatus {
            stripes_by_lost: by,
            lost_chunks: lost,
            repair_paused: paused,
            ..Default::default()
        };
        // IO started: the holder rewrites them.
        let s = sum(
            &[p(vec![3, 1, 0, 0], 1, false), p(vec![2, 0, 0, 0], 0, false)],
            2,
            true,
        );
        assert_eq!(
            (s.protection.as_str(), s.repair_paused),
            ("REBUILDING", false)
        );
        // IO stopped: they wait, and the cluster says so.
        let s = sum(
            &[p(vec![3, 1, 0, 0], 1, true), p(vec![2, 0, 0, 0], 0, false)],
            2,
            true,
        );
        assert_eq!(s.protection, "PARTIALLY_PROTECTED");
        assert!(s.repair_paused && s.lost_chunks == 1);
        assert!(crate::model::dataplane::repair_words(&s).contains("IO is stopped"));
        // The counts not caught up yet (every stripe whole, a chunk lost): not OK either way.
        let s = sum(&[p(vec![4, 0, 0, 0], 1, true)], 2, true);
        assert_eq!(s.protection, "PARTIALLY_PROTECTED");
        let s = sum(&[p(vec![4, 0, 0, 0], 1, false)], 2, true);
        assert_eq!(s.protection, "REBUILDING");
        // IO stopped, an older agent still reporting its count as rewritten: waiting.
        let s = sum(&[p(vec![3, 1, 0, 0], 1, false)], 2, false);
        assert_eq!(s.protection, "PARTIALLY_PROTECTED");
        assert!(s.repair_paused);
    }
}

//! Protection (DATAPLANE.md, "Protection status"): stripes counted by chunks lost — on
//! nodes away — and the word `weka status` would say. Each object is counted by one node
//! only, its *responsible* node (the first of the key's home ranking that is not away), so
//! the members' counts add up to the cluster's.

use super::objects::{Manifest, NodeId, home_ranking};
use std::collections::HashSet;

pub use crate::model::dataplane::{DataStatus, RebuildProgress, sum, word};

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

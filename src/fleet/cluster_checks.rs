//! Checks that need every node, as the console runs them: the nodes that are up now
//! (current data, by the console's clock) go to the cluster judges in
//! `model::judges::cluster`, which decide.

use super::view::{ClusterView, NodeStatus};
use crate::model::checks::CheckResult;
use crate::model::judges::cluster::{self, NodeFacts};

/// Each check judges only the nodes that are up (current data); the ones left out are
/// named in the observation, so a pass never rests on stale facts silently.
pub fn evaluate(v: &ClusterView, now_ms: i64) -> Vec<CheckResult> {
    let up: Vec<NodeFacts> = v
        .nodes
        .iter()
        .filter(|n| n.status(now_ms, &v.thresholds) == NodeStatus::Up)
        .map(|n| NodeFacts {
            name: &n.name,
            host: n.snapshot.as_ref().and_then(|s| s.host.as_ref()),
            nvme: n.snapshot.as_ref().and_then(|s| s.nvme.as_deref()),
            skew_ms: n.skew_ms,
        })
        .collect();
    cluster::judge(&up, v.nodes.len() - up.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::checks::CheckStatus;

    use crate::fleet::view::{ClusterView, NodeView, Thresholds};
    use crate::model::snapshot::{HostFacts, NodeSnapshot};

    fn up_node(name: &str, host: Option<HostFacts>) -> NodeView {
        let mut n = NodeView::new(name.into(), format!("{name}:1"));
        n.snapshot = Some(NodeSnapshot {
            host,
            nvme: Some(vec![]),
            ..Default::default()
        });
        n.received_ms = Some(1_000);
        n
    }

    fn facts(units: Option<u32>) -> Option<HostFacts> {
        Some(HostFacts {
            iommu_cmdline: vec!["iommu=pt".into()],
            iommu_units: units,
            ..Default::default()
        })
    }

    #[test]
    fn iommu_agreement_needs_every_up_node_known() {
        let v = |nodes| ClusterView::new(nodes, Thresholds::for_interval(1000));
        let all = v(vec![
            up_node("a1", facts(Some(2))),
            up_node("a2", facts(Some(2))),
        ]);
        assert_eq!(evaluate(&all, 1_500)[0].status, CheckStatus::Pass);
        let gap = v(vec![
            up_node("a1", facts(Some(2))),
            up_node("a2", facts(Some(2))),
            up_node("a3", facts(None)),
            up_node("a4", None),
        ]);
        let r = &evaluate(&gap, 1_500)[0];
        assert_eq!(r.status, CheckStatus::Unknown, "{}", r.observed);
        assert!(r.observed.contains("not known on a[3-4]"), "{}", r.observed);
        let odd = v(vec![
            up_node("a1", facts(Some(2))),
            up_node("a2", facts(Some(0))),
            up_node("a3", None),
        ]);
        assert_eq!(evaluate(&odd, 1_500)[0].status, CheckStatus::Fail);
    }

    fn drive(name: &str, bytes: u64) -> crate::model::NvmeController {
        crate::model::NvmeController {
            name: name.into(),
            model: "m".into(),
            serial: "s".into(),
            firmware: "f".into(),
            transport: "pcie".into(),
            address: "0000:01:00.0".into(),
            slot: None,
            numa_node: Some(0),
            state: "live".into(),
            namespaces: vec![crate::model::NvmeNamespace {
                name: format!("{name}n1").into(),
                nsid: Some(1),
                size_bytes: bytes,
                logical_block_size: Some(4096),
                write_cache: None,
            }],
            smart: None,
            smart_error: None,
        }
    }

    #[test]
    fn size_ratio_is_unknown_while_a_drive_size_is_unknown_and_fails_on_what_is_known() {
        let mut a = up_node("a1", facts(Some(2)));
        a.snapshot.as_mut().unwrap().nvme = Some(vec![drive("nvme0", 8_000), drive("nvme1", 0)]);
        let mut b = up_node("a2", facts(Some(2)));
        b.snapshot.as_mut().unwrap().nvme = Some(vec![drive("nvme0", 7_000)]);
        let v = ClusterView::new(vec![a.clone(), b], Thresholds::for_interval(1000));
        let r = &evaluate(&v, 1_500)[1];
        assert_eq!(r.status, CheckStatus::Unknown, "{}", r.observed);
        assert!(
            r.observed.contains("size unknown for a1:nvme1"),
            "{}",
            r.observed
        );
        let mut c = up_node("a3", facts(Some(2)));
        c.snapshot.as_mut().unwrap().nvme = Some(vec![drive("nvme0", 100_000)]);
        let v = ClusterView::new(vec![a, c], Thresholds::for_interval(1000));
        assert_eq!(
            evaluate(&v, 1_500)[1].status,
            CheckStatus::Fail,
            "known sizes 1:12.5"
        );
    }
}

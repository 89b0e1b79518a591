//! The data plane's wire form (dataplane.proto): a node's report and the cluster
//! configuration, to and from `model::dataplane` and `model::cluster`.

use super::convert::{WireError, bad};
use super::pb;
use crate::model::cluster::{ClusterConfig, DriveRec, IoStatus, Member};
use crate::model::dataplane::{
    Container, DataDrive, DataStatus, NodeDataplane, OpBrief, RebuildProgress,
};

/// Bounds on what a report may hold; a peer sending more is refused, not followed.
const MAX_M: u32 = 64;
const MAX_LIST: usize = 100_000;

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn io_str(s: &str) -> Result<IoStatus, WireError> {
    match s {
        "STOPPED" | "" => Ok(IoStatus::Stopped),
        "STARTING" => Ok(IoStatus::Starting),
        "STARTED" => Ok(IoStatus::Started),
        x => Err(bad(
            "DataplaneConfig",
            "io",
            format!("unknown IO status `{x}`"),
        )),
    }
}

fn check_m(message: &'static str, m: u32) -> Result<(), WireError> {
    if m > MAX_M {
        return Err(bad(
            message,
            "m",
            format!("{m} parity chunks, more than {MAX_M}"),
        ));
    }
    Ok(())
}

fn check_len(message: &'static str, field: &'static str, n: usize) -> Result<(), WireError> {
    if n > MAX_LIST {
        return Err(bad(
            message,
            field,
            format!("{n} entries, more than {MAX_LIST}"),
        ));
    }
    Ok(())
}

fn encode_share(d: &DataStatus) -> pb::DataShare {
    let r = &d.rebuild;
    pb::DataShare {
        node: d.node,
        stripes_by_lost: d.stripes_by_lost.clone(),
        objects: d.objects,
        bytes: d.bytes,
        away: d.away.clone(),
        failed: d.failed.clone(),
        protection: d.protection.clone(),
        rebuild: Some(pb::RebuildProgress {
            active: r.active,
            stripes_total: r.stripes_total,
            stripes_done: r.stripes_done,
            bytes: r.bytes,
            rate: r.rate,
            eta_secs: r.eta_secs,
            passes: r.passes,
            bytes_total: r.bytes_total,
            last_error: r.last_error.clone().unwrap_or_default(),
        }),
        lost_chunks: d.lost_chunks,
        repair_paused: d.repair_paused,
        repaired_chunks: d.repaired_chunks,
        orphans_freed: d.orphans_freed,
        chunks_held: d.chunks_held,
        moved_chunks: d.moved_chunks,
    }
}

fn decode_share(p: pb::DataShare, m: u32) -> Result<DataStatus, WireError> {
    if p.stripes_by_lost.len() > m as usize + 2 {
        return Err(bad(
            "DataShare",
            "stripes_by_lost",
            format!(
                "{} counts for a scheme with {m} parity chunks (at most {})",
                p.stripes_by_lost.len(),
                m + 2
            ),
        ));
    }
    check_len("DataShare", "away", p.away.len())?;
    check_len("DataShare", "failed", p.failed.len())?;
    let r = p.rebuild.unwrap_or_default();
    Ok(DataStatus {
        node: p.node,
        stripes_by_lost: p.stripes_by_lost,
        objects: p.objects,
        bytes: p.bytes,
        away: p.away,
        failed: p.failed,
        protection: p.protection,
        rebuild: RebuildProgress {
            active: r.active,
            stripes_total: r.stripes_total,
            stripes_done: r.stripes_done,
            bytes: r.bytes,
            rate: r.rate,
            eta_secs: r.eta_secs,
            passes: r.passes,
            bytes_total: r.bytes_total,
            last_error: opt(r.last_error),
        },
        lost_chunks: p.lost_chunks,
        repair_paused: p.repair_paused,
        repaired_chunks: p.repaired_chunks,
        orphans_freed: p.orphans_freed,
        chunks_held: p.chunks_held,
        moved_chunks: p.moved_chunks,
    })
}

/// A node's report; `None` (no data plane any more) travels as `present: false`.
pub fn encode_node_dataplane(d: Option<&NodeDataplane>) -> pb::NodeDataplane {
    let Some(d) = d else {
        return pb::NodeDataplane::default();
    };
    pb::NodeDataplane {
        present: true,
        cluster: d.cluster.clone(),
        node_id: d.node_id,
        leader: d.leader,
        epoch: d.epoch,
        k: d.k,
        m: d.m,
        hot_spares: d.hot_spares,
        io: d.io.clone(),
        share: d.share.as_ref().map(encode_share),
        drives: d
            .drives
            .iter()
            .map(|x| pb::DataDrive {
                id: x.id.clone(),
                path: x.path.clone(),
                state: x.state.clone(),
                capacity_bytes: x.capacity_bytes,
                used_bytes: x.used_bytes,
                chunks: x.chunks,
                problem: x.problem.clone().unwrap_or_default(),
            })
            .collect(),
        containers: d
            .containers
            .iter()
            .map(|c| pb::DataContainer {
                name: c.name.clone(),
                role: c.role.clone(),
                cores: c.cores.clone(),
                threads: c.threads.clone(),
                emulated: c.emulated,
                problem: c.problem.clone().unwrap_or_default(),
            })
            .collect(),
        operations: d
            .operations
            .iter()
            .map(|o| pb::DataOperation {
                id: o.id.clone(),
                kind: o.kind.clone(),
                state: o.state.clone(),
                summary: o.summary.clone(),
                done: o.done,
                total: o.total,
            })
            .collect(),
    }
}

pub fn decode_node_dataplane(p: pb::NodeDataplane) -> Result<Option<NodeDataplane>, WireError> {
    if !p.present {
        return Ok(None);
    }
    check_m("NodeDataplane", p.m)?;
    check_len("NodeDataplane", "drives", p.drives.len())?;
    check_len("NodeDataplane", "containers", p.containers.len())?;
    check_len("NodeDataplane", "operations", p.operations.len())?;
    let m = p.m;
    Ok(Some(NodeDataplane {
        cluster: p.cluster,
        node_id: p.node_id,
        leader: p.leader,
        epoch: p.epoch,
        k: p.k,
        m: p.m,
        hot_spares: p.hot_spares,
        io: p.io,
        share: p.share.map(|s| decode_share(s, m)).transpose()?,
        drives: p
            .drives
            .into_iter()
            .map(|x| DataDrive {
                id: x.id,
                path: x.path,
                state: x.state,
                capacity_bytes: x.capacity_bytes,
                used_bytes: x.used_bytes,
                chunks: x.chunks,
                problem: opt(x.problem),
            })
            .collect(),
        containers: p
            .containers
            .into_iter()
            .map(|c| Container {
                name: c.name,
                role: c.role,
                cores: c.cores,
                threads: c.threads,
                emulated: c.emulated,
                problem: opt(c.problem),
            })
            .collect(),
        operations: p
            .operations
            .into_iter()
            .map(|o| OpBrief {
                id: o.id,
                kind: o.kind,
                state: o.state,
                summary: o.summary,
                done: o.done,
                total: o.total,
            })
            .collect(),
    }))
}

pub fn encode_config(c: &ClusterConfig) -> pb::DataplaneConfig {
    pb::DataplaneConfig {
        cluster: c.cluster.clone().unwrap_or_default(),
        k: c.k as u32,
        m: c.m as u32,
        hot_spares: c.hot_spares as u32,
        members: c
            .members
            .iter()
            .map(|(id, m)| pb::DataplaneMember {
                id: *id,
                name: m.name.clone(),
                address: m.address.clone(),
            })
            .collect(),
        drives: c
            .drives
            .iter()
            .map(|(id, d)| pb::DataplaneDrive {
                id: id.clone(),
                node: d.node,
                path: d.path.clone(),
                state: d.state.clone(),
            })
            .collect(),
        io: c.io.as_str().to_string(),
        epoch: c.epoch,
    }
}

pub fn decode_config(p: pb::DataplaneConfig) -> Result<ClusterConfig, WireError> {
    check_m("DataplaneConfig", p.m)?;
    check_len("DataplaneConfig", "members", p.members.len())?;
    check_len("DataplaneConfig", "drives", p.drives.len())?;
    Ok(ClusterConfig {
        cluster: opt(p.cluster),
        k: p.k as usize,
        m: p.m as usize,
        hot_spares: p.hot_spares as usize,
        members: p
            .members
            .into_iter()
            .map(|m| {
                (
                    m.id,
                    Member {
                        name: m.name,
                        address: m.address,
                    },
                )
            })
            .collect(),
        drives: p
            .drives
            .into_iter()
            .map(|d| {
                (
                    d.id,
                    DriveRec {
                        node: d.node,
                        path: d.path,
                        state: d.state,
                    },
                )
            })
            .collect(),
        io: io_str(&p.io)?,
        epoch: p.epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> NodeDataplane {
        NodeDataplane {
            cluster: "c1".into(),
            node_id: 3,
            leader: 1,
            epoch: 9,
            k: 4,
            m: 2,
            hot_spares: 1,
            io: "STARTED".into(),
            share: Some(DataStatus {
                node: 3,
                stripes_by_lost: vec![10, 2, 0, 0],
                objects: 4,
                bytes: 1 << 20,
                away: vec![5],
                failed: vec![],
                protection: "REBUILDING".into(),
                rebuild: RebuildProgress {
                    active: true,
                    stripes_total: 2,
                    last_error: Some("x".into()),
                    ..Default::default()
                },
                ..Default::default()
            }),
            drives: vec![DataDrive {
                id: "d1".into(),
                path: "/dev/nvme0n1".into(),
                state: "ACTIVE".into(),
                capacity_bytes: 1 << 30,
                used_bytes: 1 << 20,
                chunks: 8,
                problem: None,
            }],
            containers: vec![Container {
                name: "axon-drives0".into(),
                role: "drives".into(),
                cores: vec![2],
                threads: vec![1234],
                emulated: true,
                problem: None,
            }],
            operations: vec![OpBrief {
                id: "op-1".into(),
                kind: "drive-deactivate".into(),
                state: "RUNNING".into(),
                summary: "x".into(),
                done: 1,
                total: 2,
            }],
        }
    }

    #[test]
    fn a_report_and_its_absence_round_trip() {
        let r = report();
        assert_eq!(
            decode_node_dataplane(encode_node_dataplane(Some(&r))).unwrap(),
            Some(r)
        );
        assert_eq!(
            decode_node_dataplane(encode_node_dataplane(None)).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_reports_are_refused_with_the_field() {
        let mut p = encode_node_dataplane(Some(&report()));
        p.share.as_mut().unwrap().stripes_by_lost = vec![0; 40];
        let e = decode_node_dataplane(p).unwrap_err().to_string();
        assert!(e.contains("stripes_by_lost"), "{e}");
        let mut p = encode_node_dataplane(Some(&report()));
        p.m = 1000;
        assert!(decode_node_dataplane(p).is_err());
        let mut c = encode_config(&ClusterConfig::default());
        c.io = "SIDEWAYS".into();
        let e = decode_config(c).unwrap_err().to_string();
        assert!(e.contains("SIDEWAYS"), "{e}");
    }

    #[test]
    fn a_config_round_trips() {
        let mut c = ClusterConfig {
            cluster: Some("c1".into()),
            k: 16,
            m: 4,
            hot_spares: 2,
            io: IoStatus::Started,
            epoch: 40,
            ..Default::default()
        };
        c.members.insert(
            1,
            Member {
                name: "a".into(),
                address: "10.0.0.1:14010".into(),
            },
        );
        c.drives.insert(
            "d".into(),
            DriveRec {
                node: 1,
                path: "/dev/x".into(),
                state: "FAILED".into(),
            },
        );
        assert_eq!(decode_config(encode_config(&c)).unwrap(), c);
    }
}

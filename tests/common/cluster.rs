//! Fixed `ClusterView`s for snapshot tests and render benchmarks, built from the fixture
//! host trees with fixed clocks, so every render is reproducible.
#![allow(dead_code)]

use axon::collectors::HostRoot;
use axon::fleet::view::{ClusterView, Event, Failure, FailureKind, NodeView, Severity, Thresholds};
use axon::model::checks::CheckStatus;
use axon::model::ports::continuous_ports;
use axon::model::probes::{ProbeReport, ProbeResult, ProbeState};
use axon::model::snapshot::{NodeInfo, NodeSnapshot};
use std::path::Path;

/// "Now" in every scenario: 2027-01-15 08:00:00 UTC.
pub const NOW: i64 = 1_800_000_000_000;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hosts")
        .join(name)
}

/// One profile's snapshot, every section collected from its fixture tree, with fixed times.
pub fn profile_snapshot(profile: &str) -> NodeSnapshot {
    let root = HostRoot::open(fixture(profile)).unwrap();
    let state = super::collect_all(&root, &super::collect_config());
    let mut snap = state.snapshot();
    snap.node = NodeInfo {
        hostname: String::new(),
        agent_version: "0.1.0".into(),
        agent_started_ms: NOW - 3_600_000,
        emulated_profile: Some(profile.to_string()),
        collect_interval_ms: 1000,
    };
    snap.taken_ms = NOW - 200;
    for c in &mut snap.collectors {
        c.ok = true;
        c.error = None;
        c.last_run_ms = NOW - 300;
        c.last_success_ms = Some(NOW - 300);
        c.duration_us = 1500;
    }
    snap
}

/// Probes from one node to the others: axon's own ports open, the rest closed, except the
/// listed (peer, port, state) overrides.
pub fn probes(names: &[String], me: usize, blocked: &[(usize, u16, ProbeState)]) -> ProbeReport {
    let mut results = Vec::new();
    let peers: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, n)| n.clone())
        .collect();
    for (i, peer) in names.iter().enumerate() {
        if i == me {
            continue;
        }
        for spec in continuous_ports() {
            let mut state = if matches!(spec.port, 14000 | 14090) {
                ProbeState::Open
            } else {
                ProbeState::Closed
            };
            if let Some((_, _, s)) = blocked
                .iter()
                .find(|(to, port, _)| *to == i && *port == spec.port)
            {
                state = *s;
            }
            results.push(ProbeResult {
                peer: peer.as_str().into(),
                address: compact_str::format_compact!("10.0.0.{}", i + 1),
                port: spec.port,
                proto: spec.proto,
                state,
                rtt_us: state.passes_firewall().then_some(180),
                detail: (state == ProbeState::Unreachable)
                    .then(|| "No route to host (os error 113)".to_string()),
            });
        }
    }
    let mut full = ProbeReport::from_results(peers, results, 40);
    // Rounds of 32 peers every 5 s: each peer probed within the last 20 s.
    for (k, s) in full.summary.iter_mut().enumerate() {
        s.observed_ms = Some(NOW - 1_500 - (k as i64 * 4_000) % 20_000);
        s.round = 1;
    }
    (full.round, full.peers_per_round, full.coverage_ms) = (4, 32, 5_000);
    // What a console receives: summary, totals and only the blocked results.
    let wire: axon::wire::pb::ProbeReport = (&full).into();
    ProbeReport::try_from(wire).unwrap()
}

/// Sets the node's ports.open result from its probes, as the agent's checks would.
fn judge_ports(snap: &mut NodeSnapshot) {
    let Some(p) = &snap.probes else { return };
    let (status, observed) = if p.blocked_total == 0 {
        (
            CheckStatus::Pass,
            format!(
                "{} probes to {} peers: none blocked",
                p.probes_total,
                p.peers.len()
            ),
        )
    } else {
        (
            CheckStatus::Fail,
            format!("{} of {} probes blocked", p.blocked_total, p.probes_total),
        )
    };
    for r in snap
        .checks
        .iter_mut()
        .flatten()
        .filter(|r| r.id == "ports.open")
    {
        r.status = status;
        r.observed = observed.clone();
        r.remedy = if status == CheckStatus::Pass {
            String::new()
        } else {
            "open the cluster ports between all nodes".into()
        };
    }
}

fn named(mut snap: NodeSnapshot, name: &str, serial_tag: usize) -> NodeSnapshot {
    snap.node.hostname = name.to_string();
    // Each node its own addresses: the host part of every IPv4 address but loopback is
    // the node's number (axon005 is 10.0.0.5, 10.10.1.5, …).
    let number: u32 = name
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0);
    for nic in snap.network.iter_mut().flat_map(|n| n.nics.iter_mut()) {
        for a in &mut nic.addresses {
            if a.cidr.starts_with("127.") {
                continue;
            }
            if let Some((ip, len)) = a.cidr.split_once('/') {
                if let Ok(v4) = ip.parse::<std::net::Ipv4Addr>() {
                    let [p, q, r, _] = v4.octets();
                    let host = if (1..=254).contains(&number) {
                        number
                    } else {
                        number % 254 + 1
                    };
                    a.cidr = compact_str::format_compact!("{p}.{q}.{r}.{host}/{len}");
                }
            }
        }
    }
    for d in snap.nvme.iter_mut().flatten() {
        let base = d
            .serial
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_string();
        d.serial = compact_str::format_compact!("{base}{serial_tag:04}");
    }
    snap
}

fn node(name: &str, mut snap: Option<NodeSnapshot>, received: Option<i64>) -> NodeView {
    if let Some(s) = snap.as_mut() {
        judge_ports(s);
    }
    let mut n = NodeView::new(
        name.to_string(),
        format!(
            "10.0.0.{}:14000",
            name.trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse::<u32>()
                .unwrap_or(0)
        ),
    );
    n.set_snapshot(snap);
    n.received_ms = received;
    n.skew_ms = received.map(|_| 3);
    n.messages = 42;
    n
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("axon{i:03}")).collect()
}

/// Runs the sampling of `observe` for the last `secs` seconds, so sparklines have history.
fn settle(v: &mut ClusterView, secs: i64) {
    for s in (0..secs).rev() {
        v.observe(NOW - s * 1000);
    }
}

/// Eight healthy AMD nodes, all fresh, all probes passing.
pub fn healthy() -> ClusterView {
    let base = profile_snapshot("amd-epyc-4numa");
    let ns = names(8);
    let nodes = ns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut s = named(base.clone(), name, i);
            s.probes = Some(probes(&ns, i, &[]));
            node(name, Some(s), Some(NOW - 400))
        })
        .collect();
    let mut v = ClusterView::new(nodes, Thresholds::for_interval(1000));
    settle(&mut v, 30);
    v
}

/// Eight nodes with every kind of trouble: axon003 down (refused), axon004 stale, axon005
/// misconfigured (failing checks, a drive with warnings, a core conflict), axon006 with
/// blocked ports towards axon002, axon007 an Intel host with SMT on.
pub fn troubled() -> ClusterView {
    let amd = profile_snapshot("amd-epyc-4numa");
    let bad = profile_snapshot("misconfigured");
    let intel = profile_snapshot("intel-2s-smt");
    let ns = names(8);
    let mut nodes = Vec::new();
    for (i, name) in ns.iter().enumerate() {
        let base = match i {
            4 => bad.clone(),
            6 => intel.clone(),
            _ => amd.clone(),
        };
        let mut s = named(base, name, i);
        let blocked: Vec<(usize, u16, ProbeState)> = if i == 5 {
            vec![
                (1, 16100, ProbeState::Filtered),
                (1, 22, ProbeState::Filtered),
                (2, 14000, ProbeState::Unreachable),
            ]
        } else {
            vec![]
        };
        s.probes = Some(probes(&ns, i, &blocked));
        let received = match i {
            2 => NOW - 45_000,
            3 => NOW - 7_000,
            _ => NOW - 400,
        };
        nodes.push(node(name, Some(s), Some(received)));
    }
    nodes[2].failure = Some(Failure {
        kind: FailureKind::Connection,
        message: "10.0.0.3:14000: transport error: connection refused".into(),
        at_ms: NOW - 44_000,
    });
    nodes[3].failure = Some(Failure {
        kind: FailureKind::Timeout,
        message: "stream silent for 3500 ms: agent not responding".into(),
        at_ms: NOW - 3_000,
    });
    let mut v = ClusterView::new(nodes, Thresholds::for_interval(1000));
    settle(&mut v, 60);
    v.events.clear();
    for (ago, sev, node, text) in [
        (
            45_000,
            Severity::Critical,
            "axon003",
            "axon003 is down: 10.0.0.3:14000: transport error: connection refused",
        ),
        (
            30_000,
            Severity::Warning,
            "axon006",
            "axon006: blocked ports 0 → 4",
        ),
        (
            12_000,
            Severity::Critical,
            "axon005",
            "axon005: check nvme.plp pass → fail (volatile memory backup device failed on nvme2 (power-loss protection lost))",
        ),
        (
            4_000,
            Severity::Warning,
            "axon004",
            "axon004 is stale: no data for 4s",
        ),
    ] {
        v.push_event(Event {
            seq: 0,
            at_ms: NOW - ago,
            node: Some(node.into()),
            severity: sev,
            text: text.into(),
        });
    }
    v
}

/// A probe report as a console holds it, built directly as a summary (a 1,000-node
/// full mesh would be 18 million individual results): every peer reachable, `blocked`
/// peers filtered on the ssh group.
pub fn summary_report(names: &[String], me: usize, blocked: &[usize]) -> ProbeReport {
    use axon::model::probes::PeerSummary;
    let peers: Vec<compact_str::CompactString> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, n)| n.as_str().into())
        .collect();
    let summary = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(i, n)| {
            let mut states = [Some(ProbeState::Closed); 6];
            states[0] = Some(ProbeState::Open);
            if blocked.contains(&i) {
                states[1] = Some(ProbeState::Filtered);
            }
            PeerSummary {
                peer: n.as_str().into(),
                states,
                rtt_ms: Some(0),
                // Probed in the last round or up to a rotation (160 s) ago.
                observed_ms: Some(NOW - 1_000 - (i as i64 * 7_919) % 160_000),
                round: 1,
            }
        })
        .collect();
    let blocked_results = blocked
        .iter()
        .map(|&i| ProbeResult {
            peer: names[i].as_str().into(),
            address: compact_str::format_compact!("10.0.{}.{}", i / 250, i % 250 + 1),
            port: 22,
            proto: axon::model::probes::Proto::Tcp,
            state: ProbeState::Filtered,
            rtt_us: None,
            detail: None,
        })
        .collect::<Vec<_>>();
    ProbeReport {
        probes_total: (peers.len() * 18) as u32,
        blocked_total: blocked_results.len() as u32,
        peers,
        results: blocked_results,
        summary,
        round_ms: 900,
        round: 32,
        peers_per_round: 32,
        coverage_ms: 160_000,
    }
}

/// `n` nodes cycling through the three profiles, all fresh, with full-mesh probe summaries:
/// the 1,000-node view of the render benchmark.
pub fn large(n: usize) -> ClusterView {
    let profiles = [
        profile_snapshot("amd-epyc-4numa"),
        profile_snapshot("intel-2s-smt"),
        profile_snapshot("misconfigured"),
    ];
    let ns = names(n);
    let nodes = ns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut s = named(
                profiles[if i % 10 == 7 {
                    2
                } else if i % 5 == 4 {
                    1
                } else {
                    0
                }]
                .clone(),
                name,
                i,
            );
            s.probes = Some(summary_report(&ns, i, if i % 97 == 3 { &[0] } else { &[] }));
            node(name, Some(s), Some(NOW - 400))
        })
        .collect();
    let mut v = ClusterView::new(nodes, Thresholds::for_interval(1000));
    settle(&mut v, 120);
    v
}

/// Gives every node of `v` a member's report of one data-plane cluster: 16+4+2 (4+2+1 under
/// 22 nodes), one ACTIVE drive each, the last `away` nodes away past the grace period and
/// silent (their drives still ACTIVE in the configuration: a node away reports nothing),
/// a rebuild under way on the others.
pub fn add_dataplane(v: &mut ClusterView, away: usize) {
    use axon::dataplane::cluster::protection::{DataStatus, RebuildProgress};
    use axon::fleet::view::ClusterBrief;
    use axon::model::cluster::{ClusterConfig, DriveRec, IoStatus, Member};
    let count = v.nodes.len();
    let (k, m, spares) = if count >= 22 { (16, 4, 2) } else { (4, 2, 1) };
    let mut config = ClusterConfig {
        cluster: Some("3f2a9c4e-0000-4000-8000-000000000001".into()),
        k,
        m,
        hot_spares: spares,
        io: IoStatus::Started,
        epoch: 23,
        ..Default::default()
    };
    let gone: Vec<u64> = ((count - away.min(count)) as u64 + 1..=count as u64).collect();
    for (i, n) in v.nodes.iter().enumerate() {
        let id = i as u64 + 1;
        config.members.insert(
            id,
            Member {
                name: n.name.clone(),
                address: format!("10.0.{}.{}:14010", id / 250, id % 250 + 1),
            },
        );
        config.drives.insert(
            format!("drive-{id:05}"),
            DriveRec {
                node: id,
                path: "/dev/nvme1n1".into(),
                state: "ACTIVE".into(),
            },
        );
    }
    for (i, n) in v.nodes.iter_mut().enumerate() {
        let id = i as u64 + 1;
        if gone.contains(&id) {
            continue;
        }
        n.cluster = Some(ClusterBrief {
            node_id: id,
            cluster: "3f2a9c4e-0000-4000-8000-000000000001".into(),
            leader: 1,
            epoch: 23,
            data: Some(DataStatus {
                node: id,
                stripes_by_lost: vec![100, 12, 0, 0, 0, 0][..m + 2].to_vec(),
                objects: 40,
                bytes: 3 << 30,
                away: gone.clone(),
                failed: gone.clone(),
                protection: "REBUILDING".into(),
                rebuild: RebuildProgress {
                    active: true,
                    stripes_total: 20,
                    stripes_done: 8,
                    bytes: 8 << 20,
                    rate: 40 << 20,
                    eta_secs: 3,
                    passes: 0,
                    bytes_total: 8 << 20,
                    last_error: None,
                },
                lost_chunks: 0,
                repair_paused: false,
                repaired_chunks: 0,
                orphans_freed: 0,
                chunks_held: 0,
                moved_chunks: 0,
            }),
        });
    }
    v.dp_config = Some(std::sync::Arc::new(config));
}

//! The cluster's health at a time `now_ms`, computed once from a `ClusterView`: each node's
//! status (with the reason for those that are not up), the counts of the health line, the
//! cluster-wide checks, every problem worst first, and one verdict. The console's Overview
//! and `axon status` both read it, so they cannot disagree.

use super::cluster_checks;
use super::view::{ClusterView, FailureKind, NodeStatus, Severity, fmt_age};
use crate::model::checks::{self, CheckResult, CheckStatus};
use crate::model::hostlist;
use crate::model::nvme::HealthLevel;
use crate::model::snapshot::Section;
use serde::Serialize;
use std::collections::HashMap;

/// What the data plane reports about protection, IO and rebuild: nothing yet. Said in
/// words rather than as a zero, which would read as a figure.
pub const NO_DATA_PLANE: &str = "no data plane reporting";

/// The cluster in one word, and the exit code of `axon status`. The rule, first match
/// wins:
///
/// - **Unreachable** (3): no node is UP. Every node is down, stale or has not answered,
///   so nothing current is known about the cluster; a verdict on old data would mislead.
/// - **Critical** (2): a problem of critical severity: a node is DOWN, a check fails (on
///   a node, or cluster-wide: IOMMU mismatch, SSD size ratio, clock skew), a drive's
///   health is critical, a probe between nodes is blocked (a firewall cutting the
///   cluster's ports splits it), or the data plane is UNAVAILABLE or UNPROTECTED. Each
///   can cost data availability or needs a person now.
/// - **Warnings** (1): a node is STALE or has not answered yet (CONNECTING: its health is
///   unknown), a check warns, a drive warns, a core conflict, a collector failing or a
///   section's data stale, host facts unreadable (topology, NIC types), a data-plane
///   drive FAILED, the data plane REBUILDING or PARTIALLY_PROTECTED.
/// - **Healthy** (0): none of the above. Emulated nodes and drives whose SMART health is
///   unknown are reported but do not change the verdict.
///
/// Apart from CONNECTING (listed as information, since every node is connecting when the
/// console starts), the verdict is the worst severity in the problems list: the Overview
/// shows exactly what decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    Warnings,
    Critical,
    Unreachable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "HEALTHY",
            Verdict::Warnings => "WARNINGS",
            Verdict::Critical => "CRITICAL",
            Verdict::Unreachable => "UNREACHABLE",
        }
    }

    /// 0 healthy, 1 warnings, 2 critical, 3 unreachable.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Warnings => 1,
            Verdict::Critical => 2,
            Verdict::Unreachable => 3,
        }
    }

    /// The rule documented on the type.
    fn judge(c: &Counts, problems: &[Problem]) -> Verdict {
        if c.up == 0 {
            return Verdict::Unreachable;
        }
        let worst = problems.iter().map(|p| p.severity).max();
        match worst {
            Some(Severity::Critical) => Verdict::Critical,
            Some(Severity::Warning) => Verdict::Warnings,
            _ if c.connecting > 0 => Verdict::Warnings,
            _ => Verdict::Healthy,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub up: usize,
    pub stale: usize,
    pub down: usize,
    pub connecting: usize,
    pub emulated: usize,
    pub checks_failing: usize,
    pub checks_failing_nodes: usize,
    /// Cluster-wide checks (IOMMU, SSD ratio, skew) failing: they are among the problems,
    /// so the health line counts them too.
    pub checks_failing_cluster: usize,
    /// Node checks and cluster-wide checks that warn.
    pub checks_warning: usize,
    pub drives_ok: usize,
    pub drives_warning: usize,
    pub drives_critical: usize,
    pub drives_unknown: usize,
    /// Drives of nodes that are not up: their last known health is not current.
    pub drives_not_current: usize,
    /// Up nodes that have reported checks / pinning (so "none failing" means something).
    pub checks_reported: usize,
    pub pinning_reported: usize,
    /// Blocked probes and all probes, of the nodes that are up.
    pub probes_blocked: u64,
    pub probes_total: u64,
    pub conflicts: usize,
}

/// What a problem is about, in the order the problems list ranks them within a severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Node,
    Cluster,
    Check,
    Drive,
    Ports,
    Cores,
    Collector,
    Stale,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Node => "node",
            ProblemKind::Cluster => "cluster",
            ProblemKind::Check => "check",
            ProblemKind::Drive => "drive",
            ProblemKind::Ports => "ports",
            ProblemKind::Cores => "cores",
            ProblemKind::Collector => "collector",
            ProblemKind::Stale => "stale",
        }
    }
}

/// Which facts of a node a problem concerns (where a person would look next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    /// The node's status, collectors and checks.
    Status,
    /// CPUs, topology and pinning.
    Cores,
    /// NICs and port probes.
    Network,
}

/// The thing a problem is about, so a view can lead to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Several nodes (those still connecting).
    Nodes,
    Node {
        node: usize,
        facet: Facet,
    },
    Drive {
        node: usize,
        drive: String,
    },
    /// A node check, with the first node it fails or warns on.
    Check {
        node: usize,
        check: String,
    },
    ClusterCheck(String),
    /// The data plane's protection (the Stripes panel).
    DataPlane,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    /// The node it is about, if one.
    pub node: Option<usize>,
    pub kind: ProblemKind,
    pub text: String,
    pub subject: Subject,
}

/// A node that is not up, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUp {
    pub node: usize,
    pub status: NodeStatus,
    /// The last failure's message, or what is missing ("no data for 12s", "no answer
    /// yet").
    pub reason: String,
    pub failure: Option<FailureKind>,
    /// Age of the node's last data at `now_ms`; None if it never sent any.
    pub last_data_age_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Health {
    pub now_ms: i64,
    /// Each node's status at `now_ms`, in view order.
    pub status: Vec<NodeStatus>,
    /// The nodes that are not up, in view order.
    pub not_up: Vec<NotUp>,
    pub counts: Counts,
    pub cluster_checks: Vec<CheckResult>,
    /// Every problem, worst first (then by kind, then by node).
    pub problems: Vec<Problem>,
    pub verdict: Verdict,
}

impl Health {
    pub fn compute(view: &ClusterView, now_ms: i64) -> Health {
        let t = &view.thresholds;
        let status: Vec<NodeStatus> = view.nodes.iter().map(|n| n.status(now_ms, t)).collect();
        let cluster_checks = cluster_checks::evaluate(view, now_ms);
        let counts = count(view, &status, &cluster_checks);
        let problems = problems(view, &status, &cluster_checks, now_ms);
        let not_up = not_up(view, &status, now_ms);
        let verdict = Verdict::judge(&counts, &problems);
        Health {
            now_ms,
            status,
            not_up,
            counts,
            cluster_checks,
            problems,
            verdict,
        }
    }
}

fn not_up(view: &ClusterView, status: &[NodeStatus], now: i64) -> Vec<NotUp> {
    view.nodes
        .iter()
        .zip(status)
        .enumerate()
        .filter(|(_, (_, s))| **s != NodeStatus::Up)
        .map(|(i, (n, &s))| {
            let age = n.received_ms.map(|r| now.saturating_sub(r).max(0));
            let silent = format!("no data for {}", fmt_age(age));
            let reason = match (s, &n.failure) {
                (NodeStatus::Connecting, _) => "no answer yet".to_string(),
                (NodeStatus::Stale, Some(f)) => format!("{silent}: {}", f.message),
                (_, Some(f)) => f.message.clone(),
                (_, None) if age.is_none() => "no data".to_string(),
                (_, None) => silent,
            };
            NotUp {
                node: i,
                status: s,
                reason,
                failure: n.failure.as_ref().map(|f| f.kind),
                last_data_age_ms: age,
            }
        })
        .collect()
}

fn count(view: &ClusterView, status: &[NodeStatus], cluster: &[CheckResult]) -> Counts {
    let mut c = Counts::default();
    for r in cluster {
        match r.status {
            CheckStatus::Fail => c.checks_failing_cluster += 1,
            CheckStatus::Warn => c.checks_warning += 1,
            _ => {}
        }
    }
    for (i, n) in view.nodes.iter().enumerate() {
        match status[i] {
            NodeStatus::Up => c.up += 1,
            NodeStatus::Stale => c.stale += 1,
            NodeStatus::Down => c.down += 1,
            NodeStatus::Connecting => c.connecting += 1,
        }
        let Some(s) = &n.snapshot else { continue };
        if s.node.emulated_profile.is_some() {
            c.emulated += 1;
        }
        let f = n.digest.checks_fail as usize;
        c.checks_failing += f;
        c.checks_failing_nodes += usize::from(f > 0);
        c.checks_warning += n.digest.checks_warn as usize;
        let fresh = status[i] == NodeStatus::Up;
        c.checks_reported += usize::from(fresh && s.checks.is_some());
        c.pinning_reported += usize::from(fresh && s.pinning.is_some());
        for h in &n.digest.drives {
            if !fresh {
                // Last known health of a node that is not up is not current.
                c.drives_not_current += 1;
                continue;
            }
            match h.level {
                HealthLevel::Ok => c.drives_ok += 1,
                HealthLevel::Warning => c.drives_warning += 1,
                HealthLevel::Critical => c.drives_critical += 1,
                HealthLevel::Unknown => c.drives_unknown += 1,
            }
        }
        // Probes of a node that is not up are not current: "all pass" must not rest on
        // them (its blocked probes stay listed among the problems).
        if let Some(p) = s.probes.as_ref().filter(|_| fresh) {
            c.probes_blocked += u64::from(p.blocked_total);
            c.probes_total += u64::from(p.probes_total);
        }
        c.conflicts += n.digest.conflicts.len();
    }
    c
}

/// A failing check across nodes: worst status, node names, first node index.
type CheckAgg<'a> = (CheckStatus, Vec<&'a str>, usize);

fn problems(
    view: &ClusterView,
    status: &[NodeStatus],
    cluster: &[CheckResult],
    now: i64,
) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    let node_problem = |severity, i: usize, kind, facet, text| Problem {
        severity,
        node: Some(i),
        kind,
        text,
        subject: Subject::Node { node: i, facet },
    };
    let connecting: Vec<&str> = view
        .nodes
        .iter()
        .zip(status)
        .filter(|(_, s)| **s == NodeStatus::Connecting)
        .map(|(n, _)| n.name.as_str())
        .collect();
    if !connecting.is_empty() {
        out.push(Problem {
            severity: Severity::Info,
            node: None,
            kind: ProblemKind::Node,
            text: format!(
                "{} node(s) connecting, no data yet: {}",
                connecting.len(),
                hostlist::compress(&connecting)
            ),
            subject: Subject::Nodes,
        });
    }
    for (i, n) in view.nodes.iter().enumerate() {
        match status[i] {
            NodeStatus::Down => out.push(node_problem(
                Severity::Critical,
                i,
                ProblemKind::Node,
                Facet::Status,
                format!(
                    "{} DOWN: {} ({})",
                    n.name,
                    n.failure
                        .as_ref()
                        .map(|f| f.message.as_str())
                        .unwrap_or("no data"),
                    n.received_ms
                        .map(|r| format!("last data {} ago", fmt_age(Some(now.saturating_sub(r)))))
                        .unwrap_or_else(|| "no data received yet".into())
                ),
            )),
            NodeStatus::Stale => out.push(node_problem(
                Severity::Warning,
                i,
                ProblemKind::Node,
                Facet::Status,
                format!(
                    "{} STALE: last data {} ago{}",
                    n.name,
                    fmt_age(n.received_ms.map(|r| now.saturating_sub(r))),
                    n.failure
                        .as_ref()
                        .map(|f| format!(" — {}", f.message))
                        .unwrap_or_default()
                ),
            )),
            _ => {}
        }
        let Some(s) = &n.snapshot else { continue };
        if status[i] == NodeStatus::Up {
            for c in &s.collectors {
                if !c.ok && c.last_run_ms > 0 {
                    out.push(node_problem(
                        Severity::Warning,
                        i,
                        ProblemKind::Collector,
                        Facet::Status,
                        format!(
                            "{} collector {}: {}",
                            n.name,
                            c.section.as_str(),
                            c.error.as_deref().unwrap_or("failed")
                        ),
                    ));
                }
            }
            for sec in [
                Section::Topology,
                Section::Pinning,
                Section::Nvme,
                Section::Checks,
            ] {
                if s.collector(sec)
                    .is_some_and(|c| c.last_success_ms.is_some())
                    && n.section_stale(sec, now)
                {
                    out.push(node_problem(
                        Severity::Warning,
                        i,
                        ProblemKind::Stale,
                        Facet::Status,
                        format!(
                            "{} {} data is {} old",
                            n.name,
                            sec.as_str(),
                            fmt_age(n.section_age_ms(sec, now))
                        ),
                    ));
                }
            }
        }
        if let Some(t) = s.topology.as_ref().filter(|t| !t.unreadable.is_empty()) {
            let u = &t.unreadable;
            let all = u.siblings.union(&u.core_id).union(&u.package_id);
            out.push(node_problem(
                Severity::Warning,
                i,
                ProblemKind::Collector,
                Facet::Cores,
                format!(
                    "{} topology files unreadable for cpu {}: SMT and socket checks are unknown",
                    n.name,
                    all.to_list_string()
                ),
            ));
        }
        if let Some(net) = s.network.as_ref().filter(|x| !x.unreadable_nics.is_empty()) {
            out.push(node_problem(
                Severity::Warning,
                i,
                ProblemKind::Collector,
                Facet::Network,
                format!(
                    "{} NIC type unreadable for {}: left out, dataplane NIC checks cannot pass",
                    n.name,
                    net.unreadable_nics.join(", ")
                ),
            ));
        }
        for (d, h) in s.nvme.iter().flatten().zip(&n.digest.drives) {
            if h.level >= HealthLevel::Warning {
                out.push(Problem {
                    severity: if h.level == HealthLevel::Critical {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    node: Some(i),
                    kind: ProblemKind::Drive,
                    text: format!(
                        "{} {} {} ({}): {}",
                        n.name,
                        d.name,
                        d.model,
                        d.serial,
                        h.reasons.join(", ")
                    ),
                    subject: Subject::Drive {
                        node: i,
                        drive: d.name.to_string(),
                    },
                });
            }
        }
        let conflicts = &n.digest.conflicts;
        if let Some(first) = conflicts.first() {
            out.push(node_problem(
                Severity::Warning,
                i,
                ProblemKind::Cores,
                Facet::Cores,
                format!(
                    "{} {}{}",
                    n.name,
                    first,
                    if conflicts.len() > 1 {
                        format!(" (+{} more)", conflicts.len() - 1)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        if let Some(p) = s.probes.as_ref().filter(|p| p.blocked_total > 0) {
            let mut peers: Vec<&str> = p.blocked().map(|r| r.peer.as_str()).collect();
            peers.sort();
            peers.dedup();
            let first = p
                .blocked()
                .next()
                .map(|r| {
                    format!(
                        ", e.g. {}:{}/{} {}",
                        r.peer,
                        r.port,
                        r.proto.as_str(),
                        r.state.as_str()
                    )
                })
                .unwrap_or_default();
            out.push(node_problem(
                Severity::Critical,
                i,
                ProblemKind::Ports,
                Facet::Network,
                format!(
                    "{} → {} blocked probe(s) to {} peer(s){first}",
                    n.name,
                    p.blocked_total,
                    peers.len()
                ),
            ));
        }
    }
    // Failing checks, one line per check with the nodes it fails on.
    let mut by_check: HashMap<&str, CheckAgg> = HashMap::new();
    for (i, n) in view.nodes.iter().enumerate() {
        for r in n
            .snapshot
            .as_ref()
            .and_then(|s| s.checks.as_ref())
            .into_iter()
            .flatten()
        {
            if matches!(r.status, CheckStatus::Fail | CheckStatus::Warn) {
                let e = by_check
                    .entry(r.id.as_str())
                    .or_insert((r.status, Vec::new(), i));
                e.0 = e.0.max(r.status);
                e.1.push(n.name.as_str());
            }
        }
    }
    let mut check_lines: Vec<(&str, CheckAgg)> = by_check.into_iter().collect();
    check_lines.sort_by_key(|(id, _)| {
        checks::CATALOG
            .iter()
            .position(|c| c.id == *id)
            .unwrap_or(usize::MAX)
    });
    let severity_of = |s: CheckStatus| {
        if s == CheckStatus::Fail {
            Severity::Critical
        } else {
            Severity::Warning
        }
    };
    for (id, (st, nodes, first)) in check_lines {
        out.push(Problem {
            severity: severity_of(st),
            node: None,
            kind: ProblemKind::Check,
            text: format!(
                "{id} {} on {}: {}",
                st.as_str(),
                if nodes.len() == 1 {
                    "1 node".into()
                } else {
                    format!("{} nodes", nodes.len())
                },
                hostlist::compress(&nodes)
            ),
            subject: Subject::Check {
                node: first,
                check: id.to_string(),
            },
        });
    }
    for c in cluster {
        if matches!(c.status, CheckStatus::Fail | CheckStatus::Warn) {
            out.push(Problem {
                severity: severity_of(c.status),
                node: None,
                kind: ProblemKind::Cluster,
                text: format!("{} {}: {}", c.id, c.status.as_str(), c.observed),
                subject: Subject::ClusterCheck(c.id.to_string()),
            });
        }
    }
    // Data-plane drives the cluster holds FAILED: their chunks are rebuilt from parity,
    // but the drive waits for its operator.
    if let Some(config) = &view.dp_config {
        for (id, d) in config.drives.iter().filter(|(_, d)| d.state == "FAILED") {
            let member = config
                .members
                .get(&d.node)
                .map_or_else(|| format!("node {}", d.node), |m| m.name.clone());
            let node = view.nodes.iter().position(|n| n.name == member);
            out.push(Problem {
                severity: Severity::Warning,
                node,
                kind: ProblemKind::Drive,
                text: format!(
                    "{member}: data-plane drive {} FAILED — its chunks are rebuilt from parity; once `cluster status` shows none lost, replace it: axon drive remove {}, then axon drive add {member} PATH",
                    d.path,
                    id.get(..8).unwrap_or(id)
                ),
                subject: node.map_or(Subject::Nodes, |node| Subject::Drive {
                    node,
                    drive: d.path.clone(),
                }),
            });
        }
    }
    if let Some(p) = protection_problem(view, now) {
        out.push(p);
    }
    // Stable: problems alike in all three keep the order they were found in.
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then(a.node.cmp(&b.node))
    });
    out
}

/// The data plane's protection as a problem when stripes have lost chunks, from the
/// members' fresh reports: UNAVAILABLE (objects cannot be read) and UNPROTECTED (one more
/// failure loses data) are critical; REBUILDING and PARTIALLY_PROTECTED warn.
fn protection_problem(view: &ClusterView, now: i64) -> Option<Problem> {
    let dp = view.dataplane(now)?;
    let d = dp.data.as_ref()?;
    let m = dp.config.m;
    let at = |from: usize| -> u64 { d.stripes_by_lost.iter().skip(from).sum() };
    let damaged = at(1);
    let (severity, why) = match d.protection.as_str() {
        "UNAVAILABLE" => (
            Severity::Critical,
            format!(
                "{} stripe(s) lost more than m = {m} chunks: their objects cannot be read until enough of the members away come back",
                at(m + 1)
            ),
        ),
        "UNPROTECTED" => (
            Severity::Critical,
            format!(
                "{} stripe(s) lost m = {m} chunks: one more failure loses data{}",
                at(m),
                if d.rebuild.active { "; rebuilding" } else { "" }
            ),
        ),
        "REBUILDING" => (
            Severity::Warning,
            format!("{damaged} stripe(s) with chunks lost, being rebuilt"),
        ),
        "PARTIALLY_PROTECTED" => (
            Severity::Warning,
            format!(
                "{damaged} stripe(s) with chunks lost{}",
                if d.repair_paused || dp.config.io != crate::model::cluster::IoStatus::Started {
                    " — not rebuilt while IO is stopped (axon start-io)"
                } else {
                    ""
                }
            ),
        ),
        _ => return None,
    };
    Some(Problem {
        severity,
        node: None,
        kind: ProblemKind::Cluster,
        text: format!("data plane {}: {why} (axon cluster status)", d.protection),
        subject: Subject::DataPlane,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::view::{Failure, NodeView, Thresholds};
    use crate::model::nvme::DriveHealth;
    use crate::model::probes::ProbeReport;
    use crate::model::snapshot::NodeSnapshot;

    const NOW: i64 = 1_800_000_000_000;

    /// A node that answered 400 ms ago with nothing to complain about.
    fn up(name: &str) -> NodeView {
        let mut n = NodeView::new(name.into(), format!("{name}:14000"));
        n.set_snapshot(Some(NodeSnapshot::default()));
        n.received_ms = Some(NOW - 400);
        n
    }

    fn refused(mut n: NodeView) -> NodeView {
        n.failure = Some(Failure {
            kind: FailureKind::Connection,
            message: format!("{}: transport error: connection refused", n.endpoint),
            at_ms: NOW - 100,
        });
        n
    }

    fn check(id: &str, status: CheckStatus) -> CheckResult {
        CheckResult {
            id: id.into(),
            status,
            observed: "observed".into(),
            expected: "expected".into(),
            remedy: "remedy".into(),
        }
    }

    fn with_checks(mut n: NodeView, r: Vec<CheckResult>) -> NodeView {
        let mut s = n.snapshot.take().unwrap_or_default();
        s.checks = Some(r);
        n.set_snapshot(Some(s));
        n
    }

    fn verdict(nodes: Vec<NodeView>) -> Verdict {
        let v = ClusterView::new(nodes, Thresholds::for_interval(1000));
        Health::compute(&v, NOW).verdict
    }

    #[test]
    fn verdict_is_healthy_when_every_node_is_up_and_nothing_is_wrong() {
        assert_eq!(
            verdict(vec![up("a1"), up("a2"), up("a3")]),
            Verdict::Healthy
        );
        assert_eq!(Verdict::Healthy.exit_code(), 0);
    }

    #[test]
    fn verdict_is_unreachable_when_no_node_is_up() {
        let all_down = vec![refused(up("a1")), refused(up("a2"))];
        assert_eq!(verdict(all_down), Verdict::Unreachable);
        let never = vec![
            NodeView::new("a1".into(), "a1:1".into()),
            refused(NodeView::new("a2".into(), "a2:1".into())),
        ];
        assert_eq!(verdict(never), Verdict::Unreachable, "connecting and down");
        let mut stale = up("a1");
        stale.received_ms = Some(NOW - 5_000);
        assert_eq!(
            verdict(vec![stale, refused(up("a2"))]),
            Verdict::Unreachable,
            "stale data is not current"
        );
        assert_eq!(Verdict::Unreachable.exit_code(), 3);
    }

    #[test]
    fn verdict_is_critical_when_a_node_is_down_a_check_fails_a_drive_is_critical_or_a_probe_is_blocked()
     {
        assert_eq!(
            verdict(vec![up("a1"), refused(up("a2"))]),
            Verdict::Critical
        );
        let failing = with_checks(up("a2"), vec![check("swap.off", CheckStatus::Fail)]);
        assert_eq!(verdict(vec![up("a1"), failing]), Verdict::Critical);
        let mut drive = up("a2");
        let s = drive.snapshot.as_mut().unwrap();
        s.nvme = Some(vec![crate::model::NvmeController {
            name: "nvme0".into(),
            model: "m".into(),
            serial: "s".into(),
            firmware: "f".into(),
            transport: "pcie".into(),
            address: "0000:01:00.0".into(),
            slot: None,
            numa_node: Some(0),
            state: "live".into(),
            namespaces: vec![],
            smart: None,
            smart_error: None,
        }]);
        drive.digest.drives = vec![DriveHealth {
            level: HealthLevel::Critical,
            reasons: vec!["media errors".into()],
        }];
        assert_eq!(verdict(vec![up("a1"), drive]), Verdict::Critical);
        let mut blocked = up("a2");
        blocked.snapshot.as_mut().unwrap().probes = Some(ProbeReport {
            probes_total: 30,
            blocked_total: 1,
            ..Default::default()
        });
        assert_eq!(verdict(vec![up("a1"), blocked]), Verdict::Critical);
        assert_eq!(Verdict::Critical.exit_code(), 2);
    }

    #[test]
    fn verdict_is_warnings_for_stale_or_silent_nodes_warning_checks_and_drives() {
        let mut stale = up("a2");
        stale.received_ms = Some(NOW - 5_000);
        assert_eq!(verdict(vec![up("a1"), stale]), Verdict::Warnings);
        let silent = NodeView::new("a2".into(), "a2:1".into());
        assert_eq!(
            verdict(vec![up("a1"), silent]),
            Verdict::Warnings,
            "a node not heard from yet: its health is unknown"
        );
        let warn = with_checks(up("a2"), vec![check("ntp.sync", CheckStatus::Warn)]);
        assert_eq!(verdict(vec![up("a1"), warn]), Verdict::Warnings);
        let unknown = with_checks(up("a2"), vec![check("ntp.sync", CheckStatus::Unknown)]);
        assert_eq!(
            verdict(vec![up("a1"), unknown]),
            Verdict::Healthy,
            "an unknown check is not a problem of the cluster"
        );
        let mut conflict = up("a2");
        conflict.digest.conflicts = vec![crate::model::pinning::Conflict::SiblingsBothAxon {
            cpu: 2,
            sibling: 66,
        }];
        assert_eq!(verdict(vec![up("a1"), conflict]), Verdict::Warnings);
        assert_eq!(Verdict::Warnings.exit_code(), 1);
    }

    #[test]
    fn the_worst_problem_decides_and_comes_first() {
        let warn = with_checks(up("a1"), vec![check("ntp.sync", CheckStatus::Warn)]);
        let v = ClusterView::new(
            vec![warn, refused(up("a2"))],
            Thresholds::for_interval(1000),
        );
        let h = Health::compute(&v, NOW);
        assert_eq!(h.verdict, Verdict::Critical);
        assert_eq!(h.problems[0].severity, Severity::Critical);
        assert_eq!(h.problems[0].kind, ProblemKind::Node);
        assert!(h.problems[0].text.starts_with("a2 DOWN: "));
        assert_eq!(h.problems.last().unwrap().kind, ProblemKind::Check);
    }

    #[test]
    fn nodes_not_up_carry_their_reason() {
        let mut stale = up("a3");
        stale.received_ms = Some(NOW - 5_000);
        let v = ClusterView::new(
            vec![
                up("a1"),
                refused(up("a2")),
                stale,
                NodeView::new("a4".into(), "a4:1".into()),
            ],
            Thresholds::for_interval(1000),
        );
        let h = Health::compute(&v, NOW);
        let c = &h.counts;
        assert_eq!((c.up, c.down, c.stale, c.connecting), (1, 1, 1, 1));
        let r: Vec<(usize, NodeStatus, &str)> = h
            .not_up
            .iter()
            .map(|n| (n.node, n.status, n.reason.as_str()))
            .collect();
        assert_eq!(
            r,
            vec![
                (
                    1,
                    NodeStatus::Down,
                    "a2:14000: transport error: connection refused"
                ),
                (2, NodeStatus::Stale, "no data for 5s"),
                (3, NodeStatus::Connecting, "no answer yet"),
            ]
        );
        assert_eq!(h.not_up[0].failure, Some(FailureKind::Connection));
        assert_eq!(h.not_up[1].last_data_age_ms, Some(5_000));
        assert_eq!(h.not_up[2].last_data_age_ms, None);
    }
}

//! Conversions between the model and the protobuf messages. Encoding cannot fail; decoding
//! checks what the model relies on (CPU lists parse, enums are known) and says which field
//! of which message was wrong, so a malformed or hostile agent answer is an error, not a
//! panic or silently wrong data.

use super::pb;
use crate::model::checks::{CheckResult, CheckStatus};
use crate::model::cpuset::CpuSet;
use crate::model::net::{
    AddressFamily, DataplaneSelection, IpAddress, IpConf, Network, Nic, NicKind, Route,
    RoutingRule, SbrRule,
};
use crate::model::nvme::{CriticalWarning, NvmeController, NvmeNamespace, SmartLog, WriteCache};
use crate::model::pinning::{ContainerRole, CpuUse, Owner, Pinning, ProcRef};
use crate::model::probes::{PeerSummary, ProbeReport, ProbeResult, ProbeState, Proto};
use crate::model::snapshot::{CollectorStatus, HostFacts, NodeInfo, NodeSnapshot, Section};
use crate::model::topology::{
    Cpu, HugePagePool, Memory, MemoryUsage, NumaNode, NumaUsage, Package, Smt, Topology,
    UnreadableCpus,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {message}.{field}: {problem}")]
pub struct WireError {
    pub message: &'static str,
    pub field: &'static str,
    pub problem: String,
}

pub(super) fn bad(
    message: &'static str,
    field: &'static str,
    problem: impl Into<String>,
) -> WireError {
    WireError {
        message,
        field,
        problem: problem.into(),
    }
}

/// Converts every element of a decoded list into a Vec of exactly its length. A plain
/// `into_iter().map(..).collect()` reuses the source list's allocation (in-place
/// collection), and so keeps the spare capacity prost grew it with while decoding, up to
/// as much again as the list: a console holds 1,000 snapshots for as long as it runs.
fn exact<S, T>(v: Vec<S>, f: impl FnMut(S) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    out.extend(v.into_iter().map(f));
    out
}

/// [`exact`] for a conversion that can fail.
fn try_exact<S, T>(
    v: Vec<S>,
    mut f: impl FnMut(S) -> Result<T, WireError>,
) -> Result<Vec<T>, WireError> {
    let mut out = Vec::with_capacity(v.len());
    for x in v {
        out.push(f(x)?);
    }
    Ok(out)
}

/// A decoded list kept as it is, without the spare capacity prost grew it with.
fn trimmed<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

fn none_if_empty<T: From<String>>(s: String) -> Option<T> {
    if s.is_empty() { None } else { Some(s.into()) }
}

fn opt_i32(v: i32) -> Option<i32> {
    if v < 0 { None } else { Some(v) }
}

fn tristate(v: Option<bool>) -> i32 {
    match v {
        None => pb::Tristate::Unspecified as i32,
        Some(true) => pb::Tristate::True as i32,
        Some(false) => pb::Tristate::False as i32,
    }
}

fn from_tristate(v: i32) -> Option<bool> {
    match pb::Tristate::try_from(v) {
        Ok(pb::Tristate::True) => Some(true),
        Ok(pb::Tristate::False) => Some(false),
        _ => None,
    }
}

fn cpus(message: &'static str, field: &'static str, s: &str) -> Result<CpuSet, WireError> {
    CpuSet::parse_list(s).map_err(|e| bad(message, field, e.to_string()))
}

// ---------------------------------------------------------------- snapshot

impl From<&NodeInfo> for pb::NodeInfo {
    fn from(n: &NodeInfo) -> Self {
        pb::NodeInfo {
            hostname: n.hostname.clone(),
            agent_version: n.agent_version.clone(),
            agent_started_ms: n.agent_started_ms,
            emulated_profile: n.emulated_profile.clone().unwrap_or_default(),
            collect_interval_ms: n.collect_interval_ms,
        }
    }
}

impl From<pb::NodeInfo> for NodeInfo {
    fn from(n: pb::NodeInfo) -> Self {
        NodeInfo {
            hostname: n.hostname,
            agent_version: n.agent_version,
            agent_started_ms: n.agent_started_ms,
            emulated_profile: none_if_empty(n.emulated_profile),
            collect_interval_ms: n.collect_interval_ms,
        }
    }
}

impl From<&CollectorStatus> for pb::CollectorStatus {
    fn from(c: &CollectorStatus) -> Self {
        pb::CollectorStatus {
            section: c.section.as_str().to_string(),
            ok: c.ok,
            error: c.error.clone().unwrap_or_default(),
            last_run_ms: c.last_run_ms,
            last_success_ms: c.last_success_ms.unwrap_or(0),
            duration_us: c.duration_us,
            interval_ms: c.interval_ms,
            deadline_ms: c.deadline_ms,
            problems: c.problems,
        }
    }
}

impl TryFrom<pb::CollectorStatus> for CollectorStatus {
    type Error = WireError;
    fn try_from(c: pb::CollectorStatus) -> Result<Self, WireError> {
        let section = Section::parse(&c.section).ok_or_else(|| {
            bad(
                "CollectorStatus",
                "section",
                format!("unknown section `{}`", c.section),
            )
        })?;
        Ok(CollectorStatus {
            section,
            ok: c.ok,
            error: none_if_empty(c.error),
            last_run_ms: c.last_run_ms,
            last_success_ms: (c.last_success_ms > 0).then_some(c.last_success_ms),
            duration_us: c.duration_us,
            interval_ms: c.interval_ms,
            deadline_ms: c.deadline_ms,
            problems: c.problems,
        })
    }
}

/// Encodes a snapshot. `sections` selects which data sections to include (the collector
/// statuses are always included); `full` tells the receiver whether absence means
/// "unchanged".
pub fn encode_snapshot(s: &NodeSnapshot, sections: &[Section], full: bool) -> pb::NodeSnapshot {
    let want = |sec: Section| sections.contains(&sec);
    pb::NodeSnapshot {
        node: Some((&s.node).into()),
        taken_ms: s.taken_ms,
        full,
        collectors: s.collectors.iter().map(Into::into).collect(),
        topology: s
            .topology
            .as_ref()
            .filter(|_| want(Section::Topology))
            .map(Into::into),
        pinning: s
            .pinning
            .as_ref()
            .filter(|_| want(Section::Pinning))
            .map(Into::into),
        network: s
            .network
            .as_ref()
            .filter(|_| want(Section::Network))
            .map(Into::into),
        nvme: s
            .nvme
            .as_ref()
            .filter(|_| want(Section::Nvme))
            .map(|c| pb::NvmeInventory {
                controllers: c.iter().map(Into::into).collect(),
            }),
        host: s
            .host
            .as_ref()
            .filter(|_| want(Section::Checks))
            .map(Into::into),
        checks: s
            .checks
            .as_ref()
            .filter(|_| want(Section::Checks))
            .map(|r| pb::CheckList {
                results: r.iter().map(Into::into).collect(),
            }),
        probes: s
            .probes
            .as_ref()
            .filter(|_| want(Section::Probes))
            .map(Into::into),
        memory: None,
        dataplane: want(Section::Dataplane)
            .then(|| super::dataplane::encode_node_dataplane(s.dataplane.as_ref())),
    }
}

pub fn encode_memory(u: &MemoryUsage) -> pb::MemoryUsage {
    pb::MemoryUsage {
        available_bytes: u.available_bytes,
        swap_free_bytes: u.swap_free_bytes,
        hugepages_free: u.hugepages_free,
        numa: u
            .numa
            .iter()
            .map(|n| pb::NumaUsage {
                id: n.id,
                memory_free_bytes: n.memory_free_bytes,
                hugepages_free: n.hugepages_free.clone(),
                hugepages_surplus: n.hugepages_surplus.clone(),
            })
            .collect(),
    }
}

fn decode_memory(m: pb::MemoryUsage) -> MemoryUsage {
    MemoryUsage {
        available_bytes: m.available_bytes,
        swap_free_bytes: m.swap_free_bytes,
        hugepages_free: m.hugepages_free,
        numa: m
            .numa
            .into_iter()
            .map(|n| NumaUsage {
                id: n.id,
                memory_free_bytes: n.memory_free_bytes,
                hugepages_free: n.hugepages_free,
                hugepages_surplus: n.hugepages_surplus,
            })
            .collect(),
    }
}

/// A decoded snapshot message: the sections it carried, whether it was full, and a memory
/// usage update for the held topology when only that changed.
#[derive(Debug, Clone)]
pub struct DecodedSnapshot {
    pub snapshot: NodeSnapshot,
    pub full: bool,
    pub memory: Option<MemoryUsage>,
    /// `snapshot.pinning` holds only the CPUs that changed (a Watch delta).
    pub pinning_changes_only: bool,
    /// `snapshot.probes` holds only the peers probed since the last message (a Watch delta).
    pub probes_changes_only: bool,
    /// The message carried the data-plane section: `snapshot.dataplane` replaces what the
    /// receiver holds, None included (the node has no data plane any more).
    pub dataplane_carried: bool,
}

pub fn decode_snapshot(m: pb::NodeSnapshot) -> Result<DecodedSnapshot, WireError> {
    let node = m
        .node
        .ok_or_else(|| bad("NodeSnapshot", "node", "missing"))?
        .into();
    let collectors = try_exact(m.collectors, CollectorStatus::try_from)?;
    let pinning_changes_only = !m.full && m.pinning.as_ref().is_some_and(|p| p.changed_cpus_only);
    let probes_changes_only = !m.full && m.probes.as_ref().is_some_and(|p| p.changed_peers_only);
    let dataplane_carried = m.dataplane.is_some();
    let dataplane = m
        .dataplane
        .map(super::dataplane::decode_node_dataplane)
        .transpose()?
        .flatten();
    Ok(DecodedSnapshot {
        dataplane_carried,
        full: m.full,
        memory: m.memory.map(decode_memory),
        pinning_changes_only,
        probes_changes_only,
        snapshot: NodeSnapshot {
            node,
            taken_ms: m.taken_ms,
            collectors,
            topology: m.topology.map(Topology::try_from).transpose()?,
            pinning: m.pinning.map(Pinning::try_from).transpose()?,
            network: m.network.map(Network::try_from).transpose()?,
            nvme: m
                .nvme
                .map(|inv| try_exact(inv.controllers, NvmeController::try_from))
                .transpose()?,
            host: m.host.map(HostFacts::from),
            checks: m
                .checks
                .map(|c| try_exact(c.results, CheckResult::try_from))
                .transpose()?,
            probes: m.probes.map(ProbeReport::try_from).transpose()?,
            dataplane,
        },
    })
}

/// Applies a decoded Watch message to the snapshot the receiver holds: a full message
/// replaces it, a delta replaces only the sections it carries.
pub fn merge_snapshot(into: &mut NodeSnapshot, d: DecodedSnapshot) {
    let s = d.snapshot;
    if d.full {
        *into = s;
        return;
    }
    into.node = s.node;
    into.taken_ms = s.taken_ms;
    into.collectors = s.collectors;
    if s.topology.is_some() {
        into.topology = s.topology;
    } else if let (Some(t), Some(u)) = (into.topology.as_mut(), d.memory.as_ref()) {
        t.apply_usage(u);
    }
    match (s.pinning, into.pinning.as_mut()) {
        (Some(changes), Some(held)) if d.pinning_changes_only => {
            held.processes = changes.processes;
            held.threads = changes.threads;
            held.unpinned_threads = changes.unpinned_threads;
            held.skipped = changes.skipped;
            for c in changes.cpus {
                match held.cpus.iter().position(|x| x.cpu == c.cpu) {
                    Some(i) => held.cpus[i] = c,
                    None => held.cpus.push(c),
                }
            }
            // A CPU that came online grew the list: no spare room is kept for more.
            held.cpus.shrink_to_fit();
        }
        // Changes without the whole they change: nothing to apply them to.
        (Some(_), None) if d.pinning_changes_only => {}
        (Some(p), _) => into.pinning = Some(p),
        (None, _) => {}
    }
    if s.network.is_some() {
        into.network = s.network;
    }
    if s.nvme.is_some() {
        into.nvme = s.nvme;
    }
    if s.host.is_some() {
        into.host = s.host;
    }
    if s.checks.is_some() {
        into.checks = s.checks;
    }
    if d.dataplane_carried {
        into.dataplane = s.dataplane;
    }
    match (s.probes, into.probes.as_mut()) {
        (Some(changes), Some(held)) if d.probes_changes_only => held.apply_changes(changes),
        // Changes without the report they change: the next full one brings it.
        (Some(_), None) if d.probes_changes_only => {}
        (Some(p), _) => into.probes = Some(p),
        (None, _) => {}
    }
}

// ---------------------------------------------------------------- topology

impl From<&Topology> for pb::Topology {
    fn from(t: &Topology) -> Self {
        pb::Topology {
            cpu_vendor: t.cpu_vendor.clone(),
            cpu_model: t.cpu_model.clone(),
            packages: t
                .packages
                .iter()
                .map(|p| pb::Package {
                    id: p.id,
                    cpus: p.cpus.to_list_string(),
                })
                .collect(),
            numa_nodes: t
                .numa_nodes
                .iter()
                .map(|n| pb::NumaNode {
                    id: n.id,
                    cpus: n.cpus.to_list_string(),
                    cpus_unreadable: n.cpus_unreadable,
                    memory_total_bytes: n.memory_total_bytes,
                    memory_free_bytes: n.memory_free_bytes,
                    hugepages: n
                        .hugepages
                        .iter()
                        .map(|h| pb::HugePagePool {
                            page_size_bytes: h.page_size_bytes,
                            total: h.total,
                            free: h.free,
                            surplus: h.surplus,
                        })
                        .collect(),
                })
                .collect(),
            cpus: t
                .cpus
                .iter()
                .map(|c| pb::Cpu {
                    id: c.id,
                    core_id: c.core_id,
                    package_id: c.package_id,
                    numa_node: c.numa_node.map(|n| n as i32).unwrap_or(-1),
                    siblings: c.siblings.to_list_string(),
                    online: c.online,
                })
                .collect(),
            smt: Some(pb::Smt {
                active: tristate(t.smt.active),
                control: t.smt.control.clone().unwrap_or_default(),
            }),
            memory: Some(pb::Memory {
                total_bytes: t.memory.total_bytes,
                available_bytes: t.memory.available_bytes,
                swap_total_bytes: t.memory.swap_total_bytes,
                swap_free_bytes: t.memory.swap_free_bytes,
                hugepage_size_bytes: t.memory.hugepage_size_bytes,
                hugepages_total: t.memory.hugepages_total,
                hugepages_free: t.memory.hugepages_free,
            }),
            unreadable: (!t.unreadable.is_empty()).then(|| pb::UnreadableCpus {
                siblings: t.unreadable.siblings.to_list_string(),
                core_id: t.unreadable.core_id.to_list_string(),
                package_id: t.unreadable.package_id.to_list_string(),
            }),
        }
    }
}

impl TryFrom<pb::Topology> for Topology {
    type Error = WireError;
    fn try_from(t: pb::Topology) -> Result<Self, WireError> {
        let mut cpus_v = try_exact(t.cpus, |c| {
            Ok(Cpu {
                id: c.id,
                core_id: c.core_id,
                package_id: c.package_id,
                numa_node: u32::try_from(c.numa_node).ok(),
                siblings: cpus("Cpu", "siblings", &c.siblings)?,
                online: c.online,
            })
        })?;
        // Lookups binary-search by id; do not trust the sender's order.
        cpus_v.sort_by_key(|c| c.id);
        let smt = t.smt.unwrap_or_default();
        let mem = t.memory.unwrap_or_default();
        let unread = t.unreadable.unwrap_or_default();
        Ok(Topology {
            cpu_vendor: t.cpu_vendor,
            cpu_model: t.cpu_model,
            packages: try_exact(t.packages, |p| {
                Ok(Package {
                    id: p.id,
                    cpus: cpus("Package", "cpus", &p.cpus)?,
                })
            })?,
            numa_nodes: try_exact(t.numa_nodes, |n| {
                Ok(NumaNode {
                    id: n.id,
                    cpus: cpus("NumaNode", "cpus", &n.cpus)?,
                    cpus_unreadable: n.cpus_unreadable,
                    memory_total_bytes: n.memory_total_bytes,
                    memory_free_bytes: n.memory_free_bytes,
                    hugepages: exact(n.hugepages, |h| HugePagePool {
                        page_size_bytes: h.page_size_bytes,
                        total: h.total,
                        free: h.free,
                        surplus: h.surplus,
                    }),
                })
            })?,
            cpus: cpus_v,
            smt: Smt {
                active: from_tristate(smt.active),
                control: none_if_empty(smt.control),
            },
            memory: Memory {
                total_bytes: mem.total_bytes,
                available_bytes: mem.available_bytes,
                swap_total_bytes: mem.swap_total_bytes,
                swap_free_bytes: mem.swap_free_bytes,
                hugepage_size_bytes: mem.hugepage_size_bytes,
                hugepages_total: mem.hugepages_total,
                hugepages_free: mem.hugepages_free,
            },
            unreadable: UnreadableCpus {
                siblings: cpus("UnreadableCpus", "siblings", &unread.siblings)?,
                core_id: cpus("UnreadableCpus", "core_id", &unread.core_id)?,
                package_id: cpus("UnreadableCpus", "package_id", &unread.package_id)?,
            },
        })
    }
}

// ---------------------------------------------------------------- pinning

impl From<&Owner> for pb::Owner {
    fn from(o: &Owner) -> Self {
        use pb::owner::Kind;
        match o {
            Owner::Axon { role } => pb::Owner {
                kind: Kind::Axon as i32,
                role: role_to_pb(*role) as i32,
                job_id: 0,
            },
            Owner::SlurmJob { job_id } => pb::Owner {
                kind: Kind::SlurmJob as i32,
                role: 0,
                job_id: *job_id,
            },
            Owner::Kernel => pb::Owner {
                kind: Kind::Kernel as i32,
                role: 0,
                job_id: 0,
            },
            Owner::System => pb::Owner {
                kind: Kind::System as i32,
                role: 0,
                job_id: 0,
            },
        }
    }
}

fn role_to_pb(r: ContainerRole) -> pb::ContainerRole {
    match r {
        ContainerRole::Drives => pb::ContainerRole::Drives,
        ContainerRole::Compute => pb::ContainerRole::Compute,
        ContainerRole::Frontend => pb::ContainerRole::Frontend,
    }
}

impl TryFrom<pb::Owner> for Owner {
    type Error = WireError;
    fn try_from(o: pb::Owner) -> Result<Self, WireError> {
        use pb::owner::Kind;
        match Kind::try_from(o.kind) {
            Ok(Kind::Axon) => {
                let role = match pb::ContainerRole::try_from(o.role) {
                    Ok(pb::ContainerRole::Drives) => ContainerRole::Drives,
                    Ok(pb::ContainerRole::Compute) => ContainerRole::Compute,
                    Ok(pb::ContainerRole::Frontend) => ContainerRole::Frontend,
                    _ => return Err(bad("Owner", "role", format!("unknown role {}", o.role))),
                };
                Ok(Owner::Axon { role })
            }
            Ok(Kind::SlurmJob) => Ok(Owner::SlurmJob { job_id: o.job_id }),
            Ok(Kind::Kernel) => Ok(Owner::Kernel),
            Ok(Kind::System) => Ok(Owner::System),
            _ => Err(bad("Owner", "kind", format!("unknown kind {}", o.kind))),
        }
    }
}

fn proc_ref_to_pb(p: &ProcRef) -> pb::ProcRef {
    pb::ProcRef {
        pid: p.pid,
        comm: p.comm.to_string(),
        owner: Some((&p.owner).into()),
        threads: p.threads,
        runnable: p.runnable,
    }
}

fn proc_ref_from_pb(p: pb::ProcRef) -> Result<ProcRef, WireError> {
    Ok(ProcRef {
        pid: p.pid,
        comm: p.comm.into(),
        owner: p
            .owner
            .ok_or_else(|| bad("ProcRef", "owner", "missing"))?
            .try_into()?,
        threads: p.threads,
        runnable: p.runnable,
    })
}

impl From<&Pinning> for pb::Pinning {
    fn from(p: &Pinning) -> Self {
        pb::Pinning {
            cpus: p.cpus.iter().map(cpu_use_to_pb).collect(),
            processes: p.processes,
            threads: p.threads,
            unpinned_threads: p.unpinned_threads,
            skipped: p.skipped,
            changed_cpus_only: false,
        }
    }
}

/// A Pinning that carries only the CPUs of `now` whose summary differs from `before`
/// (`changed_cpus_only`), or None when that would not be smaller than the whole: CPUs
/// appeared or went, or everything changed.
pub fn encode_pinning_changes(before: &Pinning, now: &Pinning) -> Option<pb::Pinning> {
    if before.cpus.len() != now.cpus.len() {
        return None;
    }
    let mut changed = Vec::new();
    for (b, n) in before.cpus.iter().zip(&now.cpus) {
        if b.cpu != n.cpu {
            return None;
        }
        if b != n {
            changed.push(n);
        }
    }
    if changed.len() == now.cpus.len() {
        return None;
    }
    let mut m = pb::Pinning::from(&now.clone_counts());
    m.cpus = changed.into_iter().map(cpu_use_to_pb).collect();
    m.changed_cpus_only = true;
    Some(m)
}

fn cpu_use_to_pb(c: &CpuUse) -> pb::CpuUse {
    pb::CpuUse {
        cpu: c.cpu,
        pinned: c.pinned.iter().map(proc_ref_to_pb).collect(),
        running: c.running.iter().map(proc_ref_to_pb).collect(),
        pinned_more: c.pinned_more,
        running_more: c.running_more,
        kernel_threads: c.kernel_threads,
    }
}

impl TryFrom<pb::Pinning> for Pinning {
    type Error = WireError;
    fn try_from(p: pb::Pinning) -> Result<Self, WireError> {
        Ok(Pinning {
            cpus: try_exact(p.cpus, |c| {
                Ok(CpuUse {
                    cpu: c.cpu,
                    pinned: try_exact(c.pinned, proc_ref_from_pb)?.into(),
                    running: try_exact(c.running, proc_ref_from_pb)?.into(),
                    pinned_more: c.pinned_more,
                    running_more: c.running_more,
                    kernel_threads: c.kernel_threads,
                })
            })?,
            processes: p.processes,
            threads: p.threads,
            unpinned_threads: p.unpinned_threads,
            skipped: p.skipped,
        })
    }
}

// ---------------------------------------------------------------- network

impl From<&IpConf> for pb::IpConf {
    fn from(c: &IpConf) -> Self {
        pb::IpConf {
            arp_filter: c.arp_filter.unwrap_or(-1),
            arp_announce: c.arp_announce.unwrap_or(-1),
            arp_ignore: c.arp_ignore.unwrap_or(-1),
            rp_filter: c.rp_filter.unwrap_or(-1),
        }
    }
}

impl From<pb::IpConf> for IpConf {
    fn from(c: pb::IpConf) -> Self {
        IpConf {
            arp_filter: opt_i32(c.arp_filter),
            arp_announce: opt_i32(c.arp_announce),
            arp_ignore: opt_i32(c.arp_ignore),
            rp_filter: opt_i32(c.rp_filter),
        }
    }
}

impl From<&Network> for pb::Network {
    fn from(n: &Network) -> Self {
        pb::Network {
            nics: n
                .nics
                .iter()
                .map(|nic| pb::Nic {
                    name: nic.name.to_string(),
                    kind: nic.kind.as_str().to_string(),
                    arphrd: nic.arphrd,
                    mtu: nic.mtu.unwrap_or(0),
                    speed_mbps: nic.speed_mbps.unwrap_or(0),
                    operstate: nic.operstate.to_string(),
                    numa_node: nic.numa_node.unwrap_or(-1),
                    driver: nic.driver.as_deref().unwrap_or_default().to_string(),
                    driver_version: nic
                        .driver_version
                        .as_deref()
                        .unwrap_or_default()
                        .to_string(),
                    mac: nic.mac.as_deref().unwrap_or_default().to_string(),
                    pci_address: nic.pci_address.as_deref().unwrap_or_default().to_string(),
                    physical: nic.physical,
                    dataplane: nic.dataplane,
                    addresses: nic
                        .addresses
                        .iter()
                        .map(|a| pb::IpAddress {
                            cidr: a.cidr.to_string(),
                            ipv6: a.family == AddressFamily::Ipv6,
                        })
                        .collect(),
                    ipconf: Some((&nic.ipconf).into()),
                    sbr: nic
                        .sbr
                        .iter()
                        .map(|r| pb::SbrRule {
                            priority: r.priority,
                            from: r.from.to_string(),
                            table: r.table,
                            table_routes_via_nic: r.table_routes_via_nic,
                        })
                        .collect(),
                })
                .collect(),
            all: Some((&n.all).into()),
            default: Some((&n.default).into()),
            rules: n
                .rules
                .iter()
                .map(|r| pb::RoutingRule {
                    priority: r.priority,
                    from: r.from.as_deref().unwrap_or_default().to_string(),
                    iif: r.iif.as_deref().unwrap_or_default().to_string(),
                    oif: r.oif.as_deref().unwrap_or_default().to_string(),
                    table: r.table,
                })
                .collect(),
            routes: n
                .routes
                .iter()
                .map(|r| pb::Route {
                    table: r.table,
                    dst: r.dst.to_string(),
                    dev: r.dev.as_deref().unwrap_or_default().to_string(),
                    gateway: r.gateway.as_deref().unwrap_or_default().to_string(),
                    src: r.src.as_deref().unwrap_or_default().to_string(),
                })
                .collect(),
            dataplane_configured: n.dataplane_selection == DataplaneSelection::Configured,
            routing_error: n.routing_error.clone().unwrap_or_default(),
            unreadable_nics: n.unreadable_nics.clone(),
        }
    }
}

impl TryFrom<pb::Network> for Network {
    type Error = WireError;
    fn try_from(n: pb::Network) -> Result<Self, WireError> {
        let nics = try_exact(n.nics, |nic| {
            let kind = match nic.kind.as_str() {
                "ethernet" => NicKind::Ethernet,
                "infiniband" => NicKind::Infiniband,
                "loopback" => NicKind::Loopback,
                "other" => NicKind::Other,
                k => return Err(bad("Nic", "kind", format!("unknown kind `{k}`"))),
            };
            Ok(Nic {
                name: nic.name.into(),
                kind,
                arphrd: nic.arphrd,
                mtu: (nic.mtu > 0).then_some(nic.mtu),
                speed_mbps: (nic.speed_mbps > 0).then_some(nic.speed_mbps),
                operstate: nic.operstate.into(),
                numa_node: opt_i32(nic.numa_node),
                driver: none_if_empty(nic.driver),
                driver_version: none_if_empty(nic.driver_version),
                mac: none_if_empty(nic.mac),
                pci_address: none_if_empty(nic.pci_address),
                physical: nic.physical,
                dataplane: nic.dataplane,
                addresses: exact(nic.addresses, |a| IpAddress {
                    cidr: a.cidr.into(),
                    family: if a.ipv6 {
                        AddressFamily::Ipv6
                    } else {
                        AddressFamily::Ipv4
                    },
                }),
                ipconf: nic.ipconf.map(Into::into).unwrap_or_default(),
                sbr: exact(nic.sbr, |r| SbrRule {
                    priority: r.priority,
                    from: r.from.into(),
                    table: r.table,
                    table_routes_via_nic: r.table_routes_via_nic,
                }),
            })
        })?;
        Ok(Network {
            nics,
            all: n.all.map(Into::into).unwrap_or_default(),
            default: n.default.map(Into::into).unwrap_or_default(),
            rules: exact(n.rules, |r| RoutingRule {
                priority: r.priority,
                from: none_if_empty(r.from),
                iif: none_if_empty(r.iif),
                oif: none_if_empty(r.oif),
                table: r.table,
            }),
            routes: exact(n.routes, |r| Route {
                table: r.table,
                dst: r.dst.into(),
                dev: none_if_empty(r.dev),
                gateway: none_if_empty(r.gateway),
                src: none_if_empty(r.src),
            }),
            dataplane_selection: if n.dataplane_configured {
                DataplaneSelection::Configured
            } else {
                DataplaneSelection::Auto
            },
            routing_error: none_if_empty(n.routing_error),
            unreadable_nics: trimmed(n.unreadable_nics),
        })
    }
}

// ---------------------------------------------------------------- nvme

impl From<&NvmeController> for pb::NvmeController {
    fn from(c: &NvmeController) -> Self {
        pb::NvmeController {
            name: c.name.to_string(),
            model: c.model.to_string(),
            serial: c.serial.to_string(),
            firmware: c.firmware.to_string(),
            transport: c.transport.to_string(),
            address: c.address.to_string(),
            slot: c.slot.as_deref().unwrap_or_default().to_string(),
            numa_node: c.numa_node.unwrap_or(-1),
            state: c.state.to_string(),
            namespaces: c
                .namespaces
                .iter()
                .map(|n| pb::NvmeNamespace {
                    name: n.name.to_string(),
                    nsid: n.nsid.unwrap_or(0),
                    size_bytes: n.size_bytes,
                    logical_block_size: n.logical_block_size.unwrap_or(0),
                    write_cache: match n.write_cache {
                        None => String::new(),
                        Some(WriteCache::WriteBack) => "write back".into(),
                        Some(WriteCache::WriteThrough) => "write through".into(),
                    },
                })
                .collect(),
            smart: c.smart.as_ref().map(|s| pb::SmartLog {
                critical_warning: u32::from(s.critical_warning.0),
                temperature_kelvin: u32::from(s.temperature_kelvin),
                available_spare_pct: u32::from(s.available_spare_pct),
                available_spare_threshold_pct: u32::from(s.available_spare_threshold_pct),
                percentage_used: u32::from(s.percentage_used),
                endurance_group_warning: u32::from(s.endurance_group_warning),
                data_read_bytes: s.data_read_bytes,
                data_written_bytes: s.data_written_bytes,
                host_read_commands: s.host_read_commands,
                host_write_commands: s.host_write_commands,
                controller_busy_seconds: s.controller_busy_seconds,
                power_cycles: s.power_cycles,
                power_on_seconds: s.power_on_seconds,
                unsafe_shutdowns: s.unsafe_shutdowns,
                media_errors: s.media_errors,
                error_log_entries: s.error_log_entries,
                warning_temperature_seconds: s.warning_temperature_seconds,
                critical_temperature_seconds: s.critical_temperature_seconds,
                sensors: s
                    .temperature_sensors_kelvin
                    .iter()
                    .map(|(n, k)| pb::TemperatureSensor {
                        sensor: u32::from(*n),
                        kelvin: u32::from(*k),
                    })
                    .collect(),
            }),
            smart_error: c.smart_error.clone().unwrap_or_default(),
        }
    }
}

fn narrow<T: TryFrom<u32>>(
    v: u32,
    message: &'static str,
    field: &'static str,
) -> Result<T, WireError> {
    T::try_from(v).map_err(|_| bad(message, field, format!("{v} out of range")))
}

impl TryFrom<pb::NvmeController> for NvmeController {
    type Error = WireError;
    fn try_from(c: pb::NvmeController) -> Result<Self, WireError> {
        let smart = match c.smart {
            None => None,
            Some(s) => Some(SmartLog {
                critical_warning: CriticalWarning(narrow(
                    s.critical_warning,
                    "SmartLog",
                    "critical_warning",
                )?),
                temperature_kelvin: narrow(s.temperature_kelvin, "SmartLog", "temperature_kelvin")?,
                available_spare_pct: narrow(
                    s.available_spare_pct,
                    "SmartLog",
                    "available_spare_pct",
                )?,
                available_spare_threshold_pct: narrow(
                    s.available_spare_threshold_pct,
                    "SmartLog",
                    "available_spare_threshold_pct",
                )?,
                percentage_used: narrow(s.percentage_used, "SmartLog", "percentage_used")?,
                endurance_group_warning: narrow(
                    s.endurance_group_warning,
                    "SmartLog",
                    "endurance_group_warning",
                )?,
                data_read_bytes: s.data_read_bytes,
                data_written_bytes: s.data_written_bytes,
                host_read_commands: s.host_read_commands,
                host_write_commands: s.host_write_commands,
                controller_busy_seconds: s.controller_busy_seconds,
                power_cycles: s.power_cycles,
                power_on_seconds: s.power_on_seconds,
                unsafe_shutdowns: s.unsafe_shutdowns,
                media_errors: s.media_errors,
                error_log_entries: s.error_log_entries,
                warning_temperature_seconds: s.warning_temperature_seconds,
                critical_temperature_seconds: s.critical_temperature_seconds,
                temperature_sensors_kelvin: try_exact(s.sensors, |t| {
                    Ok((
                        narrow(t.sensor, "TemperatureSensor", "sensor")?,
                        narrow(t.kelvin, "TemperatureSensor", "kelvin")?,
                    ))
                })?,
            }),
        };
        Ok(NvmeController {
            name: c.name.into(),
            model: c.model.into(),
            serial: c.serial.into(),
            firmware: c.firmware.into(),
            transport: c.transport.into(),
            address: c.address.into(),
            slot: none_if_empty(c.slot),
            numa_node: opt_i32(c.numa_node),
            state: c.state.into(),
            namespaces: try_exact(c.namespaces, |n| {
                Ok(NvmeNamespace {
                    name: n.name.into(),
                    nsid: (n.nsid > 0).then_some(n.nsid),
                    size_bytes: n.size_bytes,
                    logical_block_size: (n.logical_block_size > 0).then_some(n.logical_block_size),
                    write_cache: match n.write_cache.as_str() {
                        "" => None,
                        "write back" => Some(WriteCache::WriteBack),
                        "write through" => Some(WriteCache::WriteThrough),
                        w => {
                            return Err(bad(
                                "NvmeNamespace",
                                "write_cache",
                                format!("unknown value `{w}`"),
                            ));
                        }
                    },
                })
            })?,
            smart,
            smart_error: none_if_empty(c.smart_error),
        })
    }
}

// ---------------------------------------------------------------- checks & host facts

impl From<&HostFacts> for pb::HostFacts {
    fn from(h: &HostFacts) -> Self {
        pb::HostFacts {
            kernel_release: h.kernel_release.clone().unwrap_or_default(),
            os_name: h.os_name.clone().unwrap_or_default(),
            iommu_cmdline: h.iommu_cmdline.clone(),
            iommu_units: h.iommu_units.map(|u| u as i32).unwrap_or(-1),
            clock_synced: tristate(h.clock_synced),
            clock_max_error_us: h.clock_max_error_us.unwrap_or(-1),
        }
    }
}

impl From<pb::HostFacts> for HostFacts {
    fn from(h: pb::HostFacts) -> Self {
        HostFacts {
            kernel_release: none_if_empty(h.kernel_release),
            os_name: none_if_empty(h.os_name),
            iommu_cmdline: trimmed(h.iommu_cmdline),
            iommu_units: u32::try_from(h.iommu_units).ok(),
            clock_synced: from_tristate(h.clock_synced),
            clock_max_error_us: (h.clock_max_error_us >= 0).then_some(h.clock_max_error_us),
        }
    }
}

impl From<&CheckResult> for pb::CheckResult {
    fn from(r: &CheckResult) -> Self {
        pb::CheckResult {
            id: r.id.to_string(),
            status: match r.status {
                CheckStatus::Pass => pb::CheckStatus::Pass,
                CheckStatus::Warn => pb::CheckStatus::Warn,
                CheckStatus::Fail => pb::CheckStatus::Fail,
                CheckStatus::Unknown => pb::CheckStatus::Unknown,
            } as i32,
            observed: r.observed.clone(),
            expected: r.expected.clone(),
            remedy: r.remedy.clone(),
        }
    }
}

impl TryFrom<pb::CheckResult> for CheckResult {
    type Error = WireError;
    fn try_from(r: pb::CheckResult) -> Result<Self, WireError> {
        let status = match pb::CheckStatus::try_from(r.status) {
            Ok(pb::CheckStatus::Pass) => CheckStatus::Pass,
            Ok(pb::CheckStatus::Warn) => CheckStatus::Warn,
            Ok(pb::CheckStatus::Fail) => CheckStatus::Fail,
            Ok(pb::CheckStatus::Unknown) => CheckStatus::Unknown,
            _ => {
                return Err(bad(
                    "CheckResult",
                    "status",
                    format!("unknown status {} for check `{}`", r.status, r.id),
                ));
            }
        };
        Ok(CheckResult {
            id: r.id.into(),
            status,
            observed: r.observed,
            expected: r.expected,
            remedy: r.remedy,
        })
    }
}

// ---------------------------------------------------------------- probes

pub fn proto_to_pb(p: Proto) -> pb::Proto {
    match p {
        Proto::Tcp => pb::Proto::Tcp,
        Proto::Udp => pb::Proto::Udp,
    }
}

pub fn proto_from_pb(v: i32, message: &'static str) -> Result<Proto, WireError> {
    match pb::Proto::try_from(v) {
        Ok(pb::Proto::Tcp) => Ok(Proto::Tcp),
        Ok(pb::Proto::Udp) => Ok(Proto::Udp),
        _ => Err(bad(message, "proto", format!("unknown protocol {v}"))),
    }
}

fn state_to_pb(s: ProbeState) -> pb::ProbeState {
    match s {
        ProbeState::Open => pb::ProbeState::Open,
        ProbeState::Closed => pb::ProbeState::Closed,
        ProbeState::Filtered => pb::ProbeState::Filtered,
        ProbeState::Unreachable => pb::ProbeState::Unreachable,
    }
}

fn state_from_pb(v: i32, message: &'static str) -> Result<Option<ProbeState>, WireError> {
    match pb::ProbeState::try_from(v) {
        Ok(pb::ProbeState::Unspecified) => Ok(None),
        Ok(pb::ProbeState::Open) => Ok(Some(ProbeState::Open)),
        Ok(pb::ProbeState::Closed) => Ok(Some(ProbeState::Closed)),
        Ok(pb::ProbeState::Filtered) => Ok(Some(ProbeState::Filtered)),
        Ok(pb::ProbeState::Unreachable) => Ok(Some(ProbeState::Unreachable)),
        Err(_) => Err(bad(message, "state", format!("unknown state {v}"))),
    }
}

/// Encodes what travels in snapshots: the summary, the totals and the blocked results
/// only; the agent keeps the rest for its own metrics.
impl From<&ProbeReport> for pb::ProbeReport {
    fn from(r: &ProbeReport) -> Self {
        encode_probe_report(r, false)
    }
}

fn result_to_pb(p: &ProbeResult) -> pb::ProbeResult {
    pb::ProbeResult {
        peer: p.peer.to_string(),
        address: p.address.to_string(),
        port: u32::from(p.port),
        proto: proto_to_pb(p.proto) as i32,
        state: state_to_pb(p.state) as i32,
        rtt_us: p.rtt_us.unwrap_or(0),
        detail: p.detail.clone().unwrap_or_default(),
    }
}

/// `all_results`: every probe (on-demand requests, which asked for them); otherwise the
/// blocked ones only, at most `MAX_WIRE_RESULTS` (snapshots).
pub fn encode_probe_report(r: &ProbeReport, all_results: bool) -> pb::ProbeReport {
    let results = if all_results {
        r.results.iter().map(result_to_pb).collect()
    } else {
        r.blocked()
            .take(crate::model::probes::MAX_WIRE_RESULTS)
            .map(result_to_pb)
            .collect()
    };
    encode_probes(r, r.summary.iter(), results, false)
}

/// A Watch delta of a probe report: the peers probed in rounds after `since_round` (their
/// summary and blocked results) and the current totals. At 1,000 nodes a round changes
/// 32 of 999 peers, so a delta is a thirtieth of the report.
pub fn encode_probe_changes(r: &ProbeReport, since_round: u64) -> pb::ProbeReport {
    let summary: Vec<&PeerSummary> = r.summary.iter().filter(|s| s.round > since_round).collect();
    let named: std::collections::HashSet<&str> = summary.iter().map(|s| s.peer.as_str()).collect();
    let results = r
        .blocked()
        .filter(|x| named.contains(x.peer.as_str()))
        .take(crate::model::probes::MAX_WIRE_RESULTS)
        .map(result_to_pb)
        .collect();
    encode_probes(r, summary.into_iter(), results, true)
}

fn encode_probes<'a>(
    r: &ProbeReport,
    summary: impl Iterator<Item = &'a PeerSummary> + Clone,
    results: Vec<pb::ProbeResult>,
    changed_peers_only: bool,
) -> pb::ProbeReport {
    let mut states = Vec::new();
    for s in summary.clone() {
        states.extend(
            s.states
                .iter()
                .map(|x| x.map(state_to_pb).unwrap_or(pb::ProbeState::Unspecified) as u8),
        );
    }
    pb::ProbeReport {
        // The peers are the summary's names; not sent twice.
        peers: Vec::new(),
        results,
        round_ms: r.round_ms,
        probes_total: r.probes_total,
        blocked_total: r.blocked_total,
        summary_peers: summary.clone().map(|s| s.peer.to_string()).collect(),
        summary_states: states,
        summary_rtt_ms: summary
            .clone()
            .map(|s| s.rtt_ms.map(|v| v.saturating_add(1)).unwrap_or(0))
            .collect(),
        summary_observed_ms: summary.map(|s| s.observed_ms.unwrap_or(0)).collect(),
        round: r.round,
        changed_peers_only,
        peers_per_round: r.peers_per_round,
        coverage_ms: r.coverage_ms,
    }
}

impl TryFrom<pb::ProbeReport> for ProbeReport {
    type Error = WireError;
    fn try_from(r: pb::ProbeReport) -> Result<Self, WireError> {
        const G: usize = crate::model::probes::SUMMARY_GROUPS.len();
        let n = r.summary_peers.len();
        if r.summary_states.len() != n * G {
            return Err(bad(
                "ProbeReport",
                "summary_states",
                format!(
                    "{} bytes for {n} peers, expected {}",
                    r.summary_states.len(),
                    n * G
                ),
            ));
        }
        if r.summary_rtt_ms.len() != n {
            return Err(bad(
                "ProbeReport",
                "summary_rtt_ms",
                format!("{} values for {n} peers", r.summary_rtt_ms.len()),
            ));
        }
        // Agents before per-peer ages send none: their peers' age is the report's.
        if !r.summary_observed_ms.is_empty() && r.summary_observed_ms.len() != n {
            return Err(bad(
                "ProbeReport",
                "summary_observed_ms",
                format!("{} values for {n} peers", r.summary_observed_ms.len()),
            ));
        }
        let mut summary = Vec::with_capacity(n);
        for (i, peer) in r.summary_peers.into_iter().enumerate() {
            let mut states = [None; G];
            for (slot, b) in states.iter_mut().zip(&r.summary_states[i * G..(i + 1) * G]) {
                *slot = state_from_pb(i32::from(*b), "ProbeReport.summary_states")?;
            }
            let rtt = r.summary_rtt_ms[i];
            summary.push(PeerSummary {
                peer: peer.into(),
                states,
                rtt_ms: rtt.checked_sub(1),
                observed_ms: r.summary_observed_ms.get(i).copied().filter(|t| *t > 0),
                round: 0,
            });
        }
        let results = try_exact(r.results, |p| {
            let state = state_from_pb(p.state, "ProbeResult")?
                .ok_or_else(|| bad("ProbeResult", "state", "unspecified"))?;
            Ok(ProbeResult {
                peer: p.peer.into(),
                address: p.address.into(),
                port: narrow(p.port, "ProbeResult", "port")?,
                proto: proto_from_pb(p.proto, "ProbeResult")?,
                state,
                rtt_us: (p.rtt_us > 0).then_some(p.rtt_us),
                detail: none_if_empty(p.detail),
            })
        })?;
        Ok(ProbeReport {
            peers: summary.iter().map(|s| s.peer.clone()).collect(),
            results,
            summary,
            probes_total: r.probes_total,
            blocked_total: r.blocked_total,
            round_ms: r.round_ms,
            round: r.round,
            peers_per_round: r.peers_per_round,
            coverage_ms: r.coverage_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::probes::PortSpec;

    #[test]
    fn probe_reports_travel_as_summary_plus_blocked_results() {
        let mk = |port, state| ProbeResult {
            peer: "b".into(),
            address: "10.0.0.2".into(),
            port,
            proto: Proto::Tcp,
            state,
            rtt_us: Some(1200),
            detail: None,
        };
        let rep = ProbeReport::from_results(
            vec!["b"],
            vec![mk(14000, ProbeState::Open), mk(22, ProbeState::Filtered)],
            3,
        );
        let back = ProbeReport::try_from(pb::ProbeReport::from(&rep)).unwrap();
        assert_eq!(back.results.len(), 1, "only the blocked probe travels");
        assert_eq!(back.results[0].port, 22);
        assert_eq!(back.summary, rep.summary);
        assert_eq!((back.probes_total, back.blocked_total), (2, 1));
        let _ = PortSpec {
            port: 1,
            proto: Proto::Udp,
        };
    }

    #[test]
    fn malformed_messages_name_message_and_field() {
        let mut t = pb::Topology::default();
        t.cpus.push(pb::Cpu {
            id: 0,
            siblings: "0-zz".into(),
            ..Default::default()
        });
        let e = Topology::try_from(t).unwrap_err().to_string();
        assert!(e.starts_with("malformed Cpu.siblings"), "{e}");
        let e = decode_snapshot(pb::NodeSnapshot::default())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "malformed NodeSnapshot.node: missing");
        let c = pb::CheckResult {
            id: "x".into(),
            status: 42,
            ..Default::default()
        };
        assert!(
            CheckResult::try_from(c)
                .unwrap_err()
                .to_string()
                .contains("unknown status 42")
        );
        let s = pb::SmartLog {
            percentage_used: 300,
            ..Default::default()
        };
        let n = pb::NvmeController {
            smart: Some(s),
            ..Default::default()
        };
        assert!(
            NvmeController::try_from(n)
                .unwrap_err()
                .to_string()
                .contains("percentage_used")
        );
    }
}

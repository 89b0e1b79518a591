//! The preflight judges: pure functions from facts (plain model types) to `CheckResult`s,
//! one file per area. They read no file and no clock: `collectors::checks` gathers a
//! host's facts, the console hands in what its agents reported. A fact that could not be
//! read arrives as its error and makes its check unknown, never pass.

pub mod cluster;
pub mod cpu;
pub mod net;
pub mod nvme;
pub mod os;
pub mod ports;
pub mod slurm;

use super::checks::{CheckResult, CheckStatus};
use super::cpuset::CpuSet;
use super::net::{Network, Nic};
use super::nvme::NvmeController;
use super::pinning::{CpuRole, Pinning};
use super::plan::PlanParams;
use super::probes::ProbeReport;
use super::topology::Topology;
use std::collections::BTreeSet;

/// What the checks get from the other collectors. `Err` carries why that section cannot
/// be judged (never collected, its collector now failing, or stale), which becomes the
/// observed text of the checks that need it.
pub struct CheckInputs<'a> {
    pub topology: Result<&'a Topology, String>,
    pub network: Result<&'a Network, String>,
    pub nvme: Result<&'a [NvmeController], String>,
    pub pinning: Result<&'a Pinning, String>,
    /// None when no peers are configured.
    pub probes: Option<Result<&'a ProbeReport, String>>,
    pub plan: PlanParams,
}

/// Every single-host check, in the catalogue's order: the OS facts a host's files gave,
/// judged with the sections its other collectors gave.
pub fn host(facts: &os::OsFacts, inp: &CheckInputs) -> Vec<CheckResult> {
    use net::unless_nics_unreadable;
    vec![
        os::swap_off(&facts.swaps),
        os::numa_balancing(&facts.numa_balancing),
        os::tmp_noexec(&facts.mounts),
        cpu::smt_off(inp),
        os::cgroup_v2(&facts.cgroup_controllers, &facts.mounts),
        os::kernel_headers(&facts.kernel_headers),
        cpu::hugepages(&facts.hugetlb, inp),
        cpu::cpu_vendor(inp),
        unless_nics_unreadable(inp, net::numa_nic_balance(inp)),
        unless_nics_unreadable(inp, net::net_mtu(inp)),
        unless_nics_unreadable(inp, net::net_sbr(inp)),
        unless_nics_unreadable(inp, net::net_arp(inp)),
        unless_nics_unreadable(inp, net::net_rp_filter(inp)),
        os::ntp_sync(&facts.clock),
        os::svc_rpcbind(&facts.rpcbind),
        os::filesystem(&facts.xfs, "fs.xfs", "xfs", "XFS"),
        os::filesystem(&facts.squashfs, "fs.squashfs", "squashfs", "SquashFS"),
        nvme::nvme_plp(inp),
        nvme::nvme_capacity(inp),
        nvme::nvme_count(inp),
        nvme::nvme_health(inp),
        ports::ports_open(inp),
    ]
}

// ------------------------------------------------------------------ shared by the judges

fn result(
    id: &str,
    status: CheckStatus,
    observed: impl Into<String>,
    expected: &str,
    remedy: impl Into<String>,
) -> CheckResult {
    CheckResult {
        id: id.into(),
        status,
        observed: observed.into(),
        expected: expected.to_string(),
        remedy: if status == CheckStatus::Pass {
            String::new()
        } else {
            remedy.into()
        },
    }
}

fn unknown(id: &str, why: impl Into<String>, expected: &str) -> CheckResult {
    result(
        id,
        CheckStatus::Unknown,
        why,
        expected,
        "make the fact readable (see observed: usually run as root, or fix --host-root), then re-run",
    )
}

fn unknown_with(id: &str, why: impl Into<String>, expected: &str, remedy: &str) -> CheckResult {
    result(id, CheckStatus::Unknown, why, expected, remedy)
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

// ------------------------------------------------------------------ shared by cpu and net

/// The NUMA domains of the dataplane NICs, and a description (`ens1f0np0→NUMA 0, …`). A
/// NIC without a NUMA node is on the only domain of a single-domain host, and unknown on
/// any other.
fn nic_numa_nodes(nics: &[&Nic], t: &Topology) -> Result<(BTreeSet<u32>, String), String> {
    let multi = t.numa_nodes.len() > 1;
    let mut nodes = BTreeSet::new();
    let mut desc = Vec::new();
    for n in nics {
        let node = match n.numa_node.and_then(|x| u32::try_from(x).ok()) {
            Some(node) => node,
            None if !multi => t.numa_nodes.first().map(|n| n.id).unwrap_or(0),
            None => return Err(format!("{}: NUMA node unknown (numa_node = -1)", n.name)),
        };
        nodes.insert(node);
        desc.push(format!("{}→NUMA {node}", n.name));
    }
    Ok((nodes, desc.join(", ")))
}

fn axon_cpus(p: &Pinning) -> CpuSet {
    p.cpus
        .iter()
        .filter(|c| matches!(c.role(), CpuRole::Axon { .. }))
        .map(|c| c.cpu)
        .collect()
}

/// Why a check on the dataplane NICs cannot pass: some interfaces could be dataplane NICs,
/// but their type is unreadable.
fn nics_unreadable(n: &Network) -> String {
    format!(
        "cannot tell whether {} {}: {}",
        n.unreadable_nics.join(", "),
        if n.unreadable_nics.len() == 1 {
            "is a dataplane NIC"
        } else {
            "are dataplane NICs"
        },
        n.unreadable_nics
            .iter()
            .map(|x| format!("/sys/class/net/{x}/type unreadable"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

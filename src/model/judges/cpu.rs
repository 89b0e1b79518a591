//! Judges of the CPUs and their memory: SMT off, the CPU vendor and socket count, and
//! whether huge pages can be had on the NUMA domains the Axon cores (will) use.

use super::{CheckInputs, axon_cpus, nic_numa_nodes, nics_unreadable, plural, result, unknown};
use crate::model::checks::{CheckResult, CheckStatus};
use crate::model::net::Nic;
use crate::model::plan::{planned_cores, spread};
use humansize::{BINARY, format_size};
use std::collections::BTreeMap;

pub fn smt_off(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "smt.off";
    const EXP: &str = "SMT / Hyper-Threading disabled";
    const FIX: &str = "disable Hyper-Threading (SMT) in the BIOS setup (or with WEKA's bios_tool); `nosmt` on the kernel command line as a stopgap";
    let t = match &inp.topology {
        Ok(t) => t,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    let with_siblings = t.cpus.iter().filter(|c| c.siblings.len() > 1).count();
    let control = t.smt.control.as_deref().unwrap_or("?");
    let unread = &t.unreadable.siblings;
    match t.smt.active {
        Some(true) => result(
            ID,
            CheckStatus::Fail,
            format!("SMT active (control: {control}); {with_siblings} CPUs have a sibling thread"),
            EXP,
            FIX,
        ),
        Some(false) => result(
            ID,
            CheckStatus::Pass,
            format!("SMT inactive (control: {control})"),
            EXP,
            "",
        ),
        None if with_siblings > 0 => result(
            ID,
            CheckStatus::Fail,
            format!("{with_siblings} CPUs have a sibling thread"),
            EXP,
            FIX,
        ),
        // Without smt/active the sibling lists are the only witness: a CPU whose list
        // could not be read may have a sibling.
        None if !unread.is_empty() => unknown(
            ID,
            format!(
                "no /sys/devices/system/cpu/smt/active, and topology/thread_siblings_list unreadable for CPUs {}",
                unread.to_list_string()
            ),
            EXP,
        ),
        None => result(
            ID,
            CheckStatus::Pass,
            "no CPU has a sibling thread",
            EXP,
            "",
        ),
    }
}

/// `hugetlb`: whether the kernel has HugeTLB (/sys/kernel/mm/hugepages exists).
pub fn hugepages(hugetlb: &Result<bool, String>, inp: &CheckInputs) -> CheckResult {
    const ID: &str = "hugepages";
    const EXP: &str = "huge pages for the Axon cores can be allocated on the NUMA domains that hold them (the dataplane NICs' domains)";
    let t = match &inp.topology {
        Ok(t) => t,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    match hugetlb {
        Ok(true) => {}
        Ok(false) => {
            return result(
                ID,
                CheckStatus::Fail,
                "kernel without HugeTLB support (no /sys/kernel/mm/hugepages)",
                EXP,
                "use a kernel built with CONFIG_HUGETLBFS",
            );
        }
        Err(e) => return unknown(ID, e.clone(), EXP),
    }
    let m = &t.memory;
    if m.total_bytes.is_none() {
        return unknown(ID, "/proc/meminfo unreadable", EXP);
    }
    let Some(size) = m.hugepage_size_bytes.filter(|s| *s > 0) else {
        return unknown(ID, "/proc/meminfo has no Hugepagesize", EXP);
    };
    let pinning = match &inp.pinning {
        Ok(p) => p,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    // Where the Axon cores are (running) or will go (planned: spread evenly over the
    // dataplane NICs' domains), per NUMA domain.
    let axon = axon_cpus(pinning);
    let running = !axon.is_empty();
    let (who, cores_on): (String, BTreeMap<u32, usize>) = if running {
        let mut per = BTreeMap::new();
        for c in axon.iter() {
            match t.cpu(c).and_then(|c| c.numa_node) {
                Some(n) => *per.entry(n).or_default() += 1,
                None => {
                    return unknown(ID, format!("NUMA domain of Axon core cpu{c} unknown"), EXP);
                }
            }
        }
        (format!("{} Axon cores running", axon.len()), per)
    } else {
        let drives = match &inp.nvme {
            Ok(d) => d.len(),
            Err(e) => return unknown(ID, e.clone(), EXP),
        };
        let network = match &inp.network {
            Ok(n) => n,
            Err(e) => return unknown(ID, e.clone(), EXP),
        };
        let nics: Vec<&Nic> = network.dataplane().collect();
        if nics.is_empty() {
            return unknown(
                ID,
                "no dataplane NIC, so no NUMA domain to plan the cores on (see numa.nic-balance)",
                EXP,
            );
        }
        if !network.unreadable_nics.is_empty() {
            return unknown(ID, nics_unreadable(network), EXP);
        }
        let nodes = match nic_numa_nodes(&nics, t) {
            Ok((nodes, _)) => nodes,
            Err(e) => return unknown(ID, e, EXP),
        };
        let (d, c, f) = planned_cores(drives);
        (
            format!(
                "{} planned cores ({d} drive, {c} compute, {f} frontend)",
                d + c + f
            ),
            spread(d + c + f, &nodes),
        )
    };
    let per_core = inp.plan.hugepages_per_core_bytes;
    let gib = |b: u64| format_size(b, BINARY);
    let mut seen = Vec::new();
    let mut short = Vec::new();
    for (&node, &cores) in &cores_on {
        let need = (cores as u64).saturating_mul(per_core);
        let Some(n) = t.numa_node(node) else {
            return unknown(
                ID,
                format!("NUMA domain {node} not described in sysfs"),
                EXP,
            );
        };
        let (Some(_), Some(node_free)) = (n.memory_total_bytes, n.memory_free_bytes) else {
            return unknown(
                ID,
                format!("/sys/devices/system/node/node{node}/meminfo unreadable"),
                EXP,
            );
        };
        // A kernel without NUMA reports no per-node pools: its one domain has them all.
        let (total, free) = match n.hugepages_of(size) {
            Some(p) => (p.total, p.free),
            None if t.numa_nodes.len() == 1 => (m.hugepages_total, m.hugepages_free),
            None => (Some(0), Some(0)),
        };
        let (Some(total), Some(free)) = (total, free) else {
            return unknown(
                ID,
                format!("huge page counts of NUMA {node} unreadable"),
                EXP,
            );
        };
        // Pages already reserved count when they are free, or when Axon (running) holds them.
        let reserved = if running { total } else { free }.saturating_mul(size);
        let can_have = reserved.saturating_add(node_free);
        seen.push(format!(
            "NUMA {node}: need {} for {}, {} reserved ({} free) + {} free memory",
            gib(need),
            plural(cores, "core"),
            gib(total.saturating_mul(size)),
            gib(free.saturating_mul(size)),
            gib(node_free),
        ));
        if can_have < need {
            short.push((node, need.div_ceil(size)));
        }
    }
    let observed = format!("{who}; {}", seen.join("; "));
    if short.is_empty() {
        return result(ID, CheckStatus::Pass, observed, EXP, "");
    }
    let kb = size / 1024;
    result(
        ID,
        CheckStatus::Fail,
        observed,
        EXP,
        format!(
            "free memory or add RAM on NUMA {}; reserve the pages there early at boot (e.g. from a boot-time unit): {}",
            short
                .iter()
                .map(|(n, _)| n.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            short
                .iter()
                .map(|(n, pages)| format!(
                    "echo {pages} > /sys/devices/system/node/node{n}/hugepages/hugepages-{kb}kB/nr_hugepages"
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    )
}

pub fn cpu_vendor(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "cpu.vendor";
    const EXP: &str = "AMD single socket, or Intel (dual socket allowed)";
    let t = match &inp.topology {
        Ok(t) => t,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    let sockets = t.packages.len();
    let what = format!(
        "{} ({}), {}",
        t.cpu_model,
        t.cpu_vendor,
        plural(sockets, "socket")
    );
    let sockets_unknown = if sockets == 0 {
        Some("no CPU package (socket) known".to_string())
    } else if !t.unreadable.package_id.is_empty() {
        Some(format!(
            "topology/physical_package_id unreadable for CPUs {}: the socket count is unknown",
            t.unreadable.package_id.to_list_string()
        ))
    } else {
        None
    };
    match (t.cpu_vendor.as_str(), sockets_unknown) {
        ("", _) => unknown(ID, "/proc/cpuinfo has no vendor_id", EXP),
        ("AuthenticAMD" | "GenuineIntel", Some(why)) => unknown(
            ID,
            format!("{} ({}): {why}", t.cpu_model, t.cpu_vendor),
            EXP,
        ),
        ("AuthenticAMD", None) if sockets == 1 => result(ID, CheckStatus::Pass, what, EXP, ""),
        ("AuthenticAMD", None) => result(
            ID,
            CheckStatus::Fail,
            what,
            EXP,
            "AMD servers must be single socket: use 1-socket AMD servers, or Intel",
        ),
        ("GenuineIntel", None) if sockets <= 2 => result(ID, CheckStatus::Pass, what, EXP, ""),
        ("GenuineIntel", None) => result(
            ID,
            CheckStatus::Warn,
            what,
            EXP,
            "only 1- and 2-socket Intel servers are documented",
        ),
        _ => result(
            ID,
            CheckStatus::Fail,
            format!("{} ({})", t.cpu_model, t.cpu_vendor),
            EXP,
            "use AMD (single socket) or Intel servers",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::topology::Topology;

    #[test]
    fn hugetlb_unreadable_is_unknown_not_fail() {
        let t = Topology::default();
        let inp = CheckInputs {
            topology: Ok(&t),
            network: Err("network not collected".into()),
            nvme: Err("nvme not collected".into()),
            pinning: Err("pinning not collected".into()),
            probes: None,
            plan: Default::default(),
        };
        let unread = Err("/sys/kernel/mm/hugepages unreadable (permission denied)".to_string());
        let r = hugepages(&unread, &inp);
        assert_eq!(r.status, CheckStatus::Unknown, "{}", r.observed);
        assert!(r.observed.contains("permission denied"), "{}", r.observed);
        let r = hugepages(&Ok(false), &inp);
        assert_eq!(r.status, CheckStatus::Fail, "{}", r.observed);
    }
}

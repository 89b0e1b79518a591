//! Preflight checks: every requirement of REQUIREMENTS.md §1 that one host can decide.
//! Each returns pass / warn / fail / unknown with what was observed, what is expected and
//! the exact remedy. A fact that cannot be read makes its check unknown, never pass.

use super::{HostRoot, Problems};
use crate::model::checks::{CheckResult, CheckStatus};
use crate::model::clock::ClockState;
use crate::model::cpuset::CpuSet;
use crate::model::net::{Network, Nic, parse_v4_cidr, v4_contains};
use crate::model::nvme::{CriticalWarning, HealthLevel, NvmeController, class_label, marketed_gb};
use crate::model::pinning::{CpuRole, Pinning};
use crate::model::probes::ProbeReport;
use crate::model::snapshot::HostFacts;
use crate::model::topology::Topology;
use humansize::{BINARY, DECIMAL, format_size};
use std::collections::{BTreeMap, BTreeSet};

// The plan's parameters are named here too: the agent and the CLI configure the checks
// with them.
pub use crate::model::plan::PlanParams;
use crate::model::plan::{planned_cores, spread};

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

/// Runs every single-host check and gathers the host facts the console compares across
/// nodes.
pub fn collect(
    root: &HostRoot,
    inp: &CheckInputs,
    problems: &mut Problems,
) -> (HostFacts, Vec<CheckResult>) {
    let rel = root.value("/proc/sys/kernel/osrelease");
    let mut facts = HostFacts {
        kernel_release: rel.as_ref().ok().cloned(),
        os_name: root
            .read_opt("/etc/os-release")
            .ok()
            .flatten()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            }),
        ..Default::default()
    };
    match root.read("/proc/cmdline") {
        Ok(c) => {
            facts.iommu_cmdline = c
                .split_whitespace()
                .filter(|p| p.contains("iommu"))
                .map(str::to_string)
                .collect()
        }
        Err(e) => problems.push(e),
    }
    facts.iommu_units = root
        .list_opt("/sys/class/iommu")
        .ok()
        .map(|v| v.len() as u32);
    let clock = root.sys().clock();
    if let Ok(c) = &clock {
        facts.clock_synced = Some(c.synchronised());
        facts.clock_max_error_us = Some(c.maxerror_us);
    }
    let mounts = root
        .read("/proc/mounts")
        .map_err(|e| e.to_string())
        .map(|t| parse_mounts(&t));

    let results = vec![
        swap_off(root),
        numa_balancing(root),
        tmp_noexec(&mounts),
        smt_off(inp),
        cgroup_v2(root, &mounts),
        kernel_headers(root, &rel.map_err(|e| e.to_string())),
        hugepages(root, inp),
        cpu_vendor(inp),
        unless_nics_unreadable(inp, numa_nic_balance(inp)),
        unless_nics_unreadable(inp, net_mtu(inp)),
        unless_nics_unreadable(inp, net_sbr(inp)),
        unless_nics_unreadable(inp, net_arp(inp)),
        unless_nics_unreadable(inp, net_rp_filter(inp)),
        ntp_sync(clock.map_err(|e| e.to_string())),
        svc_rpcbind(root),
        filesystem(root, "fs.xfs", "xfs", "XFS"),
        filesystem(root, "fs.squashfs", "squashfs", "SquashFS"),
        nvme_plp(inp),
        nvme_capacity(inp),
        nvme_count(inp),
        nvme_health(inp),
        ports_open(inp),
    ];
    (facts, results)
}

// ------------------------------------------------------------------ OS settings

fn swap_off(root: &HostRoot) -> CheckResult {
    const ID: &str = "swap.off";
    const EXP: &str = "no active swap";
    let text = match root.read("/proc/swaps") {
        Ok(t) => t,
        Err(e) => return unknown(ID, e.to_string(), EXP),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.starts_with("Filename") => {}
        _ => {
            return unknown(
                ID,
                format!(
                    "{} malformed: no `Filename` header",
                    root.display_path("/proc/swaps").display()
                ),
                EXP,
            );
        }
    }
    let mut active = Vec::new();
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 4 {
            return unknown(
                ID,
                format!(
                    "{} malformed: `{l}`",
                    root.display_path("/proc/swaps").display()
                ),
                EXP,
            );
        }
        let kib = |s: &str| s.parse::<u64>().unwrap_or(0).saturating_mul(1024);
        active.push(format!(
            "{} ({}, {} used)",
            f[0],
            format_size(kib(f[2]), BINARY),
            format_size(kib(f[3]), BINARY)
        ));
    }
    if active.is_empty() {
        result(ID, CheckStatus::Pass, "no active swap", EXP, "")
    } else {
        result(
            ID,
            CheckStatus::Fail,
            format!(
                "{} active: {}",
                plural(active.len(), "swap area"),
                active.join(", ")
            ),
            EXP,
            "swapoff -a; remove or comment out the swap entries in /etc/fstab (and `systemctl mask swap.target` where systemd activates swap)",
        )
    }
}

/// sysctl assignments of a key in the files systemd-sysctl and procps read, in the order
/// they apply (later wins), and the files or directories that could not be read.
struct Persisted {
    assignments: Vec<(String, String)>,
    unreadable: Vec<String>,
}

/// Reads `key`'s assignments from the sysctl.d directories (by file name), then
/// /etc/sysctl.conf. A file that cannot be read is listed, never taken as "not set".
fn persisted_sysctl(root: &HostRoot, key: &str) -> Persisted {
    let slash_key = key.replace('.', "/");
    let dirs = [
        "/etc/sysctl.d",
        "/run/sysctl.d",
        "/usr/local/lib/sysctl.d",
        "/usr/lib/sysctl.d",
        "/lib/sysctl.d",
    ];
    let mut unreadable = Vec::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for d in dirs {
        match root.list_opt(d) {
            Ok(files) => {
                for f in files {
                    if f.ends_with(".conf") && !by_name.contains_key(&f) {
                        by_name.insert(f.clone(), format!("{d}/{f}"));
                    }
                }
            }
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    let mut files: Vec<String> = by_name.into_values().collect();
    files.push("/etc/sysctl.conf".into());
    let mut assignments = Vec::new();
    for f in files {
        let text = match root.read_opt(&f) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                unreadable.push(e.to_string());
                continue;
            }
        };
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let k = k.trim().trim_start_matches('-');
            if k == key || k == slash_key {
                assignments.push((f.clone(), v.trim().to_string()));
            }
        }
    }
    Persisted {
        assignments,
        unreadable,
    }
}

fn numa_balancing(root: &HostRoot) -> CheckResult {
    const ID: &str = "numa.balancing";
    const EXP: &str = "kernel.numa_balancing = 0, persisted in /etc/sysctl.conf or /etc/sysctl.d";
    // Appends: other remedies (ARP, rp_filter) write to the same file.
    const FIX: &str = "sysctl -w kernel.numa_balancing=0 && echo 'kernel.numa_balancing = 0' >> /etc/sysctl.d/99-axon.conf";
    let runtime = match root.read_opt("/proc/sys/kernel/numa_balancing") {
        Ok(Some(v)) => match v.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return unknown(
                    ID,
                    format!(
                        "{} malformed: `{}`",
                        root.display_path("/proc/sys/kernel/numa_balancing")
                            .display(),
                        v.trim()
                    ),
                    EXP,
                );
            }
        },
        Ok(None) => match root.exists("/proc/sys/kernel") {
            Ok(true) => None,
            Ok(false) => {
                return unknown(
                    ID,
                    format!(
                        "{} unreadable (not found)",
                        root.display_path("/proc/sys/kernel").display()
                    ),
                    EXP,
                );
            }
            Err(e) => return unknown(ID, e.to_string(), EXP),
        },
        Err(e) => return unknown(ID, e.to_string(), EXP),
    };
    let persisted = persisted_sysctl(root, "kernel.numa_balancing");
    let last = persisted.assignments.last();
    let unread = persisted.unreadable.join("; ");
    // A file that sets another value and is read after 99-axon.conf would win over an
    // appended line: then that file is what to fix.
    let fix = match last {
        Some((f, v))
            if v != "0"
                && (f == "/etc/sysctl.conf"
                    || f.rsplit('/').next().is_some_and(|n| n > "99-axon.conf")) =>
        {
            format!(
                "sysctl -w kernel.numa_balancing=0, and change the line in {f} to `kernel.numa_balancing = 0` (it is read after 99-axon.conf and sets {v})"
            )
        }
        _ => FIX.to_string(),
    };
    match runtime {
        None => result(
            ID,
            CheckStatus::Pass,
            "not built into this kernel (no /proc/sys/kernel/numa_balancing)",
            EXP,
            "",
        ),
        Some(n) if n != 0 => result(
            ID,
            CheckStatus::Fail,
            format!(
                "kernel.numa_balancing = {n}{}",
                match last {
                    Some((f, v)) => format!(" ({f} sets {v})"),
                    None if unread.is_empty() => " (not set in any sysctl file)".into(),
                    None => format!(" (not set in any readable sysctl file; {unread})"),
                }
            ),
            EXP,
            fix,
        ),
        Some(_) => match last {
            Some((f, v)) if v == "0" => result(
                ID,
                CheckStatus::Pass,
                format!("0, persisted in {f}"),
                EXP,
                "",
            ),
            // The seed requires the setting persisted: one that reverts at boot fails.
            Some((f, v)) => result(
                ID,
                CheckStatus::Fail,
                format!("0 now, but {f} sets {v}: reverts at boot"),
                EXP,
                fix,
            ),
            // Nothing readable persists it, but an unreadable file may: that is unknown.
            None if !unread.is_empty() => unknown(
                ID,
                format!("0 now; whether it is persisted is unknown: {unread}"),
                EXP,
            ),
            None => result(
                ID,
                CheckStatus::Fail,
                "0 now, but not persisted in any sysctl file: reverts at boot",
                EXP,
                "echo 'kernel.numa_balancing = 0' >> /etc/sysctl.d/99-axon.conf",
            ),
        },
    }
}

#[derive(Debug, Clone)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub options: Vec<String>,
}

pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| Mount {
                source: f[0].to_string(),
                target: f[1].replace("\\040", " "),
                fstype: f[2].to_string(),
                options: f[3].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

fn tmp_noexec(mounts: &Result<Vec<Mount>, String>) -> CheckResult {
    const ID: &str = "tmp.noexec";
    const EXP: &str = "/tmp is its own mount with the noexec option";
    let mounts = match mounts {
        Ok(m) => m,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    // The last entry for a mount point is the one on top.
    match mounts.iter().rev().find(|m| m.target == "/tmp") {
        None => result(
            ID,
            CheckStatus::Fail,
            "no separate /tmp mount: /tmp lives on the root file system, executable",
            EXP,
            "add `tmpfs /tmp tmpfs defaults,noexec,nosuid,nodev 0 0` to /etc/fstab and `mount /tmp` (or enable tmp.mount with Options=…,noexec)",
        ),
        Some(m) if m.options.iter().any(|o| o == "noexec") => result(
            ID,
            CheckStatus::Pass,
            format!("{} on /tmp ({})", m.fstype, m.options.join(",")),
            EXP,
            "",
        ),
        Some(m) => result(
            ID,
            CheckStatus::Fail,
            format!(
                "{} on /tmp without noexec ({})",
                m.fstype,
                m.options.join(",")
            ),
            EXP,
            "mount -o remount,noexec /tmp, and add noexec to the /tmp options in /etc/fstab",
        ),
    }
}

fn smt_off(inp: &CheckInputs) -> CheckResult {
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

fn cgroup_v2(root: &HostRoot, mounts: &Result<Vec<Mount>, String>) -> CheckResult {
    const ID: &str = "cgroup.v2";
    const EXP: &str = "unified cgroup v2 mounted at /sys/fs/cgroup";
    const FIX: &str = "boot with systemd.unified_cgroup_hierarchy=1 (e.g. `grubby --update-kernel=ALL --args=systemd.unified_cgroup_hierarchy=1`, or add it to GRUB_CMDLINE_LINUX and update-grub), then reboot";
    // Err: whether cgroup.controllers exists is unknown (not that it is absent).
    let controllers = root
        .exists("/sys/fs/cgroup/cgroup.controllers")
        .map_err(|e| e.to_string());
    let mounts = match (mounts, &controllers) {
        (Ok(m), _) => m,
        (Err(e), Ok(true)) => {
            return result(
                ID,
                CheckStatus::Pass,
                format!("/sys/fs/cgroup/cgroup.controllers present (mount table unreadable: {e})"),
                EXP,
                "",
            );
        }
        (Err(e), Ok(false)) => return unknown(ID, e.clone(), EXP),
        (Err(e), Err(ce)) => return unknown(ID, format!("{ce}; {e}"), EXP),
    };
    let v2_at_root = mounts
        .iter()
        .any(|m| m.fstype == "cgroup2" && m.target == "/sys/fs/cgroup");
    let v1: BTreeSet<String> = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup")
        .flat_map(|m| m.target.rsplit('/').next().map(str::to_string))
        .collect();
    let v2_elsewhere = mounts
        .iter()
        .find(|m| m.fstype == "cgroup2" && m.target != "/sys/fs/cgroup");
    if v2_at_root || v1.is_empty() {
        match controllers {
            Ok(true) => {
                return result(
                    ID,
                    CheckStatus::Pass,
                    "unified: cgroup2 on /sys/fs/cgroup",
                    EXP,
                    "",
                );
            }
            // The mount table alone does not decide it: cgroup.controllers does.
            Err(ce) => return unknown(ID, ce, EXP),
            Ok(false) => {}
        }
    }
    let v1_list = v1.iter().cloned().collect::<Vec<_>>().join(", ");
    let observed = match (v1.is_empty(), v2_elsewhere) {
        (false, Some(m)) => format!(
            "hybrid: cgroup v1 controllers ({v1_list}) with cgroup2 only at {}",
            m.target
        ),
        (false, None) => format!("legacy cgroup v1 only ({v1_list})"),
        (true, Some(m)) => format!("cgroup2 mounted at {} instead of /sys/fs/cgroup", m.target),
        (true, None) => "no cgroup file system mounted".into(),
    };
    result(ID, CheckStatus::Fail, observed, EXP, FIX)
}

fn kernel_headers(root: &HostRoot, rel: &Result<String, String>) -> CheckResult {
    const ID: &str = "kernel.headers";
    const EXP: &str = "/lib/modules/<running kernel>/build points at installed headers";
    let rel = match rel {
        Ok(r) => r,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    let build = format!("/lib/modules/{rel}/build");
    let resolved = match root.resolve(&build) {
        Ok(r) => r,
        Err(e) => return unknown(ID, e.to_string(), EXP),
    };
    match resolved {
        Some(target) if root.path(&target).is_dir() => result(
            ID,
            CheckStatus::Pass,
            format!("{build} → {target}"),
            EXP,
            "",
        ),
        _ => {
            // Absent only when the file system says so; an unreadable path is unknown.
            let why = match root.exists(&build) {
                Err(e) => return unknown(ID, e.to_string(), EXP),
                Ok(true) => {
                    format!("{build} is a dangling link: headers for {rel} are not installed")
                }
                Ok(false) => match root.exists(&format!("/lib/modules/{rel}")) {
                    Err(e) => return unknown(ID, e.to_string(), EXP),
                    Ok(true) => format!("no {build}: headers for {rel} are not installed"),
                    Ok(false) => format!(
                        "no /lib/modules/{rel}: neither modules nor headers of the running kernel {rel} are installed"
                    ),
                },
            };
            result(
                ID,
                CheckStatus::Fail,
                why,
                EXP,
                format!(
                    "apt install linux-headers-{rel}   (RHEL/Rocky: dnf install kernel-devel-{rel})"
                ),
            )
        }
    }
}

fn hugepages(root: &HostRoot, inp: &CheckInputs) -> CheckResult {
    const ID: &str = "hugepages";
    const EXP: &str = "huge pages for the Axon cores can be allocated on the NUMA domains that hold them (the dataplane NICs' domains)";
    let t = match &inp.topology {
        Ok(t) => t,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    match root.exists("/sys/kernel/mm/hugepages") {
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
        Err(e) => return unknown(ID, e.to_string(), EXP),
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

fn cpu_vendor(inp: &CheckInputs) -> CheckResult {
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

// ------------------------------------------------------------------ network

fn dataplane<'a>(
    inp: &'a CheckInputs,
    id: &str,
    exp: &str,
) -> Result<(&'a Network, Vec<&'a Nic>), CheckResult> {
    let n = inp
        .network
        .as_ref()
        .map_err(|e| unknown(id, e.clone(), exp))?;
    let nics: Vec<&Nic> = n.dataplane().collect();
    if nics.is_empty() && !n.unreadable_nics.is_empty() {
        return Err(unknown(id, nics_unreadable(n), exp));
    }
    if nics.is_empty() {
        return Err(result(
            id,
            CheckStatus::Fail,
            "no dataplane NIC: no physical Ethernet or InfiniBand interface found",
            exp,
            "connect the dataplane NICs, or name them with --dataplane-nic",
        ));
    }
    Ok((n, nics))
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

/// A pass judged on the readable dataplane NICs only is unknown while other possible
/// dataplane NICs could not be read; a warning or failure stands.
fn unless_nics_unreadable(inp: &CheckInputs, r: CheckResult) -> CheckResult {
    match &inp.network {
        Ok(n) if r.status == CheckStatus::Pass && !n.unreadable_nics.is_empty() => unknown(
            &r.id,
            format!("{}; but {}", r.observed, nics_unreadable(n)),
            &r.expected,
        ),
        _ => r,
    }
}

fn numa_nic_balance(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "numa.nic-balance";
    const EXP: &str =
        "every dataplane NIC's NUMA domain gets Axon cores, and Axon cores sit only there";
    let (_, nics) = match dataplane(inp, ID, EXP) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = match &inp.topology {
        Ok(t) => t,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    let (nic_nodes, nic_desc) = match nic_numa_nodes(&nics, t) {
        Ok(x) => x,
        Err(e) => return unknown(ID, e, EXP),
    };
    let axon = match &inp.pinning {
        Ok(p) => axon_cpus(p),
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    if !axon.is_empty() {
        let axon_nodes: BTreeSet<u32> = axon
            .iter()
            .filter_map(|c| t.cpu(c).and_then(|c| c.numa_node))
            .collect();
        let without_cores: Vec<u32> = nic_nodes.difference(&axon_nodes).copied().collect();
        // A domain looks NIC-less when its NIC could not be read: only a complete NIC list
        // can show stray cores.
        let nics_complete = inp
            .network
            .as_ref()
            .is_ok_and(|n| n.unreadable_nics.is_empty());
        let stray: Vec<u32> = if nics_complete {
            axon_nodes.difference(&nic_nodes).copied().collect()
        } else {
            Vec::new()
        };
        let per_node = axon_nodes
            .iter()
            .map(|n| {
                format!(
                    "NUMA {n}: {}",
                    axon.iter()
                        .filter(|c| t.cpu(*c).and_then(|c| c.numa_node) == Some(*n))
                        .count()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        if without_cores.is_empty() && stray.is_empty() {
            return result(
                ID,
                CheckStatus::Pass,
                format!("{nic_desc}; Axon cores {per_node}"),
                EXP,
                "",
            );
        }
        let mut why = Vec::new();
        if !without_cores.is_empty() {
            why.push(format!(
                "NUMA {without_cores:?} hold a dataplane NIC but no Axon core"
            ));
        }
        if !stray.is_empty() {
            why.push(format!(
                "Axon cores on NUMA {stray:?}, which has no dataplane NIC"
            ));
        }
        return result(
            ID,
            CheckStatus::Fail,
            format!("{nic_desc}; Axon cores {per_node}: {}", why.join("; ")),
            EXP,
            "give the Axon containers cores only from NUMA domains with a dataplane NIC, spread evenly over them (the install script's DRIVE_CORES / COMPUTE_CORES / FE_CORES), and restart them",
        );
    }
    // Not installed yet: are there enough usable cores on the NIC domains for the plan?
    let drives = match &inp.nvme {
        Ok(d) => d.len(),
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    let (d, c, f) = planned_cores(drives);
    let need = d + c + f;
    let candidates: Vec<&crate::model::topology::Cpu> = t
        .cpus
        .iter()
        .filter(|c| c.online && c.numa_node.is_some_and(|n| nic_nodes.contains(&n)))
        .collect();
    // Counting physical cores needs each CPU's core and package, and cpu0's siblings (kept
    // for the OS); a stand-in for any of them would count SMT siblings as cores.
    let u = &t.unreadable;
    let guessed: CpuSet = candidates
        .iter()
        .map(|c| c.id)
        .filter(|id| u.core_id.contains(*id) || u.package_id.contains(*id))
        .chain(u.siblings.contains(0).then_some(0))
        .collect();
    if !guessed.is_empty() {
        return unknown(
            ID,
            format!(
                "{nic_desc}; topology files (core_id, physical_package_id or cpu0's thread_siblings_list) unreadable for CPUs {}: cannot count the usable cores",
                guessed.to_list_string()
            ),
            EXP,
        );
    }
    let os: CpuSet = t
        .cpu(0)
        .map(|c| c.siblings.clone())
        .unwrap_or_else(|| CpuSet::from_ids([0]));
    let mut usable = 0;
    let mut seen_cores = BTreeSet::new();
    for cpu in candidates {
        if os.contains(cpu.id) {
            continue;
        }
        // One thread per physical core: never both siblings.
        if seen_cores.insert((cpu.package_id, cpu.core_id)) {
            usable += 1;
        }
    }
    let observed = format!(
        "{nic_desc}; {} there (excluding cpu0 and SMT siblings) for {need} planned ({d} drive, {c} compute, {f} frontend)",
        plural(usable, "usable core")
    );
    if usable >= need {
        result(ID, CheckStatus::Pass, observed, EXP, "")
    } else {
        result(
            ID,
            CheckStatus::Fail,
            observed,
            EXP,
            "place the dataplane NICs on NUMA domains with enough free cores, or use servers with more cores per domain",
        )
    }
}

fn net_mtu(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "net.mtu";
    const EXP: &str = "MTU >= 9000 on Ethernet, >= 4092 on InfiniBand dataplane NICs";
    let (_, nics) = match dataplane(inp, ID, EXP) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut bad = Vec::new();
    let mut unknown_nics = Vec::new();
    let mut seen = Vec::new();
    for n in &nics {
        let Some(need) = n.kind.required_mtu() else {
            unknown_nics.push(format!("{} (type {})", n.name, n.arphrd));
            continue;
        };
        match n.mtu {
            Some(m) if m >= need => seen.push(format!("{} {m}", n.name)),
            Some(m) => bad.push(format!("{} {m} < {need}", n.name)),
            None => unknown_nics.push(format!("{} (mtu unreadable)", n.name)),
        }
    }
    if !bad.is_empty() {
        let first = nics.iter().find(|n| {
            n.kind
                .required_mtu()
                .is_some_and(|r| n.mtu.is_some_and(|m| m < r))
        });
        let fix = match first {
            Some(n) => format!(
                "ip link set dev {} mtu {} and persist it in the network configuration (netplan, NetworkManager or ifcfg); the switch ports must allow jumbo frames too",
                n.name,
                n.kind.required_mtu().unwrap_or(9000)
            ),
            None => String::new(),
        };
        return result(ID, CheckStatus::Fail, bad.join(", "), EXP, fix);
    }
    if !unknown_nics.is_empty() {
        return unknown(ID, format!("cannot judge {}", unknown_nics.join(", ")), EXP);
    }
    result(ID, CheckStatus::Pass, seen.join(", "), EXP, "")
}

fn net_sbr(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "net.sbr";
    const EXP: &str =
        "per dataplane NIC: `ip rule from <its address> table T` and table T routes via the NIC";
    let (net, nics) = match dataplane(inp, ID, EXP) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(e) = &net.routing_error {
        return unknown(ID, format!("routing rules unreadable: {e}"), EXP);
    }
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut fixes = Vec::new();
    for (i, n) in nics.iter().enumerate() {
        let v4: Vec<&str> = n.ipv4_addresses().map(|a| a.cidr.as_str()).collect();
        if v4.is_empty() {
            bad.push(format!("{}: no IPv4 address", n.name));
            continue;
        }
        match n.sbr.iter().find(|r| r.table_routes_via_nic) {
            Some(r) => ok.push(format!("{}: from {} table {}", n.name, r.from, r.table)),
            None => {
                let partial = n
                    .sbr
                    .first()
                    .map(|r| format!(" (rule to table {} has no route via {})", r.table, n.name))
                    .unwrap_or_default();
                bad.push(format!("{}: no source rule{partial}", n.name));
                let (addr, len) =
                    parse_v4_cidr(v4[0]).unwrap_or((std::net::Ipv4Addr::UNSPECIFIED, 32));
                let table = 101 + i;
                let subnet = subnet_of(addr, len);
                fixes.push(format!("ip rule add from {addr} table {table}; ip route add {subnet} dev {} src {addr} table {table}", n.name));
            }
        }
    }
    if bad.is_empty() {
        result(ID, CheckStatus::Pass, ok.join(", "), EXP, "")
    } else {
        result(
            ID,
            CheckStatus::Fail,
            bad.join(", "),
            EXP,
            format!(
                "{} — and persist them in the OS network scripts",
                fixes.join("; ")
            ),
        )
    }
}

fn subnet_of(addr: std::net::Ipv4Addr, len: u8) -> String {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let net = std::net::Ipv4Addr::from(u32::from(addr) & mask);
    debug_assert!(v4_contains((net, len), addr));
    format!("{net}/{len}")
}

fn net_arp(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "net.arp";
    const EXP: &str = "arp_filter=1 arp_announce=2 arp_ignore=1 in effect on each dataplane NIC (the kernel takes the max of all and the NIC), set so on the NIC, all and default";
    let (net, nics) = match dataplane(inp, ID, EXP) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut bad = Vec::new();
    let mut unreadable = Vec::new();
    // Right only because `all` makes them so: the NIC's own value takes over when `all` is
    // changed back.
    let mut latent = Vec::new();
    for n in &nics {
        let e = n.ipconf.effective(&net.all);
        match (e.arp_filter, e.arp_announce, e.arp_ignore) {
            (Some(1), Some(2), Some(1)) => {
                let own = &n.ipconf;
                let off: Vec<String> = [
                    ("arp_filter", own.arp_filter, 1),
                    ("arp_announce", own.arp_announce, 2),
                    ("arp_ignore", own.arp_ignore, 1),
                ]
                .into_iter()
                .filter(|(_, v, want)| *v != Some(*want))
                .map(|(k, v, _)| format!("{k}={}", opt(v)))
                .collect();
                if !off.is_empty() {
                    latent.push(format!("{} own {}", n.name, off.join(" ")));
                }
            }
            (Some(f), Some(a), Some(i)) => bad.push(format!(
                "{}: effective arp_filter={f} arp_announce={a} arp_ignore={i}",
                n.name
            )),
            _ => unreadable.push(n.name.clone()),
        }
    }
    let fix = format!(
        "for d in {} all default; do for k in arp_filter=1 arp_announce=2 arp_ignore=1; do sysctl -w net.ipv4.conf.$d.$k && echo net.ipv4.conf.$d.$k >> /etc/sysctl.d/99-axon.conf; done; done",
        nics.iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !bad.is_empty() {
        return result(ID, CheckStatus::Fail, bad.join("; "), EXP, fix);
    }
    if !unreadable.is_empty() {
        return unknown(
            ID,
            format!("ARP settings unreadable for {}", unreadable.join(", ")),
            EXP,
        );
    }
    let names = nics
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !latent.is_empty() {
        return result(
            ID,
            CheckStatus::Warn,
            format!(
                "{names}: effective arp_filter=1 arp_announce=2 arp_ignore=1, but only through `all`: {} (takes effect if `all` is changed)",
                latent.join("; ")
            ),
            EXP,
            fix,
        );
    }
    let d = &net.default;
    if (d.arp_filter, d.arp_announce, d.arp_ignore) != (Some(1), Some(2), Some(1)) {
        return result(
            ID,
            CheckStatus::Warn,
            format!(
                "dataplane NICs correct, but default: arp_filter={} arp_announce={} arp_ignore={} (new interfaces start wrong)",
                opt(d.arp_filter),
                opt(d.arp_announce),
                opt(d.arp_ignore)
            ),
            EXP,
            fix,
        );
    }
    result(
        ID,
        CheckStatus::Pass,
        format!("{names}: effective arp_filter=1 arp_announce=2 arp_ignore=1"),
        EXP,
        "",
    )
}

fn opt(v: Option<i32>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

fn net_rp_filter(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "net.rp_filter";
    const EXP: &str = "rp_filter = 2 (loose; 0 accepted) on each dataplane NIC";
    let (net, nics) = match dataplane(inp, ID, EXP) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut strict = Vec::new();
    let mut seen = Vec::new();
    for n in &nics {
        match n.ipconf.effective(&net.all).rp_filter {
            Some(1) => strict.push(n.name.clone()),
            Some(v) => seen.push(format!("{} {v}", n.name)),
            None => return unknown(ID, format!("{}: rp_filter unreadable", n.name), EXP),
        }
    }
    if strict.is_empty() {
        result(
            ID,
            CheckStatus::Pass,
            format!("effective rp_filter: {}", seen.join(", ")),
            EXP,
            "",
        )
    } else {
        result(
            ID,
            CheckStatus::Fail,
            format!("strict reverse-path filtering (1) on {}", strict.join(", ")),
            EXP,
            format!(
                "sysctl -w {0} net.ipv4.conf.all.rp_filter=2 && printf '%s\\n' {0} net.ipv4.conf.all.rp_filter=2 >> /etc/sysctl.d/99-axon.conf",
                strict
                    .iter()
                    .map(|s| format!("net.ipv4.conf.{s}.rp_filter=2"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
    }
}

// ------------------------------------------------------------------ services and file systems

fn ntp_sync(clock: Result<ClockState, String>) -> CheckResult {
    const ID: &str = "ntp.sync";
    const EXP: &str = "kernel clock synchronised (adjtimex without STA_UNSYNC)";
    match clock {
        Err(e) => unknown(ID, e, EXP),
        Ok(c) if c.synchronised() => result(
            ID,
            CheckStatus::Pass,
            format!("synchronised, max error {} ms", c.maxerror_us / 1000),
            EXP,
            "",
        ),
        Ok(c) => result(
            ID,
            CheckStatus::Fail,
            format!(
                "not synchronised (adjtimex state {}, status {:#06x})",
                c.state, c.status
            ),
            EXP,
            "run an NTP client against the cluster's time source: `systemctl enable --now chrony` (check with `chronyc tracking`)",
        ),
    }
}

const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

fn svc_rpcbind(root: &HostRoot) -> CheckResult {
    const ID: &str = "svc.rpcbind";
    const EXP: &str = "rpcbind installed and enabled";
    const INSTALL: &str = "apt install rpcbind (RHEL/Rocky: dnf install rpcbind), then systemctl enable --now rpcbind.service rpcbind.socket";
    let mut dir_errors = Vec::new();
    let any_dir = UNIT_DIRS.iter().any(|d| match root.exists(d) {
        Ok(b) => b,
        Err(e) => {
            dir_errors.push(e.to_string());
            false
        }
    });
    if !any_dir {
        return unknown(
            ID,
            if dir_errors.is_empty() {
                "no systemd unit directories: cannot tell how services are managed on this host"
                    .to_string()
            } else {
                format!("no systemd unit directory found: {}", dir_errors.join("; "))
            },
            EXP,
        );
    }
    // A unit file or directory that cannot be read is not evidence of absence.
    let mut errors: Vec<String> = Vec::new();
    let present = |p: &str, errors: &mut Vec<String>| match root.exists(p) {
        Ok(b) => b,
        Err(e) => {
            errors.push(e.to_string());
            false
        }
    };
    let units = ["rpcbind.service", "rpcbind.socket"];
    let mut installed = Vec::new();
    for d in UNIT_DIRS {
        for u in units {
            let p = format!("{d}/{u}");
            if present(&p, &mut errors) {
                installed.push(p);
            }
        }
    }
    if installed.is_empty() {
        if !errors.is_empty() {
            return unknown(
                ID,
                format!("no rpcbind unit found, but {}", errors.join("; ")),
                EXP,
            );
        }
        return result(
            ID,
            CheckStatus::Fail,
            "rpcbind is not installed (no rpcbind.service or rpcbind.socket unit)",
            EXP,
            INSTALL,
        );
    }
    // A unit linked to /dev/null is masked.
    if let Ok(t) = std::fs::read_link(root.path("/etc/systemd/system/rpcbind.service")) {
        if t == std::path::Path::new("/dev/null") {
            return result(
                ID,
                CheckStatus::Fail,
                "rpcbind.service is masked",
                EXP,
                "systemctl unmask rpcbind.service && systemctl enable --now rpcbind",
            );
        }
    }
    let mut enabled = Vec::new();
    for d in [
        "/etc/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ] {
        let entries = match root.list_opt(d) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        for wants in entries.into_iter().filter(|w| w.ends_with(".wants")) {
            for u in units {
                if present(&format!("{d}/{wants}/{u}"), &mut errors) {
                    enabled.push(format!("{u} ({wants})"));
                }
            }
        }
    }
    match (enabled.is_empty(), errors.is_empty()) {
        (false, _) => result(
            ID,
            CheckStatus::Pass,
            format!("enabled: {}", enabled.join(", ")),
            EXP,
            "",
        ),
        (true, false) => unknown(
            ID,
            format!(
                "rpcbind installed; whether it is enabled is unknown: {}",
                errors.join("; ")
            ),
            EXP,
        ),
        (true, true) => result(
            ID,
            CheckStatus::Fail,
            "rpcbind installed but not enabled",
            EXP,
            "systemctl enable --now rpcbind.service rpcbind.socket",
        ),
    }
}

fn filesystem(root: &HostRoot, id: &str, fs: &str, pretty: &str) -> CheckResult {
    let exp = format!("{pretty} registered in /proc/filesystems or available as a kernel module");
    let registered = match root.read("/proc/filesystems") {
        Ok(t) => Some(t.lines().any(|l| l.split_whitespace().last() == Some(fs))),
        Err(_) => None,
    };
    if registered == Some(true) {
        return result(
            id,
            CheckStatus::Pass,
            format!("{fs} registered in /proc/filesystems"),
            &exp,
            "",
        );
    }
    let rel = root.value("/proc/sys/kernel/osrelease").ok();
    if let Some(rel) = &rel {
        let dir = format!("/lib/modules/{rel}/kernel/fs/{fs}");
        if let Some(m) = root
            .list_opt(&dir)
            .unwrap_or_default()
            .into_iter()
            .find(|f| f.starts_with(&format!("{fs}.ko")))
        {
            return result(
                id,
                CheckStatus::Pass,
                format!("module {dir}/{m} (loads on first mount)"),
                &exp,
                "",
            );
        }
        if let Ok(Some(b)) = root.read_opt(&format!("/lib/modules/{rel}/modules.builtin")) {
            if b.lines().any(|l| l.ends_with(&format!("/{fs}.ko"))) {
                return result(
                    id,
                    CheckStatus::Pass,
                    format!("{fs} built into the kernel"),
                    &exp,
                    "",
                );
            }
        }
    }
    match (registered, rel) {
        (None, _) | (_, None) => unknown(
            id,
            "/proc/filesystems or the kernel release unreadable",
            &exp,
        ),
        (Some(false), Some(rel)) => result(
            id,
            CheckStatus::Fail,
            format!("{fs} neither registered nor found under /lib/modules/{rel}"),
            &exp,
            format!(
                "install the kernel's extra modules (Ubuntu: apt install linux-modules-extra-{rel}; RHEL: dnf install kernel-modules-{rel}), then `modprobe {fs}`"
            ),
        ),
        _ => unreachable!("registered handled above"),
    }
}

// ------------------------------------------------------------------ NVMe

fn drives<'a>(
    inp: &'a CheckInputs,
    id: &str,
    exp: &str,
) -> Result<&'a [NvmeController], CheckResult> {
    match &inp.nvme {
        Err(e) => Err(unknown(id, e.clone(), exp)),
        Ok([]) => Err(unknown_with(
            id,
            "no NVMe drives on this host, nothing to judge",
            exp,
            "see nvme.count",
        )),
        Ok(d) => Ok(d),
    }
}

fn nvme_plp(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "nvme.plp";
    const EXP: &str =
        "no volatile-memory-backup warning and no volatile write cache (power-loss protected)";
    let d = match drives(inp, ID, EXP) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let vmb: Vec<&str> = d
        .iter()
        .filter(|c| {
            c.smart.as_ref().is_some_and(|s| {
                s.critical_warning
                    .has(CriticalWarning::VOLATILE_MEMORY_BACKUP_FAILED)
            })
        })
        .map(|c| c.name.as_str())
        .collect();
    if !vmb.is_empty() {
        return result(
            ID,
            CheckStatus::Fail,
            format!(
                "volatile memory backup device failed on {} (power-loss protection lost)",
                vmb.join(", ")
            ),
            EXP,
            "replace the drive(s): phase them out of the cluster first so their data moves, then swap them; until then their acknowledged writes are not safe on power loss",
        );
    }
    let wb: Vec<&str> = d
        .iter()
        .filter(|c| c.volatile_write_cache() == Some(true))
        .map(|c| c.name.as_str())
        .collect();
    if !wb.is_empty() {
        return result(
            ID,
            CheckStatus::Warn,
            format!(
                "volatile write cache on (write back) for {}: the drive does not declare power-loss protection",
                wb.join(", ")
            ),
            EXP,
            "use drives with power-loss protection (enterprise NVMe); check the datasheet",
        );
    }
    // Every drive must be vouched for by its SMART log and by the write cache mode of
    // every namespace; a drive whose cache mode cannot be read may be write back.
    let mut unknown_drives = Vec::new();
    for c in d {
        let mut why = Vec::new();
        if c.smart.is_none() {
            why.push("SMART unreadable".to_string());
        }
        if c.namespaces.is_empty() {
            why.push("no namespace to read the write cache mode of".to_string());
        }
        let no_cache: Vec<&str> = c
            .namespaces
            .iter()
            .filter(|n| n.write_cache.is_none())
            .map(|n| n.name.as_str())
            .collect();
        if !no_cache.is_empty() {
            why.push(format!(
                "/sys/block/{}/queue/write_cache unreadable",
                no_cache.join(",")
            ));
        }
        if !why.is_empty() {
            unknown_drives.push(format!("{}: {}", c.name, why.join(", ")));
        }
    }
    if !unknown_drives.is_empty() {
        return unknown(ID, unknown_drives.join("; "), EXP);
    }
    result(
        ID,
        CheckStatus::Pass,
        format!(
            "{}: write through, no backup warning",
            plural(d.len(), "drive")
        ),
        EXP,
        "",
    )
}

fn nvme_capacity(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "nvme.capacity";
    const EXP: &str = "each SSD sold as 30 TB or less (up to the 30.72 TB class), and smallest : largest no worse than 1 : 8 on this host";
    let d = match drives(inp, ID, EXP) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let max_class = inp.plan.max_ssd_class_gb;
    let tb = |b: u64| format_size(b, DECIMAL);
    // A controller without a namespace has no usable capacity; a namespace of 0 bytes is
    // one whose size could not be read (the collector reports the file), or one that is
    // not usable either: neither may count as a size that passes.
    let no_ns: Vec<&str> = d
        .iter()
        .filter(|c| c.namespaces.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    let no_size: Vec<String> = d
        .iter()
        .flat_map(|c| c.namespaces.iter())
        .filter(|n| n.size_bytes == 0)
        .map(|n| format!("/sys/block/{}/size", n.name))
        .collect();
    let sized: Vec<(&NvmeController, u64, u64)> = d
        .iter()
        .filter(|c| !c.namespaces.is_empty() && c.namespaces.iter().all(|n| n.size_bytes > 0))
        .map(|c| (c, c.capacity_bytes(), marketed_gb(c.capacity_bytes())))
        .collect();
    let big: Vec<String> = sized
        .iter()
        .filter(|(_, _, gb)| *gb > max_class)
        .map(|(c, b, gb)| format!("{} {} ({} class)", c.name, tb(*b), class_label(*gb)))
        .collect();
    let extremes = sized
        .iter()
        .min_by_key(|s| s.1)
        .zip(sized.iter().max_by_key(|s| s.1));
    if let Some((lo, hi)) = extremes {
        let too_spread = hi.1 > lo.1.saturating_mul(8);
        if !big.is_empty() || too_spread {
            let mut why = Vec::new();
            let mut fix = Vec::new();
            if !big.is_empty() {
                why.push(format!(
                    "sold larger than 30 TB (judged by marketed class; the 30.72 TB class is the largest accepted): {}",
                    big.join(", ")
                ));
                fix.push("use SSDs sold as 30 TB (30.72 TB) or less");
            }
            if too_spread {
                why.push(format!(
                    "smallest {} {} : largest {} {} = 1:{:.2}, worse than 1:8 on this host alone",
                    lo.0.name,
                    tb(lo.1),
                    hi.0.name,
                    tb(hi.1),
                    hi.1 as f64 / lo.1 as f64
                ));
                fix.push("keep the smallest and largest SSD within 1:8 (replace the smallest drives, or move the odd ones to another cluster)");
            }
            return result(ID, CheckStatus::Fail, why.join("; "), EXP, fix.join("; "));
        }
    }
    let range = match extremes {
        Some((lo, hi)) => format!("{} – {}", tb(lo.1), tb(hi.1)),
        None => "no drive size known".into(),
    };
    if !no_ns.is_empty() {
        return result(
            ID,
            CheckStatus::Warn,
            format!("{range}; no namespace on {}", no_ns.join(", ")),
            EXP,
            format!(
                "create and attach a namespace covering the drive (`nvme create-ns /dev/{0} …; nvme attach-ns /dev/{0} …`), or remove it from the plan",
                no_ns[0]
            ),
        );
    }
    if !no_size.is_empty() {
        return unknown(
            ID,
            format!("{range}; size unreadable or 0 in {}", no_size.join(", ")),
            EXP,
        );
    }
    let Some((lo, hi)) = extremes else {
        return unknown(ID, range, EXP);
    };
    // The rule applied, in the observed text: sizes are judged by the class they are sold
    // as (the IDEMA size a byte count holds), so a 30.72 TB drive is the "30 TB" class.
    result(
        ID,
        CheckStatus::Pass,
        format!(
            "{}, {range}; judged by marketed class: largest {} is the {} class{}; smallest : largest 1:{:.2}",
            plural(sized.len(), "drive"),
            hi.0.name,
            class_label(hi.2),
            if hi.1 > 30_000_000_000_000 {
                ", sold as 30 TB, within the seed's up to 30 TB"
            } else {
                ""
            },
            hi.1 as f64 / lo.1 as f64
        ),
        EXP,
        "",
    )
}

fn nvme_count(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "nvme.count";
    const EXP: &str = "2, 4 or 8 NVMe drives";
    match &inp.nvme {
        Err(e) => unknown(ID, e.clone(), EXP),
        Ok(d) if matches!(d.len(), 2 | 4 | 8) => result(
            ID,
            CheckStatus::Pass,
            plural(d.len(), "NVMe drive"),
            EXP,
            "",
        ),
        Ok(d) => result(
            ID,
            CheckStatus::Fail,
            if d.is_empty() {
                "no NVMe drives".to_string()
            } else {
                plural(d.len(), "NVMe drive")
            },
            EXP,
            "fit 2, 4 or 8 NVMe drives per server (the bare-metal plan has one drive core per drive, up to 8)",
        ),
    }
}

fn nvme_health(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "nvme.health";
    const EXP: &str = "no critical warnings, media errors or worn-out drives";
    let d = match drives(inp, ID, EXP) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut worst = HealthLevel::Ok;
    let mut notes = Vec::new();
    for c in d {
        // The volatile-memory-backup bit is judged by nvme.plp.
        let h = c.health_ignoring(CriticalWarning::VOLATILE_MEMORY_BACKUP_FAILED);
        if h.level > HealthLevel::Ok {
            notes.push(format!("{}: {}", c.name, h.reasons.join(", ")));
        }
        worst = worst.max(h.level);
    }
    let status = match worst {
        HealthLevel::Ok => CheckStatus::Pass,
        HealthLevel::Unknown => CheckStatus::Unknown,
        HealthLevel::Warning => CheckStatus::Warn,
        HealthLevel::Critical => CheckStatus::Fail,
    };
    let observed = if notes.is_empty() {
        format!("{} healthy", plural(d.len(), "drive"))
    } else {
        notes.join("; ")
    };
    result(
        ID,
        status,
        observed,
        EXP,
        "read the drive's error log (`nvme error-log /dev/nvmeN`); plan a replacement, phasing the drive out first, if the errors grow",
    )
}

// ------------------------------------------------------------------ ports

fn ports_open(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "ports.open";
    const EXP: &str =
        "every cluster port reachable (open, or closed with no listener) between nodes";
    let p = match &inp.probes {
        None => {
            return unknown_with(
                ID,
                "no peers to probe",
                EXP,
                "give the peers: `axon check --peers 'axon[001-022]'` (the agent probes its --peers continuously)",
            );
        }
        Some(Err(e)) => return unknown(ID, e.clone(), EXP),
        Some(Ok(p)) => *p,
    };
    if p.results.is_empty() {
        return unknown_with(
            ID,
            "no probe results yet",
            EXP,
            "wait for the first probe round",
        );
    }
    let blocked: Vec<String> = p
        .blocked()
        .map(|r| {
            format!(
                "{}:{}/{} {}",
                r.peer,
                r.port,
                r.proto.as_str(),
                r.state.as_str()
            )
        })
        .collect();
    let open = p
        .results
        .iter()
        .filter(|r| r.state == crate::model::probes::ProbeState::Open)
        .count();
    if blocked.is_empty() {
        result(
            ID,
            CheckStatus::Pass,
            format!(
                "{} to {}: {open} open, {} closed (no listener)",
                plural(p.results.len(), "probe"),
                plural(p.peers.len(), "peer"),
                p.results.len() - open
            ),
            EXP,
            "",
        )
    } else {
        let shown: Vec<&String> = blocked.iter().take(5).collect();
        let more = if blocked.len() > 5 {
            format!(" and {} more", blocked.len() - 5)
        } else {
            String::new()
        };
        result(
            ID,
            CheckStatus::Fail,
            format!(
                "{} of {} blocked: {}{more}",
                blocked.len(),
                plural(p.results.len(), "probe"),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            EXP,
            "open 14000-14100, 15000-15100, 16000-16100 (TCP+UDP), 22, 123, 443, 5696, 8200-8201 (TCP) between all nodes in the host and network firewalls",
        )
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

//! Judges of the dataplane NICs: their NUMA domains against the Axon cores, MTU,
//! source-based routing, ARP and reverse-path filtering.

use super::{CheckInputs, axon_cpus, nic_numa_nodes, nics_unreadable, plural, result, unknown};
use crate::model::checks::{CheckResult, CheckStatus};
use crate::model::cpuset::CpuSet;
use crate::model::net::{Network, Nic, parse_v4_cidr, subnet_of};
use crate::model::plan::planned_cores;
use std::collections::BTreeSet;

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

/// A pass judged on the readable dataplane NICs only is unknown while other possible
/// dataplane NICs could not be read; a warning or failure stands.
pub(super) fn unless_nics_unreadable(inp: &CheckInputs, r: CheckResult) -> CheckResult {
    match &inp.network {
        Ok(n) if r.status == CheckStatus::Pass && !n.unreadable_nics.is_empty() => unknown(
            &r.id,
            format!("{}; but {}", r.observed, nics_unreadable(n)),
            &r.expected,
        ),
        _ => r,
    }
}

pub fn numa_nic_balance(inp: &CheckInputs) -> CheckResult {
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

pub fn net_mtu(inp: &CheckInputs) -> CheckResult {
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

pub fn net_sbr(inp: &CheckInputs) -> CheckResult {
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

pub fn net_arp(inp: &CheckInputs) -> CheckResult {
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

pub fn net_rp_filter(inp: &CheckInputs) -> CheckResult {
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

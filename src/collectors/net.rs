//! Network interfaces from /sys/class/net (type, MTU, speed, state, NUMA node, driver),
//! their IPv4 ARP and rp_filter sysctls, their addresses, and the source-based routing
//! (policy rule plus table) that exists for each.

use super::{CollectError, HostRoot, Problems};
use crate::model::net::{
    DataplaneSelection, IpConf, Network, Nic, NicKind, Route, RoutingRule, SbrRule, parse_v4_cidr,
    v4_contains,
};
use compact_str::format_compact;
use std::net::Ipv4Addr;

const NET_DIR: &str = "/sys/class/net";

/// Which NICs carry the data plane.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// Names given with `--dataplane-nic`; empty means auto-detect.
    pub dataplane: Vec<String>,
}

pub fn collect(
    root: &HostRoot,
    cfg: &NetConfig,
    problems: &mut Problems,
) -> Result<Network, CollectError> {
    let names = root.list(NET_DIR)?;
    let kernel_release = root.value_opt("/proc/sys/kernel/osrelease").ok().flatten();
    let mut nics = Vec::new();
    let mut unreadable_nics = Vec::new();
    for name in names {
        let base = format!("{NET_DIR}/{name}");
        // None: whether it is a physical NIC is unknown (its device link unreadable).
        let physical = problems.take(root.exists(&format!("{base}/device")));
        let arphrd = match root.parse::<u32>(&format!("{base}/type")) {
            Ok(t) if physical.is_some() => t,
            read => {
                // Without its type (or without knowing whether it is physical) a NIC
                // cannot be judged; if it could be a dataplane NIC, say so, so the
                // dataplane checks do not pass without it.
                if let Err(e) = read {
                    problems.push(e);
                }
                let configured = cfg.dataplane.contains(&name);
                if configured || (cfg.dataplane.is_empty() && physical != Some(false)) {
                    unreadable_nics.push(name);
                }
                continue;
            }
        };
        let physical = physical == Some(true);
        let uevent = if physical {
            root.read_opt(&format!("{base}/device/uevent"))
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            String::new()
        };
        let uevent_value = |key: &str| {
            uevent
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .map(str::to_string)
        };
        let driver = uevent_value("DRIVER").or_else(|| {
            physical
                .then(|| root.link_name(&format!("{base}/device/driver")))
                .flatten()
        });
        // Out-of-tree drivers (OFED) publish a version; in-tree ones report the kernel
        // release, as `ethtool -i` does.
        let driver_version = driver.as_ref().and_then(|d| {
            root.value_opt(&format!("/sys/module/{d}/version"))
                .ok()
                .flatten()
                .or_else(|| kernel_release.clone())
        });
        // Reading `speed` of a link that is down fails with EINVAL; that is "unknown".
        let speed_mbps = root
            .parse_opt::<i64>(&format!("{base}/speed"))
            .ok()
            .flatten()
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s > 0);
        let numa_node = if physical {
            problems
                .take(root.parse_opt::<i32>(&format!("{base}/device/numa_node")))
                .flatten()
                .filter(|n| *n >= 0)
        } else {
            None
        };
        nics.push(Nic {
            kind: NicKind::from_arphrd(arphrd),
            arphrd,
            mtu: problems.take(root.parse::<u32>(&format!("{base}/mtu"))),
            speed_mbps,
            // Empty when unreadable ("unknown" is a state the kernel reports).
            operstate: problems
                .take(root.value(&format!("{base}/operstate")))
                .unwrap_or_default()
                .into(),
            numa_node,
            driver: driver.map(Into::into),
            driver_version: driver_version.map(Into::into),
            mac: root
                .value_opt(&format!("{base}/address"))
                .ok()
                .flatten()
                .filter(|m| !m.is_empty())
                .map(Into::into),
            pci_address: uevent_value("PCI_SLOT_NAME").map(Into::into),
            physical,
            dataplane: false,
            addresses: Vec::new(),
            ipconf: ipconf(root, &name, problems),
            sbr: Vec::new(),
            name: name.into(),
        });
    }

    let all = ipconf(root, "all", problems);
    let default = ipconf(root, "default", problems);

    let (rules, routes, routing_error) = match root.sys().routing() {
        Ok(f) => {
            for (ifname, addr) in f.addresses {
                if let Some(n) = nics.iter_mut().find(|n| n.name == ifname) {
                    n.addresses.push(addr);
                }
            }
            (f.rules, f.routes, None)
        }
        Err(e) => {
            let msg = e.to_string();
            problems.push(e);
            (Vec::new(), Vec::new(), Some(msg))
        }
    };

    let selection = select_dataplane(&mut nics, &unreadable_nics, &routes, cfg, problems);
    for nic in nics.iter_mut() {
        nic.sbr = sbr_for(nic, &rules, &routes);
    }
    Ok(Network {
        nics,
        all,
        default,
        rules,
        routes,
        dataplane_selection: selection,
        routing_error,
        unreadable_nics,
    })
}

fn ipconf(root: &HostRoot, scope: &str, problems: &mut Problems) -> IpConf {
    let dir = format!("/proc/sys/net/ipv4/conf/{scope}");
    match root.exists(&dir) {
        Ok(true) => {}
        // Interfaces without IPv4 (or a host without the files) simply have no values.
        Ok(false) => return IpConf::default(),
        // Unknown values: the checks on them say unreadable.
        Err(e) => {
            problems.push(e);
            return IpConf::default();
        }
    }
    let mut get = |k: &str| problems.take(root.parse::<i32>(&format!("{dir}/{k}")));
    IpConf {
        arp_filter: get("arp_filter"),
        arp_announce: get("arp_announce"),
        arp_ignore: get("arp_ignore"),
        rp_filter: get("rp_filter"),
    }
}

fn select_dataplane(
    nics: &mut [Nic],
    unreadable: &[String],
    routes: &[Route],
    cfg: &NetConfig,
    problems: &mut Problems,
) -> DataplaneSelection {
    if !cfg.dataplane.is_empty() {
        for want in &cfg.dataplane {
            match nics.iter_mut().find(|n| n.name == want) {
                Some(n) => n.dataplane = true,
                // Present but its type unreadable: that problem is already reported.
                None if unreadable.contains(want) => {}
                None => problems.push(CollectError::Invalid {
                    what: format!("--dataplane-nic {want}"),
                    detail: "no such interface in /sys/class/net — check the name with `ip link`"
                        .into(),
                }),
            }
        }
        return DataplaneSelection::Configured;
    }
    let candidates: Vec<usize> = nics
        .iter()
        .enumerate()
        .filter(|(_, n)| n.physical && matches!(n.kind, NicKind::Ethernet | NicKind::Infiniband))
        .map(|(i, _)| i)
        .collect();
    // The NIC carrying the main table's default route is management, unless it is the
    // only candidate (then it is all this host has, and the checks judge it).
    let mgmt: Vec<&str> = routes
        .iter()
        .filter(|r| r.table == 254 && r.dst == "default")
        .filter_map(|r| r.dev.as_deref())
        .collect();
    let non_mgmt: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|i| !mgmt.contains(&nics[*i].name.as_str()))
        .collect();
    let chosen = if non_mgmt.is_empty() {
        candidates
    } else {
        non_mgmt
    };
    for i in chosen {
        nics[i].dataplane = true;
    }
    DataplaneSelection::Auto
}

fn sbr_for(nic: &Nic, rules: &[RoutingRule], routes: &[Route]) -> Vec<SbrRule> {
    let addrs: Vec<Ipv4Addr> = nic
        .ipv4_addresses()
        .filter_map(|a| parse_v4_cidr(&a.cidr).map(|(ip, _)| ip))
        .collect();
    let mut out = Vec::new();
    for r in rules {
        // unspec (0), default (253), main (254) and local (255) are the stock tables, not
        // SBR; every other id is a user table, including those above 255 (`table 1000`).
        if r.table == 0 || (253..=255).contains(&r.table) {
            continue;
        }
        let matches_src = r
            .from
            .as_deref()
            .and_then(parse_v4_cidr)
            .is_some_and(|net| addrs.iter().any(|a| v4_contains(net, *a)));
        let matches_if = r.iif.as_deref() == Some(&nic.name) || r.oif.as_deref() == Some(&nic.name);
        if !(matches_src || matches_if) {
            continue;
        }
        out.push(SbrRule {
            priority: r.priority,
            from: r
                .from
                .clone()
                .or_else(|| r.oif.as_ref().map(|o| format_compact!("oif {o}")))
                .or_else(|| r.iif.as_ref().map(|i| format_compact!("iif {i}")))
                .unwrap_or_else(|| "all".into()),
            table: r.table,
            table_routes_via_nic: routes
                .iter()
                .any(|rt| rt.table == r.table && rt.dev.as_deref() == Some(&nic.name)),
        });
    }
    out
}

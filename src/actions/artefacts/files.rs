//! The system files of the seed's "Linux system configuration", ready to drop in place:
//! the systemd override for graceful shutdown, the sysctl file (NUMA balancing off, ARP
//! and rp_filter per dataplane NIC), and source-based routing per dataplane NIC as `ip`
//! commands, a NetworkManager script and a netplan file.

use super::{Artefact, PlannedNode};
use crate::model::hostlist;
use crate::model::net::{Network, parse_v4_cidr, subnet_of};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// First routing table used for source-based routing (one per dataplane NIC, in order),
/// as the `net.sbr` check's remedy numbers them.
pub const FIRST_TABLE: u32 = 101;

pub const SHUTDOWN_OVERRIDE: &str = "\
# Graceful shutdown for NeuralMesh Axon (the seed's systemd override): give the
# containers 30 s to stop, then reboot rather than hang.
# Install: /etc/systemd/system/poweroff.target.d/override.conf, then
#   systemctl daemon-reexec
[Unit]
JobTimeoutSec=30s
JobTimeoutAction=reboot
";

/// One dataplane NIC's source-based routing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sbr {
    pub nic: String,
    pub address: String,
    pub prefix: u8,
    pub subnet: String,
    pub table: u32,
}

/// The SBR of each dataplane NIC with an IPv4 address; NICs without one are returned by
/// name (they cannot be routed by source until they have an address).
pub fn sbr(net: &Network) -> (Vec<Sbr>, Vec<String>) {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (i, n) in net.dataplane().enumerate() {
        match n.ipv4_addresses().find_map(|a| parse_v4_cidr(&a.cidr)) {
            Some((addr, prefix)) => out.push(Sbr {
                nic: n.name.to_string(),
                address: addr.to_string(),
                prefix,
                subnet: subnet_of(addr, prefix),
                table: FIRST_TABLE + i as u32,
            }),
            None => missing.push(n.name.to_string()),
        }
    }
    (out, missing)
}

pub fn sysctl(nics: &[String]) -> String {
    let mut s = String::from(
        "# NeuralMesh Axon kernel settings (the seed's): install as\n\
         # /etc/sysctl.d/99-axon.conf, then `sysctl --system`.\n\
         kernel.numa_balancing = 0\n",
    );
    for d in nics.iter().map(String::as_str).chain(["all", "default"]) {
        let _ = writeln!(
            s,
            "net.ipv4.conf.{d}.arp_filter = 1\n\
             net.ipv4.conf.{d}.arp_announce = 2\n\
             net.ipv4.conf.{d}.arp_ignore = 1"
        );
    }
    for d in nics {
        let _ = writeln!(s, "net.ipv4.conf.{d}.rp_filter = 2");
    }
    s
}

pub fn sbr_ip(rules: &[Sbr]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # Source-based routing per dataplane NIC (the seed's \"Configure Source Based Routing\n\
         # policies for every dataplane NIC\"): replies leave by the NIC the request came in on.\n\
         # Idempotent: `replace` and a delete before each add. Persist with the\n\
         # NetworkManager or netplan form next to this file.\n\
         set -eu\n",
    );
    for r in rules {
        let _ = writeln!(
            s,
            "ip route replace {subnet} dev {nic} src {addr} table {t}\n\
             ip rule del from {addr} table {t} 2>/dev/null || true\n\
             ip rule add from {addr} table {t}",
            subnet = r.subnet,
            nic = r.nic,
            addr = r.address,
            t = r.table
        );
    }
    s
}

pub fn sbr_nmcli(rules: &[Sbr]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # Source-based routing kept by NetworkManager (run once; `nmcli connection up` applies).\n\
         # Assumes each connection is named after its interface; check with `nmcli -g NAME,DEVICE c`.\n\
         set -eu\n",
    );
    for r in rules {
        let _ = writeln!(
            s,
            "nmcli connection modify {nic} ipv4.routes \"{subnet} table={t}\" ipv4.routing-rules \"priority {t} from {addr} table {t}\"\n\
             nmcli connection up {nic}",
            nic = r.nic,
            subnet = r.subnet,
            addr = r.address,
            t = r.table
        );
    }
    s
}

pub fn sbr_netplan(rules: &[Sbr]) -> String {
    let mut s = String::from(
        "# Source-based routing for netplan: /etc/netplan/60-axon-sbr.yaml, then `netplan apply`.\n\
         network:\n  version: 2\n  ethernets:\n",
    );
    for r in rules {
        let _ = writeln!(
            s,
            "    {nic}:\n      routes:\n        - to: {subnet}\n          scope: link\n          table: {t}\n      routing-policy:\n        - from: {addr}\n          table: {t}",
            nic = r.nic,
            subnet = r.subnet,
            addr = r.address,
            t = r.table
        );
    }
    s
}

/// The files for `nodes`. Nodes with the same dataplane NIC names share one sysctl file;
/// SBR is per node (each has its own addresses), under `<node>/`.
pub fn artefacts(nodes: &[PlannedNode]) -> Result<Vec<Artefact>, String> {
    let mut out = vec![Artefact {
        name: "poweroff.target.d/override.conf".into(),
        install_to: "/etc/systemd/system/poweroff.target.d/override.conf; systemctl daemon-reexec"
            .into(),
        text: SHUTDOWN_OVERRIDE.into(),
    }];
    let mut by_nics: BTreeMap<Vec<String>, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        let net = n
            .network
            .ok_or_else(|| format!("{}: no network facts reported", n.name))?;
        let names: Vec<String> = net.dataplane().map(|x| x.name.to_string()).collect();
        by_nics.entry(names).or_default().push(n.name);
    }
    let single = by_nics.len() == 1;
    for (nics, names) in &by_nics {
        let name = if single {
            "99-axon.conf".to_string()
        } else {
            format!("{}/99-axon.conf", hostlist::compress(names))
        };
        out.push(Artefact {
            name,
            install_to: format!(
                "/etc/sysctl.d/99-axon.conf on {}; sysctl --system",
                hostlist::compress(names)
            ),
            text: sysctl(nics),
        });
    }
    for n in nodes {
        let net = n.network.expect("checked above");
        let (rules, missing) = sbr(net);
        let dir = if nodes.len() == 1 {
            String::new()
        } else {
            format!("{}/", n.name)
        };
        let mut ip = sbr_ip(&rules);
        for m in &missing {
            let _ = writeln!(
                ip,
                "# {m}: no IPv4 address, so no source rule; give it its dataplane address first"
            );
        }
        out.push(Artefact {
            name: format!("{dir}sbr-ip.sh"),
            install_to: format!("run on {} (as root)", n.name),
            text: ip,
        });
        out.push(Artefact {
            name: format!("{dir}sbr-nmcli.sh"),
            install_to: format!("run on {} with NetworkManager", n.name),
            text: sbr_nmcli(&rules),
        });
        out.push(Artefact {
            name: format!("{dir}60-axon-sbr.yaml"),
            install_to: format!("/etc/netplan/60-axon-sbr.yaml on {}; netplan apply", n.name),
            text: sbr_netplan(&rules),
        });
    }
    Ok(out)
}

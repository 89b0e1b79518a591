//! Network interfaces, their kernel settings that matter to Axon (MTU, ARP, reverse path
//! filtering) and the source-based routing that exists for each of them.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicKind {
    Ethernet,
    Infiniband,
    Loopback,
    Other,
}

impl NicKind {
    /// From the ARPHRD_* value in `/sys/class/net/<if>/type`.
    pub fn from_arphrd(t: u32) -> Self {
        match t {
            1 => NicKind::Ethernet,
            32 => NicKind::Infiniband,
            772 => NicKind::Loopback,
            _ => NicKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NicKind::Ethernet => "ethernet",
            NicKind::Infiniband => "infiniband",
            NicKind::Loopback => "loopback",
            NicKind::Other => "other",
        }
    }

    /// The seed's jumbo-frame requirement: 9k for Ethernet, 4k ("4092") for InfiniBand.
    pub fn required_mtu(self) -> Option<u32> {
        match self {
            NicKind::Ethernet => Some(9000),
            NicKind::Infiniband => Some(4092),
            _ => None,
        }
    }
}

/// IPv4 ARP and reverse-path settings from `/proc/sys/net/ipv4/conf/<scope>/`.
/// None when the file could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConf {
    pub arp_filter: Option<i32>,
    pub arp_announce: Option<i32>,
    pub arp_ignore: Option<i32>,
    pub rp_filter: Option<i32>,
}

impl IpConf {
    /// The value the kernel acts on for a device, given the `all` scope: arp_filter is
    /// on if either is on; arp_announce, arp_ignore and rp_filter use the maximum
    /// (Documentation/networking/ip-sysctl.rst).
    pub fn effective(&self, all: &IpConf) -> IpConf {
        fn max(a: Option<i32>, b: Option<i32>) -> Option<i32> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            }
        }
        IpConf {
            arp_filter: match (self.arp_filter, all.arp_filter) {
                (Some(a), Some(b)) => Some(i32::from(a != 0 || b != 0)),
                _ => None,
            },
            arp_announce: max(self.arp_announce, all.arp_announce),
            arp_ignore: max(self.arp_ignore, all.arp_ignore),
            rp_filter: max(self.rp_filter, all.rp_filter),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpAddress {
    /// `10.10.1.11/24`
    pub cidr: CompactString,
    pub family: AddressFamily,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressFamily {
    Ipv4,
    Ipv6,
}

/// A policy-routing rule (`ip rule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    pub priority: u32,
    /// Source selector (`from 10.10.1.11` or `from 10.10.1.0/24`); None is `from all`.
    pub from: Option<CompactString>,
    pub iif: Option<CompactString>,
    pub oif: Option<CompactString>,
    pub table: u32,
}

/// A route (`ip route show table all`), reduced to what SBR checks need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub table: u32,
    /// `default` or a prefix such as `10.10.1.0/24`.
    pub dst: CompactString,
    pub dev: Option<CompactString>,
    pub gateway: Option<CompactString>,
    pub src: Option<CompactString>,
}

/// The source-based routing that exists for one NIC: a rule selecting its address or
/// subnet, and whether the rule's table routes through the NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbrRule {
    pub priority: u32,
    pub from: CompactString,
    pub table: u32,
    pub table_routes_via_nic: bool,
}

/// Names, addresses and driver strings are short: CompactStrings hold those of up to 24
/// bytes inline (interface names are at most 15).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub name: CompactString,
    pub kind: NicKind,
    /// Raw ARPHRD_* type.
    pub arphrd: u32,
    pub mtu: Option<u32>,
    /// Link speed in Mb/s; None when down or unknown (the kernel reports -1).
    pub speed_mbps: Option<u32>,
    pub operstate: CompactString,
    pub numa_node: Option<i32>,
    pub driver: Option<CompactString>,
    pub driver_version: Option<CompactString>,
    pub mac: Option<CompactString>,
    pub pci_address: Option<CompactString>,
    /// Has a backing device (not lo, bridges, veth, bonds…).
    pub physical: bool,
    /// Chosen as a dataplane NIC (configured, or auto-detected).
    pub dataplane: bool,
    pub addresses: Vec<IpAddress>,
    pub ipconf: IpConf,
    pub sbr: Vec<SbrRule>,
}

/// One setting of a dataplane NIC judged by the seed's rule: right, wrong, or not
/// readable (then it is never shown as right).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Finding {
    #[default]
    Ok,
    Bad,
    Unknown,
}

impl Finding {
    fn judge(fact: Option<bool>) -> Finding {
        match fact {
            Some(true) => Finding::Ok,
            Some(false) => Finding::Bad,
            None => Finding::Unknown,
        }
    }
}

/// A dataplane NIC's settings by the rules of the net.* checks: jumbo MTU, ARP settings
/// per WEKA's sbr-config, rp_filter not strict, a source rule to a table that routes via
/// the NIC. All Ok for other NICs: they carry no Axon traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NicFindings {
    pub mtu: Finding,
    pub arp: Finding,
    pub rp_filter: Finding,
    pub sbr: Finding,
}

impl NicFindings {
    /// How wrong, for sorting: a wrong setting weighs 2, an unreadable one 1.
    pub fn weight(&self) -> u32 {
        [self.mtu, self.arp, self.rp_filter, self.sbr]
            .iter()
            .map(|f| match f {
                Finding::Ok => 0,
                Finding::Unknown => 1,
                Finding::Bad => 2,
            })
            .sum()
    }
}

impl Nic {
    /// Findings for this NIC on `net` (its `all` scope and whether routing was readable).
    pub fn findings(&self, net: &Network) -> NicFindings {
        if !self.dataplane {
            return NicFindings::default();
        }
        let e = self.ipconf.effective(&net.all);
        let arp = match (e.arp_filter, e.arp_announce, e.arp_ignore) {
            (Some(f), Some(a), Some(i)) => Some((f, a, i) == (1, 2, 1)),
            _ => None,
        };
        NicFindings {
            mtu: match self.kind.required_mtu() {
                Some(r) => Finding::judge(self.mtu.map(|m| m >= r)),
                None => Finding::Ok,
            },
            arp: Finding::judge(arp),
            rp_filter: Finding::judge(e.rp_filter.map(|v| v != 1)),
            sbr: if net.routing_error.is_some() {
                Finding::Unknown
            } else {
                Finding::judge(Some(self.sbr.iter().any(|r| r.table_routes_via_nic)))
            },
        }
    }

    pub fn ipv4_addresses(&self) -> impl Iterator<Item = &IpAddress> {
        self.addresses
            .iter()
            .filter(|a| a.family == AddressFamily::Ipv4)
    }

    pub fn is_up(&self) -> bool {
        self.operstate == "up"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataplaneSelection {
    /// `--dataplane-nic` named them.
    Configured,
    /// Physical Ethernet/InfiniBand NICs, excluding the management NIC that carries the
    /// main table's default route when there are others.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub nics: Vec<Nic>,
    pub all: IpConf,
    pub default: IpConf,
    pub rules: Vec<RoutingRule>,
    pub routes: Vec<Route>,
    pub dataplane_selection: DataplaneSelection,
    /// Routing facts could not be read (netlink error); NIC facts may still be present.
    pub routing_error: Option<String>,
    /// Interfaces that could be dataplane NICs (physical, or named by --dataplane-nic) but
    /// whose `type` could not be read: they are left out of `nics`, and the checks on
    /// dataplane NICs cannot pass while they are unknown.
    #[serde(default)]
    pub unreadable_nics: Vec<String>,
}

impl Network {
    pub fn dataplane(&self) -> impl Iterator<Item = &Nic> {
        self.nics.iter().filter(|n| n.dataplane)
    }

    pub fn nic(&self, name: &str) -> Option<&Nic> {
        self.nics.iter().find(|n| n.name == name)
    }
}

/// Addresses, policy rules and routes of every table, as netlink (or a captured `ip -j`)
/// reports them: what the network collector builds `Network`'s addresses and SBR from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingFacts {
    /// (interface name, address)
    pub addresses: Vec<(String, IpAddress)>,
    pub rules: Vec<RoutingRule>,
    pub routes: Vec<Route>,
}

/// Parses `10.10.1.11/24` (or a bare address as /32).
pub fn parse_v4_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse().ok()?),
        None => (s, 32),
    };
    if l > 32 {
        return None;
    }
    Some((a.parse().ok()?, l))
}

/// The network of an address: `10.10.1.11`, 24 → `10.10.1.0/24`.
pub fn subnet_of(addr: Ipv4Addr, len: u8) -> String {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    };
    let net = Ipv4Addr::from(u32::from(addr) & mask);
    format!("{net}/{len}")
}

pub fn v4_contains(net: (Ipv4Addr, u8), addr: Ipv4Addr) -> bool {
    let mask = if net.1 == 0 {
        0
    } else {
        u32::MAX << (32 - net.1)
    };
    (u32::from(net.0) & mask) == (u32::from(addr) & mask)
}

/// NICs and networks for unit tests across the model.
#[cfg(test)]
pub(crate) mod test_data {
    use super::*;

    pub fn dataplane_nic(mtu: Option<u32>) -> Nic {
        Nic {
            name: "ens1".into(),
            kind: NicKind::Ethernet,
            arphrd: 1,
            mtu,
            speed_mbps: None,
            operstate: "up".into(),
            numa_node: Some(0),
            driver: None,
            driver_version: None,
            mac: None,
            pci_address: None,
            physical: true,
            dataplane: true,
            addresses: vec![],
            ipconf: IpConf {
                arp_filter: Some(1),
                arp_announce: Some(2),
                arp_ignore: Some(1),
                rp_filter: Some(2),
            },
            sbr: vec![SbrRule {
                priority: 100,
                from: "10.0.0.1".into(),
                table: 101,
                table_routes_via_nic: true,
            }],
        }
    }

    pub fn network(nic: Nic, routing_error: Option<String>) -> Network {
        Network {
            nics: vec![nic],
            all: IpConf {
                arp_filter: Some(0),
                arp_announce: Some(0),
                arp_ignore: Some(0),
                rp_filter: Some(0),
            },
            default: IpConf::default(),
            rules: vec![],
            routes: vec![],
            dataplane_selection: DataplaneSelection::Auto,
            routing_error,
            unreadable_nics: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_ipconf_follows_kernel_rules() {
        let dev = IpConf {
            arp_filter: Some(0),
            arp_announce: Some(2),
            arp_ignore: Some(0),
            rp_filter: Some(0),
        };
        let all = IpConf {
            arp_filter: Some(1),
            arp_announce: Some(0),
            arp_ignore: Some(1),
            rp_filter: Some(2),
        };
        let e = dev.effective(&all);
        assert_eq!(e.arp_filter, Some(1));
        assert_eq!(e.arp_announce, Some(2));
        assert_eq!(e.arp_ignore, Some(1));
        assert_eq!(e.rp_filter, Some(2));
        let unread = IpConf::default().effective(&all);
        assert_eq!(unread.rp_filter, None);
    }

    use super::test_data::{dataplane_nic, network as net};

    #[test]
    fn nic_findings_say_unknown_when_a_setting_is_unreadable() {
        let good = net(dataplane_nic(Some(9000)), None);
        assert_eq!(good.nics[0].findings(&good), NicFindings::default());
        let small = net(dataplane_nic(Some(1500)), None);
        assert_eq!(small.nics[0].findings(&small).mtu, Finding::Bad);
        let unread = net(dataplane_nic(None), Some("netlink: EPERM".into()));
        let f = unread.nics[0].findings(&unread);
        assert_eq!((f.mtu, f.sbr), (Finding::Unknown, Finding::Unknown));
        assert_eq!(f.weight(), 2);
        let mut quiet = dataplane_nic(Some(1500));
        quiet.dataplane = false;
        let q = net(quiet, None);
        assert_eq!(
            q.nics[0].findings(&q),
            NicFindings::default(),
            "not Axon's NIC"
        );
    }

    #[test]
    fn cidr_containment() {
        let net = parse_v4_cidr("10.10.1.0/24").unwrap();
        assert!(v4_contains(net, "10.10.1.11".parse().unwrap()));
        assert!(!v4_contains(net, "10.10.2.11".parse().unwrap()));
        assert!(v4_contains(
            parse_v4_cidr("0.0.0.0/0").unwrap(),
            "1.2.3.4".parse().unwrap()
        ));
        assert_eq!(
            parse_v4_cidr("10.0.0.1"),
            Some(("10.0.0.1".parse().unwrap(), 32))
        );
        assert_eq!(parse_v4_cidr("10.0.0.1/33"), None);
        assert_eq!(parse_v4_cidr("nonsense"), None);
    }
}

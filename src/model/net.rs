//! Network interfaces, their kernel settings that matter to Axon (MTU, ARP, reverse path
//! filtering) and the source-based routing that exists for each of them.

use serde::{Deserialize, Serialize};

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
    pub cidr: String,
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
    pub from: Option<String>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub table: u32,
}

/// A route (`ip route show table all`), reduced to what SBR checks need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub table: u32,
    /// `default` or a prefix such as `10.10.1.0/24`.
    pub dst: String,
    pub dev: Option<String>,
    pub gateway: Option<String>,
    pub src: Option<String>,
}

/// The source-based routing that exists for one NIC: a rule selecting its address or
/// subnet, and whether the rule's table routes through the NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbrRule {
    pub priority: u32,
    pub from: String,
    pub table: u32,
    pub table_routes_via_nic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub name: String,
    pub kind: NicKind,
    /// Raw ARPHRD_* type.
    pub arphrd: u32,
    pub mtu: Option<u32>,
    /// Link speed in Mb/s; None when down or unknown (the kernel reports -1).
    pub speed_mbps: Option<u32>,
    pub operstate: String,
    pub numa_node: Option<i32>,
    pub driver: Option<String>,
    pub driver_version: Option<String>,
    pub mac: Option<String>,
    pub pci_address: Option<String>,
    /// Has a backing device (not lo, bridges, veth, bonds…).
    pub physical: bool,
    /// Chosen as a dataplane NIC (configured, or auto-detected).
    pub dataplane: bool,
    pub addresses: Vec<IpAddress>,
    pub ipconf: IpConf,
    pub sbr: Vec<SbrRule>,
}

/// What is wrong with a dataplane NIC's settings, by the seed's rules (jumbo MTU, ARP
/// settings per WEKA's sbr-config, rp_filter not strict, a source rule to a table that
/// routes via the NIC). All false for other NICs: they carry no Axon traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NicFindings {
    pub mtu: bool,
    pub arp: bool,
    pub rp_filter: bool,
    pub sbr: bool,
}

impl NicFindings {
    pub fn count(&self) -> u32 {
        u32::from(self.mtu) + u32::from(self.arp) + u32::from(self.rp_filter) + u32::from(self.sbr)
    }
}

impl Nic {
    /// Findings for this NIC given the `all` scope of the IPv4 settings.
    pub fn findings(&self, all: &IpConf) -> NicFindings {
        if !self.dataplane {
            return NicFindings::default();
        }
        let e = self.ipconf.effective(all);
        NicFindings {
            mtu: self
                .kind
                .required_mtu()
                .is_some_and(|r| self.mtu.is_some_and(|m| m < r)),
            arp: (e.arp_filter, e.arp_announce, e.arp_ignore) != (Some(1), Some(2), Some(1)),
            rp_filter: e.rp_filter == Some(1),
            sbr: !self.sbr.iter().any(|r| r.table_routes_via_nic),
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
}

//! The cluster's port table (REQUIREMENTS.md §2) and axon's own default ports, which sit
//! inside the seed's core range so that no extra firewall hole is needed.

use serde::{Deserialize, Serialize};

pub const CONTROL_PORT: u16 = 14000;
pub const DATA_PORT: u16 = 14001;
pub const METRICS_PORT: u16 = 14090;
/// UDP echo the agent answers for reachability probes.
pub const ECHO_PORT: u16 = 14000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortGroup {
    pub id: &'static str,
    pub what: &'static str,
    pub ranges: &'static [(u16, u16)],
    pub tcp: bool,
    pub udp: bool,
    /// Only relevant on Kubernetes deployments.
    pub kubernetes: bool,
}

pub const PORT_GROUPS: &[PortGroup] = &[
    PortGroup {
        id: "core",
        what: "Core container traffic",
        ranges: &[(14000, 14100), (15000, 15100), (16000, 16100)],
        tcp: true,
        udp: true,
        kubernetes: false,
    },
    PortGroup {
        id: "traces",
        what: "traces remote viewer",
        ranges: &[(443, 443)],
        tcp: true,
        udp: false,
        kubernetes: false,
    },
    PortGroup {
        id: "ssh",
        what: "SSH management",
        ranges: &[(22, 22)],
        tcp: true,
        udp: false,
        kubernetes: false,
    },
    PortGroup {
        id: "ntp",
        what: "NTP management (the seed says TCP)",
        ranges: &[(123, 123)],
        tcp: true,
        udp: false,
        kubernetes: false,
    },
    PortGroup {
        id: "vault",
        what: "HashiCorp Vault",
        ranges: &[(8200, 8201)],
        tcp: true,
        udp: false,
        kubernetes: false,
    },
    PortGroup {
        id: "kmip",
        what: "KMIP",
        ranges: &[(5696, 5696)],
        tcp: true,
        udp: false,
        kubernetes: false,
    },
    PortGroup {
        id: "k8s-client",
        what: "Kubernetes client → compute/drives nodePorts",
        ranges: &[(45000, 65000)],
        tcp: true,
        udp: true,
        kubernetes: true,
    },
    PortGroup {
        id: "k8s-core",
        what: "Kubernetes operator/core nodePorts",
        ranges: &[(35000, 35499)],
        tcp: true,
        udp: true,
        kubernetes: true,
    },
];

pub fn group(id: &str) -> Option<&'static PortGroup> {
    PORT_GROUPS.iter().find(|g| g.id == id)
}

/// The group a port belongs to (first match), for labelling probe results.
pub fn group_of(port: u16) -> Option<&'static PortGroup> {
    PORT_GROUPS
        .iter()
        .find(|g| g.ranges.iter().any(|(a, b)| (*a..=*b).contains(&port)))
}

/// One port to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortSpec {
    pub port: u16,
    pub proto: Proto,
}

/// The ports probed continuously: the ports axon itself uses, the ends of every
/// non-Kubernetes range, and every single-port group. Full ranges are probed on demand.
pub fn continuous_ports() -> Vec<PortSpec> {
    let mut out = vec![
        PortSpec {
            port: CONTROL_PORT,
            proto: Proto::Tcp,
        },
        PortSpec {
            port: DATA_PORT,
            proto: Proto::Tcp,
        },
        PortSpec {
            port: METRICS_PORT,
            proto: Proto::Tcp,
        },
        PortSpec {
            port: ECHO_PORT,
            proto: Proto::Udp,
        },
    ];
    for g in PORT_GROUPS.iter().filter(|g| !g.kubernetes && g.tcp) {
        for (a, b) in g.ranges {
            out.push(PortSpec {
                port: *a,
                proto: Proto::Tcp,
            });
            out.push(PortSpec {
                port: *b,
                proto: Proto::Tcp,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every TCP port of the given groups (on-demand full sweep). UDP is only probed on the
/// echo port: elsewhere nobody answers, so open and filtered cannot be told apart.
pub fn full_ports(groups: &[&PortGroup]) -> Vec<PortSpec> {
    let mut out = Vec::new();
    for g in groups {
        if g.tcp {
            for (a, b) in g.ranges {
                for p in *a..=*b {
                    out.push(PortSpec {
                        port: p,
                        proto: Proto::Tcp,
                    });
                }
            }
        }
    }
    out.push(PortSpec {
        port: ECHO_PORT,
        proto: Proto::Udp,
    });
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_set_covers_range_ends_and_own_ports() {
        let ports = continuous_ports();
        for p in [
            14000, 14001, 14090, 14100, 15000, 15100, 16000, 16100, 22, 443, 123, 8200, 8201, 5696,
        ] {
            assert!(
                ports.iter().any(|s| s.port == p && s.proto == Proto::Tcp),
                "{p}"
            );
        }
        assert!(ports.contains(&PortSpec {
            port: 14000,
            proto: Proto::Udp
        }));
        assert!(
            !ports.iter().any(|s| s.port == 45000),
            "kubernetes ranges are on demand"
        );
    }

    #[test]
    fn ports_map_to_groups() {
        assert_eq!(group_of(15050).unwrap().id, "core");
        assert_eq!(group_of(8201).unwrap().id, "vault");
        assert!(group_of(9).is_none());
        assert_eq!(full_ports(&[group("core").unwrap()]).len(), 3 * 101 + 1);
    }
}

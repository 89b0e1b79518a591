//! Port reachability results between this node and its peers.

use serde::{Deserialize, Serialize};

pub use super::ports::{PortSpec, Proto};

/// open: connected (or the UDP echo answered); closed: reachable, nothing listening (RST
/// or ICMP port unreachable); filtered: no answer before the timeout; unreachable: ICMP
/// host/net unreachable or no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    Open,
    Closed,
    Filtered,
    Unreachable,
}

impl ProbeState {
    pub const ALL: [ProbeState; 4] = [
        ProbeState::Open,
        ProbeState::Closed,
        ProbeState::Filtered,
        ProbeState::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeState::Open => "open",
            ProbeState::Closed => "closed",
            ProbeState::Filtered => "filtered",
            ProbeState::Unreachable => "unreachable",
        }
    }

    /// The firewall let the packet through (the port may still have no listener).
    pub fn passes_firewall(self) -> bool {
        matches!(self, ProbeState::Open | ProbeState::Closed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Peer name as configured (host name or address).
    pub peer: String,
    /// The address actually probed.
    pub address: String,
    pub port: u16,
    pub proto: Proto,
    pub state: ProbeState,
    /// Round-trip time of the connect or echo, when the peer answered.
    pub rtt_us: Option<u64>,
    /// OS error text for unreachable, resolution failures and the like.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub peers: Vec<String>,
    pub results: Vec<ProbeResult>,
    /// How long one round over all peers and ports took.
    pub round_ms: u64,
}

impl ProbeReport {
    pub fn blocked(&self) -> impl Iterator<Item = &ProbeResult> {
        self.results.iter().filter(|r| !r.state.passes_firewall())
    }
}

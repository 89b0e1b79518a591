//! Port reachability results between this node and its peers.

use compact_str::CompactString;
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
    /// Peer name as configured (host name or address). Names and addresses are short:
    /// held inline.
    pub peer: CompactString,
    /// The address actually probed.
    pub address: CompactString,
    pub port: u16,
    pub proto: Proto,
    pub state: ProbeState,
    /// Round-trip time of the connect or echo, when the peer answered.
    pub rtt_us: Option<u64>,
    /// OS error text for unreachable, resolution failures and the like.
    pub detail: Option<String>,
}

/// Port groups summarised per peer, in this order (the continuously probed ones).
pub const SUMMARY_GROUPS: [&str; 6] = ["core", "ssh", "traces", "ntp", "vault", "kmip"];

/// One peer, as seen from this node: the worst state per port group (see
/// `SUMMARY_GROUPS`; None when no port of the group was probed) and the best round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSummary {
    pub peer: CompactString,
    pub states: [Option<ProbeState>; SUMMARY_GROUPS.len()],
    /// Smallest round-trip time over the peer's answered probes, in whole milliseconds
    /// (rounded so the summary only changes when reachability does).
    pub rtt_ms: Option<u32>,
    /// When the peer was last probed (agent clock, unix ms); None if not yet.
    #[serde(default)]
    pub observed_ms: Option<i64>,
    /// The agent's probe round that probed it last (0: none yet). Watch deltas carry the
    /// peers of the rounds a stream has not sent yet.
    #[serde(default)]
    pub round: u64,
}

/// Most results a report carries over the wire (the blocked ones); the agent's own
/// /metrics and checks see all of them.
pub const MAX_WIRE_RESULTS: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub peers: Vec<CompactString>,
    /// On the agent: the latest probe of every (peer, port) its rounds have made so far.
    /// Received over the wire: only blocked ones (filtered or unreachable), at most
    /// `MAX_WIRE_RESULTS`.
    pub results: Vec<ProbeResult>,
    pub summary: Vec<PeerSummary>,
    pub probes_total: u32,
    pub blocked_total: u32,
    /// How long the last round took.
    pub round_ms: u64,
    /// The agent's latest round (1, 2, …; 0 for a one-off sweep).
    #[serde(default)]
    pub round: u64,
    /// Peers probed per round (0: all of them every round).
    #[serde(default)]
    pub peers_per_round: u32,
    /// Every peer is probed at least once within this time (rounds to cover all peers ×
    /// the round interval); 0 when unknown.
    #[serde(default)]
    pub coverage_ms: u64,
}

impl ProbeState {
    /// Ordering for "worst of": unreachable > filtered > closed > open.
    pub fn badness(self) -> u8 {
        match self {
            ProbeState::Open => 0,
            ProbeState::Closed => 1,
            ProbeState::Filtered => 2,
            ProbeState::Unreachable => 3,
        }
    }
}

impl ProbeReport {
    pub fn blocked(&self) -> impl Iterator<Item = &ProbeResult> {
        self.results.iter().filter(|r| !r.state.passes_firewall())
    }

    /// Builds the report of a round: totals and the per-peer summary.
    pub fn from_results(
        peers: Vec<impl Into<CompactString>>,
        results: Vec<ProbeResult>,
        round_ms: u64,
    ) -> Self {
        let peers: Vec<CompactString> = peers.into_iter().map(Into::into).collect();
        let mut summary: Vec<PeerSummary> = peers
            .iter()
            .map(|p| PeerSummary {
                peer: p.clone(),
                states: [None; SUMMARY_GROUPS.len()],
                rtt_ms: None,
                observed_ms: None,
                round: 0,
            })
            .collect();
        let index: std::collections::HashMap<&str, usize> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect();
        for r in &results {
            let Some(&i) = index.get(r.peer.as_str()) else {
                continue;
            };
            let Some(g) = super::ports::group_of(r.port)
                .and_then(|g| SUMMARY_GROUPS.iter().position(|x| *x == g.id))
            else {
                continue;
            };
            let slot = &mut summary[i].states[g];
            if slot.is_none_or(|s| r.state.badness() > s.badness()) {
                *slot = Some(r.state);
            }
            if let Some(us) = r.rtt_us {
                let ms = (us / 1000) as u32;
                summary[i].rtt_ms = Some(summary[i].rtt_ms.map_or(ms, |m| m.min(ms)));
            }
        }
        let blocked_total = results
            .iter()
            .filter(|r| !r.state.passes_firewall())
            .count() as u32;
        ProbeReport {
            peers,
            probes_total: results.len() as u32,
            blocked_total,
            results,
            summary,
            round_ms,
            ..Default::default()
        }
    }

    pub fn peer(&self, name: &str) -> Option<&PeerSummary> {
        self.summary.iter().find(|s| s.peer == name)
    }

    /// Applies a Watch delta: `changes` carries the peers probed since the last message
    /// (their summary and their blocked results) and the current totals. Peers it does not
    /// name keep what this report holds.
    pub fn apply_changes(&mut self, changes: ProbeReport) {
        // A console follows 1,000 of these every 5 s: skip what there is nothing to do for.
        if !self.results.is_empty() {
            let named: std::collections::HashSet<&str> =
                changes.summary.iter().map(|s| s.peer.as_str()).collect();
            self.results.retain(|r| !named.contains(r.peer.as_str()));
        }
        self.results.extend(changes.results);
        // Newest first when trimming: the receiver keeps as many as one message carries.
        if self.results.len() > MAX_WIRE_RESULTS {
            let extra = self.results.len() - MAX_WIRE_RESULTS;
            self.results.drain(..extra);
        }
        if self.summary.is_empty() {
            // The receiver moved its peers elsewhere (a console's view resolves them and
            // keeps `peers` for the ones it does not know).
            self.summary = changes.summary;
        } else {
            for s in changes.summary {
                match self.summary.iter_mut().find(|x| x.peer == s.peer) {
                    Some(x) => *x = s,
                    None => {
                        if !self.peers.contains(&s.peer) {
                            self.peers.push(s.peer.clone());
                        }
                        self.summary.push(s);
                    }
                }
            }
        }
        self.probes_total = changes.probes_total;
        self.blocked_total = changes.blocked_total;
        self.round_ms = changes.round_ms;
        self.round = changes.round;
        self.peers_per_round = changes.peers_per_round;
        self.coverage_ms = changes.coverage_ms;
        // What the lists grew by is held until the next delta: a console holds 1,000
        // reports.
        self.results.shrink_to_fit();
        self.summary.shrink_to_fit();
        self.peers.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(peer: &str, port: u16, state: ProbeState, rtt_us: Option<u64>) -> ProbeResult {
        ProbeResult {
            peer: peer.into(),
            address: peer.into(),
            port,
            proto: Proto::Tcp,
            state,
            rtt_us,
            detail: None,
        }
    }

    #[test]
    fn summary_keeps_the_worst_state_per_group_and_the_best_rtt() {
        let rep = ProbeReport::from_results(
            vec!["a", "b"],
            vec![
                r("a", 14000, ProbeState::Open, Some(1_500)),
                r("a", 16100, ProbeState::Filtered, None),
                r("a", 22, ProbeState::Closed, Some(900)),
                r("b", 14000, ProbeState::Open, Some(100)),
            ],
            5,
        );
        assert_eq!(rep.probes_total, 4);
        assert_eq!(rep.blocked_total, 1);
        let a = rep.peer("a").unwrap();
        assert_eq!(a.states[0], Some(ProbeState::Filtered));
        assert_eq!(a.states[1], Some(ProbeState::Closed));
        assert_eq!(a.states[2], None);
        assert_eq!(a.rtt_ms, Some(0));
    }
}

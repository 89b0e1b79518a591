//! `ClusterView`: what the console knows about every node, with when it learned it. Status
//! is derived from the age of the data at a given `now`, so a node that stopped answering
//! turns STALE and then DOWN by itself, and is never shown as healthy.

use crate::model::checks::CheckStatus;
use crate::model::nvme::HealthLevel;
use crate::model::pinning::{Conflict, node_conflicts};
use crate::model::snapshot::{NodeSnapshot, Section};
use crate::wire::{DecodedSnapshot, merge_snapshot};
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Up,
    /// Never heard from yet, no failure yet either.
    Connecting,
    /// Data older than the stale threshold: never shown as healthy.
    Stale,
    Down,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Up => "UP",
            NodeStatus::Connecting => "CONNECTING",
            NodeStatus::Stale => "STALE",
            NodeStatus::Down => "DOWN",
        }
    }
}

/// How a connection attempt or stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No answer in time: the agent may be hung or the network slow.
    Timeout,
    /// Refused, reset, unreachable, or the stream ended.
    Connection,
    /// The agent answered something that is not our protocol, or malformed data.
    Protocol,
    /// The token was refused.
    Auth,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub at_ms: i64,
}

/// Thresholds, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub interval_ms: i64,
    /// No data for this long: STALE (default 3 × interval).
    pub stale_ms: i64,
    /// No data for this long: DOWN even without a definite failure (default 10 × interval).
    pub down_ms: i64,
}

impl Thresholds {
    pub fn for_interval(interval_ms: i64) -> Self {
        Thresholds {
            interval_ms,
            stale_ms: interval_ms.saturating_mul(3),
            down_ms: interval_ms.saturating_mul(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeView {
    pub name: String,
    pub endpoint: String,
    pub snapshot: Option<NodeSnapshot>,
    /// Console clock when the last message arrived.
    pub received_ms: Option<i64>,
    pub failure: Option<Failure>,
    /// Agent clock minus console clock at the last message (includes one-way latency).
    pub skew_ms: Option<i64>,
    pub messages: u64,
    /// The status last reported in events.
    pub last_status: NodeStatus,
    /// Facts derived from the snapshot, recomputed when their section arrives.
    pub digest: Digest,
    /// The data-plane cluster as this node's member reports it.
    pub cluster: Option<ClusterBrief>,
}

/// One member's report of the data-plane cluster (the `dataplane` section of its Watch).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterBrief {
    pub cluster: String,
    pub node_id: u64,
    pub leader: u64,
    /// The epoch of the configuration the member applied.
    pub epoch: u64,
    /// Its share of the data plane (stripes it counts, rebuild), if it serves one.
    pub data: Option<crate::model::dataplane::DataStatus>,
}

impl ClusterBrief {
    /// The brief of a node's data-plane report (made anew from each message the node
    /// sends, so it is as fresh as the node's `received_ms`); None when the node is not a
    /// member.
    pub fn of(d: &crate::model::dataplane::NodeDataplane) -> Option<Self> {
        (!d.cluster.is_empty()).then(|| ClusterBrief {
            cluster: d.cluster.clone(),
            node_id: d.node_id,
            leader: d.leader,
            epoch: d.epoch,
            data: d.share.clone(),
        })
    }
}

/// The data-plane cluster as the console shows it: the configuration (fetched from a
/// member when one reports a newer epoch) and the members' data shares added up.
#[derive(Debug, Clone, PartialEq)]
pub struct DataplaneView {
    pub config: Arc<crate::model::cluster::ClusterConfig>,
    pub leader: u64,
    /// Members whose share is counted (fresh reports), and members of the config.
    pub reporting: usize,
    pub data: Option<crate::model::dataplane::DataStatus>,
}

/// How recent a node's report must be for its data-plane share to count.
pub const DATAPLANE_FRESH_MS: i64 = 10_000;

/// The shares to add up: not the last share of a member that most of the others now
/// report away. Its report stays fresh for `DATAPLANE_FRESH_MS` after it stopped (killed,
/// powered off), while the others, having noticed in a few seconds, count its objects
/// themselves: adding both would count those stripes twice.
fn without_away(
    shares: Vec<crate::model::dataplane::DataStatus>,
) -> Vec<crate::model::dataplane::DataStatus> {
    let others = shares.len().saturating_sub(1);
    let votes = |id: u64| {
        shares
            .iter()
            .filter(|s| s.node != id && s.away.contains(&id))
            .count()
    };
    let gone: HashSet<u64> = shares
        .iter()
        .map(|s| s.node)
        .filter(|&id| others > 0 && votes(id) * 2 > others)
        .collect();
    shares
        .into_iter()
        .filter(|s| !gone.contains(&s.node))
        .collect()
}

impl ClusterView {
    /// Whether some node reports itself a member of a data-plane cluster (its data-plane
    /// figures may still be on their way).
    pub fn has_cluster_member(&self) -> bool {
        self.nodes.iter().any(|n| n.cluster.is_some())
    }

    /// The data-plane cluster, from reports younger than `DATAPLANE_FRESH_MS`; None when
    /// no node reports one, or before its configuration arrived.
    pub fn dataplane(&self, now_ms: i64) -> Option<DataplaneView> {
        let config = self.dp_config.clone()?;
        let fresh: Vec<&ClusterBrief> = self
            .nodes
            .iter()
            .filter(|n| {
                n.received_ms
                    .is_some_and(|r| now_ms.saturating_sub(r) <= DATAPLANE_FRESH_MS)
            })
            .filter_map(|n| n.cluster.as_ref())
            .filter(|b| config.cluster.as_deref() == Some(b.cluster.as_str()))
            .collect();
        let newest = fresh.iter().max_by_key(|b| b.epoch)?;
        let shares: Vec<crate::model::dataplane::DataStatus> =
            fresh.iter().filter_map(|b| b.data.clone()).collect();
        let shares = without_away(shares);
        let data = (!shares.is_empty()).then(|| {
            crate::model::dataplane::sum(
                &shares,
                config.m,
                config.io == crate::model::cluster::IoStatus::Started,
            )
        });
        Some(DataplaneView {
            leader: newest.leader,
            reporting: shares.len(),
            data,
            config,
        })
    }

    /// A member whose configuration is newer than the one held (or of another cluster),
    /// and its epoch: the console fetches the configuration from it. Kept up to date as
    /// reports arrive, so asking is free (the fleet asks after every batch of messages).
    pub fn wanted_config(&self) -> Option<(usize, u64)> {
        self.dp_wanted
    }
}

/// What the views need from a node's sections, computed once per update rather than once
/// per frame (a 1,000-node cluster would otherwise re-evaluate 100,000 CPUs per frame).
#[derive(Debug, Clone, Default)]
pub struct Digest {
    /// Core conflicts (pinning with topology and NICs).
    pub conflicts: Vec<Conflict>,
    /// Health of each drive, in `nvme` order.
    pub drives: Vec<crate::model::nvme::DriveHealth>,
    pub checks_fail: u32,
    pub checks_warn: u32,
    /// The probe summary's peers that are nodes of this view, by node index, sorted by
    /// it. They are moved out of the snapshot's summary when it arrives (a compact form:
    /// at 1,000 nodes the full mesh is a million entries); peers not in the view stay
    /// there. A Watch delta updates the cells of the peers it carries. The matrix holds
    /// the first 65,536 nodes of the view; peers beyond stay in the summary.
    pub probe_peers: Vec<PeerCell>,
    /// When the newest of these results was observed, console clock, unix seconds (0
    /// when none is known): each cell's age counts back from it.
    pub probe_base_s: u32,
}

/// Eight bytes per cell: a 1,000-node full mesh is a million of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCell {
    /// The peer, by node index in the view.
    pub node: u16,
    /// Seconds from this result to the node's newest one (`Digest::probe_base_s`),
    /// saturating at `BACK_MAX` (18 h); `BACK_UNKNOWN` when it is not known when.
    back_s: u16,
    /// The worst state per port group, 3 bits each (0: not probed, else 1 + badness), in
    /// bits 0..18; the best round trip in ms in bits 18..32 (saturating at
    /// `RTT_NONE - 1` = 16.4 s; `RTT_NONE` when no probe was answered).
    bits: u32,
}

const BACK_UNKNOWN: u16 = u16::MAX;
const BACK_MAX: u16 = u16::MAX - 1;

const GROUPS: usize = crate::model::probes::SUMMARY_GROUPS.len();
const RTT_SHIFT: u32 = 3 * GROUPS as u32;
const RTT_NONE: u32 = (1 << (32 - RTT_SHIFT)) - 1;

impl PeerCell {
    /// `back_s`: seconds before the node's newest result; None when unknown.
    pub fn new(
        node: u16,
        states: [Option<crate::model::probes::ProbeState>; GROUPS],
        rtt_ms: Option<u32>,
        back_s: Option<u32>,
    ) -> PeerCell {
        let mut bits = 0u32;
        for (g, st) in states.iter().enumerate() {
            let code = st.map_or(0, |s| 1 + u32::from(s.badness()));
            bits |= code << (3 * g);
        }
        let rtt = rtt_ms.map_or(RTT_NONE, |r| r.min(RTT_NONE - 1));
        PeerCell {
            node,
            back_s: back_s.map_or(BACK_UNKNOWN, |b| b.min(u32::from(BACK_MAX)) as u16),
            bits: bits | (rtt << RTT_SHIFT),
        }
    }

    /// The worst state of port group `g` (an index into `SUMMARY_GROUPS`).
    pub fn state(&self, g: usize) -> Option<crate::model::probes::ProbeState> {
        if g >= GROUPS {
            return None;
        }
        let code = (self.bits >> (3 * g)) & 0b111;
        crate::model::probes::ProbeState::ALL
            .into_iter()
            .find(|s| 1 + u32::from(s.badness()) == code)
    }

    pub fn states(&self) -> [Option<crate::model::probes::ProbeState>; GROUPS] {
        std::array::from_fn(|g| self.state(g))
    }

    pub fn rtt_ms(&self) -> Option<u32> {
        let r = self.bits >> RTT_SHIFT;
        (r != RTT_NONE).then_some(r)
    }

    /// How old the result is at `now_ms` (console clock), its node's newest result
    /// having been observed at `base_s`; None when unknown. Results more than 18 h older
    /// than the newest count as 18 h older.
    pub fn age_ms(&self, base_s: u32, now_ms: i64) -> Option<i64> {
        (self.back_s != BACK_UNKNOWN && base_s != 0).then(|| {
            let observed = i64::from(base_s) - i64::from(self.back_s);
            now_ms.saturating_sub(observed * 1000).max(0)
        })
    }

    /// Moves the reference `by` seconds later: the result is that much further back.
    fn rebase(&mut self, by: u32) {
        if self.back_s != BACK_UNKNOWN {
            self.back_s = (u32::from(self.back_s) + by).min(u32::from(BACK_MAX)) as u16;
        }
    }
}

impl Digest {
    /// The cell of node `node`, if this node reports probes to it.
    pub fn probe_cell(&self, node: usize) -> Option<&PeerCell> {
        let node = u16::try_from(node).ok()?;
        self.probe_peers
            .binary_search_by_key(&node, |c| c.node)
            .ok()
            .map(|i| &self.probe_peers[i])
    }

    /// How old cell `c`'s result is at `now_ms` (console clock); None when unknown.
    pub fn probe_age_ms(&self, c: &PeerCell, now_ms: i64) -> Option<i64> {
        c.age_ms(self.probe_base_s, now_ms)
    }
}

impl Digest {
    /// `cores`: pinning, topology or NICs changed.
    fn refresh(&mut self, s: &NodeSnapshot, cores: bool, nvme: bool, checks: bool) {
        if cores {
            self.conflicts = s
                .pinning
                .as_ref()
                .map(|p| node_conflicts(p, s.topology.as_ref(), s.network.as_ref()))
                .unwrap_or_default();
        }
        if nvme {
            // Health plus the drive's size against the deployment (over 30 TB).
            self.drives = s
                .nvme
                .iter()
                .flatten()
                .map(|d| d.console_health())
                .collect();
        }
        if checks {
            let r = s.checks.as_deref().unwrap_or(&[]);
            self.checks_fail = r.iter().filter(|x| x.status == CheckStatus::Fail).count() as u32;
            self.checks_warn = r.iter().filter(|x| x.status == CheckStatus::Warn).count() as u32;
        }
    }
}

impl NodeView {
    /// Sets the snapshot wholesale (tests, benchmarks) and refreshes the digest.
    pub fn set_snapshot(&mut self, s: Option<NodeSnapshot>) {
        self.snapshot = s;
        self.digest = Digest::default();
        if let Some(s) = &self.snapshot {
            self.digest.refresh(s, true, true, true);
        }
        // Probe peers are resolved when the node joins a ClusterView.
    }

    pub fn new(name: String, endpoint: String) -> Self {
        NodeView {
            name,
            endpoint,
            snapshot: None,
            received_ms: None,
            failure: None,
            skew_ms: None,
            messages: 0,
            last_status: NodeStatus::Connecting,
            digest: Digest::default(),
            cluster: None,
        }
    }

    pub fn status(&self, now_ms: i64, t: &Thresholds) -> NodeStatus {
        let age = self.received_ms.map(|r| now_ms.saturating_sub(r));
        // A definite failure after the last data: the agent is gone or broken.
        if let Some(f) = &self.failure {
            let after_data = self.received_ms.is_none_or(|r| f.at_ms >= r);
            if after_data && f.kind != FailureKind::Timeout {
                return NodeStatus::Down;
            }
            if self.received_ms.is_none() {
                return NodeStatus::Down;
            }
        }
        match age {
            None => NodeStatus::Connecting,
            Some(a) if a > t.down_ms => NodeStatus::Down,
            Some(a) if a > t.stale_ms => NodeStatus::Stale,
            Some(_) => NodeStatus::Up,
        }
    }

    /// Age of a section's data at `now`: the agent's age at sending plus time since.
    pub fn section_age_ms(&self, section: Section, now_ms: i64) -> Option<i64> {
        let s = self.snapshot.as_ref()?;
        let at_send = s.section_age_ms(section)?;
        Some(at_send.saturating_add(now_ms.saturating_sub(self.received_ms?).max(0)))
    }

    /// A section is stale when older than three of its collector's intervals.
    pub fn section_stale(&self, section: Section, now_ms: i64) -> bool {
        let Some(s) = &self.snapshot else { return true };
        let Some(c) = s.collector(section) else {
            return true;
        };
        match self.section_age_ms(section, now_ms) {
            Some(age) => age > c.stale_after_ms(),
            None => true,
        }
    }

    /// Added by address (`10.0.0.7`, `fd00::7`), not by name: the agent's host name is
    /// the better label.
    pub fn name_is_address(&self) -> bool {
        self.name
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
    }

    pub fn emulated(&self) -> Option<&str> {
        self.snapshot.as_ref()?.node.emulated_profile.as_deref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Assigned by [`ClusterView::push_event`]: increases by one per event, so a view
    /// can hold on to an event while newer ones arrive.
    pub seq: u64,
    pub at_ms: i64,
    pub node: Option<String>,
    pub severity: Severity,
    pub text: String,
}

/// Cluster-level figures sampled once per tick, for sparklines.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    pub nodes_up: u32,
    pub nodes_not_up: u32,
    pub checks_failing: u32,
    pub drives_warning: u32,
    pub probes_blocked: u32,
}

pub const EVENTS_CAP: usize = 1000;
pub const HISTORY_CAP: usize = 300;

/// What the fleet tasks report.
#[derive(Debug)]
pub enum NodeUpdate {
    /// The data-plane cluster's configuration, fetched from a member
    /// (`DataplaneService.GetDataplane`) when one reported a newer epoch.
    Config {
        config: Box<crate::model::cluster::ClusterConfig>,
    },
    Snapshot {
        node: usize,
        data: Box<DecodedSnapshot>,
        received_ms: i64,
    },
    Failed {
        node: usize,
        failure: Failure,
    },
}

#[derive(Debug, Clone)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
    pub events: VecDeque<Event>,
    pub history: VecDeque<Sample>,
    pub thresholds: Thresholds,
    /// Bumped on every change; the UI re-derives its tables when it moves.
    pub generation: u64,
    /// Sequence number of the next event.
    next_event: u64,
    /// Node index by name and by endpoint host, to resolve probe peers.
    index: std::collections::HashMap<String, usize>,
    /// The data plane as the last tick saw it (for its events), and its one-line brief
    /// for the Overview.
    dp_memo: Option<DpMemo>,
    pub dp_brief: Option<DpBrief>,
    /// The data-plane cluster's configuration, as last fetched from a member.
    pub dp_config: Option<Arc<crate::model::cluster::ClusterConfig>>,
    /// A member that reported a newer configuration than `dp_config`, and its epoch.
    dp_wanted: Option<(usize, u64)>,
}

/// The data plane in a line, as the Overview and `axon status` show it: IO status,
/// protection, rebuild progress, members away. One projection of `DataplaneView`, so the
/// two say the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpBrief {
    pub io: String,
    /// Empty until a member reports its share of the data.
    pub protection: String,
    /// k+m+hot spares.
    pub scheme: String,
    /// (stripes done, stripes total) while a rebuild runs.
    pub rebuild: Option<(u64, u64)>,
    /// The rebuild's bytes per second and seconds left (0 when unknown).
    pub rebuild_rate: u64,
    pub rebuild_eta_secs: u64,
    /// Members away now, and those away past the grace period (rebuilt around).
    pub away: usize,
    pub past_grace: usize,
    pub lost_chunks: u64,
    /// The lost chunks wait for start-io (IO stopped): nothing rewrites them.
    pub repair_paused: bool,
    /// Members whose share is counted, of the configuration's members.
    pub reporting: usize,
    pub members: usize,
}

impl DpBrief {
    /// What the lost chunks are doing, for a count of them: "chunk(s) being repaired",
    /// or waiting for start-io while IO is stopped.
    pub fn lost_words(&self) -> &'static str {
        if self.repair_paused {
            "chunk(s) lost, waiting for start-io"
        } else {
            "chunk(s) being repaired"
        }
    }
}

impl DataplaneView {
    pub fn brief(&self) -> DpBrief {
        let c = &self.config;
        let d = self.data.as_ref();
        let rebuild = d.map(|d| &d.rebuild).filter(|r| r.active);
        DpBrief {
            io: c.io.as_str().to_string(),
            protection: d.map(|d| d.protection.clone()).unwrap_or_default(),
            scheme: format!("{}+{}+{}", c.k, c.m, c.hot_spares),
            rebuild: rebuild.map(|r| (r.stripes_done, r.stripes_total)),
            rebuild_rate: rebuild.map_or(0, |r| r.rate),
            rebuild_eta_secs: rebuild.map_or(0, |r| r.eta_secs),
            away: d.map_or(0, |d| d.away.len().max(d.failed.len())),
            past_grace: d.map_or(0, |d| d.failed.len()),
            lost_chunks: d.map_or(0, |d| d.lost_chunks),
            repair_paused: d.is_some_and(|d| d.repair_paused),
            reporting: self.reporting,
            members: c.members.len(),
        }
    }
}

/// What data-plane events are computed from, tick to tick.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DpMemo {
    protection: String,
    io: String,
    /// Drive id → (node id, state).
    drives: std::collections::BTreeMap<String, (u64, String)>,
    rebuilding: bool,
    away: Vec<u64>,
    repairing: bool,
}

impl ClusterView {
    pub fn new(nodes: Vec<NodeView>, thresholds: Thresholds) -> Self {
        let mut index = std::collections::HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            index.insert(n.name.clone(), i);
            if let Some((host, _)) = n.endpoint.rsplit_once(':') {
                index
                    .entry(host.trim_matches(['[', ']']).to_string())
                    .or_insert(i);
            }
        }
        let mut v = ClusterView {
            nodes,
            events: VecDeque::new(),
            history: VecDeque::new(),
            thresholds,
            generation: 0,
            next_event: 0,
            index,
            dp_memo: None,
            dp_brief: None,
            dp_config: None,
            dp_wanted: None,
        };
        for i in 0..v.nodes.len() {
            v.resolve_peers(i, false);
        }
        v
    }

    /// Moves node `i`'s probe-summary entries that name nodes of this view (by name or
    /// address) into its digest, resolved to node indices: all of its cells for a whole
    /// report, or (`changes`) the cells of the peers a Watch delta carried.
    fn resolve_peers(&mut self, i: usize, changes: bool) {
        let index = &self.index;
        let n = &mut self.nodes[i];
        // Agent clock to console clock, as of this message.
        let skew = n.skew_ms.unwrap_or(0);
        let Some(p) = n.snapshot.as_mut().and_then(|s| s.probes.as_mut()) else {
            return;
        };
        // (node, states, round trip, when observed in console seconds, 0 unknown).
        let mut got = Vec::with_capacity(p.summary.len());
        p.summary.retain(|s| {
            match index
                .get(s.peer.as_str())
                .and_then(|&i| u16::try_from(i).ok())
            {
                Some(node) => {
                    let observed = s
                        .observed_ms
                        .and_then(|t| u32::try_from(t.saturating_sub(skew) / 1000).ok())
                        .unwrap_or(0);
                    got.push((node, s.states, s.rtt_ms, observed));
                    false
                }
                None => true,
            }
        });
        p.summary.shrink_to_fit();
        // The names are now node indices; keep only the ones not in this view.
        p.peers = p.summary.iter().map(|s| s.peer.clone()).collect();
        let newest = got.iter().map(|g| g.3).max().unwrap_or(0);
        let base = if changes {
            n.digest.probe_base_s.max(newest)
        } else {
            newest
        };
        let cell = |(node, states, rtt, observed): (u16, _, _, u32)| {
            PeerCell::new(
                node,
                states,
                rtt,
                (observed != 0).then(|| base.saturating_sub(observed)),
            )
        };
        // A fresh Vec of its own size: `collect` would reuse `got`'s allocation, three
        // times larger, and keep it for as long as the cells live.
        let mut cells: Vec<PeerCell> = Vec::with_capacity(got.len());
        cells.extend(got.into_iter().map(cell));
        cells.sort_by_key(|c| c.node);
        cells.dedup_by_key(|c| c.node);
        if !changes {
            n.digest.probe_peers = cells;
            n.digest.probe_base_s = base;
            return;
        }
        let held = &mut n.digest.probe_peers;
        // With no time known before (base 0), no cell held has one either.
        let by = base.saturating_sub(n.digest.probe_base_s);
        if by > 0 && n.digest.probe_base_s != 0 {
            for c in held.iter_mut() {
                c.rebase(by);
            }
        }
        n.digest.probe_base_s = base;
        for c in cells {
            match held.binary_search_by_key(&c.node, |x| x.node) {
                Ok(k) => held[k] = c,
                Err(k) => held.insert(k, c),
            }
        }
    }

    /// Records an event (newest first, at most `EVENTS_CAP`) and gives it its sequence
    /// number.
    pub fn push_event(&mut self, mut e: Event) {
        if self.events.len() == EVENTS_CAP {
            self.events.pop_back();
        }
        e.seq = self.next_event;
        self.next_event += 1;
        self.events.push_front(e);
        self.generation += 1;
    }

    /// The event with sequence number `seq`, if it is still held.
    pub fn event(&self, seq: u64) -> Option<&Event> {
        // Newest first with consecutive numbers: the position follows from the number.
        let newest = self.events.front()?.seq;
        let i = newest.checked_sub(seq)?;
        self.events
            .get(usize::try_from(i).ok()?)
            .filter(|e| e.seq == seq)
    }

    /// Merges one update, emitting events for what changed on the node.
    pub fn apply(&mut self, u: NodeUpdate) {
        self.generation += 1;
        match u {
            NodeUpdate::Config { config } => {
                let newer = match &self.dp_config {
                    Some(c) => c.epoch < config.epoch || c.cluster != config.cluster,
                    None => true,
                };
                if newer {
                    if self.dp_wanted.is_some_and(|(_, e)| e <= config.epoch) {
                        self.dp_wanted = None;
                    }
                    self.dp_config = Some(Arc::new(*config));
                }
            }
            NodeUpdate::Snapshot {
                node,
                data,
                received_ms,
            } => {
                let Some(n) = self.nodes.get_mut(node) else {
                    return;
                };
                let taken = data.snapshot.taken_ms;
                let probes = data.full || data.snapshot.probes.is_some();
                let probe_changes = data.probes_changes_only;
                let (cores, nvme, chk) = (
                    data.full
                        || data.snapshot.pinning.is_some()
                        || data.snapshot.topology.is_some()
                        || data.snapshot.network.is_some(),
                    data.full || data.snapshot.nvme.is_some(),
                    data.full || data.snapshot.checks.is_some(),
                );
                // Compare only the sections this message carries, before merging them.
                let events = match &n.snapshot {
                    Some(old) => diff_events(&n.name, old, &data.snapshot, received_ms),
                    None => Vec::new(),
                };
                match &mut n.snapshot {
                    Some(s) => merge_snapshot(s, *data),
                    None if data.full => n.snapshot = Some(data.snapshot),
                    // A delta without a base cannot be merged; the next full message fixes it.
                    None => return,
                }
                n.received_ms = Some(received_ms);
                n.cluster = n
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.dataplane.as_ref())
                    .and_then(ClusterBrief::of);
                if let Some(b) = &n.cluster {
                    let newer = match &self.dp_config {
                        Some(c) => {
                            c.epoch < b.epoch || c.cluster.as_deref() != Some(b.cluster.as_str())
                        }
                        None => true,
                    };
                    if newer && self.dp_wanted.is_none_or(|(_, e)| e < b.epoch) {
                        self.dp_wanted = Some((node, b.epoch));
                    }
                }
                n.skew_ms = Some(taken.saturating_sub(received_ms));
                n.messages += 1;
                let had_base = n.messages > 1;
                let before = if cores {
                    std::mem::take(&mut n.digest.conflicts)
                } else {
                    Vec::new()
                };
                if let Some(s) = &n.snapshot {
                    n.digest.refresh(s, cores, nvme, chk);
                }
                let mut events = events;
                let new: Vec<&Conflict> = if cores && had_base {
                    n.digest
                        .conflicts
                        .iter()
                        .filter(|c| !before.contains(c))
                        .collect()
                } else {
                    Vec::new()
                };
                if let Some(first) = new.first() {
                    events.push(Event {
                        seq: 0,
                        at_ms: received_ms,
                        node: Some(n.name.clone()),
                        severity: Severity::Warning,
                        text: format!("{}: {} new core conflict(s): {first}", n.name, new.len()),
                    });
                }
                // A node added by its address takes the name its agent reports.
                let adopt = if n.name_is_address() {
                    n.snapshot
                        .as_ref()
                        .map(|s| s.node.hostname.trim().to_string())
                        .filter(|h| valid_hostname(h))
                } else {
                    None
                };
                if let Some(h) = adopt {
                    if !self.nodes.iter().any(|m| m.name == h) {
                        let old = std::mem::replace(&mut self.nodes[node].name, h.clone());
                        self.index.insert(h.clone(), node);
                        self.index.entry(old.clone()).or_insert(node);
                        events.push(Event {
                            seq: 0,
                            at_ms: received_ms,
                            node: Some(h.clone()),
                            severity: Severity::Info,
                            text: format!("{old} reports host name {h}: shown as {h}"),
                        });
                    }
                }
                if probes {
                    self.resolve_peers(node, probe_changes);
                }
                for e in events {
                    self.push_event(e);
                }
            }
            NodeUpdate::Failed { node, failure } => {
                if let Some(n) = self.nodes.get_mut(node) {
                    n.failure = Some(failure);
                }
            }
        }
    }

    /// Called once per tick: emits status-change events and records a history sample.
    pub fn observe(&mut self, now_ms: i64) {
        let t = self.thresholds;
        let mut events = Vec::new();
        for n in &mut self.nodes {
            let s = n.status(now_ms, &t);
            if s != n.last_status {
                let (severity, text) = match s {
                    NodeStatus::Up => (Severity::Info, format!("{} is up", n.name)),
                    NodeStatus::Stale => (
                        Severity::Warning,
                        format!(
                            "{} is stale: no data for {}",
                            n.name,
                            fmt_age(n.received_ms.map(|r| now_ms.saturating_sub(r)))
                        ),
                    ),
                    NodeStatus::Down => (
                        Severity::Critical,
                        format!(
                            "{} is down: {}",
                            n.name,
                            n.failure
                                .as_ref()
                                .map(|f| f.message.as_str())
                                .unwrap_or("no data")
                        ),
                    ),
                    NodeStatus::Connecting => (Severity::Info, format!("{} connecting", n.name)),
                };
                if !(n.last_status == NodeStatus::Connecting && s == NodeStatus::Up) {
                    events.push(Event {
                        seq: 0,
                        at_ms: now_ms,
                        node: Some(n.name.clone()),
                        severity,
                        text,
                    });
                }
                n.last_status = s;
            }
        }
        events.extend(self.observe_dataplane(now_ms));
        for e in events {
            self.push_event(e);
        }
        let sample = self.sample(now_ms);
        if self.history.len() == HISTORY_CAP {
            self.history.pop_front();
        }
        self.history.push_back(sample);
        self.generation += 1;
    }

    pub fn sample(&self, now_ms: i64) -> Sample {
        // Cluster-wide checks fail too (the Overview lists and counts them).
        let mut s = Sample {
            checks_failing: super::cluster_checks::evaluate(self, now_ms)
                .iter()
                .filter(|r| r.status == CheckStatus::Fail)
                .count() as u32,
            ..Sample::default()
        };
        for n in &self.nodes {
            if n.status(now_ms, &self.thresholds) == NodeStatus::Up {
                s.nodes_up += 1;
            } else {
                s.nodes_not_up += 1;
            }
            s.checks_failing += n.digest.checks_fail;
            s.drives_warning += n
                .digest
                .drives
                .iter()
                .filter(|h| h.level >= HealthLevel::Warning)
                .count() as u32;
            if let Some(p) = n.snapshot.as_ref().and_then(|s| s.probes.as_ref()) {
                s.probes_blocked += p.blocked_total;
            }
        }
        s
    }

    /// The data plane's changes since the last tick, as events: protection, IO status,
    /// drive states, rebuild start and end, members away and back. The first report only
    /// sets the baseline.
    fn observe_dataplane(&mut self, now_ms: i64) -> Vec<Event> {
        let Some(dp) = self.dataplane(now_ms) else {
            self.dp_brief = None;
            return Vec::new();
        };
        let name = |id: u64| -> String {
            dp.config
                .members
                .get(&id)
                .map_or_else(|| format!("node {id}"), |m| m.name.clone())
        };
        let data = dp.data.clone().unwrap_or_default();
        let memo = DpMemo {
            protection: data.protection.clone(),
            io: dp.config.io.as_str().to_string(),
            drives: dp
                .config
                .drives
                .iter()
                .map(|(id, d)| (id.clone(), (d.node, d.state.clone())))
                .collect(),
            rebuilding: data.rebuild.active,
            away: data.away.clone(),
            repairing: data.lost_chunks > 0 && !data.repair_paused,
        };
        self.dp_brief = Some(dp.brief());
        let Some(old) = self.dp_memo.replace(memo.clone()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut ev = |node: Option<String>, severity: Severity, text: String| {
            out.push(Event {
                seq: 0,
                at_ms: now_ms,
                node,
                severity,
                text,
            })
        };
        if old.io != memo.io {
            ev(
                None,
                Severity::Info,
                format!("data plane: IO {} → {}", old.io, memo.io),
            );
        }
        if old.protection != memo.protection && !memo.protection.is_empty() {
            let sev = match memo.protection.as_str() {
                "OK" | "REDISTRIBUTING" => Severity::Info,
                "UNPROTECTED" | "UNAVAILABLE" => Severity::Critical,
                _ => Severity::Warning,
            };
            ev(
                None,
                sev,
                format!(
                    "data plane: protection {} → {}",
                    if old.protection.is_empty() {
                        "?"
                    } else {
                        &old.protection
                    },
                    memo.protection
                ),
            );
        }
        if !old.rebuilding && memo.rebuilding {
            ev(
                None,
                Severity::Warning,
                format!("rebuild started: {} stripes", data.rebuild.stripes_total),
            );
        } else if old.rebuilding && !memo.rebuilding {
            ev(
                None,
                Severity::Info,
                format!(
                    "rebuild finished: {} rebuilt in all",
                    humansize::format_size(data.rebuild.bytes_total, humansize::BINARY)
                ),
            );
        }
        if !old.repairing && memo.repairing {
            ev(
                None,
                Severity::Warning,
                format!(
                    "{} chunk(s) lost on failed drives or damaged: being rewritten from parity",
                    data.lost_chunks
                ),
            );
        }
        for id in memo.away.iter().filter(|x| !old.away.contains(x)) {
            ev(
                Some(name(*id)),
                Severity::Warning,
                format!(
                    "{} away from the data plane: its chunks are read around",
                    name(*id)
                ),
            );
        }
        for id in old.away.iter().filter(|x| !memo.away.contains(x)) {
            ev(
                Some(name(*id)),
                Severity::Info,
                format!("{} back in the data plane", name(*id)),
            );
        }
        let short = |id: &str| id.chars().take(8).collect::<String>();
        for (id, (node, state)) in &memo.drives {
            match old.drives.get(id) {
                Some((_, was)) if was == state => {}
                Some((_, was)) => ev(
                    Some(name(*node)),
                    if state == "FAILED" {
                        Severity::Critical
                    } else {
                        Severity::Info
                    },
                    format!("drive {} on {}: {was} → {state}", short(id), name(*node)),
                ),
                None => ev(
                    Some(name(*node)),
                    Severity::Info,
                    format!("drive {} added on {} ({state})", short(id), name(*node)),
                ),
            }
        }
        for (id, (node, _)) in old
            .drives
            .iter()
            .filter(|(id, _)| !memo.drives.contains_key(*id))
        {
            ev(
                Some(name(*node)),
                Severity::Info,
                format!("drive {} removed from {}", short(id), name(*node)),
            );
        }
        out
    }

    /// A node by its name, or by the address it was added with.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .or_else(|| self.index.get(name).copied())
    }
}

/// A host name an agent reports that can stand as a node's label.
fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && h.parse::<std::net::IpAddr>().is_err()
}

/// Events for what changed between the held snapshot `b` and the sections an incoming
/// message `a` carries (absent sections are skipped).
fn diff_events(node: &str, b: &NodeSnapshot, a: &NodeSnapshot, at_ms: i64) -> Vec<Event> {
    let mut out = Vec::new();
    if let (Some(bc), Some(ac)) = (&b.checks, &a.checks) {
        for r in ac {
            let old = bc.iter().find(|x| x.id == r.id).map(|x| x.status);
            if old.is_some_and(|o| o != r.status) {
                let severity = match r.status {
                    CheckStatus::Fail => Severity::Critical,
                    CheckStatus::Warn | CheckStatus::Unknown => Severity::Warning,
                    CheckStatus::Pass => Severity::Info,
                };
                out.push(Event {
                    seq: 0,
                    at_ms,
                    node: Some(node.to_string()),
                    severity,
                    text: format!(
                        "{node}: check {} {} → {} ({})",
                        r.id,
                        old.map(|o| o.as_str()).unwrap_or("?"),
                        r.status.as_str(),
                        r.observed
                    ),
                });
            }
        }
    }
    if let (Some(bd), Some(ad)) = (&b.nvme, &a.nvme) {
        for d in ad {
            let old = bd
                .iter()
                .find(|x| x.serial == d.serial && x.name == d.name)
                .map(|x| x.console_health().level);
            let new = d.console_health();
            if old.is_some_and(|o| o != new.level) {
                let severity = match new.level {
                    HealthLevel::Critical => Severity::Critical,
                    HealthLevel::Warning | HealthLevel::Unknown => Severity::Warning,
                    HealthLevel::Ok => Severity::Info,
                };
                out.push(Event {
                    seq: 0,
                    at_ms,
                    node: Some(node.to_string()),
                    severity,
                    text: format!(
                        "{node}: drive {} ({}) {} → {}: {}",
                        d.name,
                        d.serial,
                        old.map(|o| o.as_str()).unwrap_or("?"),
                        new.level.as_str(),
                        new.reasons.join(", ")
                    ),
                });
            }
        }
    }
    if let (Some(bp), Some(ap)) = (&b.probes, &a.probes) {
        let (bn, an) = (bp.blocked_total, ap.blocked_total);
        if an != bn {
            let severity = if an > bn {
                Severity::Warning
            } else {
                Severity::Info
            };
            out.push(Event {
                seq: 0,
                at_ms,
                node: Some(node.to_string()),
                severity,
                text: format!("{node}: blocked ports {bn} → {an}"),
            });
        }
    }
    out
}

/// Members away, each named once with where it stands: `axon003 (past the grace period:
/// rebuilt elsewhere), axon005 (within the grace period: read around)`.
pub fn away_words(away: &[u64], failed: &[u64], name: impl Fn(u64) -> String) -> String {
    let (past, within): (Vec<u64>, Vec<u64>) = away.iter().partition(|n| failed.contains(n));
    let mut parts = Vec::new();
    for (nodes, how) in [
        (past, "past the grace period: rebuilt elsewhere"),
        (
            within,
            "within the grace period: read around, not rebuilt yet",
        ),
    ] {
        if !nodes.is_empty() {
            let names: Vec<String> = nodes.into_iter().map(&name).collect();
            parts.push(format!("{} ({how})", names.join(", ")));
        }
    }
    parts.join(", ")
}

/// `3s`, `4m`, `2h`, `—` for never.
pub fn fmt_age(ms: Option<i64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms < 0 => "0s".into(),
        Some(ms) if ms < 60_000 => format!("{}s", ms / 1000),
        Some(ms) if ms < 3_600_000 => format!("{}m", ms / 60_000),
        Some(ms) if ms < 86_400_000 => format!("{}h", ms / 3_600_000),
        Some(ms) => format!("{}d", ms / 86_400_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::NodeSnapshot;

    #[test]
    fn a_members_last_share_is_not_added_once_most_others_report_it_away() {
        use crate::model::dataplane::DataStatus;
        let share = |node: u64, away: &[u64], whole: u64| DataStatus {
            node,
            away: away.to_vec(),
            stripes_by_lost: vec![whole, 0, 0, 0],
            ..Default::default()
        };
        let nodes = |v: &[DataStatus]| v.iter().map(|s| s.node).collect::<Vec<_>>();
        // Node 3 stopped: its last share is still fresh; 1, 2 and 4 report it away.
        let v = without_away(vec![
            share(1, &[3], 10),
            share(2, &[3], 10),
            share(3, &[], 10),
            share(4, &[3], 10),
        ]);
        assert_eq!(nodes(&v), vec![1, 2, 4]);
        // One member alone (a link of its own down) is not most of them.
        let v = without_away(vec![
            share(1, &[3], 10),
            share(2, &[], 10),
            share(3, &[], 10),
            share(4, &[], 10),
        ]);
        assert_eq!(nodes(&v), vec![1, 2, 3, 4]);
        // Half of the others is not most; a lone share is kept.
        let v = without_away(vec![
            share(1, &[3], 10),
            share(2, &[], 10),
            share(3, &[], 10),
        ]);
        assert_eq!(nodes(&v), vec![1, 2, 3]);
        assert_eq!(nodes(&without_away(vec![share(1, &[1], 10)])), vec![1]);
    }

    #[test]
    fn members_away_are_named_once_each() {
        let name = |n: u64| format!("axon{n:03}");
        assert_eq!(
            away_words(&[3], &[3], name),
            "axon003 (past the grace period: rebuilt elsewhere)"
        );
        assert_eq!(
            away_words(&[3, 5], &[3], name),
            "axon003 (past the grace period: rebuilt elsewhere), axon005 (within the grace period: read around, not rebuilt yet)"
        );
        assert_eq!(away_words(&[], &[], name), "");
    }

    #[test]
    fn peer_cells_stay_small() {
        assert_eq!(std::mem::size_of::<PeerCell>(), 8);
    }

    #[test]
    fn peer_cells_keep_every_state_and_round_trip() {
        use crate::model::probes::ProbeState;
        let all = [
            None,
            Some(ProbeState::Open),
            Some(ProbeState::Closed),
            Some(ProbeState::Filtered),
            Some(ProbeState::Unreachable),
        ];
        for (k, rtt) in [
            None,
            Some(0),
            Some(1),
            Some(180),
            Some(16_382),
            Some(99_999),
        ]
        .into_iter()
        .enumerate()
        {
            let states: [Option<ProbeState>; GROUPS] =
                std::array::from_fn(|g| all[(g + k) % all.len()]);
            let c = PeerCell::new(7, states, rtt, Some(42));
            assert_eq!(c.states(), states);
            assert_eq!(
                c.rtt_ms(),
                rtt.map(|r| r.min(16_382)),
                "saturates at 16.4 s"
            );
            assert_eq!((c.node, c.age_ms(1_000, 1_000_000)), (7, Some(42_000)));
        }
    }

    /// The console holds one 16-byte cell per (node, peer), not a result per probe, and
    /// a probe delta updates the cells of the peers it names, with their age.
    #[test]
    fn console_keeps_one_compact_cell_per_peer_and_merges_probe_deltas() {
        use crate::model::probes::{PeerSummary, ProbeReport, ProbeState};
        use crate::wire::DecodedSnapshot;
        let n = 50;
        let names: Vec<String> = (0..n).map(|i| format!("n{i:02}")).collect();
        let nodes = names
            .iter()
            .map(|x| NodeView::new(x.clone(), format!("{x}:1")))
            .collect();
        let mut v = ClusterView::new(nodes, Thresholds::for_interval(1000));
        let summary = |peers: &[&String], state, at: i64| -> Vec<PeerSummary> {
            peers
                .iter()
                .map(|p| PeerSummary {
                    peer: p.as_str().into(),
                    states: [Some(state); 6],
                    rtt_ms: Some(1),
                    observed_ms: Some(at),
                    round: 1,
                })
                .collect()
        };
        let msg = |summary: Vec<PeerSummary>, full: bool, taken_ms: i64| DecodedSnapshot {
            snapshot: NodeSnapshot {
                taken_ms,
                probes: Some(ProbeReport {
                    peers: summary.iter().map(|s| s.peer.clone()).collect(),
                    summary,
                    coverage_ms: 20_000,
                    ..Default::default()
                }),
                ..Default::default()
            },
            full,
            dataplane_carried: false,
            memory: None,
            pinning_changes_only: false,
            probes_changes_only: !full,
        };
        let others: Vec<&String> = names[1..].iter().collect();
        // The agent's clock runs 5 s ahead of the console's.
        v.apply(NodeUpdate::Snapshot {
            node: 0,
            data: Box::new(msg(
                summary(&others, ProbeState::Open, 105_000),
                true,
                110_000,
            )),
            received_ms: 105_000,
        });
        let d = &v.nodes[0].digest;
        assert_eq!(d.probe_peers.len(), n - 1);
        // Held in an allocation of their own size (a million cells at 1,000 nodes).
        assert_eq!(d.probe_peers.capacity(), n - 1);
        assert!(
            v.nodes[0]
                .snapshot
                .as_ref()
                .unwrap()
                .probes
                .as_ref()
                .unwrap()
                .summary
                .is_empty()
        );
        assert_eq!(
            d.probe_age_ms(d.probe_cell(7).unwrap(), 110_000),
            Some(10_000)
        );
        // A delta of three peers: their cells change, the rest stay.
        v.apply(NodeUpdate::Snapshot {
            node: 0,
            data: Box::new(msg(
                summary(&others[2..5], ProbeState::Filtered, 125_000),
                false,
                125_000,
            )),
            received_ms: 120_000,
        });
        let d = &v.nodes[0].digest;
        assert_eq!(d.probe_peers.len(), n - 1);
        assert_eq!(
            d.probe_cell(3).unwrap().state(0),
            Some(ProbeState::Filtered)
        );
        assert_eq!(
            d.probe_age_ms(d.probe_cell(3).unwrap(), 121_000),
            Some(1_000)
        );
        // The cells the delta did not carry keep their age, now counted from its newer
        // results (observed at 100 s, console clock).
        assert_eq!(
            d.probe_age_ms(d.probe_cell(9).unwrap(), 121_000),
            Some(21_000)
        );
        assert_eq!(d.probe_cell(9).unwrap().state(0), Some(ProbeState::Open));
        assert!(d.probe_peers.windows(2).all(|w| w[0].node < w[1].node));
    }

    fn with_data(received: i64) -> NodeView {
        let mut n = NodeView::new("a".into(), "a:1".into());
        n.snapshot = Some(NodeSnapshot::default());
        n.received_ms = Some(received);
        n
    }

    #[test]
    fn status_follows_data_age_and_failures() {
        let t = Thresholds::for_interval(1000);
        let mut n = with_data(10_000);
        assert_eq!(n.status(10_500, &t), NodeStatus::Up);
        assert_eq!(
            n.status(13_001, &t),
            NodeStatus::Stale,
            "3 intervals without data"
        );
        assert_eq!(
            n.status(20_001, &t),
            NodeStatus::Down,
            "10 intervals without data"
        );
        n.failure = Some(Failure {
            kind: FailureKind::Timeout,
            message: "t".into(),
            at_ms: 11_000,
        });
        assert_eq!(
            n.status(11_500, &t),
            NodeStatus::Up,
            "a timeout alone is not down"
        );
        n.failure = Some(Failure {
            kind: FailureKind::Connection,
            message: "refused".into(),
            at_ms: 11_000,
        });
        assert_eq!(
            n.status(11_500, &t),
            NodeStatus::Down,
            "refused after data: down at once"
        );
        n.received_ms = Some(12_000);
        assert_eq!(
            n.status(12_100, &t),
            NodeStatus::Up,
            "data after the failure: back up"
        );
        let never = NodeView::new("b".into(), "b:1".into());
        assert_eq!(never.status(0, &t), NodeStatus::Connecting);
    }

    #[test]
    fn ages_read_like_an_operator_would_say_them() {
        assert_eq!(fmt_age(Some(2_500)), "2s");
        assert_eq!(fmt_age(Some(125_000)), "2m");
        assert_eq!(fmt_age(None), "—");
    }

    #[test]
    fn events_are_bounded() {
        let mut v = ClusterView::new(vec![], Thresholds::for_interval(1000));
        for i in 0..(EVENTS_CAP + 50) {
            v.push_event(Event {
                seq: 0,
                at_ms: i as i64,
                node: None,
                severity: Severity::Info,
                text: String::new(),
            });
        }
        assert_eq!(v.events.len(), EVENTS_CAP);
        assert_eq!(v.events.front().unwrap().at_ms, (EVENTS_CAP + 49) as i64);
    }
}

//! The gRPC services an agent serves: NodeService (snapshot, watch) and ControlService
//! (on-demand probes). Who may call what is decided before a handler runs, by the policy
//! layer (`policy`), which hands each handler the caller's `Principal`.

use super::auth::Principal;
use super::state::{AgentState, Versions, now_ms};
use crate::collectors::probes::{self, ProbeOptions};
use crate::model::hostlist;
use crate::model::pinning::Pinning;
use crate::model::ports::{self, PortSpec};
use crate::model::snapshot::Section;
use crate::wire::{self, pb};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct NodeSvc {
    pub state: Arc<AgentState>,
    pub default_interval: Duration,
    pub watches: Arc<WatchLimiter>,
}

/// Caps the Watch streams each principal (reader token, admin token, socket uid) holds
/// open at once: one console needs one per agent, so the cap only bites a client that
/// opens streams without end.
pub struct WatchLimiter {
    max: usize,
    open: std::sync::Mutex<std::collections::HashMap<PrincipalKey, usize>>,
    stats: Arc<super::listen::ServerStats>,
}

/// Who a principal is (name and organisation), not where it calls from: every connection
/// of the reader token counts against the same cap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PrincipalKey {
    name: String,
    org: Option<String>,
}

/// One open Watch stream's place under the cap.
pub struct WatchPermit {
    limiter: Arc<WatchLimiter>,
    key: PrincipalKey,
}

impl WatchLimiter {
    pub fn new(max: usize, stats: Arc<super::listen::ServerStats>) -> Arc<Self> {
        Arc::new(WatchLimiter {
            max,
            open: Default::default(),
            stats,
        })
    }

    pub fn try_open(self: &Arc<Self>, principal: &Principal) -> Result<WatchPermit, Status> {
        use std::sync::atomic::Ordering::Relaxed;
        let key = PrincipalKey {
            name: principal.name.clone(),
            org: principal.org.clone(),
        };
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = g.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            self.stats.watch_rejected.fetch_add(1, Relaxed);
            return Err(Status::resource_exhausted(format!(
                "{} already has {} Watch streams open on this agent (--max-watch-per-principal {}); close some, or raise the limit",
                principal.describe(),
                *n,
                self.max
            )));
        }
        *n += 1;
        self.stats.watch_open.fetch_add(1, Relaxed);
        Ok(WatchPermit {
            limiter: self.clone(),
            key,
        })
    }
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut g = self.limiter.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = g.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                g.remove(&self.key);
            }
        }
        self.limiter.stats.watch_open.fetch_sub(1, Relaxed);
    }
}

fn parse_sections(names: &[String]) -> Result<Vec<Section>, Status> {
    if names.is_empty() {
        return Ok(Section::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            Section::parse(n).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "unknown section `{n}`; known: {}",
                    Section::ALL.map(|s| s.as_str()).join(", ")
                ))
            })
        })
        .collect()
}

/// What one stream has sent: section versions, the pinning it last sent, so the next one
/// can carry only the CPUs that changed, and the last probe round it sent, so the next
/// one carries only the peers probed since.
#[derive(Default)]
struct Sent {
    versions: Versions,
    pinning: Option<Pinning>,
    probe_round: Option<u64>,
}

/// Encodes the sections of `want` whose version differs from what this stream last sent.
fn encode_changes(
    state: &AgentState,
    want: &[Section],
    sent: &mut Sent,
    full: bool,
) -> pb::NodeSnapshot {
    state.with_snapshot(|snap, versions| {
        let changed: Vec<Section> = want
            .iter()
            .copied()
            .filter(|s| full || versions.of(*s) != sent.versions.of(*s))
            .collect();
        for s in &changed {
            sent.versions.sections.insert(*s, versions.of(*s));
        }
        // Pinning changes a few CPUs at a time (threads become runnable or sleep): a delta
        // sends those, not the summary of every CPU, which is most of a message's weight.
        let mut pinning_delta = None;
        if changed.contains(&Section::Pinning) {
            if let (false, Some(before), Some(now)) =
                (full, sent.pinning.as_ref(), snap.pinning.as_ref())
            {
                pinning_delta = wire::encode_pinning_changes(before, now);
            }
            sent.pinning = snap.pinning.clone();
        }
        // A probe round changes a few peers (32 of 999 at 1,000 nodes): send those.
        let mut probes_delta = None;
        if changed.contains(&Section::Probes) {
            if let (false, Some(r0), Some(p)) = (full, sent.probe_round, snap.probes.as_ref()) {
                probes_delta = Some(wire::encode_probe_changes(p, r0));
            }
            sent.probe_round = snap.probes.as_ref().map(|p| p.round);
        }
        let others: Vec<Section> = changed
            .iter()
            .copied()
            .filter(|s| {
                !(*s == Section::Pinning && pinning_delta.is_some()
                    || *s == Section::Probes && probes_delta.is_some())
            })
            .collect();
        let mut m = wire::encode_snapshot(snap, &others, full);
        if pinning_delta.is_some() {
            m.pinning = pinning_delta;
        }
        if probes_delta.is_some() {
            m.probes = probes_delta;
        }
        // A topology carries its memory figures; without one, send them alone if they moved.
        if want.contains(&Section::Topology) && versions.memory != sent.versions.memory {
            if !changed.contains(&Section::Topology) {
                m.memory = snap
                    .topology
                    .as_ref()
                    .map(|t| wire::encode_memory(&t.usage()));
            }
            sent.versions.memory = versions.memory;
        }
        m.taken_ms = now_ms();
        m
    })
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::NodeSnapshot, Status>> + Send>>;

#[tonic::async_trait]
impl pb::node_service_server::NodeService for NodeSvc {
    async fn get_snapshot(
        &self,
        req: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::NodeSnapshot>, Status> {
        Principal::of(&req)?;
        let want = parse_sections(&req.get_ref().sections)?;
        let mut sent = Sent::default();
        Ok(Response::new(encode_changes(
            &self.state,
            &want,
            &mut sent,
            true,
        )))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let want = parse_sections(&req.get_ref().sections)?;
        let permit = self.watches.try_open(Principal::of(&req)?)?;
        let min_interval = match req.get_ref().min_interval_ms {
            0 => self.default_interval,
            ms => Duration::from_millis(u64::from(ms).max(50)),
        };
        let state = self.state.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let _permit = permit;
            let mut changes = state.subscribe();
            let mut sent = Sent::default();
            // The probe summary (999 peers at 1,000 nodes) follows in a second message, so
            // no single message, and no receive buffer sized for it, holds everything.
            let first_want: Vec<Section> = want
                .iter()
                .copied()
                .filter(|s| *s != Section::Probes)
                .collect();
            let first = encode_changes(&state, &first_want, &mut sent, true);
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            if want.contains(&Section::Probes) {
                let probes = encode_changes(&state, &want, &mut sent, false);
                if tx.send(Ok(probes)).await.is_err() {
                    return;
                }
            }
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(min_interval) => {}
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    r = changes.changed() => if r.is_err() { return },
                }
                let delta = encode_changes(&state, &want, &mut sent, false);
                // A slow reader holds at most the channel's 4 messages; then we wait.
                if tx.send(Ok(delta)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

#[derive(Clone)]
pub struct ControlSvc {
    pub peers: Vec<String>,
    pub probe: ProbeOptions,
}

/// Upper bound of probes one request may ask for (peers × ports).
pub const MAX_PROBES_PER_REQUEST: usize = 200_000;

#[tonic::async_trait]
impl pb::control_service_server::ControlService for ControlSvc {
    async fn probe_ports(
        &self,
        req: Request<pb::ProbePortsRequest>,
    ) -> Result<Response<pb::ProbePortsResponse>, Status> {
        Principal::of(&req)?;
        let r = req.into_inner();
        let (peers, specs) = plan_probe(
            &self.peers,
            &r.peers,
            &r.groups,
            &r.ports,
            MAX_PROBES_PER_REQUEST,
        )
        .await?;
        let opts = probe_options(&self.probe, r.timeout_ms, r.concurrency);
        let resolved = probes::resolve(&peers).await;
        let report = probes::run(&resolved, &specs, &opts).await;
        Ok(Response::new(pb::ProbePortsResponse {
            report: Some(wire::encode_probe_report(&report, true)),
        }))
    }
}

/// Checks a probe request (ProbePorts, or a full-probe operation) and turns it into
/// peers and ports: `peers` is a host list (empty: the agent's configured peers),
/// `groups` port group ids plus explicit `ports` (none: the continuous set); more than
/// `max` probes is refused.
pub async fn plan_probe(
    configured_peers: &[String],
    peers: &str,
    groups: &[String],
    ports_: &[pb::PortSpec],
    max: usize,
) -> Result<(Vec<String>, Vec<PortSpec>), Status> {
    let peers = if peers.trim().is_empty() {
        configured_peers.to_vec()
    } else {
        // Expansion is bounded (at most MAX_LIST_LEN bytes parsed, MAX_HOSTS names
        // built, tens of milliseconds), but it is still CPU work a caller chooses: it
        // runs on the blocking pool so the async workers keep serving /metrics and gRPC.
        let list = peers.to_string();
        tokio::task::spawn_blocking(move || hostlist::expand(&list))
            .await
            .map_err(|e| Status::internal(format!("expanding the peer list failed: {e}")))?
            .map_err(|e| Status::invalid_argument(format!("peers: {e}")))?
    };
    if peers.is_empty() {
        return Err(Status::failed_precondition(
            "no peers: pass a host list, or start the agent with --peers",
        ));
    }
    let mut specs: Vec<PortSpec> = Vec::new();
    for g in groups {
        let group = ports::group(g).ok_or_else(|| {
            Status::invalid_argument(format!(
                "unknown port group `{g}`; known: {}",
                ports::PORT_GROUPS
                    .iter()
                    .map(|g| g.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        specs.extend(ports::full_ports(&[group]));
    }
    for p in ports_ {
        let port = u16::try_from(p.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                Status::invalid_argument(format!("port {} out of range 1-65535", p.port))
            })?;
        let proto = wire::proto_from_pb(p.proto, "PortSpec")
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        specs.push(PortSpec { port, proto });
    }
    if specs.is_empty() {
        specs = ports::continuous_ports();
    }
    specs.sort();
    specs.dedup();
    if peers.len().saturating_mul(specs.len()) > max {
        return Err(Status::invalid_argument(format!(
            "{} peers × {} ports is more than {max} probes; split the request",
            peers.len(),
            specs.len()
        )));
    }
    Ok((peers, specs))
}

/// The agent's probe options with a request's timeout and concurrency (0: the agent's),
/// each capped.
pub fn probe_options(base: &ProbeOptions, timeout_ms: u32, concurrency: u32) -> ProbeOptions {
    let mut opts = base.clone();
    if timeout_ms > 0 {
        opts.timeout = Duration::from_millis(u64::from(timeout_ms).min(30_000));
    }
    if concurrency > 0 {
        opts.concurrency = (concurrency as usize).min(4096);
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::state::SectionValue;
    use crate::model::snapshot::NodeInfo;
    use crate::model::topology::{NumaNode, Topology};

    fn topo(free: u64, cpus: &str) -> Topology {
        Topology {
            numa_nodes: vec![NumaNode {
                id: 0,
                cpus: crate::model::CpuSet::parse_list(cpus).unwrap(),
                memory_free_bytes: Some(free),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn free_memory_travels_without_the_layout() {
        let st = AgentState::new(NodeInfo::default(), vec![]);
        st.update(SectionValue::Topology(topo(1, "0-95")), None, 0);
        let mut sent = Sent::default();
        let first = encode_changes(&st, &Section::ALL, &mut sent, true);
        assert!(first.topology.is_some() && first.memory.is_none());
        // Only free memory moved: a small memory message, no topology.
        st.update(SectionValue::Topology(topo(2, "0-95")), None, 0);
        let d = encode_changes(&st, &Section::ALL, &mut sent, false);
        assert!(d.topology.is_none());
        assert_eq!(
            d.memory.as_ref().unwrap().numa[0].memory_free_bytes,
            Some(2)
        );
        // Nothing moved: neither.
        let d = encode_changes(&st, &Section::ALL, &mut sent, false);
        assert!(d.topology.is_none() && d.memory.is_none());
        // The layout moved: the whole topology, which carries the memory figures.
        st.update(SectionValue::Topology(topo(3, "0-47")), None, 0);
        let d = encode_changes(&st, &Section::ALL, &mut sent, false);
        assert!(d.topology.is_some() && d.memory.is_none());
        // A receiver that held the first snapshot and applies the memory delta has the same.
        let mut held = crate::wire::decode_snapshot(first).unwrap().snapshot;
        let mut m = pb::NodeSnapshot {
            node: Some(Default::default()),
            memory: Some(crate::wire::encode_memory(&topo(7, "0-95").usage())),
            ..Default::default()
        };
        m.full = false;
        crate::wire::merge_snapshot(&mut held, crate::wire::decode_snapshot(m).unwrap());
        assert_eq!(
            held.topology.unwrap().numa_nodes[0].memory_free_bytes,
            Some(7)
        );
    }

    fn cpu(cpu: u32, runnable: u32) -> crate::model::CpuUse {
        use crate::model::pinning::{ContainerRole, Owner, ProcRef};
        crate::model::CpuUse {
            cpu,
            running: vec![ProcRef {
                pid: 100 + cpu,
                comm: "axon-compute0".into(),
                owner: Owner::Axon {
                    role: ContainerRole::Compute,
                },
                threads: 1,
                runnable,
            }]
            .into(),
            ..Default::default()
        }
    }

    fn pinning(runnable: &[u32]) -> Pinning {
        Pinning {
            cpus: runnable
                .iter()
                .enumerate()
                .map(|(i, r)| cpu(i as u32, *r))
                .collect(),
            processes: 10,
            threads: 20,
            ..Default::default()
        }
    }

    #[test]
    fn probe_deltas_carry_only_the_peers_of_new_rounds() {
        use crate::collectors::probes::ProbeBook;
        use crate::model::probes::{ProbeResult, ProbeState};
        let all: Vec<String> = (1..=200).map(|i| format!("n{i:03}")).collect();
        let mut book = ProbeBook::new(all[1..].to_vec(), 16, &all[0], &all);
        let answer = |peers: &[String], state| -> Vec<ProbeResult> {
            peers
                .iter()
                .flat_map(|p| {
                    crate::model::ports::continuous_ports()
                        .into_iter()
                        .map(move |spec| ProbeResult {
                            peer: p.as_str().into(),
                            address: Default::default(),
                            port: spec.port,
                            proto: spec.proto,
                            state,
                            rtt_us: None,
                            detail: None,
                        })
                })
                .collect()
        };
        let st = AgentState::new(NodeInfo::default(), vec![]);
        let round = |book: &mut ProbeBook, state, at| {
            let (r, peers) = book.next_round();
            book.record(r, answer(&peers, state), at);
            st.update(
                SectionValue::Probes(book.report(10, Duration::from_secs(5))),
                None,
                0,
            );
            peers
        };
        for k in 0..13 {
            round(&mut book, ProbeState::Open, 1_000 + k);
        }
        let mut sent = Sent::default();
        let first = encode_changes(&st, &Section::ALL, &mut sent, true);
        assert_eq!(first.probes.as_ref().unwrap().summary_peers.len(), 199);
        let mut held = crate::wire::decode_snapshot(first).unwrap().snapshot;

        // One round: 16 peers travel, with their blocked results and the new totals.
        let changed = round(&mut book, ProbeState::Filtered, 9_000);
        let d = encode_changes(&st, &Section::ALL, &mut sent, false);
        let p = d.probes.as_ref().unwrap();
        assert!(p.changed_peers_only);
        assert_eq!(p.summary_peers, changed);
        assert_eq!(p.summary_observed_ms, vec![9_000; 16]);
        let ports = crate::model::ports::continuous_ports().len() as u32;
        assert_eq!(p.blocked_total, 16 * ports);
        let decoded = crate::wire::decode_snapshot(d).unwrap();
        assert!(decoded.probes_changes_only);
        crate::wire::merge_snapshot(&mut held, decoded);
        let held = held.probes.unwrap();
        let now = st.snapshot().probes.unwrap();
        assert_eq!(held.summary.len(), 199);
        for s in &now.summary {
            let h = held.peer(&s.peer).unwrap();
            assert_eq!(
                (h.states, h.observed_ms),
                (s.states, s.observed_ms),
                "{}",
                s.peer
            );
        }
        assert_eq!(held.blocked().count() as u32, 16 * ports);
        assert_eq!(
            (held.blocked_total, held.round),
            (now.blocked_total, now.round)
        );
    }

    #[test]
    fn pinning_deltas_carry_only_the_cpus_that_changed() {
        let st = AgentState::new(NodeInfo::default(), vec![]);
        st.update(SectionValue::Pinning(pinning(&[1; 96])), None, 0);
        let mut sent = Sent::default();
        let first = encode_changes(&st, &Section::ALL, &mut sent, true);
        assert_eq!(first.pinning.as_ref().unwrap().cpus.len(), 96);
        assert!(!first.pinning.as_ref().unwrap().changed_cpus_only);
        let mut held = crate::wire::decode_snapshot(first).unwrap().snapshot;

        // Two CPUs changed, and a count: the delta carries those two.
        let mut now = pinning(&[1; 96]);
        now.cpus[5].running[0].runnable = 0;
        now.cpus[90].running[0].runnable = 3;
        now.threads = 21;
        st.update(SectionValue::Pinning(now.clone()), None, 0);
        let d = encode_changes(&st, &Section::ALL, &mut sent, false);
        let p = d.pinning.as_ref().unwrap();
        assert!(p.changed_cpus_only);
        assert_eq!(
            p.cpus.iter().map(|c| c.cpu).collect::<Vec<_>>(),
            vec![5, 90]
        );
        crate::wire::merge_snapshot(&mut held, crate::wire::decode_snapshot(d).unwrap());
        assert_eq!(
            held.pinning.as_ref(),
            Some(&now),
            "the receiver holds the new whole"
        );

        // Every CPU changed: the whole, not a delta.
        let all = pinning(&[2; 96]);
        st.update(SectionValue::Pinning(all.clone()), None, 0);
        let d = encode_changes(&st, &Section::ALL, &mut sent, false);
        assert!(!d.pinning.as_ref().unwrap().changed_cpus_only);
        crate::wire::merge_snapshot(&mut held, crate::wire::decode_snapshot(d).unwrap());
        assert_eq!(held.pinning.as_ref(), Some(&all));

        // A CPU went offline (the list shrank): the whole again.
        let fewer = pinning(&[2; 95]);
        st.update(SectionValue::Pinning(fewer.clone()), None, 0);
        let d = encode_changes(&st, &Section::ALL, &mut sent, false);
        assert!(!d.pinning.as_ref().unwrap().changed_cpus_only);
        crate::wire::merge_snapshot(&mut held, crate::wire::decode_snapshot(d).unwrap());
        assert_eq!(held.pinning.as_ref(), Some(&fewer));

        // A snapshot that never had the whole ignores changes it cannot apply.
        let mut empty = crate::model::NodeSnapshot::default();
        let mut one = fewer.clone();
        one.cpus[0].running[0].runnable = 9;
        st.update(SectionValue::Pinning(one), None, 0);
        let mut other = Sent {
            versions: Versions::default(),
            pinning: Some(fewer.clone()),
            probe_round: None,
        };
        let d = encode_changes(&st, &[Section::Pinning], &mut other, false);
        assert!(d.pinning.as_ref().unwrap().changed_cpus_only);
        crate::wire::merge_snapshot(&mut empty, crate::wire::decode_snapshot(d).unwrap());
        assert_eq!(empty.pinning, None);
    }
}

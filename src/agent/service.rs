//! The gRPC services an agent serves: NodeService (snapshot, watch) and ControlService
//! (on-demand probes). Every call is authorized first (see `auth`).

use super::auth::{self, Role, Tokens};
use super::state::{AgentState, now_ms};
use crate::collectors::probes::{self, ProbeOptions};
use crate::model::hostlist;
use crate::model::ports::{self, PortSpec};
use crate::model::snapshot::Section;
use crate::wire::{self, pb};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct NodeSvc {
    pub state: Arc<AgentState>,
    pub tokens: Arc<Tokens>,
    pub default_interval: Duration,
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

/// Encodes the sections of `want` whose version differs from what this stream last sent.
fn encode_changes(
    state: &AgentState,
    want: &[Section],
    sent: &mut HashMap<Section, u64>,
    full: bool,
) -> pb::NodeSnapshot {
    state.with_snapshot(|snap, versions| {
        let changed: Vec<Section> = want
            .iter()
            .copied()
            .filter(|s| {
                full || versions.get(s).copied().unwrap_or(0) != sent.get(s).copied().unwrap_or(0)
            })
            .collect();
        for s in &changed {
            sent.insert(*s, versions.get(s).copied().unwrap_or(0));
        }
        let mut m = wire::encode_snapshot(snap, &changed, full);
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
        auth::require(&self.tokens, &req, Role::Reader)?;
        let want = parse_sections(&req.get_ref().sections)?;
        let mut sent = HashMap::new();
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
        auth::require(&self.tokens, &req, Role::Reader)?;
        let want = parse_sections(&req.get_ref().sections)?;
        let min_interval = match req.get_ref().min_interval_ms {
            0 => self.default_interval,
            ms => Duration::from_millis(u64::from(ms).max(50)),
        };
        let state = self.state.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut changes = state.subscribe();
            let mut sent = HashMap::new();
            let first = encode_changes(&state, &want, &mut sent, true);
            if tx.send(Ok(first)).await.is_err() {
                return;
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
    pub tokens: Arc<Tokens>,
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
        auth::require(&self.tokens, &req, Role::Admin)?;
        let r = req.into_inner();
        let peers = if r.peers.trim().is_empty() {
            self.peers.clone()
        } else {
            hostlist::expand(&r.peers).map_err(|e| Status::invalid_argument(e.to_string()))?
        };
        if peers.is_empty() {
            return Err(Status::failed_precondition(
                "no peers: pass a host list, or start the agent with --peers",
            ));
        }
        let mut specs: Vec<PortSpec> = Vec::new();
        for g in &r.groups {
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
        for p in &r.ports {
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
        if peers.len().saturating_mul(specs.len()) > MAX_PROBES_PER_REQUEST {
            return Err(Status::invalid_argument(format!(
                "{} peers × {} ports is more than {MAX_PROBES_PER_REQUEST} probes; split the request",
                peers.len(),
                specs.len()
            )));
        }
        let mut opts = self.probe.clone();
        if r.timeout_ms > 0 {
            opts.timeout = Duration::from_millis(u64::from(r.timeout_ms).min(30_000));
        }
        if r.concurrency > 0 {
            opts.concurrency = (r.concurrency as usize).min(4096);
        }
        let resolved = probes::resolve(&peers).await;
        let report = probes::run(&resolved, &specs, &opts).await;
        Ok(Response::new(pb::ProbePortsResponse {
            report: Some(wire::encode_probe_report(&report, true)),
        }))
    }
}

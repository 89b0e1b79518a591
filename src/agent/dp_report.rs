//! The data plane's report (`model::dataplane::NodeDataplane`): assembled every second
//! from the hosted member, store, containers and operations, published as the snapshot's
//! `dataplane` section (Watch sends it when it changed), and served by `DataplaneService`.

use super::state::AgentState;
use crate::model::cluster::ClusterConfig;
use crate::model::dataplane::{DataDrive, NodeDataplane, OpBrief};
use crate::wire::pb;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// How often the report is assembled.
pub const EVERY: Duration = Duration::from_secs(1);

/// This node's report and the configuration it was made from; None without a store or a
/// member.
pub async fn assemble(state: &AgentState) -> (Option<NodeDataplane>, Option<Arc<ClusterConfig>>) {
    let host = state.cluster_host();
    let store = state.store();
    if host.is_none() && store.is_none() {
        return (None, None);
    }
    let mut r = NodeDataplane::default();
    let mut config = None;
    if let Some(h) = &host {
        if let Some((m, leader, c)) = h.info().await {
            r.cluster = m.cluster.clone();
            r.node_id = m.node_id;
            r.leader = leader;
            r.epoch = c.epoch;
            r.k = c.k as u32;
            r.m = c.m as u32;
            r.hot_spares = c.hot_spares as u32;
            r.io = c.io.as_str().to_string();
            r.share = h.data_status();
            config = Some(Arc::new(c));
        }
    }
    if let Some(s) = &store {
        // A store busy with a long write is reported a second later, never waited for.
        if let Ok(g) = s.try_lock() {
            let slot = u64::from(g.chunk_size());
            r.drives = g
                .drives()
                .into_iter()
                .map(|d| DataDrive {
                    id: d.id,
                    path: d.path.display().to_string(),
                    state: d.state.to_string(),
                    capacity_bytes: d.slots.saturating_mul(slot),
                    used_bytes: d.used.saturating_mul(slot),
                    chunks: d.used,
                    problem: d.problem,
                })
                .collect();
        } else if let (Some(old), _) = state.dataplane() {
            r.drives = old.drives;
        }
    }
    if let Some(ops) = state.operations() {
        r.operations = ops
            .list()
            .into_iter()
            .filter(|o| !o.state.finished())
            .map(|o| OpBrief {
                id: o.id,
                kind: o.kind.as_str().to_string(),
                state: o.state.as_str().to_string(),
                summary: if o.step.name.is_empty() {
                    o.target
                } else {
                    format!("{}: {}", o.target, o.step.name)
                },
                done: o.step.done,
                total: o.step.total,
            })
            .collect();
    }
    r.containers = state.containers().map(|c| c.report()).unwrap_or_default();
    (Some(r), config)
}

/// Publishes the report every second, and within 100 ms of a change of the node's share
/// (protection, rebuild), so a reader never sees a share older than the one GetCluster
/// gives; until aborted.
pub async fn publish(state: Arc<AgentState>) {
    let mut last: Option<std::time::Instant> = None;
    loop {
        let share = state.cluster_host().and_then(|h| h.data_status());
        let moved = state.with_snapshot(|s, _| {
            s.dataplane
                .as_ref()
                .is_some_and(|d| !d.cluster.is_empty() && d.share != share)
        });
        if moved || last.is_none_or(|t| t.elapsed() >= EVERY) {
            let (r, c) = assemble(&state).await;
            state.set_dataplane(r, c);
            last = Some(std::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Clone)]
pub struct DataplaneSvc {
    pub state: Arc<AgentState>,
}

#[tonic::async_trait]
impl pb::dataplane_service_server::DataplaneService for DataplaneSvc {
    async fn get_dataplane(
        &self,
        r: Request<pb::GetDataplaneRequest>,
    ) -> Result<Response<pb::DataplaneReply>, Status> {
        // Fresh, not the report published up to a second ago: a script that wrote and
        // then asks sees its writes.
        let (report, config) = assemble(&self.state).await;
        let Some(report) = report else {
            return Err(Status::failed_precondition(
                "this agent hosts no data plane: start it with --store DIR (and --cluster-listen ADDR to be a member)",
            ));
        };
        Ok(Response::new(pb::DataplaneReply {
            node: Some(crate::wire::encode_node_dataplane(Some(&report))),
            config: config
                .filter(|_| r.get_ref().config)
                .map(|c| crate::wire::encode_config(&c)),
        }))
    }
}

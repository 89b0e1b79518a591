//! `ClusterService` (proto/axon/v1/cluster_admin.proto): forming and reading the cluster
//! through the agent's gRPC port, behind the policy layer. The work is `raft::ClusterHost`'s.

use super::raft::{ClusterError, ClusterHost, MemberInfo, Membership};
use super::state::AgentState;
use crate::model::cluster::Command;
use crate::wire::pb;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct ClusterSvc {
    pub state: Arc<AgentState>,
}

fn host(state: &AgentState) -> Result<Arc<ClusterHost>, Status> {
    state.cluster_host().ok_or_else(|| {
        Status::failed_precondition(
            "this agent hosts no cluster member: start it with --cluster-listen ADDR",
        )
    })
}

fn status(e: ClusterError) -> Status {
    match e {
        ClusterError::NotLeader(_) => Status::failed_precondition(e.to_string()),
        ClusterError::Refused(_) => Status::failed_precondition(e.to_string()),
        ClusterError::Setup(_) | ClusterError::Raft(_) => Status::unavailable(e.to_string()),
    }
}

fn member_pb(m: &MemberInfo) -> pb::ClusterMember {
    pb::ClusterMember {
        id: m.id,
        name: m.name.clone(),
        address: m.address.clone(),
        fingerprint: m.fingerprint.clone(),
    }
}

async fn info(h: &ClusterHost, epoch: Option<u64>) -> pb::ClusterInfo {
    let mut out = pb::ClusterInfo {
        cluster_port: u32::from(h.port()),
        fingerprint: h.fingerprint(),
        ..Default::default()
    };
    if let Some((m, leader, config)) = h.info().await {
        out.cluster = m.cluster.clone();
        out.node_id = m.node_id;
        out.members = m.members.iter().map(member_pb).collect();
        out.leader = leader;
        out.epoch = epoch.unwrap_or(config.epoch);
        out.config_json = serde_json::to_string(&config).unwrap_or_default();
    }
    out
}

#[tonic::async_trait]
impl pb::cluster_service_server::ClusterService for ClusterSvc {
    async fn get_cluster(
        &self,
        _r: Request<pb::GetClusterRequest>,
    ) -> Result<Response<pb::ClusterInfo>, Status> {
        let h = host(&self.state)?;
        Ok(Response::new(info(&h, None).await))
    }

    async fn join(&self, r: Request<pb::JoinRequest>) -> Result<Response<pb::ClusterInfo>, Status> {
        let h = host(&self.state)?;
        let r = r.into_inner();
        if r.cluster.is_empty() || r.members.is_empty() {
            return Err(Status::invalid_argument(
                "a join names the cluster and its members",
            ));
        }
        let m = Membership {
            cluster: r.cluster,
            node_id: r.node_id,
            members: r
                .members
                .into_iter()
                .map(|m| MemberInfo {
                    id: m.id,
                    name: m.name,
                    address: m.address,
                    fingerprint: m.fingerprint,
                })
                .collect(),
        };
        h.join(m).await.map_err(status)?;
        Ok(Response::new(info(&h, None).await))
    }

    async fn initialize(
        &self,
        r: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::ClusterInfo>, Status> {
        let h = host(&self.state)?;
        h.initialize(&r.into_inner().voters).await.map_err(status)?;
        Ok(Response::new(info(&h, None).await))
    }

    async fn propose(
        &self,
        r: Request<pb::ProposeRequest>,
    ) -> Result<Response<pb::ClusterInfo>, Status> {
        let h = host(&self.state)?;
        let cmd: Command = serde_json::from_str(&r.into_inner().command_json)
            .map_err(|e| Status::invalid_argument(format!("not a cluster command: {e}")))?;
        let applied = h.propose(cmd).await.map_err(status)?;
        Ok(Response::new(info(&h, Some(applied.epoch)).await))
    }
}

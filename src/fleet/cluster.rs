//! The console side of `ClusterService`: one agent's place in the data-plane cluster, and
//! the calls that form it (`axon cluster create|status`).

use super::client::{self, ClusterClient};
use super::inventory::NodeSpec;
use super::tls::Security;
use crate::model::cluster::{ClusterConfig, Command};
use crate::wire::pb;
use std::time::Duration;

/// One member as an agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub fingerprint: String,
}

/// What an agent says of the cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentCluster {
    pub cluster_port: u16,
    pub fingerprint: String,
    /// None when the agent is not a member.
    pub cluster: Option<String>,
    pub node_id: u64,
    pub members: Vec<Member>,
    /// 0 when no leader is known.
    pub leader: u64,
    pub epoch: u64,
    pub config: Option<ClusterConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterCallError {
    #[error("{node}: {detail}")]
    Connect { node: String, detail: String },
    #[error(
        "{node}: needs the admin token ({detail}); pass --token-file with the agent's admin.token"
    )]
    NeedsAdmin { node: String, detail: String },
    #[error("{node}: {detail}")]
    Refused { node: String, detail: String },
}

pub struct ClusterAgent {
    pub node: String,
    client: ClusterClient,
}

fn decode(i: pb::ClusterInfo) -> AgentCluster {
    AgentCluster {
        cluster_port: i.cluster_port as u16,
        fingerprint: i.fingerprint,
        cluster: (!i.cluster.is_empty()).then_some(i.cluster),
        node_id: i.node_id,
        members: i
            .members
            .into_iter()
            .map(|m| Member {
                id: m.id,
                name: m.name,
                address: m.address,
                fingerprint: m.fingerprint,
            })
            .collect(),
        leader: i.leader,
        epoch: i.epoch,
        config: serde_json::from_str(&i.config_json).ok(),
    }
}

/// How long one ClusterService call may take: a change waits for a majority (10 s at
/// most on the agent), forming the group for an election.
const CALL: Duration = Duration::from_secs(40);

impl ClusterAgent {
    pub async fn connect(
        spec: &NodeSpec,
        token: Option<String>,
        security: Security,
        timeout: Duration,
    ) -> Result<ClusterAgent, ClusterCallError> {
        let c = client::connect_node(spec, token, security, timeout)
            .await
            .map_err(|detail| ClusterCallError::Connect {
                node: spec.name.clone(),
                detail,
            })?;
        Ok(ClusterAgent {
            node: spec.name.clone(),
            client: c.cluster,
        })
    }

    fn err(&self, s: tonic::Status) -> ClusterCallError {
        let node = self.node.clone();
        let detail = s.message().to_string();
        match s.code() {
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
                ClusterCallError::NeedsAdmin { node, detail }
            }
            _ => ClusterCallError::Refused { node, detail },
        }
    }

    pub async fn get(&mut self) -> Result<AgentCluster, ClusterCallError> {
        match tokio::time::timeout(CALL, self.client.get_cluster(pb::GetClusterRequest {}))
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 40 s")))
        {
            Ok(r) => Ok(decode(r.into_inner())),
            Err(s) => Err(self.err(s)),
        }
    }

    pub async fn join(
        &mut self,
        cluster: &str,
        node_id: u64,
        members: &[Member],
    ) -> Result<AgentCluster, ClusterCallError> {
        let req = pb::JoinRequest {
            cluster: cluster.to_string(),
            node_id,
            members: members
                .iter()
                .map(|m| pb::ClusterMember {
                    id: m.id,
                    name: m.name.clone(),
                    address: m.address.clone(),
                    fingerprint: m.fingerprint.clone(),
                })
                .collect(),
        };
        match tokio::time::timeout(CALL, self.client.join(req))
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 40 s")))
        {
            Ok(r) => Ok(decode(r.into_inner())),
            Err(s) => Err(self.err(s)),
        }
    }

    pub async fn initialize(&mut self, voters: &[u64]) -> Result<AgentCluster, ClusterCallError> {
        let req = pb::InitializeRequest {
            voters: voters.to_vec(),
        };
        match tokio::time::timeout(CALL, self.client.initialize(req))
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 40 s")))
        {
            Ok(r) => Ok(decode(r.into_inner())),
            Err(s) => Err(self.err(s)),
        }
    }

    pub async fn propose(&mut self, cmd: &Command) -> Result<AgentCluster, ClusterCallError> {
        let req = pb::ProposeRequest {
            command_json: serde_json::to_string(cmd).unwrap_or_default(),
        };
        match tokio::time::timeout(CALL, self.client.propose(req))
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 40 s")))
        {
            Ok(r) => Ok(decode(r.into_inner())),
            Err(s) => Err(self.err(s)),
        }
    }
}

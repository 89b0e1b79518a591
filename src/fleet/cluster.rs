//! The console side of `ClusterService`: one agent's place in the data-plane cluster, and
//! the calls that form it (`axon cluster create|status`).

use super::client::{self, ClusterClient, DataClient, DataplaneClient};
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
    /// host:port of its data listener, "" if it has none.
    pub data_address: String,
}

/// What an agent says of the cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentCluster {
    pub cluster_port: u16,
    /// 0 when the agent has no data listener (--data-listen).
    pub data_port: u16,
    pub fingerprint: String,
    /// None when the agent is not a member.
    pub cluster: Option<String>,
    pub node_id: u64,
    pub members: Vec<Member>,
    /// 0 when no leader is known.
    pub leader: u64,
    pub epoch: u64,
    pub config: Option<ClusterConfig>,
    /// The node's share of the data plane, if it serves one (`get_with_share`; `get`
    /// leaves it None).
    pub data: Option<crate::model::dataplane::DataStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterCallError {
    /// `detail` names the node already (`client::node_error`).
    #[error("{detail}")]
    Connect { node: String, detail: String },
    #[error(
        "{node}: needs the admin token ({detail}); pass --token-file with the agent's admin.token"
    )]
    NeedsAdmin { node: String, detail: String },
    /// No token, or one the agent does not know: reads need the reader token at least.
    #[error(
        "{node}: no token the agent accepts ({detail}); pass --token-file with the agent's reader.token (to read) or admin.token (to change)"
    )]
    NoToken { node: String, detail: String },
    #[error("{node}: {detail}")]
    Refused { node: String, detail: String },
    /// The object (or the member) is not there.
    #[error("{detail}")]
    NotFound { node: String, detail: String },
    /// Too much of the cluster is away to answer (more than m nodes of a stripe or of
    /// the members); never answered with partial data.
    #[error("{node}: unavailable: {detail}")]
    Unavailable { node: String, detail: String },
}

#[derive(Clone)]
pub struct ClusterAgent {
    pub node: String,
    client: ClusterClient,
    dataplane: DataplaneClient,
    /// Chunks and manifests, for a frontend of the caller's own (`super::direct`).
    pub data: DataClient,
}

fn decode(i: pb::ClusterInfo) -> AgentCluster {
    AgentCluster {
        cluster_port: i.cluster_port as u16,
        data_port: i.data_port as u16,
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
                data_address: m.data_address,
            })
            .collect(),
        leader: i.leader,
        epoch: i.epoch,
        config: serde_json::from_str(&i.config_json).ok(),
        data: None,
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
            dataplane: c.dataplane,
            data: c.data,
        })
    }

    pub fn err(&self, s: tonic::Status) -> ClusterCallError {
        let node = self.node.clone();
        let detail = s.message().to_string();
        match s.code() {
            tonic::Code::PermissionDenied => ClusterCallError::NeedsAdmin { node, detail },
            tonic::Code::Unauthenticated => ClusterCallError::NoToken { node, detail },
            tonic::Code::NotFound => ClusterCallError::NotFound { node, detail },
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                ClusterCallError::Unavailable { node, detail }
            }
            _ => ClusterCallError::Refused { node, detail },
        }
    }

    /// The node's data-plane report (`DataplaneService.GetDataplane`): its drives with
    /// state and usage, its share of the stripes, containers and operations.
    pub async fn report(
        &mut self,
    ) -> Result<crate::model::dataplane::NodeDataplane, ClusterCallError> {
        let req = pb::GetDataplaneRequest { config: false };
        let r = match tokio::time::timeout(CALL, self.dataplane.get_dataplane(req)).await {
            Ok(r) => r.map_err(|s| self.err(s))?.into_inner(),
            Err(_) => {
                return Err(ClusterCallError::Unavailable {
                    node: self.node.clone(),
                    detail: format!("no data-plane report within {CALL:?}"),
                });
            }
        };
        let node = r.node.unwrap_or_default();
        match crate::wire::decode_node_dataplane(node) {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(ClusterCallError::Refused {
                node: self.node.clone(),
                detail: "reports no data plane".into(),
            }),
            Err(e) => Err(ClusterCallError::Refused {
                node: self.node.clone(),
                detail: e.to_string(),
            }),
        }
    }

    /// As `get`, with the member's share of the data plane from its typed report
    /// (`DataplaneService.GetDataplane`); a member that serves none has `data` None.
    pub async fn get_with_share(&mut self) -> Result<AgentCluster, ClusterCallError> {
        let mut i = self.get().await?;
        if i.cluster.is_some() {
            i.data = self.report().await.ok().and_then(|d| d.share);
        }
        Ok(i)
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
                    data_address: m.data_address.clone(),
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

/// An object as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectEntry {
    pub key: String,
    pub size: u64,
    pub stripes: u32,
    pub generation: u64,
}

/// What a put stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stored {
    pub key: String,
    pub size: u64,
    pub stripes: u32,
    pub generation: u64,
    pub nodes: u32,
}

/// Objects in and out of the cluster through one agent's frontend. No deadline on the
/// transfer itself (an object may be large): the agent's own calls to its peers have them.
impl ClusterAgent {
    /// Stores `key` from `body` (pieces of the object, in order).
    pub async fn put_object(
        &mut self,
        key: &str,
        body: impl futures::Stream<Item = bytes::Bytes> + Send + 'static,
    ) -> Result<Stored, ClusterCallError> {
        use futures::StreamExt;
        let first = pb::PutObjectRequest {
            key: key.to_string(),
            data: bytes::Bytes::new(),
        };
        let rest = body.map(|data| pb::PutObjectRequest {
            key: String::new(),
            data,
        });
        let req = futures::stream::iter([first]).chain(rest);
        match self.client.put_object(req).await {
            Ok(r) => {
                let r = r.into_inner();
                Ok(Stored {
                    key: r.key,
                    size: r.size,
                    stripes: r.stripes,
                    generation: r.generation,
                    nodes: r.nodes,
                })
            }
            Err(s) => Err(self.err(s)),
        }
    }

    /// The object's bytes as a stream, and its size.
    /// The whole object in memory (small objects: the demo's load, tests).
    pub async fn get_object_bytes(&mut self, key: &str) -> Result<Vec<u8>, ClusterCallError> {
        let mut s = self.get_object(key).await?;
        let mut out = Vec::new();
        loop {
            match s.message().await {
                Ok(Some(r)) => out.extend_from_slice(&r.data),
                Ok(None) => return Ok(out),
                Err(st) => return Err(self.err(st)),
            }
        }
    }

    pub async fn get_object(
        &mut self,
        key: &str,
    ) -> Result<tonic::Streaming<pb::GetObjectReply>, ClusterCallError> {
        let req = pb::GetObjectRequest {
            key: key.to_string(),
        };
        let mut c = self.client.clone().max_decoding_message_size(64 << 20);
        match c.get_object(req).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(self.err(s)),
        }
    }

    /// Objects whose key starts with `prefix`, and members that did not answer.
    pub async fn list_objects(
        &mut self,
        prefix: &str,
    ) -> Result<(Vec<ObjectEntry>, Vec<String>), ClusterCallError> {
        let req = pb::ListObjectsRequest {
            prefix: prefix.to_string(),
        };
        match tokio::time::timeout(CALL, self.client.list_objects(req))
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 40 s")))
        {
            Ok(r) => {
                let r = r.into_inner();
                Ok((
                    r.objects
                        .into_iter()
                        .map(|o| ObjectEntry {
                            key: o.key,
                            size: o.size,
                            stripes: o.stripes,
                            generation: o.generation,
                        })
                        .collect(),
                    r.unreachable,
                ))
            }
            Err(s) => Err(self.err(s)),
        }
    }

    /// Deletes `key`; false if there was none.
    pub async fn delete_object(&mut self, key: &str) -> Result<bool, ClusterCallError> {
        let req = pb::DeleteObjectRequest {
            key: key.to_string(),
        };
        match tokio::time::timeout(CALL, self.client.delete_object(req))
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 40 s")))
        {
            Ok(r) => Ok(r.into_inner().existed),
            Err(s) => Err(self.err(s)),
        }
    }
}

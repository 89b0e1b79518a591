//! A member of the cluster configuration's Raft group: openraft (`dataplane::cluster`)
//! over gRPC (`RaftService`, proto/axon/v1/cluster.proto). Each node serves the service on
//! its own listener and reaches its peers through lazily connected channels; every call
//! carries openraft's deadline.

use crate::dataplane::cluster::config::{Applied, ClusterConfig, Command};
use crate::dataplane::cluster::raftstore::{self, ConfigView, NodeId, Raft, TypeConfig};
use crate::wire::pb::RaftPayload;
use crate::wire::pb::raft_service_client::RaftServiceClient;
use crate::wire::pb::raft_service_server::{RaftService, RaftServiceServer};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// The Raft timing: heartbeats every 250 ms, an election after 1–2 s without one.
pub fn raft_config() -> Config {
    Config {
        cluster_name: "axon".into(),
        heartbeat_interval: 250,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        ..Default::default()
    }
}

/// Reaches peers over gRPC.
#[derive(Clone, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let channel = Endpoint::from_shared(format!("http://{}", node.addr))
            .map(|e| {
                e.connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .connect_lazy()
            })
            .ok();
        Peer { target, channel }
    }
}

/// One of RaftService's calls on a client.
type Rpc =
    fn(
        RaftServiceClient<Channel>,
        RaftPayload,
    )
        -> futures::future::BoxFuture<'static, Result<tonic::Response<RaftPayload>, tonic::Status>>;

pub struct Peer {
    target: NodeId,
    channel: Option<Channel>,
}

fn net_err<E: std::error::Error>(
    e: impl std::error::Error + 'static,
) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(&e))
}

impl Peer {
    /// Sends one request, JSON each way, within openraft's deadline for it.
    async fn call<Req, Resp, E>(
        &mut self,
        which: Rpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(ch) = self.channel.clone() else {
            return Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other("the peer's address is not a valid URI"),
            )));
        };
        let json = serde_json::to_vec(req).map_err(net_err)?;
        let reply = tokio::time::timeout(
            option.hard_ttl(),
            which(RaftServiceClient::new(ch), RaftPayload { json }),
        )
        .await
        .map_err(|_| {
            RPCError::Network(NetworkError::new(&std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer did not answer in time",
            )))
        })?
        .map_err(net_err)?;
        let r: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&reply.into_inner().json).map_err(net_err)?;
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(
            |mut c, p| Box::pin(async move { c.append_entries(p).await }),
            &req,
            &option,
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(
            |mut c, p| Box::pin(async move { c.install_snapshot(p).await }),
            &req,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(
            |mut c, p| Box::pin(async move { c.vote(p).await }),
            &req,
            &option,
        )
        .await
    }
}

/// The server side: hands each request to the local Raft.
struct Service {
    raft: Raft,
}

fn decode<T: DeserializeOwned>(p: &RaftPayload) -> Result<T, tonic::Status> {
    serde_json::from_slice(&p.json)
        .map_err(|e| tonic::Status::invalid_argument(format!("not an openraft request: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
    serde_json::to_vec(v)
        .map(|json| tonic::Response::new(RaftPayload { json }))
        .map_err(|e| tonic::Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl RaftService for Service {
    async fn append_entries(
        &self,
        r: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let req: AppendEntriesRequest<TypeConfig> = decode(r.get_ref())?;
        encode(&self.raft.append_entries(req).await)
    }

    async fn vote(
        &self,
        r: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let req: VoteRequest<NodeId> = decode(r.get_ref())?;
        encode(&self.raft.vote(req).await)
    }

    async fn install_snapshot(
        &self,
        r: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let req: InstallSnapshotRequest<TypeConfig> = decode(r.get_ref())?;
        encode(&self.raft.install_snapshot(req).await)
    }
}

/// One member of the Raft group, serving RaftService on `addr`.
pub struct ClusterNode {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub raft: Raft,
    view: ConfigView,
    server: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Setup(String),
    #[error("not the leader; the leader is {0}")]
    NotLeader(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("raft: {0}")]
    Raft(String),
}

impl ClusterNode {
    /// Opens (or creates) the member's Raft database in `dir` and serves on `listen`.
    pub async fn start(
        id: NodeId,
        dir: &Path,
        listen: SocketAddr,
    ) -> Result<ClusterNode, ClusterError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClusterError::Setup(format!("{}: {e}", dir.display())))?;
        let (log, sm) = raftstore::open(&dir.join("raft.redb")).map_err(ClusterError::Setup)?;
        let view = sm.view();
        let config = Arc::new(
            raft_config()
                .validate()
                .map_err(|e| ClusterError::Setup(e.to_string()))?,
        );
        let raft = Raft::new(id, config, Network, log, sm)
            .await
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| ClusterError::Setup(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = RaftServiceServer::new(Service { raft: raft.clone() })
            .max_decoding_message_size(64 << 20);
        let server = tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(ClusterNode {
            id,
            addr,
            raft,
            view,
            server,
            stop: Some(tx),
        })
    }

    /// Forms the group: `voters` (id → address) vote; call on one member only, once.
    pub async fn initialize(&self, voters: &BTreeMap<NodeId, String>) -> Result<(), ClusterError> {
        let members: BTreeMap<NodeId, BasicNode> = voters
            .iter()
            .map(|(id, a)| (*id, BasicNode { addr: a.clone() }))
            .collect();
        self.raft
            .initialize(members)
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))
    }

    /// Proposes a change; only the leader accepts it.
    pub async fn propose(&self, cmd: Command) -> Result<Applied, ClusterError> {
        match self.raft.client_write(cmd).await {
            Ok(r) => match r.data.refused {
                Some(why) => Err(ClusterError::Refused(why)),
                None => Ok(r.data),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ClusterError::NotLeader(
                    f.leader_node
                        .map(|n| n.addr)
                        .unwrap_or_else(|| "not known yet".into()),
                ))
            }
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    /// The configuration as this member has applied it.
    pub fn config(&self) -> ClusterConfig {
        self.view.config()
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Stops Raft and the server (the database stays, to start again from).
    pub async fn shutdown(mut self) {
        let _ = self.raft.shutdown().await;
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
    }
}

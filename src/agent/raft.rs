//! A member of the cluster configuration's Raft group: openraft (`dataplane::cluster`)
//! over gRPC (`RaftService`, proto/axon/v1/cluster.proto). Each node serves the service on
//! its own listener and reaches its peers through lazily connected channels; every call
//! carries openraft's deadline.
//!
//! Members talk mutual TLS: each presents its agent certificate and accepts only peers
//! whose certificate fingerprint is a member's (`MemberTls`). Anyone else fails the
//! handshake, before any Raft message is read. The listener runs under the agent's
//! connection limits (`listen::tcp_incoming`).

use super::listen::{self, Limits, ServerStats, Which};
use super::tls::Identity;
use crate::dataplane::cluster::config::{Applied, ClusterConfig, Command};
use crate::dataplane::cluster::raftstore::{self, ConfigView, NodeId, Raft, TypeConfig};
use crate::wire::pb::RaftPayload;
use crate::wire::pb::raft_service_client::RaftServiceClient;
use crate::wire::pb::raft_service_server::{RaftService, RaftServiceServer};
use crate::wire::tls::{Fingerprint, provider};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
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

/// Who may speak Raft: this member's identity, and the fingerprints of every member's
/// certificate (its own included).
#[derive(Clone)]
pub struct MemberTls {
    pub identity: Arc<Identity>,
    pub members: Arc<Vec<Fingerprint>>,
}

/// Accepts a peer (as server or as client) whose certificate is a member's.
#[derive(Debug)]
struct MemberVerifier {
    members: Arc<Vec<Fingerprint>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl MemberVerifier {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let got = Fingerprint::of_der(cert);
        if self.members.contains(&got) {
            Ok(())
        } else {
            Err(rustls::Error::General(format!(
                "certificate {got} is not a cluster member's; the members are the inventory's nodes at `axon cluster create`"
            )))
        }
    }
}

impl ServerCertVerifier for MemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ClientCertVerifier for MemberVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls12_signature(self, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls13_signature(self, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ServerCertVerifier::supported_verify_schemes(self)
    }
}

impl MemberTls {
    fn verifier(&self) -> Arc<MemberVerifier> {
        Arc::new(MemberVerifier {
            members: self.members.clone(),
            provider: provider(),
        })
    }

    fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, ClusterError> {
        self.identity
            .mutual_server_config(self.verifier())
            .map_err(|e| ClusterError::Setup(e.to_string()))
    }

    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ClusterError> {
        self.identity
            .mutual_client_config(self.verifier())
            .map_err(|e| ClusterError::Setup(e.to_string()))
    }
}

/// Reaches peers over gRPC with mutual TLS.
#[derive(Clone)]
pub struct Network {
    tls: Arc<rustls::ClientConfig>,
}

impl Network {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Network {
        Network { tls }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let dial = node.addr.clone();
        // The name is not checked (members are known by their certificates' fingerprints),
        // but TLS needs one.
        let name = ServerName::try_from("axon-cluster-member").expect("a valid DNS name");
        let channel = Endpoint::from_shared(format!("http://{}", node.addr))
            .map(|e| {
                e.connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .connect_with_connector_lazy(tower::service_fn(
                        move |_: tonic::transport::Uri| {
                            let connector = connector.clone();
                            let dial = dial.clone();
                            let name = name.clone();
                            async move {
                                let tcp = tokio::time::timeout(
                                    Duration::from_secs(2),
                                    tokio::net::TcpStream::connect(&dial),
                                )
                                .await
                                .map_err(|_| {
                                    std::io::Error::new(
                                        std::io::ErrorKind::TimedOut,
                                        "connect timed out",
                                    )
                                })??;
                                tcp.set_nodelay(true)?;
                                let s = connector.connect(name, tcp).await?;
                                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                            }
                        },
                    ))
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
    stats: Arc<ServerStats>,
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
    /// Opens (or creates) the member's Raft database in `dir` and serves on `listen`, with
    /// mutual TLS among the members `tls` names.
    pub async fn start(
        id: NodeId,
        dir: &Path,
        listen: SocketAddr,
        tls: &MemberTls,
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
        let raft = Raft::new(id, config, Network::new(tls.client_config()?), log, sm)
            .await
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| ClusterError::Setup(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        let stats = Arc::new(ServerStats::default());
        let (incoming, accept) = listen::tcp_incoming(
            listener,
            Some(tokio_rustls::TlsAcceptor::from(tls.server_config()?)),
            Which::GrpcTcp,
            &Limits::default(),
            stats.clone(),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = RaftServiceServer::new(Service { raft: raft.clone() })
            .max_decoding_message_size(64 << 20);
        let stop_accept = stats.clone();
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
            stop_accept.shut_down();
            let _ = accept.await;
        });
        Ok(ClusterNode {
            id,
            addr,
            raft,
            view,
            server,
            stop: Some(tx),
            stats,
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

    /// TLS handshakes this member's listener refused (a certificate not a member's, …).
    pub fn refused_handshakes(&self) -> u64 {
        self.stats
            .grpc_tcp
            .handshake_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Stops Raft and the server (the database stays, to start again from).
    pub async fn shutdown(mut self) {
        let _ = self.raft.shutdown().await;
        // Open connections fail and the accept loop stops, so the server can finish.
        self.stats.shut_down();
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
    }
}

//! A member of the cluster configuration's Raft group: openraft (`dataplane::cluster`)
//! over gRPC (`RaftService`, proto/axon/v1/cluster.proto). Each node serves the service on
//! its own listener and reaches its peers through lazily connected channels; every call
//! carries openraft's deadline.
//!
//! Members talk mutual TLS: each presents its agent certificate and accepts only peers
//! whose certificate fingerprint is a member's (`MemberTls`). Anyone else fails the
//! handshake, before any Raft message is read. A message that speaks for a member (a vote,
//! entries, a snapshot) must come with that member's certificate (`Service::speaks_for`):
//! one member cannot vote or lead as another. The listener runs under the agent's
//! connection limits (`listen::tcp_incoming_with`).

use super::listen::{self, Limits, ServerStats, Which};
use super::tls::Identity;
use crate::dataplane::cluster::raftstore::{self, ConfigView, NodeId, Raft, TypeConfig};
use crate::model::cluster::{Applied, ClusterConfig, Command};
use crate::wire::pb::RaftPayload;
use crate::wire::pb::raft_service_client::RaftServiceClient;
use crate::wire::pb::raft_service_server::{RaftService, RaftServiceServer};
use crate::wire::tls::{Fingerprint, provider, signatures};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
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
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
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

/// Who may speak Raft: this member's identity, and every member's certificate
/// fingerprint by node id (its own included). A server must present the fingerprint of the
/// member it is dialled as; a client, any member's.
#[derive(Clone)]
pub struct MemberTls {
    pub identity: Arc<Identity>,
    pub members: Arc<BTreeMap<NodeId, Fingerprint>>,
}

/// Accepts a peer whose certificate is a member's (`only`: that one member's).
#[derive(Debug)]
struct MemberVerifier {
    members: Vec<Fingerprint>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl MemberVerifier {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let got = Fingerprint::of_der(cert);
        if self.members.contains(&got) {
            Ok(())
        } else {
            Err(rustls::Error::General(format!(
                "certificate {got} is not the cluster member's expected here; the members are the inventory's nodes at `axon cluster create`"
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
        signatures::tls12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signatures::schemes(&self.provider)
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
    fn verifier(&self, only: Option<NodeId>) -> Arc<MemberVerifier> {
        let members = match only {
            Some(id) => self.members.get(&id).copied().into_iter().collect(),
            None => self.members.values().copied().collect(),
        };
        Arc::new(MemberVerifier {
            members,
            provider: provider(),
        })
    }

    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, ClusterError> {
        self.identity
            .mutual_server_config(self.verifier(None))
            .map_err(|e| ClusterError::Setup(e.to_string()))
    }

    /// For dialling member `target`: its server must present `target`'s certificate (an
    /// address reused by another member is refused, so no member counts twice).
    pub fn client_config(&self, target: NodeId) -> Result<Arc<rustls::ClientConfig>, ClusterError> {
        self.identity
            .mutual_client_config(self.verifier(Some(target)))
            .map_err(|e| ClusterError::Setup(e.to_string()))
    }
}

/// A lazily connected channel to member `target` at `addr` over mutual TLS, pinned to the
/// member's own certificate; None if the address is not usable.
pub fn member_channel(tls: &MemberTls, target: NodeId, addr: &str) -> Option<Channel> {
    let cfg = tls.client_config(target).ok()?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let dial = addr.to_string();
    // The name is not checked (members are known by their certificates' fingerprints), but
    // TLS needs one.
    let name = ServerName::try_from("axon-cluster-member").expect("a valid DNS name");
    Endpoint::from_shared(format!("http://{addr}"))
        .map(|e| {
            e.connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .initial_connection_window_size(super::data::DATA_CONN_WINDOW)
                .initial_stream_window_size(super::data::DATA_STREAM_WINDOW)
                .connect_with_connector_lazy(tower::service_fn(move |_: tonic::transport::Uri| {
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
                            std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                        })??;
                        tcp.set_nodelay(true)?;
                        let s = connector.connect(name, tcp).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                    }
                }))
        })
        .ok()
}

/// Which members answer, as the last calls found them; shared by every client openraft
/// makes (one per replication stream, one per vote round), so each change is logged once
/// and timeouts are counted across them.
#[derive(Default)]
struct Reach {
    /// Members the last call could not reach (refused, or silent `SILENT_CALLS` times).
    unreachable: HashSet<NodeId>,
    /// Calls in a row that timed out, by member.
    silent: HashMap<NodeId, u32>,
}

/// Calls in a row that time out before a member counts as unreachable. A refused
/// connection is unreachable at once; a silent host (powered off, a dropped route, a hung
/// process) only times out, so it takes a few: one slow answer from a busy member is not
/// reason enough to back off from it.
const SILENT_CALLS: u32 = 3;

/// Reaches peers over gRPC with mutual TLS, each pinned to its own certificate.
#[derive(Clone)]
pub struct Network {
    tls: MemberTls,
    unreachable: Arc<Mutex<Reach>>,
}

impl Network {
    pub fn new(tls: MemberTls) -> Network {
        Network {
            tls,
            unreachable: Arc::default(),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            channel: member_channel(&self.tls, target, &node.addr),
            unreachable: self.unreachable.clone(),
        }
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
    /// The network's view of which members answer (see `Reach`).
    unreachable: Arc<Mutex<Reach>>,
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
        // Within openraft's own deadline (`hard_ttl`, which drops the call at once), so a
        // call without an answer is counted here before openraft gives up on it.
        let ttl = option.soft_ttl();
        let reply = match tokio::time::timeout(
            ttl,
            which(RaftServiceClient::new(ch), RaftPayload { json }),
        )
        .await
        {
            Err(_) => {
                let why = format!("the peer did not answer in {} ms", ttl.as_millis());
                return Err(self.no_answer(why));
            }
            Ok(Err(s)) if s.code() == tonic::Code::Unavailable => {
                // No connection (nothing listens at the address): openraft then waits out
                // `backoff` before it tries this peer again, rather than at every heartbeat.
                return Err(self.unreachable(&s, s.message()));
            }
            Ok(Err(s)) if connect_timed_out(&s) => {
                return Err(
                    self.no_answer(format!("no connection: {}", crate::wire::error_chain(&s)))
                );
            }
            Ok(r) => r.map_err(net_err)?,
        };
        if self.set_reached(true) {
            tracing::info!("raft: member {} reachable again", self.target);
        }
        let r: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&reply.into_inner().json).map_err(net_err)?;
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl Peer {
    /// Records whether this peer answered; true when that changed. An answer also ends a
    /// run of timeouts.
    fn set_reached(&self, reached: bool) -> bool {
        let Ok(mut r) = self.unreachable.lock() else {
            return false;
        };
        if reached {
            r.silent.remove(&self.target);
            r.unreachable.remove(&self.target)
        } else {
            r.unreachable.insert(self.target)
        }
    }

    /// The error for a call that got no answer: the deadline cut it short, or the
    /// connection could not be made in time. After `SILENT_CALLS` in a row the member is
    /// unreachable, so openraft backs off from a silent host as from one that refuses;
    /// before that it is a network error, retried at the next heartbeat. The count and
    /// the change to unreachable are made under one lock, so two calls timing out at once
    /// log the change once.
    fn no_answer<E: std::error::Error>(&self, why: String) -> RPCError<NodeId, BasicNode, E> {
        let err = std::io::Error::new(std::io::ErrorKind::TimedOut, why);
        let (silent, newly) = match self.unreachable.lock() {
            Ok(mut r) => {
                let n = r.silent.entry(self.target).or_default();
                *n = n.saturating_add(1);
                let n = *n;
                (n, n >= SILENT_CALLS && r.unreachable.insert(self.target))
            }
            Err(_) => (0, false),
        };
        if silent < SILENT_CALLS {
            return RPCError::Network(NetworkError::new(&err));
        }
        if newly {
            self.say_unreachable(&format!(
                "{silent} calls in a row got no answer; the last: {err}"
            ));
        }
        RPCError::Unreachable(Unreachable::new(&err))
    }

    /// The one line logged when this peer becomes unreachable.
    fn say_unreachable(&self, why: &str) {
        tracing::warn!(
            "raft: member {} unreachable ({why}); tried again every {} s at most until it answers",
            self.target,
            BACKOFF_MAX.as_secs()
        );
    }

    /// Marks this peer unreachable (logged once per change) and gives openraft the error
    /// that makes it back off.
    fn unreachable<E: std::error::Error>(
        &self,
        err: &(impl std::error::Error + 'static),
        why: &str,
    ) -> RPCError<NodeId, BasicNode, E> {
        if self.set_reached(false) {
            self.say_unreachable(why);
        }
        RPCError::Unreachable(Unreachable::new(err))
    }

    /// Hands a proposal to this peer, the leader, over the members' channel.
    pub async fn forward(&mut self, cmd: &Command) -> Result<Result<Applied, String>, String> {
        let Some(ch) = self.channel.clone() else {
            return Err("the leader's address is not a valid URI".into());
        };
        let json = serde_json::to_vec(cmd).map_err(|e| e.to_string())?;
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            RaftServiceClient::new(ch).forward(RaftPayload { json }),
        )
        .await
        .map_err(|_| "the leader did not answer in 10 s".to_string())?
        .map_err(|s| s.message().to_string())?;
        serde_json::from_slice(&reply.into_inner().json).map_err(|e| e.to_string())
    }
}

/// Whether the channel gave up connecting (its `connect_timeout`): a silent host, as a
/// call past its deadline is. tonic reports it as Unknown with the transport error as its
/// source and a timed-out I/O error below that, where a refused connection is Unavailable
/// (a connection reset or an HTTP/2 error has a transport source too, but no timeout).
fn connect_timed_out(s: &tonic::Status) -> bool {
    if s.code() != tonic::Code::Unknown {
        return false;
    }
    let mut at = std::error::Error::source(s);
    while let Some(e) = at {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        at = e.source();
    }
    false
}

/// The longest wait before retrying a peer that could not be reached.
const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// The waits before retrying a peer that could not be reached: 250 ms, doubling to
/// `BACKOFF_MAX`. A member down for long is tried every 4 s (each try is two lines in
/// the log, from openraft), not at every heartbeat; one that returns is caught up within
/// 4 s.
fn unreachable_backoff() -> Backoff {
    Backoff::new((0u32..).map(|i| (Duration::from_millis(250) * (1 << i.min(4))).min(BACKOFF_MAX)))
}

impl RaftNetwork<TypeConfig> for Peer {
    fn backoff(&self) -> Backoff {
        unreachable_backoff()
    }

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

/// The server side: hands each request to the local Raft, once the node it speaks for
/// is the one whose certificate the peer presented.
struct Service {
    raft: Raft,
    members: Arc<BTreeMap<NodeId, Fingerprint>>,
    /// The agent's audit trail, for changes other members forward to this one as leader.
    audit: Option<Arc<super::audit::AuditLog>>,
}

/// What a Raft connection carries: its addresses and the fingerprint of the certificate
/// the peer presented in the handshake.
#[derive(Clone)]
pub struct RaftPeer {
    pub tcp: tonic::transport::server::TcpConnectInfo,
    pub cert: Option<Fingerprint>,
}

impl Service {
    /// The audit record of a change member `r`'s peer forwarded to this leader.
    fn forwarded<T>(
        &self,
        r: &tonic::Request<T>,
        what: String,
        out: &Result<Applied, String>,
        took: Duration,
    ) -> super::audit::Record {
        use super::audit::{Outcome, Record};
        let peer = r.extensions().get::<RaftPeer>();
        let source = peer
            .and_then(|p| p.tcp.remote_addr)
            .map_or_else(|| "unknown".to_string(), |a| a.to_string());
        let member = peer
            .and_then(|p| p.cert)
            .and_then(|c| self.members.iter().find(|(_, f)| **f == c))
            .map(|(id, _)| *id);
        Record {
            principal: Some(super::auth::Principal {
                name: member.map_or("an unknown member".into(), |id| format!("member {id}")),
                role: super::auth::Role::Admin,
                org: None,
                source: source.clone(),
            }),
            source,
            rpc: "/axon.v1.RaftService/Forward".into(),
            target: Some(what),
            outcome: if out.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
            code: if out.is_ok() {
                tonic::Code::Ok
            } else {
                tonic::Code::FailedPrecondition
            },
            message: match out {
                Ok(_) => "applied by the leader".into(),
                Err(e) => e.clone(),
            },
            duration: took,
        }
    }

    /// A request that speaks for node `id` (a candidate's vote, a leader's entries or
    /// snapshot) must come over a connection whose certificate is node `id`'s: a member's
    /// certificate lets it in, but not as another member.
    fn speaks_for<T>(
        &self,
        r: &tonic::Request<T>,
        id: Option<NodeId>,
    ) -> Result<(), tonic::Status> {
        let Some(id) = id else {
            return Ok(());
        };
        let cert = r.extensions().get::<RaftPeer>().and_then(|p| p.cert);
        match (self.members.get(&id), cert) {
            (Some(want), Some(got)) if *want == got => Ok(()),
            (want, got) => Err(tonic::Status::permission_denied(format!(
                "a request for member {id} came with {}; member {id}'s certificate is {} — a member speaks only for itself",
                got.map_or("no client certificate".to_string(), |g| format!(
                    "certificate {g}"
                )),
                want.map_or("not known here (not a member)".to_string(), |w| w
                    .to_string())
            ))),
        }
    }
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
        self.speaks_for(&r, req.vote.leader_id().voted_for())?;
        encode(&self.raft.append_entries(req).await)
    }

    async fn vote(
        &self,
        r: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let req: VoteRequest<NodeId> = decode(r.get_ref())?;
        self.speaks_for(&r, req.vote.leader_id().voted_for())?;
        encode(&self.raft.vote(req).await)
    }

    async fn install_snapshot(
        &self,
        r: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let req: InstallSnapshotRequest<TypeConfig> = decode(r.get_ref())?;
        self.speaks_for(&r, req.vote.leader_id().voted_for())?;
        encode(&self.raft.install_snapshot(req).await)
    }

    async fn forward(
        &self,
        r: tonic::Request<RaftPayload>,
    ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
        let started = std::time::Instant::now();
        let cmd: Command = decode(r.get_ref())?;
        let what = serde_json::to_string(&cmd).unwrap_or_default();
        let out: Result<Applied, String> = match self.raft.client_write(cmd).await {
            Ok(r) => Ok(r.data),
            Err(e) => Err(e.to_string()),
        };
        // The change is audited where it was asked for (the member's policy layer, with
        // the operator's principal) and here, where it is applied, as the member's.
        if let Some(audit) = &self.audit {
            audit.record(&self.forwarded(&r, what, &out, started.elapsed()));
        }
        encode(&out)
    }
}

/// One member of the Raft group, serving RaftService on `addr`.
pub struct ClusterNode {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub raft: Raft,
    network: Network,
    view: ConfigView,
    server: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
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
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| ClusterError::Setup(format!("cannot listen on {listen}: {e}")))?;
        Self::start_on(id, dir, listener, tls, None).await
    }

    /// As `start`, on a listener already bound.
    /// `audit`: where changes forwarded to this member as leader are recorded.
    pub async fn start_on(
        id: NodeId,
        dir: &Path,
        listener: tokio::net::TcpListener,
        tls: &MemberTls,
        audit: Option<Arc<super::audit::AuditLog>>,
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
        let network = Network::new(tls.clone());
        let raft = Raft::new(id, config, network.clone(), log, sm)
            .await
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        let stats = Arc::new(ServerStats::default());
        let (incoming, accept) = listen::tcp_incoming_with(
            listener,
            Some(tokio_rustls::TlsAcceptor::from(tls.server_config()?)),
            Which::GrpcTcp,
            &Limits::default(),
            stats.clone(),
            |tcp, cert| RaftPeer { tcp, cert },
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = RaftServiceServer::new(Service {
            raft: raft.clone(),
            members: tls.members.clone(),
            audit,
        })
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
            network,
            view,
            server: std::sync::Mutex::new(Some(server)),
            stop: std::sync::Mutex::new(Some(tx)),
            stats,
        })
    }

    /// Forms the group: `voters` (id → address) vote; call on one member only, once.
    pub async fn initialize(&self, voters: &BTreeMap<NodeId, String>) -> Result<(), ClusterError> {
        let members: BTreeMap<NodeId, BasicNode> = voters
            .iter()
            .map(|(id, a)| (*id, BasicNode { addr: a.clone() }))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Already formed (a create run again after a failure part way): fine.
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    /// Adds members that follow the configuration without voting (beyond the leadership
    /// group); on the leader.
    pub async fn add_learners(
        &self,
        learners: &BTreeMap<NodeId, String>,
    ) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        for (id, addr) in learners {
            loop {
                // Not blocking: a learner that is down or slow catches up when it can.
                match self
                    .raft
                    .add_learner(*id, BasicNode { addr: addr.clone() }, false)
                    .await
                {
                    Ok(_) => break,
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                        return Err(ClusterError::NotLeader(format!("adding learner {id}")));
                    }
                    // A new leader first commits the group's initial membership; until then
                    // a change is "in progress": wait for it.
                    Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                        openraft::error::ChangeMembershipError::InProgress(_),
                    ))) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(ClusterError::Raft(e.to_string())),
                }
            }
        }
        Ok(())
    }

    /// Proposes a change: applied by the leader, which a follower forwards it to over the
    /// members' channel. Waits up to 10 s for a leader to be known.
    pub async fn propose(&self, cmd: Command) -> Result<Applied, ClusterError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let write = tokio::time::timeout_at(deadline, self.raft.client_write(cmd.clone()));
            let Ok(written) = write.await else {
                return Err(ClusterError::Raft(
                    "the change was not committed in 10 s (no majority of the leadership group reachable?)".into(),
                ));
            };
            let leader = match written {
                Ok(r) => {
                    return match r.data.refused {
                        Some(why) => Err(ClusterError::Refused(why)),
                        None => Ok(r.data),
                    };
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    f.leader_id.zip(f.leader_node)
                }
                Err(e) => return Err(ClusterError::Raft(e.to_string())),
            };
            if let Some((id, node)) = leader {
                let mut peer = self.network.clone().new_client(id, &node).await;
                // Otherwise the leader moved meanwhile, or could not be reached: ask again.
                if let Ok(Ok(a)) = peer.forward(&cmd).await {
                    return match a.refused {
                        Some(why) => Err(ClusterError::Refused(why)),
                        None => Ok(a),
                    };
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::NotLeader(
                    "no leader could take the change in 10 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The configuration as this member has applied it.
    pub fn config(&self) -> ClusterConfig {
        self.view.config()
    }

    /// The cluster's IO status, as this member applied it.
    pub fn io(&self) -> crate::model::cluster::IoStatus {
        self.view.io()
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
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
        // Open connections fail and the accept loop stops, so the server can finish.
        self.stats.shut_down();
        if let Some(tx) = self.stop.lock().ok().and_then(|mut s| s.take()) {
            let _ = tx.send(());
        }
        let server = self.server.lock().ok().and_then(|mut s| s.take());
        if let Some(h) = server {
            let _ = h.await;
        }
    }
}

/// What an agent records when it joins: `<state dir>/cluster/member.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    pub cluster: String,
    pub node_id: NodeId,
    pub members: Vec<MemberInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberInfo {
    pub id: NodeId,
    pub name: String,
    /// host:port of its cluster listener.
    pub address: String,
    pub fingerprint: String,
    /// host:port of its data (chunk) listener; "" when it has none (joined without one).
    #[serde(default)]
    pub data_address: String,
}

/// An agent's place in the cluster: its cluster listener (bound at start, so its port is
/// known before it joins), and once it has joined, its membership and Raft member. A
/// membership on disk is resumed at start.
///
/// The member lock is held only to read or set the member, never across a Raft call, so a
/// change that waits for a majority never blocks status, other calls, or shutdown.
pub struct ClusterHost {
    dir: std::path::PathBuf,
    identity: Arc<Identity>,
    listen: SocketAddr,
    port: u16,
    listener: std::sync::Mutex<Option<tokio::net::TcpListener>>,
    member: tokio::sync::Mutex<Option<(Membership, Arc<ClusterNode>)>>,
    /// The data port and this node's chunks, if the agent hosts a store.
    data: Option<super::data::DataHost>,
    data_member: std::sync::Mutex<Option<Arc<super::data::DataMember>>>,
    audit: Option<Arc<super::audit::AuditLog>>,
}

/// Checks a membership before anything is written: ids, addresses and certificates all
/// distinct, no id 0, the joining node among them with this agent's own certificate.
fn validate(
    m: &Membership,
    own: &Fingerprint,
) -> Result<BTreeMap<NodeId, Fingerprint>, ClusterError> {
    let mut pins = BTreeMap::new();
    let mut addrs = std::collections::HashSet::new();
    for p in &m.members {
        if p.id == 0 {
            return Err(ClusterError::Refused(format!(
                "member {} has id 0; ids start at 1",
                p.name
            )));
        }
        let fp = Fingerprint::parse(&p.fingerprint).map_err(|e| {
            ClusterError::Refused(format!("member {} ({}): fingerprint: {e}", p.id, p.name))
        })?;
        if pins.values().any(|x| *x == fp) {
            return Err(ClusterError::Refused(format!(
                "member {} ({}) has the same certificate as another member",
                p.id, p.name
            )));
        }
        if !addrs.insert(p.address.clone()) {
            return Err(ClusterError::Refused(format!(
                "member {} ({}) has the same cluster address {} as another member",
                p.id, p.name, p.address
            )));
        }
        if pins.insert(p.id, fp).is_some() {
            return Err(ClusterError::Refused(format!(
                "member id {} appears twice",
                p.id
            )));
        }
    }
    match pins.get(&m.node_id) {
        None => Err(ClusterError::Refused(format!(
            "node {} is not among the members given",
            m.node_id
        ))),
        Some(fp) if fp != own => Err(ClusterError::Refused(format!(
            "node {} is listed with certificate {fp}, but this agent's is {own}",
            m.node_id
        ))),
        Some(_) => Ok(pins),
    }
}

impl ClusterHost {
    pub async fn new(
        dir: &Path,
        listen: SocketAddr,
        identity: Arc<Identity>,
        data: Option<super::data::DataHost>,
        audit: Option<Arc<super::audit::AuditLog>>,
    ) -> Result<Arc<ClusterHost>, ClusterError> {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            ClusterError::Setup(format!("cannot listen on {listen} (--cluster-listen): {e}"))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| ClusterError::Setup(e.to_string()))?
            .port();
        let host = Arc::new(ClusterHost {
            dir: dir.to_path_buf(),
            identity,
            listen: SocketAddr::new(listen.ip(), port),
            port,
            listener: std::sync::Mutex::new(Some(listener)),
            member: tokio::sync::Mutex::new(None),
            data,
            data_member: std::sync::Mutex::new(None),
            audit,
        });
        let file = dir.join("member.json");
        if file.exists() {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ClusterError::Setup(format!("{}: {e}", file.display())))?;
            let m: Membership = serde_json::from_str(&text).map_err(|e| {
                ClusterError::Setup(format!(
                    "{}: {e} — the membership record is damaged; restore it or remove the node from the cluster",
                    file.display()
                ))
            })?;
            // A voter that lost its log and vote could vote twice in a term: never resume
            // a membership without its Raft database.
            let db = dir.join("raft.redb");
            if !db.exists() {
                return Err(ClusterError::Setup(format!(
                    "{} records node {} of cluster {}, but its Raft database {} is missing — restore it, or remove this node from the cluster and join it anew",
                    file.display(),
                    m.node_id,
                    m.cluster,
                    db.display()
                )));
            }
            let mut g = host.member.lock().await;
            let node = host.start_member(&m).await?;
            *g = Some((m, node));
        }
        Ok(host)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data listener's port, 0 if this agent has none.
    pub fn data_port(&self) -> u16 {
        self.data.as_ref().map_or(0, |d| d.port())
    }

    pub fn fingerprint(&self) -> String {
        self.identity.fingerprint.to_string()
    }

    async fn start_member(&self, m: &Membership) -> Result<Arc<ClusterNode>, ClusterError> {
        let pins = validate(m, &self.identity.fingerprint)?;
        let tls = MemberTls {
            identity: self.identity.clone(),
            members: Arc::new(pins),
        };
        let listener = match self.listener.lock().ok().and_then(|mut l| l.take()) {
            Some(l) => l,
            // Taken by a start that failed: bind again.
            None => tokio::net::TcpListener::bind(self.listen)
                .await
                .map_err(|e| {
                    ClusterError::Setup(format!("cannot listen on {}: {e}", self.listen))
                })?,
        };
        // Raft's tasks live as long as the member, not in the span of the call that
        // started it (a Join RPC).
        let node = tracing::Instrument::instrument(
            ClusterNode::start_on(m.node_id, &self.dir, listener, &tls, self.audit.clone()),
            tracing::info_span!(parent: None, "cluster_member", node = m.node_id),
        )
        .await?;
        if let Some(d) = &self.data {
            match d.start(m, &tls).await {
                Ok(dm) => {
                    if let Ok(mut g) = self.data_member.lock() {
                        *g = Some(Arc::new(dm));
                    }
                }
                Err(e) => {
                    node.shutdown().await;
                    return Err(ClusterError::Setup(e));
                }
            }
        }
        Ok(Arc::new(node))
    }

    /// Joins: checks the membership, records it durably, then starts the Raft member; if
    /// the member cannot start, the record is removed again. Joining the same membership
    /// again is a no-op; another cluster is refused.
    pub async fn join(&self, m: Membership) -> Result<(), ClusterError> {
        let mut g = self.member.lock().await;
        if let Some((cur, _)) = g.as_ref() {
            if *cur == m {
                return Ok(());
            }
            return Err(ClusterError::Refused(format!(
                "this agent is already node {} of cluster {}; remove it from that cluster first",
                cur.node_id, cur.cluster
            )));
        }
        validate(&m, &self.identity.fingerprint)?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| ClusterError::Setup(format!("{}: {e}", self.dir.display())))?;
        let file = self.dir.join("member.json");
        let tmp = self.dir.join("member.json.tmp");
        let text = serde_json::to_vec_pretty(&m).map_err(|e| ClusterError::Setup(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &file)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| ClusterError::Setup(format!("{}: {e}", file.display())))?;
        match self.start_member(&m).await {
            Ok(node) => {
                *g = Some((m, node));
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&file);
                Err(e)
            }
        }
    }

    async fn current(&self) -> Result<(Membership, Arc<ClusterNode>), ClusterError> {
        self.member
            .lock()
            .await
            .clone()
            .ok_or_else(|| ClusterError::Refused("this agent is not a cluster member".into()))
    }

    /// Forms the Raft group with `voters` (this member among them), waits to lead it, and
    /// adds every other member as a learner (it follows the configuration, without a vote).
    /// Running it again on a formed group only adds missing learners.
    pub async fn initialize(&self, voters: &[NodeId]) -> Result<(), ClusterError> {
        let (m, node) = self.current().await?;
        if !voters.contains(&m.node_id) {
            return Err(ClusterError::Refused(format!(
                "node {} initializes the group, so it must be one of its voters",
                m.node_id
            )));
        }
        let mut map = BTreeMap::new();
        for v in voters {
            let info = m
                .members
                .iter()
                .find(|x| x.id == *v)
                .ok_or_else(|| ClusterError::Refused(format!("voter {v} is not a member")))?;
            map.insert(*v, info.address.clone());
        }
        node.initialize(&map).await?;
        let learners: BTreeMap<NodeId, String> = m
            .members
            .iter()
            .filter(|x| !voters.contains(&x.id))
            .map(|x| (x.id, x.address.clone()))
            .collect();
        if learners.is_empty() {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while node.leader() != Some(m.node_id) {
            if std::time::Instant::now() > deadline {
                return Err(ClusterError::Raft(format!(
                    "node {} did not become leader in 20 s, so the other {} members were not added; run the create again",
                    m.node_id,
                    learners.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node.add_learners(&learners).await
    }

    pub async fn propose(&self, cmd: Command) -> Result<Applied, ClusterError> {
        let (_, node) = self.current().await?;
        node.propose(cmd).await
    }

    /// The membership, the leader (0 if none known) and the applied config.
    pub async fn info(&self) -> Option<(Membership, NodeId, ClusterConfig)> {
        let g = self.member.lock().await.clone();
        g.map(|(m, n)| (m, n.leader().unwrap_or(0), n.config()))
    }

    /// The frontend and the cluster as it stands for one IO call: refused (naming the
    /// remedy) unless this agent is a member with a store and the cluster's IO is STARTED.
    pub async fn io(
        &self,
    ) -> Result<
        (
            super::data::Fe,
            super::data::Layout,
            std::collections::BTreeMap<u64, String>,
        ),
        ClusterError,
    > {
        let (fe, layout, _, config) = self.data_view().await?;
        if config.io != crate::model::cluster::IoStatus::Started {
            return Err(ClusterError::Refused(format!(
                "the cluster's IO is {}: run axon start-io first",
                config.io.as_str()
            )));
        }
        let names = config
            .members
            .iter()
            .map(|(id, m)| (*id, m.name.clone()))
            .collect();
        Ok((fe, layout, names))
    }

    /// This member's data plane: the frontend, the layout, its network, and the config.
    pub async fn data_view(
        &self,
    ) -> Result<
        (
            super::data::Fe,
            super::data::Layout,
            Arc<super::data::GrpcNet>,
            ClusterConfig,
        ),
        ClusterError,
    > {
        use crate::dataplane::cluster::placement;
        let (m, node) = self.current().await?;
        let (Some(data), Some(dm)) = (
            &self.data,
            self.data_member.lock().ok().and_then(|g| g.clone()),
        ) else {
            return Err(ClusterError::Refused(
                "this agent serves no data plane: start it with --store DIR and --data-listen ADDR"
                    .into(),
            ));
        };
        let config = node.config();
        if config.cluster.is_none() {
            return Err(ClusterError::Refused(
                "the cluster is not created yet: run axon cluster create".into(),
            ));
        }
        let free = dm.net.free();
        let writable = placement::writable(&config, |_| true, |id| free.get(&id).copied());
        let layout = crate::dataplane::cluster::frontend::Layout {
            k: config.k,
            m: config.m,
            chunk_size: data.chunk_size(),
            members: m.members.iter().map(|x| x.id).collect(),
            writable,
            me: m.node_id,
        };
        Ok((
            crate::dataplane::cluster::frontend::Frontend::new(dm.net.clone())
                .with_offload(data.node.offload().cloned()),
            layout,
            dm.net.clone(),
            config,
        ))
    }

    /// This node's share of the data plane's state (protection, rebuild), if it has one.
    pub fn data_status(&self) -> Option<crate::dataplane::cluster::protection::DataStatus> {
        self.data.as_ref().map(|d| d.status())
    }

    /// This member's `DataService` handler, for the gRPC port's clients with a frontend
    /// of their own, and the cluster's IO status (their writes need it STARTED).
    pub async fn direct(
        &self,
    ) -> Result<(super::data::DataSvc, crate::model::cluster::IoStatus), ClusterError> {
        let (_, node) = self.current().await?;
        let svc = self
            .data_member
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|d| d.svc.clone()))
            .ok_or_else(|| {
                ClusterError::Refused(
                    "this member serves no data plane: start it with --store DIR and --data-listen ADDR"
                        .into(),
                )
            })?;
        Ok((svc, node.io()))
    }

    pub fn data_host(&self) -> Option<&super::data::DataHost> {
        self.data.as_ref()
    }

    pub async fn shutdown(&self) {
        if let Some(dm) = self.data_member.lock().ok().and_then(|mut g| g.take()) {
            dm.shutdown();
        }
        let node = self.member.lock().await.take();
        if let Some((_, node)) = node {
            node.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_peer_is_retried_after_250_ms_doubling_to_4_s() {
        let waits: Vec<u64> = unreachable_backoff()
            .take(7)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 4000, 4000]);
    }

    /// A peer with nothing listening is "unreachable" to openraft (which then backs off),
    /// not a network error retried at every heartbeat.
    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let tls = peer_tls(&dir);
        // A port that was just free: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut peer = Network::new(tls)
            .new_client(1, &BasicNode::new(format!("127.0.0.1:{port}")))
            .await;
        let vote = VoteRequest::new(openraft::Vote::new(1, 2), None);
        let option = RPCOption::new(Duration::from_secs(2));
        match peer.vote(vote, option).await {
            Err(RPCError::Unreachable(_)) => {}
            other => panic!("want Unreachable, got {other:?}"),
        }
        // The network remembers it for every client of that member: openraft makes a new
        // one per vote round, and the change is logged once, not once per client.
        let mut net = Network {
            tls: peer_tls(&dir),
            unreachable: peer.unreachable.clone(),
        };
        let other = net.new_client(1, &BasicNode::new("127.0.0.1:1")).await;
        assert!(!other.set_reached(false), "already known unreachable");
        assert!(other.set_reached(true), "back: a change, logged");
        assert!(!peer.set_reached(true), "and only once");
    }

    /// A silent host (here a listener that never accepts: the kernel completes the TCP
    /// handshake, TLS then waits for ever) is a network error at its first timeouts, and
    /// unreachable from the `SILENT_CALLS`th in a row, so openraft backs off from it too.
    #[tokio::test]
    async fn a_member_that_times_out_repeatedly_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let mut peer = Network::new(peer_tls(&dir))
            .new_client(1, &BasicNode::new(addr.to_string()))
            .await;
        let option = RPCOption::new(Duration::from_millis(200));
        for call in 1..=SILENT_CALLS {
            let vote = VoteRequest::new(openraft::Vote::new(1, 2), None);
            let got = peer.vote(vote, option.clone()).await;
            match (call < SILENT_CALLS, &got) {
                (true, Err(RPCError::Network(e))) => {
                    assert!(e.to_string().contains("did not answer in 150 ms"), "{e}")
                }
                (false, Err(RPCError::Unreachable(e))) => {
                    assert!(e.to_string().contains("did not answer"), "{e}")
                }
                _ => panic!("call {call}: got {got:?}"),
            }
        }
        // An answer ends the run: the next timeouts count from one again.
        assert!(peer.set_reached(true));
        let vote = VoteRequest::new(openraft::Vote::new(1, 2), None);
        assert!(matches!(
            peer.vote(vote, option).await,
            Err(RPCError::Network(_))
        ));
        drop(silent);
    }

    fn peer_tls(dir: &tempfile::TempDir) -> MemberTls {
        let id = Arc::new(super::super::tls::load_or_create(dir.path(), &["n1".into()]).unwrap());
        MemberTls {
            members: Arc::new(BTreeMap::from([(1, id.fingerprint)])),
            identity: id,
        }
    }
}

//! The per-node daemon: runs the collectors on their schedules, serves NodeService and
//! ControlService over gRPC on TCP (bearer token) and on a unix control socket (root
//! peers), answers UDP echo probes, and serves `/metrics`. `axon exporter` is the same
//! without gRPC.

pub mod auth;
pub mod exporter;
pub mod scheduler;
pub mod service;
pub mod state;

use crate::collectors::HostRoot;
use crate::collectors::probes::{self, ProbeOptions};
use crate::model::snapshot::NodeInfo;
use crate::wire::pb;
use scheduler::{CollectConfig, Schedule};
use state::AgentState;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub host_root: PathBuf,
    /// gRPC on TCP; None in exporter mode.
    pub listen: Option<SocketAddr>,
    /// UDP echo for reachability probes (normally the control port's number).
    pub echo_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub unix_socket: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub token_file: Option<PathBuf>,
    pub node_name: Option<String>,
    pub base_interval: Duration,
    pub collect: CollectConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("host root: {0}")]
    HostRoot(#[from] crate::collectors::CollectError),
    #[error("tokens: {0}")]
    Auth(#[from] auth::AuthSetupError),
    #[error("cannot listen on {what} {addr}: {source} — {hint}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
        hint: &'static str,
    },
}

fn bind_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another agent (or program) already listens there; stop it or pass another address"
        }
        std::io::ErrorKind::PermissionDenied => "run as root or choose a port above 1024",
        std::io::ErrorKind::AddrNotAvailable => "that address is not configured on this host",
        _ => "check the address",
    }
}

/// A running agent. Dropping it does not stop it; call `shutdown`.
pub struct Agent {
    pub state: Arc<AgentState>,
    pub grpc_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    pub echo_addr: Option<SocketAddr>,
    pub unix_socket: Option<PathBuf>,
    pub admin_token_file: PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Agent {
    pub fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(p) = &self.unix_socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn hostname(root: &HostRoot) -> String {
    root.value("/proc/sys/kernel/hostname")
        .or_else(|_| root.value("/etc/hostname"))
        .unwrap_or_else(|_| "unknown".into())
}

async fn bind_tcp(
    what: &'static str,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, AgentError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Bind {
            what,
            addr: addr.to_string(),
            hint: bind_hint(&source),
            source,
        })
}

/// Binds the unix control socket with mode 0600. A stale socket file left by a crashed
/// agent is replaced; a live one is an error.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, AgentError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source: std::io::Error| AgentError::Bind {
        what: "control socket",
        addr: path.display().to_string(),
        hint: bind_hint(&source),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(std::io::Error::from(std::io::ErrorKind::AddrInUse)));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let l = tokio::net::UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(l)
}

/// Starts an agent on the current tokio runtime and returns once it listens.
pub async fn start(cfg: AgentConfig) -> Result<Agent, AgentError> {
    let root = HostRoot::open(&cfg.host_root)?;
    let schedule = Schedule::with_base(cfg.base_interval);
    let info = NodeInfo {
        hostname: cfg.node_name.clone().unwrap_or_else(|| hostname(&root)),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        agent_started_ms: state::now_ms(),
        emulated_profile: root.profile().map(|p| p.name.clone()),
        collect_interval_ms: cfg.base_interval.as_millis() as u64,
    };
    let state = Arc::new(AgentState::new(info, schedule.initial_status()));
    let mut tasks = Vec::new();

    let metrics_addr = match cfg.metrics_listen {
        Some(addr) => {
            let l = bind_tcp("metrics", addr).await?;
            let local = l.local_addr().ok();
            let st = state.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = exporter::serve(l, st).await {
                    eprintln!("axon: metrics server stopped: {e}");
                }
            }));
            local
        }
        None => None,
    };

    let echo_addr = match cfg.echo_listen {
        Some(addr) => {
            let sock =
                tokio::net::UdpSocket::bind(addr)
                    .await
                    .map_err(|source| AgentError::Bind {
                        what: "UDP echo",
                        addr: addr.to_string(),
                        hint: bind_hint(&source),
                        source,
                    })?;
            let local = sock.local_addr().ok();
            tasks.push(tokio::spawn(async move {
                let _ = probes::serve_echo(sock).await;
            }));
            local
        }
        None => None,
    };

    let mut grpc_addr = None;
    let mut unix_socket = None;
    let admin_token_file = cfg
        .token_file
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join("admin.token"));
    if cfg.listen.is_some() || cfg.unix_socket.is_some() {
        let tokens = Arc::new(auth::Tokens::load(
            &cfg.state_dir,
            cfg.token_file.as_deref(),
        )?);
        let node = service::NodeSvc {
            state: state.clone(),
            tokens: tokens.clone(),
            default_interval: cfg.base_interval,
        };
        let control = service::ControlSvc {
            tokens,
            peers: cfg.collect.peers.clone(),
            probe: cfg.collect.probe.clone(),
        };
        let router = || {
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .http2_keepalive_interval(Some(Duration::from_secs(20)))
                .add_service(pb::node_service_server::NodeServiceServer::new(
                    node.clone(),
                ))
                .add_service(pb::control_service_server::ControlServiceServer::new(
                    control.clone(),
                ))
        };
        if let Some(addr) = cfg.listen {
            let l = bind_tcp("gRPC", addr).await?;
            grpc_addr = l.local_addr().ok();
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
            let r = router();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = r.serve_with_incoming(incoming).await {
                    eprintln!("axon: gRPC server stopped: {e}");
                }
            }));
        }
        if let Some(path) = &cfg.unix_socket {
            let l = bind_unix(path)?;
            unix_socket = Some(path.clone());
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(l);
            let r = router();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = r.serve_with_incoming(incoming).await {
                    eprintln!("axon: control socket server stopped: {e}");
                }
            }));
        }
    }

    let mut collect = cfg.collect.clone();
    if let Some(a) = grpc_addr.or(echo_addr) {
        if !a.ip().is_unspecified() {
            collect.own_addresses.push(a.ip().to_string());
            collect.probe.source.get_or_insert(a.ip());
        }
    }
    collect
        .own_addresses
        .push(state.with_snapshot(|s, _| s.node.hostname.clone()));
    tasks.extend(scheduler::spawn(
        root,
        Arc::new(collect),
        schedule,
        state.clone(),
    ));

    Ok(Agent {
        state,
        grpc_addr,
        metrics_addr,
        echo_addr,
        unix_socket,
        admin_token_file,
        tasks,
    })
}

pub fn default_probe_options() -> ProbeOptions {
    ProbeOptions::default()
}

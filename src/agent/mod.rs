//! The per-node daemon: runs the collectors on their schedules, serves NodeService and
//! ControlService over gRPC on TCP (bearer token) and on a unix control socket (root
//! peers), both behind one policy layer (`policy`), answers UDP echo probes, and serves
//! `/metrics`. `axon exporter` is the same without gRPC.

pub mod audit;
pub mod auth;
pub mod cluster_svc;
pub mod containers;
pub mod data;
pub mod direct;
pub mod dp_report;
pub mod drive_ops;
pub mod exporter;
pub mod listen;
pub mod member;
pub mod operations;
pub mod policy;
pub mod raft;
pub mod scheduler;
pub mod service;
pub mod state;
pub mod tls;

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
    /// TLS of gRPC on TCP (the unix socket is never TLS).
    pub tls: tls::ServerTls,
    /// Serve `/metrics` over TLS too, with the same certificate.
    pub metrics_tls: bool,
    pub limits: listen::Limits,
}

impl AgentConfig {
    /// A config with the defaults of `axon agent` for everything but where it reads and
    /// listens: TLS with a self-signed certificate in `<state_dir>/tls`, default limits.
    pub fn new(host_root: PathBuf, state_dir: PathBuf, collect: CollectConfig) -> Self {
        AgentConfig {
            host_root,
            listen: None,
            echo_listen: None,
            metrics_listen: None,
            unix_socket: None,
            tls: tls::ServerTls::SelfSigned {
                dir: state_dir.join("tls"),
            },
            state_dir,
            token_file: None,
            node_name: None,
            base_interval: Duration::from_secs(1),
            collect,
            metrics_tls: false,
            limits: listen::Limits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("host root: {0}")]
    HostRoot(#[from] crate::collectors::CollectError),
    #[error("tokens: {0}")]
    Auth(#[from] auth::AuthSetupError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsSetupError),
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
    /// Where mutating calls are audited, one JSON line each (created on the first one).
    pub audit_file: PathBuf,
    /// The certificate gRPC on TCP presents (None with --insecure or without TCP).
    pub tls: Option<Arc<tls::Identity>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Agent {
    pub fn shutdown(&self) {
        // Open connections run in tasks of their own (tonic's, hyper's): closes them too.
        self.state.server.shut_down();
        // Operations too (in the demo, a node failed by fault injection stops with them).
        if let Some(ops) = self.state.operations() {
            let n = ops.abort_all();
            if n > 0 {
                tracing::warn!("agent stopping: {n} running operation(s) stopped");
            }
        }
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

/// Opens the host root and reads this node's name (unless `--node-name` gave it) on the
/// blocking pool, within `STARTUP_DEADLINE`: every read is bounded (a FIFO or a 3 GB file
/// at `profile.toml` or the hostname is refused, see `read_bounded`), and a hung file
/// system is an error naming the host root, never an agent that hangs before binding.
async fn open_host(cfg: &AgentConfig) -> Result<(HostRoot, String), AgentError> {
    let deadline = crate::collectors::hostroot::STARTUP_DEADLINE;
    let root = HostRoot::open_within(&cfg.host_root, deadline).await?;
    if let Some(name) = &cfg.node_name {
        return Ok((root, name.clone()));
    }
    let r = root.clone();
    let name =
        match tokio::time::timeout(deadline, tokio::task::spawn_blocking(move || r.hostname()))
            .await
        {
            Ok(Ok(Some(name))) => name,
            // No readable name, or a hung read: the agent still starts, as `unknown` (pass
            // --node-name to choose one).
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => "unknown".to_string(),
        };
    Ok((root, name))
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

/// Binds the unix control socket with mode 0600. Only a stale socket (one that refuses
/// connections, left by a crashed agent) is replaced; a live socket, and anything that is
/// not a socket (a regular file, a FIFO, a directory, a symlink, dangling or not), is an
/// error naming the path and what is there, and is left untouched.
///
/// The socket is never reachable with a looser mode, not even between `bind` and `chmod`:
/// it is bound inside a fresh private directory (mode 0700, created next to the target so
/// both are on one file system), made 0600 there, then hard-linked to its path and the
/// private name removed. `link(2)` fails if something appeared at the path meanwhile, so
/// nothing is overwritten. This was chosen over setting the umask to 0o077 around `bind`:
/// the umask is process-wide, and the agent's other threads (and the tests' or demo's
/// agents in the same process) create files concurrently; a mutex would only order the
/// code that takes it.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, AgentError> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    let at = path.display().to_string();
    let err = |source: Error| AgentError::Bind {
        what: "control socket",
        addr: at.clone(),
        hint: bind_hint(&source),
        source,
    };
    let refuse = |what: &str| AgentError::Bind {
        what: "control socket",
        addr: at.clone(),
        source: Error::new(
            ErrorKind::AlreadyExists,
            format!("the path holds {what}, not a stale socket; it is left alone"),
        ),
        hint: "remove it yourself if it is not needed, or pass another --control-socket",
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
        Ok(meta) => {
            let ft = meta.file_type();
            if !ft.is_socket() {
                return Err(refuse(crate::collectors::hostroot::kind_of(&ft)));
            }
            match socket_is_live(path) {
                Ok(true) => return Err(err(Error::from(ErrorKind::AddrInUse))),
                Ok(false) => std::fs::remove_file(path).map_err(err)?,
                Err(e) => return Err(err(e)),
            }
        }
    }
    // The private directory: a new name each try, created 0700 (mkdir applies the umask,
    // which can only remove bits).
    let mut private = None;
    for n in 0..100u32 {
        let p = dir.join(format!(".axon.{}.{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => {
                private = Some(p);
                break;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(e)),
        }
    }
    let private = private.ok_or_else(|| err(Error::from(ErrorKind::AlreadyExists)))?;
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0.join("s"));
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let cleanup = Cleanup(private);
    let tmp = cleanup.0.join("s");
    let l = tokio::net::UnixListener::bind(&tmp).map_err(err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    std::fs::hard_link(&tmp, path).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            refuse("something created while binding")
        } else {
            err(e)
        }
    })?;
    drop(cleanup);
    Ok(l)
}

/// Whether a socket file has a listener: connected (or a full backlog that does not answer
/// within a second: a busy or hung agent) is live; refused is stale. Any other error (no
/// permission to connect) is returned, and the file is not touched.
fn socket_is_live(path: &Path) -> std::io::Result<bool> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    // A connect to a listener whose backlog is full blocks; it gets a thread of its own.
    std::thread::spawn(move || {
        let _ = tx.send(std::os::unix::net::UnixStream::connect(p));
    });
    match rx.recv_timeout(Duration::from_secs(1)) {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(false),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(true),
    }
}

/// Starts an agent on the current tokio runtime and returns once it listens.
pub async fn start(cfg: AgentConfig) -> Result<Agent, AgentError> {
    let (root, hostname) = open_host(&cfg).await?;
    let schedule = Schedule::with_base(cfg.base_interval);
    let info = NodeInfo {
        hostname,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        agent_started_ms: state::now_ms(),
        emulated_profile: root.profile().map(|p| p.name.clone()),
        collect_interval_ms: cfg.base_interval.as_millis() as u64,
    };
    let state = Arc::new(AgentState::new(info, schedule.initial_status()));
    let stats = state.server.clone();
    let mut tasks = Vec::new();

    // The certificate: needed for gRPC on TCP, and for /metrics with --metrics-tls.
    let wants_tls = (cfg.listen.is_some() || (cfg.metrics_tls && cfg.metrics_listen.is_some()))
        && cfg.tls != tls::ServerTls::Off;
    let identity = if wants_tls {
        let names = vec![state.with_snapshot(|s, _| s.node.hostname.clone())]
            .into_iter()
            .chain(
                cfg.listen
                    .iter()
                    .filter(|a| !a.ip().is_unspecified())
                    .map(|a| a.ip().to_string()),
            )
            .collect::<Vec<_>>();
        Some(Arc::new(match &cfg.tls {
            tls::ServerTls::SelfSigned { dir } => tls::load_or_create(dir, &names)?,
            tls::ServerTls::Files { cert, key } => tls::load_files(cert, key)?,
            tls::ServerTls::Off => unreachable!("checked above"),
        }))
    } else {
        None
    };
    if cfg.metrics_tls && identity.is_none() && cfg.metrics_listen.is_some() {
        return Err(AgentError::Tls(tls::TlsSetupError::Generate(
            "--metrics-tls needs a certificate: drop --insecure".into(),
        )));
    }

    let metrics_addr = match cfg.metrics_listen {
        Some(addr) => {
            let l = bind_tcp("metrics", addr).await?;
            let local = l.local_addr().ok();
            let acceptor = match (&identity, cfg.metrics_tls) {
                (Some(id), true) => Some(tokio_rustls::TlsAcceptor::from(
                    id.server_config(&[b"http/1.1"])?,
                )),
                _ => None,
            };
            let (incoming, accept) = listen::tcp_incoming(
                l,
                acceptor,
                listen::Which::Metrics,
                &cfg.limits,
                stats.clone(),
            );
            tasks.push(accept);
            tasks.push(tokio::spawn(listen::serve_http(
                incoming,
                exporter::router(state.clone()),
                cfg.limits.handshake_timeout,
                stats.clone(),
            )));
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
    let audit_file = cfg.state_dir.join("audit.jsonl");
    if cfg.listen.is_some() || cfg.unix_socket.is_some() {
        let tokens = Arc::new(auth::Tokens::load(
            &cfg.state_dir,
            cfg.token_file.as_deref(),
        )?);
        // Every call on both listeners passes the policy layer: authentication, the RPC's
        // rule (deny by default) and the audit of mutating calls.
        let policy =
            policy::PolicyLayer::new(tokens, Arc::new(audit::AuditLog::new(audit_file.clone())));
        let node = service::NodeSvc {
            state: state.clone(),
            default_interval: cfg.base_interval,
            watches: service::WatchLimiter::new(cfg.limits.max_watch_per_principal, stats.clone()),
        };
        let control = service::ControlSvc {
            peers: cfg.collect.peers.clone(),
            probe: cfg.collect.probe.clone(),
        };
        let ops = operations::Operations::new(&state.with_snapshot(|s, _| s.node.hostname.clone()));
        state.set_operations(ops.clone());
        let operations = operations::OperationSvc {
            ops,
            peers: cfg.collect.peers.clone(),
            probe: cfg.collect.probe.clone(),
            state: state.clone(),
        };
        let cluster_svc = cluster_svc::ClusterSvc {
            state: state.clone(),
        };
        let dataplane_svc = dp_report::DataplaneSvc {
            state: state.clone(),
        };
        let direct_svc = direct::DirectSvc {
            state: state.clone(),
        };
        let limits = cfg.limits.clone();
        // Pings keep a client that only receives (a Watch) from looking idle: a third of
        // the idle timeout, at most 20 s, so a live client answers twice in time.
        let keepalive = (limits.idle_timeout / 3).min(Duration::from_secs(20));
        let router = || {
            tonic::transport::Server::builder()
                .max_concurrent_streams(limits.max_streams_per_connection)
                .http2_keepalive_interval(Some(keepalive))
                .http2_keepalive_timeout(Some(keepalive))
                .http2_max_header_list_size(64 * 1024)
                .layer(policy.clone())
                .add_service(pb::node_service_server::NodeServiceServer::new(
                    node.clone(),
                ))
                .add_service(pb::control_service_server::ControlServiceServer::new(
                    control.clone(),
                ))
                .add_service(pb::operation_service_server::OperationServiceServer::new(
                    operations.clone(),
                ))
                .add_service(pb::cluster_service_server::ClusterServiceServer::new(
                    cluster_svc.clone(),
                ))
                .add_service(pb::dataplane_service_server::DataplaneServiceServer::new(
                    dataplane_svc.clone(),
                ))
                .add_service(
                    pb::data_service_server::DataServiceServer::new(direct_svc.clone())
                        .max_decoding_message_size(crate::wire::chunks::DIRECT_MAX_MESSAGE)
                        .max_encoding_message_size(crate::wire::chunks::DIRECT_MAX_MESSAGE),
                )
        };
        if let Some(addr) = cfg.listen {
            let l = bind_tcp("gRPC", addr).await?;
            grpc_addr = l.local_addr().ok();
            let acceptor = match &identity {
                Some(id) => Some(tokio_rustls::TlsAcceptor::from(id.grpc_config()?)),
                None => None,
            };
            stats.grpc_tls.store(
                u64::from(acceptor.is_some()),
                std::sync::atomic::Ordering::Relaxed,
            );
            let (incoming, accept) = listen::tcp_incoming(
                l,
                acceptor,
                listen::Which::GrpcTcp,
                &cfg.limits,
                stats.clone(),
            );
            tasks.push(accept);
            let r = router();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = r.serve_with_incoming(incoming).await {
                    tracing::error!("axon: gRPC server stopped: {e}");
                }
            }));
        }
        if let Some(path) = &cfg.unix_socket {
            let l = bind_unix(path)?;
            unix_socket = Some(path.clone());
            let (incoming, accept) = listen::unix_incoming(l, &cfg.limits, stats.clone());
            tasks.push(accept);
            let r = router();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = r.serve_with_incoming(incoming).await {
                    tracing::error!("axon: control socket server stopped: {e}");
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
    tasks.push(tokio::spawn(listen::give_back_memory(stats.clone())));
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
        audit_file,
        tls: if grpc_addr.is_some() { identity } else { None },
        tasks,
    })
}

pub fn default_probe_options() -> ProbeOptions {
    ProbeOptions::default()
}

//! `axon agent`: the node agent — collectors, gRPC on TCP (TLS) and the unix control
//! socket, UDP echo, `/metrics` — until SIGTERM or Ctrl-C.

use super::{collect_config, wait_for_shutdown};
use crate::agent::{self, AgentConfig};
use crate::cli::{AgentArgs, LimitsArgs, ServerTlsArgs};
use anyhow::Result;

/// The listener limits from the flags.
pub fn limits(a: &LimitsArgs) -> agent::listen::Limits {
    agent::listen::Limits {
        max_connections: a.max_connections as usize,
        max_connections_per_ip: a.max_connections_per_peer as usize,
        max_streams_per_connection: a.max_streams_per_connection,
        max_watch_per_principal: a.max_watch_per_principal as usize,
        max_metrics_connections: a.max_metrics_connections as usize,
        handshake_timeout: a.handshake_timeout,
        idle_timeout: a.idle_timeout,
    }
}

/// The agent's TLS from the flags.
pub fn server_tls(a: &ServerTlsArgs, state_dir: &std::path::Path) -> agent::tls::ServerTls {
    match (a.insecure, &a.tls_cert, &a.tls_key) {
        (true, _, _) => agent::tls::ServerTls::Off,
        (false, Some(cert), Some(key)) => agent::tls::ServerTls::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => agent::tls::ServerTls::SelfSigned {
            dir: state_dir.join("tls"),
        },
    }
}

/// Raises the soft file-descriptor limit to the hard one (as Go servers do): the agent's
/// connection caps, not an accidental 1,024, bound what it holds open. Returns the limit.
fn raise_fd_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the valid struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
    }
    r.rlim_cur
}

pub async fn exec(a: AgentArgs) -> Result<i32> {
    let fds = raise_fd_limit();
    let needed =
        u64::from(a.limits.max_connections) + u64::from(a.limits.max_metrics_connections) + 64;
    if fds > 0 && fds < needed {
        tracing::warn!(
            "the file-descriptor limit ({fds}) is below what --max-connections {} and --max-metrics-connections {} may hold ({needed}); raise LimitNOFILE or lower the caps (accept errors back off, and are counted in axon_accept_errors_total)",
            a.limits.max_connections,
            a.limits.max_metrics_connections
        );
    }
    let cfg = AgentConfig {
        host_root: a.collect.host_root.clone(),
        listen: Some(a.listen),
        echo_listen: Some(a.listen),
        metrics_listen: Some(a.metrics_listen),
        unix_socket: Some(a.control_socket.clone()),
        state_dir: a.state_dir.clone(),
        token_file: a.token_file.clone(),
        node_name: a.node_name.clone(),
        base_interval: a.interval,
        collect: collect_config(&a.collect)?,
        tls: server_tls(&a.tls, &a.state_dir),
        metrics_tls: a.tls.metrics_tls,
        limits: limits(&a.limits),
    };
    // The store first: an agent asked to host one that cannot be opened must not start.
    let store = match &a.store {
        Some(dir) => Some(agent::member::HostedStore::open(dir).await?),
        None => None,
    };
    let ag = agent::start(cfg).await?;
    let mut hosted = match agent::member::host(
        &ag,
        &a.state_dir,
        store,
        agent::member::ScrubOptions {
            rate: (a.scrub_rate > 0).then_some(a.scrub_rate),
            every: a.scrub_every,
        },
        a.cluster_listen
            .map(|cluster_listen| agent::member::MemberOptions {
                cluster_listen,
                data_listen: a.data_listen,
                rebuild: agent::data::RebuildConfig {
                    grace: a.rebuild_grace,
                    rate: (a.rebuild_rate > 0).then_some(a.rebuild_rate),
                    orphan_grace: a.orphan_grace,
                },
            }),
        match a.containers {
            crate::cli::ContainerMode::Auto => agent::containers::Mode::Auto,
            crate::cli::ContainerMode::Pin => agent::containers::Mode::Pin,
            crate::cli::ContainerMode::Off => agent::containers::Mode::Off,
        },
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            ag.shutdown();
            return Err(e);
        }
    };
    let cluster = hosted.cluster.clone();
    let name = ag.state.with_snapshot(|s, _| s.node.hostname.clone());
    eprintln!("axon agent {} on node {name}", env!("CARGO_PKG_VERSION"));
    if let Some(addr) = ag.grpc_addr {
        match &ag.tls {
            Some(id) => {
                eprintln!(
                    "  gRPC        {addr} (TLS, bearer token from {})",
                    ag.admin_token_file.display()
                );
                eprintln!(
                    "  certificate {} {}{}",
                    id.cert_path.display(),
                    id.fingerprint,
                    if id.created { " (created now)" } else { "" }
                );
                eprintln!(
                    "              pin it in the console's inventory: fingerprint = \"{}\"",
                    id.fingerprint
                );
            }
            None => {
                eprintln!(
                    "  gRPC        {addr} (PLAIN TEXT, bearer token from {})",
                    ag.admin_token_file.display()
                );
                tracing::warn!(
                    "--insecure: gRPC on TCP is not encrypted; anyone on the network can read the tokens and impersonate this agent. Labs only."
                );
            }
        }
    }
    if let Some(p) = &ag.unix_socket {
        eprintln!("  control     {} (unix socket, root peers)", p.display());
    }
    if let Some(a) = ag.echo_addr {
        eprintln!("  UDP echo    {a}");
    }
    if let Some(a) = ag.metrics_addr {
        eprintln!("  metrics     http://{a}/metrics");
    }
    if let Some(h) = &cluster {
        let joined = h.info().await.map(|(m, _, _)| m);
        eprintln!(
            "  cluster     port {} (Raft, mutual TLS among members){}",
            h.port(),
            match joined {
                Some(m) => format!(", node {} of cluster {}", m.node_id, m.cluster),
                None => ", not a member yet".to_string(),
            }
        );
    }
    if let Some(dir) = &a.store {
        eprintln!(
            "  store       {} (scrub at {}/s, every {:?})",
            dir.display(),
            humansize::format_size(a.scrub_rate, humansize::BINARY),
            a.scrub_every
        );
    }
    wait_for_shutdown().await;
    hosted.shutdown().await;
    ag.shutdown();
    Ok(0)
}

//! What each CLI verb does, on top of the library layers. `main` parses and dispatches here.

pub mod check;
pub mod status;

use crate::agent::{self, AgentConfig, scheduler::CollectConfig};
use crate::cli::{
    AgentArgs, CheckArgs, CollectArgs, ConsoleArgs, ExporterArgs, FleetArgs, LimitsArgs,
    ServerTlsArgs, StatusArgs, TrustArgs, ViewArgs,
};
use crate::collectors::HostRoot;
use crate::collectors::checks::PlanParams;
use crate::collectors::net::NetConfig;
use crate::collectors::probes::ProbeOptions;
use crate::fleet::{Fleet, FollowOptions, Inventory};
use crate::model::{checks, hostlist, ports};
use crate::ui::{self, theme};
use anyhow::{Context, Result};

pub fn collect_config(a: &CollectArgs) -> Result<CollectConfig> {
    let peers = match &a.peers {
        Some(list) => hostlist::expand(list).context("--peers")?,
        None => Vec::new(),
    };
    let hugepages_per_core_bytes = a
        .hugepages_per_core_mib
        .checked_mul(1024 * 1024)
        .with_context(|| {
            format!(
                "--hugepages-per-core-mib {} is more memory than 64 bits can count; give MiB per core (default 1536)",
                a.hugepages_per_core_mib
            )
        })?;
    Ok(CollectConfig {
        net: NetConfig {
            dataplane: a.dataplane_nics.clone(),
        },
        plan: PlanParams {
            hugepages_per_core_bytes,
            ..PlanParams::default()
        },
        peers,
        probe_ports: ports::continuous_ports(),
        probe: ProbeOptions {
            timeout: a.probe_timeout,
            concurrency: a.probe_concurrency.max(1),
            source: None,
        },
        own_addresses: Vec::new(),
        smart: true,
        log_problems: true,
        on_demand: None,
        peers_per_round: a.probe_peers_per_round,
    })
}

async fn wait_for_shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

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

/// The console's trust in agents' certificates, from the flags.
pub fn trust(a: &TrustArgs) -> Result<std::sync::Arc<crate::fleet::tls::Trust>> {
    let t = crate::fleet::tls::Trust::new(&crate::fleet::tls::TrustOptions {
        insecure: a.insecure,
        ca_file: a.ca_file.clone(),
        tofu: a.tofu,
        known_agents: a.known_agents.clone(),
    })
    .map_err(anyhow::Error::msg)?;
    if a.insecure {
        eprintln!(
            "axon: WARNING: --insecure: talking to agents in plain text; tokens and data cross the network unencrypted"
        );
    }
    Ok(std::sync::Arc::new(t))
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

pub async fn agent(a: AgentArgs) -> Result<()> {
    let fds = raise_fd_limit();
    let needed =
        u64::from(a.limits.max_connections) + u64::from(a.limits.max_metrics_connections) + 64;
    if fds > 0 && fds < needed {
        eprintln!(
            "axon: warning: the file-descriptor limit ({fds}) is below what --max-connections {} and --max-metrics-connections {} may hold ({needed}); raise LimitNOFILE or lower the caps (accept errors back off, and are counted in axon_accept_errors_total)",
            a.limits.max_connections, a.limits.max_metrics_connections
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
    let ag = agent::start(cfg).await?;
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
                eprintln!(
                    "axon: WARNING: --insecure: gRPC on TCP is not encrypted; anyone on the network can read the tokens and impersonate this agent. Labs only."
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
    wait_for_shutdown().await;
    ag.shutdown();
    Ok(())
}

pub async fn exporter(a: ExporterArgs) -> Result<()> {
    let cfg = AgentConfig {
        host_root: a.collect.host_root.clone(),
        listen: None,
        echo_listen: None,
        metrics_listen: Some(a.metrics_listen),
        unix_socket: None,
        state_dir: std::env::temp_dir(),
        token_file: None,
        node_name: None,
        base_interval: a.interval,
        collect: CollectConfig {
            on_demand: Some(a.max_age),
            ..collect_config(&a.collect)?
        },
        tls: agent::tls::ServerTls::Off,
        metrics_tls: false,
        limits: agent::listen::Limits::default(),
    };
    let ag = agent::start(cfg).await?;
    if let Some(addr) = ag.metrics_addr {
        eprintln!(
            "axon exporter {}: metrics at http://{addr}/metrics",
            env!("CARGO_PKG_VERSION")
        );
    }
    wait_for_shutdown().await;
    ag.shutdown();
    Ok(())
}

pub async fn check(a: CheckArgs) -> Result<i32> {
    let root = HostRoot::open_within(
        &a.collect.host_root,
        crate::collectors::hostroot::STARTUP_DEADLINE,
    )
    .await?;
    let cfg = collect_config(&a.collect)?;
    let outcome = check::run(&root, &cfg).await;
    if a.json {
        println!("{}", check::render_json(&outcome));
    } else {
        print!("{}", check::render_table(&outcome, check::use_color()));
    }
    for p in outcome.problems.iter().filter(|p| p.contains("timed out")) {
        eprintln!("axon check: {p}");
    }
    if outcome.results.is_empty() {
        eprintln!(
            "axon check: could not run the checks: {}",
            outcome
                .error
                .as_deref()
                .unwrap_or("no check produced a result")
        );
    }
    Ok(checks::exit_code(&outcome.results))
}

/// Opens the console (or prints one frame with --once) on a fleet.
pub async fn view(inv: &Inventory, v: &ViewArgs) -> Result<()> {
    let opts = FollowOptions::for_interval(v.interval);
    let connect = opts.connect_timeout;
    let fleet = Fleet::start(inv, opts)?;
    if v.once {
        let th = theme::Theme::load(
            if theme::no_color() { "mono" } else { &v.theme },
            theme::ColorDepth::TrueColor,
        )?;
        // Long enough for a slow node's first full report; nodes that answer definitively
        // (data, or a refusal) end the wait early.
        let timeout = (connect + v.interval * 3).max(std::time::Duration::from_secs(10));
        let text = ui::once(
            fleet,
            &th,
            &v.panel,
            v.node.as_deref(),
            v.size.0,
            v.size.1,
            timeout,
        )
        .await?;
        print!("{text}");
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("the console needs a terminal; use --once to print one frame");
    }
    ui::run(
        fleet,
        ui::ConsoleOptions {
            read_only: v.read_only,
            theme: v.theme.clone(),
            mouse: v.mouse,
        },
    )
    .await
}

/// An error as one line for the operator: the chain of contexts down to the first error
/// that already says what went wrong and what to do (ours embed their cause), with no
/// text repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
        if cause.is::<crate::collectors::CollectError>()
            || cause.is::<crate::fleet::inventory::InventoryError>()
            || cause.is::<hostlist::HostlistError>()
        {
            break;
        }
    }
    out
}

/// The nodes to follow, with their tokens and how their certificates are trusted, from
/// `--inventory` or `--hosts`.
pub fn inventory(a: &FleetArgs) -> Result<Inventory> {
    let mut inv = match (&a.inventory, &a.hosts) {
        // --port conflicts with --inventory (clap); --token-file replaces the file's.
        (Some(path), _) => Inventory::load_with_token(path, a.token_file.clone())?,
        (None, Some(h)) => Inventory::from_hosts(h, a.port, a.token_file.clone())?,
        (None, None) => anyhow::bail!("pass --hosts 'axon[001-022]' or --inventory FILE"),
    };
    inv.trust = trust(&a.trust)?;
    Ok(inv)
}

pub async fn console(a: ConsoleArgs) -> Result<()> {
    view(&inventory(&a.fleet)?, &a.view).await
}

/// `axon status`: the exit code is the verdict's.
pub async fn status(a: StatusArgs) -> Result<i32> {
    status::run(&inventory(&a.fleet)?, &a).await
}

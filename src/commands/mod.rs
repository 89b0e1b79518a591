//! What each CLI verb does, on top of the library layers. `main` parses and dispatches here.

pub mod check;

use crate::agent::{self, AgentConfig, scheduler::CollectConfig};
use crate::cli::{AgentArgs, CheckArgs, CollectArgs, ExporterArgs};
use crate::collectors::HostRoot;
use crate::collectors::checks::PlanParams;
use crate::collectors::net::NetConfig;
use crate::collectors::probes::ProbeOptions;
use crate::model::{checks, hostlist, ports};
use anyhow::{Context, Result};

pub fn collect_config(a: &CollectArgs) -> Result<CollectConfig> {
    let peers = match &a.peers {
        Some(list) => hostlist::expand(list).context("--peers")?,
        None => Vec::new(),
    };
    Ok(CollectConfig {
        net: NetConfig {
            dataplane: a.dataplane_nics.clone(),
        },
        plan: PlanParams {
            hugepages_per_core_bytes: a.hugepages_per_core_mib * 1024 * 1024,
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
    })
}

async fn wait_for_shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

pub async fn agent(a: AgentArgs) -> Result<()> {
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
    };
    let ag = agent::start(cfg).await?;
    let name = ag.state.with_snapshot(|s, _| s.node.hostname.clone());
    eprintln!("axon agent {} on node {name}", env!("CARGO_PKG_VERSION"));
    if let Some(a) = ag.grpc_addr {
        eprintln!(
            "  gRPC        {a} (TCP, bearer token from {})",
            ag.admin_token_file.display()
        );
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
        collect: collect_config(&a.collect)?,
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
    let root = HostRoot::open(&a.collect.host_root)?;
    let cfg = collect_config(&a.collect)?;
    let outcome = check::run(&root, &cfg).await;
    if a.json {
        println!("{}", check::render_json(&outcome));
    } else {
        print!("{}", check::render_table(&outcome, check::use_color()));
    }
    Ok(checks::exit_code(&outcome.results))
}

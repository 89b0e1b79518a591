//! What each CLI verb does, on top of the library layers. `main` parses and dispatches here.

pub mod check;

use crate::agent::{self, AgentConfig, scheduler::CollectConfig};
use crate::cli::{AgentArgs, CheckArgs, CollectArgs, ConsoleArgs, ExporterArgs, ViewArgs};
use crate::collectors::HostRoot;
use crate::collectors::checks::PlanParams;
use crate::collectors::net::NetConfig;
use crate::collectors::probes::ProbeOptions;
use crate::fleet::{Fleet, FollowOptions, Inventory};
use crate::model::{checks, hostlist, ports};
use crate::ui::{self, app::Panel, theme};
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
        collect: CollectConfig {
            on_demand: Some(a.max_age),
            ..collect_config(&a.collect)?
        },
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
        let panel = Panel::parse(&v.panel).with_context(|| {
            format!(
                "--panel {}: use overview, cores, drives, network, checks, stripes or events",
                v.panel
            )
        })?;
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
            panel,
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

pub async fn console(a: ConsoleArgs) -> Result<()> {
    let inv = match (&a.inventory, &a.hosts) {
        (Some(path), _) => Inventory::load(path)?,
        (None, Some(h)) => Inventory::from_hosts(h, a.port, a.token_file.clone())?,
        (None, None) => anyhow::bail!("pass --hosts 'axon[001-022]' or --inventory FILE"),
    };
    view(&inv, &a.view).await
}

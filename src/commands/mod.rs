//! What each CLI verb does, on top of the library layers: one file per verb, each with
//! `exec(args)` returning the process's exit code. `main` parses and dispatches here; what
//! several verbs share (the collection flags, the fleet flags, error text) lives below.

pub mod agent;
pub mod check;
pub mod cluster;
pub mod console;
pub mod demo;
pub mod drive;
pub mod drive_ops;
pub mod exporter;
pub mod io;
pub mod objects;
pub mod plan;
pub mod probe;
pub mod status;

use crate::agent::scheduler::CollectConfig;
use crate::cli::{CollectArgs, FleetArgs, TrustArgs};
use crate::collectors::checks::PlanParams;
use crate::collectors::net::NetConfig;
use crate::collectors::probes::ProbeOptions;
use crate::collectors::slurm::SlurmFiles;
use crate::fleet::Inventory;
use crate::model::{hostlist, ports};
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
        slurm: a.slurm_conf.clone().map(|slurm_conf| SlurmFiles {
            slurm_conf,
            cgroup_conf: a.cgroup_conf.clone(),
        }),
    })
}

pub async fn wait_for_shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
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
        tracing::warn!(
            "--insecure: talking to agents in plain text; tokens and data cross the network unencrypted"
        );
    }
    Ok(std::sync::Arc::new(t))
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

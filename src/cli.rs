//! Command-line definitions of every mode and verb.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "axon",
    version,
    about = "Operator console, node agent and exporter for NeuralMesh Axon storage clusters",
    long_about = "Operator console, node agent and exporter for NeuralMesh Axon storage clusters.\n\n\
        New here? Run `axon demo`: it starts a cluster of agents on 127.0.1.x with emulated \
        hosts and shows where they listen.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node agent: collectors, gRPC on TCP and a unix socket, UDP echo, /metrics
    Agent(AgentArgs),
    /// Serve only /metrics (telemetry-only mode for Prometheus); collects when scraped
    Exporter(ExporterArgs),
    /// Check this host against the deployment requirements (exit 0 pass, 1 warn, 2 fail)
    Check(CheckArgs),
    /// The operator console: every node on one screen (TUI), or one frame with --once
    Console(ConsoleArgs),
    /// Start an embedded cluster of agents on 127.0.1.x with emulated hosts, and the console
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Agents to follow, in host list syntax (axon[001-200])
    #[arg(
        long,
        value_name = "HOSTLIST",
        conflicts_with = "inventory",
        required_unless_present = "inventory"
    )]
    pub hosts: Option<String>,

    /// Inventory file (TOML: nodes, addresses, ports, token files); `axon demo --headless`
    /// writes one
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,

    /// Token file for --hosts (the agents' reader.token, or admin.token for probes)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Agents' gRPC port for --hosts
    #[arg(long, value_name = "PORT", default_value_t = 14000)]
    pub port: u16,

    #[command(flatten)]
    pub view: ViewArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// The agents' collection interval: data older than 3 intervals is STALE
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Colour theme: default, light, high-contrast, mono, or a .toml file (NO_COLOR selects mono)
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub theme: String,

    /// Hide every key that changes the cluster
    #[arg(long)]
    pub read_only: bool,

    /// Capture the mouse (click tabs, scroll lists); off by default so text can be selected
    #[arg(long)]
    pub mouse: bool,

    /// Print one rendered frame as text and exit (for scripts, tickets and CI)
    #[arg(long)]
    pub once: bool,

    /// Frame size for --once, WIDTHxHEIGHT
    #[arg(long, value_name = "WxH", default_value = "160x48", value_parser = parse_size)]
    pub size: (u16, u16),

    /// Panel for --once: overview, cores, drives, network, checks, stripes, events
    #[arg(long, value_name = "NAME", default_value = "overview")]
    pub panel: String,

    /// Node the Cores panel shows (--once)
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
}

/// Parses `160x48`.
pub fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT like 160x48"))?;
    let w: u16 = w
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: width is not a number"))?;
    let h: u16 = h
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: height is not a number"))?;
    if w < 20 || h < 5 || w > 1000 || h > 500 {
        return Err(format!("`{s}`: size out of range (20x5 to 1000x500)"));
    }
    Ok((w, h))
}

#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// Read host facts under this directory instead of / (a mounted host root, or a
    /// fixture tree such as tests/fixtures/hosts/misconfigured)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,

    /// Peers to probe for port reachability, in host list syntax (axon[001-200])
    #[arg(long, value_name = "HOSTLIST")]
    pub peers: Option<String>,

    /// Dataplane NIC (repeat for each); default: auto-detect physical Ethernet/InfiniBand
    /// NICs other than the one carrying the default route
    #[arg(long = "dataplane-nic", value_name = "NAME")]
    pub dataplane_nics: Vec<String>,

    /// Huge-page memory to plan per Axon core, for the hugepages check
    #[arg(long, value_name = "MIB", default_value_t = 1536)]
    pub hugepages_per_core_mib: u64,

    /// Timeout of one port probe
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub probe_timeout: Duration,

    /// Probes in flight at once
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub probe_concurrency: usize,

    /// Peers probed per round (a round every 5 × --interval), rotating: at most N peers ×
    /// the 15 continuous ports a round from each node (96 probes/s at 32), whatever the
    /// cluster's size, and every pair covered within ceil(peers / N) rounds (1,000 nodes at
    /// 32: 32 rounds, 160 s at --interval 1s); 0 probes every peer every round. The full
    /// sweep stays on demand: `axon check --peers …`, or `P` in the console's Network panel
    #[arg(long, value_name = "N", default_value_t = crate::collectors::probes::DEFAULT_PEERS_PER_ROUND)]
    pub probe_peers_per_round: usize,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub collect: CollectArgs,

    /// gRPC listen address (TCP, bearer token required); UDP echo uses the same address
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:14000")]
    pub listen: SocketAddr,

    /// /metrics listen address
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:14090")]
    pub metrics_listen: SocketAddr,

    /// Unix control socket (mode 0600; root peers are trusted without a token)
    #[arg(long, value_name = "PATH", default_value = "/run/axon/control.sock")]
    pub control_socket: PathBuf,

    /// Where the admin and reader tokens live (created on first start, mode 0600)
    #[arg(long, value_name = "DIR", default_value = "/var/lib/axon")]
    pub state_dir: PathBuf,

    /// Admin token file (default: <state-dir>/admin.token)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Name this node reports (default: the host's hostname)
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,

    /// Collection interval of the cheap collectors; expensive ones run at multiples of it
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct ExporterArgs {
    #[command(flatten)]
    pub collect: CollectArgs,

    /// /metrics listen address
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:14090")]
    pub metrics_listen: SocketAddr,

    /// Shortest period of the cheap collectors; expensive ones at multiples of it
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Collect only when a scrape finds data older than this (or than the collector's own
    /// period); nothing runs between scrapes but one refresh just before the next
    /// expected scrape
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub max_age: Duration,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub collect: CollectArgs,

    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of agents (node i listens on 127.0.1.i)
    #[arg(long, value_name = "N", default_value_t = 22, value_parser = clap::value_parser!(u16).range(1..=254))]
    pub nodes: u16,

    /// Run the agents without a console until interrupted (and write an inventory file
    /// that `axon console --inventory` accepts)
    #[arg(long)]
    pub headless: bool,

    /// gRPC and UDP echo port of every demo agent (each on its own 127.0.1.i)
    #[arg(long, value_name = "PORT", default_value_t = 14000)]
    pub port: u16,

    /// /metrics port of every demo agent
    #[arg(long, value_name = "PORT", default_value_t = 14090)]
    pub metrics_port: u16,

    /// Where --headless writes the inventory (default: <dir>/inventory.toml)
    #[arg(long, value_name = "FILE")]
    pub inventory_out: Option<PathBuf>,

    /// Working directory for the emulated hosts and tokens (default: a new temporary one)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    #[command(flatten)]
    pub view: ViewArgs,
}

/// Parses `500ms`, `2s`, `1m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 2s or 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)")),
    };
    if !(secs > 0.0 && secs < 86_400.0 * 365.0) {
        return Err(format!("`{s}` must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("160x48").unwrap(), (160, 48));
        assert!(parse_size("160").is_err());
        assert!(parse_size("0x0").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}

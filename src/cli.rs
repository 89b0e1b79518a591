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

    /// Export spans to this OpenTelemetry collector over OTLP/gRPC
    /// (http://collector:4317). Default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then
    /// $OTEL_EXPORTER_OTLP_ENDPOINT; with neither, nothing is exported. The service name is
    /// $OTEL_SERVICE_NAME, else axon-<verb>
    #[arg(long, global = true, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
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
    /// The cluster's health in a few lines, like `ceph -s` (exit 0 healthy, 1 warnings,
    /// 2 critical, 3 unreachable)
    #[command(
        long_about = "The cluster's health in a few lines, like `ceph -s`: nodes up / stale / down \
            with the reason for each that is not up, failing checks (per node and cluster-wide), \
            drives by health, blocked probes, core conflicts, and the data plane as its members \
            report it: IO status, protection, a rebuild under way, members away and chunks \
            being repaired; and a `cluster` line from one member, asked afresh for every \
            frame with --watch (scheme, hot spares, IO status, leader, members, drives ACTIVE \
            and FAILED, protection). \
            Follows every node of the inventory as the console does, waits until \
            each has answered or failed (at most --timeout), then judges the cluster once, the \
            same way as the console's Overview.",
        after_help = "Exit codes (the verdict):\n  \
            0  healthy      every node up, nothing wrong\n  \
            1  warnings     a node stale or not answering yet, a check or drive\n                  \
            warning, a core conflict, a collector failing or its data stale\n  \
            2  critical     a node down, a check failing, a drive critical,\n                  \
            a probe between nodes blocked\n  \
            3  unreachable  no node is up (also: the inventory or a token file\n                  \
            could not be read)\n\
            A usage error exits 2 before anything is asked, with the reason on stderr."
    )]
    Status(StatusArgs),
    /// Start an embedded cluster of agents on 127.0.1.x with emulated hosts, and the console
    Demo(DemoArgs),
    /// Probe every port of some port groups from one node to its peers, on that node's
    /// agent, with progress (exit 0 none blocked, 1 cancelled, 2 ports blocked, 3 could not run)
    #[command(
        long_about = "Probe every port of the chosen port groups (TCP connect, UDP echo) from one \
            node to its peers. The probe is an operation on that node's agent: it needs the \
            admin token, runs one peer per step, is listed by the agent and goes on if this \
            command goes away. Progress shows as a bar on a terminal, as plain lines otherwise, \
            and as JSON lines with --json. Ctrl-C asks the agent to cancel and waits for it to \
            stop (within one step); a second Ctrl-C stops following.",
        after_help = "Port groups: core (14000-14100, 15000-15100, 16000-16100 TCP+UDP), ssh, \
            traces, ntp, vault, kmip, k8s-client, k8s-core.\n\n\
            Exit codes:\n  \
            0  every probe passed the firewall (open, or closed: reachable, nothing listening)\n  \
            1  cancelled (Ctrl-C here, or by anyone on the agent); the output says how far it got\n  \
            2  ports blocked (filtered or unreachable); the output lists them\n  \
            3  could not run: the node is unknown or unreachable, a token or the inventory could\n     \
            not be read, the agent refused (reader token: pass the admin.token), or contact\n     \
            was lost (the probe goes on on the agent)\n\
            A usage error exits 2 before anything is asked, with the reason on stderr.\n\n\
            --json prints one object per line on stdout: {\"event\":\"started\",\"operation\":{…}}, \
            {\"event\":\"step\",\"name\",\"done\",\"total\"}, {\"event\":\"log\",\"text\"}, and last \
            {\"event\":\"finished\",\"exit_code\",\"operation\":{… \"output\":{\"report\":…}}} or \
            {\"event\":\"error\",\"exit_code\":3,\"error\"}."
    )]
    Probe(ProbeArgs),
    /// Plan the Axon cores, NICs and memory of a host (or of every node of a cluster) from
    /// what it observes (exit 0 the rules hold, 1 warnings, 2 a rule cannot hold, 3 could not run)
    #[command(
        long_about = "Plan the Axon containers of a host from its observed topology, dataplane \
            NICs and NVMe drives: 1 drive core per drive (at most 8), 2 compute cores per drive \
            core (at most 16), 12 frontend cores; cores only from NUMA domains holding a \
            dataplane NIC, spread evenly over them, each container with a NIC on its own domain; \
            with SMT on, one thread per core to Axon and its sibling kept idle (and from jobs); \
            cpu0's core kept for the OS. When the rules cannot all hold, it prints the nearest \
            plan and every reason. Reads this host (or --host-root), or with --inventory / \
            --hosts what each node's agent reports.",
        after_help = "Exit codes:\n  \
            0  every rule holds on every node\n  \
            1  the plan holds but the hardware departs from the seed (one NIC, 3 drives, …)\n  \
            2  a rule cannot hold on some node (too few cores or memory, no dataplane NIC)\n  \
            3  could not run (facts unreadable, node unreachable)"
    )]
    Plan(PlanArgs),
    /// Data-plane drives: format a file or block device as an axon drive, or show one
    /// (format, info); the cluster's drives by node (list), and on their nodes phase one
    /// out, take it out, add one, or put one back in service (deactivate, remove, add,
    /// activate)
    #[command(subcommand)]
    Drive(DriveCommand),
    /// The data plane's storage engine: objects in k+m erasure-coded stripes, in a store
    /// on this node across file or block drives (create, add-drive, put, get, rm, ls,
    /// status, scrub), or in the data-plane cluster with --inventory or --hosts (put, get,
    /// rm, ls, bench)
    #[command(subcommand)]
    Io(IoCommand),
    /// The data-plane cluster: form it from the inventory's agents (create), or show what
    /// its members report (status)
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Start the data-plane cluster's IO, as an operation on a member: every precondition
    /// is checked first and each one not met is listed (exit 0 started, 1 cancelled,
    /// 2 refused, 3 could not run). Needs the admin token
    StartIo(IoStateArgs),
    /// Stop the data-plane cluster's IO, as an operation on a member (exit codes as
    /// start-io). Needs the admin token
    StopIo(IoStateArgs),
}

#[derive(Debug, Args)]
pub struct IoStateArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// The member to run the operation on (default: the first the inventory lists that
    /// answers); it hands the change to the leader
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    /// JSON lines: every state of the operation, the last one final
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Form the cluster: every inventory node a member (failure domain), the first five
    /// the Raft leadership group, then the cluster's scheme and hot spares recorded.
    /// Refused, with the numbers, when k + m + spares exceeds the nodes. The agents must
    /// run with --cluster-listen; the admin token is needed
    Create(ClusterCreateArgs),
    /// What each member reports: cluster, leader, epoch, scheme, IO status
    /// (exit 0 a leader agreed by all, 1 no leader or members disagree, 3 unreachable)
    Status(ClusterStatusArgs),
}

#[derive(Debug, Args)]
pub struct ClusterCreateArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// Erasure coding: k data + m parity chunks per stripe
    #[arg(long, default_value = "16+4", value_parser = parse_scheme)]
    pub scheme: (usize, usize),

    /// Failure domains' worth of capacity held back for rebuild
    #[arg(long, default_value_t = 2)]
    pub hot_spares: usize,

    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ClusterStatusArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum IoCommand {
    /// Create a store: its index in --store, and drives — N new sparse files (--drives N
    /// --drive-size SIZE, in STORE/drives) and/or formatted drives given by path (--drive)
    Create(IoCreateArgs),
    /// Add formatted drives of this store's cluster (`axon drive format --cluster ID`)
    AddDrive(IoAddDriveArgs),
    /// Store FILE (or standard input) under KEY; returns once every chunk is durable and
    /// the index committed. Replaces what KEY held
    Put(IoPutArgs),
    /// Read KEY to FILE (or standard output), verifying every chunk and rebuilding damaged
    /// or missing ones from parity
    Get(IoGetArgs),
    /// Remove KEY
    Rm(IoKeyArgs),
    /// List objects: key, size, stripes
    Ls(IoLsArgs),
    /// Drives, protection, degraded stripes, and what opening the store found and freed
    /// (exit 0 OK, 1 degraded, 2 some stripe unprotected or unreadable)
    Status(IoStoreArgs),
    /// Read every chunk, verify it, repair from parity what is damaged or on a lost drive
    Scrub(IoScrubArgs),
    /// Load the cluster with objects (--inventory or --hosts): workers spread over its
    /// agents put and get objects of --size for --duration in the --mix given; a live
    /// line every second, then throughput and latency percentiles (as fio reports them)
    Bench(IoBenchArgs),
}

/// `--direct` for the object verbs.
#[derive(Debug, Args)]
pub struct DirectArgs {
    /// Run the frontend in this process and call every member yourself, not through one
    /// member's frontend: put and get split and encode, or read and rebuild, the stripes
    /// here (one TLS hop per byte instead of two); rm and ls ask the members themselves;
    /// bench's workers all share this frontend. Needs the cluster's agents named with
    /// --inventory or --hosts, and its IO started
    #[arg(long)]
    pub direct: bool,
}

#[derive(Debug, Args)]
pub struct IoBenchArgs {
    #[command(flatten)]
    pub cluster: IoClusterArgs,

    /// Object size (K, M, G)
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_bytes)]
    pub size: u64,

    /// Objects in flight at once, spread over the agents
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// How long to run
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Share of writes in percent: 100 writes only, 0 reads only (of objects written first)
    #[arg(long, value_name = "WRITE%", default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub mix: u8,

    /// Leave the objects written (bench/<run>/…) instead of deleting them at the end
    #[arg(long)]
    pub keep: bool,

    #[command(flatten)]
    pub direct: DirectArgs,

    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IoStoreArgs {
    /// The store's directory (its index, meta.redb)
    #[arg(
        long,
        env = "AXON_STORE",
        default_value = "axon-store",
        value_name = "DIR"
    )]
    pub store: PathBuf,

    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IoCreateArgs {
    #[command(flatten)]
    pub store: IoStoreArgs,

    /// Erasure coding: k data + m parity chunks per stripe, k in 3..16, m in 2..4, k > m;
    /// or 1+0 for a node's share of a cluster (the cluster's stripes across nodes protect it)
    #[arg(long, default_value = "16+4", value_parser = parse_scheme)]
    pub scheme: (usize, usize),

    /// Chunk size: a multiple of 4K from 4K to 64M
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_bytes)]
    pub chunk_size: u64,

    /// Create this many sparse file drives in STORE/drives
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub drives: usize,

    /// Size of each new file drive
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_bytes)]
    pub drive_size: u64,

    /// A drive already formatted for this cluster (repeat); see `axon drive format --cluster`
    #[arg(long = "drive", value_name = "PATH")]
    pub drive_paths: Vec<PathBuf>,

    /// The cluster id (default: a new one)
    #[arg(long, value_name = "UUID")]
    pub cluster: Option<uuid::Uuid>,
}

#[derive(Debug, Args)]
pub struct IoAddDriveArgs {
    #[command(flatten)]
    pub store: IoStoreArgs,

    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Add a drive that is already in service (ACTIVE…): whatever chunks it holds are wiped
    #[arg(long)]
    pub force: bool,
}

/// With --hosts or --inventory, `axon io put|get|rm|ls` work on the data-plane cluster
/// (through the first of its agents that answers) instead of a store on this machine;
/// `axon io bench` needs them, and spreads its workers over every agent that answers.
#[derive(Debug, Clone, Args)]
pub struct IoClusterArgs {
    /// The cluster's agents in host list syntax (axon[001-022]): put, get, rm and ls go
    /// through the first that answers as a member; bench spreads its workers over all that
    /// do (with --direct, both use a frontend in this process instead)
    #[arg(long, value_name = "HOSTLIST", conflicts_with = "inventory")]
    pub hosts: Option<String>,

    /// Inventory file of the cluster's agents
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,

    /// Token file: the agents' admin.token to put, remove or bench (bench writes),
    /// reader.token suffices to get and ls
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Agents' gRPC port for --hosts
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 14000,
        conflicts_with = "inventory"
    )]
    pub port: u16,

    #[command(flatten)]
    pub trust: TrustArgs,
}

impl IoClusterArgs {
    /// The fleet selection, when a cluster was named.
    pub fn fleet(&self) -> Option<FleetArgs> {
        (self.hosts.is_some() || self.inventory.is_some()).then(|| FleetArgs {
            hosts: self.hosts.clone(),
            inventory: self.inventory.clone(),
            token_file: self.token_file.clone(),
            port: self.port,
            trust: self.trust.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct IoKeyArgs {
    #[command(flatten)]
    pub store: IoStoreArgs,

    #[command(flatten)]
    pub cluster: IoClusterArgs,

    /// The object's key: any UTF-8 string of 1 to 1024 bytes, in the cluster and in a
    /// store on this node alike
    pub key: String,

    #[command(flatten)]
    pub direct: DirectArgs,
}

#[derive(Debug, Args)]
pub struct IoLsArgs {
    #[command(flatten)]
    pub store: IoStoreArgs,

    #[command(flatten)]
    pub cluster: IoClusterArgs,

    /// Only keys starting with this
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub prefix: String,

    #[command(flatten)]
    pub direct: DirectArgs,
}

#[derive(Debug, Args)]
pub struct IoPutArgs {
    #[command(flatten)]
    pub store: IoStoreArgs,

    #[command(flatten)]
    pub cluster: IoClusterArgs,

    /// The object's key: any UTF-8 string of 1 to 1024 bytes, in the cluster and in a
    /// store on this node alike
    pub key: String,

    /// The file to store; standard input when absent or -
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub direct: DirectArgs,
}

#[derive(Debug, Args)]
pub struct IoGetArgs {
    #[command(flatten)]
    pub store: IoStoreArgs,

    #[command(flatten)]
    pub cluster: IoClusterArgs,

    /// The object's key: any UTF-8 string of 1 to 1024 bytes, in the cluster and in a
    /// store on this node alike
    pub key: String,

    /// Where to write the object; standard output when absent or -
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub direct: DirectArgs,
}

#[derive(Debug, Args)]
pub struct IoScrubArgs {
    #[command(flatten)]
    pub store: IoStoreArgs,

    /// Read at most this many bytes per second (K, M, G); 0 for no limit
    #[arg(long, value_name = "SIZE", default_value = "200M", value_parser = parse_bytes)]
    pub rate: u64,
}

/// "16+4" → (16, 4); the scheme's rules are checked where it is used.
pub fn parse_scheme(s: &str) -> Result<(usize, usize), String> {
    let (k, m) = s
        .split_once('+')
        .ok_or_else(|| format!("{s:?}: give k+m, such as 16+4"))?;
    let n = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|_| format!("{s:?}: give k+m, such as 16+4"))
    };
    Ok((n(k)?, n(m)?))
}

#[derive(Debug, Subcommand)]
pub enum DriveCommand {
    /// Format PATH as an axon drive: two superblock copies, then chunk slots. A new file is
    /// created sparse with --size. Refuses a drive that holds anything (a filesystem, a
    /// partition table, another axon drive, unknown data), naming it, unless --force
    Format(DriveFormatArgs),
    /// Show an axon drive's superblock (and which copy was used if one is damaged)
    Info(DriveInfoArgs),
    /// Every drive of the data-plane cluster, by node, with its state as the cluster's
    /// configuration records it and its usage as its node reports it (exit 0, 1 no
    /// cluster formed, 3 no member reachable)
    List(DriveListArgs),
    /// Phase a drive out, as an operation on its node: its chunks move to the node's other
    /// drives (at --rate) and, in a cluster, what they cannot hold to other members; then
    /// it is INACTIVE. Shows what will move first (--dry-run: only that); refused, with the
    /// figures, when the rest cannot hold it, too few failure domains would remain or the
    /// hot-spare reserve would be lost. Ctrl-C cancels (the drive is ACTIVE again, what
    /// moved stays moved); an agent restart resumes it. Exit 0 done, 1 cancelled,
    /// 2 refused or failed, 3 could not run
    Deactivate(DriveOpArgs),
    /// Put an INACTIVE (or PHASING_OUT) drive back in service: ACTIVE
    Activate(DriveOpArgs),
    /// Take an INACTIVE or FAILED drive out of its node's store (and the cluster's
    /// configuration), so the device can be pulled
    Remove(DriveOpArgs),
    /// Format a new drive on a node and add it to that node's store: PHASING_IN while
    /// chunks move onto it from the node's fuller drives (at --rate) until every drive is
    /// about as full, then ACTIVE; new chunks go to the emptiest drives first. Ctrl-C
    /// cancels the moves (the drive is ACTIVE, what moved stays); an agent restart resumes
    /// them
    Add(DriveAddArgs),
}

#[derive(Debug, Args)]
pub struct DriveOpArgs {
    /// The drive: its id or first 8 digits (as `axon drive list` shows it), or with --node
    /// its number (0, 1, …), file name or path on that node
    pub drive: String,

    #[command(flatten)]
    pub fleet: FleetArgs,

    /// The node that holds the drive (default: found in the cluster's configuration)
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    /// Only show what would happen (what moves, and what would refuse it)
    #[arg(long)]
    pub dry_run: bool,

    /// Bytes per second moved while phasing out (K, M, G); 0 for no limit. Used by
    /// deactivate only: activate and remove move nothing and ignore it
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = parse_bytes)]
    pub rate: u64,

    /// JSON lines: every state of the operation, the last one final
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DriveAddArgs {
    /// The node whose store takes the drive (a name in the inventory)
    pub node: String,

    /// The drive on that node: a block device, or a file (created with --size)
    pub path: PathBuf,

    #[command(flatten)]
    pub fleet: FleetArgs,

    /// Size of a new file (K, M, G, T)
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub size: Option<u64>,

    /// Format over whatever the drive holds
    #[arg(long)]
    pub force: bool,

    /// Only show what would happen
    #[arg(long)]
    pub dry_run: bool,

    /// Bytes per second moved onto it while phasing it in (K, M, G); 0 for no limit
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = parse_bytes)]
    pub rate: u64,

    /// JSON lines: every state of the operation, the last one final
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DriveListArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DriveFormatArgs {
    /// A file (created when it does not exist, with --size) or a block device
    pub path: PathBuf,

    /// Size of a new file: bytes, or with K, M, G, T (binary: 10G is 10 GiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub size: Option<u64>,

    /// Chunk size: a multiple of 4K from 4K to 64M
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_bytes)]
    pub chunk_size: u64,

    /// The cluster this drive belongs to (default: a new cluster id, printed)
    #[arg(long, value_name = "UUID")]
    pub cluster: Option<uuid::Uuid>,

    /// Overwrite whatever the drive holds
    #[arg(long)]
    pub force: bool,

    /// Print the superblock as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DriveInfoArgs {
    pub path: PathBuf,

    /// Print the superblock as JSON
    #[arg(long)]
    pub json: bool,
}

/// A size: bytes, or a number with K, M, G or T (binary multiples; `KiB`/`KB` spellings
/// too).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: give a size such as 4096, 64K, 1M or 10G"))?;
    let mul: u64 = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use K, M, G or T)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is more than 64 bits can count"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Containers, CPUs, NICs and memory per node, and the reasons
    Table,
    /// The plans as one JSON document
    Json,
    /// slurm.conf and cgroup.conf settings: the seed's, and NodeName lines whose
    /// CpuSpecList keeps the Axon cores from jobs
    Slurm,
    /// A pdsh install script: containers with their cores, NICs and memory, cluster
    /// create, protection, drives, start-io; idempotent
    Script,
    /// System files: the graceful-shutdown systemd override, the sysctl file, and
    /// source-based routing per dataplane NIC (ip, NetworkManager, netplan)
    Files,
    /// Kubernetes: a WekaCluster and a WekaClient for the WEKA operator, the kubelet
    /// settings that keep the Axon cores from pods, and an install script (labels,
    /// SELinux, registry secret, operator and CSI plugin by Helm)
    K8s,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Root of the host to plan (a mounted host, or a fixture tree); ignored with
    /// --inventory / --hosts
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,

    /// A dataplane NIC (repeat for each); otherwise auto-detected as the agent does
    #[arg(long = "dataplane-nic", value_name = "NAME")]
    pub dataplane_nics: Vec<String>,

    /// Plan every node of this inventory from its agent's report
    #[arg(long, value_name = "FILE", conflicts_with = "hosts")]
    pub inventory: Option<PathBuf>,

    /// Plan these nodes (host list) from their agents' reports
    #[arg(long, value_name = "HOSTLIST")]
    pub hosts: Option<String>,

    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,

    /// Write the artefacts (--format slurm, script, files, k8s) as files in this directory
    /// instead of printing them
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Plan for this many NVMe drives per node instead of the drives observed
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=64))]
    pub drives: Option<u16>,

    /// Frontend cores per node
    #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u16).range(0..=256))]
    pub frontend_cores: u16,

    /// Compute cores per drive core
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=16))]
    pub compute_per_drive: u16,

    /// Whole cores kept for the OS, cpu0's first
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub reserve_os: u16,

    /// Huge pages per compute core, MiB (the WEKA operator's 3 GiB)
    #[arg(long, value_name = "MIB", default_value_t = 3072, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub hugepages_compute_mib: u64,

    /// Huge pages per drive core, MiB (1.5 GiB)
    #[arg(long, value_name = "MIB", default_value_t = 1536, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub hugepages_drive_mib: u64,

    /// Huge pages per frontend core, MiB (1.5 GiB)
    #[arg(long, value_name = "MIB", default_value_t = 1536, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub hugepages_frontend_mib: u64,

    /// Container memory per compute core, MiB, huge pages included (the install script's 3.5 GB)
    #[arg(long, value_name = "MIB", default_value_t = 3584, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub memory_compute_mib: u64,

    /// Container memory per drive core, MiB (2.5 GB)
    #[arg(long, value_name = "MIB", default_value_t = 2560, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub memory_drive_mib: u64,

    /// Container memory per frontend core, MiB (2.5 GB)
    #[arg(long, value_name = "MIB", default_value_t = 2560, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub memory_frontend_mib: u64,

    /// How long to wait for every agent to report (with --inventory / --hosts) [100ms to 5m]
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// --format k8s: the weka-in-container image (REPO:X.Y.Z…)
    #[arg(long, value_name = "IMAGE", default_value = crate::actions::artefacts::k8s::DEFAULT_IMAGE)]
    pub weka_image: String,

    /// --format k8s: namespace of the WekaCluster and WekaClient
    #[arg(long, value_name = "NAME", default_value = "weka")]
    pub k8s_namespace: String,

    /// --format k8s: name of the WekaCluster (the WekaClient is NAME-clients)
    #[arg(long, value_name = "NAME", default_value = "axon")]
    pub cluster_name: String,

    /// --format k8s: Helm chart version of the WEKA operator
    #[arg(long, value_name = "VERSION", default_value = "v1.8.7")]
    pub operator_version: String,

    /// --format k8s: Helm chart version of the CSI plugin (default: the chart's latest)
    #[arg(long, value_name = "VERSION")]
    pub csi_version: Option<String>,

    /// --format k8s: the WEKA cpuPolicy: dedicated (dedicated_ht with SMT; the kubelet
    /// picks the cores) or manual (WEKA pinned to the plan's CPUs, which the kubelet keeps
    /// from pods; one drive and one compute container per node)
    #[arg(long, value_name = "POLICY", default_value = "dedicated", value_parser = ["dedicated", "manual"])]
    pub k8s_cpu_policy: String,

    /// Agents' token file (the reader.token is enough)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Agents' gRPC port for --hosts
    #[arg(long, value_name = "PORT", default_value_t = 14000)]
    pub port: u16,

    #[command(flatten)]
    pub trust: TrustArgs,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The node to probe from, by its name in the inventory (or its host with --hosts)
    #[arg(long, value_name = "NAME")]
    pub node: String,

    /// Port groups to probe, comma-separated
    #[arg(
        long,
        value_name = "LIST",
        default_value = "core",
        value_delimiter = ','
    )]
    pub groups: Vec<String>,

    /// Peers to probe, in host list syntax (default: every other node of the inventory, or
    /// the agent's own --peers when the inventory holds only this node)
    #[arg(long, value_name = "HOSTLIST")]
    pub peers: Option<String>,

    /// Print JSON lines (started, steps, log, finished) instead of progress and a summary
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,

    #[command(flatten)]
    pub view: ViewArgs,
}

/// Which agents to follow and how to reach them: the console and `axon status`.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Agents to follow, in host list syntax (axon[001-200])
    #[arg(
        long,
        value_name = "HOSTLIST",
        conflicts_with = "inventory",
        required_unless_present = "inventory"
    )]
    pub hosts: Option<String>,

    /// Inventory file (TOML: nodes, addresses, ports, token files), checked whole before
    /// anything connects; `axon demo --headless` writes one
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,

    /// Token file: the agents' reader.token reads (console, status, cluster status, drive
    /// list); their admin.token is needed for anything that changes the cluster or runs
    /// probes (start-io, stop-io, cluster create, drive deactivate/activate/remove/add,
    /// probe, the console's actions). With --inventory it replaces every node's token_file
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Agents' gRPC port for --hosts (with --inventory, set `port =` in the file)
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 14000,
        conflicts_with = "inventory"
    )]
    pub port: u16,

    #[command(flatten)]
    pub trust: TrustArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The agents' collection interval: data older than 3 intervals is STALE [100ms to 1h]
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// How long to wait for every node to answer or fail; a node silent that long is
    /// judged as it stands (not answering yet, or down with the reason) [100ms to 5m]
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Print one JSON document instead of the summary (with --watch, one per line)
    #[arg(long)]
    pub json: bool,

    /// Keep following the nodes and print the status again every DURATION (2s when
    /// given alone) until Ctrl-C; the exit code is then the last verdict's [100ms to 1h]
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        default_missing_value = "2s",
        value_parser = parse_interval
    )]
    pub watch: Option<Duration>,

    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// The agents' collection interval: data older than 3 intervals is STALE [100ms to 1h]
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
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

    /// Huge-page memory to plan per Axon core, for the hugepages check [0 to 1048576 (1 TiB)]
    #[arg(long, value_name = "MIB", default_value_t = 1536,
          value_parser = clap::value_parser!(u64).range(0..=MAX_HUGEPAGES_PER_CORE_MIB))]
    pub hugepages_per_core_mib: u64,

    /// Timeout of one port probe [10ms to 30s]
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_probe_timeout)]
    pub probe_timeout: Duration,

    /// Probes in flight at once [1 to 4096]
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_PROBE_CONCURRENCY as u64))]
    pub probe_concurrency: usize,

    /// Peers probed per round (a round every 5 × --interval), rotating: at most N peers ×
    /// the 15 continuous ports a round from each node (96 probes/s at 32), whatever the
    /// cluster's size, and every pair covered within ceil(peers / N) rounds (1,000 nodes at
    /// 32: 32 rounds, 160 s at --interval 1s); 0 probes every peer every round. The full
    /// sweep stays on demand: `axon check --peers …`, or `P` in the console's Network panel
    #[arg(long, value_name = "N", default_value_t = crate::collectors::probes::DEFAULT_PEERS_PER_ROUND)]
    pub probe_peers_per_round: usize,

    /// slurm.conf to judge (slurm.cpuspec, slurm.memspec, slurm.settings): this host's
    /// NodeName line must reserve the Axon CPUs and memory. Read as given, with its Include
    /// files, not under --host-root
    #[arg(long, value_name = "FILE")]
    pub slurm_conf: Option<PathBuf>,

    /// cgroup.conf to judge with --slurm-conf (slurm.cgroup: ConstrainCores,
    /// ConstrainRAMSpace)
    #[arg(long, value_name = "FILE", requires = "slurm_conf")]
    pub cgroup_conf: Option<PathBuf>,
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
    /// [100ms to 1h]
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    #[command(flatten)]
    pub tls: ServerTlsArgs,

    #[command(flatten)]
    pub limits: LimitsArgs,

    /// Host the storage engine of this store (`axon io create`): opened and reconciled at
    /// start, scrubbed in the background, its state in /metrics (axon_store_*)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// The scrubber's read rate (K, M, G per second; 0: unbounded)
    #[arg(long, value_name = "SIZE", default_value = "50M", value_parser = parse_bytes, requires = "store")]
    pub scrub_rate: u64,

    /// Pause between scrub passes
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration, requires = "store")]
    pub scrub_every: Duration,

    /// Host a data-plane cluster member: its Raft listener (mutual TLS among members), for
    /// example 0.0.0.0:14010. A membership recorded by `axon cluster create` resumes at start
    #[arg(long, value_name = "ADDR")]
    pub cluster_listen: Option<SocketAddr>,

    /// Serve this node's chunks to the other members (DataService, mutual TLS among
    /// members), for example 0.0.0.0:14020; needs --cluster-listen and --store. A store
    /// made with `axon io create --scheme 1+0` suits it: the cluster's stripes protect it
    #[arg(long, value_name = "ADDR", requires_all = ["cluster_listen", "store"])]
    pub data_listen: Option<SocketAddr>,

    /// A member away this long has its chunks rebuilt on the others; one back sooner is
    /// read around meanwhile, not rebuilt
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub rebuild_grace: Duration,

    /// Bytes per second this node writes while rebuilding (K, M, G); 0 for no limit
    #[arg(long, value_name = "RATE", default_value = "200M", value_parser = parse_bytes)]
    pub rebuild_rate: u64,

    /// A chunk no manifest places on this node (a failed put, an object overwritten,
    /// deleted or rebuilt elsewhere while the node was away) is freed once found this long
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub orphan_grace: Duration,

    /// The data plane's containers (with --store): threads named axon-drives0,
    /// axon-compute0, axon-frontend0, … pinned to the CPUs of this node's core plan
    /// (`axon plan`), doing the chunk IO, the erasure coding and the object IO. auto: only
    /// when the plan holds every rule (otherwise the plan is reported, not started); pin:
    /// the nearest plan even when it cannot hold (a small test machine); off: none
    #[arg(long, value_enum, default_value = "auto")]
    pub containers: ContainerMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContainerMode {
    Auto,
    Pin,
    Off,
}

#[derive(Debug, Args)]
pub struct ExporterArgs {
    #[command(flatten)]
    pub collect: CollectArgs,

    /// /metrics listen address
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:14090")]
    pub metrics_listen: SocketAddr,

    /// Shortest period of the cheap collectors; expensive ones at multiples of it [100ms to 1h]
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
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

    /// Run the demo agents and console without TLS (plain-text gRPC; tokens in clear).
    /// The data plane needs TLS, so this runs without one
    #[arg(long)]
    pub insecure: bool,

    /// The data plane's erasure coding, k data + m parity chunks per stripe (default:
    /// 16+4 with 22 nodes or more, else 4+2 with 6 or more, else 3+2 with 5 or more; fewer
    /// nodes run without a data plane)
    #[arg(long, value_name = "K+M", value_parser = parse_scheme)]
    pub scheme: Option<(usize, usize)>,

    /// Failure domains' worth of capacity held back for rebuild (default: what the nodes
    /// beyond k+m allow, at most 2)
    #[arg(long, value_name = "N")]
    pub hot_spares: Option<usize>,

    /// Drive files per node (sparse, under --dir)
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub drives: u16,

    /// Size of each drive file (K, M, G); sparse, so only what is written takes space
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_bytes)]
    pub drive_size: u64,

    /// How long a failed node is read around before its chunks are rebuilt elsewhere
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub rebuild_grace: Duration,

    /// Bytes per second each node writes while rebuilding (K, M, G): slow enough by
    /// default to watch the rebuild on the Stripes panel; 0 for no limit
    #[arg(long, value_name = "RATE", default_value = "1M", value_parser = parse_bytes)]
    pub rebuild_rate: u64,

    /// Objects the demo writes once IO starts, so that stripes exist (0: none); it then
    /// keeps a light load going, one overwrite and one verified read every few seconds
    #[arg(long, value_name = "N", default_value_t = 48)]
    pub objects: u32,

    /// Run the agents without the data plane (no stores, no cluster)
    #[arg(long, conflicts_with_all = ["scheme", "hot_spares"])]
    pub no_dataplane: bool,

    #[command(flatten)]
    pub view: ViewArgs,

    #[command(subcommand)]
    pub fault: Option<DemoFault>,
}

/// Fault injection into a running demo (emulation only; never on real nodes).
#[derive(Debug, Subcommand)]
pub enum DemoFault {
    /// Fail a node (stop its agent, Raft member and data port as a power loss would) or a
    /// drive (FAILED, its chunks lost): `fail node NAME`, `fail drive NODE DRIVE`
    Fail(DemoFaultArgs),
    /// Bring a failed node back (`heal node NAME`): its agent restarts on its drives
    Heal(DemoFaultArgs),
    /// Flip bytes on disk in every other chunk of a drive (`corrupt drive NODE DRIVE`):
    /// checksums find them, parity repairs them
    Corrupt(DemoFaultArgs),
}

#[derive(Debug, Args)]
pub struct DemoFaultArgs {
    /// `node NAME` (fail, heal) or `drive NODE DRIVE` (fail, corrupt); DRIVE: its index
    /// 0, 1…, file name drive00, or id
    #[arg(required = true, num_args = 2..=3, value_name = "WHAT")]
    pub what: Vec<String>,

    /// The running demo's working directory (its --dir)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// TLS of the agent's gRPC on TCP (and optionally /metrics).
#[derive(Debug, Clone, Args)]
pub struct ServerTlsArgs {
    /// Serve gRPC on TCP in plain text: bearer tokens travel in clear. For labs only; the
    /// agent says so at every start. Default: TLS with a self-signed certificate created
    /// on first start in <state-dir>/tls (key mode 0600), fingerprint printed at start
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "metrics_tls"], help_heading = "TLS")]
    pub insecure: bool,

    /// PEM certificate (chain) to present instead of the self-signed one (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key", help_heading = "TLS")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (mode 0600)
    #[arg(long, value_name = "FILE", requires = "tls_cert", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,

    /// Serve /metrics over HTTPS with the same certificate (default: plain HTTP, the
    /// Prometheus convention; /metrics reveals hostname, kernel, drive serials and checks)
    #[arg(long, help_heading = "TLS")]
    pub metrics_tls: bool,
}

/// Limits that keep the agent boring under floods of connections and calls.
#[derive(Debug, Clone, Args)]
pub struct LimitsArgs {
    /// Open gRPC connections on TCP; more are closed at once (axon_connections_rejected_total)
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_536), help_heading = "Limits")]
    pub max_connections: u32,

    /// Open connections from one peer address, per listener (gRPC, /metrics)
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_536), help_heading = "Limits")]
    pub max_connections_per_peer: u32,

    /// Concurrent calls (HTTP/2 streams) on one gRPC connection
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000), help_heading = "Limits")]
    pub max_streams_per_connection: u32,

    /// Watch streams one principal (reader token, admin token, socket uid) may hold open
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000), help_heading = "Limits")]
    pub max_watch_per_principal: u32,

    /// Open /metrics connections
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536), help_heading = "Limits")]
    pub max_metrics_connections: u32,

    /// Time a new connection has to finish its TLS handshake (and /metrics its request
    /// headers), 100ms to 5m
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout, help_heading = "Limits")]
    pub handshake_timeout: Duration,

    /// A connection that sends nothing for this long is closed, 1s to 1h (the agent
    /// pings gRPC clients every third of it, so live ones never are)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_idle, help_heading = "Limits")]
    pub idle_timeout: Duration,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, Duration::from_millis(100), Duration::from_secs(300))
}

fn parse_idle(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, Duration::from_secs(1), Duration::from_secs(3600))
}

/// How the console and CLI trust agents' certificates.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// Speak plain-text gRPC (agents started with --insecure). Tokens travel in clear:
    /// labs only
    #[arg(long, conflicts_with_all = ["ca_file", "tofu"], help_heading = "TLS")]
    pub insecure: bool,

    /// Trust agent certificates signed by this CA (PEM); inventory `ca_file` per node
    /// overrides it. Without it, each agent's fingerprint must be pinned in the inventory
    /// (`fingerprint = "sha256:…"`, printed by the agent at start)
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub ca_file: Option<PathBuf>,

    /// Trust an agent's certificate the first time it is seen and record it in the
    /// known-agents file; a later change is refused
    #[arg(long, help_heading = "TLS")]
    pub tofu: bool,

    /// Recorded fingerprints [default: $XDG_CONFIG_HOME/axon/known_agents or
    /// ~/.config/axon/known_agents]
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub known_agents: Option<PathBuf>,
}

/// Range of every collection interval flag (`--interval`): below 100 ms the collectors
/// would spend their time re-reading /proc, above an hour nothing is monitored.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Range of `--probe-timeout`: a LAN round trip fits in 10 ms; ProbePorts caps at 30 s.
pub const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(10);
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most probes in flight at once (as ProbePorts caps a request's concurrency).
pub const MAX_PROBE_CONCURRENCY: usize = 4096;
/// 1 TiB of huge pages per core: more than any machine has.
pub const MAX_HUGEPAGES_PER_CORE_MIB: u64 = 1024 * 1024;

/// `--interval`: a duration from `MIN_INTERVAL` to `MAX_INTERVAL`.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, MIN_INTERVAL, MAX_INTERVAL)
}

/// `--probe-timeout`: a duration from `MIN_PROBE_TIMEOUT` to `MAX_PROBE_TIMEOUT`.
pub fn parse_probe_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(s, MIN_PROBE_TIMEOUT, MAX_PROBE_TIMEOUT)
}

fn show(d: Duration) -> String {
    if d.as_secs() >= 3600 && d.as_secs() % 3600 == 0 {
        format!("{}h", d.as_secs() / 3600)
    } else if d.as_millis() >= 1000 && d.as_millis() % 1000 == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A duration within `[min, max]`, checked at parse time so no later code sees a zero or
/// absurd value.
pub fn parse_duration_in(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let secs = parse_seconds(s)?;
    // Compared as written, before rounding to nanoseconds: 1e-10 s is below the minimum,
    // not zero.
    if !(secs >= min.as_secs_f64() && secs <= max.as_secs_f64()) {
        return Err(format!(
            "`{}` is out of range: give {} to {}",
            s.trim(),
            show(min),
            show(max)
        ));
    }
    parse_duration(s)
}

/// Parses `500ms`, `2s`, `1m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs = parse_seconds(s)?;
    if !(secs > 0.0 && secs < 86_400.0 * 365.0) {
        return Err(format!(
            "`{}` must be positive and less than a year",
            s.trim()
        ));
    }
    let d = Duration::from_secs_f64(secs);
    if d.is_zero() {
        return Err(format!("`{}` is shorter than a nanosecond", s.trim()));
    }
    Ok(d)
}

/// A duration's number of seconds, as written (not yet checked for range).
fn parse_seconds(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 2s or 1m"))?;
    match unit {
        "ms" => Ok(n / 1000.0),
        "s" => Ok(n),
        "m" => Ok(n * 60.0),
        "h" => Ok(n * 3600.0),
        _ => Err(format!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)")),
    }
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
    fn byte_sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("1M"), Ok(1 << 20));
        assert_eq!(parse_bytes("10GiB"), Ok(10 << 30));
        assert_eq!(parse_bytes("2tb"), Ok(2 << 40));
        assert!(parse_bytes("1.5G").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("G").is_err());
        assert!(parse_bytes("99999999999T").unwrap_err().contains("64 bits"));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("160x48").unwrap(), (160, 48));
        assert!(parse_size("160").is_err());
        assert!(parse_size("0x0").is_err());
    }

    #[test]
    fn interval_below_minimum_is_refused_at_parse_time() {
        use clap::Parser;
        for verb in ["agent", "exporter", "console", "demo", "status"] {
            for bad in ["0.0000000001s", "99ms", "0.05", "2h", "1e3"] {
                let mut args = vec!["axon", verb, "--interval", bad];
                if matches!(verb, "console" | "status") {
                    args.extend(["--hosts", "a"]);
                }
                let e = Cli::try_parse_from(&args).unwrap_err().to_string();
                assert!(e.contains("--interval"), "{verb} {bad}: {e}");
            }
            let mut args = vec!["axon", verb, "--interval", "100ms"];
            if matches!(verb, "console" | "status") {
                args.extend(["--hosts", "a"]);
            }
            assert!(Cli::try_parse_from(&args).is_ok(), "{verb}");
        }
        let e = Cli::try_parse_from(["axon", "agent", "--interval", "0.0000000001s"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range: give 100ms to 1h"), "{e}");
        assert_eq!(parse_interval("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("0.0000000001").is_err(), "rounds to zero");
    }

    #[test]
    fn count_and_timeout_flags_are_checked_at_parse_time() {
        use clap::Parser;
        for (flag, bad, good) in [
            ("--probe-concurrency", "18446744073709551615", "4096"),
            ("--probe-concurrency", "0", "1"),
            ("--probe-timeout", "1ms", "10ms"),
            ("--probe-timeout", "31s", "30s"),
            ("--hugepages-per-core-mib", "1048577", "1048576"),
        ] {
            for verb in ["agent", "exporter", "check"] {
                let e = Cli::try_parse_from(["axon", verb, flag, bad])
                    .unwrap_err()
                    .to_string();
                assert!(
                    e.contains(flag) && e.contains(bad),
                    "{verb} {flag} {bad}: {e}"
                );
                assert!(
                    Cli::try_parse_from(["axon", verb, flag, good]).is_ok(),
                    "{verb} {flag} {good}"
                );
            }
        }
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

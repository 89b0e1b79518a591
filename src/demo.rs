//! `axon demo`: an embedded cluster for newcomers. N agents run inside this process, node i
//! on 127.0.1.i with the default ports, each reading an emulated host profile (a fixture
//! tree unpacked into a working directory, with its own hostname, serials and addresses).
//! Everything else is real: sockets, gRPC, probes between the agents, /metrics.

use crate::agent::member::{self, Hosted, HostedStore, MemberOptions};
use crate::agent::{self, Agent, AgentConfig};
use crate::collectors::net::NetConfig;
use crate::collectors::probes::ProbeOptions;
use crate::model::plan::PlanParams;
use crate::model::ports::{self, CONTROL_PORT, METRICS_PORT};
use anyhow::{Context, Result, bail};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

static PROFILES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/profiles.bin"));

/// Names of the embedded profiles.
pub fn profile_names() -> Vec<String> {
    let mut names: Vec<String> = records()
        .filter(|r| r.0 == 2 && !r.1.contains('/'))
        .map(|r| r.1.to_string())
        .collect();
    names.sort();
    names
}

fn records() -> impl Iterator<Item = (u8, &'static str, &'static [u8])> {
    let mut b = PROFILES;
    std::iter::from_fn(move || {
        if b.len() < 7 {
            return None;
        }
        let kind = b[0];
        let plen = u16::from_le_bytes([b[1], b[2]]) as usize;
        let path = std::str::from_utf8(&b[3..3 + plen]).ok()?;
        let off = 3 + plen;
        let dlen = u32::from_le_bytes(b[off..off + 4].try_into().ok()?) as usize;
        let data = &b[off + 4..off + 4 + dlen];
        b = &b[off + 4 + dlen..];
        Some((kind, path, data))
    })
}

/// Unpacks one embedded profile into `dest` (which must not exist yet).
pub fn unpack(profile: &str, dest: &Path) -> Result<()> {
    let prefix = format!("{profile}/");
    let mut found = false;
    for (kind, path, data) in records() {
        let rel = if path == profile {
            ""
        } else if let Some(r) = path.strip_prefix(&prefix) {
            r
        } else {
            continue;
        };
        found = true;
        let target = dest.join(rel);
        match kind {
            2 => std::fs::create_dir_all(&target)?,
            1 => std::os::unix::fs::symlink(std::str::from_utf8(data)?, &target)?,
            _ => std::fs::write(&target, data)?,
        }
    }
    if !found {
        bail!(
            "no embedded host profile `{profile}` (have: {})",
            profile_names().join(", ")
        );
    }
    Ok(())
}

/// Which profile node i (1-based) emulates: mostly the healthy AMD host, every fifth an
/// Intel host with SMT on, and node 7 the misconfigured one, so the console has something
/// to show.
pub fn profile_for(i: u16) -> &'static str {
    if i == 7 {
        "misconfigured"
    } else if i % 5 == 0 {
        "intel-2s-smt"
    } else {
        "amd-epyc-4numa"
    }
}

pub fn node_name(i: u16) -> String {
    format!("axon{i:03}")
}

/// The most nodes a demo runs: 127.0.1.1 to 127.0.1.254.
pub const MAX_NODES: u16 = 254;

/// Node i's loopback address, 127.0.1.i; `i` is in 1..=MAX_NODES (checked by `start`).
pub fn node_ip(i: u16) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, u8::try_from(i).unwrap_or(u8::MAX)))
}

/// Gives an unpacked profile this node's identity: hostname, drive serials and the last
/// octet of its fixture addresses.
fn personalise(root: &Path, i: u16) -> Result<()> {
    let name = node_name(i);
    for f in ["proc/sys/kernel/hostname", "etc/hostname"] {
        std::fs::write(root.join(f), format!("{name}\n"))?;
    }
    let nvme = root.join("sys/class/nvme");
    if let Ok(rd) = std::fs::read_dir(&nvme) {
        for e in rd.flatten() {
            let p = e.path().join("serial");
            if let Ok(s) = std::fs::read_to_string(&p) {
                let width = s.trim_end_matches('\n').len();
                let base = s.trim();
                let cut = base.len().saturating_sub(3);
                let serial = format!("{}{i:03}", &base[..cut]);
                std::fs::write(&p, format!("{serial:<width$}\n"))?;
            }
        }
    }
    // Addresses: the fixture uses x.y.z.11/.21/.31 in /24s; node i gets x.y.z.i, a valid
    // host address for every i in 1..=254. The fixtures route via x.y.z.1; node 1, which
    // now owns that address, routes via x.y.z.254 instead (another node, never itself).
    let fx = root.join("_fixture");
    let addr_json = std::fs::read_to_string(fx.join("ip-addr.json")).unwrap_or_default();
    let mut own: Vec<String> = Vec::new();
    for part in addr_json.split("\"local\":\"").skip(1) {
        if let Some(a) = part.split('"').next() {
            if a.starts_with("10.") && !own.contains(&a.to_string()) {
                own.push(a.to_string());
            }
        }
    }
    for f in ["ip-addr.json", "ip-rule.json", "ip-route.json"] {
        let p = fx.join(f);
        let Ok(mut text) = std::fs::read_to_string(&p) else {
            continue;
        };
        for a in &own {
            if let Some((net, _)) = a.rsplit_once('.') {
                if i == 1 {
                    text = text.replace(
                        &format!("\"gateway\":\"{net}.1\""),
                        &format!("\"gateway\":\"{net}.254\""),
                    );
                }
                text = text.replace(&format!("\"{a}\""), &format!("\"{net}.{i}\""));
            }
        }
        std::fs::write(&p, text)?;
    }
    Ok(())
}

/// One emulated node: its agent (None while failed by fault injection), what it hosts,
/// and how to start it again.
pub struct DemoNode {
    pub name: String,
    pub ip: IpAddr,
    pub profile: &'static str,
    /// The ports it listens on (gRPC, metrics), kept across a fail and heal.
    pub grpc_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    cfg: AgentConfig,
    state_dir: PathBuf,
    member: Option<MemberOptions>,
    store: Option<HostedStore>,
    agent: Option<Agent>,
    hosted: Option<Hosted>,
}

impl DemoNode {
    pub fn up(&self) -> bool {
        self.agent.is_some()
    }

    /// Starts the agent and what it hosts; retries a few seconds while the ports and
    /// databases of its previous run are released (after a heal).
    async fn start(&mut self) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let ag = loop {
            match agent::start(self.cfg.clone()).await {
                Ok(a) => break a,
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!("{}: {e}; trying again", self.name);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("starting demo node {}", self.name));
                }
            }
        };
        let hosted = loop {
            match member::host(
                &ag,
                &self.state_dir,
                self.store.clone(),
                SCRUB,
                self.member,
                member::ContainerMode::Auto,
            )
            .await
            {
                Ok(h) => break h,
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!("{}: {e:#}; trying again", self.name);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    ag.shutdown();
                    return Err(e).with_context(|| format!("hosting demo node {}", self.name));
                }
            }
        };
        // Where it listens now is where it must listen after a heal (the inventory and the
        // cluster's membership name these ports).
        self.grpc_addr = ag.grpc_addr;
        self.metrics_addr = ag.metrics_addr;
        self.cfg.listen = ag.grpc_addr.or(self.cfg.listen);
        self.cfg.echo_listen = ag.echo_addr.or(self.cfg.echo_listen);
        self.cfg.metrics_listen = ag.metrics_addr.or(self.cfg.metrics_listen);
        if let (Some(m), Some(h)) = (self.member.as_mut(), &hosted.cluster) {
            m.cluster_listen.set_port(h.port());
            if let Some(d) = m.data_listen.as_mut() {
                d.set_port(h.data_port());
            }
        }
        self.store = hosted.store.clone();
        self.agent = Some(ag);
        self.hosted = Some(hosted);
        Ok(())
    }

    /// Stops everything the node runs, as a server losing power would (its files stay).
    async fn stop(&mut self) {
        if let Some(mut h) = self.hosted.take() {
            h.shutdown().await;
        }
        if let Some(a) = self.agent.take() {
            a.shutdown();
        }
    }
}

/// The demo's scrubber: quick enough that a newcomer sees injected damage found.
const SCRUB: member::ScrubOptions = member::ScrubOptions {
    rate: Some(20 << 20),
    every: Duration::from_secs(20),
};

pub struct DemoCluster {
    pub dir: PathBuf,
    pub nodes: Arc<tokio::sync::Mutex<Vec<DemoNode>>>,
    /// Names and first addresses, for printing without the lock.
    pub listing: Vec<(String, &'static str, Option<SocketAddr>, Option<SocketAddr>)>,
    pub token_file: PathBuf,
    pub inventory: PathBuf,
    /// Whether the nodes host a data-plane member and store.
    pub dataplane: Option<DataplaneOptions>,
    _tmp: Option<TempDir>,
}

impl DemoCluster {
    /// Stops every node.
    pub async fn shutdown(&self) {
        for n in self.nodes.lock().await.iter_mut() {
            n.stop().await;
        }
    }

    /// Fault injection, labelled as emulation: `fail node NAME`, `heal node NAME`,
    /// `fail drive NODE DRIVE`, `corrupt drive NODE DRIVE`. Returns what was done.
    pub async fn inject(&self, line: &str) -> Result<String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let mut nodes = self.nodes.lock().await;
        let find = |name: &str| -> Result<usize> {
            nodes
                .iter()
                .position(|n| n.name == name || n.ip.to_string() == name)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no demo node {name:?} (they are {}-{})",
                        node_name(1),
                        node_name(self.listing.len() as u16)
                    )
                })
        };
        match w.as_slice() {
            ["fail", "node", name] => {
                let i = find(name)?;
                let n = &mut nodes[i];
                if !n.up() {
                    bail!(
                        "{} is already failed — `heal node {}` brings it back",
                        n.name,
                        n.name
                    );
                }
                n.stop().await;
                Ok(format!(
                    "{} failed (emulated power loss: agent, Raft member and data port stopped; its drives keep their bytes)",
                    n.name
                ))
            }
            ["heal", "node", name] => {
                let i = find(name)?;
                let n = &mut nodes[i];
                if n.up() {
                    bail!("{} is up — nothing to heal", n.name);
                }
                n.start().await?;
                Ok(format!(
                    "{} healed (emulated power-on: agent restarted on its drives and Raft log)",
                    n.name
                ))
            }
            ["fail", "drive", name, drive] => {
                let i = find(name)?;
                let n = &nodes[i];
                let st = n.store.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("{}: the demo runs without a data plane", n.name)
                })?;
                let path = st
                    .store
                    .lock()
                    .map_err(|_| anyhow::anyhow!("{}: the store's lock is poisoned", n.name))?
                    .fail_drive(
                        drive,
                        "failed by `axon demo fail drive` (emulated drive death)",
                    )?;
                Ok(format!(
                    "{}: drive {} FAILED (emulated); its chunks are rewritten from parity onto the node's other drives",
                    n.name,
                    path.display()
                ))
            }
            ["corrupt", "drive", name, drive] => {
                let i = find(name)?;
                let n = &nodes[i];
                let st = n.store.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("{}: the demo runs without a data plane", n.name)
                })?;
                let (path, offsets) = st
                    .store
                    .lock()
                    .map_err(|_| anyhow::anyhow!("{}: the store's lock is poisoned", n.name))?
                    .chunk_payloads(drive)?;
                let hit = corrupt(&path, &offsets)?;
                Ok(format!(
                    "{}: flipped bytes on disk in {hit} of the {} chunks on {} (emulated bit rot); the scrubber or the next read finds them by checksum, and they are rewritten from parity",
                    n.name,
                    offsets.len(),
                    path.display()
                ))
            }
            _ => bail!(
                "unknown fault {line:?}: fail node NAME, heal node NAME, fail drive NODE DRIVE, corrupt drive NODE DRIVE"
            ),
        }
    }

    /// Serves `inject` on the unix socket `<dir>/demo.sock`, one request line and one
    /// answer line ("ok …" or "error …") per connection, until the demo ends.
    pub fn serve_faults(self: &Arc<Self>) -> Result<tokio::task::JoinHandle<()>> {
        let path = fault_socket(&self.dir);
        let _ = std::fs::remove_file(&path);
        let l = tokio::net::UnixListener::bind(&path)
            .with_context(|| format!("listening on {}", path.display()))?;
        let me = self.clone();
        Ok(tokio::spawn(async move {
            use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
            while let Ok((sock, _)) = l.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut line = String::new();
                    // A request is one short line; a longer one is not read on.
                    let mut r = tokio::io::AsyncReadExt::take(tokio::io::BufReader::new(r), 1024);
                    let read = tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line));
                    let answer = match read.await {
                        Ok(Ok(_)) => match me.inject(line.trim()).await {
                            Ok(t) => format!("ok {t}\n"),
                            Err(e) => format!("error {e:#}\n"),
                        },
                        _ => "error no request line in 5 s\n".to_string(),
                    };
                    let _ = w.write_all(answer.as_bytes()).await;
                });
            }
        }))
    }
}

/// Where a demo in `dir` takes fault injection.
pub fn fault_socket(dir: &Path) -> PathBuf {
    dir.join("demo.sock")
}

/// Sends one fault line to the demo running in `dir`; its answer, or why there is none.
pub async fn send_fault(dir: &Path, line: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = fault_socket(dir);
    let mut s = tokio::net::UnixStream::connect(&path).await.with_context(|| {
        format!(
            "no demo is running with --dir {} ({} does not answer) — start one with `axon demo --dir {}`",
            dir.display(),
            path.display(),
            dir.display()
        )
    })?;
    s.write_all(format!("{line}\n").as_bytes()).await?;
    let mut out = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        (&mut s).take(64 << 10).read_to_string(&mut out),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the demo did not answer in 60 s"))??;
    match out.trim_end().split_once(' ') {
        Some(("ok", t)) => Ok(t.to_string()),
        Some(("error", t)) => bail!("{t}"),
        _ => bail!("the demo answered {out:?}"),
    }
}

/// Flips the first 16 bytes of every other chunk payload at `offsets` in the drive file
/// (at least one), through the page cache, synced. Returns how many chunks were hit.
fn corrupt(path: &Path, offsets: &[u64]) -> Result<usize> {
    use std::os::unix::fs::FileExt;
    if offsets.is_empty() {
        bail!(
            "{}: holds no chunks yet — nothing to corrupt",
            path.display()
        );
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut hit = 0;
    for off in offsets.iter().step_by(2) {
        let mut b = [0u8; 16];
        f.read_exact_at(&mut b, *off)
            .with_context(|| format!("reading {} at {off}", path.display()))?;
        for x in &mut b {
            *x ^= 0xA5;
        }
        f.write_all_at(&b, *off)
            .with_context(|| format!("writing {} at {off}", path.display()))?;
        hit += 1;
    }
    f.sync_all()?;
    Ok(hit)
}

/// A directory removed on drop (the demo's default working directory).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Each node's share of the data plane: a 1+0 store on file-backed drives under
/// `<dir>/<node>/store`, a Raft member and a data port.
#[derive(Debug, Clone, Copy)]
pub struct DataplaneOptions {
    pub drives: u16,
    /// Bytes per drive file (sparse).
    pub drive_size: u64,
    pub chunk_size: u32,
    /// How long a failed node is read around before its chunks are rebuilt elsewhere.
    pub rebuild_grace: Duration,
    /// Bytes per second each node writes while rebuilding; None for no limit.
    pub rebuild_rate: Option<u64>,
}

impl Default for DataplaneOptions {
    fn default() -> Self {
        DataplaneOptions {
            drives: 2,
            drive_size: 256 << 20,
            chunk_size: 64 << 10,
            rebuild_grace: Duration::from_secs(20),
            rebuild_rate: Some(1 << 20),
        }
    }
}

pub struct DemoOptions {
    pub nodes: u16,
    pub dir: Option<PathBuf>,
    pub interval: Duration,
    /// Base of the ports: control on `port_base`, metrics on `port_base + 90`.
    pub control_port: u16,
    pub metrics_port: u16,
    /// Agents without TLS.
    pub insecure: bool,
    /// A data plane on every node (needs TLS).
    pub dataplane: Option<DataplaneOptions>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            nodes: 22,
            dir: None,
            interval: Duration::from_secs(1),
            control_port: CONTROL_PORT,
            metrics_port: METRICS_PORT,
            insecure: false,
            dataplane: None,
        }
    }
}

/// The cluster (Raft) and data ports of a demo node: 10 and 20 above its control port,
/// inside the seed's 14000-14100 with the default 14000 (0: the kernel's choice).
pub fn dataplane_ports(control_port: u16) -> (u16, u16) {
    match (control_port.checked_add(10), control_port.checked_add(20)) {
        (Some(c), Some(d)) if control_port != 0 => (c, d),
        // 0 (or a port too high to add to): the kernel's choice.
        _ => (0, 0),
    }
}

/// Makes node `name`'s store (once): 1+0, `o.drives` drive files.
fn make_store(dir: &Path, o: &DataplaneOptions) -> Result<()> {
    use crate::dataplane::{drive, ec::Scheme, store::Store};
    if dir.join(crate::dataplane::store::DB_FILE).exists() {
        return Ok(());
    }
    let cluster = uuid::Uuid::new_v4();
    let mut s = Store::create(dir, cluster, Scheme::PLAIN, o.chunk_size)?;
    let ddir = dir.join("drives");
    std::fs::create_dir_all(&ddir).with_context(|| format!("creating {}", ddir.display()))?;
    for i in 0..o.drives {
        let p = ddir.join(format!("drive{i:02}"));
        drive::format(
            &p,
            &drive::FormatOptions {
                size: Some(o.drive_size),
                chunk_size: o.chunk_size,
                cluster,
                force: false,
            },
        )?;
        s.add_drive(&p, false)?;
    }
    Ok(())
}

pub async fn start(opts: DemoOptions) -> Result<DemoCluster> {
    if !(1..=MAX_NODES).contains(&opts.nodes) {
        bail!(
            "--nodes {}: the demo runs 1 to {MAX_NODES} nodes, one per address 127.0.1.1-127.0.1.{MAX_NODES}",
            opts.nodes
        );
    }
    if opts.dataplane.is_some() && opts.insecure {
        bail!(
            "the demo's data plane needs TLS (cluster members authenticate each other by their certificates): drop --insecure, or run without a data plane"
        );
    }
    let (dir, tmp) = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let d = std::env::temp_dir().join(format!("axon-demo-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            (d.clone(), Some(TempDir(d)))
        }
    };
    let state_dir = dir.join("state");
    let peers: Vec<String> = (1..=opts.nodes).map(|i| node_ip(i).to_string()).collect();
    let (cluster_port, data_port) = dataplane_ports(opts.control_port);
    let mut nodes = Vec::new();
    for i in 1..=opts.nodes {
        if i == 1 || i % 5 == 0 || i == opts.nodes {
            eprint!(
                "\r  unpacking emulated hosts and starting agents: {i}/{}   ",
                opts.nodes
            );
        }
        let name = node_name(i);
        let root = dir.join(format!("{name}/root"));
        if !root.join("_fixture/profile.toml").exists() {
            let _ = std::fs::remove_dir_all(&root);
            unpack(profile_for(i), &root)?;
            personalise(&root, i)?;
        }
        let ip = node_ip(i);
        let store = match &opts.dataplane {
            Some(o) => {
                let sdir = dir.join(format!("{name}/store"));
                let so = *o;
                let d = sdir.clone();
                tokio::task::spawn_blocking(move || make_store(&d, &so))
                    .await?
                    .with_context(|| format!("making {name}'s store in {}", sdir.display()))?;
                Some(
                    HostedStore::open(&sdir)
                        .await
                        .with_context(|| format!("opening {name}'s store"))?,
                )
            }
            None => None,
        };
        let member = opts.dataplane.map(|o| MemberOptions {
            cluster_listen: SocketAddr::new(ip, cluster_port),
            data_listen: Some(SocketAddr::new(ip, data_port)),
            rebuild: agent::data::RebuildConfig {
                grace: o.rebuild_grace,
                rate: o.rebuild_rate,
                orphan_grace: Duration::from_secs(120),
            },
        });
        let cfg = AgentConfig {
            host_root: root,
            listen: Some(SocketAddr::new(ip, opts.control_port)),
            echo_listen: Some(SocketAddr::new(ip, opts.control_port)),
            metrics_listen: Some(SocketAddr::new(ip, opts.metrics_port)),
            unix_socket: Some(dir.join(format!("{name}/control.sock"))),
            state_dir: state_dir.clone(),
            token_file: None,
            node_name: Some(name.clone()),
            base_interval: opts.interval,
            tls: if opts.insecure {
                agent::tls::ServerTls::Off
            } else {
                agent::tls::ServerTls::SelfSigned {
                    dir: dir.join(format!("{name}/tls")),
                }
            },
            metrics_tls: false,
            limits: agent::listen::Limits::default(),
            collect: agent::scheduler::CollectConfig {
                net: NetConfig::default(),
                plan: PlanParams::default(),
                peers: peers.clone(),
                probe_ports: ports::continuous_ports(),
                probe: ProbeOptions {
                    timeout: Duration::from_millis(500),
                    concurrency: 32,
                    source: Some(ip),
                },
                own_addresses: vec![ip.to_string()],
                smart: true,
                // The console shares this terminal.
                log_problems: false,
                on_demand: None,
                slurm: None,
                peers_per_round: crate::collectors::probes::DEFAULT_PEERS_PER_ROUND,
            },
        };
        let mut node = DemoNode {
            state_dir: dir.join(format!("{name}/state")),
            name,
            ip,
            profile: profile_for(i),
            grpc_addr: None,
            metrics_addr: None,
            cfg,
            member,
            store,
            agent: None,
            hosted: None,
        };
        node.start().await?;
        nodes.push(node);
    }
    // Ends the progress line above (a terminal display, not a log).
    eprintln!();
    let token_file = state_dir.join("admin.token");
    let inventory = dir.join("inventory.toml");
    // The ports the agents really listen on: with --port 0 each got its own.
    let listening: Vec<(u16, u16)> = nodes
        .iter()
        .map(|n| {
            (
                n.grpc_addr.map_or(opts.control_port, |x| x.port()),
                n.metrics_addr.map_or(opts.metrics_port, |x| x.port()),
            )
        })
        .collect();
    let fingerprints: Vec<_> = nodes
        .iter()
        .map(|n| {
            n.agent
                .as_ref()
                .and_then(|a| a.tls.as_ref().map(|t| t.fingerprint))
        })
        .collect();
    std::fs::write(
        &inventory,
        inventory_toml(&token_file, &listening, &fingerprints),
    )
    .with_context(|| format!("writing the inventory {}", inventory.display()))?;
    let listing = nodes
        .iter()
        .map(|n| (n.name.clone(), n.profile, n.grpc_addr, n.metrics_addr))
        .collect();
    Ok(DemoCluster {
        dir,
        nodes: Arc::new(tokio::sync::Mutex::new(nodes)),
        listing,
        token_file,
        inventory,
        dataplane: opts.dataplane,
        _tmp: tmp,
    })
}

/// The inventory `axon console --inventory` reads, from the (gRPC, metrics) ports node
/// i + 1 listens on. Ports shared by every node are written once at the top; with
/// `--port 0` every agent has its own, so each node names its own. Each node's TLS
/// certificate fingerprint is pinned (none with --insecure).
pub fn inventory_toml(
    token_file: &Path,
    ports: &[(u16, u16)],
    fingerprints: &[Option<crate::wire::tls::Fingerprint>],
) -> String {
    let nodes = ports.len();
    let common = |f: fn(&(u16, u16)) -> u16| -> Option<u16> {
        let first = ports.first().map(f)?;
        ports.iter().all(|p| f(p) == first).then_some(first)
    };
    let (control, metrics) = (common(|p| p.0), common(|p| p.1));
    let mut s = format!(
        "# Written by `axon demo`: {nodes} emulated nodes on 127.0.1.1-{nodes}.\n\
         token_file = \"{}\"\n",
        token_file.display()
    );
    if let Some(p) = control {
        s.push_str(&format!("port = {p}\n"));
    }
    if let Some(p) = metrics {
        s.push_str(&format!("metrics_port = {p}\n"));
    }
    for (i, (c, m)) in (1..).zip(ports) {
        s.push_str(&format!(
            "\n[[node]]\nname = \"{}\"\naddress = \"{}\"\n",
            node_name(i),
            node_ip(i)
        ));
        if control.is_none() {
            s.push_str(&format!("port = {c}\n"));
        }
        if metrics.is_none() {
            s.push_str(&format!("metrics_port = {m}\n"));
        }
        if let Some(Some(fp)) = fingerprints.get(usize::from(i) - 1) {
            s.push_str(&format!("fingerprint = \"{fp}\"\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::iproute_json::routing_from_ip_json;

    fn routing_of(i: u16) -> crate::model::net::RoutingFacts {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        unpack("amd-epyc-4numa", &root).unwrap();
        personalise(&root, i).unwrap();
        let json = |f: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(root.join("_fixture").join(f)).unwrap())
                .unwrap()
        };
        routing_from_ip_json(
            &json("ip-addr.json"),
            &json("ip-rule.json"),
            &json("ip-route.json"),
        )
        .unwrap_or_else(|e| panic!("node {i}: {e:?}"))
    }

    #[test]
    fn every_demo_node_up_to_254_gets_valid_distinct_addresses() {
        for i in [1, 2, 155, 156, 200, 254] {
            let f = routing_of(i);
            let mine: Vec<&str> = f
                .addresses
                .iter()
                .filter(|(n, _)| n != "lo")
                .filter(|(_, a)| a.family == crate::model::net::AddressFamily::Ipv4)
                .map(|(_, a)| a.cidr.as_str())
                .collect();
            assert_eq!(
                mine,
                vec![
                    format!("10.0.0.{i}/24"),
                    format!("10.10.1.{i}/24"),
                    format!("10.10.2.{i}/24")
                ],
                "node {i}"
            );
            let own: Vec<&str> = mine.iter().map(|c| c.split('/').next().unwrap()).collect();
            for r in &f.routes {
                if let Some(g) = &r.gateway {
                    assert!(
                        !own.contains(&g.as_str()),
                        "node {i} routes via itself: {r:?}"
                    );
                }
            }
            assert!(
                f.rules
                    .iter()
                    .any(|r| r.from.as_deref() == Some(&format!("10.10.1.{i}/32"))),
                "node {i}: its SBR rule follows its address"
            );
        }
    }

    #[tokio::test]
    async fn demo_with_port_0_writes_the_ports_its_agents_listen_on() {
        let dir = tempfile::tempdir().unwrap();
        let c = start(DemoOptions {
            nodes: 2,
            dir: Some(dir.path().to_path_buf()),
            control_port: 0,
            metrics_port: 0,
            ..DemoOptions::default()
        })
        .await
        .unwrap();
        let text = std::fs::read_to_string(&c.inventory).unwrap();
        assert!(!text.contains("port = 0"), "{text}");
        let inv = crate::fleet::Inventory::load(&c.inventory).unwrap();
        for (n, a) in inv.nodes.iter().zip(&c.listing) {
            assert_eq!(Some(n.port), a.2.map(|x| x.port()), "{text}");
            assert_eq!(Some(n.metrics_port), a.3.map(|x| x.port()), "{text}");
        }
        c.shutdown().await;
    }

    #[tokio::test]
    async fn demo_refuses_more_nodes_than_127_0_1_has() {
        for nodes in [0, 255, 300] {
            let e = start(DemoOptions {
                nodes,
                ..DemoOptions::default()
            })
            .await
            .err()
            .expect("refused");
            assert!(e.to_string().contains("1 to 254 nodes"), "{e}");
        }
    }
}

//! `axon demo`: an embedded cluster for newcomers. N agents run inside this process, node i
//! on 127.0.1.i with the default ports, each reading an emulated host profile (a fixture
//! tree unpacked into a working directory, with its own hostname, serials and addresses).
//! Everything else is real: sockets, gRPC, probes between the agents, /metrics.

use crate::agent::{self, Agent, AgentConfig};
use crate::collectors::net::NetConfig;
use crate::collectors::probes::ProbeOptions;
use crate::model::plan::PlanParams;
use crate::model::ports::{self, CONTROL_PORT, METRICS_PORT};
use anyhow::{Context, Result, bail};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
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

pub struct DemoCluster {
    pub dir: PathBuf,
    pub agents: Vec<Agent>,
    pub token_file: PathBuf,
    pub inventory: PathBuf,
    _tmp: Option<TempDir>,
}

/// A directory removed on drop (the demo's default working directory).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
        }
    }
}

pub async fn start(opts: DemoOptions) -> Result<DemoCluster> {
    if !(1..=MAX_NODES).contains(&opts.nodes) {
        bail!(
            "--nodes {}: the demo runs 1 to {MAX_NODES} nodes, one per address 127.0.1.1-127.0.1.{MAX_NODES}",
            opts.nodes
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
    let mut agents = Vec::new();
    for i in 1..=opts.nodes {
        if i == 1 || i % 5 == 0 || i == opts.nodes {
            eprint!(
                "\r  unpacking emulated hosts and starting agents: {i}/{}   ",
                opts.nodes
            );
        }
        let root = dir.join(format!("{}/root", node_name(i)));
        if !root.join("_fixture/profile.toml").exists() {
            let _ = std::fs::remove_dir_all(&root);
            unpack(profile_for(i), &root)?;
            personalise(&root, i)?;
        }
        let ip = node_ip(i);
        let cfg = AgentConfig {
            host_root: root,
            listen: Some(SocketAddr::new(ip, opts.control_port)),
            echo_listen: Some(SocketAddr::new(ip, opts.control_port)),
            metrics_listen: Some(SocketAddr::new(ip, opts.metrics_port)),
            unix_socket: Some(dir.join(format!("{}/control.sock", node_name(i)))),
            state_dir: state_dir.clone(),
            token_file: None,
            node_name: Some(node_name(i)),
            base_interval: opts.interval,
            tls: if opts.insecure {
                agent::tls::ServerTls::Off
            } else {
                agent::tls::ServerTls::SelfSigned {
                    dir: dir.join(format!("{}/tls", node_name(i))),
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
        let a = agent::start(cfg)
            .await
            .with_context(|| format!("starting demo node {} on {ip}", node_name(i)))?;
        agents.push(a);
    }
    // Ends the progress line above (a terminal display, not a log).
    eprintln!();
    let token_file = state_dir.join("admin.token");
    let inventory = dir.join("inventory.toml");
    // The ports the agents really listen on: with --port 0 each got its own.
    let listening: Vec<(u16, u16)> = agents
        .iter()
        .map(|a| {
            (
                a.grpc_addr.map_or(opts.control_port, |x| x.port()),
                a.metrics_addr.map_or(opts.metrics_port, |x| x.port()),
            )
        })
        .collect();
    let fingerprints: Vec<_> = agents
        .iter()
        .map(|a| a.tls.as_ref().map(|t| t.fingerprint))
        .collect();
    std::fs::write(
        &inventory,
        inventory_toml(&token_file, &listening, &fingerprints),
    )
    .with_context(|| format!("writing the inventory {}", inventory.display()))?;
    Ok(DemoCluster {
        dir,
        agents,
        token_file,
        inventory,
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
        for (n, a) in inv.nodes.iter().zip(&c.agents) {
            assert_eq!(Some(n.port), a.grpc_addr.map(|x| x.port()), "{text}");
            assert_eq!(
                Some(n.metrics_port),
                a.metrics_addr.map(|x| x.port()),
                "{text}"
            );
        }
        for a in &c.agents {
            a.shutdown();
        }
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

//! Console CPU and memory while following N agents (default 1,000) at 1 Hz on loopback:
//!
//!     cargo bench --bench console_follow        # AXON_FOLLOW_NODES, AXON_FOLLOW_SECS
//!
//! This process hosts the agents: the real AgentState and NodeService (Watch deltas,
//! behind the policy layer) on 127.0.0.1:31000+i, each seeded with an emulated host's snapshot and changed the way a
//! real host changes (NUMA free memory every second, pinning every two seconds, collector
//! timestamps with every run) and the way bounded probing changes its report: every 5 s a
//! round re-probes the next 32 of its 999 peers (a fresh age for those, every peer within
//! 160 s), as `collectors::probes::ProbeBook` does; each agent starts with every peer
//! probed once. Running 1,000 sets of real collectors on two cores would measure the
//! collectors, not the console. The console is the real binary in a real terminal (tmux,
//! 200×60); its CPU time and RSS are read from /proc.
//!
//! AXON_FOLLOW_STATIC_PROBES=1 leaves the probe reports as they start (the workload of
//! this bench before bounded probing, for comparisons with older code).
//!
//! The agents also host a data plane (issue 11's target: following 1,000 agents with the
//! data-plane section stays ≤ 10 % of a core): one 16+4+2 cluster of all of them, each
//! publishing the `dataplane` section (its share of the stripes, a rebuild on every tenth
//! node, two drives with usage) that changes every 2 s, and serving DataplaneService, from
//! which the console fetches the configuration (1,000 members, 2,000 drives) once. The
//! console shows the Stripes panel while it is measured. AXON_FOLLOW_NO_DATAPLANE=1 runs
//! the workload without it (the Part 3 figures) on the Overview.
//!
//! AXON_FOLLOW_ENV is prepended to the console's command (environment variables), and
//! AXON_FOLLOW_SUFFIX appended (e.g. `2>/tmp/console.err`), for diagnostics.

#[path = "../tests/common/mod.rs"]
mod common;

use axon::agent::audit::AuditLog;
use axon::agent::auth::Tokens;
use axon::agent::policy::PolicyLayer;
use axon::agent::service::NodeSvc;
use axon::agent::state::{AgentState, SectionValue};
use axon::model::snapshot::NodeInfo;
use axon::wire::pb;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BASE_PORT: u16 = 31000;

fn stat_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; rest[0] is field 3.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn tmux(args: &[&str]) -> String {
    let o = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux installed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("console_follow: run with `cargo bench --bench console_follow`");
        return;
    }
    let n: usize = std::env::var("AXON_FOLLOW_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let secs: u64 = std::env::var("AXON_FOLLOW_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("reader.token");
    std::fs::write(&token_path, "bench-reader\n").unwrap();
    let tokens = Arc::new(Tokens::new("bench-admin".into(), "bench-reader".into()));
    let policy = PolicyLayer::new(
        tokens,
        Arc::new(AuditLog::new(dir.path().join("audit.jsonl"))),
    );
    eprintln!("building {n} agents …");
    let profiles = [
        common::cluster::profile_snapshot("amd-epyc-4numa"),
        common::cluster::profile_snapshot("intel-2s-smt"),
        common::cluster::profile_snapshot("misconfigured"),
    ];
    let names: Vec<String> = (1..=n).map(|i| format!("axon{i:04}")).collect();
    let dataplane = std::env::var("AXON_FOLLOW_NO_DATAPLANE").is_err();
    let config = Arc::new(dp_config(&names));
    let schedule = axon::agent::scheduler::Schedule::with_base(Duration::from_secs(1));
    let mut states = Vec::with_capacity(n);
    let mut inv = format!("token_file = \"{}\"\n", token_path.display());
    rt.block_on(async {
        for (i, name) in names.iter().enumerate() {
            let p = &profiles[if i % 10 == 7 {
                2
            } else if i % 5 == 4 {
                1
            } else {
                0
            }];
            let info = NodeInfo {
                hostname: name.clone(),
                agent_version: "bench".into(),
                agent_started_ms: 0,
                emulated_profile: Some("bench".into()),
                collect_interval_ms: 1000,
            };
            let st = Arc::new(AgentState::new(info, schedule.initial_status()));
            st.update(
                SectionValue::Topology(p.topology.clone().unwrap()),
                None,
                100,
            );
            st.update(SectionValue::Pinning(p.pinning.clone().unwrap()), None, 100);
            st.update(SectionValue::Network(p.network.clone().unwrap()), None, 100);
            st.update(SectionValue::Nvme(p.nvme.clone().unwrap()), None, 100);
            st.update(
                SectionValue::Checks(p.host.clone().unwrap(), p.checks.clone().unwrap()),
                None,
                100,
            );
            st.update(
                SectionValue::Probes(common::cluster::summary_report(&names, i, &[])),
                None,
                100,
            );
            if dataplane {
                st.set_dataplane(Some(dp_report(i, 0)), Some(config.clone()));
            }
            let port = BASE_PORT + i as u16;
            let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("bind agent port");
            let svc = NodeSvc {
                state: st.clone(),
                default_interval: Duration::from_secs(1),
                watches: axon::agent::service::WatchLimiter::new(64, st.server.clone()),
            };
            tokio::spawn(
                tonic::transport::Server::builder()
                    .layer(policy.clone())
                    .add_service(pb::node_service_server::NodeServiceServer::new(svc))
                    .add_service(pb::dataplane_service_server::DataplaneServiceServer::new(
                        StaticDataplane(st.clone()),
                    ))
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
            );
            inv.push_str(&format!(
                "\n[[node]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nport = {port}\n"
            ));
            states.push((st, p.clone()));
        }
    });
    let inv_path = dir.path().join("inventory.toml");
    std::fs::write(&inv_path, inv).unwrap();
    // The hosts change: NUMA free memory every second, pinning every two seconds, and a
    // probe round of 32 peers every 5 s (a fifth of the agents each second).
    let rounds = std::env::var("AXON_FOLLOW_STATIC_PROBES").is_err();
    let mutator = {
        let states: Vec<_> = states.iter().map(|(s, p)| (s.clone(), p.clone())).collect();
        let config = config.clone();
        let mut reports: Vec<_> = (0..n)
            .map(|i| common::cluster::summary_report(&names, i, &[]))
            .collect();
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut round = 0u64;
            loop {
                tick.tick().await;
                round += 1;
                let now = axon::clock::now_ms();
                for (i, rep) in reports.iter_mut().enumerate() {
                    if !rounds || (round + i as u64) % 5 != 0 {
                        continue;
                    }
                    rep.round += 1;
                    let peers = rep.summary.len().max(1);
                    let start = (i + rep.round as usize * 32) % peers;
                    for k in 0..32.min(peers) {
                        let s = &mut rep.summary[(start + k) % peers];
                        s.observed_ms = Some(now);
                        s.round = rep.round;
                    }
                    states[i]
                        .0
                        .update(SectionValue::Probes(rep.clone()), None, 40_000);
                }
                for (i, (st, p)) in states.iter().enumerate() {
                    let mut t = p.topology.clone().unwrap();
                    for node in &mut t.numa_nodes {
                        node.memory_free_bytes = node
                            .memory_free_bytes
                            .map(|f| f.wrapping_add(((round * 7919 + i as u64) % 97) << 20));
                    }
                    st.update(SectionValue::Topology(t), None, 800);
                    if dataplane && round % 2 == 0 {
                        st.set_dataplane(Some(dp_report(i, round)), Some(config.clone()));
                    }
                    if round % 2 == 0 {
                        let mut pin = p.pinning.clone().unwrap();
                        if let Some(c) = pin.cpus.get_mut((round as usize + i) % 8) {
                            for r in &mut c.running {
                                r.runnable = (round % 3) as u32;
                            }
                        }
                        st.update(SectionValue::Pinning(pin), None, 3000);
                    }
                }
            }
        })
    };
    let session = format!("axon-follow-{}", std::process::id());
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .output();
    let env = std::env::var("AXON_FOLLOW_ENV").unwrap_or_default();
    let suffix = std::env::var("AXON_FOLLOW_SUFFIX").unwrap_or_default();
    let cmd = format!(
        "{env} {} console --insecure --inventory {} {suffix}",
        env!("CARGO_BIN_EXE_axon"),
        inv_path.display()
    );
    assert!(
        Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "200",
                "-y",
                "60",
                &cmd
            ])
            .status()
            .unwrap()
            .success()
    );
    let pid: u32 = tmux(&["display", "-p", "-t", &session, "#{pane_pid}"])
        .trim()
        .parse()
        .expect("console pid");
    let start = Instant::now();
    let want = format!("{n} nodes ●{n}");
    while !tmux(&["capture-pane", "-p", "-t", &session]).contains(&want) {
        if start.elapsed() > Duration::from_secs(180) {
            panic!(
                "not all {n} nodes up after 180 s:\n{}",
                tmux(&["capture-pane", "-p", "-t", &session])
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let connect = start.elapsed();
    if dataplane {
        let _ = Command::new("tmux")
            .args(["send-keys", "-t", &session, "6"])
            .output();
        let start = Instant::now();
        while !tmux(&["capture-pane", "-p", "-t", &session]).contains("16+4") {
            if start.elapsed() > Duration::from_secs(60) {
                panic!(
                    "the Stripes panel shows no data plane after 60 s:\n{}",
                    tmux(&["capture-pane", "-p", "-t", &session])
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (t0, w0) = (stat_ticks(pid), Instant::now());
    let me0 = stat_ticks(std::process::id());
    std::thread::sleep(Duration::from_secs(secs));
    let (t1, wall) = (stat_ticks(pid), w0.elapsed().as_secs_f64());
    let me1 = stat_ticks(std::process::id());
    let cpu = (t1 - t0) as f64 / hz / wall * 100.0;
    let agents_cpu = (me1 - me0) as f64 / hz / wall * 100.0;
    let rss = common::status_kb(pid, "VmRSS:") as f64 / 1024.0;
    let hwm = common::status_kb(pid, "VmHWM:") as f64 / 1024.0;
    let screen = tmux(&["capture-pane", "-p", "-t", &session]);
    // Quit the console normally (so it can report, e.g. MIMALLOC_SHOW_STATS).
    let _ = Command::new("tmux")
        .args(["send-keys", "-t", &session, "q"])
        .output();
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .output();
    mutator.abort();
    println!("machine: {}", common::machine());
    println!(
        "console following {n} agents at 1 Hz (all up after {:.1} s), measured over {wall:.0} s, {}:",
        connect.as_secs_f64(),
        match (rounds, dataplane) {
            (true, true) =>
                "each agent probing 32 peers every 5 s, its data-plane section changing every 2 s, the Stripes panel on screen",
            (true, false) => "each agent probing 32 peers every 5 s, no data plane",
            (false, _) => "static probe reports",
        }
    );
    let verdict = |ok: bool| if ok { "within target" } else { "OVER TARGET" };
    let target = if dataplane { 10.0 } else { 5.0 };
    println!(
        "  console CPU   {cpu:.1} % of one core (target <= {target} %: {})",
        verdict(cpu <= target)
    );
    // The target is in MB (10^6 bytes); RSS is measured in MiB.
    let (rss_mb, hwm_mb) = (rss * 1.048_576, hwm * 1.048_576);
    println!(
        "  console RSS   {rss:.1} MiB = {rss_mb:.0} MB, peak {hwm:.1} MiB = {hwm_mb:.0} MB (target <= 100 MB: {})",
        verdict(hwm_mb <= 100.0)
    );
    println!("  agents (this process) CPU {agents_cpu:.1} % of one core");
    println!("{}", screen.lines().take(3).collect::<Vec<_>>().join("\n"));
}

/// One 16+4+2 cluster of every agent: 1,000 members, two drives each.
fn dp_config(names: &[String]) -> axon::model::cluster::ClusterConfig {
    use axon::model::cluster::{ClusterConfig, DriveRec, IoStatus, Member};
    let mut c = ClusterConfig {
        cluster: Some("3f2a9c4e-0000-4000-8000-0000000b0000".into()),
        k: 16,
        m: 4,
        hot_spares: 2,
        io: IoStatus::Started,
        epoch: 7,
        ..Default::default()
    };
    for (i, name) in names.iter().enumerate() {
        let id = i as u64 + 1;
        c.members.insert(
            id,
            Member {
                name: name.clone(),
                address: format!("127.0.0.1:{}", 40000 + i),
            },
        );
        for d in 0..2 {
            c.drives.insert(
                format!("drive-{id:05}-{d}"),
                DriveRec {
                    node: id,
                    path: format!("/dev/nvme{d}n1"),
                    state: "ACTIVE".into(),
                },
            );
        }
    }
    c
}

/// Agent `i`'s data-plane report at mutator round `round`: its share grows, every tenth
/// node rebuilds, its drives fill.
fn dp_report(i: usize, round: u64) -> axon::model::dataplane::NodeDataplane {
    use axon::model::dataplane::{DataDrive, DataStatus, NodeDataplane, RebuildProgress};
    let id = i as u64 + 1;
    let rebuilding = i % 10 == 3;
    NodeDataplane {
        cluster: "3f2a9c4e-0000-4000-8000-0000000b0000".into(),
        node_id: id,
        leader: 1,
        epoch: 7,
        k: 16,
        m: 4,
        hot_spares: 2,
        io: "STARTED".into(),
        share: Some(DataStatus {
            node: id,
            stripes_by_lost: vec![
                4_000 + round,
                if rebuilding { 40 - (round % 40) } else { 0 },
                0,
                0,
                0,
                0,
            ],
            objects: 100 + round,
            bytes: (100 + round) << 24,
            protection: if rebuilding { "REBUILDING" } else { "OK" }.into(),
            rebuild: RebuildProgress {
                active: rebuilding,
                stripes_total: if rebuilding { 40 } else { 0 },
                stripes_done: if rebuilding { round % 40 } else { 0 },
                rate: if rebuilding { 50 << 20 } else { 0 },
                ..Default::default()
            },
            chunks_held: 80_000 + round * 20,
            ..Default::default()
        }),
        drives: (0..2)
            .map(|d| DataDrive {
                id: format!("drive-{id:05}-{d}"),
                path: format!("/dev/nvme{d}n1"),
                state: "ACTIVE".into(),
                capacity_bytes: 7_680_000_000_000,
                used_bytes: (1 << 40) + (round << 26),
                chunks: 40_000 + round * 10,
                problem: None,
            })
            .collect(),
        ..Default::default()
    }
}

/// DataplaneService over a bench agent's state (the agent's own assembles a report from
/// its store and member; here the mutator publishes it).
struct StaticDataplane(Arc<AgentState>);

#[tonic::async_trait]
impl pb::dataplane_service_server::DataplaneService for StaticDataplane {
    async fn get_dataplane(
        &self,
        r: tonic::Request<pb::GetDataplaneRequest>,
    ) -> Result<tonic::Response<pb::DataplaneReply>, tonic::Status> {
        let (report, config) = self.0.dataplane();
        Ok(tonic::Response::new(pb::DataplaneReply {
            node: Some(axon::wire::encode_node_dataplane(report.as_ref())),
            config: config
                .filter(|_| r.get_ref().config)
                .map(|c| axon::wire::encode_config(&c)),
        }))
    }
}

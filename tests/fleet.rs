//! The console's fleet against real agent processes that die (SIGKILL), hang (SIGSTOP),
//! come back, and against servers that answer garbage or malformed snapshots. Each must be
//! shown DOWN / STALE / back UP within three collection intervals, with the reason. And
//! what the console holds of each node: decoded and merged snapshots without spare room.

mod common;

use axon::fleet::view::{FailureKind, NodeStatus};
use axon::fleet::{Fleet, FollowOptions, Inventory, NodeSpec};
use axon::wire::pb;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(1);

struct Agent {
    child: Child,
    port: u16,
}

impl Drop for Agent {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_agent(port: u16, state: &Path, sock: &Path) -> Agent {
    let child = Command::new(env!("CARGO_BIN_EXE_axon"))
        // Plain text: the fake servers below (junk, liar) speak no TLS, and what this file
        // tests is how the console judges nodes; tests/tls.rs covers TLS.
        .args(["agent", "--insecure", "--host-root"])
        .arg(common::fixture("amd-epyc-4numa"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "127.0.0.1:0",
            "--interval",
            "1s",
            "--state-dir",
        ])
        .arg(state)
        .arg("--control-socket")
        .arg(sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent starts");
    Agent { child, port }
}

fn spec(name: &str, port: u16, token: &Path) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        address: "127.0.0.1".into(),
        port,
        metrics_port: 0,
        token_file: Some(token.to_path_buf()),
        fingerprint: None,
        ca_file: None,
    }
}

fn inventory(nodes: Vec<NodeSpec>) -> Inventory {
    Inventory {
        nodes,
        trust: std::sync::Arc::new(
            axon::fleet::tls::Trust::new(&axon::fleet::tls::TrustOptions {
                insecure: true,
                ..Default::default()
            })
            .unwrap(),
        ),
        path: None,
    }
}

/// Follows the fleet until `cond` holds for node `i`, or panics after `within`.
async fn wait(
    fleet: &mut Fleet,
    i: usize,
    within: Duration,
    what: &str,
    cond: impl Fn(NodeStatus, &axon::fleet::NodeView) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let now = axon::agent::state::now_ms();
        fleet.view.observe(now);
        let n = &fleet.view.nodes[i];
        if cond(n.status(now, &fleet.view.thresholds), n) {
            return start.elapsed();
        }
        if start.elapsed() > within {
            panic!(
                "{}: not {what} after {:?}: status {:?}, failure {:?}",
                n.name,
                within,
                n.status(now, &fleet.view.thresholds),
                n.failure
            );
        }
        tokio::select! {
            _ = fleet.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// A server that accepts and answers every connection with junk.
fn garbage_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            use std::io::Write;
            let mut s = s;
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nthis is not gRPC\n");
            // Keep the connection open, as a confused service would.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(30));
                drop(s);
            });
        }
    });
    port
}

/// A gRPC server whose snapshots carry a CPU list that does not parse.
struct Liar;

#[tonic::async_trait]
impl pb::node_service_server::NodeService for Liar {
    async fn get_snapshot(
        &self,
        _: tonic::Request<pb::GetSnapshotRequest>,
    ) -> Result<tonic::Response<pb::NodeSnapshot>, tonic::Status> {
        Ok(tonic::Response::new(bad_snapshot()))
    }
    type WatchStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::NodeSnapshot, tonic::Status>> + Send>,
    >;
    async fn watch(
        &self,
        _: tonic::Request<pb::WatchRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(vec![
            Ok(bad_snapshot()),
        ]))))
    }
}

fn bad_snapshot() -> pb::NodeSnapshot {
    pb::NodeSnapshot {
        node: Some(pb::NodeInfo {
            hostname: "liar".into(),
            ..Default::default()
        }),
        full: true,
        topology: Some(pb::Topology {
            cpus: vec![pb::Cpu {
                id: 0,
                siblings: "0-".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn liar_server() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::node_service_server::NodeServiceServer::new(Liar))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    );
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_die_hang_come_back_or_lie_are_shown_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let state: PathBuf = dir.path().join("state");
    let mut a = spawn_agent(free_port(), &state, &dir.path().join("a.sock"));
    // Let the first agent create the tokens before the others read them.
    let token = state.join("reader.token");
    let t0 = Instant::now();
    while !token.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = spawn_agent(free_port(), &state, &dir.path().join("b.sock"));
    let c = spawn_agent(free_port(), &state, &dir.path().join("c.sock"));
    let junk = garbage_server();
    let liar = liar_server().await;
    let inv = inventory(vec![
        spec("dies", a.port, &token),
        spec("hangs", b.port, &token),
        spec("steady", c.port, &token),
        spec("junk", junk, &token),
        spec("liar", liar, &token),
    ]);
    let mut fleet = Fleet::start(&inv, FollowOptions::for_interval(INTERVAL)).unwrap();
    for i in 0..3 {
        wait(&mut fleet, i, Duration::from_secs(20), "up", |s, _| {
            s == NodeStatus::Up
        })
        .await;
    }
    let junk_failure = |_: NodeStatus, n: &axon::fleet::NodeView| {
        n.failure.as_ref().is_some_and(|f| {
            f.kind == FailureKind::Protocol
                && f.message
                    .contains("not with gRPC (it sent `HTTP/1.0 200 OK")
        })
    };
    wait(
        &mut fleet,
        3,
        Duration::from_secs(5),
        "down with a protocol error",
        |s, n| s == NodeStatus::Down && junk_failure(s, n),
    )
    .await;
    wait(
        &mut fleet,
        4,
        Duration::from_secs(5),
        "down with a malformed-data error",
        |s, n| {
            s == NodeStatus::Down
                && n.failure.as_ref().is_some_and(|f| {
                    f.kind == FailureKind::Protocol && f.message.contains("malformed Cpu.siblings")
                })
        },
    )
    .await;

    // Dies: refused on reconnect, DOWN within three intervals.
    let _ = a.child.kill();
    let _ = a.child.wait();
    let took = wait(&mut fleet, 0, INTERVAL * 3, "down after SIGKILL", |s, _| {
        s == NodeStatus::Down
    })
    .await;
    eprintln!("killed agent DOWN after {took:?}");

    // Hangs: the stream goes silent; STALE (never healthy) three intervals after its last
    // message, which came before the SIGSTOP. The extra second absorbs a message that
    // sat in the socket buffer while a loaded CI machine ran other tests.
    unsafe { libc::kill(b.child.id() as i32, libc::SIGSTOP) };
    let took = wait(
        &mut fleet,
        1,
        INTERVAL * 3 + Duration::from_secs(1),
        "stale after SIGSTOP",
        |s, _| s == NodeStatus::Stale,
    )
    .await;
    // Reconnects to a hung agent get the TCP handshake but no answer: still STALE, with a
    // reason that says so, not DOWN.
    wait(
        &mut fleet,
        1,
        INTERVAL * 6,
        "stale with a hung-agent reason",
        |s, n| {
            s == NodeStatus::Stale
                && n.failure.as_ref().is_some_and(|f| {
                    f.kind == FailureKind::Timeout && f.message.contains("agent hung")
                })
        },
    )
    .await;
    eprintln!("stopped agent STALE after {took:?}");

    // Comes back: a new agent on the same port is UP within three intervals.
    let a2 = spawn_agent(a.port, &state, &dir.path().join("a2.sock"));
    let took = wait(
        &mut fleet,
        0,
        INTERVAL * 3,
        "back up after restart",
        |s, _| s == NodeStatus::Up,
    )
    .await;
    eprintln!("restarted agent UP after {took:?}");
    unsafe { libc::kill(b.child.id() as i32, libc::SIGCONT) };
    let took = wait(
        &mut fleet,
        1,
        INTERVAL * 3,
        "back up after SIGCONT",
        |s, _| s == NodeStatus::Up,
    )
    .await;
    eprintln!("continued agent UP after {took:?}");
    // The steady one never left.
    let now = axon::agent::state::now_ms();
    assert_eq!(
        fleet.view.nodes[2].status(now, &fleet.view.thresholds),
        NodeStatus::Up
    );
    // Every transition was recorded as an event.
    let texts: Vec<&str> = fleet.view.events.iter().map(|e| e.text.as_str()).collect();
    assert!(
        texts.iter().any(|t| t.starts_with("dies is down")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("hangs is stale")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("dies is up")),
        "{texts:?}"
    );
    drop((a2, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_an_auth_failure_not_a_mystery() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let a = spawn_agent(free_port(), &state, &dir.path().join("a.sock"));
    let bad = dir.path().join("bad.token");
    std::fs::write(&bad, "not-the-token\n").unwrap();
    let inv = inventory(vec![spec("a", a.port, &bad)]);
    let mut fleet = Fleet::start(&inv, FollowOptions::for_interval(INTERVAL)).unwrap();
    wait(
        &mut fleet,
        0,
        Duration::from_secs(15),
        "down with an auth failure",
        |s, n| {
            s == NodeStatus::Down
                && n.failure.as_ref().is_some_and(|f| {
                    f.kind == FailureKind::Auth && f.message.contains("invalid token")
                })
        },
    )
    .await;
    let missing = inventory(vec![spec("a", a.port, &dir.path().join("nope.token"))]);
    let e = Fleet::start(&missing, FollowOptions::for_interval(INTERVAL))
        .err()
        .expect("missing token file is an error")
        .to_string();
    assert!(
        e.contains("nope.token") && e.contains("--token-file"),
        "{e}"
    );
}

/// Fails if a list of a snapshot the console holds has room it does not use.
fn assert_no_spare_capacity(s: &axon::model::NodeSnapshot, when: &str) {
    let mut spare = Vec::new();
    let mut check = |what: String, len: usize, cap: usize| {
        if cap != len {
            spare.push(format!("{what}: {len} of {cap}"));
        }
    };
    macro_rules! v {
        ($what:expr, $v:expr) => {
            check($what.to_string(), $v.len(), $v.capacity())
        };
    }
    v!("collectors", s.collectors);
    // CPU sets are held inline or in boxed slices: exact by their type.
    if let Some(t) = &s.topology {
        v!("topology.cpus", t.cpus);
        v!("topology.packages", t.packages);
        v!("topology.numa_nodes", t.numa_nodes);
        for n in &t.numa_nodes {
            v!(format!("numa{}.hugepages", n.id), n.hugepages);
        }
    }
    if let Some(p) = &s.pinning {
        // Each CPU's process lists are boxed slices: exact by their type.
        v!("pinning.cpus", p.cpus);
    }
    if let Some(n) = &s.network {
        v!("network.nics", n.nics);
        v!("network.rules", n.rules);
        v!("network.routes", n.routes);
        v!("network.unreadable_nics", n.unreadable_nics);
        for nic in &n.nics {
            v!(format!("{}.addresses", nic.name), nic.addresses);
            v!(format!("{}.sbr", nic.name), nic.sbr);
        }
    }
    if let Some(d) = &s.nvme {
        v!("nvme", d);
        for c in d {
            v!(format!("{}.namespaces", c.name), c.namespaces);
            if let Some(smart) = &c.smart {
                v!(
                    format!("{}.sensors", c.name),
                    smart.temperature_sensors_kelvin
                );
            }
        }
    }
    if let Some(h) = &s.host {
        v!("host.iommu_cmdline", h.iommu_cmdline);
    }
    if let Some(c) = &s.checks {
        v!("checks", c);
    }
    if let Some(p) = &s.probes {
        v!("probes.peers", p.peers);
        v!("probes.results", p.results);
        v!("probes.summary", p.summary);
    }
    assert!(spare.is_empty(), "{when}: spare capacity in {spare:?}");
}

/// A console holds 1,000 snapshots for as long as it runs: whatever decoding and merging
/// grew a list by while building it must not stay with it. (Collecting a decoded list
/// in place keeps the capacity prost grew it with, up to twice what it holds.)
#[test]
fn held_snapshots_carry_no_spare_capacity() {
    use axon::model::{ProbeResult, ProbeState, Proto, Section};
    use axon::wire;
    use prost::Message;
    let decode = |m: pb::NodeSnapshot| {
        wire::decode_snapshot(pb::NodeSnapshot::decode(m.encode_to_vec().as_slice()).unwrap())
            .unwrap()
    };
    let names: Vec<String> = (1..=40).map(|i| format!("axon{i:03}")).collect();
    for profile in ["amd-epyc-4numa", "intel-2s-smt", "misconfigured"] {
        let mut before = common::cluster::profile_snapshot(profile);
        before.probes = Some(common::cluster::summary_report(&names, 0, &[3, 7]));
        let mut held = decode(wire::encode_snapshot(&before, &Section::ALL, true)).snapshot;
        assert_no_spare_capacity(&held, &format!("{profile} decoded"));

        // A Watch delta: some CPUs' threads, a check, a probe round with a new peer.
        let mut after = before.clone();
        let pin = after.pinning.as_mut().unwrap();
        for i in [0, pin.cpus.len() / 2] {
            let c = &mut pin.cpus[i];
            let p = c.running.first().or(c.pinned.first()).cloned();
            c.running = c.running.iter().cloned().chain(p).collect();
            c.kernel_threads += 1;
        }
        after.checks.as_mut().unwrap()[0]
            .observed
            .push_str(", and more");
        let probes = after.probes.as_mut().unwrap();
        let round = probes.round;
        probes.round += 1;
        let mut fresh = probes.summary[0].clone();
        fresh.peer = "outsider".into();
        probes.summary.push(fresh);
        for s in probes.summary.iter_mut().step_by(3) {
            s.round = round + 1;
            s.states[2] = Some(ProbeState::Filtered);
        }
        probes.results.push(ProbeResult {
            peer: "outsider".into(),
            address: "192.0.2.1".into(),
            port: 22,
            proto: Proto::Tcp,
            state: ProbeState::Unreachable,
            rtt_us: None,
            detail: Some("No route to host".into()),
        });
        let mut m = wire::encode_snapshot(&after, &[Section::Checks], false);
        let mut pin = wire::encode_pinning_changes(
            before.pinning.as_ref().unwrap(),
            after.pinning.as_ref().unwrap(),
        )
        .expect("a few CPUs changed");
        // A CPU that came online.
        pin.cpus.push(pb::CpuUse {
            cpu: 4000,
            kernel_threads: 1,
            ..Default::default()
        });
        m.pinning = Some(pin);
        m.probes = Some(wire::encode_probe_changes(
            after.probes.as_ref().unwrap(),
            round,
        ));
        m.memory = Some(wire::encode_memory(
            &after.topology.as_ref().unwrap().usage(),
        ));
        wire::merge_snapshot(&mut held, decode(m));
        assert_no_spare_capacity(&held, &format!("{profile} after a delta"));
        let p = held.probes.as_ref().unwrap();
        assert!(p.peer("outsider").is_some(), "the delta was merged");
        assert_eq!(
            held.pinning.as_ref().unwrap().cpus.last().unwrap().cpu,
            4000
        );

        // A full message replaces what is held.
        wire::merge_snapshot(
            &mut held,
            decode(wire::encode_snapshot(&after, &Section::ALL, true)),
        );
        assert_no_spare_capacity(&held, &format!("{profile} after a full message"));
    }
}

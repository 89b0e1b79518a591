//! A real agent on loopback: gRPC over TCP (with and without a token) and over the unix
//! control socket, Watch deltas, on-demand probes, and /metrics in both text formats, plus
//! a collector that hangs in an emulated syscall while scrapes keep answering.

mod common;

use axon::agent::{self, AgentConfig};
use axon::fleet::client::{self, Target};
use axon::fleet::tls::{Security, Trust};
use axon::model::snapshot::Section;
use axon::wire::{self, pb};
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::Code;

struct Running {
    agent: agent::Agent,
    _dir: tempfile::TempDir,
    admin: String,
    reader: String,
}

async fn start(root: &Path, interval: Duration, peers: Vec<String>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut collect = collect_config();
    collect.peers = peers;
    collect.probe.timeout = Duration::from_millis(300);
    let cfg = AgentConfig {
        host_root: root.to_path_buf(),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        echo_listen: Some("127.0.0.1:0".parse().unwrap()),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        unix_socket: Some(dir.path().join("control.sock")),
        state_dir: dir.path().join("state"),
        token_file: None,
        node_name: None,
        base_interval: interval,
        collect,
        tls: agent::tls::ServerTls::SelfSigned {
            dir: dir.path().join("state/tls"),
        },
        metrics_tls: false,
        limits: agent::listen::Limits::default(),
    };
    let agent = agent::start(cfg).await.expect("agent starts");
    let admin = std::fs::read_to_string(dir.path().join("state/admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let reader = std::fs::read_to_string(dir.path().join("state/reader.token"))
        .unwrap()
        .trim()
        .to_string();
    Running {
        agent,
        _dir: dir,
        admin,
        reader,
    }
}

/// TLS with the agent's fingerprint pinned, as the console does from the inventory.
fn pinned(r: &Running) -> Security {
    let fp = r.agent.tls.as_ref().expect("TLS by default").fingerprint;
    let addr = r.agent.grpc_addr.unwrap().to_string();
    Trust::default()
        .for_agent(&addr, Some((fp, "test".into())), None)
        .unwrap()
}

fn tcp(r: &Running, token: Option<&str>) -> Target {
    Target::Tcp {
        addr: r.agent.grpc_addr.unwrap().to_string(),
        token: token.map(str::to_string),
        security: pinned(r),
    }
}

async fn wait_for(r: &Running, section: Section) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if r.agent.state.with_snapshot(|s, _| {
            s.collector(section)
                .is_some_and(|c| c.last_success_ms.is_some())
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{section:?} never collected");
}

async fn http_get(addr: std::net::SocketAddr, accept: &str) -> (String, String) {
    let text = common::agents::get_metrics(addr, &format!("Accept: {accept}\r\n")).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_needs_a_token_over_tcp_and_serves_snapshots() {
    let r = start(
        &fixture("amd-epyc-4numa"),
        Duration::from_millis(200),
        vec![],
    )
    .await;
    wait_for(&r, Section::Checks).await;

    // No token, wrong token: refused with a message that says what to send.
    let mut anon = client::connect(&tcp(&r, None), Duration::from_secs(2))
        .await
        .unwrap();
    let e = anon
        .node
        .get_snapshot(pb::GetSnapshotRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("Bearer"), "{}", e.message());
    let mut wrong = client::connect(&tcp(&r, Some("not-the-token")), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        wrong
            .node
            .get_snapshot(pb::GetSnapshotRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Reader token: snapshots yes, control no.
    let mut reader = client::connect(&tcp(&r, Some(&r.reader)), Duration::from_secs(2))
        .await
        .unwrap();
    let snap = reader
        .node
        .get_snapshot(pb::GetSnapshotRequest::default())
        .await
        .unwrap()
        .into_inner();
    let d = wire::decode_snapshot(snap).unwrap();
    assert!(d.full);
    let s = d.snapshot;
    assert_eq!(s.node.hostname, "axon-amd01");
    assert_eq!(s.node.emulated_profile.as_deref(), Some("amd-epyc-4numa"));
    assert_eq!(s.topology.as_ref().unwrap().cpus.len(), 96);
    assert_eq!(s.nvme.as_ref().unwrap().len(), 8);
    assert_eq!(s.checks.as_ref().unwrap().len(), 22);
    assert!(s.taken_ms > 0 && s.section_age_ms(Section::Topology).unwrap() < 5_000);
    let e = reader
        .control
        .probe_ports(pb::ProbePortsRequest {
            peers: "127.0.0.1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Only some sections; an unknown one is a clear error.
    let part = reader
        .node
        .get_snapshot(pb::GetSnapshotRequest {
            sections: vec!["nvme".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(part.nvme.is_some() && part.topology.is_none());
    let e = reader
        .node
        .get_snapshot(pb::GetSnapshotRequest {
            sections: vec!["bogus".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("unknown section `bogus`"),
        "{}",
        e.message()
    );

    // Admin token: on-demand probes, with input validation.
    let mut admin = client::connect(&tcp(&r, Some(&r.admin)), Duration::from_secs(2))
        .await
        .unwrap();
    let grpc_port = r.agent.grpc_addr.unwrap().port();
    let rep = admin
        .control
        .probe_ports(pb::ProbePortsRequest {
            peers: "127.0.0.1".into(),
            ports: vec![
                pb::PortSpec {
                    port: u32::from(grpc_port),
                    proto: pb::Proto::Tcp as i32,
                },
                pb::PortSpec {
                    port: 1,
                    proto: pb::Proto::Tcp as i32,
                },
            ],
            timeout_ms: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rep = axon::model::probes::ProbeReport::try_from(rep.report.unwrap()).unwrap();
    let state_of = |p: u16| rep.results.iter().find(|x| x.port == p).unwrap().state;
    assert_eq!(state_of(grpc_port), axon::model::ProbeState::Open);
    assert_eq!(state_of(1), axon::model::ProbeState::Closed);
    for bad in [
        pb::ProbePortsRequest {
            peers: "n[1-".into(),
            ..Default::default()
        },
        pb::ProbePortsRequest {
            peers: "a".into(),
            groups: vec!["nope".into()],
            ..Default::default()
        },
        pb::ProbePortsRequest {
            peers: "a".into(),
            ports: vec![pb::PortSpec {
                port: 70000,
                proto: 1,
            }],
            ..Default::default()
        },
        pb::ProbePortsRequest {
            peers: "a".into(),
            ports: vec![pb::PortSpec { port: 80, proto: 9 }],
            ..Default::default()
        },
        pb::ProbePortsRequest {
            peers: "n[1-5000]".into(),
            groups: vec!["k8s-client".into()],
            ..Default::default()
        },
        pb::ProbePortsRequest::default(),
    ] {
        let e = admin.control.probe_ports(bad.clone()).await.unwrap_err();
        assert!(
            matches!(e.code(), Code::InvalidArgument | Code::FailedPrecondition),
            "{bad:?}: {e:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_needs_a_token_over_tcp_too() {
    let r = start(
        &fixture("amd-epyc-4numa"),
        Duration::from_millis(200),
        vec![],
    )
    .await;
    wait_for(&r, Section::Topology).await;
    for token in [None, Some("not-the-token")] {
        let mut c = client::connect(&tcp(&r, token), Duration::from_secs(2))
            .await
            .unwrap();
        let e = c
            .node
            .watch(pb::WatchRequest::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("a Watch with token {token:?} was accepted"));
        assert_eq!(e.code(), Code::Unauthenticated, "{token:?}: {e:?}");
        let says = if token.is_none() {
            "Bearer"
        } else {
            "invalid token"
        };
        assert!(e.message().contains(says), "{}", e.message());
    }
    // The reader token streams.
    let mut c = client::connect(&tcp(&r, Some(&r.reader)), Duration::from_secs(2))
        .await
        .unwrap();
    let mut stream = c
        .node
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().unwrap().full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_a_full_snapshot_then_deltas_of_what_changed() {
    let r = start(
        &fixture("misconfigured"),
        Duration::from_millis(200),
        vec!["127.0.0.1".into()],
    )
    .await;
    wait_for(&r, Section::Checks).await;
    let mut c = client::connect(&tcp(&r, Some(&r.reader)), Duration::from_secs(2))
        .await
        .unwrap();
    let mut stream = c
        .node
        .watch(pb::WatchRequest {
            sections: vec![],
            min_interval_ms: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.full);
    assert!(
        first.topology.is_some()
            && first.pinning.is_some()
            && first.nvme.is_some()
            && first.checks.is_some()
    );
    let mut held = wire::decode_snapshot(first).unwrap().snapshot;
    let mut deltas = 0;
    let mut saw_partial = false;
    let start = Instant::now();
    while deltas < 5 && start.elapsed() < Duration::from_secs(10) {
        let m = tokio::time::timeout(Duration::from_secs(3), stream.message())
            .await
            .expect("a delta within 3 s")
            .unwrap()
            .unwrap();
        assert!(!m.full);
        assert_eq!(
            m.collectors.len(),
            Section::COLLECTED.len(),
            "every delta carries every collector's status"
        );
        // The emulated host does not change, so its topology is not re-sent.
        saw_partial |= m.topology.is_none();
        let d = wire::decode_snapshot(m).unwrap();
        wire::merge_snapshot(&mut held, d);
        deltas += 1;
    }
    assert!(saw_partial, "unchanged sections are left out of deltas");
    let now = r.agent.state.snapshot();
    assert_eq!(held.topology, now.topology);
    assert_eq!(held.checks, now.checks);
    assert_eq!(held.node.hostname, "axon-bad01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_trusts_root_and_needs_no_token() {
    let r = start(
        &fixture("amd-epyc-4numa"),
        Duration::from_millis(200),
        vec![],
    )
    .await;
    wait_for(&r, Section::Topology).await;
    let sock = r.agent.unix_socket.clone().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut c = client::connect(&Target::Unix { path: sock.clone() }, Duration::from_secs(2))
        .await
        .unwrap();
    let s = c
        .node
        .get_snapshot(pb::GetSnapshotRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.node.unwrap().hostname, "axon-amd01");
    // Admin calls work too (the socket's peer is this test, running as root or as the agent's user).
    let e = c
        .control
        .probe_ports(pb::ProbePortsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::FailedPrecondition,
        "authorized, but this agent has no peers: {e:?}"
    );

    // A second agent on the same live socket is refused with a clear error.
    let cfg = AgentConfig {
        host_root: fixture("amd-epyc-4numa"),
        listen: None,
        echo_listen: None,
        metrics_listen: None,
        unix_socket: Some(sock.clone()),
        state_dir: r._dir.path().join("state"),
        token_file: None,
        node_name: None,
        base_interval: Duration::from_secs(1),
        collect: collect_config(),
        tls: agent::tls::ServerTls::Off,
        metrics_tls: false,
        limits: agent::listen::Limits::default(),
    };
    let e = agent::start(cfg).await.err().expect("refused").to_string();
    assert!(
        e.contains("control socket") && e.contains("already listens"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_as_text_or_openmetrics() {
    let r = start(
        &fixture("misconfigured"),
        Duration::from_millis(200),
        vec![],
    )
    .await;
    wait_for(&r, Section::Checks).await;
    wait_for(&r, Section::Pinning).await;
    let addr = r.agent.metrics_addr.unwrap();
    let (head, body) = http_get(addr, "*/*").await;
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(!body.contains("# EOF"));
    assert!(
        body.contains("# TYPE axon_nvme_media_errors_total counter"),
        "counters carry _total in 0.0.4"
    );
    assert!(body.contains("axon_nvme_media_errors_total{controller=\"nvme2\"} 17"));
    assert!(body.contains(
        "axon_nvme_critical_warning{controller=\"nvme2\",bit=\"volatile_memory_backup\"} 1"
    ));
    assert!(body.contains("axon_check_status{check=\"swap.off\",status=\"fail\"} 1"));
    assert!(body.contains("axon_check_status{check=\"swap.off\",status=\"pass\"} 0"));
    assert_eq!(body.matches("axon_cpu_info{").count(), 32);
    assert!(body.contains("role=\"axon-compute\""));
    assert!(
        body.contains("axon_cpu_conflicts{cpu=\"19\"} 2"),
        "cpu19 carries the misconfigured host's conflicts"
    );
    assert!(body.contains("axon_nic_mtu_bytes{device=\"ens1f0np0\"} 1500"));
    assert!(body.contains("axon_node_info{hostname=\"axon-bad01\""));
    assert!(body.contains("emulated_profile=\"misconfigured\""));
    for section in Section::COLLECTED {
        assert!(
            body.contains(&format!(
                "axon_collector_last_success_timestamp_seconds{{collector=\"{}\"}}",
                section.as_str()
            )),
            "{section:?}"
        );
    }
    let (head, body) = http_get(
        addr,
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )
    .await;
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(body.trim_end().ends_with("# EOF"));
    assert!(body.contains("# TYPE axon_nvme_media_errors counter"));
}

/// A collector stuck in a call that never returns (the fixture's emulated adjtimex, held by
/// `_fixture/hang/clock`, stands in for a syscall or read wedged in the kernel) reports its
/// own failure; scrapes and other collectors go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_collector_never_blocks_the_scrape() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    let hang = path.join("_fixture/hang/clock");
    std::fs::create_dir_all(hang.parent().unwrap()).unwrap();
    std::fs::write(&hang, "").unwrap();
    // base 100 ms: checks every 1 s with a 1 s deadline.
    let r = start(&path, Duration::from_millis(100), vec![]).await;
    wait_for(&r, Section::Topology).await;
    let addr = r.agent.metrics_addr.unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut saw_deadline = false;
    while Instant::now() < deadline && !saw_deadline {
        let t = Instant::now();
        let (_, body) = http_get(addr, "*/*").await;
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "scrape took {:?}",
            t.elapsed()
        );
        assert!(body.contains("axon_collector_success{collector=\"topology\"} 1"));
        saw_deadline = body.contains("axon_collector_success{collector=\"checks\"} 0")
            && r.agent.state.with_snapshot(|s, _| {
                s.collector(Section::Checks)
                    .and_then(|c| c.error.clone())
                    .is_some_and(|e| e.contains("deadline"))
            });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(saw_deadline, "the checks collector reported its deadline");
    let topo_before = r
        .agent
        .state
        .with_snapshot(|s, _| s.collector(Section::Topology).unwrap().last_run_ms);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let topo_after = r
        .agent
        .state
        .with_snapshot(|s, _| s.collector(Section::Topology).unwrap().last_run_ms);
    assert!(topo_after > topo_before, "other collectors keep running");
    // Release the stuck call so the blocking thread ends with the test.
    let _ = std::fs::remove_file(&hang);
}

/// The on-demand full-range probe (the Network panel's `P`, `axon probe`): an operation
/// on the agent with an id, one step per peer and a log line per peer, followed to its
/// typed end; the reader token cannot start it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_probe_operation_reports_progress_and_needs_the_admin_token() {
    use axon::actions::Progress;
    use axon::actions::probe::{ProbeRequest, full_probe};
    use axon::fleet::NodeSpec;
    use axon::model::ops::{OperationOutput, OperationState};
    let r = start(
        &fixture("amd-epyc-4numa"),
        Duration::from_millis(200),
        vec![],
    )
    .await;
    let addr = r.agent.grpc_addr.unwrap();
    let spec = NodeSpec {
        name: "axon-amd01".into(),
        address: addr.ip().to_string(),
        port: addr.port(),
        metrics_port: 0,
        token_file: None,
        fingerprint: None,
        ca_file: None,
    };
    let security = pinned(&r);
    let run = |token: String| {
        let req = ProbeRequest {
            spec: spec.clone(),
            token: Some(token),
            security: security.clone(),
            peers: "127.0.0.1,127.0.0.2".into(),
            groups: vec!["ssh".into()],
        };
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            tokio::spawn(full_probe(req, tx, Default::default()));
            let mut started = None;
            let mut logs = Vec::new();
            loop {
                match rx.recv().await.expect("finishes") {
                    Progress::Finished(r) => return (started, logs, r),
                    Progress::Started(op) => started = Some(op),
                    Progress::Step(_) => {}
                    Progress::Log(l) => logs.push(l),
                }
            }
        }
    };
    let (started, logs, result) = run(r.admin.clone()).await;
    let started = started.expect("Started comes first");
    assert!(started.id.starts_with("port-probe-"), "{}", started.id);
    assert!(
        started.target.contains("127.0.0.[1-2] (ssh)"),
        "{}",
        started.target
    );
    let op = result.unwrap();
    assert_eq!(op.id, started.id);
    assert_eq!(op.state, OperationState::Succeeded);
    assert_eq!((op.step.done, op.step.total), (2, 2), "every peer done");
    for peer in ["127.0.0.1", "127.0.0.2"] {
        assert!(
            logs.iter().any(|l| l.starts_with(&format!("{peer}: "))),
            "a log line per peer: {logs:?}"
        );
    }
    let summary = op.summary.clone().unwrap();
    assert!(
        // Per peer: TCP 22 (the ssh group) and the agent's UDP echo, which every full
        // probe adds. A closed port passes the firewall test (the host answered with RST).
        summary.contains("4 probes (ssh) to 2 peers: none blocked"),
        "{summary}"
    );
    let Some(OperationOutput::PortProbe { report }) = &op.output else {
        panic!("a port probe's output is its report: {:?}", op.output)
    };
    assert_eq!((report.probes_total, report.blocked_total), (4, 0));
    let (_, _, result) = run(r.reader.clone()).await;
    let e = result.unwrap_err().to_string();
    assert!(e.contains("needs the admin token"), "{e}");
}

/// Host list bombs sent as `ProbePorts.peers`: each is refused as InvalidArgument naming
/// the limit, quickly, without the memory that would kill the agent, and the agent keeps
/// answering GetSnapshot during and after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostlist_bomb_in_probe_ports_is_refused_and_the_agent_keeps_answering() {
    let r = start(
        &fixture("amd-epyc-4numa"),
        Duration::from_millis(200),
        vec![],
    )
    .await;
    wait_for(&r, Section::Topology).await;
    let many_ranges = |bytes: usize| {
        let mut s = String::from("a[0-99999");
        while s.len() < bytes {
            s.push_str(",0-99999");
        }
        s + "]"
    };
    let bombs = vec![
        many_ranges(2_400),
        many_ranges(8 * 1024),
        vec!["a[0-99999]"; 1_000].join(","),
        "a[0-99999]b[0-99999]c[0-99999]".to_string(),
        "a,".repeat(40_000),
    ];
    let admin = client::connect(&tcp(&r, Some(&r.admin)), Duration::from_secs(2))
        .await
        .unwrap();
    let mut reader = client::connect(&tcp(&r, Some(&r.reader)), Duration::from_secs(2))
        .await
        .unwrap();
    // All bombs at once, while a reader keeps asking for snapshots.
    let calls = bombs.iter().map(|b| {
        let mut c = admin.control.clone();
        let peers = b.clone();
        async move {
            let started = Instant::now();
            let e = c
                .probe_ports(pb::ProbePortsRequest {
                    peers,
                    ..Default::default()
                })
                .await
                .expect_err("a bomb is refused");
            (e, started.elapsed())
        }
    });
    let bombing = tokio::spawn(futures::future::join_all(calls.collect::<Vec<_>>()));
    let mut slowest = Duration::ZERO;
    while !bombing.is_finished() {
        let t = Instant::now();
        reader
            .node
            .get_snapshot(pb::GetSnapshotRequest {
                sections: vec!["topology".into()],
            })
            .await
            .expect("the agent answers while bombed");
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "GetSnapshot took {slowest:?} during the bombs"
    );
    for ((e, took), bomb) in bombing.await.unwrap().into_iter().zip(&bombs) {
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        assert!(
            e.message().contains("more than the limit of") && e.message().contains(&bomb[..10]),
            "names the list and the limit: {}",
            e.message()
        );
        assert!(took < Duration::from_secs(5), "refused after {took:?}");
    }
    let snap = reader
        .node
        .get_snapshot(pb::GetSnapshotRequest::default())
        .await
        .expect("the agent still answers")
        .into_inner();
    assert_eq!(snap.node.unwrap().hostname, "axon-amd01");
}

fn socket_only_config(sock: &Path, state: &Path) -> AgentConfig {
    let mut cfg = AgentConfig::new(
        fixture("amd-epyc-4numa"),
        state.to_path_buf(),
        collect_config(),
    );
    cfg.unix_socket = Some(sock.to_path_buf());
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket_path_holding_a_regular_file_is_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("control.sock");
    std::fs::write(&sock, "precious\n").unwrap();
    let e = agent::start(socket_only_config(&sock, &dir.path().join("state")))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains(&sock.display().to_string()) && e.contains("a regular file"),
        "names the path and what is there: {e}"
    );
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "precious\n");
    // Nothing else is left behind next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(".axon.")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket_path_holding_a_fifo_or_symlink_is_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A FIFO.
    let fifo = dir.path().join("fifo.sock");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = agent::start(socket_only_config(&fifo, &state))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("a FIFO"), "{e}");
    assert!(std::fs::symlink_metadata(&fifo).is_ok(), "the FIFO is kept");
    // A symlink to a file, and a dangling one.
    let target = dir.path().join("target");
    std::fs::write(&target, "x").unwrap();
    for (link, to) in [
        (dir.path().join("link.sock"), target.clone()),
        (dir.path().join("dangling.sock"), dir.path().join("nowhere")),
    ] {
        std::os::unix::fs::symlink(&to, &link).unwrap();
        let e = agent::start(socket_only_config(&link, &state))
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("a symlink"), "{e}");
        assert_eq!(std::fs::read_link(&link).unwrap(), to, "the link is kept");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_control_socket_is_replaced_and_bound_0600() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("control.sock");
    // A socket nobody listens on any more (a crashed agent's).
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(
        std::fs::symlink_metadata(&sock)
            .unwrap()
            .file_type()
            .is_socket()
    );
    let ag = agent::start(socket_only_config(&sock, &dir.path().join("state")))
        .await
        .expect("a stale socket is replaced");
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let mut c = client::connect(&Target::Unix { path: sock.clone() }, Duration::from_secs(2))
        .await
        .unwrap();
    c.node
        .get_snapshot(pb::GetSnapshotRequest::default())
        .await
        .expect("the new socket answers");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(".axon.")), "{names:?}");
    ag.shutdown();
}

/// An agent as `axon exporter` starts it: /metrics only, collectors on demand.
async fn start_exporter(root: &Path, max_age: Duration) -> agent::Agent {
    let mut collect = collect_config();
    collect.on_demand = Some(max_age);
    let mut cfg = AgentConfig::new(root.to_path_buf(), std::env::temp_dir(), collect);
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.tls = agent::tls::ServerTls::Off;
    agent::start(cfg).await.expect("exporter starts")
}

/// A scrape as Prometheus makes it, saying its timeout.
async fn prometheus_scrape(addr: std::net::SocketAddr, timeout_s: u32) -> String {
    common::agents::get_metrics(
        addr,
        &format!("Accept: text/plain\r\nX-Prometheus-Scrape-Timeout-Seconds: {timeout_s}\r\n"),
    )
    .await
}

fn last_runs(a: &agent::Agent) -> Vec<(Section, i64)> {
    a.state.with_snapshot(|s, _| {
        s.collectors
            .iter()
            .map(|c| (c.section, c.last_run_ms))
            .collect()
    })
}

/// `axon exporter` used to collect every second whether anyone scraped or not (180 ms of
/// CPU a minute at a 15 s scrape interval). Ten minutes without a scrape (of the tokio
/// clock, paused and advanced) must run no collector at all.
#[tokio::test(start_paused = true)]
async fn exporter_mode_does_not_collect_without_scrapes() {
    let a = start_exporter(&fixture("amd-epyc-4numa"), Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    let runs = last_runs(&a);
    assert_eq!(runs.len(), Section::COLLECTED.len());
    assert!(
        runs.iter().all(|(_, t)| *t == 0),
        "no scrape, yet collectors ran: {runs:?}"
    );
}

/// A scrape collects what is older than --max-age (checks after the sections they judge)
/// and the next scrape within --max-age is served from the cache without collecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_mode_collects_when_scraped_and_serves_the_cache_within_max_age() {
    let a = start_exporter(&fixture("misconfigured"), Duration::from_secs(3600)).await;
    let addr = a.metrics_addr.unwrap();
    assert!(last_runs(&a).iter().all(|(_, t)| *t == 0));
    // A 20 s timeout: the first scrape waits up to 5 s for the first collection.
    let body = prometheus_scrape(addr, 20).await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for family in [
        "axon_cpu_info{",
        "axon_nvme_info{",
        "axon_nic_info{",
        "axon_check_status{",
    ] {
        assert!(
            body.contains(family),
            "{family} missing from the first scrape"
        );
    }
    assert!(body.contains("axon_collector_interval_seconds{collector=\"topology\"} 3600"));
    let after_first = last_runs(&a);
    for (s, t) in &after_first {
        if *s != Section::Probes {
            assert!(*t > 0, "{s:?} ran for the first scrape");
        }
    }
    let body = prometheus_scrape(addr, 20).await;
    assert!(body.contains("axon_check_status{"));
    assert_eq!(
        last_runs(&a),
        after_first,
        "within --max-age: served from the cache"
    );
}

/// A collector that hangs (the checks, in an emulated adjtimex wedged in the kernel:
/// `_fixture/hang/clock`) holds a scrape at most half the scraper's timeout; the scrape
/// then serves what the other collectors found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_scrape_serves_the_cache_when_a_collector_hangs() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    let hang = path.join("_fixture/hang/clock");
    std::fs::create_dir_all(hang.parent().unwrap()).unwrap();
    std::fs::write(&hang, "").unwrap();
    let a = start_exporter(&path, Duration::from_secs(3600)).await;
    // The checks (which read /proc/swaps) hang until their 5 s deadline; a scrape with a
    // 2 s timeout waits 1 s, then answers.
    let body = prometheus_scrape(a.metrics_addr.unwrap(), 2).await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("axon_collector_success{collector=\"topology\"} 1"));
    assert!(
        !body.contains("axon_check_status{"),
        "the checks are still running"
    );
    let _ = std::fs::remove_file(&hang);
}

/// Every agent used to probe every peer on every continuous port each round (N² probes
/// across the cluster). A round now probes `peers_per_round` peers of a rotation, every
/// peer is covered within ceil(N / P) rounds, and the report dates each peer's results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_probes_a_bounded_rotating_sample_of_peers() {
    // 100 peers on loopback addresses where nothing listens: every probe is answered at
    // once (closed), so rounds are quick.
    let peers: Vec<String> = (1..=100).map(|i| format!("127.0.3.{i}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut collect = collect_config();
    collect.peers = peers.clone();
    collect.peers_per_round = 10;
    collect.probe.timeout = Duration::from_millis(300);
    let mut cfg = AgentConfig::new(fixture("amd-epyc-4numa"), dir.path().join("state"), collect);
    cfg.echo_listen = Some("127.0.0.1:0".parse().unwrap());
    // A probe round every 500 ms.
    cfg.base_interval = Duration::from_millis(100);
    let a = agent::start(cfg).await.unwrap();
    let ports = axon::model::ports::continuous_ports().len() as u32;
    let report = || a.state.snapshot().probes;
    let until = |done: &dyn Fn(&axon::model::probes::ProbeReport) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if report().is_some_and(|p| done(&p)) {
                return;
            }
            assert!(Instant::now() < deadline, "{:?}", report().map(|p| p.round));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    until(&|p| p.round >= 1);
    let first = report().unwrap();
    // Each round probed 10 peers (whichever rounds have run by now).
    let mut per_round = std::collections::BTreeMap::<u64, usize>::new();
    for s in first.summary.iter().filter(|s| s.observed_ms.is_some()) {
        *per_round.entry(s.round).or_default() += 1;
    }
    assert!(!per_round.is_empty());
    assert!(per_round.values().all(|&n| n == 10), "{per_round:?}");
    assert_eq!(first.probes_total, per_round.len() as u32 * 10 * ports);
    assert_eq!(first.peers.len(), 100);
    assert_eq!(first.peers_per_round, 10);
    assert_eq!(
        first.coverage_ms,
        10 * 500,
        "10 rounds of 500 ms cover everyone"
    );
    until(&|p| p.round >= 10);
    let all = report().unwrap();
    assert!(
        all.summary.iter().all(|s| s.observed_ms.is_some()),
        "every peer within 10 rounds"
    );
    assert_eq!(all.probes_total, 100 * ports);
}

//! Issue 8 item 7, a policy layer on every RPC: against real agents, an RPC missing from
//! the policy table is refused even to the admin (over TCP and on the control socket), the
//! reader cannot call a mutating RPC, and mutating calls leave a record in
//! `<state-dir>/audit.jsonl` naming principal, source, RPC, target and result.

mod common;

use axon::agent::listen::Limits;
use axon::agent::tls::ServerTls;
use axon::fleet::client::{self, Target};
use axon::wire::pb;
use common::agents::{self, TestAgent};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Uri};

/// A plain-text channel to the agent's TCP port (the agent runs with TLS off).
async fn tcp_channel(a: &TestAgent) -> Channel {
    Endpoint::from_shared(format!("http://{}", a.grpc()))
        .unwrap()
        .connect()
        .await
        .expect("connects")
}

async fn unix_channel(path: &Path) -> Channel {
    let p = path.to_path_buf();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(p).await?,
                ))
            }
        }))
        .await
        .expect("connects")
}

/// A unary call to any path, as a client built for another version of the API would make.
async fn raw_call(ch: Channel, path: &'static str, token: Option<&str>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(pb::GetSnapshotRequest::default());
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    grpc.unary::<_, pb::NodeSnapshot, _>(
        req,
        http::uri::PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .expect_err("refused")
}

/// The audit file's records, once there are `n` (the agent writes them from a thread).
async fn audit_records(path: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never had {n} records: {text}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_missing_from_the_policy_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = agents::config(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        ServerTls::Off,
        Limits::default(),
    );
    let a = agents::start_with(cfg, dir).await;
    // Admin token over TCP, and the control socket (this test's uid: admin there).
    let over_tcp = raw_call(
        tcp_channel(&a).await,
        "/axon.v1.NodeService/GetEverything",
        Some(&a.admin),
    )
    .await;
    let sock = a.agent.unix_socket.clone().unwrap();
    let over_unix = raw_call(
        unix_channel(&sock).await,
        "/axon.v1.ControlService/FormCluster",
        None,
    )
    .await;
    for (s, rpc) in [
        (&over_tcp, "/axon.v1.NodeService/GetEverything"),
        (&over_unix, "/axon.v1.ControlService/FormCluster"),
    ] {
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        assert!(
            s.message().contains(rpc) && s.message().contains("not in the agent's policy table"),
            "{}",
            s.message()
        );
    }
    // A service the agent does not serve at all is refused the same way, not UNIMPLEMENTED.
    let s = raw_call(
        tcp_channel(&a).await,
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Some(&a.admin),
    )
    .await;
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // The table's own RPCs still answer on the same channel.
    let mut c = client::connect(&Target::Unix { path: sock.clone() }, Duration::from_secs(5))
        .await
        .unwrap();
    c.node
        .get_snapshot(pb::GetSnapshotRequest::default())
        .await
        .expect("GetSnapshot is in the table");
    // Each refusal is audited, with who asked.
    let recs = audit_records(&a.agent.audit_file, 3).await;
    assert_eq!(recs[0]["rpc"], "/axon.v1.NodeService/GetEverything");
    assert_eq!(recs[0]["principal"], "admin token");
    assert_eq!(recs[0]["result"], "refused");
    assert_eq!(recs[1]["principal"], format!("uid {}", uid()));
    assert_eq!(recs[1]["source"], format!("unix uid {}", uid()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_cannot_call_a_mutating_rpc() {
    let a = agents::start(Limits::default()).await;
    let mut reader = a.reader_client().await;
    let e = reader
        .control
        .probe_ports(pb::ProbePortsRequest {
            peers: "127.0.0.1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("needs the admin token") && e.message().contains("the reader token"),
        "{}",
        e.message()
    );
    // No token at all: refused too, and audited without a principal.
    let mut anon = client::connect(
        &Target::Tcp {
            addr: a.grpc().to_string(),
            token: None,
            security: a.pinned(),
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let e = anon
        .control
        .probe_ports(pb::ProbePortsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    let recs = audit_records(&a.agent.audit_file, 2).await;
    assert_eq!(recs.len(), 2, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r["rpc"], "/axon.v1.ControlService/ProbePorts");
    assert_eq!(r["principal"], "reader token");
    assert_eq!(r["role"], "reader");
    assert_eq!(r["result"], "refused");
    assert_eq!(r["code"], "PermissionDenied");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("needs the admin token")
    );
    // A refused request is not read: no target.
    assert_eq!(r["target"], serde_json::Value::Null);
    let from: std::net::SocketAddr = r["source"].as_str().unwrap().parse().unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.1");
    let r = &recs[1];
    assert_eq!(r["principal"], serde_json::Value::Null);
    assert_eq!(r["role"], serde_json::Value::Null);
    assert_eq!(r["code"], "Unauthenticated");
    assert_eq!(r["result"], "refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_are_audited_with_principal_source_and_result() {
    let a = agents::start(Limits::default()).await;
    assert!(
        !a.agent.audit_file.exists(),
        "created on first use, not at start"
    );
    let mut admin = client::connect(&a.target(&a.admin, a.pinned()), Duration::from_secs(5))
        .await
        .unwrap();
    let port = a.grpc().port();
    admin
        .control
        .probe_ports(pb::ProbePortsRequest {
            peers: "127.0.0.1".into(),
            ports: vec![pb::PortSpec {
                port: u32::from(port),
                proto: pb::Proto::Tcp as i32,
            }],
            timeout_ms: 500,
            ..Default::default()
        })
        .await
        .expect("the admin may probe");
    // A call that the handler refuses: audited as failed, with its code.
    let e = admin
        .control
        .probe_ports(pb::ProbePortsRequest {
            peers: "127.0.0.1".into(),
            groups: vec!["nope".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Reads are not audited.
    admin
        .node
        .get_snapshot(pb::GetSnapshotRequest::default())
        .await
        .unwrap();
    // The control socket's principal is its uid.
    let mut local = client::connect(
        &Target::Unix {
            path: a.agent.unix_socket.clone().unwrap(),
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let e = local
        .control
        .probe_ports(pb::ProbePortsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "no peers configured");

    let path = &a.agent.audit_file;
    assert_eq!(path, &a.dir.path().join("state/audit.jsonl"));
    let recs = audit_records(path, 3).await;
    assert_eq!(recs.len(), 3, "GetSnapshot is not audited: {recs:?}");
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let ok = &recs[0];
    let time = ok["time"].as_str().unwrap();
    assert!(time.ends_with('Z'), "UTC: {time}");
    let at = chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339");
    let age = chrono::Utc::now().signed_duration_since(at);
    assert!(age.num_seconds().abs() < 60, "{time}");
    assert_eq!(ok["principal"], "admin token");
    assert_eq!(ok["role"], "admin");
    assert_eq!(ok["org"], serde_json::Value::Null);
    let from: std::net::SocketAddr = ok["source"].as_str().unwrap().parse().unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.1");
    assert_ne!(from.port(), port, "the caller's address, not the agent's");
    assert_eq!(ok["rpc"], "/axon.v1.ControlService/ProbePorts");
    assert_eq!(ok["target"], format!("peers 127.0.0.1; ports {port}/tcp"));
    assert_eq!(ok["result"], "ok");
    assert_eq!(ok["code"], "Ok");
    assert!(ok["duration_ms"].as_f64().unwrap() >= 0.0);

    let failed = &recs[1];
    assert_eq!(failed["result"], "failed");
    assert_eq!(failed["code"], "InvalidArgument");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("unknown port group `nope`"),
        "{failed}"
    );
    assert_eq!(failed["target"], "peers 127.0.0.1; groups nope");

    let local = &recs[2];
    assert_eq!(local["principal"], format!("uid {}", uid()));
    assert_eq!(local["role"], "admin");
    assert_eq!(local["source"], format!("unix uid {}", uid()));
    assert_eq!(local["target"], "the agent's configured peers");
    assert_eq!(local["code"], "FailedPrecondition");

    for line in std::fs::read_to_string(path).unwrap().lines() {
        assert!(line.len() < axon::agent::audit::MAX_LINE);
    }
}

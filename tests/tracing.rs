//! One trace across console and agent: an OTLP/gRPC receiver runs in this test (the
//! collector's TraceService from opentelemetry-proto), a real agent process exports to it,
//! and so does the console side (this process) while it runs a full port probe on that
//! agent. The agent exports only when it stops (its batch delay is ten minutes), so its
//! spans arriving at all shows that SIGTERM flushes them.

use axon::actions::Progress;
use axon::actions::probe::{ProbeRequest, full_probe};
use axon::fleet::NodeSpec;
use axon::fleet::tls::Security;
use axon::model::ops::OperationState;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const CONSOLE_SERVICE: &str = "axon-console-under-test";

/// The collector: keeps every request it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(req.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// One received span, flattened.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    kind: i32,
    attrs: HashMap<String, String>,
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attrs(kv: &[KeyValue]) -> HashMap<String, String> {
    kv.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

impl Receiver {
    fn spans(&self) -> Vec<Span> {
        let mut out = Vec::new();
        for req in self.0.lock().unwrap().iter() {
            for rs in &req.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .map(|r| attrs(&r.attributes))
                    .and_then(|a| a.get("service.name").cloned())
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        out.push(Span {
                            service: service.clone(),
                            name: s.name.clone(),
                            trace: s.trace_id.clone(),
                            id: s.span_id.clone(),
                            parent: s.parent_span_id.clone(),
                            kind: s.kind,
                            attrs: attrs(&s.attributes),
                        });
                    }
                }
            }
        }
        out
    }
}

async fn start_receiver() -> (Receiver, SocketAddr) {
    let recv = Receiver::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let svc = TraceServiceServer::new(recv.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l))
            .await
            .unwrap()
    });
    (recv, addr)
}

struct Agent {
    child: Child,
    grpc: SocketAddr,
    admin: String,
    /// Everything the agent wrote on stderr so far (for failure messages).
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// A real agent (plain-text gRPC on an ephemeral port) exporting to `collector`, with a
/// batch delay so long that only its shutdown exports.
fn spawn_agent(collector: SocketAddr) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(["agent", "--insecure", "--host-root"])
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/hosts/amd-epyc-4numa"),
        )
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(dir.path().join("state"))
        .arg("--control-socket")
        .arg(dir.path().join("control.sock"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env("RUST_LOG", "info")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            // "  gRPC        127.0.0.1:40123 (PLAIN TEXT, …)" in the start-up banner.
            if let Some(rest) = line.trim_start().strip_prefix("gRPC ") {
                if let Some(Ok(a)) = rest.split_whitespace().next().map(str::parse) {
                    let _ = tx.send(a);
                }
            }
            lines.lock().unwrap().push(line);
        }
    });
    let grpc: SocketAddr = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => a,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "the agent never said where it listens: {}",
                log.lock().unwrap().join("\n")
            )
        }
    };
    let admin = std::fs::read_to_string(dir.path().join("state/admin.token"))
        .unwrap()
        .trim()
        .to_string();
    Agent {
        child,
        grpc,
        admin,
        log,
        _dir: dir,
    }
}

/// SIGTERM, then the agent's exit (its shutdown exports its spans), within `limit`.
fn terminate(agent: &mut Agent, limit: Duration) {
    assert_eq!(
        unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) },
        0
    );
    let start = Instant::now();
    loop {
        if let Some(status) = agent.child.try_wait().unwrap() {
            assert!(status.success(), "agent exit {status}: {}", agent.log());
            return;
        }
        assert!(
            start.elapsed() < limit,
            "the agent did not stop within {limit:?} of SIGTERM: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_started_in_the_console_is_one_trace_across_console_and_agent() {
    let (recv, collector) = start_receiver().await;
    let mut agent = spawn_agent(collector);

    // The console side, in this process, exporting to the same receiver.
    let telemetry = axon::telemetry::init(axon::telemetry::Options {
        service: CONSOLE_SERVICE.into(),
        log: axon::telemetry::LogTo::Off,
        otlp_endpoint: Some(format!("http://{collector}")),
        quiet_audit: false,
    });
    assert!(telemetry.exporting());

    let root = tracing::info_span!("test.probe");
    let root_cx = root.context().span().span_context().clone();
    assert!(root_cx.is_valid(), "the test's span is exported");
    let req = ProbeRequest {
        spec: NodeSpec {
            name: "axon-amd01".into(),
            address: agent.grpc.ip().to_string(),
            port: agent.grpc.port(),
            metrics_port: 0,
            token_file: None,
            fingerprint: None,
            ca_file: None,
        },
        token: Some(agent.admin.clone()),
        security: Security::Plaintext,
        peers: "127.0.0.1,127.0.0.2".into(),
        groups: vec!["ssh".into()],
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let probe = tokio::spawn(full_probe(req, tx, Default::default()).instrument(root.clone()));
    let op = loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the probe finishes within a minute")
            .expect("Finished comes last")
        {
            Progress::Finished(r) => break r.expect("the probe runs"),
            _ => continue,
        }
    };
    assert_eq!(op.state, OperationState::Succeeded);
    // The action's span ends with its task (a span still open at shutdown is not exported).
    tokio::time::timeout(Duration::from_secs(10), probe)
        .await
        .expect("the probe's task ends after Finished")
        .unwrap();
    drop(root);

    // Both sides flush as they stop: the agent on SIGTERM, the console on shutdown.
    let stopping = std::thread::spawn(move || {
        terminate(&mut agent, Duration::from_secs(20));
        agent
    });
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
    let agent = tokio::task::spawn_blocking(move || stopping.join().unwrap())
        .await
        .unwrap();

    // Poll the receiver until both sides' spans are in.
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = recv.spans();
        let has = |service: &str, name: &str| {
            spans
                .iter()
                .any(|s| s.name == name && (service.is_empty() || s.service == service))
        };
        if has(CONSOLE_SERVICE, "action") && has("", "operation") && has("", "op.step") {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans missing after 20 s; received: {:#?}\nagent log:\n{}",
            spans
                .iter()
                .map(|s| (&s.service, &s.name))
                .collect::<Vec<_>>(),
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dump = || format!("{spans:#?}");
    let one = |pred: &dyn Fn(&Span) -> bool, what: &str| -> Span {
        let found: Vec<&Span> = spans.iter().filter(|s| pred(s)).collect();
        assert_eq!(found.len(), 1, "exactly one {what}: {}", dump());
        found[0].clone()
    };

    let trace = root_cx.trace_id().to_bytes().to_vec();
    let action = one(&|s| s.name == "action", "action span");
    assert_eq!(action.service, CONSOLE_SERVICE);
    assert_eq!(action.trace, trace, "the action is in the test's trace");
    assert_eq!(action.parent, root_cx.span_id().to_bytes().to_vec());
    assert_eq!(action.attrs["action.kind"], "port-probe");
    assert_eq!(action.attrs["node"], "axon-amd01");
    assert_eq!(action.attrs["op.id"], op.id);

    // Every span the agent exported belongs to the probe, so all of them are in the trace.
    let agent_spans: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service != CONSOLE_SERVICE)
        .collect();
    let agent_service = &agent_spans[0].service;
    assert_eq!(
        agent_service, "axon-agent",
        "the agent's default service name"
    );
    assert_ne!(agent_service, CONSOLE_SERVICE);
    for s in &agent_spans {
        assert_eq!(&s.service, agent_service);
        assert_eq!(
            s.trace,
            trace,
            "{} ({:?}) is not in the console's trace: {}",
            s.name,
            s.attrs,
            dump()
        );
    }

    // The agent's rpc spans are children of the console's action span.
    let start = one(
        &|s| {
            s.name == "rpc"
                && s.attrs.get("rpc.method").map(String::as_str)
                    == Some("/axon.v1.OperationService/StartOperation")
        },
        "StartOperation rpc span",
    );
    assert_eq!(
        start.parent, action.id,
        "rpc's parent is the console's span"
    );
    assert_eq!(start.kind, SpanKind::Server as i32);
    assert_eq!(start.attrs["principal"], "admin token");
    assert!(
        start.attrs["peer"].starts_with("127.0.0.1:"),
        "{:?}",
        start.attrs
    );
    assert_eq!(start.attrs["rpc.grpc.status_code"], "0");
    let watches: Vec<&&Span> = agent_spans
        .iter()
        .filter(|s| {
            s.name == "rpc"
                && s.attrs.get("rpc.method").map(String::as_str)
                    == Some("/axon.v1.OperationService/WatchOperation")
        })
        .collect();
    assert!(!watches.is_empty(), "the console followed the operation");
    for w in &watches {
        assert_eq!(w.parent, action.id);
    }

    // The operation is a child of the rpc that started it; its steps are its children.
    let operation = one(&|s| s.name == "operation", "operation span");
    assert_eq!(operation.parent, start.id);
    assert_eq!(operation.attrs["op.kind"], "port-probe");
    assert_eq!(operation.attrs["op.id"], op.id);
    assert_eq!(operation.attrs["op.state"], "succeeded");
    assert!(
        operation.attrs["op.target"].contains("127.0.0.[1-2] (ssh)"),
        "{:?}",
        operation.attrs
    );
    let steps: Vec<&&Span> = agent_spans.iter().filter(|s| s.name == "op.step").collect();
    let names: Vec<&str> = steps
        .iter()
        .map(|s| s.attrs["step.name"].as_str())
        .collect();
    assert_eq!(steps.len(), 3, "a step per peer, then done: {names:?}");
    for s in &steps {
        assert_eq!(s.parent, operation.id, "{:?}", s.attrs);
        assert_eq!(s.attrs["step.total"], "2");
    }
    for want in ["probe 127.0.0.1", "probe 127.0.0.2", "done"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
}

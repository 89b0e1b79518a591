//! One policy layer in front of every gRPC service of the agent, on TCP and on the control
//! socket alike. It authenticates the caller (`auth`), looks the RPC up in `POLICY` —
//! deny by default: an RPC without a rule is refused whoever calls — hands the handler the
//! `Principal` in the request's extensions, and audits mutating calls (`audit`), allowed
//! or refused. A handler never checks credentials itself, so a new RPC cannot be left open
//! by forgetting to.
//!
//! Each call is one `rpc` span (`rpc.method`, `peer`, `principal`,
//! `rpc.grpc.status_code`) that lasts until its status goes by; a caller's W3C
//! `traceparent` makes the caller's span its parent, so an operation started from the
//! console is one trace across console and agent.

use super::audit::{AuditLog, Outcome, Record};
use super::auth::{self, Role, Tokens};
use crate::wire::pb;
use bytes::{Bytes, BytesMut};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::body::Body;
use tonic::{Code, Status};
use tracing::Instrument;
use tracing::field::Empty;

/// What a call needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Any authenticated caller: the reader token, the admin token, a trusted socket peer.
    Read,
    /// The admin token, or a trusted peer on the control socket.
    Admin,
}

impl Permission {
    pub fn granted_to(self, role: Role) -> bool {
        match self {
            Permission::Read => true,
            Permission::Admin => role == Role::Admin,
        }
    }
}

/// Whether a call changes anything, and so is audited.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Reads state; not audited.
    Read,
    /// Changes state or acts on other hosts; every call (allowed or refused) is audited,
    /// with what `target` makes of the request's first message (its protobuf bytes).
    Mutating { target: fn(&[u8]) -> String },
    /// Writes data (objects), not configuration: needs its permission but is not audited,
    /// as every write of a busy cluster would flood the audit log.
    Data,
}

/// The rule of one RPC, by its gRPC path.
#[derive(Debug)]
pub struct Rule {
    pub rpc: &'static str,
    pub need: Permission,
    pub access: Access,
}

/// Every RPC the agent serves. An RPC missing here is refused (PERMISSION_DENIED), even
/// to the admin token; `every_rpc_of_the_proto_has_a_rule` keeps it in step with the proto.
pub static POLICY: &[Rule] = &[
    Rule {
        rpc: "/axon.v1.ClusterService/GetCluster",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.ClusterService/Join",
        need: Permission::Admin,
        access: Access::Mutating {
            target: join_target,
        },
    },
    Rule {
        rpc: "/axon.v1.ClusterService/Initialize",
        need: Permission::Admin,
        access: Access::Mutating {
            target: |_| "the cluster's Raft group".to_string(),
        },
    },
    Rule {
        rpc: "/axon.v1.ClusterService/Propose",
        need: Permission::Admin,
        access: Access::Mutating {
            target: propose_target,
        },
    },
    Rule {
        rpc: "/axon.v1.ClusterService/PutObject",
        need: Permission::Admin,
        access: Access::Data,
    },
    Rule {
        rpc: "/axon.v1.ClusterService/GetObject",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.ClusterService/ListObjects",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.ClusterService/DeleteObject",
        need: Permission::Admin,
        access: Access::Data,
    },
    // Chunks and manifests, for clients with a frontend of their own (`agent::direct`);
    // on the data port the members speak it among themselves, without this layer.
    Rule {
        rpc: "/axon.v1.DataService/PutChunk",
        need: Permission::Admin,
        access: Access::Data,
    },
    Rule {
        rpc: "/axon.v1.DataService/GetChunk",
        need: Permission::Read,
        access: Access::Read,
    },
    // The handler refuses it to every client (the members free chunks); the rule keeps
    // the table whole.
    Rule {
        rpc: "/axon.v1.DataService/DeleteChunks",
        need: Permission::Admin,
        access: Access::Data,
    },
    Rule {
        rpc: "/axon.v1.DataService/PutManifest",
        need: Permission::Admin,
        access: Access::Data,
    },
    Rule {
        rpc: "/axon.v1.DataService/GetManifest",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.DataService/ListLost",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.DataService/ListManifests",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.DataService/Ping",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.DataplaneService/GetDataplane",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.NodeService/GetSnapshot",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.NodeService/Watch",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.ControlService/ProbePorts",
        need: Permission::Admin,
        access: Access::Mutating {
            target: probe_ports_target,
        },
    },
    Rule {
        rpc: "/axon.v1.OperationService/StartOperation",
        need: Permission::Admin,
        access: Access::Mutating {
            target: start_operation_target,
        },
    },
    Rule {
        rpc: "/axon.v1.OperationService/CancelOperation",
        need: Permission::Admin,
        access: Access::Mutating {
            target: operation_ref_target,
        },
    },
    Rule {
        rpc: "/axon.v1.OperationService/WatchOperation",
        need: Permission::Read,
        access: Access::Read,
    },
    Rule {
        rpc: "/axon.v1.OperationService/ListOperations",
        need: Permission::Read,
        access: Access::Read,
    },
];

fn start_operation_target(msg: &[u8]) -> String {
    use prost::Message;
    match pb::StartOperationRequest::decode(msg) {
        Ok(pb::StartOperationRequest {
            kind: Some(pb::start_operation_request::Kind::PortProbe(p)),
        }) => {
            let peers = if p.peers.trim().is_empty() {
                "the agent's configured peers".to_string()
            } else {
                format!("peers {}", prefix(&p.peers, 256))
            };
            format!(
                "port-probe: {peers}; groups {}",
                prefix(&p.groups.join(","), 256)
            )
        }
        Ok(pb::StartOperationRequest {
            kind: Some(pb::start_operation_request::Kind::StartIo(_)),
        }) => "start-io: the data-plane cluster".into(),
        Ok(pb::StartOperationRequest {
            kind: Some(pb::start_operation_request::Kind::StopIo(_)),
        }) => "stop-io: the data-plane cluster".into(),
        Ok(_) => "no operation named".into(),
        Err(e) => format!(
            "undecodable StartOperationRequest ({} bytes): {e}",
            msg.len()
        ),
    }
}

fn operation_ref_target(msg: &[u8]) -> String {
    use prost::Message;
    match pb::OperationRef::decode(msg) {
        Ok(r) => format!("operation {}", prefix(&r.id, 256)),
        Err(e) => format!("undecodable OperationRef ({} bytes): {e}", msg.len()),
    }
}

pub fn rule(rpc: &str) -> Option<&'static Rule> {
    POLICY.iter().find(|r| r.rpc == rpc)
}

/// How much of a mutating call's request the layer reads to name its target: a valid
/// ProbePorts (a host list of at most 64 KiB) fits. A bigger first message is passed on
/// unread, and its target says so.
const TARGET_READ_LIMIT: usize = 128 * 1024;

/// The longest RPC path quoted back in an error message.
const RPC_IN_MESSAGE: usize = 200;

fn join_target(msg: &[u8]) -> String {
    use prost::Message;
    match pb::JoinRequest::decode(msg) {
        Ok(r) => format!(
            "join cluster {} as node {} of {} members",
            prefix(&r.cluster, 64),
            r.node_id,
            r.members.len()
        ),
        Err(e) => format!("undecodable JoinRequest ({} bytes): {e}", msg.len()),
    }
}

fn propose_target(msg: &[u8]) -> String {
    use prost::Message;
    match pb::ProposeRequest::decode(msg) {
        Ok(r) => format!("cluster change {}", prefix(&r.command_json, 200)),
        Err(e) => format!("undecodable ProposeRequest ({} bytes): {e}", msg.len()),
    }
}

fn probe_ports_target(msg: &[u8]) -> String {
    use prost::Message;
    let r = match pb::ProbePortsRequest::decode(msg) {
        Ok(r) => r,
        Err(e) => return format!("undecodable ProbePortsRequest ({} bytes): {e}", msg.len()),
    };
    let mut s = if r.peers.trim().is_empty() {
        "the agent's configured peers".to_string()
    } else if r.peers.len() > 256 {
        format!("peers {}… ({} bytes)", prefix(&r.peers, 256), r.peers.len())
    } else {
        format!("peers {}", r.peers)
    };
    if !r.groups.is_empty() {
        s.push_str("; groups ");
        s.push_str(prefix(&r.groups.join(","), 256));
    }
    if !r.ports.is_empty() {
        let shown: Vec<String> = r
            .ports
            .iter()
            .take(16)
            .map(|p| match pb::Proto::try_from(p.proto) {
                Ok(pb::Proto::Udp) => format!("{}/udp", p.port),
                Ok(pb::Proto::Tcp) => format!("{}/tcp", p.port),
                _ => format!("{}/?", p.port),
            })
            .collect();
        s.push_str("; ports ");
        s.push_str(&shown.join(","));
        if r.ports.len() > shown.len() {
            s.push_str(&format!(" and {} more", r.ports.len() - shown.len()));
        }
    }
    s
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The tower layer: `Server::builder().layer(PolicyLayer::new(..))`.
#[derive(Clone)]
pub struct PolicyLayer {
    shared: Arc<Shared>,
}

struct Shared {
    tokens: Arc<Tokens>,
    audit: Arc<AuditLog>,
}

impl PolicyLayer {
    pub fn new(tokens: Arc<Tokens>, audit: Arc<AuditLog>) -> Self {
        PolicyLayer {
            shared: Arc::new(Shared { tokens, audit }),
        }
    }
}

impl<S> tower::Layer<S> for PolicyLayer {
    type Service = PolicyService<S>;
    fn layer(&self, inner: S) -> PolicyService<S> {
        PolicyService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The services behind the layer, as the layer wraps them.
#[derive(Clone)]
pub struct PolicyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ResBody> tower::Service<http::Request<Body>> for PolicyService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    ResBody: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The service polled ready goes with this call; a clone waits for the next.
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        let span = rpc_span(&req);
        Box::pin(enforce(self.shared.clone(), req, inner).instrument(span))
    }
}

/// The call's span, child of the caller's span when the request names one.
fn rpc_span(req: &http::Request<Body>) -> tracing::Span {
    let span = tracing::info_span!(
        "rpc",
        otel.kind = "server",
        rpc.method = req.uri().path(),
        peer = %auth::source_of(req.extensions()),
        principal = Empty,
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
    );
    crate::telemetry::adopt_remote_parent(&span, req.headers());
    span
}

/// The call's gRPC status on its span (an error status marks the span as failed).
fn record_status(span: &tracing::Span, code: Code) {
    span.record("rpc.grpc.status_code", code as i64);
    if code != Code::Ok {
        span.record("otel.status_code", "ERROR");
    }
}

async fn enforce<S, ResBody>(
    shared: Arc<Shared>,
    mut req: http::Request<Body>,
    mut inner: S,
) -> Result<http::Response<Body>, S::Error>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<ResBody>>,
    ResBody: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let started = Instant::now();
    let rpc = req.uri().path().to_string();
    let rule = rule(&rpc);
    let who = auth::authenticate(&shared.tokens, req.headers(), req.extensions());
    let span = tracing::Span::current();
    if let Ok(p) = &who {
        span.record("principal", p.name.as_str());
    }
    // An RPC without a rule is audited too: it may be a newer console's admin call.
    let mut pending = match rule.map(|r| r.access) {
        Some(Access::Read | Access::Data) => None,
        Some(Access::Mutating { .. }) | None => Some(Pending {
            audit: shared.audit.clone(),
            started,
            done: false,
            record: Record {
                principal: who.as_ref().ok().cloned(),
                source: match &who {
                    Ok(p) => p.source.clone(),
                    Err(_) => auth::source_of(req.extensions()),
                },
                rpc: rpc.clone(),
                target: None,
                outcome: Outcome::Refused,
                code: Code::Unknown,
                message: String::new(),
                duration: Default::default(),
            },
        }),
    };
    let verdict = match rule {
        None => Err(Status::permission_denied(format!(
            "{} is not in the agent's policy table: calls without a rule are refused, whoever makes them (is the agent older than the console?)",
            prefix(&rpc, RPC_IN_MESSAGE)
        ))),
        Some(r) => who.and_then(|p| {
            if r.need.granted_to(p.role) {
                Ok(p)
            } else {
                Err(Status::permission_denied(format!(
                    "this call ({}) needs the admin token; {} may only read",
                    r.rpc.trim_start_matches("/axon.v1."),
                    p.describe()
                )))
            }
        }),
    };
    let principal = match verdict {
        Ok(p) => p,
        Err(status) => {
            record_status(&span, status.code());
            if let Some(p) = pending.take() {
                p.finish(Outcome::Refused, status.code(), status.message());
            }
            return Ok(status.into_http());
        }
    };
    req.extensions_mut().insert(principal);
    if let (Some(p), Some(Access::Mutating { target })) = (&mut pending, rule.map(|r| r.access)) {
        let (parts, body) = req.into_parts();
        let (body, first) = first_message(body, TARGET_READ_LIMIT).await;
        p.record.target = Some(match first {
            Ok(msg) => target(&msg),
            Err(why) => why,
        });
        req = http::Request::from_parts(parts, body);
    }
    let res = inner.call(req).await?;
    // An error answer is "trailers-only": its status is in the headers. Otherwise the
    // status comes in the trailers, after the body.
    if let Some(status) = Status::from_header_map(res.headers()) {
        record_status(&span, status.code());
        if let Some(p) = pending {
            p.finish_with(&status);
        }
        return Ok(res.map(Body::new));
    }
    Ok(res.map(|inner| {
        Body::new(AuditedBody {
            inner,
            pending,
            span: Some(span),
        })
    }))
}

/// An audit record waiting for its call's status. Dropped unfinished (the caller went
/// away, the connection closed), it is written as cancelled.
struct Pending {
    audit: Arc<AuditLog>,
    started: Instant,
    record: Record,
    done: bool,
}

impl Pending {
    fn finish(mut self, outcome: Outcome, code: Code, message: &str) {
        self.write(outcome, code, message);
    }

    fn finish_with(self, status: &Status) {
        let outcome = if status.code() == Code::Ok {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        self.finish(outcome, status.code(), status.message());
    }

    fn write(&mut self, outcome: Outcome, code: Code, message: &str) {
        self.done = true;
        self.record.outcome = outcome;
        self.record.code = code;
        self.record.message = message.to_string();
        self.record.duration = self.started.elapsed();
        self.audit.record(&self.record);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.write(
                Outcome::Failed,
                Code::Cancelled,
                "the call ended before its status was sent (the caller went away or the connection closed)",
            );
        }
    }
}

/// A response body that finishes its call's audit record (if it is audited) and span when
/// the status (the trailers) goes by. Dropped before, the span ends as cancelled.
struct AuditedBody<B> {
    inner: B,
    pending: Option<Pending>,
    span: Option<tracing::Span>,
}

impl<B> Drop for AuditedBody<B> {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            record_status(&span, Code::Cancelled);
        }
    }
}

impl<B> HttpBody for AuditedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(end) = &r {
            let finished = match end {
                Some(Ok(f)) => f.trailers_ref().map(|t| {
                    Status::from_header_map(t).unwrap_or_else(|| {
                        Status::unknown("the response's trailers carry no grpc-status")
                    })
                }),
                Some(Err(_)) => Some(Status::internal("the response body failed")),
                None => Some(Status::unknown("the response ended without a grpc-status")),
            };
            if let Some(status) = finished {
                let span = this.span.take();
                // The audit line is logged in the call's span.
                let _in = span.as_ref().map(|s| {
                    record_status(s, status.code());
                    s.enter()
                });
                if let Some(p) = this.pending.take() {
                    p.finish_with(&status);
                }
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Reads a request body up to its first gRPC message (5-byte prefix: compressed flag,
/// big-endian length) and returns a body that replays what was read, then the rest;
/// with the message, or why there is none.
async fn first_message(mut body: Body, limit: usize) -> (Body, Result<Bytes, String>) {
    let mut frames = VecDeque::new();
    let mut seen = BytesMut::new();
    let mut error = None;
    let mut ended = false;
    let first = loop {
        if seen.len() >= 5 {
            let len = u32::from_be_bytes([seen[1], seen[2], seen[3], seen[4]]) as usize;
            if seen[0] != 0 {
                break Err("compressed request, not read".to_string());
            }
            if len > limit {
                break Err(format!(
                    "a request of {len} bytes, more than the {limit} the audit reads"
                ));
            }
            if seen.len() >= 5 + len {
                break Ok(Bytes::copy_from_slice(&seen[5..5 + len]));
            }
        }
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    seen.extend_from_slice(d);
                }
                frames.push_back(f);
            }
            Some(Err(e)) => {
                error = Some(e);
                break Err("the request could not be read".to_string());
            }
            None => {
                ended = true;
                break Err("the request ended before its first message".to_string());
            }
        }
    };
    let replay = Replay {
        frames,
        error,
        rest: (!ended).then_some(body),
    };
    (Body::new(replay), first)
}

/// Frames already read, then an error met while reading (if any), then the rest.
struct Replay {
    frames: VecDeque<Frame<Bytes>>,
    error: Option<Status>,
    rest: Option<Body>,
}

impl HttpBody for Replay {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if let Some(f) = this.frames.pop_front() {
            return Poll::Ready(Some(Ok(f)));
        }
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match &mut this.rest {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(|b| b.is_end_stream())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::auth::Principal;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use tower::{Layer, ServiceExt};

    fn layer(dir: &std::path::Path) -> PolicyLayer {
        PolicyLayer::new(
            Arc::new(Tokens::new("a".repeat(40), "r".repeat(40))),
            Arc::new(AuditLog::new(dir.join("audit.jsonl"))),
        )
    }

    fn call(path: &str, token: &str, body: Body) -> http::Request<Body> {
        http::Request::builder()
            .uri(format!("http://agent{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/grpc")
            .body(body)
            .unwrap()
    }

    /// The audit file's lines, once `n` have been written (the writer is a thread).
    async fn audit_lines(dir: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
        let p = dir.join("audit.jsonl");
        for _ in 0..200 {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if text.lines().count() >= n {
                return text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{} never had {n} lines", p.display());
    }

    #[tokio::test]
    async fn methods_without_a_rule_never_reach_the_service() {
        let dir = tempfile::tempdir().unwrap();
        let reached = Arc::new(AtomicUsize::new(0));
        let r = reached.clone();
        let svc = layer(dir.path()).layer(tower::service_fn(move |_req: http::Request<Body>| {
            r.fetch_add(1, SeqCst);
            async { Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty())) }
        }));
        for path in [
            "/axon.v1.ControlService/FormCluster",
            "/axon.v1.NodeService/GetSnapshotX",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/",
        ] {
            let res = svc
                .clone()
                .oneshot(call(path, &"a".repeat(40), Body::empty()))
                .await
                .unwrap();
            let s = Status::from_header_map(res.headers()).expect("a gRPC status");
            assert_eq!(s.code(), Code::PermissionDenied, "{path}");
            assert!(
                s.message().contains(path)
                    && s.message().contains("not in the agent's policy table"),
                "{}",
                s.message()
            );
        }
        assert_eq!(reached.load(SeqCst), 0, "the service was never called");
        // Refusals of RPCs without a rule are audited, with the admin as principal.
        let lines = audit_lines(dir.path(), 4).await;
        assert_eq!(lines[0]["rpc"], "/axon.v1.ControlService/FormCluster");
        assert_eq!(lines[0]["result"], "refused");
        assert_eq!(lines[0]["principal"], "admin token");
        // A known RPC reaches it.
        let res = svc
            .oneshot(call(
                "/axon.v1.NodeService/GetSnapshot",
                &"r".repeat(40),
                Body::empty(),
            ))
            .await
            .unwrap();
        assert!(Status::from_header_map(res.headers()).is_none());
        assert_eq!(reached.load(SeqCst), 1);
    }

    #[tokio::test]
    async fn the_handler_receives_the_principal_and_the_whole_request() {
        let dir = tempfile::tempdir().unwrap();
        let svc =
            layer(dir.path()).layer(tower::service_fn(|req: http::Request<Body>| async move {
                let p = req.extensions().get::<Principal>().cloned().unwrap();
                assert_eq!((p.name.as_str(), p.role), ("admin token", Role::Admin));
                assert_eq!(p.org, None);
                // The layer read the first message to name the target; the handler still
                // gets every byte.
                let mut body = req.into_body();
                let mut got = Vec::new();
                while let Some(f) =
                    std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
                {
                    if let Ok(d) = f.unwrap().into_data() {
                        got.extend_from_slice(&d);
                    }
                }
                let mut res = http::Response::new(Body::empty());
                res.headers_mut().insert("x-len", got.len().into());
                Ok::<_, std::convert::Infallible>(res)
            }));
        use prost::Message;
        let msg = pb::ProbePortsRequest {
            peers: "n[001-100]".into(),
            ports: vec![pb::PortSpec {
                port: 14000,
                proto: pb::Proto::Tcp as i32,
            }],
            ..Default::default()
        }
        .encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        // In two pieces, split inside the length prefix.
        let (a, b) = framed.split_at(3);
        let body = Replay {
            frames: [
                Frame::data(Bytes::copy_from_slice(a)),
                Frame::data(Bytes::copy_from_slice(b)),
            ]
            .into(),
            error: None,
            rest: None,
        };
        let res = svc
            .oneshot(call(
                "/axon.v1.ControlService/ProbePorts",
                &"a".repeat(40),
                Body::new(body),
            ))
            .await
            .unwrap();
        assert_eq!(res.headers()["x-len"], framed.len().to_string().as_str());
        // Dropped before any status went by (as when the caller goes away): cancelled.
        drop(res);
        let lines = audit_lines(dir.path(), 1).await;
        assert_eq!(lines[0]["target"], "peers n[001-100]; ports 14000/tcp");
        assert_eq!(lines[0]["result"], "failed");
        assert_eq!(lines[0]["code"], "Cancelled");
    }

    #[test]
    fn every_rpc_of_the_proto_has_a_rule() {
        let proto = concat!(
            include_str!("../../proto/axon/v1/node.proto"),
            include_str!("../../proto/axon/v1/operations.proto"),
            include_str!("../../proto/axon/v1/cluster_admin.proto"),
            include_str!("../../proto/axon/v1/dataplane.proto"),
            include_str!("../../proto/axon/v1/data.proto")
        );
        let mut service = None;
        let mut rpcs = Vec::new();
        for line in proto.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("service ") {
                service = rest.split_whitespace().next();
            } else if let (Some(s), Some(rest)) = (service, line.strip_prefix("rpc ")) {
                let method = rest.split('(').next().unwrap().trim();
                rpcs.push(format!("/axon.v1.{s}/{method}"));
            } else if line == "}" {
                service = None;
            }
        }
        let mut table: Vec<String> = POLICY.iter().map(|r| r.rpc.to_string()).collect();
        rpcs.sort();
        table.sort();
        assert_eq!(rpcs, table, "the policy table and the protos disagree");
    }
}

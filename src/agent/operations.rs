//! Operations the agent runs for a caller (OperationService): started over gRPC, run as a
//! task of their own so they finish (or stop at a cancel) whether or not anyone follows,
//! followed through a watch channel, and kept after they end so a console that comes
//! back can read how they ended. Not persisted: an agent restart forgets them.
//!
//! Each is an `operation` span (`op.id`, `op.kind`, `op.target`, `op.state`), child of the
//! `rpc` span of the StartOperation that started it, with an `op.step` span per step
//! (`step.name`, `step.done`, `step.total`).

use crate::collectors::probes::{self, ProbeOptions};
use crate::model::ops::{Operation, OperationKind, OperationOutput, OperationState, Step};
use crate::model::ports::PortSpec;
use crate::model::probes::ProbeReport;
use crate::wire::{self, pb};
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Operations running at once; more are refused (ResourceExhausted).
pub const MAX_RUNNING: usize = 8;
/// Finished operations kept for ListOperations / WatchOperation.
pub const KEEP_FINISHED: usize = 64;
/// A Watch stream sends at most one message per this interval.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// Probes one full-probe operation may make (peers × ports).
pub const MAX_PROBES: usize = 1_000_000;

struct Entry {
    state: watch::Sender<Operation>,
    cancel: CancellationToken,
    /// The operation's task, to stop it dead when the agent stops (`abort_all`).
    task: Option<tokio::task::AbortHandle>,
}

/// The agent's operations: running ones and the latest finished ones, oldest first.
pub struct Operations {
    node: String,
    seq: AtomicU64,
    entries: Mutex<Vec<Entry>>,
}

/// What an operation's task uses to report: steps, log lines, the end.
pub struct OpHandle {
    state: watch::Sender<Operation>,
    pub cancel: CancellationToken,
    /// The operation's span, and its current step's (ended by the next step or the end).
    span: tracing::Span,
    step_span: Mutex<tracing::Span>,
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

impl OpHandle {
    pub fn step(&self, name: impl Into<String>, done: u64, total: u64) {
        let name = name.into();
        let span = tracing::info_span!(
            parent: &self.span,
            "op.step",
            step.name = name.as_str(),
            step.done = done,
            step.total = total,
        );
        // The previous step's span ends here.
        *self.step_span.lock().unwrap_or_else(|p| p.into_inner()) = span;
        self.state.send_modify(|op| {
            op.step = Step {
                name,
                done,
                total,
                bytes: None,
            }
        });
    }

    /// As `step`, for a step that moves data: bytes moved so far and in all.
    pub fn step_bytes(&self, name: impl Into<String>, done: u64, total: u64, bytes: (u64, u64)) {
        let name = name.into();
        let changed = self.state.borrow().step.name != name;
        if changed {
            self.step(name.clone(), done, total);
        }
        self.state.send_modify(|op| {
            op.step = Step {
                name,
                done,
                total,
                bytes: Some(bytes),
            }
        });
    }

    pub fn log(&self, text: impl Into<String>) {
        let text = text.into();
        {
            let step = self.step_span.lock().unwrap_or_else(|p| p.into_inner());
            let parent = if step.is_none() { &self.span } else { &*step };
            tracing::debug!(parent: parent, "{text}");
        }
        self.state.send_modify(|op| op.log(now_ms(), text));
    }

    pub fn finish(
        &self,
        state: OperationState,
        summary: String,
        error: Option<String>,
        output: Option<OperationOutput>,
    ) {
        *self.step_span.lock().unwrap_or_else(|p| p.into_inner()) = tracing::Span::none();
        self.span.record("op.state", state.as_str());
        let id = self.state.borrow().id.clone();
        let how = state.as_str();
        match &error {
            Some(e) => tracing::warn!(parent: &self.span, "operation {id} {how}: {summary}: {e}"),
            None => tracing::info!(parent: &self.span, "operation {id} {how}: {summary}"),
        }
        self.state.send_modify(|op| {
            op.state = state;
            op.finished_ms = Some(now_ms());
            op.log(now_ms(), summary.clone());
            op.summary = Some(summary);
            op.error = error;
            op.output = output;
        });
    }
}

impl Operations {
    pub fn new(node: &str) -> Arc<Self> {
        Arc::new(Operations {
            node: node.to_string(),
            seq: AtomicU64::new(1),
            entries: Mutex::new(Vec::new()),
        })
    }

    /// Registers an operation and runs `body` as its own task.
    pub fn start<F, Fut>(
        &self,
        kind: OperationKind,
        target: String,
        principal: String,
        body: F,
    ) -> Result<Operation, Status>
    where
        F: FnOnce(OpHandle) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let running = entries
            .iter()
            .filter(|e| !e.state.borrow().state.finished())
            .count();
        if running >= MAX_RUNNING {
            return Err(Status::resource_exhausted(format!(
                "{running} operations already running on this agent (at most {MAX_RUNNING}); wait for one to finish or cancel one"
            )));
        }
        let id = format!(
            "{}-{}-{}",
            kind.as_str(),
            self.node,
            self.seq.fetch_add(1, Relaxed)
        );
        // A child of the current span: the rpc span of the StartOperation call.
        let span = tracing::info_span!(
            "operation",
            op.id = id.as_str(),
            op.kind = kind.as_str(),
            op.target = target.as_str(),
            op.state = tracing::field::Empty,
        );
        let op = Operation::new(id, kind, target, principal, now_ms());
        let (tx, _) = watch::channel(op.clone());
        let cancel = CancellationToken::new();
        let handle = OpHandle {
            state: tx.clone(),
            cancel: cancel.clone(),
            span: span.clone(),
            step_span: Mutex::new(tracing::Span::none()),
        };
        entries.push(Entry {
            state: tx,
            cancel,
            task: None,
        });
        // Forget the oldest finished ones beyond the limit.
        let finished = entries
            .iter()
            .filter(|e| e.state.borrow().state.finished())
            .count();
        let mut excess = finished.saturating_sub(KEEP_FINISHED);
        entries.retain(|e| {
            if excess > 0 && e.state.borrow().state.finished() {
                excess -= 1;
                false
            } else {
                true
            }
        });
        let task = tokio::spawn(body(handle).instrument(span)).abort_handle();
        if let Some(e) = entries
            .iter_mut()
            .rev()
            .find(|e| e.state.borrow().id == op.id)
        {
            e.task = Some(task);
        }
        Ok(op)
    }

    /// The agent is stopping: every running operation's task stops where it is, as it
    /// would with the process (not cancelled: a cancel runs the operation's own undo, and
    /// a phase-out cut short this way resumes when the agent starts again). Each ends
    /// FAILED, saying so. Returns how many were stopped.
    pub fn abort_all(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for e in entries.iter() {
            if e.state.borrow().state.finished() {
                continue;
            }
            if let Some(t) = &e.task {
                t.abort();
            }
            e.state.send_modify(|op| {
                op.state = OperationState::Failed;
                op.finished_ms = Some(now_ms());
                op.error = Some(
                    "the agent stopped while it ran; a drive phase-out or phase-in resumes when it starts again"
                        .into(),
                );
            });
            n += 1;
        }
        n
    }

    fn find(&self, id: &str) -> Option<(watch::Receiver<Operation>, CancellationToken)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|e| e.state.borrow().id == id)
            .map(|e| (e.state.subscribe(), e.cancel.clone()))
    }

    fn not_found(id: &str) -> Status {
        Status::not_found(format!(
            "no operation `{id}` on this agent (finished ones are kept until {KEEP_FINISHED} newer ones have finished, and none survive an agent restart)"
        ))
    }

    /// Asks an operation to stop; returns it as it is now.
    pub fn cancel(&self, id: &str) -> Result<Operation, Status> {
        let (rx, cancel) = self.find(id).ok_or_else(|| Self::not_found(id))?;
        cancel.cancel();
        Ok(rx.borrow().clone())
    }

    pub fn get(&self, id: &str) -> Option<Operation> {
        self.find(id).map(|(rx, _)| rx.borrow().clone())
    }

    /// Running operations first, then finished ones; newest first within each.
    pub fn list(&self) -> Vec<Operation> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut ops: Vec<Operation> = entries
            .iter()
            .rev()
            .map(|e| e.state.borrow().clone())
            .collect();
        ops.sort_by_key(|o| o.state.finished());
        ops
    }

    pub fn subscribe(&self, id: &str) -> Result<watch::Receiver<Operation>, Status> {
        self.find(id)
            .map(|(rx, _)| rx)
            .ok_or_else(|| Self::not_found(id))
    }
}

/// The full port probe: one step per peer; cancellable between peers and inside one.
/// start-io: checks every precondition (listing each one not met, and failing if any),
/// then STARTING, then STARTED, each a change through Raft. stop-io: STOPPED.
pub async fn io_change(h: OpHandle, host: Arc<super::raft::ClusterHost>, start: bool) {
    use crate::model::cluster::{Command, IoStatus};
    let output = |status: IoStatus, blockers: Vec<String>| {
        Some(OperationOutput::Io {
            status: status.as_str().to_string(),
            blockers,
        })
    };
    let Some((_, _, config)) = host.info().await else {
        h.finish(
            OperationState::Failed,
            "not a cluster member".into(),
            Some(
                "this agent is not a member of a cluster: form one with `axon cluster create`"
                    .into(),
            ),
            None,
        );
        return;
    };
    let steps: Vec<(&str, IoStatus)> = if start {
        // The leader checks the preconditions when it applies STARTING, against the
        // configuration as committed; this member's copy may lag, so it only reports.
        h.step("check preconditions", 0, 3);
        h.log(format!(
            "as this member sees it: {} members, {} drives ACTIVE; {}+{} with {} hot spares",
            config.members.len(),
            config
                .drives
                .values()
                .filter(|d| d.state == "ACTIVE")
                .count(),
            config.k,
            config.m,
            config.hot_spares
        ));
        vec![
            ("STARTING", IoStatus::Starting),
            ("STARTED", IoStatus::Started),
        ]
    } else {
        h.log(
            "every put acknowledged so far is durable (acknowledged only once on its nodes' drives): nothing to flush; \
             puts in flight on the members' frontends finish, new ones are refused",
        );
        vec![("STOPPED", IoStatus::Stopped)]
    };
    let total = steps.len() as u64 + u64::from(start);
    for (i, (name, status)) in steps.into_iter().enumerate() {
        if h.cancel.is_cancelled() {
            h.finish(
                OperationState::Cancelled,
                format!("cancelled before {name}"),
                None,
                None,
            );
            return;
        }
        h.step(name, i as u64 + u64::from(start), total);
        match host.propose(Command::SetIo(status)).await {
            // start-io on a cluster already started: nothing to do (STARTING would refuse
            // IO until STARTED).
            Ok(a) if start && a.io == Some(IoStatus::Started) && status == IoStatus::Starting => {
                h.log(format!(
                    "IO is already STARTED (epoch {}): nothing changed",
                    a.epoch
                ));
                h.step("STARTED", total, total);
                h.finish(
                    OperationState::Succeeded,
                    "IO already STARTED".into(),
                    None,
                    output(IoStatus::Started, Vec::new()),
                );
                return;
            }
            Ok(a) => h.log(format!("IO {name} (epoch {})", a.epoch)),
            Err(super::raft::ClusterError::Refused(why))
                if why.starts_with("IO cannot start: ") =>
            {
                let blockers: Vec<String> = why["IO cannot start: ".len()..]
                    .split("; ")
                    .map(str::to_string)
                    .collect();
                for b in &blockers {
                    h.log(format!("not met: {b}"));
                }
                h.finish(
                    OperationState::Failed,
                    format!("IO not started: {} precondition(s) not met", blockers.len()),
                    Some(blockers.join("; ")),
                    output(config.io, blockers),
                );
                return;
            }
            Err(e) => {
                h.finish(
                    OperationState::Failed,
                    format!("IO not {}", name.to_lowercase()),
                    Some(e.to_string()),
                    None,
                );
                return;
            }
        }
    }
    let reached = if start {
        IoStatus::Started
    } else {
        IoStatus::Stopped
    };
    h.step(reached.as_str(), total, total);
    h.finish(
        OperationState::Succeeded,
        format!("IO {}", reached.as_str()),
        None,
        output(reached, Vec::new()),
    );
}

pub async fn port_probe(
    h: OpHandle,
    peers: Vec<String>,
    specs: Vec<PortSpec>,
    opts: ProbeOptions,
    groups: String,
) {
    let total = peers.len() as u64;
    let started = Instant::now();
    let mut results = Vec::new();
    let mut blocked_total = 0usize;
    h.log(format!(
        "probing {} ports ({groups}) on each of {total} peers",
        specs.len()
    ));
    for (i, peer) in peers.iter().enumerate() {
        let done = i as u64;
        if h.cancel.is_cancelled() {
            h.finish(
                OperationState::Cancelled,
                format!("cancelled after {done} of {total} peers ({blocked_total} probes blocked so far)"),
                None,
                None,
            );
            return;
        }
        h.step(format!("probe {peer}"), done, total);
        let one = tokio::select! {
            biased;
            _ = h.cancel.cancelled() => {
                h.finish(
                    OperationState::Cancelled,
                    format!("cancelled while probing {peer}, after {done} of {total} peers ({blocked_total} probes blocked so far)"),
                    None,
                    None,
                );
                return;
            }
            r = async {
                let resolved = probes::resolve(std::slice::from_ref(peer)).await;
                probes::run(&resolved, &specs, &opts).await
            } => r,
        };
        let blocked = one.blocked().count();
        blocked_total += blocked;
        h.log(format!(
            "{peer}: {} probes, {}",
            one.probes_total,
            if blocked == 0 {
                "none blocked".to_string()
            } else {
                format!(
                    "{blocked} blocked: {}",
                    one.blocked()
                        .take(6)
                        .map(|r| format!("{}/{} {}", r.port, r.proto.as_str(), r.state.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
        results.extend(one.results);
    }
    h.step("done", total, total);
    let report = ProbeReport::from_results(peers, results, started.elapsed().as_millis() as u64);
    let summary = if report.blocked_total == 0 {
        format!(
            "{} probes ({groups}) to {total} peers: none blocked",
            report.probes_total
        )
    } else {
        format!(
            "{} of {} probes ({groups}) to {total} peers blocked",
            report.blocked_total, report.probes_total
        )
    };
    h.finish(
        OperationState::Succeeded,
        summary,
        None,
        Some(OperationOutput::PortProbe { report }),
    );
}

/// OperationService. The policy layer authorises every call (StartOperation and
/// CancelOperation need admin and are audited; WatchOperation and ListOperations read).
#[derive(Clone)]
pub struct OperationSvc {
    pub ops: Arc<Operations>,
    pub peers: Vec<String>,
    pub probe: ProbeOptions,
    /// For start-io / stop-io: the cluster member this agent hosts, if any.
    pub state: Arc<super::state::AgentState>,
}

type OpStream = Pin<Box<dyn Stream<Item = Result<pb::Operation, Status>> + Send>>;

#[tonic::async_trait]
impl pb::operation_service_server::OperationService for OperationSvc {
    async fn start_operation(
        &self,
        req: Request<pb::StartOperationRequest>,
    ) -> Result<Response<pb::Operation>, Status> {
        let principal = super::auth::Principal::of(&req)?.name.clone();
        let kind = req
            .into_inner()
            .kind
            .ok_or_else(|| Status::invalid_argument("StartOperationRequest names no operation"))?;
        let op = match kind {
            pb::start_operation_request::Kind::PortProbe(spec) => {
                let (peers, specs) = super::service::plan_probe(
                    &self.peers,
                    &spec.peers,
                    &spec.groups,
                    &[],
                    MAX_PROBES,
                )
                .await?;
                let opts =
                    super::service::probe_options(&self.probe, spec.timeout_ms, spec.concurrency);
                let groups = if spec.groups.is_empty() {
                    "continuous ports".to_string()
                } else {
                    spec.groups.join(",")
                };
                let target = format!(
                    "{} → {} ({groups})",
                    self.ops.node,
                    crate::model::hostlist::compress(
                        &peers.iter().map(String::as_str).collect::<Vec<_>>()
                    )
                );
                self.ops
                    .start(OperationKind::PortProbe, target, principal, move |h| {
                        port_probe(h, peers, specs, opts, groups)
                    })?
            }
            pb::start_operation_request::Kind::StartIo(_)
            | pb::start_operation_request::Kind::StopIo(_) => {
                let start = matches!(kind, pb::start_operation_request::Kind::StartIo(_));
                let host = self.state.cluster_host().ok_or_else(|| {
                    Status::failed_precondition(
                        "this agent hosts no cluster member: start it with --cluster-listen, and form the cluster with `axon cluster create`",
                    )
                })?;
                let (k, target) = if start {
                    (
                        OperationKind::StartIo,
                        "the data-plane cluster's IO".to_string(),
                    )
                } else {
                    (
                        OperationKind::StopIo,
                        "the data-plane cluster's IO".to_string(),
                    )
                };
                self.ops
                    .start(k, target, principal, move |h| io_change(h, host, start))?
            }
            pb::start_operation_request::Kind::DriveDeactivate(ref d)
            | pb::start_operation_request::Kind::DriveActivate(ref d)
            | pb::start_operation_request::Kind::DriveRemove(ref d)
            | pb::start_operation_request::Kind::DriveAdd(ref d) => {
                use super::drive_ops;
                use pb::start_operation_request::Kind as K;
                let store = self.state.store().ok_or_else(|| {
                    Status::failed_precondition(
                        "this agent hosts no store: start it with --store DIR (made with `axon io create`)",
                    )
                })?;
                if d.drive.trim().is_empty() {
                    return Err(Status::invalid_argument(
                        "DriveSpec.drive is empty: name the drive (id, file name, path or number)",
                    ));
                }
                let r = drive_ops::DriveRequest {
                    drive: d.drive.clone(),
                    dry_run: d.dry_run,
                    rate: (d.rate > 0).then_some(d.rate),
                    size: d.size,
                    force: d.force,
                };
                let target = format!(
                    "drive {} on {}{}",
                    d.drive,
                    self.ops.node,
                    if d.dry_run { " (dry run)" } else { "" }
                );
                let host = self.state.cluster_host();
                match &kind {
                    K::DriveDeactivate(_) => self.ops.start(
                        OperationKind::DriveDeactivate,
                        target,
                        principal,
                        move |h| drive_ops::deactivate(h, store, host, r),
                    )?,
                    K::DriveActivate(_) => self.ops.start(
                        OperationKind::DriveActivate,
                        target,
                        principal,
                        move |h| drive_ops::activate(h, store, r),
                    )?,
                    K::DriveRemove(_) => {
                        self.ops
                            .start(OperationKind::DriveRemove, target, principal, move |h| {
                                drive_ops::remove(h, store, host, r)
                            })?
                    }
                    _ => self
                        .ops
                        .start(OperationKind::DriveAdd, target, principal, move |h| {
                            drive_ops::add(h, store, r)
                        })?,
                }
            }
        };
        Ok(Response::new(wire::encode_operation(&op)))
    }

    async fn cancel_operation(
        &self,
        req: Request<pb::OperationRef>,
    ) -> Result<Response<pb::Operation>, Status> {
        super::auth::Principal::of(&req)?;
        let op = self.ops.cancel(&req.get_ref().id)?;
        Ok(Response::new(wire::encode_operation(&op)))
    }

    type WatchOperationStream = OpStream;

    async fn watch_operation(
        &self,
        req: Request<pb::OperationRef>,
    ) -> Result<Response<OpStream>, Status> {
        super::auth::Principal::of(&req)?;
        let rx = self.ops.subscribe(&req.get_ref().id)?;
        // The operation now, then on every change (at most every WATCH_EVERY), ending
        // with the message that shows it finished.
        let stream =
            futures::stream::unfold((rx, true, false), |(mut rx, first, ended)| async move {
                if ended {
                    return None;
                }
                if !first {
                    tokio::time::sleep(WATCH_EVERY).await;
                    if !rx.borrow().state.finished() && rx.changed().await.is_err() {
                        // The operation's task is gone without finishing it: say so.
                        let mut op = rx.borrow().clone();
                        op.state = OperationState::Failed;
                        op.error = Some("the operation's task ended without a result".into());
                        return Some((Ok(wire::encode_operation(&op)), (rx, false, true)));
                    }
                }
                let op = rx.borrow_and_update().clone();
                let done = op.state.finished();
                Some((Ok(wire::encode_operation(&op)), (rx, false, done)))
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_operations(
        &self,
        req: Request<pb::ListOperationsRequest>,
    ) -> Result<Response<pb::ListOperationsResponse>, Status> {
        super::auth::Principal::of(&req)?;
        Ok(Response::new(pb::ListOperationsResponse {
            operations: self.ops.list().iter().map(wire::encode_operation).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_agent_stopping_stops_its_running_operations_dead_not_cancelled() {
        let ops = Operations::new("n1");
        // Set if the operation's own cancel path ran (it must not), and when its task is
        // dropped (aborted).
        let undone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Relaxed);
            }
        }
        let (u, d) = (undone.clone(), dropped.clone());
        let op = ops
            .start(
                OperationKind::DriveDeactivate,
                "d".into(),
                "p".into(),
                move |h| async move {
                    let _flag = Flag(d);
                    h.cancel.cancelled().await;
                    u.store(true, Relaxed);
                },
            )
            .unwrap();
        let done = ops
            .start(
                OperationKind::PortProbe,
                "t".into(),
                "p".into(),
                |h| async move {
                    h.finish(OperationState::Succeeded, "ok".into(), None, None);
                },
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(ops.abort_all(), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(dropped.load(Relaxed), "the task still runs");
        assert!(!undone.load(Relaxed), "it was cancelled, not stopped");
        let o = ops.get(&op.id).unwrap();
        assert_eq!(o.state, OperationState::Failed);
        assert!(o.error.unwrap().contains("the agent stopped while it ran"));
        assert_eq!(ops.get(&done.id).unwrap().state, OperationState::Succeeded);
    }

    #[tokio::test]
    async fn finished_operations_are_kept_up_to_a_limit_and_running_ones_are_capped() {
        let ops = Operations::new("n1");
        // Operations that end at once.
        for _ in 0..(KEEP_FINISHED + 3) {
            ops.start(
                OperationKind::PortProbe,
                "t".into(),
                "p".into(),
                |h| async move {
                    h.finish(OperationState::Succeeded, "ok".into(), None, None);
                },
            )
            .unwrap();
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The next start prunes: at most KEEP_FINISHED finished ones remain.
        let gate = CancellationToken::new();
        let mut held = Vec::new();
        for _ in 0..MAX_RUNNING {
            let g = gate.clone();
            held.push(
                ops.start(
                    OperationKind::PortProbe,
                    "t".into(),
                    "p".into(),
                    move |h| async move {
                        g.cancelled().await;
                        h.finish(OperationState::Succeeded, "ok".into(), None, None);
                    },
                )
                .unwrap(),
            );
        }
        let list = ops.list();
        assert_eq!(
            list.iter().filter(|o| !o.state.finished()).count(),
            MAX_RUNNING
        );
        assert!(list.iter().filter(|o| o.state.finished()).count() <= KEEP_FINISHED);
        assert!(!list[0].state.finished(), "running ones come first");
        let e = ops
            .start(
                OperationKind::PortProbe,
                "t".into(),
                "p".into(),
                |_| async {},
            )
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("at most 8"), "{}", e.message());
        gate.cancel();
        let e = ops.cancel("nope").unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
    }

    #[tokio::test]
    async fn a_cancelled_probe_stops_within_one_step_and_says_so() {
        // A port whose accept queue is full drops SYNs, as a firewall does: each step
        // would take the whole probe timeout; the cancel must end it inside the step.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let black = sock.listen(0).unwrap();
        let addr = black.local_addr().unwrap();
        let mut held = Vec::new();
        loop {
            match tokio::time::timeout(
                Duration::from_millis(300),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(s)) => held.push(s),
                _ => break,
            }
            assert!(held.len() < 64, "the accept queue never filled");
        }
        let ops = Operations::new("n1");
        let peers: Vec<String> = vec!["127.0.0.1".to_string(); 5];
        let specs = vec![PortSpec {
            port: addr.port(),
            proto: crate::model::probes::Proto::Tcp,
        }];
        let opts = ProbeOptions {
            timeout: Duration::from_secs(20),
            concurrency: 4,
            source: None,
        };
        let op = ops
            .start(OperationKind::PortProbe, "t".into(), "p".into(), move |h| {
                port_probe(h, peers, specs, opts, "core".into())
            })
            .unwrap();
        let mut rx = ops.subscribe(&op.id).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        ops.cancel(&op.id).unwrap();
        while !rx.borrow_and_update().state.finished() {
            tokio::time::timeout(Duration::from_secs(5), rx.changed())
                .await
                .expect("stops within a second of the cancel, not after the 20 s probe timeout")
                .unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let op = ops.get(&op.id).unwrap();
        assert_eq!(op.state, OperationState::Cancelled);
        let s = op.summary.unwrap();
        assert!(
            s.contains("cancelled while probing 127.0.0.1, after 0 of 5 peers"),
            "{s}"
        );
        drop((black, held));
    }
}

//! Operations on the cluster, shared by the TUI, the CLI and the tests: each is started on
//! an agent (OperationService, through `fleet::ops`) and followed to its end, reporting
//! over a channel with one progress type (`Progress`), so a panel, a CLI verb and a test
//! drive the same code.

pub mod artefacts;
pub mod io;
pub mod probe;

/// The core planner: pure, in `model` so the agent's checks use it as well.
pub use crate::model::plan;

pub use crate::fleet::ops::OpError;
use crate::model::ops::{Operation, Step};

/// What an action reports while it runs. The last message is always `Finished`.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The agent accepted it: its id, kind and target.
    Started(Operation),
    Step(Step),
    Log(String),
    /// The operation as it ended (succeeded, failed or cancelled, with its summary and
    /// output), or why it could not be run or followed.
    Finished(Result<Operation, OpError>),
}

use crate::fleet::ops::OpsClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Follows a started operation to its end: sends a `Step` when the step changes, a `Log`
/// per new log line, and `Finished`. When `cancel` fires, asks the agent to cancel and
/// follows on until the agent reports the end. A broken stream is re-opened (the agent
/// keeps the operation); after three failures in a row the action ends with `Lost`.
pub async fn follow(
    mut client: OpsClient,
    started: Operation,
    tx: mpsc::Sender<Progress>,
    cancel: CancellationToken,
) {
    let id = started.id.clone();
    let mut last_step = started.step.clone();
    let mut seen_lines = started.log_dropped + started.log.len() as u64;
    let _ = tx.send(Progress::Started(started)).await;
    let mut cancel_sent = false;
    let mut failures = 0u32;
    loop {
        let mut watch = match client.watch(&id).await {
            Ok(w) => w,
            Err(e) => {
                if !retry(&mut failures, &id, e, &tx).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                n = watch.next() => n,
                _ = cancel.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    let note = match client.cancel(&id).await {
                        Ok(_) => "cancel requested; the agent stops at the next step boundary or inside the current step".to_string(),
                        Err(e) => format!("cancel refused: {e}"),
                    };
                    let _ = tx.send(Progress::Log(note)).await;
                    continue;
                }
            };
            match next {
                Ok(Some(op)) => {
                    failures = 0;
                    // Log lines first: they tell how the steps before this one went.
                    let total = op.log_dropped + op.log.len() as u64;
                    if total > seen_lines {
                        let new = (total - seen_lines).min(op.log.len() as u64) as usize;
                        for l in &op.log[op.log.len() - new..] {
                            let _ = tx.send(Progress::Log(l.text.clone())).await;
                        }
                        seen_lines = total;
                    }
                    if op.step != last_step {
                        last_step = op.step.clone();
                        let _ = tx.send(Progress::Step(op.step.clone())).await;
                    }
                    if op.state.finished() {
                        let _ = tx.send(Progress::Finished(Ok(op))).await;
                        return;
                    }
                }
                Ok(None) => {
                    let _ = tx
                        .send(Progress::Finished(Err(OpError::Lost(format!(
                            "the agent ended the stream of {id} before it finished"
                        )))))
                        .await;
                    return;
                }
                Err(e) => {
                    if !retry(&mut failures, &id, e, &tx).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// Counts a failure to reach the agent: after the third in a row, ends the action with
/// `Lost` and returns false; else waits half a second before the caller tries again.
async fn retry(failures: &mut u32, id: &str, e: OpError, tx: &mpsc::Sender<Progress>) -> bool {
    *failures += 1;
    if *failures >= 3 {
        let _ = tx.send(Progress::Finished(Err(lost(id, e)))).await;
        return false;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    true
}

fn lost(id: &str, e: OpError) -> OpError {
    OpError::Lost(format!(
        "lost contact while following {id} ({e}); the operation goes on on the agent"
    ))
}

//! Where the data plane's heavy work runs (DATAPLANE.md, "Containers"): on the threads of
//! the node's containers when the agent runs them — chunk reads and writes on the drives
//! container's, erasure coding on the compute container's — and otherwise on Tokio's
//! blocking pool (or inline, for short work). The agent owns the threads and their pinning
//! (`agent::containers`); the data plane only hands jobs over.

use crate::model::pinning::ContainerRole;
use std::sync::Arc;

pub type Job = Box<dyn FnOnce() + Send + 'static>;

pub trait Offload: Send + Sync {
    /// Queues `job` on a thread of a `role` container; gives it back when the node runs
    /// none (an emulated host, a plan without that role).
    fn submit(&self, role: ContainerRole, job: Job) -> Result<(), Job>;
}

/// Runs `f` on a `role` container's thread if `offload` has one, else on the blocking
/// pool; the error is a job that never finished (its thread died).
pub async fn run<T: Send + 'static>(
    offload: Option<&Arc<dyn Offload>>,
    role: ContainerRole,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    if let Some(o) = offload {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        if let Err(job) = o.submit(role, job) {
            tokio::task::spawn_blocking(job)
                .await
                .map_err(|e| e.to_string())?;
        }
        return rx
            .await
            .map_err(|_| format!("a job on the {} container was lost", role.as_str()));
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())
}

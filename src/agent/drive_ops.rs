//! The drive operations of part 7 on the agent that owns the drive (OperationService):
//! deactivate (phase out: the drive's chunks move to the node's other drives at a bounded
//! rate, then INACTIVE; cancellable, resumed when the agent restarts), activate, remove
//! (only INACTIVE or FAILED) and add (format, then in service). Each shows what it will
//! do first; with `dry_run` that preview is all it does. The store's drive states are the
//! source: the cluster's configuration follows them (`member::register_drives`).

use super::member::SharedStore;
use super::operations::OpHandle;
use super::raft::ClusterHost;
use crate::dataplane::store::{PhaseOut, Store, StoreError};
use crate::model::ops::{DriveOutcome, OperationOutput, OperationState};
use humansize::{BINARY, format_size};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a drive operation is asked to do.
#[derive(Debug, Clone)]
pub struct DriveRequest {
    pub drive: String,
    pub dry_run: bool,
    /// Bytes per second moved; None for no limit.
    pub rate: Option<u64>,
    /// For add: size of a new file.
    pub size: u64,
    pub force: bool,
}

fn size(b: u64) -> String {
    format_size(b, BINARY)
}

/// Runs `f` on the store, off the runtime.
async fn with_store<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let s = store.clone();
    match tokio::task::spawn_blocking(move || {
        let mut g = s
            .lock()
            .map_err(|_| "the store's lock is poisoned (a panic)".to_string())?;
        f(&mut g).map_err(|e| e.to_string())
    })
    .await
    {
        Ok(r) => r,
        Err(e) => Err(format!("the store task failed: {e}")),
    }
}

fn outcome(p: &PhaseOut, dry_run: bool) -> DriveOutcome {
    DriveOutcome {
        drive: p.drive.clone(),
        path: p.path.display().to_string(),
        state: p.state.to_string(),
        chunks: p.chunks,
        bytes: p.bytes,
        capacity: p.capacity,
        others_free: p.others_free,
        dry_run,
        ..Default::default()
    }
}

/// Whether the cluster still holds its data with its hot spares once this node's
/// capacity shrinks by `capacity`: used bytes (by the members' last pings) against the
/// usable capacity without the drive. None when this agent hosts no data member.
async fn hot_spare_refusal(host: &Option<Arc<ClusterHost>>, capacity: u64) -> Option<String> {
    let host = host.as_ref()?;
    let (_, _, net, config) = host.data_view().await.ok()?;
    let me = net.me();
    let usage = net.usage();
    if usage.is_empty() || config.k == 0 {
        return None;
    }
    let raw_used: u64 = usage.iter().map(|(_, f, c)| c.saturating_sub(*f)).sum();
    // Chunks hold data and parity: k of every k+m bytes are objects.
    let used = raw_used * config.k as u64 / (config.k + config.m) as u64;
    let caps: Vec<u64> = usage
        .iter()
        .map(|(n, _, c)| {
            if *n == me {
                c.saturating_sub(capacity)
            } else {
                *c
            }
        })
        .collect();
    let usable = crate::dataplane::cluster::placement::usable_capacity(
        &caps,
        config.k,
        config.m,
        config.hot_spares,
    );
    (used > usable).then(|| {
        format!(
            "the cluster holds {} of objects; without this drive its usable capacity with {} hot spare(s) would be {} — the hot-spare reserve would be lost; add capacity first",
            size(used),
            config.hot_spares,
            size(usable)
        )
    })
}

/// The drive `r` names, as it stands (finishing the operation when there is none), and
/// the request with the drive by its id: a drive added or removed meanwhile must not shift
/// what a number or file name points at.
async fn look(
    h: &OpHandle,
    store: &SharedStore,
    r: DriveRequest,
) -> Option<(PhaseOut, DriveRequest)> {
    let which = r.drive.clone();
    match with_store(store, move |s| s.phase_out_preview(&which)).await {
        Ok(p) => {
            let r = DriveRequest {
                drive: p.drive.clone(),
                ..r
            };
            Some((p, r))
        }
        Err(e) => {
            h.finish(
                OperationState::Failed,
                "no such drive".into(),
                Some(e),
                None,
            );
            None
        }
    }
}

/// Deactivate: preview, checks, PHASING_OUT, move every chunk off, INACTIVE.
pub async fn deactivate(
    h: OpHandle,
    store: SharedStore,
    host: Option<Arc<ClusterHost>>,
    r: DriveRequest,
) {
    h.step("preview", 0, 3);
    let Some((p, r)) = look(&h, &store, r).await else {
        return;
    };
    h.log(format!(
        "{} ({}, {}): {} chunk(s), {} of {} used; the node's other ACTIVE drives have {} free",
        p.path.display(),
        p.drive,
        p.state,
        p.chunks,
        size(p.bytes),
        size(p.capacity),
        size(p.others_free)
    ));
    let mut out = outcome(&p, r.dry_run);
    if !matches!(p.state, "ACTIVE" | "PHASING_IN" | "PHASING_OUT") {
        out.refusals.push(format!(
            "it is {}: only an ACTIVE drive is phased out",
            p.state
        ));
    }
    if p.bytes > p.others_free {
        out.refusals.push(format!(
            "it holds {} but the node's other ACTIVE drives have {} free: add a drive first (`axon drive add`)",
            size(p.bytes),
            size(p.others_free)
        ));
    }
    if p.state != "PHASING_OUT"
        && let Some(why) = hot_spare_refusal(&host, p.capacity).await
    {
        out.refusals.push(why);
    }
    for why in &out.refusals {
        h.log(format!("refused: {why}"));
    }
    if r.dry_run {
        let summary = if out.refusals.is_empty() {
            format!(
                "dry run: would move {} chunk(s) ({}) off {} to the node's other drives, then mark it INACTIVE",
                p.chunks,
                size(p.bytes),
                p.path.display()
            )
        } else {
            format!("dry run: would be refused: {}", out.refusals.join("; "))
        };
        return h.finish(
            OperationState::Succeeded,
            summary,
            None,
            Some(OperationOutput::Drive(out)),
        );
    }
    if !out.refusals.is_empty() {
        let why = out.refusals.join("; ");
        return h.finish(
            OperationState::Failed,
            "refused".into(),
            Some(why),
            Some(OperationOutput::Drive(out)),
        );
    }
    h.step("phase out", 1, 3);
    let which = r.drive.clone();
    let p = match with_store(&store, move |s| s.begin_phase_out(&which)).await {
        Ok(p) => p,
        Err(e) => {
            return h.finish(
                OperationState::Failed,
                "refused".into(),
                Some(e),
                Some(OperationOutput::Drive(out)),
            );
        }
    };
    h.log(format!(
        "{} is PHASING_OUT: nothing new is written to it; moving {} chunk(s)",
        p.path.display(),
        p.chunks
    ));
    let total = p.keys.len() as u64;
    let started = Instant::now();
    let (mut moved, mut bytes, mut failed) = (0u64, 0u64, Vec::<String>::new());
    for (i, key) in p.keys.iter().enumerate() {
        if h.cancel.is_cancelled() {
            let which = r.drive.clone();
            let back = with_store(&store, move |s| s.activate(&which)).await;
            out.moved_chunks = moved;
            out.moved_bytes = bytes;
            out.state = if back.is_ok() {
                "ACTIVE"
            } else {
                "PHASING_OUT"
            }
            .into();
            return h.finish(
                OperationState::Cancelled,
                format!(
                    "cancelled after moving {moved} of {total} chunk(s) ({}); {} — what moved stays on the other drives",
                    size(bytes),
                    match back {
                        Ok(_) => "the drive is ACTIVE again".to_string(),
                        Err(e) => format!("the drive stays PHASING_OUT ({e})"),
                    }
                ),
                None,
                Some(OperationOutput::Drive(out)),
            );
        }
        h.step_bytes("move chunks", i as u64, total, (bytes, p.bytes));
        let (which, k) = (r.drive.clone(), key.clone());
        match with_store(&store, move |s| s.move_off(&which, &k)).await {
            Ok(0) => {}
            Ok(n) => {
                moved += 1;
                bytes += n;
            }
            Err(e) => {
                h.log(format!("{key}: {e}"));
                failed.push(key.clone());
            }
        }
        if let Some(rate) = r.rate.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
            let now = started.elapsed();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
    }
    h.step_bytes("finish", total, total, (bytes, p.bytes));
    out.moved_chunks = moved;
    out.moved_bytes = bytes;
    let which = r.drive.clone();
    match with_store(&store, move |s| s.finish_phase_out(&which)).await {
        Ok(()) => {
            out.state = "INACTIVE".into();
            h.finish(
                OperationState::Succeeded,
                format!(
                    "{} is INACTIVE: moved {moved} chunk(s) ({}) in {:.1} s; `axon drive remove` takes it out",
                    p.path.display(),
                    size(bytes),
                    started.elapsed().as_secs_f64()
                ),
                None,
                Some(OperationOutput::Drive(out)),
            )
        }
        Err(e) => {
            out.state = "PHASING_OUT".into();
            h.finish(
                OperationState::Failed,
                format!(
                    "moved {moved} chunk(s); {} could not be moved",
                    failed.len().max(1)
                ),
                Some(format!(
                    "{e} — the drive stays PHASING_OUT; run deactivate again to retry"
                )),
                Some(OperationOutput::Drive(out)),
            )
        }
    }
}

/// Activate: back in service.
pub async fn activate(h: OpHandle, store: SharedStore, r: DriveRequest) {
    h.step("activate", 0, 1);
    let Some((p, r)) = look(&h, &store, r).await else {
        return;
    };
    let mut out = outcome(&p, r.dry_run);
    if r.dry_run {
        return h.finish(
            OperationState::Succeeded,
            format!(
                "dry run: {} is {}; activate makes it ACTIVE (new chunks may be written to it)",
                p.path.display(),
                p.state
            ),
            None,
            Some(OperationOutput::Drive(out)),
        );
    }
    let which = r.drive.clone();
    match with_store(&store, move |s| s.activate(&which)).await {
        Ok(path) => {
            out.state = "ACTIVE".into();
            h.finish(
                OperationState::Succeeded,
                format!("{} is ACTIVE (was {})", path.display(), p.state),
                None,
                Some(OperationOutput::Drive(out)),
            )
        }
        Err(e) => h.finish(
            OperationState::Failed,
            "refused".into(),
            Some(e),
            Some(OperationOutput::Drive(out)),
        ),
    }
}

/// Remove: only an INACTIVE or FAILED drive leaves the store.
pub async fn remove(h: OpHandle, store: SharedStore, r: DriveRequest) {
    h.step("remove", 0, 1);
    let Some((p, r)) = look(&h, &store, r).await else {
        return;
    };
    let mut out = outcome(&p, r.dry_run);
    if !matches!(p.state, "INACTIVE" | "FAILED") {
        out.refusals.push(format!(
            "it is {}: deactivate it first (`axon drive deactivate`), which moves its chunks off",
            p.state
        ));
    }
    if r.dry_run {
        return h.finish(
            OperationState::Succeeded,
            if out.refusals.is_empty() {
                format!(
                    "dry run: would take {} ({}) out of the store{}",
                    p.path.display(),
                    p.state,
                    if p.chunks > 0 {
                        format!(
                            "; its {} chunk(s) are lost there and rewritten from parity",
                            p.chunks
                        )
                    } else {
                        String::new()
                    }
                )
            } else {
                format!("dry run: would be refused: {}", out.refusals.join("; "))
            },
            None,
            Some(OperationOutput::Drive(out)),
        );
    }
    let which = r.drive.clone();
    match with_store(&store, move |s| s.remove_drive(&which)).await {
        Ok(path) => {
            out.state = "REMOVED".into();
            h.finish(
                OperationState::Succeeded,
                format!(
                    "{} removed from the store; the device can be pulled",
                    path.display()
                ),
                None,
                Some(OperationOutput::Drive(out)),
            )
        }
        Err(e) => h.finish(
            OperationState::Failed,
            "refused".into(),
            Some(e),
            Some(OperationOutput::Drive(out)),
        ),
    }
}

/// Add: format the drive for this store (refusing one that holds data, unless forced),
/// add it ACTIVE; new chunks go to the drives with the most free space first, so it
/// fills from then on.
pub async fn add(h: OpHandle, store: SharedStore, r: DriveRequest) {
    h.step("format", 0, 2);
    let path = std::path::PathBuf::from(&r.drive);
    let (dry, force, sz) = (r.dry_run, r.force, r.size);
    let p2 = path.clone();
    let res = with_store(&store, move |s| {
        let o = crate::dataplane::drive::FormatOptions {
            size: (sz > 0).then_some(sz),
            chunk_size: s.chunk_size(),
            cluster: s.cluster_id(),
            force,
        };
        if dry {
            return Ok(None);
        }
        crate::dataplane::drive::format(&p2, &o)?;
        let id = s.add_drive(&p2, force)?;
        Ok(Some(id))
    })
    .await;
    let mut out = DriveOutcome {
        path: path.display().to_string(),
        dry_run: r.dry_run,
        ..Default::default()
    };
    match res {
        Ok(None) => h.finish(
            OperationState::Succeeded,
            format!(
                "dry run: would format {} for this store and add it ACTIVE (new chunks prefer the emptiest drives)",
                path.display()
            ),
            None,
            Some(OperationOutput::Drive(out)),
        ),
        Ok(Some(id)) => {
            h.step("phase in", 1, 2);
            out.drive = id.to_string();
            out.state = "ACTIVE".into();
            h.finish(
                OperationState::Succeeded,
                format!(
                    "{} formatted and added (drive {id}), ACTIVE; new chunks fill it first",
                    path.display()
                ),
                None,
                Some(OperationOutput::Drive(out)),
            )
        }
        Err(e) => h.finish(
            OperationState::Failed,
            "refused".into(),
            Some(e),
            Some(OperationOutput::Drive(out)),
        ),
    }
}

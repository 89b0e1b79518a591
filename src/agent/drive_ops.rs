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
use futures::StreamExt;
use humansize::{BINARY, format_size};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
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

/// Why `excess` bytes of drive `p` (what the node's other drives cannot hold) cannot go
/// to other members; None when they can: this agent is a cluster member, the other
/// members have room for it, and the failure domains left with ACTIVE drives still number
/// k + m + hot spares.
async fn elsewhere_refusal(
    host: &Option<Arc<ClusterHost>>,
    p: &PhaseOut,
    excess: u64,
) -> Option<String> {
    let here = format!(
        "it holds {} but the node's other ACTIVE drives have {} free",
        size(p.bytes),
        size(p.others_free)
    );
    let view = match host {
        Some(h) => h.data_view().await.ok(),
        None => None,
    };
    let Some((_, layout, _, config)) = view else {
        return Some(format!("{here}: add a drive first (`axon drive add`)"));
    };
    let me = layout.me;
    let room: u64 = layout
        .writable
        .iter()
        .filter(|d| d.node != me)
        .map(|d| d.free)
        .sum();
    // A chunk leaving this node needs a node outside its stripe: k + m other members that
    // take chunks. And with no other ACTIVE drive this node stops being a failure domain
    // that holds chunks: the rest must still number k + m + hot spares.
    let others = layout.writable.iter().filter(|d| d.node != me).count();
    let leaves = p.others_active == 0;
    let (k, m, spares) = (config.k, config.m, config.hot_spares);
    if leaves && others < k + m + spares {
        return Some(format!(
            "{here}, and without it this node has no ACTIVE drive: {others} failure domain(s) would remain to hold chunks, {k}+{m} with {spares} hot spare(s) needs {} — add a drive first (`axon drive add`)",
            k + m + spares
        ));
    }
    if others < k + m {
        return Some(format!(
            "{here}, and {others} other member(s) take chunks: a chunk moved off this node needs one outside its {k}+{m} stripe, so k + m = {} — add a drive first (`axon drive add`)",
            k + m
        ));
    }
    if room < excess {
        return Some(format!(
            "{here} and the other members {}: {} must go elsewhere — add a drive first (`axon drive add`)",
            size(room),
            size(excess)
        ));
    }
    None
}

/// Moving a phasing-out drive's chunks to other members: the cluster as this member sees
/// it, and this node's manifests by object, to find each chunk's object.
struct Elsewhere {
    fe: super::data::Fe,
    layout: super::data::Layout,
    by_object: std::collections::HashMap<String, String>,
}

impl Elsewhere {
    /// The member's view, once it has one (up to 60 s: a phase-out resumed as the agent
    /// starts waits for the cluster to be up and the members' free space to be known).
    async fn new(host: &Arc<ClusterHost>) -> Option<Elsewhere> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (fe, layout, net) = loop {
            match host.data_view().await {
                Ok((fe, layout, net, _)) if !net.free().is_empty() => break (fe, layout, net),
                _ if Instant::now() >= deadline => return None,
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let node = net.node();
        let all = tokio::task::spawn_blocking(move || node.manifests(""))
            .await
            .ok()?
            .ok()?;
        let by_object = all
            .into_iter()
            .filter(|m| !m.deleted)
            .map(|m| (m.object, m.key))
            .collect();
        Some(Elsewhere {
            fe,
            layout,
            by_object,
        })
    }

    /// Moves chunk `key` (held here) to another member; its bytes.
    async fn move_out(&self, key: &str) -> Result<u64, String> {
        let (object, i, idx) = crate::dataplane::cluster::objects::parse_chunk_key(key)
            .ok_or_else(|| "not a chunk of a cluster object: left on the drive".to_string())?;
        let orphan =
            "no manifest names it: left to the orphan collector, then run deactivate again";
        let name = self.by_object.get(object).ok_or(orphan)?;
        let cur = self
            .fe
            .newest(name, &self.layout)
            .await
            .map_err(|e| format!("its manifest: {e}"))?
            .filter(|m| !m.deleted && m.object == object)
            .ok_or(orphan)?;
        self.fe
            .move_out(cur, i, idx, &self.layout)
            .await
            .map(|(_, b)| b)
            .map_err(|e| e.to_string())
    }
}

/// Objects whose chunks move to other members at once during a phase-out: each move is a
/// read here, a write there and a manifest update on its holders, mostly waiting on the
/// network, so a few in flight keep the links busy. Chunks of one object move one after
/// the other (each move publishes the object's manifest anew).
const MOVES_IN_FLIGHT: usize = 4;

/// A phase-out's account of what moved.
#[derive(Default)]
struct Tally {
    moved: u64,
    bytes: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, n: u64) {
        if n > 0 {
            self.moved += 1;
            self.bytes += n;
        }
    }
}

/// How long `bytes` moved since `started` are ahead of `rate` (bytes per second); zero
/// when they are not, or with no rate.
fn due(bytes: u64, rate: Option<u64>, started: Instant) -> Duration {
    rate.filter(|r| *r > 0).map_or(Duration::ZERO, |rate| {
        Duration::from_secs_f64(bytes as f64 / rate as f64).saturating_sub(started.elapsed())
    })
}

/// Waits as long as `bytes` moved since `started` are ahead of `rate`.
async fn pace(bytes: u64, rate: Option<u64>, started: Instant) {
    let ahead = due(bytes, rate, started);
    if !ahead.is_zero() {
        tokio::time::sleep(ahead).await;
    }
}

/// Moves `keys` to other members: the chunks of one object in turn, up to
/// `MOVES_IN_FLIGHT` objects at once; each key with its outcome as it completes. A move
/// starts only while the bytes moved since `started` (those of `already`, then these) are
/// within `rate`, so the moves under way run on while the next waits its turn. Once
/// `cancel` fires no move starts, and the stream ends when those under way are done.
fn move_out_all<'a>(
    e: &'a Elsewhere,
    keys: Vec<String>,
    cancel: &tokio_util::sync::CancellationToken,
    (rate, started, already): (Option<u64>, Instant, u64),
) -> impl futures::Stream<Item = (String, Result<u64, String>)> + 'a {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for k in keys {
        let object = crate::dataplane::cluster::objects::parse_chunk_key(&k)
            .map_or_else(|| k.clone(), |(o, _, _)| o.to_string());
        let g = *index.entry(object).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(k);
    }
    let cancel = cancel.clone();
    let moved = Arc::new(std::sync::atomic::AtomicU64::new(already));
    futures::stream::iter(groups.into_iter().map(move |g| {
        let (cancel, moved) = (cancel.clone(), moved.clone());
        Box::pin(futures::stream::unfold(g.into_iter(), move |mut rest| {
            let (cancel, moved) = (cancel.clone(), moved.clone());
            async move {
                let k = rest.next()?;
                // Until the bytes moved (counted afresh after each wait: moves finish
                // meanwhile) are within the rate, or a cancel.
                loop {
                    let ahead = due(moved.load(Relaxed), rate, started);
                    if ahead.is_zero() {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(ahead) => {}
                        _ = cancel.cancelled() => return None,
                    }
                }
                // `select!` picks a ready branch at random: a cancel that came with the
                // end of a wait is seen here.
                if cancel.is_cancelled() {
                    return None;
                }
                let r = e.move_out(&k).await;
                if let Ok(n) = r {
                    moved.fetch_add(n, Relaxed);
                }
                Some(((k, r), rest))
            }
        }))
    }))
    .flatten_unordered(MOVES_IN_FLIGHT)
}

/// Ends a cancelled phase-out: the drive ACTIVE again, what moved stays where it went.
async fn cancelled(
    h: &OpHandle,
    store: &SharedStore,
    r: &DriveRequest,
    mut out: DriveOutcome,
    tally: &Tally,
    total: u64,
) {
    forget_rate(store, r).await;
    let which = r.drive.clone();
    let back = with_store(store, move |s| s.activate(&which)).await;
    let (moved, bytes) = (tally.moved, tally.bytes);
    out.moved_chunks = moved;
    out.moved_bytes = bytes;
    out.state = if back.is_ok() {
        "ACTIVE"
    } else {
        "PHASING_OUT"
    }
    .into();
    h.finish(
        OperationState::Cancelled,
        format!(
            "cancelled after moving {moved} of {total} chunk(s) ({}); {} — what moved stays where it went",
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
    // What the node's other drives cannot hold goes to other members, if it is one.
    let excess = p.bytes.saturating_sub(p.others_free);
    if excess > 0 {
        // A resumed phase-out was checked when it started; right after a restart the
        // members' free space is not known yet, and its drive must not stay stuck.
        let why = if p.state == "PHASING_OUT" {
            None
        } else {
            elsewhere_refusal(&host, &p, excess).await
        };
        match why {
            None => out.to_other_nodes = excess,
            Some(why) => out.refusals.push(why),
        }
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
                "dry run: would move {} chunk(s) ({}) off {} to {}, then mark it INACTIVE",
                p.chunks,
                size(p.bytes),
                p.path.display(),
                if excess == 0 {
                    "the node's other drives".to_string()
                } else {
                    format!(
                        "the node's other drives ({}) and other members ({})",
                        size(p.bytes - excess),
                        size(excess)
                    )
                }
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
    let spill = excess > 0;
    let p = match with_store(&store, move |s| s.begin_phase_out(&which, spill)).await {
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
    remember_rate(&h, &store, &r).await;
    let total = p.keys.len() as u64;
    let started = Instant::now();
    // Chunks the node's other drives still take; the rest go to other members.
    let cs = p.bytes.checked_div(p.chunks).unwrap_or(1);
    let mut local_slots = p.others_free / cs.max(1);
    let elsewhere = match (spill, &host) {
        (true, Some(host)) => Elsewhere::new(host).await,
        _ => None,
    };
    if spill && elsewhere.is_none() {
        h.log(
            "this node's cluster view is not available: only the node's other drives take chunks",
        );
    }
    // The node's other drives first, one chunk at a time (disk to disk on this node);
    // what they cannot take goes to other members afterwards, several objects at a time.
    let mut remote: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    for (i, key) in p.keys.iter().enumerate() {
        if h.cancel.is_cancelled() {
            return cancelled(&h, &store, &r, out, &tally, total).await;
        }
        if local_slots == 0 && elsewhere.is_some() {
            remote.push(key.clone());
            continue;
        }
        h.step_bytes("move chunks", i as u64, total, (tally.bytes, p.bytes));
        let (which, k) = (r.drive.clone(), key.clone());
        match with_store(&store, move |s| s.move_off(&which, &k)).await {
            Ok(n) => {
                local_slots = local_slots.saturating_sub(1);
                tally.add(n);
            }
            // Full after all (the drives' free space moves with the IO): another member.
            Err(_) if elsewhere.is_some() => remote.push(key.clone()),
            Err(e) => {
                h.log(format!("{key}: {e}"));
                tally.failed += 1;
            }
        }
        pace(tally.bytes, r.rate, started).await;
    }
    if let Some(e) = elsewhere.as_ref().filter(|_| !remote.is_empty()) {
        h.log(format!(
            "moving {} chunk(s) to other members, {MOVES_IN_FLIGHT} objects at a time",
            remote.len()
        ));
        let done_here = total - remote.len() as u64;
        let mut moves = move_out_all(e, remote, &h.cancel, (r.rate, started, tally.bytes));
        let mut i = done_here;
        while let Some((key, result)) = moves.next().await {
            match result {
                Ok(n) => {
                    tally.add(n);
                    if n > 0 {
                        out.moved_to_other_nodes += 1;
                    }
                }
                Err(e) => {
                    h.log(format!("{key}: {e}"));
                    tally.failed += 1;
                }
            }
            i += 1;
            h.step_bytes("move chunks", i, total, (tally.bytes, p.bytes));
        }
        // Cancelled: the moves under way finished (none was cut off halfway).
        if h.cancel.is_cancelled() {
            return cancelled(&h, &store, &r, out, &tally, total).await;
        }
    }
    let (moved, bytes) = (tally.moved, tally.bytes);
    h.step_bytes("finish", total, total, (bytes, p.bytes));
    out.moved_chunks = moved;
    out.moved_bytes = bytes;
    let which = r.drive.clone();
    match with_store(&store, move |s| s.finish_phase_out(&which)).await {
        Ok(()) => {
            forget_rate(&store, &r).await;
            out.state = "INACTIVE".into();
            h.finish(
                OperationState::Succeeded,
                format!(
                    "{} is INACTIVE: moved {moved} chunk(s) ({}){} in {:.1} s; `axon drive remove` takes it out",
                    p.path.display(),
                    size(bytes),
                    match out.moved_to_other_nodes {
                        0 => String::new(),
                        n => format!(", {n} of them to other members"),
                    },
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
                    tally.failed.max(1)
                ),
                Some(format!(
                    "{e} — the drive stays PHASING_OUT; run deactivate again to retry"
                )),
                Some(OperationOutput::Drive(out)),
            )
        }
    }
}

/// Keeps the rate of the drive's phase-out or phase-in in the store, so that an agent
/// restart resumes it at that rate.
async fn remember_rate(h: &OpHandle, store: &SharedStore, r: &DriveRequest) {
    let (which, rate) = (r.drive.clone(), r.rate);
    if let Err(e) = with_store(store, move |s| s.set_move_rate(&which, rate)).await {
        h.log(format!(
            "the rate could not be recorded ({e}): a restart would resume without a limit"
        ));
    }
}

async fn forget_rate(store: &SharedStore, r: &DriveRequest) {
    let which = r.drive.clone();
    if let Err(e) = with_store(store, move |s| s.set_move_rate(&which, None)).await {
        tracing::warn!("drive {}: forgetting its move rate: {e}", r.drive);
    }
}

/// Phase-in: PHASING_IN (the drive takes new chunks), then chunks moved onto it from the
/// node's fuller drives at `r.rate` until every drive is about as full as the others, then
/// ACTIVE. Cancelled, the drive is ACTIVE with what moved staying moved; cut short by a
/// restart, the agent resumes it. `done` says what happened to the drive before.
pub async fn phase_in(
    h: OpHandle,
    store: SharedStore,
    r: DriveRequest,
    mut out: DriveOutcome,
    done: &str,
) {
    h.step("phase in", 1, 2);
    let which = r.drive.clone();
    let p = match with_store(&store, move |s| s.begin_phase_in(&which)).await {
        Ok(p) => p,
        Err(e) => {
            return h.finish(
                OperationState::Failed,
                "phase-in refused".into(),
                Some(e),
                Some(OperationOutput::Drive(out)),
            );
        }
    };
    out.path = p.path.display().to_string();
    out.state = "PHASING_IN".into();
    out.chunks = p.moves.len() as u64;
    out.bytes = p.bytes;
    h.log(format!(
        "{} is PHASING_IN: moving {} chunk(s) ({}) onto it from the node's fuller drives",
        p.path.display(),
        p.moves.len(),
        size(p.bytes)
    ));
    remember_rate(&h, &store, &r).await;
    let total = p.moves.len() as u64;
    let started = Instant::now();
    let (mut moved, mut bytes, mut failed) = (0u64, 0u64, 0u64);
    for (i, (from, key)) in p.moves.iter().enumerate() {
        if h.cancel.is_cancelled() {
            break;
        }
        h.step_bytes("move chunks", i as u64, total, (bytes, p.bytes));
        let (from, k, to) = (from.clone(), key.clone(), p.drive.clone());
        match with_store(&store, move |s| s.move_onto(&from, &k, &to)).await {
            Ok(0) => {}
            Ok(n) => {
                moved += 1;
                bytes += n;
            }
            Err(e) => {
                failed += 1;
                h.log(format!("{key}: {e}"));
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
    out.moved_chunks = moved;
    out.moved_bytes = bytes;
    let which = r.drive.clone();
    let active = with_store(&store, move |s| s.finish_phase_in(&which)).await;
    if active.is_ok() {
        forget_rate(&store, &r).await;
    }
    out.state = if active.is_ok() {
        "ACTIVE"
    } else {
        "PHASING_IN"
    }
    .into();
    let how = format!(
        "{} {done}; {} {moved} of {total} chunk(s) ({}) onto it in {:.1} s{}",
        p.path.display(),
        if h.cancel.is_cancelled() {
            "phase-in cancelled after moving"
        } else {
            "moved"
        },
        size(bytes),
        started.elapsed().as_secs_f64(),
        if failed > 0 {
            format!(" ({failed} could not be moved: see the log)")
        } else {
            String::new()
        }
    );
    match active {
        Ok(()) if h.cancel.is_cancelled() => h.finish(
            OperationState::Cancelled,
            format!("{how}; ACTIVE — what moved stays"),
            None,
            Some(OperationOutput::Drive(out)),
        ),
        Ok(()) if failed > 0 => h.finish(
            OperationState::Failed,
            format!("{how}; ACTIVE"),
            Some(format!(
                "{failed} chunk(s) could not be moved onto it (see the log); the drive is in service and takes new chunks"
            )),
            Some(OperationOutput::Drive(out)),
        ),
        Ok(()) => h.finish(
            OperationState::Succeeded,
            format!("{how}; ACTIVE"),
            None,
            Some(OperationOutput::Drive(out)),
        ),
        Err(e) => h.finish(
            OperationState::Failed,
            how,
            Some(format!(
                "{e} — the drive stays PHASING_IN; it is resumed when the agent restarts"
            )),
            Some(OperationOutput::Drive(out)),
        ),
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
        let id = s.add_drive_as(&p2, force, crate::dataplane::drive::DriveState::PhasingIn)?;
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
                "dry run: would format {} for this store, add it PHASING_IN, move chunks onto it from the node's fuller drives until they are about as full, then mark it ACTIVE",
                path.display()
            ),
            None,
            Some(OperationOutput::Drive(out)),
        ),
        Ok(Some(id)) => {
            out.drive = id.to_string();
            h.log(format!(
                "{} formatted and added (drive {id}); phasing it in",
                path.display()
            ));
            let r = DriveRequest {
                drive: id.to_string(),
                ..r
            };
            phase_in(h, store, r, out, "formatted and added").await
        }
        Err(e) => h.finish(
            OperationState::Failed,
            "refused".into(),
            Some(e),
            Some(OperationOutput::Drive(out)),
        ),
    }
}

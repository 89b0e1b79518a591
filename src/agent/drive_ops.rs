//! The drive operations of part 7 on the agent that owns the drive (OperationService):
//! deactivate (phase out: the drive's chunks move to the node's other drives at a bounded
//! rate, then INACTIVE; cancellable, resumed when the agent restarts), activate, remove
//! (only INACTIVE or FAILED) and add (format, then in service). Each shows what it will
//! do first; with `dry_run` that preview is all it does, after every check the real run
//! makes: one the real run would refuse ends FAILED as it would, with its refusal. The
//! store's drive states are the source: the cluster's configuration follows them
//! (`member::register_drives`); a drive's superblock records its state when it joins the
//! store and when it leaves it (remove).

use super::member::SharedStore;
use super::operations::OpHandle;
use super::raft::ClusterHost;
use crate::dataplane::cluster::objects::{Manifest, NodeId, parse_chunk_key};
use crate::dataplane::drive::DriveState;
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

/// Ends a dry run as its real run would end: SUCCEEDED with what it would do (`would`),
/// or, when the real run would be refused, FAILED with the same refusals as its error
/// (so the caller exits as the real run would), the summary saying it was a dry run.
fn finish_dry_run(h: &OpHandle, out: DriveOutcome, would: String) {
    if out.refusals.is_empty() {
        h.step("preview", 1, 1);
        return h.finish(
            OperationState::Succeeded,
            would,
            None,
            Some(OperationOutput::Drive(out)),
        );
    }
    let why = out.refusals.join("; ");
    h.finish(
        OperationState::Failed,
        format!("dry run: would be refused: {why}"),
        Some(why),
        Some(OperationOutput::Drive(out)),
    )
}

/// Ends a real run its checks refused (the same checks a dry run reports).
fn refused(h: &OpHandle, out: DriveOutcome) {
    let why = out.refusals.join("; ");
    h.finish(
        OperationState::Failed,
        "refused".into(),
        Some(why),
        Some(OperationOutput::Drive(out)),
    )
}

/// The store's k and m, from its status.
async fn scheme(store: &SharedStore) -> Option<(usize, usize)> {
    let st = with_store(store, |s| s.status()).await.ok()?;
    let (k, m) = st.scheme.split_once('+')?;
    Some((k.parse().ok()?, m.parse().ok()?))
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
    h.step("preview", 0, if r.dry_run { 1 } else { 3 });
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
    // The store's own checks as it starts the phase-out (`Store::begin_phase_out`), so
    // that a dry run finds them too.
    let spill = excess > 0;
    if let Some((k, m)) = scheme(&store).await {
        if spill && k + m != 1 && out.to_other_nodes > 0 {
            out.refusals.push(format!(
                "a {k}+{m} store keeps its stripes on its own drives; only a cluster member's 1+0 store moves chunks to other nodes"
            ));
        }
        if !spill && (p.others_active as usize) < k + m {
            out.refusals.push(format!(
                "without it {} ACTIVE drive(s) remain, a {k}+{m} stripe needs {} — add a drive first",
                p.others_active,
                k + m
            ));
        }
    }
    for why in &out.refusals {
        h.log(format!(
            "{}: {why}",
            if r.dry_run {
                "would be refused"
            } else {
                "refused"
            }
        ));
    }
    if r.dry_run {
        let summary = format!(
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
        );
        return finish_dry_run(&h, out, summary);
    }
    if !out.refusals.is_empty() {
        return refused(&h, out);
    }
    h.step("phase out", 1, 3);
    let which = r.drive.clone();
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
    let p = match with_store(&store, move |s| {
        let p = s.begin_phase_in(&which)?;
        let cs = u64::from(s.chunk_size());
        let capacity = s
            .drives()
            .iter()
            .find(|d| d.id == p.drive)
            .map_or(0, |d| d.slots * cs);
        Ok((p, capacity))
    })
    .await
    {
        Ok((p, capacity)) => {
            out.capacity = capacity;
            p
        }
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
    // Moves tried (each moved, already gone or failed): all of them unless cancelled.
    let mut tried = 0u64;
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
        tried += 1;
        if let Some(rate) = r.rate.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
            let now = started.elapsed();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
    }
    h.step_bytes("finish", tried, total, (bytes, p.bytes));
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

/// Activate: back in service. Refused, as `Store::activate` refuses it, for a FAILED or
/// unreadable drive.
pub async fn activate(h: OpHandle, store: SharedStore, r: DriveRequest) {
    h.step(if r.dry_run { "preview" } else { "activate" }, 0, 1);
    let Some((p, r)) = look(&h, &store, r).await else {
        return;
    };
    let mut out = outcome(&p, r.dry_run);
    let id = p.drive.clone();
    let status = with_store(&store, move |s| {
        Ok(s.drives().into_iter().find(|d| d.id == id))
    })
    .await
    .ok()
    .flatten();
    if let Some(d) = status.filter(|d| d.state == "FAILED" || !d.available) {
        out.refusals.push(format!(
            "it is {}{}: a failed drive is removed (`axon drive remove`) and replaced (`axon drive add`), not activated",
            d.state,
            d.problem.map(|p| format!(" ({p})")).unwrap_or_default()
        ));
    }
    if r.dry_run {
        let would = if p.state == "ACTIVE" {
            format!(
                "dry run: {} is ACTIVE already: activate changes nothing",
                p.path.display()
            )
        } else {
            format!(
                "dry run: {} is {}; activate makes it ACTIVE (new chunks may be written to it)",
                p.path.display(),
                p.state
            )
        };
        return finish_dry_run(&h, out, would);
    }
    if !out.refusals.is_empty() {
        return refused(&h, out);
    }
    let which = r.drive.clone();
    match with_store(&store, move |s| s.activate(&which)).await {
        Ok(path) => {
            out.state = "ACTIVE".into();
            h.step("activate", 1, 1);
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

/// What became of the superblock of a drive taken out of the store (`mark_removed`).
#[derive(Debug, PartialEq, Eq)]
enum Marked {
    /// Both copies now say the state the drive left in.
    Written(DriveState),
    /// The drive is gone (pulled, or its file deleted): nothing to write to.
    Gone,
    /// Its path now holds another drive (or none): left alone.
    Another(String),
}

/// Records on a drive just taken out of the store the state it left in — INACTIVE (phased
/// out: nothing of the store's is on it) or FAILED — so that its superblock no longer says
/// the state it was added in: `axon drive info` tells the truth, and adding it again asks
/// for --force only where a FAILED one calls for it. Written only over drive `id` of
/// `cluster`.
fn mark_removed(
    path: &std::path::Path,
    id: uuid::Uuid,
    cluster: uuid::Uuid,
    state: DriveState,
) -> Result<Marked, String> {
    use crate::dataplane::drive::{self, DriveError, StateSet};
    // Checked and written through one open handle: a drive swapped in at the path in
    // between cannot receive this one's state.
    match drive::set_state_of(path, id, cluster, state) {
        Ok(StateSet::Set(_)) => Ok(Marked::Written(state)),
        Ok(StateSet::Another(sb)) => Ok(Marked::Another(format!(
            "it holds drive {} of cluster {}",
            sb.drive, sb.cluster
        ))),
        Err(DriveError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound
                || matches!(source.raw_os_error(), Some(libc::ENXIO | libc::ENODEV)) =>
        {
            Ok(Marked::Gone)
        }
        Err(DriveError::Refused { why, .. }) => Ok(Marked::Another(why)),
        Err(e) => Err(e.to_string()),
    }
}

/// `keys` (chunk keys on a drive) split into those a live manifest this node holds places
/// here (lost chunks, rewritten from parity) and the rest (orphans, for the collector).
/// Only this node's copies of the manifests are asked: one that is older than the newest
/// may call a chunk an orphan that repair then rewrites here (`repair_own` asks the
/// members); the words of a refusal, never what is freed, depend on it. Without the
/// cluster's view (not a member), every key counts as placed here.
async fn placed_here(
    host: &Option<Arc<ClusterHost>>,
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let Some(host) = host else {
        return (keys.to_vec(), Vec::new());
    };
    let Ok((_, _, net, _)) = host.data_view().await else {
        return (keys.to_vec(), Vec::new());
    };
    let (node, me) = (net.node(), net.me());
    let Ok(Ok(all)) = tokio::task::spawn_blocking(move || node.manifests("")).await else {
        return (keys.to_vec(), Vec::new());
    };
    split_placed(keys, &all, me)
}

/// `placed_here`'s rule: a chunk key is placed on node `me` when a live manifest among
/// `all` puts that chunk of that stripe there; a key that is not a chunk key counts as
/// placed (a single node's store object).
fn split_placed(keys: &[String], all: &[Manifest], me: NodeId) -> (Vec<String>, Vec<String>) {
    let live: std::collections::HashMap<&str, &Manifest> = all
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| (m.object.as_str(), m))
        .collect();
    keys.iter().cloned().partition(|k| {
        parse_chunk_key(k)
            .is_none_or(|(o, s, i)| live.get(o).is_some_and(|m| m.node_of(s, i) == Some(me)))
    })
}

/// How long writing a removed drive's superblock may take (a failing device may hang).
const MARK_WITHIN: Duration = Duration::from_secs(10);

/// Remove: only an INACTIVE or FAILED drive with no chunk recorded on it leaves the store
/// (as `Store::remove_drive` allows); its superblock then records the state it left in.
pub async fn remove(
    h: OpHandle,
    store: SharedStore,
    host: Option<Arc<ClusterHost>>,
    r: DriveRequest,
) {
    h.step(if r.dry_run { "preview" } else { "remove" }, 0, 1);
    let Some((p, r)) = look(&h, &store, r).await else {
        return;
    };
    h.log(format!(
        "{} ({}, {}): {} object(s) with chunks recorded on it",
        p.path.display(),
        p.drive,
        p.state,
        p.chunks
    ));
    let mut out = outcome(&p, r.dry_run);
    if !matches!(p.state, "INACTIVE" | "FAILED") {
        out.refusals.push(format!(
            "it is {}: deactivate it first (`axon drive deactivate`), which moves its chunks off; only an INACTIVE or FAILED drive is removed",
            p.state
        ));
    } else if !p.keys.is_empty() {
        let (named, orphans) = placed_here(&host, &p.keys).await;
        if let Some(first) = named.first() {
            out.refusals.push(format!(
                "{} chunk(s) recorded on it still belong to objects (first: {first}) — they are being rewritten from parity while IO is started (`axon start-io`); remove it once none are left (`axon cluster status` shows no chunks lost)",
                named.len()
            ));
        } else if let Some(first) = orphans.first() {
            out.refusals.push(format!(
                "{} chunk(s) recorded on it belong to no object that places them on this node (first: {first}): orphans of an overwrite, a delete or a rebuild elsewhere, nothing to rewrite. The orphan collector frees them once they have been orphans for its grace period (`axon agent --orphan-grace`, 10 min by default); remove it then",
                orphans.len()
            ));
        }
    }
    if r.dry_run {
        let would = format!(
            "dry run: would take {} ({}) out of the store; the device could then be pulled",
            p.path.display(),
            p.state
        );
        return finish_dry_run(&h, out, would);
    }
    if !out.refusals.is_empty() {
        return refused(&h, out);
    }
    let which = r.drive.clone();
    let removed = with_store(&store, move |s| {
        let cluster = s.cluster_id();
        s.remove_drive(&which).map(|path| (path, cluster))
    })
    .await;
    let (path, cluster) = match removed {
        Ok(x) => x,
        Err(e) => {
            return h.finish(
                OperationState::Failed,
                "refused".into(),
                Some(e),
                Some(OperationOutput::Drive(out)),
            );
        }
    };
    out.state = "REMOVED".into();
    let left_as = if p.state == "FAILED" {
        DriveState::Failed
    } else {
        DriveState::Inactive
    };
    match uuid::Uuid::parse_str(&p.drive) {
        Ok(id) => {
            let at = path.clone();
            let job = tokio::task::spawn_blocking(move || mark_removed(&at, id, cluster, left_as));
            h.log(match tokio::time::timeout(MARK_WITHIN, job).await {
                Ok(Ok(Ok(Marked::Written(s)))) => format!(
                    "its superblock now says {}: `axon drive info` shows it out of the store",
                    s.as_str()
                ),
                Ok(Ok(Ok(Marked::Gone))) => {
                    "the drive is gone: no superblock to update".to_string()
                }
                Ok(Ok(Ok(Marked::Another(what)))) => {
                    format!("its superblock was left alone: {what}")
                }
                Ok(Ok(Err(e))) => format!(
                    "its superblock could not be updated ({e}): it still says the state the drive was added in"
                ),
                Ok(Err(e)) => format!("its superblock could not be updated ({e})"),
                Err(_) => format!(
                    "its superblock could not be updated: the drive did not answer within {} s",
                    MARK_WITHIN.as_secs()
                ),
            });
        }
        Err(e) => h.log(format!("its superblock was not updated ({e})")),
    }
    h.step("remove", 1, 1);
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

/// Whether `a` and `b` name one drive: the same path, file or block device.
fn same_drive(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if let (Ok(x), Ok(y)) = (std::path::absolute(a), std::path::absolute(b))
        && x == y
    {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => {
            (x.dev(), x.ino()) == (y.dev(), y.ino())
                || (x.file_type().is_block_device()
                    && y.file_type().is_block_device()
                    && x.rdev() == y.rdev())
        }
        _ => false,
    }
}

/// Why adding `path` (formatting it, then adding it) would be refused, found without
/// writing anything and in the words of the real run: a drive of this store is never
/// formatted over, --force or not; then `drive::format_check`. Otherwise the capacity it
/// brings.
fn add_check(s: &Store, path: &std::path::Path, size: u64, force: bool) -> Result<u64, String> {
    use crate::dataplane::drive::{self, DriveError, FormatOptions};
    // A FAILED (or unreadable) drive's path may hold its replacement: a device swapped
    // in place. Only the drive the record names is refused; a new one goes through
    // format's checks below (--force if it holds anything).
    let replaced = |d: &crate::dataplane::store::DriveStatus| {
        (d.state == "FAILED" || !d.available)
            && drive::open(path).map_or(true, |o| o.superblock.drive.to_string() != d.id)
    };
    if let Some(d) = s
        .drives()
        .into_iter()
        .find(|d| same_drive(&d.path, path) && !replaced(d))
    {
        return Err(DriveError::Refused {
            path: path.to_path_buf(),
            why: format!("is drive {} of this store ({})", d.id, d.state),
            remedy: if matches!(d.state, "INACTIVE" | "FAILED") {
                "remove it first (`axon drive remove`); --force does not format over a drive of the store"
            } else {
                "take it out first (`axon drive deactivate`, then `axon drive remove`); --force does not format over a drive in service"
            }
            .to_string(),
        }
        .to_string());
    }
    let cs = s.chunk_size();
    let o = FormatOptions {
        size: (size > 0).then_some(size),
        chunk_size: cs,
        cluster: s.cluster_id(),
        force,
    };
    let bytes = drive::format_check(path, &o).map_err(|e| e.to_string())?;
    Ok(drive::slots_for(bytes, cs) * u64::from(cs))
}

/// After the store did not take a drive this add formatted: removes the file if the add
/// created it, unless the store may have recorded the drive in its index by then (the
/// store writes the drive's new state into its superblock before its index names it, so a
/// superblock still as format left it was never recorded). What became of the file; None
/// when the add created none.
fn take_back(path: &std::path::Path, f: &crate::dataplane::drive::Formatted) -> Option<String> {
    use crate::dataplane::drive;
    let made = f.created?;
    if !drive::open(path).is_ok_and(|o| o.superblock == f.superblock) {
        return Some(format!(
            "{} (created by this add) was left in place: the store may have recorded it",
            path.display()
        ));
    }
    Some(match drive::remove_created(path, made) {
        Ok(true) => format!("{} (created by this add) was removed", path.display()),
        Ok(false) => format!(
            "{} no longer names the file this add created: nothing removed",
            path.display()
        ),
        Err(x) => format!(
            "{} (created by this add) could not be removed ({x}): remove it by hand",
            path.display()
        ),
    })
}

/// How an add went under the store's lock.
enum Added {
    Refused(String),
    /// A dry run: it would bring this capacity.
    Would(u64),
    /// Formatted and added: its id and capacity.
    Done(uuid::Uuid, u64),
    /// Formatted, but the store did not take it: why, and what became of a file the add
    /// created.
    Failed(String),
}

/// Add: format the drive for this store (refusing one that holds data, unless forced, and
/// a drive of this store whatever is passed), add it PHASING_IN, then phase it in. A dry
/// run makes every check the real run makes, and says what it would refuse.
pub async fn add(h: OpHandle, store: SharedStore, r: DriveRequest) {
    h.step(
        if r.dry_run { "preview" } else { "format" },
        0,
        if r.dry_run { 1 } else { 2 },
    );
    let path = std::path::PathBuf::from(&r.drive);
    let (dry, force, sz) = (r.dry_run, r.force, r.size);
    let p2 = path.clone();
    // Checked, formatted and added under one hold of the store: nothing moves in between.
    let res = with_store(&store, move |s| {
        let capacity = match add_check(s, &p2, sz, force) {
            Ok(c) => c,
            Err(why) => return Ok(Added::Refused(why)),
        };
        if dry {
            return Ok(Added::Would(capacity));
        }
        let o = crate::dataplane::drive::FormatOptions {
            size: (sz > 0).then_some(sz),
            chunk_size: s.chunk_size(),
            cluster: s.cluster_id(),
            force,
        };
        // A file this add creates is its own: an add that fails takes it back (format
        // does so itself if formatting fails), never a file or device that was there.
        let f = crate::dataplane::drive::format_tracked(&p2, &o)?;
        let sb = f.superblock;
        match s.add_drive_as(&p2, force, DriveState::PhasingIn) {
            Ok(id) => Ok(Added::Done(id, sb.slots * u64::from(sb.chunk_size))),
            Err(e) => Ok(Added::Failed(match take_back(&p2, &f) {
                Some(what) => format!("{e}; {what}"),
                None => e.to_string(),
            })),
        }
    })
    .await;
    let mut out = DriveOutcome {
        path: path.display().to_string(),
        dry_run: r.dry_run,
        ..Default::default()
    };
    match res {
        Ok(Added::Refused(why)) => {
            h.log(format!(
                "{}: {why}",
                if dry { "would be refused" } else { "refused" }
            ));
            out.refusals.push(why);
            if dry {
                finish_dry_run(&h, out, String::new())
            } else {
                refused(&h, out)
            }
        }
        Ok(Added::Would(capacity)) => {
            out.capacity = capacity;
            finish_dry_run(
                &h,
                out,
                format!(
                    "dry run: would format {} ({} of chunk slots) for this store, add it PHASING_IN, move chunks onto it from the node's fuller drives until they are about as full, then mark it ACTIVE",
                    path.display(),
                    size(capacity)
                ),
            )
        }
        Ok(Added::Done(id, capacity)) => {
            out.drive = id.to_string();
            out.capacity = capacity;
            h.log(format!(
                "{} formatted and added (drive {id}, {}); phasing it in",
                path.display(),
                size(capacity)
            ));
            let r = DriveRequest {
                drive: id.to_string(),
                ..r
            };
            phase_in(h, store, r, out, "formatted and added").await
        }
        Ok(Added::Failed(e)) | Err(e) => h.finish(
            OperationState::Failed,
            "refused".into(),
            Some(e),
            Some(OperationOutput::Drive(out)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::cluster::objects::{StripeMap, chunk_key};

    /// A FAILED drive's leftover chunks: those a live manifest places on this node are
    /// lost (rewritten from parity); the rest are orphans for the collector.
    #[test]
    fn leftover_chunks_split_into_placed_here_and_orphans() {
        let manifest = |object: &str, nodes: Vec<NodeId>, deleted: bool| Manifest {
            key: format!("k-{object}"),
            generation: 1,
            writer: 1,
            revision: 0,
            object: object.into(),
            size: 10,
            k: 2,
            m: 1,
            chunk_size: 4096,
            deleted,
            stripes: vec![StripeMap {
                len: 5,
                crcs: vec![0; nodes.len()],
                nodes,
            }],
        };
        let all = vec![
            manifest("a", vec![3, 7, 9], false),
            manifest("gone", vec![3, 7, 9], true),
        ];
        let keys = vec![
            chunk_key("a", 0, 1),    // a's chunk 1 is placed on node 7: lost
            chunk_key("a", 0, 2),    // on node 9 now (rebuilt elsewhere): orphan
            chunk_key("gone", 0, 1), // deleted object: orphan
            chunk_key("b", 0, 0),    // no manifest: orphan
            "plain".to_string(),     // not a chunk key: kept as placed
        ];
        let (placed, orphans) = split_placed(&keys, &all, 7);
        assert_eq!(placed, [chunk_key("a", 0, 1), "plain".to_string()]);
        assert_eq!(
            orphans,
            [
                chunk_key("a", 0, 2),
                chunk_key("gone", 0, 1),
                chunk_key("b", 0, 0)
            ]
        );
    }
    use crate::dataplane::drive::{self, FormatOptions};

    fn formatted(dir: &std::path::Path, name: &str, cluster: uuid::Uuid) -> std::path::PathBuf {
        let p = dir.join(name);
        drive::format(
            &p,
            &FormatOptions {
                size: Some(4 << 20),
                chunk_size: 64 << 10,
                cluster,
                force: false,
            },
        )
        .unwrap();
        drive::set_state(&p, DriveState::Active).unwrap();
        p
    }

    #[test]
    fn a_removed_drive_records_how_it_left_unless_gone_or_another() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = uuid::Uuid::new_v4();
        let p = formatted(dir.path(), "d0", cluster);
        let id = drive::open(&p).unwrap().superblock.drive;
        assert_eq!(
            mark_removed(&p, id, cluster, DriveState::Inactive),
            Ok(Marked::Written(DriveState::Inactive))
        );
        let sb = drive::open(&p).unwrap().superblock;
        assert_eq!(sb.state, DriveState::Inactive);
        // Both copies: the older one is not what a reader finds either.
        assert_eq!(
            drive::Superblock::decode(&std::fs::read(&p).unwrap()[4096..8192])
                .unwrap()
                .state,
            DriveState::Inactive
        );
        // A FAILED drive says FAILED.
        assert_eq!(
            mark_removed(&p, id, cluster, DriveState::Failed),
            Ok(Marked::Written(DriveState::Failed))
        );
        assert_eq!(
            drive::open(&p).unwrap().superblock.state,
            DriveState::Failed
        );
        // Pulled: nothing to do, no error.
        assert_eq!(
            mark_removed(&dir.path().join("gone"), id, cluster, DriveState::Inactive),
            Ok(Marked::Gone)
        );
        // Another drive at the path (or another cluster's): left alone.
        let q = formatted(dir.path(), "d1", cluster);
        let before = drive::open(&q).unwrap().superblock;
        assert!(matches!(
            mark_removed(&q, id, cluster, DriveState::Inactive),
            Ok(Marked::Another(_))
        ));
        assert!(matches!(
            mark_removed(&q, before.drive, uuid::Uuid::new_v4(), DriveState::Inactive),
            Ok(Marked::Another(_))
        ));
        assert_eq!(drive::open(&q).unwrap().superblock, before);
        // Not an axon drive at all: left alone.
        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![7u8; 16 << 10]).unwrap();
        assert!(matches!(
            mark_removed(&junk, id, cluster, DriveState::Inactive),
            Ok(Marked::Another(_))
        ));
        assert_eq!(std::fs::read(&junk).unwrap(), vec![7u8; 16 << 10]);
    }

    #[test]
    fn a_failed_add_takes_back_only_a_file_it_created_and_the_store_did_not_record() {
        let dir = tempfile::tempdir().unwrap();
        let o = FormatOptions {
            size: Some(4 << 20),
            chunk_size: 64 << 10,
            cluster: uuid::Uuid::new_v4(),
            force: true,
        };
        // Created by the add, untouched by the store: removed.
        let p = dir.path().join("new");
        let f = drive::format_tracked(&p, &o).unwrap();
        let said = take_back(&p, &f).unwrap();
        assert!(said.contains("was removed"), "{said}");
        assert!(!p.exists());
        // There before the add: never removed, nothing said.
        let old = dir.path().join("old");
        std::fs::write(&old, vec![0u8; 4 << 20]).unwrap();
        let f = drive::format_tracked(&old, &o).unwrap();
        assert_eq!(take_back(&old, &f), None);
        assert!(old.exists());
        // Created, but the store got as far as writing its state (it may be in the
        // index): left in place.
        let f = drive::format_tracked(&p, &o).unwrap();
        drive::set_state(&p, DriveState::PhasingIn).unwrap();
        let said = take_back(&p, &f).unwrap();
        assert!(said.contains("left in place"), "{said}");
        assert!(p.exists());
    }

    #[test]
    fn one_drive_by_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let hard = dir.path().join("hard");
        std::fs::hard_link(&a, &hard).unwrap();
        let other = dir.path().join("b");
        std::fs::write(&other, b"x").unwrap();
        assert!(same_drive(&a, &link));
        assert!(same_drive(&a, &hard));
        assert!(same_drive(&a, &dir.path().join(".").join("a")));
        assert!(!same_drive(&a, &other));
        // A drive of the store that is missing still owns its path.
        let missing = dir.path().join("missing");
        assert!(same_drive(&missing, &missing));
        assert!(!same_drive(&missing, &a));
    }
}

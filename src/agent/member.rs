//! A node's data plane hosted in a running agent: its store (with the scrubber that
//! publishes the engine's status), its cluster member (Raft) with its data port, and the
//! tasks that keep them in step (drive registration, protection and rebuild). `axon agent`
//! and `axon demo` host them the same way; `Hosted::shutdown` stops all of it, so the demo
//! can power a node off and on again inside one process.

use super::Agent;
use super::data::{DataHost, RebuildConfig, watch_data};
use super::raft::ClusterHost;
use crate::dataplane::cluster::objects::NodeData;
use crate::dataplane::store::{Scrubber, Store};
use crate::model::cluster::Command;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type SharedStore = Arc<Mutex<Store>>;
pub use super::containers::Mode as ContainerMode;

/// The scrubber's pace.
#[derive(Debug, Clone, Copy)]
pub struct ScrubOptions {
    /// Bytes read per second; None: unbounded.
    pub rate: Option<u64>,
    /// Pause between passes.
    pub every: Duration,
}

/// A cluster member's listeners and rebuild policy.
#[derive(Debug, Clone, Copy)]
pub struct MemberOptions {
    pub cluster_listen: SocketAddr,
    /// The data (chunk) port; needs a store.
    pub data_listen: Option<SocketAddr>,
    pub rebuild: RebuildConfig,
}

/// A store opened for hosting, with the manifests beside it once it serves a cluster.
#[derive(Clone)]
pub struct HostedStore {
    pub dir: PathBuf,
    pub store: SharedStore,
    /// Opened at the first `host` that serves data; kept across restarts in one process.
    pub node: Option<Arc<NodeData>>,
}

impl HostedStore {
    /// Opens the store in `dir` off the runtime, logging what opening found.
    pub async fn open(dir: &Path) -> anyhow::Result<HostedStore> {
        let d = dir.to_path_buf();
        let s = tokio::task::spawn_blocking(move || Store::open(&d)).await??;
        let r = s.recovery();
        for u in &r.unavailable {
            tracing::warn!("store: drive unavailable: {u}");
        }
        for m in &r.mismatches {
            tracing::warn!("store: {m}");
        }
        for w in &r.warnings {
            tracing::warn!("store: {w}");
        }
        if r.orphans_freed > 0 {
            tracing::info!(
                "store: freed {} orphaned chunks (writes that never committed)",
                r.orphans_freed
            );
        }
        Ok(HostedStore {
            dir: dir.to_path_buf(),
            store: Arc::new(Mutex::new(s)),
            node: None,
        })
    }
}

/// What an agent hosts beyond its collectors; stopped by `shutdown`.
pub struct Hosted {
    pub store: Option<HostedStore>,
    pub cluster: Option<Arc<ClusterHost>>,
    scrubber: Option<Scrubber>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Hosts `store` (if any) and a cluster member (if `member`) in the running agent `ag`,
/// whose state directory holds the membership (`<state dir>/cluster`). On error nothing
/// started here keeps running.
pub async fn host(
    ag: &Agent,
    state_dir: &Path,
    mut store: Option<HostedStore>,
    scrub: ScrubOptions,
    member: Option<MemberOptions>,
    containers: super::containers::Mode,
) -> anyhow::Result<Hosted> {
    let scrubber = store.as_ref().map(|s| {
        let state = ag.state.clone();
        Scrubber::start(
            s.store.clone(),
            scrub.rate,
            scrub.every,
            Box::new(move |s| match s.status() {
                Ok(st) => state.set_engine_status(st),
                Err(e) => tracing::warn!("store: status: {e}"),
            }),
        )
    });
    let mut hosted = Hosted {
        store: None,
        cluster: None,
        scrubber,
        tasks: Vec::new(),
    };
    if let Some(s) = &store {
        ag.state.set_store(s.store.clone());
        hosted
            .tasks
            .push(tokio::spawn(super::dp_report::publish(ag.state.clone())));
    }
    let Some(mo) = member else {
        resume_phase_outs(ag, store.as_ref(), None);
        if let Some(hs) = &store {
            hosted.tasks.push(tokio::spawn(start_containers(
                ag.state.clone(),
                hs.store.clone(),
                hs.node.clone(),
                containers,
            )));
        }
        hosted.store = store;
        return Ok(hosted);
    };
    let Some(identity) = ag.tls.clone() else {
        hosted.shutdown().await;
        anyhow::bail!(
            "--cluster-listen needs TLS (members authenticate each other by their certificates): drop --insecure"
        );
    };
    let data = match (mo.data_listen, store.as_mut()) {
        (Some(dl), Some(hs)) => {
            let node = match &hs.node {
                Some(n) => n.clone(),
                None => {
                    let (st, dir) = (hs.store.clone(), hs.dir.clone());
                    let opened =
                        tokio::task::spawn_blocking(move || NodeData::open(st, &dir)).await?;
                    match opened {
                        Ok(n) => {
                            let n = Arc::new(n);
                            hs.node = Some(n.clone());
                            n
                        }
                        Err(e) => {
                            hosted.shutdown().await;
                            return Err(e.into());
                        }
                    }
                }
            };
            match DataHost::bind(dl, node).await {
                Ok(d) => Some(d),
                Err(e) => {
                    hosted.shutdown().await;
                    anyhow::bail!(e);
                }
            }
        }
        _ => None,
    };
    let h = match ClusterHost::new(
        &state_dir.join("cluster"),
        mo.cluster_listen,
        identity,
        data,
        Some(Arc::new(super::audit::AuditLog::new(
            state_dir.join("audit.jsonl"),
        ))),
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            hosted.shutdown().await;
            return Err(e.into());
        }
    };
    ag.state.set_cluster_host(h.clone());
    if store.is_none() {
        hosted
            .tasks
            .push(tokio::spawn(super::dp_report::publish(ag.state.clone())));
    }
    if h.data_host().is_some() {
        hosted
            .tasks
            .push(tokio::spawn(watch_data(h.clone(), mo.rebuild)));
    }
    if let Some(hs) = &store {
        hosted
            .tasks
            .push(tokio::spawn(register_drives(h.clone(), hs.store.clone())));
    }
    resume_phase_outs(ag, store.as_ref(), Some(h.clone()));
    if let Some(hs) = &store {
        hosted.tasks.push(tokio::spawn(start_containers(
            ag.state.clone(),
            hs.store.clone(),
            hs.node.clone(),
            containers,
        )));
    }
    hosted.cluster = Some(h);
    hosted.store = store;
    Ok(hosted)
}

/// Plans this node's containers from its own report, once its topology, network and NVMe
/// sections are in, for the drives its store has, and starts them (`agent::containers`).
async fn start_containers(
    state: Arc<super::state::AgentState>,
    store: SharedStore,
    node: Option<Arc<NodeData>>,
    mode: super::containers::Mode,
) {
    use super::containers::{Containers, Mode};
    use crate::model::plan::{PlanInput, PlanOptions, plan_node};
    if mode == Mode::Off || state.containers().is_some() {
        return;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let snap = loop {
        let s = state.snapshot();
        if s.topology.is_some() && s.network.is_some() && s.nvme.is_some() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            tracing::warn!(
                "containers: no topology, network and NVMe report within 60 s; not started"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let drives = store.lock().map(|g| g.drive_states().len()).unwrap_or(0);
    let plan = match PlanInput::from_snapshot(&snap) {
        Ok(inp) => plan_node(
            &inp,
            &PlanOptions {
                drives: Some(drives.max(1)),
                ..Default::default()
            },
        ),
        Err(e) => {
            tracing::warn!("containers: cannot plan this node ({e}); not started");
            return;
        }
    };
    let emulated = snap.node.emulated_profile.is_some();
    let infeasible: Vec<String> = plan
        .notes
        .iter()
        .filter(|n| n.severity == crate::model::plan::NoteSeverity::Infeasible)
        .map(|n| n.text.clone())
        .collect();
    let c = if !emulated && mode == Mode::Auto && !infeasible.is_empty() {
        let why = format!(
            "not started: the core plan cannot hold on this host ({}); `axon agent --containers pin` pins the nearest plan",
            infeasible.join("; ")
        );
        tracing::warn!("containers: {why}");
        Containers::not_started(&plan, &why)
    } else {
        let c = tokio::task::spawn_blocking(move || Containers::start(&plan, emulated))
            .await
            .ok();
        let Some(c) = c else { return };
        for x in c.report() {
            match &x.problem {
                Some(p) => tracing::warn!("containers: {}: {p}", x.name),
                None if !x.emulated => tracing::info!(
                    "containers: {} on cpu {:?}, threads {:?}",
                    x.name,
                    x.cores,
                    x.threads
                ),
                None => {}
            }
        }
        // An emulated host's work runs where it did: nothing was started to take it.
        if let (Some(n), false) = (&node, emulated) {
            n.set_offload(c.clone());
        }
        c
    };
    state.set_containers(c);
}

/// A phase-out an agent restart cut short resumes: an operation per PHASING_OUT drive.
fn resume_phase_outs(ag: &Agent, store: Option<&HostedStore>, host: Option<Arc<ClusterHost>>) {
    let (Some(s), Some(ops)) = (store, ag.state.operations()) else {
        return;
    };
    let drives = match s.store.lock() {
        Ok(g) => g.drive_states(),
        Err(_) => return,
    };
    for (id, path, state) in drives {
        if !matches!(state, "PHASING_OUT" | "PHASING_IN") {
            continue;
        }
        let (st, host) = (s.store.clone(), host.clone());
        // At the rate it was started with.
        let rate = s
            .store
            .lock()
            .ok()
            .and_then(|g| g.move_rate(&id).ok())
            .flatten();
        let r = super::drive_ops::DriveRequest {
            drive: id.clone(),
            dry_run: false,
            rate,
            size: 0,
            force: false,
        };
        let target = format!("drive {id} ({}), resumed after a restart", path.display());
        match state {
            "PHASING_OUT" => {
                tracing::warn!(
                    "store: {} was being phased out when the agent stopped; resuming{}",
                    path.display(),
                    rate.map(|r| format!(" at {r} bytes/s")).unwrap_or_default()
                );
                let _ = ops.start(
                    crate::model::ops::OperationKind::DriveDeactivate,
                    target,
                    "agent".into(),
                    move |h| super::drive_ops::deactivate(h, st, host, r),
                );
            }
            "PHASING_IN" => {
                tracing::warn!(
                    "store: {} was being phased in when the agent stopped; resuming",
                    path.display()
                );
                let out = crate::model::ops::DriveOutcome {
                    drive: id.clone(),
                    ..Default::default()
                };
                let _ = ops.start(
                    crate::model::ops::OperationKind::DriveAdd,
                    target,
                    "agent".into(),
                    move |h| super::drive_ops::phase_in(h, st, r, out, "was being phased in"),
                );
            }
            _ => {}
        }
    }
}

impl Hosted {
    /// Stops the member (Raft, data port), the tasks and the scrubber. The store stays
    /// open in `self.store` (its files are what a restarted node finds).
    pub async fn shutdown(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        if let Some(h) = self.cluster.take() {
            h.shutdown().await;
        }
        if let Some(s) = self.scrubber.take() {
            // Joining the scrubber waits for its current stripe: off the runtime.
            let _ = tokio::task::spawn_blocking(move || drop(s)).await;
        }
    }
}

/// Keeps the cluster configuration's record of this node's drives in step with its store:
/// once this agent is a member and a leader is known, every drive of the store is added,
/// and a drive whose state changed (FAILED, …) is updated. Checks every 5 s, and every
/// second until the cluster exists (a local read: drives are recorded soon after
/// `cluster create`).
async fn register_drives(host: Arc<ClusterHost>, store: SharedStore) {
    loop {
        let mut pause = Duration::from_secs(1);
        if let Some((m, leader, config)) = host.info().await
            && leader != 0
            && config.cluster.is_some()
        {
            pause = Duration::from_secs(5);
            // status() walks the store's index: off the runtime that carries Raft's
            // heartbeats.
            let st = store.clone();
            let drives =
                match tokio::task::spawn_blocking(move || st.lock().ok().map(|s| s.status())).await
                {
                    Ok(Some(Ok(st))) => st.drives,
                    _ => Vec::new(),
                };
            let held: std::collections::HashSet<&str> =
                drives.iter().map(|d| d.id.as_str()).collect();
            let gone: Vec<String> = config
                .drives
                .iter()
                .filter(|(id, r)| r.node == m.node_id && !held.contains(id.as_str()))
                .map(|(id, _)| id.clone())
                .collect();
            if !drives.is_empty() {
                for id in gone {
                    match host.propose(Command::RemoveDrive { id: id.clone() }).await {
                        Ok(a) => {
                            tracing::info!(drive = %id, epoch = a.epoch, "cluster: drive removed")
                        }
                        Err(e) => tracing::warn!(drive = %id, "cluster: removing the drive: {e}"),
                    }
                }
            }
            for d in drives {
                let state = if d.available {
                    d.state.to_string()
                } else {
                    "FAILED".to_string()
                };
                let cmd = match config.drives.get(&d.id) {
                    None => Command::AddDrive {
                        id: d.id.clone(),
                        node: m.node_id,
                        path: d.path.display().to_string(),
                        state: state.clone(),
                    },
                    Some(r) if r.state != state => Command::SetDriveState {
                        id: d.id.clone(),
                        state: state.clone(),
                    },
                    Some(_) => continue,
                };
                match host.propose(cmd).await {
                    Ok(a) => {
                        tracing::info!(drive = %d.id, epoch = a.epoch, "cluster: drive recorded as {state}")
                    }
                    Err(e) => tracing::warn!(drive = %d.id, "cluster: recording the drive: {e}"),
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}

//! The agent's latest view of its node: one slot per section with the collector's status
//! and a content version, so Watch streams send a section only when it changed.

use super::scheduler::{OnDemand, Schedule};
use crate::model::checks::CheckResult;
use crate::model::net::Network;
use crate::model::nvme::NvmeController;
use crate::model::pinning::Pinning;
use crate::model::probes::ProbeReport;
use crate::model::snapshot::{CollectorStatus, HostFacts, NodeInfo, NodeSnapshot, Section};
use crate::model::topology::Topology;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

pub use crate::clock::now_ms;

/// A collector's fresh output.
#[derive(Debug, Clone)]
pub enum SectionValue {
    Topology(Topology),
    Pinning(Pinning),
    Network(Network),
    Nvme(Vec<NvmeController>),
    Checks(HostFacts, Vec<CheckResult>),
    Probes(ProbeReport),
}

impl SectionValue {
    pub fn section(&self) -> Section {
        match self {
            SectionValue::Topology(_) => Section::Topology,
            SectionValue::Pinning(_) => Section::Pinning,
            SectionValue::Network(_) => Section::Network,
            SectionValue::Nvme(_) => Section::Nvme,
            SectionValue::Checks(..) => Section::Checks,
            SectionValue::Probes(_) => Section::Probes,
        }
    }
}

/// Content versions: one per section, plus one for the topology's memory figures, which
/// change every second while the layout rarely does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    pub sections: HashMap<Section, u64>,
    pub memory: u64,
}

impl Versions {
    pub fn of(&self, s: Section) -> u64 {
        self.sections.get(&s).copied().unwrap_or(0)
    }
}

struct Inner {
    snapshot: NodeSnapshot,
    versions: Versions,
}

pub struct AgentState {
    inner: RwLock<Inner>,
    generation: watch::Sender<u64>,
    /// The listeners' counters (connections, limits), for `/metrics`.
    pub server: std::sync::Arc<super::listen::ServerStats>,
    /// Exporter mode: the scheduler's hook that collects when a scrape arrives.
    on_demand: std::sync::OnceLock<Arc<OnDemand>>,
    /// The hosted storage engine's latest status (`axon agent --store`), for `/metrics`.
    engine: std::sync::Mutex<Option<crate::dataplane::store::Status>>,
    /// The cluster member this agent hosts (`axon agent --cluster-listen`).
    cluster: std::sync::OnceLock<Arc<super::raft::ClusterHost>>,
    /// The store this agent hosts (`--store`), for the drive operations.
    store: std::sync::OnceLock<super::member::SharedStore>,
    /// The agent's operations (OperationService's, and those the agent starts itself).
    ops: std::sync::OnceLock<Arc<super::operations::Operations>>,
    /// The cluster configuration the hosted member applied, for `DataplaneService`.
    dp_config: std::sync::Mutex<Option<Arc<crate::model::cluster::ClusterConfig>>>,
    /// The data-plane containers this agent runs (or records, on an emulated host).
    containers: std::sync::OnceLock<Arc<super::containers::Containers>>,
}

impl AgentState {
    pub fn new(info: NodeInfo, collectors: Vec<CollectorStatus>) -> Self {
        AgentState {
            inner: RwLock::new(Inner {
                snapshot: NodeSnapshot {
                    node: info,
                    collectors,
                    ..Default::default()
                },
                versions: Versions::default(),
            }),
            generation: watch::channel(0).0,
            server: Default::default(),
            on_demand: std::sync::OnceLock::new(),
            engine: std::sync::Mutex::new(None),
            cluster: std::sync::OnceLock::new(),
            store: std::sync::OnceLock::new(),
            ops: std::sync::OnceLock::new(),
            dp_config: std::sync::Mutex::new(None),
            containers: std::sync::OnceLock::new(),
        }
    }

    /// Exporter mode: scrapes call this hook before they render (set once, by the
    /// scheduler).
    pub fn set_on_demand(&self, d: Arc<OnDemand>) {
        let _ = self.on_demand.set(d);
    }

    pub fn set_cluster_host(&self, h: Arc<super::raft::ClusterHost>) {
        let _ = self.cluster.set(h);
    }

    pub fn cluster_host(&self) -> Option<Arc<super::raft::ClusterHost>> {
        self.cluster.get().cloned()
    }

    /// Publishes the hosted engine's status (the scrubber does, at most once a second).
    pub fn set_store(&self, s: super::member::SharedStore) {
        let _ = self.store.set(s);
    }

    pub fn store(&self) -> Option<super::member::SharedStore> {
        self.store.get().cloned()
    }

    pub fn set_operations(&self, o: Arc<super::operations::Operations>) {
        let _ = self.ops.set(o);
    }

    pub fn operations(&self) -> Option<Arc<super::operations::Operations>> {
        self.ops.get().cloned()
    }

    pub fn set_engine_status(&self, st: crate::dataplane::store::Status) {
        if let Ok(mut e) = self.engine.lock() {
            *e = Some(st);
        }
    }

    pub fn engine_status(&self) -> Option<crate::dataplane::store::Status> {
        self.engine.lock().ok().and_then(|e| e.clone())
    }

    pub fn on_demand(&self) -> Option<&Arc<OnDemand>> {
        self.on_demand.get()
    }

    /// Reports each collector's interval and deadline as `schedule` has them.
    pub fn set_schedule(&self, schedule: &Schedule) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for c in &mut g.snapshot.collectors {
            let t = schedule.timing(c.section);
            c.interval_ms = t.interval.as_millis() as u64;
            c.deadline_ms = t.deadline.as_millis() as u64;
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Records a successful run with at most one problem, given as its text.
    pub fn update(&self, value: SectionValue, problems: Option<String>, duration_us: u64) {
        let count = u32::from(problems.is_some());
        self.record(value, problems, count, duration_us);
    }

    /// Records a successful run: `summary` describes its `count` non-fatal problems. The
    /// section's version changes only if its content did.
    pub fn record(
        &self,
        value: SectionValue,
        summary: Option<String>,
        count: u32,
        duration_us: u64,
    ) {
        let problems = summary;
        let section = value.section();
        let now = now_ms();
        {
            let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
            let g = &mut *g;
            let s = &mut g.snapshot;
            let changed = match value {
                SectionValue::Topology(v) => {
                    let (layout, usage) = match &s.topology {
                        Some(old) => (!old.layout_eq(&v), old.usage() != v.usage()),
                        None => (true, true),
                    };
                    s.topology = Some(v);
                    if usage {
                        g.versions.memory += 1;
                    }
                    layout
                }
                SectionValue::Pinning(v) => replace(&mut s.pinning, v),
                SectionValue::Network(v) => replace(&mut s.network, v),
                SectionValue::Nvme(v) => replace(&mut s.nvme, v),
                SectionValue::Checks(h, r) => {
                    let a = replace(&mut s.host, h);
                    let b = replace(&mut s.checks, r);
                    a || b
                }
                SectionValue::Probes(v) => replace(&mut s.probes, v),
            };
            if let Some(c) = s.collectors.iter_mut().find(|c| c.section == section) {
                c.ok = problems.is_none();
                c.error = problems;
                c.problems = count;
                c.last_run_ms = now;
                c.last_success_ms = Some(now);
                c.duration_us = duration_us;
            }
            if changed {
                *g.versions.sections.entry(section).or_default() += 1;
            }
        }
        self.bump();
    }

    /// Publishes the data plane's report (the `dataplane` section) and the configuration
    /// it was made from. Watch streams see a change only when the report's content changed.
    pub fn set_dataplane(
        &self,
        report: Option<crate::model::dataplane::NodeDataplane>,
        config: Option<Arc<crate::model::cluster::ClusterConfig>>,
    ) {
        if let Ok(mut c) = self.dp_config.lock() {
            *c = config;
        }
        let changed = {
            let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
            if g.snapshot.dataplane == report {
                false
            } else {
                g.snapshot.dataplane = report;
                *g.versions.sections.entry(Section::Dataplane).or_default() += 1;
                true
            }
        };
        if changed {
            self.bump();
        }
    }

    pub fn set_containers(&self, c: Arc<super::containers::Containers>) {
        let _ = self.containers.set(c);
    }

    pub fn containers(&self) -> Option<&Arc<super::containers::Containers>> {
        self.containers.get()
    }

    /// The data plane's report and configuration, as last published.
    pub fn dataplane(
        &self,
    ) -> (
        Option<crate::model::dataplane::NodeDataplane>,
        Option<Arc<crate::model::cluster::ClusterConfig>>,
    ) {
        let report = self.with_snapshot(|s, _| s.dataplane.clone());
        let config = self.dp_config.lock().ok().and_then(|c| c.clone());
        (report, config)
    }

    /// Records a failed run: the section keeps its last data, which now ages.
    pub fn fail(&self, section: Section, error: String, duration_us: u64) {
        {
            let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = g
                .snapshot
                .collectors
                .iter_mut()
                .find(|c| c.section == section)
            {
                c.ok = false;
                c.error = Some(error);
                c.problems = 1;
                // Strictly after the last success, even within the same millisecond, so
                // `last_run_failed` can tell.
                c.last_run_ms = now_ms().max(c.last_success_ms.map_or(0, |t| t + 1));
                c.duration_us = duration_us;
            }
        }
        self.bump();
    }

    /// Runs `f` on the current snapshot and section versions under the read lock. The
    /// snapshot's `taken_ms` is stale there; callers stamp what they hand out.
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&NodeSnapshot, &Versions) -> R) -> R {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        f(&g.snapshot, &g.versions)
    }

    /// A copy of the current snapshot, stamped now.
    pub fn snapshot(&self) -> NodeSnapshot {
        let mut s = self.with_snapshot(|s, _| s.clone());
        s.taken_ms = now_ms();
        s
    }
}

fn replace<T: PartialEq>(slot: &mut Option<T>, v: T) -> bool {
    if slot.as_ref() == Some(&v) {
        false
    } else {
        *slot = Some(v);
        true
    }
}

//! Runs each collector on its own interval with its own deadline. File collectors run on
//! the blocking pool; a run that overruns its deadline is reported as failed and the next
//! run is skipped until it returns, so a hung sysfs read costs one thread, never the
//! scrape or the other collectors.

use super::state::{AgentState, SectionValue};
use crate::collectors::checks::{CheckInputs, PlanParams};
use crate::collectors::net::NetConfig;
use crate::collectors::probes::{self, ProbeOptions};
use crate::collectors::{self as c, CollectError, HostRoot, Problems};
use crate::model::cpuset::CpuSet;
use crate::model::ports::PortSpec;
use crate::model::snapshot::{CollectorStatus, NodeSnapshot, Section};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval: Duration,
    pub deadline: Duration,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub topology: Timing,
    pub pinning: Timing,
    pub network: Timing,
    pub nvme: Timing,
    pub checks: Timing,
    pub probes: Timing,
}

impl Schedule {
    /// Cheap collectors every `base` (default 1 s), expensive ones slower.
    pub fn with_base(base: Duration) -> Self {
        let t = |mult: u32, deadline_s: u64| Timing {
            interval: base * mult,
            deadline: Duration::from_secs(deadline_s).min(base * mult.max(2)),
        };
        Schedule {
            topology: t(1, 2),
            network: t(1, 2),
            pinning: t(2, 4),
            nvme: t(10, 5),
            checks: t(10, 5),
            probes: t(5, 10),
        }
    }

    pub fn timing(&self, s: Section) -> Timing {
        match s {
            Section::Topology => self.topology,
            Section::Pinning => self.pinning,
            Section::Network => self.network,
            Section::Nvme => self.nvme,
            Section::Checks => self.checks,
            Section::Probes => self.probes,
        }
    }

    pub fn initial_status(&self) -> Vec<CollectorStatus> {
        Section::ALL
            .iter()
            .map(|s| CollectorStatus {
                section: *s,
                ok: false,
                error: Some("not collected yet".into()),
                last_run_ms: 0,
                last_success_ms: None,
                duration_us: 0,
                interval_ms: self.timing(*s).interval.as_millis() as u64,
                deadline_ms: self.timing(*s).deadline.as_millis() as u64,
                problems: 0,
            })
            .collect()
    }
}

/// Everything the collectors need besides the host root.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    pub net: NetConfig,
    pub plan: PlanParams,
    pub peers: Vec<String>,
    pub probe_ports: Vec<PortSpec>,
    pub probe: ProbeOptions,
    /// Names or addresses that are this node; never probed.
    pub own_addresses: Vec<String>,
    pub smart: bool,
    /// Write each collector's problems to stderr when they change (off where stderr is a
    /// terminal UI, as in `axon demo`).
    pub log_problems: bool,
}

/// Each collector's problems go to the log when they change (the set of messages, not
/// each run), so a broken file costs one line, not one per second.
#[derive(Debug, Default)]
pub struct ProblemLog {
    last: std::sync::Mutex<std::collections::HashMap<Section, Vec<String>>>,
}

impl ProblemLog {
    /// The line to log for a run of `section` with these problems (for a run that failed
    /// outright, its error), or None when they are the ones logged last.
    pub fn note(&self, section: Section, problems: &[String]) -> Option<String> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let prev = last.entry(section).or_default();
        if prev.as_slice() == problems {
            return None;
        }
        let name = section.as_str();
        let line = match problems.len() {
            0 => format!("axon: {name} collector: problems cleared"),
            1 => format!("axon: {name} collector: {}", problems[0]),
            n => format!(
                "axon: {name} collector: {n} problems: {}",
                problems.join("; ")
            ),
        };
        *prev = problems.to_vec();
        Some(line)
    }

    /// Records a run's outcome in `state` and logs its problems if they changed.
    pub fn record(
        &self,
        state: &AgentState,
        section: Section,
        outcome: Result<(SectionValue, Problems), String>,
        duration_us: u64,
        log: bool,
    ) {
        let texts: Vec<String> = match &outcome {
            Ok((_, p)) => p.iter().map(|e| e.to_string()).collect(),
            Err(e) => vec![format!("failed: {e}")],
        };
        if let Some(line) = self.note(section, &texts) {
            if log {
                eprintln!("{line}");
            }
        }
        match outcome {
            Ok((value, p)) => state.record(value, p.summary(), p.len() as u32, duration_us),
            Err(e) => state.fail(section, e, duration_us),
        }
    }
}

/// Runs one collection of a file-based section, synchronously. Used by the scheduler and
/// by `axon check`.
pub fn collect_section(
    root: &HostRoot,
    cfg: &CollectConfig,
    state: Option<&AgentState>,
    section: Section,
) -> Result<(SectionValue, Problems), CollectError> {
    let mut p = Problems::default();
    let v = match section {
        Section::Topology => SectionValue::Topology(c::topology::collect(root, &mut p)?),
        Section::Pinning => {
            let online = state
                .and_then(|s| {
                    s.with_snapshot(|snap, _| snap.topology.as_ref().map(|t| t.online_cpus()))
                })
                .filter(|s| !s.is_empty())
                .map(Ok)
                .unwrap_or_else(|| online_cpus(root))?;
            SectionValue::Pinning(c::pinning::collect(root, &online, &mut p)?)
        }
        Section::Network => SectionValue::Network(c::net::collect(root, &cfg.net, &mut p)?),
        Section::Nvme => SectionValue::Nvme(c::nvme::collect(root, cfg.smart, &mut p)?),
        Section::Checks => {
            let snap = state.map(|s| s.snapshot()).unwrap_or_default();
            let inputs = CheckInputs {
                topology: usable(&snap, Section::Topology, snap.topology.as_ref()),
                network: usable(&snap, Section::Network, snap.network.as_ref()),
                nvme: usable(&snap, Section::Nvme, snap.nvme.as_deref()),
                pinning: usable(&snap, Section::Pinning, snap.pinning.as_ref()),
                probes: (!cfg.peers.is_empty())
                    .then(|| usable(&snap, Section::Probes, snap.probes.as_ref())),
                plan: cfg.plan,
            };
            let (facts, results) = c::checks::collect(root, &inputs, &mut p);
            SectionValue::Checks(facts, results)
        }
        Section::Probes => {
            return Err(CollectError::Invalid {
                what: "collecting the probes section".into(),
                detail: "probes are network round trips, not files: run them with collectors::probes::run (the scheduler does)".into(),
            });
        }
    };
    Ok((v, p))
}

/// A section's data as the checks may judge it: present, from a run that succeeded (with
/// or without problems), and not stale. Otherwise the error says which collector and why,
/// and becomes the observed text of the checks that need it: old data from a collector
/// that now fails is not a fact about the host any more.
pub fn usable<'a, T: ?Sized>(
    snap: &NodeSnapshot,
    section: Section,
    data: Option<&'a T>,
) -> Result<&'a T, String> {
    let name = section.as_str();
    let status = snap.collector(section);
    let Some(data) = data else {
        return Err(match status.and_then(|c| c.error.as_deref()) {
            Some(e) => format!("{name} not collected: {e}"),
            None => format!("{name} not collected yet"),
        });
    };
    let Some(c) = status else {
        return Ok(data);
    };
    let age_ms = snap.section_age_ms(section);
    let age = |ms: i64| format!("{:.1} s", ms as f64 / 1000.0);
    if c.last_run_failed() {
        return Err(format!(
            "{name} collector failing ({}); its last data{} is not judged",
            c.error.as_deref().unwrap_or("no reason given"),
            age_ms
                .map(|a| format!(", {} old,", age(a)))
                .unwrap_or_default()
        ));
    }
    match age_ms {
        Some(a) if a > c.stale_after_ms() => Err(format!(
            "{name} data is stale: last collected {} ago, expected every {} — see the {name} collector's status",
            age(a),
            age(c.interval_ms as i64)
        )),
        _ => Ok(data),
    }
}

pub fn online_cpus(root: &HostRoot) -> Result<CpuSet, CollectError> {
    let path = "/sys/devices/system/cpu/online";
    CpuSet::parse_list(&root.read(path)?)
        .map_err(|e| CollectError::malformed(root.display_path(path), e.to_string()))
}

async fn wait_for_first_runs(state: &AgentState, probes: bool, limit: Duration) {
    let mut changes = state.subscribe();
    let done = |st: &AgentState| {
        st.with_snapshot(|s, _| {
            [
                Section::Topology,
                Section::Network,
                Section::Nvme,
                Section::Pinning,
            ]
            .iter()
            .all(|sec| s.collector(*sec).is_some_and(|c| c.last_run_ms > 0))
                && (!probes
                    || s.collector(Section::Probes)
                        .is_some_and(|c| c.last_run_ms > 0))
        })
    };
    let _ = tokio::time::timeout(limit, async {
        while !done(state) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
}

/// Starts one task per section. Returns the task handles (aborted on shutdown).
pub fn spawn(
    root: HostRoot,
    cfg: Arc<CollectConfig>,
    schedule: Schedule,
    state: Arc<AgentState>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let log = Arc::new(ProblemLog::default());
    // Order matters on the first round: checks read the other sections.
    for section in [
        Section::Topology,
        Section::Network,
        Section::Nvme,
        Section::Pinning,
        Section::Checks,
    ] {
        let timing = schedule.timing(section);
        let (root, cfg, state, log) = (root.clone(), cfg.clone(), state.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            if section == Section::Checks {
                // The checks judge the other sections: let them run once first, so the
                // first results are not "not collected yet".
                wait_for_first_runs(&state, !cfg.peers.is_empty(), timing.deadline * 2).await;
            }
            let in_flight = Arc::new(AtomicBool::new(false));
            let mut ticker = tokio::time::interval(timing.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if in_flight.load(Ordering::Acquire) {
                    log.record(&state, section, Err(format!("previous run still blocked after its {} ms deadline (a hung file read?)", timing.deadline.as_millis())), 0, cfg.log_problems);
                    continue;
                }
                in_flight.store(true, Ordering::Release);
                let start = Instant::now();
                let job = {
                    let (root, cfg, state, flag) = (root.clone(), cfg.clone(), state.clone(), in_flight.clone());
                    tokio::task::spawn_blocking(move || {
                        let r = collect_section(&root, &cfg, Some(&state), section);
                        flag.store(false, Ordering::Release);
                        r
                    })
                };
                let took = |s: Instant| s.elapsed().as_micros() as u64;
                let outcome = match tokio::time::timeout(timing.deadline, job).await {
                    Ok(Ok(Ok(v))) => Ok(v),
                    Ok(Ok(Err(e))) => Err(e.to_string()),
                    Ok(Err(join)) => {
                        in_flight.store(false, Ordering::Release);
                        Err(format!("collector crashed: {join}"))
                    }
                    Err(_) => Err(format!("exceeded its {} ms deadline", timing.deadline.as_millis())),
                };
                log.record(&state, section, outcome, took(start), cfg.log_problems);
            }
        }));
    }
    let timing = schedule.probes;
    tasks.push(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(timing.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if cfg.peers.is_empty() {
                state.fail(
                    Section::Probes,
                    "no peers configured (pass --peers)".into(),
                    0,
                );
                continue;
            }
            let start = Instant::now();
            let peers: Vec<String> = cfg
                .peers
                .iter()
                .filter(|p| !cfg.own_addresses.contains(p))
                .cloned()
                .collect();
            let round = async {
                let resolved = probes::resolve(&peers).await;
                probes::run(&resolved, &cfg.probe_ports, &cfg.probe).await
            };
            match tokio::time::timeout(timing.deadline, round).await {
                Ok(report) => state.update(
                    SectionValue::Probes(report),
                    None,
                    start.elapsed().as_micros() as u64,
                ),
                Err(_) => state.fail(
                    Section::Probes,
                    format!(
                        "probe round exceeded its {} ms deadline",
                        timing.deadline.as_millis()
                    ),
                    start.elapsed().as_micros() as u64,
                ),
            }
        }
    }));
    tasks
}

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
use std::collections::HashMap;
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

    /// Exporter mode: no section is refreshed more often than `max_age` (each keeps its
    /// own longer period, and its deadline).
    pub fn at_least(&self, max_age: Duration) -> Self {
        let f = |t: Timing| Timing {
            interval: t.interval.max(max_age),
            deadline: t.deadline,
        };
        Schedule {
            topology: f(self.topology),
            pinning: f(self.pinning),
            network: f(self.network),
            nvme: f(self.nvme),
            checks: f(self.checks),
            probes: f(self.probes),
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
            // Published by the data plane every second, not collected.
            Section::Dataplane => Timing {
                interval: Duration::from_secs(1),
                deadline: Duration::from_secs(2),
            },
        }
    }

    pub fn initial_status(&self) -> Vec<CollectorStatus> {
        Section::COLLECTED
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
    /// Log each collector's problems when they change (off where the log would be a
    /// terminal UI's, as in `axon demo`).
    pub log_problems: bool,
    /// Peers probed per round (`--probe-peers-per-round`); 0 probes all every round.
    pub peers_per_round: usize,
    /// Exporter mode: collect only when a scrape finds data older than this (see
    /// [`OnDemand`]); None collects on the schedule (the agent, which the console follows
    /// every interval).
    pub on_demand: Option<Duration>,
    /// slurm.conf (and cgroup.conf) to judge (`--slurm-conf`, `--cgroup-conf`); None: no
    /// Slurm checks.
    pub slurm: Option<c::slurm::SlurmFiles>,
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
            if log && texts.is_empty() {
                tracing::info!("{line}");
            } else if log {
                tracing::warn!("{line}");
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
            let (facts, mut results) = c::checks::collect(root, &inputs, &mut p);
            if let Some(files) = &cfg.slurm {
                results.extend(c::slurm::collect(root, files, &inputs));
            }
            SectionValue::Checks(facts, results)
        }
        Section::Dataplane => {
            return Err(CollectError::Invalid {
                what: "collecting the dataplane section".into(),
                detail: "the data plane publishes its own report (AgentState::set_dataplane); no collector reads it".into(),
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_is_planned_just_before_the_next_expected_scrape() {
        let t0 = Instant::now();
        let max_age = Duration::from_secs(5);
        let took = Duration::from_millis(10);
        // A first scrape: nothing to go by.
        assert_eq!(plan_refresh(None, t0, max_age, took), None);
        // Every 15 s: refresh 2 × 10 ms + 100 ms before the next one is due.
        let now = t0 + Duration::from_secs(15);
        assert_eq!(
            plan_refresh(Some(t0), now, max_age, took),
            Some((
                now + Duration::from_millis(15_000 - 120),
                now + Duration::from_secs(15)
            ))
        );
        // Scraped more often than --max-age: the cache is fresh enough.
        assert_eq!(
            plan_refresh(Some(t0), t0 + Duration::from_secs(2), max_age, took),
            None
        );
        // A slow refresh never plans earlier than three quarters of the gap.
        let slow = plan_refresh(Some(t0), now, max_age, Duration::from_secs(10)).unwrap();
        assert_eq!(slow.0, now + Duration::from_millis(11_250));
    }

    #[test]
    fn exporter_schedule_keeps_the_longer_periods() {
        let s = Schedule::with_base(Duration::from_secs(1)).at_least(Duration::from_secs(5));
        assert_eq!(s.topology.interval, Duration::from_secs(5));
        assert_eq!(s.nvme.interval, Duration::from_secs(10));
        assert_eq!(s.checks.deadline, Duration::from_secs(5));
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

/// One collector run's span (`collect`, with the `collector` and its `outcome`: ok,
/// problems, failed or blocked). At debug level: they run every second, and when the
/// level is off the span is never built (no allocation, one check of a static).
fn collect_span(section: Section) -> tracing::Span {
    tracing::debug_span!(
        "collect",
        collector = section.as_str(),
        outcome = tracing::field::Empty
    )
}

fn outcome_word(outcome: &Result<(SectionValue, Problems), String>) -> &'static str {
    match outcome {
        Ok((_, p)) if p.is_empty() => "ok",
        Ok(_) => "problems",
        Err(_) => "failed",
    }
}

/// The file sections, in the order a round runs them: the checks read the others.
const FILE_SECTIONS: [Section; 5] = [
    Section::Topology,
    Section::Network,
    Section::Nvme,
    Section::Pinning,
    Section::Checks,
];

/// Runs one section at a time with its deadline, for either schedule: the periodic one
/// (the agent) and the on-demand one (the exporter).
struct Runner {
    root: HostRoot,
    cfg: Arc<CollectConfig>,
    state: Arc<AgentState>,
    schedule: Schedule,
    log: ProblemLog,
    /// Per section: a run is still blocked (it overran its deadline and has not returned).
    in_flight: HashMap<Section, Arc<AtomicBool>>,
    /// The probe rotation and every peer's latest results (made on the first round).
    book: tokio::sync::Mutex<Option<probes::ProbeBook>>,
}

impl Runner {
    fn new(
        root: HostRoot,
        cfg: Arc<CollectConfig>,
        schedule: Schedule,
        state: Arc<AgentState>,
    ) -> Arc<Self> {
        Arc::new(Runner {
            root,
            cfg,
            state,
            schedule,
            log: ProblemLog::default(),
            in_flight: Section::COLLECTED
                .iter()
                .map(|s| (*s, Arc::new(AtomicBool::new(false))))
                .collect(),
            book: tokio::sync::Mutex::new(None),
        })
    }

    /// One run of a file section on the blocking pool, recorded in the state. Returns when
    /// it finished or its deadline passed (a hung read then keeps one blocking thread, and
    /// the section is not started again until it returns).
    async fn run_file(self: &Arc<Self>, section: Section) {
        let timing = self.schedule.timing(section);
        let flag = self.in_flight[&section].clone();
        let log = self.cfg.log_problems;
        let span = collect_span(section);
        if flag.load(Ordering::Acquire) {
            span.record("outcome", "blocked");
            let _in = span.enter();
            self.log.record(
                &self.state,
                section,
                Err(format!(
                    "previous run still blocked after its {} ms deadline (a hung file read?)",
                    timing.deadline.as_millis()
                )),
                0,
                log,
            );
            return;
        }
        flag.store(true, Ordering::Release);
        let start = Instant::now();
        let job = {
            let me = self.clone();
            let flag = flag.clone();
            tokio::task::spawn_blocking(move || {
                let r = collect_section(&me.root, &me.cfg, Some(&me.state), section);
                flag.store(false, Ordering::Release);
                r
            })
        };
        let outcome = match tokio::time::timeout(timing.deadline, job).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(join)) => {
                flag.store(false, Ordering::Release);
                Err(format!("collector crashed: {join}"))
            }
            Err(_) => Err(format!(
                "exceeded its {} ms deadline",
                timing.deadline.as_millis()
            )),
        };
        let took = start.elapsed().as_micros() as u64;
        span.record("outcome", outcome_word(&outcome));
        let _in = span.enter();
        self.log.record(&self.state, section, outcome, took, log);
    }

    /// One probe round, bounded by the probes' deadline: the next `peers_per_round` peers
    /// of the rotation. The report keeps every peer's latest results.
    async fn run_probes(self: &Arc<Self>) {
        let cfg = &self.cfg;
        let timing = self.schedule.probes;
        let log = cfg.log_problems;
        let span = collect_span(Section::Probes);
        if cfg.peers.is_empty() {
            span.record("outcome", "failed");
            let _in = span.enter();
            self.log.record(
                &self.state,
                Section::Probes,
                Err("no peers configured (pass --peers)".into()),
                0,
                log,
            );
            return;
        }
        let start = Instant::now();
        // One round at a time (the exporter may start one while another is running).
        let mut book = self.book.lock().await;
        let book = book.get_or_insert_with(|| {
            let peers: Vec<String> = cfg
                .peers
                .iter()
                .filter(|p| !cfg.own_addresses.contains(p))
                .cloned()
                .collect();
            let me = cfg
                .own_addresses
                .iter()
                .find(|a| cfg.peers.contains(a))
                .or(cfg.own_addresses.last())
                .cloned()
                .unwrap_or_default();
            probes::ProbeBook::new(peers, cfg.peers_per_round, &me, &cfg.peers)
        });
        let (round, peers) = book.next_round();
        let run = async {
            let resolved = probes::resolve(&peers).await;
            probes::run(&resolved, &cfg.probe_ports, &cfg.probe).await
        };
        let outcome = match tokio::time::timeout(timing.deadline, run).await {
            Ok(report) => {
                book.record(round, report.results, crate::clock::now_ms());
                let rep = book.report(report.round_ms, timing.interval);
                Ok((SectionValue::Probes(rep), Problems::default()))
            }
            Err(_) => Err(format!(
                "probe round exceeded its {} ms deadline ({} peers)",
                timing.deadline.as_millis(),
                peers.len()
            )),
        };
        let took = start.elapsed().as_micros() as u64;
        span.record("outcome", outcome_word(&outcome));
        let _in = span.enter();
        self.log
            .record(&self.state, Section::Probes, outcome, took, log);
    }
}

/// Starts the collectors. With `cfg.on_demand` unset (the agent), one task per section runs
/// it on its interval. With it set (`axon exporter`), nothing runs until a scrape asks: see
/// [`OnDemand`], which this registers with the state for the /metrics handler. Returns the
/// task handles (aborted on shutdown).
pub fn spawn(
    root: HostRoot,
    cfg: Arc<CollectConfig>,
    schedule: Schedule,
    state: Arc<AgentState>,
) -> Vec<tokio::task::JoinHandle<()>> {
    if let Some(max_age) = cfg.on_demand {
        let schedule = schedule.at_least(max_age);
        state.set_schedule(&schedule);
        let runner = Runner::new(root, cfg, schedule, state.clone());
        state.set_on_demand(Arc::new(OnDemand::new(runner)));
        return Vec::new();
    }
    let runner = Runner::new(root, cfg.clone(), schedule.clone(), state.clone());
    let mut tasks = Vec::new();
    for section in FILE_SECTIONS {
        let timing = schedule.timing(section);
        let runner = runner.clone();
        let (cfg, state) = (cfg.clone(), state.clone());
        tasks.push(tokio::spawn(async move {
            if section == Section::Checks {
                // The checks judge the other sections: let them run once first, so the
                // first results are not "not collected yet".
                wait_for_first_runs(&state, !cfg.peers.is_empty(), timing.deadline * 2).await;
            }
            let mut ticker = tokio::time::interval(timing.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                runner.run_file(section).await;
            }
        }));
    }
    let timing = schedule.probes;
    tasks.push(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(timing.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            runner.run_probes().await;
        }
    }));
    tasks
}

/// Exporter mode: the collectors run when a scrape needs them, not every second.
///
/// A scrape refreshes every section whose data is older than its period (the `--max-age`
/// of `axon exporter`, or the section's own longer period: NVMe and checks every 10
/// intervals) and waits for that refresh at most `wait` (half the scraper's timeout): a
/// slow or hung collector is cut off by its own deadline, and the scrape serves what the
/// cache holds. Probe rounds are started, never waited for.
///
/// So that a regular scraper does not wait even for a quick refresh, each scrape also
/// plans one for just before the next scrape is expected (the same interval again, a
/// little earlier than that, by twice the last refresh's duration). Nothing runs without
/// scrapes: after the last one at most that one planned refresh happens.
pub struct OnDemand {
    runner: Arc<Runner>,
    inner: std::sync::Mutex<Demand>,
}

#[derive(Default)]
struct Demand {
    /// When each section was last started.
    started: HashMap<Section, Instant>,
    /// The refresh in progress: set to true when it is done.
    refreshing: Option<tokio::sync::watch::Receiver<bool>>,
    last_scrape: Option<Instant>,
    /// How long the last refresh of the file sections took.
    last_refresh: Duration,
    planned: Option<tokio::task::JoinHandle<()>>,
}

/// When to refresh ahead of the next scrape, and when that scrape is expected: a scrape
/// came at `now`, the one before at `prev`, and the next is expected after the same gap.
/// None when it would find fresh enough data anyway (the gap is shorter than `max_age`),
/// or when there is nothing to go by (a first scrape, or a gap of more than an hour).
pub fn plan_refresh(
    prev: Option<Instant>,
    now: Instant,
    max_age: Duration,
    refresh_took: Duration,
) -> Option<(Instant, Instant)> {
    let gap = now.checked_duration_since(prev?)?;
    if gap < max_age || gap > Duration::from_secs(3600) {
        return None;
    }
    let lead = (refresh_took * 2 + Duration::from_millis(100)).min(gap / 4);
    Some((now + gap - lead, now + gap))
}

impl OnDemand {
    fn new(runner: Arc<Runner>) -> Self {
        OnDemand {
            runner,
            inner: std::sync::Mutex::new(Demand::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Demand> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sections whose data will be older than their period at `at`.
    fn due(&self, d: &Demand, at: Instant) -> Vec<Section> {
        Section::COLLECTED
            .into_iter()
            .filter(|s| {
                d.started.get(s).is_none_or(|t| {
                    at.saturating_duration_since(*t) >= self.runner.schedule.timing(*s).interval
                })
            })
            .collect()
    }

    /// Starts a refresh of what is due at `at` (or joins the one in progress). Returns a
    /// receiver that turns true when it is done, or None when nothing is due.
    fn refresh(self: &Arc<Self>, at: Instant) -> Option<tokio::sync::watch::Receiver<bool>> {
        let mut d = self.lock();
        if let Some(rx) = d.refreshing.as_ref().filter(|rx| !*rx.borrow()) {
            return Some(rx.clone());
        }
        let due = self.due(&d, at);
        if due.is_empty() {
            return None;
        }
        let now = Instant::now();
        for s in &due {
            d.started.insert(*s, now);
        }
        if due.contains(&Section::Probes) {
            let r = self.runner.clone();
            tokio::spawn(async move { r.run_probes().await });
        }
        let files: Vec<Section> = FILE_SECTIONS
            .into_iter()
            .filter(|s| due.contains(s))
            .collect();
        if files.is_empty() {
            return None;
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        d.refreshing = Some(rx.clone());
        let me = self.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            // One after the other (the checks last: they judge the others), so one
            // blocking thread does the whole refresh: waking a thread per section cost
            // more CPU than some of the sections.
            for s in files {
                me.runner.run_file(s).await;
            }
            me.lock().last_refresh = start.elapsed();
            let _ = tx.send(true);
        });
        Some(rx)
    }

    /// Called by the /metrics handler before it renders: refreshes what is stale and waits
    /// for it at most `wait`, then plans the refresh ahead of the next scrape.
    pub async fn before_scrape(self: &Arc<Self>, wait: Duration) {
        let now = Instant::now();
        if let Some(mut rx) = self.refresh(now) {
            let _ = tokio::time::timeout(wait, rx.wait_for(|done| *done)).await;
        }
        let mut d = self.lock();
        let max_age = self.runner.cfg.on_demand.unwrap_or_default();
        let at = plan_refresh(d.last_scrape, now, max_age, d.last_refresh);
        d.last_scrape = Some(now);
        if let Some(p) = d.planned.take() {
            p.abort();
        }
        if let Some((at, expected)) = at {
            // Judged as of the expected scrape: what will be stale then is collected now.
            let me = self.clone();
            d.planned = Some(tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let _ = me.refresh(expected);
            }));
        }
    }
}

//! `axon check`: runs the collectors once on this host (or a host root), each within its
//! deadline, evaluates the preflight checks and prints a table or JSON. Exit code 0 all
//! pass, 1 warnings or unknowns, 2 failures, 3 the checks could not run.

use super::collect_config;
use crate::agent::scheduler::{CollectConfig, Schedule, collect_section};
use crate::agent::state::{AgentState, SectionValue};
use crate::cli::CheckArgs;
use crate::collectors::HostRoot;
use crate::collectors::probes;
use crate::model::checks::{self, CheckResult, CheckStatus};
use crate::model::snapshot::{NodeInfo, Section};
use std::io::IsTerminal;
use std::time::Duration;

pub struct CheckOutcome {
    pub hostname: String,
    pub profile: Option<String>,
    pub kernel: Option<String>,
    pub results: Vec<CheckResult>,
    /// Per-collector problems: the file or syscall that could not be read, or the
    /// collector that timed out.
    pub problems: Vec<String>,
    /// Why the checks themselves could not run (then `results` is empty).
    pub error: Option<String>,
}

/// `axon check`: the exit code is the worst check's.
pub async fn exec(a: CheckArgs) -> anyhow::Result<i32> {
    let root = HostRoot::open_within(
        &a.collect.host_root,
        crate::collectors::hostroot::STARTUP_DEADLINE,
    )
    .await?;
    let cfg = collect_config(&a.collect)?;
    let outcome = run(&root, &cfg).await;
    if a.json {
        println!("{}", render_json(&outcome));
    } else {
        print!("{}", render_table(&outcome, use_color()));
    }
    for p in outcome.problems.iter().filter(|p| p.contains("timed out")) {
        eprintln!("axon check: {p}");
    }
    if outcome.results.is_empty() {
        eprintln!(
            "axon check: could not run the checks: {}",
            outcome
                .error
                .as_deref()
                .unwrap_or("no check produced a result")
        );
    }
    Ok(checks::exit_code(&outcome.results))
}

/// Runs one file collector on the blocking pool within `deadline`. A read that hangs
/// (sysfs, NFS) leaves its thread blocked but not the command: the collector is reported
/// as failed.
pub(super) async fn collect_within<T: Send + 'static>(
    deadline: Duration,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    match tokio::time::timeout(deadline, tokio::task::spawn_blocking(job)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("collector crashed: {e}")),
        Err(_) => Err(format!(
            "timed out after its {} ms deadline (a file read hung?)",
            deadline.as_millis()
        )),
    }
}

pub async fn run(root: &HostRoot, cfg: &CollectConfig) -> CheckOutcome {
    // A root without proc/ and sys/ holds no host at all: judging it would fail checks on
    // facts that were never there ("no NVMe drives"). That is "could not run", not a host.
    let empty = |d: &str| root.list_opt(d).map(|v| v.is_empty()).unwrap_or(false);
    if empty("/proc") && empty("/sys") {
        return CheckOutcome {
            hostname: "unknown".into(),
            profile: root.profile().map(|p| p.name.clone()),
            kernel: None,
            results: Vec::new(),
            problems: Vec::new(),
            error: Some(format!(
                "{} holds no host facts (no proc/ or sys/ under it) — pass the directory that holds a host's proc/ and sys/ (a mounted host root, or a fixture tree such as tests/fixtures/hosts/misconfigured)",
                root.root().display()
            )),
        };
    }
    let schedule = Schedule::with_base(Duration::from_secs(1));
    let state = std::sync::Arc::new(AgentState::new(
        NodeInfo::default(),
        schedule.initial_status(),
    ));
    let mut problems = Vec::new();
    // The probe round first: it is the slowest part (network round trips, up to its
    // deadline), and the checks judge file facts as stale a few intervals after they
    // were read, so those are read last.
    if !cfg.peers.is_empty() {
        let deadline = schedule.probes.deadline;
        let round = async {
            let peers = probes::resolve(&cfg.peers).await;
            probes::run(&peers, &cfg.probe_ports, &cfg.probe).await
        };
        match tokio::time::timeout(deadline, round).await {
            Ok(report) => state.update(SectionValue::Probes(report), None, 0),
            Err(_) => {
                let e = format!(
                    "probe round exceeded its {} ms deadline",
                    deadline.as_millis()
                );
                problems.push(format!("probes: {e}"));
                state.fail(Section::Probes, e, 0);
            }
        }
    }
    for section in [
        Section::Topology,
        Section::Network,
        Section::Nvme,
        Section::Pinning,
    ] {
        let (r, c) = (root.clone(), cfg.clone());
        let deadline = schedule.timing(section).deadline;
        match collect_within(deadline, move || collect_section(&r, &c, None, section)).await {
            Ok(Ok((value, p))) => {
                problems.extend(p.iter().map(|e| format!("{}: {e}", section.as_str())));
                state.update(value, p.summary(), 0);
            }
            Ok(Err(e)) => {
                problems.push(format!("{}: {e}", section.as_str()));
                state.fail(section, e.to_string(), 0);
            }
            Err(e) => {
                problems.push(format!(
                    "{} collector {e}; the checks that need it are unknown",
                    section.as_str()
                ));
                state.fail(section, e, 0);
            }
        }
    }
    let (r, c, st) = (root.clone(), cfg.clone(), state.clone());
    let checks = collect_within(schedule.checks.deadline, move || {
        collect_section(&r, &c, Some(&st), Section::Checks)
    })
    .await;
    let (mut results, mut kernel, mut error) = (Vec::new(), None, None);
    match checks {
        Ok(Ok((SectionValue::Checks(facts, r), p))) => {
            problems.extend(p.iter().map(|e| format!("checks: {e}")));
            results = r;
            kernel = facts.kernel_release;
        }
        Ok(Ok(_)) => error = Some("the checks collector returned no checks".into()),
        Ok(Err(e)) => error = Some(e.to_string()),
        Err(e) => error = Some(format!("the checks collector {e}")),
    }
    // The name is outside data too: read bounded, off the async workers, within a deadline.
    let r = root.clone();
    let hostname = collect_within(crate::collectors::hostroot::STARTUP_DEADLINE, move || {
        r.hostname()
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| "unknown".into());
    CheckOutcome {
        hostname,
        profile: root.profile().map(|p| p.name.clone()),
        kernel,
        results,
        problems,
        error,
    }
}

fn rank(s: CheckStatus) -> u8 {
    match s {
        CheckStatus::Fail => 0,
        CheckStatus::Warn => 1,
        CheckStatus::Unknown => 2,
        CheckStatus::Pass => 3,
    }
}

/// Results worst first, catalogue order within a status.
pub fn sorted(results: &[CheckResult]) -> Vec<&CheckResult> {
    let pos = |id: &str| {
        checks::CATALOG
            .iter()
            .position(|d| d.id == id)
            .unwrap_or(usize::MAX)
    };
    let mut v: Vec<&CheckResult> = results.iter().collect();
    v.sort_by_key(|r| (rank(r.status), pos(&r.id)));
    v
}

pub fn render_table(o: &CheckOutcome, color: bool) -> String {
    use std::fmt::Write;
    let paint = |s: CheckStatus| -> String {
        let word = format!("{:<7}", s.as_str().to_uppercase());
        if !color {
            return word;
        }
        let code = match s {
            CheckStatus::Pass => "32",
            CheckStatus::Warn => "33",
            CheckStatus::Fail => "1;31",
            CheckStatus::Unknown => "35",
        };
        format!("\x1b[{code}m{word}\x1b[0m")
    };
    let mut out = String::new();
    let _ = write!(out, "axon check — {}", o.hostname);
    if let Some(p) = &o.profile {
        let _ = write!(out, " (EMULATED host profile `{p}`)");
    }
    if let Some(k) = &o.kernel {
        let _ = write!(out, ", kernel {k}");
    }
    out.push_str("\n\n");
    if let Some(e) = &o.error {
        let _ = writeln!(out, "  the checks could not run: {e}");
    }
    let width = o.results.iter().map(|r| r.id.len()).max().unwrap_or(10);
    for r in sorted(&o.results) {
        let _ = writeln!(
            out,
            "  {} {:<width$}  {}",
            paint(r.status),
            r.id,
            r.observed
        );
        if r.status != CheckStatus::Pass {
            let pad = " ".repeat(width + 12);
            let _ = writeln!(out, "{pad}expected: {}", r.expected);
            if !r.remedy.is_empty() {
                let _ = writeln!(out, "{pad}remedy:   {}", r.remedy);
            }
        }
    }
    let count = |s| o.results.iter().filter(|r| r.status == s).count();
    let _ = writeln!(
        out,
        "\n{} pass, {} warn, {} fail, {} unknown",
        count(CheckStatus::Pass),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail),
        count(CheckStatus::Unknown)
    );
    if !o.problems.is_empty() {
        let _ = writeln!(
            out,
            "\nfacts that could not be read ({}):",
            o.problems.len()
        );
        for p in o.problems.iter().take(10) {
            let _ = writeln!(out, "  {p}");
        }
        if o.problems.len() > 10 {
            let _ = writeln!(out, "  … and {} more (see --json)", o.problems.len() - 10);
        }
    }
    out
}

pub fn render_json(o: &CheckOutcome) -> String {
    let count = |s| o.results.iter().filter(|r| r.status == s).count();
    let v = serde_json::json!({
        "host": o.hostname,
        "emulated_profile": o.profile,
        "kernel": o.kernel,
        "exit_code": checks::exit_code(&o.results),
        "summary": {
            "pass": count(CheckStatus::Pass),
            "warn": count(CheckStatus::Warn),
            "fail": count(CheckStatus::Fail),
            "unknown": count(CheckStatus::Unknown),
        },
        "results": sorted(&o.results),
        "problems": o.problems,
        "error": o.error,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

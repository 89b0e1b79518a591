//! `axon probe`: the full port probe from one node to its peers, as an operation on that
//! node's agent (`actions::probe`, the same code the console's `P` key runs), followed to
//! its end with a progress bar on a terminal, plain lines otherwise, or JSON lines.
//! Ctrl-C asks the agent to cancel; a second Ctrl-C stops following.
//!
//! Exit codes: 0 nothing blocked, 1 cancelled, 2 ports blocked, 3 could not run (see
//! `axon probe --help`).

use crate::actions::Progress;
use crate::actions::probe::{ProbeRequest, full_probe};
use crate::cli::ProbeArgs;
use crate::model::ops::{Operation, OperationOutput, OperationState};
use crate::model::{hostlist, ports};
use anyhow::{Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const EXIT_CLEAR: i32 = 0;
pub const EXIT_CANCELLED: i32 = 1;
pub const EXIT_BLOCKED: i32 = 2;
pub const EXIT_COULD_NOT_RUN: i32 = 3;

pub async fn exec(a: ProbeArgs) -> Result<i32> {
    let mut out = Output::new(a.json);
    let req = match request(&a) {
        Ok(r) => r,
        Err(e) => return Ok(out.error(&super::error_text(&e))),
    };
    let cancel = CancellationToken::new();
    let abandon = CancellationToken::new();
    let signals = tokio::spawn(interrupts(cancel.clone(), abandon.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let node = req.spec.name.clone();
    tokio::spawn(full_probe(req, tx, cancel.clone()));
    let mut started: Option<Operation> = None;
    let mut cancel_noted = false;
    let code = loop {
        let p = tokio::select! {
            p = rx.recv() => p,
            _ = cancel.cancelled(), if !cancel_noted => {
                cancel_noted = true;
                out.note("cancelling: the agent stops within the current step (Ctrl-C again to stop following)");
                continue;
            }
            _ = abandon.cancelled() => {
                let what = started.as_ref().map(|o| o.id.as_str()).unwrap_or("the probe");
                break out.error(&format!(
                    "stopped following {what} on {node}; the agent finishes cancelling it (`axon console` lists it in its jobs)"
                ));
            }
        };
        match p {
            Some(Progress::Started(op)) => {
                out.started(&op, &node);
                started = Some(op);
            }
            Some(Progress::Step(s)) => out.step(&s.name, s.done, s.total),
            Some(Progress::Log(l)) => out.log(&l),
            Some(Progress::Finished(Ok(op))) => break out.finished(&op),
            Some(Progress::Finished(Err(e))) => break out.error(&format!("{e}")),
            None => break out.error("the probe task ended without a result"),
        }
    };
    signals.abort();
    Ok(code)
}

/// The request from the flags: the node, its token and trust, the peers and groups. Every
/// error here comes before anything is asked, naming the flag or file and the remedy.
fn request(a: &ProbeArgs) -> Result<ProbeRequest> {
    let groups: Vec<String> = a
        .groups
        .iter()
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    if groups.is_empty() {
        bail!(
            "--groups is empty; name at least one port group ({})",
            known_groups()
        );
    }
    for g in &groups {
        if ports::group(g).is_none() {
            bail!(
                "--groups: unknown port group `{g}`; known: {}",
                known_groups()
            );
        }
    }
    if let Some(p) = &a.peers {
        // The agent expands it again (bounded); expanding here gives the error before
        // connecting, naming the flag.
        let n = hostlist::expand(p).map_err(|e| anyhow!("--peers: {e}"))?;
        if n.is_empty() {
            bail!("--peers names no host; pass a host list such as 'axon[002-008]'");
        }
    }
    let inv = super::inventory(&a.fleet)?;
    let Some(spec) = inv.nodes.iter().find(|n| n.name == a.node).cloned() else {
        let source = match &inv.path {
            Some(p) => format!("inventory {}", p.display()),
            None => "--hosts".to_string(),
        };
        let names: Vec<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
        let shown = names
            .iter()
            .take(12)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if names.len() > 12 {
            format!(" and {} more", names.len() - 12)
        } else {
            String::new()
        };
        bail!(
            "--node {}: no such node in {source}; its nodes are {shown}{more}",
            a.node
        );
    };
    let tokens = inv.load_tokens()?;
    let token = spec
        .token_file
        .as_ref()
        .and_then(|p| tokens.get(p).cloned());
    let security = inv.security(&spec)?;
    let peers = match &a.peers {
        Some(p) => p.clone(),
        None => {
            let mut others: Vec<&str> = Vec::new();
            for n in inv.nodes.iter().filter(|n| n.name != spec.name) {
                if !others.contains(&n.address.as_str()) {
                    others.push(&n.address);
                }
            }
            others.join(",")
        }
    };
    Ok(ProbeRequest {
        spec,
        token,
        security,
        peers,
        groups,
    })
}

fn known_groups() -> String {
    ports::PORT_GROUPS
        .iter()
        .map(|g| g.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// First Ctrl-C (or SIGTERM): cancel; the second: stop following.
async fn interrupts(cancel: CancellationToken, abandon: CancellationToken) {
    super::wait_for_shutdown().await;
    cancel.cancel();
    super::wait_for_shutdown().await;
    abandon.cancel();
}

/// Where progress goes: JSON lines on stdout, a bar on a terminal's stderr, or plain
/// lines on stderr; the result always on stdout.
struct Output {
    mode: Mode,
    began: Instant,
}

enum Mode {
    Json,
    Bar(ProgressBar),
    Lines,
}

impl Output {
    fn new(json: bool) -> Output {
        let mode = if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Bar(ProgressBar::hidden())
        } else {
            Mode::Lines
        };
        Output {
            mode,
            began: Instant::now(),
        }
    }

    fn json_line(v: serde_json::Value) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{v}");
        let _ = o.flush();
    }

    fn started(&mut self, op: &Operation, node: &str) {
        match &mut self.mode {
            Mode::Json => {
                Self::json_line(json!({"event": "started", "node": node, "operation": op}))
            }
            Mode::Bar(bar) => {
                let b = ProgressBar::new(op.step.total.max(1));
                b.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix} [{bar:30}] {pos}/{len} peers  {elapsed}  {wide_msg}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                b.set_prefix(op.id.clone());
                b.set_message(op.target.clone());
                b.enable_steady_tick(Duration::from_millis(120));
                *bar = b;
            }
            Mode::Lines => eprintln!("started {} on {node}: {}", op.id, op.target),
        }
    }

    fn step(&mut self, name: &str, done: u64, total: u64) {
        match &self.mode {
            Mode::Json => Self::json_line(
                json!({"event": "step", "name": name, "done": done, "total": total}),
            ),
            Mode::Bar(b) => {
                b.set_length(total.max(1));
                b.set_position(done);
                b.set_message(name.to_string());
            }
            Mode::Lines => eprintln!("step {done}/{total}: {name}"),
        }
    }

    fn log(&mut self, text: &str) {
        match &self.mode {
            Mode::Json => Self::json_line(json!({"event": "log", "text": text})),
            Mode::Bar(b) => b.println(format!("  {text}")),
            Mode::Lines => eprintln!("  {text}"),
        }
    }

    fn note(&mut self, text: &str) {
        match &self.mode {
            Mode::Json => Self::json_line(json!({"event": "note", "text": text})),
            Mode::Bar(b) => b.println(format!("axon probe: {text}")),
            Mode::Lines => eprintln!("axon probe: {text}"),
        }
    }

    fn clear(&mut self) {
        if let Mode::Bar(b) = &self.mode {
            b.finish_and_clear();
        }
    }

    fn error(&mut self, text: &str) -> i32 {
        self.clear();
        match &self.mode {
            Mode::Json => Self::json_line(
                json!({"event": "error", "exit_code": EXIT_COULD_NOT_RUN, "error": text}),
            ),
            _ => eprintln!("axon probe: {text}"),
        }
        EXIT_COULD_NOT_RUN
    }

    fn finished(&mut self, op: &Operation) -> i32 {
        self.clear();
        let code = exit_code(op);
        match &self.mode {
            Mode::Json => {
                Self::json_line(json!({"event": "finished", "exit_code": code, "operation": op}))
            }
            _ => print!("{}", render(op, self.began.elapsed())),
        }
        code
    }
}

/// The verdict of a finished probe.
pub fn exit_code(op: &Operation) -> i32 {
    match op.state {
        OperationState::Running | OperationState::Failed => EXIT_COULD_NOT_RUN,
        OperationState::Cancelled => EXIT_CANCELLED,
        OperationState::Succeeded => match &op.output {
            Some(OperationOutput::PortProbe { report }) if report.blocked_total > 0 => EXIT_BLOCKED,
            _ => EXIT_CLEAR,
        },
    }
}

/// Blocked ports of one peer, protocol and state, as ranges.
type BlockedRow<'a> = (String, &'a str, &'a str, Vec<(u16, u16)>);

/// The result for a person: how it ended, then every blocked probe the agent sent.
pub fn render(op: &Operation, took: Duration) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} after {:.1} s: {}",
        op.id,
        op.state.as_str(),
        took.as_secs_f64(),
        op.summary
            .as_deref()
            .or(op.error.as_deref())
            .unwrap_or("no summary")
    );
    if let Some(e) = op.error.as_deref().filter(|_| op.summary.is_some()) {
        let _ = writeln!(s, "error: {e}");
    }
    let Some(OperationOutput::PortProbe { report }) = &op.output else {
        return s;
    };
    let mut blocked: Vec<_> = report.blocked().collect();
    if blocked.is_empty() {
        return s;
    }
    // One line per peer, protocol and state, with the ports as ranges: a firewall closes
    // ranges, and 256 lines of consecutive ports say less than one.
    blocked.sort_by(|a, b| {
        (&a.peer, a.proto, a.state, a.port).cmp(&(&b.peer, b.proto, b.state, b.port))
    });
    let mut rows: Vec<BlockedRow> = Vec::new();
    for r in &blocked {
        let key = (r.peer.to_string(), r.proto.as_str(), r.state.as_str());
        match rows.last_mut() {
            Some((p, pr, st, ranges))
                if (p.as_str(), *pr, *st) == (key.0.as_str(), key.1, key.2) =>
            {
                match ranges.last_mut() {
                    Some((_, hi)) if u32::from(*hi) + 1 == u32::from(r.port) => *hi = r.port,
                    _ => ranges.push((r.port, r.port)),
                }
            }
            _ => rows.push((key.0, key.1, key.2, vec![(r.port, r.port)])),
        }
    }
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        s,
        "\nblocked:\n{:<w$}  {:<5}  {:<11}  PORTS",
        "PEER", "PROTO", "STATE"
    );
    for (peer, proto, state, ranges) in &rows {
        let ports: Vec<String> = ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "{peer:<w$}  {proto:<5}  {state:<11}  {}",
            ports.join(",")
        );
    }
    if (blocked.len() as u64) < u64::from(report.blocked_total) {
        let _ = writeln!(
            s,
            "… and {} more blocked (the agent sends the first {}; its /metrics has all)",
            u64::from(report.blocked_total) - blocked.len() as u64,
            blocked.len()
        );
    }
    s
}

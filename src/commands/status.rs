//! `axon status`: the cluster's health in a few lines, like `ceph -s`. Follows every node
//! of the inventory as the console does, waits until each has answered or failed (or the
//! timeout), computes `fleet::Health` once — the Overview's figures and problems, the same
//! way — and prints a summary or JSON. Exit 0 healthy, 1 warnings, 2 critical, 3
//! unreachable (the rule is on `fleet::health::Verdict`).
//!
//! `--json` prints one document (one per line with `--watch`). Its fields are stable:
//!
//! ```text
//! verdict          "healthy" | "warnings" | "critical" | "unreachable"
//! exit_code        0 | 1 | 2 | 3
//! at_ms            when it was judged (the console's clock, Unix ms)
//! nodes            total, up, stale, down, connecting, emulated, and list: one entry per
//!                  node in inventory order {name, endpoint, status ("up" | "stale" |
//!                  "down" | "connecting"), reason (null when up), failure (null |
//!                  "timeout" | "connection" | "protocol" | "auth"), last_data_age_ms
//!                  (null: never answered), emulated_profile (null: a real host)}
//! checks           failing (node checks failing, over all nodes), failing_nodes,
//!                  failing_cluster, warning (node and cluster-wide), reported_nodes (up
//!                  nodes that reported checks), cluster: the cluster-wide checks {id,
//!                  status, observed, expected, remedy}
//! drives           ok, warning, critical, unknown (of up nodes), not_current (drives of
//!                  nodes that are not up: last known health, not counted above)
//! probes           blocked, total (of up nodes)
//! cores            conflicts, reported_nodes (up nodes that reported pinning)
//! data_plane       reporting (false, and the rest null, when no member reports: no
//!                  figure is made up), members_reporting, members, io, protection,
//!                  stripes_by_lost, away and past_grace (member ids), lost_chunks,
//!                  repair_paused (true: lost chunks wait for start-io), rebuild
//!                  (null unless one runs: stripes_done, stripes_total, bytes, rate,
//!                  eta_secs)
//! problems         worst first: {severity ("critical" | "warning" | "info"), kind
//!                  ("node" | "cluster" | "check" | "drive" | "ports" | "cores" |
//!                  "collector" | "stale"), node (null | name), text}
//! ```

use crate::cli::StatusArgs;
use crate::clock::now_ms;
use crate::fleet::health::{Health, NO_DATA_PLANE, Verdict};
use crate::fleet::view::{
    ClusterView, DATAPLANE_FRESH_MS, DataplaneView, DpBrief, FailureKind, NodeStatus, Severity,
    fmt_age,
};
use crate::fleet::{Fleet, FollowOptions, Inventory};
use anyhow::Result;
use humansize::{BINARY, format_size};
use serde_json::json;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::time::Duration;

/// Lines of nodes not up, and of problems, the summary shows; `--json` has them all.
const LIST_MAX: usize = 20;

/// `axon status`: the exit code is the verdict's.
pub async fn exec(a: StatusArgs) -> Result<i32> {
    run(&super::inventory(&a.fleet)?, &a).await
}

/// Every node has answered with the sections the health line judges (checks, pinning,
/// drives), or failed for good: refused, not gRPC, bad token. A node that only timed out
/// may just be slow, so it is waited for.
pub fn settled(view: &ClusterView, now_ms: i64) -> bool {
    view.nodes.iter().all(|n| answered(n, now_ms, view))
}

fn answered(n: &crate::fleet::NodeView, now_ms: i64, view: &ClusterView) -> bool {
    let definite = n
        .failure
        .as_ref()
        .is_some_and(|f| f.kind != FailureKind::Timeout);
    (definite && n.status(now_ms, &view.thresholds) == NodeStatus::Down)
        || n.snapshot
            .as_ref()
            .is_some_and(|s| s.checks.is_some() && s.pinning.is_some() && s.nvme.is_some())
}

fn view_name(view: &ClusterView, i: usize) -> String {
    view.nodes[i].name.clone()
}

pub async fn run(inv: &Inventory, a: &StatusArgs) -> Result<i32> {
    let mut opts = FollowOptions::for_interval(a.interval);
    // The data line adds up the members' shares against the cluster's configuration.
    opts.cluster = true;
    let mut fleet = Fleet::start(inv, opts)?;
    wait(&mut fleet, a.timeout, "status").await;
    wait_dataplane(&mut fleet).await;
    let mut out = std::io::stdout().lock();
    let Some(every) = a.watch else {
        let h = Health::compute(&fleet.view, now_ms());
        let cluster = cluster_summary(inv, &fleet.view, &h).await;
        let text = if a.json {
            format!(
                "{:#}\n",
                with_cluster_json(to_json(&fleet.view, &h), &cluster)
            )
        } else {
            with_cluster_line(
                render_text(&fleet.view, &h, super::check::use_color()),
                &cluster,
            )
        };
        // A closed pipe (`| head`) is not an error of the cluster.
        let _ = out.write_all(text.as_bytes());
        fleet.stop();
        return Ok(h.verdict.exit_code());
    };
    // One listener for the whole watch, so a Ctrl-C between two waits is not lost.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let clear = !a.json && std::io::stdout().is_terminal();
    let color = super::check::use_color();
    let mut next = tokio::time::Instant::now();
    let mut code;
    loop {
        // Catch up with what arrived, then judge.
        fleet.drain();
        let h = Health::compute(&fleet.view, now_ms());
        code = h.verdict.exit_code();
        // The cluster line is asked afresh for every frame, as without --watch.
        let cluster = cluster_summary(inv, &fleet.view, &h).await;
        let text = if a.json {
            format!(
                "{}\n",
                with_cluster_json(to_json(&fleet.view, &h), &cluster)
            )
        } else {
            let t = with_cluster_line(render_text(&fleet.view, &h, color), &cluster);
            if clear {
                format!("\x1b[H\x1b[2J{t}")
            } else {
                format!("{t}\n")
            }
        };
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            break;
        }
        next = (next + every).max(tokio::time::Instant::now());
        let stop = loop {
            tokio::select! {
                _ = fleet.changed() => {}
                _ = tokio::time::sleep_until(next) => break false,
                _ = interrupt.recv() => break true,
            }
        };
        if stop {
            break;
        }
    }
    fleet.stop();
    Ok(code)
}

/// The data-plane cluster's line and JSON, when the agents host one: asked of one member
/// (not followed), only of nodes that answered, for at most 5 s.
async fn cluster_summary(
    inv: &Inventory,
    view: &ClusterView,
    h: &Health,
) -> Option<(String, serde_json::Value)> {
    let not_up: Vec<String> = h.not_up.iter().map(|n| view_name(view, n.node)).collect();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        super::cluster::summary(inv, &not_up),
    )
    .await
    .ok()
    .flatten()
}

fn with_cluster_json(
    mut v: serde_json::Value,
    cluster: &Option<(String, serde_json::Value)>,
) -> serde_json::Value {
    if let Some((_, j)) = cluster {
        v["cluster"] = j.clone();
    }
    v
}

/// The `cluster` line with the other summary lines, before the lists below them.
fn with_cluster_line(mut t: String, cluster: &Option<(String, serde_json::Value)>) -> String {
    if let Some((line, _)) = cluster {
        let at = t
            .find("\n  nodes")
            .and_then(|i| t[i + 1..].find("\n\n").map(|j| i + 1 + j + 1))
            .unwrap_or(t.len());
        t.insert_str(at, &format!("  {:<9} {line}\n", "cluster"));
    }
    t
}

/// When the nodes report a data-plane cluster, waits (at most 3 s) for the configuration
/// the fleet fetches from a member and for the share of the data of every member that
/// answered within `DATAPLANE_FRESH_MS` and holds drives (a member counts its share
/// every 2 s), so the `data` line adds them all up.
async fn wait_dataplane(fleet: &mut Fleet) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let pending = |v: &ClusterView| {
        let now = now_ms();
        let holders = v
            .nodes
            .iter()
            .filter(|n| {
                n.received_ms
                    .is_some_and(|r| now.saturating_sub(r) <= DATAPLANE_FRESH_MS)
            })
            .filter(|n| {
                n.snapshot
                    .as_ref()
                    .and_then(|s| s.dataplane.as_ref())
                    .is_some_and(|d| !d.cluster.is_empty() && !d.drives.is_empty())
            })
            .count();
        v.has_cluster_member() && v.dataplane(now).is_none_or(|dp| dp.reporting < holders)
    };
    while pending(&fleet.view) {
        tokio::select! {
            _ = fleet.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::time::sleep_until(deadline) => return,
        }
    }
}

/// Follows the fleet until every node has answered or failed, or `timeout`. After a
/// second, a terminal on stderr is told what is still awaited.
pub async fn wait(fleet: &mut Fleet, timeout: Duration, verb: &str) {
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    let progress = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut shown = false;
    loop {
        let now = now_ms();
        if settled(&fleet.view, now) {
            break;
        }
        if progress && start.elapsed() >= Duration::from_secs(1) {
            let total = fleet.view.nodes.len();
            let done = fleet
                .view
                .nodes
                .iter()
                .filter(|n| answered(n, now, &fleet.view))
                .count();
            eprint!(
                "\r\x1b[Kaxon {verb}: {done} of {total} nodes answered, waiting for the rest ({:.1}s of {:.1}s)",
                start.elapsed().as_secs_f64(),
                timeout.as_secs_f64()
            );
            shown = true;
        }
        tokio::select! {
            _ = fleet.changed() => {}
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    if shown {
        eprint!("\r\x1b[K");
    }
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "WARN",
        Severity::Critical => "CRIT",
    }
}

/// `3 label` joined with ` · `, leaving out zeros.
fn counted(parts: &mut Vec<String>, n: usize, label: &str) {
    if n > 0 {
        parts.push(format!("{n} {label}"));
    }
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// The `data` line: the members' shares added up, as the nodes report them in their
/// Watch streams (the `cluster` line below it asks a member directly). `members`: some
/// node reports that it is a member of a cluster.
fn data_line(dp: Option<&DpBrief>, members: bool) -> Vec<String> {
    let Some(b) = dp else {
        return vec![if members {
            "the nodes report a cluster; its configuration has not arrived yet".into()
        } else {
            format!("{NO_DATA_PLANE} (protection, IO status, rebuild)")
        }];
    };
    let mut parts = vec![format!("IO {}", b.io)];
    if b.protection.is_empty() {
        parts.push("protection not counted: no member reports its share of the data".into());
    } else {
        parts.push(format!("protection {}", b.protection));
        if let Some((done, total)) = b.rebuild {
            parts.push(format!(
                "rebuilding {done}/{total} stripes at {}/s, {}",
                format_size(b.rebuild_rate, BINARY),
                crate::model::dataplane::eta_words(done, total, b.rebuild_eta_secs)
            ));
        }
        match b.past_grace {
            0 => counted(&mut parts, b.away, "member(s) away"),
            past => parts.push(format!(
                "{} member(s) away, {past} past the grace period",
                b.away
            )),
        }
        counted(&mut parts, b.lost_chunks as usize, b.lost_words());
    }
    parts.push(format!(
        "{} of {} members reporting",
        b.reporting, b.members
    ));
    parts
}

/// `data_plane` in `--json`: reporting false and nulls when no member reports.
fn data_json(dp: Option<&DataplaneView>) -> serde_json::Value {
    let Some(dp) = dp else {
        return json!({
            "reporting": false,
            "members_reporting": null,
            "members": null,
            "io": null,
            "protection": null,
            "stripes_by_lost": null,
            "away": null,
            "past_grace": null,
            "lost_chunks": null,
            "repair_paused": null,
            "rebuild": null,
        });
    };
    let d = dp.data.as_ref();
    json!({
        "reporting": true,
        "members_reporting": dp.reporting,
        "members": dp.config.members.len(),
        "io": dp.config.io.as_str(),
        "protection": d.map(|d| d.protection.as_str()),
        "stripes_by_lost": d.map(|d| &d.stripes_by_lost),
        "away": d.map(|d| &d.away),
        "past_grace": d.map(|d| &d.failed),
        "lost_chunks": d.map(|d| d.lost_chunks),
        "repair_paused": d.map(|d| d.repair_paused),
        "rebuild": d.filter(|d| d.rebuild.active).map(|d| json!({
            "stripes_done": d.rebuild.stripes_done,
            "stripes_total": d.rebuild.stripes_total,
            "bytes": d.rebuild.bytes,
            "rate": d.rebuild.rate,
            "eta_secs": d.rebuild.eta_secs,
        })),
    })
}

/// The summary: a header with the verdict, then one line per area (the figures of the
/// Overview's health line, in words), the nodes that are not up with why, and the
/// problems worst first.
pub fn render_text(view: &ClusterView, h: &Health, color: bool) -> String {
    let c = &h.counts;
    let total = view.nodes.len();
    let paint = |text: &str, code: &str| -> String {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let verdict = paint(
        h.verdict.as_str(),
        match h.verdict {
            Verdict::Healthy => "1;32",
            Verdict::Warnings => "1;33",
            Verdict::Critical => "1;31",
            Verdict::Unreachable => "1;35",
        },
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "axon status: {verdict} (exit {}) · {total} node{} · {}",
        h.verdict.exit_code(),
        if total == 1 { "" } else { "s" },
        utc(h.now_ms)
    );
    out.push('\n');
    let mut line = |name: &str, parts: Vec<String>| {
        let _ = writeln!(out, "  {name:<9} {}", parts.join(" · "));
    };

    let mut nodes = vec![format!("{} up", c.up)];
    counted(&mut nodes, c.stale, "stale");
    counted(&mut nodes, c.down, "down");
    counted(&mut nodes, c.connecting, "not answering yet");
    let last = nodes.pop().unwrap_or_default();
    nodes.push(format!("{last} of {total}"));
    line("nodes", nodes);

    let mut checks = Vec::new();
    let cluster = c.checks_failing_cluster;
    if c.checks_failing > 0 {
        checks.push(format!(
            "{} failing on {} node(s){}",
            c.checks_failing,
            c.checks_failing_nodes,
            if cluster > 0 {
                format!(" + {cluster} cluster-wide")
            } else {
                String::new()
            }
        ));
    } else if cluster > 0 {
        checks.push(format!("{cluster} failing cluster-wide"));
    } else if c.checks_reported == 0 {
        checks.push("no data yet".into());
    } else {
        checks.push("none failing".into());
    }
    counted(&mut checks, c.checks_warning, "warn");
    line("checks", checks);

    let mut drives = Vec::new();
    let known = c.drives_ok + c.drives_warning + c.drives_critical + c.drives_unknown;
    if known + c.drives_not_current == 0 {
        drives.push("no data yet".into());
    } else {
        drives.push(format!("{} ok", c.drives_ok));
    }
    counted(&mut drives, c.drives_warning, "warning");
    counted(&mut drives, c.drives_critical, "critical");
    counted(&mut drives, c.drives_unknown, "SMART unknown");
    counted(&mut drives, c.drives_not_current, "on nodes not up");
    line("drives", drives);

    line(
        "ports",
        vec![if c.probes_total == 0 {
            "no probe data".into()
        } else if c.probes_blocked > 0 {
            format!("{} of {} probes blocked", c.probes_blocked, c.probes_total)
        } else {
            format!("all {} probes pass", c.probes_total)
        }],
    );
    line(
        "cores",
        vec![if c.conflicts > 0 {
            format!("{} conflicts", c.conflicts)
        } else if c.pinning_reported == 0 {
            "no data yet".into()
        } else {
            "no conflicts".into()
        }],
    );
    line(
        "data",
        data_line(
            view.dataplane(h.now_ms).map(|d| d.brief()).as_ref(),
            view.has_cluster_member(),
        ),
    );
    if c.emulated > 0 {
        line(
            "emulated",
            vec![format!(
                "{} of {total} nodes run on emulated host profiles (fixture trees)",
                c.emulated
            )],
        );
    }

    if !h.not_up.is_empty() {
        let _ = writeln!(out, "\n  not up ({})", h.not_up.len());
        let width = h
            .not_up
            .iter()
            .take(LIST_MAX)
            .map(|n| view.nodes[n.node].name.len())
            .max()
            .unwrap_or(0);
        let status_width = h
            .not_up
            .iter()
            .take(LIST_MAX)
            .map(|n| n.status.as_str().len())
            .max()
            .unwrap_or(0);
        for n in h.not_up.iter().take(LIST_MAX) {
            let status = n.status.as_str();
            let word = match n.status {
                NodeStatus::Down => paint(status, "1;31"),
                NodeStatus::Stale => paint(status, "33"),
                _ => status.to_string(),
            };
            // A failure's message does not say since when the node has been silent.
            let since = if n.status == NodeStatus::Down && n.failure.is_some() {
                format!(
                    " ({})",
                    n.last_data_age_ms
                        .map(|a| format!("last data {} ago", fmt_age(Some(a))))
                        .unwrap_or_else(|| "no data since this command started".into())
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "    {:<width$}  {word}{}  {}{since}",
                view.nodes[n.node].name,
                " ".repeat(status_width - status.len()),
                n.reason,
            );
        }
        if h.not_up.len() > LIST_MAX {
            let _ = writeln!(
                out,
                "    … and {} more (--json lists every node)",
                h.not_up.len() - LIST_MAX
            );
        }
    }

    if h.problems.is_empty() {
        let _ = writeln!(
            out,
            "\n  no problems: every node is up and fresh, every check passes, every drive is healthy"
        );
    } else {
        let _ = writeln!(out, "\n  problems, worst first ({})", h.problems.len());
        for p in h.problems.iter().take(LIST_MAX) {
            let sev = match p.severity {
                Severity::Critical => paint(label(p.severity), "1;31"),
                Severity::Warning => paint(label(p.severity), "33"),
                Severity::Info => label(p.severity).to_string(),
            };
            let _ = writeln!(out, "    {sev}  {:<9} {}", p.kind.as_str(), p.text);
        }
        if h.problems.len() > LIST_MAX {
            let _ = writeln!(
                out,
                "    … and {} more (--json lists them all)",
                h.problems.len() - LIST_MAX
            );
        }
    }
    out
}

/// The JSON document; its fields are listed in the module's documentation.
pub fn to_json(view: &ClusterView, h: &Health) -> serde_json::Value {
    let c = &h.counts;
    let mut not_up = h.not_up.iter().peekable();
    let list: Vec<serde_json::Value> = view
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let why = not_up.next_if(|x| x.node == i);
            json!({
                "name": n.name,
                "endpoint": n.endpoint,
                "status": h.status[i],
                "reason": why.map(|x| x.reason.as_str()),
                "failure": why.and_then(|x| x.failure),
                "last_data_age_ms": n.received_ms.map(|r| h.now_ms.saturating_sub(r).max(0)),
                "emulated_profile": n.emulated(),
            })
        })
        .collect();
    let problems: Vec<serde_json::Value> = h
        .problems
        .iter()
        .map(|p| {
            json!({
                "severity": p.severity,
                "kind": p.kind,
                "node": p.node.map(|i| view.nodes[i].name.as_str()),
                "text": p.text,
            })
        })
        .collect();
    json!({
        "verdict": h.verdict,
        "exit_code": h.verdict.exit_code(),
        "at_ms": h.now_ms,
        "nodes": {
            "total": view.nodes.len(),
            "up": c.up,
            "stale": c.stale,
            "down": c.down,
            "connecting": c.connecting,
            "emulated": c.emulated,
            "list": list,
        },
        "checks": {
            "failing": c.checks_failing,
            "failing_nodes": c.checks_failing_nodes,
            "failing_cluster": c.checks_failing_cluster,
            "warning": c.checks_warning,
            "reported_nodes": c.checks_reported,
            "cluster": h.cluster_checks,
        },
        "drives": {
            "ok": c.drives_ok,
            "warning": c.drives_warning,
            "critical": c.drives_critical,
            "unknown": c.drives_unknown,
            "not_current": c.drives_not_current,
        },
        "probes": {
            "blocked": c.probes_blocked,
            "total": c.probes_total,
        },
        "cores": {
            "conflicts": c.conflicts,
            "reported_nodes": c.pinning_reported,
        },
        "data_plane": data_json(view.dataplane(h.now_ms).as_ref()),
        "problems": problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cluster::{ClusterConfig, IoStatus, Member};
    use crate::model::dataplane::DataStatus;
    use std::sync::Arc;

    fn view(data: Option<DataStatus>, reporting: usize) -> DataplaneView {
        let members = (1..=6)
            .map(|i| {
                let m = Member {
                    name: format!("n{i}"),
                    address: String::new(),
                };
                (i, m)
            })
            .collect();
        DataplaneView {
            config: Arc::new(ClusterConfig {
                cluster: Some("c".into()),
                k: 4,
                m: 2,
                members,
                io: IoStatus::Started,
                ..Default::default()
            }),
            leader: 1,
            reporting,
            data,
        }
    }

    #[test]
    fn the_data_line_and_json_carry_a_rebuild_and_members_away() {
        let mut d = DataStatus {
            stripes_by_lost: vec![90, 10, 0, 0],
            away: vec![4],
            failed: vec![4],
            protection: "REBUILDING".into(),
            lost_chunks: 0,
            ..Default::default()
        };
        d.rebuild.active = true;
        d.rebuild.stripes_done = 40;
        d.rebuild.stripes_total = 50;
        d.rebuild.rate = 3 << 20;
        d.rebuild.eta_secs = 4;
        let v = view(Some(d), 5);
        assert_eq!(
            data_line(Some(&v.brief()), true).join(" · "),
            "IO STARTED · protection REBUILDING · rebuilding 40/50 stripes at 3 MiB/s, ETA 4 s \
             · 1 member(s) away, 1 past the grace period · 5 of 6 members reporting"
        );
        let j = data_json(Some(&v));
        assert_eq!(j["rebuild"]["stripes_done"], 40);
        assert_eq!(j["rebuild"]["eta_secs"], 4);
        assert_eq!(j["past_grace"], json!([4]));
        assert_eq!(j["members_reporting"], 5);
        assert_eq!(j["stripes_by_lost"], json!([90, 10, 0, 0]));
    }

    #[test]
    fn without_a_data_plane_every_field_is_there_and_null_but_reporting() {
        let j = data_json(None);
        let o = j.as_object().unwrap();
        let full = data_json(Some(&view(Some(DataStatus::default()), 6)));
        let keys: Vec<&String> = full.as_object().unwrap().keys().collect();
        assert_eq!(o.keys().collect::<Vec<_>>(), keys);
        assert!(
            o.iter().all(|(k, v)| k == "reporting" || v.is_null()),
            "{j}"
        );
        assert_eq!(j["reporting"], false);
        assert_eq!(
            data_line(None, false),
            ["no data plane reporting (protection, IO status, rebuild)"]
        );
        assert!(data_line(None, true)[0].contains("configuration has not arrived"));
        assert!(
            data_line(Some(&view(None, 0).brief()), true)
                .join(" · ")
                .contains("protection not counted")
        );
    }
}

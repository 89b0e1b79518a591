//! `axon status` as an operator runs it: real agent processes, one of them killed for
//! real, exit codes and JSON fields; and, in process, that the verb and the console's
//! Overview judge a cluster the same way.

mod common;

use axon::commands::status;
use axon::fleet::health::{Health, Verdict};
use axon::fleet::view::Severity;
use axon::ui::Console;
use common::cluster::{self, NOW};
use common::process::{self, agents, inventory};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `axon status ARGS`, failing the test if it runs past `limit`.
fn axon_status(args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    process::run(&all, limit)
}

fn status_json(inv: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["--inventory", inv.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = axon_status(&args, Duration::from_secs(30));
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("json: {e}\n{out}\n{err}"));
    (code, v)
}

fn node<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["nodes"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {v:#}"))
}

#[test]
fn status_json_of_live_agents_is_healthy_or_warns_with_the_matching_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let agents = agents(dir.path(), 3);
    let inv = inventory(dir.path(), &agents);
    let (code, v) = status_json(&inv, &[]);
    assert!(code == 0 || code == 1, "exit {code}: {v:#}");
    assert_eq!(v["exit_code"], code);
    assert_eq!(v["verdict"], if code == 0 { "healthy" } else { "warnings" });
    assert_eq!(v["nodes"]["total"], 3);
    assert_eq!(v["nodes"]["up"], 3, "{v:#}");
    assert_eq!(v["nodes"]["emulated"], 3);
    for a in &agents {
        let n = node(&v, &a.name);
        assert_eq!(n["status"], "up", "{n}");
        assert!(n["reason"].is_null() && n["failure"].is_null(), "{n}");
        assert_eq!(n["emulated_profile"], "amd-epyc-4numa");
        assert_eq!(n["endpoint"], format!("127.0.0.1:{}", a.port));
        assert!(n["last_data_age_ms"].as_i64().unwrap() < 3_000, "{n}");
    }
    // Every node reported what the health line judges before status answered.
    assert_eq!(v["checks"]["reported_nodes"], 3, "{v:#}");
    assert_eq!(v["cores"]["reported_nodes"], 3);
    assert_eq!(v["drives"]["ok"], 24, "eight healthy drives a node: {v:#}");
    assert_eq!(v["checks"]["cluster"].as_array().unwrap().len(), 3);
    // No figure is made up for what no data plane reports.
    assert_eq!(v["data_plane"]["reporting"], false);
    assert!(v["data_plane"]["protection"].is_null() && v["data_plane"]["rebuild"].is_null());
    let problems = v["problems"].as_array().unwrap();
    assert!(
        problems.iter().all(|p| p["severity"] != "critical"),
        "{v:#}"
    );
    assert_eq!(code == 0, problems.is_empty(), "{v:#}");
    // The summary says the same.
    let (code2, out, _) = axon_status(
        &["--inventory", inv.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code2, code, "{out}");
    assert!(out.contains("nodes     3 up of 3"), "{out}");
    assert!(out.contains("data      no data plane reporting"), "{out}");
}

#[test]
fn status_json_reports_a_killed_agent_down_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut agents = agents(dir.path(), 3);
    let inv = inventory(dir.path(), &agents);
    let (code, _) = status_json(&inv, &[]);
    assert!(code < 2, "all three up first: exit {code}");
    agents[1].kill();
    let (code, v) = status_json(&inv, &[]);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["verdict"], "critical");
    assert_eq!(v["exit_code"], 2);
    assert_eq!(
        (&v["nodes"]["up"], &v["nodes"]["down"]),
        (&2.into(), &1.into())
    );
    let n2 = node(&v, "n2");
    assert_eq!(n2["status"], "down", "{n2}");
    assert_eq!(n2["failure"], "connection", "{n2}");
    let reason = n2["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("127.0.0.1:{}", agents[1].port))
            && reason.to_lowercase().contains("refused"),
        "the reason names the endpoint and what happened: {reason}"
    );
    for name in ["n1", "n3"] {
        assert_eq!(node(&v, name)["status"], "up");
    }
    let first = &v["problems"][0];
    assert_eq!(first["severity"], "critical", "{v:#}");
    assert_eq!(first["kind"], "node");
    assert_eq!(first["node"], "n2");
    assert!(first["text"].as_str().unwrap().starts_with("n2 DOWN: "));
}

/// Ports nothing listens on (held while the inventory is written, so they differ).
fn closed_ports_inventory(dir: &Path, n: usize) -> PathBuf {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut s = String::new();
    for (i, l) in held.iter().enumerate() {
        s.push_str(&format!(
            "[[node]]\nname = \"gone{i}\"\naddress = \"127.0.0.1\"\nport = {}\n\n",
            l.local_addr().unwrap().port()
        ));
    }
    let path = dir.join("inventory.toml");
    std::fs::write(&path, s).unwrap();
    path
}

#[test]
fn status_exits_3_when_no_node_answers() {
    let dir = tempfile::tempdir().unwrap();
    let inv = closed_ports_inventory(dir.path(), 2);
    let start = Instant::now();
    let (code, v) = status_json(&inv, &["--insecure", "--timeout", "20s"]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "refusals are definite: no need to wait for the timeout ({:?})",
        start.elapsed()
    );
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["verdict"], "unreachable");
    assert_eq!(
        (&v["nodes"]["up"], &v["nodes"]["down"]),
        (&0.into(), &2.into())
    );
    for n in v["nodes"]["list"].as_array().unwrap() {
        assert_eq!(n["status"], "down");
        assert!(n["last_data_age_ms"].is_null(), "never answered: {n}");
        assert!(
            n["reason"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("refused"),
            "{n}"
        );
    }
    let (code, out, _) = axon_status(
        &["--inventory", inv.to_str().unwrap(), "--insecure"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 3);
    assert!(
        out.starts_with("axon status: UNREACHABLE (exit 3)"),
        "{out}"
    );
    assert!(out.contains("gone0") && out.contains("gone1"), "{out}");
}

#[test]
fn status_watch_prints_one_json_document_per_line_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let inv = closed_ports_inventory(dir.path(), 1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args([
            "status",
            "--insecure",
            "--json",
            "--watch",
            "200ms",
            "--inventory",
        ])
        .arg(&inv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let line = lines.next().expect("a line").unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        seen.push(v["at_ms"].as_i64().unwrap());
        assert_eq!(v["verdict"], "unreachable");
    }
    assert!(seen.windows(2).all(|w| w[1] > w[0]), "{seen:?}");
    // Ctrl-C ends it, with the last verdict's exit code.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("--watch did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
}

#[test]
fn status_help_lists_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(["status", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let h = String::from_utf8_lossy(&out.stdout);
    for s in [
        "0  healthy",
        "1  warnings",
        "2  critical",
        "3  unreachable",
        "--inventory",
        "--hosts",
        "--token-file",
        "--tofu",
        "--timeout",
        "--json",
        "--watch",
    ] {
        assert!(h.contains(s), "status --help lacks {s}:\n{h}");
    }
}

/// The verb and the console's Overview take their figures and problems from one
/// computation: the Overview draws the same problems, in the same order, with the same
/// counts.
#[test]
fn overview_and_status_judge_a_cluster_the_same_way() {
    let th =
        axon::ui::theme::Theme::builtin("default", axon::ui::theme::ColorDepth::TrueColor).unwrap();
    for (v, verdict) in [
        (cluster::troubled(), Verdict::Critical),
        (cluster::healthy(), Verdict::Healthy),
    ] {
        let h = Health::compute(&v, NOW);
        let ui = Console::new(&v, NOW, false, "default");
        assert_eq!(ui.health.counts, h.counts);
        assert_eq!(ui.health.status, h.status);
        assert_eq!(h.verdict, verdict);
        // The problem rows as drawn: severity, kind and the start of the text.
        let text = axon::ui::render_text(&ui, &v, &th, 200, 60);
        if h.problems.is_empty() {
            assert!(text.contains("No problems"), "{text}");
            continue;
        }
        let drawn: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("problems, worst first"))
            .skip(2)
            .take_while(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(drawn.len(), h.problems.len(), "{text}");
        for (line, p) in drawn.iter().zip(&h.problems) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let sev = match p.severity {
                Severity::Info => "info",
                Severity::Warning => "WARN",
                Severity::Critical => "CRIT",
            };
            assert_eq!(words[0], sev, "{line}");
            assert_eq!(words[1], p.kind.as_str(), "{line}");
            let start: String = p.text.chars().take(40).collect();
            assert!(line.contains(&start), "{line} vs {}", p.text);
        }
    }
}

#[test]
fn status_summary_of_a_troubled_cluster() {
    let v = cluster::troubled();
    let h = Health::compute(&v, NOW);
    insta::assert_snapshot!(status::render_text(&v, &h, false));
    let j = status::to_json(&v, &h);
    assert_eq!(j["verdict"], "critical");
    assert_eq!(node(&j, "axon003")["status"], "down");
    assert_eq!(node(&j, "axon004")["status"], "stale");
    assert_eq!(node(&j, "axon004")["failure"], "timeout");
    assert_eq!(node(&j, "axon001")["reason"], serde_json::Value::Null);
}

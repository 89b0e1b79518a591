//! `axon probe` as an operator runs it: real agent processes with TLS, the full port probe
//! as an operation on one of them, JSON lines, exit codes, the reader token refused, an
//! unknown node named, and Ctrl-C (a real SIGINT) cancelling within one step.

mod common;

use common::process::{self, Agent, Token, agents, inventory_with};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn probe_json_follows_the_operation_to_its_result_with_the_matching_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let agents = agents(dir.path(), 2);
    let inv = inventory_with(dir.path(), &agents, Token::Admin);
    let (code, out, err) = process::run(
        &[
            "probe",
            "--inventory",
            inv.to_str().unwrap(),
            "--node",
            "n1",
            "--groups",
            "core,ssh",
            "--json",
        ],
        Duration::from_secs(60),
    );
    let events = lines(&out);
    assert!(
        events.len() >= 3,
        "started, steps or logs, finished: {out}\n{err}"
    );
    let first = &events[0];
    assert_eq!(first["event"], "started", "{out}");
    assert_eq!(first["node"], "n1");
    let id = first["operation"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("port-probe-n1-"), "{id}");
    assert_eq!(first["operation"]["kind"], "port-probe");
    // The default peers are the other nodes of the inventory (both on 127.0.0.1 here).
    assert!(
        first["operation"]["target"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{first}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished", "{out}\n{err}");
    assert_eq!(last["operation"]["id"], id.as_str());
    assert_eq!(last["operation"]["state"], "succeeded", "{last}");
    assert!(
        events.iter().any(|e| e["event"] == "step"),
        "at least the last step is reported: {out}"
    );
    let report = &last["operation"]["output"]["report"];
    // core: 303 ports TCP and UDP in three ranges; ssh: 22/tcp; to one peer.
    let total = report["probes_total"].as_u64().unwrap();
    assert!(total > 300, "{report}");
    let blocked = report["blocked_total"].as_u64().unwrap();
    let want = if blocked == 0 { 0 } else { 2 };
    assert_eq!(code, want, "exit code follows the blocked count: {last}");
    assert_eq!(last["exit_code"], want);
    assert!(err.is_empty(), "nothing on stderr with --json: {err}");

    // Without --json and without a terminal: plain progress on stderr, the result on stdout.
    let (code2, out, err) = process::run(
        &[
            "probe",
            "--inventory",
            inv.to_str().unwrap(),
            "--node",
            "n2",
            "--groups",
            "ssh",
        ],
        Duration::from_secs(60),
    );
    assert!(code2 == 0 || code2 == 2, "{out}\n{err}");
    assert!(
        out.starts_with("port-probe-n2-") && out.contains(" succeeded after "),
        "{out}"
    );
    assert!(err.contains("started port-probe-n2-"), "{err}");
    assert!(err.contains("step 1/1: done"), "{err}");
}

#[test]
fn probe_with_the_reader_token_is_refused_with_exit_3_and_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let agents = agents(dir.path(), 1);
    let inv = inventory_with(dir.path(), &agents, Token::Reader);
    let args = [
        "probe",
        "--inventory",
        inv.to_str().unwrap(),
        "--node",
        "n1",
        "--groups",
        "ssh",
    ];
    let (code, out, err) = process::run(&args, Duration::from_secs(30));
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(
        err.contains("needs the admin token") && err.contains("admin.token"),
        "{err}"
    );
    let mut json = args.to_vec();
    json.push("--json");
    let (code, out, _) = process::run(&json, Duration::from_secs(30));
    assert_eq!(code, 3);
    let v = lines(&out);
    assert_eq!(v.len(), 1, "{out}");
    assert_eq!(v[0]["event"], "error");
    assert_eq!(v[0]["exit_code"], 3);
    assert!(
        v[0]["error"].as_str().unwrap().contains("admin token"),
        "{out}"
    );
}

#[test]
fn probe_names_an_unknown_node_or_group_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens at these: an error that connected would say so instead.
    std::fs::write(
        dir.path().join("inv.toml"),
        "[[node]]\nname = \"a1\"\naddress = \"127.0.0.1\"\nport = 1\n\n[[node]]\nname = \"a2\"\naddress = \"127.0.0.1\"\nport = 2\n",
    )
    .unwrap();
    let inv = dir.path().join("inv.toml");
    let inv = inv.to_str().unwrap();
    // Each refused before anything is asked: exit 3 with the reason on stderr.
    for (extra, want) in [
        (
            &["--node", "a9"][..],
            &["--node a9: no such node in inventory", "a1, a2"][..],
        ),
        (
            &["--node", "a1", "--groups", "core,smtp"],
            &["unknown port group `smtp`", "core, traces, ssh"],
        ),
        (
            &["--node", "a1", "--peers", "a[0-99999,0-99999,0-99999]"],
            &["--peers: hostlist"],
        ),
    ] {
        let mut args = vec!["probe", "--inventory", inv, "--insecure"];
        args.extend_from_slice(extra);
        let (code, _, err) = process::run(&args, Duration::from_secs(10));
        assert_eq!(code, 3, "{extra:?}: {err}");
        for w in want {
            assert!(err.contains(w), "{extra:?}: `{w}` in {err}");
        }
    }
}

/// A TCP port whose accept queue is full: connects to it hang until the prober's timeout
/// (as a firewall that drops packets would make them), so each probe step takes long.
fn black_hole(
    addr: &str,
) -> (
    tokio::runtime::Runtime,
    tokio::net::TcpListener,
    Vec<std::net::TcpStream>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let target: std::net::SocketAddr = addr.parse().unwrap();
    let listener = {
        let _in = rt.enter();
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(target).unwrap();
        sock.listen(0).unwrap()
    };
    let mut held = Vec::new();
    while let Ok(s) = std::net::TcpStream::connect_timeout(&target, Duration::from_millis(300)) {
        held.push(s);
        assert!(held.len() < 64, "the accept queue never filled");
    }
    (rt, listener, held)
}

#[test]
fn ctrl_c_cancels_the_probe_within_one_step_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // Probes time out after 20 s: a cancel that waited for the step would take that long.
    let agent = Agent::start("n1", dir.path(), &["--probe-timeout", "20s"]);
    let inv = inventory_with(dir.path(), std::slice::from_ref(&agent), Token::Admin);
    // A core port of 127.0.0.7 that never answers; its other ports answer at once.
    let _hole = black_hole("127.0.0.7:14050");
    let mut child = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(["probe", "--inventory"])
        .arg(&inv)
        .args([
            "--node",
            "n1",
            "--groups",
            "core",
            "--peers",
            "127.0.0.[7-9]",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    // Wait until the agent is inside the first step (probing the first peer).
    loop {
        let line = out
            .next()
            .expect("the probe ended before its first step")
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        let in_step = v["event"] == "step" && v["name"] == "probe 127.0.0.7";
        let started_in_step =
            v["event"] == "started" && v["operation"]["step"]["name"] == "probe 127.0.0.7";
        events.push(v);
        if in_step || started_in_step {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) },
        0,
        "SIGINT sent"
    );
    for line in out {
        events.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    let status = child.wait().unwrap();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopped {took:?} after Ctrl-C, not after the 20 s probe timeout"
    );
    assert_eq!(status.code(), Some(1), "exit 1: cancelled; {events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "note" && e["text"].as_str().unwrap().starts_with("cancelling")),
        "{events:#?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished", "{events:#?}");
    assert_eq!(last["exit_code"], 1);
    assert_eq!(last["operation"]["state"], "cancelled");
    let summary = last["operation"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("cancelled while probing 127.0.0.7, after 0 of 3 peers"),
        "{summary}"
    );
}

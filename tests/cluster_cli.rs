//! `axon cluster create|status` against six real agent processes (TLS, pinned inventory,
//! admin token), each hosting a cluster member (`--cluster-listen`): the cluster is refused
//! when the scheme needs more servers than there are, formed otherwise (the first five vote,
//! the sixth follows), survives `kill -9` of its leader, and the killed agent, restarted,
//! resumes its membership from disk and catches up. Each agent hosts a store too, and
//! records its drive in the cluster's configuration.

mod common;

use common::agents::sample;
use common::dataplane::{agent_with_store, status, status_line, until};
use common::process::{Agent, Token, inventory_with, run, scrape};
use std::path::Path;
use std::time::Duration;

/// An agent hosting a cluster member and a one-drive store of its own (3+2, whose chunks
/// stay on the node: this test forms clusters, it moves no data between nodes).
fn start(name: &str, dir: &Path, port: u16) -> Agent {
    let cl = format!("127.0.0.1:{port}");
    agent_with_store(
        name,
        dir,
        &[
            "--scheme",
            "3+2",
            "--chunk-size",
            "64K",
            "--drives",
            "1",
            "--drive-size",
            "8M",
        ],
        &["--cluster-listen", &cl],
    )
}

fn epochs(v: &serde_json::Value) -> Vec<u64> {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["report"]["epoch"].as_u64())
        .collect()
}

fn leader(v: &serde_json::Value) -> u64 {
    v["nodes"][0]["report"]["leader"].as_u64().unwrap_or(0)
}

#[test]
fn a_cluster_formed_from_the_inventory_survives_kill_9_of_its_leader() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().to_path_buf();
    // Cluster ports chosen by the kernel (no race for a port picked in advance); read
    // back from the agents for the restart below.
    let mut agents: Vec<Agent> = (0..6)
        .map(|i| start(&format!("n{}", i + 1), dir.as_path(), 0))
        .collect();
    let inv = inventory_with(dir.as_path(), &agents, Token::Admin);
    let inv_s = inv.to_str().unwrap().to_string();

    let (code, _, err) = run(
        &[
            "cluster",
            "create",
            "--inventory",
            &inv_s,
            "--scheme",
            "4+2",
            "--hot-spares",
            "1",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "4+2 with 1 hot spares needs 7 failure domains (servers), the inventory has 6"
        ),
        "{err}"
    );
    let (code, _, err) = run(
        &["drive", "list", "--inventory", &inv_s],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("in no cluster yet"), "{err}");
    // IO cannot start on agents that belong to no cluster.
    let (code, out, err) = run(
        &["start-io", "--inventory", &inv_s],
        Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("axon cluster create"), "{out}{err}");
    // Nothing was formed: no member reports a cluster, and there is no leader (exit 1).
    let (code, v) = status(&inv);
    assert_eq!(code, 1, "{v:#}");
    assert!(v["nodes"][0]["report"]["cluster"].is_null(), "{v:#}");

    let (code, out, err) = run(
        &[
            "cluster",
            "create",
            "--inventory",
            &inv_s,
            "--scheme",
            "4+2",
            "--hot-spares",
            "0",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("formed cluster") && out.contains("6 members, 4+2 with 0 hot spares"),
        "{out}"
    );
    assert!(
        out.contains("leadership group: n1, n2, n3, n4, n5"),
        "{out}"
    );
    // Every member, the learner n6 included, applies the cluster's creation.
    let v = until(&inv, "all six members to agree", |c, v| {
        c == 0 && epochs(v).len() == 6 && epochs(v).iter().all(|e| *e >= 1)
    });
    assert_eq!(v["nodes"][5]["report"]["config"]["k"], 4);
    // Each agent records its store's drive in the cluster's configuration, so IO could
    // start: six failure domains with an ACTIVE drive for 4+2.
    let v = until(
        &inv,
        "every node's drive in every node's configuration",
        |_, v| {
            v["nodes"].as_array().unwrap().iter().all(|n| {
                n["report"]["config"]["drives"]
                    .as_object()
                    .is_some_and(|d| d.len() == 6)
            })
        },
    );
    // `--json` words the IO status as the text output does (STOPPED); the replicated
    // state, which ClusterConfig reads, keeps serde's name of the enum.
    let mut raw = v["nodes"][0]["report"]["config"].clone();
    assert_eq!(raw["io"], "STOPPED", "{raw:#}");
    raw["io"] = serde_json::to_value(axon::model::cluster::IoStatus::Stopped).unwrap();
    let config: axon::model::cluster::ClusterConfig = serde_json::from_value(raw).unwrap();
    let mut holders: Vec<u64> = config.drives.values().map(|d| d.node).collect();
    holders.sort_unstable();
    assert_eq!(holders, vec![1, 2, 3, 4, 5, 6]);
    assert!(config.drives.values().all(|d| d.state == "ACTIVE"));
    assert!(
        config.start_io_blockers().is_empty(),
        "{:?}",
        config.start_io_blockers()
    );

    // The drives, cluster-wide, by node.
    let (code, out, err) = run(
        &["drive", "list", "--inventory", &inv_s],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("6 drives in cluster "), "{out}");
    for n in 1..=6 {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("n{n} ")))
            .unwrap_or_else(|| panic!("no drive of n{n}: {out}"));
        assert!(
            line.contains(" ACTIVE ") && line.contains(&format!("store-n{n}")),
            "{line}"
        );
    }

    // start-io as an operation on a member (here n6, a learner: it hands the changes to
    // the leader), then stop-io; every member applies them.
    let (code, out, err) = run(
        &["start-io", "--inventory", &inv_s, "--node", "n6"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("start-io: IO STARTED"), "{out}");
    assert!(
        err.contains("as this member sees it: 6 members, 6 drives ACTIVE; 4+2 with 0 hot spares"),
        "{err}"
    );
    let epochs = |v: &serde_json::Value| -> Vec<u64> {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["report"]["config"]["epoch"].as_u64().unwrap_or(0))
            .collect()
    };
    let started = until(&inv, "IO STARTED everywhere", |_, v| {
        let e = epochs(v);
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["report"]["config"]["io"] == "STARTED")
            && e.iter().all(|x| *x == e[0])
    });
    // Again, on another member: the cluster is started already, so nothing changes (it
    // used to pass through STARTING, refusing IO for a moment, and move the epoch by 2).
    let (code, out, err) = run(
        &["start-io", "--inventory", &inv_s, "--node", "n2"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("start-io: IO already STARTED"), "{out}");
    assert!(err.contains("IO is already STARTED (epoch"), "{err}");
    let (_, again) = status(&inv);
    assert_eq!(epochs(&again), epochs(&started), "{again:#}");
    // create run again with --json answers with the member's report, its IO status worded
    // as the text output and `axon status` word it.
    let (code, out, err) = run(
        &[
            "cluster",
            "create",
            "--inventory",
            &inv_s,
            "--scheme",
            "4+2",
            "--hot-spares",
            "0",
            "--json",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    let created: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(created["config"]["io"], "STARTED", "{created:#}");
    // axon status carries the cluster's line.
    let (_, out, err) = run(&["status", "--inventory", &inv_s], Duration::from_secs(60));
    let line = status_line(&out, &err, "cluster");
    assert!(
        line.contains("4+2 with 0 hot spares · IO STARTED · leader n")
            && line.contains("6 members · 6 drives active"),
        "{line}"
    );
    // Its data line follows the members' Watch streams: these members hold no store, so
    // no share of the data is counted (tests/cluster_io.rs counts one).
    let data = status_line(&out, &err, "data");
    assert!(
        data.contains("IO STARTED · protection not counted")
            && data.contains("0 of 6 members reporting"),
        "{data}"
    );
    // With --watch too, every frame: its first JSON line carries the cluster.
    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(["status", "--json", "--watch", "1s", "--inventory", &inv_s])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = {
        use std::io::BufRead;
        let mut l = String::new();
        std::io::BufReader::new(watch.stdout.take().unwrap())
            .read_line(&mut l)
            .unwrap();
        l
    };
    let _ = watch.kill();
    let _ = watch.wait();
    let w: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(w["cluster"]["io"], "STARTED", "{w:#}");
    let (_, out, err) = run(
        &["status", "--inventory", &inv_s, "--json"],
        Duration::from_secs(60),
    );
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let dp = &v["data_plane"];
    assert_eq!(dp["reporting"], true, "{dp:#}");
    assert_eq!(dp["io"], "STARTED", "{dp:#}");
    assert!(dp["protection"].is_null(), "{dp:#}");
    assert_eq!(dp["members"], 6, "{dp:#}");
    assert!(dp["rebuild"].is_null(), "{dp:#}");
    // Each member's /metrics says so too.
    let body = scrape(&agents[2].metrics);
    for (series, want) in [
        ("axon_cluster_io_status{state=\"STARTED\"}", 1.0),
        ("axon_cluster_members", 6.0),
        ("axon_cluster_drives{state=\"ACTIVE\"}", 6.0),
    ] {
        let got = sample(&body, series);
        assert_eq!(got, Some(want), "{series} in:\n{body}");
    }
    assert!(body.contains("axon_cluster_member{cluster="), "{body}");
    if let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            let text = body
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or_default()
                .to_string();
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
    {
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !said.contains("error"),
            "promtool: {said}"
        );
    }
    let (code, out, err) = run(
        &["stop-io", "--inventory", &inv_s, "--json"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["state"], "succeeded", "{last:#}");
    assert_eq!(last["output"]["status"], "STOPPED", "{last:#}");
    // A second create with the same inventory and scheme finds it formed (a create cut
    // short resumes the same way); another scheme is refused.
    let (code, out, err) = run(
        &[
            "cluster",
            "create",
            "--inventory",
            &inv_s,
            "--scheme",
            "4+2",
            "--hot-spares",
            "0",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("formed cluster"), "{out}");
    let (code, _, err) = run(
        &[
            "cluster",
            "create",
            "--inventory",
            &inv_s,
            "--scheme",
            "3+2",
            "--hot-spares",
            "0",
        ],
        Duration::from_secs(60),
    );
    // The cluster's refusal (2, as for a scheme too large), naming what is in place.
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("already exists: 4+2 with 0 hot spares, 6 members"),
        "{err}"
    );

    // The leader now, as every member sees it.
    let v = until(&inv, "an agreed leader", |c, v| c == 0 && leader(v) != 0);
    let first = leader(&v);
    assert!(
        (1..=5).contains(&first),
        "the leader {first} is not a voter"
    );
    let li = first as usize - 1;
    let port = v["nodes"][li]["report"]["cluster_port"].as_u64().unwrap() as u16;

    // kill -9 the leader: the other voters elect another; status says one is unreachable.
    agents[li].kill();
    let v = until(&inv, "a new leader among the others", |c, v| {
        let reachable: Vec<&serde_json::Value> = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n.get("report").is_some())
            .collect();
        c == 1
            && reachable.len() == 5
            && reachable.iter().all(|n| {
                let l = n["report"]["leader"].as_u64().unwrap_or(0);
                l != 0 && l != first
            })
    });
    assert!(v["nodes"][li]["error"].is_string(), "{v:#}");

    // Restarted on the same state dir and cluster port, it resumes its membership.
    let name = format!("n{}", li + 1);
    agents[li] = start(&name, dir.as_path(), port);
    let inv = inventory_with(dir.as_path(), &agents, Token::Admin);
    let v = until(&inv, "the restarted member to rejoin", |c, v| {
        c == 0 && epochs(v).len() == 6
    });
    assert_eq!(v["nodes"][li]["report"]["node_id"], first);
    let now = leader(&v);
    assert_ne!(now, 0);

    // A hung member (SIGSTOP: its kernel still completes TCP handshakes, nothing answers)
    // only times out. After a few timeouts in a row the leader counts it unreachable and
    // backs off, as from one that refuses; once it answers again, the leader says so.
    // (Not the member killed above, which the leader may not have reached since.)
    let hung = (1..=5u64).find(|&i| i != now && i != first).unwrap();
    let log = dir.join(format!("n{now}/agent.log"));
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let pid = agents[hung as usize - 1].child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let name = format!("raft: member {hung} ");
    let at = wait_log(
        &read_log,
        &[&name, "unreachable (", "calls in a row got no answer"],
        0,
    );
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    wait_log(&read_log, &[&name, "reachable again"], at);
}

/// Waits (20 s at most) until a line after byte `from` of the log holds every piece of
/// `what`; where that line ends.
fn wait_log(read: &dyn Fn() -> String, what: &[&str], from: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = read();
        let mut at = from;
        for line in text.get(from..).unwrap_or("").split_inclusive('\n') {
            at += line.len();
            if what.iter().all(|w| line.contains(w)) {
                return at;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line with {what:?} in the leader's log within 20 s:\n{}",
            text.get(from..).unwrap_or("")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

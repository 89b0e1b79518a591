//! A data-plane cluster of real agent processes for the tests and benches: agents with a
//! 1+0 store on a file drive, a cluster port and a data port; `cluster status` polled.
#![allow(dead_code)]

use super::process::{Agent, Token, inventory_with, run};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// 1+0, 64 KiB chunks, two 32 MiB file drives.
pub const TWO_DRIVES: &[&str] = &[
    "--scheme",
    "1+0",
    "--chunk-size",
    "64K",
    "--drives",
    "2",
    "--drive-size",
    "32M",
];

/// An agent with a store of its own, `<dir>/store-<name>`, made at the first start with
/// `axon io create` and `store` (scheme, chunk size, drives); `extra` are agent flags.
pub fn agent_with_store(name: &str, dir: &Path, store: &[&str], extra: &[&str]) -> Agent {
    let path = dir.join(format!("store-{name}"));
    let path_s = path.to_str().unwrap().to_string();
    if !path.exists() {
        let mut args = vec!["io", "create", "--store", &path_s];
        args.extend_from_slice(store);
        let (code, out, err) = run(&args, Duration::from_secs(60));
        assert_eq!(code, 0, "{out}{err}");
    }
    let mut args = vec!["--store", &path_s];
    args.extend_from_slice(extra);
    Agent::start(name, dir, &args)
}

/// The store of a cluster test node: 1+0, 64 KiB chunks, one 32 MiB file drive.
pub const SMALL_STORE: &[&str] = &[
    "--scheme",
    "1+0",
    "--chunk-size",
    "64K",
    "--drives",
    "1",
    "--drive-size",
    "32M",
];

/// An agent hosting a cluster member and a 1+0 store (`SMALL_STORE`), serving its chunks on
/// a data port.
pub fn start(name: &str, dir: &Path, cluster_port: u16, data_port: u16) -> Agent {
    start_with(name, dir, cluster_port, data_port, &[])
}

/// As `start`, with more agent flags.
pub fn start_with(
    name: &str,
    dir: &Path,
    cluster_port: u16,
    data_port: u16,
    extra: &[&str],
) -> Agent {
    start_store(name, dir, (cluster_port, data_port), SMALL_STORE, extra)
}

/// A member with cluster and data ports `ports` (0: the kernel's choice) and a store made
/// with `store`.
pub fn start_store(
    name: &str,
    dir: &Path,
    ports: (u16, u16),
    store: &[&str],
    extra: &[&str],
) -> Agent {
    let cl = format!("127.0.0.1:{}", ports.0);
    let dl = format!("127.0.0.1:{}", ports.1);
    let mut args = vec!["--cluster-listen", &cl, "--data-listen", &dl];
    args.extend_from_slice(extra);
    agent_with_store(name, dir, store, &args)
}

/// Forms a cluster of `agents` (`cluster create`) and waits until every member records
/// every drive. Returns the inventory and each agent's (cluster port, data port), for
/// restarting it where it was.
pub fn form(
    dir: &Path,
    agents: &[Agent],
    scheme: &str,
    spares: &str,
) -> (PathBuf, Vec<(u16, u16)>) {
    form_drives(dir, agents, scheme, spares, 1)
}

/// As `form`, for nodes with `per_node` drives each.
pub fn form_drives(
    dir: &Path,
    agents: &[Agent],
    scheme: &str,
    spares: &str,
    per_node: usize,
) -> (PathBuf, Vec<(u16, u16)>) {
    let inv = inventory_with(dir, agents, Token::Admin);
    let inv_s = inv.to_str().unwrap().to_string();
    let (code, out, err) = run(
        &[
            "cluster",
            "create",
            "--inventory",
            &inv_s,
            "--scheme",
            scheme,
            "--hot-spares",
            spares,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    let n = agents.len() * per_node;
    let v = until(&inv, "every node's drive recorded everywhere", |_, v| {
        v["nodes"].as_array().unwrap().iter().all(|x| {
            x["report"]["config"]["drives"]
                .as_object()
                .is_some_and(|d| d.len() == n)
        })
    });
    let ports: Vec<(u16, u16)> = (0..agents.len())
        .map(|i| {
            let r = &v["nodes"][i]["report"];
            (
                r["cluster_port"].as_u64().unwrap() as u16,
                r["data_port"].as_u64().unwrap() as u16,
            )
        })
        .collect();
    assert!(ports.iter().all(|(_, d)| *d != 0), "{ports:?}");
    (inv, ports)
}

/// `axon start-io`, then waits until every member applied it.
pub fn start_io(inv: &Path) {
    let inv_s = inv.to_str().unwrap();
    let (code, out, err) = run(&["start-io", "--inventory", inv_s], Duration::from_secs(60));
    assert_eq!(code, 0, "{out}{err}");
    until(inv, "IO STARTED everywhere", |_, v| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["report"]["config"]["io"] == "STARTED")
    });
}

pub fn status(inv: &Path) -> (i32, serde_json::Value) {
    let (code, out, err) = run(
        &[
            "cluster",
            "status",
            "--inventory",
            inv.to_str().unwrap(),
            "--json",
        ],
        Duration::from_secs(60),
    );
    let v = serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}{err}"));
    (code, v)
}

pub fn until(
    inv: &Path,
    what: &str,
    ok: impl Fn(i32, &serde_json::Value) -> bool,
) -> serde_json::Value {
    until_for(inv, what, Duration::from_secs(40), ok)
}

/// As `until`, for at most `limit`.
pub fn until_for(
    inv: &Path,
    what: &str,
    limit: Duration,
    ok: impl Fn(i32, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let (code, v) = status(inv);
        if ok(code, &v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: exit {code}, {v:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Deterministic bytes that differ object to object.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The inventory with `first` listed first: the CLI goes through the first that answers.
pub fn inventory_via(dir: &Path, agents: &[Agent], first: usize) -> PathBuf {
    let inv = inventory_with(dir, agents, Token::Admin);
    let text = std::fs::read_to_string(&inv).unwrap();
    // Blocks start with [[node]]; move block `first` to the front.
    let mut parts: Vec<&str> = text.split("[[node]]").collect();
    let head = parts.remove(0);
    let chosen = parts.remove(first);
    parts.insert(0, chosen);
    let out = dir.join(format!("inventory-via-{first}.toml"));
    std::fs::write(&out, format!("{head}[[node]]{}", parts.join("[[node]]"))).unwrap();
    out
}

/// `axon io put KEY FILE` on the cluster: exit code, and what it said.
pub fn put(inv: &Path, key: &str, file: &Path) -> (i32, String) {
    let (code, o, e) = run(
        &[
            "io",
            "put",
            "--inventory",
            inv.to_str().unwrap(),
            key,
            file.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    (code, o + &e)
}

pub fn get(inv: &Path, key: &str, out: &Path) -> (i32, String) {
    let (code, o, e) = run(
        &[
            "io",
            "get",
            "--inventory",
            inv.to_str().unwrap(),
            key,
            "-o",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    (code, o + &e)
}

pub fn data(inv: &Path) -> serde_json::Value {
    status(inv).1["data"].clone()
}

pub fn until_data(
    inv: &Path,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = data(inv);
        if ok(&d) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {d:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The line of `axon status` text output headed `label` (`cluster`, `data`…); panics
/// with the whole output (and stderr) when there is none.
pub fn status_line<'a>(out: &'a str, err: &str, label: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} line: {out}{err}"))
}

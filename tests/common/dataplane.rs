//! A data-plane cluster of real agent processes for the tests and benches: agents with a
//! 1+0 store on a file drive, a cluster port and a data port; `cluster status` polled.
#![allow(dead_code)]

use super::process::{Agent, Token, inventory_with, run};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An agent hosting a cluster member and a 1+0 store (64 KiB chunks, one 32 MiB drive),
/// serving its chunks on a data port.
pub fn start(name: &str, dir: &Path, cluster_port: u16, data_port: u16) -> Agent {
    start_with(name, dir, cluster_port, data_port, &[])
}

pub fn start_with(
    name: &str,
    dir: &Path,
    cluster_port: u16,
    data_port: u16,
    extra: &[&str],
) -> Agent {
    let store = dir.join(format!("store-{name}"));
    if !store.exists() {
        let (code, out, err) = run(
            &[
                "io",
                "create",
                "--store",
                store.to_str().unwrap(),
                "--scheme",
                "1+0",
                "--chunk-size",
                "64K",
                "--drives",
                "1",
                "--drive-size",
                "32M",
            ],
            Duration::from_secs(30),
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    let cl = format!("127.0.0.1:{cluster_port}");
    let dl = format!("127.0.0.1:{data_port}");
    let mut args = vec![
        "--cluster-listen",
        &cl,
        "--data-listen",
        &dl,
        "--store",
        store.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Agent::start(name, dir, &args)
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
    let deadline = Instant::now() + Duration::from_secs(40);
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

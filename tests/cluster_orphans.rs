//! Orphaned chunks are collected: on a 4+2 cluster of seven agent processes, one node is
//! killed, objects are overwritten and deleted while it is down (their old chunks on it
//! cannot be freed then), and a put is cut short by killing its frontend (chunks with no
//! manifest). Once the node is back and every member answers, the chunks no manifest
//! places are freed after `--orphan-grace`: the chunks held across the cluster come down
//! to exactly what the live objects' manifests name, and every live object still reads
//! back bit-identical.

mod common;

use common::dataplane::{bytes, form, get, start_io, start_with, until_data};
use common::process::{Agent, Token, inventory_with, run, scrape, spawn};
use std::path::Path;
use std::time::{Duration, Instant};

/// Chunks held by all the agents, from their `/metrics` (`axon_cluster_chunks_held`,
/// counted every 2 s).
fn chunks_held(agents: &[Agent]) -> u64 {
    agents
        .iter()
        .map(|a| {
            let text = scrape(&a.metrics);
            text.lines()
                .find(|l| l.starts_with("axon_cluster_chunks_held "))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{}: no axon_cluster_chunks_held", a.name))
                as u64
        })
        .sum()
}

fn put(inv: &Path, key: &str, file: &Path) {
    let (code, out, err) = run(
        &[
            "io",
            "put",
            "--inventory",
            inv.to_str().unwrap(),
            key,
            file.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{key}: {out}{err}");
}

#[test]
fn orphaned_chunks_are_freed_and_live_objects_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let extra = ["--orphan-grace", "3s"];
    let mut agents: Vec<Agent> = (0..7)
        .map(|i| start_with(&format!("n{}", i + 1), dir, 0, 0, &extra))
        .collect();
    let (inv, ports) = form(dir, &agents, "4+2", "0");
    start_io(&inv);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    // 64 KiB chunks, 4 data: a stripe holds 256 KiB.
    let mut live: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..6u64 {
        let data = bytes(300_000 + i as usize * 50_000, i + 1);
        let f = src.join(format!("o{i}"));
        std::fs::write(&f, &data).unwrap();
        put(&inv, &format!("obj/{i}"), &f);
        live.push((format!("obj/{i}"), data));
    }

    // n7 away: overwrite two objects and delete one; their old chunks stay on n7.
    agents[6].kill();
    let inv5 = inventory_with(dir, &agents[..6], Token::Admin);
    until_data(&inv5, "n7 away", |d| d["away"] == serde_json::json!([7]));
    for i in [0usize, 1] {
        let data = bytes(200_000, 100 + i as u64);
        let f = src.join(format!("new{i}"));
        std::fs::write(&f, &data).unwrap();
        // With n7 away a 4+2 stripe has exactly six nodes left: the put needs all of them.
        put(&inv5, &live[i].0, &f);
        live[i].1 = data;
    }
    let (code, out, err) = run(
        &["io", "rm", "--inventory", inv5.to_str().unwrap(), "obj/5"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    live.pop();

    // n7 back on its ports, with the old chunks: more held than the live objects name
    // (orphans are freed no sooner than two 30 s rounds after they are found).
    let (cp, dp) = ports[6];
    agents[6] = start_with("n7", dir, cp, dp, &extra);
    let inv = inventory_with(dir, &agents, Token::Admin);
    until_data(&inv, "n7 back", |d| d["away"] == serde_json::json!([]));
    let named = |live: &[(String, Vec<u8>)]| -> u64 {
        live.iter()
            .map(|(_, d)| (d.len() as u64).div_ceil(4 * 65_536).max(1) * 6)
            .sum()
    };
    let want = named(&live);
    // Each member counts every 2 s.
    std::thread::sleep(Duration::from_secs(3));
    let before = chunks_held(&agents);
    assert!(
        before > want,
        "no orphans to collect: {before} held, {want} named"
    );

    // A put cut short: its frontend (n1) killed while chunks are in flight.
    let big = src.join("big");
    std::fs::write(&big, bytes(48 << 20, 999)).unwrap();
    let cut = spawn(&[
        "io",
        "put",
        "--inventory",
        inv.to_str().unwrap(),
        "cut/short",
        big.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(700));
    agents[0].kill();
    let (code, _, _) = cut.wait(Duration::from_secs(60));
    assert_ne!(code, 0, "the put was cut short");
    let (cp, dp) = ports[0];
    agents[0] = start_with("n1", dir, cp, dp, &extra);
    let inv = inventory_with(dir, &agents, Token::Admin);
    until_data(&inv, "n1 back", |d| d["away"] == serde_json::json!([]));

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let held = chunks_held(&agents);
        if held == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{held} chunks held, the live objects name {want} (started from {before})"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let d = until_data(&inv, "the frees counted", |d| {
        d["orphans_freed"].as_u64().unwrap_or(0) >= before - want
    });
    assert_eq!(d["protection"], "OK", "{d:#}");
    // Every live object counted once, by the home node that came back too (it fetched
    // the manifests of its keys written while it was away).
    until_data(&inv, "every live object counted", |d| {
        d["objects"].as_u64() == Some(live.len() as u64)
    });
    let back = dir.join("back");
    for (key, data) in &live {
        let (code, said) = get(&inv, key, &back);
        assert_eq!(code, 0, "{key}: {said}");
        assert!(std::fs::read(&back).unwrap() == *data, "{key} differs");
    }
    let (code, said) = get(&inv, "obj/5", &back);
    assert_eq!(code, 1, "deleted: {said}");
}

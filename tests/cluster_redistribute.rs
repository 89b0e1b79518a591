//! Redistribution (issue 11 item 7) on a 3+2 cluster of six real agent processes: r6 is
//! killed, its chunks are rebuilt on the other five past the grace period; it comes back
//! on its files, frees its stale chunks as orphans, and the members move chunks onto it
//! — protection REDISTRIBUTING meanwhile, every stripe whole throughout — until it holds
//! its share. Every object then reads back bit-identical, also with two other members
//! killed, which only works if every moved chunk and its manifest are right.

mod common;

use common::dataplane::{
    bytes, form, get, put, start_io, start_with, status, until_data, until_for,
};
use common::process::{Agent, Token, inventory_with, run};
use std::time::Duration;

const FLAGS: &[&str] = &["--rebuild-grace", "2s", "--orphan-grace", "2s"];

fn held(v: &serde_json::Value, i: usize) -> u64 {
    v["nodes"][i]["report"]["data"]["chunks_held"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_member_back_after_its_rebuild_is_filled_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut agents: Vec<Agent> = (0..6)
        .map(|i| start_with(&format!("r{}", i + 1), dir, 0, 0, FLAGS))
        .collect();
    let (inv, ports) = form(dir, &agents, "3+2", "1");
    start_io(&inv);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut objects = Vec::new();
    for i in 0..12 {
        let key = format!("m/{i}");
        let d = bytes(500_000 + i * 33_333, 300 + i as u64);
        let p = src.join(format!("m{i}"));
        std::fs::write(&p, &d).unwrap();
        let (code, said) = put(&inv, &key, &p);
        assert_eq!(code, 0, "{said}");
        objects.push((key, d));
    }
    until_data(&inv, "every object counted", |d| {
        d["protection"] == "OK" && d["objects"] == 12
    });

    // r6 dies; past the grace period its chunks are rebuilt on the other five.
    agents[5].kill();
    until_data(&inv, "rebuilt to OK without r6", |d| {
        d["protection"] == "OK" && d["rebuild"]["passes"].as_u64().unwrap_or(0) >= 1
    });

    // r6 comes back on its files: what it holds is stale, freed as orphans; then the
    // members fill it to its share.
    agents[5] = start_with("r6", dir, ports[5].0, ports[5].1, FLAGS);
    let inv = inventory_with(dir, &agents, Token::Admin);
    // Settled: every chunk the stripes need is held once (r6's stale ones freed, every
    // moved chunk's old copy freed), and r6 holds at least half the others' average.
    let v = until_for(
        &inv,
        "r6 filled to its share",
        Duration::from_secs(180),
        |_, v| {
            let d = &v["data"];
            let stripes: u64 = d["stripes_by_lost"]
                .as_array()
                .map_or(0, |a| a.iter().filter_map(|x| x.as_u64()).sum());
            let all: u64 = (0..6).map(|i| held(v, i)).sum();
            let others = (0..5).map(|i| held(v, i)).sum::<u64>() / 5;
            d["moved_chunks"].as_u64().unwrap_or(0) > 0
                && d["protection"] == "OK"
                && stripes > 0
                && all == stripes * 5
                && held(v, 5) * 2 >= others
        },
    );
    let moved = v["data"]["moved_chunks"].as_u64().unwrap();
    eprintln!(
        "r6 freed {} stale chunks; moved {moved} chunks onto it; held {:?}",
        v["nodes"][5]["report"]["data"]["orphans_freed"],
        (0..6).map(|i| held(&v, i)).collect::<Vec<_>>()
    );
    // Every stripe whole the whole time the chunks moved.
    assert_eq!(v["data"]["stripes_by_lost"][1], 0, "{:#}", v["data"]);
    // The console's Stripes panel says what moved.
    let (code, frame, err) = run(
        &[
            "console",
            "--inventory",
            inv.to_str().unwrap(),
            "--once",
            "--panel",
            "stripes",
            "--size",
            "120x30",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        frame.contains(&format!("{moved} chunks moved onto members that came back")),
        "{frame}"
    );
    let metrics: f64 = agents
        .iter()
        .filter_map(|a| {
            common::agents::sample(
                &common::process::scrape(&a.metrics),
                "axon_cluster_chunks_moved_total",
            )
        })
        .sum();
    assert_eq!(metrics as u64, moved, "/metrics and cluster status agree");

    let back = dir.join("back");
    for (key, want) in &objects {
        let (code, said) = get(&inv, key, &back);
        assert_eq!(code, 0, "{key}: {said}");
        assert!(std::fs::read(&back).unwrap() == *want, "{key} differs");
    }
    // m = 2 others die: still whole, reading the moved chunks where they are now.
    agents[0].kill();
    agents[1].kill();
    let inv = inventory_with(dir, &agents[2..], Token::Admin);
    for (key, want) in &objects {
        let (code, said) = get(&inv, key, &back);
        assert_eq!(code, 0, "{key}: {said}");
        assert!(std::fs::read(&back).unwrap() == *want, "{key} differs");
    }
    let _ = status(&inv);
}

//! `kill -9` during writes, with separate agent processes: a seeded schedule starts a put
//! through one agent, kills an agent (the one the put goes through, or another) at a random
//! moment, lets the put end, and restarts the agent on its ports. Every object whose put
//! was acknowledged reads back bit-identical at the end; one that was not is absent or
//! whole — never partial, never wrong. The seed is printed (AXON_FAULT_SEED replays it,
//! AXON_FAULT_ROUNDS sets the rounds).

mod common;

use common::dataplane::{bytes, form, get, start, start_io, until};
use common::process::{Agent, Token, inventory_with, spawn};
use std::time::Duration;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn acknowledged_objects_survive_agents_killed_during_writes() {
    let seed: u64 = std::env::var("AXON_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let rounds: usize = std::env::var("AXON_FAULT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    eprintln!("fault schedule seed {seed} ({rounds} rounds): AXON_FAULT_SEED={seed} replays it");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut agents: Vec<Agent> = (0..6)
        .map(|i| start(&format!("f{}", i + 1), dir, 0, 0))
        .collect();
    let (inv, ports) = form(dir, &agents, "3+2", "0");
    start_io(&inv);

    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let mut unacked: Vec<(String, Vec<u8>)> = Vec::new();
    for round in 0..rounds {
        // The put goes through the first agent of the inventory; the victim is it or another.
        let key = format!("k/{round}");
        let data = bytes(
            (2 << 20) + (rng.next() % (6 << 20)) as usize,
            seed ^ round as u64,
        );
        let path = src.join(format!("o{round}"));
        std::fs::write(&path, &data).unwrap();
        // Half the time the agent the put goes through (the put fails, or lands whole
        // just before), otherwise one holding chunks (the put places them elsewhere).
        let victim = if rng.next() % 2 == 0 {
            0
        } else {
            1 + (rng.next() % 5) as usize
        };
        // The CLI takes ~0.1 s to start and connect; the put itself some tenths of a second.
        let delay = Duration::from_millis(100 + rng.next() % 400);
        let inv = inventory_with(dir, &agents, Token::Admin);
        let put = spawn(&[
            "io",
            "put",
            "--inventory",
            inv.to_str().unwrap(),
            &key,
            path.to_str().unwrap(),
        ]);
        std::thread::sleep(delay);
        agents[victim].kill();
        let (code, out, err) = put.wait(Duration::from_secs(120));
        eprintln!(
            "round {round}: {} bytes, f{} killed after {} ms: put exit {code}",
            data.len(),
            victim + 1,
            delay.as_millis()
        );
        if code == 0 {
            acked.push((key, data));
        } else {
            assert!(
                !out.is_empty() || !err.is_empty(),
                "seed {seed}: a failed put said nothing"
            );
            unacked.push((key, data));
        }
        let (cp, dp) = ports[victim];
        agents[victim] = start(&format!("f{}", victim + 1), dir, cp, dp);
    }
    // Every member back and answering pings before the reads.
    let inv = inventory_with(dir, &agents, Token::Admin);
    until(&inv, "all six members back", |c, _| c == 0);
    std::thread::sleep(Duration::from_secs(2));
    let back = dir.join("back");
    for (key, data) in &acked {
        let (code, said) = get(&inv, key, &back);
        assert_eq!(code, 0, "seed {seed}: acknowledged {key}: {said}");
        assert!(
            std::fs::read(&back).unwrap() == *data,
            "seed {seed}: acknowledged {key} reads back different bytes"
        );
    }
    for (key, data) in &unacked {
        let (code, said) = get(&inv, key, &back);
        match code {
            0 => assert!(
                std::fs::read(&back).unwrap() == *data,
                "seed {seed}: {key} (not acknowledged) reads back different bytes"
            ),
            1 => assert!(said.contains("no object"), "seed {seed}: {key}: {said}"),
            _ => panic!("seed {seed}: {key} (not acknowledged): exit {code}: {said}"),
        }
    }
    eprintln!(
        "seed {seed}: {} acknowledged and read back, {} not acknowledged (absent or whole)",
        acked.len(),
        unacked.len()
    );
    assert!(
        !acked.is_empty() || rounds < 3,
        "seed {seed}: no put was acknowledged in {rounds} rounds"
    );
}

//! `axon agent --store`: a real agent process hosts the storage engine — it opens and
//! reconciles the store, refuses to share it, scrubs it in the background, and shows the
//! engine's state in /metrics (axon_store_*) as a drive goes missing and the scrubber
//! rebuilds its chunks elsewhere.

mod common;

use common::agents::sample;
use common::process::{Agent, scrape};
use std::time::{Duration, Instant};

fn axon(args: &[&str]) -> (i32, String, String) {
    common::process::run(args, Duration::from_secs(60))
}

#[test]
fn the_agent_scrubs_its_store_and_reports_it_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let st = store.to_str().unwrap();
    let (code, out, err) = axon(&[
        "io",
        "create",
        "--store",
        st,
        "--scheme",
        "4+2",
        "--chunk-size",
        "64K",
        "--drives",
        "8",
        "--drive-size",
        "32M",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let src = dir.path().join("in.bin");
    std::fs::write(&src, vec![0x5Au8; 2_000_000]).unwrap();
    let (code, _, err) = axon(&["io", "put", "--store", st, "a", src.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(store.join("drives/drive05")).unwrap();

    let mut agent = Agent::start(
        "n1",
        dir.path(),
        &["--store", st, "--scrub-rate", "0", "--scrub-every", "1h"],
    );
    let addr = agent.metrics.clone();
    let log = || std::fs::read_to_string(dir.path().join("n1/agent.log")).unwrap_or_default();
    // The store is the agent's now.
    let (code, _, err) = axon(&["io", "ls", "--store", st]);
    assert_eq!(code, 3);
    assert!(err.contains("open in another process"), "{err}");
    // One pass repairs the missing drive's chunks onto the other drives.
    let deadline = Instant::now() + Duration::from_secs(60);
    let m = loop {
        let m = scrape(&addr);
        if sample(&m, "axon_store_scrub_passes_total").unwrap_or(0.0) >= 1.0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no scrub pass in 60 s:\n{m}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    agent.kill();
    let found = sample(&m, "axon_store_scrub_found_total").unwrap();
    let repaired = sample(&m, "axon_store_scrub_repaired_total").unwrap();
    assert!(found > 0.0, "{m}");
    assert_eq!(found, repaired, "{m}");
    assert_eq!(
        sample(&m, "axon_store_scrub_unrepairable_total"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "axon_store_protection{state=\"OK\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "axon_store_stripes{lost=\"0\"}"),
        Some(8.0),
        "{m}"
    );
    assert_eq!(sample(&m, "axon_store_objects"), Some(1.0), "{m}");
    assert_eq!(
        sample(&m, "axon_store_open_findings{kind=\"drives_unavailable\"}"),
        Some(1.0),
        "{m}"
    );
    let missing = m
        .lines()
        .find(|l| l.starts_with("axon_store_drive_available") && l.contains("drive05"))
        .unwrap_or_else(|| panic!("no series for the missing drive:\n{m}"));
    assert_eq!(
        missing.rsplit(' ').next().unwrap().parse::<f64>().unwrap(),
        0.0,
        "{missing}"
    );
    assert!(log().contains("drive05: missing"), "{}", log());
    // The store is free again, and whole.
    let (code, out, err) = axon(&["io", "status", "--store", st]);
    assert_eq!(code, 0, "{out}{err}");
}

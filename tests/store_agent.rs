//! `axon agent --store`: a real agent process hosts the storage engine — it opens and
//! reconciles the store, refuses to share it, scrubs it in the background, and shows the
//! engine's state in /metrics (axon_store_*) as a drive goes missing and the scrubber
//! rebuilds its chunks elsewhere.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn axon(args: &[&str]) -> (i32, String, String) {
    common::process::run(args, Duration::from_secs(60))
}

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn value(scrape: &str, prefix: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
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

    let mut child = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(["agent", "--insecure", "--host-root"])
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/hosts/amd-epyc-4numa"),
        )
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(dir.path().join("state"))
        .arg("--control-socket")
        .arg(dir.path().join("control.sock"))
        .args(["--store", st, "--scrub-rate", "0", "--scrub-every", "1h"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(rest) = line.trim().strip_prefix("metrics     http://") {
                let _ = tx.send(rest.trim_end_matches("/metrics").to_string());
            }
            log2.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        panic!("the agent did not start: {}", log.lock().unwrap());
    };
    // The store is the agent's now.
    let (code, _, err) = axon(&["io", "ls", "--store", st]);
    assert_eq!(code, 3);
    assert!(err.contains("open in another process"), "{err}");
    // One pass repairs the missing drive's chunks onto the other drives.
    let deadline = Instant::now() + Duration::from_secs(60);
    let m = loop {
        let m = scrape(&addr);
        if value(&m, "axon_store_scrub_passes_total").unwrap_or(0.0) >= 1.0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no scrub pass in 60 s:\n{m}\n{}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    let found = value(&m, "axon_store_scrub_found_total").unwrap();
    let repaired = value(&m, "axon_store_scrub_repaired_total").unwrap();
    assert!(found > 0.0, "{m}");
    assert_eq!(found, repaired, "{m}");
    assert_eq!(
        value(&m, "axon_store_scrub_unrepairable_total"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "axon_store_protection{state=\"OK\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "axon_store_stripes{lost=\"0\"}"),
        Some(8.0),
        "{m}"
    );
    assert_eq!(value(&m, "axon_store_objects"), Some(1.0), "{m}");
    assert_eq!(
        value(&m, "axon_store_open_findings{kind=\"drives_unavailable\"}"),
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
    assert!(
        log.lock().unwrap().contains("drive05: missing"),
        "{}",
        log.lock().unwrap()
    );
    // The store is free again, and whole.
    let (code, out, err) = axon(&["io", "status", "--store", st]);
    assert_eq!(code, 0, "{out}{err}");
}

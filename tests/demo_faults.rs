//! `axon demo` with its data plane, as a newcomer meets it: seven emulated nodes in one
//! process form a 4+2 cluster with a hot spare, start IO and write a light load. Faults go
//! in through `axon demo fail|heal|corrupt … --dir` (the demo's fault socket), and the
//! cluster's own answers are checked: a failed node is read around, rebuilt past the
//! grace period, and rejoins when healed; a failed drive's chunks and corrupted chunks
//! are counted in their stripes and rewritten from parity; an object written before the faults reads back
//! bit-identical after each; bad fault requests get clear errors.

mod common;

use common::dataplane::{bytes, data, get, until_data};
use common::process::run;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn demo(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["demo"];
    all.extend_from_slice(args);
    run(&all, Duration::from_secs(90))
}

fn same(inv: &Path, key: &str, want: &[u8], out: &Path) {
    let (code, text) = get(inv, key, out);
    assert_eq!(code, 0, "{text}");
    assert!(std::fs::read(out).unwrap() == want, "{key} differs");
}

#[test]
fn demo_faults_are_read_around_rebuilt_and_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let dir_s = dir.to_str().unwrap().to_string();
    let log = std::fs::File::create(tmp.path().join("demo.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args([
            "demo",
            "--headless",
            "--nodes",
            "7",
            "--scheme",
            "4+2",
            "--drive-size",
            "64M",
            "--rebuild-grace",
            "3s",
            "--objects",
            "8",
            "--port",
            "24600",
            "--metrics-port",
            "24690",
            "--dir",
            &dir_s,
        ])
        .stdout(log)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let _demo = Demo(child);
    let mut seen = String::new();
    let start = Instant::now();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).unwrap_or(0);
        seen.push_str(&line);
        if n == 0 || line.contains("Press Ctrl-C") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{seen}");
    }
    assert!(
        seen.contains("Press Ctrl-C"),
        "the demo did not come up:\n{seen}"
    );
    assert!(seen.contains("IO started"), "{seen}");
    // The rest of its log, kept for the end.
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let inv = dir.join("inventory.toml");
    let inv_s = inv.to_str().unwrap().to_string();

    // An object of our own, to read back after every fault.
    let want = bytes(3 << 20, 42);
    let src = tmp.path().join("probe");
    std::fs::write(&src, &want).unwrap();
    let (code, out, e) = run(
        &[
            "io",
            "put",
            "--inventory",
            &inv_s,
            "test/probe",
            src.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{e}");
    let back = tmp.path().join("back");
    until_data(
        &inv,
        "the demo's load and the probe stored, protection OK",
        |d| d["protection"] == "OK" && d["objects"].as_u64().unwrap_or(0) >= 9,
    );

    // A node fails: read around within the grace period, rebuilt past it.
    let (code, out, e) = demo(&["fail", "node", "axon003", "--dir", &dir_s]);
    assert_eq!(code, 0, "{out}{e}");
    assert!(out.contains("axon003 failed"), "{out}");
    let (code, out, e) = demo(&["fail", "node", "axon003", "--dir", &dir_s]);
    assert_eq!(code, 2, "{out}{e}");
    assert!(e.contains("already failed"), "{e}");
    until_data(&inv, "axon003 away", |d| {
        d["away"] == serde_json::json!([3])
    });
    same(&inv, "test/probe", &want, &back);
    let d = until_data(&inv, "rebuilt with axon003 still down", |d| {
        d["failed"] == serde_json::json!([3])
            && d["protection"] == "OK"
            && d["rebuild"]["bytes_total"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(d["stripes_by_lost"][1], 0, "{d:#}");
    same(&inv, "test/probe", &want, &back);

    // Healed: it rejoins.
    let (code, out, e) = demo(&["heal", "node", "axon003", "--dir", &dir_s]);
    assert_eq!(code, 0, "{out}{e}");
    assert!(out.contains("axon003 healed"), "{out}");
    until_data(&inv, "axon003 back", |d| {
        d["away"] == serde_json::json!([]) && d["protection"] == "OK"
    });

    // A drive fails: its chunks are rewritten on the node's other drive. With IO
    // stopped first, nothing rewrites them, and their stripes are counted with one chunk
    // lost (axon004 answers; its pings list the chunks it cannot serve).
    let (code, out, e) = run(&["stop-io", "--inventory", &inv_s], Duration::from_secs(60));
    assert_eq!(code, 0, "{out}{e}");
    let before = data(&inv)["repaired_chunks"].as_u64().unwrap_or(0);
    let (code, out, e) = demo(&["fail", "drive", "axon004", "0", "--dir", &dir_s]);
    assert_eq!(code, 0, "{out}{e}");
    assert!(out.contains("drive00 FAILED"), "{out}");
    let d = until_data(&inv, "stripes counted with axon004's lost chunks", |d| {
        d["stripes_by_lost"][1].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(d["protection"], "PARTIALLY_PROTECTED", "{d:#}");
    assert_eq!(d["stripes_by_lost"][2], 0, "{d:#}");
    let (code, out, e) = run(
        &["cluster", "status", "--inventory", &inv_s],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{e}");
    assert!(
        out.contains("PARTIALLY_PROTECTED") && out.contains("with 1 lost"),
        "{out}"
    );
    // The node says how many it lost, and that they wait for start-io.
    let d = until_data(
        &inv,
        "axon004's lost chunks counted while IO is stopped",
        |d| d["lost_chunks"].as_u64().unwrap_or(0) > 0 && d["repair_paused"] == true,
    );
    assert_eq!(d["protection"], "PARTIALLY_PROTECTED", "{d:#}");
    let (code, out, e) = run(
        &["cluster", "status", "--inventory", &inv_s],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{e}");
    assert!(out.contains("not rewritten while IO is stopped"), "{out}");
    let (_, out, e) = run(&["status", "--inventory", &inv_s], Duration::from_secs(60));
    assert!(out.contains("lost, waiting for start-io"), "{out}{e}");
    let (code, out, e) = run(
        &["start-io", "--inventory", &inv_s],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{e}");
    let d = until_data(&inv, "axon004's lost chunks rewritten", |d| {
        d["repaired_chunks"].as_u64().unwrap_or(0) > before
            && d["lost_chunks"] == 0
            && d["stripes_by_lost"][1] == 0
            && d["protection"] == "OK"
    });
    same(&inv, "test/probe", &want, &back);

    // Its last drive fails too: no room left on axon004, so its chunks are rebuilt on
    // other members (they used to be retried here forever, 30 warnings a second).
    let before = d["repaired_chunks"].as_u64().unwrap();
    let (code, out, e) = demo(&["fail", "drive", "axon004", "drive01", "--dir", &dir_s]);
    assert_eq!(code, 0, "{out}{e}");
    assert!(out.contains("drive01 FAILED"), "{out}");
    let d = until_data(&inv, "axon004's chunks rebuilt on other members", |d| {
        d["repaired_chunks"].as_u64().unwrap_or(0) > before
            && d["lost_chunks"] == 0
            && d["stripes_by_lost"][1] == 0
    });
    assert_eq!(d["protection"], "OK", "{d:#}");
    same(&inv, "test/probe", &want, &back);

    // Bytes flipped on disk: found by checksum (the scrubber, or a read), rewritten.
    let before = d["repaired_chunks"].as_u64().unwrap();
    let (code, out, e) = demo(&["corrupt", "drive", "axon005", "drive00", "--dir", &dir_s]);
    assert_eq!(code, 0, "{out}{e}");
    assert!(out.contains("flipped bytes on disk in"), "{out}");
    same(&inv, "test/probe", &want, &back);
    let d = until_data(&inv, "axon005's damaged chunks rewritten", |d| {
        d["repaired_chunks"].as_u64().unwrap_or(0) > before
            && d["lost_chunks"] == 0
            && d["stripes_by_lost"][1] == 0
    });
    assert_eq!(d["protection"], "OK", "{d:#}");
    same(&inv, "test/probe", &want, &back);

    // Bad requests: clear errors, nothing changes.
    let (code, _, e) = demo(&["fail", "node", "nosuch", "--dir", &dir_s]);
    assert_eq!(code, 2);
    assert!(e.contains("no demo node \"nosuch\""), "{e}");
    let (code, _, e) = demo(&["fail", "drive", "axon004", "9", "--dir", &dir_s]);
    assert_eq!(code, 2);
    assert!(e.contains("no drive \"9\"") && e.contains("drive01"), "{e}");
    let (code, _, e) = demo(&["heal", "node", "axon004", "--dir", &dir_s]);
    assert_eq!(code, 2);
    assert!(e.contains("is up"), "{e}");
    let nowhere = tmp.path().join("nowhere");
    let (code, _, e) = demo(&[
        "fail",
        "node",
        "axon001",
        "--dir",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(e.contains("no demo is running"), "{e}");

    drop(_demo);
    let log = rest.join().unwrap();
    assert!(
        !log.contains("differ from"),
        "the demo's load read back wrong bytes:\n{log}"
    );
    assert!(log.contains("rebuilt on other members"), "{log}");
    let no_room = log.matches("no room here").count();
    assert!((1..=3).contains(&no_room), "{no_room} warnings:\n{log}");
}

//! The drive verbs on one agent hosting a 1+0 store of its own (no cluster): every dry run
//! makes the checks its real run makes and ends as it would — exit 0, or exit 2 saying
//! "would be refused: …" with the real run's own refusal (text and `--json`); a drive
//! taken out of the store says so in its superblock (`axon drive info`), and adding it back
//! asks for --force as for any axon drive; a drive of the store is never formatted over;
//! `drive add --json` ends with its step counter at its total and the drive's capacity.

mod common;

use common::dataplane::{agent_with_store, bytes};
use common::process::{Token, inventory_with, run};
use std::path::Path;
use std::time::Duration;

use common::dataplane::TWO_DRIVES as STORE;

fn axon(args: &[&str]) -> (i32, String, String) {
    run(args, Duration::from_secs(120))
}

/// `axon drive ARGS --inventory INV`.
fn drive(inv: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["drive"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--inventory", inv.to_str().unwrap()]);
    axon(&all)
}

/// As `drive` with --json: the exit code and the final operation.
fn drive_json(inv: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = drive(inv, &all);
    let last = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {err}"));
    (code, serde_json::from_str(last).unwrap())
}

/// `axon drive info PATH --json`.
fn info(path: &Path) -> serde_json::Value {
    let (code, out, err) = axon(&["drive", "info", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

/// A verb refused: its dry run exits 2 as the real run does, says "would be refused" with
/// the refusal the real run gives (`want` in both), in text and in JSON. Returns the
/// real run's text output.
fn refused_alike(inv: &Path, args: &[&str], want: &str) -> String {
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let (code, out, err) = drive(inv, &dry);
    assert_eq!(code, 2, "dry run of {args:?}: {out}{err}");
    assert!(out.contains("would be refused: "), "{out}");
    assert!(out.contains(want), "{out}");
    let (code, dry_op) = drive_json(inv, &dry);
    assert_eq!(code, 2, "{dry_op:#}");
    assert_eq!(dry_op["state"], "failed", "{dry_op:#}");
    assert_eq!(dry_op["output"]["dry_run"], true, "{dry_op:#}");
    assert!(
        dry_op["summary"]
            .as_str()
            .unwrap()
            .starts_with("dry run: would be refused: "),
        "{dry_op:#}"
    );
    let (code, real_out, err) = drive(inv, args);
    assert_eq!(code, 2, "{args:?}: {real_out}{err}");
    assert!(real_out.contains(want), "{real_out}");
    let (code, real_op) = drive_json(inv, args);
    assert_eq!(code, 2, "{real_op:#}");
    assert_eq!(real_op["state"], "failed", "{real_op:#}");
    // The same refusal, word for word.
    assert_eq!(dry_op["error"], real_op["error"], "{dry_op:#}\n{real_op:#}");
    real_out
}

#[test]
fn dry_runs_end_as_their_real_runs_and_a_removed_drive_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = dir.join("store-n1");
    let st = store.to_str().unwrap();
    let mut args = vec!["io", "create", "--store", st];
    args.extend_from_slice(STORE);
    let (code, out, err) = axon(&args);
    assert_eq!(code, 0, "{out}{err}");
    for i in 0..12 {
        let f = dir.join(format!("o{i}"));
        std::fs::write(&f, bytes(150_000 + i * 10_000, i as u64)).unwrap();
        let key = format!("obj/{i}");
        let (code, out, err) = axon(&["io", "put", "--store", st, &key, f.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (d0, d1) = (store.join("drives/drive00"), store.join("drives/drive01"));
    let cluster = info(&d0)["cluster"].as_str().unwrap().to_string();
    // A third drive, in the store but missing when the agent starts.
    let gone = dir.join("gone-drive");
    let (code, out, err) = axon(&[
        "drive",
        "format",
        gone.to_str().unwrap(),
        "--size",
        "8M",
        "--chunk-size",
        "64K",
        "--cluster",
        &cluster,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = axon(&["io", "add-drive", "--store", st, gone.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::remove_file(&gone).unwrap();
    let agent = agent_with_store("n1", dir, STORE, &[]);
    let inv = inventory_with(dir, std::slice::from_ref(&agent), Token::Admin);
    let on = |d: &Path| d.to_str().unwrap().to_string();

    // Activate: a drive that cannot be read is refused, dry run or not.
    let out = refused_alike(
        &inv,
        &["activate", &on(&gone), "--node", "n1"],
        "not activated",
    );
    assert!(out.contains("missing"), "{out}");
    let (code, op) = drive_json(&inv, &["activate", &on(&d0), "--node", "n1", "--dry-run"]);
    assert_eq!(code, 0, "{op:#}");
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(op["step"]["done"], op["step"]["total"], "{op:#}");

    // Remove: an ACTIVE drive is refused, dry run or not.
    refused_alike(
        &inv,
        &["remove", &on(&d0), "--node", "n1"],
        "it is ACTIVE: deactivate it first",
    );

    // A drive in service, as its superblock says when the drive joined: noted as such.
    let before = info(&d0);
    assert_eq!(before["state"], "ACTIVE");
    assert!(before["state_note"].as_str().unwrap().contains("index"));

    // Deactivate: the preview passes, the real run empties it onto drive01.
    let (code, op) = drive_json(&inv, &["deactivate", &on(&d0), "--node", "n1", "--dry-run"]);
    assert_eq!(code, 0, "{op:#}");
    assert_eq!(op["step"]["done"], op["step"]["total"], "{op:#}");
    let (code, out, err) = drive(&inv, &["deactivate", &on(&d0), "--node", "n1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is INACTIVE"), "{out}");
    // drive01 now holds everything and drive00 takes nothing: its phase-out is refused,
    // dry run or not.
    refused_alike(
        &inv,
        &["deactivate", &on(&d1), "--node", "n1"],
        "add a drive first",
    );

    // Remove: the preview passes, the real run takes it out and its superblock says so.
    let (code, out, err) = drive(&inv, &["remove", &on(&d0), "--node", "n1", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("dry run: would take"), "{out}");
    let (code, op) = drive_json(&inv, &["remove", &on(&d0), "--node", "n1"]);
    assert_eq!(code, 0, "{op:#}");
    assert_eq!(op["step"]["done"], op["step"]["total"], "{op:#}");
    let log = op["log"].to_string();
    assert!(log.contains("its superblock now says INACTIVE"), "{op:#}");
    let after = info(&d0);
    assert_eq!(after["state"], "INACTIVE", "{after:#}");
    assert_eq!(after["drive"], before["drive"]);
    assert!(after["state_note"].is_null(), "{after:#}");
    assert!(after["generation"].as_u64() > before["generation"].as_u64());

    // Add: whatever the real run refuses, the dry run refuses alike.
    let out = refused_alike(&inv, &["add", "n1", &on(&d0)], "holds an axon drive");
    assert!(
        out.contains("INACTIVE") && out.contains("pass --force"),
        "{out}"
    );
    // A drive of the store is never formatted over, --force or not.
    let d1_was = info(&d1);
    refused_alike(
        &inv,
        &["add", "n1", &on(&d1), "--force"],
        "of this store (ACTIVE)",
    );
    assert_eq!(info(&d1), d1_was, "drive01 was formatted over");
    refused_alike(
        &inv,
        &["add", "n1", &on(&dir.join("nothing-here"))],
        "does not exist",
    );
    refused_alike(
        &inv,
        &[
            "add",
            "n1",
            &on(&dir.join("no-such-dir/d")),
            "--size",
            "32M",
        ],
        "create",
    );
    refused_alike(
        &inv,
        &["add", "n1", &on(&dir.join("tiny")), "--size", "1M"],
        "hold no 65536-byte chunk slot",
    );
    // An add that fails after it created its file takes the file back: here the new file
    // cannot be given its size (more bytes than a file offset can count), which no check
    // foresees.
    let huge = dir.join("huge");
    let (code, op) = drive_json(&inv, &["add", "n1", &on(&huge), "--size", "9000000T"]);
    assert_eq!(code, 2, "{op:#}");
    assert_eq!(op["state"], "failed", "{op:#}");
    assert!(op["error"].as_str().unwrap().contains("set size"), "{op:#}");
    assert!(
        !huge.exists(),
        "the failed add left {} behind",
        huge.display()
    );

    // Added back with --force: the preview and the final record carry its capacity, and
    // the final step counter reaches its total.
    let slots = ((32u64 << 20) - (1 << 20)) / (4096 + (64 << 10));
    let (code, op) = drive_json(&inv, &["add", "n1", &on(&d0), "--force", "--dry-run"]);
    assert_eq!(code, 0, "{op:#}");
    assert_eq!(op["output"]["capacity"], slots * (64 << 10), "{op:#}");
    let (code, op) = drive_json(&inv, &["add", "n1", &on(&d0), "--force"]);
    assert_eq!(code, 0, "{op:#}");
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(op["output"]["capacity"], slots * (64 << 10), "{op:#}");
    let (done, total) = (&op["step"]["done"], &op["step"]["total"]);
    assert!(total.as_u64().unwrap() > 0, "nothing moved: {op:#}");
    assert_eq!(done, total, "{op:#}");
    let summary = op["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("moved {total} of {total} chunk(s)")),
        "{op:#}"
    );

    // A drive swapped in place: the missing drive's path now holds a new device (here a
    // new file). The record is refused only for the drive it names; the new one is added.
    let (code, op) = drive_json(&inv, &["add", "n1", &on(&gone), "--size", "8M"]);
    assert_eq!(code, 0, "{op:#}");
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_ne!(info(&gone)["drive"], serde_json::Value::Null);
    drop(agent);
}

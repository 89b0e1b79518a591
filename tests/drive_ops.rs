//! The drive verbs on a 4+2 cluster of seven real agent processes, each node a 1+0 store
//! on two file drives: `axon drive deactivate --dry-run` previews without changing
//! anything; a phase-out cut short by `kill -9` of its agent resumes when the agent
//! restarts and ends INACTIVE; one cancelled with Ctrl-C (SIGINT to the CLI) leaves the
//! drive ACTIVE with what moved staying moved; a drive is replaced end to end (deactivate,
//! remove, add); a node's last ACTIVE drive is phased out to other members; one that would
//! leave fewer than k+m failure domains is refused with the figures, as is removing an
//! ACTIVE drive (their dry runs exit as refused too); a removed drive's superblock says
//! INACTIVE; every object reads back bit-identical throughout.

mod common;

use common::dataplane::{bytes, form_drives, get, put, start_io, start_store};
use common::process::{Agent, Token, inventory_with, run, spawn};
use std::path::Path;
use std::time::{Duration, Instant};

use common::dataplane::TWO_DRIVES as STORE2;

/// `axon drive list --json`.
fn drive_list(inv: &Path) -> serde_json::Value {
    let (code, out, err) = run(
        &[
            "drive",
            "list",
            "--inventory",
            inv.to_str().unwrap(),
            "--json",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

/// The cluster's drives: (id, node id, path, state), by `axon drive list --json`.
fn drives(inv: &Path) -> Vec<(String, u64, String, String)> {
    let v = drive_list(inv);
    let mut d: Vec<_> = v["drives"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, r)| {
            (
                id.clone(),
                r["node"].as_u64().unwrap(),
                r["path"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    d.sort_by(|a, b| a.2.cmp(&b.2));
    d
}

/// Each drive's usage as its node reports it (`drive list --json`, from every member's
/// DataplaneService): id → (capacity bytes, used bytes, chunks).
fn usage(inv: &Path) -> std::collections::HashMap<String, (u64, u64, u64)> {
    drive_list(inv)["drives"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r.get("chunks").is_some())
        .map(|(id, r)| {
            (
                id.clone(),
                (
                    r["capacity_bytes"].as_u64().unwrap(),
                    r["used_bytes"].as_u64().unwrap(),
                    r["chunks"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Follows the cluster the way the console does (Watch streams with their `dataplane`
/// sections, the configuration fetched from a member) until every member's share is
/// counted and `done` holds.
fn follow_dataplane(
    inv: &Path,
    done: impl Fn(&axon::fleet::view::DataplaneView, &axon::fleet::view::ClusterView) -> bool,
) {
    use axon::fleet::{Fleet, FollowOptions, inventory::Inventory};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let inventory = Inventory::load(inv).unwrap();
        let mut opts = FollowOptions::for_interval(Duration::from_secs(1));
        opts.cluster = true;
        let mut fleet = Fleet::start(&inventory, opts).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = axon::clock::now_ms();
            if let Some(dp) = fleet.view.dataplane(now) {
                if dp.reporting == 7 && done(&dp, &fleet.view) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the console's view of the data plane: {:?}",
                fleet.view.dataplane(now)
            );
            let _ = tokio::time::timeout(Duration::from_secs(1), fleet.changed()).await;
        }
    });
}

fn state_of(inv: &Path, id: &str) -> Option<String> {
    drives(inv).into_iter().find(|d| d.0 == id).map(|d| d.3)
}

fn until_state(inv: &Path, id: &str, want: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let s = state_of(inv, id);
        if s.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "drive {id}: {s:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The last JSON line of a `--json` drive verb: the final operation.
fn last_op(out: &str) -> serde_json::Value {
    let line = out.lines().last().unwrap_or_else(|| panic!("no output"));
    serde_json::from_str(line).unwrap()
}

fn drive(inv: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["drive"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--inventory", inv.to_str().unwrap()]);
    run(&all, Duration::from_secs(120))
}

/// Starts a slow phase-out of drive `id` (16 KiB/s), waits `after` once it is PHASING_OUT,
/// then interrupts the CLI (Ctrl-C): the operation reports the cancel and the drive is
/// ACTIVE again.
fn deactivate_then_cancel(inv: &Path, id: &str, after: Duration) {
    let inv_s = inv.to_str().unwrap();
    let slow = spawn(&[
        "drive",
        "deactivate",
        id,
        "--rate",
        "16K",
        "--inventory",
        inv_s,
    ]);
    until_state(inv, id, Some("PHASING_OUT"));
    std::thread::sleep(after);
    // SAFETY: kill(2) with a pid we own.
    unsafe {
        libc::kill(slow.child.id() as i32, libc::SIGINT);
    }
    let (code, out, err) = slow.wait(Duration::from_secs(60));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("cancelled after moving"), "{out}");
    assert!(out.contains("the drive is ACTIVE again"), "{out}");
    until_state(inv, id, Some("ACTIVE"));
}

#[test]
fn drives_are_phased_out_cancelled_resumed_replaced_and_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut agents: Vec<Agent> = (0..7)
        .map(|i| start_store(&format!("n{}", i + 1), dir, (0, 0), STORE2, &[]))
        .collect();
    let (inv, ports) = form_drives(dir, &agents, "4+2", "0", 2);
    start_io(&inv);
    let inv_s = inv.to_str().unwrap().to_string();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut objects = Vec::new();
    for i in 0..16 {
        let data = bytes((256 << 10) + i * 40_000, i as u64 + 7);
        let f = src.join(format!("o{i}"));
        std::fs::write(&f, &data).unwrap();
        let key = format!("obj/{i}");
        let (code, said) = put(&inv, &key, &f);
        assert_eq!(code, 0, "{said}");
        objects.push((key, data));
    }
    let back = dir.join("back");
    let all_read = |inv: &Path| {
        for (key, data) in &objects {
            let (code, said) = get(inv, key, &back);
            assert_eq!(code, 0, "{key}: {said}");
            // Whole, not rebuilt around a chunk a move lost.
            assert!(!said.contains("rebuilt from parity"), "{key}: {said}");
            assert!(std::fs::read(&back).unwrap() == *data, "{key} differs");
        }
    };
    let list = drives(&inv);
    assert_eq!(list.len(), 14, "{list:?}");
    // The console's view, from the Watch streams: the scheme, IO, every member reporting,
    // the objects, and each node's drives holding the chunks the members count.
    let held = std::sync::atomic::AtomicU64::new(0);
    follow_dataplane(&inv, |dp, view| {
        let reported: u64 = view
            .nodes
            .iter()
            .filter_map(|n| n.snapshot.as_ref()?.dataplane.as_ref())
            .flat_map(|d| d.drives.iter().map(|x| x.chunks))
            .sum();
        let counted = dp.data.as_ref().map_or(0, |d| d.chunks_held);
        held.store(counted, std::sync::atomic::Ordering::Relaxed);
        dp.config.k == 4
            && dp.config.m == 2
            && dp.config.io == axon::model::cluster::IoStatus::Started
            && dp.config.drives.len() == 14
            && dp.data.as_ref().is_some_and(|d| d.objects == 16)
            && reported == counted
    });
    let held = held.into_inner();
    assert!(held >= 16 * 6, "16 objects of 4+2 stripes: {held} chunks");
    // `drive list` has every drive's usage, as its node's store reports it: 64 KiB a chunk.
    let before = usage(&inv);
    assert_eq!(before.len(), 14, "{before:?}");
    assert!(
        before
            .values()
            .all(|(cap, used, chunks)| *cap > 0 && *used == chunks * (64 << 10))
    );
    assert_eq!(
        before.values().map(|u| u.2).sum::<u64>(),
        held,
        "{before:?}"
    );
    let on = |node: u64| -> Vec<String> {
        list.iter()
            .filter(|d| d.1 == node)
            .map(|d| d.0.clone())
            .collect()
    };

    // The preview changes nothing.
    let a = on(1)[0].clone();
    let (code, out, err) = drive(&inv, &["deactivate", &a, "--dry-run", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let op = last_op(&out);
    let d = &op["output"];
    assert_eq!(d["kind"], "drive", "{op:#}");
    assert_eq!(d["dry_run"], true);
    assert!(d["chunks"].as_u64().unwrap() > 0, "{op:#}");
    assert!(d["others_free"].as_u64().unwrap() >= d["bytes"].as_u64().unwrap());
    assert!(
        op["summary"]
            .as_str()
            .unwrap()
            .starts_with("dry run: would move")
    );
    assert_eq!(state_of(&inv, &a).as_deref(), Some("ACTIVE"));

    // Removing an ACTIVE drive is refused, and its dry run says so with the same exit.
    let (code, out, _) = drive(&inv, &["remove", &a]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("deactivate it first"), "{out}");
    let (code, out, _) = drive(&inv, &["remove", &a, "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("would be refused: it is ACTIVE: deactivate it first"),
        "{out}"
    );

    // A phase-out cut short by kill -9 resumes when the agent restarts, at its rate.
    let slow = spawn(&[
        "drive",
        "deactivate",
        &a,
        "--rate",
        "64K",
        "--inventory",
        &inv_s,
    ]);
    until_state(&inv, &a, Some("PHASING_OUT"));
    agents[0].kill();
    let (code, _, _) = slow.wait(Duration::from_secs(60));
    assert_ne!(code, 0, "the CLI lost its agent");
    agents[0] = start_store("n1", dir, ports[0], STORE2, &[]);
    let inv = inventory_with(dir, &agents, Token::Admin);
    let inv_s = inv.to_str().unwrap().to_string();
    until_state(&inv, &a, Some("INACTIVE"));
    let log = std::fs::read_to_string(dir.join("n1/agent.log")).unwrap();
    assert!(
        log.contains("was being phased out when the agent stopped; resuming at 65536 bytes/s"),
        "{log}"
    );
    all_read(&inv);
    // Its chunks moved to the node's other drive.
    let after = usage(&inv);
    assert_eq!(after[&a].2, 0, "{after:?}");
    let b = on(1)[1].clone();
    assert_eq!(
        after[&b].2,
        before[&a].2 + before[&b].2,
        "{before:?} → {after:?}"
    );

    // Replaced end to end: removed, and a new drive added on the same node.
    let (code, out, err) = drive(&inv, &["remove", &a]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("removed from the store"), "{out}");
    until_state(&inv, &a, None);
    // The pulled drive's own superblock says it left.
    let a_path = &list.iter().find(|d| d.0 == a).unwrap().2;
    let (code, out, err) = run(
        &["drive", "info", a_path, "--json"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{out}{err}");
    let sb: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sb["state"], "INACTIVE", "{sb:#}");
    assert_eq!(sb["drive"], a.as_str(), "{sb:#}");
    let new = dir.join("n1-new-drive");
    let (code, out, err) = run(
        &[
            "drive",
            "add",
            "n1",
            new.to_str().unwrap(),
            "--size",
            "32M",
            "--inventory",
            &inv_s,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    // Phased in: chunks moved onto it from the node's other drive until both are about as
    // full, then ACTIVE.
    assert!(out.contains("formatted and added; moved"), "{out}");
    assert!(out.contains("; ACTIVE"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let new_id = loop {
        let l = drives(&inv);
        if let Some(d) = l
            .iter()
            .find(|d| d.1 == 1 && d.2 == new.to_str().unwrap() && d.3 == "ACTIVE")
        {
            break d.0.clone();
        }
        assert!(Instant::now() < deadline, "{l:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let b1 = on(1)[1].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let u = usage(&inv);
        let (on_new, on_old) = (u[&new_id].2, u[&b1].2);
        if on_new > 0 && on_new + 1 >= on_old && on_old + 1 >= on_new {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the phase-in: {on_new} chunks on the new drive, {on_old} on the other"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    all_read(&inv);

    // Cancelled with Ctrl-C: ACTIVE again.
    deactivate_then_cancel(&inv, &on(2)[0], Duration::ZERO);
    all_read(&inv);

    // A whole phase-out to the node's other drive; then that one, the node's last ACTIVE
    // drive: its chunks go to other members (six failure domains stay for 4+2).
    let (c, d2) = (on(3)[0].clone(), on(3)[1].clone());
    let (code, out, err) = drive(&inv, &["deactivate", &c]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is INACTIVE: moved"), "{out}");
    until_state(&inv, &c, Some("INACTIVE"));
    let held_d2 = usage(&inv)[&d2].2;
    assert!(held_d2 > 0);
    let (code, out, err) = drive(&inv, &["deactivate", &d2, "--dry-run", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let op = last_op(&out);
    assert_eq!(op["output"]["others_free"], 0, "{op:#}");
    assert_eq!(
        op["output"]["to_other_nodes"],
        held_d2 * (64 << 10),
        "{op:#}"
    );
    assert!(
        op["summary"]
            .as_str()
            .unwrap()
            .contains("and other members"),
        "{op:#}"
    );
    assert_eq!(state_of(&inv, &d2).as_deref(), Some("ACTIVE"));
    // Cancelled while its chunks go to other members: the moves under way finish, no more
    // start, the drive is ACTIVE again and every object reads whole.
    deactivate_then_cancel(&inv, &d2, Duration::from_millis(1500));
    all_read(&inv);
    let held_d2 = usage(&inv)[&d2].2;
    assert!(held_d2 > 0);
    // At a rate: a move starts only while the bytes moved are within it, so with up to 4
    // objects in flight the whole takes at least (bytes - 4 chunks) / rate.
    let (code, out, err) = drive(&inv, &["deactivate", &d2, "--rate", "512K", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let op = last_op(&out);
    eprintln!("phase-out to other members: {}", op["summary"]);
    assert_eq!(op["output"]["moved_to_other_nodes"], held_d2, "{op:#}");
    let took: f64 = op["summary"]
        .as_str()
        .unwrap()
        .split(" in ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {op:#}"));
    let bytes = op["output"]["moved_bytes"].as_u64().unwrap();
    let floor = bytes.saturating_sub(4 * (64 << 10)) as f64 / (512 << 10) as f64;
    assert!(
        took >= floor - 0.1,
        "{bytes} bytes at 512 KiB/s moved in {took} s, under the {floor:.1} s the rate allows"
    );
    assert!(
        op["summary"]
            .as_str()
            .unwrap()
            .contains("of them to other members"),
        "{op:#}"
    );
    until_state(&inv, &d2, Some("INACTIVE"));
    assert_eq!(usage(&inv)[&d2].2, 0);
    all_read(&inv);

    // Node 3 has no ACTIVE drive now: another node's last one would leave five failure
    // domains for 4+2, refused with the figures.
    let (e, f) = (on(4)[0].clone(), on(4)[1].clone());
    let (code, out, err) = drive(&inv, &["deactivate", &e]);
    assert_eq!(code, 0, "{out}{err}");
    until_state(&inv, &e, Some("INACTIVE"));
    let (code, out, _) = drive(&inv, &["deactivate", &f]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(
            "5 failure domain(s) would remain to hold chunks, 4+2 with 0 hot spare(s) needs 6"
        ),
        "{out}"
    );
    // Its dry run exits as the real run does.
    let (code, out, _) = drive(&inv, &["deactivate", &f, "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("would be refused: ") && out.contains("5 failure domain(s) would remain"),
        "{out}"
    );
    assert_eq!(state_of(&inv, &f).as_deref(), Some("ACTIVE"));
    // Back in service.
    for x in [&c, &e] {
        let (code, out, err) = drive(&inv, &["activate", x]);
        assert_eq!(code, 0, "{out}{err}");
        until_state(&inv, x, Some("ACTIVE"));
    }

    // Bad names: clear errors.
    let (code, _, err) = drive(&inv, &["deactivate", "nosuchdrive"]);
    assert_ne!(code, 0);
    assert!(err.contains("no drive \"nosuchdrive\""), "{err}");
    all_read(&inv);
}

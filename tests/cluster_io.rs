//! Objects across a cluster of six real agent processes (4+2, each node a 1+0 store on a
//! file drive, chunks between agents over mutual TLS on their data ports): `axon io
//! put|get|ls|rm --inventory` through any member; with m = 2 nodes killed (`kill -9`)
//! every object still reads back bit-identical (rebuilt from parity), a write that needs six
//! nodes is refused with the figures; with a third killed, reads fail with a clear
//! "unavailable" error and no partial file, never wrong bytes; once the nodes return,
//! everything reads again. The same with `--direct` (the frontend in the CLI, chunks sent
//! to the members' gRPC ports): objects written either way read back the other way, a
//! reader token cannot write, IO must be started, two nodes down are read around and a
//! third is a clear "unavailable".

mod common;

use axon::wire::pb::{DeleteChunksRequest, GetChunkRequest, ManifestPayload, PutChunkRequest};
use common::dataplane::{
    bytes, form, get, inventory_via, put, start, start_io, start_with, status_line, until_data,
};
use common::process::{Agent, Token, inventory_with, run};
use std::time::{Duration, Instant};

#[test]
fn objects_survive_m_nodes_killed_and_fail_clearly_beyond() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut agents: Vec<Agent> = (0..6)
        .map(|i| start(&format!("n{}", i + 1), dir, 0, 0))
        .collect();
    let (inv, ports) = form(dir, &agents, "4+2", "0");
    let inv_s = inv.to_str().unwrap().to_string();

    // IO is refused until it is started.
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let f0 = src.join("early");
    std::fs::write(&f0, b"too early").unwrap();
    let (code, _, err) = run(
        &[
            "io",
            "put",
            "--inventory",
            &inv_s,
            "early",
            f0.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("IO is STOPPED") && err.contains("start-io"),
        "{err}"
    );
    let (code, said) = direct(&inv, "put", "early", &f0);
    assert_eq!(code, 2, "{said}");
    assert!(
        said.contains("IO is STOPPED") && said.contains("start-io"),
        "{said}"
    );
    // The members refuse it themselves, whatever a client checks first: calls straight
    // to n1's gRPC port with the admin token, a write and a read.
    let (rt, mut raw) = raw_client(&inv);
    for refusal in [
        rt.block_on(raw.data.put_chunk(PutChunkRequest {
            key: "c/early/0/0".into(),
            data: vec![1u8; 16].into(),
        }))
        .expect_err("a put while IO is stopped"),
        rt.block_on(raw.data.get_chunk(GetChunkRequest {
            key: "c/early/0/0".into(),
        }))
        .expect_err("a get while IO is stopped"),
    ] {
        assert_eq!(
            refusal.code(),
            tonic::Code::FailedPrecondition,
            "{refusal:?}"
        );
        assert!(refusal.message().contains("IO is STOPPED"), "{refusal:?}");
    }
    start_io(&inv);
    // The members registered their drives through the leader: each change a member
    // forwarded is in the leader's audit trail, as that member's, with the command.
    let forwarded: Vec<serde_json::Value> = (1..=6)
        .flat_map(|i| {
            std::fs::read_to_string(dir.join(format!("n{i}/state/audit.jsonl")))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .filter(|r| r["rpc"] == "/axon.v1.RaftService/Forward")
        .collect();
    assert!(
        forwarded.iter().any(|r| r["result"] == "ok"
            && r["principal"]
                .as_str()
                .is_some_and(|p| p.starts_with("member "))
            && r["target"].as_str().is_some_and(|t| t.contains("AddDrive"))),
        "no forwarded change audited on the leader: {forwarded:?}"
    );

    // Objects of every shape: empty, one byte, part of a stripe, several stripes (a stripe
    // is 4 × 64 KiB).
    let sizes = [0usize, 1, 100_000, 3 << 20];
    let mut objects = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let key = format!("obj/{i}");
        let path = src.join(format!("o{i}"));
        let data = bytes(n, i as u64 + 1);
        std::fs::write(&path, &data).unwrap();
        // Each through another member.
        let via = inventory_via(dir, &agents, i % 6);
        let (code, out, err) = run(
            &[
                "io",
                "put",
                "--inventory",
                via.to_str().unwrap(),
                &key,
                path.to_str().unwrap(),
                "--json",
            ],
            Duration::from_secs(120),
        );
        assert_eq!(code, 0, "{out}{err}");
        let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(r["bytes"], n as u64, "{r}");
        assert_eq!(r["via"], format!("n{}", i % 6 + 1), "{r}");
        if n == 3 << 20 {
            assert_eq!(r["stripes"], 12, "{r}");
            assert_eq!(r["nodes"], 6, "{r}");
        }
        objects.push((key, data));
    }
    let back = dir.join("back");
    for (i, (key, data)) in objects.iter().enumerate() {
        // Read through a member other than the writer.
        let via = inventory_via(dir, &agents, (i + 3) % 6);
        let (code, said) = get(&via, key, &back);
        assert_eq!(code, 0, "{said}");
        assert!(std::fs::read(&back).unwrap() == *data, "{key} differs");
        assert!(!said.contains("rebuilt"), "{said}");
        // And with the frontend in the CLI.
        let (code, said) = direct(&inv, "get", key, &back);
        assert_eq!(code, 0, "{said}");
        assert!(
            std::fs::read(&back).unwrap() == *data,
            "{key} differs, direct"
        );
    }
    // Written with the frontend in the CLI, read through a member: the same objects.
    for (i, &n) in sizes.iter().enumerate() {
        let (key, path) = (format!("direct/{i}"), src.join(format!("d{i}")));
        let data = bytes(n, i as u64 + 100);
        std::fs::write(&path, &data).unwrap();
        let (code, said) = direct(&inv, "put", &key, &path);
        assert_eq!(code, 0, "{said}");
        assert!(said.contains("via this client (direct)"), "{said}");
        let (code, said) = get(&inventory_via(dir, &agents, i % 6), &key, &back);
        assert_eq!(code, 0, "{said}");
        assert!(std::fs::read(&back).unwrap() == data, "{key} differs");
    }
    // Listed and removed with the frontend in the CLI too: what a direct `ls` lists, a
    // direct `rm` removes for every reader (the chunks are left to orphan collection).
    let ls = |inv: &str, direct: bool| -> serde_json::Value {
        let mut args = vec![
            "io",
            "ls",
            "--inventory",
            inv,
            "--prefix",
            "direct/",
            "--json",
        ];
        if direct {
            args.push("--direct");
        }
        let (code, out, err) = run(&args, Duration::from_secs(60));
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str(out.trim()).expect("ls JSON")
    };
    let listed = ls(&inv_s, true);
    assert_eq!(listed["via"], "this client (direct)", "{listed}");
    let entries = |v: &serde_json::Value| -> Vec<(String, u64)> {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["key"].as_str().unwrap().to_string(),
                    o["size"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let want: Vec<(String, u64)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("direct/{i}"), n as u64))
        .collect();
    assert_eq!(entries(&listed), want, "{listed}");
    assert_eq!(entries(&ls(&inv_s, false)), want, "through a member");
    for i in 0..sizes.len() {
        let key = format!("direct/{i}");
        let mut args = vec!["io", "rm", "--inventory", &inv_s, &key];
        // Every other one from this process.
        if i % 2 == 0 {
            args.push("--direct");
        }
        let (code, _, err) = run(&args, Duration::from_secs(60));
        assert_eq!(code, 0, "{key}: {err}");
        let (code, said) = get(&inventory_via(dir, &agents, i % 6), &key, &back);
        assert_eq!(code, 1, "{key} removed: {said}");
        let (code, said) = direct(&inv, "get", &key, &back);
        assert_eq!(code, 1, "{key} removed, direct: {said}");
    }
    assert_eq!(entries(&ls(&inv_s, true)), Vec::new(), "all removed");
    // A put whose input fails to read (/proc/self/mem at offset 0: EIO on the first read)
    // stores nothing, whichever way it goes: the key's object stays as it was, and a new
    // key is not created. A directory is refused before anything is read, naming it.
    let unreadable = "/proc/self/mem";
    let (kept, kept_data) = &objects[1];
    let (code, _, err) = run(
        &[
            "io",
            "put",
            "--inventory",
            &inv_s,
            kept,
            src.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("it is a directory"), "{err}");
    for direct in [false, true] {
        for key in [kept.as_str(), "broken/new"] {
            let mut args = vec!["io", "put", "--inventory", &inv_s, key, unreadable];
            if direct {
                args.push("--direct");
            }
            let (code, out, err) = run(&args, Duration::from_secs(60));
            assert_eq!(code, 2, "{args:?}: {out}{err}");
            assert!(
                err.contains("reading the input failed") && err.contains("nothing was stored"),
                "{err}"
            );
        }
        let (code, said) = get(&inv, kept, &back);
        assert_eq!(code, 0, "{said}");
        assert!(
            std::fs::read(&back).unwrap() == *kept_data,
            "{kept} changed by a failed put (direct: {direct})"
        );
        let (code, said) = get(&inv, "broken/new", &back);
        assert_eq!(
            code, 1,
            "a failed put created its key (direct: {direct}): {said}"
        );
    }
    // The members count what direct clients moved: data and parity, 1.5 × the objects'
    // bytes put (4+2), and what was got back.
    let direct_bytes = |op: &str| -> f64 {
        agents
            .iter()
            .filter_map(|a| {
                common::agents::sample(
                    &common::process::scrape(&a.metrics),
                    &format!("axon_cluster_direct_chunk_bytes_total{{op=\"{op}\"}}"),
                )
            })
            .sum()
    };
    // At most one stripe of padding per object (k + m chunks of 64 KiB), so bytes counted
    // twice would show.
    let put_bytes = sizes.iter().sum::<usize>() as f64;
    let slack = (sizes.len() * 6 * (64 << 10)) as f64;
    let put = direct_bytes("put");
    assert!(
        (1.5 * put_bytes..=1.5 * put_bytes + slack).contains(&put),
        "{put}"
    );
    let got = direct_bytes("get");
    assert!((put_bytes..=put_bytes + slack).contains(&got), "{got}");
    // A short load both ways: every operation succeeds, and what it wrote is removed.
    for direct in [false, true] {
        let mut args = vec![
            "io",
            "bench",
            "--inventory",
            &inv_s,
            "--size",
            "200K",
            "--concurrency",
            "3",
            "--duration",
            "2s",
            "--mix",
            "50",
            "--json",
        ];
        if direct {
            args.push("--direct");
        }
        let (code, out, err) = run(&args, Duration::from_secs(120));
        assert_eq!(code, 0, "{out}{err}");
        let b: serde_json::Value = serde_json::from_str(out.trim()).expect("bench JSON");
        let ops = |w: &str| b[w]["ops"].as_u64().unwrap();
        assert!(ops("write") > 0 && ops("read") > 0, "{b}");
        assert_eq!(b["write"]["errors"], 0, "{b}");
        assert_eq!(b["read"]["errors"], 0, "{b}");
        assert_eq!(b["direct"], direct, "{b}");
        assert_eq!(b["agents"], 6, "{b}");
        // The objects written and one seed object per worker, all removed.
        assert_eq!(b["deleted"].as_u64(), Some(ops("write") + 3), "{b}");
        let (code, out, err) = run(
            &[
                "io",
                "ls",
                "--inventory",
                &inv_s,
                "--prefix",
                "bench/",
                "--json",
            ],
            Duration::from_secs(60),
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("\"objects\":[]"), "{out}");
    }
    // The members check the token: a reader's can read, not write a chunk or a manifest.
    let reader = inventory_with(dir, &agents, Token::Reader);
    let (code, said) = direct(&reader, "put", "by-reader", &f0);
    assert_eq!(code, 2, "{said}");
    // Said once, with the remedy: not as chunks that found no node to take them.
    assert!(
        said.contains("needs the admin token") && said.contains("pass --token-file"),
        "{said}"
    );
    assert!(!said.contains("could be placed"), "{said}");
    assert!(
        said.matches("needs the admin token").count() <= 2,
        "not once per node: {said}"
    );
    let (code, said) = direct(&reader, "get", &objects[3].0, &back);
    assert_eq!(code, 0, "{said}");
    assert!(
        std::fs::read(&back).unwrap() == objects[3].1,
        "read by the reader"
    );
    let reader_s = reader.to_str().unwrap();
    let (code, out, err) = run(
        &[
            "io",
            "rm",
            "--inventory",
            reader_s,
            "--direct",
            &objects[3].0,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("needs the admin token"), "{err}");
    let (code, said) = get(&inv, &objects[3].0, &back);
    assert_eq!(code, 0, "still there after a reader's rm: {said}");
    let (code, out, err) = run(
        &["io", "ls", "--inventory", reader_s, "--direct", "--json"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("\"{}\"", objects[3].0)), "{out}");
    let (rt, mut raw) = raw_client(&reader);
    let denied = rt
        .block_on(raw.data.put_manifest(ManifestPayload { json: "{}".into() }))
        .expect_err("a reader's manifest");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("needs the admin token"),
        "{denied:?}"
    );
    // Clients never free chunks, whatever their token: the members' orphan collection does.
    let (rt, mut raw) = raw_client(&inventory_with(dir, &agents, Token::Admin));
    // Nor date a manifest two hours ahead (no later write could pass it), nor send a
    // message past 4 MiB + 64 KiB, even with the admin token.
    let ahead = std::time::SystemTime::now() + Duration::from_secs(7200);
    let ahead = ahead
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let future = axon::dataplane::cluster::objects::Manifest {
        key: "future".into(),
        generation: ahead,
        writer: 1 << 63,
        revision: 0,
        object: "f".into(),
        size: 0,
        k: 4,
        m: 2,
        chunk_size: 64 << 10,
        deleted: false,
        stripes: Vec::new(),
    };
    let denied = rt
        .block_on(raw.data.put_manifest(ManifestPayload {
            json: serde_json::to_string(&future).unwrap(),
        }))
        .expect_err("a manifest from the future");
    assert_eq!(denied.code(), tonic::Code::InvalidArgument, "{denied:?}");
    assert!(denied.message().contains("client's clock"), "{denied:?}");
    let denied = rt
        .block_on(
            raw.data
                .clone()
                .max_encoding_message_size(8 << 20)
                .put_chunk(PutChunkRequest {
                    key: "c/big/0/0".into(),
                    data: vec![0u8; 5 << 20].into(),
                }),
        )
        .expect_err("a 5 MiB message");
    assert_eq!(denied.code(), tonic::Code::OutOfRange, "{denied:?}");
    // The member's limit, not this client's own (raised above to send it).
    assert!(
        denied
            .message()
            .contains("decoded message length too large"),
        "{denied:?}"
    );
    let denied = rt
        .block_on(raw.data.delete_chunks(DeleteChunksRequest {
            keys: vec!["c/x/0/0".into()],
        }))
        .expect_err("a client's delete");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("orphan"), "{denied:?}");
    let (code, out, err) = run(
        &["io", "ls", "--inventory", &inv_s, "--json"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let ls: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let keys: Vec<&str> = ls["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["obj/0", "obj/1", "obj/2", "obj/3"]);
    assert_eq!(ls["objects"][3]["size"], 3 << 20);

    // An overwrite: the new bytes are the object.
    let newer = bytes(200_000, 77);
    let p = src.join("newer");
    std::fs::write(&p, &newer).unwrap();
    let (code, _, err) = run(
        &[
            "io",
            "put",
            "--inventory",
            &inv_s,
            "obj/2",
            p.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{err}");
    objects[2].1 = newer;

    // kill -9 two nodes (m = 2; n1 stays, the CLI goes through it): every object still
    // reads back bit-identical, some stripes rebuilt from parity.
    agents[2].kill();
    agents[4].kill();
    let mut rebuilt = 0;
    for (key, data) in &objects {
        let (code, said) = get(&inv, key, &back);
        assert_eq!(code, 0, "{key}: {said}");
        assert!(
            std::fs::read(&back).unwrap() == *data,
            "{key} differs with 2 nodes down"
        );
        rebuilt += usize::from(said.contains("rebuilt from parity"));
    }
    assert!(
        rebuilt > 0,
        "no stripe needed parity with 2 of 6 nodes down"
    );
    for (key, data) in &objects {
        let (code, said) = direct(&inv, "get", key, &back);
        assert_eq!(code, 0, "{key}: {said}");
        assert!(
            std::fs::read(&back).unwrap() == *data,
            "{key} differs with 2 nodes down, direct"
        );
        assert!(said.contains("members not reached"), "{said}");
    }
    let (code, out, err) = run(
        &["io", "ls", "--inventory", &inv_s, "--json"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let ls: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(ls["objects"].as_array().unwrap().len(), 4, "{ls:#}");
    assert_eq!(ls["unreachable"].as_array().unwrap().len(), 2, "{ls:#}");
    // 4+2 needs six nodes to take a stripe: a write now is refused, with the figures.
    let (code, _, err) = run(
        &[
            "io",
            "put",
            "--inventory",
            &inv_s,
            "new",
            p.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("could be placed on distinct nodes"), "{err}");

    // A third node down: the large object cannot be read — a clear error, no file.
    agents[5].kill();
    let lost = dir.join("lost");
    let (code, said) = get(&inv, "obj/3", &lost);
    assert_eq!(code, 2, "{said}");
    assert!(
        said.contains("unavailable") && said.contains("not enough survive"),
        "{said}"
    );
    assert!(!lost.exists(), "a partial file was left behind");
    let (code, said) = direct(&inv, "get", "obj/3", &lost);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("unavailable"), "{said}");
    assert!(!lost.exists(), "a partial file was left behind, direct");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("axon-get"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // They return on their ports: everything reads again.
    for i in [2usize, 4, 5] {
        let (cp, dp) = ports[i];
        agents[i] = start(&format!("n{}", i + 1), dir, cp, dp);
    }
    let inv = inventory_with(dir, &agents, Token::Admin);
    let inv_s = inv.to_str().unwrap().to_string();
    for (key, data) in &objects {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, said) = get(&inv, key, &back);
            if code == 0 {
                assert!(
                    std::fs::read(&back).unwrap() == *data,
                    "{key} differs after return"
                );
                break;
            }
            assert!(Instant::now() < deadline, "{key}: {said}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    // rm: gone from ls and get (exit 1), the rest stays.
    let (code, _, err) = run(
        &["io", "rm", "--inventory", &inv_s, "obj/1"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let (code, said) = get(&inv, "obj/1", &back);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("no object \"obj/1\""), "{said}");
    let (code, _, err) = run(
        &["io", "rm", "--inventory", &inv_s, "obj/1"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "{err}");
    let (_, out, _) = run(
        &["io", "ls", "--inventory", &inv_s],
        Duration::from_secs(60),
    );
    assert_eq!(out.lines().count(), 3, "{out}");
}

/// 3+2 with one hot spare on six agents: a node killed is read around within the grace
/// period, then its chunks are rebuilt on the spare capacity back to OK while it stays
/// down; then m = 2 more die and everything still reads back bit-identical.
#[test]
fn a_node_lost_past_the_grace_period_is_rebuilt_to_full_protection() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut agents: Vec<Agent> = (0..6)
        .map(|i| {
            // A short grace period, as in the demo (the default is a minute).
            start_with(
                &format!("r{}", i + 1),
                dir,
                0,
                0,
                &["--rebuild-grace", "2s"],
            )
        })
        .collect();
    let (inv, _) = form(dir, &agents, "3+2", "1");
    let inv_s = inv.to_str().unwrap().to_string();
    start_io(&inv);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut objects = Vec::new();
    for i in 0..4 {
        let key = format!("r/{i}");
        let d = bytes(600_000 + i * 77_777, 100 + i as u64);
        let p = src.join(format!("r{i}"));
        std::fs::write(&p, &d).unwrap();
        let (code, said) = put(&inv, &key, &p);
        assert_eq!(code, 0, "{said}");
        objects.push((key, d));
    }
    // Counted every 2 s by each object's responsible member.
    let stripes = |d: &serde_json::Value| -> u64 {
        d["stripes_by_lost"]
            .as_array()
            .map_or(0, |a| a.iter().filter_map(|x| x.as_u64()).sum())
    };
    let d = until_data(&inv, "every object counted, protection OK", |d| {
        d["protection"] == "OK" && d["objects"] == 4
    });
    // 600,000 + i × 77,777 bytes in stripes of 3 × 64 KiB: 4, 4, 4 and 5 stripes.
    assert_eq!(stripes(&d), 17, "{d:#}");
    assert_eq!(d["stripes_by_lost"][0], 17, "{d:#}");

    // r4 dies. Within the grace period: degraded, not rebuilt.
    agents[3].kill();
    let killed = std::time::Instant::now();
    let d = until_data(&inv, "the loss seen", |d| d["protection"] != "OK");
    eprintln!(
        "the loss seen {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    assert!(
        d["protection"] == "PARTIALLY_PROTECTED" || d["protection"] == "REBUILDING",
        "{d:#}"
    );
    assert_eq!(d["away"], serde_json::json!([4]), "{d:#}");
    let (_, text, _) = run(
        &["cluster", "status", "--inventory", &inv_s],
        Duration::from_secs(60),
    );
    assert!(text.contains("protection  "), "{text}");
    assert!(text.contains("away        r4"), "{text}");
    // Past it: rebuilt on the other five, back to OK with r4 still down.
    let d = until_data(&inv, "rebuilt to OK", |d| {
        d["protection"] == "OK" && d["rebuild"]["passes"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(d["failed"], serde_json::json!([4]), "{d:#}");
    assert!(d["rebuild"]["bytes"].as_u64().unwrap() > 0, "{d:#}");
    assert!(d["rebuild"]["last_error"].is_null(), "{d:#}");
    let log = std::fs::read_to_string(dir.join("r1/agent.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("r2/agent.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("r3/agent.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("r5/agent.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("r6/agent.log")).unwrap_or_default();
    assert!(log.contains("rebuild: pass done"), "{log}");
    // axon status carries protection in its cluster line (asked of the members); /metrics
    // the rebuild.
    let (_, out, err) = run(&["status", "--inventory", &inv_s], Duration::from_secs(60));
    let line = status_line(&out, &err, "cluster");
    assert!(line.contains("protection OK"), "{line}");
    // Its data line adds up the shares the members report in their Watch streams (r4 is
    // down). Each member recounts its share every 2 s, so a share read a moment apart
    // from the direct asks may still be the count before the last repair: it follows.
    let mut tries = 0;
    let (out, err) = loop {
        let (_, out, err) = run(&["status", "--inventory", &inv_s], Duration::from_secs(60));
        tries += 1;
        if status_line(&out, &err, "data").contains("protection OK") || tries == 10 {
            break (out, err);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let data = status_line(&out, &err, "data");
    eprintln!("status: the data line read OK at run {tries}");
    assert!(
        data.contains("IO STARTED · protection OK")
            && data.contains("1 member(s) away, 1 past the grace period")
            && data.contains("5 of 6 members reporting"),
        "{data}"
    );
    // The console's Stripes panel, on the live cluster.
    let (code, frame, err) = run(
        &[
            "console",
            "--inventory",
            &inv_s,
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
        frame.contains("3+2 with 1 hot spare · 6 members") && frame.contains("STARTED"),
        "{frame}"
    );
    assert!(frame.contains("Protection  OK"), "{frame}");
    assert!(
        frame.contains("r4 (past the grace period: rebuilt elsewhere)"),
        "{frame}"
    );
    let r4 = frame
        .lines()
        .find(|l| l.starts_with("r4 "))
        .unwrap_or_default();
    assert!(r4.ends_with("away"), "{frame}");
    let rebuilt: f64 = [0usize, 1, 2, 4, 5]
        .iter()
        .filter_map(|&i| {
            common::agents::sample(
                &common::process::scrape(&agents[i].metrics),
                "axon_cluster_rebuild_written_bytes_total",
            )
        })
        .sum();
    assert_eq!(
        rebuilt as u64,
        d["rebuild"]["bytes_total"].as_u64().unwrap(),
        "{d:#}"
    );

    // m = 2 more die: every object still reads back whole (3 of 6 nodes left, k = 3).
    agents[4].kill();
    agents[5].kill();
    let back = dir.join("back");
    for (key, want) in &objects {
        let (code, said) = get(&inv, key, &back);
        assert_eq!(code, 0, "{key}: {said}");
        assert!(std::fs::read(&back).unwrap() == *want, "{key} differs");
    }
}

/// `axon io put KEY FILE --direct` or `axon io get KEY -o FILE --direct`: (exit code,
/// stdout and stderr).
fn direct(inv: &std::path::Path, verb: &str, key: &str, file: &std::path::Path) -> (i32, String) {
    let inv = inv.to_str().unwrap();
    let file = file.to_str().unwrap();
    let mut args = vec!["io", verb, "--inventory", inv, "--direct", key];
    if verb == "get" {
        args.push("-o");
    }
    args.push(file);
    let (code, o, e) = run(&args, Duration::from_secs(120));
    (code, o + &e)
}

/// A client of the first node's gRPC port with the inventory's token, for calls made
/// straight to its services (as a client of its own would make them), and a runtime to
/// make them on.
fn raw_client(
    inv: &std::path::Path,
) -> (tokio::runtime::Runtime, axon::fleet::cluster::ClusterAgent) {
    let inv = axon::fleet::inventory::Inventory::load(inv).unwrap();
    let spec = &inv.nodes[0];
    let tokens = inv.load_tokens().unwrap();
    let token = spec
        .token_file
        .as_ref()
        .and_then(|p| tokens.get(p).cloned());
    let security = inv.security(spec).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = rt
        .block_on(axon::fleet::cluster::ClusterAgent::connect(
            spec,
            token,
            security,
            Duration::from_secs(5),
        ))
        .unwrap();
    (rt, c)
}

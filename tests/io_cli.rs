//! `axon io …` end to end through the binary: create a store on file drives, put and get a
//! file bit-identical, lose a drive (read around, status exit 1, scrub repairs, exit 0),
//! and bad input answered with the remedy.

mod common;

use common::process;
use std::time::Duration;

fn axon(args: &[&str]) -> (i32, String, String) {
    process::run(args, Duration::from_secs(60))
}

#[test]
fn a_store_made_used_damaged_and_repaired_from_the_command_line() {
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
        "7",
        "--drive-size",
        "32M",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4+2, 64 KiB chunks) with 7 drives"), "{out}");
    let src = dir.path().join("in.bin");
    let data: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let (code, _, err) = axon(&["io", "put", "--store", st, "obj/one", src.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("stored obj/one (1.43 MiB) in 6 stripes"),
        "{err}"
    );
    // --direct is for a cluster's members; on a local store it is refused, not ignored.
    for verb in [
        &["put", "obj/two", src.to_str().unwrap()][..],
        &["ls"],
        &["rm", "obj/one"],
    ] {
        let mut args = vec!["io"];
        args.extend_from_slice(&verb[..1]);
        args.extend(["--store", st, "--direct"]);
        args.extend_from_slice(&verb[1..]);
        let (code, _, err) = axon(&args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(
            err.contains("--inventory FILE or --hosts HOSTLIST"),
            "{err}"
        );
    }
    // The cluster's shape, and --prefix filters here too.
    let (code, out, _) = axon(&["io", "ls", "--store", st, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["objects"][0]["key"], "obj/one");
    assert_eq!(v["objects"][0]["size"], 1_500_000);
    let (code, out, _) = axon(&["io", "ls", "--store", st, "--prefix", "other/", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), r#"{"objects":[]}"#);
    // Lose a drive: status says so and exits 1; get rebuilds and says what from.
    std::fs::remove_file(store.join("drives/drive02")).unwrap();
    let (code, out, err) = axon(&["io", "status", "--store", st]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("protection  PARTIALLY_PROTECTED"), "{out}");
    assert!(err.contains("drive02: missing"), "{err}");
    let back = dir.path().join("out.bin");
    // `axon io get obj/one -o PATH`.
    let get_to = |p: &std::path::Path| {
        axon(&[
            "io",
            "get",
            "--store",
            st,
            "obj/one",
            "-o",
            p.to_str().unwrap(),
        ])
    };
    let (code, _, err) = get_to(&back);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read(&back).unwrap() == data,
        "get returned other bytes"
    );
    let (code, out, err) = axon(&["io", "scrub", "--store", st, "--rate", "0"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 unrepairable; protection OK"), "{out}");
    let (code, out, _) = axon(&["io", "status", "--store", st, "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["protection"], "OK");
    assert_eq!(v["objects"], 1);
    // Bad input: a key that is not there, a missing store, a bad scheme.
    let (code, _, err) = axon(&["io", "rm", "--store", st, "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no object \"nope\""), "{err}");
    // A missing input names the file; an output in a missing directory names the
    // directory, not a temporary file.
    let (code, _, err) = axon(&["io", "put", "--store", st, "k", "/nonexistent/in.bin"]);
    assert_eq!(code, 3);
    assert!(
        err.contains("cannot read the input file /nonexistent/in.bin"),
        "{err}"
    );
    // A directory as the input: named, and the same exit code.
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = axon(&["io", "put", "--store", st, "k", d]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!(
            "cannot read the input file {d}: it is a directory"
        )),
        "{err}"
    );
    let nowhere = dir.path().join("nodir/out.bin");
    let (code, _, err) = get_to(&nowhere);
    assert_eq!(code, 3);
    assert!(
        err.contains("does not exist") && !err.contains(".axon-get-"),
        "{err}"
    );
    let (code, _, err) = axon(&[
        "io",
        "ls",
        "--store",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(code, 3);
    assert!(err.contains("create one with `axon io create`"), "{err}");
    let (code, _, err) = axon(&[
        "io",
        "create",
        "--store",
        dir.path().join("y").to_str().unwrap(),
        "--scheme",
        "2+2",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("data chunks must be 3..16"), "{err}");
    // A get that fails leaves the file it was aimed at as it was.
    std::fs::write(&back, b"precious").unwrap();
    let (code, _, err) = axon(&[
        "io",
        "get",
        "--store",
        st,
        "nope",
        "-o",
        back.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no object \"nope\""), "{err}");
    assert_eq!(std::fs::read(&back).unwrap(), b"precious");
    // Not a regular file (a FIFO here; `/dev/null` alike): written in place, never
    // renamed over. A symbolic link stays one, its file gets the object.
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let (code, _, err) = get_to(&fifo);
    assert_eq!(code, 0, "{err}");
    // Before joining: a FIFO renamed over would leave its reader waiting forever.
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO was replaced by a file"
    );
    assert!(
        reader.join().unwrap() == data,
        "the FIFO's reader got other bytes"
    );
    // `/dev/stdout` into a pipe: a link to a pipe, written in place.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(["io", "get", "--store", st, "obj/one", "-o", "/dev/stdout"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == data, "-o /dev/stdout gave other bytes");
    let real = dir.path().join("real.bin");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.path().join("link.bin");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, _, err) = get_to(&link);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read(&real).unwrap() == data);
    let (code, out, _) = axon(&["io", "rm", "--store", st, "obj/one", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&v["key"], &v["removed"]),
        (&"obj/one".into(), &true.into()),
        "{v}"
    );
    let (_, out, _) = axon(&["io", "status", "--store", st, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let used: u64 = v["drives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["used"].as_u64().unwrap())
        .sum();
    assert_eq!(used, 0, "rm left slots in use");
}

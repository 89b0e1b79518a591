//! `axon drive format|info` on real files: a sparse new drive, refusals that name what a
//! file holds, a damaged superblock copy read from the other, both damaged, truncated.

mod common;

use common::process;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

const CLUSTER: &str = "6f1c2a7e-0000-4000-8000-000000000001";

fn axon(args: &[&str]) -> (i32, String, String) {
    process::run(args, Duration::from_secs(30))
}

fn info(path: &str) -> (i32, serde_json::Value, String) {
    let (code, out, err) = axon(&["drive", "info", path, "--json"]);
    let v = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (code, v, err)
}

fn poke(path: &std::path::Path, at: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn a_new_drive_is_sparse_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d0");
    let ps = p.to_str().unwrap();
    let (code, out, err) = axon(&[
        "drive",
        "format",
        ps,
        "--size",
        "8G",
        "--chunk-size",
        "1M",
        "--cluster",
        CLUSTER,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let made: serde_json::Value = serde_json::from_str(&out).unwrap();
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!(m.len(), 8 << 30);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "sparse: {} bytes allocated",
        m.blocks() * 512
    );
    let (code, v, _) = info(ps);
    assert_eq!(code, 0);
    assert_eq!(v, made);
    assert_eq!(v["cluster"], CLUSTER);
    assert_eq!(v["state"], "INACTIVE");
    // 8 GiB less the 1 MiB header area, in slots of 4 KiB header + 1 MiB chunk.
    assert_eq!(v["slots"], ((8u64 << 30) - (1 << 20)) / (4096 + (1 << 20)));
}

#[test]
fn a_drive_that_holds_something_is_refused_unless_forced_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ext4.img");
    let ps = p.to_str().unwrap();
    std::fs::File::create(&p)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    poke(&p, 1080, &[0x53, 0xEF]);
    let (code, _, err) = axon(&["drive", "format", ps]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!("{ps}: holds an ext2/3/4 filesystem")) && err.contains("--force"),
        "{err}"
    );
    let (code, _, err) = axon(&["drive", "format", ps, "--force", "--cluster", CLUSTER]);
    assert_eq!(code, 0, "{err}");
    let (_, first, _) = info(ps);
    // Formatting it again names the axon drive it holds.
    let (code, _, err) = axon(&["drive", "format", ps, "--cluster", CLUSTER]);
    assert_eq!(code, 3);
    assert!(
        err.contains(&format!(
            "holds an axon drive (cluster {CLUSTER}, drive {}",
            first["drive"].as_str().unwrap()
        )),
        "{err}"
    );
    // Unknown data is refused too; a new file needs a size; a directory is not a drive.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![0xA5u8; 4 << 20]).unwrap();
    let (code, _, err) = axon(&["drive", "format", junk.to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(err.contains("data of an unknown kind"), "{err}");
    let (code, _, err) = axon(&["drive", "format", dir.path().join("new").to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(
        err.contains("does not exist") && err.contains("--size"),
        "{err}"
    );
    let (code, _, err) = axon(&["drive", "format", dir.path().to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = axon(&["drive", "format", ps, "--force", "--chunk-size", "5000"]);
    assert_eq!(code, 3);
    assert!(err.contains("multiple of 4 KiB"), "{err}");
}

#[test]
fn a_damaged_superblock_copy_is_read_from_the_other_and_both_damaged_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d1");
    let ps = p.to_str().unwrap();
    let (code, _, err) = axon(&["drive", "format", ps, "--size", "64M", "--cluster", CLUSTER]);
    assert_eq!(code, 0, "{err}");
    let (_, good, _) = info(ps);
    poke(&p, 20, b"\xff\xff");
    let (code, v, _) = info(ps);
    assert_eq!(code, 1, "a warning");
    assert_eq!(v["drive"], good["drive"]);
    assert_eq!(
        v["warning"],
        "superblock copy A: checksum mismatch (damaged); using copy B"
    );
    poke(&p, 4096 + 20, b"\xff\xff");
    let (code, _, err) = axon(&["drive", "info", ps]);
    assert_eq!(code, 3);
    assert!(
        err.contains("not a readable axon drive (copy A: checksum mismatch (damaged); copy B: checksum mismatch (damaged))"),
        "{err}"
    );
}

#[test]
fn a_truncated_drive_is_named_with_its_missing_size() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d2");
    let ps = p.to_str().unwrap();
    axon(&["drive", "format", ps, "--size", "64M", "--cluster", CLUSTER]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let (code, _, err) = axon(&["drive", "info", ps]);
    assert_eq!(code, 3);
    assert!(
        err.contains("8388608 bytes but its superblock says") && err.contains("truncated"),
        "{err}"
    );
}

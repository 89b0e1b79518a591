//! The storage engine against fio on the same filesystem, in the same run:
//! - write: a 16+4 store on 20 file drives takes ≥ 2 GiB of objects (64 MiB each, 1 MiB
//!   chunks); fio writes the same bytes (the chunks' payloads: 20 files of stripes × 1 MiB)
//!   with O_DIRECT, 20 jobs, 1 MiB blocks, fsync at the end. Target: the engine's object
//!   rate ≥ 60 % × k/(k+m) of fio's rate;
//! - read, and degraded read with m = 4 drives missing, against fio reading the same files.
//!   Same target;
//! - the metadata commit: 4 KiB objects (one stripe each); the commit's share of a put and
//!   the stripes per second it allows.
//!
//! ```text
//! cargo bench --bench store
//! AXON_BENCH_DIR=/mnt/nvme/x AXON_BENCH_GIB=4 cargo bench --bench store
//! ```
//!
//! AXON_BENCH_DIR defaults to target/bench-store (the repository's filesystem); it is
//! emptied at the start and removed at the end.

use axon::dataplane::drive::{self, FormatOptions};
use axon::dataplane::ec::Scheme;
use axon::dataplane::store::Store;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::fio;

const K: usize = 16;
const M: usize = 4;
const CHUNK: u32 = 1 << 20;
const OBJECT: usize = 64 << 20;

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / (1 << 20) as f64
}

fn main() {
    let gib: u64 = std::env::var("AXON_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let base = std::env::var_os("AXON_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-store"));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let total = gib << 30;
    let stripes = total / (K as u64 * u64::from(CHUNK));
    let objects = total as usize / OBJECT;
    println!("machine: {}", common::machine());
    println!(
        "{gib} GiB of objects ({objects} × 64 MiB) = {stripes} stripes of {K}+{M}, 1 MiB chunks, on 20 file drives in {}",
        base.display()
    );

    // fio: the same payload bytes the engine writes, 20 files, one per job.
    let fio_dir = base.join("fio");
    std::fs::create_dir_all(&fio_dir).unwrap();
    let per_file = stripes << 20;
    let fio_w = fio(&fio_dir, "write", K + M, per_file);
    let fio_r = fio(&fio_dir, "read", K + M, per_file);
    std::fs::remove_dir_all(&fio_dir).unwrap();

    // The engine.
    let cluster = uuid::Uuid::new_v4();
    let sdir = base.join("store");
    let mut store = Store::create(&sdir, cluster, Scheme::new(K, M).unwrap(), CHUNK).unwrap();
    let mut drives = Vec::new();
    for i in 0..K + M {
        let p = base.join(format!("drive{i:02}"));
        let size = drive::SLOTS_OFFSET + (stripes + 600) * (drive::BLOCK + u64::from(CHUNK));
        drive::format(
            &p,
            &FormatOptions {
                size: Some(size),
                chunk_size: CHUNK,
                cluster,
                force: false,
            },
        )
        .unwrap();
        store.add_drive(&p, false).unwrap();
        drives.push(p);
    }
    let mut object: Vec<u8> = (0..OBJECT)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let t = Instant::now();
    let (mut w, mut s, mut c) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for o in 0..objects {
        object[..8].copy_from_slice(&(o as u64).to_le_bytes());
        let r = store.put(&format!("obj{o:04}"), &object).unwrap();
        (w, s, c) = (w + r.write, s + r.sync, c + r.commit);
    }
    let write = t.elapsed();
    let mut sink = std::io::sink();
    let t = Instant::now();
    for o in 0..objects {
        store.get_to(&format!("obj{o:04}"), &mut sink).unwrap();
    }
    let read = t.elapsed();
    // Degraded: m drives missing; every stripe rebuilds what it lost from parity.
    drop(store);
    for p in &drives[..M] {
        std::fs::rename(p, p.with_extension("aside")).unwrap();
    }
    let mut store = Store::open(&sdir).unwrap();
    let t = Instant::now();
    let mut rebuilt = 0;
    for o in 0..objects {
        rebuilt += store
            .get_to(&format!("obj{o:04}"), &mut sink)
            .unwrap()
            .chunks_rebuilt;
    }
    let degraded = t.elapsed();
    assert!(rebuilt > 0, "the degraded read rebuilt nothing");
    drop(store);
    for p in &drives[..M] {
        std::fs::rename(p.with_extension("aside"), p).unwrap();
    }

    // The metadata commit: small objects, one stripe each.
    let mut store = Store::open(&sdir).unwrap();
    let small = vec![7u8; 4096];
    let n = 500;
    let t = Instant::now();
    let mut commit = Duration::ZERO;
    for i in 0..n {
        commit += store.put(&format!("small{i}"), &small).unwrap().commit;
    }
    let small_all = t.elapsed();
    drop(store);
    let _ = std::fs::remove_dir_all(&base);

    let share = K as f64 / (K + M) as f64;
    let row = |what: &str, rate: f64, base: f64| {
        let ratio = rate / (base * share);
        println!(
            "{what:<24} {rate:>8.0} MiB/s   fio {base:>6.0} MiB/s   {ratio:.2} × fio×k/(k+m)   {}",
            if ratio >= 0.6 {
                "target ≥ 0.60 met"
            } else {
                "target ≥ 0.60 MISSED"
            }
        );
    };
    println!();
    row("write (16+4)", mib_s(total, write), fio_w);
    println!(
        "  of the write: chunks {:.0} %, fdatasync {:.0} %, index commit {:.0} %",
        100.0 * w.as_secs_f64() / write.as_secs_f64(),
        100.0 * s.as_secs_f64() / write.as_secs_f64(),
        100.0 * c.as_secs_f64() / write.as_secs_f64()
    );
    row("read", mib_s(total, read), fio_r);
    row("degraded read (4 lost)", mib_s(total, degraded), fio_r);
    println!(
        "metadata commit: {:.0} stripes/s ({:.2} ms each); a whole 4 KiB put {:.2} ms, the commit {:.0} % of it",
        n as f64 / commit.as_secs_f64(),
        commit.as_secs_f64() * 1e3 / n as f64,
        small_all.as_secs_f64() * 1e3 / n as f64,
        100.0 * commit.as_secs_f64() / small_all.as_secs_f64()
    );
}

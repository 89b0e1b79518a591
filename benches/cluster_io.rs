//! The distributed data plane against fio on the same filesystem, in the same run:
//! - a 4+2 cluster of agent processes on loopback (each a 1+0 store on one file drive,
//!   1 MiB chunks, TLS between agents and from the client), loaded with `axon io bench`:
//!   writes only, then reads only, 4 MiB objects, 8 in flight spread over the agents;
//!   then the same with `--direct` (the frontend in the bench's own process, sending
//!   each chunk to its member). Target: ≥ 60 % × k/(k+m) of fio's raw rate on the same
//!   filesystem, each way;
//! - rebuild: one agent killed (`kill -9`) past a 3 s grace period, its chunks rebuilt on
//!   the others at no rate limit; the rate at which the rebuild reads the surviving
//!   chunks against fio's raw read rate (target ≥ 50 %). Each chunk written is decoded
//!   from k chunks read, so on one shared filesystem the rate written can never pass
//!   1/k of fio's read (0.25 × for 4+2): the target can only be the read side. Both are
//!   printed;
//! - fio: one job per agent's drive, 1 MiB blocks, O_DIRECT, psync, fsync at the end.
//!
//! ```text
//! cargo bench --bench cluster_io
//! AXON_BENCH_DIR=/mnt/nvme/x AXON_BENCH_SECS=30 cargo bench --bench cluster_io
//! AXON_BENCH_CONCURRENCY=16 cargo bench --bench cluster_io   # objects in flight (8)
//! AXON_BENCH_ONLY=rebuild cargo bench --bench cluster_io      # write, then the rebuild
//! AXON_BENCH_KEEP=1 cargo bench --bench cluster_io            # keep the agents' logs
//! ```
//!
//! Seven agents, so the cluster can rebuild to full protection after losing one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::dataplane::{self, form, start_io, start_store};
use common::fio;
use common::process::{Agent, run};

const NODES: usize = 7;
const K: usize = 4;
const M: usize = 2;

/// A member with a 1+0 store of 1 MiB chunks on one 3 GiB file drive, rebuilding past a
/// 3 s grace at no rate limit.
fn start(name: &str, dir: &Path, ports: (u16, u16)) -> Agent {
    start_store(
        name,
        dir,
        ports,
        &[
            "--scheme",
            "1+0",
            "--chunk-size",
            "1M",
            "--drives",
            "1",
            "--drive-size",
            "3G",
        ],
        &[
            "--rebuild-grace",
            "3s",
            "--rebuild-rate",
            "0",
            "--scrub-every",
            "24h",
        ],
    )
}

fn status(inv: &Path) -> serde_json::Value {
    dataplane::status(inv).1
}

fn until(
    inv: &Path,
    what: &str,
    secs: u64,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    dataplane::until_for(inv, what, Duration::from_secs(secs), |_, v| ok(v))
}

fn bench(inv: &Path, mix: u8, secs: u64, keep: bool, direct: bool) -> serde_json::Value {
    let d = format!("{secs}s");
    let m = mix.to_string();
    let conc = std::env::var("AXON_BENCH_CONCURRENCY").unwrap_or_else(|_| "8".into());
    let mut args = vec![
        "io",
        "bench",
        "--inventory",
        inv.to_str().unwrap(),
        "--size",
        "4M",
        "--concurrency",
        &conc,
        "--duration",
        &d,
        "--mix",
        &m,
        "--json",
    ];
    if keep {
        args.push("--keep");
    }
    if direct {
        args.push("--direct");
    }
    let (code, out, err) = run(&args, Duration::from_secs(secs + 300));
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(out.trim()).expect("bench JSON")
}

/// (busy, total) jiffies of all CPUs, from /proc/stat.
fn cpu() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Share of all CPUs busy between two `cpu()` readings, in percent.
fn busy(a: (u64, u64), b: (u64, u64)) -> f64 {
    (b.0 - a.0) as f64 * 100.0 / (b.1 - a.1).max(1) as f64
}

fn main() {
    let secs: u64 = std::env::var("AXON_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let base = std::env::var_os("AXON_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-cluster"));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    println!("machine: {}", common::machine());
    println!(
        "{NODES} agents on loopback, {K}+{M}, 1 MiB chunks, one file drive each in {}; {secs} s per run",
        base.display()
    );

    let fio_dir = base.join("fio");
    std::fs::create_dir_all(&fio_dir).unwrap();
    let fio_w = fio(&fio_dir, "write", NODES, 512 << 20);
    let fio_r = fio(&fio_dir, "read", NODES, 512 << 20);
    std::fs::remove_dir_all(&fio_dir).unwrap();
    println!(
        "fio raw: write {fio_w:.0} MiB/s, read {fio_r:.0} MiB/s ({NODES} jobs, 1 MiB, O_DIRECT)"
    );

    let mut agents: Vec<Agent> = (0..NODES)
        .map(|i| start(&format!("b{}", i + 1), &base, (0, 0)))
        .collect();
    let (inv, _) = form(&base, &agents, "4+2", "1");
    start_io(&inv);
    // Let the members' pings weigh placement by free space.
    std::thread::sleep(Duration::from_secs(2));

    // Through the members' frontends (objects kept for the rebuild below), then with the
    // frontend in the bench's own process (`--direct`: one TLS hop per byte, not two).
    let share = K as f64 / (K + M) as f64;
    let only_rebuild = std::env::var("AXON_BENCH_ONLY").is_ok_and(|v| v == "rebuild");
    if only_rebuild {
        let w = bench(&inv, 100, secs, true, false);
        println!(
            "written for the rebuild: {:.0} MiB/s of objects for {secs} s",
            w["write"]["mib_per_sec"].as_f64().unwrap_or(0.0)
        );
    }
    for direct in [false, true] {
        if only_rebuild {
            break;
        }
        let c0 = cpu();
        let w = bench(&inv, 100, secs, !direct, direct);
        let c1 = cpu();
        let r = bench(&inv, 0, secs, !direct, direct);
        let c2 = cpu();
        let how = if direct {
            "--direct (frontend in the client)"
        } else {
            "through a member's frontend"
        };
        println!("{how}:");
        println!(
            "  CPU busy (all {} cores): {:.0} % while writing, {:.0} % while reading",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            busy(c0, c1),
            busy(c1, c2)
        );
        for (name, j, raw) in [("write", &w, fio_w), ("read", &r, fio_r)] {
            let mib = j[name]["mib_per_sec"].as_f64().unwrap();
            println!(
                "  axon io bench {name:<5}: {mib:.0} MiB/s of objects = {:.2} × fio raw {name}; target ≥ 0.60 × k/(k+m) = {:.2} × fio ({}); p50 {:.1} ms, p99 {:.1} ms",
                mib / raw,
                0.6 * share,
                if mib / raw >= 0.6 * share {
                    "met"
                } else {
                    "NOT met"
                },
                j[name]["latency_ms"]["p50"].as_f64().unwrap(),
                j[name]["latency_ms"]["p99"].as_f64().unwrap()
            );
        }
    }

    // Rebuild: kill the last agent; past the grace period the others rebuild its chunks.
    let before = status(&inv);
    let total: u64 = before["data"]["stripes_by_lost"]
        .as_array()
        .map_or(0, |a| a.iter().filter_map(|x| x.as_u64()).sum());
    agents[NODES - 1].kill();
    let t0 = Instant::now();
    until(&inv, "the rebuild to start", 60, |v| {
        v["data"]["rebuild"]["active"] == true
    });
    let started = t0.elapsed();
    let c3 = cpu();
    let done = until(&inv, "the rebuild to finish", 1800, |v| {
        v["data"]["protection"] == "OK" && v["data"]["rebuild"]["passes"].as_u64().unwrap_or(0) >= 1
    });
    let took = t0.elapsed() - started;
    println!("CPU busy while rebuilding: {:.0} %", busy(c3, cpu()));
    let bytes = done["data"]["rebuild"]["bytes"].as_u64().unwrap_or(0);
    let rate = bytes as f64 / took.as_secs_f64() / (1 << 20) as f64;
    let verdict = |x: f64| if x >= 0.5 { "met" } else { "NOT met" };
    println!(
        "rebuild (by status polls, 2 s apart): {} of {total} stripes, {:.0} MiB in {:.1} s = {rate:.0} MiB/s written = {:.2} × fio raw read (at most 1/k = {:.2} ×); reading k = {K} chunks per chunk written: {:.0} MiB/s read = {:.2} × fio raw read; target ≥ 0.50 ({})",
        done["data"]["rebuild"]["stripes_done"],
        bytes as f64 / (1 << 20) as f64,
        took.as_secs_f64(),
        rate / fio_r,
        1.0 / K as f64,
        rate * K as f64,
        rate * K as f64 / fio_r,
        verdict(rate * K as f64 / fio_r)
    );
    // The members' own account of their passes: the status polls above add up to 2 s of
    // counting latency to a pass of a few seconds. From the first pass's start to the last
    // one's end, in the agents' log timestamps.
    let stamp = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let (mut first, mut last) = (None, None);
    for i in 0..NODES - 1 {
        let log = std::fs::read_to_string(base.join(format!("b{}", i + 1)).join("agent.log"))
            .unwrap_or_default();
        for l in log.lines() {
            if l.contains("rebuild: members") {
                first = first.min(stamp(l)).or(stamp(l));
            }
            if l.contains("rebuild: pass done") {
                last = last.max(stamp(l));
                println!("  b{}: {}", i + 1, l.split("rebuild: ").nth(1).unwrap_or(l));
            }
        }
    }
    if let (Some(a), Some(b)) = (first, last) {
        let secs = (b - a).as_seconds_f64().max(1e-3);
        let rate = bytes as f64 / secs / (1 << 20) as f64;
        println!(
            "rebuild passes (the members' logs): {:.0} MiB written in {secs:.1} s (first start to last end) = {rate:.0} MiB/s written = {:.2} × fio raw read; reading k = {K} chunks per chunk written: {:.0} MiB/s read = {:.2} × fio raw read; target ≥ 0.50 ({})",
            bytes as f64 / (1 << 20) as f64,
            rate / fio_r,
            rate * K as f64,
            rate * K as f64 / fio_r,
            verdict(rate * K as f64 / fio_r)
        );
    }
    drop(agents);
    if std::env::var_os("AXON_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
}

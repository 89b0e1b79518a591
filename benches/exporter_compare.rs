//! Scrape latency, memory and CPU of `axon exporter` against Debian's
//! `prometheus-node-exporter`, both on this host's real root, measured in the same run:
//!
//!     cargo bench --bench exporter_compare     # AXON_CPU_SECS (default 120)
//!
//! node_exporter is found at /usr/bin/prometheus-node-exporter (Debian's package:
//! `apt-get install prometheus-node-exporter`) or /usr/bin/node_exporter, or wherever
//! NODE_EXPORTER points. Each exporter is started with its defaults, warmed up, then:
//!
//! 1. Latency: scraped SCRAPES times in alternation (one request at a time, 20 ms apart)
//!    over plain HTTP/1.1. Reports p50/p90/p99, the ratio axon/node_exporter, and RSS
//!    (VmRSS and peak VmHWM).
//! 2. CPU in total: both left idle but scraped as Prometheus would, every 15 s (each with
//!    `X-Prometheus-Scrape-Timeout-Seconds: 10`), for AXON_CPU_SECS seconds (default 180),
//!    scaled to a minute, measured two ways: utime + stime from /proc/PID/stat over the
//!    window (threads that exited included, but in 10 ms clock ticks: ±10 ms over the
//!    window, ±3.3 ms a minute at 180 s), and the nanosecond run times of the process's
//!    threads (/proc/PID/task/*/schedstat) summed interval by interval, each taken right
//!    after a scrape (a thread's run time in an interval in which it exits is missed;
//!    tokio's idle threads exit 10 s after their last work, having done none since). The
//!    latencies of these 15 s-apart scrapes are reported too.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCRAPES: usize = 300;
const AXON_ADDR: &str = "127.0.0.1:19090";
const NODE_ADDR: &str = "127.0.0.1:19100";

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(addr: &str) -> Result<(Duration, usize), String> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(256 * 1024);
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "{addr}: {}",
            String::from_utf8_lossy(&buf[..buf.len().min(80)])
        ));
    }
    Ok((start.elapsed(), buf.len()))
}

fn wait_ready(addr: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if scrape(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr} never answered");
}

/// Run time in ns of each live thread of a process.
fn thread_ns(pid: u32) -> std::collections::HashMap<String, u64> {
    let mut out = std::collections::HashMap::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let tid = e.file_name().to_string_lossy().into_owned();
            if let Some(ns) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
            {
                out.insert(tid, ns);
            }
        }
    }
    out
}

/// Run time added since `before` by the threads alive now.
fn ns_since(
    before: &std::collections::HashMap<String, u64>,
    now: &std::collections::HashMap<String, u64>,
) -> u64 {
    now.iter()
        .map(|(t, ns)| ns.saturating_sub(before.get(t).copied().unwrap_or(0)))
        .sum()
}

/// utime + stime of a process in clock ticks (threads that exited included).
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; rest[0] is field 3.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful. Only run
    // for real when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("exporter_compare: run with `cargo bench --bench exporter_compare`");
        return;
    }
    let from_env = std::env::var("NODE_EXPORTER").ok();
    let node_exporter = from_env
        .iter()
        .map(String::as_str)
        .chain(["/usr/bin/prometheus-node-exporter", "/usr/bin/node_exporter"])
        .find(|p| std::path::Path::new(p).exists())
        .expect("install Debian's prometheus-node-exporter (apt-get install prometheus-node-exporter) or set NODE_EXPORTER")
        .to_string();
    let cpu_secs: u64 = std::env::var("AXON_CPU_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(180);
    let axon = Proc(
        Command::new(env!("CARGO_BIN_EXE_axon"))
            .args(["exporter", "--metrics-listen", AXON_ADDR])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start axon exporter"),
    );
    let node = Proc(
        Command::new(&node_exporter)
            .args([&format!("--web.listen-address={NODE_ADDR}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    wait_ready(AXON_ADDR);
    wait_ready(NODE_ADDR);
    // Let axon's slower collectors (checks, NVMe) run once so the payload is complete.
    std::thread::sleep(Duration::from_secs(12));
    for _ in 0..20 {
        let _ = scrape(AXON_ADDR);
        let _ = scrape(NODE_ADDR);
    }
    let (mut a, mut n) = (Vec::new(), Vec::new());
    let (mut a_bytes, mut n_bytes) = (0, 0);
    for _ in 0..SCRAPES {
        let (d, b) = scrape(AXON_ADDR).unwrap();
        a.push(d.as_secs_f64() * 1000.0);
        a_bytes = b;
        std::thread::sleep(Duration::from_millis(10));
        let (d, b) = scrape(NODE_ADDR).unwrap();
        n.push(d.as_secs_f64() * 1000.0);
        n_bytes = b;
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "machine: {}; {SCRAPES} scrapes each, alternating",
        common::machine()
    );
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "exporter", "p50 ms", "p90 ms", "p99 ms", "body KiB", "RSS MiB", "peak MiB"
    );
    let row = |name: &str, v: &mut Vec<f64>, bytes: usize, pid: u32| {
        let (p50, p90, p99) = (pct(v, 0.5), pct(v, 0.9), pct(v, 0.99));
        println!(
            "{name:<16} {p50:>9.3} {p90:>9.3} {p99:>9.3} {:>10.1} {:>10.1} {:>10.1}",
            bytes as f64 / 1024.0,
            common::status_kb(pid, "VmRSS:") as f64 / 1024.0,
            common::status_kb(pid, "VmHWM:") as f64 / 1024.0
        );
        p50
    };
    let pa = row("axon exporter", &mut a, a_bytes, axon.0.id());
    let pn = row("node_exporter", &mut n, n_bytes, node.0.id());
    println!(
        "p50 ratio axon / node_exporter: {:.3} (target <= 0.333)",
        pa / pn
    );
    println!(
        "axon RSS {:.1} MiB (target < 20 MB)",
        common::status_kb(axon.0.id(), "VmRSS:") as f64 / 1024.0
    );

    // CPU in total, idle but scraped every 15 s. Two scrapes first, so each exporter has
    // seen the interval (axon plans its collection ahead of the next scrape).
    let interval = Duration::from_secs(15);
    println!(
        "CPU over {cpu_secs} s, both idle but scraped every {} s (node_exporter {node_exporter}):",
        interval.as_secs()
    );
    for _ in 0..2 {
        let _ = scrape(AXON_ADDR);
        let _ = scrape(NODE_ADDR);
        std::thread::sleep(interval);
    }
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (a0, n0) = (cpu_ticks(axon.0.id()), cpu_ticks(node.0.id()));
    let (mut at, mut nt) = (thread_ns(axon.0.id()), thread_ns(node.0.id()));
    let (mut ans, mut nns) = (0u64, 0u64);
    let w0 = Instant::now();
    let (mut a15, mut n15) = (Vec::new(), Vec::new());
    let mut next = w0;
    loop {
        next += interval;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let (d, _) = scrape(AXON_ADDR).unwrap();
        a15.push(d.as_secs_f64() * 1000.0);
        let (d, _) = scrape(NODE_ADDR).unwrap();
        n15.push(d.as_secs_f64() * 1000.0);
        let (a, n) = (thread_ns(axon.0.id()), thread_ns(node.0.id()));
        ans += ns_since(&at, &a);
        nns += ns_since(&nt, &n);
        (at, nt) = (a, n);
        if w0.elapsed() >= Duration::from_secs(cpu_secs) {
            break;
        }
    }
    let wall = w0.elapsed().as_secs_f64();
    let (a1, n1) = (cpu_ticks(axon.0.id()), cpu_ticks(node.0.id()));
    let per_min = |t0: u64, t1: u64| (t1 - t0) as f64 / hz * 1000.0 / wall * 60.0;
    let ns_per_min = |ns: u64| ns as f64 / 1e6 / wall * 60.0;
    let (ac, nc) = (per_min(a0, a1), per_min(n0, n1));
    let (acn, ncn) = (ns_per_min(ans), ns_per_min(nns));
    println!(
        "{:<16} {:>16} {:>18} {:>8} {:>14}",
        "exporter", "CPU ms/min ticks", "CPU ms/min threads", "scrapes", "p50 scrape ms"
    );
    for (name, t, ns, v) in [
        ("axon exporter", ac, acn, &mut a15),
        ("node_exporter", nc, ncn, &mut n15),
    ] {
        println!(
            "{name:<16} {t:>16.1} {ns:>18.1} {:>8} {:>14.3}",
            v.len(),
            pct(v, 0.5)
        );
    }
    println!(
        "CPU ratio axon / node_exporter: {:.2} by ticks (±{:.1} ms/min each), {:.2} by thread run times (target <= 1)",
        ac / nc.max(f64::MIN_POSITIVE),
        1000.0 / hz / wall * 60.0,
        acn / ncn.max(f64::MIN_POSITIVE)
    );
}

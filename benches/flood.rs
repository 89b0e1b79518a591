//! One agent under a flood, in one go (issue 7, "Done means"):
//!
//!     cargo bench --bench flood
//!
//! Starts a real `axon agent` process (TLS by default, default limits) on loopback, then:
//!
//! 1. baseline (10 s): a good client on its own address (127.0.0.2) calls GetSnapshot
//!    over TLS every 50 ms and scrapes /metrics every second;
//! 2. flood (20 s), while the good client goes on:
//!    - 5,000 idle TCP connections to gRPC from 50 addresses (127.0.1.1-50), each one
//!      reconnecting a second after the agent closes it;
//!    - 2,000 Watch streams with the reader token over 40 TLS connections;
//!    - 1,000 slowloris /metrics clients from 127.0.0.1, one header byte every 2 s,
//!      reconnecting when cut;
//!    - hostlist bombs as ProbePorts.peers with the admin token, over and over;
//! 3. after (30 s settle + 10 s): the flood is gone; the good client measures again.
//!
//! Reports the good client's GetSnapshot p50/p99 and scrape latency per phase, the
//! agent's RSS and CPU before, during and after, what the agent refused (from its own
//! counters), and whether the agent survived. Targets: p99 < 50 ms during the flood, RSS
//! < 150 MB and back within 10 % of the baseline after, no crash.

#[path = "../tests/common/mod.rs"]
mod common;

use axon::fleet::tls::{Security, Trust};
use axon::wire::pb;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const GRPC: &str = "127.0.0.1:24400";
const METRICS: &str = "127.0.0.1:24490";
const IDLE: usize = 5_000;
const WATCH: usize = 2_000;
const WATCH_CONNS: usize = 40;
const SLOWLORIS: usize = 1_000;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
}

/// (RSS MB, CPU seconds) of a process.
fn usage(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((rss_kb * 1024.0 / 1e6, ticks / hz))
}

async fn connect_from(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(format!("{src}:0").parse().unwrap())?;
    s.connect(dst).await
}

#[derive(Clone)]
struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

type Client = pb::node_service_client::NodeServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

/// A TLS gRPC client whose connection comes from `src`.
async fn client_from(src: &'static str, security: &Security, token: &str) -> Client {
    let Security::Tls(tls) = security.clone() else {
        panic!("TLS")
    };
    let dst: SocketAddr = GRPC.parse().unwrap();
    let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:24400")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let tls = tls.clone();
            async move {
                let tcp = connect_from(src, dst).await?;
                tcp.set_nodelay(true)?;
                let s = tokio_rustls::TlsConnector::from(tls.config.clone())
                    .connect(tls.server_name.clone(), tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .expect("good client connects");
    let icpt = Bearer(format!("Bearer {token}").parse().unwrap());
    pb::node_service_client::NodeServiceClient::with_interceptor(channel, icpt)
        .max_decoding_message_size(64 << 20)
}

async fn scrape_from(src: &str) -> Result<(Duration, String), String> {
    let start = Instant::now();
    let mut s = connect_from(src, METRICS.parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .map_err(|_| "scrape timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if !out.starts_with("HTTP/1.1 200") {
        return Err(out.chars().take(60).collect());
    }
    Ok((start.elapsed(), out))
}

fn sample(scrape: &str, prefix: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Phase {
    name: &'static str,
    snap_ms: Vec<f64>,
    snap_errors: usize,
    scrape_ms: Vec<f64>,
    scrape_errors: Vec<String>,
    rss_start: f64,
    rss_end: f64,
    rss_max: f64,
    cpu_s: f64,
    secs: f64,
}

/// The largest mappings by RSS (KB) — with AXON_FLOOD_SMAPS=1, to see where memory sits.
fn smaps(pid: u32, label: &str) {
    if std::env::var_os("AXON_FLOOD_SMAPS").is_none() {
        return;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut cur = String::new();
    let mut rows: Vec<(u64, String)> = Vec::new();
    for l in text.lines() {
        if l.split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            cur = l.to_string();
        } else if let Some(v) = l.strip_prefix("Rss:") {
            let kb: u64 = v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0);
            rows.push((kb, cur.clone()));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    eprintln!("smaps {label}:");
    for (kb, m) in rows.iter().take(8) {
        eprintln!("  {kb:>7} kB  {m}");
    }
}

/// The good client measures for `dur`.
async fn measure(name: &'static str, pid: u32, good: &mut Client, dur: Duration) -> Phase {
    let (rss_start, cpu0) = usage(pid).expect("agent alive");
    let mut p = Phase {
        name,
        snap_ms: vec![],
        snap_errors: 0,
        scrape_ms: vec![],
        scrape_errors: vec![],
        rss_start,
        rss_end: rss_start,
        rss_max: rss_start,
        cpu_s: 0.0,
        secs: dur.as_secs_f64(),
    };
    let start = Instant::now();
    let mut next_scrape = start;
    while start.elapsed() < dur {
        let t = Instant::now();
        match tokio::time::timeout(
            Duration::from_secs(5),
            good.get_snapshot(pb::GetSnapshotRequest::default()),
        )
        .await
        {
            Ok(Ok(_)) => p.snap_ms.push(t.elapsed().as_secs_f64() * 1e3),
            _ => p.snap_errors += 1,
        }
        if Instant::now() >= next_scrape {
            next_scrape += Duration::from_secs(1);
            match scrape_from("127.0.0.2").await {
                Ok((d, _)) => p.scrape_ms.push(d.as_secs_f64() * 1e3),
                Err(e) => p.scrape_errors.push(e),
            }
            if let Some((rss, _)) = usage(pid) {
                p.rss_max = p.rss_max.max(rss);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss_end, cpu1) = usage(pid).expect("agent alive");
    p.rss_end = rss_end;
    p.rss_max = p.rss_max.max(rss_end);
    p.cpu_s = cpu1 - cpu0;
    p
}

/// The bomb payloads sent as ProbePorts.peers.
fn bombs() -> Vec<(&'static str, String)> {
    let wide = format!("a[{}]", vec!["0-99999"; 300].join(","));
    let long = format!("a[{}]", vec!["0-99999"; 1000].join(","));
    let many = vec!["a[0-99999]"; 1000].join(",");
    vec![
        ("a[0-99999 ×300] (2.4 KB)", wide),
        ("a[0-99999 ×1000] (8 KB)", long),
        ("1,000 × a[0-99999]", many),
    ]
}

fn main() {
    raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let agent = Proc(
        Command::new(env!("CARGO_BIN_EXE_axon"))
            .args(["agent", "--host-root"])
            .arg(common::fixture("amd-epyc-4numa"))
            .args([
                "--listen",
                GRPC,
                "--metrics-listen",
                METRICS,
                "--peers",
                "127.0.0.1",
            ])
            .arg("--state-dir")
            .arg(&state)
            .arg("--control-socket")
            .arg(dir.path().join("control.sock"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent starts"),
    );
    let pid = agent.0.id();
    let start = Instant::now();
    while scrape_from("127.0.0.2")
        .await
        .map_or(true, |(_, s)| !s.contains("axon_check_status"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "agent never ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let read = |f: &str| {
        std::fs::read_to_string(state.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    let fp = axon::wire::tls::Fingerprint::parse(&read("tls/cert.fingerprint")).unwrap();
    let security = Trust::default()
        .for_agent(GRPC, Some((fp, "bench".into())), None)
        .unwrap();
    let (reader, admin) = (read("reader.token"), read("admin.token"));
    let mut good = client_from("127.0.0.2", &security, &reader).await;
    // Warm up: first calls, allocator settles.
    let _ = measure("warm-up", pid, &mut good, Duration::from_secs(3)).await;
    let base = measure("baseline", pid, &mut good, Duration::from_secs(10)).await;
    smaps(pid, "baseline");

    // --- the flood ---
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let watch_ok = Arc::new(AtomicU64::new(0));
    let watch_refused = Arc::new(AtomicU64::new(0));
    let mut watch_clients = Vec::new();
    // First, while the agent still takes connections (the idle flood fills its cap).
    let bomb_client = axon::fleet::client::connect(
        &axon::fleet::client::Target::Tcp {
            addr: GRPC.into(),
            token: Some(admin.clone()),
            security: security.clone(),
        },
        Duration::from_secs(5),
    )
    .await
    .expect("admin client connects");
    for _ in 0..WATCH_CONNS {
        watch_clients.push(client_from("127.0.0.1", &security, &reader).await);
    }
    for (i, c) in watch_clients.iter().enumerate() {
        for _ in 0..WATCH / WATCH_CONNS {
            let mut c = c.clone();
            let (ok, refused, stop) = (watch_ok.clone(), watch_refused.clone(), stop.clone());
            let _ = i;
            tasks.push(tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    match c
                        .watch(pb::WatchRequest {
                            sections: vec![],
                            min_interval_ms: 0,
                        })
                        .await
                    {
                        Ok(r) => {
                            ok.fetch_add(1, Relaxed);
                            let mut s = r.into_inner();
                            // Read slowly: one message a second.
                            while !stop.load(Relaxed) {
                                match tokio::time::timeout(Duration::from_secs(1), s.message())
                                    .await
                                {
                                    Ok(Ok(Some(_))) | Err(_) => {
                                        tokio::time::sleep(Duration::from_secs(1)).await
                                    }
                                    _ => break,
                                }
                            }
                        }
                        Err(_) => {
                            refused.fetch_add(1, Relaxed);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            }));
        }
    }
    let idle_connected = Arc::new(AtomicU64::new(0));
    for i in 0..IDLE {
        let (stop, n) = (stop.clone(), idle_connected.clone());
        let src: &'static str = Box::leak(format!("127.0.1.{}", 1 + i % 50).into_boxed_str());
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while !stop.load(Relaxed) {
                if let Ok(mut s) = connect_from(src, GRPC.parse().unwrap()).await {
                    n.fetch_add(1, Relaxed);
                    // Hold it, sending nothing, until the agent closes it.
                    loop {
                        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf))
                            .await
                        {
                            Ok(Ok(0)) | Ok(Err(_)) => break,
                            _ if stop.load(Relaxed) => return,
                            _ => {}
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    let loris_cut = Arc::new(AtomicU64::new(0));
    for _ in 0..SLOWLORIS {
        let (stop, cut) = (stop.clone(), loris_cut.clone());
        tasks.push(tokio::spawn(async move {
            let head =
                b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-a: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
            while !stop.load(Relaxed) {
                let Ok(mut s) = connect_from("127.0.0.1", METRICS.parse().unwrap()).await else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                for b in head.iter().cycle() {
                    if stop.load(Relaxed) || s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    let mut buf = [0u8; 256];
                    match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) | Ok(Ok(_)) => {
                            cut.fetch_add(1, Relaxed);
                            break;
                        }
                        Err(_) => {}
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    let bomb_answers = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let (stop, answers) = (stop.clone(), bomb_answers.clone());
        let mut c = bomb_client;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Relaxed) {
                for (name, peers) in bombs() {
                    let r = tokio::time::timeout(
                        Duration::from_secs(10),
                        c.control.probe_ports(pb::ProbePortsRequest {
                            peers,
                            groups: vec!["ssh".into()],
                            ports: vec![],
                            timeout_ms: 100,
                            concurrency: 64,
                        }),
                    )
                    .await;
                    let text = match r {
                        Err(_) => "no answer in 10 s".to_string(),
                        Ok(Ok(_)) => "accepted (!)".to_string(),
                        Ok(Err(s)) => format!("{:?}: {}", s.code(), s.message()),
                    };
                    let mut a = answers.lock().unwrap();
                    if a.len() < 3 {
                        a.push(format!("{name}: {text}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = measure("flood", pid, &mut good, Duration::from_secs(20)).await;
    let (_, counters) = scrape_from("127.0.0.2").await.unwrap_or_default();
    stop.store(true, Relaxed);
    for t in &tasks {
        t.abort();
    }
    drop(tasks);
    drop(watch_clients);
    for i in 1..=6 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        eprintln!(
            "settle +{}s: RSS {:.1} MB",
            i * 10,
            usage(pid).map_or(0.0, |u| u.0)
        );
    }
    let after = measure("after", pid, &mut good, Duration::from_secs(10)).await;
    smaps(pid, "after");
    let alive = usage(pid).is_some();

    println!("flood bench: one axon agent (TLS, default limits) on loopback");
    println!("machine: {}", common::machine());
    println!(
        "flood: {IDLE} idle TCP connections from 50 addresses (reconnecting), {WATCH} Watch streams over {WATCH_CONNS} TLS connections (reader token), {SLOWLORIS} slowloris /metrics clients, hostlist bombs over ProbePorts"
    );
    println!(
        "\n{:<9} {:>9} {:>9} {:>7} {:>11} {:>8} {:>8} {:>8} {:>9}",
        "phase",
        "snap p50",
        "snap p99",
        "errors",
        "scrape p50",
        "scr err",
        "RSS MB",
        "max MB",
        "CPU %"
    );
    for p in [&base, &during, &after] {
        println!(
            "{:<9} {:>7.2}ms {:>7.2}ms {:>7} {:>9.2}ms {:>8} {:>8.1} {:>8.1} {:>8.1}%",
            p.name,
            pct(&p.snap_ms, 0.5),
            pct(&p.snap_ms, 0.99),
            p.snap_errors,
            pct(&p.scrape_ms, 0.5),
            p.scrape_errors.len(),
            p.rss_end,
            p.rss_max,
            100.0 * p.cpu_s / p.secs
        );
    }
    println!("\nwhat the agent refused during the flood (its own counters):");
    for (what, prefix) in [
        (
            "gRPC connections open",
            "axon_grpc_connections{listener=\"grpc_tcp\"}",
        ),
        ("/metrics connections open", "axon_metrics_connections"),
        (
            "closed over the peer cap",
            "axon_connections_rejected_total{listener=\"grpc_tcp\",reason=\"peer_limit\"",
        ),
        (
            "closed over the total cap",
            "axon_connections_rejected_total{listener=\"grpc_tcp\",reason=\"connection_limit\"",
        ),
        (
            "TLS handshake timeouts",
            "axon_connections_rejected_total{listener=\"grpc_tcp\",reason=\"handshake_timeout\"",
        ),
        (
            "/metrics closed over caps",
            "axon_connections_rejected_total{listener=\"metrics\",reason=\"peer_limit\"",
        ),
        (
            "/metrics header timeouts",
            "axon_connections_rejected_total{listener=\"metrics\",reason=\"handshake_timeout\"",
        ),
        ("Watch streams open", "axon_grpc_watch_streams"),
        ("Watch calls refused", "axon_grpc_watch_rejected_total"),
        ("accept errors", "axon_accept_errors_total"),
    ] {
        println!("  {what:<28} {:>10.0}", sample(&counters, prefix));
    }
    println!(
        "  (flood side: {} idle connects, {} Watch opened / {} refused, {} slowloris cuts)",
        idle_connected.load(Relaxed),
        watch_ok.load(Relaxed),
        watch_refused.load(Relaxed),
        loris_cut.load(Relaxed)
    );
    for a in bomb_answers.lock().unwrap().iter() {
        println!("  bomb {a}");
    }
    for p in [&base, &during, &after] {
        if let Some(e) = p.scrape_errors.first() {
            println!("  {} scrape error: {e}", p.name);
        }
    }
    let p99 = pct(&during.snap_ms, 0.99);
    let back = (after.rss_end - base.rss_end) / base.rss_end;
    println!(
        "RSS at the start of each phase: baseline {:.1} MB, flood {:.1} MB, after {:.1} MB",
        base.rss_start, during.rss_start, after.rss_start
    );
    println!("\ntargets:");
    println!(
        "  good client p99 during the flood < 50 ms: {p99:.2} ms {}",
        if p99 < 50.0 && during.snap_errors == 0 {
            "MET"
        } else {
            "MISSED"
        }
    );
    println!(
        "  RSS < 150 MB throughout: max {:.1} MB {}",
        during.rss_max.max(after.rss_max),
        if during.rss_max.max(after.rss_max) < 150.0 {
            "MET"
        } else {
            "MISSED"
        }
    );
    println!(
        "  RSS after within 10 % of baseline: {:.1} → {:.1} MB ({:+.1} %) {}",
        base.rss_end,
        after.rss_end,
        back * 100.0,
        if back.abs() <= 0.10 { "MET" } else { "MISSED" }
    );
    println!(
        "  no crash: {}",
        if alive { "MET" } else { "MISSED (agent died)" }
    );
}

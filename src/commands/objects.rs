//! `axon io put|get|rm|ls --inventory F` (or `--hosts H`): objects in the data-plane
//! cluster, through the first of its agents that answers (its frontend splits, places,
//! reads and rebuilds; `dataplane::cluster::frontend`).

use super::io::bar;
use crate::cli::{FleetArgs, IoGetArgs, IoKeyArgs, IoLsArgs, IoPutArgs};
use crate::fleet::cluster::{ClusterAgent, ClusterCallError, Stored};
use crate::fleet::direct::Direct;
use anyhow::Result;
use humansize::{BINARY, format_size};
use serde_json::json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Exit codes of the cluster IO verbs.
pub const EXIT_NOT_FOUND: i32 = 1;
pub const EXIT_FAILED: i32 = 2;

/// The first agent of the inventory that answers as a cluster member.
pub async fn frontend(fleet: &FleetArgs) -> Result<ClusterAgent> {
    let inv = super::inventory(fleet)?;
    let mut why = Vec::new();
    for spec in &inv.nodes {
        let mut c = match super::cluster::connect(&inv, spec).await {
            Ok(c) => c,
            Err(e) => {
                why.push(e.to_string());
                continue;
            }
        };
        match tokio::time::timeout(Duration::from_secs(5), c.get()).await {
            Ok(Ok(info)) if info.cluster.is_some() => return Ok(c),
            Ok(Ok(_)) => why.push(format!("{}: not a cluster member", spec.name)),
            Ok(Err(e)) => why.push(e.to_string()),
            Err(_) => why.push(format!("{}: no answer in 5 s", spec.name)),
        }
    }
    anyhow::bail!(
        "no agent answered as a cluster member (of those --inventory or --hosts names):\n  {}",
        why.join("\n  ")
    )
}

/// A frontend in this process over every agent of the inventory that answers
/// (`--direct`); members it cannot reach are named on stderr. The inner error is the
/// cluster's refusal (exit 2), the outer one a bad inventory.
pub async fn direct(fleet: &FleetArgs) -> Result<Result<Direct, ClusterCallError>> {
    let agents = reachable(&super::inventory(fleet)?).await;
    let d = match crate::fleet::direct::connect(agents).await {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    if !d.unreachable.is_empty() {
        eprintln!(
            "axon io: members not reached, read around and not written to: {}",
            d.unreachable.join(", ")
        );
    }
    for w in &d.left_out {
        eprintln!("axon io: left out {w}");
    }
    Ok(Ok(d))
}

/// Every agent of the inventory that accepts a connection, all dialled at once (each
/// within the connect timeout: a dead node costs 5 s, not 5 s per node).
async fn reachable(inv: &crate::fleet::inventory::Inventory) -> Vec<ClusterAgent> {
    let calls = inv
        .nodes
        .iter()
        .map(|spec| super::cluster::connect(inv, spec));
    futures::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(|c| c.ok())
        .collect()
}

/// Where the frontend runs: on a member (`ClusterAgent`), or here (`--direct`).
enum Via {
    Agent(Box<ClusterAgent>),
    Direct(std::sync::Arc<Direct>),
}

impl Via {
    async fn open(fleet: &FleetArgs, direct: bool) -> Result<Result<Via, ClusterCallError>> {
        Ok(if direct {
            self::direct(fleet)
                .await?
                .map(|d| Via::Direct(std::sync::Arc::new(d)))
        } else {
            Ok(Via::Agent(Box::new(frontend(fleet).await?)))
        })
    }

    fn name(&self) -> &str {
        match self {
            Via::Agent(a) => &a.node,
            Via::Direct(_) => crate::fleet::direct::DIRECT,
        }
    }

    /// Reads `key` to the end, counting its bytes (the bench).
    async fn read_all(&mut self, key: &str) -> Result<u64, String> {
        match self {
            Via::Agent(agent) => {
                let mut s = agent.get_object(key).await.map_err(|e| e.to_string())?;
                let mut n = 0u64;
                loop {
                    match s.message().await {
                        Ok(Some(m)) => n += m.data.len() as u64,
                        Ok(None) => return Ok(n),
                        Err(st) => return Err(agent.err(st).to_string()),
                    }
                }
            }
            Via::Direct(d) => {
                let mut n = 0u64;
                d.get_object(key, |_, p| {
                    n += p.len() as u64;
                    Ok(())
                })
                .await
                .map_err(|e| e.to_string())?;
                Ok(n)
            }
        }
    }

    async fn put_object(
        &mut self,
        key: &str,
        body: impl futures::Stream<Item = bytes::Bytes> + Send + 'static,
    ) -> Result<Stored, ClusterCallError> {
        match self {
            Via::Agent(a) => a.put_object(key, body).await,
            Via::Direct(d) => d.put_object(key, body).await,
        }
    }
}

/// Prints a failed call and returns its exit code.
fn failed(verb: &str, e: ClusterCallError) -> i32 {
    eprintln!("axon io {verb}: {e}");
    match e {
        ClusterCallError::NotFound { .. } => EXIT_NOT_FOUND,
        _ => EXIT_FAILED,
    }
}

pub async fn put(a: IoPutArgs, fleet: FleetArgs) -> Result<i32> {
    let mut via = match Via::open(&fleet, a.direct.direct).await? {
        Ok(v) => v,
        Err(e) => return Ok(failed("put", e)),
    };
    let (mut src, len): (Box<dyn Read + Send>, Option<u64>) =
        match a.file.as_deref().filter(|p| p.as_os_str() != "-") {
            Some(p) => {
                let f = super::io::open_input(p)?;
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(f), len)
            }
            None => (Box::new(std::io::stdin()), None),
        };
    let b = bar(len, "put");
    // The file is read on a thread of its own, 1 MiB at a time, into a small channel: the
    // agent's pace holds the reading back.
    // Ok(Some): the input's bytes; Ok(None): its end; Err: it failed to read (the
    // reader's own result says why).
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Option<bytes::Bytes>, ()>>(4);
    let mut reader = {
        let b = b.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut total = 0u64;
            loop {
                let mut buf = vec![0u8; 1 << 20];
                let mut got = 0;
                while got < buf.len() {
                    match src.read(&mut buf[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.blocking_send(Err(()));
                            return Err(e);
                        }
                    }
                }
                if got == 0 {
                    // Said, not implied by the channel closing: the object is whole.
                    let _ = tx.blocking_send(Ok(None));
                    return Ok(total);
                }
                buf.truncate(got);
                total += got as u64;
                b.inc(got as u64);
                if tx.blocking_send(Ok(Some(bytes::Bytes::from(buf)))).is_err() {
                    return Ok(total);
                }
            }
        })
    };
    let began = Instant::now();
    // Ends only at the input's said end. A failed input, or a reader gone without saying
    // (a panic), leaves the body open: the put is dropped below, unfinished.
    let body = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Some(Ok(Some(b))) => Some((b, rx)),
            Some(Ok(None)) => None,
            Some(Err(())) | None => std::future::pending().await,
        }
    });
    // A read error must not pass for the end of the file: the body ends only when the
    // input did, and when reading fails the put is dropped unfinished, which aborts the
    // upload (the member, or this process's frontend, then stores nothing and any older
    // object of the key stays as it was).
    let r = {
        let put = via.put_object(&a.key, body);
        tokio::pin!(put);
        let mut read = None;
        loop {
            tokio::select! {
                r = &mut put => break r,
                done = &mut reader, if read.is_none() => match done {
                    Ok(Ok(n)) => read = Some(n),
                    Ok(Err(e)) => {
                        b.finish_and_clear();
                        eprintln!(
                            "axon io put: reading the input failed ({e}); nothing was stored{}",
                            if a.file.is_some() { "" } else { " (standard input)" }
                        );
                        return Ok(EXIT_FAILED);
                    }
                    Err(e) => anyhow::bail!("the reader task failed: {e}"),
                },
            }
        }
    };
    b.finish_and_clear();
    let stored = match r {
        Ok(s) => s,
        Err(e) => return Ok(failed("put", e)),
    };
    let secs = began.elapsed().as_secs_f64();
    if a.store.json {
        println!(
            "{}",
            json!({"key": stored.key, "bytes": stored.size, "stripes": stored.stripes,
                   "generation": stored.generation, "nodes": stored.nodes, "seconds": secs,
                   "via": via.name()})
        );
    } else {
        eprintln!(
            "stored {} ({}) in {} stripes on {} nodes via {}, {:.2} s ({}/s)",
            stored.key,
            format_size(stored.size, BINARY),
            stored.stripes,
            stored.nodes,
            via.name(),
            secs,
            format_size((stored.size as f64 / secs.max(1e-9)) as u64, BINARY)
        );
    }
    Ok(0)
}

pub async fn get(a: IoGetArgs, fleet: FleetArgs) -> Result<i32> {
    let via = match Via::open(&fleet, a.direct.direct).await? {
        Ok(v) => v,
        Err(e) => return Ok(failed("get", e)),
    };
    // Through a member: its stream, opened before the output is (a key not found leaves
    // no file behind).
    let mut stream = match &via {
        Via::Agent(agent) => match agent.clone().get_object(&a.key).await {
            Ok(s) => Some(s),
            Err(e) => return Ok(failed("get", e)),
        },
        Via::Direct(_) => None,
    };
    // With --direct: the manifest, found before the output is opened, likewise.
    let manifest = match &via {
        Via::Direct(d) => match d.frontend.manifest(&a.key, &d.layout).await {
            Ok(m) => Some(m),
            Err(e) => return Ok(failed("get", crate::fleet::direct::call_err(e))),
        },
        Via::Agent(_) => None,
    };
    let to_file = a
        .output
        .as_deref()
        .filter(|p| p.as_os_str() != "-")
        .map(|p| p.to_path_buf());
    // Into a temporary file renamed over the target only when every byte came: an error
    // never leaves a partial file behind.
    let (renamed, mut out): (super::io::Renamed, Box<dyn Write>) = match &to_file {
        Some(p) => {
            let (r, f) = super::io::temp_output(p)?;
            (r, Box::new(std::io::BufWriter::new(f)))
        }
        None => (None, Box::new(std::io::stdout().lock())),
    };
    let b = bar(None, "get");
    let mut size = None;
    let mut got = 0u64;
    let mut rebuilt = 0u32;
    let result: Result<(), String> = match (&via, stream.as_mut(), manifest) {
        (Via::Agent(agent), Some(stream), _) => loop {
            match stream.message().await {
                Ok(Some(m)) => {
                    if size.is_none() {
                        size = Some(m.size);
                        b.set_length(m.size);
                    }
                    rebuilt = rebuilt.max(m.reconstructed);
                    if let Err(e) = out.write_all(&m.data) {
                        break Err(format!("writing the output: {e}"));
                    }
                    got += m.data.len() as u64;
                    b.inc(m.data.len() as u64);
                }
                Ok(None) => break Ok(()),
                Err(s) => break Err(agent.err(s).to_string()),
            }
        },
        (Via::Direct(d), _, Some(m)) => {
            let sink = |len: u64, piece: &bytes::Bytes| {
                if size.is_none() {
                    size = Some(len);
                    b.set_length(len);
                }
                out.write_all(piece)
                    .map_err(|e| format!("writing the output: {e}"))?;
                got += piece.len() as u64;
                b.inc(piece.len() as u64);
                Ok(())
            };
            match d.read(m, sink).await {
                Ok((_, r)) => {
                    rebuilt = r;
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        _ => Err("nothing was opened to read from".into()),
    };
    b.finish_and_clear();
    let result = result.and_then(|()| {
        if size.is_some_and(|s| s != got) {
            return Err(format!(
                "the object is {} bytes but {got} arrived",
                size.unwrap_or(0)
            ));
        }
        out.flush().map_err(|e| e.to_string())
    });
    drop(out);
    if let Err(e) = result {
        super::io::finish_output(&renamed, true)?;
        eprintln!("axon io get: {}: {e}", a.key);
        return Ok(EXIT_FAILED);
    }
    super::io::finish_output(&renamed, false)?;
    if rebuilt > 0 {
        eprintln!(
            "axon io get: {rebuilt} stripe(s) of {} were rebuilt from parity (chunks missing, damaged or on nodes away)",
            a.key
        );
    }
    if a.store.json {
        eprintln!(
            "{}",
            json!({"key": a.key, "bytes": got, "rebuilt_stripes": rebuilt, "via": via.name()})
        );
    }
    Ok(0)
}

pub async fn rm(a: IoKeyArgs, fleet: FleetArgs) -> Result<i32> {
    let mut via = match Via::open(&fleet, a.direct.direct).await? {
        Ok(v) => v,
        Err(e) => return Ok(failed("rm", e)),
    };
    let deleted = match &mut via {
        Via::Agent(agent) => agent.delete_object(&a.key).await,
        Via::Direct(d) => d.delete_object(&a.key).await,
    };
    match deleted {
        Ok(true) => {
            super::io::removed(&a.key, a.store.json, via.name());
            Ok(0)
        }
        Ok(false) => {
            eprintln!("axon io rm: no object {:?} in the cluster", a.key);
            Ok(EXIT_NOT_FOUND)
        }
        Err(e) => Ok(failed("rm", e)),
    }
}

pub async fn ls(a: IoLsArgs, fleet: FleetArgs) -> Result<i32> {
    let mut via = match Via::open(&fleet, a.direct.direct).await? {
        Ok(v) => v,
        Err(e) => return Ok(failed("ls", e)),
    };
    let (list, silent) = match &mut via {
        Via::Agent(agent) => match agent.list_objects(&a.prefix).await {
            Ok(x) => x,
            Err(e) => return Ok(failed("ls", e)),
        },
        Via::Direct(d) => d.list_objects(&a.prefix).await,
    };
    if a.store.json {
        println!(
            "{}",
            json!({"objects": list, "unreachable": silent, "via": via.name()})
        );
    } else {
        for o in &list {
            println!(
                "{:>10}  {:>5}  {}",
                format_size(o.size, BINARY),
                o.stripes,
                o.key
            );
        }
        for s in &silent {
            eprintln!("axon io ls: did not answer, objects only it holds may be missing: {s}");
        }
    }
    // Every manifest is on at least m+1 members, so with m or fewer silent the list is
    // whole; the warnings above name who did not answer.
    Ok(0)
}

/// Latencies of one kind of operation, in microseconds.
#[derive(Default)]
struct Lat {
    us: Vec<u64>,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Lat {
    fn merge(&mut self, o: Lat) {
        self.us.extend(o.us);
        self.bytes += o.bytes;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }

    /// ops, MiB/s, and latency percentiles in ms, as JSON.
    fn report(&mut self, secs: f64) -> serde_json::Value {
        self.us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.us.is_empty() {
                return 0.0;
            }
            let i = ((p / 100.0) * (self.us.len() - 1) as f64).round() as usize;
            self.us[i.min(self.us.len() - 1)] as f64 / 1000.0
        };
        let mean = if self.us.is_empty() {
            0.0
        } else {
            self.us.iter().sum::<u64>() as f64 / self.us.len() as f64 / 1000.0
        };
        json!({
            "ops": self.us.len(),
            "ops_per_sec": self.us.len() as f64 / secs,
            "bytes": self.bytes,
            "mib_per_sec": self.bytes as f64 / secs / (1 << 20) as f64,
            "errors": self.errors,
            "first_error": self.first_error,
            "latency_ms": {
                "min": self.us.first().map_or(0.0, |x| *x as f64 / 1000.0),
                "mean": mean,
                "p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "p99.9": pct(99.9),
                "max": self.us.last().map_or(0.0, |x| *x as f64 / 1000.0),
            }
        })
    }
}

/// The object's bytes as ≤ 1 MiB messages, without copying.
fn pieces(b: &bytes::Bytes) -> impl futures::Stream<Item = bytes::Bytes> + Send + 'static {
    let mut v = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let end = (off + (1 << 20)).min(b.len());
        v.push(b.slice(off..end));
        off = end;
    }
    futures::stream::iter(v)
}

pub async fn bench(a: crate::cli::IoBenchArgs, fleet: FleetArgs) -> Result<i32> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    // With --direct, the frontend here asks each agent for its place in the cluster
    // itself; otherwise the workers take turns over the agents that answer as members.
    let (direct, agents) = if a.direct.direct {
        match self::direct(&fleet).await? {
            Ok(d) => {
                let agents = d.agents.clone();
                (Some(Arc::new(d)), agents)
            }
            Err(e) => return Ok(failed("bench", e)),
        }
    } else {
        let asked =
            reachable(&super::inventory(&fleet)?)
                .await
                .into_iter()
                .map(|mut c| async move {
                    let member = matches!(
                        tokio::time::timeout(Duration::from_secs(5), c.get()).await,
                        Ok(Ok(info)) if info.cluster.is_some()
                    );
                    member.then_some(c)
                });
        let agents: Vec<ClusterAgent> = futures::future::join_all(asked)
            .await
            .into_iter()
            .flatten()
            .collect();
        if agents.is_empty() {
            anyhow::bail!(
                "no agent answered as a cluster member (of those --inventory or --hosts names)"
            );
        }
        (None, agents)
    };
    // Worker w's way in: the shared direct frontend, or agent w's.
    let via = |w: usize| match &direct {
        Some(d) => Via::Direct(d.clone()),
        None => Via::Agent(Box::new(agents[w % agents.len()].clone())),
    };
    let size = a.size as usize;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let payload = bytes::Bytes::from(
        (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>(),
    );
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let conc = a.concurrency.max(1);
    if !a.json {
        eprintln!(
            "bench {run}: {} objects, {conc} in flight {}, {}% writes, {}",
            format_size(a.size, BINARY),
            match &direct {
                Some(d) => format!(
                    "from a frontend in this process to {} member(s) (direct)",
                    d.layout.members.len() - d.unreachable.len()
                ),
                None => format!("over {} agent(s)", agents.len()),
            },
            a.mix,
            humantime(a.duration)
        );
    }
    // Reads need objects: one per worker first, not counted.
    let pool: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    if a.mix < 100 {
        let seeds = (0..conc).map(|w| {
            let mut ag = via(w);
            let (key, body) = (format!("bench/{run}/seed/{w}"), pieces(&payload));
            async move { ag.put_object(&key, body).await.map(|_| key) }
        });
        for r in futures::future::join_all(seeds).await {
            match r {
                Ok(k) => pool.lock().unwrap().push(k),
                Err(e) => {
                    eprintln!("axon io bench: the objects to read could not be written: {e}");
                    return Ok(EXIT_FAILED);
                }
            }
        }
    }
    let written: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let counters: Arc<[AtomicU64; 4]> = Arc::new(Default::default()); // write ops, bytes, read ops, bytes
    let began = Instant::now();
    let deadline = began + a.duration;
    let stop_live = Arc::new(tokio::sync::Notify::new());
    let live = {
        let (c, stop, json) = (counters.clone(), stop_live.clone(), a.json);
        tokio::spawn(async move {
            let mut last = [0u64; 4];
            let mut t = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.notified() => return,
                }
                let now: Vec<u64> = c.iter().map(|x| x.load(Relaxed)).collect();
                let dt = t.elapsed().as_secs_f64();
                t = Instant::now();
                if !json {
                    eprintln!(
                        "  {:>4.0}s  write {:>6.0} ops/s {:>9}/s   read {:>6.0} ops/s {:>9}/s",
                        began.elapsed().as_secs_f64(),
                        (now[0] - last[0]) as f64 / dt,
                        format_size(((now[1] - last[1]) as f64 / dt) as u64, BINARY),
                        (now[2] - last[2]) as f64 / dt,
                        format_size(((now[3] - last[3]) as f64 / dt) as u64, BINARY),
                    );
                }
                last.copy_from_slice(&now);
            }
        })
    };
    let workers = (0..conc).map(|w| {
        let mut ag = via(w);
        let (payload, pool, written, c, run) = (
            payload.clone(),
            pool.clone(),
            written.clone(),
            counters.clone(),
            run.clone(),
        );
        let mix = u64::from(a.mix);
        async move {
            let (mut wl, mut rl) = (Lat::default(), Lat::default());
            let mut rng: u64 = 0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1);
            let mut n = 0u64;
            while Instant::now() < deadline {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let t = Instant::now();
                if rng % 100 < mix {
                    let key = format!("bench/{run}/{w}/{n}");
                    n += 1;
                    match ag.put_object(&key, pieces(&payload)).await {
                        Ok(s) => {
                            wl.us.push(t.elapsed().as_micros() as u64);
                            wl.bytes += s.size;
                            c[0].fetch_add(1, Relaxed);
                            c[1].fetch_add(s.size, Relaxed);
                            written.lock().unwrap().push(key.clone());
                            pool.lock().unwrap().push(key);
                        }
                        Err(e) => {
                            wl.errors += 1;
                            wl.first_error.get_or_insert(e.to_string());
                        }
                    }
                } else {
                    let key = {
                        let p = pool.lock().unwrap();
                        p[(rng >> 8) as usize % p.len()].clone()
                    };
                    match ag.read_all(&key).await {
                        Ok(got) if got == payload.len() as u64 => {
                            rl.us.push(t.elapsed().as_micros() as u64);
                            rl.bytes += got;
                            c[2].fetch_add(1, Relaxed);
                            c[3].fetch_add(got, Relaxed);
                        }
                        Ok(got) => {
                            rl.errors += 1;
                            rl.first_error.get_or_insert(format!(
                                "{key}: {got} bytes read, {} written",
                                payload.len()
                            ));
                        }
                        Err(e) => {
                            rl.errors += 1;
                            rl.first_error.get_or_insert(e);
                        }
                    }
                }
            }
            (wl, rl)
        }
    });
    let results = futures::future::join_all(workers).await;
    let secs = began.elapsed().as_secs_f64();
    stop_live.notify_one();
    let _ = live.await;
    let (mut w, mut r) = (Lat::default(), Lat::default());
    for (wl, rl) in results {
        w.merge(wl);
        r.merge(rl);
    }
    let (wj, rj) = (w.report(secs), r.report(secs));
    // Clean up what the run wrote, unless asked to keep it.
    let mut deleted = 0;
    if !a.keep {
        let mut keys: Vec<String> = written.lock().unwrap().clone();
        keys.extend((0..conc).map(|w| format!("bench/{run}/seed/{w}")));
        for batch in keys.chunks(conc * 4) {
            let calls = batch.iter().enumerate().map(|(i, k)| {
                let mut ag = agents[i % agents.len()].clone();
                let k = k.clone();
                async move { ag.delete_object(&k).await }
            });
            deleted += futures::future::join_all(calls)
                .await
                .into_iter()
                .filter(|r| matches!(r, Ok(true)))
                .count();
        }
    }
    let errors = w.errors + r.errors;
    if a.json {
        println!(
            "{}",
            json!({"run": run, "size": a.size, "concurrency": conc, "agents": agents.len(),
                   "direct": a.direct.direct,
                   "mix_write_percent": a.mix, "seconds": secs, "write": wj, "read": rj,
                   "deleted": deleted})
        );
    } else {
        for (name, j) in [("write", &wj), ("read", &rj)] {
            if j["ops"] == 0 && j["errors"] == 0 {
                continue;
            }
            let l = &j["latency_ms"];
            println!(
                "{name:<5}: {} ops, {:.1} ops/s, {:.1} MiB/s, {} errors",
                j["ops"],
                j["ops_per_sec"].as_f64().unwrap_or(0.0),
                j["mib_per_sec"].as_f64().unwrap_or(0.0),
                j["errors"]
            );
            println!(
                "       lat (ms): min {:.2}  mean {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
                l["min"].as_f64().unwrap_or(0.0),
                l["mean"].as_f64().unwrap_or(0.0),
                l["p50"].as_f64().unwrap_or(0.0),
                l["p90"].as_f64().unwrap_or(0.0),
                l["p99"].as_f64().unwrap_or(0.0),
                l["p99.9"].as_f64().unwrap_or(0.0),
                l["max"].as_f64().unwrap_or(0.0),
            );
            if let Some(e) = j["first_error"].as_str() {
                println!("       first error: {e}");
            }
        }
        if !a.keep {
            eprintln!("deleted the {deleted} objects the run wrote");
        }
    }
    Ok(if errors == 0 { 0 } else { EXIT_FAILED })
}

fn humantime(d: Duration) -> String {
    format!("{:.0} s", d.as_secs_f64())
}

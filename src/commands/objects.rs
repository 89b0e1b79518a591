//! `axon io put|get|rm|ls --inventory F` (or `--hosts H`): objects in the data-plane
//! cluster, through the first of its agents that answers (its frontend splits, places,
//! reads and rebuilds; `dataplane::cluster::frontend`).

use super::io::bar;
use crate::cli::{FleetArgs, IoGetArgs, IoKeyArgs, IoLsArgs, IoPutArgs};
use crate::fleet::cluster::{ClusterAgent, ClusterCallError};
use anyhow::{Context, Result};
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
        "no agent of the inventory answered as a cluster member:\n  {}",
        why.join("\n  ")
    )
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
    let mut agent = frontend(&fleet).await?;
    let (mut src, len): (Box<dyn Read + Send>, Option<u64>) =
        match a.file.as_deref().filter(|p| p.as_os_str() != "-") {
            Some(p) => {
                let f = std::fs::File::open(p).with_context(|| format!("{}", p.display()))?;
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(f), len)
            }
            None => (Box::new(std::io::stdin()), None),
        };
    let b = bar(len, "put");
    // The file is read on a thread of its own, 1 MiB at a time, into a small channel: the
    // agent's pace holds the reading back.
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let reader = {
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
                        Err(e) => return Err(e),
                    }
                }
                if got == 0 {
                    return Ok(total);
                }
                buf.truncate(got);
                total += got as u64;
                b.inc(got as u64);
                if tx.blocking_send(bytes::Bytes::from(buf)).is_err() {
                    return Ok(total);
                }
            }
        })
    };
    let began = Instant::now();
    let body = tokio_stream::wrappers::ReceiverStream::new(rx);
    let r = agent.put_object(&a.key, body).await;
    b.finish_and_clear();
    // A read error must not pass for the end of the file.
    match reader.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            eprintln!(
                "axon io put: reading the input failed ({e}); what the cluster received is not complete"
            );
            return Ok(EXIT_FAILED);
        }
        Err(e) => anyhow::bail!("the reader task failed: {e}"),
    }
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
                   "via": agent.node})
        );
    } else {
        eprintln!(
            "stored {} ({}) in {} stripes on {} nodes via {}, {:.2} s ({}/s)",
            stored.key,
            format_size(stored.size, BINARY),
            stored.stripes,
            stored.nodes,
            agent.node,
            secs,
            format_size((stored.size as f64 / secs.max(1e-9)) as u64, BINARY)
        );
    }
    Ok(0)
}

pub async fn get(a: IoGetArgs, fleet: FleetArgs) -> Result<i32> {
    let mut agent = frontend(&fleet).await?;
    let mut stream = match agent.get_object(&a.key).await {
        Ok(s) => s,
        Err(e) => return Ok(failed("get", e)),
    };
    let to_file = a
        .output
        .as_deref()
        .filter(|p| p.as_os_str() != "-")
        .map(|p| p.to_path_buf());
    // Into a temporary file renamed over the target only when every byte came: an error
    // never leaves a partial file behind.
    let tmp = to_file.as_ref().map(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "object".into());
        p.with_file_name(format!(".{name}.axon-get-{}", std::process::id()))
    });
    let mut out: Box<dyn Write> = match &tmp {
        Some(t) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(t).with_context(|| format!("{}", t.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let b = bar(None, "get");
    let mut size = None;
    let mut got = 0u64;
    let mut rebuilt = 0u32;
    let result: Result<(), String> = loop {
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
        if let Some(t) = &tmp {
            let _ = std::fs::remove_file(t);
        }
        eprintln!("axon io get: {}: {e}", a.key);
        return Ok(EXIT_FAILED);
    }
    if let (Some(t), Some(p)) = (&tmp, &to_file) {
        std::fs::File::open(t)?.sync_all()?;
        std::fs::rename(t, p).with_context(|| format!("{}", p.display()))?;
    }
    if rebuilt > 0 {
        eprintln!(
            "axon io get: {rebuilt} stripe(s) of {} were rebuilt from parity (chunks missing, damaged or on nodes away)",
            a.key
        );
    }
    if a.store.json {
        eprintln!(
            "{}",
            json!({"key": a.key, "bytes": got, "rebuilt_stripes": rebuilt, "via": agent.node})
        );
    }
    Ok(0)
}

pub async fn rm(a: IoKeyArgs, fleet: FleetArgs) -> Result<i32> {
    let mut agent = frontend(&fleet).await?;
    match agent.delete_object(&a.key).await {
        Ok(true) => Ok(0),
        Ok(false) => {
            eprintln!("axon io rm: no object {:?} in the cluster", a.key);
            Ok(EXIT_NOT_FOUND)
        }
        Err(e) => Ok(failed("rm", e)),
    }
}

pub async fn ls(a: IoLsArgs, fleet: FleetArgs) -> Result<i32> {
    let mut agent = frontend(&fleet).await?;
    let (list, silent) = match agent.list_objects(&a.prefix).await {
        Ok(x) => x,
        Err(e) => return Ok(failed("ls", e)),
    };
    if a.store.json {
        println!(
            "{}",
            json!({"objects": list, "unreachable": silent, "via": agent.node})
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

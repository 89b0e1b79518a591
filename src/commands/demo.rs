//! `axon demo`: starts the embedded cluster (`crate::demo`), forms its data plane (a Raft
//! cluster over the nodes' file-backed drives, IO started, a light load so stripes exist),
//! and opens the console on it, or with `--headless` prints where everything is and waits
//! for Ctrl-C. `axon demo fail|heal|corrupt …` injects faults into a running demo.

use crate::cli::{DemoArgs, DemoFault};
use crate::demo::{DataplaneOptions, DemoCluster, DemoOptions, send_fault, start};
use crate::fleet::inventory::Inventory;
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The scheme and hot spares the demo forms: as asked, else the largest of 16+4, 4+2 and
/// 3+2 that `nodes` hold, with as many spares (up to 2) as nodes remain. None: too few
/// nodes for any.
pub fn demo_scheme(
    nodes: usize,
    scheme: Option<(usize, usize)>,
    spares: Option<usize>,
) -> Result<Option<(usize, usize, usize)>> {
    let (k, m) = match scheme {
        Some(s) => s,
        None => match nodes {
            22.. => (16, 4),
            6.. => (4, 2),
            5 => (3, 2),
            _ => return Ok(None),
        },
    };
    crate::dataplane::ec::Scheme::new(k, m)?;
    let spares = spares.unwrap_or_else(|| nodes.saturating_sub(k + m).min(2));
    if k + m + spares > nodes {
        // The widest scheme of parity 2 that fits beside the spares, if any does.
        let room = nodes.saturating_sub(spares);
        let fits = if room >= 5 {
            format!("--scheme {}+2 fits", (room - 2).min(16))
        } else {
            "the smallest scheme, 3+2, needs 5 nodes".to_string()
        };
        bail!(
            "--scheme {k}+{m} with {spares} hot spares needs {} nodes (failure domains), the demo has {nodes}: raise --nodes, or pick a smaller scheme ({fits} with {spares} hot spares)",
            k + m + spares
        );
    }
    Ok(Some((k, m, spares)))
}

pub async fn exec(a: DemoArgs) -> Result<i32> {
    if let Some(f) = &a.fault {
        return fault(f).await;
    }
    let plan = if a.no_dataplane || a.insecure {
        None
    } else {
        demo_scheme(usize::from(a.nodes), a.scheme, a.hot_spares)?
    };
    let opts = DemoOptions {
        nodes: a.nodes,
        dir: a.dir.clone(),
        interval: a.view.interval,
        control_port: a.port,
        metrics_port: a.metrics_port,
        insecure: a.insecure,
        dataplane: plan.map(|_| DataplaneOptions {
            drives: a.drives,
            drive_size: a.drive_size,
            rebuild_grace: a.rebuild_grace,
            rebuild_rate: (a.rebuild_rate > 0).then_some(a.rebuild_rate),
            ..DataplaneOptions::default()
        }),
    };
    eprintln!(
        "axon demo: starting {} agents on 127.0.1.1-{} (emulated hosts{}) …",
        a.nodes,
        a.nodes,
        match plan {
            Some(_) => format!(
                ", {} file-backed drive(s) of {} each",
                a.drives,
                humansize::format_size(a.drive_size, humansize::BINARY)
            ),
            None => String::new(),
        }
    );
    if a.insecure {
        tracing::warn!(
            "--insecure: the demo agents and console speak plain-text gRPC; tokens cross the network unencrypted"
        );
    }
    if plan.is_none() && !a.no_dataplane {
        eprintln!(
            "  no data plane: {}",
            if a.insecure {
                "it needs TLS (drop --insecure)".to_string()
            } else {
                format!("{} nodes are too few (3+2 needs 5)", a.nodes)
            }
        );
    }
    let cluster = Arc::new(start(opts).await?);
    let inventory = match &a.inventory_out {
        Some(out) => {
            std::fs::copy(&cluster.inventory, out)
                .with_context(|| format!("writing {}", out.display()))?;
            out.clone()
        }
        None => cluster.inventory.clone(),
    };
    let _faults = cluster.serve_faults()?;
    let mut load = None;
    if let Some((k, m, spares)) = plan {
        let inv = Inventory::load(&cluster.inventory)?;
        if let Err(e) = form(&inv, k, m, spares).await {
            cluster.shutdown().await;
            return Err(e.context("forming the demo's data-plane cluster"));
        }
        load = Some(tokio::spawn(light_load(inv, a.objects)));
    }
    if a.headless {
        print_where(&cluster).await;
        eprintln!(
            "\nattach with: axon console{} --inventory {}",
            if a.insecure { " --insecure" } else { "" },
            inventory.display()
        );
        if plan.is_some() {
            eprintln!(
                "inject faults (emulation only), for example:\n  axon demo fail node {n} --dir {d}\n  axon demo heal node {n} --dir {d}\n  axon demo fail drive {n} drive00 --dir {d}\n  axon demo corrupt drive {n} drive01 --dir {d}\nload it (objects through a member, or --direct from this client):\n  axon io bench --inventory {i} --duration 10s [--direct]",
                n = crate::demo::node_name(2),
                d = cluster.dir.display(),
                i = inventory.display()
            );
        }
        eprintln!("Press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
    } else {
        let mut inv = Inventory::load(&inventory)?;
        if a.insecure {
            inv.trust = std::sync::Arc::new(
                crate::fleet::tls::Trust::new(&crate::fleet::tls::TrustOptions {
                    insecure: true,
                    ..Default::default()
                })
                .map_err(anyhow::Error::msg)?,
            );
        }
        super::console::view_with(&inv, &a.view, Some(cluster.dir.clone())).await?;
    }
    if let Some(l) = load {
        l.abort();
    }
    cluster.shutdown().await;
    Ok(0)
}

/// `axon demo fail|heal|corrupt WHAT --dir DIR`: one line to the running demo.
async fn fault(f: &DemoFault) -> Result<i32> {
    let (verb, a) = match f {
        DemoFault::Fail(a) => ("fail", a),
        DemoFault::Heal(a) => ("heal", a),
        DemoFault::Corrupt(a) => ("corrupt", a),
    };
    let line = format!("{verb} {}", a.what.join(" "));
    match send_fault(&a.dir, &line).await {
        Ok(t) => {
            println!("{t}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("axon demo {line}: {e:#}");
            Ok(2)
        }
    }
}

/// Forms the cluster over the demo's nodes (`axon cluster create`) and starts IO once every
/// node's drives are recorded, printing a line for each step.
async fn form(inv: &Inventory, k: usize, m: usize, spares: usize) -> Result<()> {
    let path = inv
        .path
        .as_ref()
        .context("the demo's inventory has no file")?
        .display()
        .to_string();
    let scheme = format!("{k}+{m}");
    let spares_s = spares.to_string();
    let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
        "axon",
        "cluster",
        "create",
        "--inventory",
        &path,
        "--scheme",
        &scheme,
        "--hot-spares",
        &spares_s,
    ])?;
    let crate::cli::Command::Cluster(c) = cli.command else {
        bail!("cluster create did not parse");
    };
    eprintln!(
        "  forming a {k}+{m} cluster with {spares} hot spare(s) over {} nodes …",
        inv.nodes.len()
    );
    let code = super::cluster::exec(c).await?;
    if code != 0 {
        bail!("cluster create exited {code}");
    }
    eprintln!("  waiting for every node's drives to be recorded, then starting IO …");
    let began = Instant::now();
    // Each member records its own drives once it has joined; start-io before then would
    // only be refused (a failed operation, logged as one).
    while began.elapsed() < Duration::from_secs(60) {
        if members_with_drives(inv).await >= inv.nodes.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        match super::cluster::start_io_once(inv).await {
            Ok(()) => break,
            Err(e) if began.elapsed() < Duration::from_secs(90) => {
                tracing::debug!("start-io: {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.context("start-io")),
        }
    }
    eprintln!("  IO started in {:.1} s", began.elapsed().as_secs_f64());
    Ok(())
}

/// How many members the configuration records an ACTIVE drive for, as the first node
/// that answers has it; 0 when none does.
async fn members_with_drives(inv: &Inventory) -> usize {
    for spec in &inv.nodes {
        let Ok(mut c) = super::cluster::connect(inv, spec).await else {
            continue;
        };
        let Ok(Ok(info)) = tokio::time::timeout(Duration::from_secs(5), c.get()).await else {
            continue;
        };
        let Some(config) = info.config else {
            continue;
        };
        return config
            .drives
            .values()
            .filter(|d| d.state == "ACTIVE")
            .map(|d| d.node)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
    }
    0
}

/// Writes `objects` objects (`demo/object-NNN`, 64 KiB to 4 MiB), then keeps a light load:
/// every 3 s one overwrite and one read checked against what was written. Runs until
/// aborted; a call that fails (a node failed by fault injection) is retried later.
async fn light_load(inv: Inventory, objects: u32) {
    if objects == 0 {
        return;
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let body = |seed: u64, size: usize| -> Vec<u8> {
        let mut v = Vec::with_capacity(size);
        let mut x = seed | 1;
        while v.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.truncate(size);
        v
    };
    let mut written: std::collections::HashMap<u32, (u64, usize)> = Default::default();
    let mut i = 0u32;
    loop {
        let Some(mut c) = frontend(&inv).await else {
            tokio::time::sleep(Duration::from_secs(3)).await;
            continue;
        };
        let filling = (written.len() as u32) < objects;
        let n = if filling {
            i
        } else {
            (next() % u64::from(objects)) as u32
        };
        let (seed, size) = (next(), (64 << 10) + (next() % (4 << 20)) as usize);
        let data = body(seed, size);
        let pieces: Vec<bytes::Bytes> = data
            .chunks(1 << 20)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        let key = format!("demo/object-{n:03}");
        match c.put_object(&key, futures::stream::iter(pieces)).await {
            Ok(_) => {
                written.insert(n, (seed, size));
                if filling {
                    i += 1;
                }
            }
            Err(e) => tracing::debug!("demo load: put {key}: {e}"),
        }
        if !filling
            && let Some((&n, &(seed, size))) = written.iter().nth((next() as usize) % written.len())
        {
            let key = format!("demo/object-{n:03}");
            match c.get_object_bytes(&key).await {
                Ok(got) if got == body(seed, size) => {}
                Ok(got) => tracing::error!(
                    "demo load: {key} read back {} bytes that differ from the {size} written",
                    got.len()
                ),
                Err(e) => tracing::debug!("demo load: get {key}: {e}"),
            }
        }
        if !filling {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
}

/// A member of the demo that answers, starting at a random one.
async fn frontend(inv: &Inventory) -> Option<crate::fleet::cluster::ClusterAgent> {
    let n = inv.nodes.len();
    let start = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as usize)
        % n.max(1);
    for j in 0..n {
        let spec = &inv.nodes[(start + j) % n];
        if let Ok(c) = super::cluster::connect(inv, spec).await {
            return Some(c);
        }
    }
    None
}

pub async fn print_where(c: &DemoCluster) {
    eprintln!("  working dir  {}", c.dir.display());
    eprintln!("  inventory    {}", c.inventory.display());
    eprintln!("  admin token  {}", c.token_file.display());
    eprintln!(
        "  faults       {} (axon demo fail|heal|corrupt … --dir {})",
        crate::demo::fault_socket(&c.dir).display(),
        c.dir.display()
    );
    for (name, profile, grpc, metrics) in &c.listing {
        eprintln!(
            "  {name}  gRPC {}  metrics http://{}/metrics  profile {profile}",
            grpc.map(|a| a.to_string()).unwrap_or_default(),
            metrics.map(|a| a.to_string()).unwrap_or_default(),
        );
    }
}

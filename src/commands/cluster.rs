//! `axon cluster create|status`: forming the data-plane cluster from the inventory's agents
//! (`fleet::cluster`), and what its members report.

use crate::cli::{
    ClusterCommand, ClusterCreateArgs, ClusterStatusArgs, DriveListArgs, IoStateArgs,
};
use crate::dataplane::ec::Scheme;
use crate::fleet::cluster::{AgentCluster, ClusterAgent, ClusterCallError, Member};
use crate::fleet::inventory::{Inventory, NodeSpec, host_port};
use crate::fleet::ops::OpsClient;
use crate::model::cluster::{ClusterConfig, Command};
use crate::model::ops::{OperationOutput, OperationState};
use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// At most this many members vote (WEKA uses 5 or 9); the rest follow as learners.
pub const LEADERSHIP: usize = 5;

pub async fn exec(c: ClusterCommand) -> Result<i32> {
    match c {
        ClusterCommand::Create(a) => create(a).await,
        ClusterCommand::Status(a) => status(a).await,
    }
}

/// The node's token (from its token file) and how its certificate is trusted.
fn credentials(
    inv: &Inventory,
    spec: &NodeSpec,
) -> Result<(Option<String>, crate::fleet::tls::Security), String> {
    let tokens = inv.load_tokens().map_err(|e| e.to_string())?;
    let token = spec
        .token_file
        .as_ref()
        .and_then(|p| tokens.get(p).cloned());
    let security = inv.security(spec).map_err(|e| e.to_string())?;
    Ok((token, security))
}

pub(crate) async fn connect(
    inv: &Inventory,
    spec: &NodeSpec,
) -> Result<ClusterAgent, ClusterCallError> {
    let (token, security) = credentials(inv, spec).map_err(|detail| ClusterCallError::Connect {
        node: spec.name.clone(),
        detail: format!("{}: {detail}", spec.name),
    })?;
    ClusterAgent::connect(spec, token, security, Duration::from_secs(5)).await
}

async fn create(a: ClusterCreateArgs) -> Result<i32> {
    let (k, m) = a.scheme;
    Scheme::new(k, m)?;
    let inv = super::inventory(&a.fleet)?;
    let n = inv.nodes.len();
    let need = ClusterConfig::domains_needed(k, m, a.hot_spares);
    if n < need {
        eprintln!(
            "axon cluster: {k}+{m} with {} hot spares needs {need} failure domains (servers), the inventory has {n}",
            a.hot_spares
        );
        return Ok(2);
    }
    // Every agent first: reachable, hosting a member. Nodes already in a cluster are fine
    // only if it is this very cluster (a create cut short, or run again): then it resumes.
    let mut agents = Vec::new();
    let mut members = Vec::new();
    let mut existing: BTreeMap<String, Vec<(String, Vec<Member>)>> = BTreeMap::new();
    for (i, spec) in inv.nodes.iter().enumerate() {
        let mut c = connect(&inv, spec).await?;
        let info = c.get().await?;
        if let Some(cl) = &info.cluster {
            existing
                .entry(cl.clone())
                .or_default()
                .push((spec.name.clone(), info.members.clone()));
        }
        members.push(Member {
            id: i as u64 + 1,
            name: spec.name.clone(),
            address: host_port(&spec.address, info.cluster_port),
            fingerprint: info.fingerprint.clone(),
            data_address: if info.data_port == 0 {
                String::new()
            } else {
                host_port(&spec.address, info.data_port)
            },
        });
        agents.push(c);
    }
    let cluster = match existing.len() {
        0 => uuid::Uuid::new_v4().to_string(),
        1 => {
            let (cl, nodes) = existing.iter().next().expect("one entry");
            if let Some((name, _)) = nodes.iter().find(|(_, ms)| *ms != members) {
                bail!(
                    "{name}: already a member of cluster {cl} with other members than this inventory's; a node belongs to one cluster"
                );
            }
            cl.clone()
        }
        _ => bail!(
            "the inventory's nodes belong to {} different clusters ({}); a node belongs to one cluster",
            existing.len(),
            existing
                .iter()
                .map(|(cl, n)| format!(
                    "{cl}: {}",
                    n.iter()
                        .map(|(x, _)| x.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    // Joining the same membership again is a no-op on a node that has it.
    for (c, me) in agents.iter_mut().zip(&members) {
        c.join(&cluster, me.id, &members).await?;
    }
    let voters: Vec<u64> = members.iter().take(LEADERSHIP).map(|m| m.id).collect();
    agents[0].initialize(&voters).await?;
    let leader = wait_leader(&mut agents[0]).await?;
    let create = Command::Create {
        cluster: cluster.clone(),
        k,
        m,
        hot_spares: a.hot_spares,
        members: members
            .iter()
            .map(|x| {
                (
                    x.id,
                    crate::model::cluster::Member {
                        name: x.name.clone(),
                        address: x.address.clone(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    };
    // Any member takes a change: it hands it to the leader. Its refusal is the cluster's
    // answer (exit 2), not a failure to ask (3).
    let info = match agents[0].propose(&create).await {
        Ok(i) => i,
        Err(e @ ClusterCallError::Refused { .. }) => {
            eprintln!("axon cluster create: {e}");
            return Ok(2);
        }
        Err(e) => return Err(e.into()),
    };
    if a.json {
        println!("{}", report_json(&info)?);
    } else {
        println!(
            "formed cluster {cluster}: {n} members, {k}+{m} with {} hot spares, leader {} (node {leader}), epoch {}",
            a.hot_spares,
            members[leader as usize - 1].name,
            info.epoch
        );
        println!(
            "  leadership group: {}",
            members
                .iter()
                .take(LEADERSHIP)
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(0)
}

/// A member's report as `--json` prints it: the configuration's IO status in the words of
/// the text output and of `axon status` (STARTED, STOPPED, STARTING), not serde's name of
/// the enum ("Started"), which the replicated Raft state keeps so older members read it.
fn report_json(i: &AgentCluster) -> serde_json::Result<serde_json::Value> {
    let mut v = serde_json::to_value(i)?;
    if let (Some(c), Some(o)) = (
        &i.config,
        v.get_mut("config").and_then(|c| c.as_object_mut()),
    ) {
        o.insert("io".into(), c.io.as_str().into());
    }
    Ok(v)
}

async fn wait_leader(c: &mut ClusterAgent) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let i = c.get().await?;
        if i.leader != 0 {
            return Ok(i.leader);
        }
        if Instant::now() > deadline {
            bail!("{}: no leader elected in 30 s", c.node);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status(a: ClusterStatusArgs) -> Result<i32> {
    let inv = super::inventory(&a.fleet)?;
    let mut rows: Vec<(String, Result<AgentCluster, String>)> = Vec::new();
    for spec in &inv.nodes {
        let r = match connect(&inv, spec).await {
            Ok(mut c) => c.get_with_share().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        rows.push((spec.name.clone(), r));
    }
    let ok: Vec<&AgentCluster> = rows.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    let leaders: std::collections::BTreeSet<u64> = ok.iter().map(|i| i.leader).collect();
    let clusters: std::collections::BTreeSet<Option<&String>> =
        ok.iter().map(|i| i.cluster.as_ref()).collect();
    let agreed = !ok.is_empty()
        && ok.len() == rows.len()
        && leaders.len() == 1
        && !leaders.contains(&0)
        && clusters.len() == 1
        && !clusters.contains(&None);
    // The data plane: the members' shares added up (each stripe is counted by one member).
    let m = ok
        .iter()
        .filter_map(|i| i.config.as_ref())
        .map(|c| c.m)
        .max()
        .unwrap_or(0);
    let shares: Vec<crate::dataplane::cluster::protection::DataStatus> =
        ok.iter().filter_map(|i| i.data.clone()).collect();
    // IO as the newest configuration among the members says.
    let io_started = ok
        .iter()
        .filter_map(|i| i.config.as_ref())
        .max_by_key(|c| c.epoch)
        .is_some_and(|c| c.io == crate::model::cluster::IoStatus::Started);
    let data = (!shares.is_empty())
        .then(|| crate::dataplane::cluster::protection::sum(&shares, m, io_started));
    if a.json {
        let v = rows
            .iter()
            .map(|(n, r)| {
                Ok(match r {
                    Ok(i) => serde_json::json!({"node": n, "report": report_json(i)?}),
                    Err(e) => serde_json::json!({"node": n, "error": e}),
                })
            })
            .collect::<serde_json::Result<Vec<_>>>()?;
        println!(
            "{}",
            serde_json::json!({"agreed": agreed, "nodes": v, "data": data})
        );
    } else {
        println!(
            "{:<16} {:>4} {:<38} {:>6} {:>6} {:<7} {:<8}",
            "NODE", "ID", "CLUSTER", "LEADER", "EPOCH", "SCHEME", "IO"
        );
        for (n, r) in &rows {
            match r {
                Ok(i) => {
                    let (scheme, io) = match &i.config {
                        Some(c) if c.cluster.is_some() => (
                            format!("{}+{}+{}", c.k, c.m, c.hot_spares),
                            c.io.as_str().to_string(),
                        ),
                        _ => ("-".into(), "-".into()),
                    };
                    println!(
                        "{:<16} {:>4} {:<38} {:>6} {:>6} {:<7} {:<8}",
                        n,
                        i.node_id,
                        i.cluster.as_deref().unwrap_or("(not a member)"),
                        i.leader,
                        i.epoch,
                        scheme,
                        io
                    );
                }
                Err(e) => println!("{n:<16} UNREACHABLE: {e}"),
            }
        }
        if let Some(d) = &data {
            for line in data_lines(d, &ok) {
                println!("{line}");
            }
        }
    }
    Ok(if ok.is_empty() {
        3
    } else if agreed {
        0
    } else {
        1
    })
}

/// `axon start-io` / `axon stop-io`: the operation on a member, followed to its end.
pub async fn io(a: IoStateArgs, start: bool) -> Result<i32> {
    let verb = if start { "start-io" } else { "stop-io" };
    let inv = super::inventory(&a.fleet)?;
    let candidates: Vec<&NodeSpec> = match &a.node {
        Some(n) => {
            let s = inv
                .nodes
                .iter()
                .find(|x| &x.name == n)
                .ok_or_else(|| anyhow!("--node {n}: no such node in the inventory"))?;
            vec![s]
        }
        None => inv.nodes.iter().collect(),
    };
    let mut last_err = None;
    let mut started = None;
    for spec in candidates {
        let (token, security) = credentials(&inv, spec).map_err(|e| anyhow!(e))?;
        let mut c = match OpsClient::connect(spec, token, security, Duration::from_secs(5)).await {
            Ok(c) => c,
            Err(e) => {
                last_err = Some(e.to_string());
                continue;
            }
        };
        match c.start_io(start).await {
            Ok(op) => {
                started = Some((c, op));
                break;
            }
            Err(e @ crate::fleet::ops::OpError::NeedsAdmin(_)) => return Err(e.into()),
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    let Some((mut c, op)) = started else {
        eprintln!(
            "axon {verb}: no member could run it: {}",
            last_err.unwrap_or_else(|| "the inventory lists no node".into())
        );
        return Ok(3);
    };
    if !a.json {
        eprintln!("{verb}: operation {} on {}", op.id, c.node);
    }
    let mut w = c.watch(&op.id).await?;
    let mut seen_log = 0usize;
    let mut last = op;
    while let Some(o) = w.next().await? {
        if a.json {
            println!("{}", serde_json::to_string(&o)?);
        } else {
            for l in o.log.iter().skip(seen_log) {
                eprintln!("  {}", l.text);
            }
        }
        seen_log = o.log.len();
        last = o;
    }
    if !a.json {
        match (&last.state, &last.output) {
            (OperationState::Succeeded, _) => {
                println!("{verb}: {}", last.summary.as_deref().unwrap_or("done"))
            }
            (_, Some(OperationOutput::Io { blockers, .. })) if !blockers.is_empty() => {
                println!("{verb}: refused — IO cannot start until:");
                for b in blockers {
                    println!("  - {b}");
                }
            }
            _ => print_end(verb, &last),
        }
    }
    Ok(exit_code(last.state))
}

/// An operation verb's last line: its summary, or its state and why.
pub(crate) fn print_end(verb: &str, last: &crate::model::ops::Operation) {
    match last.state {
        OperationState::Succeeded => {
            println!("{verb}: {}", last.summary.as_deref().unwrap_or("done"))
        }
        _ => println!(
            "{verb}: {} — {}",
            last.state.as_str(),
            last.error
                .as_deref()
                .or(last.summary.as_deref())
                .unwrap_or("no detail")
        ),
    }
}

/// An operation verb's exit code: 0 done, 1 cancelled, 2 failed or refused, 3 not finished.
pub(crate) fn exit_code(state: OperationState) -> i32 {
    match state {
        OperationState::Succeeded => 0,
        OperationState::Cancelled => 1,
        OperationState::Failed => 2,
        OperationState::Running => 3,
    }
}

/// Runs start-io once on the first member that takes it, quietly: Ok when IO started,
/// else an error with every unmet precondition (the demo retries until its drives are
/// recorded).
pub async fn start_io_once(inv: &Inventory) -> Result<()> {
    let mut last_err = String::from("the inventory lists no node");
    for spec in &inv.nodes {
        let (token, security) = credentials(inv, spec).map_err(|e| anyhow!(e))?;
        let mut c = match OpsClient::connect(spec, token, security, Duration::from_secs(5)).await {
            Ok(c) => c,
            Err(e) => {
                last_err = e.to_string();
                continue;
            }
        };
        let op = match c.start_io(true).await {
            Ok(op) => op,
            Err(e) => {
                last_err = e.to_string();
                continue;
            }
        };
        let mut w = c.watch(&op.id).await?;
        let mut last = op;
        while let Some(o) = w.next().await? {
            last = o;
        }
        return match (&last.state, &last.output) {
            (OperationState::Succeeded, _) => Ok(()),
            (_, Some(OperationOutput::Io { blockers, .. })) if !blockers.is_empty() => {
                bail!("IO cannot start until: {}", blockers.join("; "))
            }
            _ => bail!(
                "{}: {}",
                last.state.as_str(),
                last.error.as_deref().unwrap_or("no detail")
            ),
        };
    }
    bail!("no member could run start-io: {last_err}")
}

/// `axon drive list`: the cluster's drives as the configuration records them, read from
/// the first member that answers.
pub async fn drive_list(a: DriveListArgs) -> Result<i32> {
    let inv = super::inventory(&a.fleet)?;
    let mut last_err = None;
    for spec in &inv.nodes {
        let info = match connect(&inv, spec).await {
            Ok(mut c) => c.get().await,
            Err(e) => Err(e),
        };
        let info = match info {
            Ok(i) => i,
            Err(e) => {
                last_err = Some(e.to_string());
                continue;
            }
        };
        let Some(config) = info.config.filter(|c| c.cluster.is_some()) else {
            eprintln!(
                "axon drive list: {} is in no cluster yet; form one with `axon cluster create`",
                spec.name
            );
            return Ok(1);
        };
        let (usage, silent) = drive_usage(&inv, &config).await;
        if a.json {
            let mut drives = serde_json::to_value(&config.drives)?;
            if let Some(map) = drives.as_object_mut() {
                for (id, v) in map.iter_mut() {
                    if let (Some(u), Some(o)) = (usage.get(id), v.as_object_mut()) {
                        o.insert("capacity_bytes".into(), u.capacity_bytes.into());
                        o.insert("used_bytes".into(), u.used_bytes.into());
                        o.insert("chunks".into(), u.chunks.into());
                        o.insert("store_state".into(), u.state.clone().into());
                    }
                }
            }
            println!(
                "{}",
                serde_json::json!({"from": spec.name, "epoch": config.epoch, "drives": drives, "unreachable": silent})
            );
            return Ok(0);
        }
        println!(
            "{} drives in cluster {} (as {} has applied it, epoch {})",
            config.drives.len(),
            config.cluster.as_deref().unwrap_or_default(),
            spec.name,
            config.epoch
        );
        println!(
            "{:<16} {:<38} {:<12} {:>10} {:>10} {:>8}  PATH",
            "NODE", "DRIVE", "STATE", "USED", "CAPACITY", "CHUNKS"
        );
        let size = |b: u64| humansize::format_size(b, humansize::BINARY);
        let mut rows: Vec<_> = config.drives.iter().collect();
        rows.sort_by_key(|(id, d)| (d.node, (*id).clone()));
        for (id, d) in rows {
            let node = config
                .members
                .get(&d.node)
                .map_or_else(|| format!("node {}", d.node), |m| m.name.clone());
            let (used, cap, chunks) = match usage.get(id) {
                Some(u) => (
                    size(u.used_bytes),
                    size(u.capacity_bytes),
                    u.chunks.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            println!(
                "{node:<16} {id:<38} {:<12} {used:>10} {cap:>10} {chunks:>8}  {}",
                d.state, d.path
            );
        }
        if !silent.is_empty() {
            println!(
                "usage unknown (-) for the drives of {}: no data-plane report",
                silent.join(", ")
            );
        }
        return Ok(0);
    }
    eprintln!(
        "axon drive list: no member answered: {}",
        last_err.unwrap_or_else(|| "the inventory lists no node".into())
    );
    Ok(3)
}

/// Each drive's usage as its node reports it (`DataplaneService`), asked of every member
/// at once; and the members that did not answer.
async fn drive_usage(
    inv: &Inventory,
    config: &crate::model::cluster::ClusterConfig,
) -> (
    std::collections::HashMap<String, crate::model::dataplane::DataDrive>,
    Vec<String>,
) {
    let names: Vec<&String> = config.members.values().map(|m| &m.name).collect();
    let asks = inv
        .nodes
        .iter()
        .filter(|spec| names.contains(&&spec.name))
        .map(|spec| async move {
            let r = match connect(inv, spec).await {
                Ok(mut c) => tokio::time::timeout(Duration::from_secs(5), c.report())
                    .await
                    .ok()
                    .and_then(|r| r.ok()),
                Err(_) => None,
            };
            (spec.name.clone(), r)
        });
    let mut usage = std::collections::HashMap::new();
    let mut silent = Vec::new();
    for (name, r) in futures::future::join_all(asks).await {
        match r {
            Some(r) => usage.extend(r.drives.into_iter().map(|d| (d.id.clone(), d))),
            None => silent.push(name),
        }
    }
    silent.sort();
    (usage, silent)
}

/// The data-plane cluster in one line for `axon status`, and as JSON: from the first
/// member that answers. None when no agent hosts a cluster member.
pub async fn summary(inv: &Inventory, skip: &[String]) -> Option<(String, serde_json::Value)> {
    for spec in inv.nodes.iter().filter(|n| !skip.contains(&n.name)).take(8) {
        let Ok(mut c) = connect(inv, spec).await else {
            continue;
        };
        let Ok(info) = tokio::time::timeout(Duration::from_secs(5), c.get()).await else {
            continue;
        };
        let info = match info {
            Ok(i) => i,
            // An agent without --cluster-listen: try the next.
            Err(_) => continue,
        };
        let Some(config) = info.config.clone().filter(|c| c.cluster.is_some()) else {
            return Some((
                "none formed (`axon cluster create`)".into(),
                serde_json::json!({"formed": false}),
            ));
        };
        let leader = config
            .members
            .get(&info.leader)
            .map_or_else(|| "none known".to_string(), |m| m.name.clone());
        let active = config
            .drives
            .values()
            .filter(|d| d.state == "ACTIVE")
            .count();
        let failed = config
            .drives
            .values()
            .filter(|d| d.state == "FAILED")
            .count();
        let mut parts = vec![
            format!(
                "{}+{} with {} hot spares",
                config.k, config.m, config.hot_spares
            ),
            format!("IO {}", config.io.as_str()),
            format!("leader {leader}"),
            format!("{} members", config.members.len()),
            format!("{active} drives active"),
        ];
        if failed > 0 {
            parts.push(format!("{failed} FAILED"));
        }
        // Protection is every member's share added up: ask them all at once, briefly.
        let asks = inv
            .nodes
            .iter()
            .filter(|n| !skip.contains(&n.name))
            .map(|spec| async move {
                let mut c = connect(inv, spec).await.ok()?;
                let d = tokio::time::timeout(Duration::from_secs(3), c.report())
                    .await
                    .ok()?
                    .ok()?;
                d.share
            });
        let shares: Vec<crate::dataplane::cluster::protection::DataStatus> =
            futures::future::join_all(asks)
                .await
                .into_iter()
                .flatten()
                .collect();
        let data = (!shares.is_empty()).then(|| {
            crate::dataplane::cluster::protection::sum(
                &shares,
                config.m,
                config.io == crate::model::cluster::IoStatus::Started,
            )
        });
        if let Some(d) = &data {
            let lost: u64 = d.stripes_by_lost.iter().skip(1).sum();
            parts.push(if lost > 0 {
                format!("protection {} ({lost} stripes degraded)", d.protection)
            } else {
                format!("protection {}", d.protection)
            });
            if d.rebuild.active {
                parts.push(format!(
                    "rebuild {}/{} stripes, {}",
                    d.rebuild.stripes_done,
                    d.rebuild.stripes_total,
                    crate::model::dataplane::eta_words(
                        d.rebuild.stripes_done,
                        d.rebuild.stripes_total,
                        d.rebuild.eta_secs
                    )
                ));
            }
        }
        let json = serde_json::json!({
            "protection": data.as_ref().map(|d| d.protection.clone()),
            "stripes_by_lost": data.as_ref().map(|d| d.stripes_by_lost.clone()),
            "formed": true,
            "cluster": config.cluster,
            "scheme": format!("{}+{}", config.k, config.m),
            "hot_spares": config.hot_spares,
            "io": config.io.as_str(),
            "leader": leader,
            "members": config.members.len(),
            "drives_active": active,
            "drives_failed": failed,
            "epoch": config.epoch,
            "from": spec.name,
        });
        return Some((parts.join(" · "), json));
    }
    None
}

/// The data plane in two or three lines: protection and stripes by chunks lost, what is
/// away, and the rebuild with its rate and ETA.
fn data_lines(
    d: &crate::dataplane::cluster::protection::DataStatus,
    ok: &[&AgentCluster],
) -> Vec<String> {
    use humansize::{BINARY, format_size};
    let name = |id: &u64| {
        ok.iter()
            .flat_map(|i| i.members.iter())
            .find(|m| m.id == *id)
            .map_or_else(|| id.to_string(), |m| m.name.clone())
    };
    let total: u64 = d.stripes_by_lost.iter().sum();
    let mut by = Vec::new();
    for (i, n) in d.stripes_by_lost.iter().enumerate() {
        if *n == 0 && i > 0 {
            continue;
        }
        let last = i + 1 == d.stripes_by_lost.len();
        by.push(match i {
            0 => format!("{n} whole"),
            _ if last => format!("{n} with more than {} lost (unreadable)", i - 1),
            _ => format!("{n} with {i} lost"),
        });
    }
    let mut out = vec![format!(
        "\nprotection  {} · {total} stripes: {} · {} objects, {}",
        d.protection,
        by.join(", "),
        d.objects,
        format_size(d.bytes, BINARY)
    )];
    if !d.away.is_empty() {
        out.push(format!(
            "away        {}",
            crate::fleet::view::away_words(&d.away, &d.failed, |n| name(&n))
        ));
    }
    if d.lost_chunks > 0 || d.repaired_chunks > 0 {
        out.push(format!(
            "repair      {} chunk(s) lost on failed drives or damaged, {} · {} rewritten",
            d.lost_chunks,
            crate::model::dataplane::repair_words(d),
            d.repaired_chunks
        ));
    }
    if d.orphans_freed > 0 {
        out.push(format!(
            "orphans     {} chunk(s) freed that no manifest placed (failed puts; overwrites, deletes or rebuilds while a node was away)",
            d.orphans_freed
        ));
    }
    let r = &d.rebuild;
    if r.active {
        out.push(format!(
            "rebuild     {}/{} stripes · {} written · {}/s · {}",
            r.stripes_done,
            r.stripes_total,
            format_size(r.bytes, BINARY),
            format_size(r.rate, BINARY),
            crate::model::dataplane::eta_words(r.stripes_done, r.stripes_total, r.eta_secs)
        ));
    } else if r.passes > 0 {
        out.push(format!(
            "rebuild     idle · {} pass(es) done{}",
            r.passes,
            r.last_error
                .as_ref()
                .map(|e| format!(" · last error: {e}"))
                .unwrap_or_default()
        ));
    }
    out
}

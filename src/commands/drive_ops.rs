//! `axon drive deactivate|activate|remove|add`: drive operations on the node that holds
//! the drive (`agent::drive_ops`), found through the cluster's configuration, followed
//! with a progress bar (or JSON lines); Ctrl-C asks the agent to cancel.

use crate::cli::{DriveAddArgs, DriveOpArgs, FleetArgs};
use crate::fleet::inventory::{Inventory, NodeSpec};
use crate::fleet::ops::OpsClient;
use crate::model::ops::{Operation, OperationOutput};
use crate::wire::pb;
use anyhow::{Result, anyhow};
use humansize::{BINARY, format_size};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub enum DriveVerb {
    Deactivate,
    Activate,
    Remove,
}

impl DriveVerb {
    fn word(self) -> &'static str {
        match self {
            DriveVerb::Deactivate => "deactivate",
            DriveVerb::Activate => "activate",
            DriveVerb::Remove => "remove",
        }
    }
}

/// The node holding `drive` by the cluster's configuration (id, or its first 8 digits).
async fn locate(inv: &Inventory, drive: &str) -> Result<(NodeSpec, String)> {
    let mut why = Vec::new();
    for spec in &inv.nodes {
        let mut c = match super::cluster::connect(inv, spec).await {
            Ok(c) => c,
            Err(e) => {
                why.push(e.to_string());
                continue;
            }
        };
        let (info, config) = match c.get().await {
            Ok(i) if i.cluster.is_some() && i.config.is_some() => {
                let config = i.config.clone().unwrap_or_default();
                (i, config)
            }
            Ok(_) => {
                why.push(format!("{}: not a cluster member", spec.name));
                continue;
            }
            Err(e) => {
                why.push(e.to_string());
                continue;
            }
        };
        let hits: Vec<(&String, &crate::model::cluster::DriveRec)> = config
            .drives
            .iter()
            .filter(|(id, _)| *id == drive || (drive.len() >= 8 && id.starts_with(drive)))
            .collect();
        let (id, rec) = match hits.as_slice() {
            [one] => *one,
            [] => {
                return Err(anyhow!(
                    "no drive {drive:?} in the cluster's configuration (`axon drive list` shows them; or name the node with --node and the drive by number or file name)"
                ));
            }
            _ => {
                return Err(anyhow!(
                    "{drive:?} names {} drives: give more digits",
                    hits.len()
                ));
            }
        };
        let name = info
            .members
            .iter()
            .find(|m| m.id == rec.node)
            .map(|m| m.name.clone())
            .ok_or_else(|| anyhow!("drive {id} is on node {} which is not a member", rec.node))?;
        let node = inv
            .nodes
            .iter()
            .find(|n| n.name == name)
            .cloned()
            .ok_or_else(|| anyhow!("drive {id} is on {name}, which the inventory does not list"))?;
        return Ok((node, id.clone()));
    }
    Err(anyhow!(
        "no agent answered as a cluster member (of those --inventory or --hosts names):\n  {}",
        why.join("\n  ")
    ))
}

fn spec_named(inv: &Inventory, name: &str) -> Result<NodeSpec> {
    inv.nodes
        .iter()
        .find(|n| n.name == name)
        .cloned()
        .ok_or_else(|| anyhow!("--node {name}: no such node in the inventory"))
}

pub async fn run(a: DriveOpArgs, verb: DriveVerb) -> Result<i32> {
    use pb::start_operation_request::Kind;
    let inv = super::inventory(&a.fleet)?;
    let (spec, drive) = match &a.node {
        Some(n) => (spec_named(&inv, n)?, a.drive.clone()),
        None => locate(&inv, &a.drive).await?,
    };
    let d = pb::DriveSpec {
        drive,
        dry_run: a.dry_run,
        rate: a.rate,
        size: 0,
        force: false,
    };
    let kind = match verb {
        DriveVerb::Deactivate => Kind::DriveDeactivate(d),
        DriveVerb::Activate => Kind::DriveActivate(d),
        DriveVerb::Remove => Kind::DriveRemove(d),
    };
    follow(&inv, &a.fleet, &spec, kind, verb.word(), a.json).await
}

pub async fn add(a: DriveAddArgs) -> Result<i32> {
    let inv = super::inventory(&a.fleet)?;
    let spec = spec_named(&inv, &a.node)?;
    let kind = pb::start_operation_request::Kind::DriveAdd(pb::DriveSpec {
        drive: a.path.display().to_string(),
        dry_run: a.dry_run,
        rate: a.rate,
        size: a.size.unwrap_or(0),
        force: a.force,
    });
    follow(&inv, &a.fleet, &spec, kind, "add", a.json).await
}

/// Starts the operation on `spec`'s agent and follows it to the end.
async fn follow(
    inv: &Inventory,
    _fleet: &FleetArgs,
    spec: &NodeSpec,
    kind: pb::start_operation_request::Kind,
    verb: &str,
    json: bool,
) -> Result<i32> {
    let tokens = inv.load_tokens()?;
    let token = spec
        .token_file
        .as_ref()
        .and_then(|p| tokens.get(p).cloned());
    let security = inv.security(spec)?;
    let mut c = match OpsClient::connect(spec, token, security, Duration::from_secs(5)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("axon drive {verb}: {e}");
            return Ok(3);
        }
    };
    let op = match c.start(kind).await {
        Ok(op) => op,
        Err(e) => {
            eprintln!("axon drive {verb}: {e}");
            return Ok(3);
        }
    };
    if !json {
        eprintln!("drive {verb}: operation {} on {}", op.id, c.node);
    }
    let bar = (!json).then(|| super::io::bar(None, verb));
    let mut w = c.watch(&op.id).await?;
    let mut seen_log = 0usize;
    let mut last: Operation = op;
    let mut asked = false;
    loop {
        let next = tokio::select! {
            o = w.next() => o?,
            _ = tokio::signal::ctrl_c(), if !asked => {
                asked = true;
                if let Some(b) = &bar {
                    b.println("cancelling: the agent stops after the chunk in hand (Ctrl-C again stops following)");
                }
                let _ = c.cancel(&last.id).await;
                continue;
            }
        };
        let Some(o) = next else { break };
        if json {
            println!("{}", serde_json::to_string(&o)?);
        } else if let Some(b) = &bar {
            for l in o.log.iter().skip(seen_log) {
                b.println(format!("  {}", l.text));
            }
            if let Some((done, total)) = o.step.bytes {
                b.set_length(total.max(1));
                b.set_position(done);
            }
            b.set_message(format!("{} {}/{}", o.step.name, o.step.done, o.step.total));
        }
        seen_log = o.log.len();
        last = o;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !json {
        if let Some(OperationOutput::Drive(d)) = &last.output
            && d.chunks > 0
        {
            eprintln!(
                "  {} chunk(s), {} on the drive; {} moved ({})",
                d.chunks,
                format_size(d.bytes, BINARY),
                d.moved_chunks,
                format_size(d.moved_bytes, BINARY)
            );
        }
        match (&last.output, &last.summary) {
            // A dry run that found its real run would be refused: says so (it exits as
            // the real run would).
            (Some(OperationOutput::Drive(d)), Some(summary))
                if d.dry_run && !d.refusals.is_empty() =>
            {
                println!("drive {verb}: {summary}")
            }
            _ => super::cluster::print_end(&format!("drive {verb}"), &last),
        }
    }
    Ok(super::cluster::exit_code(last.state))
}

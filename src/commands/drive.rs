//! `axon drive format|info`: data-plane drives (`dataplane::drive`).

use super::drive_ops::DriveVerb;
use crate::cli::{DriveCommand, DriveFormatArgs, DriveInfoArgs};
use crate::dataplane::drive::{self, DriveState, FormatOptions, Superblock};
use anyhow::Result;
use serde_json::json;

pub async fn exec(c: DriveCommand) -> Result<i32> {
    match c {
        DriveCommand::Format(a) => format(a),
        DriveCommand::Info(a) => info(a),
        DriveCommand::List(a) => super::cluster::drive_list(a).await,
        DriveCommand::Deactivate(a) => super::drive_ops::run(a, DriveVerb::Deactivate).await,
        DriveCommand::Activate(a) => super::drive_ops::run(a, DriveVerb::Activate).await,
        DriveCommand::Remove(a) => super::drive_ops::run(a, DriveVerb::Remove).await,
        DriveCommand::Add(a) => super::drive_ops::add(a).await,
    }
}

/// What a superblock's state means. A store writes it when the drive joins (ACTIVE or
/// PHASING_IN) and when it leaves (INACTIVE or FAILED, `axon drive remove`); `axon drive
/// format` writes INACTIVE. While the drive is in a store its state changes in the store's
/// index only, so a state of a drive in service is the one it joined with: say so.
fn state_note(sb: &Superblock) -> Option<&'static str> {
    matches!(
        sb.state,
        DriveState::Active | DriveState::PhasingIn | DriveState::PhasingOut
    )
    .then_some(
        "as written when the drive joined its store: the store's index holds its current state (`axon drive list`); a drive taken out while unreachable still says this",
    )
}

fn to_json(sb: &Superblock, size: u64, warning: Option<&str>) -> serde_json::Value {
    json!({
        "format_version": sb.version,
        "cluster": sb.cluster.to_string(),
        "drive": sb.drive.to_string(),
        "chunk_size": sb.chunk_size,
        "slots": sb.slots,
        "state": sb.state.as_str(),
        "state_note": state_note(sb),
        "generation": sb.generation,
        "size": size,
        "warning": warning,
    })
}

fn print(path: &std::path::Path, sb: &Superblock, size: u64, warning: Option<&str>, json: bool) {
    if json {
        println!("{}", to_json(sb, size, warning));
        return;
    }
    println!("{}", path.display());
    println!("  cluster     {}", sb.cluster);
    println!("  drive       {}", sb.drive);
    println!("  state       {}", sb.state.as_str());
    if let Some(n) = state_note(sb) {
        println!("              ({n})");
    }
    println!(
        "  slots       {} × {} chunks ({} of {})",
        sb.slots,
        humansize::format_size(sb.chunk_size, humansize::BINARY),
        humansize::format_size(sb.slots * u64::from(sb.chunk_size), humansize::BINARY),
        humansize::format_size(size, humansize::BINARY)
    );
    println!(
        "  format      v{} (superblock generation {})",
        sb.version, sb.generation
    );
    if let Some(w) = warning {
        println!("  WARNING     {w}");
    }
}

fn format(a: DriveFormatArgs) -> Result<i32> {
    let chunk_size = u32::try_from(a.chunk_size).unwrap_or(u32::MAX);
    let (cluster, new_cluster) = match a.cluster {
        Some(c) => (c, false),
        None => (uuid::Uuid::new_v4(), true),
    };
    let sb = drive::format(
        &a.path,
        &FormatOptions {
            size: a.size,
            chunk_size,
            cluster,
            force: a.force,
        },
    )?;
    let opened = drive::open(&a.path)?;
    print(&a.path, &sb, opened.size, None, a.json);
    if new_cluster && !a.json {
        eprintln!(
            "axon drive: a new cluster id; format the cluster's other drives with --cluster {cluster}"
        );
    }
    Ok(0)
}

fn info(a: DriveInfoArgs) -> Result<i32> {
    let o = drive::open(&a.path)?;
    print(&a.path, &o.superblock, o.size, o.warning.as_deref(), a.json);
    Ok(if o.warning.is_some() { 1 } else { 0 })
}

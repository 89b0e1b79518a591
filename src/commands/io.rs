//! `axon io …`: the data plane's storage engine on this node (`dataplane::store`).

use crate::cli::{
    DirectArgs, IoAddDriveArgs, IoCommand, IoCreateArgs, IoGetArgs, IoKeyArgs, IoLsArgs, IoPutArgs,
    IoScrubArgs, IoStoreArgs,
};
use crate::dataplane::drive::{self, FormatOptions};
use crate::dataplane::ec::Scheme;
use crate::dataplane::store::{Status, Store};
use anyhow::{Context, Result};
use humansize::{BINARY, format_size};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Read, Write};
use std::time::Instant;

/// `--direct` talks to a cluster's members: without one named it would quietly do
/// nothing different on the local store.
fn local(direct: &DirectArgs) -> Result<()> {
    if direct.direct {
        anyhow::bail!(
            "--direct runs a frontend over the cluster's members: name them with --inventory FILE or --hosts HOSTLIST (a store on this machine is read and written directly already)"
        );
    }
    Ok(())
}

pub async fn exec(c: IoCommand) -> Result<i32> {
    use super::objects;
    match c {
        IoCommand::Create(a) => create(a),
        IoCommand::AddDrive(a) => add_drive(a),
        IoCommand::Put(a) => match a.cluster.fleet() {
            Some(f) => objects::put(a, f).await,
            None => on_store(
                a.store.store.clone(),
                local(&a.direct).and_then(|()| put(a)),
            ),
        },
        IoCommand::Get(a) => match a.cluster.fleet() {
            Some(f) => objects::get(a, f).await,
            None => on_store(
                a.store.store.clone(),
                local(&a.direct).and_then(|()| get(a)),
            ),
        },
        IoCommand::Rm(a) => match a.cluster.fleet() {
            Some(f) => objects::rm(a, f).await,
            None => on_store(a.store.store.clone(), local(&a.direct).and_then(|()| rm(a))),
        },
        IoCommand::Ls(a) => match a.cluster.fleet() {
            Some(f) => objects::ls(a, f).await,
            None => on_store(a.store.store.clone(), local(&a.direct).and_then(|()| ls(a))),
        },
        IoCommand::Status(a) => status(a),
        IoCommand::Scrub(a) => scrub(a),
        IoCommand::Bench(a) => match a.cluster.fleet() {
            Some(f) => objects::bench(a, f).await,
            None => anyhow::bail!(
                "axon io bench loads a cluster: name its agents with --inventory FILE or --hosts HOSTLIST"
            ),
        },
    }
}

/// An object verb without --inventory or --hosts works on the store at `dir`; when there
/// is none, the error also says how to reach a cluster instead.
fn on_store(dir: std::path::PathBuf, r: Result<i32>) -> Result<i32> {
    r.map_err(|e| {
        if dir.join(crate::dataplane::store::DB_FILE).exists() {
            e
        } else {
            e.context(format!(
                "without --inventory or --hosts, `axon io put/get/rm/ls` work on one node's store (--store, here {}); to reach a cluster, pass --inventory FILE or --hosts HOSTLIST",
                dir.display()
            ))
        }
    })
}

fn open(a: &IoStoreArgs) -> Result<Store> {
    let s = Store::open(&a.store)?;
    let r = s.recovery();
    // What opening found goes to stderr for every verb: an operator must not miss it.
    if !a.json {
        for u in &r.unavailable {
            eprintln!("axon io: drive unavailable: {u}");
        }
        for m in &r.mismatches {
            eprintln!("axon io: {m}");
        }
        for w in &r.warnings {
            eprintln!("axon io: {w}");
        }
        if r.orphans_freed > 0 {
            eprintln!(
                "axon io: freed {} orphaned chunks (written by a write that never committed)",
                r.orphans_freed
            );
        }
    }
    Ok(s)
}

/// A byte progress bar on a terminal for anything that may take over a second.
pub(crate) fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    b.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes}  {binary_bytes_per_sec}  {elapsed}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    b.set_prefix(what.to_string());
    b
}

fn create(a: IoCreateArgs) -> Result<i32> {
    let scheme = Scheme::for_store(a.scheme.0, a.scheme.1)?;
    let chunk_size = u32::try_from(a.chunk_size).unwrap_or(u32::MAX);
    let cluster = a.cluster.unwrap_or_else(uuid::Uuid::new_v4);
    let dir = &a.store.store;
    let mut s = Store::create(dir, cluster, scheme, chunk_size)?;
    let mut paths = a.drive_paths.clone();
    if a.drives > 0 {
        let ddir = dir.join("drives");
        std::fs::create_dir_all(&ddir).with_context(|| format!("{}", ddir.display()))?;
        for i in 0..a.drives {
            let p = ddir.join(format!("drive{i:02}"));
            drive::format(
                &p,
                &FormatOptions {
                    size: Some(a.drive_size),
                    chunk_size,
                    cluster,
                    force: false,
                },
            )?;
            paths.push(p);
        }
    }
    for p in &paths {
        s.add_drive(p, false)?;
    }
    let st = s.status()?;
    if a.store.json {
        println!("{}", serde_json::to_string(&st)?);
    } else {
        println!(
            "created store {} (cluster {cluster}, {}+{}, {} chunks) with {} drives",
            dir.display(),
            scheme.k,
            scheme.m,
            format_size(chunk_size, BINARY),
            st.drives.len()
        );
        if st.drives.len() < scheme.chunks() {
            println!(
                "  a stripe needs {} drives: add {} more with `axon io add-drive`",
                scheme.chunks(),
                scheme.chunks() - st.drives.len()
            );
        }
    }
    Ok(0)
}

fn add_drive(a: IoAddDriveArgs) -> Result<i32> {
    let mut s = open(&a.store)?;
    for p in &a.paths {
        let id = s.add_drive(p, a.force)?;
        if !a.store.json {
            println!("added {} (drive {id})", p.display());
        }
    }
    if a.store.json {
        println!("{}", serde_json::to_string(&s.status()?)?);
    }
    Ok(0)
}

struct Counting<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn put(a: IoPutArgs) -> Result<i32> {
    let mut s = open(&a.store)?;
    let began = Instant::now();
    let report = match a.file.as_deref().filter(|p| p.as_os_str() != "-") {
        Some(p) => {
            let f = open_input(p)?;
            let b = bar(f.metadata().ok().map(|m| m.len()), "put");
            let r = s.put_from(&a.key, &mut Counting { inner: f, bar: &b });
            b.finish_and_clear();
            r?
        }
        None => {
            let b = bar(None, "put");
            let r = s.put_from(
                &a.key,
                &mut Counting {
                    inner: std::io::stdin().lock(),
                    bar: &b,
                },
            );
            b.finish_and_clear();
            r?
        }
    };
    let secs = began.elapsed().as_secs_f64();
    if a.store.json {
        println!(
            "{}",
            json!({"key": a.key, "bytes": report.bytes, "stripes": report.stripes, "seconds": secs,
                   "write_seconds": report.write.as_secs_f64(), "sync_seconds": report.sync.as_secs_f64(),
                   "commit_seconds": report.commit.as_secs_f64()})
        );
    } else {
        eprintln!(
            "stored {} ({}) in {} stripes, {:.2} s ({}/s)",
            a.key,
            format_size(report.bytes, BINARY),
            report.stripes,
            secs,
            format_size((report.bytes as f64 / secs.max(1e-9)) as u64, BINARY)
        );
    }
    Ok(0)
}

struct CountingW<'a, W> {
    inner: W,
    bar: &'a ProgressBar,
}

impl<W: Write> Write for CountingW<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The input file of a put, or an error naming it as the operator gave it.
pub(super) fn open_input(p: &std::path::Path) -> Result<std::fs::File> {
    let f = std::fs::File::open(p)
        .with_context(|| format!("cannot read the input file {}", p.display()))?;
    // A directory opens, and fails only at the first read, without its name.
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        anyhow::bail!(
            "cannot read the input file {}: it is a directory — name a file, or - for standard input",
            p.display()
        );
    }
    Ok(f)
}

/// Where a get writes `p`: a regular file (or a new one) goes through a temporary file
/// beside it (`.NAME.axon-get-PID`), renamed over it once every byte came, so an error
/// never leaves a partial file at `p` — returned as (temporary, target). A character
/// device, a FIFO or a terminal (`/dev/null`, `/dev/stdout`) is written in place:
/// renaming over it would replace the device with a file. A block device (maybe a drive
/// in service) and a directory are refused. A symbolic link is followed, so the link
/// stays. An error names `p`, not the temporary file, and a missing directory as such.
pub(super) type Renamed = Option<(std::path::PathBuf, std::path::PathBuf)>;

pub(super) fn temp_output(p: &std::path::Path) -> Result<(Renamed, std::fs::File)> {
    use std::os::unix::fs::FileTypeExt;
    // Following a link: `/dev/stdout` into a pipe names a pipe, not a file.
    let target = match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => anyhow::bail!("cannot write {}: it is a directory", p.display()),
        Ok(m) if m.file_type().is_block_device() => anyhow::bail!(
            "will not write an object onto the block device {} (it may be a drive in service): name a file",
            p.display()
        ),
        Ok(m) if !m.is_file() => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("cannot write {}", p.display()))?;
            return Ok((None, f));
        }
        // A regular file behind a link: replaced where it is, the link stays.
        Ok(_) if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) => {
            std::fs::canonicalize(p).with_context(|| format!("cannot write {}", p.display()))?
        }
        Ok(_) => p.to_path_buf(),
        Err(_) if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) => {
            anyhow::bail!("cannot write {}: a broken symbolic link", p.display())
        }
        Err(_) => p.to_path_buf(),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "object".into());
    let tmp = target.with_file_name(format!(".{name}.axon-get-{}", std::process::id()));
    match std::fs::File::create(&tmp) {
        Ok(f) => Ok((Some((tmp, target)), f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = target
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            anyhow::bail!(
                "cannot write {}: the directory {} does not exist",
                p.display(),
                dir.display()
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot write {}", p.display())),
    }
}

/// The end of a get into `temp_output`'s file: made durable and renamed over its target
/// when it went through a temporary file; removed on `failed`.
pub(super) fn finish_output(renamed: &Renamed, failed: bool) -> Result<()> {
    let Some((tmp, target)) = renamed else {
        return Ok(());
    };
    if failed {
        let _ = std::fs::remove_file(tmp);
        return Ok(());
    }
    let r = std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(tmp, target))
        .with_context(|| format!("cannot write {}", target.display()));
    if r.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    r
}

fn get(a: IoGetArgs) -> Result<i32> {
    let mut s = open(&a.store)?;
    let size = s
        .list()?
        .into_iter()
        .find(|(k, _, _)| *k == a.key)
        .map(|(_, n, _)| n);
    // Not found: said before any output is opened (exit 1, as for the cluster).
    if size.is_none() {
        eprintln!(
            "axon io get: no object {:?} in {}",
            a.key,
            a.store.store.display()
        );
        return Ok(super::objects::EXIT_NOT_FOUND);
    }
    let b = bar(size, "get");
    let report = match a.output.as_deref().filter(|p| p.as_os_str() != "-") {
        // Into a temporary file beside the target, renamed over it only when every stripe
        // was read: an error never leaves a truncated or partial file behind.
        Some(p) => {
            let (renamed, f) = temp_output(p)?;
            let mut w = CountingW {
                inner: std::io::BufWriter::new(f),
                bar: &b,
            };
            let r = s
                .get_to(&a.key, &mut w)
                .map_err(anyhow::Error::from)
                .and_then(|r| {
                    w.inner.into_inner().map_err(|e| e.into_error())?;
                    finish_output(&renamed, false)?;
                    Ok(r)
                });
            if r.is_err() {
                finish_output(&renamed, true)?;
            }
            r
        }
        // Standard output streams stripe by stripe: on an error what was written stays,
        // and the exit code (3) says the object is incomplete.
        None => {
            let mut w = CountingW {
                inner: std::io::stdout().lock(),
                bar: &b,
            };
            let r = s.get_to(&a.key, &mut w).map_err(anyhow::Error::from);
            r.and_then(|r| {
                w.flush()?;
                Ok(r)
            })
        }
    };
    b.finish_and_clear();
    let report = report?;
    // One line per distinct cause ("chunk 3: drive03 unavailable" and "chunk 5: drive03
    // unavailable" are one cause), not one per chunk.
    let mut causes: Vec<(String, usize)> = Vec::new();
    for p in &report.problems {
        let cause = p
            .split_once(": ")
            .map_or(p.as_str(), |(_, c)| c)
            .to_string();
        match causes.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, n)) => *n += 1,
            None => causes.push((cause, 1)),
        }
    }
    for (c, n) in &causes {
        eprintln!("axon io: rebuilt {n} chunk(s) from parity: {c}");
    }
    if report.degraded_stripes > 0 {
        eprintln!(
            "axon io: {} of {} stripes were degraded; run `axon io scrub` to repair them",
            report.degraded_stripes, report.stripes
        );
    }
    Ok(0)
}

fn rm(a: IoKeyArgs) -> Result<i32> {
    let mut s = open(&a.store)?;
    match s.delete(&a.key) {
        Ok(()) => {}
        Err(crate::dataplane::store::StoreError::NotFound(_)) => {
            eprintln!(
                "axon io rm: no object {:?} in {}",
                a.key,
                a.store.store.display()
            );
            return Ok(super::objects::EXIT_NOT_FOUND);
        }
        Err(e) => return Err(e.into()),
    }
    removed(&a.key, a.store.json, a.store.store.display());
    Ok(0)
}

/// What `axon io rm` says once KEY is gone: a line, or JSON with --json.
pub(super) fn removed(key: &str, json: bool, from: impl std::fmt::Display) {
    if json {
        println!(
            "{}",
            json!({"key": key, "removed": true, "via": from.to_string()})
        );
    } else {
        eprintln!("removed {key} (via {from})");
    }
}

fn ls(a: IoLsArgs) -> Result<i32> {
    let s = open(&a.store)?;
    let list: Vec<_> = s
        .list()?
        .into_iter()
        .filter(|(k, _, _)| k.starts_with(&a.prefix))
        .collect();
    // The same shape as the cluster's (`{"objects": [...]}`).
    if a.store.json {
        let v: Vec<_> = list
            .iter()
            .map(|(k, n, st)| json!({"key": k, "size": n, "stripes": st}))
            .collect();
        println!("{}", json!({"objects": v}));
    } else {
        for (k, n, st) in &list {
            println!("{:>12}  {:>5} stripes  {k}", format_size(*n, BINARY), st);
        }
    }
    Ok(0)
}

fn exit_code(st: &Status) -> i32 {
    match st.protection {
        "OK" => 0,
        "PARTIALLY_PROTECTED" => 1,
        _ => 2,
    }
}

fn status(a: IoStoreArgs) -> Result<i32> {
    let s = open(&a)?;
    let st = s.status()?;
    let degraded = s.degraded()?;
    if a.json {
        let mut v = serde_json::to_value(&st)?;
        v["degraded"] = serde_json::to_value(&degraded)?;
        println!("{v}");
        return Ok(exit_code(&st));
    }
    println!("store       {}", a.store.display());
    println!("cluster     {}", st.cluster);
    println!(
        "scheme      {} ({} chunks)",
        st.scheme,
        format_size(st.chunk_size, BINARY)
    );
    println!("protection  {}", st.protection);
    let lost: Vec<String> = st
        .stripes_by_lost
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| **n > 0)
        .map(|(l, n)| format!("{n} missing {l}"))
        .collect();
    println!(
        "objects     {} in {} stripes{}",
        st.objects,
        st.stripes,
        if lost.is_empty() {
            String::new()
        } else {
            format!(" ({})", lost.join(", "))
        }
    );
    println!("drives");
    for d in &st.drives {
        println!(
            "  {:<12} {:>6}/{:<6} slots  {}{}",
            d.state,
            d.used,
            d.slots,
            d.path.display(),
            match (&d.problem, d.direct_io) {
                (Some(p), _) => format!("  UNAVAILABLE: {p}"),
                (None, false) => "  (buffered I/O: the filesystem refuses O_DIRECT)".into(),
                _ => String::new(),
            }
        );
    }
    for d in degraded.iter().take(20) {
        println!(
            "  stripe {} of {:?}: {} lost — {}",
            d.stripe,
            d.key,
            d.lost,
            d.why.join("; ")
        );
    }
    if degraded.len() > 20 {
        println!("  … and {} more degraded stripes", degraded.len() - 20);
    }
    Ok(exit_code(&st))
}

fn scrub(a: IoScrubArgs) -> Result<i32> {
    let mut s = open(&a.store)?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let total = s.stripe_ids()?.len() as u64;
    let b = if std::io::stderr().is_terminal() && !a.store.json {
        let b = ProgressBar::new(total.max(1));
        b.set_style(
            ProgressStyle::with_template(
                "scrub [{bar:30}] {pos}/{len} stripes  {elapsed}  {wide_msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let rate = (a.rate > 0).then_some(a.rate);
    let stats = s.scrub(rate, &stop, &mut |done, _, st| {
        b.set_position(done);
        b.set_message(format!(
            "{} read, {} bad, {} repaired",
            format_size(st.bytes_read, BINARY),
            st.found,
            st.repaired
        ));
    })?;
    b.finish_and_clear();
    let st = s.status()?;
    if a.store.json {
        println!(
            "{}",
            json!({"scrub": stats, "protection": st.protection, "stripes_by_lost": st.stripes_by_lost})
        );
    } else {
        println!(
            "scrubbed {} stripes ({} chunks, {}): {} bad, {} repaired, {} unrepairable; protection {}",
            stats.stripes_checked,
            stats.chunks_checked,
            format_size(stats.bytes_read, BINARY),
            stats.found,
            stats.repaired,
            stats.unrepairable,
            st.protection
        );
    }
    Ok(if stats.unrepairable > 0 {
        2
    } else {
        exit_code(&st)
    })
}

//! The audit trail of mutating calls: one JSON line per call (allowed or refused) appended
//! to `<state-dir>/audit.jsonl` (mode 0600) and printed to the log. The policy layer
//! (`policy`) writes the records; a failed write is logged and never fails the call.

use super::auth::Principal;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

/// The longest line written, newline included. At most PIPE_BUF, so one `write(2)` with
/// O_APPEND lands whole even when two agents share the file.
pub const MAX_LINE: usize = 4096;

/// Budgets of the free-text fields, in bytes of their JSON form (quotes and escapes
/// included); with the fixed fields they stay well under `MAX_LINE`.
const RPC_BUDGET: usize = 256;
const NAME_BUDGET: usize = 128;
const SOURCE_BUDGET: usize = 128;
const TARGET_BUDGET: usize = 1024;
const MESSAGE_BUDGET: usize = 1536;

/// Records queued for the writer thread; beyond this a record only reaches the log.
const QUEUE: usize = 1024;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler answered OK.
    Ok,
    /// The policy layer refused the call (no or bad credentials, not allowed, no rule).
    Refused,
    /// The handler ran and answered with an error (or the caller went away).
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// One audited call.
#[derive(Debug, Clone)]
pub struct Record {
    /// None when the caller did not authenticate.
    pub principal: Option<Principal>,
    pub source: String,
    /// The gRPC path, `/axon.v1.ControlService/ProbePorts`.
    pub rpc: String,
    /// What the call was aimed at (the peers of a probe); None when the request was not
    /// read (a refused call) or the RPC names no target.
    pub target: Option<String>,
    pub outcome: Outcome,
    pub code: tonic::Code,
    pub message: String,
    pub duration: Duration,
}

impl Record {
    /// The record as one JSON line (without the newline), at most `MAX_LINE - 1` bytes.
    pub fn to_line(&self, time: chrono::DateTime<chrono::Utc>) -> String {
        // A struct, not json!(), so the fields keep this order in the file.
        #[derive(serde::Serialize)]
        struct Line<'a> {
            time: String,
            principal: Option<String>,
            role: Option<&'a str>,
            org: Option<String>,
            source: String,
            rpc: String,
            target: Option<String>,
            result: &'a str,
            code: String,
            message: String,
            duration_ms: f64,
        }
        let p = self.principal.as_ref();
        let line = Line {
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            principal: p.map(|p| clip(&p.name, NAME_BUDGET)),
            role: p.map(|p| p.role.as_str()),
            org: p
                .and_then(|p| p.org.as_deref())
                .map(|o| clip(o, NAME_BUDGET)),
            source: clip(&self.source, SOURCE_BUDGET),
            rpc: clip(&self.rpc, RPC_BUDGET),
            target: self.target.as_deref().map(|t| clip(t, TARGET_BUDGET)),
            result: self.outcome.as_str(),
            code: format!("{:?}", self.code),
            message: clip(&self.message, MESSAGE_BUDGET),
            duration_ms: (self.duration.as_micros() as f64) / 1000.0,
        };
        // Strings, options and a finite number: serialising cannot fail.
        serde_json::to_string(&line).unwrap_or_else(|_| "{}".into())
    }
}

/// `s` cut (on a character boundary, marked with `…`) so that its JSON string form,
/// quotes and escapes included, takes at most `budget` bytes.
fn clip(s: &str, budget: usize) -> String {
    let json_len = |c: char| match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    };
    let total: usize = 2 + s.chars().map(json_len).sum::<usize>();
    if total <= budget {
        return s.to_string();
    }
    let room = budget.saturating_sub(2 + '…'.len_utf8());
    let mut used = 0;
    let mut out = String::new();
    for c in s.chars() {
        used += json_len(c);
        if used > room {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// Appends one line to the audit file: created mode 0600 on first use, never through a
/// symlink, tightened to 0600 if someone loosened it. Opened per record, so a rotated
/// file (logrotate's create or copytruncate) is picked up at the next record.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let mode = f.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tracing::warn!(
            "axon: audit: {} was mode {mode:o}; set it to 600",
            path.display()
        );
    }
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf)
}

/// The agent's audit trail. Records are written by a thread of their own (started with
/// the first record), so a slow or hung state directory never holds up an RPC.
pub struct AuditLog {
    path: PathBuf,
    tx: OnceLock<SyncSender<String>>,
}

impl AuditLog {
    pub fn new(path: PathBuf) -> Self {
        AuditLog {
            path,
            tx: OnceLock::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs the record and queues it for the file.
    pub fn record(&self, rec: &Record) {
        let line = rec.to_line(chrono::Utc::now());
        tracing::info!("axon: audit {line}");
        let tx = self.tx.get_or_init(|| self.spawn_writer());
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::warn!(
                "axon: audit: {} is {QUEUE} records behind; the record above is only in the log",
                self.path.display()
            ),
            Err(TrySendError::Disconnected(_)) => tracing::warn!(
                "axon: audit: the writer of {} has stopped; the record above is only in the log",
                self.path.display()
            ),
        }
    }

    fn spawn_writer(&self) -> SyncSender<String> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(QUEUE);
        let path = self.path.clone();
        let spawned = std::thread::Builder::new()
            .name("axon-audit".into())
            .spawn(move || {
                // Say so when writing starts failing, and when it works again; not per record.
                let mut failing = false;
                for line in rx {
                    match append_line(&path, &line) {
                        Ok(()) => {
                            if std::mem::replace(&mut failing, false) {
                                tracing::info!("axon: audit: writing {} again", path.display());
                            }
                        }
                        Err(e) => {
                            if !std::mem::replace(&mut failing, true) {
                                tracing::warn!(
                                    "axon: audit: cannot append to {}: {e} — records go to the log only until it is writable (check --state-dir)",
                                    path.display()
                                );
                            }
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(
                "axon: audit: cannot start the writer thread: {e}; records go to the log only"
            );
        }
        // With no thread, rx is dropped and every send reports Disconnected.
        tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::auth::Role;

    fn record(target: &str, message: &str) -> Record {
        Record {
            principal: Some(Principal {
                name: "admin token".into(),
                role: Role::Admin,
                org: None,
                source: "192.0.2.1:5000".into(),
            }),
            source: "192.0.2.1:5000".into(),
            rpc: "/axon.v1.ControlService/ProbePorts".into(),
            target: Some(target.into()),
            outcome: Outcome::Ok,
            code: tonic::Code::Ok,
            message: message.into(),
            duration: Duration::from_micros(1500),
        }
    }

    #[test]
    fn audit_lines_are_bounded_json_whatever_the_input() {
        let now = chrono::Utc::now();
        let nasty = [
            "a".repeat(100_000),
            "\u{1}".repeat(50_000),
            "\"\\".repeat(40_000),
            "é✓𝄞".repeat(30_000),
        ];
        for t in &nasty {
            for m in &nasty {
                let mut r = record(t, m);
                r.rpc = t.clone();
                r.source = m.clone();
                let line = r.to_line(now);
                assert!(line.len() < MAX_LINE, "{} bytes", line.len());
                assert!(!line.contains('\n'));
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                assert!(v["target"].as_str().unwrap().ends_with('…'));
            }
        }
        let short = record("peers 10.0.0.[1-4]", "").to_line(now);
        let v: serde_json::Value = serde_json::from_str(&short).unwrap();
        assert_eq!(v["target"], "peers 10.0.0.[1-4]");
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["org"], serde_json::Value::Null);
    }

    #[test]
    fn the_audit_file_is_created_0600_and_appended() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        append_line(&p, "{\"a\":1}").unwrap();
        append_line(&p, "{\"a\":2}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        // Loosened by someone: tightened at the next record.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        append_line(&p, "{}").unwrap();
        assert_eq!(mode(&p), 0o600);
        // Never written through a symlink.
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(append_line(&link, "{}").is_err());
    }

    #[test]
    fn an_unwritable_audit_file_costs_the_caller_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: every append fails.
        let p = dir.path().join("audit.jsonl");
        std::fs::create_dir(&p).unwrap();
        let log = AuditLog::new(p.clone());
        for _ in 0..3 {
            log.record(&record("x", ""));
        }
        assert!(p.is_dir());
    }
}

//! Operations: every change to a cluster (a full port probe today; install, start-io,
//! drive replacement and rebuild later) is one of these. An operation has an id, a kind, a
//! target, typed steps with progress, log lines and a typed result, and can be cancelled.
//! Agents run the long ones and keep them after the caller goes away; the console, the
//! CLI and the tests follow them through the same type.

use serde::{Deserialize, Serialize};

/// Log lines kept per operation (the oldest go first, with a note of how many went).
pub const MAX_LOG_LINES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationKind {
    /// Every port of the chosen groups from one node to its peers.
    PortProbe,
    /// The data-plane cluster's IO: STOPPED → STARTING → STARTED, after its checks.
    StartIo,
    /// The data-plane cluster's IO back to STOPPED.
    StopIo,
    /// A drive phased out: its chunks moved to the node's other drives, then INACTIVE.
    DriveDeactivate,
    /// A drive back in service (ACTIVE).
    DriveActivate,
    /// An INACTIVE or FAILED drive taken out of its store.
    DriveRemove,
    /// A new drive formatted and added to a store.
    DriveAdd,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::PortProbe => "port-probe",
            OperationKind::StartIo => "start-io",
            OperationKind::StopIo => "stop-io",
            OperationKind::DriveDeactivate => "drive-deactivate",
            OperationKind::DriveActivate => "drive-activate",
            OperationKind::DriveRemove => "drive-remove",
            OperationKind::DriveAdd => "drive-add",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl OperationState {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Running => "running",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
            OperationState::Cancelled => "cancelled",
        }
    }

    pub fn finished(self) -> bool {
        self != OperationState::Running
    }
}

/// Where an operation is: the current step's name and progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub done: u64,
    pub total: u64,
    /// Bytes moved so far and in all, for steps that move data (rebuild, install).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at_ms: i64,
    pub text: String,
}

/// What a finished operation produced, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OperationOutput {
    PortProbe {
        /// Every probe made, with the blocked ones listed.
        report: crate::model::probes::ProbeReport,
    },
    /// start-io / stop-io: the IO status reached, and what kept IO from starting.
    Io {
        status: String,
        blockers: Vec<String>,
    },
    /// A drive operation: the preview, what moved, the state it ended in.
    Drive(DriveOutcome),
}

/// What a drive operation saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveOutcome {
    pub drive: String,
    pub path: String,
    pub state: String,
    pub chunks: u64,
    pub bytes: u64,
    pub capacity: u64,
    pub others_free: u64,
    pub moved_chunks: u64,
    pub moved_bytes: u64,
    pub dry_run: bool,
    pub refusals: Vec<String>,
    /// Of `bytes`, what the node's other drives cannot hold: moved to other members.
    #[serde(default)]
    pub to_other_nodes: u64,
    /// Chunks moved to other members (counted in `moved_chunks` too).
    #[serde(default)]
    pub moved_to_other_nodes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Unique on its agent: `<kind>-<node>-<sequence>`.
    pub id: String,
    pub kind: OperationKind,
    /// What it acts on, in words (`axon01 → axon[02-08] (core,ssh)`).
    pub target: String,
    /// Who started it (the policy layer's principal name).
    pub principal: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub state: OperationState,
    pub step: Step,
    pub log: Vec<LogLine>,
    /// Log lines dropped to keep `MAX_LOG_LINES`.
    #[serde(default)]
    pub log_dropped: u64,
    /// One line on how it ended (set when finished).
    pub summary: Option<String>,
    /// Why it failed (set when state is Failed).
    pub error: Option<String>,
    pub output: Option<OperationOutput>,
}

impl Operation {
    pub fn new(
        id: String,
        kind: OperationKind,
        target: String,
        principal: String,
        started_ms: i64,
    ) -> Self {
        Operation {
            id,
            kind,
            target,
            principal,
            started_ms,
            finished_ms: None,
            state: OperationState::Running,
            step: Step::default(),
            log: Vec::new(),
            log_dropped: 0,
            summary: None,
            error: None,
            output: None,
        }
    }

    /// Appends a log line, dropping the oldest beyond `MAX_LOG_LINES`.
    pub fn log(&mut self, at_ms: i64, text: impl Into<String>) {
        if self.log.len() >= MAX_LOG_LINES {
            self.log.remove(0);
            self.log_dropped += 1;
        }
        self.log.push(LogLine {
            at_ms,
            text: text.into(),
        });
    }

    /// Elapsed time, up to `now_ms` while running.
    pub fn elapsed_ms(&self, now_ms: i64) -> i64 {
        self.finished_ms
            .unwrap_or(now_ms)
            .saturating_sub(self.started_ms)
            .max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_latest_lines_and_counts_the_dropped() {
        let mut op = Operation::new(
            "x".into(),
            OperationKind::PortProbe,
            "t".into(),
            "p".into(),
            0,
        );
        for i in 0..(MAX_LOG_LINES + 5) {
            op.log(i as i64, format!("line {i}"));
        }
        assert_eq!(op.log.len(), MAX_LOG_LINES);
        assert_eq!(op.log_dropped, 5);
        assert_eq!(op.log[0].text, "line 5");
    }
}

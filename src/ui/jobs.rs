//! The console's jobs: every operation started from a panel, running or finished, with
//! its progress, elapsed time and result. `J` (or `:jobs`) opens the list; `c` cancels the
//! selected running one. The operations themselves run on the agents (`actions`): a job is
//! the console's view of one, fed by its `Progress` messages.

use super::theme::Theme;
use crate::actions::Progress;
use crate::model::ops::{OperationState, Step};
use ratatui::text::{Line, Span};
use tokio_util::sync::CancellationToken;

/// Jobs kept in the list (the oldest finished ones go first).
pub const KEEP: usize = 50;

#[derive(Debug, Clone)]
pub struct Job {
    /// The console's number for it (1, 2, …).
    pub seq: u64,
    /// The agent's operation id, once it accepted the operation.
    pub op_id: Option<String>,
    pub what: String,
    pub step: Step,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// None while running (or not yet accepted).
    pub state: Option<OperationState>,
    /// The summary when it ended, or why it failed; the latest log line meanwhile.
    pub text: String,
    pub cancel: CancellationToken,
    pub cancel_requested: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Jobs {
    pub list: Vec<Job>,
    next: u64,
    pub open: bool,
    pub sel: usize,
}

impl Jobs {
    /// Registers a job; returns its number and the token that cancels it.
    pub fn add(&mut self, what: String, now_ms: i64) -> (u64, CancellationToken) {
        self.next += 1;
        let cancel = CancellationToken::new();
        self.list.push(Job {
            seq: self.next,
            op_id: None,
            what,
            step: Step::default(),
            started_ms: now_ms,
            finished_ms: None,
            state: None,
            text: "starting".into(),
            cancel: cancel.clone(),
            cancel_requested: false,
        });
        while self.list.len() > KEEP {
            match self.list.iter().position(|j| j.finished_ms.is_some()) {
                Some(i) => {
                    self.list.remove(i);
                }
                None => break,
            }
        }
        (self.next, cancel)
    }

    pub fn running(&self) -> usize {
        self.list.iter().filter(|j| j.finished_ms.is_none()).count()
    }

    /// Applies one progress message; returns the job's end text when it just finished.
    pub fn apply(&mut self, seq: u64, p: Progress, now_ms: i64) -> Option<String> {
        let job = self.list.iter_mut().find(|j| j.seq == seq)?;
        match p {
            Progress::Started(op) => {
                job.op_id = Some(op.id.clone());
                job.what = format!("{} {}", op.kind.as_str(), op.target);
                job.text = format!("running as {} on the agent", op.id);
            }
            Progress::Step(s) => job.step = s,
            Progress::Log(l) => job.text = l,
            Progress::Finished(r) => {
                job.finished_ms = Some(now_ms);
                match r {
                    Ok(op) => {
                        job.state = Some(op.state);
                        job.step = op.step;
                        job.text = op.summary.or(op.error).unwrap_or_default();
                    }
                    Err(e) => {
                        job.state = Some(OperationState::Failed);
                        job.text = e.to_string();
                    }
                }
                return Some(format!("job {}: {} — {}", job.seq, job.what, job.text));
            }
        }
        None
    }

    /// Cancels the selected job if it is running; says what happened.
    pub fn cancel_selected(&mut self) -> String {
        let Some(job) = self.list.iter_mut().rev().nth(self.sel) else {
            return "no job selected".into();
        };
        if job.finished_ms.is_some() {
            return format!("job {} has already ended", job.seq);
        }
        job.cancel.cancel();
        job.cancel_requested = true;
        format!("job {}: cancel requested", job.seq)
    }

    pub fn up(&mut self) {
        self.sel = self.sel.saturating_sub(1);
    }

    pub fn down(&mut self) {
        self.sel = (self.sel + 1).min(self.list.len().saturating_sub(1));
    }

    /// The list, newest first, for the jobs popup.
    pub fn lines(&self, now_ms: i64, th: &Theme) -> Vec<Line<'static>> {
        if self.list.is_empty() {
            return vec![Line::from(Span::styled(
                "No jobs yet. Operations started from a panel (P on Network) show here.",
                th.dim,
            ))];
        }
        let mut out = Vec::new();
        for (i, j) in self.list.iter().rev().enumerate() {
            let (state, style) = match j.state {
                None if j.cancel_requested => ("cancelling", th.warn),
                None => ("running", th.accent),
                Some(OperationState::Running) => ("running", th.accent),
                Some(OperationState::Succeeded) => ("done", th.ok),
                Some(OperationState::Failed) => ("failed", th.fail),
                Some(OperationState::Cancelled) => ("cancelled", th.warn),
            };
            let elapsed = (j.finished_ms.unwrap_or(now_ms) - j.started_ms).max(0) / 1000;
            let mark = if i == self.sel { "▶ " } else { "  " };
            out.push(Line::from(vec![
                Span::styled(mark.to_string(), th.accent),
                Span::styled(format!("{:>3} ", j.seq), th.dim),
                Span::styled(format!("{state:<10} "), style),
                Span::styled(bar(&j.step, 16), style),
                Span::styled(
                    format!(" {:>3}/{:<3} {:>4}s  ", j.step.done, j.step.total, elapsed),
                    th.dim,
                ),
                Span::styled(j.what.clone(), th.text),
            ]));
            out.push(Line::from(vec![
                Span::raw("      "),
                Span::styled(j.text.clone(), th.dim),
            ]));
        }
        out.push(Line::from(""));
        out.push(Line::from(Span::styled(
            "↑↓ select   c cancel the selected job   Esc close",
            th.dim,
        )));
        out
    }
}

/// A text progress bar of `width` cells.
pub fn bar(s: &Step, width: usize) -> String {
    let filled = if s.total == 0 {
        0
    } else {
        ((s.done.min(s.total) as u128 * width as u128) / s.total as u128) as usize
    };
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::OpError;
    use crate::model::ops::{Operation, OperationKind};

    #[test]
    fn a_job_follows_its_operation_and_cancel_reaches_its_token() {
        let mut jobs = Jobs::default();
        let (seq, token) = jobs.add("probe from a".into(), 0);
        let mut op = Operation::new(
            "port-probe-a-1".into(),
            OperationKind::PortProbe,
            "a → b,c (core)".into(),
            "admin".into(),
            0,
        );
        assert!(jobs.apply(seq, Progress::Started(op.clone()), 10).is_none());
        jobs.apply(
            seq,
            Progress::Step(Step {
                name: "probe b".into(),
                done: 1,
                total: 2,
                bytes: None,
            }),
            20,
        );
        assert_eq!(jobs.running(), 1);
        assert_eq!(jobs.cancel_selected(), "job 1: cancel requested");
        assert!(token.is_cancelled());
        op.state = OperationState::Cancelled;
        op.summary = Some("cancelled after 1 of 2 peers".into());
        let end = jobs.apply(seq, Progress::Finished(Ok(op)), 30).unwrap();
        assert!(end.contains("cancelled after 1 of 2 peers"), "{end}");
        assert_eq!(jobs.running(), 0);
        assert_eq!(jobs.cancel_selected(), "job 1 has already ended");
        // A failure to start is a failed job with the reason.
        let (s2, _) = jobs.add("probe from b".into(), 40);
        jobs.apply(
            s2,
            Progress::Finished(Err(OpError::NeedsAdmin("b: denied".into()))),
            50,
        );
        assert_eq!(jobs.list[1].state, Some(OperationState::Failed));
        assert!(jobs.list[1].text.contains("needs the admin token"));
        assert_eq!(
            bar(
                &Step {
                    done: 1,
                    total: 2,
                    ..Default::default()
                },
                4
            ),
            "██░░"
        );
    }
}

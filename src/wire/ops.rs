//! Operations on the wire (proto/axon/v1/operations.proto) to and from `model::ops`.

use super::WireError;
use super::pb;
use crate::model::ops::{LogLine, Operation, OperationKind, OperationOutput, OperationState, Step};
use crate::model::probes::ProbeReport;

fn bad(field: &'static str, problem: impl Into<String>) -> WireError {
    WireError {
        message: "Operation",
        field,
        problem: problem.into(),
    }
}

pub fn encode_operation(op: &Operation) -> pb::Operation {
    pb::Operation {
        id: op.id.clone(),
        kind: match op.kind {
            OperationKind::PortProbe => pb::OperationKind::PortProbe,
            OperationKind::StartIo => pb::OperationKind::StartIo,
            OperationKind::StopIo => pb::OperationKind::StopIo,
            OperationKind::DriveDeactivate => pb::OperationKind::DriveDeactivate,
            OperationKind::DriveActivate => pb::OperationKind::DriveActivate,
            OperationKind::DriveRemove => pb::OperationKind::DriveRemove,
            OperationKind::DriveAdd => pb::OperationKind::DriveAdd,
        } as i32,
        target: op.target.clone(),
        principal: op.principal.clone(),
        started_ms: op.started_ms,
        finished_ms: op.finished_ms.unwrap_or(0),
        state: match op.state {
            OperationState::Running => pb::OperationState::Running,
            OperationState::Succeeded => pb::OperationState::Succeeded,
            OperationState::Failed => pb::OperationState::Failed,
            OperationState::Cancelled => pb::OperationState::Cancelled,
        } as i32,
        step: Some(pb::OperationStep {
            name: op.step.name.clone(),
            done: op.step.done,
            total: op.step.total,
            bytes_done: op.step.bytes.map(|b| b.0),
            bytes_total: op.step.bytes.map(|b| b.1),
        }),
        log: op
            .log
            .iter()
            .map(|l| pb::LogLine {
                at_ms: l.at_ms,
                text: l.text.clone(),
            })
            .collect(),
        log_dropped: op.log_dropped,
        summary: op.summary.clone().unwrap_or_default(),
        error: op.error.clone().unwrap_or_default(),
        output: op.output.as_ref().map(|o| match o {
            OperationOutput::PortProbe { report } => {
                pb::operation::Output::PortProbe(super::encode_probe_report(report, false))
            }
            OperationOutput::Io { status, blockers } => pb::operation::Output::Io(pb::IoOutcome {
                status: status.clone(),
                blockers: blockers.clone(),
            }),
            OperationOutput::Drive(d) => pb::operation::Output::Drive(pb::DriveOutcome {
                drive: d.drive.clone(),
                path: d.path.clone(),
                state: d.state.clone(),
                chunks: d.chunks,
                bytes: d.bytes,
                capacity: d.capacity,
                others_free: d.others_free,
                moved_chunks: d.moved_chunks,
                moved_bytes: d.moved_bytes,
                dry_run: d.dry_run,
                refusals: d.refusals.clone(),
                to_other_nodes: d.to_other_nodes,
                moved_to_other_nodes: d.moved_to_other_nodes,
            }),
        }),
    }
}

pub fn decode_operation(m: pb::Operation) -> Result<Operation, WireError> {
    let kind = match pb::OperationKind::try_from(m.kind) {
        Ok(pb::OperationKind::PortProbe) => OperationKind::PortProbe,
        Ok(pb::OperationKind::StartIo) => OperationKind::StartIo,
        Ok(pb::OperationKind::StopIo) => OperationKind::StopIo,
        Ok(pb::OperationKind::DriveDeactivate) => OperationKind::DriveDeactivate,
        Ok(pb::OperationKind::DriveActivate) => OperationKind::DriveActivate,
        Ok(pb::OperationKind::DriveRemove) => OperationKind::DriveRemove,
        Ok(pb::OperationKind::DriveAdd) => OperationKind::DriveAdd,
        _ => return Err(bad("kind", format!("unknown operation kind {}", m.kind))),
    };
    let state = match pb::OperationState::try_from(m.state) {
        Ok(pb::OperationState::Running) => OperationState::Running,
        Ok(pb::OperationState::Succeeded) => OperationState::Succeeded,
        Ok(pb::OperationState::Failed) => OperationState::Failed,
        Ok(pb::OperationState::Cancelled) => OperationState::Cancelled,
        _ => return Err(bad("state", format!("unknown state {}", m.state))),
    };
    let step = m.step.unwrap_or_default();
    if step.total > 0 && step.done > step.total {
        return Err(bad(
            "step",
            format!("{} of {} steps done", step.done, step.total),
        ));
    }
    let output = match m.output {
        None => None,
        Some(pb::operation::Output::PortProbe(r)) => Some(OperationOutput::PortProbe {
            report: ProbeReport::try_from(r)?,
        }),
        Some(pb::operation::Output::Io(o)) => Some(OperationOutput::Io {
            status: o.status,
            blockers: o.blockers,
        }),
        Some(pb::operation::Output::Drive(d)) => {
            Some(OperationOutput::Drive(crate::model::ops::DriveOutcome {
                drive: d.drive,
                path: d.path,
                state: d.state,
                chunks: d.chunks,
                bytes: d.bytes,
                capacity: d.capacity,
                others_free: d.others_free,
                moved_chunks: d.moved_chunks,
                moved_bytes: d.moved_bytes,
                dry_run: d.dry_run,
                refusals: d.refusals,
                to_other_nodes: d.to_other_nodes,
                moved_to_other_nodes: d.moved_to_other_nodes,
            }))
        }
    };
    Ok(Operation {
        id: m.id,
        kind,
        target: m.target,
        principal: m.principal,
        started_ms: m.started_ms,
        finished_ms: (m.finished_ms > 0).then_some(m.finished_ms),
        state,
        step: Step {
            name: step.name,
            done: step.done,
            total: step.total,
            bytes: step.bytes_done.zip(step.bytes_total),
        },
        log: m
            .log
            .into_iter()
            .map(|l| LogLine {
                at_ms: l.at_ms,
                text: l.text,
            })
            .collect(),
        log_dropped: m.log_dropped,
        summary: Some(m.summary).filter(|s| !s.is_empty()),
        error: Some(m.error).filter(|s| !s.is_empty()),
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_survives_the_wire() {
        let mut op = Operation::new(
            "port-probe-a-1".into(),
            OperationKind::PortProbe,
            "a → b".into(),
            "admin".into(),
            1_000,
        );
        op.step = Step {
            name: "probe b".into(),
            done: 1,
            total: 2,
            bytes: Some((5, 10)),
        };
        op.log(1_500, "probing b");
        op.state = OperationState::Cancelled;
        op.finished_ms = Some(2_000);
        op.summary = Some("cancelled after 1 of 2 peers".into());
        op.output = Some(OperationOutput::PortProbe {
            report: ProbeReport::from_results(vec!["b"], vec![], 3),
        });
        let back = decode_operation(encode_operation(&op)).unwrap();
        assert_eq!(back, op);
    }

    #[test]
    fn an_unknown_state_or_impossible_step_is_refused() {
        let mut m = encode_operation(&Operation::new(
            "x".into(),
            OperationKind::PortProbe,
            "t".into(),
            "p".into(),
            0,
        ));
        m.state = 99;
        assert!(
            decode_operation(m.clone())
                .unwrap_err()
                .to_string()
                .contains("state")
        );
        m.state = pb::OperationState::Running as i32;
        m.step = Some(pb::OperationStep {
            name: "s".into(),
            done: 3,
            total: 2,
            ..Default::default()
        });
        assert!(
            decode_operation(m)
                .unwrap_err()
                .to_string()
                .contains("3 of 2")
        );
    }
}

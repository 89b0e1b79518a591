//! The full port probe: asks one node's agent to probe every port of the chosen groups
//! to its peers (an operation on the agent: one step per peer, cancellable), and follows
//! it to the end.

use super::{Progress, follow};
use crate::fleet::inventory::NodeSpec;
use crate::fleet::ops::OpsClient;
use crate::fleet::tls::Security;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub spec: NodeSpec,
    pub token: Option<String>,
    pub security: Security,
    /// Host list; empty means the agent's configured peers.
    pub peers: String,
    /// Port group ids (core, ssh, …); empty means the continuous set.
    pub groups: Vec<String>,
}

/// Starts the probe and follows it; every message goes to `tx`, the last is `Finished`.
/// One `action` span (`action.kind`, `node`, then `op.id`), child of the caller's span; the
/// agent's spans of the operation are its children.
pub async fn full_probe(req: ProbeRequest, tx: mpsc::Sender<Progress>, cancel: CancellationToken) {
    let span = tracing::info_span!(
        "action",
        action.kind = "port-probe",
        node = req.spec.name.as_str(),
        op.id = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    run(req, tx, cancel).instrument(span).await
}

async fn run(req: ProbeRequest, tx: mpsc::Sender<Progress>, cancel: CancellationToken) {
    let span = tracing::Span::current();
    let mut client = match OpsClient::connect(
        &req.spec,
        req.token.clone(),
        req.security.clone(),
        Duration::from_secs(3),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            failed(&span, &e);
            let _ = tx.send(Progress::Finished(Err(e))).await;
            return;
        }
    };
    match client.start_port_probe(&req.peers, &req.groups).await {
        Ok(op) => {
            span.record("op.id", op.id.as_str());
            follow(client, op, tx, cancel).await
        }
        Err(e) => {
            failed(&span, &e);
            let _ = tx.send(Progress::Finished(Err(e))).await;
        }
    }
}

/// Marks the action's span as failed, with why (the caller reports the error itself).
fn failed(span: &tracing::Span, e: &crate::fleet::ops::OpError) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", tracing::field::display(e));
}

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
pub async fn full_probe(req: ProbeRequest, tx: mpsc::Sender<Progress>, cancel: CancellationToken) {
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
            let _ = tx.send(Progress::Finished(Err(e))).await;
            return;
        }
    };
    match client.start_port_probe(&req.peers, &req.groups).await {
        Ok(op) => follow(client, op, tx, cancel).await,
        Err(e) => {
            let _ = tx.send(Progress::Finished(Err(e))).await;
        }
    }
}

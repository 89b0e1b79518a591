//! start-io / stop-io from the console: the operation on one cluster member (it hands the
//! change to the leader), followed to its end like every action.

use super::{Progress, follow};
use crate::fleet::inventory::NodeSpec;
use crate::fleet::ops::OpsClient;
use crate::fleet::tls::Security;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Starts start-io (`start`) or stop-io on `spec`'s agent and follows it; every message
/// goes to `tx`, the last is `Finished`.
pub async fn io_change(
    spec: NodeSpec,
    token: Option<String>,
    security: Security,
    start: bool,
    tx: mpsc::Sender<Progress>,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!(
        "action",
        action.kind = if start { "start-io" } else { "stop-io" },
        node = spec.name.as_str(),
    );
    async move {
        let mut client =
            match OpsClient::connect(&spec, token, security, Duration::from_secs(3)).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Progress::Finished(Err(e))).await;
                    return;
                }
            };
        match client.start_io(start).await {
            Ok(op) => follow(client, op, tx, cancel).await,
            Err(e) => {
                let _ = tx.send(Progress::Finished(Err(e))).await;
            }
        }
    }
    .instrument(span)
    .await
}

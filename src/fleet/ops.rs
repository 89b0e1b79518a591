//! The console's side of OperationService: start, follow, cancel and list the operations
//! an agent runs. `actions` builds on this; nothing above `fleet` speaks gRPC.

use super::client::{self, OperationClient};
use super::inventory::NodeSpec;
use super::tls::Security;
use crate::model::ops::Operation;
use crate::wire::{self, pb};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Connect(String),
    #[error("needs the admin token ({0}); pass --token-file with the agent's admin.token")]
    NeedsAdmin(String),
    #[error("{0}")]
    Refused(String),
    /// Contact was lost after the start; the operation goes on on the agent.
    #[error("{0}")]
    Lost(String),
    #[error("{0}")]
    Malformed(String),
}

impl OpError {
    fn from_status(node: &str, s: &tonic::Status) -> OpError {
        match s.code() {
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
                OpError::NeedsAdmin(format!("{node}: {}", s.message()))
            }
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
                OpError::Lost(format!("{node}: {}", client::error_chain(s)))
            }
            _ => OpError::Refused(format!("{node}: {}", s.message())),
        }
    }
}

/// A connection to one agent's OperationService.
#[derive(Clone)]
pub struct OpsClient {
    pub node: String,
    client: OperationClient,
}

/// A followed operation: the agent's message on each change, ending after it finished.
pub struct OpWatch {
    node: String,
    stream: tonic::Streaming<pb::Operation>,
}

impl OpsClient {
    pub async fn connect(
        spec: &NodeSpec,
        token: Option<String>,
        security: Security,
        timeout: Duration,
    ) -> Result<OpsClient, OpError> {
        let c = client::connect_node(spec, token, security, timeout)
            .await
            .map_err(OpError::Connect)?;
        Ok(OpsClient {
            node: spec.name.clone(),
            client: c.ops,
        })
    }

    fn decode(&self, m: pb::Operation) -> Result<Operation, OpError> {
        wire::decode_operation(m)
            .map_err(|e| OpError::Malformed(format!("{}: agent sent {e}", self.node)))
    }

    /// Starts a full port probe from this node to `peers` (a host list; empty: the
    /// agent's configured peers) on every port of `groups` (empty: the continuous set).
    pub async fn start_port_probe(
        &mut self,
        peers: &str,
        groups: &[String],
    ) -> Result<Operation, OpError> {
        let req = pb::StartOperationRequest {
            kind: Some(pb::start_operation_request::Kind::PortProbe(
                pb::PortProbeSpec {
                    peers: peers.to_string(),
                    groups: groups.to_vec(),
                    timeout_ms: 500,
                    concurrency: 256,
                },
            )),
        };
        let m = self
            .client
            .start_operation(req)
            .await
            .map_err(|s| OpError::from_status(&self.node, &s))?;
        self.decode(m.into_inner())
    }

    /// Starts start-io (`start`) or stop-io on this member.
    pub async fn start_io(&mut self, start: bool) -> Result<Operation, OpError> {
        use pb::start_operation_request::Kind;
        let req = pb::StartOperationRequest {
            kind: Some(if start {
                Kind::StartIo(pb::IoSpec {})
            } else {
                Kind::StopIo(pb::IoSpec {})
            }),
        };
        let m = self
            .client
            .start_operation(req)
            .await
            .map_err(|s| OpError::from_status(&self.node, &s))?;
        self.decode(m.into_inner())
    }

    /// Starts any operation on this agent.
    pub async fn start(
        &mut self,
        kind: pb::start_operation_request::Kind,
    ) -> Result<Operation, OpError> {
        let m = self
            .client
            .start_operation(pb::StartOperationRequest { kind: Some(kind) })
            .await
            .map_err(|s| OpError::from_status(&self.node, &s))?;
        self.decode(m.into_inner())
    }

    pub async fn cancel(&mut self, id: &str) -> Result<Operation, OpError> {
        let m = self
            .client
            .cancel_operation(pb::OperationRef { id: id.to_string() })
            .await
            .map_err(|s| OpError::from_status(&self.node, &s))?;
        self.decode(m.into_inner())
    }

    pub async fn list(&mut self) -> Result<Vec<Operation>, OpError> {
        let m = self
            .client
            .list_operations(pb::ListOperationsRequest {})
            .await
            .map_err(|s| OpError::from_status(&self.node, &s))?;
        m.into_inner()
            .operations
            .into_iter()
            .map(|o| self.decode(o))
            .collect()
    }

    pub async fn watch(&mut self, id: &str) -> Result<OpWatch, OpError> {
        let s = self
            .client
            .watch_operation(pb::OperationRef { id: id.to_string() })
            .await
            .map_err(|s| OpError::from_status(&self.node, &s))?;
        Ok(OpWatch {
            node: self.node.clone(),
            stream: s.into_inner(),
        })
    }
}

impl OpWatch {
    /// The operation's next state; None after the one that showed it finished.
    pub async fn next(&mut self) -> Result<Option<Operation>, OpError> {
        match self.stream.message().await {
            Ok(Some(m)) => wire::decode_operation(m)
                .map(Some)
                .map_err(|e| OpError::Malformed(format!("{}: agent sent {e}", self.node))),
            Ok(None) => Ok(None),
            Err(s) => Err(OpError::from_status(&self.node, &s)),
        }
    }
}

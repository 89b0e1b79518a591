//! The remote half of the data plane's `Net`: `DataService` calls to one member, over any
//! tonic channel. The agent's `GrpcNet` makes them on the members' data port (mutual TLS);
//! a client's `fleet::direct` on the members' gRPC port (TLS and a token).

use super::pb;
use super::pb::data_service_client::DataServiceClient;
use crate::dataplane::cluster::frontend::NetError;
use crate::dataplane::cluster::objects::{Manifest, NodeId, Summary};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Code, Response, Status};

use tonic::codegen::{Body, StdError};

/// The largest message a direct client (`fleet::direct`) may send to or get from a
/// member's gRPC port: a chunk of up to 4 MiB with its key and framing, about what any
/// other service there takes.
pub const DIRECT_MAX_MESSAGE: usize = (4 << 20) + (64 << 10);

/// Each call to a member, at most (a chunk takes milliseconds).
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// How a member's refusal maps onto the frontend's errors.
pub fn net_err(node: NodeId, s: Status) -> NetError {
    match s.code() {
        Code::NotFound => NetError::NotFound(node),
        Code::PermissionDenied | Code::Unauthenticated => {
            NetError::Denied(node, s.message().to_string())
        }
        Code::DataLoss => NetError::Lost(node, s.message().to_string()),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            NetError::Unreachable(node, s.message().to_string())
        }
        _ => NetError::Refused(node, s.message().to_string()),
    }
}

/// Member `node`'s entry in `by_node` (a channel or a client), or Unreachable saying
/// `why` there is none.
pub fn member<C: Clone>(
    by_node: &std::collections::BTreeMap<NodeId, C>,
    node: NodeId,
    why: &str,
) -> Result<C, NetError> {
    by_node
        .get(&node)
        .cloned()
        .ok_or_else(|| NetError::Unreachable(node, why.to_string()))
}

/// A call that cannot be made: its error, as the call's future.
pub fn failed<T: Send + 'static>(e: NetError) -> BoxFuture<'static, Result<T, NetError>> {
    Box::pin(async move { Err(e) })
}

/// One member's `DataService`, each call bounded by `deadline`.
pub struct Remote<T> {
    pub node: NodeId,
    pub client: DataServiceClient<T>,
    pub deadline: Duration,
}

impl<T> Remote<T>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Send + 'static,
    T::Error: Into<StdError>,
    T::Future: Send,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    /// Makes one call with the client, within the deadline, and shapes its reply.
    fn send<R, O, F>(
        self,
        call: impl FnOnce(DataServiceClient<T>) -> F + Send + 'static,
        then: impl FnOnce(R) -> Result<O, NetError> + Send + 'static,
    ) -> BoxFuture<'static, Result<O, NetError>>
    where
        F: std::future::Future<Output = Result<Response<R>, Status>> + Send + 'static,
        O: Send + 'static,
    {
        let Remote {
            node,
            client,
            deadline,
        } = self;
        Box::pin(async move {
            match tokio::time::timeout(deadline, call(client)).await {
                Ok(Ok(r)) => then(r.into_inner()),
                Ok(Err(s)) => Err(net_err(node, s)),
                Err(_) => Err(NetError::Unreachable(
                    node,
                    format!("no answer in {} s", deadline.as_secs()),
                )),
            }
        })
    }

    pub fn put_chunk(self, key: String, data: Bytes) -> BoxFuture<'static, Result<(), NetError>> {
        let req = pb::PutChunkRequest { key, data };
        self.send(|mut c| async move { c.put_chunk(req).await }, |_| Ok(()))
    }

    pub fn get_chunk(self, key: String) -> BoxFuture<'static, Result<Bytes, NetError>> {
        let req = pb::GetChunkRequest { key };
        self.send(
            |mut c| async move { c.get_chunk(req).await },
            |r| Ok(r.data),
        )
    }

    pub fn delete_chunks(self, keys: Vec<String>) -> BoxFuture<'static, Result<(), NetError>> {
        let req = pb::DeleteChunksRequest { keys };
        self.send(
            |mut c| async move { c.delete_chunks(req).await },
            |_| Ok(()),
        )
    }

    pub fn put_manifest(self, m: Arc<Manifest>) -> BoxFuture<'static, Result<bool, NetError>> {
        let node = self.node;
        let json = match serde_json::to_string(&*m) {
            Ok(j) => j,
            Err(e) => return Box::pin(async move { Err(NetError::Refused(node, e.to_string())) }),
        };
        let req = pb::ManifestPayload { json };
        self.send(
            |mut c| async move { c.put_manifest(req).await },
            |r| Ok(r.stored),
        )
    }

    pub fn get_manifest(
        self,
        key: String,
    ) -> BoxFuture<'static, Result<Option<Manifest>, NetError>> {
        let node = self.node;
        let req = pb::GetManifestRequest { key };
        let got = self.send(|mut c| async move { c.get_manifest(req).await }, Ok);
        Box::pin(async move {
            match got.await {
                Ok(p) => serde_json::from_str(&p.json)
                    .map(Some)
                    .map_err(|e| NetError::Refused(node, format!("a damaged manifest: {e}"))),
                Err(NetError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    pub fn list_manifests(
        self,
        prefix: String,
    ) -> BoxFuture<'static, Result<Vec<Summary>, NetError>> {
        let req = pb::ListManifestsRequest { prefix };
        self.send(
            |mut c| async move { c.list_manifests(req).await },
            |r| {
                Ok(r.objects
                    .into_iter()
                    .map(|s| Summary {
                        key: s.key,
                        generation: s.generation,
                        writer: s.writer,
                        size: s.size,
                        deleted: s.deleted,
                        stripes: s.stripes,
                        object: s.object,
                        revision: s.revision,
                    })
                    .collect())
            },
        )
    }
}

//! A frontend in the caller's own process (`axon io … --direct`): the client splits an
//! object into stripes, encodes the parity and sends every chunk to its member itself,
//! over each member's gRPC port (TLS and the inventory's token), as WEKA's clients run a
//! frontend of their own. Through a member's frontend every byte crosses TLS twice (client
//! to frontend, frontend to the members); here once. The members check the token and
//! refuse writes unless the cluster's IO is STARTED (`agent::direct`).

use super::client::{AddToken, DataClient};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// What a `DataClient` calls through.
type Svc = InterceptedService<Channel, AddToken>;
use super::cluster::{ClusterAgent, ClusterCallError, Stored};
use crate::dataplane::cluster::frontend::{Frontend, IoError, Layout, Net, NetError};
use crate::dataplane::cluster::objects::{Manifest, NodeId, Summary};
use crate::dataplane::cluster::placement::Domain;
use crate::model::cluster::IoStatus;
use crate::wire::chunks::{Remote, failed};
use crate::wire::pb;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Each call to a member, at most (a 1 MiB chunk takes milliseconds).
const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// The members' `DataService` on their gRPC ports, by node id.
pub struct DirectNet {
    members: BTreeMap<NodeId, DataClient>,
}

impl DirectNet {
    fn remote(&self, node: NodeId) -> Result<Remote<Svc>, NetError> {
        Ok(Remote {
            node,
            client: crate::wire::chunks::member(
                &self.members,
                node,
                "not in the inventory, or it did not answer when this command started",
            )?,
            deadline: CALL_DEADLINE,
        })
    }
}

impl Net for DirectNet {
    fn put_chunk(
        &self,
        node: NodeId,
        key: String,
        data: Bytes,
    ) -> BoxFuture<'static, Result<(), NetError>> {
        self.remote(node)
            .map_or_else(failed, |r| r.put_chunk(key, data))
    }

    fn get_chunk(&self, node: NodeId, key: String) -> BoxFuture<'static, Result<Bytes, NetError>> {
        self.remote(node).map_or_else(failed, |r| r.get_chunk(key))
    }

    fn delete_chunks(
        &self,
        node: NodeId,
        keys: Vec<String>,
    ) -> BoxFuture<'static, Result<(), NetError>> {
        self.remote(node)
            .map_or_else(failed, |r| r.delete_chunks(keys))
    }

    fn put_manifest(
        &self,
        node: NodeId,
        m: Arc<Manifest>,
    ) -> BoxFuture<'static, Result<bool, NetError>> {
        self.remote(node).map_or_else(failed, |r| r.put_manifest(m))
    }

    fn get_manifest(
        &self,
        node: NodeId,
        key: String,
    ) -> BoxFuture<'static, Result<Option<Manifest>, NetError>> {
        self.remote(node)
            .map_or_else(failed, |r| r.get_manifest(key))
    }

    fn list_manifests(
        &self,
        node: NodeId,
        prefix: String,
    ) -> BoxFuture<'static, Result<Vec<Summary>, NetError>> {
        self.remote(node)
            .map_or_else(failed, |r| r.list_manifests(prefix))
    }
}

/// A frontend of the caller's own, and the cluster as it found it.
pub struct Direct {
    pub frontend: Frontend<DirectNet>,
    pub layout: Layout,
    /// Members of the configuration it could not reach (by name): their chunks are read
    /// around, and no new chunk goes to them.
    pub unreachable: Vec<String>,
}

/// Asks each agent (already connected) for its place in the cluster, the configuration
/// and what it can take, and builds the layout a member's frontend would use: k and m,
/// the chunk size of the members' stores, the members that answered and have an ACTIVE
/// drive as placement's domains weighted by free bytes. Refused while IO is not STARTED.
pub async fn connect(agents: Vec<ClusterAgent>) -> Result<Direct, ClusterCallError> {
    let refused = |detail: String| ClusterCallError::Refused {
        node: DIRECT.into(),
        detail,
    };
    let mut config = None;
    let mut members = BTreeMap::new();
    let mut free = BTreeMap::new();
    let mut chunk_sizes = BTreeMap::new();
    let calls = agents.into_iter().map(|mut a| async move {
        let info = tokio::time::timeout(Duration::from_secs(5), a.get()).await;
        let ping =
            tokio::time::timeout(Duration::from_secs(5), a.data.ping(pb::PingRequest {})).await;
        (a, info, ping)
    });
    for (a, info, ping) in futures::future::join_all(calls).await {
        let (Ok(Ok(info)), Ok(Ok(ping))) = (info, ping) else {
            continue;
        };
        let ping = ping.into_inner();
        if info.cluster.is_none() || ping.node_id != info.node_id {
            continue;
        }
        if let Some(c) = info.config
            && config
                .as_ref()
                .is_none_or(|x: &crate::model::cluster::ClusterConfig| c.epoch > x.epoch)
        {
            config = Some(c);
        }
        free.insert(info.node_id, ping.free_bytes);
        chunk_sizes.insert(ping.chunk_size, a.node.clone());
        members.insert(info.node_id, a.data);
    }
    let Some(config) = config else {
        return Err(refused(
            "no agent of the inventory answered as a member of a data-plane cluster with a store"
                .into(),
        ));
    };
    if config.io != IoStatus::Started {
        return Err(refused(format!(
            "the cluster's IO is {}: run axon start-io first",
            config.io.as_str()
        )));
    }
    let chunk_size = match chunk_sizes.keys().collect::<Vec<_>>()[..] {
        [one] => *one,
        _ => {
            return Err(refused(format!(
                "the members' stores disagree on the chunk size ({}); a direct client needs one",
                chunk_sizes
                    .iter()
                    .map(|(s, n)| format!("{n}: {s} bytes"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let writable = config
        .members
        .keys()
        .filter(|id| members.contains_key(id))
        .filter(|id| {
            config
                .drives
                .values()
                .any(|d| d.node == **id && d.state == "ACTIVE")
        })
        .map(|&node| Domain {
            node,
            free: free.get(&node).copied().unwrap_or(1).max(1),
        })
        .collect();
    let unreachable = config
        .members
        .iter()
        .filter(|(id, _)| !members.contains_key(id))
        .map(|(_, m)| m.name.clone())
        .collect();
    let layout = Layout {
        k: config.k,
        m: config.m,
        chunk_size,
        members: config.members.keys().copied().collect(),
        writable,
        me: writer_id(),
    };
    Ok(Direct {
        frontend: Frontend::new(Arc::new(DirectNet { members })),
        layout,
        unreachable,
    })
}

/// The writer named in this client's manifests: it orders two writes of one key in the
/// same nanosecond. Members are numbered from 1; a client takes a random id with the top
/// bit set, so it never ties with a member or, but for a 2^-63 chance, another client.
fn writer_id() -> NodeId {
    uuid::Uuid::new_v4().as_u64_pair().0 | (1 << 63)
}

/// How errors and `--json` name where the frontend ran.
pub const DIRECT: &str = "this client (direct)";

fn call_err(e: IoError) -> ClusterCallError {
    let node = DIRECT.to_string();
    match e {
        IoError::NotFound(_) => ClusterCallError::NotFound {
            node,
            detail: e.to_string(),
        },
        IoError::Unavailable(detail) => ClusterCallError::Unavailable { node, detail },
        IoError::Refused(detail) | IoError::Failed(detail) => {
            ClusterCallError::Refused { node, detail }
        }
    }
}

impl Direct {
    /// Stores `key` from `body` (pieces of the object, in order), as
    /// `ClusterAgent::put_object` does through a member.
    pub async fn put_object(
        &self,
        key: &str,
        body: impl futures::Stream<Item = Bytes> + Send + 'static,
    ) -> Result<Stored, ClusterCallError> {
        use futures::StreamExt;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let feed = async move {
            let mut body = std::pin::pin!(body);
            while let Some(b) = body.next().await {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
        };
        let (done, ()) = tokio::join!(self.frontend.put(key, &self.layout, rx), feed);
        let done = done.map_err(call_err)?;
        Ok(Stored {
            key: key.to_string(),
            size: done.size,
            stripes: done.stripes,
            generation: done.generation,
            nodes: done.nodes,
        })
    }

    /// Reads `key`, handing `sink` each piece in order: (the object's size, stripes
    /// rebuilt from parity). A `sink` error ends the read with it.
    pub async fn get_object(
        &self,
        key: &str,
        mut sink: impl FnMut(u64, &Bytes) -> Result<(), String>,
    ) -> Result<(u64, u32), ClusterCallError> {
        let m = self
            .frontend
            .manifest(key, &self.layout)
            .await
            .map_err(call_err)?;
        let size = m.size;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, IoError>>(4);
        let drain = async move {
            while let Some(piece) = rx.recv().await {
                match piece {
                    Ok(b) => sink(size, &b)?,
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        };
        let (got, drained) = tokio::join!(self.frontend.get(m, tx), drain);
        let rebuilt = got.map_err(call_err)?;
        drained.map_err(|detail| ClusterCallError::Refused {
            node: DIRECT.into(),
            detail,
        })?;
        Ok((size, rebuilt))
    }
}

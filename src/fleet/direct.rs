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
use super::cluster::{ClusterAgent, ClusterCallError, ObjectEntry, Stored};
use crate::dataplane::cluster::frontend::{Frontend, IoError, Layout, Net, NetError, Piece};
use crate::dataplane::cluster::objects::{Manifest, NodeId, Summary};
use crate::dataplane::cluster::placement;
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

    /// Nothing: members refuse to free chunks for a client (`agent::direct`). What an
    /// overwrite or a delete leaves, the members' orphan collection frees once no
    /// manifest names it.
    fn delete_chunks(
        &self,
        _node: NodeId,
        _keys: Vec<String>,
    ) -> BoxFuture<'static, Result<(), NetError>> {
        Box::pin(std::future::ready(Ok(())))
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
    /// Agents of the inventory that answered but were left out, and why (another
    /// cluster's member, or not the member their node id names).
    pub left_out: Vec<String>,
    /// The members it reached, for what goes through a member's frontend (deletes).
    pub agents: Vec<ClusterAgent>,
}

/// Asks each agent (already connected) for its place in the cluster, the configuration
/// and what it can take, and builds the layout a member's frontend would use: k and m,
/// the chunk size of the members' stores, and as placement's domains the members that
/// answered and have an ACTIVE drive, weighted by free bytes (a member's frontend also
/// keeps the members it has not heard from lately, as a last choice). Only agents of the
/// cluster with the newest configuration count, each presenting the certificate its
/// membership records for its node id. Refused while IO is not STARTED.
pub async fn connect(agents: Vec<ClusterAgent>) -> Result<Direct, ClusterCallError> {
    let refused = |detail: String| ClusterCallError::Refused {
        node: DIRECT.into(),
        detail,
    };
    let calls = agents.into_iter().map(|mut a| async move {
        let info = tokio::time::timeout(Duration::from_secs(5), a.get()).await;
        let ping =
            tokio::time::timeout(Duration::from_secs(5), a.data.ping(pb::PingRequest {})).await;
        (a, info, ping)
    });
    let mut answers = Vec::new();
    let mut why = Vec::new();
    for (a, info, ping) in futures::future::join_all(calls).await {
        match (info, ping) {
            (Ok(Ok(info)), Ok(Ok(ping))) if info.cluster.is_some() => {
                answers.push((a, info, ping.into_inner()))
            }
            (Ok(Ok(_)), Ok(Ok(_))) => why.push(format!("{}: not a cluster member", a.node)),
            (Ok(Err(e)), _) => why.push(e.to_string()),
            (_, Ok(Err(s))) => why.push(a.err(s).to_string()),
            _ => why.push(format!("{}: no answer in 5 s", a.node)),
        }
    }
    // The newest configuration, its cluster, and who its members are.
    let Some(newest) = answers
        .iter()
        .filter(|(_, i, _)| i.config.is_some())
        .max_by_key(|(_, i, _)| i.config.as_ref().map_or(0, |c| c.epoch))
    else {
        return Err(refused(format!(
            "no agent of the inventory answered as a member of a data-plane cluster with a store{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(":\n  {}", why.join("\n  "))
            }
        )));
    };
    let cluster = newest.1.cluster.clone();
    let config = newest.1.config.clone().unwrap_or_default();
    let pins: BTreeMap<NodeId, String> = newest
        .1
        .members
        .iter()
        .map(|m| (m.id, m.fingerprint.clone()))
        .collect();
    if config.io != IoStatus::Started {
        return Err(refused(format!(
            "the cluster's IO is {}: run axon start-io first",
            config.io.as_str()
        )));
    }
    let mut members = BTreeMap::new();
    let mut free = BTreeMap::new();
    let mut chunk_sizes = BTreeMap::new();
    let mut left_out = Vec::new();
    let mut agents = Vec::new();
    for (a, info, ping) in answers {
        if info.cluster != cluster {
            left_out.push(format!("{}: a member of another cluster", a.node));
        } else if pins.get(&info.node_id) != Some(&info.fingerprint) || ping.node_id != info.node_id
        {
            left_out.push(format!(
                "{}: not the member node {} of this cluster (another certificate)",
                a.node, info.node_id
            ));
        } else {
            free.insert(info.node_id, ping.free_bytes);
            chunk_sizes.insert(ping.chunk_size, a.node.clone());
            members.insert(info.node_id, a.data.clone());
            agents.push(a);
        }
    }
    for w in &why {
        tracing::debug!("axon io --direct: no answer from {w}");
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
    if chunk_size as usize + (64 << 10) > crate::wire::chunks::DIRECT_MAX_MESSAGE {
        return Err(refused(format!(
            "the members' chunks are {} bytes; --direct carries chunks of up to 4 MiB: go through a member (without --direct)",
            chunk_size
        )));
    }
    let writable = placement::writable(
        &config,
        |id| members.contains_key(&id),
        |id| free.get(&id).copied(),
    );
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
        left_out,
        agents,
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

/// The frontend's error as the CLI's.
pub fn call_err(e: IoError) -> ClusterCallError {
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
        IoError::Denied(detail) => ClusterCallError::NeedsAdmin { node, detail },
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
        // The end of `body` is the object's end; a caller that gives up drops this future
        // before it, and nothing is published.
        let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(4);
        let feed = async move {
            let mut body = std::pin::pin!(body);
            while let Some(b) = body.next().await {
                if tx.send(Piece::Data(b)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(Piece::End).await;
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

    /// Objects whose key starts with `prefix`, and the members that did not answer, as
    /// `ClusterAgent::list_objects`.
    pub async fn list_objects(&self, prefix: &str) -> (Vec<ObjectEntry>, Vec<String>) {
        let (list, silent) = self.frontend.list(prefix, &self.layout).await;
        (
            list.into_iter()
                .map(|s| ObjectEntry {
                    key: s.key,
                    size: s.size,
                    stripes: s.stripes,
                    generation: s.generation,
                })
                .collect(),
            silent.into_iter().map(|(_, e)| e).collect(),
        )
    }

    /// Deletes `key`: a tombstone on m+1 members, as through a member; its chunks are
    /// freed by the members' orphan collection (a client may not free chunks). False if
    /// there was no such object.
    pub async fn delete_object(&self, key: &str) -> Result<bool, ClusterCallError> {
        self.frontend
            .delete(key, &self.layout)
            .await
            .map_err(call_err)
    }

    /// Reads `key`, handing `sink` each piece in order: (the object's size, stripes
    /// rebuilt from parity). A `sink` error ends the read with it.
    pub async fn get_object(
        &self,
        key: &str,
        sink: impl FnMut(u64, &Bytes) -> Result<(), String>,
    ) -> Result<(u64, u32), ClusterCallError> {
        let m = self
            .frontend
            .manifest(key, &self.layout)
            .await
            .map_err(call_err)?;
        self.read(m, sink).await
    }

    /// Reads the object `m` describes (its manifest, as `Frontend::manifest` found it),
    /// as `get_object`.
    pub async fn read(
        &self,
        m: Manifest,
        mut sink: impl FnMut(u64, &Bytes) -> Result<(), String>,
    ) -> Result<(u64, u32), ClusterCallError> {
        let size = m.size;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, IoError>>(4);
        // Err(Ok(e)): the sink's own error; Err(Err(e)): the frontend's, for a piece.
        let drain = async move {
            while let Some(piece) = rx.recv().await {
                match piece {
                    Ok(b) => sink(size, &b).map_err(Ok)?,
                    Err(e) => return Err(Err(e)),
                }
            }
            Ok(())
        };
        let (got, drained) = tokio::join!(self.frontend.get(m, tx), drain);
        match drained {
            // The sink's error first: when it stops, the frontend only sees its reader go.
            Err(Ok(detail)) => Err(ClusterCallError::Refused {
                node: DIRECT.into(),
                detail,
            }),
            Err(Err(e)) => Err(call_err(e)),
            Ok(()) => Ok((size, got.map_err(call_err)?)),
        }
    }
}

//! `ClusterService` (proto/axon/v1/cluster_admin.proto): forming and reading the cluster
//! through the agent's gRPC port, behind the policy layer. The work is `raft::ClusterHost`'s.

use super::raft::{ClusterError, ClusterHost, MemberInfo, Membership};
use super::state::AgentState;
use crate::dataplane::cluster::frontend::{IoError, Piece};
use crate::model::cluster::Command;
use crate::wire::pb;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// The frontend's error as a status, members named as the operator knows them: the
/// frontend says "node 7:", the CLI and the console say "axon007".
fn io_status_named(e: IoError, names: &BTreeMap<u64, String>) -> Status {
    let s = io_status(e);
    Status::new(s.code(), named(s.message(), names))
}

/// `msg` with every "node ID:" of a member replaced by "NAME (node ID):".
fn named(msg: &str, names: &BTreeMap<u64, String>) -> String {
    let mut out = msg.to_string();
    for (id, name) in names {
        let from = format!("node {id}:");
        if out.contains(&from) {
            out = out.replace(&from, &format!("{name} (node {id}):"));
        }
    }
    out
}

fn io_status(e: IoError) -> Status {
    match e {
        IoError::Refused(m) => Status::failed_precondition(m),
        IoError::NotFound(k) => Status::not_found(format!("no object {k:?} in the cluster")),
        IoError::Unavailable(m) => Status::unavailable(m),
        IoError::Failed(m) => Status::internal(m),
        IoError::Denied(m) => Status::permission_denied(m),
    }
}

type ObjectStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::GetObjectReply, Status>> + Send + 'static>>;

#[derive(Clone)]
pub struct ClusterSvc {
    pub state: Arc<AgentState>,
}

fn host(state: &AgentState) -> Result<Arc<ClusterHost>, Status> {
    state.cluster_host().ok_or_else(|| {
        Status::failed_precondition(
            "this agent hosts no cluster member: start it with --cluster-listen ADDR",
        )
    })
}

fn status(e: ClusterError) -> Status {
    match e {
        ClusterError::NotLeader(_) => Status::failed_precondition(e.to_string()),
        ClusterError::Refused(_) => Status::failed_precondition(e.to_string()),
        ClusterError::Setup(_) | ClusterError::Raft(_) => Status::unavailable(e.to_string()),
    }
}

fn member_pb(m: &MemberInfo) -> pb::ClusterMember {
    pb::ClusterMember {
        id: m.id,
        name: m.name.clone(),
        address: m.address.clone(),
        fingerprint: m.fingerprint.clone(),
        data_address: m.data_address.clone(),
    }
}

async fn info(h: &ClusterHost, epoch: Option<u64>) -> pb::ClusterInfo {
    let mut out = pb::ClusterInfo {
        cluster_port: u32::from(h.port()),
        data_port: u32::from(h.data_port()),
        fingerprint: h.fingerprint(),
        ..Default::default()
    };
    if let Some((m, leader, config)) = h.info().await {
        out.cluster = m.cluster.clone();
        out.node_id = m.node_id;
        out.members = m.members.iter().map(member_pb).collect();
        out.leader = leader;
        out.epoch = epoch.unwrap_or(config.epoch);
        out.config_json = serde_json::to_string(&config).unwrap_or_default();
    }
    out
}

#[tonic::async_trait]
impl pb::cluster_service_server::ClusterService for ClusterSvc {
    type GetObjectStream = ObjectStream;

    async fn put_object(
        &self,
        r: Request<Streaming<pb::PutObjectRequest>>,
    ) -> Result<Response<pb::PutObjectReply>, Status> {
        let h = host(&self.state)?;
        let began = std::time::Instant::now();
        let metrics = h.data_host().map(|d| d.io.clone());
        let (fe, layout, names) = h.io().await.map_err(status)?;
        let mut stream = r.into_inner();
        let first = stream.message().await?.ok_or_else(|| {
            Status::invalid_argument("a put starts with a message naming the key")
        })?;
        let key = first.key;
        // The client's stream feeds the frontend through a small channel: when the cluster
        // is slower than the client, the channel fills and HTTP/2 holds the client back.
        // Only a stream that ended cleanly sends `End`: one that broke off stores nothing.
        let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(8);
        let feed = tokio::spawn(async move {
            if !first.data.is_empty() && tx.send(Piece::Data(first.data)).await.is_err() {
                return Ok(());
            }
            while let Some(m) = stream.message().await? {
                if tx.send(Piece::Data(m.data)).await.is_err() {
                    return Ok(());
                }
            }
            let _ = tx.send(Piece::End).await;
            Ok::<(), Status>(())
        });
        // On the frontend container's threads, when the agent runs them.
        let done = {
            let (fe, key) = (fe.clone(), key.clone());
            let put = async move { fe.put(&key, &layout, rx).await };
            match self.state.containers() {
                Some(c) => c
                    .frontend(put)
                    .await
                    .map_err(|e| Status::internal(format!("the frontend container: {e}")))?,
                None => put.await,
            }
        };
        // A client that broke off mid-stream must not get an object stored short.
        match feed.await {
            Ok(Ok(())) => {}
            Ok(Err(s)) => {
                return Err(Status::aborted(format!(
                    "the upload of {key:?} broke off ({}); nothing was stored",
                    s.message()
                )));
            }
            Err(e) => return Err(Status::internal(e.to_string())),
        }
        if let Some(m) = &metrics {
            m.record("put", began, done.as_ref().ok().map(|d| d.size));
        }
        let done = done.map_err(|e| io_status_named(e, &names))?;
        Ok(Response::new(pb::PutObjectReply {
            key,
            size: done.size,
            stripes: done.stripes,
            generation: done.generation,
            nodes: done.nodes,
        }))
    }

    async fn get_object(
        &self,
        r: Request<pb::GetObjectRequest>,
    ) -> Result<Response<Self::GetObjectStream>, Status> {
        let h = host(&self.state)?;
        let began = std::time::Instant::now();
        let metrics = h.data_host().map(|d| d.io.clone());
        let (fe, layout, names) = h.io().await.map_err(status)?;
        let names = Arc::new(names);
        let key = r.into_inner().key;
        let m = match fe.manifest(&key, &layout).await {
            Ok(m) => m,
            Err(e) => {
                if let (Some(mx), false) = (
                    &metrics,
                    matches!(e, crate::dataplane::cluster::frontend::IoError::NotFound(_)),
                ) {
                    mx.record("get", began, None);
                }
                return Err(io_status_named(e, &names));
            }
        };
        let size = m.size;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let containers = self.state.containers().cloned();
        let reader = tokio::spawn(async move {
            let get = async move { fe.get(m, tx).await };
            match containers {
                Some(c) => c.frontend(get).await.unwrap_or_else(|e| {
                    Err(IoError::Failed(format!("the frontend container: {e}")))
                }),
                None => get.await,
            }
        });
        let stream =
            futures::stream::unfold((rx, Some(reader), true), move |(mut rx, reader, first)| {
                let metrics = metrics.clone();
                let names = names.clone();
                async move {
                    match rx.recv().await {
                        Some(Ok(data)) => Some((
                            Ok(pb::GetObjectReply {
                                data,
                                size: if first { size } else { 0 },
                                reconstructed: 0,
                            }),
                            (rx, reader, false),
                        )),
                        Some(Err(e)) => Some((Err(io_status_named(e, &names)), (rx, None, false))),
                        None => {
                            // The end: the count of stripes rebuilt from parity, or the error.
                            let reader = reader?;
                            let r = reader.await;
                            if let Some(mx) = &metrics {
                                mx.record("get", began, matches!(r, Ok(Ok(_))).then_some(size));
                            }
                            match r {
                                Ok(Ok(rebuilt)) => Some((
                                    Ok(pb::GetObjectReply {
                                        data: Bytes::new(),
                                        size: if first { size } else { 0 },
                                        reconstructed: rebuilt,
                                    }),
                                    (rx, None, false),
                                )),
                                Ok(Err(_)) => None,
                                Err(e) => {
                                    Some((Err(Status::internal(e.to_string())), (rx, None, false)))
                                }
                            }
                        }
                    }
                }
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_objects(
        &self,
        r: Request<pb::ListObjectsRequest>,
    ) -> Result<Response<pb::ListObjectsReply>, Status> {
        let h = host(&self.state)?;
        let (fe, layout, names) = h.io().await.map_err(status)?;
        let (list, silent) = fe.list(&r.into_inner().prefix, &layout).await;
        Ok(Response::new(pb::ListObjectsReply {
            objects: list
                .into_iter()
                .map(|s| pb::ObjectEntry {
                    key: s.key,
                    size: s.size,
                    stripes: s.stripes,
                    generation: s.generation,
                })
                .collect(),
            unreachable: silent.into_iter().map(|(_, e)| named(&e, &names)).collect(),
        }))
    }

    async fn delete_object(
        &self,
        r: Request<pb::DeleteObjectRequest>,
    ) -> Result<Response<pb::DeleteObjectReply>, Status> {
        let h = host(&self.state)?;
        let (fe, layout, names) = h.io().await.map_err(status)?;
        let existed = fe
            .delete(&r.into_inner().key, &layout)
            .await
            .map_err(|e| io_status_named(e, &names))?;
        Ok(Response::new(pb::DeleteObjectReply { existed }))
    }

    async fn get_cluster(
        &self,
        _r: Request<pb::GetClusterRequest>,
    ) -> Result<Response<pb::ClusterInfo>, Status> {
        let h = host(&self.state)?;
        Ok(Response::new(info(&h, None).await))
    }

    async fn join(&self, r: Request<pb::JoinRequest>) -> Result<Response<pb::ClusterInfo>, Status> {
        let h = host(&self.state)?;
        let r = r.into_inner();
        if r.cluster.is_empty() || r.members.is_empty() {
            return Err(Status::invalid_argument(
                "a join names the cluster and its members",
            ));
        }
        let m = Membership {
            cluster: r.cluster,
            node_id: r.node_id,
            members: r
                .members
                .into_iter()
                .map(|m| MemberInfo {
                    id: m.id,
                    name: m.name,
                    address: m.address,
                    fingerprint: m.fingerprint,
                    data_address: m.data_address,
                })
                .collect(),
        };
        h.join(m).await.map_err(status)?;
        Ok(Response::new(info(&h, None).await))
    }

    async fn initialize(
        &self,
        r: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::ClusterInfo>, Status> {
        let h = host(&self.state)?;
        h.initialize(&r.into_inner().voters).await.map_err(status)?;
        Ok(Response::new(info(&h, None).await))
    }

    async fn propose(
        &self,
        r: Request<pb::ProposeRequest>,
    ) -> Result<Response<pb::ClusterInfo>, Status> {
        let h = host(&self.state)?;
        let cmd: Command = serde_json::from_str(&r.into_inner().command_json)
            .map_err(|e| Status::invalid_argument(format!("not a cluster command: {e}")))?;
        let applied = h.propose(cmd).await.map_err(status)?;
        Ok(Response::new(info(&h, Some(applied.epoch)).await))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_errors_name_members_as_the_operator_knows_them() {
        let names: BTreeMap<u64, String> =
            [(1, "axon001".to_string()), (11, "axon011".to_string())].into();
        assert_eq!(
            named(
                "lost: chunk 1: node 11: not reachable; node 1: refused: x",
                &names
            ),
            "lost: chunk 1: axon011 (node 11): not reachable; axon001 (node 1): refused: x"
        );
        // Not a member, or not "node ID:": left as it is.
        assert_eq!(
            named("node 7: not held; node 1 is", &names),
            "node 7: not held; node 1 is"
        );
        let s = io_status_named(
            IoError::Unavailable("node 1: no answer in 5 s".into()),
            &names,
        );
        assert_eq!(
            (s.code(), s.message()),
            (
                tonic::Code::Unavailable,
                "axon001 (node 1): no answer in 5 s"
            )
        );
    }
}

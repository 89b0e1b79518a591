//! `DataService` on the agent's gRPC port, for clients that run a frontend of their own
//! (`axon io … --direct`): they split objects into stripes and send the chunks to the
//! members themselves, as WEKA's clients do, instead of through one member's frontend —
//! one TLS hop fewer for every byte. Each call goes to the handler the data port serves
//! (`data::DataSvc`), behind the policy layer: reads need any token, writes the admin
//! token, and both are refused unless the cluster's IO is STARTED (as objects through a
//! member's frontend are). What members may do among themselves and clients may not:
//! free chunks (DeleteChunks: left to the members' orphan collection), write a manifest
//! dated more than `MANIFEST_AHEAD` past this node's clock, or send a message larger
//! than `wire::chunks::DIRECT_MAX_MESSAGE` (any other service on the port takes 4 MiB).

use super::AgentState;
use super::data::DataSvc;
use super::raft::ClusterHost;
use crate::dataplane::cluster::objects::Manifest;
use crate::model::cluster::IoStatus;
use crate::wire::pb;
use crate::wire::pb::data_service_server::DataService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// How far past this node's clock a direct client's manifest may be dated (generations
/// are nanoseconds since the epoch): clock skew, not a generation no later write can pass.
const MANIFEST_AHEAD: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Clone)]
pub struct DirectSvc {
    pub state: Arc<AgentState>,
}

impl DirectSvc {
    async fn data(&self) -> Result<(DataSvc, IoStatus), Status> {
        self.host()?
            .direct()
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))
    }

    fn host(&self) -> Result<Arc<ClusterHost>, Status> {
        self.state.cluster_host().ok_or_else(|| {
            Status::failed_precondition(
                "this agent hosts no cluster member: start it with --cluster-listen ADDR",
            )
        })
    }

    /// Counts chunk bytes a direct client moved (`cluster_direct_chunk_bytes`).
    fn count(&self, op: &'static str, bytes: usize) {
        if let Some(d) = self.host().ok().as_deref().and_then(|h| h.data_host()) {
            d.io.direct(op, bytes);
        }
    }

    /// The handler, for a call that reads or writes chunks or manifests: only while IO is
    /// STARTED (as objects through a member's frontend).
    async fn started(&self) -> Result<DataSvc, Status> {
        let (svc, io) = self.data().await?;
        if io != IoStatus::Started {
            return Err(Status::failed_precondition(format!(
                "the cluster's IO is {}: run axon start-io first",
                io.as_str()
            )));
        }
        Ok(svc)
    }
}

#[tonic::async_trait]
impl DataService for DirectSvc {
    async fn put_chunk(
        &self,
        r: Request<pb::PutChunkRequest>,
    ) -> Result<Response<pb::PutChunkReply>, Status> {
        let n = r.get_ref().data.len();
        let reply = self.started().await?.put_chunk(r).await?;
        self.count("put", n);
        Ok(reply)
    }

    async fn get_chunk(
        &self,
        r: Request<pb::GetChunkRequest>,
    ) -> Result<Response<pb::GetChunkReply>, Status> {
        let reply = self.started().await?.get_chunk(r).await?;
        self.count("get", reply.get_ref().data.len());
        Ok(reply)
    }

    async fn delete_chunks(
        &self,
        _r: Request<pb::DeleteChunksRequest>,
    ) -> Result<Response<pb::DeleteChunksReply>, Status> {
        Err(Status::permission_denied(
            "clients do not free chunks: the members free those no manifest names (orphan collection)",
        ))
    }

    async fn put_manifest(
        &self,
        r: Request<pb::ManifestPayload>,
    ) -> Result<Response<pb::PutManifestReply>, Status> {
        let svc = self.started().await?;
        let m: Manifest = serde_json::from_str(&r.get_ref().json)
            .map_err(|e| Status::invalid_argument(format!("not a manifest: {e}")))?;
        let latest = std::time::SystemTime::now()
            .checked_add(MANIFEST_AHEAD)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(u64::MAX, |d| d.as_nanos() as u64);
        if m.generation > latest {
            return Err(Status::invalid_argument(format!(
                "the manifest of {:?} is dated {} s past this node's clock (at most {} s): check the client's clock",
                m.key,
                (m.generation - latest) / 1_000_000_000 + MANIFEST_AHEAD.as_secs(),
                MANIFEST_AHEAD.as_secs()
            )));
        }
        svc.put_manifest(r).await
    }

    async fn get_manifest(
        &self,
        r: Request<pb::GetManifestRequest>,
    ) -> Result<Response<pb::ManifestPayload>, Status> {
        self.started().await?.get_manifest(r).await
    }

    async fn list_manifests(
        &self,
        r: Request<pb::ListManifestsRequest>,
    ) -> Result<Response<pb::ListManifestsReply>, Status> {
        self.started().await?.list_manifests(r).await
    }

    async fn ping(&self, r: Request<pb::PingRequest>) -> Result<Response<pb::PingReply>, Status> {
        self.data().await?.0.ping(r).await
    }

    async fn list_lost(
        &self,
        r: Request<pb::ListLostRequest>,
    ) -> Result<Response<pb::ListLostReply>, Status> {
        self.data().await?.0.list_lost(r).await
    }
}

//! `DataService` on the agent's gRPC port, for clients that run a frontend of their own
//! (`axon io … --direct`): they split objects into stripes and send the chunks to the
//! members themselves, as WEKA's clients do, instead of through one member's frontend —
//! one TLS hop fewer for every byte. Each call goes to the handler the data port serves
//! (`data::DataSvc`), behind the policy layer: reads need any token, writes the admin
//! token, and writes are refused unless the cluster's IO is STARTED.

use super::AgentState;
use super::data::DataSvc;
use super::raft::ClusterHost;
use crate::model::cluster::IoStatus;
use crate::wire::pb;
use crate::wire::pb::data_service_server::DataService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

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

    /// The handler, for a call that writes: only while IO is STARTED.
    async fn writer(&self) -> Result<DataSvc, Status> {
        let (svc, io) = self.data().await?;
        if io != IoStatus::Started {
            return Err(Status::failed_precondition(format!(
                "the cluster's IO is {}: run axon start-io first",
                io.as_str()
            )));
        }
        Ok(svc)
    }

    async fn reader(&self) -> Result<DataSvc, Status> {
        Ok(self.data().await?.0)
    }
}

#[tonic::async_trait]
impl DataService for DirectSvc {
    async fn put_chunk(
        &self,
        r: Request<pb::PutChunkRequest>,
    ) -> Result<Response<pb::PutChunkReply>, Status> {
        let n = r.get_ref().data.len();
        let reply = self.writer().await?.put_chunk(r).await?;
        self.count("put", n);
        Ok(reply)
    }

    async fn get_chunk(
        &self,
        r: Request<pb::GetChunkRequest>,
    ) -> Result<Response<pb::GetChunkReply>, Status> {
        let reply = self.reader().await?.get_chunk(r).await?;
        self.count("get", reply.get_ref().data.len());
        Ok(reply)
    }

    async fn delete_chunks(
        &self,
        r: Request<pb::DeleteChunksRequest>,
    ) -> Result<Response<pb::DeleteChunksReply>, Status> {
        self.writer().await?.delete_chunks(r).await
    }

    async fn put_manifest(
        &self,
        r: Request<pb::ManifestPayload>,
    ) -> Result<Response<pb::PutManifestReply>, Status> {
        self.writer().await?.put_manifest(r).await
    }

    async fn get_manifest(
        &self,
        r: Request<pb::GetManifestRequest>,
    ) -> Result<Response<pb::ManifestPayload>, Status> {
        self.reader().await?.get_manifest(r).await
    }

    async fn list_manifests(
        &self,
        r: Request<pb::ListManifestsRequest>,
    ) -> Result<Response<pb::ListManifestsReply>, Status> {
        self.reader().await?.list_manifests(r).await
    }

    async fn ping(&self, r: Request<pb::PingRequest>) -> Result<Response<pb::PingReply>, Status> {
        self.reader().await?.ping(r).await
    }
}

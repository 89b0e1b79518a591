//! Chunk traffic between members (`DataService`, proto/axon/v1/data.proto) on the agent's
//! data port (`--data-listen`, in the seed's 14000–14100 range), over the same mutual TLS
//! as Raft: only members' certificates, each member dialled pinned to its own. The server
//! side hands calls to the node's `NodeData` off the runtime (its store does blocking,
//! synced I/O); the client side is the frontend's `Net`, which calls this node directly.
//!
//! Back-pressure is HTTP/2's flow control per call plus the frontend's window of stripes in
//! flight; every call has a deadline, so a node that hangs costs one timeout, and the rest of
//! the operation avoids it.

use super::listen::{self, Limits, ServerStats, Which};
use super::raft::{MemberTls, Membership, member_channel};
use crate::dataplane::cluster::frontend::{IoError, Net, NetError};
use crate::dataplane::cluster::objects::{self, Manifest, NodeData, NodeError, NodeId, Summary};
use crate::dataplane::cluster::protection::{self, DataStatus, RebuildProgress};
use crate::wire::chunks::{CALL_DEADLINE, Remote, failed};
use crate::wire::pb;
use crate::wire::pb::data_service_client::DataServiceClient;
use bytes::Bytes;
use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::collections::HashSet;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

pub type Fe = crate::dataplane::cluster::frontend::Frontend<GrpcNet>;
pub use crate::dataplane::cluster::frontend::Layout;

/// Chunks and manifests are at most this big on the wire.
pub const MAX_MESSAGE: usize = 80 << 20;
/// HTTP/2 flow-control windows and frame size on the data port (both ends): room for
/// several chunks in flight per connection, and a chunk in few frames.
pub const DATA_CONN_WINDOW: u32 = 32 << 20;
pub const DATA_STREAM_WINDOW: u32 = 8 << 20;
pub const DATA_FRAME: u32 = 1 << 20;
/// How often a member pings the others (liveness, free space).
const PING_EVERY: Duration = Duration::from_secs(1);
/// A member silent this long is *away*: its chunks count as lost for protection.
pub const AWAY_AFTER: Duration = Duration::from_secs(3);

fn node_status(e: NodeError) -> Status {
    match e {
        NodeError::NotFound(k) => Status::not_found(k),
        NodeError::Lost(m) => Status::data_loss(m),
        NodeError::Refused(m) => Status::failed_precondition(m),
        NodeError::Failed(m) => Status::internal(m),
    }
}

/// Runs `f` on the node's data off the runtime, on Tokio's blocking pool: manifest calls,
/// catalogs and pings never wait behind chunk IO.
async fn blocking<T: Send + 'static>(
    node: &Arc<NodeData>,
    f: impl FnOnce(&NodeData) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    run_on(node, None, f).await
}

/// Runs chunk IO `f` on the node's drives container (when the agent runs one).
async fn chunk_io<T: Send + 'static>(
    node: &Arc<NodeData>,
    f: impl FnOnce(&NodeData) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    run_on(node, node.offload(), f).await
}

/// Runs `f` on the drives container's threads of `offload`, else on the blocking pool.
async fn run_on<T: Send + 'static>(
    node: &Arc<NodeData>,
    offload: Option<&Arc<dyn crate::dataplane::offload::Offload>>,
    f: impl FnOnce(&NodeData) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    let n = node.clone();
    crate::dataplane::offload::run(
        offload,
        crate::model::pinning::ContainerRole::Drives,
        move || f(&n),
    )
    .await
    .map_err(|e| NodeError::Failed(format!("the data task failed: {e}")))?
}

/// Group commit: calls that arrive while a batch is being made durable queue up and go
/// together in the next batch (at most `max` items and `max_weight`), so N concurrent
/// writes cost one fdatasync and one index commit rather than N. What is queued or being
/// written is bounded by weight (`queue_weight`; KiB for chunks): callers beyond it wait,
/// which is back-pressure. A caller that gave up before its batch started is dropped
/// from it.
struct Group<T, R> {
    tx: tokio::sync::mpsc::UnboundedSender<(T, tokio::sync::oneshot::Sender<R>)>,
    room: Arc<tokio::sync::Semaphore>,
    weight: fn(&T) -> u32,
    queue_weight: u32,
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// `run` takes a batch and returns one result per item, in order.
    fn start<F, Fut>(
        (max, max_weight, queue_weight): (usize, u32, u32),
        weight: fn(&T) -> u32,
        run: F,
    ) -> Group<T, R>
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Vec<R>> + Send,
    {
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(T, tokio::sync::oneshot::Sender<R>)>();
        tokio::spawn(async move {
            let mut next = None;
            // Ends when every sender is gone (the service and the frontend dropped).
            loop {
                let first = match next.take() {
                    Some(x) => x,
                    None => match rx.recv().await {
                        Some(x) => x,
                        None => return,
                    },
                };
                let mut w = weight(&first.0);
                let mut batch = vec![first];
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(x) if w.saturating_add(weight(&x.0)) > max_weight => {
                            next = Some(x);
                            break;
                        }
                        Ok(x) => {
                            w = w.saturating_add(weight(&x.0));
                            batch.push(x);
                        }
                        Err(_) => break,
                    }
                }
                batch.retain(|(_, reply)| !reply.is_closed());
                if batch.is_empty() {
                    continue;
                }
                let (items, replies): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                // A reply missing (a short result) drops its sender: that caller errs.
                for (reply, r) in replies.into_iter().zip(run(items).await) {
                    let _ = reply.send(r);
                }
            }
        });
        Group {
            tx,
            room: Arc::new(tokio::sync::Semaphore::new(queue_weight as usize)),
            weight,
            queue_weight,
        }
    }

    /// Queues `item` once there is room and waits for its batch; None if the batch never
    /// answered.
    async fn call(&self, item: T) -> Option<R> {
        let w = (self.weight)(&item).clamp(1, self.queue_weight);
        let _room = self.room.acquire_many(w).await.ok()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send((item, tx)).ok()?;
        rx.await.ok()
    }
}

/// Chunk bytes queued or being written, at most, in KiB (a caller beyond waits).
const WRITE_QUEUE_KIB: u32 = 128 << 10;
/// Chunk bytes made durable together, at most, in KiB.
const WRITE_BATCH_KIB: u32 = 8 << 10;
/// Chunks or manifests made durable together, at most.
const WRITE_BATCH: usize = 32;
/// Manifests queued or being written, at most.
const MANIFEST_QUEUE: u32 = 1024;

/// The same failure for each of `len` items of a batch that never ran.
fn all_failed<T>(len: usize, e: &NodeError) -> Vec<Result<T, NodeError>> {
    let text = e.to_string();
    (0..len)
        .map(|_| Err(NodeError::Failed(text.clone())))
        .collect()
}

fn kib(x: &(String, Bytes)) -> u32 {
    (x.1.len() as u64).div_ceil(1024).min(u64::from(u32::MAX)) as u32
}

/// A node's writes, group-committed: chunk puts on the drives container (one fdatasync per
/// drive and one store commit per batch), manifest puts on the blocking pool (one redb
/// transaction per batch). Shared by the data service and the node's own frontend.
pub struct Writes {
    chunks: Group<(String, Bytes), Result<(), NodeError>>,
    manifests: Group<Manifest, Result<bool, NodeError>>,
}

impl Writes {
    /// Must be called on the runtime (it starts the batching tasks).
    pub fn start(node: &Arc<NodeData>) -> Arc<Writes> {
        let n1 = node.clone();
        let chunks = Group::start(
            (WRITE_BATCH, WRITE_BATCH_KIB, WRITE_QUEUE_KIB),
            kib,
            move |items: Vec<(String, Bytes)>| {
                let node = n1.clone();
                async move {
                    let len = items.len();
                    match chunk_io(&node, move |n| Ok(n.put_chunks(&items))).await {
                        Ok(v) => v,
                        Err(e) => all_failed(len, &e),
                    }
                }
            },
        );
        let n2 = node.clone();
        let manifests = Group::start(
            (WRITE_BATCH, u32::MAX, MANIFEST_QUEUE),
            |_: &Manifest| 1,
            move |items: Vec<Manifest>| {
                let node = n2.clone();
                async move {
                    let len = items.len();
                    match blocking(&node, move |n| Ok(n.put_manifests(&items))).await {
                        Ok(v) => v,
                        Err(e) => all_failed(len, &e),
                    }
                }
            },
        );
        Arc::new(Writes { chunks, manifests })
    }

    pub async fn put_chunk(&self, key: String, data: Bytes) -> Result<(), NodeError> {
        self.chunks.call((key, data)).await.unwrap_or_else(|| {
            Err(NodeError::Failed(
                "the chunk write was lost (the node is stopping)".into(),
            ))
        })
    }

    pub async fn put_manifest(&self, m: Manifest) -> Result<bool, NodeError> {
        self.manifests.call(m).await.unwrap_or_else(|| {
            Err(NodeError::Failed(
                "the manifest write was lost (the node is stopping)".into(),
            ))
        })
    }
}

/// This node's `DataService`: on the data port for the members, and behind the policy
/// layer on the gRPC port for clients with a frontend of their own (`super::direct`).
#[derive(Clone)]
pub struct DataSvc {
    me: NodeId,
    node: Arc<NodeData>,
    writes: Arc<Writes>,
    chunk_size: u32,
    losses: Arc<LossCache>,
}

/// Lost chunk keys a ping carries at most (about 40 bytes each): a node with more says
/// how many and the list's version, and the members page through the whole list with
/// `ListLost` (`LOST_PAGE` keys a call) when the version changed.
const LOSSES_IN_PING: usize = 4096;
/// Lost chunk keys a `ListLost` reply carries at most (under 1 MiB).
const LOST_PAGE: usize = 16384;
/// A member's whole loss list is fetched again at most this often.
const LOSSES_REFETCH: Duration = Duration::from_secs(5);

/// This node's lost chunks as its pings and `ListLost` report them. Read from the store
/// at most once per `PING_EVERY`: every member pings every second, and the store's list
/// walks its index when there are losses. The last `LOSS_VERSIONS_KEPT` versions are kept,
/// so a member paging through a long list reads one version whole while repair changes
/// the list every second.
#[derive(Default)]
pub struct LossCache(Mutex<LossVersions>);

#[derive(Default)]
struct LossVersions {
    read: Option<Instant>,
    /// Newest last.
    kept: std::collections::VecDeque<Arc<LossList>>,
}

/// Versions of this node's loss list kept for members paging through it.
const LOSS_VERSIONS_KEPT: usize = 3;

/// Every chunk key this node holds but cannot serve, in key order, and a version that
/// changes when the list does (0 for none).
#[derive(Debug, Default)]
pub struct LossList {
    keys: Vec<String>,
    version: u64,
}

impl LossList {
    fn of(mut keys: Vec<String>) -> LossList {
        keys.sort_unstable();
        keys.dedup();
        let version = if keys.is_empty() {
            0
        } else {
            let crc = keys.iter().fold(0u32, |c, k| {
                crc32c::crc32c_append(crc32c::crc32c_append(c, k.as_bytes()), b"\n")
            });
            ((keys.len() as u64) << 32) | u64::from(crc)
        };
        LossList { keys, version }
    }

    /// Up to `limit` keys after `after` ("" for the first page), and whether more follow.
    fn page(&self, after: &str, limit: usize) -> (&[String], bool) {
        let start = if after.is_empty() {
            0
        } else {
            self.keys.partition_point(|k| k.as_str() <= after)
        };
        let end = start.saturating_add(limit.max(1)).min(self.keys.len());
        (&self.keys[start..end], end < self.keys.len())
    }
}

/// Node `n`'s losses from its ping's report of `keys` of `total` at `version`, against
/// the whole lists kept in `whole`: (losses, whether its whole list is to be fetched).
/// - none lost: none (and its kept list is dropped);
/// - the version of the kept list: that list;
/// - every key in the report: those (kept, unless the version is 0);
/// - a cut report: its keys over the last whole list (a chunk either lists counts), and
///   fetch — but not from a member of an older axon (version 0), which cannot be asked.
fn resolve_losses(
    whole: &mut HashMap<NodeId, (u64, Arc<protection::Losses>)>,
    n: NodeId,
    version: u64,
    total: u64,
    keys: &[String],
) -> (Arc<protection::Losses>, bool) {
    if total == 0 {
        whole.remove(&n);
        return (Arc::new(protection::Losses::default()), false);
    }
    if version != 0
        && let Some((v, l)) = whole.get(&n)
        && *v == version
    {
        return (l.clone(), false);
    }
    if keys.len() as u64 >= total {
        let l = Arc::new(protection::Losses::from_keys(keys, total));
        if version == 0 {
            whole.remove(&n);
        } else {
            whole.insert(n, (version, l.clone()));
        }
        return (l, false);
    }
    let l = match whole.get(&n) {
        Some((_, base)) => protection::Losses::over(base.clone(), keys, total),
        None => protection::Losses::from_keys(keys, total),
    };
    (Arc::new(l), version != 0)
}

/// Every key of a loss list read with `page` (the key after which to go on, and the
/// version to read: 0 for the node's current list, then the version its first page
/// named): (version, total, keys). Fails, to be read again later, if the node no longer
/// has that version, if keys come out of order, or if their number is not the total its
/// first page announced.
async fn all_pages<F, Fut>(mut page: F) -> Result<(u64, u64, Vec<String>), String>
where
    F: FnMut(String, u64) -> Fut,
    Fut: std::future::Future<Output = Result<pb::ListLostReply, String>>,
{
    let (mut keys, mut after, mut first) = (Vec::<String>::new(), String::new(), None);
    loop {
        let asked = first.map_or(0, |(v, _)| v);
        let r = page(after.clone(), asked).await?;
        let (version, total) = *first.get_or_insert((r.version, r.total));
        if r.version != version {
            return Err("the list changed while it was read".into());
        }
        if (keys.len() + r.keys.len()) as u64 > total {
            return Err(format!("more than the {total} keys announced"));
        }
        let mut prev = keys.last().cloned();
        for k in &r.keys {
            if prev.as_ref().is_some_and(|p| p >= k) {
                return Err(format!("keys out of order at {k:?}"));
            }
            prev = Some(k.clone());
        }
        after = match r.keys.last() {
            Some(k) => k.clone(),
            None => break,
        };
        keys.extend(r.keys);
        if !r.more {
            break;
        }
    }
    let (version, total) = first.unwrap_or_default();
    if keys.len() as u64 != total {
        return Err(format!("{} keys of the {total} announced", keys.len()));
    }
    Ok((version, total, keys))
}

impl LossCache {
    /// The current list.
    async fn get(&self, node: &Arc<NodeData>) -> Result<Arc<LossList>, NodeError> {
        if let Ok(g) = self.0.lock()
            && let (Some(t), Some(v)) = (g.read, g.kept.back())
            && t.elapsed() < PING_EVERY
        {
            return Ok(v.clone());
        }
        let v = Arc::new(blocking(node, |n| n.losses().map(LossList::of)).await?);
        if let Ok(mut g) = self.0.lock() {
            g.read = Some(Instant::now());
            if g.kept.back().is_none_or(|b| b.version != v.version) {
                g.kept.push_back(v.clone());
                while g.kept.len() > LOSS_VERSIONS_KEPT {
                    g.kept.pop_front();
                }
            }
        }
        Ok(v)
    }

    /// Version `version` of the list (0: the current one), if still kept.
    async fn version(
        &self,
        node: &Arc<NodeData>,
        version: u64,
    ) -> Result<Option<Arc<LossList>>, NodeError> {
        let now = self.get(node).await?;
        if version == 0 || now.version == version {
            return Ok(Some(now));
        }
        Ok(self
            .0
            .lock()
            .ok()
            .and_then(|g| g.kept.iter().find(|l| l.version == version).cloned()))
    }
}

fn manifest_of(json: &str) -> Result<Manifest, Status> {
    serde_json::from_str(json).map_err(|e| Status::invalid_argument(format!("not a manifest: {e}")))
}

#[tonic::async_trait]
impl pb::data_service_server::DataService for DataSvc {
    async fn put_chunk(
        &self,
        r: Request<pb::PutChunkRequest>,
    ) -> Result<Response<pb::PutChunkReply>, Status> {
        let r = r.into_inner();
        self.writes
            .put_chunk(r.key, r.data)
            .await
            .map_err(node_status)?;
        Ok(Response::new(pb::PutChunkReply::default()))
    }

    async fn get_chunk(
        &self,
        r: Request<pb::GetChunkRequest>,
    ) -> Result<Response<pb::GetChunkReply>, Status> {
        let key = r.into_inner().key;
        let data = chunk_io(&self.node, move |n| n.get_chunk(&key))
            .await
            .map_err(node_status)?;
        Ok(Response::new(pb::GetChunkReply { data }))
    }

    async fn delete_chunks(
        &self,
        r: Request<pb::DeleteChunksRequest>,
    ) -> Result<Response<pb::DeleteChunksReply>, Status> {
        let keys = r.into_inner().keys;
        let deleted = chunk_io(&self.node, move |n| n.delete_chunks(&keys))
            .await
            .map_err(node_status)?;
        Ok(Response::new(pb::DeleteChunksReply { deleted }))
    }

    async fn put_manifest(
        &self,
        r: Request<pb::ManifestPayload>,
    ) -> Result<Response<pb::PutManifestReply>, Status> {
        let m = manifest_of(&r.into_inner().json)?;
        let stored = self.writes.put_manifest(m).await.map_err(node_status)?;
        Ok(Response::new(pb::PutManifestReply { stored }))
    }

    async fn get_manifest(
        &self,
        r: Request<pb::GetManifestRequest>,
    ) -> Result<Response<pb::ManifestPayload>, Status> {
        let key = r.into_inner().key;
        let k2 = key.clone();
        let m = blocking(&self.node, move |n| n.get_manifest(&k2))
            .await
            .map_err(node_status)?
            .ok_or_else(|| Status::not_found(format!("no manifest of {key:?} here")))?;
        Ok(Response::new(pb::ManifestPayload {
            json: serde_json::to_string(&m).map_err(|e| Status::internal(e.to_string()))?,
        }))
    }

    async fn list_manifests(
        &self,
        r: Request<pb::ListManifestsRequest>,
    ) -> Result<Response<pb::ListManifestsReply>, Status> {
        let prefix = r.into_inner().prefix;
        let list = blocking(&self.node, move |n| n.manifests(&prefix))
            .await
            .map_err(node_status)?;
        Ok(Response::new(pb::ListManifestsReply {
            objects: list
                .iter()
                .map(|m| pb::ManifestSummary {
                    key: m.key.clone(),
                    generation: m.generation,
                    size: m.size,
                    deleted: m.deleted,
                    stripes: m.stripes.len() as u32,
                    writer: m.writer,
                    object: m.object.clone(),
                    revision: m.revision,
                })
                .collect(),
        }))
    }

    async fn ping(&self, _r: Request<pb::PingRequest>) -> Result<Response<pb::PingReply>, Status> {
        let (free, cap, chunks) = blocking(&self.node, |n| n.usage())
            .await
            .map_err(node_status)?;
        let losses = self.losses.get(&self.node).await.map_err(node_status)?;
        Ok(Response::new(pb::PingReply {
            node_id: self.me,
            free_bytes: free,
            capacity_bytes: cap,
            chunks,
            chunk_size: self.chunk_size,
            lost: losses.keys[..losses.keys.len().min(LOSSES_IN_PING)].to_vec(),
            lost_total: losses.keys.len() as u64,
            lost_version: losses.version,
        }))
    }

    async fn list_lost(
        &self,
        r: Request<pb::ListLostRequest>,
    ) -> Result<Response<pb::ListLostReply>, Status> {
        let r = r.into_inner();
        let losses = self
            .losses
            .version(&self.node, r.version)
            .await
            .map_err(node_status)?
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "version {} of this node's lost-chunk list is no longer kept (it changed since); start again from the first page",
                    r.version
                ))
            })?;
        let limit = (r.limit as usize).clamp(1, LOST_PAGE);
        let (keys, more) = losses.page(&r.after, limit);
        Ok(Response::new(pb::ListLostReply {
            keys: keys.to_vec(),
            more,
            version: losses.version,
            total: losses.keys.len() as u64,
        }))
    }
}

/// The data port, bound when the agent starts (so `cluster create` learns it), served once
/// the agent is a member (the members' certificates are known then).
/// The frontend's object IO as this node served it, for `/metrics`: latency histograms and
/// byte and error counters by operation (put, get). Shared with every scrape's registry.
#[derive(Clone)]
pub struct IoMetrics {
    pub seconds: Family<OpLabels, Histogram, fn() -> Histogram>,
    pub bytes: Family<OpLabels, Counter>,
    pub errors: Family<OpLabels, Counter>,
    /// Chunk bytes put and got by clients with a frontend of their own (`direct`).
    pub direct: Family<OpLabels, Counter>,
}

/// `op="put"` or `op="get"`.
pub type OpLabels = Vec<(&'static str, String)>;

fn latency_buckets() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for IoMetrics {
    fn default() -> Self {
        IoMetrics {
            seconds: Family::new_with_constructor(latency_buckets),
            bytes: Family::default(),
            errors: Family::default(),
            direct: Family::default(),
        }
    }
}

impl IoMetrics {
    /// Chunk bytes a direct client put (`op="put"`) or got (`op="get"`).
    pub fn direct(&self, op: &'static str, bytes: usize) {
        self.direct
            .get_or_create(&vec![("op", op.to_string())])
            .inc_by(bytes as u64);
    }

    /// One finished object operation `op` (put, get): its time, and bytes or the error.
    pub fn record(&self, op: &'static str, began: Instant, bytes: Option<u64>) {
        let l = vec![("op", op.to_string())];
        match bytes {
            Some(b) => {
                self.seconds
                    .get_or_create(&l)
                    .observe(began.elapsed().as_secs_f64());
                self.bytes.get_or_create(&l).inc_by(b);
            }
            None => {
                self.errors.get_or_create(&l).inc();
            }
        }
    }
}

pub struct DataHost {
    pub node: Arc<NodeData>,
    pub io: IoMetrics,
    status: Arc<Mutex<DataStatus>>,
    chunk_size: u32,
    listen: SocketAddr,
    port: u16,
    listener: Mutex<Option<tokio::net::TcpListener>>,
}

/// A member's data plane at work: its server, and its way to the others.
pub struct DataMember {
    pub net: Arc<GrpcNet>,
    /// The handler the data port serves, for the gRPC port's clients too.
    pub svc: DataSvc,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    stats: Arc<ServerStats>,
}

impl DataMember {
    pub fn shutdown(&self) {
        if let Some(tx) = self.stop.lock().ok().and_then(|mut s| s.take()) {
            let _ = tx.send(());
        }
        self.stats.shut_down();
    }

    pub fn refused_handshakes(&self) -> u64 {
        self.stats
            .grpc_tcp
            .handshake_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for DataMember {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl DataHost {
    pub async fn bind(listen: SocketAddr, node: Arc<NodeData>) -> Result<DataHost, String> {
        let l = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen} (--data-listen): {e}"))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let n = node.clone();
        let chunk_size = tokio::task::spawn_blocking(move || n.chunk_size())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(DataHost {
            node,
            io: IoMetrics::default(),
            status: Arc::new(Mutex::new(DataStatus::default())),
            chunk_size,
            listen: SocketAddr::new(listen.ip(), port),
            port,
            listener: Mutex::new(Some(l)),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn status(&self) -> DataStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set_status(&self, f: impl FnOnce(&mut DataStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// Data bytes per chunk this node's frontend writes: its store's chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Serves `DataService` to the members of `m` and connects to them.
    pub async fn start(&self, m: &Membership, tls: &MemberTls) -> Result<DataMember, String> {
        let listener = match self.listener.lock().ok().and_then(|mut l| l.take()) {
            Some(l) => l,
            None => tokio::net::TcpListener::bind(self.listen)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", self.listen))?,
        };
        let stats = Arc::new(ServerStats::default());
        let server_tls = tls.server_config().map_err(|e| e.to_string())?;
        let (incoming, accept) = listen::tcp_incoming(
            listener,
            Some(tokio_rustls::TlsAcceptor::from(server_tls)),
            Which::GrpcTcp,
            &Limits::default(),
            stats.clone(),
        );
        let writes = Writes::start(&self.node);
        let losses = Arc::new(LossCache::default());
        let handler = DataSvc {
            me: m.node_id,
            node: self.node.clone(),
            writes: writes.clone(),
            chunk_size: self.chunk_size,
            losses: losses.clone(),
        };
        let svc = pb::data_service_server::DataServiceServer::new(handler.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stop_accept = stats.clone();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                // Chunks are 1 MiB and many are in flight per member: HTTP/2's default
                // windows (1 MiB per connection) would stall every put on window updates.
                .initial_connection_window_size(DATA_CONN_WINDOW)
                .initial_stream_window_size(DATA_STREAM_WINDOW)
                .max_frame_size(DATA_FRAME)
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
            stop_accept.shut_down();
            let _ = accept.await;
        });
        let (mut peers, mut addrs) = (BTreeMap::new(), BTreeMap::new());
        for p in &m.members {
            if p.id == m.node_id || p.data_address.is_empty() {
                continue;
            }
            if let Some(ch) = member_channel(tls, p.id, &p.data_address) {
                peers.insert(p.id, ch);
                addrs.insert(p.id, p.data_address.clone());
            }
        }
        let net = Arc::new(GrpcNet {
            me: m.node_id,
            local: self.node.clone(),
            writes,
            peers,
            free: Mutex::new(HashMap::new()),
            cap: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            born: Instant::now(),
            addrs,
            down: Mutex::new(HashSet::new()),
            changed: tokio::sync::Notify::new(),
            own_losses: losses,
            losses: Mutex::new(HashMap::new()),
            whole_losses: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
            fetch_warned: Mutex::new(None),
        });
        let pinger = net.clone();
        let mut stop_ping = stats.stopping();
        tokio::spawn(async move {
            loop {
                pinger.ping_all().await;
                tokio::select! {
                    _ = tokio::time::sleep(PING_EVERY) => {}
                    _ = stop_ping.wait_for(|v| *v) => return,
                }
            }
        });
        Ok(DataMember {
            net,
            svc: handler,
            stop: Mutex::new(Some(tx)),
            stats,
        })
    }
}

/// The frontend's way to the members: gRPC to the others, a direct call to this node.
pub struct GrpcNet {
    me: NodeId,
    local: Arc<NodeData>,
    /// This node's writes, group-committed with the data service's.
    writes: Arc<Writes>,
    peers: BTreeMap<NodeId, Channel>,
    /// Free bytes each node reported last (placement's weights).
    free: Mutex<HashMap<NodeId, u64>>,
    /// Capacity each node reported last (writable drives), for capacity checks.
    cap: Mutex<HashMap<NodeId, u64>>,
    /// When each member last answered a ping, and when this node started counting.
    seen: Mutex<HashMap<NodeId, Instant>>,
    born: Instant,
    /// Each member's data address, to tell a stopped agent from a slow one.
    addrs: BTreeMap<NodeId, String>,
    /// Members whose data port refused a connection at the last ping: nothing listens
    /// there, so they are away now rather than after `AWAY_AFTER` of silence.
    down: Mutex<HashSet<NodeId>>,
    /// Fires when a member goes away or comes back, so the counts follow at once.
    changed: tokio::sync::Notify,
    /// This node's lost chunks (shared with its data service's pings).
    own_losses: Arc<LossCache>,
    /// The chunks each node (this one too) holds but cannot serve, as it reported last.
    losses: Mutex<HashMap<NodeId, Arc<protection::Losses>>>,
    /// Whole loss lists, by node: (version, list), kept while a node's pings report that
    /// version (a list longer than a ping carries is fetched with `ListLost`).
    whole_losses: Mutex<HashMap<NodeId, (u64, Arc<protection::Losses>)>>,
    /// Whole loss lists fetched: (under way, when the last began), by node.
    fetching: Mutex<HashMap<NodeId, (bool, Instant)>>,
    /// When a failed fetch of a loss list was last logged.
    fetch_warned: Mutex<Option<Instant>>,
}

/// Whether nothing listens at `addr`: a connection refused (the agent stopped, its data
/// service did, or a firewall rejects the port). A host that does not answer at all is not
/// "refused": its silence counts, after `AWAY_AFTER`.
async fn refused(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

fn local_err(node: NodeId, e: NodeError) -> NetError {
    match e {
        NodeError::NotFound(_) => NetError::NotFound(node),
        NodeError::Lost(m) => NetError::Lost(node, m),
        other => NetError::Refused(node, other.to_string()),
    }
}

impl GrpcNet {
    fn client(&self, node: NodeId) -> Result<DataServiceClient<Channel>, NetError> {
        let ch = crate::wire::chunks::member(
            &self.peers,
            node,
            "no data address recorded for this member (was it joined by an older axon?)",
        )?;
        Ok(DataServiceClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }

    /// Member `node`'s DataService on its data port; an error future when it has none.
    fn remote(&self, node: NodeId) -> Result<Remote<Channel>, NetError> {
        Ok(Remote {
            node,
            client: self.client(node)?,
            deadline: CALL_DEADLINE,
        })
    }

    /// When each member other than this one was last heard from (this node's start for
    /// one never heard from), read under one lock.
    fn last_heard<T>(&self, f: impl FnOnce(&mut dyn Iterator<Item = (NodeId, Instant)>) -> T) -> T {
        let seen = self.seen.lock();
        let seen = seen.as_deref().ok();
        let mut it = self.peers.keys().map(|&n| {
            let t = seen.and_then(|s| s.get(&n)).copied().unwrap_or(self.born);
            (n, t)
        });
        f(&mut it)
    }

    /// Members other than this one not heard from within `d`.
    pub fn away(&self, d: Duration) -> HashSet<NodeId> {
        self.last_heard(|it| {
            it.filter(|(_, t)| t.elapsed() > d)
                .map(|(n, _)| n)
                .collect()
        })
    }

    /// Members away now: silent for `AWAY_AFTER`, or refusing connections at the last ping.
    pub fn away_now(&self) -> HashSet<NodeId> {
        let mut away = self.away(AWAY_AFTER);
        if let Ok(d) = self.down.lock() {
            away.extend(d.iter().copied());
        }
        away
    }

    /// When the first member away now will have been silent for `d` (its rebuild due);
    /// None when no member is away or all have been for that long.
    pub fn away_until(&self, d: Duration) -> Option<Instant> {
        let away = self.away_now();
        let now = Instant::now();
        self.last_heard(|it| {
            it.filter(|(n, _)| away.contains(n))
                .map(|(_, t)| t + d)
                .filter(|t| *t > now)
                .min()
        })
    }

    /// Resolves when a member goes away or comes back (as the pings find it).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    pub fn node(&self) -> Arc<NodeData> {
        self.local.clone()
    }

    /// Free bytes by node, as last reported (this node's own, read now).
    pub fn free(&self) -> HashMap<NodeId, u64> {
        self.free.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Member `n`'s whole loss list, page by page, all from one version of it:
    /// (version, list).
    async fn fetch_losses(&self, n: NodeId) -> Result<(u64, protection::Losses), String> {
        let c = self.client(n).map_err(|e| e.to_string())?;
        let (version, total, keys) = all_pages(|after, version| {
            let mut c = c.clone();
            async move {
                let req = pb::ListLostRequest {
                    after,
                    limit: LOST_PAGE as u32,
                    version,
                };
                Ok(tokio::time::timeout(CALL_DEADLINE, c.list_lost(req))
                    .await
                    .map_err(|_| format!("no answer in {} s", CALL_DEADLINE.as_secs()))?
                    .map_err(|s| s.message().to_string())?
                    .into_inner())
            }
        })
        .await?;
        let l = tokio::task::spawn_blocking(move || protection::Losses::from_keys(&keys, total))
            .await
            .map_err(|e| e.to_string())?;
        Ok((version, l))
    }

    /// Fetches member `n`'s whole loss list in the background: one fetch at a time, at
    /// most one every `LOSSES_REFETCH`; the counts are redone when it is in. Failures are
    /// logged once a minute at most (the count then errs on the side of less protection).
    fn fetch_losses_later(self: &Arc<Self>, n: NodeId) {
        let start = self.fetching.lock().is_ok_and(|mut f| match f.get(&n) {
            Some((true, _)) => false,
            Some((false, t)) if t.elapsed() < LOSSES_REFETCH => false,
            _ => {
                f.insert(n, (true, Instant::now()));
                true
            }
        });
        if !start {
            return;
        }
        /// Clears the "under way" mark however the fetch ends (a panic too).
        struct Done(Arc<GrpcNet>, NodeId);
        impl Drop for Done {
            fn drop(&mut self) {
                if let Ok(mut f) = self.0.fetching.lock()
                    && let Some(e) = f.get_mut(&self.1)
                {
                    e.0 = false;
                }
            }
        }
        let net = self.clone();
        tokio::spawn(async move {
            let _done = Done(net.clone(), n);
            match net.fetch_losses(n).await {
                Ok((version, l)) => {
                    let l = Arc::new(l);
                    // Lock order: whole lists, then the reported ones (as in ping_all).
                    if let Ok(mut w) = net.whole_losses.lock() {
                        w.insert(n, (version, l.clone()));
                        if let Ok(mut all) = net.losses.lock() {
                            all.insert(n, l);
                        }
                    }
                    net.changed.notify_one();
                }
                Err(e) => {
                    let warn = net
                        .fetch_warned
                        .lock()
                        .map(|mut t| {
                            let due = t.is_none_or(|t| t.elapsed() > Duration::from_secs(60));
                            if due {
                                *t = Some(Instant::now());
                            }
                            due
                        })
                        .unwrap_or(false);
                    if warn {
                        tracing::warn!(
                            "member {n}'s list of lost chunks could not be read whole: {e}; its stripes are counted from its last whole list and its pings until it can (retried every {} s)",
                            LOSSES_REFETCH.as_secs()
                        );
                    }
                }
            }
        });
    }

    /// This node's own losses: its whole list, rebuilt off the runtime when it changed.
    async fn own_losses_now(&self) -> Option<Arc<protection::Losses>> {
        let l = self.own_losses.get(&self.local).await.ok()?;
        let held = self.whole_losses.lock().ok().and_then(|w| {
            w.get(&self.me)
                .filter(|(v, _)| *v == l.version)
                .map(|(_, x)| x.clone())
        });
        if let Some(x) = held {
            return Some(x);
        }
        let version = l.version;
        let x = tokio::task::spawn_blocking(move || {
            Arc::new(protection::Losses::from_keys(&l.keys, l.keys.len() as u64))
        })
        .await
        .ok()?;
        if let Ok(mut w) = self.whole_losses.lock() {
            if version == 0 {
                w.remove(&self.me);
            } else {
                w.insert(self.me, (version, x.clone()));
            }
        }
        Some(x)
    }

    /// Asks every member what it can take; a member that does not answer keeps its last
    /// figure.
    async fn ping_all(self: &Arc<Self>) {
        let mut got = HashMap::new();
        let mut caps = HashMap::new();
        let mut lost = HashMap::new();
        let local = self.local.clone();
        if let Ok(Ok((free, cap, _))) = tokio::task::spawn_blocking(move || local.usage()).await {
            got.insert(self.me, free);
            caps.insert(self.me, cap);
        }
        if let Some(l) = self.own_losses_now().await {
            lost.insert(self.me, l);
        }
        // What each member reported: (version, total, keys), resolved at the end.
        let mut reports = Vec::new();
        let calls = self.peers.keys().map(|&n| async move {
            let r = match self.client(n) {
                Ok(mut c) => {
                    tokio::time::timeout(Duration::from_secs(3), c.ping(pb::PingRequest {}))
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                }
                Err(_) => None,
            };
            (
                n,
                r.map(|r| {
                    let r = r.into_inner();
                    (
                        r.free_bytes,
                        r.capacity_bytes,
                        (r.lost_version, r.lost_total, r.lost),
                    )
                }),
            )
        });
        let now = Instant::now();
        let before = self.away_now();
        let mut silent = Vec::new();
        for (n, usage) in futures::future::join_all(calls).await {
            if let Some((f, c, report)) = usage {
                got.insert(n, f);
                caps.insert(n, c);
                reports.push((n, report));
                if let Ok(mut s) = self.seen.lock() {
                    s.insert(n, now);
                }
            } else {
                silent.push(n);
            }
        }
        // Of those that did not answer, the ones nothing listens for any more.
        let probes = silent.into_iter().map(|n| async move {
            let gone = match self.addrs.get(&n) {
                Some(a) => refused(a).await,
                None => false,
            };
            (n, gone)
        });
        let gone: HashSet<NodeId> = futures::future::join_all(probes)
            .await
            .into_iter()
            .filter_map(|(n, gone)| gone.then_some(n))
            .collect();
        if let Ok(mut d) = self.down.lock() {
            *d = gone;
        }
        if self.away_now() != before {
            self.changed.notify_one();
        }
        if let Ok(mut f) = self.free.lock() {
            f.extend(got);
        }
        if let Ok(mut c) = self.cap.lock() {
            c.extend(caps);
        }
        // Resolved against the whole lists as they are now (a fetch may have ended during
        // this round), under the same locks, in the same order, as a fetch stores one.
        let mut fetch = Vec::new();
        if let Ok(mut whole) = self.whole_losses.lock() {
            for (n, (version, total, keys)) in reports {
                let (l, partial) = resolve_losses(&mut whole, n, version, total, &keys);
                lost.insert(n, l);
                if partial {
                    fetch.push(n);
                }
            }
            if let Ok(mut l) = self.losses.lock() {
                l.extend(lost);
            }
        }
        for n in fetch {
            self.fetch_losses_later(n);
        }
    }

    /// The chunks each node holds but cannot serve, as it reported last (a node that
    /// stopped answering keeps its last report: it is away, and all its chunks count).
    pub fn losses(&self) -> HashMap<NodeId, Arc<protection::Losses>> {
        self.losses.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// (node, free bytes, capacity) as each node reported last.
    pub fn usage(&self) -> Vec<(NodeId, u64, u64)> {
        let free = self.free.lock().map(|f| f.clone()).unwrap_or_default();
        let cap = self.cap.lock().map(|c| c.clone()).unwrap_or_default();
        let mut v: Vec<_> = cap
            .iter()
            .map(|(n, c)| (*n, free.get(n).copied().unwrap_or(0), *c))
            .collect();
        v.sort_unstable();
        v
    }

    fn local<T: Send + 'static>(
        &self,
        f: impl FnOnce(&NodeData) -> Result<T, NodeError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, NetError>> {
        let (node, me) = (self.local.clone(), self.me);
        Box::pin(async move { blocking(&node, f).await.map_err(|e| local_err(me, e)) })
    }
}

impl Net for GrpcNet {
    fn put_chunk(
        &self,
        node: NodeId,
        key: String,
        data: Bytes,
    ) -> BoxFuture<'static, Result<(), NetError>> {
        if node == self.me {
            let (w, me) = (self.writes.clone(), self.me);
            return Box::pin(
                async move { w.put_chunk(key, data).await.map_err(|e| local_err(me, e)) },
            );
        }
        self.remote(node)
            .map_or_else(failed, |r| r.put_chunk(key, data))
    }

    fn get_chunk(&self, node: NodeId, key: String) -> BoxFuture<'static, Result<Bytes, NetError>> {
        if node == self.me {
            return self.local(move |n| n.get_chunk(&key));
        }
        self.remote(node).map_or_else(failed, |r| r.get_chunk(key))
    }

    fn delete_chunks(
        &self,
        node: NodeId,
        keys: Vec<String>,
    ) -> BoxFuture<'static, Result<(), NetError>> {
        if node == self.me {
            return self.local(move |n| n.delete_chunks(&keys).map(|_| ()));
        }
        self.remote(node)
            .map_or_else(failed, |r| r.delete_chunks(keys))
    }

    fn put_manifest(
        &self,
        node: NodeId,
        m: Arc<Manifest>,
    ) -> BoxFuture<'static, Result<bool, NetError>> {
        if node == self.me {
            let (w, me) = (self.writes.clone(), self.me);
            return Box::pin(async move {
                w.put_manifest((*m).clone())
                    .await
                    .map_err(|e| local_err(me, e))
            });
        }
        self.remote(node).map_or_else(failed, |r| r.put_manifest(m))
    }

    fn get_manifest(
        &self,
        node: NodeId,
        key: String,
    ) -> BoxFuture<'static, Result<Option<Manifest>, NetError>> {
        if node == self.me {
            return self.local(move |n| n.get_manifest(&key));
        }
        self.remote(node)
            .map_or_else(failed, |r| r.get_manifest(key))
    }

    fn list_manifests(
        &self,
        node: NodeId,
        prefix: String,
    ) -> BoxFuture<'static, Result<Vec<Summary>, NetError>> {
        if node == self.me {
            return self.local(move |n| {
                n.manifests(&prefix)
                    .map(|v| v.iter().map(Manifest::summary).collect())
            });
        }
        self.remote(node)
            .map_or_else(failed, |r| r.list_manifests(prefix))
    }
}

/// How rebuild behaves (`axon agent --rebuild-grace --rebuild-rate`).
#[derive(Debug, Clone, Copy)]
pub struct RebuildConfig {
    /// A member away this long has its chunks rebuilt elsewhere; one back sooner is not.
    pub grace: Duration,
    /// Bytes per second this node writes while rebuilding; None for no limit.
    pub rate: Option<u64>,
    /// A chunk no manifest refers to (a put that failed, an object overwritten or deleted
    /// or rebuilt elsewhere while this node was away) is freed once it has been found so
    /// this long; in-flight puts write their manifests well within it.
    pub orphan_grace: Duration,
}

/// Every 2 s, as soon as a member is found gone or back, and as a grace period ends:
/// counts the stripes this node is responsible for by chunks lost — on members away, or
/// held unreadable by members that answer — (protection), and when members have been
/// away longer than the grace period, rebuilds
/// their chunks elsewhere — the most degraded objects first, at the configured rate,
/// reporting progress every 2 s. Runs while the agent does.
pub async fn watch_data(host: Arc<super::raft::ClusterHost>, cfg: RebuildConfig) {
    let running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let moving = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The pass in flight stops with this task (an agent, or a demo node, shutting down).
    struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(h) = self.0.take() {
                h.abort();
            }
        }
    }
    let mut pass = AbortOnDrop(None);
    let mut move_pass = AbortOnDrop(None);
    // The member chunks are being moved onto, until it holds its share.
    let mut filling: Option<NodeId> = None;
    let mut orphans: HashMap<String, Instant> = HashMap::new();
    let mut round = 0u64;
    // Where the next round's repair of lost chunks goes on (see `repair_own`).
    let mut repair_turn = RepairTurn::default();
    let mut last_away: HashSet<NodeId> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_net: Option<Arc<GrpcNet>> = None;
    // When a member away now passes the grace period: its rebuild starts then, on every
    // member alike, not at each one's next tick.
    let mut due: Option<Instant> = None;
    loop {
        // Every 2 s, at once when the pings find a member gone or back, and when a grace
        // period ends.
        match &last_net {
            Some(n) => {
                let grace_over = async {
                    match due {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = n.changed() => {}
                    _ = grace_over => {}
                }
            }
            None => {
                tick.tick().await;
            }
        }
        let Some(dh) = host.data_host() else { return };
        let Ok((fe, mut layout, net, config)) = host.data_view().await else {
            continue;
        };
        last_net = Some(net.clone());
        let away = net.away_now();
        let failed = net.away(cfg.grace.max(AWAY_AFTER));
        // A little past the moment, so that `away(grace)` holds then.
        due = net
            .away_until(cfg.grace.max(AWAY_AFTER))
            .map(|t| t + Duration::from_millis(20));
        let node = net.node();
        let Ok(Ok(all)) = tokio::task::spawn_blocking(move || node.manifests("")).await else {
            continue;
        };
        let me = net.me();
        let node = net.node();
        if let Ok(Ok((_, _, held))) = tokio::task::spawn_blocking(move || node.usage()).await {
            dh.set_status(|s| s.chunks_held = held);
        }
        // Chunks of this node's own that it cannot serve: rewritten from their stripes.
        let mut lost_here = 0;
        if config.io == crate::model::cluster::IoStatus::Started {
            // They are being rewritten from now on, not after this round.
            dh.set_status(|s| s.repair_paused = false);
            let (lost, repaired) =
                repair_own(&fe, &net, &layout, &all, &mut repair_turn, cfg.rate).await;
            lost_here = lost;
            dh.set_status(|s| {
                s.lost_chunks = lost;
                s.repaired_chunks += repaired;
            });
        } else {
            // IO stopped: nothing rewrites them, and they are said to wait. Counted as
            // `repair_own` counts them: not the chunks of objects no manifest here names
            // (orphans, whose loss is no stripe's). Unknown if the list cannot be read.
            let lost = match net.own_losses.get(&net.local).await {
                Ok(l) => named_losses(&l.keys, &all),
                Err(_) => 0,
            };
            dh.set_status(|s| {
                s.lost_chunks = lost;
                s.repair_paused = lost > 0;
            });
        }
        // Anti-entropy and orphaned chunks, every 30 s and soon after this node starts
        // or a member comes back, only with every member answering.
        round += 1;
        let returned = last_away.iter().any(|n| !away.contains(n));
        last_away = away.clone();
        if (round % 15 == 0 || round == 3 || returned)
            && away.is_empty()
            && config.io == crate::model::cluster::IoStatus::Started
        {
            let freed = collect_orphans(&fe, &net, &layout, cfg.orphan_grace, &mut orphans).await;
            if freed > 0 {
                dh.set_status(|s| s.orphans_freed += freed);
            }
        }
        let mine: Vec<Manifest> = all
            .into_iter()
            .filter(|m| !m.deleted && protection::responsible(&m.key, &layout.members, &away, me))
            .collect();
        let refs: Vec<&Manifest> = mine.iter().collect();
        // Chunks that nodes answering hold but cannot serve count as lost in their
        // stripes; with IO started their holders are rewriting them (`repair_own`),
        // which is a rebuild.
        let losses = net.losses();
        let repairing = config.io == crate::model::cluster::IoStatus::Started
            && losses
                .iter()
                .any(|(n, l)| !l.is_empty() && !away.contains(n));
        let by_lost = protection::count(&refs, config.m, &away, &losses);
        // A member away, or chunks lost here: a redistribution under way stops (the
        // rebuild or the repair comes first, and a move must not take a stripe's last
        // spare chunk away).
        if (!away.is_empty() || lost_here > 0) && moving.load(std::sync::atomic::Ordering::Relaxed)
        {
            if let Some(h) = move_pass.0.take() {
                h.abort();
            }
            moving.store(false, std::sync::atomic::Ordering::Relaxed);
            filling = None;
        }
        let rebuilding = running.load(std::sync::atomic::Ordering::Relaxed);
        let redistributing = moving.load(std::sync::atomic::Ordering::Relaxed);
        dh.set_status(|s| {
            s.node = me;
            s.stripes_by_lost = by_lost.clone();
            s.objects = mine.len() as u64;
            s.bytes = mine.iter().map(|m| m.size).sum();
            s.away = sorted(&away);
            s.failed = sorted(&failed);
            s.protection = match protection::word(&by_lost, config.m, rebuilding || repairing) {
                "OK" if redistributing => "REDISTRIBUTING",
                w => w,
            }
            .to_string();
        });
        if rebuilding || redistributing || config.io != crate::model::cluster::IoStatus::Started {
            continue;
        }
        if failed.is_empty() {
            // Redistribution: with every member answering and every stripe of this node's
            // whole, chunks move from the fullest member to the emptiest (one that came
            // back after its chunks were rebuilt elsewhere, or was added).
            if !away.is_empty() || lost_here > 0 || by_lost.iter().skip(1).any(|n| *n > 0) {
                continue;
            }
            let chunk = u64::from(dh.chunk_size()).max(1);
            let Some((from, to, budget)) =
                plan_move(&net.usage(), &layout, chunk, layout.members.len(), filling)
            else {
                filling = None;
                continue;
            };
            if filling != Some(to) {
                let used: Vec<String> = net
                    .usage()
                    .iter()
                    .map(|(n, free, cap)| {
                        format!(
                            "{n}: {}",
                            humansize::format_size(cap.saturating_sub(*free), humansize::BINARY)
                        )
                    })
                    .collect();
                tracing::info!(
                    "redistribution: member {to} holds less than half the average; moving chunks from member {from} (used: {})",
                    used.join(", ")
                );
            }
            filling = Some(to);
            let keys: Vec<String> = mine
                .iter()
                .filter(|m| {
                    m.stripes
                        .iter()
                        .any(|st| st.nodes.contains(&from) && !st.nodes.contains(&to))
                })
                .map(|m| m.key.clone())
                .collect();
            if keys.is_empty() {
                continue;
            }
            moving.store(true, std::sync::atomic::Ordering::Relaxed);
            let (status, flag) = (dh.status.clone(), moving.clone());
            move_pass.0 = Some(tokio::spawn(async move {
                // The flag clears however the pass ends (done, aborted, panicked).
                struct Clear(Arc<std::sync::atomic::AtomicBool>);
                impl Drop for Clear {
                    fn drop(&mut self) {
                        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                let _clear = Clear(flag);
                let moved = redistribute_pass(&fe, &layout, keys, from, to, budget, cfg.rate).await;
                if let Ok(mut s) = status.lock() {
                    s.moved_chunks += moved;
                }
            }));
            continue;
        }
        // Work: objects with chunks on failed members, most chunks lost in a stripe first.
        let mut work: Vec<(usize, u64, Manifest)> = mine
            .iter()
            .filter_map(|m| {
                let worst = m
                    .stripes
                    .iter()
                    .map(|st| st.nodes.iter().filter(|n| away.contains(n)).count())
                    .max()
                    .unwrap_or(0);
                let touched = m
                    .stripes
                    .iter()
                    .filter(|st| st.nodes.iter().any(|n| failed.contains(n)))
                    .count() as u64;
                (touched > 0).then(|| (worst, touched, m.clone()))
            })
            .collect();
        if work.is_empty() {
            continue;
        }
        work.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.key.cmp(&b.2.key)));
        layout.writable.retain(|d| !away.contains(&d.node));
        running.store(true, std::sync::atomic::Ordering::Relaxed);
        let total: u64 = work.iter().map(|w| w.1).sum();
        let status = dh.status.clone();
        let done_flag = running.clone();
        pass.0 = Some(tokio::spawn(async move {
            rebuild_pass(fe, layout, failed, work, total, cfg.rate, status).await;
            done_flag.store(false, std::sync::atomic::Ordering::Relaxed);
        }));
    }
}

/// Whether the members' usage calls for moving chunks: (from, to, chunks this node moves
/// this pass). From the fullest writable member to the emptiest, when the emptiest holds
/// less than half the average (a member that came back after its chunks were rebuilt
/// elsewhere, or was added — not the spread random placement leaves) and at least 8
/// chunks less than the fullest; once started for a member (`filling`), until it holds
/// 90 % of the average. Each member moves its share of the deficit (only its own
/// objects' chunks).
fn plan_move(
    usage: &[(NodeId, u64, u64)],
    layout: &Layout,
    chunk: u64,
    members: usize,
    filling: Option<NodeId>,
) -> Option<(NodeId, NodeId, usize)> {
    // Fill in parts per million of each member's capacity: members with smaller drives
    // hold proportionally less.
    let used: Vec<(NodeId, u64, u64, u64)> = usage
        .iter()
        .filter(|(n, _, cap)| *cap > 0 && layout.writable.iter().any(|d| d.node == *n))
        .map(|(n, free, cap)| {
            let used = cap.saturating_sub(*free);
            let ppm = (u128::from(used) * 1_000_000 / u128::from(*cap)) as u64;
            (*n, ppm, used, *free)
        })
        .collect();
    if used.len() < 2 {
        return None;
    }
    let avg = used.iter().map(|u| u.1).sum::<u64>() / used.len() as u64;
    let &(to, low, low_bytes, to_free) = used.iter().min_by_key(|u| (u.1, u.0))?;
    let &(from, high, high_bytes, _) = used.iter().max_by_key(|u| (u.1, std::cmp::Reverse(u.0)))?;
    let short = if filling == Some(to) {
        low * 10 < avg * 9
    } else {
        low * 2 < avg
    };
    if from == to || !short || high <= low || high_bytes.saturating_sub(low_bytes) < 8 * chunk {
        return None;
    }
    // The deficit in bytes of `to`'s capacity, never more than it has free.
    let cap_to = low_bytes + to_free;
    let deficit = (u128::from(avg - low) * u128::from(cap_to) / 1_000_000) as u64;
    let chunks = deficit.min(to_free) / chunk;
    Some((
        from,
        to,
        chunks.div_ceil(members.max(1) as u64).max(1) as usize,
    ))
}

/// Paces a pass at `rate` bytes per second (None or 0: unpaced): each call waits until
/// the bytes announced so far are due, counted from the pacer's creation.
type Pace = Arc<dyn Fn(u64) -> BoxFuture<'static, ()> + Send + Sync>;

fn pacer(rate: Option<u64>) -> Pace {
    let started = Instant::now();
    let sent = Arc::new(Mutex::new(0u64));
    Arc::new(move |n: u64| -> BoxFuture<'static, ()> {
        let sent = sent.clone();
        Box::pin(async move {
            let Some(rate) = rate.filter(|r| *r > 0) else {
                return;
            };
            let total = {
                let mut s = sent.lock().expect("pacer");
                *s += n;
                *s
            };
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            let now = started.elapsed();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        })
    })
}

/// Moves up to `budget` chunks of this node's objects `keys` from `from` to `to`, at the
/// rebuild rate; returns how many moved.
async fn redistribute_pass(
    fe: &Fe,
    layout: &Layout,
    keys: Vec<String>,
    from: NodeId,
    to: NodeId,
    budget: usize,
    rate: Option<u64>,
) -> u64 {
    let started = Instant::now();
    let pace = pacer(rate);
    let (mut moved, mut bytes) = (0u64, 0u64);
    for key in keys {
        if moved as usize >= budget {
            break;
        }
        // The newest manifest among the members: this node's copy may be older.
        let cur = match fe.manifest(&key, layout).await {
            Ok(m) => m,
            Err(_) => continue,
        };
        match fe
            .move_chunks(cur, layout, from, to, budget - moved as usize, &*pace)
            .await
        {
            Ok((n, b)) => {
                moved += n;
                bytes += b;
            }
            Err(e) => {
                // A member that stops answering, a refusal: this pass ends; the next
                // round decides again.
                tracing::warn!("redistribution: {key:?}: {e}; pass ended");
                break;
            }
        }
    }
    if moved > 0 {
        tracing::info!(
            "redistribution: moved {moved} chunk(s), {} from member {from} to member {to} in {:.1} s",
            humansize::format_size(bytes, humansize::BINARY),
            started.elapsed().as_secs_f64()
        );
    }
    moved
}

/// One round of anti-entropy and orphan collection, with every member's catalog:
/// - the manifests of the keys this node is a home node of (the first m+1 of their
///   ranking) are brought up to the newest any member holds (a node that was away missed
///   the writes and repairs of its time away; the responsible node counts from them);
/// - this node's chunks that no current manifest places here — their object unknown to
///   every member, overwritten, deleted, or its chunk rebuilt on another node — are
///   noted, and freed once noted for `grace`. Returns how many were freed.
async fn collect_orphans(
    fe: &Fe,
    net: &Arc<GrpcNet>,
    layout: &Layout,
    grace: Duration,
    noted: &mut HashMap<String, Instant>,
) -> u64 {
    // Every member must answer: an object only some member knows is not an orphan.
    let Ok(catalog) = fe.catalog(layout).await else {
        return 0;
    };
    let me = net.me();
    let mut newest: HashMap<&str, (u64, NodeId, u32)> = HashMap::new();
    let mut mine: HashMap<&str, (u64, NodeId, u32)> = HashMap::new();
    let mut keys: HashMap<String, String> = HashMap::new();
    for (n, s) in &catalog {
        let e = newest.entry(s.key.as_str()).or_insert(s.order());
        if s.order() > *e {
            *e = s.order();
        }
        if *n == me {
            mine.insert(s.key.as_str(), s.order());
        }
        keys.insert(s.object.clone(), s.key.clone());
    }
    let mut synced = 0u64;
    for (key, order) in &newest {
        let home = objects::home_ranking(key, &layout.members)
            .into_iter()
            .take(layout.m + 1)
            .any(|n| n == me);
        if !home || mine.get(key).is_some_and(|o| o >= order) {
            continue;
        }
        if let Ok(Some(m)) = fe.newest(key, layout).await {
            let node = net.node();
            if let Ok(Ok(true)) = tokio::task::spawn_blocking(move || node.put_manifest(&m)).await {
                synced += 1;
            }
        }
    }
    if synced > 0 {
        tracing::info!("manifests: brought {synced} of this home node's manifests up to date");
    }
    let node = net.node();
    let scan_start = Instant::now();
    let Ok(Ok(held)) = tokio::task::spawn_blocking(move || node.chunks_by_object()).await else {
        return 0;
    };
    if held.is_empty() {
        noted.clear();
        return 0;
    }
    let mut now_orphans: Vec<String> = Vec::new();
    for (object, chunks) in &held {
        let current = match keys.get(object) {
            None => None,
            Some(key) => match fe.newest(key, layout).await {
                Ok(m) => m,
                Err(_) => return 0,
            },
        };
        // Still being written or repaired here: its manifest comes after its chunks.
        if net
            .node()
            .last_written(object)
            .is_some_and(|t| t.elapsed() < grace)
        {
            continue;
        }
        for &(s, i) in chunks {
            let placed_here = current
                .as_ref()
                .is_some_and(|m| !m.deleted && m.object == *object && m.node_of(s, i) == Some(me));
            if !placed_here {
                now_orphans.push(objects::chunk_key(object, s, i));
            }
        }
    }
    net.node().forget_writes_before(grace * 2);
    let now = Instant::now();
    let current: HashSet<&String> = now_orphans.iter().collect();
    noted.retain(|k, _| current.contains(k));
    let due: Vec<String> = now_orphans
        .into_iter()
        .filter(|k| now.duration_since(*noted.entry(k.clone()).or_insert(now)) >= grace)
        .collect();
    if due.is_empty() {
        return 0;
    }
    for k in &due {
        noted.remove(k);
    }
    let node = net.node();
    let n = due.len();
    // A chunk written here since the scan began (a redistribution moving it here, a
    // repair) is not the orphan the scan saw: kept.
    let fresh = move |k: &String| {
        objects::parse_chunk_key(k)
            .and_then(|(object, _, _)| node.last_written(object))
            .is_some_and(|t| t >= scan_start)
    };
    let node = net.node();
    match tokio::task::spawn_blocking(move || {
        let due: Vec<String> = due.into_iter().filter(|k| !fresh(k)).collect();
        node.delete_chunks(&due)
    })
    .await
    {
        Ok(Ok(freed)) => {
            tracing::info!(
                "orphans: freed {freed} chunk(s) no manifest places on this node (failed puts, objects overwritten, deleted or rebuilt elsewhere while it was away)"
            );
            freed
        }
        Ok(Err(e)) => {
            tracing::warn!("orphans: freeing {n} chunk(s): {e}");
            0
        }
        Err(e) => {
            tracing::warn!("orphans: freeing {n} chunk(s): {e}");
            0
        }
    }
}

/// Objects a rebuild pass repairs at once (each up to `REPAIR_WINDOW` stripes): the pass
/// is bound by round trips, not bandwidth.
const REBUILD_OBJECTS: usize = 32;

/// How long a rebuild pass trusts its listing of the members' newest manifests.
const LISTING_FRESH: Duration = Duration::from_secs(2);

/// At most this many lost chunks are rewritten per 2 s round.
const REPAIR_PER_ROUND: usize = 64;

/// How long, after a chunk could not be rewritten here (no drive with room), lost chunks
/// go straight to other members instead of being tried here first.
const NO_ROOM_FOR: Duration = Duration::from_secs(60);

/// Where `repair_own` goes on from one round to the next.
#[derive(Default)]
struct RepairTurn {
    /// Where the next round starts in the list of lost chunks.
    from: usize,
    /// Until then this node has no room for a rewritten chunk (its last drive failed,
    /// or the others are full): lost chunks go straight to other members.
    no_room_until: Option<Instant>,
    /// Not before then are objects repaired onto other members again: the last try
    /// found nowhere to put them.
    elsewhere_after: Option<Instant>,
}

/// Of lost chunk `keys`, those of objects a live manifest in `all` names.
fn named_losses(keys: &[String], all: &[Manifest]) -> u64 {
    let live: HashSet<&str> = all
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| m.object.as_str())
        .collect();
    keys.iter()
        .filter(|k| objects::parse_chunk_key(k).is_some_and(|(o, _, _)| live.contains(o)))
        .count() as u64
}

/// Rewrites chunks this node lost (a failed drive) or holds damaged, each rebuilt from k
/// other chunks of its stripe and written back here (to a healthy drive), under the same
/// key: the manifest stays as it is. When this node has no room for them (its last drive
/// failed, the others are full), their objects are repaired onto other members instead,
/// as a rebuild does for a member away (`Frontend::repair`: each stripe's chunk here goes
/// to a node outside the stripe, and the manifest's next revision says so); what stays
/// here is then an orphan, freed by the collector. A chunk this node's manifests do not
/// place here is left to the orphan collector. Each round takes up to `REPAIR_PER_ROUND`
/// of the list from `turn.from` on, wrapping around, and leaves it after them: chunks
/// that cannot be repaired yet do not keep the rest from their turn. Returns (still
/// lost, rewritten here or elsewhere).
async fn repair_own(
    fe: &Fe,
    net: &Arc<GrpcNet>,
    layout: &Layout,
    all: &[Manifest],
    turn: &mut RepairTurn,
    rate: Option<u64>,
) -> (u64, u64) {
    let node = net.node();
    let Ok(Ok(lost)) = tokio::task::spawn_blocking(move || node.losses()).await else {
        return (0, 0);
    };
    if lost.is_empty() {
        return (0, 0);
    }
    let me = net.me();
    let by_object: HashMap<&str, &Manifest> = all
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| (m.object.as_str(), m))
        .collect();
    // Lost chunks no manifest here names: overwritten or deleted since (or this node
    // missed a publish, which anti-entropy brings). An orphan's loss is no stripe's: not
    // counted, and left to the orphan collector, which asks every member before it
    // frees anything. Counted over the whole list, not this round's share.
    let unnamed = lost.len() as u64 - named_losses(&lost, all);
    // Rewritten (here or elsewhere), and of those here.
    let (mut repaired, mut here_now) = (0u64, 0u64);
    let mut avoid = net.away_now();
    avoid.insert(me);
    let elsewhere_now = turn.elsewhere_after.is_none_or(|t| Instant::now() >= t);
    // Objects to repair onto other members, by key, with their chunks lost here.
    let mut elsewhere: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Lost chunks the newest manifests no longer place here.
    let mut superseded: Vec<String> = Vec::new();
    let mut from = turn.from;
    for key in this_turn(&lost, &mut from, REPAIR_PER_ROUND) {
        let Some((object, i, idx)) = objects::parse_chunk_key(key) else {
            continue;
        };
        // This node's copy of the manifest may be missing or old (a publish needs only m+1
        // acknowledgements): such a chunk is left to the orphan collector, which asks
        // every member before it frees anything.
        let here = |m: &Manifest| m.object == object && m.node_of(i, idx) == Some(me);
        let m: Manifest = match by_object.get(object) {
            Some(m) if here(m) => (*m).clone(),
            // An older copy here: the newest among the members decides.
            Some(m) => match fe.newest(&m.key, layout).await {
                Ok(Some(n)) if !n.deleted && here(&n) => n,
                // Every member answered, and the chunk is not this node's any more
                // (rebuilt elsewhere, overwritten, deleted): nothing to repair, and its
                // unreadable copy is dropped.
                Ok(_) => {
                    superseded.push(key.clone());
                    continue;
                }
                Err(_) => continue,
            },
            None => continue,
        };
        if turn.no_room_until.is_some_and(|t| Instant::now() < t) {
            if elsewhere_now {
                elsewhere
                    .entry(m.key.clone())
                    .or_default()
                    .push(key.clone());
            }
            continue;
        }
        let data = match fe.rebuild_chunk(&m, i, idx, &avoid).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("repair: {key}: {e}");
                continue;
            }
        };
        let node = net.node();
        let k = key.clone();
        match tokio::task::spawn_blocking(move || node.put_chunk(&k, &data)).await {
            Ok(Ok(())) => {
                repaired += 1;
                here_now += 1;
            }
            Ok(Err(e)) => {
                // No drive here has a free slot (the last one failed, the others are
                // full): this and the rest go to other members. Any other error is
                // this chunk's own.
                let node = net.node();
                let chunk = u64::from(node.chunk_size().unwrap_or(1)).max(1);
                let room = tokio::task::spawn_blocking(move || node.usage())
                    .await
                    .ok()
                    .and_then(|u| u.ok())
                    .is_some_and(|(free, _, _)| free >= chunk);
                if room {
                    tracing::warn!("repair: writing {key}: {e}");
                    continue;
                }
                tracing::warn!(
                    "repair: no room here for chunks lost on a failed drive ({e}); rebuilding them on other members instead"
                );
                turn.no_room_until = Some(Instant::now() + NO_ROOM_FOR);
                if elsewhere_now {
                    elsewhere
                        .entry(m.key.clone())
                        .or_default()
                        .push(key.clone());
                }
            }
            Err(e) => tracing::warn!("repair: writing {key}: {e}"),
        }
    }
    turn.from = from;
    if !elsewhere.is_empty() {
        let lost_here = HashSet::from([me]);
        // At the configured rebuild rate, as a rebuild.
        let pace = pacer(rate);
        use futures::StreamExt;
        // (key, its chunks lost here, (stripes, bytes) repaired elsewhere).
        type Moved = (String, Vec<String>, Result<(u64, u64), IoError>);
        let done: Vec<Moved> = futures::stream::iter(elsewhere)
            .map(|(key, chunks)| {
                let (lost_here, pace) = (&lost_here, &pace);
                async move {
                    let r = fe.repair(&key, layout, lost_here, &**pace).await;
                    (key, chunks, r)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let (mut objects_moved, mut stripes, mut bytes) = (0u64, 0u64, 0u64);
        let mut failed = Vec::new();
        for (key, chunks, r) in done {
            match r {
                Ok((s, b)) => {
                    if s > 0 {
                        repaired += chunks.len() as u64;
                    }
                    objects_moved += u64::from(s > 0);
                    stripes += s;
                    bytes += b;
                    // Dropped only where the newest manifest (every member answering)
                    // no longer places them here: another revision of the same order
                    // may have won the publish.
                    if let Ok(Some(n)) = fe.newest(&key, layout).await {
                        superseded.extend(chunks.into_iter().filter(|c| {
                            objects::parse_chunk_key(c).is_some_and(|(o, i, idx)| {
                                n.deleted || n.object != o || n.node_of(i, idx) != Some(me)
                            })
                        }));
                    }
                }
                Err(e) => failed.push(format!("{key:?}: {e}")),
            }
        }
        if stripes > 0 {
            tracing::info!(
                "repair: {stripes} stripe(s) of {objects_moved} object(s) rebuilt on other members ({}), for chunks lost here with no room to rewrite them",
                humansize::format_size(bytes, humansize::BINARY)
            );
        }
        if let Some(first) = failed.first() {
            // Nowhere to put them (every failure domain holds a chunk of the stripe, or
            // is full or away): tried again in a while, not every round.
            turn.elsewhere_after = Some(Instant::now() + NO_ROOM_FOR);
            tracing::warn!(
                "repair: {} object(s) could not be rebuilt on other members (tried again in {} s); the first: {first}",
                failed.len(),
                NO_ROOM_FOR.as_secs()
            );
        }
    }
    // Their unreadable copies here are dropped (the orphan collector would free them, but
    // only after its grace, and until then they would count as lost) — those still lost
    // now: a chunk written here meanwhile under the same key is not touched.
    let mut dropped = 0u64;
    if !superseded.is_empty() {
        let node = net.node();
        let r = tokio::task::spawn_blocking(move || {
            let still: HashSet<String> = node.losses()?.into_iter().collect();
            let keys: Vec<String> = superseded
                .into_iter()
                .filter(|k| still.contains(k))
                .collect();
            node.delete_chunks(&keys)
        })
        .await;
        match r {
            Ok(Ok(n)) => dropped = n,
            Ok(Err(e)) => tracing::warn!("repair: dropping lost chunks placed elsewhere now: {e}"),
            Err(e) => tracing::warn!("repair: dropping lost chunks placed elsewhere now: {e}"),
        }
    }
    if repaired > 0 {
        tracing::info!(
            "repair: rewrote {repaired} chunk(s) lost on a failed drive or found damaged, from parity"
        );
    }
    let left = (lost.len() as u64).saturating_sub(here_now + dropped + unnamed);
    (left, repaired)
}

/// Up to `n` items of `list` from `*from` on, wrapping around; `*from` moves past them.
fn this_turn<'a, T>(list: &'a [T], from: &mut usize, n: usize) -> impl Iterator<Item = &'a T> {
    let start = if list.is_empty() {
        0
    } else {
        *from % list.len()
    };
    let n = n.min(list.len());
    *from = start + n;
    list.iter().cycle().skip(start).take(n)
}

fn sorted(s: &HashSet<NodeId>) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = s.iter().copied().collect();
    v.sort_unstable();
    v
}

/// One rebuild pass over `work` (objects by key), paced to `rate` bytes per second.
async fn rebuild_pass(
    fe: Fe,
    layout: Layout,
    failed: HashSet<NodeId>,
    work: Vec<(usize, u64, Manifest)>,
    total: u64,
    rate: Option<u64>,
    status: Arc<Mutex<DataStatus>>,
) {
    let started = Instant::now();
    let base = status.lock().map(|s| s.rebuild.bytes_total).unwrap_or(0);
    let set = |f: &dyn Fn(&mut RebuildProgress)| {
        if let Ok(mut s) = status.lock() {
            f(&mut s.rebuild);
        }
    };
    set(&|r| {
        r.active = true;
        r.stripes_total = total;
        r.stripes_done = 0;
        r.bytes = 0;
        r.rate = 0;
        r.eta_secs = 0;
    });
    tracing::warn!(
        "rebuild: members {:?} away longer than the grace period; rebuilding {total} stripe(s) of {} object(s)",
        sorted(&failed),
        work.len()
    );
    // A token bucket of one second: the pass may not run ahead of `rate`.
    let pace = pacer(rate);
    let (mut done, mut bytes) = (0u64, 0u64);
    let mut last_log = Instant::now();
    let mut error = None;
    // Several objects at once (each repairs several stripes at once): a pass is bound by
    // the members' disks and network, not by one object's round trips.
    use futures::StreamExt;
    type Repaired = (
        String,
        u64,
        Result<(u64, u64), crate::dataplane::cluster::frontend::IoError>,
    );
    // The newest version of every key among the members that answer, from one listing
    // each: an object whose own copy is that version is repaired from it, with no lookup
    // (this node's copy may be older — anti-entropy waits for every member — and then, or
    // if a member does not list, the newest is looked up per object).
    let asked: Vec<NodeId> = layout
        .members
        .iter()
        .copied()
        .filter(|n| !failed.contains(n))
        .collect();
    // Refreshed when older than LISTING_FRESH: a paced pass runs for long, and another
    // member may publish a newer revision meanwhile (a move, a second responsible node).
    let listed_at = Instant::now();
    type Listing = Arc<Option<HashMap<String, (u64, NodeId, u32)>>>;
    let listing: Arc<Mutex<(Instant, Listing)>> = Arc::new(Mutex::new((
        Instant::now(),
        Arc::new(fe.newest_versions(&asked).await),
    )));
    // One repair refreshes a stale listing; the others go on with the one they have
    // meanwhile (a listing takes 0.1–0.3 s while the members rebuild, and every repair
    // waited for it before).
    let refreshing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Listings made and the time they took, for the pass's log line.
    let listing_ms = Arc::new(std::sync::atomic::AtomicU64::new(
        listed_at.elapsed().as_millis() as u64,
    ));
    let listings = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let asked = Arc::new(asked);
    let futs: Vec<BoxFuture<'static, Repaired>> = work
        .iter()
        .map(|(_, touched, m)| {
            let (fe, layout, failed, pace, listing, asked) = (
                fe.clone(),
                layout.clone(),
                failed.clone(),
                pace.clone(),
                listing.clone(),
                asked.clone(),
            );
            let (listing_ms, listings) = (listing_ms.clone(), listings.clone());
            let refreshing = refreshing.clone();
            let (m, touched) = (m.clone(), *touched);
            Box::pin(async move {
                let key = m.key.clone();
                use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
                let stale = listing
                    .lock()
                    .map(|l| l.0.elapsed() > LISTING_FRESH)
                    .unwrap_or(false);
                if stale
                    && refreshing
                        .compare_exchange(false, true, AcqRel, Acquire)
                        .is_ok()
                {
                    let t = Instant::now();
                    let fresh = Arc::new(fe.newest_versions(&asked).await);
                    if let Ok(mut l) = listing.lock() {
                        *l = (Instant::now(), fresh);
                    }
                    refreshing.store(false, Release);
                    listing_ms.fetch_add(t.elapsed().as_millis() as u64, Relaxed);
                    listings.fetch_add(1, Relaxed);
                }
                let now: Listing = listing
                    .lock()
                    .map(|l| l.1.clone())
                    .unwrap_or_else(|_| Arc::new(None));
                let current = (*now)
                    .as_ref()
                    .is_some_and(|v| v.get(&key) == Some(&(m.generation, m.writer, m.revision)));
                let r = if current {
                    fe.repair_from(m, &layout, &failed, &*pace).await
                } else {
                    fe.repair(&key, &layout, &failed, &*pace).await
                };
                (key, touched, r)
            }) as BoxFuture<'static, Repaired>
        })
        .collect();
    let mut results = futures::stream::iter(futs).buffer_unordered(REBUILD_OBJECTS);
    while let Some((key, touched, r)) = results.next().await {
        match r {
            Ok((_, b)) => {
                done += touched;
                bytes += b;
            }
            Err(e) => {
                tracing::warn!("rebuild: {key:?}: {e}");
                error = Some(e.to_string());
            }
        }
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let rate_now = (bytes as f64 / secs) as u64;
        let eta = if done > 0 && done < total {
            ((total - done) as f64 * secs / done as f64) as u64
        } else {
            0
        };
        set(&|r| {
            r.stripes_done = done;
            r.bytes = bytes;
            r.bytes_total = base + bytes;
            r.rate = rate_now;
            r.eta_secs = eta;
        });
        if last_log.elapsed() >= Duration::from_secs(2) {
            last_log = Instant::now();
            tracing::info!(
                "rebuild: {done}/{total} stripes, {} written, {}/s, ETA {eta} s",
                humansize::format_size(bytes, humansize::BINARY),
                humansize::format_size(rate_now, humansize::BINARY)
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    tracing::warn!(
        "rebuild: pass done: {done}/{total} stripes, {} in {secs:.1} s ({} listing(s) of the members' manifests, {} ms){}",
        humansize::format_size(bytes, humansize::BINARY),
        listings.load(std::sync::atomic::Ordering::Relaxed),
        listing_ms.load(std::sync::atomic::Ordering::Relaxed),
        error
            .as_ref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default()
    );
    set(&|r| {
        r.active = false;
        r.passes += 1;
        r.eta_secs = 0;
        r.last_error = error.clone();
    });
}

#[cfg(test)]
mod plan_move_tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_listening_one_is_not() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        assert!(!refused(&addr).await, "{addr} listens");
        drop(l);
        assert!(refused(&addr).await, "{addr} no longer listens");
    }

    fn reply(l: &LossList, after: &str, limit: usize) -> pb::ListLostReply {
        let (keys, more) = l.page(after, limit);
        pb::ListLostReply {
            keys: keys.to_vec(),
            more,
            version: l.version,
            total: l.keys.len() as u64,
        }
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).rev().map(|i| format!("c/o{i}/0/1")).collect()
    }

    /// A node's ListLost as `DataSvc::list_lost` answers it, over the versions `kept`
    /// (newest last): version 0 is the newest; one no longer kept is refused.
    fn serve(kept: &[&LossList], after: &str, version: u64) -> Result<pb::ListLostReply, String> {
        let l = if version == 0 {
            kept.last().copied()
        } else {
            kept.iter().find(|l| l.version == version).copied()
        };
        l.map(|l| reply(l, after, 3))
            .ok_or_else(|| format!("version {version} is no longer kept"))
    }

    #[tokio::test]
    async fn a_loss_list_longer_than_a_page_is_read_whole_from_one_version() {
        let list = LossList::of(keys(10));
        assert_ne!(list.version, 0);
        assert_eq!(LossList::of(Vec::new()).version, 0);
        // The version follows the content, not the order it came in.
        let mut shuffled = keys(10);
        shuffled.swap(0, 7);
        assert_eq!(LossList::of(shuffled).version, list.version);
        // Repair rewrote one chunk: a new version.
        let repaired = LossList::of(keys(10)[1..].to_vec());
        assert_ne!(repaired.version, list.version);

        // Pages of 3: every key once, in order, all from the version the first page named
        // although the node's list changes after that first page.
        let mut calls = 0;
        let (v, total, got) = all_pages(|after, version| {
            calls += 1;
            let r = if calls == 1 {
                serve(&[&list], &after, version)
            } else {
                serve(&[&list, &repaired], &after, version)
            };
            async move { r }
        })
        .await
        .unwrap();
        assert_eq!((v, total, calls), (list.version, 10, 4));
        let mut want = keys(10);
        want.sort();
        assert_eq!(got, want);
        let l = protection::Losses::from_keys(&got, total);
        assert!(l.has("o9", 0, 1) && l.has("o0", 0, 1) && !l.has("o0", 0, 2));

        // The version is gone (the node moved on twice): refused, to be read again.
        let mut calls = 0;
        let e = all_pages(|after, version| {
            calls += 1;
            let r = if calls == 1 {
                serve(&[&list], &after, version)
            } else {
                serve(&[&repaired], &after, version)
            };
            async move { r }
        })
        .await
        .unwrap_err();
        assert!(e.contains("no longer kept"), "{e}");

        // A node that answers with another version than asked is not believed.
        let mut calls = 0;
        let e = all_pages(|after, _| {
            calls += 1;
            let r = reply(if calls == 1 { &list } else { &repaired }, &after, 3);
            async move { Ok(r) }
        })
        .await
        .unwrap_err();
        assert!(e.contains("changed"), "{e}");

        // Nor one sending more, or fewer, keys than it announced, or keys out of order.
        let e = all_pages(|after, _| {
            let mut r = reply(&list, &after, 3);
            r.total = 2;
            async move { Ok(r) }
        })
        .await
        .unwrap_err();
        assert!(e.contains("more than the 2"), "{e}");
        let e = all_pages(|after, _| {
            let mut r = reply(&list, &after, 3);
            r.total = 11;
            async move { Ok(r) }
        })
        .await
        .unwrap_err();
        assert!(e.contains("10 keys of the 11"), "{e}");
        let e = all_pages(|after, _| {
            let mut r = reply(&list, &after, 3);
            r.keys.reverse();
            async move { Ok(r) }
        })
        .await
        .unwrap_err();
        assert!(e.contains("out of order"), "{e}");
    }

    #[test]
    fn a_cut_report_counts_over_the_last_whole_list_until_the_new_one_is_in() {
        let mut whole = HashMap::new();
        let all = keys(10);
        let v1 = LossList::of(all.clone()).version;
        // A complete report is kept under its version, and used while the version holds.
        let (l, fetch) = resolve_losses(&mut whole, 4, v1, 10, &all);
        assert!(!fetch && l.has("o9", 0, 1));
        let (l2, fetch) = resolve_losses(&mut whole, 4, v1, 10, &all[..2]);
        assert!(!fetch && Arc::ptr_eq(&l, &l2));

        // A newer, cut report: its keys over the old whole list (a chunk lost since, o10,
        // counts; o0, listed only in the old list, still counts), and fetch.
        let newer = vec!["c/o10/0/1".to_string()];
        let (l, fetch) = resolve_losses(&mut whole, 4, v1 + 1, 5000, &newer);
        assert!(fetch);
        assert!(l.has("o10", 0, 1) && l.has("o0", 0, 1) && !l.has("o11", 0, 1));

        // An agent of an older axon (version 0) is taken at its word each time, never
        // kept and never asked for the rest.
        let (l, fetch) = resolve_losses(&mut whole, 5, 0, 2, &all[..2]);
        assert!(!fetch && l.has("o9", 0, 1));
        assert!(!whole.contains_key(&5));
        let (l, fetch) = resolve_losses(&mut whole, 5, 0, 5000, &all[2..3]);
        assert!(!fetch && !l.has("o9", 0, 1) && l.has("o7", 0, 1));

        // Nothing lost: nothing counts, and the kept list is dropped.
        let (l, fetch) = resolve_losses(&mut whole, 4, 0, 0, &[]);
        assert!(!fetch && l.is_empty() && !l.has("o0", 0, 1));
        assert!(!whole.contains_key(&4));
    }

    #[test]
    fn repair_turns_rotate_through_every_lost_chunk() {
        // 150 lost chunks of which the first 64 cannot be repaired yet (they stay in the
        // list): later rounds still reach the others, and every one comes round.
        let lost: Vec<u32> = (0..150).collect();
        let mut from = 0;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let turn: Vec<u32> = this_turn(&lost, &mut from, 64).copied().collect();
            assert_eq!(turn.len(), 64);
            seen.extend(turn);
        }
        assert_eq!(seen.len(), 150, "a chunk never had its turn");
        // Fewer than a turn's worth: each once, none twice.
        let few = [7u32, 8, 9];
        let mut from = 5;
        let turn: Vec<u32> = this_turn(&few, &mut from, 64).copied().collect();
        assert_eq!(turn, vec![9, 7, 8]);
        assert!(this_turn(&[] as &[u32], &mut from, 64).next().is_none());
    }
    use crate::dataplane::cluster::placement::Domain;

    fn layout(nodes: &[NodeId]) -> Layout {
        Layout {
            k: 3,
            m: 2,
            chunk_size: 1024,
            members: nodes.to_vec(),
            writable: nodes.iter().map(|&node| Domain { node, free: 1 }).collect(),
            me: nodes[0],
        }
    }

    #[test]
    fn a_member_that_came_back_empty_is_filled_to_its_share() {
        let l = layout(&[1, 2, 3, 4, 5, 6]);
        let cap = 1 << 20;
        // Used: 100 chunks each, node 6 `six` bytes (its chunks were rebuilt elsewhere).
        let u = |six: u64| -> Vec<(NodeId, u64, u64)> {
            (1..=6)
                .map(|n| (n, cap - if n == 6 { six } else { 100 * 1024 }, cap))
                .collect()
        };
        let (from, to, budget) = plan_move(&u(0), &l, 1024, 6, None).unwrap();
        assert_eq!((from, to), (1, 6));
        // Average 83 chunks: a sixth of that deficit each.
        assert_eq!(budget, 14);
        // Half way there: a new start would not begin, one under way goes on.
        assert!(plan_move(&u(50 * 1024), &l, 1024, 6, None).is_none());
        assert!(plan_move(&u(50 * 1024), &l, 1024, 6, Some(6)).is_some());
        // At 90 % of the average it stops.
        assert!(plan_move(&u(90 * 1024), &l, 1024, 6, Some(6)).is_none());
        // The spread random placement leaves is not redistributed.
        let spread: Vec<_> = (1..=6)
            .map(|n| (n, cap - (60 + 10 * n) * 1024, cap))
            .collect();
        assert!(plan_move(&spread, &l, 1024, 6, None).is_none());
        // A member without an ACTIVE drive takes nothing.
        let mut l2 = l.clone();
        l2.writable.retain(|d| d.node != 6);
        assert!(plan_move(&u(0), &l2, 1024, 6, None).is_none());
    }

    /// Calls made while a batch runs go together in the next one, each answered with its
    /// own result; a batch never exceeds its weight; callers beyond the queue's weight
    /// wait for room.
    #[tokio::test]
    async fn concurrent_writes_are_batched_within_their_bounds() {
        let batches = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let seen = batches.clone();
        let g: Arc<Group<u32, u32>> = Arc::new(Group::start(
            (8, 10, 12),
            |x: &u32| *x,
            move |items: Vec<u32>| {
                seen.lock().unwrap().push(items.clone());
                async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    items.iter().map(|x| x * 100).collect()
                }
            },
        ));
        let calls: Vec<_> = [1u32, 2, 3, 4, 1, 1, 2, 3, 1, 4, 2, 2]
            .into_iter()
            .map(|x| {
                let g = g.clone();
                tokio::spawn(async move { (x, g.call(x).await) })
            })
            .collect();
        for c in calls {
            let (x, r) = c.await.unwrap();
            assert_eq!(r, Some(x * 100));
        }
        let b = batches.lock().unwrap().clone();
        assert_eq!(b.iter().map(|v| v.len()).sum::<usize>(), 12, "{b:?}");
        assert!(b.iter().any(|v| v.len() > 1), "nothing was batched: {b:?}");
        assert!(
            b.iter()
                .all(|v| v.len() <= 8 && v.iter().sum::<u32>() <= 10),
            "{b:?}"
        );
    }
}

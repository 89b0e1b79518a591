//! The frontend (DATAPLANE.md, "Where chunks live"): objects in and out of the cluster, on
//! any member. A put reads the object a stripe at a time, encodes m parity chunks, places
//! the k+m chunks on distinct nodes (weighted rendezvous, `placement`), sends them, a few
//! stripes in flight at once, and once every chunk is durable writes the manifest to the
//! key's m+1 home nodes and every holder; it is acknowledged when at least m+1 of those
//! hold it. A get asks the members for the manifest, takes the highest generation, and reads
//! k chunks of each stripe — data chunks first, parity around what is missing, damaged or on
//! a node that failed — reconstructing when it must. Nothing here knows the wire: the agent
//! hands in a `Net`.

use super::objects::{Manifest, NodeId, StripeMap, Summary, chunk_key, home_ranking};
use super::placement::{self, Domain};
use crate::dataplane::ec::{Codec, Isal, Scheme};
use crate::dataplane::offload::{Offload, run};
use crate::dataplane::zeroes;
use crate::model::pinning::ContainerRole;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Stripes in flight at once in a put or a get.
pub const WINDOW: usize = 4;
/// A repaired stripe: its index, (chunk index, new node) pairs, bytes written.
type StripeRepair = (usize, Vec<(usize, NodeId)>, u64);

/// Stripes of one object repaired at once.
pub const REPAIR_WINDOW: usize = 8;

/// How a call to one node failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    #[error("node {0}: not reachable: {1}")]
    Unreachable(NodeId, String),
    #[error("node {0}: not held")]
    NotFound(NodeId),
    #[error("node {0}: held but unreadable: {1}")]
    Lost(NodeId, String),
    #[error("node {0}: refused: {1}")]
    Refused(NodeId, String),
    /// The caller's credentials do not allow the call (a client's reader token): every
    /// member would say the same, so the operation stops there.
    #[error("node {0}: {1}")]
    Denied(NodeId, String),
}

/// The members' side, as the frontend needs it (the agent implements it over gRPC, and
/// calls its own node directly).
pub trait Net: Send + Sync + 'static {
    fn put_chunk(
        &self,
        node: NodeId,
        key: String,
        data: Bytes,
    ) -> BoxFuture<'static, Result<(), NetError>>;
    fn get_chunk(&self, node: NodeId, key: String) -> BoxFuture<'static, Result<Bytes, NetError>>;
    fn delete_chunks(
        &self,
        node: NodeId,
        keys: Vec<String>,
    ) -> BoxFuture<'static, Result<(), NetError>>;
    fn put_manifest(
        &self,
        node: NodeId,
        m: Arc<Manifest>,
    ) -> BoxFuture<'static, Result<bool, NetError>>;
    fn get_manifest(
        &self,
        node: NodeId,
        key: String,
    ) -> BoxFuture<'static, Result<Option<Manifest>, NetError>>;
    fn list_manifests(
        &self,
        node: NodeId,
        prefix: String,
    ) -> BoxFuture<'static, Result<Vec<Summary>, NetError>>;
}

/// What the frontend is told of the cluster for one call.
#[derive(Debug, Clone)]
pub struct Layout {
    pub k: usize,
    pub m: usize,
    /// Data bytes per chunk.
    pub chunk_size: u32,
    /// Every member (manifests are asked of all of them).
    pub members: Vec<NodeId>,
    /// Members that may take chunks (an ACTIVE drive), weighted by free bytes.
    pub writable: Vec<Domain>,
    /// This node (the writer named in manifests).
    pub me: NodeId,
}

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("{0}")]
    Refused(String),
    #[error("no object {0:?} in the cluster")]
    NotFound(String),
    /// Too much is missing: never answered with wrong or partial data.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
    /// The caller may not do this (its token); nothing was changed by it.
    #[error("{0}")]
    Denied(String),
}

/// What feeds `Frontend::put`: the object's bytes in pieces of any size, then `End`.
/// Only `End` ends an object: a feed that stops without it (a client that went away, an
/// input that failed to read) is a broken upload, and nothing is stored.
#[derive(Debug, Clone)]
pub enum Piece {
    Data(Bytes),
    End,
}

/// Why a put whose feed stopped before `Piece::End` stored nothing.
pub const BROKE_OFF: &str =
    "the object's bytes stopped before their end (the upload broke off): nothing was stored";

#[derive(Debug, Clone, Default)]
pub struct PutDone {
    pub size: u64,
    pub stripes: u32,
    pub generation: u64,
    pub nodes: u32,
}

/// Nodes that failed a call during this operation: later stripes avoid them.
#[derive(Default)]
struct Suspects(Mutex<HashSet<NodeId>>);

impl Suspects {
    fn add(&self, n: NodeId) {
        if let Ok(mut s) = self.0.lock() {
            s.insert(n);
        }
    }
    fn has(&self, n: NodeId) -> bool {
        self.0.lock().map(|s| s.contains(&n)).unwrap_or(false)
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A stripe's placement seed: object and stripe index.
fn stripe_seed(object: &str, i: usize) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(object.as_bytes(), i as u64)
}

pub struct Frontend<N: Net> {
    net: Arc<N>,
    /// The node's containers, for erasure coding (None: Tokio's blocking pool, or inline).
    offload: Option<Arc<dyn Offload>>,
}

impl<N: Net> Clone for Frontend<N> {
    fn clone(&self) -> Self {
        Frontend {
            net: self.net.clone(),
            offload: self.offload.clone(),
        }
    }
}

/// Bytes `start..end` of a stripe held as consecutive `pieces`, as one chunk of `len`
/// bytes (zero-padded past `end`): a slice of the piece, with no copy, when one piece
/// holds them all and no padding is needed; copied together otherwise.
fn gather(pieces: &[Bytes], start: usize, end: usize, len: usize) -> Bytes {
    let mut at = 0usize;
    let mut out: Option<Vec<u8>> = None;
    for p in pieces {
        let (p_start, p_end) = (at, at + p.len());
        at = p_end;
        if p_end <= start || p_start >= end {
            continue;
        }
        let (a, b) = (start.max(p_start) - p_start, end.min(p_end) - p_start);
        if out.is_none() && p_start <= start && p_end >= end && end - start == len {
            return p.slice(a..b);
        }
        out.get_or_insert_with(|| Vec::with_capacity(len))
            .extend_from_slice(&p[a..b]);
    }
    let mut c = out.unwrap_or_default();
    c.resize(len, 0);
    Bytes::from(c)
}

/// Splits one stripe's `size` bytes, held as consecutive `pieces` (as they arrived), into
/// k data chunks — slices of the pieces, with no copy, where a chunk lies within one piece
/// (a client sending chunk-sized pieces) — and computes the m parity chunks.
fn encode(
    codec: &Isal,
    k: usize,
    m: usize,
    pieces: &[Bytes],
    size: usize,
) -> Result<(u32, Vec<Bytes>), IoError> {
    let len = size.div_ceil(k).max(1);
    let mut chunks: Vec<Bytes> = (0..k)
        .map(|i| {
            let start = (i * len).min(size);
            let end = ((i + 1) * len).min(size);
            gather(pieces, start, end, len)
        })
        .collect();
    let mut parity: Vec<Vec<u8>> = (0..m).map(|_| zeroes(len)).collect();
    {
        let d: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
        let mut p: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        codec
            .encode(&d, &mut p)
            .map_err(|e| IoError::Failed(e.to_string()))?;
    }
    chunks.extend(parity.into_iter().map(Bytes::from));
    Ok((len as u32, chunks))
}

impl<N: Net> Frontend<N> {
    pub fn new(net: Arc<N>) -> Frontend<N> {
        Frontend { net, offload: None }
    }

    /// Erasure coding on the compute container's threads.
    pub fn with_offload(mut self, offload: Option<Arc<dyn Offload>>) -> Frontend<N> {
        self.offload = offload;
        self
    }

    /// `complete` on the compute container when the node runs one; inline otherwise.
    async fn complete_on(
        &self,
        codec: &Arc<Isal>,
        i: usize,
        len: u32,
        got: Vec<Option<Bytes>>,
    ) -> Result<Vec<Bytes>, IoError> {
        match &self.offload {
            Some(o) if got.iter().any(Option::is_none) => {
                let c = codec.clone();
                run(Some(o), ContainerRole::Compute, move || {
                    Self::complete(&c, i, len, got)
                })
                .await
                .map_err(IoError::Failed)?
            }
            _ => Self::complete(codec, i, len, got),
        }
    }

    /// The newest manifest of `key` among the members, and the members that did not answer.
    async fn find(
        &self,
        key: &str,
        members: &[NodeId],
    ) -> (Option<Manifest>, Vec<(NodeId, String)>) {
        let calls = members.iter().map(|&n| {
            let f = self.net.get_manifest(n, key.to_string());
            async move { (n, tokio::time::timeout(Duration::from_secs(5), f).await) }
        });
        let mut best: Option<Manifest> = None;
        let mut silent = Vec::new();
        for (n, r) in futures::future::join_all(calls).await {
            match r {
                Ok(Ok(Some(m))) => {
                    if best.as_ref().is_none_or(|b| m.newer_than(b)) {
                        best = Some(m);
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => silent.push((n, e.to_string())),
                Err(_) => silent.push((n, format!("node {n}: no answer in 5 s"))),
            }
        }
        (best, silent)
    }

    /// The object's current manifest, or why there is none.
    pub async fn manifest(&self, key: &str, layout: &Layout) -> Result<Manifest, IoError> {
        let (best, silent) = self.find(key, &layout.members).await;
        match best {
            Some(m) if !m.deleted => Ok(m),
            Some(_) => Err(IoError::NotFound(key.to_string())),
            None if silent.len() > layout.m => Err(IoError::Unavailable(format!(
                "{key:?}: no manifest on the {} members that answered, and {} did not ({}) — more than m = {} nodes are away, so it may exist there",
                layout.members.len() - silent.len(),
                silent.len(),
                silent
                    .iter()
                    .map(|(_, e)| e.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                layout.m
            ))),
            None => Err(IoError::NotFound(key.to_string())),
        }
    }

    /// Stores one stripe's chunks on k+m distinct nodes, replacing a node that fails with
    /// the next one placement offers. Returns the stripe's map.
    async fn put_stripe(
        &self,
        layout: &Layout,
        object: &str,
        i: usize,
        len: u32,
        chunks: Vec<Bytes>,
        suspects: &Suspects,
    ) -> Result<StripeMap, IoError> {
        let n = layout.k + layout.m;
        let seed = stripe_seed(object, i);
        let mut ranking = placement::place(seed, &layout.writable, layout.writable.len(), &[])
            .map_err(IoError::Refused)?;
        // Nodes that failed earlier in this put go last.
        ranking.sort_by_key(|x| suspects.has(*x));
        if ranking.len() < n {
            return Err(IoError::Refused(format!(
                "{}+{} needs {n} nodes that can take chunks, {} can",
                layout.k,
                layout.m,
                ranking.len()
            )));
        }
        let crcs: Vec<u32> = chunks.iter().map(|c| crc32c::crc32c(c)).collect();
        let mut nodes: Vec<Option<NodeId>> = vec![None; n];
        let mut next = 0usize;
        let mut tried: Vec<(NodeId, String)> = Vec::new();
        // A member that refused the caller's token, if one did.
        let mut denied: Option<String> = None;
        loop {
            let placed = nodes.iter().filter(|x| x.is_some()).count();
            let mut calls = Vec::new();
            for (idx, slot) in nodes.iter_mut().enumerate() {
                if slot.is_some() {
                    continue;
                }
                let Some(&node) = ranking.get(next) else {
                    if let Some(why) = denied {
                        return Err(IoError::Denied(why));
                    }
                    return Err(IoError::Unavailable(format!(
                        "stripe {i}: only {placed} of {n} chunks could be placed on distinct nodes, so the object is not stored; failed: {}",
                        tried
                            .iter()
                            .map(|(_, e)| e.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )));
                };
                next += 1;
                let f = self
                    .net
                    .put_chunk(node, chunk_key(object, i, idx), chunks[idx].clone());
                calls.push(async move { (idx, node, f.await) });
            }
            if calls.is_empty() {
                break;
            }
            for (idx, node, r) in futures::future::join_all(calls).await {
                match r {
                    Ok(()) => nodes[idx] = Some(node),
                    Err(NetError::Denied(_, why)) => {
                        // Routed around like any refusal (another member may take the
                        // token); said as such if the stripe cannot be placed.
                        suspects.add(node);
                        denied.get_or_insert(why.clone());
                        tried.push((node, why));
                    }
                    Err(e) => {
                        suspects.add(node);
                        tried.push((node, e.to_string()));
                    }
                }
            }
        }
        Ok(StripeMap {
            len,
            nodes: nodes.into_iter().map(|x| x.expect("placed")).collect(),
            crcs,
        })
    }

    /// Stores `key` from `src` (its bytes, then `Piece::End`); acknowledged once durable
    /// (every chunk, then the manifest on at least m+1 nodes). An older generation's
    /// chunks are freed after. A `src` closed before `End` (the client broke off, its
    /// input failed) stores nothing and leaves any older object as it was.
    pub async fn put(
        &self,
        key: &str,
        layout: &Layout,
        mut src: tokio::sync::mpsc::Receiver<Piece>,
    ) -> Result<PutDone, IoError> {
        if key.is_empty() || key.len() > crate::dataplane::store::MAX_KEY {
            return Err(IoError::Refused(format!(
                "an object key must be 1 to {} bytes, this one is {}",
                crate::dataplane::store::MAX_KEY,
                key.len()
            )));
        }
        let (k, m) = (layout.k, layout.m);
        let codec = Arc::new(
            Isal::new(Scheme::new(k, m).map_err(|e| IoError::Refused(e.to_string()))?)
                .map_err(|e| IoError::Refused(e.to_string()))?,
        );
        let object = uuid::Uuid::new_v4().simple().to_string();
        let stripe_bytes = k * layout.chunk_size as usize;
        let suspects = Suspects::default();
        let mut maps: Vec<StripeMap> = Vec::new();
        let mut inflight = FuturesOrdered::new();
        let mut size = 0u64;
        // One stripe's bytes as the pieces they arrived in (no copy into a stripe buffer).
        let mut pieces: Vec<Bytes> = Vec::new();
        let mut filled = 0usize;
        let mut pending: Option<Bytes> = None;
        let mut ended = false;
        let mut index = 0usize;
        let result: Result<(), IoError> = async {
            loop {
                // Fill one stripe.
                while !ended && filled < stripe_bytes {
                    let b = match pending.take() {
                        Some(b) => b,
                        None => match src.recv().await {
                            Some(Piece::Data(b)) => b,
                            Some(Piece::End) => {
                                ended = true;
                                break;
                            }
                            None => return Err(IoError::Failed(BROKE_OFF.into())),
                        },
                    };
                    let take = (stripe_bytes - filled).min(b.len());
                    if take < b.len() {
                        pending = Some(b.slice(take..));
                    }
                    if take > 0 {
                        pieces.push(b.slice(..take));
                        filled += take;
                    }
                }
                // An empty object is one empty stripe; otherwise an empty buffer is the end.
                if filled == 0 && index > 0 {
                    break;
                }
                size += filled as u64;
                let data = std::mem::take(&mut pieces);
                let n = std::mem::take(&mut filled);
                let c = codec.clone();
                let (len, chunks) = run(self.offload.as_ref(), ContainerRole::Compute, move || {
                    encode(&c, k, m, &data, n)
                })
                .await
                .map_err(IoError::Failed)??;
                let i = index;
                index += 1;
                let this = self.clone();
                let (lay, obj) = (layout.clone(), object.clone());
                let sus = &suspects;
                inflight.push_back(async move {
                    this.put_stripe(&lay, &obj, i, len, chunks, sus).await
                });
                while inflight.len() >= WINDOW {
                    maps.push(inflight.next().await.expect("in flight")?);
                }
                if ended && filled == 0 && pending.is_none() {
                    break;
                }
            }
            while let Some(r) = inflight.next().await {
                maps.push(r?);
            }
            Ok(())
        }
        .await;
        drop(inflight);
        let cleanup = |maps: &[StripeMap]| {
            let mut by_node: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
            for (i, s) in maps.iter().enumerate() {
                for (idx, n) in s.nodes.iter().enumerate() {
                    by_node
                        .entry(*n)
                        .or_default()
                        .push(chunk_key(&object, i, idx));
                }
            }
            by_node
        };
        if let Err(e) = result {
            // Free what was written; anything missed is an orphan for the collector.
            for (n, keys) in cleanup(&maps) {
                let f = self.net.delete_chunks(n, keys);
                tokio::spawn(f);
            }
            return Err(e);
        }
        // The generation orders writes of this key: after any the members know of.
        let (old, _) = self.find(key, &layout.members).await;
        let generation = now_ns().max(old.as_ref().map_or(0, |o| o.generation.saturating_add(1)));
        let manifest = Arc::new(Manifest {
            key: key.to_string(),
            generation,
            writer: layout.me,
            revision: 0,
            object: object.clone(),
            size,
            k,
            m,
            chunk_size: layout.chunk_size,
            deleted: false,
            stripes: maps,
        });
        let holders = manifest.holders();
        // Not acknowledged on error, but the manifest may be on some nodes (a node that
        // timed out may still have stored it): the chunks stay, so whichever manifest is
        // newest reads whole. The orphan collector frees them if no manifest names them.
        self.publish(&manifest, layout, &holders).await?;
        if let Some(old) = old {
            self.free_chunks(&old);
        }
        Ok(PutDone {
            size,
            stripes: manifest.stripes.len() as u32,
            generation,
            nodes: holders.len() as u32,
        })
    }

    /// Writes `manifest` to the key's home nodes and `extra`; Ok once m+1 hold it.
    async fn publish(
        &self,
        manifest: &Arc<Manifest>,
        layout: &Layout,
        extra: &[NodeId],
    ) -> Result<(), IoError> {
        let mut targets: Vec<NodeId> = home_ranking(&manifest.key, &layout.members)
            .into_iter()
            .take(layout.m + 1)
            .collect();
        for n in extra {
            if !targets.contains(n) {
                targets.push(*n);
            }
        }
        let mut ok = 0usize;
        let mut errors = Vec::new();
        let mut denied: Option<String> = None;
        let mut rest: Vec<NodeId> = home_ranking(&manifest.key, &layout.members)
            .into_iter()
            .filter(|n| !targets.contains(n))
            .collect();
        rest.reverse();
        let mut round = targets;
        while !round.is_empty() {
            let calls = round.iter().map(|&n| {
                let f = self.net.put_manifest(n, manifest.clone());
                async move { (n, f.await) }
            });
            let mut failed = 0;
            for (n, r) in futures::future::join_all(calls).await {
                match r {
                    // Not stored means a newer one is already there: it holds the key.
                    Ok(_) => ok += 1,
                    Err(NetError::Denied(n, why)) => {
                        failed += 1;
                        denied.get_or_insert(why.clone());
                        errors.push(format!("{why} ({n})"));
                    }
                    Err(e) => {
                        failed += 1;
                        errors.push(format!("{e} ({n})"));
                    }
                }
            }
            if ok > layout.m {
                return Ok(());
            }
            // Too few took it: try as many other members as failed.
            round = (0..failed).filter_map(|_| rest.pop()).collect();
        }
        // Not acknowledged. When no member took it and the token was refused, that is
        // the answer (the caller's to fix); otherwise the members that did not answer.
        if let Some(why) = denied.filter(|_| ok == 0) {
            return Err(IoError::Denied(why));
        }
        Err(IoError::Unavailable(format!(
            "{:?}: its manifest is on {ok} node(s), it must be on at least m+1 = {} — not acknowledged: {}",
            manifest.key,
            layout.m + 1,
            errors.join("; ")
        )))
    }

    /// Frees `m`'s chunks on their nodes, in the background and best-effort (what a node
    /// away misses stays an orphan).
    fn free_chunks(&self, m: &Manifest) {
        for n in m.holders() {
            tokio::spawn(self.net.delete_chunks(n, m.chunks_on(n)));
        }
    }

    /// Fetches k verified chunks of stripe `i` — data chunks first, none from `avoid`, nodes
    /// that failed earlier in this operation last — in rounds until k are in hand. Errors,
    /// naming every chunk lost and why, when fewer than k survive.
    async fn fetch_k(
        &self,
        m: &Manifest,
        i: usize,
        avoid: &HashSet<NodeId>,
        suspects: &Suspects,
    ) -> Result<Vec<Option<Bytes>>, IoError> {
        let st = &m.stripes[i];
        let (k, n) = (m.k, m.k + m.m);
        let mut got: Vec<Option<Bytes>> = vec![None; n];
        let mut why: Vec<String> = Vec::new();
        let mut order: Vec<usize> = (0..n).filter(|&x| !avoid.contains(&st.nodes[x])).collect();
        order.sort_by_key(|&x| (suspects.has(st.nodes[x]), x >= k));
        let mut next = 0;
        loop {
            let have = got.iter().filter(|g| g.is_some()).count();
            if have >= k {
                return Ok(got);
            }
            let batch: Vec<usize> = order[next..].iter().take(k - have).copied().collect();
            if batch.is_empty() {
                return Err(IoError::Unavailable(format!(
                    "{:?}: stripe {i} has {have} of the {k} chunks it needs (k = {k} of {n}); lost: {} — not enough survive to rebuild it, so nothing is returned; bring the nodes back",
                    m.key,
                    why.join("; ")
                )));
            }
            next += batch.len();
            let calls = batch.iter().map(|&idx| {
                let f = self
                    .net
                    .get_chunk(st.nodes[idx], chunk_key(&m.object, i, idx));
                async move { (idx, tokio::time::timeout(Duration::from_secs(10), f).await) }
            });
            for (idx, r) in futures::future::join_all(calls).await {
                let node = st.nodes[idx];
                match r {
                    Ok(Ok(b))
                        if b.len() == st.len as usize && crc32c::crc32c(&b) == st.crcs[idx] =>
                    {
                        got[idx] = Some(b)
                    }
                    Ok(Ok(b)) => why.push(format!(
                        "chunk {idx} on node {node}: checksum or length mismatch ({} bytes)",
                        b.len()
                    )),
                    Ok(Err(e)) => {
                        if matches!(e, NetError::Unreachable(..)) {
                            suspects.add(node);
                        }
                        why.push(format!("chunk {idx}: {e}"));
                    }
                    Err(_) => {
                        suspects.add(node);
                        why.push(format!("chunk {idx} on node {node}: no answer in 10 s"));
                    }
                }
            }
        }
    }

    /// Every chunk of a stripe from the k fetched, the missing ones rebuilt from parity.
    /// The codec rebuilds in place into buffers it may write: a fetched chunk no one else
    /// holds is taken as that buffer (no copy; what arrives from a member or a drive read
    /// is held by nothing else), a shared one is copied.
    fn complete(
        codec: &Isal,
        i: usize,
        len: u32,
        got: Vec<Option<Bytes>>,
    ) -> Result<Vec<Bytes>, IoError> {
        if got.iter().all(Option::is_some) {
            return Ok(got.into_iter().flatten().collect());
        }
        let present: Vec<bool> = got.iter().map(Option::is_some).collect();
        let mut chunks: Vec<BytesMut> = got
            .into_iter()
            .map(|g| match g {
                Some(b) => b
                    .try_into_mut()
                    .unwrap_or_else(|shared| BytesMut::from(&shared[..])),
                None => BytesMut::from(Bytes::from(zeroes(len as usize))),
            })
            .collect();
        let mut slices: Vec<&mut [u8]> = chunks.iter_mut().map(|c| &mut c[..]).collect();
        codec
            .reconstruct_slices(&mut slices, &present)
            .map_err(|e| IoError::Failed(format!("stripe {i}: {e}")))?;
        Ok(chunks.into_iter().map(BytesMut::freeze).collect())
    }

    /// Reads stripe `i` of `m`: k chunks, verified, reconstructed if need be. Returns the
    /// stripe's data bytes, in order, as the data chunks themselves (no copy; the last cut
    /// to the stripe's length), and whether parity was used.
    async fn get_stripe(
        &self,
        m: &Manifest,
        i: usize,
        codec: &Arc<Isal>,
        suspects: &Suspects,
    ) -> Result<(Vec<Bytes>, bool), IoError> {
        let k = m.k;
        let got = self.fetch_k(m, i, &HashSet::new(), suspects).await?;
        let mut left = m.stripe_bytes(i) as usize;
        let parity = !got[..k].iter().all(Option::is_some);
        let data: Vec<Bytes> = if parity {
            self.complete_on(codec, i, m.stripes[i].len, got)
                .await?
                .into_iter()
                .take(k)
                .collect()
        } else {
            got.into_iter().take(k).flatten().collect()
        };
        let mut out = Vec::with_capacity(k);
        for c in data {
            let take = left.min(c.len());
            if take == 0 {
                break;
            }
            out.push(c.slice(..take));
            left -= take;
        }
        Ok((out, parity))
    }

    /// Chunk `idx` of stripe `i` of `m`, rebuilt from k others (none read from `me`, the
    /// node that lost it) and checked against the manifest's CRC: for a holder rewriting a
    /// chunk it lost on a failed drive or holds damaged.
    pub async fn rebuild_chunk(
        &self,
        m: &Manifest,
        i: usize,
        idx: usize,
        avoid: &HashSet<NodeId>,
    ) -> Result<Bytes, IoError> {
        m.check_shape()?;
        let st = m
            .stripes
            .get(i)
            .filter(|st| idx < st.nodes.len())
            .ok_or_else(|| IoError::Failed(format!("{:?}: no chunk {idx} of stripe {i}", m.key)))?;
        let codec = Arc::new(
            Isal::new(Scheme::new(m.k, m.m).map_err(|e| IoError::Failed(e.to_string()))?)
                .map_err(|e| IoError::Failed(e.to_string()))?,
        );
        let mut got = self.fetch_k(m, i, avoid, &Suspects::default()).await?;
        got[idx] = None;
        let mut chunks = self.complete_on(&codec, i, st.len, got).await?;
        let c = std::mem::take(&mut chunks[idx]);
        if crc32c::crc32c(&c) != st.crcs[idx] {
            return Err(IoError::Failed(format!(
                "{:?}: stripe {i} chunk {idx} rebuilt with the wrong checksum — not written",
                m.key
            )));
        }
        Ok(c)
    }

    /// Rebuilds the chunks of `key` that live on `lost` nodes onto other nodes, stripe by
    /// stripe (`pace` is called with the bytes each stripe moves, before it moves them),
    /// then publishes the manifest's next revision. Chunks on the lost nodes are left to be
    /// collected when they return. Returns (stripes repaired, bytes written).
    pub async fn repair(
        &self,
        key: &str,
        layout: &Layout,
        lost: &HashSet<NodeId>,
        pace: &(dyn Fn(u64) -> BoxFuture<'static, ()> + Send + Sync),
    ) -> Result<(u64, u64), IoError> {
        let cur = match self.manifest(key, layout).await {
            Ok(m) => m,
            Err(IoError::NotFound(_)) => return Ok((0, 0)),
            Err(e) => return Err(e),
        };
        self.repair_from(cur, layout, lost, pace).await
    }

    /// As `repair`, from a manifest in hand (the responsible node's own): no lookup.
    pub async fn repair_from(
        &self,
        cur: Manifest,
        layout: &Layout,
        lost: &HashSet<NodeId>,
        pace: &(dyn Fn(u64) -> BoxFuture<'static, ()> + Send + Sync),
    ) -> Result<(u64, u64), IoError> {
        if cur.deleted {
            return Ok((0, 0));
        }
        cur.check_shape()?;
        let codec = Arc::new(
            Isal::new(Scheme::new(cur.k, cur.m).map_err(|e| IoError::Failed(e.to_string()))?)
                .map_err(|e| IoError::Failed(e.to_string()))?,
        );
        let mut next = cur.clone();
        let bad: Mutex<HashSet<NodeId>> = Mutex::new(lost.clone());
        let todo: Vec<usize> = (0..cur.stripes.len())
            .filter(|&i| cur.stripes[i].nodes.iter().any(|n| lost.contains(n)))
            .collect();
        // Several stripes at once: each waits on reads, a decode and writes to other nodes.
        let (cur_ref, codec_ref, bad_ref) = (&cur, &codec, &bad);
        let results: Vec<Result<StripeRepair, IoError>> = futures::stream::iter(todo)
            .map(|i| async move {
                self.repair_stripe(cur_ref, i, layout, lost, bad_ref, codec_ref, pace)
                    .await
            })
            .buffer_unordered(REPAIR_WINDOW)
            .collect()
            .await;
        let (mut stripes, mut bytes) = (0u64, 0u64);
        let mut first_err = None;
        for r in results {
            match r {
                Ok((i, placed, b)) => {
                    for (idx, node) in placed {
                        next.stripes[i].nodes[idx] = node;
                    }
                    stripes += 1;
                    bytes += b;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        // What was repaired is published even if some stripe failed: it is not lost work.
        if stripes > 0 {
            next.revision = cur.revision + 1;
            let next = Arc::new(next);
            let t0 = std::time::Instant::now();
            self.publish(&next, layout, &next.holders()).await?;
            tracing::debug!("repair {:?}: publish {:?}", cur.key, t0.elapsed());
        }
        match first_err {
            // Overwritten or deleted meanwhile: its old chunks were freed, nothing to repair.
            Some(_) if self.superseded(&cur, layout).await => Ok((stripes, bytes)),
            Some(e) => Err(e),
            None => Ok((stripes, bytes)),
        }
    }

    /// Phase-out to other nodes: moves chunk `idx` of stripe `i` of `cur`, held by this
    /// node, to a node outside the stripe — the first that takes it, in placement's order
    /// (weighted by free capacity) — checked against the manifest's CRC; then publishes
    /// the manifest's next revision and frees this node's copy (`publish_move`). Another
    /// node is tried only while none has taken the chunk: once a manifest naming one is
    /// published, there is no second placement. Returns where it went and its bytes.
    pub async fn move_out(
        &self,
        cur: Manifest,
        i: usize,
        idx: usize,
        layout: &Layout,
    ) -> Result<(NodeId, u64), IoError> {
        cur.check_shape()?;
        let me = layout.me;
        let st = cur
            .stripes
            .get(i)
            .filter(|st| st.nodes.get(idx) == Some(&me))
            .ok_or_else(|| {
                IoError::Failed(format!(
                    "{:?}: its newest manifest does not place chunk {idx} of stripe {i} on this node",
                    cur.key
                ))
            })?;
        let key = chunk_key(&cur.object, i, idx);
        let data = self
            .net
            .get_chunk(me, key.clone())
            .await
            .map_err(|e| IoError::Failed(format!("reading {key} here: {e:?}")))?;
        if crc32c::crc32c(&data) != st.crcs[idx] {
            return Err(IoError::Failed(format!(
                "{key}: this node's copy does not match its manifest's checksum — not moved; the repair rewrites it from parity first"
            )));
        }
        let exclude = st.nodes.clone();
        let eligible = layout
            .writable
            .iter()
            .filter(|d| d.free > 0 && !exclude.contains(&d.node))
            .count();
        let ranked = placement::place(
            stripe_seed(&cur.object, i),
            &layout.writable,
            eligible,
            &exclude,
        )
        .unwrap_or_default();
        let len = data.len() as u64;
        let mut why = Vec::new();
        let mut to = None;
        for n in ranked {
            match self.net.put_chunk(n, key.clone(), data.clone()).await {
                Ok(()) => {
                    to = Some(n);
                    break;
                }
                Err(e) => why.push(format!("node {n}: {e:?}")),
            }
        }
        let Some(to) = to else {
            return Err(IoError::Unavailable(format!(
                "{:?}: no node outside stripe {i} took chunk {idx}{}{} — every other failure domain holds one of its chunks, is full or away; add a node or a drive",
                cur.key,
                if why.is_empty() { "" } else { ": " },
                why.join("; ")
            )));
        };
        let mut next = cur.clone();
        next.stripes[i].nodes[idx] = to;
        next.revision = cur.revision + 1;
        self.publish_move(next, layout, me, vec![key]).await?;
        Ok((to, len))
    }

    /// Redistribution: moves up to `max` chunks of `cur` from node `from` to node `to` — of
    /// stripes that have one on `from` and none on `to`, so every stripe keeps its k+m
    /// distinct nodes — by copying the chunk (checked against the manifest's CRC), then
    /// publishing the manifest with the new places (revision + 1), then freeing the old
    /// copies. A reader with the old manifest meanwhile reads around a freed chunk by
    /// parity. Returns chunks moved and bytes.
    pub async fn move_chunks(
        &self,
        cur: Manifest,
        layout: &Layout,
        from: NodeId,
        to: NodeId,
        max: usize,
        pace: &(dyn Fn(u64) -> BoxFuture<'static, ()> + Send + Sync),
    ) -> Result<(u64, u64), IoError> {
        if cur.deleted || max == 0 {
            return Ok((0, 0));
        }
        cur.check_shape()?;
        let mut next = cur.clone();
        let (mut moved, mut bytes, mut old_keys) = (0u64, 0u64, Vec::new());
        let mut put_error = None;
        for (i, st) in cur.stripes.iter().enumerate() {
            if moved as usize >= max {
                break;
            }
            let (Some(idx), false) = (
                st.nodes.iter().position(|n| *n == from),
                st.nodes.contains(&to),
            ) else {
                continue;
            };
            let key = chunk_key(&cur.object, i, idx);
            pace(u64::from(st.len)).await;
            let data = match self.net.get_chunk(from, key.clone()).await {
                Ok(d) => d,
                // Gone or unreadable there: repair's business, not redistribution's.
                Err(_) => continue,
            };
            if crc32c::crc32c(&data) != st.crcs[idx] {
                continue;
            }
            let len = data.len() as u64;
            if let Err(e) = self.net.put_chunk(to, key.clone(), data).await {
                // `to` refuses or is gone (full, stopped): what moved so far is published,
                // and the pass ends with the error.
                put_error = Some(IoError::Failed(format!(
                    "member {to} did not take a chunk: {e:?}"
                )));
                break;
            }
            next.stripes[i].nodes[idx] = to;
            old_keys.push(key);
            moved += 1;
            bytes += len;
        }
        if moved == 0 {
            return match put_error {
                Some(e) => Err(e),
                None => Ok((0, 0)),
            };
        }
        next.revision = cur.revision + 1;
        self.publish_move(next, layout, from, old_keys).await?;
        match put_error {
            Some(e) => Err(e),
            None => Ok((moved, bytes)),
        }
    }

    /// The end of a move: publishes `next` (a manifest's next revision, with chunks placed
    /// anew) to every holder, old and new, then frees `old_keys` on `from` — only if the
    /// newest manifest among the members is `next` (another member may have published a
    /// different revision meanwhile, which would still place them on `from`); otherwise
    /// the orphan collector decides.
    async fn publish_move(
        &self,
        next: Manifest,
        layout: &Layout,
        from: NodeId,
        old_keys: Vec<String>,
    ) -> Result<(), IoError> {
        let next = Arc::new(next);
        let mut extra = next.holders();
        extra.push(from);
        self.publish(&next, layout, &extra).await?;
        let (newest, _) = self.find(&next.key, &layout.members).await;
        let ours = newest.as_ref().is_some_and(|m| {
            (m.generation, m.writer, m.revision, &m.object)
                == (next.generation, next.writer, next.revision, &next.object)
                && m.stripes.len() == next.stripes.len()
                && m.stripes
                    .iter()
                    .zip(next.stripes.iter())
                    .all(|(a, b)| a.nodes == b.nodes)
        });
        if ours {
            let _ = self.net.delete_chunks(from, old_keys).await;
        }
        Ok(())
    }

    /// Whether a newer write (another generation) of `cur`'s key exists.
    async fn superseded(&self, cur: &Manifest, layout: &Layout) -> bool {
        match self.find(&cur.key, &layout.members).await.0 {
            Some(m) => (m.generation, m.writer) != (cur.generation, cur.writer),
            None => false,
        }
    }

    /// Rebuilds stripe `i`'s chunks on `lost` nodes and writes each to a node outside the
    /// stripe; returns the stripe, (chunk index, new node) pairs and the bytes written.
    #[allow(clippy::too_many_arguments)]
    async fn repair_stripe(
        &self,
        cur: &Manifest,
        i: usize,
        layout: &Layout,
        lost: &HashSet<NodeId>,
        bad: &Mutex<HashSet<NodeId>>,
        codec: &Arc<Isal>,
        pace: &(dyn Fn(u64) -> BoxFuture<'static, ()> + Send + Sync),
    ) -> Result<StripeRepair, IoError> {
        let st = &cur.stripes[i];
        let missing: Vec<usize> = (0..st.nodes.len())
            .filter(|&x| lost.contains(&st.nodes[x]))
            .collect();
        pace(u64::from(st.len) * missing.len() as u64).await;
        let t0 = std::time::Instant::now();
        let got = self.fetch_k(cur, i, lost, &Suspects::default()).await?;
        let t_fetch = t0.elapsed();
        let chunks = self.complete_on(codec, i, st.len, got).await?;
        let t_decode = t0.elapsed() - t_fetch;
        let mut exclude: Vec<NodeId> = st.nodes.clone();
        exclude.extend(bad.lock().map(|b| b.clone()).unwrap_or_default());
        let eligible = layout
            .writable
            .iter()
            .filter(|d| d.free > 0 && !exclude.contains(&d.node))
            .count();
        let mut candidates = placement::place(
            stripe_seed(&cur.object, i),
            &layout.writable,
            eligible,
            &exclude,
        )
        .unwrap_or_default()
        .into_iter();
        let mut placed = Vec::new();
        let mut bytes = 0u64;
        for idx in missing {
            let key = chunk_key(&cur.object, i, idx);
            let mut ok = false;
            for node in candidates.by_ref() {
                let data = chunks[idx].clone();
                match self.net.put_chunk(node, key.clone(), data).await {
                    Ok(()) => {
                        placed.push((idx, node));
                        bytes += u64::from(st.len);
                        ok = true;
                        break;
                    }
                    Err(_) => {
                        if let Ok(mut b) = bad.lock() {
                            b.insert(node);
                        }
                    }
                }
            }
            if !ok {
                return Err(IoError::Unavailable(format!(
                    "{:?}: stripe {i}: no node outside the stripe could take chunk {idx}: every failure domain already holds one, or is away — add nodes or bring them back",
                    cur.key
                )));
            }
        }
        tracing::debug!(
            "repair {:?} stripe {i}: fetch {:?}, decode {:?}, put {:?}",
            cur.key,
            t_fetch,
            t_decode,
            t0.elapsed() - t_fetch - t_decode
        );
        Ok((i, placed, bytes))
    }

    /// Streams `m`'s bytes into `out`, a few stripes read ahead; returns the stripes that
    /// needed parity. A stripe that cannot be read stops it with an error: what was sent
    /// before is whole, nothing after it is sent.
    pub async fn get(
        &self,
        m: Manifest,
        out: tokio::sync::mpsc::Sender<Result<Bytes, IoError>>,
    ) -> Result<u32, IoError> {
        let codec = Arc::new(
            Isal::new(Scheme::new(m.k, m.m).map_err(|e| IoError::Failed(e.to_string()))?)
                .map_err(|e| IoError::Failed(e.to_string()))?,
        );
        let m = Arc::new(m);
        let suspects = Arc::new(Suspects::default());
        let mut rebuilt = 0u32;
        let mut inflight = FuturesOrdered::new();
        let mut i = 0;
        loop {
            while i < m.stripes.len() && inflight.len() < WINDOW {
                let (this, m2, c, s) = (self.clone(), m.clone(), codec.clone(), suspects.clone());
                let idx = i;
                inflight.push_back(async move { this.get_stripe(&m2, idx, &c, &s).await });
                i += 1;
            }
            let Some(r) = inflight.next().await else {
                break;
            };
            match r {
                Ok((pieces, parity)) => {
                    rebuilt += u32::from(parity);
                    // In pieces of at most 1 MiB: a stripe of 16 × 1 MiB chunks is too big
                    // for one message, and so may be a chunk. An empty object is one
                    // empty message, which carries its size to the reader.
                    if pieces.is_empty() && out.send(Ok(Bytes::new())).await.is_err() {
                        return Err(IoError::Failed("the reader went away".into()));
                    }
                    for mut rest in pieces {
                        while !rest.is_empty() {
                            let piece = rest.split_to(rest.len().min(1 << 20));
                            if out.send(Ok(piece)).await.is_err() {
                                return Err(IoError::Failed("the reader went away".into()));
                            }
                        }
                    }
                }
                Err(e) => {
                    let _ = out.send(Err(IoError::Unavailable(e.to_string()))).await;
                    return Err(e);
                }
            }
        }
        Ok(rebuilt)
    }

    /// Every object whose key starts with `prefix` (newest generation, deletions dropped),
    /// and the members that did not answer.
    pub async fn list(
        &self,
        prefix: &str,
        layout: &Layout,
    ) -> (Vec<Summary>, Vec<(NodeId, String)>) {
        let calls = layout.members.iter().map(|&n| {
            let f = self.net.list_manifests(n, prefix.to_string());
            async move { (n, tokio::time::timeout(Duration::from_secs(10), f).await) }
        });
        let mut best: BTreeMap<String, Summary> = BTreeMap::new();
        let mut silent = Vec::new();
        for (n, r) in futures::future::join_all(calls).await {
            match r {
                Ok(Ok(list)) => {
                    for s in list {
                        let newer = best
                            .get(&s.key)
                            .is_none_or(|b| (s.generation, s.writer) > (b.generation, b.writer));
                        if newer {
                            best.insert(s.key.clone(), s);
                        }
                    }
                }
                Ok(Err(e)) => silent.push((n, e.to_string())),
                Err(_) => silent.push((n, format!("node {n}: no answer in 10 s"))),
            }
        }
        (best.into_values().filter(|s| !s.deleted).collect(), silent)
    }

    /// The newest version — (generation, writer, revision) — of every key any of
    /// `members` holds, from one listing call to each; None if any of them does not
    /// answer (the caller then asks per key).
    pub async fn newest_versions(
        &self,
        members: &[NodeId],
    ) -> Option<HashMap<String, (u64, NodeId, u32)>> {
        let calls = members.iter().map(|&n| {
            let f = self.net.list_manifests(n, String::new());
            async move { tokio::time::timeout(Duration::from_secs(10), f).await }
        });
        let mut out: HashMap<String, (u64, NodeId, u32)> = HashMap::new();
        for r in futures::future::join_all(calls).await {
            for s in r.ok()?.ok()? {
                let v = (s.generation, s.writer, s.revision);
                let e = out.entry(s.key).or_insert(v);
                if v > *e {
                    *e = v;
                }
            }
        }
        Some(out)
    }

    /// Every member's manifest summaries; an error when a member does not answer (then
    /// nothing can be called unreferenced, nor a copy the newest).
    pub async fn catalog(&self, layout: &Layout) -> Result<Vec<(NodeId, Summary)>, IoError> {
        let calls = layout.members.iter().map(|&n| {
            let f = self.net.list_manifests(n, String::new());
            async move { (n, tokio::time::timeout(Duration::from_secs(10), f).await) }
        });
        let mut out = Vec::new();
        for (n, r) in futures::future::join_all(calls).await {
            match r {
                Ok(Ok(list)) => out.extend(list.into_iter().map(|s| (n, s))),
                Ok(Err(e)) => return Err(IoError::Unavailable(e.to_string())),
                Err(_) => {
                    return Err(IoError::Unavailable(format!("node {n}: no answer in 10 s")));
                }
            }
        }
        Ok(out)
    }

    /// The newest manifest of `key` among the members, tombstones included; an error when
    /// a member does not answer.
    pub async fn newest(&self, key: &str, layout: &Layout) -> Result<Option<Manifest>, IoError> {
        let (best, silent) = self.find(key, &layout.members).await;
        match silent.first() {
            Some((_, e)) => Err(IoError::Unavailable(e.clone())),
            None => Ok(best),
        }
    }

    /// Deletes `key`: a tombstone (a newer generation, marked deleted) on m+1 nodes, then
    /// its chunks freed. False if there was no such object.
    pub async fn delete(&self, key: &str, layout: &Layout) -> Result<bool, IoError> {
        let cur = match self.manifest(key, layout).await {
            Ok(m) => m,
            Err(IoError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let tomb = Arc::new(Manifest {
            key: key.to_string(),
            generation: now_ns().max(cur.generation.saturating_add(1)),
            writer: layout.me,
            revision: 0,
            object: cur.object.clone(),
            size: 0,
            k: cur.k,
            m: cur.m,
            chunk_size: cur.chunk_size,
            deleted: true,
            stripes: Vec::new(),
        });
        self.publish(&tomb, layout, &cur.holders()).await?;
        self.free_chunks(&cur);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::cluster::objects::NodeData;
    use crate::dataplane::store::Store;
    use std::collections::HashMap;

    /// A stripe's data chunks are the same whatever pieces its bytes arrived in; a chunk
    /// that lies within one piece is that piece's memory (no copy).
    #[test]
    fn stripes_split_the_same_from_any_pieces_and_slice_aligned_ones() {
        let codec = Isal::new(Scheme::new(3, 2).unwrap()).unwrap();
        let data: Vec<u8> = (0..1000u32).map(|x| (x * 7 + x / 13) as u8).collect();
        for size in [0usize, 1, 299, 300, 301, 1000] {
            let whole = Bytes::from(data[..size].to_vec());
            let (len, want) = encode(&codec, 3, 2, std::slice::from_ref(&whole), size).unwrap();
            for cut in [1usize, 7, 100, 333, 334, 999] {
                let pieces: Vec<Bytes> = (0..size)
                    .step_by(cut)
                    .map(|a| whole.slice(a..(a + cut).min(size)))
                    .collect();
                let (l, got) = encode(&codec, 3, 2, &pieces, size).unwrap();
                assert_eq!((l, &got), (len, &want), "size {size}, pieces of {cut}");
            }
        }
        // Pieces of exactly a chunk each: the data chunks are those pieces.
        let pieces: Vec<Bytes> = (0..3)
            .map(|i| Bytes::from(data[i * 100..(i + 1) * 100].to_vec()))
            .collect();
        let (len, chunks) = encode(&codec, 3, 2, &pieces, 300).unwrap();
        assert_eq!(len, 100);
        for i in 0..3 {
            assert_eq!(chunks[i].as_ptr(), pieces[i].as_ptr(), "chunk {i} copied");
        }
        // A chunk within a larger piece is a slice of it; a short last one is padded.
        let one = Bytes::from(data[..250].to_vec());
        let (len, chunks) = encode(&codec, 3, 2, std::slice::from_ref(&one), 250).unwrap();
        assert_eq!(len, 84);
        assert_eq!(chunks[1].as_ptr(), one[84..].as_ptr());
        assert_eq!(&chunks[2][..82], &data[168..250]);
        assert_eq!(&chunks[2][82..], &[0, 0]);
    }

    /// A stripe completed from any k chunks is the stripe; a fetched chunk held by nothing
    /// else is used in place (no copy), a shared one is copied and left as it was.
    #[test]
    fn complete_rebuilds_in_place_and_copies_only_shared_chunks() {
        let codec = Isal::new(Scheme::new(3, 2).unwrap()).unwrap();
        let data: Vec<u8> = (0..300u32).map(|x| (x * 11 + x / 7) as u8).collect();
        let whole = Bytes::from(data);
        let (len, want) = encode(&codec, 3, 2, std::slice::from_ref(&whole), 300).unwrap();
        let own = |c: &Bytes| Bytes::from(c.to_vec());
        // Chunks 1 and 3 lost; chunk 0 held elsewhere too (a clone kept), 2 and 4 not.
        let kept = own(&want[0]);
        let unique: Vec<Option<Bytes>> = vec![
            Some(kept.clone()),
            None,
            Some(own(&want[2])),
            None,
            Some(own(&want[4])),
        ];
        let ptrs: Vec<Option<*const u8>> = unique
            .iter()
            .map(|c| c.as_ref().map(|b| b.as_ptr()))
            .collect();
        let got = Frontend::<Local>::complete(&codec, 0, len, unique).unwrap();
        assert_eq!(got, want);
        assert_eq!(got[2].as_ptr(), ptrs[2].unwrap(), "chunk 2 copied");
        assert_eq!(got[4].as_ptr(), ptrs[4].unwrap(), "chunk 4 copied");
        assert_ne!(got[0].as_ptr(), kept.as_ptr(), "a shared chunk was written");
        assert_eq!(kept, want[0]);
        // More than m lost: an error naming the stripe.
        let e = Frontend::<Local>::complete(
            &codec,
            7,
            len,
            vec![Some(own(&want[0])), None, None, None, Some(own(&want[4]))],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("stripe 7"), "{e}");
        // Nothing lost: the chunks as they came.
        let all: Vec<Option<Bytes>> = want.iter().cloned().map(Some).collect();
        assert_eq!(
            Frontend::<Local>::complete(&codec, 0, len, all).unwrap(),
            want
        );
    }

    /// Nodes in one process, each a real 1+0 store on files; a node can be taken away.
    struct Local {
        nodes: HashMap<NodeId, Arc<NodeData>>,
        away: Mutex<HashSet<NodeId>>,
        _dir: tempfile::TempDir,
    }

    impl Local {
        fn new(n: u64) -> Arc<Local> {
            let dir = tempfile::tempdir().unwrap();
            let mut nodes = HashMap::new();
            for id in 1..=n {
                let d = dir.path().join(format!("n{id}"));
                let cluster = uuid::Uuid::new_v4();
                let mut s = Store::create(&d, cluster, Scheme::PLAIN, 4096).unwrap();
                let drive = d.join("d0");
                crate::dataplane::drive::format(
                    &drive,
                    &crate::dataplane::drive::FormatOptions {
                        size: Some(4 << 20),
                        chunk_size: 4096,
                        cluster,
                        force: false,
                    },
                )
                .unwrap();
                s.add_drive(&drive, false).unwrap();
                let nd = NodeData::open(Arc::new(Mutex::new(s)), &d).unwrap();
                nodes.insert(id, Arc::new(nd));
            }
            Arc::new(Local {
                nodes,
                away: Mutex::new(HashSet::new()),
                _dir: dir,
            })
        }

        fn node(&self, n: NodeId) -> Result<Arc<NodeData>, NetError> {
            if self.away.lock().unwrap().contains(&n) {
                return Err(NetError::Unreachable(n, "away".into()));
            }
            Ok(self.nodes[&n].clone())
        }
    }

    fn ne(n: NodeId, e: crate::dataplane::cluster::objects::NodeError) -> NetError {
        use crate::dataplane::cluster::objects::NodeError as E;
        match e {
            E::NotFound(_) => NetError::NotFound(n),
            E::Lost(x) => NetError::Lost(n, x),
            other => NetError::Refused(n, other.to_string()),
        }
    }

    impl Net for Local {
        fn put_chunk(
            &self,
            n: NodeId,
            key: String,
            data: Bytes,
        ) -> BoxFuture<'static, Result<(), NetError>> {
            let r = self
                .node(n)
                .and_then(|d| d.put_chunk(&key, &data).map_err(|e| ne(n, e)));
            Box::pin(async move { r })
        }
        fn get_chunk(&self, n: NodeId, key: String) -> BoxFuture<'static, Result<Bytes, NetError>> {
            let r = self
                .node(n)
                .and_then(|d| d.get_chunk(&key).map_err(|e| ne(n, e)));
            Box::pin(async move { r })
        }
        fn delete_chunks(
            &self,
            n: NodeId,
            keys: Vec<String>,
        ) -> BoxFuture<'static, Result<(), NetError>> {
            let r = self
                .node(n)
                .and_then(|d| d.delete_chunks(&keys).map(|_| ()).map_err(|e| ne(n, e)));
            Box::pin(async move { r })
        }
        fn put_manifest(
            &self,
            n: NodeId,
            m: Arc<Manifest>,
        ) -> BoxFuture<'static, Result<bool, NetError>> {
            let r = self
                .node(n)
                .and_then(|d| d.put_manifest(&m).map_err(|e| ne(n, e)));
            Box::pin(async move { r })
        }
        fn get_manifest(
            &self,
            n: NodeId,
            key: String,
        ) -> BoxFuture<'static, Result<Option<Manifest>, NetError>> {
            let r = self
                .node(n)
                .and_then(|d| d.get_manifest(&key).map_err(|e| ne(n, e)));
            Box::pin(async move { r })
        }
        fn list_manifests(
            &self,
            n: NodeId,
            prefix: String,
        ) -> BoxFuture<'static, Result<Vec<Summary>, NetError>> {
            let r = self.node(n).and_then(|d| {
                d.manifests(&prefix)
                    .map(|v| v.iter().map(Manifest::summary).collect())
                    .map_err(|e| ne(n, e))
            });
            Box::pin(async move { r })
        }
    }

    fn layout(n: u64) -> Layout {
        Layout {
            k: 3,
            m: 2,
            chunk_size: 4096,
            members: (1..=n).collect(),
            writable: (1..=n)
                .map(|node| Domain {
                    node,
                    free: 1 << 20,
                })
                .collect(),
            me: 1,
        }
    }

    async fn put(f: &Frontend<Local>, key: &str, data: &[u8]) -> Result<PutDone, IoError> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let d = data.to_vec();
        tokio::spawn(async move {
            for c in d.chunks(5000) {
                tx.send(Piece::Data(Bytes::copy_from_slice(c)))
                    .await
                    .unwrap();
            }
            tx.send(Piece::End).await.unwrap();
        });
        f.put(key, &layout(6), rx).await
    }

    async fn get(f: &Frontend<Local>, key: &str) -> Result<(Vec<u8>, u32), IoError> {
        let m = f.manifest(key, &layout(6)).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let f2 = f.clone();
        let h = tokio::spawn(async move { f2.get(m, tx).await });
        let mut out = Vec::new();
        while let Some(b) = rx.recv().await {
            out.extend_from_slice(&b?);
        }
        let rebuilt = h.await.unwrap()?;
        Ok((out, rebuilt))
    }

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn objects_survive_m_nodes_away_and_refuse_beyond() {
        let net = Local::new(6);
        let f = Frontend::new(net.clone());
        let sizes = [0usize, 1, 4095, 4096 * 3, 4096 * 3 + 1, 100_000];
        for (i, &n) in sizes.iter().enumerate() {
            let d = data(n, i as u8);
            let done = put(&f, &format!("obj/{i}"), &d).await.unwrap();
            assert_eq!(done.size, n as u64);
            let (back, rebuilt) = get(&f, &format!("obj/{i}")).await.unwrap();
            assert_eq!(back, d, "object {i} of {n} bytes");
            assert_eq!(rebuilt, 0);
        }
        let (list, silent) = f.list("obj/", &layout(6)).await;
        assert_eq!(list.len(), sizes.len());
        assert!(silent.is_empty());
        // Overwrite: the new bytes win, the old chunks are freed.
        let d2 = data(50_000, 99);
        put(&f, "obj/5", &d2).await.unwrap();
        assert_eq!(get(&f, "obj/5").await.unwrap().0, d2);
        // m = 2 nodes away: everything still reads, through parity where needed.
        net.away.lock().unwrap().extend([2, 5]);
        let mut rebuilt_any = 0;
        for (i, &n) in sizes.iter().enumerate().take(5) {
            let (back, rebuilt) = get(&f, &format!("obj/{i}")).await.unwrap();
            assert_eq!(back, data(n, i as u8));
            rebuilt_any += rebuilt;
        }
        assert!(
            rebuilt_any > 0,
            "some stripe had a data chunk on an away node"
        );
        // Writes go on with 4 nodes? No: 3+2 needs 5 nodes that take chunks.
        let err = put(&f, "new", &data(10, 1)).await.unwrap_err();
        assert!(err.to_string().contains("chunks could be placed"), "{err}");
        // m+1 away, three of obj/0's own nodes (any three of six would leave an object
        // readable 1 time in 2): a clear error, never wrong bytes.
        net.away.lock().unwrap().clear();
        let m0 = f.manifest("obj/0", &layout(6)).await.unwrap();
        net.away
            .lock()
            .unwrap()
            .extend(m0.stripes[0].nodes.iter().take(3).copied());
        let mut unavailable = 0;
        for (i, &n) in sizes.iter().enumerate().take(5) {
            match get(&f, &format!("obj/{i}")).await {
                Ok((back, _)) => assert_eq!(back, data(n, i as u8)),
                Err(IoError::Unavailable(msg)) => {
                    assert!(
                        msg.contains("not enough survive") || msg.contains("manifest"),
                        "{msg}"
                    );
                    unavailable += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(unavailable > 0);
        // They return: all is readable again.
        net.away.lock().unwrap().clear();
        for (i, &n) in sizes.iter().enumerate().take(5) {
            assert_eq!(
                get(&f, &format!("obj/{i}")).await.unwrap().0,
                data(n, i as u8)
            );
        }
        // Delete: gone from list and get, chunks freed on every node.
        assert!(f.delete("obj/1", &layout(6)).await.unwrap());
        assert!(!f.delete("obj/1", &layout(6)).await.unwrap());
        assert!(matches!(get(&f, "obj/1").await, Err(IoError::NotFound(_))));
        let (list, _) = f.list("obj/", &layout(6)).await;
        assert_eq!(list.len(), sizes.len() - 1);
    }

    /// A feed that stops before `Piece::End` — after one byte, or after stripes were
    /// already written — stores nothing, and the key's object stays as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feed_that_stops_before_its_end_stores_nothing() {
        let net = Local::new(6);
        let f = Frontend::new(net.clone());
        let old = data(10_000, 3);
        put(&f, "k", &old).await.unwrap();
        for sent in [1usize, 100_000] {
            for key in ["k", "new"] {
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let d = data(sent, 9);
                tokio::spawn(async move {
                    for c in d.chunks(5000) {
                        let _ = tx.send(Piece::Data(Bytes::copy_from_slice(c))).await;
                    }
                });
                let e = f.put(key, &layout(6), rx).await.unwrap_err();
                assert!(e.to_string().contains("broke off"), "{e}");
            }
            assert_eq!(get(&f, "k").await.unwrap().0, old, "after {sent} bytes");
            assert!(matches!(get(&f, "new").await, Err(IoError::NotFound(_))));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_chunk_is_read_around() {
        let net = Local::new(5);
        let f = Frontend::new(net.clone());
        let lay = Layout {
            members: (1..=5).collect(),
            writable: (1..=5).map(|node| Domain { node, free: 1 }).collect(),
            ..layout(5)
        };
        let d = data(30_000, 7);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Piece::Data(Bytes::from(d.clone()))).await.unwrap();
        tx.send(Piece::End).await.unwrap();
        f.put("x", &lay, rx).await.unwrap();
        let m = f.manifest("x", &lay).await.unwrap();
        // Replace data chunk 0 of stripe 0 with other bytes of the same length: the node's
        // own checksum is fine, the manifest's CRC is not.
        let node = m.stripes[0].nodes[0];
        let key = chunk_key(&m.object, 0, 0);
        net.nodes[&node]
            .put_chunk(&key, &vec![0xAB; m.stripes[0].len as usize])
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let f2 = f.clone();
        let h = tokio::spawn(async move { f2.get(m, tx).await });
        let mut out = Vec::new();
        while let Some(b) = rx.recv().await {
            out.extend_from_slice(&b.unwrap());
        }
        assert_eq!(out, d);
        assert_eq!(h.await.unwrap().unwrap(), 1);
    }
}

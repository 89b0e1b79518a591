//! Objects across the cluster (DATAPLANE.md, "Where chunks live"): an object is split into
//! stripes of k data + m parity chunks on k+m distinct nodes, and its *manifest* — key,
//! size, generation, and per stripe the node and checksum of each chunk — is written, once
//! every chunk is durable, to the m+1 *home* nodes of the key and to every chunk holder. A
//! reader asks the members and takes the highest generation, so the layout survives the loss
//! of any m nodes, the Raft leader included.
//!
//! This module is a node's side of it (`NodeData`: its chunks in its own store, a `1+0`
//! store being the natural one, and the manifests it holds in `manifests.redb` beside the
//! store's index), plus the shapes the frontend (`frontend`) and the wire share.

use super::placement;
use crate::dataplane::store::{Store, StoreError};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub type NodeId = u64;

/// The manifests a node holds: key → JSON of `Manifest`.
const MANIFESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("manifests");
pub const MANIFEST_DB: &str = "manifests.redb";

/// Where one object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    /// Orders writes of one key: the highest (generation, writer) is the object.
    pub generation: u64,
    /// The node whose frontend wrote it.
    pub writer: NodeId,
    /// Bumped when a rebuild or a move changes where chunks live, keeping the generation:
    /// a client's write (a newer generation) always wins over a repair of an older one.
    #[serde(default)]
    pub revision: u32,
    /// Names the chunks (`chunk_key`); new for every write, so generations never share one.
    pub object: String,
    pub size: u64,
    pub k: usize,
    pub m: usize,
    /// The most data bytes in one chunk: a stripe holds up to k × this.
    pub chunk_size: u32,
    /// A tombstone: the key was deleted at this generation.
    #[serde(default)]
    pub deleted: bool,
    pub stripes: Vec<StripeMap>,
}

/// One stripe: its chunks' length and, for chunk i (k data, then m parity), its node and
/// CRC-32C.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeMap {
    pub len: u32,
    pub nodes: Vec<NodeId>,
    pub crcs: Vec<u32>,
}

/// A manifest in brief, as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub key: String,
    pub generation: u64,
    pub writer: NodeId,
    pub size: u64,
    pub deleted: bool,
    pub stripes: u32,
    /// The object id its chunks are keyed by.
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub revision: u32,
}

impl Summary {
    /// Write order: (generation, writer, revision), as `Manifest::newer_than`.
    pub fn order(&self) -> (u64, NodeId, u32) {
        (self.generation, self.writer, self.revision)
    }
}

impl Manifest {
    pub fn newer_than(&self, other: &Manifest) -> bool {
        (self.generation, self.writer, self.revision)
            > (other.generation, other.writer, other.revision)
    }

    /// Data bytes in stripe `i`.
    /// Why this manifest cannot be read as it stands (a peer's may be malformed): every
    /// stripe must name k+m nodes and k+m CRCs. None when it is well formed.
    pub fn shape_problem(&self) -> Option<String> {
        let n = self.k + self.m;
        if self.k == 0 {
            return Some(format!("{:?}: manifest with k = 0", self.key));
        }
        self.stripes
            .iter()
            .position(|st| st.nodes.len() != n || st.crcs.len() != n)
            .map(|i| {
                format!(
                    "{:?}: manifest stripe {i} names {} nodes and {} CRCs, {}+{} needs {n} of each",
                    self.key,
                    self.stripes[i].nodes.len(),
                    self.stripes[i].crcs.len(),
                    self.k,
                    self.m
                )
            })
    }

    /// As `shape_problem`, as the frontend's error.
    pub fn check_shape(&self) -> Result<(), super::frontend::IoError> {
        match self.shape_problem() {
            None => Ok(()),
            Some(p) => Err(super::frontend::IoError::Failed(p)),
        }
    }

    pub fn stripe_bytes(&self, i: usize) -> u64 {
        let per = self.k as u64 * u64::from(self.chunk_size);
        self.size.saturating_sub(i as u64 * per).min(per)
    }

    /// Every node holding a chunk of it.
    pub fn holders(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .stripes
            .iter()
            .flat_map(|s| s.nodes.iter().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The node chunk `idx` of stripe `i` lives on, if the manifest has that chunk.
    pub fn node_of(&self, i: usize, idx: usize) -> Option<NodeId> {
        self.stripes
            .get(i)
            .and_then(|st| st.nodes.get(idx))
            .copied()
    }

    /// Every chunk on `node`, by key.
    pub fn chunks_on(&self, node: NodeId) -> Vec<String> {
        let mut out = Vec::new();
        for (s, st) in self.stripes.iter().enumerate() {
            for (i, n) in st.nodes.iter().enumerate() {
                if *n == node {
                    out.push(chunk_key(&self.object, s, i));
                }
            }
        }
        out
    }

    pub fn summary(&self) -> Summary {
        Summary {
            key: self.key.clone(),
            generation: self.generation,
            writer: self.writer,
            size: self.size,
            deleted: self.deleted,
            stripes: self.stripes.len() as u32,
            object: self.object.clone(),
            revision: self.revision,
        }
    }
}

/// The store key of chunk `index` of stripe `stripe` of object `object`.
pub fn chunk_key(object: &str, stripe: usize, index: usize) -> String {
    format!("c/{object}/{stripe}/{index}")
}

/// (object, stripe, index) of a chunk key; None for another key.
pub fn parse_chunk_key(key: &str) -> Option<(&str, usize, usize)> {
    let rest = key.strip_prefix("c/")?;
    let (rest, index) = rest.rsplit_once('/')?;
    let (object, stripe) = rest.rsplit_once('/')?;
    Some((object, stripe.parse().ok()?, index.parse().ok()?))
}

/// The key's home nodes, best first: all `members` ranked by rendezvous hash of the key.
/// The first m+1 of them that answer hold its manifest.
pub fn home_ranking(key: &str, members: &[NodeId]) -> Vec<NodeId> {
    let seed = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
    let domains: Vec<placement::Domain> = members
        .iter()
        .map(|&node| placement::Domain { node, free: 1 })
        .collect();
    placement::place(seed, &domains, domains.len(), &[]).unwrap_or_default()
}

/// What a node's side of the data plane can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("no such chunk or manifest here: {0}")]
    NotFound(String),
    /// Held, but cannot be read back whole (a lost drive, a bad checksum).
    #[error("{0}")]
    Lost(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(k) => NodeError::NotFound(k),
            StoreError::Unreadable(m) => NodeError::Lost(m),
            StoreError::Refused(m) => NodeError::Refused(m),
            other => NodeError::Failed(other.to_string()),
        }
    }
}

/// A node's chunks (in its store) and the manifests it holds.
pub struct NodeData {
    store: Arc<Mutex<Store>>,
    db: Database,
    path: PathBuf,
    /// When a chunk of each object was last written here (since this process started):
    /// an object still being written or repaired is never an orphan.
    written: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// The node's containers, for chunk reads and writes (set once the agent runs them).
    offload: std::sync::OnceLock<Arc<dyn crate::dataplane::offload::Offload>>,
}

fn db_err(path: &Path) -> impl Fn(redb::Error) -> NodeError + '_ {
    move |e| NodeError::Failed(format!("{}: {e}", path.display()))
}

impl NodeData {
    /// Opens (or creates) the manifest index in `dir` (the store's directory).
    pub fn open(store: Arc<Mutex<Store>>, dir: &Path) -> Result<NodeData, NodeError> {
        let path = dir.join(MANIFEST_DB);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(NodeError::Refused(format!(
                    "{}: open in another process — stop it first",
                    path.display()
                )));
            }
            Err(e) => return Err(db_err(&path)(e.into())),
        };
        {
            let e = db_err(&path);
            let tx = db.begin_write().map_err(|x| e(x.into()))?;
            tx.open_table(MANIFESTS).map_err(|x| e(x.into()))?;
            tx.commit().map_err(|x| e(x.into()))?;
        }
        Ok(NodeData {
            store,
            db,
            path,
            written: Mutex::new(std::collections::HashMap::new()),
            offload: std::sync::OnceLock::new(),
        })
    }

    /// Runs the node's chunk work on its drives container (and its erasure coding on its
    /// compute container) from now on.
    pub fn set_offload(&self, o: Arc<dyn crate::dataplane::offload::Offload>) {
        let _ = self.offload.set(o);
    }

    pub fn offload(&self) -> Option<&Arc<dyn crate::dataplane::offload::Offload>> {
        self.offload.get()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Store>, NodeError> {
        self.store
            .lock()
            .map_err(|_| NodeError::Failed("the store's lock is poisoned (a panic)".into()))
    }

    /// Stores a chunk durably (as the store defines: written, synced, committed).
    pub fn put_chunk(&self, key: &str, data: &[u8]) -> Result<(), NodeError> {
        if !key.starts_with("c/") {
            return Err(NodeError::Refused(format!(
                "{key:?} is not a chunk key (c/<object>/<stripe>/<index>)"
            )));
        }
        // Marked fresh before the write, as in `put_chunks`.
        if let Some((object, _, _)) = parse_chunk_key(key)
            && let Ok(mut w) = self.written.lock()
        {
            w.insert(object.to_string(), std::time::Instant::now());
        }
        self.lock()?.put(key, data)?;
        Ok(())
    }

    /// Stores chunks durably with one sync and one commit for all of them (group commit:
    /// `Store::put_many`); one result per chunk, in order.
    pub fn put_chunks(&self, items: &[(String, bytes::Bytes)]) -> Vec<Result<(), NodeError>> {
        let mut out: Vec<Option<Result<(), NodeError>>> = items
            .iter()
            .map(|(key, _)| {
                (!key.starts_with("c/")).then(|| {
                    Err(NodeError::Refused(format!(
                        "{key:?} is not a chunk key (c/<object>/<stripe>/<index>)"
                    )))
                })
            })
            .collect();
        let todo: Vec<usize> = (0..items.len()).filter(|&i| out[i].is_none()).collect();
        if !todo.is_empty() {
            // Recorded before the write: the orphan collector must never see one of
            // these committed but not yet marked fresh (a failed write only delays its
            // collection).
            let now = std::time::Instant::now();
            if let Ok(mut w) = self.written.lock() {
                for &i in &todo {
                    if let Some((object, _, _)) = parse_chunk_key(&items[i].0) {
                        w.insert(object.to_string(), now);
                    }
                }
            }
            let batch: Vec<(&str, &[u8])> = todo
                .iter()
                .map(|&i| (items[i].0.as_str(), items[i].1.as_ref()))
                .collect();
            let results: Vec<Result<(), NodeError>> = match self.lock() {
                Ok(mut s) => s
                    .put_many(&batch)
                    .into_iter()
                    .map(|r| r.map(|_| ()).map_err(NodeError::from))
                    .collect(),
                Err(e) => todo
                    .iter()
                    .map(|_| Err(NodeError::Failed(e.to_string())))
                    .collect(),
            };
            for (&i, r) in todo.iter().zip(results) {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(NodeError::Failed("not answered".into()))))
            .collect()
    }

    /// When a chunk of `object` was last written here, if since this process started.
    pub fn last_written(&self, object: &str) -> Option<std::time::Instant> {
        self.written
            .lock()
            .ok()
            .and_then(|w| w.get(object).copied())
    }

    /// Forgets write times older than `age` (the collector's bound on the map).
    pub fn forget_writes_before(&self, age: std::time::Duration) {
        if let Ok(mut w) = self.written.lock() {
            w.retain(|_, t| t.elapsed() < age);
        }
    }

    /// A chunk, read without the store's lock when its place is known healthy (reads
    /// then run alongside each other and alongside writes' syncs); under the lock, which
    /// rebuilds from parity and records damage, otherwise.
    pub fn get_chunk(&self, key: &str) -> Result<bytes::Bytes, NodeError> {
        let plan = self.lock()?.read_plan(key)?;
        if let Some(data) = plan.and_then(|p| p.read()) {
            return Ok(data);
        }
        Ok(self.lock()?.get(key)?.into())
    }

    /// Frees the chunks named; those not held are skipped. Returns how many were freed.
    pub fn delete_chunks(&self, keys: &[String]) -> Result<u64, NodeError> {
        let mut s = self.lock()?;
        let mut n = 0;
        for k in keys {
            match s.delete(k) {
                Ok(()) => n += 1,
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Records `m` if it is newer than what is held for its key; true if it was.
    pub fn put_manifest(&self, m: &Manifest) -> Result<bool, NodeError> {
        self.put_manifests(std::slice::from_ref(m))
            .pop()
            .expect("one result per manifest")
    }

    /// As `put_manifest` for each, in one transaction (group commit): one result per
    /// manifest, in order. A malformed manifest is refused alone; a failed commit fails all.
    pub fn put_manifests(&self, ms: &[Manifest]) -> Vec<Result<bool, NodeError>> {
        let mut out: Vec<Option<Result<bool, NodeError>>> = ms
            .iter()
            .map(|m| {
                if !m.deleted
                    && let Some(p) = m.shape_problem()
                {
                    return Some(Err(NodeError::Refused(p)));
                }
                None
            })
            .collect();
        let e = db_err(&self.path);
        let r = (|| -> Result<Vec<(usize, bool)>, NodeError> {
            let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
            let mut stored = Vec::new();
            {
                let mut t = tx.open_table(MANIFESTS).map_err(|x| e(x.into()))?;
                for (i, m) in ms.iter().enumerate() {
                    if out[i].is_some() {
                        continue;
                    }
                    let json =
                        serde_json::to_vec(m).map_err(|x| NodeError::Failed(x.to_string()))?;
                    let newer = match t.get(m.key.as_str()).map_err(|x| e(x.into()))? {
                        Some(v) => match serde_json::from_slice::<Manifest>(v.value()) {
                            Ok(old) => m.newer_than(&old),
                            Err(_) => true,
                        },
                        None => true,
                    };
                    if newer {
                        t.insert(m.key.as_str(), json.as_slice())
                            .map_err(|x| e(x.into()))?;
                    }
                    stored.push((i, newer));
                }
            }
            tx.commit().map_err(|x| e(x.into()))?;
            Ok(stored)
        })();
        match r {
            Ok(stored) => {
                for (i, newer) in stored {
                    out[i] = Some(Ok(newer));
                }
            }
            Err(err) => {
                let text = err.to_string();
                for o in out.iter_mut().filter(|o| o.is_none()) {
                    *o = Some(Err(NodeError::Failed(text.clone())));
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(NodeError::Failed("not answered".into()))))
            .collect()
    }

    pub fn get_manifest(&self, key: &str) -> Result<Option<Manifest>, NodeError> {
        let e = db_err(&self.path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = rtx.open_table(MANIFESTS).map_err(|x| e(x.into()))?;
        let Some(v) = t.get(key).map_err(|x| e(x.into()))? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value()).map(Some).map_err(|x| {
            NodeError::Failed(format!(
                "{}: the manifest of {key:?} is damaged: {x}",
                self.path.display()
            ))
        })
    }

    /// Every manifest held whose key starts with `prefix` (damaged ones skipped).
    pub fn manifests(&self, prefix: &str) -> Result<Vec<Manifest>, NodeError> {
        let e = db_err(&self.path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = rtx.open_table(MANIFESTS).map_err(|x| e(x.into()))?;
        let mut out = Vec::new();
        for row in t.range(prefix..).map_err(|x| e(x.into()))? {
            let (k, v) = row.map_err(|x| e(x.into()))?;
            if !k.value().starts_with(prefix) {
                break;
            }
            if let Ok(m) = serde_json::from_slice::<Manifest>(v.value()) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Free and total bytes on the store's usable drives, and chunks held.
    pub fn usage(&self) -> Result<(u64, u64, u64), NodeError> {
        Ok(self.lock()?.usage()?)
    }

    /// The store's chunk size: the frontend's chunk size on this node.
    pub fn chunk_size(&self) -> Result<u32, NodeError> {
        Ok(self.lock()?.chunk_size())
    }

    /// Chunk keys this node holds but cannot serve: on a failed or missing drive, or found
    /// damaged by a read or the scrubber. Cheap when there are none.
    pub fn losses(&self) -> Result<Vec<String>, NodeError> {
        let s = self.lock()?;
        if !s.has_losses() {
            return Ok(Vec::new());
        }
        Ok(s.degraded()?.into_iter().map(|d| d.key).collect())
    }

    /// The chunks this node holds, by object: object id → [(stripe, index)].
    pub fn chunks_by_object(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<(usize, usize)>>, NodeError> {
        let list = self.lock()?.list()?;
        let mut out: std::collections::BTreeMap<String, Vec<(usize, usize)>> = Default::default();
        for (key, _, _) in list {
            if let Some((object, s, i)) = parse_chunk_key(&key) {
                out.entry(object.to_string()).or_default().push((s, i));
            }
        }
        Ok(out)
    }

    /// The store under its lock, for what the cluster layer does not wrap (the demo's
    /// fault injection).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T, NodeError> {
        Ok(f(&mut *self.lock()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(key: &str, generation: u64, writer: NodeId) -> Manifest {
        Manifest {
            key: key.into(),
            generation,
            writer,
            revision: 0,
            object: "o".into(),
            size: 10,
            k: 3,
            m: 2,
            chunk_size: 4096,
            deleted: false,
            stripes: vec![StripeMap {
                len: 4,
                nodes: vec![1, 2, 3, 4, 5],
                crcs: vec![0; 5],
            }],
        }
    }

    #[test]
    fn home_ranking_is_a_stable_permutation() {
        let members = [1, 2, 3, 4, 5, 6];
        let a = home_ranking("some/key", &members);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, members);
        assert_eq!(a, home_ranking("some/key", &members));
        // Different keys land on different homes (not always the same first node).
        let firsts: std::collections::HashSet<NodeId> = (0..50)
            .map(|i| home_ranking(&format!("k{i}"), &members)[0])
            .collect();
        assert!(firsts.len() >= 4, "{firsts:?}");
        // A member leaving moves only the keys it was first home for.
        let without: Vec<NodeId> = vec![1, 2, 3, 4, 5];
        for i in 0..50 {
            let key = format!("k{i}");
            let full = home_ranking(&key, &members);
            let less = home_ranking(&key, &without);
            let expect: Vec<NodeId> = full.into_iter().filter(|&n| n != 6).collect();
            assert_eq!(less, expect);
        }
    }

    #[test]
    fn stripe_bytes_and_holders() {
        let mut m = manifest("a", 1, 1);
        m.size = 3 * 4096 * 2 + 100;
        m.stripes = vec![m.stripes[0].clone(); 3];
        m.stripes[2].nodes = vec![1, 2, 3, 4, 6];
        assert_eq!(m.stripe_bytes(0), 3 * 4096);
        assert_eq!(m.stripe_bytes(2), 100);
        assert_eq!(m.holders(), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(m.chunks_on(6), vec![chunk_key("o", 2, 4)]);
    }

    #[test]
    fn only_newer_manifests_replace_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(
            &dir.path().join("s"),
            uuid::Uuid::new_v4(),
            crate::dataplane::ec::Scheme::PLAIN,
            4096,
        )
        .unwrap();
        let nd = NodeData::open(Arc::new(Mutex::new(store)), &dir.path().join("s")).unwrap();
        assert!(nd.put_manifest(&manifest("a", 5, 1)).unwrap());
        assert!(!nd.put_manifest(&manifest("a", 4, 9)).unwrap());
        assert!(!nd.put_manifest(&manifest("a", 5, 1)).unwrap());
        assert!(nd.put_manifest(&manifest("a", 5, 2)).unwrap());
        assert_eq!(nd.get_manifest("a").unwrap().unwrap().writer, 2);
        nd.put_manifest(&manifest("b/1", 1, 1)).unwrap();
        nd.put_manifest(&manifest("b/2", 1, 1)).unwrap();
        let keys: Vec<String> = nd
            .manifests("b/")
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, vec!["b/1", "b/2"]);
        assert!(nd.get_manifest("zzz").unwrap().is_none());
    }
}

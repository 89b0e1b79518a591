//! The storage engine on one node: objects split into k+m erasure-coded stripes whose
//! chunks sit in slots of distinct drives, with the index in redb.
//!
//! Order of a write (DATAPLANE.md): allocate free slots on k+m distinct drives → write each
//! chunk (header + payload, O_DIRECT) → fdatasync every drive written → commit one redb
//! transaction naming the object, its stripes and their slots → acknowledge. A crash before
//! the commit leaves chunks no index names: on open they are found by their headers and
//! freed (their headers zeroed). An object is therefore whole or absent, and a committed
//! chunk is never overwritten by a later write (only free slots are allocated).
//!
//! On open every drive's superblock is checked against the drive the index expects there
//! (same cluster, same drive id), and every slot's header against the index: a chunk whose
//! header disagrees is reported and treated as lost until the scrubber repairs it.
//!
//! Free slots are not stored: they are the slots the index does not name, computed on open.
//! The index is the one source of truth, so the two can never disagree.
//!
//! Writes arriving together are group-committed (`put_many`): each is written as above,
//! then one fdatasync per drive and one transaction cover them all. Reads of healthy
//! chunks run without the store's lock (`read_plan`, then `ReadPlan::read`): if a slot of
//! the drive was freed meanwhile, or a chunk's header no longer names the stripe and
//! generation the index gave, the read is redone under the lock.

use super::drive::{self, AlignedBuf, BLOCK, ChunkHeader, DriveError, DriveIo, DriveState};
use super::ec::{Codec, EcError, Isal, Scheme};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The index's file inside the store directory.
pub const DB_FILE: &str = "meta.redb";
/// Longest object key, in bytes.
pub const MAX_KEY: usize = 1024;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// drive id → state code, then the path (UTF-8).
const DRIVES: TableDefinition<u128, &[u8]> = TableDefinition::new("drives");
/// (drive id, slot) → (stripe, chunk index, chunk generation).
const CHUNKS: TableDefinition<(u128, u64), (u64, u16, u64)> = TableDefinition::new("chunks");
/// What the index says a slot holds: (stripe, chunk index, chunk generation).
type ChunkRef = (u64, u16, u64);
/// stripe → `StripeRec`.
const STRIPES: TableDefinition<u64, &[u8]> = TableDefinition::new("stripes");
/// key → `ObjectRec`.
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// What is wrong and what to do, in one message.
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {op}: {source}{hint}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("{path}: metadata database: {msg}")]
    Db { path: PathBuf, msg: String },
    #[error(transparent)]
    Drive(#[from] DriveError),
    #[error(transparent)]
    Ec(#[from] EcError),
    #[error("no object {0:?} in this store")]
    NotFound(String),
    #[error("{0}")]
    Unreadable(String),
}

fn io_err(path: &Path, op: &'static str, source: std::io::Error) -> StoreError {
    let hint = match source.raw_os_error() {
        Some(libc::ENOSPC) => {
            " — the filesystem holding this drive is full: free space on it or move the drive; nothing was committed"
        }
        Some(libc::EIO) => " — the device reports an I/O error: check its SMART log and replace it",
        _ => "",
    };
    StoreError::Io {
        path: path.to_path_buf(),
        op,
        source,
        hint,
    }
}

/// A chunk's place: drive, slot, and the generation written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub drive: Uuid,
    pub slot: u64,
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct StripeRec {
    key: String,
    /// Payload bytes of every chunk of the stripe (a multiple of 4 KiB).
    chunk_len: u32,
    /// k data then m parity; None once a chunk is lost with nowhere to rebuild it.
    chunks: Vec<Option<Loc>>,
}

impl StripeRec {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(6 + self.chunks.len() * 32 + self.key.len());
        b.extend_from_slice(&self.chunk_len.to_le_bytes());
        b.extend_from_slice(&(self.chunks.len() as u16).to_le_bytes());
        for c in &self.chunks {
            let (d, s, g) = c.map_or((0, 0, 0), |l| (l.drive.as_u128(), l.slot, l.generation));
            b.extend_from_slice(&d.to_le_bytes());
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&g.to_le_bytes());
        }
        b.extend_from_slice(self.key.as_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<StripeRec> {
        let chunk_len = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
        let n = u16::from_le_bytes(b.get(4..6)?.try_into().ok()?) as usize;
        let mut chunks = Vec::with_capacity(n);
        for i in 0..n {
            let o = 6 + i * 32;
            let d = u128::from_le_bytes(b.get(o..o + 16)?.try_into().ok()?);
            let s = u64::from_le_bytes(b.get(o + 16..o + 24)?.try_into().ok()?);
            let g = u64::from_le_bytes(b.get(o + 24..o + 32)?.try_into().ok()?);
            chunks.push((d != 0).then(|| Loc {
                drive: Uuid::from_u128(d),
                slot: s,
                generation: g,
            }));
        }
        let key = String::from_utf8(b.get(6 + n * 32..)?.to_vec()).ok()?;
        Some(StripeRec {
            key,
            chunk_len,
            chunks,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ObjectRec {
    size: u64,
    stripes: Vec<u64>,
}

impl ObjectRec {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + 8 * self.stripes.len());
        b.extend_from_slice(&self.size.to_le_bytes());
        for s in &self.stripes {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    fn decode(b: &[u8]) -> Option<ObjectRec> {
        let size = u64::from_le_bytes(b.get(0..8)?.try_into().ok()?);
        let rest = b.get(8..)?;
        if rest.len() % 8 != 0 {
            return None;
        }
        let stripes = rest
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Some(ObjectRec { size, stripes })
    }
}

/// A drive as the engine holds it.
struct Drive {
    id: Uuid,
    path: PathBuf,
    state: DriveState,
    /// None when the drive cannot be used; `problem` says why.
    io: Option<Arc<DriveIo>>,
    problem: Option<String>,
    slots: u64,
    used: Vec<bool>,
    free: u64,
    cursor: u64,
    /// Slots freed so far: a read made without the lock (`ReadPlan`) that sees it move
    /// cannot trust what it read (the slot may have been handed to another write).
    freed: Arc<AtomicU64>,
}

impl Drive {
    /// Takes new chunks: ACTIVE, or PHASING_IN (being filled to the others' level).
    fn usable(&self) -> bool {
        self.io.is_some() && matches!(self.state, DriveState::Active | DriveState::PhasingIn)
    }

    fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        for step in 0..self.slots {
            let s = (self.cursor + step) % self.slots;
            if !self.used[s as usize] {
                self.used[s as usize] = true;
                self.free -= 1;
                self.cursor = s + 1;
                return Some(s);
            }
        }
        None
    }

    fn release(&mut self, slot: u64) {
        if let Some(u) = self.used.get_mut(slot as usize)
            && *u
        {
            *u = false;
            self.free += 1;
            self.freed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// What `open` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    /// Slots holding a chunk no committed object names (a write cut short), now free.
    pub orphans_freed: u64,
    /// Chunks the index names whose header disagrees, treated as lost until repaired.
    pub mismatches: Vec<String>,
    /// Drives that cannot be used, each with why and the remedy.
    pub unavailable: Vec<String>,
    /// Superblock copies found damaged (the other copy was used).
    pub warnings: Vec<String>,
}

/// One drive in `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DriveStatus {
    pub id: String,
    pub path: PathBuf,
    pub state: &'static str,
    pub available: bool,
    pub direct_io: bool,
    pub problem: Option<String>,
    pub slots: u64,
    pub used: u64,
}

/// Counters of the scrubber (and of reads that met damage).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScrubStats {
    pub passes: u64,
    pub stripes_checked: u64,
    pub chunks_checked: u64,
    pub bytes_read: u64,
    /// Chunks found unreadable: bad checksum, wrong or torn header, drive unavailable.
    pub found: u64,
    pub repaired: u64,
    /// Chunks that could not be repaired (too many lost, or no drive to put them on).
    pub unrepairable: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub cluster: String,
    pub scheme: String,
    pub chunk_size: u32,
    pub drives: Vec<DriveStatus>,
    pub objects: u64,
    pub stripes: u64,
    /// Stripe counts by chunks lost: `[0]` whole, `[1]` one lost, …
    pub stripes_by_lost: Vec<u64>,
    /// OK, PARTIALLY_PROTECTED, UNPROTECTED or UNAVAILABLE (DATAPLANE.md).
    pub protection: &'static str,
    pub recovery: Recovery,
    pub scrub: ScrubStats,
}

/// A stripe that lost chunks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Degraded {
    pub stripe: u64,
    pub key: String,
    pub lost: usize,
    /// Each lost chunk: index and why.
    pub why: Vec<String>,
}

/// What phasing a drive out moves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PhaseOut {
    pub drive: String,
    pub path: PathBuf,
    pub state: &'static str,
    /// Chunks on the drive (one per object in a 1+0 store) and their bytes.
    pub chunks: u64,
    pub bytes: u64,
    pub capacity: u64,
    /// Free bytes on the store's other ACTIVE drives, and how many there are.
    pub others_free: u64,
    pub others_active: u64,
    /// The objects to move.
    #[serde(skip)]
    pub keys: Vec<String>,
}

/// What phasing a drive in moves onto it.
#[derive(Debug, Clone)]
pub struct PhaseIn {
    pub drive: String,
    pub path: PathBuf,
    /// (drive id, object key): objects with a chunk on a fuller drive, moved so that every
    /// drive that takes chunks ends about as full as the others.
    pub moves: Vec<(String, String)>,
    /// Bytes of the chunks to move.
    pub bytes: u64,
}

/// A put's stripes written but not yet committed: (stripe id, record).
type Staged = Vec<(u64, StripeRec)>;
/// An object to commit: key, size, its new stripes.
type NewObject<'a> = (&'a str, u64, &'a [(u64, StripeRec)]);

/// What a put did, with where its time went.
#[derive(Debug, Clone, Default)]
pub struct PutReport {
    pub stripes: u64,
    pub bytes: u64,
    pub write: Duration,
    pub sync: Duration,
    pub commit: Duration,
}

/// What a get met.
#[derive(Debug, Clone, Default)]
pub struct ReadReport {
    pub stripes: u64,
    pub degraded_stripes: u64,
    pub chunks_rebuilt: u64,
    /// Each damaged or unreachable chunk met, named.
    pub problems: Vec<String>,
}

/// An object's data chunks as the index placed them when the plan was made
/// (`Store::read_plan`).
pub struct ReadPlan {
    size: u64,
    chunks: Vec<PlannedChunk>,
}

struct PlannedChunk {
    io: Arc<DriveIo>,
    /// The drive's count of freed slots, and its value when the plan was made.
    freed: Arc<AtomicU64>,
    freed_at: u64,
    sid: u64,
    index: u16,
    slot: u64,
    generation: u64,
    len: usize,
}

impl ReadPlan {
    /// Reads the object with no lock held, so reads run alongside each other and alongside
    /// a write's sync and commit. No slot of a chunk's drive may have been freed since the
    /// plan was made, every chunk's header must name the stripe, index and generation
    /// planned, and its payload match its checksum; None otherwise (damaged, or perhaps
    /// freed and reused): the caller reads under the lock, which sees the index as it is
    /// now and rebuilds from parity.
    ///
    /// A one-chunk object (a node's share of a cluster, a `1+0` store) comes back as the
    /// read buffer itself, with no copy.
    pub fn read(&self) -> Option<bytes::Bytes> {
        if let [c] = self.chunks.as_slice() {
            let mut buf = AlignedBuf::zeroed(BLOCK as usize + c.len);
            self.checked(c, &mut buf)?;
            let n = (c.len as u64).min(self.size) as usize;
            if n as u64 != self.size {
                return None;
            }
            let start = BLOCK as usize;
            return Some(buf.into_bytes().slice(start..start + n));
        }
        let mut out = Vec::with_capacity(self.size as usize);
        let mut left = self.size;
        let b = BLOCK as usize;
        let mut buf: Option<AlignedBuf> = None;
        for c in &self.chunks {
            let want = b + c.len;
            let buf = match &mut buf {
                Some(x) if x.as_slice().len() == want => x,
                slot => slot.insert(AlignedBuf::zeroed(want)),
            };
            let p = self.checked(c, buf)?;
            let n = (c.len as u64).min(left) as usize;
            out.extend_from_slice(&p[..n]);
            left -= n as u64;
        }
        (left == 0).then_some(bytes::Bytes::from(out))
    }

    /// Reads chunk `c` into `buf` (a header block and the payload); its payload if it is
    /// the chunk planned, unchanged since.
    fn checked<'a>(&self, c: &PlannedChunk, buf: &'a mut AlignedBuf) -> Option<&'a [u8]> {
        c.io.read_slot(c.slot, buf.as_mut_slice()).ok()?;
        // A slot of this drive freed since the plan (this one, perhaps, and then reused by
        // a write that raced this read): what was read is not trusted.
        if c.freed.load(Ordering::SeqCst) != c.freed_at {
            return None;
        }
        let (h, p) = buf.as_slice().split_at(BLOCK as usize);
        let h = ChunkHeader::decode(h).ok()??;
        if h.stripe != c.sid || h.index != c.index || h.stripe_generation != c.generation {
            return None;
        }
        h.verify(p).ok()?;
        Some(p)
    }
}

/// One chunk read back, checked.
enum Got {
    Ok(AlignedBuf),
    Bad(String),
}

pub struct Store {
    dir: PathBuf,
    db: Database,
    cluster: Uuid,
    scheme: Scheme,
    chunk_size: u32,
    /// None for a `1+0` store (a node's share of a cluster): nothing to encode.
    codec: Option<Isal>,
    drives: Vec<Drive>,
    by_id: HashMap<Uuid, usize>,
    next_stripe: u64,
    /// (drive, slot) of chunks known damaged, until repaired or freed.
    bad: HashSet<(Uuid, u64)>,
    recovery: Recovery,
    scrub: ScrubStats,
    /// Stripe buffer sets kept between puts (two: one being written, one being filled).
    bufcache: Vec<Vec<AlignedBuf>>,
    /// A drive `pick_drives` puts first when it can take a chunk (`move_onto`).
    prefer: Option<usize>,
    /// Set when an index commit failed with an unknown outcome: no more writes.
    poisoned: Option<String>,
}

fn db_err(path: &Path) -> impl Fn(redb::Error) -> StoreError + '_ {
    move |e| StoreError::Db {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

#[allow(clippy::result_large_err)] // redb's own error type, as every redb call returns it
/// Removes a stripe and its chunks' index rows, adding their places to `locs`. A stripe
/// record too damaged to name its chunks has them found by a scan of the chunks table, so
/// no slot leaks.
fn remove_stripe(
    st: &mut redb::Table<u64, &[u8]>,
    ch: &mut redb::Table<(u128, u64), ChunkRef>,
    sid: u64,
    locs: &mut Vec<Loc>,
) -> Result<(), redb::Error> {
    let rec = st.remove(sid)?.map(|v| StripeRec::decode(v.value()));
    let places: Vec<Loc> = match rec {
        None => Vec::new(),
        Some(Some(r)) => r.chunks.into_iter().flatten().collect(),
        Some(None) => {
            let mut found = Vec::new();
            for row in ch.iter()? {
                let (k, v) = row?;
                let (d, slot) = k.value();
                let (s, _, g) = v.value();
                if s == sid {
                    found.push(Loc {
                        drive: Uuid::from_u128(d),
                        slot,
                        generation: g,
                    });
                }
            }
            found
        }
    };
    for l in places {
        ch.remove((l.drive.as_u128(), l.slot))?;
        locs.push(l);
    }
    Ok(())
}

/// Runs `f` on every item in its own thread and returns the results in order.
fn par<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    std::thread::scope(|s| {
        let f = &f;
        // A thread that cannot be started (EAGAIN) runs its item here instead.
        let hs: Vec<Result<_, R>> = items
            .iter()
            .map(|it| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || f(it))
                    .map_err(|_| f(it))
            })
            .collect();
        hs.into_iter()
            .map(|h| match h {
                Ok(h) => h.join().expect("a drive I/O thread panicked"),
                Err(r) => r,
            })
            .collect()
    })
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

impl Store {
    /// Makes a new, empty store in `dir` (its index; drives are added with `add_drive`).
    pub fn create(
        dir: &Path,
        cluster: Uuid,
        scheme: Scheme,
        chunk_size: u32,
    ) -> Result<Store, StoreError> {
        let db_path = dir.join(DB_FILE);
        if db_path.exists() {
            return Err(StoreError::Refused(format!(
                "{}: already holds a store — open it, or pick another directory",
                dir.display()
            )));
        }
        if !(drive::MIN_CHUNK..=drive::MAX_CHUNK).contains(&chunk_size)
            || chunk_size % drive::MIN_CHUNK != 0
        {
            return Err(StoreError::Refused(format!(
                "chunk size {chunk_size} bytes: give a multiple of 4 KiB from 4 KiB to 64 MiB"
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "create directory", e))?;
        let db = Database::create(&db_path).map_err(|e| db_err(&db_path)(e.into()))?;
        let e = db_err(&db_path);
        let tx = db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut t = tx.open_table(META).map_err(|x| e(x.into()))?;
            t.insert("cluster", &cluster.as_bytes()[..])
                .map_err(|x| e(x.into()))?;
            t.insert("k", &(scheme.k as u32).to_le_bytes()[..])
                .map_err(|x| e(x.into()))?;
            t.insert("m", &(scheme.m as u32).to_le_bytes()[..])
                .map_err(|x| e(x.into()))?;
            t.insert("chunk_size", &chunk_size.to_le_bytes()[..])
                .map_err(|x| e(x.into()))?;
            tx.open_table(DRIVES).map_err(|x| e(x.into()))?;
            tx.open_table(CHUNKS).map_err(|x| e(x.into()))?;
            tx.open_table(STRIPES).map_err(|x| e(x.into()))?;
            tx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
        }
        tx.commit().map_err(|x| e(x.into()))?;
        drop(db);
        drive::sync_parent(&db_path).map_err(|x| io_err(dir, "sync the directory", x))?;
        Store::open(dir)
    }

    /// Opens the store in `dir`: checks every drive and reconciles the index with them.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db_path = dir.join(DB_FILE);
        if !db_path.exists() {
            return Err(StoreError::Refused(format!(
                "{}: no axon store here ({DB_FILE} is missing) — create one with `axon io create`",
                dir.display()
            )));
        }
        let db = match Database::open(&db_path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Refused(format!(
                    "{}: the store is open in another process (an agent or another `axon io`) — stop it first",
                    dir.display()
                )));
            }
            Err(x) => return Err(db_err(&db_path)(x.into())),
        };
        let e = db_err(&db_path);
        let (cluster, scheme, chunk_size, drive_recs) = {
            let rtx = db.begin_read().map_err(|x| e(x.into()))?;
            let meta = rtx.open_table(META).map_err(|x| e(x.into()))?;
            let get = |k: &str| -> Result<Vec<u8>, StoreError> {
                meta.get(k)
                    .map_err(|x| e(x.into()))?
                    .map(|v| v.value().to_vec())
                    .ok_or_else(|| StoreError::Db {
                        path: db_path.clone(),
                        msg: format!("no {k:?} in the meta table (not an axon store index?)"),
                    })
            };
            let u32_of = |b: Vec<u8>| {
                b.get(..4)
                    .and_then(|x| x.try_into().ok())
                    .map_or(0, u32::from_le_bytes)
            };
            let c = get("cluster")?;
            let cluster = Uuid::from_slice(&c).map_err(|_| StoreError::Db {
                path: db_path.clone(),
                msg: "the cluster id is damaged".into(),
            })?;
            let scheme = Scheme::for_store(u32_of(get("k")?) as usize, u32_of(get("m")?) as usize)?;
            let chunk_size = u32_of(get("chunk_size")?);
            let drives = rtx.open_table(DRIVES).map_err(|x| e(x.into()))?;
            let mut recs = Vec::new();
            for row in drives.iter().map_err(|x| e(x.into()))? {
                let (k, v) = row.map_err(|x| e(x.into()))?;
                let v = v.value();
                let state = v
                    .first()
                    .and_then(|c| DriveState::from_code(*c))
                    .unwrap_or(DriveState::Failed);
                let path =
                    PathBuf::from(String::from_utf8_lossy(v.get(1..).unwrap_or(&[])).into_owned());
                recs.push((Uuid::from_u128(k.value()), state, path));
            }
            (cluster, scheme, chunk_size, recs)
        };
        let codec = if scheme.m == 0 {
            None
        } else {
            Some(Isal::new(scheme)?)
        };
        let mut s = Store {
            dir: dir.to_path_buf(),
            db,
            cluster,
            scheme,
            chunk_size,
            codec,
            drives: Vec::new(),
            by_id: HashMap::new(),
            next_stripe: 1,
            bad: HashSet::new(),
            recovery: Recovery::default(),
            scrub: ScrubStats::default(),
            bufcache: Vec::new(),
            prefer: None,
            poisoned: None,
        };
        for (id, state, path) in drive_recs {
            let (d, warned) = s.attach(id, state, path);
            s.recovery.warnings.extend(warned);
            s.by_id.insert(id, s.drives.len());
            s.drives.push(d);
        }
        s.reconcile()?;
        Ok(s)
    }

    /// Opens a drive the index names, checking that the drive at its path is that drive;
    /// with it, what was wrong with one superblock copy if one was (for the caller to
    /// record: a drive refused leaves no warning behind).
    fn attach(&self, id: Uuid, state: DriveState, path: PathBuf) -> (Drive, Option<String>) {
        let mut d = Drive {
            id,
            path: path.clone(),
            state,
            io: None,
            problem: None,
            slots: 0,
            used: Vec::new(),
            free: 0,
            cursor: 0,
            freed: Arc::new(AtomicU64::new(0)),
        };
        let opened = match drive::open(&path) {
            Ok(o) => o,
            Err(DriveError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                d.problem = Some(format!(
                    "{}: missing (drive {id}) — put it back, or run `axon io scrub` to rebuild its chunks onto the other drives",
                    path.display()
                ));
                return (d, None);
            }
            Err(e) => {
                d.problem = Some(format!("drive {id}: {e}"));
                return (d, None);
            }
        };
        let sb = opened.superblock;
        if sb.cluster != self.cluster || sb.drive != id {
            d.problem = Some(format!(
                "{}: holds drive {} of cluster {}, but this store expects drive {id} of cluster {} there — \
                 a wrong drive in this slot: put drive {id} back, or replace it (its chunks are rebuilt from parity)",
                path.display(),
                sb.drive,
                sb.cluster,
                self.cluster
            ));
            return (d, None);
        }
        if sb.chunk_size != self.chunk_size {
            d.problem = Some(format!(
                "{}: chunk size {} bytes, the store uses {} — reformat it for this store",
                path.display(),
                sb.chunk_size,
                self.chunk_size
            ));
            return (d, None);
        }
        let warned = opened.warning.map(|w| format!("{}: {w}", path.display()));
        match DriveIo::open(&path, self.chunk_size) {
            Ok(io) => {
                d.io = Some(Arc::new(io));
                d.slots = sb.slots;
                d.used = vec![false; sb.slots as usize];
                d.free = sb.slots;
            }
            Err(e) => d.problem = Some(e.to_string()),
        }
        (d, warned)
    }

    /// Marks the slots the index names as used; checks each one's header; frees (zeroes)
    /// slots holding a chunk the index does not name.
    fn reconcile(&mut self) -> Result<(), StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let mut max_stripe = 0u64;
        // The index is walked drive by drive in slot order (its keys sort by drive, then
        // slot), beside the slots themselves: memory stays one bit per slot, whatever the
        // number of chunks.
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let chunks = rtx.open_table(CHUNKS).map_err(|x| e(x.into()))?;
        {
            let stripes = rtx.open_table(STRIPES).map_err(|x| e(x.into()))?;
            if let Some(last) = stripes.last().map_err(|x| e(x.into()))? {
                max_stripe = last.0.value();
            }
        }
        for d in &mut self.drives {
            let Some(io) = &d.io else {
                self.recovery
                    .unavailable
                    .push(d.problem.clone().unwrap_or_default());
                continue;
            };
            let id = d.id.as_u128();
            let mut index = chunks
                .range((id, 0)..=(id, u64::MAX))
                .map_err(|x| e(x.into()))?;
            let mut pull = || -> Result<Option<(u64, ChunkRef)>, StoreError> {
                match index.next() {
                    None => Ok(None),
                    Some(Ok((k, v))) => Ok(Some((k.value().1, v.value()))),
                    Some(Err(x)) => Err(e(x.into())),
                }
            };
            let mut pending = pull()?;
            let mut header = AlignedBuf::zeroed(BLOCK as usize);
            let zero = AlignedBuf::zeroed(BLOCK as usize);
            let mut zeroed = false;
            let mut broken: Option<StoreError> = None;
            for slot in 0..d.slots {
                let wanted = match pending {
                    Some((at, v)) if at == slot => {
                        pending = pull()?;
                        Some(v)
                    }
                    _ => None,
                };
                let want = wanted.as_ref();
                if let Some(&(stripe, _, _)) = want {
                    d.used[slot as usize] = true;
                    d.free -= 1;
                    max_stripe = max_stripe.max(stripe);
                }
                let read = io.read_slot(slot, header.as_mut_slice());
                let found = match &read {
                    Ok(()) => ChunkHeader::decode(header.as_slice()),
                    Err(x) => Err(format!("read failed: {x}")),
                };
                match (want, found) {
                    (Some(&(stripe, index, generation)), Ok(Some(h)))
                        if h.stripe == stripe
                            && h.index == index
                            && h.stripe_generation == generation => {}
                    (Some(&(stripe, index, generation)), found) => {
                        let what = match found {
                            Ok(None) => "the slot is empty".to_string(),
                            Ok(Some(h)) => format!(
                                "the slot holds stripe {} chunk {} generation {}",
                                h.stripe, h.index, h.stripe_generation
                            ),
                            Err(x) => x,
                        };
                        self.recovery.mismatches.push(format!(
                            "{} slot {slot}: the index says stripe {stripe} chunk {index} generation {generation}, but {what} — lost until repaired from parity",
                            d.path.display()
                        ));
                        self.bad.insert((d.id, slot));
                    }
                    (None, Ok(None)) => {}
                    (None, found) => {
                        if let Ok(Some(h)) = &found {
                            max_stripe = max_stripe.max(h.stripe);
                        }
                        if read.is_ok() {
                            if let Err(x) = io.write_slot(slot, zero.as_slice()) {
                                broken = Some(io_err(&d.path, "free an orphaned slot", x));
                                break;
                            }
                            zeroed = true;
                            self.recovery.orphans_freed += 1;
                        }
                    }
                }
            }
            if zeroed
                && broken.is_none()
                && let Err(x) = io.sync()
            {
                broken = Some(io_err(&d.path, "sync (fdatasync)", x));
            }
            // A drive that cannot be written is out of service, not the whole store.
            if let Some(x) = broken {
                let why = format!(
                    "{x} — the drive cannot be written; replace it (its chunks are rebuilt from parity)"
                );
                self.recovery.unavailable.push(why.clone());
                d.problem = Some(why);
                d.io = None;
            }
        }
        self.next_stripe = max_stripe + 1;
        Ok(())
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn scrub_stats(&self) -> &ScrubStats {
        &self.scrub
    }

    /// Adds a freshly formatted drive (INACTIVE) of this store's cluster and marks it
    /// ACTIVE. A drive already in service (ACTIVE or another state a store sets) may hold
    /// another store's chunks and is refused unless `force`.
    pub fn add_drive(&mut self, path: &Path, force: bool) -> Result<Uuid, StoreError> {
        self.add_drive_as(path, force, DriveState::Active)
    }

    /// As `add_drive`, recorded in `state` (PHASING_IN for a drive the agent then phases
    /// in: recorded so in the one transaction, a restart resumes its phase-in).
    pub fn add_drive_as(
        &mut self,
        path: &Path,
        force: bool,
        state: DriveState,
    ) -> Result<Uuid, StoreError> {
        self.check_writable()?;
        let path = std::path::absolute(path).map_err(|e| io_err(path, "resolve path", e))?;
        let o = drive::open(&path)?;
        let sb = o.superblock;
        if sb.state != DriveState::Inactive && !force && !self.by_id.contains_key(&sb.drive) {
            return Err(StoreError::Refused(format!(
                "{}: drive {} is {} — it may hold another store's chunks, and adding it would wipe them: \
                 add a freshly formatted drive (`axon drive format --cluster {} --force` destroys what it holds), or pass --force",
                path.display(),
                sb.drive,
                sb.state.as_str(),
                self.cluster
            )));
        }
        if sb.cluster != self.cluster {
            return Err(StoreError::Refused(format!(
                "{}: belongs to cluster {}, this store is cluster {} — format it with `axon drive format --cluster {} --force` if what it holds may be destroyed",
                path.display(),
                sb.cluster,
                self.cluster,
                self.cluster
            )));
        }
        if sb.chunk_size != self.chunk_size {
            return Err(StoreError::Refused(format!(
                "{}: formatted with {}-byte chunks, this store uses {} — reformat it with --chunk-size {}",
                path.display(),
                sb.chunk_size,
                self.chunk_size,
                self.chunk_size
            )));
        }
        if let Some(&i) = self.by_id.get(&sb.drive) {
            return Err(StoreError::Refused(format!(
                "{}: drive {} is already in this store (at {})",
                path.display(),
                sb.drive,
                self.drives[i].path.display()
            )));
        }
        // Opened and checked before anything is written: a drive that cannot be used is
        // refused with neither its superblock nor the store's records changed.
        let (mut d, warned) = self.attach(sb.drive, state, path.clone());
        if let Some(p) = d.problem.take() {
            return Err(StoreError::Refused(p));
        }
        // Zero any headers left from an earlier life, so they are never taken for chunks
        // (before anything else is written: a failure here leaves the drive as it was
        // offered and the store without it).
        if let Some(io) = &d.io {
            let mut h = AlignedBuf::zeroed(BLOCK as usize);
            let zero = AlignedBuf::zeroed(BLOCK as usize);
            for slot in 0..d.slots {
                io.read_slot(slot, h.as_mut_slice())
                    .map_err(|x| io_err(&path, "read", x))?;
                if h.as_slice().iter().any(|b| *b != 0) {
                    io.write_slot(slot, zero.as_slice())
                        .map_err(|x| io_err(&path, "write", x))?;
                }
            }
            io.sync().map_err(|x| io_err(&path, "sync", x))?;
        }
        // The state is written only to the drive just checked: one swapped in at the path
        // since is refused, not given this store's state.
        if let drive::StateSet::Another(now) =
            drive::set_state_of(&path, sb.drive, sb.cluster, state)?
        {
            return Err(StoreError::Refused(format!(
                "{}: the drive there changed while it was being added (drive {} of cluster {} was checked, drive {} of cluster {} is there now) — add it again",
                path.display(),
                sb.drive,
                sb.cluster,
                now.drive,
                now.cluster
            )));
        }
        let mut rec = vec![state.code()];
        rec.extend_from_slice(path.to_string_lossy().as_bytes());
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let recorded = (|| {
            let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
            {
                let mut t = tx.open_table(DRIVES).map_err(|x| e(x.into()))?;
                t.insert(sb.drive.as_u128(), rec.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
            tx.commit().map_err(|x| e(x.into()))
        })();
        if let Err(err) = recorded {
            // Not in the store: the drive says what it said before, so it can be offered
            // again without --force.
            let _ = drive::set_state_of(&path, sb.drive, sb.cluster, sb.state);
            return Err(err);
        }
        // `set_state_of` rewrote a damaged superblock copy from the good one.
        self.recovery.warnings.extend(
            warned.map(|w| format!("{w} — rewritten from the good copy when the drive was added")),
        );
        self.by_id.insert(sb.drive, self.drives.len());
        self.drives.push(d);
        Ok(sb.drive)
    }

    /// Picks `n` usable drives with free slots, none in `exclude`: the emptiest first,
    /// ties rotated by `seed` so successive stripes spread.
    fn pick_drives(&self, n: usize, exclude: &[usize], seed: u64) -> Option<Vec<usize>> {
        let len = self.drives.len() as u64;
        let mut c: Vec<usize> = (0..self.drives.len())
            .filter(|&i| {
                self.drives[i].usable() && self.drives[i].free > 0 && !exclude.contains(&i)
            })
            .collect();
        if c.len() < n {
            return None;
        }
        c.sort_by_key(|&i| {
            (
                Some(i) != self.prefer,
                std::cmp::Reverse(self.drives[i].free),
                (i as u64 + len - seed % len.max(1)) % len.max(1),
            )
        });
        c.truncate(n);
        Some(c)
    }

    fn too_few_drives(&self, n: usize) -> StoreError {
        let usable = self
            .drives
            .iter()
            .filter(|d| d.usable() && d.free > 0)
            .count();
        let why: Vec<String> = self
            .drives
            .iter()
            .filter(|d| !(d.usable() && d.free > 0))
            .map(|d| {
                let why = if let Some(p) = &d.problem {
                    p.clone()
                } else if !matches!(d.state, DriveState::Active | DriveState::PhasingIn) {
                    d.state.as_str().to_string()
                } else {
                    "full".to_string()
                };
                format!("{}: {why}", d.path.display())
            })
            .collect();
        StoreError::Refused(format!(
            "a {}+{} stripe needs {n} drives with a free slot, {usable} have one{} — add drives or free space",
            self.scheme.k,
            self.scheme.m,
            if why.is_empty() {
                String::new()
            } else {
                format!(" (others: {})", why.join("; "))
            }
        ))
    }

    /// Stores `data` under `key`, replacing what the key held. Returns once every chunk is
    /// durable and the index committed.
    pub fn put(&mut self, key: &str, data: &[u8]) -> Result<PutReport, StoreError> {
        self.put_from(key, &mut &data[..])
    }

    /// As `put`, reading the object from `src` one stripe at a time.
    pub fn put_from(&mut self, key: &str, src: &mut dyn Read) -> Result<PutReport, StoreError> {
        self.put_batch(vec![(key, src)])
            .pop()
            .expect("one result per object")
    }

    /// Group commit: stores every `(key, data)` with one fdatasync per drive written and
    /// one index transaction for all of them, instead of one each. Returns one result per
    /// item, in order: an item refused or failing on its own (a bad key, a full store, a
    /// write error) fails alone; a failed sync or commit fails every item it covered. A
    /// later item for the same key replaces an earlier one, as successive puts would.
    pub fn put_many(&mut self, items: &[(&str, &[u8])]) -> Vec<Result<PutReport, StoreError>> {
        let mut readers: Vec<&[u8]> = items.iter().map(|(_, d)| *d).collect();
        let batch: Vec<(&str, &mut dyn Read)> = items
            .iter()
            .zip(readers.iter_mut())
            .map(|((k, _), r)| (*k, r as &mut dyn Read))
            .collect();
        self.put_batch(batch)
    }

    fn put_batch(
        &mut self,
        items: Vec<(&str, &mut dyn Read)>,
    ) -> Vec<Result<PutReport, StoreError>> {
        let n = items.len();
        let mut out: Vec<Option<Result<PutReport, StoreError>>> = (0..n).map(|_| None).collect();
        // A batch-wide failure: the first item gets the error itself, the others its text.
        let fail_all = |out: &mut Vec<Option<Result<PutReport, StoreError>>>,
                        which: &[usize],
                        e: StoreError| {
            let text = e.to_string();
            let mut e = Some(e);
            for &i in which {
                out[i] = Some(Err(e
                    .take()
                    .unwrap_or_else(|| StoreError::Refused(text.clone()))));
            }
        };
        if let Err(e) = self.check_writable() {
            fail_all(&mut out, &(0..n).collect::<Vec<_>>(), e);
            return out.into_iter().map(|r| r.expect("set")).collect();
        }
        // Written but not yet durable: (item, its stripes, its report).
        let mut staged: Vec<(usize, &str, Staged, PutReport)> = Vec::new();
        let mut touched: HashSet<usize> = HashSet::new();
        let (k, m) = (self.scheme.k, self.scheme.m);
        for (i, (key, src)) in items.into_iter().enumerate() {
            if key.is_empty() || key.len() > MAX_KEY {
                out[i] = Some(Err(StoreError::Refused(format!(
                    "an object key must be 1 to {MAX_KEY} bytes, this one is {}",
                    key.len()
                ))));
                continue;
            }
            let mut written: Vec<(u64, StripeRec)> = Vec::new();
            let mut mine: HashSet<usize> = HashSet::new();
            let mut report = PutReport::default();
            // Stripe i+1 is read, encoded and checksummed while stripe i is being written.
            let cache = std::mem::take(&mut self.bufcache);
            let mut pipe = WritePipe::new(k + m, BLOCK as usize + self.chunk_size as usize, cache);
            let result =
                self.put_stripes(key, src, &mut pipe, &mut written, &mut mine, &mut report);
            // Whatever happened, no write may still be running once this returns: its slots
            // may be released below and handed to the next put.
            let tail = pipe.finish();
            self.bufcache = std::mem::take(&mut pipe.spare);
            self.bufcache.truncate(2);
            match result.and(tail) {
                Ok(()) => {
                    touched.extend(mine);
                    staged.push((i, key, written, report));
                }
                Err(e) => {
                    self.release(&written);
                    self.fail_drive_on_eio(&e);
                    out[i] = Some(Err(e));
                }
            }
        }
        if !staged.is_empty() {
            let t0 = Instant::now();
            let touched: Vec<usize> = touched.into_iter().collect();
            let drives_ref = &self.drives;
            let synced = par(&touched, |&d| {
                let dr = &drives_ref[d];
                match dr.io.as_ref() {
                    Some(io) => io
                        .sync()
                        .map_err(|x| io_err(&dr.path, "sync (fdatasync)", x)),
                    // Taken out of service by a failed write earlier in this batch.
                    None => Err(StoreError::Refused(format!(
                        "{}: taken out of service while this write was in flight — write again",
                        dr.path.display()
                    ))),
                }
            })
            .into_iter()
            .collect::<Result<Vec<()>, StoreError>>();
            let sync = t0.elapsed();
            let which: Vec<usize> = staged.iter().map(|s| s.0).collect();
            if let Err(e) = synced {
                for (_, _, written, _) in &staged {
                    self.release(written);
                }
                self.fail_drive_on_eio(&e);
                fail_all(&mut out, &which, e);
            } else {
                let t0 = Instant::now();
                let objects: Vec<NewObject> = staged
                    .iter()
                    .map(|(_, key, written, r)| (*key, r.bytes, written.as_slice()))
                    .collect();
                match self.commit_objects(&objects) {
                    Ok(old) => {
                        let commit = t0.elapsed();
                        self.forget(&old);
                        for (i, _, _, mut r) in staged {
                            r.sync = sync;
                            r.commit = commit;
                            out[i] = Some(Ok(r));
                        }
                    }
                    Err(e) => {
                        // The commit may have reached the disk: the slots stay taken.
                        self.poison(&e);
                        fail_all(&mut out, &which, e);
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.expect("every item answered"))
            .collect()
    }

    /// Frees the slots of stripes written but never committed.
    fn release(&mut self, written: &[(u64, StripeRec)]) {
        for (_, rec) in written {
            for l in rec.chunks.iter().flatten() {
                if let Some(&i) = self.by_id.get(&l.drive) {
                    self.drives[i].release(l.slot);
                }
            }
        }
    }

    /// Reads `src` a stripe at a time, places, encodes and checksums each stripe and hands
    /// it to `pipe` to be written.
    fn put_stripes(
        &mut self,
        key: &str,
        src: &mut dyn Read,
        pipe: &mut WritePipe,
        written: &mut Vec<(u64, StripeRec)>,
        touched: &mut HashSet<usize>,
        report: &mut PutReport,
    ) -> Result<(), StoreError> {
        let Scheme { k, m } = self.scheme;
        let cs = self.chunk_size as usize;
        let b = BLOCK as usize;
        let mut staged: Vec<u8> = Vec::new();
        let mut bufs = pipe.fresh();
        let t_all = Instant::now();
        loop {
            // Read straight into the data chunks' buffers, as for a full stripe.
            let mut n = 0;
            'fill: for buf in bufs.iter_mut().take(k) {
                let p = &mut buf.as_mut_slice()[b..b + cs];
                let mut got = 0;
                while got < cs {
                    match src.read(&mut p[got..]) {
                        Ok(0) => {
                            n += got;
                            break 'fill;
                        }
                        Ok(r) => got += r,
                        Err(x) if x.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(x) => {
                            return Err(StoreError::Refused(format!(
                                "reading the object for {key:?}: {x}"
                            )));
                        }
                    }
                }
                n += got;
            }
            if n == 0 {
                break;
            }
            let full = n == k * cs;
            let len = round_up((n as u64).div_ceil(k as u64), BLOCK) as usize;
            if !full {
                // A short stripe: spread its bytes evenly over the k chunks.
                staged.clear();
                for buf in bufs.iter().take(k) {
                    let want = (n - staged.len()).min(cs);
                    staged.extend_from_slice(&buf.as_slice()[b..b + want]);
                }
                for (i, buf) in bufs.iter_mut().take(k).enumerate() {
                    let p = &mut buf.as_mut_slice()[b..b + len];
                    let from = (i * len).min(n);
                    let to = ((i + 1) * len).min(n);
                    p[..to - from].copy_from_slice(&staged[from..to]);
                    p[to - from..].fill(0);
                }
            }
            let id = self.next_stripe;
            self.next_stripe += 1;
            let drives = self
                .pick_drives(k + m, &[], id)
                .ok_or_else(|| self.too_few_drives(k + m))?;
            let mut rec = StripeRec {
                key: key.to_string(),
                chunk_len: len as u32,
                chunks: Vec::with_capacity(k + m),
            };
            for &d in &drives {
                let slot = self.drives[d]
                    .alloc()
                    .expect("picked drives have a free slot");
                rec.chunks.push(Some(Loc {
                    drive: self.drives[d].id,
                    slot,
                    generation: 1,
                }));
            }
            written.push((id, rec.clone()));
            {
                let (data, parity) = bufs.split_at_mut(k);
                let d: Vec<&[u8]> = data.iter().map(|x| &x.as_slice()[b..b + len]).collect();
                let mut p: Vec<&mut [u8]> = parity
                    .iter_mut()
                    .map(|x| &mut x.as_mut_slice()[b..b + len])
                    .collect();
                if let Some(c) = &self.codec {
                    c.encode(&d, &mut p)?;
                }
            }
            for (i, buf) in bufs.iter_mut().enumerate() {
                let s = buf.as_mut_slice();
                let h = ChunkHeader::for_payload(id, i as u16, 1, &s[b..b + len]);
                s[..b].copy_from_slice(&h.encode());
            }
            let jobs: Vec<WriteJob> = drives
                .iter()
                .zip(&rec.chunks)
                .map(|(&d, l)| WriteJob {
                    io: self.drives[d].io.clone().expect("usable"),
                    slot: l.expect("just placed").slot,
                })
                .collect();
            touched.extend(drives.iter().copied());
            bufs = pipe.submit(jobs, bufs, b + len)?;
            report.stripes += 1;
            report.bytes += n as u64;
            if !full {
                break;
            }
        }
        report.write = t_all.elapsed();
        Ok(())
    }

    /// One transaction for every object: its new stripes, their slots, the object; its old
    /// stripes removed (an object twice in `objects` replaces itself in order). Returns the
    /// old stripes' chunk places.
    fn commit_objects(&mut self, objects_in: &[NewObject]) -> Result<Vec<Loc>, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
        let mut old_locs = Vec::new();
        {
            let mut objects = tx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
            let mut st = tx.open_table(STRIPES).map_err(|x| e(x.into()))?;
            let mut ch = tx.open_table(CHUNKS).map_err(|x| e(x.into()))?;
            for &(key, size, stripes) in objects_in {
                let old = objects
                    .get(key)
                    .map_err(|x| e(x.into()))?
                    .and_then(|v| ObjectRec::decode(v.value()));
                if let Some(old) = old {
                    for sid in old.stripes {
                        remove_stripe(&mut st, &mut ch, sid, &mut old_locs).map_err(&e)?;
                    }
                }
                for (sid, rec) in stripes {
                    st.insert(*sid, rec.encode().as_slice())
                        .map_err(|x| e(x.into()))?;
                    for (i, l) in rec.chunks.iter().enumerate() {
                        let l = l.expect("a new stripe has every chunk");
                        ch.insert((l.drive.as_u128(), l.slot), (*sid, i as u16, l.generation))
                            .map_err(|x| e(x.into()))?;
                    }
                }
                let obj = ObjectRec {
                    size,
                    stripes: stripes.iter().map(|(s, _)| *s).collect(),
                };
                objects
                    .insert(key, obj.encode().as_slice())
                    .map_err(|x| e(x.into()))?;
            }
        }
        tx.commit().map_err(|x| e(x.into()))?;
        Ok(old_locs)
    }

    /// After a commit dropped them from the index: zero the chunks' headers (best effort; a
    /// crash first leaves orphans the next open frees) and free their slots. On a drive
    /// that cannot be written (FAILED, missing) only the count is freed, so its usage says
    /// what the index still places there; the next open frees what its headers hold.
    fn forget(&mut self, locs: &[Loc]) {
        let zero = AlignedBuf::zeroed(BLOCK as usize);
        for l in locs {
            self.bad.remove(&(l.drive, l.slot));
            if let Some(&i) = self.by_id.get(&l.drive) {
                let d = &mut self.drives[i];
                if let Some(io) = &d.io {
                    let _ = io.write_slot(l.slot, zero.as_slice());
                }
                d.release(l.slot);
            }
        }
    }

    /// Removes an object. Its slots are free once this returns.
    pub fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.check_writable()?;
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
        let mut locs = Vec::new();
        {
            let mut objects = tx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
            let mut st = tx.open_table(STRIPES).map_err(|x| e(x.into()))?;
            let mut ch = tx.open_table(CHUNKS).map_err(|x| e(x.into()))?;
            let raw = objects
                .remove(key)
                .map_err(|x| e(x.into()))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
            let old = ObjectRec::decode(&raw).ok_or_else(|| StoreError::Db {
                path: db_path.clone(),
                msg: format!(
                    "the record of object {key:?} is damaged ({} bytes); its stripes cannot be found from it — restore the index from a backup",
                    raw.len()
                ),
            })?;
            for sid in old.stripes {
                remove_stripe(&mut st, &mut ch, sid, &mut locs).map_err(&e)?;
            }
        }
        if let Err(x) = tx.commit() {
            let x = e(x.into());
            self.poison(&x);
            return Err(x);
        }
        self.forget(&locs);
        Ok(())
    }

    /// Every object: key, size, stripes.
    pub fn list(&self) -> Result<Vec<(String, u64, usize)>, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = rtx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|x| e(x.into()))? {
            let (k, v) = row.map_err(|x| e(x.into()))?;
            let o = ObjectRec::decode(v.value()).unwrap_or(ObjectRec {
                size: 0,
                stripes: Vec::new(),
            });
            out.push((k.value().to_string(), o.size, o.stripes.len()));
        }
        Ok(out)
    }

    fn object(&self, key: &str) -> Result<ObjectRec, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = rtx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
        let v = t
            .get(key)
            .map_err(|x| e(x.into()))?
            .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        ObjectRec::decode(v.value()).ok_or_else(|| StoreError::Db {
            path: db_path.clone(),
            msg: format!("the record of object {key:?} is damaged"),
        })
    }

    fn stripe(&self, id: u64) -> Result<Option<StripeRec>, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = rtx.open_table(STRIPES).map_err(|x| e(x.into()))?;
        let Some(v) = t.get(id).map_err(|x| e(x.into()))? else {
            return Ok(None);
        };
        match StripeRec::decode(v.value()) {
            Some(r) if r.chunks.len() == self.scheme.chunks() => Ok(Some(r)),
            _ => Err(StoreError::Db {
                path: db_path.clone(),
                msg: format!(
                    "the record of stripe {id} is damaged ({} bytes) — its object cannot be read; restore the index from a backup",
                    v.value().len()
                ),
            }),
        }
    }

    /// Reads the object under `key`; every chunk's checksum is verified and damaged or
    /// missing chunks are rebuilt from parity.
    pub fn get(&mut self, key: &str) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.get_to(key, &mut out)?;
        Ok(out)
    }

    pub fn get_to(&mut self, key: &str, out: &mut dyn Write) -> Result<ReadReport, StoreError> {
        let obj = self.object(key)?;
        let k = self.scheme.k;
        let mut left = obj.size;
        let mut report = ReadReport::default();
        for sid in &obj.stripes {
            let rec = self.stripe(*sid)?.ok_or_else(|| StoreError::Db {
                path: self.dir.join(DB_FILE),
                msg: format!("object {key:?} names stripe {sid}, which the index lacks"),
            })?;
            let len = rec.chunk_len as usize;
            let (chunks, problems) = self.read_stripe(*sid, &rec, false)?;
            report.stripes += 1;
            if !problems.is_empty() {
                report.degraded_stripes += 1;
                report.chunks_rebuilt += problems.len() as u64;
                report.problems.extend(problems);
            }
            for c in chunks.iter().take(k) {
                let n = (len as u64).min(left) as usize;
                if n == 0 {
                    break;
                }
                out.write_all(&c.as_slice()[BLOCK as usize..BLOCK as usize + n])
                    .map_err(|x| StoreError::Refused(format!("writing object {key:?} out: {x}")))?;
                left -= n as u64;
            }
        }
        Ok(report)
    }

    /// Where `key`'s data chunks are, when every one is believed healthy: what
    /// `ReadPlan::read` needs to read the object without the store (and its lock). None
    /// when a data chunk is known lost or damaged: `get` reads it, rebuilding from parity.
    pub fn read_plan(&self, key: &str) -> Result<Option<ReadPlan>, StoreError> {
        let obj = self.object(key)?;
        let k = self.scheme.k;
        let mut chunks = Vec::with_capacity(obj.stripes.len() * k);
        for sid in &obj.stripes {
            let Some(rec) = self.stripe(*sid)? else {
                return Ok(None);
            };
            for i in 0..k {
                if self.lost_why(i, rec.chunks[i]).is_some() {
                    return Ok(None);
                }
                let l = rec.chunks[i].expect("not lost");
                let d = &self.drives[self.by_id[&l.drive]];
                chunks.push(PlannedChunk {
                    io: d.io.clone().expect("not lost: the drive is open"),
                    freed: d.freed.clone(),
                    freed_at: d.freed.load(Ordering::SeqCst),
                    sid: *sid,
                    index: i as u16,
                    slot: l.slot,
                    generation: l.generation,
                    len: rec.chunk_len as usize,
                });
            }
        }
        Ok(Some(ReadPlan {
            size: obj.size,
            chunks,
        }))
    }

    /// Reads one chunk and checks it is the one the index names.
    fn read_chunk(&self, sid: u64, i: usize, loc: Option<Loc>, len: usize) -> Got {
        let Some(l) = loc else {
            return Got::Bad(format!("chunk {i}: lost (no copy left)"));
        };
        let Some(&di) = self.by_id.get(&l.drive) else {
            return Got::Bad(format!(
                "chunk {i}: on drive {}, not in this store",
                l.drive
            ));
        };
        let d = &self.drives[di];
        let Some(io) = &d.io else {
            return Got::Bad(format!(
                "chunk {i}: {}",
                d.problem.as_deref().unwrap_or("drive unavailable")
            ));
        };
        let at = format!("chunk {i}: {} slot {}", d.path.display(), l.slot);
        let mut buf = AlignedBuf::zeroed(BLOCK as usize + len);
        if let Err(x) = io.read_slot(l.slot, buf.as_mut_slice()) {
            return Got::Bad(format!("{at}: read failed: {x}"));
        }
        let (h, p) = buf.as_slice().split_at(BLOCK as usize);
        match ChunkHeader::decode(h) {
            Err(x) => Got::Bad(format!("{at}: {x}")),
            Ok(None) => Got::Bad(format!("{at}: empty (never written, or wiped)")),
            Ok(Some(h)) => {
                if h.stripe != sid || h.index as usize != i || h.stripe_generation != l.generation {
                    return Got::Bad(format!(
                        "{at}: holds stripe {} chunk {} generation {}, not stripe {sid} chunk {i} generation {}",
                        h.stripe, h.index, h.stripe_generation, l.generation
                    ));
                }
                match h.verify(p) {
                    Ok(()) => Got::Ok(buf),
                    Err(x) => Got::Bad(format!("{at}: {x}")),
                }
            }
        }
    }

    /// Reads a stripe's data chunks (all chunks when `all`, or when a data chunk is known
    /// lost), rebuilding what is bad from parity. Returns all k+m chunks when `all`, else
    /// the k data chunks (header block, then payload); and the problems met, one per chunk
    /// rebuilt.
    fn read_stripe(
        &mut self,
        sid: u64,
        rec: &StripeRec,
        all: bool,
    ) -> Result<(Vec<AlignedBuf>, Vec<String>), StoreError> {
        let Scheme { k, m } = self.scheme;
        let len = rec.chunk_len as usize;
        let want = if all { k + m } else { k };
        let known_lost = (0..k).any(|i| self.lost_why(i, rec.chunks[i]).is_some());
        let first: Vec<usize> = if all || known_lost {
            (0..k + m).collect()
        } else {
            (0..k).collect()
        };
        let mut got: Vec<Option<Got>> = (0..k + m).map(|_| None).collect();
        let this = &*self;
        for (i, g) in first.iter().zip(par(&first, |&i| {
            this.read_chunk(sid, i, rec.chunks[i], len)
        })) {
            got[*i] = Some(g);
        }
        let bad_now = |got: &[Option<Got>]| {
            got.iter()
                .filter(|g| matches!(g, Some(Got::Bad(_))))
                .count()
        };
        if first.len() < k + m && bad_now(&got) > 0 {
            let rest: Vec<usize> = (k..k + m).collect();
            for (i, g) in rest
                .iter()
                .zip(par(&rest, |&i| this.read_chunk(sid, i, rec.chunks[i], len)))
            {
                got[*i] = Some(g);
            }
        }
        let mut problems = Vec::new();
        for (i, g) in got.iter().enumerate() {
            if let (Some(Got::Ok(_)), Some(l)) = (g, rec.chunks[i]) {
                // Read and verified now: whatever was wrong with it before is gone.
                self.bad.remove(&(l.drive, l.slot));
            }
            if let Some(Got::Bad(why)) = g {
                problems.push(why.clone());
                if let Some(l) = rec.chunks[i]
                    && self
                        .by_id
                        .get(&l.drive)
                        .is_some_and(|&d| self.drives[d].io.is_some())
                {
                    self.bad.insert((l.drive, l.slot));
                }
            }
        }
        let good = got.iter().filter(|g| matches!(g, Some(Got::Ok(_)))).count();
        if !problems.is_empty() && good < k {
            return Err(StoreError::Unreadable(format!(
                "stripe {sid} of {:?}: only {good} of its {} chunks are readable, {k} are needed — {}. \
                 Bring back the missing drives; what parity can rebuild is rebuilt then",
                rec.key,
                k + m,
                problems.join("; ")
            )));
        }
        let mut present = vec![false; k + m];
        let mut bufs: Vec<AlignedBuf> = got
            .into_iter()
            .enumerate()
            .map(|(i, g)| match g {
                Some(Got::Ok(b)) => {
                    present[i] = true;
                    b
                }
                _ => AlignedBuf::zeroed(BLOCK as usize + len),
            })
            .collect();
        if !problems.is_empty() {
            // Rebuilt in place in the chunks' own buffers: no copy.
            let mut payloads: Vec<&mut [u8]> = bufs
                .iter_mut()
                .map(|b| &mut b.as_mut_slice()[BLOCK as usize..])
                .collect();
            match &self.codec {
                Some(c) => c.reconstruct_slices(&mut payloads, &present)?,
                None => {
                    return Err(StoreError::Refused(format!(
                        "stripe {sid}: a 1+0 store has no parity to rebuild {} lost chunk(s) from",
                        problems.len()
                    )));
                }
            }
        }
        bufs.truncate(want);
        Ok((bufs, problems))
    }

    /// Stripes that lost chunks, by what is known without reading them: chunks with no
    /// copy, on drives unavailable or not ACTIVE, or found damaged by a read or the scrubber.
    pub fn degraded(&self) -> Result<Vec<Degraded>, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = rtx.open_table(STRIPES).map_err(|x| e(x.into()))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|x| e(x.into()))? {
            let (k, v) = row.map_err(|x| e(x.into()))?;
            let Some(rec) =
                StripeRec::decode(v.value()).filter(|r| r.chunks.len() == self.scheme.chunks())
            else {
                continue;
            };
            let why: Vec<String> = rec
                .chunks
                .iter()
                .enumerate()
                .filter_map(|(i, l)| self.lost_why(i, *l))
                .collect();
            if !why.is_empty() {
                out.push(Degraded {
                    stripe: k.value(),
                    key: rec.key,
                    lost: why.len(),
                    why,
                });
            }
        }
        Ok(out)
    }

    fn lost_why(&self, i: usize, l: Option<Loc>) -> Option<String> {
        let Some(l) = l else {
            return Some(format!("chunk {i}: no copy"));
        };
        let Some(&d) = self.by_id.get(&l.drive) else {
            return Some(format!("chunk {i}: drive {} is gone", l.drive));
        };
        let d = &self.drives[d];
        if d.io.is_none() {
            return Some(format!("chunk {i}: {} unavailable", d.path.display()));
        }
        if d.state == DriveState::Failed {
            return Some(format!("chunk {i}: {} FAILED", d.path.display()));
        }
        if self.bad.contains(&(l.drive, l.slot)) {
            return Some(format!(
                "chunk {i}: {} slot {} damaged",
                d.path.display(),
                l.slot
            ));
        }
        None
    }

    /// Bytes free and in all on the usable drives, and the objects held: cheap (no walk of
    /// the index, unlike `status`), for callers that ask often.
    pub fn usage(&self) -> Result<(u64, u64, u64), StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let objects = {
            let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
            let o = rtx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
            o.len().map_err(|x| e(x.into()))?
        };
        let cs = u64::from(self.chunk_size);
        // What the node can take: drives that take new chunks (ACTIVE, PHASING_IN), not an
        // INACTIVE, FAILED or PHASING_OUT one that is still open.
        let usable = self.drives.iter().filter(|d| d.usable());
        let (free, cap) = usable.fold((0, 0), |(f, c), d| (f + d.free * cs, c + d.slots * cs));
        Ok((free, cap, objects))
    }

    /// The cluster id its drives are formatted with.
    pub fn cluster_id(&self) -> Uuid {
        self.cluster
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    pub fn status(&self) -> Result<Status, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let (objects, stripes) = {
            let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
            let o = rtx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
            let s = rtx.open_table(STRIPES).map_err(|x| e(x.into()))?;
            (
                o.len().map_err(|x| e(x.into()))?,
                s.len().map_err(|x| e(x.into()))?,
            )
        };
        let Scheme { k, m } = self.scheme;
        let mut by_lost = vec![0u64; k + m + 1];
        let degraded = self.degraded()?;
        for d in &degraded {
            by_lost[d.lost.min(k + m)] += 1;
        }
        by_lost[0] = stripes - degraded.len() as u64;
        let worst = degraded.iter().map(|d| d.lost).max().unwrap_or(0);
        let protection = match worst {
            0 => "OK",
            w if w < m => "PARTIALLY_PROTECTED",
            w if w == m => "UNPROTECTED",
            _ => "UNAVAILABLE",
        };
        Ok(Status {
            cluster: self.cluster.to_string(),
            scheme: format!("{k}+{m}"),
            chunk_size: self.chunk_size,
            drives: self.drives(),
            objects,
            stripes,
            stripes_by_lost: by_lost,
            protection,
            recovery: self.recovery.clone(),
            scrub: self.scrub.clone(),
        })
    }

    /// The drives with their state and slot usage, by path: cheap (no database read),
    /// for reports made every second.
    pub fn drives(&self) -> Vec<DriveStatus> {
        let mut v: Vec<&Drive> = self.drives.iter().collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v.into_iter()
            .map(|d| DriveStatus {
                id: d.id.to_string(),
                path: d.path.clone(),
                state: d.state.as_str(),
                available: d.io.is_some(),
                direct_io: d.io.as_ref().is_some_and(|io| io.direct),
                problem: d.problem.clone(),
                slots: d.slots,
                used: d.slots - d.free,
            })
            .collect()
    }

    /// Stripe ids in index order.
    pub fn stripe_ids(&self) -> Result<Vec<u64>, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = rtx.open_table(STRIPES).map_err(|x| e(x.into()))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|x| e(x.into()))? {
            out.push(row.map_err(|x| e(x.into()))?.0.value());
        }
        Ok(out)
    }

    /// Reads every chunk of one stripe, verifies it, and rebuilds from parity what is
    /// damaged or on an unavailable drive, each into a fresh slot: on the chunk's own drive
    /// when that is usable (it holds no other chunk of the stripe), else on a usable drive
    /// holding none. Order: write → fdatasync → commit → free the old slot, so a crash at
    /// any point leaves either the old chunk or the new one indexed, never a half-written
    /// one. Returns the bytes read.
    pub fn scrub_stripe(&mut self, sid: u64) -> Result<u64, StoreError> {
        self.check_writable()?;
        let Some(mut rec) = self.stripe(sid)? else {
            return Ok(0); // deleted meanwhile
        };
        let Scheme { k, m } = self.scheme;
        let len = rec.chunk_len as usize;
        self.scrub.stripes_checked += 1;
        self.scrub.chunks_checked += (k + m) as u64;
        let bytes = ((k + m) * (len + BLOCK as usize)) as u64;
        self.scrub.bytes_read += bytes;
        let (chunks, problems) = match self.read_stripe(sid, &rec, true) {
            Ok(x) => x,
            Err(StoreError::Unreadable(why)) => {
                let lost = rec
                    .chunks
                    .iter()
                    .enumerate()
                    .filter(|(i, l)| self.lost_why(*i, **l).is_some())
                    .count() as u64;
                self.scrub.found += lost;
                self.scrub.unrepairable += lost;
                // Without parity (a cluster member's 1+0 store) nothing here can repair
                // it: the cluster rebuilds such chunks from its stripes, and a warning
                // per chunk per pass would only flood the log.
                if m == 0 {
                    tracing::debug!(stripe = sid, "{why}");
                } else {
                    tracing::warn!(stripe = sid, "{why}");
                }
                return Ok(bytes);
            }
            Err(e) => return Err(e),
        };
        if problems.is_empty() {
            return Ok(bytes);
        }
        self.scrub.found += problems.len() as u64;
        // What failed in this read (read_stripe keeps `bad` to exactly that, plus chunks
        // on drives that cannot be read at all).
        let bad_idx: Vec<usize> = (0..k + m)
            .filter(|&i| self.lost_why(i, rec.chunks[i]).is_some())
            .collect();
        let holders: Vec<usize> = rec
            .chunks
            .iter()
            .flatten()
            .filter_map(|l| self.by_id.get(&l.drive).copied())
            .collect();
        // (chunk, target drive, target slot, old place)
        let mut moves: Vec<(usize, usize, u64, Option<Loc>)> = Vec::new();
        let mut taken = holders.clone();
        for &i in &bad_idx {
            let old = rec.chunks[i];
            let own = old
                .and_then(|l| self.by_id.get(&l.drive).copied())
                .filter(|&d| self.drives[d].usable() && self.drives[d].free > 0);
            let target = match own {
                Some(d) => self.drives[d].alloc().map(|s| (d, s)),
                None => self
                    .pick_drives(1, &taken, sid)
                    .and_then(|v| v.first().copied())
                    .and_then(|d| self.drives[d].alloc().map(|s| (d, s))),
            };
            match target {
                Some((d, slot)) => {
                    taken.push(d);
                    moves.push((i, d, slot, old));
                }
                None => {
                    self.scrub.unrepairable += 1;
                    tracing::warn!(
                        stripe = sid,
                        chunk = i,
                        "no usable drive outside this stripe has a free slot; add a drive to repair it"
                    );
                }
            }
        }
        let b = BLOCK as usize;
        let mut bufs = Vec::new();
        for &(i, _, _, old) in &moves {
            let generation = old.map_or(1, |l| l.generation) + 1;
            let mut buf = AlignedBuf::zeroed(b + len);
            let payload = &chunks[i].as_slice()[b..];
            buf.as_mut_slice()[b..].copy_from_slice(payload);
            let h = ChunkHeader::for_payload(sid, i as u16, generation, payload);
            buf.as_mut_slice()[..b].copy_from_slice(&h.encode());
            bufs.push((generation, buf));
        }
        let jobs: Vec<(usize, u64, usize)> = moves
            .iter()
            .enumerate()
            .map(|(j, &(_, d, slot, _))| (d, slot, j))
            .collect();
        let this = &*self;
        let results = par(&jobs, |&(d, slot, j)| {
            let dr = &this.drives[d];
            let io = dr.io.as_ref().expect("usable");
            io.write_slot(slot, bufs[j].1.as_slice())
                .and_then(|()| io.sync())
                .map_err(|x| io_err(&dr.path, "write a repaired chunk", x))
        });
        // Each chunk on its own: a drive that fails its write loses only that repair.
        let mut done: Vec<(usize, Loc, Option<Loc>)> = Vec::new();
        for ((&(i, d, slot, old), r), (generation, _)) in moves.iter().zip(results).zip(&bufs) {
            match r {
                Ok(()) => done.push((
                    i,
                    Loc {
                        drive: self.drives[d].id,
                        slot,
                        generation: *generation,
                    },
                    old,
                )),
                Err(e) => {
                    self.drives[d].release(slot);
                    self.scrub.unrepairable += 1;
                    tracing::warn!(stripe = sid, chunk = i, "scrub: {e}");
                    self.fail_drive_on_eio(&e);
                }
            }
        }
        if done.is_empty() {
            return Ok(bytes);
        }
        for &(i, new, _) in &done {
            rec.chunks[i] = Some(new);
        }
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let commit = (|| -> Result<bool, StoreError> {
            let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
            {
                let mut st = tx.open_table(STRIPES).map_err(|x| e(x.into()))?;
                let mut ch = tx.open_table(CHUNKS).map_err(|x| e(x.into()))?;
                if st.get(sid).map_err(|x| e(x.into()))?.is_none() {
                    return Ok(false); // deleted meanwhile: the transaction is dropped
                }
                st.insert(sid, rec.encode().as_slice())
                    .map_err(|x| e(x.into()))?;
                for &(i, new, old) in &done {
                    if let Some(o) = old {
                        ch.remove((o.drive.as_u128(), o.slot))
                            .map_err(|x| e(x.into()))?;
                    }
                    ch.insert(
                        (new.drive.as_u128(), new.slot),
                        (sid, i as u16, new.generation),
                    )
                    .map_err(|x| e(x.into()))?;
                }
            }
            tx.commit().map_err(|x| e(x.into()))?;
            Ok(true)
        })();
        match commit {
            Ok(true) => {}
            Ok(false) => {
                for &(_, new, _) in &done {
                    if let Some(&d) = self.by_id.get(&new.drive) {
                        self.drives[d].release(new.slot);
                    }
                }
                return Ok(bytes);
            }
            Err(x) => {
                // Whether the commit reached the disk is unknown: keep every slot taken
                // and stop writing until the store is reopened and reconciled.
                self.poison(&x);
                return Err(x);
            }
        }
        let freed: Vec<Loc> = done.iter().filter_map(|&(_, _, old)| old).collect();
        self.forget(&freed);
        self.scrub.repaired += done.len() as u64;
        tracing::debug!(stripe = sid, repaired = done.len(), "scrub repaired chunks");
        Ok(bytes)
    }

    /// Stops all writing after an index commit whose outcome is unknown.
    fn poison(&mut self, why: &StoreError) {
        tracing::error!("store: {why}; no more writes until it is reopened");
        self.poisoned = Some(why.to_string());
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            None => Ok(()),
            Some(why) => Err(StoreError::Refused(format!(
                "{}: the store stopped taking writes after an index commit failed ({why}) — reopen it (restart the agent, or rerun the command); opening reconciles what is on disk",
                self.dir.display()
            ))),
        }
    }

    /// A drive whose write or sync fails with EIO is taken out of service: FAILED in the
    /// index, never written again; its chunks count as lost and are rebuilt elsewhere.
    fn fail_drive_on_eio(&mut self, e: &StoreError) {
        let StoreError::Io { path, source, .. } = e else {
            return;
        };
        if source.raw_os_error() != Some(libc::EIO) {
            return;
        }
        let Some(i) = self.drives.iter().position(|d| &d.path == path) else {
            return;
        };
        let problem = format!(
            "{}: I/O error ({source}) — taken out of service (FAILED); replace it, its chunks are rebuilt from parity",
            path.display()
        );
        self.mark_failed(i, problem);
    }

    /// Drive `i` out of service: FAILED in the index, never written or read again.
    fn mark_failed(&mut self, i: usize, problem: String) {
        let d = &mut self.drives[i];
        d.io = None;
        d.state = DriveState::Failed;
        tracing::error!("store: {problem}");
        d.problem = Some(problem);
        let mut rec = vec![DriveState::Failed.code()];
        rec.extend_from_slice(d.path.to_string_lossy().as_bytes());
        let id = d.id.as_u128();
        let r = (|| -> Result<(), String> {
            let tx = self.db.begin_write().map_err(|e| e.to_string())?;
            tx.open_table(DRIVES)
                .map_err(|e| e.to_string())?
                .insert(id, rec.as_slice())
                .map_err(|e| e.to_string())?;
            tx.commit().map_err(|e| e.to_string())
        })();
        if let Err(x) = r {
            tracing::warn!("store: could not record the drive as FAILED: {x}");
        }
    }

    /// The drive `which` names: its number (0, 1, … in the order of their paths), its
    /// file name or path, or its id (or an id's first 8 digits).
    fn find_drive(&self, which: &str) -> Result<usize, StoreError> {
        let mut order: Vec<usize> = (0..self.drives.len()).collect();
        order.sort_by(|a, b| self.drives[*a].path.cmp(&self.drives[*b].path));
        let hits: Vec<usize> = (0..self.drives.len())
            .filter(|&i| {
                let d = &self.drives[i];
                let id = d.id.to_string();
                d.path.to_string_lossy() == which
                    || d.path
                        .file_name()
                        .is_some_and(|f| f.to_string_lossy() == which)
                    || id == which
                    || (which.len() >= 8 && id.starts_with(which))
            })
            .collect();
        if hits.len() > 1 {
            return Err(StoreError::Refused(format!(
                "{which:?} names {} drives in {}: give the drive's id or whole path",
                hits.len(),
                self.dir.display()
            )));
        }
        let found = hits.first().copied();
        let by_number = which
            .parse::<usize>()
            .ok()
            .and_then(|i| order.get(i).copied());
        found.or(by_number).ok_or_else(|| {
            StoreError::Refused(format!(
                "no drive {which:?} in {} (it has: {})",
                self.dir.display(),
                order
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| format!(
                        "{i} {}",
                        self.drives[d]
                            .path
                            .file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Records drive `i`'s state in the index (durable), then in memory.
    fn set_state(&mut self, i: usize, state: DriveState) -> Result<(), StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let d = &self.drives[i];
        let mut rec = vec![state.code()];
        rec.extend_from_slice(d.path.to_string_lossy().as_bytes());
        let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
        tx.open_table(DRIVES)
            .map_err(|x| e(x.into()))?
            .insert(d.id.as_u128(), rec.as_slice())
            .map_err(|x| e(x.into()))?;
        tx.commit().map_err(|x| e(x.into()))?;
        self.drives[i].state = state;
        Ok(())
    }

    /// What phasing drive `which` out would move, and whether the store's other ACTIVE
    /// drives can take it.
    pub fn phase_out_preview(&self, which: &str) -> Result<PhaseOut, StoreError> {
        let i = self.find_drive(which)?;
        let d = &self.drives[i];
        let cs = u64::from(self.chunk_size);
        let keys = self.keys_on(d.id)?;
        let others = || {
            self.drives
                .iter()
                .enumerate()
                .filter(move |(j, o)| *j != i && o.usable())
        };
        let others_free: u64 = others().map(|(_, o)| o.free * cs).sum();
        let others_active = others().count() as u64;
        Ok(PhaseOut {
            drive: d.id.to_string(),
            path: d.path.clone(),
            state: d.state.as_str(),
            chunks: keys.len() as u64,
            bytes: keys.len() as u64 * cs,
            capacity: d.slots * cs,
            others_free,
            others_active,
            keys,
        })
    }

    /// The keys of the stripes with a chunk on drive `id`.
    fn keys_on(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(self.objects_on(id)?.into_keys().collect())
    }

    /// Objects with chunks on drive `id`, each with its number of stripes. Walks the
    /// drive's part of the chunk index (its keys sort by drive, then slot), so the cost
    /// follows the chunks on that drive, not the size of the store.
    fn objects_on(&self, id: Uuid) -> Result<BTreeMap<String, u64>, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let chunks = rtx.open_table(CHUNKS).map_err(|x| e(x.into()))?;
        let stripes = rtx.open_table(STRIPES).map_err(|x| e(x.into()))?;
        let objects = rtx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
        let d = id.as_u128();
        let mut sids = BTreeSet::new();
        for row in chunks
            .range((d, 0)..=(d, u64::MAX))
            .map_err(|x| e(x.into()))?
        {
            let (_, v) = row.map_err(|x| e(x.into()))?;
            sids.insert(v.value().0);
        }
        let mut out = BTreeMap::new();
        for sid in sids {
            let Some(v) = stripes.get(sid).map_err(|x| e(x.into()))? else {
                continue;
            };
            // The stripe's own record has the last word on where its chunks are.
            let Some(rec) = StripeRec::decode(v.value())
                .filter(|r| r.chunks.iter().flatten().any(|l| l.drive == id))
            else {
                continue;
            };
            if out.contains_key(&rec.key) {
                continue;
            }
            let n = objects
                .get(rec.key.as_str())
                .map_err(|x| e(x.into()))?
                .and_then(|o| ObjectRec::decode(o.value()))
                .map_or(1, |o| o.stripes.len() as u64);
            out.insert(rec.key, n);
        }
        Ok(out)
    }

    /// Starts (or resumes) phasing drive `which` out: PHASING_OUT, so that nothing new is
    /// written to it, if the other ACTIVE drives can take what it holds (refused with the
    /// figures otherwise) — or, with `elsewhere` (a cluster member's `1+0` store, whose
    /// caller moves what does not fit here to other nodes), whatever they can hold. Returns
    /// what must move.
    pub fn begin_phase_out(
        &mut self,
        which: &str,
        elsewhere: bool,
    ) -> Result<PhaseOut, StoreError> {
        let p = self.phase_out_preview(which)?;
        if elsewhere && self.scheme.chunks() != 1 {
            return Err(StoreError::Refused(format!(
                "{}: a {}+{} store keeps its stripes on its own drives; only a cluster member's 1+0 store moves chunks to other nodes",
                p.path.display(),
                self.scheme.k,
                self.scheme.m
            )));
        }
        let i = self.find_drive(which)?;
        match self.drives[i].state {
            DriveState::Active | DriveState::PhasingIn | DriveState::PhasingOut => {}
            s => {
                return Err(StoreError::Refused(format!(
                    "{}: {} — only an ACTIVE drive is phased out",
                    p.path.display(),
                    s.as_str()
                )));
            }
        }
        let others = self
            .drives
            .iter()
            .enumerate()
            .filter(|(j, o)| *j != i && o.usable())
            .count();
        if others < self.scheme.chunks() && !elsewhere {
            return Err(StoreError::Refused(format!(
                "{}: without it {others} ACTIVE drive(s) remain, a {}+{} stripe needs {} — add a drive first",
                p.path.display(),
                self.scheme.k,
                self.scheme.m,
                self.scheme.chunks()
            )));
        }
        if p.bytes > p.others_free && !elsewhere {
            return Err(StoreError::Refused(format!(
                "{}: holds {} chunks ({} bytes) but the other ACTIVE drives have {} bytes free — add a drive first",
                p.path.display(),
                p.chunks,
                p.bytes,
                p.others_free
            )));
        }
        if self.drives[i].state != DriveState::PhasingOut {
            self.set_state(i, DriveState::PhasingOut)?;
        }
        Ok(p)
    }

    /// Moves `key` off drive `which` (read whole, written again on the ACTIVE drives, the
    /// old chunks freed once the new ones are committed). Returns the bytes moved; 0 if it
    /// no longer has a chunk there (deleted or moved meanwhile).
    pub fn move_off(&mut self, which: &str, key: &str) -> Result<u64, StoreError> {
        let i = self.find_drive(which)?;
        let id = self.drives[i].id;
        if !self.keys_on_key(key, id)? {
            return Ok(0);
        }
        let data = match self.get(key) {
            Ok(d) => d,
            Err(StoreError::NotFound(_)) => return Ok(0),
            Err(e) => return Err(e),
        };
        self.put(key, &data)?;
        Ok(data.len() as u64)
    }

    /// As `move_off`, with drive `to` first among the drives the object is written to
    /// (a phase-in's moves land on the drive being phased in, whatever the others hold).
    pub fn move_onto(&mut self, which: &str, key: &str, to: &str) -> Result<u64, StoreError> {
        self.prefer = Some(self.find_drive(to)?);
        let r = self.move_off(which, key);
        self.prefer = None;
        r
    }

    /// Whether object `key` has a chunk on drive `id`.
    fn keys_on_key(&self, key: &str, id: Uuid) -> Result<bool, StoreError> {
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let o = rtx.open_table(OBJECTS).map_err(|x| e(x.into()))?;
        let Some(rec) = o.get(key).map_err(|x| e(x.into()))? else {
            return Ok(false);
        };
        let Some(rec) = ObjectRec::decode(rec.value()) else {
            return Ok(false);
        };
        drop(o);
        let t = rtx.open_table(STRIPES).map_err(|x| e(x.into()))?;
        for sid in rec.stripes {
            if let Some(v) = t.get(sid).map_err(|x| e(x.into()))?
                && let Some(st) = StripeRec::decode(v.value())
                && st.chunks.iter().flatten().any(|l| l.drive == id)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Ends a phase-out: INACTIVE once nothing is left on the drive (an error naming what
    /// is left otherwise).
    pub fn finish_phase_out(&mut self, which: &str) -> Result<(), StoreError> {
        let i = self.find_drive(which)?;
        let left = self.keys_on(self.drives[i].id)?;
        if !left.is_empty() {
            return Err(StoreError::Refused(format!(
                "{}: {} objects still have chunks on it (first: {})",
                self.drives[i].path.display(),
                left.len(),
                left[0]
            )));
        }
        self.set_state(i, DriveState::Inactive)
    }

    /// Drive `which` back in service: ACTIVE from INACTIVE, PHASING_OUT (a phase-out
    /// cancelled: what moved stays moved) or PHASING_IN. Refused for a FAILED or
    /// unreadable drive.
    pub fn activate(&mut self, which: &str) -> Result<PathBuf, StoreError> {
        let i = self.find_drive(which)?;
        let d = &self.drives[i];
        if d.state == DriveState::Failed || d.io.is_none() {
            return Err(StoreError::Refused(format!(
                "{}: {}{} — a failed drive is removed (`axon drive remove`) and replaced (`axon drive add`), not activated",
                d.path.display(),
                d.state.as_str(),
                d.problem
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            )));
        }
        let path = d.path.clone();
        if d.state != DriveState::Active {
            self.set_state(i, DriveState::Active)?;
        }
        Ok(path)
    }

    /// Starts (or resumes) phasing drive `which` in: PHASING_IN (it takes new chunks), and
    /// what to move onto it from the fuller drives so that every drive taking chunks ends
    /// about as full as the others (by share of its slots used). Each move re-puts one
    /// object with the drive being phased in first (`move_onto`); an object is planned
    /// once.
    pub fn begin_phase_in(&mut self, which: &str) -> Result<PhaseIn, StoreError> {
        let i = self.find_drive(which)?;
        let d = &self.drives[i];
        if d.io.is_none() || !matches!(d.state, DriveState::Active | DriveState::PhasingIn) {
            return Err(StoreError::Refused(format!(
                "{}: {} — only an ACTIVE drive is phased in (`axon drive activate` first)",
                d.path.display(),
                d.state.as_str()
            )));
        }
        if d.state != DriveState::PhasingIn {
            self.set_state(i, DriveState::PhasingIn)?;
        }
        let taking: Vec<usize> = (0..self.drives.len())
            .filter(|&j| self.drives[j].usable())
            .collect();
        let used = |j: usize| self.drives[j].slots - self.drives[j].free;
        let total_used: u64 = taking.iter().map(|&j| used(j)).sum();
        let total_slots: u64 = taking
            .iter()
            .map(|&j| self.drives[j].slots)
            .sum::<u64>()
            .max(1);
        // Each drive's level: its share of what is used, by its size.
        let level = |j: usize| {
            (u128::from(total_used) * u128::from(self.drives[j].slots))
                .div_ceil(u128::from(total_slots)) as u64
        };
        let mut room = level(i).saturating_sub(used(i));
        let mut over: Vec<(usize, u64)> = taking
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| (j, used(j).saturating_sub(level(j))))
            .filter(|x| x.1 > 0)
            .collect();
        over.sort_by_key(|x| std::cmp::Reverse(x.1));
        let mut moves = Vec::new();
        let mut planned = HashSet::new();
        let mut chunks = 0u64;
        let cs = u64::from(self.chunk_size);
        for (j, n) in over {
            if room == 0 {
                break;
            }
            let take = n.min(room);
            let id = self.drives[j].id;
            // Counted in chunks: a move writes the object again with one chunk of each of
            // its stripes on the new drive. An object moves once (in a k+m store its
            // stripes span several drives).
            let mut taken = 0u64;
            for (key, c) in self.objects_on(id)? {
                if taken >= take {
                    break;
                }
                // One that would overshoot is taken only if that ends nearer the level.
                let nearer = taken + c <= take || taken + c - take < take - taken;
                if !nearer || planned.contains(&key) {
                    continue;
                }
                planned.insert(key.clone());
                moves.push((id.to_string(), key));
                taken += c;
            }
            chunks += taken;
            room = room.saturating_sub(taken);
        }
        let d = &self.drives[i];
        Ok(PhaseIn {
            drive: d.id.to_string(),
            path: d.path.clone(),
            bytes: chunks * cs,
            moves,
        })
    }

    /// The rate (bytes per second) the phase-out or phase-in of drive `which` was started
    /// at, kept in the index so that an agent restart resumes it at that rate; None for no
    /// limit (or none recorded).
    pub fn move_rate(&self, which: &str) -> Result<Option<u64>, StoreError> {
        let i = self.find_drive(which)?;
        let key = format!("move-rate/{}", self.drives[i].id);
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let rtx = self.db.begin_read().map_err(|x| e(x.into()))?;
        let t = rtx.open_table(META).map_err(|x| e(x.into()))?;
        let v = t.get(key.as_str()).map_err(|x| e(x.into()))?;
        Ok(v.and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
            .map(u64::from_le_bytes)
            .filter(|r| *r > 0))
    }

    /// Records (Some) or forgets (None) the rate of drive `which`'s phase-out or phase-in.
    pub fn set_move_rate(&mut self, which: &str, rate: Option<u64>) -> Result<(), StoreError> {
        let i = self.find_drive(which)?;
        let key = format!("move-rate/{}", self.drives[i].id);
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut t = tx.open_table(META).map_err(|x| e(x.into()))?;
            match rate.filter(|r| *r > 0) {
                Some(r) => {
                    t.insert(key.as_str(), r.to_le_bytes().as_slice())
                        .map_err(|x| e(x.into()))?;
                }
                None => {
                    t.remove(key.as_str()).map_err(|x| e(x.into()))?;
                }
            }
        }
        tx.commit().map_err(|x| e(x.into()))?;
        Ok(())
    }

    /// Ends a phase-in: ACTIVE.
    pub fn finish_phase_in(&mut self, which: &str) -> Result<(), StoreError> {
        let i = self.find_drive(which)?;
        if self.drives[i].state == DriveState::PhasingIn {
            self.set_state(i, DriveState::Active)?;
        }
        Ok(())
    }

    /// Takes drive `which` out of the store: only an INACTIVE (phased-out) or FAILED one.
    /// Chunks still recorded on a FAILED drive stay lost, to be rebuilt from parity.
    pub fn remove_drive(&mut self, which: &str) -> Result<PathBuf, StoreError> {
        let i = self.find_drive(which)?;
        let d = &self.drives[i];
        if !matches!(d.state, DriveState::Inactive | DriveState::Failed) {
            return Err(StoreError::Refused(format!(
                "{}: {} — deactivate it first (`axon drive deactivate`), which moves its chunks off; only an INACTIVE or FAILED drive is removed",
                d.path.display(),
                d.state.as_str()
            )));
        }
        let (id, path) = (d.id, d.path.clone());
        let left = self.keys_on(id)?;
        if !left.is_empty() {
            return Err(StoreError::Refused(format!(
                "{}: {} object(s) still have chunks recorded on it (first: {}) — they are being rewritten from parity while IO is started (`axon start-io`); remove it once none are left (`axon cluster status` shows no chunks lost)",
                path.display(),
                left.len(),
                left[0]
            )));
        }
        let db_path = self.dir.join(DB_FILE);
        let e = db_err(&db_path);
        let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
        tx.open_table(DRIVES)
            .map_err(|x| e(x.into()))?
            .remove(id.as_u128())
            .map_err(|x| e(x.into()))?;
        tx.commit().map_err(|x| e(x.into()))?;
        self.drives.remove(i);
        self.by_id = self
            .drives
            .iter()
            .enumerate()
            .map(|(j, d)| (d.id, j))
            .collect();
        self.bad.retain(|(d, _)| *d != id);
        Ok(path)
    }

    /// Drives by state: (id, path, state), in path order.
    pub fn drive_states(&self) -> Vec<(String, PathBuf, &'static str)> {
        let mut v: Vec<_> = self
            .drives
            .iter()
            .map(|d| (d.id.to_string(), d.path.clone(), d.state.as_str()))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }

    /// Takes drive `which` out of service as a drive that died would be (FAILED, its
    /// chunks lost): the demo's fault injection. Returns its path.
    pub fn fail_drive(&mut self, which: &str, why: &str) -> Result<PathBuf, StoreError> {
        let i = self.find_drive(which)?;
        let path = self.drives[i].path.clone();
        if self.drives[i].state == DriveState::Failed {
            return Err(StoreError::Refused(format!(
                "{}: already FAILED — its chunks are being rewritten from parity; `axon drive remove` takes it out once none are left",
                path.display()
            )));
        }
        self.mark_failed(i, format!("{}: {why}", path.display()));
        Ok(path)
    }

    /// Drive `which`'s path and the file offsets of the payloads of the chunks it holds
    /// (for the demo's corruption of real bytes on disk).
    pub fn chunk_payloads(&self, which: &str) -> Result<(PathBuf, Vec<u64>), StoreError> {
        let i = self.find_drive(which)?;
        let d = &self.drives[i];
        let offsets = d
            .used
            .iter()
            .enumerate()
            .filter(|(_, u)| **u)
            .map(|(s, _)| drive::slot_offset(self.chunk_size, s as u64) + BLOCK)
            .collect();
        Ok((d.path.clone(), offsets))
    }

    /// Whether some chunk may be lost: a drive failed or unavailable, or a chunk found
    /// damaged. Cheap; `degraded` then says which.
    pub fn has_losses(&self) -> bool {
        !self.bad.is_empty()
            || self
                .drives
                .iter()
                .any(|d| d.io.is_none() || d.state == DriveState::Failed)
    }

    /// One pass over every stripe at no more than `rate` bytes read per second (None:
    /// unbounded), until done or `stop` is set. `progress` is called after each stripe.
    pub fn scrub(
        &mut self,
        rate: Option<u64>,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(u64, u64, &ScrubStats),
    ) -> Result<ScrubStats, StoreError> {
        let ids = self.stripe_ids()?;
        let mut pacer = Pacer::new(rate);
        for (n, sid) in ids.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(self.scrub.clone());
            }
            let bytes = match self.scrub_stripe(*sid) {
                Ok(b) => b,
                // A store that stopped taking writes cannot repair anything more.
                Err(e) if self.poisoned.is_some() => return Err(e),
                Err(e) => {
                    tracing::warn!(stripe = sid, "scrub: {e}");
                    0
                }
            };
            progress(n as u64 + 1, ids.len() as u64, &self.scrub);
            std::thread::sleep(pacer.wait(bytes));
        }
        self.scrub.passes += 1;
        Ok(self.scrub.clone())
    }
}

/// One chunk write of a stripe: where to.
struct WriteJob {
    io: Arc<DriveIo>,
    slot: u64,
}

type Written = (Vec<AlignedBuf>, Result<(), StoreError>);

/// Writes one stripe in the background (each chunk on its own thread) while the next one
/// is prepared: double buffering, at most one stripe in flight.
struct WritePipe {
    inflight: Option<std::thread::JoinHandle<Written>>,
    spare: Vec<Vec<AlignedBuf>>,
    /// Chunks per stripe, and bytes per chunk buffer (header block + chunk size).
    shape: (usize, usize),
}

impl WritePipe {
    /// `spare`: buffer sets kept from an earlier put (reused: fresh ones cost page faults
    /// and zeroing).
    fn new(chunks: usize, bytes: usize, spare: Vec<Vec<AlignedBuf>>) -> WritePipe {
        WritePipe {
            inflight: None,
            spare,
            shape: (chunks, bytes),
        }
    }

    /// A buffer set to prepare a stripe in.
    fn fresh(&mut self) -> Vec<AlignedBuf> {
        self.spare.pop().unwrap_or_else(|| {
            (0..self.shape.0)
                .map(|_| AlignedBuf::zeroed(self.shape.1))
                .collect()
        })
    }

    /// Starts writing `bufs[i][..len]` per job; returns a buffer set to prepare the next
    /// stripe in, after the previous stripe's writes have finished (their error, if any).
    fn submit(
        &mut self,
        jobs: Vec<WriteJob>,
        bufs: Vec<AlignedBuf>,
        len: usize,
    ) -> Result<Vec<AlignedBuf>, StoreError> {
        let prev = self.wait();
        let handle = std::thread::Builder::new()
            .name("axon-write".into())
            .spawn(move || {
                let items: Vec<(&WriteJob, &AlignedBuf)> = jobs.iter().zip(&bufs).collect();
                let results = par(&items, |(j, buf)| {
                    j.io.write_slot(j.slot, &buf.as_slice()[..len])
                        .map_err(|x| io_err(&j.io.path, "write chunk", x))
                });
                let r = results
                    .into_iter()
                    .collect::<Result<Vec<()>, _>>()
                    .map(|_| ());
                drop(items);
                (bufs, r)
            })
            .map_err(|x| StoreError::Refused(format!("cannot start a write thread: {x}")))?;
        self.inflight = Some(handle);
        let next = match prev {
            Some((b, r)) => {
                r?;
                b
            }
            None => self.fresh(),
        };
        Ok(next)
    }

    fn wait(&mut self) -> Option<Written> {
        self.inflight
            .take()
            .map(|h| h.join().expect("a write thread panicked"))
    }

    /// Waits for the stripe in flight.
    fn finish(&mut self) -> Result<(), StoreError> {
        match self.wait() {
            Some((b, r)) => {
                self.spare.push(b);
                r
            }
            None => Ok(()),
        }
    }
}

/// Keeps a byte rate: after `wait(n)` bytes, how long to sleep so the total since the
/// start stays at or under the rate.
pub struct Pacer {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Pacer {
    pub fn new(rate: Option<u64>) -> Pacer {
        Pacer {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    pub fn wait(&mut self, n: u64) -> Duration {
        self.bytes += n;
        let Some(rate) = self.rate.filter(|r| *r > 0) else {
            return Duration::ZERO;
        };
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        due.saturating_sub(self.start.elapsed())
    }
}

/// A scrubber running in the background over a shared store: a pass every `every`, each
/// at no more than `rate` bytes per second, holding the store's lock one stripe at a time.
/// `observe` sees the store (under its lock) when the scrubber starts, at most once a
/// second while it runs, and after every pass: the agent publishes the status from it.
pub struct Scrubber {
    stop: std::sync::Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Scrubber {
    pub fn start(
        store: std::sync::Arc<std::sync::Mutex<Store>>,
        rate: Option<u64>,
        every: Duration,
        mut observe: Box<dyn FnMut(&Store) + Send>,
    ) -> Scrubber {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("axon-scrub".into())
            .spawn(move || {
                if let Ok(st) = store.lock() {
                    observe(&st);
                }
                let mut seen = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    let ids = match store.lock().map(|st| st.stripe_ids()) {
                        Ok(Ok(ids)) => ids,
                        Ok(Err(e)) => {
                            tracing::error!("scrubber stopped: listing the stripes: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::error!("scrubber stopped: the store's lock is poisoned");
                            return;
                        }
                    };
                    let mut pacer = Pacer::new(rate);
                    for sid in ids {
                        if s.load(Ordering::Relaxed) {
                            return;
                        }
                        let bytes = {
                            let Ok(mut st) = store.lock() else { return };
                            let b = match st.scrub_stripe(sid) {
                                Ok(b) => b,
                                Err(e) => {
                                    tracing::warn!(stripe = sid, "scrub: {e}");
                                    0
                                }
                            };
                            if seen.elapsed() >= Duration::from_secs(1) {
                                observe(&st);
                                seen = Instant::now();
                            }
                            b
                        };
                        sleep_unless(&s, pacer.wait(bytes));
                    }
                    if let Ok(mut st) = store.lock() {
                        st.scrub.passes += 1;
                        observe(&st);
                        seen = Instant::now();
                    }
                    sleep_unless(&s, every);
                }
            })
            .expect("spawn the scrubber thread");
        Scrubber {
            stop,
            handle: Some(handle),
        }
    }
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

impl Drop for Scrubber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = StripeRec {
            key: "a/b".into(),
            chunk_len: 8192,
            chunks: vec![
                Some(Loc {
                    drive: Uuid::from_u128(5),
                    slot: 7,
                    generation: 2,
                }),
                None,
            ],
        };
        assert_eq!(StripeRec::decode(&r.encode()), Some(r));
        let o = ObjectRec {
            size: 99,
            stripes: vec![1, 2, 3],
        };
        assert_eq!(ObjectRec::decode(&o.encode()), Some(o));
        assert_eq!(ObjectRec::decode(&[1, 2, 3]), None);
    }

    #[test]
    fn the_pacer_holds_a_rate() {
        let mut p = Pacer::new(Some(1000));
        let w = p.wait(500);
        assert!(w > Duration::from_millis(400) && w <= Duration::from_millis(500));
        assert_eq!(Pacer::new(None).wait(1 << 30), Duration::ZERO);
    }
}

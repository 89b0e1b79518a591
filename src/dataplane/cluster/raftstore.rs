//! Raft's durable storage for the cluster configuration, on redb: the log (one row per
//! entry, JSON), the vote, the committed id and the last purged id, and the latest snapshot
//! of the state machine. Every write is one redb transaction, fsync'ed before it returns
//! (redb's default durability), which is what Raft requires of a vote and of log entries
//! before they are acknowledged. openraft's own storage test suite runs against it.
//!
//! The state machine (the `ClusterConfig`) lives in memory and is rebuilt on start from the
//! latest snapshot plus the committed log entries after it, which openraft re-applies.

// openraft's StorageError is what its traits return; boxing it is not ours to choose.
#![allow(clippy::result_large_err)]

use crate::model::cluster::{Applied, ClusterConfig, Command};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, RwLock};

openraft::declare_raft_types!(
    /// The cluster configuration's Raft: commands in, what applying them did out; members
    /// addressed by `BasicNode { addr }`.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = BasicNode,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

type StorageResult<T> = Result<T, StorageError<NodeId>>;

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write(&e).into()
}

fn get_meta<T: for<'de> Deserialize<'de>>(db: &Database, key: &str) -> StorageResult<Option<T>> {
    let rtx = db.begin_read().map_err(read_err)?;
    let t = match rtx.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let Some(v) = t.get(key).map_err(read_err)? else {
        return Ok(None);
    };
    serde_json::from_slice(v.value())
        .map(Some)
        .map_err(read_err)
}

fn put_meta<T: Serialize>(db: &Database, key: &str, v: &T) -> StorageResult<()> {
    let bytes = serde_json::to_vec(v).map_err(write_err)?;
    let tx = db.begin_write().map_err(write_err)?;
    tx.open_table(META)
        .map_err(write_err)?
        .insert(key, bytes.as_slice())
        .map_err(write_err)?;
    tx.commit().map_err(write_err)
}

/// Saves a snapshot unless the stored one is newer: a snapshot built in the background
/// from an older state must not replace one installed meanwhile (whose log is purged).
fn save_snapshot_if_newer(db: &Database, snap: &StoredSnapshot) -> StorageResult<()> {
    let bytes = serde_json::to_vec(snap).map_err(write_err)?;
    let tx = db.begin_write().map_err(write_err)?;
    {
        let mut t = tx.open_table(META).map_err(write_err)?;
        let stored: Option<StoredSnapshot> = t
            .get("snapshot")
            .map_err(write_err)?
            .and_then(|v| serde_json::from_slice(v.value()).ok());
        if stored.is_some_and(|s| s.meta.last_log_id > snap.meta.last_log_id) {
            return Ok(());
        }
        t.insert("snapshot", bytes.as_slice()).map_err(write_err)?;
    }
    tx.commit().map_err(write_err)
}

/// Opens (or creates) the Raft database at `path`; the log store and the state machine
/// share it.
pub fn open(path: &Path) -> Result<(LogStore, StateMachine), String> {
    let db = Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => format!(
            "{}: the cluster database is open in another process — stop it first",
            path.display()
        ),
        e => format!("{}: {e}", path.display()),
    })?;
    let db = Arc::new(db);
    let sm = StateMachine::new(db.clone()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((LogStore { db }, sm))
}

#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let rtx = self.db.begin_read().map_err(read_err)?;
        let t = match rtx.open_table(LOG) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        let mut out = Vec::new();
        for row in t.range::<u64>(range).map_err(read_err)? {
            let (_, v) = row.map_err(read_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = get_meta(&self.db, "last_purged")?;
        let rtx = self.db.begin_read().map_err(read_err)?;
        let last = match rtx.open_table(LOG) {
            Ok(t) => match t.last().map_err(read_err)? {
                Some((_, v)) => {
                    let e: Entry<TypeConfig> =
                        serde_json::from_slice(v.value()).map_err(read_err)?;
                    Some(e.log_id)
                }
                None => None,
            },
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(read_err(e)),
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        put_meta(&self.db, "vote", vote)
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        get_meta(&self.db, "vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        put_meta(&self.db, "committed", &committed)
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(get_meta::<Option<LogId<NodeId>>>(&self.db, "committed")?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let tx = self.db.begin_write().map_err(write_err)?;
        {
            let mut t = tx.open_table(LOG).map_err(write_err)?;
            for e in entries {
                let bytes = serde_json::to_vec(&e).map_err(write_err)?;
                t.insert(e.log_id.index, bytes.as_slice())
                    .map_err(write_err)?;
            }
        }
        // Durable (fsync'ed) when commit returns: only then is the append acknowledged.
        tx.commit().map_err(write_err)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let tx = self.db.begin_write().map_err(write_err)?;
        tx.open_table(LOG)
            .map_err(write_err)?
            .retain_in(log_id.index.., |_, _| false)
            .map_err(write_err)?;
        tx.commit().map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let bytes = serde_json::to_vec(&log_id).map_err(write_err)?;
        let tx = self.db.begin_write().map_err(write_err)?;
        tx.open_table(META)
            .map_err(write_err)?
            .insert("last_purged", bytes.as_slice())
            .map_err(write_err)?;
        tx.open_table(LOG)
            .map_err(write_err)?
            .retain_in(..=log_id.index, |_, _| false)
            .map_err(write_err)?;
        tx.commit().map_err(write_err)
    }
}

/// What the state machine holds.
#[derive(Debug, Clone, Default)]
pub struct SmState {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    pub config: ClusterConfig,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The applied configuration, readable from outside Raft (status, placement).
#[derive(Clone, Default)]
pub struct ConfigView(Arc<RwLock<SmState>>);

impl ConfigView {
    pub fn config(&self) -> ClusterConfig {
        self.0.read().map(|s| s.config.clone()).unwrap_or_default()
    }

    /// The IO status alone, without copying the configuration (checked per chunk call).
    pub fn io(&self) -> crate::model::cluster::IoStatus {
        self.0.read().map(|s| s.config.io).unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    state: ConfigView,
    snapshot_idx: u64,
}

impl StateMachine {
    fn new(db: Arc<Database>) -> StorageResult<StateMachine> {
        let sm = StateMachine {
            db,
            state: ConfigView::default(),
            snapshot_idx: 0,
        };
        if let Some(snap) = get_meta::<StoredSnapshot>(&sm.db, "snapshot")? {
            sm.restore(&snap)?;
        }
        Ok(sm)
    }

    pub fn view(&self) -> ConfigView {
        self.state.clone()
    }

    fn restore(&self, snap: &StoredSnapshot) -> StorageResult<()> {
        let config: ClusterConfig = serde_json::from_slice(&snap.data).map_err(read_err)?;
        let mut s = self.state.0.write().expect("state lock");
        s.last_applied = snap.meta.last_log_id;
        s.membership = snap.meta.last_membership.clone();
        s.config = config;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let (last, membership, data) = {
            let s = self.state.0.read().expect("state lock");
            (
                s.last_applied,
                s.membership.clone(),
                serde_json::to_vec(&s.config).map_err(read_err)?,
            )
        };
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshot_idx),
            None => format!("--{}", self.snapshot_idx),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: membership,
            snapshot_id,
        };
        save_snapshot_if_newer(
            &self.db,
            &StoredSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            },
        )?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let s = self.state.0.read().expect("state lock");
        Ok((s.last_applied, s.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut s = self.state.0.write().expect("state lock");
        let mut out = Vec::new();
        for e in entries {
            s.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => out.push(Applied {
                    epoch: s.config.epoch,
                    refused: None,
                    ..Default::default()
                }),
                EntryPayload::Normal(cmd) => out.push(s.config.apply(&cmd)),
                EntryPayload::Membership(m) => {
                    s.membership = StoredMembership::new(Some(e.log_id), m);
                    out.push(Applied {
                        epoch: s.config.epoch,
                        refused: None,
                        ..Default::default()
                    });
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_idx += 1;
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let snap = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        // On disk first: a crash between the two leaves the newer snapshot to start from.
        save_snapshot_if_newer(&self.db, &snap)?;
        self.restore(&snap)
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        Ok(
            get_meta::<StoredSnapshot>(&self.db, "snapshot")?.map(|s| Snapshot {
                meta: s.meta,
                snapshot: Box::new(Cursor::new(s.data)),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::{StoreBuilder, Suite};

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
            let dir = tempfile::tempdir().expect("a temp dir");
            let (log, sm) = open(&dir.path().join("raft.redb")).expect("open");
            Ok((dir, log, sm))
        }
    }

    /// openraft's own suite of storage tests (log, vote, committed, purge, truncate,
    /// snapshots, membership), against the redb store.
    #[test]
    fn openraft_storage_suite_passes() {
        Suite::test_all(Builder).unwrap();
    }
}

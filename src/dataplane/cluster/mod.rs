//! The data plane as one cluster (part 7): its configuration held by Raft (openraft, log
//! and snapshots in redb) among a leadership group of up to 5 members. The configuration
//! itself (`model::cluster`) is plain data, shared with the console side.

pub mod frontend;
pub mod objects;
pub mod placement;
pub mod protection;
pub mod raftstore;

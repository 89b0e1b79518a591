//! The cluster configuration the Raft state machine holds lives in `model::cluster` (plain
//! data and deterministic logic, shared with the console); re-exported here.

pub use crate::model::cluster::*;

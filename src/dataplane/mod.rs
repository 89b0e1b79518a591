//! The embedded data plane (ARCHITECTURE.md, DATAPLANE.md): drives, erasure-coded stripes,
//! rebuild. Depends on `model` only. On one node so far: the drive format (`drive`), the
//! erasure codec (`ec`, ISA-L), and the storage engine (`store`: objects in stripes, the
//! index in redb, reconcile on open, the scrubber).

pub mod cluster;
pub mod drive;
pub mod ec;
pub mod offload;
pub mod store;

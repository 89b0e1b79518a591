//! The embedded data plane (ARCHITECTURE.md, DATAPLANE.md): drives, erasure-coded stripes,
//! rebuild. Depends on `model` only. So far: the drive format (`drive`) and the erasure
//! codec (`ec`, ISA-L).

pub mod drive;
pub mod ec;

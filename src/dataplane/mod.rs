//! The embedded data plane (ARCHITECTURE.md, DATAPLANE.md): drives, erasure-coded stripes,
//! rebuild. Depends on `model` only. This part so far: the drive format (`drive`).

pub mod drive;

//! The embedded data plane (ARCHITECTURE.md, DATAPLANE.md): drives, erasure-coded stripes,
//! rebuild. Depends on `model` only. On one node: the drive format (`drive`), the erasure
//! codec (`ec`, ISA-L), the storage engine (`store`: chunks and stripes, the index in redb,
//! reconcile on open, the scrubber) and where EC work runs (`offload`). Across nodes
//! (`cluster`): the frontend, placement, the stripe map and protection counts, and the
//! Raft-held configuration's storage. The chunk-sized buffers both sides fill (`zeroes`)
//! are here.

pub mod cluster;
pub mod drive;
pub mod ec;
pub mod offload;
pub mod store;

/// `len` zero bytes, zeroed by a `memset` on whatever memory the allocator hands out.
/// `vec![0; n]` asks for zeroed memory instead (`calloc`), and for a block the size of a
/// chunk jemalloc then returns the recycled pages to the kernel (`madvise`) so that the
/// kernel zeroes them, at a page fault per 4 KiB on first touch: per chunk written or
/// read, 256 faults where a `memset` costs about one copy.
pub fn zeroes(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    // Opaque to the optimiser, which would otherwise turn the allocation and the fill
    // back into a `calloc`.
    v.resize(len, std::hint::black_box(0u8));
    v
}

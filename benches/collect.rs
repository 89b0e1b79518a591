//! One full collection of the emulated AMD host (every file collector plus the checks) and
//! one /metrics render of its snapshot, in both formats.

#[path = "../tests/common/mod.rs"]
mod common;

use axon::agent::exporter;
use axon::agent::scheduler::collect_section;
use axon::model::snapshot::Section;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let root = common::root("amd-epyc-4numa");
    let cfg = common::collect_config();
    let mut g = c.benchmark_group("collect");
    g.sample_size(30);
    g.bench_function("full_collection_amd_96cpu", |b| {
        b.iter(|| black_box(common::collect_all(&root, &cfg)))
    });
    for s in [
        Section::Topology,
        Section::Pinning,
        Section::Network,
        Section::Nvme,
    ] {
        g.bench_function(format!("section_{}", s.as_str()), |b| {
            b.iter(|| black_box(collect_section(&root, &cfg, None, s).unwrap()))
        });
    }
    g.finish();

    let snap = common::collect_all(&root, &cfg).snapshot();
    let mut g = c.benchmark_group("scrape");
    g.bench_function("render_text_0.0.4", |b| {
        b.iter(|| black_box(exporter::render(&snap, 0, false)))
    });
    g.bench_function("render_openmetrics", |b| {
        b.iter(|| black_box(exporter::render(&snap, 0, true)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

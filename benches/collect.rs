//! One full collection of the emulated AMD host (every file collector plus the checks) and
//! one /metrics render of its snapshot, in both formats.

use axon::agent::scheduler::{CollectConfig, collect_section};
use axon::agent::state::AgentState;
use axon::agent::{exporter, scheduler::Schedule};
use axon::collectors::HostRoot;
use axon::collectors::checks::PlanParams;
use axon::collectors::net::NetConfig;
use axon::collectors::probes::ProbeOptions;
use axon::model::ports;
use axon::model::snapshot::{NodeInfo, Section};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn cfg() -> CollectConfig {
    CollectConfig {
        net: NetConfig::default(),
        plan: PlanParams::default(),
        peers: Vec::new(),
        probe_ports: ports::continuous_ports(),
        probe: ProbeOptions::default(),
        own_addresses: Vec::new(),
        smart: true,
    }
}

fn full_collection(root: &HostRoot, cfg: &CollectConfig) -> AgentState {
    let state = AgentState::new(
        NodeInfo::default(),
        Schedule::with_base(Duration::from_secs(1)).initial_status(),
    );
    for s in [
        Section::Topology,
        Section::Network,
        Section::Nvme,
        Section::Pinning,
        Section::Checks,
    ] {
        let (v, _) = collect_section(root, cfg, Some(&state), s).expect("collects");
        state.update(v, None, 0);
    }
    state
}

fn bench(c: &mut Criterion) {
    let root = HostRoot::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hosts/amd-epyc-4numa"
    ))
    .unwrap();
    let cfg = cfg();
    let mut g = c.benchmark_group("collect");
    g.sample_size(30);
    g.bench_function("full_collection_amd_96cpu", |b| {
        b.iter(|| black_box(full_collection(&root, &cfg)))
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

    let snap = full_collection(&root, &cfg).snapshot();
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

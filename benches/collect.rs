//! One full collection of the emulated AMD host (every file collector plus the checks),
//! one /metrics render of its snapshot in both formats, and a real scrape: an HTTP GET
//! /metrics against the agent's exporter server running in this process.

#[path = "../tests/common/mod.rs"]
mod common;

use axon::agent::exporter;
use axon::agent::scheduler::collect_section;
use axon::model::snapshot::Section;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// GET /metrics over a fresh connection, as a scraper does; returns the body's length.
fn scrape(addr: SocketAddr, accept: &str) -> usize {
    let mut s = TcpStream::connect(addr).expect("exporter listens");
    s.set_nodelay(true).ok();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .expect("request sent");
    let mut buf = Vec::with_capacity(32 * 1024);
    s.read_to_end(&mut buf).expect("response read");
    assert!(buf.starts_with(b"HTTP/1.1 200"), "scrape failed");
    buf.len()
}

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

    let state = Arc::new(common::collect_all(&root, &cfg));
    let snap = state.snapshot();
    let mut g = c.benchmark_group("scrape");
    g.bench_function("render_text_0.0.4", |b| {
        b.iter(|| black_box(exporter::render(&snap, 0, false)))
    });
    g.bench_function("render_openmetrics", |b| {
        b.iter(|| black_box(exporter::render(&snap, 0, true)))
    });

    // The agent's exporter server on loopback, served by a runtime of its own.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    // Through the agent's own listener (limits, idle timeout), as `axon agent` serves it.
    let limits = axon::agent::listen::Limits::default();
    let (incoming, _accept) = rt.block_on(async {
        axon::agent::listen::tcp_incoming(
            listener,
            None,
            axon::agent::listen::Which::Metrics,
            &limits,
            state.server.clone(),
        )
    });
    let stats = state.server.clone();
    rt.spawn(axon::agent::listen::serve_http(
        incoming,
        exporter::router(state),
        limits.handshake_timeout,
        stats,
    ));
    g.bench_function("http_get_metrics_text_0.0.4", |b| {
        b.iter(|| black_box(scrape(addr, "*/*")))
    });
    g.bench_function("http_get_metrics_openmetrics", |b| {
        b.iter(|| {
            black_box(scrape(
                addr,
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            ))
        })
    });
    g.finish();
    rt.shutdown_background();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Render time of each panel for a 1,000-node ClusterView at 200×60 (target ≤ 2 ms), and
//! the time to derive the tables (done when data changes, not per frame).

#[path = "../tests/common/mod.rs"]
mod common;

use axon::ui::app::{NetView, Panel, UiState};
use axon::ui::derive::Derived;
use axon::ui::theme::{ColorDepth, Theme};
use axon::ui::{ViewState, render};
use common::cluster::{self, NOW};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let view = cluster::large(1000);
    let th = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
    let backend = ratatui::backend::TestBackend::new(200, 60);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    let mut g = c.benchmark_group("render_1000_nodes_200x60");
    g.sample_size(50);
    let mut views: Vec<(String, UiState)> = Panel::ALL
        .iter()
        .map(|p| {
            let mut ui = UiState::new(false, "default");
            ui.panel = *p;
            ui.width = 200;
            // Somewhere in the middle of the lists, not at the top.
            for q in Panel::ALL {
                ui.sel.insert(q, 500);
            }
            ui.node = 500;
            (p.title().to_lowercase(), ui)
        })
        .collect();
    let mut nics = UiState::new(false, "default");
    nics.panel = Panel::Network;
    nics.net_view = NetView::Nics;
    nics.width = 200;
    views.push(("network_nics".into(), nics));
    for (name, ui) in &views {
        let d = Derived::compute(&view, ui, NOW);
        g.bench_function(name.as_str(), |b| {
            b.iter(|| {
                term.draw(|f| {
                    render(
                        &ViewState {
                            cluster: &view,
                            derived: &d,
                            ui,
                            now_ms: NOW,
                        },
                        &th,
                        f,
                    )
                })
                .unwrap();
                black_box(());
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("derive_1000_nodes");
    g.sample_size(20);
    for (name, ui) in views
        .iter()
        .filter(|(n, _)| n == "overview" || n == "network")
    {
        g.bench_function(name.as_str(), |b| {
            b.iter(|| black_box(Derived::compute(&view, ui, NOW)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Render time of each panel at 200×60 for a 1,000- and a 10,000-node ClusterView
//! (target ≤ 1 ms a panel, and 10,000 nodes within 1.2× of 1,000: only visible rows are
//! built), and the time to derive a panel's rows when data changes (≤ 5 ms at 1,000).

#[path = "../tests/common/mod.rs"]
mod common;

use axon::fleet::view::ClusterView;
use axon::ui::theme::{ColorDepth, Theme};
use axon::ui::{Console, render};
use common::cluster::{self, NOW};
use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::hint::black_box;

/// A console on `view` showing panel `p` (by title), scrolled to the middle of its rows;
/// `keys` are pressed first (`v` for the NIC table).
fn console(view: &ClusterView, p: &str, keys: &str) -> Console {
    let mut c = Console::new(view, NOW, false, "default");
    c.width = 200;
    c.page = view.nodes.len() / 2;
    let i = c.find(p).unwrap();
    c.show(i, view);
    for ch in keys.chars() {
        c.key(KeyEvent::new(KeyCode::Char(ch), KeyModifiers::NONE), view);
    }
    // Half way through the lists; Cores shows the node in the middle.
    c.key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE), view);
    c.page = 54;
    if p == "cores" {
        let node = view.nodes.len() / 2;
        let facet = axon::fleet::health::Facet::Cores;
        c.focus(&axon::ui::nav::Focus::Node { node, facet }, view);
    }
    c
}

fn bench(c: &mut Criterion) {
    let th = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
    let panels: Vec<String> = {
        let v = cluster::large(3);
        Console::new(&v, NOW, false, "default")
            .panels
            .iter()
            .map(|p| p.title().to_lowercase())
            .collect()
    };
    for n in [1000, 10_000] {
        let view = cluster::large(n);
        let backend = ratatui::backend::TestBackend::new(200, 60);
        let mut term = ratatui::Terminal::new(backend).unwrap();
        let mut dp_view = view.clone();
        cluster::add_dataplane(&mut dp_view, 2);
        // (name, console, whether it shows `dp_view`: the view with a data plane).
        let mut views: Vec<(String, Console, bool)> = panels
            .iter()
            .map(|p| (p.clone(), console(&view, p, ""), false))
            .collect();
        views.push(("network_nics".into(), console(&view, "network", "v"), false));
        // The Stripes panel with every node a member (target ≤ 2 ms at 1,000 nodes).
        views.push((
            "stripes_dataplane".into(),
            console(&dp_view, "stripes", ""),
            true,
        ));
        let mut g = c.benchmark_group(format!("render_{n}_nodes_200x60"));
        g.sample_size(30);
        for (name, ui, dp) in &views {
            let v = if *dp { &dp_view } else { &view };
            g.bench_function(name.as_str(), |b| {
                b.iter(|| {
                    term.draw(|f| render(ui, v, &th, f)).unwrap();
                    black_box(());
                })
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("derive_{n}_nodes"));
        g.sample_size(10);
        for (name, ui, dp) in &mut views {
            let v = if *dp { &dp_view } else { &view };
            let i = ui.active;
            g.bench_function(name.as_str(), |b| {
                b.iter(|| {
                    // As when new data arrives: the health, then the shown panel's rows.
                    ui.invalidate();
                    ui.update(v, NOW);
                    black_box(i);
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

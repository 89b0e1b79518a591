//! Snapshot tests of every panel at 80×24 and 160×48, from fixed cluster views: a healthy
//! cluster, and one with a node down, a node stale, failing checks, a drive with warnings,
//! blocked ports and a core conflict. Style-bearing snapshots pin the health colours.

mod common;

use axon::fleet::view::ClusterView;
use axon::ui::app::{Detail, NetView, Panel, UiState};
use axon::ui::derive::Derived;
use axon::ui::theme::{ColorDepth, Theme};
use axon::ui::{ViewState, render, render_text};
use common::cluster::{self, NOW};
use std::sync::OnceLock;

fn healthy() -> &'static ClusterView {
    static V: OnceLock<ClusterView> = OnceLock::new();
    V.get_or_init(cluster::healthy)
}

fn troubled() -> &'static ClusterView {
    static V: OnceLock<ClusterView> = OnceLock::new();
    V.get_or_init(cluster::troubled)
}

fn theme() -> Theme {
    Theme::builtin("default", ColorDepth::TrueColor).unwrap()
}

fn ui_for(panel: Panel, w: u16) -> UiState {
    let mut ui = UiState::new(false, "default");
    ui.panel = panel;
    ui.width = w;
    ui
}

fn frame(v: &ClusterView, ui: &UiState, w: u16, h: u16) -> String {
    let d = Derived::compute(v, ui, NOW);
    render_text(
        &ViewState {
            cluster: v,
            derived: &d,
            ui,
            now_ms: NOW,
        },
        &theme(),
        w,
        h,
    )
}

fn name(p: Panel) -> String {
    p.title().to_lowercase()
}

#[test]
fn every_panel_of_a_healthy_cluster() {
    for (w, h) in [(80, 24), (160, 48)] {
        for p in Panel::ALL {
            insta::assert_snapshot!(
                format!("healthy_{}_{w}x{h}", name(p)),
                frame(healthy(), &ui_for(p, w), w, h)
            );
        }
    }
}

#[test]
fn every_panel_of_a_troubled_cluster() {
    for (w, h) in [(80, 24), (160, 48)] {
        for p in Panel::ALL {
            let mut ui = ui_for(p, w);
            if p == Panel::Cores {
                ui.node = 4; // axon005, the misconfigured host with the conflict
            }
            insta::assert_snapshot!(
                format!("troubled_{}_{w}x{h}", name(p)),
                frame(troubled(), &ui, w, h)
            );
        }
    }
}

#[test]
fn stale_and_down_nodes_are_never_shown_healthy() {
    let mut ui = ui_for(Panel::Cores, 80);
    ui.node = 3; // axon004, stale
    insta::assert_snapshot!(
        "troubled_cores_stale_node_80x24",
        frame(troubled(), &ui, 80, 24)
    );
    let text = frame(troubled(), &ui_for(Panel::Checks, 160), 160, 48);
    let row = text.lines().find(|l| l.contains("axon003")).unwrap();
    assert!(
        row.contains("DOWN") && !row.contains("✓"),
        "a down node's checks are not shown as passes: {row}"
    );
}

#[test]
fn network_nic_table_and_second_port_group() {
    let mut ui = ui_for(Panel::Network, 160);
    ui.net_view = NetView::Nics;
    insta::assert_snapshot!(
        "troubled_network_nics_160x48",
        frame(troubled(), &ui, 160, 48)
    );
    let mut ui = ui_for(Panel::Network, 80);
    ui.net_group = 1; // ssh
    insta::assert_snapshot!("troubled_network_ssh_80x24", frame(troubled(), &ui, 80, 24));
}

#[test]
fn drill_in_popups() {
    let mut ui = ui_for(Panel::Drives, 160);
    ui.detail = Some(Detail::Drive {
        node: 4,
        drive: "nvme2".into(),
    });
    insta::assert_snapshot!(
        "troubled_drive_detail_160x48",
        frame(troubled(), &ui, 160, 48)
    );
    let mut ui = ui_for(Panel::Checks, 80);
    ui.detail = Some(Detail::Check {
        node: 4,
        check: "net.arp".into(),
    });
    insta::assert_snapshot!(
        "troubled_check_detail_80x24",
        frame(troubled(), &ui, 80, 24)
    );
    let mut ui = ui_for(Panel::Network, 80);
    ui.detail = Some(Detail::Pair { from: 5, to: 1 });
    insta::assert_snapshot!("troubled_pair_detail_80x24", frame(troubled(), &ui, 80, 24));
}

#[test]
fn help_filter_and_too_small() {
    let mut ui = ui_for(Panel::Network, 80);
    ui.help = true;
    insta::assert_snapshot!("help_network_80x24", frame(troubled(), &ui, 80, 24));
    let mut ro = ui.clone();
    ro.read_only = true;
    let text = frame(troubled(), &ro, 80, 24);
    assert!(
        !text.contains("probe full port ranges"),
        "read-only hides mutating keys from help"
    );
    assert!(frame(troubled(), &ui, 80, 24).contains("probe full port ranges"));
    let mut ui = ui_for(Panel::Drives, 80);
    ui.filters.insert(Panel::Drives, "axon005".into());
    insta::assert_snapshot!(
        "troubled_drives_filtered_80x24",
        frame(troubled(), &ui, 80, 24)
    );
    insta::assert_snapshot!(
        "too_small_79x24",
        frame(troubled(), &ui_for(Panel::Overview, 79), 79, 24)
    );
}

/// Buffers with styles: a colour regression (a failing check drawn green, a down node not
/// highlighted) changes these snapshots.
#[test]
fn health_colours() {
    for (p, w, h) in [(Panel::Overview, 80, 24), (Panel::Checks, 80, 24)] {
        let ui = ui_for(p, w);
        let d = Derived::compute(troubled(), &ui, NOW);
        let backend = ratatui::backend::TestBackend::new(w, h);
        let mut term = ratatui::Terminal::new(backend).unwrap();
        term.draw(|f| {
            render(
                &ViewState {
                    cluster: troubled(),
                    derived: &d,
                    ui: &ui,
                    now_ms: NOW,
                },
                &theme(),
                f,
            )
        })
        .unwrap();
        insta::assert_debug_snapshot!(
            format!("styles_troubled_{}_{w}x{h}", name(p)),
            term.backend().buffer()
        );
    }
}

#[test]
fn mono_theme_keeps_selection_visible() {
    let ui = ui_for(Panel::Drives, 80);
    let d = Derived::compute(troubled(), &ui, NOW);
    let th = Theme::builtin("mono", ColorDepth::TrueColor).unwrap();
    let backend = ratatui::backend::TestBackend::new(80, 24);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    term.draw(|f| {
        render(
            &ViewState {
                cluster: troubled(),
                derived: &d,
                ui: &ui,
                now_ms: NOW,
            },
            &th,
            f,
        )
    })
    .unwrap();
    let buf = term.backend().buffer();
    // Row 3 is the first data row (tabs, caption, header): selected, hence reversed.
    let cell = &buf[(2, 3)];
    assert!(
        cell.modifier.contains(ratatui::style::Modifier::REVERSED),
        "{cell:?}"
    );
    assert_eq!(cell.fg, ratatui::style::Color::Reset);
    for y in 0..24 {
        for x in 0..80 {
            let c = &buf[(x, y)];
            assert!(
                matches!(c.fg, ratatui::style::Color::Reset)
                    && matches!(c.bg, ratatui::style::Color::Reset),
                "mono uses no colour at {x},{y}: {c:?}"
            );
        }
    }
}

/// A buffer with styles, for assertions on single cells.
fn buffer(v: &ClusterView, ui: &UiState, th: &Theme, w: u16, h: u16) -> ratatui::buffer::Buffer {
    let d = Derived::compute(v, ui, NOW);
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    term.draw(|f| {
        render(
            &ViewState {
                cluster: v,
                derived: &d,
                ui,
                now_ms: NOW,
            },
            th,
            f,
        )
    })
    .unwrap();
    term.backend().buffer().clone()
}

#[test]
fn smt_host_cores_fit_80x24() {
    // axon007 is the dual-socket Intel host with SMT on: 224 CPUs as t0/t1 rows.
    let mut ui = ui_for(Panel::Cores, 80);
    ui.node = 6;
    let text = frame(troubled(), &ui, 80, 24);
    insta::assert_snapshot!("troubled_cores_smt_80x24", text);
    assert!(text.contains("224 CPUs · SMT on"), "{text}");
    assert!(
        text.contains("t1"),
        "sibling threads get their own row: {text}"
    );
}

#[test]
fn popups_of_nodes_that_are_not_up_say_so_first() {
    let mut ui = ui_for(Panel::Drives, 80);
    ui.detail = Some(Detail::Drive {
        node: 2,
        drive: "nvme0".into(),
    });
    let text = frame(troubled(), &ui, 80, 24);
    insta::assert_snapshot!("troubled_down_drive_detail_80x24", text);
    assert!(
        text.contains("axon003 DOWN: last data 45s ago, not current"),
        "{text}"
    );
    assert!(text.contains("OK (last known)"), "{text}");
    let mut ui = ui_for(Panel::Checks, 80);
    ui.detail = Some(Detail::Check {
        node: 3,
        check: "swap.off".into(),
    });
    let text = frame(troubled(), &ui, 80, 24);
    assert!(text.contains("axon004 STALE: last data 7s ago"), "{text}");
    assert!(text.contains("PASS (last known)"), "{text}");
}

#[test]
fn cluster_checks_are_rows_with_a_detail() {
    let mut ui = ui_for(Panel::Checks, 80);
    let d = Derived::compute(troubled(), &ui, NOW);
    // The three cluster-wide checks come first, then the nodes.
    assert_eq!(d.rows(Panel::Checks, &ui), 3 + 8);
    ui.sel.insert(Panel::Checks, 0);
    let det = d.detail_for(&ui, troubled()).expect("a detail");
    assert_eq!(det, Detail::ClusterCheck("iommu.consistent".into()));
    ui.detail = Some(det);
    insta::assert_snapshot!(
        "troubled_cluster_check_detail_80x24",
        frame(troubled(), &ui, 80, 24)
    );
    ui.detail = None;
    ui.sel.insert(Panel::Checks, 3 + 4);
    ui.col = 0;
    assert_eq!(
        d.detail_for(&ui, troubled()),
        Some(Detail::Check {
            node: 4,
            check: "swap.off".into()
        })
    );
}

#[test]
fn header_keeps_node_counts_and_clickable_tabs_at_every_width() {
    for w in [80u16, 100, 160] {
        let ui = ui_for(Panel::Drives, w);
        let text = frame(troubled(), &ui, w, 24);
        let head = text.lines().next().unwrap();
        assert!(head.contains("●6 ◐1 ✕1"), "counts at {w} columns: {head}");
        // Each tab's title starts where tab_positions says it is.
        for (x0, x1, p) in axon::ui::tab_positions(w) {
            let cells: String = head
                .chars()
                .skip(x0 as usize)
                .take((x1 - x0) as usize)
                .collect();
            assert!(
                cells.contains(p.title()),
                "{:?} at {x0}..{x1} of {w} columns: `{cells}` in `{head}`",
                p
            );
        }
    }
}

#[test]
fn mono_cursor_stays_visible_on_axon_cores() {
    let th = Theme::builtin("mono", ColorDepth::TrueColor).unwrap();
    let mut ui = ui_for(Panel::Cores, 80);
    ui.node = 4; // axon005: cpu0 is free, cpu1 a drives core
    ui.cpu = 1;
    let buf = buffer(troubled(), &ui, &th, 80, 24);
    // Row 4 is NUMA 0's grid line; cells start after the 5-column label, 2 columns each.
    let text: String = (0..80).map(|x| buf[(x, 4)].symbol().to_string()).collect();
    assert!(text.trim_start().starts_with("· D"), "grid row: {text}");
    let cursor = &buf[(7, 4)];
    assert_eq!(cursor.symbol(), "D");
    assert!(
        cursor.modifier.contains(ratatui::style::Modifier::REVERSED),
        "the cursor on an Axon core is reverse video: {cursor:?}"
    );
    let other = &buf[(9, 4)];
    assert_eq!(other.symbol(), "D");
    assert!(
        !other.modifier.contains(ratatui::style::Modifier::REVERSED),
        "only the cursor is: {other:?}"
    );
}

/// Colour regressions on the Drives and Network panels change these.
#[test]
fn health_colours_of_drives_and_ports() {
    for (p, w, h) in [(Panel::Drives, 80, 24), (Panel::Network, 80, 24)] {
        let ui = ui_for(p, w);
        insta::assert_debug_snapshot!(
            format!("styles_troubled_{}_{w}x{h}", name(p)),
            buffer(troubled(), &ui, &theme(), w, h)
        );
    }
}

#[test]
fn unreadable_topology_and_nic_types_are_problems_not_silence() {
    let mut v = healthy().clone();
    {
        let s = v.nodes[1].snapshot.as_mut().unwrap();
        s.topology.as_mut().unwrap().unreadable.siblings =
            axon::model::CpuSet::parse_list("4-5").unwrap();
        s.network.as_mut().unwrap().unreadable_nics = vec!["ens9f0".into()];
    }
    let text = frame(&v, &ui_for(Panel::Overview, 160), 160, 48);
    assert!(
        text.contains("axon002 topology files unreadable for cpu 4-5"),
        "{text}"
    );
    assert!(
        text.contains("axon002 NIC type unreadable for ens9f0"),
        "{text}"
    );
    let mut ui = ui_for(Panel::Cores, 80);
    ui.node = 1;
    let text = frame(&v, &ui, 80, 24);
    assert!(text.contains("topology unreadable for cpu 4-5"), "{text}");
}

#[test]
fn overview_counts_failing_cluster_checks() {
    let mut v = healthy().clone();
    // One node without IOMMU units: iommu.consistent fails cluster-wide.
    let mut s = v.nodes[2].snapshot.clone().unwrap();
    s.host.as_mut().unwrap().iommu_units = Some(0);
    v.nodes[2].set_snapshot(Some(s));
    let text = frame(&v, &ui_for(Panel::Overview, 160), 160, 48);
    assert!(text.contains("iommu.consistent fail"), "listed: {text}");
    assert!(
        text.contains("Checks 1 failing cluster-wide"),
        "counted: {text}"
    );
    assert!(!text.contains("none failing"), "{text}");
    // With node checks failing as well, both are counted.
    let text = {
        let mut t = troubled().clone();
        let mut s = t.nodes[0].snapshot.clone().unwrap();
        s.host.as_mut().unwrap().iommu_units = Some(0);
        t.nodes[0].set_snapshot(Some(s));
        frame(&t, &ui_for(Panel::Overview, 160), 160, 48)
    };
    assert!(
        text.contains("failing on 3 node(s) + 1 cluster-wide"),
        "{text}"
    );
}

#[test]
fn drives_over_30_tb_show_a_warning() {
    let mut v = healthy().clone();
    let mut s = v.nodes[0].snapshot.clone().unwrap();
    // Sold as 32 TB (IDEMA size).
    s.nvme.as_mut().unwrap()[0].namespaces[0].size_bytes = 32_006_220_374_016;
    v.nodes[0].set_snapshot(Some(s));
    let mut ui = ui_for(Panel::Drives, 160);
    ui.drive_sort = axon::ui::app::DriveSort::Health;
    let text = frame(&v, &ui, 160, 48);
    let row = text
        .lines()
        .find(|l| l.contains("axon001") && l.contains("nvme0 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("WARNING") && row.contains("over 30 TB: sold as 32 TB"),
        "{row}"
    );
    // A 30.72 TB drive is the 30 TB class: no warning.
    let mut s = v.nodes[0].snapshot.clone().unwrap();
    s.nvme.as_mut().unwrap()[0].namespaces[0].size_bytes = 30_725_971_992_576;
    v.nodes[0].set_snapshot(Some(s));
    let text = frame(&v, &ui, 160, 48);
    assert!(!text.contains("over 30 TB"), "{text}");
}

#[test]
fn node_added_by_address_shows_the_hostname_its_agent_reports() {
    use axon::fleet::view::{NodeUpdate, NodeView, Thresholds};
    let mut snap = healthy().nodes[0].snapshot.clone().unwrap();
    snap.node.hostname = "axon042".into();
    let mut v = ClusterView::new(
        vec![NodeView::new("10.0.0.42".into(), "10.0.0.42:14000".into())],
        Thresholds::for_interval(1000),
    );
    v.apply(NodeUpdate::Snapshot {
        node: 0,
        data: Box::new(axon::wire::DecodedSnapshot {
            snapshot: snap,
            full: true,
            memory: None,
            pinning_changes_only: false,
            probes_changes_only: false,
        }),
        received_ms: NOW - 400,
    });
    assert_eq!(v.nodes[0].name, "axon042");
    assert_eq!(
        v.node_index("10.0.0.42"),
        Some(0),
        "still found by its address"
    );
    let text = frame(&v, &ui_for(Panel::Checks, 160), 160, 48);
    assert!(text.contains("axon042"), "{text}");
}

#[test]
fn numa_memory_and_huge_pages_are_labelled_free_total() {
    let text = frame(healthy(), &ui_for(Panel::Cores, 80), 80, 24);
    let line = text
        .lines()
        .find(|l| l.starts_with("NUMA 0 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("free/total 148/192G hp 4/24G"), "{line}");
    assert!(line.chars().count() <= 80, "{line}");
    let text = frame(healthy(), &ui_for(Panel::Cores, 160), 160, 48);
    assert!(
        text.contains("free/total: memory 148/192G, huge pages 4/24G"),
        "{text}"
    );
}

//! Snapshot tests of every panel at 80×24 and 160×48, from fixed cluster views: a healthy
//! cluster, and one with a node down, a node stale, failing checks, a drive with warnings,
//! blocked ports and a core conflict. Style-bearing snapshots pin the health colours.

mod common;

use axon::fleet::health::Facet;
use axon::fleet::view::ClusterView;
use axon::ui::console::Effect;
use axon::ui::nav::Focus;
use axon::ui::theme::{ColorDepth, Theme};
use axon::ui::{Console, render_buffer, render_text};
use common::cluster::{self, NOW};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
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

/// The console on `v`, showing `panel`, for a terminal `w` columns wide.
fn ui_for(v: &ClusterView, panel: &str, w: u16) -> Console {
    let mut c = Console::new(v, NOW, false, "default");
    c.width = w;
    let i = c.find(panel).unwrap_or_else(|| panic!("no panel {panel}"));
    c.show(i, v);
    c
}

/// The panels' names, in tab order.
fn panels() -> Vec<String> {
    Console::new(healthy(), NOW, false, "default")
        .panels
        .iter()
        .map(|p| p.title().to_lowercase())
        .collect()
}

fn frame(v: &ClusterView, c: &Console, w: u16, h: u16) -> String {
    render_text(c, v, &theme(), w, h)
}

/// Presses keys as an operator would: each character is a key, `\n` is Enter, `\x1b`
/// Esc, `→` and `↓` the arrows.
fn press(c: &mut Console, v: &ClusterView, keys: &str) {
    for ch in keys.chars() {
        let code = match ch {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            '→' => KeyCode::Right,
            '↓' => KeyCode::Down,
            c => KeyCode::Char(c),
        };
        c.key(KeyEvent::new(code, KeyModifiers::NONE), v);
    }
}

fn node(c: &mut Console, v: &ClusterView, node: usize) {
    assert!(c.focus(
        &Focus::Node {
            node,
            facet: Facet::Cores
        },
        v
    ));
}

#[test]
fn every_panel_of_a_healthy_cluster() {
    for (w, h) in [(80, 24), (160, 48)] {
        for p in panels() {
            insta::assert_snapshot!(
                format!("healthy_{p}_{w}x{h}"),
                frame(healthy(), &ui_for(healthy(), &p, w), w, h)
            );
        }
    }
}

#[test]
fn every_panel_of_a_troubled_cluster() {
    for (w, h) in [(80, 24), (160, 48)] {
        for p in panels() {
            let mut ui = ui_for(troubled(), &p, w);
            if p == "cores" {
                node(&mut ui, troubled(), 4); // axon005, the misconfigured host with the conflict
            }
            insta::assert_snapshot!(
                format!("troubled_{p}_{w}x{h}"),
                frame(troubled(), &ui, w, h)
            );
        }
    }
}

#[test]
fn stale_and_down_nodes_are_never_shown_healthy() {
    let mut ui = ui_for(troubled(), "cores", 80);
    node(&mut ui, troubled(), 3); // axon004, stale
    insta::assert_snapshot!(
        "troubled_cores_stale_node_80x24",
        frame(troubled(), &ui, 80, 24)
    );
    let text = frame(troubled(), &ui_for(troubled(), "checks", 160), 160, 48);
    let row = text.lines().find(|l| l.contains("axon003")).unwrap();
    assert!(
        row.contains("DOWN") && !row.contains("✓"),
        "a down node's checks are not shown as passes: {row}"
    );
}

#[test]
fn network_nic_table_and_second_port_group() {
    let mut ui = ui_for(troubled(), "network", 160);
    press(&mut ui, troubled(), "v");
    insta::assert_snapshot!(
        "troubled_network_nics_160x48",
        frame(troubled(), &ui, 160, 48)
    );
    let mut ui = ui_for(troubled(), "network", 80);
    press(&mut ui, troubled(), "o"); // ssh
    insta::assert_snapshot!("troubled_network_ssh_80x24", frame(troubled(), &ui, 80, 24));
}

#[test]
fn drill_in_popups() {
    let mut ui = ui_for(troubled(), "overview", 160);
    assert!(ui.focus(
        &Focus::Drive {
            node: 4,
            drive: "nvme2".into(),
        },
        troubled()
    ));
    insta::assert_snapshot!(
        "troubled_drive_detail_160x48",
        frame(troubled(), &ui, 160, 48)
    );
    let mut ui = ui_for(troubled(), "overview", 80);
    assert!(ui.focus(
        &Focus::Check {
            node: 4,
            check: "net.arp".into(),
        },
        troubled()
    ));
    insta::assert_snapshot!(
        "troubled_check_detail_80x24",
        frame(troubled(), &ui, 80, 24)
    );
    // Row axon006, column axon002, Enter.
    let mut ui = ui_for(troubled(), "network", 80);
    press(&mut ui, troubled(), "↓↓↓↓↓→\n");
    insta::assert_snapshot!("troubled_pair_detail_80x24", frame(troubled(), &ui, 80, 24));
}

#[test]
fn help_filter_and_too_small() {
    let mut ui = ui_for(troubled(), "network", 80);
    press(&mut ui, troubled(), "?");
    insta::assert_snapshot!("help_network_80x24", frame(troubled(), &ui, 80, 24));
    assert!(frame(troubled(), &ui, 80, 24).contains("probe full port ranges"));
    ui.read_only = true;
    let text = frame(troubled(), &ui, 80, 24);
    assert!(
        !text.contains("probe full port ranges"),
        "read-only hides mutating keys from help"
    );
    let mut ui = ui_for(troubled(), "drives", 80);
    press(&mut ui, troubled(), "/axon005\n");
    insta::assert_snapshot!(
        "troubled_drives_filtered_80x24",
        frame(troubled(), &ui, 80, 24)
    );
    insta::assert_snapshot!(
        "too_small_79x24",
        frame(troubled(), &ui_for(troubled(), "overview", 79), 79, 24)
    );
}

/// Buffers with styles: a colour regression (a failing check drawn green, a down node not
/// highlighted) changes these snapshots.
#[test]
fn health_colours() {
    for (p, w, h) in [("overview", 80, 24), ("checks", 80, 24)] {
        let ui = ui_for(troubled(), p, w);
        insta::assert_debug_snapshot!(
            format!("styles_troubled_{p}_{w}x{h}"),
            render_buffer(&ui, troubled(), &theme(), w, h)
        );
    }
}

#[test]
fn mono_theme_keeps_selection_visible() {
    let ui = ui_for(troubled(), "drives", 80);
    let th = Theme::builtin("mono", ColorDepth::TrueColor).unwrap();
    let buf = render_buffer(&ui, troubled(), &th, 80, 24);
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

#[test]
fn smt_host_cores_fit_80x24() {
    // axon007 is the dual-socket Intel host with SMT on: 224 CPUs as t0/t1 rows.
    let mut ui = ui_for(troubled(), "cores", 80);
    node(&mut ui, troubled(), 6);
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
    let mut ui = ui_for(troubled(), "drives", 80);
    ui.focus(
        &Focus::Drive {
            node: 2,
            drive: "nvme0".into(),
        },
        troubled(),
    );
    let text = frame(troubled(), &ui, 80, 24);
    insta::assert_snapshot!("troubled_down_drive_detail_80x24", text);
    assert!(
        text.contains("axon003 DOWN: last data 45s ago, not current"),
        "{text}"
    );
    assert!(text.contains("OK (last known)"), "{text}");
    let mut ui = ui_for(troubled(), "checks", 80);
    ui.focus(
        &Focus::Check {
            node: 3,
            check: "swap.off".into(),
        },
        troubled(),
    );
    let text = frame(troubled(), &ui, 80, 24);
    assert!(text.contains("axon004 STALE: last data 7s ago"), "{text}");
    assert!(text.contains("PASS (last known)"), "{text}");
}

#[test]
fn cluster_checks_are_rows_with_a_detail() {
    let mut ui = ui_for(troubled(), "checks", 80);
    // The three cluster-wide checks come first: Enter on the first opens it.
    press(&mut ui, troubled(), "\n");
    let text = frame(troubled(), &ui, 80, 24);
    insta::assert_snapshot!("troubled_cluster_check_detail_80x24", text);
    assert!(text.contains("cluster check iommu.consistent"), "{text}");
    // Then the nodes: the fifth node row is axon005, its first column swap.off.
    press(&mut ui, troubled(), "\x1b↓↓↓↓↓↓↓\n");
    let text = frame(troubled(), &ui, 80, 24);
    assert!(text.contains("axon005 swap.off"), "{text}");
    // 3 + 8 rows: the last is axon008.
    press(&mut ui, troubled(), "\x1bG\n");
    let text = frame(troubled(), &ui, 80, 24);
    assert!(text.contains("axon008 swap.off"), "{text}");
}

#[test]
fn header_keeps_node_counts_and_clickable_tabs_at_every_width() {
    for w in [80u16, 100, 160] {
        let ui = ui_for(troubled(), "drives", w);
        let text = frame(troubled(), &ui, w, 24);
        let head = text.lines().next().unwrap();
        assert!(head.contains("●6 ◐1 ✕1"), "counts at {w} columns: {head}");
        // Each tab's title starts where tab_positions says it is.
        for (x0, x1, p) in axon::ui::tab_positions(&ui, w) {
            let title = ui.panels[p].title();
            let cells: String = head
                .chars()
                .skip(x0 as usize)
                .take((x1 - x0) as usize)
                .collect();
            assert!(
                cells.contains(title),
                "{title} at {x0}..{x1} of {w} columns: `{cells}` in `{head}`"
            );
        }
    }
}

#[test]
fn mono_cursor_stays_visible_on_axon_cores() {
    let th = Theme::builtin("mono", ColorDepth::TrueColor).unwrap();
    let mut ui = ui_for(troubled(), "cores", 80);
    node(&mut ui, troubled(), 4); // axon005: cpu0 is free, cpu1 a drives core
    press(&mut ui, troubled(), "→");
    let buf = render_buffer(&ui, troubled(), &th, 80, 24);
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
    for (p, w, h) in [("drives", 80, 24), ("network", 80, 24)] {
        let ui = ui_for(troubled(), p, w);
        insta::assert_debug_snapshot!(
            format!("styles_troubled_{p}_{w}x{h}"),
            render_buffer(&ui, troubled(), &theme(), w, h)
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
    let text = frame(&v, &ui_for(&v, "overview", 160), 160, 48);
    assert!(
        text.contains("axon002 topology files unreadable for cpu 4-5"),
        "{text}"
    );
    assert!(
        text.contains("axon002 NIC type unreadable for ens9f0"),
        "{text}"
    );
    let mut ui = ui_for(&v, "cores", 80);
    node(&mut ui, &v, 1);
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
    let text = frame(&v, &ui_for(&v, "overview", 160), 160, 48);
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
        frame(&t, &ui_for(&t, "overview", 160), 160, 48)
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
    let ui = ui_for(&v, "drives", 160);
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
    let text = frame(&v, &ui_for(&v, "drives", 160), 160, 48);
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
            dataplane_carried: false,
        }),
        received_ms: NOW - 400,
    });
    assert_eq!(v.nodes[0].name, "axon042");
    assert_eq!(
        v.node_index("10.0.0.42"),
        Some(0),
        "still found by its address"
    );
    let text = frame(&v, &ui_for(&v, "checks", 160), 160, 48);
    assert!(text.contains("axon042"), "{text}");
}

#[test]
fn numa_memory_and_huge_pages_are_labelled_free_total() {
    let text = frame(healthy(), &ui_for(healthy(), "cores", 80), 80, 24);
    let line = text
        .lines()
        .find(|l| l.starts_with("NUMA 0 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("free/total 148/192G hp 4/24G"), "{line}");
    assert!(line.chars().count() <= 80, "{line}");
    let text = frame(healthy(), &ui_for(healthy(), "cores", 160), 160, 48);
    assert!(
        text.contains("free/total: memory 148/192G, huge pages 4/24G"),
        "{text}"
    );
}

/// Enter on a problem goes where it can be fixed: the panel that shows what it is about,
/// with it selected (and its popup open for a drive or a check).
#[test]
fn enter_on_a_problem_goes_to_the_panel_that_shows_it() {
    use axon::fleet::health::{Health, Subject};
    let v = troubled();
    let h = Health::compute(v, NOW);
    assert!(h.problems.len() > 5);
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in h.problems.iter().enumerate() {
        let mut ui = ui_for(v, "overview", 160);
        press(&mut ui, v, &"↓".repeat(i));
        press(&mut ui, v, "\n");
        let (panel, popup) = match &p.subject {
            Subject::Nodes => ("Overview", true),
            Subject::Node { facet, .. } => match facet {
                Facet::Status => ("Checks", false),
                Facet::Cores => ("Cores", false),
                Facet::Network => ("Network", false),
            },
            Subject::Drive { .. } => ("Drives", true),
            Subject::Check { .. } | Subject::ClusterCheck(_) => ("Checks", true),
            Subject::DataPlane => ("Stripes", false),
        };
        seen.insert(panel);
        assert_eq!(ui.panel().title(), panel, "problem {i}: {}", p.text);
        assert_eq!(ui.panel().popup_open(), popup, "problem {i}: {}", p.text);
        let text = frame(v, &ui, 160, 48);
        match &p.subject {
            Subject::Drive { node, drive } => {
                let name = &v.nodes[*node].name;
                assert!(
                    text.contains(&format!("{name} {drive} — Esc closes")),
                    "{text}"
                );
            }
            Subject::Check { node, check } => {
                let name = &v.nodes[*node].name;
                assert!(
                    text.contains(&format!("{name} {check} — Esc closes")),
                    "{text}"
                );
            }
            Subject::Node {
                node,
                facet: Facet::Cores,
            } => {
                let name = &v.nodes[*node].name;
                assert!(text.lines().nth(1).unwrap().contains(name), "{text}");
            }
            _ => {}
        }
    }
    assert!(seen.len() >= 3, "the troubled cluster leads to {seen:?}");
}

#[test]
fn no_panel_binds_a_key_twice_and_read_only_hides_mutating_keys() {
    let ui = Console::new(healthy(), NOW, false, "default");
    let mut mutating = 0;
    for p in &ui.panels {
        let mut seen = std::collections::HashSet::new();
        for b in axon::ui::keymap::live(p.keys(), false) {
            for k in b.keys {
                assert!(seen.insert(*k), "{k:?} bound twice in {}", p.title());
            }
            mutating += usize::from(b.mutating);
        }
        assert!(axon::ui::keymap::live(p.keys(), true).all(|b| !b.mutating));
    }
    assert!(mutating > 0, "the Network panel's P changes the cluster");
}

#[test]
fn cores_v_shows_the_plan_and_every_difference_from_what_runs() {
    let v = troubled();
    let mut ui = ui_for(v, "cores", 120);
    let running = frame(v, &ui, 120, 40);
    assert!(!running.contains("PLAN"), "{running}");
    press(&mut ui, v, "v");
    let text = frame(v, &ui, 120, 40);
    assert!(text.contains("PLAN"), "{text}");
    assert!(text.contains("plan 8D 16C 12F · differences ("), "{text}");
    assert!(
        text.contains("drive runs on cpu 1-4,48-51, which the plan gives to jobs (same NUMA domains: placement only)"),
        "{text}"
    );
    assert!(text.contains("plan: D drives"), "{text}");
    // The grid changed from owners to the plan's roles.
    assert_ne!(running, text);
    insta::assert_snapshot!("troubled_cores_plan_120x40", text);
    // The misconfigured host runs Slurm jobs on cores the plan keeps for Axon.
    node(&mut ui, v, 4);
    let bad = frame(v, &ui, 120, 40);
    assert!(
        bad.contains("axon005 UP EMULATED misconfigured PLAN"),
        "{bad}"
    );
    assert!(
        bad.contains("Slurm jobs run on cpu 28-31 that the plan keeps for Axon"),
        "{bad}"
    );
    node(&mut ui, v, 0);
    press(&mut ui, v, "v");
    assert_eq!(frame(v, &ui, 120, 40), running, "v again shows what runs");
}

#[test]
fn slurm_check_columns_show_only_where_a_node_reports_them() {
    let right = |c: &mut Console, v: &ClusterView| press(c, v, &"→".repeat(40));
    let mut ui = ui_for(healthy(), "checks", 160);
    right(&mut ui, healthy());
    let without = frame(healthy(), &ui, 160, 48);
    assert!(!without.contains("slurm."), "{without}");
    // One node given a slurm.conf reports the Slurm checks: their columns appear.
    let mut v = healthy().clone();
    let checks = v.nodes[2]
        .snapshot
        .as_mut()
        .and_then(|s| s.checks.as_mut())
        .unwrap();
    checks.push(axon::model::checks::CheckResult {
        id: "slurm.cgroup".into(),
        status: axon::model::checks::CheckStatus::Fail,
        observed: "ConstrainCores missing".into(),
        expected: "ConstrainCores=yes".into(),
        remedy: "add ConstrainCores=yes to cgroup.conf".into(),
    });
    let mut ui = ui_for(&v, "checks", 160);
    right(&mut ui, &v);
    let with = frame(&v, &ui, 160, 48);
    assert!(with.contains("slurm.cgroup"), "{with}");
}

/// The healthy view with a 4+2+1 data-plane cluster on its eight nodes: the last one away
/// past the grace period (its drive FAILED), a rebuild under way, counted by seven members.
fn with_dataplane() -> ClusterView {
    let mut v = healthy().clone();
    cluster::add_dataplane(&mut v, 1);
    v
}

#[test]
fn the_stripes_panel_shows_the_data_plane_its_members_report() {
    let v = with_dataplane();
    for (w, h) in [(80, 24), (160, 48)] {
        let ui = ui_for(&v, "stripes", w);
        insta::assert_snapshot!(format!("dataplane_stripes_{w}x{h}"), frame(&v, &ui, w, h));
    }
    // Reports older than 10 s are not shown as current.
    let mut old = v.clone();
    for n in &mut old.nodes {
        if n.cluster.is_some() {
            n.received_ms = Some(NOW - 11_000);
        }
    }
    let ui = ui_for(&old, "stripes", 80);
    assert!(frame(&old, &ui, 80, 24).contains("No data plane is reporting."));
}

#[test]
fn a_failed_data_plane_drive_is_a_problem_naming_its_remedy() {
    use axon::fleet::health::Health;
    use axon::fleet::view::Severity;
    let ok = with_dataplane();
    let mut v = ok.clone();
    let mut config = (**v.dp_config.as_ref().unwrap()).clone();
    config.drives.get_mut("drive-00002").unwrap().state = "FAILED".into();
    v.dp_config = Some(std::sync::Arc::new(config));
    let h = Health::compute(&v, NOW);
    let failed: Vec<_> = h
        .problems
        .iter()
        .filter(|p| p.text.contains("data-plane drive"))
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", h.problems);
    let p = failed[0];
    assert_eq!(p.severity, Severity::Warning);
    assert!(
        p.text.contains("FAILED") && p.text.contains("axon drive remove"),
        "{}",
        p.text
    );
    // Not without one.
    let h = Health::compute(&ok, NOW);
    assert!(
        !h.problems
            .iter()
            .any(|p| p.text.contains("data-plane drive")),
        "{:#?}",
        h.problems
    );
}

/// Stripes that lost chunks are a problem, so `axon status` exits non-zero for them:
/// a warning while they are rebuilt, critical when one more failure loses data or when
/// objects cannot be read; none when every stripe is whole. Enter leads to the Stripes
/// panel.
#[test]
fn data_plane_protection_is_a_problem_and_decides_the_verdict() {
    use axon::fleet::health::{Health, Verdict};
    use axon::fleet::view::Severity;
    let protection = |h: &Health| -> Vec<(Severity, String)> {
        h.problems
            .iter()
            .filter(|p| p.text.starts_with("data plane "))
            .map(|p| (p.severity, p.text.clone()))
            .collect()
    };
    let set = |v: &mut ClusterView, by_lost: &[u64], active: bool| {
        for n in &mut v.nodes {
            if let Some(d) = n.cluster.as_mut().and_then(|b| b.data.as_mut()) {
                d.stripes_by_lost = by_lost.to_vec();
                d.rebuild.active = active;
            }
        }
    };
    // The fixture: seven members, each with 12 stripes one chunk short, rebuilding.
    let mut v = with_dataplane();
    let h = Health::compute(&v, NOW);
    assert_eq!(
        protection(&h),
        [(
            Severity::Warning,
            "data plane REBUILDING: 84 stripe(s) with chunks lost, being rebuilt (axon cluster status)"
                .to_string()
        )]
    );
    assert_eq!(h.verdict, Verdict::Warnings);
    // m = 2 chunks lost, no rebuild: critical.
    set(&mut v, &[100, 0, 3, 0], false);
    let h = Health::compute(&v, NOW);
    let p = protection(&h);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, Severity::Critical);
    assert!(
        p[0].1
            .starts_with("data plane UNPROTECTED: 21 stripe(s) lost m = 2 chunks"),
        "{}",
        p[0].1
    );
    assert_eq!(h.verdict, Verdict::Critical);
    // More than m: unreadable, critical, and it leads to the Stripes panel.
    set(&mut v, &[100, 0, 0, 1], false);
    let h = Health::compute(&v, NOW);
    let p = protection(&h);
    assert!(
        p[0].1
            .starts_with("data plane UNAVAILABLE: 7 stripe(s) lost more than m = 2"),
        "{}",
        p[0].1
    );
    assert_eq!(p[0].0, Severity::Critical);
    let i = h
        .problems
        .iter()
        .position(|x| x.text.starts_with("data plane "))
        .unwrap();
    let mut ui = ui_for(&v, "overview", 160);
    press(&mut ui, &v, &"↓".repeat(i));
    press(&mut ui, &v, "\n");
    assert_eq!(ui.panel().title(), "Stripes");
    // Every stripe whole: no problem.
    set(&mut v, &[112, 0, 0, 0], false);
    assert!(protection(&Health::compute(&v, NOW)).is_empty());
}

#[test]
fn data_plane_changes_become_events_and_the_overview_line() {
    let mut v = with_dataplane();
    // The first look sets the baseline: no events from it.
    let before = v.events.len();
    v.observe(NOW);
    let texts = |v: &ClusterView| -> Vec<String> {
        v.events
            .iter()
            .skip(before)
            .map(|e| e.text.clone())
            .collect()
    };
    assert!(
        !texts(&v).iter().any(|t| t.contains("data plane")),
        "{:?}",
        texts(&v)
    );
    let b = v.dp_brief.clone().expect("a brief");
    assert_eq!(
        (b.io.as_str(), b.protection.as_str()),
        ("STARTED", "REBUILDING")
    );
    assert_eq!(b.rebuild, Some((8 * 7, 20 * 7)));
    let ui = ui_for(&v, "overview", 160);
    let f = frame(&v, &ui, 160, 48);
    assert!(f.contains("IO STARTED · REBUILDING · 4+2+1"), "{f}");
    // The rebuild ends, a drive fails, IO stops.
    let mut config = (**v.dp_config.as_ref().unwrap()).clone();
    config.io = axon::model::cluster::IoStatus::Stopped;
    config.epoch += 1;
    config.drives.get_mut("drive-00002").unwrap().state = "FAILED".into();
    v.dp_config = Some(std::sync::Arc::new(config));
    for n in &mut v.nodes {
        if let Some(b) = n.cluster.as_mut() {
            b.epoch += 1;
            if let Some(d) = b.data.as_mut() {
                d.rebuild.active = false;
                d.stripes_by_lost = vec![112, 0, 0, 0];
                d.protection = "OK".into();
            }
        }
        if n.cluster.is_some() {
            n.received_ms = Some(NOW + 1_000);
        }
    }
    v.observe(NOW + 1_000);
    let t = texts(&v);
    for want in [
        "data plane: IO STARTED → STOPPED",
        "data plane: protection REBUILDING → OK",
        "rebuild finished",
        // (A drive is named by its id's first 8 characters, as a UUID's.)
        &format!("drive drive-00 on {}: ACTIVE → FAILED", v.nodes[1].name),
    ] {
        assert!(t.iter().any(|x| x.contains(want)), "{want} not in {t:?}");
    }
    let failed = v
        .events
        .iter()
        .find(|e| e.text.contains("→ FAILED"))
        .unwrap();
    assert_eq!(failed.severity, axon::fleet::view::Severity::Critical);
}

/// Esc and a key typed quickly reach the console together, read as Alt+key: the console
/// takes it as Esc, then the key, so the job list closes and the key still acts.
#[test]
fn esc_then_a_key_read_as_alt_key_is_esc_then_the_key() {
    let v = troubled();
    let mut ui = ui_for(v, "network", 120);
    press(&mut ui, v, "J");
    assert!(ui.jobs.open, "J opens the job list");
    let effect = ui.key(KeyEvent::new(KeyCode::Char('P'), KeyModifiers::ALT), v);
    assert!(!ui.jobs.open, "the Esc part closed the job list");
    assert!(
        matches!(effect, Effect::Ask(_)),
        "the P part asks to probe: {effect:?}"
    );
    // In the filter line, Esc clears the filter and the key then acts on the panel.
    let mut ui = ui_for(v, "drives", 120);
    press(&mut ui, v, "/axon005");
    ui.key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::ALT), v);
    let text = frame(v, &ui, 120, 40);
    assert!(!text.contains("filter `axon005`"), "{text}");
    assert!(text.contains("keys in Drives"), "{text}");
}

/// The Drives panel's second table: each node's data-plane drives with their state and
/// usage, worst state first, as the nodes' `dataplane` sections report them.
#[test]
fn the_drives_panel_shows_data_plane_drives_with_state_and_usage() {
    use axon::model::dataplane::{DataDrive, NodeDataplane};
    let mut v = with_dataplane();
    let count = v.nodes.len();
    for (i, n) in v.nodes.iter_mut().enumerate() {
        let state = match i {
            1 => "FAILED",
            2 => "PHASING_OUT",
            _ => "ACTIVE",
        };
        let drive = |k: u64, state: &str| DataDrive {
            id: format!("drive-{}-{k}", i + 1),
            path: format!("/var/lib/axon/drive{k}.img"),
            state: state.into(),
            capacity_bytes: 256 << 20,
            used_bytes: if state == "ACTIVE" {
                (40 + 10 * k) << 20
            } else {
                0
            },
            chunks: if state == "ACTIVE" { 160 } else { 0 },
            problem: (state == "FAILED")
                .then(|| "read error: Input/output error (os error 5)".into()),
        };
        if i + 1 == count {
            continue;
        }
        if let Some(s) = n.snapshot.as_mut() {
            s.dataplane = Some(NodeDataplane {
                cluster: "3f2a9c4e-0000-4000-8000-000000000001".into(),
                node_id: i as u64 + 1,
                drives: vec![drive(0, state), drive(1, "ACTIVE")],
                ..Default::default()
            });
        }
    }
    let mut ui = ui_for(&v, "drives", 160);
    ui.invalidate();
    let f = frame(&v, &ui, 160, 48);
    insta::assert_snapshot!("dataplane_drives_160x48", f);
    assert!(f.contains("data-plane drives (14)"), "{f}");
    // Worst first: the FAILED drive leads, with its problem; then the phase-out.
    let lines: Vec<&str> = f.lines().collect();
    let at = |w: &str| {
        lines
            .iter()
            .position(|l| l.contains(w))
            .unwrap_or(usize::MAX)
    };
    assert!(at("FAILED") < at("PHASING_OUT"), "{f}");
    assert!(at("PHASING_OUT") < at(" ACTIVE "), "{f}");
    assert!(f.contains("Input/output error"), "{f}");
    // A filter reaches the data-plane table too.
    press(&mut ui, &v, "/PHASING");
    let f = frame(&v, &ui, 160, 48);
    assert!(f.contains("data-plane drives (1)"), "{f}");
}

/// A CPU's detail on the Cores panel says which data-plane container the node's plan puts
/// there, and whether its thread runs pinned there or the plan is only recorded.
#[test]
fn a_cpu_detail_names_the_data_plane_container_planned_on_it() {
    use axon::model::dataplane::{Container, NodeDataplane};
    let popup_with = |c: Container| {
        let mut v = healthy().clone();
        v.nodes[0].snapshot.as_mut().unwrap().dataplane = Some(NodeDataplane {
            containers: vec![c],
            ..Default::default()
        });
        let mut ui = ui_for(&v, "cores", 160);
        press(&mut ui, &v, "\n");
        frame(&v, &ui, 160, 48)
    };
    let all: Vec<u32> = (0..1024).collect();
    let f = popup_with(Container {
        name: "axon-drives0".into(),
        role: "drives".into(),
        cores: all.clone(),
        emulated: true,
        ..Default::default()
    });
    assert!(f.contains("data-plane container planned here"), "{f}");
    assert!(f.contains("axon-drives0 (drives): emulated host"), "{f}");
    let f = popup_with(Container {
        name: "axon-compute0".into(),
        role: "compute".into(),
        cores: all,
        threads: vec![4242],
        ..Default::default()
    });
    assert!(
        f.contains("axon-compute0 (compute): thread(s) 4242 pinned"),
        "{f}"
    );
    let f = popup_with(Container {
        name: "axon-frontend0".into(),
        role: "frontend".into(),
        cores: vec![100_000],
        ..Default::default()
    });
    assert!(!f.contains("data-plane container planned here"), "{f}");
}

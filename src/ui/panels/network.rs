//! Network: port reachability as a node × node matrix for one port group (`o` cycles the
//! group) with the blocked probes listed; `v` switches to the NIC table (MTU, NUMA node,
//! driver, ARP / rp_filter settings, source-based routing). Agents probe a rotating few
//! peers per round, so each result has an age: the selected pair's is shown, with the
//! time in which the row's node covers every peer; a result older than twice that is not
//! current (a pass shows as `·`).

use crate::fleet::view::NodeStatus;
use crate::fleet::view::fmt_age;
use crate::model::net::Finding;
use crate::model::probes::{ProbeState, SUMMARY_GROUPS};
use crate::ui::ViewState;
use crate::ui::app::{NetView, Panel};
use crate::ui::derive::{CELL_NONE, CELL_OLD, CELL_SELF, code_state};
use crate::ui::theme::Theme;
use crate::ui::widgets::table::{self, Col, offset};
use crate::ui::widgets::{SpanRow, fit, rule, status_glyph, status_style};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(f: &mut Frame, area: Rect, vs: &ViewState, th: &Theme) {
    match vs.ui.net_view {
        NetView::Matrix => matrix(f, area, vs, th),
        NetView::Nics => nics(f, area, vs, th),
    }
}

fn cell(th: &Theme, code: u8) -> (&'static str, Style) {
    match code {
        CELL_SELF => ("╲", th.dim),
        CELL_NONE => ("·", th.dim),
        // A result too old to be current: an old pass is no pass; an old failure stays
        // visible, in the stale style.
        c if c & CELL_OLD != 0 => match code_state(c) {
            Some(ProbeState::Filtered) => ("✕", th.stale),
            Some(ProbeState::Unreachable) => ("⊘", th.stale),
            _ => ("·", th.stale),
        },
        // Open and closed both mean the firewall lets the port through (closed: reachable,
        // nothing listening); what an operator hunts for is filtered and unreachable.
        c => match code_state(c) {
            Some(ProbeState::Open) | Some(ProbeState::Closed) => ("✓", th.ok),
            Some(ProbeState::Filtered) => ("✕", th.fail),
            Some(ProbeState::Unreachable) => ("⊘", th.fail),
            None => ("?", th.unknown),
        },
    }
}

/// `160s`, `12m`: how long a node's rotation takes to cover every peer.
fn fmt_span(ms: u64) -> String {
    if ms < 600_000 {
        format!("{}s", ms.div_ceil(1000))
    } else {
        format!("{}m", ms.div_ceil(60_000))
    }
}

/// The selected pair's probe age, and how the row's node rotates over its peers.
fn pair_line(vs: &ViewState, th: &Theme, from: usize, to: usize) -> Line<'static> {
    let nodes = &vs.cluster.nodes;
    let (a, b) = (&nodes[from], &nodes[to]);
    let mut spans = Vec::new();
    if from == to {
        spans.push(Span::styled(
            format!("{}: probes {} peers", a.name, a.digest.probe_peers.len()),
            th.dim,
        ));
    } else {
        spans.push(Span::styled(format!("{} → {}: ", a.name, b.name), th.dim));
        let age = a
            .digest
            .probe_cell(to)
            .and_then(|c| c.age_ms(vs.derived.now_ms));
        spans.push(match age {
            Some(ms) => Span::styled(format!("probed {} ago", fmt_age(Some(ms))), th.text),
            None => Span::styled("not probed yet", th.dim),
        });
    }
    if let Some(p) = a.snapshot.as_ref().and_then(|s| s.probes.as_ref()) {
        if p.coverage_ms > 0 {
            let per = if p.peers_per_round > 0 {
                format!(", {} peers a round", p.peers_per_round)
            } else {
                String::new()
            };
            spans.push(Span::styled(
                format!(" · every peer within {}{per}", fmt_span(p.coverage_ms)),
                th.dim,
            ));
        }
    }
    Line::from(spans)
}

/// Shortest distinguishing column labels: names without their common prefix.
fn labels<'a>(names: &[&'a str]) -> Vec<&'a str> {
    if names.len() < 2 {
        return names.to_vec();
    }
    let first = names[0];
    let mut common = first.len();
    for n in names {
        common = common.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    names
        .iter()
        .map(|n| if n.len() > common { &n[common..] } else { *n })
        .collect()
}

fn matrix(f: &mut Frame, area: Rect, vs: &ViewState, th: &Theme) {
    let d = vs.derived;
    let n = d.net_nodes.len();
    let w = area.width as usize;
    let group = SUMMARY_GROUPS[vs.ui.net_group.min(SUMMARY_GROUPS.len() - 1)];
    let ports = crate::model::ports::group(group)
        .map(|g| {
            g.ranges
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mut lines = vec![
        Line::from(vec![
            Span::styled("Port group ", th.header),
            Span::styled(format!("{group} ({ports})"), th.accent),
            Span::styled("  o: group  v: NICs", th.dim),
        ]),
        Line::from(vec![
            Span::styled("row probes column: ", th.dim),
            Span::styled("✓", th.ok),
            Span::styled(" passes  ", th.dim),
            Span::styled("✕", th.fail),
            Span::styled(" filtered  ", th.dim),
            Span::styled("⊘", th.fail),
            Span::styled(" unreachable  · no current data", th.dim),
        ]),
    ];
    let names: Vec<&str> = d
        .net_nodes
        .iter()
        .map(|&i| vs.cluster.nodes[i].name.as_str())
        .collect();
    if n > 0 {
        let (r, c) = (
            vs.ui.selected(Panel::Network).min(n - 1),
            vs.ui.col.min(n - 1),
        );
        lines.push(pair_line(vs, th, d.net_nodes[r], d.net_nodes[c]));
    }
    let labs = labels(&names);
    let label_h = labs
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1)
        .min(4);
    let name_w = 12usize;
    let cell_w = if name_w + 2 * n <= w { 2 } else { 1 };
    let vis_cols = (w.saturating_sub(name_w) / cell_w).max(1);
    let col_sel = vs.ui.col.min(n.saturating_sub(1));
    let col_off = offset(col_sel, vis_cols, n);
    let row_sel = vs.ui.selected(Panel::Network).min(n.saturating_sub(1));
    // Column labels, one character per line, bottom-aligned.
    for k in 0..label_h {
        let mut row = SpanRow::default();
        row.push(&" ".repeat(name_w), Style::default());
        for (j, l) in labs.iter().enumerate().skip(col_off).take(vis_cols) {
            let chars: Vec<char> = l.chars().collect();
            let pad = label_h.saturating_sub(chars.len());
            let ch = if k >= pad {
                chars.get(k - pad).copied().unwrap_or(' ')
            } else {
                ' '
            };
            let style = if j == col_sel {
                th.selection
            } else {
                th.header
            };
            row.push(&fit(&ch.to_string(), cell_w), style);
        }
        lines.push(row.line());
    }
    let blocked_min = 5u16;
    let head = lines.len() as u16;
    let room = area.height.saturating_sub(head + blocked_min) as usize;
    let body = room.max(3).min(n);
    let row_off = offset(row_sel, body, n);
    for (a, &ni) in d.net_nodes.iter().enumerate().skip(row_off).take(body) {
        let status = d.status[ni];
        let fresh = status == NodeStatus::Up;
        let name_style = if a == row_sel {
            th.selection
        } else {
            status_style(th, status)
        };
        let mut row = SpanRow::default();
        row.push(
            &fit(&format!("{} {}", status_glyph(status), names[a]), name_w),
            name_style,
        );
        let pad = " ".repeat(cell_w - 1);
        for b in col_off..(col_off + vis_cols).min(n) {
            let (mut g, mut style) =
                cell(th, d.net_cells.get(a * n + b).copied().unwrap_or(CELL_NONE));
            // A node that is not up: its old passes are not current ("·"); its old
            // failures stay visible, in the stale style.
            if !fresh && g != "╲" {
                if g == "✓" {
                    g = "·";
                }
                style = th.stale;
            }
            if a == row_sel && b == col_sel {
                style = style.patch(th.selection);
            }
            row.push(g, style);
            row.push(&pad, style);
        }
        lines.push(row.line());
    }
    let used = lines.len() as u16;
    lines.push(rule(
        &format!("blocked probes ({})", d.counts.probes_blocked),
        w,
        th,
    ));
    let rest = area.height.saturating_sub(used + 1) as usize;
    if d.blocked_pairs.is_empty() {
        let msg = if d.counts.probes_total == 0 {
            "no probe data yet (agents probe their --peers)"
        } else {
            "none: every probed port passes the firewalls"
        };
        lines.push(Line::from(Span::styled(
            format!("  {msg}"),
            if d.counts.probes_total == 0 {
                th.dim
            } else {
                th.ok
            },
        )));
    } else {
        for (_, text) in d.blocked_pairs.iter().take(rest) {
            lines.push(Line::from(Span::styled(format!("  {text}"), th.fail)));
        }
    }
    f.render_widget(Paragraph::new(lines).style(th.base), area);
}

fn nics(f: &mut Frame, area: Rect, vs: &ViewState, th: &Theme) {
    let d = vs.derived;
    let wide = area.width >= 140;
    let mut cols = vec![
        Col::new("NODE", 9),
        Col::new("NIC", 11),
        Col::new("DP", 2),
        Col::new("TYPE", 5),
        Col::right("MTU", 5),
        Col::right("SPEED", 6),
        Col::right("NUMA", 4),
        Col::new("ARP f/a/i", 9),
        Col::right("RP", 2),
        Col::new("SBR", 10),
        Col::new("DRIVER", 0),
    ];
    if wide {
        cols.push(Col::new("ADDRESSES", 30));
    }
    let caption = format!(
        "{} interfaces · dp = dataplane · ARP f/a/i = effective arp_filter/announce/ignore · v: port matrix",
        d.nic_rows.len()
    );
    table::render_captioned(
        f,
        area,
        th,
        &caption,
        &cols,
        d.nic_rows.len(),
        Some(vs.ui.selected(Panel::Network)),
        &|r, c| {
            let (ni, j) = d.nic_rows[r];
            let node = &vs.cluster.nodes[ni];
            let Some(net) = node.snapshot.as_ref().and_then(|s| s.network.as_ref()) else {
                return (String::new(), th.dim);
            };
            let Some(nic) = net.nics.get(j) else {
                return (String::new(), th.dim);
            };
            let eff = nic.ipconf.effective(&net.all);
            let bad = nic.findings(net);
            let judged = |f: Finding, ok: Style| match f {
                Finding::Ok => ok,
                Finding::Bad => th.fail,
                Finding::Unknown => th.unknown,
            };
            let dp = nic.dataplane;
            let opt = |v: Option<i32>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
            match cols[c].title {
                "NODE" => (node.name.clone(), status_style(th, d.status[ni])),
                "NIC" => (nic.name.to_string(), if dp { th.accent } else { th.text }),
                "DP" => ((if dp { "dp" } else { "" }).to_string(), th.accent),
                "TYPE" => (
                    match nic.kind.as_str() {
                        "ethernet" => "eth",
                        "infiniband" => "ib",
                        "loopback" => "lo",
                        _ => "other",
                    }
                    .to_string(),
                    th.dim,
                ),
                "MTU" => (
                    nic.mtu.map(|m| m.to_string()).unwrap_or_else(|| "?".into()),
                    judged(bad.mtu, th.text),
                ),
                "SPEED" => (
                    nic.speed_mbps
                        .map(|s| {
                            if s >= 1000 {
                                format!("{}G", s / 1000)
                            } else {
                                format!("{s}M")
                            }
                        })
                        .unwrap_or_else(|| "—".into()),
                    th.dim,
                ),
                "NUMA" => (
                    nic.numa_node
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "—".into()),
                    th.text,
                ),
                "ARP f/a/i" => (
                    format!(
                        "{}/{}/{}",
                        opt(eff.arp_filter),
                        opt(eff.arp_announce),
                        opt(eff.arp_ignore)
                    ),
                    judged(bad.arp, th.text),
                ),
                "RP" => (opt(eff.rp_filter), judged(bad.rp_filter, th.text)),
                "SBR" => {
                    let good = nic.sbr.iter().find(|r| r.table_routes_via_nic);
                    match (good, bad.sbr) {
                        (_, Finding::Unknown) => ("?".into(), th.unknown),
                        (Some(r), _) => (format!("table {}", r.table), th.ok),
                        (None, Finding::Bad) => ("missing".into(), th.fail),
                        (None, _) => ("—".into(), th.dim),
                    }
                }
                "DRIVER" => (
                    format!(
                        "{} {}",
                        nic.driver.as_deref().unwrap_or("—"),
                        nic.driver_version.as_deref().unwrap_or("")
                    ),
                    th.dim,
                ),
                _ => (
                    nic.addresses
                        .iter()
                        .map(|a| a.cidr.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    th.dim,
                ),
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_drop_the_common_prefix() {
        assert_eq!(
            labels(&["axon001", "axon002", "axon022"]),
            vec!["01", "02", "22"]
        );
        assert_eq!(labels(&["a", "b"]), vec!["a", "b"]);
        assert_eq!(labels(&["solo"]), vec!["solo"]);
    }
}

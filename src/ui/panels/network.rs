//! Network: port reachability as a node × node matrix for one port group (`o` cycles the
//! group) with the blocked probes listed; `v` switches to the NIC table (MTU, NUMA node,
//! driver, ARP / rp_filter settings, source-based routing). Agents probe a rotating few
//! peers per round, so each result has an age: the selected pair's is shown, with the
//! time in which the row's node covers every peer; a result older than twice that is not
//! current (a pass shows as `·`).

use crate::fleet::health::Facet;
use crate::fleet::view::NodeStatus;
use crate::fleet::view::fmt_age;
use crate::model::net::Finding;
use crate::model::probes::{ProbeState, SUMMARY_GROUPS};
use crate::ui::component::{Cx, Panel, Popup, list_filter, node_popup};
use crate::ui::confirm::Pending;
use crate::ui::keymap::{self, Binding};
use crate::ui::nav::{Action, Focus, List, Reply, matches, step};
use crate::ui::theme::Theme;
use crate::ui::widgets::table::{self, Col, offset};
use crate::ui::widgets::{SpanRow, fit, kv, rule, status_glyph, status_style};
use crossterm::event::{KeyCode, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetView {
    #[default]
    Matrix,
    Nics,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Open {
    Pair { from: usize, to: usize },
    Nic { node: usize, nic: String },
}

#[derive(Default)]
pub struct Network {
    list: List,
    /// The matrix's selected column.
    col: usize,
    view: NetView,
    /// Index into `SUMMARY_GROUPS`.
    group: usize,
    /// Nodes with blocked probes / NICs with wrong settings first.
    worst_first: bool,
    /// The nodes the filter shows, in order: the matrix's rows and columns.
    nodes: Vec<usize>,
    /// Length of the names' common prefix, which the column labels leave out, and the
    /// labels' height.
    label_prefix: usize,
    label_h: usize,
    blocked: Vec<(usize, String)>,
    /// (node, NIC index) of the NIC table.
    nic_rows: Vec<(usize, usize)>,
    popup: Option<Open>,
}

static KEYS: &[Binding] = &[
    keymap::LEFT,
    keymap::RIGHT,
    keymap::ENTER,
    keymap::SORT,
    Binding {
        keys: &[(KeyCode::Char('v'), KeyModifiers::NONE)],
        label: "v",
        action: Action::ToggleView,
        mutating: false,
        help: "port matrix / NIC table",
    },
    Binding {
        keys: &[(KeyCode::Char('o'), KeyModifiers::NONE)],
        label: "o",
        action: Action::NextGroup,
        mutating: false,
        help: "next port group",
    },
    Binding {
        keys: &[
            (KeyCode::Char('P'), KeyModifiers::SHIFT),
            (KeyCode::Char('P'), KeyModifiers::NONE),
        ],
        label: "P",
        action: Action::ProbeFull,
        mutating: true,
        help: "probe full port ranges from the selected node (admin)",
    },
];

/// Cell codes of the port matrix.
pub const CELL_NONE: u8 = 0;
pub const CELL_SELF: u8 = 255;
/// Added to a state's code when the result is older than its node's rotation should let
/// it be (twice the time to cover every peer): it is no longer current.
pub const CELL_OLD: u8 = 0x80;

/// Age beyond which a node's probe result to a peer is not current: twice the time its
/// rotation takes to cover every peer (at least 30 s, or three probe intervals when the
/// agent does not say).
pub fn probe_old_after_ms(p: &crate::model::probes::ProbeReport, interval_ms: u64) -> i64 {
    let cover = if p.coverage_ms > 0 {
        p.coverage_ms
    } else {
        interval_ms.saturating_mul(3)
    };
    i64::try_from(cover.saturating_mul(2))
        .unwrap_or(i64::MAX)
        .max(30_000)
}

pub fn state_code(s: ProbeState) -> u8 {
    1 + s.badness()
}

/// The state of a cell code (the `CELL_OLD` flag aside).
pub fn code_state(c: u8) -> Option<ProbeState> {
    let c = if c == CELL_SELF { c } else { c & !CELL_OLD };
    ProbeState::ALL.into_iter().find(|s| state_code(*s) == c)
}

impl Network {
    /// The cell codes of matrix row `a` for columns `cols`: the worst state seen from
    /// nodes[a] to each column's node for the selected group (1 + ProbeState badness,
    /// `CELL_OLD` added when too old to be current), CELL_NONE or CELL_SELF.
    fn row_cells(&self, cx: &Cx, a: usize, cols: std::ops::Range<usize>) -> Vec<u8> {
        let node = &cx.view.nodes[self.nodes[a]];
        let probes = node.snapshot.as_ref().and_then(|s| s.probes.as_ref());
        let interval = node
            .snapshot
            .as_ref()
            .and_then(|s| s.collector(crate::model::snapshot::Section::Probes))
            .map_or(0, |c| c.interval_ms);
        let g = self.group.min(SUMMARY_GROUPS.len() - 1);
        let old_after = probes.map(|p| probe_old_after_ms(p, interval));
        cols.map(|b| {
            if b == a {
                return CELL_SELF;
            }
            let Some(old_after) = old_after else {
                return CELL_NONE;
            };
            // Peers were resolved to node indices when the probes arrived.
            match node.digest.probe_cell(self.nodes[b]).and_then(|c| {
                let st = c.state(g)?;
                let old = node
                    .digest
                    .probe_age_ms(c, cx.now_ms)
                    .is_none_or(|age| age > old_after);
                Some(state_code(st) | if old { CELL_OLD } else { 0 })
            }) {
                Some(code) => code,
                None => CELL_NONE,
            }
        })
        .collect()
    }

    fn rows(&self) -> usize {
        match self.view {
            NetView::Matrix => self.nodes.len(),
            NetView::Nics => self.nic_rows.len(),
        }
    }

    /// The node of the selected row.
    fn row_node(&self) -> Option<usize> {
        let sel = self.list.sel;
        match self.view {
            NetView::Matrix => self.nodes.get(sel).copied(),
            NetView::Nics => self.nic_rows.get(sel).map(|r| r.0),
        }
    }
}

impl Panel for Network {
    fn title(&self) -> &'static str {
        "Network"
    }

    fn keys(&self) -> &'static [Binding] {
        KEYS
    }

    fn derive(&mut self, cx: &Cx) {
        let view = cx.view;
        let f = &self.list.filter;
        self.nodes = (0..view.nodes.len())
            .filter(|&i| matches(f, &[&view.nodes[i].name]))
            .collect();
        if self.worst_first {
            let blocked = |i: usize| {
                view.nodes[i]
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.probes.as_ref())
                    .map_or(0, |p| p.blocked_total)
            };
            self.nodes.sort_by_key(|&i| {
                (
                    std::cmp::Reverse(cx.status(i) != NodeStatus::Up),
                    std::cmp::Reverse(blocked(i)),
                    i,
                )
            });
        }
        self.nic_rows = Vec::new();
        for &i in &self.nodes {
            let n = view.nodes[i]
                .snapshot
                .as_ref()
                .and_then(|s| s.network.as_ref())
                .map_or(0, |net| net.nics.len());
            self.nic_rows.extend((0..n).map(|j| (i, j)));
        }
        if self.worst_first {
            let badness = |&(i, j): &(usize, usize)| -> u32 {
                let Some(net) = view.nodes[i]
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.network.as_ref())
                else {
                    return 0;
                };
                net.nics.get(j).map_or(0, |nic| nic.findings(net).weight())
            };
            // Stable: equally bad NICs keep the node order.
            self.nic_rows
                .sort_by_cached_key(|r| std::cmp::Reverse(badness(r)));
        }
        self.blocked = Vec::new();
        // The matrix's column labels: the names without their common prefix, at most
        // four characters high.
        let names = self.nodes.iter().map(|&i| view.nodes[i].name.as_str());
        self.label_prefix = common_prefix(names.clone());
        self.label_h = names
            .map(|n| label(n, self.label_prefix).chars().count())
            .max()
            .unwrap_or(1)
            .min(4);
        // Matrix cells are computed when drawn, for the rows and columns in view: the
        // matrix of 10,000 nodes would be 100 million of them.
        if self.view != NetView::Matrix {
            return;
        }
        for &i in &self.nodes {
            let node = &view.nodes[i];
            let Some(p) = node.snapshot.as_ref().and_then(|s| s.probes.as_ref()) else {
                continue;
            };
            for r in p.blocked() {
                self.blocked.push((
                    i,
                    format!(
                        "{} → {}:{}/{} {}{}",
                        node.name,
                        r.peer,
                        r.port,
                        r.proto.as_str(),
                        r.state.as_str(),
                        r.detail
                            .as_ref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
    }

    fn act(&mut self, a: Action, cx: &Cx) -> Reply {
        if self.list.nav(a, self.rows(), cx.page) {
            return Reply::Done;
        }
        match a {
            Action::Left | Action::Right if self.view == NetView::Matrix => {
                self.col = step(self.col, a, self.nodes.len());
                Reply::Done
            }
            Action::Sort => {
                self.worst_first = !self.worst_first;
                self.derive(cx);
                Reply::Message(if self.worst_first {
                    "problems first (blocked probes, wrong NIC settings)".into()
                } else {
                    "nodes in inventory order".into()
                })
            }
            Action::ToggleView => {
                self.view = match self.view {
                    NetView::Matrix => NetView::Nics,
                    NetView::Nics => NetView::Matrix,
                };
                self.list.sel = 0;
                self.col = 0;
                self.derive(cx);
                Reply::Done
            }
            Action::NextGroup => {
                self.group = (self.group + 1) % SUMMARY_GROUPS.len();
                self.derive(cx);
                Reply::Done
            }
            Action::ProbeFull => match self.row_node() {
                Some(node) => Reply::Ask(Pending::ProbeFull { node }),
                None => Reply::Done,
            },
            Action::Enter => {
                let sel = self.list.sel;
                self.popup = match self.view {
                    NetView::Matrix => self
                        .nodes
                        .get(sel)
                        .zip(self.nodes.get(self.col))
                        .map(|(&from, &to)| Open::Pair { from, to }),
                    NetView::Nics => self.nic_rows.get(sel).and_then(|&(n, j)| {
                        let nic = cx.view.nodes[n]
                            .snapshot
                            .as_ref()?
                            .network
                            .as_ref()?
                            .nics
                            .get(j)?;
                        Some(Open::Nic {
                            node: n,
                            nic: nic.name.to_string(),
                        })
                    }),
                };
                Reply::Done
            }
            _ => Reply::Ignored,
        }
    }

    fn wants(&self, to: &Focus) -> bool {
        matches!(
            to,
            Focus::Node {
                facet: Facet::Network,
                ..
            }
        )
    }

    fn focus(&mut self, to: &Focus, _cx: &Cx) {
        if let Focus::Node { node, .. } = to {
            if let Some(row) = self.nodes.iter().position(|n| n == node) {
                self.list.sel = row;
            }
        }
    }

    fn popup(&self, cx: &Cx, th: &Theme) -> Option<Popup> {
        Some(match self.popup.as_ref()? {
            Open::Pair { from, to } => node_popup(cx, *from, th, pair_popup(cx, *from, *to, th)),
            Open::Nic { node, nic } => node_popup(cx, *node, th, nic_popup(cx, *node, nic, th)),
        })
    }

    fn popup_open(&self) -> bool {
        self.popup.is_some()
    }

    fn close_popup(&mut self) -> bool {
        self.popup.take().is_some()
    }

    list_filter!(list);

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
        match self.view {
            NetView::Matrix => matrix(self, f, area, cx, th),
            NetView::Nics => nics(self, f, area, cx, th),
        }
    }
}

/// What a node's probes to a peer found, group by group, and when.
fn pair_popup(cx: &Cx, from: usize, to: usize, th: &Theme) -> Popup {
    let (a, b) = (&cx.view.nodes[from], &cx.view.nodes[to]);
    let mut l = Vec::new();
    let probes = a.snapshot.as_ref().and_then(|s| s.probes.as_ref());
    let bhost = b
        .endpoint
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .unwrap_or_default();
    let cell = a.digest.probe_cell(to);
    match cell {
        None => l.push(Line::from(format!(
            "{} reports no probes to {}",
            a.name, b.name
        ))),
        Some(c) => {
            for (g, st) in SUMMARY_GROUPS.iter().zip(c.states()) {
                l.push(kv(g, st.map(|x| x.as_str()).unwrap_or("not probed"), th));
            }
            // Agents probe a rotating few peers per round: each result has an age.
            l.push(kv(
                "probed",
                a.digest
                    .probe_age_ms(c, cx.now_ms)
                    .map(|age| format!("{} ago", fmt_age(Some(age))))
                    .unwrap_or_else(|| "—".into()),
                th,
            ));
            l.push(kv(
                "best RTT",
                c.rtt_ms()
                    .map(|r| {
                        if r == 0 {
                            "under 1 ms".to_string()
                        } else {
                            format!("{r} ms")
                        }
                    })
                    .unwrap_or_else(|| "—".into()),
                th,
            ));
            let blocked = probes
                .into_iter()
                .flat_map(|p| p.blocked())
                .filter(|r| r.peer == b.name || r.peer == bhost);
            for r in blocked {
                l.push(Line::from(Span::styled(
                    format!(
                        "{}/{} {}{}",
                        r.port,
                        r.proto.as_str(),
                        r.state.as_str(),
                        r.detail
                            .as_ref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    ),
                    th.fail,
                )));
            }
        }
    }
    (format!("{} → {}", a.name, b.name), l)
}

/// A NIC's identity and the kernel settings the checks judge.
fn nic_popup(cx: &Cx, node: usize, nic: &str, th: &Theme) -> Popup {
    let n = &cx.view.nodes[node];
    let net = n.snapshot.as_ref().and_then(|s| s.network.as_ref());
    let Some(x) = net.and_then(|nt| nt.nic(nic)) else {
        return (
            format!("{} {nic}", n.name),
            vec![Line::from("no longer reported")],
        );
    };
    let all = net.map(|nt| nt.all).unwrap_or_default();
    let e = x.ipconf.effective(&all);
    let o = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    let mut l = vec![
        kv(
            "type",
            format!("{} (ARPHRD {})", x.kind.as_str(), x.arphrd),
            th,
        ),
        kv("dataplane", if x.dataplane { "yes" } else { "no" }, th),
        kv(
            "state / MTU",
            format!(
                "{} / {}",
                x.operstate,
                x.mtu.map(|m| m.to_string()).unwrap_or_else(|| "?".into())
            ),
            th,
        ),
        kv(
            "speed",
            x.speed_mbps
                .map(|s| format!("{s} Mb/s"))
                .unwrap_or_else(|| "—".into()),
            th,
        ),
        kv(
            "NUMA node",
            x.numa_node
                .map(|v| v.to_string())
                .unwrap_or_else(|| "—".into()),
            th,
        ),
        kv(
            "driver",
            format!(
                "{} {}",
                x.driver.as_deref().unwrap_or("—"),
                x.driver_version.as_deref().unwrap_or("")
            ),
            th,
        ),
        kv(
            "PCI / MAC",
            format!(
                "{} / {}",
                x.pci_address.as_deref().unwrap_or("—"),
                x.mac.as_deref().unwrap_or("—")
            ),
            th,
        ),
        kv(
            "addresses",
            x.addresses
                .iter()
                .map(|a| a.cidr.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            th,
        ),
        kv(
            "effective ARP",
            format!(
                "arp_filter={} arp_announce={} arp_ignore={} rp_filter={}",
                o(e.arp_filter),
                o(e.arp_announce),
                o(e.arp_ignore),
                o(e.rp_filter)
            ),
            th,
        ),
    ];
    if x.sbr.is_empty() {
        l.push(kv("SBR", "no source rule", th));
    }
    for r in &x.sbr {
        l.push(kv(
            "SBR",
            format!(
                "prio {} from {} table {}{}",
                r.priority,
                r.from,
                r.table,
                if r.table_routes_via_nic {
                    ""
                } else {
                    " (table has no route via this NIC)"
                }
            ),
            th,
        ));
    }
    (format!("{} {nic}", n.name), l)
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
fn pair_line(cx: &Cx, th: &Theme, from: usize, to: usize) -> Line<'static> {
    let nodes = &cx.view.nodes;
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
            .and_then(|c| a.digest.probe_age_ms(c, cx.now_ms));
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

/// Length (in bytes, on a character boundary) of the prefix all `names` share; none
/// when there are fewer than two.
fn common_prefix<'a>(mut names: impl Iterator<Item = &'a str>) -> usize {
    let Some(first) = names.next() else { return 0 };
    let mut common = first.len();
    let mut count = 1;
    for n in names {
        count += 1;
        common = common.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    if count < 2 {
        return 0;
    }
    while !first.is_char_boundary(common) {
        common -= 1;
    }
    common
}

/// A column label: the name without the common prefix (the whole name if nothing is
/// left).
fn label(name: &str, prefix: usize) -> &str {
    if name.len() > prefix && name.is_char_boundary(prefix) {
        &name[prefix..]
    } else {
        name
    }
}

fn matrix(p: &Network, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
    let n = p.nodes.len();
    let w = area.width as usize;
    let group = SUMMARY_GROUPS[p.group.min(SUMMARY_GROUPS.len() - 1)];
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
    let name = |pos: usize| cx.view.nodes[p.nodes[pos]].name.as_str();
    if n > 0 {
        let (r, c) = (p.list.sel.min(n - 1), p.col.min(n - 1));
        lines.push(pair_line(cx, th, p.nodes[r], p.nodes[c]));
    }
    let label_h = p.label_h;
    let name_w = 12usize;
    let cell_w = if name_w + 2 * n <= w { 2 } else { 1 };
    let vis_cols = (w.saturating_sub(name_w) / cell_w).max(1);
    let col_sel = p.col.min(n.saturating_sub(1));
    let col_off = offset(col_sel, vis_cols, n);
    let row_sel = p.list.sel.min(n.saturating_sub(1));
    // Column labels, one character per line, bottom-aligned.
    for k in 0..label_h {
        let mut row = SpanRow::default();
        row.push(&" ".repeat(name_w), Style::default());
        for j in col_off..(col_off + vis_cols).min(n) {
            let chars: Vec<char> = label(name(j), p.label_prefix).chars().collect();
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
    for (a, &ni) in p.nodes.iter().enumerate().skip(row_off).take(body) {
        let status = cx.status(ni);
        let fresh = status == NodeStatus::Up;
        let name_style = if a == row_sel {
            th.selection
        } else {
            status_style(th, status)
        };
        let mut row = SpanRow::default();
        row.push(
            &fit(&format!("{} {}", status_glyph(status), name(a)), name_w),
            name_style,
        );
        let pad = " ".repeat(cell_w - 1);
        let cols = col_off..(col_off + vis_cols).min(n);
        for (b, code) in cols.clone().zip(p.row_cells(cx, a, cols)) {
            let (mut g, mut style) = cell(th, code);
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
        &format!("blocked probes ({})", cx.health.counts.probes_blocked),
        w,
        th,
    ));
    let rest = area.height.saturating_sub(used + 1) as usize;
    if p.blocked.is_empty() {
        let msg = if cx.health.counts.probes_total == 0 {
            "no probe data yet (agents probe their --peers)"
        } else {
            "none: every probed port passes the firewalls"
        };
        lines.push(Line::from(Span::styled(
            format!("  {msg}"),
            if cx.health.counts.probes_total == 0 {
                th.dim
            } else {
                th.ok
            },
        )));
    } else {
        for (_, text) in p.blocked.iter().take(rest) {
            lines.push(Line::from(Span::styled(format!("  {text}"), th.fail)));
        }
    }
    f.render_widget(Paragraph::new(lines).style(th.base), area);
}

/// The NIC table's columns.
#[derive(Clone, Copy)]
enum N {
    Node,
    Nic,
    Dataplane,
    Type,
    Mtu,
    Speed,
    Numa,
    Arp,
    RpFilter,
    Sbr,
    Driver,
    Addresses,
}

/// Wide terminals add the addresses.
const NIC_COLS: [(N, Col); 12] = [
    (N::Node, Col::new("NODE", 9)),
    (N::Nic, Col::new("NIC", 11)),
    (N::Dataplane, Col::new("DP", 2)),
    (N::Type, Col::new("TYPE", 5)),
    (N::Mtu, Col::right("MTU", 5)),
    (N::Speed, Col::right("SPEED", 6)),
    (N::Numa, Col::right("NUMA", 4)),
    (N::Arp, Col::new("ARP f/a/i", 9)),
    (N::RpFilter, Col::right("RP", 2)),
    (N::Sbr, Col::new("SBR", 10)),
    (N::Driver, Col::new("DRIVER", 0)),
    (N::Addresses, Col::new("ADDRESSES", 30)),
];

fn nics(p: &Network, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
    let wide = area.width >= 140;
    let cols = &NIC_COLS[..if wide { 12 } else { 11 }];
    let caption = format!(
        "{} interfaces · dp = dataplane · ARP f/a/i = effective arp_filter/announce/ignore · v: port matrix",
        p.nic_rows.len()
    );
    table::render_captioned(
        f,
        area,
        th,
        &caption,
        cols,
        p.nic_rows.len(),
        Some(p.list.sel),
        &|r, c| {
            let (ni, j) = p.nic_rows[r];
            let node = &cx.view.nodes[ni];
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
            match c {
                N::Node => (node.name.clone(), status_style(th, cx.status(ni))),
                N::Nic => (nic.name.to_string(), if dp { th.accent } else { th.text }),
                N::Dataplane => ((if dp { "dp" } else { "" }).to_string(), th.accent),
                N::Type => (
                    match nic.kind.as_str() {
                        "ethernet" => "eth",
                        "infiniband" => "ib",
                        "loopback" => "lo",
                        _ => "other",
                    }
                    .to_string(),
                    th.dim,
                ),
                N::Mtu => (
                    nic.mtu.map(|m| m.to_string()).unwrap_or_else(|| "?".into()),
                    judged(bad.mtu, th.text),
                ),
                N::Speed => (
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
                N::Numa => (
                    nic.numa_node
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "—".into()),
                    th.text,
                ),
                N::Arp => (
                    format!(
                        "{}/{}/{}",
                        opt(eff.arp_filter),
                        opt(eff.arp_announce),
                        opt(eff.arp_ignore)
                    ),
                    judged(bad.arp, th.text),
                ),
                N::RpFilter => (opt(eff.rp_filter), judged(bad.rp_filter, th.text)),
                N::Sbr => {
                    let good = nic.sbr.iter().find(|r| r.table_routes_via_nic);
                    match (good, bad.sbr) {
                        (_, Finding::Unknown) => ("?".into(), th.unknown),
                        (Some(r), _) => (format!("table {}", r.table), th.ok),
                        (None, Finding::Bad) => ("missing".into(), th.fail),
                        (None, _) => ("—".into(), th.dim),
                    }
                }
                N::Driver => (
                    format!(
                        "{} {}",
                        nic.driver.as_deref().unwrap_or("—"),
                        nic.driver_version.as_deref().unwrap_or("")
                    ),
                    th.dim,
                ),
                N::Addresses => (
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

    fn labels<'a>(names: &[&'a str]) -> Vec<&'a str> {
        let k = common_prefix(names.iter().copied());
        names.iter().map(|n| label(n, k)).collect()
    }

    #[test]
    fn labels_drop_the_common_prefix() {
        assert_eq!(
            labels(&["axon001", "axon002", "axon022"]),
            vec!["01", "02", "22"]
        );
        assert_eq!(labels(&["a", "b"]), vec!["a", "b"]);
        assert_eq!(labels(&["solo"]), vec!["solo"]);
        assert_eq!(labels(&["nœud1", "nœud2"]), vec!["1", "2"]);
        assert_eq!(
            labels(&["é1", "è2"]),
            vec!["é1", "è2"],
            "no split inside a character"
        );
    }
}

//! Stripes: what `weka status` shows of the data plane, from the members' reports
//! (`ClusterView::dataplane`): scheme and hot spares, IO status, protection, stripes by
//! chunks lost, the rebuild with its progress, rate and ETA, members away, and each node's
//! drives by state. Until an agent reports a cluster the panel says so, and shows only what
//! can be derived truthfully.

use crate::ui::component::{Cx, Panel};
use crate::ui::confirm::Pending;
use crate::ui::keymap::Binding;
use crate::ui::nav::{Action, Focus, Reply};
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

static KEYS: &[Binding] = &[
    Binding {
        keys: &[
            (
                crossterm::event::KeyCode::Char('I'),
                crossterm::event::KeyModifiers::SHIFT,
            ),
            (
                crossterm::event::KeyCode::Char('I'),
                crossterm::event::KeyModifiers::NONE,
            ),
        ],
        label: "I",
        action: Action::StartIo,
        mutating: true,
        help: "start the cluster's IO (start-io, admin)",
    },
    Binding {
        keys: &[
            (
                crossterm::event::KeyCode::Char('X'),
                crossterm::event::KeyModifiers::SHIFT,
            ),
            (
                crossterm::event::KeyCode::Char('X'),
                crossterm::event::KeyModifiers::NONE,
            ),
        ],
        label: "X",
        action: Action::StopIo,
        mutating: true,
        help: "stop the cluster's IO (stop-io, admin; type stop-io to confirm)",
    },
];

/// 16 data + 4 parity + 2 hot spares: the seed's bare-metal protection scheme.
pub const FAILURE_DOMAINS_16_4_2: usize = 22;

#[derive(Default)]
pub struct Stripes {
    filter: String,
    /// The data plane as the members report it, added up once per change of the data
    /// (not per frame: at 1,000 nodes that is 1,000 shares).
    dataplane: Option<crate::fleet::view::DataplaneView>,
}

impl Panel for Stripes {
    fn title(&self) -> &'static str {
        "Stripes"
    }

    fn derive(&mut self, cx: &Cx) {
        self.dataplane = cx.view.dataplane(cx.now_ms);
    }

    fn keys(&self) -> &'static [Binding] {
        KEYS
    }

    fn act(&mut self, a: Action, cx: &Cx) -> Reply {
        let start = match a {
            Action::StartIo => true,
            Action::StopIo => false,
            _ => return Reply::Ignored,
        };
        // Any member that is up takes it (it hands the change to the leader).
        let member = (0..cx.view.nodes.len()).find(|&i| {
            cx.status(i) == crate::fleet::NodeStatus::Up
                && cx.view.nodes[i]
                    .cluster
                    .as_ref()
                    .is_some_and(|b| !b.cluster.is_empty())
        });
        match member {
            Some(node) => Reply::Ask(Pending::Io { node, start }),
            None => Reply::Message("no cluster member is up to take it".into()),
        }
    }

    fn wants(&self, to: &Focus) -> bool {
        matches!(to, Focus::DataPlane)
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, filter: &str, _cx: &Cx) {
        self.filter = filter.to_string();
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
        if let Some(dp) = &self.dataplane {
            let lines = dataplane_lines(dp, area.width, area.height, th, &self.filter);
            f.render_widget(Paragraph::new(lines).style(th.base), area);
            return;
        }
        let up = cx.health.counts.up;
        let total = cx.view.nodes.len();
        let enough = up >= FAILURE_DOMAINS_16_4_2;
        let lines = vec![
            Line::from(Span::styled("No data plane is reporting.", th.title)),
            Line::from(""),
            Line::from(Span::styled(
                "Stripe state (ACTIVE / PHASING_IN / PHASING_OUT / INACTIVE / FAILED drives), protection status (OK, REBUILDING, PARTIALLY_PROTECTED, REDISTRIBUTING), rebuild progress and IO status (STOPPED / STARTING / STARTED) appear here once the agents run the embedded data plane. No figure on this panel is invented in the meantime.",
                th.text,
            )),
            Line::from(""),
            Line::from(vec![
                Span::styled("Failure domains: ", th.header),
                Span::styled(format!("{up} of {total} nodes up; "), th.text),
                Span::styled(
                    format!(
                        "16+4 protection with 2 hot spares needs {FAILURE_DOMAINS_16_4_2}: {}",
                        if enough {
                            "enough".to_string()
                        } else {
                            format!("{} short", FAILURE_DOMAINS_16_4_2 - up)
                        }
                    ),
                    if enough { th.ok } else { th.warn },
                ),
            ]),
        ];
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .style(th.base),
            area,
        );
    }
}

fn protection_style(word: &str, th: &Theme) -> ratatui::style::Style {
    match word {
        "OK" | "REDISTRIBUTING" => th.ok,
        "UNPROTECTED" | "UNAVAILABLE" => th.fail,
        _ => th.warn,
    }
}

fn size(b: u64) -> String {
    humansize::format_size(b, humansize::BINARY)
}

/// The data plane's lines: a summary, then one row per node (filtered by name).
fn dataplane_lines(
    dp: &crate::fleet::view::DataplaneView,
    width: u16,
    height: u16,
    th: &Theme,
    filter: &str,
) -> Vec<Line<'static>> {
    let c = &dp.config;
    let name = |id: u64| {
        c.members
            .get(&id)
            .map_or_else(|| format!("node {id}"), |m| m.name.clone())
    };
    let label = |t: &str| Span::styled(format!("{t:<12}"), th.header);
    let mut out = Vec::new();
    let id = c.cluster.clone().unwrap_or_default();
    out.push(Line::from(vec![
        label("Cluster"),
        Span::styled(
            format!(
                "{} · {}+{} with {} hot spare{} · {} members",
                id.get(..8).unwrap_or(&id),
                c.k,
                c.m,
                c.hot_spares,
                if c.hot_spares == 1 { "" } else { "s" },
                c.members.len()
            ),
            th.text,
        ),
    ]));
    out.push(Line::from(vec![
        label("IO"),
        Span::styled(
            c.io.as_str().to_string(),
            if c.io == crate::model::cluster::IoStatus::Started {
                th.ok
            } else {
                th.warn
            },
        ),
        Span::styled(
            format!(
                " · leader {} · epoch {}",
                if dp.leader == 0 {
                    "none known".to_string()
                } else {
                    name(dp.leader)
                },
                c.epoch
            ),
            th.text,
        ),
    ]));
    match &dp.data {
        None => out.push(Line::from(vec![
            label("Protection"),
            Span::styled(
                "no member reports its data share (agents without --data-listen)",
                th.dim,
            ),
        ])),
        Some(d) => {
            out.push(Line::from(vec![
                label("Protection"),
                Span::styled(d.protection.clone(), protection_style(&d.protection, th)),
                Span::styled(
                    format!(
                        "   counted by {} of {} members",
                        dp.reporting,
                        c.members.len()
                    ),
                    th.dim,
                ),
            ]));
            let total: u64 = d.stripes_by_lost.iter().sum();
            let mut spans = vec![
                label("Stripes"),
                Span::styled(format!("{total}: "), th.text),
            ];
            let last = d.stripes_by_lost.len().saturating_sub(1);
            for (i, n) in d.stripes_by_lost.iter().enumerate() {
                let (text, style) = match i {
                    0 => (format!("{n} whole"), th.ok),
                    _ if i == last => (
                        format!("{n} unreadable"),
                        if *n > 0 { th.fail } else { th.dim },
                    ),
                    _ => (
                        format!("{n} with {i} lost"),
                        if *n == 0 {
                            th.dim
                        } else if i >= c.m {
                            th.fail
                        } else {
                            th.warn
                        },
                    ),
                };
                if i > 0 {
                    spans.push(Span::styled(" · ", th.dim));
                }
                spans.push(Span::styled(text, style));
            }
            out.push(Line::from(spans));
            out.push(Line::from(vec![
                label("Objects"),
                Span::styled(format!("{} · {}", d.objects, size(d.bytes)), th.text),
            ]));
            let r = &d.rebuild;
            if r.active {
                let bar_w = (width as usize).saturating_sub(70).clamp(10, 40);
                let frac = if r.stripes_total == 0 {
                    0.0
                } else {
                    r.stripes_done as f64 / r.stripes_total as f64
                };
                let filled = ((frac * bar_w as f64).round() as usize).min(bar_w);
                out.push(Line::from(vec![
                    label("Rebuild"),
                    Span::styled("█".repeat(filled), th.warn),
                    Span::styled("░".repeat(bar_w - filled), th.dim),
                    Span::styled(
                        format!(
                            " {:>3.0} % · {}/{} stripes · {} · {}/s · {}",
                            frac * 100.0,
                            r.stripes_done,
                            r.stripes_total,
                            size(r.bytes),
                            size(r.rate),
                            crate::model::dataplane::eta_words(
                                r.stripes_done,
                                r.stripes_total,
                                r.eta_secs
                            )
                        ),
                        th.text,
                    ),
                ]));
            } else {
                out.push(Line::from(vec![
                    label("Rebuild"),
                    Span::styled(
                        if r.passes == 0 {
                            "none since the agents started".to_string()
                        } else {
                            format!(
                                "idle · {} pass{} · {} rebuilt{}",
                                r.passes,
                                if r.passes == 1 { "" } else { "es" },
                                size(r.bytes_total),
                                r.last_error
                                    .as_ref()
                                    .map(|e| format!(" · last error: {e}"))
                                    .unwrap_or_default()
                            )
                        },
                        th.text,
                    ),
                ]));
            }
            if d.lost_chunks > 0 || d.repaired_chunks > 0 {
                out.push(Line::from(vec![
                    label("Repair"),
                    Span::styled(
                        format!(
                            "{} chunk{} lost on failed drives or damaged, {} · {} rewritten",
                            d.lost_chunks,
                            if d.lost_chunks == 1 { "" } else { "s" },
                            crate::model::dataplane::repair_words(d),
                            d.repaired_chunks
                        ),
                        if d.lost_chunks > 0 { th.warn } else { th.text },
                    ),
                ]));
            }
            if d.moved_chunks > 0 || d.protection == "REDISTRIBUTING" {
                out.push(Line::from(vec![
                    label("Moved"),
                    Span::styled(
                        format!(
                            "{} chunk{} moved onto members that came back or were added{}",
                            d.moved_chunks,
                            if d.moved_chunks == 1 { "" } else { "s" },
                            if d.protection == "REDISTRIBUTING" {
                                " · moving now"
                            } else {
                                ""
                            }
                        ),
                        th.text,
                    ),
                ]));
            }
            let words = crate::fleet::view::away_words(&d.away, &d.failed, name);
            out.push(Line::from(vec![
                label("Away"),
                if d.away.is_empty() {
                    Span::styled("none".to_string(), th.ok)
                } else if d.failed.is_empty() {
                    Span::styled(words, th.warn)
                } else {
                    Span::styled(words, th.fail)
                },
            ]));
        }
    }
    out.push(Line::from(""));
    out.push(Line::from(Span::styled(
        format!(
            "{:<16} {:>4}  {:>6} {:>10} {:>11} {:>8} {:>6}  {}",
            "NODE", "ID", "ACTIVE", "PHASING_IN", "PHASING_OUT", "INACTIVE", "FAILED", "STATE"
        ),
        th.header,
    )));
    let away: std::collections::HashSet<u64> = dp
        .data
        .as_ref()
        .map(|d| d.away.iter().copied().collect())
        .unwrap_or_default();
    // Drives by node and state, in one pass (not one per node and state: at 1,000 nodes
    // that was 5 million comparisons a frame).
    const STATES: [&str; 5] = ["ACTIVE", "PHASING_IN", "PHASING_OUT", "INACTIVE", "FAILED"];
    let mut by_node: std::collections::HashMap<u64, [usize; 5]> =
        std::collections::HashMap::with_capacity(c.members.len());
    for d in c.drives.values() {
        if let Some(i) = STATES.iter().position(|s| *s == d.state) {
            by_node.entry(d.node).or_default()[i] += 1;
        }
    }
    // Only the rows that fit: the rest are counted in a last line.
    let room = (height as usize).saturating_sub(out.len() + 1);
    let shown: Vec<(&u64, &crate::model::cluster::Member)> = c
        .members
        .iter()
        .filter(|(_, m)| filter.is_empty() || m.name.contains(filter))
        .collect();
    let fits = if shown.len() > room {
        room.saturating_sub(1)
    } else {
        shown.len()
    };
    for (id, m) in shown.iter().take(fits) {
        let n = by_node.get(id).copied().unwrap_or_default();
        let (state, style) = if away.contains(id) {
            ("away", th.fail)
        } else if n[4] > 0 {
            ("drive failed", th.warn)
        } else if n[0] == 0 {
            ("no active drive", th.warn)
        } else {
            ("ok", th.ok)
        };
        out.push(Line::from(vec![
            Span::styled(
                format!(
                    "{:<16} {:>4}  {:>6} {:>10} {:>11} {:>8} {:>6}  ",
                    m.name, id, n[0], n[1], n[2], n[3], n[4]
                ),
                th.text,
            ),
            Span::styled(state, style),
        ]));
    }
    if fits < shown.len() {
        out.push(Line::from(Span::styled(
            format!(
                "… and {} more nodes (/ filters by name)",
                shown.len() - fits
            ),
            th.dim,
        )));
    }
    out
}

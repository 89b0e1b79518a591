//! Checks: node × check matrix (pass / warn / fail / unknown), the cluster-wide checks, and
//! the selected cell's requirement; Enter opens observed, expected and remedy.

use crate::fleet::health::Facet;
use crate::fleet::view::{NodeStatus, fmt_age};
use crate::model::checks::{self, CheckStatus};
use crate::ui::component::{Cx, Panel, Popup, list_filter, node_popup};
use crate::ui::keymap::{self, Binding};
use crate::ui::nav::{Action, Focus, List, Reply, matches, step};
use crate::ui::theme::Theme;
use crate::ui::widgets::table::offset;
use crate::ui::widgets::{
    check_glyph, check_style, fit, kv, kv_styled, rule, status_glyph, status_style,
};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// A row of the panel: the cluster-wide checks come first, then one row per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Index into the health's cluster-wide checks.
    Cluster(usize),
    /// A node index.
    Node(usize),
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Open {
    Node { node: usize, check: String },
    Cluster(String),
}

#[derive(Default)]
pub struct Checks {
    list: List,
    /// The selected check column.
    col: usize,
    /// Nodes with the most failures first.
    worst_first: bool,
    /// The node checks, one column each.
    ids: Vec<&'static str>,
    /// The node rows the filter shows, in order.
    nodes: Vec<usize>,
    popup: Option<Open>,
}

static KEYS: &[Binding] = &[keymap::LEFT, keymap::RIGHT, keymap::ENTER, keymap::SORT];

impl Checks {
    /// What row `sel` is.
    pub fn row(&self, cx: &Cx, sel: usize) -> Row {
        let nc = cx.health.cluster_checks.len();
        if sel < nc {
            Row::Cluster(sel)
        } else {
            self.nodes
                .get(sel - nc)
                .map_or(Row::None, |&n| Row::Node(n))
        }
    }

    /// The row of node `i`, if the filter shows it.
    fn row_of(&self, cx: &Cx, i: usize) -> Option<usize> {
        self.nodes
            .iter()
            .position(|&n| n == i)
            .map(|p| p + cx.health.cluster_checks.len())
    }

    fn rows(&self, cx: &Cx) -> usize {
        cx.health.cluster_checks.len() + self.nodes.len()
    }
}

impl Panel for Checks {
    fn title(&self) -> &'static str {
        "Checks"
    }

    fn keys(&self) -> &'static [Binding] {
        KEYS
    }

    fn derive(&mut self, cx: &Cx) {
        let view = cx.view;
        // A column per node check some node reports (the Slurm checks only where an agent
        // was given slurm.conf); every catalogue column while no node has reported yet.
        let mut reported: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for n in &view.nodes {
            if let Some(r) = n.snapshot.as_ref().and_then(|s| s.checks.as_ref()) {
                reported.extend(r.iter().map(|c| c.id.as_str()));
            }
        }
        self.ids = checks::CATALOG
            .iter()
            .filter(|c| !c.cluster_wide)
            .filter(|c| reported.is_empty() || reported.contains(c.id))
            .map(|c| c.id)
            .collect();
        self.col = self.col.min(self.ids.len().saturating_sub(1));
        let f = &self.list.filter;
        let mut rows: Vec<usize> = (0..view.nodes.len())
            .filter(|&i| matches(f, &[&view.nodes[i].name]))
            .collect();
        if self.worst_first {
            let score = |i: usize| {
                let r = view.nodes[i]
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.checks.as_ref());
                let fails = r
                    .map(|r| r.iter().filter(|x| x.status == CheckStatus::Fail).count())
                    .unwrap_or(0);
                let warns = r
                    .map(|r| r.iter().filter(|x| x.status == CheckStatus::Warn).count())
                    .unwrap_or(0);
                (usize::from(cx.status(i) != NodeStatus::Up), fails, warns)
            };
            rows.sort_by(|a, b| score(*b).cmp(&score(*a)).then(a.cmp(b)));
        }
        self.nodes = rows;
    }

    fn act(&mut self, a: Action, cx: &Cx) -> Reply {
        if self.list.nav(a, self.rows(cx), cx.page) {
            return Reply::Done;
        }
        match a {
            Action::Left | Action::Right => {
                self.col = step(self.col, a, self.ids.len());
                Reply::Done
            }
            Action::Sort => {
                self.worst_first = !self.worst_first;
                self.derive(cx);
                Reply::Message(if self.worst_first {
                    "nodes with most failures first".into()
                } else {
                    "nodes in inventory order".into()
                })
            }
            Action::Enter => {
                self.popup = match self.row(cx, self.list.sel) {
                    Row::Cluster(c) => cx
                        .health
                        .cluster_checks
                        .get(c)
                        .map(|r| Open::Cluster(r.id.to_string())),
                    Row::Node(node) => self.ids.get(self.col).map(|id| Open::Node {
                        node,
                        check: id.to_string(),
                    }),
                    Row::None => None,
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
                facet: Facet::Status,
                ..
            } | Focus::Check { .. }
                | Focus::ClusterCheck(_)
        )
    }

    fn focus(&mut self, to: &Focus, cx: &Cx) {
        match to {
            Focus::Node { node, .. } => {
                if let Some(row) = self.row_of(cx, *node) {
                    self.list.sel = row;
                }
            }
            Focus::Check { node, check } => {
                if let Some(row) = self.row_of(cx, *node) {
                    self.list.sel = row;
                }
                if let Some(col) = self.ids.iter().position(|c| c == check) {
                    self.col = col;
                }
                self.popup = Some(Open::Node {
                    node: *node,
                    check: check.clone(),
                });
            }
            Focus::ClusterCheck(id) => {
                if let Some(row) = cx.health.cluster_checks.iter().position(|c| c.id == id) {
                    self.list.sel = row;
                }
                self.popup = Some(Open::Cluster(id.clone()));
            }
            _ => {}
        }
    }

    fn popup(&self, cx: &Cx, th: &Theme) -> Option<Popup> {
        Some(match self.popup.as_ref()? {
            Open::Node { node, check } => {
                node_popup(cx, *node, th, node_check_popup(cx, *node, check, th))
            }
            Open::Cluster(id) => {
                let r = cx.health.cluster_checks.iter().find(|c| c.id == id);
                let judged = "the nodes that are up, as this console sees them";
                let l = check_lines(id, Some(judged), r, true, "not evaluated", th);
                (format!("cluster check {id}"), l)
            }
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
        let w = area.width as usize;
        let mut lines: Vec<Line> = Vec::new();
        let sel_row = self.list.sel;
        // Cluster-wide checks on one line each (three of them), selectable above the nodes.
        for (i, c) in cx.health.cluster_checks.iter().enumerate() {
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" {} ", check_glyph(c.status)),
                    check_style(th, c.status),
                ),
                Span::styled(
                    format!("{:<17}", c.id),
                    if self.row(cx, sel_row) == Row::Cluster(i) {
                        th.selection
                    } else {
                        th.header
                    },
                ),
                Span::styled(
                    fit(&c.observed, w.saturating_sub(21)),
                    if c.status == CheckStatus::Pass {
                        th.text
                    } else {
                        check_style(th, c.status)
                    },
                ),
            ]));
        }
        let col = self.col.min(self.ids.len().saturating_sub(1));
        let sel_id = self.ids.get(col).copied().unwrap_or("");
        let def = checks::def(sel_id);
        lines.push(rule(
            &format!("{sel_id}: {}", def.map(|d| d.requirement).unwrap_or("")),
            w,
            th,
        ));
        // Header of short column labels.
        let name_w = 12usize;
        let cols = self.ids.len();
        let cell_w = if w >= name_w + 3 * cols { 3 } else { 2 };
        // The per-row counts when there is room for them.
        let tail = w >= name_w + cell_w * cols + 10;
        let mut head = vec![Span::styled(fit("NODE", name_w), th.header)];
        for (i, id) in self.ids.iter().enumerate() {
            let short = checks::def(id).map(|d| d.short).unwrap_or("??");
            let style = if i == col { th.selection } else { th.header };
            head.push(Span::styled(fit(short, cell_w), style));
        }
        if tail {
            head.push(Span::styled(" FAIL WARN", th.header));
        }
        lines.push(Line::from(head));
        let top = lines.len() as u16;
        let body = area.height.saturating_sub(top) as usize;
        // The selected node row, if a node row is selected.
        let sel = match self.row(cx, sel_row) {
            Row::Node(_) => Some(sel_row - cx.health.cluster_checks.len()),
            _ => None,
        };
        let off = offset(sel.unwrap_or(0), body, self.nodes.len());
        for (r, &ni) in self.nodes.iter().enumerate().skip(off).take(body) {
            let n = &cx.view.nodes[ni];
            let status = cx.status(ni);
            let row_sel = Some(r) == sel;
            let name_style = if row_sel {
                th.selection
            } else {
                status_style(th, status)
            };
            let mut spans = vec![Span::styled(
                fit(&format!("{} {}", status_glyph(status), n.name), name_w),
                name_style,
            )];
            let results = n.snapshot.as_ref().and_then(|s| s.checks.as_ref());
            let (mut fails, mut warns) = (0, 0);
            for (i, id) in self.ids.iter().enumerate() {
                let res = results.and_then(|r| r.iter().find(|x| x.id == *id));
                let (glyph, mut style) = match res {
                    None => ("·", th.dim),
                    // Data of a node that is not up is never shown as healthy: its old passes
                    // become "no current data"; its old failures stay visible, in stale style.
                    Some(x) if status != NodeStatus::Up => (
                        if x.status == CheckStatus::Pass {
                            "·"
                        } else {
                            check_glyph(x.status)
                        },
                        th.stale,
                    ),
                    Some(x) => (check_glyph(x.status), check_style(th, x.status)),
                };
                if let Some(x) = res {
                    fails += usize::from(x.status == CheckStatus::Fail);
                    warns += usize::from(x.status == CheckStatus::Warn);
                }
                if row_sel && i == col {
                    style = style.patch(th.selection);
                }
                spans.push(Span::styled(fit(glyph, cell_w), style));
            }
            let text = match status {
                NodeStatus::Up => format!(" {fails:>4} {warns:>4}"),
                s => format!(" {}", s.as_str()),
            };
            if tail {
                spans.push(Span::styled(
                    text,
                    if fails > 0 && status == NodeStatus::Up {
                        th.fail
                    } else {
                        status_style(th, status)
                    },
                ));
            }
            lines.push(Line::from(spans));
        }
        if self.nodes.is_empty() {
            lines.push(Line::from(Span::styled(
                "  (no node matches the filter)",
                th.dim,
            )));
        }
        f.render_widget(Paragraph::new(lines).style(th.base), area);
    }
}

fn node_check_popup(cx: &Cx, node: usize, check: &str, th: &Theme) -> Popup {
    let n = &cx.view.nodes[node];
    let r = n
        .snapshot
        .as_ref()
        .and_then(|s| s.checks.as_ref())
        .and_then(|v| v.iter().find(|x| x.id == check));
    let mut l = check_lines(
        check,
        None,
        r,
        cx.status(node) == NodeStatus::Up,
        "not reported",
        th,
    );
    if r.is_some() {
        l.push(kv(
            "data age",
            fmt_age(n.section_age_ms(crate::model::snapshot::Section::Checks, cx.now_ms)),
            th,
        ));
    }
    (format!("{} {check}", n.name), l)
}

/// A check's requirement, source, status, observed, expected and remedy. A result that
/// is not `current` (its node is not up) shows its status as last known, in stale style.
fn check_lines(
    id: &str,
    judged_on: Option<&str>,
    r: Option<&checks::CheckResult>,
    current: bool,
    missing: &str,
    th: &Theme,
) -> Vec<Line<'static>> {
    let def = checks::def(id);
    let mut l = vec![
        kv("requirement", def.map(|d| d.requirement).unwrap_or(""), th),
        kv("source", def.map(|d| d.source).unwrap_or(""), th),
    ];
    if let Some(j) = judged_on {
        l.push(kv("judged on", j, th));
    }
    let Some(r) = r else {
        l.push(kv("status", missing, th));
        return l;
    };
    let status = r.status.as_str().to_uppercase();
    l.push(if current {
        kv_styled("status", status, check_style(th, r.status), th)
    } else {
        kv_styled("status", format!("{status} (last known)"), th.stale, th)
    });
    l.push(kv("observed", r.observed.clone(), th));
    l.push(kv("expected", r.expected.clone(), th));
    if !r.remedy.is_empty() {
        l.push(kv("remedy", r.remedy.clone(), th));
    }
    l
}

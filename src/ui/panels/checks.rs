//! Checks: node × check matrix (pass / warn / fail / unknown), the cluster-wide checks, and
//! the selected cell's requirement; Enter opens observed, expected and remedy.

use crate::fleet::view::NodeStatus;
use crate::model::checks::{self, CheckStatus};
use crate::ui::ViewState;
use crate::ui::app::Panel;
use crate::ui::derive::CheckRow;
use crate::ui::theme::Theme;
use crate::ui::widgets::table::offset;
use crate::ui::widgets::{check_glyph, check_style, fit, rule, status_glyph, status_style};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(f: &mut Frame, area: Rect, vs: &ViewState, th: &Theme) {
    let d = vs.derived;
    let w = area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let sel_row = vs.ui.selected(Panel::Checks);
    // Cluster-wide checks on one line each (three of them), selectable above the nodes.
    for (i, c) in d.cluster_checks.iter().enumerate() {
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {} ", check_glyph(c.status)),
                check_style(th, c.status),
            ),
            Span::styled(
                format!("{:<17}", c.id),
                if d.check_row(sel_row) == CheckRow::Cluster(i) {
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
    let col = vs.ui.col.min(d.check_ids.len().saturating_sub(1));
    let sel_id = d.check_ids.get(col).copied().unwrap_or("");
    let def = checks::def(sel_id);
    lines.push(rule(
        &format!("{sel_id}: {}", def.map(|d| d.requirement).unwrap_or("")),
        w,
        th,
    ));
    // Header of short column labels.
    let name_w = 12usize;
    let cols = d.check_ids.len();
    let cell_w = if w >= name_w + 3 * cols { 3 } else { 2 };
    // The per-row counts when there is room for them.
    let tail = w >= name_w + cell_w * cols + 10;
    let mut head = vec![Span::styled(fit("NODE", name_w), th.header)];
    for (i, id) in d.check_ids.iter().enumerate() {
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
    let sel = match d.check_row(sel_row) {
        CheckRow::Node(_) => Some(sel_row - d.cluster_checks.len()),
        _ => None,
    };
    let off = offset(sel.unwrap_or(0), body, d.check_nodes.len());
    for (r, &ni) in d.check_nodes.iter().enumerate().skip(off).take(body) {
        let n = &vs.cluster.nodes[ni];
        let status = d.status[ni];
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
        for (i, id) in d.check_ids.iter().enumerate() {
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
    if d.check_nodes.is_empty() {
        lines.push(Line::from(Span::styled(
            "  (no node matches the filter)",
            th.dim,
        )));
    }
    f.render_widget(Paragraph::new(lines).style(th.base), area);
}

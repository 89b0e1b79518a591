//! The one table: columns as data (each table an enum of its columns, paired with how
//! each is drawn), a header, and only the visible rows built. The selected row stays in
//! view; scrolling is derived from the selection, so rendering needs no mutable state.

use super::{fit, rfit};
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Debug, Clone)]
pub struct Col {
    pub title: &'static str,
    /// Display width; 0 = take what is left (one such column at most).
    pub width: u16,
    pub right: bool,
}

impl Col {
    pub const fn new(title: &'static str, width: u16) -> Self {
        Col {
            title,
            width,
            right: false,
        }
    }
    pub const fn right(title: &'static str, width: u16) -> Self {
        Col {
            title,
            width,
            right: true,
        }
    }
}

/// The first row shown so that `selected` is visible in `height` rows.
pub fn offset(selected: usize, height: usize, total: usize) -> usize {
    if height == 0 || total <= height {
        return 0;
    }
    selected.saturating_sub(height - 1).min(total - height)
}

/// Column widths for an area: fixed ones as given, the fill column gets the rest.
pub fn widths<K>(cols: &[(K, Col)], total: u16) -> Vec<usize> {
    let fixed: u16 =
        cols.iter().map(|c| c.1.width).sum::<u16>() + cols.len().saturating_sub(1) as u16;
    let fill = total.saturating_sub(fixed) as usize;
    cols.iter()
        .map(|(_, c)| if c.width == 0 { fill } else { c.width as usize })
        .collect()
}

/// Renders a table. `cols` pairs each column's key (a table's column enum) with how it is
/// drawn; `cell(row, key)` gives the text and style of one cell, and is only called for
/// visible rows.
pub fn render<K: Copy>(
    f: &mut Frame,
    area: Rect,
    th: &Theme,
    cols: &[(K, Col)],
    total: usize,
    selected: Option<usize>,
    cell: &dyn Fn(usize, K) -> (String, Style),
) {
    if area.height == 0 {
        return;
    }
    let w = widths(cols, area.width);
    let mut header: Vec<Span> = Vec::with_capacity(cols.len() * 2);
    for (i, (_, c)) in cols.iter().enumerate() {
        if i > 0 {
            header.push(Span::raw(" "));
        }
        header.push(Span::styled(
            if c.right {
                rfit(c.title, w[i])
            } else {
                fit(c.title, w[i])
            },
            th.header,
        ));
    }
    let mut lines = vec![Line::from(header)];
    let body = area.height.saturating_sub(1) as usize;
    let sel = selected.unwrap_or(0).min(total.saturating_sub(1));
    let off = offset(sel, body, total);
    for r in off..(off + body).min(total) {
        let is_sel = selected.is_some() && r == sel;
        let mut spans: Vec<Span> = Vec::with_capacity(cols.len() * 2);
        for (i, (key, c)) in cols.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(
                    " ",
                    if is_sel {
                        th.selection
                    } else {
                        Style::default()
                    },
                ));
            }
            let (text, style) = cell(r, *key);
            let text = if c.right {
                rfit(&text, w[i])
            } else {
                fit(&text, w[i])
            };
            spans.push(Span::styled(
                text,
                if is_sel {
                    style.patch(th.selection)
                } else {
                    style
                },
            ));
        }
        lines.push(Line::from(spans));
    }
    if total == 0 {
        lines.push(Line::from(Span::styled("  (nothing to show)", th.dim)));
    }
    f.render_widget(Paragraph::new(lines).style(th.base), area);
}

/// A table with a caption line above it: `caption` on the left, the position (`12/8000`)
/// on the right.
#[allow(clippy::too_many_arguments)]
pub fn render_captioned<K: Copy>(
    f: &mut Frame,
    area: Rect,
    th: &Theme,
    caption: &str,
    cols: &[(K, Col)],
    total: usize,
    selected: Option<usize>,
    cell: &dyn Fn(usize, K) -> (String, Style),
) {
    if area.height < 2 {
        return render(f, area, th, cols, total, selected, cell);
    }
    let pos = match selected {
        Some(s) if total > 0 => format!("{}/{}", s.min(total - 1) + 1, total),
        _ => total.to_string(),
    };
    let w = area.width as usize;
    let left = fit(caption, w.saturating_sub(pos.len() + 1));
    let line = Line::from(vec![
        Span::styled(left, th.dim),
        Span::raw(" "),
        Span::styled(pos, th.dim),
    ]);
    f.render_widget(
        Paragraph::new(line).style(th.base),
        Rect { height: 1, ..area },
    );
    render(
        f,
        Rect {
            y: area.y + 1,
            height: area.height - 1,
            ..area
        },
        th,
        cols,
        total,
        selected,
        cell,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_keeps_the_selection_visible() {
        assert_eq!(offset(0, 10, 100), 0);
        assert_eq!(offset(9, 10, 100), 0);
        assert_eq!(offset(10, 10, 100), 1);
        assert_eq!(offset(99, 10, 100), 90);
        assert_eq!(offset(5, 10, 3), 0);
    }

    #[test]
    fn fill_column_takes_the_rest() {
        let w = widths(
            &[
                (0, Col::new("a", 4)),
                (1, Col::new("b", 0)),
                (2, Col::new("c", 6)),
            ],
            40,
        );
        assert_eq!(w, vec![4, 28, 6]);
    }
}

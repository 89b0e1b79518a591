//! Building blocks every panel uses: fixed-width text, the one table, status glyphs and
//! styles, popups.

pub mod table;

use super::theme::Theme;
use crate::fleet::view::{NodeStatus, Severity};
use crate::model::checks::CheckStatus;
use crate::model::nvme::HealthLevel;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

/// Truncates (with `…`) or pads `s` to exactly `w` display columns.
pub fn fit(s: &str, w: usize) -> String {
    let width = UnicodeWidthStr::width(s);
    if width <= w {
        let mut out = s.to_string();
        out.extend(std::iter::repeat_n(' ', w - width));
        return out;
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    used += 1;
    out.extend(std::iter::repeat_n(' ', w - used));
    out
}

/// Builds a line cell by cell, merging neighbours of the same style into one span (a
/// 1,000-column matrix row is then a handful of spans, not 1,000).
#[derive(Default)]
pub struct SpanRow {
    spans: Vec<Span<'static>>,
}

impl SpanRow {
    pub fn push(&mut self, text: &str, style: Style) {
        if let Some(last) = self.spans.last_mut() {
            if last.style == style {
                last.content.to_mut().push_str(text);
                return;
            }
        }
        self.spans.push(Span::styled(text.to_string(), style));
    }

    pub fn push_span(&mut self, span: Span<'static>) {
        self.spans.push(span);
    }

    pub fn line(self) -> Line<'static> {
        Line::from(self.spans)
    }
}

/// Right-aligned fit.
pub fn rfit(s: &str, w: usize) -> String {
    let width = UnicodeWidthStr::width(s);
    if width >= w {
        return fit(s, w);
    }
    format!("{}{s}", " ".repeat(w - width))
}

pub fn status_style(th: &Theme, s: NodeStatus) -> Style {
    match s {
        NodeStatus::Up => th.ok,
        NodeStatus::Connecting => th.dim,
        NodeStatus::Stale => th.stale,
        NodeStatus::Down => th.down,
    }
}

pub fn status_glyph(s: NodeStatus) -> &'static str {
    match s {
        NodeStatus::Up => "●",
        NodeStatus::Connecting => "◌",
        NodeStatus::Stale => "◐",
        NodeStatus::Down => "✕",
    }
}

pub fn check_style(th: &Theme, s: CheckStatus) -> Style {
    match s {
        CheckStatus::Pass => th.ok,
        CheckStatus::Warn => th.warn,
        CheckStatus::Fail => th.fail,
        CheckStatus::Unknown => th.unknown,
    }
}

pub fn check_glyph(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Pass => "✓",
        CheckStatus::Warn => "!",
        CheckStatus::Fail => "✗",
        CheckStatus::Unknown => "?",
    }
}

pub fn health_style(th: &Theme, l: HealthLevel) -> Style {
    match l {
        HealthLevel::Ok => th.ok,
        HealthLevel::Unknown => th.unknown,
        HealthLevel::Warning => th.warn,
        HealthLevel::Critical => th.fail,
    }
}

pub fn severity_style(th: &Theme, s: Severity) -> Style {
    match s {
        Severity::Info => th.dim,
        Severity::Warning => th.warn,
        Severity::Critical => th.fail,
    }
}

pub fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "WARN",
        Severity::Critical => "CRIT",
    }
}

/// Lays out segments (runs of spans) on lines of `width` columns, `sep` between two on
/// one line; a segment that does not fit where the line stands starts the next line.
pub fn flow(
    segments: Vec<Vec<Span<'static>>>,
    sep: &Span<'static>,
    width: usize,
) -> Vec<Line<'static>> {
    let w = |v: &[Span]| -> usize {
        v.iter()
            .map(|s| UnicodeWidthStr::width(s.content.as_ref()))
            .sum()
    };
    let sep_w = UnicodeWidthStr::width(sep.content.as_ref());
    let mut lines = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    for seg in segments {
        if !cur.is_empty() && w(&cur) + sep_w + w(&seg) > width {
            lines.push(Line::from(std::mem::take(&mut cur)));
        }
        if !cur.is_empty() {
            cur.push(sep.clone());
        }
        cur.extend(seg);
    }
    if !cur.is_empty() {
        lines.push(Line::from(cur));
    }
    lines
}

/// A section rule: `─ title ─────`.
pub fn rule(title: &str, width: usize, th: &Theme) -> Line<'static> {
    let head = format!("─ {title} ");
    let rest = width.saturating_sub(UnicodeWidthStr::width(head.as_str()));
    Line::from(vec![
        Span::styled(head, th.header),
        Span::styled("─".repeat(rest), th.border),
    ])
}

/// A centred box of `w`×`h` (clamped to the area).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Width of the key column in popups.
pub const KEY_W: usize = 17;

/// Draws a popup with a title and lines, over whatever is below. Lines made by `kv` wrap
/// with their value indented under the value column; other lines wrap at the edge.
pub fn popup(f: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>, th: &Theme) {
    let w = (area.width.saturating_sub(8)).clamp(40, 110);
    let inner = w.saturating_sub(2) as usize;
    let mut wrapped: Vec<Line<'static>> = Vec::new();
    for l in lines {
        let is_kv =
            l.spans.len() == 2 && UnicodeWidthStr::width(l.spans[0].content.as_ref()) == KEY_W;
        let total: usize = l
            .spans
            .iter()
            .map(|s| UnicodeWidthStr::width(s.content.as_ref()))
            .sum();
        if !is_kv || total <= inner {
            wrapped.push(l);
            continue;
        }
        let (key, val) = (l.spans[0].clone(), l.spans[1].clone());
        let chunks = wrap_words(val.content.as_ref(), inner.saturating_sub(KEY_W).max(10));
        for (i, c) in chunks.into_iter().enumerate() {
            let k = if i == 0 {
                key.clone()
            } else {
                Span::raw(" ".repeat(KEY_W))
            };
            wrapped.push(Line::from(vec![k, Span::styled(c, val.style)]));
        }
    }
    let h = (wrapped.len() as u16 + 2).clamp(5, area.height.saturating_sub(2));
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(th.accent)
        .title(Span::styled(format!(" {title} "), th.title))
        .style(th.base);
    f.render_widget(
        Paragraph::new(wrapped)
            .block(block)
            .wrap(Wrap { trim: false }),
        r,
    );
}

/// Splits text into lines of at most `width` columns at spaces (long words are cut).
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let wl = UnicodeWidthStr::width(word);
        let cl = UnicodeWidthStr::width(cur.as_str());
        if cl > 0 && cl + 1 + wl > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
        while UnicodeWidthStr::width(cur.as_str()) > width {
            let cut: String = cur.chars().take(width).collect();
            let rest: String = cur.chars().skip(width).collect();
            out.push(cut);
            cur = rest;
        }
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// A `key: value` line for popups.
pub fn kv(k: &str, v: impl Into<String>, th: &Theme) -> Line<'static> {
    kv_styled(k, v, th.text, th)
}

/// A `key: value` line whose value has its own style (a status, a health level).
pub fn kv_styled(k: &str, v: impl Into<String>, style: Style, th: &Theme) -> Line<'static> {
    Line::from(vec![
        Span::styled(fit(k, KEY_W), th.header),
        Span::styled(v.into(), style),
    ])
}

/// Unicode block sparkline of the last `width` values.
pub fn sparkline(values: &[u32], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let start = values.len().saturating_sub(width);
    let slice = &values[start..];
    let max = slice.iter().copied().max().unwrap_or(0);
    let mut s: String = slice
        .iter()
        .map(|&v| {
            if max == 0 {
                BARS[0]
            } else {
                BARS[((v as u64 * 7) / max as u64) as usize]
            }
        })
        .collect();
    let pad = width.saturating_sub(slice.len());
    s.insert_str(0, &" ".repeat(pad));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_pads_and_truncates_by_display_width() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(rfit("7", 3), "  7");
        assert_eq!(fit("", 0), "");
        assert_eq!(UnicodeWidthStr::width(fit("✓✗?", 2).as_str()), 2);
    }

    #[test]
    fn words_wrap_at_spaces() {
        assert_eq!(
            wrap_words("arp_filter=1 arp_announce=2 arp_ignore=1", 27),
            vec!["arp_filter=1 arp_announce=2", "arp_ignore=1"]
        );
        assert_eq!(wrap_words("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap_words("", 4), vec![""]);
    }

    #[test]
    fn flow_starts_a_new_line_when_a_segment_does_not_fit() {
        let seg = |t: &str| vec![Span::raw(t.to_string())];
        let sep = Span::raw(" | ");
        let lines = flow(vec![seg("aaaa"), seg("bbbb"), seg("cc")], &sep, 11);
        let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(text, vec!["aaaa | bbbb", "cc"]);
        let one = flow(vec![seg("aaaa"), seg("bb")], &sep, 80);
        assert_eq!(one.len(), 1);
        assert!(flow(vec![], &sep, 80).is_empty());
    }

    #[test]
    fn sparkline_scales_to_its_maximum() {
        assert_eq!(sparkline(&[0, 7, 14], 3), "▁▄█");
        assert_eq!(sparkline(&[1], 3), "  █");
        assert_eq!(sparkline(&[0, 0], 2), "▁▁");
    }
}

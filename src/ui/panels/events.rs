//! Events: state changes as they happen (node down/up/stale, check flips, drive health,
//! new core conflicts, blocked ports), newest first.

use crate::fleet::view::fmt_age;
use crate::ui::ViewState;
use crate::ui::app::Panel;
use crate::ui::theme::Theme;
use crate::ui::widgets::table::{self, Col};
use crate::ui::widgets::{severity_label, severity_style};
use ratatui::Frame;
use ratatui::layout::Rect;

pub fn render(f: &mut Frame, area: Rect, vs: &ViewState, th: &Theme) {
    let d = vs.derived;
    let cols = [
        Col::right("AGE", 5),
        Col::new("SEV", 4),
        Col::new("EVENT", 0),
    ];
    let caption = if vs.cluster.events.is_empty() {
        "no events yet: state changes appear here as they happen".to_string()
    } else {
        format!("{} events, newest first", d.events.len())
    };
    table::render_captioned(
        f,
        area,
        th,
        &caption,
        &cols,
        d.events.len(),
        Some(vs.ui.selected(Panel::Events)),
        &|r, c| {
            let e = &vs.cluster.events[d.events[r]];
            match c {
                0 => (fmt_age(Some(vs.now_ms.saturating_sub(e.at_ms))), th.dim),
                1 => (
                    severity_label(e.severity).to_string(),
                    severity_style(th, e.severity),
                ),
                _ => (e.text.clone(), th.text),
            }
        },
    );
}

//! Events: state changes as they happen (node down/up/stale, check flips, drive health,
//! new core conflicts, blocked ports, jobs ending), newest first.

use crate::fleet::view::fmt_age;
use crate::ui::component::{Cx, Panel, Popup, list_filter};
use crate::ui::keymap::{self, Binding};
use crate::ui::nav::{Action, List, Reply, matches};
use crate::ui::theme::Theme;
use crate::ui::widgets::table::{self, Col};
use crate::ui::widgets::{kv, severity_label, severity_style};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;

#[derive(Default)]
pub struct Events {
    list: List,
    /// Indices into the view's events that the filter shows.
    rows: Vec<usize>,
    /// The open event, by sequence number (newer events do not shift it).
    popup: Option<u64>,
}

static KEYS: &[Binding] = &[keymap::ENTER];

#[derive(Clone, Copy)]
enum C {
    Age,
    Sev,
    Event,
}

const COLS: [(C, Col); 3] = [
    (C::Age, Col::right("AGE", 5)),
    (C::Sev, Col::new("SEV", 4)),
    (C::Event, Col::new("EVENT", 0)),
];

impl Panel for Events {
    fn title(&self) -> &'static str {
        "Events"
    }

    fn keys(&self) -> &'static [Binding] {
        KEYS
    }

    fn derive(&mut self, cx: &Cx) {
        let f = &self.list.filter;
        self.rows = cx
            .view
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches(f, &[&e.text]))
            .map(|(i, _)| i)
            .collect();
    }

    fn act(&mut self, a: Action, cx: &Cx) -> Reply {
        if self.list.nav(a, self.rows.len(), cx.page) {
            return Reply::Done;
        }
        if a != Action::Enter {
            return Reply::Ignored;
        }
        self.popup = self
            .rows
            .get(self.list.selected(self.rows.len()))
            .and_then(|i| cx.view.events.get(*i))
            .map(|e| e.seq);
        Reply::Done
    }

    fn popup(&self, cx: &Cx, th: &Theme) -> Option<Popup> {
        let seq = self.popup?;
        let Some(e) = cx.view.event(seq) else {
            return Some((
                "event".into(),
                vec![Line::from(
                    "no longer held (older than the last 1,000 events)",
                )],
            ));
        };
        Some((
            "event".into(),
            vec![
                kv("age", fmt_age(Some(cx.now_ms.saturating_sub(e.at_ms))), th),
                Line::from(e.text.clone()),
            ],
        ))
    }

    fn popup_open(&self) -> bool {
        self.popup.is_some()
    }

    fn close_popup(&mut self) -> bool {
        self.popup.take().is_some()
    }

    list_filter!(list);

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
        let caption = if cx.view.events.is_empty() {
            "no events yet: state changes appear here as they happen".to_string()
        } else {
            format!("{} events, newest first", self.rows.len())
        };
        table::render_captioned(
            f,
            area,
            th,
            &caption,
            &COLS,
            self.rows.len(),
            Some(self.list.sel),
            &|r, c| {
                let e = &cx.view.events[self.rows[r]];
                match c {
                    C::Age => (fmt_age(Some(cx.now_ms.saturating_sub(e.at_ms))), th.dim),
                    C::Sev => (
                        severity_label(e.severity).to_string(),
                        severity_style(th, e.severity),
                    ),
                    C::Event => (e.text.clone(), th.text),
                }
            },
        );
    }
}

//! Stripes: the data plane is a later release. Until an agent reports stripe state this
//! panel says so, and shows only what can be derived truthfully today.

use crate::ui::component::{Cx, Panel};
use crate::ui::nav::{Action, Reply};
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

/// 16 data + 4 parity + 2 hot spares: the seed's bare-metal protection scheme.
pub const FAILURE_DOMAINS_16_4_2: usize = 22;

#[derive(Default)]
pub struct Stripes {
    filter: String,
}

impl Panel for Stripes {
    fn title(&self) -> &'static str {
        "Stripes"
    }

    fn derive(&mut self, _cx: &Cx) {}

    fn act(&mut self, _a: Action, _cx: &Cx) -> Reply {
        Reply::Ignored
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, filter: &str, _cx: &Cx) {
        self.filter = filter.to_string();
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
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

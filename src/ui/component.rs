//! What a panel is (gitui's components, yazi's and bottom's widgets): one type that owns
//! its state (selection, filter, sort, view), derives its rows from the cluster when the
//! data or its state changes, handles its keys, draws itself from `&self`, and gives the
//! content of its drill-in popup. The console holds a list of them (`panels::all`) and
//! knows none by name.

use super::keymap::Binding;
use super::nav::{Action, Focus, Reply};
use super::theme::Theme;
use super::widgets::status_style;
use crate::fleet::health::Health;
use crate::fleet::view::{ClusterView, NodeStatus, fmt_age};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// What a panel derives and draws from: the cluster, its health (computed once for all
/// panels, as `axon status` computes it) and the terminal's size.
pub struct Cx<'a> {
    pub view: &'a ClusterView,
    pub health: &'a Health,
    pub now_ms: i64,
    /// Terminal width (the Cores grid wraps to it) and body height (for paging).
    pub width: u16,
    pub page: usize,
}

impl Cx<'_> {
    /// Node `i`'s status (down when out of range: nothing about it is current).
    pub fn status(&self, i: usize) -> NodeStatus {
        self.health
            .status
            .get(i)
            .copied()
            .unwrap_or(NodeStatus::Down)
    }
}

/// A popup: its title and lines.
pub type Popup = (String, Vec<Line<'static>>);

pub trait Panel {
    /// The tab's title; `:panel NAME` matches it without case.
    fn title(&self) -> &'static str;
    /// The panel's own keys (movement, filter, help and quit are the console's).
    fn keys(&self) -> &'static [Binding] {
        &[]
    }
    /// Builds the rows from the data; the console calls it when the data changed, before
    /// drawing. A panel whose own state changes (sort, filter, view) derives again itself.
    fn derive(&mut self, cx: &Cx);
    /// Handles an action; `Reply::Ignored` when it is not the panel's.
    fn act(&mut self, a: Action, cx: &Cx) -> Reply;
    fn draw(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme);
    /// The drill-in popup, while one is open.
    fn popup(&self, _cx: &Cx, _th: &Theme) -> Option<Popup> {
        None
    }
    fn popup_open(&self) -> bool {
        false
    }
    /// Closes the popup; false when none was open.
    fn close_popup(&mut self) -> bool {
        false
    }
    /// Whether this panel is where `to` is shown.
    fn wants(&self, _to: &Focus) -> bool {
        false
    }
    /// Selects `to` (the console derived the panel first).
    fn focus(&mut self, _to: &Focus, _cx: &Cx) {}
    fn filter(&self) -> &str;
    /// A new filter: the panel goes back to its first row and derives again.
    fn set_filter(&mut self, filter: &str, cx: &Cx);
}

/// The first line of a popup about node `i` when it is not up: nothing in it is current,
/// and how old it is.
pub fn not_current(cx: &Cx, i: usize, th: &Theme) -> Option<Line<'static>> {
    let status = cx.status(i);
    if status == NodeStatus::Up {
        return None;
    }
    let n = cx.view.nodes.get(i)?;
    let why = n
        .failure
        .as_ref()
        .map(|f| format!(" ({})", f.message))
        .unwrap_or_default();
    Some(Line::from(Span::styled(
        format!(
            "{} {}: last data {} ago, not current{why}",
            n.name,
            status.as_str(),
            fmt_age(n.received_ms.map(|r| cx.now_ms.saturating_sub(r)))
        ),
        status_style(th, status),
    )))
}

/// A popup about node `i`: `not_current` goes first when the node is not up.
pub fn node_popup(cx: &Cx, i: usize, th: &Theme, (title, mut lines): Popup) -> Popup {
    if let Some(l) = not_current(cx, i, th) {
        lines.insert(0, l);
    }
    (title, lines)
}

/// A list panel's filter: kept in its `List` field, back to the first row and derived
/// again when it changes.
macro_rules! list_filter {
    ($list:ident) => {
        fn filter(&self) -> &str {
            &self.$list.filter
        }
        fn set_filter(&mut self, filter: &str, cx: &$crate::ui::component::Cx) {
            self.$list.filter = filter.to_string();
            self.$list.sel = 0;
            self.derive(cx);
        }
    };
}
pub(crate) use list_filter;

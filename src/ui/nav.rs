//! The navigation vocabulary every panel shares: the actions keys map to, where a jump
//! leads (`Focus`), what a panel answers an action with (`Reply`), and the selection and
//! filter of a list. Nothing here knows any panel.

use super::confirm::Pending;
use crate::fleet::health::Facet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    NextPanel,
    PrevPanel,
    /// The panel at this position of the tab bar.
    Panel(usize),
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Back,
    Filter,
    Sort,
    Help,
    Command,
    NextNode,
    PrevNode,
    ToggleView,
    NextGroup,
    CycleTheme,
    /// Probe the full port ranges from the selected node (needs the admin token).
    ProbeFull,
    /// Start or stop the data-plane cluster's IO (needs the admin token).
    StartIo,
    StopIo,
    /// Open or close the list of jobs (operations started from the panels).
    Jobs,
}

/// Something another panel shows: the console hands it to the first panel that wants it,
/// which selects it (and opens its popup where that is what the operator came for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Focus {
    /// A node, on the panel that shows this side of it.
    Node {
        node: usize,
        facet: Facet,
    },
    Drive {
        node: usize,
        drive: String,
    },
    Check {
        node: usize,
        check: String,
    },
    ClusterCheck(String),
    /// The data plane's protection.
    DataPlane,
}

/// A panel's answer to an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Not a key of this panel (or nothing to do with it here).
    Ignored,
    Done,
    /// Done, with a line for the status bar.
    Message(String),
    /// Show this on the panel that owns it.
    Focus(Focus),
    /// A change to the cluster: the console asks the operator first.
    Ask(Pending),
}

/// The selected row and the filter of a list. Rows are counted by the panel; moving
/// keeps the selection inside them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct List {
    pub sel: usize,
    pub filter: String,
}

impl List {
    /// Moves the selection for a vertical movement key; false for any other action.
    pub fn nav(&mut self, a: Action, rows: usize, page: usize) -> bool {
        let last = rows.saturating_sub(1);
        let page = page.max(1);
        self.sel = match a {
            Action::Up => self.sel.saturating_sub(1),
            Action::Down => (self.sel + 1).min(last),
            Action::PageUp => self.sel.saturating_sub(page),
            Action::PageDown => (self.sel + page).min(last),
            Action::Top => 0,
            Action::Bottom => last,
            _ => return false,
        };
        true
    }

    /// The selection, kept inside `rows` (the rows may have shrunk since it was set).
    pub fn selected(&self, rows: usize) -> usize {
        self.sel.min(rows.saturating_sub(1))
    }
}

/// Whether any of `hay` contains `filter`, ignoring case (an empty filter matches all).
pub fn matches(filter: &str, hay: &[&str]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let f = filter.to_lowercase();
    hay.iter().any(|h| h.to_lowercase().contains(&f))
}

/// A step left or right inside `0..n`.
pub fn step(col: usize, a: Action, n: usize) -> usize {
    if a == Action::Left {
        col.saturating_sub(1)
    } else {
        (col + 1).min(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_moves_stay_inside_the_rows() {
        let mut l = List::default();
        assert!(l.nav(Action::Up, 10, 4));
        assert_eq!(l.sel, 0);
        l.nav(Action::PageDown, 10, 4);
        assert_eq!(l.sel, 4);
        l.nav(Action::Bottom, 10, 4);
        assert_eq!(l.sel, 9);
        l.nav(Action::Down, 10, 4);
        assert_eq!(l.sel, 9);
        assert!(!l.nav(Action::Enter, 10, 4));
        assert_eq!(l.selected(3), 2, "rows shrank under the selection");
        l.nav(Action::Down, 0, 4);
        assert_eq!(l.sel, 0);
    }

    #[test]
    fn filters_ignore_case() {
        assert!(matches("", &["x"]));
        assert!(matches("AXON", &["node axon005"]));
        assert!(!matches("b", &["a", "c"]));
    }
}

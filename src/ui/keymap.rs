//! The key bindings, as data: the help screen lists exactly what is live in the current
//! panel, and `--read-only` removes every mutating binding from both lookup and help.

use super::app::Panel;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    NextPanel,
    PrevPanel,
    Panel(Panel),
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
    /// Open or close the list of jobs (operations started from the panels).
    Jobs,
}

pub struct Binding {
    pub keys: &'static [(KeyCode, KeyModifiers)],
    pub label: &'static str,
    pub action: Action,
    /// Panels where the binding is live; None = everywhere.
    pub panels: Option<&'static [Panel]>,
    pub mutating: bool,
    pub help: &'static str,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

macro_rules! b {
    ($keys:expr, $label:expr, $action:expr, $panels:expr, $mutating:expr, $help:expr) => {
        Binding {
            keys: $keys,
            label: $label,
            action: $action,
            panels: $panels,
            mutating: $mutating,
            help: $help,
        }
    };
}

pub static BINDINGS: &[Binding] = &[
    b!(
        &[(KeyCode::Char('1'), NONE)],
        "1",
        Action::Panel(Panel::Overview),
        None,
        false,
        "Overview"
    ),
    b!(
        &[(KeyCode::Char('2'), NONE)],
        "2",
        Action::Panel(Panel::Cores),
        None,
        false,
        "Cores"
    ),
    b!(
        &[(KeyCode::Char('3'), NONE)],
        "3",
        Action::Panel(Panel::Drives),
        None,
        false,
        "Drives"
    ),
    b!(
        &[(KeyCode::Char('4'), NONE)],
        "4",
        Action::Panel(Panel::Network),
        None,
        false,
        "Network"
    ),
    b!(
        &[(KeyCode::Char('5'), NONE)],
        "5",
        Action::Panel(Panel::Checks),
        None,
        false,
        "Checks"
    ),
    b!(
        &[(KeyCode::Char('6'), NONE)],
        "6",
        Action::Panel(Panel::Stripes),
        None,
        false,
        "Stripes"
    ),
    b!(
        &[(KeyCode::Char('7'), NONE)],
        "7",
        Action::Panel(Panel::Events),
        None,
        false,
        "Events"
    ),
    b!(
        &[(KeyCode::Tab, NONE)],
        "Tab",
        Action::NextPanel,
        None,
        false,
        "next panel"
    ),
    b!(
        &[(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE)],
        "S-Tab",
        Action::PrevPanel,
        None,
        false,
        "previous panel"
    ),
    b!(
        &[(KeyCode::Up, NONE), (KeyCode::Char('k'), NONE)],
        "↑/k",
        Action::Up,
        None,
        false,
        "move up"
    ),
    b!(
        &[(KeyCode::Down, NONE), (KeyCode::Char('j'), NONE)],
        "↓/j",
        Action::Down,
        None,
        false,
        "move down"
    ),
    b!(
        &[(KeyCode::Left, NONE), (KeyCode::Char('h'), NONE)],
        "←/h",
        Action::Left,
        Some(&[Panel::Cores, Panel::Checks, Panel::Network]),
        false,
        "move left"
    ),
    b!(
        &[(KeyCode::Right, NONE), (KeyCode::Char('l'), NONE)],
        "→/l",
        Action::Right,
        Some(&[Panel::Cores, Panel::Checks, Panel::Network]),
        false,
        "move right"
    ),
    b!(
        &[(KeyCode::PageUp, NONE)],
        "PgUp",
        Action::PageUp,
        None,
        false,
        "page up"
    ),
    b!(
        &[(KeyCode::PageDown, NONE)],
        "PgDn",
        Action::PageDown,
        None,
        false,
        "page down"
    ),
    b!(
        &[(KeyCode::Home, NONE), (KeyCode::Char('g'), NONE)],
        "Home/g",
        Action::Top,
        None,
        false,
        "first row"
    ),
    b!(
        &[
            (KeyCode::End, NONE),
            (KeyCode::Char('G'), SHIFT),
            (KeyCode::Char('G'), NONE)
        ],
        "End/G",
        Action::Bottom,
        None,
        false,
        "last row"
    ),
    b!(
        &[(KeyCode::Enter, NONE)],
        "Enter",
        Action::Enter,
        Some(&[
            Panel::Overview,
            Panel::Drives,
            Panel::Checks,
            Panel::Network,
            Panel::Cores,
            Panel::Events
        ]),
        false,
        "drill in"
    ),
    b!(
        &[(KeyCode::Esc, NONE)],
        "Esc",
        Action::Back,
        None,
        false,
        "back / close / clear filter"
    ),
    b!(
        &[(KeyCode::Char('/'), NONE)],
        "/",
        Action::Filter,
        None,
        false,
        "filter rows"
    ),
    b!(
        &[(KeyCode::Char('s'), NONE)],
        "s",
        Action::Sort,
        Some(&[Panel::Drives, Panel::Checks, Panel::Network]),
        false,
        "change sort order"
    ),
    b!(
        &[(KeyCode::Char(']'), NONE), (KeyCode::Char('n'), NONE)],
        "]/n",
        Action::NextNode,
        Some(&[Panel::Cores]),
        false,
        "next node"
    ),
    b!(
        &[(KeyCode::Char('['), NONE), (KeyCode::Char('p'), NONE)],
        "[/p",
        Action::PrevNode,
        Some(&[Panel::Cores]),
        false,
        "previous node"
    ),
    b!(
        &[(KeyCode::Char('v'), NONE)],
        "v",
        Action::ToggleView,
        Some(&[Panel::Network]),
        false,
        "port matrix / NIC table"
    ),
    b!(
        &[(KeyCode::Char('o'), NONE)],
        "o",
        Action::NextGroup,
        Some(&[Panel::Network]),
        false,
        "next port group"
    ),
    b!(
        &[(KeyCode::Char('P'), SHIFT), (KeyCode::Char('P'), NONE)],
        "P",
        Action::ProbeFull,
        Some(&[Panel::Network]),
        true,
        "probe full port ranges from the selected node (admin)"
    ),
    b!(
        &[(KeyCode::Char('J'), SHIFT), (KeyCode::Char('J'), NONE)],
        "J",
        Action::Jobs,
        None,
        false,
        "jobs: operations started here, with progress (c cancels one)"
    ),
    b!(
        &[(KeyCode::Char('t'), NONE)],
        "t",
        Action::CycleTheme,
        None,
        false,
        "next theme"
    ),
    b!(
        &[(KeyCode::Char('?'), NONE), (KeyCode::Char('?'), SHIFT)],
        "?",
        Action::Help,
        None,
        false,
        "this help"
    ),
    b!(
        &[(KeyCode::Char(':'), NONE), (KeyCode::Char(':'), SHIFT)],
        ":",
        Action::Command,
        None,
        false,
        "command: node NAME, panel NAME, theme NAME, quit"
    ),
    b!(
        &[(KeyCode::Char('q'), NONE), (KeyCode::Char('c'), CTRL)],
        "q",
        Action::Quit,
        None,
        false,
        "quit"
    ),
];

impl Binding {
    pub fn live_in(&self, panel: Panel, read_only: bool) -> bool {
        !(read_only && self.mutating) && self.panels.is_none_or(|p| p.contains(&panel))
    }
}

/// The action for a key in a panel, if any binding is live for it.
pub fn lookup(key: &KeyEvent, panel: Panel, read_only: bool) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.live_in(panel, read_only))
        .find(|b| {
            b.keys.iter().any(|(c, m)| {
                *c == key.code
                    && (*m == key.modifiers
                        || (*m == NONE && key.modifiers == SHIFT && matches!(c, KeyCode::Char(_))))
            })
        })
        .map(|b| b.action)
}

/// Bindings live in a panel, in table order (for `?`).
pub fn live(panel: Panel, read_only: bool) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.live_in(panel, read_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn read_only_hides_mutating_keys() {
        assert_eq!(
            lookup(&key(KeyCode::Char('P')), Panel::Network, false),
            Some(Action::ProbeFull)
        );
        assert_eq!(lookup(&key(KeyCode::Char('P')), Panel::Network, true), None);
        assert!(live(Panel::Network, true).all(|b| !b.mutating));
        assert!(live(Panel::Network, false).any(|b| b.mutating));
    }

    #[test]
    fn panel_specific_keys_only_where_they_apply() {
        assert_eq!(
            lookup(&key(KeyCode::Char('v')), Panel::Network, false),
            Some(Action::ToggleView)
        );
        assert_eq!(lookup(&key(KeyCode::Char('v')), Panel::Drives, false), None);
        assert_eq!(
            lookup(&key(KeyCode::Char('j')), Panel::Drives, false),
            Some(Action::Down)
        );
        assert_eq!(
            lookup(
                &KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Panel::Cores,
                true
            ),
            Some(Action::Quit)
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_panel() {
        for panel in Panel::ALL {
            let mut seen = std::collections::HashSet::new();
            for b in live(panel, false) {
                for k in b.keys {
                    assert!(seen.insert(*k), "{k:?} bound twice in {panel:?}");
                }
            }
        }
    }
}

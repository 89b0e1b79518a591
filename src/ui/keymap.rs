//! The key bindings, as data: the console's own (panels, movement, filter, help, quit)
//! here, each panel's in its file, built from the shared ones below. The help screen lists
//! exactly what is live in the current panel, and `--read-only` removes every mutating
//! binding from both lookup and help.

use super::nav::Action;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub struct Binding {
    pub keys: &'static [(KeyCode, KeyModifiers)],
    pub label: &'static str,
    pub action: Action,
    pub mutating: bool,
    pub help: &'static str,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

const fn b(
    keys: &'static [(KeyCode, KeyModifiers)],
    label: &'static str,
    action: Action,
    help: &'static str,
) -> Binding {
    Binding {
        keys,
        label,
        action,
        mutating: false,
        help,
    }
}

impl Binding {
    /// The same binding, marked as changing the cluster (hidden by `--read-only`).
    pub const fn mutating(self) -> Binding {
        Binding {
            mutating: true,
            ..self
        }
    }
}

// Bindings panels take for themselves (a panel lists the ones it handles).
pub const LEFT: Binding = b(
    &[(KeyCode::Left, NONE), (KeyCode::Char('h'), NONE)],
    "←/h",
    Action::Left,
    "move left",
);
pub const RIGHT: Binding = b(
    &[(KeyCode::Right, NONE), (KeyCode::Char('l'), NONE)],
    "→/l",
    Action::Right,
    "move right",
);
pub const ENTER: Binding = b(
    &[(KeyCode::Enter, NONE)],
    "Enter",
    Action::Enter,
    "drill in",
);
pub const SORT: Binding = b(
    &[(KeyCode::Char('s'), NONE)],
    "s",
    Action::Sort,
    "change sort order",
);

/// Before the panel's own keys in the help: switching panels and moving.
pub static MOVE: &[Binding] = &[
    b(
        &[(KeyCode::Tab, NONE)],
        "Tab",
        Action::NextPanel,
        "next panel",
    ),
    b(
        &[(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE)],
        "S-Tab",
        Action::PrevPanel,
        "previous panel",
    ),
    b(
        &[(KeyCode::Up, NONE), (KeyCode::Char('k'), NONE)],
        "↑/k",
        Action::Up,
        "move up",
    ),
    b(
        &[(KeyCode::Down, NONE), (KeyCode::Char('j'), NONE)],
        "↓/j",
        Action::Down,
        "move down",
    ),
    b(
        &[(KeyCode::PageUp, NONE)],
        "PgUp",
        Action::PageUp,
        "page up",
    ),
    b(
        &[(KeyCode::PageDown, NONE)],
        "PgDn",
        Action::PageDown,
        "page down",
    ),
    b(
        &[(KeyCode::Home, NONE), (KeyCode::Char('g'), NONE)],
        "Home/g",
        Action::Top,
        "first row",
    ),
    b(
        &[
            (KeyCode::End, NONE),
            (KeyCode::Char('G'), SHIFT),
            (KeyCode::Char('G'), NONE),
        ],
        "End/G",
        Action::Bottom,
        "last row",
    ),
    b(
        &[(KeyCode::Esc, NONE)],
        "Esc",
        Action::Back,
        "back / close / clear filter",
    ),
    b(
        &[(KeyCode::Char('/'), NONE)],
        "/",
        Action::Filter,
        "filter rows",
    ),
];

/// After the panel's own keys in the help.
pub static GLOBAL: &[Binding] = &[
    b(
        &[(KeyCode::Char('J'), SHIFT), (KeyCode::Char('J'), NONE)],
        "J",
        Action::Jobs,
        "jobs: operations started here, with progress (c cancels one)",
    ),
    b(
        &[(KeyCode::Char('t'), NONE)],
        "t",
        Action::CycleTheme,
        "next theme",
    ),
    b(
        &[(KeyCode::Char('?'), NONE), (KeyCode::Char('?'), SHIFT)],
        "?",
        Action::Help,
        "this help",
    ),
    b(
        &[(KeyCode::Char(':'), NONE), (KeyCode::Char(':'), SHIFT)],
        ":",
        Action::Command,
        "command: node NAME, panel NAME, theme NAME, jobs, quit",
    ),
    b(
        &[(KeyCode::Char('q'), NONE), (KeyCode::Char('c'), CTRL)],
        "q",
        Action::Quit,
        "quit",
    ),
];

impl Binding {
    pub fn live(&self, read_only: bool) -> bool {
        !(read_only && self.mutating)
    }

    fn takes(&self, key: &KeyEvent) -> bool {
        self.keys.iter().any(|(c, m)| {
            *c == key.code
                && (*m == key.modifiers
                    || (*m == NONE && key.modifiers == SHIFT && matches!(c, KeyCode::Char(_))))
        })
    }
}

/// Every binding live in a panel whose own keys are `panel`, in help order.
pub fn live(panel: &'static [Binding], read_only: bool) -> impl Iterator<Item = &'static Binding> {
    MOVE.iter()
        .chain(panel)
        .chain(GLOBAL)
        .filter(move |b| b.live(read_only))
}

/// The action for a key in a panel whose own keys are `panel`, among `panels` panels
/// (the digits 1 to `panels` switch to one).
pub fn lookup(
    key: &KeyEvent,
    panel: &'static [Binding],
    panels: usize,
    read_only: bool,
) -> Option<Action> {
    if let KeyCode::Char(c @ '1'..='9') = key.code {
        let i = c as usize - '1' as usize;
        if i < panels && matches!(key.modifiers, NONE | SHIFT) {
            return Some(Action::Panel(i));
        }
    }
    live(panel, read_only)
        .find(|b| b.takes(key))
        .map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    static PANEL: &[Binding] = &[
        LEFT,
        RIGHT,
        b(
            &[(KeyCode::Char('v'), NONE)],
            "v",
            Action::ToggleView,
            "view",
        ),
        b(
            &[(KeyCode::Char('P'), SHIFT), (KeyCode::Char('P'), NONE)],
            "P",
            Action::ProbeFull,
            "probe",
        )
        .mutating(),
    ];

    #[test]
    fn read_only_hides_mutating_keys() {
        assert_eq!(
            lookup(&key(KeyCode::Char('P')), PANEL, 7, false),
            Some(Action::ProbeFull)
        );
        assert_eq!(lookup(&key(KeyCode::Char('P')), PANEL, 7, true), None);
        assert!(live(PANEL, true).all(|b| !b.mutating));
        assert!(live(PANEL, false).any(|b| b.mutating));
    }

    #[test]
    fn panel_keys_only_where_a_panel_lists_them() {
        assert_eq!(
            lookup(&key(KeyCode::Char('v')), PANEL, 7, false),
            Some(Action::ToggleView)
        );
        assert_eq!(lookup(&key(KeyCode::Char('v')), &[], 7, false), None);
        assert_eq!(
            lookup(&key(KeyCode::Char('j')), &[], 7, false),
            Some(Action::Down)
        );
        assert_eq!(
            lookup(
                &KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                &[],
                7,
                true
            ),
            Some(Action::Quit)
        );
    }

    #[test]
    fn digits_switch_only_to_panels_that_exist() {
        assert_eq!(
            lookup(&key(KeyCode::Char('3')), &[], 7, false),
            Some(Action::Panel(2))
        );
        assert_eq!(lookup(&key(KeyCode::Char('8')), &[], 7, false), None);
    }

    #[test]
    fn the_console_binds_no_key_twice() {
        let mut seen = std::collections::HashSet::new();
        for b in live(PANEL, false) {
            for k in b.keys {
                assert!(seen.insert(*k), "{k:?} bound twice");
            }
        }
    }
}

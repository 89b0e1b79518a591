//! The confirm popup every key that changes the cluster goes through (gitui's
//! `popups/confirm.rs`, k9s' "are you sure"): a plain yes/no for operations that change
//! nothing irreversibly, and the target's name typed out for destructive ones, so a
//! mistyped node or drive cannot be destroyed by a reflex Enter.

use super::theme::Theme;
use crossterm::event::KeyCode;
use ratatui::text::{Line, Span};

/// An operation waiting for the operator's yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Probe every port of the core group from this node (view index) to its peers.
    ProbeFull { node: usize },
    /// start-io (`start`) or stop-io, run on this member (view index).
    Io { node: usize, start: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub pending: Pending,
    pub title: String,
    /// What will happen, one line each.
    pub body: Vec<String>,
    /// For destructive operations: the name that must be typed exactly.
    pub type_to_confirm: Option<String>,
    pub typed: String,
    /// Why the last Enter was refused.
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still open.
    Open,
    Accepted(Pending),
    Dismissed,
}

impl Confirm {
    pub fn new(pending: Pending, title: String, body: Vec<String>) -> Confirm {
        Confirm {
            pending,
            title,
            body,
            type_to_confirm: None,
            typed: String::new(),
            refusal: None,
        }
    }

    /// A destructive operation: Enter only accepts once `name` is typed exactly.
    pub fn typed(mut self, name: &str) -> Confirm {
        self.type_to_confirm = Some(name.to_string());
        self
    }

    pub fn key(&mut self, code: KeyCode) -> Outcome {
        match (&self.type_to_confirm, code) {
            (_, KeyCode::Esc) => Outcome::Dismissed,
            (None, KeyCode::Char('y' | 'Y') | KeyCode::Enter) => {
                Outcome::Accepted(self.pending.clone())
            }
            (None, KeyCode::Char('n' | 'N' | 'q')) => Outcome::Dismissed,
            (None, _) => Outcome::Open,
            (Some(name), KeyCode::Enter) => {
                if self.typed == *name {
                    Outcome::Accepted(self.pending.clone())
                } else {
                    self.refusal = Some(if self.typed.is_empty() {
                        format!("type `{name}` to confirm, or Esc to leave it")
                    } else {
                        format!(
                            "`{}` is not `{name}`: nothing done; type `{name}` exactly, or Esc",
                            self.typed
                        )
                    });
                    self.typed.clear();
                    Outcome::Open
                }
            }
            (Some(_), KeyCode::Backspace) => {
                self.typed.pop();
                Outcome::Open
            }
            (Some(_), KeyCode::Char(c)) => {
                if self.typed.chars().count() < 256 {
                    self.typed.push(c);
                }
                self.refusal = None;
                Outcome::Open
            }
            (Some(_), _) => Outcome::Open,
        }
    }

    pub fn lines(&self, th: &Theme) -> Vec<Line<'static>> {
        let mut l: Vec<Line<'static>> = self
            .body
            .iter()
            .map(|b| Line::from(Span::styled(b.clone(), th.text)))
            .collect();
        l.push(Line::from(""));
        match &self.type_to_confirm {
            None => l.push(Line::from(vec![
                Span::styled("y / Enter", th.accent),
                Span::styled(" go   ", th.text),
                Span::styled("n / Esc", th.accent),
                Span::styled(" leave it", th.text),
            ])),
            Some(name) => {
                l.push(Line::from(vec![
                    Span::styled("This cannot be undone. Type ", th.warn),
                    Span::styled(name.clone(), th.accent),
                    Span::styled(" and Enter to go, Esc to leave it.", th.warn),
                ]));
                l.push(Line::from(vec![
                    Span::styled("> ", th.accent),
                    Span::styled(self.typed.clone(), th.text),
                    Span::styled("█", th.dim),
                ]));
            }
        }
        if let Some(r) = &self.refusal {
            l.push(Line::from(Span::styled(r.clone(), th.fail)));
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(c: &mut Confirm, s: &str) {
        for ch in s.chars() {
            assert_eq!(c.key(KeyCode::Char(ch)), Outcome::Open);
        }
    }

    #[test]
    fn the_confirm_popup_refuses_a_wrong_typed_name() {
        let p = Pending::ProbeFull { node: 3 };
        let mut c = Confirm::new(p.clone(), "t".into(), vec![]).typed("axon03");
        // A reflex Enter, y, or a wrong name does nothing.
        assert_eq!(c.key(KeyCode::Enter), Outcome::Open);
        assert!(c.refusal.as_deref().unwrap().contains("type `axon03`"));
        assert_eq!(
            c.key(KeyCode::Char('y')),
            Outcome::Open,
            "y is just a letter here"
        );
        assert_eq!(c.key(KeyCode::Enter), Outcome::Open);
        typed(&mut c, "axon3");
        assert_eq!(c.key(KeyCode::Enter), Outcome::Open);
        let r = c.refusal.clone().unwrap();
        assert!(
            r.contains("`axon3` is not `axon03`") && r.contains("nothing done"),
            "{r}"
        );
        assert!(c.typed.is_empty(), "the wrong name is cleared");
        // The right name, after a correction, goes.
        typed(&mut c, "axon033");
        c.key(KeyCode::Backspace);
        assert_eq!(c.key(KeyCode::Enter), Outcome::Accepted(p));
        // Esc leaves at any point.
        let mut c = Confirm::new(Pending::ProbeFull { node: 0 }, "t".into(), vec![]).typed("x");
        typed(&mut c, "x");
        assert_eq!(c.key(KeyCode::Esc), Outcome::Dismissed);
    }

    #[test]
    fn a_plain_confirm_takes_y_or_enter_and_nothing_else() {
        let p = Pending::ProbeFull { node: 1 };
        let mut c = Confirm::new(p.clone(), "t".into(), vec![]);
        assert_eq!(c.key(KeyCode::Char('x')), Outcome::Open);
        assert_eq!(c.key(KeyCode::Char('n')), Outcome::Dismissed);
        assert_eq!(c.key(KeyCode::Char('y')), Outcome::Accepted(p.clone()));
        assert_eq!(c.key(KeyCode::Enter), Outcome::Accepted(p));
    }
}

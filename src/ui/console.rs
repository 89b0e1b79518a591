//! The console's state and what each key does to it: the panels (each owning its own
//! state), which one shows, the input line, help, the confirm popup and the jobs. No I/O:
//! side effects (load a theme, ask before an operation, run it) are returned as `Effect`s
//! for the event loop to carry out.

use super::component::{Cx, Panel};
use super::confirm::{self, Confirm, Pending};
use super::jobs::Jobs;
use super::keymap;
use super::nav::{Action, Focus, Reply};
use super::panels;
use crate::fleet::health::{Facet, Health};
use crate::fleet::view::ClusterView;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Text being typed at the bottom line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Filter(String),
    Command(String),
}

/// What the event loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    Quit,
    LoadTheme(String),
    /// An operation a panel asks for: the loop opens the confirm popup for it.
    Ask(Pending),
    /// Run an operation the operator confirmed.
    Run(Pending),
    /// A demo fault line (`fail node axon003`, …) for the demo that runs this console.
    Demo(String),
}

/// The data a panel was derived from: the view's generation and the second (ages and
/// statuses move with the clock).
type Stamp = (u64, i64);

pub struct Console {
    pub panels: Vec<Box<dyn Panel>>,
    /// The panel shown.
    pub active: usize,
    /// The cluster's health, computed once per stamp for every panel and the header.
    pub health: Health,
    stamp: Stamp,
    /// The stamp each panel was last derived at.
    derived: Vec<Option<Stamp>>,
    pub now_ms: i64,
    pub input: Option<Input>,
    pub help: bool,
    pub message: Option<String>,
    pub read_only: bool,
    /// Last body height, for paging, and terminal width, for the cores grid (the loop
    /// records both after each frame).
    pub page: usize,
    pub width: u16,
    pub theme_name: String,
    /// The confirm popup of an operation waiting for a yes.
    pub confirm: Option<Confirm>,
    /// Operations started from the panels, running and finished.
    pub jobs: Jobs,
}

/// The panels' view of the data, borrowed field by field so a panel can be borrowed
/// mutably beside it.
macro_rules! cx {
    ($c:expr, $view:expr) => {
        Cx {
            view: $view,
            health: &$c.health,
            now_ms: $c.now_ms,
            width: $c.width,
            page: $c.page,
        }
    };
}

impl Console {
    pub fn new(view: &ClusterView, now_ms: i64, read_only: bool, theme_name: &str) -> Console {
        let panels = panels::all();
        let n = panels.len();
        let mut c = Console {
            panels,
            active: 0,
            health: Health::compute(view, now_ms),
            stamp: (view.generation, now_ms.div_euclid(1000)),
            derived: vec![None; n],
            now_ms,
            input: None,
            help: false,
            message: None,
            read_only,
            page: 20,
            width: 80,
            theme_name: theme_name.to_string(),
            confirm: None,
            jobs: Jobs::default(),
        };
        c.ensure(0, view);
        c
    }

    /// Brings the health and the shown panel up to date with the data at `now_ms`
    /// (cheap when neither the data nor the second changed).
    pub fn update(&mut self, view: &ClusterView, now_ms: i64) {
        self.now_ms = now_ms;
        let stamp = (view.generation, now_ms.div_euclid(1000));
        if stamp != self.stamp {
            self.health = Health::compute(view, now_ms);
            self.stamp = stamp;
        }
        self.ensure(self.active, view);
    }

    /// Forgets what was derived: the next `update` computes the health and the shown
    /// panel's rows again, as when new data arrives.
    pub fn invalidate(&mut self) {
        self.stamp = (u64::MAX, i64::MIN);
        self.derived.iter_mut().for_each(|d| *d = None);
    }

    /// Derives panel `i` if the data changed since it last was.
    fn ensure(&mut self, i: usize, view: &ClusterView) {
        if self.derived[i] != Some(self.stamp) {
            let cx = cx!(self, view);
            self.panels[i].derive(&cx);
            self.derived[i] = Some(self.stamp);
        }
    }

    pub fn panel(&self) -> &dyn Panel {
        self.panels[self.active].as_ref()
    }

    /// The panel whose title is `name` (any case) or whose position is the digit `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        find(&self.panels, name)
    }

    /// Shows panel `i`.
    pub fn show(&mut self, i: usize, view: &ClusterView) {
        if i < self.panels.len() {
            self.active = i;
            self.ensure(i, view);
        }
    }

    fn titles(&self) -> String {
        titles(&self.panels)
    }

    /// Shows `to` on the first panel that wants it.
    pub fn focus(&mut self, to: &Focus, view: &ClusterView) -> bool {
        let Some(i) = self.panels.iter().position(|p| p.wants(to)) else {
            return false;
        };
        self.show(i, view);
        let cx = cx!(self, view);
        self.panels[i].focus(to, &cx);
        true
    }

    /// A key, in whatever is open: the confirm popup, the job list, the input line, or
    /// the panel.
    pub fn key(&mut self, k: KeyEvent, view: &ClusterView) -> Effect {
        // A terminal sends Esc as a lone ESC byte. Esc and then a key in quick succession
        // (a typist over a slow SSH link, or a busy machine) arrive together as ESC+key,
        // which the terminal reader takes for Alt+key. axon binds nothing to Alt, so it
        // is what the operator typed: Esc, then the key.
        if let (KeyCode::Char(c), true) = (k.code, k.modifiers.contains(KeyModifiers::ALT)) {
            let first = self.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE), view);
            let plain = KeyEvent::new(KeyCode::Char(c), k.modifiers - KeyModifiers::ALT);
            return match self.key(plain, view) {
                Effect::None => first,
                second => second,
            };
        }
        if let Some(c) = self.confirm.as_mut() {
            return match c.key(k.code) {
                confirm::Outcome::Open => Effect::None,
                confirm::Outcome::Dismissed => {
                    self.confirm = None;
                    self.message = Some("nothing done".into());
                    Effect::None
                }
                confirm::Outcome::Accepted(p) => {
                    self.confirm = None;
                    Effect::Run(p)
                }
            };
        }
        if self.jobs.open && self.input.is_none() {
            match k.code {
                KeyCode::Esc | KeyCode::Char('J' | 'q') => self.jobs.open = false,
                KeyCode::Up | KeyCode::Char('k') => self.jobs.up(),
                KeyCode::Down | KeyCode::Char('j') => self.jobs.down(),
                KeyCode::Char('c') if !self.read_only => {
                    self.message = Some(self.jobs.cancel_selected());
                }
                _ => {}
            }
            return Effect::None;
        }
        if self.input.is_some() {
            return match k.code {
                KeyCode::Esc => {
                    if let Some(Input::Filter(_)) = self.input {
                        self.set_filter("", view);
                    }
                    self.input = None;
                    Effect::None
                }
                KeyCode::Enter => match self.input.take() {
                    Some(Input::Command(cmd)) => self.command(&cmd, view),
                    _ => Effect::None,
                },
                KeyCode::Backspace => {
                    self.edit(view, |s| {
                        s.pop();
                    });
                    Effect::None
                }
                KeyCode::Char(ch) => {
                    self.edit(view, |s| s.push(ch));
                    Effect::None
                }
                _ => Effect::None,
            };
        }
        match keymap::lookup(&k, self.panel().keys(), self.panels.len(), self.read_only) {
            Some(a) => self.act(a, view),
            None => Effect::None,
        }
    }

    /// Types into the input line; a filter applies as it is typed.
    fn edit(&mut self, view: &ClusterView, f: impl FnOnce(&mut String)) {
        match &mut self.input {
            Some(Input::Filter(s)) => {
                f(s);
                let s = s.clone();
                self.set_filter(&s, view);
            }
            Some(Input::Command(s)) => f(s),
            None => {}
        }
    }

    fn set_filter(&mut self, filter: &str, view: &ClusterView) {
        let i = self.active;
        self.ensure(i, view);
        let cx = cx!(self, view);
        self.panels[i].set_filter(filter, &cx);
    }

    /// A `:` command.
    pub fn command(&mut self, cmd: &str, view: &ClusterView) -> Effect {
        let mut words = cmd.split_whitespace();
        let verb = words.next().unwrap_or("");
        let arg = words.next().unwrap_or("");
        match verb {
            "q" | "quit" => return Effect::Quit,
            "node" | "n" => match view.node_index(arg) {
                Some(node) => {
                    self.focus(
                        &Focus::Node {
                            node,
                            facet: Facet::Cores,
                        },
                        view,
                    );
                    self.message = Some(format!("node {arg}"));
                }
                None => self.message = Some(format!("no node `{arg}`")),
            },
            "panel" | "p" => match self.find(arg) {
                Some(i) => self.show(i, view),
                None => self.message = Some(format!("no panel `{arg}`: {}", self.titles())),
            },
            "theme" | "t" if !arg.is_empty() => return Effect::LoadTheme(arg.to_string()),
            "jobs" | "j" => self.jobs.open = true,
            "fail" | "heal" | "corrupt" => {
                if self.read_only {
                    self.message = Some("read-only console: no fault injection".into());
                } else {
                    return Effect::Demo(cmd.trim().to_string());
                }
            }
            "" => {}
            _ => match self.find(verb) {
                Some(i) => self.show(i, view),
                None => {
                    self.message = Some(format!(
                        "unknown command `{verb}`: node NAME, panel NAME, theme NAME, jobs, quit; in the demo: fail node NAME, heal node NAME, fail drive NODE DRIVE, corrupt drive NODE DRIVE (DRIVE: a file name such as drive00, or a number)"
                    ))
                }
            },
        }
        Effect::None
    }

    /// Applies an action: the console's own, else the shown panel's.
    pub fn act(&mut self, a: Action, view: &ClusterView) -> Effect {
        self.message = None;
        if self.help && !matches!(a, Action::Help | Action::Back | Action::Quit) {
            self.help = false;
        }
        let n = self.panels.len();
        let i = self.active;
        match a {
            Action::Quit => return Effect::Quit,
            Action::Help => self.help = !self.help,
            Action::NextPanel => self.show((i + 1) % n, view),
            Action::PrevPanel => self.show((i + n - 1) % n, view),
            Action::Panel(x) => self.show(x, view),
            Action::Back => {
                if self.help {
                    self.help = false;
                } else if self.panels[i].close_popup() {
                } else if !self.panels[i].filter().is_empty() {
                    self.set_filter("", view);
                } else {
                    self.message = Some("press q to quit".into());
                }
            }
            Action::Filter => self.input = Some(Input::Filter(self.panels[i].filter().to_string())),
            Action::Command => self.input = Some(Input::Command(String::new())),
            Action::CycleTheme => {
                return Effect::LoadTheme(next_theme(&self.theme_name).to_string());
            }
            Action::Jobs => self.jobs.open = !self.jobs.open,
            _ => {
                // While a popup is open the rows under it stay where they are.
                let vertical = matches!(
                    a,
                    Action::Up
                        | Action::Down
                        | Action::PageUp
                        | Action::PageDown
                        | Action::Top
                        | Action::Bottom
                );
                if vertical && self.panels[i].popup_open() {
                    return Effect::None;
                }
                self.ensure(i, view);
                let cx = cx!(self, view);
                match self.panels[i].act(a, &cx) {
                    Reply::Ignored | Reply::Done => {}
                    Reply::Message(m) => self.message = Some(m),
                    Reply::Focus(to) => {
                        self.focus(&to, view);
                    }
                    Reply::Ask(p) => return Effect::Ask(p),
                }
            }
        }
        Effect::None
    }
}

/// The panel whose title is `name` (any case) or whose position is the digit `name`.
pub fn find(panels: &[Box<dyn Panel>], name: &str) -> Option<usize> {
    let name = name.to_lowercase();
    panels.iter().enumerate().find_map(|(i, p)| {
        (p.title().to_lowercase() == name || name == (i + 1).to_string()).then_some(i)
    })
}

/// The panels' names, as `:panel` and `--panel` take them.
pub fn titles(panels: &[Box<dyn Panel>]) -> String {
    panels
        .iter()
        .map(|p| p.title().to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn next_theme(current: &str) -> &'static str {
    let names: Vec<&str> = super::theme::BUILTIN.iter().map(|(n, _)| *n).collect();
    let i = names
        .iter()
        .position(|n| *n == current)
        .map(|i| i + 1)
        .unwrap_or(0);
    names[i % names.len()]
}

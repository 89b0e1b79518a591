//! The console's UI state and what each action does to it. No I/O: side effects (start a
//! probe, load a theme) are returned as `Effect`s for the event loop to carry out.

use super::derive::Derived;
use super::keymap::Action;
use crate::fleet::view::ClusterView;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Panel {
    Overview,
    Cores,
    Drives,
    Network,
    Checks,
    Stripes,
    Events,
}

impl Panel {
    pub const ALL: [Panel; 7] = [
        Panel::Overview,
        Panel::Cores,
        Panel::Drives,
        Panel::Network,
        Panel::Checks,
        Panel::Stripes,
        Panel::Events,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Panel::Overview => "Overview",
            Panel::Cores => "Cores",
            Panel::Drives => "Drives",
            Panel::Network => "Network",
            Panel::Checks => "Checks",
            Panel::Stripes => "Stripes",
            Panel::Events => "Events",
        }
    }

    pub fn parse(s: &str) -> Option<Panel> {
        let s = s.to_lowercase();
        Panel::ALL.into_iter().find(|p| {
            p.title().to_lowercase() == s
                || (s.len() == 1 && s.parse::<usize>().ok() == Some(p.index() + 1))
        })
    }

    pub fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetView {
    Matrix,
    Nics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveSort {
    Health,
    Node,
    Temperature,
    Wear,
    MediaErrors,
    Capacity,
}

impl DriveSort {
    pub const ALL: [DriveSort; 6] = [
        DriveSort::Health,
        DriveSort::Node,
        DriveSort::Temperature,
        DriveSort::Wear,
        DriveSort::MediaErrors,
        DriveSort::Capacity,
    ];
    pub fn label(self) -> &'static str {
        match self {
            DriveSort::Health => "health",
            DriveSort::Node => "node",
            DriveSort::Temperature => "temperature",
            DriveSort::Wear => "wear",
            DriveSort::MediaErrors => "media errors",
            DriveSort::Capacity => "capacity",
        }
    }
}

/// A drill-in popup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Problem(usize),
    Drive {
        node: usize,
        drive: String,
    },
    Check {
        node: usize,
        check: String,
    },
    Cpu {
        node: usize,
        cpu: u32,
    },
    Pair {
        from: usize,
        to: usize,
    },
    Nic {
        node: usize,
        nic: String,
    },
    /// By the event's sequence number (newer events do not shift it).
    Event(u64),
    /// A cluster-wide check, by id.
    ClusterCheck(String),
}

impl Detail {
    /// The node the popup is about, if it is about one.
    pub fn node(&self) -> Option<usize> {
        match self {
            Detail::Drive { node, .. }
            | Detail::Check { node, .. }
            | Detail::Cpu { node, .. }
            | Detail::Nic { node, .. } => Some(*node),
            Detail::Pair { from, .. } => Some(*from),
            Detail::Problem(_) | Detail::Event(_) | Detail::ClusterCheck(_) => None,
        }
    }
}

/// Text being typed at the bottom line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Filter(String),
    Command(String),
}

/// What the event loop must do after an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    Quit,
    LoadTheme(String),
    /// Probe the full port ranges from this node to its peers (asks first).
    ProbeFull(usize),
    /// Run an operation the operator confirmed.
    Run(super::confirm::Pending),
}

#[derive(Debug, Clone)]
pub struct UiState {
    pub panel: Panel,
    /// The node the Cores panel shows.
    pub node: usize,
    pub cpu: usize,
    pub sel: HashMap<Panel, usize>,
    pub col: usize,
    pub filters: HashMap<Panel, String>,
    pub input: Option<Input>,
    pub drive_sort: DriveSort,
    pub checks_worst_first: bool,
    /// Network: nodes with blocked probes / NICs with wrong settings first.
    pub net_worst_first: bool,
    pub detail: Option<Detail>,
    pub help: bool,
    pub message: Option<String>,
    pub net_view: NetView,
    pub net_group: usize,
    pub read_only: bool,
    /// Last body height, for paging, and terminal width, for the cores grid (the loop
    /// records both after each frame).
    pub page: usize,
    pub width: u16,
    pub theme_name: String,
    /// The confirm popup of an operation waiting for a yes.
    pub confirm: Option<super::confirm::Confirm>,
    /// Operations started from the panels, running and finished.
    pub jobs: super::jobs::Jobs,
}

impl UiState {
    pub fn new(read_only: bool, theme_name: &str) -> Self {
        UiState {
            panel: Panel::Overview,
            node: 0,
            cpu: 0,
            sel: HashMap::new(),
            col: 0,
            filters: HashMap::new(),
            input: None,
            drive_sort: DriveSort::Health,
            checks_worst_first: false,
            net_worst_first: false,
            detail: None,
            help: false,
            message: None,
            net_view: NetView::Matrix,
            net_group: 0,
            read_only,
            page: 20,
            width: 80,
            theme_name: theme_name.to_string(),
            confirm: None,
            jobs: Default::default(),
        }
    }

    pub fn selected(&self, p: Panel) -> usize {
        self.sel.get(&p).copied().unwrap_or(0)
    }

    pub fn filter(&self, p: Panel) -> &str {
        self.filters.get(&p).map(String::as_str).unwrap_or("")
    }

    fn set_sel(&mut self, p: Panel, v: usize) {
        self.sel.insert(p, v);
    }

    /// Typed text while an input line is open. Returns the effect of Enter on a command.
    pub fn type_char(&mut self, c: char) {
        match &mut self.input {
            Some(Input::Filter(s)) => {
                s.push(c);
                let s = s.clone();
                self.filters.insert(self.panel, s);
                self.set_sel(self.panel, 0);
            }
            Some(Input::Command(s)) => s.push(c),
            None => {}
        }
    }

    pub fn backspace(&mut self) {
        match &mut self.input {
            Some(Input::Filter(s)) => {
                s.pop();
                let s = s.clone();
                self.filters.insert(self.panel, s);
            }
            Some(Input::Command(s)) => {
                s.pop();
            }
            None => {}
        }
    }

    /// Enter on the input line.
    pub fn submit(&mut self, view: &ClusterView) -> Effect {
        match self.input.take() {
            Some(Input::Filter(_)) | None => Effect::None,
            Some(Input::Command(cmd)) => self.command(&cmd, view),
        }
    }

    pub fn command(&mut self, cmd: &str, view: &ClusterView) -> Effect {
        let mut words = cmd.split_whitespace();
        let verb = words.next().unwrap_or("");
        let arg = words.next().unwrap_or("");
        match verb {
            "q" | "quit" => Effect::Quit,
            "node" | "n" => match view.node_index(arg) {
                Some(i) => {
                    self.node = i;
                    self.cpu = 0;
                    self.panel = Panel::Cores;
                    self.message = Some(format!("node {arg}"));
                    Effect::None
                }
                None => {
                    self.message = Some(format!("no node `{arg}`"));
                    Effect::None
                }
            },
            "panel" | "p" => match Panel::parse(arg) {
                Some(p) => {
                    self.panel = p;
                    Effect::None
                }
                None => {
                    self.message = Some(format!(
                        "no panel `{arg}`: overview, cores, drives, network, checks, stripes, events"
                    ));
                    Effect::None
                }
            },
            "theme" | "t" if !arg.is_empty() => Effect::LoadTheme(arg.to_string()),
            "jobs" | "j" => {
                self.jobs.open = true;
                Effect::None
            }
            "" => Effect::None,
            _ => {
                if let Some(p) = Panel::parse(verb) {
                    self.panel = p;
                    return Effect::None;
                }
                self.message = Some(format!(
                    "unknown command `{verb}`: node NAME, panel NAME, theme NAME, jobs, quit"
                ));
                Effect::None
            }
        }
    }

    /// Applies an action. `d` gives the row counts the current panel shows.
    pub fn act(&mut self, a: Action, view: &ClusterView, d: &Derived) -> Effect {
        self.message = None;
        if self.help && !matches!(a, Action::Help | Action::Back | Action::Quit) {
            self.help = false;
        }
        let rows = d.rows(self.panel, self);
        let p = self.panel;
        let sel = self.selected(p);
        let last = rows.saturating_sub(1);
        match a {
            Action::Quit => return Effect::Quit,
            Action::Help => self.help = !self.help,
            Action::NextPanel => self.switch((p.index() + 1) % Panel::ALL.len()),
            Action::PrevPanel => self.switch((p.index() + Panel::ALL.len() - 1) % Panel::ALL.len()),
            Action::Panel(x) => self.switch(x.index()),
            Action::Back => {
                if self.help {
                    self.help = false;
                } else if self.detail.is_some() {
                    self.detail = None;
                } else if !self.filter(p).is_empty() {
                    self.filters.remove(&p);
                } else {
                    self.message = Some("press q to quit".into());
                }
            }
            Action::Filter => self.input = Some(Input::Filter(self.filter(p).to_string())),
            Action::Command => self.input = Some(Input::Command(String::new())),
            Action::CycleTheme => {
                return Effect::LoadTheme(next_theme(&self.theme_name).to_string());
            }
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom
                if self.detail.is_none() =>
            {
                if p == Panel::Cores {
                    self.move_cpu(a, view, d);
                } else {
                    let page = self.page.max(1);
                    let v = match a {
                        Action::Up => sel.saturating_sub(1),
                        Action::Down => (sel + 1).min(last),
                        Action::PageUp => sel.saturating_sub(page),
                        Action::PageDown => (sel + page).min(last),
                        Action::Top => 0,
                        _ => last,
                    };
                    self.set_sel(p, v);
                }
            }
            Action::Left | Action::Right => match p {
                Panel::Cores => self.move_cpu(a, view, d),
                Panel::Checks => {
                    let cols = d.check_columns();
                    self.col = if a == Action::Left {
                        self.col.saturating_sub(1)
                    } else {
                        (self.col + 1).min(cols.saturating_sub(1))
                    };
                }
                Panel::Network if self.net_view == NetView::Matrix => {
                    let n = d.net_nodes.len();
                    self.col = if a == Action::Left {
                        self.col.saturating_sub(1)
                    } else {
                        (self.col + 1).min(n.saturating_sub(1))
                    };
                }
                _ => {}
            },
            Action::NextNode | Action::PrevNode => {
                let cands = d.core_nodes(view, self);
                if !cands.is_empty() {
                    let pos = cands.iter().position(|&i| i == self.node);
                    let next = match (a, pos) {
                        (Action::NextNode, Some(i)) => cands[(i + 1) % cands.len()],
                        (Action::PrevNode, Some(i)) => cands[(i + cands.len() - 1) % cands.len()],
                        _ => cands[0],
                    };
                    self.node = next;
                    self.cpu = 0;
                }
            }
            Action::Sort => match p {
                Panel::Drives => {
                    let i = DriveSort::ALL
                        .iter()
                        .position(|s| *s == self.drive_sort)
                        .unwrap_or(0);
                    self.drive_sort = DriveSort::ALL[(i + 1) % DriveSort::ALL.len()];
                    self.message = Some(format!("drives sorted by {}", self.drive_sort.label()));
                }
                Panel::Network => {
                    self.net_worst_first = !self.net_worst_first;
                    self.message = Some(if self.net_worst_first {
                        "problems first (blocked probes, wrong NIC settings)".into()
                    } else {
                        "nodes in inventory order".into()
                    });
                }
                Panel::Checks => {
                    self.checks_worst_first = !self.checks_worst_first;
                    self.message = Some(if self.checks_worst_first {
                        "nodes with most failures first".into()
                    } else {
                        "nodes in inventory order".into()
                    });
                }
                _ => {}
            },
            Action::ToggleView => {
                self.net_view = if self.net_view == NetView::Matrix {
                    NetView::Nics
                } else {
                    NetView::Matrix
                };
                self.set_sel(Panel::Network, 0);
                self.col = 0;
            }
            Action::NextGroup => {
                self.net_group = (self.net_group + 1) % crate::model::probes::SUMMARY_GROUPS.len();
            }
            Action::ProbeFull => {
                if let Some(node) = d.network_row_node(self) {
                    return Effect::ProbeFull(node);
                }
            }
            Action::Jobs => self.jobs.open = !self.jobs.open,
            Action::Enter => self.detail = d.detail_for(self, view),
            _ => {}
        }
        Effect::None
    }

    fn switch(&mut self, i: usize) {
        self.panel = Panel::ALL[i];
        self.detail = None;
        self.col = 0;
    }

    fn move_cpu(&mut self, a: Action, view: &ClusterView, _d: &Derived) {
        let Some(t) = view
            .nodes
            .get(self.node)
            .and_then(|n| n.snapshot.as_ref())
            .and_then(|s| s.topology.as_ref())
        else {
            return;
        };
        let lines = super::panels::cores::grid_for_width(t, self.width);
        let n: usize = lines.iter().map(|l| l.cpus.len()).sum();
        if n == 0 {
            return;
        }
        // (line, column) of the cursor, then move in the grid.
        let c = self.cpu.min(n - 1);
        let (mut li, mut col, mut acc) = (0, 0, 0);
        for (i, l) in lines.iter().enumerate() {
            if c < acc + l.cpus.len() {
                li = i;
                col = c - acc;
                break;
            }
            acc += l.cpus.len();
        }
        let start = |i: usize| lines[..i].iter().map(|l| l.cpus.len()).sum::<usize>();
        self.cpu = match a {
            Action::Left => c.saturating_sub(1),
            Action::Right => (c + 1).min(n - 1),
            Action::Up if li > 0 => start(li - 1) + col.min(lines[li - 1].cpus.len() - 1),
            Action::Down if li + 1 < lines.len() => {
                start(li + 1) + col.min(lines[li + 1].cpus.len() - 1)
            }
            Action::Up | Action::Down => c,
            Action::Top | Action::PageUp => 0,
            _ => n - 1,
        };
    }
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

//! Tables and aggregates derived from the `ClusterView`: the cluster's health at `now`
//! (statuses, counts and problems worst first, from `fleet::health`, with where Enter on a
//! problem leads), the cluster-wide drive table, check rows, the port matrix of the
//! selected port group, NIC rows, filtered events. Computed when the data, a filter or a
//! sort changes — not per frame — so rendering only walks the rows it shows.

use super::app::{Detail, DriveSort, NetView, Panel, UiState};
use crate::fleet::health::{self, Facet, Health, Subject};
use crate::fleet::view::{ClusterView, NodeStatus, Severity};
use crate::model::checks::{self, CheckResult, CheckStatus};
use crate::model::nvme::HealthLevel;
use crate::model::probes::{ProbeState, SUMMARY_GROUPS};

/// The health line's figures: computed by `fleet::health`, as `axon status` computes them.
pub use crate::fleet::health::Counts;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jump {
    None,
    Node(Panel, usize),
    Drive { node: usize, drive: String },
    Check { node: usize, check: String },
    Checks(String),
}

/// A row of the Checks panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckRow {
    /// Index into `Derived::cluster_checks`.
    Cluster(usize),
    /// A node index.
    Node(usize),
    None,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    pub node: Option<usize>,
    pub what: &'static str,
    pub text: String,
    pub jump: Jump,
}

impl From<health::Problem> for Problem {
    /// Enter on a problem goes where it can be fixed: the panel of what it is about.
    fn from(p: health::Problem) -> Problem {
        let jump = match p.subject {
            Subject::Nodes => Jump::None,
            Subject::Node { node, facet } => Jump::Node(
                match facet {
                    Facet::Status => Panel::Checks,
                    Facet::Cores => Panel::Cores,
                    Facet::Network => Panel::Network,
                },
                node,
            ),
            Subject::Drive { node, drive } => Jump::Drive { node, drive },
            Subject::Check { node, check } => Jump::Check { node, check },
            Subject::ClusterCheck(id) => Jump::Checks(id),
        };
        Problem {
            severity: p.severity,
            node: p.node,
            what: p.kind.as_str(),
            text: p.text,
            jump,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DriveRow {
    pub node: usize,
    pub drive: usize,
    pub level: HealthLevel,
    pub temp: Option<i32>,
    pub wear: Option<u8>,
    pub media_errors: Option<u64>,
    pub capacity: u64,
}

/// Cell codes of the port matrix.
pub const CELL_NONE: u8 = 0;
pub const CELL_SELF: u8 = 255;
/// Added to a state's code when the result is older than its node's rotation should let
/// it be (twice the time to cover every peer): it is no longer current.
pub const CELL_OLD: u8 = 0x80;

/// Age beyond which a node's probe result to a peer is not current: twice the time its
/// rotation takes to cover every peer (at least 30 s, or three probe intervals when the
/// agent does not say).
pub fn probe_old_after_ms(p: &crate::model::probes::ProbeReport, interval_ms: u64) -> i64 {
    let cover = if p.coverage_ms > 0 {
        p.coverage_ms
    } else {
        interval_ms.saturating_mul(3)
    };
    i64::try_from(cover.saturating_mul(2))
        .unwrap_or(i64::MAX)
        .max(30_000)
}

#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub now_ms: i64,
    pub status: Vec<NodeStatus>,
    pub counts: Counts,
    pub problems: Vec<Problem>,
    pub drives: Vec<DriveRow>,
    pub check_nodes: Vec<usize>,
    pub check_ids: Vec<&'static str>,
    pub cluster_checks: Vec<CheckResult>,
    pub net_nodes: Vec<usize>,
    /// `net_cells[i * n + j]`: worst state seen from net_nodes[i] to net_nodes[j] for the
    /// selected group (1 + ProbeState badness), CELL_NONE or CELL_SELF.
    pub net_cells: Vec<u8>,
    pub blocked_pairs: Vec<(usize, String)>,
    pub nic_rows: Vec<(usize, usize)>,
    pub events: Vec<usize>,
}

fn matches(filter: &str, hay: &[&str]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let f = filter.to_lowercase();
    hay.iter().any(|h| h.to_lowercase().contains(&f))
}

pub fn state_code(s: ProbeState) -> u8 {
    1 + s.badness()
}

/// The state of a cell code (the `CELL_OLD` flag aside).
pub fn code_state(c: u8) -> Option<ProbeState> {
    let c = if c == CELL_SELF { c } else { c & !CELL_OLD };
    ProbeState::ALL.into_iter().find(|s| state_code(*s) == c)
}

impl Derived {
    pub fn compute(view: &ClusterView, ui: &UiState, now_ms: i64) -> Derived {
        let mut d = Derived {
            now_ms,
            ..Default::default()
        };
        // Statuses, counts, cluster-wide checks and problems: the fleet's health, computed
        // once, the same way `axon status` computes it.
        let h = Health::compute(view, now_ms);
        d.status = h.status;
        d.counts = h.counts;
        d.cluster_checks = h.cluster_checks;
        let filter = ui.filter(Panel::Overview);
        d.problems = h
            .problems
            .into_iter()
            .filter(|p| matches(filter, &[&p.text]))
            .map(Problem::from)
            .collect();
        d.check_ids = checks::CATALOG
            .iter()
            .filter(|c| !c.cluster_wide)
            .map(|c| c.id)
            .collect();
        d.drives(view, ui);
        d.check_rows(view, ui);
        d.network(view, ui);
        let ef = ui.filter(Panel::Events);
        d.events = view
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches(ef, &[&e.text]))
            .map(|(i, _)| i)
            .collect();
        d
    }

    fn drives(&mut self, view: &ClusterView, ui: &UiState) {
        let f = ui.filter(Panel::Drives);
        let mut rows = Vec::new();
        for (i, n) in view.nodes.iter().enumerate() {
            for (j, d) in n
                .snapshot
                .as_ref()
                .and_then(|s| s.nvme.as_ref())
                .into_iter()
                .flatten()
                .enumerate()
            {
                if !matches(
                    f,
                    &[
                        &n.name,
                        &d.name,
                        &d.model,
                        &d.serial,
                        d.slot.as_deref().unwrap_or(""),
                    ],
                ) {
                    continue;
                }
                let sm = d.smart.as_ref();
                let level = n
                    .digest
                    .drives
                    .get(j)
                    .map(|h| h.level)
                    .unwrap_or(HealthLevel::Unknown);
                rows.push(DriveRow {
                    node: i,
                    drive: j,
                    // The last known health of a node that is not up is not current: it
                    // sorts with the unknowns, never with the healthy drives.
                    level: if self.status[i] == NodeStatus::Up {
                        level
                    } else {
                        level.max(HealthLevel::Unknown)
                    },
                    temp: sm.and_then(|s| s.temperature_celsius()),
                    wear: sm.map(|s| s.percentage_used),
                    media_errors: sm.map(|s| s.media_errors),
                    capacity: d.capacity_bytes(),
                });
            }
        }
        match ui.drive_sort {
            DriveSort::Health => rows.sort_by(|a, b| {
                b.level
                    .cmp(&a.level)
                    .then(b.media_errors.cmp(&a.media_errors))
                    .then(a.node.cmp(&b.node))
                    .then(a.drive.cmp(&b.drive))
            }),
            DriveSort::Node => rows.sort_by_key(|r| (r.node, r.drive)),
            DriveSort::Temperature => {
                rows.sort_by(|a, b| b.temp.cmp(&a.temp).then(a.node.cmp(&b.node)))
            }
            DriveSort::Wear => rows.sort_by(|a, b| b.wear.cmp(&a.wear).then(a.node.cmp(&b.node))),
            DriveSort::MediaErrors => rows.sort_by(|a, b| {
                b.media_errors
                    .cmp(&a.media_errors)
                    .then(a.node.cmp(&b.node))
            }),
            DriveSort::Capacity => {
                rows.sort_by(|a, b| b.capacity.cmp(&a.capacity).then(a.node.cmp(&b.node)))
            }
        }
        self.drives = rows;
    }

    fn check_rows(&mut self, view: &ClusterView, ui: &UiState) {
        let f = ui.filter(Panel::Checks);
        let mut rows: Vec<usize> = (0..view.nodes.len())
            .filter(|&i| matches(f, &[&view.nodes[i].name]))
            .collect();
        if ui.checks_worst_first {
            let score = |i: usize| {
                let r = view.nodes[i]
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.checks.as_ref());
                let fails = r
                    .map(|r| r.iter().filter(|x| x.status == CheckStatus::Fail).count())
                    .unwrap_or(0);
                let warns = r
                    .map(|r| r.iter().filter(|x| x.status == CheckStatus::Warn).count())
                    .unwrap_or(0);
                (usize::from(self.status[i] != NodeStatus::Up), fails, warns)
            };
            rows.sort_by(|a, b| score(*b).cmp(&score(*a)).then(a.cmp(b)));
        }
        self.check_nodes = rows;
    }

    fn network(&mut self, view: &ClusterView, ui: &UiState) {
        let f = ui.filter(Panel::Network);
        self.net_nodes = (0..view.nodes.len())
            .filter(|&i| matches(f, &[&view.nodes[i].name]))
            .collect();
        if ui.net_worst_first {
            let blocked = |i: usize| {
                view.nodes[i]
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.probes.as_ref())
                    .map_or(0, |p| p.blocked_total)
            };
            let status = &self.status;
            self.net_nodes.sort_by_key(|&i| {
                (
                    std::cmp::Reverse(status[i] != NodeStatus::Up),
                    std::cmp::Reverse(blocked(i)),
                    i,
                )
            });
        }
        self.nic_rows = Vec::new();
        for &i in &self.net_nodes {
            let n = view.nodes[i]
                .snapshot
                .as_ref()
                .and_then(|s| s.network.as_ref())
                .map_or(0, |net| net.nics.len());
            self.nic_rows.extend((0..n).map(|j| (i, j)));
        }
        if ui.net_worst_first {
            let badness = |&(i, j): &(usize, usize)| -> u32 {
                let Some(net) = view.nodes[i]
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.network.as_ref())
                else {
                    return 0;
                };
                net.nics.get(j).map_or(0, |nic| nic.findings(net).weight())
            };
            // Stable: equally bad NICs keep the node order.
            self.nic_rows
                .sort_by_cached_key(|r| std::cmp::Reverse(badness(r)));
        }
        // The matrix is only built while the Network panel shows it.
        if ui.panel != Panel::Network || ui.net_view != NetView::Matrix {
            return;
        }
        let n = self.net_nodes.len();
        // Position of each node in the (filtered) matrix.
        let mut pos_of = vec![usize::MAX; view.nodes.len()];
        for (pos, &i) in self.net_nodes.iter().enumerate() {
            pos_of[i] = pos;
        }
        let g = ui.net_group.min(SUMMARY_GROUPS.len() - 1);
        let now_ms = self.now_ms;
        let mut cells = vec![CELL_NONE; n * n];
        for (a, &i) in self.net_nodes.iter().enumerate() {
            cells[a * n + a] = CELL_SELF;
            let node = &view.nodes[i];
            let Some(p) = node.snapshot.as_ref().and_then(|s| s.probes.as_ref()) else {
                continue;
            };
            let interval = node
                .snapshot
                .as_ref()
                .and_then(|s| s.collector(crate::model::snapshot::Section::Probes))
                .map_or(0, |c| c.interval_ms);
            let old_after = probe_old_after_ms(p, interval);
            // Peers were resolved to node indices when the probes arrived.
            for c in &node.digest.probe_peers {
                let b = pos_of[c.node as usize];
                if b == usize::MAX || b == a {
                    continue;
                }
                if let Some(st) = c.state(g) {
                    let old = c.age_ms(now_ms).is_none_or(|age| age > old_after);
                    cells[a * n + b] = state_code(st) | if old { CELL_OLD } else { 0 };
                }
            }
            for r in p.blocked() {
                self.blocked_pairs.push((
                    i,
                    format!(
                        "{} → {}:{}/{} {}{}",
                        view.nodes[i].name,
                        r.peer,
                        r.port,
                        r.proto.as_str(),
                        r.state.as_str(),
                        r.detail
                            .as_ref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        self.net_cells = cells;
    }

    /// Rows the current panel's list shows (for paging and bounds).
    pub fn rows(&self, panel: Panel, ui: &UiState) -> usize {
        match panel {
            Panel::Overview => self.problems.len(),
            Panel::Drives => self.drives.len(),
            Panel::Checks => self.cluster_checks.len() + self.check_nodes.len(),
            Panel::Network => match ui.net_view {
                NetView::Matrix => self.net_nodes.len(),
                NetView::Nics => self.nic_rows.len(),
            },
            Panel::Events => self.events.len(),
            Panel::Cores | Panel::Stripes => 0,
        }
    }

    /// What row `sel` of the Checks panel is: the cluster-wide checks come first, then
    /// one row per node.
    pub fn check_row(&self, sel: usize) -> CheckRow {
        let nc = self.cluster_checks.len();
        if sel < nc {
            CheckRow::Cluster(sel)
        } else {
            self.check_nodes
                .get(sel - nc)
                .map_or(CheckRow::None, |&n| CheckRow::Node(n))
        }
    }

    /// The Checks panel row of node `i`, if the filter shows it.
    pub fn check_row_of(&self, i: usize) -> Option<usize> {
        self.check_nodes
            .iter()
            .position(|&n| n == i)
            .map(|p| p + self.cluster_checks.len())
    }

    pub fn check_columns(&self) -> usize {
        self.check_ids.len()
    }

    /// Nodes the Cores panel cycles through (filtered by its filter).
    pub fn core_nodes(&self, view: &ClusterView, ui: &UiState) -> Vec<usize> {
        let f = ui.filter(Panel::Cores);
        (0..view.nodes.len())
            .filter(|&i| matches(f, &[&view.nodes[i].name]))
            .collect()
    }

    /// The node of the selected row in the Network panel.
    pub fn network_row_node(&self, ui: &UiState) -> Option<usize> {
        let sel = ui.selected(Panel::Network);
        match ui.net_view {
            NetView::Matrix => self.net_nodes.get(sel).copied(),
            NetView::Nics => self.nic_rows.get(sel).map(|r| r.0),
        }
    }

    pub fn detail_for(&self, ui: &UiState, view: &ClusterView) -> Option<Detail> {
        let sel = ui.selected(ui.panel);
        match ui.panel {
            Panel::Overview => self.problems.get(sel).map(|_| Detail::Problem(sel)),
            Panel::Drives => self.drives.get(sel).and_then(|r| {
                let d = view.nodes[r.node]
                    .snapshot
                    .as_ref()?
                    .nvme
                    .as_ref()?
                    .get(r.drive)?;
                Some(Detail::Drive {
                    node: r.node,
                    drive: d.name.to_string(),
                })
            }),
            Panel::Checks => match self.check_row(sel) {
                CheckRow::Cluster(c) => Some(Detail::ClusterCheck(
                    self.cluster_checks.get(c)?.id.to_string(),
                )),
                CheckRow::Node(node) => {
                    let id = self.check_ids.get(ui.col)?;
                    Some(Detail::Check {
                        node,
                        check: id.to_string(),
                    })
                }
                CheckRow::None => None,
            },
            Panel::Cores => {
                let t = view
                    .nodes
                    .get(ui.node)?
                    .snapshot
                    .as_ref()?
                    .topology
                    .as_ref()?;
                let order = super::panels::cores::display_order(t);
                order.get(ui.cpu).map(|c| Detail::Cpu {
                    node: ui.node,
                    cpu: *c,
                })
            }
            Panel::Network => match ui.net_view {
                NetView::Matrix => {
                    let from = *self.net_nodes.get(sel)?;
                    let to = *self.net_nodes.get(ui.col)?;
                    Some(Detail::Pair { from, to })
                }
                NetView::Nics => self.nic_rows.get(sel).and_then(|(n, j)| {
                    let nic = view.nodes[*n]
                        .snapshot
                        .as_ref()?
                        .network
                        .as_ref()?
                        .nics
                        .get(*j)?;
                    Some(Detail::Nic {
                        node: *n,
                        nic: nic.name.to_string(),
                    })
                }),
            },
            Panel::Events => self
                .events
                .get(sel)
                .and_then(|i| view.events.get(*i))
                .map(|e| Detail::Event(e.seq)),
            Panel::Stripes => None,
        }
    }
}

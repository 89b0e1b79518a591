//! Cores: one node's CPUs per NUMA domain, each marked with its owner (Drives / Compute /
//! Frontend container, Slurm job, OS, free), SMT siblings stacked, the dataplane NICs and
//! drives of each domain, and the conflicts (foreign threads on Axon cores, Axon cores
//! shared with jobs, NICs on domains without Axon cores). `v` switches to the plan
//! (`model::plan`): the cores each container should have, and every difference from
//! what runs.

use crate::fleet::health::Facet;
use crate::fleet::view::{NodeStatus, fmt_age};
use crate::model::hostlist::compress;
use crate::model::pinning::{ContainerRole, CpuRole, CpuUse};
use crate::model::plan::compare::compare;
use crate::model::plan::{NodePlan, NoteSeverity, PlanInput, PlanOptions, Role, plan_node};
use crate::model::snapshot::Section;
use crate::model::topology::Topology;
use crate::ui::component::{Cx, Panel, Popup, node_popup};
use crate::ui::keymap::{self, Binding};
use crate::ui::nav::{Action, Focus, Reply, matches};
use crate::ui::theme::Theme;
use crate::ui::widgets::kv;
use crate::ui::widgets::table::offset;
use crate::ui::widgets::{fit, rule, status_glyph, status_style};
use crossterm::event::{KeyCode, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use std::collections::BTreeMap;

/// Width of the node list shown on wide terminals.
pub const NODE_LIST_W: u16 = 16;
const LABEL_W: usize = 5;

pub fn has_node_list(width: u16) -> bool {
    width >= 120
}

/// CPUs of each NUMA domain, one row per SMT thread index, wrapped to `per_line` cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridLine {
    pub numa: u32,
    pub thread: usize,
    pub cpus: Vec<u32>,
}

/// Cells per grid line for a panel of `width` columns.
pub fn per_line(width: u16, threads: usize, max_cores: usize) -> (usize, usize) {
    let room = (width as usize).saturating_sub(LABEL_W + 2);
    let cell_w = if max_cores * 2 <= room { 2 } else { 1 };
    let _ = threads;
    ((room / cell_w).max(1), cell_w)
}

pub fn grid(t: &Topology, per_line: usize) -> Vec<GridLine> {
    let mut out = Vec::new();
    for n in &t.numa_nodes {
        // Cores of the domain in (package, core) order; each core's threads in id order.
        let mut cores: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
        for c in n.cpus.iter() {
            if let Some(cpu) = t.cpu(c) {
                cores
                    .entry((cpu.package_id, cpu.core_id))
                    .or_default()
                    .push(c);
            }
        }
        let threads = cores.values().map(Vec::len).max().unwrap_or(1);
        for k in 0..threads {
            let row: Vec<u32> = cores.values().filter_map(|v| v.get(k).copied()).collect();
            for chunk in row.chunks(per_line.max(1)) {
                out.push(GridLine {
                    numa: n.id,
                    thread: k,
                    cpus: chunk.to_vec(),
                });
            }
        }
    }
    out
}

/// The order the cursor walks: the grid's cells line by line.
pub fn display_order(t: &Topology) -> Vec<u32> {
    grid(t, usize::MAX)
        .into_iter()
        .flat_map(|l| l.cpus)
        .collect()
}

/// The grid for a terminal width (the same computation the renderer makes).
pub fn grid_for_width(t: &Topology, width: u16) -> Vec<GridLine> {
    let panel_w = if has_node_list(width) {
        width - NODE_LIST_W - 1
    } else {
        width
    };
    let threads = t.cpus.iter().map(|c| c.siblings.len()).max().unwrap_or(1);
    let max_cores = t
        .numa_nodes
        .iter()
        .map(|n| n.cpus.len() / threads.max(1))
        .max()
        .unwrap_or(0);
    let (pl, _) = per_line(panel_w, threads, max_cores);
    grid(t, pl)
}

/// The cell of one CPU: `conflict` when any of the node's conflicts is about it.
pub fn glyph(
    u: Option<&CpuUse>,
    online: bool,
    conflict: bool,
    th: &Theme,
) -> (&'static str, Style) {
    if !online {
        return ("x", th.dim);
    }
    let Some(u) = u else { return ("?", th.unknown) };
    if conflict {
        return ("!", th.conflict);
    }
    match u.role() {
        CpuRole::Axon {
            role: ContainerRole::Drives,
        } => ("D", th.owner_drives),
        CpuRole::Axon {
            role: ContainerRole::Compute,
        } => ("C", th.owner_compute),
        CpuRole::Axon {
            role: ContainerRole::Frontend,
        } => ("F", th.owner_frontend),
        CpuRole::SlurmJob { .. } => ("J", th.owner_job),
        CpuRole::Os => ("O", th.owner_os),
        CpuRole::Free => ("·", th.owner_free),
    }
}

/// The node shown, the CPU under the cursor, and the filter the node keys cycle through.
#[derive(Default)]
pub struct Cores {
    node: usize,
    cpu: usize,
    filter: String,
    /// The CPU whose owners are open: node index and CPU id.
    popup: Option<(usize, u32)>,
    /// Show the plan instead of what runs.
    plan_view: bool,
}

/// The plan's cell for a CPU.
fn plan_glyph(plan: &NodePlan, cpu: u32, online: bool, th: &Theme) -> (&'static str, Style) {
    if !online {
        return ("x", th.dim);
    }
    if let Some(c) = plan.containers.iter().find(|c| c.cpus.contains(cpu)) {
        return match c.role {
            Role::Drive => ("D", th.owner_drives),
            Role::Compute => ("C", th.owner_compute),
            Role::Frontend => ("F", th.owner_frontend),
        };
    }
    if plan.idle_siblings.contains(cpu) {
        ("s", th.dim)
    } else if plan.os_cpus.contains(cpu) {
        ("O", th.owner_os)
    } else {
        ("·", th.owner_free)
    }
}

static KEYS: &[Binding] = &[
    keymap::LEFT,
    keymap::RIGHT,
    keymap::ENTER,
    Binding {
        keys: &[(KeyCode::Char('v'), KeyModifiers::NONE)],
        label: "v",
        action: Action::ToggleView,
        mutating: false,
        help: "what runs / the plan",
    },
    Binding {
        keys: &[
            (KeyCode::Char(']'), KeyModifiers::NONE),
            (KeyCode::Char('n'), KeyModifiers::NONE),
        ],
        label: "]/n",
        action: Action::NextNode,
        mutating: false,
        help: "next node",
    },
    Binding {
        keys: &[
            (KeyCode::Char('['), KeyModifiers::NONE),
            (KeyCode::Char('p'), KeyModifiers::NONE),
        ],
        label: "[/p",
        action: Action::PrevNode,
        mutating: false,
        help: "previous node",
    },
];

impl Cores {
    /// Moves the cursor in the grid as drawn at the terminal's width.
    fn move_cpu(&mut self, a: Action, cx: &Cx) {
        let Some(t) = cx
            .view
            .nodes
            .get(self.node)
            .and_then(|n| n.snapshot.as_ref())
            .and_then(|s| s.topology.as_ref())
        else {
            return;
        };
        let lines = grid_for_width(t, cx.width);
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

impl Panel for Cores {
    fn title(&self) -> &'static str {
        "Cores"
    }

    fn keys(&self) -> &'static [Binding] {
        KEYS
    }

    fn derive(&mut self, _cx: &Cx) {}

    fn act(&mut self, a: Action, cx: &Cx) -> Reply {
        match a {
            Action::Up
            | Action::Down
            | Action::Left
            | Action::Right
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                self.move_cpu(a, cx);
                Reply::Done
            }
            Action::NextNode | Action::PrevNode => {
                // The nodes the filter shows, in inventory order.
                let cands: Vec<usize> = (0..cx.view.nodes.len())
                    .filter(|&i| matches(&self.filter, &[&cx.view.nodes[i].name]))
                    .collect();
                if !cands.is_empty() {
                    let pos = cands.iter().position(|&i| i == self.node);
                    self.node = match (a, pos) {
                        (Action::NextNode, Some(i)) => cands[(i + 1) % cands.len()],
                        (Action::PrevNode, Some(i)) => cands[(i + cands.len() - 1) % cands.len()],
                        _ => cands[0],
                    };
                    self.cpu = 0;
                }
                Reply::Done
            }
            Action::ToggleView => {
                self.plan_view = !self.plan_view;
                Reply::Done
            }
            Action::Enter => {
                let t = cx
                    .view
                    .nodes
                    .get(self.node)
                    .and_then(|n| n.snapshot.as_ref())
                    .and_then(|s| s.topology.as_ref());
                self.popup = t
                    .and_then(|t| display_order(t).get(self.cpu).copied())
                    .map(|c| (self.node, c));
                Reply::Done
            }
            _ => Reply::Ignored,
        }
    }

    fn wants(&self, to: &Focus) -> bool {
        matches!(
            to,
            Focus::Node {
                facet: Facet::Cores,
                ..
            }
        )
    }

    fn focus(&mut self, to: &Focus, _cx: &Cx) {
        if let Focus::Node { node, .. } = to {
            self.node = *node;
            self.cpu = 0;
        }
    }

    fn popup(&self, cx: &Cx, th: &Theme) -> Option<Popup> {
        let (node, cpu) = *self.popup.as_ref()?;
        Some(node_popup(cx, node, th, cpu_popup(cx, node, cpu, th)))
    }

    fn popup_open(&self) -> bool {
        self.popup.is_some()
    }

    fn close_popup(&mut self) -> bool {
        self.popup.take().is_some()
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, filter: &str, _cx: &Cx) {
        self.filter = filter.to_string();
    }

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
        render(self, f, area, cx, th)
    }
}

/// What runs on a CPU and who owns it.
fn cpu_popup(cx: &Cx, node: usize, cpu: u32, th: &Theme) -> Popup {
    let n = &cx.view.nodes[node];
    let u = n
        .snapshot
        .as_ref()
        .and_then(|s| s.pinning.as_ref())
        .and_then(|p| p.cpu(cpu));
    let mut l = Vec::new();
    match u {
        None => l.push(Line::from("no pinning data")),
        Some(u) => {
            l.push(kv("owner", u.role().label(), th));
            l.push(kv("kernel threads", u.kernel_threads.to_string(), th));
            l.push(Line::from(Span::styled(
                "pinned here (affinity restricted to a set including this CPU):",
                th.header,
            )));
            for p in &u.pinned {
                l.push(Line::from(format!(
                    "  {} pid {} ({}), {} thread(s)",
                    p.comm,
                    p.pid,
                    p.owner.label(),
                    p.threads
                )));
            }
            if u.pinned_more > 0 {
                l.push(Line::from(format!("  … and {} more", u.pinned_more)));
            }
            l.push(Line::from(Span::styled("last ran here:", th.header)));
            for p in &u.running {
                l.push(Line::from(format!(
                    "  {} pid {} ({}), {} thread(s), {} runnable",
                    p.comm,
                    p.pid,
                    p.owner.label(),
                    p.threads,
                    p.runnable
                )));
            }
            if u.running_more > 0 {
                l.push(Line::from(format!("  … and {} more", u.running_more)));
            }
            for c in n.digest.conflicts.iter().filter(|c| c.cpu() == Some(cpu)) {
                l.push(Line::from(Span::styled(format!("conflict: {c}"), th.fail)));
            }
        }
    }
    // The data plane's own word on this CPU: the container its core plan puts here.
    let containers = n
        .snapshot
        .as_ref()
        .and_then(|s| s.dataplane.as_ref())
        .map(|d| d.containers.as_slice())
        .unwrap_or_default();
    if let Some(c) = containers.iter().find(|c| c.cores.contains(&cpu)) {
        l.push(Line::from(Span::styled(
            "data-plane container planned here:",
            th.header,
        )));
        let (text, style) = match (&c.problem, c.emulated, c.threads.is_empty()) {
            (Some(p), _, _) => (format!("  {} ({}): {p}", c.name, c.role), th.warn),
            (None, true, _) => (
                format!(
                    "  {} ({}): emulated host — the plan is recorded, no thread runs",
                    c.name, c.role
                ),
                th.dim,
            ),
            (None, false, true) => (format!("  {} ({}): no thread yet", c.name, c.role), th.warn),
            (None, false, false) => (
                format!(
                    "  {} ({}): thread(s) {} pinned to cpu {}",
                    c.name,
                    c.role,
                    c.threads
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    c.cores
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                th.text,
            ),
        };
        l.push(Line::from(Span::styled(text, style)));
    }
    (format!("{} cpu{cpu}", n.name), l)
}

fn render(p: &Cores, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
    let nodes = &cx.view.nodes;
    if nodes.is_empty() {
        return;
    }
    let ni = p.node.min(nodes.len() - 1);
    let mut body = area;
    if has_node_list(area.width) {
        let list = Rect {
            width: NODE_LIST_W,
            ..area
        };
        body = Rect {
            x: area.x + NODE_LIST_W + 1,
            width: area.width - NODE_LIST_W - 1,
            ..area
        };
        let h = list.height as usize;
        let off = offset(ni, h, nodes.len());
        let lines: Vec<Line> = nodes
            .iter()
            .enumerate()
            .skip(off)
            .take(h)
            .map(|(i, n)| {
                let s = cx.status(i);
                let conflicts = !n.digest.conflicts.is_empty();
                let text = fit(
                    &format!(
                        "{} {}{}",
                        status_glyph(s),
                        n.name,
                        if conflicts { " !" } else { "" }
                    ),
                    NODE_LIST_W as usize,
                );
                Span::styled(
                    text,
                    if i == ni {
                        th.selection
                    } else {
                        status_style(th, s)
                    },
                )
                .into()
            })
            .collect();
        f.render_widget(Paragraph::new(lines).style(th.base), list);
    }
    let w = body.width as usize;
    let node = &nodes[ni];
    let status = cx.status(ni);
    let mut lines: Vec<Line> = Vec::new();
    let mut head = vec![
        Span::styled(
            format!("{} {} ", status_glyph(status), node.name),
            status_style(th, status).patch(th.title),
        ),
        Span::styled(format!("{} ", status.as_str()), status_style(th, status)),
    ];
    let snap = node.snapshot.as_ref();
    if let Some(p) = node.emulated() {
        head.push(Span::styled(format!("EMULATED {p} "), th.emulated));
    }
    if p.plan_view {
        head.push(Span::styled("PLAN ", th.accent));
    }
    head.push(Span::styled(
        format!(" ]/[ node {}/{}", ni + 1, nodes.len()),
        th.dim,
    ));
    lines.push(Line::from(head));
    let Some(t) = snap.and_then(|s| s.topology.as_ref()) else {
        lines.push(Line::from(Span::styled(
            "  no topology reported yet",
            th.dim,
        )));
        f.render_widget(Paragraph::new(lines).style(th.base), body);
        return;
    };
    let smt = t.has_smt_siblings();
    lines.push(Line::from(Span::styled(
        fit(
            &format!(
                "{} · {} socket(s) · {} NUMA · {} CPUs · SMT {}",
                t.cpu_model,
                t.packages.len(),
                t.numa_nodes.len(),
                t.cpus.len(),
                if smt { "on" } else { "off" }
            ),
            w,
        ),
        th.dim,
    )));
    if !t.unreadable.is_empty() {
        let u = &t.unreadable;
        lines.push(Line::from(Span::styled(
            fit(
                &format!(
                    "topology unreadable for cpu {}: drawn as their own cores",
                    u.siblings
                        .union(&u.core_id)
                        .union(&u.package_id)
                        .to_list_string()
                ),
                w,
            ),
            th.warn,
        )));
    }
    if status != NodeStatus::Up {
        lines.push(Line::from(Span::styled(
            format!(
                "{}: data {} old, not current",
                status.as_str(),
                fmt_age(node.section_age_ms(Section::Pinning, cx.now_ms))
            ),
            status_style(th, status),
        )));
    }
    let pin = snap.and_then(|s| s.pinning.as_ref());
    // The plan view: the plan of this node from what it reports (or why there is none).
    let plan: Option<Result<NodePlan, String>> = p.plan_view.then(|| {
        snap.ok_or_else(|| "no report".to_string())
            .and_then(PlanInput::from_snapshot)
            .map(|i| plan_node(&i, &PlanOptions::default()))
    });
    let net = snap.and_then(|s| s.network.as_ref());
    let drives = snap.and_then(|s| s.nvme.as_ref());
    let gl = grid_for_width(t, area.width);
    let threads = t.cpus.iter().map(|c| c.siblings.len()).max().unwrap_or(1);
    let max_cores = t
        .numa_nodes
        .iter()
        .map(|n| n.cpus.len() / threads.max(1))
        .max()
        .unwrap_or(0);
    let (_, cell_w) = per_line(body.width, threads, max_cores);
    let order: Vec<u32> = gl.iter().flat_map(|l| l.cpus.iter().copied()).collect();
    let cursor = order.get(p.cpu.min(order.len().saturating_sub(1))).copied();
    let conflicts = &node.digest.conflicts;
    let conflict_cpus: std::collections::BTreeSet<u32> =
        conflicts.iter().filter_map(|c| c.cpu()).collect();
    // Each domain's header line, the room left on it, and its memory label in every form:
    // one form for all domains, the most words that fit on every line.
    let mut headers: Vec<(usize, usize, [String; 3])> = Vec::new();
    for n in &t.numa_nodes {
        let nics: Vec<&str> = net
            .map(|nt| {
                nt.dataplane()
                    .filter(|x| {
                        x.numa_node.map(|v| v as u32) == Some(n.id)
                            || (t.numa_nodes.len() == 1 && x.numa_node.is_none())
                    })
                    .map(|x| x.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let dr: Vec<&str> = drives
            .map(|d| {
                d.iter()
                    .filter(|x| x.numa_node.map(|v| v as u32) == Some(n.id))
                    .map(|x| x.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let mut roles = [0usize; 3];
        for c in n.cpus.iter() {
            if let Some(CpuRole::Axon { role }) = pin.and_then(|p| p.cpu(c)).map(|u| u.role()) {
                roles[role as usize] += 1;
            }
        }
        let hp = n.hugepages_of(2 << 20);
        let mut spans = vec![
            Span::styled(format!("NUMA {} ", n.id), th.header),
            Span::styled(format!("cpus {} ", n.cpus), th.dim),
            Span::styled(
                if nics.is_empty() {
                    "no NIC ".to_string()
                } else {
                    format!("NIC {} ", compress(&nics))
                },
                if nics.is_empty() { th.dim } else { th.accent },
            ),
            Span::styled(
                if dr.is_empty() {
                    String::new()
                } else {
                    format!("{} ", compress(&dr))
                },
                th.text,
            ),
        ];
        if roles.iter().any(|r| *r > 0) {
            spans.push(Span::styled(
                format!("D{} C{} F{} ", roles[0], roles[1], roles[2]),
                th.accent,
            ));
        }
        let room = w.saturating_sub(spans.iter().map(|s| s.width()).sum());
        headers.push((lines.len(), room, memory_labels(n, hp)));
        lines.push(Line::from(spans));
        for l in gl.iter().filter(|l| l.numa == n.id) {
            let label = if smt {
                format!("  t{} ", l.thread)
            } else {
                "     ".into()
            };
            let mut spans = vec![Span::styled(fit(&label, LABEL_W), th.dim)];
            for &c in &l.cpus {
                let online = t.cpu(c).is_some_and(|x| x.online);
                let (g, mut style) = match &plan {
                    Some(Ok(plan)) => plan_glyph(plan, c, online, th),
                    _ => glyph(
                        pin.and_then(|p| p.cpu(c)),
                        online,
                        conflict_cpus.contains(&c),
                        th,
                    ),
                };
                if status != NodeStatus::Up && g != "x" {
                    style = th.stale;
                }
                if Some(c) == cursor {
                    style = style.patch(th.selection);
                }
                spans.push(Span::styled(fit(g, cell_w), style));
            }
            lines.push(Line::from(spans));
        }
    }
    let form = (0..3)
        .find(|&i| {
            headers
                .iter()
                .all(|(_, room, l)| l[i].chars().count() <= *room)
        })
        .unwrap_or(2);
    for (at, _, labels) in headers {
        if let Some(line) = lines.get_mut(at) {
            line.spans.push(Span::styled(labels[form].clone(), th.dim));
        }
    }
    if let Some(plan) = &plan {
        let legend = vec![
            Span::styled("plan: ", th.accent),
            Span::styled("D", th.owner_drives),
            Span::styled(" drives ", th.dim),
            Span::styled("C", th.owner_compute),
            Span::styled(" compute ", th.dim),
            Span::styled("F", th.owner_frontend),
            Span::styled(" frontend ", th.dim),
            Span::styled("s", th.dim),
            Span::styled(" idle sibling ", th.dim),
            Span::styled("O", th.owner_os),
            Span::styled(" os ", th.dim),
            Span::styled("·", th.owner_free),
            Span::styled(" jobs  ", th.dim),
            Span::styled("v", th.accent),
            Span::styled(" what runs", th.dim),
        ];
        let (title, diffs) = match plan {
            Ok(plan) => (
                format!(
                    "plan {}D {}C {}F · differences",
                    plan.planned.drive, plan.planned.compute, plan.planned.frontend
                ),
                compare(plan, t, pin),
            ),
            Err(e) => (
                "differences".to_string(),
                vec![crate::model::plan::compare::Difference {
                    severity: NoteSeverity::Infeasible,
                    text: format!("no plan: {e}"),
                }],
            ),
        };
        lines.push(Line::from(legend));
        lines.push(rule(&format!("{title} ({})", diffs.len()), w, th));
        if diffs.is_empty() {
            lines.push(Line::from(Span::styled(
                "  none: what runs is the plan",
                th.ok,
            )));
        }
        let room = (body.height as usize).saturating_sub(lines.len());
        for d in diffs.iter().take(room) {
            let style = match d.severity {
                NoteSeverity::Infeasible => th.fail,
                NoteSeverity::Warning => th.warn,
                NoteSeverity::Info => th.dim,
            };
            lines.push(Line::from(Span::styled(format!("  {}", d.text), style)));
        }
        f.render_widget(Paragraph::new(lines).style(th.base), body);
        return;
    }
    lines.push(Line::from(vec![
        Span::styled("D", th.owner_drives),
        Span::styled(" drives ", th.dim),
        Span::styled("C", th.owner_compute),
        Span::styled(" compute ", th.dim),
        Span::styled("F", th.owner_frontend),
        Span::styled(" frontend ", th.dim),
        Span::styled("J", th.owner_job),
        Span::styled(" job ", th.dim),
        Span::styled("O", th.owner_os),
        Span::styled(" os ", th.dim),
        Span::styled("·", th.owner_free),
        Span::styled(" free ", th.dim),
        Span::styled("!", th.conflict),
        Span::styled(" conflict", th.dim),
        Span::styled(if smt { "  t0/t1 SMT threads" } else { "" }, th.dim),
    ]));
    if let Some(c) = cursor {
        let cpu = t.cpu(c);
        let u = pin.and_then(|p| p.cpu(c));
        let mut spans = vec![Span::styled(format!("cpu{c} "), th.title)];
        if let Some(cpu) = cpu {
            spans.push(Span::styled(
                format!(
                    "core {} NUMA {} siblings {} ",
                    cpu.core_id,
                    cpu.numa_node
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "?".into()),
                    cpu.siblings
                ),
                th.dim,
            ));
        }
        match u {
            Some(u) => {
                spans.push(Span::styled(format!("{} ", u.role().label()), th.accent));
                let pinned = proc_list(u.pinned.iter());
                let running = proc_list(u.running.iter().filter(|p| p.runnable > 0));
                spans.push(Span::styled(format!("pinned: {pinned} "), th.text));
                spans.push(Span::styled(format!("running: {running}"), th.text));
            }
            None => spans.push(Span::styled("no pinning data", th.dim)),
        }
        lines.push(Line::from(spans));
    }
    lines.push(rule(&format!("conflicts ({})", conflicts.len()), w, th));
    if conflicts.is_empty() {
        lines.push(Line::from(Span::styled(
            if pin.is_some() {
                "  none"
            } else {
                "  no pinning data yet"
            },
            if pin.is_some() { th.ok } else { th.dim },
        )));
    }
    let room = (body.height as usize).saturating_sub(lines.len());
    for c in conflicts.iter().take(room) {
        lines.push(Line::from(Span::styled(format!("  {c}"), th.fail)));
    }
    f.render_widget(Paragraph::new(lines).style(th.base), body);
}

/// `comm(pid) comm(pid) …`, or a dash for none.
fn proc_list<'a>(procs: impl Iterator<Item = &'a crate::model::pinning::ProcRef>) -> String {
    let v: Vec<String> = procs.map(|p| format!("{}({})", p.comm, p.pid)).collect();
    if v.is_empty() {
        "—".into()
    } else {
        v.join(" ")
    }
}

/// A NUMA domain's memory and 2 MiB huge pages as free/total GiB, in three forms from
/// the most words to the fewest (at 80 columns next to the NICs and drives: the last).
fn memory_labels(
    n: &crate::model::topology::NumaNode,
    hp: Option<&crate::model::topology::HugePagePool>,
) -> [String; 3] {
    const GIB: u64 = 1 << 30;
    // Unreadable figures show as `?`, never as 0.
    let gib = |b: Option<u64>| match b {
        None => "?".to_string(),
        Some(b) if b.is_multiple_of(GIB) || b >= 10 * GIB => format!("{}", b / GIB),
        Some(b) => format!("{:.1}", b as f64 / GIB as f64),
    };
    let mem = format!(
        "{}/{}G",
        gib(n.memory_free_bytes),
        gib(n.memory_total_bytes)
    );
    match hp {
        Some(h) => {
            let size = h.page_size_bytes;
            let p = format!(
                "{}/{}G",
                gib(h.free.map(|f| f.saturating_mul(size))),
                gib(h.total.map(|t| t.saturating_mul(size)))
            );
            [
                format!("free/total: memory {mem}, huge pages {p}"),
                format!("free/total mem {mem} hp {p}"),
                format!("free/total {mem} hp {p}"),
            ]
        }
        None => [
            format!("free/total: memory {mem}"),
            format!("free/total mem {mem}"),
            format!("free/total {mem}"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpuset::CpuSet;
    use crate::model::topology::{Cpu, NumaNode};

    fn smt_topology() -> Topology {
        // 2 NUMA × 4 cores × 2 threads, Intel numbering: siblings are n and n+8.
        let mut t = Topology::default();
        for id in 0..16u32 {
            let core = id % 8;
            t.cpus.push(Cpu {
                id,
                core_id: core % 4,
                package_id: core / 4,
                numa_node: Some(core / 4),
                siblings: CpuSet::from_ids([core, core + 8]),
                online: true,
            });
        }
        t.numa_nodes = vec![
            NumaNode {
                id: 0,
                cpus: CpuSet::parse_list("0-3,8-11").unwrap(),
                ..Default::default()
            },
            NumaNode {
                id: 1,
                cpus: CpuSet::parse_list("4-7,12-15").unwrap(),
                ..Default::default()
            },
        ];
        t
    }

    #[test]
    fn grid_stacks_smt_siblings_per_numa_domain() {
        let g = grid(&smt_topology(), 100);
        assert_eq!(g.len(), 4);
        assert_eq!(
            g[0],
            GridLine {
                numa: 0,
                thread: 0,
                cpus: vec![0, 1, 2, 3]
            }
        );
        assert_eq!(
            g[1],
            GridLine {
                numa: 0,
                thread: 1,
                cpus: vec![8, 9, 10, 11]
            }
        );
        assert_eq!(g[3].cpus, vec![12, 13, 14, 15]);
        let wrapped = grid(&smt_topology(), 3);
        assert_eq!(wrapped.len(), 8);
        assert_eq!(display_order(&smt_topology())[..5], [0, 1, 2, 3, 8]);
    }
}

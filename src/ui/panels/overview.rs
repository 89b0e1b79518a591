//! Overview: the cluster's health line, sparkline history of the key figures, and every
//! problem, worst first. Enter on a problem goes where it can be fixed: the panel that
//! shows what it is about (or, for a problem about no one thing, its full text).

use crate::fleet::health::{Problem, Subject};
use crate::ui::component::{Cx, Panel, Popup, list_filter};
use crate::ui::keymap::{self, Binding};
use crate::ui::nav::{Action, Focus, List, Reply, matches};
use crate::ui::theme::Theme;
use crate::ui::widgets::table::{self, Col};
use crate::ui::widgets::{fit, flow, rule, severity_label, severity_style, sparkline};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Default)]
pub struct Overview {
    list: List,
    /// Indices of the problems the filter shows, worst first.
    rows: Vec<usize>,
    /// The problem whose text is open.
    popup: Option<String>,
}

static KEYS: &[Binding] = &[keymap::ENTER];

/// The problem table's columns.
#[derive(Clone, Copy)]
enum C {
    Sev,
    What,
    Problem,
}

const COLS: [(C, Col); 3] = [
    (C::Sev, Col::new("SEV", 4)),
    (C::What, Col::new("WHAT", 9)),
    (C::Problem, Col::new("PROBLEM", 0)),
];

impl Overview {
    fn problem<'a>(&self, cx: &'a Cx, r: usize) -> Option<&'a Problem> {
        cx.health.problems.get(*self.rows.get(r)?)
    }
}

impl Panel for Overview {
    fn title(&self) -> &'static str {
        "Overview"
    }

    fn keys(&self) -> &'static [Binding] {
        KEYS
    }

    fn derive(&mut self, cx: &Cx) {
        let f = &self.list.filter;
        self.rows = (0..cx.health.problems.len())
            .filter(|&i| matches(f, &[&cx.health.problems[i].text]))
            .collect();
    }

    fn act(&mut self, a: Action, cx: &Cx) -> Reply {
        if self.list.nav(a, self.rows.len(), cx.page) {
            return Reply::Done;
        }
        if a != Action::Enter {
            return Reply::Ignored;
        }
        let Some(p) = self.problem(cx, self.list.selected(self.rows.len())) else {
            return Reply::Done;
        };
        match &p.subject {
            Subject::Nodes => {
                self.popup = Some(p.text.clone());
                Reply::Done
            }
            Subject::Node { node, facet } => Reply::Focus(Focus::Node {
                node: *node,
                facet: *facet,
            }),
            Subject::Drive { node, drive } => Reply::Focus(Focus::Drive {
                node: *node,
                drive: drive.clone(),
            }),
            Subject::Check { node, check } => Reply::Focus(Focus::Check {
                node: *node,
                check: check.clone(),
            }),
            Subject::ClusterCheck(id) => Reply::Focus(Focus::ClusterCheck(id.clone())),
            Subject::DataPlane => Reply::Focus(Focus::DataPlane),
        }
    }

    fn popup(&self, _cx: &Cx, th: &Theme) -> Option<Popup> {
        let text = self.popup.as_ref()?;
        Some((
            "problem".into(),
            vec![Line::from(Span::styled(text.clone(), th.text))],
        ))
    }

    fn popup_open(&self) -> bool {
        self.popup.is_some()
    }

    fn close_popup(&mut self) -> bool {
        self.popup.take().is_some()
    }

    list_filter!(list);

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
        render(self, f, area, cx, th)
    }
}

fn render(o: &Overview, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
    let c = &cx.health.counts;
    let w = area.width as usize;
    let total = cx.view.nodes.len();
    let mut lines = flow(health(cx, th), &Span::styled("  │  ", th.border), w);
    if c.emulated > 0 {
        lines.push(Line::from(Span::styled(
            fit(
                &format!(
                    "EMULATED: {} of {total} nodes run on emulated host profiles (fixture trees)",
                    c.emulated
                ),
                w,
            ),
            th.emulated,
        )));
    }
    // History: one column per sample (one per second), the last value at the right.
    let h = &cx.view.history;
    let spark_w = (w / 2).saturating_sub(22).clamp(8, 120);
    let series =
        |get: fn(&crate::fleet::view::Sample) -> u32| -> Vec<u32> { h.iter().map(get).collect() };
    let last = |v: &[u32]| v.last().copied().unwrap_or(0);
    let not_up = series(|s| s.nodes_not_up);
    let failing = series(|s| s.checks_failing);
    let warn = series(|s| s.drives_warning);
    let blocked = series(|s| s.probes_blocked);
    lines.push(rule(
        &format!("history, last {} s", h.len().min(spark_w)),
        w,
        th,
    ));
    let cell = |label: &str, v: &[u32]| -> Vec<Span<'static>> {
        let style = if last(v) > 0 { th.warn } else { th.ok };
        vec![
            Span::styled(format!("{label:<15}"), th.dim),
            Span::styled(sparkline(v, spark_w), style),
            Span::styled(format!(" {:<5}", last(v)), style),
        ]
    };
    let mut l1 = cell("nodes not up", &not_up);
    l1.extend(cell("checks failing", &failing));
    let mut l2 = cell("drives warning", &warn);
    l2.extend(cell("probes blocked", &blocked));
    lines.push(Line::from(l1));
    lines.push(Line::from(l2));
    let filter = o.list.filter.as_str();
    let n = o.rows.len();
    let title = if filter.is_empty() {
        format!("problems, worst first ({n})")
    } else {
        format!("problems matching `{filter}` ({n})")
    };
    lines.push(rule(&title, w, th));
    let head = lines.len() as u16;
    f.render_widget(
        Paragraph::new(lines).style(th.base),
        Rect {
            height: head.min(area.height),
            ..area
        },
    );
    if area.height <= head {
        return;
    }
    let list = Rect {
        y: area.y + head,
        height: area.height - head,
        ..area
    };
    if o.rows.is_empty() {
        let msg = if filter.is_empty() {
            "  No problems: every node is up and fresh, every check passes, every drive is healthy."
        } else {
            "  No problem matches the filter."
        };
        let style = if filter.is_empty() { th.ok } else { th.dim };
        f.render_widget(Paragraph::new(Span::styled(msg, style)), list);
        return;
    }
    table::render(f, list, th, &COLS, n, Some(o.list.selected(n)), &|r, c| {
        let Some(p) = o.problem(cx, r) else {
            return (String::new(), th.dim);
        };
        match c {
            C::Sev => (
                severity_label(p.severity).to_string(),
                severity_style(th, p.severity),
            ),
            C::What => (p.kind.as_str().to_string(), th.dim),
            C::Problem => (p.text.clone(), th.text),
        }
    });
}

/// The health line as segments (nodes, checks, drives, ports, cores, IO), laid out by
/// `flow` so nothing is cut at 80 columns. A figure with no data behind it says so, in
/// dim: "none failing" is only green when nodes have actually reported.
fn health(cx: &Cx, th: &Theme) -> Vec<Vec<Span<'static>>> {
    let c = &cx.health.counts;
    let total = cx.view.nodes.len();
    let mut nodes = vec![
        Span::styled("Nodes ", th.header),
        Span::styled(
            format!("{} up", c.up),
            if c.up == total { th.ok } else { th.text },
        ),
    ];
    counted(&mut nodes, c.stale, "stale", th.stale);
    counted(&mut nodes, c.down, "down", th.down);
    counted(&mut nodes, c.connecting, "connecting", th.dim);
    nodes.push(Span::styled(format!(" of {total}"), th.dim));

    let mut checks = vec![Span::styled("Checks ", th.header)];
    let cluster = c.checks_failing_cluster;
    if c.checks_failing > 0 {
        checks.push(Span::styled(
            format!(
                "{} failing on {} node(s){}",
                c.checks_failing,
                c.checks_failing_nodes,
                if cluster > 0 {
                    format!(" + {cluster} cluster-wide")
                } else {
                    String::new()
                }
            ),
            th.fail,
        ));
    } else if cluster > 0 {
        checks.push(Span::styled(
            format!("{cluster} failing cluster-wide"),
            th.fail,
        ));
    } else if c.checks_reported == 0 {
        checks.push(Span::styled("no data yet", th.dim));
    } else {
        checks.push(Span::styled("none failing", th.ok));
    }
    counted(&mut checks, c.checks_warning, "warn", th.warn);

    let mut drives = vec![Span::styled("Drives ", th.header)];
    let known = c.drives_ok + c.drives_warning + c.drives_critical + c.drives_unknown;
    if known + c.drives_not_current == 0 {
        drives.push(Span::styled("no data yet", th.dim));
    } else {
        drives.push(Span::styled(format!("{} ok", c.drives_ok), th.ok));
    }
    counted(&mut drives, c.drives_warning, "warning", th.warn);
    counted(&mut drives, c.drives_critical, "critical", th.fail);
    counted(&mut drives, c.drives_unknown, "SMART unknown", th.unknown);
    counted(
        &mut drives,
        c.drives_not_current,
        "on nodes not up",
        th.stale,
    );

    let mut ports = vec![Span::styled("Ports ", th.header)];
    if c.probes_total == 0 {
        ports.push(Span::styled("no probe data", th.dim));
    } else if c.probes_blocked > 0 {
        ports.push(Span::styled(
            format!("{} of {} probes blocked", c.probes_blocked, c.probes_total),
            th.fail,
        ));
    } else {
        ports.push(Span::styled(
            format!("all {} probes pass", c.probes_total),
            th.ok,
        ));
    }

    let mut cores = vec![Span::styled("Cores ", th.header)];
    cores.push(if c.conflicts > 0 {
        Span::styled(format!("{} conflicts", c.conflicts), th.warn)
    } else if c.pinning_reported == 0 {
        Span::styled("no data yet", th.dim)
    } else {
        Span::styled("no conflicts", th.ok)
    });

    let mut io = vec![Span::styled("IO / protection ", th.header)];
    match &cx.view.dp_brief {
        None => io.push(Span::styled("no data plane reporting", th.dim)),
        Some(b) => {
            io.push(Span::styled(
                format!("IO {}", b.io),
                if b.io == "STARTED" { th.ok } else { th.warn },
            ));
            io.push(Span::styled(" · ", th.dim));
            io.push(Span::styled(
                if b.protection.is_empty() {
                    "protection not counted yet".to_string()
                } else {
                    b.protection.clone()
                },
                match b.protection.as_str() {
                    "OK" | "REDISTRIBUTING" => th.ok,
                    "UNPROTECTED" | "UNAVAILABLE" => th.fail,
                    "" => th.dim,
                    _ => th.warn,
                },
            ));
            io.push(Span::styled(format!(" · {}", b.scheme), th.text));
            if let Some((done, total)) = b.rebuild {
                io.push(Span::styled(
                    format!(" · rebuilding {done}/{total} stripes"),
                    th.warn,
                ));
            }
            counted(&mut io, b.away, "away", th.warn);
            counted(&mut io, b.lost_chunks as usize, b.lost_words(), th.warn);
        }
    }
    vec![nodes, checks, drives, ports, cores, io]
}

/// Appends ` · N label` when N is not zero.
fn counted(spans: &mut Vec<Span<'static>>, n: usize, label: &str, style: Style) {
    if n > 0 {
        spans.push(Span::styled(format!(" · {n} {label}"), style));
    }
}

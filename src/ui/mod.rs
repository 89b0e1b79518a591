//! The console (ratatui). `render` is a pure function of the `ViewState` and the theme: no
//! I/O, no clock (time comes in as `now_ms`). The event loop in `run` owns the fleet and the
//! UI state, drains all pending input before drawing, redraws only when something changed,
//! and wraps each frame in synchronized output so nothing tears over a slow SSH link.

pub mod component;
pub mod confirm;
pub mod console;
pub mod jobs;
pub mod keymap;
pub mod nav;
pub mod panels;
pub mod theme;
pub mod widgets;

use crate::actions::Progress;
use crate::actions::probe::{self as probe_action, ProbeRequest};
use crate::clock::now_ms;
use crate::fleet::Fleet;
use crate::fleet::view::ClusterView;
use component::Cx;
pub use console::Console;
use console::{Effect, Input};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use std::time::{Duration, Instant};
use theme::Theme;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Draws one frame of the console on `view`. Pure: the same inputs give the same buffer
/// (the console must have been brought up to date with `Console::update`).
pub fn render(c: &Console, view: &ClusterView, th: &Theme, f: &mut Frame) {
    let area = f.area();
    f.render_widget(Block::default().style(th.base), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = vec![
            Line::from(Span::styled("terminal too small", th.fail)),
            Line::from(Span::styled(
                format!(
                    "need {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}",
                    area.width, area.height
                ),
                th.text,
            )),
            Line::from(Span::styled(
                "enlarge the window, or press q to quit",
                th.dim,
            )),
        ];
        let r = widgets::centered(area, area.width, 3);
        f.render_widget(
            Paragraph::new(msg).alignment(ratatui::layout::Alignment::Center),
            r,
        );
        return;
    }
    header(f, Rect { height: 1, ..area }, c, view, th);
    let body = Rect {
        y: area.y + 1,
        height: area.height - 2,
        ..area
    };
    let cx = Cx {
        view,
        health: &c.health,
        now_ms: c.now_ms,
        width: c.width,
        page: c.page,
    };
    let panel = c.panel();
    panel.draw(f, body, &cx, th);
    status_line(
        f,
        Rect {
            y: area.y + area.height - 1,
            height: 1,
            ..area
        },
        c,
        th,
    );
    if let Some((title, lines)) = panel.popup(&cx, th) {
        widgets::popup(f, body, &format!("{title} — Esc closes"), lines, th);
    }
    if c.jobs.open {
        let lines = c.jobs.lines(c.now_ms, th);
        widgets::popup(f, body, "Jobs — Esc closes", lines, th);
    }
    if let Some(q) = &c.confirm {
        widgets::popup(f, body, &q.title, q.lines(th), th);
    }
    if c.help {
        help(f, body, c, th);
    }
}

/// A node's probe peers: the nodes of this view it probes (by address), plus any it
/// probes that the view does not know.
fn probe_peers(fleet: &Fleet, node: usize) -> Vec<String> {
    let n = &fleet.view.nodes[node];
    let mut peers: Vec<String> = n
        .digest
        .probe_peers
        .iter()
        .map(|c| fleet.specs[c.node as usize].address.clone())
        .collect();
    if let Some(p) = n.snapshot.as_ref().and_then(|s| s.probes.as_ref()) {
        peers.extend(p.peers.iter().map(|p| p.to_string()));
    }
    peers
}

/// Below this width the header drops the brand and packs the tabs, so the node counts
/// (how many nodes are stale or down) stay visible on every panel.
const WIDE_HEADER: u16 = 100;

/// The header's tab labels, the gap between them and where the first one starts.
fn tab_labels(c: &Console, width: u16) -> (u16, u16, Vec<String>) {
    let wide = width >= WIDE_HEADER;
    let labels = c
        .panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if wide {
                format!(" {} {} ", i + 1, p.title())
            } else {
                format!("{}:{}", i + 1, p.title())
            }
        })
        .collect();
    if wide { (6, 0, labels) } else { (0, 1, labels) }
}

/// Where each tab starts and ends on the header line, and its panel (for mouse clicks).
pub fn tab_positions(c: &Console, width: u16) -> Vec<(u16, u16, usize)> {
    let (mut x, gap, labels) = tab_labels(c, width);
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let w = l.chars().count() as u16;
            let r = (x, x + w, i);
            x += w + gap;
            r
        })
        .collect()
}

fn header(f: &mut Frame, area: Rect, c: &Console, view: &ClusterView, th: &Theme) {
    let (start, gap, labels) = tab_labels(c, area.width);
    let mut spans = Vec::new();
    if start > 0 {
        spans.push(Span::styled(" axon ", th.title));
    }
    for (i, label) in labels.into_iter().enumerate() {
        let style = if i == c.active {
            th.tab_active
        } else {
            th.tab_inactive
        };
        if i > 0 && gap > 0 {
            spans.push(Span::raw(" ".repeat(gap as usize)));
        }
        spans.push(Span::styled(label, style));
    }
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let read_only = c.read_only;
    let c = &c.health.counts;
    let mut right = Vec::new();
    if area.width >= WIDE_HEADER {
        right.push(Span::styled(format!("{} nodes ", view.nodes.len()), th.dim));
    }
    right.push(Span::styled(format!("●{} ", c.up), th.ok));
    if c.connecting > 0 {
        right.push(Span::styled(format!("◌{} ", c.connecting), th.dim));
    }
    if c.stale > 0 {
        right.push(Span::styled(format!("◐{} ", c.stale), th.stale));
    }
    if c.down > 0 {
        right.push(Span::styled(format!("✕{} ", c.down), th.down));
    }
    let width = |v: &[Span]| -> usize { v.iter().map(|s| s.content.chars().count()).sum() };
    // Read-only is also on the status line: it goes first when room is short.
    if read_only && used + width(&right) + 3 <= area.width as usize {
        right.push(Span::styled("RO ", th.accent));
    }
    let rw = width(&right);
    if used + rw <= area.width as usize {
        spans.push(Span::raw(" ".repeat(area.width as usize - used - rw)));
        spans.extend(right);
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(th.base), area);
}

fn status_line(f: &mut Frame, area: Rect, c: &Console, th: &Theme) {
    let line = match &c.input {
        Some(Input::Filter(s)) => Line::from(vec![
            Span::styled("/", th.accent),
            Span::styled(format!("{s}▏"), th.text),
            Span::styled("  Enter keep · Esc clear", th.dim),
        ]),
        Some(Input::Command(s)) => Line::from(vec![
            Span::styled(":", th.accent),
            Span::styled(format!("{s}▏"), th.text),
            Span::styled("  node NAME · panel NAME · theme NAME · quit", th.dim),
        ]),
        None => {
            let mut spans = Vec::new();
            if let Some(m) = &c.message {
                spans.push(Span::styled(format!("{m}  "), th.accent));
            }
            let running = c.jobs.running();
            if running > 0 {
                let latest = c.jobs.list.iter().rev().find(|j| j.finished_ms.is_none());
                let step = latest
                    .map(|j| format!(": {} {}/{}", j.step.name, j.step.done, j.step.total))
                    .unwrap_or_default();
                spans.push(Span::styled(
                    format!("{running} job(s) running{step} — J lists them  "),
                    th.warn,
                ));
            }
            let filter = c.panel().filter();
            if !filter.is_empty() {
                spans.push(Span::styled(
                    format!("filter `{filter}` (Esc clears)  "),
                    th.warn,
                ));
            }
            spans.push(Span::styled(
                "? help  : command  / filter  Tab panels  q quit",
                th.dim,
            ));
            if c.read_only {
                spans.push(Span::styled("  read-only", th.accent));
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line).style(th.base), area);
}

fn help(f: &mut Frame, area: Rect, c: &Console, th: &Theme) {
    // The panel keys read better as one entry.
    let mut entries: Vec<(String, String)> =
        vec![(format!("1-{}", c.panels.len()), "switch panel".into())];
    entries.extend(keymap::live(c.panel().keys(), c.read_only).map(|b| {
        (
            b.label.to_string(),
            if b.mutating {
                format!("{} [changes the cluster]", b.help)
            } else {
                b.help.to_string()
            },
        )
    }));
    if c.read_only {
        entries.push(("".into(), "read-only: mutating keys are hidden".into()));
    }
    let rows_fit = area.height.saturating_sub(2) as usize;
    let cols = if entries.len() > rows_fit { 2 } else { 1 };
    let per_col = entries.len().div_ceil(cols);
    let col_w = ((area.width.saturating_sub(10)).clamp(40, 110) as usize - 2) / cols;
    // Label, text, and two spaces before the next column.
    let entry = |e: &(String, String)| -> Vec<Span<'static>> {
        vec![
            Span::styled(format!("{:<7} ", e.0), th.accent),
            Span::styled(widgets::fit(&e.1, col_w.saturating_sub(10)), th.text),
            Span::raw("  "),
        ]
    };
    let lines: Vec<Line> = (0..per_col)
        .map(|r| {
            let mut spans = entry(&entries[r]);
            if cols == 2 {
                if let Some(e) = entries.get(r + per_col) {
                    spans.extend(entry(e));
                }
            }
            Line::from(spans)
        })
        .collect();
    widgets::popup(
        f,
        area,
        &format!("keys in {} — ? or Esc closes", c.panel().title()),
        lines,
        th,
    );
}

/// Renders one frame into a text grid (for `--once`, tickets and tests).
pub fn render_text(c: &Console, view: &ClusterView, th: &Theme, width: u16, height: u16) -> String {
    buffer_text(&render_buffer(c, view, th, width, height))
}

/// Renders one frame into a buffer, styles included.
pub fn render_buffer(
    c: &Console,
    view: &ClusterView,
    th: &Theme,
    width: u16,
    height: u16,
) -> ratatui::buffer::Buffer {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut term = ratatui::Terminal::new(backend).expect("test backend");
    term.draw(|f| render(c, view, th, f)).expect("draw");
    term.backend().buffer().clone()
}

pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[derive(Clone)]
pub struct ConsoleOptions {
    pub read_only: bool,
    pub theme: String,
    pub mouse: bool,
    /// Fault injection of the demo this console runs in (`:fail node NAME`, …); None
    /// outside `axon demo`.
    pub demo: Option<DemoHook>,
}

/// Sends a fault line to the demo; its answer or error, as one line.
pub type DemoHook = std::sync::Arc<
    dyn Fn(String) -> futures::future::BoxFuture<'static, Result<String, String>> + Send + Sync,
>;

/// At most this often for data-driven redraws (the agents report at 1 Hz; deriving the
/// tables of a 1,000-node cluster takes milliseconds); input redraws at once.
const DATA_FRAME: Duration = Duration::from_millis(500);

/// Feeds an action's progress into the job list as job `seq`, until either side ends.
async fn forward(
    seq: u64,
    mut rx: tokio::sync::mpsc::Receiver<Progress>,
    job_tx: tokio::sync::mpsc::Sender<(u64, Progress)>,
) {
    while let Some(p) = rx.recv().await {
        if job_tx.send((seq, p)).await.is_err() {
            return;
        }
    }
}

pub async fn run(mut fleet: Fleet, opts: ConsoleOptions) -> anyhow::Result<()> {
    use crossterm::event::{Event, KeyEventKind, MouseButton, MouseEventKind};
    let depth = theme::ColorDepth::detect();
    let mono = theme::no_color();
    if mono {
        // crossterm drops every style under NO_COLOR, reverse video included; force styles
        // on and use the mono theme, which has no colours, only bold/reverse/underline.
        crossterm::style::force_color_output(true);
    }
    let mut th = Theme::load(if mono { "mono" } else { &opts.theme }, depth)?;
    let mut term = ratatui::init();
    if opts.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    }
    let mut ui = Console::new(&fleet.view, now_ms(), opts.read_only, &th.name);
    // Terminal input on its own thread, into a channel: draining the channel never loses
    // a wake-up (polling crossterm's EventStream with a no-op waker to drain it did, and
    // keys then waited for the next unrelated wake-up).
    let (input_tx, mut input_rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<Event>>();
    std::thread::Builder::new()
        .name("axon-input".into())
        .spawn(move || {
            loop {
                let ev = crossterm::event::read();
                let failed = ev.is_err();
                if input_tx.send(ev).is_err() || failed {
                    return;
                }
            }
        })?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (job_tx, mut job_rx) = tokio::sync::mpsc::channel::<(u64, Progress)>(64);
    let (demo_tx, mut demo_rx) = tokio::sync::mpsc::channel::<Result<String, String>>(8);
    let mut need_draw = true;
    let mut input_pending = true;
    let mut last_draw = Instant::now() - DATA_FRAME;
    // AXON_TRACE_FRAMES=<file>: one line per wake-up and per frame, for latency work.
    let mut trace =
        std::env::var_os("AXON_TRACE_FRAMES").and_then(|p| std::fs::File::create(p).ok());
    let t0 = Instant::now();
    let mut log = |what: &str| {
        if let Some(f) = trace.as_mut() {
            use std::io::Write;
            let _ = writeln!(f, "{:>9.3} {what}", t0.elapsed().as_secs_f64() * 1000.0);
        }
    };
    let result: anyhow::Result<()> = loop {
        let now = now_ms();
        let draw_due = need_draw && (input_pending || last_draw.elapsed() >= DATA_FRAME);
        if draw_due {
            ui.update(&fleet.view, now);
            log("draw start");
            let _ = crossterm::execute!(
                std::io::stdout(),
                crossterm::terminal::BeginSynchronizedUpdate
            );
            let drawn = term.draw(|f| render(&ui, &fleet.view, &th, f));
            let _ = crossterm::execute!(
                std::io::stdout(),
                crossterm::terminal::EndSynchronizedUpdate
            );
            if let Err(e) = drawn {
                break Err(e.into());
            }
            if let Ok(size) = term.size() {
                ui.page = size.height.saturating_sub(6) as usize;
                ui.width = size.width;
            }
            need_draw = false;
            input_pending = false;
            last_draw = Instant::now();
            log("draw end");
        }
        let wait = if need_draw {
            DATA_FRAME.saturating_sub(last_draw.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        let mut quit = false;
        let handle = |ev: Event, ui: &mut Console, fleet: &mut Fleet, th: &mut Theme| -> bool {
            let effect = match ev {
                Event::Key(k) if k.kind != KeyEventKind::Release => ui.key(k, &fleet.view),
                Event::Mouse(m) if opts.mouse => match m.kind {
                    MouseEventKind::ScrollDown => ui.act(nav::Action::Down, &fleet.view),
                    MouseEventKind::ScrollUp => ui.act(nav::Action::Up, &fleet.view),
                    MouseEventKind::Down(MouseButton::Left) if m.row == 0 => {
                        match tab_positions(ui, ui.width)
                            .into_iter()
                            .find(|(a, b, _)| m.column >= *a && m.column < *b)
                        {
                            Some((_, _, p)) => ui.act(nav::Action::Panel(p), &fleet.view),
                            None => Effect::None,
                        }
                    }
                    _ => Effect::None,
                },
                _ => Effect::None,
            };
            match effect {
                Effect::None => false,
                Effect::Quit => true,
                Effect::Demo(line) => {
                    match &opts.demo {
                        None => {
                            ui.message = Some(format!(
                                "`{line}`: fault injection is for `axon demo` only (emulation, never real nodes)"
                            ))
                        }
                        Some(hook) => {
                            ui.message = Some(format!("emulation: {line} …"));
                            let f = hook(line);
                            let tx = demo_tx.clone();
                            tokio::spawn(async move {
                                let _ = tx.send(f.await).await;
                            });
                        }
                    }
                    false
                }
                Effect::LoadTheme(name) if mono && name != "mono" => {
                    ui.message = Some(format!(
                        "NO_COLOR is set: staying on the mono theme (unset NO_COLOR for `{name}`)"
                    ));
                    false
                }
                Effect::LoadTheme(name) => {
                    match Theme::load(&name, depth) {
                        Ok(t) => {
                            ui.theme_name = t.name.clone();
                            ui.message = Some(format!("theme {}", t.name));
                            *th = t;
                        }
                        Err(e) => ui.message = Some(e.to_string()),
                    }
                    false
                }
                Effect::Ask(confirm::Pending::ProbeFull { node }) => {
                    let n = &fleet.view.nodes[node];
                    let peers = probe_peers(fleet, node).len();
                    ui.confirm = Some(confirm::Confirm::new(
                        confirm::Pending::ProbeFull { node },
                        format!("Probe the full core port ranges from {}?", n.name),
                        vec![
                            format!(
                                "{} probes every port of the core group (14000-14100, 15000-15100, 16000-16100, TCP and UDP) on each of its {peers} peers, one peer at a time.",
                                n.name
                            ),
                            "It runs on the agent (admin token), shows in the job list (J), and can be cancelled there (c).".into(),
                        ],
                    ));
                    false
                }
                Effect::Ask(confirm::Pending::Io { node, start }) => {
                    let n = &fleet.view.nodes[node];
                    let mut c = confirm::Confirm::new(
                        confirm::Pending::Io { node, start },
                        if start {
                            "Start the data-plane cluster's IO?".to_string()
                        } else {
                            "Stop the data-plane cluster's IO?".to_string()
                        },
                        if start {
                            vec![
                                format!("start-io runs on {} (admin token), which hands it to the Raft leader.", n.name),
                                "Every precondition is checked first (members joined, enough failure domains with ACTIVE drives); each one not met is listed and nothing changes.".into(),
                                "It shows in the job list (J).".into(),
                            ]
                        } else {
                            vec![
                                format!(
                                    "stop-io runs on {} (admin token): IO goes to STOPPED and every frontend read and write is refused until start-io.",
                                    n.name
                                ),
                                "Type stop-io to confirm.".into(),
                            ]
                        },
                    );
                    if !start {
                        c = c.typed("stop-io");
                    }
                    ui.confirm = Some(c);
                    false
                }
                Effect::Run(confirm::Pending::Io { node, start }) => {
                    let spec = fleet.specs[node].clone();
                    let token = fleet.tokens[node].clone();
                    let verb = if start { "start-io" } else { "stop-io" };
                    let (seq, cancel) = ui.jobs.add(format!("{verb} via {}", spec.name), now_ms());
                    ui.message = Some(format!("job {seq} started: J shows its progress"));
                    let (tx, rx) = tokio::sync::mpsc::channel(64);
                    tokio::spawn(crate::actions::io::io_change(
                        spec,
                        token,
                        fleet.securities[node].clone(),
                        start,
                        tx,
                        cancel,
                    ));
                    tokio::spawn(forward(seq, rx, job_tx.clone()));
                    false
                }
                Effect::Run(confirm::Pending::ProbeFull { node }) => {
                    let spec = fleet.specs[node].clone();
                    let token = fleet.tokens[node].clone();
                    let peers = probe_peers(fleet, node);
                    let (seq, cancel) = ui
                        .jobs
                        .add(format!("full probe from {}", spec.name), now_ms());
                    ui.message = Some(format!("job {seq} started: J shows its progress"));
                    let (tx, rx) = tokio::sync::mpsc::channel(64);
                    tokio::spawn(probe_action::full_probe(
                        ProbeRequest {
                            spec,
                            token,
                            security: fleet.securities[node].clone(),
                            peers: peers.join(","),
                            groups: vec!["core".into()],
                        },
                        tx,
                        cancel,
                    ));
                    tokio::spawn(forward(seq, rx, job_tx.clone()));
                    false
                }
            }
        };
        tokio::select! {
            ev = input_rx.recv() => {
                match ev {
                    Some(Ok(ev)) => {
                        log(&format!("input {ev:?}"));
                        quit |= handle(ev, &mut ui, &mut fleet, &mut th);
                        // Drain whatever else is already waiting, then draw once.
                        while let Ok(Ok(ev)) = input_rx.try_recv() {
                            quit |= handle(ev, &mut ui, &mut fleet, &mut th);
                        }
                        need_draw = true;
                        input_pending = true;
                    }
                    Some(Err(e)) => break Err(e.into()),
                    None => break Ok(()),
                }
            }
            n = fleet.changed() => {
                log(&format!("updates {n}"));
                need_draw = true;
            }
            _ = tick.tick() => {
                fleet.view.observe(now_ms());
                need_draw = true;
            }
            Some((seq, p)) = job_rx.recv() => {
                if let Some(end) = ui.jobs.apply(seq, p, now_ms()) {
                    ui.message = Some(end.clone());
                    fleet.view.push_event(crate::fleet::view::Event { seq: 0, at_ms: now_ms(), node: None, severity: crate::fleet::view::Severity::Info, text: end });
                }
                need_draw = true;
                input_pending = true;
            }
            Some(r) = demo_rx.recv() => {
                let (severity, text) = match r {
                    Ok(t) => (crate::fleet::view::Severity::Warning, format!("emulation: {t}")),
                    Err(e) => (crate::fleet::view::Severity::Info, format!("emulation refused: {e}")),
                };
                ui.message = Some(text.clone());
                fleet.view.push_event(crate::fleet::view::Event { seq: 0, at_ms: now_ms(), node: None, severity, text });
                need_draw = true;
                input_pending = true;
            }
            _ = tokio::time::sleep(wait), if need_draw => {}
        }
        if quit {
            break Ok(());
        }
    };
    if opts.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    fleet.stop();
    result
}

/// Waits until every node has reported (or is down), or `timeout`, then renders one frame.
pub async fn once(
    mut fleet: Fleet,
    theme: &Theme,
    panel: &str,
    node: Option<&str>,
    width: u16,
    height: u16,
    timeout: Duration,
) -> anyhow::Result<String> {
    let all = panels::all();
    let shown = console::find(&all, panel)
        .ok_or_else(|| anyhow::anyhow!("--panel {panel}: use {}", console::titles(&all)))?;
    let node_index = match node {
        Some(name) => Some(
            fleet
                .view
                .node_index(name)
                .ok_or_else(|| anyhow::anyhow!("--node {name}: not in the inventory"))?,
        ),
        None => None,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let now = now_ms();
        let t = fleet.view.thresholds;
        // Settled: every node has reported its sections, or failed for good (refused,
        // not gRPC, bad token). A node that only timed out may just be slow: keep waiting.
        let settled = fleet.view.nodes.iter().all(|n| {
            let definite = n
                .failure
                .as_ref()
                .is_some_and(|f| f.kind != crate::fleet::view::FailureKind::Timeout);
            (definite && n.status(now, &t) == crate::fleet::NodeStatus::Down)
                || n.snapshot
                    .as_ref()
                    .is_some_and(|s| s.checks.is_some() && s.pinning.is_some() && s.nvme.is_some())
        });
        if settled {
            break;
        }
        tokio::select! {
            _ = fleet.changed() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // The Stripes panel: the configuration is fetched from a member once its report
    // arrives; give it up to 3 s more.
    if all[shown].title() == "Stripes" {
        let more = (tokio::time::Instant::now() + Duration::from_secs(3)).min(deadline);
        while fleet.view.dataplane(now_ms()).is_none() {
            tokio::select! {
                _ = fleet.changed() => {}
                _ = tokio::time::sleep_until(more) => break,
            }
        }
    }
    fleet.stop();
    let now = now_ms();
    fleet.view.observe(now);
    let mut ui = Console::new(&fleet.view, now, true, &theme.name);
    ui.width = width;
    let view = &fleet.view;
    if let Some(node) = node_index {
        ui.focus(
            &nav::Focus::Node {
                node,
                facet: crate::fleet::health::Facet::Cores,
            },
            view,
        );
    }
    ui.show(shown, view);
    Ok(render_text(&ui, view, theme, width, height))
}

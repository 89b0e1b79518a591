//! Drives: every NVMe drive in the cluster in one sortable table, worst first by default;
//! Enter opens a drive's SMART detail.

use crate::fleet::view::{NodeStatus, fmt_age};
use crate::model::nvme::{CriticalWarning, HealthLevel};
use crate::ui::component::{Cx, Panel, Popup, list_filter, node_popup};
use crate::ui::keymap::{self, Binding};
use crate::ui::nav::{Action, Focus, List, Reply, matches};
use crate::ui::theme::Theme;
use crate::ui::widgets::table::{self, Col};
use crate::ui::widgets::{fit, health_style, kv, kv_styled, status_style};
use humansize::{DECIMAL, format_size};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriveSort {
    #[default]
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
    fn next(self) -> DriveSort {
        let i = DriveSort::ALL.iter().position(|s| *s == self).unwrap_or(0);
        DriveSort::ALL[(i + 1) % DriveSort::ALL.len()]
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

/// A data-plane drive as its node's store reports it: node index, index in its report.
#[derive(Debug, Clone, Copy)]
pub struct DpRow {
    pub node: usize,
    pub drive: usize,
}

/// Data-plane drive states, worst first.
fn dp_rank(state: &str) -> u8 {
    match state {
        "FAILED" => 0,
        "PHASING_OUT" => 1,
        "PHASING_IN" => 2,
        "INACTIVE" => 3,
        "ACTIVE" => 4,
        _ => 0,
    }
}

#[derive(Clone, Copy)]
enum D {
    Node,
    Path,
    State,
    Used,
    Capacity,
    Chunks,
    Problem,
}

const DP_COLS: [(D, Col); 7] = [
    (D::Node, Col::new("NODE", 10)),
    (D::Path, Col::new("DATA-PLANE DRIVE", 36)),
    (D::State, Col::new("STATE", 11)),
    (D::Used, Col::right("USED", 14)),
    (D::Capacity, Col::right("CAPACITY", 9)),
    (D::Chunks, Col::right("CHUNKS", 7)),
    (D::Problem, Col::new("PROBLEM", 0)),
];

#[derive(Default)]
pub struct Drives {
    list: List,
    sort: DriveSort,
    rows: Vec<DriveRow>,
    /// The data-plane drives, worst state first (a second table under the NVMe one).
    dp_rows: Vec<DpRow>,
    /// The drive whose SMART detail is open: node index and drive name.
    popup: Option<(usize, String)>,
}

static KEYS: &[Binding] = &[keymap::ENTER, keymap::SORT];

#[derive(Clone, Copy)]
enum C {
    Node,
    Slot,
    Drive,
    Model,
    Serial,
    Firmware,
    Numa,
    Capacity,
    Temp,
    Spare,
    Wear,
    Media,
    State,
    Health,
    Warnings,
}

const WIDE: [(C, Col); 15] = [
    (C::Node, Col::new("NODE", 10)),
    (C::Slot, Col::new("SLOT", 4)),
    (C::Drive, Col::new("DRIVE", 6)),
    (C::Model, Col::new("MODEL", 0)),
    (C::Serial, Col::new("SERIAL", 18)),
    (C::Firmware, Col::new("FW", 8)),
    (C::Numa, Col::new("NUMA", 4)),
    (C::Capacity, Col::right("CAPACITY", 9)),
    (C::Temp, Col::right("TEMP", 5)),
    (C::Spare, Col::right("SPARE", 5)),
    (C::Wear, Col::right("WEAR", 5)),
    (C::Media, Col::right("MEDIA", 6)),
    (C::State, Col::new("STATE", 6)),
    (C::Health, Col::new("HEALTH", 8)),
    (C::Warnings, Col::new("WARNINGS", 32)),
];

/// Narrow terminals have no WARNINGS column: the selected drive's go on the last line.
const NARROW: [(C, Col); 10] = [
    (C::Node, Col::new("NODE", 8)),
    (C::Slot, Col::new("SLOT", 4)),
    (C::Drive, Col::new("DRIVE", 6)),
    (C::Model, Col::new("MODEL", 0)),
    (C::Capacity, Col::right("CAP", 8)),
    (C::Temp, Col::right("TEMP", 4)),
    (C::Spare, Col::right("SPARE", 5)),
    (C::Wear, Col::right("WEAR", 4)),
    (C::Media, Col::right("MEDIA", 5)),
    (C::Health, Col::new("HEALTH", 8)),
];

impl Panel for Drives {
    fn title(&self) -> &'static str {
        "Drives"
    }

    fn keys(&self) -> &'static [Binding] {
        KEYS
    }

    fn derive(&mut self, cx: &Cx) {
        let view = cx.view;
        let f = &self.list.filter;
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
                    level: if cx.status(i) == NodeStatus::Up {
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
        match self.sort {
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
        self.rows = rows;
        let mut dp = Vec::new();
        for (i, n) in view.nodes.iter().enumerate() {
            let Some(d) = n.snapshot.as_ref().and_then(|s| s.dataplane.as_ref()) else {
                continue;
            };
            for (j, x) in d.drives.iter().enumerate() {
                if matches(f, &[&n.name, &x.path, &x.state]) {
                    dp.push(DpRow { node: i, drive: j });
                }
            }
        }
        let dp_of = |r: &DpRow| {
            view.nodes[r.node]
                .snapshot
                .as_ref()
                .and_then(|s| s.dataplane.as_ref())
                .and_then(|d| d.drives.get(r.drive))
        };
        dp.sort_by_key(|r| {
            (
                dp_of(r).map_or(0, |x| dp_rank(&x.state)),
                r.node,
                dp_of(r).map(|x| x.path.clone()),
            )
        });
        self.dp_rows = dp;
    }

    fn act(&mut self, a: Action, cx: &Cx) -> Reply {
        if self.list.nav(a, self.rows.len(), cx.page) {
            return Reply::Done;
        }
        match a {
            Action::Sort => {
                self.sort = self.sort.next();
                self.derive(cx);
                Reply::Message(format!("drives sorted by {}", self.sort.label()))
            }
            Action::Enter => {
                self.popup = self
                    .rows
                    .get(self.list.selected(self.rows.len()))
                    .and_then(|r| {
                        let d = cx.view.nodes[r.node].snapshot.as_ref()?.nvme.as_ref()?;
                        Some((r.node, d.get(r.drive)?.name.to_string()))
                    });
                Reply::Done
            }
            _ => Reply::Ignored,
        }
    }

    fn wants(&self, to: &Focus) -> bool {
        matches!(to, Focus::Drive { .. })
    }

    fn focus(&mut self, to: &Focus, cx: &Cx) {
        let Focus::Drive { node, drive } = to else {
            return;
        };
        let name_of = |r: &DriveRow| {
            cx.view.nodes[r.node]
                .snapshot
                .as_ref()
                .and_then(|s| s.nvme.as_ref())
                .and_then(|v| v.get(r.drive))
                .map(|x| x.name.as_str())
        };
        if let Some(row) = self
            .rows
            .iter()
            .position(|r| r.node == *node && name_of(r) == Some(drive.as_str()))
        {
            self.list.sel = row;
        }
        self.popup = Some((*node, drive.clone()));
    }

    fn popup(&self, cx: &Cx, th: &Theme) -> Option<Popup> {
        let (node, drive) = self.popup.as_ref()?;
        Some(node_popup(cx, *node, th, drive_popup(cx, *node, drive, th)))
    }

    fn popup_open(&self) -> bool {
        self.popup.is_some()
    }

    fn close_popup(&mut self) -> bool {
        self.popup.take().is_some()
    }

    list_filter!(list);

    fn draw(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
        // The data-plane drives take the lower part: their rows and a caption, at most
        // half the panel.
        let area = if self.dp_rows.is_empty() || area.height < 8 {
            area
        } else {
            let want = (self.dp_rows.len() as u16 + 3).min(area.height / 2);
            let dp = Rect {
                y: area.y + area.height - want,
                height: want,
                ..area
            };
            self.draw_dataplane(f, dp, cx, th);
            Rect {
                height: area.height - want,
                ..area
            }
        };
        let wide = area.width >= 140;
        let cols: &[(C, Col)] = if wide { &WIDE } else { &NARROW };
        // Narrow terminals have no WARNINGS column: the selected drive's go on the last line.
        let (area, footer) = if wide || area.height < 4 {
            (area, None)
        } else {
            (
                Rect {
                    height: area.height - 1,
                    ..area
                },
                Some(Rect {
                    y: area.y + area.height - 1,
                    height: 1,
                    ..area
                }),
            )
        };
        let filter = &self.list.filter;
        let caption = format!(
            "{} drives{} · sorted by {} (s) · Enter: SMART detail",
            self.rows.len(),
            if filter.is_empty() {
                String::new()
            } else {
                format!(" matching `{filter}`")
            },
            self.sort.label()
        );
        table::render_captioned(
            f,
            area,
            th,
            &caption,
            cols,
            self.rows.len(),
            Some(self.list.sel),
            &|r, c| {
                let row = &self.rows[r];
                let node = &cx.view.nodes[row.node];
                let Some(dr) = node
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.nvme.as_ref())
                    .and_then(|v| v.get(row.drive))
                else {
                    return (String::new(), th.dim);
                };
                let sm = dr.smart.as_ref();
                let hstyle = health_style(th, row.level);
                let num = |v: Option<String>| v.unwrap_or_else(|| "—".into());
                match c {
                    C::Node => (node.name.clone(), th.text),
                    C::Slot => (dr.slot.as_deref().unwrap_or("—").to_string(), th.dim),
                    C::Drive => (dr.name.to_string(), th.text),
                    C::Model => (dr.model.to_string(), th.text),
                    C::Serial => (dr.serial.to_string(), th.dim),
                    C::Firmware => (dr.firmware.to_string(), th.dim),
                    C::State => (
                        dr.state.to_string(),
                        if dr.state == "live" { th.dim } else { th.fail },
                    ),
                    C::Numa => (
                        dr.numa_node
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "—".into()),
                        th.dim,
                    ),
                    C::Capacity => (format_size(row.capacity, DECIMAL), th.text),
                    C::Temp => {
                        let t = row.temp;
                        let style = if sm.is_some_and(|s| {
                            s.critical_warning
                                .has(crate::model::nvme::CriticalWarning::TEMPERATURE)
                        }) {
                            th.fail
                        } else {
                            th.text
                        };
                        (num(t.map(|t| format!("{t}°"))), style)
                    }
                    C::Spare => (
                        num(sm.map(|s| format!("{}%", s.available_spare_pct))),
                        if sm.is_some_and(|s| {
                            s.available_spare_pct <= s.available_spare_threshold_pct
                        }) {
                            th.fail
                        } else {
                            th.text
                        },
                    ),
                    C::Wear => (
                        num(row.wear.map(|w| format!("{w}%"))),
                        if row.wear.is_some_and(|w| w >= 90) {
                            th.warn
                        } else {
                            th.text
                        },
                    ),
                    C::Media => (
                        num(row.media_errors.map(|m| m.to_string())),
                        if row.media_errors.is_some_and(|m| m > 0) {
                            th.warn
                        } else {
                            th.text
                        },
                    ),
                    // Drives of a node that is not up are never shown as healthy.
                    C::Health if cx.status(row.node) != NodeStatus::Up => (
                        cx.status(row.node).as_str().to_string(),
                        status_style(th, cx.status(row.node)),
                    ),
                    C::Health => (
                        match row.level {
                            HealthLevel::Ok => "ok",
                            HealthLevel::Unknown => "unknown",
                            HealthLevel::Warning => "WARNING",
                            HealthLevel::Critical => "CRITICAL",
                        }
                        .to_string(),
                        hstyle,
                    ),
                    C::Warnings => {
                        let reasons = node
                            .digest
                            .drives
                            .get(row.drive)
                            .map(|h| h.reasons.clone())
                            .unwrap_or_default();
                        (
                            if reasons.is_empty() {
                                "—".into()
                            } else {
                                reasons.join("; ")
                            },
                            if reasons.is_empty() { th.dim } else { hstyle },
                        )
                    }
                }
            },
        );
        if let Some(r) = footer {
            f.render_widget(
                Paragraph::new(self.selected_warnings(cx, th, r.width)).style(th.base),
                r,
            );
        }
    }
}

impl Drives {
    /// The data plane's drives with their state and usage, as each node's store reports
    /// them (the `dataplane` section).
    fn draw_dataplane(&self, f: &mut Frame, area: Rect, cx: &Cx, th: &Theme) {
        let area = Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(1),
            ..area
        };
        let (used, cap) = self
            .dp_rows
            .iter()
            .filter_map(|r| self.dp_drive(cx, r))
            .fold((0u64, 0u64), |(u, c), x| {
                (u + x.used_bytes, c + x.capacity_bytes)
            });
        let caption = format!(
            "─ data-plane drives ({}) · state and usage as each node's store reports them · {} of {} used",
            self.dp_rows.len(),
            format_size(used, DECIMAL),
            format_size(cap, DECIMAL)
        );
        table::render_captioned(
            f,
            area,
            th,
            &caption,
            &DP_COLS,
            self.dp_rows.len(),
            None,
            &|r, c| {
                let row = &self.dp_rows[r];
                let node = &cx.view.nodes[row.node];
                let Some(x) = self.dp_drive(cx, row) else {
                    return (String::new(), th.dim);
                };
                let current = cx.status(row.node) == NodeStatus::Up;
                match c {
                    D::Node => (node.name.clone(), th.text),
                    D::Path => (x.path.clone(), th.text),
                    // The last report of a node that is not up is not current.
                    D::State if !current => (
                        cx.status(row.node).as_str().to_string(),
                        status_style(th, cx.status(row.node)),
                    ),
                    D::State => (
                        x.state.clone(),
                        match x.state.as_str() {
                            "ACTIVE" => th.ok,
                            "FAILED" => th.fail,
                            _ => th.warn,
                        },
                    ),
                    D::Used => {
                        let pct = x
                            .used_bytes
                            .saturating_mul(100)
                            .checked_div(x.capacity_bytes)
                            .unwrap_or(0);
                        (
                            format!("{} {pct:>3}%", format_size(x.used_bytes, DECIMAL)),
                            if pct >= 90 { th.warn } else { th.text },
                        )
                    }
                    D::Capacity => (format_size(x.capacity_bytes, DECIMAL), th.text),
                    D::Chunks => (x.chunks.to_string(), th.dim),
                    D::Problem => match &x.problem {
                        Some(p) => (p.clone(), th.fail),
                        None => ("—".into(), th.dim),
                    },
                }
            },
        );
    }

    fn dp_drive<'a>(
        &self,
        cx: &'a Cx,
        r: &DpRow,
    ) -> Option<&'a crate::model::dataplane::DataDrive> {
        cx.view.nodes[r.node]
            .snapshot
            .as_ref()?
            .dataplane
            .as_ref()?
            .drives
            .get(r.drive)
    }

    fn selected_warnings(&self, cx: &Cx, th: &Theme, width: u16) -> Line<'static> {
        let Some(row) = self.rows.get(self.list.selected(self.rows.len())) else {
            return Line::default();
        };
        let node = &cx.view.nodes[row.node];
        let name = node
            .snapshot
            .as_ref()
            .and_then(|s| s.nvme.as_ref())
            .and_then(|v| v.get(row.drive))
            .map(|x| x.name.as_str())
            .unwrap_or("?");
        let reasons = node
            .digest
            .drives
            .get(row.drive)
            .map(|h| h.reasons.join("; "))
            .unwrap_or_default();
        let (text, style) = if reasons.is_empty() {
            ("no warnings".to_string(), th.dim)
        } else {
            (reasons, health_style(th, row.level))
        };
        let head = format!("▸ {} {name}: ", node.name);
        let room = (width as usize).saturating_sub(head.chars().count());
        Line::from(vec![
            Span::styled(head, th.header),
            Span::styled(fit(&text, room), style),
        ])
    }
}

/// A drive's identity, health and SMART log.
fn drive_popup(cx: &Cx, node: usize, drive: &str, th: &Theme) -> Popup {
    let current = cx.status(node) == NodeStatus::Up;
    let n = &cx.view.nodes[node];
    let Some(dr) = n
        .snapshot
        .as_ref()
        .and_then(|s| s.nvme.as_ref())
        .and_then(|v| v.iter().find(|x| x.name == drive))
    else {
        return (
            format!("{} {drive}", n.name),
            vec![Line::from("no longer reported")],
        );
    };
    let h = dr.console_health();
    let mut l = vec![
        kv("model", dr.model.clone(), th),
        kv("serial", dr.serial.clone(), th),
        kv("firmware", dr.firmware.clone(), th),
        kv(
            "PCI / slot",
            format!(
                "{} / {}",
                dr.address,
                dr.slot.clone().unwrap_or_else(|| "—".into())
            ),
            th,
        ),
        kv(
            "NUMA node",
            dr.numa_node
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into()),
            th,
        ),
        kv(
            "capacity",
            format!(
                "{} ({} namespace(s))",
                format_size(dr.capacity_bytes(), DECIMAL),
                dr.namespaces.len()
            ),
            th,
        ),
        kv(
            "write cache",
            match dr.volatile_write_cache() {
                Some(true) => "write back (volatile)",
                Some(false) => "write through",
                None => "unknown",
            },
            th,
        ),
        kv_styled(
            "health",
            format!(
                "{}{}{}",
                h.level.as_str().to_uppercase(),
                if current { "" } else { " (last known)" },
                if h.reasons.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", h.reasons.join("; "))
                }
            ),
            if current {
                health_style(th, h.level)
            } else {
                th.stale
            },
            th,
        ),
    ];
    match &dr.smart {
        None => l.push(kv(
            "SMART",
            dr.smart_error
                .clone()
                .unwrap_or_else(|| "unavailable".into()),
            th,
        )),
        Some(s) => {
            let bits: Vec<&str> = CriticalWarning::BITS
                .iter()
                .filter(|(b, _, _)| s.critical_warning.has(*b))
                .map(|(_, n, _)| *n)
                .collect();
            l.push(kv(
                "critical warning",
                if bits.is_empty() {
                    "none".to_string()
                } else {
                    format!("{:#04x}: {}", s.critical_warning.0, bits.join(", "))
                },
                th,
            ));
            l.push(kv(
                "temperature",
                s.temperature_celsius()
                    .map(|t| format!("{t} °C"))
                    .unwrap_or_else(|| "—".into()),
                th,
            ));
            l.push(kv(
                "available spare",
                format!(
                    "{}% (threshold {}%)",
                    s.available_spare_pct, s.available_spare_threshold_pct
                ),
                th,
            ));
            l.push(kv("percentage used", format!("{}%", s.percentage_used), th));
            l.push(kv("data read", format_size(s.data_read_bytes, DECIMAL), th));
            l.push(kv(
                "data written",
                format_size(s.data_written_bytes, DECIMAL),
                th,
            ));
            l.push(kv(
                "host commands",
                format!(
                    "{} read, {} write",
                    s.host_read_commands, s.host_write_commands
                ),
                th,
            ));
            l.push(kv(
                "power on",
                format!(
                    "{} h, {} cycles, {} unsafe shutdowns",
                    s.power_on_hours(),
                    s.power_cycles,
                    s.unsafe_shutdowns
                ),
                th,
            ));
            l.push(kv(
                "busy time",
                format!("{} min", s.controller_busy_seconds / 60),
                th,
            ));
            l.push(kv("media errors", s.media_errors.to_string(), th));
            l.push(kv(
                "error log",
                format!("{} entries", s.error_log_entries),
                th,
            ));
        }
    }
    l.push(kv(
        "data age",
        fmt_age(n.section_age_ms(crate::model::snapshot::Section::Nvme, cx.now_ms)),
        th,
    ));
    (format!("{} {}", n.name, dr.name), l)
}

//! Drives: every NVMe drive in the cluster in one sortable table, worst first by default.

use crate::model::nvme::HealthLevel;
use crate::ui::ViewState;
use crate::ui::app::Panel;
use crate::ui::theme::Theme;
use crate::ui::widgets::table::{self, Col};
use crate::ui::widgets::{fit, health_style};
use humansize::{DECIMAL, format_size};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(f: &mut Frame, area: Rect, vs: &ViewState, th: &Theme) {
    let d = vs.derived;
    let wide = area.width >= 140;
    let cols: Vec<Col> = if wide {
        vec![
            Col::new("NODE", 10),
            Col::new("SLOT", 4),
            Col::new("DRIVE", 6),
            Col::new("MODEL", 0),
            Col::new("SERIAL", 18),
            Col::new("FW", 8),
            Col::new("NUMA", 4),
            Col::right("CAPACITY", 9),
            Col::right("TEMP", 5),
            Col::right("SPARE", 5),
            Col::right("WEAR", 5),
            Col::right("MEDIA", 6),
            Col::new("STATE", 6),
            Col::new("HEALTH", 8),
            Col::new("WARNINGS", 32),
        ]
    } else {
        vec![
            Col::new("NODE", 8),
            Col::new("SLOT", 4),
            Col::new("DRIVE", 6),
            Col::new("MODEL", 0),
            Col::right("CAP", 8),
            Col::right("TEMP", 4),
            Col::right("SPARE", 5),
            Col::right("WEAR", 4),
            Col::right("MEDIA", 5),
            Col::new("HEALTH", 8),
        ]
    };
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
    let filter = vs.ui.filter(Panel::Drives);
    let caption = format!(
        "{} drives{} · sorted by {} (s) · Enter: SMART detail",
        d.drives.len(),
        if filter.is_empty() {
            String::new()
        } else {
            format!(" matching `{filter}`")
        },
        vs.ui.drive_sort.label()
    );
    table::render_captioned(
        f,
        area,
        th,
        &caption,
        &cols,
        d.drives.len(),
        Some(vs.ui.selected(Panel::Drives)),
        &|r, c| {
            let row = &d.drives[r];
            let node = &vs.cluster.nodes[row.node];
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
            let title = cols[c].title;
            match title {
                "NODE" => (node.name.clone(), th.text),
                "SLOT" => (dr.slot.as_deref().unwrap_or("—").to_string(), th.dim),
                "DRIVE" => (dr.name.to_string(), th.text),
                "MODEL" => (dr.model.to_string(), th.text),
                "SERIAL" => (dr.serial.to_string(), th.dim),
                "FW" => (dr.firmware.to_string(), th.dim),
                "STATE" => (
                    dr.state.to_string(),
                    if dr.state == "live" { th.dim } else { th.fail },
                ),
                "NUMA" => (
                    dr.numa_node
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "—".into()),
                    th.dim,
                ),
                "CAPACITY" | "CAP" => (format_size(row.capacity, DECIMAL), th.text),
                "TEMP" => {
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
                "SPARE" => (
                    num(sm.map(|s| format!("{}%", s.available_spare_pct))),
                    if sm.is_some_and(|s| s.available_spare_pct <= s.available_spare_threshold_pct)
                    {
                        th.fail
                    } else {
                        th.text
                    },
                ),
                "WEAR" => (
                    num(row.wear.map(|w| format!("{w}%"))),
                    if row.wear.is_some_and(|w| w >= 90) {
                        th.warn
                    } else {
                        th.text
                    },
                ),
                "MEDIA" => (
                    num(row.media_errors.map(|m| m.to_string())),
                    if row.media_errors.is_some_and(|m| m > 0) {
                        th.warn
                    } else {
                        th.text
                    },
                ),
                // Drives of a node that is not up are never shown as healthy.
                "HEALTH" if d.status[row.node] != crate::fleet::NodeStatus::Up => (
                    d.status[row.node].as_str().to_string(),
                    crate::ui::widgets::status_style(th, d.status[row.node]),
                ),
                "HEALTH" => (
                    match row.level {
                        HealthLevel::Ok => "ok",
                        HealthLevel::Unknown => "unknown",
                        HealthLevel::Warning => "WARNING",
                        HealthLevel::Critical => "CRITICAL",
                    }
                    .to_string(),
                    hstyle,
                ),
                _ => {
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
            Paragraph::new(selected_warnings(vs, th, r.width)).style(th.base),
            r,
        );
    }
}

/// The selected drive's warnings, one line.
fn selected_warnings(vs: &ViewState, th: &Theme, width: u16) -> Line<'static> {
    let d = vs.derived;
    let Some(row) = d.drives.get(vs.ui.selected(Panel::Drives)) else {
        return Line::default();
    };
    let node = &vs.cluster.nodes[row.node];
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

//! Drives: every NVMe drive in the cluster in one sortable table, worst first by default.

use crate::model::nvme::HealthLevel;
use crate::ui::ViewState;
use crate::ui::app::Panel;
use crate::ui::theme::Theme;
use crate::ui::widgets::health_style;
use crate::ui::widgets::table::{self, Col};
use humansize::{DECIMAL, format_size};
use ratatui::Frame;
use ratatui::layout::Rect;

pub fn render(f: &mut Frame, area: Rect, vs: &ViewState, th: &Theme) {
    let d = vs.derived;
    let wide = area.width >= 140;
    let cols: Vec<Col> = if wide {
        vec![
            Col::new("NODE", 10),
            Col::new("SLOT", 4),
            Col::new("DRIVE", 6),
            Col::new("MODEL", 0),
            Col::new("SERIAL", 20),
            Col::new("FW", 8),
            Col::new("NUMA", 4),
            Col::right("CAPACITY", 9),
            Col::right("TEMP", 5),
            Col::right("SPARE", 5),
            Col::right("WEAR", 5),
            Col::right("MEDIA", 6),
            Col::new("HEALTH", 8),
            Col::new("WARNINGS", 34),
        ]
    } else {
        vec![
            Col::new("NODE", 8),
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
                "SLOT" => (dr.slot.clone().unwrap_or_else(|| "—".into()), th.dim),
                "DRIVE" => (dr.name.clone(), th.text),
                "MODEL" => (dr.model.clone(), th.text),
                "SERIAL" => (dr.serial.clone(), th.dim),
                "FW" => (dr.firmware.clone(), th.dim),
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
}

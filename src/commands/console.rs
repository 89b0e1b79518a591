//! `axon console`: the TUI on every node of an inventory, or one frame with `--once`.

use super::inventory;
use crate::cli::{ConsoleArgs, ViewArgs};
use crate::fleet::{Fleet, FollowOptions, Inventory};
use crate::ui::{self, theme};
use anyhow::Result;

/// Opens the console (or prints one frame with --once) on a fleet.
pub async fn view(inv: &Inventory, v: &ViewArgs) -> Result<()> {
    view_with(inv, v, None).await
}

/// As `view`, inside the demo running in `demo_dir`: its `:` palette takes fault lines.
pub async fn view_with(
    inv: &Inventory,
    v: &ViewArgs,
    demo_dir: Option<std::path::PathBuf>,
) -> Result<()> {
    let mut opts = FollowOptions::for_interval(v.interval);
    // The Stripes panel shows the data-plane cluster its agents report.
    opts.cluster = true;
    let connect = opts.connect_timeout;
    let fleet = Fleet::start(inv, opts)?;
    if v.once {
        let th = theme::Theme::load(
            if theme::no_color() { "mono" } else { &v.theme },
            theme::ColorDepth::TrueColor,
        )?;
        // Long enough for a slow node's first full report; nodes that answer definitively
        // (data, or a refusal) end the wait early.
        let timeout = (connect + v.interval * 3).max(std::time::Duration::from_secs(10));
        let text = ui::once(
            fleet,
            &th,
            &v.panel,
            v.node.as_deref(),
            v.size.0,
            v.size.1,
            timeout,
        )
        .await?;
        print!("{text}");
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("the console needs a terminal; use --once to print one frame");
    }
    ui::run(
        fleet,
        ui::ConsoleOptions {
            read_only: v.read_only,
            theme: v.theme.clone(),
            mouse: v.mouse,
            demo: demo_dir.map(|d| -> ui::DemoHook {
                std::sync::Arc::new(move |line: String| {
                    let d = d.clone();
                    Box::pin(async move {
                        crate::demo::send_fault(&d, &line)
                            .await
                            .map_err(|e| format!("{e:#}"))
                    })
                })
            }),
        },
    )
    .await
}

pub async fn exec(a: ConsoleArgs) -> Result<i32> {
    view(&inventory(&a.fleet)?, &a.view).await.map(|_| 0)
}

//! `axon`: parse the command line and dispatch. Nothing else lives here.

use axon::cli::{Cli, Command};
use axon::commands;
use clap::Parser;

/// jemalloc, one arena, unused pages returned within about a second: after a flood of
/// connections the agent's memory comes back to within a few per cent of where it was
/// (glibc's malloc kept 20 % more, pinned by a few long-lived chunks placed during the
/// flood); `cargo bench --bench flood` measures it. Returning pages at once
/// (`dirty_decay_ms:0`) cost the exporter a quarter more CPU (`cargo bench --bench
/// exporter_compare`); a second's decay costs little of either.
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its options from this symbol before `main` (`_RJEM_MALLOC_CONF` in the
/// environment still overrides them).
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 47] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let telemetry = axon::telemetry::init(axon::telemetry::Options::for_cli(&cli));
    // The console (and `status`, which follows the same fleet) is one event loop: its
    // follower tasks only decode and hand over, and a single thread spares 1,000 streams
    // a cross-thread wake-up per message.
    let mut builder = match cli.command {
        Command::Console(_) | Command::Status(_) => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    let rt = match builder.max_blocking_threads(16).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("axon: cannot start the runtime: {e}");
            return std::process::ExitCode::from(70);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Agent(a) => commands::agent::exec(a).await,
            Command::Exporter(a) => commands::exporter::exec(a).await,
            Command::Check(a) => commands::check::exec(a).await,
            Command::Console(a) => commands::console::exec(a).await,
            Command::Status(a) => commands::status::exec(a).await,
            Command::Demo(a) => commands::demo::exec(a).await,
            Command::Probe(a) => commands::probe::exec(a).await,
            Command::Plan(a) => commands::plan::exec(a).await,
            Command::Drive(c) => commands::drive::exec(c).await,
            Command::Io(c) => commands::io::exec(c).await,
            Command::Cluster(c) => commands::cluster::exec(c).await,
            Command::StartIo(a) => commands::cluster::io(a, true).await,
            Command::StopIo(a) => commands::cluster::io(a, false).await,
        }
    });
    // A collector stuck in a hung read holds a blocking-pool thread; dropping the runtime
    // would wait for it forever. Exit without waiting.
    telemetry.shutdown();
    rt.shutdown_background();
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("axon: {}", commands::error_text(&e));
            std::process::ExitCode::from(3)
        }
    }
}

//! The process's one `tracing` subscriber: log lines (a fmt layer filtered by `RUST_LOG`)
//! and, when an OTLP endpoint is configured, spans exported to an OpenTelemetry collector
//! over OTLP/gRPC. `main` calls [`init`] once and [`Telemetry::shutdown`] before it exits,
//! so the last spans are flushed.
//!
//! The exporter and its batch processor run on a runtime of their own (one thread): the
//! SDK's default batch processor exports from a plain thread with no Tokio reactor, where
//! the tonic exporter fails and the spans are dropped without a word; and the console's
//! single-threaded runtime cannot flush while `shutdown` blocks it. The async-runtime
//! batch processor on a dedicated runtime works the same under every verb and in tests.

use crate::cli::{Cli, Command};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::path::PathBuf;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter};

/// The standard variables, read when no `--otlp-endpoint` is given (the traces-only one
/// first, as the OpenTelemetry specification orders them).
pub const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// How long [`Telemetry::shutdown`] waits for the last export before giving up (a
/// collector that accepts connections and never answers must not hold the exit).
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTo {
    Stderr,
    /// Appended to this file (the console: the terminal belongs to the TUI).
    File(PathBuf),
    /// Nowhere (spans may still be exported).
    Off,
}

/// What [`init`] sets up.
#[derive(Debug, Clone)]
pub struct Options {
    /// `service.name` of the exported spans unless `OTEL_SERVICE_NAME` is set.
    pub service: String,
    pub log: LogTo,
    /// The collector (`http://host:4317`); None reads [`ENDPOINT_VARS`], and with none of
    /// them set nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// Log the agents' audit records only when RUST_LOG names them: `axon demo
    /// --headless` runs every agent in one process and logs on stderr, where a line of
    /// JSON per call would bury its progress (the records still go to each agent's audit
    /// file under the demo's directory).
    pub quiet_audit: bool,
}

impl Options {
    /// The options for a command line: service `axon-<verb>`; logs on stderr, except for
    /// the console's TUI (the console and `axon demo` without `--once`/`--headless`),
    /// whose log goes to [`console_log_path`].
    pub fn for_cli(cli: &Cli) -> Options {
        let (verb, tui) = match &cli.command {
            Command::Agent(_) => ("agent", false),
            Command::Exporter(_) => ("exporter", false),
            Command::Check(_) => ("check", false),
            Command::Console(a) => ("console", !a.view.once),
            Command::Status(_) => ("status", false),
            Command::Demo(a) => ("demo", !a.headless && !a.view.once),
            Command::Probe(_) => ("probe", false),
            Command::Plan(_) => ("plan", false),
            Command::Drive(_) => ("drive", false),
            Command::Io(_) => ("io", false),
            Command::Cluster(_) => ("cluster", false),
            Command::StartIo(_) => ("start-io", false),
            Command::StopIo(_) => ("stop-io", false),
        };
        let log = if tui {
            console_log_path().map_or(LogTo::Off, LogTo::File)
        } else {
            LogTo::Stderr
        };
        Options {
            service: format!("axon-{verb}"),
            log,
            otlp_endpoint: cli.otlp_endpoint.clone(),
            // The TUI demo's log goes to the console's file, where they bury nothing.
            quiet_audit: verb == "demo" && !tui,
        }
    }
}

/// The console's log file: `$XDG_STATE_HOME/axon/console.log`, or
/// `~/.local/state/axon/console.log`; None without either variable.
pub fn console_log_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(state.join("axon/console.log"))
}

/// The endpoint to export to: the flag's, else the first of [`ENDPOINT_VARS`] set and
/// not empty. `OTEL_SDK_DISABLED=true` turns export off whatever is set.
pub fn endpoint(flag: Option<&str>) -> Option<String> {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    flag.map(str::to_string)
        .or_else(|| ENDPOINT_VARS.iter().find_map(|v| std::env::var(v).ok()))
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
}

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes it.
#[must_use = "call shutdown() before the process exits, or the last spans are lost"]
pub struct Telemetry {
    export: Option<Export>,
}

struct Export {
    provider: SdkTracerProvider,
    runtime: tokio::runtime::Runtime,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.export.is_some()
    }

    /// Exports the spans still buffered and stops the exporter, waiting at most a few
    /// seconds for the collector. Spans still open are not exported.
    pub fn shutdown(self) {
        let Some(Export { provider, runtime }) = self.export else {
            return;
        };
        // shutdown() blocks its thread until the exporter's task has sent the last batch
        // on the export runtime; a thread of its own bounds the wait.
        let (tx, rx) = std::sync::mpsc::channel();
        let flushing = std::thread::Builder::new()
            .name("axon-otel-flush".into())
            .spawn(move || {
                let _ = tx.send(provider.shutdown());
            });
        match flushing.map(|_| rx.recv_timeout(SHUTDOWN_BUDGET)) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!("axon: tracing: the last spans were not exported: {e}")
            }
            Ok(Err(_)) => tracing::warn!(
                "axon: tracing: the collector did not take the last spans within {} s; giving up",
                SHUTDOWN_BUDGET.as_secs()
            ),
            Err(e) => tracing::warn!("axon: tracing: cannot flush the last spans: {e}"),
        }
        runtime.shutdown_background();
    }
}

/// Installs the process's subscriber (once: a second call changes nothing and exports
/// nothing) and the W3C TraceContext propagator.
pub fn init(opts: Options) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let mut filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    // openraft narrates every election and replication step at INFO: its warnings are
    // what an operator needs, unless RUST_LOG asks for it by name. Its replication
    // handler repeats each failed call to a member that is down twice more ("update
    // progress error", "heartbeat error"), for as long as it is down; the replication
    // task's own warning and error about the call still show, and `agent::raft` says
    // once when a member becomes unreachable and when it is back. Its core's warnings
    // are all about stale messages it drops ("A message will be ignored because vote
    // changed", several while a cluster forms or elects); its errors still show.
    if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("openraft")) {
        for d in [
            "openraft=warn",
            "openraft::engine::handler::replication_handler=error",
            "openraft::core::raft_core=error",
        ] {
            filter = filter.add_directive(d.parse().expect("a valid directive"));
        }
    }
    if opts.quiet_audit && !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("audit")) {
        filter = filter.add_directive(
            "axon::agent::audit=warn"
                .parse()
                .expect("a valid directive"),
        );
    }
    let mut problems = Vec::new();
    let fmt = match &opts.log {
        LogTo::Stderr => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(stderr_in_colour())
                .boxed(),
        ),
        LogTo::File(path) => match open_log(path) {
            Ok(f) => Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::sync::Mutex::new(f))
                    .with_ansi(false)
                    .boxed(),
            ),
            Err(e) => {
                problems.push(format!(
                    "axon: cannot open the log file {}: {e}; logging nothing",
                    path.display()
                ));
                None
            }
        },
        LogTo::Off => None,
    };
    let (export, otel) = match endpoint(opts.otlp_endpoint.as_deref()) {
        None => (None, None),
        Some(url) => match exporter(&url, &service_name(&opts.service)) {
            Ok(export) => {
                let tracer = export.provider.tracer("axon");
                let layer = tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_threads(false)
                    .with_location(false)
                    .with_tracked_inactivity(false)
                    .with_filter(filter::filter_fn(|m| not_transport(m.target())));
                (Some(export), Some(layer))
            }
            Err(e) => {
                problems.push(format!("axon: tracing: not exporting spans to {url}: {e}"));
                (None, None)
            }
        },
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    for p in &problems {
        if installed && opts.log != LogTo::Off {
            tracing::warn!("{p}");
        } else {
            // Nowhere else to say it (a console without a log file says it before its
            // screen opens).
            eprintln!("{p}");
        }
    }
    match export {
        Some(e) if installed => Telemetry { export: Some(e) },
        Some(e) => {
            // Another subscriber was there first: these spans would go nowhere.
            e.runtime.shutdown_background();
            Telemetry { export: None }
        }
        None => Telemetry { export: None },
    }
}

/// `OTEL_SERVICE_NAME`, else the verb's default.
fn service_name(default: &str) -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Events and spans of the crates that carry the export itself never go to the exporter
/// (at RUST_LOG=trace they would feed it their own spans forever).
fn not_transport(target: &str) -> bool {
    const OWN: [&str; 6] = ["h2", "hyper", "tonic", "tower", "opentelemetry", "rustls"];
    !OWN.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('_'))
    })
}

fn stderr_in_colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The OTLP/gRPC exporter behind the async-runtime batch processor, both on a runtime of
/// their own: the exporter's channel and the processor's task are spawned while it is
/// entered, and its worker thread drives them whatever the process's runtime does.
fn exporter(url: &str, service: &str) -> Result<Export, String> {
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("the endpoint is not a URL like http://collector:4317".into());
    }
    if url.starts_with("https://") {
        return Err(
            "https:// collectors are not supported yet; export in plain gRPC to a collector on this host or network (http://…:4317)".into(),
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .thread_name("axon-otel")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the export thread: {e}"))?;
    let _entered = runtime.enter();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(url)
        .build()
        .map_err(|e| e.to_string())?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build();
    drop(_entered);
    Ok(Export { provider, runtime })
}

/// The trace context of `span`, as W3C `traceparent` (and `tracestate`), into a request's
/// headers; nothing when the span is not exported.
pub fn inject(span: &tracing::Span, into: &mut dyn Injector) {
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, into));
    }
}

/// Makes the caller's span, named by the request's `traceparent`, the parent of `span`
/// (which must not have started yet). Nothing without a valid `traceparent`.
pub fn adopt_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if cx.span().span_context().is_remote() {
        let _ = span.set_parent(cx);
    }
}

/// An HTTP request's headers as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporter_never_sees_its_own_transport() {
        for t in [
            "h2",
            "h2::codec",
            "hyper_util::client",
            "tonic::transport",
            "opentelemetry_sdk",
        ] {
            assert!(!not_transport(t), "{t}");
        }
        for t in ["axon::agent::policy", "h2o", "tonics", "axon"] {
            assert!(not_transport(t), "{t}");
        }
    }

    #[test]
    fn a_traceparent_makes_the_remote_span_the_parent() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let mut h = http::HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(&h)));
        let sc = cx.span().span_context().clone();
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
    }
}

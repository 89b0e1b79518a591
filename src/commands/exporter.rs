//! `axon exporter`: only `/metrics`, for Prometheus; collects when scraped (at most every
//! `--max-age`), no gRPC, no state.

use super::{collect_config, wait_for_shutdown};
use crate::agent::{self, AgentConfig, scheduler::CollectConfig};
use crate::cli::ExporterArgs;
use anyhow::Result;

pub async fn exec(a: ExporterArgs) -> Result<i32> {
    let cfg = AgentConfig {
        host_root: a.collect.host_root.clone(),
        listen: None,
        echo_listen: None,
        metrics_listen: Some(a.metrics_listen),
        unix_socket: None,
        state_dir: std::env::temp_dir(),
        token_file: None,
        node_name: None,
        base_interval: a.interval,
        collect: CollectConfig {
            on_demand: Some(a.max_age),
            ..collect_config(&a.collect)?
        },
        tls: agent::tls::ServerTls::Off,
        metrics_tls: false,
        limits: agent::listen::Limits::default(),
    };
    let ag = agent::start(cfg).await?;
    if let Some(addr) = ag.metrics_addr {
        eprintln!(
            "axon exporter {}: metrics at http://{addr}/metrics",
            env!("CARGO_PKG_VERSION")
        );
    }
    wait_for_shutdown().await;
    ag.shutdown();
    Ok(0)
}

//! `axon demo`: starts the embedded cluster (`crate::demo`) and opens the console on it,
//! or with `--headless` prints where everything is and waits for Ctrl-C.

use crate::cli::DemoArgs;
use crate::demo::{DemoCluster, DemoOptions, node_name, profile_for, start};
use anyhow::{Context, Result};

pub async fn exec(a: DemoArgs) -> Result<i32> {
    let opts = DemoOptions {
        nodes: a.nodes,
        dir: a.dir.clone(),
        interval: a.view.interval,
        control_port: a.port,
        metrics_port: a.metrics_port,
        insecure: a.insecure,
    };
    eprintln!(
        "axon demo: starting {} agents on 127.0.1.1-{} (emulated hosts) …",
        a.nodes, a.nodes
    );
    if a.insecure {
        tracing::warn!(
            "--insecure: the demo agents and console speak plain-text gRPC; tokens cross the network unencrypted"
        );
    }
    let cluster = start(opts).await?;
    let inventory = match &a.inventory_out {
        Some(out) => {
            std::fs::copy(&cluster.inventory, out)
                .with_context(|| format!("writing {}", out.display()))?;
            out.clone()
        }
        None => cluster.inventory.clone(),
    };
    if a.headless {
        print_where(&cluster);
        eprintln!(
            "\nattach with: axon console{} --inventory {}\nPress Ctrl-C to stop.",
            if a.insecure { " --insecure" } else { "" },
            inventory.display()
        );
        let _ = tokio::signal::ctrl_c().await;
    } else {
        let mut inv = crate::fleet::Inventory::load(&inventory)?;
        if a.insecure {
            inv.trust = std::sync::Arc::new(
                crate::fleet::tls::Trust::new(&crate::fleet::tls::TrustOptions {
                    insecure: true,
                    ..Default::default()
                })
                .map_err(anyhow::Error::msg)?,
            );
        }
        super::console::view(&inv, &a.view).await?;
    }
    for ag in &cluster.agents {
        ag.shutdown();
    }
    Ok(0)
}

pub fn print_where(c: &DemoCluster) {
    eprintln!("  working dir  {}", c.dir.display());
    eprintln!("  inventory    {}", c.inventory.display());
    eprintln!("  admin token  {}", c.token_file.display());
    for (i, ag) in c.agents.iter().enumerate() {
        let name = node_name(i as u16 + 1);
        let profile = profile_for(i as u16 + 1);
        eprintln!(
            "  {name}  gRPC {}  metrics http://{}/metrics  profile {profile}",
            ag.grpc_addr.map(|a| a.to_string()).unwrap_or_default(),
            ag.metrics_addr.map(|a| a.to_string()).unwrap_or_default(),
        );
    }
}

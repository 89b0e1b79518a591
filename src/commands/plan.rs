//! `axon plan`: the core plan (`model::plan::plan_node`) of this host, of a host root, or
//! of every node of a cluster from its agent's report, as a table or JSON. Exit 0 every
//! rule holds, 1 warnings, 2 a rule cannot hold, 3 could not run.

use super::check::collect_within;
use crate::actions::artefacts::{self, Artefact, PlannedNode};
use crate::agent::scheduler::{CollectConfig, Schedule, collect_section};
use crate::agent::state::SectionValue;
use crate::cli::{FleetArgs, PlanArgs, PlanFormat};
use crate::collectors::HostRoot;
use crate::collectors::net::NetConfig;
use crate::fleet::{Fleet, FollowOptions};
use crate::model::plan::{
    NodePlan, NoteSeverity, PerRole, PlanInput, PlanOptions, Role, plan_node,
};
use crate::model::snapshot::Section;
use anyhow::{Context, Result, anyhow};
use serde_json::json;
use std::fmt::Write as _;
use std::time::Duration;

/// One node's plan, or why there is none.
pub struct Planned {
    pub node: String,
    /// The emulated profile, when the host is a fixture.
    pub profile: Option<String>,
    pub topology: Option<crate::model::topology::Topology>,
    pub network: Option<crate::model::net::Network>,
    pub plan: Result<NodePlan, String>,
}

pub fn options(a: &PlanArgs) -> PlanOptions {
    PlanOptions {
        drives: a.drives.map(usize::from),
        frontend_cores: a.frontend_cores.into(),
        compute_per_drive: a.compute_per_drive.into(),
        reserve_os: a.reserve_os.into(),
        hugepages_mib: PerRole {
            drive: a.hugepages_drive_mib,
            compute: a.hugepages_compute_mib,
            frontend: a.hugepages_frontend_mib,
        },
        memory_mib: PerRole {
            drive: a.memory_drive_mib,
            compute: a.memory_compute_mib,
            frontend: a.memory_frontend_mib,
        },
        ..PlanOptions::default()
    }
}

pub fn k8s_options(a: &PlanArgs) -> artefacts::k8s::K8sOptions {
    artefacts::k8s::K8sOptions {
        image: a.weka_image.clone(),
        namespace: a.k8s_namespace.clone(),
        cluster_name: a.cluster_name.clone(),
        operator_version: a.operator_version.clone(),
        csi_version: a.csi_version.clone(),
        manual_cores: a.k8s_cpu_policy == "manual",
    }
}

pub async fn exec(a: PlanArgs) -> Result<i32> {
    let opts = options(&a);
    let plans = if a.inventory.is_some() || a.hosts.is_some() {
        cluster(&a, &opts).await?
    } else {
        vec![host(&a.host_root, &a.dataplane_nics, &opts).await?]
    };
    match a.format {
        PlanFormat::Table => print!("{}", render_table(&plans)),
        PlanFormat::Json => println!("{:#}", to_json(&plans)),
        PlanFormat::Slurm | PlanFormat::Script | PlanFormat::Files | PlanFormat::K8s => {
            let source = match (&a.inventory, &a.hosts) {
                (Some(i), _) => format!("the agents of inventory {}", i.display()),
                (None, Some(h)) => format!("the agents of {h}"),
                (None, None) => format!("host root {}", a.host_root.display()),
            };
            let nodes = planned_nodes(&plans)?;
            let files = match a.format {
                PlanFormat::Slurm => artefacts::slurm::artefacts(&nodes, &source),
                PlanFormat::Script => artefacts::script::artefacts(&nodes, &source),
                PlanFormat::K8s => artefacts::k8s::artefacts(&nodes, &k8s_options(&a), &source),
                _ => artefacts::files::artefacts(&nodes),
            }
            .map_err(anyhow::Error::msg)?;
            emit(&files, a.out.as_deref())?;
        }
    }
    Ok(exit_code(&plans))
}

/// Reads a host's topology, NICs and drives (each collector within its deadline) and plans it.
pub async fn host(root: &std::path::Path, nics: &[String], opts: &PlanOptions) -> Result<Planned> {
    let root = HostRoot::open_within(root, crate::collectors::hostroot::STARTUP_DEADLINE).await?;
    let cfg = CollectConfig {
        net: NetConfig {
            dataplane: nics.to_vec(),
        },
        smart: false,
        log_problems: false,
        plan: Default::default(),
        peers: Vec::new(),
        probe_ports: Vec::new(),
        probe: Default::default(),
        own_addresses: Vec::new(),
        peers_per_round: 0,
        on_demand: None,
        slurm: None,
    };
    let schedule = Schedule::with_base(Duration::from_secs(1));
    let mut snap = crate::model::snapshot::NodeSnapshot::default();
    for section in [Section::Topology, Section::Network, Section::Nvme] {
        let (r, c) = (root.clone(), cfg.clone());
        let deadline = schedule.timing(section).deadline;
        let v = collect_within(deadline, move || collect_section(&r, &c, None, section))
            .await
            .map_err(|e| anyhow!("{} collector {e}", section.as_str()))?
            .map_err(|e| anyhow!("{}: {e}", section.as_str()))?;
        match v.0 {
            SectionValue::Topology(t) => snap.topology = Some(t),
            SectionValue::Network(n) => snap.network = Some(n),
            SectionValue::Nvme(d) => snap.nvme = Some(d),
            _ => {}
        }
    }
    let node = root.hostname().unwrap_or_else(|| "this host".into());
    Ok(Planned {
        node,
        profile: root.profile().map(|p| p.name.clone()),
        plan: PlanInput::from_snapshot(&snap).map(|inp| plan_node(&inp, opts)),
        topology: snap.topology.clone(),
        network: snap.network.clone(),
    })
}

/// Follows every node until it has reported (or `--timeout`), then plans each from its
/// snapshot.
async fn cluster(a: &PlanArgs, opts: &PlanOptions) -> Result<Vec<Planned>> {
    let inv = super::inventory(&FleetArgs {
        hosts: a.hosts.clone(),
        inventory: a.inventory.clone(),
        token_file: a.token_file.clone(),
        port: a.port,
        trust: a.trust.clone(),
    })?;
    let mut fleet = Fleet::start(&inv, FollowOptions::for_interval(Duration::from_secs(1)))?;
    super::status::wait(&mut fleet, a.timeout, "plan").await;
    Ok(fleet
        .view
        .nodes
        .iter()
        .map(|n| Planned {
            node: n.name.clone(),
            profile: n
                .snapshot
                .as_ref()
                .and_then(|s| s.node.emulated_profile.clone()),
            topology: n.snapshot.as_ref().and_then(|s| s.topology.clone()),
            network: n.snapshot.as_ref().and_then(|s| s.network.clone()),
            plan: match &n.snapshot {
                Some(s) => PlanInput::from_snapshot(s).map(|inp| plan_node(&inp, opts)),
                None => Err(format!(
                    "no report from {} ({})",
                    n.endpoint,
                    n.failure
                        .as_ref()
                        .map(|f| f.message.clone())
                        .unwrap_or_else(|| "not answering yet".into())
                )),
            },
        })
        .collect())
}

/// The nodes with a plan, for the artefacts; a node without one is an error naming it.
fn planned_nodes(plans: &[Planned]) -> Result<Vec<PlannedNode<'_>>> {
    plans
        .iter()
        .map(|p| match (&p.plan, &p.topology) {
            (Ok(plan), Some(topology)) => Ok(PlannedNode {
                name: &p.node,
                topology,
                plan,
                network: p.network.as_ref(),
            }),
            (Err(e), _) => Err(anyhow!("{}: no plan: {e}", p.node)),
            (Ok(_), None) => Err(anyhow!("{}: no topology reported", p.node)),
        })
        .collect()
}

/// Prints the artefacts (each under a header naming it) or writes them under `out`.
fn emit(files: &[Artefact], out: Option<&std::path::Path>) -> Result<()> {
    match out {
        None => {
            for (i, f) in files.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("# ==> {} ({}) <==", f.name, f.install_to);
                print!("{}", f.text);
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating --out directory {}", dir.display()))?;
            for f in files {
                let path = dir.join(&f.name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&path, &f.text)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {} ({})", path.display(), f.install_to);
            }
        }
    }
    Ok(())
}

pub fn exit_code(plans: &[Planned]) -> i32 {
    plans
        .iter()
        .map(|p| match &p.plan {
            Err(_) => 3,
            Ok(plan) => match plan.notes.iter().map(|n| n.severity).max() {
                Some(NoteSeverity::Infeasible) => 2,
                Some(NoteSeverity::Warning) => 1,
                _ => 0,
            },
        })
        .max()
        .unwrap_or(3)
}

fn mib(m: u64) -> String {
    if m >= 1024 {
        format!("{:.1} GiB", m as f64 / 1024.0)
    } else {
        format!("{m} MiB")
    }
}

pub fn render_table(plans: &[Planned]) -> String {
    // Nodes with the same plan (and profile) are shown once, named as a host list.
    let mut groups: Vec<(&Planned, Vec<&str>)> = Vec::new();
    for p in plans {
        match groups
            .iter_mut()
            .find(|(g, _)| g.plan.is_ok() && g.plan == p.plan && g.profile == p.profile)
        {
            Some((_, names)) => names.push(&p.node),
            None => groups.push((p, vec![&p.node])),
        }
    }
    let mut s = String::new();
    for (i, (p, names)) in groups.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let node = if names.len() == 1 {
            names[0].to_string()
        } else {
            format!(
                "{} ({} nodes)",
                crate::model::hostlist::compress(names),
                names.len()
            )
        };
        let what = p
            .profile
            .as_deref()
            .map(|x| format!(" (emulated: {x})"))
            .unwrap_or_default();
        let plan = match &p.plan {
            Ok(plan) => plan,
            Err(e) => {
                let _ = writeln!(s, "{node}{what}: no plan: {e}");
                continue;
            }
        };
        let verdict = if !plan.holds() {
            "a rule cannot hold: nearest plan"
        } else if plan
            .notes
            .iter()
            .any(|n| n.severity == NoteSeverity::Warning)
        {
            "holds, with warnings"
        } else {
            "holds"
        };
        let _ = writeln!(s, "{node}{what}: {verdict}");
        let (w, g) = (plan.wanted, plan.planned);
        let _ = writeln!(
            s,
            "  cores     {} drive · {} compute · {} frontend{}",
            g.drive,
            g.compute,
            g.frontend,
            if w != g {
                format!(
                    " (the rules ask {} · {} · {})",
                    w.drive, w.compute, w.frontend
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "  NUMA      {} (domains with a dataplane NIC)",
            plan.nic_domains
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            s,
            "\n  {:<10} {:<8} {:>4}  {:<10} {:<24} {:>9} {:>9}",
            "CONTAINER", "ROLE", "NUMA", "NIC", "CPUS", "MEMORY", "HUGEPAGES"
        );
        for c in &plan.containers {
            let _ = writeln!(
                s,
                "  {:<10} {:<8} {:>4}  {:<10} {:<24} {:>9} {:>9}",
                c.name,
                c.role.as_str(),
                c.numa,
                c.nic.as_deref().unwrap_or("-"),
                c.cpus.to_list_string(),
                mib(c.memory_mib),
                mib(c.hugepages_mib)
            );
        }
        let _ = writeln!(s);
        let row = |s: &mut String, k: &str, v: String, why: &str| {
            let _ = writeln!(
                s,
                "  {k:<9} {}{why}",
                if v.is_empty() { "-".into() } else { v }
            );
        };
        row(&mut s, "Axon", plan.axon_cpus.to_list_string(), "");
        row(
            &mut s,
            "idle",
            plan.idle_siblings.to_list_string(),
            if plan.idle_siblings.is_empty() {
                ""
            } else {
                "  (SMT siblings of the Axon cores: kept from jobs)"
            },
        );
        row(&mut s, "OS", plan.os_cpus.to_list_string(), "");
        row(&mut s, "jobs", plan.job_cpus.to_list_string(), "");
        let _ = writeln!(
            s,
            "  memory    {} for Axon ({} of it huge pages)",
            mib(plan.memory_mib),
            mib(plan.hugepages_mib)
        );
        for n in &plan.notes {
            let sev = match n.severity {
                NoteSeverity::Info => "note",
                NoteSeverity::Warning => "WARNING",
                NoteSeverity::Infeasible => "CANNOT HOLD",
            };
            let _ = writeln!(s, "  {sev}: {} ({})", n.text, n.rule);
        }
    }
    s
}

pub fn to_json(plans: &[Planned]) -> serde_json::Value {
    json!({
        "nodes": plans.iter().map(|p| match &p.plan {
            Ok(plan) => json!({
                "node": p.node,
                "emulated_profile": p.profile,
                "holds": plan.holds(),
                "plan": plan,
                "slurm_cpu_spec_kernel_ids": plan.reserved_cpus().difference(&plan.os_cpus).to_list_string(),
                "axon_cpus_by_role": Role::ALL.iter().map(|r| (r.as_str(), plan.cpus_of(*r).to_list_string())).collect::<std::collections::BTreeMap<_, _>>(),
            }),
            Err(e) => json!({"node": p.node, "emulated_profile": p.profile, "error": e}),
        }).collect::<Vec<_>>(),
        "exit_code": exit_code(plans),
    })
}

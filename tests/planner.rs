//! The core planner on every fixture host, read the way `axon plan` reads a host, and the
//! verb's output and exit codes.

mod common;

use axon::commands::plan;
use axon::model::plan::{PlanOptions, Role};
use std::time::Duration;

const HOSTS: [&str; 3] = ["amd-epyc-4numa", "intel-2s-smt", "misconfigured"];

#[tokio::test]
async fn every_fixture_host_gets_a_plan_that_keeps_the_hard_rules() {
    for h in HOSTS {
        let p = plan::host(&common::fixture(h), &[], &PlanOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{h}: {e:#}"));
        let plan = p.plan.unwrap_or_else(|e| panic!("{h}: {e}"));
        let t = common::collect_all(&common::root(h), &common::collect_config())
            .with_snapshot(|s, _| s.topology.clone())
            .unwrap();
        let v = plan.violations(&t);
        assert!(v.is_empty(), "{h}: {v:#?}");
        assert!(plan.holds(), "{h}: {:#?}", plan.notes);
        // Every container's NIC is on its own domain.
        for c in &plan.containers {
            assert!(c.nic.is_some(), "{h}: {} has a NIC", c.name);
        }
        assert_eq!(
            plan.nic_domains.len(),
            2,
            "{h}: two dataplane NICs on two domains"
        );
        assert_eq!(plan.planned.frontend, 12);
        assert_eq!(plan.planned.compute, 2 * plan.planned.drive);
    }
}

#[tokio::test]
async fn the_smt_host_keeps_every_axon_sibling_idle_and_from_jobs() {
    let p = plan::host(
        &common::fixture("intel-2s-smt"),
        &[],
        &PlanOptions::default(),
    )
    .await
    .unwrap();
    let plan = p.plan.unwrap();
    let axon = plan.axon_cpus.len();
    assert_eq!(axon, plan.planned.total());
    assert_eq!(
        plan.idle_siblings.len(),
        axon,
        "one idle sibling per Axon core"
    );
    assert!(plan.job_cpus.intersection(&plan.idle_siblings).is_empty());
    assert_eq!(plan.os_cpus.len(), 2, "cpu0 and its sibling");
    assert!(plan.os_cpus.contains(0));
    let drive = plan.cpus_of(Role::Drive);
    assert_eq!(drive.len(), plan.planned.drive);
}

#[test]
fn axon_plan_prints_the_containers_and_exits_by_the_rules() {
    let root = common::fixture("amd-epyc-4numa");
    let (code, out, err) = common::process::run(
        &["plan", "--host-root", root.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("holds"), "{out}");
    for c in [
        "drives0",
        "drives1",
        "compute0",
        "compute1",
        "frontend0",
        "frontend1",
    ] {
        assert!(out.contains(c), "{c}: {out}");
    }
    // Three drives: the plan holds, the hardware departs from the seed: exit 1.
    let (code, out, _) = common::process::run(
        &[
            "plan",
            "--host-root",
            root.to_str().unwrap(),
            "--drives",
            "3",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("3 NVMe drives: the seed supports 2, 4 or 8"),
        "{out}"
    );
    // 200 frontend cores do not fit: the nearest plan, exit 2, with the reason.
    let (code, out, _) = common::process::run(
        &[
            "plan",
            "--host-root",
            root.to_str().unwrap(),
            "--frontend-cores",
            "200",
            "--format",
            "json",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = &v["nodes"][0];
    assert_eq!(n["holds"], false);
    assert_eq!(v["exit_code"], 2);
    let notes = n["plan"]["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|x| x["rule"] == "cores.capacity" && x["severity"] == "infeasible"),
        "{notes:#?}"
    );
    // No host at all: could not run.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = common::process::run(
        &["plan", "--host-root", empty.path().to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code, 3, "{err}");
}

#[test]
fn axon_plan_of_a_cluster_plans_every_node_from_its_agent_and_names_a_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut agents = common::process::agents(dir.path(), 2);
    let inv = common::process::inventory(dir.path(), &agents);
    let args = [
        "plan",
        "--inventory",
        inv.to_str().unwrap(),
        "--format",
        "json",
    ];
    let (code, out, err) = common::process::run(&args, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for n in nodes {
        assert_eq!(n["holds"], true, "{n}");
        assert_eq!(n["emulated_profile"], "amd-epyc-4numa");
        assert_eq!(n["plan"]["containers"].as_array().unwrap().len(), 6);
    }
    // The table shows identical nodes once, as a host list.
    let (code, table, _) = common::process::run(&args[..3], Duration::from_secs(60));
    assert_eq!(code, 0, "{table}");
    assert!(
        table.starts_with("n[1-2] (2 nodes) (emulated: amd-epyc-4numa): holds\n"),
        "{table}"
    );
    agents[1].kill();
    let (code, out, _) = common::process::run(&args, Duration::from_secs(60));
    assert_eq!(code, 3, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nodes"][0]["holds"], true);
    let e = v["nodes"][1]["error"].as_str().unwrap();
    assert!(e.starts_with("no report from 127.0.0.1:"), "{e}");
}

#[test]
fn the_install_script_and_system_files_of_a_cluster_are_valid_and_use_no_core_twice() {
    let dir = tempfile::tempdir().unwrap();
    let agents = common::process::agents(dir.path(), 5);
    let inv = common::process::inventory(dir.path(), &agents);
    let out_dir = dir.path().join("out");
    let (code, out, err) = common::process::run(
        &[
            "plan",
            "--inventory",
            inv.to_str().unwrap(),
            "--format",
            "script",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let script = out_dir.join("install-axon.sh");
    common::shell_ok(&script);
    let text = std::fs::read_to_string(&script).unwrap();
    // Five servers: the nearest protection to 16+4+2 that they hold, said so.
    assert!(
        text.contains("5 servers cannot hold the seed's 16+4"),
        "{text}"
    );
    assert!(text.contains("STRIPE_WIDTH=3\nPARITY=2\n"), "{text}");
    // Per host group, no core id is set up twice.
    let mut per_group: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    for l in text.lines().filter(|l| l.starts_with("setup ")) {
        let hosts = l.split('\'').nth(1).unwrap().to_string();
        let ids = l
            .split("--core-ids ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        per_group
            .entry(hosts)
            .or_default()
            .extend(ids.split(',').map(|x| x.parse::<u32>().unwrap()));
    }
    assert!(!per_group.is_empty(), "{text}");
    for (hosts, ids) in &per_group {
        let set: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len(), "{hosts}: a core twice: {ids:?}");
        assert_eq!(ids.len(), 36, "{hosts}: 8 + 16 + 12 cores");
    }
    for step in [
        "cluster cluster create",
        "cluster cluster hot-spare",
        "add_local_drives '$DRIVE_MATCH' 0:drives0 2:drives1",
        "cluster cluster start-io",
    ] {
        assert!(text.contains(step), "{step}: {text}");
    }

    let files = dir.path().join("files");
    let (code, out, err) = common::process::run(
        &[
            "plan",
            "--inventory",
            inv.to_str().unwrap(),
            "--format",
            "files",
            "--out",
            files.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let ov = std::fs::read_to_string(files.join("poweroff.target.d/override.conf")).unwrap();
    assert!(
        ov.contains("[Unit]\nJobTimeoutSec=30s\nJobTimeoutAction=reboot\n"),
        "{ov}"
    );
    let sysctl = std::fs::read_to_string(files.join("99-axon.conf")).unwrap();
    for l in [
        "kernel.numa_balancing = 0",
        "net.ipv4.conf.ens1f0np0.arp_announce = 2",
        "net.ipv4.conf.all.arp_filter = 1",
        "net.ipv4.conf.ens3f0np0.rp_filter = 2",
    ] {
        assert!(sysctl.contains(l), "{l}: {sysctl}");
    }
    for a in &agents {
        let sbr = files.join(&a.name).join("sbr-ip.sh");
        common::shell_ok(&sbr);
        common::shell_ok(&files.join(&a.name).join("sbr-nmcli.sh"));
        let t = std::fs::read_to_string(&sbr).unwrap();
        assert!(t.contains("ip rule add from 10.10.1.11 table 101"), "{t}");
        assert!(t.contains("dev ens1f0np0 src 10.10.1.11 table 101"), "{t}");
        assert!(t.contains("table 102"), "{t}");
        let np = std::fs::read_to_string(files.join(&a.name).join("60-axon-sbr.yaml")).unwrap();
        assert!(
            np.contains("routing-policy:\n        - from: 10.10.1.11\n          table: 101"),
            "{np}"
        );
    }
}

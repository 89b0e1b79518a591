//! Collectors on the captured host trees: what they read, and what they say when a file is
//! missing, unreadable or malformed.

mod common;

use axon::agent::scheduler::{Schedule, collect_section};
use axon::agent::state::{AgentState, SectionValue};
use axon::collectors::{self, HostRoot, Problems};
use axon::commands::check;
use axon::model::checks::{CheckResult, CheckStatus};
use axon::model::cpuset::CpuSet;
use axon::model::nvme::{CriticalWarning, WriteCache};
use axon::model::pinning::{Conflict, ContainerRole, CpuRole, Owner};
use axon::model::snapshot::{NodeInfo, Section};
use common::*;
use compact_str::CompactString;
use std::collections::BTreeMap;
use std::time::Duration;

fn statuses(results: &[axon::model::CheckResult]) -> BTreeMap<String, CheckStatus> {
    results
        .iter()
        .map(|r| (r.id.to_string(), r.status))
        .collect()
}

fn not_passing(results: &[axon::model::CheckResult]) -> BTreeMap<String, CheckStatus> {
    statuses(results)
        .into_iter()
        .filter(|(_, s)| *s != CheckStatus::Pass)
        .collect()
}

async fn checks_of(root: &HostRoot) -> check::CheckOutcome {
    check::run(root, &collect_config()).await
}

fn by_id(results: Vec<CheckResult>) -> BTreeMap<String, CheckResult> {
    results.into_iter().map(|r| (r.id.to_string(), r)).collect()
}

async fn checks_by_id(root: &HostRoot) -> BTreeMap<String, CheckResult> {
    by_id(checks_of(root).await.results)
}

/// Replaces a file (or directory) by an empty directory: reading it then fails with
/// EISDIR. Tests run as root, which ignores file modes, so this stands in for EACCES.
fn make_unreadable(path: &std::path::Path) {
    if path.is_dir() {
        std::fs::remove_dir_all(path).unwrap();
    } else {
        std::fs::remove_file(path).unwrap();
    }
    std::fs::create_dir(path).unwrap();
}

/// An agent state in which `sections` were collected on `root`, on a schedule with the
/// given base interval.
fn state_with(root: &HostRoot, base: Duration, sections: &[Section]) -> AgentState {
    let state = AgentState::new(
        NodeInfo::default(),
        Schedule::with_base(base).initial_status(),
    );
    for s in sections {
        let (v, _) = collect_section(root, &collect_config(), Some(&state), *s).unwrap();
        state.update(v, None, 0);
    }
    state
}

/// The checks as the agent's scheduler runs them on that state.
fn checks_on(root: &HostRoot, state: &AgentState) -> BTreeMap<String, CheckResult> {
    let (v, _) = collect_section(root, &collect_config(), Some(state), Section::Checks).unwrap();
    let SectionValue::Checks(_, results) = v else {
        panic!("the checks section yields checks")
    };
    by_id(results)
}

fn assert_unknown(r: &BTreeMap<String, CheckResult>, id: &str, says: &str) {
    assert_eq!(
        r[id].status,
        CheckStatus::Unknown,
        "{id}: {}",
        r[id].observed
    );
    assert!(r[id].observed.contains(says), "{id}: {}", r[id].observed);
}

// ------------------------------------------------------------------ topology

/// Asserts that a collector recorded a problem containing `needle` (the file and what was
/// wrong with it), showing all of them if not.
fn assert_problem(p: &Problems, needle: &str) {
    let all: Vec<String> = p.iter().map(|e| e.to_string()).collect();
    assert!(
        all.iter().any(|e| e.contains(needle)),
        "no `{needle}` in {all:?}"
    );
}

#[test]
fn topology_reads_a_single_socket_amd_host_with_four_numa_domains() {
    let mut p = Problems::default();
    let t = collectors::topology::collect(&root("amd-epyc-4numa"), &mut p).unwrap();
    assert!(p.is_empty(), "{:?}", p.summary());
    assert_eq!(t.cpu_vendor, "AuthenticAMD");
    assert_eq!(t.cpu_model, "AMD EPYC 9654 96-Core Processor");
    assert_eq!(t.cpus.len(), 96);
    assert_eq!(t.packages.len(), 1);
    assert_eq!(t.numa_nodes.len(), 4);
    assert_eq!(t.numa_nodes[2].cpus.to_list_string(), "48-71");
    assert_eq!(t.cpu(50).unwrap().numa_node, Some(2));
    assert_eq!(t.smt.active, Some(false));
    assert!(!t.has_smt_siblings());
    assert_eq!(t.numa_nodes[0].memory_total_bytes, Some(192 << 30));
    let hp = t.numa_nodes[1].hugepages_of(2 << 20).unwrap();
    assert_eq!((hp.total, hp.free), (Some(12288), Some(2048)));
    assert!(t.memory.total_bytes.unwrap() > 700 << 30);
}

#[test]
fn topology_reads_smt_siblings_on_a_dual_socket_intel_host() {
    let mut p = Problems::default();
    let t = collectors::topology::collect(&root("intel-2s-smt"), &mut p).unwrap();
    assert!(p.is_empty(), "{:?}", p.summary());
    assert_eq!(t.cpus.len(), 224);
    assert_eq!(t.packages.len(), 2);
    assert_eq!(t.cpu(0).unwrap().siblings.ids(), &[0, 112]);
    assert_eq!(t.cpu(168).unwrap().siblings.ids(), &[56, 168]);
    assert_eq!(t.cpu(168).unwrap().package_id, 1);
    assert_eq!(t.cpu(112).unwrap().numa_node, Some(0));
    assert_eq!(t.smt.active, Some(true));
    assert!(t.has_smt_siblings());
}

#[test]
fn topology_names_a_malformed_sysfs_file_and_keeps_the_rest() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    std::fs::write(
        path.join("sys/devices/system/cpu/cpu5/topology/core_id"),
        "banana\n",
    )
    .unwrap();
    std::fs::write(path.join("sys/devices/system/node/node3/cpulist"), "72-\n").unwrap();
    let mut p = Problems::default();
    let t = collectors::topology::collect(&HostRoot::open(&path).unwrap(), &mut p).unwrap();
    assert_eq!(t.cpus.len(), 96, "one broken file loses nothing else");
    assert_problem(
        &p,
        "cpu5/topology/core_id malformed: `banana` is not a non-negative integer",
    );
    assert_problem(&p, "node3/cpulist malformed");
}

/// The procfs project's shape: NUMA nodes 1 and 2 without `meminfo` (node 2 without
/// `cpulist` too). Their memory is unknown, so /metrics has no series for it (not 0), the
/// console receives None, and the collector's problems are counted and logged once.
#[test]
fn unreadable_numa_meminfo_is_omitted_not_zero() {
    use axon::agent::exporter;
    use axon::agent::scheduler::ProblemLog;
    let root = HostRoot::open(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/numa-no-meminfo/root"),
    )
    .unwrap();
    let state = AgentState::new(
        NodeInfo::default(),
        Schedule::with_base(Duration::from_secs(1)).initial_status(),
    );
    let log = ProblemLog::default();
    let run = || {
        collect_section(&root, &collect_config(), Some(&state), Section::Topology)
            .map_err(|e| e.to_string())
    };
    let first = run();
    let texts: Vec<String> = first
        .as_ref()
        .unwrap()
        .1
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    for f in ["node1/meminfo", "node2/cpulist", "node2/meminfo"] {
        assert!(texts.iter().any(|t| t.contains(f)), "{f} in {texts:?}");
    }
    log.record(&state, Section::Topology, first, 0, false);

    let snap = state.snapshot();
    let t = snap.topology.as_ref().unwrap();
    assert_eq!(t.numa_nodes.len(), 3);
    assert_eq!(t.numa_nodes[0].memory_total_bytes, Some(16 << 30));
    for n in &t.numa_nodes[1..] {
        assert_eq!((n.memory_total_bytes, n.memory_free_bytes), (None, None));
    }
    assert!(!t.numa_nodes[1].cpus_unreadable && t.numa_nodes[2].cpus_unreadable);

    let text = exporter::render(&snap, 1_800_000_000_000, false);
    let series = |prefix: &str| -> Vec<&str> {
        let mut v: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
        v.sort();
        v
    };
    assert_eq!(
        series("axon_numa_memory_total_bytes{"),
        vec!["axon_numa_memory_total_bytes{numa_node=\"0\"} 17179869184.0"]
    );
    assert_eq!(series("axon_numa_memory_free_bytes{").len(), 1);
    assert!(series("axon_numa_memory_free_bytes{")[0].contains("numa_node=\"0\""));
    assert_eq!(
        series("axon_numa_cpus{"),
        vec![
            "axon_numa_cpus{numa_node=\"0\"} 4.0",
            "axon_numa_cpus{numa_node=\"1\"} 4.0"
        ]
    );
    assert!(
        text.contains("axon_collector_problems{collector=\"topology\"} 3.0\n"),
        "{}",
        series("axon_collector_problems").join("\n")
    );
    // The console gets None too, not a 0 it would draw.
    let wire = axon::wire::encode_snapshot(&snap, &Section::ALL, true);
    let back = axon::wire::decode_snapshot(wire).unwrap().snapshot;
    assert_eq!(
        back.topology.unwrap().numa_nodes[1].memory_total_bytes,
        None
    );

    // Logged once per change of the problem set, not once per run.
    let again = run();
    let texts: Vec<String> = again
        .as_ref()
        .unwrap()
        .1
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        log.note(Section::Topology, &texts),
        None,
        "same problems: no new line"
    );
    let line = log
        .note(Section::Topology, &texts[..1])
        .expect("a change is logged");
    assert!(line.starts_with("axon: topology collector: "), "{line}");
    assert_eq!(
        log.note(Section::Topology, &[]).as_deref(),
        Some("axon: topology collector: problems cleared")
    );
}

#[test]
fn topology_fails_clearly_without_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let e = collectors::topology::collect(
        &HostRoot::open(dir.path()).unwrap(),
        &mut Problems::default(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("sys/devices/system/cpu unreadable (not found)"),
        "{msg}"
    );
    assert!(
        msg.contains("--host-root"),
        "the remedy points at the flag: {msg}"
    );
}

// ------------------------------------------------------------------ pinning

fn online(n: u32) -> CpuSet {
    CpuSet::from_ids(0..n)
}

#[test]
fn pinning_attributes_cores_to_axon_containers_jobs_and_nobody() {
    let mut p = Problems::default();
    let pin = collectors::pinning::collect(&root("amd-epyc-4numa"), &online(96), &mut p).unwrap();
    assert!(p.is_empty(), "{:?}", p.summary());
    let role = |c| pin.cpu(c).unwrap().role();
    assert_eq!(
        role(1),
        CpuRole::Axon {
            role: ContainerRole::Drives
        }
    );
    assert_eq!(
        role(51),
        CpuRole::Axon {
            role: ContainerRole::Drives
        }
    );
    assert_eq!(
        role(5),
        CpuRole::Axon {
            role: ContainerRole::Compute
        }
    );
    assert_eq!(
        role(65),
        CpuRole::Axon {
            role: ContainerRole::Frontend
        }
    );
    assert_eq!(role(30), CpuRole::SlurmJob { job_id: 4242 });
    assert_eq!(role(90), CpuRole::Free);
    assert_eq!(role(0), CpuRole::Free, "cpu0 is left to the OS, not pinned");
    assert!(pin.conflicts().is_empty(), "{:?}", pin.conflicts());
    // Every CPU has its ksoftirqd, counted as a kernel thread, not as a pinned process.
    assert!(pin.cpus.iter().all(|c| c.kernel_threads >= 1));
    assert!(
        pin.cpus
            .iter()
            .all(|c| c.pinned.iter().all(|p| p.owner != Owner::Kernel))
    );
    assert!(pin.threads > 96 + 36 + 8);
    assert!(pin.unpinned_threads > 0);
}

#[test]
fn pinning_reports_a_foreign_thread_on_an_axon_core() {
    let pin = collectors::pinning::collect(
        &root("misconfigured"),
        &online(32),
        &mut Problems::default(),
    )
    .unwrap();
    let conflicts = pin.conflicts();
    assert!(
        conflicts.iter().any(|c| matches!(
            c,
            Conflict::ForeignThreadOnAxonCore {
                cpu: 19,
                pid: 41890,
                owner: Owner::SlurmJob { job_id: 4242 },
                ..
            }
        )),
        "{conflicts:?}"
    );
    assert!(
        conflicts
            .iter()
            .any(|c| matches!(c, Conflict::SharedAxonCore { cpu: 19, .. })),
        "the job's cgroup also allows cpu19: {conflicts:?}"
    );
    assert!(
        conflicts.iter().all(|c| c.cpu() == Some(19)),
        "{conflicts:?}"
    );
}

#[test]
fn pinning_skips_a_malformed_thread_file_and_says_which() {
    let (_d, path) = copy_fixture("misconfigured");
    std::fs::write(
        path.join("proc/3500/task/3503/status"),
        "Name:\taxon-compute0\nCpus_allowed_list:\t4-x\n",
    )
    .unwrap();
    std::fs::write(
        path.join("proc/3500/task/3504/stat"),
        "3504 (axon-compute0\n",
    )
    .unwrap();
    let mut p = Problems::default();
    let pin =
        collectors::pinning::collect(&HostRoot::open(&path).unwrap(), &online(32), &mut p).unwrap();
    assert_problem(
        &p,
        "proc/3500/task/3503/status malformed: Cpus_allowed_list",
    );
    assert_problem(&p, "proc/3500/task/3504/stat malformed: no `)`");
    assert_eq!(pin.skipped, 2);
    assert!(
        matches!(pin.cpu(5).unwrap().role(), CpuRole::Axon { .. }),
        "the other threads still count"
    );
}

#[test]
fn pinning_reports_unreadable_thread_files_but_not_exited_threads() {
    let (_d, path) = copy_fixture("misconfigured");
    // A thread that exited mid-walk: its files are gone. That is churn, not a problem.
    std::fs::remove_file(path.join("proc/3500/task/3504/stat")).unwrap();
    // A thread whose status cannot be read (EACCES under hidepid on a real host; a
    // directory in its place here, since root ignores file modes).
    std::fs::remove_file(path.join("proc/3500/task/3503/status")).unwrap();
    std::fs::create_dir(path.join("proc/3500/task/3503/status")).unwrap();
    let mut p = Problems::default();
    let pin =
        collectors::pinning::collect(&HostRoot::open(&path).unwrap(), &online(32), &mut p).unwrap();
    let all: Vec<String> = p.iter().map(|e| e.to_string()).collect();
    assert_problem(&p, "proc/3500/task/3503/status unreadable");
    assert!(
        all.iter().any(|e| e.contains("1 file unreadable")
            && e.contains("run the agent as root")
            && e.contains("hidepid")),
        "{all:?}"
    );
    assert!(
        !all.iter().any(|e| e.contains("3504")),
        "an exited thread is not a problem: {all:?}"
    );
    assert_eq!(pin.skipped, 2);
}

// ------------------------------------------------------------------ network

#[test]
fn network_finds_dataplane_nics_their_numa_nodes_and_sbr() {
    let mut p = Problems::default();
    let n = collectors::net::collect(&root("amd-epyc-4numa"), &Default::default(), &mut p).unwrap();
    assert!(p.is_empty(), "{:?}", p.summary());
    let dp: Vec<&str> = n.dataplane().map(|n| n.name.as_str()).collect();
    assert_eq!(
        dp,
        vec!["ens1f0np0", "ens3f0np0"],
        "eno1 carries the default route: management"
    );
    let ens3 = n.nic("ens3f0np0").unwrap();
    assert_eq!(ens3.numa_node, Some(2));
    assert_eq!(ens3.mtu, Some(9000));
    assert_eq!(ens3.speed_mbps, Some(200_000));
    assert_eq!(ens3.driver.as_deref(), Some("mlx5_core"));
    assert_eq!(
        ens3.driver_version.as_deref(),
        Some("6.8.0-49-generic"),
        "in-tree driver reports the kernel"
    );
    assert_eq!(
        ens3.addresses
            .iter()
            .filter(|a| a.cidr == "10.10.2.11/24")
            .count(),
        1
    );
    assert_eq!(ens3.sbr.len(), 1);
    assert_eq!(ens3.sbr[0].table, 102);
    assert!(ens3.sbr[0].table_routes_via_nic);
    assert_eq!(ens3.ipconf.effective(&n.all).arp_announce, Some(2));
    assert!(n.nic("lo").is_some_and(|l| !l.physical && !l.dataplane));
}

#[test]
fn network_reports_out_of_tree_driver_versions() {
    let n = collectors::net::collect(
        &root("intel-2s-smt"),
        &Default::default(),
        &mut Problems::default(),
    )
    .unwrap();
    assert_eq!(
        n.nic("ens7f0np0").unwrap().driver_version.as_deref(),
        Some("24.04-0.7.0")
    );
}

#[test]
fn network_honours_configured_dataplane_nics_and_names_unknown_ones() {
    let cfg = collectors::net::NetConfig {
        dataplane: vec!["eno1".into(), "eth9".into()],
    };
    let mut p = Problems::default();
    let n = collectors::net::collect(&root("amd-epyc-4numa"), &cfg, &mut p).unwrap();
    assert_eq!(
        n.dataplane().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        vec!["eno1"]
    );
    assert!(
        p.summary()
            .unwrap()
            .contains("--dataplane-nic eth9: no such interface")
    );
}

#[test]
fn missing_or_garbled_routing_capture_is_an_error_naming_the_file() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    std::fs::write(path.join("_fixture/ip-rule.json"), "[{\"src\":\"all\"").unwrap();
    let mut p = Problems::default();
    let n = collectors::net::collect(&HostRoot::open(&path).unwrap(), &Default::default(), &mut p)
        .unwrap();
    let err = n.routing_error.clone().unwrap();
    assert!(err.contains("_fixture/ip-rule.json malformed"), "{err}");
    assert_eq!(n.nics.len(), 4, "NIC facts survive a routing failure");
    std::fs::remove_file(path.join("_fixture/ip-rule.json")).unwrap();
    let n = collectors::net::collect(
        &HostRoot::open(&path).unwrap(),
        &Default::default(),
        &mut Problems::default(),
    )
    .unwrap();
    assert!(
        n.routing_error
            .unwrap()
            .contains("ip-rule.json unreadable (not found)")
    );
}

#[tokio::test]
async fn network_names_an_unreadable_or_malformed_mtu_and_the_check_is_unknown() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    make_unreadable(&path.join("sys/class/net/ens1f0np0/mtu"));
    std::fs::write(path.join("sys/class/net/ens3f0np0/mtu"), "jumbo\n").unwrap();
    let root = HostRoot::open(&path).unwrap();
    let mut p = Problems::default();
    let n = collectors::net::collect(&root, &Default::default(), &mut p).unwrap();
    assert_problem(&p, "ens1f0np0/mtu unreadable");
    assert_problem(&p, "ens3f0np0/mtu malformed: `jumbo`");
    assert_eq!(n.nic("ens1f0np0").unwrap().mtu, None);
    assert_eq!(n.nic("ens3f0np0").unwrap().mtu, None);
    assert_eq!(
        n.nic("ens1f0np0").unwrap().numa_node,
        Some(0),
        "the NIC's other facts stay"
    );
    let r = checks_by_id(&root).await;
    assert_unknown(&r, "net.mtu", "ens1f0np0 (mtu unreadable)");
}

#[tokio::test]
async fn a_possible_dataplane_nic_with_an_unreadable_type_keeps_nic_checks_from_passing() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    make_unreadable(&path.join("sys/class/net/ens3f0np0/type"));
    // lo is not physical, so it could never be a dataplane NIC: no effect on the checks.
    std::fs::write(path.join("sys/class/net/lo/type"), "loopback\n").unwrap();
    let root = HostRoot::open(&path).unwrap();
    let mut p = Problems::default();
    let n = collectors::net::collect(&root, &Default::default(), &mut p).unwrap();
    assert_problem(&p, "ens3f0np0/type unreadable");
    assert_problem(&p, "lo/type malformed: `loopback`");
    assert_eq!(n.unreadable_nics, vec!["ens3f0np0".to_string()]);
    let r = checks_by_id(&root).await;
    for id in [
        "net.mtu",
        "net.sbr",
        "net.arp",
        "net.rp_filter",
        "numa.nic-balance",
    ] {
        assert_unknown(
            &r,
            id,
            "cannot tell whether ens3f0np0 is a dataplane NIC: /sys/class/net/ens3f0np0/type unreadable",
        );
    }
}

#[tokio::test]
async fn sbr_accepts_user_tables_above_255() {
    // `ip rule add from 10.10.1.11 table 1000` is as good as table 101: only 0 and the
    // stock tables 253-255 are not SBR.
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    for f in ["_fixture/ip-rule.json", "_fixture/ip-route.json"] {
        let text = std::fs::read_to_string(path.join(f)).unwrap();
        std::fs::write(
            path.join(f),
            text.replace("\"table\":\"101\"", "\"table\":\"1000\""),
        )
        .unwrap();
    }
    let root = HostRoot::open(&path).unwrap();
    let n = collectors::net::collect(&root, &Default::default(), &mut Problems::default()).unwrap();
    let sbr = &n.nic("ens1f0np0").unwrap().sbr;
    assert_eq!(sbr.len(), 1, "{sbr:?}");
    assert_eq!(sbr[0].table, 1000);
    assert!(sbr[0].table_routes_via_nic);
    let o = checks_of(&root).await;
    let r = o.results.iter().find(|r| r.id == "net.sbr").unwrap();
    assert_eq!(r.status, CheckStatus::Pass, "{}", r.observed);
    assert!(r.observed.contains("table 1000"), "{}", r.observed);
}

// ------------------------------------------------------------------ NVMe

#[test]
fn nvme_reads_controllers_namespaces_and_smart() {
    let mut p = Problems::default();
    let d = collectors::nvme::collect(&root("amd-epyc-4numa"), true, &mut p).unwrap();
    assert!(p.is_empty(), "{:?}", p.summary());
    assert_eq!(d.len(), 8);
    let n5 = &d[5];
    assert_eq!(n5.name, "nvme5");
    assert_eq!(n5.model, "KIOXIA KCM7XRJE7T68");
    let raw =
        std::fs::read_to_string(fixture("amd-epyc-4numa").join("sys/class/nvme/nvme5/serial"))
            .unwrap();
    assert_eq!(raw.len(), 21, "the kernel pads serials to 20 characters");
    assert_eq!(n5.serial, raw.trim(), "padding trimmed");
    assert!(!n5.serial.is_empty() && !n5.serial.ends_with(' '));
    assert_eq!(n5.numa_node, Some(2));
    assert_eq!(n5.capacity_bytes(), 7_681_501_126_656);
    assert_eq!(n5.namespaces[0].write_cache, Some(WriteCache::WriteThrough));
    assert!(n5.slot.is_some());
    let s = n5.smart.as_ref().unwrap();
    assert!(s.critical_warning.is_clear());
    assert!((30..=45).contains(&s.temperature_celsius().unwrap()));
    assert_eq!(s.available_spare_pct, 100);
    assert!(s.power_on_hours() > 1000);
}

#[test]
fn nvme_decodes_the_failing_drive_of_the_misconfigured_host() {
    let d =
        collectors::nvme::collect(&root("misconfigured"), true, &mut Problems::default()).unwrap();
    let s = d[2].smart.as_ref().unwrap();
    assert!(
        s.critical_warning
            .has(CriticalWarning::VOLATILE_MEMORY_BACKUP_FAILED)
    );
    assert_eq!(s.media_errors, 17);
    assert_eq!(s.error_log_entries, 23);
    assert!(d[0].smart.as_ref().unwrap().critical_warning.is_clear());
}

#[test]
fn nvme_with_a_truncated_smart_page_is_reported_not_invented() {
    let (_d, path) = copy_fixture("misconfigured");
    std::fs::write(path.join("_fixture/nvme/nvme1/smart-log.bin"), [0u8; 100]).unwrap();
    std::fs::write(
        path.join("sys/block/nvme3n1/queue/write_cache"),
        "sometimes\n",
    )
    .unwrap();
    let mut p = Problems::default();
    let d = collectors::nvme::collect(&HostRoot::open(&path).unwrap(), true, &mut p).unwrap();
    assert!(d[1].smart.is_none());
    assert!(
        d[1].smart_error
            .as_deref()
            .unwrap()
            .contains("100 bytes, expected 512")
    );
    assert_eq!(d[3].namespaces[0].write_cache, None);
    assert_problem(&p, "nvme3n1/queue/write_cache malformed: `sometimes`");
}

#[test]
fn nvme_names_an_unreadable_model_or_malformed_serial_and_keeps_the_drive() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    make_unreadable(&path.join("sys/class/nvme/nvme5/model"));
    std::fs::write(
        path.join("sys/class/nvme/nvme6/serial"),
        [0xff, 0xfe, b'\n'],
    )
    .unwrap();
    let mut p = Problems::default();
    let d = collectors::nvme::collect(&HostRoot::open(&path).unwrap(), true, &mut p).unwrap();
    assert_problem(&p, "nvme5/model unreadable");
    assert_problem(&p, "nvme6/serial malformed: not valid UTF-8 text");
    assert_eq!(d.len(), 8, "both drives are still listed");
    assert_eq!(d[5].model, "");
    assert_eq!(
        d[5].capacity_bytes(),
        7_681_501_126_656,
        "with their other facts"
    );
    assert_eq!(d[6].serial, "");
    assert!(d[6].smart.is_some());
}

#[test]
fn no_nvme_class_means_zero_drives() {
    let dir = tempfile::tempdir().unwrap();
    let d = collectors::nvme::collect(
        &HostRoot::open(dir.path()).unwrap(),
        true,
        &mut Problems::default(),
    )
    .unwrap();
    assert!(d.is_empty());
}

// ------------------------------------------------------------------ checks

#[tokio::test]
async fn healthy_amd_host_passes_every_check_it_can_decide() {
    let o = checks_of(&root("amd-epyc-4numa")).await;
    assert!(o.problems.is_empty(), "{:?}", o.problems);
    let np = not_passing(&o.results);
    assert_eq!(
        np,
        BTreeMap::from([("ports.open".to_string(), CheckStatus::Unknown)])
    );
    assert_eq!(o.profile.as_deref(), Some("amd-epyc-4numa"));
}

#[tokio::test]
async fn intel_host_fails_only_because_smt_is_on() {
    let o = checks_of(&root("intel-2s-smt")).await;
    let np = not_passing(&o.results);
    assert_eq!(
        np,
        BTreeMap::from([
            ("ports.open".to_string(), CheckStatus::Unknown),
            ("smt.off".to_string(), CheckStatus::Fail)
        ])
    );
}

#[tokio::test]
async fn misconfigured_host_fails_exactly_the_checks_that_were_broken() {
    let o = checks_of(&root("misconfigured")).await;
    let np = not_passing(&o.results);
    let expected: BTreeMap<String, CheckStatus> = [
        ("swap.off", CheckStatus::Fail),
        ("numa.balancing", CheckStatus::Fail),
        ("tmp.noexec", CheckStatus::Fail),
        ("net.mtu", CheckStatus::Fail),
        ("net.arp", CheckStatus::Fail),
        ("nvme.plp", CheckStatus::Fail),
        ("nvme.health", CheckStatus::Warn),
        ("ports.open", CheckStatus::Unknown),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(np, expected);
    // Every non-pass carries a remedy an operator can run.
    for r in o.results.iter().filter(|r| r.status != CheckStatus::Pass) {
        assert!(!r.remedy.is_empty(), "{} has no remedy", r.id);
    }
    let arp = o.results.iter().find(|r| r.id == "net.arp").unwrap();
    assert!(
        arp.remedy.contains(
            "for d in ens1f0np0 ens2f0np0 all default; do for k in arp_filter=1 arp_announce=2 arp_ignore=1; do sysctl -w net.ipv4.conf.$d.$k && echo net.ipv4.conf.$d.$k >> /etc/sysctl.d/99-axon.conf"
        ),
        "{}",
        arp.remedy
    );
    let swap = o.results.iter().find(|r| r.id == "swap.off").unwrap();
    assert!(swap.observed.contains("/swap.img"), "{}", swap.observed);
}

#[tokio::test]
async fn check_reports_unknown_when_a_fact_is_unreadable() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    // A directory where a file should be: reading fails with EISDIR (root ignores modes,
    // so a chmod would not make the file unreadable here).
    std::fs::remove_file(path.join("proc/swaps")).unwrap();
    std::fs::create_dir(path.join("proc/swaps")).unwrap();
    std::fs::remove_file(path.join("proc/sys/kernel/numa_balancing")).unwrap();
    std::fs::create_dir(path.join("proc/sys/kernel/numa_balancing")).unwrap();
    std::fs::remove_file(path.join("_fixture/adjtimex.toml")).unwrap();
    let o = checks_of(&HostRoot::open(&path).unwrap()).await;
    let by_id: BTreeMap<_, _> = o.results.iter().map(|r| (r.id.as_str(), r)).collect();
    for id in ["swap.off", "numa.balancing", "ntp.sync"] {
        assert_eq!(
            by_id[id].status,
            CheckStatus::Unknown,
            "{id}: {}",
            by_id[id].observed
        );
    }
    assert!(
        by_id["swap.off"].observed.contains("proc/swaps unreadable"),
        "{}",
        by_id["swap.off"].observed
    );
    assert!(
        by_id["ntp.sync"]
            .observed
            .contains("adjtimex.toml unreadable (not found)"),
        "{}",
        by_id["ntp.sync"].observed
    );
}

#[tokio::test]
async fn checks_that_need_a_failed_collector_are_unknown_with_its_error() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    std::fs::remove_dir_all(path.join("sys/devices/system/cpu")).unwrap();
    let o = checks_of(&HostRoot::open(&path).unwrap()).await;
    let smt = o.results.iter().find(|r| r.id == "smt.off").unwrap();
    assert_eq!(smt.status, CheckStatus::Unknown);
    assert!(
        smt.observed.contains("topology not collected"),
        "{}",
        smt.observed
    );
    assert!(
        o.problems
            .iter()
            .any(|p| p.contains("sys/devices/system/cpu unreadable")),
        "{:?}",
        o.problems
    );
}

// ------------------------------------------------------------------ checks: unreadable facts

#[tokio::test]
async fn smt_check_is_unknown_when_siblings_unreadable() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    std::fs::remove_file(path.join("sys/devices/system/cpu/smt/active")).unwrap();
    make_unreadable(&path.join("sys/devices/system/cpu/cpu5/topology/thread_siblings_list"));
    let root = HostRoot::open(&path).unwrap();
    let t = collectors::topology::collect(&root, &mut Problems::default()).unwrap();
    assert_eq!(t.unreadable.siblings.to_list_string(), "5");
    let r = checks_by_id(&root).await;
    assert_unknown(&r, "smt.off", "thread_siblings_list unreadable for CPUs 5");
}

#[tokio::test]
async fn cpu_vendor_is_unknown_when_package_ids_unreadable() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    std::fs::write(
        path.join("sys/devices/system/cpu/cpu3/topology/physical_package_id"),
        "banana\n",
    )
    .unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(
        &r,
        "cpu.vendor",
        "physical_package_id unreadable for CPUs 3",
    );
}

#[tokio::test]
async fn nic_balance_plan_is_unknown_when_core_ids_unreadable() {
    // Not installed yet: the check counts physical cores, which needs every core_id.
    let (_d, path) = copy_fixture("intel-2s-smt");
    make_unreadable(&path.join("sys/devices/system/cpu/cpu10/topology/core_id"));
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(&r, "numa.nic-balance", "unreadable for CPUs 10");
}

#[tokio::test]
async fn nvme_capacity_is_unknown_when_a_namespace_size_is_unreadable() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    make_unreadable(&path.join("sys/block/nvme5n1/size"));
    make_unreadable(&path.join("sys/class/nvme/nvme5/nvme5n1/size"));
    let o = checks_of(&HostRoot::open(&path).unwrap()).await;
    assert!(
        o.problems
            .iter()
            .any(|p| p.contains("nvme5n1/size unreadable")),
        "{:?}",
        o.problems
    );
    let r = by_id(o.results);
    assert_unknown(&r, "nvme.capacity", "/sys/block/nvme5n1/size");
}

#[tokio::test]
async fn nvme_capacity_warns_when_a_controller_has_no_namespace() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    std::fs::remove_dir_all(path.join("sys/class/nvme/nvme5/nvme5n1")).unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    let cap = &r["nvme.capacity"];
    assert_eq!(cap.status, CheckStatus::Warn, "{}", cap.observed);
    assert!(
        cap.observed.contains("no namespace on nvme5"),
        "{}",
        cap.observed
    );
    assert!(
        cap.remedy.contains("nvme create-ns /dev/nvme5"),
        "{}",
        cap.remedy
    );
    assert_unknown(&r, "nvme.plp", "nvme5: no namespace");
}

#[tokio::test]
async fn nvme_plp_is_unknown_when_write_cache_unreadable() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    std::fs::remove_file(path.join("sys/block/nvme3n1/queue/write_cache")).unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(
        &r,
        "nvme.plp",
        "nvme3: /sys/block/nvme3n1/queue/write_cache unreadable",
    );
}

#[tokio::test]
async fn numa_balancing_is_unknown_when_its_sysctl_file_is_unreadable() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    make_unreadable(&path.join("etc/sysctl.d/99-axon.conf"));
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(&r, "numa.balancing", "99-axon.conf unreadable");
}

#[tokio::test]
async fn rpcbind_is_unknown_when_unit_directories_are_unreadable() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    // A file where /etc/systemd/system should be: listing it fails (ENOTDIR), as it
    // would with EACCES; the enablement links inside are then unknown, not absent.
    std::fs::remove_dir_all(path.join("etc/systemd/system")).unwrap();
    std::fs::write(path.join("etc/systemd/system"), "").unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(&r, "svc.rpcbind", "etc/systemd/system unreadable");
}

/// The running kernel's release in a host tree.
fn release_of(root: &std::path::Path) -> String {
    std::fs::read_to_string(root.join("proc/sys/kernel/osrelease"))
        .unwrap()
        .trim()
        .to_string()
}

/// Replaces a directory by an empty file: looking anything up inside it then fails with
/// ENOTDIR, not "not found" (root ignores modes, so this stands in for EACCES).
fn make_unsearchable(path: &std::path::Path) {
    std::fs::remove_dir_all(path).unwrap();
    std::fs::write(path, "").unwrap();
}

#[tokio::test]
async fn kernel_headers_unreadable_is_unknown_not_fail() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    let rel = release_of(&path);
    make_unsearchable(&path.join("lib/modules").join(&rel));
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(
        &r,
        "kernel.headers",
        &format!("{rel}/build unreadable (not a directory)"),
    );
}

#[tokio::test]
async fn kernel_headers_link_loop_is_unknown_not_fail() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    let build = path
        .join("lib/modules")
        .join(release_of(&path))
        .join("build");
    std::fs::remove_file(&build).unwrap();
    std::os::unix::fs::symlink("build", &build).unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(
        &r,
        "kernel.headers",
        "build unreadable (too many levels of symbolic links)",
    );
}

#[tokio::test]
async fn cgroup_v2_unreadable_is_unknown_not_fail() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    make_unsearchable(&path.join("sys/fs/cgroup"));
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(
        &r,
        "cgroup.v2",
        "cgroup.controllers unreadable (not a directory)",
    );
}

#[tokio::test]
async fn hugetlb_unreadable_is_unknown_not_fail() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    make_unsearchable(&path.join("sys/kernel/mm"));
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(&r, "hugepages", "mm/hugepages unreadable (not a directory)");
}

#[tokio::test]
async fn absent_kernel_headers_cgroup_v2_and_hugetlb_still_fail() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    let rel = release_of(&path);
    std::fs::remove_file(path.join("lib/modules").join(&rel).join("build")).unwrap();
    std::fs::remove_file(path.join("sys/fs/cgroup/cgroup.controllers")).unwrap();
    std::fs::remove_dir_all(path.join("sys/kernel/mm/hugepages")).unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    for (id, says) in [
        (
            "kernel.headers",
            format!("no /lib/modules/{rel}/build: headers for {rel} are not installed"),
        ),
        // (Its observed text comes from the mount table, which still lists cgroup2.)
        ("cgroup.v2", String::new()),
        (
            "hugepages",
            "kernel without HugeTLB support (no /sys/kernel/mm/hugepages)".to_string(),
        ),
    ] {
        assert_eq!(r[id].status, CheckStatus::Fail, "{id}: {}", r[id].observed);
        assert!(r[id].observed.contains(&says), "{id}: {}", r[id].observed);
    }
}

// ------------------------------------------------------------------ checks: failed and stale collectors

#[test]
fn hugepages_and_nic_balance_are_unknown_when_the_pinning_collector_failed() {
    let root = root("amd-epyc-4numa");
    let state = state_with(
        &root,
        Duration::from_secs(1),
        &[Section::Topology, Section::Network, Section::Nvme],
    );
    state.fail(
        Section::Pinning,
        "/proc unreadable (permission denied) — run the agent as root".into(),
        0,
    );
    let r = checks_on(&root, &state);
    for id in ["hugepages", "numa.nic-balance"] {
        assert_unknown(&r, id, "pinning not collected: /proc unreadable");
    }
}

#[test]
fn hugepages_and_nic_balance_are_unknown_when_the_nvme_collector_failed() {
    // No Axon running on this host: the plan depends on the drive count.
    let root = root("intel-2s-smt");
    let state = state_with(
        &root,
        Duration::from_secs(1),
        &[Section::Topology, Section::Network, Section::Pinning],
    );
    state.fail(Section::Nvme, "exceeded its 5000 ms deadline".into(), 0);
    let r = checks_on(&root, &state);
    for id in ["hugepages", "numa.nic-balance", "nvme.count"] {
        assert_unknown(&r, id, "nvme not collected: exceeded its 5000 ms deadline");
    }
}

#[test]
fn checks_do_not_judge_the_old_data_of_a_collector_that_now_fails() {
    let root = root("amd-epyc-4numa");
    let all = [
        Section::Topology,
        Section::Network,
        Section::Nvme,
        Section::Pinning,
    ];
    let state = state_with(&root, Duration::from_secs(1), &all);
    assert_eq!(
        checks_on(&root, &state)["smt.off"].status,
        CheckStatus::Pass
    );
    state.fail(Section::Topology, "exceeded its 2000 ms deadline".into(), 0);
    let r = checks_on(&root, &state);
    assert_unknown(
        &r,
        "smt.off",
        "topology collector failing (exceeded its 2000 ms deadline)",
    );
    assert_eq!(
        r["net.mtu"].status,
        CheckStatus::Pass,
        "sections whose collector works are still judged"
    );
}

#[test]
fn checks_treat_stale_sections_as_unknown() {
    // 1 ms intervals (2 ms deadlines): the data is stale 300 ms after it was read, the
    // shortest staleness there is.
    let root = root("amd-epyc-4numa");
    let state = state_with(
        &root,
        Duration::from_millis(1),
        &[
            Section::Topology,
            Section::Network,
            Section::Nvme,
            Section::Pinning,
        ],
    );
    std::thread::sleep(Duration::from_millis(400));
    let r = checks_on(&root, &state);
    assert_unknown(&r, "smt.off", "topology data is stale");
    assert_unknown(&r, "net.mtu", "network data is stale");
    assert_unknown(&r, "nvme.count", "nvme data is stale");
}

#[test]
fn collecting_the_probes_section_synchronously_is_an_error_not_a_panic() {
    let e = collect_section(
        &root("amd-epyc-4numa"),
        &collect_config(),
        None,
        Section::Probes,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("probes are network round trips"),
        "{e}"
    );
}

// ------------------------------------------------------------------ checks: huge pages per NUMA domain

/// Rewrites NUMA node `node`'s MemFree in a copied fixture tree.
fn set_node_memfree(root: &std::path::Path, node: u32, kb: u64) {
    let meminfo = root.join(format!("sys/devices/system/node/node{node}/meminfo"));
    let text: String = std::fs::read_to_string(&meminfo)
        .unwrap()
        .lines()
        .map(|l| {
            if l.contains("MemFree:") {
                format!("Node {node} MemFree:         {kb} kB")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&meminfo, text + "\n").unwrap();
}

#[tokio::test]
async fn hugepages_are_judged_on_the_numa_domains_of_the_axon_cores() {
    // Plenty of memory in total, but NUMA 2, where half the Axon cores run, is nearly full.
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    set_node_memfree(&path, 2, 1_048_576);
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    let h = &r["hugepages"];
    assert_eq!(h.status, CheckStatus::Fail, "{}", h.observed);
    assert!(
        h.observed.contains("NUMA 2: need 27 GiB for 18 cores"),
        "{}",
        h.observed
    );
    assert!(h.observed.contains("NUMA 0:"), "{}", h.observed);
    assert!(
        h.remedy
            .contains("/sys/devices/system/node/node2/hugepages/hugepages-2048kB/nr_hugepages"),
        "{}",
        h.remedy
    );
    assert!(!h.remedy.contains("node0"), "{}", h.remedy);
}

#[tokio::test]
async fn hugepages_plan_needs_pages_on_each_dataplane_nic_domain() {
    // Not installed: 24 planned cores spread over the NICs' domains 0 and 1.
    let (_d, path) = copy_fixture("intel-2s-smt");
    set_node_memfree(&path, 1, 1_048_576);
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    let h = &r["hugepages"];
    assert_eq!(h.status, CheckStatus::Fail, "{}", h.observed);
    assert!(
        h.observed.contains("NUMA 1: need 18 GiB for 12 cores"),
        "{}",
        h.observed
    );
    assert!(h.remedy.contains("node1/hugepages"), "{}", h.remedy);
}

#[tokio::test]
async fn hugepages_is_unknown_when_a_domains_meminfo_is_unreadable() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    make_unreadable(&path.join("sys/devices/system/node/node2/meminfo"));
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(&r, "hugepages", "node2/meminfo unreadable");
}

// ------------------------------------------------------------------ host root

#[test]
fn a_missing_host_root_is_refused_at_open() {
    let e = HostRoot::open("/no/such/root").unwrap_err().to_string();
    assert!(e.contains("/no/such/root unreadable (not found)"), "{e}");
}

#[test]
fn a_malformed_profile_file_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("_fixture")).unwrap();
    std::fs::write(dir.path().join("_fixture/profile.toml"), "name = ").unwrap();
    let e = HostRoot::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("profile.toml malformed"), "{e}");
}

// ------------------------------------------------------------------ live host

/// The netlink decoder and the `ip -j` reader must agree on this machine's routing.
#[test]
fn netlink_agrees_with_iproute2_on_this_host() {
    use axon::collectors::{iproute_json, netlink};
    let ip = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .expect("iproute2 installed");
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let from_ip = iproute_json::routing_from_ip_json(
        &ip(&["-j", "addr", "show"]),
        &ip(&["-j", "-4", "rule", "show"]),
        &ip(&["-j", "-4", "route", "show", "table", "all"]),
    )
    .unwrap();
    let from_nl = netlink::dump_routing().unwrap();
    let addrs = |f: &axon::collectors::sys::RoutingFacts| {
        let mut v: Vec<(String, CompactString)> = f
            .addresses
            .iter()
            .map(|(n, a)| (n.clone(), a.cidr.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(addrs(&from_nl), addrs(&from_ip));
    let rules = |f: &axon::collectors::sys::RoutingFacts| {
        let mut v: Vec<(u32, Option<CompactString>, u32)> = f
            .rules
            .iter()
            .map(|r| (r.priority, r.from.clone(), r.table))
            .collect();
        v.sort();
        v
    };
    assert_eq!(rules(&from_nl), rules(&from_ip));
    let routes = |f: &axon::collectors::sys::RoutingFacts| {
        let mut v: Vec<(
            u32,
            CompactString,
            Option<CompactString>,
            Option<CompactString>,
        )> = f
            .routes
            .iter()
            .map(|r| (r.table, r.dst.clone(), r.dev.clone(), r.gateway.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(routes(&from_nl), routes(&from_ip));
    assert!(!from_nl.addresses.is_empty(), "lo has 127.0.0.1 at least");
}

// ------------------------------------------------------------------ odd hosts judged right

/// Gives drive `ctrl` of a copied fixture `bytes` of capacity (sysfs counts 512-byte
/// sectors), in both places the kernel shows it.
fn set_drive_bytes(root: &std::path::Path, ctrl: &str, bytes: u64) {
    let sectors = format!("{}\n", bytes / 512);
    std::fs::write(root.join(format!("sys/block/{ctrl}n1/size")), &sectors).unwrap();
    std::fs::write(
        root.join(format!("sys/class/nvme/{ctrl}/{ctrl}n1/size")),
        &sectors,
    )
    .unwrap();
}

/// Drive sizes as sold (IDEMA LBA1-03): the byte counts real drives report.
const TB_3_84: u64 = 3_840_755_982_336;
const TB_30_72: u64 = 30_725_971_992_576;
const TB_32: u64 = 32_006_220_374_016;

#[tokio::test]
async fn numa_balancing_not_persisted_fails() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    let conf = path.join("etc/sysctl.d/99-axon.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replace("kernel.numa_balancing = 0\n", "")).unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    let nb = &r["numa.balancing"];
    assert_eq!(nb.status, CheckStatus::Fail, "{}", nb.observed);
    assert!(nb.observed.contains("not persisted"), "{}", nb.observed);
    assert_eq!(
        nb.remedy,
        "echo 'kernel.numa_balancing = 0' >> /etc/sysctl.d/99-axon.conf"
    );
    // Persisted as 1: reverts at boot, fails too; the remedy still appends.
    std::fs::write(
        &conf,
        text.replace("kernel.numa_balancing = 0", "kernel.numa_balancing = 1"),
    )
    .unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    let nb = &r["numa.balancing"];
    assert_eq!(nb.status, CheckStatus::Fail, "{}", nb.observed);
    assert!(
        nb.remedy.contains(">> /etc/sysctl.d/99-axon.conf"),
        "{}",
        nb.remedy
    );
}

#[tokio::test]
async fn every_remedy_that_writes_99_axon_conf_appends() {
    let o = checks_of(&root("misconfigured")).await;
    let mut writers = 0;
    for r in &o.results {
        if r.remedy.contains("99-axon.conf") {
            writers += 1;
            assert!(
                !r.remedy
                    .replace(">>", "")
                    .contains("> /etc/sysctl.d/99-axon.conf"),
                "{} overwrites: {}",
                r.id,
                r.remedy
            );
            assert!(
                r.remedy.contains(">> /etc/sysctl.d/99-axon.conf"),
                "{}",
                r.remedy
            );
        }
    }
    assert!(writers >= 2, "numa.balancing and net.arp write it");
}

#[tokio::test]
async fn drive_of_30_72_tb_passes_capacity_as_30tb_class() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    set_drive_bytes(&path, "nvme0", TB_3_84);
    set_drive_bytes(&path, "nvme7", TB_30_72);
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    let cap = &r["nvme.capacity"];
    assert_eq!(cap.status, CheckStatus::Pass, "{}", cap.observed);
    assert!(
        cap.observed.contains("judged by marketed class")
            && cap
                .observed
                .contains("nvme7 is the 30.72 TB class, sold as 30 TB"),
        "the observed text says which rule it applied: {}",
        cap.observed
    );
    // A drive sold as 32 TB is over the seed's 30 TB.
    set_drive_bytes(&path, "nvme7", TB_32);
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    let cap = &r["nvme.capacity"];
    assert_eq!(cap.status, CheckStatus::Fail, "{}", cap.observed);
    assert!(
        cap.observed.contains("nvme7 32.01 TB (32 TB class)"),
        "{}",
        cap.observed
    );
}

#[tokio::test]
async fn arp_ignore_is_effective_max_of_all_and_dev() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    // all says 1, the NIC's own file 0: the kernel uses max(all, dev) = 1.
    std::fs::write(
        path.join("proc/sys/net/ipv4/conf/ens1f0np0/arp_ignore"),
        "0\n",
    )
    .unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    let arp = &r["net.arp"];
    assert_eq!(arp.status, CheckStatus::Warn, "{}", arp.observed);
    assert!(
        arp.observed
            .contains("effective arp_filter=1 arp_announce=2 arp_ignore=1")
            && arp.observed.contains("ens1f0np0 own arp_ignore=0"),
        "{}",
        arp.observed
    );
    assert!(
        arp.remedy.contains(">> /etc/sysctl.d/99-axon.conf"),
        "{}",
        arp.remedy
    );
    // Set on the NIC itself as well: a pass, saying it judged the effective values.
    let r = checks_by_id(&root("amd-epyc-4numa")).await;
    assert_eq!(
        r["net.arp"].status,
        CheckStatus::Pass,
        "{}",
        r["net.arp"].observed
    );
    assert!(
        r["net.arp"].observed.contains("effective"),
        "{}",
        r["net.arp"].observed
    );
}

#[tokio::test]
async fn syscalls_of_this_machine_are_unknown_under_another_host_root() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    // The same tree without recorded syscall answers: adjtimex and netlink would answer
    // for this machine, not for the tree.
    std::fs::remove_dir_all(path.join("_fixture")).unwrap();
    let r = checks_by_id(&HostRoot::open(&path).unwrap()).await;
    assert_unknown(&r, "ntp.sync", "is not this machine");
    assert!(
        r["ntp.sync"].observed.contains("_fixture"),
        "{}",
        r["ntp.sync"].observed
    );
    assert_unknown(&r, "net.sbr", "is not this machine");
}

// ------------------------------------------------------------------ bounded reads

#[test]
fn sparse_3gb_thread_status_is_refused_at_the_size_cap() {
    let (_d, path) = copy_fixture("misconfigured");
    let status = path.join("proc/3500/task/3503/status");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&status)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    // A one-value sysfs file longer than any value.
    std::fs::write(
        path.join("sys/devices/system/cpu/cpu0/topology/core_id"),
        "0".repeat(100_000),
    )
    .unwrap();
    let root = HostRoot::open(&path).unwrap();
    let mut p = Problems::default();
    let pin = collectors::pinning::collect(&root, &online(32), &mut p).unwrap();
    assert_problem(
        &p,
        "proc/3500/task/3503/status is larger than 4194304 bytes",
    );
    assert_eq!(pin.skipped, 1);
    let mut p = Problems::default();
    let _ = collectors::topology::collect(&root, &mut p);
    assert_problem(&p, "cpu0/topology/core_id is larger than 65536 bytes");
    let peak_kb = status_kb(std::process::id(), "VmHWM:");
    assert!(
        peak_kb < 1024 * 1024,
        "the test process peaked at {peak_kb} kB: the file was read whole"
    );
}

#[tokio::test]
async fn fifo_in_place_of_a_host_file_is_refused_without_blocking() {
    let (_d, path) = copy_fixture("amd-epyc-4numa");
    for f in ["proc/swaps", "sys/devices/system/cpu/online"] {
        let p = path.join(f);
        std::fs::remove_file(&p).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }
    let root = HostRoot::open(&path).unwrap();
    let started = std::time::Instant::now();
    let e = root.read("/proc/swaps").unwrap_err().to_string();
    assert!(
        e.contains("proc/swaps is a FIFO, not a regular file"),
        "{e}"
    );
    // The checks of a whole host: every collector answers, none waits for its deadline.
    let o = checks_of(&root).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    let swap = o.results.iter().find(|r| r.id == "swap.off").unwrap();
    assert_eq!(swap.status, CheckStatus::Unknown);
    assert!(swap.observed.contains("is a FIFO"), "{}", swap.observed);
    assert!(
        o.problems.iter().all(|p| !p.contains("timed out")),
        "{:?}",
        o.problems
    );
}

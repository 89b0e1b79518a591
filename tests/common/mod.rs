//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod agents;
pub mod cluster;
pub mod dataplane;
pub mod process;
pub mod rng;

use axon::agent::scheduler::CollectConfig;
use axon::collectors::HostRoot;
use axon::collectors::checks::PlanParams;
use axon::collectors::net::NetConfig;
use axon::collectors::probes::ProbeOptions;
use axon::model::ports;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hosts")
        .join(name)
}

pub fn root(name: &str) -> HostRoot {
    HostRoot::open(fixture(name)).expect("fixture opens")
}

/// Copies a fixture tree (symlinks as symlinks) so a test can break files in it.
pub fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(name);
    copy_tree(&fixture(name), &dest);
    (dir, dest)
}

pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let (s, d) = (e.path(), dest.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s).unwrap(), &d).unwrap();
        } else if ft.is_dir() {
            copy_tree(&s, &d);
        } else {
            std::fs::copy(&s, &d).unwrap();
        }
    }
}

pub fn collect_config() -> CollectConfig {
    CollectConfig {
        net: NetConfig::default(),
        plan: PlanParams::default(),
        peers: Vec::new(),
        probe_ports: ports::continuous_ports(),
        probe: ProbeOptions::default(),
        own_addresses: Vec::new(),
        smart: true,
        log_problems: false,
        on_demand: None,
        slurm: None,
        peers_per_round: axon::collectors::probes::DEFAULT_PEERS_PER_ROUND,
    }
}

/// A value from /proc/<pid>/status in KiB (VmRSS, VmHWM); 0 when unreadable.
pub fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs every file collector once, in dependency order, into a fresh agent state.
pub fn collect_all(root: &HostRoot, cfg: &CollectConfig) -> axon::agent::state::AgentState {
    use axon::model::snapshot::Section;
    let schedule = axon::agent::scheduler::Schedule::with_base(std::time::Duration::from_secs(1));
    let state = axon::agent::state::AgentState::new(
        axon::model::snapshot::NodeInfo::default(),
        schedule.initial_status(),
    );
    for s in [
        Section::Topology,
        Section::Network,
        Section::Nvme,
        Section::Pinning,
        Section::Checks,
    ] {
        let (v, _) =
            axon::agent::scheduler::collect_section(root, cfg, Some(&state), s).expect("collects");
        state.update(v, None, 0);
    }
    state
}

/// "model name, N CPUs" of this machine, for benchmark reports.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_string();
    let cpus = cpuinfo.matches("processor\t:").count();
    format!("{model}, {cpus} CPUs")
}

/// `bash -n` and shellcheck on a script; shellcheck is required in CI
/// (AXON_REQUIRE_SHELLCHECK=1), else a missing one is said and skipped.
pub fn shell_ok(path: &Path) {
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match std::process::Command::new("shellcheck").arg(path).output() {
        Ok(out) => assert!(
            out.status.success(),
            "shellcheck {}:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(e) => {
            assert!(
                std::env::var_os("AXON_REQUIRE_SHELLCHECK").is_none(),
                "shellcheck is required: {e}"
            );
            eprintln!("shellcheck not installed (apt install shellcheck): only bash -n ran");
        }
    }
}

/// fio over `n` files of `size` bytes in `dir`, one job per file (1 MiB blocks, O_DIRECT,
/// psync, fsync at the end): the baseline the storage benches compare with. MiB/s, the
/// final fsync's time included.
pub fn fio(dir: &Path, rw: &str, n: usize, size: u64) -> f64 {
    let out = std::process::Command::new("fio")
        .args([
            "--name=axon-baseline",
            &format!("--directory={}", dir.display()),
            &format!("--rw={rw}"),
            "--bs=1M",
            "--direct=1",
            "--ioengine=psync",
            &format!("--numjobs={n}"),
            &format!("--size={size}"),
            "--end_fsync=1",
            "--group_reporting",
            "--output-format=json",
        ])
        .output()
        .expect("run fio (Debian package fio)");
    assert!(
        out.status.success(),
        "fio failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fio's JSON");
    let job = &v["jobs"][0];
    let side = if rw == "write" { "write" } else { "read" };
    let bytes = job[side]["io_bytes"].as_f64().unwrap();
    let ms = job["job_runtime"].as_f64().unwrap().max(1.0) / n as f64;
    let sync_ms = job["sync"]["total_ns"].as_f64().unwrap_or(0.0) / 1e6 / n as f64;
    bytes / ((ms + sync_ms) / 1e3) / (1 << 20) as f64
}

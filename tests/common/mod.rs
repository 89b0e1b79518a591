//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cluster;

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
    }
}

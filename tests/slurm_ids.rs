//! Slurm's abstract CPU ids, as axon computes them, against hwloc's own reading of each
//! fixture host (slurmd numbers CPUs from hwloc: cores in hwloc's order, the threads of a
//! core consecutively). hwloc reads a copy of a host's sysfs and procfs through
//! HWLOC_FSROOT. CI installs hwloc (`AXON_REQUIRE_HWLOC=1`); elsewhere a missing
//! `lstopo-no-graphics` skips the comparison with a message.

mod common;

use axon::model::plan::slurm::CpuMap;
use std::process::Command;

/// hwloc's PUs in its logical order, grouped by core: the map slurmd builds
/// (abstract id = core index × threads per core + thread index).
fn hwloc_map(fixture: &std::path::Path) -> Option<Vec<(u32, u32)>> {
    let out = match Command::new("lstopo-no-graphics")
        .args(["--of", "xml", "-"])
        .env("HWLOC_FSROOT", fixture)
        .env("HWLOC_COMPONENTS", "linux,-x86")
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(
                std::env::var_os("AXON_REQUIRE_HWLOC").is_none(),
                "lstopo-no-graphics (Debian package hwloc) is required: {e}"
            );
            eprintln!("skipped: lstopo-no-graphics not installed (apt install hwloc)");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8(out.stdout).unwrap();
    let mut cores: Vec<Vec<u32>> = Vec::new();
    for line in xml.lines() {
        let line = line.trim_start();
        if line.starts_with("<object type=\"Core\"") {
            cores.push(Vec::new());
        } else if let Some(rest) = line.strip_prefix("<object type=\"PU\" os_index=\"") {
            let id: u32 = rest.split('"').next().unwrap().parse().unwrap();
            cores.last_mut().expect("a PU inside a core").push(id);
        }
    }
    let threads = cores[0].len() as u32;
    Some(
        cores
            .iter()
            .enumerate()
            .flat_map(|(ci, pus)| {
                pus.iter()
                    .enumerate()
                    .map(move |(pi, &k)| (ci as u32 * threads + pi as u32, k))
            })
            .collect(),
    )
}

#[test]
fn abstract_ids_match_hwloc_on_every_fixture_host() {
    for h in ["amd-epyc-4numa", "intel-2s-smt", "misconfigured"] {
        let Some(want) = hwloc_map(&common::fixture(h)) else {
            return;
        };
        let t = common::collect_all(&common::root(h), &common::collect_config())
            .with_snapshot(|s, _| s.topology.clone())
            .unwrap();
        let m = CpuMap::of(&t).unwrap();
        let got: Vec<(u32, u32)> = m.pairs().collect();
        assert_eq!(got.len(), want.len(), "{h}: CPU count");
        assert_eq!(got, want, "{h}: abstract → kernel ids differ from hwloc's");
    }
}

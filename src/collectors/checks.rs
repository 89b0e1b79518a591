//! Preflight checks, the collecting half: reads under a `HostRoot` the facts the checks
//! need beyond the other collectors' sections (swap, sysctl files, mounts, cgroup, kernel
//! headers, HugeTLB, the clock, systemd units, file systems) and hands them, with those
//! sections, to the pure judges in `model::judges`. A fact that cannot be read travels as
//! its error, so its check is unknown, never pass.

use super::{CollectError, HostRoot, Problems};
use crate::model::checks::CheckResult;
use crate::model::judges;
use crate::model::judges::os::{
    BuildLink, FsSupport, KernelHeaders, Mount, NumaBalancing, OsFacts, Persisted, Rpcbind,
    SwapArea,
};
use crate::model::snapshot::HostFacts;
use std::collections::BTreeMap;

// Named here too: the agent and the CLI configure and feed the checks through this path.
pub use crate::model::judges::CheckInputs;
pub use crate::model::plan::PlanParams;

/// Runs every single-host check and gathers the host facts the console compares across
/// nodes.
pub fn collect(
    root: &HostRoot,
    inp: &CheckInputs,
    problems: &mut Problems,
) -> (HostFacts, Vec<CheckResult>) {
    let rel = root.value("/proc/sys/kernel/osrelease");
    let mut facts = HostFacts {
        kernel_release: rel.as_ref().ok().cloned(),
        os_name: root
            .read_opt("/etc/os-release")
            .ok()
            .flatten()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            }),
        ..Default::default()
    };
    match root.read("/proc/cmdline") {
        Ok(c) => {
            facts.iommu_cmdline = c
                .split_whitespace()
                .filter(|p| p.contains("iommu"))
                .map(str::to_string)
                .collect()
        }
        Err(e) => problems.push(e),
    }
    facts.iommu_units = root
        .list_opt("/sys/class/iommu")
        .ok()
        .map(|v| v.len() as u32);
    let clock = root.sys().clock();
    if let Ok(c) = &clock {
        facts.clock_synced = Some(c.synchronised());
        facts.clock_max_error_us = Some(c.maxerror_us);
    }
    let mounts = root
        .read("/proc/mounts")
        .map_err(|e| e.to_string())
        .map(|t| parse_mounts(&t));

    let os = OsFacts {
        swaps: swaps(root),
        numa_balancing: numa_balancing(root),
        cgroup_controllers: root
            .exists("/sys/fs/cgroup/cgroup.controllers")
            .map_err(|e| e.to_string()),
        hugetlb: root
            .exists("/sys/kernel/mm/hugepages")
            .map_err(|e| e.to_string()),
        clock: clock.map_err(|e| e.to_string()),
        rpcbind: rpcbind(root),
        xfs: fs_support(root, "xfs", rel.as_ref().ok()),
        squashfs: fs_support(root, "squashfs", rel.as_ref().ok()),
        kernel_headers: kernel_headers(root, rel),
        mounts,
    };
    (facts, judges::host(&os, inp))
}

/// The active swap areas in /proc/swaps.
fn swaps(root: &HostRoot) -> Result<Vec<SwapArea>, String> {
    let text = root.read("/proc/swaps").map_err(|e| e.to_string())?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.starts_with("Filename") => {}
        _ => {
            return Err(format!(
                "{} malformed: no `Filename` header",
                root.display_path("/proc/swaps").display()
            ));
        }
    }
    let mut active = Vec::new();
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 4 {
            return Err(format!(
                "{} malformed: `{l}`",
                root.display_path("/proc/swaps").display()
            ));
        }
        let kib = |s: &str| s.parse::<u64>().unwrap_or(0).saturating_mul(1024);
        active.push(SwapArea {
            name: f[0].to_string(),
            size_bytes: kib(f[2]),
            used_bytes: kib(f[3]),
        });
    }
    Ok(active)
}

/// Reads `key`'s assignments from the sysctl.d directories (by file name), then
/// /etc/sysctl.conf. A file that cannot be read is listed, never taken as "not set".
fn persisted_sysctl(root: &HostRoot, key: &str) -> Persisted {
    let slash_key = key.replace('.', "/");
    let dirs = [
        "/etc/sysctl.d",
        "/run/sysctl.d",
        "/usr/local/lib/sysctl.d",
        "/usr/lib/sysctl.d",
        "/lib/sysctl.d",
    ];
    let mut unreadable = Vec::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for d in dirs {
        match root.list_opt(d) {
            Ok(files) => {
                for f in files {
                    if f.ends_with(".conf") && !by_name.contains_key(&f) {
                        by_name.insert(f.clone(), format!("{d}/{f}"));
                    }
                }
            }
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    let mut files: Vec<String> = by_name.into_values().collect();
    files.push("/etc/sysctl.conf".into());
    let mut assignments = Vec::new();
    for f in files {
        let text = match root.read_opt(&f) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                unreadable.push(e.to_string());
                continue;
            }
        };
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let k = k.trim().trim_start_matches('-');
            if k == key || k == slash_key {
                assignments.push((f.clone(), v.trim().to_string()));
            }
        }
    }
    Persisted {
        assignments,
        unreadable,
    }
}

fn numa_balancing(root: &HostRoot) -> NumaBalancing {
    const PATH: &str = "/proc/sys/kernel/numa_balancing";
    let runtime = match root.read_opt(PATH) {
        Ok(Some(v)) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            format!(
                "{} malformed: `{}`",
                root.display_path(PATH).display(),
                v.trim()
            )
        }),
        // No file: not built into this kernel, if /proc/sys/kernel is there to say so.
        Ok(None) => match root.exists("/proc/sys/kernel") {
            Ok(true) => Ok(None),
            Ok(false) => Err(format!(
                "{} unreadable (not found)",
                root.display_path("/proc/sys/kernel").display()
            )),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    NumaBalancing {
        runtime,
        persisted: persisted_sysctl(root, "kernel.numa_balancing"),
    }
}

pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| Mount {
                source: f[0].to_string(),
                target: f[1].replace("\\040", " "),
                fstype: f[2].to_string(),
                options: f[3].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// What `/lib/modules/<release>/build` is; absent only when the file system says so.
fn kernel_headers(
    root: &HostRoot,
    rel: Result<String, CollectError>,
) -> Result<KernelHeaders, String> {
    let release = rel.map_err(|e| e.to_string())?;
    let build = format!("/lib/modules/{release}/build");
    let link = || -> Result<BuildLink, CollectError> {
        if let Some(target) = root.resolve(&build)? {
            if root.path(&target).is_dir() {
                return Ok(BuildLink::Headers { target });
            }
        }
        Ok(if root.exists(&build)? {
            BuildLink::Dangling
        } else if root.exists(&format!("/lib/modules/{release}"))? {
            BuildLink::Missing
        } else {
            BuildLink::NoModules
        })
    };
    let build = link().map_err(|e| e.to_string());
    Ok(KernelHeaders { release, build })
}

const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// rpcbind's unit files and enablement links. A unit file or directory that cannot be
/// read is recorded as an error, not taken as absent.
fn rpcbind(root: &HostRoot) -> Rpcbind {
    let mut dir_errors = Vec::new();
    let any_dir = UNIT_DIRS.iter().any(|d| match root.exists(d) {
        Ok(b) => b,
        Err(e) => {
            dir_errors.push(e.to_string());
            false
        }
    });
    let unit_dirs = match (any_dir, dir_errors.is_empty()) {
        (true, _) => Ok(true),
        (false, true) => Ok(false),
        (false, false) => Err(dir_errors.join("; ")),
    };
    let present = |p: &str, errors: &mut Vec<String>| match root.exists(p) {
        Ok(b) => b,
        Err(e) => {
            errors.push(e.to_string());
            false
        }
    };
    let units = ["rpcbind.service", "rpcbind.socket"];
    let mut install_errors = Vec::new();
    let mut installed = Vec::new();
    for d in UNIT_DIRS {
        for u in units {
            let p = format!("{d}/{u}");
            if present(&p, &mut install_errors) {
                installed.push(p);
            }
        }
    }
    // A unit linked to /dev/null is masked.
    let masked = std::fs::read_link(root.path("/etc/systemd/system/rpcbind.service"))
        .is_ok_and(|t| t == std::path::Path::new("/dev/null"));
    let mut enable_errors = Vec::new();
    let mut enabled = Vec::new();
    for d in [
        "/etc/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ] {
        let entries = match root.list_opt(d) {
            Ok(v) => v,
            Err(e) => {
                enable_errors.push(e.to_string());
                continue;
            }
        };
        for wants in entries.into_iter().filter(|w| w.ends_with(".wants")) {
            for u in units {
                if present(&format!("{d}/{wants}/{u}"), &mut enable_errors) {
                    enabled.push(format!("{u} ({wants})"));
                }
            }
        }
    }
    Rpcbind {
        unit_dirs,
        installed,
        install_errors,
        masked,
        enabled,
        enable_errors,
    }
}

/// Whether the running kernel (`rel`) can mount `fs`: registered, as a module, or built in.
fn fs_support(root: &HostRoot, fs: &str, rel: Option<&String>) -> FsSupport {
    let registered = match root.read("/proc/filesystems") {
        Ok(t) => Some(t.lines().any(|l| l.split_whitespace().last() == Some(fs))),
        Err(_) => None,
    };
    let Some(rel) = rel else {
        return FsSupport {
            registered,
            ..FsSupport::default()
        };
    };
    let dir = format!("/lib/modules/{rel}/kernel/fs/{fs}");
    let module = root
        .list_opt(&dir)
        .unwrap_or_default()
        .into_iter()
        .find(|f| f.starts_with(&format!("{fs}.ko")));
    let builtin = matches!(
        root.read_opt(&format!("/lib/modules/{rel}/modules.builtin")),
        Ok(Some(b)) if b.lines().any(|l| l.ends_with(&format!("/{fs}.ko")))
    );
    FsSupport {
        registered,
        release: Some(rel.clone()),
        module,
        builtin,
    }
}

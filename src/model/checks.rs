//! Preflight check results and the catalogue of checks (REQUIREMENTS.md §1).

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Ordered from best to worst, so sorting descending puts failures first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Unknown,
    Warn,
    Fail,
}

impl CheckStatus {
    pub const ALL: [CheckStatus; 4] = [
        CheckStatus::Pass,
        CheckStatus::Warn,
        CheckStatus::Fail,
        CheckStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's id from the catalogue (`swap.off`): short, held inline.
    pub id: CompactString,
    pub status: CheckStatus,
    pub observed: String,
    pub expected: String,
    /// The exact command, sysctl or mount option that fixes it; empty on pass.
    pub remedy: String,
}

/// A check's definition: what it requires and where the requirement comes from.
#[derive(Debug, Clone, Copy)]
pub struct CheckDef {
    pub id: &'static str,
    /// Two-letter column label for matrices.
    pub short: &'static str,
    pub requirement: &'static str,
    pub source: &'static str,
    /// Decided across the cluster (by the console), not on one host.
    pub cluster_wide: bool,
}

pub const CATALOG: &[CheckDef] = &[
    CheckDef {
        id: "swap.off",
        short: "sw",
        requirement: "no active swap",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "numa.balancing",
        short: "nb",
        requirement: "kernel.numa_balancing = 0, persisted in sysctl.conf or sysctl.d",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "tmp.noexec",
        short: "tx",
        requirement: "/tmp mounted noexec",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "smt.off",
        short: "sm",
        requirement: "hyperthreading (SMT) disabled in BIOS",
        source: "seed (BIOS)",
        cluster_wide: false,
    },
    CheckDef {
        id: "cgroup.v2",
        short: "cg",
        requirement: "unified cgroup v2 hierarchy",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "kernel.headers",
        short: "kh",
        requirement: "kernel headers match the booted kernel",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "hugepages",
        short: "hp",
        requirement: "HugeTLB pages can be allocated for the planned containers",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "cpu.vendor",
        short: "cv",
        requirement: "AMD single socket, or Intel (dual socket allowed)",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "numa.nic-balance",
        short: "nn",
        requirement: "dataplane NICs sit on NUMA domains that get Axon cores",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "net.mtu",
        short: "mt",
        requirement: "dataplane MTU >= 9000 (Ethernet) / >= 4092 (InfiniBand)",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "net.sbr",
        short: "sb",
        requirement: "source-based routing: a rule and table per dataplane NIC",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "net.arp",
        short: "ar",
        requirement: "effective arp_filter=1, arp_announce=2, arp_ignore=1 per dataplane NIC, set on it and all/default",
        source: "WEKA sbr-config",
        cluster_wide: false,
    },
    CheckDef {
        id: "net.rp_filter",
        short: "rp",
        requirement: "rp_filter = 2 (0 accepted) on dataplane NICs",
        source: "WEKA checker",
        cluster_wide: false,
    },
    CheckDef {
        id: "ntp.sync",
        short: "nt",
        requirement: "clock synchronised (adjtimex not STA_UNSYNC)",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "svc.rpcbind",
        short: "rb",
        requirement: "rpcbind installed and enabled",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "fs.xfs",
        short: "xf",
        requirement: "XFS available",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "fs.squashfs",
        short: "sq",
        requirement: "SquashFS available",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "nvme.plp",
        short: "pl",
        requirement: "drives have power-loss protection; no volatile-memory-backup warning",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "nvme.capacity",
        short: "ca",
        requirement: "each SSD sold as <= 30 TB (30.72 TB class); smallest:largest <= 1:8 on the host",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "nvme.count",
        short: "nc",
        requirement: "2, 4 or 8 NVMe drives per server",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "nvme.health",
        short: "nh",
        requirement: "no critical warnings, media errors or worn-out drives",
        source: "axon (NVMe SMART)",
        cluster_wide: false,
    },
    CheckDef {
        id: "ports.open",
        short: "po",
        requirement: "firewall lets the cluster ports through between nodes",
        source: "seed",
        cluster_wide: false,
    },
    // The Slurm checks: only when the agent or `axon check` is given --slurm-conf.
    CheckDef {
        id: "slurm.cpuspec",
        short: "cs",
        requirement: "Slurm CpuSpecList holds the Axon CPUs and their SMT siblings (abstract ids)",
        source: "seed + Slurm manual",
        cluster_wide: false,
    },
    CheckDef {
        id: "slurm.memspec",
        short: "ms",
        requirement: "Slurm MemSpecLimit of at least the Axon memory under CR_Core_Memory",
        source: "seed + Slurm manual",
        cluster_wide: false,
    },
    CheckDef {
        id: "slurm.settings",
        short: "ss",
        requirement: "the seed's slurm.conf settings (cgroup tracking, SlurmdOffSpec, CR_Core_Memory, …)",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "slurm.cgroup",
        short: "sc",
        requirement: "cgroup.conf ConstrainCores=yes and ConstrainRAMSpace=yes",
        source: "seed",
        cluster_wide: false,
    },
    CheckDef {
        id: "iommu.consistent",
        short: "io",
        requirement: "IOMMU settings equal on every node",
        source: "seed",
        cluster_wide: true,
    },
    CheckDef {
        id: "nvme.size-ratio",
        short: "sr",
        requirement: "smallest:largest SSD <= 1:8 across the cluster",
        source: "seed",
        cluster_wide: true,
    },
    CheckDef {
        id: "ntp.skew",
        short: "sk",
        requirement: "clock skew between nodes small (< 500 ms)",
        source: "seed",
        cluster_wide: true,
    },
];

pub fn def(id: &str) -> Option<&'static CheckDef> {
    CATALOG.iter().find(|d| d.id == id)
}

/// Exit code for a set of results: 0 all pass, 1 warnings or unknowns, 2 failures.
pub fn exit_code(results: &[CheckResult]) -> i32 {
    match results.iter().map(|r| r.status).max() {
        Some(CheckStatus::Fail) => 2,
        Some(CheckStatus::Warn) | Some(CheckStatus::Unknown) => 1,
        Some(CheckStatus::Pass) => 0,
        // No result at all: the checks could not run, which is not "all pass".
        None => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: CheckStatus) -> CheckResult {
        CheckResult {
            id: "x".into(),
            status,
            observed: String::new(),
            expected: String::new(),
            remedy: String::new(),
        }
    }

    #[test]
    fn exit_code_follows_worst_status() {
        assert_eq!(exit_code(&[r(CheckStatus::Pass)]), 0);
        assert_eq!(
            exit_code(&[r(CheckStatus::Pass), r(CheckStatus::Unknown)]),
            1
        );
        assert_eq!(exit_code(&[r(CheckStatus::Warn), r(CheckStatus::Pass)]), 1);
        assert_eq!(exit_code(&[r(CheckStatus::Warn), r(CheckStatus::Fail)]), 2);
    }

    #[test]
    fn no_results_means_the_checks_could_not_run() {
        assert_eq!(exit_code(&[]), 3);
    }

    #[test]
    fn short_labels_are_unique() {
        let mut s: Vec<_> = CATALOG.iter().map(|d| d.short).collect();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), CATALOG.len());
    }

    #[test]
    fn catalog_ids_are_unique() {
        let mut ids: Vec<_> = CATALOG.iter().map(|d| d.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CATALOG.len());
    }
}

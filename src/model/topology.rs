//! CPU packages, NUMA domains and logical CPUs of one host, as sysfs describes them.

use super::CpuSet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// `vendor_id` from /proc/cpuinfo: `AuthenticAMD`, `GenuineIntel`, …
    pub cpu_vendor: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    pub packages: Vec<Package>,
    pub numa_nodes: Vec<NumaNode>,
    pub cpus: Vec<Cpu>,
    pub smt: Smt,
    pub memory: Memory,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub id: u32,
    pub cpus: CpuSet,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaNode {
    pub id: u32,
    pub cpus: CpuSet,
    pub memory_total_bytes: u64,
    pub memory_free_bytes: u64,
    pub hugepages: Vec<HugePagePool>,
}

impl NumaNode {
    pub fn hugepages_of(&self, page_size_bytes: u64) -> Option<&HugePagePool> {
        self.hugepages
            .iter()
            .find(|h| h.page_size_bytes == page_size_bytes)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugePagePool {
    pub page_size_bytes: u64,
    pub total: u64,
    pub free: u64,
    pub surplus: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    pub id: u32,
    pub core_id: u32,
    pub package_id: u32,
    pub numa_node: Option<u32>,
    /// SMT siblings including the CPU itself (`thread_siblings_list`).
    pub siblings: CpuSet,
    pub online: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smt {
    /// `/sys/devices/system/cpu/smt/active`; None when the kernel does not say.
    pub active: Option<bool>,
    /// `/sys/devices/system/cpu/smt/control`: on, off, forceoff, notsupported, notimplemented.
    pub control: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
    /// Default huge page size (`Hugepagesize`).
    pub hugepage_size_bytes: u64,
    pub hugepages_total: u64,
    pub hugepages_free: u64,
}

impl Topology {
    pub fn cpu(&self, id: u32) -> Option<&Cpu> {
        self.cpus
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .map(|i| &self.cpus[i])
    }

    pub fn online_cpus(&self) -> CpuSet {
        self.cpus
            .iter()
            .filter(|c| c.online)
            .map(|c| c.id)
            .collect()
    }

    pub fn numa_node(&self, id: u32) -> Option<&NumaNode> {
        self.numa_nodes.iter().find(|n| n.id == id)
    }

    /// True when at least one core exposes more than one hardware thread.
    pub fn has_smt_siblings(&self) -> bool {
        self.cpus.iter().any(|c| c.siblings.len() > 1)
    }
}

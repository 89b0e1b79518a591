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
    /// Online CPUs whose topology files could not be read. Their `Cpu` holds stand-ins
    /// (the CPU as its own sibling, package 0, core = CPU id) so views can still draw
    /// them; checks that need the real value say unknown.
    #[serde(default)]
    pub unreadable: UnreadableCpus,
}

/// Online CPUs whose `topology/*` files were unreadable or malformed, per file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableCpus {
    /// `thread_siblings_list`
    pub siblings: CpuSet,
    /// `core_id`
    pub core_id: CpuSet,
    /// `physical_package_id`
    pub package_id: CpuSet,
}

impl UnreadableCpus {
    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty() && self.core_id.is_empty() && self.package_id.is_empty()
    }
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
    /// True when the node's `cpulist` could not be read: `cpus` is then empty, and its
    /// size is no fact about the node.
    #[serde(default)]
    pub cpus_unreadable: bool,
    /// `MemTotal` / `MemFree` of the node's `meminfo`; None when the file is missing or
    /// unreadable or does not carry the line (never 0 for "unknown").
    pub memory_total_bytes: Option<u64>,
    pub memory_free_bytes: Option<u64>,
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
    /// `nr_hugepages` and `free_hugepages`; None when unreadable.
    pub total: Option<u64>,
    pub free: Option<u64>,
    /// `surplus_hugepages` (0 when the kernel has no such file).
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
/// `/proc/meminfo`. Each figure is None when the file is unreadable or lacks its line.
pub struct Memory {
    pub total_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_free_bytes: Option<u64>,
    /// Default huge page size (`Hugepagesize`).
    pub hugepage_size_bytes: Option<u64>,
    pub hugepages_total: Option<u64>,
    pub hugepages_free: Option<u64>,
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

/// The fast-changing part of a topology: free memory and free huge pages. Agents send it on
/// its own, so the layout (hundreds of CPUs) only travels when the layout changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryUsage {
    pub available_bytes: Option<u64>,
    pub swap_free_bytes: Option<u64>,
    pub hugepages_free: Option<u64>,
    pub numa: Vec<NumaUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaUsage {
    pub id: u32,
    pub memory_free_bytes: Option<u64>,
    /// Free and surplus pages of each huge page pool, in the order of `NumaNode::hugepages`.
    /// A pool whose free count is unknown carries 0 here and is left unknown by
    /// `apply_usage`: whether a figure is known is part of the layout (a change travels
    /// as a whole topology), so an update never turns an unknown into a number.
    pub hugepages_free: Vec<u64>,
    pub hugepages_surplus: Vec<u64>,
}

impl Topology {
    pub fn usage(&self) -> MemoryUsage {
        MemoryUsage {
            available_bytes: self.memory.available_bytes,
            swap_free_bytes: self.memory.swap_free_bytes,
            hugepages_free: self.memory.hugepages_free,
            numa: self
                .numa_nodes
                .iter()
                .map(|n| NumaUsage {
                    id: n.id,
                    memory_free_bytes: n.memory_free_bytes,
                    hugepages_free: n.hugepages.iter().map(|h| h.free.unwrap_or(0)).collect(),
                    hugepages_surplus: n.hugepages.iter().map(|h| h.surplus).collect(),
                })
                .collect(),
        }
    }

    /// Applies a usage update to this layout; entries for unknown NUMA nodes are ignored,
    /// and a pool's free count that this layout does not know stays unknown.
    pub fn apply_usage(&mut self, u: &MemoryUsage) {
        self.memory.available_bytes = u.available_bytes;
        self.memory.swap_free_bytes = u.swap_free_bytes;
        self.memory.hugepages_free = u.hugepages_free;
        for nu in &u.numa {
            if let Some(n) = self.numa_nodes.iter_mut().find(|n| n.id == nu.id) {
                n.memory_free_bytes = nu.memory_free_bytes;
                for (h, (f, s)) in n
                    .hugepages
                    .iter_mut()
                    .zip(nu.hugepages_free.iter().zip(&nu.hugepages_surplus))
                {
                    if h.free.is_some() {
                        h.free = Some(*f);
                    }
                    h.surplus = *s;
                }
            }
        }
    }

    /// Equal but for the usage figures.
    pub fn layout_eq(&self, other: &Topology) -> bool {
        let mut a = self.clone();
        a.apply_usage(&other.usage());
        a == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_round_trips_and_layout_ignores_it() {
        let mut t = Topology {
            numa_nodes: vec![NumaNode {
                id: 0,
                memory_free_bytes: Some(5),
                hugepages: vec![HugePagePool {
                    page_size_bytes: 2 << 20,
                    total: Some(10),
                    free: Some(3),
                    surplus: 0,
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let before = t.clone();
        let mut u = t.usage();
        u.numa[0].memory_free_bytes = Some(99);
        u.numa[0].hugepages_free[0] = 7;
        t.apply_usage(&u);
        assert_eq!(t.numa_nodes[0].memory_free_bytes, Some(99));
        assert_eq!(t.numa_nodes[0].hugepages[0].free, Some(7));
        assert!(t.layout_eq(&before));
        let mut other = before.clone();
        other.numa_nodes[0].hugepages[0].total = Some(11);
        assert!(!t.layout_eq(&other));
        // A pool whose free count became unreadable is a layout change: no update turns
        // the unknown into the 0 the usage carries for it.
        let mut unknown = before.clone();
        unknown.numa_nodes[0].hugepages[0].free = None;
        assert!(!before.layout_eq(&unknown));
        let mut held = unknown.clone();
        held.apply_usage(&before.usage());
        assert_eq!(held.numa_nodes[0].hugepages[0].free, None);
    }
}

//! Packages, NUMA domains (CPUs, memory, huge pages) and logical CPUs (core, package, SMT
//! siblings, online) from sysfs, CPU vendor and model from /proc/cpuinfo.

use super::{CollectError, HostRoot, Problems};
use crate::model::cpuset::CpuSet;
use crate::model::topology::{
    Cpu, HugePagePool, Memory, NumaNode, Package, Smt, Topology, UnreadableCpus,
};
use std::collections::BTreeMap;

const CPU_DIR: &str = "/sys/devices/system/cpu";
const NODE_DIR: &str = "/sys/devices/system/node";

pub fn collect(root: &HostRoot, problems: &mut Problems) -> Result<Topology, CollectError> {
    let cpu_ids: Vec<u32> = root
        .list(CPU_DIR)?
        .iter()
        .filter_map(|n| n.strip_prefix("cpu").and_then(|s| s.parse().ok()))
        .collect();
    if cpu_ids.is_empty() {
        return Err(CollectError::malformed(
            root.display_path(CPU_DIR),
            "no cpuN directories",
        ));
    }
    let online_list = match root.read_opt(&format!("{CPU_DIR}/online"))? {
        Some(s) => Some(CpuSet::parse_list(&s).map_err(|e| {
            CollectError::malformed(
                root.display_path(&format!("{CPU_DIR}/online")),
                e.to_string(),
            )
        })?),
        None => None,
    };

    let numa_nodes = numa_nodes(root, problems)?;
    let node_of = |cpu: u32| {
        numa_nodes
            .iter()
            .find(|n| n.cpus.contains(cpu))
            .map(|n| n.id)
    };

    let mut cpus = Vec::with_capacity(cpu_ids.len());
    let (mut no_siblings, mut no_core, mut no_package) = (Vec::new(), Vec::new(), Vec::new());
    for id in cpu_ids {
        let base = format!("{CPU_DIR}/cpu{id}");
        // cpu0 usually has no `online` file (it cannot be offlined); the global list decides.
        let online = match &online_list {
            Some(l) => l.contains(id),
            None => problems
                .take(root.parse_opt::<u8>(&format!("{base}/online")))
                .flatten()
                .is_none_or(|v| v == 1),
        };
        let topo = |f: &str| format!("{base}/topology/{f}");
        let (core_id, package_id, siblings) = if online {
            // Unreadable values get stand-ins, and the CPU is listed as unreadable for that
            // file, so no check mistakes a stand-in for a fact.
            let core = problems
                .take(root.parse::<u32>(&topo("core_id")))
                .unwrap_or_else(|| {
                    no_core.push(id);
                    id
                });
            let pkg = problems
                .take(root.parse::<u32>(&topo("physical_package_id")))
                .unwrap_or_else(|| {
                    no_package.push(id);
                    0
                });
            let sib = problems
                .take(root.read(&topo("thread_siblings_list")).and_then(|s| {
                    CpuSet::parse_list(&s).map_err(|e| {
                        CollectError::malformed(
                            root.display_path(&topo("thread_siblings_list")),
                            e.to_string(),
                        )
                    })
                }))
                .unwrap_or_else(|| {
                    no_siblings.push(id);
                    CpuSet::from_ids([id])
                });
            (core, pkg, sib)
        } else {
            // An offline CPU's topology files are absent; keep what can be read.
            let core = root
                .parse_opt::<u32>(&topo("core_id"))
                .ok()
                .flatten()
                .unwrap_or(id);
            let pkg = root
                .parse_opt::<u32>(&topo("physical_package_id"))
                .ok()
                .flatten()
                .unwrap_or(0);
            (core, pkg, CpuSet::from_ids([id]))
        };
        cpus.push(Cpu {
            id,
            core_id,
            package_id,
            numa_node: node_of(id),
            siblings,
            online,
        });
    }
    cpus.sort_by_key(|c| c.id);

    let mut packages: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for c in &cpus {
        packages.entry(c.package_id).or_default().push(c.id);
    }

    let (cpu_vendor, cpu_model) = match root.read("/proc/cpuinfo") {
        Ok(text) => cpuinfo_vendor_model(&text),
        Err(e) => {
            problems.push(e);
            (String::new(), String::new())
        }
    };

    let smt = Smt {
        active: problems
            .take(root.parse_opt::<u8>(&format!("{CPU_DIR}/smt/active")))
            .flatten()
            .map(|v| v == 1),
        control: problems
            .take(root.value_opt(&format!("{CPU_DIR}/smt/control")))
            .flatten(),
    };

    let memory = match root.read("/proc/meminfo") {
        Ok(text) => meminfo(&text, &root.display_path("/proc/meminfo"), problems),
        Err(e) => {
            problems.push(e);
            Memory::default()
        }
    };

    let mut numa_nodes = numa_nodes;
    if numa_nodes.is_empty() {
        // A kernel without NUMA support: one domain holding everything.
        numa_nodes.push(NumaNode {
            id: 0,
            cpus: cpus.iter().map(|c| c.id).collect(),
            cpus_unreadable: false,
            memory_total_bytes: memory.total_bytes,
            memory_free_bytes: memory.available_bytes,
            hugepages: Vec::new(),
        });
        for c in &mut cpus {
            c.numa_node = Some(0);
        }
    }

    Ok(Topology {
        cpu_vendor,
        cpu_model,
        packages: packages
            .into_iter()
            .map(|(id, c)| Package {
                id,
                cpus: CpuSet::from_ids(c),
            })
            .collect(),
        numa_nodes,
        cpus,
        smt,
        memory,
        unreadable: UnreadableCpus {
            siblings: CpuSet::from_ids(no_siblings),
            core_id: CpuSet::from_ids(no_core),
            package_id: CpuSet::from_ids(no_package),
        },
    })
}

fn numa_nodes(root: &HostRoot, problems: &mut Problems) -> Result<Vec<NumaNode>, CollectError> {
    let mut nodes = Vec::new();
    for name in root.list_opt(NODE_DIR)? {
        let Some(id) = name
            .strip_prefix("node")
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let base = format!("{NODE_DIR}/node{id}");
        let cpulist_path = format!("{base}/cpulist");
        let cpus = match root.read(&cpulist_path) {
            Ok(s) => match CpuSet::parse_list(&s) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(CollectError::malformed(
                        root.display_path(&cpulist_path),
                        e.to_string(),
                    ));
                    None
                }
            },
            Err(e) => {
                problems.push(e);
                None
            }
        };
        // A node without a readable meminfo (some container and captured trees have
        // none) has unknown memory, not zero.
        let meminfo_path = format!("{base}/meminfo");
        let (total, free) = match root.read(&meminfo_path) {
            Ok(text) => {
                let (t, f) = node_meminfo(&text);
                for (v, key) in [(t, "MemTotal"), (f, "MemFree")] {
                    if v.is_none() {
                        problems.push(CollectError::malformed(
                            root.display_path(&meminfo_path),
                            format!("no `Node {id} {key}:` line"),
                        ));
                    }
                }
                (t, f)
            }
            Err(e) => {
                problems.push(e);
                (None, None)
            }
        };
        let mut hugepages = Vec::new();
        for hp in root.list_opt(&format!("{base}/hugepages"))? {
            let Some(kb) = hp
                .strip_prefix("hugepages-")
                .and_then(|s| s.strip_suffix("kB"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let Some(page_size_bytes) = kb.checked_mul(1024) else {
                problems.push(CollectError::malformed(
                    root.display_path(&format!("{base}/hugepages/{hp}")),
                    format!("a page size of {kb} kB does not fit in 64 bits"),
                ));
                continue;
            };
            let f = |n: &str| format!("{base}/hugepages/{hp}/{n}");
            hugepages.push(HugePagePool {
                page_size_bytes,
                total: problems.take(root.parse::<u64>(&f("nr_hugepages"))),
                free: problems.take(root.parse::<u64>(&f("free_hugepages"))),
                surplus: problems
                    .take(root.parse_opt::<u64>(&f("surplus_hugepages")))
                    .flatten()
                    .unwrap_or(0),
            });
        }
        hugepages.sort_by_key(|h| h.page_size_bytes);
        nodes.push(NumaNode {
            id,
            cpus_unreadable: cpus.is_none(),
            cpus: cpus.unwrap_or_default(),
            memory_total_bytes: total,
            memory_free_bytes: free,
            hugepages,
        });
    }
    nodes.sort_by_key(|n| n.id);
    Ok(nodes)
}

/// (vendor_id, model name) of the first processor stanza.
pub fn cpuinfo_vendor_model(text: &str) -> (String, String) {
    let mut vendor = String::new();
    let mut model = String::new();
    for line in text.lines() {
        if line.trim().is_empty() && !vendor.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "vendor_id" if vendor.is_empty() => vendor = v.trim().to_string(),
                "model name" if model.is_empty() => model = v.trim().to_string(),
                _ => {}
            }
        }
    }
    (vendor, model)
}

/// Parses `/proc/meminfo` lines (`MemTotal:  24684092 kB`).
pub fn meminfo_map(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let mut parts = v.split_whitespace();
        let Some(n) = parts.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        // Saturate: a value the kernel could never print must not panic the agent.
        let n = if parts.next() == Some("kB") {
            n.saturating_mul(1024)
        } else {
            n
        };
        m.insert(k.trim().to_string(), n);
    }
    m
}

/// `/proc/meminfo`. A figure whose line is missing is None; the memory and swap lines
/// (printed by every kernel since 3.14) are also a problem when missing, the huge page
/// lines are not (a kernel without HugeTLB has none).
fn meminfo(text: &str, path: &std::path::Path, problems: &mut Problems) -> Memory {
    let m = meminfo_map(text);
    let g = |k: &str| m.get(k).copied();
    let mut must = |k: &str| {
        let v = g(k);
        if v.is_none() {
            problems.push(CollectError::malformed(path, format!("no `{k}:` line")));
        }
        v
    };
    Memory {
        total_bytes: must("MemTotal"),
        available_bytes: must("MemAvailable"),
        swap_total_bytes: must("SwapTotal"),
        swap_free_bytes: must("SwapFree"),
        hugepage_size_bytes: g("Hugepagesize"),
        hugepages_total: g("HugePages_Total"),
        hugepages_free: g("HugePages_Free"),
    }
}

/// Per-node meminfo lines read `Node 0 MemTotal:       3893460 kB`.
fn node_meminfo(text: &str) -> (Option<u64>, Option<u64>) {
    let stripped: String = text
        .lines()
        .map(|l| {
            let mut it = l.splitn(3, char::is_whitespace);
            let _node = it.next();
            let _id = it.next();
            it.next().unwrap_or("").trim_start().to_string() + "\n"
        })
        .collect();
    let m = meminfo_map(&stripped);
    (m.get("MemTotal").copied(), m.get("MemFree").copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_meminfo_strips_the_node_prefix() {
        let (t, f) = node_meminfo(
            "Node 0 MemTotal:        3893460 kB\nNode 0 MemFree:         3568716 kB\n",
        );
        assert_eq!(t, Some(3893460 * 1024));
        assert_eq!(f, Some(3568716 * 1024));
        assert_eq!(node_meminfo("Node 1 MemUsed: 4 kB\n"), (None, None));
    }

    #[test]
    fn cpuinfo_first_stanza_wins() {
        let (v, m) = cpuinfo_vendor_model(
            "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nvendor_id\t: Other\n",
        );
        assert_eq!(v, "AuthenticAMD");
        assert_eq!(m, "AMD EPYC");
    }
}

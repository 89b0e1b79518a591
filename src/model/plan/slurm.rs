//! Slurm's view of a node's CPUs: its shape (Sockets, CoresPerSocket, ThreadsPerCore) and
//! its *abstract* CPU ids, which CpuSpecList is written in. slurmd numbers CPUs from hwloc
//! (`xcpuinfo_hwloc_topo_get`): packages in order, the cores of each package in order, the
//! threads of a core consecutively — abstract id = core's index on the node × threads per
//! core + thread's index in its core. The kernel numbers the first thread of every core
//! first, so on an SMT host kernel cpu 1 is usually abstract 2. Pure: from `Topology`.

use super::NodePlan;
use crate::model::cpuset::CpuSet;
use crate::model::topology::Topology;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a NodeName line says about the CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub sockets: usize,
    pub cores_per_socket: usize,
    pub threads_per_core: usize,
}

/// Kernel CPU id ↔ Slurm abstract CPU id for every online CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMap {
    pub shape: Shape,
    to_abstract: BTreeMap<u32, u32>,
    to_kernel: BTreeMap<u32, u32>,
}

impl CpuMap {
    /// The map Slurm would make of `t`. Errors, as slurmd does, when the packages do not
    /// have the same number of cores or the cores the same number of threads (Slurm then
    /// cannot describe the node with one NodeName line).
    pub fn of(t: &Topology) -> Result<CpuMap, String> {
        // package -> core -> threads, each ordered by its lowest kernel id (hwloc's order).
        let mut packages: BTreeMap<u32, BTreeMap<u32, Vec<u32>>> = BTreeMap::new();
        for c in t.cpus.iter().filter(|c| c.online) {
            packages
                .entry(c.package_id)
                .or_default()
                .entry(c.core_id)
                .or_default()
                .push(c.id);
        }
        if packages.is_empty() {
            return Err("no online CPU in the topology".into());
        }
        let mut ordered: Vec<Vec<Vec<u32>>> = packages
            .into_values()
            .map(|cores| {
                let mut cores: Vec<Vec<u32>> = cores
                    .into_values()
                    .map(|mut th| {
                        th.sort_unstable();
                        th
                    })
                    .collect();
                cores.sort_by_key(|th| th[0]);
                cores
            })
            .collect();
        ordered.sort_by_key(|cores| cores[0][0]);
        let cores_per_socket = ordered[0].len();
        let threads_per_core = ordered[0][0].len();
        for (i, cores) in ordered.iter().enumerate() {
            if cores.len() != cores_per_socket {
                return Err(format!(
                    "socket {i} has {} cores and socket 0 has {cores_per_socket}: Slurm needs the same number on every socket",
                    cores.len()
                ));
            }
            if let Some(th) = cores.iter().find(|th| th.len() != threads_per_core) {
                return Err(format!(
                    "cpu{} has {} threads per core and cpu{} has {threads_per_core}: Slurm needs the same on every core (is a sibling offline?)",
                    th[0],
                    th.len(),
                    ordered[0][0][0]
                ));
            }
        }
        let mut to_abstract = BTreeMap::new();
        let mut to_kernel = BTreeMap::new();
        for (core_idx, threads) in ordered.iter().flatten().enumerate() {
            for (pu, &cpu) in threads.iter().enumerate() {
                let abs = (core_idx * threads_per_core + pu) as u32;
                to_abstract.insert(cpu, abs);
                to_kernel.insert(abs, cpu);
            }
        }
        Ok(CpuMap {
            shape: Shape {
                sockets: ordered.len(),
                cores_per_socket,
                threads_per_core,
            },
            to_abstract,
            to_kernel,
        })
    }

    pub fn to_abstract(&self, cpus: &CpuSet) -> Result<CpuSet, String> {
        cpus.iter()
            .map(|c| {
                self.to_abstract
                    .get(&c)
                    .copied()
                    .ok_or_else(|| format!("cpu{c} is not an online CPU"))
            })
            .collect()
    }

    pub fn to_kernel(&self, abstract_ids: &CpuSet) -> Result<CpuSet, String> {
        abstract_ids
            .iter()
            .map(|a| {
                self.to_kernel.get(&a).copied().ok_or_else(|| {
                    format!(
                        "abstract CPU {a} does not exist (the node has {} CPUs)",
                        self.to_kernel.len()
                    )
                })
            })
            .collect()
    }

    /// Every abstract id, with its kernel id, in abstract order.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.to_kernel.iter().map(|(a, k)| (*a, *k))
    }
}

/// The seed's slurm.conf settings, in its order (REQUIREMENTS.md §5). The last,
/// JobAcctGatherType, is optional.
pub const SETTINGS: [(&str, &str); 7] = [
    ("ProctrackType", "proctrack/cgroup"),
    ("TaskPlugin", "task/affinity,task/cgroup"),
    ("TaskPluginParam", "SlurmdOffSpec"),
    ("SelectType", "select/cons_tres"),
    ("SelectTypeParameters", "CR_Core_Memory"),
    ("PrologFlags", "Contain"),
    ("JobAcctGatherType", "jobacct_gather/cgroup"),
];

/// The settings of `SETTINGS` a node may go without.
pub const OPTIONAL_SETTINGS: [&str; 1] = ["JobAcctGatherType"];

/// The seed's cgroup.conf settings.
pub const CGROUP_SETTINGS: [(&str, &str); 2] =
    [("ConstrainCores", "yes"), ("ConstrainRAMSpace", "yes")];

/// One NodeName line's values: nodes with equal ones share the line. What
/// `axon plan --format slurm` writes, and what `slurm.cpuspec` offers as the remedy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeLine {
    pub sockets: usize,
    pub cores_per_socket: usize,
    pub threads_per_core: usize,
    pub real_memory_mb: u64,
    /// Abstract ids, as written (`6-23,54-71`); empty when nothing is planned.
    pub cpu_spec_list: String,
    pub mem_spec_limit_mb: u64,
    /// The kernel ids they stand for, for the comment.
    pub kernel_cpus: String,
    /// What jobs may use: everything but CpuSpecList (the OS's cores included).
    pub job_cpus: String,
}

impl NodeLine {
    /// The line for a node of topology `t` whose Axon CPUs are `plan`'s.
    pub fn of(t: &Topology, plan: &NodePlan) -> Result<NodeLine, String> {
        let spec = plan.axon_cpus.union(&plan.idle_siblings);
        let mut line = NodeLine::reserving(t, &spec, plan.memory_mib)?;
        line.job_cpus = plan.job_cpus.union(&plan.os_cpus).to_list_string();
        Ok(line)
    }

    /// The line that keeps the kernel CPUs `spec` (SMT siblings included) and
    /// `mem_spec_limit_mb` MB from jobs; jobs may use the other CPUs.
    pub fn reserving(
        t: &Topology,
        spec: &CpuSet,
        mem_spec_limit_mb: u64,
    ) -> Result<NodeLine, String> {
        let map = CpuMap::of(t)?;
        let abs = map.to_abstract(spec)?;
        let real = t
            .memory
            .total_bytes
            .ok_or("total memory unknown (/proc/meminfo)")?
            / (1024 * 1024);
        Ok(NodeLine {
            sockets: map.shape.sockets,
            cores_per_socket: map.shape.cores_per_socket,
            threads_per_core: map.shape.threads_per_core,
            real_memory_mb: real,
            cpu_spec_list: abs.to_list_string(),
            mem_spec_limit_mb,
            kernel_cpus: spec.to_list_string(),
            job_cpus: t.online_cpus().difference(spec).to_list_string(),
        })
    }

    pub fn render(&self, names: &str) -> String {
        let mut s = format!(
            "NodeName={names} Sockets={} CoresPerSocket={} ThreadsPerCore={} RealMemory={}",
            self.sockets, self.cores_per_socket, self.threads_per_core, self.real_memory_mb
        );
        if !self.cpu_spec_list.is_empty() {
            let _ = write!(
                s,
                " CpuSpecList={} MemSpecLimit={}",
                self.cpu_spec_list, self.mem_spec_limit_mb
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::topology::Cpu;

    fn cpu(id: u32, package: u32, core: u32, siblings: &[u32]) -> Cpu {
        Cpu {
            id,
            core_id: core,
            package_id: package,
            numa_node: Some(package),
            siblings: CpuSet::from_ids(siblings.iter().copied()),
            online: true,
        }
    }

    #[test]
    fn on_an_smt_host_the_threads_of_a_core_are_consecutive_abstract_ids() {
        // 2 sockets × 2 cores × 2 threads, Linux numbering: 0-3 first threads, 4-7 siblings.
        let t = Topology {
            cpus: vec![
                cpu(0, 0, 0, &[0, 4]),
                cpu(1, 0, 1, &[1, 5]),
                cpu(2, 1, 0, &[2, 6]),
                cpu(3, 1, 1, &[3, 7]),
                cpu(4, 0, 0, &[0, 4]),
                cpu(5, 0, 1, &[1, 5]),
                cpu(6, 1, 0, &[2, 6]),
                cpu(7, 1, 1, &[3, 7]),
            ],
            ..Default::default()
        };
        let m = CpuMap::of(&t).unwrap();
        assert_eq!(
            m.shape,
            Shape {
                sockets: 2,
                cores_per_socket: 2,
                threads_per_core: 2
            }
        );
        let pairs: Vec<(u32, u32)> = m.pairs().collect();
        assert_eq!(
            pairs,
            vec![
                (0, 0),
                (1, 4),
                (2, 1),
                (3, 5),
                (4, 2),
                (5, 6),
                (6, 3),
                (7, 7)
            ]
        );
        let axon = CpuSet::from_ids([3, 7]);
        assert_eq!(m.to_abstract(&axon).unwrap(), CpuSet::from_ids([6, 7]));
        assert_eq!(
            m.to_kernel(&CpuSet::from_ids([2, 3])).unwrap(),
            CpuSet::from_ids([1, 5])
        );
        assert!(
            m.to_kernel(&CpuSet::from_ids([8]))
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn without_smt_abstract_ids_follow_the_cores_socket_by_socket() {
        // Kernel ids interleave the sockets (0 on socket 0, 1 on socket 1, …).
        let t = Topology {
            cpus: (0..4).map(|i| cpu(i, i % 2, i / 2, &[i])).collect(),
            ..Default::default()
        };
        let m = CpuMap::of(&t).unwrap();
        let pairs: Vec<(u32, u32)> = m.pairs().collect();
        assert_eq!(pairs, vec![(0, 0), (1, 2), (2, 1), (3, 3)]);
    }

    #[test]
    fn an_offline_sibling_is_a_shape_slurm_cannot_describe() {
        let mut t = Topology {
            cpus: vec![
                cpu(0, 0, 0, &[0, 2]),
                cpu(1, 0, 1, &[1, 3]),
                cpu(2, 0, 0, &[0, 2]),
                cpu(3, 0, 1, &[1, 3]),
            ],
            ..Default::default()
        };
        t.cpus[3].online = false;
        let e = CpuMap::of(&t).unwrap_err();
        assert!(e.contains("threads per core"), "{e}");
    }
}

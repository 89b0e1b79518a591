//! Who may run, and who last ran, on each CPU: the per-thread affinity of every process
//! (`/proc/*/task/*/status` and `stat`), summarised per CPU and attributed to an owner.

use super::net::Network;
use super::topology::Topology;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// The role of an Axon container. Container threads are named `axon-drives<N>`,
/// `axon-compute<N>` and `axon-frontend<N>`, which is how the pinning collector knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerRole {
    Drives,
    Compute,
    Frontend,
}

impl ContainerRole {
    pub const ALL: [ContainerRole; 3] = [
        ContainerRole::Drives,
        ContainerRole::Compute,
        ContainerRole::Frontend,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerRole::Drives => "drives",
            ContainerRole::Compute => "compute",
            ContainerRole::Frontend => "frontend",
        }
    }

    /// Thread-name prefix the data plane uses for this role.
    pub fn thread_prefix(self) -> &'static str {
        match self {
            ContainerRole::Drives => "axon-drives",
            ContainerRole::Compute => "axon-compute",
            ContainerRole::Frontend => "axon-frontend",
        }
    }

    pub fn from_thread_name(comm: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| comm.starts_with(r.thread_prefix()))
    }
}

/// Who a process belongs to, from the operator's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Owner {
    /// An Axon container (drives, compute or frontend).
    Axon { role: ContainerRole },
    /// A process inside a Slurm job's cgroup.
    SlurmJob { job_id: u64 },
    /// A kernel thread (child of kthreadd).
    Kernel,
    /// Everything else: system daemons, login sessions.
    System,
}

impl Owner {
    pub fn is_axon(&self) -> bool {
        matches!(self, Owner::Axon { .. })
    }

    pub fn label(&self) -> String {
        match self {
            Owner::Axon { role } => format!("axon-{}", role.as_str()),
            Owner::SlurmJob { job_id } => format!("slurm job {job_id}"),
            Owner::Kernel => "kernel".into(),
            Owner::System => "system".into(),
        }
    }
}

/// A process as it appears in one CPU's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: u32,
    /// The process name (`comm`, at most 15 bytes on Linux): held inline.
    pub comm: CompactString,
    pub owner: Owner,
    /// How many of its threads match (are allowed here / last ran here).
    pub threads: u32,
    /// How many of those threads are runnable (state R) right now.
    pub runnable: u32,
}

/// One CPU's summary. The lists are built once per collection and never grow, so they
/// are boxed slices: exactly their length, and 8 bytes smaller each than a Vec (a
/// console holds the summaries of 1,000 hosts' CPUs, most of them with empty lists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUse {
    pub cpu: u32,
    /// Processes with a thread whose affinity is restricted (not every online CPU) and
    /// includes this CPU. Kernel per-CPU threads are counted in `kernel_threads` instead.
    pub pinned: Box<[ProcRef]>,
    /// Processes with a runnable thread (state R) on this CPU: last ran here, ready to run.
    pub running: Box<[ProcRef]>,
    /// Entries left out of `pinned` / `running` to keep the summary bounded.
    pub pinned_more: u32,
    pub running_more: u32,
    pub kernel_threads: u32,
}

/// What owns a CPU, derived from its summary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CpuRole {
    Axon {
        role: ContainerRole,
    },
    SlurmJob {
        job_id: u64,
    },
    /// Restricted system processes only (e.g. an OS reservation).
    Os,
    /// Nothing pinned here; any unpinned thread may use it.
    Free,
}

impl CpuRole {
    pub fn label(&self) -> String {
        match self {
            CpuRole::Axon { role } => format!("axon-{}", role.as_str()),
            CpuRole::SlurmJob { .. } => "slurm".into(),
            CpuRole::Os => "os".into(),
            CpuRole::Free => "free".into(),
        }
    }
}

impl CpuUse {
    /// Axon wins over a job, a job over system processes: an Axon core shared with a job
    /// is still an Axon core, and the sharing is reported by [`CpuUse::conflicts`].
    pub fn role(&self) -> CpuRole {
        if let Some(role) = self.pinned.iter().find_map(|p| match p.owner {
            Owner::Axon { role } => Some(role),
            _ => None,
        }) {
            return CpuRole::Axon { role };
        }
        if let Some(job_id) = self.pinned.iter().find_map(|p| match p.owner {
            Owner::SlurmJob { job_id } => Some(job_id),
            _ => None,
        }) {
            return CpuRole::SlurmJob { job_id };
        }
        if self.pinned.iter().any(|p| p.owner == Owner::System) {
            return CpuRole::Os;
        }
        CpuRole::Free
    }

    /// Problems on this CPU: on an Axon core, any other process pinned to it, or any other
    /// process's thread running on it.
    pub fn conflicts(&self) -> Vec<Conflict> {
        let mut out = Vec::new();
        if !matches!(self.role(), CpuRole::Axon { .. }) {
            return out;
        }
        for p in &self.pinned {
            if !p.owner.is_axon() {
                out.push(Conflict::SharedAxonCore {
                    cpu: self.cpu,
                    pid: p.pid,
                    comm: p.comm.clone(),
                    owner: p.owner.clone(),
                });
            }
        }
        for p in &self.running {
            if !p.owner.is_axon() && p.owner != Owner::Kernel && p.runnable > 0 {
                out.push(Conflict::ForeignThreadOnAxonCore {
                    cpu: self.cpu,
                    pid: p.pid,
                    comm: p.comm.clone(),
                    owner: p.owner.clone(),
                });
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Conflict {
    SharedAxonCore {
        cpu: u32,
        pid: u32,
        comm: CompactString,
        owner: Owner,
    },
    ForeignThreadOnAxonCore {
        cpu: u32,
        pid: u32,
        comm: CompactString,
        owner: Owner,
    },
    /// Both SMT threads of one core are Axon cores (REQUIREMENTS §3: never both).
    SiblingsBothAxon { cpu: u32, sibling: u32 },
    /// The idle SMT sibling of an Axon core is given to (or running) a customer workload.
    SiblingOfAxonCoreUsed {
        cpu: u32,
        axon_cpu: u32,
        pid: u32,
        comm: CompactString,
        owner: Owner,
    },
    /// A dataplane NIC sits on a NUMA domain where Axon has no cores.
    NicWithoutAxonCores { numa: u32, nics: Vec<String> },
}

impl Conflict {
    /// The CPU the conflict is about (none for a NUMA-domain conflict).
    pub fn cpu(&self) -> Option<u32> {
        match self {
            Conflict::SharedAxonCore { cpu, .. }
            | Conflict::ForeignThreadOnAxonCore { cpu, .. }
            | Conflict::SiblingsBothAxon { cpu, .. }
            | Conflict::SiblingOfAxonCoreUsed { cpu, .. } => Some(*cpu),
            Conflict::NicWithoutAxonCores { .. } => None,
        }
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::SharedAxonCore {
                cpu,
                pid,
                comm,
                owner,
            } => write!(
                f,
                "cpu{cpu}: Axon core also allowed to {comm} (pid {pid}, {})",
                owner.label()
            ),
            Conflict::ForeignThreadOnAxonCore {
                cpu,
                pid,
                comm,
                owner,
            } => write!(
                f,
                "cpu{cpu}: {comm} (pid {pid}, {}) running on an Axon core",
                owner.label()
            ),
            Conflict::SiblingsBothAxon { cpu, sibling } => write!(
                f,
                "cpu{cpu}: both SMT threads of its core (cpu{cpu}, cpu{sibling}) are Axon cores"
            ),
            Conflict::SiblingOfAxonCoreUsed {
                cpu,
                axon_cpu,
                pid,
                comm,
                owner,
            } => write!(
                f,
                "cpu{cpu}: SMT sibling of Axon core cpu{axon_cpu} used by {comm} (pid {pid}, {})",
                owner.label()
            ),
            Conflict::NicWithoutAxonCores { numa, nics } => write!(
                f,
                "NUMA {numa}: dataplane NIC {} but no Axon cores",
                nics.join(",")
            ),
        }
    }
}

/// The per-CPU summary of a whole host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinning {
    pub cpus: Vec<CpuUse>,
    pub processes: u32,
    pub threads: u32,
    /// Threads allowed on every online CPU (not pinned anywhere).
    pub unpinned_threads: u32,
    /// Processes that vanished or could not be read while walking /proc (normal churn).
    pub skipped: u32,
}

impl Pinning {
    /// The host-wide counts without the per-CPU summaries.
    pub fn clone_counts(&self) -> Pinning {
        Pinning {
            cpus: Vec::new(),
            processes: self.processes,
            threads: self.threads,
            unpinned_threads: self.unpinned_threads,
            skipped: self.skipped,
        }
    }

    pub fn cpu(&self, cpu: u32) -> Option<&CpuUse> {
        self.cpus.iter().find(|c| c.cpu == cpu)
    }

    /// Conflicts visible on single CPUs (see [`node_conflicts`] for the whole node).
    pub fn conflicts(&self) -> Vec<Conflict> {
        self.cpus.iter().flat_map(|c| c.conflicts()).collect()
    }
}

/// Every conflict on a node: those of single CPUs, plus the ones that need the topology
/// and the NICs (REQUIREMENTS §3): both SMT threads of a core given to Axon, the idle
/// sibling of an Axon core given to a job, a dataplane NIC on a NUMA domain without Axon
/// cores. Without Axon cores on the node (not installed) only the per-CPU ones apply.
pub fn node_conflicts(p: &Pinning, t: Option<&Topology>, net: Option<&Network>) -> Vec<Conflict> {
    let mut out = p.conflicts();
    let axon: std::collections::BTreeMap<u32, ContainerRole> = p
        .cpus
        .iter()
        .filter_map(|c| match c.role() {
            CpuRole::Axon { role } => Some((c.cpu, role)),
            _ => None,
        })
        .collect();
    let Some(t) = t else { return out };
    if axon.is_empty() {
        return out;
    }
    for &cpu in axon.keys() {
        let Some(c) = t.cpu(cpu) else { continue };
        for sib in c.siblings.iter().filter(|&s| s != cpu) {
            if axon.contains_key(&sib) {
                // Reported once per core, on the lower-numbered thread.
                if cpu < sib {
                    out.push(Conflict::SiblingsBothAxon { cpu, sibling: sib });
                }
                continue;
            }
            let Some(u) = p.cpu(sib) else { continue };
            let job = |p: &&ProcRef| matches!(p.owner, Owner::SlurmJob { .. });
            let user = u
                .pinned
                .iter()
                .find(job)
                .or_else(|| u.running.iter().filter(|p| p.runnable > 0).find(job));
            if let Some(x) = user {
                out.push(Conflict::SiblingOfAxonCoreUsed {
                    cpu: sib,
                    axon_cpu: cpu,
                    pid: x.pid,
                    comm: x.comm.clone(),
                    owner: x.owner.clone(),
                });
            }
        }
    }
    if let Some(net) = net {
        let axon_numa: std::collections::BTreeSet<u32> = axon
            .keys()
            .filter_map(|&c| t.cpu(c).and_then(|x| x.numa_node))
            .collect();
        let mut by_numa: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
        for nic in net.dataplane() {
            if let Some(n) = nic.numa_node.and_then(|n| u32::try_from(n).ok()) {
                by_numa.entry(n).or_default().push(nic.name.to_string());
            }
        }
        for (numa, nics) in by_numa {
            if !axon_numa.contains(&numa) {
                out.push(Conflict::NicWithoutAxonCores { numa, nics });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, owner: Owner, runnable: u32) -> ProcRef {
        ProcRef {
            pid,
            comm: compact_str::format_compact!("p{pid}"),
            owner,
            threads: 1,
            runnable,
        }
    }

    #[test]
    fn axon_core_shared_with_a_job_is_a_conflict() {
        let c = CpuUse {
            cpu: 19,
            pinned: vec![
                p(
                    1,
                    Owner::Axon {
                        role: ContainerRole::Compute,
                    },
                    1,
                ),
                p(2, Owner::SlurmJob { job_id: 7 }, 0),
            ]
            .into(),
            running: vec![p(2, Owner::SlurmJob { job_id: 7 }, 1)].into(),
            ..Default::default()
        };
        assert_eq!(
            c.role(),
            CpuRole::Axon {
                role: ContainerRole::Compute
            }
        );
        let conflicts = c.conflicts();
        assert_eq!(conflicts.len(), 2);
        assert!(conflicts[1].to_string().contains("running on an Axon core"));
    }

    #[test]
    fn free_and_job_cores_have_no_conflicts() {
        let c = CpuUse {
            cpu: 3,
            running: vec![p(5, Owner::System, 1)].into(),
            ..Default::default()
        };
        assert_eq!(c.role(), CpuRole::Free);
        assert!(c.conflicts().is_empty());
    }

    fn axon(role: ContainerRole) -> Owner {
        Owner::Axon { role }
    }

    /// 2 NUMA domains × 2 cores × 2 SMT threads; siblings are n and n+4.
    fn smt_host() -> Topology {
        use super::super::CpuSet;
        use super::super::topology::{Cpu, NumaNode};
        let mut t = Topology::default();
        for id in 0..8u32 {
            let core = id % 4;
            t.cpus.push(Cpu {
                id,
                core_id: core,
                package_id: 0,
                numa_node: Some(core / 2),
                siblings: CpuSet::from_ids([core, core + 4]),
                online: true,
            });
        }
        t.numa_nodes = vec![
            NumaNode {
                id: 0,
                cpus: CpuSet::parse_list("0-1,4-5").unwrap(),
                ..Default::default()
            },
            NumaNode {
                id: 1,
                cpus: CpuSet::parse_list("2-3,6-7").unwrap(),
                ..Default::default()
            },
        ];
        t
    }

    fn pinned(cpu: u32, owner: Owner) -> CpuUse {
        CpuUse {
            cpu,
            pinned: vec![p(100 + cpu, owner, 1)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn both_smt_threads_of_a_core_given_to_axon_is_a_conflict() {
        let pin = Pinning {
            cpus: vec![
                pinned(1, axon(ContainerRole::Drives)),
                pinned(5, axon(ContainerRole::Compute)),
            ],
            ..Default::default()
        };
        let c = node_conflicts(&pin, Some(&smt_host()), None);
        assert_eq!(c, vec![Conflict::SiblingsBothAxon { cpu: 1, sibling: 5 }]);
        assert!(c[0].to_string().contains("both SMT threads"));
    }

    #[test]
    fn a_job_on_the_idle_sibling_of_an_axon_core_is_a_conflict() {
        let pin = Pinning {
            cpus: vec![
                pinned(1, axon(ContainerRole::Drives)),
                pinned(5, Owner::SlurmJob { job_id: 9 }),
                // A job on a core whose sibling is not Axon's is fine.
                pinned(6, Owner::SlurmJob { job_id: 9 }),
            ],
            ..Default::default()
        };
        let c = node_conflicts(&pin, Some(&smt_host()), None);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].cpu(), Some(5));
        assert!(
            c[0].to_string()
                .contains("SMT sibling of Axon core cpu1 used by p105"),
            "{}",
            c[0]
        );
    }

    #[test]
    fn a_dataplane_nic_on_a_domain_without_axon_cores_is_a_conflict() {
        use super::super::net::test_data::{dataplane_nic, network};
        let nic = |name: &str, numa: i32| {
            let mut n = dataplane_nic(Some(9000));
            n.name = name.into();
            n.numa_node = Some(numa);
            n
        };
        let mut net = network(nic("ens1", 0), None);
        net.nics.push(nic("ens2", 1));
        let pin = Pinning {
            cpus: vec![pinned(0, axon(ContainerRole::Frontend))],
            ..Default::default()
        };
        let c = node_conflicts(&pin, Some(&smt_host()), Some(&net));
        assert_eq!(
            c,
            vec![Conflict::NicWithoutAxonCores {
                numa: 1,
                nics: vec!["ens2".into()]
            }]
        );
        // Without Axon on the node there is nothing to balance.
        assert!(node_conflicts(&Pinning::default(), Some(&smt_host()), Some(&net)).is_empty());
    }

    #[test]
    fn roles_come_from_thread_names() {
        assert_eq!(
            ContainerRole::from_thread_name("axon-compute0"),
            Some(ContainerRole::Compute)
        );
        assert_eq!(ContainerRole::from_thread_name("python3"), None);
    }
}

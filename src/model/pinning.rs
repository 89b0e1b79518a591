//! Who may run, and who last ran, on each CPU: the per-thread affinity of every process
//! (`/proc/*/task/*/status` and `stat`), summarised per CPU and attributed to an owner.

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
    pub comm: String,
    pub owner: Owner,
    /// How many of its threads match (are allowed here / last ran here).
    pub threads: u32,
    /// How many of those threads are runnable (state R) right now.
    pub runnable: u32,
}

/// One CPU's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUse {
    pub cpu: u32,
    /// Processes with a thread whose affinity is restricted (not every online CPU) and
    /// includes this CPU. Kernel per-CPU threads are counted in `kernel_threads` instead.
    pub pinned: Vec<ProcRef>,
    /// Processes with a runnable thread (state R) on this CPU: last ran here, ready to run.
    pub running: Vec<ProcRef>,
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
        comm: String,
        owner: Owner,
    },
    ForeignThreadOnAxonCore {
        cpu: u32,
        pid: u32,
        comm: String,
        owner: Owner,
    },
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
    pub fn cpu(&self, cpu: u32) -> Option<&CpuUse> {
        self.cpus.iter().find(|c| c.cpu == cpu)
    }

    pub fn conflicts(&self) -> Vec<Conflict> {
        self.cpus.iter().flat_map(|c| c.conflicts()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, owner: Owner, runnable: u32) -> ProcRef {
        ProcRef {
            pid,
            comm: format!("p{pid}"),
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
            ],
            running: vec![p(2, Owner::SlurmJob { job_id: 7 }, 1)],
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
            running: vec![p(5, Owner::System, 1)],
            ..Default::default()
        };
        assert_eq!(c.role(), CpuRole::Free);
        assert!(c.conflicts().is_empty());
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

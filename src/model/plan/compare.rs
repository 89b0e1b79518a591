//! What runs against what the plan says: containers on other CPUs or NUMA domains than
//! planned, jobs on planned Axon cores, counts that differ, and the plan's own reasons
//! when it cannot hold. The Cores panel's plan view lists these.

use super::{NodePlan, NoteSeverity, Role};
use crate::model::cpuset::CpuSet;
use crate::model::pinning::{ContainerRole, CpuRole, Pinning};
use crate::model::topology::Topology;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub severity: NoteSeverity,
    pub text: String,
}

fn role_of(r: ContainerRole) -> Role {
    match r {
        ContainerRole::Drives => Role::Drive,
        ContainerRole::Compute => Role::Compute,
        ContainerRole::Frontend => Role::Frontend,
    }
}

/// Who the plan gives a CPU to, in words.
pub fn planned_owner(plan: &NodePlan, cpu: u32) -> &'static str {
    if let Some(c) = plan.containers.iter().find(|c| c.cpus.contains(cpu)) {
        return c.role.as_str();
    }
    if plan.idle_siblings.contains(cpu) {
        "idle (SMT sibling)"
    } else if plan.os_cpus.contains(cpu) {
        "the OS"
    } else {
        "jobs"
    }
}

fn domains(t: &Topology, cpus: &CpuSet) -> BTreeSet<u32> {
    cpus.iter()
        .filter_map(|c| t.cpu(c).and_then(|x| x.numa_node))
        .collect()
}

fn list(d: &BTreeSet<u32>) -> String {
    d.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// Every difference between `plan` and what `pinning` shows runs, worst first.
pub fn compare(plan: &NodePlan, t: &Topology, pinning: Option<&Pinning>) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut push = |severity, text: String| out.push(Difference { severity, text });
    for n in plan
        .notes
        .iter()
        .filter(|n| n.severity >= NoteSeverity::Warning)
    {
        push(n.severity, format!("the plan: {}", n.text));
    }
    let Some(p) = pinning else {
        push(
            NoteSeverity::Info,
            "no pinning data yet: nothing to compare".into(),
        );
        return out;
    };
    let mut running: [CpuSet; 3] = Default::default();
    let mut jobs = CpuSet::new();
    for u in &p.cpus {
        match u.role() {
            CpuRole::Axon { role } => {
                let i = role_of(role) as usize;
                running[i] = running[i].union(&CpuSet::from_ids([u.cpu]));
            }
            CpuRole::SlurmJob { .. } => jobs = jobs.union(&CpuSet::from_ids([u.cpu])),
            _ => {}
        }
    }
    let kept = plan.axon_cpus.union(&plan.idle_siblings);
    let on_axon = jobs.intersection(&kept);
    if !on_axon.is_empty() {
        push(
            NoteSeverity::Infeasible,
            format!(
                "Slurm jobs run on cpu {} that the plan keeps for Axon (CpuSpecList should hold them)",
                on_axon.to_list_string()
            ),
        );
    }
    if running.iter().all(CpuSet::is_empty) {
        push(
            NoteSeverity::Info,
            "no Axon container runs: the plan is what `axon plan --format script` sets up".into(),
        );
        return out;
    }
    for role in Role::ALL {
        let r = &running[role as usize];
        let planned = plan.cpus_of(role);
        if r.is_empty() {
            if !planned.is_empty() {
                push(
                    NoteSeverity::Warning,
                    format!(
                        "{}: none runs; the plan has {} cores ({})",
                        role.as_str(),
                        planned.len(),
                        planned.to_list_string()
                    ),
                );
            }
            continue;
        }
        let (rd, pd) = (domains(t, r), domains(t, &planned));
        if !pd.is_empty() && !rd.is_subset(&pd) {
            push(
                NoteSeverity::Warning,
                format!(
                    "{} runs on NUMA {}; the plan puts it on NUMA {} (its NICs' domains)",
                    role.as_str(),
                    list(&rd),
                    list(&pd)
                ),
            );
        }
        let off = r.difference(&planned);
        if !off.is_empty() {
            let mut owners: Vec<&str> = off.iter().map(|c| planned_owner(plan, c)).collect();
            owners.sort_unstable();
            owners.dedup();
            // On the planned domains only the placement differs; elsewhere a rule does.
            let same_domains = rd.is_subset(&pd);
            push(
                if same_domains {
                    NoteSeverity::Info
                } else {
                    NoteSeverity::Warning
                },
                format!(
                    "{} runs on cpu {}, which the plan gives to {}{}",
                    role.as_str(),
                    off.to_list_string(),
                    owners.join(", "),
                    if same_domains {
                        " (same NUMA domains: placement only)"
                    } else {
                        ""
                    }
                ),
            );
        }
        if r.len() != planned.len() {
            push(
                NoteSeverity::Info,
                format!(
                    "{}: {} cores run, {} planned",
                    role.as_str(),
                    r.len(),
                    planned.len()
                ),
            );
        }
    }
    out.sort_by_key(|d| std::cmp::Reverse(d.severity));
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{host, nics, plan};
    use super::*;
    use crate::model::pinning::{CpuUse, Owner, ProcRef};

    fn pinning(owners: &[(u32, Owner)]) -> Pinning {
        Pinning {
            cpus: (0..32)
                .map(|cpu| CpuUse {
                    cpu,
                    pinned: owners
                        .iter()
                        .filter(|(c, _)| *c == cpu)
                        .map(|(_, o)| ProcRef {
                            pid: 100 + cpu,
                            comm: "x".into(),
                            owner: o.clone(),
                            threads: 1,
                            runnable: 0,
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_on_the_wrong_domain_and_a_job_on_a_planned_core_are_named() {
        let t = host(2, 16, 1, 64);
        let plan = plan(&t, nics(&[Some(1)]), 2);
        let planned_drive = plan.cpus_of(Role::Drive);
        let job_cpu = planned_drive.iter().next().unwrap();
        // Drives run on NUMA 0 (cpus 2, 3); a job sits on a planned drive core.
        let p = pinning(&[
            (
                2,
                Owner::Axon {
                    role: ContainerRole::Drives,
                },
            ),
            (
                3,
                Owner::Axon {
                    role: ContainerRole::Drives,
                },
            ),
            (job_cpu, Owner::SlurmJob { job_id: 7 }),
        ]);
        let d = compare(&plan, &t, Some(&p));
        let texts: Vec<&str> = d.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(d[0].severity, NoteSeverity::Infeasible, "{texts:#?}");
        let job = texts
            .iter()
            .position(|x| x.contains(&format!("Slurm jobs run on cpu {job_cpu}")))
            .expect("the job on a planned core");
        assert_eq!(d[job].severity, NoteSeverity::Infeasible);
        assert!(
            texts
                .iter()
                .any(|x| x.contains("drive runs on NUMA 0; the plan puts it on NUMA 1")),
            "{texts:#?}"
        );
        assert!(
            texts
                .iter()
                .any(|x| x.contains("drive runs on cpu 2-3, which the plan gives to jobs")),
            "{texts:#?}"
        );
        assert!(
            texts.iter().any(|x| x.starts_with("compute: none runs")),
            "{texts:#?}"
        );
    }

    #[test]
    fn what_runs_as_planned_has_no_difference() {
        let t = host(2, 16, 1, 64);
        let plan = plan(&t, nics(&[Some(0), Some(1)]), 2);
        let owners: Vec<(u32, Owner)> = plan
            .containers
            .iter()
            .flat_map(|c| {
                let role = match c.role {
                    Role::Drive => ContainerRole::Drives,
                    Role::Compute => ContainerRole::Compute,
                    Role::Frontend => ContainerRole::Frontend,
                };
                c.cpus.iter().map(move |cpu| (cpu, Owner::Axon { role }))
            })
            .collect();
        let d = compare(&plan, &t, Some(&pinning(&owners)));
        assert!(d.is_empty(), "{d:#?}");
        let none = compare(&plan, &t, Some(&pinning(&[])));
        assert_eq!(none.len(), 1);
        assert!(none[0].text.starts_with("no Axon container runs"));
    }
}

//! Topologies and plans for the planner's unit tests (and the artefacts' and comparison's).

use super::{NodePlan, PlanInput, PlanNic, PlanOptions, plan_node};
use crate::model::cpuset::CpuSet;
use crate::model::topology::{Cpu, Memory, NumaNode, Topology};

/// A host with `domains` NUMA domains of `cores` cores each, SMT with `threads` per
/// core, numbered as Linux does on x86: the first threads of every core first, then
/// their siblings (cpu N and N + cores×domains are siblings).
pub fn host(domains: u32, cores: u32, threads: u32, mem_gib: u64) -> Topology {
    let per_thread = domains * cores;
    let mut cpus = Vec::new();
    for th in 0..threads {
        for d in 0..domains {
            for c in 0..cores {
                let core = d * cores + c;
                let id = th * per_thread + core;
                cpus.push(Cpu {
                    id,
                    core_id: core,
                    package_id: 0,
                    numa_node: Some(d),
                    siblings: CpuSet::from_ids((0..threads).map(|t| t * per_thread + core)),
                    online: true,
                });
            }
        }
    }
    cpus.sort_by_key(|c| c.id);
    let numa_nodes = (0..domains)
        .map(|d| NumaNode {
            id: d,
            cpus: CpuSet::from_ids(cpus.iter().filter(|c| c.numa_node == Some(d)).map(|c| c.id)),
            memory_total_bytes: Some(mem_gib << 30),
            ..Default::default()
        })
        .collect();
    Topology {
        numa_nodes,
        cpus,
        memory: Memory {
            total_bytes: Some((mem_gib << 30) * u64::from(domains)),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn nics(domains: &[Option<u32>]) -> Vec<PlanNic> {
    domains
        .iter()
        .enumerate()
        .map(|(i, d)| PlanNic {
            name: format!("ens{}", i + 1),
            numa: *d,
        })
        .collect()
}

/// The default plan of `t` with these NICs and drives.
pub fn plan(t: &Topology, nics: Vec<PlanNic>, drives: usize) -> NodePlan {
    plan_node(
        &PlanInput {
            topology: t,
            nics,
            drives,
        },
        &PlanOptions::default(),
    )
}

//! slurm.conf and cgroup.conf for nodes that run Axon beside Slurm jobs (REQUIREMENTS.md
//! §5): the seed's settings, and one NodeName line per group of identical nodes whose
//! CpuSpecList keeps the Axon cores (and their SMT siblings) from jobs and from slurmd.

use super::{Artefact, PlannedNode};
use crate::model::hostlist;
use crate::model::plan::slurm::{CGROUP_SETTINGS, NodeLine, SETTINGS};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The line of one planned node, errors naming it.
fn node_line(n: &PlannedNode) -> Result<NodeLine, String> {
    NodeLine::of(n.topology, n.plan).map_err(|e| format!("{}: {e}", n.name))
}

/// slurm.conf and cgroup.conf for `nodes`; `source` says where the facts came from.
pub fn artefacts(nodes: &[PlannedNode], source: &str) -> Result<Vec<Artefact>, String> {
    let mut groups: BTreeMap<NodeLine, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        groups.entry(node_line(n)?).or_default().push(n.name);
    }
    let mut conf = String::new();
    let _ = writeln!(
        conf,
        "# slurm.conf settings for NeuralMesh Axon, made by `axon plan --format slurm`\n\
         # from {source}.\n\
         # Merge them into slurm.conf on the controller and on every node; NodeName\n\
         # changes need slurmctld and slurmd restarted.\n\
         #\n\
         # CpuSpecList lists the CPUs Slurm keeps for the system: here the Axon cores with\n\
         # their SMT siblings. Jobs never get them and, with TaskPluginParam=SlurmdOffSpec,\n\
         # neither do Slurm's own daemons. (The seed's example reads it the other way round,\n\
         # which would hand the Axon cores to jobs.) The ids are Slurm's abstract CPU ids —\n\
         # cores socket by socket, the threads of a core consecutive — not the kernel's; the\n\
         # comment above each NodeName line gives the kernel ids. MemSpecLimit is the Axon\n\
         # memory in MB, kept from jobs (needed with CR_Core_Memory)."
    );
    for (k, v) in SETTINGS {
        let _ = writeln!(conf, "{k}={v}");
    }
    conf.push_str(&super::note_comments(nodes));
    for (line, names) in &groups {
        let names = hostlist::compress(names);
        let _ = writeln!(
            conf,
            "\n# {names}: Axon CPUs {} (kernel ids, with SMT siblings); jobs may use {}",
            if line.kernel_cpus.is_empty() {
                "none"
            } else {
                &line.kernel_cpus
            },
            if line.job_cpus.is_empty() {
                "none"
            } else {
                &line.job_cpus
            }
        );
        let _ = writeln!(conf, "{}", line.render(&names));
    }
    let mut cgroup = String::new();
    let _ = writeln!(
        cgroup,
        "# cgroup.conf settings for NeuralMesh Axon, made by `axon plan --format slurm`:\n\
         # jobs are confined to their cores and memory, so they cannot reach Axon's."
    );
    for (k, v) in CGROUP_SETTINGS {
        let _ = writeln!(cgroup, "{k}={v}");
    }
    Ok(vec![
        Artefact {
            name: "slurm.conf.axon".into(),
            install_to: "merge into /etc/slurm/slurm.conf".into(),
            text: conf,
        },
        Artefact {
            name: "cgroup.conf.axon".into(),
            install_to: "merge into /etc/slurm/cgroup.conf".into(),
            text: cgroup,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpuset::CpuSet;
    use crate::model::plan::testing::{host, nics, plan};

    #[test]
    fn identical_nodes_share_one_line_in_abstract_ids_with_the_siblings() {
        // 1 socket, 2 NUMA domains × 24 cores, SMT on, 256 GiB each.
        let t = host(2, 24, 2, 256);
        let plan = plan(&t, nics(&[Some(0), Some(1)]), 4);
        let names = ["axon001", "axon002", "axon003", "axon007"];
        let nodes: Vec<PlannedNode> = names
            .iter()
            .map(|n| PlannedNode {
                name: n,
                topology: &t,
                plan: &plan,
                network: None,
            })
            .collect();
        let a = artefacts(&nodes, "test").unwrap();
        let conf = &a[0].text;
        for (k, v) in SETTINGS {
            assert!(conf.contains(&format!("\n{k}={v}\n")), "{k}: {conf}");
        }
        let lines: Vec<&str> = conf
            .lines()
            .filter(|l| l.starts_with("NodeName="))
            .collect();
        assert_eq!(lines.len(), 1, "{conf}");
        let l = lines[0];
        assert!(l.starts_with("NodeName=axon[001-003,007] Sockets=1 CoresPerSocket=48 ThreadsPerCore=2 RealMemory=524288 "), "{l}");
        // Axon's kernel CPUs with their siblings, in abstract ids: kernel cpu c and c+48
        // are abstract 2c and 2c+1, so the spec list is pairs of consecutive ids.
        let spec = l
            .split("CpuSpecList=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let spec = CpuSet::parse_list(spec).unwrap();
        let kernel = plan.axon_cpus.union(&plan.idle_siblings);
        assert_eq!(spec.len(), kernel.len());
        for c in plan.axon_cpus.iter() {
            assert!(
                spec.contains(2 * c) && spec.contains(2 * c + 1),
                "cpu{c}: {l}"
            );
        }
        assert!(
            l.ends_with(&format!("MemSpecLimit={}", plan.memory_mib)),
            "{l}"
        );
        assert!(
            a[1].text
                .contains("ConstrainCores=yes\nConstrainRAMSpace=yes\n")
        );
    }
}

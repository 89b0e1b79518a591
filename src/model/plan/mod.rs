//! The core plan of REQUIREMENTS.md §3 as pure functions: how many drive, compute and
//! frontend cores a host gets for its drive count, how they spread over the NUMA domains
//! of its dataplane NICs, and (`node`) which CPUs, NICs and memory each container gets.
//! The checks judge against it; `axon plan` prints it and the artefacts made from it.

mod node;

pub use node::{
    Container, NodePlan, NoteSeverity, PerRole, PlanInput, PlanNic, PlanNote, PlanOptions, Role,
    plan_node,
};

use super::nvme::MAX_SSD_CLASS_GB;
use std::collections::{BTreeMap, BTreeSet};

/// Parameters of the planned deployment that some checks need.
#[derive(Debug, Clone, Copy)]
pub struct PlanParams {
    /// Huge-page memory planned per Axon core (estimate; `--hugepages-per-core-mib`).
    pub hugepages_per_core_bytes: u64,
    /// Largest SSD class accepted, in GB as sold: the seed's "up to 30 TB" admits drives
    /// sold as 30 TB, which are the 30.72 TB class (see `model::nvme::marketed_gb`).
    pub max_ssd_class_gb: u64,
}

impl Default for PlanParams {
    fn default() -> Self {
        PlanParams {
            hugepages_per_core_bytes: 1536 * 1024 * 1024,
            max_ssd_class_gb: MAX_SSD_CLASS_GB,
        }
    }
}

/// The core plan of REQUIREMENTS.md §3 for a given drive count.
pub fn planned_cores(drives: usize) -> (usize, usize, usize) {
    let drive = drives.min(8);
    let compute = (2 * drive).min(16);
    (drive, compute, 12)
}

/// `total` cores spread evenly over `nodes` (the first domains take the remainder).
pub fn spread(total: usize, nodes: &BTreeSet<u32>) -> BTreeMap<u32, usize> {
    let k = nodes.len().max(1);
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, total / k + usize::from(i < total % k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_drive_core_per_drive_up_to_8_two_compute_per_drive_core_and_12_frontend() {
        assert_eq!(planned_cores(0), (0, 0, 12));
        assert_eq!(planned_cores(4), (4, 8, 12));
        assert_eq!(planned_cores(8), (8, 16, 12));
        assert_eq!(planned_cores(12), (8, 16, 12));
    }

    #[test]
    fn cores_spread_evenly_and_the_first_domains_take_the_remainder() {
        let nodes = BTreeSet::from([0, 2, 3]);
        assert_eq!(
            spread(36, &nodes),
            BTreeMap::from([(0, 12), (2, 12), (3, 12)])
        );
        assert_eq!(
            spread(38, &nodes),
            BTreeMap::from([(0, 13), (2, 13), (3, 12)])
        );
        assert!(spread(5, &BTreeSet::new()).is_empty());
    }
}

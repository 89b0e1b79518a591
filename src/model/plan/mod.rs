//! The core plan of REQUIREMENTS.md §3 as pure functions: how many drive, compute and
//! frontend cores a host gets for its drive count, how they spread over the NUMA domains
//! of its dataplane NICs, and (`node`) which CPUs, NICs and memory each container gets.
//! The checks judge against it; `axon plan` prints it and the artefacts made from it.

pub mod compare;
mod node;
pub mod slurm;
#[cfg(test)]
pub mod testing;

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

/// An erasure-coding scheme: stripe width (data), parity, hot spares (in failure domains).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Protection {
    pub stripe_width: usize,
    pub parity: usize,
    pub hot_spares: usize,
}

impl Protection {
    /// The seed's: 16+4 with 2 hot spares.
    pub const SEED: Protection = Protection {
        stripe_width: 16,
        parity: 4,
        hot_spares: 2,
    };

    /// Failure domains (servers) the scheme needs.
    pub fn needs(&self) -> usize {
        self.stripe_width + self.parity + self.hot_spares
    }

    /// Why the scheme breaks WEKA's rules (width 3..16, parity 2..4, width > parity,
    /// width + parity + spares ≤ failure domains), if it does.
    pub fn check(&self, failure_domains: usize) -> Result<(), String> {
        if !(3..=16).contains(&self.stripe_width) {
            return Err(format!(
                "stripe width {} is outside 3..16",
                self.stripe_width
            ));
        }
        if !(2..=4).contains(&self.parity) {
            return Err(format!("parity {} is outside 2..4", self.parity));
        }
        if self.stripe_width <= self.parity {
            return Err(format!(
                "stripe width {} must exceed parity {}",
                self.stripe_width, self.parity
            ));
        }
        if self.needs() > failure_domains {
            return Err(format!(
                "{}+{} with {} hot spares needs {} failure domains; there are {failure_domains}",
                self.stripe_width,
                self.parity,
                self.hot_spares,
                self.needs()
            ));
        }
        Ok(())
    }

    /// The seed's scheme when `failure_domains` hold it; else the nearest that fits,
    /// keeping parity first, then hot spares, then width (with the reason); an error
    /// below 5 failure domains (3+2 is the smallest scheme).
    pub fn for_domains(failure_domains: usize) -> Result<(Protection, Option<String>), String> {
        if Protection::SEED.check(failure_domains).is_ok() {
            return Ok((Protection::SEED, None));
        }
        for parity in [4, 3, 2] {
            for hot_spares in [2, 1, 0] {
                let width = failure_domains.saturating_sub(parity + hot_spares).min(16);
                let p = Protection {
                    stripe_width: width,
                    parity,
                    hot_spares,
                };
                if p.check(failure_domains).is_ok() {
                    return Ok((
                        p,
                        Some(format!(
                            "{failure_domains} servers cannot hold the seed's 16+4 with 2 hot spares (22 needed): {}+{} with {} hot spares instead",
                            p.stripe_width, p.parity, p.hot_spares
                        )),
                    ));
                }
            }
        }
        Err(format!(
            "{failure_domains} servers are too few for any protection scheme: 3+2 needs 5"
        ))
    }
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
    fn protection_is_the_seeds_from_22_servers_and_the_nearest_below() {
        assert_eq!(
            Protection::for_domains(22).unwrap(),
            (Protection::SEED, None)
        );
        assert_eq!(Protection::for_domains(200).unwrap().0, Protection::SEED);
        let (p, why) = Protection::for_domains(8).unwrap();
        assert_eq!((p.stripe_width, p.parity, p.hot_spares), (4, 3, 1));
        assert!(p.check(8).is_ok() && why.unwrap().contains("8 servers cannot hold"));
        assert_eq!(
            Protection::for_domains(12).unwrap().0,
            Protection {
                stripe_width: 6,
                parity: 4,
                hot_spares: 2
            }
        );
        assert!(
            Protection::for_domains(4)
                .unwrap_err()
                .contains("3+2 needs 5")
        );
        for fd in 5..40 {
            let (p, _) = Protection::for_domains(fd).unwrap();
            assert!(p.check(fd).is_ok(), "{fd}: {p:?}");
        }
        assert!(
            Protection {
                stripe_width: 17,
                parity: 4,
                hot_spares: 0
            }
            .check(30)
            .is_err()
        );
        assert!(
            Protection {
                stripe_width: 3,
                parity: 4,
                hot_spares: 0
            }
            .check(30)
            .is_err()
        );
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

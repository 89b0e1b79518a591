//! The planner for one node: from its observed topology, dataplane NICs and drive count to
//! containers with their CPUs, NIC and memory, the CPUs left for the OS and for jobs, and
//! every reason the plan is not the one the rules ask for. Pure: no I/O, no clock.
//!
//! Rules (REQUIREMENTS.md §3, the seed's "NUMA alignment guidelines"):
//! - 1 drive core per NVMe drive (at most 8), 2 compute cores per drive core (at most 16),
//!   12 frontend cores.
//! - Cores only from NUMA domains holding a dataplane NIC, spread evenly over them; each
//!   container's NIC on its own domain.
//! - With SMT on, one thread of an Axon core goes to Axon and its sibling stays idle, kept
//!   from jobs as well.
//! - cpu0's core (with its sibling) is kept for the OS (`reserve_os` cores in all).
//!
//! When the rules cannot all hold, the plan is the nearest one that keeps the hard rules
//! (no CPU twice, never both siblings to Axon, only NIC domains, cpu0 kept) and says why in
//! `notes`: never a silent compromise.

use super::spread;
use crate::model::cpuset::CpuSet;
use crate::model::snapshot::NodeSnapshot;
use crate::model::topology::Topology;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A figure per container role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerRole<T> {
    pub drive: T,
    pub compute: T,
    pub frontend: T,
}

impl<T: Copy> PerRole<T> {
    pub fn get(&self, r: Role) -> T {
        match r {
            Role::Drive => self.drive,
            Role::Compute => self.compute,
            Role::Frontend => self.frontend,
        }
    }

    fn set(&mut self, r: Role, v: T) {
        match r {
            Role::Drive => self.drive = v,
            Role::Compute => self.compute = v,
            Role::Frontend => self.frontend = v,
        }
    }
}

impl PerRole<usize> {
    pub fn total(&self) -> usize {
        self.drive + self.compute + self.frontend
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Drive,
    Compute,
    Frontend,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Drive, Role::Compute, Role::Frontend];

    /// The container name prefix WEKA's install script uses (`drives0`, `compute0`,
    /// `frontend0`).
    pub fn container_prefix(self) -> &'static str {
        match self {
            Role::Drive => "drives",
            Role::Compute => "compute",
            Role::Frontend => "frontend",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Drive => "drive",
            Role::Compute => "compute",
            Role::Frontend => "frontend",
        }
    }
}

/// What the planner may change. The defaults are the seed's and WEKA's published figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// Drives to plan for; None: the NVMe drives the node reports.
    pub drives: Option<usize>,
    /// Frontend cores (12).
    pub frontend_cores: usize,
    /// Compute cores per drive core (2).
    pub compute_per_drive: usize,
    /// At most this many drive cores (8) and compute cores (16).
    pub max_drive_cores: usize,
    pub max_compute_cores: usize,
    /// Whole cores kept for the OS, cpu0's first (1).
    pub reserve_os: usize,
    /// Huge pages per core, MiB: 3 GiB per compute core, 1.5 GiB per drive or frontend
    /// core (the WEKA operator's prerequisites).
    pub hugepages_mib: PerRole<u64>,
    /// Container memory per core, MiB: 3.5 GB per compute core, 2.5 GB per drive or
    /// frontend core (WEKA's bare-metal install script), huge pages included.
    pub memory_mib: PerRole<u64>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            drives: None,
            frontend_cores: 12,
            compute_per_drive: 2,
            max_drive_cores: 8,
            max_compute_cores: 16,
            reserve_os: 1,
            hugepages_mib: PerRole {
                drive: 1536,
                compute: 3072,
                frontend: 1536,
            },
            memory_mib: PerRole {
                drive: 2560,
                compute: 3584,
                frontend: 2560,
            },
        }
    }
}

/// A dataplane NIC as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNic {
    pub name: String,
    /// None: the kernel does not say (numa_node -1).
    pub numa: Option<u32>,
}

/// What the planner reads of a node.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub topology: &'a Topology,
    pub nics: Vec<PlanNic>,
    /// NVMe drives the node reports.
    pub drives: usize,
}

impl<'a> PlanInput<'a> {
    /// From what an agent reports; the error names the section that is missing.
    pub fn from_snapshot(s: &'a NodeSnapshot) -> Result<PlanInput<'a>, String> {
        let topology = s.topology.as_ref().ok_or("no topology reported")?;
        let network = s.network.as_ref().ok_or("no network facts reported")?;
        let nvme = s.nvme.as_ref().ok_or("no NVMe drives reported")?;
        Ok(PlanInput {
            topology,
            nics: network
                .dataplane()
                .map(|n| PlanNic {
                    name: n.name.to_string(),
                    numa: n.numa_node.and_then(|x| u32::try_from(x).ok()),
                })
                .collect(),
            drives: nvme.len(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteSeverity {
    /// A fact worth knowing; the rules hold.
    Info,
    /// The plan holds the rules but departs from what the seed asks of the hardware.
    Warning,
    /// A rule cannot hold on this node: the plan is the nearest one, as the note says.
    Infeasible,
}

/// One reason the plan is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNote {
    pub severity: NoteSeverity,
    /// Which rule: `nics.count`, `nics.numa`, `drives.count`, `cores.capacity`,
    /// `cores.spread`, `cores.os`, `memory.domain`.
    pub rule: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// `drives0`, `compute1`, … (per role, numbered in NUMA order).
    pub name: String,
    pub role: Role,
    pub numa: u32,
    /// The CPUs it is pinned to: one thread per core.
    pub cpus: CpuSet,
    /// Its dataplane NIC, on its own NUMA domain (None when the node has none there).
    pub nic: Option<String>,
    pub memory_mib: u64,
    pub hugepages_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    pub containers: Vec<Container>,
    /// The NUMA domains holding a dataplane NIC (the only ones cores come from).
    pub nic_domains: Vec<u32>,
    /// Cores the rules ask for, and cores planned.
    pub wanted: PerRole<usize>,
    pub planned: PerRole<usize>,
    /// CPUs pinned to Axon (one thread per core).
    pub axon_cpus: CpuSet,
    /// The other threads of the Axon cores (SMT): idle, kept from jobs too.
    pub idle_siblings: CpuSet,
    /// The OS's cores (cpu0's first), all threads.
    pub os_cpus: CpuSet,
    /// What is left for jobs (Slurm, Kubernetes pods).
    pub job_cpus: CpuSet,
    /// Axon's memory in all (containers' memory, huge pages included), MiB.
    pub memory_mib: u64,
    pub hugepages_mib: u64,
    pub notes: Vec<PlanNote>,
}

impl NodePlan {
    /// True when every rule holds (notes may still warn about the hardware).
    pub fn holds(&self) -> bool {
        self.notes
            .iter()
            .all(|n| n.severity < NoteSeverity::Infeasible)
    }

    /// The CPUs kept from jobs: Axon's, their idle siblings and the OS's.
    pub fn reserved_cpus(&self) -> CpuSet {
        self.axon_cpus
            .union(&self.idle_siblings)
            .union(&self.os_cpus)
    }

    /// Where the plan breaks a hard rule on topology `t` (no CPU twice, every container's
    /// CPUs on its own NUMA domain and a NIC domain, never both siblings to Axon and the
    /// idle sibling kept from jobs, cpu0 with the OS, every online CPU accounted for once).
    /// Empty for every plan `plan_node` makes; a plan read from elsewhere may not be.
    pub fn violations(&self, t: &Topology) -> Vec<String> {
        let mut v = Vec::new();
        let mut seen = BTreeSet::new();
        for c in &self.containers {
            if !self.nic_domains.contains(&c.numa) {
                v.push(format!(
                    "{} is on NUMA domain {}, which has no dataplane NIC",
                    c.name, c.numa
                ));
            }
            for cpu in c.cpus.iter() {
                if !seen.insert(cpu) {
                    v.push(format!("cpu{cpu} is given twice"));
                }
                let Some(info) = t.cpu(cpu) else {
                    v.push(format!("{}: cpu{cpu} does not exist", c.name));
                    continue;
                };
                if info.numa_node != Some(c.numa) {
                    v.push(format!(
                        "{}: cpu{cpu} is not on NUMA domain {}",
                        c.name, c.numa
                    ));
                }
                for s in info.siblings.iter().filter(|s| *s != cpu) {
                    if self.axon_cpus.contains(s) {
                        v.push(format!("cpu{cpu} and its sibling cpu{s} both go to Axon"));
                    }
                    if !self.idle_siblings.contains(s) || self.job_cpus.contains(s) {
                        v.push(format!(
                            "cpu{s}, sibling of Axon's cpu{cpu}, is not kept idle"
                        ));
                    }
                }
            }
        }
        if seen.len() != self.axon_cpus.len() {
            v.push("the Axon CPUs are not the containers' CPUs".into());
        }
        if t.cpu(0).is_some_and(|c| c.online) && !self.os_cpus.contains(0) {
            v.push("cpu0 is not kept for the OS".into());
        }
        if !self.axon_cpus.intersection(&self.os_cpus).is_empty() {
            v.push("an OS CPU goes to Axon".into());
        }
        if !self.job_cpus.intersection(&self.reserved_cpus()).is_empty() {
            v.push("a reserved CPU is left for jobs".into());
        }
        if self.job_cpus.len() + self.reserved_cpus().len() != t.online_cpus().len() {
            v.push("the online CPUs are not each the OS's, Axon's, idle or the jobs'".into());
        }
        if self.planned.total() != self.axon_cpus.len() {
            v.push("the planned core counts do not match the Axon CPUs".into());
        }
        v
    }

    /// CPUs of one role, over its containers.
    pub fn cpus_of(&self, role: Role) -> CpuSet {
        self.containers
            .iter()
            .filter(|c| c.role == role)
            .fold(CpuSet::new(), |a, c| a.union(&c.cpus))
    }
}

/// One physical core: its online threads.
#[derive(Debug, Clone)]
struct Core {
    numa: Option<u32>,
    /// Lowest online thread: the one Axon gets.
    primary: u32,
    threads: CpuSet,
}

fn cores_of(t: &Topology) -> Vec<Core> {
    let mut by_core: BTreeMap<(u32, u32), (Option<u32>, Vec<u32>)> = BTreeMap::new();
    for c in t.cpus.iter().filter(|c| c.online) {
        let e = by_core
            .entry((c.package_id, c.core_id))
            .or_insert((c.numa_node, Vec::new()));
        e.1.push(c.id);
    }
    let mut cores: Vec<Core> = by_core
        .into_values()
        .map(|(numa, mut ids)| {
            ids.sort_unstable();
            Core {
                numa,
                primary: ids[0],
                threads: CpuSet::from_ids(ids),
            }
        })
        .collect();
    cores.sort_by_key(|c| c.primary);
    cores
}

fn note(notes: &mut Vec<PlanNote>, severity: NoteSeverity, rule: &str, text: String) {
    notes.push(PlanNote {
        severity,
        rule: rule.to_string(),
        text,
    });
}

fn list(ids: &BTreeSet<u32>) -> String {
    ids.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plans one node. See the module's rules.
pub fn plan_node(inp: &PlanInput, opts: &PlanOptions) -> NodePlan {
    let t = inp.topology;
    let mut notes = Vec::new();
    let cores = cores_of(t);
    let multi = t.numa_nodes.len() > 1;
    let single_domain = t.numa_nodes.first().map(|n| n.id).unwrap_or(0);

    // The OS's cores: cpu0's first, then the lowest.
    let mut os_idx: Vec<usize> = Vec::new();
    if opts.reserve_os > 0 {
        if let Some(i) = cores.iter().position(|c| c.threads.contains(0)) {
            os_idx.push(i);
        } else if !cores.is_empty() {
            note(
                &mut notes,
                NoteSeverity::Info,
                "cores.os",
                format!(
                    "cpu0 is offline: cpu{} (the lowest online CPU) and its siblings are kept for the OS instead",
                    cores[0].primary
                ),
            );
            os_idx.push(0);
        }
        for i in 0..cores.len() {
            if os_idx.len() >= opts.reserve_os {
                break;
            }
            if !os_idx.contains(&i) {
                os_idx.push(i);
            }
        }
    }
    let os_cpus = os_idx
        .iter()
        .fold(CpuSet::new(), |a, &i| a.union(&cores[i].threads));

    // The domains holding a dataplane NIC, and each domain's NICs.
    let mut nic_domains: BTreeSet<u32> = BTreeSet::new();
    let mut nics_on: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for n in &inp.nics {
        let d = match n.numa {
            Some(d) => Some(d),
            None if !multi => Some(single_domain),
            None => {
                note(
                    &mut notes,
                    NoteSeverity::Warning,
                    "nics.numa",
                    format!(
                        "{}: the kernel does not say which NUMA domain it is on (numa_node -1); no cores are planned for it",
                        n.name
                    ),
                );
                None
            }
        };
        if let Some(d) = d {
            nic_domains.insert(d);
            nics_on.entry(d).or_default().push(n.name.clone());
        }
    }
    match inp.nics.len() {
        0 => note(
            &mut notes,
            NoteSeverity::Infeasible,
            "nics.count",
            "no dataplane NIC: cores are planned over every NUMA domain and no container has a NIC; name the NICs with --dataplane-nic".into(),
        ),
        1 => note(
            &mut notes,
            NoteSeverity::Warning,
            "nics.count",
            format!(
                "one dataplane NIC ({}): the seed asks for two per server (no HA); every container uses it",
                inp.nics[0].name
            ),
        ),
        _ => {}
    }
    if inp.nics.len() > 1 && nic_domains.len() == 1 {
        note(
            &mut notes,
            NoteSeverity::Info,
            "nics.numa",
            format!(
                "every dataplane NIC is on NUMA domain {}: all Axon cores are planned there",
                list(&nic_domains)
            ),
        );
    }
    if nic_domains.is_empty() {
        nic_domains = cores.iter().filter_map(|c| c.numa).collect();
        if nic_domains.is_empty() && !cores.is_empty() {
            nic_domains.insert(single_domain);
        }
    }

    // Free cores per planning domain, highest first (the lowest stay next to cpu0 for the
    // OS and jobs).
    let mut free: BTreeMap<u32, Vec<usize>> = nic_domains.iter().map(|d| (*d, vec![])).collect();
    let mut unplaced = 0usize;
    for (i, c) in cores.iter().enumerate().rev() {
        if os_idx.contains(&i) {
            continue;
        }
        let d = match c.numa {
            Some(d) => d,
            None if !multi => single_domain,
            None => {
                unplaced += 1;
                continue;
            }
        };
        if let Some(v) = free.get_mut(&d) {
            v.push(i);
        }
    }
    if unplaced > 0 {
        note(
            &mut notes,
            NoteSeverity::Info,
            "cores.numa",
            format!("{unplaced} cores have no NUMA domain in sysfs and are not planned"),
        );
    }

    // What the rules ask for.
    let drives = opts.drives.unwrap_or(inp.drives);
    if drives == 0 {
        note(
            &mut notes,
            NoteSeverity::Warning,
            "drives.count",
            "no NVMe drives: planned as a client (frontend cores only)".into(),
        );
    } else if ![2, 4, 8].contains(&drives) {
        note(
            &mut notes,
            NoteSeverity::Warning,
            "drives.count",
            format!("{drives} NVMe drives: the seed supports 2, 4 or 8 per server"),
        );
    }
    let drive = drives.min(opts.max_drive_cores);
    if drives > opts.max_drive_cores {
        note(
            &mut notes,
            NoteSeverity::Info,
            "drives.count",
            format!(
                "{drives} drives share {drive} drive cores (at most {} drive cores)",
                opts.max_drive_cores
            ),
        );
    }
    let wanted = PerRole {
        drive,
        compute: (opts.compute_per_drive * drive).min(opts.max_compute_cores),
        frontend: opts.frontend_cores,
    };

    // Fewer cores than the rules ask for: the frontend gives first (down to one core),
    // then compute (down to one per drive core), then the drive cores.
    let capacity: usize = free.values().map(Vec::len).sum();
    let mut planned = wanted;
    if planned.total() > capacity {
        // Frontend down to one core, then compute down to one per drive core.
        for (role, floor) in [
            (Role::Frontend, 1.min(planned.frontend)),
            (Role::Compute, planned.drive.min(planned.compute)),
        ] {
            let over = planned.total().saturating_sub(capacity);
            let have = planned.get(role);
            planned.set(role, have - over.min(have.saturating_sub(floor)));
        }
        // Still over: drive and compute share what is left, half each.
        if planned.total() > capacity {
            planned.frontend = planned.frontend.min(capacity);
            let rest = capacity - planned.frontend;
            planned.drive = planned.drive.min(rest.div_ceil(2));
            planned.compute = planned.compute.min(rest - planned.drive);
        }
        let cut: Vec<String> = Role::ALL
            .iter()
            .filter(|r| planned.get(**r) < wanted.get(**r))
            .map(|r| format!("{} {} → {}", r.as_str(), wanted.get(*r), planned.get(*r)))
            .collect();
        note(
            &mut notes,
            NoteSeverity::Infeasible,
            "cores.capacity",
            format!(
                "{} cores wanted but only {capacity} free on NUMA {} {} (after the OS's): planned {}",
                wanted.total(),
                if nic_domains.len() == 1 {
                    "domain"
                } else {
                    "domains"
                },
                list(&nic_domains),
                cut.join(", ")
            ),
        );
    }

    // Spread each role evenly over the domains; a domain without room passes its share to
    // the domain with the most room left.
    let mut left: BTreeMap<u32, usize> = free.iter().map(|(d, v)| (*d, v.len())).collect();
    let mut per: BTreeMap<(Role, u32), usize> = BTreeMap::new();
    let mut moved: Vec<String> = Vec::new();
    for role in Role::ALL {
        let mut spill = 0usize;
        for (d, share) in spread(planned.get(role), &nic_domains) {
            let room = left.get(&d).copied().unwrap_or(0);
            let take = share.min(room);
            if take > 0 {
                *per.entry((role, d)).or_default() += take;
                *left.get_mut(&d).expect("a planning domain") -= take;
            }
            if share > take {
                spill += share - take;
                moved.push(format!("{} {} from NUMA {d}", share - take, role.as_str()));
            }
        }
        while spill > 0 {
            let Some((&d, _)) = left
                .iter()
                .filter(|(_, r)| **r > 0)
                .max_by_key(|(d, r)| (**r, std::cmp::Reverse(**d)))
            else {
                break;
            };
            *per.entry((role, d)).or_default() += 1;
            *left.get_mut(&d).expect("a planning domain") -= 1;
            spill -= 1;
        }
    }
    if !moved.is_empty() {
        note(
            &mut notes,
            NoteSeverity::Warning,
            "cores.spread",
            format!(
                "not enough free cores on every NIC domain for an even spread: moved {} to the domains with room",
                moved.join(", ")
            ),
        );
    }

    // Pick the cores, drive first, from the top of each domain.
    let mut next: BTreeMap<u32, usize> = BTreeMap::new();
    let mut containers = Vec::new();
    let mut axon_cpus = CpuSet::new();
    let mut idle_siblings = CpuSet::new();
    let mut seq: BTreeMap<Role, usize> = BTreeMap::new();
    for role in Role::ALL {
        for d in &nic_domains {
            let n = per.get(&(role, *d)).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let start = next.entry(*d).or_default();
            let picked = &free[d][*start..*start + n];
            *start += n;
            let cpus = CpuSet::from_ids(picked.iter().map(|&i| cores[i].primary));
            for &i in picked {
                let c = &cores[i];
                axon_cpus = axon_cpus.union(&CpuSet::from_ids([c.primary]));
                idle_siblings =
                    idle_siblings.union(&c.threads.difference(&CpuSet::from_ids([c.primary])));
            }
            let k = seq.entry(role).or_default();
            let nic = nics_on
                .get(d)
                .map(|v| v[*k % v.len()].clone())
                .or_else(|| (inp.nics.len() == 1).then(|| inp.nics[0].name.clone()));
            containers.push(Container {
                name: format!("{}{k}", role.container_prefix()),
                role,
                numa: *d,
                memory_mib: n as u64 * opts.memory_mib.get(role),
                hugepages_mib: n as u64 * opts.hugepages_mib.get(role),
                cpus,
                nic,
            });
            *k += 1;
        }
    }
    let online = t.online_cpus();
    let job_cpus = online
        .difference(&axon_cpus)
        .difference(&idle_siblings)
        .difference(&os_cpus);
    let memory_mib = containers.iter().map(|c| c.memory_mib).sum();
    let hugepages_mib = containers.iter().map(|c| c.hugepages_mib).sum();

    // Memory per domain against what the domain has.
    for d in &nic_domains {
        let want: u64 = containers
            .iter()
            .filter(|c| c.numa == *d)
            .map(|c| c.memory_mib)
            .sum();
        let have = t
            .numa_node(*d)
            .and_then(|n| n.memory_total_bytes)
            .map(|b| b / (1024 * 1024));
        if let Some(have) = have
            && want > have * 9 / 10
        {
            note(
                &mut notes,
                NoteSeverity::Infeasible,
                "memory.domain",
                format!(
                    "the containers on NUMA domain {d} need {want} MiB, more than 90 % of its {have} MiB"
                ),
            );
        }
    }
    NodePlan {
        containers,
        nic_domains: nic_domains.into_iter().collect(),
        wanted,
        planned,
        axon_cpus,
        idle_siblings,
        os_cpus,
        job_cpus,
        memory_mib,
        hugepages_mib,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{host, nics, plan};
    use super::*;

    /// The hard rules, on any plan.
    pub fn assert_hard_rules(t: &Topology, p: &NodePlan) {
        let v = p.violations(t);
        assert!(v.is_empty(), "{v:#?}\n{p:#?}");
    }

    fn even(p: &NodePlan, role: Role) -> bool {
        let mut per: BTreeMap<u32, usize> = p.nic_domains.iter().map(|d| (*d, 0)).collect();
        for c in p.containers.iter().filter(|c| c.role == role) {
            *per.get_mut(&c.numa).unwrap() += c.cpus.len();
        }
        let (lo, hi) = (per.values().min().unwrap(), per.values().max().unwrap());
        hi - lo <= 1
    }

    #[test]
    fn eight_drives_two_nics_on_two_of_four_domains_smt_on() {
        let t = host(4, 24, 2, 128);
        let inp = PlanInput {
            topology: &t,
            nics: nics(&[Some(1), Some(3)]),
            drives: 8,
        };
        let p = plan_node(&inp, &PlanOptions::default());
        assert_hard_rules(&t, &p);
        assert!(p.holds(), "{:#?}", p.notes);
        assert!(p.notes.is_empty(), "{:#?}", p.notes);
        assert_eq!(
            p.planned,
            PerRole {
                drive: 8,
                compute: 16,
                frontend: 12
            }
        );
        assert_eq!(p.nic_domains, vec![1, 3]);
        for role in Role::ALL {
            assert!(even(&p, role), "{role:?}");
        }
        let names: Vec<&str> = p.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "drives0",
                "drives1",
                "compute0",
                "compute1",
                "frontend0",
                "frontend1"
            ]
        );
        let d0 = &p.containers[0];
        assert_eq!((d0.numa, d0.nic.as_deref()), (1, Some("ens1")));
        assert_eq!(
            (p.containers[1].numa, p.containers[1].nic.as_deref()),
            (3, Some("ens2"))
        );
        // 36 Axon threads, their 36 siblings idle, cpu0 and cpu96 for the OS.
        assert_eq!(p.idle_siblings.len(), 36);
        assert_eq!(p.os_cpus, CpuSet::from_ids([0, 96]));
        assert_eq!(p.job_cpus.len(), 192 - 36 - 36 - 2);
        assert_eq!(p.memory_mib, 4 * 2560 * 2 + 8 * 3584 * 2 + 6 * 2560 * 2);
        assert_eq!(p.hugepages_mib, 8 * 1536 + 16 * 3072 + 12 * 1536);
    }

    #[test]
    fn cpu0_is_kept_for_the_os_even_on_the_only_nic_domain() {
        let t = host(1, 48, 1, 256);
        let inp = PlanInput {
            topology: &t,
            nics: nics(&[Some(0), Some(0)]),
            drives: 4,
        };
        let p = plan_node(&inp, &PlanOptions::default());
        assert_hard_rules(&t, &p);
        assert_eq!(p.os_cpus, CpuSet::from_ids([0]));
        assert!(!p.axon_cpus.contains(0));
        assert!(p.idle_siblings.is_empty(), "SMT off: no idle siblings");
        // Two NICs on one domain: containers alternate between them.
        let fe = p
            .containers
            .iter()
            .find(|c| c.role == Role::Frontend)
            .unwrap();
        assert_eq!(fe.nic.as_deref(), Some("ens1"));
        assert!(
            p.notes.iter().any(|n| n.rule == "nics.numa"),
            "{:#?}",
            p.notes
        );
        assert!(p.holds());
    }

    #[test]
    fn one_nic_plans_everything_on_its_domain_and_says_so() {
        let t = host(2, 32, 2, 128);
        let inp = PlanInput {
            topology: &t,
            nics: nics(&[Some(1)]),
            drives: 4,
        };
        let p = plan_node(&inp, &PlanOptions::default());
        assert_hard_rules(&t, &p);
        assert_eq!(p.nic_domains, vec![1]);
        assert!(
            p.containers
                .iter()
                .all(|c| c.numa == 1 && c.nic.as_deref() == Some("ens1"))
        );
        let n = p.notes.iter().find(|n| n.rule == "nics.count").unwrap();
        assert_eq!(n.severity, NoteSeverity::Warning);
        assert!(n.text.contains("two per server"), "{}", n.text);
        assert!(p.holds(), "a warning, not a broken rule");
    }

    #[test]
    fn too_few_cores_on_the_nic_domains_shrinks_the_frontend_first_and_explains() {
        // 2 domains × 8 cores, SMT off, NICs on both: 16 cores, cpu0's kept, 15 free;
        // 8 drives want 8 + 16 + 12 = 36.
        let t = host(2, 8, 1, 64);
        let inp = PlanInput {
            topology: &t,
            nics: nics(&[Some(0), Some(1)]),
            drives: 8,
        };
        let p = plan_node(&inp, &PlanOptions::default());
        assert_hard_rules(&t, &p);
        assert!(!p.holds());
        assert_eq!(
            p.planned,
            PerRole {
                drive: 7,
                compute: 7,
                frontend: 1
            }
        );
        let n = p.notes.iter().find(|n| n.rule == "cores.capacity").unwrap();
        assert_eq!(n.severity, NoteSeverity::Infeasible);
        assert!(
            n.text.contains("36 cores wanted but only 15 free"),
            "{}",
            n.text
        );
    }

    #[test]
    fn an_uneven_domain_passes_its_share_on_and_the_plan_says_so() {
        // NIC domains 0 and 1; domain 0 has 4 cores (one for the OS), domain 1 has 40.
        let mut t = host(2, 40, 1, 128);
        for c in t
            .cpus
            .iter_mut()
            .filter(|c| c.numa_node == Some(0) && c.id >= 4)
        {
            c.online = false;
        }
        let inp = PlanInput {
            topology: &t,
            nics: nics(&[Some(0), Some(1)]),
            drives: 4,
        };
        let p = plan_node(&inp, &PlanOptions::default());
        assert_hard_rules(&t, &p);
        assert_eq!(p.planned, p.wanted, "room on domain 1 for all of it");
        assert_eq!(p.axon_cpus.iter().filter(|c| *c < 4).count(), 3);
        let n = p.notes.iter().find(|n| n.rule == "cores.spread").unwrap();
        assert_eq!(n.severity, NoteSeverity::Warning);
        assert!(p.holds());
    }

    #[test]
    fn three_drives_and_no_drives_are_planned_with_a_reason() {
        let t = host(2, 32, 1, 128);
        let three = plan(&t, nics(&[Some(0), Some(1)]), 3);
        assert_hard_rules(&t, &three);
        assert_eq!(
            three.planned,
            PerRole {
                drive: 3,
                compute: 6,
                frontend: 12
            }
        );
        assert!(three.notes.iter().any(|n| {
            n.text
                .contains("3 NVMe drives: the seed supports 2, 4 or 8")
        }));
        let client = plan(&t, nics(&[Some(0), Some(1)]), 0);
        assert_hard_rules(&t, &client);
        assert_eq!(
            client.planned,
            PerRole {
                drive: 0,
                compute: 0,
                frontend: 12
            }
        );
        assert!(client.containers.iter().all(|c| c.role == Role::Frontend));
    }

    #[test]
    fn twelve_drives_get_eight_drive_cores_and_sixteen_compute() {
        let t = host(2, 32, 1, 128);
        let p = plan(&t, nics(&[Some(0), Some(1)]), 12);
        assert_eq!(
            p.planned,
            PerRole {
                drive: 8,
                compute: 16,
                frontend: 12
            }
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.text.contains("12 drives share 8 drive cores"))
        );
    }

    #[test]
    fn no_nic_is_infeasible_and_a_nic_without_a_domain_is_named() {
        let t = host(2, 16, 1, 64);
        let p = plan(&t, vec![], 2);
        assert_hard_rules(&t, &p);
        assert!(!p.holds());
        assert!(p.containers.iter().all(|c| c.nic.is_none()));
        let q = plan(&t, nics(&[Some(1), None]), 2);
        assert_hard_rules(&t, &q);
        assert_eq!(q.nic_domains, vec![1]);
        assert!(
            q.notes
                .iter()
                .any(|n| n.text.starts_with("ens2: the kernel does not say"))
        );
    }

    #[test]
    fn every_shape_keeps_the_hard_rules() {
        for domains in 1..=8 {
            for threads in [1, 2] {
                for cores in [4, 12, 24] {
                    for drives in [0, 2, 3, 4, 8] {
                        for mask in 1u32..(1 << domains.min(4)) {
                            let t = host(domains, cores, threads, 64);
                            let nic_domains: Vec<Option<u32>> = (0..domains.min(4))
                                .filter(|d| mask & (1 << d) != 0)
                                .map(Some)
                                .collect();
                            let p = plan(&t, nics(&nic_domains), drives);
                            assert_hard_rules(&t, &p);
                            if p.holds() {
                                assert_eq!(p.planned, p.wanted);
                            } else {
                                assert!(
                                    p.notes
                                        .iter()
                                        .any(|n| n.severity == NoteSeverity::Infeasible),
                                    "{p:#?}"
                                );
                            }
                            let spread_note = p.notes.iter().any(|n| n.rule == "cores.spread");
                            if !spread_note {
                                for role in Role::ALL {
                                    assert!(
                                        even(&p, role),
                                        "{domains}×{cores}×{threads} {drives} drives, NICs {nic_domains:?}: {role:?} uneven without a reason"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_broken_plan_is_caught_by_violations() {
        let t = host(2, 8, 2, 64);
        let good = plan(&t, nics(&[Some(0), Some(1)]), 2);
        assert!(good.violations(&t).is_empty());
        // Give a frontend core's sibling to Axon as well, and cpu0.
        let mut bad = good.clone();
        let fe = bad
            .containers
            .iter()
            .position(|c| c.role == Role::Frontend)
            .unwrap();
        let cpu = bad.containers[fe].cpus.iter().next().unwrap();
        let sibling = t
            .cpu(cpu)
            .unwrap()
            .siblings
            .iter()
            .find(|s| *s != cpu)
            .unwrap();
        bad.containers[fe].cpus = bad.containers[fe]
            .cpus
            .union(&CpuSet::from_ids([sibling, 0]));
        let v = bad.violations(&t);
        assert!(v.iter().any(|x| x.contains("both go to Axon")), "{v:#?}");
        assert!(v.iter().any(|x| x.contains("not kept idle")), "{v:#?}");
        assert!(
            v.iter()
                .any(|x| x.contains("cpu0 is not on NUMA domain 1") || x.contains("cpu0")),
            "{v:#?}"
        );
    }
}

//! Judges of a node's Slurm configuration (REQUIREMENTS.md §5), run only when the agent or
//! `axon check` is given slurm.conf (and cgroup.conf): CpuSpecList must hold the Axon
//! CPUs with their SMT siblings (in Slurm's abstract ids), MemSpecLimit the Axon memory
//! under CR_Core_Memory, and the seed's settings must be there.

use super::{CheckInputs, axon_cpus, result, unknown_with};
use crate::model::checks::{CheckResult, CheckStatus};
use crate::model::cpuset::CpuSet;
use crate::model::pinning::{ContainerRole, CpuRole};
use crate::model::plan::slurm::{CGROUP_SETTINGS, CpuMap, NodeLine, OPTIONAL_SETTINGS, SETTINGS};
use crate::model::plan::{PlanInput, PlanNic, PlanOptions, plan_node};
use crate::model::slurmconf::{NodeEntry, SlurmConf};
use crate::model::topology::Topology;

/// What the Slurm checks judge besides the other collectors' sections.
#[derive(Debug, Clone)]
pub struct SlurmFacts {
    /// This host's name (the NodeName line to judge); None when unreadable.
    pub hostname: Option<String>,
    /// slurm.conf, or why it cannot be read (the error names the file and line).
    pub slurm_conf: Result<SlurmConf, SlurmConfError>,
    /// cgroup.conf when one is given.
    pub cgroup_conf: Option<Result<SlurmConf, SlurmConfError>>,
}

/// Why a file could not be judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmConfError {
    /// Not read (missing, permission, too large): nothing is known of it.
    Unreadable(String),
    /// Read, but Slurm would refuse it too (`file:line: why`).
    Invalid(String),
}

const FIX_FILE: &str = "fix the file at the line named (slurmctld and slurmd refuse it too), or pass the right file to --slurm-conf / --cgroup-conf";

/// The Slurm checks, in the catalogue's order.
pub fn checks(f: &SlurmFacts, inp: &CheckInputs) -> Vec<CheckResult> {
    let mut v = vec![cpuspec(f, inp), memspec(f, inp), settings(f)];
    if let Some(c) = &f.cgroup_conf {
        v.push(cgroup(c));
    }
    v
}

/// The result for a file that could not be judged.
fn file_error(id: &str, e: &SlurmConfError, expected: &str) -> CheckResult {
    match e {
        SlurmConfError::Unreadable(why) => unknown_with(
            id,
            why.clone(),
            expected,
            "make the file readable by axon (path, permissions), then re-run",
        ),
        SlurmConfError::Invalid(why) => {
            result(id, CheckStatus::Fail, why.clone(), expected, FIX_FILE)
        }
    }
}

/// What Axon holds on this node, observed when it runs, else planned.
struct AxonNeeds {
    /// Kernel CPUs: Axon's with their SMT siblings.
    cpus: CpuSet,
    /// The Axon memory, MiB.
    memory_mib: u64,
    /// Where the figures come from.
    source: String,
}

fn axon_needs(t: &Topology, inp: &CheckInputs) -> Result<AxonNeeds, String> {
    let pinning = inp.pinning.as_ref().map_err(|e| e.clone())?;
    let running = axon_cpus(pinning);
    let opts = PlanOptions::default();
    if !running.is_empty() {
        let mut cpus = running.clone();
        for c in running.iter() {
            match t.cpu(c) {
                Some(info) => cpus = cpus.union(&info.siblings),
                None => return Err(format!("Axon cpu{c} is not in the topology")),
            }
        }
        let memory_mib = pinning
            .cpus
            .iter()
            .map(|c| match c.role() {
                CpuRole::Axon { role } => opts.memory_mib.get(match role {
                    ContainerRole::Drives => crate::model::plan::Role::Drive,
                    ContainerRole::Compute => crate::model::plan::Role::Compute,
                    ContainerRole::Frontend => crate::model::plan::Role::Frontend,
                }),
                _ => 0,
            })
            .sum();
        let siblings = cpus.difference(&running);
        return Ok(AxonNeeds {
            source: format!(
                "the Axon CPUs observed pinned ({}){}",
                running.to_list_string(),
                if siblings.is_empty() {
                    String::new()
                } else {
                    format!(" with their SMT siblings ({})", siblings.to_list_string())
                }
            ),
            cpus,
            memory_mib,
        });
    }
    let network = inp.network.as_ref().map_err(|e| e.clone())?;
    let drives = inp.nvme.as_ref().map_err(|e| e.clone())?.len();
    let plan = plan_node(
        &PlanInput {
            topology: t,
            nics: network
                .dataplane()
                .map(|n| PlanNic {
                    name: n.name.to_string(),
                    numa: n.numa_node.and_then(|x| u32::try_from(x).ok()),
                })
                .collect(),
            drives,
        },
        &opts,
    );
    if plan.axon_cpus.is_empty() {
        return Err("no Axon process runs and the plan gives Axon no CPU (see `axon plan`)".into());
    }
    Ok(AxonNeeds {
        source: format!(
            "no Axon process runs: judged against the plan (`axon plan`), Axon CPUs {}{}",
            plan.axon_cpus.to_list_string(),
            if plan.idle_siblings.is_empty() {
                String::new()
            } else {
                format!(
                    " with their SMT siblings ({})",
                    plan.idle_siblings.to_list_string()
                )
            }
        ),
        cpus: plan.axon_cpus.union(&plan.idle_siblings),
        memory_mib: plan.memory_mib,
    })
}

/// This host's NodeName line, or the unknown result saying why there is none.
/// The parsed slurm.conf and this host's NodeName line, or the check's result when either
/// is missing.
fn conf_and_line<'a>(
    id: &str,
    f: &'a SlurmFacts,
    expected: &str,
) -> Result<(&'a SlurmConf, &'a NodeEntry), CheckResult> {
    let conf = f
        .slurm_conf
        .as_ref()
        .map_err(|e| file_error(id, e, expected))?;
    Ok((conf, host_line(id, f, conf, expected)?))
}

fn host_line<'a>(
    id: &str,
    f: &'a SlurmFacts,
    conf: &'a SlurmConf,
    expected: &str,
) -> Result<&'a NodeEntry, CheckResult> {
    let Some(host) = &f.hostname else {
        return Err(unknown_with(
            id,
            "this host's name is unreadable (/proc/sys/kernel/hostname, /etc/hostname), so its NodeName line cannot be found",
            expected,
            "make the hostname readable, then re-run",
        ));
    };
    conf.node(host).ok_or_else(|| {
        unknown_with(
            id,
            format!(
                "no NodeName line of {} names {host} ({} NodeName line{} read)",
                conf.files.join(", "),
                conf.nodes.len(),
                if conf.nodes.len() == 1 { "" } else { "s" }
            ),
            expected,
            "add this host's NodeName line (`axon plan --format slurm` prints it), or pass the slurm.conf that has it",
        )
    })
}

pub fn cpuspec(f: &SlurmFacts, inp: &CheckInputs) -> CheckResult {
    const ID: &str = "slurm.cpuspec";
    const EXP: &str = "CpuSpecList of this host's NodeName line holds the Axon CPUs and their SMT siblings, in Slurm's abstract CPU ids";
    let (_, entry) = match conf_and_line(ID, f, EXP) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = match &inp.topology {
        Ok(t) => *t,
        Err(e) => {
            return unknown_with(
                ID,
                e.clone(),
                EXP,
                "make the topology readable, then re-run",
            );
        }
    };
    let map = match CpuMap::of(t) {
        Ok(m) => m,
        Err(e) => {
            return unknown_with(
                ID,
                format!("Slurm's CPU ids of this host: {e}"),
                EXP,
                "bring every CPU online, then re-run",
            );
        }
    };
    let needs = match axon_needs(t, inp) {
        Ok(n) => n,
        Err(e) => {
            return unknown_with(
                ID,
                e,
                EXP,
                "make the Axon CPUs known (pinning, or the NICs and drives the plan needs), then re-run",
            );
        }
    };
    let corrected = || -> String {
        let mut line = match NodeLine::reserving(t, &needs.cpus, needs.memory_mib) {
            Ok(l) => l,
            Err(e) => return format!("(the corrected line cannot be made: {e})"),
        };
        // Keep a larger MemSpecLimit the line already has.
        if let Some(m) = entry
            .get("MemSpecLimit")
            .and_then(|m| m.value.trim().parse::<u64>().ok())
        {
            line.mem_spec_limit_mb = line.mem_spec_limit_mb.max(m);
        }
        let names = f.hostname.as_deref().unwrap_or(&entry.names_text);
        let names = names.split('.').next().unwrap_or(names);
        let others: Vec<&str> = entry
            .params
            .values()
            .filter(|s| {
                ![
                    "sockets",
                    "corespersocket",
                    "threadspercore",
                    "realmemory",
                    "cpuspeclist",
                    "memspeclimit",
                    "corespeccount",
                    "cpus",
                    "procs",
                ]
                .contains(&s.key.to_ascii_lowercase().as_str())
            })
            .map(|s| s.key.as_str())
            .collect();
        format!(
            "for this host, in place of the NodeName line at {}: `{}`{} (Axon CPUs {} in kernel ids); then restart slurmctld and slurmd",
            entry.at,
            line.render(names),
            if others.is_empty() {
                String::new()
            } else {
                format!(", keeping its {}", others.join(", "))
            },
            needs.cpus.to_list_string()
        )
    };
    let Some(spec) = entry.get("CpuSpecList") else {
        let core_count = entry
            .get("CoreSpecCount")
            .map(|c| {
                format!(
                    " (CoreSpecCount={} lets Slurm pick the cores, which need not be Axon's)",
                    c.value
                )
            })
            .unwrap_or_default();
        return result(
            ID,
            CheckStatus::Fail,
            format!(
                "the NodeName line at {} has no CpuSpecList{core_count}: jobs may be given {}",
                entry.at, needs.source
            ),
            EXP,
            corrected(),
        );
    };
    let (abs, kernel) = match CpuSet::parse_list(&spec.value)
        .map_err(|e| e.to_string())
        .and_then(|abs| map.to_kernel(&abs).map(|k| (abs, k)))
    {
        Ok(x) => x,
        Err(e) => {
            return result(
                ID,
                CheckStatus::Fail,
                format!("CpuSpecList={} at {}: {e}", spec.value, spec.at),
                EXP,
                corrected(),
            );
        }
    };
    let missing = needs.cpus.difference(&kernel);
    // A line whose shape is not the host's: said, since Slurm's ids follow the hardware.
    let shape: Vec<String> = [
        ("Sockets", map.shape.sockets),
        ("CoresPerSocket", map.shape.cores_per_socket),
        ("ThreadsPerCore", map.shape.threads_per_core),
    ]
    .iter()
    .filter_map(|(k, have)| {
        let said = entry.get(k)?;
        (said.value.trim().parse::<usize>().ok() != Some(*have))
            .then(|| format!("{k}={} (the host has {have})", said.value))
    })
    .collect();
    let mut observed = format!(
        "CpuSpecList={} at {} (abstract ids) is kernel CPUs {}; needed: {}",
        spec.value,
        spec.at,
        kernel.to_list_string(),
        needs.source
    );
    if !shape.is_empty() {
        observed.push_str(&format!("; the line says {}", shape.join(", ")));
    }
    if missing.is_empty() {
        return result(ID, CheckStatus::Pass, observed, EXP, "");
    }
    // Written as if the ids were the kernel's, the line would have covered them.
    let kernel_reading = if abs.is_superset_of(&needs.cpus) && abs != kernel {
        " — the list holds them as kernel ids, but Slurm reads abstract ids (the threads of a core numbered consecutively)"
    } else {
        ""
    };
    result(
        ID,
        CheckStatus::Fail,
        format!(
            "{observed}: kernel CPUs {} are not reserved, so jobs can be given them{kernel_reading}",
            missing.to_list_string()
        ),
        EXP,
        corrected(),
    )
}

/// Whether a comma-separated Slurm value holds `item` (case-insensitive).
fn has_item(value: &str, item: &str) -> bool {
    value
        .split(',')
        .any(|x| x.trim().eq_ignore_ascii_case(item))
}

/// Settings whose value is a comma-separated list the seed's items must be in.
fn is_list(key: &str) -> bool {
    matches!(
        key,
        "TaskPlugin" | "TaskPluginParam" | "SelectTypeParameters" | "PrologFlags"
    )
}

/// `have` with the items of `want` added; for SelectTypeParameters the consumable
/// resource (CR_CPU, CR_Socket_Memory, …) is replaced, the other flags kept.
fn merged(key: &str, have: &str, want: &str) -> String {
    const RESOURCES: [&str; 7] = [
        "CR_CPU",
        "CR_CPU_Memory",
        "CR_Core",
        "CR_Core_Memory",
        "CR_Socket",
        "CR_Socket_Memory",
        "CR_Memory",
    ];
    let mut items: Vec<&str> = have
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .filter(|x| {
            key != "SelectTypeParameters" || !RESOURCES.iter().any(|r| r.eq_ignore_ascii_case(x))
        })
        .collect();
    for w in want.split(',') {
        if !items.iter().any(|x| x.eq_ignore_ascii_case(w)) {
            items.push(w);
        }
    }
    items.join(",")
}

pub fn memspec(f: &SlurmFacts, inp: &CheckInputs) -> CheckResult {
    const ID: &str = "slurm.memspec";
    const EXP: &str = "with SelectTypeParameters=CR_Core_Memory, MemSpecLimit on this host's NodeName line of at least the Axon memory (MB)";
    let (conf, entry) = match conf_and_line(ID, f, EXP) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let select = conf.get("SelectTypeParameters").map(|s| s.value.clone());
    let memory_consumable = select.as_deref().is_some_and(|v| {
        v.split(',')
            .any(|x| x.trim().to_ascii_lowercase().ends_with("_memory"))
    });
    let needs = inp
        .topology
        .as_ref()
        .map_err(|e| e.clone())
        .and_then(|t| axon_needs(t, inp));
    let need_mib = needs.as_ref().ok().map(|n| n.memory_mib);
    let fix = |what: &str| match need_mib {
        Some(m) => format!(
            "{what} MemSpecLimit={m} on the NodeName line at {} (the Axon memory, MB)",
            entry.at
        ),
        None => format!(
            "{what} MemSpecLimit (the Axon memory, MB; `axon plan` gives it) on the NodeName line at {}",
            entry.at
        ),
    };
    let under = match &select {
        Some(v) => format!("SelectTypeParameters={v}"),
        None => "no SelectTypeParameters".to_string(),
    };
    let Some(limit) = entry.get("MemSpecLimit") else {
        return if memory_consumable {
            result(
                ID,
                CheckStatus::Fail,
                format!(
                    "the NodeName line at {} has no MemSpecLimit under {under}: jobs may be given the Axon memory",
                    entry.at
                ),
                EXP,
                fix("add"),
            )
        } else {
            result(
                ID,
                CheckStatus::Warn,
                format!(
                    "the NodeName line at {} has no MemSpecLimit; memory is not scheduled ({under}), see slurm.settings",
                    entry.at
                ),
                EXP,
                fix("with CR_Core_Memory, add"),
            )
        };
    };
    let Ok(mb) = limit.value.trim().parse::<u64>() else {
        return result(
            ID,
            CheckStatus::Fail,
            format!(
                "MemSpecLimit={} at {}: not a number of MB",
                limit.value, limit.at
            ),
            EXP,
            fix("write"),
        );
    };
    match needs {
        Ok(n) if mb >= n.memory_mib => result(
            ID,
            CheckStatus::Pass,
            format!(
                "MemSpecLimit={mb} at {} under {under}; the Axon memory is {} MB ({})",
                limit.at, n.memory_mib, n.source
            ),
            EXP,
            "",
        ),
        Ok(n) => result(
            ID,
            CheckStatus::Fail,
            format!(
                "MemSpecLimit={mb} at {} is less than the Axon memory, {} MB ({})",
                limit.at, n.memory_mib, n.source
            ),
            EXP,
            fix("raise it to"),
        ),
        Err(e) => unknown_with(
            ID,
            format!(
                "MemSpecLimit={mb} at {}, but the Axon memory is unknown: {e}",
                limit.at
            ),
            EXP,
            "make the Axon CPUs known (pinning, or the NICs and drives the plan needs), then re-run",
        ),
    }
}

pub fn settings(f: &SlurmFacts) -> CheckResult {
    const ID: &str = "slurm.settings";
    const EXP: &str = "the seed's slurm.conf settings: ProctrackType=proctrack/cgroup, TaskPlugin=task/affinity,task/cgroup, TaskPluginParam=SlurmdOffSpec, SelectType=select/cons_tres, SelectTypeParameters=CR_Core_Memory, PrologFlags=Contain (JobAcctGatherType=jobacct_gather/cgroup optional)";
    let conf = match &f.slurm_conf {
        Ok(c) => c,
        Err(e) => return file_error(ID, e, EXP),
    };
    let mut wrong = Vec::new();
    let mut fixes = Vec::new();
    let mut notes = Vec::new();
    for (k, want) in SETTINGS {
        let optional = OPTIONAL_SETTINGS.contains(&k);
        let got = conf.get(k);
        // Lists must hold each wanted item (others may be there too); single values match.
        let ok = got.is_some_and(|g| {
            let v = g.value.trim();
            if is_list(k) {
                want.split(',').all(|w| has_item(v, w))
            } else {
                v.eq_ignore_ascii_case(want)
            }
        });
        if ok {
            continue;
        }
        let what = match got {
            None => format!("{k} missing"),
            Some(g) => format!("{k}={} at {} (want {want})", g.value, g.at),
        };
        if optional {
            notes.push(format!("optional {what}"));
        } else {
            wrong.push(what);
            fixes.push(match got {
                Some(g) if is_list(k) => format!("{k}={}", merged(k, &g.value, want)),
                _ => format!("{k}={want}"),
            });
        }
    }
    let files = conf.files.join(", ");
    if wrong.is_empty() {
        let note = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        return result(
            ID,
            CheckStatus::Pass,
            format!("{files}: the seed's settings are there{note}"),
            EXP,
            "",
        );
    }
    let mut observed = format!("{files}: {}", wrong.join("; "));
    if !notes.is_empty() {
        observed.push_str(&format!("; {}", notes.join("; ")));
    }
    result(
        ID,
        CheckStatus::Fail,
        observed,
        EXP,
        format!(
            "set in slurm.conf on the controller and every node: {}; then restart slurmctld and slurmd",
            fixes.join(" ")
        ),
    )
}

pub fn cgroup(c: &Result<SlurmConf, SlurmConfError>) -> CheckResult {
    const ID: &str = "slurm.cgroup";
    const EXP: &str = "cgroup.conf: ConstrainCores=yes, ConstrainRAMSpace=yes";
    let conf = match c {
        Ok(c) => c,
        Err(e) => return file_error(ID, e, EXP),
    };
    let files = conf.files.join(", ");
    let mut wrong = Vec::new();
    for (k, want) in CGROUP_SETTINGS {
        match conf.get(k) {
            Some(g) if g.value.trim().eq_ignore_ascii_case(want) => {}
            Some(g) => wrong.push(format!("{k}={} at {}", g.value, g.at)),
            None => wrong.push(format!("{k} missing (Slurm's default: no)")),
        }
    }
    if wrong.is_empty() {
        return result(
            ID,
            CheckStatus::Pass,
            format!("{files}: ConstrainCores=yes, ConstrainRAMSpace=yes"),
            EXP,
            "",
        );
    }
    result(
        ID,
        CheckStatus::Fail,
        format!(
            "{files}: {}: jobs are not confined to their cores and memory",
            wrong.join("; ")
        ),
        EXP,
        "set ConstrainCores=yes and ConstrainRAMSpace=yes in cgroup.conf on every node, then restart slurmd",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::slurmconf::{Dialect, parse};

    fn conf(text: &str) -> SlurmConf {
        parse(
            Dialect::SlurmConf,
            "slurm.conf",
            text,
            &mut |p: &str, _: &str| Err(format!("{p}: no includes here")),
        )
        .unwrap()
    }

    fn inputs() -> CheckInputs<'static> {
        CheckInputs {
            topology: Err("topology not collected".into()),
            network: Err("network not collected".into()),
            nvme: Err("nvme not collected".into()),
            pinning: Err("pinning not collected".into()),
            probes: None,
            plan: Default::default(),
        }
    }

    #[test]
    fn without_the_hostname_or_its_line_the_node_checks_are_unknown() {
        let mut f = SlurmFacts {
            hostname: None,
            slurm_conf: Ok(conf("NodeName=n[1-4] CpuSpecList=1\n")),
            cgroup_conf: None,
        };
        let r = cpuspec(&f, &inputs());
        assert_eq!(r.status, CheckStatus::Unknown);
        assert!(r.observed.contains("name is unreadable"), "{}", r.observed);
        f.hostname = Some("n9.example.com".into());
        let r = memspec(&f, &inputs());
        assert_eq!(r.status, CheckStatus::Unknown);
        assert!(
            r.observed.contains("names n9.example.com"),
            "{}",
            r.observed
        );
        // The line found, but no topology: unknown, never pass.
        f.hostname = Some("n2".into());
        let r = cpuspec(&f, &inputs());
        assert_eq!(r.status, CheckStatus::Unknown);
        assert!(
            r.observed.contains("topology not collected"),
            "{}",
            r.observed
        );
    }

    #[test]
    fn memspec_missing_without_memory_scheduling_is_a_warning_and_a_fix_keeps_other_flags() {
        let f = SlurmFacts {
            hostname: Some("n1".into()),
            slurm_conf: Ok(conf(
                "SelectTypeParameters=CR_Core,CR_Pack_Nodes\nNodeName=n1 CpuSpecList=1\n",
            )),
            cgroup_conf: None,
        };
        let r = memspec(&f, &inputs());
        assert_eq!(r.status, CheckStatus::Warn, "{r:#?}");
        let s = settings(&f);
        assert_eq!(s.status, CheckStatus::Fail);
        assert!(
            s.remedy
                .contains("SelectTypeParameters=CR_Pack_Nodes,CR_Core_Memory"),
            "{}",
            s.remedy
        );
        assert!(
            s.observed
                .contains("SelectTypeParameters=CR_Core,CR_Pack_Nodes at slurm.conf:1"),
            "{}",
            s.observed
        );
    }
}

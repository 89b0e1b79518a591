//! Walks every thread on the host (`/proc/<pid>/task/<tid>/{status,stat}`): its allowed
//! CPUs, its state and the CPU it last ran on. Summarises per CPU which processes are
//! pinned there and which are running there (runnable threads), and attributes each to an
//! owner: an Axon container (by thread name), a Slurm job (by cgroup), a kernel thread, or
//! the system.

use super::{CollectError, HostRoot, Problems};
use crate::model::cpuset::CpuSet;
use crate::model::pinning::{ContainerRole, CpuUse, Owner, Pinning, ProcRef};
use std::collections::BTreeMap;

/// At most this many processes are listed per CPU and list; the rest are counted.
pub const MAX_REFS_PER_CPU: usize = 8;

/// Broken or unreadable thread files reported with their path per run, per kind; the rest
/// are counted, so a host with thousands of them does not flood the status line.
const REPORTED_PER_KIND: usize = 3;

fn plural_files(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// What one thread's files say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    pub name: String,
    pub state: char,
    pub allowed: CpuSet,
    pub last_cpu: Option<u32>,
    pub kthread: bool,
}

/// Parses the fields of `/proc/<pid>/task/<tid>/status` that matter here.
pub fn parse_status(text: &str) -> Result<(String, CpuSet, Option<bool>, Option<u32>), String> {
    let mut name = None;
    let mut allowed = None;
    let mut kthread = None;
    let mut ppid = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Name" => name = Some(v.to_string()),
            "Cpus_allowed_list" => {
                allowed =
                    Some(CpuSet::parse_list(v).map_err(|e| format!("Cpus_allowed_list: {e}"))?)
            }
            "Kthread" => kthread = Some(v == "1"),
            "PPid" => ppid = v.parse().ok(),
            _ => {}
        }
    }
    let name = name.ok_or("no Name line")?;
    let allowed = allowed.ok_or("no Cpus_allowed_list line")?;
    Ok((name, allowed, kthread, ppid))
}

/// The fields of `/proc/<pid>/task/<tid>/stat` the walk uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFields {
    /// Field 2, between the first `(` and the last `)`.
    pub comm: String,
    pub state: char,
    pub ppid: Option<u32>,
    /// Field 9, the task's PF_* flags.
    pub flags: Option<u64>,
    /// Field 20: threads in the process.
    pub num_threads: Option<u32>,
    /// Field 39: the CPU it last ran on.
    pub processor: Option<u32>,
}

/// PF_KTHREAD in the flags field: a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Parses a `stat` file fully (see `parse_stat` for the parts every caller needs).
pub fn parse_stat_fields(text: &str) -> Result<StatFields, String> {
    let (state, processor) = parse_stat(text)?;
    let open = text.find('(').ok_or("no `(` before the command name")?;
    let close = text.rfind(')').ok_or("no `)` after the command name")?;
    let comm = text.get(open + 1..close).unwrap_or_default().to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3.
    let field = |n: usize| rest.get(n - 3).copied();
    Ok(StatFields {
        comm,
        state,
        ppid: field(4).and_then(|v| v.parse().ok()),
        flags: field(9).and_then(|v| v.parse().ok()),
        num_threads: field(20).and_then(|v| v.parse().ok()),
        processor,
    })
}

/// Parses `/proc/<pid>/task/<tid>/stat`: the state (field 3) and the CPU last run on
/// (field 39). The command name in field 2 may itself contain spaces and parentheses, so
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Result<(char, Option<u32>), String> {
    let close = text.rfind(')').ok_or("no `)` after the command name")?;
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field 39 is rest[36].
    let state = rest
        .first()
        .and_then(|s| s.chars().next())
        .ok_or("no state field")?;
    let cpu = match rest.get(36) {
        Some(s) => Some(
            s.parse()
                .map_err(|_| format!("processor field `{s}` is not a number"))?,
        ),
        None => None,
    };
    Ok((state, cpu))
}

/// Slurm puts a job's processes in a cgroup path with a `job_<id>` component, in both the
/// v1 (`/slurm/uid_1000/job_42/step_0`) and v2 (`/system.slice/slurmstepd.scope/job_42/…`)
/// layouts.
pub fn slurm_job_from_cgroup(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/')
            .find_map(|c| c.strip_prefix("job_").and_then(|id| id.parse().ok()))
    })
}

#[derive(Default)]
struct Acc {
    comm: String,
    owner: Option<Owner>,
    threads: u32,
    runnable: u32,
}

pub fn collect(
    root: &HostRoot,
    online: &CpuSet,
    problems: &mut Problems,
) -> Result<Pinning, CollectError> {
    let pids: Vec<u32> = root
        .list("/proc")?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    // cpu -> pid -> accumulated refs
    let mut pinned: BTreeMap<u32, BTreeMap<u32, Acc>> = BTreeMap::new();
    let mut running: BTreeMap<u32, BTreeMap<u32, Acc>> = BTreeMap::new();
    let mut kernel_threads: BTreeMap<u32, u32> = BTreeMap::new();
    let mut out = Pinning::default();
    let mut malformed = 0;
    let mut unreadable = 0;
    // A file that vanished belongs to a thread that exited while we walked: churn, not an
    // error. Any other read error (EACCES under hidepid, EIO…) hides a thread whose
    // pinning we then cannot judge, so it is reported, the first few with their path.
    let mut read_failed = |e: CollectError, problems: &mut Problems| {
        if e.is_not_found() {
            return;
        }
        if unreadable < REPORTED_PER_KIND {
            problems.push(e);
        }
        unreadable += 1;
    };

    for pid in pids {
        let base = format!("/proc/{pid}");
        // The main thread's stat says how many threads the process has: a single-threaded
        // one (most of them) needs no listing of its task directory.
        let main_stat_path = format!("{base}/task/{pid}/stat");
        let main_stat = match root.read(&main_stat_path) {
            Ok(t) => Some(t),
            Err(e) if e.is_not_found() => continue, // exited
            Err(_) => None,
        };
        let single = main_stat
            .as_deref()
            .and_then(|t| parse_stat_fields(t).ok())
            .is_some_and(|f| f.num_threads == Some(1));
        let tids: Vec<u32> = if single {
            vec![pid]
        } else {
            match root.list(&format!("{base}/task")) {
                Ok(t) => t.iter().filter_map(|t| t.parse().ok()).collect(),
                Err(e) => {
                    read_failed(e, problems);
                    out.skipped += 1;
                    continue;
                }
            }
        };
        // The process's cgroup (its Slurm job) and name only matter for threads that are
        // pinned or running: read them for those, once, not for every process (most of a
        // host's threads are neither, and these reads were a fifth of a walk's cost).
        let mut job: Option<Option<u64>> = None;
        let mut proc_name: Option<String> = None;
        out.processes += 1;
        for tid in tids {
            let tbase = format!("{base}/task/{tid}");
            let (status_path, stat_path) = (format!("{tbase}/status"), format!("{tbase}/stat"));
            let stat = match main_stat.as_ref().filter(|_| tid == pid) {
                Some(t) => Ok(t.clone()),
                None => root.read(&stat_path),
            };
            let stat = match stat {
                Ok(t) => t,
                Err(e) => {
                    read_failed(e, problems);
                    out.skipped += 1;
                    continue;
                }
            };
            let fields = match parse_stat_fields(&stat) {
                Ok(f) => f,
                Err(detail) => {
                    // The first few broken files are reported with their path; the walk goes on.
                    if malformed < REPORTED_PER_KIND {
                        problems.push(CollectError::malformed(
                            root.display_path(&stat_path),
                            detail,
                        ));
                    }
                    malformed += 1;
                    out.skipped += 1;
                    continue;
                }
            };
            // The allowed CPUs: from the kernel directly where it can say (the real root),
            // otherwise from `status` (its name and kthread flag then come from there too).
            let thread = match root.sys().thread_affinity(tid) {
                Some(Ok(allowed)) => Ok(ThreadInfo {
                    kthread: fields
                        .flags
                        .map_or(pid == 2 || fields.ppid == Some(2), |f| f & PF_KTHREAD != 0),
                    name: fields.comm,
                    state: fields.state,
                    allowed,
                    last_cpu: fields.processor,
                }),
                // The thread exited between its stat and the syscall.
                Some(Err(e)) if e.raw_os_error() == Some(libc::ESRCH) => continue,
                _ => match root.read(&status_path) {
                    Ok(status) => parse_status(&status)
                        .map(|(name, allowed, kthread, ppid)| ThreadInfo {
                            kthread: kthread.unwrap_or(pid == 2 || ppid == Some(2)),
                            name,
                            state: fields.state,
                            allowed,
                            last_cpu: fields.processor,
                        })
                        .map_err(|d| (&status_path, d)),
                    Err(e) => {
                        read_failed(e, problems);
                        out.skipped += 1;
                        continue;
                    }
                },
            };
            let t = match thread {
                Ok(t) => t,
                Err((path, detail)) => {
                    if malformed < REPORTED_PER_KIND {
                        problems.push(CollectError::malformed(root.display_path(path), detail));
                    }
                    malformed += 1;
                    out.skipped += 1;
                    continue;
                }
            };
            out.threads += 1;
            let runnable = u32::from(t.state == 'R');
            let restricted = !t.allowed.is_superset_of(online);
            if !restricted && runnable == 0 {
                out.unpinned_threads += 1;
                continue;
            }
            let owner = if t.kthread {
                Owner::Kernel
            } else if let Some(role) = ContainerRole::from_thread_name(&t.name) {
                Owner::Axon { role }
            } else {
                let job = *job.get_or_insert_with(|| match root.read(&format!("{base}/cgroup")) {
                    Ok(c) => slurm_job_from_cgroup(&c),
                    Err(e) => {
                        read_failed(e, problems);
                        None
                    }
                });
                match job {
                    Some(job_id) => Owner::SlurmJob { job_id },
                    None => Owner::System,
                }
            };
            let proc_name = proc_name
                .get_or_insert_with(|| root.value(&format!("{base}/comm")).unwrap_or_default());
            if !restricted {
                out.unpinned_threads += 1;
            } else if owner == Owner::Kernel {
                for c in t.allowed.iter() {
                    *kernel_threads.entry(c).or_default() += 1;
                }
            } else {
                for c in t.allowed.iter().filter(|c| online.contains(*c)) {
                    bump(&mut pinned, c, pid, proc_name, &owner, &t.name, runnable);
                }
            }
            // Only runnable threads count as running on a CPU: where a sleeping thread
            // last ran is history, changes all the time, and would make the summary
            // churn for nothing.
            if let (Some(c), 1) = (t.last_cpu, runnable) {
                bump(&mut running, c, pid, proc_name, &owner, &t.name, runnable);
            }
        }
    }
    if malformed > REPORTED_PER_KIND {
        problems.push(CollectError::Invalid {
            what: "thread status files".into(),
            detail: format!(
                "{} more malformed files skipped",
                malformed - REPORTED_PER_KIND
            ),
        });
    }
    if unreadable > 0 {
        problems.push(CollectError::Invalid {
            what: "thread files".into(),
            detail: format!(
                "{} unreadable, so those threads are not counted — run the agent as root; where /proc is mounted with hidepid=, also give it the mount's gid= group",
                plural_files(unreadable)
            ),
        });
    }

    out.cpus = online
        .iter()
        .map(|cpu| {
            let (p, p_more) = top_refs(pinned.remove(&cpu));
            let (r, r_more) = top_refs(running.remove(&cpu));
            CpuUse {
                cpu,
                pinned: p.into(),
                running: r.into(),
                pinned_more: p_more,
                running_more: r_more,
                kernel_threads: kernel_threads.get(&cpu).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(out)
}

fn bump(
    map: &mut BTreeMap<u32, BTreeMap<u32, Acc>>,
    cpu: u32,
    pid: u32,
    proc_name: &str,
    owner: &Owner,
    thread_name: &str,
    runnable: u32,
) {
    let acc = map.entry(cpu).or_default().entry(pid).or_default();
    if acc.comm.is_empty() {
        acc.comm = if proc_name.is_empty() {
            thread_name.to_string()
        } else {
            proc_name.to_string()
        };
    }
    // Within one process the most specific owner wins (an Axon thread inside the agent).
    match (&acc.owner, owner) {
        (None, o) => acc.owner = Some(o.clone()),
        (Some(Owner::System), o @ Owner::Axon { .. }) => {
            acc.owner = Some(o.clone());
            acc.comm = thread_name.to_string();
        }
        _ => {}
    }
    acc.threads += 1;
    acc.runnable += runnable;
}

fn owner_rank(o: &Owner) -> u8 {
    match o {
        Owner::Axon { .. } => 0,
        Owner::SlurmJob { .. } => 1,
        Owner::System => 2,
        Owner::Kernel => 3,
    }
}

fn top_refs(m: Option<BTreeMap<u32, Acc>>) -> (Vec<ProcRef>, u32) {
    let Some(m) = m else { return (Vec::new(), 0) };
    let mut v: Vec<ProcRef> = m
        .into_iter()
        .map(|(pid, a)| ProcRef {
            pid,
            comm: a.comm.into(),
            owner: a.owner.unwrap_or(Owner::System),
            threads: a.threads,
            runnable: a.runnable,
        })
        .collect();
    v.sort_by(|a, b| {
        owner_rank(&a.owner)
            .cmp(&owner_rank(&b.owner))
            .then(b.runnable.cmp(&a.runnable))
            .then(b.threads.cmp(&a.threads))
            .then(a.pid.cmp(&b.pid))
    });
    let more = v.len().saturating_sub(MAX_REFS_PER_CPU) as u32;
    v.truncate(MAX_REFS_PER_CPU);
    (v, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_give_name_flags_and_thread_count() {
        let line = "4242 (my (weird) name) R 1 2 3 4 -1 4194560 0 0 0 0 5 6 0 0 20 0 7 0 100 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 19 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let f = parse_stat_fields(line).unwrap();
        assert_eq!(f.comm, "my (weird) name");
        assert_eq!((f.state, f.ppid, f.flags), ('R', Some(1), Some(4194560)));
        assert_eq!((f.num_threads, f.processor), (Some(7), Some(19)));
    }

    /// On this host (the root is /), the walk asks the kernel for each thread's CPUs
    /// instead of reading its `status`: both must say the same.
    #[test]
    fn the_affinity_syscall_agrees_with_status_on_this_host() {
        let me = std::process::id();
        let tids: Vec<u32> = std::fs::read_dir(format!("/proc/{me}/task"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        assert!(!tids.is_empty());
        for tid in tids {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{me}/task/{tid}/status"))
            else {
                continue; // exited meanwhile
            };
            let (name, allowed, kthread, _) = parse_status(&status).unwrap();
            let Ok(by_syscall) = crate::collectors::sys::sched_affinity(tid) else {
                continue;
            };
            assert_eq!(by_syscall, allowed, "thread {tid} ({name})");
            let stat = std::fs::read_to_string(format!("/proc/{me}/task/{tid}/stat")).unwrap();
            let f = parse_stat_fields(&stat).unwrap();
            assert_eq!(f.comm, name);
            assert_eq!(
                f.flags.map(|x| x & PF_KTHREAD != 0),
                Some(kthread.unwrap_or(false))
            );
        }
        let root = HostRoot::open("/").unwrap();
        assert!(
            root.sys().thread_affinity(me).is_some(),
            "the real root asks the kernel"
        );
    }

    #[test]
    fn stat_survives_parentheses_and_spaces_in_names() {
        let line = "4242 (my (weird) name) R 1 2 3 4 -1 4194560 0 0 0 0 5 6 0 0 20 0 1 0 100 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 19 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_eq!(parse_stat(line).unwrap(), ('R', Some(19)));
        assert!(parse_stat("garbage").is_err());
        assert!(parse_stat("1 (x)").is_err());
    }

    #[test]
    fn status_needs_name_and_affinity() {
        let (name, allowed, kt, ppid) =
            parse_status("Name:\tpython3\nPPid:\t7\nKthread:\t0\nCpus_allowed_list:\t19,28-31\n")
                .unwrap();
        assert_eq!(name, "python3");
        assert_eq!(allowed.to_list_string(), "19,28-31");
        assert_eq!(kt, Some(false));
        assert_eq!(ppid, Some(7));
        assert!(
            parse_status("Name:\tx\n")
                .unwrap_err()
                .contains("Cpus_allowed_list")
        );
        assert!(parse_status("Name:\tx\nCpus_allowed_list:\t3-1\n").is_err());
    }

    #[test]
    fn slurm_jobs_are_found_in_v1_and_v2_cgroups() {
        assert_eq!(
            slurm_job_from_cgroup(
                "0::/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0\n"
            ),
            Some(4242)
        );
        assert_eq!(
            slurm_job_from_cgroup("4:cpuset:/slurm/uid_1000/job_17/step_batch\n0::/\n"),
            Some(17)
        );
        assert_eq!(
            slurm_job_from_cgroup("0::/system.slice/ssh.service\n"),
            None
        );
    }
}

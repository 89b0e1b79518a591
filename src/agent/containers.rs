//! The data plane's containers (DATAPLANE.md, "Containers"; the seed's Drives, Compute and
//! Frontend containers): threads named `axon-drives0`, `axon-compute0`, `axon-frontend0`,
//! … — the names the pinning collector knows — one per CPU of the node's core plan
//! (`model::plan`), each pinned to its CPU with sched_setaffinity. The drives container's
//! threads do the chunk reads and writes, the compute container's the erasure coding
//! (`dataplane::offload`), and the frontend container's are the workers of the runtime the
//! object IO (put, get) runs on. On an emulated host nothing is started: the plan is
//! recorded, labelled emulated, and the work runs where it did before.

use crate::dataplane::offload::{Job, Offload};
use crate::model::dataplane::Container;
use crate::model::pinning::ContainerRole;
use crate::model::plan::{NodePlan, Role};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

fn role(r: Role) -> ContainerRole {
    match r {
        Role::Drive => ContainerRole::Drives,
        Role::Compute => ContainerRole::Compute,
        Role::Frontend => ContainerRole::Frontend,
    }
}

/// Pins the calling thread to `cpu`; the error is the kernel's.
fn pin_here(cpu: u32) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write within it (CPU_SET ignores
    // ids beyond CPU_SETSIZE), and sched_setaffinity(0, …) reads it for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        if cpu as usize >= libc::CPU_SETSIZE as usize {
            return Err(format!("cpu{cpu} is beyond CPU_SETSIZE"));
        }
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity(cpu{cpu}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Whether an agent starts its containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// When the core plan holds every rule; otherwise the plan is reported, not started.
    Auto,
    /// The nearest plan, even when it cannot hold.
    Pin,
    Off,
}

/// The running containers: a job queue per role (drives, compute), the frontend runtime,
/// and what to report.
pub struct Containers {
    queues: Mutex<HashMap<ContainerRole, Sender<Job>>>,
    frontend: Option<tokio::runtime::Runtime>,
    report: Vec<Container>,
}

impl Containers {
    /// Starts the containers of `plan` (records them only, when `emulated`).
    pub fn start(plan: &NodePlan, emulated: bool) -> Arc<Containers> {
        let mut report: Vec<Container> = plan
            .containers
            .iter()
            .filter(|c| !c.cpus.is_empty())
            .map(|c| Container {
                name: format!("axon-{}", c.name),
                role: role(c.role).as_str().to_string(),
                cores: c.cpus.iter().collect(),
                threads: Vec::new(),
                emulated,
                problem: None,
            })
            .collect();
        if emulated {
            return Arc::new(Containers {
                queues: Mutex::new(HashMap::new()),
                frontend: None,
                report,
            });
        }
        let (said_tx, said_rx) = channel::<(usize, u32, Result<(), String>)>();
        let mut queues = HashMap::new();
        for r in [ContainerRole::Drives, ContainerRole::Compute] {
            let (tx, rx) = channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let mut any = false;
            for (i, c) in report.iter().enumerate() {
                if c.role != r.as_str() {
                    continue;
                }
                for &cpu in &c.cores {
                    let (rx, said) = (rx.clone(), said_tx.clone());
                    let spawned =
                        std::thread::Builder::new()
                            .name(c.name.clone())
                            .spawn(move || {
                                let _ = said.send((i, tid(), pin_here(cpu)));
                                drop(said);
                                work(&rx);
                            });
                    any |= spawned.is_ok();
                }
            }
            if any {
                queues.insert(r, tx);
            }
        }
        // The frontend container: the workers of a runtime, each named after its
        // container and pinned to one of its CPUs.
        let fronts: Vec<(usize, String, u32)> = report
            .iter()
            .enumerate()
            .filter(|(_, c)| c.role == ContainerRole::Frontend.as_str())
            .flat_map(|(i, c)| c.cores.iter().map(move |&cpu| (i, c.name.clone(), cpu)))
            .collect();
        let frontend = if fronts.is_empty() {
            None
        } else {
            let fronts = Arc::new(fronts);
            let (names, next_name) = (fronts.clone(), Arc::new(AtomicUsize::new(0)));
            let (pins, said) = (fronts.clone(), Mutex::new(said_tx.clone()));
            // Threads may start in another order than they were named: each takes the
            // least-used CPU of the container its name says it belongs to.
            let uses = Mutex::new(vec![0usize; fronts.len()]);
            let built = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(fronts.len())
                .max_blocking_threads(fronts.len())
                .thread_name_fn(move || {
                    let n = next_name.fetch_add(1, Ordering::Relaxed);
                    names[n % names.len()].1.clone()
                })
                .on_thread_start(move || {
                    let me = std::thread::current();
                    let name = me.name().unwrap_or_default();
                    let Some((j, first)) = uses.lock().ok().and_then(|mut u| {
                        let j = (0..pins.len())
                            .filter(|&j| pins[j].1 == name)
                            .min_by_key(|&j| (u[j], j))?;
                        u[j] += 1;
                        Some((j, u[j] == 1))
                    }) else {
                        return;
                    };
                    let (i, _, cpu) = &pins[j];
                    let r = pin_here(*cpu);
                    if first {
                        if let Ok(s) = said.lock() {
                            let _ = s.send((*i, tid(), r));
                        }
                    }
                })
                .enable_all()
                .build();
            match built {
                Ok(rt) => Some(rt),
                Err(e) => {
                    for (i, _, _) in fronts.iter() {
                        report[*i].problem = Some(format!("no runtime: {e}"));
                    }
                    None
                }
            }
        };
        drop(said_tx);
        // Every thread says where it runs (the frontend's as their runtime starts them).
        let want = report.iter().map(|c| c.cores.len()).sum::<usize>();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut got = 0;
        while got < want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok((i, t, r)) = said_rx.recv_timeout(left) else {
                break;
            };
            got += 1;
            report[i].threads.push(t);
            if let (Err(e), None) = (r, &report[i].problem) {
                report[i].problem = Some(format!("{e}: its threads run unpinned"));
            }
        }
        for c in &mut report {
            c.threads.sort_unstable();
        }
        Arc::new(Containers {
            queues: Mutex::new(queues),
            frontend,
            report,
        })
    }

    /// The plan reported but not started: `why` says so on every container.
    pub fn not_started(plan: &NodePlan, why: &str) -> Arc<Containers> {
        let c = Containers::start(plan, true);
        let report = c
            .report
            .iter()
            .map(|x| Container {
                emulated: false,
                problem: Some(why.to_string()),
                ..x.clone()
            })
            .collect();
        Arc::new(Containers {
            queues: Mutex::new(HashMap::new()),
            frontend: None,
            report,
        })
    }

    pub fn report(&self) -> Vec<Container> {
        self.report.clone()
    }

    /// Runs `fut` on the frontend container's threads (here, without one).
    pub async fn frontend<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        match &self.frontend {
            // Aborted if the caller goes away (a client that broke off): the work stops
            // as it would had it run on the caller's task.
            Some(rt) => {
                struct Abort<T>(tokio::task::JoinHandle<T>);
                impl<T> Drop for Abort<T> {
                    fn drop(&mut self) {
                        self.0.abort();
                    }
                }
                let mut h = Abort(rt.spawn(fut));
                (&mut h.0).await.map_err(|e| e.to_string())
            }
            None => Ok(fut.await),
        }
    }
}

/// A drives or compute thread: runs jobs until the queue closes.
fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

impl Offload for Containers {
    fn submit(&self, role: ContainerRole, job: Job) -> Result<(), Job> {
        let q = self.queues.lock().ok().and_then(|q| q.get(&role).cloned());
        match q {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        // Closing the queues ends the threads; the runtime stops without waiting (this
        // may run on another runtime's thread).
        if let Ok(mut q) = self.queues.lock() {
            q.clear();
        }
        if let Some(rt) = self.frontend.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::plan::testing;
    use crate::model::plan::{PlanInput, PlanOptions, plan_node};

    fn plan() -> NodePlan {
        let t = testing::host(1, 2, 1, 8);
        let inp = PlanInput {
            topology: &t,
            nics: testing::nics(&[Some(0)]),
            drives: 1,
        };
        plan_node(&inp, &PlanOptions::default())
    }

    /// The plan's first container, once per (name, role, CPU).
    fn plan_of(containers: &[(&str, Role, u32)]) -> NodePlan {
        let mut p = plan();
        let base = p.containers[0].clone();
        p.containers = containers
            .iter()
            .map(|&(name, role, cpu)| {
                let mut c = base.clone();
                c.name = name.into();
                c.role = role;
                c.cpus = crate::model::CpuSet::from_ids([cpu]);
                c
            })
            .collect();
        p
    }

    /// Work handed to the drives and compute containers runs on their threads, on the
    /// CPU each is pinned to; a role the plan lacks gives the job back.
    #[tokio::test]
    async fn jobs_run_on_the_pinned_threads_of_their_role() {
        use crate::dataplane::offload::run;
        let last = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32 - 1;
        let p = plan_of(&[
            ("drives0", Role::Drive, 0),
            ("compute0", Role::Compute, last),
        ]);
        let c = Containers::start(&p, false);
        let r = c.report();
        assert!(
            r.iter()
                .all(|x| x.problem.is_none() && x.threads.len() == 1),
            "{r:?}"
        );
        let o: Arc<dyn Offload> = c.clone();
        let here = || {
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            (std::thread::current().name().map(str::to_string), cpu)
        };
        for _ in 0..20 {
            let (name, cpu) = run(Some(&o), ContainerRole::Drives, here).await.unwrap();
            assert_eq!((name.as_deref(), cpu), (Some("axon-drives0"), 0));
            let (name, cpu) = run(Some(&o), ContainerRole::Compute, here).await.unwrap();
            assert_eq!((name.as_deref(), cpu), (Some("axon-compute0"), last as i32));
        }
        // No frontend container in this plan: its work runs where it would without one.
        assert!(c.submit(ContainerRole::Frontend, Box::new(|| {})).is_err());
        assert_eq!(c.frontend(async { 7 }).await, Ok(7));
    }

    /// With two frontend containers, every worker thread runs on a CPU of the container
    /// its name says (threads may start in another order than they are named).
    #[tokio::test]
    async fn frontend_workers_run_on_the_cpus_of_the_container_they_are_named_after() {
        let last = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32 - 1;
        let p = plan_of(&[
            ("frontend0", Role::Frontend, 0),
            ("frontend1", Role::Frontend, last),
        ]);
        let want = |name: &str| {
            if name == "axon-frontend0" {
                0
            } else {
                last as i32
            }
        };
        for _ in 0..5 {
            let c = Containers::start(&p, false);
            let r = c.report();
            assert!(
                r.iter()
                    .all(|x| x.problem.is_none() && x.threads.len() == 1),
                "{r:?}"
            );
            let mut seen = std::collections::HashSet::new();
            for _ in 0..200 {
                let (name, cpu) = c
                    .frontend(async {
                        tokio::task::yield_now().await;
                        // SAFETY: sched_getcpu has no preconditions.
                        let cpu = unsafe { libc::sched_getcpu() };
                        (std::thread::current().name().unwrap_or("").to_string(), cpu)
                    })
                    .await
                    .unwrap();
                assert_eq!(cpu, want(&name), "{name} ran on cpu {cpu}");
                seen.insert(name);
            }
            assert!(!seen.is_empty());
        }
    }

    #[test]
    fn an_emulated_host_records_the_plan_and_starts_nothing() {
        let c = Containers::start(&plan(), true);
        let r = c.report();
        assert!(!r.is_empty(), "{r:?}");
        assert!(r.iter().all(|c| c.emulated && c.threads.is_empty()));
        assert!(c.submit(ContainerRole::Drives, Box::new(|| {})).is_err());
    }
}

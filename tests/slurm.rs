//! Real Slurm on this machine, configured by what `axon plan --format slurm` generates for
//! this very host: slurmctld and slurmd (as root, munge for authentication) report the
//! CpuSpecList and MemSpecLimit, and a job's CPUs exclude the Axon cores. Then the seed's
//! inverted reading (CpuSpecList = the CPUs "left for Slurm") is shown handing the Axon
//! cores to jobs: the trap made concrete.
//!
//! Needs slurm-wlm and munge (Debian), root, and munged running (`.ci/run` starts it). CI
//! sets AXON_REQUIRE_SLURM=1 so a missing piece fails; elsewhere the test says what is
//! missing and skips.

mod common;

use axon::model::cpuset::CpuSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn skip_or_fail(why: &str) -> bool {
    assert!(
        std::env::var_os("AXON_REQUIRE_SLURM").is_none(),
        "real Slurm is required (AXON_REQUIRE_SLURM=1): {why}"
    );
    eprintln!("skipped: {why}");
    true
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The interface of the default route (the planner needs a dataplane NIC to plan on).
fn default_nic() -> String {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    routes
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1) == Some("00000000"))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
        .or_else(|| {
            std::fs::read_dir("/sys/class/net")
                .ok()?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .find(|n| n != "lo")
        })
        .expect("a network interface")
}

struct Slurm {
    dir: PathBuf,
    conf: PathBuf,
    node: String,
    daemons: Vec<Child>,
}

impl Drop for Slurm {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Slurm {
    /// slurm.conf for this test: the site's part, then `Include` of the generated file.
    fn new(dir: &Path, node: &str, generated: &Path, cgroup_generated: &Path) -> Slurm {
        for d in ["state", "spool", "log"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let conf = dir.join("slurm.conf");
        let p = |x: &str| dir.join(x).display().to_string();
        std::fs::write(
            &conf,
            format!(
                "ClusterName=axonci\nSlurmctldHost=localhost\nSlurmUser=root\n\
                 SlurmctldPort=26817\nSlurmdPort=26818\nAuthType=auth/munge\n\
                 StateSaveLocation={}\nSlurmdSpoolDir={}\nSlurmctldPidFile={}\nSlurmdPidFile={}\n\
                 SlurmctldLogFile={}\nSlurmdLogFile={}\nReturnToService=2\nMpiDefault=none\n\
                 Include {}\n\
                 PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
                p("state"),
                p("spool"),
                p("slurmctld.pid"),
                p("slurmd.pid"),
                p("log/slurmctld.log"),
                p("log/slurmd.log"),
                generated.display()
            ),
        )
        .unwrap();
        // This machine's cgroups are hybrid: Slurm 22.05's cgroup/v1 works there.
        let plugin = if Path::new("/sys/fs/cgroup/cpuset").is_dir() {
            "cgroup/v1"
        } else {
            "autodetect"
        };
        std::fs::write(
            dir.join("cgroup.conf"),
            format!(
                "CgroupPlugin={plugin}\n{}",
                std::fs::read_to_string(cgroup_generated).unwrap()
            ),
        )
        .unwrap();
        Slurm {
            dir: dir.to_path_buf(),
            conf,
            node: node.to_string(),
            daemons: Vec::new(),
        }
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn start(&mut self) {
        // A fresh controller state and slurmd spool each time, and job ids never used
        // before on this machine: slurmd remembers the credentials of the jobs it ran (a
        // remembered "revoked" job 1 refuses a new job 1), and a job's cgroup left by an
        // earlier run (`…/slurm_<node>/uid_0/job_1`) refuses a new job of that id.
        for d in ["state", "spool"] {
            let _ = std::fs::remove_dir_all(self.dir.join(d));
            std::fs::create_dir_all(self.dir.join(d)).unwrap();
        }
        remove_job_cgroups(&self.node);
        let first_job = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 10_000_000
            * 10
            + 1;
        let conf = std::fs::read_to_string(&self.conf).unwrap();
        let conf: String = conf
            .lines()
            .filter(|l| !l.starts_with("FirstJobId="))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&self.conf, format!("{conf}FirstJobId={first_job}\n")).unwrap();
        let log = |n: &str| std::fs::File::create(self.dir.join("log").join(n)).unwrap();
        let ctld = self
            .cmd("slurmctld")
            .args(["-D", "-i"])
            .stdout(log("ctld.out"))
            .stderr(log("ctld.err"))
            .spawn()
            .expect("slurmctld runs");
        self.daemons.push(ctld);
        std::thread::sleep(Duration::from_millis(500));
        let d = self
            .cmd("slurmd")
            .args(["-D", "-N", &self.node])
            .stdout(log("d.out"))
            .stderr(log("d.err"))
            .spawn()
            .expect("slurmd runs");
        self.daemons.push(d);
        let start = Instant::now();
        loop {
            let out = self
                .cmd("sinfo")
                .args(["-h", "-n", &self.node, "-o", "%T"])
                .output()
                .unwrap();
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "idle" {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "node {} not idle after 60 s (state `{state}`); slurmd: {}\nslurmctld: {}",
                self.node,
                self.log("slurmd.log"),
                self.log("slurmctld.log")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn log(&self, name: &str) -> String {
        let s = std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// slurmd gets SIGTERM, as systemd stops it (it then cleans up its jobs' cgroups),
    /// and SIGKILL after 10 s; slurmctld keeps nothing worth a clean stop here.
    fn stop(&mut self) {
        let mut daemons: Vec<Child> = self.daemons.drain(..).collect();
        if daemons.len() == 2 {
            let mut d = daemons.pop().expect("slurmd");
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(d.id() as i32, libc::SIGTERM);
            }
            let start = Instant::now();
            while d.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        for mut c in daemons {
            let _ = c.kill();
            let _ = c.wait();
        }
        remove_job_cgroups(&self.node);
    }

    /// The CPUs a one-task job may run on.
    fn job_cpus(&self) -> CpuSet {
        let out = self
            .cmd("srun")
            .args([
                "-N1",
                "-n1",
                "-t",
                "1",
                "grep",
                "Cpus_allowed_list",
                "/proc/self/status",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "srun failed: {}{}\nslurmd: {}",
            text,
            String::from_utf8_lossy(&out.stderr),
            self.log("slurmd.log")
        );
        let list = text.split(':').nth(1).expect("Cpus_allowed_list: …").trim();
        CpuSet::parse_list(list).unwrap()
    }

    fn show_node(&self) -> String {
        let out = self
            .cmd("scontrol")
            .args(["show", "node", &self.node])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Removes the empty cgroups Slurm left for this node's jobs (every controller of the v1
/// hierarchy and the unified one), deepest first; busy ones stay.
fn remove_job_cgroups(node: &str) {
    fn rm(dir: &Path) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            for base in [e.path(), Path::new("/sys/fs/cgroup").to_path_buf()] {
                let d = base.join(format!("slurm_{node}"));
                if d.is_dir() {
                    rm(&d);
                }
            }
        }
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {line}"))
}

#[test]
fn slurm_keeps_the_planned_axon_cores_from_jobs_and_the_seeds_inverted_line_does_not() {
    if !have("slurmctld") || !have("slurmd") || !have("srun") {
        skip_or_fail("slurmctld, slurmd or srun not installed (apt install slurm-wlm)");
        return;
    }
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        skip_or_fail("slurmd must run as root here");
        return;
    }
    let munge_ok = Command::new("munge")
        .arg("-n")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !munge_ok {
        skip_or_fail(
            "munged is not running (start it: mkdir -p /run/munge; chown munge: /run/munge; runuser -u munge -- munged)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gen_dir = dir.path().join("gen");
    let nic = default_nic();
    // This CI machine has 2 CPUs and no NVMe: a client with one frontend core is what
    // fits (cpu0's core stays with the OS); on a bigger machine the same flags plan more.
    let plan_args = [
        "plan",
        "--dataplane-nic",
        &nic,
        "--drives",
        "0",
        "--frontend-cores",
        "1",
    ];
    let mut args = plan_args.to_vec();
    args.extend(["--format", "slurm", "--out", gen_dir.to_str().unwrap()]);
    let (code, out, err) = common::process::run(&args, Duration::from_secs(30));
    assert!(code <= 1, "the plan holds (exit {code}): {out}{err}");
    let mut args = plan_args.to_vec();
    args.extend(["--format", "json"]);
    let (_, json, _) = common::process::run(&args, Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let node = v["nodes"][0]["node"].as_str().unwrap().to_string();
    let axon =
        CpuSet::parse_list(v["nodes"][0]["slurm_cpu_spec_kernel_ids"].as_str().unwrap()).unwrap();
    assert!(!axon.is_empty(), "some CPU is planned for Axon: {json}");
    let generated = gen_dir.join("slurm.conf.axon");
    let text = std::fs::read_to_string(&generated).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("NodeName="))
        .unwrap()
        .to_string();
    assert_eq!(field(&line, "NodeName"), node);
    let spec = field(&line, "CpuSpecList").to_string();
    let mem = field(&line, "MemSpecLimit").to_string();
    // slurmctld reaches slurmd at the node's name; where this machine's name does not
    // resolve, the line gets this machine's address (nothing else of it changes).
    let resolves = std::net::ToSocketAddrs::to_socket_addrs(&(node.as_str(), 0)).is_ok();
    if !resolves {
        std::fs::write(
            &generated,
            text.replace(&line, &format!("{line} NodeAddr=127.0.0.1")),
        )
        .unwrap();
    }

    let mut slurm = Slurm::new(
        dir.path(),
        &node,
        &generated,
        &gen_dir.join("cgroup.conf.axon"),
    );
    slurm.start();
    let shown = slurm.show_node();
    assert!(
        shown.contains(&format!("CPUSpecList={spec}"))
            && shown.contains(&format!("MemSpecLimit={mem}")),
        "scontrol show node reports the plan's CpuSpecList={spec} MemSpecLimit={mem}:\n{shown}"
    );
    let slurmd_log = std::fs::read_to_string(dir.path().join("log/slurmd.log")).unwrap();
    assert!(
        slurmd_log.contains(&format!(
            "Reserved machine CPU IDs: {}",
            axon.to_list_string()
        )),
        "slurmd maps the abstract ids to the Axon kernel CPUs {axon}:\n{slurmd_log}"
    );
    let jobs = slurm.job_cpus();
    assert!(!jobs.is_empty());
    assert!(
        jobs.intersection(&axon).is_empty(),
        "a job got Axon CPUs: job {jobs}, Axon {axon}"
    );
    slurm.stop();

    // The seed's reading: CpuSpecList = every CPU but Axon's ("cores left for Slurm").
    let cpus: u32 = ["Sockets", "CoresPerSocket", "ThreadsPerCore"]
        .iter()
        .map(|k| field(&line, k).parse::<u32>().unwrap())
        .product();
    let spec_set = CpuSet::parse_list(&spec).unwrap();
    let inverted = CpuSet::from_ids((0..cpus).filter(|c| !spec_set.contains(*c)));
    let seed_line = line.replace(
        &format!("CpuSpecList={spec}"),
        &format!("CpuSpecList={}", inverted.to_list_string()),
    );
    let seed_line = if resolves {
        seed_line
    } else {
        format!("{seed_line} NodeAddr=127.0.0.1")
    };
    let seed_file = dir.path().join("slurm.conf.seed");
    std::fs::write(&seed_file, text.replace(&line, &seed_line)).unwrap();
    let conf = std::fs::read_to_string(&slurm.conf).unwrap();
    std::fs::write(
        &slurm.conf,
        conf.replace(
            &generated.display().to_string(),
            &seed_file.display().to_string(),
        ),
    )
    .unwrap();
    slurm.start();
    let jobs = slurm.job_cpus();
    assert!(
        jobs.is_superset_of(&axon) && !jobs.is_empty(),
        "with the seed's inverted CpuSpecList jobs run on the Axon CPUs: job {jobs}, Axon {axon}"
    );
}

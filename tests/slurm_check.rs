//! `axon check --slurm-conf FILE [--cgroup-conf FILE]` (issue 9 item 3): the Slurm checks
//! on the fixture hosts, through the collectors as the agent runs them and through the
//! real binary. amd-epyc-4numa runs Axon (pinned to 1-18,48-65, SMT off); intel-2s-smt
//! runs none (judged against the plan) and has SMT on, so Slurm's abstract CPU ids are
//! not the kernel's there.

mod common;

use axon::collectors::slurm::SlurmFiles;
use axon::model::checks::{CheckResult, CheckStatus};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The seed's settings, as its slurm.conf has them.
const SEED_SETTINGS: &str = "ProctrackType=proctrack/cgroup\n\
    TaskPlugin=task/affinity,task/cgroup\n\
    TaskPluginParam=SlurmdOffSpec\n\
    SelectType=select/cons_tres\n\
    SelectTypeParameters=CR_Core_Memory\n\
    PrologFlags=Contain\n\
    JobAcctGatherType=jobacct_gather/cgroup\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The Slurm checks of fixture `host`, run as the agent runs its checks collector.
fn slurm_checks(host: &str, conf: &Path, cgroup: Option<&Path>) -> Vec<CheckResult> {
    let mut cfg = common::collect_config();
    cfg.slurm = Some(SlurmFiles {
        slurm_conf: conf.to_path_buf(),
        cgroup_conf: cgroup.map(Path::to_path_buf),
    });
    let state = common::collect_all(&common::root(host), &cfg);
    state
        .snapshot()
        .checks
        .expect("checks collected")
        .into_iter()
        .filter(|r| r.id.starts_with("slurm."))
        .collect()
}

fn get<'a>(rs: &'a [CheckResult], id: &str) -> &'a CheckResult {
    rs.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no {id} in {rs:#?}"))
}

fn axon(args: &[&str]) -> (i32, String, String) {
    common::process::run(args, std::time::Duration::from_secs(60))
}

#[test]
fn the_seeds_inverted_cpuspeclist_fails_with_the_corrected_line_as_remedy() {
    let d = tempfile::tempdir().unwrap();
    // The seed's shape: its settings, and a node line whose CpuSpecList lists the CPUs
    // "for Slurm" — everything but the Axon cores and cpu0 — the opposite of Slurm's
    // meaning (the CPUs kept *from* jobs).
    let conf = write(
        d.path(),
        "slurm.conf",
        &format!(
            "ClusterName=axon\nSlurmctldHost=head01\n{SEED_SETTINGS}\
             NodeName=axon-amd01 CPUs=96 Sockets=1 CoresPerSocket=96 ThreadsPerCore=1 \\\n\
             \x20   RealMemory=786432 CpuSpecList=19-47,66-95 MemSpecLimit=108544 State=UNKNOWN\n\
             PartitionName=batch Nodes=ALL Default=YES\n"
        ),
    );
    let rs = slurm_checks("amd-epyc-4numa", &conf, None);
    assert_eq!(
        rs.len(),
        3,
        "no slurm.cgroup without --cgroup-conf: {rs:#?}"
    );
    let c = get(&rs, "slurm.cpuspec");
    assert_eq!(c.status, CheckStatus::Fail, "{c:#?}");
    assert!(
        c.observed
            .contains("kernel CPUs 1-18,48-65 are not reserved"),
        "{}",
        c.observed
    );
    assert!(
        c.observed.contains("slurm.conf:10"),
        "the line: {}",
        c.observed
    );
    // The corrected line: the generator's renderer, the observed Axon CPUs (SMT off: the
    // abstract ids are the kernel's here).
    assert!(
        c.remedy.contains(
            "`NodeName=axon-amd01 Sockets=1 CoresPerSocket=96 ThreadsPerCore=1 RealMemory=786432 CpuSpecList=1-18,48-65 MemSpecLimit=108544`"
        ),
        "{}",
        c.remedy
    );
    assert!(c.remedy.contains("keeping its State"), "{}", c.remedy);
    // The rest of the seed's configuration is right.
    assert_eq!(get(&rs, "slurm.memspec").status, CheckStatus::Pass);
    assert_eq!(get(&rs, "slurm.settings").status, CheckStatus::Pass);

    // /metrics carries them like every other check.
    let mut cfg = common::collect_config();
    cfg.slurm = Some(SlurmFiles {
        slurm_conf: d.path().join("slurm.conf"),
        cgroup_conf: None,
    });
    let snap = common::collect_all(&common::root("amd-epyc-4numa"), &cfg).snapshot();
    let text = axon::agent::exporter::render(&snap, 1_800_000_000_000, false);
    let line = text
        .lines()
        .find(|l| l.contains("check=\"slurm.cpuspec\"") && l.contains("status=\"fail\""))
        .unwrap_or_else(|| panic!("no slurm.cpuspec in /metrics:\n{text}"));
    assert!(line.ends_with(" 1.0"), "{line}");

    // The corrected line, put in its place, passes.
    let fixed = c.remedy.split('`').nth(1).unwrap();
    let conf = write(d.path(), "fixed.conf", &format!("{SEED_SETTINGS}{fixed}\n"));
    let rs = slurm_checks("amd-epyc-4numa", &conf, None);
    for r in &rs {
        assert_eq!(r.status, CheckStatus::Pass, "{r:#?}");
    }
}

#[test]
fn on_smt_the_line_axon_plan_generates_passes_and_kernel_ids_written_as_abstract_fail() {
    let d = tempfile::tempdir().unwrap();
    let host = common::fixture("intel-2s-smt");
    let (code, _, err) = axon(&[
        "plan",
        "--host-root",
        host.to_str().unwrap(),
        "--format",
        "slurm",
        "--out",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let conf = d.path().join("slurm.conf.axon");
    let cgroup = d.path().join("cgroup.conf.axon");
    let rs = slurm_checks("intel-2s-smt", &conf, Some(&cgroup));
    assert_eq!(rs.len(), 4);
    for r in &rs {
        assert_eq!(r.status, CheckStatus::Pass, "{r:#?}");
    }
    let c = get(&rs, "slurm.cpuspec");
    assert!(
        c.observed
            .contains("no Axon process runs: judged against the plan"),
        "{}",
        c.observed
    );

    // The same CPUs written in kernel ids, as if Slurm read those: on this SMT host
    // abstract id 2k is kernel cpu k's core's first thread, so most of them miss.
    let text = std::fs::read_to_string(&conf).unwrap();
    let line = text.lines().find(|l| l.starts_with("NodeName=")).unwrap();
    let kernel = text
        .lines()
        .find_map(|l| l.split("Axon CPUs ").nth(1))
        .and_then(|l| l.split(' ').next())
        .unwrap();
    assert_eq!(kernel, "44-55,100-111,156-167,212-223");
    let spec = line
        .split(' ')
        .find_map(|w| w.strip_prefix("CpuSpecList="))
        .unwrap();
    assert_eq!(
        spec, "88-111,200-223",
        "abstract ids differ from the kernel's"
    );
    let wrong = write(
        d.path(),
        "kernel-ids.conf",
        &text.replace(
            &format!("CpuSpecList={spec}"),
            &format!("CpuSpecList={kernel}"),
        ),
    );
    let rs = slurm_checks("intel-2s-smt", &wrong, None);
    let c = get(&rs, "slurm.cpuspec");
    assert_eq!(c.status, CheckStatus::Fail, "{c:#?}");
    assert!(
        c.observed.contains("Slurm reads abstract ids"),
        "{}",
        c.observed
    );
    assert!(c.remedy.contains(line), "{}\n{line}", c.remedy);

    // The seed's literal node line on this ThreadsPerCore=2 host: abstract 47 and 95 are
    // the second threads of cores 23 and 47 (kernel 135 and 159), not Axon's cores.
    let seed = write(
        d.path(),
        "seed.conf",
        &text.replace(&format!("CpuSpecList={spec}"), "CpuSpecList=47,95"),
    );
    let c = get(&slurm_checks("intel-2s-smt", &seed, None), "slurm.cpuspec").clone();
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(
        c.observed.contains("is kernel CPUs 135,159;"),
        "{}",
        c.observed
    );
}

#[test]
fn a_missing_memspeclimit_and_missing_settings_are_named() {
    let d = tempfile::tempdir().unwrap();
    let conf = write(
        d.path(),
        "slurm.conf",
        "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory,CR_CORE_DEFAULT_DIST_BLOCK\n\
         TaskPlugin=task/affinity\nPrologFlags=X11\n\
         NodeName=DEFAULT RealMemory=786432\n\
         NodeName=axon-amd[01-04] ThreadsPerCore=2 CpuSpecList=1-18,48-65\n",
    );
    let cgroup = write(
        d.path(),
        "cgroup.conf",
        "ConstrainCores=yes\nConstrainRAMSpace=no\n",
    );
    let rs = slurm_checks("amd-epyc-4numa", &conf, Some(&cgroup));
    let c = get(&rs, "slurm.cpuspec");
    assert_eq!(c.status, CheckStatus::Pass);
    assert!(
        c.observed
            .contains("the line says ThreadsPerCore=2 (the host has 1)"),
        "{}",
        c.observed
    );
    let m = get(&rs, "slurm.memspec");
    assert_eq!(m.status, CheckStatus::Fail, "{m:#?}");
    assert!(m.observed.contains("no MemSpecLimit"), "{}", m.observed);
    assert!(m.remedy.contains("MemSpecLimit=108544"), "{}", m.remedy);
    let s = get(&rs, "slurm.settings");
    assert_eq!(s.status, CheckStatus::Fail);
    for missing in [
        "ProctrackType missing",
        "TaskPluginParam missing",
        "TaskPlugin=task/affinity at",
        "PrologFlags=X11 at",
        "optional JobAcctGatherType missing",
    ] {
        assert!(s.observed.contains(missing), "{missing}: {}", s.observed);
    }
    assert!(
        !s.observed.contains("SelectType"),
        "SelectTypeParameters holds CR_Core_Memory: {}",
        s.observed
    );
    for fix in [
        "TaskPlugin=task/affinity,task/cgroup",
        "PrologFlags=X11,Contain",
        "ProctrackType=proctrack/cgroup",
    ] {
        assert!(s.remedy.contains(fix), "{fix}: {}", s.remedy);
    }
    let g = get(&rs, "slurm.cgroup");
    assert_eq!(g.status, CheckStatus::Fail);
    assert!(
        g.observed.contains("ConstrainRAMSpace=no"),
        "{}",
        g.observed
    );
}

#[test]
fn includes_resolve_beside_the_file_and_a_host_without_a_line_is_unknown() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("conf.d")).unwrap();
    write(
        &d.path().join("conf.d"),
        "nodes.conf",
        "NodeName=axon-amd01 RealMemory=786432 CpuSpecList=1-18,48-65 MemSpecLimit=200000\n",
    );
    let conf = write(
        d.path(),
        "slurm.conf",
        &format!("{SEED_SETTINGS}include conf.d/nodes.conf\n"),
    );
    let rs = slurm_checks("amd-epyc-4numa", &conf, None);
    let c = get(&rs, "slurm.cpuspec");
    assert_eq!(c.status, CheckStatus::Pass, "{c:#?}");
    assert!(c.observed.contains("conf.d/nodes.conf:1"), "{}", c.observed);
    assert_eq!(get(&rs, "slurm.memspec").status, CheckStatus::Pass);
    // The same file on another host: no line names it.
    let rs = slurm_checks("intel-2s-smt", &conf, None);
    let c = get(&rs, "slurm.cpuspec");
    assert_eq!(c.status, CheckStatus::Unknown, "{c:#?}");
    assert!(c.observed.contains("names axon-intel01"), "{}", c.observed);
}

#[test]
fn junk_huge_unknown_and_unreadable_files_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let mut junk = b"ClusterName=x\n".to_vec();
    junk.extend((0..=255u8).cycle().take(4096));
    let junk_path = d.path().join("junk.conf");
    std::fs::write(&junk_path, &junk).unwrap();
    let huge = write(d.path(), "huge.conf", &"ClusterName=x\n".repeat(400_000));
    let typo = write(
        d.path(),
        "typo.conf",
        &format!("{SEED_SETTINGS}NodeName=axon-amd01 CpuSpecLst=1-18\n"),
    );
    let cases: [(&Path, &str, CheckStatus); 4] = [
        (&junk_path, "junk.conf:3: binary data", CheckStatus::Fail),
        (&huge, "is larger than 4 MiB", CheckStatus::Fail),
        (
            &typo,
            "typo.conf:8: unknown key `CpuSpecLst`",
            CheckStatus::Fail,
        ),
        (
            &d.path().join("absent.conf"),
            "absent.conf unreadable: no such file",
            CheckStatus::Unknown,
        ),
    ];
    for (path, says, status) in cases {
        let rs = slurm_checks("amd-epyc-4numa", path, None);
        assert_eq!(rs.len(), 3);
        for r in &rs {
            assert_eq!(r.status, status, "{}: {r:#?}", path.display());
            assert!(r.observed.contains(says), "{says}: {}", r.observed);
        }
    }
}

#[test]
fn axon_check_slurm_conf_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    let host = common::fixture("amd-epyc-4numa");
    let host = host.to_str().unwrap();
    let good = write(
        d.path(),
        "good.conf",
        &format!(
            "{SEED_SETTINGS}NodeName=axon-amd01 RealMemory=786432 CpuSpecList=1-18,48-65 MemSpecLimit=108544\n"
        ),
    );
    let cgroup = write(
        d.path(),
        "cgroup.conf",
        "ConstrainCores=yes\nConstrainRAMSpace=yes\n",
    );
    let inverted = write(
        d.path(),
        "inverted.conf",
        &format!(
            "{SEED_SETTINGS}NodeName=axon-amd01 RealMemory=786432 CpuSpecList=19-47,66-95 MemSpecLimit=108544\n"
        ),
    );
    let run = |args: &[&str]| {
        let mut a = vec!["check", "--json", "--host-root", host];
        a.extend_from_slice(args);
        let (code, out, err) = axon(&a);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("json: {e}\n{out}\n{err}"));
        (code, v)
    };
    let ids = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"].as_str().unwrap().starts_with("slurm."))
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // Without the flags there are no Slurm checks; only ports.open is unknown.
    let (code, v) = run(&[]);
    assert_eq!(code, 1);
    assert!(ids(&v).is_empty());
    let (code, v) = run(&[
        "--slurm-conf",
        good.to_str().unwrap(),
        "--cgroup-conf",
        cgroup.to_str().unwrap(),
    ]);
    assert_eq!(
        code, 1,
        "all Slurm checks pass; ports.open stays unknown: {v:#}"
    );
    assert_eq!(ids(&v).len(), 4);
    assert!(ids(&v).iter().all(|(_, s)| s == "pass"), "{:?}", ids(&v));
    let (code, v) = run(&["--slurm-conf", inverted.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(ids(&v).contains(&("slurm.cpuspec".into(), "fail".into())));
    // The table names the corrected line.
    let (_, out, _) = axon(&[
        "check",
        "--host-root",
        host,
        "--slurm-conf",
        inverted.to_str().unwrap(),
    ]);
    assert!(
        out.contains("CpuSpecList=1-18,48-65 MemSpecLimit=108544`"),
        "{out}"
    );
    // --cgroup-conf alone is a usage error naming the missing flag.
    let (code, _, err) = axon(&["check", "--host-root", host, "--cgroup-conf", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("--slurm-conf"), "{err}");
}

/// What axon calls a bad file, Slurm's own parser (`scontrol show config` reads
/// SLURM_CONF before it contacts any controller) refuses too, and a file axon reads,
/// Slurm reads without a parse error. Skips without scontrol unless AXON_REQUIRE_SLURM is set.
#[test]
fn slurm_itself_agrees_on_what_is_a_bad_file() {
    let have = Command::new("sh")
        .args(["-c", "command -v scontrol"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("AXON_REQUIRE_SLURM").is_none(),
            "real Slurm is required (AXON_REQUIRE_SLURM=1): no scontrol"
        );
        eprintln!("skipped: no scontrol");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let head = "ClusterName=x\nSlurmctldHost=localhost\n";
    let tail = "PartitionName=p Nodes=localhost\n";
    // Slurm's verdict: the parse error it prints, or None. scontrol goes on to contact a
    // controller (none runs here): it is stopped after its parse.
    let slurm_says = |name: &str, body: &str| -> (PathBuf, Option<String>) {
        let p = write(d.path(), name, &format!("{head}{body}{tail}"));
        let out = Command::new("timeout")
            .args(["2", "scontrol", "show", "config"])
            .env("SLURM_CONF", &p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let parse_error = err
            .lines()
            .find(|l| l.contains("Parsing error") || l.contains("Parse error"))
            .map(str::to_string);
        (p, parse_error)
    };
    let read = |p: &Path| {
        axon::collectors::slurm::read_conf(axon::model::slurmconf::Dialect::SlurmConf, p)
    };
    for (name, body) in [
        ("top.conf", "CpuSpecLst=1\nNodeName=localhost CPUs=1\n"),
        ("node.conf", "NodeName=localhost CPUs=1 CpuSpecLst=1\n"),
    ] {
        let (p, slurm) = slurm_says(name, body);
        let slurm = slurm.unwrap_or_else(|| panic!("Slurm accepted {name}"));
        let e = read(&p).unwrap_err();
        assert!(
            format!("{e:?}").contains("unknown key `CpuSpecLst`"),
            "{e:?} / {slurm}"
        );
    }
    let good = format!(
        "{SEED_SETTINGS}TaskPlugin=task/affinity,\\\ntask/cgroup  # a comment\n\
         NodeName=DEFAULT RealMemory=1000\n\
         NodeName=localhost CPUs=1 CpuSpecList=0 MemSpecLimit=100\n"
    );
    let (p, slurm) = slurm_says("good.conf", &good);
    assert_eq!(slurm, None, "Slurm refused the good file");
    let c = read(&p).unwrap();
    assert_eq!(
        c.get("TaskPlugin").unwrap().value,
        "task/affinity,task/cgroup"
    );
    assert_eq!(
        c.node("localhost")
            .unwrap()
            .get("RealMemory")
            .unwrap()
            .value,
        "1000"
    );
}

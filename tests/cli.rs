//! The `axon` binary as a user runs it: help, versions, exit codes, error messages, and
//! `axon check` on this very machine, cross-checked against independent tools.

mod common;

use std::process::Command;

fn axon(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tool(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} (util-linux/coreutils) must be installed: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn check_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["check", "--json"];
    a.extend_from_slice(args);
    let (code, out, err) = axon(&a);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("json: {e}\n{out}\n{err}"));
    (code, v)
}

fn status<'a>(v: &'a serde_json::Value, id: &str) -> &'a str {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no {id}"))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn every_verb_has_help_and_the_binary_a_version() {
    let (code, out, _) = axon(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("axon "), "{out}");
    let (_, out, _) = axon(&["--help"]);
    for verb in ["agent", "exporter", "check", "demo"] {
        assert!(out.contains(verb), "{verb} missing from --help");
        let (code, h, _) = axon(&[verb, "--help"]);
        assert_eq!(code, 0, "{verb} --help");
        assert!(h.contains("Usage: axon "), "{verb}: {h}");
    }
    let (_, h, _) = axon(&["agent", "--help"]);
    for flag in [
        "--listen",
        "--metrics-listen",
        "--control-socket",
        "--token-file",
        "--host-root",
        "--peers",
    ] {
        assert!(h.contains(flag), "agent --help lacks {flag}");
    }
    // A heading holds its own flags only: a verb's flags declared after a flattened group
    // stay under Options (clap's `next_help_heading` used to carry "TLS" or "Limits" over
    // to them).
    let section = |h: &str, heading: &str| -> (String, String) {
        let (before, rest) = h
            .split_once(&format!("\n{heading}:\n"))
            .unwrap_or_else(|| panic!("no {heading} heading:\n{h}"));
        let own = rest.split("\n\n").next().unwrap_or("").to_string();
        (before.to_string(), own)
    };
    for verb in [&["io", "bench"][..], &["io", "put"], &["status"]] {
        let mut args = verb.to_vec();
        args.push("--help");
        let (_, h, _) = axon(&args);
        let (options, tls) = section(&h, "TLS");
        assert!(
            tls.contains("--insecure") && !options.contains("--insecure"),
            "{h}"
        );
        for own in ["--json", "--direct", "--size", "--timeout"] {
            assert!(!tls.contains(own), "{verb:?}: {own} under TLS:\n{h}");
        }
    }
    let (_, h, _) = axon(&["agent", "--help"]);
    let (_, limits) = section(&h, "Limits");
    assert!(limits.contains("--max-connections"), "{h}");
    for own in [
        "--store",
        "--cluster-listen",
        "--data-listen",
        "--containers",
    ] {
        assert!(!limits.contains(own), "agent: {own} under Limits:\n{h}");
    }
}

#[test]
fn help_texts_say_what_the_shared_flags_do_for_every_verb() {
    // Whitespace folded: clap wraps long help at the terminal's width.
    let help = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push("--help");
        let (code, out, err) = axon(&a);
        assert_eq!(code, 0, "{a:?}: {err}");
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    // The summaries name every subcommand.
    let top = help(&[]);
    let between = |from: &str, to: &str| -> String {
        let rest = top
            .split_once(from)
            .unwrap_or_else(|| panic!("no {from:?} in --help: {top}"))
            .1;
        rest.split(to).next().unwrap_or(rest).to_string()
    };
    let io = between(" io ", " start-io ");
    for verb in ["add-drive", "scrub", "bench"] {
        assert!(io.contains(verb), "--help's io summary lacks {verb}: {top}");
    }
    let drive = between(" drive ", " io ");
    for verb in ["list", "deactivate", "remove", "add", "activate"] {
        assert!(
            drive.contains(verb),
            "--help's drive summary lacks {verb}: {top}"
        );
    }
    // bench spreads over every agent, not only the first that answers.
    let bench = help(&["io", "bench"]);
    assert!(
        !bench.contains("the first that answers") || bench.contains("bench spreads"),
        "{bench}"
    );
    // --direct: named by --inventory or --hosts, and right for reads as well as writes.
    for verb in ["put", "get", "rm", "ls", "bench"] {
        let h = help(&["io", verb]);
        assert!(h.contains("--inventory or --hosts"), "io {verb}: {h}");
        assert!(
            !h.contains("Needs the members in the inventory"),
            "io {verb}: {h}"
        );
    }
    assert!(help(&["io", "get"]).contains("read and rebuild"));
    for verb in ["put", "get", "rm"] {
        let h = help(&["io", verb]);
        assert!(h.contains("<KEY> The object's key"), "io {verb}: {h}");
    }
    // --rate says which drive verb uses it; --token-file that changes need the admin token.
    assert!(help(&["drive", "remove"]).contains("deactivate only"));
    for verb in [&["start-io"][..], &["drive", "add"], &["cluster", "create"]] {
        let h = help(verb);
        assert!(
            !h.contains("admin.token for probes)") && h.contains("changes the cluster"),
            "{verb:?}: {h}"
        );
    }
    // status describes what the data plane reports now.
    let status = help(&["status"]);
    assert!(!status.contains("nothing yet"), "{status}");
    assert!(status.contains("protection"), "{status}");
}

#[test]
fn check_on_this_machine_agrees_with_independent_tools() {
    let (code, v) = check_json(&[]);
    assert_eq!(code, v["exit_code"].as_i64().unwrap() as i32);
    assert!(
        v["emulated_profile"].is_null(),
        "the real host is not emulated"
    );

    // cgroup v2: the file system type of /sys/fs/cgroup.
    let (_, fstype) = tool("stat", &["-f", "-c", "%T", "/sys/fs/cgroup"]);
    assert_eq!(
        status(&v, "cgroup.v2") == "pass",
        fstype == "cgroup2fs",
        "stat says {fstype}"
    );

    // swap: swapon lists active swap areas.
    let (_, swaps) = tool("swapon", &["--noheadings", "--show"]);
    assert_eq!(
        status(&v, "swap.off") == "pass",
        swaps.is_empty(),
        "swapon: {swaps}"
    );

    // /tmp: findmnt fails when /tmp is not its own mount.
    let (mounted, opts) = tool(
        "findmnt",
        &[
            "-n",
            "-o",
            "OPTIONS",
            "--target",
            "/tmp",
            "--mountpoint",
            "/tmp",
        ],
    );
    let noexec = mounted && opts.split(',').any(|o| o == "noexec");
    assert_eq!(
        status(&v, "tmp.noexec") == "pass",
        noexec,
        "findmnt: {mounted} {opts}"
    );

    // SMT: lscpu's threads per core.
    let (_, lscpu) = tool("lscpu", &[]);
    let tpc = lscpu
        .lines()
        .find(|l| l.starts_with("Thread(s) per core:"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap();
    assert_eq!(
        status(&v, "smt.off") == "pass",
        tpc == "1",
        "lscpu threads per core {tpc}"
    );

    // Kernel headers for the running kernel.
    let (_, rel) = tool("uname", &["-r"]);
    let headers = std::path::Path::new(&format!("/lib/modules/{rel}/build")).is_dir();
    assert_eq!(status(&v, "kernel.headers") == "pass", headers);

    // NVMe: count controllers in /dev, independent of sysfs.
    let ctrls = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("nvme")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    assert_eq!(
        status(&v, "nvme.count") == "pass",
        matches!(ctrls, 2 | 4 | 8),
        "{ctrls} controllers in /dev"
    );
    if ctrls == 0 {
        assert_eq!(
            status(&v, "nvme.health"),
            "unknown",
            "no drives: nothing to judge, never pass"
        );
    }
    assert_eq!(status(&v, "ports.open"), "unknown", "no peers given");
}

#[test]
fn check_exit_codes_follow_the_worst_result() {
    let (code, v) = check_json(&[
        "--host-root",
        common::fixture("misconfigured").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert_eq!(v["summary"]["fail"], 6);
    assert_eq!(v["emulated_profile"], "misconfigured");
    let (code, _) = check_json(&[
        "--host-root",
        common::fixture("amd-epyc-4numa").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "only ports.open is unknown without peers");
    // The table marks emulated hosts.
    let (_, out, _) = axon(&[
        "check",
        "--host-root",
        common::fixture("intel-2s-smt").to_str().unwrap(),
    ]);
    assert!(
        out.contains("EMULATED host profile `intel-2s-smt`"),
        "{out}"
    );
    assert!(out.contains("FAIL") && out.contains("smt.off"));
}

#[test]
fn bad_input_gets_a_clear_error_and_no_panic() {
    let (code, _, err) = axon(&["check", "--host-root", "/no/such/dir"]);
    assert_eq!(code, 3);
    assert!(err.contains("/no/such/dir unreadable (not found)"), "{err}");
    assert!(!err.contains("panicked"));
    let (code, _, err) = axon(&["check", "--peers", "axon[001-"]);
    assert_eq!(code, 3);
    assert!(
        err.contains("--peers") && err.contains("unbalanced brackets"),
        "{err}"
    );
    let (code, _, err) = axon(&["agent", "--interval", "fast"]);
    assert_eq!(code, 2, "clap usage error");
    assert!(err.contains("not a duration"), "{err}");
    let (code, _, err) = axon(&["demo", "--nodes", "300"]);
    assert_eq!(code, 2);
    assert!(err.contains("300"), "{err}");
}

#[test]
fn demo_headless_writes_an_inventory_the_console_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.toml");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut demo = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args([
            "demo",
            "--headless",
            "--nodes",
            "3",
            "--port",
            "24300",
            "--metrics-port",
            "24390",
            "--dir",
        ])
        .arg(dir.path().join("demo"))
        .arg("--inventory-out")
        .arg(&inv)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The demo says where to attach once its agents are up.
    let mut err = std::io::BufReader::new(demo.stderr.take().unwrap());
    let _demo = Kill(demo);
    let mut line = String::new();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(60) {
        line.clear();
        if std::io::BufRead::read_line(&mut err, &mut line).unwrap_or(0) == 0
            || line.contains("attach with")
        {
            break;
        }
    }
    assert!(
        line.contains("attach with") && inv.exists(),
        "demo did not come up: {line}"
    );
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let (code, out, err) = axon(&[
        "console",
        "--inventory",
        inv.to_str().unwrap(),
        "--once",
        "--panel",
        "checks",
        "--size",
        "120x30",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("5 Checks") && out.contains("● axon001") && out.contains("● axon003"),
        "{out}"
    );
    assert!(out.contains("iommu.consistent"), "{out}");
    // A frame at 80x24 of the cores panel of one node.
    let (code, out, _) = axon(&[
        "console",
        "--inventory",
        inv.to_str().unwrap(),
        "--once",
        "--panel",
        "cores",
        "--node",
        "axon002",
        "--size",
        "80x24",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("axon002") && out.contains("NUMA 0"), "{out}");
    let (code, _, err) = axon(&[
        "console",
        "--inventory",
        inv.to_str().unwrap(),
        "--once",
        "--node",
        "nope",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--node nope: not in the inventory"), "{err}");
}

/// Makes an emulated syscall of a fixture tree hang (`_fixture/hang/<call>`), like a netlink
/// dump or NVMe admin command stuck in a driver.
fn hang_syscall(root: &std::path::Path, call: &str) {
    std::fs::create_dir_all(root.join("_fixture/hang")).unwrap();
    std::fs::write(root.join("_fixture/hang").join(call), "").unwrap();
}

/// Replaces a fixture file by a FIFO without a writer: opening it for reading would block
/// forever (and, opened non-blocking, reading it never ends).
fn fifo_at(path: &std::path::Path) {
    std::fs::remove_file(path).unwrap();
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Runs axon, killing it (and failing the test) if it has not finished within `limit`.
fn axon_within(args: &[&str], limit: std::time::Duration) -> (i32, String, String) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("axon {args:?} still running after {limit:?}: it hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    )
}

#[test]
fn check_names_a_hung_collector_and_its_checks_are_unknown() {
    let (_d, path) = common::copy_fixture("amd-epyc-4numa");
    // The network collector's routing dump never returns.
    hang_syscall(&path, "routing");
    let (code, out, err) = axon_within(
        &["check", "--json", "--host-root", path.to_str().unwrap()],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 1, "unknowns, no failure: {err}");
    assert!(
        err.contains("network collector timed out after its 2000 ms deadline"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status(&v, "net.mtu"), "unknown");
    let mtu = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "net.mtu")
        .unwrap();
    assert!(
        mtu["observed"].as_str().unwrap().contains("timed out"),
        "{mtu}"
    );
    assert_eq!(status(&v, "swap.off"), "pass", "the other checks still run");
}

#[test]
fn check_that_cannot_run_its_checks_exits_3_and_says_why() {
    let (_d, path) = common::copy_fixture("amd-epyc-4numa");
    // The clock check asks adjtimex inside the checks collector itself.
    hang_syscall(&path, "clock");
    let (code, out, err) = axon_within(
        &["check", "--host-root", path.to_str().unwrap()],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(
        err.contains("could not run the checks: the checks collector timed out"),
        "{err}"
    );
    assert!(out.contains("the checks could not run"), "{out}");
}

// ------------------------------------------------------------------ configuration errors at start

#[test]
fn inventory_problems_are_refused_at_start_each_with_file_line_and_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("cluster.toml");
    std::fs::write(
        &inv,
        "port = 0\n\
         hosts = \"axon[01-\"\n\
         \n\
         [[node]]\n\
         name = \"\"\n\
         address = \"10.0.0.9\"\n\
         \n\
         [[node]]\n\
         name = \"axon007\"\n\
         address = \"a b\"\n\
         \n\
         [[node]]\n\
         name = \"axon008\"\n\
         address = \"https://10.0.0.8:14000\"\n",
    )
    .unwrap();
    let (code, out, err) = axon_within(
        &["console", "--inventory", inv.to_str().unwrap(), "--once"],
        std::time::Duration::from_secs(20),
    );
    assert_eq!(code, 3, "refused, not shown as DOWN: {out}\n{err}");
    assert!(out.is_empty(), "nothing was rendered: {out}");
    let f = inv.display();
    for (line, says) in [
        (1, "port = 0 is not a TCP port"),
        (2, "hosts: hostlist `axon[01-`: unbalanced brackets"),
        (5, "node name is empty — give the node's host name"),
        (10, "address `a b` contains a space"),
        (14, "is a URL (https://) — give only the host (`10.0.0.8`)"),
    ] {
        assert!(err.contains(&format!("{f}:{line}: ")), "line {line}: {err}");
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("{f}:{line}: ")) && l.contains(says)),
            "line {line} `{says}`: {err}"
        );
    }
    assert_eq!(err.matches("unbalanced").count(), 1, "said once: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn token_file_that_is_empty_multi_line_or_not_text_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (name, data, says) in [
        ("empty.token", &b"\n"[..], "is empty"),
        ("two.token", &b"abc\ndef\n"[..], "has 2 non-empty lines"),
        ("bin.token", &b"\xff\xfe\xfd"[..], "is not text"),
    ] {
        let tok = dir.path().join(name);
        std::fs::write(&tok, data).unwrap();
        let (code, out, err) = axon_within(
            &[
                "console",
                "--hosts",
                "127.0.0.1",
                "--token-file",
                tok.to_str().unwrap(),
                "--once",
            ],
            std::time::Duration::from_secs(20),
        );
        assert_eq!(code, 3, "{name}: {out}\n{err}");
        assert!(
            err.contains(&format!("--token-file {}: {says}", tok.display()))
                && err.contains("reader.token"),
            "{name}: {err}"
        );
        assert!(!err.contains("create the directory"), "{err}");
    }
    // A non-UTF-8 token file named by an inventory names the inventory line too.
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, "token_file = \"bin.token\"\nhosts = \"127.0.0.1\"\n").unwrap();
    let (code, _, err) = axon(&["console", "--inventory", inv.to_str().unwrap(), "--once"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!("{}:1: token_file ", inv.display())) && err.contains("is not text"),
        "{err}"
    );
}

#[test]
fn port_flag_with_an_inventory_is_refused_and_token_file_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.toml");
    std::fs::write(
        &inv,
        "token_file = \"/no/such/reader.token\"\nhosts = \"127.0.0.1\"\n",
    )
    .unwrap();
    let (code, _, err) = axon(&[
        "console",
        "--inventory",
        inv.to_str().unwrap(),
        "--port",
        "15000",
        "--once",
    ]);
    assert_eq!(code, 2, "usage error: {err}");
    assert!(
        err.contains("--port") && err.contains("--inventory"),
        "{err}"
    );
    let (_, help, _) = axon(&["console", "--help"]);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("with --inventory, set `port =` in the file"),
        "{help}"
    );
    assert!(help.contains("replaces every node's token_file"), "{help}");
    // --token-file replaces the inventory's (unreadable) token file: the frame renders.
    let tok = dir.path().join("admin.token");
    std::fs::write(&tok, "secret\n").unwrap();
    let (code, out, err) = axon_within(
        &[
            "console",
            "--inventory",
            inv.to_str().unwrap(),
            "--token-file",
            tok.to_str().unwrap(),
            "--once",
            "--size",
            "80x24",
        ],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Overview"), "{out}");
}

#[test]
fn errors_name_the_problem_once() {
    let (code, _, err) = axon(&["console", "--inventory", "/no/such/inv.toml", "--once"]);
    assert_eq!(code, 3);
    assert_eq!(
        err.trim(),
        "axon: inventory /no/such/inv.toml: not found — check the path given to --inventory (`axon demo --headless` writes one)"
    );
    let (code, _, err) = axon(&["check", "--host-root", "/no/such/dir"]);
    assert_eq!(code, 3);
    assert_eq!(err.matches("No such file").count(), 0, "{err}");
    assert_eq!(err.matches("not found").count(), 1, "{err}");
}

// ------------------------------------------------------------------ odd hosts

#[test]
fn host_ssd_ratio_over_1_to_8_fails_on_axon_check() {
    let (_d, path) = common::copy_fixture("amd-epyc-4numa");
    // An 800 GB drive among 7.68 TB ones: 1:9.6 on this host alone.
    let sectors = format!("{}\n", 800_166_076_416u64 / 512);
    std::fs::write(path.join("sys/block/nvme3n1/size"), &sectors).unwrap();
    std::fs::write(path.join("sys/class/nvme/nvme3/nvme3n1/size"), &sectors).unwrap();
    let (code, v) = check_json(&["--host-root", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(status(&v, "nvme.capacity"), "fail");
    let cap = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "nvme.capacity")
        .unwrap();
    let obs = cap["observed"].as_str().unwrap();
    assert!(
        obs.contains("smallest nvme3 800.17 GB : largest") && obs.contains("worse than 1:8"),
        "{obs}"
    );
    assert!(cap["remedy"].as_str().unwrap().contains("1:8"), "{cap}");
}

#[test]
fn empty_host_root_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = axon(&["check", "--host-root", dir.path().to_str().unwrap()]);
    assert_eq!(code, 3, "could not run, not a failing host: {out}\n{err}");
    assert!(
        err.contains("could not run the checks") && err.contains("holds no host facts"),
        "{err}"
    );
    assert!(!out.contains("no NVMe drives"), "{out}");
    let (code, v) = check_json(&["--host-root", dir.path().to_str().unwrap()]);
    assert_eq!(code, 3);
    assert_eq!(v["exit_code"], 3);
    assert!(
        v["error"].as_str().unwrap().contains("no proc/ or sys/"),
        "{v}"
    );
}

/// Waits for a spawned agent to say it is up (its "axon agent … on node NAME" line) or to
/// exit, killing it and failing if neither happens within `limit`. Returns the line, or
/// the exit code and all of stderr.
fn agent_start_within(args: &[&str], limit: std::time::Duration) -> Result<String, (i32, String)> {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if line.starts_with("axon agent ") {
                let _ = tx.send(Ok(line));
                return;
            }
            all.push_str(&line);
            all.push('\n');
        }
        let _ = tx.send(Err(all));
    });
    let got = rx.recv_timeout(limit);
    let _ = child.kill();
    let status = child.wait().unwrap();
    match got {
        Ok(Ok(line)) => Ok(line),
        Ok(Err(stderr)) => Err((status.code().unwrap_or(-1), stderr)),
        Err(_) => panic!("axon {args:?} neither came up nor exited within {limit:?}: it hung"),
    }
}

fn agent_args(root: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
    [
        "agent",
        "--host-root",
        root.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--control-socket",
        dir.join("control.sock").to_str().unwrap(),
        "--state-dir",
        dir.join("state").to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn fifo_at_hostname_does_not_hang_startup() {
    let (d, path) = common::copy_fixture("amd-epyc-4numa");
    fifo_at(&path.join("proc/sys/kernel/hostname"));
    let args = agent_args(&path, d.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = agent_start_within(&args, std::time::Duration::from_secs(20))
        .unwrap_or_else(|(code, err)| panic!("agent exited {code}: {err}"));
    assert!(
        line.ends_with("on node axon-amd01"),
        "the name comes from /etc/hostname: {line}"
    );
    // `axon check` finishes too, and says which file it would not read.
    let (code, out, err) = axon_within(
        &["check", "--json", "--host-root", path.to_str().unwrap()],
        std::time::Duration::from_secs(30),
    );
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(v["host"], "axon-amd01", "{out}");
    assert_eq!(code, v["exit_code"].as_i64().unwrap() as i32);
}

#[test]
fn fifo_at_profile_toml_does_not_hang_startup() {
    let (d, path) = common::copy_fixture("amd-epyc-4numa");
    fifo_at(&path.join("_fixture/profile.toml"));
    let args = agent_args(&path, d.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = agent_start_within(&args, std::time::Duration::from_secs(20))
        .expect_err("an agent on an unreadable profile does not start");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("_fixture/profile.toml is a FIFO, not a regular file"),
        "names the file and what it is: {err}"
    );
    let (code, _, err) = axon_within(
        &["check", "--host-root", path.to_str().unwrap()],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("profile.toml is a FIFO"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn interval_below_minimum_is_refused_at_parse_time_by_the_binary() {
    for (args, says) in [
        (
            vec!["agent", "--interval", "0.0000000001s"],
            "out of range: give 100ms to 1h",
        ),
        (
            vec!["exporter", "--interval", "0"],
            "out of range: give 100ms to 1h",
        ),
        (
            vec!["check", "--probe-concurrency", "18446744073709551615"],
            "not in 1..=4096",
        ),
        (vec!["check", "--probe-timeout", "0.001ms"], "10ms to 30s"),
    ] {
        let (code, _, err) = axon_within(&args, std::time::Duration::from_secs(10));
        assert_eq!(code, 2, "a usage error before anything starts: {err}");
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // --help shows every range.
    let (_, h, _) = axon(&["agent", "--help"]);
    for range in ["[100ms to 1h]", "[10ms to 30s]", "[1 to 4096]"] {
        assert!(h.contains(range), "agent --help lacks {range}: {h}");
    }
}

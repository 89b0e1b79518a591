//! The bare-metal install script, in the shape of the seed's: pdsh to every node,
//! containers (drives, compute, frontend) with the plan's core ids, NICs and memory,
//! cluster create, protection (16+4 with 2 hot spares, or the nearest the server count
//! holds), drives added by a match string to the drives container on their NUMA domain,
//! start-io. Idempotent: every step checks what exists and skips it.

use super::{Artefact, PlannedNode};
use crate::model::hostlist;
use crate::model::plan::{Protection, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Base port of the first container of each role (the seed's three firewall ranges), and
/// the step between containers of a role.
pub fn base_port(role: Role, index: usize) -> u32 {
    let first = match role {
        Role::Drive => 14000,
        Role::Compute => 15000,
        Role::Frontend => 16000,
    };
    first + 50 * index as u32
}

/// One container as the script sets it up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Setup {
    role: Role,
    name: String,
    cores: Vec<u32>,
    nic: Option<String>,
    memory_gb: u64,
    numa: u32,
}

fn role_flag(r: Role) -> &'static str {
    match r {
        Role::Drive => "--only-drives-cores",
        Role::Compute => "--only-compute-cores",
        Role::Frontend => "--only-frontend-cores",
    }
}

fn setups(n: &PlannedNode) -> Result<Vec<Setup>, String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in &n.plan.containers {
        for cpu in c.cpus.iter() {
            if !seen.insert(cpu) {
                return Err(format!("{}: cpu{cpu} planned twice", n.name));
            }
        }
        out.push(Setup {
            role: c.role,
            name: c.name.clone(),
            cores: c.cpus.iter().collect(),
            nic: c.nic.clone(),
            memory_gb: c.memory_mib.div_ceil(1024),
            numa: c.numa,
        });
    }
    Ok(out)
}

/// The address a node is known by in the cluster: its first dataplane IPv4 address.
fn host_ip(n: &PlannedNode) -> Option<String> {
    n.network?
        .dataplane()
        .find_map(|x| x.ipv4_addresses().next())
        .map(|a| a.cidr.split('/').next().unwrap_or("").to_string())
}

pub fn artefacts(nodes: &[PlannedNode], source: &str) -> Result<Vec<Artefact>, String> {
    if nodes.is_empty() {
        return Err("no node to install".into());
    }
    let (prot, why) = Protection::for_domains(nodes.len())?;
    // Nodes with the same containers share each setup line.
    let mut groups: BTreeMap<Vec<Setup>, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        groups.entry(setups(n)?).or_default().push(n.name);
    }
    let all = hostlist::compress(&nodes.iter().map(|n| n.name).collect::<Vec<_>>());
    let mut ips = Vec::new();
    for n in nodes {
        ips.push(host_ip(n).ok_or_else(|| {
            format!(
                "{}: no IPv4 address on a dataplane NIC, so no address to create the cluster with",
                n.name
            )
        })?);
    }
    let join = ips.iter().take(3).cloned().collect::<Vec<_>>().join(",");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#!/usr/bin/env bash\n\
         # NeuralMesh Axon install script, made by `axon plan --format script` from\n\
         # {source}.\n\
         # Run it where pdsh reaches every node without a password, after the release is\n\
         # installed on each (`weka version`). Idempotent: each step checks what exists and\n\
         # skips it, so running it again resumes after a failure.\n\
         # Cores, NICs and memory per container come from the plan (`axon plan` says why);\n\
         # no core is given twice on a node."
    );
    if let Some(w) = &why {
        let _ = writeln!(s, "# NOTE: {w}.");
    }
    s.push_str(&super::note_comments(nodes));
    let _ = writeln!(
        s,
        "set -euo pipefail\n\n\
         HOSTS='{all}'\n\
         HOST_NAMES='{names}'\n\
         HOST_IPS='{ips}'\n\
         FIRST='{first}'\n\
         JOIN_IPS='{join}'\n\
         # A string that `lsblk -dno NAME,MODEL,SIZE` shows for each NVMe drive to add (model or size).\n\
         DRIVE_MATCH=\"${{DRIVE_MATCH:?set DRIVE_MATCH to a string matching the NVMe drives, e.g. DRIVE_MATCH=KCM6XVUL $0}}\"\n\
         STRIPE_WIDTH={w}\n\
         PARITY={p}\n\
         HOT_SPARES={h}\n\n\
         # on HOSTS COMMAND: run COMMAND on every node of HOSTS.\n\
         on() {{ pdsh -S -w \"$1\" \"$2\"; }}\n\n\
         # cluster ARGS...: run `weka ARGS` on the first node.\n\
         cluster() {{ pdsh -S -N -w \"$FIRST\" \"sudo weka $*\"; }}\n\n\
         # setup NAME HOSTS ARGS...: create container NAME on each node of HOSTS unless it exists.\n\
         setup() {{\n\
         \x20 local name=$1 hosts=$2\n\
         \x20 shift 2\n\
         \x20 on \"$hosts\" \"sudo weka local ps --no-header -o name | grep -qx $name || sudo weka local setup container --name $name $*\"\n\
         }}\n\n\
         # add_local_drives MATCH NUMA:CONTAINER...: on one node, add each matching NVMe drive\n\
         # not yet in the cluster to the drives container on the drive's NUMA domain.\n\
         add_local_drives() {{\n\
         \x20 local match=$1 dev numa container id\n\
         \x20 shift\n\
         \x20 for dev in $(lsblk -dpno NAME,MODEL,SIZE | grep -- \"$match\" | cut -d' ' -f1); do\n\
         \x20   if sudo weka cluster drive --no-header -o path | grep -qx \"$dev\"; then continue; fi\n\
         \x20   numa=$(cat \"/sys/block/${{dev#/dev/}}/device/numa_node\" 2>/dev/null || echo -1)\n\
         \x20   container=\"\"\n\
         \x20   for pair in \"$@\"; do\n\
         \x20     if [ \"${{pair%%:*}}\" = \"$numa\" ] || [ -z \"$container\" ]; then container=${{pair#*:}}; fi\n\
         \x20   done\n\
         \x20   id=$(sudo weka cluster container --no-header -o id -F \"hostname=$(hostname),container=$container\")\n\
         \x20   sudo weka cluster drive add \"$id\" \"$dev\"\n\
         \x20 done\n\
         }}\n",
        ips = ips.join(","),
        names = nodes.iter().map(|n| n.name).collect::<Vec<_>>().join(" "),
        first = nodes[0].name,
        w = prot.stripe_width,
        p = prot.parity,
        h = prot.hot_spares,
    );
    let step = |s: &mut String, title: &str| {
        let _ = writeln!(s, "\necho '== {title}'");
    };
    let line = |s: &mut String, role: Role, join: bool| {
        for (setups, names) in &groups {
            let hosts = hostlist::compress(names);
            for (i, c) in setups.iter().filter(|c| c.role == role).enumerate() {
                let cores = c
                    .cores
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                let _ = write!(
                    s,
                    "setup {} '{hosts}' --base-port {} --cores {} --core-ids {cores} {}",
                    c.name,
                    base_port(role, i),
                    c.cores.len(),
                    role_flag(role)
                );
                if let Some(nic) = &c.nic {
                    let _ = write!(s, " --net {nic}");
                }
                let _ = write!(s, " --memory {}GB", c.memory_gb);
                if join {
                    let _ = write!(s, " --join-ips \"$JOIN_IPS\"");
                }
                let _ = writeln!(s, "   # NUMA {}", c.numa);
            }
        }
    };
    step(&mut s, "0. every node answers and has the release");
    let _ = writeln!(s, "on \"$HOSTS\" 'weka version >/dev/null'");
    step(&mut s, "1. drives containers");
    line(&mut s, Role::Drive, false);
    step(&mut s, "2. cluster: create, protection, hot spares");
    let _ = writeln!(
        s,
        "if ! cluster status >/dev/null 2>&1; then\n\
         \x20 cluster cluster create \"$HOST_NAMES\" --host-ips \"$HOST_IPS\"\n\
         fi\n\
         cluster cluster update --data-drives \"$STRIPE_WIDTH\" --parity-drives \"$PARITY\"\n\
         cluster cluster hot-spare \"$HOT_SPARES\""
    );
    step(&mut s, "3. drives");
    for (setups, names) in &groups {
        let pairs: Vec<String> = setups
            .iter()
            .filter(|c| c.role == Role::Drive)
            .map(|c| format!("{}:{}", c.numa, c.name))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "on '{}' \"$(declare -f add_local_drives); add_local_drives '$DRIVE_MATCH' {}\"",
            hostlist::compress(names),
            pairs.join(" ")
        );
    }
    step(&mut s, "4. compute containers");
    line(&mut s, Role::Compute, true);
    step(&mut s, "5. frontend containers");
    line(&mut s, Role::Frontend, true);
    step(&mut s, "6. start IO");
    let _ = writeln!(
        s,
        "if ! cluster status | grep -q 'io status: STARTED'; then\n\
         \x20 cluster cluster start-io\n\
         fi\n\
         echo \"done: pdsh -w $FIRST sudo weka status\""
    );
    Ok(vec![Artefact {
        name: "install-axon.sh".into(),
        install_to: "run from the admin host: DRIVE_MATCH=<model> bash install-axon.sh".into(),
        text: s,
    }])
}

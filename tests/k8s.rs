//! `axon plan --format k8s`: the WekaCluster and WekaClient validated against JSON Schemas
//! of the CRDs (tests/fixtures/k8s, written from REQUIREMENTS.md §6), WEKA's protection
//! rules on the emitted values, the kubelet settings against the plan, and the install
//! script through bash -n and shellcheck; on a cluster of real agents and on the fixture
//! hosts.

mod common;

use axon::actions::artefacts::k8s::{self, K8sOptions};
use axon::actions::artefacts::{Artefact, PlannedNode};
use axon::commands::plan;
use axon::model::cpuset::CpuSet;
use axon::model::plan::{PlanOptions, Protection};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// A hand-made breakage of a valid document.
type Breaks = Box<dyn Fn(&mut Value)>;

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/k8s")
        .join(format!("{name}.schema.json"));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&s).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The YAML document (comments and all) as JSON.
fn parse(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("YAML: {e}\n{text}"))
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let e = errors(v, doc);
    assert!(e.is_empty(), "{what}: {e:#?}\n{doc:#}");
}

/// WEKA's rules on the emitted protection (REQUIREMENTS.md §4).
fn assert_protection(spec: &Value, failure_domains: usize) {
    let w = spec["stripeWidth"].as_u64().unwrap() as usize;
    let m = spec["redundancyLevel"].as_u64().unwrap() as usize;
    let h = spec["hotSpare"].as_u64().unwrap() as usize;
    assert!((3..=16).contains(&w), "stripeWidth {w}");
    assert!((2..=4).contains(&m), "redundancyLevel {m}");
    assert!(w > m, "stripeWidth {w} > redundancyLevel {m}");
    assert!(
        w + m + h <= failure_domains,
        "{w}+{m}+{h} > {failure_domains}"
    );
    assert_eq!(
        Protection::for_domains(failure_domains).unwrap().0,
        Protection {
            stripe_width: w,
            parity: m,
            hot_spares: h
        },
        "the scheme for_domains gives"
    );
}

fn file<'a>(files: &'a [Artefact], name: &str) -> &'a Artefact {
    files.iter().find(|f| f.name == name).unwrap_or_else(|| {
        panic!(
            "no {name} among {:?}",
            files.iter().map(|f| &f.name).collect::<Vec<_>>()
        )
    })
}

/// The artefacts for `n` copies of a fixture host's plan (named k01…).
async fn fixture_artefacts(host: &str, n: usize) -> (plan::Planned, Vec<Artefact>) {
    fixture_artefacts_with(host, n, &K8sOptions::default()).await
}

async fn fixture_artefacts_with(
    host: &str,
    n: usize,
    opts: &K8sOptions,
) -> (plan::Planned, Vec<Artefact>) {
    let p = plan::host(&common::fixture(host), &[], &PlanOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{host}: {e:#}"));
    let names: Vec<String> = (1..=n).map(|i| format!("k{i:02}")).collect();
    let files = {
        let plan = p.plan.as_ref().unwrap();
        let topology = p.topology.as_ref().unwrap();
        let nodes: Vec<PlannedNode> = names
            .iter()
            .map(|name| PlannedNode {
                name,
                topology,
                plan,
                network: p.network.as_ref(),
            })
            .collect();
        k8s::artefacts(&nodes, opts, host).unwrap()
    };
    (p, files)
}

#[tokio::test]
async fn the_schemas_reject_hand_broken_documents() {
    let (cluster_schema, client_schema) = (schema("wekacluster"), schema("wekaclient"));
    let (_, files) = fixture_artefacts("amd-epyc-4numa", 5).await;
    let cluster = parse(&file(&files, "weka-cluster.yaml").text);
    let client = parse(&file(&files, "weka-client.yaml").text);
    assert_valid(&cluster_schema, &cluster, "generated WekaCluster");
    assert_valid(&client_schema, &client, "generated WekaClient");

    let broken_cluster: Vec<(&str, Breaks)> = vec![
        (
            "unknown spec field",
            Box::new(|d| d["spec"]["turbo"] = json!(true)),
        ),
        (
            "unknown dynamicTemplate field",
            Box::new(|d| d["spec"]["dynamicTemplate"]["gpuCores"] = json!(2)),
        ),
        (
            "cpuPolicy turbo",
            Box::new(|d| d["spec"]["cpuPolicy"] = json!("turbo")),
        ),
        (
            "missing image",
            Box::new(|d| {
                d["spec"].as_object_mut().unwrap().remove("image");
            }),
        ),
        (
            "image without X.Y.Z",
            Box::new(|d| d["spec"]["image"] = json!("quay.io/weka.io/weka-in-container:latest")),
        ),
        (
            "negative cores",
            Box::new(|d| d["spec"]["dynamicTemplate"]["computeCores"] = json!(-1)),
        ),
        (
            "cores as a string",
            Box::new(|d| d["spec"]["dynamicTemplate"]["driveCores"] = json!("4")),
        ),
        (
            "unknown network field",
            Box::new(|d| d["spec"]["network"]["ethDevic"] = json!("ens1")),
        ),
        (
            "wrong group",
            Box::new(|d| d["apiVersion"] = json!("weka.io/v1")),
        ),
    ];
    for (what, breaks) in &broken_cluster {
        let mut d = cluster.clone();
        breaks(&mut d);
        assert!(
            !errors(&cluster_schema, &d).is_empty(),
            "the WekaCluster schema accepts a document with {what}"
        );
    }
    let broken_client: Vec<(&str, Breaks)> = vec![
        (
            "unknown spec field",
            Box::new(|d| d["spec"]["coresNumber"] = json!(12)),
        ),
        (
            "cpuPolicy turbo",
            Box::new(|d| d["spec"]["cpuPolicy"] = json!("turbo")),
        ),
        (
            "missing image",
            Box::new(|d| {
                d["spec"].as_object_mut().unwrap().remove("image");
            }),
        ),
        (
            "targetCluster without namespace",
            Box::new(|d| {
                d["spec"]["targetCluster"]
                    .as_object_mut()
                    .unwrap()
                    .remove("namespace");
            }),
        ),
        (
            "negative hugepages",
            Box::new(|d| d["spec"]["hugepages"] = json!(-1536)),
        ),
    ];
    for (what, breaks) in &broken_client {
        let mut d = client.clone();
        breaks(&mut d);
        assert!(
            !errors(&client_schema, &d).is_empty(),
            "the WekaClient schema accepts a document with {what}"
        );
    }
}

#[tokio::test]
async fn every_fixture_host_gives_schema_valid_resources_and_kubelet_settings_from_its_plan() {
    let (cluster_schema, client_schema, kubelet_schema) = (
        schema("wekacluster"),
        schema("wekaclient"),
        schema("kubelet-config"),
    );
    for (host, n) in [
        ("amd-epyc-4numa", 5),
        ("intel-2s-smt", 8),
        ("misconfigured", 22),
    ] {
        let (p, files) = fixture_artefacts(host, n).await;
        let plan = p.plan.as_ref().unwrap();
        let smt = p.topology.as_ref().unwrap().has_smt_siblings();
        let cluster = parse(&file(&files, "weka-cluster.yaml").text);
        let client = parse(&file(&files, "weka-client.yaml").text);
        assert_valid(&cluster_schema, &cluster, host);
        assert_valid(&client_schema, &client, host);
        let spec = &cluster["spec"];
        assert_protection(spec, n);
        let t = &spec["dynamicTemplate"];
        let per_node = |r| plan.containers.iter().filter(|c| c.role == r).count() as u64;
        use axon::model::plan::Role;
        assert_eq!(
            t["driveContainers"],
            json!(per_node(Role::Drive) * n as u64),
            "{host}"
        );
        assert_eq!(
            t["computeContainers"],
            json!(per_node(Role::Compute) * n as u64),
            "{host}"
        );
        // The containers' cores add up to the plan's (the fixtures spread evenly).
        assert_eq!(
            t["driveCores"].as_u64().unwrap() * per_node(Role::Drive),
            plan.planned.drive as u64,
            "{host}"
        );
        assert_eq!(
            t["computeCores"].as_u64().unwrap() * per_node(Role::Compute),
            plan.planned.compute as u64,
            "{host}"
        );
        assert_eq!(
            t["computeHugepages"].as_u64().unwrap(),
            t["computeCores"].as_u64().unwrap() * 3072
        );
        assert_eq!(
            t["driveHugepages"].as_u64().unwrap(),
            t["driveCores"].as_u64().unwrap() * 1536
        );
        let policy = if smt { "dedicated_ht" } else { "dedicated" };
        assert_eq!(spec["cpuPolicy"], json!(policy), "{host}");
        assert_eq!(client["spec"]["cpuPolicy"], json!(policy), "{host}");
        assert_eq!(
            spec["failureDomain"]["label"],
            json!("kubernetes.io/hostname")
        );
        assert_eq!(
            spec["nodeSelector"]["weka.io/supports-backends"],
            json!("true")
        );
        assert_eq!(
            client["spec"]["nodeSelector"]["weka.io/supports-clients"],
            json!("true")
        );
        let fe = plan.cpus_of(Role::Frontend);
        assert_eq!(client["spec"]["coresNum"], json!(fe.len()), "{host}");
        let ids: Vec<u32> = fe.iter().collect();
        assert_eq!(client["spec"]["coreIds"], json!(ids), "{host}");
        assert_eq!(client["spec"]["portRange"]["basePort"], json!(45000));
        assert_eq!(
            client["spec"]["targetCluster"],
            json!({"name": "axon", "namespace": "weka"})
        );

        // Identical nodes: one kubelet file whose reserved CPUs are the OS's, Axon's and the
        // idle siblings, and nothing a pod is planned to get.
        let kubelet = parse(&file(&files, "kubelet-config.yaml").text);
        assert_valid(&kubelet_schema, &kubelet, host);
        let reserved = CpuSet::parse_list(kubelet["reservedSystemCPUs"].as_str().unwrap()).unwrap();
        assert_eq!(reserved, plan.reserved_cpus(), "{host}");
        assert!(reserved.is_superset_of(&plan.os_cpus));
        assert!(reserved.is_superset_of(&plan.axon_cpus));
        assert!(reserved.is_superset_of(&plan.idle_siblings));
        assert!(reserved.intersection(&plan.job_cpus).is_empty());
        assert_eq!(
            kubelet["cpuManagerPolicyOptions"]["full-pcpus-only"].as_str(),
            smt.then_some("true"),
            "{host}"
        );
        assert_eq!(kubelet["cpuManagerPolicy"], json!("static"));
    }
}

#[tokio::test]
async fn manual_cores_pin_one_container_per_role_and_node_to_the_plans_cpus() {
    use axon::model::plan::Role;
    let (cluster_schema, client_schema) = (schema("wekacluster"), schema("wekaclient"));
    let opts = K8sOptions {
        manual_cores: true,
        ..K8sOptions::default()
    };
    for (host, n) in [("amd-epyc-4numa", 5), ("intel-2s-smt", 6)] {
        let (p, files) = fixture_artefacts_with(host, n, &opts).await;
        let plan = p.plan.as_ref().unwrap();
        let cluster = parse(&file(&files, "weka-cluster.yaml").text);
        let client = parse(&file(&files, "weka-client.yaml").text);
        assert_valid(&cluster_schema, &cluster, host);
        assert_valid(&client_schema, &client, host);
        let spec = &cluster["spec"];
        assert_eq!(spec["cpuPolicy"], json!("manual"));
        assert_eq!(client["spec"]["cpuPolicy"], json!("manual"));
        let ids = |r| plan.cpus_of(r).iter().collect::<Vec<u32>>();
        assert_eq!(
            spec["roleCoreIds"],
            json!({"drive": ids(Role::Drive), "compute": ids(Role::Compute)}),
            "{host}"
        );
        let t = &spec["dynamicTemplate"];
        assert_eq!(t["driveContainers"], json!(n), "{host}");
        assert_eq!(t["computeContainers"], json!(n), "{host}");
        assert_eq!(t["driveCores"], json!(plan.planned.drive), "{host}");
        assert_eq!(t["computeCores"], json!(plan.planned.compute), "{host}");
        assert_eq!(
            t["computeHugepages"],
            json!(plan.planned.compute as u64 * 3072),
            "{host}"
        );
        assert_eq!(client["spec"]["coreIds"], json!(ids(Role::Frontend)));
        // The pinned CPUs are the ones the kubelet keeps from pods.
        let kubelet = parse(&file(&files, "kubelet-config.yaml").text);
        let reserved = CpuSet::parse_list(kubelet["reservedSystemCPUs"].as_str().unwrap()).unwrap();
        for r in Role::ALL {
            assert!(reserved.is_superset_of(&plan.cpus_of(r)), "{host} {r:?}");
        }
    }
}

#[test]
fn axon_plan_k8s_of_a_cluster_of_agents_writes_valid_resources_and_install_script() {
    let dir = tempfile::tempdir().unwrap();
    let agents = common::process::agents(dir.path(), 5);
    let inv = common::process::inventory(dir.path(), &agents);
    let out_dir = dir.path().join("k8s");
    let (code, out, err) = common::process::run(
        &[
            "plan",
            "--inventory",
            inv.to_str().unwrap(),
            "--format",
            "k8s",
            "--out",
            out_dir.to_str().unwrap(),
            "--k8s-namespace",
            "storage",
            "--cluster-name",
            "mesh",
            "--operator-version",
            "v1.8.7",
            "--csi-version",
            "2.7.2",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let read = |n: &str| std::fs::read_to_string(out_dir.join(n)).unwrap();
    let cluster_text = read("weka-cluster.yaml");
    let cluster = parse(&cluster_text);
    let client = parse(&read("weka-client.yaml"));
    assert_valid(&schema("wekacluster"), &cluster, "WekaCluster");
    assert_valid(&schema("wekaclient"), &client, "WekaClient");
    assert_valid(
        &schema("kubelet-config"),
        &parse(&read("kubelet-config.yaml")),
        "kubelet",
    );
    // Five servers: the nearest scheme to 16+4+2, said in a leading comment.
    assert_protection(&cluster["spec"], 5);
    assert!(
        cluster_text.starts_with('#')
            && cluster_text.contains("# NOTE: 5 servers cannot hold the seed's 16+4"),
        "{cluster_text}"
    );
    assert_eq!(
        cluster["metadata"],
        json!({"name": "mesh", "namespace": "storage"})
    );
    assert_eq!(
        client["spec"]["targetCluster"],
        json!({"name": "mesh", "namespace": "storage"})
    );
    // The emulated AMD host: 8 drive, 16 compute cores over NUMA 0 and 2, one NIC each.
    let t = &cluster["spec"]["dynamicTemplate"];
    assert_eq!(
        t,
        &json!({
            "computeContainers": 10, "driveContainers": 10,
            "computeCores": 8, "driveCores": 4, "numDrives": 4,
            "computeHugepages": 8 * 3072, "driveHugepages": 4 * 1536
        })
    );
    assert_eq!(
        cluster["spec"]["network"],
        json!({"ethDevices": ["ens1f0np0", "ens3f0np0"]})
    );
    // The seed's Kubernetes ranges, the ones `axon probe --groups k8s-core,k8s-client` checks.
    assert_eq!(
        cluster["spec"]["ports"],
        json!({"basePort": 35000, "portRange": 500})
    );
    assert_eq!(
        client["spec"]["portRange"],
        json!({"basePort": 45000, "portRange": 20001})
    );
    assert_eq!(client["spec"]["coresNum"], json!(12));
    assert_eq!(client["spec"]["hugepages"], json!(12 * 1536));

    let script = out_dir.join("k8s-install.sh");
    common::shell_ok(&script);
    let s = std::fs::read_to_string(&script).unwrap();
    for step in [
        "NODES=('n1' 'n2' 'n3' 'n4' 'n5')",
        "kubectl label nodes --overwrite \"$node\" weka.io/supports-backends=true weka.io/supports-clients=true",
        "selinuxenabled; then sudo setsebool -P container_use_wekafs on; fi",
        "kubectl create secret docker-registry \"$PULL_SECRET\" --namespace \"$ns\"",
        "for ns in \"$OPERATOR_NAMESPACE\" \"$CLUSTER_NAMESPACE\"; do",
        "CLUSTER_NAMESPACE='storage'",
        "OPERATOR_VERSION='v1.8.7'",
        "CSI_VERSION='2.7.2'",
        "helm upgrade --install weka-operator",
        "helm upgrade --install csi-wekafs",
        "kubectl apply -f \"$HERE/weka-cluster.yaml\"",
    ] {
        assert!(s.contains(step), "{step}: {s}");
    }
    // No credentials written down: they come from the environment.
    assert!(
        s.contains("REGISTRY_PASSWORD=\"${REGISTRY_PASSWORD:?"),
        "{s}"
    );

    // The script run against stand-ins for kubectl, helm and ssh: every step in order,
    // the secret in both namespaces, the version flags passed.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.path().join("calls.log");
    for tool in ["kubectl", "helm", "ssh"] {
        let p = bin.join(tool);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\n", log.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = std::process::Command::new("bash")
        .arg(&script)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("REGISTRY_USER", "robot")
        .env("REGISTRY_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("kubectl label"))
            .count(),
        5,
        "{calls}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("ssh n")).count(),
        5,
        "{calls}"
    );
    for ns in ["weka-operator-system", "storage"] {
        assert!(
            calls.contains(&format!(
                "kubectl create secret docker-registry weka-registry --namespace {ns} --docker-server=quay.io --docker-username=robot"
            )),
            "{ns}: {calls}"
        );
    }
    assert!(calls.contains("--version v1.8.7"), "{calls}");
    assert!(calls.contains("csi-wekafs/csi-wekafsplugin"), "{calls}");
    assert!(calls.contains("--version 2.7.2"), "{calls}");
    let last = lines.last().unwrap();
    assert!(last.ends_with("weka-client.yaml"), "{calls}");

    // An image the CRD would refuse is refused here, naming the pattern.
    let (code, _, err) = common::process::run(
        &[
            "plan",
            "--inventory",
            inv.to_str().unwrap(),
            "--format",
            "k8s",
            "--weka-image",
            "weka:latest",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("pattern"), "{err}");
}

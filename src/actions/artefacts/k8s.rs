//! The Kubernetes artefacts (REQUIREMENTS.md §6): a WekaCluster and a WekaClient for the
//! WEKA operator (group `weka.weka.io`, version `v1alpha1`), the kubelet settings that keep
//! the Axon cores from pods, and an install script (node labels, SELinux, registry secret,
//! the operator and CSI plugin by Helm). Every node of the plan is a candidate backend.
//!
//! The YAML is serialised from the typed structs below, not formatted by hand; the plan's
//! warnings, what cannot hold and the protection note go in leading `#` comments.

use super::{Artefact, PlannedNode};
use crate::model::hostlist;
use crate::model::plan::{Protection, Role};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

pub const API_VERSION: &str = "weka.weka.io/v1alpha1";
pub const BACKEND_LABEL: &str = "weka.io/supports-backends";
pub const CLIENT_LABEL: &str = "weka.io/supports-clients";
pub const FAILURE_DOMAIN_LABEL: &str = "kubernetes.io/hostname";
/// The backend containers' ports: the seed's Kubernetes operator/core range (35000-35499,
/// the `k8s-core` port group `axon probe` checks), as basePort and portRange. Not the
/// bare-metal 14000: the Axon agent listens there by default, and the operator's port
/// range (260 or 500 ports) would run past the seed's 14000-14100 firewall range.
pub fn cluster_ports() -> (u32, u32) {
    range_of("k8s-core", (35000, 35499))
}

/// The client containers' ports: the seed's client range (45000-65000, `k8s-client`);
/// 45000 is also the CRD's default basePort.
pub fn client_ports() -> (u32, u32) {
    range_of("k8s-client", (45000, 65000))
}

fn range_of(group: &str, fallback: (u16, u16)) -> (u32, u32) {
    let (lo, hi) = crate::model::ports::group(group)
        .and_then(|g| g.ranges.first().copied())
        .unwrap_or(fallback);
    (u32::from(lo), u32::from(hi) - u32::from(lo) + 1)
}
/// The namespace the operator's Helm chart is installed in (WEKA's docs).
pub const OPERATOR_NAMESPACE: &str = "weka-operator-system";
/// The image pull secret the install script creates in both namespaces.
pub const PULL_SECRET: &str = "weka-registry";

/// What the operator's resources need besides the plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sOptions {
    /// The weka-in-container image (`repo:X.Y.Z…`, the CRD's pattern).
    pub image: String,
    /// Namespace of the WekaCluster and WekaClient.
    pub namespace: String,
    /// Name of the WekaCluster (the WekaClient is `<name>-clients`).
    pub cluster_name: String,
    /// Helm chart version of the operator (`v1.8.7`).
    pub operator_version: String,
    /// Helm chart version of the CSI plugin; None: the chart's latest.
    pub csi_version: Option<String>,
    /// Pin WEKA to the plan's CPUs with cpuPolicy manual (roleCoreIds, coreIds) instead
    /// of dedicated / dedicated_ht.
    pub manual_cores: bool,
}

impl Default for K8sOptions {
    fn default() -> Self {
        K8sOptions {
            image: DEFAULT_IMAGE.into(),
            namespace: "weka".into(),
            cluster_name: "axon".into(),
            operator_version: "v1.8.7".into(),
            csi_version: None,
            manual_cores: false,
        }
    }
}

/// The image of the WEKA operator's own provisioning example; pass the release you run.
pub const DEFAULT_IMAGE: &str = "quay.io/weka.io/weka-in-container:4.4.2.157-k8s.2";

/// True when `image` matches the CRD's pattern `^.+:\d+\.\d+\.\d+.*$`.
pub fn image_ok(image: &str) -> bool {
    let Some((repo, tag)) = image.rsplit_once(':') else {
        return false;
    };
    if repo.is_empty() {
        return false;
    }
    // \d+\.\d+\.\d+ at the start of the tag: three dot-separated runs of digits.
    let mut rest = tag;
    for i in 0..3 {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        if i < 2 {
            match rest.strip_prefix('.') {
                Some(r) => rest = r,
                None => return false,
            }
        }
    }
    true
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WekaCluster {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: WekaClusterSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WekaClusterSpec {
    pub template: &'static str,
    pub image: String,
    pub image_pull_secret: String,
    pub dynamic_template: DynamicTemplate,
    pub cpu_policy: CpuPolicy,
    pub network: Network,
    pub failure_domain: FailureDomain,
    pub hot_spare: u64,
    pub redundancy_level: u64,
    pub stripe_width: u64,
    pub ports: ClusterPorts,
    pub node_selector: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_core_ids: Option<RoleCoreIds>,
}

/// Kernel CPU ids per role, copied by the operator to every container of the role
/// (cpuPolicy manual).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleCoreIds {
    pub drive: Vec<u32>,
    pub compute: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicTemplate {
    pub compute_containers: u64,
    pub drive_containers: u64,
    pub compute_cores: u64,
    pub drive_cores: u64,
    pub num_drives: u64,
    /// MiB per container.
    pub compute_hugepages: u64,
    pub drive_hugepages: u64,
}

/// The CRD's enum (auto | shared | dedicated | dedicated_ht | manual).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuPolicy {
    Auto,
    Shared,
    Dedicated,
    DedicatedHt,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eth_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eth_devices: Option<Vec<String>>,
}

impl Network {
    fn of(nics: &[String]) -> Network {
        match nics {
            [one] => Network {
                eth_device: Some(one.clone()),
                eth_devices: None,
            },
            many => Network {
                eth_device: None,
                eth_devices: Some(many.to_vec()),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureDomain {
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPorts {
    pub base_port: u32,
    pub port_range: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WekaClient {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: WekaClientSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WekaClientSpec {
    pub image: String,
    pub image_pull_secret: String,
    pub target_cluster: TargetCluster,
    pub cores_num: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_ids: Option<Vec<u32>>,
    pub cpu_policy: CpuPolicy,
    /// MiB per client container.
    pub hugepages: u64,
    pub network: Network,
    pub port_range: PortRange,
    pub node_selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetCluster {
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRange {
    pub base_port: u32,
    pub port_range: u32,
}

/// The kubelet settings (a KubeletConfiguration to merge into the node's).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub cpu_manager_policy: &'static str,
    #[serde(rename = "reservedSystemCPUs")]
    pub reserved_system_cpus: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_manager_policy_options: BTreeMap<String, String>,
    pub topology_manager_policy: &'static str,
}

/// One role's figures per container over every node: the counts, and the smallest and
/// largest container (cores, and huge pages per core).
#[derive(Debug, Clone, Copy, Default)]
struct RoleFigures {
    containers: u64,
    min_cores: Option<u64>,
    max_cores: u64,
    hugepages_per_core: Option<u64>,
}

fn figures(nodes: &[PlannedNode], role: Role) -> RoleFigures {
    let mut f = RoleFigures::default();
    for c in nodes
        .iter()
        .flat_map(|n| n.plan.containers.iter())
        .filter(|c| c.role == role)
    {
        let cores = c.cpus.len() as u64;
        f.containers += 1;
        f.min_cores = Some(f.min_cores.map_or(cores, |m| m.min(cores)));
        f.max_cores = f.max_cores.max(cores);
        if let Some(per) = c.hugepages_mib.checked_div(cores) {
            f.hugepages_per_core = Some(f.hugepages_per_core.map_or(per, |m| m.max(per)));
        }
    }
    f
}

/// True when SMT is on on every node (one idle sibling per Axon core).
fn smt(nodes: &[PlannedNode]) -> bool {
    !nodes.is_empty() && nodes.iter().all(|n| n.topology.has_smt_siblings())
}

/// The dataplane NICs the containers use, over every node, in name order.
fn nics(nodes: &[PlannedNode]) -> (Vec<String>, bool) {
    let per_node: Vec<BTreeSet<String>> = nodes
        .iter()
        .map(|n| {
            n.plan
                .containers
                .iter()
                .filter_map(|c| c.nic.clone())
                .collect()
        })
        .collect();
    let all: BTreeSet<String> = per_node.iter().flatten().cloned().collect();
    let same = per_node.iter().all(|s| *s == all);
    (all.into_iter().collect(), same)
}

/// The leading comments: what made the file, the plan's warnings and what cannot hold.
fn header(what: &str, source: &str, nodes: &[PlannedNode], extra: &[String]) -> String {
    let mut s = format!(
        "# {what}, made by `axon plan --format k8s` from {source}.\n\
         # Figures come from the core plan (`axon plan` says why each is what it is).\n"
    );
    for e in extra {
        let _ = writeln!(s, "# NOTE: {e}");
    }
    s.push_str(&super::note_comments(nodes));
    s
}

fn yaml<T: Serialize>(v: &T) -> Result<String, String> {
    serde_norway::to_string(v).map_err(|e| format!("YAML: {e}"))
}

fn selector(label: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(label.to_string(), "true".to_string())])
}

/// The WekaCluster and what its comments say.
pub fn weka_cluster(
    nodes: &[PlannedNode],
    opts: &K8sOptions,
) -> Result<(WekaCluster, Vec<String>), String> {
    if nodes.is_empty() {
        return Err("no node to deploy on".into());
    }
    if !image_ok(&opts.image) {
        return Err(format!(
            "image {:?} does not match the CRD's pattern ^.+:\\d+\\.\\d+\\.\\d+.*$ (e.g. {DEFAULT_IMAGE})",
            opts.image
        ));
    }
    let (prot, why) = Protection::for_domains(nodes.len())?;
    let mut notes = vec![format!(
        "protection {}+{} with {} hot spare(s) over {} failure domains (one per node, label {FAILURE_DOMAIN_LABEL})",
        prot.stripe_width,
        prot.parity,
        prot.hot_spares,
        nodes.len()
    )];
    notes.extend(why.map(|w| format!("{w} (the nearest scheme)")));
    let (drive, compute) = (figures(nodes, Role::Drive), figures(nodes, Role::Compute));
    for (role, f) in [("drive", drive), ("compute", compute)] {
        if f.min_cores.is_some_and(|m| m != f.max_cores) {
            notes.push(format!(
                "the plan gives {role} containers {} to {} cores; the template holds one figure, \
                 the smallest, so no node is given more cores than the plan keeps for Axon",
                f.min_cores.unwrap_or(0),
                f.max_cores
            ));
        }
    }
    let (nic_names, same) = nics(nodes);
    if nic_names.is_empty() {
        return Err("no container has a dataplane NIC: nothing for network.ethDevice".into());
    }
    if !same {
        notes.push(format!(
            "the nodes' dataplane NICs differ; network lists them all ({})",
            nic_names.join(", ")
        ));
    }
    let policy = policy(nodes, opts);
    let cores = |f: RoleFigures| f.min_cores.unwrap_or(0);
    let hp = |f: RoleFigures| cores(f) * f.hugepages_per_core.unwrap_or(0);
    let mut template = DynamicTemplate {
        compute_containers: compute.containers,
        drive_containers: drive.containers,
        compute_cores: cores(compute),
        drive_cores: cores(drive),
        // One drive core per drive: each drive container takes as many drives as it has
        // cores.
        num_drives: cores(drive),
        compute_hugepages: hp(compute),
        drive_hugepages: hp(drive),
    };
    let mut role_core_ids = None;
    if opts.manual_cores {
        // roleCoreIds is one list per role, copied to every container of the role: one
        // container per role per node, holding the role's cores on every NIC domain.
        let ids = |r: Role| same_ids(nodes, r);
        let (d, c) = (ids(Role::Drive)?, ids(Role::Compute)?);
        let n = nodes.len() as u64;
        let role_hp = |r: Role| -> u64 {
            nodes[0]
                .plan
                .containers
                .iter()
                .filter(|x| x.role == r)
                .map(|x| x.hugepages_mib)
                .sum()
        };
        template = DynamicTemplate {
            compute_containers: if c.is_empty() { 0 } else { n },
            drive_containers: if d.is_empty() { 0 } else { n },
            compute_cores: c.len() as u64,
            drive_cores: d.len() as u64,
            num_drives: d.len() as u64,
            compute_hugepages: role_hp(Role::Compute),
            drive_hugepages: role_hp(Role::Drive),
        };
        notes.push(
            "cpuPolicy manual: one drive and one compute container per node, pinned to the \
             plan's CPUs (roleCoreIds, one thread per core); the kubelet allocates them no \
             exclusive CPUs and reservedSystemCPUs keeps pods off them and their siblings"
                .into(),
        );
        role_core_ids = Some(RoleCoreIds {
            drive: d,
            compute: c,
        });
    }
    Ok((
        WekaCluster {
            api_version: API_VERSION,
            kind: "WekaCluster",
            metadata: Metadata {
                name: opts.cluster_name.clone(),
                namespace: opts.namespace.clone(),
            },
            spec: WekaClusterSpec {
                template: "dynamic",
                image: opts.image.clone(),
                image_pull_secret: PULL_SECRET.into(),
                dynamic_template: template,
                cpu_policy: policy,
                network: Network::of(&nic_names),
                failure_domain: FailureDomain {
                    label: FAILURE_DOMAIN_LABEL.into(),
                },
                hot_spare: prot.hot_spares as u64,
                redundancy_level: prot.parity as u64,
                stripe_width: prot.stripe_width as u64,
                ports: ClusterPorts {
                    base_port: cluster_ports().0,
                    port_range: cluster_ports().1,
                },
                node_selector: selector(BACKEND_LABEL),
                role_core_ids,
            },
        },
        notes,
    ))
}

/// cpuPolicy: manual when asked, else dedicated_ht with SMT on every node, else dedicated.
fn policy(nodes: &[PlannedNode], opts: &K8sOptions) -> CpuPolicy {
    if opts.manual_cores {
        CpuPolicy::Manual
    } else if smt(nodes) {
        CpuPolicy::DedicatedHt
    } else {
        CpuPolicy::Dedicated
    }
}

/// The CPUs of `role`, the same on every node, or why not (one list serves every node).
fn same_ids(nodes: &[PlannedNode], role: Role) -> Result<Vec<u32>, String> {
    let mut by: BTreeMap<Vec<u32>, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        by.entry(n.plan.cpus_of(role).iter().collect())
            .or_default()
            .push(n.name);
    }
    if by.len() == 1 {
        return Ok(by.into_keys().next().unwrap_or_default());
    }
    Err(format!(
        "cpuPolicy manual needs the same {} CPUs on every node (one list serves all): {}",
        role.as_str(),
        by.iter()
            .map(|(ids, names)| format!(
                "{} has {}",
                hostlist::compress(names),
                crate::model::cpuset::CpuSet::from_ids(ids.iter().copied()).to_list_string()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// The WekaClient: one client container per node with the frontend cores of the plan.
pub fn weka_client(
    nodes: &[PlannedNode],
    opts: &K8sOptions,
) -> Result<(WekaClient, Vec<String>), String> {
    if nodes.is_empty() {
        return Err("no node to deploy on".into());
    }
    let mut notes = Vec::new();
    // Per node: the frontend CPUs and huge pages.
    let per_node: Vec<(Vec<u32>, u64)> = nodes
        .iter()
        .map(|n| {
            let cpus = n.plan.cpus_of(Role::Frontend).iter().collect();
            let hp = n
                .plan
                .containers
                .iter()
                .filter(|c| c.role == Role::Frontend)
                .map(|c| c.hugepages_mib)
                .sum();
            (cpus, hp)
        })
        .collect();
    let cores_num = per_node.iter().map(|(c, _)| c.len()).min().unwrap_or(0) as u64;
    let hugepages = per_node.iter().map(|(_, h)| *h).min().unwrap_or(0);
    let core_ids = if per_node.iter().all(|(c, _)| *c == per_node[0].0) {
        Some(per_node[0].0.clone())
    } else if opts.manual_cores {
        return Err(same_ids(nodes, Role::Frontend).unwrap_err());
    } else {
        notes.push(
            "the nodes' frontend CPUs differ, so no coreIds: one WekaClient cannot pin them \
             on every node; coresNum is the smallest node's"
                .to_string(),
        );
        None
    };
    let (nic_names, _) = nics(nodes);
    let policy = policy(nodes, opts);
    Ok((
        WekaClient {
            api_version: API_VERSION,
            kind: "WekaClient",
            metadata: Metadata {
                name: format!("{}-clients", opts.cluster_name),
                namespace: opts.namespace.clone(),
            },
            spec: WekaClientSpec {
                image: opts.image.clone(),
                image_pull_secret: PULL_SECRET.into(),
                target_cluster: TargetCluster {
                    name: opts.cluster_name.clone(),
                    namespace: opts.namespace.clone(),
                },
                cores_num,
                core_ids,
                cpu_policy: policy,
                hugepages,
                network: Network::of(&nic_names),
                port_range: PortRange {
                    base_port: client_ports().0,
                    port_range: client_ports().1,
                },
                node_selector: selector(CLIENT_LABEL),
            },
        },
        notes,
    ))
}

/// The kubelet settings of one node.
pub fn kubelet(n: &PlannedNode) -> KubeletConfiguration {
    let smt = n.topology.has_smt_siblings();
    KubeletConfiguration {
        api_version: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        cpu_manager_policy: "static",
        reserved_system_cpus: n.plan.reserved_cpus().to_list_string(),
        cpu_manager_policy_options: if smt {
            BTreeMap::from([("full-pcpus-only".to_string(), "true".to_string())])
        } else {
            BTreeMap::new()
        },
        topology_manager_policy: "best-effort",
    }
}

const KUBELET_NOTE: &str = "\
# Merge into the kubelet's configuration (/var/lib/kubelet/config.yaml, or the\n\
# KubeletConfiguration of your distribution) on the nodes named above. Changing the CPU\n\
# manager policy needs the node drained, /var/lib/kubelet/cpu_manager_state removed and\n\
# the kubelet restarted.\n\
#\n\
# reservedSystemCPUs: the OS's cores, the Axon CPUs and their idle SMT siblings, so that\n\
# no pod is given them as exclusive CPUs (the static CPU manager hands out only the\n\
# rest). Pods in the shared pool (not Guaranteed with whole CPUs) may still run there.\n\
# CAVEAT: with cpuPolicy dedicated or dedicated_ht the operator's pods ask the kubelet\n\
# for whole CPUs, which the static CPU manager hands out from outside\n\
# reservedSystemCPUs: WEKA's pods would then take cores the plan leaves to jobs, not the\n\
# plan's Axon CPUs. The operator's cpuPolicy manual allocates no exclusive CPUs and\n\
# expects the rest of the node to keep off WEKA's cores and their siblings (what this\n\
# file does), with the ids in roleCoreIds; but that is one list per role copied to\n\
# every container of the role, which fits one container per role per node, not the\n\
# plan's one per NIC domain. `--k8s-cpu-policy manual` makes it so: one drive and one\n\
# compute container per node, each on the role's CPUs over every NIC domain.\n\
# full-pcpus-only (SMT on): a Guaranteed pod gets whole cores, never half of one shared\n\
# with another pod.\n\
# topologyManagerPolicy best-effort: CPUs and devices aligned on one NUMA domain when\n\
# they fit, and no pod refused when they do not; restricted or single-numa-node would\n\
# refuse every job larger than one domain. The Axon containers' NUMA placement comes\n\
# from the plan (each on its NIC's domain), not from the topology manager.\n\
# memoryManagerPolicy is left None: Static needs reservedMemory per NUMA domain to\n\
# equal the kube, system and eviction reservations exactly, which the plan does not\n\
# know; a wrong figure stops the kubelet.\n";

fn kubelet_files(nodes: &[PlannedNode], source: &str) -> Result<Vec<Artefact>, String> {
    let mut groups: BTreeMap<String, (Vec<&str>, Vec<PlannedNode>)> = BTreeMap::new();
    for n in nodes {
        let text = yaml(&kubelet(n))?;
        let g = groups.entry(text).or_default();
        g.0.push(n.name);
        g.1.push(*n);
    }
    let single = groups.len() == 1;
    let mut out = Vec::new();
    for (text, (names, members)) in &groups {
        let hosts = hostlist::compress(names);
        let mut s = header(
            &format!("Kubelet settings for {hosts}"),
            source,
            members,
            &[],
        );
        s.push_str(KUBELET_NOTE);
        let p = members[0].plan;
        let _ = writeln!(
            s,
            "# On {hosts}: OS {}, Axon {}, idle siblings {}; pods get {}.",
            or_none(&p.os_cpus.to_list_string()),
            or_none(&p.axon_cpus.to_list_string()),
            or_none(&p.idle_siblings.to_list_string()),
            or_none(&p.job_cpus.to_list_string())
        );
        s.push_str(text);
        out.push(Artefact {
            name: if single {
                "kubelet-config.yaml".into()
            } else {
                format!("{hosts}/kubelet-config.yaml")
            },
            install_to: format!("merge into the kubelet configuration of {hosts}"),
            text: s,
        });
    }
    Ok(out)
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

/// Quotes `s` for bash (single quotes).
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn install_script(nodes: &[PlannedNode], opts: &K8sOptions, source: &str) -> String {
    let names: Vec<String> = nodes.iter().map(|n| sq(n.name)).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#!/usr/bin/env bash\n\
         # Kubernetes install of NeuralMesh Axon, made by `axon plan --format k8s` from\n\
         # {source}.\n\
         # Run where kubectl and helm reach the cluster (Kubernetes >= 1.25, OpenShift >= 4.17),\n\
         # after the kubelet settings (kubelet-config.yaml) are in place on every node, from\n\
         # the directory holding weka-cluster.yaml and weka-client.yaml.\n\
         # Idempotent: labels are overwritten, secrets applied, Helm releases upgraded.\n\
         # The registry credentials come from the environment:\n\
         #   REGISTRY_USER=… REGISTRY_PASSWORD=… [REGISTRY_SERVER=quay.io] bash k8s-install.sh\n\
         # The SELinux step runs on each node through $NODE_SHELL (default: ssh NODE).\n\
         # NODES are the nodes' names as the agents report them: they must be the Kubernetes\n\
         # node names (`kubectl get nodes`); edit the list if they differ."
    );
    let _ = writeln!(
        s,
        "set -euo pipefail\n\n\
         NODES=({nodes})\n\
         OPERATOR_NAMESPACE={opns}\n\
         CLUSTER_NAMESPACE={ns}\n\
         OPERATOR_VERSION={opv}\n\
         CSI_VERSION={csi}\n\
         PULL_SECRET={secret}\n\
         OPERATOR_CHART=\"${{OPERATOR_CHART:-oci://quay.io/weka.io/helm/weka-operator}}\"\n\
         CSI_REPO=\"${{CSI_REPO:-https://weka.github.io/csi-wekafs}}\"\n\
         REGISTRY_SERVER=\"${{REGISTRY_SERVER:-quay.io}}\"\n\
         REGISTRY_USER=\"${{REGISTRY_USER:?set REGISTRY_USER (and REGISTRY_PASSWORD) to the registry account}}\"\n\
         REGISTRY_PASSWORD=\"${{REGISTRY_PASSWORD:?set REGISTRY_PASSWORD to the registry password or token}}\"\n\
         NODE_SHELL=\"${{NODE_SHELL:-ssh}}\"\n\
         HERE=$(cd \"$(dirname \"$0\")\" && pwd)\n",
        nodes = names.join(" "),
        opns = sq(OPERATOR_NAMESPACE),
        ns = sq(&opts.namespace),
        opv = sq(&opts.operator_version),
        csi = sq(opts.csi_version.as_deref().unwrap_or("")),
        secret = sq(PULL_SECRET),
    );
    s.push_str(
        "echo '== 1. node labels: every node a candidate backend and client'\n\
         for node in \"${NODES[@]}\"; do\n\
         \x20 kubectl label nodes --overwrite \"$node\" weka.io/supports-backends=true weka.io/supports-clients=true\n\
         done\n\n\
         echo '== 2. SELinux: let containers use wekafs where SELinux is on'\n\
         for node in \"${NODES[@]}\"; do\n\
         \x20 \"$NODE_SHELL\" \"$node\" 'if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; then sudo setsebool -P container_use_wekafs on; fi'\n\
         done\n\n\
         echo '== 3. namespaces and the registry secret in each'\n\
         for ns in \"$OPERATOR_NAMESPACE\" \"$CLUSTER_NAMESPACE\"; do\n\
         \x20 kubectl create namespace \"$ns\" --dry-run=client -o yaml | kubectl apply -f -\n\
         \x20 kubectl create secret docker-registry \"$PULL_SECRET\" --namespace \"$ns\" \\\n\
         \x20   --docker-server=\"$REGISTRY_SERVER\" --docker-username=\"$REGISTRY_USER\" \\\n\
         \x20   --docker-password=\"$REGISTRY_PASSWORD\" --dry-run=client -o yaml | kubectl apply -f -\n\
         done\n\n\
         echo '== 4. the WEKA operator'\n\
         helm upgrade --install weka-operator \"$OPERATOR_CHART\" --namespace \"$OPERATOR_NAMESPACE\" \\\n\
         \x20 --version \"$OPERATOR_VERSION\" --set imagePullSecret=\"$PULL_SECRET\" --wait\n\n\
         echo '== 5. the CSI plugin'\n\
         helm repo add csi-wekafs \"$CSI_REPO\" --force-update\n\
         csi_version=()\n\
         if [ -n \"$CSI_VERSION\" ]; then csi_version=(--version \"$CSI_VERSION\"); fi\n\
         helm upgrade --install csi-wekafs csi-wekafs/csi-wekafsplugin --namespace csi-wekafs \\\n\
         \x20 --create-namespace ${csi_version[@]+\"${csi_version[@]}\"} --wait\n\n\
         echo '== 6. the cluster, then its clients'\n\
         kubectl apply -f \"$HERE/weka-cluster.yaml\"\n\
         kubectl apply -f \"$HERE/weka-client.yaml\"\n\
         echo \"done: kubectl get wekacluster,wekaclient -n $CLUSTER_NAMESPACE\"\n",
    );
    s
}

/// The four artefacts for `nodes`; `source` says where the facts came from.
pub fn artefacts(
    nodes: &[PlannedNode],
    opts: &K8sOptions,
    source: &str,
) -> Result<Vec<Artefact>, String> {
    let (cluster, cnotes) = weka_cluster(nodes, opts)?;
    let (client, lnotes) = weka_client(nodes, opts)?;
    let mut cluster_text = header("WekaCluster for NeuralMesh Axon", source, nodes, &cnotes);
    let _ = writeln!(
        cluster_text,
        "# cpuPolicy {}.",
        match cluster.spec.cpu_policy {
            CpuPolicy::DedicatedHt =>
                "dedicated_ht: SMT is on, so each WEKA core takes a whole core, both threads",
            CpuPolicy::Manual => "manual: WEKA runs on the plan's CPUs (roleCoreIds)",
            _ => "dedicated: SMT is off, one thread is a whole core",
        }
    );
    let (base, range) = cluster_ports();
    let _ = writeln!(
        cluster_text,
        "# ports {base}-{}: the seed's Kubernetes core range (`axon probe --groups k8s-core`).",
        base + range - 1
    );
    cluster_text.push_str(&yaml(&cluster)?);
    let mut client_text = header("WekaClient for NeuralMesh Axon", source, nodes, &lnotes);
    let _ = writeln!(
        client_text,
        "# coresNum and coreIds are the plan's frontend cores; hugepages in MiB. coreIds are\n\
         # kernel CPU ids and take effect with cpuPolicy manual."
    );
    client_text.push_str(&yaml(&client)?);
    let mut out = vec![
        Artefact {
            name: "weka-cluster.yaml".into(),
            install_to: "kubectl apply -f weka-cluster.yaml (k8s-install.sh does)".into(),
            text: cluster_text,
        },
        Artefact {
            name: "weka-client.yaml".into(),
            install_to: "kubectl apply -f weka-client.yaml (k8s-install.sh does)".into(),
            text: client_text,
        },
    ];
    out.extend(kubelet_files(nodes, source)?);
    out.push(Artefact {
        name: "k8s-install.sh".into(),
        install_to: "run where kubectl reaches the cluster: REGISTRY_USER=… REGISTRY_PASSWORD=… bash k8s-install.sh".into(),
        text: install_script(nodes, opts, source),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpuset::CpuSet;
    use crate::model::plan::testing;
    use crate::model::topology::Topology;

    /// 2 NUMA domains × `cores` cores, SMT on or off (Linux numbering).
    /// 2 NUMA domains of `cores / 2` cores, SMT on or off, 256 GiB each.
    fn host(cores: u32, smt: bool) -> Topology {
        testing::host(2, cores / 2, if smt { 2 } else { 1 }, 256)
    }

    /// The default plan with a dataplane NIC on each domain.
    fn plan(t: &Topology, drives: usize) -> crate::model::plan::NodePlan {
        testing::plan(t, testing::nics(&[Some(0), Some(1)]), drives)
    }

    #[test]
    fn image_pattern_is_the_crds() {
        assert!(image_ok(DEFAULT_IMAGE));
        assert!(image_ok("weka:4.4.0"));
        assert!(!image_ok("weka:latest"));
        assert!(!image_ok("weka:4.4"));
        assert!(!image_ok(":4.4.0"));
        assert!(!image_ok("weka"));
    }

    #[test]
    fn k8s_cluster_template_is_the_plans_totals_and_protection_fits_the_nodes() {
        let t = host(48, true);
        let p = plan(&t, 8);
        let names = ["k1", "k2", "k3", "k4", "k5", "k6"];
        let nodes: Vec<PlannedNode> = names
            .iter()
            .map(|n| PlannedNode {
                name: n,
                topology: &t,
                plan: &p,
                network: None,
            })
            .collect();
        let (c, notes) = weka_cluster(&nodes, &K8sOptions::default()).unwrap();
        let d = &c.spec.dynamic_template;
        // 8 drive cores and 16 compute cores per node, in two containers each.
        assert_eq!((d.drive_containers, d.compute_containers), (12, 12));
        assert_eq!((d.drive_cores, d.compute_cores), (4, 8));
        assert_eq!(d.num_drives, 4);
        assert_eq!(
            (d.drive_hugepages, d.compute_hugepages),
            (4 * 1536, 8 * 3072)
        );
        assert_eq!(c.spec.cpu_policy, CpuPolicy::DedicatedHt);
        assert_eq!(
            c.spec.network.eth_devices,
            Some(vec!["ens1".into(), "ens2".into()])
        );
        let prot = Protection {
            stripe_width: c.spec.stripe_width as usize,
            parity: c.spec.redundancy_level as usize,
            hot_spares: c.spec.hot_spare as usize,
        };
        assert!(prot.check(6).is_ok(), "{prot:?}");
        assert!(notes.iter().any(|n| n.contains("6 servers cannot hold")));
        // Four nodes hold no scheme.
        assert!(
            weka_cluster(&nodes[..4], &K8sOptions::default())
                .unwrap_err()
                .contains("3+2 needs 5")
        );
        let bad = K8sOptions {
            image: "weka:latest".into(),
            ..K8sOptions::default()
        };
        assert!(weka_cluster(&nodes, &bad).unwrap_err().contains("pattern"));
    }

    #[test]
    fn k8s_manual_cores_need_the_same_cpus_on_every_node() {
        let (a, b) = (host(48, true), host(32, true));
        let (pa, pb) = (plan(&a, 8), plan(&b, 8));
        let mut nodes: Vec<PlannedNode> = ["m1", "m2", "m3", "m4"]
            .iter()
            .map(|n| PlannedNode {
                name: n,
                topology: &a,
                plan: &pa,
                network: None,
            })
            .collect();
        nodes.push(PlannedNode {
            name: "m5",
            topology: &b,
            plan: &pb,
            network: None,
        });
        let manual = K8sOptions {
            manual_cores: true,
            ..K8sOptions::default()
        };
        let e = weka_cluster(&nodes, &manual).unwrap_err();
        assert!(e.contains("m[1-4] has") && e.contains("m5 has"), "{e}");
        assert!(weka_client(&nodes, &manual).is_err());
        // Without manual, the differing node only loses the client's coreIds.
        let (c, notes) = weka_client(&nodes, &K8sOptions::default()).unwrap();
        assert!(c.spec.core_ids.is_none());
        assert!(notes.iter().any(|n| n.contains("frontend CPUs differ")));
        nodes[4] = PlannedNode {
            name: "m5",
            topology: &a,
            plan: &pa,
            network: None,
        };
        let (c, _) = weka_cluster(&nodes, &manual).unwrap();
        let ids = c.spec.role_core_ids.unwrap();
        assert_eq!(
            ids.drive,
            pa.cpus_of(Role::Drive).iter().collect::<Vec<_>>()
        );
        assert_eq!(c.spec.dynamic_template.drive_containers, 5);
        assert_eq!(c.spec.cpu_policy, CpuPolicy::Manual);
    }

    #[test]
    fn k8s_kubelet_reserves_os_axon_and_siblings_per_group_of_identical_nodes() {
        let (smt, flat) = (host(48, true), host(32, false));
        let (ps, pf) = (plan(&smt, 8), plan(&flat, 4));
        let nodes = vec![
            PlannedNode {
                name: "a1",
                topology: &smt,
                plan: &ps,
                network: None,
            },
            PlannedNode {
                name: "a2",
                topology: &smt,
                plan: &ps,
                network: None,
            },
            PlannedNode {
                name: "b1",
                topology: &flat,
                plan: &pf,
                network: None,
            },
        ];
        let files = kubelet_files(&nodes, "test").unwrap();
        assert_eq!(files.len(), 2);
        let a = files
            .iter()
            .find(|f| f.name == "a[1-2]/kubelet-config.yaml")
            .unwrap();
        let k = kubelet(&nodes[0]);
        assert_eq!(k.reserved_system_cpus, ps.reserved_cpus().to_list_string());
        let reserved = CpuSet::parse_list(&k.reserved_system_cpus).unwrap();
        assert!(reserved.is_superset_of(&ps.os_cpus));
        assert!(reserved.is_superset_of(&ps.axon_cpus));
        assert!(reserved.is_superset_of(&ps.idle_siblings));
        assert!(reserved.intersection(&ps.job_cpus).is_empty());
        assert!(a.text.contains("full-pcpus-only: 'true'"), "{}", a.text);
        let b = files
            .iter()
            .find(|f| f.name == "b1/kubelet-config.yaml")
            .unwrap();
        let yaml = |t: &str| -> serde_json::Value { serde_norway::from_str(t).unwrap() };
        let (ya, yb) = (yaml(&a.text), yaml(&b.text));
        assert_eq!(
            ya["reservedSystemCPUs"],
            ps.reserved_cpus().to_list_string()
        );
        assert_eq!(
            yb["reservedSystemCPUs"],
            pf.reserved_cpus().to_list_string()
        );
        assert!(yb.get("cpuManagerPolicyOptions").is_none(), "{}", b.text);
        assert_eq!(yb["cpuManagerPolicy"], "static");
    }
}

//! `/metrics`: the node's facts as Prometheus metrics under the `axon_` prefix. Values come
//! from the agent's latest collection (collectors run on their own schedule), so a slow or
//! failing collector never blocks a scrape: it shows up as `axon_collector_success 0` and
//! an old `axon_collector_last_success_timestamp_seconds`.
//!
//! A fact the collector could not read is not a number: its series is left out (never
//! exported as 0), the collector's problems are counted in `axon_collector_problems`, and
//! the agent logs them when they change.
//!
//! Served as OpenMetrics when the scraper asks for it (Prometheus does), and as the classic
//! text format 0.0.4 otherwise (curl, `promtool check metrics`).

use super::state::{AgentState, now_ms};
use crate::model::checks::CheckStatus;
use crate::model::nvme::CriticalWarning;
use crate::model::snapshot::NodeSnapshot;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;
type G = Family<Labels, Gauge<f64, AtomicU64>>;
type C = Family<Labels, Counter<u64>>;

struct Reg(Registry);

impl Reg {
    fn gauge(&mut self, name: &str, help: &str) -> G {
        let f = G::default();
        self.0.register(name, help, f.clone());
        f
    }
    fn counter(&mut self, name: &str, help: &str) -> C {
        let f = C::default();
        self.0.register(name, help, f.clone());
        f
    }
}

fn l<const N: usize>(pairs: [(&'static str, String); N]) -> Labels {
    pairs.to_vec()
}

fn set(g: &G, labels: Labels, v: f64) {
    g.get_or_create(&labels).set(v);
}

/// Builds the registry for one snapshot. `now_ms` is the scrape time.
pub fn registry(s: &NodeSnapshot, now_ms: i64) -> Registry {
    let mut r = Reg(Registry::with_prefix("axon"));

    let build = r.gauge(
        "build_info",
        "Version of the axon agent serving these metrics (always 1)",
    );
    set(
        &build,
        l([("version", env!("CARGO_PKG_VERSION").to_string())]),
        1.0,
    );
    let node = r.gauge("node_info", "Identity of the node (always 1); emulated_profile is set when the host facts come from an emulated profile");
    let host = s.host.clone().unwrap_or_default();
    set(
        &node,
        l([
            ("hostname", s.node.hostname.clone()),
            ("kernel", host.kernel_release.clone().unwrap_or_default()),
            ("os", host.os_name.clone().unwrap_or_default()),
            (
                "emulated_profile",
                s.node.emulated_profile.clone().unwrap_or_default(),
            ),
        ]),
        1.0,
    );
    let scrape = r.gauge(
        "scrape_timestamp_seconds",
        "When this scrape was served (agent clock)",
    );
    set(&scrape, vec![], now_ms as f64 / 1000.0);

    // Collector health: a failing collector reports itself here and never fails the scrape.
    let ok = r.gauge(
        "collector_success",
        "1 if the collector's last run succeeded without problems",
    );
    let dur = r.gauge(
        "collector_duration_seconds",
        "Duration of the collector's last run",
    );
    let last = r.gauge(
        "collector_last_success_timestamp_seconds",
        "When the collector last succeeded (0 = never); data older than a few intervals is stale",
    );
    let interval = r.gauge("collector_interval_seconds", "How often the collector runs");
    let problems = r.gauge(
        "collector_problems",
        "Problems of the collector's last run (unreadable or malformed files; 1 if the run failed): their series are left out, and the agent's log names them",
    );
    for c in &s.collectors {
        let lab = l([("collector", c.section.as_str().to_string())]);
        set(&ok, lab.clone(), f64::from(u8::from(c.ok)));
        set(&problems, lab.clone(), f64::from(c.problems));
        set(&dur, lab.clone(), c.duration_us as f64 / 1e6);
        set(
            &last,
            lab.clone(),
            c.last_success_ms.unwrap_or(0) as f64 / 1000.0,
        );
        set(&interval, lab, c.interval_ms as f64 / 1000.0);
    }

    if let Some(t) = &s.topology {
        let cpu_info = r.gauge("cpu_info", "One series per logical CPU (always 1): core, package, NUMA node and owner role (drives/compute/frontend/slurm/os/free)");
        let online = r.gauge("cpu_online", "1 if the CPU is online");
        let pinned = r.gauge("cpu_pinned_processes", "Processes whose CPU affinity is restricted and includes this CPU (kernel threads excluded)");
        let conflicts = r.gauge(
            "cpu_conflicts",
            "Conflicts on an Axon core: other processes pinned to it or running on it",
        );
        for cpu in &t.cpus {
            let usage = s.pinning.as_ref().and_then(|p| p.cpu(cpu.id));
            let role = usage
                .map(|u| u.role().label())
                .unwrap_or_else(|| "unknown".into());
            let id = cpu.id.to_string();
            // An unreadable core or package id is held as a stand-in; the label stays empty.
            let known = |unreadable: &crate::model::cpuset::CpuSet, v: u32| {
                if unreadable.contains(cpu.id) {
                    String::new()
                } else {
                    v.to_string()
                }
            };
            set(
                &cpu_info,
                l([
                    ("cpu", id.clone()),
                    ("core", known(&t.unreadable.core_id, cpu.core_id)),
                    ("package", known(&t.unreadable.package_id, cpu.package_id)),
                    (
                        "numa_node",
                        cpu.numa_node.map(|n| n.to_string()).unwrap_or_default(),
                    ),
                    ("role", role),
                ]),
                1.0,
            );
            set(
                &online,
                l([("cpu", id.clone())]),
                f64::from(u8::from(cpu.online)),
            );
            if let Some(u) = usage {
                set(
                    &pinned,
                    l([("cpu", id.clone())]),
                    f64::from(u.pinned.len() as u32 + u.pinned_more),
                );
                set(&conflicts, l([("cpu", id)]), u.conflicts().len() as f64);
            }
        }
        let numa_total = r.gauge("numa_memory_total_bytes", "Memory of the NUMA node");
        let numa_free = r.gauge("numa_memory_free_bytes", "Free memory of the NUMA node");
        let numa_cpus = r.gauge("numa_cpus", "Logical CPUs in the NUMA node");
        let hp = r.gauge("numa_hugepages", "Huge pages reserved on the NUMA node");
        let hp_free = r.gauge("numa_hugepages_free", "Free huge pages on the NUMA node");
        // Unknown is never a number: a figure that could not be read has no series.
        let some = |g: &G, lab: &Labels, v: Option<u64>| {
            if let Some(v) = v {
                set(g, lab.clone(), v as f64);
            }
        };
        for n in &t.numa_nodes {
            let lab = l([("numa_node", n.id.to_string())]);
            some(&numa_total, &lab, n.memory_total_bytes);
            some(&numa_free, &lab, n.memory_free_bytes);
            if !n.cpus_unreadable {
                set(&numa_cpus, lab, n.cpus.len() as f64);
            }
            for h in &n.hugepages {
                let lab = l([
                    ("numa_node", n.id.to_string()),
                    ("page_size_bytes", h.page_size_bytes.to_string()),
                ]);
                some(&hp, &lab, h.total);
                some(&hp_free, &lab, h.free);
            }
        }
        let mem = r.gauge("memory_available_bytes", "MemAvailable from /proc/meminfo");
        some(&mem, &vec![], t.memory.available_bytes);
        let swap = r.gauge("swap_total_bytes", "Swap configured (SwapTotal)");
        some(&swap, &vec![], t.memory.swap_total_bytes);
    }
    if let Some(p) = &s.pinning {
        let th = r.gauge(
            "threads",
            "Threads seen on the host in the last pinning walk",
        );
        set(&th, vec![], f64::from(p.threads));
        let un = r.gauge("threads_unpinned", "Threads allowed on every online CPU");
        set(&un, vec![], f64::from(p.unpinned_threads));
    }

    if let Some(drives) = &s.nvme {
        let info = r.gauge("nvme_info", "One series per NVMe controller (always 1)");
        let up = r.gauge("nvme_up", "1 if the controller state is live");
        let cap = r.gauge(
            "nvme_capacity_bytes",
            "Capacity of the controller's namespaces",
        );
        let smart_ok = r.gauge("nvme_smart_available", "1 if the SMART log could be read");
        let warn = r.gauge(
            "nvme_critical_warning",
            "SMART critical warning bits (1 = set)",
        );
        let temp = r.gauge("nvme_temperature_celsius", "Composite temperature");
        let spare = r.gauge(
            "nvme_available_spare_ratio",
            "Available spare capacity (0-1)",
        );
        let spare_thr = r.gauge(
            "nvme_available_spare_threshold_ratio",
            "Spare threshold below which the drive warns (0-1)",
        );
        let used = r.gauge(
            "nvme_percentage_used_ratio",
            "Vendor estimate of rated life used (may exceed 1)",
        );
        let rd = r.counter("nvme_data_read_bytes", "Data read by the host");
        let wr = r.counter("nvme_data_written_bytes", "Data written by the host");
        let rc = r.counter("nvme_host_read_commands", "Read commands completed");
        let wc = r.counter("nvme_host_write_commands", "Write commands completed");
        let busy = r.counter(
            "nvme_controller_busy_seconds",
            "Time the controller was busy with I/O",
        );
        let cycles = r.counter("nvme_power_cycles", "Power cycles");
        let on = r.counter("nvme_power_on_seconds", "Power-on time");
        let unsafe_sd = r.counter("nvme_unsafe_shutdowns", "Unsafe shutdowns");
        let media = r.counter("nvme_media_errors", "Unrecovered data integrity errors");
        let errlog = r.counter("nvme_error_log_entries", "Error information log entries");
        for d in drives {
            let lab = l([("controller", d.name.to_string())]);
            set(
                &info,
                l([
                    ("controller", d.name.to_string()),
                    ("model", d.model.to_string()),
                    ("serial", d.serial.to_string()),
                    ("firmware", d.firmware.to_string()),
                    ("address", d.address.to_string()),
                    ("slot", d.slot.as_deref().unwrap_or_default().to_string()),
                    (
                        "numa_node",
                        d.numa_node.map(|n| n.to_string()).unwrap_or_default(),
                    ),
                ]),
                1.0,
            );
            // An unreadable state is empty, an unreadable namespace size 0: no series.
            if !d.state.is_empty() {
                set(&up, lab.clone(), f64::from(u8::from(d.state == "live")));
            }
            if d.namespaces.iter().all(|n| n.size_bytes > 0) {
                set(&cap, lab.clone(), d.capacity_bytes() as f64);
            }
            set(
                &smart_ok,
                lab.clone(),
                f64::from(u8::from(d.smart.is_some())),
            );
            let Some(sm) = &d.smart else { continue };
            for (bit, name, _) in CriticalWarning::BITS {
                set(
                    &warn,
                    l([
                        ("controller", d.name.to_string()),
                        ("bit", name.to_string()),
                    ]),
                    f64::from(u8::from(sm.critical_warning.has(bit))),
                );
            }
            if let Some(c) = sm.temperature_celsius() {
                set(&temp, lab.clone(), f64::from(c));
            }
            set(
                &spare,
                lab.clone(),
                f64::from(sm.available_spare_pct) / 100.0,
            );
            set(
                &spare_thr,
                lab.clone(),
                f64::from(sm.available_spare_threshold_pct) / 100.0,
            );
            set(&used, lab.clone(), f64::from(sm.percentage_used) / 100.0);
            for (fam, v) in [
                (&rd, sm.data_read_bytes),
                (&wr, sm.data_written_bytes),
                (&rc, sm.host_read_commands),
                (&wc, sm.host_write_commands),
                (&busy, sm.controller_busy_seconds),
                (&cycles, sm.power_cycles),
                (&on, sm.power_on_seconds),
                (&unsafe_sd, sm.unsafe_shutdowns),
                (&media, sm.media_errors),
                (&errlog, sm.error_log_entries),
            ] {
                fam.get_or_create(&lab).inc_by(v);
            }
        }
    }

    if let Some(net) = &s.network {
        let info = r.gauge("nic_info", "One series per network interface (always 1)");
        let up = r.gauge("nic_up", "1 if the interface's operstate is up");
        let mtu = r.gauge("nic_mtu_bytes", "Interface MTU");
        let speed = r.gauge("nic_speed_bytes", "Link speed in bytes per second");
        let conf = r.gauge(
            "nic_ipv4_setting",
            "IPv4 ARP and reverse-path sysctls per interface (and the all/default scopes)",
        );
        let sbr = r.gauge(
            "nic_sbr_rules",
            "Source-based routing rules whose table routes via the interface",
        );
        for n in &net.nics {
            let lab = l([("device", n.name.to_string())]);
            set(
                &info,
                l([
                    ("device", n.name.to_string()),
                    ("type", n.kind.as_str().to_string()),
                    (
                        "driver",
                        n.driver.as_deref().unwrap_or_default().to_string(),
                    ),
                    (
                        "driver_version",
                        n.driver_version.as_deref().unwrap_or_default().to_string(),
                    ),
                    (
                        "numa_node",
                        n.numa_node.map(|x| x.to_string()).unwrap_or_default(),
                    ),
                    ("dataplane", n.dataplane.to_string()),
                ]),
                1.0,
            );
            if !n.operstate.is_empty() {
                set(&up, lab.clone(), f64::from(u8::from(n.is_up())));
            }
            if let Some(m) = n.mtu {
                set(&mtu, lab.clone(), f64::from(m));
            }
            if let Some(sp) = n.speed_mbps {
                set(&speed, lab.clone(), f64::from(sp) * 125_000.0);
            }
            set(
                &sbr,
                lab,
                n.sbr.iter().filter(|r| r.table_routes_via_nic).count() as f64,
            );
        }
        let scopes = net
            .nics
            .iter()
            .map(|n| (n.name.as_str(), n.ipconf))
            .chain([("all", net.all), ("default", net.default)]);
        for (dev, c) in scopes {
            for (k, v) in [
                ("arp_filter", c.arp_filter),
                ("arp_announce", c.arp_announce),
                ("arp_ignore", c.arp_ignore),
                ("rp_filter", c.rp_filter),
            ] {
                if let Some(v) = v {
                    set(
                        &conf,
                        l([("device", dev.to_string()), ("setting", k.to_string())]),
                        f64::from(v),
                    );
                }
            }
        }
    }

    if let Some(checks) = &s.checks {
        let st = r.gauge(
            "check_status",
            "Preflight check status as a state set: 1 for the current status, 0 for the others",
        );
        for c in checks {
            for status in CheckStatus::ALL {
                set(
                    &st,
                    l([
                        ("check", c.id.to_string()),
                        ("status", status.as_str().to_string()),
                    ]),
                    f64::from(u8::from(c.status == status)),
                );
            }
        }
    }
    if let Some(h) = &s.host {
        if let Some(sync) = h.clock_synced {
            let g = r.gauge(
                "clock_synchronized",
                "1 if adjtimex reports the clock synchronised",
            );
            set(&g, vec![], f64::from(u8::from(sync)));
        }
        if let Some(e) = h.clock_max_error_us {
            let g = r.gauge("clock_max_error_seconds", "adjtimex maximum error estimate");
            set(&g, vec![], e as f64 / 1e6);
        }
    }

    if let Some(p) = &s.probes {
        // One series per probe, labelled with its current state (not a full state set: at
        // 200 peers × 18 ports that would be 14,400 series per node).
        let st = r.gauge("probe_state", "Port probe to a peer (always 1), labelled with its state: open, closed, filtered or unreachable");
        let rtt = r.gauge(
            "probe_rtt_seconds",
            "Round-trip time of the probe when the peer answered",
        );
        for x in &p.results {
            let lab = l([
                ("peer", x.peer.to_string()),
                ("port", x.port.to_string()),
                ("proto", x.proto.as_str().to_string()),
            ]);
            let mut with_state = lab.clone();
            with_state.push(("state", x.state.as_str().to_string()));
            set(&st, with_state, 1.0);
            if let Some(us) = x.rtt_us {
                set(&rtt, lab, us as f64 / 1e6);
            }
        }
        let round = r.gauge("probe_round_seconds", "Duration of the last probe round");
        set(&round, vec![], p.round_ms as f64 / 1000.0);
        // Rounds probe a rotating few peers: each peer's results are as old as its turn.
        let at = r.gauge(
            "probe_peer_timestamp_seconds",
            "When the peer was last probed (each round probes the next few peers)",
        );
        for s in &p.summary {
            if let Some(ms) = s.observed_ms {
                set(&at, l([("peer", s.peer.to_string())]), ms as f64 / 1000.0);
            }
        }
        if p.coverage_ms > 0 {
            let cover = r.gauge(
                "probe_coverage_seconds",
                "Every peer is probed at least once within this time",
            );
            set(&cover, vec![], p.coverage_ms as f64 / 1000.0);
        }
    }
    r.0
}

/// Encodes in OpenMetrics text (`openmetrics = true`) or Prometheus text format 0.0.4.
pub fn render(s: &NodeSnapshot, now_ms: i64, openmetrics: bool) -> String {
    render_with(s, now_ms, openmetrics, None, None, None)
}

/// `render`, plus the listeners' counters when given.
pub fn render_with(
    s: &NodeSnapshot,
    now_ms: i64,
    openmetrics: bool,
    server: Option<&super::listen::ServerStats>,
    engine: Option<&EngineStatus>,
    cluster: Option<&ClusterMetrics>,
) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let mut reg = registry(s, now_ms);
    if let Some(st) = server {
        st.register(&mut reg);
    }
    if let Some(e) = engine {
        register_engine(&mut reg, e);
    }
    if let Some(c) = cluster {
        register_cluster(&mut reg, c);
    }
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    if openmetrics {
        out
    } else {
        to_text_format(&out)
    }
}

/// The cluster member this agent hosts, for `/metrics` (`axon agent --cluster-listen`).
pub struct ClusterMetrics {
    pub port: u16,
    /// Membership, leader (0: none known), applied config; None before joining.
    pub member: Option<(
        super::raft::Membership,
        u64,
        crate::model::cluster::ClusterConfig,
    )>,
    /// This member's share of the data plane, if it serves one.
    pub data: Option<crate::dataplane::cluster::protection::DataStatus>,
    /// Object IO through this member's frontend.
    pub io: Option<super::data::IoMetrics>,
}

/// `axon_cluster_*`.
fn register_cluster(reg: &mut Registry, c: &ClusterMetrics) {
    let mut r = Reg(std::mem::take(reg));
    let member = r.gauge(
        "cluster_member",
        "1 if this agent is a member of a data-plane cluster (its node id and cluster as labels), 0 if not yet",
    );
    let port = c.port;
    let Some((m, leader, config)) = &c.member else {
        set(&member, l([("cluster_port", port.to_string())]), 0.0);
        *reg = r.0;
        return;
    };
    set(
        &member,
        l([
            ("cluster", m.cluster.clone()),
            ("node_id", m.node_id.to_string()),
            ("cluster_port", port.to_string()),
        ]),
        1.0,
    );
    let g = r.gauge(
        "cluster_leader",
        "The leader's node id as this member knows it (0: none known)",
    );
    set(&g, vec![], *leader as f64);
    let g = r.gauge(
        "cluster_epoch",
        "Epoch of the configuration this member has applied",
    );
    set(&g, vec![], config.epoch as f64);
    let g = r.gauge(
        "cluster_members",
        "Members (failure domains) of the cluster",
    );
    set(&g, vec![], config.members.len() as f64);
    let g = r.gauge(
        "cluster_io_status",
        "1 for the cluster's IO status (STOPPED, STARTING, STARTED), 0 for the others",
    );
    for st in ["STOPPED", "STARTING", "STARTED"] {
        set(
            &g,
            l([("state", st.to_string())]),
            f64::from(u8::from(config.io.as_str() == st)),
        );
    }
    let g = r.gauge("cluster_drives", "The cluster's drives by state");
    for st in ["ACTIVE", "PHASING_IN", "PHASING_OUT", "INACTIVE", "FAILED"] {
        let n = config.drives.values().filter(|d| d.state == st).count();
        set(&g, l([("state", st.to_string())]), n as f64);
    }
    if let Some(d) = &c.data {
        let m = config.m;
        let g = r.gauge(
            "cluster_stripes",
            "Stripes this member is responsible for (each object is counted by one member: sum over members for the cluster), by chunks on members away; lost=\"m+1\" and above are unreadable",
        );
        for lost in 0..m + 2 {
            let n = d.stripes_by_lost.get(lost).copied().unwrap_or(0);
            set(&g, l([("lost", lost.to_string())]), n as f64);
        }
        let g = r.gauge(
            "cluster_protection",
            "1 for the protection status of this member's share (OK, REDISTRIBUTING, REBUILDING, PARTIALLY_PROTECTED, UNPROTECTED, UNAVAILABLE), 0 for the others",
        );
        for st in [
            "OK",
            "REDISTRIBUTING",
            "REBUILDING",
            "PARTIALLY_PROTECTED",
            "UNPROTECTED",
            "UNAVAILABLE",
        ] {
            set(
                &g,
                l([("status", st.to_string())]),
                f64::from(u8::from(d.protection == st)),
            );
        }
        let g = r.gauge(
            "cluster_members_away",
            "Members not answering this one (state=away: now; state=failed: longer than the grace period, rebuilt elsewhere)",
        );
        set(&g, l([("state", "away".to_string())]), d.away.len() as f64);
        set(
            &g,
            l([("state", "failed".to_string())]),
            d.failed.len() as f64,
        );
        let g = r.gauge("cluster_rebuild_active", "1 while this member rebuilds");
        set(&g, vec![], f64::from(u8::from(d.rebuild.active)));
        let g = r.gauge(
            "cluster_rebuild_stripes",
            "Stripes of this member's current (or last) rebuild pass: total and done",
        );
        set(
            &g,
            l([("state", "total".to_string())]),
            d.rebuild.stripes_total as f64,
        );
        set(
            &g,
            l([("state", "done".to_string())]),
            d.rebuild.stripes_done as f64,
        );
        let g = r.gauge(
            "cluster_rebuild_rate_bytes",
            "Bytes per second this member's current (or last) rebuild pass wrote",
        );
        set(&g, vec![], d.rebuild.rate as f64);
        let c = r.counter(
            "cluster_rebuild_written_bytes",
            "Bytes of chunks this member has rebuilt since it started",
        );
        c.get_or_create(&vec![]).inc_by(d.rebuild.bytes_total);
        let g = r.gauge("cluster_chunks_held", "Chunks this member holds");
        set(&g, vec![], d.chunks_held as f64);
        let g = r.gauge(
            "cluster_chunks_lost",
            "Chunks this member holds but cannot serve (a failed drive, damage), rewritten from parity while IO is started",
        );
        set(&g, vec![], d.lost_chunks as f64);
        let c = r.counter(
            "cluster_chunks_repaired",
            "Chunks this member has rewritten from parity since it started (lost on a drive, or damaged)",
        );
        c.get_or_create(&vec![]).inc_by(d.repaired_chunks);
        let c = r.counter(
            "cluster_orphan_chunks_freed",
            "Chunks no manifest placed on this member (failed puts, objects overwritten, deleted or rebuilt elsewhere while it was away) that it has freed since it started",
        );
        c.get_or_create(&vec![]).inc_by(d.orphans_freed);
        let c = r.counter(
            "cluster_chunks_moved",
            "Chunks this member has moved from the fullest member to the emptiest since it started (redistribution onto a member that came back or was added)",
        );
        c.get_or_create(&vec![]).inc_by(d.moved_chunks);
    }
    if let Some(io) = &c.io {
        r.0.register(
            "cluster_object_seconds",
            "Object puts and gets served by this member's frontend, by operation: time to the last byte",
            io.seconds.clone(),
        );
        r.0.register(
            "cluster_object_bytes",
            "Object bytes written (put) and read (get) through this member's frontend",
            io.bytes.clone(),
        );
        r.0.register(
            "cluster_object_errors",
            "Object puts and gets through this member's frontend that failed",
            io.errors.clone(),
        );
        r.0.register(
            "cluster_direct_chunk_bytes",
            "Chunk bytes (data and parity) that clients running a frontend of their own (axon io --direct) put on and got from this member",
            io.direct.clone(),
        );
    }
    *reg = r.0;
}

/// What the hosted storage engine last published (`axon agent --store`).
pub type EngineStatus = crate::dataplane::store::Status;

/// The storage engine's metrics: protection, stripes by chunks lost, drives, and the
/// scrubber's counters.
fn register_engine(reg: &mut Registry, st: &EngineStatus) {
    let mut r = Reg(std::mem::take(reg));
    let info = r.gauge(
        "store_info",
        "The storage engine this agent hosts (always 1): cluster, scheme, chunk size",
    );
    set(
        &info,
        l([
            ("cluster", st.cluster.clone()),
            ("scheme", st.scheme.clone()),
            ("chunk_bytes", st.chunk_size.to_string()),
        ]),
        1.0,
    );
    let prot = r.gauge(
        "store_protection",
        "1 for the engine's protection state (OK, PARTIALLY_PROTECTED, UNPROTECTED, UNAVAILABLE), 0 for the others",
    );
    for state in ["OK", "PARTIALLY_PROTECTED", "UNPROTECTED", "UNAVAILABLE"] {
        set(
            &prot,
            l([("state", state.to_string())]),
            f64::from(u8::from(st.protection == state)),
        );
    }
    let objects = r.gauge("store_objects", "Objects stored");
    set(&objects, vec![], st.objects as f64);
    let stripes = r.gauge(
        "store_stripes",
        "Stripes by how many of their chunks are lost (lost=0: whole)",
    );
    for (lost, n) in st.stripes_by_lost.iter().enumerate() {
        if lost == 0 || *n > 0 {
            set(&stripes, l([("lost", lost.to_string())]), *n as f64);
        }
    }
    let avail = r.gauge(
        "store_drive_available",
        "1 if the drive is open and is the drive the index expects (0: missing, truncated, wrong drive)",
    );
    let slots = r.gauge("store_drive_slots", "Chunk slots of the drive");
    let used = r.gauge("store_drive_slots_used", "Chunk slots in use");
    for d in &st.drives {
        let lab = l([
            ("drive", d.id.clone()),
            ("path", d.path.display().to_string()),
            ("state", d.state.to_string()),
        ]);
        set(&avail, lab.clone(), f64::from(u8::from(d.available)));
        if d.available {
            set(&slots, lab.clone(), d.slots as f64);
            set(&used, lab, d.used as f64);
        }
    }
    let opened = r.gauge(
        "store_open_findings",
        "What opening the store found: orphans freed (chunks of writes that never committed), mismatches (chunks whose header disagrees with the index), drives unavailable",
    );
    for (kind, n) in [
        ("orphans_freed", st.recovery.orphans_freed),
        ("mismatches", st.recovery.mismatches.len() as u64),
        ("drives_unavailable", st.recovery.unavailable.len() as u64),
    ] {
        set(&opened, l([("kind", kind.to_string())]), n as f64);
    }
    for (name, help, v) in [
        (
            "store_scrub_passes",
            "Completed scrub passes",
            st.scrub.passes,
        ),
        (
            "store_scrub_chunks_checked",
            "Chunks read and verified by the scrubber",
            st.scrub.chunks_checked,
        ),
        (
            "store_scrub_read_bytes",
            "Bytes read by the scrubber",
            st.scrub.bytes_read,
        ),
        (
            "store_scrub_found",
            "Chunks the scrubber found bad (checksum, header, drive unavailable)",
            st.scrub.found,
        ),
        (
            "store_scrub_repaired",
            "Chunks the scrubber rewrote from parity",
            st.scrub.repaired,
        ),
        (
            "store_scrub_unrepairable",
            "Chunks the scrubber could not repair (too many lost, or no drive to put them on)",
            st.scrub.unrepairable,
        ),
    ] {
        let c = r.counter(name, help);
        c.get_or_create(&vec![]).inc_by(v);
    }
    *reg = r.0;
}

/// Rewrites OpenMetrics text as Prometheus text 0.0.4: counter families are named with
/// their `_total` suffix (as the samples are), and `# EOF` / `# UNIT` lines go. This is what
/// lets `promtool check metrics` and 0.0.4 parsers read the same data.
pub fn to_text_format(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(l.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// True when the Accept header prefers OpenMetrics over the classic text format.
pub fn wants_openmetrics(accept: &str) -> bool {
    let q = |media: &str| -> Option<f32> {
        accept.split(',').find_map(|part| {
            let mut it = part.split(';').map(str::trim);
            let m = it.next()?;
            if m != media {
                return None;
            }
            let q = it
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1.0);
            Some(q)
        })
    };
    match (q("application/openmetrics-text"), q("text/plain")) {
        (Some(om), Some(text)) => om >= text,
        (Some(_), None) => true,
        _ => false,
    }
}

/// How long a scrape waits for collectors in exporter mode: half the scraper's timeout
/// (Prometheus sends it as `X-Prometheus-Scrape-Timeout-Seconds`), at most 5 s; 1 s for
/// scrapers that do not say. After that the scrape serves what the cache holds.
pub fn scrape_wait(timeout_header: Option<&str>) -> Duration {
    timeout_header
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| Duration::from_secs_f64((t / 2.0).min(5.0)))
        .unwrap_or(Duration::from_secs(1))
}

/// The `/metrics` HTTP application (served by `listen::serve_http`).
pub fn router(state: Arc<AgentState>) -> axum::Router {
    use axum::http::{HeaderMap, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let metrics = move |headers: HeaderMap| {
        let state = state.clone();
        async move {
            // Exporter mode: collect what is stale now (the agent collects on its own).
            if let Some(d) = state.on_demand() {
                let wait = scrape_wait(
                    headers
                        .get("x-prometheus-scrape-timeout-seconds")
                        .and_then(|v| v.to_str().ok()),
                );
                d.clone().before_scrape(wait).await;
            }
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let om = wants_openmetrics(accept);
            let now = now_ms();
            let engine = state.engine_status();
            let cluster = match state.cluster_host() {
                Some(h) => Some(ClusterMetrics {
                    port: h.port(),
                    member: h.info().await,
                    data: h.data_status(),
                    io: h.data_host().map(|d| d.io.clone()),
                }),
                None => None,
            };
            let body = state.with_snapshot(|s, _| {
                render_with(
                    s,
                    now,
                    om,
                    Some(&state.server),
                    engine.as_ref(),
                    cluster.as_ref(),
                )
            });
            (
                [(
                    header::CONTENT_TYPE,
                    if om { OPENMETRICS_TYPE } else { TEXT_TYPE },
                )],
                body,
            )
                .into_response()
        }
    };
    axum::Router::new().route("/metrics", get(metrics)).route(
        "/",
        get(|| async { "axon exporter: metrics at /metrics\n" }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_names_in_text_format() {
        let om = "# HELP axon_nvme_media_errors Unrecovered.\n# TYPE axon_nvme_media_errors counter\naxon_nvme_media_errors_total{controller=\"nvme0\"} 3\n# HELP axon_x Y.\n# TYPE axon_x gauge\naxon_x 1\n# EOF\n";
        let t = to_text_format(om);
        assert!(
            t.contains("# TYPE axon_nvme_media_errors_total counter\n"),
            "{t}"
        );
        assert!(
            t.contains("# HELP axon_nvme_media_errors_total Unrecovered.\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE axon_x gauge\n"));
        assert!(!t.contains("# EOF"));
    }

    #[test]
    fn accept_negotiation_follows_prometheus_preferences() {
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics(""));
        assert!(!wants_openmetrics(
            "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"
        ));
    }

    #[test]
    fn scrapes_wait_half_the_scrapers_timeout() {
        assert_eq!(scrape_wait(Some("10")), Duration::from_secs(5));
        assert_eq!(scrape_wait(Some("1")), Duration::from_millis(500));
        assert_eq!(scrape_wait(Some("60")), Duration::from_secs(5));
        assert_eq!(scrape_wait(None), Duration::from_secs(1));
        assert_eq!(scrape_wait(Some("junk")), Duration::from_secs(1));
        assert_eq!(scrape_wait(Some("-3")), Duration::from_secs(1));
    }

    #[test]
    fn an_empty_snapshot_still_renders_collector_health() {
        let s = NodeSnapshot {
            collectors: crate::agent::scheduler::Schedule::with_base(
                std::time::Duration::from_secs(1),
            )
            .initial_status(),
            ..Default::default()
        };
        let t = render(&s, 1_700_000_000_000, false);
        assert!(
            t.contains("axon_collector_success{collector=\"topology\"} 0"),
            "{t}"
        );
        assert!(t.contains("axon_build_info{version="));
    }
}

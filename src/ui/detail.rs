//! The content of drill-in popups.

use super::ViewState;
use super::app::Detail;
use super::theme::Theme;
use super::widgets::{check_style, health_style, kv, kv_styled, status_style};
use crate::fleet::view::{NodeStatus, fmt_age};
use crate::model::checks;
use crate::model::nvme::CriticalWarning;
use crate::model::probes::SUMMARY_GROUPS;
use humansize::{DECIMAL, format_size};
use ratatui::text::{Line, Span};

/// The popup's title and lines. A popup about a node that is not up starts with a line
/// that says so and how old its data is: nothing in it is current.
pub fn content(d: &Detail, vs: &ViewState, th: &Theme) -> (String, Vec<Line<'static>>) {
    let (title, mut lines) = body(d, vs, th);
    if let Some(i) = d.node() {
        let status = vs
            .derived
            .status
            .get(i)
            .copied()
            .unwrap_or(NodeStatus::Down);
        if status != NodeStatus::Up {
            let n = &vs.cluster.nodes[i];
            let why = n
                .failure
                .as_ref()
                .map(|f| format!(" ({})", f.message))
                .unwrap_or_default();
            lines.insert(
                0,
                Line::from(Span::styled(
                    format!(
                        "{} {}: last data {} ago, not current{why}",
                        n.name,
                        status.as_str(),
                        fmt_age(n.received_ms.map(|r| vs.now_ms.saturating_sub(r)))
                    ),
                    status_style(th, status),
                )),
            );
        }
    }
    (title, lines)
}

/// A check's requirement, source, status, observed, expected and remedy. A result that
/// is not `current` (its node is not up) shows its status as last known, in stale style.
fn check_lines(
    id: &str,
    judged_on: Option<&str>,
    r: Option<&checks::CheckResult>,
    current: bool,
    missing: &str,
    th: &Theme,
) -> Vec<Line<'static>> {
    let def = checks::def(id);
    let mut l = vec![
        kv("requirement", def.map(|d| d.requirement).unwrap_or(""), th),
        kv("source", def.map(|d| d.source).unwrap_or(""), th),
    ];
    if let Some(j) = judged_on {
        l.push(kv("judged on", j, th));
    }
    let Some(r) = r else {
        l.push(kv("status", missing, th));
        return l;
    };
    let status = r.status.as_str().to_uppercase();
    l.push(if current {
        kv_styled("status", status, check_style(th, r.status), th)
    } else {
        kv_styled("status", format!("{status} (last known)"), th.stale, th)
    });
    l.push(kv("observed", r.observed.clone(), th));
    l.push(kv("expected", r.expected.clone(), th));
    if !r.remedy.is_empty() {
        l.push(kv("remedy", r.remedy.clone(), th));
    }
    l
}

/// Whether node `i`'s data is current (the node is up).
fn current(vs: &ViewState, i: usize) -> bool {
    vs.derived.status.get(i) == Some(&NodeStatus::Up)
}

fn body(d: &Detail, vs: &ViewState, th: &Theme) -> (String, Vec<Line<'static>>) {
    let nodes = &vs.cluster.nodes;
    match d {
        Detail::Problem(i) => {
            let Some(p) = vs.derived.problems.get(*i) else {
                return ("problem".into(), vec![]);
            };
            (
                "problem".into(),
                vec![Line::from(Span::styled(p.text.clone(), th.text))],
            )
        }
        Detail::Drive { node, drive } => {
            let n = &nodes[*node];
            let Some(dr) = n
                .snapshot
                .as_ref()
                .and_then(|s| s.nvme.as_ref())
                .and_then(|v| v.iter().find(|x| x.name == drive))
            else {
                return (
                    format!("{} {drive}", n.name),
                    vec![Line::from("no longer reported")],
                );
            };
            let h = dr.console_health();
            let mut l = vec![
                kv("model", dr.model.clone(), th),
                kv("serial", dr.serial.clone(), th),
                kv("firmware", dr.firmware.clone(), th),
                kv(
                    "PCI / slot",
                    format!(
                        "{} / {}",
                        dr.address,
                        dr.slot.clone().unwrap_or_else(|| "—".into())
                    ),
                    th,
                ),
                kv(
                    "NUMA node",
                    dr.numa_node
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "—".into()),
                    th,
                ),
                kv(
                    "capacity",
                    format!(
                        "{} ({} namespace(s))",
                        format_size(dr.capacity_bytes(), DECIMAL),
                        dr.namespaces.len()
                    ),
                    th,
                ),
                kv(
                    "write cache",
                    match dr.volatile_write_cache() {
                        Some(true) => "write back (volatile)",
                        Some(false) => "write through",
                        None => "unknown",
                    },
                    th,
                ),
                kv_styled(
                    "health",
                    format!(
                        "{}{}{}",
                        h.level.as_str().to_uppercase(),
                        if current(vs, *node) {
                            ""
                        } else {
                            " (last known)"
                        },
                        if h.reasons.is_empty() {
                            String::new()
                        } else {
                            format!(" — {}", h.reasons.join("; "))
                        }
                    ),
                    if current(vs, *node) {
                        health_style(th, h.level)
                    } else {
                        th.stale
                    },
                    th,
                ),
            ];
            match &dr.smart {
                None => l.push(kv(
                    "SMART",
                    dr.smart_error
                        .clone()
                        .unwrap_or_else(|| "unavailable".into()),
                    th,
                )),
                Some(s) => {
                    let bits: Vec<&str> = CriticalWarning::BITS
                        .iter()
                        .filter(|(b, _, _)| s.critical_warning.has(*b))
                        .map(|(_, n, _)| *n)
                        .collect();
                    l.push(kv(
                        "critical warning",
                        if bits.is_empty() {
                            "none".to_string()
                        } else {
                            format!("{:#04x}: {}", s.critical_warning.0, bits.join(", "))
                        },
                        th,
                    ));
                    l.push(kv(
                        "temperature",
                        s.temperature_celsius()
                            .map(|t| format!("{t} °C"))
                            .unwrap_or_else(|| "—".into()),
                        th,
                    ));
                    l.push(kv(
                        "available spare",
                        format!(
                            "{}% (threshold {}%)",
                            s.available_spare_pct, s.available_spare_threshold_pct
                        ),
                        th,
                    ));
                    l.push(kv("percentage used", format!("{}%", s.percentage_used), th));
                    l.push(kv("data read", format_size(s.data_read_bytes, DECIMAL), th));
                    l.push(kv(
                        "data written",
                        format_size(s.data_written_bytes, DECIMAL),
                        th,
                    ));
                    l.push(kv(
                        "host commands",
                        format!(
                            "{} read, {} write",
                            s.host_read_commands, s.host_write_commands
                        ),
                        th,
                    ));
                    l.push(kv(
                        "power on",
                        format!(
                            "{} h, {} cycles, {} unsafe shutdowns",
                            s.power_on_hours(),
                            s.power_cycles,
                            s.unsafe_shutdowns
                        ),
                        th,
                    ));
                    l.push(kv(
                        "busy time",
                        format!("{} min", s.controller_busy_seconds / 60),
                        th,
                    ));
                    l.push(kv("media errors", s.media_errors.to_string(), th));
                    l.push(kv(
                        "error log",
                        format!("{} entries", s.error_log_entries),
                        th,
                    ));
                }
            }
            l.push(kv(
                "data age",
                fmt_age(n.section_age_ms(crate::model::snapshot::Section::Nvme, vs.now_ms)),
                th,
            ));
            (format!("{} {}", n.name, dr.name), l)
        }
        Detail::Check { node, check } => {
            let n = &nodes[*node];
            let r = n
                .snapshot
                .as_ref()
                .and_then(|s| s.checks.as_ref())
                .and_then(|v| v.iter().find(|x| x.id == check));
            let mut l = check_lines(check, None, r, current(vs, *node), "not reported", th);
            if r.is_some() {
                l.push(kv(
                    "data age",
                    fmt_age(n.section_age_ms(crate::model::snapshot::Section::Checks, vs.now_ms)),
                    th,
                ));
            }
            (format!("{} {check}", n.name), l)
        }
        Detail::Cpu { node, cpu } => {
            let n = &nodes[*node];
            let u = n
                .snapshot
                .as_ref()
                .and_then(|s| s.pinning.as_ref())
                .and_then(|p| p.cpu(*cpu));
            let mut l = Vec::new();
            match u {
                None => l.push(Line::from("no pinning data")),
                Some(u) => {
                    l.push(kv("owner", u.role().label(), th));
                    l.push(kv("kernel threads", u.kernel_threads.to_string(), th));
                    l.push(Line::from(Span::styled(
                        "pinned here (affinity restricted to a set including this CPU):",
                        th.header,
                    )));
                    for p in &u.pinned {
                        l.push(Line::from(format!(
                            "  {} pid {} ({}), {} thread(s)",
                            p.comm,
                            p.pid,
                            p.owner.label(),
                            p.threads
                        )));
                    }
                    if u.pinned_more > 0 {
                        l.push(Line::from(format!("  … and {} more", u.pinned_more)));
                    }
                    l.push(Line::from(Span::styled("last ran here:", th.header)));
                    for p in &u.running {
                        l.push(Line::from(format!(
                            "  {} pid {} ({}), {} thread(s), {} runnable",
                            p.comm,
                            p.pid,
                            p.owner.label(),
                            p.threads,
                            p.runnable
                        )));
                    }
                    if u.running_more > 0 {
                        l.push(Line::from(format!("  … and {} more", u.running_more)));
                    }
                    for c in n.digest.conflicts.iter().filter(|c| c.cpu() == Some(*cpu)) {
                        l.push(Line::from(Span::styled(format!("conflict: {c}"), th.fail)));
                    }
                }
            }
            (format!("{} cpu{cpu}", n.name), l)
        }
        Detail::Pair { from, to } => {
            let (a, b) = (&nodes[*from], &nodes[*to]);
            let mut l = Vec::new();
            let probes = a.snapshot.as_ref().and_then(|s| s.probes.as_ref());
            let bhost = b
                .endpoint
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
                .unwrap_or_default();
            let cell = a.digest.probe_peers.iter().find(|c| c.node as usize == *to);
            match cell {
                None => l.push(Line::from(format!(
                    "{} reports no probes to {}",
                    a.name, b.name
                ))),
                Some(c) => {
                    for (g, st) in SUMMARY_GROUPS.iter().zip(c.states()) {
                        l.push(kv(g, st.map(|x| x.as_str()).unwrap_or("not probed"), th));
                    }
                    // Agents probe a rotating few peers per round: each result has an age.
                    l.push(kv(
                        "probed",
                        c.age_ms(vs.now_ms)
                            .map(|a| format!("{} ago", fmt_age(Some(a))))
                            .unwrap_or_else(|| "—".into()),
                        th,
                    ));
                    l.push(kv(
                        "best RTT",
                        c.rtt_ms()
                            .map(|r| {
                                if r == 0 {
                                    "under 1 ms".to_string()
                                } else {
                                    format!("{r} ms")
                                }
                            })
                            .unwrap_or_else(|| "—".into()),
                        th,
                    ));
                    let blocked = probes
                        .into_iter()
                        .flat_map(|p| p.blocked())
                        .filter(|r| r.peer == b.name || r.peer == bhost);
                    for r in blocked {
                        l.push(Line::from(Span::styled(
                            format!(
                                "{}/{} {}{}",
                                r.port,
                                r.proto.as_str(),
                                r.state.as_str(),
                                r.detail
                                    .as_ref()
                                    .map(|d| format!(": {d}"))
                                    .unwrap_or_default()
                            ),
                            th.fail,
                        )));
                    }
                }
            }
            (format!("{} → {}", a.name, b.name), l)
        }
        Detail::Nic { node, nic } => {
            let n = &nodes[*node];
            let net = n.snapshot.as_ref().and_then(|s| s.network.as_ref());
            let Some(x) = net.and_then(|nt| nt.nic(nic)) else {
                return (
                    format!("{} {nic}", n.name),
                    vec![Line::from("no longer reported")],
                );
            };
            let all = net.map(|nt| nt.all).unwrap_or_default();
            let e = x.ipconf.effective(&all);
            let o = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
            let mut l = vec![
                kv(
                    "type",
                    format!("{} (ARPHRD {})", x.kind.as_str(), x.arphrd),
                    th,
                ),
                kv("dataplane", if x.dataplane { "yes" } else { "no" }, th),
                kv(
                    "state / MTU",
                    format!(
                        "{} / {}",
                        x.operstate,
                        x.mtu.map(|m| m.to_string()).unwrap_or_else(|| "?".into())
                    ),
                    th,
                ),
                kv(
                    "speed",
                    x.speed_mbps
                        .map(|s| format!("{s} Mb/s"))
                        .unwrap_or_else(|| "—".into()),
                    th,
                ),
                kv(
                    "NUMA node",
                    x.numa_node
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "—".into()),
                    th,
                ),
                kv(
                    "driver",
                    format!(
                        "{} {}",
                        x.driver.as_deref().unwrap_or("—"),
                        x.driver_version.as_deref().unwrap_or("")
                    ),
                    th,
                ),
                kv(
                    "PCI / MAC",
                    format!(
                        "{} / {}",
                        x.pci_address.as_deref().unwrap_or("—"),
                        x.mac.as_deref().unwrap_or("—")
                    ),
                    th,
                ),
                kv(
                    "addresses",
                    x.addresses
                        .iter()
                        .map(|a| a.cidr.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    th,
                ),
                kv(
                    "effective ARP",
                    format!(
                        "arp_filter={} arp_announce={} arp_ignore={} rp_filter={}",
                        o(e.arp_filter),
                        o(e.arp_announce),
                        o(e.arp_ignore),
                        o(e.rp_filter)
                    ),
                    th,
                ),
            ];
            if x.sbr.is_empty() {
                l.push(kv("SBR", "no source rule", th));
            }
            for r in &x.sbr {
                l.push(kv(
                    "SBR",
                    format!(
                        "prio {} from {} table {}{}",
                        r.priority,
                        r.from,
                        r.table,
                        if r.table_routes_via_nic {
                            ""
                        } else {
                            " (table has no route via this NIC)"
                        }
                    ),
                    th,
                ));
            }
            (format!("{} {nic}", n.name), l)
        }
        Detail::ClusterCheck(id) => {
            let r = vs.derived.cluster_checks.iter().find(|c| c.id == id);
            let judged = "the nodes that are up, as this console sees them";
            let l = check_lines(id, Some(judged), r, true, "not evaluated", th);
            (format!("cluster check {id}"), l)
        }
        Detail::Event(seq) => {
            let Some(e) = vs.cluster.event(*seq) else {
                return (
                    "event".into(),
                    vec![Line::from(
                        "no longer held (older than the last 1,000 events)",
                    )],
                );
            };
            (
                "event".into(),
                vec![
                    kv("age", fmt_age(Some(vs.now_ms.saturating_sub(e.at_ms))), th),
                    Line::from(e.text.clone()),
                ],
            )
        }
    }
}

//! Checks that need every node: IOMMU settings equal everywhere, SSD size ratio across the
//! cluster, and clock skew between nodes. Pure functions of the view.

use super::view::{ClusterView, NodeStatus, NodeView};
use crate::model::checks::{CheckResult, CheckStatus};
use humansize::{DECIMAL, format_size};
use std::collections::BTreeMap;

/// Largest tolerated skew from the cluster's median clock.
pub const MAX_SKEW_MS: i64 = 500;

/// Each check judges only the nodes that are up (current data); the ones left out are
/// named in the observation, so a pass never rests on stale facts silently.
pub fn evaluate(v: &ClusterView, now_ms: i64) -> Vec<CheckResult> {
    let up: Vec<&NodeView> = v
        .nodes
        .iter()
        .filter(|n| n.status(now_ms, &v.thresholds) == NodeStatus::Up)
        .collect();
    let left_out = v.nodes.len() - up.len();
    let mut out = vec![iommu(&up), size_ratio(&up), skew(&up)];
    if left_out > 0 {
        for r in &mut out {
            r.observed
                .push_str(&format!(" ({left_out} not up, left out)"));
        }
    }
    out
}

fn res(
    id: &str,
    status: CheckStatus,
    observed: String,
    expected: &str,
    remedy: &str,
) -> CheckResult {
    CheckResult {
        id: id.into(),
        status,
        observed,
        expected: expected.into(),
        remedy: if status == CheckStatus::Pass {
            String::new()
        } else {
            remedy.into()
        },
    }
}

fn iommu(up: &[&NodeView]) -> CheckResult {
    const EXP: &str = "the same IOMMU kernel parameters and units on every node";
    // Grouped by the parsed setting (no text per node: this runs over every node twice a
    // second), then named in words; a cluster has a handful of distinct settings at most.
    let mut parsed: BTreeMap<IommuSetting, Vec<&str>> = BTreeMap::new();
    // Up nodes whose IOMMU facts are not (fully) known: they cannot count as agreeing.
    let mut missing: Vec<&str> = Vec::new();
    for n in up {
        match n.snapshot.as_ref().and_then(|s| s.host.as_ref()) {
            Some(h) if h.iommu_units.is_some() => {
                let key = IommuSetting::parse(&h.iommu_cmdline, h.iommu_units);
                parsed.entry(key).or_default().push(&n.name);
            }
            _ => missing.push(&n.name),
        }
    }
    let groups: BTreeMap<String, Vec<&str>> = parsed
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let seen: usize = groups.values().map(Vec::len).sum();
    if seen < 2 {
        return res(
            "iommu.consistent",
            CheckStatus::Unknown,
            format!("only {seen} node(s) reported IOMMU facts"),
            EXP,
            "wait for the agents to report",
        );
    }
    if groups.len() == 1 && !missing.is_empty() {
        let (k, _) = groups.iter().next().unwrap();
        return res(
            "iommu.consistent",
            CheckStatus::Unknown,
            format!(
                "{seen} nodes: {k}; not known on {}",
                crate::model::hostlist::compress(&missing)
            ),
            EXP,
            "see why those nodes' checks collector cannot read /sys/class/iommu or /proc/cmdline",
        );
    }
    if groups.len() == 1 {
        let (k, _) = groups.iter().next().unwrap();
        return res(
            "iommu.consistent",
            CheckStatus::Pass,
            format!("{seen} nodes: {k}"),
            EXP,
            "",
        );
    }
    let mut by_size: Vec<(&String, &Vec<&str>)> = groups.iter().collect();
    by_size.sort_by_key(|(_, n)| std::cmp::Reverse(n.len()));
    let detail = by_size
        .iter()
        .map(|(k, names)| {
            format!(
                "{} node(s) {k}: {}",
                names.len(),
                crate::model::hostlist::compress(names)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    res(
        "iommu.consistent",
        CheckStatus::Fail,
        detail,
        EXP,
        "align the BIOS IOMMU setting and the kernel command line (e.g. `iommu=pt` plus `amd_iommu=on`/`intel_iommu=on`) on every node, then reboot the odd ones",
    )
}

/// The IOMMU setting in vendor-neutral words: `amd_iommu=on` and `intel_iommu=on` both
/// mean "on", `iommu=pt` is passthrough; plus whether the kernel registered IOMMU units.
pub fn iommu_setting(cmdline: &[String], units: Option<u32>) -> String {
    IommuSetting::parse(cmdline, units).to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct IommuSetting {
    enabled: &'static str,
    passthrough: bool,
    /// Whether IOMMU units are present; None when unknown.
    units: Option<bool>,
}

impl IommuSetting {
    fn parse(cmdline: &[String], units: Option<u32>) -> Self {
        let mut enabled = "default";
        let mut passthrough = false;
        for p in cmdline {
            let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
            match (k, v) {
                ("intel_iommu" | "amd_iommu", v) if v.split(',').any(|x| x == "on") => {
                    enabled = "on"
                }
                ("intel_iommu" | "amd_iommu", v) if v.split(',').any(|x| x == "off") => {
                    enabled = "off"
                }
                ("iommu", "pt") | ("iommu.passthrough", "1") => passthrough = true,
                ("iommu", "off") => enabled = "off",
                ("iommu", "nopt") | ("iommu.passthrough", "0") => passthrough = false,
                _ => {}
            }
        }
        IommuSetting {
            enabled,
            passthrough,
            units: units.map(|u| u > 0),
        }
    }
}

impl std::fmt::Display for IommuSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IOMMU {}{}, {}",
            self.enabled,
            if self.passthrough {
                " (passthrough)"
            } else {
                ""
            },
            match self.units {
                Some(false) => "no IOMMU units",
                Some(true) => "IOMMU units present",
                None => "units unknown",
            }
        )
    }
}

fn size_ratio(up: &[&NodeView]) -> CheckResult {
    const EXP: &str = "smallest : largest SSD no worse than 1 : 8";
    // The smallest and largest drive so far (size, node, drive): no text per drive, as
    // this runs over every drive of every node twice a second.
    let mut min: Option<(u64, &str, &str)> = None;
    let mut max: Option<(u64, &str, &str)> = None;
    let mut drives_known = 0usize;
    // Drives (or whole nodes) whose size is not known: a pass cannot rest on them. The
    // first five are named, the rest counted.
    let mut unknown: Vec<String> = Vec::new();
    let mut unknown_total = 0usize;
    let mut note_unknown = |text: &dyn Fn() -> String| {
        unknown_total += 1;
        if unknown.len() < 5 {
            unknown.push(text());
        }
    };
    for n in up {
        let Some(drives) = n.snapshot.as_ref().and_then(|s| s.nvme.as_ref()) else {
            note_unknown(&|| format!("{} (no NVMe data)", n.name));
            continue;
        };
        for d in drives {
            let c = d.capacity_bytes();
            if c > 0 {
                drives_known += 1;
                // As min_by_key/max_by_key: the first smallest, the last largest.
                if min.is_none_or(|m| c < m.0) {
                    min = Some((c, &n.name, &d.name));
                }
                if max.is_none_or(|m| c >= m.0) {
                    max = Some((c, &n.name, &d.name));
                }
            } else {
                note_unknown(&|| format!("{}:{}", n.name, d.name));
            }
        }
    }
    let (Some(min), Some(max)) = (min, max) else {
        return res(
            "nvme.size-ratio",
            CheckStatus::Unknown,
            "no drives reported".into(),
            EXP,
            "wait for the agents to report their NVMe drives",
        );
    };
    let observed = format!(
        "{drives_known} drives; smallest {} ({}:{}), largest {} ({}:{})",
        format_size(min.0, DECIMAL),
        min.1,
        min.2,
        format_size(max.0, DECIMAL),
        max.1,
        max.2
    );
    if max.0 > min.0.saturating_mul(8) {
        res(
            "nvme.size-ratio",
            CheckStatus::Fail,
            observed,
            EXP,
            "replace the smallest drives, or keep drives of very different sizes in separate clusters",
        )
    } else if unknown_total > 0 {
        let more = unknown_total - unknown.len();
        res(
            "nvme.size-ratio",
            CheckStatus::Unknown,
            format!(
                "{observed}; size unknown for {}{}",
                unknown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
            EXP,
            "see those nodes' nvme.capacity check for why the size cannot be read",
        )
    } else {
        res("nvme.size-ratio", CheckStatus::Pass, observed, EXP, "")
    }
}

fn skew(up: &[&NodeView]) -> CheckResult {
    const EXP: &str = "every node's clock within 500 ms of the cluster median, and synchronised";
    let mut skews: Vec<(i64, &str)> = up
        .iter()
        .filter_map(|n| n.skew_ms.map(|s| (s, n.name.as_str())))
        .collect();
    let unsynced: Vec<&str> = up
        .iter()
        .filter(|n| {
            n.snapshot
                .as_ref()
                .and_then(|s| s.host.as_ref())
                .and_then(|h| h.clock_synced)
                == Some(false)
        })
        .map(|n| n.name.as_str())
        .collect();
    if skews.len() < 2 {
        return res(
            "ntp.skew",
            CheckStatus::Unknown,
            format!("only {} node(s) up", skews.len()),
            EXP,
            "wait for the agents to report",
        );
    }
    skews.sort();
    let median = skews[skews.len() / 2].0;
    let off: Vec<String> = skews
        .iter()
        .filter(|(s, _)| s.saturating_sub(median).unsigned_abs() > MAX_SKEW_MS as u64)
        .map(|(s, n)| format!("{n} {:+} ms", s.saturating_sub(median)))
        .collect();
    let spread = skews[skews.len() - 1].0.saturating_sub(skews[0].0);
    if !off.is_empty() {
        return res(
            "ntp.skew",
            CheckStatus::Fail,
            format!("off the median: {}", off.join(", ")),
            EXP,
            "check chrony/ntpd on those nodes (`chronyc tracking`) and that all nodes use the same time source",
        );
    }
    if !unsynced.is_empty() {
        return res(
            "ntp.skew",
            CheckStatus::Warn,
            format!(
                "spread {spread} ms, but not synchronised: {}",
                crate::model::hostlist::compress(&unsynced)
            ),
            EXP,
            "enable NTP on those nodes: `systemctl enable --now chrony`",
        );
    }
    res(
        "ntp.skew",
        CheckStatus::Pass,
        format!(
            "{} nodes within {spread} ms (as seen by this console)",
            skews.len()
        ),
        EXP,
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iommu_settings_compare_across_vendors() {
        let amd = iommu_setting(&["iommu=pt".into(), "amd_iommu=on".into()], Some(4));
        let intel = iommu_setting(&["intel_iommu=on".into(), "iommu=pt".into()], Some(2));
        assert_eq!(amd, intel);
        assert_eq!(amd, "IOMMU on (passthrough), IOMMU units present");
        assert_ne!(iommu_setting(&["intel_iommu=off".into()], Some(0)), intel);
        assert_eq!(iommu_setting(&[], None), "IOMMU default, units unknown");
    }

    use crate::fleet::view::{ClusterView, NodeView, Thresholds};
    use crate::model::snapshot::{HostFacts, NodeSnapshot};

    fn up_node(name: &str, host: Option<HostFacts>) -> NodeView {
        let mut n = NodeView::new(name.into(), format!("{name}:1"));
        n.snapshot = Some(NodeSnapshot {
            host,
            nvme: Some(vec![]),
            ..Default::default()
        });
        n.received_ms = Some(1_000);
        n
    }

    fn facts(units: Option<u32>) -> Option<HostFacts> {
        Some(HostFacts {
            iommu_cmdline: vec!["iommu=pt".into()],
            iommu_units: units,
            ..Default::default()
        })
    }

    #[test]
    fn iommu_agreement_needs_every_up_node_known() {
        let v = |nodes| ClusterView::new(nodes, Thresholds::for_interval(1000));
        let all = v(vec![
            up_node("a1", facts(Some(2))),
            up_node("a2", facts(Some(2))),
        ]);
        assert_eq!(evaluate(&all, 1_500)[0].status, CheckStatus::Pass);
        let gap = v(vec![
            up_node("a1", facts(Some(2))),
            up_node("a2", facts(Some(2))),
            up_node("a3", facts(None)),
            up_node("a4", None),
        ]);
        let r = &evaluate(&gap, 1_500)[0];
        assert_eq!(r.status, CheckStatus::Unknown, "{}", r.observed);
        assert!(r.observed.contains("not known on a[3-4]"), "{}", r.observed);
        let odd = v(vec![
            up_node("a1", facts(Some(2))),
            up_node("a2", facts(Some(0))),
            up_node("a3", None),
        ]);
        assert_eq!(evaluate(&odd, 1_500)[0].status, CheckStatus::Fail);
    }

    fn drive(name: &str, bytes: u64) -> crate::model::NvmeController {
        crate::model::NvmeController {
            name: name.into(),
            model: "m".into(),
            serial: "s".into(),
            firmware: "f".into(),
            transport: "pcie".into(),
            address: "0000:01:00.0".into(),
            slot: None,
            numa_node: Some(0),
            state: "live".into(),
            namespaces: vec![crate::model::NvmeNamespace {
                name: format!("{name}n1").into(),
                nsid: Some(1),
                size_bytes: bytes,
                logical_block_size: Some(4096),
                write_cache: None,
            }],
            smart: None,
            smart_error: None,
        }
    }

    #[test]
    fn size_ratio_is_unknown_while_a_drive_size_is_unknown_and_fails_on_what_is_known() {
        let mut a = up_node("a1", facts(Some(2)));
        a.snapshot.as_mut().unwrap().nvme = Some(vec![drive("nvme0", 8_000), drive("nvme1", 0)]);
        let mut b = up_node("a2", facts(Some(2)));
        b.snapshot.as_mut().unwrap().nvme = Some(vec![drive("nvme0", 7_000)]);
        let v = ClusterView::new(vec![a.clone(), b], Thresholds::for_interval(1000));
        let r = &evaluate(&v, 1_500)[1];
        assert_eq!(r.status, CheckStatus::Unknown, "{}", r.observed);
        assert!(
            r.observed.contains("size unknown for a1:nvme1"),
            "{}",
            r.observed
        );
        let mut c = up_node("a3", facts(Some(2)));
        c.snapshot.as_mut().unwrap().nvme = Some(vec![drive("nvme0", 100_000)]);
        let v = ClusterView::new(vec![a, c], Thresholds::for_interval(1000));
        assert_eq!(
            evaluate(&v, 1_500)[1].status,
            CheckStatus::Fail,
            "known sizes 1:12.5"
        );
    }
}

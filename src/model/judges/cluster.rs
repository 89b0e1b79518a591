//! Judges that need every node: IOMMU settings equal everywhere, SSD size ratio across the
//! cluster, and clock skew between nodes. The console picks the nodes that are up (by its
//! clock) and hands in what they reported; nothing here reads a clock.

use super::result;
use crate::model::checks::{CheckResult, CheckStatus};
use crate::model::nvme::NvmeController;
use crate::model::snapshot::HostFacts;
use humansize::{DECIMAL, format_size};
use std::collections::BTreeMap;

/// Largest tolerated skew from the cluster's median clock.
pub const MAX_SKEW_MS: i64 = 500;

/// What the cluster judges read of one node that is up.
#[derive(Debug, Clone, Copy)]
pub struct NodeFacts<'a> {
    pub name: &'a str,
    /// The host facts its checks collector reported; None when not reported.
    pub host: Option<&'a HostFacts>,
    /// Its NVMe drives; None when not reported.
    pub nvme: Option<&'a [NvmeController]>,
    /// Its clock's offset as seen by the console, in ms.
    pub skew_ms: Option<i64>,
}

/// Judges the nodes that are up; `left_out` more (not up) are named in each observation,
/// so a pass never rests on stale facts silently.
pub fn judge(up: &[NodeFacts], left_out: usize) -> Vec<CheckResult> {
    let mut out = vec![iommu(up), size_ratio(up), skew(up)];
    if left_out > 0 {
        for r in &mut out {
            r.observed
                .push_str(&format!(" ({left_out} not up, left out)"));
        }
    }
    out
}

fn iommu(up: &[NodeFacts]) -> CheckResult {
    const EXP: &str = "the same IOMMU kernel parameters and units on every node";
    // Grouped by the parsed setting (no text per node: this runs over every node twice a
    // second), then named in words; a cluster has a handful of distinct settings at most.
    let mut parsed: BTreeMap<IommuSetting, Vec<&str>> = BTreeMap::new();
    // Up nodes whose IOMMU facts are not (fully) known: they cannot count as agreeing.
    let mut missing: Vec<&str> = Vec::new();
    for n in up {
        match n.host {
            Some(h) if h.iommu_units.is_some() => {
                let key = IommuSetting::parse(&h.iommu_cmdline, h.iommu_units);
                parsed.entry(key).or_default().push(n.name);
            }
            _ => missing.push(n.name),
        }
    }
    let groups: BTreeMap<String, Vec<&str>> = parsed
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let seen: usize = groups.values().map(Vec::len).sum();
    if seen < 2 {
        return result(
            "iommu.consistent",
            CheckStatus::Unknown,
            format!("only {seen} node(s) reported IOMMU facts"),
            EXP,
            "wait for the agents to report",
        );
    }
    if groups.len() == 1 && !missing.is_empty() {
        let (k, _) = groups.iter().next().unwrap();
        return result(
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
        return result(
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
    result(
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

fn size_ratio(up: &[NodeFacts]) -> CheckResult {
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
        let Some(drives) = n.nvme else {
            note_unknown(&|| format!("{} (no NVMe data)", n.name));
            continue;
        };
        for d in drives {
            let c = d.capacity_bytes();
            if c > 0 {
                drives_known += 1;
                // As min_by_key/max_by_key: the first smallest, the last largest.
                if min.is_none_or(|m| c < m.0) {
                    min = Some((c, n.name, &d.name));
                }
                if max.is_none_or(|m| c >= m.0) {
                    max = Some((c, n.name, &d.name));
                }
            } else {
                note_unknown(&|| format!("{}:{}", n.name, d.name));
            }
        }
    }
    let (Some(min), Some(max)) = (min, max) else {
        return result(
            "nvme.size-ratio",
            CheckStatus::Unknown,
            "no drives reported",
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
        result(
            "nvme.size-ratio",
            CheckStatus::Fail,
            observed,
            EXP,
            "replace the smallest drives, or keep drives of very different sizes in separate clusters",
        )
    } else if unknown_total > 0 {
        let more = unknown_total - unknown.len();
        result(
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
        result("nvme.size-ratio", CheckStatus::Pass, observed, EXP, "")
    }
}

fn skew(up: &[NodeFacts]) -> CheckResult {
    const EXP: &str = "every node's clock within 500 ms of the cluster median, and synchronised";
    let mut skews: Vec<(i64, &str)> = up
        .iter()
        .filter_map(|n| n.skew_ms.map(|s| (s, n.name)))
        .collect();
    let unsynced: Vec<&str> = up
        .iter()
        .filter(|n| n.host.and_then(|h| h.clock_synced) == Some(false))
        .map(|n| n.name)
        .collect();
    if skews.len() < 2 {
        return result(
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
        return result(
            "ntp.skew",
            CheckStatus::Fail,
            format!("off the median: {}", off.join(", ")),
            EXP,
            "check chrony/ntpd on those nodes (`chronyc tracking`) and that all nodes use the same time source",
        );
    }
    if !unsynced.is_empty() {
        return result(
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
    result(
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

    #[test]
    fn skew_fails_a_node_off_the_median_and_names_the_nodes_left_out() {
        let synced = HostFacts {
            clock_synced: Some(true),
            ..Default::default()
        };
        let up: Vec<NodeFacts> = [("a1", 0), ("a2", 40), ("a3", 900)]
            .into_iter()
            .map(|(name, skew)| NodeFacts {
                name,
                host: Some(&synced),
                nvme: None,
                skew_ms: Some(skew),
            })
            .collect();
        let r = &judge(&up, 0)[2];
        assert_eq!(r.status, CheckStatus::Fail, "{}", r.observed);
        assert!(r.observed.contains("a3 +860 ms"), "{}", r.observed);
        let r = &judge(&up[..2], 1)[2];
        assert_eq!(r.status, CheckStatus::Pass, "{}", r.observed);
        assert!(
            r.observed.ends_with("(1 not up, left out)"),
            "{}",
            r.observed
        );
    }
}

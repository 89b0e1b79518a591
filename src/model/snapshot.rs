//! Everything an agent reports about its node at one moment, section by section, with
//! the age and success of the collector behind each section.

use super::checks::CheckResult;
use super::net::Network;
use super::nvme::NvmeController;
use super::pinning::Pinning;
use super::probes::ProbeReport;
use super::topology::Topology;
use serde::{Deserialize, Serialize};

/// The independently collected parts of a snapshot. Each has its own collector, interval,
/// deadline and age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Topology,
    Pinning,
    Network,
    Nvme,
    /// Preflight checks and the host facts read with them (`NodeSnapshot::host`).
    Checks,
    Probes,
    /// The data plane the node hosts (`model::dataplane`): published by the data plane
    /// every second, not read by a collector, so it has no collector status.
    Dataplane,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Topology,
        Section::Pinning,
        Section::Network,
        Section::Nvme,
        Section::Checks,
        Section::Probes,
        Section::Dataplane,
    ];

    /// The sections read from the host by collectors, each with a collector status.
    pub const COLLECTED: [Section; 6] = [
        Section::Topology,
        Section::Pinning,
        Section::Network,
        Section::Nvme,
        Section::Checks,
        Section::Probes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Topology => "topology",
            Section::Pinning => "pinning",
            Section::Network => "network",
            Section::Nvme => "nvme",
            Section::Checks => "checks",
            Section::Probes => "probes",
            Section::Dataplane => "dataplane",
        }
    }

    pub fn parse(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Identity of the node and of the agent reporting for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub hostname: String,
    pub agent_version: String,
    pub agent_started_ms: i64,
    /// Set when the host facts come from an emulated profile (`axon demo`, tests), so
    /// every view can label them as such.
    pub emulated_profile: Option<String>,
    pub collect_interval_ms: u64,
}

/// Facts about the host that the console compares across nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub kernel_release: Option<String>,
    pub os_name: Option<String>,
    /// IOMMU-related kernel parameters from /proc/cmdline (`intel_iommu=on`, `iommu=pt`).
    pub iommu_cmdline: Vec<String>,
    /// Number of IOMMU units in /sys/class/iommu; None when unreadable.
    pub iommu_units: Option<u32>,
    /// adjtimex says the clock is synchronised; None when it could not be asked.
    pub clock_synced: Option<bool>,
    pub clock_max_error_us: Option<i64>,
}

/// One collector's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorStatus {
    pub section: Section,
    pub ok: bool,
    pub error: Option<String>,
    /// When the last run finished (agent clock, unix ms); 0 if it never ran.
    pub last_run_ms: i64,
    /// When the section's data was last collected successfully; None if never.
    pub last_success_ms: Option<i64>,
    pub duration_us: u64,
    pub interval_ms: u64,
    pub deadline_ms: u64,
    /// Non-fatal problems of the last run (unreadable or malformed files, each named in
    /// `error` and the agent's log); 1 for a run that failed outright.
    #[serde(default)]
    pub problems: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub node: NodeInfo,
    /// When the agent assembled this snapshot (agent clock, unix ms).
    pub taken_ms: i64,
    pub collectors: Vec<CollectorStatus>,
    pub topology: Option<Topology>,
    pub pinning: Option<Pinning>,
    pub network: Option<Network>,
    pub nvme: Option<Vec<NvmeController>>,
    pub host: Option<HostFacts>,
    pub checks: Option<Vec<CheckResult>>,
    pub probes: Option<ProbeReport>,
    pub dataplane: Option<crate::model::dataplane::NodeDataplane>,
}

/// Data older than this many of its collector's intervals (or deadlines, if longer) is
/// stale: the agent's checks stop judging it and the console stops showing it as current.
pub const STALE_INTERVALS: i64 = 3;

impl CollectorStatus {
    /// Age beyond which this collector's data is stale (at least 300 ms, so an interval
    /// reported as 0 does not make every datum stale).
    pub fn stale_after_ms(&self) -> i64 {
        let period = self.interval_ms.max(self.deadline_ms).max(100);
        STALE_INTERVALS.saturating_mul(i64::try_from(period).unwrap_or(i64::MAX))
    }

    /// The last run failed outright (a run that succeeded with problems is a success):
    /// the section's data, if any, comes from an earlier run.
    pub fn last_run_failed(&self) -> bool {
        self.last_run_ms > 0 && self.last_success_ms != Some(self.last_run_ms)
    }
}

impl NodeSnapshot {
    pub fn collector(&self, section: Section) -> Option<&CollectorStatus> {
        self.collectors.iter().find(|c| c.section == section)
    }

    /// Age of a section's data at `taken_ms`, in milliseconds; None if never collected.
    pub fn section_age_ms(&self, section: Section) -> Option<i64> {
        self.collector(section)
            .and_then(|c| c.last_success_ms)
            .map(|t| self.taken_ms.saturating_sub(t).max(0))
    }
}

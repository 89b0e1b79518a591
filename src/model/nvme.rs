//! NVMe controllers, namespaces and the SMART / Health Information log (log id 02h),
//! decoded into operator units (°C, bytes, seconds, ratios).

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// A controller's names and identifiers are short (the model number is at most 40 bytes,
/// most are under 24): CompactStrings hold those of up to 24 bytes inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvmeController {
    /// Kernel name: `nvme0`.
    pub name: CompactString,
    pub model: CompactString,
    pub serial: CompactString,
    pub firmware: CompactString,
    pub transport: CompactString,
    /// PCI address for PCIe controllers (`0000:41:00.0`).
    pub address: CompactString,
    /// Physical slot from /sys/bus/pci/slots, when the platform names it.
    pub slot: Option<CompactString>,
    pub numa_node: Option<i32>,
    /// Controller state: `live`, `resetting`, `dead`, …
    pub state: CompactString,
    pub namespaces: Vec<NvmeNamespace>,
    pub smart: Option<SmartLog>,
    /// Why `smart` is missing (ioctl failed, permission denied…).
    pub smart_error: Option<String>,
}

impl NvmeController {
    pub fn capacity_bytes(&self) -> u64 {
        self.namespaces.iter().map(|n| n.size_bytes).sum()
    }

    /// True when the volatile write cache is on (`write back`) for any namespace, which
    /// means unflushed writes are lost on power failure unless the drive has PLP.
    pub fn volatile_write_cache(&self) -> Option<bool> {
        let mut seen = None;
        for ns in &self.namespaces {
            match ns.write_cache {
                Some(WriteCache::WriteBack) => return Some(true),
                Some(WriteCache::WriteThrough) => seen = Some(false),
                None => {}
            }
        }
        seen
    }

    pub fn health(&self) -> DriveHealth {
        self.health_ignoring(0)
    }

    /// Health with the critical-warning bits in `ignore` left out (a check that judges
    /// one bit itself, such as nvme.plp, leaves it out of nvme.health).
    pub fn health_ignoring(&self, ignore: u8) -> DriveHealth {
        let mut reasons = Vec::new();
        let mut level = HealthLevel::Ok;
        if self.state != "live" {
            reasons.push(format!("controller state {}", self.state));
            level = HealthLevel::Critical;
        }
        match &self.smart {
            None => {
                reasons.push(format!(
                    "SMART unavailable: {}",
                    self.smart_error.as_deref().unwrap_or("not read")
                ));
                level = level.max(HealthLevel::Unknown);
            }
            Some(s) => {
                let (l, r) = s.assess_ignoring(ignore);
                level = level.max(l);
                reasons.extend(r);
            }
        }
        DriveHealth { level, reasons }
    }
}

/// IDEMA LBA1-03: a drive sold as G GB (G ≥ 50) holds 97,696,368 + 1,953,504 × (G − 50)
/// sectors of 512 bytes. Enterprise NVMe drives follow it: a "30.72 TB" drive has
/// 30,725,971,992,576 bytes, a "3.84 TB" one 3,840,755,982,336.
const IDEMA_50_GB_BYTES: u64 = 97_696_368 * 512;
const IDEMA_BYTES_PER_GB: u64 = 1_953_504 * 512;

/// The capacity class a drive of `bytes` is sold as, in GB (10^9 bytes). Drives are sold
/// at round sizes (3.84 / 7.68 / 15.36 / 30.72 TB, 0.8 / 1.6 / 3.2 / 6.4 TB, 32 TB…) and
/// hold either exactly the IDEMA size of that class or at least that many decimal bytes:
/// the class lies between the IDEMA class the bytes hold and the decimal GB, and is the
/// roundest multiple of 10 GB there (the one with the most factors of two).
pub fn marketed_gb(bytes: u64) -> u64 {
    let decimal = bytes / 1_000_000_000;
    if bytes < IDEMA_50_GB_BYTES {
        return (decimal + 5) / 10 * 10;
    }
    let idema = (bytes - IDEMA_50_GB_BYTES) / IDEMA_BYTES_PER_GB + 50;
    let (lo, hi) = (idema / 10, (decimal / 10).max(idema / 10));
    (lo..=hi)
        .filter(|u| *u > 0)
        .max_by_key(|u| (u.trailing_zeros(), std::cmp::Reverse(*u)))
        .unwrap_or(lo)
        * 10
}

/// The largest class the seed's "Capacity up to 30 TB" admits: drives sold as 30 TB are
/// the 30.72 TB class (the 3.84 / 7.68 / 15.36 / 30.72 TB series), so that class passes
/// and anything sold larger (32 TB, 61.44 TB) does not.
pub const MAX_SSD_CLASS_GB: u64 = 30_720;

/// `30.72 TB`, `3.84 TB`, `32 TB`, `800 GB`.
pub fn class_label(gb: u64) -> String {
    if gb < 1000 {
        return format!("{gb} GB");
    }
    let tb = format!("{}.{:03}", gb / 1000, gb % 1000);
    format!("{} TB", tb.trim_end_matches('0').trim_end_matches('.'))
}

impl NvmeController {
    /// The class the drive is sold as, by its total namespace size; None while no size is
    /// known.
    pub fn marketed_gb(&self) -> Option<u64> {
        let b = self.capacity_bytes();
        (b > 0).then(|| marketed_gb(b))
    }

    /// Why the drive does not fit the deployment by its size (the seed's "up to 30 TB"),
    /// if it does not.
    pub fn size_warning(&self) -> Option<String> {
        let gb = self.marketed_gb()?;
        (gb > MAX_SSD_CLASS_GB).then(|| format!("over 30 TB: sold as {}", class_label(gb)))
    }

    /// What the console shows for the drive: its health, plus a warning when its size
    /// does not fit the deployment.
    pub fn console_health(&self) -> DriveHealth {
        let mut h = self.health();
        if let Some(w) = self.size_warning() {
            h.reasons.push(w);
            h.level = h.level.max(HealthLevel::Warning);
        }
        h
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeNamespace {
    /// Block device name: `nvme0n1`.
    pub name: CompactString,
    pub nsid: Option<u32>,
    pub size_bytes: u64,
    pub logical_block_size: Option<u32>,
    pub write_cache: Option<WriteCache>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteCache {
    WriteBack,
    WriteThrough,
}

/// Critical Warning bits (byte 0 of the SMART log, NVMe Base Specification 2.0, fig. 207).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CriticalWarning(pub u8);

impl CriticalWarning {
    pub const SPARE_BELOW_THRESHOLD: u8 = 1 << 0;
    pub const TEMPERATURE: u8 = 1 << 1;
    pub const RELIABILITY_DEGRADED: u8 = 1 << 2;
    pub const READ_ONLY: u8 = 1 << 3;
    pub const VOLATILE_MEMORY_BACKUP_FAILED: u8 = 1 << 4;
    pub const PMR_READ_ONLY: u8 = 1 << 5;

    /// (bit, short name, meaning) for every defined bit.
    pub const BITS: [(u8, &'static str, &'static str); 6] = [
        (
            Self::SPARE_BELOW_THRESHOLD,
            "available_spare",
            "available spare below threshold",
        ),
        (
            Self::TEMPERATURE,
            "temperature",
            "temperature outside threshold",
        ),
        (
            Self::RELIABILITY_DEGRADED,
            "reliability",
            "NVM subsystem reliability degraded",
        ),
        (
            Self::READ_ONLY,
            "read_only",
            "media placed in read-only mode",
        ),
        (
            Self::VOLATILE_MEMORY_BACKUP_FAILED,
            "volatile_memory_backup",
            "volatile memory backup device failed (power-loss protection lost)",
        ),
        (
            Self::PMR_READ_ONLY,
            "pmr_read_only",
            "persistent memory region read-only",
        ),
    ];

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn is_clear(self) -> bool {
        self.0 == 0
    }

    /// Meanings of the bits that are set.
    pub fn describe(self) -> Vec<&'static str> {
        Self::BITS
            .iter()
            .filter(|(b, _, _)| self.has(*b))
            .map(|(_, _, m)| *m)
            .collect()
    }
}

/// The SMART / Health Information log page in operator units.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmartLog {
    pub critical_warning: CriticalWarning,
    /// Composite temperature in Kelvin as reported (0 = not reported).
    pub temperature_kelvin: u16,
    pub available_spare_pct: u8,
    pub available_spare_threshold_pct: u8,
    /// Vendor estimate of life used; may exceed 100 (capped at 255 by the spec).
    pub percentage_used: u8,
    pub endurance_group_warning: u8,
    pub data_read_bytes: u64,
    pub data_written_bytes: u64,
    pub host_read_commands: u64,
    pub host_write_commands: u64,
    pub controller_busy_seconds: u64,
    pub power_cycles: u64,
    pub power_on_seconds: u64,
    pub unsafe_shutdowns: u64,
    pub media_errors: u64,
    pub error_log_entries: u64,
    pub warning_temperature_seconds: u64,
    pub critical_temperature_seconds: u64,
    /// Temperature sensors 1–8 that are implemented: (sensor number, Kelvin).
    pub temperature_sensors_kelvin: Vec<(u8, u16)>,
}

impl SmartLog {
    pub fn temperature_celsius(&self) -> Option<i32> {
        (self.temperature_kelvin != 0).then(|| i32::from(self.temperature_kelvin) - 273)
    }

    pub fn power_on_hours(&self) -> u64 {
        self.power_on_seconds / 3600
    }

    /// Health level and the reasons for it. Critical warnings are critical, the
    /// volatile-memory-backup bit included: a storage drive that lost its power-loss
    /// protection can lose acknowledged writes. The temperature bit, media errors and wear
    /// are warnings (the drive still serves data, but needs attention).
    pub fn assess(&self) -> (HealthLevel, Vec<String>) {
        self.assess_ignoring(0)
    }

    /// [`SmartLog::assess`] with the critical-warning bits in `ignore` left out.
    pub fn assess_ignoring(&self, ignore: u8) -> (HealthLevel, Vec<String>) {
        let mut level = HealthLevel::Ok;
        let mut reasons = Vec::new();
        for (bit, _, meaning) in CriticalWarning::BITS {
            if self.critical_warning.has(bit) && ignore & bit == 0 {
                let l = if bit == CriticalWarning::TEMPERATURE {
                    HealthLevel::Warning
                } else {
                    HealthLevel::Critical
                };
                level = level.max(l);
                reasons.push(format!("critical warning: {meaning}"));
            }
        }
        if self.media_errors > 0 {
            level = level.max(HealthLevel::Warning);
            reasons.push(format!("{} media errors", self.media_errors));
        }
        if self.percentage_used >= 90 {
            level = level.max(HealthLevel::Warning);
            reasons.push(format!("{}% of rated life used", self.percentage_used));
        }
        if self.available_spare_pct <= self.available_spare_threshold_pct
            && !self
                .critical_warning
                .has(CriticalWarning::SPARE_BELOW_THRESHOLD)
        {
            level = level.max(HealthLevel::Warning);
            reasons.push(format!(
                "available spare {}% at threshold {}%",
                self.available_spare_pct, self.available_spare_threshold_pct
            ));
        }
        (level, reasons)
    }
}

/// Ordered from best to worst so `max` picks the worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthLevel {
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl HealthLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthLevel::Ok => "ok",
            HealthLevel::Unknown => "unknown",
            HealthLevel::Warning => "warning",
            HealthLevel::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveHealth {
    pub level: HealthLevel,
    pub reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_power_loss_protection_is_critical_and_media_errors_a_warning() {
        let s = SmartLog {
            critical_warning: CriticalWarning(CriticalWarning::VOLATILE_MEMORY_BACKUP_FAILED),
            media_errors: 17,
            available_spare_pct: 100,
            available_spare_threshold_pct: 10,
            ..Default::default()
        };
        let (level, reasons) = s.assess();
        assert_eq!(level, HealthLevel::Critical);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        let (level, reasons) = s.assess_ignoring(CriticalWarning::VOLATILE_MEMORY_BACKUP_FAILED);
        assert_eq!(level, HealthLevel::Warning, "media errors alone");
        assert_eq!(reasons, vec!["17 media errors".to_string()]);
    }

    #[test]
    fn read_only_media_is_critical() {
        let s = SmartLog {
            critical_warning: CriticalWarning(CriticalWarning::READ_ONLY),
            available_spare_pct: 100,
            available_spare_threshold_pct: 10,
            ..Default::default()
        };
        assert_eq!(s.assess().0, HealthLevel::Critical);
    }

    #[test]
    fn drives_are_judged_by_the_class_they_are_sold_as() {
        assert_eq!(marketed_gb(30_725_971_992_576), 30_720);
        assert_eq!(marketed_gb(3_840_755_982_336), 3_840);
        assert_eq!(marketed_gb(7_681_501_126_656), 7_680);
        assert_eq!(marketed_gb(15_360_950_534_144), 15_360, "a few GB short");
        assert_eq!(
            marketed_gb(30_720_000_000_000),
            30_720,
            "plain decimal bytes"
        );
        assert_eq!(marketed_gb(32_006_220_374_016), 32_000);
        assert_eq!(marketed_gb(32_000_000_000_000), 32_000);
        assert_eq!(marketed_gb(61_440_000_000_000), 61_440);
        assert_eq!(marketed_gb(61_451_933_147_136), 61_440, "IDEMA 61.44 TB");
        assert_eq!(
            marketed_gb(30_725_971_992_576 + 200_000_000),
            30_720,
            "a bit over"
        );
        assert_eq!(marketed_gb(30_800_000_000_000), 30_800);
        assert_eq!(marketed_gb(800_000_000_000), 800);
        assert_eq!(marketed_gb(800_166_076_416), 800);
        assert_eq!(class_label(30_720), "30.72 TB");
        assert_eq!(class_label(32_000), "32 TB");
        assert_eq!(class_label(3_840), "3.84 TB");
        assert_eq!(class_label(800), "800 GB");
    }

    #[test]
    fn temperature_converts_from_kelvin() {
        let s = SmartLog {
            temperature_kelvin: 311,
            ..Default::default()
        };
        assert_eq!(s.temperature_celsius(), Some(38));
        assert_eq!(SmartLog::default().temperature_celsius(), None);
    }
}

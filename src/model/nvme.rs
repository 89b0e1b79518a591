//! NVMe controllers, namespaces and the SMART / Health Information log (log id 02h),
//! decoded into operator units (°C, bytes, seconds, ratios).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvmeController {
    /// Kernel name: `nvme0`.
    pub name: String,
    pub model: String,
    pub serial: String,
    pub firmware: String,
    pub transport: String,
    /// PCI address for PCIe controllers (`0000:41:00.0`).
    pub address: String,
    /// Physical slot from /sys/bus/pci/slots, when the platform names it.
    pub slot: Option<String>,
    pub numa_node: Option<i32>,
    /// Controller state: `live`, `resetting`, `dead`, …
    pub state: String,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeNamespace {
    /// Block device name: `nvme0n1`.
    pub name: String,
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
    fn temperature_converts_from_kelvin() {
        let s = SmartLog {
            temperature_kelvin: 311,
            ..Default::default()
        };
        assert_eq!(s.temperature_celsius(), Some(38));
        assert_eq!(SmartLog::default().temperature_celsius(), None);
    }
}

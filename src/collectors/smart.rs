//! Decoder for the NVMe SMART / Health Information log page (Log Identifier 02h), per the
//! NVMe Base Specification 2.0 (figure 207). A pure function from the 512 bytes the Get
//! Log Page command returns to operator units.

use crate::model::nvme::{CriticalWarning, SmartLog};

pub const SMART_LOG_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SMART log page is {0} bytes, expected {SMART_LOG_LEN}")]
pub struct SmartError(pub usize);

/// One "data unit" is 1000 units of 512 bytes (spec: reported in thousands, rounded up).
const DATA_UNIT_BYTES: u128 = 512 * 1000;

fn u128_le(b: &[u8], off: usize) -> u128 {
    u128::from_le_bytes(b[off..off + 16].try_into().expect("16 bytes"))
}

fn u32_le(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u16_le(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().expect("2 bytes"))
}

/// Saturates the spec's 128-bit counters into u64; a drive would need to move 9.4 ZB to
/// overflow the byte counters, but hostile input must not panic.
fn sat(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

pub fn decode(page: &[u8]) -> Result<SmartLog, SmartError> {
    if page.len() < SMART_LOG_LEN {
        return Err(SmartError(page.len()));
    }
    let b = &page[..SMART_LOG_LEN];
    let sensors = (0..8)
        .filter_map(|i| {
            let k = u16_le(b, 200 + 2 * i);
            (k != 0).then_some((i as u8 + 1, k))
        })
        .collect();
    Ok(SmartLog {
        critical_warning: CriticalWarning(b[0]),
        temperature_kelvin: u16_le(b, 1),
        available_spare_pct: b[3],
        available_spare_threshold_pct: b[4],
        percentage_used: b[5],
        endurance_group_warning: b[6],
        data_read_bytes: sat(u128_le(b, 32).saturating_mul(DATA_UNIT_BYTES)),
        data_written_bytes: sat(u128_le(b, 48).saturating_mul(DATA_UNIT_BYTES)),
        host_read_commands: sat(u128_le(b, 64)),
        host_write_commands: sat(u128_le(b, 80)),
        controller_busy_seconds: sat(u128_le(b, 96).saturating_mul(60)),
        power_cycles: sat(u128_le(b, 112)),
        power_on_seconds: sat(u128_le(b, 128).saturating_mul(3600)),
        unsafe_shutdowns: sat(u128_le(b, 144)),
        media_errors: sat(u128_le(b, 160)),
        error_log_entries: sat(u128_le(b, 176)),
        warning_temperature_seconds: u64::from(u32_le(b, 192)) * 60,
        critical_temperature_seconds: u64::from(u32_le(b, 196)) * 60,
        temperature_sensors_kelvin: sensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a page field by field at the offsets the specification gives.
    struct Page([u8; 512]);

    impl Page {
        fn new() -> Self {
            Page([0; 512])
        }
        fn u8(mut self, off: usize, v: u8) -> Self {
            self.0[off] = v;
            self
        }
        fn u16(mut self, off: usize, v: u16) -> Self {
            self.0[off..off + 2].copy_from_slice(&v.to_le_bytes());
            self
        }
        fn u32(mut self, off: usize, v: u32) -> Self {
            self.0[off..off + 4].copy_from_slice(&v.to_le_bytes());
            self
        }
        fn u128(mut self, off: usize, v: u128) -> Self {
            self.0[off..off + 16].copy_from_slice(&v.to_le_bytes());
            self
        }
    }

    #[test]
    fn decodes_every_field_at_its_spec_offset() {
        let p = Page::new()
            .u8(0, 0b0001_0001)
            .u16(1, 318)
            .u8(3, 97)
            .u8(4, 10)
            .u8(5, 4)
            .u8(6, 1)
            .u128(32, 1_000)
            .u128(48, 2_000)
            .u128(64, 123_456)
            .u128(80, 654_321)
            .u128(96, 90)
            .u128(112, 41)
            .u128(128, 8_000)
            .u128(144, 3)
            .u128(160, 17)
            .u128(176, 23)
            .u32(192, 5)
            .u32(196, 1)
            .u16(200, 320)
            .u16(204, 330);
        let s = decode(&p.0).unwrap();
        assert!(
            s.critical_warning
                .has(CriticalWarning::SPARE_BELOW_THRESHOLD)
        );
        assert!(
            s.critical_warning
                .has(CriticalWarning::VOLATILE_MEMORY_BACKUP_FAILED)
        );
        assert!(!s.critical_warning.has(CriticalWarning::READ_ONLY));
        assert_eq!(s.temperature_kelvin, 318);
        assert_eq!(s.temperature_celsius(), Some(45));
        assert_eq!(s.available_spare_pct, 97);
        assert_eq!(s.available_spare_threshold_pct, 10);
        assert_eq!(s.percentage_used, 4);
        assert_eq!(s.endurance_group_warning, 1);
        assert_eq!(s.data_read_bytes, 1_000 * 512_000);
        assert_eq!(s.data_written_bytes, 2_000 * 512_000);
        assert_eq!(s.host_read_commands, 123_456);
        assert_eq!(s.host_write_commands, 654_321);
        assert_eq!(s.controller_busy_seconds, 90 * 60);
        assert_eq!(s.power_cycles, 41);
        assert_eq!(s.power_on_seconds, 8_000 * 3600);
        assert_eq!(s.power_on_hours(), 8_000);
        assert_eq!(s.unsafe_shutdowns, 3);
        assert_eq!(s.media_errors, 17);
        assert_eq!(s.error_log_entries, 23);
        assert_eq!(s.warning_temperature_seconds, 300);
        assert_eq!(s.critical_temperature_seconds, 60);
        assert_eq!(s.temperature_sensors_kelvin, vec![(1, 320), (3, 330)]);
    }

    #[test]
    fn short_pages_are_errors() {
        assert_eq!(decode(&[0u8; 100]).unwrap_err(), SmartError(100));
        assert_eq!(
            decode(&[]).unwrap_err().to_string(),
            "SMART log page is 0 bytes, expected 512"
        );
    }

    #[test]
    fn huge_counters_saturate_instead_of_overflowing() {
        let p = Page::new().u128(32, u128::MAX).u128(160, u128::MAX);
        let s = decode(&p.0).unwrap();
        assert_eq!(s.data_read_bytes, u64::MAX);
        assert_eq!(s.media_errors, u64::MAX);
    }

    #[test]
    fn every_critical_warning_bit_is_described() {
        let s = decode(&Page::new().u8(0, 0x3f).0).unwrap();
        assert_eq!(s.critical_warning.describe().len(), 6);
    }
}

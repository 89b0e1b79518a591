//! Judges of the NVMe drives: power-loss protection, capacity and the 1:8 size ratio on
//! the host, drive count, and SMART health.

use super::{CheckInputs, plural, result, unknown, unknown_with};
use crate::model::checks::{CheckResult, CheckStatus};
use crate::model::nvme::{CriticalWarning, HealthLevel, NvmeController, class_label, marketed_gb};
use humansize::{DECIMAL, format_size};

fn drives<'a>(
    inp: &'a CheckInputs,
    id: &str,
    exp: &str,
) -> Result<&'a [NvmeController], CheckResult> {
    match &inp.nvme {
        Err(e) => Err(unknown(id, e.clone(), exp)),
        Ok([]) => Err(unknown_with(
            id,
            "no NVMe drives on this host, nothing to judge",
            exp,
            "see nvme.count",
        )),
        Ok(d) => Ok(d),
    }
}

pub fn nvme_plp(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "nvme.plp";
    const EXP: &str =
        "no volatile-memory-backup warning and no volatile write cache (power-loss protected)";
    let d = match drives(inp, ID, EXP) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let vmb: Vec<&str> = d
        .iter()
        .filter(|c| {
            c.smart.as_ref().is_some_and(|s| {
                s.critical_warning
                    .has(CriticalWarning::VOLATILE_MEMORY_BACKUP_FAILED)
            })
        })
        .map(|c| c.name.as_str())
        .collect();
    if !vmb.is_empty() {
        return result(
            ID,
            CheckStatus::Fail,
            format!(
                "volatile memory backup device failed on {} (power-loss protection lost)",
                vmb.join(", ")
            ),
            EXP,
            "replace the drive(s): phase them out of the cluster first so their data moves, then swap them; until then their acknowledged writes are not safe on power loss",
        );
    }
    let wb: Vec<&str> = d
        .iter()
        .filter(|c| c.volatile_write_cache() == Some(true))
        .map(|c| c.name.as_str())
        .collect();
    if !wb.is_empty() {
        return result(
            ID,
            CheckStatus::Warn,
            format!(
                "volatile write cache on (write back) for {}: the drive does not declare power-loss protection",
                wb.join(", ")
            ),
            EXP,
            "use drives with power-loss protection (enterprise NVMe); check the datasheet",
        );
    }
    // Every drive must be vouched for by its SMART log and by the write cache mode of
    // every namespace; a drive whose cache mode cannot be read may be write back.
    let mut unknown_drives = Vec::new();
    for c in d {
        let mut why = Vec::new();
        if c.smart.is_none() {
            why.push("SMART unreadable".to_string());
        }
        if c.namespaces.is_empty() {
            why.push("no namespace to read the write cache mode of".to_string());
        }
        let no_cache: Vec<&str> = c
            .namespaces
            .iter()
            .filter(|n| n.write_cache.is_none())
            .map(|n| n.name.as_str())
            .collect();
        if !no_cache.is_empty() {
            why.push(format!(
                "/sys/block/{}/queue/write_cache unreadable",
                no_cache.join(",")
            ));
        }
        if !why.is_empty() {
            unknown_drives.push(format!("{}: {}", c.name, why.join(", ")));
        }
    }
    if !unknown_drives.is_empty() {
        return unknown(ID, unknown_drives.join("; "), EXP);
    }
    result(
        ID,
        CheckStatus::Pass,
        format!(
            "{}: write through, no backup warning",
            plural(d.len(), "drive")
        ),
        EXP,
        "",
    )
}

pub fn nvme_capacity(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "nvme.capacity";
    const EXP: &str = "each SSD sold as 30 TB or less (up to the 30.72 TB class), and smallest : largest no worse than 1 : 8 on this host";
    let d = match drives(inp, ID, EXP) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let max_class = inp.plan.max_ssd_class_gb;
    let tb = |b: u64| format_size(b, DECIMAL);
    // A controller without a namespace has no usable capacity; a namespace of 0 bytes is
    // one whose size could not be read (the collector reports the file), or one that is
    // not usable either: neither may count as a size that passes.
    let no_ns: Vec<&str> = d
        .iter()
        .filter(|c| c.namespaces.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    let no_size: Vec<String> = d
        .iter()
        .flat_map(|c| c.namespaces.iter())
        .filter(|n| n.size_bytes == 0)
        .map(|n| format!("/sys/block/{}/size", n.name))
        .collect();
    let sized: Vec<(&NvmeController, u64, u64)> = d
        .iter()
        .filter(|c| !c.namespaces.is_empty() && c.namespaces.iter().all(|n| n.size_bytes > 0))
        .map(|c| (c, c.capacity_bytes(), marketed_gb(c.capacity_bytes())))
        .collect();
    let big: Vec<String> = sized
        .iter()
        .filter(|(_, _, gb)| *gb > max_class)
        .map(|(c, b, gb)| format!("{} {} ({} class)", c.name, tb(*b), class_label(*gb)))
        .collect();
    let extremes = sized
        .iter()
        .min_by_key(|s| s.1)
        .zip(sized.iter().max_by_key(|s| s.1));
    if let Some((lo, hi)) = extremes {
        let too_spread = hi.1 > lo.1.saturating_mul(8);
        if !big.is_empty() || too_spread {
            let mut why = Vec::new();
            let mut fix = Vec::new();
            if !big.is_empty() {
                why.push(format!(
                    "sold larger than 30 TB (judged by marketed class; the 30.72 TB class is the largest accepted): {}",
                    big.join(", ")
                ));
                fix.push("use SSDs sold as 30 TB (30.72 TB) or less");
            }
            if too_spread {
                why.push(format!(
                    "smallest {} {} : largest {} {} = 1:{:.2}, worse than 1:8 on this host alone",
                    lo.0.name,
                    tb(lo.1),
                    hi.0.name,
                    tb(hi.1),
                    hi.1 as f64 / lo.1 as f64
                ));
                fix.push("keep the smallest and largest SSD within 1:8 (replace the smallest drives, or move the odd ones to another cluster)");
            }
            return result(ID, CheckStatus::Fail, why.join("; "), EXP, fix.join("; "));
        }
    }
    let range = match extremes {
        Some((lo, hi)) => format!("{} – {}", tb(lo.1), tb(hi.1)),
        None => "no drive size known".into(),
    };
    if !no_ns.is_empty() {
        return result(
            ID,
            CheckStatus::Warn,
            format!("{range}; no namespace on {}", no_ns.join(", ")),
            EXP,
            format!(
                "create and attach a namespace covering the drive (`nvme create-ns /dev/{0} …; nvme attach-ns /dev/{0} …`), or remove it from the plan",
                no_ns[0]
            ),
        );
    }
    if !no_size.is_empty() {
        return unknown(
            ID,
            format!("{range}; size unreadable or 0 in {}", no_size.join(", ")),
            EXP,
        );
    }
    let Some((lo, hi)) = extremes else {
        return unknown(ID, range, EXP);
    };
    // The rule applied, in the observed text: sizes are judged by the class they are sold
    // as (the IDEMA size a byte count holds), so a 30.72 TB drive is the "30 TB" class.
    result(
        ID,
        CheckStatus::Pass,
        format!(
            "{}, {range}; judged by marketed class: largest {} is the {} class{}; smallest : largest 1:{:.2}",
            plural(sized.len(), "drive"),
            hi.0.name,
            class_label(hi.2),
            if hi.1 > 30_000_000_000_000 {
                ", sold as 30 TB, within the seed's up to 30 TB"
            } else {
                ""
            },
            hi.1 as f64 / lo.1 as f64
        ),
        EXP,
        "",
    )
}

pub fn nvme_count(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "nvme.count";
    const EXP: &str = "2, 4 or 8 NVMe drives";
    match &inp.nvme {
        Err(e) => unknown(ID, e.clone(), EXP),
        Ok(d) if matches!(d.len(), 2 | 4 | 8) => result(
            ID,
            CheckStatus::Pass,
            plural(d.len(), "NVMe drive"),
            EXP,
            "",
        ),
        Ok(d) => result(
            ID,
            CheckStatus::Fail,
            if d.is_empty() {
                "no NVMe drives".to_string()
            } else {
                plural(d.len(), "NVMe drive")
            },
            EXP,
            "fit 2, 4 or 8 NVMe drives per server (the bare-metal plan has one drive core per drive, up to 8)",
        ),
    }
}

pub fn nvme_health(inp: &CheckInputs) -> CheckResult {
    const ID: &str = "nvme.health";
    const EXP: &str = "no critical warnings, media errors or worn-out drives";
    let d = match drives(inp, ID, EXP) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut worst = HealthLevel::Ok;
    let mut notes = Vec::new();
    for c in d {
        // The volatile-memory-backup bit is judged by nvme.plp.
        let h = c.health_ignoring(CriticalWarning::VOLATILE_MEMORY_BACKUP_FAILED);
        if h.level > HealthLevel::Ok {
            notes.push(format!("{}: {}", c.name, h.reasons.join(", ")));
        }
        worst = worst.max(h.level);
    }
    let status = match worst {
        HealthLevel::Ok => CheckStatus::Pass,
        HealthLevel::Unknown => CheckStatus::Unknown,
        HealthLevel::Warning => CheckStatus::Warn,
        HealthLevel::Critical => CheckStatus::Fail,
    };
    let observed = if notes.is_empty() {
        format!("{} healthy", plural(d.len(), "drive"))
    } else {
        notes.join("; ")
    };
    result(
        ID,
        status,
        observed,
        EXP,
        "read the drive's error log (`nvme error-log /dev/nvmeN`); plan a replacement, phasing the drive out first, if the errors grow",
    )
}

//! NVMe controllers and namespaces from sysfs (model, serial, firmware, NUMA node, slot,
//! capacity, write cache) and each controller's SMART / Health log through the admin
//! passthrough ioctl (or the fixture's captured page), decoded by `smart::decode`.

use super::{CollectError, HostRoot, Problems, smart};
use crate::model::nvme::{NvmeController, NvmeNamespace, WriteCache};

const NVME_DIR: &str = "/sys/class/nvme";

/// Namespace entries under a controller: `nvme0n1`, or `nvme0c0n1` with native multipath
/// (then the block device is `nvme0n1`).
fn namespace_block_name(entry: &str) -> Option<String> {
    let rest = entry.strip_prefix("nvme")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((ctrl, ns)) = rest.split_once('n') {
        if let Some((subsys, path)) = ctrl.split_once('c') {
            if digits(subsys) && digits(path) && digits(ns) {
                return Some(format!("nvme{subsys}n{ns}"));
            }
        } else if digits(ctrl) && digits(ns) {
            return Some(entry.to_string());
        }
    }
    None
}

pub fn collect(
    root: &HostRoot,
    with_smart: bool,
    problems: &mut Problems,
) -> Result<Vec<NvmeController>, CollectError> {
    let mut out = Vec::new();
    // No /sys/class/nvme means no NVMe driver bound: zero controllers, which is a fact.
    let slots = pci_slots(root);
    for name in root.list_opt(NVME_DIR)? {
        let Some(idx) = name.strip_prefix("nvme") else {
            continue;
        };
        if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let base = format!("{NVME_DIR}/{name}");
        let mut text = |f: &str| {
            problems
                .take(root.value(&format!("{base}/{f}")))
                .unwrap_or_default()
        };
        let model = text("model");
        let serial = text("serial");
        let firmware = text("firmware_rev");
        let transport = text("transport");
        let state = text("state");
        let address = root
            .value_opt(&format!("{base}/address"))
            .ok()
            .flatten()
            .unwrap_or_default();
        let numa_node = match root.parse_opt::<i32>(&format!("{base}/numa_node")) {
            Ok(Some(n)) => Some(n),
            _ => problems
                .take(root.parse_opt::<i32>(&format!("{base}/device/numa_node")))
                .flatten(),
        }
        .filter(|n| *n >= 0);
        let slot = slots.iter().find_map(|(slot, addr)| {
            (!addr.is_empty() && address.starts_with(addr.as_str())).then(|| slot.clone())
        });

        let mut namespaces = Vec::new();
        for entry in root.list_opt(&base)? {
            let Some(block) = namespace_block_name(&entry) else {
                continue;
            };
            let size_sectors = root
                .parse::<u64>(&format!("/sys/block/{block}/size"))
                .or_else(|_| root.parse::<u64>(&format!("{base}/{entry}/size")));
            let size_bytes = match size_sectors {
                Ok(s) => s.saturating_mul(512),
                Err(e) => {
                    problems.push(e);
                    0
                }
            };
            let write_cache = match root.value_opt(&format!("/sys/block/{block}/queue/write_cache"))
            {
                Ok(Some(v)) if v == "write back" => Some(WriteCache::WriteBack),
                Ok(Some(v)) if v == "write through" => Some(WriteCache::WriteThrough),
                Ok(Some(v)) => {
                    problems.push(CollectError::malformed(
                        root.display_path(&format!("/sys/block/{block}/queue/write_cache")),
                        format!("`{v}` is neither `write back` nor `write through`"),
                    ));
                    None
                }
                Ok(None) => None,
                Err(e) => {
                    problems.push(e);
                    None
                }
            };
            namespaces.push(NvmeNamespace {
                nsid: root
                    .parse_opt::<u32>(&format!("{base}/{entry}/nsid"))
                    .ok()
                    .flatten(),
                size_bytes,
                logical_block_size: root
                    .parse_opt::<u32>(&format!("/sys/block/{block}/queue/logical_block_size"))
                    .ok()
                    .flatten(),
                write_cache,
                name: block.into(),
            });
        }
        namespaces.dedup_by(|a, b| a.name == b.name);

        let (smart, smart_error) = if with_smart {
            match root.sys().nvme_smart_log(&name) {
                Ok(page) => match smart::decode(&page) {
                    Ok(s) => (Some(s), None),
                    Err(e) => (None, Some(format!("{name}: {e}"))),
                },
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, Some("SMART not requested".into()))
        };
        if with_smart {
            if let Some(e) = &smart_error {
                problems.push(CollectError::Invalid {
                    what: format!("{name} SMART log"),
                    detail: e.clone(),
                });
            }
        }
        out.push(NvmeController {
            name: name.into(),
            model: model.into(),
            serial: serial.into(),
            firmware: firmware.into(),
            transport: transport.into(),
            address: address.into(),
            slot: slot.map(Into::into),
            numa_node,
            state: state.into(),
            namespaces,
            smart,
            smart_error,
        });
    }
    Ok(out)
}

/// (slot name, PCI address prefix `0000:41:00`) from /sys/bus/pci/slots.
fn pci_slots(root: &HostRoot) -> Vec<(String, String)> {
    root.list_opt("/sys/bus/pci/slots")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| {
            let addr = root
                .value(&format!("/sys/bus/pci/slots/{s}/address"))
                .ok()?;
            Some((s, addr))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_cover_multipath() {
        assert_eq!(namespace_block_name("nvme0n1").as_deref(), Some("nvme0n1"));
        assert_eq!(
            namespace_block_name("nvme2c5n3").as_deref(),
            Some("nvme2n3")
        );
        assert_eq!(namespace_block_name("nvme0"), None);
        assert_eq!(namespace_block_name("numa_node"), None);
        assert_eq!(namespace_block_name("nvmen1"), None);
    }
}

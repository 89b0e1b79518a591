//! Sets of CPU ids in the kernel's two spellings: the list form (`0-3,8,10-11`, as in
//! `cpulist` and `Cpus_allowed_list`) and the hex mask form (`ff,ffffffff`, as in
//! `Cpus_allowed`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A sorted, de-duplicated set of CPU ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CpuSet(Vec<u32>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    #[error("`{0}` is not a CPU id")]
    BadId(String),
    #[error("range `{0}` ends before it starts")]
    BackwardsRange(String),
    #[error("range `{0}` is larger than {MAX_CPUS} CPUs")]
    TooLarge(String),
    #[error("`{0}` is not a hex CPU mask group")]
    BadMask(String),
    #[error("the list names more than {MAX_CPUS} CPUs")]
    TooMany,
}

/// Linux's NR_CPUS tops out at 8192; anything beyond is garbage, not a CPU.
pub const MAX_CPUS: u32 = 8192;

impl CpuSet {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> Self {
        let mut v: Vec<u32> = ids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Self::exact(v)
    }

    /// Without spare capacity: sets are built once and held for long (a console holds
    /// the sets of 1,000 nodes' CPUs).
    fn exact(mut v: Vec<u32>) -> Self {
        v.shrink_to_fit();
        Self(v)
    }

    /// Parses the kernel list format. Whitespace around the value (the trailing newline of
    /// a sysfs file) is ignored; an empty string is the empty set.
    pub fn parse_list(s: &str) -> Result<Self, CpuListError> {
        let s = s.trim();
        let mut ids = Vec::new();
        if s.is_empty() {
            return Ok(Self(ids));
        }
        for part in s.split(',') {
            let part = part.trim();
            // Kernel ranges may carry a stride (`0-15:2`), used by isolcpus and friends.
            let (range, stride) = match part.split_once(':') {
                Some((r, st)) => {
                    let st: u32 = st
                        .parse()
                        .map_err(|_| CpuListError::BadId(part.to_string()))?;
                    (r, st.max(1))
                }
                None => (part, 1),
            };
            match range.split_once('-') {
                Some((a, b)) => {
                    let a = parse_id(a)?;
                    let b = parse_id(b)?;
                    if b < a {
                        return Err(CpuListError::BackwardsRange(part.to_string()));
                    }
                    if b - a >= MAX_CPUS {
                        return Err(CpuListError::TooLarge(part.to_string()));
                    }
                    ids.extend((a..=b).step_by(stride as usize));
                }
                None => ids.push(parse_id(range)?),
            }
            // The kernel names each CPU once, so a real list never expands beyond
            // MAX_CPUS; checking the running total keeps `0-8191,0-8191,…` from expanding
            // into millions of ids.
            if ids.len() > MAX_CPUS as usize {
                return Err(CpuListError::TooMany);
            }
        }
        Ok(Self::from_ids(ids))
    }

    /// Parses the kernel mask format: comma-separated 32-bit hex groups, most significant
    /// group first (`Cpus_allowed:\tff,ffffffff`).
    pub fn parse_mask(s: &str) -> Result<Self, CpuListError> {
        let groups: Vec<&str> = s.trim().split(',').collect();
        let mut ids = Vec::new();
        for (i, g) in groups.iter().rev().enumerate() {
            let g = g.trim();
            if g.is_empty() || g.len() > 8 {
                return Err(CpuListError::BadMask(g.to_string()));
            }
            let bits =
                u32::from_str_radix(g, 16).map_err(|_| CpuListError::BadMask(g.to_string()))?;
            let base = i as u32 * 32;
            if base >= MAX_CPUS {
                return Err(CpuListError::TooLarge(s.trim().to_string()));
            }
            for b in 0..32 {
                if bits & (1 << b) != 0 {
                    ids.push(base + b);
                }
            }
        }
        Ok(Self::exact(ids))
    }

    pub fn ids(&self) -> &[u32] {
        &self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, cpu: u32) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }

    pub fn is_superset_of(&self, other: &CpuSet) -> bool {
        other.iter().all(|c| self.contains(c))
    }

    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        CpuSet::exact(self.iter().filter(|c| other.contains(*c)).collect())
    }

    pub fn union(&self, other: &CpuSet) -> CpuSet {
        CpuSet::from_ids(self.iter().chain(other.iter()))
    }

    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        CpuSet::exact(self.iter().filter(|c| !other.contains(*c)).collect())
    }

    /// The kernel list spelling: `0-3,8,10-11`.
    pub fn to_list_string(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !out.is_empty() {
                out.push(',');
            }
            if start == end {
                out.push_str(&start.to_string());
            } else {
                out.push_str(&format!("{start}-{end}"));
            }
            i += 1;
        }
        out
    }
}

fn parse_id(s: &str) -> Result<u32, CpuListError> {
    let id: u32 = s
        .trim()
        .parse()
        .map_err(|_| CpuListError::BadId(s.trim().to_string()))?;
    if id >= MAX_CPUS {
        return Err(CpuListError::TooLarge(s.trim().to_string()));
    }
    Ok(id)
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_list_string())
    }
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<T: IntoIterator<Item = u32>>(iter: T) -> Self {
        Self::from_ids(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_round_trips_kernel_spelling() {
        let s = CpuSet::parse_list("0-3,8,10-11\n").unwrap();
        assert_eq!(s.ids(), &[0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(s.to_list_string(), "0-3,8,10-11");
        assert_eq!(CpuSet::parse_list("").unwrap().len(), 0);
        assert_eq!(CpuSet::parse_list("0,112").unwrap().ids(), &[0, 112]);
    }

    #[test]
    fn list_accepts_strides() {
        assert_eq!(CpuSet::parse_list("0-7:2").unwrap().ids(), &[0, 2, 4, 6]);
    }

    #[test]
    fn list_rejects_garbage_with_the_offending_part() {
        assert_eq!(
            CpuSet::parse_list("0-3,x").unwrap_err(),
            CpuListError::BadId("x".into())
        );
        assert_eq!(
            CpuSet::parse_list("5-2").unwrap_err(),
            CpuListError::BackwardsRange("5-2".into())
        );
        assert!(matches!(
            CpuSet::parse_list("0-4000000000"),
            Err(CpuListError::TooLarge(_))
        ));
    }

    #[test]
    fn list_size_is_capped_in_total_not_only_per_range() {
        let all = format!("0-{}", MAX_CPUS - 1);
        assert_eq!(CpuSet::parse_list(&all).unwrap().len(), MAX_CPUS as usize);
        let repeated = vec![all.as_str(); 10_000].join(",");
        assert_eq!(
            CpuSet::parse_list(&repeated).unwrap_err(),
            CpuListError::TooMany
        );
        // Expansion stops at the first range past the cap: the time stays bounded.
        let t = std::time::Instant::now();
        let _ = CpuSet::parse_list(&vec![all.as_str(); 100_000].join(","));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn mask_reads_groups_most_significant_first() {
        let s = CpuSet::parse_mask("00000001,00000003").unwrap();
        assert_eq!(s.ids(), &[0, 1, 32]);
        assert!(CpuSet::parse_mask("zz").is_err());
        assert!(CpuSet::parse_mask("123456789").is_err());
    }

    #[test]
    fn set_algebra() {
        let a = CpuSet::parse_list("0-7").unwrap();
        let b = CpuSet::parse_list("4-11").unwrap();
        assert_eq!(a.intersection(&b).to_list_string(), "4-7");
        assert_eq!(a.union(&b).to_list_string(), "0-11");
        assert_eq!(a.difference(&b).to_list_string(), "0-3");
        assert!(a.is_superset_of(&CpuSet::parse_list("1,2").unwrap()));
    }
}

//! Sets of CPU ids in the kernel's two spellings: the list form (`0-3,8,10-11`, as in
//! `cpulist` and `Cpus_allowed_list`) and the hex mask form (`ff,ffffffff`, as in
//! `Cpus_allowed`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};

/// A sorted, de-duplicated set of CPU ids. Serialized as the list of ids.
///
/// Sets of up to five CPUs are held in place, without an allocation: a host has one set
/// of SMT siblings per CPU (1–2 ids each), and a console holds those of 1,000 hosts.
/// Larger sets take a boxed slice of exactly their size. Either way a set is 24 bytes.
#[derive(Clone)]
pub struct CpuSet(Ids);

const INLINE: usize = 5;

#[derive(Clone)]
enum Ids {
    Inline { len: u8, ids: [u32; INLINE] },
    Heap(Box<[u32]>),
}

const _: () = assert!(std::mem::size_of::<CpuSet>() == 24);

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
        Self(Ids::Inline {
            len: 0,
            ids: [0; INLINE],
        })
    }

    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> Self {
        let mut v: Vec<u32> = ids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Self::from_sorted(v)
    }

    /// `v` sorted and de-duplicated.
    fn from_sorted(v: Vec<u32>) -> Self {
        if v.len() <= INLINE {
            let mut ids = [0; INLINE];
            ids[..v.len()].copy_from_slice(&v);
            Self(Ids::Inline {
                len: v.len() as u8,
                ids,
            })
        } else {
            // Exactly as large as the set: sets are held for long.
            Self(Ids::Heap(v.into_boxed_slice()))
        }
    }

    /// Parses the kernel list format. Whitespace around the value (the trailing newline of
    /// a sysfs file) is ignored; an empty string is the empty set.
    pub fn parse_list(s: &str) -> Result<Self, CpuListError> {
        let s = s.trim();
        let mut ids = Vec::new();
        if s.is_empty() {
            return Ok(Self::new());
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
        Ok(Self::from_sorted(ids))
    }

    pub fn ids(&self) -> &[u32] {
        match &self.0 {
            Ids::Inline { len, ids } => &ids[..usize::from(*len)],
            Ids::Heap(ids) => ids,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids().iter().copied()
    }

    pub fn len(&self) -> usize {
        self.ids().len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids().is_empty()
    }

    pub fn contains(&self, cpu: u32) -> bool {
        self.ids().binary_search(&cpu).is_ok()
    }

    pub fn is_superset_of(&self, other: &CpuSet) -> bool {
        other.iter().all(|c| self.contains(c))
    }

    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        CpuSet::from_sorted(self.iter().filter(|c| other.contains(*c)).collect())
    }

    pub fn union(&self, other: &CpuSet) -> CpuSet {
        CpuSet::from_ids(self.iter().chain(other.iter()))
    }

    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        CpuSet::from_sorted(self.iter().filter(|c| !other.contains(*c)).collect())
    }

    /// The kernel list spelling: `0-3,8,10-11`.
    pub fn to_list_string(&self) -> String {
        let ids = self.ids();
        let mut out = String::new();
        let mut i = 0;
        while i < ids.len() {
            let start = ids[i];
            let mut end = start;
            while i + 1 < ids.len() && ids[i + 1] == end + 1 {
                i += 1;
                end = ids[i];
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

impl Default for CpuSet {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for CpuSet {
    fn eq(&self, other: &Self) -> bool {
        self.ids() == other.ids()
    }
}

impl Eq for CpuSet {}

impl Hash for CpuSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ids().hash(state);
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CpuSet").field(&self.ids()).finish()
    }
}

impl Serialize for CpuSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.ids().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CpuSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Sorted on the way in: lookups binary-search.
        Vec::<u32>::deserialize(d).map(Self::from_ids)
    }
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
    fn small_and_large_sets_alike() {
        for n in [0, 1, 2, INLINE as u32, INLINE as u32 + 1, 200] {
            let s = CpuSet::from_ids((0..n).rev().map(|i| i * 2));
            assert_eq!(s.len(), n as usize);
            assert!(s.ids().windows(2).all(|w| w[0] < w[1]));
            assert_eq!(s.contains(2), n > 1);
            assert_eq!(CpuSet::parse_list(&s.to_list_string()).unwrap(), s);
            // The JSON shape of a list of ids, as when the set was a Vec.
            let json = serde_json::to_string(&s).unwrap();
            let ids: Vec<u32> = serde_json::from_str(&json).unwrap();
            assert_eq!(ids, s.ids());
            assert_eq!(serde_json::from_str::<CpuSet>(&json).unwrap(), s);
        }
        assert_eq!(format!("{:?}", CpuSet::from_ids([3, 1])), "CpuSet([1, 3])");
        assert_eq!(
            serde_json::from_str::<CpuSet>("[7,3,3]").unwrap().ids(),
            &[3, 7]
        );
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

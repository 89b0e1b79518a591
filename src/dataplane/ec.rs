//! Erasure coding behind a small trait. The implementation is ISA-L (Intel's storage
//! acceleration library, built from source by the `erasure-isa-l` crate), chosen by
//! measurement: `cargo bench --bench ec` runs it beside the Rust crates, and none of them
//! comes near 0.9× its speed (README, "Data-plane drives"). Schemes follow WEKA's rules: k data
//! chunks in 3..16, m parity in 2..4, k > m. The Cauchy matrix makes every choice of k
//! surviving chunks invertible.

use erasure_isa_l::erasure::ErasureCode;
use std::num::NonZeroUsize;

/// A k+m scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    pub k: usize,
    pub m: usize,
}

impl Scheme {
    pub fn new(k: usize, m: usize) -> Result<Scheme, EcError> {
        if !(3..=16).contains(&k) || !(2..=4).contains(&m) || k <= m {
            return Err(EcError::Scheme(format!(
                "{k}+{m}: data chunks must be 3..16, parity 2..4, and more data than parity"
            )));
        }
        Ok(Scheme { k, m })
    }

    /// A node's share of a cluster (`1+0`): one chunk per stripe, no parity. The cluster's
    /// stripes across nodes protect it; the node only stores and checksums.
    pub const PLAIN: Scheme = Scheme { k: 1, m: 0 };

    /// As `new`, and `1+0` (`PLAIN`) for a store that holds a node's share of a cluster.
    pub fn for_store(k: usize, m: usize) -> Result<Scheme, EcError> {
        if (k, m) == (1, 0) {
            return Ok(Scheme::PLAIN);
        }
        Scheme::new(k, m)
    }

    pub fn chunks(&self) -> usize {
        self.k + self.m
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcError {
    #[error("erasure scheme {0}")]
    Scheme(String),
    #[error("{0}")]
    Shape(String),
    #[error("{lost} chunks lost, more than the {m} parity chunks can rebuild")]
    TooManyLost { lost: usize, m: usize },
    #[error("erasure coding failed: {0}")]
    Codec(String),
}

/// What the data plane needs of a codec.
pub trait Codec: Send + Sync {
    fn scheme(&self) -> Scheme;
    /// Computes the m parity chunks of k data chunks, all of one length.
    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), EcError>;
    /// Rebuilds, in place, the chunks of a stripe (k data then m parity, all of one
    /// length) whose `present` flag is false, from the others.
    fn reconstruct_slices(&self, chunks: &mut [&mut [u8]], present: &[bool])
    -> Result<(), EcError>;
}

/// ISA-L, Cauchy matrix.
pub struct Isal {
    scheme: Scheme,
    ec: ErasureCode,
}

impl Isal {
    pub fn new(scheme: Scheme) -> Result<Isal, EcError> {
        let nz = |n: usize| NonZeroUsize::new(n).expect("a valid scheme is not empty");
        let ec = ErasureCode::with_cauchy(nz(scheme.k), nz(scheme.m))
            .map_err(|e| EcError::Codec(format!("{e:?}")))?;
        Ok(Isal { scheme, ec })
    }
}

fn same_len(lens: impl Iterator<Item = usize>) -> Result<usize, EcError> {
    let mut it = lens.peekable();
    let first = *it
        .peek()
        .ok_or_else(|| EcError::Shape("no chunks".into()))?;
    if it.any(|l| l != first) {
        return Err(EcError::Shape("chunks of different lengths".into()));
    }
    Ok(first)
}

impl Codec for Isal {
    fn scheme(&self) -> Scheme {
        self.scheme
    }

    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), EcError> {
        let Scheme { k, m } = self.scheme;
        if data.len() != k || parity.len() != m {
            return Err(EcError::Shape(format!(
                "{} data and {} parity chunks given for {k}+{m}",
                data.len(),
                parity.len()
            )));
        }
        same_len(
            data.iter()
                .map(|d| d.len())
                .chain(parity.iter().map(|p| p.len())),
        )?;
        self.ec
            .encode(data, parity)
            .map_err(|e| EcError::Codec(format!("{e:?}")))
    }

    fn reconstruct_slices(
        &self,
        chunks: &mut [&mut [u8]],
        present: &[bool],
    ) -> Result<(), EcError> {
        let Scheme { k, m } = self.scheme;
        if chunks.len() != k + m || present.len() != k + m {
            return Err(EcError::Shape(format!(
                "{} chunks and {} flags given for {k}+{m}",
                chunks.len(),
                present.len()
            )));
        }
        same_len(chunks.iter().map(|c| c.len()))?;
        let lost: Vec<usize> = (0..k + m).filter(|&i| !present[i]).collect();
        if lost.is_empty() {
            return Ok(());
        }
        if lost.len() > m {
            return Err(EcError::TooManyLost {
                lost: lost.len(),
                m,
            });
        }
        let (data, parity) = chunks.split_at_mut(k);
        self.ec
            .decode(data, parity, lost)
            .map_err(|e| EcError::Codec(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `reconstruct_slices` on owned chunks.
    fn reconstruct(c: &Isal, chunks: &mut [Vec<u8>], present: &[bool]) -> Result<(), EcError> {
        let mut s: Vec<&mut [u8]> = chunks.iter_mut().map(Vec::as_mut_slice).collect();
        c.reconstruct_slices(&mut s, present)
    }

    /// Deterministic bytes (xorshift), so a failure reproduces.
    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    fn stripe(c: &Isal, len: usize, seed: u64) -> Vec<Vec<u8>> {
        let Scheme { k, m } = c.scheme();
        let data: Vec<Vec<u8>> = (0..k).map(|i| bytes(seed + i as u64, len)).collect();
        let mut parity = vec![vec![0u8; len]; m];
        let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut p: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        c.encode(&d, &mut p).unwrap();
        data.into_iter().chain(parity).collect()
    }

    /// Every subset of `lost` chunk positions, for small k+m.
    fn subsets(n: usize, lost: usize) -> Vec<Vec<usize>> {
        (0u32..1 << n)
            .filter(|b| b.count_ones() as usize == lost)
            .map(|b| (0..n).filter(|i| b & (1 << i) != 0).collect())
            .collect()
    }

    #[test]
    fn any_k_of_k_plus_m_chunks_rebuild_the_stripe() {
        // Every loss pattern up to m for the small schemes; random ones for 16+4.
        for (k, m) in [(3, 2), (4, 2), (6, 3), (8, 4)] {
            let c = Isal::new(Scheme::new(k, m).unwrap()).unwrap();
            let full = stripe(&c, 4096, (k * 10 + m) as u64);
            for lost in 1..=m {
                for set in subsets(k + m, lost) {
                    let mut chunks = full.clone();
                    let mut present = vec![true; k + m];
                    for &i in &set {
                        chunks[i].fill(0xEE);
                        present[i] = false;
                    }
                    reconstruct(&c, &mut chunks, &present).unwrap();
                    assert_eq!(chunks, full, "{k}+{m} losing {set:?}");
                }
            }
        }
        let c = Isal::new(Scheme::new(16, 4).unwrap()).unwrap();
        let full = stripe(&c, 65536, 1604);
        let mut s = 0x1234_5678u64;
        for _ in 0..200 {
            let mut chunks = full.clone();
            let mut present = vec![true; 20];
            let mut lost = 0;
            while lost < 4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let i = (s % 20) as usize;
                if present[i] {
                    present[i] = false;
                    chunks[i].fill(0);
                    lost += 1;
                }
            }
            reconstruct(&c, &mut chunks, &present).unwrap();
            assert_eq!(chunks, full, "16+4 losing {present:?}");
        }
    }

    #[test]
    fn more_losses_than_parity_and_bad_shapes_are_errors_not_garbage() {
        let c = Isal::new(Scheme::new(4, 2).unwrap()).unwrap();
        let mut chunks = stripe(&c, 1024, 9);
        let present = [false, false, false, true, true, true];
        assert_eq!(
            reconstruct(&c, &mut chunks, &present),
            Err(EcError::TooManyLost { lost: 3, m: 2 })
        );
        chunks[5].truncate(10);
        assert!(matches!(
            reconstruct(&c, &mut chunks, &[true; 6]),
            Err(EcError::Shape(_))
        ));
        let d = [&[0u8; 8][..]; 3];
        let mut p0 = [0u8; 8];
        let mut p1 = [0u8; 8];
        assert!(c.encode(&d, &mut [&mut p0[..], &mut p1[..]]).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any scheme WEKA allows, any chunk length, any set of at most m lost chunks:
        /// the k survivors rebuild the stripe exactly.
        #[test]
        fn any_k_survivors_rebuild_any_scheme(
            k in 3usize..=16,
            m in 2usize..=4,
            words in 1usize..64,
            seed in proptest::prelude::any::<u64>(),
            lost_bits in proptest::prelude::any::<u32>(),
        ) {
            proptest::prop_assume!(k > m);
            let c = Isal::new(Scheme::new(k, m).unwrap()).unwrap();
            let full = stripe(&c, words * 64, seed);
            let mut present = vec![true; k + m];
            let mut lost = 0;
            for (i, p) in present.iter_mut().enumerate() {
                if lost < m && lost_bits & (1 << i) != 0 {
                    *p = false;
                    lost += 1;
                }
            }
            let mut chunks = full.clone();
            for (i, c) in chunks.iter_mut().enumerate() {
                if !present[i] {
                    c.fill(0x5A);
                }
            }
            reconstruct(&c, &mut chunks, &present).unwrap();
            proptest::prop_assert_eq!(chunks, full);
        }
    }

    #[test]
    fn only_wekas_schemes_are_accepted() {
        for (k, m) in [(16, 4), (3, 2), (4, 3), (16, 2)] {
            Scheme::new(k, m).unwrap();
        }
        for (k, m) in [(2, 2), (17, 4), (4, 1), (4, 5), (3, 3), (4, 4)] {
            assert!(Scheme::new(k, m).is_err(), "{k}+{m}");
        }
    }
}

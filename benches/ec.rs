//! The data plane's erasure codec (`dataplane::ec`, through its trait) against ISA-L called
//! directly (the `erasure-isa-l` crate), in the same run: 16+4 and 4+2, 64 KiB and 1 MiB
//! chunks, encode and reconstruct of m lost data chunks. Throughput is data bytes
//! (k × chunk) per second, on one core. Target: the codec ≥ 0.9× ISA-L.
//!
//!     cargo bench --bench ec

use axon::dataplane::ec::{Codec, Isal, Scheme};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use erasure_isa_l::erasure::ErasureCode;
use std::hint::black_box;
use std::num::NonZeroUsize;

fn chunk(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (seed * 7)) as u8)
        .collect()
}

fn bench(c: &mut Criterion) {
    for (k, m) in [(16usize, 4usize), (4, 2)] {
        for len in [64 << 10, 1 << 20] {
            let codec = Isal::new(Scheme::new(k, m).unwrap()).unwrap();
            let raw = ErasureCode::with_cauchy(
                NonZeroUsize::new(k).unwrap(),
                NonZeroUsize::new(m).unwrap(),
            )
            .unwrap();
            let data: Vec<Vec<u8>> = (0..k).map(|i| chunk(i, len)).collect();
            let mut parity = vec![vec![0u8; len]; m];
            let mut g = c.benchmark_group(format!("ec_{k}+{m}_{}KiB", len >> 10));
            g.throughput(Throughput::Bytes((k * len) as u64));
            g.sample_size(20);
            g.bench_function("encode/axon", |b| {
                b.iter(|| {
                    let d: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                    let mut p: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
                    codec.encode(black_box(&d), &mut p).unwrap();
                })
            });
            g.bench_function("encode/isa-l", |b| {
                b.iter(|| raw.encode(black_box(&data), &mut parity).unwrap())
            });
            let full: Vec<Vec<u8>> = data.iter().cloned().chain(parity.iter().cloned()).collect();
            let mut present = vec![true; k + m];
            present[..m].fill(false);
            let mut work = full.clone();
            g.bench_function("reconstruct/axon", |b| {
                b.iter(|| codec.reconstruct(black_box(&mut work), &present).unwrap())
            });
            let (mut d, mut p): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
                (full[..k].to_vec(), full[k..].to_vec());
            g.bench_function("reconstruct/isa-l", |b| {
                b.iter(|| {
                    raw.decode(black_box(&mut d), &mut p, (0..m).collect())
                        .unwrap()
                })
            });
            g.finish();
            assert_eq!(work, full, "the codec rebuilt the stripe");
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

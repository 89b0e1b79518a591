//! The data plane's erasure codec (`dataplane::ec`, through its trait) against ISA-L called
//! directly (the `erasure-isa-l` crate), and the Rust crates it was chosen over
//! (reed-solomon-erasure with `simd-accel`, reed-solomon-simd), in the same run: 16+4 and
//! 4+2, 64 KiB and 1 MiB chunks, encode and reconstruct of m lost data chunks. Throughput
//! is data bytes (k × chunk) per second, on one core. Target: the codec ≥ 0.9× ISA-L.
//!
//!     cargo bench --bench ec

use axon::dataplane::ec::{Codec, Isal, Scheme};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use erasure_isa_l::erasure::ErasureCode;
use reed_solomon_erasure::galois_8::ReedSolomon;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
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
            // reed-solomon-erasure: encode, and rebuild the first m data chunks in place.
            let rse = ReedSolomon::new(k, m).unwrap();
            g.bench_function("encode/reed-solomon-erasure", |b| {
                b.iter(|| rse.encode_sep(black_box(&data), &mut parity).unwrap())
            });
            // Each crate rebuilds from its own parity (their matrices differ from ISA-L's).
            let rse_full: Vec<Vec<u8>> = data.iter().cloned().chain(parity.clone()).collect();
            let mut rse_work = rse_full.clone();
            g.bench_function("reconstruct/reed-solomon-erasure", |b| {
                b.iter(|| {
                    let mut shards: Vec<(&mut [u8], bool)> = rse_work
                        .iter_mut()
                        .enumerate()
                        .map(|(i, c)| (c.as_mut_slice(), i >= m))
                        .collect();
                    rse.reconstruct_data(black_box(&mut shards)).unwrap();
                })
            });
            // reed-solomon-simd: its API copies shards in and hands restored ones back.
            let mut enc = ReedSolomonEncoder::new(k, m, len).unwrap();
            g.bench_function("encode/reed-solomon-simd", |b| {
                b.iter(|| {
                    enc.reset(k, m, len).unwrap();
                    for d in black_box(&data) {
                        enc.add_original_shard(d).unwrap();
                    }
                    black_box(enc.encode().unwrap().recovery(0).map(<[u8]>::len));
                })
            });
            enc.reset(k, m, len).unwrap();
            for d in &data {
                enc.add_original_shard(d).unwrap();
            }
            let simd_parity: Vec<Vec<u8>> = enc
                .encode()
                .unwrap()
                .recovery_iter()
                .map(<[u8]>::to_vec)
                .collect();
            let mut dec = ReedSolomonDecoder::new(k, m, len).unwrap();
            let mut simd_ok = true;
            g.bench_function("reconstruct/reed-solomon-simd", |b| {
                b.iter(|| {
                    dec.reset(k, m, len).unwrap();
                    for (i, c) in data.iter().enumerate().skip(m) {
                        dec.add_original_shard(i, black_box(c)).unwrap();
                    }
                    for (j, p) in simd_parity.iter().enumerate() {
                        dec.add_recovery_shard(j, p).unwrap();
                    }
                    let r = dec.decode().unwrap();
                    for (i, c) in r.restored_original_iter() {
                        simd_ok &= c == &data[i][..];
                    }
                })
            });
            g.finish();
            assert_eq!(work, full, "the codec rebuilt the stripe");
            assert_eq!(
                rse_work, rse_full,
                "reed-solomon-erasure rebuilt the stripe"
            );
            assert!(simd_ok, "reed-solomon-simd rebuilt the stripe");
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The data plane's erasure codec (`dataplane::ec`, through its trait) against ISA-L called
//! directly (the `erasure-isa-l` crate), and the Rust crates it was chosen over
//! (reed-solomon-erasure with `simd-accel`, reed-solomon-simd), in the same run: 16+4 and
//! 4+2, 64 KiB and 1 MiB chunks, encode and reconstruct of m lost data chunks. Throughput
//! is data bytes (k × chunk) per second, on one core. Target: the codec ≥ 0.9× ISA-L.
//!
//!     cargo bench --bench ec

use axon::dataplane::drive::AlignedBuf;
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
            // Parity up front, so a filtered run (reconstruct only) rebuilds real stripes.
            raw.encode(&data, &mut parity).unwrap();
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
            // Both on 4 KiB-aligned buffers, as the engine holds chunks (O_DIRECT): at these
            // speeds the stripe sits in cache, and where a buffer starts shows.
            let aligned = |src: &[Vec<u8>]| -> Vec<AlignedBuf> {
                src.iter()
                    .map(|c| {
                        let mut b = AlignedBuf::zeroed(c.len());
                        b.as_mut_slice().copy_from_slice(c);
                        b
                    })
                    .collect()
            };
            let mut work = aligned(&full);
            g.bench_function("reconstruct/axon", |b| {
                b.iter(|| {
                    let mut s: Vec<&mut [u8]> =
                        work.iter_mut().map(AlignedBuf::as_mut_slice).collect();
                    codec
                        .reconstruct_slices(black_box(&mut s), &present)
                        .unwrap()
                })
            });
            let mut raw_work = aligned(&full);
            g.bench_function("reconstruct/isa-l", |b| {
                b.iter(|| {
                    let mut s: Vec<&mut [u8]> =
                        raw_work.iter_mut().map(AlignedBuf::as_mut_slice).collect();
                    let (d, p) = s.split_at_mut(k);
                    raw.decode(black_box(d), p, (0..m).collect()).unwrap()
                })
            });
            // The timed calls rebuilt chunks that were already right; prove they rebuild
            // lost ones.
            for set in [&mut work, &mut raw_work] {
                for c in set.iter_mut().take(m) {
                    c.as_mut_slice().fill(0xEE);
                }
            }
            {
                let mut s: Vec<&mut [u8]> = work.iter_mut().map(AlignedBuf::as_mut_slice).collect();
                codec.reconstruct_slices(&mut s, &present).unwrap();
                let mut s: Vec<&mut [u8]> =
                    raw_work.iter_mut().map(AlignedBuf::as_mut_slice).collect();
                let (d, p) = s.split_at_mut(k);
                raw.decode(d, p, (0..m).collect()).unwrap();
            }
            for (set, who) in [(&work, "the codec"), (&raw_work, "ISA-L")] {
                assert!(
                    set.iter().zip(&full).all(|(a, b)| a.as_slice() == &b[..]),
                    "{who} did not rebuild the stripe"
                );
            }
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
            assert!(
                rse_work == rse_full,
                "reed-solomon-erasure did not rebuild the stripe"
            );
            assert!(simd_ok, "reed-solomon-simd rebuilt the stripe");
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

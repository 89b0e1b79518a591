//! Where a stripe's chunks go (DATAPLANE.md, "Placement"): weighted rendezvous hashing.
//! For stripe s every eligible failure domain scores `-w / ln(u)`, with `u` a uniform hash
//! of (s, domain) in (0, 1) and `w` its free capacity; the k+m highest scores hold the
//! stripe. It is deterministic (any member computes the same answer), spreads stripes in
//! proportion to free capacity, and when a domain leaves only the stripes it held move.
//! The chosen places are recorded, so rebuild and phase-out move chunks without rehashing.
//!
//! Capacity follows WEKA's virtual hot spares: the capacity of the `spares` largest failure
//! domains is held back, so the cluster can rebuild to full protection after losing them.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// A failure domain that may take a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Domain {
    pub node: u64,
    /// Free bytes: the weight.
    pub free: u64,
}

/// The domains a frontend may place chunks on: the members of `config` with an ACTIVE
/// drive that `usable` admits, weighted by the free bytes `free` last reported. A member
/// not heard from yet weighs as one byte free: last choice, not none.
pub fn writable(
    config: &crate::model::cluster::ClusterConfig,
    usable: impl Fn(u64) -> bool,
    free: impl Fn(u64) -> Option<u64>,
) -> Vec<Domain> {
    config
        .members
        .keys()
        .copied()
        .filter(|&id| usable(id))
        .filter(|&id| {
            config
                .drives
                .values()
                .any(|d| d.node == id && d.state == "ACTIVE")
        })
        .map(|node| Domain {
            node,
            free: free(node).unwrap_or(1).max(1),
        })
        .collect()
}

/// The hash of (stripe, node) as a float in (0, 1).
fn unit(stripe: u64, node: u64) -> f64 {
    let h = xxh3_64_with_seed(&stripe.to_le_bytes(), node);
    // 53 random bits, never 0 or 1.
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// Picks `n` distinct domains for `stripe` among those with free space, none in `exclude`,
/// best first.
pub fn place(
    stripe: u64,
    domains: &[Domain],
    n: usize,
    exclude: &[u64],
) -> Result<Vec<u64>, String> {
    let mut scored: Vec<(f64, u64)> = domains
        .iter()
        .filter(|d| d.free > 0 && !exclude.contains(&d.node))
        .map(|d| (-(d.free as f64) / unit(stripe, d.node).ln(), d.node))
        .collect();
    if scored.len() < n {
        return Err(format!(
            "stripe {stripe} needs {n} failure domains with free space, {} have some{}",
            scored.len(),
            if exclude.is_empty() {
                String::new()
            } else {
                format!(" ({} excluded)", exclude.len())
            }
        ));
    }
    // Highest score first; the node id breaks exact ties so the order is total.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(scored.into_iter().take(n).map(|(_, node)| node).collect())
}

/// Bytes of objects the cluster can hold: raw capacity less the `spares` largest failure
/// domains (held back for rebuild), times k/(k+m).
pub fn usable_capacity(domain_capacity: &[u64], k: usize, m: usize, spares: usize) -> u64 {
    let mut c = domain_capacity.to_vec();
    c.sort_unstable_by(|a, b| b.cmp(a));
    let held: u64 = c.iter().take(spares).sum();
    let raw: u64 = c.iter().sum();
    ((raw - held) as u128 * k as u128 / (k + m) as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equal(n: u64) -> Vec<Domain> {
        (1..=n)
            .map(|node| Domain {
                node,
                free: 1 << 40,
            })
            .collect()
    }

    #[test]
    fn a_stripe_gets_distinct_domains_the_same_everywhere() {
        let d = equal(22);
        for s in 0..1000 {
            let p = place(s, &d, 20, &[]).unwrap();
            let mut q = p.clone();
            q.sort_unstable();
            q.dedup();
            assert_eq!(q.len(), 20, "stripe {s}: {p:?}");
            assert_eq!(p, place(s, &d, 20, &[]).unwrap());
        }
        let e = place(1, &d[..5], 6, &[2]).unwrap_err();
        assert_eq!(
            e,
            "stripe 1 needs 6 failure domains with free space, 4 have some (1 excluded)"
        );
    }

    #[test]
    fn chunks_spread_evenly_and_in_proportion_to_free_space() {
        let d = equal(22);
        let mut count = [0u32; 23];
        for s in 0..20_000 {
            for n in place(s, &d, 6, &[]).unwrap() {
                count[n as usize] += 1;
            }
        }
        let mean = 20_000.0 * 6.0 / 22.0;
        for (n, c) in count.iter().enumerate().skip(1) {
            let dev = (f64::from(*c) - mean).abs() / mean;
            assert!(dev < 0.05, "node {n}: {c} chunks, mean {mean:.0}");
        }
        // Node 1 with twice the free space takes about twice the chunks (one per stripe
        // at most, so pick 1 of 10 to stay clear of that cap).
        let mut d = equal(10);
        d[0].free *= 2;
        let mut first = 0;
        let mut other = 0;
        for s in 0..50_000 {
            match place(s, &d, 1, &[]).unwrap()[0] {
                1 => first += 1,
                2 => other += 1,
                _ => {}
            }
        }
        let ratio = f64::from(first) / f64::from(other);
        assert!((1.8..2.2).contains(&ratio), "ratio {ratio:.2}");
    }

    #[test]
    fn a_domain_leaving_moves_only_the_stripes_it_held() {
        let d = equal(22);
        let without: Vec<Domain> = d.iter().copied().filter(|x| x.node != 7).collect();
        for s in 0..5000 {
            let before = place(s, &d, 20, &[]).unwrap();
            let after = place(s, &without, 20, &[]).unwrap();
            if !before.contains(&7) {
                assert_eq!(before, after, "stripe {s} moved without cause");
            } else {
                let kept = before.iter().filter(|n| after.contains(n)).count();
                assert_eq!(kept, 19, "stripe {s}: more than the lost chunk moved");
            }
        }
    }

    #[test]
    fn hot_spares_hold_back_the_largest_domains() {
        // 22 domains of 10 TB, 16+4, 2 spares: (220 - 20) × 16/20 = 160 TB.
        let t = 1_000_000_000_000u64;
        assert_eq!(usable_capacity(&[10 * t; 22], 16, 4, 2), 160 * t);
        // One larger domain is what a spare must be able to replace.
        let mut c = vec![10 * t; 21];
        c.push(30 * t);
        assert_eq!(usable_capacity(&c, 16, 4, 1), 168 * t);
    }
}

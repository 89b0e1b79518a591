//! Host lists that would expand to absurd numbers of names (a typo, or a hostile
//! `ProbePorts.peers`) are refused from their ranges alone: before a name is allocated, in
//! well under a second, with an error that names the list and the limit. A counting
//! allocator measures what one expansion allocates on its own thread.

use axon::model::hostlist::{self, HostlistError, MAX_HOSTS, MAX_LIST_LEN};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The system allocator, plus a per-thread tally of live and peak bytes, so tests running
/// in parallel on other threads do not disturb a measurement.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get() + delta;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the tally only reads
// the layout's size.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`, returning its result, the most bytes it held at once beyond what was live
/// before, and how long it took.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let start = Instant::now();
    let v = f();
    let took = start.elapsed();
    let peak = PEAK.with(Cell::get) - base;
    (v, peak.max(0) as usize, took)
}

#[test]
fn hostlist_bomb_is_refused_before_allocating() {
    let many_ranges = |bytes: usize| {
        let mut s = String::from("a[0-99999");
        while s.len() < bytes {
            s.push_str(",0-99999");
        }
        s.push(']');
        s
    };
    let bombs = [
        // 2.4 KB: 20 million names in one bracket (1.65 GB before the fix).
        many_ranges(2_400),
        // 8 KB: aborted the process (SIGABRT) before the fix.
        many_ranges(8 * 1024),
        // Products of brackets: 10^25 names.
        "a[0-99999]b[0-99999]c[0-99999]d[0-99999]e[0-99999]".to_string(),
        // 1,000 comma-separated groups of 100,000 names each (22 s of CPU before the fix).
        vec!["a[0-99999]"; 1_000].join(","),
    ];
    for bomb in &bombs {
        let (r, peak, took) = measured(|| hostlist::expand(bomb));
        let e = r.expect_err("a bomb is refused");
        assert!(matches!(e, HostlistError::TooMany { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("more than the limit of 100000") && msg.contains(&bomb[..10]),
            "the error names the list and the limit: {msg}"
        );
        assert!(msg.len() < 300, "the error quotes the list briefly: {msg}");
        assert!(
            peak < 1024 * 1024,
            "expanding `{}…` held {peak} bytes at once: counted only after allocating",
            &bomb[..20]
        );
        assert!(
            took < Duration::from_millis(500),
            "refusing `{}…` took {took:?}",
            &bomb[..20]
        );
    }

    // Past the input cap: refused from its length, without reading the ranges.
    let huge = "a[0-1],".repeat(MAX_LIST_LEN / 6);
    let (r, peak, _) = measured(|| hostlist::expand(&huge));
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.contains(&format!("more than the limit of {MAX_LIST_LEN} bytes")),
        "{msg}"
    );
    assert!(peak < 64 * 1024, "{peak} bytes");

    // At the limit: expands, and holds about what its names need.
    let (r, peak, took) = measured(|| hostlist::expand("n[000001-100000]"));
    assert_eq!(r.unwrap().len(), MAX_HOSTS);
    assert!(peak < 16 * 1024 * 1024, "{peak} bytes for 100,000 names");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

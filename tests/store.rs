//! The storage engine on one node, on real files: objects round-trip through k+m stripes;
//! every fault the part-6 issue names (a flipped byte, a torn chunk, a drive removed or
//! truncated, a full filesystem, a wrong drive in a slot, an index that disagrees with a
//! slot) is detected, named, and repaired where parity allows, with nothing lost up to m
//! failed drives.

use axon::dataplane::drive::{self, BLOCK, ChunkHeader, FormatOptions};
use axon::dataplane::ec::Scheme;
use axon::dataplane::store::{Store, StoreError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

const CHUNK: u32 = 16 << 10;

/// Deterministic bytes (splitmix64), so a failure reproduces.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

struct Fixture {
    dir: tempfile::TempDir,
    drives: Vec<PathBuf>,
    cluster: Uuid,
}

impl Fixture {
    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn open(&self) -> Store {
        Store::open(&self.store_dir()).unwrap()
    }
}

/// A store of `k`+`m` on `n` sparse file drives of `size` bytes in one temp dir.
/// The store's index in `base/store`, the drives in `drives_in`.
fn fixture_in(
    base: &Path,
    drives_in: &Path,
    k: usize,
    m: usize,
    n: usize,
    size: u64,
) -> (Vec<PathBuf>, Uuid) {
    let cluster = Uuid::new_v4();
    let mut store = Store::create(
        &base.join("store"),
        cluster,
        Scheme::new(k, m).unwrap(),
        CHUNK,
    )
    .unwrap();
    let mut drives = Vec::new();
    for i in 0..n {
        let p = drives_in.join(format!("drive{i}"));
        drive::format(
            &p,
            &FormatOptions {
                size: Some(size),
                chunk_size: CHUNK,
                cluster,
                force: false,
            },
        )
        .unwrap();
        store.add_drive(&p, false).unwrap();
        drives.push(p);
    }
    (drives, cluster)
}

fn fixture(k: usize, m: usize, n: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (drives, cluster) = fixture_in(dir.path(), dir.path(), k, m, n, 8 << 20);
    Fixture {
        dir,
        drives,
        cluster,
    }
}

/// Where chunk `index` of `stripe` sits: (drive file, slot), found by reading headers.
fn find_chunk(drives: &[PathBuf], stripe: u64, index: u16) -> (PathBuf, u64) {
    for p in drives {
        let Ok(mut f) = std::fs::File::open(p) else {
            continue;
        };
        let slots = drive::slots_for(f.metadata().unwrap().len(), CHUNK);
        let mut h = vec![0u8; BLOCK as usize];
        for slot in 0..slots {
            f.seek(SeekFrom::Start(drive::slot_offset(CHUNK, slot)))
                .unwrap();
            f.read_exact(&mut h).unwrap();
            if let Ok(Some(c)) = ChunkHeader::decode(&h)
                && c.stripe == stripe
                && c.index == index
            {
                return (p.clone(), slot);
            }
        }
    }
    panic!("no chunk {index} of stripe {stripe} on any drive");
}

fn poke(path: &Path, at: u64, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

fn peek(path: &Path, at: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).unwrap();
    b
}

fn used_slots(s: &Store) -> u64 {
    s.status().unwrap().drives.iter().map(|d| d.used).sum()
}

#[test]
fn objects_of_every_shape_round_trip_and_deleting_frees_their_slots() {
    let fx = fixture(4, 2, 7);
    let mut s = fx.open();
    let stripe = 4 * CHUNK as usize;
    let sizes = [
        0,
        1,
        4095,
        4096,
        4097,
        stripe - 1,
        stripe,
        stripe + 1,
        3 * stripe + 12345,
    ];
    for (i, &n) in sizes.iter().enumerate() {
        let r = s.put(&format!("obj{i}"), &bytes(i as u64, n)).unwrap();
        assert_eq!(r.bytes, n as u64);
        assert_eq!(r.stripes, n.div_ceil(stripe) as u64, "size {n}");
    }
    // Overwrite one, and check everything through a reopen.
    s.put("obj3", &bytes(99, 50_000)).unwrap();
    drop(s);
    let mut s = fx.open();
    assert_eq!(s.recovery().orphans_freed, 0);
    assert!(s.recovery().mismatches.is_empty());
    for (i, &n) in sizes.iter().enumerate() {
        let want = if i == 3 {
            bytes(99, 50_000)
        } else {
            bytes(i as u64, n)
        };
        assert_eq!(s.get(&format!("obj{i}")).unwrap(), want, "object {i}");
    }
    let st = s.status().unwrap();
    assert_eq!(st.objects, sizes.len() as u64);
    assert_eq!(st.protection, "OK");
    // Every stripe's chunks on distinct drives, and the slots counted are the stripes'.
    assert_eq!(used_slots(&s), st.stripes * 6);
    for i in 0..sizes.len() {
        s.delete(&format!("obj{i}")).unwrap();
    }
    assert_eq!(used_slots(&s), 0, "deleting leaked slots");
    assert!(matches!(s.get("obj1"), Err(StoreError::NotFound(_))));
    drop(s);
    let s = fx.open();
    assert_eq!(
        s.recovery().orphans_freed,
        0,
        "a delete left headers behind"
    );
    assert_eq!(used_slots(&s), 0);
}

#[test]
fn a_flipped_byte_or_a_torn_chunk_is_read_around_named_and_repaired_by_the_scrubber() {
    let fx = fixture(4, 2, 6);
    let mut s = fx.open();
    let data = bytes(7, 4 * CHUNK as usize);
    s.put("a", &data).unwrap();
    drop(s);
    // A flipped byte in data chunk 1, and a torn data chunk 2 (header intact, second half
    // of the payload never written).
    let (p1, s1) = find_chunk(&fx.drives, 1, 1);
    let at1 = drive::slot_offset(CHUNK, s1) + BLOCK + 100;
    let b = peek(&p1, at1, 1)[0];
    poke(&p1, at1, &[b ^ 0x20]);
    let (p2, s2) = find_chunk(&fx.drives, 1, 2);
    poke(
        &p2,
        drive::slot_offset(CHUNK, s2) + BLOCK + u64::from(CHUNK) / 2,
        &vec![0u8; CHUNK as usize / 2],
    );
    let mut s = fx.open();
    let mut out = Vec::new();
    let r = s.get_to("a", &mut out).unwrap();
    assert_eq!(out, data, "read did not rebuild from parity");
    assert_eq!(r.chunks_rebuilt, 2);
    let all = r.problems.join("\n");
    assert!(
        all.contains(&format!(
            "{} slot {s1}: payload checksum mismatch",
            p1.display()
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!("{} slot {s2}", p2.display())),
        "{all}"
    );
    let st = s.status().unwrap();
    assert_eq!(st.protection, "UNPROTECTED", "2 of m=2 lost: {st:?}");
    assert_eq!(st.stripes_by_lost[2], 1);
    // The scrubber finds both and rewrites them in place.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stats = s.scrub(None, &stop, &mut |_, _, _| {}).unwrap();
    assert_eq!((stats.found, stats.repaired, stats.unrepairable), (2, 2, 0));
    assert_eq!(s.status().unwrap().protection, "OK");
    drop(s);
    let mut s = fx.open();
    let r = s.get_to("a", &mut Vec::new()).unwrap();
    assert_eq!(r.chunks_rebuilt, 0, "repair did not reach the disk");
    let stats = s.scrub(None, &stop, &mut |_, _, _| {}).unwrap();
    assert_eq!(stats.found, 0);
    assert_eq!(s.get("a").unwrap(), data);
}

#[test]
fn nothing_is_lost_with_m_drives_removed_and_more_is_a_clear_error() {
    let fx = fixture(4, 2, 6);
    let mut s = fx.open();
    let objs: Vec<Vec<u8>> = (0..6)
        .map(|i| bytes(100 + i, 70_000 + i as usize * 9_000))
        .collect();
    for (i, o) in objs.iter().enumerate() {
        s.put(&format!("o{i}"), o).unwrap();
    }
    drop(s);
    std::fs::remove_file(&fx.drives[0]).unwrap();
    // Truncated: shorter than its superblock says.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&fx.drives[3])
        .unwrap();
    f.set_len(2 << 20).unwrap();
    drop(f);
    let mut s = fx.open();
    let rec = s.recovery().unavailable.join("\n");
    assert!(rec.contains(&fx.drives[0].display().to_string()), "{rec}");
    assert!(rec.contains("truncated"), "{rec}");
    for (i, o) in objs.iter().enumerate() {
        assert_eq!(&s.get(&format!("o{i}")).unwrap(), o, "object o{i}");
    }
    assert_eq!(s.status().unwrap().protection, "UNPROTECTED");
    // With 4 of 6 drives there is no room for a new 4+2 stripe: refused, naming why.
    let e = s.put("new", b"x").unwrap_err().to_string();
    assert!(
        e.contains("needs 6 drives with a free slot, 4 have one"),
        "{e}"
    );
    assert!(e.contains("drive0"), "{e}");
    drop(s);
    std::fs::remove_file(&fx.drives[5]).unwrap();
    let mut s = fx.open();
    assert_eq!(s.status().unwrap().protection, "UNAVAILABLE");
    let e = s.get("o0").unwrap_err().to_string();
    assert!(
        e.contains("only 3 of its 6 chunks are readable, 4 are needed"),
        "{e}"
    );
    assert!(e.contains("drive5"), "{e}");
}

#[test]
fn a_lost_drive_is_rebuilt_onto_the_others_and_a_returned_one_is_cleaned() {
    let fx = fixture(4, 2, 8);
    let mut s = fx.open();
    let objs: Vec<Vec<u8>> = (0..10).map(|i| bytes(200 + i, 60_000)).collect();
    for (i, o) in objs.iter().enumerate() {
        s.put(&format!("o{i}"), o).unwrap();
    }
    let stripes = s.status().unwrap().stripes;
    drop(s);
    let aside = fx.dir.path().join("aside");
    std::fs::rename(&fx.drives[2], &aside).unwrap();
    let s = fx.open();
    let lost = s.status().unwrap().stripes_by_lost[1];
    assert!(lost > 0, "drive 2 held no chunk");
    let store = std::sync::Arc::new(std::sync::Mutex::new(s));
    {
        // The background scrubber, at a bounded rate, repairs every stripe.
        let _scrub = axon::dataplane::store::Scrubber::start(
            store.clone(),
            Some(64 << 20),
            std::time::Duration::from_secs(3600),
            Box::new(|_| {}),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while store.lock().unwrap().scrub_stats().passes == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no scrub pass in 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let mut s = std::sync::Arc::into_inner(store)
        .unwrap()
        .into_inner()
        .unwrap();
    let st = s.status().unwrap();
    assert_eq!(st.scrub.repaired, lost, "{:?}", st.scrub);
    assert_eq!(
        st.protection, "OK",
        "every chunk of the missing drive has a new home"
    );
    // The rebuilt chunks live elsewhere: reads need no parity now.
    for (i, o) in objs.iter().enumerate() {
        let mut out = Vec::new();
        let r = s.get_to(&format!("o{i}"), &mut out).unwrap();
        assert_eq!(&out, o);
        assert_eq!(r.chunks_rebuilt, 0);
    }
    // The drive comes back: its old chunks are orphans now and are freed.
    drop(s);
    std::fs::rename(&aside, &fx.drives[2]).unwrap();
    let s = fx.open();
    assert_eq!(s.recovery().orphans_freed, lost);
    assert_eq!(s.status().unwrap().protection, "OK");
    assert_eq!(used_slots(&s), stripes * 6, "slots leaked");
}

#[test]
fn another_clusters_drive_in_a_slot_is_never_written_and_is_named() {
    let fx = fixture(3, 2, 5);
    let mut s = fx.open();
    let data = bytes(5, 100_000);
    s.put("a", &data).unwrap();
    drop(s);
    std::fs::remove_file(&fx.drives[1]).unwrap();
    let other = drive::format(
        &fx.drives[1],
        &FormatOptions {
            size: Some(8 << 20),
            chunk_size: CHUNK,
            cluster: Uuid::new_v4(),
            force: false,
        },
    )
    .unwrap();
    let before = std::fs::read(&fx.drives[1]).unwrap();
    let mut s = fx.open();
    let rec = s.recovery().unavailable.join("\n");
    assert!(rec.contains("a wrong drive in this slot"), "{rec}");
    assert!(rec.contains(&other.cluster.to_string()), "{rec}");
    assert!(rec.contains(&fx.cluster.to_string()), "{rec}");
    assert_eq!(s.get("a").unwrap(), data);
    let stop = std::sync::atomic::AtomicBool::new(false);
    s.scrub(None, &stop, &mut |_, _, _| {}).unwrap();
    drop(s);
    assert!(
        std::fs::read(&fx.drives[1]).unwrap() == before,
        "the foreign drive was written"
    );
    // And adding it is refused, naming both clusters.
    let mut s = fx.open();
    let e = s.add_drive(&fx.drives[1], false).unwrap_err().to_string();
    assert!(e.contains("belongs to cluster"), "{e}");
    assert!(e.contains(&fx.cluster.to_string()), "{e}");
}

#[test]
fn a_slot_whose_header_disagrees_with_the_index_is_reported_on_open() {
    let fx = fixture(3, 2, 5);
    let mut s = fx.open();
    let a = bytes(1, 40_000);
    let b = bytes(2, 40_000);
    s.put("a", &a).unwrap();
    s.put("b", &b).unwrap();
    drop(s);
    // Copy stripe 2's chunk 0 header over stripe 1's chunk 0 header.
    let (pa, sa) = find_chunk(&fx.drives, 1, 0);
    let (pb, sb) = find_chunk(&fx.drives, 2, 0);
    let hb = peek(&pb, drive::slot_offset(CHUNK, sb), BLOCK as usize);
    poke(&pa, drive::slot_offset(CHUNK, sa), &hb);
    let mut s = fx.open();
    let m = s.recovery().mismatches.join("\n");
    assert!(
        m.contains(&format!(
            "{} slot {sa}: the index says stripe 1 chunk 0",
            pa.display()
        )),
        "{m}"
    );
    assert!(m.contains("holds stripe 2 chunk 0"), "{m}");
    assert_eq!(s.status().unwrap().stripes_by_lost[1], 1);
    assert_eq!(s.get("a").unwrap(), a);
    assert_eq!(s.get("b").unwrap(), b);
}

#[test]
fn orphans_of_an_uncommitted_write_are_freed_on_open() {
    let fx = fixture(3, 2, 5);
    let mut s = fx.open();
    s.put("a", &bytes(1, 30_000)).unwrap();
    drop(s);
    // A chunk written but never committed: a valid header in a free slot.
    let payload = bytes(9, 4096);
    let h = ChunkHeader::for_payload(77, 0, 1, &payload);
    let mut blk = h.encode().to_vec();
    blk.extend_from_slice(&payload);
    let (p, used) = find_chunk(&fx.drives, 1, 0);
    let free = used + 5;
    poke(&p, drive::slot_offset(CHUNK, free), &blk);
    let mut s = fx.open();
    assert_eq!(s.recovery().orphans_freed, 1);
    assert!(
        ChunkHeader::decode(&peek(&p, drive::slot_offset(CHUNK, free), BLOCK as usize))
            .unwrap()
            .is_none(),
        "the orphan's header was not zeroed"
    );
    // A stripe id seen in an orphan is never reused.
    s.put("b", b"hello").unwrap();
    drop(s);
    find_chunk(&fx.drives, 78, 0);
}

/// `mount`/`umount` as root: directly when root, else through `sudo -n`.
fn as_root(cmd: &str) -> std::process::Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::process::Command::new(cmd)
    } else {
        let mut c = std::process::Command::new("sudo");
        c.args(["-n", cmd]);
        c
    }
}

/// A tmpfs of a few MiB, mounted for the test (root, or sudo without a password), open to
/// everyone; unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: &Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = as_root("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=1777"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallFs(at.to_path_buf()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = as_root("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_filesystem_fails_the_write_cleanly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let Some(_fs) = SmallFs::mount(&mnt, "3M") else {
        assert!(
            std::env::var_os("AXON_REQUIRE_MOUNT").is_none(),
            "AXON_REQUIRE_MOUNT is set but a tmpfs could not be mounted"
        );
        eprintln!(
            "skipped: mounting a tmpfs needs root (set AXON_REQUIRE_MOUNT=1 to fail instead)"
        );
        return;
    };
    // Drives of 8 MiB each (sparse) on a 3 MiB filesystem: the space runs out first.
    // The index stays on the roomy filesystem; only the drives fill up.
    let (drives, _) = fixture_in(dir.path(), &mnt, 3, 2, 5, 8 << 20);
    let mut s = Store::open(&dir.path().join("store")).unwrap();
    let kept = bytes(3, 100_000);
    s.put("kept", &kept).unwrap();
    let used = used_slots(&s);
    let e = s.put("big", &bytes(4, 6 << 20)).unwrap_err().to_string();
    assert!(e.contains("No space left on device"), "{e}");
    assert!(
        e.contains("the filesystem holding this drive is full"),
        "{e}"
    );
    assert!(
        drives.iter().any(|d| e.contains(&d.display().to_string())),
        "{e}"
    );
    assert_eq!(used_slots(&s), used, "a failed put kept its slots");
    assert!(matches!(s.get("big"), Err(StoreError::NotFound(_))));
    assert_eq!(s.get("kept").unwrap(), kept);
    drop(s);
    let mut s = Store::open(&dir.path().join("store")).unwrap();
    assert!(
        s.recovery().orphans_freed > 0,
        "the cut write's chunks stayed"
    );
    assert_eq!(s.get("kept").unwrap(), kept);
    assert_eq!(used_slots(&s), used);
    // A smaller object still fits once the orphans are gone.
    s.put("small", &bytes(5, 20_000)).unwrap();
    assert_eq!(s.get("small").unwrap(), bytes(5, 20_000));
}

#[test]
fn a_second_process_cannot_open_a_store_in_use_and_a_missing_store_says_how_to_make_one() {
    let fx = fixture(3, 2, 5);
    let _s = fx.open();
    let e = Store::open(&fx.store_dir()).err().unwrap().to_string();
    assert!(e.contains("open in another process"), "{e}");
    let e = Store::open(&fx.dir.path().join("nowhere"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no axon store here") && e.contains("axon io create"),
        "{e}"
    );
}

#[test]
fn a_drive_in_service_elsewhere_is_not_taken_over_without_force() {
    // Two stores of one cluster (as on two nodes); store B is offered a drive of store A.
    let fx = fixture(3, 2, 5);
    let mut a = fx.open();
    let data = bytes(11, 50_000);
    a.put("a", &data).unwrap();
    drop(a);
    let other = fx.dir.path().join("other");
    let mut b = Store::create(&other, fx.cluster, Scheme::new(3, 2).unwrap(), CHUNK).unwrap();
    let e = b.add_drive(&fx.drives[0], false).unwrap_err().to_string();
    assert!(e.contains("is ACTIVE") && e.contains("--force"), "{e}");
    drop(b);
    let mut a = fx.open();
    assert_eq!(a.get("a").unwrap(), data);
    assert_eq!(
        a.status().unwrap().protection,
        "OK",
        "the refused add touched the drive"
    );
}

/// A drive taken over with --force while one superblock copy is damaged gets both copies
/// back (its state unchanged, so nothing else would rewrite them), and the store says so;
/// a drive refused leaves no warning behind.
#[test]
fn a_forced_add_rewrites_a_damaged_superblock_copy_and_a_refused_add_records_nothing() {
    let fx = fixture(3, 2, 5);
    let p = &fx.drives[0];
    // Copy B (the second block) damaged: one byte of its payload flipped.
    let mut b = peek(p, BLOCK + 16, 1);
    b[0] ^= 0x40;
    poke(p, BLOCK + 16, &b);
    let damaged = |p: &Path| drive::open(p).unwrap().warning;
    assert!(damaged(p).is_some(), "the damage was not seen");
    let other = fx.dir.path().join("other");
    let mut s = Store::create(&other, fx.cluster, Scheme::new(3, 2).unwrap(), CHUNK).unwrap();
    // Refused (ACTIVE, no --force): no warning recorded, the copy still damaged.
    assert!(s.add_drive(p, false).is_err());
    assert!(
        s.recovery().warnings.is_empty(),
        "{:?}",
        s.recovery().warnings
    );
    assert!(damaged(p).is_some());
    // Forced: both copies good and equal, and the store says it rewrote one.
    s.add_drive(p, true).unwrap();
    assert_eq!(damaged(p), None);
    assert_eq!(peek(p, 0, 512), peek(p, BLOCK, 512));
    let w = s.recovery().warnings.join("\n");
    assert!(
        w.contains(&p.display().to_string()) && w.contains("copy B") && w.contains("rewritten"),
        "{w}"
    );
}

/// Group commit: a batch stores each object as successive puts would (a later put of the
/// same key replaces the earlier, its slots freed), a bad key fails alone, and all of it is
/// there after reopening.
#[test]
fn a_batch_of_puts_is_one_commit_with_per_item_results_and_survives_reopening() {
    let fx = fixture(3, 2, 5);
    let (a1, a2, b, c) = (
        bytes(1, 40_000),
        bytes(2, 70_000),
        bytes(3, 5),
        bytes(4, 33_000),
    );
    let long = "k".repeat(2000);
    {
        let mut s = fx.open();
        let r = s.put_many(&[
            ("a", &a1),
            ("b", &b),
            (long.as_str(), &c),
            ("a", &a2),
            ("c", &c),
        ]);
        assert_eq!(r.len(), 5);
        assert!(r[0].is_ok() && r[1].is_ok() && r[3].is_ok() && r[4].is_ok());
        let e = r[2].as_ref().unwrap_err().to_string();
        assert!(e.contains("1 to 1024 bytes"), "{e}");
        assert_eq!(s.get("a").unwrap(), a2);
        // a1's stripes were replaced by a2's in the same commit: only the live objects'
        // chunks hold slots (5 chunks per stripe of 3 × 16 KiB).
        let stripes = |n: usize| n.div_ceil(3 * CHUNK as usize) as u64;
        assert_eq!(
            used_slots(&s),
            5 * (stripes(a2.len()) + stripes(b.len()) + stripes(c.len()))
        );
    }
    let mut s = fx.open();
    assert!(s.recovery().mismatches.is_empty());
    assert_eq!(s.recovery().orphans_freed, 0);
    assert_eq!(s.get("a").unwrap(), a2);
    assert_eq!(s.get("b").unwrap(), b);
    assert_eq!(s.get("c").unwrap(), c);
    let mut keys: Vec<String> = s.list().unwrap().into_iter().map(|x| x.0).collect();
    keys.sort();
    assert_eq!(keys, ["a", "b", "c"]);
}

/// A read planned under the store's lock and done without it returns the object; once the
/// object is overwritten or deleted (its slots reused or zeroed), the stale plan reads
/// nothing rather than wrong data; a damaged chunk is not planned around but refused.
#[test]
fn a_lock_free_read_never_returns_stale_or_damaged_data() {
    let fx = fixture(3, 2, 5);
    let mut s = fx.open();
    let v1 = bytes(10, 50_000);
    s.put("x", &v1).unwrap();
    let plan = s.read_plan("x").unwrap().expect("every chunk healthy");
    assert_eq!(plan.read().unwrap(), v1);
    // Overwritten: the old slots are zeroed and freed, then reused by the next object.
    s.put("x", &bytes(11, 50_000)).unwrap();
    s.put("y", &bytes(12, 200_000)).unwrap();
    assert_eq!(
        plan.read(),
        None,
        "a stale plan must not read what replaced it"
    );
    assert!(matches!(s.read_plan("gone"), Err(StoreError::NotFound(_))));
    // A flipped payload byte fails the plan's checksum; the locked read rebuilds it.
    let v2 = bytes(13, 20_000);
    s.put("z", &v2).unwrap();
    let plan = s.read_plan("z").unwrap().unwrap();
    let stripe = s
        .stripe_ids()
        .unwrap()
        .into_iter()
        .max()
        .expect("z's stripe is the newest");
    let (path, slot) = find_chunk(&fx.drives, stripe, 0);
    let at = drive::slot_offset(CHUNK, slot) + BLOCK + 5;
    let mut b = peek(&path, at, 1);
    b[0] ^= 0xff;
    poke(&path, at, &b);
    assert_eq!(plan.read(), None);
    assert_eq!(s.get("z").unwrap(), v2);
}

/// A 1+0 store (a cluster member's share) in `dir/store` on two file drives of 8 MiB (512
/// slots of 16 KiB, less the superblock) holding `objects`, and a way to format another
/// drive of a given size for it.
fn one_zero_store(dir: &Path, objects: &[(String, Vec<u8>)]) -> (Store, impl Fn(&Path, u64)) {
    let cluster = Uuid::new_v4();
    let mut s = Store::create(
        &dir.join("store"),
        cluster,
        Scheme::for_store(1, 0).unwrap(),
        CHUNK,
    )
    .unwrap();
    let format = move |p: &Path, size: u64| {
        drive::format(
            p,
            &FormatOptions {
                size: Some(size),
                chunk_size: CHUNK,
                cluster,
                force: false,
            },
        )
        .unwrap();
    };
    for i in 0..2 {
        let p = dir.join(format!("drive{i}"));
        format(&p, 8 << 20);
        s.add_drive(&p, false).unwrap();
    }
    for (k, v) in objects {
        s.put(k, v).unwrap();
    }
    (s, format)
}

/// A drive phased in (1+0, as a cluster member's share): added PHASING_IN and at once
/// taking new chunks, then filled from the fuller drives until each is about as full as
/// the others by share of its size — even when the new drive is smaller than the one the
/// chunks come from — each object once, every object whole, then ACTIVE. The plan is
/// made again after a reopen (an agent restart) from what is left to move.
#[test]
fn a_drive_phased_in_is_filled_to_the_others_level_by_share_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let objects: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("o{i}"),
                bytes(i, CHUNK as usize - (i as usize % 7) * 100),
            )
        })
        .collect();
    let (mut s, format) = one_zero_store(dir.path(), &objects);
    // A 4 MiB drive: half the size of each of the others.
    let small = dir.path().join("small");
    format(&small, 4 << 20);
    let id = s
        .add_drive_as(&small, false, drive::DriveState::PhasingIn)
        .unwrap()
        .to_string();
    let used = |s: &Store| -> Vec<(PathBuf, &'static str, u64, u64)> {
        s.drives()
            .into_iter()
            .map(|d| (d.path, d.state, d.used, d.slots))
            .collect()
    };
    assert!(used(&s).iter().any(|d| d.1 == "PHASING_IN" && d.2 == 0));
    let plan = s.begin_phase_in(&id).unwrap();
    let keys: std::collections::HashSet<&String> = plan.moves.iter().map(|m| &m.1).collect();
    assert_eq!(keys.len(), plan.moves.len(), "an object planned twice");
    // 300 chunks over 512 + 512 + 255 slots: the new drive's level is its share.
    let slots: u64 = used(&s).iter().map(|d| d.3).sum();
    let small_slots = used(&s).iter().find(|d| d.0 == small).unwrap().3;
    let level = (300 * small_slots).div_ceil(slots);
    // (Each drive's level rounds up, so the big ones may each keep one more.)
    let n = plan.moves.len() as u64;
    assert!(
        n <= level && n + 2 >= level,
        "{n} moves, level {level}: {:?}",
        used(&s)
    );
    // Half of it, then a reopen (an agent restart): the rest is planned again.
    let half = plan.moves.len() / 2;
    for (from, key) in &plan.moves[..half] {
        assert!(s.move_onto(from, key, &id).unwrap() > 0);
    }
    drop(s);
    let mut s = Store::open(&dir.path().join("store")).unwrap();
    let rest = s.begin_phase_in(&id).unwrap();
    assert!(
        rest.moves.len() as u64 <= level - half as u64 + 1,
        "{} left to move after {half} of {level}",
        rest.moves.len()
    );
    for (from, key) in &rest.moves {
        assert!(s.move_onto(from, key, &id).unwrap() > 0);
    }
    s.finish_phase_in(&id).unwrap();
    let u = used(&s);
    let on_small = u.iter().find(|d| d.0 == small).unwrap();
    assert_eq!(on_small.1, "ACTIVE");
    assert!(
        on_small.2 + 2 >= level && on_small.2 <= level,
        "{u:?}, level {level}"
    );
    for d in &u {
        // Each drive at its level (its share of the 300 by its size), give or take one.
        assert!(d.2.abs_diff((300 * d.3).div_ceil(slots)) <= 1, "{u:?}");
    }
    assert_eq!(u.iter().map(|d| d.2).sum::<u64>(), 300, "{u:?}");
    for (k, v) in &objects {
        assert_eq!(&s.get(k).unwrap(), v, "{k}");
    }
}

/// A drive being phased out takes no new chunks, so the free space and capacity the node
/// offers to placement leave it out.
#[test]
fn usage_counts_only_drives_that_take_new_chunks() {
    let fx = fixture(3, 2, 6);
    let mut s = fx.open();
    let (free6, cap6, _) = s.usage().unwrap();
    assert!(cap6 > 0 && free6 == cap6, "{free6} of {cap6}");
    s.begin_phase_out("drive5", false).unwrap();
    let (free5, cap5, _) = s.usage().unwrap();
    assert_eq!(cap5 * 6, cap6 * 5, "capacity without drive5");
    assert_eq!(free5, cap5, "free without drive5");
}

/// A phase-in plans by chunks: an object of several stripes has several chunks on a drive,
/// and moving it moves them all, so the new drive fills to its level, not past it.
#[test]
fn a_phase_in_of_objects_of_several_stripes_fills_to_the_level_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    // 100 objects of 3 stripes (3 chunks) each.
    let objects: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| (format!("o{i}"), bytes(i, 3 * CHUNK as usize - 50)))
        .collect();
    let (mut s, format) = one_zero_store(dir.path(), &objects);
    let new = dir.path().join("new");
    format(&new, 8 << 20);
    let id = s
        .add_drive_as(&new, false, drive::DriveState::PhasingIn)
        .unwrap()
        .to_string();
    let plan = s.begin_phase_in(&id).unwrap();
    // Three drives of the same size: a third of the 300 chunks each.
    let level = 100u64;
    let planned = plan.bytes / u64::from(CHUNK);
    assert!(planned.abs_diff(level) <= 2, "{planned} chunks planned");
    let mut moved = 0;
    for (from, key) in &plan.moves {
        moved += s
            .move_onto(from, key, &id)
            .unwrap()
            .div_ceil(u64::from(CHUNK));
    }
    assert_eq!(moved, planned, "chunks moved, chunks planned");
    s.finish_phase_in(&id).unwrap();
    let u: Vec<(PathBuf, u64)> = s.drives().into_iter().map(|d| (d.path, d.used)).collect();
    let on_new = u.iter().find(|d| d.0 == new).unwrap().1;
    assert!(on_new.abs_diff(level) <= 2, "{u:?}");
    assert_eq!(u.iter().map(|d| d.1).sum::<u64>(), 300, "{u:?}");
    for (k, v) in &objects {
        assert_eq!(&s.get(k).unwrap(), v, "{k}");
    }
}

/// The demo's drive fault: a drive is failed once; failing it again is refused, naming it.
#[test]
fn failing_a_failed_drive_again_is_refused() {
    let fx = fixture(3, 2, 5);
    let mut s = fx.open();
    let name = fx.drives[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let p = s.fail_drive(&name, "test").unwrap();
    assert_eq!(p, fx.drives[0]);
    let e = s.fail_drive(&name, "test").unwrap_err().to_string();
    assert!(
        e.contains("already FAILED") && e.contains(&p.display().to_string()),
        "{e}"
    );
}

/// A FAILED drive's usage follows the index: once the chunks it held are dropped (the
/// object deleted, or rewritten elsewhere), it no longer counts them as used.
#[test]
fn a_failed_drives_usage_drops_with_the_chunks_it_held() {
    let fx = fixture(3, 2, 6);
    let mut s = fx.open();
    s.put("a", &bytes(3, 40_000)).unwrap();
    let held = s.drives().into_iter().find(|d| d.used > 0).unwrap();
    let name = held.path.file_name().unwrap().to_str().unwrap().to_string();
    s.fail_drive(&name, "test").unwrap();
    let used = |s: &Store| {
        s.drives()
            .into_iter()
            .find(|d| d.path == held.path)
            .unwrap()
            .used
    };
    assert_eq!(used(&s), held.used, "failing it changed its usage");
    s.delete("a").unwrap();
    assert_eq!(
        used(&s),
        0,
        "a FAILED drive still counts the deleted object's chunks"
    );
    assert_eq!(used_slots(&s), 0);
}

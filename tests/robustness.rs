//! Every parser of outside data gets thousands of random and mutated inputs and must answer
//! with a value or an error, never a panic: host lists, CPU lists, SMART pages, netlink
//! messages, protobuf snapshots from agents, inventories, themes, `ip -j` JSON.

mod common;

use common::rng::Rng;

use axon::collectors::{iproute_json, netlink, smart};
use axon::fleet::Inventory;
use axon::model::{cpuset::CpuSet, hostlist};
use axon::ui::theme::{ColorDepth, Theme};
use axon::wire::{self, pb};
use prost::Message;

#[test]
fn text_parsers_never_panic() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let s = r.text(b"axon[]0123456789-,. :_", 40);
        let _ = hostlist::expand(&s);
        let c = r.text(b"0123456789-,: \nabcdef", 30);
        let _ = CpuSet::parse_list(&c);
        let _ = CpuSet::parse_mask(&c);
    }
    // The valid forms still parse after all that.
    assert_eq!(hostlist::expand("axon[001-003]").unwrap().len(), 3);
}

/// Random bytes where random bytes reach a decoder's logic: SMART pages (any 512 bytes are a
/// page) and netlink framing. The per-message netlink decoders sit behind the framing, which
/// random headers pass about once in ten million tries, so they get mutated valid messages
/// instead (`netlink_decoders_survive_mutated_valid_messages`).
#[test]
fn binary_decoders_never_panic() {
    let mut r = Rng(0xfeed_beef_cafe_0001);
    let (mut pages, mut short) = (0, 0);
    for _ in 0..20_000 {
        let b = r.bytes(600);
        // SMART: a short page is refused with its length; a full one decodes its own bytes
        // at the specification's offsets, whatever they hold.
        match smart::decode(&b) {
            Err(e) => {
                assert!(b.len() < smart::SMART_LOG_LEN, "{} bytes refused", b.len());
                assert_eq!(e, smart::SmartError(b.len()));
                short += 1;
            }
            Ok(log) => {
                assert!(
                    b.len() >= smart::SMART_LOG_LEN,
                    "{} bytes accepted",
                    b.len()
                );
                let u128_at = |o: usize| u128::from_le_bytes(b[o..o + 16].try_into().unwrap());
                assert_eq!(log.critical_warning.0, b[0]);
                assert_eq!(log.temperature_kelvin, u16::from_le_bytes([b[1], b[2]]));
                assert_eq!((log.available_spare_pct, log.percentage_used), (b[3], b[5]));
                assert_eq!(
                    u128::from(log.media_errors),
                    u128_at(160).min(u128::from(u64::MAX))
                );
                pages += 1;
            }
        }
        // Netlink framing: a header whose length does not fit the buffer is refused, never
        // trusted; fewer than 16 bytes hold no message.
        let framed = netlink::split_messages(&b);
        if b.len() < 16 {
            assert!(
                matches!(framed, Ok((ref m, false)) if m.is_empty()),
                "{framed:?}"
            );
        } else {
            let len = u32::from_ne_bytes(b[..4].try_into().unwrap()) as usize;
            if len < 16 || len > b.len() {
                assert!(framed.is_err(), "{len}-byte header in {} bytes", b.len());
            }
        }
    }
    assert!(
        pages > 2_000 && short > 10_000,
        "{pages} pages, {short} short"
    );
}

/// A snapshot as an agent sends it in a Watch stream's first message, with a probe summary.
fn valid_agent_snapshot() -> axon::model::NodeSnapshot {
    let mut snap = common::cluster::profile_snapshot("misconfigured");
    let names: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
    snap.probes = Some(common::cluster::probes(
        &names,
        0,
        &[(3, 22, axon::model::ProbeState::Filtered)],
    ));
    snap
}

/// What every snapshot the decoder accepts must satisfy, whatever the bytes were: the
/// invariants the console relies on, and that it is a snapshot the encoder can send (so
/// nothing was accepted that the model cannot represent). Returns what is violated.
fn inconsistencies(s: &axon::model::NodeSnapshot) -> Vec<String> {
    let mut bad = Vec::new();
    if let Some(t) = &s.topology {
        // Topology::cpu binary-searches by id: the decoder sorts, whatever the sender did.
        if !t.cpus.windows(2).all(|w| w[0].id <= w[1].id) {
            bad.push("topology CPUs not sorted by id".to_string());
        }
    }
    if let Some(p) = &s.probes {
        let names: Vec<&str> = p.summary.iter().map(|x| x.peer.as_str()).collect();
        if p.peers.iter().map(|p| p.as_str()).collect::<Vec<_>>() != names {
            bad.push(format!(
                "probe peers {:?} are not the summary's {:?}",
                p.peers, names
            ));
        }
    }
    for c in &s.collectors {
        if c.last_success_ms.is_some_and(|t| t <= 0) {
            bad.push(format!(
                "{:?}: a success at time {:?}",
                c.section, c.last_success_ms
            ));
        }
    }
    // Re-encoded (every probe result, as ProbePorts sends them) and decoded again: the same.
    let mut m = wire::encode_snapshot(s, &axon::model::Section::ALL, true);
    m.probes = s
        .probes
        .as_ref()
        .map(|p| wire::encode_probe_report(p, true));
    match wire::decode_snapshot(pb::NodeSnapshot::decode(m.encode_to_vec().as_slice()).unwrap()) {
        Ok(again) if again.snapshot == *s => {}
        Ok(_) => bad.push("re-encoding it gives a different snapshot".to_string()),
        Err(e) => bad.push(format!("re-encoding it gives a refused message: {e}")),
    }
    bad
}

#[test]
fn known_bad_agent_messages_are_refused_naming_message_and_field() {
    let snap = valid_agent_snapshot();
    let valid = wire::encode_snapshot(&snap, &axon::model::Section::ALL, true);
    type Damage = fn(&mut pb::NodeSnapshot);
    let cases: Vec<(&str, &str, &str, Damage)> = vec![
        ("NodeSnapshot", "node", "missing", |m| m.node = None),
        (
            "CollectorStatus",
            "section",
            "unknown section `bogus`",
            |m| m.collectors[0].section = "bogus".into(),
        ),
        ("Cpu", "siblings", "", |m| {
            m.topology.as_mut().unwrap().cpus[5].siblings = "3-x".into()
        }),
        ("NumaNode", "cpus", "", |m| {
            m.topology.as_mut().unwrap().numa_nodes[0].cpus = "0-".into()
        }),
        ("CheckResult", "status", "unknown status 42", |m| {
            m.checks.as_mut().unwrap().results[1].status = 42
        }),
        ("SmartLog", "percentage_used", "300 out of range", |m| {
            let c = m.nvme.as_mut().unwrap().controllers.iter_mut();
            c.filter_map(|c| c.smart.as_mut())
                .next()
                .unwrap()
                .percentage_used = 300
        }),
        (
            "NvmeNamespace",
            "write_cache",
            "unknown value `sometimes`",
            |m| {
                let c = &mut m.nvme.as_mut().unwrap().controllers[0];
                c.namespaces[0].write_cache = "sometimes".into()
            },
        ),
        ("ProbeReport", "summary_states", "", |m| {
            m.probes.as_mut().unwrap().summary_states.pop();
        }),
        ("ProbeReport", "summary_rtt_ms", "", |m| {
            m.probes.as_mut().unwrap().summary_rtt_ms.push(1)
        }),
        (
            "ProbeReport.summary_states",
            "state",
            "unknown state 99",
            |m| m.probes.as_mut().unwrap().summary_states[0] = 99,
        ),
        ("ProbeResult", "port", "70000 out of range", |m| {
            m.probes.as_mut().unwrap().results[0].port = 70_000
        }),
        ("ProbeResult", "state", "unspecified", |m| {
            m.probes.as_mut().unwrap().results[0].state = 0
        }),
    ];
    for (message, field, says, damage) in cases {
        let mut m = valid.clone();
        damage(&mut m);
        // Through the bytes, as it arrives.
        let m = pb::NodeSnapshot::decode(m.encode_to_vec().as_slice()).unwrap();
        let Err(e) = wire::decode_snapshot(m) else {
            panic!("a bad {message}.{field} was accepted");
        };
        assert_eq!(
            (e.message, e.field),
            (message, field),
            "the error names the message and field: {e}"
        );
        assert!(e.problem.contains(says), "{e}");
    }
    // And the undamaged message is accepted whole.
    let back = wire::decode_snapshot(valid).unwrap().snapshot;
    assert_eq!(back.topology, snap.topology);
    assert_eq!(back.checks, snap.checks);
    assert!(
        inconsistencies(&back).is_empty(),
        "{:?}",
        inconsistencies(&back)
    );
}

#[test]
fn agent_messages_are_decoded_or_refused_never_panic() {
    // A real snapshot, encoded as an agent would, then damaged in every way.
    let snap = valid_agent_snapshot();
    // The sender's CPU order is not trusted: the decoder sorts.
    let mut m = wire::encode_snapshot(&snap, &axon::model::Section::ALL, true);
    m.topology.as_mut().unwrap().cpus.reverse();
    let valid = m.encode_to_vec();
    let back = wire::decode_snapshot(pb::NodeSnapshot::decode(valid.as_slice()).unwrap()).unwrap();
    assert_eq!(
        back.snapshot.topology, snap.topology,
        "the undamaged message round-trips"
    );
    let mut r = Rng(0x0bad_c0de_0000_0042);
    let (mut decoded, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let b = r.mutate(&valid);
        let Ok(m) = pb::NodeSnapshot::decode(b.as_slice()) else {
            continue;
        };
        match wire::decode_snapshot(m) {
            Ok(d) => {
                let bad = inconsistencies(&d.snapshot);
                assert!(bad.is_empty(), "accepted an inconsistent snapshot: {bad:?}");
                decoded += 1;
            }
            Err(e) => {
                assert!(
                    !e.message.is_empty() && !e.field.is_empty() && !e.problem.is_empty(),
                    "a refusal names message, field and problem: {e:?}"
                );
                refused += 1;
            }
        }
    }
    // The damage reaches the decoder's checks, both ways.
    assert!(
        decoded > 1_000 && refused > 80,
        "decoded {decoded}, refused {refused}"
    );
}

#[test]
fn config_files_never_panic() {
    let mut r = Rng(0x5eed_0000_0000_0007);
    let inv = b"token_file = \"t\"\nport = 14000\nhosts = \"a[1-3]\"\n[[node]]\nname = \"a2\"\naddress = \"10.0.0.2\"\n";
    let theme = axon::ui::theme::BUILTIN[0].1.as_bytes();
    let ip = br#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]}]"#;
    for _ in 0..3_000 {
        let text = String::from_utf8_lossy(&r.mutate(inv)).into_owned();
        let _ = Inventory::parse(&text, std::path::Path::new("inv.toml"));
        let text = String::from_utf8_lossy(&r.mutate(theme)).into_owned();
        let _ = Theme::parse(&text, "fuzz.toml", ColorDepth::Ansi256);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.mutate(ip)) {
            let _ = iproute_json::routing_from_ip_json(&v, &v, &v);
        }
    }
}

/// Sizes and counts far beyond any real host (a corrupted or hostile file, a typo on the
/// command line) saturate or are refused; in a debug build an overflow would panic.
#[tokio::test]
async fn numbers_too_large_for_their_units_never_overflow() {
    use axon::collectors::checks::PlanParams;
    use axon::collectors::{HostRoot, Problems, topology};
    use axon::model::checks::CheckStatus;
    const MAX: &str = "18446744073709551615";

    // /proc/meminfo values are in kB.
    let m = topology::meminfo_map(&format!("MemTotal: {MAX} kB\nHugePages_Total: {MAX}\n"));
    assert_eq!(m["MemTotal"], u64::MAX);

    let (_d, path) = common::copy_fixture("amd-epyc-4numa");
    let put = |rel: &str, text: String| std::fs::write(path.join(rel), text).unwrap();
    // A huge page size in a directory name.
    let odd = path.join(format!(
        "sys/devices/system/node/node0/hugepages/hugepages-{MAX}kB"
    ));
    std::fs::create_dir_all(&odd).unwrap();
    for f in ["nr_hugepages", "free_hugepages", "surplus_hugepages"] {
        std::fs::write(odd.join(f), "1\n").unwrap();
    }
    // Huge page counts, per node and in total.
    for f in ["nr_hugepages", "free_hugepages"] {
        put(
            &format!("sys/devices/system/node/node2/hugepages/hugepages-2048kB/{f}"),
            format!("{MAX}\n"),
        );
    }
    let meminfo = std::fs::read_to_string(path.join("proc/meminfo")).unwrap();
    put(
        "proc/meminfo",
        meminfo
            .lines()
            .map(|l| match l.split(':').next() {
                Some(k @ ("HugePages_Total" | "HugePages_Free")) => format!("{k}: {MAX}"),
                Some(k @ ("MemTotal" | "MemAvailable")) => format!("{k}: {MAX} kB"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    // Swap sizes, also in kB.
    put(
        "proc/swaps",
        format!("Filename\tType\tSize\tUsed\tPriority\n/swap.img file {MAX} {MAX} -2\n"),
    );
    let root = HostRoot::open(&path).unwrap();
    let mut p = Problems::default();
    let t = topology::collect(&root, &mut p).unwrap();
    assert!(
        p.iter()
            .any(|e| e.to_string().contains("does not fit in 64 bits")),
        "{:?}",
        p.summary()
    );
    assert_eq!(
        t.numa_nodes[2].hugepages_of(2 << 20).unwrap().total,
        Some(u64::MAX)
    );

    // Every check on that host, with an absurd plan of huge pages per core.
    let mut cfg = common::collect_config();
    cfg.plan = PlanParams {
        hugepages_per_core_bytes: u64::MAX,
        ..PlanParams::default()
    };
    let o = axon::commands::check::run(&root, &cfg).await;
    let by = |id: &str| o.results.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by("swap.off").status, CheckStatus::Fail);
    assert_eq!(
        by("hugepages").status,
        CheckStatus::Fail,
        "{}",
        by("hugepages").observed
    );

    // The flag that sets the plan: refused when parsed, naming the flag and the value.
    use clap::Parser;
    let e = axon::cli::Cli::try_parse_from(["axon", "check", "--hugepages-per-core-mib", MAX])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--hugepages-per-core-mib") && e.contains(MAX),
        "{e}"
    );
}

/// A netlink message laid out as the kernel sends it: nlmsghdr, the fixed header, then
/// 4-byte aligned attributes.
fn nl_msg(ty: u16, hdr: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = hdr.to_vec();
    for (t, d) in attrs {
        body.extend_from_slice(&((4 + d.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&t.to_ne_bytes());
        body.extend_from_slice(d);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let mut m = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&[0u8; 10]);
    m.extend_from_slice(&body);
    m
}

#[test]
fn netlink_decoders_survive_mutated_valid_messages() {
    const AF_INET: u8 = 2;
    let names: std::collections::HashMap<u32, String> = [(3, "ens1f0np0".to_string())].into();
    let mut rule_hdr = [0u8; 12];
    (rule_hdr[0], rule_hdr[2], rule_hdr[4]) = (AF_INET, 32, 101);
    let mut route_hdr = [0u8; 12];
    (route_hdr[0], route_hdr[1], route_hdr[4]) = (AF_INET, 24, 252);
    let mut addr_hdr = [0u8; 8];
    (addr_hdr[0], addr_hdr[1]) = (AF_INET, 24);
    addr_hdr[4..8].copy_from_slice(&3u32.to_ne_bytes());
    let mut link_hdr = [0u8; 16];
    link_hdr[4..8].copy_from_slice(&3u32.to_ne_bytes());
    let mut valid = Vec::new();
    valid.extend(nl_msg(16, &link_hdr, &[(3, b"ens1f0np0\0")])); // RTM_NEWLINK
    valid.extend(nl_msg(
        netlink::RTM_NEWADDR,
        &addr_hdr,
        &[(1, &[10, 10, 1, 11]), (2, &[10, 10, 1, 11])],
    ));
    valid.extend(nl_msg(
        netlink::RTM_NEWRULE,
        &rule_hdr,
        &[
            (6, &32000u32.to_ne_bytes()),
            (2, &[10, 10, 1, 11]),
            (15, &101u32.to_ne_bytes()),
            (3, b"ens1f0np0\0"),
        ],
    ));
    valid.extend(nl_msg(
        netlink::RTM_NEWROUTE,
        &route_hdr,
        &[
            (1, &[10, 10, 1, 0]),
            (4, &3u32.to_ne_bytes()),
            (5, &[10, 10, 1, 1]),
            (7, &[10, 10, 1, 11]),
            (15, &101u32.to_ne_bytes()),
        ],
    ));
    valid.extend(nl_msg(3, &[0; 4], &[])); // NLMSG_DONE

    let decode_all = |buf: &[u8]| -> (usize, usize) {
        let (mut ok, mut err) = (0, 0);
        let Ok((msgs, _)) = netlink::split_messages(buf) else {
            return (0, 0);
        };
        for (_, p) in msgs {
            // Every decoder on every message: a damaged type field must not matter either.
            for r in [
                netlink::decode_rule(&p).map(|_| ()),
                netlink::decode_route(&p, &names).map(|_| ()),
                netlink::decode_addr(&p, &names).map(|_| ()),
                netlink::decode_link(&p).map(|_| ()),
            ] {
                if r.is_ok() { ok += 1 } else { err += 1 }
            }
        }
        (ok, err)
    };
    // The undamaged stream decodes to what was built.
    let (msgs, done) = netlink::split_messages(&valid).unwrap();
    assert!(done && msgs.len() == 4);
    let rule = netlink::decode_rule(&msgs[2].1).unwrap();
    assert_eq!(
        (rule.from.as_deref(), rule.table),
        (Some("10.10.1.11/32"), 101)
    );
    let route = netlink::decode_route(&msgs[3].1, &names).unwrap();
    assert_eq!(route.gateway.as_deref(), Some("10.10.1.1"));
    assert_eq!(netlink::decode_link(&msgs[0].1).unwrap().1, "ens1f0np0");

    let mut r = Rng(0x6e65_746c_696e_6b21);
    let (mut ok, mut err) = (0, 0);
    for i in 0..20_000 {
        let mut b = r.mutate(&valid);
        if i % 4 == 0 {
            let keep = (r.next() as usize) % (b.len() + 1);
            b.truncate(keep);
        }
        let (o, e) = decode_all(&b);
        ok += o;
        err += e;
    }
    // The mutations reach the decoders: many messages still decode, many are refused.
    assert!(ok > 10_000 && err > 10_000, "decoded {ok}, refused {err}");
}

//! Whatever an agent sends, once decoded, goes through the whole console without a panic:
//! merged into the `ClusterView`, derived into tables and rendered on every panel. Damaged
//! messages that still decode, and well-formed ones with absurd values (clocks at the ends
//! of time, huge intervals), are both tried.

mod common;

use axon::fleet::view::{ClusterView, NodeUpdate, NodeView, Thresholds};
use axon::model::Section;
use axon::ui::theme::{ColorDepth, Theme};
use axon::ui::{Console, render_text};
use axon::wire::{self, pb};
use common::cluster::NOW;
use common::rng::Rng;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use prost::Message;

fn view() -> ClusterView {
    let nodes = (1..=3)
        .map(|i| NodeView::new(format!("n{i}"), format!("10.0.0.{i}:14000")))
        .collect();
    ClusterView::new(nodes, Thresholds::for_interval(1000))
}

/// Derives and renders every panel (both Network views) at 80×24, with the popup of its
/// first row open.
fn render_all(v: &ClusterView, now: i64, th: &Theme) {
    let key = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    let panels = Console::new(v, now, false, "default").panels.len();
    for p in 0..panels {
        for toggle in [false, true] {
            let mut c = Console::new(v, now, false, "default");
            c.show(p, v);
            if toggle {
                // `v` switches the Network panel to its NIC table; elsewhere it is no key.
                c.key(key('v'), v);
            }
            c.key(enter, v);
            c.update(v, now);
            let text = render_text(&c, v, th, 80, 24);
            assert_eq!(text.lines().count(), 24);
        }
    }
}

/// A Watch delta as an agent sends it: one CPU's pinning changed, nothing else.
fn valid_delta() -> Vec<u8> {
    let before = common::cluster::profile_snapshot("misconfigured");
    let mut after = before.clone();
    let pin = after.pinning.as_mut().unwrap();
    pin.cpus[3].kernel_threads += 1;
    pin.threads += 1;
    let mut m = wire::encode_snapshot(&after, &[], false);
    m.pinning = wire::encode_pinning_changes(
        before.pinning.as_ref().unwrap(),
        after.pinning.as_ref().unwrap(),
    );
    assert!(m.pinning.as_ref().unwrap().changed_cpus_only);
    m.encode_to_vec()
}

fn valid_message() -> Vec<u8> {
    let mut snap = common::cluster::profile_snapshot("misconfigured");
    let names: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    snap.probes = Some(common::cluster::probes(
        &names,
        0,
        &[(1, 22, axon::model::ProbeState::Filtered)],
    ));
    wire::encode_snapshot(&snap, &Section::ALL, true).encode_to_vec()
}

#[test]
fn damaged_agent_messages_never_panic_the_console() {
    let th = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
    let valid = valid_message();
    let delta = valid_delta();
    let mut r = Rng(0x007a_110f_d00d_0001);
    let mut v = view();
    let mut applied = 0;
    for k in 0..3_000 {
        // Damaged whole snapshots, and damaged deltas on top of what each node holds.
        let b = r.mutate(if k % 2 == 0 { &valid } else { &delta });
        let Ok(m) = pb::NodeSnapshot::decode(b.as_slice()) else {
            continue;
        };
        let Ok(data) = wire::decode_snapshot(m) else {
            continue;
        };
        v.apply(NodeUpdate::Snapshot {
            node: k % 3,
            data: Box::new(data),
            received_ms: NOW,
        });
        applied += 1;
        if k % 50 == 0 {
            v.observe(NOW);
            render_all(&v, NOW, &th);
        }
    }
    assert!(applied > 200, "only {applied} damaged messages decoded");
    render_all(&v, NOW, &th);
}

#[test]
fn absurd_clocks_and_intervals_never_panic_the_console() {
    let th = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
    let base = common::cluster::profile_snapshot("amd-epyc-4numa");
    for (taken, success, interval, received, now) in [
        (i64::MAX, Some(i64::MIN), u64::MAX, i64::MIN, i64::MAX),
        (i64::MIN, Some(i64::MAX), u64::MAX, i64::MAX, i64::MIN),
        (0, None, 0, 0, NOW),
        (NOW, Some(NOW + 3_600_000), 1, NOW - 86_400_000, NOW),
    ] {
        let mut s = base.clone();
        s.taken_ms = taken;
        s.node.collect_interval_ms = interval;
        s.node.agent_started_ms = taken;
        for c in &mut s.collectors {
            c.last_success_ms = success;
            c.last_run_ms = taken;
            c.interval_ms = interval;
            c.deadline_ms = interval;
        }
        for mut v in [
            view(),
            ClusterView::new(
                vec![NodeView::new("n1".into(), "n1:1".into())],
                Thresholds::for_interval(i64::MAX),
            ),
        ] {
            v.apply(NodeUpdate::Snapshot {
                node: 0,
                data: Box::new(wire::DecodedSnapshot {
                    snapshot: s.clone(),
                    full: true,
                    memory: None,
                    pinning_changes_only: false,
                    probes_changes_only: false,
                    dataplane_carried: true,
                }),
                received_ms: received,
            });
            v.observe(now);
            render_all(&v, now, &th);
        }
    }
}

//! The cluster configuration under Raft: three members, each with its own redb database
//! and gRPC listener on 127.0.0.1, form a group; a change proposed to the leader is applied
//! on every member; the leader is stopped and the other two elect a new one that keeps
//! every change and takes new ones; the old leader starts again from its database and
//! catches up. A proposal to a follower names the leader; a refused change changes nothing.
//! Members speak mutual TLS with their agent certificates: a peer whose certificate is not
//! a member's cannot even complete a handshake, and a member's certificate does not let it
//! speak for another member.

use axon::agent::raft::{ClusterError, ClusterNode, MemberTls, Network};
use axon::agent::tls::{Identity, load_or_create};
use axon::model::cluster::{Command, IoStatus, Member};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn failure_domains(n: u64) -> BTreeMap<u64, Member> {
    (1..=n)
        .map(|i| {
            (
                i,
                Member {
                    name: format!("axon{i:03}"),
                    address: format!("127.0.1.{i}:14010"),
                },
            )
        })
        .collect()
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn leader_of(nodes: &[&ClusterNode]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ls: Vec<Option<u64>> = nodes.iter().map(|n| n.leader()).collect();
        if let Some(Some(l)) = ls.first()
            && ls.iter().all(|x| *x == Some(*l))
            && nodes.iter().any(|n| n.id == *l)
        {
            return *l;
        }
        assert!(Instant::now() < deadline, "no agreed leader: {ls:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_survives_losing_the_leader_and_a_restarted_member_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let ids: Vec<Arc<Identity>> = (1..=3)
        .map(|i| {
            Arc::new(
                load_or_create(&dir.path().join(format!("tls{i}")), &["127.0.0.1".into()]).unwrap(),
            )
        })
        .collect();
    let members = Arc::new(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (i as u64 + 1, id.fingerprint))
            .collect::<BTreeMap<u64, _>>(),
    );
    let tls: Vec<MemberTls> = ids
        .iter()
        .map(|i| MemberTls {
            identity: i.clone(),
            members: members.clone(),
        })
        .collect();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        nodes.push(
            ClusterNode::start(
                id,
                &dir.path().join(format!("n{id}")),
                any,
                &tls[id as usize - 1],
            )
            .await
            .unwrap(),
        );
    }
    let voters: BTreeMap<u64, String> = nodes.iter().map(|n| (n.id, n.addr.to_string())).collect();
    nodes[0].initialize(&voters).await.unwrap();
    let leader = leader_of(&nodes.iter().collect::<Vec<_>>()).await;
    let li = nodes.iter().position(|n| n.id == leader).unwrap();

    // A refused change changes nothing, and says why with the numbers.
    let e = nodes[li]
        .propose(Command::Create {
            cluster: "c1".into(),
            k: 4,
            m: 2,
            hot_spares: 1,
            members: failure_domains(6),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClusterError::Refused(w) if w.contains("needs 7 failure domains (servers), 6 given")),
        "{e}"
    );
    nodes[li]
        .propose(Command::Create {
            cluster: "c1".into(),
            k: 4,
            m: 2,
            hot_spares: 0,
            members: failure_domains(6),
        })
        .await
        .unwrap();
    for n in 1..=6 {
        nodes[li]
            .propose(Command::AddDrive {
                id: format!("drive-{n}"),
                node: n,
                path: "/dev/nvme0n1".into(),
                state: "ACTIVE".into(),
            })
            .await
            .unwrap();
    }
    // A follower takes proposals too: it hands them to the leader, whose refusals come back.
    let fi = (li + 1) % 3;
    let e = nodes[fi]
        .propose(Command::AddDrive {
            id: "drive-x".into(),
            node: 99,
            path: "/dev/nvme1n1".into(),
            state: "ACTIVE".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClusterError::Refused(w) if w == "node 99 is not a member"),
        "{e}"
    );
    let a = nodes[fi]
        .propose(Command::AddDrive {
            id: "drive-x".into(),
            node: 1,
            path: "/dev/nvme1n1".into(),
            state: "ACTIVE".into(),
        })
        .await
        .unwrap();
    assert_eq!(a.epoch, 8);
    let epoch = 8;
    for n in &nodes {
        wait_for("every member to apply the changes", || {
            n.config().epoch == epoch
        })
        .await;
    }
    assert_eq!(nodes[0].config(), nodes[2].config());

    // Stop the leader: the other two elect a new one, which has every change.
    let old = nodes.remove(li);
    let (old_id, old_addr) = (old.id, old.addr);
    old.shutdown().await;
    let new_leader = leader_of(&nodes.iter().collect::<Vec<_>>()).await;
    assert_ne!(new_leader, old_id);
    let ni = nodes.iter().position(|n| n.id == new_leader).unwrap();
    assert_eq!(nodes[ni].config().drives.len(), 7);
    nodes[ni]
        .propose(Command::SetIo(IoStatus::Started))
        .await
        .unwrap();

    // The old leader starts again from its database, at its address, and catches up.
    let back = ClusterNode::start(
        old_id,
        &dir.path().join(format!("n{old_id}")),
        old_addr,
        &tls[old_id as usize - 1],
    )
    .await
    .unwrap();
    wait_for("the restarted member to catch up", || {
        back.config().io == IoStatus::Started
    })
    .await;
    assert_eq!(back.config(), nodes[ni].config());
    assert_eq!(back.config().epoch, epoch + 1);

    assert_eq!(
        back.refused_handshakes(),
        0,
        "a member's handshake was refused"
    );

    // Each member is pinned to its own certificate: dialled as another member at the
    // address where `back` answers, a peer refuses the connection (no member counts twice).
    let other = if back.id == 2 { 3 } else { 2 };
    let mut net = Network::new(tls[0].clone());
    let mut wrong = net
        .new_client(
            other,
            &openraft::BasicNode {
                addr: back.addr.to_string(),
            },
        )
        .await;
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(99, other), None);
    let e = wrong
        .vote(vote, RPCOption::new(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("not the cluster member's expected here"),
        "a member answering at another's address was accepted: {e:?}"
    );
    // (That refusal is the client's; the member counted the aborted handshake.)
    let before = back.refused_handshakes();

    // A member speaks only for itself: node 1's certificate gets it in, but a vote it
    // sends as another member (at a term that would unseat any leader) is refused before
    // Raft sees it, and the group keeps its leader and term.
    let term_before = back.raft.metrics().borrow().current_term;
    let mut net = Network::new(tls[0].clone());
    let mut as_other = net
        .new_client(
            back.id,
            &openraft::BasicNode {
                addr: back.addr.to_string(),
            },
        )
        .await;
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(999, other), None);
    let e = as_other
        .vote(vote, RPCOption::new(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("a member speaks only for itself"),
        "node 1 voted as node {other}: {e:?}"
    );
    assert_eq!(back.raft.metrics().borrow().current_term, term_before);

    // An outsider (a certificate no member pins) cannot reach a member's Raft, even
    // trusting the members itself: the member refuses its certificate in the handshake.
    let outsider =
        Arc::new(load_or_create(&dir.path().join("tls-out"), &["127.0.0.1".into()]).unwrap());
    let mut pins = (*members).clone();
    pins.insert(99, outsider.fingerprint);
    let out_tls = MemberTls {
        identity: outsider,
        members: Arc::new(pins),
    };
    let mut net = Network::new(out_tls);
    let mut peer = net
        .new_client(
            back.id,
            &openraft::BasicNode {
                addr: back.addr.to_string(),
            },
        )
        .await;
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(99, 4), None);
    let e = peer
        .vote(vote, RPCOption::new(Duration::from_secs(5)))
        .await
        .unwrap_err();
    // TLS 1.3: the client may see the alert or just the connection closing.
    assert!(
        matches!(e, openraft::error::RPCError::Network(_)),
        "an outsider's vote reached Raft: {e:?}"
    );
    wait_for("the member to count the refused handshake", || {
        back.refused_handshakes() > before
    })
    .await;
    assert_eq!(back.config().epoch, epoch + 1);
    back.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

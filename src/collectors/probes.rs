//! Port reachability probes: TCP connect and a UDP echo that every agent answers on its
//! echo port. Bounded concurrency, a timeout per probe, and results classified as open,
//! closed (RST / ICMP port unreachable), filtered (no answer) or unreachable (ICMP
//! host/net unreachable, no route, name does not resolve).

use crate::model::ports::PortSpec;
use crate::model::probes::{ProbeReport, ProbeResult, ProbeState, Proto};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::Semaphore;

/// The datagram an agent answers on its UDP echo port, and the answer's prefix.
pub const ECHO_REQUEST: &[u8] = b"AXON-ECHO?";
pub const ECHO_REPLY: &[u8] = b"AXON-ECHO!";

#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub timeout: Duration,
    pub concurrency: usize,
    /// Bind probes to this local address (the demo's agents probe from their own
    /// 127.0.1.x so the peer sees the right source).
    pub source: Option<IpAddr>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_millis(1000),
            concurrency: 64,
            source: None,
        }
    }
}

/// A peer as configured: its name and, when it resolves, its address.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub addr: Result<IpAddr, String>,
}

/// Resolves peer names (an address stays as it is) without blocking the runtime.
pub async fn resolve(names: &[String]) -> Vec<Peer> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let addr = match name.parse::<IpAddr>() {
            Ok(a) => Ok(a),
            Err(_) => match tokio::net::lookup_host((name.as_str(), 0)).await {
                Ok(mut it) => it
                    .next()
                    .map(|s| s.ip())
                    .ok_or_else(|| format!("{name} has no address")),
                Err(e) => Err(format!("cannot resolve {name}: {e}")),
            },
        };
        out.push(Peer {
            name: name.clone(),
            addr,
        });
    }
    out
}

fn classify_connect_error(e: &io::Error) -> (ProbeState, Option<String>) {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => (ProbeState::Closed, None),
        Some(libc::ETIMEDOUT) => (ProbeState::Filtered, None),
        Some(libc::EHOSTUNREACH)
        | Some(libc::ENETUNREACH)
        | Some(libc::EHOSTDOWN)
        | Some(libc::EADDRNOTAVAIL) => (ProbeState::Unreachable, Some(e.to_string())),
        _ => (ProbeState::Unreachable, Some(e.to_string())),
    }
}

pub async fn probe_tcp(
    addr: SocketAddr,
    opts: &ProbeOptions,
) -> (ProbeState, Option<u64>, Option<String>) {
    let sock = match if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    } {
        Ok(s) => s,
        Err(e) => return (ProbeState::Unreachable, None, Some(format!("socket: {e}"))),
    };
    if let Some(src) = opts.source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        if let Err(e) = sock.bind(SocketAddr::new(src, 0)) {
            return (
                ProbeState::Unreachable,
                None,
                Some(format!("bind {src}: {e}")),
            );
        }
    }
    // Closing with RST (linger 0) keeps thousands of probes from piling up in TIME_WAIT.
    let _ = sock.set_zero_linger();
    let start = Instant::now();
    match tokio::time::timeout(opts.timeout, sock.connect(addr)).await {
        Err(_) => (ProbeState::Filtered, None, None),
        Ok(Ok(stream)) => {
            let rtt = start.elapsed().as_micros() as u64;
            drop(stream);
            (ProbeState::Open, Some(rtt.max(1)), None)
        }
        Ok(Err(e)) => {
            let rtt = start.elapsed().as_micros() as u64;
            let (state, detail) = classify_connect_error(&e);
            let rtt = (state == ProbeState::Closed).then_some(rtt.max(1));
            (state, rtt, detail)
        }
    }
}

pub async fn probe_udp_echo(
    addr: SocketAddr,
    opts: &ProbeOptions,
) -> (ProbeState, Option<u64>, Option<String>) {
    let bind = match opts.source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        Some(s) => SocketAddr::new(s, 0),
        None if addr.is_ipv4() => "0.0.0.0:0".parse().expect("literal"),
        None => "[::]:0".parse().expect("literal"),
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            return (
                ProbeState::Unreachable,
                None,
                Some(format!("bind {bind}: {e}")),
            );
        }
    };
    // A connected UDP socket receives ICMP errors as ECONNREFUSED / EHOSTUNREACH.
    if let Err(e) = sock.connect(addr).await {
        let (s, d) = classify_connect_error(&e);
        return (s, None, d);
    }
    let start = Instant::now();
    let nonce = echo_nonce();
    let mut msg = ECHO_REQUEST.to_vec();
    msg.extend_from_slice(&nonce.to_le_bytes());
    if let Err(e) = sock.send(&msg).await {
        let (s, d) = classify_connect_error(&e);
        return (s, None, d);
    }
    let mut buf = [0u8; 64];
    let deadline = start + opts.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sock.recv(&mut buf)).await {
            Err(_) => return (ProbeState::Filtered, None, None),
            Ok(Ok(n))
                if n >= ECHO_REPLY.len() + 8
                    && buf[..ECHO_REPLY.len()] == *ECHO_REPLY
                    && buf[ECHO_REPLY.len()..ECHO_REPLY.len() + 8] == nonce.to_le_bytes() =>
            {
                return (
                    ProbeState::Open,
                    Some((start.elapsed().as_micros() as u64).max(1)),
                    None,
                );
            }
            Ok(Ok(_)) => continue, // someone else's datagram: keep waiting
            Ok(Err(e)) => {
                let (s, d) = classify_connect_error(&e);
                let rtt =
                    (s == ProbeState::Closed).then(|| (start.elapsed().as_micros() as u64).max(1));
                return (s, rtt, d);
            }
        }
    }
}

/// A fresh random nonce per UDP echo probe, so a late or forged reply to another probe
/// cannot pass for this one's answer.
pub fn echo_nonce() -> u64 {
    let mut b = [0u8; 8];
    match super::sys::random_bytes(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        // getrandom only fails on kernels older than 3.17; the clock still varies.
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    }
}

/// Probes every port on every peer, at most `opts.concurrency` at a time.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

pub async fn run(peers: &[Peer], ports: &[PortSpec], opts: &ProbeOptions) -> ProbeReport {
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(peers.len() * ports.len());
    for peer in peers {
        for spec in ports {
            let peer = peer.clone();
            let spec = *spec;
            let opts = opts.clone();
            let sem = sem.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.ok();
                let (address, (state, rtt_us, detail)) = match &peer.addr {
                    Err(e) => (
                        String::new(),
                        (ProbeState::Unreachable, None, Some(e.clone())),
                    ),
                    Ok(ip) => {
                        let sa = SocketAddr::new(*ip, spec.port);
                        let r = match spec.proto {
                            Proto::Tcp => probe_tcp(sa, &opts).await,
                            Proto::Udp => probe_udp_echo(sa, &opts).await,
                        };
                        (ip.to_string(), r)
                    }
                };
                ProbeResult {
                    peer: peer.name.into(),
                    address: address.into(),
                    port: spec.port,
                    proto: spec.proto,
                    state,
                    rtt_us,
                    detail,
                }
            }));
        }
    }
    // Dropping this future (a cancelled operation) stops the probes still queued or in
    // flight instead of leaving them to run out their timeouts.
    let _abort = AbortOnDrop(tasks.iter().map(|t| t.abort_handle()).collect());
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(r) = t.await {
            results.push(r);
        }
    }
    ProbeReport::from_results(
        peers.iter().map(|p| p.name.clone()).collect(),
        results,
        start.elapsed().as_millis() as u64,
    )
}

/// Peers probed per round by default: 32 peers × the 15 continuous ports every 5 s is
/// 96 probes a second from each node, whatever the cluster's size.
pub const DEFAULT_PEERS_PER_ROUND: usize = 32;

/// Rounds until every one of `peers` peers has been probed, at `per_round` a round.
pub fn rounds_to_cover(peers: usize, per_round: usize) -> usize {
    if per_round == 0 {
        return 1;
    }
    peers.div_ceil(per_round).max(1)
}

/// Bounded continuous probing: each round probes at most `per_round` peers, the next ones
/// in a fixed rotation, so every peer is probed once within `rounds_to_cover` rounds and a
/// node's probe rate does not grow with the cluster. The rotation starts at the node's own
/// place in the peer list (or a hash of its name), so in a round every peer is probed by
/// about `per_round` others, not by everyone at once.
///
/// The book keeps the latest results of every peer, with when they were taken, and makes
/// the report the agent serves from them.
#[derive(Debug, Clone)]
pub struct ProbeBook {
    peers: Vec<String>,
    per_round: usize,
    offset: usize,
    /// Rounds started so far.
    round: u64,
    latest: Vec<Option<PeerResults>>,
}

#[derive(Debug, Clone)]
struct PeerResults {
    results: Vec<ProbeResult>,
    observed_ms: i64,
    round: u64,
}

impl ProbeBook {
    /// `peers`: every peer but this node; `per_round` 0 probes all of them every round.
    /// `me`: this node's name, for where the rotation starts.
    pub fn new(peers: Vec<String>, per_round: usize, me: &str, configured: &[String]) -> Self {
        let n = peers.len().max(1);
        let offset = match configured.iter().position(|p| p == me) {
            // Just after this node in the configured order.
            Some(i) => i % n,
            None => {
                // FNV-1a of the name: stable across restarts, spread across nodes.
                let h = me.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                (h % n as u64) as usize
            }
        };
        let latest = vec![None; peers.len()];
        ProbeBook {
            peers,
            per_round,
            offset,
            round: 0,
            latest,
        }
    }

    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// Peers per round as configured, 0 meaning all.
    pub fn per_round(&self) -> usize {
        self.per_round
    }

    /// Rounds it takes to probe every peer once.
    pub fn rounds_to_cover(&self) -> usize {
        rounds_to_cover(self.peers.len(), self.per_round)
    }

    /// Starts the next round: its number and the peers it probes (at most `per_round`,
    /// continuing the rotation).
    pub fn next_round(&mut self) -> (u64, Vec<String>) {
        let n = self.peers.len();
        let take = if self.per_round == 0 {
            n
        } else {
            self.per_round.min(n)
        };
        let start = if n == 0 {
            0
        } else {
            (self.offset as u64 + self.round.wrapping_mul(take as u64)) % n as u64
        } as usize;
        self.round += 1;
        let picked = (0..take)
            .map(|k| self.peers[(start + k) % n].clone())
            .collect();
        (self.round, picked)
    }

    /// Records a round's results, taken at `observed_ms` (agent clock): each peer's
    /// results replace the ones it had.
    pub fn record(&mut self, round: u64, results: Vec<ProbeResult>, observed_ms: i64) {
        let index: std::collections::HashMap<&str, usize> = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect();
        let mut by_peer: std::collections::BTreeMap<usize, Vec<ProbeResult>> = Default::default();
        for r in results {
            if let Some(&i) = index.get(r.peer.as_str()) {
                by_peer.entry(i).or_default().push(r);
            }
        }
        for (i, results) in by_peer {
            self.latest[i] = Some(PeerResults {
                results,
                observed_ms,
                round,
            });
        }
    }

    /// The report the agent serves: every peer's latest results and summary (with when
    /// each was probed), `round_ms` the last round's duration, and `coverage_ms` the time
    /// within which every peer is probed at a round every `interval`.
    pub fn report(&self, round_ms: u64, interval: Duration) -> ProbeReport {
        let results: Vec<ProbeResult> = self
            .latest
            .iter()
            .flatten()
            .flat_map(|p| p.results.iter().cloned())
            .collect();
        let mut rep = ProbeReport::from_results(self.peers.clone(), results, round_ms);
        for (s, l) in rep.summary.iter_mut().zip(&self.latest) {
            if let Some(l) = l {
                s.observed_ms = Some(l.observed_ms);
                s.round = l.round;
            }
        }
        rep.round = self.round;
        rep.peers_per_round = u32::try_from(self.per_round).unwrap_or(u32::MAX);
        rep.coverage_ms =
            (interval.as_millis() as u64).saturating_mul(self.rounds_to_cover() as u64);
        rep
    }
}

/// Answers echo probes until the socket fails. Replies carry the request's nonce.
pub async fn serve_echo(sock: UdpSocket) -> io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        let (n, from) = sock.recv_from(&mut buf).await?;
        if n >= ECHO_REQUEST.len() + 8 && buf[..ECHO_REQUEST.len()] == *ECHO_REQUEST {
            let mut reply = ECHO_REPLY.to_vec();
            reply.extend_from_slice(&buf[ECHO_REQUEST.len()..ECHO_REQUEST.len() + 8]);
            let _ = sock.send_to(&reply, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_echo_nonces_are_random_not_derived_from_port_and_pid() {
        let n: std::collections::HashSet<u64> = (0..1000).map(|_| echo_nonce()).collect();
        assert_eq!(n.len(), 1000, "every probe gets its own nonce");
        // Not port ^ pid with a few low bits of time: the high and low halves both vary.
        assert!(
            n.iter()
                .map(|x| x >> 32)
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 900
        );
        assert!(
            n.iter()
                .map(|x| x & 0xffff_ffff)
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 900
        );
    }

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("axon{i:04}")).collect()
    }

    fn answer(peers: &[String]) -> Vec<ProbeResult> {
        peers
            .iter()
            .flat_map(|p| {
                crate::model::ports::continuous_ports()
                    .into_iter()
                    .map(move |spec| ProbeResult {
                        peer: p.as_str().into(),
                        address: Default::default(),
                        port: spec.port,
                        proto: spec.proto,
                        state: ProbeState::Open,
                        rtt_us: Some(100),
                        detail: None,
                    })
            })
            .collect()
    }

    /// Every agent probed every peer on every continuous port each round: at 1,000 nodes
    /// ~15,000 probes a round (~3,000 a second) from each, growing with N². A round now
    /// probes at most P peers, and every peer is covered within ceil(N/P) rounds.
    #[test]
    fn probe_round_is_bounded_and_covers_every_peer_within_n_rounds() {
        let all = names(1000);
        let me = "axon0500";
        let peers: Vec<String> = all.iter().filter(|p| *p != me).cloned().collect();
        let mut book = ProbeBook::new(peers.clone(), DEFAULT_PEERS_PER_ROUND, me, &all);
        let rounds = book.rounds_to_cover();
        assert_eq!(rounds, 999usize.div_ceil(32));
        let mut seen = std::collections::HashSet::new();
        let mut incoming = std::collections::HashMap::<String, usize>::new();
        for _ in 0..rounds {
            let (round, picked) = book.next_round();
            assert!(
                picked.len() <= DEFAULT_PEERS_PER_ROUND,
                "round {round}: {}",
                picked.len()
            );
            assert!(!picked.iter().any(|p| p == me), "never probes itself");
            for p in &picked {
                *incoming.entry(p.clone()).or_default() += 1;
            }
            seen.extend(picked.iter().cloned());
            book.record(round, answer(&picked), round as i64 * 5000);
        }
        assert_eq!(seen.len(), peers.len(), "every peer within {rounds} rounds");
        // Any window of that many rounds covers everyone, not only the first.
        let mut again = std::collections::HashSet::new();
        for _ in 0..rounds {
            again.extend(book.next_round().1);
        }
        assert_eq!(again.len(), peers.len());
        // The report holds every peer's latest results, each with when it was taken.
        let rep = book.report(40, Duration::from_secs(5));
        let ports = crate::model::ports::continuous_ports().len();
        assert_eq!(rep.probes_total as usize, peers.len() * ports);
        assert_eq!(rep.coverage_ms, rounds as u64 * 5000);
        assert_eq!(rep.peers_per_round, 32);
        assert!(
            rep.summary
                .iter()
                .all(|s| s.observed_ms.is_some() && s.round > 0)
        );
        let first = rep.peer(&peers[500]).unwrap();
        assert!(first.observed_ms.unwrap() <= rounds as i64 * 5000);
        // A small cluster is probed whole every round.
        let few = names(5);
        let mut small = ProbeBook::new(few[1..].to_vec(), 32, &few[0], &few);
        assert_eq!(small.next_round().1.len(), 4);
        assert_eq!(small.rounds_to_cover(), 1);
    }

    #[test]
    fn rotations_start_where_the_node_is_so_no_peer_gets_everyone_at_once() {
        let all = names(100);
        let mut firsts = std::collections::HashMap::<String, usize>::new();
        for me in &all {
            let peers: Vec<String> = all.iter().filter(|p| *p != me).cloned().collect();
            let mut b = ProbeBook::new(peers, 10, me, &all);
            for p in b.next_round().1 {
                *firsts.entry(p).or_default() += 1;
            }
        }
        // 100 nodes × 10 peers: each peer is probed by 10 nodes in the first round.
        assert!(firsts.values().all(|&n| n == 10), "{firsts:?}");
    }

    #[tokio::test]
    async fn tcp_probe_tells_open_from_closed() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap();
        let opts = ProbeOptions::default();
        let (s, rtt, _) = probe_tcp(open, &opts).await;
        assert_eq!(s, ProbeState::Open);
        assert!(rtt.is_some());
        drop(l);
        let (s, _, _) = probe_tcp(open, &opts).await;
        assert_eq!(s, ProbeState::Closed);
    }

    #[tokio::test]
    async fn udp_echo_is_open_when_answered_and_closed_when_refused() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let server = tokio::spawn(serve_echo(sock));
        let opts = ProbeOptions {
            timeout: Duration::from_millis(500),
            ..Default::default()
        };
        assert_eq!(probe_udp_echo(addr, &opts).await.0, ProbeState::Open);
        server.abort();
        let _ = server.await;
        // Nobody bound: loopback answers ICMP port unreachable.
        assert_eq!(probe_udp_echo(addr, &opts).await.0, ProbeState::Closed);
    }

    #[tokio::test]
    async fn unresolvable_peers_are_unreachable_with_the_reason() {
        let peers = resolve(&["no-such-host.invalid".to_string()]).await;
        let r = run(
            &peers,
            &[PortSpec {
                port: 22,
                proto: Proto::Tcp,
            }],
            &ProbeOptions::default(),
        )
        .await;
        assert_eq!(r.results[0].state, ProbeState::Unreachable);
        assert!(
            r.results[0]
                .detail
                .as_deref()
                .unwrap()
                .contains("no-such-host.invalid")
        );
    }

    #[tokio::test]
    async fn silent_udp_port_is_filtered() {
        // A bound socket that never answers behaves like a firewall that drops.
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let opts = ProbeOptions {
            timeout: Duration::from_millis(200),
            ..Default::default()
        };
        assert_eq!(probe_udp_echo(addr, &opts).await.0, ProbeState::Filtered);
        drop(sock);
    }
}

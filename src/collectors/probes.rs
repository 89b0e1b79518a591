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
                    peer: peer.name,
                    address,
                    port: spec.port,
                    proto: spec.proto,
                    state,
                    rtt_us,
                    detail,
                }
            }));
        }
    }
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

//! One task per node keeps a Watch stream open: connect with a timeout, read snapshots,
//! treat a silent stream as stalled, and reconnect with capped exponential backoff. Each
//! task only decodes and forwards; the owner of the `ClusterView` applies the updates, so
//! nothing here can block the console.

use super::client::error_chain;
use super::inventory::{Inventory, InventoryError, NodeSpec};
use super::tls::Security;
use super::view::{ClusterView, Failure, FailureKind, NodeUpdate, NodeView, Thresholds};
use super::watch::{self, WatchError};
use crate::clock::now_ms;
use crate::wire::{self, pb};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// The agents' collection interval; Watch asks for at most one message per interval.
    pub interval: Duration,
    pub connect_timeout: Duration,
    /// First retry delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Section names to watch (empty: all).
    pub sections: Vec<String>,
    /// Also fetch the data-plane cluster's configuration when a member reports a new one
    /// (the console's Stripes panel).
    pub cluster: bool,
}

impl FollowOptions {
    pub fn for_interval(interval: Duration) -> Self {
        FollowOptions {
            interval,
            connect_timeout: Duration::from_secs(2).max(interval),
            backoff_min: Duration::from_millis(250),
            // Capped at one interval (1.25 with jitter) so a node that comes back is UP
            // within three; reconnecting is a TCP handshake, cheap even for 1,000 nodes.
            backoff_max: interval.max(Duration::from_millis(500)),
            sections: Vec::new(),
            cluster: false,
        }
    }

    /// No message for this long and the stream is considered stalled.
    pub fn stall_timeout(&self) -> Duration {
        self.interval * 3 + Duration::from_millis(500)
    }
}

fn classify_status(s: &tonic::Status) -> FailureKind {
    use tonic::Code::*;
    match s.code() {
        Unauthenticated | PermissionDenied => FailureKind::Auth,
        DeadlineExceeded => FailureKind::Timeout,
        Internal | Unknown | Unimplemented | DataLoss | InvalidArgument => FailureKind::Protocol,
        _ => classify_text(&error_chain(s)),
    }
}

/// Classifies a transport error by its text (hyper and h2 give no typed cause).
fn classify_text(t: &str) -> FailureKind {
    let t = t.to_lowercase();
    if t.contains("timed out") || t.contains("timeout") || t.contains("deadline") {
        FailureKind::Timeout
    } else if t.contains("http2")
        || t.contains("frame")
        || t.contains("protocol")
        || t.contains("invalid")
    {
        FailureKind::Protocol
    } else {
        FailureKind::Connection
    }
}

fn failure(kind: FailureKind, message: String) -> Failure {
    Failure {
        kind,
        message,
        at_ms: now_ms(),
    }
}

/// How far a session got before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Not even the TCP handshake completed: nothing answered.
    Nothing,
    /// Connected (or may have), but no snapshot arrived.
    Connected,
    /// At least one snapshot arrived.
    Data,
}

/// Runs one connection: returns how it ended and how far it got.
async fn session(
    node: usize,
    spec: &NodeSpec,
    token: Option<String>,
    security: &Security,
    opts: &FollowOptions,
    tx: &mpsc::Sender<NodeUpdate>,
) -> (Failure, Reached) {
    let req = pb::WatchRequest {
        sections: opts.sections.clone(),
        min_interval_ms: opts.interval.as_millis() as u32,
    };
    let endpoint = spec.endpoint();
    let plaintext = matches!(security, Security::Plaintext);
    // Boxed, as are the failure paths below: connecting takes far more state than
    // following does, and the task lives as long as the console.
    let opened = Box::pin(watch::open(
        &endpoint,
        token.as_deref(),
        security,
        &req,
        opts.connect_timeout,
    ))
    .await;
    let mut stream = match opened {
        Ok(s) => s,
        Err(e) => {
            return Box::pin(open_failure(&endpoint, e, plaintext, opts.connect_timeout)).await;
        }
    };
    let mut reached = Reached::Connected;
    loop {
        // The message is decoded and boxed before the hand-over awaits: nothing the size
        // of a snapshot stays in the task's state across an await (one task per node).
        let got = tokio::time::timeout(opts.stall_timeout(), stream.message()).await;
        let data = match got {
            Err(_) => {
                return (
                    failure(
                        FailureKind::Timeout,
                        format!(
                            "stream silent for {} ms: agent not responding",
                            opts.stall_timeout().as_millis()
                        ),
                    ),
                    reached,
                );
            }
            Ok(Ok(None)) => {
                return (
                    failure(FailureKind::Connection, "agent closed the stream".into()),
                    reached,
                );
            }
            Ok(Err(e)) => return (stream_failure(e, plaintext), reached),
            Ok(Ok(Some(m))) => match wire::decode_snapshot(m) {
                Ok(data) => Box::new(data),
                Err(e) => {
                    return (
                        failure(FailureKind::Protocol, format!("agent sent {e}")),
                        reached,
                    );
                }
            },
        };
        reached = Reached::Data;
        let update = NodeUpdate::Snapshot {
            node,
            data,
            received_ms: now_ms(),
        };
        if tx.send(update).await.is_err() {
            return (
                failure(FailureKind::Connection, "console closed".into()),
                reached,
            );
        }
    }
}

/// A failure while reading an open stream.
fn stream_failure(e: WatchError, plaintext: bool) -> Failure {
    match e {
        WatchError::Status(s) => failure(classify_status(&s), status_text(&s)),
        WatchError::Protocol(m) => failure(FailureKind::Protocol, format!("agent sent {m}")),
        other => {
            let mut text = other.to_string();
            if plaintext {
                text = super::tls::explain_plaintext(&text);
            }
            failure(classify_text(&text), text)
        }
    }
}

/// Why opening the stream failed, and how far it got.
async fn open_failure(
    endpoint: &str,
    e: WatchError,
    plaintext: bool,
    timeout: Duration,
) -> (Failure, Reached) {
    let ms = timeout.as_millis();
    match e {
        WatchError::ConnectTimeout => (
            failure(
                FailureKind::Connection,
                format!(
                    "{endpoint}: no answer to a TCP connect within {ms} ms: host down, unreachable, or the port is filtered"
                ),
            ),
            Reached::Nothing,
        ),
        WatchError::Connect(e) => (
            failure(FailureKind::Connection, format!("{endpoint}: {e}")),
            Reached::Nothing,
        ),
        WatchError::Status(s) => {
            let mut text = format!("{endpoint}: {}", status_text(&s));
            if plaintext {
                text = super::tls::explain_plaintext(&text);
            }
            (failure(classify_status(&s), text), Reached::Connected)
        }
        WatchError::Handshake(m) | WatchError::Transport(m) | WatchError::Protocol(m) => {
            // Something answered that may not be an agent: say what it is.
            if plaintext {
                if let Err(what) = sniff_http2(endpoint, timeout).await {
                    return (failure(FailureKind::Protocol, what), Reached::Connected);
                }
            }
            let mut text = format!("{endpoint}: {m}");
            if plaintext {
                text = super::tls::explain_plaintext(&text);
            }
            let kind = if m.contains("agent hung") {
                FailureKind::Timeout
            } else {
                classify_text(&text)
            };
            (failure(kind, text), Reached::Connected)
        }
    }
}

fn status_text(s: &tonic::Status) -> String {
    let code = format!("{:?}", s.code());
    let msg = s.message();
    // Transport failures carry their cause (an HTTP/2 error, a reset) as the source.
    let cause = std::error::Error::source(s)
        .map(error_chain)
        .filter(|c| !msg.contains(c.as_str()));
    match (msg.is_empty(), cause) {
        (true, None) => code,
        (true, Some(c)) => format!("{code}: {c}"),
        (false, None) => format!("{code}: {msg}"),
        (false, Some(c)) => format!("{code}: {msg}: {c}"),
    }
}

/// Connects and speaks the HTTP/2 preface: an agent (any gRPC server) answers with a
/// SETTINGS frame. Err names what answered instead; a refused or silent port is Ok (that
/// is a connection problem, already reported as such).
pub async fn sniff_http2(endpoint: &str, timeout: Duration) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) =
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(endpoint)).await
    else {
        return Ok(());
    };
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS frame
    if s.write_all(&hello).await.is_err() {
        return Ok(());
    }
    let mut buf = [0u8; 64];
    let n = match tokio::time::timeout(timeout, s.read(&mut buf)).await {
        Ok(Ok(n)) => n,
        _ => return Ok(()),
    };
    if n == 0 || (n >= 4 && buf[3] == 4) {
        return Ok(());
    }
    let text: String = String::from_utf8_lossy(&buf[..n])
        .chars()
        .take(40)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Err(format!(
        "{endpoint} answers, but not with gRPC (it sent `{}`): is the port right?",
        text.trim()
    ))
}

/// Small xorshift so retries of many nodes do not line up.
fn jitter(seed: &mut u64, d: Duration) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let f = 0.75 + (*seed % 1000) as f64 / 2000.0; // 0.75 .. 1.25
    d.mul_f64(f)
}

pub async fn follow_node(
    node: usize,
    spec: NodeSpec,
    token: Option<String>,
    security: Security,
    opts: FollowOptions,
    tx: mpsc::Sender<NodeUpdate>,
) {
    let mut backoff = opts.backoff_min;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (node as u64 + 1).wrapping_mul(0x1000_0000_01B3);
    loop {
        let (mut f, reached) = session(node, &spec, token.clone(), &security, &opts, &tx).await;
        // Something may be listening that is not an agent; say so if it is. (Not when the
        // TCP connect itself failed: then nothing listens, and a silent host would cost
        // another full timeout.)
        // (Not over TLS either: a TLS agent answers a clear-text preface with an alert.)
        if f.kind == FailureKind::Connection
            && reached == Reached::Connected
            && matches!(security, Security::Plaintext)
        {
            if let Err(what) = Box::pin(sniff_http2(&spec.endpoint(), opts.connect_timeout)).await {
                f = failure(FailureKind::Protocol, what);
            }
        }
        if tx
            .send(NodeUpdate::Failed { node, failure: f })
            .await
            .is_err()
        {
            return;
        }
        if reached == Reached::Data {
            backoff = opts.backoff_min;
        }
        tokio::time::sleep(jitter(&mut seed, backoff)).await;
        backoff = (backoff * 2).min(opts.backoff_max);
    }
}

/// Fetches the data-plane cluster's configuration from node `node`'s agent
/// (`DataplaneService.GetDataplane` with the config) and hands it to the view.
async fn fetch_config(
    spec: NodeSpec,
    token: Option<String>,
    security: Security,
    tx: mpsc::Sender<NodeUpdate>,
) {
    let timeout = Duration::from_secs(5);
    let Ok(mut c) = super::client::connect_node(&spec, token, security, timeout).await else {
        return;
    };
    let req = pb::GetDataplaneRequest { config: true };
    let Ok(Ok(r)) = tokio::time::timeout(timeout, c.dataplane.get_dataplane(req)).await else {
        return;
    };
    let Some(config) = r.into_inner().config else {
        return;
    };
    match crate::wire::decode_config(config) {
        Ok(config) => {
            let _ = tx
                .send(NodeUpdate::Config {
                    config: Box::new(config),
                })
                .await;
        }
        Err(e) => tracing::warn!("{}: the data-plane configuration: {e}", spec.name),
    }
}

/// The next node after `from` (round the nodes) whose data-plane report is at `epoch` or
/// newer: where to fetch the configuration after `from` gave nothing.
fn next_source(epochs: &[Option<u64>], from: usize, epoch: u64) -> Option<usize> {
    let n = epochs.len();
    (1..=n)
        .map(|d| (from + d) % n)
        .find(|&i| epochs[i].is_some_and(|e| e >= epoch))
}

/// The console's fleet: the view, and the tasks feeding it.
pub struct Fleet {
    pub view: ClusterView,
    /// The inventory entry and token of each node, in view order.
    pub specs: Vec<NodeSpec>,
    pub tokens: Vec<Option<String>>,
    /// How each node's certificate is verified (or plain text with --insecure).
    pub securities: Vec<Security>,
    rx: mpsc::Receiver<NodeUpdate>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// For the configuration fetches (`FollowOptions::cluster`).
    tx: Option<mpsc::Sender<NodeUpdate>>,
    /// The epoch being fetched and since when (one fetch at a time; retried after 5 s).
    /// The fetch in flight: (epoch, when, from which node).
    fetching: Option<(u64, std::time::Instant, usize)>,
}

impl Fleet {
    /// Starts one follower per inventory node. Token files are read here, so a missing
    /// one is an error before anything connects.
    pub fn start(inv: &Inventory, opts: FollowOptions) -> Result<Fleet, InventoryError> {
        let tokens: HashMap<PathBuf, String> = inv.load_tokens()?;
        // Bounded: when the console is behind, followers wait (and TCP flow control holds
        // the agents) instead of decoded snapshots piling up in memory.
        let (tx, rx) = mpsc::channel(256);
        let nodes = inv
            .nodes
            .iter()
            .map(|n| NodeView::new(n.name.clone(), n.endpoint()))
            .collect();
        let view = ClusterView::new(
            nodes,
            Thresholds::for_interval(opts.interval.as_millis() as i64),
        );
        let node_tokens: Vec<Option<String>> = inv
            .nodes
            .iter()
            .map(|spec| {
                spec.token_file
                    .as_ref()
                    .and_then(|p| tokens.get(p).cloned())
            })
            .collect();
        let securities: Vec<Security> = inv
            .nodes
            .iter()
            .map(|spec| inv.security(spec))
            .collect::<Result<_, _>>()?;
        let tasks: Vec<tokio::task::JoinHandle<()>> = inv
            .nodes
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                tokio::spawn(follow_node(
                    i,
                    spec.clone(),
                    node_tokens[i].clone(),
                    securities[i].clone(),
                    opts.clone(),
                    tx.clone(),
                ))
            })
            .collect();
        Ok(Fleet {
            view,
            specs: inv.nodes.clone(),
            tokens: node_tokens,
            securities,
            rx,
            tasks,
            tx: opts.cluster.then_some(tx),
            fetching: None,
        })
    }

    /// Applies every update already waiting; returns how many.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Ok(u) = self.rx.try_recv() {
            self.view.apply(u);
            n += 1;
        }
        if n > 0 {
            self.fetch_config();
        }
        n
    }

    /// Waits for the next update and applies it (with everything queued behind it).
    pub async fn changed(&mut self) -> usize {
        match self.rx.recv().await {
            Some(u) => {
                self.view.apply(u);
                let n = 1 + self.drain();
                self.fetch_config();
                n
            }
            None => std::future::pending().await,
        }
    }

    /// Fetches the data-plane configuration when a member reports a newer one than the
    /// view holds: from that member, one fetch at a time (whatever the number of nodes).
    fn fetch_config(&mut self) {
        let Some(tx) = &self.tx else {
            return;
        };
        let Some((node, epoch)) = self.view.wanted_config() else {
            self.fetching = None;
            return;
        };
        let mut node = node;
        if let Some((e, since, from)) = self.fetching {
            if e >= epoch && since.elapsed() < Duration::from_secs(5) {
                return;
            }
            // The last fetch of this epoch got nothing in 5 s: ask the next member that
            // reports it (the one asked may be away or failing), round the nodes.
            if e >= epoch {
                let epochs: Vec<Option<u64>> = self
                    .view
                    .nodes
                    .iter()
                    .map(|n| n.cluster.as_ref().map(|b| b.epoch))
                    .collect();
                node = next_source(&epochs, from, epoch).unwrap_or(node);
            }
        }
        self.fetching = Some((epoch, std::time::Instant::now(), node));
        let Some(spec) = self.specs.get(node) else {
            return;
        };
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(tokio::spawn(fetch_config(
            spec.clone(),
            self.tokens[node].clone(),
            self.securities[node].clone(),
            tx.clone(),
        )));
    }

    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn silent_connect(addr: &str, t: Duration) -> (Failure, Reached) {
        let req = pb::WatchRequest::default();
        match watch::open(addr, None, &Security::Plaintext, &req, t).await {
            Ok(_) => panic!("{addr} opened a Watch stream"),
            Err(e) => open_failure(addr, e, true, t).await,
        }
    }

    /// The console holds one `follow_node` task per node for as long as it runs (1,000
    /// and more): the connection set-up's futures are boxed for their duration, so the
    /// task's own state stays small.
    #[test]
    fn a_node_follower_task_stays_small() {
        let (tx, _rx) = mpsc::channel(1);
        let spec = NodeSpec {
            name: "n1".into(),
            address: "127.0.0.1".into(),
            port: 1,
            metrics_port: 2,
            token_file: None,
            fingerprint: None,
            ca_file: None,
        };
        let f = follow_node(
            0,
            spec,
            None,
            Security::Plaintext,
            FollowOptions::for_interval(Duration::from_secs(1)),
            tx,
        );
        let size = std::mem::size_of_val(&f);
        eprintln!("follow_node future: {size} bytes");
        // 7,488 bytes in a test build before the set-up was boxed and no snapshot was
        // held across an await; 5,352 after.
        assert!(size <= 6_000, "{size} bytes");
    }

    #[test]
    fn a_failed_configuration_fetch_moves_on_to_the_next_member_at_that_epoch() {
        let epochs = [Some(3), None, Some(2), Some(4), Some(3)];
        assert_eq!(next_source(&epochs, 0, 3), Some(3));
        assert_eq!(next_source(&epochs, 3, 3), Some(4));
        // Round the nodes, back to the start.
        assert_eq!(next_source(&epochs, 4, 3), Some(0));
        // Only the one asked has it: ask it again.
        assert_eq!(next_source(&epochs, 3, 4), Some(3));
        assert_eq!(next_source(&epochs, 0, 9), None);
        assert_eq!(next_source(&[], 0, 1), None);
    }

    #[tokio::test]
    async fn a_silent_port_says_whether_the_host_or_the_agent_is_gone() {
        let t = Duration::from_millis(300);
        // Takes the TCP handshake (the kernel does) but never speaks: the agent is hung.
        let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (f, reached) = silent_connect(&hung.local_addr().unwrap().to_string(), t).await;
        assert_eq!(reached, Reached::Connected);
        assert_eq!(f.kind, FailureKind::Timeout, "{}", f.message);
        assert!(f.message.contains("agent hung"), "{}", f.message);

        // A full accept queue drops SYNs, as a powered-off host or a DROP rule does.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let black = sock.listen(0).unwrap();
        let addr = black.local_addr().unwrap();
        let mut held = Vec::new();
        loop {
            match tokio::time::timeout(t, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(s)) => held.push(s),
                _ => break,
            }
            assert!(held.len() < 64, "the accept queue never filled");
        }
        let (f, reached) = silent_connect(&addr.to_string(), t).await;
        assert_eq!(reached, Reached::Nothing, "nothing to sniff");
        assert_eq!(f.kind, FailureKind::Connection, "{}", f.message);
        assert!(
            f.message.contains("no answer to a TCP connect"),
            "{}",
            f.message
        );

        // Nothing listening: refused, at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (f, _) = silent_connect(&format!("127.0.0.1:{port}"), t).await;
        assert_eq!(f.kind, FailureKind::Connection);
        assert!(
            f.message.to_lowercase().contains("refused"),
            "{}",
            f.message
        );
        drop((hung, black, held));
    }
}

//! Listeners that hold under floods. Every accepted connection passes through here before
//! gRPC or HTTP sees it:
//!
//! - a cap on open connections per listener and per peer address (over the cap the
//!   connection is accepted and closed at once, so the kernel backlog never fills and the
//!   refusal is immediate);
//! - TCP_NODELAY on every accepted socket (`Server::builder().tcp_nodelay` only reaches
//!   sockets tonic accepts itself);
//! - the TLS handshake in its own task under a deadline, so a silent client holds a slot
//!   for at most `handshake_timeout` and never blocks the accept loop;
//! - an idle timeout: a connection from which nothing has been read for `idle_timeout`,
//!   or to which nothing could be written for as long, is closed (gRPC clients answer the
//!   server's HTTP/2 keepalive pings, so a live client is never idle that long);
//! - back-off on accept errors (EMFILE at the fd limit), so the loop sleeps instead of
//!   spinning;
//! - counters of all of it for `/metrics`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, TcpConnectInfo, UdsConnectInfo};

/// The limits of the agent's listeners. Defaults suit a node followed by a few consoles
/// and scraped by a few Prometheus servers; all are flags of `axon agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open gRPC connections on TCP, in total.
    pub max_connections: usize,
    /// Open connections from one peer address (gRPC and `/metrics` each).
    pub max_connections_per_ip: usize,
    /// Concurrent HTTP/2 streams (calls) on one gRPC connection.
    pub max_streams_per_connection: u32,
    /// Watch streams open at once per principal (reader token, admin token, socket uid).
    pub max_watch_per_principal: usize,
    /// Open `/metrics` connections, in total.
    pub max_metrics_connections: usize,
    /// TLS handshake, and for `/metrics` the request headers, must arrive within this.
    pub handshake_timeout: Duration,
    /// A connection that sends nothing (and takes nothing) for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_ip: 64,
            max_streams_per_connection: 64,
            max_watch_per_principal: 64,
            max_metrics_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What one listener has seen. Gauges and counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub open: AtomicU64,
    pub rejected_total_limit: AtomicU64,
    pub rejected_ip_limit: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub closed_idle: AtomicU64,
    pub accept_errors: AtomicU64,
}

/// The agent's server-side counters, and the signal that closes every connection.
#[derive(Debug)]
pub struct ServerStats {
    pub grpc_tcp: ListenerStats,
    pub grpc_unix: ListenerStats,
    pub metrics: ListenerStats,
    pub watch_open: AtomicU64,
    pub watch_rejected: AtomicU64,
    /// Whether gRPC on TCP is TLS (0 when started with --insecure).
    pub grpc_tls: AtomicU64,
    /// Set by `Agent::shutdown`: accept loops stop and every open connection fails its
    /// next read or write (tonic and hyper run connections in tasks of their own, which
    /// aborting the server task does not reach).
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            grpc_tcp: Default::default(),
            grpc_unix: Default::default(),
            metrics: Default::default(),
            watch_open: Default::default(),
            watch_rejected: Default::default(),
            grpc_tls: Default::default(),
            shutdown: tokio::sync::watch::channel(false).0,
        }
    }
}

impl ServerStats {
    /// Closes every connection of every listener and stops accepting.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Resolves once the agent shuts down.
fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let _ = rx.wait_for(|v| *v).await;
    })
}

impl ServerStats {
    /// Adds the server's metrics to a scrape's registry.
    pub fn register(&self, reg: &mut prometheus_client::registry::Registry) {
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::family::Family;
        use prometheus_client::metrics::gauge::Gauge;
        type L = Vec<(&'static str, String)>;
        let open = Family::<L, Gauge>::default();
        let metrics_open = Gauge::<i64>::default();
        let rejected = Family::<L, prometheus_client::metrics::counter::Counter>::default();
        let accept_errors = Family::<L, prometheus_client::metrics::counter::Counter>::default();
        for (name, s) in [
            ("grpc_tcp", &self.grpc_tcp),
            ("grpc_unix", &self.grpc_unix),
            ("metrics", &self.metrics),
        ] {
            let lbl = |extra: Option<&'static str>| {
                let mut v: L = vec![("listener", name.to_string())];
                if let Some(r) = extra {
                    v.push(("reason", r.to_string()));
                }
                v
            };
            if name == "metrics" {
                metrics_open.set(s.open.load(Relaxed) as i64);
            } else {
                open.get_or_create(&lbl(None))
                    .set(s.open.load(Relaxed) as i64);
            }
            for (reason, c) in [
                ("connection_limit", &s.rejected_total_limit),
                ("peer_limit", &s.rejected_ip_limit),
                ("handshake_timeout", &s.handshake_timeouts),
                ("handshake_failed", &s.handshake_failures),
                ("idle_timeout", &s.closed_idle),
            ] {
                rejected
                    .get_or_create(&lbl(Some(reason)))
                    .inc_by(c.load(Relaxed));
            }
            accept_errors
                .get_or_create(&lbl(None))
                .inc_by(s.accept_errors.load(Relaxed));
        }
        reg.register(
            "grpc_connections",
            "Open gRPC connections per listener (grpc_tcp, grpc_unix)",
            open,
        );
        reg.register(
            "metrics_connections",
            "Open /metrics connections",
            metrics_open,
        );
        reg.register(
            "connections_rejected",
            "Connections closed by a limit: connection_limit, peer_limit (per address), handshake_timeout, handshake_failed (includes port probes that connect and close), idle_timeout",
            rejected,
        );
        reg.register(
            "accept_errors",
            "accept() failures (EMFILE at the fd limit, ...); the listener backs off after each",
            accept_errors,
        );
        let watch = Gauge::<i64>::default();
        watch.set(self.watch_open.load(Relaxed) as i64);
        reg.register("grpc_watch_streams", "Open Watch streams", watch);
        reg.register(
            "grpc_watch_rejected",
            "Watch calls refused because the principal already had max-watch-per-principal streams",
            ConstCounter::new(self.watch_rejected.load(Relaxed)),
        );
        let tls = Gauge::<i64>::default();
        tls.set(self.grpc_tls.load(Relaxed) as i64);
        reg.register(
            "grpc_tls",
            "1 when gRPC on TCP requires TLS, 0 when the agent runs with --insecure",
            tls,
        );
    }
}

/// Counts open connections in total and per peer address.
struct Caps {
    total: usize,
    per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    stats: Arc<ServerStats>,
    which: fn(&ServerStats) -> &ListenerStats,
}

/// One open connection's place under the caps; given back when the connection drops.
pub struct Permit {
    caps: Arc<Caps>,
    ip: Option<IpAddr>,
}

impl Caps {
    fn stats(&self) -> &ListenerStats {
        (self.which)(&self.stats)
    }

    fn try_acquire(self: &Arc<Self>, ip: Option<IpAddr>) -> Option<Permit> {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 >= self.total {
            self.stats().rejected_total_limit.fetch_add(1, Relaxed);
            return None;
        }
        if let Some(ip) = ip {
            let n = g.1.entry(ip).or_insert(0);
            if *n >= self.per_ip {
                self.stats().rejected_ip_limit.fetch_add(1, Relaxed);
                return None;
            }
            *n += 1;
        }
        g.0 += 1;
        self.stats().open.store(g.0 as u64, Relaxed);
        Some(Permit {
            caps: self.clone(),
            ip,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut g = self.caps.open.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(n) = g.1.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    g.1.remove(&ip);
                }
            }
        }
        self.caps.stats().open.store(g.0 as u64, Relaxed);
    }
}

/// A TCP stream, in TLS or not.
pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, b),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// An accepted connection under the listener's limits: holds its permit, and fails with
/// `TimedOut` when the peer has been idle (nothing read, or a write stalled) too long.
pub struct Conn<IO, CI> {
    io: IO,
    info: CI,
    idle: Duration,
    read_deadline: Pin<Box<Sleep>>,
    write_deadline: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
    /// Resolves when the agent shuts down; the connection then fails.
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Bytes arrived since the last write: a request is (partly) in. Tells a slow
    /// request (slowloris) from an idle keep-alive connection when hyper times out.
    request_started: Arc<std::sync::atomic::AtomicBool>,
    _permit: Permit,
}

impl<IO, CI> Conn<IO, CI> {
    fn new(
        io: IO,
        info: CI,
        idle: Duration,
        permit: Permit,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Conn {
            io,
            info,
            idle,
            read_deadline: Box::pin(tokio::time::sleep(idle)),
            write_deadline: None,
            timed_out: false,
            stop: stopped(stop),
            request_started: Default::default(),
            _permit: permit,
        }
    }

    fn stop_error(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.stop.as_mut().poll(cx).is_ready().then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the agent is shutting down",
            )
        })
    }

    fn idle_error(&mut self) -> io::Error {
        if !self.timed_out {
            self.timed_out = true;
            self._permit.caps.stats().closed_idle.fetch_add(1, Relaxed);
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connection idle for {:?}", self.idle),
        )
    }
}

impl<IO: AsyncRead + Unpin, CI: Unpin> AsyncRead for Conn<IO, CI> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.stop_error(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let at = Instant::now() + this.idle;
                    this.read_deadline.as_mut().reset(at);
                    this.request_started.store(true, Relaxed);
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                ready!(this.read_deadline.as_mut().poll(cx));
                Poll::Ready(Err(this.idle_error()))
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin, CI: Unpin> Conn<IO, CI> {
    /// Runs a write-side poll; a write that stays blocked for `idle` fails the connection.
    fn guard_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(Pin<&mut IO>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if let Some(e) = self.stop_error(cx) {
            return Poll::Ready(Err(e));
        }
        match f(Pin::new(&mut self.io), cx) {
            Poll::Ready(r) => {
                self.write_deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let idle = self.idle;
                let d = self
                    .write_deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(d.as_mut().poll(cx));
                Poll::Ready(Err(self.idle_error()))
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin, CI: Unpin> AsyncWrite for Conn<IO, CI> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.guard_write(cx, |io, cx| io.poll_write(cx, b));
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.request_started.store(false, Relaxed);
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard_write(cx, |io, cx| io.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.guard_write(cx, |io, cx| io.poll_write_vectored(cx, bufs));
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.request_started.store(false, Relaxed);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO, CI: Clone + Send + Sync + 'static> Connected for Conn<IO, CI> {
    type ConnectInfo = CI;
    fn connect_info(&self) -> CI {
        self.info.clone()
    }
}

pub type TcpConn = Conn<MaybeTls, TcpConnectInfo>;
pub type UnixConn = Conn<UnixStream, UdsConnectInfo>;

/// A stream of accepted connections, fed by an accept task.
pub type Incoming<C> = tokio_stream::wrappers::ReceiverStream<io::Result<C>>;

/// Which listener, for its counters and its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    GrpcTcp,
    GrpcUnix,
    Metrics,
}

impl Which {
    fn stats(self) -> fn(&ServerStats) -> &ListenerStats {
        match self {
            Which::GrpcTcp => |s| &s.grpc_tcp,
            Which::GrpcUnix => |s| &s.grpc_unix,
            Which::Metrics => |s| &s.metrics,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Which::GrpcTcp => "gRPC",
            Which::GrpcUnix => "control socket",
            Which::Metrics => "metrics",
        }
    }
}

/// Errors of one accepted socket, not of the listener: the next accept is fine.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Back-off after a listener-level accept error: 10 ms doubling to 1 s, reset by the
/// next successful accept. Logs the first error of a run and its end.
struct Backoff {
    which: Which,
    delay: Option<Duration>,
    errors_in_run: u64,
}

impl Backoff {
    fn new(which: Which) -> Self {
        Backoff {
            which,
            delay: None,
            errors_in_run: 0,
        }
    }

    async fn error(&mut self, e: &io::Error, stats: &ListenerStats) {
        stats.accept_errors.fetch_add(1, Relaxed);
        self.errors_in_run += 1;
        let d = match self.delay {
            None => {
                let hint = match e.raw_os_error() {
                    Some(libc::EMFILE) | Some(libc::ENFILE) => {
                        " — the agent is at its file-descriptor limit: raise LimitNOFILE (systemd) or ulimit -n, or lower --max-connections"
                    }
                    _ => "",
                };
                tracing::warn!(
                    "axon: {} listener: accept failed: {e}{hint}; backing off",
                    self.which.name()
                );
                Duration::from_millis(10)
            }
            Some(d) => (d * 2).min(Duration::from_secs(1)),
        };
        self.delay = Some(d);
        tokio::time::sleep(d).await;
    }

    fn ok(&mut self) {
        if self.delay.take().is_some() {
            tracing::info!(
                "axon: {} listener: accepting again after {} failed accepts",
                self.which.name(),
                self.errors_in_run
            );
        }
        self.errors_in_run = 0;
    }
}

/// The next accept, or None when the accept loop should end: the agent shuts down, or
/// the server that takes its connections is gone.
async fn accept_or_stop<T, C>(
    accept: impl Future<Output = io::Result<T>>,
    tx: &mpsc::Sender<io::Result<C>>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<io::Result<T>> {
    if tx.is_closed() || *stop.borrow() {
        return None;
    }
    tokio::select! {
        r = accept => Some(r),
        _ = stop.wait_for(|v| *v) => None,
    }
}

/// Accepts TCP connections under `limits`, does the TLS handshake when `tls` is given,
/// and yields the connections. The returned task runs the accept loop.
pub fn tcp_incoming(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    which: Which,
    limits: &Limits,
    stats: Arc<ServerStats>,
) -> (Incoming<TcpConn>, tokio::task::JoinHandle<()>) {
    tcp_incoming_with(listener, tls, which, limits, stats, |info, _| info)
}

/// The fingerprint of the certificate a TLS client presented, if any.
pub fn peer_fingerprint(
    s: &tokio_rustls::server::TlsStream<TcpStream>,
) -> Option<crate::wire::tls::Fingerprint> {
    s.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| crate::wire::tls::Fingerprint::of_der(c))
}

/// As `tcp_incoming`, with each connection's information made by `info` from its
/// addresses and the fingerprint of the client's certificate (mutual TLS), which every
/// request on it then carries in its extensions.
pub fn tcp_incoming_with<CI: Clone + Send + Sync + 'static>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    which: Which,
    limits: &Limits,
    stats: Arc<ServerStats>,
    info: fn(TcpConnectInfo, Option<crate::wire::tls::Fingerprint>) -> CI,
) -> (Incoming<Conn<MaybeTls, CI>>, tokio::task::JoinHandle<()>) {
    let make = info;
    let total = match which {
        Which::Metrics => limits.max_metrics_connections,
        _ => limits.max_connections,
    };
    let mut stop = stats.stopping();
    let caps = Arc::new(Caps {
        total,
        per_ip: limits.max_connections_per_ip,
        open: Mutex::new((0, HashMap::new())),
        stats,
        which: which.stats(),
    });
    let (tx, rx) = mpsc::channel::<io::Result<Conn<MaybeTls, CI>>>(64);
    let handshake = limits.handshake_timeout;
    let idle = limits.idle_timeout;
    let task = tokio::spawn(async move {
        let mut backoff = Backoff::new(which);
        loop {
            let Some(accepted) = accept_or_stop(listener.accept(), &tx, &mut stop).await else {
                return;
            };
            let (sock, peer) = match accepted {
                Ok(x) => x,
                Err(e) if per_connection(&e) => continue,
                Err(e) => {
                    backoff.error(&e, caps.stats()).await;
                    continue;
                }
            };
            backoff.ok();
            let Some(permit) = caps.try_acquire(Some(peer.ip())) else {
                drop(sock);
                continue;
            };
            let _ = sock.set_nodelay(true);
            let info = TcpConnectInfo {
                local_addr: sock.local_addr().ok(),
                remote_addr: Some(peer),
            };
            match &tls {
                None => {
                    let info = make(info, None);
                    let c = Conn::new(MaybeTls::Plain(sock), info, idle, permit, stop.clone());
                    if tx.send(Ok(c)).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    let caps = caps.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(handshake, acceptor.accept(sock)).await {
                            Ok(Ok(s)) => {
                                let info = make(info, peer_fingerprint(&s));
                                let c =
                                    Conn::new(MaybeTls::Tls(Box::new(s)), info, idle, permit, stop);
                                let _ = tx.send(Ok(c)).await;
                            }
                            Ok(Err(_)) => {
                                caps.stats().handshake_failures.fetch_add(1, Relaxed);
                            }
                            Err(_) => {
                                caps.stats().handshake_timeouts.fetch_add(1, Relaxed);
                            }
                        }
                    });
                }
            }
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), task)
}

/// Accepts unix-socket connections under the total cap and idle timeout.
pub fn unix_incoming(
    listener: UnixListener,
    limits: &Limits,
    stats: Arc<ServerStats>,
) -> (Incoming<UnixConn>, tokio::task::JoinHandle<()>) {
    let mut stop = stats.stopping();
    let caps = Arc::new(Caps {
        total: limits.max_connections,
        per_ip: usize::MAX,
        open: Mutex::new((0, HashMap::new())),
        stats,
        which: Which::GrpcUnix.stats(),
    });
    let (tx, rx) = mpsc::channel::<io::Result<UnixConn>>(16);
    let idle = limits.idle_timeout;
    let task = tokio::spawn(async move {
        let mut backoff = Backoff::new(Which::GrpcUnix);
        loop {
            let Some(accepted) = accept_or_stop(listener.accept(), &tx, &mut stop).await else {
                return;
            };
            let sock = match accepted {
                Ok((s, _)) => s,
                Err(e) if per_connection(&e) => continue,
                Err(e) => {
                    backoff.error(&e, caps.stats()).await;
                    continue;
                }
            };
            backoff.ok();
            let Some(permit) = caps.try_acquire(None) else {
                drop(sock);
                continue;
            };
            let info = sock.connect_info();
            if tx
                .send(Ok(Conn::new(sock, info, idle, permit, stop.clone())))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), task)
}

/// Serves HTTP/1.1 (`/metrics`) on accepted connections: request headers must arrive
/// within `header_timeout` (a slowloris client is cut and counted as a handshake
/// timeout; a keep-alive connection idle that long between requests is closed and
/// counted as idle), and each connection runs in its own task.
pub async fn serve_http(
    mut incoming: Incoming<TcpConn>,
    app: axum::Router,
    header_timeout: Duration,
    stats: Arc<ServerStats>,
) {
    use tokio_stream::StreamExt;
    while let Some(conn) = incoming.next().await {
        let Ok(conn) = conn else { continue };
        let request_started = conn.request_started.clone();
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let stats = stats.clone();
        tokio::spawn(async move {
            let r = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                .await;
            // hyper's header timer also runs while a keep-alive connection waits for its
            // next request: that is an idle close, not a slow request.
            if r.is_err_and(|e| e.is_timeout()) {
                if request_started.load(Relaxed) {
                    stats.metrics.handshake_timeouts.fetch_add(1, Relaxed);
                } else {
                    stats.metrics.closed_idle.fetch_add(1, Relaxed);
                }
            }
        });
    }
}

/// After a burst of connections or streams is gone, hands the freed heap back to the
/// kernel, for builds on glibc's malloc (the library's tests, other embedders: the `axon`
/// binary runs on jemalloc with immediate decay, which returns pages by itself and leaves
/// glibc's heap empty). glibc keeps freed memory in its arenas for reuse, so without this
/// an agent that survived a flood would hold its peak RSS for ever. Checks every 5 s; when the open
/// connections and streams have dropped well below the most seen, trims at each check
/// for the next minute (the collectors replace their data meanwhile, so pages that
/// long-lived data pinned during the flood empty out and are trimmed too).
pub async fn give_back_memory(stats: Arc<ServerStats>) {
    let load = |s: &ServerStats| {
        s.grpc_tcp.open.load(Relaxed)
            + s.grpc_unix.open.load(Relaxed)
            + s.metrics.open.load(Relaxed)
            + s.watch_open.load(Relaxed)
    };
    let mut peak = load(&stats);
    let mut trims_left = 0u32;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = load(&stats);
        peak = peak.max(now);
        if peak >= 32 && now <= peak / 2 {
            trims_left = 12;
            peak = now;
        }
        if trims_left > 0 {
            trims_left -= 1;
            trim_heap();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions; it only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    /// `Server::builder().tcp_nodelay(true)` never reaches sockets handed to
    /// `serve_with_incoming`: without NODELAY a small reply waits for the peer's delayed
    /// ACK (44 ms p50 per GetSnapshot over TCP against 0.3 ms on the unix socket).
    #[tokio::test]
    async fn accepted_sockets_get_tcp_nodelay() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (mut incoming, task) = tcp_incoming(
            l,
            None,
            Which::GrpcTcp,
            &Limits::default(),
            Arc::new(ServerStats::default()),
        );
        let _client = TcpStream::connect(addr).await.unwrap();
        let conn = incoming.next().await.unwrap().unwrap();
        let MaybeTls::Plain(s) = &conn.io else {
            panic!("plain")
        };
        assert!(s.nodelay().unwrap(), "accepted socket has TCP_NODELAY");
        assert_eq!(conn.info.remote_addr, Some(_client.local_addr().unwrap()));
        task.abort();
    }

    #[tokio::test]
    async fn permits_are_given_back_and_counted() {
        let stats = Arc::new(ServerStats::default());
        let caps = Arc::new(Caps {
            total: 3,
            per_ip: 2,
            open: Mutex::new((0, HashMap::new())),
            stats: stats.clone(),
            which: Which::GrpcTcp.stats(),
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = caps.try_acquire(Some(a)).unwrap();
        let _p2 = caps.try_acquire(Some(a)).unwrap();
        assert!(caps.try_acquire(Some(a)).is_none(), "per-peer cap");
        let _p3 = caps.try_acquire(Some(b)).unwrap();
        assert!(caps.try_acquire(Some(b)).is_none(), "total cap");
        assert_eq!(stats.grpc_tcp.open.load(Relaxed), 3);
        drop(p1);
        assert_eq!(stats.grpc_tcp.open.load(Relaxed), 2);
        assert!(
            caps.try_acquire(Some(a)).is_some(),
            "a's place is free again"
        );
        assert_eq!(stats.grpc_tcp.rejected_ip_limit.load(Relaxed), 1);
        assert_eq!(stats.grpc_tcp.rejected_total_limit.load(Relaxed), 1);
    }
}

//! In-process agents on loopback for the TLS and limits tests.

use axon::agent::listen::Limits;
use axon::agent::tls::ServerTls;
use axon::agent::{self, AgentConfig};
use axon::fleet::client::{self, Clients, Target};
use axon::fleet::tls::{Security, Trust, TrustOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub struct TestAgent {
    pub agent: agent::Agent,
    pub dir: tempfile::TempDir,
    pub admin: String,
    pub reader: String,
}

impl TestAgent {
    pub fn grpc(&self) -> SocketAddr {
        self.agent.grpc_addr.expect("gRPC on TCP")
    }
    pub fn metrics(&self) -> SocketAddr {
        self.agent.metrics_addr.expect("metrics")
    }
    pub fn pinned(&self) -> Security {
        let fp = self.agent.tls.as_ref().expect("TLS").fingerprint;
        Trust::default()
            .for_agent(&self.grpc().to_string(), Some((fp, "test".into())), None)
            .unwrap()
    }
    pub fn target(&self, token: &str, security: Security) -> Target {
        Target::Tcp {
            addr: self.grpc().to_string(),
            token: Some(token.to_string()),
            security,
        }
    }
    /// A reader connection over TLS with the fingerprint pinned.
    pub async fn reader_client(&self) -> Clients {
        client::connect(
            &self.target(&self.reader, self.pinned()),
            Duration::from_secs(5),
        )
        .await
        .expect("connects")
    }
}

pub fn config(dir: &Path, listen: SocketAddr, tls: ServerTls, limits: Limits) -> AgentConfig {
    let mut cfg = AgentConfig::new(
        super::fixture("amd-epyc-4numa"),
        dir.join("state"),
        super::collect_config(),
    );
    cfg.listen = Some(listen);
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.unix_socket = Some(dir.join("control.sock"));
    cfg.tls = tls;
    cfg.limits = limits;
    cfg
}

pub async fn start_with(cfg: AgentConfig, dir: tempfile::TempDir) -> TestAgent {
    let state = cfg.state_dir.clone();
    let agent = agent::start(cfg).await.expect("agent starts");
    let read = |f: &str| {
        std::fs::read_to_string(state.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    TestAgent {
        agent,
        admin: read("admin.token"),
        reader: read("reader.token"),
        dir,
    }
}

/// An agent with TLS by default (self-signed) and the given limits.
pub async fn start(limits: Limits) -> TestAgent {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        ServerTls::SelfSigned {
            dir: dir.path().join("state/tls"),
        },
        limits,
    );
    start_with(cfg, dir).await
}

pub fn trust(opts: TrustOptions) -> Trust {
    Trust::new(&opts).expect("trust options")
}

/// GET /metrics over plain HTTP on a new connection, with `headers` (each ending in
/// `\r\n`) added; the whole response, head and body.
pub async fn get_metrics(addr: SocketAddr, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("scrape answers")
        .unwrap();
    out
}

/// GET /metrics over plain HTTP; the response.
pub async fn scrape(addr: SocketAddr) -> String {
    get_metrics(addr, "").await
}

/// The value of one sample line (`name{labels} value`) in a scrape, if present.
pub fn sample(scrape: &str, prefix: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

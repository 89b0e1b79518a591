//! Issue 7 item 4, TLS on TCP: a real agent serves gRPC over TLS by default with a
//! certificate it made on first start; the console verifies it by pinned fingerprint, CA
//! file or trust-on-first-use, refuses a changed certificate with both fingerprints, and
//! plain text only when both ends say --insecure.

mod common;

use axon::agent::listen::Limits;
use axon::agent::tls::ServerTls;
use axon::fleet::client;
use axon::fleet::tls::{Security, TrustOptions};
use axon::wire::pb;
use axon::wire::tls::Fingerprint;
use common::agents::{self, TestAgent};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// The outcome of the same call on both client paths: the CLI's tonic channel
/// (GetSnapshot) and the console's own Watch stream (`fleet::watch`). An error must say
/// the same thing on both.
#[derive(Debug)]
struct Both {
    unary: String,
    watch: String,
}

impl Both {
    fn contains(&self, p: &str) -> bool {
        self.unary.contains(p) && self.watch.contains(p)
    }
    fn map(self, f: impl Fn(&str) -> String) -> Both {
        Both {
            unary: f(&self.unary),
            watch: f(&self.watch),
        }
    }
}

impl std::fmt::Display for Both {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GetSnapshot: {}\nWatch: {}", self.unary, self.watch)
    }
}

async fn unary_with(a: &TestAgent, security: Security) -> Result<String, String> {
    let mut c = client::connect(&a.target(&a.reader, security), T)
        .await
        .map_err(|e| e.to_string())?;
    let r = c
        .node
        .get_snapshot(pb::GetSnapshotRequest::default())
        .await
        .map_err(|s| format!("{}: {}", s.message(), client::error_chain(&s)))?;
    Ok(r.into_inner().node.unwrap_or_default().hostname)
}

async fn watch_with(a: &TestAgent, security: Security) -> Result<String, String> {
    let client::Target::Tcp {
        addr,
        token,
        security,
    } = a.target(&a.reader, security)
    else {
        unreachable!("TCP target")
    };
    let req = pb::WatchRequest::default();
    let mut s = axon::fleet::watch::open(&addr, token.as_deref(), &security, &req, T)
        .await
        .map_err(|e| e.to_string())?;
    let m = s.message().await.map_err(|e| e.to_string())?;
    Ok(m.and_then(|m| m.node).unwrap_or_default().hostname)
}

async fn snapshot_with(a: &TestAgent, security: Security) -> Result<String, Both> {
    let unary = unary_with(a, security.clone()).await;
    let watch = watch_with(a, security).await;
    match (unary, watch) {
        (Ok(u), Ok(w)) => {
            assert_eq!(u, w, "both paths reach the same agent");
            Ok(u)
        }
        (Err(unary), Err(watch)) => Err(Both { unary, watch }),
        (u, w) => panic!("the two client paths disagree: GetSnapshot {u:?}, Watch {w:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_on_tcp_is_tls_by_default_with_a_private_self_signed_key() {
    use std::os::unix::fs::PermissionsExt;
    let a = agents::start(Limits::default()).await;
    let id = a.agent.tls.as_ref().expect("TLS is the default");
    let tls_dir = a.dir.path().join("state/tls");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tls_dir.join("key.pem")), 0o600);
    assert_eq!(mode(&tls_dir), 0o700);
    let recorded = std::fs::read_to_string(tls_dir.join("cert.fingerprint")).unwrap();
    assert_eq!(recorded.trim(), id.fingerprint.to_string());
    // The pinned certificate works...
    assert_eq!(
        snapshot_with(&a, a.pinned()).await.unwrap(),
        "axon-amd01",
        "hostname of the fixture"
    );
    // ...and plain text does not: the agent only speaks TLS on TCP.
    let e = snapshot_with(&a, Security::Plaintext).await.unwrap_err();
    let e = e.map(axon::fleet::tls::explain_plaintext);
    assert!(e.contains("the agent speaks TLS"), "{e}");
    // The agent counts the failed handshake (its task may finish just after the client
    // has seen the alert).
    let failures = || {
        a.agent
            .state
            .server
            .grpc_tcp
            .handshake_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let t0 = std::time::Instant::now();
    while failures() == 0 && t0.elapsed() < T {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        failures() >= 1,
        "the clear-text attempt failed the TLS handshake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_certificate_is_refused_with_both_fingerprints() {
    let a = agents::start(Limits::default()).await;
    let real = a.agent.tls.as_ref().unwrap().fingerprint;
    let wrong = Fingerprint::of_der(b"some other certificate");
    let sec = axon::fleet::tls::Trust::default()
        .for_agent(
            &a.grpc().to_string(),
            Some((wrong, "inventory /etc/axon/inv.toml (node axon007)".into())),
            None,
        )
        .unwrap();
    let e = snapshot_with(&a, sec).await.unwrap_err();
    for want in [
        "certificate changed",
        "(node axon007)",
        &wrong.to_string(),
        &real.to_string(),
        "inv.toml",
    ] {
        assert!(e.contains(want), "missing `{want}` in: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpinned_agent_is_refused_unless_tofu_which_then_refuses_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_agents");
    let a = agents::start(Limits::default()).await;
    let addr = a.grpc();
    let real = a.agent.tls.as_ref().unwrap().fingerprint;

    // No pin, no CA, no --tofu: refused, showing what the agent presents.
    let strict = agents::trust(TrustOptions {
        known_agents: Some(known.clone()),
        ..Default::default()
    });
    let sec = strict.for_agent(&addr.to_string(), None, None).unwrap();
    let e = snapshot_with(&a, sec).await.unwrap_err();
    assert!(
        e.contains("cannot verify") && e.contains(&real.to_string()) && e.contains("--tofu"),
        "{e}"
    );
    // Our refusal as it is, on both paths: not rustls' Debug of it, the fingerprint once.
    for text in [&e.unary, &e.watch] {
        assert!(!text.contains("Other(") && !text.contains("\\\""), "{text}");
        assert_eq!(text.matches(&real.to_string()).count(), 1, "{text}");
    }
    assert!(!known.exists(), "nothing recorded without --tofu");

    // --tofu: trusted on first use and recorded.
    let tofu = agents::trust(TrustOptions {
        tofu: true,
        known_agents: Some(known.clone()),
        ..Default::default()
    });
    let sec = tofu.for_agent(&addr.to_string(), None, None).unwrap();
    snapshot_with(&a, sec).await.unwrap();
    let text = std::fs::read_to_string(&known).unwrap();
    assert_eq!(text.trim(), format!("{addr} {real}"));

    // The agent is reinstalled (new state dir: new key) on the same address.
    a.agent.shutdown();
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir2 = tempfile::tempdir().unwrap();
    let cfg = agents::config(
        dir2.path(),
        addr,
        ServerTls::SelfSigned {
            dir: dir2.path().join("state/tls"),
        },
        Limits::default(),
    );
    let b = agents::start_with(cfg, dir2).await;
    let new = b.agent.tls.as_ref().unwrap().fingerprint;
    assert_ne!(new, real);
    // A fresh console (even with --tofu) reads the record and refuses the change.
    let tofu = agents::trust(TrustOptions {
        tofu: true,
        known_agents: Some(known.clone()),
        ..Default::default()
    });
    let sec = tofu.for_agent(&addr.to_string(), None, None).unwrap();
    let e = snapshot_with(&b, sec).await.unwrap_err();
    assert!(
        e.contains("changed")
            && e.contains("known_agents:1")
            && e.contains(&real.to_string())
            && e.contains(&new.to_string()),
        "{e}"
    );
}

/// A CA and a certificate it signs for 127.0.0.1, as an operator's PKI would issue.
fn issue(
    dir: &Path,
    ca_name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let ca_pem = dir.join(format!("{ca_name}.pem"));
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    let cert = dir.join("agent.pem");
    let key = dir.join("agent.key");
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (ca_pem, cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_verifies_an_operator_issued_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key) = issue(pki.path(), "site-ca");
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = issue(other.path(), "other-ca");
    let dir = tempfile::tempdir().unwrap();
    let cfg = agents::config(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        ServerTls::Files { cert, key },
        Limits::default(),
    );
    let a = agents::start_with(cfg, dir).await;
    let trust = agents::trust(TrustOptions {
        ca_file: Some(ca),
        ..Default::default()
    });
    let sec = trust.for_agent(&a.grpc().to_string(), None, None).unwrap();
    snapshot_with(&a, sec).await.unwrap();
    // Another CA does not vouch for it; the message names the CA file.
    let trust = agents::trust(TrustOptions {
        ca_file: Some(other_ca),
        ..Default::default()
    });
    let sec = trust.for_agent(&a.grpc().to_string(), None, None).unwrap();
    let e = snapshot_with(&a, sec).await.unwrap_err();
    assert!(
        e.contains("not trusted by CA file") && e.contains("other-ca.pem"),
        "{e}"
    );
    // Dialled by a name the certificate does not carry: refused too.
    let trust = agents::trust(TrustOptions {
        ca_file: Some(pki.path().join("site-ca.pem")),
        ..Default::default()
    });
    let sec = trust
        .for_agent(&format!("localhost:{}", a.grpc().port()), None, None)
        .unwrap();
    let e = client::connect(
        &axon::fleet::client::Target::Tcp {
            addr: format!("localhost:{}", a.grpc().port()),
            token: Some(a.reader.clone()),
            security: sec,
        },
        T,
    )
    .await;
    let e = match e {
        Err(e) => e.to_string(),
        Ok(mut c) => c
            .node
            .get_snapshot(pb::GetSnapshotRequest::default())
            .await
            .map(|_| String::new())
            .unwrap_or_else(|s| client::error_chain(&s)),
    };
    assert!(e.contains("not trusted by CA file"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_agent_and_console_speak_plain_text_and_a_tls_console_is_told_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = agents::config(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        ServerTls::Off,
        Limits::default(),
    );
    let a = agents::start_with(cfg, dir).await;
    assert!(a.agent.tls.is_none());
    snapshot_with(&a, Security::Plaintext).await.unwrap();
    let sec = axon::fleet::tls::Trust::default()
        .for_agent(
            &a.grpc().to_string(),
            Some((Fingerprint::of_der(b"x"), "test".into())),
            None,
        )
        .unwrap();
    let e = snapshot_with(&a, sec).await.unwrap_err();
    assert!(
        e.contains("does not speak TLS") && e.contains("--insecure"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_plain_http_by_default_and_https_with_metrics_tls() {
    let a = agents::start(Limits::default()).await;
    let body = agents::scrape(a.metrics()).await;
    assert!(body.contains("axon_grpc_tls 1"), "{body}");

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = agents::config(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        ServerTls::SelfSigned {
            dir: dir.path().join("state/tls"),
        },
        Limits::default(),
    );
    cfg.metrics_tls = true;
    let b = agents::start_with(cfg, dir).await;
    // Clear text gets nothing back.
    let plain = tokio::time::timeout(T, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(b.metrics()).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        out
    })
    .await
    .expect("closed");
    assert!(
        !String::from_utf8_lossy(&plain).contains("axon_"),
        "no metrics in clear"
    );
    // TLS with the agent's certificate pinned gets the metrics.
    let Security::Tls(tls) = b.pinned() else {
        panic!("TLS")
    };
    let mut cfg = (*tls.config).clone();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(b.metrics()).await.unwrap();
    let mut s = connector
        .connect(tls.server_name.clone(), tcp)
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    let _ = tokio::time::timeout(T, s.read_to_string(&mut body)).await;
    assert!(body.contains("axon_node_info"), "{body}");
}

/// A server that presents a certificate whose key it does not hold (an interceptor
/// replaying an agent's certificate): the handshake fails at the signature check.
#[derive(Debug)]
struct Impostor(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Impostor {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tofu_records_nothing_when_the_server_cannot_prove_the_key() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls_pki_types::pem::PemObject;
    let a = agents::start(Limits::default()).await;
    let tls_dir = a.dir.path().join("state/tls");
    let cert = CertificateDer::from_pem_file(tls_dir.join("cert.pem")).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let key = PrivateKeyDer::from_pem_slice(other.serialize_pem().as_bytes()).unwrap();
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let ck = Arc::new(rustls::sign::CertifiedKey::new(vec![cert], signer));
    let mut cfg = rustls::ServerConfig::builder_with_provider(axon::wire::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Impostor(ck)));
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(s).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_agents");
    let trust = agents::trust(TrustOptions {
        tofu: true,
        known_agents: Some(known.clone()),
        ..Default::default()
    });
    let sec = trust.for_agent(&addr.to_string(), None, None).unwrap();
    let r = client::connect(
        &axon::fleet::client::Target::Tcp {
            addr: addr.to_string(),
            token: Some("x".repeat(40)),
            security: sec,
        },
        T,
    )
    .await;
    assert!(r.is_err(), "the impostor's handshake must fail");
    let recorded = std::fs::read_to_string(&known).unwrap_or_default();
    assert!(
        recorded.trim().is_empty(),
        "nothing recorded for a server that did not prove the key: {recorded}"
    );
}

#[test]
fn a_known_agents_file_writable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_agents");
    std::fs::write(&known, "").unwrap();
    std::fs::set_permissions(&known, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = axon::fleet::tls::Trust::new(&TrustOptions {
        tofu: true,
        known_agents: Some(known.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        e.contains("writable by others") && e.contains("chmod 600"),
        "{e}"
    );
}

/// `axon io ls --hosts H` and `--inventory F` against an agent nothing vouches for: the
/// refusal reads plainly, names the node once, and suggests what works with each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_agent_is_refused_with_the_remedies_of_hosts_or_inventory() {
    use axon::fleet::inventory::Inventory;
    let dir = tempfile::tempdir().unwrap();
    let a = agents::start(Limits::default()).await;
    let port = a.grpc().port();
    let real = a.agent.tls.as_ref().unwrap().fingerprint.to_string();
    let trust = Arc::new(agents::trust(TrustOptions {
        known_agents: Some(dir.path().join("known_agents")),
        ..Default::default()
    }));
    let refusal = |inv: &Inventory| {
        let spec = inv.nodes[0].clone();
        let sec = inv.security(&spec).unwrap();
        let token = a.reader.clone();
        async move {
            client::connect_node(&spec, Some(token), sec, T)
                .await
                .err()
                .expect("refused")
        }
    };

    let mut hosts = Inventory::from_hosts("127.0.0.1", port, None).unwrap();
    hosts.trust = trust.clone();
    let e = refusal(&hosts).await;
    assert!(
        e.starts_with(&format!(
            "127.0.0.1:{port}: cannot verify the certificate (the agent presents {real}): "
        )),
        "{e}"
    );
    assert_eq!(e.matches("127.0.0.1").count(), 1, "{e}");
    assert_eq!(e.matches(&real).count(), 1, "{e}");
    assert!(
        !e.contains("Other(") && !e.contains("transport error"),
        "{e}"
    );
    for want in ["--tofu", "--ca-file", "--inventory FILE instead of --hosts"] {
        assert!(e.contains(want), "missing `{want}` in: {e}");
    }

    let file = dir.path().join("inv.toml");
    let text = format!("[[node]]\nname = \"n1\"\naddress = \"127.0.0.1\"\nport = {port}\n");
    std::fs::write(&file, &text).unwrap();
    let mut inv = Inventory::parse(&text, &file).unwrap();
    inv.trust = trust;
    let e = refusal(&inv).await;
    assert!(
        e.starts_with(&format!(
            "n1: 127.0.0.1:{port}: cannot verify the certificate"
        )),
        "{e}"
    );
    assert_eq!(e.matches(&real).count(), 1, "{e}");
    assert!(
        e.contains(&format!("[[node]] entry in inventory {}", file.display())),
        "{e}"
    );
    assert!(!e.contains("--hosts"), "{e}");
}

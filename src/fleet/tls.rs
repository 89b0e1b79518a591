//! How the console and the CLI trust an agent's certificate, like SSH trusts a host key:
//!
//! 1. a fingerprint pinned in the inventory (`fingerprint = "sha256:…"`, written by
//!    `axon demo`, printed by every agent at start) must match exactly;
//! 2. else a CA file (`--ca-file`, or `ca_file` in the inventory) must sign the
//!    certificate for the address dialled (an operator's own PKI);
//! 3. else a fingerprint recorded in the known-agents file must match;
//! 4. else, only with `--tofu`, the certificate is trusted on first use and recorded;
//! 5. else the connection is refused, and the message shows the fingerprint presented so
//!    the operator can compare it with the agent's and pin it.
//!
//! A certificate that differs from a pinned or recorded one is always refused, with both
//! fingerprints and what to do. `--insecure` skips TLS altogether (plain text, for labs).

use crate::wire::tls::{ALPN_H2, Fingerprint, provider, signatures};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the operator told the console about trust (flags and inventory defaults).
#[derive(Debug, Clone, Default)]
pub struct TrustOptions {
    /// Plain text, no TLS (`--insecure`).
    pub insecure: bool,
    /// Trust certificates signed by this CA (`--ca-file`).
    pub ca_file: Option<PathBuf>,
    /// Trust a certificate never seen before, and record it (`--tofu`).
    pub tofu: bool,
    /// Where recorded fingerprints live (`--known-agents`; default
    /// `$XDG_CONFIG_HOME/axon/known_agents` or `~/.config/axon/known_agents`).
    pub known_agents: Option<PathBuf>,
}

impl TrustOptions {
    pub fn known_agents_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.known_agents {
            return Some(p.clone());
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            })?;
        Some(base.join("axon/known_agents"))
    }
}

/// Fingerprints recorded by trust-on-first-use: one `ADDRESS sha256:…` per line.
#[derive(Debug)]
pub struct KnownAgents {
    path: PathBuf,
    entries: Mutex<HashMap<String, (Fingerprint, usize)>>,
}

impl KnownAgents {
    /// Reads the file; a missing file is an empty list. Malformed lines are errors that
    /// name the line.
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut entries = HashMap::new();
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o022 != 0 {
                return Err(format!(
                    "{}: writable by others (mode {mode:o}), so anyone could plant a pin — chmod 600 it",
                    path.display()
                ));
            }
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    let l = line.trim();
                    if l.is_empty() || l.starts_with('#') {
                        continue;
                    }
                    let mut it = l.split_whitespace();
                    let (Some(addr), Some(fp), None) = (it.next(), it.next(), it.next()) else {
                        return Err(format!(
                            "{}:{}: expected `ADDRESS sha256:…`, found `{l}` — fix or delete the line",
                            path.display(),
                            i + 1
                        ));
                    };
                    let fp = Fingerprint::parse(fp)
                        .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
                    entries.insert(addr.to_string(), (fp, i + 1));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "{}: {e} — pass --known-agents with a readable file",
                    path.display()
                ));
            }
        }
        Ok(KnownAgents {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, addr: &str) -> Option<(Fingerprint, usize)> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(addr)
            .copied()
    }

    /// Records a fingerprint (appends a line; the file and its directory are private),
    /// unless one is recorded for `addr` already: the same is fine, another is refused.
    pub fn record(&self, addr: &str, fp: Fingerprint) -> Result<(), String> {
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, line)) = g.get(addr) {
            if *known == fp {
                return Ok(());
            }
            return Err(format!(
                "{}:{line} records {known} for {addr}, the agent presents {fp}",
                self.path.display()
            ));
        }
        if let Some(dir) = self.path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        writeln!(f, "{addr} {fp}").map_err(|e| format!("{}: {e}", self.path.display()))?;
        let line = std::fs::read_to_string(&self.path)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        g.insert(addr.to_string(), (fp, line));
        Ok(())
    }
}

/// Where the operator named an agent: decides which remedy a refusal suggests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// An entry of an inventory file (`--inventory`; the file, when known): a fingerprint
    /// is pinned in the node's `[[node]]` entry.
    Inventory(Option<PathBuf>),
    /// The command line (`--hosts`): there is no entry to pin a fingerprint in.
    Hosts,
}

/// Trust for one agent: what the verifier needs to decide. Its refusals do not name the
/// agent: every caller puts the address (and the node) in front of them.
#[derive(Debug)]
struct AgentVerifier {
    addr: String,
    listed: Listed,
    pin: Option<Fingerprint>,
    pin_source: String,
    ca: Option<(Arc<WebPkiServerVerifier>, PathBuf)>,
    known: Option<Arc<KnownAgents>>,
    tofu: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

/// A refusal with our message. rustls shows it with Debug, as "invalid peer certificate:
/// Other(OtherError(…))", so Debug is the plain message too and `explain` unwraps it.
struct Refusal(String);

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn refuse(msg: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(Refusal(msg)),
    )))
}

/// The refusal of a certificate that nothing vouches for: the fingerprint once, and the
/// remedies that work where the agent was named.
fn unverified(got: Fingerprint, listed: &Listed) -> String {
    let check = "if that matches `cat /var/lib/axon/tls/cert.fingerprint` on the node";
    match listed {
        Listed::Inventory(file) => {
            let file = match file {
                Some(p) => format!("inventory {}", p.display()),
                None => "the inventory".to_string(),
            };
            format!(
                "cannot verify the certificate (the agent presents {got}): {file} pins no \
                 fingerprint for it and no CA file is given — {check}, add it to the node's \
                 [[node]] entry in {file} as fingerprint = \"sha256:…\", pass --ca-file, \
                 or pass --tofu to trust each agent's certificate on first use"
            )
        }
        Listed::Hosts => format!(
            "cannot verify the certificate (the agent presents {got}): agents named with \
             --hosts have no pinned fingerprint and no CA file is given — {check}, pass --tofu \
             to trust each agent's certificate on first use (and record it), pass --ca-file \
             with the CA that signed the agents' certificates, or list the nodes in an \
             inventory file with fingerprint = \"sha256:…\" in each [[node]] entry and pass \
             --inventory FILE instead of --hosts"
        ),
    }
}

impl ServerCertVerifier for AgentVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of_der(end_entity);
        if let Some(pin) = self.pin {
            if got == pin {
                return Ok(ServerCertVerified::assertion());
            }
            return Err(refuse(format!(
                "the agent's certificate changed: {} pins {pin}, the agent presents {got} — \
                 if the agent's certificate was replaced on purpose (new state dir, reinstall), \
                 put the new fingerprint in the inventory; otherwise something may be \
                 intercepting the connection",
                self.pin_source
            )));
        }
        if let Some((ca, path)) = &self.ca {
            return ca
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .map_err(|e| {
                    let pin = match &self.listed {
                        Listed::Inventory(_) => "in its [[node]] entry of the inventory",
                        Listed::Hosts => "in an inventory (--inventory FILE instead of --hosts)",
                    };
                    refuse(format!(
                        "the agent's certificate is not trusted by CA file {}: {e} — \
                         check the agent runs with --tls-cert/--tls-key issued by that CA \
                         for this address, or pin its fingerprint ({got}) {pin}",
                        path.display()
                    ))
                });
        }
        if let Some(known) = &self.known {
            if let Some((fp, line)) = known.get(&self.addr) {
                if fp == got {
                    return Ok(ServerCertVerified::assertion());
                }
                return Err(refuse(format!(
                    "the agent's certificate changed: {}:{line} records {fp}, the agent presents {got} — \
                     if the agent's certificate was replaced on purpose, delete that line; \
                     otherwise something may be intercepting the connection",
                    known.path().display()
                )));
            }
            if self.tofu {
                // Recorded by the connector once the handshake has proved the agent holds
                // the certificate's key (rustls checks that signature after this call).
                return Ok(ServerCertVerified::assertion());
            }
        }
        Err(refuse(unverified(got, &self.listed)))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::tls12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signatures::schemes(&self.provider)
    }
}

/// TLS settings for connecting to one agent.
#[derive(Clone)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
    /// With --tofu and neither pin nor CA: where to record the certificate once the
    /// handshake has succeeded (see `record_after_handshake`).
    pub tofu: Option<(Arc<KnownAgents>, String)>,
}

impl ClientTls {
    /// After a completed handshake: records the agent's certificate when trusting on
    /// first use. An error means another certificate was recorded for it meanwhile.
    pub fn record_after_handshake(&self, conn: &rustls::ClientConnection) -> Result<(), String> {
        let Some((known, addr)) = &self.tofu else {
            return Ok(());
        };
        let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
            return Err("the agent presented no certificate".to_string());
        };
        known.record(addr, Fingerprint::of_der(leaf)).map_err(|e| {
            format!(
                "the agent's certificate changed: {e} — if the agent's certificate was replaced on purpose, delete that line"
            )
        })
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientTls({:?})", self.server_name)
    }
}

/// How to reach one agent: TLS (verified as above) or plain text.
#[derive(Debug, Clone)]
pub enum Security {
    Tls(ClientTls),
    Plaintext,
}

/// Builds the per-agent security from the options, loaded once for a whole fleet.
pub struct Trust {
    insecure: bool,
    ca: Option<(Arc<WebPkiServerVerifier>, PathBuf)>,
    known: Option<Arc<KnownAgents>>,
    tofu: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
    ca_cache: Mutex<HashMap<PathBuf, Arc<WebPkiServerVerifier>>>,
}

impl Default for Trust {
    /// TLS, trusting only fingerprints pinned in the inventory.
    fn default() -> Self {
        Trust {
            insecure: false,
            ca: None,
            known: None,
            tofu: false,
            provider: provider(),
            ca_cache: Mutex::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Trust(insecure={}, ca={:?}, tofu={})",
            self.insecure,
            self.ca.as_ref().map(|c| &c.1),
            self.tofu
        )
    }
}

/// Loads a CA file into a verifier; errors name the file.
pub fn load_ca(path: &Path) -> Result<Arc<WebPkiServerVerifier>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            format!(
                "CA file {}: {e} — pass --ca-file with a PEM file",
                path.display()
            )
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("CA file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "CA file {}: holds no CERTIFICATE block — pass the PEM certificate of the CA that signed the agents' certificates",
            path.display()
        ));
    }
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("CA file {}: {e}", path.display()))?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| format!("CA file {}: {e}", path.display()))
}

impl Trust {
    pub fn new(opts: &TrustOptions) -> Result<Self, String> {
        let ca = match &opts.ca_file {
            Some(p) => Some((load_ca(p)?, p.clone())),
            None => None,
        };
        let known = match (opts.insecure, opts.known_agents_path()) {
            (false, Some(p)) => match KnownAgents::load(&p) {
                Ok(k) => Some(Arc::new(k)),
                // Recording into a broken file would be worse: refuse.
                Err(e) if opts.tofu => return Err(e),
                // Pins and CA files still work; unpinned agents are refused.
                Err(e) => {
                    tracing::warn!("axon: ignoring the known-agents file: {e}");
                    None
                }
            },
            _ => None,
        };
        if opts.tofu && known.is_none() && !opts.insecure {
            return Err(
                "--tofu needs a file to record fingerprints in: set HOME or pass --known-agents FILE"
                    .into(),
            );
        }
        Ok(Trust {
            insecure: opts.insecure,
            ca,
            known,
            tofu: opts.tofu,
            provider: provider(),
            ca_cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// Security for the agent at `addr` (`host:port`), with the fingerprint and CA file its
    /// inventory entry gives (`source` names where the pin came from). Refusals suggest the
    /// inventory's remedies; they name neither node nor address (the messages they end up
    /// in do).
    pub fn for_agent(
        &self,
        addr: &str,
        pin: Option<(Fingerprint, String)>,
        ca_file: Option<&Path>,
    ) -> Result<Security, String> {
        self.for_agent_listed(addr, pin, ca_file, Listed::Inventory(None))
    }

    /// As `for_agent`, saying where the agent was named (`--inventory` or `--hosts`), so a
    /// refusal suggests remedies that work there. The node is not passed: refusals leave
    /// naming the node and address to the messages they end up in.
    pub fn for_agent_listed(
        &self,
        addr: &str,
        pin: Option<(Fingerprint, String)>,
        ca_file: Option<&Path>,
        listed: Listed,
    ) -> Result<Security, String> {
        if self.insecure {
            return Ok(Security::Plaintext);
        }
        let verifier = self.verifier(addr, pin, ca_file, listed)?;
        let tofu = match (
            &self.known,
            self.tofu,
            verifier.pin.is_none() && verifier.ca.is_none(),
        ) {
            (Some(k), true, true) => Some((k.clone(), addr.to_string())),
            _ => None,
        };
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Security::Tls(ClientTls {
            config: Arc::new(config),
            server_name: server_name_of(addr)?,
            tofu,
        }))
    }

    /// The certificate verifier for the agent at `addr`.
    fn verifier(
        &self,
        addr: &str,
        pin: Option<(Fingerprint, String)>,
        ca_file: Option<&Path>,
        listed: Listed,
    ) -> Result<AgentVerifier, String> {
        let ca = match ca_file {
            Some(p) => {
                let mut cache = self.ca_cache.lock().unwrap_or_else(|e| e.into_inner());
                let v = match cache.get(p) {
                    Some(v) => v.clone(),
                    None => {
                        let v = load_ca(p)?;
                        cache.insert(p.to_path_buf(), v.clone());
                        v
                    }
                };
                Some((v, p.to_path_buf()))
            }
            None => self.ca.clone(),
        };
        let (pin, pin_source) = match pin {
            Some((fp, src)) => (Some(fp), src),
            None => (None, String::new()),
        };
        Ok(AgentVerifier {
            addr: addr.to_string(),
            listed,
            pin,
            pin_source,
            ca,
            known: self.known.clone(),
            tofu: self.tofu,
            provider: self.provider.clone(),
        })
    }
}

/// The TLS server name for `host:port` (an IP address or a DNS name).
pub fn server_name_of(addr: &str) -> Result<ServerName<'static>, String> {
    let host = match addr.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("`{host}` is not a host name or address TLS can verify: {e}"))
}

/// How rustls (and so every error chain holding its error) shows a `Refusal`.
const REFUSED: &str = "invalid peer certificate: Other(OtherError(";

/// Rewrites a TLS error into what the operator can act on: our verifier's refusal as is
/// (it says what is wrong and what to do), without the wrapping rustls gives it.
pub fn explain(detail: &str) -> String {
    if let Some(i) = detail.find(REFUSED) {
        let refusal = &detail[i + REFUSED.len()..];
        refusal.strip_suffix("))").unwrap_or(refusal).to_string()
    } else if detail.contains("InvalidContentType") || detail.contains("corrupt message") {
        format!(
            "{detail} — the agent does not speak TLS: it runs with --insecure; restart it without, or pass --insecure to the console (labs only)"
        )
    } else {
        detail.to_string()
    }
}

/// A clear-text call that a TLS agent answered with a TLS alert (seen by HTTP/2 as a bad
/// frame): say what is going on.
pub fn explain_plaintext(detail: &str) -> String {
    let tls_alert = ["frame with invalid size", "FRAME_SIZE_ERROR"];
    let closed = [
        "connection closed",
        "operation was canceled",
        "broken pipe",
        "connection reset",
    ];
    if tls_alert.iter().any(|m| detail.contains(m)) {
        format!(
            "{detail} — the agent speaks TLS and this console runs with --insecure: drop --insecure (and pin the agent's fingerprint)"
        )
    } else if closed.iter().any(|m| detail.contains(m)) {
        format!(
            "{detail} — if the agent speaks TLS (started without --insecure), drop --insecure from this console"
        )
    } else {
        detail.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_endpoints() {
        assert!(matches!(
            server_name_of("10.0.0.7:14000").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name_of("[fd00::1]:14000").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name_of("axon007:14000").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn known_agents_file_round_trips_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cfg/axon/known_agents");
        let k = KnownAgents::load(&p).unwrap();
        let fp = Fingerprint::of_der(b"x");
        k.record("10.0.0.7:14000", fp).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let k = KnownAgents::load(&p).unwrap();
        assert_eq!(k.get("10.0.0.7:14000"), Some((fp, 1)));
        std::fs::write(&p, "# comment\n10.0.0.8:14000 nope\n").unwrap();
        let e = KnownAgents::load(&p).unwrap_err();
        assert!(e.contains("known_agents:2"), "{e}");
    }

    /// A refusal as the console shows it: rustls' error inside the io::Error tokio-rustls
    /// returns, inside tonic's "transport error", through `error_chain` and `explain`.
    fn shown(listed: Listed, pin: Option<(Fingerprint, String)>, der: &[u8]) -> String {
        let v = Trust::default()
            .verifier("127.0.1.1:14000", pin, None, listed)
            .unwrap();
        let e = v
            .verify_server_cert(
                &CertificateDer::from(der.to_vec()),
                &[],
                &server_name_of("127.0.1.1:14000").unwrap(),
                &[],
                UnixTime::now(),
            )
            .expect_err("refused");
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        explain(&format!(
            "transport error: {}",
            crate::wire::error_chain(&io)
        ))
    }

    fn plain(text: &str) {
        for wrap in [
            "Other(",
            "OtherError(",
            "Refusal",
            "\\\"",
            "invalid peer certificate",
        ] {
            assert!(!text.contains(wrap), "`{wrap}` in: {text}");
        }
        assert!(
            !text.contains("127.0.1.1"),
            "the callers name the agent: {text}"
        );
    }

    #[test]
    fn an_unverified_agent_named_by_hosts_is_told_what_works_with_hosts() {
        let got = Fingerprint::of_der(b"agent certificate");
        let text = shown(Listed::Hosts, None, b"agent certificate");
        plain(&text);
        assert!(
            text.starts_with(&format!(
                "cannot verify the certificate (the agent presents {got}): "
            )),
            "{text}"
        );
        assert_eq!(text.matches(&got.to_string()).count(), 1, "{text}");
        for want in ["--tofu", "--ca-file", "--inventory FILE instead of --hosts"] {
            assert!(text.contains(want), "missing `{want}` in: {text}");
        }
        assert!(!text.contains("entry in the inventory"), "{text}");
    }

    #[test]
    fn an_unverified_agent_of_an_inventory_is_told_to_pin_it_there() {
        let got = Fingerprint::of_der(b"agent certificate");
        let file = Listed::Inventory(Some(PathBuf::from("/etc/axon/inv.toml")));
        let text = shown(file, None, b"agent certificate");
        plain(&text);
        assert_eq!(text.matches(&got.to_string()).count(), 1, "{text}");
        for want in [
            "cannot verify the certificate",
            "[[node]] entry in inventory /etc/axon/inv.toml as fingerprint = \"sha256:…\"",
            "--ca-file",
            "--tofu",
        ] {
            assert!(text.contains(want), "missing `{want}` in: {text}");
        }
        assert!(!text.contains("--hosts"), "{text}");
    }

    #[test]
    fn a_changed_certificate_shows_each_fingerprint_once() {
        let got = Fingerprint::of_der(b"new certificate");
        let pin = Fingerprint::of_der(b"old certificate");
        let src = "inventory /etc/axon/inv.toml (node axon007)".to_string();
        let text = shown(
            Listed::Inventory(None),
            Some((pin, src)),
            b"new certificate",
        );
        plain(&text);
        assert!(
            text.starts_with(
                "the agent's certificate changed: inventory /etc/axon/inv.toml (node axon007) pins"
            ),
            "{text}"
        );
        assert_eq!(text.matches(&got.to_string()).count(), 1, "{text}");
        assert_eq!(text.matches(&pin.to_string()).count(), 1, "{text}");
    }

    #[test]
    fn other_tls_errors_are_left_as_they_are() {
        let d = "transport error: received corrupt message of type InvalidContentType";
        assert!(explain(d).starts_with(d));
        assert_eq!(explain("connection refused"), "connection refused");
    }
}

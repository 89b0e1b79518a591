//! The agent's TLS identity. On first start the agent creates an ECDSA P-256 key and a
//! self-signed certificate in `<state-dir>/tls/` (key mode 0600, directory 0700) and
//! prints the certificate's SHA-256 fingerprint, which the console pins (inventory
//! `fingerprint = "sha256:…"`). An operator with a PKI passes `--tls-cert`/`--tls-key`
//! instead, and the console verifies against `--ca-file`.

use crate::wire::tls::{ALPN_H2, Fingerprint, provider};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the agent's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTls {
    /// Plain text on TCP (`--insecure`): tokens travel in clear. Labs only.
    Off,
    /// Self-signed, created on first start in this directory.
    SelfSigned { dir: PathBuf },
    /// Operator-supplied PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{}: {source} — make the directory writable by the agent or pass --state-dir", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {detail}", path.display())]
    Pem { path: PathBuf, detail: String },
    #[error("{}: private key is readable by others (mode {mode:o}) — chmod 600 it", path.display())]
    KeyTooOpen { path: PathBuf, mode: u32 },
    #[error("certificate {} and key {} do not go together: {detail} — pass the key that signed this certificate", cert.display(), key.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("creating a self-signed certificate: {0}")]
    Generate(String),
}

/// A loaded certificate chain and key, and the fingerprint of the leaf certificate.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub fingerprint: Fingerprint,
    pub cert_path: PathBuf,
    /// True when this start created the certificate.
    pub created: bool,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identity({} {})",
            self.cert_path.display(),
            self.fingerprint
        )
    }
}

impl Identity {
    /// The rustls server configuration for this identity, announcing `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsSetupError> {
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Generate(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsSetupError::Mismatch {
                cert: self.cert_path.clone(),
                key: self.cert_path.with_file_name("key.pem"),
                detail: e.to_string(),
            })?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }

    /// For gRPC (HTTP/2).
    pub fn grpc_config(&self) -> Result<Arc<ServerConfig>, TlsSetupError> {
        self.server_config(&[ALPN_H2])
    }

    /// gRPC (HTTP/2) between peers: a server that requires a client certificate the
    /// verifier accepts (mutual TLS).
    pub fn mutual_server_config(
        &self,
        verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    ) -> Result<Arc<ServerConfig>, TlsSetupError> {
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Generate(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsSetupError::Generate(e.to_string()))?;
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(cfg))
    }

    /// gRPC (HTTP/2) between peers: a client that presents this identity and trusts the
    /// servers the verifier accepts.
    pub fn mutual_client_config(
        &self,
        verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    ) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Generate(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsSetupError::Generate(e.to_string()))?;
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(cfg))
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TlsSetupError + '_ {
    move |source| TlsSetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a PEM certificate chain and private key.
pub fn load_files(cert: &Path, key: &Path) -> Result<Identity, TlsSetupError> {
    let mode = std::fs::metadata(key)
        .map_err(io_err(key))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(TlsSetupError::KeyTooOpen {
            path: key.to_path_buf(),
            mode,
        });
    }
    let pem = |path: &Path, e: rustls_pki_types::pem::Error| match e {
        rustls_pki_types::pem::Error::Io(source) => TlsSetupError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => TlsSetupError::Pem {
            path: path.to_path_buf(),
            detail: format!("not a PEM file ({other})"),
        },
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(cert, e))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsSetupError::Pem {
            path: cert.to_path_buf(),
            detail: "holds no CERTIFICATE block — pass the PEM certificate (chain) of this agent"
                .into(),
        });
    };
    let fingerprint = Fingerprint::of_der(leaf);
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsSetupError::Pem {
            path: key.to_path_buf(),
            detail: "holds no PRIVATE KEY block — pass the PEM private key of the certificate"
                .into(),
        },
        e => pem(key, e),
    })?;
    let id = Identity {
        chain,
        key: key_der,
        fingerprint,
        cert_path: cert.to_path_buf(),
        created: false,
    };
    // Refuse a key that does not match the certificate now, not at the first handshake.
    id.server_config(&[ALPN_H2]).map_err(|e| match e {
        TlsSetupError::Mismatch { detail, .. } => TlsSetupError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            detail,
        },
        e => e,
    })?;
    Ok(id)
}

/// Loads the self-signed identity in `dir`, creating it on first start. Several agents
/// may share a state directory and start at once: the files are made in a private
/// temporary directory that is renamed into place, so a reader sees all or nothing.
pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Identity, TlsSetupError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let created = !cert.exists() && create(dir, names)?;
    if !key.exists() {
        return Err(TlsSetupError::Pem {
            path: key,
            detail: format!(
                "is missing beside {} — move the directory {} away to have a new key and certificate made (then pin the new fingerprint)",
                cert.display(),
                dir.display()
            ),
        });
    }
    let mut id = load_files(&cert, &key)?;
    id.created = created;
    Ok(id)
}

/// Creates the identity; false when another agent sharing the directory made it first.
fn create(dir: &Path, names: &[String]) -> Result<bool, TlsSetupError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let mut rnd = [0u8; 8];
    crate::collectors::sys::random_bytes(&mut rnd).map_err(io_err(parent))?;
    let tmp = parent.join(format!(
        ".tls-new-{}",
        rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(io_err(&tmp))?;
    }
    let result = (|| {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&tmp))?;
        let mut sans: Vec<String> = names.iter().filter(|n| !n.is_empty()).cloned().collect();
        for n in ["localhost", "127.0.0.1", "::1"] {
            if !sans.iter().any(|s| s == n) {
                sans.push(n.to_string());
            }
        }
        let mut params = rcgen::CertificateParams::new(sans)
            .map_err(|e| TlsSetupError::Generate(e.to_string()))?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!(
                "axon agent {}",
                names.first().map(String::as_str).unwrap_or("")
            ),
        );
        let key_pair =
            rcgen::KeyPair::generate().map_err(|e| TlsSetupError::Generate(e.to_string()))?;
        let cert = params
            .self_signed(&key_pair)
            .map_err(|e| TlsSetupError::Generate(e.to_string()))?;
        write_private(&tmp.join("key.pem"), key_pair.serialize_pem().as_bytes())?;
        write_private(&tmp.join("cert.pem"), cert.pem().as_bytes())?;
        let fp = Fingerprint::of_der(cert.der());
        write_private(&tmp.join("cert.fingerprint"), format!("{fp}\n").as_bytes())?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(true),
        // Another agent sharing the state directory won the race: use its certificate.
        Err(_) if dir.join("cert.pem").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(false)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(TlsSetupError::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsSetupError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_a_private_key_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("state/tls");
        let a = load_or_create(&tls, &["node1".into()]).unwrap();
        assert!(a.created);
        let mode = |p: &str| std::fs::metadata(tls.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("key.pem"), 0o600);
        assert_eq!(mode(""), 0o700);
        let b = load_or_create(&tls, &["node1".into()]).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        let written = std::fs::read_to_string(tls.join("cert.fingerprint")).unwrap();
        assert_eq!(written.trim(), a.fingerprint.to_string());
        a.grpc_config().unwrap();
    }

    #[test]
    fn a_key_readable_by_others_or_not_matching_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let one = load_or_create(&dir.path().join("one"), &[]).unwrap();
        let _ = one;
        load_or_create(&dir.path().join("two"), &[]).unwrap();
        let cert = dir.path().join("one/cert.pem");
        let key = dir.path().join("two/key.pem");
        let e = load_files(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("do not go together"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_files(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        let e = load_files(&junk, &dir.path().join("one/key.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("junk.pem") && e.contains("no CERTIFICATE"),
            "{e}"
        );
    }
}

//! Who may call the agent. Over TCP a bearer token is required: the admin token (every
//! call) or the reader token (read-only calls). Both are generated on first start into the
//! state directory with mode 0600. On the unix control socket the kernel tells us the
//! peer's uid: root (and the agent's own user) is trusted as admin.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Reader,
    Admin,
}

#[derive(Clone)]
pub struct Tokens {
    admin: String,
    reader: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("{}: {source} — create the directory or pass --state-dir / --token-file to a writable place", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: token file is empty or not one line of text — delete it to have a new one generated", path.display())]
    BadToken { path: PathBuf },
    #[error("{}: token file is readable by others (mode {mode:o}) — chmod 600 it", path.display())]
    TooOpen { path: PathBuf, mode: u32 },
}

pub fn random_token() -> io::Result<String> {
    let mut buf = [0u8; 32];
    crate::collectors::sys::random_bytes(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads a token file, creating it (mode 0600, parent 0700) with a fresh token if missing.
pub fn load_or_create(path: &Path) -> Result<String, AuthSetupError> {
    let io_err = |source| AuthSetupError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let mode = std::fs::metadata(path)
                .map_err(io_err)?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                return Err(AuthSetupError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            let t = s.trim();
            if t.is_empty() || t.contains(char::is_whitespace) {
                return Err(AuthSetupError::BadToken {
                    path: path.to_path_buf(),
                });
            }
            Ok(t.to_string())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                if !dir.as_os_str().is_empty() && !dir.exists() {
                    std::fs::create_dir_all(dir).map_err(|source| AuthSetupError::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
                }
            }
            let token = random_token().map_err(io_err)?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io_err)?;
            writeln!(f, "{token}").map_err(io_err)?;
            Ok(token)
        }
        Err(e) => Err(io_err(e)),
    }
}

impl Tokens {
    pub fn new(admin: String, reader: String) -> Self {
        Tokens { admin, reader }
    }

    /// Loads (or creates) `admin.token` and `reader.token`; `admin_file` overrides the
    /// admin token's path.
    pub fn load(state_dir: &Path, admin_file: Option<&Path>) -> Result<Self, AuthSetupError> {
        let admin_path = admin_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| state_dir.join("admin.token"));
        let admin = load_or_create(&admin_path)?;
        let reader = load_or_create(&state_dir.join("reader.token"))?;
        Ok(Tokens { admin, reader })
    }

    fn role_of(&self, presented: &str) -> Option<Role> {
        if ct_eq(presented.as_bytes(), self.admin.as_bytes()) {
            Some(Role::Admin)
        } else if ct_eq(presented.as_bytes(), self.reader.as_bytes()) {
            Some(Role::Reader)
        } else {
            None
        }
    }
}

/// Constant-time comparison, so response timing does not leak how much of a token matched.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The role a request is entitled to, or the status to refuse it with.
pub fn authorize<T>(tokens: &Tokens, req: &Request<T>) -> Result<Role, Status> {
    if let Some(info) = req.extensions().get::<UdsConnectInfo>() {
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        return match info.peer_cred.map(|c| c.uid()) {
            Some(0) => Ok(Role::Admin),
            Some(uid) if uid == me => Ok(Role::Admin),
            Some(uid) => Err(Status::permission_denied(format!(
                "uid {uid} may not use the control socket: only root (or the agent's own user) is trusted"
            ))),
            None => Err(Status::permission_denied(
                "control socket peer credentials unavailable",
            )),
        };
    }
    let header = req
        .metadata()
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("missing bearer token: send `authorization: Bearer <token>` (the agent's admin.token or reader.token)"))?;
    let value = header
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization header is not text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| Status::unauthenticated("authorization header must be `Bearer <token>`"))?;
    tokens
        .role_of(token.trim())
        .ok_or_else(|| Status::unauthenticated("invalid token"))
}

pub fn require<T>(tokens: &Tokens, req: &Request<T>, need: Role) -> Result<Role, Status> {
    let role = authorize(tokens, req)?;
    if role < need {
        return Err(Status::permission_denied("this call needs the admin token"));
    }
    Ok(role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_are_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state/admin.token");
        let t1 = load_or_create(&p).unwrap();
        assert_eq!(t1.len(), 64);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&p).unwrap(), t1);
    }

    #[test]
    fn world_readable_token_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("admin.token");
        std::fs::write(&p, "abc\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn bearer_tokens_map_to_roles() {
        let tokens = Tokens::new("admintok".into(), "readtok".into());
        let mut req = Request::new(());
        assert_eq!(
            authorize(&tokens, &req).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        req.metadata_mut()
            .insert("authorization", "Bearer readtok".parse().unwrap());
        assert_eq!(authorize(&tokens, &req).unwrap(), Role::Reader);
        assert_eq!(
            require(&tokens, &req, Role::Admin).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        req.metadata_mut()
            .insert("authorization", "Bearer admintok".parse().unwrap());
        assert_eq!(require(&tokens, &req, Role::Admin).unwrap(), Role::Admin);
        req.metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        assert!(authorize(&tokens, &req).is_err());
    }
}

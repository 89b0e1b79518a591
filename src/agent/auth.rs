//! Who may call the agent. Over TCP a bearer token is required: the admin token (every
//! call) or the reader token (read-only calls). Both are generated on first start into the
//! state directory with mode 0600. On the unix control socket the kernel tells us the
//! peer's uid: root (and the agent's own user) is trusted as admin.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tonic::transport::server::{TcpConnectInfo, UdsConnectInfo};
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
    #[error("{}: token file is not UTF-8 text — delete it to have a new one generated, or write one line of at least {MIN_TOKEN_LEN} characters", path.display())]
    NotText { path: PathBuf },
    #[error("{}: token is {len} characters; tokens must be at least {MIN_TOKEN_LEN} — delete the file to have a new 64-character one generated (or: head -c 32 /dev/urandom | xxd -p -c 64 > FILE)", path.display())]
    TooShort { path: PathBuf, len: usize },
    #[error("admin token {} is the same as the reader token {}: anyone with the reader token would be admin — pass --token-file with a different file, or delete {} to have a new admin token generated", admin.display(), reader.display(), admin.display())]
    AdminIsReader { admin: PathBuf, reader: PathBuf },
}

/// The shortest token the agent accepts (generated ones are 64 hex characters).
pub const MIN_TOKEN_LEN: usize = 32;

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
    match std::fs::read(path) {
        Ok(bytes) => {
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
            let s = String::from_utf8(bytes).map_err(|_| AuthSetupError::NotText {
                path: path.to_path_buf(),
            })?;
            let t = s.trim();
            if t.is_empty() || t.contains(char::is_whitespace) {
                return Err(AuthSetupError::BadToken {
                    path: path.to_path_buf(),
                });
            }
            if t.chars().count() < MIN_TOKEN_LEN {
                return Err(AuthSetupError::TooShort {
                    path: path.to_path_buf(),
                    len: t.chars().count(),
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
        let reader_path = state_dir.join("reader.token");
        let admin = load_or_create(&admin_path)?;
        let reader = load_or_create(&reader_path)?;
        if ct_eq(admin.as_bytes(), reader.as_bytes()) {
            return Err(AuthSetupError::AdminIsReader {
                admin: admin_path,
                reader: reader_path,
            });
        }
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

/// Who is calling, as the policy layer (`policy`) establishes it once per call and hands
/// to the handlers in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `admin token` or `reader token` over TCP; `uid N` on the control socket.
    pub name: String,
    pub role: Role,
    /// The organisation the principal acts for; None until multi-tenancy assigns one.
    pub org: Option<String>,
    /// Where the call came from: the peer's socket address over TCP, `unix uid N` on the
    /// control socket.
    pub source: String,
}

/// How `source` starts for a caller on the unix control socket.
const UNIX_SOURCE: &str = "unix uid ";

impl Principal {
    /// The principal the policy layer put into a request, or a refusal if it is missing
    /// (a service served without the layer refuses everything rather than trusting).
    pub fn of<T>(req: &Request<T>) -> Result<&Principal, Status> {
        req.extensions().get::<Principal>().ok_or_else(|| {
            Status::permission_denied(
                "no principal: this call did not pass the agent's policy layer",
            )
        })
    }

    /// For messages: `the reader token`, `uid 1000 on the control socket`.
    pub fn describe(&self) -> String {
        if self.source.starts_with(UNIX_SOURCE) {
            format!("{} on the control socket", self.name)
        } else {
            format!("the {}", self.name)
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Admin => "admin",
        }
    }
}

/// Where a call came from, from the connection info tonic puts into every request:
/// `unix uid N` on the control socket, the peer's address over TCP.
pub fn source_of(ext: &http::Extensions) -> String {
    if let Some(info) = ext.get::<UdsConnectInfo>() {
        return match info.peer_cred.map(|c| c.uid()) {
            Some(uid) => format!("{UNIX_SOURCE}{uid}"),
            None => format!("{UNIX_SOURCE}unknown"),
        };
    }
    match ext.get::<TcpConnectInfo>().and_then(|i| i.remote_addr) {
        Some(a) => a.to_string(),
        None => "unknown".into(),
    }
}

/// The principal a call authenticates as, or the status to refuse it with. On the control
/// socket the kernel's peer credentials decide (root and the agent's own user are admin;
/// a token is not looked at); over TCP the bearer token does.
pub fn authenticate(
    tokens: &Tokens,
    headers: &http::HeaderMap,
    ext: &http::Extensions,
) -> Result<Principal, Status> {
    let source = source_of(ext);
    if let Some(info) = ext.get::<UdsConnectInfo>() {
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        return match info.peer_cred.map(|c| c.uid()) {
            Some(uid) if uid == 0 || uid == me => Ok(Principal {
                name: format!("uid {uid}"),
                role: Role::Admin,
                org: None,
                source,
            }),
            Some(uid) => Err(Status::permission_denied(format!(
                "uid {uid} may not use the control socket: only root (or the agent's own user) is trusted"
            ))),
            None => Err(Status::permission_denied(
                "control socket peer credentials unavailable",
            )),
        };
    }
    let header = headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| Status::unauthenticated("missing bearer token: send `authorization: Bearer <token>` (the agent's admin.token or reader.token)"))?;
    let value = header
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization header is not text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| Status::unauthenticated("authorization header must be `Bearer <token>`"))?;
    let role = tokens
        .role_of(token.trim())
        .ok_or_else(|| Status::unauthenticated("invalid token"))?;
    Ok(Principal {
        name: format!("{} token", role.as_str()),
        role,
        org: None,
        source,
    })
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
        std::fs::write(&p, format!("{}\n", "a".repeat(40))).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    fn private_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    #[test]
    fn admin_token_file_pointing_at_the_reader_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        // First start creates both; then an operator passes the reader token as admin.
        Tokens::load(&state, None).unwrap();
        let e = Tokens::load(&state, Some(&state.join("reader.token")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("same as the reader token") && e.contains("--token-file"),
            "{e}"
        );
        // A copy of the reader token's text in another file is refused the same way.
        let reader = std::fs::read(state.join("reader.token")).unwrap();
        let copy = private_file(dir.path(), "copy.token", &reader);
        let e = Tokens::load(&state, Some(&copy)).unwrap_err().to_string();
        assert!(e.contains("same as the reader token"), "{e}");
    }

    #[test]
    fn tokens_shorter_than_32_characters_are_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let short = private_file(dir.path(), "admin.token", b"x\n");
        let e = Tokens::load(&dir.path().join("state"), Some(&short))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("admin.token") && e.contains("1 characters") && e.contains("at least 32"),
            "{e}"
        );
        let ok = private_file(dir.path(), "ok.token", "k".repeat(32).as_bytes());
        Tokens::load(&dir.path().join("state"), Some(&ok)).unwrap();
    }

    #[test]
    fn non_utf8_token_file_is_named_as_not_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = private_file(dir.path(), "admin.token", &[0xff, 0xfe, 0x00, 0x41]);
        let e = load_or_create(&p).unwrap_err().to_string();
        assert!(
            e.contains("not UTF-8") && !e.contains("create the directory"),
            "{e}"
        );
    }

    #[test]
    fn bearer_tokens_map_to_principals() {
        let tokens = Tokens::new("admintok".into(), "readtok".into());
        let mut ext = http::Extensions::new();
        ext.insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: Some("192.0.2.7:40000".parse().unwrap()),
        });
        let with = |value: Option<&str>| {
            let mut h = http::HeaderMap::new();
            if let Some(v) = value {
                h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
            }
            authenticate(&tokens, &h, &ext)
        };
        let e = with(None).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(e.message().contains("Bearer"), "{}", e.message());
        let reader = with(Some("Bearer readtok")).unwrap();
        assert_eq!(
            reader,
            Principal {
                name: "reader token".into(),
                role: Role::Reader,
                org: None,
                source: "192.0.2.7:40000".into(),
            }
        );
        assert_eq!(reader.describe(), "the reader token");
        assert_eq!(with(Some("Bearer admintok")).unwrap().role, Role::Admin);
        for bad in ["Bearer nope", "Bearer admintokx", "admintok", "Bearer "] {
            assert_eq!(
                with(Some(bad)).unwrap_err().code(),
                tonic::Code::Unauthenticated,
                "{bad}"
            );
        }
    }
}

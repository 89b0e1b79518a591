//! `HostRoot`: the directory every collector reads under (`/` in production, a captured
//! fixture tree in tests and in `axon demo`), plus the syscall seam for the facts that are
//! not files. A tree with `_fixture/profile.toml` is an emulated host: its syscalls are
//! answered from files in `_fixture/` and every view labels it as emulated.

use super::bounded_read::{MAX_FILE_BYTES, MAX_VALUE_BYTES, read_bounded};
// Named here as well: the agent's startup checks use it for its own files.
pub use super::bounded_read::kind_of;
use super::error::CollectError;
use super::sys::{FixtureSys, RealSys, SysAccess};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone)]
pub struct HostRoot {
    root: PathBuf,
    sys: Arc<dyn SysAccess>,
    profile: Option<Profile>,
}

impl std::fmt::Debug for HostRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRoot")
            .field("root", &self.root)
            .field("profile", &self.profile)
            .finish()
    }
}

pub const PROFILE_FILE: &str = "_fixture/profile.toml";

/// How long startup (opening the host root, reading the hostname) may take before it is an
/// error rather than an agent that never binds.
pub const STARTUP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

impl HostRoot {
    /// Opens a host root. Fails when the directory does not exist or its profile file is
    /// unreadable, so a typo in `--host-root` is caught at start, not as 40 collector errors.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, CollectError> {
        let root: PathBuf = root.into();
        let meta = std::fs::metadata(&root).map_err(|source| CollectError::Unreadable {
            path: root.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(CollectError::Invalid {
                what: format!("host root {}", root.display()),
                detail: "is not a directory — pass the directory that holds proc/ and sys/".into(),
            });
        }
        let profile_path = root.join(PROFILE_FILE);
        let profile = match read_bounded(&profile_path, &profile_path, MAX_VALUE_BYTES) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| CollectError::malformed(&profile_path, "not valid UTF-8 text"))?;
                Some(
                    toml::from_str::<Profile>(&text).map_err(|e| {
                        CollectError::malformed(&profile_path, e.message().to_string())
                    })?,
                )
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let sys: Arc<dyn SysAccess> = if profile.is_some() {
            Arc::new(FixtureSys::new(root.join("_fixture")))
        } else {
            Arc::new(RealSys::new(root.clone()))
        };
        Ok(HostRoot { root, sys, profile })
    }

    /// `open` on the blocking pool within `deadline`: a host root on a hung file system
    /// (NFS, FUSE) is an error naming it, not a start that never ends. The stuck thread is
    /// left behind; the process exits without waiting for it.
    pub async fn open_within(
        root: impl Into<PathBuf>,
        deadline: std::time::Duration,
    ) -> Result<Self, CollectError> {
        let root: PathBuf = root.into();
        let r = root.clone();
        match tokio::time::timeout(deadline, tokio::task::spawn_blocking(move || Self::open(r)))
            .await
        {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => Err(CollectError::Invalid {
                what: format!("host root {}", root.display()),
                detail: format!("opening it failed: {e}"),
            }),
            Err(_) => Err(CollectError::TimedOut {
                path: root,
                deadline,
            }),
        }
    }

    /// This host's name: `/proc/sys/kernel/hostname`, else `/etc/hostname`; None when
    /// neither holds a plausible name (at most 253 printable characters, no spaces).
    pub fn hostname(&self) -> Option<String> {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .filter_map(|p| self.value(p).ok())
            .find(|h| {
                !h.is_empty()
                    && h.len() <= 253
                    && h.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii())
                    && !h.chars().any(char::is_control)
            })
    }

    /// A root with an explicit syscall implementation (tests).
    pub fn with_sys(root: impl Into<PathBuf>, sys: Arc<dyn SysAccess>) -> Self {
        HostRoot {
            root: root.into(),
            sys,
            profile: None,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    pub fn sys(&self) -> &dyn SysAccess {
        self.sys.as_ref()
    }

    /// Absolute path of a host path (`/proc/swaps` → `<root>/proc/swaps`).
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    fn unreadable(&self, host_path: &str, source: io::Error) -> CollectError {
        CollectError::Unreadable {
            path: self.display_path(host_path),
            source,
        }
    }

    /// The path as errors show it: the host path for `/`, the full path otherwise, so
    /// messages about fixtures point at the fixture file.
    pub fn display_path(&self, host_path: &str) -> PathBuf {
        if self.root == Path::new("/") {
            PathBuf::from(host_path)
        } else {
            self.path(host_path)
        }
    }

    /// Reads a text file: a regular file of at most `MAX_FILE_BYTES` (see `read_bounded`).
    pub fn read(&self, host_path: &str) -> Result<String, CollectError> {
        self.read_capped(host_path, MAX_FILE_BYTES)
    }

    fn read_capped(&self, host_path: &str, cap: u64) -> Result<String, CollectError> {
        let bytes = read_bounded(&self.path(host_path), &self.display_path(host_path), cap)?;
        String::from_utf8(bytes).map_err(|_| {
            CollectError::malformed(self.display_path(host_path), "not valid UTF-8 text")
        })
    }

    /// Reads a file; `Ok(None)` when it does not exist.
    pub fn read_opt(&self, host_path: &str) -> Result<Option<String>, CollectError> {
        match self.read(host_path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads a one-value file (at most `MAX_VALUE_BYTES`), trimmed.
    pub fn value(&self, host_path: &str) -> Result<String, CollectError> {
        Ok(self
            .read_capped(host_path, MAX_VALUE_BYTES)?
            .trim()
            .to_string())
    }

    pub fn value_opt(&self, host_path: &str) -> Result<Option<String>, CollectError> {
        match self.value(host_path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads and parses a one-value file, naming the file when the value does not parse.
    pub fn parse<T: std::str::FromStr>(&self, host_path: &str) -> Result<T, CollectError> {
        let v = self.value(host_path)?;
        v.parse().map_err(|_| {
            CollectError::malformed(
                self.display_path(host_path),
                format!("`{v}` is not a {}", short_type::<T>()),
            )
        })
    }

    pub fn parse_opt<T: std::str::FromStr>(
        &self,
        host_path: &str,
    ) -> Result<Option<T>, CollectError> {
        match self.parse(host_path) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Entry names of a directory, sorted (in natural order for `cpu10` vs `cpu9`).
    pub fn list(&self, host_path: &str) -> Result<Vec<String>, CollectError> {
        let rd =
            std::fs::read_dir(self.path(host_path)).map_err(|e| self.unreadable(host_path, e))?;
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| self.unreadable(host_path, e))?;
            if let Some(n) = entry.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        names.sort_by(|a, b| natural_cmp(a, b));
        Ok(names)
    }

    pub fn list_opt(&self, host_path: &str) -> Result<Vec<String>, CollectError> {
        match self.list(host_path) {
            Ok(v) => Ok(v),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Whether the path exists (a dangling symlink counts: systemd's enablement links
    /// point at paths that may only exist on the real host). An error other than "not
    /// found" (permission denied on a parent directory, a file where a directory should be)
    /// is returned, never taken as absence: the fact is then unknown.
    pub fn exists(&self, host_path: &str) -> Result<bool, CollectError> {
        match std::fs::symlink_metadata(self.path(host_path)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.unreadable(host_path, e)),
        }
    }

    /// Follows symlinks the way the host would, but inside the root: an absolute link
    /// target is taken relative to the root. Returns the resolved host path, `Ok(None)`
    /// when it does not resolve to an existing file or directory (a missing component or
    /// a dangling link), and the error when a component cannot be read or the links loop
    /// (as ELOOP): then whether it resolves is unknown.
    pub fn resolve(&self, host_path: &str) -> Result<Option<String>, CollectError> {
        let mut parts: Vec<String> = Vec::new();
        let mut pending: Vec<String> = host_path
            .split('/')
            .filter(|s| !s.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    parts.pop();
                    continue;
                }
                _ => {}
            }
            parts.push(part);
            let current = format!("/{}", parts.join("/"));
            let meta = match std::fs::symlink_metadata(self.path(&current)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(self.unreadable(&current, e)),
            };
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return Err(
                        self.unreadable(&current, io::Error::from_raw_os_error(libc::ELOOP))
                    );
                }
                let target = std::fs::read_link(self.path(&current))
                    .map_err(|e| self.unreadable(&current, e))?;
                parts.pop();
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    if let Component::Normal(s) = c {
                        pending.push(s.to_string_lossy().into_owned());
                    } else if let Component::ParentDir = c {
                        pending.push("..".into());
                    }
                }
            }
        }
        let resolved = format!("/{}", parts.join("/"));
        match std::fs::metadata(self.path(&resolved)) {
            Ok(_) => Ok(Some(resolved)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.unreadable(&resolved, e)),
        }
    }

    /// The final component of a symlink's target (`device/driver` → `mlx5_core`).
    pub fn link_name(&self, host_path: &str) -> Option<String> {
        let target = std::fs::read_link(self.path(host_path)).ok()?;
        target.file_name().map(|s| s.to_string_lossy().into_owned())
    }
}

fn short_type<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    match full {
        "u8" | "u16" | "u32" | "u64" | "usize" => "non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "isize" => "integer",
        _ => full.rsplit("::").next().unwrap_or(full),
    }
}

/// Compares names so that embedded numbers sort numerically: cpu2 < cpu10.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut ai, mut bi) = (a.as_bytes(), b.as_bytes());
    loop {
        match (ai.first(), bi.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let an = ai.iter().take_while(|c| c.is_ascii_digit()).count();
                let bn = bi.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&ai[..an], &bi[..bn]);
                let ta = trim_zeros(na);
                let tb = trim_zeros(nb);
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                ai = &ai[an..];
                bi = &bi[bn..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                ai = &ai[1..];
                bi = &bi[1..];
            }
        }
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b'0').count();
    &s[n.min(s.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_sorts_numbers_numerically() {
        let mut v = vec!["cpu10", "cpu2", "cpu1", "cpufreq", "node0"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["cpu1", "cpu2", "cpu10", "cpufreq", "node0"]);
    }

    #[test]
    fn resolve_keeps_absolute_links_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("usr/src/hdr")).unwrap();
        std::fs::create_dir_all(r.join("lib/modules/6.1")).unwrap();
        std::os::unix::fs::symlink("/usr/src/hdr", r.join("lib/modules/6.1/build")).unwrap();
        std::os::unix::fs::symlink("../../../usr/src/missing", r.join("lib/modules/6.1/source"))
            .unwrap();
        let root = HostRoot::with_sys(r, Arc::new(RealSys::new(r.to_path_buf())));
        assert_eq!(
            root.resolve("/lib/modules/6.1/build").unwrap().as_deref(),
            Some("/usr/src/hdr")
        );
        assert_eq!(root.resolve("/lib/modules/6.1/source").unwrap(), None);
        assert!(
            root.exists("/lib/modules/6.1/source").unwrap(),
            "dangling link still exists"
        );
    }

    /// Root ignores file modes, so these stand in for EACCES: a file where a directory
    /// should be (ENOTDIR) and a link that points at itself (ELOOP).
    #[test]
    fn exists_and_resolve_keep_errors_other_than_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("lib/modules")).unwrap();
        std::fs::write(r.join("lib/modules/6.1"), "").unwrap();
        std::os::unix::fs::symlink("loop", r.join("lib/modules/loop")).unwrap();
        let root = HostRoot::with_sys(r, Arc::new(RealSys::new(r.to_path_buf())));
        assert!(!root.exists("/lib/modules/6.2").unwrap());
        assert_eq!(root.resolve("/lib/modules/6.2/build").unwrap(), None);
        let e = root
            .exists("/lib/modules/6.1/build")
            .unwrap_err()
            .to_string();
        assert!(e.contains("6.1/build unreadable (not a directory)"), "{e}");
        let e = root
            .resolve("/lib/modules/6.1/build")
            .unwrap_err()
            .to_string();
        assert!(e.contains("6.1/build unreadable (not a directory)"), "{e}");
        assert!(root.exists("/lib/modules/loop").unwrap());
        let e = root.resolve("/lib/modules/loop").unwrap_err().to_string();
        assert!(
            e.contains("loop unreadable (too many levels of symbolic links)"),
            "{e}"
        );
    }

    #[test]
    fn parse_errors_name_the_file_and_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mtu"), "lots\n").unwrap();
        let root = HostRoot::with_sys(dir.path(), Arc::new(RealSys::new(dir.path().into())));
        let e = root.parse::<u32>("/mtu").unwrap_err().to_string();
        assert!(
            e.contains("mtu malformed: `lots` is not a non-negative integer"),
            "{e}"
        );
        let e = root.read("/missing").unwrap_err().to_string();
        assert!(e.contains("missing unreadable (not found)"), "{e}");
    }

    #[test]
    fn open_rejects_a_missing_root() {
        let e = HostRoot::open("/definitely/not/here")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/definitely/not/here unreadable (not found)"),
            "{e}"
        );
    }
}

//! The collectors' error type. Every message names the file or syscall, what went wrong and
//! what to do about it, e.g. `/sys/class/nvme/nvme3/model unreadable (permission denied) —
//! run the agent as root`. The node name is added by the layer that knows it.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{} unreadable ({}) — {}", path.display(), io_reason(source), io_remedy(source))]
    Unreadable { path: PathBuf, source: io::Error },

    #[error("{} malformed: {detail} — {}", path.display(), MALFORMED_REMEDY)]
    Malformed { path: PathBuf, detail: String },

    #[error("{what} failed ({}) — {}", io_reason(source), syscall_remedy(source))]
    Syscall { what: String, source: io::Error },

    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },

    /// A FIFO, socket, device or directory where a file of the kernel's should be: never
    /// read, because reading it could block forever or never end.
    #[error("{} is {kind}, not a regular file — not read (it could block forever); check --host-root", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },

    /// A file longer than the cap for its kind: read no further than the cap.
    #[error("{} is larger than {limit} bytes — not read; the kernel's files are far smaller, check --host-root", path.display())]
    TooLarge { path: PathBuf, limit: u64 },

    /// A read that did not finish within its deadline (a hung NFS or FUSE mount).
    #[error("{} did not answer within {} ms — a hung file system? check the mount", path.display(), deadline.as_millis())]
    TimedOut {
        path: PathBuf,
        deadline: std::time::Duration,
    },
}

const MALFORMED_REMEDY: &str = "the file does not look like the kernel's; check --host-root, or report it with the file attached";

impl CollectError {
    pub fn malformed(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        CollectError::Malformed {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CollectError::Unreadable { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "not found".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            // io::Error's Display appends "(os error N)"; keep the words only.
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s.to_lowercase(),
            }
        }
    }
}

fn io_remedy(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "run the agent as root",
        io::ErrorKind::NotFound => {
            "this kernel or host root does not provide it; check --host-root and that the module is loaded"
        }
        _ => "check that the file system is readable",
    }
}

fn syscall_remedy(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => "run the agent as root (CAP_SYS_ADMIN)",
        Some(libc::ENOTTY) | Some(libc::EINVAL) => {
            "the device does not support this request; check it is an NVMe controller"
        }
        Some(libc::ENOENT) | Some(libc::ENODEV) => "the device is gone; check `dmesg` for resets",
        _ => "check `dmesg` for kernel errors",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_reason_and_remedy() {
        let e = CollectError::Unreadable {
            path: "/sys/class/nvme/nvme3/model".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            e.to_string(),
            "/sys/class/nvme/nvme3/model unreadable (permission denied) — run the agent as root"
        );
        let e = CollectError::malformed("/proc/swaps", "line 2 has 3 fields, expected 5");
        assert!(
            e.to_string()
                .starts_with("/proc/swaps malformed: line 2 has 3 fields")
        );
    }
}

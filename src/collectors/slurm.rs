//! Reads the slurm.conf (and cgroup.conf) the agent or `axon check` was given, bounded,
//! with the files their `Include` lines name (relative to the including file's
//! directory), and hands them to the pure parser and judges (`model::slurmconf`,
//! `model::judges::slurm`). The paths are the operator's, read as given (not under
//! `--host-root`): they name files on the machine axon runs on.

use super::HostRoot;
use super::bounded_read::{MAX_FILE_BYTES, read_bounded};
use super::error::CollectError;
use crate::model::checks::CheckResult;
use crate::model::judges::CheckInputs;
use crate::model::judges::slurm::{self, SlurmConfError, SlurmFacts};
use crate::model::slurmconf::{self, Dialect, SlurmConf};
use std::path::{Path, PathBuf};

/// The files given with `--slurm-conf` and `--cgroup-conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmFiles {
    pub slurm_conf: PathBuf,
    pub cgroup_conf: Option<PathBuf>,
}

/// The text of `path`, bounded; the error says what is wrong with the file.
fn read_text(path: &Path) -> Result<String, SlurmConfError> {
    let bytes = read_bounded(path, path, MAX_FILE_BYTES).map_err(|e| match e {
        CollectError::TooLarge { path, limit } => SlurmConfError::Invalid(format!(
            "{} is larger than {} MiB — not read: not a Slurm configuration file?",
            path.display(),
            limit / (1024 * 1024)
        )),
        // The host-file remedies (`check --host-root`) do not fit a file the operator named.
        CollectError::Unreadable { path, source } => SlurmConfError::Unreadable(format!(
            "{} unreadable: {}",
            path.display(),
            match source.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::PermissionDenied =>
                    "permission denied (run axon as a user that may read it)".to_string(),
                _ => source.to_string(),
            }
        )),
        CollectError::NotRegular { path, kind } => SlurmConfError::Unreadable(format!(
            "{} is {kind}, not a regular file — not read",
            path.display()
        )),
        e => SlurmConfError::Unreadable(e.to_string()),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        SlurmConfError::Invalid(format!(
            "{}:{line}: binary data (not UTF-8 text): not a Slurm configuration file",
            path.display()
        ))
    })
}

/// Reads and parses one file of `dialect`, its includes with it.
pub fn read_conf(dialect: Dialect, path: &Path) -> Result<SlurmConf, SlurmConfError> {
    let text = read_text(path)?;
    let mut include = |p: &str, from: &str| -> Result<(String, String), String> {
        let p = Path::new(p);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            Path::new(from).parent().unwrap_or(Path::new(".")).join(p)
        };
        // An unreadable include makes the whole file unjudgeable, like a bad line.
        read_text(&full)
            .map(|t| (full.display().to_string(), t))
            .map_err(|e| match e {
                SlurmConfError::Unreadable(s) | SlurmConfError::Invalid(s) => s,
            })
    };
    slurmconf::parse(dialect, &path.display().to_string(), &text, &mut include)
        .map_err(|e| SlurmConfError::Invalid(e.to_string()))
}

/// The facts the Slurm judges need: the files, and this host's name.
pub fn facts(root: &HostRoot, files: &SlurmFiles) -> SlurmFacts {
    SlurmFacts {
        hostname: root.hostname(),
        slurm_conf: read_conf(Dialect::SlurmConf, &files.slurm_conf),
        cgroup_conf: files
            .cgroup_conf
            .as_deref()
            .map(|p| read_conf(Dialect::CgroupConf, p)),
    }
}

/// The Slurm checks of this host.
pub fn collect(root: &HostRoot, files: &SlurmFiles, inp: &CheckInputs) -> Vec<CheckResult> {
    slurm::checks(&facts(root, files), inp)
}

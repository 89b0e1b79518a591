//! Host facts → model, node_exporter style: one module per collector, each a function from
//! files under a `HostRoot` (and, where there is no file, the syscall seam in `sys`) to
//! plain model data. Collectors never shell out and never panic on what they read.

pub mod bounded_read;
pub mod checks;
pub mod error;
pub mod hostroot;
pub mod iproute_json;
pub mod net;
pub mod netlink;
pub mod nvme;
pub mod pinning;
pub mod probes;
pub mod slurm;
pub mod smart;
pub mod sys;
pub mod topology;

pub use error::CollectError;
pub use hostroot::HostRoot;

/// Non-fatal problems met during one collection: a broken file for one CPU or one drive is
/// reported here while the rest of the section is still collected.
#[derive(Debug, Default)]
pub struct Problems(Vec<CollectError>);

impl Problems {
    pub fn push(&mut self, e: CollectError) {
        self.0.push(e);
    }

    /// Keeps the value, or records the error and yields None.
    pub fn take<T>(&mut self, r: Result<T, CollectError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &CollectError> {
        self.0.iter()
    }

    /// One line for a status field: the first problem and how many more there were.
    pub fn summary(&self) -> Option<String> {
        let first = self.0.first()?;
        Some(match self.0.len() {
            1 => first.to_string(),
            n => format!("{first} (and {} more)", n - 1),
        })
    }
}

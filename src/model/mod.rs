//! Plain data shared by every layer: what a node is, what was observed on it and when.
//! No I/O lives here. Collectors fill these types, the wire carries them, the UI and the
//! CLI render them, and the exporter turns them into metrics.

pub mod checks;
pub mod clock;
pub mod cpuset;
pub mod hostlist;
pub mod net;
pub mod nvme;
pub mod ops;
pub mod pinning;
pub mod plan;
pub mod ports;
pub mod probes;
pub mod snapshot;
pub mod topology;

pub use checks::{CheckResult, CheckStatus};
pub use cpuset::CpuSet;
pub use net::{Network, Nic, NicKind};
pub use nvme::{NvmeController, NvmeNamespace, SmartLog};
pub use pinning::{ContainerRole, CpuUse, Owner, Pinning, ProcRef};
pub use probes::{ProbeResult, ProbeState, Proto};
pub use snapshot::{CollectorStatus, HostFacts, NodeInfo, NodeSnapshot, Section};
pub use topology::{Cpu, HugePagePool, NumaNode, Topology};

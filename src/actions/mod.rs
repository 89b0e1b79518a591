//! Operations on the cluster, shared by the TUI and the CLI. Each runs as a sequence of
//! steps and reports progress over a channel (`Step`, `Log`, `Finished`), so the panel,
//! the CLI verb and the tests drive the same code.

pub mod probe;

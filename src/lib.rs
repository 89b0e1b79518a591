//! axon: operator console, node agent and exporter for NeuralMesh Axon storage clusters.
//!
//! Layers, from the bottom: `model` (plain data), `collectors` (host facts), `agent`
//! (the per-node daemon and exporter), `wire` (the gRPC contract), `fleet` (the console's
//! side of the wire), `actions` (operations with progress), `ui` (the TUI).

pub mod actions;
pub mod agent;
pub mod cli;
pub mod clock;
pub mod collectors;
pub mod commands;
pub mod dataplane;
pub mod demo;
pub mod fleet;
pub mod model;
pub mod telemetry;
pub mod ui;
pub mod wire;

//! The console's side of the wire: connections to agents (and, in the console, inventory,
//! polling and aggregation into a ClusterView).

pub mod client;

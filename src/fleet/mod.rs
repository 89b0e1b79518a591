//! The console's side of the wire: the inventory of agents, one follower task per agent
//! (Watch stream, timeouts, backoff, reconnect), and the `ClusterView` they feed, including
//! the checks only a view of the whole cluster can decide and the cluster's health.

pub mod client;
pub mod cluster;
pub mod cluster_checks;
pub mod direct;
pub mod follow;
pub mod health;
pub mod inventory;
pub mod ops;
pub mod tls;
pub mod view;
pub mod watch;

pub use follow::{Fleet, FollowOptions};
pub use health::{Health, Verdict};
pub use inventory::{Inventory, NodeSpec};
pub use view::{ClusterView, NodeStatus, NodeView};

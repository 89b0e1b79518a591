//! One module per panel. Each renders from the `ViewState` into its area and nothing else.

pub mod checks;
pub mod cores;
pub mod drives;
pub mod events;
pub mod network;
pub mod overview;
pub mod stripes;

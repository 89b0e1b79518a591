//! The panels, one file each (see `component::Panel`). Adding a panel is adding its file
//! and one line to `all`: the tab bar, the digit keys, `:panel NAME`, the help and the
//! snapshot tests take the list from here.

pub mod checks;
pub mod cores;
pub mod drives;
pub mod events;
pub mod network;
pub mod overview;
pub mod stripes;

use super::component::Panel;

/// Every panel, in tab order.
pub fn all() -> Vec<Box<dyn Panel>> {
    vec![
        Box::new(overview::Overview::default()),
        Box::new(cores::Cores::default()),
        Box::new(drives::Drives::default()),
        Box::new(network::Network::default()),
        Box::new(checks::Checks::default()),
        Box::new(stripes::Stripes::default()),
        Box::new(events::Events::default()),
    ]
}

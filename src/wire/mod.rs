//! The gRPC wire: generated protobuf types and services, and conversions to and from the
//! plain model. Only `agent` and `fleet` use this module.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("axon.v1");
}

pub mod chunks;
pub mod codec;
mod convert;
mod dataplane;
mod ops;
pub mod tls;
pub use convert::{
    DecodedSnapshot, WireError, decode_snapshot, encode_memory, encode_pinning_changes,
    encode_probe_changes, encode_probe_report, encode_snapshot, merge_snapshot, proto_from_pb,
    proto_to_pb,
};
pub use dataplane::{decode_config, decode_node_dataplane, encode_config, encode_node_dataplane};
pub use ops::{decode_operation, encode_operation};

/// The error and its causes on one line ("transport error: connection refused"),
/// for logs and messages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

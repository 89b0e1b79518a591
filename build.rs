//! Build steps:
//! 1. Compiles proto/axon/v1/*.proto with protox (a pure-Rust protobuf compiler, so no
//!    system protoc is needed) and generates prost messages plus tonic clients and servers.
//! 2. Packs the emulated host profiles (tests/fixtures/hosts/<profile>/) into one blob that
//!    `axon demo` unpacks, so the demo works from an installed binary too.

use std::io::Write;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/axon/v1/node.proto",
        "proto/axon/v1/operations.proto",
        "proto/axon/v1/cluster.proto",
        "proto/axon/v1/cluster_admin.proto",
        "proto/axon/v1/data.proto",
        "proto/axon/v1/dataplane.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    // Chunk and object payloads as `Bytes`: handed from the wire to the store and back
    // without a copy.
    tonic_prost_build::configure()
        .bytes(".axon.v1.PutChunkRequest.data")
        .bytes(".axon.v1.GetChunkReply.data")
        .bytes(".axon.v1.PutObjectRequest.data")
        .bytes(".axon.v1.GetObjectReply.data")
        // prost's codec with buffers sized to the message (src/wire/codec.rs).
        .codec_path("crate::wire::codec::WireCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;

    let hosts = Path::new("tests/fixtures/hosts");
    println!("cargo:rerun-if-changed={}", hosts.display());
    let out = Path::new(&std::env::var("OUT_DIR")?).join("profiles.bin");
    let mut blob = Vec::new();
    if hosts.is_dir() {
        let mut profiles: Vec<_> = std::fs::read_dir(hosts)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("_fixture/profile.toml").is_file())
            .collect();
        profiles.sort();
        for p in profiles {
            pack(&p, hosts, &mut blob)?;
        }
    }
    std::fs::File::create(out)?.write_all(&blob)?;
    Ok(())
}

/// Record: kind (0 file, 1 symlink, 2 directory), u16 path length, path, u32 data length,
/// data (file contents or link target). Paths are relative to tests/fixtures/hosts.
fn pack(dir: &Path, base: &Path, blob: &mut Vec<u8>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    let rel = dir
        .strip_prefix(base)
        .expect("under base")
        .to_string_lossy()
        .into_owned();
    record(blob, 2, &rel, &[]);
    for e in entries {
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path)?;
        let rel = path
            .strip_prefix(base)
            .expect("under base")
            .to_string_lossy()
            .into_owned();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            record(blob, 1, &rel, target.to_string_lossy().as_bytes());
        } else if meta.is_dir() {
            pack(&path, base, blob)?;
        } else {
            record(blob, 0, &rel, &std::fs::read(&path)?);
        }
    }
    Ok(())
}

fn record(blob: &mut Vec<u8>, kind: u8, path: &str, data: &[u8]) {
    blob.push(kind);
    blob.extend_from_slice(&(path.len() as u16).to_le_bytes());
    blob.extend_from_slice(path.as_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_le_bytes());
    blob.extend_from_slice(data);
}

//! Generates the tonic `grpc.testing` benchmark messages, server and client
//! from `benches/proto/benchmark_service.proto` (the proto our bench tool
//! uses), with `bytes::Bytes` payloads as ours has, using a vendored
//! `protoc` so the machine needs none installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // prost-build finds protoc through `PROTOC`; setting the variable is
    // safe in edition 2021 and only affects this build script's process.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .bytes(".")
        .build_server(true)
        .build_client(true)
        .compile_protos(&["../proto/benchmark_service.proto"], &["../proto"])?;
    Ok(())
}

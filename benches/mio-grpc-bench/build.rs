//! Generates the `grpc.testing` benchmark messages and service from
//! `benches/proto/benchmark_service.proto`, with `bytes::Bytes` payloads so a
//! decoded request points into the received buffer.

fn main() {
    mio_grpc_codegen::Builder::new()
        .bytes(["."])
        .compile(&["../proto/benchmark_service.proto"], &["../proto"])
        .expect("generating the benchmark service");
}

//! The mio-grpc bench tool as a library: the pieces that the
//! `mio-grpc-bench` binary and the tonic comparison in `benches/peers`
//! share — the result record and its JSON line ([`report`]), starting
//! pinned processes ([`spawn`]), the raw TCP ping-pong floor ([`floor`]),
//! text tables ([`table`]) and the latency-percentile SVG ([`svg`]) — plus
//! our own server and client ([`server`], [`client`]), the idle-streams
//! scenario ([`idle`]) and the generated `grpc.testing` benchmark service
//! ([`proto`]).
//!
//! The contract the binaries follow is `../shared/BENCH.md`: `server --port
//! P` serves `grpc.testing.BenchmarkService` on 127.0.0.1:P; `client
//! --target HOST:PORT --rpc unary|streaming --concurrency C --connections K
//! --duration S --warmup S --req-size B --resp-size B` runs a closed loop and
//! prints a human line and then one JSON line.

pub mod alloc;
pub mod args;
pub mod client;
pub mod floor;
pub mod idle;
pub mod report;
pub mod server;
pub mod spawn;
pub mod svg;
pub mod table;

/// The generated `grpc.testing` messages, `BenchmarkService` server trait
/// and client (from `benches/proto/benchmark_service.proto`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/grpc.testing.rs"));
}

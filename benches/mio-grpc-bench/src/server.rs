//! Our `grpc.testing.BenchmarkService` server (on the generated trait) and
//! a small stats service the bench client asks for the server's
//! allocations per call.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mio_grpc::grpc::Status;
use mio_grpc::server::{Context, MethodDesc, RequestStream, ResponseSink, Server, ServiceDesc};
use serde::{Deserialize, Serialize};

use crate::proto::{
    benchmark_service_service, BenchmarkService, Payload, SimpleRequest, SimpleResponse,
};

/// The full path of the stats method (raw bytes in, JSON [`ServerStats`]
/// out).
pub const STATS_METHOD: &str = "/mio_grpc.bench.Stats/Snapshot";

/// The largest `response_size` served (larger requests get
/// INVALID_ARGUMENT, as does a negative one).
pub const MAX_RESPONSE_SIZE: i32 = 64 << 20;

/// Zero bytes that small response payloads point into (no allocation).
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// `n` zero bytes: a slice of [`ZEROS`] when it fits, else a new buffer.
pub fn zeros(n: usize) -> Bytes {
    match ZEROS.get(..n) {
        Some(slice) => Bytes::from_static(slice),
        None => Bytes::from(vec![0u8; n]),
    }
}

/// What the stats method returns: the server process's allocations and the
/// benchmark messages answered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Heap allocations in the server process so far.
    pub allocs: u64,
    /// Unary calls plus streaming responses answered so far.
    pub calls: u64,
}

/// The benchmark service: responses of `response_size` zero bytes.
#[derive(Debug, Default)]
pub struct BenchService {
    calls: Arc<AtomicU64>,
}

fn response(request: &SimpleRequest) -> Result<SimpleResponse, Status> {
    if !(0..=MAX_RESPONSE_SIZE).contains(&request.response_size) {
        return Err(Status::invalid_argument(format!(
            "response_size {} is outside 0..={MAX_RESPONSE_SIZE}",
            request.response_size
        )));
    }
    Ok(SimpleResponse {
        payload: Some(Payload {
            r#type: 0,
            body: zeros(request.response_size as usize),
        }),
    })
}

impl BenchmarkService for BenchService {
    fn unary_call(&self, _ctx: &Context, req: SimpleRequest) -> Result<SimpleResponse, Status> {
        let reply = response(&req)?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(reply)
    }

    fn streaming_call(
        &self,
        _ctx: &Context,
        mut reqs: RequestStream<SimpleRequest>,
        sink: ResponseSink<SimpleResponse>,
    ) -> Result<(), Status> {
        while let Some(req) = reqs.recv()? {
            sink.send(&response(&req)?)?;
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// How to run the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Port on 127.0.0.1 (0 picks one).
    pub port: u16,
    /// Event-loop threads.
    pub threads: usize,
    /// Run unary handlers on the event loop (they never block).
    pub inline: bool,
}

/// Builds the server with the benchmark and stats services (start or
/// serve it on 127.0.0.1:`port`).
///
/// ```no_run
/// use mio_grpc_bench::server::{build, ServerOptions};
/// let mut server = build(ServerOptions { port: 0, threads: 1, inline: true }).unwrap();
/// let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
/// # drop(handle);
/// ```
pub fn build(options: ServerOptions) -> Result<Server, String> {
    let service = Arc::new(BenchService::default());
    let calls = service.calls.clone();
    let stats = ServiceDesc::new("mio_grpc.bench.Stats").method(MethodDesc::raw_unary(
        "Snapshot",
        move |_ctx: &Context, _req: Bytes| {
            let snapshot = ServerStats {
                allocs: crate::alloc::allocations(),
                calls: calls.load(Ordering::Relaxed),
            };
            serde_json::to_vec(&snapshot)
                .map(Bytes::from)
                .map_err(|e| Status::internal(e.to_string()))
        },
    ));
    let mut server = Server::builder()
        .event_loops(options.threads.max(1))
        .inline_handlers(options.inline)
        .build();
    server
        .add_service(benchmark_service_service(service))
        .map_err(|e| e.to_string())?;
    server.add_service(stats).map_err(|e| e.to_string())?;
    Ok(server)
}

/// Serves until the process is killed.
pub fn serve(options: ServerOptions) -> Result<(), String> {
    let mut server = build(options)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
    println!(
        "mio-grpc-bench server on {addr} ({} event loop(s){})",
        options.threads.max(1),
        if options.inline {
            ", inline handlers"
        } else {
            ""
        }
    );
    server
        .serve(addr)
        .map_err(|e| format!("serving on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_sizes_are_checked_and_served_without_copies() {
        let ok = response(&SimpleRequest {
            response_size: 1024,
            ..Default::default()
        })
        .unwrap();
        let body = ok.payload.unwrap().body;
        assert_eq!(body.len(), 1024);
        assert!(body.iter().all(|&b| b == 0));
        assert_eq!(
            body.as_ptr(),
            ZEROS.as_ptr(),
            "small bodies point into ZEROS"
        );
        assert_eq!(zeros(100_000).len(), 100_000);
        for bad in [-1, MAX_RESPONSE_SIZE + 1] {
            let err = response(&SimpleRequest {
                response_size: bad,
                ..Default::default()
            })
            .unwrap_err();
            assert_eq!(err.code(), mio_grpc::grpc::Code::InvalidArgument);
        }
    }
}

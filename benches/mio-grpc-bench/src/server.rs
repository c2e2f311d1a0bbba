//! Our `grpc.testing.BenchmarkService` server (on the generated trait;
//! with `--callback`, its `StreamingCall` is a callback reactor instead),
//! a small stats service the bench client asks for the server's
//! allocations per call, and the idle-streams method ([`IDLE_METHOD`]) that
//! the `idle` scenario holds open by the hundred thousand.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mio_grpc::grpc::Status;
use mio_grpc::server::{
    Context, MethodDesc, MethodKind, RequestStream, ResponseSink, SendError, SendState, Server,
    ServerCall, ServerReactor, ServiceDesc,
};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::proto::{
    benchmark_service_service, BenchmarkService, Payload, SimpleRequest, SimpleResponse,
};

/// The full path of the stats method (raw bytes in, JSON [`ServerStats`]
/// out).
pub const STATS_METHOD: &str = "/mio_grpc.bench.Stats/Snapshot";

/// The full path of the idle-streams method: a bidi callback method whose
/// reactor answers nothing until the client half-closes, then ends the
/// call with OK. It holds no thread.
pub const IDLE_METHOD: &str = "/mio_grpc.bench.Idle/Hold";

/// The benchmark service's name (the generated one).
const BENCHMARK_SERVICE: &str = "grpc.testing.BenchmarkService";

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
    /// Idle-method calls ([`IDLE_METHOD`]) open right now (reactors made
    /// and not yet dropped). Absent from older servers' answers: 0.
    #[serde(default)]
    pub idle_streams: u64,
    /// Live heap bytes, when the server keeps them (`--track-heap`; see
    /// [`crate::alloc::track_heap`]), else 0.
    #[serde(default)]
    pub heap_bytes: i64,
    /// Live heap blocks by size class ([`crate::alloc::SIZE_CLASSES`]),
    /// when kept.
    #[serde(default)]
    pub heap_blocks: [i64; crate::alloc::SIZE_CLASSES],
    /// Live heap bytes by size class, when kept.
    #[serde(default)]
    pub heap_class_bytes: [i64; crate::alloc::SIZE_CLASSES],
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

/// `StreamingCall` as a callback reactor (`--callback`): each request's
/// response is sent from `on_message`, on the event loop; responses the
/// stream's write quota cannot take yet wait here for `on_ready`.
struct EchoReactor {
    calls: Arc<AtomicU64>,
    /// Reused to encode each response (`send` copies it).
    buf: Vec<u8>,
    /// Responses waiting for `on_ready`.
    pending: VecDeque<Vec<u8>>,
    /// A send said Full: wait for `on_ready`.
    blocked: bool,
    /// The client half-closed: finish once `pending` is sent.
    half_closed: bool,
    done: bool,
}

impl EchoReactor {
    fn new(calls: Arc<AtomicU64>) -> EchoReactor {
        EchoReactor {
            calls,
            buf: Vec::new(),
            pending: VecDeque::new(),
            blocked: false,
            half_closed: false,
            done: false,
        }
    }

    /// Sends `message` now (or queues it behind earlier ones); false if
    /// the call is over.
    fn send(&mut self, call: &ServerCall, message: &[u8]) -> bool {
        if self.blocked || !self.pending.is_empty() {
            self.pending.push_back(message.to_vec());
            return true;
        }
        match call.send(message) {
            Ok(state) => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                self.blocked = state == SendState::Full;
                true
            }
            Err(SendError::NotReady) => {
                self.blocked = true;
                self.pending.push_back(message.to_vec());
                true
            }
            Err(SendError::Closed(_)) => false,
        }
    }

    /// Sends what waited for `on_ready`, then finishes if the client has
    /// half-closed and nothing is left.
    fn flush(&mut self, call: &ServerCall) {
        while !self.blocked {
            let Some(message) = self.pending.front() else {
                break;
            };
            match call.send(message) {
                Ok(state) => {
                    self.pending.pop_front();
                    self.calls.fetch_add(1, Ordering::Relaxed);
                    self.blocked = state == SendState::Full;
                }
                Err(SendError::NotReady) => self.blocked = true,
                Err(SendError::Closed(_)) => {
                    self.pending.clear();
                    self.done = true;
                    return;
                }
            }
        }
        if self.half_closed && self.pending.is_empty() && !self.done {
            self.done = true;
            call.finish(Status::ok());
        }
    }
}

impl ServerReactor for EchoReactor {
    fn on_message(&mut self, call: &ServerCall, message: Bytes) {
        if self.done {
            return;
        }
        let reply = SimpleRequest::decode(message)
            .map_err(|e| Status::internal(format!("failed to decode the request: {e}")))
            .and_then(|request| response(&request));
        match reply {
            Ok(reply) => {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                // Encoding into a Vec cannot fail.
                let _ = reply.encode(&mut buf);
                if !self.send(call, &buf) {
                    self.done = true;
                }
                self.buf = buf;
            }
            Err(status) => {
                self.done = true;
                call.finish(status);
            }
        }
    }

    fn on_half_close(&mut self, call: &ServerCall) {
        self.half_closed = true;
        self.flush(call);
    }

    fn on_ready(&mut self, call: &ServerCall) {
        self.blocked = false;
        self.flush(call);
    }
}

/// The idle method's reactor: holds the stream, answers nothing, ends
/// with OK when the client half-closes. Counted in
/// [`ServerStats::idle_streams`] while it lives.
struct HoldReactor {
    open: Arc<AtomicU64>,
}

impl ServerReactor for HoldReactor {
    fn on_message(&mut self, _call: &ServerCall, _message: Bytes) {}

    fn on_half_close(&mut self, call: &ServerCall) {
        call.finish(Status::ok());
    }
}

impl Drop for HoldReactor {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The idle service: [`IDLE_METHOD`], counting its open calls in `open`.
fn idle_service(open: Arc<AtomicU64>) -> ServiceDesc {
    ServiceDesc::new("mio_grpc.bench.Idle").method(MethodDesc::reactor(
        "Hold",
        MethodKind::BidiStreaming,
        move |_call| {
            open.fetch_add(1, Ordering::Relaxed);
            Box::new(HoldReactor { open: open.clone() }) as Box<dyn ServerReactor>
        },
    ))
}

/// The benchmark service as generated, with `StreamingCall` replaced by
/// [`EchoReactor`].
fn with_callback_streaming(generated: ServiceDesc, calls: Arc<AtomicU64>) -> ServiceDesc {
    let mut service = ServiceDesc::new(generated.name());
    for method in generated.methods() {
        if method.name() != "StreamingCall" {
            service = service.method(method.clone());
        }
    }
    service.method(MethodDesc::reactor(
        "StreamingCall",
        MethodKind::BidiStreaming,
        move |_call| Box::new(EchoReactor::new(calls.clone())) as Box<dyn ServerReactor>,
    ))
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
    /// Serve `StreamingCall` with a callback reactor on the event loop
    /// instead of the blocking handler (a stream-pool thread per stream).
    pub callback: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS per connection (`None`: the
    /// server's default, 100).
    pub max_streams: Option<u32>,
    /// Keep the live heap ([`crate::alloc::track_heap`]) from the start,
    /// for the stats method to report (costs two atomics per allocation).
    pub track_heap: bool,
}

impl Default for ServerOptions {
    /// Port 0, one event loop, blocking handlers on the pool, the default
    /// stream limit.
    fn default() -> Self {
        ServerOptions {
            port: 0,
            threads: 1,
            inline: false,
            callback: false,
            max_streams: None,
            track_heap: false,
        }
    }
}

/// Builds the server with the benchmark and stats services (start or
/// serve it on 127.0.0.1:`port`).
///
/// ```no_run
/// use mio_grpc_bench::server::{build, ServerOptions};
/// let options = ServerOptions { inline: true, callback: true, ..ServerOptions::default() };
/// let mut server = build(options).unwrap();
/// let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
/// # drop(handle);
/// ```
pub fn build(options: ServerOptions) -> Result<Server, String> {
    let service = Arc::new(BenchService::default());
    let calls = service.calls.clone();
    let idle_open = Arc::new(AtomicU64::new(0));
    let idle_count = idle_open.clone();
    let stats = ServiceDesc::new("mio_grpc.bench.Stats").method(MethodDesc::raw_unary(
        "Snapshot",
        move |_ctx: &Context, _req: Bytes| {
            let heap = crate::alloc::live_heap();
            let snapshot = ServerStats {
                allocs: crate::alloc::allocations(),
                calls: calls.load(Ordering::Relaxed),
                idle_streams: idle_count.load(Ordering::Relaxed),
                heap_bytes: heap.bytes,
                heap_blocks: heap.blocks,
                heap_class_bytes: heap.class_bytes,
            };
            serde_json::to_vec(&snapshot)
                .map(Bytes::from)
                .map_err(|e| Status::internal(e.to_string()))
        },
    ));
    let mut builder = Server::builder()
        .event_loops(options.threads.max(1))
        .inline_handlers(options.inline);
    if let Some(n) = options.max_streams {
        builder = builder.max_concurrent_streams(n);
    }
    let mut server = builder.build();
    let calls = service.calls.clone();
    let mut benchmark = benchmark_service_service(service);
    debug_assert_eq!(benchmark.name(), BENCHMARK_SERVICE);
    if options.callback {
        benchmark = with_callback_streaming(benchmark, calls);
    }
    server.add_service(benchmark).map_err(|e| e.to_string())?;
    server.add_service(stats).map_err(|e| e.to_string())?;
    server
        .add_service(idle_service(idle_open))
        .map_err(|e| e.to_string())?;
    Ok(server)
}

/// Serves until the process is killed.
pub fn serve(options: ServerOptions) -> Result<(), String> {
    crate::alloc::track_heap(options.track_heap);
    let mut server = build(options)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
    println!(
        "mio-grpc-bench server on {addr} ({} event loop(s){}{}{})",
        options.threads.max(1),
        if options.inline {
            ", inline handlers"
        } else {
            ""
        },
        if options.callback {
            ", callback StreamingCall"
        } else {
            ""
        },
        options
            .max_streams
            .map_or(String::new(), |n| format!(", {n} streams per connection")),
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

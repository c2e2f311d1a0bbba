//! `peers server`: tonic serving `grpc.testing.BenchmarkService` on
//! 127.0.0.1:P over h2c, on a tokio runtime with `--threads` workers.
//!
//! The service answers as ours does (`benches/mio-grpc-bench/src/server.rs`):
//! a payload of `response_size` zero bytes, sliced from a static buffer when
//! it is small so neither side pays an allocation the other does not, and
//! INVALID_ARGUMENT for a size outside `0..=MAX_RESPONSE_SIZE`. The stream is
//! ping-pong: each request is answered by one response, in order.

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;

use bytes::Bytes;
use mio_grpc_bench::args::{ArgError, Args};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::benchmark_service_server::{BenchmarkService, BenchmarkServiceServer};
use crate::proto::{Payload, SimpleRequest, SimpleResponse};

/// The largest `response_size` served, as ours (larger or negative sizes
/// get INVALID_ARGUMENT).
pub const MAX_RESPONSE_SIZE: i32 = 64 << 20;

/// The largest message either side of the tonic peer decodes: room for the
/// largest request the contract's client sends (`--req-size` ≤ 1 GiB) and
/// the largest response, instead of tonic's 4 MiB default.
pub const MAX_MESSAGE_SIZE: usize = (1 << 30) + 1024;

/// Zero bytes that small response payloads point into (no allocation).
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// `n` zero bytes: a slice of [`ZEROS`] when it fits, else a new buffer.
pub fn zeros(n: usize) -> Bytes {
    match ZEROS.get(..n) {
        Some(slice) => Bytes::from_static(slice),
        None => Bytes::from(vec![0u8; n]),
    }
}

/// The `server` subcommand's flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerArgs {
    /// The port on 127.0.0.1 to listen on.
    pub port: u16,
    /// Tokio worker threads (default 1: one core for the server on this
    /// 2-core machine, the client on the other).
    pub threads: usize,
}

impl ServerArgs {
    /// Parses `--port P [--threads N]`.
    pub fn parse(args: &[String]) -> Result<ServerArgs, ArgError> {
        let a = Args::parse(args, &["port", "threads"], &[])?;
        if a.get("port").is_none() {
            return Err(ArgError("--port P is required".into()));
        }
        let port = a.num("port", 0u16)?;
        let threads = a.num("threads", 1usize)?;
        if threads == 0 {
            return Err(ArgError("--threads must be at least 1".into()));
        }
        Ok(ServerArgs { port, threads })
    }
}

/// The response to `request`: `response_size` zero bytes, or
/// INVALID_ARGUMENT when the size is out of range.
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
            body: zeros(request.response_size.unsigned_abs() as usize),
        }),
    })
}

/// The benchmark service, as tonic users write one.
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchService;

/// The response stream of `StreamingCall`: the request stream mapped one to
/// one, so no task or channel sits between them.
type ResponseStream = Pin<Box<dyn Stream<Item = Result<SimpleResponse, Status>> + Send>>;

#[tonic::async_trait]
impl BenchmarkService for BenchService {
    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        response(request.get_ref()).map(Response::new)
    }

    type StreamingCallStream = ResponseStream;

    async fn streaming_call(
        &self,
        request: Request<Streaming<SimpleRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let replies = request
            .into_inner()
            .map(|next| next.and_then(|request| response(&request)));
        Ok(Response::new(Box::pin(replies)))
    }
}

/// Serves until the process is killed; an error if the runtime cannot start
/// or the port cannot be bound.
pub fn run(args: &ServerArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let service = BenchmarkServiceServer::new(BenchService)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    runtime
        .block_on(
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(service)
                .serve(addr),
        )
        .map_err(|e| format!("serving on {addr}: {}", crate::describe(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn responses_carry_response_size_zero_bytes_or_invalid_argument() {
        for size in [0, 1024, 64 * 1024, 64 * 1024 + 1] {
            let reply = response(&SimpleRequest {
                response_size: size,
                ..SimpleRequest::default()
            })
            .unwrap();
            let body = reply.payload.unwrap().body;
            assert_eq!(body.len(), size as usize);
            assert!(body.iter().all(|&b| b == 0));
        }
        for bad in [-1, MAX_RESPONSE_SIZE + 1] {
            let err = response(&SimpleRequest {
                response_size: bad,
                ..SimpleRequest::default()
            })
            .unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn server_flags_need_a_port_and_a_worker() {
        let a = ServerArgs::parse(&strings(&["--port", "50200", "--threads=2"])).unwrap();
        assert_eq!(
            a,
            ServerArgs {
                port: 50200,
                threads: 2
            }
        );
        assert_eq!(
            ServerArgs::parse(&strings(&["--port", "1"]))
                .unwrap()
                .threads,
            1
        );
        assert!(ServerArgs::parse(&strings(&[])).is_err());
        assert!(ServerArgs::parse(&strings(&["--port", "70000"])).is_err());
        assert!(ServerArgs::parse(&strings(&["--port", "1", "--threads", "0"])).is_err());
        assert!(ServerArgs::parse(&strings(&["--port", "1", "--inline"])).is_err());
    }
}

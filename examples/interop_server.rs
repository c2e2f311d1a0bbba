//! `interop_server`: the gRPC interop test server (`grpc.testing.TestService`,
//! grpc/grpc `doc/interop-test-descriptions.md`, "Server"), through the code
//! generated from `examples/proto/` into `examples/gen/grpc.testing.rs`.
//!
//! `cargo run --release --example interop_server -- --port P [--use_tls=false] [--gzip]`
//! listens on 127.0.0.1:P (0 picks a port) and prints the bound port alone
//! as its first stdout line. Flags take `--flag V` or `--flag=V`;
//! `--use_tls` accepts only `false` (no TLS); `--gzip` compresses every
//! response to clients that accept gzip.
//!
//! Compression: `response_compressed` / `ResponseParameters.compressed`
//! pick the call's response encoding (`Context::set_send_compression`) and
//! each message's flag (`Context::set_message_compression`; a full-duplex
//! call settles its encoding with its first request, when the headers go).
//! `expect_compressed` is checked against the call's `grpc-encoding`
//! (`Context::request_encoding`): a request that asks for it on an
//! uncompressed call fails with INVALID_ARGUMENT, the interop probe.
//!
//! Not done:
//! - `fill_username` / `fill_oauth_scope` (no auth), `fill_server_id`,
//!   `fill_grpclb_route_type`: left empty.
//!
//! `grpc.testing.UnimplementedService` is deliberately not registered: the
//! server answers its calls with UNIMPLEMENTED on its own.

use std::sync::Arc;
use std::time::Duration;

use mio_grpc::grpc::{Code, Encoding, Metadata, Status};
use mio_grpc::server::{Context, RequestStream, ResponseSink, Server};

/// `grpc_testing`: messages, `TestService`, `test_service_service`,
/// `TestServiceClient` (generated; see `examples/gen/README.md`).
#[allow(dead_code)]
#[path = "gen/grpc.testing.rs"]
mod grpc_testing;

use grpc_testing::{
    test_service_service, BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters,
    SimpleRequest, SimpleResponse, StreamingInputCallRequest, StreamingInputCallResponse,
    StreamingOutputCallRequest, StreamingOutputCallResponse, TestService,
};

/// The request header echoed back as a response header.
const ECHO_INITIAL: &[u8] = b"x-grpc-test-echo-initial";
/// The request header echoed back as a trailer.
const ECHO_TRAILING: &[u8] = b"x-grpc-test-echo-trailing-bin";
/// The largest payload a client may ask for (a guard against a request
/// making the server allocate gigabytes).
const MAX_PAYLOAD: i32 = 64 << 20;

/// The interop `TestService`.
struct InteropServer;

/// Echoes `x-grpc-test-echo-initial` as response header metadata and
/// `x-grpc-test-echo-trailing-bin` as trailer metadata, when the client
/// sent them.
fn echo_metadata(ctx: &Context) {
    let (mut header, mut trailer) = (Metadata::new(), Metadata::new());
    for (key, value) in ctx.metadata().iter_raw() {
        if key.as_ref() == ECHO_INITIAL {
            header.append_raw(key, value);
        } else if key.as_ref() == ECHO_TRAILING {
            trailer.append_raw(key, value);
        }
    }
    if !header.is_empty() {
        ctx.set_header(&header);
    }
    if !trailer.is_empty() {
        ctx.set_trailer(&trailer);
    }
}

/// A COMPRESSABLE payload of `size` zero bytes; INVALID_ARGUMENT for
/// another payload type or a negative size, RESOURCE_EXHAUSTED past
/// [`MAX_PAYLOAD`].
fn payload(response_type: i32, size: i32) -> Result<Payload, Status> {
    if response_type != PayloadType::Compressable as i32 {
        return Err(Status::invalid_argument(format!(
            "unsupported payload type {response_type}"
        )));
    }
    if size < 0 {
        return Err(Status::invalid_argument(format!(
            "negative payload size {size}"
        )));
    }
    if size > MAX_PAYLOAD {
        return Err(Status::resource_exhausted(format!(
            "payload size {size} is over this server's limit of {MAX_PAYLOAD}"
        )));
    }
    Ok(Payload {
        r#type: response_type,
        body: vec![0; size as usize],
    })
}

/// The status a request asks to end with, if any (a zero code means OK).
fn requested_status(status: Option<&EchoStatus>) -> Option<Status> {
    status
        .filter(|s| s.code != 0)
        .map(|s| Status::new(Code::from_i32(s.code), s.message.clone()))
}

/// The shared body of UnaryCall and CacheableUnaryCall.
fn unary(ctx: &Context, req: SimpleRequest) -> Result<SimpleResponse, Status> {
    echo_metadata(ctx);
    check_compressed(ctx, req.expect_compressed.as_ref())?;
    if let Some(compressed) = &req.response_compressed {
        compress_responses(ctx, compressed.value);
    }
    if let Some(status) = requested_status(req.response_status.as_ref()) {
        return Err(status);
    }
    Ok(SimpleResponse {
        payload: Some(payload(req.response_type, req.response_size)?),
        ..Default::default()
    })
}

/// The `expect_compressed` check: the client said its request is
/// compressed, so the call must be a compressed one.
fn check_compressed(ctx: &Context, expect: Option<&BoolValue>) -> Result<(), Status> {
    if expect.is_some_and(|e| e.value) && ctx.request_encoding() == Encoding::Identity {
        return Err(Status::invalid_argument(
            "expect_compressed is set but the request is not compressed",
        ));
    }
    Ok(())
}

/// Compresses this call's responses with gzip (or not). A client that
/// does not accept gzip, or headers already sent, leave it as it is:
/// the messages still arrive, only uncompressed.
fn compress_responses(ctx: &Context, on: bool) {
    let encoding = if on {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let _ = ctx.set_send_compression(encoding);
}

/// Sends the responses one streaming request asks for: per entry, waits
/// `interval_us`, then sends a payload of `size` bytes, compressed if the
/// entry asks for it.
fn respond(
    ctx: &Context,
    response_type: i32,
    params: &[ResponseParameters],
    sink: &ResponseSink<StreamingOutputCallResponse>,
) -> Result<(), Status> {
    if params
        .iter()
        .any(|p| p.compressed.as_ref().is_some_and(|c| c.value))
    {
        compress_responses(ctx, true);
    }
    for p in params {
        ctx.set_message_compression(p.compressed.as_ref().is_some_and(|c| c.value));
        if p.interval_us > 0 && !ctx.sleep(Duration::from_micros(p.interval_us as u64)) {
            return Err(Status::cancelled("the call was cancelled"));
        }
        sink.send(&StreamingOutputCallResponse {
            payload: Some(payload(response_type, p.size)?),
        })?;
    }
    Ok(())
}

/// Answers one request of a streaming-output call: its responses, then
/// its `response_status` as the call's error, if it has one.
fn answer(
    ctx: &Context,
    req: &StreamingOutputCallRequest,
    sink: &ResponseSink<StreamingOutputCallResponse>,
) -> Result<(), Status> {
    respond(ctx, req.response_type, &req.response_parameters, sink)?;
    match requested_status(req.response_status.as_ref()) {
        Some(status) => Err(status),
        None => Ok(()),
    }
}

impl TestService for InteropServer {
    fn empty_call(&self, ctx: &Context, _req: Empty) -> Result<Empty, Status> {
        echo_metadata(ctx);
        Ok(Empty {})
    }

    fn unary_call(&self, ctx: &Context, req: SimpleRequest) -> Result<SimpleResponse, Status> {
        unary(ctx, req)
    }

    fn cacheable_unary_call(
        &self,
        ctx: &Context,
        req: SimpleRequest,
    ) -> Result<SimpleResponse, Status> {
        unary(ctx, req)
    }

    fn streaming_output_call(
        &self,
        ctx: &Context,
        req: StreamingOutputCallRequest,
        sink: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        echo_metadata(ctx);
        answer(ctx, &req, &sink)
    }

    fn streaming_input_call(
        &self,
        ctx: &Context,
        mut reqs: RequestStream<StreamingInputCallRequest>,
    ) -> Result<StreamingInputCallResponse, Status> {
        echo_metadata(ctx);
        let mut total: usize = 0;
        while let Some(req) = reqs.recv()? {
            check_compressed(ctx, req.expect_compressed.as_ref())?;
            total = total.saturating_add(req.payload.map_or(0, |p| p.body.len()));
        }
        let aggregated_payload_size = i32::try_from(total).map_err(|_| {
            Status::resource_exhausted(format!("{total} payload bytes do not fit an int32"))
        })?;
        Ok(StreamingInputCallResponse {
            aggregated_payload_size,
        })
    }

    fn full_duplex_call(
        &self,
        ctx: &Context,
        mut reqs: RequestStream<StreamingOutputCallRequest>,
        sink: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        echo_metadata(ctx);
        while let Some(req) = reqs.recv()? {
            answer(ctx, &req, &sink)?;
        }
        Ok(())
    }

    fn half_duplex_call(
        &self,
        ctx: &Context,
        reqs: RequestStream<StreamingOutputCallRequest>,
        sink: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        echo_metadata(ctx);
        let all = reqs.collect::<Result<Vec<_>, Status>>()?;
        for req in &all {
            answer(ctx, req, &sink)?;
        }
        Ok(())
    }

    fn unimplemented_call(&self, _ctx: &Context, _req: Empty) -> Result<Empty, Status> {
        Err(Status::unimplemented(
            "grpc.testing.TestService/UnimplementedCall is not implemented",
        ))
    }
}

/// The command line: the port, and whether to gzip responses.
struct Args {
    port: u16,
    gzip: bool,
}

/// Parses the command line (`--flag V` or `--flag=V`), or exits with a
/// usage message and status 2.
fn parse_args() -> Args {
    let mut parsed = Args {
        port: 50051,
        gzip: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        match flag.as_str() {
            "--port" => {
                let value = inline.or_else(|| args.next());
                parsed.port = match value.as_deref().map(str::parse) {
                    Some(Ok(port)) => port,
                    _ => usage(&format!(
                        "--port needs a port number, got {:?}",
                        value.unwrap_or_default()
                    )),
                };
            }
            "--use_tls" => {
                let value = inline.or_else(|| args.next());
                if value.as_deref() != Some("false") {
                    usage(&format!(
                        "--use_tls: only false is supported (no TLS), got {:?}",
                        value.unwrap_or_default()
                    ));
                }
            }
            "--gzip" if inline.is_none() => parsed.gzip = true,
            _ => usage(&format!("unknown argument {arg:?}")),
        }
    }
    parsed
}

/// Prints `problem` and the usage line to stderr, exits with status 2.
fn usage(problem: &str) -> ! {
    eprintln!("interop_server: {problem}");
    eprintln!("usage: interop_server --port P [--use_tls=false] [--gzip]");
    std::process::exit(2)
}

fn main() {
    let args = parse_args();
    let mut builder = Server::builder();
    if args.gzip {
        builder = builder.send_compression(Encoding::Gzip);
    }
    let mut server = builder.build();
    server
        .add_service(test_service_service(Arc::new(InteropServer)))
        .unwrap_or_else(|e| {
            eprintln!("interop_server: {e}");
            std::process::exit(1)
        });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let handle = server.start(addr).unwrap_or_else(|e| {
        eprintln!("interop_server: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    println!("{}", handle.local_addr().port());
    handle.wait();
}

//! `grpc_test_server`: the server the grpcio suite (`tests/grpcio/`) runs
//! against: `miotest.Echo` (all four RPC kinds, with request fields that
//! steer status codes, metadata echo, sleeps, response sizes) and
//! `grpc.health.v1.Health`.
//!
//! `cargo run --release --example grpc_test_server -- --port P [--max-recv N] [--gzip]`
//! prints the port it listens on (127.0.0.1) as its first line.

use bytes::Bytes;
use mio_grpc::grpc::{Code, Metadata, Status};
use mio_grpc::server::health::{HealthReporter, ServingStatus};
use mio_grpc::server::{Context, MethodDesc, RequestStream, ResponseSink, Server, ServiceDesc};
use std::time::Duration;

#[path = "common/echo.rs"]
mod echo;
use echo::{EchoRequest, EchoResponse};

/// Sleeps, echoes metadata, and fails as the request asks.
fn controls(ctx: &Context, req: &EchoRequest) -> Result<(), Status> {
    if req.echo_metadata {
        let mut echoed = Metadata::new();
        for (key, value) in ctx.metadata().iter_raw() {
            if key.starts_with(b"x-") {
                echoed.append_raw(key, value);
            }
        }
        ctx.set_header(&echoed);
        ctx.set_trailer(&echoed);
    }
    if req.sleep_ms > 0 && !ctx.sleep(Duration::from_millis(req.sleep_ms as u64)) {
        return Err(Status::cancelled("cancelled while sleeping"));
    }
    Ok(())
}

fn requested_status(req: &EchoRequest) -> Option<Status> {
    if req.status_code == 0 {
        return None;
    }
    let status = Status::new(Code::from_i32(req.status_code), req.status_message.clone());
    Some(if req.status_details.is_empty() {
        status
    } else {
        status.with_details(req.status_details.clone())
    })
}

fn response(req: &EchoRequest, index: i32) -> EchoResponse {
    let payload = if req.response_size > 0 {
        Bytes::from(vec![0u8; req.response_size as usize])
    } else {
        req.payload.clone()
    };
    EchoResponse {
        message: req.message.clone(),
        payload,
        index,
        ..Default::default()
    }
}

fn echo_service() -> ServiceDesc {
    ServiceDesc::new("miotest.Echo")
        .method(MethodDesc::unary(
            "Unary",
            |ctx: &Context, req: EchoRequest| {
                controls(ctx, &req)?;
                match requested_status(&req) {
                    Some(status) => Err(status),
                    None => Ok(response(&req, 0)),
                }
            },
        ))
        .method(MethodDesc::client_streaming(
            "ClientStream",
            |ctx: &Context, requests: RequestStream<EchoRequest>| {
                let mut out = EchoResponse::default();
                let mut last = None;
                for req in requests {
                    let req = req?;
                    out.message.push_str(&req.message);
                    out.total_bytes += req.payload.len() as i64;
                    out.count += 1;
                    last = Some(req);
                }
                if let Some(last) = last {
                    controls(ctx, &last)?;
                    if let Some(status) = requested_status(&last) {
                        return Err(status);
                    }
                }
                Ok(out)
            },
        ))
        .method(MethodDesc::server_streaming(
            "ServerStream",
            |ctx: &Context, req: EchoRequest, sink: ResponseSink<EchoResponse>| {
                controls(ctx, &req)?;
                for i in 0..req.response_count.max(0) {
                    sink.send(&response(&req, i))?;
                }
                match requested_status(&req) {
                    Some(status) => Err(status),
                    None => Ok(()),
                }
            },
        ))
        .method(MethodDesc::bidi_streaming(
            "Bidi",
            |ctx: &Context,
             requests: RequestStream<EchoRequest>,
             sink: ResponseSink<EchoResponse>| {
                for (i, req) in requests.enumerate() {
                    let req = req?;
                    controls(ctx, &req)?;
                    if let Some(status) = requested_status(&req) {
                        return Err(status);
                    }
                    sink.send(&response(&req, i as i32))?;
                }
                Ok(())
            },
        ))
}

fn main() {
    let mut port = 0u16;
    let mut builder = Server::builder();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--max-recv" => {
                let n = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| usage());
                builder = builder.max_receive_message_size(n);
            }
            "--gzip" => builder = builder.send_compression(mio_grpc::grpc::Encoding::Gzip),
            _ => usage(),
        }
    }
    let mut server = builder.build();
    let (health, health_service) = HealthReporter::new();
    health.set_serving_status("", ServingStatus::Serving);
    health.set_serving_status("miotest.Echo", ServingStatus::Serving);
    let registered = server
        .add_service(echo_service())
        .and_then(|()| server.add_service(health_service));
    if let Err(e) = registered {
        eprintln!("grpc_test_server: {e}");
        std::process::exit(1);
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let handle = server.start(addr).unwrap_or_else(|e| {
        eprintln!("grpc_test_server: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    println!("{}", handle.local_addr().port());
    handle.wait();
}

fn usage() -> ! {
    eprintln!("usage: grpc_test_server --port P [--max-recv N] [--gzip]");
    std::process::exit(2)
}

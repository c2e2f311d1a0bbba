//! `greeter_server`: helloworld.Greeter/SayHello answering `Hello {name}`,
//! through the code generated from `examples/proto/helloworld.proto`.
//!
//! `cargo run --release --example greeter_server -- --port P` listens on
//! 127.0.0.1:P (0 picks a port) and prints the port.

use std::sync::Arc;

use mio_grpc::grpc::Status;
use mio_grpc::server::{Context, Server};

/// `helloworld`: messages, `Greeter`, `greeter_service`, `GreeterClient`
/// (generated; see `examples/gen/README.md`).
#[allow(dead_code)]
#[path = "gen/helloworld.rs"]
mod helloworld;

use helloworld::{greeter_service, Greeter, HelloReply, HelloRequest};

/// The greeter.
struct GreeterServer;

impl Greeter for GreeterServer {
    fn say_hello(&self, _ctx: &Context, req: HelloRequest) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("Hello {}", req.name),
        })
    }
}

fn main() {
    let mut port = 50051u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|p| p.parse().ok())) {
            ("--port", Some(p)) => port = p,
            _ => {
                eprintln!("usage: greeter_server --port P");
                std::process::exit(2);
            }
        }
    }
    let mut server = Server::builder().build();
    server
        .add_service(greeter_service(Arc::new(GreeterServer)))
        .unwrap_or_else(|e| {
            eprintln!("greeter_server: {e}");
            std::process::exit(1)
        });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let handle = server.start(addr).unwrap_or_else(|e| {
        eprintln!("greeter_server: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    println!("{}", handle.local_addr().port());
    handle.wait();
}

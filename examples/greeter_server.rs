//! `greeter_server`: helloworld.Greeter/SayHello answering `Hello {name}`.
//!
//! `cargo run --release --example greeter_server -- --port P` listens on
//! 127.0.0.1:P (0 picks a port) and prints the port.

use mio_grpc::server::{Context, MethodDesc, Server, ServiceDesc};

/// `helloworld.HelloRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

/// `helloworld.HelloReply`.
#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
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
    let greeter = ServiceDesc::new("helloworld.Greeter").method(MethodDesc::unary(
        "SayHello",
        |_ctx: &Context, request: HelloRequest| {
            Ok(HelloReply {
                message: format!("Hello {}", request.name),
            })
        },
    ));
    let mut server = Server::builder().build();
    server.add_service(greeter).unwrap_or_else(|e| {
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

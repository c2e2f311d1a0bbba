//! `greeter_client`: calls helloworld.Greeter/SayHello through the client
//! generated from `examples/proto/helloworld.proto` and prints the reply.
//!
//! `cargo run --release --example greeter_client -- --target HOST:PORT --name NAME`
//! On failure it prints the status code name and message and exits
//! non-zero (a dead target gives UNAVAILABLE quickly, not a hang).

use std::time::Duration;

use mio_grpc::client::{CallOptions, Channel, ChannelOptions};

/// `helloworld`: messages, `Greeter`, `greeter_service`, `GreeterClient`
/// (generated; see `examples/gen/README.md`).
#[allow(dead_code)]
#[path = "gen/helloworld.rs"]
mod helloworld;

use helloworld::{GreeterClient, HelloRequest};

fn main() {
    let mut target = String::from("localhost:50051");
    let mut name = String::from("world");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--target", Some(t)) => target = t,
            ("--name", Some(n)) => name = n,
            _ => {
                eprintln!("usage: greeter_client --target HOST:PORT --name NAME");
                std::process::exit(2);
            }
        }
    }
    let channel = Channel::new(&target, ChannelOptions::default()).unwrap_or_else(|e| {
        eprintln!("greeter_client: {e}");
        std::process::exit(2)
    });
    let client = GreeterClient::new(channel);
    let options = CallOptions::default().timeout(Duration::from_secs(10));
    match client.say_hello(&HelloRequest { name }, options) {
        Ok(reply) => println!("{}", reply.message),
        Err(status) => {
            eprintln!("{}: {}", status.code().name(), status.message());
            std::process::exit(1);
        }
    }
}

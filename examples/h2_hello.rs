//! `h2_hello`: a plain HTTP/2 (h2c) server answering `200 hello` to
//! `GET /` and `POST /` (any body) on 127.0.0.1. What the conformance
//! suite, nghttp and h2load hit.
//!
//! `cargo run --release --example h2_hello -- --port P [--inline]`
//! (port 0 picks a free one); prints the port it listens on.

use mio_grpc::http::{Execution, Response, Server, ServerConfig};

fn main() {
    let mut port = 8080u16;
    let mut config = ServerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--inline" => config.execution = Execution::Inline,
            _ => usage(),
        }
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let server = Server::bind(addr, config, |mut request: mio_grpc::http::Request| {
        // Drain the body (POST), then answer.
        let _ = request.body.read_all();
        match request.head.path.as_deref() {
            Some(b"/") => Response::new(200, "hello\n"),
            _ => Response::new(404, "not found\n"),
        }
    })
    .unwrap_or_else(|e| {
        eprintln!("h2_hello: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    println!("{}", server.local_addr().port());
    loop {
        std::thread::park();
    }
}

fn usage() -> ! {
    eprintln!("usage: h2_hello --port P [--inline]");
    std::process::exit(2)
}

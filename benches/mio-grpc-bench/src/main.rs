//! `mio-grpc-bench`: the bench tool of ../shared/BENCH.md. With no
//! arguments it is the README's main job (`job.rs`); the subcommands are
//! the contract's `server` and `client`, the raw TCP floor's `tcp-server`
//! and `tcp-client` that the main job runs beside them, and `idle`, the
//! idle-streams scenario (`mio_grpc_bench::idle`).

mod job;

use std::process::ExitCode;

use mio_grpc_bench::alloc::CountingAlloc;
use mio_grpc_bench::args::{Args, ClientArgs};
use mio_grpc_bench::{client, floor, idle, server};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str = "\
usage:
  mio-grpc-bench                      the main job: server + client pinned to
                                      different CPUs, TCP floor, scenarios U1,
                                      U64, S1 at 0 B and 1 KiB, table + SVG
  mio-grpc-bench main [--duration S] [--warmup S] [--out DIR]
  mio-grpc-bench server --port P [--threads N] [--inline] [--callback]
                        [--max-streams N] [--track-heap]
                                      --callback: StreamingCall (S1) as a
                                      callback reactor on the loop instead of
                                      the blocking handler; --max-streams:
                                      MAX_CONCURRENT_STREAMS per connection;
                                      --track-heap: keep the live heap for
                                      the stats method (idle uses it)
  mio-grpc-bench client --target HOST:PORT --rpc unary|streaming
                        --concurrency C --connections K --duration S
                        --warmup S --req-size B --resp-size B
  mio-grpc-bench idle [--streams N] [--conns C] [--duration S] [--warmup S]
                      [--threads L]
                                      idle streams: a pinned server, N idle
                                      bidi streams (default 100000) over C
                                      connections (default 100); its threads,
                                      RSS per stream, and unary p50/p99 at
                                      concurrency 1 with and without them
  mio-grpc-bench tcp-server --port P
  mio-grpc-bench tcp-client --target HOST:PORT --size B --duration S --warmup S";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        None => ("main", &[][..]),
        Some((first, rest)) => (first.as_str(), rest),
    };
    let result = match command {
        "main" => job::run(rest),
        "server" => run_server(rest),
        "client" => run_client(rest),
        "idle" => idle::run(rest),
        "tcp-server" => run_tcp_server(rest),
        "tcp-client" => run_tcp_client(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown subcommand {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mio-grpc-bench: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_server(rest: &[String]) -> Result<(), String> {
    let a = Args::parse(
        rest,
        &["port", "threads", "max-streams"],
        &["inline", "callback", "track-heap"],
    )
    .map_err(|e| e.to_string())?;
    let port = a
        .get("port")
        .ok_or("--port P is required")?
        .parse::<u16>()
        .map_err(|_| "--port must be a port number".to_string())?;
    server::serve(server::ServerOptions {
        port,
        threads: a.num("threads", 1usize).map_err(|e| e.to_string())?,
        inline: a.flag("inline"),
        callback: a.flag("callback"),
        track_heap: a.flag("track-heap"),
        max_streams: match a.get("max-streams") {
            None => None,
            Some(_) => Some(a.num("max-streams", 0u32).map_err(|e| e.to_string())?),
        },
    })
}

fn run_client(rest: &[String]) -> Result<(), String> {
    let args = ClientArgs::parse(rest).map_err(|e| e.to_string())?;
    let report = client::run(&args)?;
    println!("{}", report.human_line());
    println!("{}", report.to_json_line());
    Ok(())
}

fn run_tcp_server(rest: &[String]) -> Result<(), String> {
    let a = Args::parse(rest, &["port"], &[]).map_err(|e| e.to_string())?;
    let port = a
        .get("port")
        .ok_or("--port P is required")?
        .parse::<u16>()
        .map_err(|_| "--port must be a port number".to_string())?;
    floor::serve(port)
}

fn run_tcp_client(rest: &[String]) -> Result<(), String> {
    let a = Args::parse(rest, &["target", "size", "duration", "warmup"], &[])
        .map_err(|e| e.to_string())?;
    let target = a.get("target").ok_or("--target HOST:PORT is required")?;
    let report = floor::run_client(
        target,
        a.num("size", 1u32).map_err(|e| e.to_string())?,
        a.secs("warmup", 1.0).map_err(|e| e.to_string())?,
        a.secs("duration", 5.0).map_err(|e| e.to_string())?,
    )?;
    println!("{}", report.human_line());
    println!("{}", report.to_json_line());
    Ok(())
}

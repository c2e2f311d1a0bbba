//! `peers`: tonic beside mio-grpc, on the bench-tool contract of
//! `shared/BENCH.md`.
//!
//! - `peers server --port P [--threads N]`: a tonic 0.14 server of
//!   `grpc.testing.BenchmarkService` on 127.0.0.1:P over h2c ([`server`]).
//! - `peers client --target HOST:PORT --rpc unary|streaming …`: tonic's
//!   closed-loop client, printing the contract's human and JSON lines
//!   ([`client`]).
//! - `peers compare [--duration S] [--warmup S] [--rounds N]`: ours and
//!   tonic interleaved on the main job's scenarios, medians in a table
//!   ([`compare`]).
//!
//! Bad flags print a message and the usage and exit with status 2; a run
//! that cannot proceed (no connection, port taken) exits with status 1.

mod client;
mod compare;
mod server;
mod summary;

/// The tonic-generated `grpc.testing` messages, `BenchmarkService` server
/// and client (from `benches/proto/benchmark_service.proto`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod proto {
    tonic::include_proto!("grpc.testing");
}

use std::io::Write;
use std::process::ExitCode;

use mio_grpc_bench::args::{ArgError, ClientArgs};

const USAGE: &str = "\
usage: peers server --port P [--threads N]
       peers client --target HOST:PORT [--rpc unary|streaming] [--concurrency C]
                    [--connections K] [--duration S] [--warmup S]
                    [--req-size B] [--resp-size B]
       peers compare [--duration S] [--warmup S] [--rounds N]";

/// Why `peers` stops early: bad flags (status 2) or a failed run (status 1).
enum Failure {
    Usage(ArgError),
    Run(String),
}

impl From<ArgError> for Failure {
    fn from(e: ArgError) -> Failure {
        Failure::Usage(e)
    }
}

/// Prints `text` and a newline on stdout; a closed stdout (`| head`) is a
/// failed run, not a panic.
fn print_out(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Run(format!("writing to stdout: {e}")))
}

/// `error` and its chain of sources, `outer: inner: …` (tonic's own
/// messages, like "transport error", say little without their causes).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn run(args: &[String]) -> Result<(), Failure> {
    let Some((command, rest)) = args.split_first() else {
        return Err(Failure::Usage(ArgError("a subcommand is required".into())));
    };
    match command.as_str() {
        "-h" | "--help" | "help" => print_out(USAGE),
        "server" => server::run(&server::ServerArgs::parse(rest)?).map_err(Failure::Run),
        "client" => {
            let report = client::run(&ClientArgs::parse(rest)?).map_err(Failure::Run)?;
            print_out(&format!(
                "{}\n{}",
                report.human_line(),
                report.to_json_line()
            ))
        }
        "compare" => {
            let table = compare::run(&compare::CompareArgs::parse(rest)?).map_err(Failure::Run)?;
            print_out(&table)
        }
        other => Err(Failure::Usage(ArgError(format!(
            "unknown subcommand {other:?}"
        )))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("peers: {e}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("peers: {e}");
            ExitCode::FAILURE
        }
    }
}

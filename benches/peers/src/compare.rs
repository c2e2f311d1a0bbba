//! `peers compare`: ours and tonic on the same scenarios, interleaved
//! (ours↔ours, then tonic↔tonic, round after round) so drift on the machine
//! hits both alike, and a table of the medians over rounds.
//!
//! Each run starts a fresh server pinned to CPU 1 and a client pinned to
//! CPU 0 (when `taskset` works and there are two CPUs), one connection, the
//! client's JSON line read back through the shared `spawn::run_client`.
//! A run that fails is reported on stderr and leaves its cell "err"; a
//! server that never comes up disables the rest of that side's runs rather
//! than making each of them wait for it. The medians and the table are
//! [`crate::summary`]'s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mio_grpc_bench::args::{ArgError, Args, ClientArgs};
use mio_grpc_bench::report::Report;
use mio_grpc_bench::spawn::{can_pin, command, run_client, ServerProcess};

use crate::summary::{table, Row};

/// The server runs on this CPU, when pinned.
const SERVER_CPU: usize = 1;
/// The client runs on this CPU, when pinned.
const CLIENT_CPU: usize = 0;

/// The `compare` subcommand's flags.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareArgs {
    /// Each run's measured window.
    pub duration: Duration,
    /// Each run's warm-up.
    pub warmup: Duration,
    /// Runs per side and scenario; the table shows their median.
    pub rounds: usize,
}

impl CompareArgs {
    /// Parses `[--duration S] [--warmup S] [--rounds N]` (defaults 3 s, 1 s,
    /// 2 rounds).
    pub fn parse(args: &[String]) -> Result<CompareArgs, ArgError> {
        let a = Args::parse(args, &["duration", "warmup", "rounds"], &[])?;
        let duration = a.secs("duration", 3.0)?;
        if duration.is_zero() {
            return Err(ArgError("--duration must be more than 0 seconds".into()));
        }
        let rounds = a.num("rounds", 2usize)?;
        if rounds == 0 {
            return Err(ArgError("--rounds must be at least 1".into()));
        }
        Ok(CompareArgs {
            duration,
            warmup: a.secs("warmup", 1.0)?,
            rounds,
        })
    }
}

/// One row of the table: an RPC shape at one message size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scenario {
    id: &'static str,
    rpc: &'static str,
    concurrency: u32,
    /// Request and response payload bytes.
    size: u32,
}

impl Scenario {
    fn label(&self) -> String {
        match self.size {
            0 => format!("{} 0B", self.id),
            1024 => format!("{} 1KiB", self.id),
            n => format!("{} {n}B", self.id),
        }
    }
}

/// The main job's scenarios that both sides can run: U1, U64 and S1 at 0 B
/// and 1 KiB.
const SCENARIOS: [Scenario; 6] = [
    Scenario {
        id: "U1",
        rpc: "unary",
        concurrency: 1,
        size: 0,
    },
    Scenario {
        id: "U1",
        rpc: "unary",
        concurrency: 1,
        size: 1024,
    },
    Scenario {
        id: "U64",
        rpc: "unary",
        concurrency: 64,
        size: 0,
    },
    Scenario {
        id: "U64",
        rpc: "unary",
        concurrency: 64,
        size: 1024,
    },
    Scenario {
        id: "S1",
        rpc: "streaming",
        concurrency: 1,
        size: 0,
    },
    Scenario {
        id: "S1",
        rpc: "streaming",
        concurrency: 1,
        size: 1024,
    },
];

/// One implementation under test: its name and the binary that serves and
/// measures for it (`server …` and `client …`), or why there is none.
struct Side {
    name: &'static str,
    binary: Result<PathBuf, String>,
    /// Extra `server` flags: ours runs its unary handlers inline on the
    /// event loop (as the main job does); tonic's already run on its
    /// runtime's threads.
    server_flags: &'static [&'static str],
}

/// Runs one server/client pair of `binary` on `scenario` and returns the
/// client's report.
fn run_once(
    binary: &Path,
    server_flags: &[&str],
    scenario: Scenario,
    args: &CompareArgs,
    pin: bool,
) -> Result<Report, RunError> {
    let program = binary
        .to_str()
        .ok_or_else(|| RunError::Server(format!("{} is not UTF-8", binary.display())))?;
    let mut server_args = vec!["server"];
    server_args.extend_from_slice(server_flags);
    let server = ServerProcess::launch(pin.then_some(SERVER_CPU), program, &server_args)
        .map_err(|e| RunError::Server(e.to_string()))?;
    let addr = server.addr;
    let client = ClientArgs {
        target: addr.to_string(),
        rpc: scenario.rpc.into(),
        concurrency: scenario.concurrency,
        connections: 1,
        duration: args.duration,
        warmup: args.warmup,
        req_size: scenario.size,
        resp_size: scenario.size,
    };
    let mut client_args = vec!["client".to_string()];
    client_args.extend(client.to_args());
    let report = run_client(command(pin.then_some(CLIENT_CPU), program, &client_args))
        .map_err(|e| RunError::Client(e.to_string()));
    drop(server);
    let report = report?;
    if report.count == 0 {
        return Err(RunError::Client(format!(
            "no calls completed ({} errors)",
            report.errors
        )));
    }
    Ok(report)
}

/// Why a run gave no report: its server did not come up (which disables
/// that side), or its client failed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RunError {
    Server(String),
    Client(String),
}

/// Our bench binary: `mio-grpc-bench` beside this executable. Under
/// `cargo run` (`CARGO` set) it is always (re)built first, so a stale binary
/// is never measured; otherwise it is built only if missing.
fn our_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate peers: {e}"))?;
    let ours = exe.with_file_name(format!("mio-grpc-bench{}", std::env::consts::EXE_SUFFIX));
    if ours.is_file() && std::env::var_os("CARGO").is_none() {
        return Ok(ours);
    }
    let release = !cfg!(debug_assertions);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    eprintln!(
        "peers: building {}: cargo build{} -p mio-grpc-bench",
        ours.display(),
        if release { " --release" } else { "" }
    );
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "mio-grpc-bench", "--manifest-path", manifest]);
    if release {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo to build mio-grpc-bench: {e}"))?;
    if !status.success() {
        return Err(format!("building mio-grpc-bench failed ({status})"));
    }
    if ours.is_file() {
        Ok(ours)
    } else {
        Err(format!(
            "cargo built mio-grpc-bench, but not at {}",
            ours.display()
        ))
    }
}

/// Runs the comparison (progress and failures on stderr) and returns its
/// table.
pub fn run(args: &CompareArgs) -> Result<String, String> {
    let tonic = std::env::current_exe().map_err(|e| format!("cannot locate peers: {e}"))?;
    let ours = our_binary();
    if let Err(e) = &ours {
        eprintln!("peers: ours cannot run: {e}");
    }
    let mut sides = [
        Side {
            name: "ours",
            binary: ours,
            server_flags: &["--inline"],
        },
        Side {
            name: "tonic",
            binary: Ok(tonic),
            server_flags: &[],
        },
    ];
    let pin = can_pin();
    eprintln!(
        "peers: {} rounds of {} scenarios, {:?} warm-up + {:?} each, {}",
        args.rounds,
        SCENARIOS.len(),
        args.warmup,
        args.duration,
        if pin {
            "server on CPU 1, client on CPU 0"
        } else {
            "not pinned (no taskset or fewer than 2 CPUs)"
        }
    );
    let total = SCENARIOS.len() * args.rounds * sides.len();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut step = 0;
    let mut failures = 0usize;
    let mut rows = Vec::new();
    for scenario in SCENARIOS {
        let mut row = Row {
            scenario: scenario.label(),
            ..Row::default()
        };
        for _ in 0..args.rounds {
            for (side, reports) in sides.iter_mut().zip([&mut row.ours, &mut row.tonic]) {
                step += 1;
                if tty {
                    eprint!("\r[{step}/{total}] {} {}…   ", scenario.label(), side.name);
                } else {
                    eprintln!("[{step}/{total}] {} {}", scenario.label(), side.name);
                }
                let binary = match &side.binary {
                    Ok(binary) => binary.clone(),
                    Err(_) => continue,
                };
                match run_once(&binary, side.server_flags, scenario, args, pin) {
                    Ok(report) => reports.push(report),
                    Err(RunError::Client(e)) => {
                        failures += 1;
                        eprintln!("\n{} {}: run failed: {e}", scenario.label(), side.name);
                    }
                    Err(RunError::Server(e)) => {
                        failures += 1;
                        eprintln!(
                            "\n{} {}: server failed, skipping {}'s remaining runs: {e}",
                            scenario.label(),
                            side.name,
                            side.name
                        );
                        side.binary = Err(e);
                    }
                }
            }
        }
        rows.push(row);
    }
    eprintln!();
    let rendered = table(&rows, args.rounds).render();
    if failures > 0 {
        // The table still shows what did run; the exit status says not all
        // of it did.
        print!("{rendered}");
        return Err(format!("{failures} run(s) failed (see above)"));
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn compare_flags_default_and_reject_nonsense() {
        let a = CompareArgs::parse(&[]).unwrap();
        assert_eq!(
            a,
            CompareArgs {
                duration: Duration::from_secs(3),
                warmup: Duration::from_secs(1),
                rounds: 2
            }
        );
        let a = CompareArgs::parse(&strings(&["--rounds", "3", "--duration=0.5"])).unwrap();
        assert_eq!((a.rounds, a.duration), (3, Duration::from_millis(500)));
        assert!(CompareArgs::parse(&strings(&["--rounds", "0"])).is_err());
        assert!(CompareArgs::parse(&strings(&["--duration", "0"])).is_err());
        assert!(CompareArgs::parse(&strings(&["--threads", "2"])).is_err());
    }
}

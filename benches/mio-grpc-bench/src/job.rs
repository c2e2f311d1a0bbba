//! The main job: a server and a client as separate processes pinned to
//! different CPUs (server on CPU 1, client on CPU 0, as BENCH.md's
//! scenarios), the raw TCP ping-pong floor measured in the same run, the
//! scenarios U1, U64 and S1 at 0 B and 1 KiB, a table with ratios to the
//! floor, the BENCH.md goals checked, and a latency-percentile SVG plus the
//! JSON lines written to `target/bench/`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio_grpc_bench::args::{Args, ClientArgs};
use mio_grpc_bench::report::Report;
use mio_grpc_bench::spawn::{can_pin, command, run_client, ServerProcess};
use mio_grpc_bench::svg::{percentile_plot, Series};
use mio_grpc_bench::table::Table;
use parking_lot::Mutex;

/// One gRPC scenario of the main job.
struct Scenario {
    id: &'static str,
    rpc: &'static str,
    concurrency: u32,
    size: u32,
}

const SIZES: [u32; 2] = [0, 1024];

fn scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();
    for (id, rpc, concurrency) in [
        ("U1", "unary", 1),
        ("U64", "unary", 64),
        ("S1", "streaming", 1),
    ] {
        for size in SIZES {
            all.push(Scenario {
                id,
                rpc,
                concurrency,
                size,
            });
        }
    }
    all
}

fn size_label(size: u32) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// The progress line: the current step and the time, redrawn on a
/// terminal, one line per step otherwise.
struct Progress {
    step: Arc<Mutex<String>>,
    done: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
    tty: bool,
}

impl Progress {
    fn new(estimate: Duration) -> Progress {
        let step = Arc::new(Mutex::new(String::from("starting")));
        let done = Arc::new(AtomicBool::new(false));
        let tty = std::io::stderr().is_terminal();
        let ticker = tty.then(|| {
            let (step, done) = (step.clone(), done.clone());
            let begin = Instant::now();
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    eprint!(
                        "\r\x1b[K{}  {:>3.0} s of ~{:.0} s",
                        step.lock(),
                        begin.elapsed().as_secs_f64(),
                        estimate.as_secs_f64()
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
                eprint!("\r\x1b[K");
            })
        });
        Progress {
            step,
            done,
            ticker,
            tty,
        }
    }

    fn set(&self, step: String) {
        if !self.tty {
            eprintln!("{step}");
        }
        *self.step.lock() = step;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// Where the SVG and JSON lines go: `--out`, else `target/bench` beside
/// the binary's `target/<profile>/` directory, else `./target/bench`.
fn out_dir(a: &Args) -> PathBuf {
    if let Some(dir) = a.get("out") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("bench");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|t| t.join("bench")))
        .unwrap_or_else(|| PathBuf::from("target/bench"))
}

fn fmt(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "-".into()
    }
}

/// Runs the main job with `rest` as its flags.
pub fn run(rest: &[String]) -> Result<(), String> {
    let a = Args::parse(rest, &["duration", "warmup", "out"], &[]).map_err(|e| e.to_string())?;
    let duration = a.secs("duration", 5.0).map_err(|e| e.to_string())?;
    let warmup = a.secs("warmup", 1.0).map_err(|e| e.to_string())?;
    let out = out_dir(&a);
    let exe = std::env::current_exe().map_err(|e| format!("finding this binary: {e}"))?;
    let exe = exe.to_string_lossy().into_owned();
    let pinned = can_pin();
    let (server_cpu, client_cpu) = if pinned {
        (Some(1), Some(0))
    } else {
        (None, None)
    };
    let all = scenarios();
    let runs = all.len() + SIZES.len();
    let estimate = (duration + warmup) * runs as u32 + Duration::from_secs(3);
    println!(
        "mio-grpc-bench main job: {} scenarios + the TCP floor, {} s each after {} s warm-up, {}",
        all.len(),
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        if pinned {
            "server on CPU 1, client on CPU 0"
        } else {
            "NOT pinned (taskset missing or one CPU)"
        }
    );
    let progress = Progress::new(estimate);
    let secs = |d: Duration| d.as_secs_f64().to_string();

    // The floor, in the same run.
    let mut floors: Vec<(u32, Result<Report, String>)> = Vec::new();
    {
        let server = ServerProcess::launch(server_cpu, &exe, &["tcp-server"])
            .map_err(|e| format!("starting the TCP echo server: {e}"))?;
        for (i, size) in SIZES.into_iter().enumerate() {
            progress.set(format!("[{}/{runs}] TCP floor {}", i + 1, size_label(size)));
            let args = vec![
                "tcp-client".into(),
                "--target".into(),
                server.addr.to_string(),
                "--size".into(),
                size.max(1).to_string(),
                "--duration".into(),
                secs(duration),
                "--warmup".into(),
                secs(warmup),
            ];
            floors.push((
                size,
                run_client(command(client_cpu, &exe, &args)).map_err(|e| e.to_string()),
            ));
        }
    }

    let mut results: Vec<(&Scenario, Result<Report, String>)> = Vec::new();
    {
        let server = ServerProcess::launch(server_cpu, &exe, &["server", "--inline"])
            .map_err(|e| format!("starting the bench server: {e}"))?;
        for (i, s) in all.iter().enumerate() {
            progress.set(format!(
                "[{}/{runs}] {} {} ({}, concurrency {})",
                SIZES.len() + i + 1,
                s.id,
                size_label(s.size),
                s.rpc,
                s.concurrency
            ));
            let client = ClientArgs {
                target: server.addr.to_string(),
                rpc: s.rpc.into(),
                concurrency: s.concurrency,
                connections: 1,
                duration,
                warmup,
                req_size: s.size,
                resp_size: s.size,
            };
            let mut args = vec!["client".to_string()];
            args.extend(client.to_args());
            results.push((
                s,
                run_client(command(client_cpu, &exe, &args)).map_err(|e| e.to_string()),
            ));
        }
    }
    drop(progress);

    let floor_of = |size: u32| {
        floors
            .iter()
            .find(|(s, _)| *s == size)
            .and_then(|(_, r)| r.as_ref().ok())
    };
    let mut table = Table::new(&[
        "scenario",
        "calls/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "p50 ÷ floor",
        "p99 ÷ floor",
        "writes/call",
        "reads/call",
        "wake-ups/call",
        "allocs/call client",
        "allocs/call server",
    ]);
    let mut failures = Vec::new();
    for (size, r) in &floors {
        let label = format!("TCP floor {}", size_label(*size));
        match r {
            Ok(r) => table.row(vec![
                label,
                fmt(r.qps),
                fmt(r.p50_us),
                fmt(r.p99_us),
                fmt(r.p999_us),
                "1.00×".into(),
                "1.00×".into(),
            ]),
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                table.row(vec![label, "err".into()]);
            }
        }
    }
    for (s, r) in &results {
        let label = format!("{} {}", s.id, size_label(s.size));
        match r {
            Ok(r) => {
                let floor = floor_of(s.size);
                let pc = r.per_call.clone().unwrap_or_default();
                table.row(vec![
                    label.clone(),
                    fmt(r.qps),
                    fmt(r.p50_us),
                    fmt(r.p99_us),
                    fmt(r.p999_us),
                    floor.map_or("-".into(), |f| ratio(r.p50_us, f.p50_us)),
                    floor.map_or("-".into(), |f| ratio(r.p99_us, f.p99_us)),
                    format!("{:.2}", pc.write_syscalls),
                    format!("{:.2}", pc.read_syscalls),
                    format!("{:.2}", pc.wakeups),
                    format!("{:.1}", pc.allocs),
                    pc.server_allocs.map_or("-".into(), |x| format!("{x:.1}")),
                ]);
                if r.errors > 0 {
                    failures.push(format!("{label}: {} calls failed", r.errors));
                }
            }
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                table.row(vec![label, "err".into()]);
            }
        }
    }
    println!();
    print!("{}", table.render());

    // The goals of BENCH.md that the floor defines.
    let find = |id: &str, size: u32| {
        results
            .iter()
            .find(|(s, _)| s.id == id && s.size == size)
            .and_then(|(_, r)| r.as_ref().ok())
    };
    if let Some(f) = floor_of(0) {
        println!();
        println!("BENCH.md goals (mio-grpc ↔ mio-grpc, against this run's floor):");
        let goal = |name: &str, value: Option<f64>, limit: f64| {
            if let Some(v) = value {
                println!(
                    "  {name}: {v:.2}× the floor (goal ≤ {limit}×) {}",
                    if v <= limit { "met" } else { "NOT met" }
                );
            }
        };
        goal(
            "U1 0 B p50",
            find("U1", 0).map(|r| r.p50_us / f.p50_us),
            1.5,
        );
        goal(
            "U1 0 B p99",
            find("U1", 0).map(|r| r.p99_us / f.p99_us),
            2.0,
        );
        goal(
            "S1 0 B p50",
            find("S1", 0).map(|r| r.p50_us / f.p50_us),
            1.2,
        );
        if let Some(r) = find("U1", 0).and_then(|r| r.per_call.clone()) {
            println!(
                "  allocations per unary call: client {:.1}, server {} (goal ≤ 4 per side)",
                r.allocs,
                r.server_allocs.map_or("-".into(), |x| format!("{x:.1}"))
            );
        }
    }

    // The plot and the raw lines.
    let mut series = Vec::new();
    let mut lines = String::new();
    for (size, r) in &floors {
        if let Ok(r) = r {
            series.push(Series {
                label: format!("TCP floor {}", size_label(*size)),
                points: r.percentiles.clone(),
                dashed: true,
            });
            lines.push_str(&r.to_json_line());
            lines.push('\n');
        }
    }
    for (s, r) in &results {
        if let Ok(r) = r {
            series.push(Series {
                label: format!("{} {}", s.id, size_label(s.size)),
                points: r.percentiles.clone(),
                dashed: false,
            });
            lines.push_str(&r.to_json_line());
            lines.push('\n');
        }
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let svg_path = out.join("latency.svg");
    let title = format!(
        "mio-grpc ↔ mio-grpc latency by percentile (1 connection{})",
        if pinned {
            ", server CPU 1, client CPU 0"
        } else {
            ""
        }
    );
    std::fs::write(&svg_path, percentile_plot(&title, &series))
        .map_err(|e| format!("writing {}: {e}", svg_path.display()))?;
    let json_path = out.join("results.jsonl");
    std::fs::write(&json_path, lines)
        .map_err(|e| format!("writing {}: {e}", json_path.display()))?;
    println!();
    println!("plot: {}", svg_path.display());
    println!("JSON lines: {}", json_path.display());

    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("some runs failed:\n  {}", failures.join("\n  ")))
    }
}

//! The idle-streams scenario (`mio-grpc-bench idle`, BENCH.md's C row for
//! open streams): a server process pinned to CPU 1 with a raised
//! MAX_CONCURRENT_STREAMS, N idle bidi streams ([`IDLE_METHOD`], a callback
//! reactor that answers nothing) opened over C connections from this
//! process (pinned to CPU 0), and a unary client at concurrency 1 run
//! before and after the streams open, on its own connection.
//!
//! Reported: the server's threads (`/proc/PID/task`, by name) and RSS
//! (`/proc/PID/status` VmRSS) with the connections only and with the
//! streams open, ΔRSS ÷ N, and the unary p50/p99 without and with the
//! streams. Goals: no thread per stream, ≤ 4 KiB per stream, unary p99
//! with the streams within 2× of the p99 without.
//!
//! The client side holds each stream as a [`StreamingCall`]: an open call
//! costs no thread (its messages would come through `on_message` on the
//! channel's event loop), but each [`Channel`] (one connection) runs three
//! threads — its event loop, its deadline timer and its maintenance
//! thread — so C connections cost this process 3 × C threads.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use mio_grpc::client::{CallOptions, Channel, StreamingCall};

use crate::alloc::{class_limit, SIZE_CLASSES};
use crate::args::{ArgError, Args, ClientArgs};
use crate::client::{connect, server_stats};
use crate::report::Report;
use crate::server::{ServerStats, IDLE_METHOD};
use crate::spawn::{can_pin, command, run_client, ServerProcess};

/// Streams held by default.
pub const DEFAULT_STREAMS: u64 = 100_000;
/// Connections they are spread over by default.
pub const DEFAULT_CONNS: u32 = 100;
/// The memory goal per open stream (BENCH.md: ≤ 4 KiB).
pub const BYTES_PER_STREAM_GOAL: f64 = 4096.0;
/// The latency goal: unary p99 with the streams ≤ this × without.
pub const P99_RATIO_GOAL: f64 = 2.0;
/// Streams per connection the server allows beyond the even share (the
/// share is rounded up; the slack covers nothing else: stats and the unary
/// load use their own connections).
const STREAM_SLACK: u32 = 16;
/// The longest wait for the server to see every stream open (or closed).
const SETTLE_LIMIT: Duration = Duration::from_secs(20);

/// The `idle` subcommand's flags.
#[derive(Clone, Debug, PartialEq)]
pub struct IdleArgs {
    /// Idle streams to open (`--streams`, default 100,000).
    pub streams: u64,
    /// Connections they are spread over, evenly (`--conns`, default 100).
    pub conns: u32,
    /// Each unary run's measured window (`--duration`, default 3 s).
    pub duration: Duration,
    /// Each unary run's warm-up (`--warmup`, default 1 s).
    pub warmup: Duration,
    /// The server's event loops (`--threads`, default 1).
    pub threads: usize,
}

impl IdleArgs {
    /// Parses the `idle` subcommand's flags.
    ///
    /// ```
    /// use mio_grpc_bench::idle::IdleArgs;
    /// let args: Vec<String> = ["--streams", "1000", "--conns", "10"]
    ///     .iter().map(|s| s.to_string()).collect();
    /// let parsed = IdleArgs::parse(&args).unwrap();
    /// assert_eq!((parsed.streams, parsed.per_conn()), (1000, 100));
    /// ```
    pub fn parse(args: &[String]) -> Result<IdleArgs, ArgError> {
        let a = Args::parse(
            args,
            &["streams", "conns", "duration", "warmup", "threads"],
            &[],
        )?;
        let parsed = IdleArgs {
            streams: a.num("streams", DEFAULT_STREAMS)?,
            conns: a.num("conns", DEFAULT_CONNS)?,
            duration: a.secs("duration", 3.0)?,
            warmup: a.secs("warmup", 1.0)?,
            threads: a.num("threads", 1usize)?,
        };
        if parsed.streams == 0 || parsed.conns == 0 || parsed.threads == 0 {
            return Err(ArgError(
                "--streams, --conns and --threads must be at least 1".into(),
            ));
        }
        if parsed.per_conn_u64() > u64::from(u32::MAX - STREAM_SLACK) {
            return Err(ArgError(format!(
                "{} streams over {} connections is more per connection than HTTP/2 allows",
                parsed.streams, parsed.conns
            )));
        }
        if parsed.duration.is_zero() {
            return Err(ArgError("--duration must be above 0".into()));
        }
        if parsed.duration + parsed.warmup > Duration::from_secs(20) {
            return Err(ArgError(
                "--duration + --warmup is capped at 20 s (the scenario stays under a minute)"
                    .into(),
            ));
        }
        Ok(parsed)
    }

    fn per_conn_u64(&self) -> u64 {
        self.streams.div_ceil(u64::from(self.conns))
    }

    /// Streams on each connection (the even share, rounded up).
    pub fn per_conn(&self) -> u32 {
        u32::try_from(self.per_conn_u64()).unwrap_or(u32::MAX)
    }

    /// The server's MAX_CONCURRENT_STREAMS: the share plus a little slack,
    /// and never below the default of 100.
    pub fn max_streams(&self) -> u32 {
        self.per_conn().saturating_add(STREAM_SLACK).max(100)
    }
}

/// VmRSS in KiB from the text of `/proc/PID/status`.
///
/// ```
/// let status = "Name:\tx\nVmRSS:\t    1234 kB\nThreads:\t3\n";
/// assert_eq!(mio_grpc_bench::idle::vm_rss_kib(status), Some(1234));
/// ```
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
}

/// The resident set of process `pid` in KiB (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    vm_rss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The names of process `pid`'s threads (Linux: `/proc/PID/task/*/comm`).
pub fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = tasks
        .flatten()
        .map(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into())
        })
        .collect();
    names.sort();
    names
}

/// Thread names grouped by kind (a trailing number and its `-` dropped:
/// `mio-grpc-worker-3` counts as `mio-grpc-worker`), sorted by name, as
/// `name ×count` joined by commas.
///
/// ```
/// let names = ["mio-grpc-worker-1", "mio-grpc-worker-2", "main"].map(String::from);
/// assert_eq!(
///     mio_grpc_bench::idle::thread_summary(&names),
///     "main ×1, mio-grpc-worker ×2"
/// );
/// ```
pub fn thread_summary(names: &[String]) -> String {
    let mut groups: std::collections::BTreeMap<&str, usize> = Default::default();
    for name in names {
        let kind = name
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end_matches('-');
        let kind = if kind.is_empty() { name.as_str() } else { kind };
        *groups.entry(kind).or_default() += 1;
    }
    groups
        .iter()
        .map(|(name, n)| format!("{name} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Latency of one unary run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Calls measured.
    pub count: u64,
    /// Calls failed.
    pub errors: u64,
}

impl From<&Report> for Latency {
    fn from(r: &Report) -> Latency {
        Latency {
            p50_us: r.p50_us,
            p99_us: r.p99_us,
            count: r.count,
            errors: r.errors,
        }
    }
}

/// What one idle-streams run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdleResult {
    /// Streams the server saw open at once.
    pub streams: u64,
    /// Connections holding them.
    pub conns: u32,
    /// The server's threads with the connections only, and their kinds.
    pub threads_before: (usize, String),
    /// The server's threads with the streams open, and their kinds.
    pub threads_after: (usize, String),
    /// Server RSS (KiB) just after it started.
    pub rss_start_kib: u64,
    /// Server RSS (KiB) with the connections open, before the streams.
    pub rss_before_kib: u64,
    /// Server RSS (KiB) with the streams open.
    pub rss_after_kib: u64,
    /// Server RSS (KiB) after the streams were closed again.
    pub rss_closed_kib: Option<u64>,
    /// How long opening the streams took (until the server saw them all).
    pub open_time: Duration,
    /// Unary at concurrency 1 without the streams.
    pub without: Latency,
    /// Unary at concurrency 1 with the streams open.
    pub with: Latency,
    /// The server's stats (allocations, live heap) just before the
    /// streams were opened.
    pub stats_before: ServerStats,
    /// The server's stats with the streams open.
    pub stats_after: ServerStats,
    /// The server's stats after the streams were closed.
    pub stats_closed: Option<ServerStats>,
    /// The server's stats after the holder's connections were closed too.
    pub stats_gone: Option<ServerStats>,
    /// The same after one more connection was accepted (the server prunes
    /// its list of closed connections on accept).
    pub stats_pruned: Option<ServerStats>,
}

/// One goal, met or not.
#[derive(Clone, Debug, PartialEq)]
pub struct Goal {
    /// What is measured.
    pub name: &'static str,
    /// The figure and the limit, as printed.
    pub text: String,
    /// Whether it is met.
    pub met: bool,
}

impl IdleResult {
    /// Server memory per open stream: ΔRSS ÷ N, in bytes (0 if RSS fell).
    pub fn bytes_per_stream(&self) -> f64 {
        if self.streams == 0 {
            return 0.0;
        }
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0 / self.streams as f64
    }

    /// Server memory per connection (before the streams), in bytes.
    pub fn bytes_per_conn(&self) -> f64 {
        if self.conns == 0 {
            return 0.0;
        }
        self.rss_before_kib.saturating_sub(self.rss_start_kib) as f64 * 1024.0
            / f64::from(self.conns)
    }

    /// Server heap allocations per stream (Δ allocation count ÷ N; counts
    /// every allocation made while opening, freed or not).
    pub fn allocs_per_stream(&self) -> f64 {
        if self.streams == 0 {
            return 0.0;
        }
        self.stats_after
            .allocs
            .saturating_sub(self.stats_before.allocs) as f64
            / self.streams as f64
    }

    /// Server live heap bytes per stream (Δ live bytes ÷ N; 0 when the
    /// server did not track its heap).
    pub fn heap_bytes_per_stream(&self) -> f64 {
        if self.streams == 0 {
            return 0.0;
        }
        (self.stats_after.heap_bytes - self.stats_before.heap_bytes) as f64 / self.streams as f64
    }

    /// The live heap's growth per stream by size class, for the classes
    /// that grew by at least 8 bytes per stream: (largest block size in
    /// the class, blocks per stream, bytes per stream). Blocks far below
    /// one per stream are per-connection tables grown to hold the streams.
    pub fn blocks_per_stream(&self) -> Vec<(usize, f64, f64)> {
        if self.streams == 0 {
            return Vec::new();
        }
        let n = self.streams as f64;
        let (a, b) = (&self.stats_after, &self.stats_before);
        (0..SIZE_CLASSES)
            .filter_map(|k| {
                let blocks = (a.heap_blocks[k] - b.heap_blocks[k]) as f64 / n;
                let bytes = (a.heap_class_bytes[k] - b.heap_class_bytes[k]) as f64 / n;
                (bytes.abs() >= 8.0).then_some((class_limit(k), blocks, bytes))
            })
            .collect()
    }

    /// Unary p99 with the streams ÷ without (`None` without a figure).
    pub fn p99_ratio(&self) -> Option<f64> {
        (self.without.p99_us > 0.0 && self.with.p99_us > 0.0)
            .then(|| self.with.p99_us / self.without.p99_us)
    }

    /// The scenario's goals: no thread per stream (the server's thread
    /// count does not grow with the streams: event loops + pools only),
    /// ≤ 4 KiB per stream, unary p99 within 2× of the run without.
    pub fn goals(&self) -> Vec<Goal> {
        let (before, after) = (self.threads_before.0, self.threads_after.0);
        let per_stream = self.bytes_per_stream();
        let mut goals = vec![
            Goal {
                name: "threads = loops + pools (no thread per stream)",
                text: format!("{after} with the streams, {before} without"),
                met: after <= before,
            },
            Goal {
                name: "memory per stream ≤ 4 KiB",
                text: format!("{per_stream:.0} B"),
                met: per_stream <= BYTES_PER_STREAM_GOAL,
            },
        ];
        goals.push(match self.p99_ratio() {
            Some(ratio) => Goal {
                name: "unary p99 within 2× of the run without streams",
                text: format!("{ratio:.2}×"),
                met: ratio <= P99_RATIO_GOAL && self.with.errors == 0,
            },
            None => Goal {
                name: "unary p99 within 2× of the run without streams",
                text: "no figure".into(),
                met: false,
            },
        });
        goals
    }

    /// The report: figures, then the goals met or not.
    pub fn render(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "idle streams: {} over {} connections ({} per connection), opened in {:.2} s",
            self.streams,
            self.conns,
            self.streams.div_ceil(u64::from(self.conns.max(1))),
            self.open_time.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  server threads: {} without the streams ({}); {} with them ({})",
            self.threads_before.0,
            self.threads_before.1,
            self.threads_after.0,
            self.threads_after.1
        );
        let _ = writeln!(
            out,
            "  server RSS: {:.1} MiB at start, {:.1} MiB with {} connections ({:.0} B per connection), {:.1} MiB with the streams{}",
            mib(self.rss_start_kib),
            mib(self.rss_before_kib),
            self.conns,
            self.bytes_per_conn(),
            mib(self.rss_after_kib),
            self.rss_closed_kib
                .map_or(String::new(), |k| format!(", {:.1} MiB after closing them", mib(k)))
        );
        let _ = writeln!(
            out,
            "  memory per stream: ΔRSS {:.1} MiB ÷ {} = {:.0} B",
            mib(self.rss_after_kib.saturating_sub(self.rss_before_kib)),
            self.streams,
            self.bytes_per_stream()
        );
        if self.stats_after.heap_bytes != 0 {
            let classes = self
                .blocks_per_stream()
                .iter()
                .map(|(limit, n, bytes)| {
                    if *limit == usize::MAX {
                        format!("{n:.3} × larger = {bytes:.0} B")
                    } else {
                        format!("{n:.3} × ≤{limit} B = {bytes:.0} B")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "  server heap per stream: {:.1} allocations, {:.0} B live; RSS beyond the live heap: {:.0} B\n  live heap per stream by block size: {}",
                self.allocs_per_stream(),
                self.heap_bytes_per_stream(),
                self.bytes_per_stream() - self.heap_bytes_per_stream(),
                if classes.is_empty() { "-".into() } else { classes },
            );
            let growth = |s: &ServerStats| {
                (s.heap_bytes - self.stats_before.heap_bytes) as f64 / (1 << 20) as f64
            };
            if let Some(closed) = &self.stats_closed {
                let _ = writeln!(
                    out,
                    "  server live heap against before the streams: {:+.1} MiB after closing them{}{}",
                    growth(closed),
                    self.stats_gone.as_ref().map_or(String::new(), |gone| format!(
                        ", {:+.1} MiB after closing their connections too",
                        growth(gone)
                    )),
                    self.stats_pruned.as_ref().map_or(String::new(), |pruned| format!(
                        ", {:+.1} MiB once the server accepted one more connection",
                        growth(pruned)
                    ))
                );
            }
        }
        for (label, l) in [
            ("without streams", self.without),
            ("with streams   ", self.with),
        ] {
            let _ = writeln!(
                out,
                "  unary c=1 {label}: p50 {:.1} µs, p99 {:.1} µs ({} calls, {} errors)",
                l.p50_us, l.p99_us, l.count, l.errors
            );
        }
        let _ = writeln!(out, "goals:");
        for goal in self.goals() {
            let _ = writeln!(
                out,
                "  {}: {} — {}",
                goal.name,
                goal.text,
                if goal.met { "met" } else { "NOT met" }
            );
        }
        out
    }
}

/// Idle streams held open from this process: C channels (one connection
/// each) and N open [`StreamingCall`]s, dealt round-robin.
pub struct Holder {
    channels: Vec<Channel>,
    calls: Vec<StreamingCall>,
}

impl Holder {
    /// Connects `conns` channels to `target` (each ready before this
    /// returns).
    pub fn connect(target: &str, conns: u32) -> Result<Holder, String> {
        Ok(Holder {
            channels: connect(target, conns)?,
            calls: Vec::new(),
        })
    }

    /// Opens `n` more idle streams, round-robin over the channels. Each
    /// call's HEADERS leave at once; nothing else is sent.
    pub fn open(&mut self, n: u64) -> Result<(), String> {
        self.calls.reserve(usize::try_from(n).unwrap_or(0));
        for i in 0..n {
            let channel = &self.channels[(i % self.channels.len() as u64) as usize];
            let call = channel
                .streaming_raw(IDLE_METHOD, CallOptions::default())
                .map_err(|status| format!("opening idle stream {i}: {status}"))?;
            self.calls.push(call);
        }
        Ok(())
    }

    /// Half-closes every stream (the server then ends each with OK).
    pub fn close_send(&self) {
        for call in &self.calls {
            let _ = call.close_send();
        }
    }

    /// Streams held.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no stream is held.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.calls.clear();
        for channel in &self.channels {
            channel.close();
        }
    }
}

/// Polls the server's stats on `channel` until `done(idle_streams)` or
/// [`SETTLE_LIMIT`]; returns the last count seen.
fn settle(channel: &Channel, done: impl Fn(u64) -> bool) -> u64 {
    let until = Instant::now() + SETTLE_LIMIT;
    loop {
        let open = server_stats(channel).map_or(0, |s| s.idle_streams);
        if done(open) || Instant::now() >= until {
            return open;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pins this process (every thread it has and will make) to `cpu`.
fn pin_self(cpu: usize) -> bool {
    std::process::Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the scenario with `rest` as its flags and prints its report.
pub fn run(rest: &[String]) -> Result<(), String> {
    let args = IdleArgs::parse(rest).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("finding this binary: {e}"))?;
    let exe = exe.to_string_lossy().into_owned();
    let pinned = can_pin();
    let (server_cpu, client_cpu) = if pinned {
        (Some(1), Some(0))
    } else {
        (None, None)
    };
    // The holder's channels (and their threads) run on the client's CPU.
    let pinned = pinned && pin_self(0);
    println!(
        "mio-grpc-bench idle: {} idle streams over {} connections, server MAX_CONCURRENT_STREAMS {}, \
         {} event loop(s), unary c=1 for {} s after {} s warm-up, {}",
        args.streams,
        args.conns,
        args.max_streams(),
        args.threads,
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        if pinned {
            "server on CPU 1, clients on CPU 0"
        } else {
            "NOT pinned"
        }
    );
    let threads = args.threads.to_string();
    let max_streams = args.max_streams().to_string();
    let server = ServerProcess::launch(
        server_cpu,
        &exe,
        &[
            "server",
            "--inline",
            "--callback",
            "--threads",
            &threads,
            "--max-streams",
            &max_streams,
            "--track-heap",
        ],
    )
    .map_err(|e| format!("starting the bench server: {e}"))?;
    let pid = server.pid();
    let target = server.addr.to_string();
    let rss = || rss_kib(pid).ok_or_else(|| format!("cannot read /proc/{pid}/status"));
    let threads_now = || {
        let names = thread_names(pid);
        (names.len(), thread_summary(&names))
    };
    let unary = |label: &str| -> Result<Latency, String> {
        eprintln!("unary c=1 {label} ...");
        let client = ClientArgs {
            target: target.clone(),
            rpc: "unary".into(),
            concurrency: 1,
            connections: 1,
            duration: args.duration,
            warmup: args.warmup,
            req_size: 0,
            resp_size: 0,
        };
        let mut argv = vec!["client".to_string()];
        argv.extend(client.to_args());
        run_client(command(client_cpu, &exe, &argv))
            .map(|r| Latency::from(&r))
            .map_err(|e| format!("unary run {label}: {e}"))
    };

    std::thread::sleep(Duration::from_millis(200));
    let rss_start_kib = rss()?;
    let stats = connect(&target, 1)?.remove(0);
    let mut holder = Holder::connect(&target, args.conns)?;
    std::thread::sleep(Duration::from_millis(300));
    let rss_before_kib = rss()?;
    let threads_before = threads_now();
    let without = unary("without streams")?;
    let stats_before = server_stats(&stats).unwrap_or_default();

    eprintln!("opening {} idle streams ...", args.streams);
    let begin = Instant::now();
    holder.open(args.streams)?;
    let seen = settle(&stats, |open| open >= args.streams);
    let open_time = begin.elapsed();
    if seen < args.streams {
        return Err(format!(
            "the server saw {seen} of {} idle streams open after {} s",
            args.streams,
            SETTLE_LIMIT.as_secs()
        ));
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_after_kib = rss()?;
    let threads_after = threads_now();
    let stats_after = server_stats(&stats).unwrap_or_default();
    let with = unary("with streams")?;
    let still = server_stats(&stats).map_or(0, |s| s.idle_streams);

    eprintln!("closing the idle streams ...");
    holder.close_send();
    let left = settle(&stats, |open| open == 0);
    let rss_closed_kib = rss().ok();
    let stats_closed = server_stats(&stats);
    drop(holder);
    std::thread::sleep(Duration::from_millis(500));
    let stats_gone = server_stats(&stats);
    let fresh = connect(&target, 1)?;
    std::thread::sleep(Duration::from_millis(300));
    let stats_pruned = server_stats(&stats);
    for channel in fresh {
        channel.close();
    }
    stats.close();
    drop(server);

    let result = IdleResult {
        streams: args.streams,
        conns: args.conns,
        threads_before,
        threads_after,
        rss_start_kib,
        rss_before_kib,
        rss_after_kib,
        rss_closed_kib,
        open_time,
        without,
        with,
        stats_before,
        stats_after,
        stats_closed,
        stats_gone,
        stats_pruned,
    };
    println!();
    print!("{}", result.render());
    if still < args.streams {
        println!("note: only {still} of the streams were still open after the unary run with them");
    }
    if left > 0 {
        println!(
            "note: {left} idle streams were still open {} s after the half-close",
            SETTLE_LIMIT.as_secs()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_parse_with_defaults_and_limits() {
        let a = IdleArgs::parse(&[]).unwrap();
        assert_eq!((a.streams, a.conns, a.threads), (100_000, 100, 1));
        assert_eq!(a.per_conn(), 1000);
        assert_eq!(a.max_streams(), 1016);
        let a = IdleArgs::parse(&strings(&["--streams", "1001", "--conns=10"])).unwrap();
        assert_eq!(a.per_conn(), 101, "the share rounds up");
        let a = IdleArgs::parse(&strings(&["--streams", "10", "--conns", "10"])).unwrap();
        assert_eq!(a.max_streams(), 100, "never below the default");
        for bad in [
            &["--streams", "0"][..],
            &["--conns", "0"],
            &["--streams", "x"],
            &["--duration", "0"],
            &["--duration", "30"],
            &["--bogus", "1"],
            &["--streams", "99999999999", "--conns", "1"],
        ] {
            assert!(IdleArgs::parse(&strings(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn proc_status_and_thread_names_parse() {
        let status = "Name:\tmio-grpc-bench\nVmPeak:\t  99 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(vm_rss_kib(status), Some(20480));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
        assert_eq!(vm_rss_kib("VmRSS:\tlots\n"), None);
        let names = strings(&[
            "mio-grpc-bench",
            "mio-grpc-loop-0",
            "mio-grpc-worker-1",
            "mio-grpc-worker-12",
            "42",
        ]);
        assert_eq!(
            thread_summary(&names),
            "42 ×1, mio-grpc-bench ×1, mio-grpc-loop ×1, mio-grpc-worker ×2"
        );
        // This process is on Linux in CI: it has a thread and an RSS.
        if std::path::Path::new("/proc/self/status").exists() {
            let me = std::process::id();
            assert!(!thread_names(me).is_empty());
            assert!(rss_kib(me).is_some_and(|k| k > 0));
        }
    }

    #[test]
    fn per_stream_figures_and_goals() {
        let mut r = IdleResult {
            streams: 100_000,
            conns: 100,
            threads_before: (12, String::new()),
            threads_after: (12, String::new()),
            rss_start_kib: 4_000,
            rss_before_kib: 6_000,
            rss_after_kib: 6_000 + 300_000,
            without: Latency {
                p50_us: 20.0,
                p99_us: 40.0,
                count: 1000,
                errors: 0,
            },
            with: Latency {
                p50_us: 21.0,
                p99_us: 60.0,
                count: 1000,
                errors: 0,
            },
            ..IdleResult::default()
        };
        assert_eq!(r.bytes_per_stream(), 3072.0);
        assert!((r.bytes_per_conn() - 20_480.0).abs() < 1e-9);
        assert_eq!(r.p99_ratio(), Some(1.5));
        assert!(
            !r.render().contains("heap per stream"),
            "no heap figures when untracked"
        );
        r.stats_before.allocs = 1_000;
        r.stats_after.allocs = 1_000 + 500_000;
        r.stats_before.heap_bytes = 1 << 20;
        r.stats_after.heap_bytes = (1 << 20) + 200_000_000;
        r.stats_after.heap_blocks[6] = 300_000; // ≤ 64 B, 3 per stream
        r.stats_after.heap_class_bytes[6] = 19_200_000; // 192 B per stream
        r.stats_after.heap_blocks[20] = 100; // one 1 MiB table per connection
        r.stats_after.heap_class_bytes[20] = 100_000_000;
        r.stats_after.heap_blocks[3] = 1; // under 8 B per stream: left out
        r.stats_after.heap_class_bytes[3] = 8;
        assert_eq!(r.allocs_per_stream(), 5.0);
        assert_eq!(r.heap_bytes_per_stream(), 2000.0);
        assert_eq!(
            r.blocks_per_stream(),
            vec![(64, 3.0, 192.0), (1 << 20, 0.001, 1000.0)]
        );
        let text = r.render();
        assert!(text.contains("5.0 allocations, 2000 B live;"), "{text}");
        assert!(
            text.contains("by block size: 3.000 × ≤64 B = 192 B, 0.001 × ≤1048576 B = 1000 B"),
            "{text}"
        );
        assert!(text.contains("RSS beyond the live heap: 1072 B"), "{text}");
        assert!(r.goals().iter().all(|g| g.met), "{:?}", r.goals());
        assert!(r.render().contains("3072 B"));

        r.rss_after_kib = 6_000 + 500_000;
        r.threads_after.0 = 13;
        r.with.p99_us = 100.0;
        let goals = r.goals();
        assert!(goals.iter().all(|g| !g.met), "{goals:?}");
        assert!(r.render().contains("NOT met"));

        r.rss_after_kib = 5_000;
        assert_eq!(r.bytes_per_stream(), 0.0, "a shrinking RSS is no cost");
        r.without.p99_us = 0.0;
        assert_eq!(r.p99_ratio(), None);
    }
}

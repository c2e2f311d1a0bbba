//! [`Report`]: one client run's result, as the contract's JSON line (and a
//! human line), built from an HDR histogram of call latencies.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in nanoseconds, from 1 ns to 60 s, 3 significant
/// digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid")
}

/// Records `latency` (saturating at the histogram's top).
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
    histogram.saturating_record(ns.max(1));
}

/// The percentiles a report carries for the latency plot.
pub const PLOT_PERCENTILES: [f64; 11] = [
    50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0,
];

/// What a run was: the contract's descriptive fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSpec {
    /// Who measured (`"mio-grpc"`, `"tonic"`, `"tcp"`).
    pub client: String,
    /// `HOST:PORT`.
    pub target: String,
    /// `"unary"` or `"streaming"`.
    pub rpc: String,
    /// Outstanding calls (or ping-pong streams).
    pub concurrency: u32,
    /// Connections they are spread over.
    pub connections: u32,
    /// Request payload bytes.
    pub req_size: u32,
    /// Response payload bytes.
    pub resp_size: u32,
}

/// Transport cost per call, for our own client (the contract's "transport
/// stats"): counted over the measured window and divided by the calls
/// completed in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerCall {
    /// `write`/`writev` syscalls by the client's connections.
    pub write_syscalls: f64,
    /// `read` syscalls by the client's connections.
    pub read_syscalls: f64,
    /// Event-loop wake-ups for the client's connections.
    pub wakeups: f64,
    /// Heap allocations in the client process (counting allocator).
    pub allocs: f64,
    /// Heap allocations in the server process, when the server is ours and
    /// answers the stats call; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_allocs: Option<f64>,
    /// Bytes the client wrote (HTTP/2 frames).
    pub bytes_out: f64,
    /// Bytes the client read.
    pub bytes_in: f64,
}

/// One run's result: the contract's JSON line, field for field, plus our
/// transport stats and a percentile curve for plotting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Who measured.
    pub client: String,
    /// `HOST:PORT`.
    pub target: String,
    /// `"unary"` or `"streaming"`.
    pub rpc: String,
    /// Outstanding calls or streams.
    pub concurrency: u32,
    /// Connections.
    pub connections: u32,
    /// Request payload bytes.
    pub req_size: u32,
    /// Response payload bytes.
    pub resp_size: u32,
    /// The measured window, seconds.
    pub duration_s: f64,
    /// Calls (or ping-pong round trips) completed in the window.
    pub count: u64,
    /// Calls that failed in the window.
    pub errors: u64,
    /// `count / duration_s`.
    pub qps: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Largest latency, µs.
    pub max_us: f64,
    /// Transport cost per call (our client only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_call: Option<PerCall>,
    /// `[percentile, µs]` points of the latency curve ([`PLOT_PERCENTILES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percentiles: Vec<(f64, f64)>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Report {
    /// The report of a run described by `spec` that completed the calls in
    /// `histogram` (and `errors` failures) in `window`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mio_grpc_bench::report::{new_histogram, record, Report, RunSpec};
    /// let spec = RunSpec {
    ///     client: "mine".into(), target: "127.0.0.1:50051".into(), rpc: "unary".into(),
    ///     concurrency: 1, connections: 1, req_size: 0, resp_size: 0,
    /// };
    /// let mut h = new_histogram();
    /// record(&mut h, Duration::from_micros(12));
    /// let report = Report::from_histogram(&spec, &h, 0, Duration::from_secs(1));
    /// assert_eq!(report.count, 1);
    /// println!("{}\n{}", report.human_line(), report.to_json_line());
    /// ```
    pub fn from_histogram(
        spec: &RunSpec,
        histogram: &Histogram<u64>,
        errors: u64,
        window: Duration,
    ) -> Report {
        let count = histogram.len();
        let secs = window.as_secs_f64();
        let at = |q: f64| {
            if count == 0 {
                0.0
            } else {
                us(histogram.value_at_quantile(q / 100.0))
            }
        };
        Report {
            client: spec.client.clone(),
            target: spec.target.clone(),
            rpc: spec.rpc.clone(),
            concurrency: spec.concurrency,
            connections: spec.connections,
            req_size: spec.req_size,
            resp_size: spec.resp_size,
            duration_s: round3(secs),
            count,
            errors,
            qps: if secs > 0.0 {
                round3(count as f64 / secs)
            } else {
                0.0
            },
            mean_us: if count == 0 {
                0.0
            } else {
                round3(histogram.mean() / 1000.0)
            },
            p50_us: at(50.0),
            p90_us: at(90.0),
            p99_us: at(99.0),
            p999_us: at(99.9),
            max_us: if count == 0 { 0.0 } else { us(histogram.max()) },
            per_call: None,
            percentiles: if count == 0 {
                Vec::new()
            } else {
                PLOT_PERCENTILES.iter().map(|&p| (p, at(p))).collect()
            },
        }
    }

    /// The one-line JSON form (the contract's machine-readable line).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The last line of `output` that parses as a report (the JSON line a
    /// client prints after its human line).
    pub fn from_output(output: &str) -> Option<Report> {
        output
            .lines()
            .rev()
            .filter(|line| line.trim_start().starts_with('{'))
            .find_map(|line| serde_json::from_str(line).ok())
    }

    /// The human-readable line printed before the JSON.
    pub fn human_line(&self) -> String {
        let mut line = format!(
            "{} {} c={} k={} req={}B resp={}B: {} calls in {:.1} s = {:.0}/s, {} errors; \
             latency µs mean {:.1} p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
            self.client,
            self.rpc,
            self.concurrency,
            self.connections,
            self.req_size,
            self.resp_size,
            self.count,
            self.duration_s,
            self.qps,
            self.errors,
            self.mean_us,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us
        );
        if let Some(pc) = &self.per_call {
            line.push_str(&format!(
                "; per call: {:.2} writes {:.2} reads {:.2} wake-ups {:.1} allocs",
                pc.write_syscalls, pc.read_syscalls, pc.wakeups, pc.allocs
            ));
            if let Some(server) = pc.server_allocs {
                line.push_str(&format!(" (server {server:.1})"));
            }
        }
        line
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            client: "mio-grpc".into(),
            target: "127.0.0.1:1".into(),
            rpc: "unary".into(),
            concurrency: 1,
            connections: 1,
            req_size: 0,
            resp_size: 0,
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = new_histogram();
        for i in 1..=1000u64 {
            record(&mut h, Duration::from_micros(i));
        }
        let r = Report::from_histogram(&spec(), &h, 2, Duration::from_secs(2));
        assert_eq!(r.count, 1000);
        assert_eq!(r.errors, 2);
        assert!((r.qps - 500.0).abs() < 1e-9);
        assert!((r.p50_us - 500.0).abs() < 1.0, "{}", r.p50_us);
        assert!((r.p99_us - 990.0).abs() < 1.0, "{}", r.p99_us);
        assert!((r.max_us - 1000.0).abs() < 1.0, "{}", r.max_us);
        assert!((r.mean_us - 500.5).abs() < 1.0, "{}", r.mean_us);
    }

    #[test]
    fn json_line_has_the_contract_fields_in_order_and_round_trips() {
        let mut h = new_histogram();
        record(&mut h, Duration::from_micros(10));
        let r = Report::from_histogram(&spec(), &h, 0, Duration::from_secs(1));
        let line = r.to_json_line();
        let order = [
            "client",
            "target",
            "rpc",
            "concurrency",
            "connections",
            "req_size",
            "resp_size",
            "duration_s",
            "count",
            "errors",
            "qps",
            "mean_us",
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
            "max_us",
        ];
        let mut at = 0;
        for key in order {
            let pos = line[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing or out of order in {line}"));
            at += pos;
        }
        assert!(!line.contains('\n'));
        let output = format!("{}\n{line}\n", r.human_line());
        assert_eq!(Report::from_output(&output), Some(r));
    }

    #[test]
    fn an_empty_run_reports_zeros_not_nan() {
        let r = Report::from_histogram(&spec(), &new_histogram(), 5, Duration::from_secs(1));
        assert_eq!(r.count, 0);
        assert_eq!(r.p50_us, 0.0);
        assert!(r.to_json_line().contains("\"errors\":5"));
    }
}

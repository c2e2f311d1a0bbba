//! Our closed-loop benchmark client. Calls are kept in flight with
//! callbacks on the channel's event-loop thread: a unary call's completion
//! callback records its latency and starts the next call; a ping-pong
//! stream's message callback records the round trip and sends the next
//! request. One thread holds any concurrency with no hand-off per call; the
//! main thread only takes the counter snapshots and restarts what failed.
//! K connections are K channels, each connected before the warm-up.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;
use mio_grpc::client::{CallOptions, Channel, ChannelOptions, ConnectivityState};
use mio_grpc::grpc::Status;
use parking_lot::Mutex;
use prost::Message;

use crate::alloc::allocations;
use crate::args::ClientArgs;
use crate::proto::{Payload, SimpleRequest, SimpleResponse};
use crate::report::{new_histogram, record, PerCall, Report};
use crate::server::{zeros, ServerStats, STATS_METHOD};

const UNARY: &str = "/grpc.testing.BenchmarkService/UnaryCall";
const STREAMING: &str = "/grpc.testing.BenchmarkService/StreamingCall";

/// How deep completion callbacks may nest (a call that completes before its
/// callback is registered runs it at once, on the issuing stack); past
/// this, the next call is handed to the main thread.
const MAX_NESTING: u32 = 8;

thread_local! {
    static NESTING: Cell<u32> = const { Cell::new(0) };
}

/// The request every call sends: `req_size` zero bytes, asking for
/// `resp_size` back. Encoded once; each call sends a reference to it.
pub fn encoded_request(req_size: u32, resp_size: u32) -> Bytes {
    let request = SimpleRequest {
        response_type: 0,
        response_size: i32::try_from(resp_size).unwrap_or(i32::MAX),
        payload: Some(Payload {
            r#type: 0,
            body: zeros(req_size as usize),
        }),
    };
    Bytes::from(request.encode_to_vec())
}

/// Whether `reply` is a SimpleResponse with `resp_size` payload bytes.
fn reply_ok(reply: &Bytes, resp_size: usize) -> bool {
    SimpleResponse::decode(reply.clone())
        .is_ok_and(|r| r.payload.map_or(0, |p| p.body.len()) == resp_size)
}

/// Connects `k` channels (one connection each) to `target` and waits (up
/// to 10 s) for each to be ready.
pub fn connect(target: &str, k: u32) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::new();
    for _ in 0..k {
        let channel = Channel::new(target, ChannelOptions::default())
            .map_err(|e| format!("bad target {target:?}: {e:?}"))?;
        channel.connect();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let state = channel.state(true);
            if state == ConnectivityState::Ready {
                break;
            }
            if state == ConnectivityState::TransientFailure {
                return Err(format!("could not connect to {target}: connection failed"));
            }
            if Instant::now() >= until {
                return Err(format!(
                    "could not connect to {target} ({state:?} after 10 s)"
                ));
            }
            channel.wait_for_state_change(state, Some(until));
        }
        channels.push(channel);
    }
    Ok(channels)
}

/// The server's stats, if it is ours (others answer UNIMPLEMENTED).
pub fn server_stats(channel: &Channel) -> Option<ServerStats> {
    let reply = channel
        .unary_raw(
            STATS_METHOD,
            Bytes::new(),
            CallOptions::default().timeout(Duration::from_secs(2)),
        )
        .ok()?;
    serde_json::from_slice(&reply).ok()
}

/// Snapshots of the counters at the window's edges. The per-call figures
/// divide the counters' growth by the calls completed between the same two
/// snapshots (`calls`), not by the calls in the window: a snapshot is
/// taken when the main thread gets to it (after the stats call, on a
/// loaded machine well after the edge), and counters over one span
/// divided by calls over another are wrong by the difference.
struct Snapshot {
    allocs: u64,
    calls: u64,
    transport: mio_grpc::conn::ConnStats,
    server: Option<ServerStats>,
}

impl Snapshot {
    fn take(channels: &[Channel], completed: &AtomicU64, server_first: bool) -> Snapshot {
        // The stats call is made outside the client's counted span.
        let server = if server_first {
            server_stats(&channels[0])
        } else {
            None
        };
        let allocs = allocations();
        let calls = completed.load(Ordering::Acquire);
        let mut transport = mio_grpc::conn::ConnStats::default();
        for c in channels {
            transport.add(&c.transport_stats());
        }
        Snapshot {
            allocs,
            calls,
            transport,
            server,
        }
    }

    fn finish(mut self, channels: &[Channel]) -> Snapshot {
        self.server = server_stats(&channels[0]);
        self
    }
}

fn per_call(start: &Snapshot, end: &Snapshot) -> Option<PerCall> {
    let count = end.calls.saturating_sub(start.calls);
    if count == 0 {
        return None;
    }
    let n = count as f64;
    let (a, b) = (&start.transport, &end.transport);
    let d = |x: u64, y: u64| y.saturating_sub(x) as f64 / n;
    let server_allocs = match (start.server, end.server) {
        (Some(s), Some(e)) if e.calls > s.calls => {
            Some(e.allocs.saturating_sub(s.allocs) as f64 / (e.calls - s.calls) as f64)
        }
        _ => None,
    };
    Some(PerCall {
        write_syscalls: d(a.write_syscalls, b.write_syscalls),
        read_syscalls: d(a.read_syscalls, b.read_syscalls),
        wakeups: d(a.wakeups, b.wakeups),
        allocs: d(start.allocs, end.allocs),
        server_allocs,
        bytes_out: d(a.bytes_out, b.bytes_out),
        bytes_in: d(a.bytes_in, b.bytes_in),
    })
}

/// Runs the client per `args` and returns its report.
///
/// ```no_run
/// use mio_grpc_bench::args::ClientArgs;
/// let args: Vec<String> = ["--target", "127.0.0.1:50051", "--duration", "5"]
///     .iter().map(|s| s.to_string()).collect();
/// let report = mio_grpc_bench::client::run(&ClientArgs::parse(&args).unwrap()).unwrap();
/// println!("{}", report.to_json_line());
/// ```
pub fn run(args: &ClientArgs) -> Result<Report, String> {
    let channels = connect(&args.target, args.connections)?;
    let spec = args.spec("mio-grpc");
    let request = encoded_request(args.req_size, args.resp_size);
    let begin = Instant::now();
    let window = Window {
        start: begin + args.warmup,
        end: begin + args.warmup + args.duration,
    };
    let issue: fn(&Arc<Load>, usize) = if args.rpc == "streaming" {
        Load::open
    } else {
        Load::issue
    };
    let (histogram, errors, start, end) = run_load(&channels, args, request, window, issue)?;
    let mut report = Report::from_histogram(&spec, &histogram, errors, args.duration);
    report.per_call = per_call(&start, &end);
    for channel in &channels {
        channel.close();
    }
    Ok(report)
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

type Outcome = (Histogram<u64>, u64, Snapshot, Snapshot);

/// The state a run's callbacks share (unary calls or ping-pong streams).
struct Load {
    channels: Vec<Channel>,
    request: Bytes,
    resp_size: usize,
    window: Window,
    histogram: Mutex<Histogram<u64>>,
    errors: AtomicU64,
    /// Calls (or round trips) that succeeded so far, in the window or not:
    /// what the snapshots count per-call figures by.
    completed: AtomicU64,
    /// Set once the end snapshot is taken; no call starts after it. Calls
    /// go on until then (not just to the window's end, which a loaded
    /// machine's main thread reaches late), so both snapshots see the loop
    /// in its steady state: every completion between them started its
    /// successor between them.
    stopped: AtomicBool,
    outstanding: AtomicUsize,
    /// Slots for the main thread to restart (after a failure, or when
    /// callbacks nest too deep), and `usize::MAX` when one has finished
    /// for good.
    handoff: Sender<usize>,
}

/// Unary calls: each completion records its latency and starts the next.
impl Load {
    /// Starts the unary call of `slot`.
    fn issue(self: &Arc<Self>, slot: usize) {
        let start = Instant::now();
        let channel = &self.channels[slot % self.channels.len()];
        let call = channel.start_unary_raw(UNARY, self.request.clone(), CallOptions::default());
        let me = self.clone();
        call.on_result(move |result| me.complete(slot, start, result));
    }

    fn complete(self: &Arc<Self>, slot: usize, start: Instant, result: &Result<Bytes, Status>) {
        let end = Instant::now();
        let ok = matches!(result, Ok(reply) if reply_ok(reply, self.resp_size));
        if ok {
            self.completed.fetch_add(1, Ordering::AcqRel);
        }
        if self.window.contains(end) {
            if ok {
                record(&mut self.histogram.lock(), end - start);
            } else {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.stopped.load(Ordering::Acquire) {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            let _ = self.handoff.send(usize::MAX);
            return;
        }
        let nesting = NESTING.with(Cell::get);
        if ok && nesting < MAX_NESTING {
            NESTING.with(|n| n.set(nesting + 1));
            self.issue(slot);
            NESTING.with(|n| n.set(nesting));
        } else {
            let _ = self.handoff.send(slot);
        }
    }
}

/// Runs `args.concurrency` slots of `kind` (`issue` starts or restarts
/// one) until the window has closed and every slot has finished.
fn run_load(
    channels: &[Channel],
    args: &ClientArgs,
    request: Bytes,
    window: Window,
    issue: fn(&Arc<Load>, usize),
) -> Result<Outcome, String> {
    let (tx, rx): (Sender<usize>, Receiver<usize>) = crossbeam_channel::unbounded();
    let concurrency = args.concurrency as usize;
    let load = Arc::new(Load {
        channels: channels.to_vec(),
        request,
        resp_size: args.resp_size as usize,
        window,
        histogram: Mutex::new(new_histogram()),
        errors: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
        outstanding: AtomicUsize::new(concurrency),
        handoff: tx,
    });
    for slot in 0..concurrency {
        issue(&load, slot);
    }
    let (start, end) = drive(&load, &rx, |slot| issue(&load, slot))?;
    let histogram = std::mem::replace(&mut *load.histogram.lock(), new_histogram());
    Ok((histogram, load.errors.load(Ordering::Relaxed), start, end))
}

/// The main thread's part of a run: counter snapshots at the window's
/// edges (the end one stops the load), and restarting the slots the
/// callbacks hand back (after a failure, paced by 1 ms so a dead server is
/// not hammered) until every slot has finished after the end snapshot.
fn drive(
    load: &Load,
    handoff: &Receiver<usize>,
    restart: impl Fn(usize),
) -> Result<(Snapshot, Snapshot), String> {
    let (channels, window) = (&load.channels[..], load.window);
    let (outstanding, completed) = (&load.outstanding, &load.completed);
    let mut start = None;
    let mut end = None;
    let drain_limit = window.end + Duration::from_secs(30);
    while outstanding.load(Ordering::Acquire) > 0 {
        let now = Instant::now();
        if start.is_none() && now >= window.start {
            start = Some(Snapshot::take(channels, completed, true));
        }
        if end.is_none() && now >= window.end {
            end = Some(Snapshot::take(channels, completed, false));
            load.stopped.store(true, Ordering::Release);
        }
        if now >= drain_limit {
            return Err(format!(
                "{} calls still outstanding 30 s after the window closed",
                outstanding.load(Ordering::Acquire)
            ));
        }
        let next_edge = if start.is_none() {
            window.start
        } else if end.is_none() {
            window.end
        } else {
            drain_limit
        };
        match handoff.recv_timeout(next_edge.saturating_duration_since(now)) {
            Ok(usize::MAX) | Err(_) => {}
            Ok(slot) => {
                std::thread::sleep(Duration::from_millis(1));
                if !load.stopped.load(Ordering::Acquire) {
                    restart(slot);
                } else {
                    outstanding.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }
    let start = start.unwrap_or_else(|| Snapshot::take(channels, completed, true));
    let end = end
        .unwrap_or_else(|| Snapshot::take(channels, completed, false))
        .finish(channels);
    Ok((start, end))
}

/// Ping-pong streams: each response records the round trip and sends the
/// next request.
impl Load {
    /// Opens the ping-pong stream of `slot` and sends its first request;
    /// each response's callback records it and sends the next.
    fn open(self: &Arc<Self>, slot: usize) {
        let channel = &self.channels[slot % self.channels.len()];
        let call = match channel.streaming_raw(STREAMING, CallOptions::default()) {
            Ok(call) => Arc::new(call),
            Err(_) => return self.ended(slot, false),
        };
        let me = Arc::clone(self);
        let sender = Arc::clone(&call);
        // The first request leaves right after registration; the callback
        // holds the call (and so keeps it open) until its end.
        let mut start = Instant::now();
        call.on_message(move |result| match result {
            Ok(Some(reply)) => {
                let end = Instant::now();
                let ok = reply_ok(&reply, me.resp_size);
                if ok {
                    me.completed.fetch_add(1, Ordering::AcqRel);
                }
                if me.window.contains(end) {
                    if ok {
                        record(&mut me.histogram.lock(), end - start);
                    } else {
                        me.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !ok {
                    sender.cancel();
                } else if me.stopped.load(Ordering::Acquire) {
                    let _ = sender.close_send();
                } else {
                    start = Instant::now();
                    if sender.send(&me.request).is_err() {
                        sender.cancel();
                    }
                }
            }
            Ok(None) => me.ended(slot, false),
            Err(_) => me.ended(slot, true),
        });
        if call.send(&self.request).is_err() {
            call.cancel();
        }
    }

    /// The stream of `slot` ended: reopened by the main thread until the
    /// end snapshot, else done.
    fn ended(&self, slot: usize, failed: bool) {
        let now = Instant::now();
        if self.stopped.load(Ordering::Acquire) {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            let _ = self.handoff.send(usize::MAX);
        } else {
            if failed && self.window.contains(now) {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
            let _ = self.handoff.send(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encodes_the_sizes_at_grpc_field_numbers() {
        let bytes = encoded_request(3, 1024);
        // response_size = 2 (varint), payload = 3 { body = 2 }.
        assert_eq!(
            &bytes[..],
            &[0x10, 0x80, 0x08, 0x1a, 0x05, 0x12, 0x03, 0, 0, 0]
        );
        let decoded = SimpleRequest::decode(bytes).unwrap();
        assert_eq!(decoded.response_size, 1024);
        assert_eq!(decoded.payload.unwrap().body.len(), 3);
    }

    #[test]
    fn replies_are_checked_for_size() {
        let reply = |n: usize| {
            Bytes::from(
                SimpleResponse {
                    payload: Some(Payload {
                        r#type: 0,
                        body: zeros(n),
                    }),
                }
                .encode_to_vec(),
            )
        };
        assert!(reply_ok(&reply(10), 10));
        assert!(!reply_ok(&reply(9), 10));
        assert!(
            reply_ok(&Bytes::new(), 0),
            "an empty message is a 0-byte reply"
        );
        assert!(
            !reply_ok(&Bytes::from_static(&[0xff]), 0),
            "garbage is an error"
        );
    }
}

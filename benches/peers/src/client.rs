//! `peers client`: tonic's closed-loop benchmark client, per the contract in
//! `shared/BENCH.md`.
//!
//! K tonic `Channel`s (one HTTP/2 connection each) are connected before the
//! warm-up starts; C tasks, spread round-robin over them, each keep one
//! unary call (or one ping-pong exchange on its own stream) outstanding.
//! A call is counted when it completes inside the measured window
//! `[start + warmup, start + warmup + duration)`; its latency runs from just
//! before the call is issued to the response (unary: the whole call, trailers
//! included). Everything runs on one current-thread tokio runtime, so the
//! client uses the one core it is pinned to.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio_grpc_bench::args::ClientArgs;
use mio_grpc_bench::report::{new_histogram, record, Report};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::proto::benchmark_service_client::BenchmarkServiceClient;
use crate::proto::{Payload, SimpleRequest, SimpleResponse};
use crate::server::{zeros, MAX_MESSAGE_SIZE};

/// How long one connection attempt may take before the run gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The measured window: calls completing in `[from, to)` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    from: Instant,
    to: Instant,
}

impl Window {
    fn contains(&self, at: Instant) -> bool {
        self.from <= at && at < self.to
    }
}

/// One task's result: the latencies of its calls completed in the window
/// and its failures there.
struct Tally {
    histogram: Histogram<u64>,
    errors: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            histogram: new_histogram(),
            errors: 0,
        }
    }

    /// Notes a call that started at `started` and ended at `done`, if it
    /// ended inside `window`.
    fn note(&mut self, window: Window, started: Instant, done: Instant, ok: bool) {
        if !window.contains(done) {
            return;
        }
        if ok {
            record(&mut self.histogram, done.duration_since(started));
        } else {
            self.errors += 1;
        }
    }
}

/// What every call sends, and the response size it expects back.
#[derive(Clone, Debug)]
struct Call {
    request: SimpleRequest,
    resp_size: usize,
}

impl Call {
    fn new(args: &ClientArgs) -> Call {
        Call {
            request: SimpleRequest {
                response_type: 0,
                response_size: i32::try_from(args.resp_size).unwrap_or(i32::MAX),
                payload: Some(Payload {
                    r#type: 0,
                    body: zeros(args.req_size as usize),
                }),
            },
            resp_size: args.resp_size as usize,
        }
    }

    /// Whether `response` is the one asked for (its payload has the size).
    fn answered_by(&self, response: &SimpleResponse) -> bool {
        response.payload.as_ref().map_or(0, |p| p.body.len()) == self.resp_size
    }
}

/// Runs the client described by `args` and returns its report; an error if
/// the runtime cannot start or a connection cannot be made.
pub fn run(args: &ClientArgs) -> Result<Report, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    runtime.block_on(measure(args))
}

async fn connect(args: &ClientArgs) -> Result<Vec<Channel>, String> {
    let endpoint = Endpoint::from_shared(format!("http://{}", args.target))
        .map_err(|e| format!("--target {:?} is not HOST:PORT: {e}", args.target))?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT);
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {}: {}", args.target, crate::describe(&e)))?;
        channels.push(channel);
    }
    Ok(channels)
}

async fn measure(args: &ClientArgs) -> Result<Report, String> {
    let channels = connect(args).await?;
    let call = Call::new(args);
    let start = Instant::now();
    let window = Window {
        from: start + args.warmup,
        to: start + args.warmup + args.duration,
    };
    let streaming = args.rpc == "streaming";
    let tasks: Vec<_> = channels
        .iter()
        .cycle()
        .take(args.concurrency as usize)
        .map(|channel| {
            let client = BenchmarkServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE);
            if streaming {
                tokio::spawn(streaming_loop(client, call.clone(), window))
            } else {
                tokio::spawn(unary_loop(client, call.clone(), window))
            }
        })
        .collect();
    let mut histogram = new_histogram();
    let mut errors = 0;
    for task in tasks {
        let tally = task
            .await
            .map_err(|e| format!("a client task failed: {e}"))?;
        histogram
            .add(&tally.histogram)
            .map_err(|e| format!("merging latencies: {e}"))?;
        errors += tally.errors;
    }
    let spec = args.spec("tonic");
    Ok(Report::from_histogram(
        &spec,
        &histogram,
        errors,
        args.duration,
    ))
}

/// One outstanding unary call at a time until the window closes; a call
/// still in flight then is dropped (cancelled), as it could not count.
async fn unary_loop(
    mut client: BenchmarkServiceClient<Channel>,
    call: Call,
    window: Window,
) -> Tally {
    let mut tally = Tally::new();
    let deadline = tokio::time::sleep_until(window.to.into());
    tokio::pin!(deadline);
    loop {
        let started = Instant::now();
        let outcome = tokio::select! {
            biased;
            outcome = client.unary_call(call.request.clone()) => outcome,
            () = &mut deadline => break,
        };
        let done = Instant::now();
        let ok = outcome.is_ok_and(|response| call.answered_by(response.get_ref()));
        tally.note(window, started, done, ok);
        if done >= window.to {
            break;
        }
    }
    tally
}

/// One ping-pong stream: send a request, wait for its response, repeat
/// until the window closes. A stream that fails or ends early counts one
/// error and is replaced by a new one.
async fn streaming_loop(
    mut client: BenchmarkServiceClient<Channel>,
    call: Call,
    window: Window,
) -> Tally {
    let mut tally = Tally::new();
    let deadline = tokio::time::sleep_until(window.to.into());
    tokio::pin!(deadline);
    'streams: loop {
        let (requests, outbound) = mpsc::channel(1);
        // The first request is queued before the stream is opened, so a
        // server that sends its headers only with the first response works.
        let mut started = Instant::now();
        if requests.try_send(call.request.clone()).is_err() {
            break;
        }
        let opened = tokio::select! {
            biased;
            opened = client.streaming_call(ReceiverStream::new(outbound)) => opened,
            () = &mut deadline => break,
        };
        let mut inbound = match opened {
            Ok(response) => response.into_inner(),
            Err(_) => {
                let done = Instant::now();
                tally.note(window, started, done, false);
                if done >= window.to {
                    break;
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                next = inbound.message() => next,
                () = &mut deadline => break 'streams,
            };
            let done = Instant::now();
            let ok = matches!(&next, Ok(Some(response)) if call.answered_by(response));
            tally.note(window, started, done, ok);
            if done >= window.to {
                break 'streams;
            }
            if !ok {
                continue 'streams;
            }
            started = Instant::now();
            if requests.send(call.request.clone()).await.is_err() {
                tally.note(window, started, Instant::now(), false);
                continue 'streams;
            }
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_calls_ending_inside_the_window_count() {
        let t0 = Instant::now();
        let window = Window {
            from: t0 + Duration::from_secs(1),
            to: t0 + Duration::from_secs(2),
        };
        let mut tally = Tally::new();
        let at = |ms| t0 + Duration::from_millis(ms);
        tally.note(window, at(900), at(999), true); // warm-up
        tally.note(window, at(990), at(1000), true); // counts: started before
        tally.note(window, at(1500), at(1510), false); // an error inside
        tally.note(window, at(1990), at(2000), true); // ends at the close
        tally.note(window, at(1995), at(2100), false); // error after
        assert_eq!(tally.histogram.len(), 1);
        assert_eq!(tally.histogram.max() / 1_000_000, 10);
        assert_eq!(tally.errors, 1);
    }
}

//! `interop_client`: the gRPC interop test client (grpc/grpc
//! `doc/interop-test-descriptions.md`) on mio-grpc, calling
//! `grpc.testing.TestService` through the client generated in
//! `examples/gen/grpc.testing.rs`. It owns the client side of the interop
//! cases that need no TLS and no cloud credentials; any interop server
//! (grpc-go's, grpc-java's, C++'s, or `interop_server`) can be the peer.
//!
//! `cargo run --release --example interop_client -- --server_host 127.0.0.1 --server_port P --test_case NAME|all|list`
//!
//! Flags take `--flag value` or `--flag=value`, with gRPC's interop flag
//! names: `--server_host` (default `127.0.0.1`), `--server_port`
//! (required), `--test_case` (default `all`; a name, or names separated
//! by commas), `--skip` (names to leave out), `--use_tls` (only `false`:
//! there is no TLS here), `--use_test_ca` and `--server_host_override`
//! (accepted and ignored), `--soak_iterations` (default 10),
//! `--channel_soak_iterations` (default: `--soak_iterations`),
//! `--soak_max_failures` (default 0),
//! `--soak_per_iteration_max_acceptable_latency_ms` (default 1000) and
//! `--soak_overall_timeout_seconds` (default 10 + 1 per iteration).
//!
//! Prints `PASS name` or `FAIL name: why` per case, then
//! `N passed, M failed`; exits 0 only if every case passed (2 on a usage
//! error). Every case runs on its own thread under a time limit, so a hung
//! call becomes a FAIL line, not a hung client.
//!
//! Where our client API falls short of a case, the case does the closest
//! honest thing (each case's doc says which):
//! - compression is per call, not per message: the second message of
//!   `client_compressed_streaming` goes compressed too (and says so with
//!   `expect_compressed: true`);
//! - the compressed flag of received messages is not visible, so the
//!   `server_compressed_*` cases count the bytes that come down through a
//!   local TCP proxy instead;
//! - a blocking unary call does not return metadata, so `custom_metadata`
//!   makes its UnaryCall through the streaming API (the same bytes on the
//!   wire: one request, half-close, one response).

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio_grpc::client::{CallOptions, Channel, ChannelOptions, StreamingCall};
use mio_grpc::grpc::{Code, Encoding, Metadata, Status};

#[path = "common/harness.rs"]
mod harness;
use harness::proxy;

/// `grpc.testing`: messages, `TestServiceClient`,
/// `UnimplementedServiceClient` (generated; see `examples/gen/README.md`).
#[path = "gen/grpc.testing.rs"]
#[allow(dead_code)]
mod grpc_testing;

use grpc_testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse, TestServiceClient, UnimplementedServiceClient,
};

/// The path of `UnaryCall`, for `custom_metadata`'s streaming-API call.
const UNARY_CALL: &str = "/grpc.testing.TestService/UnaryCall";

/// The command line.
#[derive(Clone, Debug)]
struct Config {
    /// `--server_host`.
    host: String,
    /// `--server_port`.
    port: u16,
    /// `--soak_iterations`.
    soak_iterations: u32,
    /// `--channel_soak_iterations`.
    channel_soak_iterations: u32,
    /// `--soak_max_failures`.
    soak_max_failures: u32,
    /// `--soak_per_iteration_max_acceptable_latency_ms`.
    soak_max_latency: Duration,
    /// `--soak_overall_timeout_seconds`.
    soak_overall_timeout: Duration,
}

impl Config {
    /// The channel target for `host:port` (IPv6 literals bracketed).
    fn target(&self, port: u16) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }
}

/// What a case gets: the command line and a channel shared by the cases.
struct Ctx {
    config: Config,
    channel: Channel,
}

impl Ctx {
    /// A `TestService` client on the shared channel.
    fn client(&self) -> TestServiceClient {
        TestServiceClient::new(self.channel.clone())
    }
}

/// A case's outcome: `Err` says why it failed.
type CaseResult = Result<(), String>;

/// A case.
type CaseFn = fn(&Ctx) -> CaseResult;

/// The cases, in the doc's order, with each one's time limit in seconds
/// (0: the soak limit, from the soak flags).
const CASES: &[(&str, CaseFn, u64)] = &[
    ("empty_unary", empty_unary, 30),
    ("large_unary", large_unary, 30),
    ("client_compressed_unary", client_compressed_unary, 30),
    ("server_compressed_unary", server_compressed_unary, 30),
    ("client_streaming", client_streaming, 30),
    (
        "client_compressed_streaming",
        client_compressed_streaming,
        30,
    ),
    ("server_streaming", server_streaming, 30),
    (
        "server_compressed_streaming",
        server_compressed_streaming,
        30,
    ),
    ("ping_pong", ping_pong, 30),
    ("empty_stream", empty_stream, 30),
    ("custom_metadata", custom_metadata, 30),
    ("status_code_and_message", status_code_and_message, 30),
    ("special_status_message", special_status_message, 30),
    ("unimplemented_method", unimplemented_method, 30),
    ("unimplemented_service", unimplemented_service, 30),
    ("cancel_after_begin", cancel_after_begin, 30),
    (
        "cancel_after_first_response",
        cancel_after_first_response,
        30,
    ),
    ("timeout_on_sleeping_server", timeout_on_sleeping_server, 30),
    ("rpc_soak", rpc_soak, 0),
    ("channel_soak", channel_soak, 0),
];

fn main() {
    let (config, test_case, skip) = parse_args();
    if test_case == "list" {
        for (name, _, _) in CASES {
            println!("{name}");
        }
        return;
    }
    let wanted: Vec<&str> = test_case.split(',').collect();
    for name in wanted
        .iter()
        .copied()
        .chain(skip.iter().map(String::as_str))
    {
        if name != "all" && !CASES.iter().any(|(case, _, _)| *case == name) {
            usage(&format!(
                "no test case named {name:?} (try --test_case list)"
            ));
        }
    }
    let selected: Vec<_> = CASES
        .iter()
        .filter(|(name, _, _)| wanted.contains(&"all") || wanted.contains(name))
        .filter(|(name, _, _)| !skip.iter().any(|s| s == name))
        .collect();
    let channel = Channel::new(&config.target(config.port), ChannelOptions::default())
        .unwrap_or_else(|e| {
            eprintln!("interop_client: cannot create the channel: {e}");
            std::process::exit(2);
        });
    let soak_limit = config.soak_overall_timeout.as_secs() + 15;
    let ctx = Arc::new(Ctx { config, channel });
    let (mut passed, mut failed) = (0usize, 0usize);
    for &&(name, case, limit) in &selected {
        let limit = if limit == 0 { soak_limit } else { limit };
        let started = Instant::now();
        let result = harness::run_case(name, case, limit, &ctx);
        match result {
            Ok(()) => {
                passed += 1;
                println!("PASS {name}");
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
        let _ = std::io::stdout().flush();
        eprintln!("  ({name}: {:.3} s)", started.elapsed().as_secs_f64());
    }
    println!("{passed} passed, {failed} failed");
    let _ = std::io::stdout().flush();
    // Cases that timed out leave threads behind: exit without joining them.
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// Parses the command line: the config and the test case.
fn parse_args() -> (Config, String, Vec<String>) {
    let mut host = "127.0.0.1".to_string();
    let mut port = None;
    let mut test_case = "all".to_string();
    let mut skip = Vec::new();
    let mut soak_iterations = 10u32;
    let mut channel_soak_iterations = None;
    let mut soak_max_failures = 0u32;
    let mut soak_latency_ms = 1000u64;
    let mut soak_overall = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            usage("");
        }
        let Some(flag) = arg.strip_prefix("--") else {
            usage(&format!("unexpected argument {arg:?}"));
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => {
                let value = args
                    .next()
                    .unwrap_or_else(|| usage(&format!("--{flag} needs a value")));
                (flag.to_string(), value)
            }
        };
        match name.as_str() {
            "server_host" => host = value,
            "server_port" => port = Some(number::<u16>(&name, &value)),
            "test_case" => test_case = value,
            "skip" => skip = value.split(',').map(str::to_string).collect(),
            "use_tls" => match value.as_str() {
                "false" | "0" => {}
                _ => usage("--use_tls: TLS is not supported (only --use_tls=false)"),
            },
            "use_test_ca" | "server_host_override" => {}
            "soak_iterations" => soak_iterations = number(&name, &value),
            "channel_soak_iterations" => channel_soak_iterations = Some(number(&name, &value)),
            "soak_max_failures" => soak_max_failures = number(&name, &value),
            "soak_per_iteration_max_acceptable_latency_ms" => {
                soak_latency_ms = number(&name, &value);
            }
            "soak_overall_timeout_seconds" => soak_overall = Some(number::<u64>(&name, &value)),
            _ => usage(&format!("unknown flag --{name}")),
        }
    }
    if test_case == "list" {
        port = port.or(Some(0));
    }
    let Some(port) = port else {
        usage("--server_port is required");
    };
    let channel_soak_iterations = channel_soak_iterations.unwrap_or(soak_iterations);
    let overall = soak_overall.unwrap_or_else(|| {
        10 + u64::from(soak_iterations.max(channel_soak_iterations))
            * soak_latency_ms.div_ceil(1000)
    });
    let config = Config {
        host,
        port,
        soak_iterations,
        channel_soak_iterations,
        soak_max_failures,
        soak_max_latency: Duration::from_millis(soak_latency_ms),
        soak_overall_timeout: Duration::from_secs(overall),
    };
    (config, test_case, skip)
}

/// Parses a flag's number or exits with a usage error.
fn number<T: std::str::FromStr>(name: &str, value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| usage(&format!("--{name}: bad number {value:?}")))
}

/// Prints `why` and the usage line, and exits with 2.
fn usage(why: &str) -> ! {
    if !why.is_empty() {
        eprintln!("interop_client: {why}");
    }
    eprintln!(
        "usage: interop_client --server_host HOST --server_port PORT --test_case NAME[,NAME..]|all|list \
         [--skip NAME[,NAME..]] [--use_tls=false] [--soak_iterations N] [--channel_soak_iterations N] \
         [--soak_max_failures N] [--soak_per_iteration_max_acceptable_latency_ms MS] \
         [--soak_overall_timeout_seconds S]"
    );
    std::process::exit(2);
}

// --- helpers -------------------------------------------------------------

/// Fails the case with the message unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Per-call options: a 20 s deadline, so no call hangs a case.
fn opts() -> CallOptions {
    CallOptions::default().timeout(Duration::from_secs(20))
}

/// A status as `CODE: "message"`.
fn st(status: &Status) -> String {
    format!("{:?}: {:?}", status.code(), status.message())
}

/// A payload of `len` zero bytes (COMPRESSABLE).
fn zeros(len: usize) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: vec![0; len],
    })
}

/// A `BoolValue` holding `value`.
fn flag(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

/// Checks that `payload` is `len` zero bytes of type COMPRESSABLE.
fn check_payload(payload: Option<&Payload>, len: usize, what: &str) -> CaseResult {
    let Some(payload) = payload else {
        return Err(format!("{what}: no payload, expected {len} bytes"));
    };
    ensure!(
        payload.r#type == 0,
        "{what}: payload type {}, expected COMPRESSABLE (0)",
        payload.r#type
    );
    ensure!(
        payload.body.len() == len,
        "{what}: payload body is {} bytes, expected {len}",
        payload.body.len()
    );
    ensure!(
        payload.body.iter().all(|&b| b == 0),
        "{what}: payload body is not all zeros"
    );
    Ok(())
}

/// The doc's large unary request: 271828 bytes up, 314159 wanted back.
fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_size: 314_159,
        payload: zeros(271_828),
        ..SimpleRequest::default()
    }
}

/// Expects `result` to be an error with `code` (and `message`, if given).
fn expect_status<T>(
    result: Result<T, Status>,
    code: Code,
    message: Option<&str>,
    what: &str,
) -> CaseResult {
    match result {
        Ok(_) => Err(format!("{what}: succeeded, expected {code:?}")),
        Err(status) => check_status(&status, code, message, what),
    }
}

/// Checks that `status` has `code` (and `message`, if given).
fn check_status(status: &Status, code: Code, message: Option<&str>, what: &str) -> CaseResult {
    ensure!(
        status.code() == code,
        "{what}: got {}, expected {code:?}",
        st(status)
    );
    if let Some(message) = message {
        ensure!(
            status.message() == message,
            "{what}: status message {:?}, expected {message:?}",
            status.message()
        );
    }
    Ok(())
}

/// Opens a streaming call, or fails the case.
fn open(result: Result<StreamingCall, Status>, what: &str) -> Result<StreamingCall, String> {
    result.map_err(|s| format!("{what}: starting the call: {}", st(&s)))
}

/// Sends one message, or fails the case.
fn send<M: prost::Message>(call: &StreamingCall, message: &M, what: &str) -> CaseResult {
    call.send_msg(message)
        .map_err(|s| format!("{what}: send: {}", st(&s)))
}

/// Half-closes, or fails the case.
fn close_send(call: &StreamingCall, what: &str) -> CaseResult {
    call.close_send()
        .map_err(|s| format!("{what}: close_send: {}", st(&s)))
}

/// The next response, which must be there.
fn recv<M: prost::Message + Default>(call: &StreamingCall, what: &str) -> Result<M, String> {
    match call.recv_msg::<M>() {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(format!("{what}: the stream ended, expected a response")),
        Err(s) => Err(format!("{what}: {}", st(&s))),
    }
}

/// Expects the end of the responses and an OK status; the trailers.
fn finish_ok(call: &StreamingCall, what: &str) -> Result<Metadata, String> {
    match call.recv() {
        Ok(None) => {}
        Ok(Some(m)) => {
            return Err(format!(
                "{what}: an extra response ({} bytes), expected the end",
                m.len()
            ))
        }
        Err(s) => return Err(format!("{what}: {}", st(&s))),
    }
    let (status, trailers) = call.finish();
    ensure!(
        status.code() == Code::Ok,
        "{what}: finished with {}",
        st(&status)
    );
    Ok(trailers)
}

/// Reads every response of a server stream and checks their payload
/// sizes, in order; then the OK end.
fn check_stream(call: &StreamingCall, sizes: &[usize], what: &str) -> CaseResult {
    for (i, &size) in sizes.iter().enumerate() {
        let resp: StreamingOutputCallResponse = recv(call, &format!("{what}: response {i}"))?;
        check_payload(
            resp.payload.as_ref(),
            size,
            &format!("{what}: response {i}"),
        )?;
    }
    finish_ok(call, &format!("{what}: after {} responses", sizes.len()))?;
    Ok(())
}

/// A streaming request asking for responses of `sizes` (each compressed or
/// not, if given), carrying `payload` bytes.
fn output_request(
    sizes: &[(usize, Option<bool>)],
    payload: Option<usize>,
) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&(size, compressed)| ResponseParameters {
                size: size as i32,
                compressed: compressed.map(|value| BoolValue { value }),
                ..ResponseParameters::default()
            })
            .collect(),
        payload: payload.and_then(zeros),
        ..StreamingOutputCallRequest::default()
    }
}

/// A fresh channel to a [`Proxy`] on `port`.
fn proxy_channel(port: u16) -> Result<Channel, String> {
    Channel::new(&format!("127.0.0.1:{port}"), ChannelOptions::default())
        .map_err(|e| format!("channel: {e}"))
}

// --- cases ---------------------------------------------------------------

/// `empty_unary`: EmptyCall with an empty message succeeds.
fn empty_unary(ctx: &Ctx) -> CaseResult {
    ctx.client()
        .empty_call(&Empty {}, opts())
        .map_err(|s| format!("EmptyCall: {}", st(&s)))?;
    Ok(())
}

/// `large_unary`: 271828 bytes up, 314159 bytes of zeros back.
fn large_unary(ctx: &Ctx) -> CaseResult {
    let resp = ctx
        .client()
        .unary_call(&large_request(), opts())
        .map_err(|s| format!("UnaryCall: {}", st(&s)))?;
    check_payload(resp.payload.as_ref(), 314_159, "UnaryCall response")
}

/// `client_compressed_unary`: the uncompressed probe marked
/// `expect_compressed` fails INVALID_ARGUMENT; a gzip request marked so
/// succeeds, and so does an uncompressed one not marked.
fn client_compressed_unary(ctx: &Ctx) -> CaseResult {
    let client = ctx.client();
    let probe = SimpleRequest {
        expect_compressed: flag(true),
        ..large_request()
    };
    expect_status(
        client.unary_call(&probe, opts()),
        Code::InvalidArgument,
        None,
        "probe (uncompressed request with expect_compressed=true)",
    )?;
    let resp = client
        .unary_call(&probe, opts().compression(Encoding::Gzip))
        .map_err(|s| format!("gzip request with expect_compressed=true: {}", st(&s)))?;
    check_payload(resp.payload.as_ref(), 314_159, "compressed call's response")?;
    let plain = SimpleRequest {
        expect_compressed: flag(false),
        ..large_request()
    };
    let resp = client.unary_call(&plain, opts()).map_err(|s| {
        format!(
            "uncompressed request with expect_compressed=false: {}",
            st(&s)
        )
    })?;
    check_payload(
        resp.payload.as_ref(),
        314_159,
        "uncompressed call's response",
    )
}

/// `server_compressed_unary`: responses asked compressed and not. Our API
/// does not show the compressed flag, so each call goes through a proxy
/// counting the bytes that come down: 314159 zeros compressed are a few
/// hundred bytes, uncompressed over 314159.
fn server_compressed_unary(ctx: &Ctx) -> CaseResult {
    for compressed in [true, false] {
        let what = format!("response_compressed={compressed}");
        let p = proxy(&ctx.config.host, ctx.config.port)?;
        let channel = proxy_channel(p.port)?;
        let request = SimpleRequest {
            response_compressed: flag(compressed),
            ..large_request()
        };
        let result = TestServiceClient::new(channel.clone()).unary_call(&request, opts());
        let down = p.down.load(Ordering::SeqCst);
        channel.close();
        let resp = result.map_err(|s| format!("{what}: {}", st(&s)))?;
        check_payload(resp.payload.as_ref(), 314_159, &what)?;
        if compressed {
            ensure!(
                down < 100_000,
                "{what}: {down} bytes came down for 314159 bytes of zeros: \
                 the response was not compressed"
            );
        } else {
            ensure!(
                down >= 314_159,
                "{what}: only {down} bytes came down for 314159 bytes of zeros: \
                 the response was compressed"
            );
        }
    }
    Ok(())
}

/// `client_streaming`: 27182 + 8 + 1828 + 45904 bytes up; the server
/// counts 74922.
fn client_streaming(ctx: &Ctx) -> CaseResult {
    let call = open(
        ctx.client().streaming_input_call(opts()),
        "StreamingInputCall",
    )?;
    for size in [27_182, 8, 1_828, 45_904] {
        let request = StreamingInputCallRequest {
            payload: zeros(size),
            ..StreamingInputCallRequest::default()
        };
        send(&call, &request, &format!("request of {size} bytes"))?;
    }
    close_send(&call, "StreamingInputCall")?;
    let resp: StreamingInputCallResponse = recv(&call, "StreamingInputCall")?;
    ensure!(
        resp.aggregated_payload_size == 74_922,
        "aggregated_payload_size {}, expected 74922",
        resp.aggregated_payload_size
    );
    finish_ok(&call, "StreamingInputCall")?;
    Ok(())
}

/// `client_compressed_streaming`: the uncompressed probe marked
/// `expect_compressed` fails INVALID_ARGUMENT; then a gzip stream of 27182
/// and 45904 bytes totals 73086.
///
/// Deviation: compression is per call in our API, so the 45904-byte
/// message is compressed too, and is sent with `expect_compressed: true`
/// (the doc sends it uncompressed with `false`; claiming `false` for a
/// compressed message would make a strict server fail the call).
fn client_compressed_streaming(ctx: &Ctx) -> CaseResult {
    let client = ctx.client();
    let probe_call = open(client.streaming_input_call(opts()), "probe")?;
    let probe = StreamingInputCallRequest {
        payload: zeros(27_182),
        expect_compressed: flag(true),
    };
    // The server may fail the call before the half-close: only the final
    // status counts.
    let _ = probe_call.send_msg(&probe);
    let _ = probe_call.close_send();
    let _ = probe_call.recv();
    let (status, _) = probe_call.finish();
    check_status(
        &status,
        Code::InvalidArgument,
        None,
        "probe (uncompressed message with expect_compressed=true)",
    )?;

    let call = open(
        client.streaming_input_call(opts().compression(Encoding::Gzip)),
        "compressed StreamingInputCall",
    )?;
    for size in [27_182, 45_904] {
        let request = StreamingInputCallRequest {
            payload: zeros(size),
            expect_compressed: flag(true),
        };
        send(
            &call,
            &request,
            &format!("compressed message of {size} bytes"),
        )?;
    }
    close_send(&call, "compressed StreamingInputCall")?;
    let resp: StreamingInputCallResponse = recv(&call, "compressed StreamingInputCall")?;
    ensure!(
        resp.aggregated_payload_size == 73_086,
        "aggregated_payload_size {}, expected 73086",
        resp.aggregated_payload_size
    );
    finish_ok(&call, "compressed StreamingInputCall")?;
    Ok(())
}

/// `server_streaming`: four responses of 31415, 9, 2653 and 58979 bytes.
fn server_streaming(ctx: &Ctx) -> CaseResult {
    let call = open(
        ctx.client().streaming_output_call(opts()),
        "StreamingOutputCall",
    )?;
    let sizes = [31_415, 9, 2_653, 58_979];
    let request = output_request(&sizes.map(|s| (s, None)), None);
    send(&call, &request, "StreamingOutputCall")?;
    close_send(&call, "StreamingOutputCall")?;
    check_stream(&call, &sizes, "StreamingOutputCall")
}

/// `server_compressed_streaming`: 31415 bytes compressed, then 92653 not.
/// Through a byte-counting proxy (the compressed flag is not visible):
/// what comes down must be at least 92653 bytes (the second went
/// uncompressed) and under 92653 + 31415/2 (the first was compressed).
fn server_compressed_streaming(ctx: &Ctx) -> CaseResult {
    let p = proxy(&ctx.config.host, ctx.config.port)?;
    let channel = proxy_channel(p.port)?;
    let client = TestServiceClient::new(channel.clone());
    let result = (|| {
        let call = open(client.streaming_output_call(opts()), "StreamingOutputCall")?;
        let request = output_request(&[(31_415, Some(true)), (92_653, Some(false))], None);
        send(&call, &request, "StreamingOutputCall")?;
        close_send(&call, "StreamingOutputCall")?;
        check_stream(&call, &[31_415, 92_653], "StreamingOutputCall")
    })();
    let down = p.down.load(Ordering::SeqCst);
    channel.close();
    result?;
    ensure!(
        down >= 92_653,
        "only {down} bytes came down: the 92653-byte response (compressed=false) was compressed"
    );
    ensure!(
        down < 92_653 + 31_415 / 2,
        "{down} bytes came down: the 31415-byte response (compressed=true) was not compressed"
    );
    Ok(())
}

/// `ping_pong`: four request/response pairs on FullDuplexCall, each
/// response read before the next request goes.
fn ping_pong(ctx: &Ctx) -> CaseResult {
    let call = open(ctx.client().full_duplex_call(opts()), "FullDuplexCall")?;
    for (i, (size, payload)) in [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)]
        .into_iter()
        .enumerate()
    {
        let what = format!("ping {i} ({payload} bytes, asking {size})");
        send(
            &call,
            &output_request(&[(size, None)], Some(payload)),
            &what,
        )?;
        let resp: StreamingOutputCallResponse = recv(&call, &what)?;
        check_payload(resp.payload.as_ref(), size, &what)?;
    }
    close_send(&call, "FullDuplexCall")?;
    finish_ok(&call, "FullDuplexCall after 4 pongs")?;
    Ok(())
}

/// `empty_stream`: FullDuplexCall half-closed at once: no responses, OK.
fn empty_stream(ctx: &Ctx) -> CaseResult {
    let call = open(ctx.client().full_duplex_call(opts()), "FullDuplexCall")?;
    close_send(&call, "FullDuplexCall")?;
    finish_ok(&call, "FullDuplexCall")?;
    Ok(())
}

/// The ASCII metadata key `custom_metadata` sends and expects back in the
/// response headers.
const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Its value.
const ECHO_INITIAL_VALUE: &str = "test_initial_metadata_value";
/// The binary key expected back in the trailers.
const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";
/// Its value.
const ECHO_TRAILING_VALUE: &[u8] = &[0xab, 0xab, 0xab];

/// Checks the echoed initial and trailing metadata of one call.
fn check_echo(headers: &Metadata, trailers: &Metadata, what: &str) -> CaseResult {
    ensure!(
        headers.get(ECHO_INITIAL) == Some(ECHO_INITIAL_VALUE),
        "{what}: initial metadata {ECHO_INITIAL} is {:?}, expected {ECHO_INITIAL_VALUE:?}",
        headers.get(ECHO_INITIAL)
    );
    ensure!(
        trailers.get_bin(ECHO_TRAILING).map(|v| &v[..]) == Some(ECHO_TRAILING_VALUE),
        "{what}: trailing metadata {ECHO_TRAILING} is {:?}, expected 0xababab",
        trailers.get_bin(ECHO_TRAILING)
    );
    Ok(())
}

/// `custom_metadata`: the two keys are echoed, the ASCII one in the
/// response headers and the binary one in the trailers, on UnaryCall and
/// on FullDuplexCall.
///
/// The UnaryCall goes through the streaming API (one request, half-close,
/// one response: the same on the wire), since a blocking unary call does
/// not return metadata.
fn custom_metadata(ctx: &Ctx) -> CaseResult {
    let mut md = Metadata::new();
    md.insert(ECHO_INITIAL, ECHO_INITIAL_VALUE)
        .map_err(|e| format!("metadata: {e}"))?;
    md.insert_bin(ECHO_TRAILING, ECHO_TRAILING_VALUE)
        .map_err(|e| format!("metadata: {e}"))?;

    let what = "UnaryCall";
    let call = open(
        ctx.channel
            .streaming_raw(UNARY_CALL, opts().metadata(md.clone())),
        what,
    )?;
    send(&call, &large_request(), what)?;
    close_send(&call, what)?;
    let headers = call
        .headers()
        .map_err(|s| format!("{what}: headers: {}", st(&s)))?;
    let resp: SimpleResponse = recv(&call, what)?;
    check_payload(resp.payload.as_ref(), 314_159, what)?;
    let trailers = finish_ok(&call, what)?;
    check_echo(&headers, &trailers, what)?;

    let what = "FullDuplexCall";
    let call = open(ctx.client().full_duplex_call(opts().metadata(md)), what)?;
    send(
        &call,
        &output_request(&[(314_159, None)], Some(271_828)),
        what,
    )?;
    close_send(&call, what)?;
    let headers = call
        .headers()
        .map_err(|s| format!("{what}: headers: {}", st(&s)))?;
    let resp: StreamingOutputCallResponse = recv(&call, what)?;
    check_payload(resp.payload.as_ref(), 314_159, what)?;
    let trailers = finish_ok(&call, what)?;
    check_echo(&headers, &trailers, what)
}

/// Asks for status `code`/`message` on UnaryCall and, with `duplex`, on
/// FullDuplexCall, and checks both come back as sent.
fn echo_status(ctx: &Ctx, message: &str, duplex: bool) -> CaseResult {
    let status = Some(EchoStatus {
        code: 2,
        message: message.to_string(),
    });
    let request = SimpleRequest {
        response_status: status.clone(),
        ..SimpleRequest::default()
    };
    expect_status(
        ctx.client().unary_call(&request, opts()),
        Code::Unknown,
        Some(message),
        "UnaryCall",
    )?;
    if !duplex {
        return Ok(());
    }
    let call = open(ctx.client().full_duplex_call(opts()), "FullDuplexCall")?;
    let request = StreamingOutputCallRequest {
        response_status: status,
        ..StreamingOutputCallRequest::default()
    };
    // The server may end the call before the half-close.
    let _ = call.send_msg(&request);
    let _ = call.close_send();
    while let Ok(Some(_)) = call.recv() {}
    let (status, _) = call.finish();
    check_status(&status, Code::Unknown, Some(message), "FullDuplexCall")
}

/// `status_code_and_message`: code 2 and "test status message" come back
/// on UnaryCall and FullDuplexCall.
fn status_code_and_message(ctx: &Ctx) -> CaseResult {
    echo_status(ctx, "test status message", true)
}

/// `special_status_message`: code 2 with whitespace, BMP and non-BMP
/// characters in the message comes back intact on UnaryCall.
fn special_status_message(ctx: &Ctx) -> CaseResult {
    echo_status(
        ctx,
        "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n",
        false,
    )
}

/// `unimplemented_method`: TestService/UnimplementedCall is UNIMPLEMENTED.
fn unimplemented_method(ctx: &Ctx) -> CaseResult {
    expect_status(
        ctx.client().unimplemented_call(&Empty {}, opts()),
        Code::Unimplemented,
        None,
        "TestService/UnimplementedCall",
    )
}

/// `unimplemented_service`: UnimplementedService/UnimplementedCall is
/// UNIMPLEMENTED.
fn unimplemented_service(ctx: &Ctx) -> CaseResult {
    expect_status(
        UnimplementedServiceClient::new(ctx.channel.clone()).unimplemented_call(&Empty {}, opts()),
        Code::Unimplemented,
        None,
        "UnimplementedService/UnimplementedCall",
    )
}

/// `cancel_after_begin`: a StreamingInputCall cancelled before any message
/// ends CANCELLED.
fn cancel_after_begin(ctx: &Ctx) -> CaseResult {
    let call = open(
        ctx.client().streaming_input_call(opts()),
        "StreamingInputCall",
    )?;
    call.cancel();
    let (status, _) = call.finish();
    check_status(
        &status,
        Code::Cancelled,
        None,
        "cancelled StreamingInputCall",
    )
}

/// `cancel_after_first_response`: a FullDuplexCall cancelled after its
/// first response ends CANCELLED.
fn cancel_after_first_response(ctx: &Ctx) -> CaseResult {
    let call = open(ctx.client().full_duplex_call(opts()), "FullDuplexCall")?;
    send(
        &call,
        &output_request(&[(31_415, None)], Some(27_182)),
        "FullDuplexCall",
    )?;
    let resp: StreamingOutputCallResponse = recv(&call, "first response")?;
    check_payload(resp.payload.as_ref(), 31_415, "first response")?;
    call.cancel();
    let (status, _) = call.finish();
    check_status(&status, Code::Cancelled, None, "cancelled FullDuplexCall")
}

/// `timeout_on_sleeping_server`: a FullDuplexCall with a 1 ms deadline
/// that the server never ends (no response asked, no half-close) ends
/// DEADLINE_EXCEEDED.
fn timeout_on_sleeping_server(ctx: &Ctx) -> CaseResult {
    let options = CallOptions::default().timeout(Duration::from_millis(1));
    let call = match ctx.client().full_duplex_call(options) {
        Ok(call) => call,
        // The deadline may pass before the call starts.
        Err(status) => {
            return check_status(&status, Code::DeadlineExceeded, None, "starting the call")
        }
    };
    let request = StreamingOutputCallRequest {
        payload: zeros(27_182),
        ..StreamingOutputCallRequest::default()
    };
    // Sending may already fail with the deadline: only the status counts.
    let _ = call.send_msg(&request);
    let (status, _) = call.finish();
    check_status(&status, Code::DeadlineExceeded, None, "FullDuplexCall")
}

/// One soak iteration: a large_unary on `client`, failing when it fails or
/// takes longer than the acceptable latency.
fn soak_iteration(client: &TestServiceClient, config: &Config) -> Result<Duration, String> {
    let started = Instant::now();
    let resp = client
        .unary_call(&large_request(), opts())
        .map_err(|s| st(&s))?;
    let took = started.elapsed();
    check_payload(resp.payload.as_ref(), 314_159, "response")?;
    ensure!(
        took <= config.soak_max_latency,
        "took {} ms, over the acceptable {} ms",
        took.as_millis(),
        config.soak_max_latency.as_millis()
    );
    Ok(took)
}

/// Runs `iterations` soak iterations with `iteration`, within the overall
/// timeout; fails past `--soak_max_failures` failures.
fn soak(
    config: &Config,
    iterations: u32,
    mut iteration: impl FnMut() -> Result<Duration, String>,
) -> CaseResult {
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut worst = Duration::ZERO;
    for i in 0..iterations {
        if started.elapsed() > config.soak_overall_timeout {
            return Err(format!(
                "only {i} of {iterations} iterations ran within the overall timeout of {} s",
                config.soak_overall_timeout.as_secs()
            ));
        }
        match iteration() {
            Ok(took) => worst = worst.max(took),
            Err(why) => failures.push(format!("iteration {i}: {why}")),
        }
    }
    ensure!(
        failures.len() <= config.soak_max_failures as usize,
        "{} of {iterations} iterations failed (at most {} allowed): {}",
        failures.len(),
        config.soak_max_failures,
        failures.join("; ")
    );
    eprintln!(
        "  {iterations} iterations, {} failed, slowest {} ms",
        failures.len(),
        worst.as_millis()
    );
    Ok(())
}

/// `rpc_soak`: `--soak_iterations` large_unary calls on the one channel.
fn rpc_soak(ctx: &Ctx) -> CaseResult {
    let client = ctx.client();
    soak(&ctx.config, ctx.config.soak_iterations, || {
        soak_iteration(&client, &ctx.config)
    })
}

/// `channel_soak`: `--channel_soak_iterations` large_unary calls, each on
/// a fresh channel (connecting counts in the latency), closed after.
fn channel_soak(ctx: &Ctx) -> CaseResult {
    soak(&ctx.config, ctx.config.channel_soak_iterations, || {
        let started = Instant::now();
        let channel = Channel::new(
            &ctx.config.target(ctx.config.port),
            ChannelOptions::default(),
        )
        .map_err(|e| format!("channel: {e}"))?;
        let result = soak_iteration(&TestServiceClient::new(channel.clone()), &ctx.config);
        channel.close();
        result?;
        let took = started.elapsed();
        ensure!(
            took <= ctx.config.soak_max_latency,
            "took {} ms with the connection, over the acceptable {} ms",
            took.as_millis(),
            ctx.config.soak_max_latency.as_millis()
        );
        Ok(took)
    })
}

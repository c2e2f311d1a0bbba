//! `grpc_test_client`: our gRPC client against a real gRPC C-core server
//! (`tests/grpcio/reference_server.py`, grpcio's server implementing
//! `tests/grpcio/protos/echo.proto`'s `miotest.Echo` and
//! `grpc.health.v1.Health`).
//!
//! `cargo run --release --example grpc_test_client -- --port P [--gzip-port G] [--case NAME|all|list]`
//!
//! `--port` is a reference server started as it is by default; `--gzip-port`
//! (optional) one started with `--gzip` (it compresses its responses): the
//! cases that need it are skipped without it. Prints `PASS name`,
//! `FAIL name: why` or `SKIP name: why` per case and then
//! `N passed, M failed` alone on a line; exits 0 only if nothing failed.
//! Every case runs on its own thread under a time limit, so nothing hangs.
//! `bash tests/grpcio/run.sh --client` starts the servers and runs this.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio_grpc::client::{CallOptions, Channel, ChannelOptions, ConnectivityState, StreamingCall};
use mio_grpc::grpc::{Code, Encoding, Metadata, Status};
use prost::Message;

#[path = "common/echo.rs"]
mod echo;
#[path = "common/harness.rs"]
mod harness;
use echo::{EchoRequest, EchoResponse};
use harness::proxy;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse` (status: 1 = SERVING).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

const UNARY: &str = "/miotest.Echo/Unary";
const CLIENT_STREAM: &str = "/miotest.Echo/ClientStream";
const SERVER_STREAM: &str = "/miotest.Echo/ServerStream";
const BIDI: &str = "/miotest.Echo/Bidi";
const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";

/// What a case gets: the servers' ports and a shared channel to the default one.
struct Ctx {
    port: u16,
    gzip_port: Option<u16>,
    channel: Channel,
}

enum Outcome {
    Pass,
    Skip(String),
}

type CaseResult = Result<Outcome, String>;
type CaseFn = fn(&Ctx) -> CaseResult;

/// The cases, in order, with each one's time limit.
const CASES: &[(&str, CaseFn, u64)] = &[
    ("unary_echo", unary_echo, 20),
    ("empty_message", empty_message, 20),
    ("sequential_unary_100", sequential_unary_100, 30),
    ("concurrent_unary_1000", concurrent_unary_1000, 60),
    ("unary_handle_polled_twice", unary_handle_polled_twice, 20),
    ("large_unary_2mib", large_unary_2mib, 30),
    ("client_streaming", client_streaming, 30),
    ("client_streaming_empty", client_streaming_empty, 20),
    ("server_streaming", server_streaming, 30),
    (
        "server_streaming_error_after_messages",
        server_streaming_error_after_messages,
        20,
    ),
    ("bidi_ping_pong", bidi_ping_pong, 30),
    ("metadata_echo", metadata_echo, 20),
    ("metadata_on_error_status", metadata_on_error_status, 20),
    ("status_codes", status_codes, 30),
    ("status_details", status_details, 20),
    ("deadline_exceeded", deadline_exceeded, 20),
    ("deadline_on_stream", deadline_on_stream, 20),
    ("cancel_server_stream", cancel_server_stream, 30),
    ("cancel_unary_handle", cancel_unary_handle, 20),
    ("unimplemented_method", unimplemented_method, 20),
    ("unimplemented_service", unimplemented_service, 20),
    ("gzip_request", gzip_request, 30),
    ("gzip_response", gzip_response, 30),
    ("gzip_bidi_both_ways", gzip_bidi_both_ways, 30),
    ("channel_close", channel_close, 20),
    ("health_check", health_check, 20),
    ("health_watch", health_watch, 20),
];

fn main() {
    let mut port = None;
    let mut gzip_port = None;
    let mut case = "all".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--port" => port = Some(parse_port(&value("--port"))),
            "--gzip-port" => gzip_port = Some(parse_port(&value("--gzip-port"))),
            "--case" => case = value("--case"),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if case == "list" {
        for (name, _, _) in CASES {
            println!("{name}");
        }
        return;
    }
    let Some(port) = port else {
        usage("--port is required");
    };
    let selected: Vec<_> = CASES
        .iter()
        .filter(|(name, _, _)| case == "all" || *name == case)
        .collect();
    if selected.is_empty() {
        usage(&format!("no case named {case:?} (try --case list)"));
    }
    let channel = Channel::new(&format!("127.0.0.1:{port}"), ChannelOptions::default())
        .unwrap_or_else(|e| {
            eprintln!("cannot create the channel: {e}");
            std::process::exit(2);
        });
    let ctx = Arc::new(Ctx {
        port,
        gzip_port,
        channel,
    });
    let (mut passed, mut failed) = (0usize, 0usize);
    for &&(name, case, limit) in &selected {
        let started = Instant::now();
        let result = harness::run_case(name, case, limit, &ctx);
        let took = started.elapsed();
        match result {
            Ok(Outcome::Pass) => {
                passed += 1;
                println!("PASS {name}");
            }
            Ok(Outcome::Skip(why)) => println!("SKIP {name}: {why}"),
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
        eprintln!("  ({name}: {:.3} s)", took.as_secs_f64());
    }
    println!("{passed} passed, {failed} failed");
    let _ = std::io::stdout().flush();
    // Cases that timed out leave threads behind: exit without joining them.
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

fn usage(why: &str) -> ! {
    if !why.is_empty() {
        eprintln!("grpc_test_client: {why}");
    }
    eprintln!("usage: grpc_test_client --port P [--gzip-port G] [--case NAME|all|list]");
    std::process::exit(2);
}

fn parse_port(s: &str) -> u16 {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("bad port {s:?}")))
}

// --- helpers -------------------------------------------------------------

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn opts() -> CallOptions {
    CallOptions::default().timeout(Duration::from_secs(10))
}

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.to_string(),
        ..EchoRequest::default()
    }
}

fn unary(
    ch: &Channel,
    request: &EchoRequest,
    options: CallOptions,
) -> Result<EchoResponse, Status> {
    ch.unary::<EchoRequest, EchoResponse>(UNARY, request, options)
}

fn st(status: &Status) -> String {
    format!("{:?}: {:?}", status.code(), status.message())
}

/// Expects an error status with `code`.
fn expect_code<T>(result: Result<T, Status>, code: Code, what: &str) -> Result<Status, String> {
    match result {
        Ok(_) => Err(format!("{what}: succeeded, expected {code:?}")),
        Err(status) if status.code() == code => Ok(status),
        Err(status) => Err(format!("{what}: got {}, expected {code:?}", st(&status))),
    }
}

/// Bytes that do not compress to nothing but compress well (a short period).
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_mul(7).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// Bytes that do not compress (xorshift).
fn noise(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn recv_resp(call: &StreamingCall, what: &str) -> Result<EchoResponse, String> {
    match call.recv_msg::<EchoResponse>() {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(format!("{what}: the stream ended early")),
        Err(s) => Err(format!("{what}: {}", st(&s))),
    }
}

fn finish_ok(call: &StreamingCall, what: &str) -> Result<Metadata, String> {
    let (status, trailers) = call.finish();
    ensure!(
        status.code() == Code::Ok,
        "{what}: finished with {}",
        st(&status)
    );
    Ok(trailers)
}

/// `Channel::close()`, which must not hang: run on a helper thread, 5 s limit.
fn close_channel(ch: Channel) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        ch.close();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|_| "Channel::close() did not return in 5 s (deadlock?)".to_string())
}

fn channel_to(port: u16) -> Result<Channel, String> {
    Channel::new(&format!("127.0.0.1:{port}"), ChannelOptions::default())
        .map_err(|e| format!("channel: {e}"))
}

// --- cases ---------------------------------------------------------------

fn unary_echo(ctx: &Ctx) -> CaseResult {
    let request = EchoRequest {
        message: "hello, grpcio ✓".into(),
        payload: Bytes::from_static(b"\x00\x01\xfe\xffpayload"),
        ..EchoRequest::default()
    };
    let resp = unary(&ctx.channel, &request, opts()).map_err(|s| st(&s))?;
    ensure!(
        resp.message == request.message,
        "message {:?}",
        resp.message
    );
    ensure!(
        resp.payload == request.payload,
        "payload {:?}",
        resp.payload
    );
    ensure!(
        resp.index == 0 && resp.count == 0,
        "unexpected fields {resp:?}"
    );
    Ok(Outcome::Pass)
}

fn empty_message(ctx: &Ctx) -> CaseResult {
    // An empty EchoRequest is a zero-length message; the reply is empty too.
    let reply = ctx
        .channel
        .unary_raw(UNARY, Bytes::new(), opts())
        .map_err(|s| st(&s))?;
    ensure!(
        reply.is_empty(),
        "expected a zero-length reply, got {} bytes",
        reply.len()
    );
    Ok(Outcome::Pass)
}

fn sequential_unary_100(ctx: &Ctx) -> CaseResult {
    for i in 0..100 {
        let resp = unary(&ctx.channel, &req(&format!("seq {i}")), opts())
            .map_err(|s| format!("call {i}: {}", st(&s)))?;
        ensure!(
            resp.message == format!("seq {i}"),
            "call {i}: message {:?}",
            resp.message
        );
    }
    Ok(Outcome::Pass)
}

fn concurrent_unary_1000(ctx: &Ctx) -> CaseResult {
    const N: usize = 1000;
    let completed = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let options = CallOptions::default().timeout(Duration::from_secs(30));
    let calls: Vec<_> = (0..N)
        .map(|i| {
            let call = ctx.channel.start_unary_raw(
                UNARY,
                req(&format!("concurrent {i}")).encode_to_vec().into(),
                options.clone(),
            );
            let (completed, ok) = (Arc::clone(&completed), Arc::clone(&ok));
            call.on_complete(move |status| {
                if status.code() == Code::Ok {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
                completed.fetch_add(1, Ordering::SeqCst);
            });
            call
        })
        .collect();
    // Wait for every on_complete callback, then take each reply.
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        let done = completed.load(Ordering::SeqCst);
        if done == N {
            break;
        }
        ensure!(
            Instant::now() < until,
            "only {done}/{N} calls ended in 40 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for (i, call) in calls.into_iter().enumerate() {
        let bytes = call.wait().map_err(|s| format!("call {i}: {}", st(&s)))?;
        let resp = EchoResponse::decode(bytes).map_err(|e| format!("call {i}: decode: {e}"))?;
        ensure!(
            resp.message == format!("concurrent {i}"),
            "call {i}: got {:?} (replies mixed up)",
            resp.message
        );
    }
    let (c, o) = (completed.load(Ordering::SeqCst), ok.load(Ordering::SeqCst));
    ensure!(
        c == N && o == N,
        "on_complete ran {c} times, {o} with OK (expected {N})"
    );
    Ok(Outcome::Pass)
}

fn unary_handle_polled_twice(ctx: &Ctx) -> CaseResult {
    // try_get / wait_timeout take &self: polling an ended call again must
    // give the same result, then wait() too.
    let call = ctx
        .channel
        .start_unary_raw(UNARY, req("polled").encode_to_vec().into(), opts());
    let first = call
        .wait_timeout(Duration::from_secs(10))
        .ok_or("not ended in 10 s")?
        .map_err(|s| format!("wait_timeout: {}", st(&s)))?;
    let again = call
        .try_get()
        .ok_or("try_get after the end: None")?
        .map_err(|s| format!("try_get after wait_timeout returned the reply: {}", st(&s)))?;
    ensure!(again == first, "try_get gave a different reply");
    let last = call
        .wait()
        .map_err(|s| format!("wait after try_get: {}", st(&s)))?;
    ensure!(last == first, "wait gave a different reply");
    Ok(Outcome::Pass)
}

fn large_unary_2mib(ctx: &Ctx) -> CaseResult {
    let payload = noise(2 << 20, 42);
    let request = EchoRequest {
        message: "large".into(),
        payload: payload.clone(),
        ..EchoRequest::default()
    };
    let resp = unary(&ctx.channel, &request, opts()).map_err(|s| st(&s))?;
    ensure!(
        resp.payload.len() == payload.len(),
        "payload {} bytes",
        resp.payload.len()
    );
    ensure!(resp.payload == payload, "payload differs");
    // And a 2 MiB response to a small request.
    let resp = unary(
        &ctx.channel,
        &EchoRequest {
            response_size: 2 << 20,
            ..EchoRequest::default()
        },
        opts(),
    )
    .map_err(|s| format!("response_size: {}", st(&s)))?;
    ensure!(
        resp.payload.len() == 2 << 20 && resp.payload.iter().all(|&b| b == 0),
        "response_size: {} bytes",
        resp.payload.len()
    );
    Ok(Outcome::Pass)
}

fn client_streaming(ctx: &Ctx) -> CaseResult {
    let call = ctx
        .channel
        .streaming_raw(CLIENT_STREAM, opts())
        .map_err(|s| st(&s))?;
    let mut expected = String::new();
    for i in 0..20 {
        let m = format!("m{i};");
        expected.push_str(&m);
        call.send_msg(&EchoRequest {
            message: m,
            payload: noise(256 << 10, i + 1),
            ..EchoRequest::default()
        })
        .map_err(|s| format!("send {i}: {}", st(&s)))?;
    }
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    let resp = recv_resp(&call, "response")?;
    ensure!(resp.count == 20, "count {}", resp.count);
    ensure!(
        resp.total_bytes == 20 * (256 << 10),
        "total_bytes {}",
        resp.total_bytes
    );
    ensure!(resp.message == expected, "message {:?}", resp.message);
    match call.recv() {
        Ok(None) => {}
        other => return Err(format!("after the response: {other:?}")),
    }
    finish_ok(&call, "finish")?;
    Ok(Outcome::Pass)
}

fn client_streaming_empty(ctx: &Ctx) -> CaseResult {
    let call = ctx
        .channel
        .streaming_raw(CLIENT_STREAM, opts())
        .map_err(|s| st(&s))?;
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    let resp = recv_resp(&call, "response")?;
    ensure!(resp.count == 0 && resp.total_bytes == 0, "got {resp:?}");
    finish_ok(&call, "finish")?;
    Ok(Outcome::Pass)
}

fn server_streaming(ctx: &Ctx) -> CaseResult {
    let payload = noise(512 << 10, 7);
    let call = ctx
        .channel
        .streaming_raw(SERVER_STREAM, opts())
        .map_err(|s| st(&s))?;
    call.send_msg(&EchoRequest {
        message: "ss".into(),
        payload: payload.clone(),
        response_count: 10,
        ..EchoRequest::default()
    })
    .map_err(|s| format!("send: {}", st(&s)))?;
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    for i in 0..10 {
        let resp = recv_resp(&call, &format!("response {i}"))?;
        ensure!(resp.index == i, "response {i} has index {}", resp.index);
        ensure!(
            resp.payload == payload,
            "response {i}: payload differs ({} bytes)",
            resp.payload.len()
        );
    }
    match call.recv() {
        Ok(None) => {}
        other => return Err(format!("after 10 responses: {other:?}")),
    }
    finish_ok(&call, "finish")?;
    Ok(Outcome::Pass)
}

fn server_streaming_error_after_messages(ctx: &Ctx) -> CaseResult {
    let call = ctx
        .channel
        .streaming_raw(SERVER_STREAM, opts())
        .map_err(|s| st(&s))?;
    call.send_msg(&EchoRequest {
        response_count: 3,
        status_code: Code::Aborted as i32,
        status_message: "after three".into(),
        ..EchoRequest::default()
    })
    .map_err(|s| format!("send: {}", st(&s)))?;
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    for i in 0..3 {
        let resp = recv_resp(&call, &format!("response {i}"))?;
        ensure!(resp.index == i, "response {i} has index {}", resp.index);
    }
    let status = expect_code(call.recv(), Code::Aborted, "recv after 3")?;
    ensure!(
        status.message() == "after three",
        "message {:?}",
        status.message()
    );
    let (status, _) = call.finish();
    ensure!(status.code() == Code::Aborted, "finish: {}", st(&status));
    Ok(Outcome::Pass)
}

fn bidi_ping_pong(ctx: &Ctx) -> CaseResult {
    let call = ctx
        .channel
        .streaming_raw(BIDI, opts())
        .map_err(|s| st(&s))?;
    for i in 0..10 {
        let payload = noise(1000 * (i as usize + 1), i as u64 + 100);
        call.send_msg(&EchoRequest {
            message: format!("ping {i}"),
            payload: payload.clone(),
            ..EchoRequest::default()
        })
        .map_err(|s| format!("send {i}: {}", st(&s)))?;
        // The response must arrive before the next request is sent.
        let resp = recv_resp(&call, &format!("pong {i}"))?;
        ensure!(resp.index == i, "pong {i} has index {}", resp.index);
        ensure!(
            resp.message == format!("ping {i}"),
            "pong {i}: {:?}",
            resp.message
        );
        ensure!(resp.payload == payload, "pong {i}: payload differs");
    }
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    match call.recv() {
        Ok(None) => {}
        other => return Err(format!("after close_send: {other:?}")),
    }
    finish_ok(&call, "finish")?;
    Ok(Outcome::Pass)
}

const BIN_VALUE: &[u8] = b"\x00\xff\x01\xfe\x80\x7f\x00";

fn request_metadata() -> Result<Metadata, String> {
    let mut md = Metadata::new();
    md.insert("x-ascii", "hello world ~!@#$%^&*()")
        .map_err(|e| format!("{e:?}"))?;
    md.insert_bin("x-binary-bin", Bytes::from_static(BIN_VALUE))
        .map_err(|e| format!("{e:?}"))?;
    // Lengths 1 and 2: base64 with padding on the wire if padded.
    md.insert_bin("x-one-bin", Bytes::from_static(b"\xff"))
        .map_err(|e| format!("{e:?}"))?;
    md.insert_bin("x-two-bin", Bytes::from_static(b"\x00\xff"))
        .map_err(|e| format!("{e:?}"))?;
    md.insert("not-echoed", "no")
        .map_err(|e| format!("{e:?}"))?;
    Ok(md)
}

fn check_echoed(md: &Metadata, where_: &str) -> Result<(), String> {
    ensure!(
        md.get("x-ascii") == Some("hello world ~!@#$%^&*()"),
        "{where_}: x-ascii = {:?} (all: {md:?})",
        md.get("x-ascii")
    );
    for (key, value) in [
        ("x-binary-bin", BIN_VALUE),
        ("x-one-bin", b"\xff".as_slice()),
        ("x-two-bin", b"\x00\xff".as_slice()),
    ] {
        ensure!(
            md.get_bin(key).map(|b| &b[..]) == Some(value),
            "{where_}: {key} = {:?}, expected {value:?} (all: {md:?})",
            md.get_bin(key)
        );
    }
    ensure!(
        !md.contains_key("not-echoed"),
        "{where_}: not-echoed was echoed"
    );
    Ok(())
}

fn metadata_echo(ctx: &Ctx) -> CaseResult {
    let md = request_metadata()?;
    // Unary method through the streaming API, to see the headers.
    let call = ctx
        .channel
        .streaming_raw(UNARY, opts().metadata(md))
        .map_err(|s| st(&s))?;
    call.send_msg(&EchoRequest {
        message: "md".into(),
        echo_metadata: true,
        ..EchoRequest::default()
    })
    .map_err(|s| format!("send: {}", st(&s)))?;
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    let headers = call.headers().map_err(|s| format!("headers: {}", st(&s)))?;
    check_echoed(&headers, "headers")?;
    let resp = recv_resp(&call, "response")?;
    ensure!(resp.message == "md", "message {:?}", resp.message);
    let trailers = finish_ok(&call, "finish")?;
    check_echoed(&trailers, "trailers")?;
    check_echoed(&call.trailers(), "trailers()")?;
    Ok(Outcome::Pass)
}

fn metadata_on_error_status(ctx: &Ctx) -> CaseResult {
    // An error after the headers: the trailers come with the status
    // (Status::metadata()).
    let err = unary(
        &ctx.channel,
        &EchoRequest {
            echo_metadata: true,
            status_code: Code::FailedPrecondition as i32,
            status_message: "with metadata".into(),
            ..EchoRequest::default()
        },
        opts().metadata(request_metadata()?),
    );
    let status = expect_code(err, Code::FailedPrecondition, "unary")?;
    ensure!(
        status.message() == "with metadata",
        "message {:?}",
        status.message()
    );
    check_echoed(status.metadata(), "Status::metadata()")?;
    Ok(Outcome::Pass)
}

fn status_codes(ctx: &Ctx) -> CaseResult {
    for code in 1..=16 {
        let message = format!("ünïcødé ✓ 状态 {code}: 100% \"quoted\"\tand\nnewline");
        let err = unary(
            &ctx.channel,
            &EchoRequest {
                status_code: code,
                status_message: message.clone(),
                ..EchoRequest::default()
            },
            opts(),
        );
        let status = expect_code(err, Code::from_i32(code), &format!("code {code}"))?;
        ensure!(
            status.message() == message,
            "code {code}: message {:?}, expected {message:?}",
            status.message()
        );
        ensure!(
            status.details().is_empty(),
            "code {code}: unexpected details"
        );
    }
    Ok(Outcome::Pass)
}

fn status_details(ctx: &Ctx) -> CaseResult {
    let details = Bytes::from_static(b"\x00\xff\x08\x05\x12\x0bnot found \xe2\x9c\x93\x00\xff");
    let err = unary(
        &ctx.channel,
        &EchoRequest {
            status_code: Code::NotFound as i32,
            status_message: "with details".into(),
            status_details: details.clone(),
            ..EchoRequest::default()
        },
        opts(),
    );
    let status = expect_code(err, Code::NotFound, "unary")?;
    ensure!(
        status.message() == "with details",
        "message {:?}",
        status.message()
    );
    ensure!(
        status.details() == &details,
        "details {:?}, expected {details:?}",
        status.details()
    );
    // The same on a stream that had sent messages first.
    let call = ctx
        .channel
        .streaming_raw(SERVER_STREAM, opts())
        .map_err(|s| st(&s))?;
    call.send_msg(&EchoRequest {
        response_count: 1,
        status_code: Code::DataLoss as i32,
        status_details: details.clone(),
        ..EchoRequest::default()
    })
    .map_err(|s| format!("send: {}", st(&s)))?;
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    recv_resp(&call, "stream response")?;
    let (status, _) = call.finish();
    ensure!(status.code() == Code::DataLoss, "stream: {}", st(&status));
    ensure!(
        status.details() == &details,
        "stream: details {:?}",
        status.details()
    );
    Ok(Outcome::Pass)
}

fn deadline_exceeded(ctx: &Ctx) -> CaseResult {
    let started = Instant::now();
    let err = unary(
        &ctx.channel,
        &EchoRequest {
            sleep_ms: 2000,
            ..EchoRequest::default()
        },
        CallOptions::default().timeout(Duration::from_millis(100)),
    );
    let took = started.elapsed();
    expect_code(err, Code::DeadlineExceeded, "unary")?;
    ensure!(took < Duration::from_secs(1), "took {took:?}");
    ensure!(took >= Duration::from_millis(90), "too early: {took:?}");
    // The server survives and the channel still works.
    unary(&ctx.channel, &req("after deadline"), opts())
        .map_err(|s| format!("next call: {}", st(&s)))?;
    Ok(Outcome::Pass)
}

fn deadline_on_stream(ctx: &Ctx) -> CaseResult {
    // A bidi stream whose server is sleeping: recv fails at the deadline.
    let started = Instant::now();
    let call = ctx
        .channel
        .streaming_raw(
            BIDI,
            CallOptions::default().timeout(Duration::from_millis(200)),
        )
        .map_err(|s| st(&s))?;
    call.send_msg(&EchoRequest {
        sleep_ms: 3000,
        ..EchoRequest::default()
    })
    .map_err(|s| format!("send: {}", st(&s)))?;
    expect_code(call.recv(), Code::DeadlineExceeded, "recv")?;
    let took = started.elapsed();
    ensure!(took < Duration::from_secs(1), "took {took:?}");
    let (status, _) = call.finish();
    ensure!(
        status.code() == Code::DeadlineExceeded,
        "finish: {}",
        st(&status)
    );
    Ok(Outcome::Pass)
}

fn cancel_server_stream(ctx: &Ctx) -> CaseResult {
    let call = ctx
        .channel
        .streaming_raw(SERVER_STREAM, opts())
        .map_err(|s| st(&s))?;
    call.send_msg(&EchoRequest {
        payload: noise(64 << 10, 3),
        response_count: 100_000,
        ..EchoRequest::default()
    })
    .map_err(|s| format!("send: {}", st(&s)))?;
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    let first = recv_resp(&call, "first response")?;
    ensure!(first.index == 0, "first index {}", first.index);
    call.cancel();
    // Messages already received may still come out; then CANCELLED.
    let mut drained = 0;
    loop {
        match call.recv() {
            Ok(Some(_)) => {
                drained += 1;
                ensure!(drained < 100_000, "still receiving after cancel");
            }
            Ok(None) => return Err("recv after cancel: clean end, expected CANCELLED".into()),
            Err(s) if s.code() == Code::Cancelled => break,
            Err(s) => return Err(format!("recv after cancel: {}", st(&s))),
        }
    }
    let (status, _) = call.finish();
    ensure!(status.code() == Code::Cancelled, "finish: {}", st(&status));
    drop(call);
    // The server survives; the same channel and a new one both work.
    unary(&ctx.channel, &req("after cancel"), opts())
        .map_err(|s| format!("next call: {}", st(&s)))?;
    let fresh = channel_to(ctx.port)?;
    unary(&fresh, &req("fresh"), opts()).map_err(|s| format!("fresh channel: {}", st(&s)))?;
    drop(fresh);
    Ok(Outcome::Pass)
}

fn cancel_unary_handle(ctx: &Ctx) -> CaseResult {
    let call = ctx.channel.start_unary_raw(
        UNARY,
        EchoRequest {
            sleep_ms: 3000,
            ..EchoRequest::default()
        }
        .encode_to_vec()
        .into(),
        opts(),
    );
    ensure!(
        call.wait_timeout(Duration::from_millis(100)).is_none(),
        "ended before the server's sleep"
    );
    let started = Instant::now();
    call.cancel();
    let result = call
        .wait_timeout(Duration::from_secs(1))
        .ok_or("not ended 1 s after cancel")?;
    expect_code(result, Code::Cancelled, "wait")?;
    ensure!(
        started.elapsed() < Duration::from_millis(500),
        "cancel took {:?}",
        started.elapsed()
    );
    unary(&ctx.channel, &req("after unary cancel"), opts())
        .map_err(|s| format!("next call: {}", st(&s)))?;
    Ok(Outcome::Pass)
}

fn unimplemented_method(ctx: &Ctx) -> CaseResult {
    let r = ctx
        .channel
        .unary_raw("/miotest.Echo/Nope", Bytes::new(), opts());
    expect_code(r, Code::Unimplemented, "/miotest.Echo/Nope")?;
    // Streaming too.
    let call = ctx
        .channel
        .streaming_raw("/miotest.Echo/NopeStream", opts())
        .map_err(|s| st(&s))?;
    let _ = call.send(b"");
    let _ = call.close_send();
    let (status, _) = call.finish();
    ensure!(
        status.code() == Code::Unimplemented,
        "stream: {}",
        st(&status)
    );
    Ok(Outcome::Pass)
}

fn unimplemented_service(ctx: &Ctx) -> CaseResult {
    let r = ctx
        .channel
        .unary_raw("/miotest.Nope/Unary", Bytes::new(), opts());
    expect_code(r, Code::Unimplemented, "/miotest.Nope/Unary")?;
    Ok(Outcome::Pass)
}

fn gzip_request(ctx: &Ctx) -> CaseResult {
    // Through a byte-counting proxy: the 1 MiB request must be small on the wire.
    let p = proxy("127.0.0.1", ctx.port)?;
    let ch = channel_to(p.port)?;
    let payload = pattern(1 << 20, 9);
    let request = EchoRequest {
        message: "gzip".into(),
        payload: payload.clone(),
        ..EchoRequest::default()
    };
    let resp = unary(&ch, &request, opts().compression(Encoding::Gzip)).map_err(|s| st(&s))?;
    ensure!(
        resp.payload == payload,
        "payload differs ({} bytes)",
        resp.payload.len()
    );
    let up = p.up.load(Ordering::SeqCst);
    ensure!(
        up < 256 << 10,
        "{up} bytes went up for a 1 MiB request: not compressed"
    );
    // Many small compressed requests on a stream too.
    let call = ch
        .streaming_raw(CLIENT_STREAM, opts().compression(Encoding::Gzip))
        .map_err(|s| st(&s))?;
    for i in 0..5 {
        call.send_msg(&EchoRequest {
            payload: pattern(100 << 10, i),
            ..EchoRequest::default()
        })
        .map_err(|s| format!("stream send {i}: {}", st(&s)))?;
    }
    call.close_send().map_err(|s| st(&s))?;
    let resp = recv_resp(&call, "stream response")?;
    ensure!(
        resp.count == 5 && resp.total_bytes == 5 * (100 << 10),
        "stream: {resp:?}"
    );
    finish_ok(&call, "stream finish")?;
    drop(ch);
    Ok(Outcome::Pass)
}

fn gzip_response(ctx: &Ctx) -> CaseResult {
    let Some(gzip_port) = ctx.gzip_port else {
        return Ok(Outcome::Skip(
            "no --gzip-port (a reference_server.py --gzip) given".into(),
        ));
    };
    let p = proxy("127.0.0.1", gzip_port)?;
    let ch = channel_to(p.port)?;
    let payload = pattern(1 << 20, 11);
    let resp = unary(
        &ch,
        &EchoRequest {
            payload: payload.clone(),
            ..EchoRequest::default()
        },
        opts(),
    )
    .map_err(|s| st(&s))?;
    ensure!(
        resp.payload == payload,
        "payload differs ({} bytes)",
        resp.payload.len()
    );
    let down = p.down.load(Ordering::SeqCst);
    ensure!(
        down < 256 << 10,
        "{down} bytes came down for a 1 MiB response: not compressed"
    );
    // A compressed server stream.
    let call = ch
        .streaming_raw(SERVER_STREAM, opts())
        .map_err(|s| st(&s))?;
    call.send_msg(&EchoRequest {
        response_size: 300 << 10,
        response_count: 5,
        ..EchoRequest::default()
    })
    .map_err(|s| st(&s))?;
    call.close_send().map_err(|s| st(&s))?;
    for i in 0..5 {
        let r = recv_resp(&call, &format!("stream response {i}"))?;
        ensure!(
            r.index == i && r.payload.len() == 300 << 10 && r.payload.iter().all(|&b| b == 0),
            "stream response {i}: index {} {} bytes",
            r.index,
            r.payload.len()
        );
    }
    finish_ok(&call, "stream finish")?;
    let down2 = p.down.load(Ordering::SeqCst) - down;
    ensure!(
        down2 < 256 << 10,
        "{down2} bytes came down for 1.5 MiB of stream: not compressed"
    );
    drop(ch);
    Ok(Outcome::Pass)
}

fn gzip_bidi_both_ways(ctx: &Ctx) -> CaseResult {
    let Some(gzip_port) = ctx.gzip_port else {
        return Ok(Outcome::Skip(
            "no --gzip-port (a reference_server.py --gzip) given".into(),
        ));
    };
    let p = proxy("127.0.0.1", gzip_port)?;
    let ch = channel_to(p.port)?;
    let call = ch
        .streaming_raw(BIDI, opts().compression(Encoding::Gzip))
        .map_err(|s| st(&s))?;
    for i in 0..5u8 {
        let payload = pattern(200 << 10, i);
        call.send_msg(&EchoRequest {
            message: format!("z{i}"),
            payload: payload.clone(),
            ..EchoRequest::default()
        })
        .map_err(|s| format!("send {i}: {}", st(&s)))?;
        let r = recv_resp(&call, &format!("response {i}"))?;
        ensure!(
            r.index == i as i32 && r.payload == payload,
            "response {i} differs"
        );
    }
    call.close_send().map_err(|s| st(&s))?;
    finish_ok(&call, "finish")?;
    let (up, down) = (p.up.load(Ordering::SeqCst), p.down.load(Ordering::SeqCst));
    ensure!(
        up < 256 << 10 && down < 256 << 10,
        "1 MiB each way took {up} up / {down} down: not compressed"
    );
    drop(ch);
    Ok(Outcome::Pass)
}

fn channel_close(ctx: &Ctx) -> CaseResult {
    // Channel::close with a live connection and a call in flight: it
    // returns, the call fails with CANCELLED, new calls fail fast, and the
    // state is SHUTDOWN. The server survives.
    let ch = channel_to(ctx.port)?;
    unary(&ch, &req("before close"), opts()).map_err(|s| format!("first call: {}", st(&s)))?;
    let call = ch
        .streaming_raw(SERVER_STREAM, opts())
        .map_err(|s| st(&s))?;
    call.send_msg(&EchoRequest {
        sleep_ms: 5000,
        response_count: 1,
        ..EchoRequest::default()
    })
    .map_err(|s| format!("send: {}", st(&s)))?;
    call.close_send()
        .map_err(|s| format!("close_send: {}", st(&s)))?;
    std::thread::sleep(Duration::from_millis(50));
    let handle = ch.clone();
    if let Err(why) = close_channel(handle) {
        // Dropping these would block on the stuck connection too.
        std::mem::forget(call);
        std::mem::forget(ch);
        return Err(why);
    }
    let (status, _) = call.finish();
    ensure!(
        status.code() == Code::Cancelled,
        "the call in flight ended with {}, expected CANCELLED",
        st(&status)
    );
    ensure!(
        ch.state(false) == ConnectivityState::Shutdown,
        "state after close: {:?}",
        ch.state(false)
    );
    let started = Instant::now();
    let after = ch
        .start_unary_raw(UNARY, Bytes::new(), opts())
        .wait_timeout(Duration::from_secs(2))
        .ok_or("a call after close did not end in 2 s")?;
    ensure!(after.is_err(), "a call after close succeeded");
    ensure!(
        started.elapsed() < Duration::from_secs(1),
        "a call after close took {:?}",
        started.elapsed()
    );
    unary(&ctx.channel, &req("after close"), opts())
        .map_err(|s| format!("other channel: {}", st(&s)))?;
    Ok(Outcome::Pass)
}

fn health_check(ctx: &Ctx) -> CaseResult {
    let resp: HealthCheckResponse = ctx
        .channel
        .unary(
            HEALTH_CHECK,
            &HealthCheckRequest {
                service: String::new(),
            },
            opts(),
        )
        .map_err(|s| format!("\"\": {}", st(&s)))?;
    ensure!(
        resp.status == 1,
        "\"\": status {} (expected SERVING = 1)",
        resp.status
    );
    let resp: HealthCheckResponse = ctx
        .channel
        .unary(
            HEALTH_CHECK,
            &HealthCheckRequest {
                service: "miotest.Echo".into(),
            },
            opts(),
        )
        .map_err(|s| format!("miotest.Echo: {}", st(&s)))?;
    ensure!(resp.status == 1, "miotest.Echo: status {}", resp.status);
    let r = ctx.channel.unary::<_, HealthCheckResponse>(
        HEALTH_CHECK,
        &HealthCheckRequest {
            service: "nope".into(),
        },
        opts(),
    );
    expect_code(r, Code::NotFound, "\"nope\"")?;
    Ok(Outcome::Pass)
}

fn health_watch(ctx: &Ctx) -> CaseResult {
    // Watch never ends by itself: the first message, then drop (cancel).
    let call = ctx
        .channel
        .streaming_raw(HEALTH_WATCH, opts())
        .map_err(|s| st(&s))?;
    call.send_msg(&HealthCheckRequest {
        service: String::new(),
    })
    .map_err(|s| st(&s))?;
    call.close_send().map_err(|s| st(&s))?;
    let first: HealthCheckResponse = call
        .recv_msg()
        .map_err(|s| st(&s))?
        .ok_or("the watch ended")?;
    ensure!(first.status == 1, "status {}", first.status);
    drop(call);
    unary(&ctx.channel, &req("after watch"), opts())
        .map_err(|s| format!("next call: {}", st(&s)))?;
    Ok(Outcome::Pass)
}

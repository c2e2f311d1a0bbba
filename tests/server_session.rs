//! The gRPC server's call logic with no sockets (issue 13): a
//! `Server::detached` session on an in-memory connection pair and a
//! virtual clock (`common/grpc_pair.rs`). Owns the session-level
//! behaviour of calls: unary answers (callback and inline blocking),
//! deadlines on the loop's clock, client cancellation, outbound
//! backpressure of an inline streaming reactor (`send` → Full →
//! `on_ready`), request cardinality of unary methods, panics in inline
//! handlers, and inbound flow control of a pooled reactor.

#[path = "common/grpc_pair.rs"]
mod grpc_pair;
#[path = "common/pair.rs"]
mod pair;
#[path = "common/wait.rs"]
mod wait;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use bytes::Bytes;
use grpc_pair::GrpcPair;
use mio_grpc::conn::ConnConfig;
use mio_grpc::framer::{Frame, Reason};
use mio_grpc::grpc::{Code, Status};
use mio_grpc::loopy::InboundConfig;
use mio_grpc::server::{
    MethodDesc, MethodKind, SendError, SendState, Server, ServerCall, ServerReactor, ServiceDesc,
};
use wait::PATIENCE;

/// A shared, ordered record of what handlers did.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn reversed(message: &[u8]) -> Vec<u8> {
    message.iter().rev().copied().collect()
}

fn server_with(service: ServiceDesc, inline_handlers: bool) -> Server {
    let mut server = Server::builder().inline_handlers(inline_handlers).build();
    server.add_service(service).unwrap();
    server
}

/// The RST_STREAM frames the server sent since the last look.
fn server_resets(grpc: &mut GrpcPair) -> Vec<(u32, Reason)> {
    grpc.pair
        .server
        .take_frames()
        .iter()
        .filter_map(|f| match f {
            Frame::RstStream(r) => Some((r.stream_id.value(), r.reason)),
            _ => None,
        })
        .collect()
}

// --- 1. unary ---------------------------------------------------------------

#[test]
fn callback_unary_answers_inline_with_message_and_ok_trailers() {
    let test_thread = std::thread::current().id();
    let ran_on: Arc<Mutex<Option<ThreadId>>> = Arc::default();
    let seen = ran_on.clone();
    let echo = MethodDesc::callback_unary("Reverse", move |call, request| {
        *seen.lock().unwrap() = Some(std::thread::current().id());
        call.finish_with_message(&reversed(&request));
    });
    let mut grpc = GrpcPair::with_server(server_with(
        ServiceDesc::new("test.Svc").method(echo),
        false,
    ));

    let key = grpc.unary("/test.Svc/Reverse", b"hello");

    let call = grpc.call(key);
    assert!(!call.trailers_only);
    assert_eq!(call.http_status, Some(200), "response headers first");
    assert_eq!(call.messages, [Bytes::from_static(b"olleh")]);
    assert_eq!(call.reset, None);
    let status = grpc.status(key);
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert_eq!(
        *ran_on.lock().unwrap(),
        Some(test_thread),
        "an inline callback runs on the loop (here: the test thread)"
    );
    assert_eq!(grpc.server.counts(), (0, 0));
}

#[test]
fn blocking_unary_with_inline_handlers_answers_on_the_loop() {
    let test_thread = std::thread::current().id();
    let ran_on: Arc<Mutex<Option<ThreadId>>> = Arc::default();
    let seen = ran_on.clone();
    let echo = MethodDesc::raw_unary("Reverse", move |_ctx, request| {
        *seen.lock().unwrap() = Some(std::thread::current().id());
        Ok::<_, Status>(Bytes::from(reversed(&request)))
    });
    let mut grpc =
        GrpcPair::with_server(server_with(ServiceDesc::new("test.Svc").method(echo), true));

    let key = grpc.unary("/test.Svc/Reverse", b"abc");

    let call = grpc.call(key);
    assert!(!call.trailers_only);
    assert_eq!(call.messages, [Bytes::from_static(b"cba")]);
    assert_eq!(grpc.status(key).code(), Code::Ok);
    assert_eq!(*ran_on.lock().unwrap(), Some(test_thread));
    assert_eq!(grpc.server.counts(), (0, 0));
}

#[test]
fn blocking_unary_error_becomes_trailers_only_status() {
    let fail = MethodDesc::raw_unary("Fail", |_ctx, _request| {
        Err::<Bytes, _>(Status::not_found("no such thing"))
    });
    let mut grpc =
        GrpcPair::with_server(server_with(ServiceDesc::new("test.Svc").method(fail), true));

    let key = grpc.unary("/test.Svc/Fail", b"x");

    let call = grpc.call(key);
    assert!(
        call.trailers_only,
        "no message: one HEADERS with the status"
    );
    assert!(call.messages.is_empty());
    let status = grpc.status(key);
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no such thing");
}

// --- 2. deadlines -----------------------------------------------------------

/// A reactor that records its callbacks and never answers.
struct Silent {
    log: Log,
}

impl ServerReactor for Silent {
    fn on_message(&mut self, _call: &ServerCall, message: Bytes) {
        self.log
            .push(format!("message {}", String::from_utf8_lossy(&message)));
    }

    fn on_half_close(&mut self, _call: &ServerCall) {
        self.log.push("half-close");
    }

    fn on_ready(&mut self, _call: &ServerCall) {
        self.log.push("ready");
    }

    fn on_cancel(&mut self, _call: &ServerCall, status: &Status) {
        self.log.push(format!("cancel {:?}", status.code()));
    }
}

fn silent_server(log: &Log) -> Server {
    let log = log.clone();
    let method = MethodDesc::reactor("Silent", MethodKind::BidiStreaming, move |_call| {
        Box::new(Silent { log: log.clone() }) as Box<dyn ServerReactor>
    });
    server_with(ServiceDesc::new("test.Svc").method(method), false)
}

#[test]
fn deadline_ends_a_silent_call_on_the_virtual_clock_and_resets_a_sending_client() {
    let log = Log::default();
    let mut grpc = GrpcPair::with_server(silent_server(&log));

    let key = grpc.open_with("/test.Svc/Silent", &[("grpc-timeout", "1S")], false);
    grpc.send(key, b"one", false);
    grpc.drive();
    grpc.pair.server.take_frames();
    assert_eq!(log.entries(), ["message one"]);
    assert_eq!(grpc.session_deadline_in(), Some(Duration::from_secs(1)));

    grpc.advance(Duration::from_millis(999));
    assert!(!grpc.call(key).ended(), "nothing before the deadline");
    assert_eq!(server_resets(&mut grpc), []);
    assert_eq!(log.entries(), ["message one"]);

    grpc.advance(Duration::from_millis(1));
    let status = grpc.status(key);
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        grpc.call(key).trailers_only,
        "nothing was sent: trailers-only"
    );
    assert_eq!(
        server_resets(&mut grpc),
        [(1, Reason::NO_ERROR)],
        "the client was still sending: RST_STREAM(NO_ERROR) after the trailers"
    );
    assert_eq!(log.entries(), ["message one", "cancel DeadlineExceeded"]);
    assert_eq!(grpc.session_deadline_in(), None, "the deadline is spent");

    // Nothing more happens to the call later.
    grpc.advance(Duration::from_secs(5));
    assert_eq!(log.entries(), ["message one", "cancel DeadlineExceeded"]);
    assert_eq!(server_resets(&mut grpc), []);
}

#[test]
fn deadline_after_half_close_sends_trailers_and_no_reset() {
    let log = Log::default();
    let mut grpc = GrpcPair::with_server(silent_server(&log));

    let key = grpc.open_with("/test.Svc/Silent", &[("grpc-timeout", "250m")], false);
    grpc.send(key, b"only", true);
    grpc.drive();
    grpc.pair.server.take_frames();
    assert_eq!(log.entries(), ["message only", "half-close"]);

    grpc.advance(Duration::from_millis(249));
    assert!(!grpc.call(key).ended());

    grpc.advance(Duration::from_millis(1));
    assert_eq!(grpc.status(key).code(), Code::DeadlineExceeded);
    assert_eq!(grpc.call(key).reset, None);
    assert_eq!(
        server_resets(&mut grpc),
        [],
        "the client had half-closed: nothing to stop"
    );
    assert_eq!(
        log.entries(),
        ["message only", "half-close", "cancel DeadlineExceeded"]
    );
}

#[test]
fn deadline_of_an_answered_call_does_nothing() {
    let log = Log::default();
    let answered = log.clone();
    let echo = MethodDesc::callback_unary("Echo", move |call, request| {
        answered.push("answered");
        call.finish_with_message(&request);
    });
    let mut grpc = GrpcPair::with_server(server_with(
        ServiceDesc::new("test.Svc").method(echo),
        false,
    ));

    let key = grpc.open_with("/test.Svc/Echo", &[("grpc-timeout", "1S")], false);
    grpc.send(key, b"hi", true);
    grpc.drive();
    assert_eq!(grpc.status(key).code(), Code::Ok);
    grpc.pair.server.take_frames();

    grpc.advance(Duration::from_secs(2));
    assert_eq!(grpc.status(key).code(), Code::Ok);
    assert_eq!(server_resets(&mut grpc), []);
    assert!(
        grpc.pair.server.take_frames().is_empty(),
        "nothing sent at the deadline"
    );
    assert_eq!(log.entries(), ["answered"]);
}

// --- 3. cancellation --------------------------------------------------------

#[test]
fn client_reset_cancels_the_reactor_and_no_callback_follows() {
    let log = Log::default();
    let mut grpc = GrpcPair::with_server(silent_server(&log));

    let key = grpc.open("/test.Svc/Silent");
    grpc.send(key, b"a", false);
    grpc.drive();
    assert_eq!(log.entries(), ["message a"]);

    grpc.reset(key, Reason::CANCEL);
    grpc.drive();
    assert_eq!(log.entries(), ["message a", "cancel Cancelled"]);
    assert!(
        grpc.call(key).status().is_none(),
        "no answer to a reset stream"
    );
    assert_eq!(
        server_resets(&mut grpc),
        [],
        "the server does not reset back"
    );

    grpc.advance(Duration::from_secs(10));
    assert_eq!(log.entries(), ["message a", "cancel Cancelled"]);
}

/// Sends 16 KiB messages until the queue is full (from `on_message`,
/// then from each `on_ready`), and keeps its call so the test can try
/// sending after the end.
struct Flooder {
    log: Log,
    call: Arc<Mutex<Option<ServerCall>>>,
}

impl Flooder {
    fn flood(&mut self, call: &ServerCall) {
        let chunk = vec![7u8; 16 * 1024];
        for i in 0..1000 {
            match call.send(&chunk) {
                Ok(SendState::Ready) => {}
                Ok(SendState::Full) => {
                    self.log.push(format!("full after {}", i + 1));
                    return;
                }
                Err(e) => {
                    self.log.push(format!("send error {e}"));
                    return;
                }
            }
        }
        self.log.push("never full");
    }
}

impl ServerReactor for Flooder {
    fn on_message(&mut self, call: &ServerCall, _message: Bytes) {
        *self.call.lock().unwrap() = Some(call.clone());
        self.flood(call);
    }

    fn on_ready(&mut self, call: &ServerCall) {
        self.log.push("ready");
        self.flood(call);
    }

    fn on_cancel(&mut self, _call: &ServerCall, status: &Status) {
        self.log.push(format!("cancel {:?}", status.code()));
    }
}

#[test]
fn client_reset_of_a_blocked_sender_cancels_it_without_on_ready() {
    let log = Log::default();
    let kept: Arc<Mutex<Option<ServerCall>>> = Arc::default();
    let (l, k) = (log.clone(), kept.clone());
    let method = MethodDesc::reactor("Flood", MethodKind::BidiStreaming, move |_call| {
        Box::new(Flooder {
            log: l.clone(),
            call: k.clone(),
        }) as Box<dyn ServerReactor>
    });
    let mut grpc = GrpcPair::with_server(server_with(
        ServiceDesc::new("test.Svc").method(method),
        false,
    ));
    grpc.manual_release();

    let key = grpc.open("/test.Svc/Flood");
    grpc.send(key, b"go", false);
    grpc.drive();
    // Quiet, with the reactor blocked at Full (the client's window is
    // spent and the queue full).
    let before = log.entries();
    assert!(
        before.last().unwrap().starts_with("full after "),
        "{before:?}"
    );
    grpc.drive();
    assert_eq!(log.entries(), before);

    grpc.reset(key, Reason::CANCEL);
    grpc.drive();
    let after = log.entries();
    assert_eq!(
        after[before.len()..],
        ["cancel Cancelled"],
        "cancel is the last callback: no on_ready for the freed quota"
    );

    // The call is over for the handler: sends say so.
    let call = kept.lock().unwrap().clone().unwrap();
    assert!(call.is_cancelled());
    match call.send(b"late") {
        Err(SendError::Closed(status)) => assert_eq!(status.code(), Code::Cancelled),
        other => panic!("a send after the cancel: {other:?}"),
    }
    assert!(!call.finish(Status::ok()), "the call had ended");
    grpc.advance(Duration::from_secs(1));
    assert_eq!(log.entries(), after);
}

// --- 4. outbound backpressure ----------------------------------------------

const CHUNK: usize = 16 * 1024;

/// Message `i` of the stream: its index, then filler.
fn numbered(i: u32) -> Vec<u8> {
    let mut message = vec![i as u8; CHUNK];
    message[..4].copy_from_slice(&i.to_be_bytes());
    message
}

/// A server-streaming reactor that sends `total` messages as fast as the
/// stream takes them, from the half-close and then from each `on_ready`.
struct Streamer {
    log: Log,
    total: u32,
    next: u32,
}

impl Streamer {
    fn pump(&mut self, call: &ServerCall) {
        while self.next < self.total {
            match call.send(&numbered(self.next)) {
                Ok(SendState::Ready) => self.next += 1,
                Ok(SendState::Full) => {
                    self.next += 1;
                    self.log.push(format!("full at {}", self.next));
                    // While full, a send is refused and nothing is queued.
                    match call.send(&numbered(self.next)) {
                        Err(SendError::NotReady) => self.log.push("not ready"),
                        other => self.log.push(format!("send while full: {other:?}")),
                    }
                    return;
                }
                Err(e) => {
                    self.log.push(format!("send error {e}"));
                    return;
                }
            }
        }
        self.log.push("done");
        call.finish(Status::ok());
    }
}

impl ServerReactor for Streamer {
    fn on_message(&mut self, _call: &ServerCall, message: Bytes) {
        self.log.push(format!("request {}", message.len()));
    }

    fn on_half_close(&mut self, call: &ServerCall) {
        self.pump(call);
    }

    fn on_ready(&mut self, call: &ServerCall) {
        self.log.push("ready");
        self.pump(call);
    }

    fn on_cancel(&mut self, _call: &ServerCall, status: &Status) {
        self.log.push(format!("cancel {:?}", status.code()));
    }
}

#[test]
fn inline_streaming_reactor_stops_at_full_and_resumes_on_ready() {
    const TOTAL: u32 = 40;
    let log = Log::default();
    let l = log.clone();
    let method = MethodDesc::reactor("Stream", MethodKind::ServerStreaming, move |_call| {
        Box::new(Streamer {
            log: l.clone(),
            total: TOTAL,
            next: 0,
        }) as Box<dyn ServerReactor>
    });
    let client = ConnConfig {
        inbound: InboundConfig::static_windows(65_535, 65_535),
        ..ConnConfig::default()
    };
    let mut grpc = GrpcPair::new(
        server_with(ServiceDesc::new("test.Svc").method(method), false),
        client,
        ConnConfig::default(),
    );
    grpc.manual_release();

    let key = grpc.open("/test.Svc/Stream");
    grpc.send(key, b"please", true);
    grpc.drive();

    // The loop is not frozen: the reactor returned at Full, the pair went
    // quiet. (The first Full may come before the writer has spent the
    // client's window: its on_ready follows at once.) It stops at Full
    // with the window spent, having queued no more than the window, the
    // stream's 64 KiB quota and one message.
    let entries = log.entries();
    assert_eq!(entries[0], "request 6");
    assert_eq!(entries.last().unwrap(), "not ready", "{entries:?}");
    let last_full = &entries[entries.len() - 2];
    assert!(last_full.starts_with("full at "), "{entries:?}");
    let sent: usize = last_full["full at ".len()..].parse().unwrap();
    assert!(sent < TOTAL as usize, "full long before the end: {sent}");
    assert!(
        sent * (CHUNK + 5) <= 65_535 + 65_536 + CHUNK + 5,
        "queued without bound: {sent} messages"
    );
    let received = grpc.call(key).data_bytes;
    assert_eq!(received, 65_535, "the client's window is spent");
    assert!(
        sent * (CHUNK + 5) > received,
        "part of what was sent waits in the server's queue"
    );
    assert!(!grpc.call(key).ended());
    let quiet = entries.len();

    // Nothing moves until the client reads: no frames, no callbacks.
    grpc.pair.server.take_frames();
    grpc.advance(Duration::from_secs(1));
    assert!(
        grpc.pair
            .server
            .take_frames()
            .iter()
            .all(|f| !matches!(f, Frame::Data(_))),
        "no DATA while the window is closed"
    );
    assert_eq!(log.entries().len(), quiet);
    assert_eq!(grpc.call(key).data_bytes, received);

    // The client consumes: on_ready, more sends, until the end.
    let mut rounds = 0;
    while !grpc.call(key).ended() {
        rounds += 1;
        assert!(rounds < 1000, "the stream stalled: {:?}", log.entries());
        let released = grpc.release(key);
        assert!(
            released > 0,
            "stalled with nothing to release: {:?}",
            log.entries()
        );
        grpc.drive();
    }
    let entries = log.entries();
    assert_eq!(
        entries.last().map(String::as_str),
        Some("done"),
        "{entries:?}"
    );
    let readies = entries.iter().filter(|e| *e == "ready").count();
    let fulls = entries.iter().filter(|e| e.starts_with("full at ")).count();
    assert!(readies >= 1, "{entries:?}");
    assert_eq!(
        readies, fulls,
        "each Full is followed by one on_ready: {entries:?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| !e.starts_with("send") && !e.starts_with("cancel")),
        "{entries:?}"
    );
    assert_eq!(
        entries.iter().filter(|e| *e == "not ready").count(),
        fulls,
        "{entries:?}"
    );

    let call = grpc.call(key);
    assert_eq!(call.messages.len(), TOTAL as usize);
    for (i, message) in call.messages.iter().enumerate() {
        assert_eq!(&message[..], &numbered(i as u32)[..], "message {i}");
    }
    assert_eq!(grpc.status(key).code(), Code::Ok);
    assert_eq!(call.reset, None);
}

// --- 5. request cardinality of unary methods -------------------------------

fn unary_methods(calls: &Arc<AtomicUsize>) -> ServiceDesc {
    let (a, b) = (calls.clone(), calls.clone());
    ServiceDesc::new("test.Svc")
        .method(MethodDesc::callback_unary(
            "Callback",
            move |call, request| {
                a.fetch_add(1, Ordering::SeqCst);
                call.finish_with_message(&request);
            },
        ))
        .method(MethodDesc::raw_unary("Blocking", move |_ctx, request| {
            b.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Status>(request)
        }))
}

#[test]
fn unary_with_two_request_messages_is_internal() {
    for path in ["/test.Svc/Callback", "/test.Svc/Blocking"] {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut grpc = GrpcPair::with_server(server_with(unary_methods(&calls), true));

        let key = grpc.open(path);
        grpc.send(key, b"one", false);
        grpc.send(key, b"two", true);
        grpc.drive();

        let status = grpc.status(key);
        assert_eq!(status.code(), Code::Internal, "{path}: {status:?}");
        assert!(grpc.call(key).messages.is_empty(), "{path}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "{path}: handler never runs"
        );

        // The connection serves the next call.
        let key = grpc.unary(path, b"three");
        assert_eq!(grpc.status(key).code(), Code::Ok, "{path}");
        assert_eq!(grpc.call(key).messages, [Bytes::from_static(b"three")]);
    }
}

#[test]
fn unary_with_no_request_message_is_internal() {
    for path in ["/test.Svc/Callback", "/test.Svc/Blocking"] {
        for headers_only in [false, true] {
            let calls = Arc::new(AtomicUsize::new(0));
            let mut grpc = GrpcPair::with_server(server_with(unary_methods(&calls), true));

            let key = if headers_only {
                grpc.open_with(path, &[], true)
            } else {
                let key = grpc.open(path);
                grpc.half_close(key);
                key
            };
            grpc.drive();

            let status = grpc.status(key);
            assert_eq!(
                status.code(),
                Code::Internal,
                "{path} headers_only={headers_only}: {status:?}"
            );
            assert_eq!(calls.load(Ordering::SeqCst), 0);
        }
    }
}

#[test]
fn truncated_request_message_is_internal() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut grpc = GrpcPair::with_server(server_with(unary_methods(&calls), true));

    let key = grpc.open("/test.Svc/Callback");
    let framed = grpc_pair::frame(b"abcdef");
    grpc.pair.client.put(mio_grpc::loopy::Item::Data {
        key,
        data: framed.slice(..framed.len() - 2),
        end_stream: true,
    });
    grpc.drive();

    assert_eq!(grpc.status(key).code(), Code::Internal);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

// --- 6. panics --------------------------------------------------------------

/// Panics on the message `b"panic"`, echoes any other at the half-close.
struct Touchy {
    request: Option<Bytes>,
}

impl ServerReactor for Touchy {
    fn on_message(&mut self, _call: &ServerCall, message: Bytes) {
        assert_ne!(&message[..], b"panic", "the reactor panics on purpose");
        self.request = Some(message);
    }

    fn on_half_close(&mut self, call: &ServerCall) {
        if let Some(request) = self.request.take() {
            call.finish_with_message(&request);
        }
    }
}

#[test]
fn inline_reactor_panic_ends_the_call_internal_and_the_session_goes_on() {
    let method = MethodDesc::reactor("Touchy", MethodKind::Unary, |_call| {
        Box::new(Touchy { request: None }) as Box<dyn ServerReactor>
    });
    let mut grpc = GrpcPair::with_server(server_with(
        ServiceDesc::new("test.Svc").method(method),
        false,
    ));

    let key = grpc.unary("/test.Svc/Touchy", b"panic");
    let status = grpc.status(key);
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(status.message(), "handler panicked");
    assert_eq!(grpc.server.counts(), (0, 1));

    let key = grpc.unary("/test.Svc/Touchy", b"fine");
    assert_eq!(grpc.status(key).code(), Code::Ok);
    assert_eq!(grpc.call(key).messages, [Bytes::from_static(b"fine")]);
    assert_eq!(grpc.server.counts(), (0, 1));
}

#[test]
fn inline_reactor_factory_panic_ends_the_call_internal() {
    let method = MethodDesc::reactor("Boom", MethodKind::BidiStreaming, |call| {
        assert_ne!(
            call.metadata().get("x-boom"),
            Some("1"),
            "the factory panics on purpose"
        );
        Box::new(Touchy { request: None }) as Box<dyn ServerReactor>
    });
    let mut grpc = GrpcPair::with_server(server_with(
        ServiceDesc::new("test.Svc").method(method),
        false,
    ));

    let key = grpc.open_with("/test.Svc/Boom", &[("x-boom", "1")], false);
    grpc.send(key, b"m", true);
    grpc.drive();
    let status = grpc.status(key);
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(status.message(), "handler panicked");
    assert_eq!(grpc.server.counts(), (0, 1));

    let key = grpc.unary("/test.Svc/Boom", b"ok");
    assert_eq!(grpc.status(key).code(), Code::Ok);
    assert_eq!(grpc.call(key).messages, [Bytes::from_static(b"ok")]);
}

#[test]
fn inline_blocking_unary_panic_ends_the_call_internal_and_the_session_goes_on() {
    let method = MethodDesc::raw_unary("Touchy", |_ctx, request| {
        assert_ne!(&request[..], b"panic", "the handler panics on purpose");
        Ok::<_, Status>(request)
    });
    let mut grpc = GrpcPair::with_server(server_with(
        ServiceDesc::new("test.Svc").method(method),
        true,
    ));

    let key = grpc.unary("/test.Svc/Touchy", b"panic");
    let status = grpc.status(key);
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(status.message(), "handler panicked");
    assert_eq!(grpc.server.counts(), (0, 1));

    let key = grpc.unary("/test.Svc/Touchy", b"fine");
    assert_eq!(grpc.status(key).code(), Code::Ok);
    assert_eq!(grpc.call(key).messages, [Bytes::from_static(b"fine")]);
    assert_eq!(grpc.server.counts(), (0, 1));
}

// --- 8. inbound flow control of a pooled reactor ---------------------------

/// A gate the test opens: a pooled callback waits on it (the test holds
/// the pool thread on purpose, to see what the window does meanwhile).
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (lock, cond) = &*self.0;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cond.wait(open).unwrap();
        }
    }

    fn open(&self) {
        let (lock, cond) = &*self.0;
        *lock.lock().unwrap() = true;
        cond.notify_all();
    }
}

struct Counter {
    gate: Gate,
    entered: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<u32>>>,
}

impl ServerReactor for Counter {
    fn on_message(&mut self, _call: &ServerCall, message: Bytes) {
        self.entered.store(true, Ordering::SeqCst);
        self.gate.wait();
        let index = u32::from_be_bytes(message[..4].try_into().unwrap());
        self.received.lock().unwrap().push(index);
    }

    fn on_half_close(&mut self, call: &ServerCall) {
        let n = self.received.lock().unwrap().len() as u32;
        call.finish_with_message(&n.to_be_bytes());
    }
}

#[test]
fn pooled_reactor_releases_request_window_only_after_its_callbacks_ran() {
    const TOTAL: u32 = 100;
    const SIZE: usize = 1000;
    let gate = Gate::default();
    let entered = Arc::new(AtomicBool::new(false));
    let received: Arc<Mutex<Vec<u32>>> = Arc::default();
    let (g, e, r) = (gate.clone(), entered.clone(), received.clone());
    let method = MethodDesc::reactor("Count", MethodKind::ClientStreaming, move |_call| {
        Box::new(Counter {
            gate: g.clone(),
            entered: e.clone(),
            received: r.clone(),
        }) as Box<dyn ServerReactor>
    })
    .on_pool();
    let mut server = Server::builder()
        // Complete messages waiting for the handler hold their window
        // back once more than this many bytes wait.
        .max_receive_message_size(SIZE + 100)
        .build();
    server
        .add_service(ServiceDesc::new("test.Svc").method(method))
        .unwrap();
    let server_conn = ConnConfig {
        inbound: InboundConfig::static_windows(65_535, 65_535),
        ..ConnConfig::default()
    };
    let mut grpc = GrpcPair::new(server, ConnConfig::default(), server_conn);

    let key = grpc.open("/test.Svc/Count");
    for i in 0..TOTAL {
        let mut message = vec![0u8; SIZE];
        message[..4].copy_from_slice(&i.to_be_bytes());
        grpc.send(key, &message, i + 1 == TOTAL);
    }
    assert!(
        grpc.drive_until(PATIENCE, |_| entered.load(Ordering::SeqCst)),
        "the first callback never ran"
    );
    grpc.drive();

    // The callback is held: the request stalls at the stream window, and
    // no WINDOW_UPDATE reopens it.
    let stream_updates = |frames: &[Frame]| {
        frames
            .iter()
            .filter(|f| matches!(f, Frame::WindowUpdate(w) if w.stream_id.value() == 1))
            .count()
    };
    let arrived: usize = grpc
        .server_events
        .iter()
        .map(|e| match e {
            mio_grpc::conn::ConnEvent::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    let total_wire = TOTAL as usize * (SIZE + 5);
    assert!(arrived <= 65_535, "{arrived}");
    assert!(arrived < total_wire);
    let frames = grpc.pair.server.take_frames();
    assert_eq!(
        stream_updates(&frames),
        0,
        "no stream window reopened while the handler is held"
    );
    assert!(received.lock().unwrap().is_empty());
    assert!(!grpc.call(key).ended());

    // The handler runs: the window reopens and the rest flows in.
    gate.open();
    assert!(
        grpc.drive_until(PATIENCE, |g| g.call(key).ended()),
        "the call never ended; handler got {}",
        received.lock().unwrap().len()
    );
    assert_eq!(grpc.status(key).code(), Code::Ok);
    assert_eq!(
        grpc.call(key).messages,
        [Bytes::copy_from_slice(&TOTAL.to_be_bytes())]
    );
    assert_eq!(*received.lock().unwrap(), (0..TOTAL).collect::<Vec<_>>());
    assert!(stream_updates(&grpc.pair.server.take_frames()) > 0);
}

// --- routing and request checks --------------------------------------------

#[test]
fn unknown_service_or_method_and_bad_timeout_are_answered_trailers_only() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut grpc = GrpcPair::with_server(server_with(unary_methods(&calls), true));

    for (path, extra, code) in [
        ("/test.Nope/Callback", None, Code::Unimplemented),
        ("/test.Svc/Nope", None, Code::Unimplemented),
        ("/no-slash", None, Code::Unimplemented),
        (
            "/test.Svc/Callback",
            Some(("grpc-timeout", "1X")),
            Code::Internal,
        ),
        (
            "/test.Svc/Callback",
            Some(("grpc-encoding", "snappy")),
            Code::Unimplemented,
        ),
    ] {
        let extra: Vec<(&str, &str)> = extra.into_iter().collect();
        let key = grpc.open_with(path, &extra, false);
        grpc.send(key, b"x", true);
        grpc.drive();
        let call = grpc.call(key);
        assert!(call.trailers_only, "{path} {extra:?}");
        let status = grpc.status(key);
        assert_eq!(status.code(), code, "{path} {extra:?}: {status:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // The session still serves.
    let key = grpc.unary("/test.Svc/Callback", b"ok");
    assert_eq!(grpc.status(key).code(), Code::Ok);
}

#[test]
fn non_grpc_content_type_gets_415() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut grpc = GrpcPair::with_server(server_with(unary_methods(&calls), true));

    let key = grpc.open_with("/test.Svc/Callback", &[], false);
    // open_with sends application/grpc; a second request with another
    // content type goes through the client directly.
    grpc.send(key, b"x", true);
    let other = grpc.pair.client.conn.buffer().new_stream_key();
    grpc.pair.client.put(mio_grpc::loopy::Item::Open {
        key: other,
        fields: vec![
            grpc_pair::hf(":method", "POST"),
            grpc_pair::hf(":scheme", "http"),
            grpc_pair::hf(":path", "/test.Svc/Callback"),
            grpc_pair::hf(":authority", "localhost"),
            grpc_pair::hf("content-type", "application/json"),
        ],
        end_stream: true,
        quota: None,
    });
    grpc.calls.insert(other, grpc_pair::Call::default());
    grpc.drive();

    assert_eq!(grpc.status(key).code(), Code::Ok);
    let call = grpc.call(other);
    assert!(call.trailers_only);
    assert_eq!(call.http_status, Some(415));
    let status = grpc.status(other);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// --- answers from other threads ---------------------------------------------

#[test]
fn callback_unary_may_answer_later_from_another_thread() {
    let (tx, rx) = std::sync::mpsc::channel::<(ServerCall, Bytes)>();
    let tx = Mutex::new(tx);
    let method = MethodDesc::callback_unary("Later", move |call, request| {
        tx.lock().unwrap().send((call.clone(), request)).unwrap();
    });
    let mut grpc = GrpcPair::with_server(server_with(
        ServiceDesc::new("test.Svc").method(method),
        false,
    ));

    let key = grpc.unary("/test.Svc/Later", b"ping");
    let (call, request) = rx.try_recv().expect("the callback ran inline");
    assert!(!grpc.call(key).ended(), "not answered yet");

    let answer = std::thread::spawn(move || call.finish_with_message(&reversed(&request)));
    assert!(answer.join().unwrap());
    grpc.drive();
    assert_eq!(grpc.status(key).code(), Code::Ok);
    assert_eq!(grpc.call(key).messages, [Bytes::from_static(b"gnip")]);
}

#[test]
fn pooled_reactor_hears_its_deadline_on_the_pool() {
    let log = Log::default();
    let l = log.clone();
    let method = MethodDesc::reactor("Silent", MethodKind::BidiStreaming, move |_call| {
        Box::new(Silent { log: l.clone() }) as Box<dyn ServerReactor>
    })
    .on_pool();
    let mut grpc = GrpcPair::with_server(server_with(
        ServiceDesc::new("test.Svc").method(method),
        false,
    ));

    let key = grpc.open_with("/test.Svc/Silent", &[("grpc-timeout", "2S")], false);
    grpc.send(key, b"one", false);
    assert!(grpc.drive_until(PATIENCE, |_| log.entries() == ["message one"]));

    grpc.advance(Duration::from_millis(1999));
    assert!(!grpc.call(key).ended());
    grpc.advance(Duration::from_millis(1));
    assert_eq!(grpc.status(key).code(), Code::DeadlineExceeded);
    assert!(grpc.drive_until(PATIENCE, |_| log.entries().len() == 2));
    assert_eq!(log.entries(), ["message one", "cancel DeadlineExceeded"]);
}

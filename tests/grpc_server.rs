//! The gRPC server driven with the raw HTTP/2 peer, for what a real gRPC
//! client cannot send: request validation (method, content-type, path,
//! grpc-timeout, grpc-encoding), trailers-only answers, message framing
//! (size limit from the prefix alone, zero or two unary messages, a bad
//! flag), deadlines and cancellation seen by handlers, registration errors,
//! interceptor order, graceful stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::peer::{frames, Peer};
use common::wait::{wait_until, PATIENCE};
use framer::hpack::{HeaderField, HeaderList};
use framer::{Frame, Reason};
use mio_grpc::grpc::{Code, Encoding, Metadata, Status};
use mio_grpc::server::{
    Context, MethodDesc, RawRequests, RawSink, Server, ServerError, ServerHandle, ServiceDesc,
};

fn field(name: &str, value: &str) -> HeaderField {
    HeaderField::new(name.to_string(), value.to_string())
}

fn grpc_request(path: &str) -> Vec<HeaderField> {
    vec![
        field("content-type", "application/grpc"),
        field("te", "trailers"),
    ]
    .into_iter()
    .chain(std::iter::once(field("x-test", path)))
    .collect()
}

/// One length-prefixed message.
fn message(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn value<'a>(fields: &'a HeaderList, name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.name == name.as_bytes())
        .map(|f| &f.value[..])
}

/// The status in trailers (or a trailers-only response).
fn grpc_status(fields: &HeaderList) -> (Code, String) {
    let status = Status::from_trailers(fields);
    (status.code(), status.message().to_string())
}

struct TestServer {
    handle: ServerHandle,
    /// The `Sleep` handler is running.
    sleep_started: Arc<AtomicBool>,
    cancelled_seen: Arc<AtomicBool>,
    order: Arc<Mutex<Vec<&'static str>>>,
}

fn start() -> TestServer {
    let sleep_started = Arc::new(AtomicBool::new(false));
    let started = sleep_started.clone();
    let cancelled_seen = Arc::new(AtomicBool::new(false));
    let seen = cancelled_seen.clone();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (o1, o2, o3, o4) = (order.clone(), order.clone(), order.clone(), order.clone());
    let service = ServiceDesc::new("test.S")
        .method(MethodDesc::raw_unary(
            "Echo",
            |_ctx: &Context, req: Bytes| Ok(req),
        ))
        .method(MethodDesc::raw_unary(
            "Sleep",
            move |ctx: &Context, _req: Bytes| {
                started.store(true, Ordering::SeqCst);
                // The behaviour under test, not an ordering: a handler
                // still busy when its deadline passes or its client resets.
                if !ctx.sleep(Duration::from_secs(5)) {
                    seen.store(true, Ordering::SeqCst);
                    return Err(Status::cancelled("gave up"));
                }
                Ok(Bytes::new())
            },
        ))
        .method(MethodDesc::raw_bidi(
            "Compress",
            // Asks for gzip, sends the first request back compressed and
            // the rest with message compression off; reports what the
            // API said in the trailers.
            |ctx: &Context, mut reqs: RawRequests, sink: RawSink| {
                let set = match ctx.set_send_compression(Encoding::Gzip) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("{e:?}"),
                };
                let mut trailer = Metadata::new();
                trailer.insert("x-set", &set).unwrap();
                let request = format!("{:?}", ctx.request_encoding());
                trailer.insert("x-request-encoding", &request).unwrap();
                let mut first = true;
                while let Some(m) = reqs.recv()? {
                    sink.send(&m)?;
                    if first {
                        ctx.set_message_compression(false);
                        let late = format!("{:?}", ctx.set_send_compression(Encoding::Identity));
                        trailer.insert("x-late", &late).unwrap();
                        first = false;
                    }
                }
                ctx.set_trailer(&trailer);
                Ok(())
            },
        ))
        .method(MethodDesc::raw_bidi(
            "Bidi",
            |_ctx: &Context, mut reqs: RawRequests, sink: RawSink| {
                while let Some(m) = reqs.recv()? {
                    sink.send(&m)?;
                }
                Ok(())
            },
        ));
    let mut server = Server::builder()
        .max_receive_message_size(1024)
        .event_loops(1)
        .workers(2)
        .unary_interceptor(move |ctx, req, next| {
            o1.lock().unwrap().push("first");
            next(ctx, req)
        })
        .unary_interceptor(move |ctx, req, next| {
            o2.lock().unwrap().push("second");
            next(ctx, req)
        })
        .stream_interceptor(move |_ctx, next| {
            o3.lock().unwrap().push("stream first");
            next()
        })
        .stream_interceptor(move |ctx, next| {
            o4.lock().unwrap().push("stream second");
            if ctx.metadata().get("x-deny").is_some() {
                return Err(Status::permission_denied("denied by the interceptor"));
            }
            next()
        })
        .build();
    server.add_service(service).unwrap();
    let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    TestServer {
        handle,
        sleep_started,
        cancelled_seen,
        order,
    }
}

fn peer(server: &TestServer) -> Peer {
    let mut peer = Peer::connect(server.handle.local_addr());
    peer.handshake();
    peer
}

#[test]
fn unary_round_trip_with_headers_message_and_trailers() {
    let server = start();
    let mut p = peer(&server);
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Echo")
            .fields(grpc_request("e")),
    );
    p.send(frames::data(1, message(b"ping")).eos());
    let (status, headers, body, trailers) = p.expect_full_response(1);
    assert_eq!(status, 200);
    assert_eq!(
        value(&headers, "content-type"),
        Some(&b"application/grpc"[..])
    );
    assert_eq!(body, message(b"ping"));
    assert_eq!(grpc_status(&trailers.unwrap()), (Code::Ok, String::new()));
    assert_eq!(
        *server.order.lock().unwrap(),
        vec!["first", "second"],
        "interceptors in order"
    );
}

#[test]
fn bad_content_type_gets_415_with_a_grpc_status() {
    let server = start();
    let mut p = peer(&server);
    let fields = vec![field("content-type", "text/plain")];
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Echo")
            .fields(fields)
            .eos(),
    );
    let (status, headers, _, trailers) = p.expect_full_response(1);
    assert_eq!(status, 415);
    assert!(trailers.is_none(), "trailers-only");
    assert_eq!(grpc_status(&headers).0, Code::InvalidArgument);
}

#[test]
fn a_get_is_a_stream_protocol_error() {
    let server = start();
    let mut p = peer(&server);
    p.send(
        frames::headers(1)
            .request("GET", "/test.S/Echo")
            .fields(grpc_request("g"))
            .eos(),
    );
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn unknown_service_and_method_and_malformed_paths_are_unimplemented() {
    let server = start();
    let mut p = peer(&server);
    let cases = [
        (1, "/nope.S/Echo", "unknown service nope.S"),
        (3, "/test.S/Nope", "unknown method Nope for service test.S"),
        (5, "/noslash", "malformed method name: \"/noslash\""),
    ];
    for (id, path, text) in cases {
        p.send(
            frames::headers(id)
                .request("POST", path)
                .fields(grpc_request(path))
                .eos(),
        );
        let (status, headers, _, trailers) = p.expect_full_response(id);
        assert_eq!(status, 200);
        assert!(trailers.is_none(), "trailers-only for {path}");
        assert_eq!(
            grpc_status(&headers),
            (Code::Unimplemented, text.to_string())
        );
    }
}

#[test]
fn a_message_over_the_limit_is_refused_from_its_prefix_alone() {
    let server = start();
    let mut p = peer(&server);
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Echo")
            .fields(grpc_request("big")),
    );
    // A prefix announcing 100 MB; the body never comes.
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&(100_000_000u32).to_be_bytes());
    p.send(frames::data(1, prefix));
    let (status, headers, _, trailers) = p.expect_full_response(1);
    assert_eq!(status, 200);
    assert_eq!(
        grpc_status(&trailers.unwrap_or(headers)),
        (
            Code::ResourceExhausted,
            "grpc: received message larger than max (100000000 vs. 1024)".to_string()
        )
    );
    // The rest of the request is stopped (RFC 9113 §8.1), the status stands.
    p.expect_rst(1, Reason::NO_ERROR);
}

#[test]
fn unary_with_zero_or_two_messages_is_internal() {
    let server = start();
    let mut p = peer(&server);
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Echo")
            .fields(grpc_request("zero"))
            .eos(),
    );
    let (_, headers, _, trailers) = p.expect_full_response(1);
    assert_eq!(grpc_status(&trailers.unwrap_or(headers)).0, Code::Internal);

    p.send(
        frames::headers(3)
            .request("POST", "/test.S/Echo")
            .fields(grpc_request("two")),
    );
    let mut two = message(b"a");
    two.extend(message(b"b"));
    p.send(frames::data(3, two).eos());
    let (_, headers, _, trailers) = p.expect_full_response(3);
    assert_eq!(grpc_status(&trailers.unwrap_or(headers)).0, Code::Internal);
}

#[test]
fn malformed_grpc_timeout_is_internal_and_unknown_encoding_unimplemented() {
    let server = start();
    let mut p = peer(&server);
    let mut fields = grpc_request("t");
    fields.push(field("grpc-timeout", "12x"));
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Echo")
            .fields(fields)
            .eos(),
    );
    let (_, headers, _, _) = p.expect_full_response(1);
    assert_eq!(grpc_status(&headers).0, Code::Internal);

    let mut fields = grpc_request("e");
    fields.push(field("grpc-encoding", "snappy"));
    p.send(
        frames::headers(3)
            .request("POST", "/test.S/Echo")
            .fields(fields)
            .eos(),
    );
    let (_, headers, _, _) = p.expect_full_response(3);
    assert_eq!(grpc_status(&headers).0, Code::Unimplemented);
}

/// Runs `/test.S/Compress` with two 512-byte zero messages; returns the
/// response headers, each response message's (compressed flag, length),
/// and the trailers.
fn compress_call(
    p: &mut Peer,
    extra: &[HeaderField],
) -> (HeaderList, Vec<(u8, usize)>, HeaderList) {
    let mut fields = grpc_request("compress");
    fields.extend_from_slice(extra);
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Compress")
            .fields(fields),
    );
    let zeros = [0u8; 512]; // under the test server's 1 KiB receive limit
    p.send(frames::data(1, message(&zeros)));
    p.send(frames::data(1, message(&zeros)).eos());
    let (_, headers, body, trailers) = p.expect_full_response(1);
    let mut messages = Vec::new();
    let mut rest = &body[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        messages.push((rest[0], len));
        rest = &rest[5 + len..];
    }
    (headers, messages, trailers.expect("trailers"))
}

#[test]
fn a_handler_picks_gzip_per_call_and_turns_it_off_per_message() {
    let server = start();
    let mut p = peer(&server);
    let (headers, messages, trailers) =
        compress_call(&mut p, &[field("grpc-accept-encoding", "identity, gzip")]);
    assert_eq!(value(&headers, "grpc-encoding"), Some(&b"gzip"[..]));
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0].0, 1, "the first message is compressed");
    assert!(messages[0].1 < 512, "512 zeros shrink: {messages:?}");
    assert_eq!(messages[1], (0, 512), "the second goes plain");
    assert_eq!(value(&trailers, "x-set"), Some(&b"ok"[..]));
    assert_eq!(value(&trailers, "x-late"), Some(&b"Err(HeadersSent)"[..]));
    assert_eq!(
        value(&trailers, "x-request-encoding"),
        Some(&b"Identity"[..])
    );
    assert_eq!(grpc_status(&trailers).0, Code::Ok);
}

#[test]
fn gzip_is_refused_for_a_client_that_does_not_accept_it() {
    let server = start();
    let mut p = peer(&server);
    // A gzip-encoded call (its messages happen to be plain) that accepts
    // only identity back.
    let (headers, messages, trailers) = compress_call(
        &mut p,
        &[
            field("grpc-encoding", "gzip"),
            field("grpc-accept-encoding", "identity"),
        ],
    );
    assert_eq!(value(&headers, "grpc-encoding"), None);
    assert_eq!(messages, vec![(0, 512), (0, 512)]);
    assert_eq!(value(&trailers, "x-set"), Some(&b"NotAccepted(Gzip)"[..]));
    assert_eq!(value(&trailers, "x-request-encoding"), Some(&b"Gzip"[..]));
}

#[test]
fn the_deadline_sends_deadline_exceeded_then_no_error_reset_to_a_client_still_sending() {
    let server = start();
    let mut p = peer(&server);
    let mut fields = grpc_request("sleep");
    fields.push(field("grpc-timeout", "100m"));
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Sleep")
            .fields(fields),
    );
    // The request is never half-closed: the client is still "sending".
    p.send(frames::data(1, message(b"")));
    let trailers = p.expect("trailers", |f| match f {
        Frame::Headers(h) if h.stream_id.value() == 1 && h.end_stream => h.block.fields().cloned(),
        _ => None,
    });
    assert_eq!(grpc_status(&trailers).0, Code::DeadlineExceeded);
    // NO_ERROR: a C-core client reading a CANCEL here reports CANCELLED.
    p.expect_rst(1, Reason::NO_ERROR);
}

#[test]
fn the_deadline_sends_deadline_exceeded_and_the_handler_sees_it() {
    let server = start();
    let mut p = peer(&server);
    let mut fields = grpc_request("sleep");
    fields.push(field("grpc-timeout", "100m"));
    let started = Instant::now();
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Sleep")
            .fields(fields),
    );
    p.send(frames::data(1, message(b"")).eos());
    let (_, headers, _, trailers) = p.expect_full_response(1);
    assert_eq!(
        grpc_status(&trailers.unwrap_or(headers)).0,
        Code::DeadlineExceeded
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        wait_until(|| server.cancelled_seen.load(Ordering::SeqCst), PATIENCE),
        "the handler saw the cancellation"
    );
}

#[test]
fn a_client_reset_cancels_the_handler() {
    let server = start();
    let mut p = peer(&server);
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Sleep")
            .fields(grpc_request("s")),
    );
    p.send(frames::data(1, message(b"")).eos());
    // Reset a running handler (one not started yet never starts).
    assert!(wait_until(
        || server.sleep_started.load(Ordering::SeqCst),
        PATIENCE
    ));
    p.send(frames::rst(1, Reason::CANCEL));
    assert!(
        wait_until(|| server.cancelled_seen.load(Ordering::SeqCst), PATIENCE),
        "the handler saw the cancellation"
    );
    p.expect_alive();
}

#[test]
fn bidi_streams_echo_in_order() {
    let server = start();
    let mut p = peer(&server);
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Bidi")
            .fields(grpc_request("b")),
    );
    let mut body = Vec::new();
    for i in 0..10u8 {
        body.extend(message(&[i; 10]));
    }
    p.send(frames::data(1, body.clone()).eos());
    let (status, _, echoed, trailers) = p.expect_full_response(1);
    assert_eq!(status, 200);
    assert_eq!(echoed, body);
    assert_eq!(grpc_status(&trailers.unwrap()).0, Code::Ok);
    assert_eq!(
        *server.order.lock().unwrap(),
        vec!["stream first", "stream second"]
    );

    // An interceptor can answer instead of the handler.
    let mut fields = grpc_request("b");
    fields.push(field("x-deny", "1"));
    p.send(
        frames::headers(3)
            .request("POST", "/test.S/Bidi")
            .fields(fields),
    );
    p.send(frames::data(3, message(b"x")).eos());
    let (_, headers, _, trailers) = p.expect_full_response(3);
    assert_eq!(
        grpc_status(&trailers.unwrap_or(headers)),
        (
            Code::PermissionDenied,
            "denied by the interceptor".to_string()
        )
    );
}

#[test]
fn registering_twice_or_after_start_is_an_error() {
    let mut server = Server::builder().build();
    let service = || {
        ServiceDesc::new("x.Y").method(MethodDesc::raw_unary("M", |_c: &Context, r: Bytes| Ok(r)))
    };
    server.add_service(service()).unwrap();
    assert!(matches!(
        server.add_service(service()),
        Err(ServerError::DuplicateService(_))
    ));
    let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(matches!(
        server.add_service(ServiceDesc::new("z.Z")),
        Err(ServerError::AlreadyStarted)
    ));
    handle.stop();
}

#[test]
fn graceful_stop_sends_goaway_and_lets_the_running_call_finish() {
    let server = start();
    let mut p = peer(&server);
    p.send(
        frames::headers(1)
            .request("POST", "/test.S/Echo")
            .fields(grpc_request("g")),
    );
    let handle = &server.handle;
    std::thread::scope(|s| {
        let stopper = s.spawn(|| handle.graceful_stop_timeout(Some(Duration::from_secs(5))));
        let goaway = p.expect("GOAWAY", |f| match f {
            Frame::GoAway(g) => Some(g.clone()),
            _ => None,
        });
        assert_eq!(goaway.reason, Reason::NO_ERROR);
        // The call in flight still completes (the final GOAWAY, naming
        // stream 1 as the last, may arrive meanwhile).
        p.send(frames::data(1, message(b"late")).eos());
        let mut body = Vec::new();
        let mut last_goaway = None;
        loop {
            match p.recv() {
                Frame::Data(d) if d.stream_id.value() == 1 => body.extend_from_slice(&d.payload),
                Frame::Headers(h) if h.stream_id.value() == 1 && h.end_stream => break,
                Frame::GoAway(g) => last_goaway = Some(g.last_stream_id.value()),
                _ => {}
            }
        }
        // The final GOAWAY follows our PING ack, which this peer sends
        // only after the DATA above: it may come after the response too.
        while last_goaway.is_none() {
            if let Frame::GoAway(g) = p.recv() {
                last_goaway = Some(g.last_stream_id.value());
            }
        }
        assert_eq!(body, message(b"late"));
        assert_eq!(
            last_goaway,
            Some(1),
            "the final GOAWAY names the last stream"
        );
        stopper.join().unwrap();
    });
}

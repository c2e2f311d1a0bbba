//! The server's execution model over real sockets: callback (reactor)
//! handlers inline and on the pool, panics in every kind of handler
//! answered with INTERNAL, an inline streaming handler facing a client that
//! does not read (its loop keeps serving others), and blocking streaming
//! handlers bounded apart from unary ones (refused at once past the bound,
//! never a silent queue).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use common::wait::{wait_until, PATIENCE};
use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::grpc::{Code, Status};
use mio_grpc::server::{
    Context, MethodDesc, MethodKind, RawRequests, RawSink, SendError, SendState, Server,
    ServerCall, ServerHandle, ServerReactor, ServiceDesc,
};

/// Echoes each message; ends OK when the client does.
struct Echo;

impl ServerReactor for Echo {
    fn on_message(&mut self, call: &ServerCall, message: Bytes) {
        call.send(&message).unwrap();
    }
    fn on_half_close(&mut self, call: &ServerCall) {
        call.finish(Status::ok());
    }
}

/// Panics on its first message.
struct Bomb;

impl ServerReactor for Bomb {
    fn on_message(&mut self, _call: &ServerCall, _message: Bytes) {
        panic!("boom (a test of panicking reactors)");
    }
}

/// Sends `total` messages of `size` bytes after the request, respecting
/// readiness; counts how often the queue was full.
struct Flood {
    sent: usize,
    total: usize,
    size: usize,
    fulls: Arc<AtomicUsize>,
}

impl Flood {
    fn pump(&mut self, call: &ServerCall) {
        let message = vec![7u8; self.size];
        while self.sent < self.total {
            match call.send(&message) {
                Ok(SendState::Ready) => self.sent += 1,
                Ok(SendState::Full) => {
                    self.sent += 1;
                    self.fulls.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Err(SendError::NotReady) => return,
                Err(SendError::Closed(_)) => return,
            }
        }
        call.finish(Status::ok());
    }
}

impl ServerReactor for Flood {
    fn on_message(&mut self, _call: &ServerCall, _message: Bytes) {}
    fn on_half_close(&mut self, call: &ServerCall) {
        self.pump(call);
    }
    fn on_ready(&mut self, call: &ServerCall) {
        self.pump(call);
    }
}

const FLOOD_MESSAGES: usize = 400;
const FLOOD_SIZE: usize = 16 * 1024;

fn service(fulls: Arc<AtomicUsize>) -> ServiceDesc {
    ServiceDesc::new("t.Cb")
        .method(MethodDesc::callback_unary("Echo", |call, request| {
            call.finish_with_message(&request);
        }))
        .method(MethodDesc::reactor(
            "Bidi",
            MethodKind::BidiStreaming,
            |_| Box::new(Echo),
        ))
        .method(
            MethodDesc::reactor("PooledBidi", MethodKind::BidiStreaming, |_| Box::new(Echo))
                .on_pool(),
        )
        .method(MethodDesc::reactor(
            "Bomb",
            MethodKind::BidiStreaming,
            |_| Box::new(Bomb),
        ))
        .method(MethodDesc::reactor("PooledBomb", MethodKind::Unary, |_| Box::new(Bomb)).on_pool())
        .method(MethodDesc::reactor(
            "FactoryBomb",
            MethodKind::Unary,
            |_| -> Box<dyn ServerReactor> { panic!("boom (a factory that panics)") },
        ))
        .method(MethodDesc::reactor(
            "Flood",
            MethodKind::ServerStreaming,
            move |_| {
                Box::new(Flood {
                    sent: 0,
                    total: FLOOD_MESSAGES,
                    size: FLOOD_SIZE,
                    fulls: fulls.clone(),
                })
            },
        ))
        .method(MethodDesc::raw_unary("BlockingBomb", |_ctx, _req| {
            panic!("boom (a blocking unary handler)")
        }))
        .method(MethodDesc::raw_bidi(
            "BlockingBidiBomb",
            |_ctx: &Context, _reqs: RawRequests, _sink: RawSink| panic!("boom (a blocking bidi)"),
        ))
        .method(MethodDesc::raw_bidi(
            "Hold",
            |_ctx: &Context, mut reqs: RawRequests, _sink: RawSink| {
                while reqs.recv()?.is_some() {}
                Ok(())
            },
        ))
}

fn start(
    configure: impl FnOnce(&mut mio_grpc::server::ServerConfig),
) -> (ServerHandle, Arc<AtomicUsize>) {
    let fulls = Arc::new(AtomicUsize::new(0));
    let mut server = Server::builder().event_loops(1).config(configure).build();
    server.add_service(service(fulls.clone())).unwrap();
    (server.start("127.0.0.1:0".parse().unwrap()).unwrap(), fulls)
}

fn channel(server: &ServerHandle) -> Channel {
    Channel::new(
        &format!("127.0.0.1:{}", server.local_addr().port()),
        ChannelOptions::default(),
    )
    .unwrap()
}

fn opts() -> CallOptions {
    CallOptions::default().timeout(PATIENCE)
}

#[test]
fn callback_handlers_answer_inline_and_on_the_pool() {
    let (server, _) = start(|_| {});
    let channel = channel(&server);
    let reply = channel
        .unary_raw("/t.Cb/Echo", Bytes::from_static(b"hi"), opts())
        .unwrap();
    assert_eq!(&reply[..], b"hi");
    for method in ["/t.Cb/Bidi", "/t.Cb/PooledBidi"] {
        let call = channel.streaming_raw(method, opts()).unwrap();
        for i in 0..100u32 {
            call.send(&i.to_be_bytes()).unwrap();
            assert_eq!(
                call.recv().unwrap().unwrap()[..],
                i.to_be_bytes(),
                "{method}"
            );
        }
        call.close_send().unwrap();
        assert_eq!(call.recv().unwrap(), None);
        assert_eq!(call.finish().0.code(), Code::Ok, "{method}");
    }
}

#[test]
fn every_kind_of_panicking_handler_is_answered_with_internal() {
    for inline in [false, true] {
        let (server, _) = start(|c| c.inline_handlers = inline);
        let channel = channel(&server);
        let unary = [
            "/t.Cb/BlockingBomb",
            "/t.Cb/PooledBomb",
            "/t.Cb/FactoryBomb",
        ];
        for method in unary {
            let err = channel
                .unary_raw(method, Bytes::from_static(b"x"), opts())
                .unwrap_err();
            assert_eq!(err.code(), Code::Internal, "{method} (inline {inline})");
            assert_eq!(err.message(), "handler panicked", "{method}");
        }
        for method in ["/t.Cb/Bomb", "/t.Cb/BlockingBidiBomb"] {
            let call = channel.streaming_raw(method, opts()).unwrap();
            let _ = call.send(b"x");
            let _ = call.close_send();
            while let Ok(Some(_)) = call.recv() {}
            let (status, _) = call.finish();
            assert_eq!(status.code(), Code::Internal, "{method} (inline {inline})");
            assert_eq!(status.message(), "handler panicked", "{method}");
        }
        // The loop and the workers carry on, and the panics are counted.
        let reply = channel
            .unary_raw("/t.Cb/Echo", Bytes::from_static(b"after"), opts())
            .unwrap();
        assert_eq!(&reply[..], b"after");
        let fresh = self::channel(&server);
        assert!(fresh
            .unary_raw("/t.Cb/Echo", Bytes::from_static(b"new conn"), opts())
            .is_ok());
        assert_eq!(server.stats().handler_panics, 5, "inline {inline}");
    }
}

#[test]
fn an_inline_streaming_reactor_facing_a_client_that_does_not_read_leaves_its_loop_free() {
    // One loop: the flood's connection and the neighbour's share it.
    let (server, fulls) = start(|_| {});
    let flood_channel = channel(&server);
    let flood = flood_channel.streaming_raw("/t.Cb/Flood", opts()).unwrap();
    flood.send(b"go").unwrap();
    flood.close_send().unwrap();
    // The reactor fills the stream's queue (the client reads nothing, so
    // its windows close) and is told to stop.
    assert!(wait_until(|| fulls.load(Ordering::SeqCst) > 0, PATIENCE));
    let (queued, _) = server.queued_bytes();
    assert!(queued < 1 << 20, "queued {queued} bytes for one stream");
    // Meanwhile the loop serves another connection.
    let neighbour = channel(&server);
    for i in 0..20u8 {
        let reply = neighbour
            .unary_raw("/t.Cb/Echo", Bytes::from(vec![i]), opts())
            .unwrap();
        assert_eq!(&reply[..], &[i]);
    }
    // Reading resumes the reactor (on_ready), to the end, in order.
    let mut got = 0;
    while let Some(message) = flood.recv().unwrap() {
        assert_eq!(message.len(), FLOOD_SIZE);
        got += 1;
    }
    assert_eq!(got, FLOOD_MESSAGES);
    assert_eq!(flood.finish().0.code(), Code::Ok);
    assert!(fulls.load(Ordering::SeqCst) > 1, "resumed more than once");
}

#[test]
fn idle_blocking_streams_are_bounded_apart_from_unary_calls_and_refused_past_it() {
    let (server, _) = start(|c| {
        c.max_stream_workers = 3;
        c.max_workers = 2;
        c.workers = 1;
    });
    let channel = channel(&server);
    let holders: Vec<_> = (0..3)
        .map(|_| {
            let call = channel.streaming_raw("/t.Cb/Hold", opts()).unwrap();
            call.send(b"x").unwrap();
            call
        })
        .collect();
    assert!(wait_until(|| server.stats().workers_busy == 3, PATIENCE));
    // A fourth stream is refused at once, not queued.
    let start = Instant::now();
    let extra = channel.streaming_raw("/t.Cb/Hold", opts()).unwrap();
    let _ = extra.send(b"x");
    let (status, _) = extra.finish();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(start.elapsed() < PATIENCE / 2);
    assert_eq!(server.stats().refused_calls, 1);
    // Unary calls are not starved by the held streams.
    for _ in 0..10 {
        assert!(channel
            .unary_raw("/t.Cb/Echo", Bytes::from_static(b"u"), opts())
            .is_ok());
    }
    // Once the holders end, streams are served again.
    for call in &holders {
        call.close_send().unwrap();
        assert_eq!(call.recv().unwrap(), None);
    }
    assert!(wait_until(|| server.stats().workers_busy == 0, PATIENCE));
    let again = channel.streaming_raw("/t.Cb/Hold", opts()).unwrap();
    again.close_send().unwrap();
    assert_eq!(again.recv().unwrap(), None);
    assert_eq!(again.finish().0.code(), Code::Ok);
}

/// With `inline_handlers`, a blocking server-streaming handler used to run
/// on the loop and wait there for write quota only that loop could refill:
/// its loop froze. Blocking streaming handlers now always run on a worker.
#[test]
fn a_blocking_streaming_handler_with_inline_handlers_does_not_freeze_its_loop() {
    let mut server = Server::builder()
        .event_loops(1)
        .inline_handlers(true)
        .build();
    let service = ServiceDesc::new("t.Old")
        .method(MethodDesc::raw_unary("Echo", |_ctx, req| Ok(req)))
        .method(MethodDesc::raw_bidi(
            "Unused",
            |_ctx: &Context, _reqs: RawRequests, _sink: RawSink| Ok(()),
        ));
    let service = service.method(MethodDesc::server_streaming(
        "Flood",
        |_ctx: &Context, _req: (), sink: mio_grpc::server::ResponseSink<Vec<u8>>| {
            for _ in 0..FLOOD_MESSAGES {
                sink.send(&vec![7u8; FLOOD_SIZE])?;
            }
            Ok(())
        },
    ));
    server.add_service(service).unwrap();
    let server = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let flood_channel = channel(&server);
    let flood = flood_channel.streaming_raw("/t.Old/Flood", opts()).unwrap();
    flood.send(b"").unwrap();
    flood.close_send().unwrap();
    // The handler fills the stream's queue and waits (the client reads
    // nothing). The loop must still serve a neighbour.
    assert!(wait_until(|| server.queued_bytes().0 > 0, PATIENCE));
    let neighbour = channel(&server);
    let short = CallOptions::default().timeout(PATIENCE / 4);
    let reply = neighbour
        .unary_raw("/t.Old/Echo", Bytes::from_static(b"n"), short)
        .unwrap();
    assert_eq!(&reply[..], b"n");
    let mut got = 0;
    while flood.recv().unwrap().is_some() {
        got += 1;
    }
    assert_eq!(got, FLOOD_MESSAGES);
}

/// Stream interceptors guard callback methods too: they run around the
/// making of each call's reactor, and one that refuses ends the call with
/// its status before any callback.
#[test]
fn stream_interceptors_guard_callback_methods() {
    let fulls = Arc::new(AtomicUsize::new(0));
    let mut server = Server::builder()
        .event_loops(1)
        .stream_interceptor(|ctx, next| {
            if ctx.metadata().get("authorization") != Some("Bearer ok") {
                return Err(Status::new(Code::Unauthenticated, "no token"));
            }
            next()
        })
        .build();
    server.add_service(service(fulls)).unwrap();
    let server = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let channel = channel(&server);
    let mut token = mio_grpc::grpc::Metadata::new();
    token.insert("authorization", "Bearer ok").unwrap();
    for method in ["/t.Cb/Echo", "/t.Cb/PooledBomb"] {
        let err = channel
            .unary_raw(method, Bytes::from_static(b"x"), opts())
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{method}");
    }
    let reply = channel
        .unary_raw(
            "/t.Cb/Echo",
            Bytes::from_static(b"x"),
            opts().metadata(token.clone()),
        )
        .unwrap();
    assert_eq!(&reply[..], b"x");
    let call = channel.streaming_raw("/t.Cb/Bidi", opts()).unwrap();
    let _ = call.send(b"x");
    let _ = call.close_send();
    while let Ok(Some(_)) = call.recv() {}
    assert_eq!(call.finish().0.code(), Code::Unauthenticated);
    let call = channel
        .streaming_raw("/t.Cb/Bidi", opts().metadata(token))
        .unwrap();
    call.send(b"y").unwrap();
    assert_eq!(&call.recv().unwrap().unwrap()[..], b"y");
    call.close_send().unwrap();
    assert_eq!(call.recv().unwrap(), None);
    assert_eq!(call.finish().0.code(), Code::Ok);
    assert_eq!(server.stats().handler_panics, 0, "refused before the bomb");
}

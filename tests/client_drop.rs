//! Dropping client objects anywhere: the last `Channel` clone dropped on
//! the channel's own event-loop thread (inside a completion callback) or
//! outlived by a call it started must neither panic nor deadlock; and
//! dropping an unfinished `UnaryCall` cancels it (RST_STREAM CANCEL: the
//! server's handler sees the cancellation), unless a completion callback
//! was registered on it (the callback owns the call then).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::wait::{wait_until, PATIENCE};
use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::grpc::{Code, Status};
use mio_grpc::server::{Context, MethodDesc, Server, ServerHandle, ServiceDesc};

/// Panics on any thread of this test binary, by message (a panic on a
/// loop thread would otherwise go unseen by the test thread).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            PANICS.lock().unwrap().push(format!("{thread}: {info}"));
            default(info);
        }));
    });
}

fn panics() -> Vec<String> {
    PANICS.lock().unwrap().clone()
}

/// What the server's handlers saw.
#[derive(Default)]
struct Seen {
    /// `Hold` calls started.
    started: AtomicUsize,
    /// `Hold` calls that saw their cancellation.
    cancelled: AtomicUsize,
    /// `Hold` calls that ran to their end without a cancellation.
    finished: AtomicUsize,
    /// Opened by the test to let `Gate` calls answer.
    gate_open: AtomicBool,
}

fn server(seen: Arc<Seen>) -> ServerHandle {
    let hold = seen.clone();
    let gate = seen;
    let service = ServiceDesc::new("t.D")
        .method(MethodDesc::raw_unary(
            "Echo",
            |_ctx: &Context, req: Bytes| Ok(req),
        ))
        .method(MethodDesc::raw_unary(
            "Hold",
            move |ctx: &Context, _req: Bytes| {
                hold.started.fetch_add(1, Ordering::SeqCst);
                // Runs until cancelled (the cancellation wakes the sleep);
                // a minute bounds a test whose cancellation never comes.
                if ctx.sleep(Duration::from_secs(60)) {
                    hold.finished.fetch_add(1, Ordering::SeqCst);
                } else {
                    hold.cancelled.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Bytes::new())
            },
        ))
        .method(MethodDesc::raw_unary(
            "Gate",
            move |ctx: &Context, req: Bytes| {
                // Answers once the test opens the gate (or the call ends).
                let open = wait_until(
                    || gate.gate_open.load(Ordering::SeqCst) || ctx.is_cancelled(),
                    PATIENCE,
                );
                assert!(open, "the gate never opened");
                Ok(req)
            },
        ));
    let mut server = Server::builder().event_loops(1).build();
    server.add_service(service).unwrap();
    server.start("127.0.0.1:0".parse().unwrap()).unwrap()
}

fn channel(server: &ServerHandle) -> Channel {
    Channel::new(
        &format!("127.0.0.1:{}", server.local_addr().port()),
        ChannelOptions::default(),
    )
    .unwrap()
}

fn echo_works(channel: &Channel) {
    let reply = channel
        .unary_raw(
            "/t.D/Echo",
            Bytes::from_static(b"still here"),
            CallOptions::default().timeout(PATIENCE),
        )
        .unwrap();
    assert_eq!(&reply[..], b"still here");
}

#[test]
fn the_last_channel_dropped_inside_a_completion_callback_does_not_panic() {
    record_panics();
    let seen = Arc::new(Seen::default());
    let server = server(seen);
    let channel = channel(&server);
    echo_works(&channel);
    let call = channel.start_unary_raw(
        "/t.D/Echo",
        Bytes::from_static(b"x"),
        CallOptions::default().timeout(PATIENCE),
    );
    let (done_tx, done) = crossbeam_channel::bounded(1);
    // The callback owns the last clone: it is dropped on the loop thread.
    call.on_result(move |result| {
        let on_loop = mio_grpc::runtime::on_loop_thread();
        drop(channel);
        let _ = done_tx.send((result.clone(), on_loop));
    });
    let (result, on_loop) = done.recv_timeout(PATIENCE).expect("the callback ran");
    assert_eq!(&result.unwrap()[..], b"x");
    assert!(on_loop, "the callback ran on the loop thread");
    // The handle's result is published after the callback returns: a
    // panic in the drop would leave it unset.
    assert!(
        call.wait_timeout(PATIENCE).is_some(),
        "the call never ended"
    );
    assert_eq!(panics(), Vec::<String>::new());
    // The process goes on, and another channel works.
    let again = self::channel(&server);
    echo_works(&again);
    drop(again);
    assert_eq!(panics(), Vec::<String>::new());
}

#[test]
fn a_call_that_outlives_its_channel_completes() {
    record_panics();
    let seen = Arc::new(Seen::default());
    let server = server(seen.clone());
    let channel = channel(&server);
    let call = channel.start_unary_raw(
        "/t.D/Gate",
        Bytes::from_static(b"late"),
        CallOptions::default().timeout(PATIENCE),
    );
    // The only `Channel` goes while its call is in flight.
    drop(channel);
    seen.gate_open.store(true, Ordering::SeqCst);
    let result = call.wait_timeout(PATIENCE).expect("the call ended");
    assert_eq!(&result.unwrap()[..], b"late");
    // The call's end released the channel, on the loop thread: its loops
    // stop without a panic, and a new channel works.
    assert_eq!(panics(), Vec::<String>::new());
    echo_works(&self::channel(&server));
    assert_eq!(panics(), Vec::<String>::new());
}

#[test]
fn channels_dropped_from_callbacks_with_several_loops_do_not_panic() {
    record_panics();
    let seen = Arc::new(Seen::default());
    let server = server(seen);
    for _ in 0..20 {
        let channel = Channel::new(
            &format!("127.0.0.1:{}", server.local_addr().port()),
            ChannelOptions {
                event_loops: 2,
                ..ChannelOptions::default()
            },
        )
        .unwrap();
        let call = channel.start_unary_raw(
            "/t.D/Echo",
            Bytes::from_static(b"y"),
            CallOptions::default().timeout(PATIENCE),
        );
        let (done_tx, done) = crossbeam_channel::bounded(1);
        call.on_complete(move |status| {
            drop(channel);
            let _ = done_tx.send(status.code());
        });
        assert_eq!(done.recv_timeout(PATIENCE).unwrap(), Code::Ok);
        drop(call);
    }
    assert_eq!(panics(), Vec::<String>::new());
}

#[test]
fn dropping_an_unfinished_unary_call_cancels_it_on_the_server() {
    record_panics();
    let seen = Arc::new(Seen::default());
    let server = server(seen.clone());
    let channel = channel(&server);
    let call = channel.start_unary_raw("/t.D/Hold", Bytes::new(), CallOptions::default());
    assert!(wait_until(
        || seen.started.load(Ordering::SeqCst) == 1,
        PATIENCE
    ));
    let dropped = Instant::now();
    drop(call);
    // The handler's sleep (a minute) ends early: RST_STREAM CANCEL came.
    assert!(
        wait_until(|| seen.cancelled.load(Ordering::SeqCst) == 1, PATIENCE),
        "the handler never saw the cancellation"
    );
    assert!(dropped.elapsed() < PATIENCE);
    assert_eq!(seen.finished.load(Ordering::SeqCst), 0);
    // The channel is fine.
    echo_works(&channel);
}

#[test]
fn a_dropped_unary_call_with_a_callback_runs_to_its_end() {
    record_panics();
    let seen = Arc::new(Seen::default());
    let server = server(seen.clone());
    let channel = channel(&server);
    let call = channel.start_unary_raw(
        "/t.D/Gate",
        Bytes::from_static(b"wanted"),
        CallOptions::default().timeout(PATIENCE),
    );
    let (done_tx, done) = crossbeam_channel::bounded::<Result<Bytes, Status>>(1);
    call.on_result(move |result| {
        let _ = done_tx.send(result.clone());
    });
    // The callback owns the call now: dropping the handle does not cancel.
    drop(call);
    seen.gate_open.store(true, Ordering::SeqCst);
    let result = done.recv_timeout(PATIENCE).expect("the callback ran");
    assert_eq!(&result.unwrap()[..], b"wanted");
}

#[test]
fn a_finished_unary_call_dropped_cancels_nothing() {
    record_panics();
    let seen = Arc::new(Seen::default());
    let server = server(seen);
    let channel = channel(&server);
    let call = channel.start_unary_raw(
        "/t.D/Echo",
        Bytes::from_static(b"z"),
        CallOptions::default(),
    );
    assert!(wait_until(|| call.try_get().is_some(), PATIENCE));
    drop(call);
    // `wait` consumes the handle after the end: nothing to cancel either.
    let call = channel.start_unary_raw(
        "/t.D/Echo",
        Bytes::from_static(b"z"),
        CallOptions::default(),
    );
    assert_eq!(&call.wait().unwrap()[..], b"z");
    echo_works(&channel);
}

//! The gRPC client against our server over real sockets: the four RPC
//! kinds, statuses, metadata, deadlines and cancellation both ways,
//! thousands of calls in flight through completion handles, calls queued
//! under MAX_CONCURRENT_STREAMS = 1, a dead target, wait-for-ready, and the
//! connectivity states; and, against a scripted raw server, responses our
//! server never sends (message compression the headers do not back).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::wait::{wait_until, PATIENCE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio_grpc::client::{CallOptions, Channel, ChannelOptions, ConnectivityState};
use mio_grpc::grpc::{Code, Metadata, Status};
use mio_grpc::server::{
    Context, MethodDesc, RawRequests, RawSink, Server, ServerHandle, ServiceDesc,
};

fn service() -> ServiceDesc {
    ServiceDesc::new("t.S")
        .method(MethodDesc::raw_unary(
            "Echo",
            |ctx: &Context, req: Bytes| {
                let mut trailers = Metadata::new();
                if let Some(v) = ctx.metadata().get("x-echo") {
                    trailers.insert("x-echo", v).unwrap();
                }
                ctx.set_trailer(&trailers);
                Ok(req)
            },
        ))
        .method(MethodDesc::raw_unary(
            "Fail",
            |_ctx: &Context, req: Bytes| {
                Err(Status::new(
                    Code::from_i32(i32::from(req.first().copied().unwrap_or(2))),
                    "ünïcødé failure",
                ))
            },
        ))
        .method(MethodDesc::raw_unary(
            "Sleep",
            |ctx: &Context, _req: Bytes| {
                // The behaviour under test, not an ordering: a call still
                // running when its deadline passes or it is cancelled.
                ctx.sleep(Duration::from_secs(3));
                Ok(Bytes::new())
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
        ))
}

fn server(max_streams: u32) -> ServerHandle {
    let mut server = Server::builder()
        .max_concurrent_streams(max_streams)
        .event_loops(1)
        .build();
    server.add_service(service()).unwrap();
    server.start("127.0.0.1:0".parse().unwrap()).unwrap()
}

fn channel(server: &ServerHandle) -> Channel {
    Channel::new(
        &format!("127.0.0.1:{}", server.local_addr().port()),
        ChannelOptions::default(),
    )
    .unwrap()
}

#[test]
fn unary_round_trip_and_trailing_metadata() {
    let server = server(100);
    let channel = channel(&server);
    assert_eq!(channel.state(false), ConnectivityState::Idle, "lazy");
    let reply = channel
        .unary_raw(
            "/t.S/Echo",
            Bytes::from_static(b"hello"),
            CallOptions::default(),
        )
        .unwrap();
    assert_eq!(&reply[..], b"hello");
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    let mut md = Metadata::new();
    md.insert("x-echo", "yes").unwrap();
    let call = channel
        .streaming_raw("/t.S/Echo", CallOptions::default().metadata(md))
        .unwrap();
    call.send(b"x").unwrap();
    call.close_send().unwrap();
    assert_eq!(&call.recv().unwrap().unwrap()[..], b"x");
    assert_eq!(call.recv().unwrap(), None);
    let (status, trailers) = call.finish();
    assert_eq!(status.code(), Code::Ok);
    assert_eq!(trailers.get("x-echo"), Some("yes"));
}

#[test]
fn every_error_code_comes_back_with_its_message() {
    let server = server(100);
    let channel = channel(&server);
    for code in 1..=16u8 {
        let err = channel
            .unary_raw("/t.S/Fail", Bytes::from(vec![code]), CallOptions::default())
            .unwrap_err();
        assert_eq!(err.code(), Code::from_i32(i32::from(code)));
        assert_eq!(err.message(), "ünïcødé failure");
    }
    let err = channel
        .unary_raw("/t.S/Nope", Bytes::new(), CallOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

#[test]
fn bidi_streams_in_order_with_large_messages() {
    let server = server(100);
    let channel = channel(&server);
    let call = channel
        .streaming_raw("/t.S/Bidi", CallOptions::default())
        .unwrap();
    for i in 0..5u8 {
        let message = vec![i; 1 << 20];
        call.send(&message).unwrap();
        assert_eq!(call.recv().unwrap().unwrap().len(), 1 << 20);
    }
    call.close_send().unwrap();
    assert_eq!(call.recv().unwrap(), None);
    assert_eq!(call.finish().0.code(), Code::Ok);
}

/// What a message callback saw: messages in order, then the end.
type Seen = Arc<parking_lot::Mutex<(Vec<Bytes>, Option<Result<(), Status>>)>>;

/// Waits for the callback to see the end. Fails only if it stalls (no new
/// message and no end for [`PATIENCE`]), not if a loaded machine makes
/// the whole run slow.
fn wait_for_end(seen: &Seen) -> (Vec<Bytes>, Result<(), Status>) {
    loop {
        let before = seen.lock().0.len();
        let moved = wait_until(
            || {
                let s = seen.lock();
                s.1.is_some() || s.0.len() > before
            },
            PATIENCE,
        );
        let s = seen.lock();
        if let Some(end) = &s.1 {
            return (s.0.clone(), end.clone());
        }
        assert!(moved, "the callback stalled after {before} messages");
    }
}

#[test]
fn a_ping_pong_driven_from_the_message_callback_runs_to_a_clean_end() {
    let server = server(100);
    let channel = channel(&server);
    let call = Arc::new(
        channel
            .streaming_raw("/t.S/Bidi", CallOptions::default())
            .unwrap(),
    );
    let seen: Seen = Default::default();
    let (sender, log) = (Arc::clone(&call), Arc::clone(&seen));
    let mut next = 1u32;
    call.on_message(move |result| {
        let mut log = log.lock();
        match result {
            Ok(Some(message)) => {
                log.0.push(message);
                // Send the next one from the callback (the loop thread).
                if next < 200 {
                    sender.send(&next.to_be_bytes()).unwrap();
                    next += 1;
                } else {
                    sender.close_send().unwrap();
                }
            }
            Ok(None) => log.1 = Some(Ok(())),
            Err(status) => log.1 = Some(Err(status)),
        }
    });
    call.send(&0u32.to_be_bytes()).unwrap();
    let (messages, end) = wait_for_end(&seen);
    assert!(end.is_ok(), "{end:?}");
    let expected: Vec<Bytes> = (0..200u32)
        .map(|i| Bytes::copy_from_slice(&i.to_be_bytes()))
        .collect();
    assert_eq!(messages, expected);
    // Messages went to the callback, not to recv.
    assert_eq!(call.recv().unwrap(), None);
}

/// DATA payload octets received (frame headers taken out).
fn data_payload_in(stats: &mio_grpc::conn::ConnStats) -> u64 {
    stats.bytes_in_by_type.data - 9 * stats.frames_in.data
}

#[test]
fn the_message_callback_gets_messages_that_arrived_before_it_and_a_failure_as_the_end() {
    let server = server(100);
    let channel = channel(&server);
    let call = channel
        .streaming_raw("/t.S/Bidi", CallOptions::default())
        .unwrap();
    for i in 0..3u8 {
        call.send(&[i]).unwrap();
    }
    // Wait until all three answers are queued, unread: the connection has
    // read their 3 x 6 octets (the runtime hands a read's events to the
    // calls before it lets go of the connection, so the counters never run
    // ahead of the queue).
    assert!(wait_until(
        || data_payload_in(&channel.transport_stats()) >= 3 * 6,
        PATIENCE
    ));
    let seen: Seen = Default::default();
    let log = Arc::clone(&seen);
    call.on_message(move |result| {
        let mut log = log.lock();
        match result {
            Ok(Some(message)) => log.0.push(message),
            Ok(None) => log.1 = Some(Ok(())),
            Err(status) => log.1 = Some(Err(status)),
        }
    });
    {
        let s = seen.lock();
        assert_eq!(s.0.len(), 3, "queued messages are delivered at once");
    }
    call.cancel();
    let (messages, end) = wait_for_end(&seen);
    assert_eq!(messages, [&[0u8][..], &[1], &[2]]);
    assert_eq!(end.unwrap_err().code(), Code::Cancelled);
}

#[test]
fn the_deadline_fails_the_call_with_deadline_exceeded() {
    let server = server(100);
    let channel = channel(&server);
    let started = Instant::now();
    let err = channel
        .unary_raw(
            "/t.S/Sleep",
            Bytes::new(),
            CallOptions::default().timeout(Duration::from_millis(100)),
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The channel is still good.
    assert!(channel
        .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
        .is_ok());
}

#[test]
fn cancelling_and_dropping_calls() {
    let server = server(100);
    let channel = channel(&server);
    let call = channel.start_unary_raw("/t.S/Sleep", Bytes::new(), CallOptions::default());
    call.cancel();
    assert_eq!(call.wait().unwrap_err().code(), Code::Cancelled);
    let stream = channel
        .streaming_raw("/t.S/Bidi", CallOptions::default())
        .unwrap();
    stream.send(b"1").unwrap();
    drop(stream); // RST_STREAM(CANCEL)
    assert!(channel
        .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
        .is_ok());
}

#[test]
fn ten_thousand_calls_in_flight_from_one_thread() {
    let server = server(1000);
    let channel = channel(&server);
    let done = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..10_000u32)
        .map(|i| {
            let call = channel.start_unary_raw(
                "/t.S/Echo",
                Bytes::from(i.to_be_bytes().to_vec()),
                CallOptions::default(),
            );
            let done = done.clone();
            call.on_complete(move |status| {
                assert_eq!(status.code(), Code::Ok);
                done.fetch_add(1, Ordering::Relaxed);
            });
            call
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(&call.wait().unwrap()[..], &(i as u32).to_be_bytes()[..]);
    }
    assert_eq!(done.load(Ordering::Relaxed), 10_000, "every callback ran");
}

#[test]
fn calls_queue_under_max_concurrent_streams_of_one() {
    let server = server(1);
    let channel = channel(&server);
    channel
        .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
        .unwrap(); // SETTINGS known
    let calls: Vec<_> = (0..50)
        .map(|_| {
            channel.start_unary_raw(
                "/t.S/Echo",
                Bytes::from_static(b"q"),
                CallOptions::default(),
            )
        })
        .collect();
    for call in calls {
        assert_eq!(&call.wait().unwrap()[..], b"q");
    }
}

#[test]
fn a_dead_target_fails_fast_with_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let channel = Channel::new(&format!("127.0.0.1:{port}"), ChannelOptions::default()).unwrap();
    let started = Instant::now();
    let err = channel
        .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(channel.state(false), ConnectivityState::TransientFailure);
}

#[test]
fn wait_for_ready_waits_for_a_server_started_later() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = Channel::new(&addr.to_string(), ChannelOptions::default()).unwrap();
    let waiter = {
        let channel = channel.clone();
        std::thread::spawn(move || {
            channel.unary_raw(
                "/t.S/Echo",
                Bytes::from_static(b"late"),
                CallOptions::default()
                    .wait_for_ready(true)
                    .timeout(Duration::from_secs(10)),
            )
        })
    };
    // The server starts once the call has found nothing there (the
    // channel's first connect failed) and waits for it.
    assert!(wait_until(
        || channel.state(false) == ConnectivityState::TransientFailure,
        PATIENCE
    ));
    let mut server = Server::builder().event_loops(1).build();
    server.add_service(service()).unwrap();
    let _handle = server.start(addr).unwrap();
    assert_eq!(&waiter.join().unwrap().unwrap()[..], b"late");
}

#[test]
fn close_fails_new_calls_and_reports_shutdown() {
    let server = server(100);
    let channel = channel(&server);
    channel
        .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
        .unwrap();
    let in_flight = channel.start_unary_raw("/t.S/Sleep", Bytes::new(), CallOptions::default());
    // Close with the call on the wire (its HEADERS written).
    assert!(wait_until(
        || channel.transport_stats().streams_opened == 2,
        PATIENCE
    ));
    channel.close();
    let err = in_flight.wait().unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::Cancelled, "grpc: the client connection is closing")
    );
    assert_eq!(channel.state(false), ConnectivityState::Shutdown);
    assert!(channel
        .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
        .is_err());
}

// --- balancing, service config, retries, idleness, interceptors ------------

use mio_grpc::client::ClientUnaryInterceptor;

/// A server counting its calls; `Flaky` fails with UNAVAILABLE until the
/// shared counter reaches `succeed_at`.
fn counting_server(addr: &str, hits: Arc<AtomicUsize>, succeed_at: usize) -> ServerHandle {
    let flaky_hits = hits.clone();
    let echo_hits = hits.clone();
    let service = ServiceDesc::new("t.S")
        .method(MethodDesc::raw_unary(
            "Echo",
            move |_ctx: &Context, req: Bytes| {
                echo_hits.fetch_add(1, Ordering::SeqCst);
                Ok(req)
            },
        ))
        .method(MethodDesc::raw_unary(
            "Flaky",
            move |_ctx: &Context, req: Bytes| {
                let n = flaky_hits.fetch_add(1, Ordering::SeqCst) + 1;
                if n < succeed_at {
                    Err(Status::unavailable(format!("attempt {n} fails")))
                } else {
                    Ok(req)
                }
            },
        ))
        .method(MethodDesc::raw_unary(
            "Sleep",
            |ctx: &Context, _req: Bytes| {
                // The behaviour under test: a call outliving its deadline.
                ctx.sleep(Duration::from_secs(3));
                Ok(Bytes::new())
            },
        ));
    let mut server = Server::builder().event_loops(1).workers(2).build();
    server.add_service(service).unwrap();
    server.start(addr.parse().unwrap()).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn options_with(config: &str) -> ChannelOptions {
    ChannelOptions {
        service_config: Some(config.to_string()),
        ..ChannelOptions::default()
    }
}

#[test]
fn round_robin_spreads_calls_and_survives_a_restarted_backend() {
    let hits: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut servers: Vec<Option<ServerHandle>> = ports
        .iter()
        .zip(&hits)
        .map(|(port, hits)| {
            Some(counting_server(
                &format!("127.0.0.1:{port}"),
                hits.clone(),
                0,
            ))
        })
        .collect();
    let target = format!(
        "ipv4:127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
        ports[0], ports[1], ports[2]
    );
    let channel = Channel::new(
        &target,
        options_with(r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#),
    )
    .unwrap();
    channel.connect();
    assert!(
        wait_until(|| ready_subchannels(&channel) == 3, PATIENCE),
        "{:?}",
        channel.subchannel_states()
    );
    for _ in 0..300 {
        channel
            .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
            .unwrap();
    }
    let counts: Vec<usize> = hits.iter().map(|h| h.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, vec![100, 100, 100], "round robin spreads evenly");

    // One backend goes away: no call fails.
    servers[1].take().unwrap().graceful_stop();
    for _ in 0..60 {
        channel
            .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
            .unwrap();
    }
    assert!(
        wait_until(|| ready_subchannels(&channel) == 2, PATIENCE),
        "the channel did not notice the stopped backend: {:?}",
        channel.subchannel_states()
    );
    // It comes back: the channel reconnects after its backoff and uses it.
    servers[1] = Some(counting_server(
        &format!("127.0.0.1:{}", ports[1]),
        hits[1].clone(),
        0,
    ));
    assert!(
        wait_until(|| ready_subchannels(&channel) == 3, PATIENCE),
        "the channel did not reconnect to the restarted backend: {:?}",
        channel.subchannel_states()
    );
    let before = hits[1].load(Ordering::SeqCst);
    for _ in 0..3 {
        channel
            .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
            .unwrap();
    }
    assert_eq!(
        hits[1].load(Ordering::SeqCst),
        before + 1,
        "three calls over three ready backends: one for the restarted one"
    );
}

/// Subchannels in the READY state.
fn ready_subchannels(channel: &Channel) -> usize {
    channel
        .subchannel_states()
        .iter()
        .filter(|(_, s)| *s == ConnectivityState::Ready)
        .count()
}

const RETRY_CONFIG: &str = r#"{
  "methodConfig": [{
    "name": [{"service": "t.S", "method": "Flaky"}],
    "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
  }]
}"#;

#[test]
fn the_retry_policy_retries_a_failing_server_until_it_answers() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = free_port();
    let _server = counting_server(&format!("127.0.0.1:{port}"), hits.clone(), 3);
    let channel = Channel::new(&format!("127.0.0.1:{port}"), options_with(RETRY_CONFIG)).unwrap();
    let reply = channel
        .unary_raw(
            "/t.S/Flaky",
            Bytes::from_static(b"ok"),
            CallOptions::default(),
        )
        .unwrap();
    assert_eq!(&reply[..], b"ok");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "two retries");

    // Not retried: a method without a policy, and a code not listed.
    hits.store(0, Ordering::SeqCst);
    let plain = Channel::new(&format!("127.0.0.1:{port}"), ChannelOptions::default()).unwrap();
    assert_eq!(
        plain
            .unary_raw("/t.S/Flaky", Bytes::new(), CallOptions::default())
            .unwrap_err()
            .code(),
        Code::Unavailable
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn max_attempts_bounds_the_retries() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = free_port();
    let _server = counting_server(&format!("127.0.0.1:{port}"), hits.clone(), 100);
    let channel = Channel::new(&format!("127.0.0.1:{port}"), options_with(RETRY_CONFIG)).unwrap();
    let err = channel
        .unary_raw("/t.S/Flaky", Bytes::new(), CallOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[test]
fn retry_throttling_stops_retries() {
    let hits = Arc::new(AtomicUsize::new(0));
    let port = free_port();
    let _server = counting_server(&format!("127.0.0.1:{port}"), hits.clone(), usize::MAX);
    let config = RETRY_CONFIG.replacen(
        '{',
        r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},"#,
        1,
    );
    let channel = Channel::new(&format!("127.0.0.1:{port}"), options_with(&config)).unwrap();
    for _ in 0..10 {
        assert!(channel
            .unary_raw("/t.S/Flaky", Bytes::new(), CallOptions::default())
            .is_err());
    }
    // Tokens start at 10 and each failure costs 1; retries stop once at or
    // below 5 (gRFC A6): far fewer than 10 calls x 4 attempts.
    let attempts = hits.load(Ordering::SeqCst);
    assert!(
        attempts < 20,
        "{attempts} attempts: throttling did not stop the retries"
    );
    hits.store(0, Ordering::SeqCst);
    assert!(channel
        .unary_raw("/t.S/Flaky", Bytes::new(), CallOptions::default())
        .is_err());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "no retry while throttled");
}

#[test]
fn a_method_config_timeout_applies() {
    let port = free_port();
    let _server = counting_server(
        &format!("127.0.0.1:{port}"),
        Arc::new(AtomicUsize::new(0)),
        0,
    );
    let config = r#"{"methodConfig": [{"name": [{"service": "t.S"}], "timeout": "0.1s"}]}"#;
    let channel = Channel::new(&format!("127.0.0.1:{port}"), options_with(config)).unwrap();
    let started = Instant::now();
    let err = channel
        .unary_raw("/t.S/Sleep", Bytes::new(), CallOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn an_idle_channel_closes_its_connection_and_comes_back_on_the_next_call() {
    let port = free_port();
    let _server = counting_server(
        &format!("127.0.0.1:{port}"),
        Arc::new(AtomicUsize::new(0)),
        0,
    );
    let options = ChannelOptions {
        idle_timeout: Some(Duration::from_millis(200)),
        ..ChannelOptions::default()
    };
    let channel = Channel::new(&format!("127.0.0.1:{port}"), options).unwrap();
    channel
        .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
        .unwrap();
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    assert!(
        channel.wait_for_state_change(ConnectivityState::Ready, Some(Instant::now() + PATIENCE))
    );
    assert_eq!(channel.state(false), ConnectivityState::Idle);
    channel
        .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
        .unwrap();
    assert_eq!(channel.state(false), ConnectivityState::Ready);
}

#[test]
fn client_interceptors_run_in_order_and_can_add_metadata() {
    let server = server(100);
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (o1, o2) = (order.clone(), order.clone());
    let first: ClientUnaryInterceptor = Arc::new(move |method, req, options, next| {
        o1.lock().unwrap().push(format!("first {method}"));
        let mut options = options.clone();
        options
            .metadata
            .insert("x-echo", "from-interceptor")
            .unwrap();
        next(req, &options)
    });
    let second: ClientUnaryInterceptor = Arc::new(move |_method, req, options, next| {
        o2.lock().unwrap().push("second".to_string());
        next(req, options)
    });
    let options = ChannelOptions {
        unary_interceptors: vec![first, second],
        ..ChannelOptions::default()
    };
    let channel = Channel::new(
        &format!("127.0.0.1:{}", server.local_addr().port()),
        options,
    )
    .unwrap();
    assert_eq!(
        &channel
            .unary_raw(
                "/t.S/Echo",
                Bytes::from_static(b"i"),
                CallOptions::default()
            )
            .unwrap()[..],
        b"i"
    );
    assert_eq!(
        *order.lock().unwrap(),
        vec!["first /t.S/Echo".to_string(), "second".to_string()]
    );
}

#[test]
fn a_unix_socket_target_reaches_a_server_on_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("mio-grpc-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("grpc.sock");
    let _ = std::fs::remove_file(&path);
    let mut server = Server::builder().event_loops(1).build();
    server.add_service(service()).unwrap();
    let handle = server.start_unix(&path).unwrap();
    let channel = Channel::new(
        &format!("unix:{}", path.display()),
        ChannelOptions::default(),
    )
    .unwrap();
    let reply = channel
        .unary_raw(
            "/t.S/Echo",
            Bytes::from_static(b"over unix"),
            CallOptions::default(),
        )
        .unwrap();
    assert_eq!(&reply[..], b"over unix");
    handle.stop();
    let _ = std::fs::remove_file(&path);

    let name = format!("mio-grpc-test-{}", std::process::id());
    let mut server = Server::builder().event_loops(1).build();
    server.add_service(service()).unwrap();
    let runtime_listen = server.start_unix_abstract(name.as_bytes()).unwrap();
    let channel =
        Channel::new(&format!("unix-abstract:{name}"), ChannelOptions::default()).unwrap();
    let reply = channel
        .unary_raw(
            "/t.S/Echo",
            Bytes::from_static(b"abstract"),
            CallOptions::default(),
        )
        .unwrap();
    assert_eq!(&reply[..], b"abstract");
    runtime_listen.stop();
}

#[test]
fn a105_more_connections_when_the_server_allows_one_stream_each() {
    // Handlers running now, the most at once, and the client ports
    // (connections) calls came in on.
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let peers = Arc::new(parking_lot::Mutex::new(std::collections::HashSet::new()));
    let (a, p, seen) = (active.clone(), peak.clone(), peers.clone());
    let service = ServiceDesc::new("t.S").method(MethodDesc::raw_unary(
        "Slow",
        move |ctx: &Context, req: Bytes| {
            seen.lock().insert(ctx.peer_addr());
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            // The behaviour under test, not an ordering: a call holding
            // its connection's only stream a while, so others must queue
            // or go to another connection.
            std::thread::sleep(Duration::from_millis(200));
            a.fetch_sub(1, Ordering::SeqCst);
            Ok(req)
        },
    ));
    let mut server = Server::builder()
        .max_concurrent_streams(1)
        .event_loops(1)
        .workers(4)
        .build();
    server.add_service(service).unwrap();
    let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let target = format!("127.0.0.1:{}", handle.local_addr().port());
    let slow_calls = |channel: &Channel, n: usize| {
        let calls: Vec<_> = (0..n)
            .map(|_| channel.start_unary_raw("/t.S/Slow", Bytes::new(), CallOptions::default()))
            .collect();
        for call in calls {
            call.wait_timeout(PATIENCE)
                .expect("the call ended")
                .unwrap();
        }
    };

    // Default: one connection, calls queue (and all succeed).
    let one = Channel::new(&target, ChannelOptions::default()).unwrap();
    slow_calls(&one, 1);
    slow_calls(&one, 4);
    assert_eq!(
        (peak.load(Ordering::SeqCst), peers.lock().len()),
        (1, 1),
        "one connection, one stream at a time"
    );

    // A105: more connections to the same address. Each round of eight
    // calls fills the connections there are and asks for another; rounds
    // go on until two calls ran at once, which with one stream per
    // connection means on two connections. (How many rounds that takes
    // depends on when the new connections come up; the deadline only
    // bounds a failure.)
    peak.store(0, Ordering::SeqCst);
    peers.lock().clear();
    let options = ChannelOptions {
        max_connections_per_address: 4,
        ..ChannelOptions::default()
    };
    let many = Channel::new(&target, options).unwrap();
    slow_calls(&many, 1);
    let deadline = Instant::now() + PATIENCE;
    let mut rounds = 0;
    while peak.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "calls never ran on two connections at once: {rounds} rounds, connections {:?}",
            peers.lock()
        );
        slow_calls(&many, 8);
        rounds += 1;
    }
    let used = peers.lock().len();
    assert!(
        (2..=4).contains(&used),
        "{used} connections carried calls; 2 to 4 expected"
    );
}

#[test]
fn a_streaming_call_is_retried_with_its_requests_replayed() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let service = ServiceDesc::new("t.S").method(MethodDesc::raw_bidi(
        "FlakyBidi",
        move |_ctx: &Context, mut reqs: RawRequests, sink: RawSink| {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            let mut got = Vec::new();
            while let Some(m) = reqs.recv()? {
                got.push(m);
            }
            if n < 2 {
                // Fails before any response: not committed, retryable.
                return Err(Status::unavailable("first attempt fails"));
            }
            for m in got {
                sink.send(&m)?;
            }
            Ok(())
        },
    ));
    let mut server = Server::builder().event_loops(1).build();
    server.add_service(service).unwrap();
    let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = RETRY_CONFIG.replace("\"Flaky\"", "\"FlakyBidi\"");
    let channel = Channel::new(
        &format!("127.0.0.1:{}", handle.local_addr().port()),
        options_with(&config),
    )
    .unwrap();
    let call = channel
        .streaming_raw("/t.S/FlakyBidi", CallOptions::default())
        .unwrap();
    for m in [&b"one"[..], b"two", b"three"] {
        call.send(m).unwrap();
    }
    call.close_send().unwrap();
    let mut echoed = Vec::new();
    while let Some(m) = call.recv().unwrap() {
        echoed.push(m.to_vec());
    }
    assert_eq!(
        echoed,
        vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    assert_eq!(call.finish().0.code(), Code::Ok);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "one retry, requests replayed"
    );
}

#[test]
fn a_balancer_of_your_own_picks_the_subchannel() {
    use mio_grpc::client::balancer::Balancer;
    use mio_grpc::client::resolver::ResolvedAddr;

    /// Always the last ready address.
    struct Last;
    impl Balancer for Last {
        fn name(&self) -> &str {
            "last"
        }
        fn connects_all(&self) -> bool {
            true
        }
        fn pick(&self, ready: &[ResolvedAddr]) -> usize {
            ready.len() - 1
        }
    }
    let hits: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let _servers: Vec<ServerHandle> = ports
        .iter()
        .zip(&hits)
        .map(|(p, h)| counting_server(&format!("127.0.0.1:{p}"), h.clone(), 0))
        .collect();
    let options = ChannelOptions {
        balancer: Some(Arc::new(Last)),
        ..ChannelOptions::default()
    };
    let channel = Channel::new(
        &format!("ipv4:127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]),
        options,
    )
    .unwrap();
    channel.connect();
    assert!(
        wait_until(|| ready_subchannels(&channel) == 2, PATIENCE),
        "{:?}",
        channel.subchannel_states()
    );
    for _ in 0..20 {
        channel
            .unary_raw("/t.S/Echo", Bytes::new(), CallOptions::default())
            .unwrap();
    }
    assert_eq!(
        (
            hits[0].load(Ordering::SeqCst),
            hits[1].load(Ordering::SeqCst)
        ),
        (0, 20)
    );
}

#[test]
fn calls_started_from_completion_callbacks_do_not_deadlock() {
    // A closed loop driven from callbacks (as a load generator would),
    // with and without A105's extra connections.
    for max_connections in [1, 4] {
        let server = server(100);
        let options = ChannelOptions {
            max_connections_per_address: max_connections,
            ..ChannelOptions::default()
        };
        let channel = Channel::new(
            &format!("127.0.0.1:{}", server.local_addr().port()),
            options,
        )
        .unwrap();
        // Each completion reports how many calls are left (or its failure).
        type Progress = crossbeam_channel::Sender<Result<usize, Status>>;
        let (progress_tx, progress) = crossbeam_channel::unbounded();
        fn next(channel: Channel, left: usize, progress: Progress) {
            if left == 0 {
                return;
            }
            let call = channel.start_unary_raw(
                "/t.S/Echo",
                Bytes::from_static(b"x"),
                CallOptions::default(),
            );
            let again = channel.clone();
            call.on_complete(move |status| {
                if status.code() != Code::Ok {
                    let _ = progress.send(Err(status.clone()));
                    return;
                }
                let _ = progress.send(Ok(left - 1));
                next(again, left - 1, progress);
            });
        }
        next(channel.clone(), 200, progress_tx);
        // Fails if the chain stalls, however long a loaded machine takes.
        let mut left = 200;
        while left > 0 {
            left = match progress.recv_timeout(PATIENCE) {
                Ok(result) => result.unwrap(),
                Err(e) => panic!("the chain of calls stalled with {left} left: {e}"),
            };
        }
    }
}

// --- responses from a scripted raw server ----------------------------------

use common::peer::{frames, Peer};
use framer::Reason;
use mio_grpc::grpc::Encoding;

/// One length-prefixed message with the compressed flag as given.
fn framed(compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(compressed)];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A unary call to a raw server that answers with response headers
/// carrying `fields` and one DATA frame holding `message`, then waits for
/// the client to end the call: OK trailers follow only if `trailers`.
/// Returns the call's result, the raw server (to see what the client sent
/// afterwards) and the channel (dropping it would close the connection).
fn unary_answered_with(
    fields: &[(&str, &str)],
    message: Vec<u8>,
    trailers: bool,
) -> (Result<Bytes, Status>, Peer, Channel) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let channel = Channel::new(&target, ChannelOptions::default()).unwrap();
    let call = channel.start_unary_raw(
        "/t.S/Echo",
        Bytes::from_static(b"ping"),
        CallOptions::default(),
    );
    let mut server = Peer::accept(&listener);
    server.server_handshake();
    server.expect_headers(1);
    let mut headers = frames::headers(1)
        .field(":status", "200")
        .field("content-type", "application/grpc");
    for (name, value) in fields {
        headers = headers.field(name, value);
    }
    server.send(headers);
    server.send(frames::data(1, message));
    if trailers {
        server.send(frames::headers(1).field("grpc-status", "0").eos());
    }
    let result = call.wait_timeout(PATIENCE).expect("the call ended");
    (result, server, channel)
}

#[test]
fn a_compressed_message_without_grpc_encoding_is_internal() {
    // The flag says compressed, the headers name no encoding (or identity):
    // nothing says how to decompress it (grpc-go: "compressed flag set with
    // identity or empty encoding"), so it must not be taken as identity.
    for fields in [&[][..], &[("grpc-encoding", "identity")]] {
        let (result, mut server, _channel) =
            unary_answered_with(fields, framed(true, b"pong"), false);
        let err = result.expect_err("a compressed message with no encoding was accepted");
        assert_eq!(err.code(), Code::Internal, "{fields:?}: {err:?}");
        assert!(
            err.message().contains("compressed flag set"),
            "{fields:?}: {err:?}"
        );
        // The client stops the server's side of the stream.
        server.expect_rst(1, Reason::CANCEL);
    }
}

#[test]
fn an_unknown_grpc_encoding_fails_only_a_compressed_message() {
    let unknown = [("grpc-encoding", "br-unknown")];
    // An uncompressed message needs no decompressor, whatever the headers
    // name.
    let (result, _server, _channel) = unary_answered_with(&unknown, framed(false, b"pong"), true);
    assert_eq!(&result.unwrap()[..], b"pong");

    // A compressed one does, and there is none for this encoding.
    let (result, mut server, _channel) =
        unary_answered_with(&unknown, framed(true, b"pong"), false);
    let err = result.expect_err("a message in an unknown encoding was accepted");
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert!(err.message().contains("br-unknown"), "{err:?}");
    server.expect_rst(1, Reason::CANCEL);
}

#[test]
fn a_gzip_compressed_response_from_a_raw_server_is_decompressed() {
    // The control for the two tests above: the same script with a message
    // the headers do back.
    let body = mio_grpc::grpc::compress(Encoding::Gzip, b"pong").unwrap();
    let (result, _server, _channel) =
        unary_answered_with(&[("grpc-encoding", "gzip")], framed(true, &body), true);
    assert_eq!(&result.unwrap()[..], b"pong");
}

//! Cancellations are not attacks (issue 11): our own client calling a slow
//! server with deadlines resets every expired stream; hundreds of those on
//! one connection must never trip the server's rapid-reset limit, and the
//! other calls on that connection go on. (The attack itself, streams reset
//! as they open, is in `conn_limits.rs` and `abuse.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use bytes::Bytes;
use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::grpc::{Code, Status};
use mio_grpc::server::{Context, MethodDesc, Server, ServiceDesc};

#[test]
fn hundreds_of_expired_deadlines_on_one_connection_are_no_attack() {
    let service = ServiceDesc::new("test.S")
        .method(MethodDesc::raw_unary(
            "Echo",
            |_ctx: &Context, req: Bytes| Ok(req),
        ))
        .method(MethodDesc::raw_unary(
            "Slow",
            // Slow until the client gives up (the deadline cancels it).
            |ctx: &Context, _req: Bytes| {
                if ctx.sleep(Duration::from_secs(10)) {
                    Ok(Bytes::new())
                } else {
                    Err(Status::cancelled("the client gave up"))
                }
            },
        ));
    let mut server = Server::builder().event_loops(1).build();
    server.add_service(service).unwrap();
    let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let channel = Channel::new(
        &format!("ipv4:{}", handle.local_addr()),
        ChannelOptions::default(),
    )
    .unwrap();
    let deadline = || CallOptions::default().timeout(Duration::from_millis(20));
    // 400 expired calls, 50 at a time, each with a neighbour call that
    // must complete on the same connection.
    for _ in 0..8 {
        let slow: Vec<_> = (0..50)
            .map(|_| channel.start_unary_raw("/test.S/Slow", Bytes::new(), deadline()))
            .collect();
        let echo = channel.start_unary_raw(
            "/test.S/Echo",
            Bytes::from_static(b"hi"),
            CallOptions::default().timeout(Duration::from_secs(5)),
        );
        for call in slow {
            let status = call.wait().expect_err("the slow call must expire");
            assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        }
        assert_eq!(&echo.wait().expect("the neighbour call")[..], b"hi");
    }
    let stats = channel.transport_stats();
    assert_eq!(stats.goaways_in, 0, "the server sent GOAWAY: {stats:?}");
    // RST_STREAM frames sent: the client reset the expired
    // streams (a few may have crossed the server's own deadline answer).
    assert!(
        stats.frames_out.rst_stream >= 300,
        "the client reset the expired streams: {stats:?}"
    );
    handle.stop();
}

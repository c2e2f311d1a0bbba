//! Bounded queued bytes (issue 11): a reader that never grants window
//! cannot make the server hold unbounded response bytes. Each stream
//! queues at most its quota plus one message, each connection at most
//! `ConnConfig::max_queued_bytes` plus one message, the whole server at
//! most `ServerConfig::max_queued_bytes` plus one message — counted by the
//! server's own gauges (`ServerHandle::queued_bytes`), not process RSS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::peer::{frames, Peer};
use common::wait::{wait_until, PATIENCE};
use framer::hpack::HeaderField;
use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::server::{
    Context, MethodDesc, RawRequests, RawSink, Server, ServerHandle, ServiceDesc,
};

const MIB: usize = 1 << 20;
/// A framed 1 MiB message.
const MESSAGE: usize = MIB + 5;

struct Flooding {
    handle: ServerHandle,
    /// Sends started and sends returned, over every handler.
    started: Arc<AtomicUsize>,
    returned: Arc<AtomicUsize>,
}

/// A server whose `Flood` handler sends 1 MiB messages until a send fails.
fn start(per_conn: usize, server_cap: usize) -> Flooding {
    let started = Arc::new(AtomicUsize::new(0));
    let returned = Arc::new(AtomicUsize::new(0));
    let (s, r) = (started.clone(), returned.clone());
    let payload = Bytes::from(vec![0u8; MIB]);
    let service = ServiceDesc::new("test.S")
        .method(MethodDesc::raw_unary(
            "Echo",
            |_ctx: &Context, req: Bytes| Ok(req),
        ))
        .method(MethodDesc::raw_bidi(
            "Flood",
            move |_ctx: &Context, _requests: RawRequests, sink: RawSink| loop {
                s.fetch_add(1, Ordering::SeqCst);
                let sent = sink.send(&payload);
                r.fetch_add(1, Ordering::SeqCst);
                sent?;
            },
        ));
    let mut server = Server::builder()
        .event_loops(1)
        .config(|c| {
            c.conn.max_queued_bytes = per_conn;
            c.max_queued_bytes = server_cap;
        })
        .build();
    server.add_service(service).unwrap();
    let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    Flooding {
        handle,
        started,
        returned,
    }
}

/// A connection that grants no stream window and opens `streams` floods.
fn reader_that_never_reads(addr: std::net::SocketAddr, streams: u32) -> Peer {
    let mut peer = Peer::connect(addr);
    peer.handshake_with(frames::settings().initial_window_size(0));
    for i in 0..streams {
        peer.send(
            frames::headers(1 + 2 * i)
                .request("POST", "/test.S/Flood")
                .fields([
                    HeaderField::new("content-type", "application/grpc"),
                    HeaderField::new("te", "trailers"),
                ]),
        );
    }
    peer
}

/// Waits until every one of `handlers` is inside `send` at once: each has
/// sent what its quotas allowed and now waits.
fn wait_all_blocked(server: &Flooding, handlers: usize) {
    let blocked = wait_until(
        || {
            let started = server.started.load(Ordering::SeqCst);
            let returned = server.returned.load(Ordering::SeqCst);
            started >= handlers && started - returned == handlers
        },
        2 * PATIENCE,
    );
    assert!(
        blocked,
        "handlers never all blocked: {} sends started, {} returned",
        server.started.load(Ordering::SeqCst),
        server.returned.load(Ordering::SeqCst)
    );
}

#[test]
fn the_server_wide_cap_bounds_queued_bytes_of_readers_that_never_read() {
    // 6 connections × 5 streams of 1 MiB messages, no window granted:
    // without caps 30 MiB would be queued (one message per stream).
    let server = start(usize::MAX, 4 * MIB);
    let peers: Vec<Peer> = (0..6)
        .map(|_| reader_that_never_reads(server.handle.local_addr(), 5))
        .collect();
    wait_all_blocked(&server, 30);
    let (used, peak) = server.handle.queued_bytes();
    assert!(used >= 4 * MIB, "the budget filled: {used}");
    assert!(
        peak <= 4 * MIB + MESSAGE,
        "queued {peak} bytes, over the 4 MiB cap plus one message"
    );
    drop(peers);
}

#[test]
fn the_per_connection_cap_bounds_each_connection_and_a_neighbour_is_served() {
    let server = start(2 * MIB, 256 * MIB);
    let peers: Vec<Peer> = (0..3)
        .map(|_| reader_that_never_reads(server.handle.local_addr(), 8))
        .collect();
    wait_all_blocked(&server, 24);
    let (used, peak) = server.handle.queued_bytes();
    // Each connection holds at most 2 MiB plus one message (3 MiB + 15).
    assert!(
        used >= 3 * 2 * MIB,
        "every connection filled its cap: {used}"
    );
    assert!(
        peak <= 3 * (2 * MIB + MESSAGE),
        "queued {peak} bytes over 3 connections capped at 2 MiB each"
    );
    // The floods still hold their queues: a neighbour is served.
    let channel = Channel::new(
        &format!("ipv4:{}", server.handle.local_addr()),
        ChannelOptions::default(),
    )
    .unwrap();
    let reply = channel
        .unary_raw(
            "/test.S/Echo",
            Bytes::from_static(b"hi"),
            CallOptions::default().timeout(Duration::from_secs(5)),
        )
        .unwrap();
    assert_eq!(&reply[..], b"hi");
    assert_eq!(
        server.started.load(Ordering::SeqCst) - server.returned.load(Ordering::SeqCst),
        24
    );
    // Closing the readers gives every queued byte back.
    drop(peers);
    assert!(
        wait_until(|| server.handle.queued_bytes().0 == 0, PATIENCE),
        "queued bytes never returned"
    );
}

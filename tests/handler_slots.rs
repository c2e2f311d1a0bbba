//! Handler slots outlive resets (issue 11, "MadeYouReset", CVE-2025-8671):
//! a stream's handler keeps counting against the connection's cap
//! (MAX_CONCURRENT_STREAMS) until it returns, whoever reset the stream, so
//! an attacker that completes requests and then makes the server reset
//! them (WINDOW_UPDATE 0 is a stream error) cannot pile up running
//! handlers; a connection that keeps at it runs out of its wasted-frames
//! budget and gets GOAWAY; a well-behaved neighbour is served throughout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::peer::{frames, Peer};
use common::wait::PATIENCE;
use crossbeam_channel::{Receiver, Sender};
use framer::hpack::HeaderField;
use framer::{Frame, Reason};
use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::server::{Context, MethodDesc, Server, ServerHandle, ServiceDesc};

const CAP: u32 = 8;

struct Blocking {
    handle: ServerHandle,
    started: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    release: Sender<()>,
}

/// A server whose `Block` handler ignores cancellation and returns only
/// when the test releases it (or after 20 s, so a failing test ends).
fn start(cap: u32) -> Blocking {
    let started = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (release, released): (Sender<()>, Receiver<()>) = crossbeam_channel::unbounded();
    let (s, r, m) = (started.clone(), running.clone(), most.clone());
    let service = ServiceDesc::new("test.S")
        .method(MethodDesc::raw_unary(
            "Echo",
            |_ctx: &Context, req: Bytes| Ok(req),
        ))
        .method(MethodDesc::raw_unary(
            "Block",
            move |_ctx: &Context, _req: Bytes| {
                s.fetch_add(1, Ordering::SeqCst);
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                let _ = released.recv_timeout(Duration::from_secs(20));
                r.fetch_sub(1, Ordering::SeqCst);
                Ok(Bytes::new())
            },
        ));
    let mut server = Server::builder()
        .max_concurrent_streams(cap)
        .event_loops(1)
        .build();
    server.add_service(service).unwrap();
    let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    Blocking {
        handle,
        started,
        running,
        most,
        release,
    }
}

fn grpc_fields() -> Vec<HeaderField> {
    vec![
        HeaderField::new("content-type", "application/grpc"),
        HeaderField::new("te", "trailers"),
    ]
}

/// A complete request for `path` on stream `id`.
fn request(peer: &mut Peer, id: u32, path: &str) {
    peer.send(
        frames::headers(id)
            .request("POST", path)
            .fields(grpc_fields()),
    );
    peer.send(frames::data(id, [0u8, 0, 0, 0, 0]).eos());
}

/// The reset the server sent on `id`.
fn reset_of(peer: &mut Peer, id: u32) -> Reason {
    peer.expect(&format!("RST_STREAM on {id}"), |frame| match frame {
        Frame::RstStream(r) if r.stream_id.value() == id => Some(r.reason),
        _ => None,
    })
}

fn neighbour_call(addr: std::net::SocketAddr) {
    let channel = Channel::new(&format!("ipv4:{addr}"), ChannelOptions::default()).unwrap();
    let reply = channel
        .unary_raw(
            "/test.S/Echo",
            Bytes::from_static(b"hi"),
            CallOptions::default().timeout(Duration::from_secs(5)),
        )
        .expect("the neighbour is served while the attack runs");
    assert_eq!(&reply[..], b"hi");
}

fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    assert!(
        common::wait::wait_until(cond, PATIENCE),
        "timed out waiting for {what}"
    );
}

#[test]
fn handlers_of_streams_the_server_reset_keep_their_slots_until_they_return() {
    let server = start(CAP);
    let addr = server.handle.local_addr();
    let mut attacker = Peer::connect(addr);
    attacker.handshake();
    for i in 0..CAP {
        let id = 1 + 2 * i;
        request(&mut attacker, id, "/test.S/Block");
        // Its handler starts; then the attacker makes the server reset the
        // stream under it.
        wait_until("the handler to start", || {
            server.running.load(Ordering::SeqCst) == i as usize + 1
        });
        attacker.send(frames::window_update(id, 0));
        assert_eq!(reset_of(&mut attacker, id), Reason::PROTOCOL_ERROR);
    }
    // Every slot is held by a handler whose stream is gone. More requests
    // are not refused: the server holds the next one and stops reading the
    // connection until a handler returns (grpc-go's answer).
    let held = 1 + 2 * CAP;
    request(&mut attacker, held, "/test.S/Echo");
    for i in 1..=3 {
        request(&mut attacker, held + 2 * i, "/test.S/Block");
    }
    // The attack is still holding its handlers: a neighbour is served, and
    // the attacker's connection got nothing for its new streams.
    neighbour_call(addr);
    assert_eq!(server.running.load(Ordering::SeqCst), CAP as usize);
    assert_eq!(server.most.load(Ordering::SeqCst), CAP as usize);
    let quiet = attacker.expect_quiet_for(Duration::from_millis(100), |_| true);
    assert!(
        quiet
            .iter()
            .all(|f| !matches!(f, Frame::Headers(_) | Frame::RstStream(_))),
        "the held streams got an answer: {quiet:?}"
    );
    // One handler returns: the held request is served, the next ones start
    // (each taking the slot of a handler that returned).
    server.release.send(()).unwrap();
    let (status, _, body, trailers) = attacker.expect_full_response(held);
    assert_eq!(status, 200);
    assert_eq!(body, [0u8, 0, 0, 0, 0]);
    assert!(trailers.is_some());
    for _ in 0..CAP + 2 {
        server.release.send(()).unwrap();
    }
    let all_ran = common::wait::wait_until(
        || {
            server.started.load(Ordering::SeqCst) == CAP as usize + 3
                && server.running.load(Ordering::SeqCst) == 0
        },
        PATIENCE,
    );
    assert!(
        all_ran,
        "every handler to have run: {} started, {} running",
        server.started.load(Ordering::SeqCst),
        server.running.load(Ordering::SeqCst)
    );
    assert_eq!(server.most.load(Ordering::SeqCst), CAP as usize);
}

#[test]
fn a_connection_that_keeps_provoking_resets_gets_goaway() {
    let server = start(CAP);
    let addr = server.handle.local_addr();
    let mut attacker = Peer::connect(addr);
    attacker.handshake();
    // Within the default budgets (200 resets, 1,000 wasted frames per
    // 10 s) the answer must turn into GOAWAY ENHANCE_YOUR_CALM.
    let mut goaway = None;
    for i in 0..1_100u32 {
        let id = 1 + 2 * i;
        // A complete request, then at once a frame that makes the server
        // reset the stream (WINDOW_UPDATE 0: a stream error, RFC 9113
        // §6.9). Echo returns at once, so slots never run out: the resets
        // alone must end the connection.
        request(&mut attacker, id, "/test.S/Echo");
        attacker.send(frames::window_update(id, 0));
        if i % 100 == 99 {
            // Read what came so far; stop at the GOAWAY.
            if let Some(g) = drain_until_goaway(&mut attacker) {
                goaway = Some(g);
                break;
            }
        }
    }
    let goaway = goaway
        .or_else(|| drain_until_goaway(&mut attacker))
        .expect("GOAWAY for a connection that keeps provoking resets");
    assert_eq!(goaway.reason, Reason::ENHANCE_YOUR_CALM);
    let debug = String::from_utf8_lossy(&goaway.debug_data).into_owned();
    assert!(
        debug.starts_with("wasted_frames") || debug.starts_with("peer_resets"),
        "{debug}"
    );
    assert!(server.most.load(Ordering::SeqCst) <= CAP as usize);
    neighbour_call(addr);
    for _ in 0..CAP {
        server.release.send(()).unwrap();
    }
}

/// Reads frames until a GOAWAY or a short quiet spell.
fn drain_until_goaway(peer: &mut Peer) -> Option<framer::GoAway> {
    loop {
        match peer.next_event(Instant::now() + Duration::from_millis(200)) {
            common::peer::Event::Frame(Frame::GoAway(g)) => return Some(g),
            common::peer::Event::Frame(_) => {}
            _ => return None,
        }
    }
}

#[test]
fn a_client_that_respects_the_limit_is_never_refused() {
    // The slot is freed before the call's last frame goes out, so a client
    // that opens its next stream as soon as it sees one end (what
    // MAX_CONCURRENT_STREAMS = 1 allows) always finds it free.
    let server = start(1);
    let channel = Channel::new(
        &format!("ipv4:{}", server.handle.local_addr()),
        ChannelOptions::default(),
    )
    .unwrap();
    for _ in 0..500 {
        channel
            .unary_raw(
                "/test.S/Echo",
                Bytes::from_static(b"hi"),
                CallOptions::default().timeout(Duration::from_secs(5)),
            )
            .unwrap();
    }
    let stats = channel.transport_stats();
    assert_eq!(
        stats.streams_reset_remote, 0,
        "the server refused streams: {stats:?}"
    );
}

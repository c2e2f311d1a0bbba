//! Abuse limits on a real server (`mio_grpc::http::Server` over TCP): for
//! each limit an attacker connection trips it and gets GOAWAY
//! ENHANCE_YOUR_CALM (or the RFC's answer), while a second, well-behaved
//! connection to the same server keeps getting answers. Two large floods
//! that are backpressure, not errors (PINGs from a peer that never reads,
//! DATA for an application that never reads) run against a runtime server
//! whose session holds every body unread (`UnreadServer`), and check
//! through the attacked connection's own counters (`ConnStats`) that the
//! server stops reading.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::peer::{frames, start_server_with, Peer, HELLO};
use common::wait::PATIENCE;
use crossbeam_channel::{Receiver, Sender};
use framer::hpack::HeaderField;
use framer::{Frame, Reason};
use loopy::{Item, StreamKey};
use mio_grpc::conn::{ConnConfig, ConnEvent, ConnStats, Connection, EnforcementPolicy};
use mio_grpc::runtime::{
    Acceptor, ConnHandle, ListenerConfig, ListenerHandle, Runtime, RuntimeConfig, Session,
};

/// A well-behaved client gets `hello` on a fresh stream.
fn still_serves(good: &mut Peer, stream: u32) {
    good.send_get(stream, "/");
    let (status, body) = good.expect_response(stream);
    assert_eq!((status, &body[..]), (200, HELLO));
}

fn attack_and_check(
    configure: impl FnOnce(&mut ConnConfig),
    attack: impl FnOnce(&mut Peer),
    expect: impl FnOnce(&mut Peer),
) {
    let (_server, addr) = start_server_with(configure);
    let mut good = Peer::connect(addr);
    good.handshake();
    still_serves(&mut good, 1);
    let mut attacker = Peer::connect(addr);
    attacker.handshake();
    attack(&mut attacker);
    expect(&mut attacker);
    still_serves(&mut good, 3);
}

#[test]
fn rapid_reset_is_answered_with_enhance_your_calm() {
    // CVE-2023-44487: open and reset streams faster than the limit allows.
    attack_and_check(
        |c| c.limits.peer_resets.max = 50,
        |attacker| {
            for i in 0..60u32 {
                let id = 1 + 2 * i;
                attacker.send(frames::headers(id).request("POST", "/hold"));
                attacker.send(frames::rst(id, Reason::CANCEL));
            }
        },
        |attacker| {
            attacker.expect_goaway(Reason::ENHANCE_YOUR_CALM);
        },
    );
}

#[test]
fn resets_under_the_limit_are_fine() {
    attack_and_check(
        |c| c.limits.peer_resets.max = 50,
        |attacker| {
            for i in 0..40u32 {
                let id = 1 + 2 * i;
                attacker.send(frames::headers(id).request("POST", "/hold"));
                attacker.send(frames::rst(id, Reason::CANCEL));
            }
        },
        |attacker| {
            attacker.expect_alive();
        },
    );
}

#[test]
fn continuation_flood_by_count_is_answered_with_enhance_your_calm() {
    // CVE-2024-27316: a field block that never ends.
    attack_and_check(
        |c| c.max_continuation_frames = 32,
        |attacker| {
            attacker.send(frames::headers(1).request("GET", "/").no_end_headers());
            for _ in 0..40 {
                attacker.send(frames::continuation(1).fragment([]));
            }
        },
        |attacker| {
            attacker.expect_goaway(Reason::ENHANCE_YOUR_CALM);
        },
    );
}

#[test]
fn continuation_flood_by_size_is_answered_with_enhance_your_calm() {
    attack_and_check(
        |c| c.max_header_block_size = 32 * 1024,
        |attacker| {
            attacker.send(frames::headers(1).request("GET", "/").no_end_headers());
            for _ in 0..4 {
                // Literal without indexing, new name: valid HPACK bytes.
                attacker.send(frames::continuation(1).fragment(vec![0u8; 16_000]));
            }
        },
        |attacker| {
            attacker.expect_goaway(Reason::ENHANCE_YOUR_CALM);
        },
    );
}

#[test]
fn empty_data_flood_is_answered_with_enhance_your_calm() {
    // CVE-2019-9518: frames that carry nothing.
    attack_and_check(
        |c| c.limits.empty_frames.max = 100,
        |attacker| {
            attacker.send(frames::headers(1).request("POST", "/echo"));
            for _ in 0..101 {
                attacker.send(frames::data(1, []));
            }
        },
        |attacker| {
            attacker.expect_goaway(Reason::ENHANCE_YOUR_CALM);
        },
    );
}

#[test]
fn settings_flood_is_answered_with_enhance_your_calm() {
    attack_and_check(
        |c| c.limits.settings.max = 20,
        |attacker| {
            for _ in 0..25 {
                attacker.send(frames::settings());
            }
        },
        |attacker| {
            attacker.expect_goaway(Reason::ENHANCE_YOUR_CALM);
        },
    );
}

#[test]
fn ping_flood_is_answered_with_enhance_your_calm() {
    attack_and_check(
        |c| c.limits.pings.max = 50,
        |attacker| {
            attacker.auto_ack = false;
            for i in 0..60u64 {
                attacker.send(frames::ping(i.to_be_bytes()));
            }
        },
        |attacker| {
            attacker.expect_goaway(Reason::ENHANCE_YOUR_CALM);
        },
    );
}

#[test]
fn oversized_header_list_is_refused_and_the_connection_goes_on() {
    attack_and_check(
        |c| c.max_header_list_size = 4096,
        |attacker| {
            let big: Vec<HeaderField> = (0..10)
                .map(|i| HeaderField::new(format!("x-big-{i}"), vec![b'v'; 1000]))
                .collect();
            attacker.send(frames::headers(1).request("GET", "/").fields(big).eos());
        },
        |attacker| {
            attacker.expect_rst(1, Reason::REFUSED_STREAM);
            // The HPACK context survived: the next request works.
            attacker.send_get(3, "/");
            let (status, _) = attacker.expect_response(3);
            assert_eq!(status, 200);
        },
    );
}

#[test]
fn too_many_concurrent_streams_are_refused_and_the_connection_goes_on() {
    attack_and_check(
        |c| c.max_concurrent_streams = 4,
        |attacker| {
            for i in 0..5u32 {
                attacker.send(frames::headers(1 + 2 * i).request("POST", "/hold"));
            }
        },
        |attacker| {
            attacker.expect_rst(9, Reason::REFUSED_STREAM);
            attacker.expect_alive();
        },
    );
}

// --- floods that are backpressure, seen through the connection's counters --

/// A server whose application never reads a request body (every DATA
/// payload stays counted against the connection's buffered bytes), except
/// that `GET /` answers `hello`; the test gets each accepted connection's
/// handle, for its counters.
struct UnreadServer {
    runtime: Option<Runtime>,
    listener: ListenerHandle,
    accepted: Receiver<ConnHandle>,
}

struct UnreadAcceptor {
    conn: ConnConfig,
    accepted: Sender<ConnHandle>,
}

impl Acceptor for UnreadAcceptor {
    fn conn_config(&self) -> ConnConfig {
        self.conn.clone()
    }

    fn accept(&self, handle: ConnHandle) -> Box<dyn Session> {
        let _ = self.accepted.send(handle);
        Box::new(UnreadSession { held: Vec::new() })
    }
}

/// Holds every DATA payload it gets, never releasing its capacity.
struct UnreadSession {
    held: Vec<Bytes>,
}

impl Session for UnreadSession {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        match event {
            ConnEvent::Request {
                id,
                head,
                end_stream: true,
            } if head.path.as_deref() == Some(&b"/"[..]) => {
                let key = StreamKey::from(id);
                let status = HeaderField::new(":status", "200");
                let _ = conn.buffer().put(Item::Headers {
                    key,
                    fields: vec![status],
                    end_stream: false,
                });
                let _ = conn.buffer().put(Item::Data {
                    key,
                    data: Bytes::from_static(HELLO),
                    end_stream: true,
                });
            }
            ConnEvent::Data { data, .. } => self.held.push(data),
            _ => {}
        }
    }
}

impl UnreadServer {
    fn start(configure: impl FnOnce(&mut ConnConfig)) -> (UnreadServer, SocketAddr) {
        let mut conn = ConnConfig::default();
        configure(&mut conn);
        let runtime = Runtime::new(RuntimeConfig {
            event_loops: 1,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let (tx, accepted) = crossbeam_channel::unbounded();
        let acceptor = Arc::new(UnreadAcceptor { conn, accepted: tx });
        let listener = runtime
            .listen(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                ListenerConfig::default(),
                acceptor,
            )
            .unwrap();
        let addr = listener.local_addr();
        let server = UnreadServer {
            runtime: Some(runtime),
            listener,
            accepted,
        };
        (server, addr)
    }

    /// The server's side of the connection `client` made.
    fn connection_of(&self, client: &TcpStream) -> ConnHandle {
        let ours = client.local_addr().unwrap();
        loop {
            let handle = self
                .accepted
                .recv_timeout(PATIENCE)
                .expect("the server accepted the connection");
            if handle.peer_addr() == ours {
                return handle;
            }
        }
    }
}

impl Drop for UnreadServer {
    fn drop(&mut self) {
        self.listener.close();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown();
        }
    }
}

/// DATA payload octets received (frame headers taken out).
fn data_payload_in(stats: &ConnStats) -> u64 {
    stats.bytes_in_by_type.data - 9 * stats.frames_in.data
}

/// Writes `prologue`, then `total` bytes of `chunk` repeated, to `socket`
/// as fast as the server takes them, without reading anything back.
/// Whenever a write has waited 500 ms, asks `stopped` whether the server
/// has stopped reading (its counters say why), and returns if so; gives up
/// after `limit` (a bound for a failing test: a server that never stops
/// reading takes the whole flood sooner). Returns the bytes written.
fn blast(
    socket: &mut TcpStream,
    prologue: &[u8],
    chunk: &[u8],
    total: usize,
    limit: Duration,
    stopped: impl Fn() -> bool,
) -> usize {
    socket
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut written = 0usize;
    while Instant::now() < deadline {
        let rest = match written.checked_sub(prologue.len()) {
            None => &prologue[written..],
            Some(done) if done < total && !chunk.is_empty() => {
                let at = done % chunk.len();
                &chunk[at..chunk.len().min(at + total - done)]
            }
            Some(_) => break,
        };
        match socket.write(&rest[..rest.len().min(64 * 1024)]) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stopped() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break, // the server closed the connection
        }
    }
    written
}

#[test]
fn a_ping_flood_from_a_peer_that_never_reads_is_throttled_not_buffered() {
    // Ping limits and keepalive enforcement off (either would end the
    // connection): only the transport-response throttle stands between the
    // flood and memory. The attacker never reads its PING acks, so the
    // server's socket fills, the acks queue, and reading stops.
    let (server, addr) = UnreadServer::start(|c| {
        c.limits.pings.max = u32::MAX;
        c.enforcement = EnforcementPolicy {
            min_time: Duration::ZERO,
            permit_without_stream: true,
        };
    });
    let mut good = Peer::connect(addr);
    good.handshake();

    let mut prologue = framer::PREFACE.to_vec();
    let mut encoder = framer::Encoder::new();
    let mut buf = bytes::BytesMut::new();
    encoder.encode(&Frame::Settings(framer::Settings::new()), &mut buf);
    prologue.extend_from_slice(&buf);
    let mut chunk = bytes::BytesMut::new();
    for i in 0..4096u64 {
        encoder.encode(&Frame::Ping(framer::Ping::new(i.to_be_bytes())), &mut chunk);
    }
    // 200 MB of PINGs offered; far less is taken.
    let offered = 200 << 20;
    let mut attacker = TcpStream::connect(addr).unwrap();
    let attacked = server.connection_of(&attacker);
    let sent = blast(&mut attacker, &prologue, &chunk, offered, PATIENCE, || {
        attacked.stats().read_throttles > 0
    });
    assert!(
        sent < offered,
        "the server kept reading a peer that never reads"
    );
    let stats = attacked.stats();
    assert!(
        stats.read_throttles > 0,
        "reading never stopped for the queued acks: {stats:?}"
    );
    // Backpressure, not an error: the connection is still up.
    assert_eq!(
        (stats.abuse_breaches, stats.goaways_out),
        (0, 0),
        "{stats:?}"
    );
    assert!(!attacked.is_closed());
    still_serves(&mut good, 1);
}

#[test]
fn a_data_flood_into_an_application_that_does_not_read_stops_at_the_buffered_bytes_limit() {
    // Flow control bounds each stream; the buffered-bytes limit bounds the
    // connection even with many streams and windows large enough for all
    // of the flood.
    const LIMIT: usize = 1 << 20;
    const PAYLOAD: usize = 16_000;
    let (server, addr) = UnreadServer::start(|c| {
        c.limits.max_buffered_bytes = LIMIT;
        c.max_concurrent_streams = 1000;
        c.inbound = loopy::InboundConfig::static_windows(1 << 30, 1 << 24);
    });
    let mut good = Peer::connect(addr);
    good.handshake();

    // 400 streams, each offered 128 KB: 51 MB in all, never read.
    let mut encoder = framer::Encoder::new();
    let mut wire = bytes::BytesMut::new();
    wire.extend_from_slice(framer::PREFACE);
    encoder.encode(&Frame::Settings(framer::Settings::new()), &mut wire);
    let payload = Bytes::from(vec![0u8; PAYLOAD]);
    for i in 0..400u32 {
        let id = framer::StreamId::new(1 + 2 * i);
        let fields = frames::request_fields("POST", "/upload");
        let headers = framer::Headers::new(id, framer::HeaderBlock::Fields(fields));
        encoder.encode(&Frame::Headers(headers), &mut wire);
        for _ in 0..8 {
            encoder.encode(
                &Frame::Data(framer::Data::new(id, payload.clone())),
                &mut wire,
            );
        }
    }
    let total = wire.len();
    let mut attacker = TcpStream::connect(addr).unwrap();
    let attacked = server.connection_of(&attacker);
    // Writing stops once the server has read up to the limit.
    let sent = blast(&mut attacker, &wire, &[], 0, PATIENCE, || {
        data_payload_in(&attacked.stats()) >= LIMIT as u64
    });
    assert!(
        sent < total,
        "the server read all of a {total}-byte flood nobody consumes"
    );
    // And never more than one frame past it.
    let stats = attacked.stats();
    assert!(
        data_payload_in(&stats) < (LIMIT + PAYLOAD) as u64,
        "{} DATA octets read past a {LIMIT}-octet limit: {stats:?}",
        data_payload_in(&stats)
    );
    // Backpressure, not an error: the connection is still up.
    assert_eq!(
        (stats.abuse_breaches, stats.goaways_out),
        (0, 0),
        "{stats:?}"
    );
    assert!(!attacked.is_closed());
    still_serves(&mut good, 1);
}

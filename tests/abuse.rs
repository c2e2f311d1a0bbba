//! Abuse limits on a real server (`mio_grpc::http::Server` over TCP): for
//! each limit an attacker connection trips it and gets GOAWAY
//! ENHANCE_YOUR_CALM (or the RFC's answer), while a second, well-behaved
//! connection to the same server keeps getting answers. A large flood
//! checks that the server's memory stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::peer::{frames, start_server_with, Peer, HELLO};
use framer::hpack::HeaderField;
use framer::{Frame, Reason};
use mio_grpc::conn::ConnConfig;

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

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Writes `prologue`, then `chunk` repeatedly up to `total` bytes, to
/// `addr` as fast as the server takes them, without reading anything back,
/// for at most `limit`. Returns the bytes the server took.
fn blast(addr: SocketAddr, prologue: &[u8], chunk: &[u8], total: usize, limit: Duration) -> usize {
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut taken = 0;
    for piece in prologue.chunks(64 * 1024) {
        match socket.write(piece) {
            Ok(n) if n == piece.len() => taken += n,
            Ok(n) => return taken + n,
            Err(_) => return taken,
        }
    }
    let start = Instant::now();
    let mut sent = 0;
    while sent < total && start.elapsed() < limit {
        match socket.write(chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // the server stopped reading (or closed)
        }
    }
    sent
}

#[test]
fn a_ping_flood_from_a_peer_that_never_reads_keeps_memory_bounded() {
    // Ping limits off: only the transport-response throttle stands between
    // the flood and memory. The attacker never reads its PING acks, so the
    // server's socket fills, the acks queue, and reading stops.
    let (_server, addr) = start_server_with(|c| c.limits.pings.max = u32::MAX);
    let mut good = Peer::connect(addr);
    good.handshake();
    let before = rss_kib();

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
    let sent = blast(addr, &prologue, &chunk, 200 << 20, Duration::from_secs(5));
    let after = rss_kib();
    still_serves(&mut good, 1);
    assert!(
        sent < 200 << 20,
        "the server kept reading a peer that never reads"
    );
    let growth = after.saturating_sub(before);
    assert!(
        growth < 64 * 1024,
        "RSS grew by {growth} KiB under a PING flood ({sent} bytes taken)"
    );
}

#[test]
fn a_data_flood_into_a_handler_that_does_not_read_keeps_memory_bounded() {
    // Flow control bounds each stream; the buffered-bytes limit bounds the
    // connection even with many streams and large windows.
    let (_server, addr) = start_server_with(|c| {
        c.limits.max_buffered_bytes = 1 << 20;
        c.max_concurrent_streams = 1000;
        c.inbound = loopy::InboundConfig::static_windows(1 << 30, 1 << 24);
    });
    let mut good = Peer::connect(addr);
    good.handshake();
    let before = rss_kib();

    // 400 streams to /hold (whose handlers sleep before reading), each
    // offered 128 KB: 51 MB in all.
    let mut encoder = framer::Encoder::new();
    let mut wire = bytes::BytesMut::new();
    wire.extend_from_slice(framer::PREFACE);
    encoder.encode(&Frame::Settings(framer::Settings::new()), &mut wire);
    let payload = bytes::Bytes::from(vec![0u8; 16_000]);
    for i in 0..400u32 {
        let id = framer::StreamId::new(1 + 2 * i);
        let fields = frames::request_fields("POST", "/hold");
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
    let sent = blast(addr, &wire, &[], 0, Duration::ZERO);
    let _ = (sent, total);
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kib();
    still_serves(&mut good, 1);
    let growth = after.saturating_sub(before);
    assert!(
        growth < 64 * 1024,
        "RSS grew by {growth} KiB under a {total}-byte DATA flood"
    );
}

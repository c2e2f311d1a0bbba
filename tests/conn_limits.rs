//! The connection's abuse accounting on a virtual clock, through the
//! scripted [`Raw`] peer: the wasted-frames budget (PRIORITY, unknown
//! types, late frames on closed streams, refused streams, the peer's
//! stream errors), the rapid-reset count with its "MadeYouReset" variant
//! (CVE-2025-8671) and honest cancellations that must never trip it, and
//! RFC 9113 §5.1's connection error for HEADERS on a stream that closed
//! normally (h2spec http2/5.1 #12).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/pair.rs"]
mod pair;

use std::time::Duration;

use mio_grpc::conn::{AbuseLimit, CloseReason, ConnConfig, ConnEvent, ConnViolation};
use mio_grpc::framer::{Reason, StreamId};
use mio_grpc::loopy::Item;
use pair::*;

const WASTED: &[u8] = b"wasted_frames: too many frames that do no work";
const RESETS: &[u8] = b"peer_resets: too many streams reset by the peer";

fn wasted_budget(max: u32) -> ConnConfig {
    let mut config = ConnConfig::default();
    config.limits.wasted_frames.max = max;
    config
}

/// A PRIORITY frame on `id` (depends on 0, weight 16), as raw bytes.
fn priority_bytes(id: u32) -> Vec<u8> {
    let mut frame = vec![0, 0, 5, 0x2, 0];
    frame.extend_from_slice(&id.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0, 15]);
    frame
}

/// An empty frame of an unknown type (0xfa) on stream 0.
fn unknown_bytes() -> Vec<u8> {
    vec![0, 0, 0, 0xfa, 0, 0, 0, 0, 0]
}

/// Stream `n`: a complete request answered with a trailers-only response,
/// so it is closed on both sides.
fn complete_stream(raw: &mut Raw, n: u32) {
    raw.send(headers(n, grpc_request("/svc/M"), true));
    raw.put(Item::Headers {
        key: key(n),
        fields: vec![field(":status", "200"), field("grpc-status", "0")],
        end_stream: true,
    });
    assert!(raw
        .take_events()
        .iter()
        .any(|e| matches!(e, ConnEvent::Closed { .. })));
}

fn goaways(raw: &mut Raw) -> Vec<String> {
    raw.take_described()
        .into_iter()
        .filter(|f| f.starts_with("GOAWAY"))
        .collect()
}

#[test]
fn sec5_1_headers_on_a_stream_closed_by_end_stream_is_a_connection_error_stream_closed() {
    // h2spec http2/5.1 #12: "An endpoint that receives any frames after
    // receiving a frame with the END_STREAM flag set MUST treat that as a
    // connection error of type STREAM_CLOSED."
    let mut raw = Raw::server(ConnConfig::default());
    complete_stream(&mut raw, 1);
    raw.take_frames();
    raw.send(headers(1, grpc_request("/svc/M"), true));
    let frames = raw.take_frames();
    assert!(
        matches!(&frames[..], [f] if describe(f).starts_with("GOAWAY last=1 STREAM_CLOSED")),
        "{:?}",
        describe_quiet(&frames)
    );
    assert!(raw.conn.is_finished());
    assert_eq!(
        raw.take_events().last(),
        Some(&ConnEvent::ConnectionClosed {
            reason: CloseReason::LocalError(ConnViolation::HeadersOnClosedStream {
                id: StreamId::new(1)
            })
        })
    );
}

#[test]
fn sec5_1_headers_on_a_stream_we_reset_are_ignored() {
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), false));
    raw.conn.reset(key(1), Reason::CANCEL, raw.now);
    raw.flush();
    raw.take_frames();
    raw.send(headers(1, vec![field("grpc-status", "0")], true));
    assert_eq!(goaways(&mut raw), [] as [String; 0]);
    assert!(!raw.conn.is_finished());
}

#[test]
fn priority_frames_past_the_wasted_budget_get_enhance_your_calm() {
    let mut raw = Raw::server(wasted_budget(50));
    for i in 0..50 {
        raw.send_bytes(&priority_bytes(1 + 2 * i));
    }
    assert_eq!(raw.take_frames(), []);
    assert_eq!(raw.conn.stats().wasted_frames, 50);
    raw.send_bytes(&priority_bytes(101));
    assert_eq!(
        raw.take_frames(),
        [goaway_debug(0, Reason::ENHANCE_YOUR_CALM, WASTED)]
    );
    assert_eq!(raw.conn.stats().abuse_breaches, 1);
    assert_eq!(
        raw.take_events().last(),
        Some(&ConnEvent::ConnectionClosed {
            reason: CloseReason::LocalError(ConnViolation::Limit(AbuseLimit::WastedFrames))
        })
    );
}

#[test]
fn unknown_frames_past_the_wasted_budget_get_enhance_your_calm() {
    let mut raw = Raw::server(wasted_budget(20));
    for _ in 0..20 {
        raw.send_bytes(&unknown_bytes());
    }
    assert_eq!(raw.take_frames(), []);
    raw.send_bytes(&unknown_bytes());
    assert_eq!(
        raw.take_frames(),
        [goaway_debug(0, Reason::ENHANCE_YOUR_CALM, WASTED)]
    );
}

#[test]
fn the_wasted_budget_is_per_window() {
    let mut raw = Raw::server(wasted_budget(20));
    for _ in 0..5 {
        for _ in 0..20 {
            raw.send_bytes(&unknown_bytes());
        }
        raw.advance(Duration::from_secs(10));
    }
    assert_eq!(goaways(&mut raw), [] as [String; 0]);
    assert_eq!(raw.conn.stats().wasted_frames, 100);
}

#[test]
fn late_window_updates_on_a_closed_stream_are_free_twice_then_cost() {
    let mut raw = Raw::server(wasted_budget(10));
    complete_stream(&mut raw, 1);
    raw.take_frames();
    // §6.9: a WINDOW_UPDATE may cross our END_STREAM; so may a RST_STREAM.
    raw.send(window_update(1, 100));
    raw.send(rst(1, Reason::CANCEL));
    assert_eq!(raw.conn.stats().wasted_frames, 0);
    for _ in 0..10 {
        raw.send(window_update(1, 100));
    }
    assert_eq!(raw.take_frames(), []);
    raw.send(window_update(1, 100));
    assert_eq!(
        raw.take_frames(),
        [goaway_debug(1, Reason::ENHANCE_YOUR_CALM, WASTED)]
    );
}

#[test]
fn data_on_closed_streams_answered_with_rst_stream_costs_until_goaway() {
    let mut config = wasted_budget(10);
    config.limits.peer_resets.max = 1_000;
    let mut raw = Raw::server(config);
    for i in 0..11 {
        complete_stream(&mut raw, 1 + 2 * i);
    }
    raw.take_frames();
    for i in 0..10 {
        raw.send(data(1 + 2 * i, b"x", false));
    }
    let answers: Vec<String> = raw
        .take_described()
        .into_iter()
        .filter(|f| !f.starts_with("WINDOW_UPDATE") && !f.starts_with("PING"))
        .collect();
    assert_eq!(answers.len(), 10, "{answers:?}");
    assert!(answers
        .iter()
        .all(|f| f.starts_with("RST_STREAM") && f.contains("STREAM_CLOSED")));
    // A second DATA on a stream we have answered is ignored, and free.
    raw.send(data(1, b"x", false));
    assert_eq!(goaways(&mut raw), [] as [String; 0]);
    raw.send(data(21, b"x", false));
    assert_eq!(
        goaways(&mut raw),
        [describe(&goaway_debug(
            21,
            Reason::ENHANCE_YOUR_CALM,
            WASTED
        ))]
    );
}

#[test]
fn late_data_on_a_stream_we_reset_is_free() {
    // Bytes the peer sent before our RST_STREAM arrived: flow-controlled,
    // and no answer is due.
    let mut raw = Raw::server(wasted_budget(10));
    raw.send(headers(1, grpc_request("/svc/M"), false));
    raw.conn.reset(key(1), Reason::CANCEL, raw.now);
    raw.flush();
    raw.take_frames();
    for _ in 0..50 {
        raw.send(data(1, b"late bytes", false));
    }
    assert_eq!(goaways(&mut raw), [] as [String; 0]);
    assert_eq!(raw.conn.stats().wasted_frames, 0);
}

#[test]
fn refused_streams_cost_from_the_wasted_budget() {
    let config = ConnConfig {
        max_concurrent_streams: 1,
        ..wasted_budget(5)
    };
    let mut raw = Raw::server(config);
    raw.send(headers(1, grpc_request("/svc/M"), false));
    for i in 1..=5 {
        raw.send(headers(1 + 2 * i, grpc_request("/svc/M"), false));
    }
    assert_eq!(raw.conn.stats().streams_refused, 5);
    assert_eq!(goaways(&mut raw), [] as [String; 0]);
    raw.send(headers(13, grpc_request("/svc/M"), false));
    assert_eq!(
        goaways(&mut raw),
        [describe(&goaway_debug(
            13,
            Reason::ENHANCE_YOUR_CALM,
            WASTED
        ))]
    );
}

/// "MadeYouReset": the client completes a request, then makes the server
/// reset the stream with a frame that is a stream error (WINDOW_UPDATE 0).
fn made_you_reset(raw: &mut Raw, n: u32) {
    raw.send(headers(n, grpc_request("/svc/M"), true));
    raw.send(window_update(n, 0));
}

#[test]
fn resets_we_send_for_the_peers_faults_count_as_its_resets() {
    let mut raw = Raw::server(ConnConfig::default()); // 200 per 10 s
    for i in 0..200 {
        made_you_reset(&mut raw, 1 + 2 * i);
    }
    let frames = raw.take_described();
    assert_eq!(frames.len(), 200, "each stream reset: {frames:?}");
    assert!(frames
        .iter()
        .all(|f| f.starts_with("RST_STREAM") && f.contains("PROTOCOL_ERROR")));
    assert_eq!(raw.conn.stats().rapid_resets, 200);
    made_you_reset(&mut raw, 401);
    assert_eq!(
        raw.take_frames(),
        [goaway_debug(401, Reason::ENHANCE_YOUR_CALM, RESETS)]
    );
}

#[test]
fn honest_cancellations_after_the_stream_ran_never_count() {
    // Our own client on a slow server: each call's deadline expires and it
    // resets the stream; 1,000 of them on one connection are no attack.
    let mut raw = Raw::server(ConnConfig::default());
    for i in 0..1_000u32 {
        let n = 1 + 2 * i;
        raw.send(headers(n, grpc_request("/svc/M"), true));
        raw.advance(Duration::from_millis(20));
        raw.send(rst(n, Reason::CANCEL));
    }
    assert_eq!(goaways(&mut raw), [] as [String; 0]);
    assert_eq!(raw.conn.stats().rapid_resets, 0);
    assert_eq!(raw.conn.stats().streams_reset_remote, 1_000);
}

#[test]
fn streams_that_complete_offset_early_resets() {
    let mut raw = Raw::server(ConnConfig::default());
    let mut n = 1;
    for _ in 0..600 {
        raw.send(headers(n, grpc_request("/svc/M"), false));
        raw.send(rst(n, Reason::CANCEL));
        complete_stream(&mut raw, n + 2);
        n += 4;
    }
    assert_eq!(goaways(&mut raw), [] as [String; 0]);
    assert_eq!(raw.conn.stats().rapid_resets, 600);
}

#[test]
fn rapid_reset_without_completions_still_gets_goaway() {
    let mut raw = Raw::server(ConnConfig::default());
    for i in 0..201u32 {
        let n = 1 + 2 * i;
        raw.send(headers(n, grpc_request("/svc/M"), false));
        raw.send(rst(n, Reason::CANCEL));
    }
    let last = StreamId::new(401).value();
    assert_eq!(
        goaways(&mut raw),
        [describe(&goaway_debug(
            last,
            Reason::ENHANCE_YOUR_CALM,
            RESETS
        ))]
    );
}

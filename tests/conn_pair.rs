//! End-to-end tests of `conn::Connection` through the in-memory [`Pair`]
//! and the scripted [`Raw`] peer (`tests/common/pair.rs`), on a virtual
//! clock: the SETTINGS handshake and its ack timeout (RFC 9113 §6.5.3),
//! a full request/response, client and server keepalive, keepalive
//! enforcement (grpc-go's ping strikes), MaxConnectionIdle,
//! MaxConnectionAge (+ grace), the two-GOAWAY graceful drain (§6.8), the
//! preface timeout, a GOAWAY received by a client, MAX_CONCURRENT_STREAMS
//! (§5.1.2), flow control end to end (§6.9) and the rapid-reset limit.
//! Each test asserts the exact events and frames of both sides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/pair.rs"]
mod pair;

use std::time::Duration;

use bytes::Bytes;
use mio_grpc::conn::validate::{RequestHead, ResponseHead};
use mio_grpc::conn::{AbuseLimit, CloseReason, ConnConfig, ConnEvent, ConnViolation};
use mio_grpc::framer::{self, Frame, Reason, SettingId, Settings, StreamId};
use mio_grpc::loopy::{DropCause, InboundConfig, Item, Role, StreamKey};
use pair::*;

const KEEPALIVE: [u8; 8] = *b"keepaliv";
const DRAIN: [u8; 8] = [1, 6, 1, 8, 0, 3, 3, 9];
const MAX_ID: u32 = 0x7fff_ffff;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn id(n: u32) -> StreamId {
    StreamId::new(n)
}

fn closed(reason: CloseReason) -> ConnEvent {
    ConnEvent::ConnectionClosed { reason }
}

fn local_error(violation: ConnViolation) -> ConnEvent {
    closed(CloseReason::LocalError(violation))
}

fn goaway_event(last: u32, reason: Reason) -> ConnEvent {
    ConnEvent::GoAway {
        last_stream_id: id(last),
        reason,
        debug_data: Bytes::new(),
    }
}

fn ok_response_head() -> ResponseHead {
    ResponseHead {
        status: 200,
        fields: vec![field("content-type", "application/grpc")],
        content_length: None,
    }
}

/// A client stream with a request head and no END_STREAM: keeps a stream
/// active for as long as the test likes.
fn open_long_stream(pair: &mut Pair) -> StreamKey {
    let key = pair.open(grpc_request("/svc/Stream"), false);
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        [ConnEvent::Opened { key, id: id(1) }]
    );
    pair.client.take_frames();
    pair.server.take_frames();
    pair.server.take_events();
    key
}

// --- handshake and one call ---------------------------------------------------

#[test]
fn sec3_4_handshake_exchanges_settings_and_acks() {
    let config = ConnConfig::default();
    let mut pair = Pair::new();
    pair.drive();
    assert_eq!(
        pair.client.take_frames(),
        [initial_settings(Role::Client, &config), settings_ack()]
    );
    assert_eq!(
        pair.server.take_frames(),
        [initial_settings(Role::Server, &config), settings_ack()]
    );
    assert_eq!(pair.client.take_events(), []);
    assert_eq!(pair.server.take_events(), []);
    // The SETTINGS-ack and preface timers are off; only the server's
    // keepalive (2 h) is left.
    assert_eq!(pair.client.conn.next_timeout(), None);
    assert_eq!(
        pair.server.conn.next_timeout(),
        Some(pair.t0 + secs(2 * 3600))
    );
}

#[test]
fn unary_round_trip_reports_every_event_on_both_sides() {
    let mut pair = Pair::connected(ConnConfig::default(), ConnConfig::default());
    let key = pair.open(grpc_request("/svc/Echo"), false);
    pair.client.put(Item::Data {
        key,
        data: Bytes::from_static(b"hello"),
        end_stream: true,
    });
    pair.drive();

    assert_eq!(
        pair.client.take_events(),
        [
            ConnEvent::Opened { key, id: id(1) },
            ConnEvent::Sent { key }
        ]
    );
    let request = RequestHead {
        method: Bytes::from_static(b"POST"),
        scheme: Some(Bytes::from_static(b"http")),
        authority: Some(Bytes::from_static(b"localhost")),
        path: Some(Bytes::from_static(b"/svc/Echo")),
        protocol: None,
        fields: vec![
            field("content-type", "application/grpc"),
            field("te", "trailers"),
        ],
        content_length: None,
    };
    assert_eq!(
        quiet_events(pair.server.take_events()),
        [
            ConnEvent::Request {
                id: id(1),
                head: request,
                end_stream: false,
            },
            ConnEvent::Data {
                key: StreamKey(1),
                data: Bytes::from_static(b"hello"),
                end_stream: true,
            },
        ]
    );
    assert_eq!(
        describe_quiet(&pair.client.take_frames()),
        ["HEADERS s=1", "DATA s=1 len=5 es"]
    );

    pair.respond(id(1), b"world");
    pair.drive();
    assert_eq!(
        describe_quiet(&pair.server.take_frames()),
        ["HEADERS s=1", "DATA s=1 len=5", "HEADERS s=1 es"]
    );
    assert_eq!(
        quiet_events(pair.server.take_events()),
        [
            ConnEvent::Sent { key: StreamKey(1) },
            ConnEvent::Closed { key: StreamKey(1) },
        ]
    );
    assert_eq!(
        quiet_events(pair.client.take_events()),
        [
            ConnEvent::Response {
                key,
                head: ok_response_head(),
                end_stream: false,
            },
            ConnEvent::Data {
                key,
                data: Bytes::from_static(b"world"),
                end_stream: false,
            },
            ConnEvent::Trailers {
                key,
                fields: ok_trailers(),
            },
            ConnEvent::Closed { key },
        ]
    );
    assert_eq!(pair.client.conn.active_streams(), 0);
    assert_eq!(pair.server.conn.active_streams(), 0);
}

// --- SETTINGS ack timeout (RFC 9113 §6.5.3) --------------------------------------

#[test]
fn sec6_5_3_server_unacked_settings_get_goaway_settings_timeout() {
    let config = ConnConfig::default();
    let mut raw = Raw::new(Role::Server, config.clone());
    raw.send_bytes(framer::PREFACE);
    raw.send(Settings::new());
    // The peer never acknowledges the server's SETTINGS.
    assert_eq!(
        raw.take_frames(),
        [initial_settings(Role::Server, &config), settings_ack()]
    );
    raw.advance(secs(19));
    assert_eq!(raw.take_frames(), []);
    assert_eq!(raw.take_events(), []);
    raw.advance(secs(1));
    assert_eq!(
        raw.take_frames(),
        [goaway_debug(
            0,
            Reason::SETTINGS_TIMEOUT,
            b"SETTINGS not acknowledged in time"
        )]
    );
    assert_eq!(raw.take_events(), [closed(CloseReason::SettingsTimeout)]);
    assert!(raw.conn.is_finished());
}

#[test]
fn sec6_5_3_client_unacked_settings_get_goaway_settings_timeout() {
    let mut raw = Raw::new(Role::Client, ConnConfig::default());
    raw.send(Settings::new());
    raw.take_frames();
    raw.advance(secs(20));
    assert_eq!(
        raw.take_frames(),
        [goaway_debug(
            0,
            Reason::SETTINGS_TIMEOUT,
            b"SETTINGS not acknowledged in time"
        )]
    );
    assert_eq!(raw.take_events(), [closed(CloseReason::SettingsTimeout)]);
}

#[test]
fn sec6_5_3_acked_settings_stop_the_ack_timer() {
    let mut raw = Raw::server(ConnConfig::default());
    raw.advance(secs(3600));
    assert!(!raw.conn.is_finished());
    assert!(raw
        .take_described()
        .iter()
        .all(|f| !f.starts_with("GOAWAY")));
}

// --- application pings ------------------------------------------------------------

#[test]
fn sec6_7_an_application_ping_is_answered_and_reported_as_pong() {
    let mut pair = Pair::connected(ConnConfig::default(), ConnConfig::default());
    pair.client.conn.ping(*b"app-ping");
    pair.drive();
    assert_eq!(pair.server.take_frames(), [pong(*b"app-ping")]);
    assert_eq!(
        quiet_events(pair.client.take_events()),
        [ConnEvent::Pong {
            payload: *b"app-ping"
        }]
    );
}

// --- client keepalive ------------------------------------------------------------

fn client_keepalive(time: u64) -> ConnConfig {
    let mut config = ConnConfig::default();
    config.client_keepalive.time = Some(secs(time));
    config
}

#[test]
fn client_keepalive_pings_an_active_stream_after_time_and_a_pong_is_quiet() {
    let mut pair = Pair::connected(client_keepalive(10), ConnConfig::default());
    open_long_stream(&mut pair);
    pair.advance(secs(9));
    assert_eq!(pair.client.take_frames(), []);
    pair.advance(secs(1));
    assert_eq!(pair.client.take_frames(), [ping(KEEPALIVE)]);
    assert_eq!(pair.server.take_frames(), [pong(KEEPALIVE)]);
    assert_eq!(pair.client.take_events(), [] as [ConnEvent; 0]);
    // The pong came back: the keepalive timeout (20 s) does not fire.
    pair.advance(secs(9));
    assert_eq!(pair.client.take_events(), []);
    assert!(!pair.client.conn.is_finished());
}

#[test]
fn client_keepalive_pings_again_one_interval_after_each_pong() {
    let mut pair = Pair::connected(client_keepalive(10), ConnConfig::default());
    open_long_stream(&mut pair);
    pair.advance(secs(10));
    assert_eq!(pair.client.take_frames(), [ping(KEEPALIVE)]);
    assert_eq!(pair.server.take_frames(), [pong(KEEPALIVE)]);
    pair.client.take_events();
    // Nothing read since the pong at 10 s: the next ping is due at 20 s,
    // and this time the server does not answer: closed 20 s later.
    pair.server.link_up = false;
    pair.advance(secs(9));
    assert_eq!(pair.client.take_frames(), []);
    pair.advance(secs(1));
    assert_eq!(pair.client.take_frames(), [ping(KEEPALIVE)]);
    pair.advance(secs(19));
    assert_eq!(pair.client.take_events(), []);
    pair.advance(secs(1));
    assert_eq!(
        pair.client.take_events(),
        [closed(CloseReason::KeepaliveTimeout)]
    );
    assert_eq!(pair.elapsed(), secs(40));
}

#[test]
fn client_keepalive_unanswered_ping_closes_after_timeout() {
    let mut pair = Pair::connected(client_keepalive(10), ConnConfig::default());
    open_long_stream(&mut pair);
    pair.server.link_up = false;
    pair.advance(secs(10));
    assert_eq!(pair.client.take_frames(), [ping(KEEPALIVE)]);
    pair.advance(secs(19));
    assert_eq!(pair.client.take_events(), []);
    pair.advance(secs(1));
    assert_eq!(
        pair.client.take_events(),
        [closed(CloseReason::KeepaliveTimeout)]
    );
    assert_eq!(pair.elapsed(), secs(30));
    // grpc-go closes the transport without a GOAWAY.
    assert_eq!(pair.client.take_frames(), []);
}

#[test]
fn client_keepalive_reads_postpone_the_ping() {
    let mut pair = Pair::connected(client_keepalive(10), ConnConfig::default());
    let key = open_long_stream(&mut pair);
    pair.advance(secs(6));
    pair.server.put(Item::Headers {
        key: StreamKey(1),
        fields: ok_response(),
        end_stream: false,
    });
    pair.drive();
    assert!(matches!(
        pair.client.take_events()[..],
        [ConnEvent::Response { key: k, .. }] if k == key
    ));
    pair.advance(secs(9)); // 15 s: 9 s since the last read
    assert_eq!(pair.client.take_frames(), []);
    pair.advance(secs(1));
    assert_eq!(pair.client.take_frames(), [ping(KEEPALIVE)]);
}

#[test]
fn client_keepalive_without_streams_does_not_ping_unless_permitted() {
    let mut pair = Pair::connected(client_keepalive(10), ConnConfig::default());
    pair.advance(secs(60));
    assert_eq!(pair.client.take_frames(), []);
    assert_eq!(pair.client.take_events(), []);

    let mut config = client_keepalive(10);
    config.client_keepalive.permit_without_stream = true;
    let mut pair = Pair::connected(config, ConnConfig::default());
    pair.advance(secs(10));
    assert_eq!(pair.client.take_frames(), [ping(KEEPALIVE)]);
}

#[test]
fn client_keepalive_time_below_10s_is_raised_to_10s() {
    let mut pair = Pair::connected(client_keepalive(1), ConnConfig::default());
    open_long_stream(&mut pair);
    pair.advance(secs(9));
    assert_eq!(pair.client.take_frames(), []);
    pair.advance(secs(1));
    assert_eq!(pair.client.take_frames(), [ping(KEEPALIVE)]);
}

// --- server keepalive ------------------------------------------------------------

fn server_keepalive(time: u64, timeout: u64) -> ConnConfig {
    let mut config = ConnConfig::default();
    config.server_keepalive.time = secs(time);
    config.server_keepalive.timeout = secs(timeout);
    config
}

#[test]
fn server_keepalive_pings_the_client_after_time() {
    let mut pair = Pair::connected(ConnConfig::default(), server_keepalive(30, 5));
    pair.advance(secs(29));
    assert_eq!(pair.server.take_frames(), []);
    pair.advance(secs(1));
    assert_eq!(pair.server.take_frames(), [ping(KEEPALIVE)]);
    assert_eq!(pair.client.take_frames(), [pong(KEEPALIVE)]);
    assert_eq!(pair.server.take_events(), [] as [ConnEvent; 0]);
    pair.advance(secs(5));
    assert!(!pair.server.conn.is_finished());
}

#[test]
fn server_keepalive_pings_again_one_interval_after_each_pong() {
    let mut pair = Pair::connected(ConnConfig::default(), server_keepalive(30, 5));
    pair.advance(secs(30));
    assert_eq!(pair.server.take_frames(), [ping(KEEPALIVE)]);
    pair.advance(secs(30));
    assert_eq!(pair.server.take_frames(), [ping(KEEPALIVE)]);
}

#[test]
fn server_keepalive_unanswered_ping_closes_after_timeout() {
    let mut pair = Pair::connected(ConnConfig::default(), server_keepalive(30, 5));
    pair.client.link_up = false;
    pair.advance(secs(30));
    assert_eq!(pair.server.take_frames(), [ping(KEEPALIVE)]);
    pair.advance(secs(4));
    assert_eq!(pair.server.take_events(), []);
    pair.advance(secs(1));
    assert_eq!(
        pair.server.take_events(),
        [closed(CloseReason::KeepaliveTimeout)]
    );
    assert_eq!(pair.elapsed(), secs(35));
}

// --- keepalive enforcement (grpc-go's ping strikes) ------------------------------

/// Waits `wait`, sends PING `n` (payload `[n; 8]`); the frames sent back.
fn ping_after(raw: &mut Raw, wait: Duration, n: u8) -> Vec<String> {
    raw.advance(wait);
    raw.send(ping([n; 8]));
    raw.take_described()
}

fn ack_of(n: u8) -> Vec<String> {
    vec![describe(&pong([n; 8]))]
}

fn too_many_pings(last: u32) -> Vec<String> {
    vec![describe(&goaway_debug(
        last,
        Reason::ENHANCE_YOUR_CALM,
        b"too_many_pings",
    ))]
}

#[test]
fn enforcement_third_strike_gets_goaway_too_many_pings() {
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), false));
    raw.take_events();
    // The first ping is free; the next three are each a strike (1 s < 5 min).
    for n in 1..=3 {
        assert_eq!(ping_after(&mut raw, secs(1), n), ack_of(n), "ping {n}");
    }
    assert_eq!(ping_after(&mut raw, secs(1), 4), too_many_pings(1));
    assert_eq!(
        raw.take_events(),
        [local_error(ConnViolation::TooManyPings)]
    );
    assert_eq!(raw.conn.stats().ping_strikes, 1);
}

#[test]
fn enforcement_pings_at_min_time_are_no_strike() {
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), false));
    for n in 1..=10 {
        assert_eq!(ping_after(&mut raw, secs(300), n), ack_of(n), "ping {n}");
    }
    assert!(!raw.conn.is_finished());
}

#[test]
fn enforcement_server_headers_and_data_reset_the_strikes() {
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), false));
    for n in 1..=3 {
        assert_eq!(ping_after(&mut raw, secs(1), n), ack_of(n), "ping {n}");
    }
    // Two strikes so far. The server writes HEADERS: grpc-go resets.
    raw.put(Item::Headers {
        key: key(1),
        fields: ok_response(),
        end_stream: false,
    });
    assert_eq!(raw.take_described(), ["HEADERS s=1"]);
    assert_eq!(ping_after(&mut raw, secs(1), 4), ack_of(4)); // reset: no strike
    assert_eq!(ping_after(&mut raw, secs(1), 5), ack_of(5)); // strike 1
                                                             // DATA resets them too.
    raw.put(Item::Data {
        key: key(1),
        data: Bytes::from_static(b"x"),
        end_stream: false,
    });
    assert_eq!(raw.take_described(), ["DATA s=1 len=1"]);
    for n in 6..=8 {
        assert_eq!(ping_after(&mut raw, secs(1), n), ack_of(n), "ping {n}");
    }
    assert_eq!(ping_after(&mut raw, secs(1), 9), too_many_pings(1));
}

#[test]
fn ping_flood_limit_counts_only_pings_with_nothing_sent_since_so_bdp_pings_are_free() {
    // A BDP estimator (grpc-go's, ours) pings once per round trip that
    // carries data: a busy connection sees thousands per 10 s. Those follow
    // our HEADERS/DATA and must never trip the flood limit.
    let mut config = ConnConfig::default();
    config.limits.pings.max = 5;
    config.enforcement.min_time = Duration::ZERO;
    let mut raw = Raw::server(config);
    raw.send(headers(1, grpc_request("/svc/M"), false));
    raw.take_events();
    let ms = Duration::from_millis(1);
    for n in 0..50u8 {
        raw.put(Item::Data {
            key: key(1),
            data: Bytes::from_static(b"x"),
            end_stream: false,
        });
        assert_eq!(raw.take_described(), ["DATA s=1 len=1"]);
        assert_eq!(ping_after(&mut raw, ms, n), ack_of(n), "BDP-style ping {n}");
    }
    // With nothing sent in between they count: five fit in the window...
    for n in 50..55u8 {
        assert_eq!(ping_after(&mut raw, ms, n), ack_of(n), "ping {n}");
    }
    // ...and the sixth is a flood.
    let frames = ping_after(&mut raw, ms, 55);
    assert!(
        frames
            .iter()
            .any(|f| f.starts_with("GOAWAY") && f.contains("ENHANCE_YOUR_CALM")),
        "{frames:?}"
    );
    assert_eq!(raw.conn.stats().abuse_breaches, 1);
}

#[test]
fn enforcement_without_streams_a_ping_within_2h_is_a_strike() {
    let mut raw = Raw::server(ConnConfig::default());
    // 10 min apart: above min_time, but no stream is active.
    for n in 1..=3 {
        assert_eq!(ping_after(&mut raw, secs(600), n), ack_of(n), "ping {n}");
    }
    assert_eq!(ping_after(&mut raw, secs(600), 4), too_many_pings(0));
}

#[test]
fn enforcement_without_streams_pings_2h_apart_are_fine() {
    let mut raw = Raw::server(ConnConfig::default());
    for n in 1..=5 {
        let frames = ping_after(&mut raw, secs(2 * 3600 + 1), n);
        // The server's own keepalive ping (2 h idle) precedes the ack.
        assert_eq!(frames.last(), ack_of(n).last(), "ping {n}: {frames:?}");
        assert!(
            frames.iter().all(|f| !f.starts_with("GOAWAY")),
            "{frames:?}"
        );
    }
    assert!(!raw.conn.is_finished());
}

#[test]
fn enforcement_permit_without_stream_uses_min_time() {
    let mut config = ConnConfig::default();
    config.enforcement.permit_without_stream = true;
    let mut raw = Raw::server(config);
    for n in 1..=5 {
        assert_eq!(ping_after(&mut raw, secs(300), n), ack_of(n), "ping {n}");
    }
    // Closer than min_time: strikes 1 and 2, then the third is out.
    for n in 6..=7 {
        assert_eq!(ping_after(&mut raw, secs(299), n), ack_of(n), "ping {n}");
    }
    assert_eq!(ping_after(&mut raw, secs(299), 8), too_many_pings(0));
}

#[test]
fn client_keepalive_10s_against_default_enforcement_gets_too_many_pings() {
    // grpc-go's classic misconfiguration: the client pings every 10 s, the
    // server allows one per 5 min. Pings at 10, 20, 30 s are acked (two
    // strikes); the one at 40 s is the third strike.
    let mut pair = Pair::connected(client_keepalive(10), ConnConfig::default());
    open_long_stream(&mut pair);
    pair.advance(secs(39));
    assert_eq!(
        pair.client.take_frames(),
        [ping(KEEPALIVE), ping(KEEPALIVE), ping(KEEPALIVE)]
    );
    assert_eq!(
        pair.server.take_frames(),
        [pong(KEEPALIVE), pong(KEEPALIVE), pong(KEEPALIVE)]
    );
    pair.advance(secs(1));
    assert_eq!(
        pair.server.take_frames(),
        [goaway_debug(
            1,
            Reason::ENHANCE_YOUR_CALM,
            b"too_many_pings"
        )]
    );
    assert_eq!(
        pair.client.take_events(),
        [
            ConnEvent::GoAway {
                last_stream_id: id(1),
                reason: Reason::ENHANCE_YOUR_CALM,
                debug_data: Bytes::from_static(b"too_many_pings"),
            },
            closed(CloseReason::PeerError {
                reason: Reason::ENHANCE_YOUR_CALM,
                debug: "too_many_pings".into(),
            }),
        ]
    );
}

// --- MaxConnectionIdle ------------------------------------------------------------

fn max_idle(idle: u64) -> ConnConfig {
    let mut config = ConnConfig::default();
    config.server_keepalive.max_connection_idle = Some(secs(idle));
    config
}

#[test]
fn max_connection_idle_sends_graceful_goaway() {
    let mut pair = Pair::connected(ConnConfig::default(), max_idle(60));
    pair.advance(secs(59));
    assert_eq!(pair.server.take_frames(), []);
    pair.advance(secs(1));
    assert_eq!(
        pair.server.take_frames(),
        [goaway(MAX_ID, Reason::NO_ERROR), ping(DRAIN)]
    );
    // A client with no streams leaves at once (grpc-go does the same).
    assert_eq!(
        pair.client.take_events(),
        [
            goaway_event(MAX_ID, Reason::NO_ERROR),
            closed(CloseReason::Done)
        ]
    );
    // The client's socket closes under the draining server.
    assert_eq!(
        pair.server.take_events(),
        [closed(CloseReason::Transport(
            "the peer closed the connection".into()
        ))]
    );
}

#[test]
fn max_connection_idle_restarts_when_the_last_stream_ends() {
    let mut pair = Pair::connected(ConnConfig::default(), max_idle(60));
    pair.advance_to(secs(50));
    let key = pair.open(grpc_request("/svc/M"), true);
    pair.drive();
    // Active from 50 s to 130 s: no GOAWAY meanwhile.
    pair.advance_to(secs(130));
    assert_eq!(
        describe_quiet(&pair.server.take_frames()),
        [] as [String; 0]
    );
    pair.respond(id(1), b"");
    pair.drive();
    assert_eq!(
        pair.client.take_events().last(),
        Some(&ConnEvent::Closed { key })
    );
    pair.server.take_frames();
    pair.advance_to(secs(189));
    assert_eq!(pair.server.take_frames(), []);
    pair.advance_to(secs(190));
    assert_eq!(
        pair.server.take_frames(),
        [goaway(MAX_ID, Reason::NO_ERROR), ping(DRAIN)]
    );
}

// --- MaxConnectionAge ---------------------------------------------------------------

#[test]
fn max_connection_age_is_jittered_within_ten_percent() {
    let mut config = ConnConfig::default();
    config.server_keepalive.max_connection_age = Some(secs(100));
    // Push every other timer out so next_timeout is the age deadline.
    config.settings_timeout = secs(3600);
    config.preface_timeout = secs(3600);
    let t0 = std::time::Instant::now();
    let mut ages = Vec::new();
    for seed in 0..200 {
        let conn = mio_grpc::conn::Connection::new(
            Role::Server,
            config.clone(),
            std::sync::Arc::new(mio_grpc::loopy::NoWake),
            t0,
            seed,
        );
        let age = conn.next_timeout().unwrap() - t0;
        assert!(
            (secs(90)..=secs(110)).contains(&age),
            "seed {seed}: age {age:?}"
        );
        ages.push(age);
    }
    ages.sort();
    ages.dedup();
    assert!(ages.len() > 100, "the jitter barely varies: {ages:?}");
    assert!(ages[0] < secs(95) && *ages.last().unwrap() > secs(105));
}

/// Advances a second at a time until the server sends something; returns
/// the server's frames then.
fn advance_until_server_sends(pair: &mut Pair, limit: Duration) -> Vec<Frame> {
    while pair.elapsed() < limit {
        pair.advance(secs(1));
        let frames = pair.server.take_frames();
        if !frames.is_empty() {
            return frames;
        }
    }
    panic!("the server sent nothing in {limit:?}");
}

fn max_age(age: u64, grace: Option<u64>) -> ConnConfig {
    let mut config = ConnConfig::default();
    config.server_keepalive.max_connection_age = Some(secs(age));
    config.server_keepalive.max_connection_age_grace = grace.map(secs);
    config
}

#[test]
fn max_connection_age_drains_with_two_goaways() {
    let mut pair = Pair::connected(ConnConfig::default(), max_age(100, None));
    let key = open_long_stream(&mut pair);
    let frames = advance_until_server_sends(&mut pair, secs(120));
    let age = pair.elapsed();
    assert!((secs(90)..=secs(110)).contains(&age), "age {age:?}");
    // GOAWAY(2^31-1) + PING; the client's ack; GOAWAY(last stream).
    assert_eq!(
        frames,
        [
            goaway(MAX_ID, Reason::NO_ERROR),
            ping(DRAIN),
            goaway(1, Reason::NO_ERROR)
        ]
    );
    assert_eq!(pair.client.take_frames(), [pong(DRAIN)]);
    assert_eq!(
        pair.client.take_events(),
        [
            goaway_event(MAX_ID, Reason::NO_ERROR),
            goaway_event(1, Reason::NO_ERROR)
        ]
    );
    assert_eq!(pair.server.take_events(), [] as [ConnEvent; 0]);
    // No new streams on the client.
    let refused = pair.open(grpc_request("/svc/M"), true);
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        [ConnEvent::Dropped {
            key: refused,
            cause: DropCause::PeerGoAway,
            opened: false
        }]
    );
    // Without a grace period the open stream is waited for, however long.
    pair.advance(secs(3000));
    assert!(!pair.server.conn.is_finished());
    // It finishes: both ends close, Done.
    pair.client.put(Item::Data {
        key,
        data: Bytes::new(),
        end_stream: true,
    });
    pair.respond(id(1), b"");
    pair.drive();
    assert_eq!(
        quiet_events(pair.server.take_events()),
        [
            ConnEvent::Data {
                key: StreamKey(1),
                data: Bytes::new(),
                end_stream: true
            },
            ConnEvent::Sent { key: StreamKey(1) },
            ConnEvent::Closed { key: StreamKey(1) },
            closed(CloseReason::Done),
        ]
    );
    assert_eq!(
        pair.client.take_events(),
        [
            ConnEvent::Sent { key },
            ConnEvent::Response {
                key,
                head: ok_response_head(),
                end_stream: false
            },
            ConnEvent::Trailers {
                key,
                fields: ok_trailers()
            },
            ConnEvent::Closed { key },
            closed(CloseReason::Done),
        ]
    );
}

#[test]
fn max_connection_age_grace_forces_close_with_a_stream_open() {
    let mut pair = Pair::connected(ConnConfig::default(), max_age(100, Some(10)));
    open_long_stream(&mut pair);
    advance_until_server_sends(&mut pair, secs(120));
    pair.server.take_events();
    pair.advance(secs(9));
    assert!(!pair.server.conn.is_finished());
    pair.advance(secs(1));
    assert_eq!(pair.server.take_events(), [closed(CloseReason::Done)]);
    assert_eq!(pair.server.conn.active_streams(), 1);
}

// --- graceful shutdown ---------------------------------------------------------------

#[test]
fn sec6_8_shutdown_lets_streams_in_flight_finish_then_closes_done() {
    let mut pair = Pair::connected(ConnConfig::default(), ConnConfig::default());
    let key = pair.open(grpc_request("/svc/M"), true);
    pair.drive();
    pair.client.take_events();
    pair.server.take_events();
    pair.server.take_frames();
    let now = pair.now;
    pair.server.conn.shutdown(now);
    pair.drive();
    assert_eq!(
        pair.server.take_frames(),
        [
            goaway(MAX_ID, Reason::NO_ERROR),
            ping(DRAIN),
            goaway(1, Reason::NO_ERROR)
        ]
    );
    assert_eq!(
        pair.client.take_events(),
        [
            goaway_event(MAX_ID, Reason::NO_ERROR),
            goaway_event(1, Reason::NO_ERROR)
        ]
    );
    pair.respond(id(1), b"late");
    pair.drive();
    assert_eq!(
        quiet_events(pair.server.take_events()),
        [
            ConnEvent::Sent { key: StreamKey(1) },
            ConnEvent::Closed { key: StreamKey(1) },
            closed(CloseReason::Done),
        ]
    );
    assert_eq!(
        quiet_events(pair.client.take_events()),
        [
            ConnEvent::Response {
                key,
                head: ok_response_head(),
                end_stream: false
            },
            ConnEvent::Data {
                key,
                data: Bytes::from_static(b"late"),
                end_stream: false
            },
            ConnEvent::Trailers {
                key,
                fields: ok_trailers()
            },
            ConnEvent::Closed { key },
            closed(CloseReason::Done),
        ]
    );
}

#[test]
fn sec6_8_streams_opened_after_the_final_goaway_are_ignored() {
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), true));
    let now = raw.now;
    raw.conn.shutdown(now);
    raw.flush();
    assert_eq!(
        raw.take_frames(),
        [goaway(MAX_ID, Reason::NO_ERROR), ping(DRAIN)]
    );
    // Between the two GOAWAYs a new stream is still taken.
    raw.send(headers(3, grpc_request("/svc/M"), true));
    raw.send(pong(DRAIN));
    assert_eq!(raw.take_frames(), [goaway(3, Reason::NO_ERROR)]);
    let events = raw.take_events();
    let requests: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            ConnEvent::Request { id, .. } => Some(id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(requests, [1, 3]);
    // After it, new streams are ignored: no event, no frame.
    raw.send(headers(5, grpc_request("/svc/M"), true));
    assert_eq!(raw.take_events(), []);
    assert_eq!(raw.take_frames(), []);
    // The two accepted streams end: Done.
    for n in [1, 3] {
        raw.put(Item::Headers {
            key: key(n),
            fields: vec![field(":status", "200"), field("grpc-status", "0")],
            end_stream: true,
        });
    }
    assert_eq!(raw.take_described(), ["HEADERS s=1 es", "HEADERS s=3 es"]);
    assert_eq!(
        raw.take_events(),
        [
            ConnEvent::Sent { key: key(1) },
            ConnEvent::Closed { key: key(1) },
            ConnEvent::Sent { key: key(3) },
            ConnEvent::Closed { key: key(3) },
            closed(CloseReason::Done),
        ]
    );
}

#[test]
fn sec6_8_peer_reset_of_the_last_stream_in_a_drain_reports_reset_before_close() {
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), false));
    let now = raw.now;
    raw.conn.shutdown(now);
    raw.flush();
    raw.send(pong(DRAIN));
    assert_eq!(
        raw.take_frames(),
        [
            goaway(MAX_ID, Reason::NO_ERROR),
            ping(DRAIN),
            goaway(1, Reason::NO_ERROR)
        ]
    );
    raw.take_events();
    raw.send(rst(1, Reason::CANCEL));
    assert_eq!(
        raw.take_events(),
        [
            ConnEvent::Reset {
                key: key(1),
                reason: Reason::CANCEL,
                remote: true
            },
            closed(CloseReason::Done),
        ]
    );
}

#[test]
fn sec6_8_shutdown_closes_after_drain_grace_if_streams_hang() {
    let mut pair = Pair::connected(ConnConfig::default(), ConnConfig::default());
    open_long_stream(&mut pair);
    let now = pair.now;
    pair.server.conn.shutdown(now);
    pair.drive();
    pair.server.take_events();
    pair.advance(secs(29));
    assert!(!pair.server.conn.is_finished());
    pair.advance(secs(1));
    assert_eq!(pair.server.take_events(), [closed(CloseReason::Done)]);
}

#[test]
fn client_shutdown_sends_goaway_and_refuses_new_streams() {
    let mut pair = Pair::connected(ConnConfig::default(), ConnConfig::default());
    let key = open_long_stream(&mut pair);
    let now = pair.now;
    pair.client.conn.shutdown(now);
    let refused = pair.open(grpc_request("/svc/M"), true);
    pair.drive();
    assert_eq!(pair.client.take_frames(), [goaway(0, Reason::NO_ERROR)]);
    assert_eq!(
        pair.client.take_events(),
        [ConnEvent::Dropped {
            key: refused,
            cause: DropCause::GoingAway,
            opened: false
        }]
    );
    assert_eq!(
        pair.server.take_events(),
        [goaway_event(0, Reason::NO_ERROR)]
    );
    // The open stream still completes, then the client closes.
    pair.client.put(Item::Data {
        key,
        data: Bytes::new(),
        end_stream: true,
    });
    pair.respond(id(1), b"");
    pair.drive();
    assert_eq!(
        pair.client.take_events().last(),
        Some(&closed(CloseReason::Done))
    );
}

// --- preface timeout --------------------------------------------------------------

#[test]
fn sec3_4_server_closes_without_a_client_preface_in_time() {
    let config = ConnConfig::default();
    let mut raw = Raw::new(Role::Server, config.clone());
    assert_eq!(raw.take_frames(), [initial_settings(Role::Server, &config)]);
    raw.advance(secs(119));
    assert_eq!(raw.take_events(), []);
    raw.advance(secs(1));
    assert_eq!(
        raw.take_events(),
        [closed(CloseReason::Transport(
            "no client preface in time".into()
        ))]
    );
}

#[test]
fn sec3_4_preface_timeout_covers_a_partial_preface_and_a_missing_settings() {
    // Keep the SETTINGS-ack timer out of the way.
    let config = ConnConfig {
        settings_timeout: secs(3600),
        ..ConnConfig::default()
    };
    for sent in [&framer::PREFACE[..10], framer::PREFACE] {
        let mut raw = Raw::new(Role::Server, config.clone());
        raw.send_bytes(sent);
        raw.advance(secs(119));
        assert_eq!(raw.take_events(), []);
        raw.advance(secs(1));
        assert_eq!(
            raw.take_events(),
            [closed(CloseReason::Transport(
                "no client preface in time".into()
            ))]
        );
    }
}

// --- GOAWAY received by a client ---------------------------------------------------------

#[test]
fn sec6_8_client_fails_streams_above_last_stream_id_as_retryable() {
    let settings = Settings::new().with(SettingId::MAX_CONCURRENT_STREAMS, 3);
    let mut raw = Raw::client(ConnConfig::default(), settings);
    let keys: Vec<StreamKey> = (0..5)
        .map(|_| {
            let key = raw.conn.buffer().new_stream_key();
            raw.conn
                .buffer()
                .put(Item::Open {
                    key,
                    fields: grpc_request("/svc/M"),
                    end_stream: true,
                    quota: None,
                })
                .unwrap();
            key
        })
        .collect();
    raw.flush();
    assert_eq!(
        raw.take_described(),
        ["HEADERS s=1 es", "HEADERS s=3 es", "HEADERS s=5 es"]
    );
    raw.take_events();
    raw.send(goaway(1, Reason::NO_ERROR));
    let mut events = raw.take_events();
    let goaway_at = events
        .iter()
        .position(|e| matches!(e, ConnEvent::GoAway { .. }))
        .unwrap();
    assert_eq!(events.remove(goaway_at), goaway_event(1, Reason::NO_ERROR));
    events.sort_by_key(|e| match e {
        ConnEvent::Dropped { key, .. } => key.0,
        _ => u64::MAX,
    });
    let dropped = |key, opened| ConnEvent::Dropped {
        key,
        cause: DropCause::PeerGoAway,
        opened,
    };
    assert_eq!(
        events,
        [
            dropped(keys[1], true),
            dropped(keys[2], true),
            dropped(keys[3], false),
            dropped(keys[4], false),
        ]
    );
    assert_eq!(raw.conn.active_streams(), 1);
    // No new stream opens.
    let late = raw.conn.buffer().new_stream_key();
    raw.put(Item::Open {
        key: late,
        fields: grpc_request("/svc/M"),
        end_stream: true,
        quota: None,
    });
    assert_eq!(raw.take_frames(), []);
    assert_eq!(raw.take_events(), [dropped(late, false)]);
    // Stream 1 completes; the connection is then done.
    raw.send(headers(
        1,
        vec![field(":status", "200"), field("grpc-status", "0")],
        true,
    ));
    let events = raw.take_events();
    assert!(
        matches!(
            events[..],
            [
                ConnEvent::Response { key: k, end_stream: true, .. },
                ConnEvent::Closed { key: c },
                ConnEvent::ConnectionClosed { reason: CloseReason::Done },
            ] if k == keys[0] && c == keys[0]
        ),
        "{events:?}"
    );
}

#[test]
fn sec6_8_goaway_dropping_the_last_streams_reports_goaway_before_close() {
    let mut raw = Raw::client(ConnConfig::default(), Settings::new());
    let keys: Vec<StreamKey> = (0..2)
        .map(|_| {
            let key = raw.conn.buffer().new_stream_key();
            raw.conn
                .buffer()
                .put(Item::Open {
                    key,
                    fields: grpc_request("/svc/M"),
                    end_stream: false,
                    quota: None,
                })
                .unwrap();
            key
        })
        .collect();
    raw.flush();
    assert_eq!(raw.take_described(), ["HEADERS s=1", "HEADERS s=3"]);
    raw.take_events();
    // The server processed none of them.
    raw.send(goaway(0, Reason::NO_ERROR));
    let events = raw.take_events();
    // Both streams fail as retryable (either order), then the GOAWAY is
    // reported, and the connection's own end comes last.
    let dropped = |key| ConnEvent::Dropped {
        key,
        cause: DropCause::PeerGoAway,
        opened: true,
    };
    let tail = [goaway_event(0, Reason::NO_ERROR), closed(CloseReason::Done)];
    let in_order = [dropped(keys[0]), dropped(keys[1])];
    let swapped = [dropped(keys[1]), dropped(keys[0])];
    assert!(
        events == [&in_order[..], &tail[..]].concat()
            || events == [&swapped[..], &tail[..]].concat(),
        "{events:#?}"
    );
}

#[test]
fn sec6_8_client_goaway_with_error_closes_at_once() {
    let mut raw = Raw::client(ConnConfig::default(), Settings::new());
    let key = raw.conn.buffer().new_stream_key();
    raw.put(Item::Open {
        key,
        fields: grpc_request("/svc/M"),
        end_stream: true,
        quota: None,
    });
    raw.take_events();
    let mut frame = mio_grpc::framer::GoAway::new(id(1), Reason::ENHANCE_YOUR_CALM);
    frame.debug_data = Bytes::from_static(b"too_many_pings");
    raw.send(frame);
    assert_eq!(
        raw.take_events(),
        [
            ConnEvent::GoAway {
                last_stream_id: id(1),
                reason: Reason::ENHANCE_YOUR_CALM,
                debug_data: Bytes::from_static(b"too_many_pings"),
            },
            closed(CloseReason::PeerError {
                reason: Reason::ENHANCE_YOUR_CALM,
                debug: "too_many_pings".into(),
            }),
        ]
    );
}

// --- MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2) -----------------------------------------

#[test]
fn sec5_1_2_client_queues_streams_above_the_server_limit() {
    let server = ConnConfig {
        max_concurrent_streams: 2,
        ..ConnConfig::default()
    };
    let mut pair = Pair::connected(ConnConfig::default(), server);
    let keys: Vec<StreamKey> = (0..5)
        .map(|_| pair.open(grpc_request("/svc/M"), true))
        .collect();
    pair.drive();
    assert_eq!(
        pair.client.take_described(),
        ["HEADERS s=1 es", "HEADERS s=3 es"]
    );
    let mut answered = Vec::new();
    for _ in 0..100 {
        let requests: Vec<StreamId> = pair
            .server
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                ConnEvent::Request { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        if requests.is_empty() && answered.len() == 5 {
            break;
        }
        for id in requests {
            pair.respond(id, b"ok");
            answered.push(id.value());
        }
        while pair.step() {
            assert!(pair.server.conn.active_streams() <= 2);
        }
    }
    assert_eq!(answered, [1, 3, 5, 7, 9]);
    let client_events = pair.client.take_events();
    for (n, key) in keys.iter().enumerate() {
        let n = u32::try_from(n).unwrap();
        assert!(client_events.contains(&ConnEvent::Opened {
            key: *key,
            id: id(2 * n + 1)
        }));
        assert!(client_events.contains(&ConnEvent::Closed { key: *key }));
    }
    assert!(!client_events
        .iter()
        .any(|e| matches!(e, ConnEvent::Reset { .. } | ConnEvent::Dropped { .. })));
    assert_eq!(pair.client.conn.active_streams(), 0);
}

#[test]
fn sec5_1_2_streams_above_the_limit_are_refused() {
    let config = ConnConfig {
        max_concurrent_streams: 2,
        ..ConnConfig::default()
    };
    let mut raw = Raw::server(config);
    for n in [1, 3, 5] {
        raw.send(headers(n, grpc_request("/svc/M"), false));
    }
    assert_eq!(raw.take_frames(), [rst(5, Reason::REFUSED_STREAM)]);
    let requests: Vec<u32> = raw
        .take_events()
        .iter()
        .filter_map(|e| match e {
            ConnEvent::Request { id, .. } => Some(id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(requests, [1, 3]);
    assert_eq!(raw.conn.stats().streams_refused, 1);
    // Late frames on the refused stream are ignored (§5.1: we reset it);
    // its DATA still counts against the connection window.
    raw.send(data(5, b"x", true));
    assert_eq!(describe_quiet(&raw.take_frames()), [] as [String; 0]);
    assert_eq!(raw.take_events(), []);
    // A slot frees when a stream ends: the next stream is taken.
    raw.send(rst(1, Reason::CANCEL));
    raw.send(headers(7, grpc_request("/svc/M"), false));
    assert_eq!(raw.take_frames(), []);
    assert!(matches!(
        raw.take_events()[..],
        [
            ConnEvent::Reset { remote: true, .. },
            ConnEvent::Request { id, .. }
        ] if id.value() == 7
    ));
}

// --- flow control end to end (RFC 9113 §6.9) ------------------------------------------

const MIB: usize = 1 << 20;

/// Default windows (65,535), BDP off: the windows never grow.
fn static_windows() -> ConnConfig {
    ConnConfig {
        inbound: InboundConfig::static_windows(65_535, 65_535),
        ..ConnConfig::default()
    }
}

/// A pair whose server answers stream 1 with a 1 MiB body.
fn megabyte_response(client: ConnConfig) -> (Pair, StreamKey) {
    let mut pair = Pair::connected(client, ConnConfig::default());
    let key = pair.open(grpc_request("/svc/Download"), true);
    pair.drive();
    pair.server.put(Item::Headers {
        key: StreamKey(1),
        fields: ok_response(),
        end_stream: false,
    });
    pair.server.put(Item::Data {
        key: StreamKey(1),
        data: Bytes::from(vec![0x5a; MIB]),
        end_stream: false,
    });
    pair.server.put(Item::Headers {
        key: StreamKey(1),
        fields: ok_trailers(),
        end_stream: true,
    });
    (pair, key)
}

fn data_bytes(events: &[ConnEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            ConnEvent::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum()
}

fn has_trailers(events: &[ConnEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, ConnEvent::Trailers { .. }))
}

#[test]
fn sec6_9_transfer_stalls_at_the_stream_window_without_release() {
    let client = static_windows();
    let (mut pair, _) = megabyte_response(client);
    pair.drive();
    pair.advance(secs(60));
    let events = pair.client.take_events();
    assert_eq!(data_bytes(&events), 65_535);
    assert!(!has_trailers(&events));
    assert!(pair.server.conn.stats().window_stalls > 0);
}

#[test]
fn sec6_9_transfer_completes_as_the_client_releases_capacity() {
    let client = static_windows();
    let (mut pair, key) = megabyte_response(client);
    pair.drive();
    let mut received = 0;
    let mut rounds = 0;
    loop {
        let events = pair.client.take_events();
        let n = data_bytes(&events);
        assert!(n <= 65_535, "more than one window unreleased: {n}");
        received += n;
        if has_trailers(&events) {
            assert_eq!(events.last(), Some(&ConnEvent::Closed { key }));
            break;
        }
        assert!(n > 0, "stalled at {received} bytes");
        pair.client.conn.release_capacity(key, n);
        pair.drive();
        rounds += 1;
    }
    assert_eq!(received, MIB);
    assert!(rounds >= MIB / 65_535, "{rounds} rounds");
}

#[test]
fn sec6_9_megabyte_with_default_windows_and_bdp_completes() {
    let (mut pair, key) = megabyte_response(ConnConfig::default());
    pair.client.auto_release = true;
    pair.drive();
    let events = quiet_events(pair.client.take_events());
    assert_eq!(data_bytes(&events), MIB);
    assert!(has_trailers(&events));
    assert_eq!(events.last(), Some(&ConnEvent::Closed { key }));
}

// --- rapid reset (CVE-2023-44487) ---------------------------------------------------

/// Opens stream `n` and resets it at once.
fn open_and_reset(raw: &mut Raw, n: u32) {
    raw.send(headers(n, grpc_request("/svc/M"), false));
    raw.send(rst(n, Reason::CANCEL));
}

#[test]
fn rapid_reset_past_the_limit_gets_enhance_your_calm() {
    let mut raw = Raw::server(ConnConfig::default()); // 200 per 10 s
    for i in 0..200 {
        open_and_reset(&mut raw, 2 * i + 1);
    }
    assert_eq!(raw.take_frames(), []);
    assert!(!raw.conn.is_finished());
    open_and_reset(&mut raw, 401);
    assert_eq!(
        raw.take_frames(),
        [goaway_debug(
            401,
            Reason::ENHANCE_YOUR_CALM,
            b"peer_resets: too many streams reset by the peer"
        )]
    );
    assert_eq!(
        raw.take_events().last(),
        Some(&local_error(ConnViolation::Limit(AbuseLimit::PeerResets)))
    );
    assert_eq!(raw.conn.stats().abuse_breaches, 1);
}

#[test]
fn rapid_reset_under_the_rate_is_fine() {
    let mut raw = Raw::server(ConnConfig::default());
    let mut n = 1;
    for _ in 0..5 {
        for _ in 0..150 {
            open_and_reset(&mut raw, n);
            n += 2;
        }
        raw.advance(secs(10));
    }
    assert!(!raw.conn.is_finished());
    assert!(raw
        .take_described()
        .iter()
        .all(|f| !f.starts_with("GOAWAY")));
}

#[test]
fn resets_of_finished_streams_do_not_count() {
    // A client cancels its send side after the server's full answer (a
    // client-streaming call that got its status early): not an attack.
    let mut raw = Raw::server(ConnConfig::default());
    for i in 0..300 {
        let n = 2 * i + 1;
        raw.send(headers(n, grpc_request("/svc/M"), false));
        raw.put(Item::Headers {
            key: key(n),
            fields: vec![field(":status", "200"), field("grpc-status", "0")],
            end_stream: true,
        });
        raw.send(rst(n, Reason::CANCEL));
    }
    assert!(!raw.conn.is_finished());
    assert!(raw
        .take_described()
        .iter()
        .all(|f| !f.starts_with("GOAWAY")));
}

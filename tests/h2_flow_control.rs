//! RFC 9113 §6.9 (WINDOW_UPDATE), §6.9.1 (the flow-control window: the
//! server sends no more than the client's windows allow, gives credit back
//! as it reads, counts padding, and answers overflow and overrun with
//! FLOW_CONTROL_ERROR) and §6.9.2 (SETTINGS_INITIAL_WINDOW_SIZE changes
//! adjust open streams, possibly below zero) against a real server.
//! h2spec `http2/6.9`, `6.9.1`, `6.9.2`, `generic/3.9`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::peer::*;
use mio_grpc::framer::{Frame, Reason};
use mio_grpc::loopy::InboundConfig;

const MAX_WINDOW: u32 = 0x7fff_ffff;

/// Reads DATA on `stream` until `n` octets have come; returns them.
fn read_data(peer: &mut Peer, stream: u32, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let data = peer.expect_data(stream);
        got.extend_from_slice(&data.payload);
    }
    assert_eq!(got.len(), n, "more DATA than the window allowed");
    got
}

/// Nothing but control frames for a while: the server is stalled.
fn expect_stalled(peer: &mut Peer) {
    peer.expect_quiet_for(Duration::from_millis(300), |f| {
        matches!(
            f,
            Frame::WindowUpdate(_) | Frame::Ping(_) | Frame::Settings(_)
        )
    });
}

// ---- §6.9 WINDOW_UPDATE ----

#[test]
fn sec6_9_zero_increment_on_connection_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a
    // flow-control window increment of 0 as a stream error of type
    // PROTOCOL_ERROR; errors on the connection flow-control window MUST be
    // treated as a connection error".
    peer.send(frames::window_update(0, 0));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_9_zero_increment_on_stream_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::window_update(1, 0));
    peer.expect_stream_or_connection_error(1, &[Reason::PROTOCOL_ERROR]);
}

#[test]
fn sec6_9_window_update_with_length_other_than_4_is_frame_size_error() {
    let (_server, mut peer) = connected();
    // "A WINDOW_UPDATE frame with a length other than 4 octets MUST be
    // treated as a connection error of type FRAME_SIZE_ERROR."
    peer.send_raw(&frames::raw(0x8, 0, 0, &[0, 0, 1]));
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_9_post_body_larger_than_the_initial_window_gets_window_updates() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    // 200,000 octets need both windows reopened, three times over: the
    // server must send WINDOW_UPDATEs as the handler reads.
    peer.send_body(1, &vec![b'p'; 200_000], true);
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=200000 trailers=".to_vec())
    );
}

#[test]
fn sec6_9_concurrent_large_bodies_share_the_connection_window() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::headers(3).request("POST", "/summary"));
    for _ in 0..4 {
        peer.send_body(1, &vec![b'a'; 30_000], false);
        peer.send_body(3, &vec![b'b'; 30_000], false);
    }
    peer.send_body(1, b"", true);
    peer.send_body(3, b"", true);
    assert_eq!(peer.expect_response(1).1, b"len=120000 trailers=");
    assert_eq!(peer.expect_response(3).1, b"len=120000 trailers=");
}

// ---- §6.9.1 the flow-control window ----

#[test]
fn sec6_9_1_initial_window_of_1_limits_data_to_1_octet() {
    let (_server, mut peer) = connected();
    // "The sender MUST NOT send a flow-controlled frame with a length that
    // exceeds the space available in either of the flow-control windows
    // advertised by the receiver."
    peer.send(frames::settings().initial_window_size(1));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    let data = peer.expect_data(1);
    assert_eq!((data.payload.len(), data.end_stream), (1, false));
    expect_stalled(&mut peer);
    peer.send(frames::window_update(1, 5));
    assert_eq!(read_data(&mut peer, 1, 5), &HELLO[1..]);
}

#[test]
fn sec6_9_1_server_stops_at_the_connection_window() {
    let (_server, mut peer) = connected();
    // A large stream window (§6.9.2: SETTINGS_INITIAL_WINDOW_SIZE does not
    // change the connection window, which stays 65,535).
    peer.send(frames::settings().initial_window_size(1 << 20));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/big");
    peer.expect_headers(1);
    read_data(&mut peer, 1, 65_535);
    expect_stalled(&mut peer);
    peer.send(frames::window_update(0, (BIG_BODY_LEN - 65_535) as u32));
    read_data(&mut peer, 1, BIG_BODY_LEN - 65_535);
}

#[test]
fn sec6_9_1_server_stops_at_the_stream_window() {
    let (_server, mut peer) = connected();
    peer.send(frames::window_update(0, 1 << 20));
    peer.send_get(1, "/big");
    peer.expect_headers(1);
    read_data(&mut peer, 1, 65_535);
    expect_stalled(&mut peer);
    peer.send(frames::window_update(1, 10_000));
    read_data(&mut peer, 1, 10_000);
    expect_stalled(&mut peer);
    peer.send(frames::window_update(1, 1 << 20));
    read_data(&mut peer, 1, BIG_BODY_LEN - 75_535);
}

#[test]
fn sec6_9_1_connection_window_overflow_is_flow_control_error() {
    let (_server, mut peer) = connected();
    // "If a sender receives a WINDOW_UPDATE that causes a flow-control
    // window to exceed this maximum, it MUST terminate either the stream
    // or the connection, as appropriate ... for the connection, a GOAWAY
    // frame with an error code of FLOW_CONTROL_ERROR is sent." (h2spec
    // 6.9.1/2: two updates, read by the server in one go.)
    peer.send_together([
        frames::window_update(0, MAX_WINDOW),
        frames::window_update(0, MAX_WINDOW),
    ]);
    peer.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn sec6_9_1_single_window_update_overflowing_the_connection_is_flow_control_error() {
    let (_server, mut peer) = connected();
    // 65,535 + (2^31 - 1) already exceeds the maximum.
    peer.send(frames::window_update(0, MAX_WINDOW));
    peer.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn sec6_9_1_stream_window_overflow_is_flow_control_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    // "For streams, the sender sends a RST_STREAM with an error code of
    // FLOW_CONTROL_ERROR".
    peer.send(frames::window_update(1, MAX_WINDOW));
    peer.send(frames::window_update(1, MAX_WINDOW));
    peer.expect_rst(1, Reason::FLOW_CONTROL_ERROR);
    peer.expect_alive();
}

#[test]
fn sec6_9_1_window_of_exactly_the_maximum_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::window_update(0, MAX_WINDOW - 65_535));
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::window_update(1, MAX_WINDOW - 65_535));
    peer.send(frames::data(1, b"").eos());
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

/// A server whose stream windows only reopen as the application reads
/// (no BDP growth) and whose connection window is large.
fn static_windows(c: &mut mio_grpc::conn::ConnConfig) {
    c.inbound = InboundConfig::static_windows(1 << 20, 65_535);
}

#[test]
fn sec6_9_1_data_beyond_the_stream_window_is_flow_control_error() {
    let (_server, mut peer) = connected_with(static_windows);
    // `/hold` leaves the body unread for a while: no credit comes back.
    peer.send(frames::headers(1).request("POST", "/hold"));
    for _ in 0..3 {
        peer.send(frames::data(1, vec![0u8; 16_384]));
    }
    peer.send(frames::data(1, vec![0u8; 16_383]));
    // 65,535 octets sent: the window is spent. One more octet overruns it.
    peer.send(frames::data(1, b"!"));
    // §6.9.1: "A receiver MAY respond with a stream error or connection
    // error of type FLOW_CONTROL_ERROR if it is unable to accept a frame."
    peer.expect_stream_or_connection_error(1, &[Reason::FLOW_CONTROL_ERROR]);
}

#[test]
fn sec6_9_1_padding_counts_against_the_window() {
    let (_server, mut peer) = connected_with(static_windows);
    peer.send(frames::headers(1).request("POST", "/hold"));
    // Each frame: 16,128 octets of data + Pad Length + 255 of padding =
    // 16,384 flow-controlled octets. "The entire DATA frame payload,
    // including the Pad Length and Padding fields, is counted". The fourth
    // frame (65,536 in all) overruns the 65,535 window; the data alone
    // (64,512) would not.
    for _ in 0..4 {
        peer.send(frames::data(1, vec![0u8; 16_128]).padded(255));
    }
    peer.expect_stream_or_connection_error(1, &[Reason::FLOW_CONTROL_ERROR]);
}

#[test]
fn sec6_9_1_credit_for_padding_comes_back() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    // 100,000 octets in frames padded with 255 octets each: more padding
    // than a window; the server must return its credit too.
    peer.send_body_padded(1, &vec![b'q'; 100_000], Some(255), true);
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=100000 trailers=".to_vec())
    );
}

#[test]
fn sec6_9_1_data_on_a_reset_stream_still_counts_and_credit_comes_back() {
    let (_server, mut peer) = connected();
    // The server resets stream 1 (its body overruns content-length) ...
    peer.send(
        frames::headers(1)
            .request("POST", "/")
            .field("content-length", "1"),
    );
    peer.send(frames::data(1, b"too long"));
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
    // ... the client's late DATA on it spends connection window ("A
    // receiver that receives a flow-controlled frame MUST always account
    // for its contribution against the connection flow-control window"),
    // which the server must give back for stream 3 to get its body through.
    for _ in 0..3 {
        peer.send(frames::data(1, vec![0u8; 16_384]));
    }
    peer.send(frames::headers(3).request("POST", "/summary"));
    peer.send_body(3, &vec![b'z'; 60_000], true);
    assert_eq!(
        peer.expect_response(3),
        (200, b"len=60000 trailers=".to_vec())
    );
}

// ---- §6.9.2 initial flow-control window size ----

#[test]
fn sec6_9_2_initial_window_size_change_adjusts_open_streams() {
    let (_server, mut peer) = connected();
    // "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a receiver
    // MUST adjust the size of all stream flow-control windows that it
    // maintains by the difference between the new value and the old value."
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    expect_stalled(&mut peer);
    peer.send(frames::settings().initial_window_size(1));
    peer.wait_for_settings_ack();
    let data = peer.expect_data(1);
    assert_eq!((data.payload.len(), data.end_stream), (1, false));
}

#[test]
fn sec6_9_2_negative_window_is_tracked() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().initial_window_size(3));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    assert_eq!(read_data(&mut peer, 1, 3), b"hel");
    // 3 → 2: the window is now -1. "A sender MUST track the negative
    // flow-control window and MUST NOT send new flow-controlled frames
    // until it receives WINDOW_UPDATE frames that cause the flow-control
    // window to become positive."
    peer.send(frames::settings().initial_window_size(2));
    peer.wait_for_settings_ack();
    peer.send(frames::window_update(1, 1));
    expect_stalled(&mut peer); // -1 + 1 = 0
    peer.send(frames::window_update(1, 1));
    assert_eq!(read_data(&mut peer, 1, 1), b"l");
    peer.send(frames::window_update(1, 10));
    assert_eq!(read_data(&mut peer, 1, 2), b"o\n");
}

#[test]
fn sec6_9_2_initial_window_size_over_maximum_is_flow_control_error() {
    let (_server, mut peer) = connected();
    // h2spec 6.9.2/3, octet for octet: SETTINGS_INITIAL_WINDOW_SIZE = 2^31.
    peer.send_raw(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x04\x80\x00\x00\x00");
    peer.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn sec6_9_2_initial_window_size_change_overflowing_a_window_is_flow_control_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    // The server's send window on stream 1 becomes 2^31 - 1 ...
    peer.send(frames::window_update(1, MAX_WINDOW - 65_535));
    // ... and one more octet through SETTINGS: "An endpoint MUST treat a
    // change to SETTINGS_INITIAL_WINDOW_SIZE that causes any flow-control
    // window to exceed the maximum size as a connection error of type
    // FLOW_CONTROL_ERROR."
    peer.send(frames::settings().initial_window_size(65_536));
    peer.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn sec6_9_2_server_advertised_windows_are_usable_at_once() {
    let (_server, mut peer) =
        connected_with(|c| c.inbound = InboundConfig::static_windows(1 << 20, 1 << 20));
    assert_eq!(peer.server_settings.initial_window_size(), Some(1 << 20));
    // The connection window is raised by a WINDOW_UPDATE after SETTINGS.
    peer.expect_alive();
    assert_eq!(peer.conn_window(), 1 << 20);
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send_body(1, &vec![b'w'; 500_000], true);
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=500000 trailers=".to_vec())
    );
}

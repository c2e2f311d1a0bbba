//! RFC 9113 §4.1 (frame format: unknown types, undefined flags and the
//! reserved bit are ignored) and §4.2 (frame size: frames up to
//! SETTINGS_MAX_FRAME_SIZE are accepted, larger or too-short ones are
//! FRAME_SIZE_ERROR, and the server never sends more than the peer's
//! limit) against a real server. h2spec `http2/4.1`, `http2/4.2`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::peer::*;
use mio_grpc::framer::{flags, Frame, Reason};

// ---- §4.1 frame format ----

#[test]
fn sec4_1_unknown_frame_type_is_ignored() {
    let (_server, mut peer) = connected();
    // "Implementations MUST ignore and discard frames of unknown types."
    peer.send(frames::unknown(0x16, 0, *b"\0\0\0\0\0\0\0\0"));
    peer.send_raw(&frames::raw(0xff, 0xff, 0, b"anything"));
    peer.expect_alive();
}

#[test]
fn sec4_1_undefined_flags_on_ping_are_ignored() {
    let (_server, mut peer) = connected();
    // "Flags that have no defined semantics for a particular frame type
    // MUST be ignored" (0x16 leaves ACK unset).
    peer.send_raw(&frames::raw(0x6, 0x16, 0, b"flagtest"));
    peer.expect("the PING ACK", |f| match f {
        Frame::Ping(p) if p.ack && &p.payload == b"flagtest" => Some(()),
        _ => None,
    });
}

#[test]
fn sec4_1_undefined_flags_on_headers_and_data_are_ignored() {
    let (_server, mut peer) = connected();
    let fragment = peer.encode_fields(&frames::request_fields("POST", "/summary"));
    let undefined = 0x02 | 0x10 | 0x40 | 0x80;
    peer.send_raw(&frames::raw(
        0x1,
        flags::END_HEADERS | undefined,
        1,
        &fragment,
    ));
    peer.send_raw(&frames::raw(
        0x0,
        flags::END_STREAM | 0x02 | 0x04 | 0x10 | 0x20,
        1,
        b"abc",
    ));
    assert_eq!(peer.expect_response(1), (200, b"len=3 trailers=".to_vec()));
}

#[test]
fn sec4_1_reserved_bit_in_stream_id_is_ignored() {
    let (_server, mut peer) = connected();
    // "The semantics of this bit are undefined, and the bit MUST remain
    // unset (0x0) when sending and MUST be ignored when receiving."
    peer.send_raw(&frames::raw(0x6, 0, 0x8000_0000, b"reserved"));
    peer.expect("the PING ACK", |f| match f {
        Frame::Ping(p) if p.ack && &p.payload == b"reserved" => Some(()),
        _ => None,
    });
    let fragment = peer.encode_fields(&frames::request_fields("GET", "/"));
    let end = flags::END_HEADERS | flags::END_STREAM;
    peer.send_raw(&frames::raw(0x1, end, 0x8000_0001, &fragment));
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec4_1_reserved_bit_in_window_update_is_ignored() {
    let (_server, mut peer) = connected();
    // §6.9: the increment's reserved bit "MUST be ignored when receiving".
    peer.send_raw(&frames::raw(0x8, 0, 0, &0x8000_0001u32.to_be_bytes()));
    peer.expect_alive();
}

// ---- §4.2 frame size ----

#[test]
fn sec4_2_data_of_max_frame_size_is_accepted() {
    let (_server, mut peer) = connected();
    // "All implementations MUST be capable of receiving and minimally
    // processing frames up to 2^14 octets in length".
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::data(1, vec![b'a'; 16_384]).eos());
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=16384 trailers=".to_vec())
    );
}

#[test]
fn sec4_2_data_larger_than_max_frame_size_is_frame_size_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::data(1, vec![b'a'; 16_385]).eos());
    // "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame
    // exceeds the size defined in SETTINGS_MAX_FRAME_SIZE". On a DATA frame
    // this may be a stream or a connection error.
    peer.expect_stream_or_connection_error(1, &[Reason::FRAME_SIZE_ERROR]);
}

#[test]
fn sec4_2_headers_larger_than_max_frame_size_is_connection_error() {
    let (_server, mut peer) = connected();
    let mut fields = frames::request_fields("GET", "/");
    fields.push(mio_grpc::framer::hpack::HeaderField::new(
        "x-big",
        "x".repeat(30_000),
    ));
    let fragment = peer.encode_fields(&fields);
    assert!(fragment.len() > 16_384);
    let end = flags::END_HEADERS | flags::END_STREAM;
    peer.send_raw(&frames::raw(0x1, end, 1, &fragment));
    // "A frame size error in a frame that could alter the state of the
    // entire connection MUST be treated as a connection error; this
    // includes any frame carrying a field block".
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec4_2_settings_larger_than_max_frame_size_is_connection_error() {
    let (_server, mut peer) = connected();
    let mut payload = Vec::new();
    for _ in 0..2_731 {
        // 2,731 × 6 = 16,386 octets of SETTINGS_ENABLE_PUSH = 0.
        payload.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
    }
    peer.send_raw(&frames::raw(0x4, 0, 0, &payload));
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec4_2_headers_too_short_for_priority_fields_is_frame_size_error() {
    let (_server, mut peer) = connected();
    // PRIORITY flag, but 4 octets cannot hold the 5 priority octets: "too
    // small to contain mandatory frame data"; a field-block frame, so a
    // connection error.
    let flags = flags::END_HEADERS | flags::END_STREAM | flags::PRIORITY;
    peer.send_raw(&frames::raw(0x1, flags, 1, &[0, 0, 0, 0]));
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec4_2_padded_data_without_pad_length_octet_is_frame_size_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    // PADDED with an empty payload: no room for the Pad Length octet.
    peer.send_raw(&frames::raw(0x0, flags::PADDED, 1, &[]));
    peer.expect_stream_or_connection_error(1, &[Reason::FRAME_SIZE_ERROR]);
}

#[test]
fn sec4_2_larger_advertised_max_frame_size_is_honoured() {
    let (_server, mut peer) = connected_with(|c| c.max_frame_size = 32_768);
    assert_eq!(peer.server_settings.max_frame_size(), Some(32_768));
    // The handshake acknowledged the server's SETTINGS: its larger limit
    // now binds.
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::data(1, vec![b'a'; 32_768]).eos());
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=32768 trailers=".to_vec())
    );
}

#[test]
fn sec4_2_frame_above_advertised_max_frame_size_is_frame_size_error() {
    let (_server, mut peer) = connected_with(|c| c.max_frame_size = 32_768);
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::data(1, vec![b'a'; 32_769]).eos());
    peer.expect_stream_or_connection_error(1, &[Reason::FRAME_SIZE_ERROR]);
}

#[test]
fn sec4_2_server_never_sends_frames_larger_than_default_max_frame_size() {
    let (_server, mut peer) = connected();
    peer.send_get(1, "/big");
    let (status, body, sizes) = peer.expect_response_granting(1);
    assert_eq!((status, body.len()), (200, BIG_BODY_LEN));
    // §4.2: "An endpoint MUST NOT send a frame with a length that exceeds
    // the size defined by SETTINGS_MAX_FRAME_SIZE" (16,384 by default).
    assert!(sizes.iter().all(|&n| n <= 16_384), "DATA sizes: {sizes:?}");
}

#[test]
fn sec4_2_server_uses_and_respects_a_larger_peer_max_frame_size() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    peer.handshake_with(frames::settings().max_frame_size(20_000));
    peer.send_get(1, "/big");
    let (status, body, sizes) = peer.expect_response_granting(1);
    assert_eq!((status, body.len()), (200, BIG_BODY_LEN));
    assert!(sizes.iter().all(|&n| n <= 20_000), "DATA sizes: {sizes:?}");
}

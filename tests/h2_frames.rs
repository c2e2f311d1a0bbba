//! RFC 9113 §6.1–§6.8, one group per frame type (DATA, HEADERS,
//! PRIORITY with §5.3.1, RST_STREAM, SETTINGS with §6.5.2 and §6.5.3,
//! PUSH_PROMISE, PING, GOAWAY): every rule a single frame can break, with
//! the exact error the server must answer, and the well-formed variants
//! (padding, priority fields) it must accept. h2spec `http2/6.1`–`6.8`,
//! `5.3.1`, `generic/3`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::peer::*;
use mio_grpc::framer::{flags, Frame, Reason};

fn ack_of(payload: [u8; 8]) -> impl FnMut(&Frame) -> Option<()> {
    move |f| match f {
        Frame::Ping(p) if p.ack && p.payload == payload => Some(()),
        _ => None,
    }
}

// ---- §6.1 DATA ----

#[test]
fn sec6_1_data_on_stream_0_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "If a DATA frame is received whose Stream Identifier field is 0x00,
    // the recipient MUST respond with a connection error of type
    // PROTOCOL_ERROR."
    peer.send_raw(&frames::raw(0x0, flags::END_STREAM, 0, b"test"));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_1_data_on_half_closed_remote_stream_is_stream_closed() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    peer.send(frames::data(1, b"test").eos());
    peer.expect_rst(1, Reason::STREAM_CLOSED);
}

#[test]
fn sec6_1_data_with_pad_length_beyond_payload_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    // h2spec 6.1/3: Pad Length 6 with 4 octets after it. "If the length of
    // the padding is the length of the frame payload or greater, the
    // recipient MUST treat this as a connection error of type
    // PROTOCOL_ERROR."
    let payload = [6, b'T', b'e', b's', b't'];
    peer.send_raw(&frames::raw(
        0x0,
        flags::PADDED | flags::END_STREAM,
        1,
        &payload,
    ));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_1_data_with_pad_length_equal_to_payload_length_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    // Payload 5 octets, Pad Length 5: equal to the frame payload length.
    let payload = [5, 0, 0, 0, 0];
    peer.send_raw(&frames::raw(
        0x0,
        flags::PADDED | flags::END_STREAM,
        1,
        &payload,
    ));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_1_padded_data_is_accepted_and_padding_is_not_data() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::data(1, b"abc").padded(10));
    // Padding to the end of the frame: no data at all.
    peer.send(frames::data(1, b"").padded(4));
    peer.send(frames::data(1, b"de").padded(255).eos());
    assert_eq!(peer.expect_response(1), (200, b"len=5 trailers=".to_vec()));
}

#[test]
fn sec6_1_empty_data_with_end_stream_ends_the_body() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::data(1, b"abc"));
    peer.send(frames::data(1, b"").eos());
    assert_eq!(peer.expect_response(1), (200, b"len=3 trailers=".to_vec()));
}

#[test]
fn sec6_1_body_in_many_data_frames_is_reassembled() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/echo"));
    let mut expected = Vec::new();
    for i in 0..50u8 {
        let chunk = vec![b'a' + i % 26; usize::from(i) + 1];
        expected.extend_from_slice(&chunk);
        peer.send(frames::data(1, chunk));
    }
    peer.send(frames::data(1, b"").eos());
    assert_eq!(peer.expect_response(1), (200, expected));
}

// ---- §6.2 HEADERS ----

#[test]
fn sec6_2_headers_without_end_headers_then_priority_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("GET", "/").no_end_headers());
    peer.send(frames::priority(1, 0, 255, false));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_2_headers_to_another_stream_inside_field_block_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("GET", "/").no_end_headers());
    peer.send(frames::headers(3).request("GET", "/").eos());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_2_headers_on_stream_0_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "If a HEADERS frame is received whose Stream Identifier field is
    // 0x00, the recipient MUST respond with a connection error of type
    // PROTOCOL_ERROR."
    let fragment = peer.encode_fields(&frames::request_fields("GET", "/"));
    peer.send_raw(&frames::raw(0x1, 0x5, 0, &fragment));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_2_headers_with_pad_length_beyond_payload_is_protocol_error() {
    let (_server, mut peer) = connected();
    let fragment = peer.encode_fields(&frames::request_fields("GET", "/"));
    let mut payload = vec![u8::try_from(fragment.len() + 1).unwrap()];
    payload.extend_from_slice(&fragment);
    let flags = flags::PADDED | flags::END_HEADERS | flags::END_STREAM;
    peer.send_raw(&frames::raw(0x1, flags, 1, &payload));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_2_padded_headers_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("GET", "/").padded(32).eos());
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec6_2_headers_with_priority_fields_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .priority(0, 15, true)
            .eos(),
    );
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
    peer.send(
        frames::headers(3)
            .request("GET", "/")
            .priority(1, 200, false)
            .padded(7)
            .eos(),
    );
    assert_eq!(peer.expect_response(3), (200, HELLO.to_vec()));
}

// ---- §6.3 PRIORITY and §5.3.1 ----

#[test]
fn sec6_3_priority_on_stream_0_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "If a PRIORITY frame is received with a stream identifier of 0x00,
    // the recipient MUST respond with a connection error of type
    // PROTOCOL_ERROR."
    peer.send_raw(&frames::raw(0x2, 0, 0, &[0, 0, 0, 1, 255]));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_3_priority_with_length_other_than_5_is_frame_size_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    // "A PRIORITY frame with a length other than 5 octets MUST be treated
    // as a stream error of type FRAME_SIZE_ERROR."
    peer.send_raw(&frames::raw(0x2, 0, 1, &[0, 0, 0, 3]));
    peer.expect_stream_or_connection_error(1, &[Reason::FRAME_SIZE_ERROR]);
}

#[test]
fn sec6_3_priority_on_idle_open_and_closed_streams_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::priority(9, 0, 16, false)); // idle
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::priority(1, 9, 16, true)); // open
    peer.send(frames::data(1, b"x").eos());
    assert_eq!(peer.expect_response(1).0, 200);
    peer.send(frames::priority(1, 0, 1, false)); // closed
    peer.expect_alive();
}

#[test]
fn sec5_3_1_headers_depending_on_itself_is_stream_protocol_error() {
    let (_server, mut peer) = connected();
    // "A stream cannot depend on itself. An endpoint MUST treat this as a
    // stream error of type PROTOCOL_ERROR."
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .priority(1, 255, false)
            .eos(),
    );
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
    peer.send_get(3, "/");
    assert_eq!(peer.expect_response(3), (200, HELLO.to_vec()));
}

#[test]
fn sec5_3_1_priority_depending_on_itself_is_stream_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::priority(1, 1, 255, false));
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_3_1_priority_on_idle_stream_depending_on_itself_is_protocol_error() {
    let (_server, mut peer) = connected();
    // h2spec 5.3.1/2 sends it on an idle stream. (§6.4 forbids RST_STREAM
    // on an idle stream, so a connection error is the cleaner answer; both
    // pass.)
    peer.send(frames::priority(1, 1, 255, false));
    peer.expect_stream_or_connection_error(1, &[Reason::PROTOCOL_ERROR]);
}

// ---- §6.4 RST_STREAM ----

#[test]
fn sec6_4_rst_stream_on_stream_0_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "If a RST_STREAM frame is received with a stream identifier of 0x00,
    // the recipient MUST treat this as a connection error of type
    // PROTOCOL_ERROR."
    peer.send_raw(&frames::raw(0x3, 0, 0, &8u32.to_be_bytes()));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_4_rst_stream_on_idle_stream_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "If a RST_STREAM frame identifying an idle stream is received, the
    // recipient MUST treat this as a connection error of type
    // PROTOCOL_ERROR."
    peer.send(frames::rst(1, Reason::CANCEL));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_4_rst_stream_with_length_other_than_4_is_frame_size_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    // "A RST_STREAM frame with a length other than 4 octets MUST be
    // treated as a connection error of type FRAME_SIZE_ERROR."
    peer.send_raw(&frames::raw(0x3, 0, 1, &[0, 0, 0]));
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_4_rst_stream_stops_the_response() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    peer.send(frames::rst(1, Reason::CANCEL));
    // Credit for the body now (through SETTINGS: no frame may go on the
    // closed stream): none of it may be sent on the reset stream.
    peer.send(frames::settings().initial_window_size(100));
    let seen = peer.expect_alive();
    assert!(
        !seen.iter().any(|f| matches!(f, Frame::Data(_))),
        "DATA after RST_STREAM: {:?}",
        seen.iter().map(describe).collect::<Vec<_>>()
    );
}

// ---- §6.5 SETTINGS ----

#[test]
fn sec6_5_settings_ack_with_payload_is_frame_size_error() {
    let (_server, mut peer) = connected();
    // "Receipt of a SETTINGS frame with the ACK flag set and a length
    // field value other than 0 MUST be treated as a connection error of
    // type FRAME_SIZE_ERROR."
    peer.send_raw(&frames::raw(0x4, flags::ACK, 0, &[0, 2, 0, 0, 0, 0]));
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_5_settings_on_a_stream_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "If an endpoint receives a SETTINGS frame whose Stream Identifier
    // field is anything other than 0x00, the endpoint MUST respond with a
    // connection error of type PROTOCOL_ERROR."
    peer.send_raw(&frames::raw(0x4, 0, 1, &[0, 2, 0, 0, 0, 0]));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_5_settings_length_not_multiple_of_6_is_frame_size_error() {
    let (_server, mut peer) = connected();
    // "A SETTINGS frame with a length other than a multiple of 6 octets
    // MUST be treated as a connection error of type FRAME_SIZE_ERROR."
    peer.send_raw(&frames::raw(0x4, 0, 0, &[0, 2, 0, 0, 0]));
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_5_2_enable_push_other_than_0_or_1_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "Any value other than 0 or 1 MUST be treated as a connection error
    // of type PROTOCOL_ERROR."
    peer.send(frames::settings().enable_push(2));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_5_2_enable_push_1_from_a_client_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().enable_push(1));
    peer.wait_for_settings_ack();
    peer.expect_alive();
}

#[test]
fn sec6_5_2_initial_window_size_over_maximum_is_flow_control_error() {
    let (_server, mut peer) = connected();
    // "Values above the maximum flow-control window size of 2^31-1 MUST be
    // treated as a connection error of type FLOW_CONTROL_ERROR."
    peer.send(frames::settings().initial_window_size(0x8000_0000));
    peer.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn sec6_5_2_max_frame_size_below_initial_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "Values outside this range MUST be treated as a connection error of
    // type PROTOCOL_ERROR."
    peer.send(frames::settings().max_frame_size(16_383));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_5_2_max_frame_size_above_maximum_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().max_frame_size(16_777_216));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_5_2_every_defined_setting_is_accepted() {
    let (_server, mut peer) = connected();
    // h2spec generic/3.5: each parameter with a legal value.
    peer.send(frames::settings().header_table_size(4_096));
    peer.send(frames::settings().enable_push(0));
    peer.send(frames::settings().max_concurrent_streams(100));
    peer.send(frames::settings().initial_window_size(65_535));
    peer.send(frames::settings().max_frame_size(16_777_215));
    peer.send(frames::settings().max_header_list_size(1 << 20));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec6_5_2_unknown_setting_is_ignored() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().param(0x00ff, 100));
    peer.wait_for_settings_ack();
    peer.expect_alive();
}

#[test]
fn rfc8441_enable_connect_protocol_other_than_0_or_1_is_protocol_error() {
    let (_server, mut peer) = connected();
    // RFC 8441 §3: "a value other than 0 or 1 MUST be treated as a
    // connection error ... of type PROTOCOL_ERROR."
    peer.send(frames::settings().param(0x8, 2));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_5_3_multiple_values_are_processed_in_order() {
    let (_server, mut peer) = connected();
    // "The values in the SETTINGS frame MUST be processed in the order they
    // appear": the last INITIAL_WINDOW_SIZE (1) wins.
    peer.send(
        frames::settings()
            .initial_window_size(100)
            .initial_window_size(1),
    );
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    let data = peer.expect_data(1);
    assert_eq!(data.payload.len(), 1);
    assert!(!data.end_stream);
}

#[test]
fn sec6_5_3_settings_is_acknowledged() {
    let (_server, mut peer) = connected();
    // "Once all values have been processed, the recipient MUST immediately
    // emit a SETTINGS frame with the ACK flag set."
    peer.send(frames::settings().enable_push(0));
    peer.wait_for_settings_ack();
    // An empty SETTINGS is acknowledged too.
    peer.send(frames::settings());
    peer.wait_for_settings_ack();
}

#[test]
fn sec6_5_3_unacknowledged_settings_is_settings_timeout() {
    let (_server, addr) = start_server_with(|c| c.settings_timeout = Duration::from_millis(300));
    let mut peer = Peer::connect(addr);
    peer.auto_ack = false;
    peer.send_raw(mio_grpc::framer::PREFACE);
    peer.send(frames::settings());
    peer.expect_server_preface();
    // "If the sender of a SETTINGS frame does not receive an
    // acknowledgment within a reasonable amount of time, it MAY issue a
    // connection error of type SETTINGS_TIMEOUT."
    peer.expect("GOAWAY(SETTINGS_TIMEOUT)", |f| match f {
        Frame::GoAway(g) => {
            assert_eq!(g.reason, Reason::SETTINGS_TIMEOUT);
            Some(())
        }
        _ => None,
    });
    peer.expect_closed();
}

// ---- §6.6 PUSH_PROMISE ----

#[test]
fn sec6_6_push_promise_from_client_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    // §8.4: "A client cannot push. Thus, servers MUST treat the receipt of
    // a PUSH_PROMISE frame as a connection error of type PROTOCOL_ERROR."
    let mut payload = 2u32.to_be_bytes().to_vec();
    payload.extend(peer.encode_fields(&frames::request_fields("GET", "/pushed")));
    peer.send_raw(&frames::raw(0x5, flags::END_HEADERS, 1, &payload));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

// ---- §6.7 PING ----

#[test]
fn sec6_7_ping_is_acknowledged_with_the_same_payload() {
    let (_server, mut peer) = connected();
    // "Receivers of a PING frame that does not include an ACK flag MUST
    // send a PING frame with the ACK flag set in response, with an
    // identical frame payload."
    peer.send(frames::ping(*b"h2spec\0\x01"));
    peer.expect("the PING ACK", ack_of(*b"h2spec\0\x01"));
}

#[test]
fn sec6_7_ping_ack_is_not_answered() {
    let (_server, mut peer) = connected();
    // "A PING frame with the ACK flag set ... MUST NOT [be responded to]".
    peer.send(frames::pong(*b"unsolic!"));
    peer.send(frames::ping(*b"solicitd"));
    let frame = peer.expect("a PING", |f| match f {
        Frame::Ping(p) => Some(*p),
        _ => None,
    });
    assert_eq!(
        frame.payload, *b"solicitd",
        "the server answered a PING ACK"
    );
}

#[test]
fn sec6_7_ping_on_a_stream_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "If a PING frame is received with a Stream Identifier field value
    // other than 0x00, the recipient MUST respond with a connection error
    // of type PROTOCOL_ERROR."
    peer.send_raw(&frames::raw(0x6, 0, 1, &[0; 8]));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_7_ping_with_length_other_than_8_is_frame_size_error() {
    let (_server, mut peer) = connected();
    // "Receipt of a PING frame with a length field value other than 8
    // MUST be treated as a connection error of type FRAME_SIZE_ERROR."
    peer.send_raw(&frames::raw(0x6, 0, 0, &[0; 6]));
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

// ---- §6.8 GOAWAY ----

#[test]
fn sec6_8_goaway_on_a_stream_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "An endpoint MUST treat a GOAWAY frame with a stream identifier
    // other than 0x00 as a connection error of type PROTOCOL_ERROR."
    peer.send_raw(&frames::raw(0x7, 0, 1, &[0; 8]));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_8_goaway_shorter_than_8_octets_is_frame_size_error() {
    let (_server, mut peer) = connected();
    peer.send_raw(&frames::raw(0x7, 0, 0, &[0; 7]));
    peer.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec6_8_goaway_from_client_is_accepted() {
    let (_server, mut peer) = connected();
    // h2spec generic/3.8. With no stream open the server may close at
    // once, but not with an error of its own.
    peer.send(frames::goaway(0, Reason::NO_ERROR));
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    loop {
        match peer.next_event(deadline) {
            Event::Closed | Event::Timeout => break,
            Event::Frame(Frame::GoAway(g)) => assert_eq!(g.reason, Reason::NO_ERROR),
            Event::Frame(_) => {}
        }
    }
}

#[test]
fn sec6_8_goaway_with_debug_data_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    let mut goaway = frames::goaway(0, Reason::NO_ERROR);
    goaway.debug_data = bytes::Bytes::from_static(b"client going away");
    peer.send(goaway);
    peer.send(frames::data(1, b"x").eos());
    assert_eq!(peer.expect_response(1).0, 200);
}

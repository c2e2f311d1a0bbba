//! RFC 9113 §5.4 (error handling: a connection error is GOAWAY then
//! close, a stream error is RST_STREAM and the connection goes on, never
//! RST_STREAM in answer to RST_STREAM), §5.5 (extensions: unknown frame
//! types and settings are ignored, except inside a field block) and §7
//! (unknown error codes trigger nothing special) against a real server.
//! h2spec `http2/5.4.1`, `5.5`, `7`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::peer::*;
use mio_grpc::framer::{Frame, Reason};

// ---- §5.4.1 connection errors ----

#[test]
fn sec5_4_1_connection_error_sends_goaway_then_closes() {
    let (_server, mut peer) = connected();
    // h2spec 5.4.1: a PING on stream 3 is a connection error.
    peer.send_raw(&frames::raw(0x6, 0, 3, &[0; 8]));
    // "An endpoint that encounters a connection error SHOULD first send a
    // GOAWAY frame"; "After sending the GOAWAY frame for an error
    // condition, the endpoint MUST close the TCP connection."
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_4_1_goaway_carries_the_last_stream_processed() {
    let (_server, mut peer) = connected();
    peer.send_get(1, "/");
    assert_eq!(peer.expect_response(1).0, 200);
    peer.send(frames::headers(3).request("POST", "/"));
    peer.send_raw(&frames::raw(0x6, 0, 3, &[0; 8]));
    // "... with the stream identifier of the last stream that it
    // successfully received from its peer."
    let goaway = peer.expect_goaway(Reason::PROTOCOL_ERROR);
    assert_eq!(goaway.last_stream_id.value(), 3);
}

#[test]
fn sec5_4_1_nothing_is_processed_after_a_connection_error() {
    let (_server, mut peer) = connected();
    // The error and a request in the same write: the request must not be
    // answered.
    let mut burst = frames::raw(0x6, 0, 3, &[0; 8]);
    let fragment = peer.encode_fields(&frames::request_fields("GET", "/"));
    burst.extend(frames::raw(0x1, 0x5, 1, &fragment));
    peer.send_raw(&burst);
    let goaway = peer.expect_goaway(Reason::PROTOCOL_ERROR);
    assert_eq!(goaway.last_stream_id.value(), 0);
}

// ---- §5.4.2 stream errors ----

#[test]
fn sec5_4_2_stream_error_resets_the_stream_and_the_connection_goes_on() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .field("Upper", "x")
            .eos(),
    );
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
    peer.expect_alive();
    peer.send_get(3, "/");
    assert_eq!(peer.expect_response(3), (200, HELLO.to_vec()));
}

#[test]
fn sec5_4_2_rst_stream_is_not_answered_with_rst_stream() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::rst(1, Reason::CANCEL));
    // "An endpoint MUST NOT send a RST_STREAM in response to a RST_STREAM
    // frame, to avoid looping."
    peer.expect_no_rst(1);
}

#[test]
fn sec5_4_2_many_stream_errors_do_not_end_the_connection() {
    let (_server, mut peer) = connected();
    for stream in (1..=19).step_by(2) {
        peer.send(
            frames::headers(stream)
                .request("GET", "/")
                .field("te", "gzip")
                .eos(),
        );
        peer.expect_rst(stream, Reason::PROTOCOL_ERROR);
    }
    peer.send_get(21, "/");
    assert_eq!(peer.expect_response(21), (200, HELLO.to_vec()));
}

// ---- §5.5 extending HTTP/2 ----

#[test]
fn sec5_5_unknown_frame_is_ignored() {
    let (_server, mut peer) = connected();
    // h2spec 5.5/1. "Implementations MUST ignore unknown or unsupported
    // values in all extensible protocol elements."
    peer.send(frames::unknown(0x16, 0, [0u8; 8]));
    peer.expect_alive();
}

#[test]
fn sec5_5_unknown_frame_on_an_open_stream_is_ignored() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::unknown(0x20, 1, b"extension payload"));
    peer.send(frames::data(1, b"body").eos());
    assert_eq!(peer.expect_response(1), (200, b"len=4 trailers=".to_vec()));
}

#[test]
fn sec5_5_unknown_frame_inside_field_block_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    // "Extension frames that appear in the middle of a field block are
    // not permitted; these MUST be treated as a connection error of type
    // PROTOCOL_ERROR."
    peer.send(frames::unknown(0x16, 0, [0u8; 8]));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_5_unknown_setting_is_ignored() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().param(0xff, 1).param(0x4242, 0xffff_ffff));
    // §6.5.2: "An endpoint that receives a SETTINGS frame with any unknown
    // or unsupported identifier MUST ignore that setting."
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

// ---- §7 error codes ----

#[test]
fn sec7_goaway_with_unknown_error_code_ends_the_connection_normally() {
    let (_server, mut peer) = connected();
    // h2spec 7/1. "Unknown or unsupported error codes MUST NOT trigger any
    // special behavior. These MAY be treated by an implementation as being
    // equivalent to INTERNAL_ERROR." The server may reply with its own
    // GOAWAY; it must not report an error of its own, and it closes.
    peer.send(frames::goaway(0, Reason::from(0xff)));
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match peer.next_event(deadline) {
            Event::Closed => break,
            Event::Frame(Frame::GoAway(g)) => assert_eq!(g.reason, Reason::NO_ERROR),
            Event::Frame(_) => {}
            Event::Timeout => break, // staying open is allowed too
        }
    }
}

#[test]
fn sec7_rst_stream_with_unknown_error_code_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::rst(1, Reason::from(0xff)));
    peer.expect_no_rst(1);
    peer.send_get(3, "/");
    assert_eq!(peer.expect_response(3), (200, HELLO.to_vec()));
}

#[test]
fn sec7_goaway_with_no_error_lets_open_streams_finish() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    // §6.8: the last stream id in a client's GOAWAY names server-initiated
    // streams; stream 1 is the client's own and goes on.
    peer.send(frames::goaway(0, Reason::NO_ERROR));
    peer.send(frames::data(1, b"done").eos());
    assert_eq!(peer.expect_response(1), (200, b"len=4 trailers=".to_vec()));
}

//! RFC 9113 §5.1 (stream states: what each state accepts and how the
//! server answers frames a state forbids), §5.1.1 (stream identifiers)
//! and §5.1.2 (stream concurrency) against a real server. h2spec
//! `http2/5.1`, `5.1.1`, `5.1.2`, `generic/2`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::peer::*;
use mio_grpc::framer::{Frame, Reason};

/// Opens stream 1 with a POST whose body has not ended (state "open" on
/// both sides: the handler waits for the body).
fn open_stream_1(peer: &mut Peer) {
    peer.send(frames::headers(1).request("POST", "/"));
}

/// Runs a GET on stream 1 to its end: both sides sent END_STREAM, so the
/// stream is "closed".
fn closed_stream_1(peer: &mut Peer) {
    peer.send_get(1, "/");
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

/// Frames on a closed stream: RFC 9113 §5.1 lets the server treat them as
/// a connection error of type STREAM_CLOSED, and §6.1 requires a stream
/// error STREAM_CLOSED for DATA; h2spec expects the connection error.
/// HEADERS there can also be read as a new stream reusing an identifier
/// (§5.1.1: connection error PROTOCOL_ERROR). Any of these passes.
fn expect_closed_stream_error(peer: &mut Peer, stream: u32) {
    match peer.expect_error(stream) {
        ErrorSeen::Stream(r) => assert_eq!(r, Reason::STREAM_CLOSED),
        ErrorSeen::Connection(r) => assert!(
            r == Reason::STREAM_CLOSED || r == Reason::PROTOCOL_ERROR,
            "GOAWAY({r})"
        ),
    }
}

// ---- idle ----

#[test]
fn sec5_1_idle_data_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "Receiving any frame other than HEADERS or PRIORITY on a stream in
    // this state MUST be treated as a connection error of type
    // PROTOCOL_ERROR."
    peer.send(frames::data(1, b"test").eos());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_1_idle_rst_stream_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::rst(1, Reason::CANCEL));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_1_idle_window_update_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::window_update(1, 100));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_1_idle_continuation_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::continuation(1)
            .field(":method", "GET")
            .end_headers(),
    );
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_1_idle_priority_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::priority(1, 0, 255, false));
    peer.expect_alive();
    // PRIORITY does not open the stream: HEADERS on it still may.
    peer.send_get(1, "/");
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec5_1_idle_data_on_a_skipped_stream_id_is_protocol_error() {
    let (_server, mut peer) = connected();
    open_stream_1(&mut peer);
    // Stream 3 was never opened: still idle while 1 is open.
    peer.send(frames::data(3, b"test"));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

// ---- open ----

#[test]
fn sec5_1_open_accepts_data_trailers_window_update_and_priority() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::data(1, b"ab"));
    peer.send(frames::window_update(1, 10));
    peer.send(frames::priority(1, 0, 10, false));
    peer.send(frames::data(1, b"cd"));
    peer.send(frames::headers(1).field("x-trailer", "yes").eos());
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=4 trailers=x-trailer:yes".to_vec())
    );
}

#[test]
fn sec5_1_open_rst_stream_closes_the_stream_only() {
    let (_server, mut peer) = connected();
    open_stream_1(&mut peer);
    peer.send(frames::rst(1, Reason::CANCEL));
    peer.expect_no_rst(1);
    peer.send_get(3, "/");
    assert_eq!(peer.expect_response(3), (200, HELLO.to_vec()));
}

// ---- half-closed (remote) ----

#[test]
fn sec5_1_half_closed_remote_data_is_stream_closed() {
    let (_server, mut peer) = connected();
    // Keep the server's side open: no window for the response body.
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    // "If an endpoint receives additional frames, other than
    // WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this
    // state, it MUST respond with a stream error of type STREAM_CLOSED."
    peer.send(frames::data(1, b"test").eos());
    peer.expect_rst(1, Reason::STREAM_CLOSED);
}

#[test]
fn sec5_1_half_closed_remote_headers_is_stream_closed() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    peer.send(frames::headers(1).request("GET", "/").eos());
    peer.expect_rst(1, Reason::STREAM_CLOSED);
}

#[test]
fn sec5_1_half_closed_remote_continuation_is_an_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    // A CONTINUATION after END_HEADERS is also a connection error
    // PROTOCOL_ERROR (§6.10); h2spec accepts either code, either scope.
    peer.send(frames::continuation(1).field("x-dummy", "1").end_headers());
    match peer.expect_error(1) {
        ErrorSeen::Stream(r) | ErrorSeen::Connection(r) => assert!(
            r == Reason::STREAM_CLOSED || r == Reason::PROTOCOL_ERROR,
            "{r}"
        ),
    }
}

#[test]
fn sec5_1_half_closed_remote_window_update_priority_are_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    peer.send(frames::priority(1, 0, 255, false));
    peer.send(frames::window_update(1, 1));
    let data = peer.expect_data(1);
    assert_eq!(data.payload, &HELLO[..1]);
    peer.send(frames::window_update(1, 100));
    let data = peer.expect_data(1);
    assert_eq!(data.payload, &HELLO[1..]);
    assert!(data.end_stream);
}

#[test]
fn sec5_1_half_closed_remote_rst_stream_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    peer.send(frames::rst(1, Reason::CANCEL));
    peer.expect_no_rst(1);
}

// ---- closed ----

#[test]
fn sec5_1_closed_data_after_rst_stream_is_stream_closed() {
    let (_server, mut peer) = connected();
    open_stream_1(&mut peer);
    peer.send(frames::rst(1, Reason::CANCEL));
    peer.send(frames::data(1, b"test").eos());
    // §6.1: "If a DATA frame is received whose stream is not in the
    // "open" or "half-closed (local)" state, the recipient MUST respond
    // with a stream error of type STREAM_CLOSED."
    expect_closed_stream_error(&mut peer, 1);
}

#[test]
fn sec5_1_closed_headers_after_rst_stream_is_stream_closed() {
    let (_server, mut peer) = connected();
    open_stream_1(&mut peer);
    peer.send(frames::rst(1, Reason::CANCEL));
    peer.send(frames::headers(1).request("GET", "/").eos());
    expect_closed_stream_error(&mut peer, 1);
}

#[test]
fn sec5_1_closed_continuation_after_rst_stream_is_an_error() {
    let (_server, mut peer) = connected();
    open_stream_1(&mut peer);
    peer.send(frames::rst(1, Reason::CANCEL));
    peer.send(frames::continuation(1).field("x-dummy", "1").end_headers());
    match peer.expect_error(1) {
        ErrorSeen::Stream(r) | ErrorSeen::Connection(r) => assert!(
            r == Reason::STREAM_CLOSED || r == Reason::PROTOCOL_ERROR,
            "{r}"
        ),
    }
}

#[test]
fn sec5_1_closed_data_after_end_stream_is_stream_closed() {
    let (_server, mut peer) = connected();
    closed_stream_1(&mut peer);
    peer.send(frames::data(1, b"test").eos());
    expect_closed_stream_error(&mut peer, 1);
}

#[test]
fn sec5_1_closed_headers_after_end_stream_is_a_connection_error_stream_closed() {
    // h2spec http2/5.1 #12: "An endpoint that receives any frames after
    // receiving a frame with the END_STREAM flag set MUST treat that as a
    // connection error of type STREAM_CLOSED."
    let (_server, mut peer) = connected();
    closed_stream_1(&mut peer);
    peer.send(frames::headers(1).request("GET", "/").eos());
    peer.expect_goaway(Reason::STREAM_CLOSED);
}

#[test]
fn sec5_1_closed_continuation_after_end_stream_is_an_error() {
    let (_server, mut peer) = connected();
    closed_stream_1(&mut peer);
    peer.send(frames::continuation(1).field("x-dummy", "1").end_headers());
    peer.expect_goaway_any(&[Reason::STREAM_CLOSED, Reason::PROTOCOL_ERROR]);
}

#[test]
fn sec5_1_closed_priority_is_accepted() {
    let (_server, mut peer) = connected();
    closed_stream_1(&mut peer);
    // "An endpoint MUST NOT send frames other than PRIORITY on a closed
    // stream": PRIORITY is fine.
    peer.send(frames::priority(1, 0, 255, false));
    peer.expect_alive();
}

#[test]
fn sec5_1_closed_window_update_and_rst_stream_are_ignored() {
    let (_server, mut peer) = connected();
    closed_stream_1(&mut peer);
    // "An endpoint that sends a frame with the END_STREAM flag set ...
    // might receive a WINDOW_UPDATE or RST_STREAM frame from its peer".
    peer.send(frames::window_update(1, 10));
    peer.send(frames::rst(1, Reason::CANCEL));
    peer.expect_no_rst(1);
}

#[test]
fn sec5_1_frames_on_a_stream_the_server_reset_are_ignored() {
    let (_server, mut peer) = connected();
    // The server resets stream 1 (a malformed request) ...
    peer.send(frames::headers(1).request("POST", "/").field("Bad", "1"));
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
    // ... and must ignore what the client sent before it saw the reset:
    // "An endpoint MUST ignore frames that it receives on closed streams
    // after it has sent a RST_STREAM frame."
    peer.send(frames::data(1, b"late"));
    peer.send(frames::headers(1).field("x-trailer", "late").eos());
    peer.expect_no_rst(1);
    peer.send_get(3, "/");
    assert_eq!(peer.expect_response(3), (200, HELLO.to_vec()));
}

// ---- §5.1.1 stream identifiers ----

#[test]
fn sec5_1_1_even_stream_id_from_client_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "Streams initiated by a client MUST use odd-numbered stream
    // identifiers"; "An endpoint that receives an unexpected stream
    // identifier MUST respond with a connection error of type
    // PROTOCOL_ERROR."
    peer.send(frames::headers(2).request("GET", "/").eos());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_1_1_stream_id_lower_than_previous_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send_get(5, "/");
    assert_eq!(peer.expect_response(5), (200, HELLO.to_vec()));
    // Stream 3 was never used, but 5 was: "The identifier of a newly
    // established stream MUST be numerically greater than all streams
    // that the initiating endpoint has opened".
    peer.send_get(3, "/");
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec5_1_1_skipped_stream_ids_are_implicitly_closed_and_allowed() {
    let (_server, mut peer) = connected();
    // Jumping ahead is fine: the skipped ids just close.
    peer.send_get(1, "/");
    assert_eq!(peer.expect_response(1).0, 200);
    peer.send_get(101, "/");
    assert_eq!(peer.expect_response(101).0, 200);
    peer.send_get(0x7fff_ffff, "/");
    assert_eq!(peer.expect_response(0x7fff_ffff).0, 200);
}

#[test]
fn sec5_1_1_stream_ids_are_not_reused_after_the_connection_goes_on() {
    let (_server, mut peer) = connected();
    for stream in (1..=21).step_by(2) {
        peer.send_get(stream, "/");
        assert_eq!(peer.expect_response(stream), (200, HELLO.to_vec()));
    }
}

// ---- §5.1.2 stream concurrency ----

#[test]
fn sec5_1_2_server_advertises_max_concurrent_streams() {
    let (_server, peer) = connected_with(|c| c.max_concurrent_streams = 7);
    assert_eq!(peer.server_settings.max_concurrent_streams(), Some(7));
}

#[test]
fn sec5_1_2_exceeding_max_concurrent_streams_is_refused() {
    let (_server, mut peer) = connected_with(|c| c.max_concurrent_streams = 2);
    // Keep the streams open: no window for the response bodies.
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.send_get(3, "/");
    peer.send_get(5, "/");
    // "An endpoint that receives a HEADERS frame that causes its
    // advertised concurrent stream limit to be exceeded MUST treat this
    // as a stream error of type PROTOCOL_ERROR or REFUSED_STREAM."
    peer.expect_rst_any(5, &[Reason::REFUSED_STREAM, Reason::PROTOCOL_ERROR]);
    peer.expect_headers(1);
    peer.expect_headers(3);
}

#[test]
fn sec5_1_2_closed_streams_free_their_slot() {
    let (_server, mut peer) = connected_with(|c| c.max_concurrent_streams = 1);
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    peer.send_get(3, "/");
    peer.expect_rst_any(3, &[Reason::REFUSED_STREAM, Reason::PROTOCOL_ERROR]);
    // Finish stream 1: its slot frees up.
    peer.send(frames::window_update(1, 100));
    assert!(peer.expect_data(1).end_stream);
    peer.send(frames::settings().initial_window_size(100));
    peer.wait_for_settings_ack();
    peer.send_get(5, "/");
    assert_eq!(peer.expect_response(5), (200, HELLO.to_vec()));
}

#[test]
fn sec5_1_2_frames_for_a_refused_stream_are_ignored() {
    let (_server, mut peer) = connected_with(|c| c.max_concurrent_streams = 1);
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::headers(3).request("POST", "/summary"));
    peer.expect_rst_any(3, &[Reason::REFUSED_STREAM, Reason::PROTOCOL_ERROR]);
    // The client sent its body before it saw the refusal: the server reset
    // the stream, so it ignores these (§5.1 closed).
    peer.send(frames::data(3, b"late body"));
    peer.send(frames::data(3, b"").eos());
    peer.expect_no_rst(3);
    peer.send(frames::data(1, b"").eos());
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec5_1_2_reset_streams_free_their_slot() {
    let (_server, mut peer) = connected_with(|c| c.max_concurrent_streams = 1);
    open_stream_1(&mut peer);
    peer.send(frames::rst(1, Reason::CANCEL));
    // The slot frees once stream 1's handler has returned (it may still be
    // running right after the reset: such a request is refused with
    // REFUSED_STREAM, which a client retries, §8.7).
    let mut id = 3;
    loop {
        peer.send_get(id, "/");
        let refused = peer.expect(&format!("a response or RST_STREAM on {id}"), |f| match f {
            Frame::Headers(h) if h.stream_id.value() == id => Some(false),
            Frame::RstStream(r) if r.stream_id.value() == id => {
                assert_eq!(r.reason, Reason::REFUSED_STREAM);
                Some(true)
            }
            _ => None,
        });
        if !refused {
            break;
        }
        assert!(id < 2_001, "stream 1's slot never freed");
        id += 2;
    }
    assert_eq!(peer.expect_data(id).payload, HELLO);
}

#[test]
fn sec5_1_2_half_closed_streams_count_against_the_limit() {
    let (_server, mut peer) = connected_with(|c| c.max_concurrent_streams = 1);
    // "Streams that are in the "open" state or in either of the
    // "half-closed" states count toward the maximum".
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1); // half-closed (remote) on the server
    peer.send_get(3, "/");
    peer.expect_rst_any(3, &[Reason::REFUSED_STREAM, Reason::PROTOCOL_ERROR]);
    // The refusal is a stream error only.
    let seen = peer.expect_alive();
    assert!(!seen.iter().any(|f| matches!(f, Frame::GoAway(_))));
}

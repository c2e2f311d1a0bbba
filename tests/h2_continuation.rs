//! RFC 9113 §6.10 (CONTINUATION) against a real server: a field block
//! may be split across any number of CONTINUATION frames, even in the
//! middle of an HPACK representation; a CONTINUATION that does not follow
//! an unfinished HEADERS or CONTINUATION on the same stream, or any other
//! frame inside the block, is a connection error of type PROTOCOL_ERROR;
//! and the server bounds the block it buffers (§10.5). h2spec
//! `http2/6.10`, `generic/3.10`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::peer::*;
use mio_grpc::framer::{flags, Reason};

#[test]
fn sec6_10_multiple_continuation_frames_are_accepted() {
    let (_server, mut peer) = connected();
    // h2spec 6.10/1: "Any number of CONTINUATION frames can be sent, as
    // long as the preceding frame is on the same stream and is a HEADERS,
    // PUSH_PROMISE, or CONTINUATION frame without the END_HEADERS flag".
    peer.send(
        frames::headers(1)
            .request("GET", "/headers")
            .eos()
            .no_end_headers(),
    );
    peer.send(frames::continuation(1).field("x-one", "1"));
    peer.send(frames::continuation(1).field("x-two", "2").end_headers());
    let (status, body) = peer.expect_response(1);
    assert_eq!((status, &body[..]), (200, &b"x-one: 1\nx-two: 2\n"[..]));
}

#[test]
fn sec6_10_field_block_split_inside_a_representation_is_accepted() {
    let (_server, mut peer) = connected();
    let mut fields = frames::request_fields("GET", "/headers");
    fields.push(mio_grpc::framer::hpack::HeaderField::new(
        "x-split",
        "a value cut in three",
    ));
    let block = peer.encode_fields(&fields);
    let (a, rest) = block.split_at(block.len() - 9);
    let (b, c) = rest.split_at(4);
    peer.send(frames::headers(1).fragment(a).eos().no_end_headers());
    peer.send(frames::continuation(1).fragment(b));
    peer.send(frames::continuation(1).fragment(c).end_headers());
    let (_, body) = peer.expect_response(1);
    assert_eq!(body, b"x-split: a value cut in three\n");
}

#[test]
fn sec6_10_empty_headers_and_continuation_fragments_are_accepted() {
    let (_server, mut peer) = connected();
    let block = peer.encode_fields(&frames::request_fields("GET", "/"));
    peer.send(frames::headers(1).fragment([]).eos().no_end_headers());
    peer.send(frames::continuation(1).fragment(&block));
    peer.send(frames::continuation(1).fragment([]).end_headers());
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec6_10_large_field_block_spanning_frames_is_accepted() {
    let (_server, mut peer) = connected();
    // ~40 KB of fields: the encoder splits it at 16,384 octets.
    let mut request = frames::headers(1).request("GET", "/").eos();
    for i in 0..40 {
        request = request.field(&format!("x-large-{i}"), &"l".repeat(1_000));
    }
    peer.send(request);
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec6_10_end_stream_on_headers_applies_after_continuation() {
    let (_server, mut peer) = connected();
    // END_STREAM is on the HEADERS; the stream is half-closed once the
    // block ends, so DATA after it is STREAM_CLOSED.
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    peer.send(frames::continuation(1).field("x-c", "1").end_headers());
    peer.expect_headers(1);
    peer.send(frames::data(1, b"late"));
    peer.expect_rst(1, Reason::STREAM_CLOSED);
}

#[test]
fn sec6_10_trailers_with_continuation_are_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::data(1, b"body"));
    peer.send(frames::headers(1).field("x-t1", "a").eos().no_end_headers());
    peer.send(frames::continuation(1).field("x-t2", "b").end_headers());
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=4 trailers=x-t1:a,x-t2:b".to_vec())
    );
}

#[test]
fn sec6_10_undefined_flags_on_continuation_are_ignored() {
    let (_server, mut peer) = connected();
    // CONTINUATION defines END_HEADERS only: END_STREAM, PADDED and
    // PRIORITY bits on it mean nothing (§4.1: "MUST be ignored").
    peer.send(
        frames::headers(1)
            .request("GET", "/headers")
            .eos()
            .no_end_headers(),
    );
    let fragment = peer.encode_fields(&[mio_grpc::framer::hpack::HeaderField::new("x-c", "1")]);
    let flags = flags::END_HEADERS | 0x01 | flags::PADDED | flags::PRIORITY;
    peer.send_raw(&frames::raw(0x9, flags, 1, &fragment));
    assert_eq!(peer.expect_response(1), (200, b"x-c: 1\n".to_vec()));
}

#[test]
fn sec6_10_continuation_interrupted_by_data_is_protocol_error() {
    let (_server, mut peer) = connected();
    // h2spec 6.10/2: "If the END_HEADERS flag is not set, this frame MUST be
    // followed by another CONTINUATION frame. A receiver MUST treat the
    // receipt of any other type of frame or a frame on a different stream
    // as a connection error of type PROTOCOL_ERROR."
    peer.send(frames::headers(1).request("POST", "/").no_end_headers());
    peer.send(frames::continuation(1).field("x-dummy", "1"));
    peer.send(frames::data(1, b"test").eos());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_interrupted_by_ping_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    peer.send(frames::ping(*b"interrup"));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_interrupted_by_settings_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    peer.send(frames::settings());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_on_another_stream_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    peer.send(frames::continuation(3).field("x-dummy", "1").end_headers());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_on_stream_0_is_protocol_error() {
    let (_server, mut peer) = connected();
    // h2spec 6.10/3: "If a CONTINUATION frame is received with a Stream
    // Identifier field of 0x00, the recipient MUST respond with a
    // connection error of type PROTOCOL_ERROR."
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    peer.send(frames::continuation(0).field("x-dummy", "1").end_headers());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_after_headers_with_end_headers_is_protocol_error() {
    let (_server, mut peer) = connected();
    // h2spec 6.10/4: "A CONTINUATION frame MUST be preceded by a HEADERS,
    // PUSH_PROMISE or CONTINUATION frame without the END_HEADERS flag set.
    // A recipient that observes violation of this rule MUST respond with a
    // connection error of type PROTOCOL_ERROR."
    peer.send(frames::headers(1).request("GET", "/").eos());
    peer.send(frames::continuation(1).field("x-dummy", "1").end_headers());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_after_continuation_with_end_headers_is_protocol_error() {
    let (_server, mut peer) = connected();
    // h2spec 6.10/5.
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    peer.send(frames::continuation(1).field("x-dummy", "1").end_headers());
    peer.send(frames::continuation(1).field("x-dummy", "2").end_headers());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_after_data_is_protocol_error() {
    let (_server, mut peer) = connected();
    // h2spec 6.10/6 (the block is still open: the DATA interrupts it).
    peer.send(frames::headers(1).request("POST", "/").no_end_headers());
    peer.send(frames::data(1, b"test").eos());
    peer.send(frames::continuation(1).field("x-dummy", "1").end_headers());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_continuation_after_a_finished_stream_data_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::data(1, b"x"));
    // A CONTINUATION right after DATA, with no open field block.
    peer.send_raw(&frames::raw(0x9, flags::END_HEADERS, 1, &[0x82]));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec6_10_headers_on_another_stream_inside_a_block_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    peer.send(frames::continuation(1).field("x-one", "1"));
    peer.send(frames::headers(3).request("GET", "/").eos());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec10_5_continuation_flood_is_refused() {
    let (_server, mut peer) = connected();
    // §10.5: "An endpoint can use GOAWAY with ENHANCE_YOUR_CALM for
    // peers it judges abusive"; endless empty CONTINUATION frames are the
    // CVE-2024-27316 flood. The server must stop buffering and close.
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    let mut flood = Vec::new();
    for _ in 0..10_000 {
        flood.extend(frames::raw(0x9, 0, 1, &[]));
    }
    peer.send_raw(&flood);
    peer.expect_goaway_any(&[Reason::ENHANCE_YOUR_CALM, Reason::PROTOCOL_ERROR]);
}

#[test]
fn sec10_5_oversized_field_block_is_refused() {
    let (_server, mut peer) = connected();
    // 1 MiB of field block octets across CONTINUATION frames: far past
    // any header list the server accepts.
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .eos()
            .no_end_headers(),
    );
    let chunk = vec![0u8; 16_384];
    let mut flood = Vec::new();
    for _ in 0..64 {
        flood.extend(frames::raw(0x9, 0, 1, &chunk));
    }
    peer.send_raw(&flood);
    peer.expect_goaway_any(&[
        Reason::ENHANCE_YOUR_CALM,
        Reason::PROTOCOL_ERROR,
        Reason::COMPRESSION_ERROR,
    ]);
}

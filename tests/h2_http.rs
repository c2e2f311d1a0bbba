//! RFC 9113 §8 (HTTP semantics over HTTP/2) against a real server:
//! request/response exchanges (GET, HEAD, POST, bodies, trailers), field
//! validity (§8.2.1), connection-specific fields and `te` (§8.2.2),
//! pseudo-header fields (§8.3), `content-length` (§8.1.1), CONNECT (§8.5)
//! and push (§8.4). A malformed request is a stream error of type
//! PROTOCOL_ERROR (§8.1.1) and the connection goes on. h2spec
//! `http2/8.1`, `8.1.2.*`, `8.2`, `generic/4`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::peer::*;
use mio_grpc::framer::hpack::HeaderField;
use mio_grpc::framer::Reason;

/// Sends `request` on stream 1 and expects the malformed-request answer,
/// "a stream error of type PROTOCOL_ERROR" (§8.1.1); the connection must
/// then still serve stream 3.
fn expect_malformed(request: HeadersBuilder) {
    let (_server, mut peer) = connected();
    peer.send(request);
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
    peer.send_get(3, "/");
    assert_eq!(peer.expect_response(3), (200, HELLO.to_vec()));
}

/// A request on stream 1 from raw pseudo and regular fields.
fn request_of(fields: &[(&str, &str)]) -> HeadersBuilder {
    let mut h = frames::headers(1).eos();
    for (name, value) in fields {
        h = h.field(name, value);
    }
    h
}

fn get() -> HeadersBuilder {
    frames::headers(1).request("GET", "/").eos()
}

// ---- §8.1 request/response exchange ----

#[test]
fn sec8_1_get_gets_a_response() {
    let (_server, mut peer) = connected();
    peer.send_get(1, "/");
    let (status, fields, body, trailers) = peer.expect_full_response(1);
    assert_eq!((status, &body[..], trailers), (200, HELLO, None));
    // §8.3.2: ":status" is the only response pseudo-header, first.
    assert_valid_response_fields(&fields);
    peer.send_get(3, "/nowhere");
    assert_eq!(peer.expect_response(3).0, 404);
}

#[test]
fn sec8_1_head_gets_a_response_without_content() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("HEAD", "/").eos());
    assert_eq!(peer.expect_response(1), (200, Vec::new()));
}

#[test]
fn sec8_1_post_with_a_body_gets_a_response() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/echo"));
    peer.send(frames::data(1, b"hello, "));
    peer.send(frames::data(1, b"server").eos());
    assert_eq!(peer.expect_response(1), (200, b"hello, server".to_vec()));
}

#[test]
fn sec8_1_post_with_trailers_gets_a_response() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("POST", "/summary")
            .field("te", "trailers"),
    );
    peer.send(frames::data(1, b"12345"));
    peer.send(
        frames::headers(1)
            .field("x-checksum", "abc")
            .field("x-count", "5")
            .eos(),
    );
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=5 trailers=x-checksum:abc,x-count:5".to_vec())
    );
}

#[test]
fn sec8_1_trailers_without_a_body_are_accepted() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/summary"));
    peer.send(frames::headers(1).field("x-t", "1").eos());
    assert_eq!(
        peer.expect_response(1),
        (200, b"len=0 trailers=x-t:1".to_vec())
    );
}

#[test]
fn sec8_1_second_headers_without_end_stream_is_protocol_error() {
    let (_server, mut peer) = connected();
    // h2spec 8.1/1: trailers must carry END_STREAM. "An endpoint that
    // receives a HEADERS frame without the END_STREAM flag set after
    // receiving the HEADERS frame that opens a request ... MUST treat the
    // corresponding request or response as malformed".
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::data(1, b"test"));
    peer.send(frames::headers(1).field("x-test", "ok"));
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_1_many_requests_in_parallel_get_their_own_responses() {
    let (_server, mut peer) = connected();
    for stream in (1..=39).step_by(2) {
        peer.send(frames::headers(stream).request("POST", "/echo"));
    }
    for stream in (1..=39).step_by(2) {
        peer.send(frames::data(stream, format!("body of {stream}")).eos());
    }
    for stream in (1..=39).step_by(2) {
        let (status, body) = peer.expect_response(stream);
        assert_eq!(
            (status, body),
            (200, format!("body of {stream}").into_bytes())
        );
    }
}

// ---- §8.1.1 malformed messages: content-length ----

#[test]
fn sec8_1_1_content_length_larger_than_data_is_protocol_error() {
    // h2spec 8.1.2.6/1.
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("POST", "/")
            .field("content-length", "1"),
    );
    peer.send(frames::data(1, b"test").eos());
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_1_1_content_length_not_matching_several_data_frames_is_protocol_error() {
    // h2spec 8.1.2.6/2.
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("POST", "/")
            .field("content-length", "1"),
    );
    peer.send(frames::data(1, b"test"));
    peer.send(frames::data(1, b"test").eos());
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_1_1_body_shorter_than_content_length_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("POST", "/")
            .field("content-length", "10"),
    );
    peer.send(frames::data(1, b"short").eos());
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_1_1_content_length_with_end_stream_on_headers_is_protocol_error() {
    expect_malformed(
        frames::headers(1)
            .request("POST", "/")
            .field("content-length", "3")
            .eos(),
    );
}

#[test]
fn sec8_1_1_invalid_content_length_is_protocol_error() {
    expect_malformed(get().field("content-length", "ten"));
}

#[test]
fn sec8_1_1_matching_content_length_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("POST", "/echo")
            .field("content-length", "8"),
    );
    peer.send(frames::data(1, b"test"));
    peer.send(frames::data(1, b"test").eos());
    assert_eq!(peer.expect_response(1), (200, b"testtest".to_vec()));
}

// ---- §8.2 HTTP fields ----

#[test]
fn sec8_2_uppercase_header_is_stream_protocol_error() {
    // h2spec 8.1.2/1. "A field name MUST NOT contain characters in the
    // ranges 0x00-0x20, 0x41-0x5a, or 0x7f-0xff"; "a request ... that
    // contains a field that violates any of these conditions MUST be
    // treated as malformed".
    expect_malformed(get().field("X-TEST", "ok"));
}

#[test]
fn sec8_2_1_field_name_with_space_is_protocol_error() {
    expect_malformed(get().field("x test", "ok"));
}

#[test]
fn sec8_2_1_field_name_with_colon_inside_is_protocol_error() {
    expect_malformed(get().field("x:test", "ok"));
}

#[test]
fn sec8_2_1_field_name_with_non_ascii_is_protocol_error() {
    expect_malformed(get().field_bytes(b"x-t\xe9st", b"ok"));
}

#[test]
fn sec8_2_1_empty_field_name_is_protocol_error() {
    expect_malformed(get().field("", "ok"));
}

#[test]
fn sec8_2_1_field_value_with_nul_is_protocol_error() {
    // "A field value MUST NOT contain the zero value (0x00), line feed
    // (0x0a), or carriage return (0x0d) at any position."
    expect_malformed(get().field_bytes(b"x-test", b"a\0b"));
}

#[test]
fn sec8_2_1_field_value_with_line_feed_is_protocol_error() {
    expect_malformed(get().field_bytes(b"x-test", b"a\nb"));
}

#[test]
fn sec8_2_1_field_value_with_carriage_return_is_protocol_error() {
    expect_malformed(get().field_bytes(b"x-test", b"a\rb"));
}

#[test]
fn sec8_2_1_field_value_with_leading_whitespace_is_protocol_error() {
    // "A field value MUST NOT start or end with an ASCII whitespace
    // character (ASCII SP or HTAB, 0x20 or 0x09)."
    expect_malformed(get().field("x-test", " ok"));
}

#[test]
fn sec8_2_1_field_value_with_trailing_tab_is_protocol_error() {
    expect_malformed(get().field("x-test", "ok\t"));
}

#[test]
fn sec8_2_1_field_value_with_inner_whitespace_and_empty_value_are_accepted() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/headers")
            .field("x-inner", "a b\tc")
            .field("x-empty", "")
            .eos(),
    );
    let (status, body) = peer.expect_response(1);
    assert_eq!(
        (status, &body[..]),
        (200, &b"x-inner: a b\tc\nx-empty: \n"[..])
    );
}

#[test]
fn sec8_2_2_connection_header_is_protocol_error() {
    // h2spec 8.1.2.2/1. "An endpoint MUST NOT generate an HTTP/2 message
    // containing connection-specific header fields ... Any message
    // containing connection-specific header fields MUST be treated as
    // malformed".
    expect_malformed(get().field("connection", "keep-alive"));
}

#[test]
fn sec8_2_2_keep_alive_header_is_protocol_error() {
    expect_malformed(get().field("keep-alive", "timeout=5"));
}

#[test]
fn sec8_2_2_proxy_connection_header_is_protocol_error() {
    expect_malformed(get().field("proxy-connection", "keep-alive"));
}

#[test]
fn sec8_2_2_transfer_encoding_header_is_protocol_error() {
    expect_malformed(get().field("transfer-encoding", "chunked"));
}

#[test]
fn sec8_2_2_upgrade_header_is_protocol_error() {
    expect_malformed(get().field("upgrade", "h2c"));
}

#[test]
fn sec8_2_2_te_other_than_trailers_is_protocol_error() {
    // h2spec 8.1.2.2/2. "The only exception to this is the TE header
    // field, which MAY be present in an HTTP/2 request; when it is, it
    // MUST NOT contain any value other than "trailers"."
    expect_malformed(get().field("te", "trailers, deflate"));
}

#[test]
fn sec8_2_2_te_trailers_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(get().field("te", "trailers"));
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec8_2_3_split_cookie_fields_are_accepted() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/")
            .field("cookie", "a=b")
            .field("cookie", "c=d")
            .eos(),
    );
    assert_eq!(peer.expect_response(1).0, 200);
}

// ---- §8.3 pseudo-header fields ----

#[test]
fn sec8_3_unknown_pseudo_header_is_protocol_error() {
    // h2spec 8.1.2.1/1. "Endpoints MUST treat a request or response that
    // contains undefined or invalid pseudo-header fields as malformed."
    expect_malformed(get().field(":test", "ok"));
}

#[test]
fn sec8_3_response_pseudo_header_in_request_is_protocol_error() {
    // h2spec 8.1.2.1/2. "Pseudo-header fields defined for responses MUST
    // NOT appear in requests".
    expect_malformed(get().field(":status", "200"));
}

#[test]
fn sec8_3_pseudo_header_in_trailers_is_protocol_error() {
    // h2spec 8.1.2.1/3. "Pseudo-header fields MUST NOT appear in a
    // trailer section."
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("POST", "/"));
    peer.send(frames::data(1, b"test"));
    peer.send(frames::headers(1).field(":method", "POST").eos());
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec8_3_pseudo_header_after_regular_field_is_protocol_error() {
    // h2spec 8.1.2.1/4. "All pseudo-header fields MUST appear in a field
    // block before all regular field lines."
    let mut h = frames::headers(1).field("x-test", "ok").eos();
    h = h.fields(frames::request_fields("GET", "/"));
    expect_malformed(h);
}

#[test]
fn sec8_3_1_empty_path_is_protocol_error() {
    // h2spec 8.1.2.3/1. "This pseudo-header field MUST NOT be empty for
    // "http" or "https" URIs".
    expect_malformed(request_of(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", ""),
        (":authority", "127.0.0.1"),
    ]));
}

#[test]
fn sec8_3_1_missing_method_is_protocol_error() {
    // h2spec 8.1.2.3/2. "All HTTP/2 requests MUST include exactly one
    // valid value for the ":method", ":scheme", and ":path" pseudo-header
    // fields, unless they are CONNECT requests".
    expect_malformed(request_of(&[
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "127.0.0.1"),
    ]));
}

#[test]
fn sec8_3_1_missing_scheme_is_protocol_error() {
    expect_malformed(request_of(&[
        (":method", "GET"),
        (":path", "/"),
        (":authority", "127.0.0.1"),
    ]));
}

#[test]
fn sec8_3_1_missing_path_is_protocol_error() {
    expect_malformed(request_of(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "127.0.0.1"),
    ]));
}

#[test]
fn sec8_3_1_duplicate_method_is_protocol_error() {
    expect_malformed(get().field(":method", "GET"));
}

#[test]
fn sec8_3_1_duplicate_scheme_is_protocol_error() {
    expect_malformed(get().field(":scheme", "http"));
}

#[test]
fn sec8_3_1_duplicate_path_is_protocol_error() {
    expect_malformed(get().field(":path", "/"));
}

#[test]
fn sec8_3_1_duplicate_authority_is_protocol_error() {
    expect_malformed(get().field(":authority", "127.0.0.1"));
}

#[test]
fn sec8_3_1_authority_with_userinfo_is_protocol_error() {
    // "The authority MUST NOT include the deprecated userinfo subcomponent
    // for "http" or "https" schemed URIs."
    expect_malformed(request_of(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "user:pass@127.0.0.1"),
    ]));
}

#[test]
fn sec8_3_1_request_without_authority_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(request_of(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
    ]));
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec8_3_1_host_instead_of_authority_is_accepted() {
    let (_server, mut peer) = connected();
    peer.send(request_of(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        ("host", "127.0.0.1"),
    ]));
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec8_3_1_options_asterisk_is_accepted() {
    let (_server, mut peer) = connected();
    // "A request in asterisk form (for OPTIONS) includes the value '*'".
    peer.send(frames::headers(1).request("OPTIONS", "*").eos());
    assert_eq!(peer.expect_response(1).0, 404);
}

// ---- §8.4 server push ----

#[test]
fn sec8_4_push_promise_from_client_is_protocol_error() {
    // h2spec 8.2/1.
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("GET", "/").eos());
    let mut payload = 2u32.to_be_bytes().to_vec();
    payload.extend(peer.encode_fields(&frames::request_fields("GET", "/pushed")));
    peer.send_raw(&frames::raw(0x5, 0x4, 1, &payload));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

// ---- §8.5 CONNECT ----

#[test]
fn sec8_5_connect_with_path_is_protocol_error() {
    // "The ":scheme" and ":path" pseudo-header fields MUST be omitted."
    expect_malformed(request_of(&[
        (":method", "CONNECT"),
        (":authority", "example.com:443"),
        (":path", "/"),
    ]));
}

#[test]
fn sec8_5_connect_without_authority_is_protocol_error() {
    // "The ":authority" pseudo-header field contains the host and port to
    // connect to".
    expect_malformed(request_of(&[(":method", "CONNECT")]));
}

#[test]
fn sec8_5_well_formed_connect_is_not_malformed() {
    let (_server, mut peer) = connected();
    peer.send(request_of(&[
        (":method", "CONNECT"),
        (":authority", "example.com:443"),
    ]));
    // The handler has no tunnel to offer: any response will do, but not a
    // stream error.
    let headers = peer.expect_headers(1);
    assert!(status(&headers) >= 200);
}

// ---- responses ----

#[test]
fn sec8_3_2_responses_carry_only_status_and_lowercase_fields() {
    let (_server, mut peer) = connected();
    for (stream, path) in [(1, "/"), (3, "/big"), (5, "/nowhere")] {
        peer.send_get(stream, path);
        let (status, _, _) = peer.expect_response_granting(stream);
        assert!(status == 200 || status == 404);
    }
}

#[test]
fn sec8_1_sensitive_and_repeated_fields_reach_the_handler() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/headers")
            .fields([
                HeaderField::new("accept", "text/plain"),
                HeaderField::new("accept", "text/html"),
                HeaderField::new_sensitive("authorization", "Bearer x"),
            ])
            .eos(),
    );
    let (_, body) = peer.expect_response(1);
    assert_eq!(
        body,
        b"accept: text/plain\naccept: text/html\nauthorization: Bearer x\n"
    );
}

//! RFC 9113 §4.3 (field section compression: a field block is one
//! contiguous unit, a decoding error is a connection COMPRESSION_ERROR, and
//! the decoding context survives streams that are refused or malformed)
//! and RFC 7541 (HPACK) against a real server: every representation is
//! accepted, dynamic table size updates are checked against our
//! SETTINGS_HEADER_TABLE_SIZE, and the server's encoder honours ours.
//! h2spec `http2/4.3`, `hpack/*`, `generic/5`. Field blocks here are
//! often written octet by octet, so the tests say exactly what is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::peer::*;
use mio_grpc::framer::hpack::HeaderField;
use mio_grpc::framer::Reason;

// ---- raw HPACK (RFC 7541 §5, §6) ----

/// An integer with an `n`-bit prefix, `flags` in the first octet's high bits.
fn int(n: u8, flags: u8, value: usize) -> Vec<u8> {
    let max = (1usize << n) - 1;
    if value < max {
        return vec![flags | value as u8];
    }
    let mut out = vec![flags | max as u8];
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
    out
}

/// A raw (not Huffman-coded) string literal.
fn string(s: &[u8]) -> Vec<u8> {
    let mut out = int(7, 0, s.len());
    out.extend_from_slice(s);
    out
}

const INCREMENTAL: u8 = 0x40;
const WITHOUT_INDEXING: u8 = 0x00;
const NEVER_INDEXED: u8 = 0x10;

/// A literal field with a new name: `kind` is one of the three above.
fn literal(kind: u8, name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend(string(name));
    out.extend(string(value));
    out
}

/// A GET of `path`, using only the static table and literals without
/// indexing, so the dynamic table is untouched.
fn raw_request(path: &str) -> Vec<u8> {
    let mut out = vec![0x82, 0x86]; // :method GET, :scheme http
    out.extend(int(4, WITHOUT_INDEXING, 4)); // :path, name index 4
    out.extend(string(path.as_bytes()));
    out.extend(int(4, WITHOUT_INDEXING, 1)); // :authority, name index 1
    out.extend(string(b"127.0.0.1"));
    out
}

/// Sends `block` as one HEADERS frame with END_STREAM on `stream`.
fn send_block(peer: &mut Peer, stream: u32, block: &[u8]) {
    peer.send(frames::headers(stream).fragment(block).eos());
}

/// The encoder's block for a GET of `path`, followed by `tail` verbatim.
fn encoded_request_then(peer: &mut Peer, path: &str, tail: &[u8]) -> Vec<u8> {
    let mut block = peer.encode_fields(&frames::request_fields("GET", path));
    block.extend_from_slice(tail);
    block
}

fn body_text(peer: &mut Peer, stream: u32) -> String {
    let (status, body) = peer.expect_response(stream);
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

// ---- RFC 9113 §4.3 ----

#[test]
fn sec4_3_invalid_field_block_is_compression_error() {
    let (_server, mut peer) = connected();
    // h2spec 4.3/1: a literal with incremental indexing and nothing after.
    // "A decoding error in a field block MUST be treated as a connection
    // error of type COMPRESSION_ERROR."
    send_block(&mut peer, 1, &[0x40]);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn sec4_3_priority_inside_field_block_is_protocol_error() {
    let (_server, mut peer) = connected();
    // "Field blocks MUST be transmitted as a contiguous sequence of frames,
    // with no interleaved frames of any other type or from any other
    // stream."
    peer.send(frames::headers(1).request("GET", "/").no_end_headers());
    peer.send(frames::priority(1, 0, 255, false));
    peer.send(frames::continuation(1).field("x-dummy", "1").end_headers());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec4_3_headers_of_another_stream_inside_field_block_is_protocol_error() {
    let (_server, mut peer) = connected();
    peer.send(frames::headers(1).request("GET", "/").no_end_headers());
    peer.send(frames::headers(3).request("GET", "/").eos());
    peer.send(frames::continuation(1).field("x-dummy", "1").end_headers());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec4_3_refused_stream_still_updates_the_decoding_context() {
    let (_server, mut peer) = connected_with(|c| c.max_concurrent_streams = 1);
    // Hold stream 1 open: no send window for its response body.
    peer.send(frames::settings().initial_window_size(0));
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    peer.expect_headers(1);
    // Stream 3 is refused, but its block adds `:path: /a` to the dynamic
    // table, which the block of stream 5 refers to by index.
    peer.send_get(3, "/a");
    peer.expect_rst_any(3, &[Reason::REFUSED_STREAM, Reason::PROTOCOL_ERROR]);
    peer.send(frames::window_update(1, 100));
    assert_eq!(peer.expect_data(1).payload, HELLO);
    peer.send_get(5, "/a");
    // 404: the server resolved `/a` from its dynamic table. (Only the
    // HEADERS: the stream window for the body is still 0.)
    assert_eq!(status(&peer.expect_headers(5)), 404);
}

#[test]
fn sec4_3_malformed_request_still_updates_the_decoding_context() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/b")
            .field("X-Upper", "1")
            .eos(),
    );
    peer.expect_rst(1, Reason::PROTOCOL_ERROR);
    peer.send_get(3, "/b");
    assert_eq!(peer.expect_response(3).0, 404);
}

#[test]
fn sec4_3_header_list_over_limit_is_refused_and_decoding_context_kept() {
    let (_server, mut peer) = connected();
    assert_eq!(peer.server_settings.max_header_list_size(), Some(64 << 10));
    // ~72 KiB of fields, past our advertised SETTINGS_MAX_HEADER_LIST_SIZE
    // (split into CONTINUATION frames by the encoder).
    let mut request = frames::headers(1).request("GET", "/").eos();
    for i in 0..70 {
        request = request.field(&format!("x-filler-{i}"), &"v".repeat(1_000));
    }
    peer.send(request);
    // §10.5.1: the server may refuse the stream (RST_STREAM) or answer 431;
    // either way the connection and its HPACK context must survive.
    match peer.expect_error(1) {
        ErrorSeen::Stream(_) => {}
        ErrorSeen::Connection(r) => panic!("connection error {r} for an oversized header list"),
    }
    peer.send_get(3, "/headers");
    assert_eq!(body_text(&mut peer, 3), "");
}

// ---- RFC 7541 ----

#[test]
fn hpack_sec2_3_3_indexed_field_beyond_both_tables_is_compression_error() {
    let (_server, mut peer) = connected();
    // h2spec hpack 2.3.3: index 126. "Indices strictly greater than the sum
    // of the lengths of both tables MUST be treated as a decoding error."
    let block = encoded_request_then(&mut peer, "/", &[0xfe]);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec2_3_3_literal_name_index_beyond_both_tables_is_compression_error() {
    let (_server, mut peer) = connected();
    let mut tail = int(6, INCREMENTAL, 127);
    tail.extend(string(b"value"));
    let block = encoded_request_then(&mut peer, "/", &tail);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec4_2_table_size_update_at_end_of_block_is_compression_error() {
    let (_server, mut peer) = connected();
    // "This dynamic table size update MUST occur at the beginning of the
    // first field block following the change".
    let block = encoded_request_then(&mut peer, "/", &[0x21]);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec4_2_table_size_update_after_a_field_is_compression_error() {
    let (_server, mut peer) = connected();
    let mut block = vec![0x82, 0x20];
    block.extend_from_slice(&raw_request("/")[1..]);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec4_4_evicted_entries_are_gone_and_the_rest_keep_their_indices() {
    let (_server, mut peer) = connected();
    // Three entries of 1,435 octets each in a 4,096-octet table: adding
    // the third evicts the first (§4.4).
    let mut block = raw_request("/headers");
    for (name, fill) in [(b"x-a", b'a'), (b"x-b", b'b'), (b"x-c", b'c')] {
        block.extend(literal(INCREMENTAL, name, &[fill; 1_400]));
    }
    send_block(&mut peer, 1, &block);
    body_text(&mut peer, 1);
    // Index 62 is the newest entry (x-c), 63 the one before (x-b).
    let mut block = raw_request("/headers");
    block.extend([0xbe, 0xbf]);
    send_block(&mut peer, 3, &block);
    let expected = format!("x-c: {}\nx-b: {}\n", "c".repeat(1_400), "b".repeat(1_400));
    assert_eq!(body_text(&mut peer, 3), expected);
    // Index 64 (x-a) was evicted: beyond the tables.
    let mut block = raw_request("/headers");
    block.push(0xc0);
    send_block(&mut peer, 5, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec5_1_integer_overflow_is_compression_error() {
    let (_server, mut peer) = connected();
    // An indexed field whose index needs more than 32 bits.
    let tail = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    let block = encoded_request_then(&mut peer, "/", &tail);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec5_2_string_longer_than_block_is_compression_error() {
    let (_server, mut peer) = connected();
    // A new-name literal claiming 143 octets of name, with 1 present.
    let block = encoded_request_then(&mut peer, "/", &[0x00, 0x7f, 0x10, b'a']);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec5_2_huffman_padding_longer_than_7_bits_is_compression_error() {
    let (_server, mut peer) = connected();
    // h2spec hpack 5.2/1: `x-test: test` with an extra octet of padding.
    // "A padding strictly longer than 7 bits MUST be treated as a decoding
    // error."
    let tail = b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff";
    let block = encoded_request_then(&mut peer, "/", tail);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec5_2_huffman_padding_not_eos_prefix_is_compression_error() {
    let (_server, mut peer) = connected();
    // h2spec hpack 5.2/2: padded with zeros. "A padding not corresponding
    // to the most significant bits of the code for the EOS symbol MUST be
    // treated as a decoding error."
    let tail = b"\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90";
    let block = encoded_request_then(&mut peer, "/", tail);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec5_2_huffman_eos_symbol_is_compression_error() {
    let (_server, mut peer) = connected();
    // h2spec hpack 5.2/3. "A Huffman-encoded string literal containing the
    // EOS symbol MUST be treated as a decoding error."
    let tail = b"\x00\x85\xf2\xb2\x4a\x87\xff\xff\xff\xfd\x25\x42\x7f";
    let block = encoded_request_then(&mut peer, "/", tail);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec6_1_index_zero_is_compression_error() {
    let (_server, mut peer) = connected();
    // "The index value of 0 is not used. It MUST be treated as a decoding
    // error if found in an indexed header field representation."
    let block = encoded_request_then(&mut peer, "/", &[0x80]);
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec6_3_table_size_update_over_limit_is_compression_error() {
    let (_server, mut peer) = connected();
    // 4,097 > our SETTINGS_HEADER_TABLE_SIZE (4,096): "A value that exceeds
    // this limit MUST be treated as a decoding error."
    let mut block = int(5, 0x20, 4_097);
    assert_eq!(block, [0x3f, 0xe2, 0x1f]);
    block.extend(raw_request("/"));
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_sec6_3_table_size_update_over_a_smaller_advertised_limit_is_compression_error() {
    let (_server, mut peer) = connected_with(|c| c.header_table_size = 1_024);
    assert_eq!(peer.server_settings.header_table_size(), Some(1_024));
    // Acknowledged in the handshake: 1,025 is now over the limit.
    let mut block = int(5, 0x20, 1_025);
    block.extend(raw_request("/"));
    send_block(&mut peer, 1, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

// ---- every representation is accepted (h2spec generic/5) ----

/// Sends a GET of `/headers` followed by `tail` and returns what the
/// server decoded of the regular fields.
fn decoded(tail: &[u8]) -> String {
    let (_server, mut peer) = connected();
    let mut block = raw_request("/headers");
    block.extend_from_slice(tail);
    send_block(&mut peer, 1, &block);
    body_text(&mut peer, 1)
}

#[test]
fn hpack_sec6_1_indexed_static_field_is_accepted() {
    // Index 58: `user-agent` with an empty value.
    assert_eq!(decoded(&[0xba]), "user-agent: \n");
}

#[test]
fn hpack_sec6_2_1_incremental_indexing_indexed_name_is_accepted() {
    let mut tail = int(6, INCREMENTAL, 58);
    tail.extend(string(b"h2spec"));
    assert_eq!(decoded(&tail), "user-agent: h2spec\n");
    // Huffman-coded name and value (h2spec's octets).
    assert_eq!(
        decoded(b"\x40\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4"),
        "user-agent: h2spec\n"
    );
}

#[test]
fn hpack_sec6_2_1_incremental_indexing_new_name_is_accepted() {
    assert_eq!(
        decoded(&literal(INCREMENTAL, b"x-test", b"h2spec")),
        "x-test: h2spec\n"
    );
    assert_eq!(
        decoded(b"\x40\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4"),
        "x-test: h2spec\n"
    );
}

#[test]
fn hpack_sec6_2_2_without_indexing_is_accepted() {
    let mut tail = int(4, WITHOUT_INDEXING, 58);
    tail.extend(string(b"h2spec"));
    assert_eq!(decoded(&tail), "user-agent: h2spec\n");
    assert_eq!(
        decoded(&literal(WITHOUT_INDEXING, b"x-test", b"h2spec")),
        "x-test: h2spec\n"
    );
    assert_eq!(
        decoded(b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4"),
        "x-test: h2spec\n"
    );
}

#[test]
fn hpack_sec6_2_3_never_indexed_is_accepted() {
    let mut tail = int(4, NEVER_INDEXED, 58);
    tail.extend(string(b"h2spec"));
    assert_eq!(decoded(&tail), "user-agent: h2spec\n");
    assert_eq!(
        decoded(&literal(NEVER_INDEXED, b"x-test", b"h2spec")),
        "x-test: h2spec\n"
    );
    assert_eq!(
        decoded(b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4"),
        "x-test: h2spec\n"
    );
}

#[test]
fn hpack_sec6_2_1_dynamic_table_entries_are_reused_across_blocks() {
    let (_server, mut peer) = connected();
    let mut block = raw_request("/headers");
    block.extend(literal(INCREMENTAL, b"x-test", b"h2spec"));
    send_block(&mut peer, 1, &block);
    assert_eq!(body_text(&mut peer, 1), "x-test: h2spec\n");
    let mut block = raw_request("/headers");
    block.push(0xbe); // index 62: the entry just added
    send_block(&mut peer, 3, &block);
    assert_eq!(body_text(&mut peer, 3), "x-test: h2spec\n");
}

#[test]
fn hpack_sec6_3_table_size_updates_at_block_start_are_accepted() {
    // One update to 0, and two (0 then 4,096) as §4.2 allows.
    let (_server, mut peer) = connected();
    let mut block = vec![0x20];
    block.extend(raw_request("/"));
    send_block(&mut peer, 1, &block);
    assert_eq!(peer.expect_response(1).0, 200);
    let mut block = vec![0x20, 0x3f, 0xe1, 0x1f];
    block.extend(raw_request("/"));
    send_block(&mut peer, 3, &block);
    assert_eq!(peer.expect_response(3).0, 200);
}

#[test]
fn hpack_sec6_3_table_size_update_evicts_entries() {
    let (_server, mut peer) = connected();
    let mut block = raw_request("/headers");
    block.extend(literal(INCREMENTAL, b"x-test", b"h2spec"));
    send_block(&mut peer, 1, &block);
    body_text(&mut peer, 1);
    // Size 0 empties the table, then back to 4,096: index 62 is gone.
    let mut block = vec![0x20, 0x3f, 0xe1, 0x1f];
    block.extend(raw_request("/headers"));
    block.push(0xbe);
    send_block(&mut peer, 3, &block);
    peer.expect_goaway(Reason::COMPRESSION_ERROR);
}

#[test]
fn hpack_encoder_and_decoder_stay_in_step_over_many_requests() {
    let (_server, mut peer) = connected();
    for i in 0..20u32 {
        let stream = 2 * i + 1;
        peer.send(
            frames::headers(stream)
                .request("GET", "/headers")
                .field("x-request", &format!("r{}", i % 3))
                .field("user-agent", "conformance")
                .eos(),
        );
        assert_eq!(
            body_text(&mut peer, stream),
            format!("x-request: r{}\nuser-agent: conformance\n", i % 3)
        );
    }
}

// ---- the server's encoder (RFC 7541 §4.2 from the other side) ----

#[test]
fn hpack_sec4_2_server_encoder_honours_a_zero_header_table_size() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    // Once the server acknowledges SETTINGS_HEADER_TABLE_SIZE = 0, the
    // peer's decoder (framer's) rejects any block that does not first
    // bring the table down to 0, or that indexes into it.
    peer.handshake_with(frames::settings().header_table_size(0));
    for stream in [1, 3, 5] {
        peer.send_get(stream, "/");
        assert_eq!(peer.expect_response(stream), (200, HELLO.to_vec()));
    }
}

#[test]
fn hpack_sec4_2_table_size_reduction_is_signalled_in_the_next_block() {
    let (_server, mut peer) = connected();
    peer.send_get(1, "/");
    assert_eq!(peer.expect_response(1).0, 200);
    peer.send(frames::settings().header_table_size(0));
    peer.wait_for_settings_ack();
    // The first response block after the ACK must start with an update to
    // 0 (the peer's decoder requires it).
    peer.send_get(3, "/");
    assert_eq!(peer.expect_response(3), (200, HELLO.to_vec()));
}

#[test]
fn hpack_sensitive_fields_reach_the_server() {
    let (_server, mut peer) = connected();
    peer.send(
        frames::headers(1)
            .request("GET", "/headers")
            .fields([HeaderField::new_sensitive("authorization", "secret")])
            .eos(),
    );
    assert_eq!(body_text(&mut peer, 1), "authorization: secret\n");
}

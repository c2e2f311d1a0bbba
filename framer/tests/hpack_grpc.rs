//! What the encoder's gRPC tuning buys: with a warm table a unary call's
//! request headers, response headers and trailers take a few octets each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::BytesMut;
use framer::hpack::{Decoder, Encoder, HeaderField};

fn request() -> Vec<HeaderField> {
    vec![
        HeaderField::new(":method", "POST"),
        HeaderField::new(":scheme", "http"),
        HeaderField::new(":path", "/helloworld.Greeter/SayHello"),
        HeaderField::new(":authority", "localhost:50051"),
        HeaderField::new("content-type", "application/grpc"),
        HeaderField::new("te", "trailers"),
        HeaderField::new("user-agent", "grpc-rust-mio/0.1"),
        HeaderField::new("grpc-accept-encoding", "identity,gzip"),
    ]
}

fn response() -> Vec<HeaderField> {
    vec![
        HeaderField::new(":status", "200"),
        HeaderField::new("content-type", "application/grpc"),
        HeaderField::new("grpc-accept-encoding", "identity,gzip"),
    ]
}

fn trailers() -> Vec<HeaderField> {
    vec![HeaderField::new("grpc-status", "0")]
}

/// Encodes `fields` three times; each block must decode to `fields`.
/// Returns the cold and warm sizes.
fn sizes(encoder: &mut Encoder, decoder: &mut Decoder, fields: &[HeaderField]) -> (usize, usize) {
    let mut lens = Vec::new();
    for _ in 0..3 {
        let mut block = BytesMut::new();
        encoder.encode(fields, &mut block);
        assert_eq!(decoder.decode(&block, 16 << 10).unwrap(), fields);
        lens.push(block.len());
    }
    assert_eq!(lens[1], lens[2], "steady state");
    (lens[0], lens[1])
}

#[test]
fn warm_request_headers_take_at_most_12_octets() {
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    let (cold, warm) = sizes(&mut encoder, &mut decoder, &request());
    eprintln!("request headers: {cold} octets cold, {warm} warm");
    // One octet per field: :method POST and :scheme http are static, the
    // rest were indexed by the first block.
    assert_eq!(warm, 8);
    assert!(cold <= 110, "{cold}");
}

#[test]
fn warm_response_headers_and_trailers() {
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    let (cold, warm) = sizes(&mut encoder, &mut decoder, &response());
    eprintln!("response headers: {cold} octets cold, {warm} warm");
    assert_eq!(warm, 3);
    let (cold, warm) = sizes(&mut encoder, &mut decoder, &trailers());
    eprintln!("trailers: {cold} octets cold, {warm} warm");
    assert_eq!(warm, 1);

    // With a message, grpc-message is never indexed (it changes), but the
    // status still is.
    let failed = [
        HeaderField::new("grpc-status", "5"),
        HeaderField::new("grpc-message", "not found"),
    ];
    let (cold, warm) = sizes(&mut encoder, &mut decoder, &failed);
    eprintln!("error trailers: {cold} octets cold, {warm} warm");
    assert!(warm < cold);
}

/// Many calls to different methods on one connection: each :path is
/// indexed in turn; older ones are evicted, and the block is still right.
#[test]
fn many_paths_cycle_through_the_table() {
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    for round in 0..3 {
        for method in 0..200 {
            let mut fields = request();
            fields[2] = HeaderField::new(":path", format!("/pkg.Service/Method{method}"));
            fields.push(HeaderField::new(
                "grpc-timeout",
                format!("{}m", 100 + round),
            ));
            let mut block = BytesMut::new();
            encoder.encode(&fields, &mut block);
            assert_eq!(decoder.decode(&block, 16 << 10).unwrap(), fields);
            assert!(encoder.dynamic_table_size() <= 4096);
        }
    }
}

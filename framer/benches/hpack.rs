//! HPACK encode and decode of one unary gRPC call's header blocks: request
//! headers, response headers, trailers. In ns per block
//! (`Throughput::Elements(1)`: criterion's "elem/s" is blocks per second).
//!
//! - `warm`: the steady state of a long-lived connection. The encoder has
//!   sent the block before, so every field is an indexed reference, except
//!   in `request_with_deadline` a `grpc-timeout` literal without indexing;
//!   such a block leaves both tables unchanged, so encoding or decoding it
//!   again and again is a valid measurement (checked before measuring).
//! - `cold`: the first block on a new connection, with a fresh encoder or
//!   decoder built per iteration (its construction included): literals,
//!   Huffman, table insertions.
//!
//! The octets on the wire for each block, cold and warm, are printed once.
//!
//! Run: `cargo bench -p framer --bench hpack -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use framer::hpack::{Decoder, Encoder, HeaderField, HeaderList};

const LIST_LIMIT: usize = 16 << 10;

fn request() -> HeaderList {
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

/// The request of a call with a deadline: `grpc-timeout` changes from call
/// to call, so it is a literal (Huffman-coded, not indexed) in every block.
fn request_with_deadline() -> HeaderList {
    let mut fields = request();
    fields.push(HeaderField::new("grpc-timeout", "99m"));
    fields
}

fn response() -> HeaderList {
    vec![
        HeaderField::new(":status", "200"),
        HeaderField::new("content-type", "application/grpc"),
        HeaderField::new("grpc-accept-encoding", "identity,gzip"),
    ]
}

fn trailers() -> HeaderList {
    vec![HeaderField::new("grpc-status", "0")]
}

/// One scenario's blocks as a connection's encoder writes them: the first
/// (cold) and the second (warm).
struct Blocks {
    name: &'static str,
    fields: HeaderList,
    cold: BytesMut,
    warm: BytesMut,
}

fn blocks(name: &'static str, fields: HeaderList) -> Blocks {
    let mut encoder = Encoder::new();
    let (mut cold, mut warm) = (BytesMut::new(), BytesMut::new());
    encoder.encode(&fields, &mut cold);
    encoder.encode(&fields, &mut warm);
    // Steady state: the warm block adds no entry (it has no literal with
    // incremental indexing), so the next block is the same and decoding it
    // leaves the decoder's table as it is.
    let table_size = encoder.dynamic_table_size();
    let mut next = BytesMut::new();
    encoder.encode(&fields, &mut next);
    assert_eq!(
        (next, encoder.dynamic_table_size()),
        (warm.clone(), table_size),
        "{name}: warm block not steady"
    );
    // Both decode right, and the warm one again and again.
    let mut decoder = Decoder::new(4096);
    assert_eq!(decoder.decode(&cold, LIST_LIMIT).ok(), Some(fields.clone()));
    for _ in 0..3 {
        assert_eq!(decoder.decode(&warm, LIST_LIMIT).ok(), Some(fields.clone()));
    }
    eprintln!(
        "hpack {name}: {} fields, {} octets cold, {} octets warm",
        fields.len(),
        cold.len(),
        warm.len()
    );
    Blocks {
        name,
        fields,
        cold,
        warm,
    }
}

fn scenarios() -> Vec<Blocks> {
    vec![
        blocks("request", request()),
        blocks("request_with_deadline", request_with_deadline()),
        blocks("response", response()),
        blocks("trailers", trailers()),
    ]
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("hpack_encode");
    group.throughput(Throughput::Elements(1));
    for blocks in scenarios() {
        let fields = &blocks.fields;
        let mut encoder = Encoder::new();
        let mut dst = BytesMut::with_capacity(256);
        encoder.encode(fields, &mut dst);
        group.bench_function(format!("{}/warm", blocks.name), |b| {
            b.iter(|| {
                dst.clear();
                encoder.encode(black_box(fields), &mut dst);
                black_box(dst.len())
            })
        });
        group.bench_function(format!("{}/cold", blocks.name), |b| {
            b.iter_batched_ref(
                || (Encoder::new(), BytesMut::with_capacity(256)),
                |(encoder, dst)| {
                    encoder.encode(black_box(fields), dst);
                    black_box(dst.len())
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("hpack_decode");
    group.throughput(Throughput::Elements(1));
    for blocks in scenarios() {
        let mut decoder = Decoder::new(4096);
        let _ = decoder.decode(&blocks.cold, LIST_LIMIT);
        let warm = &blocks.warm[..];
        group.bench_function(format!("{}/warm", blocks.name), |b| {
            b.iter(|| decoder.decode(black_box(warm), LIST_LIMIT))
        });
        let cold = &blocks.cold[..];
        group.bench_function(format!("{}/cold", blocks.name), |b| {
            b.iter_batched_ref(
                || Decoder::new(4096),
                |decoder| decoder.decode(black_box(cold), LIST_LIMIT),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);

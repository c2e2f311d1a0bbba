//! Criterion benches for the frame codec: decode and encode of a 16 KiB
//! DATA frame, a typical gRPC request HEADERS (warm HPACK tables), and the
//! small control frames (SETTINGS, PING, WINDOW_UPDATE). Each reports
//! frames/s and bytes/s (`Throughput::ElementsAndBytes`).
//!
//! Run: `cargo bench -p framer --bench frames`.
#![allow(missing_docs, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use framer::hpack::HeaderField;
use framer::{
    Data, Decoder, Encoder, Frame, HeaderBlock, Headers, Ping, SettingId, Settings, StreamId,
    WindowUpdate,
};
use std::hint::black_box;

/// Frames decoded per iteration, so one iteration is long enough to time.
const BATCH: usize = 64;

fn grpc_request_fields() -> Vec<HeaderField> {
    vec![
        HeaderField::new(":method", "POST"),
        HeaderField::new(":scheme", "http"),
        HeaderField::new(":path", "/helloworld.Greeter/SayHello"),
        HeaderField::new(":authority", "localhost:50051"),
        HeaderField::new("content-type", "application/grpc"),
        HeaderField::new("te", "trailers"),
        HeaderField::new("user-agent", "grpc-rust-mio/0.1"),
        HeaderField::new("grpc-accept-encoding", "identity,gzip"),
        HeaderField::new("grpc-timeout", "1S"),
    ]
}

struct Case {
    name: &'static str,
    frame: Frame,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "data_16k",
            frame: Data::new(StreamId::new(1), Bytes::from(vec![0u8; 16_384])).into(),
        },
        Case {
            name: "grpc_request_headers",
            frame: Headers::new(StreamId::new(1), HeaderBlock::Fields(grpc_request_fields()))
                .into(),
        },
        Case {
            name: "settings",
            frame: Settings::new()
                .with(SettingId::MAX_CONCURRENT_STREAMS, 100)
                .with(SettingId::INITIAL_WINDOW_SIZE, 1 << 20)
                .with(SettingId::MAX_FRAME_SIZE, 1 << 14)
                .with(SettingId::MAX_HEADER_LIST_SIZE, 1 << 16)
                .into(),
        },
        Case {
            name: "ping",
            frame: Ping::new(*b"01234567").into(),
        },
        Case {
            name: "window_update",
            frame: WindowUpdate::new(StreamId::new(1), 65_535).into(),
        },
    ]
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode");
    for case in cases() {
        // Encode once cold so the decoder below can be warmed with it; the
        // timed batch is the warm encoding repeated (indexed HPACK fields
        // do not change the table, so each copy decodes the same).
        let mut encoder = Encoder::new();
        let mut cold = BytesMut::new();
        encoder.encode(&case.frame, &mut cold);
        let mut warm = BytesMut::new();
        encoder.encode(&case.frame, &mut warm);
        let mut batch = BytesMut::new();
        for _ in 0..BATCH {
            batch.extend_from_slice(&warm);
        }
        let mut decoder = Decoder::default();
        decoder.decode(&mut cold).unwrap().unwrap();
        group.throughput(Throughput::ElementsAndBytes {
            elements: BATCH as u64,
            bytes: batch.len() as u64,
        });
        group.bench_function(case.name, |b| {
            b.iter_batched_ref(
                || batch.clone(),
                |buf| {
                    while let Some(frame) = decoder.decode(buf).unwrap() {
                        black_box(frame);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        eprintln!("{}: {} bytes on the wire (warm)", case.name, warm.len());
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_encode");
    for case in cases() {
        let mut encoder = Encoder::new();
        let mut wire = BytesMut::with_capacity(BATCH * 17_000);
        encoder.encode(&case.frame, &mut wire); // warm the HPACK table
        wire.clear();
        encoder.encode(&case.frame, &mut wire);
        group.throughput(Throughput::ElementsAndBytes {
            elements: BATCH as u64,
            bytes: (wire.len() * BATCH) as u64,
        });
        group.bench_function(case.name, |b| {
            b.iter(|| {
                wire.clear();
                for _ in 0..BATCH {
                    encoder.encode(black_box(&case.frame), &mut wire);
                }
                black_box(wire.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);

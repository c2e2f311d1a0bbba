//! Criterion benches for loopy: put + write cycles with 1, 100 and 10,000
//! active streams, small (16 B) and large (64 KiB) messages. One iteration
//! puts one DATA item on each of the N streams and writes until drained;
//! throughput is reported per message and in bytes. Payloads of 1 KiB and
//! more are referenced by the batch, not copied (as a vectored write would
//! send them), so the 64 KiB cases measure scheduling and framing.
//!
//! Run: `cargo bench -p loopy --bench writer`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use framer::{SettingId, Settings, StreamId};
use loopy::{Batch, ControlBuffer, Item, NoWake, Role, StreamKey, Writer};
use std::hint::black_box;

struct Setup {
    buffer: Arc<ControlBuffer>,
    writer: Writer,
    keys: Vec<StreamKey>,
    batch: Batch,
}

fn setup(streams: u32) -> Setup {
    let buffer = Arc::new(ControlBuffer::new(Arc::new(NoWake)));
    let mut writer = Writer::new(Role::Server, buffer.clone());
    // Windows large enough never to stall: the bench measures scheduling
    // and framing, not flow control.
    writer
        .apply_peer_settings(
            &Settings::new()
                .with(SettingId::INITIAL_WINDOW_SIZE, 0x7fff_ffff)
                .with(SettingId::MAX_FRAME_SIZE, 1 << 16),
        )
        .unwrap();
    let keys: Vec<StreamKey> = (0..streams)
        .map(|i| {
            let id = StreamId::new(1 + 2 * i);
            let key = StreamKey::from(id);
            writer.register_stream(key, id, None);
            key
        })
        .collect();
    let mut batch = Batch::new();
    writer.write(&mut batch, usize::MAX);
    Setup {
        buffer,
        writer,
        keys,
        batch,
    }
}

fn cycle(s: &mut Setup, payload: &Bytes) -> usize {
    // Top the connection window up so it never binds.
    let top_up = (1i64 << 30) - s.writer.connection_window();
    if top_up > 0 {
        s.writer
            .apply_connection_window_update(top_up as u32)
            .unwrap();
    }
    for key in &s.keys {
        s.buffer
            .put(Item::Data {
                key: *key,
                data: payload.clone(),
                end_stream: false,
            })
            .unwrap();
    }
    let mut bytes = 0;
    loop {
        let written = s.writer.write(&mut s.batch, 256 * 1024);
        bytes += s.batch.len();
        s.batch.clear();
        if written.drained {
            break;
        }
    }
    // Keep the stream windows from running out.
    for key in &s.keys {
        s.writer
            .apply_stream_window_update(*key, payload.len().max(1) as u32);
    }
    bytes
}

fn put_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("loopy_put_write");
    group.sample_size(20);
    for &streams in &[1u32, 100, 10_000] {
        for &size in &[16usize, 64 * 1024] {
            let payload = Bytes::from(vec![0u8; size]);
            let mut s = setup(streams);
            group.throughput(Throughput::ElementsAndBytes {
                elements: u64::from(streams),
                bytes: u64::from(streams) * size as u64,
            });
            group.bench_with_input(
                BenchmarkId::new(format!("{size}B"), streams),
                &payload,
                |b, payload| b.iter(|| black_box(cycle(&mut s, payload))),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, put_write);
criterion_main!(benches);

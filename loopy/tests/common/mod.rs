//! Shared test code for loopy: a harness that drives a writer by hand and
//! parses its batches back into frames, and the model-based op checker
//! shared with the `loopy_ops` fuzz target.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

pub mod ops;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use framer::hpack::{HeaderField, HeaderList};
use framer::{Decoder, DecoderConfig, Frame, SettingId, Settings, StreamId};
use loopy::{Batch, ControlBuffer, Event, Item, Role, StreamKey, Wake, Writer};

/// Counts wake-ups.
#[derive(Default)]
pub struct CountingWake(pub AtomicUsize);

impl Wake for CountingWake {
    fn wake(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct Harness {
    pub buffer: Arc<ControlBuffer>,
    pub writer: Writer,
    pub wake: Arc<CountingWake>,
    decoder: Decoder,
    pub events: Vec<Event>,
}

impl Harness {
    pub fn new(role: Role) -> Harness {
        Harness::with_limit(role, loopy::DEFAULT_MAX_TRANSPORT_RESPONSES)
    }

    pub fn with_limit(role: Role, flood_limit: usize) -> Harness {
        let wake = Arc::new(CountingWake::default());
        let buffer = Arc::new(ControlBuffer::new(wake.clone()));
        let writer = Writer::new(role, buffer.clone()).with_response_limit(flood_limit);
        let decoder = Decoder::new(DecoderConfig {
            max_frame_size: framer::MAX_MAX_FRAME_SIZE,
            max_header_list_size: u32::MAX,
            ..DecoderConfig::default()
        });
        Harness {
            buffer,
            writer,
            wake,
            decoder,
            events: Vec::new(),
        }
    }

    pub fn put(&self, item: Item) {
        self.buffer.put(item).unwrap();
    }

    /// One write with `budget`; returns the frames it produced.
    pub fn write(&mut self, budget: usize) -> Vec<Frame> {
        let mut batch = Batch::new();
        self.writer.write(&mut batch, budget);
        self.events.extend(self.writer.events());
        self.parse(batch)
    }

    /// Writes until drained.
    pub fn write_all(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            let mut batch = Batch::new();
            let written = self.writer.write(&mut batch, 64 * 1024);
            self.events.extend(self.writer.events());
            frames.extend(self.parse(batch));
            if written.drained {
                return frames;
            }
        }
    }

    fn parse(&mut self, batch: Batch) -> Vec<Frame> {
        let mut wire = batch.to_bytes();
        let mut frames = Vec::new();
        while let Some(frame) = self.decoder.decode(&mut wire).unwrap() {
            frames.push(frame);
        }
        assert!(wire.is_empty(), "a partial frame in a batch");
        frames
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Server: registers stream `id` (its key is `StreamKey::from(id)`).
    pub fn register(&mut self, id: u32) -> StreamKey {
        let key = StreamKey(u64::from(id));
        self.writer.register_stream(key, StreamId::new(id), None);
        key
    }

    pub fn data(&self, key: StreamKey, len: usize, end_stream: bool) {
        self.put(Item::Data {
            key,
            data: Bytes::from(pattern(key, len)),
            end_stream,
        });
    }

    /// Applies the peer's SETTINGS (which must not overflow a window).
    pub fn peer_settings(&mut self, settings: Settings) {
        self.writer.apply_peer_settings(&settings).unwrap();
    }

    /// Applies the peer's WINDOW_UPDATE on the connection (`id` 0) or on
    /// the server stream `id` (key `StreamKey::from(id)`).
    pub fn peer_window(&mut self, id: u32, increment: u32) {
        if id == 0 {
            self.writer
                .apply_connection_window_update(increment)
                .unwrap();
        } else {
            self.writer
                .apply_stream_window_update(StreamKey(u64::from(id)), increment);
        }
    }
}

pub fn fields(path: &str) -> HeaderList {
    vec![
        HeaderField::new(":method", "POST"),
        HeaderField::new(":path", path.to_string()),
        HeaderField::new("content-type", "application/grpc"),
    ]
}

pub fn trailers() -> HeaderList {
    vec![HeaderField::new("grpc-status", "0")]
}

/// Recognisable bytes for a stream: byte i is (key + i) mod 251.
pub fn pattern(key: StreamKey, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((key.0 as usize + i) % 251) as u8)
        .collect()
}

pub fn settings(id: SettingId, value: u32) -> Settings {
    Settings::new().with(id, value)
}

/// DATA bytes per stream id, in order.
pub fn data_by_stream(frames: &[Frame]) -> std::collections::BTreeMap<u32, BytesMut> {
    let mut out = std::collections::BTreeMap::<u32, BytesMut>::new();
    for frame in frames {
        if let Frame::Data(d) = frame {
            out.entry(d.stream_id.value())
                .or_default()
                .extend_from_slice(&d.payload);
        }
    }
    out
}

/// (kind, stream) of each frame, for order checks.
pub fn shape(frames: &[Frame]) -> Vec<(&'static str, u32)> {
    frames
        .iter()
        .map(|f| {
            let name = match f {
                Frame::Data(_) => "DATA",
                Frame::Headers(_) => "HEADERS",
                Frame::RstStream(_) => "RST",
                Frame::Settings(_) => "SETTINGS",
                Frame::Ping(_) => "PING",
                Frame::GoAway(_) => "GOAWAY",
                Frame::WindowUpdate(_) => "WINDOW_UPDATE",
                _ => "OTHER",
            };
            (name, f.stream_id().value())
        })
        .collect()
}

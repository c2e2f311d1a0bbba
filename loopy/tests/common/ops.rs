//! A model-based check of the writer, shared by the `loopy_ops` fuzz target
//! and the property test: arbitrary sequences of operations (open, put
//! data, trailers, window updates, settings changes, reset, cleanup,
//! GOAWAY, write with random budgets) against a client writer, with a
//! model of what the peer allows. It checks that:
//!
//! - no DATA frame exceeds the peer's connection or stream window, or its
//!   MAX_FRAME_SIZE;
//! - no stream is opened while the peer's MAX_CONCURRENT_STREAMS streams
//!   are open, and stream ids only grow;
//! - each stream's DATA is a prefix of what was put, in order, and — once
//!   every window is opened wide at the end — exactly what was put, unless
//!   the stream was reported dropped.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use bytes::Bytes;
use framer::{Frame, SettingId, Settings, StreamId};
use loopy::{Batch, ConnectionError, Event, Item, Role, StreamKey};

use super::Harness;

const MAX_WINDOW: i64 = 0x7fff_ffff;
/// Ops run at most (the rest of an input is ignored).
const MAX_OPS: usize = 500;
/// The stream limit `Model::finish` gives the model and the writer alike:
/// above `MAX_OPS`, so every stream put can open.
const FINISH_MAX_CONCURRENT: u32 = 1000;

/// One operation.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Open {
        end_stream: bool,
    },
    Data {
        stream: u8,
        len: u16,
        end_stream: bool,
    },
    Trailers {
        stream: u8,
    },
    WindowUpdate {
        stream: u8,
        connection: bool,
        increment: u32,
    },
    InitialWindow(u32),
    MaxConcurrent(u8),
    MaxFrameSize(u32),
    Reset {
        stream: u8,
    },
    Cleanup {
        stream: u8,
    },
    GoAway {
        last: u8,
    },
    Write {
        budget: u16,
    },
}

#[derive(Default, Debug)]
struct StreamModel {
    put: Vec<u8>,
    written: Vec<u8>,
    ended: bool,
    id: Option<u32>,
    gone: bool,
}

struct Model {
    h: Harness,
    keys: Vec<StreamKey>,
    streams: BTreeMap<StreamKey, StreamModel>,
    by_id: BTreeMap<u32, StreamKey>,
    /// What the peer's view of each window is.
    conn_window: i64,
    stream_windows: BTreeMap<u32, i64>,
    initial_window: i64,
    max_concurrent: u32,
    max_frame: u32,
    /// Ids the peer considers open (HEADERS seen, not reset or cleaned).
    open: BTreeSet<u32>,
    last_id: u32,
    dropped: BTreeSet<StreamKey>,
    failed: bool,
}

impl Model {
    fn key(&self, index: u8) -> Option<StreamKey> {
        if self.keys.is_empty() {
            return None;
        }
        self.keys.get(usize::from(index) % self.keys.len()).copied()
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Open { end_stream } => {
                let key = self.h.buffer.new_stream_key();
                self.keys.push(key);
                self.streams.insert(
                    key,
                    StreamModel {
                        ended: end_stream,
                        ..Default::default()
                    },
                );
                self.h.put(Item::Open {
                    key,
                    fields: super::fields("/m/M"),
                    end_stream,
                    quota: None,
                });
            }
            Op::Data {
                stream,
                len,
                end_stream,
            } => {
                let Some(key) = self.key(stream) else { return };
                let model = self.streams.get_mut(&key).unwrap();
                let data =
                    super::pattern(StreamKey(key.0 + model.put.len() as u64), usize::from(len));
                if !model.ended && !model.gone {
                    model.put.extend_from_slice(&data);
                    model.ended = end_stream;
                }
                self.h.put(Item::Data {
                    key,
                    data: Bytes::from(data),
                    end_stream,
                });
            }
            Op::Trailers { stream } => {
                let Some(key) = self.key(stream) else { return };
                let model = self.streams.get_mut(&key).unwrap();
                if !model.gone {
                    model.ended = true;
                }
                self.h.put(Item::Headers {
                    key,
                    fields: super::trailers(),
                    end_stream: true,
                });
            }
            Op::WindowUpdate {
                stream,
                connection,
                increment,
            } => {
                // Small enough that windows bind often.
                let increment = increment % (1 << 17) + 1;
                if connection {
                    self.conn_window += i64::from(increment);
                    let result = self.h.writer.apply_connection_window_update(increment);
                    self.check(result);
                } else if let Some(key) = self.key(stream) {
                    if let Some(id) = self.streams[&key].id {
                        if let Some(w) = self.stream_windows.get_mut(&id) {
                            *w += i64::from(increment);
                        }
                        self.h.writer.apply_stream_window_update(key, increment);
                    }
                }
            }
            Op::InitialWindow(value) => {
                let value = i64::from(value % (1 << 17));
                let delta = value - self.initial_window;
                self.initial_window = value;
                for w in self.stream_windows.values_mut() {
                    *w += delta;
                }
                self.peer_settings(
                    Settings::new().with(SettingId::INITIAL_WINDOW_SIZE, value as u32),
                );
            }
            Op::MaxConcurrent(n) => {
                self.max_concurrent = u32::from(n % 8);
                self.peer_settings(
                    Settings::new().with(SettingId::MAX_CONCURRENT_STREAMS, self.max_concurrent),
                );
            }
            Op::MaxFrameSize(size) => {
                let size = 16_384 + size % (1 << 16);
                self.max_frame = size;
                self.peer_settings(Settings::new().with(SettingId::MAX_FRAME_SIZE, size));
            }
            Op::Reset { stream } => {
                let Some(key) = self.key(stream) else { return };
                self.close(key);
                self.h.put(Item::Reset {
                    key,
                    reason: framer::Reason::CANCEL,
                });
            }
            Op::Cleanup { stream } => {
                let Some(key) = self.key(stream) else { return };
                self.close(key);
                self.h.writer.cleanup(key);
            }
            Op::GoAway { last } => {
                let last = u32::from(last);
                for (id, key) in &self.by_id {
                    if *id > last {
                        self.streams.get_mut(key).unwrap().gone = true;
                        self.open.remove(id);
                    }
                }
                for model in self.streams.values_mut() {
                    if model.id.is_none() {
                        model.gone = true;
                    }
                }
                self.h.writer.apply_peer_goaway(StreamId::new(last));
            }
            Op::Write { budget } => self.write(usize::from(budget)),
        }
    }

    /// The peer's SETTINGS, applied at once (as the connection does).
    fn peer_settings(&mut self, settings: Settings) {
        let result = self.h.writer.apply_peer_settings(&settings);
        self.check(result);
    }

    /// A connection error (a window overflowed): the connection ends;
    /// nothing further to check.
    fn check(&mut self, result: Result<(), ConnectionError>) {
        if result.is_err() {
            self.failed = true;
        }
    }

    fn close(&mut self, key: StreamKey) {
        let model = self.streams.get_mut(&key).unwrap();
        model.gone = true;
        if let Some(id) = model.id {
            self.open.remove(&id);
        }
    }

    fn write(&mut self, budget: usize) {
        if self.failed {
            return;
        }
        let mut batch = Batch::new();
        self.h.writer.write(&mut batch, budget);
        for event in self.h.writer.events() {
            // A refused item (`Invalid`) is one the model did not count.
            if let Event::Dropped { key, cause, .. } = event {
                if cause != loopy::DropCause::Invalid {
                    self.dropped.insert(key);
                }
            }
            if let Event::Opened { key, id } = event {
                self.by_id.insert(id.value(), key);
                self.streams.get_mut(&key).unwrap().id = Some(id.value());
            }
        }
        // Raw frames: HEADERS are checked for their stream id only.
        let mut wire = batch.to_bytes();
        while let Some(frame) = framer::decode_frame(&mut wire, framer::MAX_MAX_FRAME_SIZE).unwrap()
        {
            self.check_frame(frame);
        }
        assert!(wire.is_empty());
    }

    fn check_frame(&mut self, frame: Frame) {
        match frame {
            Frame::Headers(h) => {
                let id = h.stream_id.value();
                if !self.stream_windows.contains_key(&id) {
                    assert!(
                        (self.open.len() as u32) < self.max_concurrent,
                        "opened stream {id} with {} open and a limit of {}",
                        self.open.len(),
                        self.max_concurrent
                    );
                    assert!(id > self.last_id, "stream ids must grow");
                    self.last_id = id;
                    self.open.insert(id);
                    self.stream_windows.insert(id, self.initial_window);
                }
            }
            Frame::Data(d) => {
                let id = d.stream_id.value();
                let len = d.payload.len();
                assert!(
                    len as u32 <= self.max_frame,
                    "DATA of {len} over MAX_FRAME_SIZE {}",
                    self.max_frame
                );
                let window = self
                    .stream_windows
                    .get_mut(&id)
                    .expect("DATA on a stream never opened");
                if len > 0 {
                    assert!(
                        *window >= len as i64,
                        "DATA of {len} over stream window {window}"
                    );
                    assert!(
                        self.conn_window >= len as i64,
                        "DATA of {len} over connection window {}",
                        self.conn_window
                    );
                }
                *window -= len as i64;
                self.conn_window -= len as i64;
                let key = self.by_id[&id];
                let model = self.streams.get_mut(&key).unwrap();
                model.written.extend_from_slice(&d.payload);
                assert!(
                    model.put.starts_with(&model.written),
                    "stream {id}: DATA out of order or duplicated"
                );
            }
            Frame::RstStream(r) => {
                self.open.remove(&r.stream_id.value());
            }
            _ => {}
        }
    }

    /// Opens every window wide, lifts the stream limit, and writes until
    /// drained; then every stream not dropped must have sent all it was given.
    fn finish(mut self) {
        if self.failed {
            return;
        }
        let big = (MAX_WINDOW / 4) as u32;
        if self.conn_window + i64::from(big) <= MAX_WINDOW {
            self.apply(Op::WindowUpdate {
                stream: 0,
                connection: true,
                increment: big - 1,
            });
        }
        self.max_concurrent = FINISH_MAX_CONCURRENT;
        self.peer_settings(
            Settings::new().with(SettingId::MAX_CONCURRENT_STREAMS, FINISH_MAX_CONCURRENT),
        );
        for _ in 0..1000 {
            if self.failed {
                return;
            }
            // Grow stream windows as streams open.
            let ids: Vec<(u32, i64)> = self.stream_windows.iter().map(|(k, v)| (*k, *v)).collect();
            for (id, w) in ids {
                if w < (1 << 24) {
                    let inc = (1 << 24) as u32;
                    *self.stream_windows.get_mut(&id).unwrap() += i64::from(inc);
                    let key = self.by_id[&id];
                    self.h.writer.apply_stream_window_update(key, inc);
                }
            }
            if self.conn_window < (1 << 24) {
                self.conn_window += 1 << 24;
                let result = self.h.writer.apply_connection_window_update(1 << 24);
                self.check(result);
            }
            let before = self.h.writer.stats().bytes;
            self.write(1 << 20);
            if self.failed || self.h.writer.stats().bytes == before {
                break;
            }
        }
        if self.failed {
            return;
        }
        for (key, model) in &self.streams {
            if !self.dropped.contains(key) && !model.gone {
                assert_eq!(
                    model.written.len(),
                    model.put.len(),
                    "stream {key:?} lost bytes: {model:?}"
                );
            }
        }
    }
}

/// Runs `ops` against a client writer and checks the invariants above.
pub fn run(ops: Vec<Op>) {
    let mut model = Model {
        h: Harness::new(Role::Client),
        keys: Vec::new(),
        streams: BTreeMap::new(),
        by_id: BTreeMap::new(),
        conn_window: 65_535,
        stream_windows: BTreeMap::new(),
        initial_window: 65_535,
        max_concurrent: u32::MAX,
        max_frame: 16_384,
        open: BTreeSet::new(),
        last_id: 0,
        dropped: BTreeSet::new(),
        failed: false,
    };
    for op in ops.into_iter().take(MAX_OPS) {
        model.apply(op);
        if model.failed {
            return;
        }
    }
    model.write(1 << 20);
    model.finish();
}

/// The fuzz entry point: bytes → ops → `run`.
pub fn run_bytes(data: &[u8]) {
    run(ops_from_bytes(data));
}

/// Decodes ops until the input is used up. (`Vec::<Op>::arbitrary` reads
/// a continue-bit per element, so random bytes would give about one op.)
pub fn ops_from_bytes(data: &[u8]) -> Vec<Op> {
    let mut u = arbitrary::Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

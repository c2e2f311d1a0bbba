//! The `server_conn` fuzz check: arbitrary bytes into a server
//! `conn::Connection`, the way nghttp2's `fuzz/fuzz_target.cc` feeds a
//! server session. Shared by `fuzz/fuzz_targets/server_conn.rs` and
//! `tests/fuzz_corpus_replay.rs` (which replays the corpus), so it uses
//! nothing but `mio_grpc` (and its `framer`/`loopy` re-exports) and `bytes`.
//!
//! Input layout: byte 0 is the mode (bit 0: prepend a valid preface and an
//! empty SETTINGS; bit 1: the application answers every request and
//! releases every DATA; bit 2: small abuse limits), bytes 1..4 seed the
//! chunk sizes and the clock steps, the rest is what the peer sends.
//!
//! Checked: no panic, no infinite loop (`poll_transmit` drains within a
//! bounded number of calls), every call's output bounded by the budget plus
//! one frame, total output and events bounded by the input, stream records
//! never above our MAX_CONCURRENT_STREAMS, and a finished connection stays
//! finished (no reads wanted, no timers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio_grpc::conn::{ConnConfig, ConnEvent, Connection, RateLimit};
use mio_grpc::framer::hpack::HeaderField;
use mio_grpc::framer::{self, Encoder, Frame, Settings};
use mio_grpc::loopy::{Batch, Item, NoWake, Role, StreamKey};

/// Bytes asked of one `poll_transmit`.
const BUDGET: usize = 4096;
/// Our MAX_CONCURRENT_STREAMS: small, so the limit is exercised.
const MAX_STREAMS: u32 = 4;
/// `poll_transmit` calls allowed before we call it a livelock.
const MAX_POLLS: usize = 10_000;
/// The largest frame our own output can contain: the application's
/// frames are small, so DATA never exceeds this, nor do HEADERS.
const MAX_FRAME: usize = framer::HEAD_LEN + 16 * 1024;

/// Runs one input through a server connection; panics on a broken
/// invariant.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (seeds, input) = rest.split_at(rest.len().min(3));
    let seeds: Vec<u8> = if seeds.is_empty() {
        vec![0]
    } else {
        seeds.to_vec()
    };
    let mut harness = Harness::new(mode);
    let mut input = input.to_vec();
    if mode & 1 == 1 {
        let mut prefix = BytesMut::new();
        prefix.extend_from_slice(framer::PREFACE);
        Encoder::new().encode(&Frame::Settings(Settings::new()), &mut prefix);
        input.splice(0..0, prefix.iter().copied());
    }
    let mut offset = 0;
    let mut turn = 0;
    while offset < input.len() {
        let seed = seeds.get(turn % seeds.len()).copied().unwrap_or(0);
        let size = (usize::from(seed) * 3 + 1).min(input.len() - offset);
        harness.feed(&input[offset..offset + size]);
        harness.tick(Duration::from_millis(u64::from(seed) * 200));
        offset += size;
        turn += 1;
    }
    // Let every timer run out, then the transport closes.
    for _ in 0..8 {
        harness.tick(Duration::from_secs(60));
    }
    harness.close();
    harness.check_totals(input.len());
}

struct Harness {
    conn: Connection,
    now: Instant,
    inbox: BytesMut,
    answer: bool,
    bytes_out: usize,
    events: usize,
}

impl Harness {
    fn new(mode: u8) -> Harness {
        let mut config = ConnConfig {
            max_concurrent_streams: MAX_STREAMS,
            ..ConnConfig::default()
        };
        if mode & 4 == 4 {
            let small = RateLimit {
                max: 3,
                window: Duration::from_secs(10),
            };
            config.limits.peer_resets = small;
            config.limits.empty_frames = small;
            config.limits.settings = small;
            config.limits.pings = small;
            config.limits.max_buffered_bytes = 1024;
            config.max_transport_responses = 4;
        }
        let now = Instant::now();
        Harness {
            conn: Connection::new(Role::Server, config, Arc::new(NoWake), now, 1),
            now,
            inbox: BytesMut::new(),
            answer: mode & 2 == 2,
            bytes_out: 0,
            events: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.inbox.extend_from_slice(chunk);
        self.read();
    }

    fn read(&mut self) {
        if self.conn.is_finished() {
            self.inbox.clear();
            return;
        }
        // Reading may stop on backpressure; writing (and releasing)
        // reopens it, so alternate until neither makes progress.
        for _ in 0..MAX_POLLS {
            let before = self.inbox.len();
            if self.conn.wants_read() && !self.inbox.is_empty() {
                self.conn.handle_read(&mut self.inbox, self.now);
            }
            self.service();
            if self.inbox.len() == before || self.conn.is_finished() {
                return;
            }
        }
        panic!("reading never settled");
    }

    fn tick(&mut self, step: Duration) {
        self.now += step;
        if self.conn.next_timeout().is_some_and(|at| at <= self.now) {
            self.conn.handle_timeout(self.now);
        }
        self.service();
        self.read();
    }

    /// Events, then output until drained.
    fn service(&mut self) {
        self.drain_events();
        for _ in 0..MAX_POLLS {
            let mut batch = Batch::new();
            let written = self.conn.poll_transmit(&mut batch, BUDGET, self.now);
            assert_eq!(written.bytes, batch.len());
            assert!(
                written.bytes <= BUDGET + MAX_FRAME + 128,
                "one poll_transmit wrote {} bytes",
                written.bytes
            );
            self.bytes_out += written.bytes;
            let new_events = self.drain_events();
            if written.drained && new_events == 0 {
                self.check_state();
                return;
            }
        }
        panic!("poll_transmit never drained");
    }

    fn drain_events(&mut self) -> usize {
        let mut n = 0;
        while let Some(event) = self.conn.poll_event() {
            n += 1;
            self.on_event(event);
        }
        self.events += n;
        n
    }

    fn on_event(&mut self, event: ConnEvent) {
        if let ConnEvent::ConnectionClosed { .. } = event {
            assert!(self.conn.is_finished());
        }
        if !self.answer {
            return;
        }
        match event {
            ConnEvent::Request { id, .. } => {
                let key = StreamKey::from(id);
                let buffer = self.conn.buffer();
                let _ = buffer.put(Item::Headers {
                    key,
                    fields: vec![HeaderField::new(":status", "200")],
                    end_stream: false,
                });
                let _ = buffer.put(Item::Data {
                    key,
                    data: Bytes::from_static(&[0x5a; 700]),
                    end_stream: false,
                });
                let _ = buffer.put(Item::Headers {
                    key,
                    fields: vec![HeaderField::new("grpc-status", "0")],
                    end_stream: true,
                });
            }
            ConnEvent::Data { key, data, .. } => self.conn.release_capacity(key, data.len()),
            _ => {}
        }
    }

    fn check_state(&self) {
        assert!(
            self.conn.active_streams() <= MAX_STREAMS as usize,
            "{} stream records, limit {MAX_STREAMS}",
            self.conn.active_streams()
        );
        if self.conn.is_finished() {
            assert!(!self.conn.wants_read());
            assert_eq!(self.conn.next_timeout(), None);
        }
    }

    fn close(&mut self) {
        self.conn.handle_transport_closed("fuzz input ended".into());
        let _ = self.conn.abandon(self.now);
        self.drain_events();
        assert!(self.conn.is_finished());
        assert!(!self.conn.wants_read());
        self.check_state();
    }

    /// Output and events are at most linear in the input.
    fn check_totals(&self, input_len: usize) {
        assert!(
            self.bytes_out <= 16 * 1024 + 200 * input_len,
            "{} bytes out for {input_len} in",
            self.bytes_out
        );
        assert!(
            self.events <= 64 + 2 * input_len,
            "{} events for {input_len} bytes in",
            self.events
        );
    }
}

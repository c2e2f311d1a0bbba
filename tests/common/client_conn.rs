//! The `client_conn` fuzz check: a server's arbitrary bytes into a client
//! `conn::Connection` that has streams open the way the client layer opens
//! them (an `Item::Open` with gRPC request headers, then a framed message).
//! Shared by `fuzz/fuzz_targets/client_conn.rs` and
//! `tests/fuzz_corpus_replay.rs` (which replays the corpus), so it uses
//! nothing but `mio_grpc` (and its `framer`/`loopy` re-exports) and `bytes`.
//!
//! Input layout: byte 0 is the mode, bytes 1..4 seed the chunk sizes and
//! clock steps, byte 4 picks the server's first SETTINGS, the rest is what
//! the server sends.
//!
//! Mode bits: 0, prepend the server's SETTINGS (picked by byte 4); 1, the
//! application releases every DATA (else it never does, with fixed
//! windows); 2, small abuse limits; 3, BDP on (with bit 1); 4, prepend an
//! ACK of our SETTINGS; 5–6, streams opened at the start (0–3); 7, unary
//! requests (END_STREAM after the message) rather than open-ended streams.
//! SETTINGS byte bits: 0–1, MAX_CONCURRENT_STREAMS absent/0/1/2; 2–3,
//! INITIAL_WINDOW_SIZE absent/0/100/1 MiB; 4, MAX_FRAME_SIZE 1 MiB;
//! 5, HEADER_TABLE_SIZE 0; 6, MAX_HEADER_LIST_SIZE 100; 7, the client shuts
//! down gracefully once the input is used up.
//!
//! Halfway through the input the application opens one more stream and
//! cancels its first one, as a call's cancellation does.
//!
//! Checked: no panic, no livelock (`poll_transmit` drains within a bounded
//! number of calls), each call's output bounded by the budget plus one
//! frame, total output and events linear in the input; stream ids odd and
//! growing; events only for streams we opened, none after a stream's end
//! (Reset, Dropped, Closed) but a `Dropped` of cause `Invalid` (an item
//! that came after the end), and no response parts after the connection
//! closed; DATA and trailers only after a final (non-1xx) response, nothing
//! after the peer's END_STREAM, a declared content-length matched; without
//! releases, no stream is handed more than its window nor the live streams
//! more than the connection window; a finished connection stays finished.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio_grpc::conn::{ConnConfig, ConnEvent, Connection, RateLimit};
use mio_grpc::framer::hpack::HeaderField;
use mio_grpc::framer::{self, Encoder, Frame, Reason, SettingId, Settings, StreamId};
use mio_grpc::grpc::{self, MessageDecoder, Metadata, Status};
use mio_grpc::loopy::{self, Batch, DropCause, InboundConfig, Item, NoWake, Role, StreamKey};

/// Bytes asked of one `poll_transmit`.
const BUDGET: usize = 4096;
/// `poll_transmit` calls allowed before we call it a livelock.
const MAX_POLLS: usize = 10_000;
/// The largest frame our output can contain: our messages are small, so
/// DATA never exceeds this (whatever MAX_FRAME_SIZE the server allows),
/// nor do HEADERS.
const MAX_FRAME: usize = framer::HEAD_LEN + 16 * 1024;
/// Our receive windows when the application never releases DATA.
const WINDOW: u32 = loopy::DEFAULT_WINDOW_SIZE;
/// One request message's payload.
const MESSAGE: &[u8] = &[0x5a; 700];

/// Runs one input through a client connection; panics on a broken
/// invariant.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (head, input) = rest.split_at(rest.len().min(4));
    let seeds: Vec<u8> = match head.get(..3) {
        Some(seeds) => seeds.to_vec(),
        None if head.is_empty() => vec![0],
        None => head.to_vec(),
    };
    let settings_choice = head.get(3).copied().unwrap_or(0);
    let mut harness = Harness::new(mode);
    let mut input = input.to_vec();
    let mut prefix = BytesMut::new();
    if mode & 1 == 1 {
        Encoder::new().encode(
            &Frame::Settings(server_settings(settings_choice)),
            &mut prefix,
        );
    }
    if mode & 0x10 == 0x10 {
        Encoder::new().encode(&Frame::Settings(Settings::ack()), &mut prefix);
    }
    input.splice(0..0, prefix.iter().copied());

    for _ in 0..(mode >> 5) & 3 {
        harness.open();
    }
    harness.service();
    let half = input.len() / 2;
    let mut midway_done = false;
    let mut offset = 0;
    let mut turn = 0;
    while offset < input.len() {
        if !midway_done && offset >= half {
            harness.midway();
            midway_done = true;
        }
        let seed = seeds.get(turn % seeds.len()).copied().unwrap_or(0);
        let size = (usize::from(seed) * 3 + 1).min(input.len() - offset);
        harness.feed(&input[offset..offset + size]);
        harness.tick(Duration::from_millis(u64::from(seed) * 200));
        offset += size;
        turn += 1;
    }
    if settings_choice & 0x80 == 0x80 {
        harness.conn.shutdown(harness.now);
        harness.service();
    }
    // Let every timer run out, then the transport closes.
    for _ in 0..8 {
        harness.tick(Duration::from_secs(60));
    }
    harness.close();
    harness.check_totals(input.len());
}

/// The server's first SETTINGS, as byte 4 of the input picks it.
fn server_settings(choice: u8) -> Settings {
    let mut settings = Settings::new();
    match choice & 3 {
        1 => settings = settings.with(SettingId::MAX_CONCURRENT_STREAMS, 0),
        2 => settings = settings.with(SettingId::MAX_CONCURRENT_STREAMS, 1),
        3 => settings = settings.with(SettingId::MAX_CONCURRENT_STREAMS, 2),
        _ => {}
    }
    match (choice >> 2) & 3 {
        1 => settings = settings.with(SettingId::INITIAL_WINDOW_SIZE, 0),
        2 => settings = settings.with(SettingId::INITIAL_WINDOW_SIZE, 100),
        3 => settings = settings.with(SettingId::INITIAL_WINDOW_SIZE, 1 << 20),
        _ => {}
    }
    if choice & 0x10 != 0 {
        settings = settings.with(SettingId::MAX_FRAME_SIZE, 1 << 20);
    }
    if choice & 0x20 != 0 {
        settings = settings.with(SettingId::HEADER_TABLE_SIZE, 0);
    }
    if choice & 0x40 != 0 {
        settings = settings.with(SettingId::MAX_HEADER_LIST_SIZE, 100);
    }
    settings
}

/// The request headers the client layer sends (`client::channel`).
fn request_fields() -> Vec<HeaderField> {
    vec![
        HeaderField::new(":method", "POST"),
        HeaderField::new(":scheme", "http"),
        HeaderField::new(":path", "/fuzz.Service/Call"),
        HeaderField::new(":authority", "localhost:50051"),
        HeaderField::new("content-type", "application/grpc"),
        HeaderField::new("te", "trailers"),
        HeaderField::new("user-agent", "grpc-rust-mio/fuzz"),
        HeaderField::new("grpc-accept-encoding", grpc::accept_encoding_header()),
        HeaderField::new("grpc-timeout", grpc::format_timeout(Duration::from_secs(5))),
    ]
}

/// What we know of one stream we opened.
#[derive(Debug)]
struct Track {
    /// Order of opening, for the midway cancel.
    first: bool,
    id: Option<StreamId>,
    /// A final (non-1xx) response head arrived.
    response: bool,
    content_length: Option<u64>,
    /// DATA bytes handed to us.
    received: u64,
    /// The peer's END_STREAM arrived.
    remote_done: bool,
    /// Reset, Dropped or Closed arrived.
    ended: bool,
    messages: MessageDecoder,
}

struct Harness {
    conn: Connection,
    now: Instant,
    inbox: BytesMut,
    release: bool,
    unary: bool,
    streams: BTreeMap<StreamKey, Track>,
    last_id: u32,
    connection_closed: bool,
    bytes_out: usize,
    events: usize,
}

impl Harness {
    fn new(mode: u8) -> Harness {
        let release = mode & 2 == 2;
        let mut config = ConnConfig::default();
        if !release || mode & 8 == 0 {
            config.inbound = InboundConfig::static_windows(WINDOW, WINDOW);
        }
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
            conn: Connection::new(Role::Client, config, Arc::new(NoWake), now, 1),
            now,
            inbox: BytesMut::new(),
            release,
            unary: mode & 0x80 == 0x80,
            streams: BTreeMap::new(),
            last_id: 0,
            connection_closed: false,
            bytes_out: 0,
            events: 0,
        }
    }

    /// Opens a stream as the client layer does: HEADERS, then one message
    /// (and END_STREAM for a unary call).
    fn open(&mut self) {
        let buffer = self.conn.buffer().clone();
        let key = buffer.new_stream_key();
        let mut body = BytesMut::new();
        grpc::encode_message(MESSAGE, false, &mut body).unwrap();
        let opened = buffer.put(Item::Open {
            key,
            fields: request_fields(),
            end_stream: false,
            quota: None,
        });
        if opened.is_err() {
            return; // The connection is closed: nothing will be said of it.
        }
        let _ = buffer.put(Item::Data {
            key,
            data: body.freeze(),
            end_stream: self.unary,
        });
        self.streams.insert(
            key,
            Track {
                first: self.streams.is_empty(),
                id: None,
                response: false,
                content_length: None,
                received: 0,
                remote_done: false,
                ended: false,
                messages: MessageDecoder::new(4 << 20),
            },
        );
    }

    /// Halfway: one more call, and the first one cancelled if it is still
    /// going (the client layer cancels only calls not yet completed).
    fn midway(&mut self) {
        self.open();
        let first = self
            .streams
            .iter()
            .find(|(_, track)| track.first && !track.ended)
            .map(|(key, _)| *key);
        if let Some(key) = first {
            self.conn.reset(key, Reason::CANCEL, self.now);
        }
        self.service();
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

    /// The stream an event names: one we opened and that has not ended.
    fn live(&mut self, key: StreamKey, what: &str) -> &mut Track {
        let track = self
            .streams
            .get_mut(&key)
            .unwrap_or_else(|| panic!("{what} for {key:?}, a stream we never opened"));
        assert!(!track.ended, "{what} for {key:?} after its end");
        track
    }

    /// The stream a response part names: also opened, with no END_STREAM
    /// from the peer yet, on a connection not closed.
    fn receiving(&mut self, key: StreamKey, what: &str) -> &mut Track {
        assert!(!self.connection_closed, "{what} after ConnectionClosed");
        let track = self.live(key, what);
        assert!(track.id.is_some(), "{what} for {key:?} before it opened");
        assert!(!track.remote_done, "{what} for {key:?} after END_STREAM");
        track
    }

    fn on_event(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Request { id, .. } => panic!("a client got a request on {id:?}"),
            ConnEvent::Opened { key, id } => {
                assert!(!self.connection_closed, "{key:?} opened after close");
                assert!(id.is_client_initiated(), "our stream got id {id:?}");
                assert!(id.value() > self.last_id, "stream ids must grow");
                self.last_id = id.value();
                let track = self.live(key, "Opened");
                assert!(track.id.is_none(), "{key:?} opened twice");
                track.id = Some(id);
            }
            ConnEvent::Response {
                key,
                head,
                end_stream,
            } => {
                let track = self.receiving(key, "Response");
                assert!(!track.response, "a second response head on {key:?}");
                let informational = (100..200).contains(&head.status);
                assert!(!(informational && end_stream), "1xx with END_STREAM");
                if !informational {
                    track.response = true;
                    track.content_length = head.content_length;
                }
                if end_stream {
                    track.remote_done = true;
                    assert!(
                        track.content_length.is_none_or(|n| n == 0),
                        "{key:?}: content-length {:?} but no body",
                        track.content_length
                    );
                    // A trailers-only response: the status is in the head.
                    let _ = Status::from_trailers(&head.fields);
                }
                let _ = Metadata::from_headers(&head.fields);
            }
            ConnEvent::Data {
                key,
                data,
                end_stream,
            } => {
                let release = self.release;
                let track = self.receiving(key, "Data");
                assert!(track.response, "DATA on {key:?} before a final response");
                track.received += data.len() as u64;
                if let Some(n) = track.content_length {
                    assert!(
                        track.received <= n,
                        "{key:?}: more DATA than content-length"
                    );
                    if end_stream {
                        assert_eq!(track.received, n, "{key:?}: less DATA than content-length");
                    }
                }
                if !release {
                    assert!(
                        track.received <= u64::from(WINDOW),
                        "{key:?} was handed {} bytes, window {WINDOW}",
                        track.received
                    );
                }
                track.remote_done = end_stream;
                let n = data.len();
                track.messages.push(data);
                while let Ok(Some(_)) = track.messages.next() {}
                if release {
                    self.conn.release_capacity(key, n);
                } else {
                    let live: u64 = self
                        .streams
                        .values()
                        .filter(|t| !t.ended)
                        .map(|t| t.received)
                        .sum();
                    assert!(
                        live <= u64::from(WINDOW),
                        "live streams were handed {live} bytes, connection window {WINDOW}"
                    );
                }
            }
            ConnEvent::Trailers { key, fields } => {
                let track = self.receiving(key, "Trailers");
                assert!(track.response, "trailers on {key:?} before a response");
                if let Some(n) = track.content_length {
                    assert_eq!(track.received, n, "{key:?}: less DATA than content-length");
                }
                track.remote_done = true;
                let _ = track.messages.finish();
                let status = Status::from_trailers(&fields);
                let _ = status.to_string();
            }
            ConnEvent::Sent { key } => {
                self.live(key, "Sent");
            }
            ConnEvent::Reset { key, .. } => {
                self.live(key, "Reset").ended = true;
            }
            ConnEvent::Dropped {
                key,
                cause: DropCause::Invalid,
                ..
            } if self.streams.get(&key).is_some_and(|t| t.ended) => {
                // An item put for a stream that had ended by the time the
                // writer took it (a Data after the stream was dropped, the
                // race a call's sender has with the connection): reported,
                // and the client layer ignores it, as the call is gone.
            }
            ConnEvent::Dropped { key, opened, .. } => {
                let track = self.live(key, "Dropped");
                assert_eq!(
                    opened,
                    track.id.is_some(),
                    "{key:?}: Dropped says opened {opened}"
                );
                track.ended = true;
            }
            ConnEvent::Closed { key } => {
                let track = self.live(key, "Closed");
                assert!(track.remote_done, "{key:?} closed before the peer ended it");
                track.ended = true;
            }
            ConnEvent::GoAway { .. } | ConnEvent::Pong { .. } => {}
            ConnEvent::ConnectionClosed { .. } => {
                assert!(!self.connection_closed, "ConnectionClosed twice");
                assert!(self.conn.is_finished());
                self.connection_closed = true;
            }
        }
    }

    fn check_state(&self) {
        assert!(
            self.conn.active_streams() <= self.streams.len(),
            "{} stream records, {} streams opened",
            self.conn.active_streams(),
            self.streams.len()
        );
        let (open, _, waiting) = self.conn.stream_capacity();
        assert!(open as usize + waiting <= self.streams.len());
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
        assert!(self.connection_closed, "no ConnectionClosed event");
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
            self.events <= 64 + 8 * self.streams.len() + 2 * input_len,
            "{} events for {input_len} bytes in",
            self.events
        );
    }
}

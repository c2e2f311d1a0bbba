//! In-memory drivers for `conn::Connection`, after quinn's
//! `quinn-proto/src/tests/util.rs`: no sockets, no threads, no sleeps.
//!
//! - [`Pair`]: a client and a server `Connection` wired back to back, one
//!   virtual clock. [`Pair::step`] moves bytes both ways once and fires due
//!   timers; [`Pair::drive`] steps until nothing moves; [`Pair::advance`]
//!   moves the clock, firing every timer at its own instant in order.
//! - [`Raw`]: one `Connection` and a scripted peer that writes frames with
//!   `framer::Encoder` (for peers that misbehave on purpose).
//! - A tap on every side: the frames each `Connection` sent, decoded from a
//!   copy of its bytes (the client's 24-octet preface skipped), plus
//!   [`describe`] to print them compactly.
//!
//! A finished connection flushes its last batch, then its "socket" closes:
//! the peer reads what is left and gets `handle_transport_closed`, as a
//! driver would see EOF.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use mio_grpc::conn::{ConnConfig, ConnEvent, Connection};
use mio_grpc::framer::hpack::{HeaderField, HeaderList};
use mio_grpc::framer::{
    self, Data, Decoder, DecoderConfig, Encoder, Frame, GoAway, HeaderBlock, Headers, Ping, Reason,
    RstStream, SettingId, Settings, StreamId, WindowUpdate,
};
use mio_grpc::loopy::{Batch, Item, NoWake, Role, StreamKey};

/// Bytes asked of one `poll_transmit`.
pub const BUDGET: usize = 64 * 1024;
/// The MaxConnectionAge jitter seed the pairs use.
pub const SEED: u64 = 7;
/// Steps `drive` takes before it declares a livelock.
const STEP_LIMIT: usize = 100_000;

// --- the tap ----------------------------------------------------------------

/// Decodes a copy of what one side sent.
pub struct Tap {
    decoder: Decoder,
    buf: BytesMut,
    preface_left: usize,
}

impl Tap {
    /// A tap for the output of a connection in `role`.
    pub fn new(role: Role) -> Tap {
        Tap {
            decoder: Decoder::new(DecoderConfig {
                max_frame_size: framer::MAX_MAX_FRAME_SIZE,
                header_table_size: 4096,
                max_header_list_size: u32::MAX,
                max_header_block_size: 1 << 24,
                max_continuation_frames: 1 << 16,
            }),
            buf: BytesMut::new(),
            preface_left: if role == Role::Client {
                framer::PREFACE.len()
            } else {
                0
            },
        }
    }

    /// Decodes `bytes` (appended to what is left over) into `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Frame>) {
        self.buf.extend_from_slice(bytes);
        if self.preface_left > 0 {
            if self.buf.len() < self.preface_left {
                return;
            }
            assert_eq!(&self.buf[..self.preface_left], framer::PREFACE);
            self.buf.advance(self.preface_left);
            self.preface_left = 0;
        }
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => return,
                Err(err) => panic!("a connection sent a bad frame: {err:?}"),
            }
        }
    }
}

/// A frame in one line: `HEADERS s=1 es`, `DATA s=1 len=5`,
/// `GOAWAY last=3 NO_ERROR "..."`, `PING ack keepaliv`.
pub fn describe(frame: &Frame) -> String {
    let es = |end: bool| if end { " es" } else { "" };
    match frame {
        Frame::Data(d) => format!(
            "DATA s={} len={}{}",
            d.stream_id.value(),
            d.payload.len(),
            es(d.end_stream)
        ),
        Frame::Headers(h) => format!("HEADERS s={}{}", h.stream_id.value(), es(h.end_stream)),
        Frame::RstStream(r) => format!("RST_STREAM s={} {:?}", r.stream_id.value(), r.reason),
        Frame::Settings(s) if s.ack => "SETTINGS ack".into(),
        Frame::Settings(s) => {
            let params: Vec<String> = s
                .params
                .iter()
                .map(|p| format!("{}={}", setting_name(p.id), p.value))
                .collect();
            format!("SETTINGS [{}]", params.join(", "))
        }
        Frame::Ping(p) => format!(
            "PING {}{}",
            if p.ack { "ack " } else { "" },
            payload_text(&p.payload)
        ),
        Frame::GoAway(g) => format!(
            "GOAWAY last={} {:?} {:?}",
            g.last_stream_id.value(),
            g.reason,
            String::from_utf8_lossy(&g.debug_data)
        ),
        Frame::WindowUpdate(w) => {
            format!("WINDOW_UPDATE s={} +{}", w.stream_id.value(), w.increment)
        }
        other => format!("{:?}", other.kind()),
    }
}

fn setting_name(id: SettingId) -> String {
    match id {
        SettingId::HEADER_TABLE_SIZE => "HEADER_TABLE_SIZE".into(),
        SettingId::ENABLE_PUSH => "ENABLE_PUSH".into(),
        SettingId::MAX_CONCURRENT_STREAMS => "MAX_CONCURRENT_STREAMS".into(),
        SettingId::INITIAL_WINDOW_SIZE => "INITIAL_WINDOW_SIZE".into(),
        SettingId::MAX_FRAME_SIZE => "MAX_FRAME_SIZE".into(),
        SettingId::MAX_HEADER_LIST_SIZE => "MAX_HEADER_LIST_SIZE".into(),
        other => format!("{:#x}", other.0),
    }
}

/// A PING payload as text when printable, else hex.
pub fn payload_text(payload: &[u8; 8]) -> String {
    if payload.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(payload).into_owned()
    } else {
        payload.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The frames of `frames` described, minus BDP pings and their acks and
/// WINDOW_UPDATEs (flow-control noise most tests do not assert on).
pub fn describe_quiet(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| match f {
            Frame::Ping(p) => p.payload != mio_grpc::loopy::BDP_PING_PAYLOAD,
            Frame::WindowUpdate(_) => false,
            _ => true,
        })
        .map(describe)
        .collect()
}

/// `events` minus the `Pong`s of BDP pings.
pub fn quiet_events(events: Vec<ConnEvent>) -> Vec<ConnEvent> {
    // The connection keeps its own pings (keepalive, drain, BDP) to itself.
    assert!(
        !events.iter().any(|e| matches!(e, ConnEvent::Pong { payload } if *payload == mio_grpc::loopy::BDP_PING_PAYLOAD)),
        "an internal BDP pong reached the application"
    );
    events
}

// --- field lists and frames (a small DSL) ----------------------------------

/// A header field from string literals.
pub fn field(name: &'static str, value: &'static str) -> HeaderField {
    HeaderField::new(name, value)
}

/// A gRPC unary request head for `path`.
pub fn grpc_request(path: &'static str) -> HeaderList {
    vec![
        field(":method", "POST"),
        field(":scheme", "http"),
        field(":path", path),
        field(":authority", "localhost"),
        field("content-type", "application/grpc"),
        field("te", "trailers"),
    ]
}

/// A GET request head for `path`.
pub fn get_request(path: &'static str) -> HeaderList {
    vec![
        field(":method", "GET"),
        field(":scheme", "http"),
        field(":path", path),
        field(":authority", "localhost"),
    ]
}

/// A response head with `:status` 200 and a gRPC content type.
pub fn ok_response() -> HeaderList {
    vec![
        field(":status", "200"),
        field("content-type", "application/grpc"),
    ]
}

/// gRPC trailers with `grpc-status: 0`.
pub fn ok_trailers() -> HeaderList {
    vec![field("grpc-status", "0")]
}

/// A HEADERS frame carrying `fields`.
pub fn headers(id: u32, fields: HeaderList, end_stream: bool) -> Frame {
    let mut frame = Headers::new(StreamId::new(id), HeaderBlock::Fields(fields));
    frame.end_stream = end_stream;
    frame.into()
}

/// A DATA frame.
pub fn data(id: u32, payload: &'static [u8], end_stream: bool) -> Frame {
    let mut frame = Data::new(StreamId::new(id), Bytes::from_static(payload));
    frame.end_stream = end_stream;
    frame.into()
}

/// A RST_STREAM frame.
pub fn rst(id: u32, reason: Reason) -> Frame {
    RstStream::new(StreamId::new(id), reason).into()
}

/// A PING frame (not an ack).
pub fn ping(payload: [u8; 8]) -> Frame {
    Ping::new(payload).into()
}

/// A PING ack.
pub fn pong(payload: [u8; 8]) -> Frame {
    Ping::pong(payload).into()
}

/// A GOAWAY frame with no debug data.
pub fn goaway(last: u32, reason: Reason) -> Frame {
    GoAway::new(StreamId::new(last), reason).into()
}

/// A GOAWAY frame with debug data.
pub fn goaway_debug(last: u32, reason: Reason, debug: &'static [u8]) -> Frame {
    let mut frame = GoAway::new(StreamId::new(last), reason);
    frame.debug_data = Bytes::from_static(debug);
    frame.into()
}

/// A WINDOW_UPDATE frame.
pub fn window_update(id: u32, increment: u32) -> Frame {
    WindowUpdate::new(StreamId::new(id), increment).into()
}

/// A SETTINGS ack.
pub fn settings_ack() -> Frame {
    Settings::ack().into()
}

/// The SETTINGS frame a `Connection` in `role` with `config` sends first
/// (default windows and frame size assumed).
pub fn initial_settings(role: Role, config: &ConnConfig) -> Frame {
    let mut settings = Settings::new()
        .with(
            SettingId::MAX_CONCURRENT_STREAMS,
            config.max_concurrent_streams,
        )
        .with(SettingId::MAX_HEADER_LIST_SIZE, config.max_header_list_size);
    if role == Role::Client {
        settings = settings.with(SettingId::ENABLE_PUSH, 0);
    }
    settings.into()
}

/// The key a server uses for stream `id`.
pub fn key(id: u32) -> StreamKey {
    StreamKey::from(StreamId::new(id))
}

// --- one side of a pair ------------------------------------------------------

/// One connection of a [`Pair`] with what it received, sent and reported.
pub struct Endpoint {
    /// The connection.
    pub conn: Connection,
    /// Bytes from the peer not read yet.
    pub inbox: BytesMut,
    /// Every event so far, in order.
    pub events: Vec<ConnEvent>,
    seen_events: usize,
    /// Every frame this side sent, decoded (the tap).
    pub frames: Vec<Frame>,
    seen_frames: usize,
    tap: Tap,
    /// Call `release_capacity` for each `Data` event as it is collected.
    pub auto_release: bool,
    /// When false, this side's output is dropped instead of delivered.
    pub link_up: bool,
    /// Finished and flushed: its socket is closed.
    pub socket_closed: bool,
    /// `handle_transport_closed` was called (the peer's socket closed).
    pub eof: bool,
    /// The most bytes one `poll_transmit` produced.
    pub max_transmit: usize,
}

impl Endpoint {
    fn new(role: Role, config: ConnConfig, now: Instant, seed: u64) -> Endpoint {
        Endpoint {
            conn: Connection::new(role, config, Arc::new(NoWake), now, seed),
            inbox: BytesMut::new(),
            events: Vec::new(),
            seen_events: 0,
            frames: Vec::new(),
            seen_frames: 0,
            tap: Tap::new(role),
            auto_release: false,
            link_up: true,
            socket_closed: false,
            eof: false,
            max_transmit: 0,
        }
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<ConnEvent> {
        let new = self.events[self.seen_events..].to_vec();
        self.seen_events = self.events.len();
        new
    }

    /// The frames sent since the last call.
    pub fn take_frames(&mut self) -> Vec<Frame> {
        let new = self.frames[self.seen_frames..].to_vec();
        self.seen_frames = self.frames.len();
        new
    }

    /// The frames sent since the last call, described.
    pub fn take_described(&mut self) -> Vec<String> {
        self.take_frames().iter().map(describe).collect()
    }

    /// Puts `item` into the connection's control buffer.
    pub fn put(&self, item: Item) {
        if let Err(err) = self.conn.buffer().put(item) {
            panic!("put refused: {err}");
        }
    }

    fn collect_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.conn.poll_event() {
            if self.auto_release {
                if let ConnEvent::Data { key, data, .. } = &event {
                    self.conn.release_capacity(*key, data.len());
                }
            }
            self.events.push(event);
            any = true;
        }
        any
    }

    /// `poll_transmit` until drained; the bytes, also fed to the tap.
    fn transmit(&mut self, now: Instant) -> BytesMut {
        let mut out = BytesMut::new();
        if self.socket_closed {
            return out;
        }
        for _ in 0..STEP_LIMIT {
            let mut batch = Batch::new();
            let written = self.conn.poll_transmit(&mut batch, BUDGET, now);
            assert_eq!(written.bytes, batch.len());
            self.max_transmit = self.max_transmit.max(batch.len());
            out.extend_from_slice(&batch.to_bytes());
            self.collect_events();
            if written.drained {
                self.tap.feed(&out, &mut self.frames);
                return out;
            }
        }
        panic!("poll_transmit never drained");
    }

    fn fire_timers(&mut self, now: Instant) -> bool {
        if self.conn.next_timeout().is_some_and(|at| at <= now) {
            self.conn.handle_timeout(now);
            self.collect_events();
            return true;
        }
        false
    }
}

// --- the pair ----------------------------------------------------------------

/// A client and a server connection wired back to back.
pub struct Pair {
    /// The client side.
    pub client: Endpoint,
    /// The server side.
    pub server: Endpoint,
    /// When the pair was made.
    pub t0: Instant,
    /// The virtual clock.
    pub now: Instant,
}

impl Pair {
    /// Two connections with default configs, not yet connected.
    pub fn new() -> Pair {
        Pair::with_configs(ConnConfig::default(), ConnConfig::default())
    }

    /// Two connections with these configs, not yet connected.
    pub fn with_configs(client: ConnConfig, server: ConnConfig) -> Pair {
        let t0 = Instant::now();
        Pair {
            client: Endpoint::new(Role::Client, client, t0, SEED),
            server: Endpoint::new(Role::Server, server, t0, SEED),
            t0,
            now: t0,
        }
    }

    /// Connected pair (SETTINGS exchanged and acknowledged both ways); the
    /// handshake's frames and events are taken.
    pub fn connected(client: ConnConfig, server: ConnConfig) -> Pair {
        let mut pair = Pair::with_configs(client, server);
        pair.drive();
        pair.client.take_frames();
        pair.server.take_frames();
        assert_eq!(pair.client.take_events(), []);
        assert_eq!(pair.server.take_events(), []);
        pair
    }

    /// Seconds since `t0`.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Moves bytes both ways once and fires due timers; true if anything
    /// happened.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = self.client.fire_timers(now);
        moved |= self.server.fire_timers(now);
        moved |= carry(&mut self.client, &mut self.server, now);
        moved |= carry(&mut self.server, &mut self.client, now);
        moved
    }

    /// Steps until nothing moves.
    pub fn drive(&mut self) {
        for _ in 0..STEP_LIMIT {
            if !self.step() {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    /// Moves the clock by `d`, firing each timer at its own instant (in
    /// order) and driving after each.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.drive();
        for _ in 0..STEP_LIMIT {
            let next = [
                self.client.conn.next_timeout(),
                self.server.conn.next_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.drive();
                }
                _ => {
                    self.now = target;
                    self.drive();
                    return;
                }
            }
        }
        panic!("timers kept firing at one instant");
    }

    /// Moves the clock to `t0 + at`.
    pub fn advance_to(&mut self, at: Duration) {
        let target = self.t0 + at;
        assert!(target >= self.now, "the clock only goes forward");
        self.advance(target - self.now);
    }

    /// Client: opens a stream with `fields`; returns its key.
    pub fn open(&mut self, fields: HeaderList, end_stream: bool) -> StreamKey {
        let key = self.client.conn.buffer().new_stream_key();
        self.client.put(Item::Open {
            key,
            fields,
            end_stream,
            quota: None,
        });
        key
    }

    /// Server: answers stream `id` with a 200, `body` (if not empty) and
    /// OK trailers.
    pub fn respond(&mut self, id: StreamId, body: &'static [u8]) {
        let key = StreamKey::from(id);
        self.server.put(Item::Headers {
            key,
            fields: ok_response(),
            end_stream: false,
        });
        if !body.is_empty() {
            self.server.put(Item::Data {
                key,
                data: Bytes::from_static(body),
                end_stream: false,
            });
        }
        self.server.put(Item::Headers {
            key,
            fields: ok_trailers(),
            end_stream: true,
        });
    }
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

/// Sends `from`'s output to `to` and lets `to` read it.
fn carry(from: &mut Endpoint, to: &mut Endpoint, now: Instant) -> bool {
    let bytes = from.transmit(now);
    let mut moved = !bytes.is_empty();
    if from.conn.is_finished() && !from.socket_closed {
        from.socket_closed = true;
        moved = true;
    }
    if to.socket_closed {
        to.inbox.clear();
        return moved;
    }
    if from.link_up {
        to.inbox.extend_from_slice(&bytes);
    }
    if !to.inbox.is_empty() && to.conn.wants_read() {
        let before = to.inbox.len();
        to.conn.handle_read(&mut to.inbox, now);
        moved |= to.inbox.len() != before;
        moved |= to.collect_events();
    }
    if from.socket_closed && to.inbox.is_empty() && !to.eof {
        to.eof = true;
        to.conn
            .handle_transport_closed("the peer closed the connection".into());
        to.collect_events();
        moved = true;
    }
    moved
}

// --- one connection and a scripted peer ---------------------------------------

/// One `Connection` driven by a test that writes the peer's frames itself.
pub struct Raw {
    /// The connection under test.
    pub conn: Connection,
    /// When it was made.
    pub t0: Instant,
    /// The virtual clock.
    pub now: Instant,
    /// Encodes the peer's frames (its HPACK context follows the wire).
    pub encoder: Encoder,
    inbox: BytesMut,
    /// Every event so far.
    pub events: Vec<ConnEvent>,
    seen_events: usize,
    /// Every frame the connection sent.
    pub frames: Vec<Frame>,
    seen_frames: usize,
    tap: Tap,
    /// The most bytes one `poll_transmit` produced.
    pub max_transmit: usize,
}

impl Raw {
    /// A connection in `role` with `config`, at a fresh clock.
    pub fn new(role: Role, config: ConnConfig) -> Raw {
        let t0 = Instant::now();
        let mut raw = Raw {
            conn: Connection::new(role, config, Arc::new(NoWake), t0, SEED),
            t0,
            now: t0,
            encoder: Encoder::new(),
            inbox: BytesMut::new(),
            events: Vec::new(),
            seen_events: 0,
            frames: Vec::new(),
            seen_frames: 0,
            tap: Tap::new(role),
            max_transmit: 0,
        };
        raw.flush();
        raw
    }

    /// A server connection whose (raw) client has sent its preface and an
    /// empty SETTINGS and acknowledged the server's; frames and events of
    /// the handshake are taken.
    pub fn server(config: ConnConfig) -> Raw {
        let expected = initial_settings(Role::Server, &config);
        let mut raw = Raw::new(Role::Server, config);
        raw.send_bytes(framer::PREFACE);
        raw.send(Settings::new());
        raw.send(Settings::ack());
        assert_eq!(raw.take_frames(), [expected, settings_ack()]);
        assert_eq!(raw.take_events(), []);
        raw
    }

    /// A client connection whose (raw) server sent `settings` and
    /// acknowledged the client's; frames and events of the handshake taken.
    pub fn client(config: ConnConfig, settings: Settings) -> Raw {
        let expected = initial_settings(Role::Client, &config);
        let mut raw = Raw::new(Role::Client, config);
        raw.send(settings);
        raw.send(Settings::ack());
        assert_eq!(raw.take_frames(), [expected, settings_ack()]);
        assert_eq!(raw.take_events(), []);
        raw
    }

    /// Writes `frame` to the connection (HEADERS are HPACK-encoded now).
    pub fn send(&mut self, frame: impl Into<Frame>) {
        let mut wire = BytesMut::new();
        self.encoder.encode(&frame.into(), &mut wire);
        self.send_bytes(&wire);
    }

    /// Writes raw bytes to the connection.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.inbox.extend_from_slice(bytes);
        self.read();
        self.flush();
    }

    fn read(&mut self) {
        if !self.inbox.is_empty() && self.conn.wants_read() {
            self.conn.handle_read(&mut self.inbox, self.now);
        }
        self.collect_events();
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.events.push(event);
        }
    }

    /// Fires due timers and drains the connection's output into the tap.
    pub fn flush(&mut self) {
        if self.conn.next_timeout().is_some_and(|at| at <= self.now) {
            self.conn.handle_timeout(self.now);
        }
        self.collect_events();
        for _ in 0..STEP_LIMIT {
            let mut batch = Batch::new();
            let written = self.conn.poll_transmit(&mut batch, BUDGET, self.now);
            self.max_transmit = self.max_transmit.max(batch.len());
            self.tap.feed(&batch.to_bytes(), &mut self.frames);
            self.collect_events();
            if written.drained {
                // Output may have reopened reading (a flood throttle).
                let before = self.inbox.len();
                self.read();
                if self.inbox.len() != before {
                    continue;
                }
                return;
            }
        }
        panic!("poll_transmit never drained");
    }

    /// Moves the clock by `d`, firing each timer at its own instant.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..STEP_LIMIT {
            match self.conn.next_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.flush();
                }
                _ => {
                    self.now = target;
                    self.flush();
                    return;
                }
            }
        }
        panic!("timers kept firing at one instant");
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<ConnEvent> {
        let new = self.events[self.seen_events..].to_vec();
        self.seen_events = self.events.len();
        new
    }

    /// The frames sent since the last call.
    pub fn take_frames(&mut self) -> Vec<Frame> {
        let new = self.frames[self.seen_frames..].to_vec();
        self.seen_frames = self.frames.len();
        new
    }

    /// The frames sent since the last call, described.
    pub fn take_described(&mut self) -> Vec<String> {
        self.take_frames().iter().map(describe).collect()
    }

    /// Puts `item` into the connection's control buffer and flushes.
    pub fn put(&mut self, item: Item) {
        if let Err(err) = self.conn.buffer().put(item) {
            panic!("put refused: {err}");
        }
        self.flush();
    }
}

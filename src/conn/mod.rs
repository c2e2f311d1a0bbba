//! One HTTP/2 connection, both roles, sans-IO: no sockets, no clock reads
//! (time is a parameter), no threads. The driver (`runtime`) feeds it bytes
//! and timeouts and writes out what it produces.
//!
//! # Contract (quinn-proto's shape)
//!
//! - Input, `handle_*`: [`Connection::handle_read`] with the bytes read
//!   (it consumes whole frames from the buffer and leaves the rest);
//!   [`Connection::handle_timeout`] when [`Connection::next_timeout`] has
//!   passed; [`Connection::handle_transport_closed`] on EOF or an I/O error.
//! - Application commands: [`Item`]s put into
//!   [`Connection::buffer`] from any thread (open a stream, send headers,
//!   data, trailers, reset), and, holding the connection,
//!   [`Connection::release_capacity`], [`Connection::ping`],
//!   [`Connection::shutdown`].
//! - Output, `poll_*`: [`Connection::poll_transmit`] fills a
//!   [`Batch`] for one vectored write;
//!   [`Connection::poll_event`] yields [`ConnEvent`]s;
//!   [`Connection::next_timeout`] says when to call back.
//!
//! Call order after any input: drain `poll_event`, then `poll_transmit`
//! until it reports `drained` (or the socket is full), then re-arm the
//! timer from `next_timeout`. Read from the socket only while
//! [`Connection::wants_read`]; close the socket once
//! [`Connection::is_finished`] and the last batch is written.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod config;
mod event;
mod lifecycle;
mod limits;
mod recent;
mod recv;
mod slots;
mod state;
mod stats;
mod timer;
pub mod validate;
mod violation;

pub use config::{
    AbuseLimits, ClientKeepalive, ConnConfig, EnforcementPolicy, RateLimit, ServerKeepalive,
};
pub use event::{CloseReason, ConnEvent};
pub use loopy::SendBudget;
pub(crate) use slots::{HandlerSlots, Slot};
pub use state::{Side, StreamState};
pub use stats::ConnStats;
pub use timer::Timer;
pub use violation::{AbuseLimit, ConnViolation};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use framer::{Decoder, DecoderConfig, GoAway, Reason, SettingId, Settings, StreamId};
use loopy::{
    Batch, ControlBuffer, DropCause, Event, InboundAction, InboundFlow, Item, Role, StreamKey,
    StreamRecvWindow, Wake, Writer, Written,
};

use lifecycle::{Handshake, Lifecycle};
use recent::RecentStreams;
use timer::{TimerTable, WindowCounter};
use validate::ContentLength;

/// PING payload of keepalive pings.
const KEEPALIVE_PING: [u8; 8] = *b"keepaliv";
/// PING payload of the graceful-shutdown ping (grpc-go's goAwayPing).
const DRAIN_PING: [u8; 8] = [1, 6, 1, 8, 0, 3, 3, 9];
/// grpc-go's maxPingStrikes.
const MAX_PING_STRIKES: u32 = 2;
/// grpc-go: without streams, a ping is expected no more often than this.
const IDLE_PING_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);

/// The receive side of one stored stream.
#[derive(Debug)]
struct StreamRecord {
    key: StreamKey,
    state: StreamState,
    recv: StreamRecvWindow,
    content_length: ContentLength,
    /// Client: the final (non-1xx) response head has arrived.
    response_seen: bool,
    /// When the stream opened (the age of a reset, for the rapid-reset
    /// count).
    opened_at: Instant,
    /// Server: the write quota the writer replenishes for this stream.
    quota: Option<Arc<loopy::WriteQuota>>,
}

/// One HTTP/2 connection. See the module documentation for the contract.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use mio_grpc::conn::{ConnConfig, Connection};
/// use loopy::{Batch, NoWake, Role};
///
/// let now = Instant::now();
/// let mut client = Connection::new(Role::Client, ConnConfig::default(), Arc::new(NoWake), now, 1);
/// let mut batch = Batch::new();
/// client.poll_transmit(&mut batch, 64 * 1024, now);
/// // The preface, then our SETTINGS.
/// assert!(batch.to_bytes().starts_with(framer::PREFACE));
/// ```
pub struct Connection {
    role: Role,
    config: ConnConfig,
    lifecycle: Lifecycle,
    decoder: Decoder,
    writer: Writer,
    buffer: Arc<ControlBuffer>,
    streams: HashMap<StreamId, StreamRecord>,
    /// Client: key → id of each stored stream (a server's keys are its
    /// ids). With the records' keys this is the one map between keys and
    /// ids: the writer keeps none and is told the key with each command.
    key_ids: HashMap<StreamKey, StreamId>,
    /// Highest stream id the peer has used.
    max_peer_stream: StreamId,
    /// Peer-opened streams counted against our MAX_CONCURRENT_STREAMS.
    peer_streams: u32,
    /// Streams we reset: their late frames are ignored (§5.1 closed).
    recent_resets: RecentStreams,
    /// Streams to reset once our END_STREAM on them is written.
    reset_after_end: HashMap<StreamKey, Reason>,
    /// Streams that closed normally, recently (for §5.1 vs §5.1.1 answers).
    recent_closed: RecentStreams,
    inbound: InboundFlow,
    settings_pending: VecDeque<Settings>,
    /// The client magic (client) and our first SETTINGS, not yet sent.
    preface: Option<bytes::Bytes>,
    timers: TimerTable,
    keepalive_outstanding: bool,
    last_read: Instant,
    ping_strikes: u32,
    last_ping_at: Option<Instant>,
    reset_ping_strikes: bool,
    /// HEADERS or DATA sent since the last PING received (such a PING is
    /// a BDP sample, not counted against `limits.pings`).
    sent_since_ping: bool,
    resets: WindowCounter,
    wasted: WindowCounter,
    empty_frames: WindowCounter,
    settings_count: WindowCounter,
    pings: WindowCounter,
    buffered_bytes: usize,
    events: VecDeque<ConnEvent>,
    /// Response bytes queued on this connection (server streams' quotas
    /// draw on it, and on the shared budget if configured).
    send_budget: loopy::SendBudget,
    stats: ConnStats,
    seed: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("lifecycle", &self.lifecycle)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection in `role`, starting at `now`. `waker` is called when an
    /// application thread puts work for an idle connection; `seed` drives
    /// the MaxConnectionAge jitter (any value; tests pass a constant).
    pub fn new(
        role: Role,
        config: ConnConfig,
        waker: Arc<dyn Wake>,
        now: Instant,
        seed: u64,
    ) -> Connection {
        let buffer = Arc::new(ControlBuffer::new(waker));
        let writer =
            Writer::new(role, buffer.clone()).with_response_limit(config.max_transport_responses);
        let decoder = Decoder::new(DecoderConfig {
            // Until the peer acknowledges our SETTINGS, the RFC defaults hold.
            max_frame_size: framer::DEFAULT_MAX_FRAME_SIZE,
            header_table_size: 4096,
            max_header_list_size: config.max_header_list_size,
            max_header_block_size: config.max_header_block_size,
            max_continuation_frames: config.max_continuation_frames,
        });
        let inbound = InboundFlow::new(config.inbound);
        let mut conn = Connection {
            role,
            lifecycle: Lifecycle::new(role),
            decoder,
            writer,
            buffer,
            streams: HashMap::new(),
            key_ids: HashMap::new(),
            max_peer_stream: StreamId::ZERO,
            peer_streams: 0,
            recent_resets: RecentStreams::default(),
            reset_after_end: HashMap::new(),
            recent_closed: RecentStreams::default(),
            inbound,
            settings_pending: VecDeque::new(),
            preface: None,
            timers: TimerTable::default(),
            keepalive_outstanding: false,
            last_read: now,
            ping_strikes: 0,
            last_ping_at: None,
            reset_ping_strikes: false,
            sent_since_ping: false,
            resets: WindowCounter::default(),
            wasted: WindowCounter::default(),
            empty_frames: WindowCounter::default(),
            settings_count: WindowCounter::default(),
            pings: WindowCounter::default(),
            buffered_bytes: 0,
            events: VecDeque::new(),
            send_budget: loopy::SendBudget::new(config.max_queued_bytes),
            stats: ConnStats::default(),
            seed,
            config,
        };
        conn.start(now);
        conn
    }

    fn start(&mut self, now: Instant) {
        let c = &self.config;
        let mut settings = Settings::new()
            .with(SettingId::MAX_CONCURRENT_STREAMS, c.max_concurrent_streams)
            .with(SettingId::MAX_HEADER_LIST_SIZE, c.max_header_list_size);
        if self.role == Role::Client {
            settings = settings.with(SettingId::ENABLE_PUSH, 0);
        }
        if self.inbound.stream_limit() != loopy::DEFAULT_WINDOW_SIZE {
            settings = settings.with(SettingId::INITIAL_WINDOW_SIZE, self.inbound.stream_limit());
        }
        if c.max_frame_size != framer::DEFAULT_MAX_FRAME_SIZE {
            settings = settings.with(SettingId::MAX_FRAME_SIZE, c.max_frame_size);
        }
        if c.header_table_size != 4096 {
            settings = settings.with(SettingId::HEADER_TABLE_SIZE, c.header_table_size);
        }
        // §3.4: our SETTINGS is the first frame we send, before anything
        // the writer has (a SETTINGS ack is urgent there and could jump it).
        let mut preface = BytesMut::new();
        if self.role == Role::Client {
            preface.extend_from_slice(framer::PREFACE);
        }
        framer::Encoder::new().encode(&settings.clone().into(), &mut preface);
        self.preface = Some(preface.freeze());
        self.settings_pending.push_back(settings);
        if self.role == Role::Client {
            // A server starts this clock when the client's preface arrives:
            // until then the preface timeout governs.
            self.timers
                .set(Timer::SettingsAck, now + self.config.settings_timeout);
        }
        for action in self.inbound.start() {
            self.inbound_action(action, now);
        }
        let (time, timeout) = self.keepalive_times();
        if let Some(time) = time {
            let _ = timeout;
            self.timers.set(Timer::KeepalivePing, now + time);
        }
        if self.role == Role::Server {
            self.timers
                .set(Timer::Preface, now + self.config.preface_timeout);
            if let Some(idle) = self.config.server_keepalive.max_connection_idle {
                self.timers.set(Timer::Idle, now + idle);
            }
            if let Some(age) = self.config.server_keepalive.max_connection_age {
                self.timers.set(Timer::MaxAge, now + jitter(age, self.seed));
            }
        }
    }

    /// The control buffer: put [`Item`]s here from any thread.
    pub fn buffer(&self) -> &Arc<ControlBuffer> {
        &self.buffer
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The counters.
    pub fn stats(&self) -> ConnStats {
        let mut stats = self.stats;
        let w = self.writer.stats();
        for (out, n) in stats.frames_out.iter_mut().zip(w.frames_by_type.iter()) {
            *out = *n;
        }
        for (out, n) in stats
            .bytes_out_by_type
            .iter_mut()
            .zip(w.bytes_by_type.iter())
        {
            *out = *n;
        }
        if let Some(settings) = stats.frames_out.get_mut(4) {
            *settings += u64::from(self.stats.initial_settings_sent);
        }
        stats.bytes_out = w.bytes;
        stats.queued_bytes = self.send_budget.used() as u64;
        stats.queued_bytes_peak = self.send_budget.peak() as u64;
        stats.window_stalls = w.stream_window_stalls + w.connection_window_stalls;
        stats
    }

    /// Counts one read syscall / one wake-up (the driver reports them).
    pub fn count_read_syscall(&mut self) {
        self.stats.read_syscalls += 1;
    }

    /// Counts one write syscall (the driver reports it).
    pub fn count_write_syscall(&mut self) {
        self.stats.write_syscalls += 1;
    }

    /// Counts one loop wake-up for this connection.
    pub fn count_wakeup(&mut self) {
        self.stats.wakeups += 1;
    }

    /// Client: streams open against the peer's MAX_CONCURRENT_STREAMS, the
    /// peer's limit, and streams waiting for a slot (gRFC A105 uses these
    /// to decide on another connection).
    pub fn stream_capacity(&self) -> (u32, u32, usize) {
        (
            self.writer.open_streams(),
            self.writer.peer_max_concurrent_streams(),
            self.writer.waiting_streams(),
        )
    }

    /// Streams with a receive-side record (open or half-closed).
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// True while the driver should read from the socket: not closing, the
    /// flood throttle is off, and the application is keeping up.
    pub fn wants_read(&self) -> bool {
        !self.lifecycle.is_closed()
            && self.writer.wants_read()
            && self.buffered_bytes < self.config.limits.max_buffered_bytes
    }

    /// True once the connection is over: write out the last batch, then
    /// close the socket.
    pub fn is_finished(&self) -> bool {
        self.lifecycle.is_closed()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.pop_front()
    }

    /// When to call [`Connection::handle_timeout`] next.
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.lifecycle.is_closed() {
            return None;
        }
        self.timers.next()
    }

    /// The application consumed `n` bytes of a stream's DATA: reopen its
    /// receive window (a WINDOW_UPDATE once a quarter is consumed).
    pub fn release_capacity(&mut self, key: StreamKey, n: usize) {
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        self.buffered_bytes = self.buffered_bytes.saturating_sub(n);
        let Some(id) = self.id_of(key) else { return };
        if let Some(record) = self.streams.get_mut(&id) {
            if let Some(increment) = record.recv.on_consumed(n32) {
                self.writer.queue_window_update(id, increment);
            }
        }
    }

    /// Resets a stream now: RST_STREAM with `reason`, its queued output
    /// dropped, late frames from the peer ignored. The stream's events end
    /// with [`ConnEvent::Reset`] (`remote: false`) if it was still open.
    /// E.g. RST_STREAM(NO_ERROR) once a complete response is sent, to stop
    /// a request body nobody will read (RFC 9113 §8.1).
    pub fn reset(&mut self, key: StreamKey, reason: Reason, now: Instant) {
        let Some(id) = self.id_of(key) else {
            // A client stream not opened yet: it never will be.
            self.writer.reset(key, reason);
            return;
        };
        // By id, not by key: a server stream whose END_STREAM is out has
        // left the writer, and the frame must still be sent.
        self.writer.queue_rst(id, reason, Some(key));
        self.remember_reset(id);
        if self.streams.contains_key(&id) {
            self.stats.streams_reset_local += 1;
            let record_key = key;
            self.remove_stream(id, now);
            self.events.push_back(ConnEvent::Reset {
                key: record_key,
                reason,
                remote: false,
            });
        }
    }

    /// Refuses a stream the peer opened that the application cannot take
    /// now (its handlers are at their cap): RST_STREAM REFUSED_STREAM,
    /// which tells the peer it may retry (RFC 9113 §8.7). Counted as
    /// refused, and as a wasted frame: a peer that keeps opening streams
    /// past the cap runs out of budget.
    pub fn refuse(&mut self, key: StreamKey, now: Instant) {
        let Some(id) = self.id_of(key) else { return };
        self.stats.streams_refused += 1;
        self.writer.queue_rst(id, Reason::REFUSED_STREAM, Some(key));
        self.remember_reset(id);
        if self.streams.contains_key(&id) {
            self.remove_stream(id, now);
            self.events.push_back(ConnEvent::Reset {
                key,
                reason: Reason::REFUSED_STREAM,
                remote: false,
            });
        }
        self.waste(now);
    }

    /// A peer-opened stream's write quota (server side): its response DATA
    /// should wait on it (backpressure), and the writer replenishes it as
    /// the bytes go out. Taken at [`ConnEvent::Request`].
    pub fn write_quota(&self, key: StreamKey) -> Option<Arc<loopy::WriteQuota>> {
        let id = self.id_of(key)?;
        self.streams.get(&id).and_then(|r| r.quota.clone())
    }

    /// Resets a stream once our END_STREAM on it is written, if the peer
    /// is still sending by then: RST_STREAM(NO_ERROR) after a complete
    /// response stops a request body nobody will read (RFC 9113 §8.1), and
    /// a gRPC deadline sends its trailers before RST_STREAM(CANCEL). (A
    /// plain [`Connection::reset`] would drop output still queued.)
    pub fn reset_after_response(&mut self, key: StreamKey, reason: Reason, now: Instant) {
        let Some(id) = self.id_of(key) else { return };
        match self.streams.get(&id).map(|r| r.state) {
            // Our END_STREAM is out already: reset now.
            Some(StreamState::HalfClosedLocal) => self.reset(key, reason, now),
            Some(_) => {
                self.reset_after_end.insert(key, reason);
            }
            // Both sides done: nothing to stop.
            None => {}
        }
    }

    /// Sends a PING with `payload`; its ack comes back as [`ConnEvent::Pong`].
    pub fn ping(&mut self, payload: [u8; 8]) {
        self.writer.queue_ping(payload);
    }

    /// Starts a graceful shutdown. Server: GOAWAY(2^31−1) and a PING, then
    /// the final GOAWAY once the PING returns, then close when the streams
    /// finish or after the drain grace period. Client: GOAWAY and close
    /// when its streams finish.
    pub fn shutdown(&mut self, now: Instant) {
        if !self.lifecycle.may_start_drain() {
            return;
        }
        match self.role {
            Role::Server => {
                self.send_goaway(StreamId::MAX, Reason::NO_ERROR, b"");
                self.writer.queue_ping(DRAIN_PING);
                self.lifecycle.drain_announced();
            }
            Role::Client => {
                self.send_goaway(StreamId::ZERO, Reason::NO_ERROR, b"");
                self.lifecycle.final_goaway_sent(StreamId::ZERO);
            }
        }
        self.timers.set(Timer::Grace, now + self.config.drain_grace);
        self.maybe_done();
    }

    /// Ends the connection now with GOAWAY `reason` (e.g. the server is
    /// stopping hard).
    pub fn close(&mut self, reason: Reason, detail: &str) {
        if self.lifecycle.is_closed() {
            return;
        }
        let last = self.last_stream_for_goaway();
        self.send_goaway(last, reason, detail.as_bytes());
        self.finish(CloseReason::Aborted {
            reason,
            detail: detail.to_string(),
        });
    }

    /// The socket is gone: fails whatever is still queued (each stream with
    /// undelivered output gets a [`ConnEvent::Dropped`]), closes the control
    /// buffer so later puts are refused, and returns the items never drained.
    pub fn abandon(&mut self, now: Instant) -> Vec<Item> {
        let undelivered = self.writer.close();
        let events: Vec<Event> = self.writer.events().collect();
        for event in events {
            self.writer_event(event, now);
        }
        undelivered
    }

    /// The transport closed under us (EOF, reset, I/O error).
    pub fn handle_transport_closed(&mut self, detail: String) {
        self.finish(CloseReason::Transport(detail));
    }

    /// Produces the next batch of output (at least `budget` bytes if that
    /// much is pending). Call until `drained`.
    pub fn poll_transmit(&mut self, batch: &mut Batch, budget: usize, now: Instant) -> Written {
        let start = batch.len();
        if let Some(preface) = self.preface.take() {
            batch.put_slice(&preface);
            self.stats.initial_settings_sent = true;
        }
        let frames_before = self.writer.stats().frames_by_type;
        let mut written = self.writer.write(batch, budget);
        written.bytes = batch.len() - start;
        if written.bytes > 0 {
            self.stats.flushes += 1;
        }
        let frames_after = self.writer.stats().frames_by_type;
        // grpc-go: sending DATA or HEADERS resets the ping strikes.
        if frames_after.first() != frames_before.first()
            || frames_after.get(1) != frames_before.get(1)
        {
            self.reset_ping_strikes = true;
            self.sent_since_ping = true;
        }
        let events: Vec<Event> = self.writer.events().collect();
        for event in events {
            self.writer_event(event, now);
        }
        self.maybe_done();
        written
    }

    /// Handles expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.lifecycle.is_closed() {
            return;
        }
        let expired: Vec<Timer> = self.timers.expired(now).collect();
        for timer in expired {
            self.on_timer(timer, now);
        }
        self.maybe_done();
    }

    fn on_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::SettingsAck => {
                let last = self.last_stream_for_goaway();
                self.send_goaway(
                    last,
                    Reason::SETTINGS_TIMEOUT,
                    b"SETTINGS not acknowledged in time",
                );
                self.finish(CloseReason::SettingsTimeout);
            }
            Timer::Preface => {
                self.finish(CloseReason::Transport("no client preface in time".into()))
            }
            Timer::KeepalivePing => {
                let (time, timeout) = self.keepalive_times();
                let Some(time) = time else { return };
                let due = self.last_read + time;
                if due > now {
                    self.timers.set(Timer::KeepalivePing, due);
                } else if self.keepalive_allowed() {
                    self.writer.queue_ping(KEEPALIVE_PING);
                    self.keepalive_outstanding = true;
                    self.timers.set(Timer::KeepaliveTimeout, now + timeout);
                } else {
                    // Dormant: no streams and pings without them are off.
                    self.timers.set(Timer::KeepalivePing, now + time);
                }
            }
            Timer::KeepaliveTimeout => {
                if self.keepalive_outstanding {
                    self.finish(CloseReason::KeepaliveTimeout);
                }
            }
            Timer::Idle => {
                if self.streams.is_empty() {
                    self.shutdown(now);
                }
            }
            Timer::MaxAge => {
                self.shutdown(now);
                if let Some(grace) = self.config.server_keepalive.max_connection_age_grace {
                    self.timers.set(Timer::Grace, now + grace);
                } else {
                    self.timers.stop(Timer::Grace);
                }
            }
            Timer::Grace => self.finish(CloseReason::Done),
        }
    }

    /// (ping interval, ping timeout) for this role.
    fn keepalive_times(&self) -> (Option<Duration>, Duration) {
        match self.role {
            Role::Client => {
                let k = self.config.client_keepalive;
                (k.time.map(|t| t.max(Duration::from_secs(10))), k.timeout)
            }
            Role::Server => {
                let k = self.config.server_keepalive;
                (Some(k.time.max(Duration::from_secs(1))), k.timeout)
            }
        }
    }

    fn keepalive_allowed(&self) -> bool {
        match self.role {
            Role::Client => {
                !self.streams.is_empty() || self.config.client_keepalive.permit_without_stream
            }
            Role::Server => true,
        }
    }

    // --- helpers shared with recv.rs --------------------------------------

    /// Queues our GOAWAY (the caller records what it means in the
    /// lifecycle: a drain step, or the close that follows).
    fn send_goaway(&mut self, last: StreamId, reason: Reason, debug: &[u8]) {
        self.stats.goaways_out += 1;
        let goaway = GoAway {
            last_stream_id: last,
            reason,
            debug_data: bytes::Bytes::copy_from_slice(debug),
        };
        self.writer.queue_goaway(goaway);
    }

    /// A connection error: GOAWAY with the violation's code and text, then
    /// close.
    fn fail(&mut self, violation: ConnViolation) {
        if self.lifecycle.is_closed() {
            return;
        }
        let last = self.last_stream_for_goaway();
        let debug = violation.to_string();
        self.send_goaway(last, violation.reason(), debug.as_bytes());
        self.finish(CloseReason::LocalError(violation));
    }

    /// The last stream id our GOAWAY names: the highest the peer opened
    /// (a client is opened nothing: push is off).
    fn last_stream_for_goaway(&self) -> StreamId {
        match self.role {
            Role::Server => self.max_peer_stream,
            Role::Client => StreamId::ZERO,
        }
    }

    /// Ends the connection (the first reason stands) and reports it.
    fn finish(&mut self, reason: CloseReason) {
        if self.lifecycle.close(reason.clone()) {
            self.events
                .push_back(ConnEvent::ConnectionClosed { reason });
        }
    }

    fn id_of(&self, key: StreamKey) -> Option<StreamId> {
        match self.role {
            Role::Server => u32::try_from(key.0).ok().map(StreamId::new),
            Role::Client => self.key_ids.get(&key).copied(),
        }
    }

    fn inbound_action(&mut self, action: InboundAction, now: Instant) {
        match action {
            InboundAction::SendWindowUpdate(update) => self
                .writer
                .queue_window_update(update.stream_id, update.increment),
            InboundAction::SendPing(payload) => self.writer.queue_ping(payload),
            InboundAction::SendSettingsInitialWindow(window) => {
                let settings = Settings::new().with(SettingId::INITIAL_WINDOW_SIZE, window);
                self.settings_pending.push_back(settings.clone());
                self.writer.queue_settings(settings);
                if self.timers.get(Timer::SettingsAck).is_none() {
                    let at = now + self.config.settings_timeout;
                    self.timers.set(Timer::SettingsAck, at);
                }
            }
        }
    }

    fn writer_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Opened { key, id } => {
                self.key_ids.insert(key, id);
                let record = StreamRecord {
                    key,
                    state: StreamState::Open,
                    recv: self.inbound.new_stream(),
                    content_length: ContentLength::new(None),
                    response_seen: false,
                    opened_at: now,
                    quota: None,
                };
                self.streams.insert(id, record);
                self.stats.streams_opened += 1;
                self.timers.stop(Timer::Idle);
                self.events.push_back(ConnEvent::Opened { key, id });
            }
            Event::Finished { key } => {
                self.events.push_back(ConnEvent::Sent { key });
                if let Some(id) = self.id_of(key) {
                    self.end_stream(id, Side::Local, now);
                    if let Some(reason) = self.reset_after_end.remove(&key) {
                        if self.streams.contains_key(&id) {
                            self.reset(key, reason, now);
                        }
                    }
                }
            }
            Event::Dropped {
                key, cause, opened, ..
            } => {
                let record = self.id_of(key).filter(|id| self.streams.contains_key(id));
                if opened && record.is_none() {
                    return; // already reported when the record went
                }
                if let Some(id) = record {
                    if let DropCause::Reset(_) | DropCause::FlowControl = cause {
                        // We sent RST_STREAM: the peer's frames in flight
                        // are ignored, not answered (§5.1 closed).
                        self.remember_reset(id);
                    }
                    self.remove_stream(id, now);
                }
                if let DropCause::Reset(_) | DropCause::FlowControl = cause {
                    self.stats.streams_reset_local += 1;
                }
                if let DropCause::FlowControl = cause {
                    // The peer overflowed the stream's send window.
                    self.peer_fault_reset(now);
                }
                self.events
                    .push_back(ConnEvent::Dropped { key, cause, opened });
            }
            Event::PingSent { payload } => {
                self.stats.pings_out += 1;
                self.inbound.on_ping_sent(payload, now);
            }
        }
    }

    /// `side` finished sending on stream `id`; drop the record when both have.
    fn end_stream(&mut self, id: StreamId, side: Side, now: Instant) {
        let Some(record) = self.streams.get_mut(&id) else {
            return;
        };
        match record.state.end(side) {
            Some(state) => record.state = state,
            None => {
                let key = record.key;
                // A stream that did its work offsets one early reset.
                self.resets.forgive();
                self.remove_stream(id, now);
                if self.role == Role::Client {
                    self.writer.cleanup(key);
                }
                self.events.push_back(ConnEvent::Closed { key });
            }
        }
    }

    /// Drops a stream's record and its accounting.
    fn remove_stream(&mut self, id: StreamId, now: Instant) {
        let Some(record) = self.streams.remove(&id) else {
            return;
        };
        self.reset_after_end.remove(&record.key);
        self.recent_closed.push(id);
        self.key_ids.remove(&record.key);
        self.buffered_bytes = self
            .buffered_bytes
            .saturating_sub(record.recv.unconsumed() as usize);
        if self.is_peer_stream(id) {
            self.peer_streams = self.peer_streams.saturating_sub(1);
        }
        if self.streams.is_empty() {
            if let Some(idle) = self.config.server_keepalive.max_connection_idle {
                if self.role == Role::Server {
                    self.timers.set(Timer::Idle, now + idle);
                }
            }
        }
        // The connection's end (maybe_done) is decided at the end of each
        // handle_*/poll_* call, after the events that lead to it.
    }

    /// Resets stream `id` because of a stream error we found: the peer's
    /// fault, so it costs from the wasted-frames budget and counts as the
    /// peer's reset.
    fn reset_stream(&mut self, id: StreamId, reason: Reason, now: Instant) {
        self.peer_fault_reset(now);
        if self.lifecycle.is_closed() {
            return;
        }
        let key = self.streams.get(&id).map(|r| r.key);
        self.writer.queue_rst(id, reason, key);
        self.remember_reset(id);
        self.stats.streams_reset_local += 1;
        if let Some(record) = self.streams.get(&id) {
            let key = record.key;
            self.remove_stream(id, now);
            self.events.push_back(ConnEvent::Reset {
                key,
                reason,
                remote: false,
            });
        }
    }

    fn remember_reset(&mut self, id: StreamId) {
        self.recent_resets.push(id);
    }

    fn is_peer_stream(&self, id: StreamId) -> bool {
        match self.role {
            Role::Server => id.is_client_initiated(),
            Role::Client => id.is_server_initiated(),
        }
    }

    /// After GOAWAY (either way) the connection ends when no stream is left.
    fn maybe_done(&mut self) {
        if self.lifecycle.going_away() && self.streams.is_empty() {
            self.finish(CloseReason::Done);
        }
    }

    fn read_activity(&mut self, now: Instant) {
        self.last_read = now;
        if self.keepalive_outstanding {
            self.keepalive_outstanding = false;
            self.timers.stop(Timer::KeepaliveTimeout);
        }
        // grpc-go: the next keepalive ping is one interval after the last
        // read (the fired timer re-arms itself; after a ping it is re-armed
        // here, once the peer answers).
        if let (Some(time), _) = self.keepalive_times() {
            if self.timers.get(Timer::KeepalivePing).is_none() {
                self.timers.set(Timer::KeepalivePing, now + time);
            }
        }
    }

    /// Feeds bytes read from the socket. Whole frames are consumed from
    /// `buf`; a partial frame stays for the next call. Stops early (leaving
    /// bytes in `buf`) when [`Connection::wants_read`] turns false; call
    /// again once it is true.
    pub fn handle_read(&mut self, buf: &mut BytesMut, now: Instant) {
        let before = buf.len();
        self.read_activity(now);
        self.read_frames(buf, now);
        self.stats.bytes_in += (before - buf.len()) as u64;
        self.maybe_done();
    }
}

/// `d` ± 10 %, from a seed (grpc-go jitters MaxConnectionAge the same way).
fn jitter(d: Duration, seed: u64) -> Duration {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let fraction = (x % 2001) as f64 / 10_000.0 - 0.1; // -0.1 ..= 0.1
    d.mul_f64(1.0 + fraction)
}

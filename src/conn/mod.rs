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
//! - Application commands: typed [`Command`]s (open a stream, send
//!   headers, data, trailers, reset), sent holding the connection with
//!   [`Connection::send`] or from any thread through its [`Inbox`]
//!   ([`Connection::inbox`]); refusals are a typed [`SendError`]. Holding
//!   the connection also: [`Connection::release_capacity`],
//!   [`Connection::reset`], [`Connection::reset_after_response`],
//!   [`Connection::take_slot`], [`Connection::ping`],
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
//!
//! # Parts
//!
//! `Connection` holds one part per concern, each in its own file with its
//! invariants: `recv.rs` (the receive path: frames checked against the
//! connection and stream state and dispatched), `streams.rs` (stream
//! records, keys and ids, recently closed streams), `settings.rs` (the
//! SETTINGS exchange), `keepalive.rs` (keepalive pings and their
//! enforcement), `limits.rs` (the abuse limits), `lifecycle.rs` (handshake,
//! GOAWAYs, the end), `timer.rs` (deadlines). The writer ([`loopy::Writer`])
//! is the send side; the receive path and the timers call it directly, and
//! the control buffer carries only the application's commands from other
//! threads.
//!
//! # Layering
//!
//! This module is the line below which loopy lives. `command.rs` turns
//! conn's [`Command`]s into loopy's items, here and nowhere else; the data
//! types the layers above need are re-exported from here ([`StreamKey`],
//! [`WriteQuota`] and [`QuotaError`], [`Wake`], [`DropCause`],
//! [`RequestHead`] and [`ResponseHead`], …). The server, the client and
//! the HTTP layer name nothing from `loopy` nor from this module's
//! internals: in a session callback they use the `&mut Connection` they are
//! handed and its typed methods; elsewhere, the runtime's `ConnHandle`
//! (typed commands and a few narrow operations, never the connection
//! itself). [`Connection::buffer`] (loopy's control buffer, raw items) is
//! for tests and tools that drive the lower layers by hand.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod command;
mod config;
mod event;
mod head;
mod keepalive;
mod lifecycle;
mod limits;
mod recent;
mod recv;
mod settings;
mod slots;
mod state;
mod stats;
mod streams;
mod timer;
pub mod validate;
mod violation;

pub use command::{Command, Inbox, SendError};
pub use config::{
    AbuseLimits, ClientKeepalive, ConnConfig, EnforcementPolicy, RateLimit, ServerKeepalive,
};
pub use event::{CloseReason, ConnEvent};
pub use head::{RequestHead, ResponseHead};
// The data types of loopy's that the layers above name (stream keys, write
// quotas and their budget, wake-ups, why a stream was dropped, the
// connection's role): theirs through here, never from `loopy` directly.
pub use loopy::{
    DropCause, InboundConfig, NoWake, QuotaError, Role, SendBudget, StreamKey, Wake, WriteQuota,
    DEFAULT_WRITE_QUOTA,
};
pub use slots::Slot;
pub use state::{Side, StreamState};
pub use stats::{ConnStats, FrameCounts};
pub use timer::Timer;
pub use violation::{AbuseLimit, ConnViolation};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use framer::{Decoder, DecoderConfig, Reason};
use loopy::{Batch, ControlBuffer, Event, InboundAction, InboundFlow, Item, Writer, Written};

use keepalive::Keepalive;
use lifecycle::Lifecycle;
use limits::AbuseCounters;
use settings::SettingsSync;
use slots::Admission;
use streams::Streams;
use timer::TimerTable;

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
    /// The framer's decoder, with the HPACK decoder.
    decoder: Decoder,
    /// The send side: windows, queues, the HPACK encoder.
    writer: Writer,
    /// The inbox for the application's commands from other threads.
    buffer: Arc<ControlBuffer>,
    streams: Streams,
    /// Receive windows and BDP estimation.
    inbound: InboundFlow,
    settings: SettingsSync,
    timers: TimerTable,
    keepalive: Keepalive,
    abuse: AbuseCounters,
    events: VecDeque<ConnEvent>,
    /// Server: the cap on requests the application still works on.
    admission: Admission,
    /// Response bytes queued on this connection (server streams' quotas
    /// draw on it, and on the shared budget if configured).
    send_budget: SendBudget,
    stats: ConnStats,
    /// Drives the MaxConnectionAge jitter.
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
        let admission = Admission::new(config.max_concurrent_streams, waker.clone());
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
            streams: Streams::new(role),
            inbound,
            settings: SettingsSync::default(),
            timers: TimerTable::default(),
            keepalive: Keepalive::new(now),
            abuse: AbuseCounters::default(),
            events: VecDeque::new(),
            admission,
            send_budget: SendBudget::new(config.max_queued_bytes),
            stats: ConnStats::default(),
            seed,
            config,
        };
        conn.start(now);
        conn
    }

    fn start(&mut self, now: Instant) {
        self.start_settings(now);
        for action in self.inbound.start() {
            self.inbound_action(action, now);
        }
        self.start_keepalive(now);
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

    /// The control buffer itself, loopy's layer: tests and tools that
    /// drive the lower layers put [`Item`]s here. The layers above use
    /// [`Connection::send`] and [`Connection::inbox`].
    pub fn buffer(&self) -> &Arc<ControlBuffer> {
        &self.buffer
    }

    /// The inbox through which other threads send this connection
    /// [`Command`]s.
    pub fn inbox(&self) -> Inbox {
        Inbox::new(self.buffer.clone())
    }

    /// Sends `command` on one of the connection's streams: written by the
    /// next [`Connection::poll_transmit`], in order with what other threads
    /// sent through the [`Inbox`] before it.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the connection is closed;
    /// [`SendError::HeaderListTooLarge`] for headers over the peer's
    /// SETTINGS_MAX_HEADER_LIST_SIZE. Nothing is queued either way.
    pub fn send(&mut self, command: Command) -> Result<(), SendError> {
        Ok(self.buffer.put(command.into())?)
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The counters.
    pub fn stats(&self) -> ConnStats {
        let mut stats = self.stats;
        let w = self.writer.stats();
        stats.frames_out = FrameCounts::from_array(&w.frames_by_type);
        stats.bytes_out_by_type = FrameCounts::from_array(&w.bytes_by_type);
        // Our first SETTINGS goes out with the preface, past the writer.
        stats.frames_out.settings += u64::from(self.stats.initial_settings_sent);
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
            && !self.admission.is_holding()
            && self.writer.wants_read()
            && self.streams.buffered() < self.config.limits.max_buffered_bytes
    }

    /// True once the connection is over: write out the last batch, then
    /// close the socket.
    pub fn is_finished(&self) -> bool {
        self.lifecycle.is_closed()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        // A request held for a slot comes once one frees (reading stopped
        // right after it, so nothing follows it).
        self.admission.sweep();
        let event = self.events.pop_front().or_else(|| {
            let released = self.admission.release();
            if released.is_some() {
                self.stats.requests_released += 1;
            }
            released
        })?;
        if let ConnEvent::Request { id, .. } = &event {
            self.admission.delivered(StreamKey::from(*id));
        }
        Some(event)
    }

    /// Server: the handler slot of the request on `key`
    /// ([`ConnEvent::Request`]), for the application to hold until its
    /// handler returns, whoever resets the stream. A slot not taken is
    /// freed with the stream. The connection reports at most
    /// MAX_CONCURRENT_STREAMS requests whose slots are taken; past that it
    /// holds the next request and stops reading until one is dropped.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Instant;
    /// # use mio_grpc::conn::{ConnConfig, ConnEvent, Connection};
    /// # use mio_grpc::conn::{NoWake, Role, StreamKey};
    /// let mut conn = Connection::new(Role::Server, ConnConfig::default(), Arc::new(NoWake), Instant::now(), 1);
    /// // On ConnEvent::Request { id, .. }: `let slot = conn.take_slot(StreamKey::from(id));`,
    /// // moved into the handler's job and dropped when it returns.
    /// assert!(conn.take_slot(StreamKey(1)).is_none());
    /// ```
    pub fn take_slot(&mut self, key: StreamKey) -> Option<Slot> {
        self.admission.take(key)
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
        self.streams.released(n);
        let Some(id) = self.streams.id_of(key) else {
            return;
        };
        if let Some(record) = self.streams.get_mut(id) {
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
        let Some(id) = self.streams.id_of(key) else {
            // A client stream not opened yet: it never will be.
            self.writer.reset(key, reason);
            return;
        };
        // By id, not by key: a server stream whose END_STREAM is out has
        // left the writer, and the frame must still be sent.
        self.writer.queue_rst(id, reason, Some(key));
        self.streams.remember_reset(id);
        if self.streams.contains(id) {
            self.stats.streams_reset_local += 1;
            self.remove_stream(id, now);
            self.events.push_back(ConnEvent::Reset {
                key,
                reason,
                remote: false,
            });
        }
    }

    /// A peer-opened stream's write quota (server side): its response DATA
    /// should wait on it (backpressure), and the writer replenishes it as
    /// the bytes go out. Taken at [`ConnEvent::Request`].
    pub fn write_quota(&self, key: StreamKey) -> Option<Arc<WriteQuota>> {
        let id = self.streams.id_of(key)?;
        self.streams.get(id).and_then(|r| r.quota.clone())
    }

    /// Resets a stream once our END_STREAM on it is written, if the peer
    /// is still sending by then: RST_STREAM(NO_ERROR) after a complete
    /// response stops a request body nobody will read (RFC 9113 §8.1), and
    /// a gRPC deadline sends its trailers before RST_STREAM(CANCEL). (A
    /// plain [`Connection::reset`] would drop output still queued.)
    pub fn reset_after_response(&mut self, key: StreamKey, reason: Reason, now: Instant) {
        let Some(id) = self.streams.id_of(key) else {
            return;
        };
        match self.streams.get(id).map(|r| r.state) {
            // Our END_STREAM is out already: reset now.
            Some(StreamState::HalfClosedLocal) => self.reset(key, reason, now),
            Some(_) => self.streams.reset_after_end(key, reason),
            // Both sides done: nothing to stop.
            None => {}
        }
    }

    /// Sends a PING with `payload`; its ack comes back as [`ConnEvent::Pong`].
    pub fn ping(&mut self, payload: [u8; 8]) {
        self.writer.queue_ping(payload);
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

    /// Feeds bytes read from the socket. Whole frames are consumed from
    /// `buf`; a partial frame stays for the next call. Stops early (leaving
    /// bytes in `buf`) when [`Connection::wants_read`] turns false; call
    /// again once it is true.
    pub fn handle_read(&mut self, buf: &mut BytesMut, now: Instant) {
        // Slots of requests the application saw and did not take go now:
        // they may be what lets the next request in.
        self.admission.sweep();
        let before = buf.len();
        self.read_activity(now);
        self.read_frames(buf, now);
        self.stats.bytes_in += (before - buf.len()) as u64;
        self.maybe_done();
    }

    /// Produces the next batch of output (at least `budget` bytes if that
    /// much is pending). Call until `drained`.
    pub fn poll_transmit(&mut self, batch: &mut Batch, budget: usize, now: Instant) -> Written {
        let start = batch.len();
        if let Some(preface) = self.settings.take_preface() {
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
            self.keepalive.stream_frames_sent();
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
            Timer::KeepalivePing => self.on_keepalive_timer(now),
            Timer::KeepaliveTimeout => self.on_keepalive_timeout(),
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

    /// What inbound flow control asks for: a WINDOW_UPDATE, a BDP PING, a
    /// larger initial window.
    fn inbound_action(&mut self, action: InboundAction, now: Instant) {
        match action {
            InboundAction::SendWindowUpdate(update) => self
                .writer
                .queue_window_update(update.stream_id, update.increment),
            InboundAction::SendPing(payload) => self.writer.queue_ping(payload),
            InboundAction::SendSettingsInitialWindow(window) => {
                self.send_initial_window(window, now)
            }
        }
    }

    /// What the writer reports.
    fn writer_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Opened { key, id } => self.local_stream_opened(key, id, now),
            Event::Finished { key } => self.local_stream_finished(key, now),
            Event::Dropped {
                key, cause, opened, ..
            } => self.stream_dropped(key, cause, opened, now),
            Event::PingSent { payload } => {
                self.stats.pings_out += 1;
                self.inbound.on_ping_sent(payload, now);
            }
        }
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

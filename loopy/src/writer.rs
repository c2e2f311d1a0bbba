//! `Writer`: the loopy writer (grpc-go's `loopyWriter`), sans-IO.
//!
//! Commands reach it two ways: the application's [`Item`]s through the
//! [`ControlBuffer`] (from any thread), and the connection's own through
//! direct method calls (`commands.rs`: the peer's SETTINGS, WINDOW_UPDATE
//! and GOAWAY applied, our control frames queued, streams registered and
//! cleaned up). Each direct command first applies whatever was already in
//! the buffer, so the two ways keep one order: a command never overtakes an
//! item put before it.
//!
//! Each [`Writer::write`] drains the control buffer, applies the items, and
//! fills one [`Batch`] up to a byte budget, taking frames from strict
//! classes in order (nghttp2's `pop_next_ob_item`):
//!
//! 1. urgent control: SETTINGS ack, PING ack;
//! 2. other control: SETTINGS, PING, WINDOW_UPDATE, RST_STREAM, GOAWAY;
//! 3. client only: stream-opening HEADERS, while open streams are below
//!    the peer's MAX_CONCURRENT_STREAMS, in the order streams were put,
//!    with ids assigned now (so ids on the wire only grow);
//! 4. stream output, round-robin over the active list: one frame per
//!    stream per turn (HEADERS, trailers, or one DATA frame of at most
//!    min(peer MAX_FRAME_SIZE, stream window, connection window, queued)).
//!
//! HPACK encoding happens here, at the moment a HEADERS frame goes into
//! the batch, so encoder order is wire order.
//!
//! Flood control: the frames the peer makes us send (SETTINGS ack, PING
//! ack, RST_STREAM in response) are counted from the command until they
//! are in a write batch; past the limit [`Writer::wants_read`] turns false
//! and the connection stops reading until they are written. They are
//! control frames, written before any DATA, so the throttle lifts as soon
//! as the socket takes bytes: it cannot deadlock on our own windows.
//!
//! Streams are named by [`StreamKey`]; the map between keys and stream ids
//! belongs to the connection, which passes the key with every command on a
//! stream. The writer only knows each of its streams' own id (assigned
//! here when a client stream opens).

mod commands;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use framer::{Data, Encoder, Frame, HeaderBlock, Headers, Ping, Reason, RstStream, StreamId};

use crate::hash::KeyMap;
use crate::stream::{Chunk, OutStream, SendState};
use crate::{Batch, ControlBuffer, DropCause, Event, Item, StreamKey, WriterStats, Written};

/// The largest flow-control window, 2^31 − 1 (RFC 9113 §6.9.1).
const MAX_WINDOW: i64 = crate::MAX_WINDOW_SIZE as i64;

/// The initial send window of the connection and of every stream before
/// the peer's SETTINGS say otherwise (RFC 9113 §6.9.2).
const DEFAULT_WINDOW: i64 = crate::DEFAULT_WINDOW_SIZE as i64;

/// The default limit on queued transport responses before reading stops
/// (grpc-go uses 50; the issue's default is 100).
pub const DEFAULT_MAX_TRANSPORT_RESPONSES: usize = 100;

/// Which end of the connection this writer serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opens streams (odd ids, assigned at write time).
    Client,
    /// Answers streams the peer opened.
    Server,
}

/// The outbound half of one HTTP/2 connection.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use framer::hpack::HeaderField;
/// use loopy::{Batch, ControlBuffer, Event, Item, NoWake, Role, Writer};
///
/// let buffer = Arc::new(ControlBuffer::new(Arc::new(NoWake)));
/// let mut writer = Writer::new(Role::Client, buffer.clone());
/// let key = buffer.new_stream_key();
/// let fields = vec![HeaderField::new(":method", "POST"), HeaderField::new(":path", "/svc/M")];
/// buffer.put(Item::Open { key, fields, end_stream: false, quota: None }).unwrap();
/// buffer.put(Item::Data { key, data: Bytes::from_static(b"hi"), end_stream: true }).unwrap();
///
/// let mut batch = Batch::new();
/// let written = writer.write(&mut batch, 64 * 1024);
/// assert!(written.drained);
/// assert_eq!(written.frames, 2); // HEADERS, DATA with END_STREAM
/// let events: Vec<Event> = writer.events().collect();
/// assert!(matches!(events[0], Event::Opened { .. }));
/// assert!(matches!(events[1], Event::Finished { .. }));
/// ```
pub struct Writer {
    role: Role,
    buffer: Arc<ControlBuffer>,
    encoder: Encoder,
    inbox: VecDeque<Item>,
    peer_initial_window: i64,
    peer_max_concurrent: u32,
    conn_window: i64,
    streams: KeyMap<StreamKey, OutStream>,
    active: VecDeque<StreamKey>,
    conn_blocked: VecDeque<StreamKey>,
    pending_open: VecDeque<StreamKey>,
    /// Client streams counted against the peer's MAX_CONCURRENT_STREAMS.
    open_count: u32,
    next_id: u32,
    /// Set once no stream may be opened any more (GOAWAY either way).
    no_new_streams: Option<DropCause>,
    urgent: VecDeque<Frame>,
    /// Control frames, each marked if it is a transport response.
    control: VecDeque<(Frame, bool)>,
    /// Transport responses queued and not yet in a write batch.
    responses: usize,
    /// Past this many queued responses, [`Writer::wants_read`] is false.
    max_responses: usize,
    events: Vec<Event>,
    stats: WriterStats,
    /// A connection error was returned: the connection is ending, so the
    /// peer's settings, window updates and GOAWAY are no longer applied
    /// (only the GOAWAY and whatever else is queued still goes out).
    broken: bool,
    /// [`Writer::close`] was called: direct commands are ignored, as puts
    /// into the finished buffer are refused.
    closed: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("role", &self.role)
            .field("streams", &self.streams.len())
            .field("conn_window", &self.conn_window)
            .field("open_count", &self.open_count)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer for `role`, draining `buffer`, with the RFC's initial peer
    /// settings (65,535-byte windows, 16 KiB frames, no stream limit) and
    /// the default flood limit ([`DEFAULT_MAX_TRANSPORT_RESPONSES`]).
    pub fn new(role: Role, buffer: Arc<ControlBuffer>) -> Writer {
        Writer {
            role,
            buffer,
            encoder: Encoder::new(),
            inbox: VecDeque::new(),
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_concurrent: u32::MAX,
            conn_window: DEFAULT_WINDOW,
            streams: KeyMap::default(),
            active: VecDeque::new(),
            conn_blocked: VecDeque::new(),
            pending_open: VecDeque::new(),
            open_count: 0,
            next_id: 1,
            no_new_streams: None,
            urgent: VecDeque::new(),
            control: VecDeque::new(),
            responses: 0,
            max_responses: DEFAULT_MAX_TRANSPORT_RESPONSES,
            events: Vec::new(),
            stats: WriterStats::default(),
            broken: false,
            closed: false,
        }
    }

    /// The same writer with `max` queued transport responses allowed before
    /// [`Writer::wants_read`] turns false.
    pub fn with_response_limit(mut self, max: usize) -> Writer {
        self.max_responses = max;
        self
    }

    /// True when the connection may read more from the peer: fewer
    /// transport responses (SETTINGS and PING acks, RST_STREAM in
    /// response) are queued than the flood limit.
    pub fn wants_read(&self) -> bool {
        self.responses < self.max_responses
    }

    /// Transport responses queued and not yet in a write batch.
    pub fn transport_responses(&self) -> usize {
        self.responses
    }

    /// The control buffer this writer drains.
    pub fn buffer(&self) -> &Arc<ControlBuffer> {
        &self.buffer
    }

    /// The events since the last call, in order.
    pub fn events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// The send-side counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The connection send window.
    pub fn connection_window(&self) -> i64 {
        self.conn_window
    }

    /// A stream's send window, if loopy knows the stream.
    pub fn stream_window(&self, key: StreamKey) -> Option<i64> {
        self.streams.get(&key).map(|s| s.window)
    }

    /// A stream's scheduling state, if loopy knows the stream.
    pub fn stream_state(&self, key: StreamKey) -> Option<SendState> {
        self.streams.get(&key).map(|s| s.state)
    }

    /// Streams loopy holds a record for.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Client streams open against the peer's MAX_CONCURRENT_STREAMS.
    pub fn open_streams(&self) -> u32 {
        self.open_count
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS in force.
    pub fn peer_max_concurrent_streams(&self) -> u32 {
        self.peer_max_concurrent
    }

    /// Client streams waiting for a slot under MAX_CONCURRENT_STREAMS.
    pub fn waiting_streams(&self) -> usize {
        self.pending_open
            .iter()
            .filter(|k| {
                self.streams
                    .get(k)
                    .is_some_and(|s| s.state == SendState::Pending)
            })
            .count()
    }

    /// The id the next client stream will get (for a connection that rolls
    /// over before the id space runs out).
    pub fn next_stream_id(&self) -> u32 {
        self.next_id
    }

    /// Drains the control buffer, applies its items, and appends frames to
    /// `batch` until it has grown by at least `budget` bytes or nothing
    /// more can be written. Events are collected for [`Writer::events`].
    pub fn write(&mut self, batch: &mut Batch, budget: usize) -> Written {
        self.stats.writes += 1;
        self.pull();
        let start = batch.len();
        let mut frames = 0;
        let mut responses = 0;
        let drained = loop {
            if batch.len() - start >= budget {
                break false;
            }
            if let Some(frame) = self.urgent.pop_front() {
                self.put_frame(&frame, batch);
                responses += 1;
            } else if let Some((frame, response)) = self.control.pop_front() {
                self.put_frame(&frame, batch);
                responses += usize::from(response);
            } else if self.open_next(batch) || self.write_stream_frame(batch) {
            } else {
                break true;
            }
            frames += 1;
        };
        self.responses = self.responses.saturating_sub(responses);
        #[cfg(debug_assertions)]
        self.check_invariants();
        let bytes = batch.len() - start;
        self.stats.bytes += bytes as u64;
        Written {
            bytes,
            frames,
            drained,
        }
    }

    /// Closes the writer: every stream with undelivered output gets a
    /// [`DropCause::Closed`] event, every write quota is closed, and the
    /// control buffer is finished; its undelivered items are returned.
    pub fn close(&mut self) -> Vec<Item> {
        self.closed = true;
        let keys: Vec<StreamKey> = self.streams.keys().copied().collect();
        for key in keys {
            self.drop_stream(key, DropCause::Closed);
        }
        let mut undelivered: Vec<Item> = self.inbox.drain(..).collect();
        undelivered.extend(self.buffer.finish());
        undelivered
    }

    // --- applying items -------------------------------------------------

    /// Applies everything in the control buffer, in put order; marks the
    /// consumer waiting if there was nothing.
    fn pull(&mut self) {
        self.buffer.drain_into(&mut self.inbox);
        self.apply_inbox();
    }

    /// Applies everything in the control buffer before a direct command, so
    /// the command keeps its place in put order (the consumer is at work:
    /// not marked waiting).
    fn catch_up(&mut self) {
        self.buffer.take_pending(&mut self.inbox);
        self.apply_inbox();
    }

    fn apply_inbox(&mut self) {
        while let Some(item) = self.inbox.pop_front() {
            self.apply(item);
        }
    }

    fn apply(&mut self, item: Item) {
        match item {
            Item::Open {
                key,
                fields,
                end_stream,
                quota,
            } => {
                if self.role != Role::Client || self.streams.contains_key(&key) {
                    self.refuse(key, DropCause::Invalid, quota.as_deref(), end_stream);
                    return;
                }
                if let Some(cause) = self.no_new_streams {
                    self.refuse(key, cause, quota.as_deref(), end_stream);
                    return;
                }
                let mut stream = OutStream::new(None, self.peer_initial_window, quota);
                stream
                    .queue
                    .push_back(Chunk::Headers { fields, end_stream });
                stream.end_queued = end_stream;
                self.streams.insert(key, stream);
                self.pending_open.push_back(key);
            }
            Item::Headers {
                key,
                fields,
                end_stream,
            } => {
                self.enqueue(key, Chunk::Headers { fields, end_stream });
            }
            Item::Data {
                key,
                data,
                end_stream,
            } => self.enqueue(key, Chunk::Data { data, end_stream }),
            Item::Reset { key, reason } => self.reset_stream(key, reason),
        }
    }

    /// Resets a stream of ours: RST_STREAM if it has an id, then its queue
    /// is purged and reported.
    fn reset_stream(&mut self, key: StreamKey, reason: Reason) {
        if let Some(id) = self.streams.get(&key).and_then(|s| s.id) {
            self.control
                .push_back((RstStream::new(id, reason).into(), false));
        }
        self.drop_stream(key, DropCause::Reset(reason));
    }

    /// Reports an item for a stream that cannot take it.
    fn refuse(
        &mut self,
        key: StreamKey,
        cause: DropCause,
        quota: Option<&crate::WriteQuota>,
        end_stream: bool,
    ) {
        if let Some(quota) = quota {
            quota.close();
        }
        self.events.push(Event::Dropped {
            key,
            cause,
            opened: false,
            bytes: 0,
            end_stream,
        });
    }

    fn enqueue(&mut self, key: StreamKey, chunk: Chunk) {
        let Some(stream) = self.streams.get_mut(&key).filter(|s| !s.end_queued) else {
            let (bytes, end_stream) = (chunk.len(), chunk.end_stream());
            let opened = self.streams.get(&key).is_some_and(|s| s.id.is_some());
            self.events.push(Event::Dropped {
                key,
                cause: DropCause::Invalid,
                opened,
                bytes,
                end_stream,
            });
            return;
        };
        stream.queued_bytes += chunk.len();
        stream.end_queued = chunk.end_stream();
        stream.queue.push_back(chunk);
        if stream.state == SendState::Empty {
            stream.state = stream.ready_state();
            match stream.state {
                SendState::Active => self.active.push_back(key),
                SendState::WaitingOnWindow => self.stats.stream_window_stalls += 1,
                _ => {}
            }
        }
    }

    fn set_initial_window(&mut self, new: i64) -> Result<(), crate::ConnectionError> {
        let delta = new - self.peer_initial_window;
        self.peer_initial_window = new;
        if delta == 0 {
            return Ok(());
        }
        for (key, stream) in self.streams.iter_mut() {
            // §6.9.2: the delta applies to every stream's window, and may
            // make it negative; exceeding 2^31-1 is a connection error.
            stream.window += delta;
            if stream.window > MAX_WINDOW {
                return Err(crate::ConnectionError {
                    reason: Reason::FLOW_CONTROL_ERROR,
                    detail: "SETTINGS_INITIAL_WINDOW_SIZE overflowed a stream send window",
                });
            }
            let was = stream.state;
            if matches!(was, SendState::Active | SendState::WaitingOnWindow) {
                stream.state = stream.ready_state();
                if was == SendState::WaitingOnWindow && stream.state == SendState::Active {
                    self.active.push_back(*key);
                }
            }
        }
        if delta < 0 {
            let streams = &self.streams;
            self.active
                .retain(|k| streams.get(k).is_some_and(|s| s.state == SendState::Active));
        }
        Ok(())
    }

    fn stop_opening(&mut self, cause: DropCause) {
        self.no_new_streams.get_or_insert(cause);
        while let Some(key) = self.pending_open.pop_front() {
            if self
                .streams
                .get(&key)
                .is_some_and(|s| s.state == SendState::Pending)
            {
                self.drop_stream(key, cause);
            }
        }
    }

    /// Removes a stream, reporting anything it had not written, closing its
    /// quota and releasing its concurrency slot. Stale list entries are
    /// skipped when they come up.
    fn drop_stream(&mut self, key: StreamKey, cause: DropCause) {
        let Some(stream) = self.streams.remove(&key) else {
            if !matches!(cause, DropCause::Cleanup | DropCause::Closed) {
                self.events.push(Event::Dropped {
                    key,
                    cause: DropCause::Invalid,
                    opened: false,
                    bytes: 0,
                    end_stream: false,
                });
            }
            return;
        };
        if stream.counted {
            self.open_count = self.open_count.saturating_sub(1);
        }
        if let Some(quota) = &stream.quota {
            quota.close();
        }
        let unsent = !stream.queue.is_empty() || (stream.end_queued && !stream.end_sent);
        if unsent || !stream.end_sent && !matches!(cause, DropCause::Cleanup) {
            self.stats.streams_dropped += 1;
            self.events.push(Event::Dropped {
                key,
                cause,
                opened: stream.id.is_some(),
                bytes: stream.queued_bytes,
                end_stream: stream.end_queued,
            });
        }
    }

    fn release_conn_blocked(&mut self) {
        while let Some(key) = self.conn_blocked.pop_front() {
            if let Some(stream) = self.streams.get_mut(&key) {
                if stream.state == SendState::WaitingOnConnection {
                    stream.state = stream.ready_state();
                    if stream.state == SendState::Active {
                        self.active.push_back(key);
                    }
                }
            }
        }
    }

    // --- writing --------------------------------------------------------

    fn put_frame(&mut self, frame: &Frame, batch: &mut Batch) {
        let tail = batch.tail_mut();
        let before = tail.len();
        self.encoder.encode(frame, tail);
        let added = tail.len() - before;
        batch.grew(added);
        if let Some(slot) = self
            .stats
            .frames_by_type
            .get_mut(usize::from(frame.kind().to_u8()))
        {
            *slot += 1;
        }
        if let Frame::Ping(Ping {
            ack: false,
            payload,
        }) = frame
        {
            self.events.push(Event::PingSent { payload: *payload });
        }
    }

    /// Class 3: opens the oldest pending client stream if a slot is free.
    fn open_next(&mut self, batch: &mut Batch) -> bool {
        if self.open_count >= self.peer_max_concurrent {
            return false;
        }
        while let Some(key) = self.pending_open.pop_front() {
            if !self
                .streams
                .get(&key)
                .is_some_and(|s| s.state == SendState::Pending)
            {
                continue; // reset while waiting
            }
            if self.next_id > StreamId::MAX.value() {
                self.drop_stream(key, DropCause::StreamIdsExhausted);
                continue;
            }
            let id = StreamId::new(self.next_id);
            self.next_id += 2;
            self.open_count += 1;
            self.stats.streams_started += 1;
            if let Some(stream) = self.streams.get_mut(&key) {
                stream.id = Some(id);
                stream.counted = true;
                stream.state = SendState::Active;
            }
            self.events.push(Event::Opened { key, id });
            // The HEADERS chunk is at the front: write it now.
            self.write_front(key, batch);
            return true;
        }
        false
    }

    /// Class 4: one frame from the stream at the head of the active list.
    fn write_stream_frame(&mut self, batch: &mut Batch) -> bool {
        while let Some(key) = self.active.pop_front() {
            let Some(stream) = self.streams.get_mut(&key) else {
                continue;
            };
            if stream.state != SendState::Active {
                continue;
            }
            let blocked_on_conn =
                self.conn_window <= 0 && stream.queue.front().is_some_and(Chunk::needs_window);
            if blocked_on_conn {
                stream.state = SendState::WaitingOnConnection;
                self.conn_blocked.push_back(key);
                self.stats.connection_window_stalls += 1;
                continue;
            }
            self.write_front(key, batch);
            return true;
        }
        false
    }

    /// Writes one frame from the front of an opened stream's queue (the
    /// caller checked the windows) and reschedules the stream.
    fn write_front(&mut self, key: StreamKey, batch: &mut Batch) {
        let max_frame = i64::from(self.encoder.max_frame_size());
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        let Some(id) = stream.id else { return };
        let mut frame_kind = 0u8;
        let mut frame_bytes = 0usize;
        let mut ended = false;
        match stream.queue.front_mut() {
            None => {}
            Some(Chunk::Headers { .. }) => {
                if let Some(Chunk::Headers { fields, end_stream }) = stream.queue.pop_front() {
                    let mut headers = Headers::new(id, HeaderBlock::Fields(fields));
                    headers.end_stream = end_stream;
                    ended = end_stream;
                    frame_kind = 1;
                    let tail = batch.tail_mut();
                    let before = tail.len();
                    self.encoder.encode(&Frame::Headers(headers), tail);
                    let added = tail.len() - before;
                    batch.grew(added);
                    frame_bytes = added;
                }
            }
            Some(Chunk::Data { data, end_stream }) => {
                let want = i64::try_from(data.len()).unwrap_or(i64::MAX);
                let n = if want == 0 {
                    0
                } else {
                    want.min(max_frame)
                        .min(stream.window)
                        .min(self.conn_window)
                        .max(0)
                };
                let n_usize = usize::try_from(n).unwrap_or(0);
                let payload: Bytes = data.split_to(n_usize.min(data.len()));
                let last = data.is_empty();
                let end = last && *end_stream;
                let frame = Data {
                    stream_id: id,
                    end_stream: end,
                    pad_len: None,
                    payload,
                };
                frame.head().encode(batch.tail_mut());
                batch.grew(framer::HEAD_LEN);
                batch.put_bytes(frame.payload);
                frame_bytes = framer::HEAD_LEN + n_usize;
                stream.window -= n;
                self.conn_window -= n;
                stream.queued_bytes = stream.queued_bytes.saturating_sub(n_usize);
                self.stats.data_bytes += n_usize as u64;
                if let Some(quota) = &stream.quota {
                    quota.replenish(n_usize);
                }
                if last {
                    stream.queue.pop_front();
                }
                ended = end;
            }
        }
        if let Some(slot) = self.stats.frames_by_type.get_mut(usize::from(frame_kind)) {
            *slot += 1;
        }
        if let Some(slot) = self.stats.bytes_by_type.get_mut(usize::from(frame_kind)) {
            *slot += frame_bytes as u64;
        }
        if ended {
            stream.end_sent = true;
            self.events.push(Event::Finished { key });
        }
        stream.state = stream.ready_state();
        match stream.state {
            SendState::Active => self.active.push_back(key),
            SendState::WaitingOnWindow => self.stats.stream_window_stalls += 1,
            _ => {}
        }
        // A server's stream is done with loopy once its END_STREAM is out;
        // a client's stays counted until the stream closes (Cleanup).
        if ended && self.role == Role::Server {
            self.streams.remove(&key);
        }
    }

    /// Debug builds: the scheduling invariants of `lib.rs`.
    #[cfg(debug_assertions)]
    fn check_invariants(&self) {
        let mut in_active: std::collections::HashMap<StreamKey, usize> = Default::default();
        for key in &self.active {
            if self
                .streams
                .get(key)
                .is_some_and(|s| s.state == SendState::Active)
            {
                *in_active.entry(*key).or_default() += 1;
            }
        }
        for (key, stream) in self.streams.iter() {
            let listed = in_active.get(key).copied().unwrap_or(0);
            match stream.state {
                SendState::Active => {
                    debug_assert_eq!(listed, 1, "active stream {key:?} listed {listed} times");
                    let front = stream.queue.front();
                    debug_assert!(front.is_some(), "active stream {key:?} with nothing queued");
                    debug_assert!(
                        front.is_some_and(|c| !c.needs_window()) || stream.window > 0,
                        "active stream {key:?} with window {}",
                        stream.window
                    );
                }
                SendState::Empty => debug_assert!(stream.queue.is_empty()),
                SendState::WaitingOnWindow => {
                    debug_assert!(
                        stream.window <= 0 && stream.queue.front().is_some_and(Chunk::needs_window)
                    );
                }
                SendState::WaitingOnConnection | SendState::Pending => {}
            }
        }
    }
}

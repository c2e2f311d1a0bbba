//! `Streams`: the receive side of a connection's streams — one record per
//! open or half-closed stream, the map between the application's keys and
//! stream ids, the highest id the peer has used and how many of its streams
//! are open, the streams recently closed or reset (for late frames), and
//! the bytes delivered to the application and not yet released.
//!
//! Invariants:
//! - A record exists from HEADERS (ours written, or the peer's accepted)
//!   until both sides have sent END_STREAM or the stream is reset (RFC 9113
//!   §5.1); idle and closed streams have none (see [`StreamRef`]).
//! - `key_ids` (client) holds exactly the stored streams' keys; a server's
//!   keys are its stream ids. With the records' keys it is the one map
//!   between keys and ids: the writer keeps none and is told the key.
//! - `peer_open` counts the stored peer-opened streams (§5.1.2).
//! - `buffered` is the DATA delivered and not released; a removed stream's
//!   unreleased bytes leave it.
//!
//! The `impl Connection` part: what happens to the connection when a
//! stream opens, ends, is reset or dropped (§5.1, §5.4.2, §8.1).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use framer::{Reason, StreamId};
use loopy::{DropCause, Role, StreamKey, StreamRecvWindow, WriteQuota};

use super::recent::RecentStreams;
use super::validate::ContentLength;
use super::{ConnEvent, Connection, Side, StreamState, Timer};

/// The receive side of one stored stream.
#[derive(Debug)]
pub(super) struct StreamRecord {
    pub(super) key: StreamKey,
    pub(super) state: StreamState,
    pub(super) recv: StreamRecvWindow,
    pub(super) content_length: ContentLength,
    /// Client: the final (non-1xx) response head has arrived.
    pub(super) response_seen: bool,
    /// When the stream opened (the age of a reset, for the rapid-reset
    /// count).
    pub(super) opened_at: Instant,
    /// Server: the write quota the writer replenishes for this stream.
    pub(super) quota: Option<Arc<WriteQuota>>,
}

/// Where a frame's stream id stands for us.
pub(super) enum StreamRef {
    /// A stored stream (open or half-closed).
    Known,
    /// Never used: a peer id above the highest seen, or one of ours not
    /// yet opened (§5.1 idle).
    Idle,
    /// Used and gone (§5.1 closed).
    Closed,
}

/// The stream records and what is remembered of closed streams.
#[derive(Debug)]
pub(super) struct Streams {
    role: Role,
    records: HashMap<StreamId, StreamRecord>,
    /// Client: key → id of each stored stream.
    key_ids: HashMap<StreamKey, StreamId>,
    /// Highest stream id the peer has used.
    max_peer: StreamId,
    /// Peer-opened streams counted against our MAX_CONCURRENT_STREAMS.
    peer_open: u32,
    /// Streams we reset: their late frames are ignored (§5.1 closed).
    recent_resets: RecentStreams,
    /// Streams that closed, recently (for §5.1 vs §5.1.1 answers).
    recent_closed: RecentStreams,
    /// Streams to reset once our END_STREAM on them is written.
    reset_after_end: HashMap<StreamKey, Reason>,
    /// DATA bytes delivered to the application and not yet released.
    buffered: usize,
}

impl Streams {
    pub(super) fn new(role: Role) -> Streams {
        Streams {
            role,
            records: HashMap::new(),
            key_ids: HashMap::new(),
            max_peer: StreamId::ZERO,
            peer_open: 0,
            recent_resets: RecentStreams::default(),
            recent_closed: RecentStreams::default(),
            reset_after_end: HashMap::new(),
            buffered: 0,
        }
    }

    /// The stream id of `key`: a server's keys are its ids; a client's
    /// stream has one once opened (and until its record goes).
    pub(super) fn id_of(&self, key: StreamKey) -> Option<StreamId> {
        match self.role {
            Role::Server => u32::try_from(key.0).ok().map(StreamId::new),
            Role::Client => self.key_ids.get(&key).copied(),
        }
    }

    pub(super) fn get(&self, id: StreamId) -> Option<&StreamRecord> {
        self.records.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: StreamId) -> Option<&mut StreamRecord> {
        self.records.get_mut(&id)
    }

    pub(super) fn contains(&self, id: StreamId) -> bool {
        self.records.contains_key(&id)
    }

    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every stored stream's receive window (a SETTINGS change or a BDP
    /// sample applies to all).
    pub(super) fn recv_windows(&mut self) -> impl Iterator<Item = &mut StreamRecvWindow> {
        self.records.values_mut().map(|r| &mut r.recv)
    }

    /// The stored streams above `last` (those a GOAWAY says the peer never
    /// processed).
    pub(super) fn above(&self, last: StreamId) -> Vec<(StreamId, StreamKey)> {
        self.records
            .iter()
            .filter(|(id, _)| **id > last)
            .map(|(id, r)| (*id, r.key))
            .collect()
    }

    /// True for ids the peer opens (a client's are odd, a server's even).
    pub(super) fn is_peer_stream(&self, id: StreamId) -> bool {
        match self.role {
            Role::Server => id.is_client_initiated(),
            Role::Client => id.is_server_initiated(),
        }
    }

    /// Where `id` stands; `next_local` is the id our next stream would get.
    pub(super) fn stream_ref(&self, id: StreamId, next_local: u32) -> StreamRef {
        if self.records.contains_key(&id) {
            return StreamRef::Known;
        }
        if self.is_peer_stream(id) {
            if id > self.max_peer {
                StreamRef::Idle
            } else {
                StreamRef::Closed
            }
        } else if id.value() >= next_local || self.role == Role::Server {
            // Ours and never opened (a server opens none: push is off).
            StreamRef::Idle
        } else {
            StreamRef::Closed
        }
    }

    /// The highest stream id the peer has used.
    pub(super) fn max_peer(&self) -> StreamId {
        self.max_peer
    }

    /// The peer used stream `id` (opened, refused or ignored: §5.1.1, its
    /// id is spent either way).
    pub(super) fn peer_used(&mut self, id: StreamId) {
        self.max_peer = self.max_peer.max(id);
    }

    /// Peer streams open against our MAX_CONCURRENT_STREAMS.
    pub(super) fn peer_open(&self) -> u32 {
        self.peer_open
    }

    /// Stores a stream the peer opened.
    pub(super) fn insert_peer(&mut self, id: StreamId, record: StreamRecord) {
        self.records.insert(id, record);
        self.peer_open += 1;
    }

    /// Stores a stream of ours that the writer opened with `id`.
    pub(super) fn insert_local(&mut self, id: StreamId, record: StreamRecord) {
        self.key_ids.insert(record.key, id);
        self.records.insert(id, record);
    }

    /// Drops a stream's record and its accounting; it is remembered as
    /// recently closed.
    pub(super) fn remove(&mut self, id: StreamId) -> Option<StreamRecord> {
        let record = self.records.remove(&id)?;
        self.reset_after_end.remove(&record.key);
        self.recent_closed.push(id);
        self.key_ids.remove(&record.key);
        self.buffered = self
            .buffered
            .saturating_sub(record.recv.unconsumed() as usize);
        if self.is_peer_stream(id) {
            self.peer_open = self.peer_open.saturating_sub(1);
        }
        Some(record)
    }

    /// We reset stream `id`: the peer's frames in flight on it are ignored.
    pub(super) fn remember_reset(&mut self, id: StreamId) {
        self.recent_resets.push(id);
    }

    /// True if we reset `id` recently.
    pub(super) fn was_reset(&self, id: StreamId) -> bool {
        self.recent_resets.contains(id)
    }

    /// True if `id` closed recently (normally or by a reset).
    pub(super) fn closed_recently(&self, id: StreamId) -> bool {
        self.recent_closed.contains(id)
    }

    /// Counts a late frame on a closed stream: true while it is one of the
    /// stream's free ones.
    pub(super) fn late_frame(&mut self, id: StreamId) -> bool {
        if self.recent_resets.contains(id) {
            self.recent_resets.late_frame(id)
        } else {
            self.recent_closed.late_frame(id)
        }
    }

    /// Resets `key` with `reason` once our END_STREAM on it is written.
    pub(super) fn reset_after_end(&mut self, key: StreamKey, reason: Reason) {
        self.reset_after_end.insert(key, reason);
    }

    /// The reset waiting for `key`'s END_STREAM, taken.
    pub(super) fn take_reset_after_end(&mut self, key: StreamKey) -> Option<Reason> {
        self.reset_after_end.remove(&key)
    }

    /// Bytes delivered to the application and not yet released.
    pub(super) fn buffered(&self) -> usize {
        self.buffered
    }

    /// `n` bytes of DATA were delivered to the application.
    pub(super) fn delivered(&mut self, n: usize) {
        self.buffered += n;
    }

    /// The application released `n` bytes.
    pub(super) fn released(&mut self, n: usize) {
        self.buffered = self.buffered.saturating_sub(n);
    }
}

impl Connection {
    /// The writer opened our stream `key` as `id`: its record starts.
    pub(super) fn local_stream_opened(&mut self, key: StreamKey, id: StreamId, now: Instant) {
        let record = StreamRecord {
            key,
            state: StreamState::Open,
            recv: self.inbound.new_stream(),
            content_length: ContentLength::new(None),
            response_seen: false,
            opened_at: now,
            quota: None,
        };
        self.streams.insert_local(id, record);
        self.stats.streams_opened += 1;
        self.timers.stop(Timer::Idle);
        self.events.push_back(ConnEvent::Opened { key, id });
    }

    /// Our END_STREAM on `key` is written.
    pub(super) fn local_stream_finished(&mut self, key: StreamKey, now: Instant) {
        self.events.push_back(ConnEvent::Sent { key });
        if let Some(id) = self.streams.id_of(key) {
            self.end_stream(id, Side::Local, now);
            if let Some(reason) = self.streams.take_reset_after_end(key) {
                if self.streams.contains(id) {
                    self.reset(key, reason, now);
                }
            }
        }
    }

    /// The writer dropped `key`'s output (see [`DropCause`]).
    pub(super) fn stream_dropped(
        &mut self,
        key: StreamKey,
        cause: DropCause,
        opened: bool,
        now: Instant,
    ) {
        let record = self
            .streams
            .id_of(key)
            .filter(|id| self.streams.contains(*id));
        if opened && record.is_none() {
            return; // already reported when the record went
        }
        if let Some(id) = record {
            if let DropCause::Reset(_) | DropCause::FlowControl = cause {
                // We sent RST_STREAM: the peer's frames in flight are
                // ignored, not answered (§5.1 closed).
                self.streams.remember_reset(id);
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

    /// `side` finished sending on stream `id`; drop the record when both have.
    pub(super) fn end_stream(&mut self, id: StreamId, side: Side, now: Instant) {
        let Some(record) = self.streams.get_mut(id) else {
            return;
        };
        match record.state.end(side) {
            Some(state) => record.state = state,
            None => {
                let key = record.key;
                // A stream that did its work offsets one early reset.
                self.abuse.resets.forgive();
                self.remove_stream(id, now);
                if self.role == Role::Client {
                    self.writer.cleanup(key);
                }
                self.events.push_back(ConnEvent::Closed { key });
            }
        }
    }

    /// Drops a stream's record and its accounting; a server with no stream
    /// left starts its idle clock.
    pub(super) fn remove_stream(&mut self, id: StreamId, now: Instant) {
        let Some(record) = self.streams.remove(id) else {
            return;
        };
        self.admission.forget(record.key);
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
    pub(super) fn reset_stream(&mut self, id: StreamId, reason: Reason, now: Instant) {
        self.peer_fault_reset(now);
        if self.lifecycle.is_closed() {
            return;
        }
        let key = self.streams.get(id).map(|r| r.key);
        self.writer.queue_rst(id, reason, key);
        self.streams.remember_reset(id);
        self.stats.streams_reset_local += 1;
        if let Some(key) = key {
            self.remove_stream(id, now);
            self.events.push_back(ConnEvent::Reset {
                key,
                reason,
                remote: false,
            });
        }
    }
}

//! The receive path of a [`Connection`]: frames from the peer, checked
//! against the connection and stream state (RFC 9113 §3.4, §5.1, §5.1.1,
//! §5.1.2, §5.4, §6, §8) and the abuse limits, turned into events and
//! direct commands to the writer. SETTINGS are handled in `settings.rs`.
//!
//! Invariants: every frame is counted once, in its type's slot; a frame
//! read after a connection error is never processed (the loop stops when
//! [`Connection::wants_read`] turns false); a stream error resets only its
//! stream.

use std::time::Instant;

use bytes::BytesMut;
use framer::hpack::HeaderList;
use framer::{Data, Frame, FrameError, HeaderBlock, Headers, Ping, Reason, Scope, StreamId};
use std::sync::Arc;

use loopy::{Role, StreamKey, WriteQuota};

use super::keepalive::KEEPALIVE_PING;
use super::lifecycle::{Handshake, DRAIN_PING};
use super::streams::{StreamRecord, StreamRef};
use super::validate::{self, ContentLength};
use super::{AbuseLimit, ConnEvent, ConnViolation, Connection, Side, StreamState, Timer};

impl Connection {
    pub(super) fn read_frames(&mut self, buf: &mut BytesMut, now: Instant) {
        if self.lifecycle.handshake() == Some(Handshake::Preface) {
            match framer::read_preface(buf) {
                Ok(true) => {
                    self.lifecycle.preface_received();
                    self.start_settings_clock(now);
                }
                Ok(false) => return,
                Err(err) => return self.frame_error(err, now),
            }
        }
        while self.wants_read() {
            let before = buf.len();
            match self.decoder.decode(buf) {
                Ok(Some(frame)) => {
                    *self
                        .stats
                        .bytes_in_by_type
                        .by_type_mut(frame.kind().to_u8()) += (before - buf.len()) as u64;
                    self.on_frame(frame, now)
                }
                Ok(None) => return,
                Err(err) => self.frame_error(err, now),
            }
        }
        // Stopped for the flood or the buffered-bytes limit (a held
        // request is counted apart, a close is no throttle).
        let throttled = !self.writer.wants_read()
            || self.streams.buffered() >= self.config.limits.max_buffered_bytes;
        if throttled && !self.lifecycle.is_closed() {
            self.stats.read_throttles += 1;
        }
    }

    fn frame_error(&mut self, err: FrameError, now: Instant) {
        match err.scope {
            Scope::Connection => self.fail(ConnViolation::Frame {
                violation: err.violation,
                reason: err.reason,
            }),
            Scope::Stream(id) => {
                if self.streams.is_peer_stream(id) && id > self.streams.max_peer() {
                    // A refused new stream (e.g. its header list was too
                    // large) still uses up its id (§5.1.1).
                    self.streams.peer_used(id);
                    self.stats.streams_refused += 1;
                }
                self.reset_stream(id, err.reason, now);
            }
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        *self.stats.frames_in.by_type_mut(frame.kind().to_u8()) += 1;
        if self.lifecycle.handshake() == Some(Handshake::FirstSettings) {
            // §3.4: the peer's preface ends with a SETTINGS frame.
            if !matches!(&frame, Frame::Settings(s) if !s.ack) {
                return self.fail(ConnViolation::FirstFrameNotSettings);
            }
            self.lifecycle.first_settings_received();
            self.timers.stop(Timer::Preface);
        }
        match frame {
            Frame::Data(data) => self.on_data(data, now),
            Frame::Headers(headers) => self.on_headers(headers, now),
            // Deprecated (§5.3.2), checked by the framer: no work for us.
            Frame::Priority(_) => self.waste(now),
            Frame::RstStream(rst) => self.on_rst_stream(rst.stream_id, rst.reason, now),
            Frame::Settings(settings) => self.on_settings(settings, now),
            Frame::PushPromise(_) => {
                // §8.4: a client never pushes, and we tell servers not to.
                self.fail(ConnViolation::PushPromise);
            }
            Frame::Ping(ping) => self.on_ping(ping, now),
            Frame::GoAway(goaway) => {
                self.stats.goaways_in += 1;
                self.on_goaway(goaway, now);
            }
            Frame::WindowUpdate(update) => {
                self.on_window_update(update.stream_id, update.increment, now)
            }
            Frame::Continuation(_) => {} // absorbed by the decoder
            Frame::Unknown(_) => self.waste(now), // §5.5: ignored
        }
    }

    fn stream_ref(&self, id: StreamId) -> StreamRef {
        self.streams.stream_ref(id, self.writer.next_stream_id())
    }

    /// Frames other than HEADERS/PRIORITY on an idle stream (§5.1).
    fn idle_stream_error(&mut self, kind: &'static str, id: StreamId) {
        self.fail(ConnViolation::FrameOnIdleStream { kind, id });
    }

    /// DATA or HEADERS on a closed stream: ignored if we reset it (the peer
    /// may not know yet), else STREAM_CLOSED (§5.1).
    /// DATA on a stream we reset is flow-controlled bytes the peer sent
    /// before our RST_STREAM arrived: free (empty DATA is counted apart).
    fn closed_stream_frame(&mut self, id: StreamId, now: Instant) {
        if !self.streams.was_reset(id) {
            self.reset_stream(id, Reason::STREAM_CLOSED, now);
        }
    }

    /// HEADERS on an id at or below the highest used: on one we reset
    /// (ignored: the peer may not have seen our RST_STREAM yet; a late
    /// frame), on a stream that closed normally (§5.1: "An endpoint that
    /// receives any frames after receiving a frame with the END_STREAM flag
    /// set MUST treat that as a connection error of type STREAM_CLOSED"),
    /// or a new stream whose id went backwards (§5.1.1: a connection error
    /// PROTOCOL_ERROR).
    fn closed_stream_headers(&mut self, id: StreamId, now: Instant) {
        if self.streams.was_reset(id) {
            return self.late_frame(id, now);
        }
        if self.streams.closed_recently(id) {
            return self.fail(ConnViolation::HeadersOnClosedStream { id });
        }
        self.fail(ConnViolation::StreamIdWentBackwards { id });
    }

    fn on_data(&mut self, data: Data, now: Instant) {
        let id = data.stream_id;
        let flow_len = data.flow_len();
        // Connection-level accounting comes first, whatever the stream.
        match self.inbound.on_data(flow_len) {
            Ok(actions) => {
                for action in actions {
                    self.inbound_action(action, now);
                }
            }
            Err(err) => return self.fail(ConnViolation::ConnectionWindowExceeded(err)),
        }
        if data.payload.is_empty()
            && !data.end_stream
            && self
                .abuse
                .empty_frames
                .hit(self.config.limits.empty_frames, now)
        {
            return self.breach(AbuseLimit::EmptyFrames);
        }
        match self.stream_ref(id) {
            StreamRef::Idle => return self.idle_stream_error("DATA", id),
            StreamRef::Closed => return self.closed_stream_frame(id, now),
            StreamRef::Known => {}
        }
        let Some(record) = self.streams.get_mut(id) else {
            return;
        };
        if !record.state.peer_may_send() || (self.role == Role::Client && !record.response_seen) {
            // Half-closed (remote): STREAM_CLOSED (§5.1). A response body
            // before its headers is malformed (§8.1).
            let reason = if record.state.peer_may_send() {
                Reason::PROTOCOL_ERROR
            } else {
                Reason::STREAM_CLOSED
            };
            return self.reset_stream(id, reason, now);
        }
        let window = record.recv.on_data_frame(&data);
        let length_ok = record.content_length.on_data(data.payload.len()).is_ok()
            && (!data.end_stream || record.content_length.on_end().is_ok());
        let key = record.key;
        let increment = match window {
            Ok(increment) => increment,
            Err(_) => return self.reset_stream(id, Reason::FLOW_CONTROL_ERROR, now),
        };
        if let Some(increment) = increment {
            self.writer.queue_window_update(id, increment);
        }
        if !length_ok {
            return self.reset_stream(id, Reason::PROTOCOL_ERROR, now); // §8.1.1
        }
        self.streams.delivered(data.payload.len());
        let end_stream = data.end_stream;
        self.events.push_back(ConnEvent::Data {
            key,
            data: data.payload,
            end_stream,
        });
        if end_stream {
            self.end_stream(id, Side::Remote, now);
        }
    }

    fn on_headers(&mut self, headers: Headers, now: Instant) {
        let id = headers.stream_id;
        let end_stream = headers.end_stream;
        let HeaderBlock::Fields(fields) = headers.block else {
            return;
        };
        match self.stream_ref(id) {
            StreamRef::Known => self.on_stream_headers(id, fields, end_stream, now),
            StreamRef::Closed => self.closed_stream_headers(id, now),
            StreamRef::Idle if self.role == Role::Server && id.is_client_initiated() => {
                self.on_request(id, fields, end_stream, now)
            }
            StreamRef::Idle => {
                // §5.1.1: a server may not open streams (no push), and a
                // client id we never used cannot get a response.
                self.fail(ConnViolation::UnexpectedStream { id })
            }
        }
    }

    /// Server: a new stream.
    fn on_request(&mut self, id: StreamId, fields: HeaderList, end_stream: bool, now: Instant) {
        self.streams.peer_used(id);
        if self.lifecycle.is_past_our_goaway(id) {
            // §6.8: streams opened after our GOAWAY are ignored, and so are
            // their later frames.
            self.streams.remember_reset(id);
            return self.waste(now);
        }
        if self.streams.peer_open() >= self.config.max_concurrent_streams {
            // §5.1.2: REFUSED_STREAM, which tells the client it may retry.
            self.stats.streams_refused += 1;
            self.streams.remember_reset(id);
            self.writer.queue_rst(id, Reason::REFUSED_STREAM, None);
            return self.waste(now);
        }
        let head = match validate::validate_request(fields) {
            Ok(head) => head,
            Err(_) => return self.refuse_malformed(id, now),
        };
        let content_length = ContentLength::new(head.content_length);
        if end_stream && content_length.on_end().is_err() {
            return self.refuse_malformed(id, now);
        }
        let key = StreamKey::from(id);
        let state = if end_stream {
            StreamState::HalfClosedRemote
        } else {
            StreamState::Open
        };
        let mut quota =
            WriteQuota::new(loopy::DEFAULT_WRITE_QUOTA).with_budget(self.send_budget.clone());
        if let Some(shared) = &self.config.shared_send_budget {
            quota = quota.with_budget(shared.clone());
        }
        let quota = Arc::new(quota);
        let record = StreamRecord {
            key,
            state,
            recv: self.inbound.new_stream(),
            content_length,
            response_seen: true,
            opened_at: now,
            quota: Some(quota.clone()),
        };
        self.streams.insert_peer(id, record);
        self.stats.streams_opened += 1;
        self.timers.stop(Timer::Idle);
        // Registered before the application hears of it, so its response
        // items queue behind the registration.
        self.writer.register_stream(key, id, Some(quota));
        let request = ConnEvent::Request {
            id,
            head,
            end_stream,
        };
        // Past the handler cap the request waits (and reading stops).
        if let Some(request) = self.admission.admit(key, request) {
            self.events.push_back(request);
        }
    }

    /// A malformed request (§8.1.1): RST_STREAM PROTOCOL_ERROR, the peer's
    /// fault.
    fn refuse_malformed(&mut self, id: StreamId, now: Instant) {
        self.streams.remember_reset(id);
        self.stats.streams_reset_local += 1;
        self.peer_fault_reset(now);
        if !self.lifecycle.is_closed() {
            self.writer.queue_rst(id, Reason::PROTOCOL_ERROR, None);
        }
    }

    /// HEADERS on a stored stream: a response (client) or trailers.
    fn on_stream_headers(
        &mut self,
        id: StreamId,
        fields: HeaderList,
        end_stream: bool,
        now: Instant,
    ) {
        let Some(record) = self.streams.get_mut(id) else {
            return;
        };
        if !record.state.peer_may_send() {
            return self.reset_stream(id, Reason::STREAM_CLOSED, now);
        }
        let key = record.key;
        if self.role == Role::Client && !record.response_seen {
            let head = match validate::validate_response(fields) {
                Ok(head) => head,
                Err(_) => return self.reset_stream(id, Reason::PROTOCOL_ERROR, now),
            };
            let informational = (100..200).contains(&head.status);
            if informational && end_stream {
                return self.reset_stream(id, Reason::PROTOCOL_ERROR, now); // §8.1
            }
            if !informational {
                record.response_seen = true;
                record.content_length = ContentLength::new(head.content_length);
                if end_stream && record.content_length.on_end().is_err() {
                    return self.reset_stream(id, Reason::PROTOCOL_ERROR, now);
                }
            }
            self.events.push_back(ConnEvent::Response {
                key,
                head,
                end_stream,
            });
        } else {
            // Trailers: they end the stream (§8.1).
            if !end_stream {
                return self.reset_stream(id, Reason::PROTOCOL_ERROR, now);
            }
            if record.content_length.on_end().is_err() {
                return self.reset_stream(id, Reason::PROTOCOL_ERROR, now);
            }
            let fields = match validate::validate_trailers(fields) {
                Ok(fields) => fields,
                Err(_) => return self.reset_stream(id, Reason::PROTOCOL_ERROR, now),
            };
            self.events.push_back(ConnEvent::Trailers { key, fields });
        }
        if end_stream {
            self.end_stream(id, Side::Remote, now);
        }
    }

    fn on_rst_stream(&mut self, id: StreamId, reason: Reason, now: Instant) {
        match self.stream_ref(id) {
            StreamRef::Idle => return self.idle_stream_error("RST_STREAM", id), // §6.4
            StreamRef::Closed => return self.late_frame(id, now),
            StreamRef::Known => {}
        }
        let Some(record) = self.streams.get(id) else {
            return;
        };
        let key = record.key;
        // Rapid reset (CVE-2023-44487): a server counts streams the client
        // resets before they were answered, young (an honest deadline or
        // cancel comes after the call ran a while).
        let unanswered = self.role == Role::Server
            && record.state != StreamState::HalfClosedLocal
            && now.saturating_duration_since(record.opened_at) < self.config.limits.rapid_reset_age;
        self.stats.streams_reset_remote += 1;
        self.remove_stream(id, now);
        self.writer.cleanup(key);
        self.events.push_back(ConnEvent::Reset {
            key,
            reason,
            remote: true,
        });
        if unanswered {
            self.rapid_reset(now);
        }
    }

    fn on_ping(&mut self, ping: Ping, now: Instant) {
        if ping.ack {
            if ping.payload == KEEPALIVE_PING {
                self.keepalive_answered();
            } else if ping.payload == DRAIN_PING && self.lifecycle.awaiting_drain_ack() {
                self.drain_ping_answered();
            } else {
                let streams = self.streams.recv_windows();
                let actions = self.inbound.on_ping_ack(ping.payload, now, streams);
                for action in actions {
                    self.inbound_action(action, now);
                }
            }
            // Our own pings (keepalive, drain, BDP) are not the application's.
            let internal = [KEEPALIVE_PING, DRAIN_PING, loopy::BDP_PING_PAYLOAD];
            if !internal.contains(&ping.payload) {
                self.events.push_back(ConnEvent::Pong {
                    payload: ping.payload,
                });
            }
            return;
        }
        self.stats.pings_in += 1;
        let answers_our_data = self.keepalive.ping_answers_our_data();
        if !answers_our_data && self.abuse.pings.hit(self.config.limits.pings, now) {
            return self.breach(AbuseLimit::Pings);
        }
        if self.role == Role::Server && self.ping_strike(now) {
            self.stats.ping_strikes += 1;
            return self.fail(ConnViolation::TooManyPings);
        }
        self.writer.queue_ping_ack(ping.payload);
    }

    fn on_goaway(&mut self, goaway: framer::GoAway, now: Instant) {
        let last = goaway.last_stream_id;
        self.lifecycle.peer_goaway(last);
        if self.role == Role::Client {
            self.writer.apply_peer_goaway(last);
            // Streams the server never processed fail as retryable.
            for (id, key) in self.streams.above(last) {
                self.remove_stream(id, now);
                self.events.push_back(ConnEvent::Dropped {
                    key,
                    cause: loopy::DropCause::PeerGoAway,
                    opened: true,
                });
            }
        }
        self.events.push_back(ConnEvent::GoAway {
            last_stream_id: last,
            reason: goaway.reason,
            debug_data: goaway.debug_data.clone(),
        });
        if goaway.reason != Reason::NO_ERROR {
            let debug = String::from_utf8_lossy(&goaway.debug_data).into_owned();
            self.finish(super::CloseReason::PeerError {
                reason: goaway.reason,
                debug,
            });
            return;
        }
        self.maybe_done();
    }

    fn on_window_update(&mut self, id: StreamId, increment: u32, now: Instant) {
        if id.is_zero() {
            if let Err(err) = self.writer.apply_connection_window_update(increment) {
                self.fail(ConnViolation::SendWindowOverflow(err.detail));
            }
            return;
        }
        match self.stream_ref(id) {
            StreamRef::Idle => return self.idle_stream_error("WINDOW_UPDATE", id),
            // §6.9: may arrive after END_STREAM.
            StreamRef::Closed => return self.late_frame(id, now),
            StreamRef::Known => {}
        }
        if let Some(record) = self.streams.get(id) {
            self.writer
                .apply_stream_window_update(record.key, increment);
        }
    }
}

//! The connection's direct commands to its [`Writer`]: what the receive
//! path and the connection's timers need sent or applied, as typed methods
//! instead of items through the control buffer (there is no thread
//! boundary between the connection and its writer).
//!
//! Order: every command first applies what is already in the control
//! buffer (`catch_up`), so it takes its place after every item put before
//! it, as if it had been put itself. Frames then go to the same outbound
//! classes as before: SETTINGS and PING acks are urgent; SETTINGS, PING,
//! WINDOW_UPDATE, RST_STREAM and GOAWAY are other control, in call order.
//! The peer's SETTINGS are applied at once, so they bind before the ack
//! queued after them is written (RFC 9113 §6.5.3).
//!
//! After [`Writer::close`] every command is ignored (as puts are refused);
//! after a connection error, the peer's SETTINGS, WINDOW_UPDATE and GOAWAY
//! are no longer applied.

use std::sync::Arc;

use framer::{GoAway, Ping, Reason, RstStream, SettingId, Settings, StreamId, WindowUpdate};

use super::{Role, Writer, MAX_WINDOW};
use crate::stream::{OutStream, SendState};
use crate::{ConnectionError, DropCause, StreamKey, WriteQuota};

impl Writer {
    /// Catches up with the control buffer before a command; false once the
    /// writer is closed (the command is ignored).
    fn begin_command(&mut self) -> bool {
        if self.closed {
            return false;
        }
        self.catch_up();
        true
    }

    /// Server: a stream the peer opened, so that the application's response
    /// items for it find it. Sends nothing. Register before the application
    /// hears of the stream, so its items come after the registration.
    pub fn register_stream(
        &mut self,
        key: StreamKey,
        id: StreamId,
        quota: Option<Arc<WriteQuota>>,
    ) {
        if !self.begin_command() {
            return;
        }
        if self.role != Role::Server || self.streams.contains_key(&key) {
            self.refuse(key, DropCause::Invalid, quota.as_deref(), false);
            return;
        }
        self.streams.insert(
            key,
            OutStream::new(Some(id), self.peer_initial_window, quota),
        );
        self.stats.streams_started += 1;
    }

    /// Forgets a stream without sending anything (it closed: both sides
    /// done, or the peer reset it): its unsent output is reported
    /// ([`DropCause::Cleanup`]) and its concurrency slot released.
    pub fn cleanup(&mut self, key: StreamKey) {
        if self.begin_command() {
            self.drop_stream(key, DropCause::Cleanup);
        }
    }

    /// Resets a stream of ours, as [`Item::Reset`](crate::Item::Reset):
    /// RST_STREAM if it has an id, then its queue is purged and reported.
    pub fn reset(&mut self, key: StreamKey, reason: Reason) {
        if self.begin_command() {
            self.reset_stream(key, reason);
        }
    }

    /// RST_STREAM on stream `id`, which loopy may no longer hold (a server
    /// stream whose END_STREAM is out, a refused stream): a transport
    /// response, counted for flood control. If loopy still holds the
    /// stream as `key`, its output is dropped ([`DropCause::Reset`]).
    pub fn queue_rst(&mut self, id: StreamId, reason: Reason, key: Option<StreamKey>) {
        if !self.begin_command() {
            return;
        }
        self.control
            .push_back((RstStream::new(id, reason).into(), true));
        self.responses += 1;
        let held = key.filter(|k| self.streams.get(k).is_some_and(|s| s.id == Some(id)));
        if let Some(key) = held {
            self.drop_stream(key, DropCause::Reset(reason));
        }
    }

    /// Our WINDOW_UPDATE (inbound flow control) on stream `id`, or 0 for
    /// the connection.
    pub fn queue_window_update(&mut self, id: StreamId, increment: u32) {
        if self.begin_command() {
            self.control
                .push_back((WindowUpdate::new(id, increment).into(), false));
        }
    }

    /// Our SETTINGS (other than the first, which the connection writes
    /// ahead of everything).
    pub fn queue_settings(&mut self, settings: Settings) {
        if self.begin_command() {
            self.control.push_back((settings.into(), false));
        }
    }

    /// Acknowledges the peer's SETTINGS: urgent, and a transport response.
    /// Apply them first ([`Writer::apply_peer_settings`]).
    pub fn queue_settings_ack(&mut self) {
        if self.begin_command() {
            self.urgent.push_back(Settings::ack().into());
            self.responses += 1;
        }
    }

    /// Our PING; [`Event::PingSent`](crate::Event::PingSent) reports it
    /// written.
    pub fn queue_ping(&mut self, payload: [u8; 8]) {
        if self.begin_command() {
            self.control.push_back((Ping::new(payload).into(), false));
        }
    }

    /// Acknowledges the peer's PING: urgent, and a transport response.
    pub fn queue_ping_ack(&mut self, payload: [u8; 8]) {
        if self.begin_command() {
            self.urgent.push_back(Ping::pong(payload).into());
            self.responses += 1;
        }
    }

    /// Our GOAWAY. A client opens no streams after it: those waiting for a
    /// slot are dropped ([`DropCause::GoingAway`]), later opens refused.
    pub fn queue_goaway(&mut self, goaway: GoAway) {
        if !self.begin_command() {
            return;
        }
        self.control.push_back((goaway.into(), false));
        if self.role == Role::Client {
            self.stop_opening(DropCause::GoingAway);
        }
    }

    /// Applies the peer's SETTINGS to the send side: initial window delta
    /// (RFC 9113 §6.9.2), MAX_FRAME_SIZE, MAX_CONCURRENT_STREAMS,
    /// HEADER_TABLE_SIZE, and MAX_HEADER_LIST_SIZE for later puts.
    ///
    /// An error is a connection error (a stream window past 2^31 − 1): send
    /// GOAWAY with its reason and close.
    pub fn apply_peer_settings(&mut self, settings: &Settings) -> Result<(), ConnectionError> {
        if !self.begin_command() {
            return Ok(());
        }
        if let Some(limit) = settings.max_header_list_size() {
            self.buffer.set_peer_max_header_list_size(limit);
        }
        if self.broken {
            return Ok(());
        }
        for setting in &settings.params {
            match setting.id {
                SettingId::INITIAL_WINDOW_SIZE => {
                    if let Err(err) = self.set_initial_window(i64::from(setting.value)) {
                        self.broken = true;
                        return Err(err);
                    }
                }
                SettingId::MAX_FRAME_SIZE => self.encoder.set_max_frame_size(setting.value),
                SettingId::HEADER_TABLE_SIZE => self.encoder.set_header_table_size(setting.value),
                SettingId::MAX_CONCURRENT_STREAMS => self.peer_max_concurrent = setting.value,
                _ => {}
            }
        }
        Ok(())
    }

    /// Applies the peer's WINDOW_UPDATE on the connection. Past 2^31 − 1 it
    /// is a connection error (RFC 9113 §6.9.1).
    pub fn apply_connection_window_update(
        &mut self,
        increment: u32,
    ) -> Result<(), ConnectionError> {
        if !self.begin_command() || self.broken {
            return Ok(());
        }
        self.conn_window += i64::from(increment);
        if self.conn_window > MAX_WINDOW {
            self.broken = true;
            return Err(ConnectionError {
                reason: Reason::FLOW_CONTROL_ERROR,
                detail: "WINDOW_UPDATE overflowed the connection send window",
            });
        }
        if self.conn_window > 0 {
            self.release_conn_blocked();
        }
        Ok(())
    }

    /// Applies the peer's WINDOW_UPDATE on stream `key` (ignored if loopy
    /// no longer holds it, §6.9). Past 2^31 − 1 it is a stream error
    /// handled here: RST_STREAM FLOW_CONTROL_ERROR, the stream dropped
    /// ([`DropCause::FlowControl`]).
    pub fn apply_stream_window_update(&mut self, key: StreamKey, increment: u32) {
        if !self.begin_command() || self.broken {
            return;
        }
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        stream.window += i64::from(increment);
        if stream.window > MAX_WINDOW {
            if let Some(id) = stream.id {
                self.control
                    .push_back((RstStream::new(id, Reason::FLOW_CONTROL_ERROR).into(), false));
            }
            self.drop_stream(key, DropCause::FlowControl);
            return;
        }
        if stream.state == SendState::WaitingOnWindow && stream.window > 0 {
            stream.state = SendState::Active;
            self.active.push_back(key);
        }
    }

    /// Applies the peer's GOAWAY. A client drops its streams above
    /// `last_stream_id` ([`DropCause::PeerGoAway`]: retryable, the peer
    /// never processed them) and opens no more.
    pub fn apply_peer_goaway(&mut self, last_stream_id: StreamId) {
        if !self.begin_command() || self.broken || self.role != Role::Client {
            return;
        }
        let above: Vec<StreamKey> = self
            .streams
            .iter()
            .filter(|(_, s)| s.id.is_some_and(|id| id > last_stream_id))
            .map(|(k, _)| *k)
            .collect();
        for key in above {
            self.drop_stream(key, DropCause::PeerGoAway);
        }
        self.stop_opening(DropCause::PeerGoAway);
    }
}

//! `SettingsSync`: the SETTINGS exchange of a connection (RFC 9113 §6.5):
//! ours (the first one in the preface, §3.4, and later changes of the
//! initial window), each pending until the peer acknowledges it and then
//! binding on our receive side (§6.5.3); the peer's, applied to the send
//! side before their ack is written, and checked (§6.5.2) and counted
//! (the `settings` abuse limit).
//!
//! Invariants: our SETTINGS are acknowledged in the order sent, so
//! `pending` is a FIFO and an ack binds its front; [`Timer::SettingsAck`]
//! runs while anything is pending (a server starts it when the client
//! preface arrives: until then the preface timeout governs); our first
//! SETTINGS is written ahead of everything else, since a SETTINGS ack is
//! urgent in the writer and would otherwise jump it.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use framer::{SettingId, Settings};
use loopy::Role;

use super::{AbuseLimit, ConnViolation, Connection, Timer};

/// Our SETTINGS in flight, and the preface not yet written.
#[derive(Debug, Default)]
pub(super) struct SettingsSync {
    /// Ours, sent and not yet acknowledged, oldest first.
    pending: VecDeque<Settings>,
    /// The client magic (client) and our first SETTINGS, not yet written.
    preface: Option<Bytes>,
}

impl SettingsSync {
    /// The preface bytes, once: the first thing written.
    pub(super) fn take_preface(&mut self) -> Option<Bytes> {
        self.preface.take()
    }
}

impl Connection {
    /// Our first SETTINGS: what differs from the RFC defaults, plus the
    /// limits we always announce.
    fn initial_settings(&self) -> Settings {
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
        settings
    }

    /// Prepares the preface (the client magic, then our first SETTINGS)
    /// and, on a client, starts the ack clock.
    pub(super) fn start_settings(&mut self, now: Instant) {
        let settings = self.initial_settings();
        // §3.4: our SETTINGS is the first frame we send, before anything
        // the writer has (a SETTINGS ack is urgent there and could jump it).
        let mut preface = BytesMut::new();
        if self.role == Role::Client {
            preface.extend_from_slice(framer::PREFACE);
        }
        framer::Encoder::new().encode(&settings.clone().into(), &mut preface);
        self.settings.preface = Some(preface.freeze());
        self.settings.pending.push_back(settings);
        if self.role == Role::Client {
            // A server starts this clock when the client's preface arrives:
            // until then the preface timeout governs.
            self.timers
                .set(Timer::SettingsAck, now + self.config.settings_timeout);
        }
    }

    /// Server: the client preface arrived; our SETTINGS must now be
    /// acknowledged in time.
    pub(super) fn start_settings_clock(&mut self, now: Instant) {
        let at = now + self.config.settings_timeout;
        self.timers.set(Timer::SettingsAck, at);
    }

    /// Sends a new initial stream window (BDP growth): pending until acked.
    pub(super) fn send_initial_window(&mut self, window: u32, now: Instant) {
        let settings = Settings::new().with(SettingId::INITIAL_WINDOW_SIZE, window);
        self.settings.pending.push_back(settings.clone());
        self.writer.queue_settings(settings);
        if self.timers.get(Timer::SettingsAck).is_none() {
            let at = now + self.config.settings_timeout;
            self.timers.set(Timer::SettingsAck, at);
        }
    }

    /// A SETTINGS frame: the ack of ours, or the peer's.
    pub(super) fn on_settings(&mut self, settings: Settings, now: Instant) {
        if settings.ack {
            if let Some(ours) = self.settings.pending.pop_front() {
                self.apply_local_settings(&ours);
            }
            if self.settings.pending.is_empty() {
                self.timers.stop(Timer::SettingsAck);
            } else {
                self.timers
                    .set(Timer::SettingsAck, now + self.config.settings_timeout);
            }
            return;
        }
        if self.abuse.settings.hit(self.config.limits.settings, now) {
            return self.breach(AbuseLimit::Settings);
        }
        if self.role == Role::Client && settings.enable_push() == Some(true) {
            // §6.5.2: a server must not enable push.
            return self.fail(ConnViolation::ServerEnabledPush);
        }
        // §6.5.3: applied now, so they bind before the ack is written.
        if let Err(err) = self.writer.apply_peer_settings(&settings) {
            return self.fail(ConnViolation::SendWindowOverflow(err.detail));
        }
        self.writer.queue_settings_ack();
    }

    /// Our SETTINGS were acknowledged: the new limits bind now.
    fn apply_local_settings(&mut self, settings: &Settings) {
        if let Some(size) = settings.max_frame_size() {
            self.decoder.set_max_frame_size(size);
        }
        if let Some(size) = settings.header_table_size() {
            self.decoder.set_header_table_size(size);
        }
        if let Some(size) = settings.max_header_list_size() {
            self.decoder.set_max_header_list_size(size);
        }
        if settings.initial_window_size().is_some() {
            for recv in self.streams.recv_windows() {
                recv.on_settings_acked();
            }
        }
    }
}

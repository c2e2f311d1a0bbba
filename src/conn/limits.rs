//! The abuse accounting of a [`Connection`]: the wasted-frames budget and
//! the rapid-reset count. Both are rate limits over a time window
//! ([`AbuseLimits`](super::AbuseLimits)); a breach ends the connection with
//! GOAWAY ENHANCE_YOUR_CALM whose debug data names the limit.
//!
//! What counts (RFC 9113 §10.5 asks for limits on what costs us and gives
//! nothing):
//! - wasted frames: PRIORITY, unknown types, late frames on closed streams
//!   beyond each stream's free allowance, refused streams, stream errors of
//!   the peer's making;
//! - rapid resets (CVE-2023-44487, CVE-2025-8671): streams the peer resets
//!   younger than `rapid_reset_age` before we finished them, and streams we
//!   reset for the peer's fault. A stream that completes takes one back.
//!
//! The `empty_frames`, `settings` and `pings` limits are counted here too
//! (by the receive path and the SETTINGS and PING handlers). Invariants:
//! each counter counts within its own fixed window; a breach ends the
//! connection once (later breaches find it closed).

use std::time::Instant;

use framer::StreamId;

use super::{AbuseLimit, ConnViolation, Connection, RateLimit};

/// The counters behind the abuse limits, one per limit of
/// [`AbuseLimits`](super::AbuseLimits).
#[derive(Debug, Default)]
pub(super) struct AbuseCounters {
    /// `peer_resets`: rapid resets and MadeYouReset.
    pub(super) resets: WindowCounter,
    /// `wasted_frames`.
    pub(super) wasted: WindowCounter,
    /// `empty_frames`.
    pub(super) empty_frames: WindowCounter,
    /// `settings`.
    pub(super) settings: WindowCounter,
    /// `pings`.
    pub(super) pings: WindowCounter,
}

/// Counts events in a fixed window.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct WindowCounter {
    start: Option<Instant>,
    count: u32,
}

impl WindowCounter {
    /// Counts one event at `now`; true if the limit is now exceeded.
    pub(super) fn hit(&mut self, limit: RateLimit, now: Instant) -> bool {
        match self.start {
            Some(start) if now.saturating_duration_since(start) < limit.window => {}
            _ => {
                self.start = Some(now);
                self.count = 0;
            }
        }
        self.count = self.count.saturating_add(1);
        self.count > limit.max
    }

    /// Takes one event back (something good happened that offsets it).
    pub(super) fn forgive(&mut self) {
        self.count = self.count.saturating_sub(1);
    }
}

impl Connection {
    /// A frame that did no work (or was refused): one from the budget.
    pub(super) fn waste(&mut self, now: Instant) {
        self.stats.wasted_frames += 1;
        if self.abuse.wasted.hit(self.config.limits.wasted_frames, now) {
            self.breach(AbuseLimit::WastedFrames);
        }
    }

    /// A late frame on a stream that closed: free while the stream's
    /// allowance lasts (in-flight races), waste after.
    pub(super) fn late_frame(&mut self, id: StreamId, now: Instant) {
        if !self.streams.late_frame(id) {
            self.waste(now);
        }
    }

    /// A stream reset early by the peer (rapid reset).
    pub(super) fn rapid_reset(&mut self, now: Instant) {
        self.stats.rapid_resets += 1;
        if self.abuse.resets.hit(self.config.limits.peer_resets, now) {
            self.breach(AbuseLimit::PeerResets);
        }
    }

    /// We reset a stream because of the peer's fault: it is wasted work,
    /// and it counts as the peer's own reset ("MadeYouReset").
    pub(super) fn peer_fault_reset(&mut self, now: Instant) {
        self.waste(now);
        if !self.lifecycle.is_closed() {
            self.rapid_reset(now);
        }
    }

    /// An abuse limit fired: GOAWAY ENHANCE_YOUR_CALM naming it.
    pub(super) fn breach(&mut self, limit: AbuseLimit) {
        if self.lifecycle.is_closed() {
            return;
        }
        self.stats.abuse_breaches += 1;
        self.fail(ConnViolation::Limit(limit));
    }
}

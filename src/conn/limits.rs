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

use std::time::Instant;

use framer::StreamId;

use super::{AbuseLimit, ConnViolation, Connection};

impl Connection {
    /// A frame that did no work (or was refused): one from the budget.
    pub(super) fn waste(&mut self, now: Instant) {
        self.stats.wasted_frames += 1;
        if self.wasted.hit(self.config.limits.wasted_frames, now) {
            self.abuse(AbuseLimit::WastedFrames);
        }
    }

    /// A late frame on a stream that closed: free while the stream's
    /// allowance lasts (in-flight races), waste after.
    pub(super) fn late_frame(&mut self, id: StreamId, now: Instant) {
        let free = if self.recent_resets.contains(id) {
            self.recent_resets.late_frame(id)
        } else {
            self.recent_closed.late_frame(id)
        };
        if !free {
            self.waste(now);
        }
    }

    /// A stream reset early by the peer (rapid reset).
    pub(super) fn rapid_reset(&mut self, now: Instant) {
        self.stats.rapid_resets += 1;
        if self.resets.hit(self.config.limits.peer_resets, now) {
            self.abuse(AbuseLimit::PeerResets);
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
    pub(super) fn abuse(&mut self, limit: AbuseLimit) {
        if self.lifecycle.is_closed() {
            return;
        }
        self.stats.abuse_breaches += 1;
        self.fail(ConnViolation::Limit(limit));
    }
}

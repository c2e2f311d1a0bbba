//! The BDP estimator: measures the connection's bandwidth-delay product
//! with PINGs and says when the receive windows should grow (after
//! grpc-go's `bdp_estimator.go`).
//!
//! One measurement cycle: the first DATA frame that arrives while no
//! sample is in flight starts a sample and asks for a PING with
//! [`BDP_PING_PAYLOAD`]; every DATA byte until the PING's ACK is added to
//! the sample; the ACK gives an RTT sample. With the RTT smoothed, the
//! bandwidth of the cycle is `sample / (1.5 × rtt)`. When the sample is at
//! least `BETA` (2/3) of the current estimate *and* that bandwidth is the
//! highest seen so far, the link was window-limited: the estimate becomes
//! `GAMMA × sample` (2×), capped at [`BDP_LIMIT`], and the caller grows its
//! windows to it.
//!
//! Pacing (our addition; grpc-go pings on every cycle): after a cycle that
//! does not grow the estimate, the next one starts only once another
//! `bdp` bytes (one current window) have arrived. A window-limited
//! transfer samples at least every other round trip and, once a cycle
//! grows the estimate, every round trip again; a ping-pong of small
//! messages, which can never fill the window, no longer sends a PING, a
//! WINDOW_UPDATE and an ACK with every message (one per 64 KiB instead).
//!
//! Invariants:
//! - `bdp ≤ BDP_LIMIT`, and `bdp` never shrinks; at the cap no more PINGs.
//! - At most one BDP PING is in flight: [`BdpEstimator::on_data`] asks for
//!   one only when no sample is open, and only an ACK carrying our payload
//!   closes the sample. A foreign ACK changes nothing.
//! - Sans-IO: no clock reads; time comes in as `Instant` parameters. All
//!   arithmetic saturates; nothing here panics.

use std::time::{Duration, Instant};

/// The largest window the estimator grows to: 16 MiB (grpc-go's
/// `bdpLimit`; TCP buffers rarely exceed this, and it is only a ceiling).
pub const BDP_LIMIT: u32 = 16 << 20;

/// The payload of our BDP PINGs, so their ACKs can be told apart from
/// keepalive PINGs (ASCII `loopyBDP`).
pub const BDP_PING_PAYLOAD: [u8; 8] = *b"loopyBDP";

/// Grow when the sample is at least this fraction of the estimate.
const BETA: f64 = 0.66;
/// The new estimate is this many times the sample (≤ 2 × the real BDP).
const GAMMA: u64 = 2;
/// Weight of a new RTT sample once the average is bootstrapped.
const ALPHA: f64 = 0.9;
/// RTT samples averaged evenly before `ALPHA` takes over.
const BOOTSTRAP_SAMPLES: u64 = 10;
/// A floor for the RTT so a zero-duration sample (same `Instant` for
/// send and ACK) cannot divide by zero.
const MIN_RTT_SECS: f64 = 1e-6;

/// Estimates the bandwidth-delay product from BDP PINGs and the DATA that
/// arrives while each is in flight.
///
/// ```
/// use std::time::{Duration, Instant};
/// use loopy::{BdpEstimator, BDP_PING_PAYLOAD};
///
/// let mut bdp = BdpEstimator::new(65_535);
/// let t0 = Instant::now();
/// assert!(bdp.on_data(16_384)); // first DATA: send a BDP PING
/// bdp.on_ping_sent(t0);
/// assert!(!bdp.on_data(65_535 - 16_384)); // sampled, no second PING
/// // The window was full when the ACK came back: grow to 2 × sample.
/// let grown = bdp.on_ping_ack(BDP_PING_PAYLOAD, t0 + Duration::from_millis(10));
/// assert_eq!(grown, Some(2 * 65_535));
/// assert_eq!(bdp.bdp(), 2 * 65_535);
/// ```
#[derive(Clone, Debug)]
pub struct BdpEstimator {
    /// The current estimate, in bytes; ≤ `BDP_LIMIT`.
    bdp: u32,
    /// Bytes received in the open measurement cycle.
    sample: u32,
    /// The highest bandwidth seen, in bytes per second.
    bw_max: f64,
    /// A sample is open and its PING not yet acknowledged.
    in_flight: bool,
    /// When the open cycle's PING was written, once known.
    sent_at: Option<Instant>,
    /// Cycles started so far (for the RTT bootstrap average).
    sample_count: u64,
    /// Smoothed RTT in seconds; 0 until the first ACK.
    rtt: f64,
    /// Bytes still to arrive before the next cycle may start (set to the
    /// estimate after a cycle that did not grow it).
    pause: u32,
}

impl BdpEstimator {
    /// An estimator starting from the current receive window (grpc-go
    /// starts at its 64 KiB initial window). Values above [`BDP_LIMIT`]
    /// are clamped: the estimator is then at the cap and never pings.
    pub fn new(initial_window: u32) -> BdpEstimator {
        BdpEstimator {
            bdp: initial_window.min(BDP_LIMIT),
            sample: 0,
            bw_max: 0.0,
            in_flight: false,
            sent_at: None,
            sample_count: 0,
            rtt: 0.0,
            pause: 0,
        }
    }

    /// Counts `n` flow-controlled bytes of a DATA frame that just arrived.
    /// Returns `true` when the caller must send a PING with
    /// [`BDP_PING_PAYLOAD`] now: no sample was in flight, so this frame
    /// opens one. Zero-length frames, an estimator at [`BDP_LIMIT`], and
    /// frames that arrive while a pause after a non-growing cycle lasts
    /// never ask for a PING.
    pub fn on_data(&mut self, n: u32) -> bool {
        if self.bdp >= BDP_LIMIT {
            return false;
        }
        if self.in_flight {
            self.sample = self.sample.saturating_add(n);
            return false;
        }
        if n == 0 {
            return false;
        }
        if self.pause > 0 {
            self.pause = self.pause.saturating_sub(n);
            return false;
        }
        self.in_flight = true;
        self.sample = n;
        self.sent_at = None;
        self.sample_count = self.sample_count.saturating_add(1);
        true
    }

    /// The BDP PING was written to the transport at `now` (grpc-go
    /// `timesnap`): the RTT is measured from here. Ignored when no sample
    /// is open.
    pub fn on_ping_sent(&mut self, now: Instant) {
        if self.in_flight {
            self.sent_at = Some(now);
        }
    }

    /// A PING ACK arrived at `now`. An ACK whose payload is not
    /// [`BDP_PING_PAYLOAD`], or that comes when no sample is open, is not
    /// ours: `None`, and nothing changes. Otherwise the sample closes and,
    /// when the estimate grows, the new estimate is returned: the caller
    /// sets its connection and stream receive windows to it (see
    /// `InboundFlow::on_ping_ack`).
    ///
    /// If [`on_ping_sent`](Self::on_ping_sent) was never called for this
    /// cycle there is no RTT sample: the cycle closes without an estimate.
    pub fn on_ping_ack(&mut self, payload: [u8; 8], now: Instant) -> Option<u32> {
        if payload != BDP_PING_PAYLOAD || !self.in_flight {
            return None;
        }
        self.in_flight = false;
        let grown = self.close_cycle(now);
        // A cycle that did not grow the estimate: wait for another window's
        // worth of bytes before the next (see "Pacing" above).
        self.pause = if grown.is_some() { 0 } else { self.bdp };
        grown
    }

    /// Closes the open cycle: the RTT and bandwidth samples, and the grown
    /// estimate if the window was the limit.
    fn close_cycle(&mut self, now: Instant) -> Option<u32> {
        let sent_at = self.sent_at.take()?;
        let rtt_sample = now.saturating_duration_since(sent_at).as_secs_f64();
        if self.sample_count < BOOTSTRAP_SAMPLES {
            // An even average of the first samples (sample_count ≥ 1 here).
            self.rtt += (rtt_sample - self.rtt) / self.sample_count.max(1) as f64;
        } else {
            // Heed the recent past more.
            self.rtt += (rtt_sample - self.rtt) * ALPHA;
        }
        // The sample is at most 1.5 × the real BDP on a saturated link.
        let sample = f64::from(self.sample);
        let bw_current = sample / (self.rtt.max(MIN_RTT_SECS) * 1.5);
        if bw_current > self.bw_max {
            self.bw_max = bw_current;
        }
        // Grow when the sample is ≥ 2/3 of our estimate and this is the
        // highest bandwidth seen: the window, not the link, was the limit.
        let window_limited = sample >= BETA * f64::from(self.bdp);
        if !window_limited || bw_current < self.bw_max || self.bdp >= BDP_LIMIT {
            return None;
        }
        let grown = u64::from(self.sample)
            .saturating_mul(GAMMA)
            .min(u64::from(BDP_LIMIT));
        let grown = u32::try_from(grown).unwrap_or(BDP_LIMIT);
        if grown <= self.bdp {
            return None;
        }
        self.bdp = grown;
        Some(grown)
    }

    /// The current estimate in bytes (the window the estimator last asked
    /// for, or the initial window).
    pub fn bdp(&self) -> u32 {
        self.bdp
    }

    /// True while a BDP PING is outstanding (sent or about to be).
    pub fn sample_in_flight(&self) -> bool {
        self.in_flight
    }

    /// The smoothed round-trip time, once one BDP PING has been acked.
    pub fn rtt(&self) -> Option<Duration> {
        if self.rtt > 0.0 {
            Duration::try_from_secs_f64(self.rtt).ok()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_length_data_does_not_open_a_sample() {
        let mut bdp = BdpEstimator::new(65_535);
        assert!(!bdp.on_data(0));
        assert!(!bdp.sample_in_flight());
        assert!(bdp.on_data(1));
    }

    #[test]
    fn ack_without_ping_sent_closes_the_sample_without_estimate() {
        let mut bdp = BdpEstimator::new(65_535);
        assert!(bdp.on_data(u32::MAX));
        assert_eq!(bdp.on_ping_ack(BDP_PING_PAYLOAD, Instant::now()), None);
        assert!(!bdp.sample_in_flight());
        assert_eq!(bdp.bdp(), 65_535);
    }

    #[test]
    fn zero_rtt_does_not_divide_by_zero() {
        let mut bdp = BdpEstimator::new(65_535);
        let t = Instant::now();
        assert!(bdp.on_data(u32::MAX));
        assert!(!bdp.on_data(u32::MAX));
        bdp.on_ping_sent(t);
        assert_eq!(bdp.on_ping_ack(BDP_PING_PAYLOAD, t), Some(BDP_LIMIT));
        // At the cap: no more PINGs.
        assert!(!bdp.on_data(1));
    }

    #[test]
    fn ack_earlier_than_send_saturates_to_zero_rtt() {
        let mut bdp = BdpEstimator::new(100);
        let t = Instant::now();
        assert!(bdp.on_data(100));
        bdp.on_ping_sent(t + Duration::from_secs(1));
        assert_eq!(bdp.on_ping_ack(BDP_PING_PAYLOAD, t), Some(200));
    }

    #[test]
    fn after_a_cycle_that_does_not_grow_the_next_waits_for_a_window_of_bytes() {
        let mut bdp = BdpEstimator::new(65_536);
        let t = Instant::now();
        // A small message: a cycle, no growth.
        assert!(bdp.on_data(100));
        bdp.on_ping_sent(t);
        assert_eq!(
            bdp.on_ping_ack(BDP_PING_PAYLOAD, t + Duration::from_millis(1)),
            None
        );
        // Small messages no longer start a cycle each...
        for _ in 0..655 {
            assert!(!bdp.on_data(100));
        }
        // ...until 64 KiB have arrived; the frame after that starts one.
        assert!(!bdp.on_data(100));
        assert!(bdp.on_data(100));
        // A cycle that grows the estimate lets the next start at once.
        bdp.on_ping_sent(t);
        assert!(!bdp.on_data(65_536));
        assert_eq!(
            bdp.on_ping_ack(BDP_PING_PAYLOAD, t + Duration::from_millis(1)),
            Some(2 * 65_636)
        );
        assert!(bdp.on_data(1));
    }

    #[test]
    fn initial_window_above_cap_is_clamped() {
        let mut bdp = BdpEstimator::new(u32::MAX);
        assert_eq!(bdp.bdp(), BDP_LIMIT);
        assert!(!bdp.on_data(10));
    }
}

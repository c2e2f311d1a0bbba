//! Connection backoff (grpc/grpc `doc/connection-backoff.md`, grpc-go's
//! `internal/backoff`): how long a subchannel waits between failed connect
//! attempts, and how long one attempt may take.
//!
//! The spec's loop:
//!
//! ```text
//! ConnectWithBackoff()
//!   current_backoff = INITIAL_BACKOFF
//!   current_deadline = now() + INITIAL_BACKOFF
//!   while (TryConnect(Max(current_deadline, now() + MIN_CONNECT_TIMEOUT))
//!          != SUCCESS)
//!     SleepUntil(current_deadline)
//!     current_backoff = Min(current_backoff * MULTIPLIER, MAX_BACKOFF)
//!     current_deadline = now() + current_backoff +
//!       UniformRandom(-JITTER * current_backoff, JITTER * current_backoff)
//! ```
//!
//! [`Backoff::next_delay`] yields the successive `current_deadline - now()`
//! values: the first is exactly `INITIAL_BACKOFF` (no jitter, as the spec,
//! grpc-go and C-core), each next one is the previous un-jittered value
//! times the multiplier, capped at the maximum, then jittered — so a
//! jittered delay may exceed the cap by up to `jitter` (144 s with the
//! defaults). [`Backoff::connect_timeout`] is the `Max(…)` above.
//!
//! Randomness is a parameter (`rng` yields values in `[0, 1)`), so tests
//! can replay a sequence; [`jitter_source`] gives a real one without a
//! crate dependency.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Backoff parameters. [`BackoffConfig::default`] is the spec's: 1 s base,
/// ×1.6, ±20 % jitter, 120 s cap, 20 s minimum connect timeout.
///
/// ```
/// use std::time::Duration;
/// use mio_grpc::client::backoff::BackoffConfig;
///
/// let config = BackoffConfig {
///     max_delay: Duration::from_secs(10),
///     ..BackoffConfig::default()
/// };
/// assert_eq!(config.base_delay, Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The delay after the first failure (`INITIAL_BACKOFF`).
    pub base_delay: Duration,
    /// The factor applied to the delay after each further failure.
    pub multiplier: f64,
    /// The relative spread of the random jitter: each delay after the first
    /// is scaled by a uniform factor in `[1 - jitter, 1 + jitter)`.
    pub jitter: f64,
    /// The cap on the un-jittered delay (`MAX_BACKOFF`).
    pub max_delay: Duration,
    /// The least time one connect attempt is given (`MIN_CONNECT_TIMEOUT`).
    pub min_connect_timeout: Duration,
}

impl Default for BackoffConfig {
    fn default() -> BackoffConfig {
        BackoffConfig {
            base_delay: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max_delay: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// The backoff state of one subchannel: consecutive failures so far.
///
/// ```
/// use std::time::Duration;
/// use mio_grpc::client::backoff::{Backoff, BackoffConfig};
///
/// let mut backoff = Backoff::new(BackoffConfig::default());
/// let mut middle = || 0.5; // no jitter: the factor is 1 + 0.2 * (2 * 0.5 - 1)
/// assert_eq!(backoff.next_delay(&mut middle), Duration::from_secs(1));
/// assert_eq!(backoff.next_delay(&mut middle), Duration::from_millis(1600));
/// assert_eq!(backoff.next_delay(&mut middle), Duration::from_millis(2560));
///
/// // Each attempt gets at least 20 s to connect.
/// assert_eq!(backoff.connect_timeout(Duration::from_secs(1)), Duration::from_secs(20));
///
/// backoff.reset(); // connected: start over
/// assert_eq!(backoff.next_delay(&mut middle), Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    /// The next un-jittered delay, in seconds.
    current: f64,
    failures: u32,
}

impl Backoff {
    /// A fresh backoff with `config`.
    #[must_use]
    pub fn new(config: BackoffConfig) -> Backoff {
        Backoff {
            config,
            current: config.base_delay.as_secs_f64(),
            failures: 0,
        }
    }

    /// The parameters.
    #[must_use]
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// How many delays were handed out since the last reset.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt, counted from the start of the
    /// attempt that just failed. `rng` yields uniform values in `[0, 1)`
    /// (values outside are clamped; NaN counts as 0.5).
    pub fn next_delay(&mut self, rng: &mut impl FnMut() -> f64) -> Duration {
        let max = self.config.max_delay.as_secs_f64();
        let seconds = if self.failures == 0 {
            self.current
        } else {
            // `f64::min` returns the other operand for NaN.
            self.current = (self.current * self.config.multiplier).min(max);
            let unit = rng();
            let unit = if unit.is_nan() {
                0.5
            } else {
                unit.clamp(0.0, 1.0)
            };
            self.current * (1.0 + self.config.jitter * (unit * 2.0 - 1.0))
        };
        self.failures = self.failures.saturating_add(1);
        Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(self.config.max_delay)
    }

    /// Back to the first delay (after a successful connection).
    pub fn reset(&mut self) {
        self.current = self.config.base_delay.as_secs_f64();
        self.failures = 0;
    }

    /// The time an attempt followed by `delay` may take to connect:
    /// `max(delay, min_connect_timeout)`.
    #[must_use]
    pub fn connect_timeout(&self, delay: Duration) -> Duration {
        delay.max(self.config.min_connect_timeout)
    }
}

/// A source of uniform values in `[0, 1)` for jitter: a xorshift64*
/// generator seeded from std's per-process random hasher keys and the
/// clock. Not for cryptography.
///
/// ```
/// use mio_grpc::client::backoff::{jitter_source, Backoff, BackoffConfig};
///
/// let mut rng = jitter_source();
/// let mut backoff = Backoff::new(BackoffConfig::default());
/// backoff.next_delay(&mut rng);
/// let second = backoff.next_delay(&mut rng).as_secs_f64();
/// assert!((1.28..1.92).contains(&second));
/// ```
pub fn jitter_source() -> impl FnMut() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    // xorshift needs a non-zero state.
    let state = Cell::new(hasher.finish() | 1);
    move || {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        let bits = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        // 53 random bits → [0, 1), exactly representable.
        bits as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_out_of_range_rng_are_tamed() {
        let mut backoff = Backoff::new(BackoffConfig::default());
        let _ = backoff.next_delay(&mut || f64::NAN);
        assert_eq!(
            backoff.next_delay(&mut || f64::NAN),
            Duration::from_millis(1600)
        );
        let d = backoff.next_delay(&mut || 7.0);
        assert!(d <= Duration::from_secs_f64(2.56 * 1.2 + 1e-9));
    }

    #[test]
    fn silly_configs_do_not_panic() {
        let config = BackoffConfig {
            base_delay: Duration::MAX,
            multiplier: f64::INFINITY,
            jitter: 5.0,
            max_delay: Duration::MAX,
            min_connect_timeout: Duration::ZERO,
        };
        let mut backoff = Backoff::new(config);
        for _ in 0..5 {
            let _ = backoff.next_delay(&mut || 0.0);
            let _ = backoff.next_delay(&mut || 0.999);
        }
        let nan = BackoffConfig {
            multiplier: f64::NAN,
            ..BackoffConfig::default()
        };
        let mut backoff = Backoff::new(nan);
        for _ in 0..5 {
            let _ = backoff.next_delay(&mut || 0.5);
        }
    }

    #[test]
    fn jitter_source_stays_in_unit_interval() {
        let mut rng = jitter_source();
        for _ in 0..10_000 {
            let x = rng();
            assert!((0.0..1.0).contains(&x));
        }
    }
}

//! Waiting on a condition instead of sleeping: a test orders events by
//! what it can observe (a counter, a state, a flag), never by guessing how
//! long they take. [`wait_until`] polls a predicate up to a deadline; the
//! deadline only bounds a failing test, a passing one returns as soon as
//! the condition holds.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// How long a test waits for something that should happen promptly before
/// calling it a failure. Generous on purpose: a loaded machine is slow,
/// and a passing test never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `condition` until it returns true (`true`) or `timeout` passes
/// (`false`, after one last look). Yields the CPU between polls, at first
/// with `yield_now` and then in steps of at most a millisecond, so the
/// threads that make the condition true get to run on a busy machine.
#[must_use]
pub fn wait_until(mut condition: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut polls = 0u32;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return condition();
        }
        polls += 1;
        if polls < 100 {
            std::thread::yield_now();
        } else {
            // Not a guess at how long anything takes: the polling step.
            std::thread::sleep(Duration::from_micros(u64::from(polls.min(1000))));
        }
    }
}

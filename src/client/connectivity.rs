//! Channel connectivity (grpc/grpc `doc/connectivity-semantics-and-api.md`,
//! grpc-go's `connectivity` package): the five states and [`StateWatch`],
//! the cell a channel keeps its state in and callers block on.
//!
//! ```text
//!              connect / call            transport up
//!   Idle ────────────────────► Connecting ─────────────► Ready
//!    ▲                          │     ▲                   │
//!    │ idle timeout             │fail │ backoff over      │ connection lost
//!    │                          ▼     │                   │
//!    └──────────────────── TransientFailure ◄─────────────┘ (or → Idle)
//!
//!   any state ── close ──► Shutdown (terminal)
//! ```
//!
//! Which transitions happen is the channel's business; the watch only
//! enforces that Shutdown is terminal.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// The connectivity state of a channel or subchannel.
///
/// ```
/// use mio_grpc::client::connectivity::ConnectivityState;
///
/// assert_eq!(ConnectivityState::TransientFailure.to_string(), "TRANSIENT_FAILURE");
/// assert!(ConnectivityState::Shutdown.is_terminal());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// Not connected and not trying; a call or `connect` starts connecting.
    Idle,
    /// Resolving or connecting.
    Connecting,
    /// Connected: calls go out.
    Ready,
    /// The last attempt failed; waiting out the backoff. Calls that do not
    /// wait for ready fail at once with UNAVAILABLE.
    TransientFailure,
    /// Closed by the application; never changes again.
    Shutdown,
}

impl ConnectivityState {
    /// The name grpc-go and C-core print, e.g. `"TRANSIENT_FAILURE"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ConnectivityState::Idle => "IDLE",
            ConnectivityState::Connecting => "CONNECTING",
            ConnectivityState::Ready => "READY",
            ConnectivityState::TransientFailure => "TRANSIENT_FAILURE",
            ConnectivityState::Shutdown => "SHUTDOWN",
        }
    }

    /// Whether this is [`ConnectivityState::Shutdown`], the state nothing
    /// leaves.
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, ConnectivityState::Shutdown)
    }
}

impl fmt::Display for ConnectivityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A connectivity state that threads can read, change and wait on (a
/// mutex and a condition variable).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use mio_grpc::client::connectivity::{ConnectivityState, StateWatch};
///
/// let watch = Arc::new(StateWatch::new(ConnectivityState::Idle));
/// let setter = Arc::clone(&watch);
/// let thread = std::thread::spawn(move || setter.set(ConnectivityState::Connecting));
///
/// let deadline = Instant::now() + Duration::from_secs(5);
/// assert!(watch.wait_for_change(ConnectivityState::Idle, Some(deadline)));
/// assert_eq!(watch.get(), ConnectivityState::Connecting);
/// thread.join().unwrap();
///
/// // Nothing changes: the wait ends at the deadline with `false`.
/// let soon = Instant::now() + Duration::from_millis(10);
/// assert!(!watch.wait_for_change(ConnectivityState::Connecting, Some(soon)));
/// ```
#[derive(Debug)]
pub struct StateWatch {
    state: Mutex<ConnectivityState>,
    changed: Condvar,
    /// Threads in `wait_for_change`, counted under the lock before they
    /// park.
    waiters: AtomicUsize,
}

impl Default for StateWatch {
    /// Starts [`ConnectivityState::Idle`], as a new channel.
    fn default() -> StateWatch {
        StateWatch::new(ConnectivityState::Idle)
    }
}

impl StateWatch {
    /// A watch holding `initial`.
    #[must_use]
    pub fn new(initial: ConnectivityState) -> StateWatch {
        StateWatch {
            state: Mutex::new(initial),
            changed: Condvar::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    /// The current state.
    #[must_use]
    pub fn get(&self) -> ConnectivityState {
        *self.state.lock()
    }

    /// Sets the state and wakes every waiter if it changed. Returns whether
    /// it changed: setting the current state again does nothing, and
    /// nothing leaves [`ConnectivityState::Shutdown`] (returns `false`).
    pub fn set(&self, state: ConnectivityState) -> bool {
        let mut current = self.state.lock();
        if *current == state || current.is_terminal() {
            return false;
        }
        *current = state;
        drop(current);
        self.changed.notify_all();
        true
    }

    /// Blocks until the state is no longer `from` (returns `true`), or
    /// `deadline` passes (returns `false`). Returns `true` at once if the
    /// state already differs from `from`. With no deadline it may block
    /// forever (waiting to leave Shutdown, say).
    pub fn wait_for_change(&self, from: ConnectivityState, deadline: Option<Instant>) -> bool {
        let mut current = self.state.lock();
        if *current != from {
            return true;
        }
        self.waiters.fetch_add(1, Ordering::Relaxed);
        while *current == from {
            match deadline {
                Some(deadline) => {
                    if self.changed.wait_until(&mut current, deadline).timed_out() {
                        break;
                    }
                }
                None => self.changed.wait(&mut current),
            }
        }
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        *current != from
    }

    /// How many threads are blocked in [`StateWatch::wait_for_change`].
    /// A thread is counted only while it holds the lock on its way to
    /// park, so once it is counted any later [`StateWatch::set`] to a new
    /// state wakes it (how a test orders a change after a wait without
    /// sleeping).
    #[must_use]
    pub fn waiters(&self) -> usize {
        let _parked = self.state.lock();
        self.waiters.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn shutdown_is_terminal() {
        let watch = StateWatch::new(ConnectivityState::Ready);
        assert!(watch.set(ConnectivityState::Shutdown));
        assert!(!watch.set(ConnectivityState::Idle));
        assert_eq!(watch.get(), ConnectivityState::Shutdown);
    }

    #[test]
    fn same_state_is_no_change() {
        let watch = StateWatch::default();
        assert!(!watch.set(ConnectivityState::Idle));
    }

    #[test]
    fn past_deadline_returns_at_once() {
        let watch = StateWatch::default();
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        assert!(!watch.wait_for_change(ConnectivityState::Idle, Some(past)));
        assert!(watch.wait_for_change(ConnectivityState::Ready, Some(past)));
    }
}

//! `WriteQuota`: a stream's budget of buffered outbound bytes (grpc-go's
//! `writeQuota`, default 64 KiB). The stream owner acquires before putting
//! DATA and may wait; the writer replenishes as the bytes reach a batch.
//! Closing it (stream reset, connection gone) releases every waiter with an
//! error, so no caller waits forever.

use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// grpc-go's `defaultWriteQuota`: 64 KiB buffered per stream.
pub const DEFAULT_WRITE_QUOTA: u32 = 64 * 1024;

/// Why a quota could not be acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaError {
    /// The stream or connection is gone; nothing more will be written.
    Closed,
    /// The deadline passed while waiting.
    TimedOut,
}

impl std::fmt::Display for QuotaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QuotaError::Closed => "stream closed while waiting for write quota",
            QuotaError::TimedOut => "deadline passed while waiting for write quota",
        })
    }
}

impl std::error::Error for QuotaError {}

#[derive(Debug)]
struct State {
    available: i64,
    closed: bool,
}

/// A per-stream write quota shared by the stream owner and the writer.
///
/// As in grpc-go, an acquire succeeds while any quota is left and may take
/// it below zero (one message is never split for the quota); the next
/// acquire waits until the writer has replenished it above zero.
///
/// ```
/// use loopy::WriteQuota;
/// let quota = WriteQuota::new(10);
/// assert_eq!(quota.try_acquire(25), Ok(true)); // over-draws once
/// assert_eq!(quota.try_acquire(1), Ok(false)); // now must wait
/// quota.replenish(20);
/// assert_eq!(quota.available(), 5);
/// ```
#[derive(Debug)]
pub struct WriteQuota {
    state: Mutex<State>,
    cond: Condvar,
}

impl WriteQuota {
    /// A quota of `limit` bytes.
    pub fn new(limit: u32) -> WriteQuota {
        WriteQuota {
            state: Mutex::new(State {
                available: i64::from(limit),
                closed: false,
            }),
            cond: Condvar::new(),
        }
    }

    /// Takes `n` bytes if any quota is left; `Ok(false)` if the caller
    /// must wait.
    pub fn try_acquire(&self, n: usize) -> Result<bool, QuotaError> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(QuotaError::Closed);
        }
        if state.available <= 0 {
            return Ok(false);
        }
        state.available = state
            .available
            .saturating_sub(i64::try_from(n).unwrap_or(i64::MAX));
        Ok(true)
    }

    /// Takes `n` bytes, blocking while none is left, until `deadline` if
    /// given.
    pub fn acquire(&self, n: usize, deadline: Option<Instant>) -> Result<(), QuotaError> {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return Err(QuotaError::Closed);
            }
            if state.available > 0 {
                state.available = state
                    .available
                    .saturating_sub(i64::try_from(n).unwrap_or(i64::MAX));
                return Ok(());
            }
            match deadline {
                Some(deadline) => {
                    if self.cond.wait_until(&mut state, deadline).timed_out()
                        && state.available <= 0
                    {
                        return Err(if state.closed {
                            QuotaError::Closed
                        } else {
                            QuotaError::TimedOut
                        });
                    }
                }
                None => self.cond.wait(&mut state),
            }
        }
    }

    /// Gives `n` bytes back (the writer, as they are written).
    pub fn replenish(&self, n: usize) {
        let mut state = self.state.lock();
        let was = state.available;
        state.available = state
            .available
            .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        if was <= 0 && state.available > 0 {
            self.cond.notify_all();
        }
    }

    /// Closes the quota: every current and later acquire fails.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.cond.notify_all();
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// The bytes left (negative after an over-draw).
    pub fn available(&self) -> i64 {
        self.state.lock().available
    }
}

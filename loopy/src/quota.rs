//! `WriteQuota`: a stream's budget of buffered outbound bytes (grpc-go's
//! `writeQuota`, default 64 KiB). The stream owner acquires before putting
//! DATA and may wait; the writer replenishes as the bytes reach a batch.
//! Closing it (stream reset, connection gone) releases every waiter with an
//! error, so no caller waits forever.
//!
//! A quota may also draw on [`SendBudget`]s shared by many streams (a
//! connection's, a whole server's): an acquire then also needs room in
//! each of them. Each budget, like the stream quota, lets one acquire
//! over-draw it (a message is never split), so the bytes queued under a
//! budget never exceed its cap plus the largest message.
//!
//! Invariant: the bytes a quota has taken from its budgets and not given
//! back are exactly the bytes acquired and not yet replenished; closing
//! the quota gives them all back (the writer dropped them).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
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
    /// Acquired and not yet replenished (taken from the budgets too).
    outstanding: u64,
    closed: bool,
    /// TEMPORARY shim (replaced by the non-blocking quota work).
    waiter: Option<std::sync::Arc<dyn crate::Wake>>,
}

impl std::fmt::Debug for dyn crate::Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wake")
    }
}

/// Outbound bytes queued by many streams together (a connection's, or a
/// whole server's), with a cap: an acquire on a [`WriteQuota`] drawing on
/// it waits while the budget is at or over its cap. Cheap to clone (one
/// shared counter); two clones compare equal.
///
/// The counts are atomics, so taking and giving bytes (once per message,
/// from any connection of the server) costs no lock; the lock and the
/// condition variable are only for acquires that must wait.
///
/// ```
/// use loopy::{SendBudget, WriteQuota};
/// let server = SendBudget::new(100);
/// let a = WriteQuota::new(1_000).with_budget(server.clone());
/// let b = WriteQuota::new(1_000).with_budget(server.clone());
/// assert_eq!(a.try_acquire(150), Ok(true)); // over-draws the budget once
/// assert_eq!(b.try_acquire(1), Ok(false)); // must wait for room
/// a.replenish(150);
/// assert_eq!(b.try_acquire(1), Ok(true));
/// assert_eq!((server.used(), server.peak()), (1, 150));
/// ```
#[derive(Clone, Debug)]
pub struct SendBudget(Arc<BudgetShared>);

#[derive(Debug)]
struct BudgetShared {
    cap: u64,
    used: AtomicU64,
    peak: AtomicU64,
    /// Acquires waiting for room (counted before they look, so a give
    /// that sees none needs no lock: the waiter will see its bytes).
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl PartialEq for SendBudget {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SendBudget {}

impl SendBudget {
    /// A budget of `cap` bytes (`usize::MAX`: count, never wait).
    pub fn new(cap: usize) -> SendBudget {
        SendBudget(Arc::new(BudgetShared {
            cap: u64::try_from(cap).unwrap_or(u64::MAX),
            used: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }))
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        usize::try_from(self.0.cap).unwrap_or(usize::MAX)
    }

    /// Bytes queued under this budget now.
    pub fn used(&self) -> usize {
        usize::try_from(self.0.used.load(Ordering::SeqCst)).unwrap_or(usize::MAX)
    }

    /// The most bytes ever queued under this budget at once.
    pub fn peak(&self) -> usize {
        usize::try_from(self.0.peak.load(Ordering::SeqCst)).unwrap_or(usize::MAX)
    }

    fn has_room(&self) -> bool {
        self.0.used.load(Ordering::SeqCst) < self.0.cap
    }

    fn take(&self, n: u64) {
        let before = self.0.used.fetch_add(n, Ordering::SeqCst);
        self.0
            .peak
            .fetch_max(before.saturating_add(n), Ordering::SeqCst);
    }

    fn give(&self, n: u64) {
        // Callers give back only what they took, so this never wraps.
        let before = self.0.used.fetch_sub(n, Ordering::SeqCst);
        let crossed = before >= self.0.cap && before.saturating_sub(n) < self.0.cap;
        if crossed {
            self.wake_all();
        }
    }

    /// Waits until the budget has room, the deadline passes, or `closed`
    /// is set (its setter then calls [`SendBudget::wake_all`]); returns
    /// false on the deadline. The waiter is counted before it looks, and
    /// looks under the lock that a waker takes: no lost wake-up.
    fn wait_for_room(&self, deadline: Option<Instant>, closed: &AtomicBool) -> bool {
        let shared = &self.0;
        shared.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = shared.lock.lock();
        let in_time = if self.has_room() || closed.load(Ordering::SeqCst) {
            true
        } else {
            match deadline {
                Some(deadline) => !shared.cond.wait_until(&mut guard, deadline).timed_out(),
                None => {
                    shared.cond.wait(&mut guard);
                    true
                }
            }
        };
        drop(guard);
        shared.waiters.fetch_sub(1, Ordering::SeqCst);
        in_time
    }

    /// Wakes every waiting acquire (none waiting: no lock taken).
    fn wake_all(&self) {
        if self.0.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.0.lock.lock();
            self.0.cond.notify_all();
        }
    }
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
    /// Set by `close`, read by a waiter on a budget (under the budget's
    /// lock) so a close cannot slip between its check and its wait.
    closed: AtomicBool,
    /// At most two: a connection's and a whole server's (inline, so a
    /// stream's quota costs no allocation for them).
    budgets: [Option<SendBudget>; 2],
}

impl WriteQuota {
    /// A quota of `limit` bytes.
    pub fn new(limit: u32) -> WriteQuota {
        WriteQuota {
            state: Mutex::new(State {
                available: i64::from(limit),
                outstanding: 0,
                closed: false,
                waiter: None,
            }),
            cond: Condvar::new(),
            closed: AtomicBool::new(false),
            budgets: [None, None],
        }
    }

    /// This quota also draws on `budget` (call before sharing the quota).
    /// A quota draws on at most two budgets (a connection's and a whole
    /// server's); a third replaces the second.
    pub fn with_budget(mut self, budget: SendBudget) -> WriteQuota {
        match &mut self.budgets {
            [slot @ None, _] | [Some(_), slot] => *slot = Some(budget),
        }
        self
    }

    fn budgets(&self) -> impl Iterator<Item = &SendBudget> {
        self.budgets.iter().flatten()
    }

    /// The first budget without room, if any.
    fn full_budget(&self) -> Option<&SendBudget> {
        self.budgets().find(|b| !b.has_room())
    }

    fn take(&self, state: &mut State, n: usize) {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        state.available = state
            .available
            .saturating_sub(i64::try_from(n).unwrap_or(i64::MAX));
        state.outstanding = state.outstanding.saturating_add(n64);
        for budget in self.budgets() {
            budget.take(n64);
        }
    }

    /// Takes `n` bytes if any quota is left (and every budget has room);
    /// `Ok(false)` if the caller must wait.
    pub fn try_acquire(&self, n: usize) -> Result<bool, QuotaError> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(QuotaError::Closed);
        }
        if state.available <= 0 || self.full_budget().is_some() {
            return Ok(false);
        }
        self.take(&mut state, n);
        Ok(true)
    }

    /// Shim: takes `n` if possible, else registers `waiter`.
    pub fn poll_acquire(
        &self,
        n: usize,
        waiter: &Arc<dyn crate::Wake>,
    ) -> Result<bool, QuotaError> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(QuotaError::Closed);
        }
        if state.available <= 0 || self.full_budget().is_some() {
            state.waiter = Some(waiter.clone());
            return Ok(false);
        }
        self.take(&mut state, n);
        Ok(true)
    }

    /// Shim: true if an acquire would succeed, else registers `waiter`.
    pub fn poll_ready(&self, waiter: &Arc<dyn crate::Wake>) -> Result<bool, QuotaError> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(QuotaError::Closed);
        }
        if state.available <= 0 || self.full_budget().is_some() {
            state.waiter = Some(waiter.clone());
            return Ok(false);
        }
        Ok(true)
    }

    /// Takes `n` bytes, blocking while none is left or a budget is full,
    /// until `deadline` if given.
    pub fn acquire(&self, n: usize, deadline: Option<Instant>) -> Result<(), QuotaError> {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return Err(QuotaError::Closed);
            }
            if state.available > 0 {
                let Some(full) = self.full_budget().cloned() else {
                    self.take(&mut state, n);
                    return Ok(());
                };
                // Wait on the budget without holding the stream's lock (the
                // writer replenishes through it); close() wakes it too.
                drop(state);
                let in_time = full.wait_for_room(deadline, &self.closed);
                state = self.state.lock();
                if !in_time && !state.closed && self.full_budget().is_some() {
                    return Err(QuotaError::TimedOut);
                }
                continue;
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
        if !state.closed {
            let n64 = u64::try_from(n).unwrap_or(u64::MAX).min(state.outstanding);
            state.outstanding -= n64;
            for budget in self.budgets() {
                budget.give(n64);
            }
        }
        let was = state.available;
        state.available = state
            .available
            .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        if was <= 0 && state.available > 0 {
            self.cond.notify_all();
            if let Some(w) = state.waiter.take() {
                w.wake();
            }
        }
    }

    /// Closes the quota: every current and later acquire fails, and the
    /// bytes it still holds go back to its budgets (the writer dropped
    /// them, or will).
    pub fn close(&self) {
        let mut state = self.state.lock();
        if !state.closed {
            state.closed = true;
            self.closed.store(true, Ordering::SeqCst);
            let outstanding = std::mem::take(&mut state.outstanding);
            for budget in self.budgets() {
                budget.give(outstanding);
                budget.wake_all();
            }
        }
        if let Some(w) = state.waiter.take() {
            w.wake();
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn closing_a_quota_gives_its_bytes_back_to_every_budget() {
        let conn = SendBudget::new(10);
        let server = SendBudget::new(100);
        let quota = WriteQuota::new(64)
            .with_budget(conn.clone())
            .with_budget(server.clone());
        assert_eq!(quota.try_acquire(30), Ok(true));
        quota.replenish(5);
        assert_eq!((conn.used(), server.used()), (25, 25));
        quota.close();
        assert_eq!((conn.used(), server.used()), (0, 0));
        // Bytes the writer reports after the close are not given twice.
        quota.replenish(25);
        assert_eq!((conn.used(), server.used()), (0, 0));
        assert_eq!(conn.peak(), 30);
    }

    #[test]
    fn a_waiter_on_a_full_budget_wakes_when_room_is_made() {
        let budget = SendBudget::new(10);
        let a = Arc::new(WriteQuota::new(64).with_budget(budget.clone()));
        let b = Arc::new(WriteQuota::new(64).with_budget(budget.clone()));
        assert_eq!(a.try_acquire(20), Ok(true));
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.acquire(1, None))
        };
        a.replenish(20);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(budget.used(), 1);
    }

    #[test]
    fn a_waiter_on_a_full_budget_fails_when_its_stream_closes() {
        let budget = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(budget.clone());
        let b = Arc::new(WriteQuota::new(64).with_budget(budget.clone()));
        assert_eq!(a.try_acquire(20), Ok(true));
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.acquire(1, None))
        };
        // Whether the waiter got there first or not, it ends with Closed.
        b.close();
        assert_eq!(waiter.join().unwrap(), Err(QuotaError::Closed));
    }

    #[test]
    fn a_waiter_on_a_full_budget_times_out() {
        let budget = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(budget.clone());
        let b = WriteQuota::new(64).with_budget(budget);
        assert_eq!(a.try_acquire(20), Ok(true));
        let deadline = Instant::now();
        assert_eq!(b.acquire(1, Some(deadline)), Err(QuotaError::TimedOut));
    }
}

//! `WriteQuota`: a stream's budget of buffered outbound bytes (grpc-go's
//! `writeQuota`, default 64 KiB). The stream owner acquires before putting
//! DATA; the writer replenishes as the bytes reach a batch. Closing it
//! (stream reset, connection gone) fails every later acquire with an
//! error and wakes every waiter, so no caller waits forever.
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
//!
//! # Backpressure is a signal, not a wait
//!
//! Nothing here blocks a thread (loopy is sans-IO). An acquire that cannot
//! go on now ([`WriteQuota::poll_acquire`], [`WriteQuota::poll_ready`])
//! registers a [`Wake`] and returns `Ok(false)`; the waker is called at
//! least once after an acquire may succeed (the quota replenished above
//! zero, a full budget back under its cap) or the quota is closed.
//! Spurious wakes are allowed, lost ones are not: the caller polls again
//! when woken. A waker is called with no lock of this module held, so it
//! may poll again at once. Threads that may block build their wait on top
//! (the runtime's blocking adapter parks on a condition variable of its
//! own); an event loop just waits for its wake-up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::Wake;

/// grpc-go's `defaultWriteQuota`: 64 KiB buffered per stream.
pub const DEFAULT_WRITE_QUOTA: u32 = 64 * 1024;

/// Why a quota could not be acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaError {
    /// The stream or connection is gone; nothing more will be written.
    Closed,
    /// The deadline passed while waiting (reported by blocking adapters
    /// built on [`WriteQuota::poll_acquire`]; loopy itself never waits).
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

/// Adds `waker` to `list` unless it is there already (same allocation):
/// a caller that polls again after a spurious wake does not grow it.
fn register(list: &mut Vec<Arc<dyn Wake>>, waker: &Arc<dyn Wake>) {
    let ptr = Arc::as_ptr(waker);
    if !list.iter().any(|w| std::ptr::addr_eq(Arc::as_ptr(w), ptr)) {
        list.push(Arc::clone(waker));
    }
}

/// Calls every waker (with no lock held).
fn wake_all(wakers: Vec<Arc<dyn Wake>>) {
    for waker in wakers {
        waker.wake();
    }
}

struct State {
    available: i64,
    /// Acquired and not yet replenished (taken from the budgets too).
    outstanding: u64,
    closed: bool,
    /// Polls that found the quota spent or a budget full; woken when the
    /// quota goes above zero and on close (which is why a waiter on a
    /// budget is listed here too).
    waiters: Vec<Arc<dyn Wake>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("available", &self.available)
            .field("outstanding", &self.outstanding)
            .field("closed", &self.closed)
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// Outbound bytes queued by many streams together (a connection's, or a
/// whole server's), with a cap: an acquire on a [`WriteQuota`] drawing on
/// it cannot go on while the budget is at or over its cap. Cheap to clone
/// (one shared counter); two clones compare equal.
///
/// The counts are atomics, so taking and giving bytes (once per message,
/// from any connection of the server) costs no lock; the lock guards only
/// the list of waiters, and a give takes it only when someone waits and
/// the budget just went back under its cap.
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

struct BudgetShared {
    cap: u64,
    used: AtomicU64,
    peak: AtomicU64,
    /// The length of `waiters`, readable without the lock: a give that
    /// sees zero takes no lock. Raised (under the lock) before the waiter
    /// looks at `used` again, so a give that the waiter's look missed
    /// sees it and wakes.
    waiting: AtomicUsize,
    waiters: Mutex<Vec<Arc<dyn Wake>>>,
}

impl std::fmt::Debug for BudgetShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetShared")
            .field("cap", &self.cap)
            .field("used", &self.used)
            .field("peak", &self.peak)
            .field("waiting", &self.waiting)
            .finish()
    }
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
            waiting: AtomicUsize::new(0),
            waiters: Mutex::new(Vec::new()),
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

    /// Gives `n` bytes back; returns the waiters to wake if that took the
    /// budget back under its cap (the caller wakes them with no lock held).
    #[must_use]
    fn give(&self, n: u64) -> Vec<Arc<dyn Wake>> {
        // Callers give back only what they took, so this never wraps.
        let before = self.0.used.fetch_sub(n, Ordering::SeqCst);
        let crossed = before >= self.0.cap && before.saturating_sub(n) < self.0.cap;
        if crossed && self.0.waiting.load(Ordering::SeqCst) > 0 {
            let mut waiters = self.0.waiters.lock();
            self.0.waiting.store(0, Ordering::SeqCst);
            std::mem::take(&mut *waiters)
        } else {
            Vec::new()
        }
    }

    /// Registers `waker` to be woken when the budget goes back under its
    /// cap; returns true if it has room already (the caller looks again;
    /// the registration stays, a spurious wake at worst).
    ///
    /// No lost wake-up: `waiting` is raised before `used` is read again,
    /// both sequentially consistent. If that read misses a give that
    /// crossed under the cap, the give comes later in the total order, so
    /// its read of `waiting` sees the raise and it drains the list (under
    /// the lock, after this push).
    fn register(&self, waker: &Arc<dyn Wake>) -> bool {
        {
            let mut waiters = self.0.waiters.lock();
            register(&mut waiters, waker);
            self.0.waiting.store(waiters.len(), Ordering::SeqCst);
        }
        self.has_room()
    }
}

/// A per-stream write quota shared by the stream owner and the writer.
///
/// As in grpc-go, an acquire succeeds while any quota is left and may take
/// it below zero (one message is never split for the quota); the next
/// acquire must wait until the writer has replenished it above zero.
/// Waiting is a signal: [`poll_acquire`](WriteQuota::poll_acquire)
/// registers a [`Wake`] that is called when to try again.
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
                waiters: Vec::new(),
            }),
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
    /// `Ok(false)` if the caller must wait (nothing is registered: use
    /// [`poll_acquire`](WriteQuota::poll_acquire) to be woken).
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

    /// Takes `n` bytes if any quota is left and every budget has room
    /// (`Ok(true)`; it may over-draw the quota and the budgets once, as
    /// [`try_acquire`](WriteQuota::try_acquire)). Otherwise registers
    /// `waiter` and returns `Ok(false)`: the waiter is woken at least once
    /// after an acquire may succeed (the quota replenished above zero and
    /// the full budget back under its cap, whoever gave the bytes back) or
    /// the quota is closed; the caller then polls again. Spurious wakes
    /// may happen; a waker is never called with this quota's lock held.
    /// `Err(Closed)` once closed.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use loopy::{Wake, WriteQuota};
    ///
    /// #[derive(Default)]
    /// struct Count(AtomicUsize);
    /// impl Wake for Count {
    ///     fn wake(&self) {
    ///         self.0.fetch_add(1, Ordering::SeqCst);
    ///     }
    /// }
    ///
    /// let count = Arc::new(Count::default());
    /// let waiter: Arc<dyn Wake> = count.clone();
    /// let quota = WriteQuota::new(10);
    /// assert_eq!(quota.poll_acquire(25, &waiter), Ok(true)); // over-draws once
    /// assert_eq!(quota.poll_acquire(1, &waiter), Ok(false)); // registered
    /// quota.replenish(25); // back above zero: the waiter is woken
    /// assert_eq!(count.0.load(Ordering::SeqCst), 1);
    /// assert_eq!(quota.poll_acquire(1, &waiter), Ok(true));
    /// ```
    pub fn poll_acquire(&self, n: usize, waiter: &Arc<dyn Wake>) -> Result<bool, QuotaError> {
        self.poll(Some(n), waiter)
    }

    /// True if an acquire would succeed now (nothing is taken); otherwise
    /// registers `waiter`, woken as for
    /// [`poll_acquire`](WriteQuota::poll_acquire), and returns `Ok(false)`.
    /// `Err(Closed)` once closed. For a sender that has sent and must tell
    /// its producer whether to go on.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use loopy::{NoWake, Wake, WriteQuota};
    /// let waiter: Arc<dyn Wake> = Arc::new(NoWake);
    /// let quota = WriteQuota::new(10);
    /// assert_eq!(quota.poll_ready(&waiter), Ok(true));
    /// assert_eq!(quota.try_acquire(10), Ok(true));
    /// assert_eq!(quota.poll_ready(&waiter), Ok(false)); // woken on replenish
    /// quota.close();
    /// assert_eq!(quota.poll_ready(&waiter), Err(loopy::QuotaError::Closed));
    /// ```
    pub fn poll_ready(&self, waiter: &Arc<dyn Wake>) -> Result<bool, QuotaError> {
        self.poll(None, waiter)
    }

    /// `poll_acquire` (`Some(n)`) or `poll_ready` (`None`). Everything is
    /// decided under the quota's lock, which `replenish` and `close` take
    /// to wake the listed waiters: no wake-up is lost between the look
    /// and the registration. A full budget is looked at again after the
    /// registration there (see [`SendBudget::register`]).
    fn poll(&self, n: Option<usize>, waiter: &Arc<dyn Wake>) -> Result<bool, QuotaError> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(QuotaError::Closed);
        }
        if state.available <= 0 {
            register(&mut state.waiters, waiter);
            return Ok(false);
        }
        // A budget found full again after its registration saw room: the
        // waiter is still listed there, or a give has woken it since (the
        // caller polls again); either way it may stop here.
        let mut registered = [false; 2];
        loop {
            let full = self
                .budgets
                .iter()
                .enumerate()
                .find_map(|(i, b)| b.as_ref().filter(|b| !b.has_room()).map(|b| (i, b)));
            let Some((i, budget)) = full else {
                if let Some(n) = n {
                    self.take(&mut state, n);
                }
                return Ok(true);
            };
            let seen = registered.get(i).copied().unwrap_or(true);
            if seen || !budget.register(waiter) {
                // Listed on the quota too, so `close` wakes it.
                register(&mut state.waiters, waiter);
                return Ok(false);
            }
            if let Some(slot) = registered.get_mut(i) {
                *slot = true;
            }
        }
    }

    /// Gives `n` bytes back (the writer, as they are written). Wakes the
    /// quota's waiters if it goes back above zero, and a budget's if it
    /// goes back under its cap.
    pub fn replenish(&self, n: usize) {
        let mut wake = Vec::new();
        {
            let mut state = self.state.lock();
            if !state.closed {
                let n64 = u64::try_from(n).unwrap_or(u64::MAX).min(state.outstanding);
                state.outstanding -= n64;
                for budget in self.budgets() {
                    wake.extend(budget.give(n64));
                }
            }
            let was = state.available;
            state.available = state
                .available
                .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
            if was <= 0 && state.available > 0 && !state.waiters.is_empty() {
                if wake.is_empty() {
                    wake = std::mem::take(&mut state.waiters);
                } else {
                    wake.append(&mut state.waiters);
                }
            }
        }
        wake_all(wake);
    }

    /// Closes the quota: every later acquire fails, every waiter is woken
    /// (to see the error), and the bytes it still holds go back to its
    /// budgets (the writer dropped them, or will).
    pub fn close(&self) {
        let mut wake = Vec::new();
        {
            let mut state = self.state.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            let outstanding = std::mem::take(&mut state.outstanding);
            for budget in self.budgets() {
                wake.extend(budget.give(outstanding));
            }
            wake.append(&mut state.waiters);
        }
        wake_all(wake);
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
    use std::sync::mpsc;
    use std::time::Duration;

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Count {
        fn get(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn counter() -> (Arc<Count>, Arc<dyn Wake>) {
        let count = Arc::new(Count::default());
        let waker: Arc<dyn Wake> = count.clone();
        (count, waker)
    }

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
    fn over_draw_semantics_are_unchanged() {
        let budget = SendBudget::new(10);
        let quota = WriteQuota::new(10).with_budget(budget.clone());
        let (_, waker) = counter();
        // Any quota left: one message takes it below zero, and the budget
        // past its cap.
        assert_eq!(quota.poll_acquire(25, &waker), Ok(true));
        assert_eq!((quota.available(), budget.used()), (-15, 25));
        assert_eq!(quota.poll_acquire(1, &waker), Ok(false));
        assert_eq!(quota.poll_ready(&waker), Ok(false));
        assert_eq!(quota.try_acquire(1), Ok(false));
        // Above zero again, but the budget is still over its cap.
        quota.replenish(16);
        assert_eq!((quota.available(), budget.used()), (1, 9));
        assert_eq!(quota.poll_acquire(100, &waker), Ok(true));
        assert_eq!((quota.available(), budget.used()), (-99, 109));
        assert_eq!(budget.peak(), 109);
        // poll_ready takes nothing.
        quota.replenish(109);
        assert_eq!(quota.poll_ready(&waker), Ok(true));
        assert_eq!((quota.available(), budget.used()), (10, 0));
    }

    #[test]
    fn a_waiter_is_woken_when_the_quota_goes_back_above_zero() {
        let quota = WriteQuota::new(10);
        let (count, waker) = counter();
        assert_eq!(quota.poll_acquire(25, &waker), Ok(true));
        assert_eq!(quota.poll_acquire(1, &waker), Ok(false));
        // Polling again after a (spurious) wake does not list it twice.
        assert_eq!(quota.poll_ready(&waker), Ok(false));
        quota.replenish(10); // still -5: no acquire may succeed yet
        assert_eq!(count.get(), 0);
        quota.replenish(10);
        assert_eq!(count.get(), 1);
        assert_eq!(quota.poll_acquire(1, &waker), Ok(true));
        // The list was drained: later replenishes wake nobody.
        quota.replenish(100);
        assert_eq!(count.get(), 1);
    }

    #[test]
    fn a_waiter_is_woken_when_the_quota_closes() {
        let quota = WriteQuota::new(10);
        let (count, waker) = counter();
        assert_eq!(quota.try_acquire(10), Ok(true));
        assert_eq!(quota.poll_acquire(1, &waker), Ok(false));
        quota.close();
        assert_eq!(count.get(), 1);
        assert_eq!(quota.poll_acquire(1, &waker), Err(QuotaError::Closed));
        assert_eq!(quota.poll_ready(&waker), Err(QuotaError::Closed));
        quota.close();
        assert_eq!(count.get(), 1);
    }

    #[test]
    fn a_waiter_on_a_shared_budget_is_woken_when_another_quota_frees_it() {
        let budget = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(budget.clone());
        let b = WriteQuota::new(64).with_budget(budget.clone());
        let (count, waker) = counter();
        assert_eq!(a.try_acquire(20), Ok(true));
        assert_eq!(b.poll_acquire(1, &waker), Ok(false));
        assert_eq!(b.poll_ready(&waker), Ok(false));
        a.replenish(5); // 15: still full
        assert_eq!(count.get(), 0);
        a.replenish(15);
        assert_eq!(count.get(), 1);
        assert_eq!(b.poll_acquire(1, &waker), Ok(true));
        assert_eq!(budget.used(), 1);
    }

    #[test]
    fn a_waiter_on_the_second_budget_is_woken_too() {
        let conn = SendBudget::new(100);
        let server = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(server.clone());
        let b = WriteQuota::new(64)
            .with_budget(conn.clone())
            .with_budget(server.clone());
        let (count, waker) = counter();
        assert_eq!(a.try_acquire(10), Ok(true));
        assert_eq!(b.poll_acquire(1, &waker), Ok(false));
        a.close(); // gives the server budget back
        assert_eq!(count.get(), 1);
        assert_eq!(b.poll_acquire(1, &waker), Ok(true));
        assert_eq!((conn.used(), server.used()), (1, 1));
    }

    #[test]
    fn a_waiter_on_a_full_budget_is_woken_when_its_own_quota_closes() {
        let budget = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(budget.clone());
        let b = WriteQuota::new(64).with_budget(budget.clone());
        let (count, waker) = counter();
        assert_eq!(a.try_acquire(20), Ok(true));
        assert_eq!(b.poll_acquire(1, &waker), Ok(false));
        b.close();
        assert!(count.get() >= 1);
        assert_eq!(b.poll_acquire(1, &waker), Err(QuotaError::Closed));
        // The budget is untouched by b's close (it held nothing).
        assert_eq!(budget.used(), 20);
    }

    #[test]
    fn a_waker_may_poll_again_from_inside_wake() {
        // Wakes run with no lock held: polling from `wake` must not
        // deadlock.
        struct Repoll {
            quota: Arc<WriteQuota>,
            got: Mutex<Option<Result<bool, QuotaError>>>,
        }
        impl Wake for Repoll {
            fn wake(&self) {
                *self.got.lock() = Some(self.quota.try_acquire(1));
            }
        }
        let budget = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(budget.clone());
        let quota = Arc::new(WriteQuota::new(1).with_budget(budget));
        let repoll = Arc::new(Repoll {
            quota: quota.clone(),
            got: Mutex::new(None),
        });
        let waker: Arc<dyn Wake> = repoll.clone();
        assert_eq!(quota.poll_acquire(1, &waker), Ok(true));
        assert_eq!(quota.poll_acquire(1, &waker), Ok(false));
        quota.replenish(1);
        assert_eq!(*repoll.got.lock(), Some(Ok(true)));
        // The same through a budget freed by another quota.
        quota.replenish(1);
        *repoll.got.lock() = None;
        assert_eq!(a.try_acquire(20), Ok(true));
        assert_eq!(quota.poll_acquire(1, &waker), Ok(false));
        a.replenish(20);
        assert_eq!(*repoll.got.lock(), Some(Ok(true)));
        assert_eq!(quota.poll_acquire(1, &waker), Ok(false));
        quota.close();
        assert_eq!(*repoll.got.lock(), Some(Err(QuotaError::Closed)));
    }

    /// Wakes by sending on a channel, so a waiting thread can block on it
    /// with a bound (a lost wake fails the test instead of hanging it).
    struct Notify(Mutex<mpsc::Sender<()>>);

    impl Wake for Notify {
        fn wake(&self) {
            let _ = self.0.lock().send(());
        }
    }

    /// One thread acquires a byte at a time, as soon as it may; the other
    /// gives each byte back as soon as it hears it was taken, racing the
    /// acquirer's next look and registration. Each wait for a wake is
    /// bounded: a lost wake fails instead of hanging.
    fn race(quota: Arc<WriteQuota>, rounds: usize) {
        let (taken_tx, taken_rx) = mpsc::channel::<()>();
        let replenisher = {
            let quota = quota.clone();
            std::thread::spawn(move || {
                for () in taken_rx {
                    quota.replenish(1);
                }
            })
        };
        let (wake_tx, wake_rx) = mpsc::channel();
        let waker: Arc<dyn Wake> = Arc::new(Notify(Mutex::new(wake_tx)));
        let mut waits = 0usize;
        for _ in 0..rounds {
            loop {
                // Forget earlier wakes: a wake that counts is one sent
                // after this look began.
                while wake_rx.try_recv().is_ok() {}
                if quota.poll_acquire(1, &waker).unwrap() {
                    break;
                }
                waits += 1;
                assert!(
                    wake_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
                    "lost wake: {quota:?}"
                );
            }
            taken_tx.send(()).unwrap();
        }
        drop(taken_tx);
        replenisher.join().unwrap();
        assert!(waits > 0, "the race never made the acquirer wait");
    }

    #[test]
    fn no_wake_is_lost_when_a_replenish_races_a_poll() {
        race(Arc::new(WriteQuota::new(1)), 20_000);
    }

    #[test]
    fn no_wake_is_lost_when_another_quota_frees_a_shared_budget_during_a_poll() {
        // Neither quota runs out; the budget they share (cap 1) does. The
        // holder takes the budget through its own quota, says so, and
        // gives it back at once, racing the acquirer's look at the budget
        // and its registration there (which the holder's quota lock does
        // not order).
        let budget = SendBudget::new(1);
        let a = WriteQuota::new(u32::MAX).with_budget(budget.clone());
        let b = WriteQuota::new(u32::MAX).with_budget(budget.clone());
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (held_tx, held_rx) = mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            for () in go_rx {
                assert_eq!(b.try_acquire(1), Ok(true));
                held_tx.send(()).unwrap();
                b.replenish(1);
            }
        });
        let (wake_tx, wake_rx) = mpsc::channel();
        let waker: Arc<dyn Wake> = Arc::new(Notify(Mutex::new(wake_tx)));
        let mut waits = 0usize;
        for _ in 0..20_000 {
            go_tx.send(()).unwrap();
            held_rx.recv().unwrap();
            loop {
                while wake_rx.try_recv().is_ok() {}
                if a.poll_acquire(1, &waker).unwrap() {
                    break;
                }
                waits += 1;
                assert!(
                    wake_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
                    "lost wake: {budget:?}"
                );
            }
            a.replenish(1);
        }
        drop(go_tx);
        holder.join().unwrap();
        assert!(waits > 0, "the race never made the acquirer wait");
        assert_eq!(budget.used(), 0);
    }
}

//! Blocking on loopy's non-blocking signals, for threads that may wait
//! (a blocking client call's caller, a blocking handler's worker) — never
//! an event loop, which waits for its own wake-up instead.
//!
//! loopy reports backpressure as "not now, you will be woken"
//! ([`WriteQuota::poll_acquire`]); [`acquire_blocking`] turns that into a
//! wait on a [`Parker`]: a flag and a condition variable that loopy's
//! [`Wake`] sets.

use std::sync::Arc;
use std::time::Instant;

use loopy::{QuotaError, Wake, WriteQuota};
use parking_lot::{Condvar, Mutex};

/// A thread's place to sleep until woken: loopy calls [`Wake::wake`], the
/// thread waits in [`Parker::park`].
#[derive(Debug, Default)]
pub(crate) struct Parker {
    state: Mutex<ParkState>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct ParkState {
    /// Woken since the last [`Parker::reset`].
    woken: bool,
    /// Times a thread went to sleep here (tests order events by it).
    parks: u64,
}

impl Wake for Parker {
    fn wake(&self) {
        let mut state = self.state.lock();
        if !state.woken {
            state.woken = true;
            self.cond.notify_all();
        }
    }
}

impl Parker {
    /// Forgets earlier wakes: call before the look whose "not now" the
    /// following [`park`](Parker::park) waits on, so a wake sent for that
    /// look (from its registration on) is never missed and a stale one
    /// costs one extra look at most.
    pub(crate) fn reset(&self) {
        self.state.lock().woken = false;
    }

    /// Sleeps until woken since the last reset (true) or `deadline`
    /// passes first (false).
    pub(crate) fn park(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.state.lock();
        while !state.woken {
            state.parks += 1;
            match deadline {
                Some(deadline) => {
                    if self.cond.wait_until(&mut state, deadline).timed_out() {
                        return state.woken;
                    }
                }
                None => self.cond.wait(&mut state),
            }
        }
        true
    }

    /// Times a thread went to sleep here.
    #[cfg(test)]
    fn parks(&self) -> u64 {
        self.state.lock().parks
    }
}

thread_local! {
    /// One parker per thread, reused by every wait of that thread, so a
    /// registration left behind by an earlier wait (a deadline passed) is
    /// this same waker and loopy's waiter lists do not grow with each one.
    static PARKER: (Arc<Parker>, Arc<dyn Wake>) = {
        let parker = Arc::new(Parker::default());
        let waker: Arc<dyn Wake> = parker.clone();
        (parker, waker)
    };
}

/// Takes `n` bytes of `quota`, blocking the calling thread while none is
/// left or a budget the quota draws on is full, until `deadline` if given
/// (then `Err(TimedOut)`). `Err(Closed)` once the quota is closed, also
/// while waiting. Never call it on an event-loop thread.
pub(crate) fn acquire_blocking(
    quota: &WriteQuota,
    n: usize,
    deadline: Option<Instant>,
) -> Result<(), QuotaError> {
    // The common case takes no waker.
    if quota.try_acquire(n)? {
        return Ok(());
    }
    PARKER.with(|(parker, waker)| acquire_with(quota, n, deadline, parker, waker))
}

/// [`acquire_blocking`] with a given parker (`waker` is the same parker).
fn acquire_with(
    quota: &WriteQuota,
    n: usize,
    deadline: Option<Instant>,
    parker: &Parker,
    waker: &Arc<dyn Wake>,
) -> Result<(), QuotaError> {
    loop {
        parker.reset();
        if quota.poll_acquire(n, waker)? {
            return Ok(());
        }
        if !parker.park(deadline) {
            // One last look: the bytes may have come just as time ran out.
            return if quota.try_acquire(n)? {
                Ok(())
            } else {
                Err(QuotaError::TimedOut)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use loopy::SendBudget;
    use std::sync::mpsc;
    use std::time::Duration;

    fn parker() -> (Arc<Parker>, Arc<dyn Wake>) {
        let parker = Arc::new(Parker::default());
        let waker: Arc<dyn Wake> = parker.clone();
        (parker, waker)
    }

    /// Runs `acquire_with(quota, 1, deadline)` on another thread with its
    /// own parker; returns once that thread sleeps in it (so whatever the
    /// caller does next happens while it waits), with its result channel.
    fn waiting_acquire(
        quota: &Arc<WriteQuota>,
        deadline: Option<Instant>,
    ) -> mpsc::Receiver<Result<(), QuotaError>> {
        let (parker, waker) = parker();
        let (tx, rx) = mpsc::channel();
        {
            let quota = quota.clone();
            let parker = parker.clone();
            std::thread::spawn(move || {
                tx.send(acquire_with(&quota, 1, deadline, &parker, &waker))
                    .unwrap();
            });
        }
        // Not a sleep: yields until the other thread is parked (bounded
        // only so that a broken adapter fails instead of hanging).
        let give_up = Instant::now() + Duration::from_secs(10);
        while parker.parks() == 0 {
            assert!(Instant::now() < give_up, "the acquire never waited");
            std::thread::yield_now();
        }
        rx
    }

    #[test]
    fn takes_at_once_when_quota_is_left() {
        let quota = WriteQuota::new(10);
        assert_eq!(acquire_blocking(&quota, 25, Some(Instant::now())), Ok(()));
        assert_eq!(quota.available(), -15);
    }

    #[test]
    fn a_passed_deadline_times_out() {
        let quota = WriteQuota::new(10);
        assert_eq!(quota.try_acquire(10), Ok(true));
        assert_eq!(
            acquire_blocking(&quota, 1, Some(Instant::now())),
            Err(QuotaError::TimedOut)
        );
        // The same on a full budget.
        let budget = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(budget.clone());
        let b = WriteQuota::new(64).with_budget(budget);
        assert_eq!(a.try_acquire(20), Ok(true));
        assert_eq!(
            acquire_blocking(&b, 1, Some(Instant::now())),
            Err(QuotaError::TimedOut)
        );
        // A registration left behind by the timed-out wait is harmless.
        a.replenish(20);
        assert_eq!(acquire_blocking(&b, 1, None), Ok(()));
    }

    #[test]
    fn a_deadline_that_passes_while_waiting_times_out() {
        let quota = Arc::new(WriteQuota::new(10));
        assert_eq!(quota.try_acquire(10), Ok(true));
        let result = waiting_acquire(&quota, Some(Instant::now() + Duration::from_millis(20)));
        assert_eq!(result.recv().unwrap(), Err(QuotaError::TimedOut));
    }

    #[test]
    fn a_waiter_is_woken_by_a_replenish_from_another_thread() {
        let quota = Arc::new(WriteQuota::new(10));
        assert_eq!(quota.try_acquire(10), Ok(true));
        let result = waiting_acquire(&quota, None);
        quota.replenish(10);
        assert_eq!(result.recv().unwrap(), Ok(()));
        assert_eq!(quota.available(), 9);
    }

    #[test]
    fn a_waiter_on_a_full_budget_is_woken_when_another_stream_frees_it() {
        let budget = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(budget.clone());
        let b = Arc::new(WriteQuota::new(64).with_budget(budget.clone()));
        assert_eq!(a.try_acquire(20), Ok(true));
        let result = waiting_acquire(&b, None);
        a.replenish(20);
        assert_eq!(result.recv().unwrap(), Ok(()));
        assert_eq!(budget.used(), 1);
    }

    #[test]
    fn a_closed_quota_fails_at_once_and_wakes_its_waiter() {
        let quota = WriteQuota::new(10);
        quota.close();
        assert_eq!(acquire_blocking(&quota, 1, None), Err(QuotaError::Closed));

        let quota = Arc::new(WriteQuota::new(10));
        assert_eq!(quota.try_acquire(10), Ok(true));
        let result = waiting_acquire(&quota, None);
        quota.close();
        assert_eq!(result.recv().unwrap(), Err(QuotaError::Closed));
    }

    #[test]
    fn a_waiter_on_a_full_budget_fails_when_its_own_stream_closes() {
        let budget = SendBudget::new(10);
        let a = WriteQuota::new(64).with_budget(budget.clone());
        let b = Arc::new(WriteQuota::new(64).with_budget(budget));
        assert_eq!(a.try_acquire(20), Ok(true));
        let result = waiting_acquire(&b, None);
        b.close();
        assert_eq!(result.recv().unwrap(), Err(QuotaError::Closed));
    }
}

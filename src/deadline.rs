//! The deadline timer: one thread per server or channel that expires calls
//! whose deadline has passed (server: DEADLINE_EXCEEDED then RST_STREAM
//! CANCEL; client: the call fails with DEADLINE_EXCEEDED and is reset).
//! Calls are held weakly: a call that finished and went away costs nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// Something with a deadline.
pub(crate) trait Expire: Send + Sync {
    /// The deadline passed.
    fn expire(&self);
}

struct Entry {
    at: Instant,
    seq: u64,
    call: Weak<dyn Expire>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    stopped: bool,
}

/// The shared timer; `run` is its thread's body.
#[derive(Default)]
pub(crate) struct Deadlines {
    state: Mutex<State>,
    cond: Condvar,
}

impl Deadlines {
    /// Expires `call` at `at` unless it finished first.
    pub(crate) fn add<T: Expire + 'static>(&self, at: Instant, call: &Arc<T>) {
        let call: Arc<dyn Expire> = call.clone();
        let mut state = self.state.lock();
        state.seq += 1;
        let seq = state.seq;
        let earliest = state.heap.peek().is_none_or(|Reverse(e)| at < e.at);
        state.heap.push(Reverse(Entry {
            at,
            seq,
            call: Arc::downgrade(&call),
        }));
        if earliest {
            self.cond.notify_one();
        }
    }

    pub(crate) fn stop(&self) {
        self.state.lock().stopped = true;
        self.cond.notify_all();
    }

    pub(crate) fn run(&self) {
        let mut state = self.state.lock();
        loop {
            if state.stopped {
                return;
            }
            let now = Instant::now();
            match state.heap.peek().map(|Reverse(e)| e.at) {
                Some(at) if at <= now => {
                    if let Some(Reverse(entry)) = state.heap.pop() {
                        if let Some(call) = entry.call.upgrade() {
                            drop(state);
                            call.expire();
                            state = self.state.lock();
                        }
                    }
                }
                Some(at) => {
                    let _ = self.cond.wait_until(&mut state, at);
                }
                None => self.cond.wait(&mut state),
            }
        }
    }
}

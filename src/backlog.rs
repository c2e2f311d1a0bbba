//! `Backlog`: received messages the application has not consumed yet,
//! and the flow-control window withheld because of them (both the server's
//! streaming handlers and the client's streaming calls use it).

use parking_lot::Mutex;

/// Bytes of complete messages the reader has not consumed yet, and window
/// withheld because of them: while more than `limit` such bytes wait,
/// newly arrived bytes keep their window closed (backpressure to the
/// sender); the reader's reads reopen it. Bytes of a message still being
/// assembled always release (bounded by the message size limit), so a
/// message larger than the window can complete.
/// Memory per call stays under `limit` plus one receive window.
pub(crate) struct Backlog {
    state: Mutex<(usize, usize)>,
    limit: usize,
}

impl Backlog {
    pub(crate) fn new(limit: usize) -> Backlog {
        Backlog {
            state: Mutex::new((0, 0)),
            limit,
        }
    }

    /// `n` DATA bytes arrived: how many to release now.
    pub(crate) fn on_arrival(&self, n: usize) -> usize {
        let mut state = self.state.lock();
        let (queued, withheld) = &mut *state;
        if *queued > self.limit {
            *withheld += n;
            0
        } else {
            n
        }
    }

    /// A complete message of `wire` bytes was queued for the handler.
    pub(crate) fn queued(&self, wire: usize) {
        self.state.lock().0 += wire;
    }

    /// The handler took a message of `wire` bytes: how many withheld
    /// bytes to release now.
    pub(crate) fn consumed(&self, wire: usize) -> usize {
        let mut state = self.state.lock();
        let (queued, withheld) = &mut *state;
        *queued = queued.saturating_sub(wire);
        if *queued <= self.limit {
            std::mem::take(withheld)
        } else {
            0
        }
    }
}

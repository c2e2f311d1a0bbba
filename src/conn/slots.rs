//! `HandlerSlots`: the cap on a connection's streams that the application
//! is still working on (MAX_CONCURRENT_STREAMS applied to handlers, as
//! grpc-go does since CVE-2023-44487).
//!
//! The connection frees a stream's concurrency slot when the stream ends
//! or is reset, whoever reset it; a handler may still be running then. A
//! session takes a [`Slot`] when a request arrives and moves it into the
//! handler's job, so the slot is held until the handler returns (or the
//! request is dropped before a handler started). A request that finds no
//! slot free is refused ([`Connection::refuse`](super::Connection::refuse)):
//! a peer that resets streams, or makes us reset them, cannot pile up
//! running handlers past the cap.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// One connection's running-handler count and its cap.
#[derive(Debug)]
pub(crate) struct HandlerSlots {
    running: Arc<AtomicU32>,
    limit: u32,
}

impl HandlerSlots {
    /// At most `limit` slots taken at once.
    pub(crate) fn new(limit: u32) -> HandlerSlots {
        HandlerSlots {
            running: Arc::new(AtomicU32::new(0)),
            limit,
        }
    }

    /// A slot, or `None` if `limit` are taken.
    pub(crate) fn try_take(&self) -> Option<Slot> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()?;
        Some(Slot(self.running.clone()))
    }

    /// Slots taken now.
    #[cfg(test)]
    pub(crate) fn taken(&self) -> u32 {
        self.running.load(Ordering::Acquire)
    }
}

/// A taken slot; dropping it frees it (on any thread).
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_freed_on_drop() {
        let slots = HandlerSlots::new(2);
        let a = slots.try_take().unwrap();
        let b = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        drop(a);
        assert_eq!(slots.taken(), 1);
        let c = std::thread::spawn(move || {
            drop(b);
        });
        c.join().unwrap();
        assert_eq!(slots.taken(), 0);
        assert!(slots.try_take().is_some());
    }
}

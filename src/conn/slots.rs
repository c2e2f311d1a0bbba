//! Admission: the cap on a server connection's requests that the
//! application is still working on (MAX_CONCURRENT_STREAMS applied to
//! handlers, as grpc-go does since CVE-2023-44487).
//!
//! The connection frees a stream's concurrency slot when the stream ends
//! or is reset, whoever reset it; a handler may still be running then.
//! So each request also takes a [`Slot`] when the connection reports it;
//! the application takes it over ([`Connection::take_slot`]) while it
//! handles the [`ConnEvent::Request`] and holds it until its handler
//! returns. A slot not taken by then is freed at the connection's next
//! step (the next event polled, the next read or timeout) — even when the
//! stream is already gone, the request's event is delivered first, so the
//! application always gets its slot. A new request that finds every slot taken is
//! not refused: the connection holds its [`ConnEvent::Request`] and stops
//! reading (the peer's frames wait in the socket) until a slot frees — the
//! slot's drop wakes the connection's loop. A peer that resets streams, or
//! makes us reset them, cannot pile up running handlers past the cap, and
//! an honest client whose next request races a handler's last instants is
//! served a moment later instead of refused.
//!
//! [`Connection::take_slot`]: super::Connection::take_slot
//! [`ConnEvent::Request`]: super::ConnEvent::Request

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use loopy::{StreamKey, Wake};

use super::ConnEvent;

/// The count shared by a connection's slots.
struct Shared {
    running: AtomicU32,
    limit: u32,
    /// A request is held: the next slot freed wakes the connection.
    waiting: AtomicBool,
    waker: Arc<dyn Wake>,
}

/// A request's handler slot. Dropping it (on any thread) frees it.
pub struct Slot(Arc<Shared>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
        if self.0.waiting.swap(false, Ordering::AcqRel) {
            self.0.waker.wake();
        }
    }
}

/// A server connection's admission gate: slots, the slots reserved for
/// requests the application has not taken yet, and the held request.
pub(super) struct Admission {
    shared: Arc<Shared>,
    reserved: HashMap<StreamKey, Slot>,
    /// Requests delivered whose slot the application may still take, until
    /// the next step.
    delivered: Vec<StreamKey>,
    held: Option<(StreamKey, ConnEvent)>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("running", &self.shared.running.load(Ordering::Relaxed))
            .field("limit", &self.shared.limit)
            .field("held", &self.held.is_some())
            .finish()
    }
}

impl Admission {
    /// At most `limit` requests at once; `waker` wakes the connection's
    /// owner when a held request may go on.
    pub(super) fn new(limit: u32, waker: Arc<dyn Wake>) -> Admission {
        Admission {
            shared: Arc::new(Shared {
                running: AtomicU32::new(0),
                limit,
                waiting: AtomicBool::new(false),
                waker,
            }),
            reserved: HashMap::new(),
            delivered: Vec::new(),
            held: None,
        }
    }

    /// The application has seen the request on `key` (its event was
    /// polled): its slot is the application's to take until [`Admission::sweep`].
    pub(super) fn delivered(&mut self, key: StreamKey) {
        if self.reserved.contains_key(&key) {
            self.delivered.push(key);
        }
    }

    /// Frees the slots of delivered requests that the application did not
    /// take.
    pub(super) fn sweep(&mut self) {
        for key in self.delivered.drain(..) {
            self.reserved.remove(&key);
        }
    }

    fn try_take(&self) -> Option<Slot> {
        let shared = &self.shared;
        shared
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < shared.limit).then_some(n + 1)
            })
            .ok()?;
        Some(Slot(shared.clone()))
    }

    /// A new request: reported now with a slot reserved (`Some(event)`),
    /// or held until a slot frees (`None`; stop reading).
    pub(super) fn admit(&mut self, key: StreamKey, event: ConnEvent) -> Option<ConnEvent> {
        if let Some(slot) = self.try_take() {
            self.reserved.insert(key, slot);
            return Some(event);
        }
        self.shared.waiting.store(true, Ordering::Release);
        // A slot freed between the try and the flag did not wake us.
        if let Some(slot) = self.try_take() {
            self.shared.waiting.store(false, Ordering::Release);
            self.reserved.insert(key, slot);
            return Some(event);
        }
        self.held = Some((key, event));
        None
    }

    /// True while a request waits for a slot (the connection reads no more).
    pub(super) fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// The held request, if a slot has freed for it.
    pub(super) fn release(&mut self) -> Option<ConnEvent> {
        let (key, _) = self.held.as_ref()?;
        let key = *key;
        let slot = self.try_take()?;
        self.shared.waiting.store(false, Ordering::Release);
        self.reserved.insert(key, slot);
        self.held.take().map(|(_, event)| event)
    }

    /// The application takes over `key`'s slot.
    pub(super) fn take(&mut self, key: StreamKey) -> Option<Slot> {
        self.reserved.remove(&key)
    }

    /// `key`'s stream is gone: a held request is dropped with its stream
    /// (a reserved slot stays until its request is delivered and swept).
    pub(super) fn forget(&mut self, key: StreamKey) {
        if self.held.as_ref().is_some_and(|(k, _)| *k == key) {
            self.held = None;
            self.shared.waiting.store(false, Ordering::Release);
        }
    }

    /// Slots taken now (reserved or held by the application).
    #[cfg(test)]
    fn running(&self) -> u32 {
        self.shared.running.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct CountWake(AtomicUsize);
    impl Wake for CountWake {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn request(n: u32) -> ConnEvent {
        ConnEvent::Closed {
            key: StreamKey::from(framer::StreamId::new(n)),
        }
    }

    #[test]
    fn a_request_past_the_cap_is_held_until_a_slot_frees_and_the_drop_wakes() {
        let wake = Arc::new(CountWake(AtomicUsize::new(0)));
        let mut admission = Admission::new(1, wake.clone());
        let (k1, k3) = (StreamKey(1), StreamKey(3));
        assert!(admission.admit(k1, request(1)).is_some());
        let slot = admission.take(k1).unwrap();
        assert!(admission.admit(k3, request(3)).is_none());
        assert!(admission.is_holding());
        assert!(admission.release().is_none());
        assert_eq!(wake.0.load(Ordering::SeqCst), 0);
        std::thread::spawn(move || drop(slot)).join().unwrap();
        assert_eq!(wake.0.load(Ordering::SeqCst), 1);
        assert_eq!(admission.release(), Some(request(3)));
        assert!(!admission.is_holding());
        assert_eq!(admission.running(), 1);
        // A delivered request's slot nobody took goes at the next step.
        admission.delivered(k3);
        assert_eq!(admission.running(), 1);
        admission.sweep();
        assert_eq!(admission.running(), 0);
    }

    #[test]
    fn slots_freed_without_a_held_request_wake_nobody() {
        let wake = Arc::new(CountWake(AtomicUsize::new(0)));
        let mut admission = Admission::new(2, wake.clone());
        assert!(admission.admit(StreamKey(1), request(1)).is_some());
        drop(admission.take(StreamKey(1)));
        assert_eq!(wake.0.load(Ordering::SeqCst), 0);
        assert_eq!(admission.running(), 0);
    }
}

//! `ControlBuffer`: the inbox for commands from other threads — the queue
//! any thread puts [`Item`]s into and the connection's owner drains
//! (grpc-go's `controlBuffer`). The connection's own commands do not pass
//! through it: it calls the [`Writer`](crate::Writer) directly.
//!
//! - One short lock per put and per drain (the owner swaps the whole queue
//!   out at once).
//! - Wake-up: a put wakes the consumer only if it said it was waiting
//!   (grpc-go's `consumerWaiting`), so a busy writer costs no wake-ups.
//! - Order: the writer applies items in put order, and applies everything
//!   already put before any direct command of the connection, so a direct
//!   command never overtakes an item put before it.
//! - The peer's SETTINGS_MAX_HEADER_LIST_SIZE is checked at put: a header
//!   list over it is refused before it is queued (RFC 9113 §6.5.2).
//! - Close: after [`finish`] every put is refused and hands its item back,
//!   and `finish` returns what was never delivered, so callers can fail
//!   their calls rather than lose them.
//!
//! [`finish`]: ControlBuffer::finish

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::{Item, StreamKey};

/// Wakes the owner of a control buffer (an event loop, a test), or a
/// sender waiting for write quota ([`WriteQuota::poll_acquire`]). Kept as
/// a trait so loopy does not depend on mio.
///
/// [`WriteQuota::poll_acquire`]: crate::WriteQuota::poll_acquire
pub trait Wake: Send + Sync {
    /// A control buffer calls it at most once per transition from waiting
    /// to having work; a write quota at least once after an acquire may
    /// succeed (spurious calls possible), never with its lock held.
    fn wake(&self);
}

/// A `Wake` that does nothing, for owners that poll.
#[derive(Debug, Default)]
pub struct NoWake;

impl Wake for NoWake {
    fn wake(&self) {}
}

/// Why a put was refused. The item comes back either way.
#[derive(Debug)]
pub enum PutError {
    /// The buffer was closed by [`ControlBuffer::finish`].
    Closed(Item),
    /// The item's header list is larger than the peer's
    /// SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2): nothing was queued.
    HeaderListTooLarge {
        /// The list's size (name + value + 32 per field).
        size: usize,
        /// The peer's limit.
        limit: u32,
        /// The refused item.
        item: Item,
    },
    /// The caller's check in [`ControlBuffer::execute_and_put`] said no.
    Rejected(Item),
}

impl PutError {
    /// The item that was not queued.
    pub fn into_item(self) -> Item {
        match self {
            PutError::Closed(item)
            | PutError::Rejected(item)
            | PutError::HeaderListTooLarge { item, .. } => item,
        }
    }
}

impl std::fmt::Display for PutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PutError::Closed(_) => f.write_str("the connection is closed"),
            PutError::HeaderListTooLarge { size, limit, .. } => {
                write!(
                    f,
                    "header list of {size} octets exceeds the peer's limit of {limit}"
                )
            }
            PutError::Rejected(_) => f.write_str("the put's check refused it"),
        }
    }
}

impl std::error::Error for PutError {}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Item>,
    consumer_waiting: bool,
    closed: bool,
}

/// The control buffer of one connection. Share it in an `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use loopy::{ControlBuffer, Item, NoWake};
/// use framer::Reason;
///
/// let buffer = ControlBuffer::new(Arc::new(NoWake));
/// let key = buffer.new_stream_key();
/// buffer.put(Item::Reset { key, reason: Reason::CANCEL }).unwrap();
/// let undelivered = buffer.finish();
/// assert_eq!(undelivered.len(), 1);
/// assert!(buffer.put(Item::Reset { key, reason: Reason::CANCEL }).is_err());
/// ```
pub struct ControlBuffer {
    inner: Mutex<Inner>,
    waker: std::sync::Arc<dyn Wake>,
    /// The peer's SETTINGS_MAX_HEADER_LIST_SIZE (u32::MAX: unlimited).
    peer_max_header_list_size: AtomicU32,
    next_key: AtomicU64,
}

impl std::fmt::Debug for ControlBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlBuffer")
            .field("queued", &self.inner.lock().items.len())
            .finish_non_exhaustive()
    }
}

impl ControlBuffer {
    /// A buffer whose owner is woken through `waker`.
    pub fn new(waker: std::sync::Arc<dyn Wake>) -> ControlBuffer {
        ControlBuffer {
            inner: Mutex::new(Inner::default()),
            waker,
            peer_max_header_list_size: AtomicU32::new(u32::MAX),
            next_key: AtomicU64::new(1),
        }
    }

    /// A fresh key for a client stream.
    pub fn new_stream_key(&self) -> StreamKey {
        StreamKey(self.next_key.fetch_add(1, Ordering::Relaxed))
    }

    /// Queues `item`. Refused (item handed back) after
    /// [`finish`](ControlBuffer::finish), or when its header list exceeds
    /// the peer's limit.
    pub fn put(&self, item: Item) -> Result<(), PutError> {
        self.execute_and_put(|| true, item)
    }

    /// Queues `item` without waking the owner, for a thread that holds the
    /// connection and runs the writer itself right after (the direct-write
    /// path). Same refusals as [`put`](ControlBuffer::put).
    pub fn put_quiet(&self, item: Item) -> Result<(), PutError> {
        self.enqueue(|| true, item, false)
    }

    /// Runs `check` under the buffer's lock and queues `item` only if it
    /// returns true (grpc-go's `executeAndPut`): check-then-enqueue with no
    /// put in between, e.g. "only if the stream is still open".
    pub fn execute_and_put(
        &self,
        check: impl FnOnce() -> bool,
        item: Item,
    ) -> Result<(), PutError> {
        self.enqueue(check, item, true)
    }

    fn enqueue(
        &self,
        check: impl FnOnce() -> bool,
        item: Item,
        may_wake: bool,
    ) -> Result<(), PutError> {
        if let Some(fields) = item.header_fields() {
            let limit = self.peer_max_header_list_size.load(Ordering::Relaxed);
            let size: usize = fields
                .iter()
                .map(framer::hpack::HeaderField::list_size)
                .sum();
            if u32::try_from(size).map_or(true, |s| s > limit) {
                return Err(PutError::HeaderListTooLarge { size, limit, item });
            }
        }
        let wake = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(PutError::Closed(item));
            }
            if !check() {
                return Err(PutError::Rejected(item));
            }
            inner.items.push_back(item);
            may_wake && std::mem::take(&mut inner.consumer_waiting)
        };
        if wake {
            self.waker.wake();
        }
        Ok(())
    }

    /// Moves every queued item to the back of `out`; returns how many. If
    /// there were none, marks the consumer as waiting, so the next put wakes
    /// it.
    pub fn drain_into(&self, out: &mut VecDeque<Item>) -> usize {
        let mut inner = self.inner.lock();
        let n = inner.items.len();
        if n == 0 {
            inner.consumer_waiting = true;
        } else if out.is_empty() {
            std::mem::swap(&mut inner.items, out);
        } else {
            out.extend(inner.items.drain(..));
        }
        n
    }

    /// Moves every queued item to the back of `out` without marking the
    /// consumer as waiting: the writer catching up before a direct command
    /// (it is at work, not about to wait).
    pub(crate) fn take_pending(&self, out: &mut VecDeque<Item>) {
        let mut inner = self.inner.lock();
        if out.is_empty() {
            std::mem::swap(&mut inner.items, out);
        } else {
            out.extend(inner.items.drain(..));
        }
    }

    /// The consumer is at work and will drain the buffer before it waits
    /// again: puts until then need not wake it. Call it before running code
    /// that may put (e.g. the application's callbacks on the loop thread),
    /// and drain after; the drain that finds the buffer empty marks the
    /// consumer waiting again.
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use loopy::{ControlBuffer, Item, Wake};
    /// use framer::Reason;
    ///
    /// struct Count(AtomicUsize);
    /// impl Wake for Count {
    ///     fn wake(&self) { self.0.fetch_add(1, Ordering::Relaxed); }
    /// }
    /// let wakes = Arc::new(Count(AtomicUsize::new(0)));
    /// let buffer = ControlBuffer::new(wakes.clone());
    /// let mut out = VecDeque::new();
    /// buffer.drain_into(&mut out); // empty: the consumer waits
    /// buffer.consumer_busy(); // ...but is about to run callbacks
    /// let key = buffer.new_stream_key();
    /// buffer.put(Item::Reset { key, reason: Reason::CANCEL }).unwrap();
    /// assert_eq!(wakes.0.load(Ordering::Relaxed), 0);
    /// assert_eq!(buffer.drain_into(&mut out), 1);
    /// buffer.drain_into(&mut out); // empty again: waiting
    /// buffer.put(Item::Reset { key, reason: Reason::CANCEL }).unwrap();
    /// assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
    /// ```
    pub fn consumer_busy(&self) {
        self.inner.lock().consumer_waiting = false;
    }

    /// The peer's SETTINGS_MAX_HEADER_LIST_SIZE as last applied (`u32::MAX`
    /// if it never sent one).
    pub fn peer_max_header_list_size(&self) -> u32 {
        self.peer_max_header_list_size.load(Ordering::Relaxed)
    }

    /// The writer applied the peer's SETTINGS_MAX_HEADER_LIST_SIZE: puts
    /// check header lists against it from now on.
    pub(crate) fn set_peer_max_header_list_size(&self, limit: u32) {
        self.peer_max_header_list_size
            .store(limit, Ordering::Relaxed);
    }

    /// Closes the buffer: later puts fail with [`PutError::Closed`]; the
    /// items never drained are returned so their callers can be failed.
    pub fn finish(&self) -> Vec<Item> {
        let mut inner = self.inner.lock();
        inner.closed = true;
        inner.items.drain(..).collect()
    }

    /// True once [`finish`](ControlBuffer::finish) has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }
}

//! A counting global allocator: the system allocator plus a relaxed atomic
//! count of allocations (and reallocations), so a run can report heap
//! allocations per call. Install it in a binary with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
//!
//! Optionally ([`track_heap`], off by default so the latency runs pay
//! nothing for it) it also keeps the live heap: bytes, and blocks by size
//! class, which the idle-streams scenario uses to say what an open stream
//! allocates.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Size classes of the live-heap histogram: class `k` holds blocks of
/// (2^(k-1), 2^k] bytes (class 0: empty blocks), the last one everything
/// larger.
pub const SIZE_CLASSES: usize = 24;

static TRACK: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: [AtomicI64; SIZE_CLASSES] = [const { AtomicI64::new(0) }; SIZE_CLASSES];
static LIVE_CLASS_BYTES: [AtomicI64; SIZE_CLASSES] = [const { AtomicI64::new(0) }; SIZE_CLASSES];

/// The size class of a block of `size` bytes (see [`SIZE_CLASSES`]).
///
/// ```
/// use mio_grpc_bench::alloc::size_class;
/// assert_eq!((size_class(0), size_class(1), size_class(64), size_class(65)), (0, 0, 6, 7));
/// ```
pub fn size_class(size: usize) -> usize {
    let bits = (usize::BITS - size.saturating_sub(1).leading_zeros()) as usize;
    if size <= 1 {
        0
    } else {
        bits.min(SIZE_CLASSES - 1)
    }
}

/// The largest block size in class `k` (`usize::MAX` for the last).
pub fn class_limit(k: usize) -> usize {
    if k + 1 >= SIZE_CLASSES {
        usize::MAX
    } else {
        1 << k
    }
}

fn live(size: usize, sign: i64) {
    if TRACK.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
        let k = size_class(size);
        LIVE_BLOCKS[k].fetch_add(sign, Ordering::Relaxed);
        LIVE_CLASS_BYTES[k].fetch_add(sign * size as i64, Ordering::Relaxed);
    }
}

/// Starts (or stops) keeping the live heap. Blocks allocated while it was
/// off and freed while it is on count negative: compare two snapshots
/// taken while it is on.
pub fn track_heap(on: bool) {
    TRACK.store(on, Ordering::Relaxed);
}

/// The live heap as tracked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveHeap {
    /// Bytes in live blocks.
    pub bytes: i64,
    /// Live blocks by size class.
    pub blocks: [i64; SIZE_CLASSES],
    /// Bytes in live blocks by size class.
    pub class_bytes: [i64; SIZE_CLASSES],
}

/// The live heap as tracked (zeros unless [`track_heap`] was on).
pub fn live_heap() -> LiveHeap {
    let load = |from: &[AtomicI64; SIZE_CLASSES]| {
        let mut out = [0; SIZE_CLASSES];
        for (o, a) in out.iter_mut().zip(from) {
            *o = a.load(Ordering::Relaxed);
        }
        out
    };
    LiveHeap {
        bytes: LIVE_BYTES.load(Ordering::Relaxed),
        blocks: load(&LIVE_BLOCKS),
        class_bytes: load(&LIVE_CLASS_BYTES),
    }
}

/// The system allocator, counting every `alloc`, `alloc_zeroed` and
/// `realloc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAlloc;

// SAFETY: every method delegates to `System` with the caller's arguments
// unchanged; the counter is a side effect that neither allocates nor
// touches the memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        live(layout.size(), 1);
        // SAFETY: forwarded from our caller, who upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        live(layout.size(), 1);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(layout.size(), -1);
        // SAFETY: `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        live(layout.size(), -1);
        live(new_size, 1);
        // SAFETY: `ptr` came from `System`; the rest is forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made so far in this process (0 unless [`CountingAlloc`] is
/// the global allocator).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_powers_of_two() {
        assert_eq!(size_class(2), 1);
        assert_eq!(size_class(3), 2);
        assert_eq!(size_class(4), 2);
        assert_eq!(size_class(1024), 10);
        assert_eq!(size_class(1025), 11);
        assert_eq!(size_class(usize::MAX), SIZE_CLASSES - 1);
        for size in [2, 3, 64, 65, 1000, 4096] {
            let k = size_class(size);
            assert!(
                size <= class_limit(k) && size > class_limit(k - 1),
                "{size}"
            );
        }
    }
}

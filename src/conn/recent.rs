//! `RecentStreams`: the last few hundred stream ids that closed (normally,
//! or by a reset), each with the late frames the peer has sent on it since.
//!
//! RFC 9113 §5.1 lets frames already in flight arrive after a stream
//! closes (a WINDOW_UPDATE after END_STREAM, a RST_STREAM crossing ours,
//! DATA sent before our RST_STREAM got there). A peer gets
//! [`LATE_FRAMES_FREE`] such frames per stream for free; past that, each
//! one costs from the connection's wasted-frames budget.

use std::collections::VecDeque;

use framer::StreamId;

/// Ids remembered.
pub(super) const CAPACITY: usize = 256;

/// Late frames a closed stream may receive before they count as waste
/// (a WINDOW_UPDATE and a RST_STREAM racing the close, say).
pub(super) const LATE_FRAMES_FREE: u8 = 2;

/// A bounded FIFO of recently closed stream ids.
#[derive(Debug, Default)]
pub(super) struct RecentStreams {
    ids: VecDeque<(StreamId, u8)>,
}

impl RecentStreams {
    /// Remembers `id` (forgetting the oldest past [`CAPACITY`]).
    pub(super) fn push(&mut self, id: StreamId) {
        if self.ids.len() == CAPACITY {
            self.ids.pop_front();
        }
        self.ids.push_back((id, 0));
    }

    /// True if `id` is remembered.
    pub(super) fn contains(&self, id: StreamId) -> bool {
        self.ids.iter().any(|(i, _)| *i == id)
    }

    /// Counts a late frame on `id`: true while it is one of the stream's
    /// free ones; false when `id` is not remembered or its allowance is
    /// spent.
    pub(super) fn late_frame(&mut self, id: StreamId) -> bool {
        match self.ids.iter_mut().rev().find(|(i, _)| *i == id) {
            Some((_, seen)) => {
                *seen = seen.saturating_add(1);
                *seen <= LATE_FRAMES_FREE
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_late_frames_are_free_then_they_cost() {
        let mut recent = RecentStreams::default();
        recent.push(StreamId::new(1));
        assert!(recent.contains(StreamId::new(1)));
        assert!(recent.late_frame(StreamId::new(1)));
        assert!(recent.late_frame(StreamId::new(1)));
        assert!(!recent.late_frame(StreamId::new(1)));
        assert!(!recent.late_frame(StreamId::new(3)));
    }

    #[test]
    fn only_the_newest_ids_are_kept() {
        let mut recent = RecentStreams::default();
        for i in 0..=CAPACITY as u32 {
            recent.push(StreamId::new(1 + 2 * i));
        }
        assert!(!recent.contains(StreamId::new(1)));
        assert!(recent.contains(StreamId::new(3)));
        assert!(recent.contains(StreamId::new(1 + 2 * CAPACITY as u32)));
    }
}

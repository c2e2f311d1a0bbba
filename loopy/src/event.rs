//! What the writer reports: per-write totals ([`Written`]) and per-stream
//! [`Event`]s, returned rather than delivered through callbacks.

use framer::{Reason, StreamId};

use crate::StreamKey;

/// The totals of one [`Writer::write`](crate::Writer::write) call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes added to the batch.
    pub bytes: usize,
    /// Frames added to the batch.
    pub frames: usize,
    /// True when nothing more can be written now: every queue is empty or
    /// waits for a window or a stream slot. False when the budget ran out
    /// first (call again once the batch is sent).
    pub drained: bool,
}

/// Why queued output was dropped without being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    /// We reset the stream ([`Item::Reset`](crate::Item::Reset),
    /// [`Writer::reset`](crate::Writer::reset) or
    /// [`Writer::queue_rst`](crate::Writer::queue_rst)).
    Reset(Reason),
    /// The stream was cleaned up ([`Writer::cleanup`](crate::Writer::cleanup)).
    Cleanup,
    /// The peer's GOAWAY: the stream is above its last stream id, or was
    /// never opened. The peer did not process it: safe to retry elsewhere.
    PeerGoAway,
    /// We sent GOAWAY (client): the stream was never opened.
    GoingAway,
    /// The client's stream ids ran out (2^31 − 1): never opened.
    StreamIdsExhausted,
    /// The peer's WINDOW_UPDATE overflowed the stream window (RFC 9113
    /// §6.9.1): we reset it with FLOW_CONTROL_ERROR.
    FlowControl,
    /// The item named a stream loopy does not have (never registered, or
    /// already finished or reset), or broke the stream's order (data after
    /// END_STREAM, a server `Open`, a reused key).
    Invalid,
    /// The writer was closed.
    Closed,
}

/// Something that happened to a stream while writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Client: the stream's HEADERS was written with this id.
    Opened {
        /// The caller's key.
        key: StreamKey,
        /// The id assigned.
        id: StreamId,
    },
    /// END_STREAM was written: our side of the stream is done.
    Finished {
        /// The stream.
        key: StreamKey,
    },
    /// Queued output was dropped.
    Dropped {
        /// The stream.
        key: StreamKey,
        /// Why.
        cause: DropCause,
        /// True if the stream's HEADERS had been written (the peer may have
        /// seen the stream: a retry is not automatically safe).
        opened: bool,
        /// DATA bytes dropped.
        bytes: usize,
        /// True if an END_STREAM was among what was dropped (the stream's
        /// output was complete but never fully sent).
        end_stream: bool,
    },
    /// A PING (not an ack) was written; for RTT and BDP sampling.
    PingSent {
        /// Its payload.
        payload: [u8; 8],
    },
}

/// Counters of the send side, for the connection's stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Frames written, by type octet (0..=9; unknown types are not written).
    pub frames_by_type: [u64; 10],
    /// Bytes written, by frame type octet (headers included).
    pub bytes_by_type: [u64; 10],
    /// All bytes put into batches.
    pub bytes: u64,
    /// DATA payload bytes.
    pub data_bytes: u64,
    /// Times a stream stopped on its own send window.
    pub stream_window_stalls: u64,
    /// Times a stream stopped on the connection send window.
    pub connection_window_stalls: u64,
    /// Streams opened (client) or registered (server).
    pub streams_started: u64,
    /// Streams whose output was dropped.
    pub streams_dropped: u64,
    /// Calls to `write`.
    pub writes: u64,
}

/// A connection error found while applying the peer's settings or window
/// updates: send GOAWAY with `reason` and close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionError {
    /// The RFC 9113 code (FLOW_CONTROL_ERROR).
    pub reason: Reason,
    /// What happened.
    pub detail: &'static str,
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for ConnectionError {}

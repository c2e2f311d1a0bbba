//! `OutStream`: one outbound stream's queue, send window and scheduling
//! state.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use framer::hpack::HeaderList;
use framer::StreamId;

use crate::WriteQuota;

/// Where a stream stands in the writer's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendState {
    /// Client: the opening HEADERS waits for the peer's
    /// MAX_CONCURRENT_STREAMS (in the pending-open queue).
    Pending,
    /// Nothing to write.
    Empty,
    /// In the active list: something can be written now.
    Active,
    /// DATA at the front, and the stream's send window is ≤ 0.
    WaitingOnWindow,
    /// DATA at the front, a positive stream window, and the connection
    /// window is ≤ 0 (in the connection-wait list).
    WaitingOnConnection,
}

/// One queued piece of a stream's output, in order.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// HEADERS (response headers, or trailers with END_STREAM). Needs no
    /// window.
    Headers {
        fields: HeaderList,
        end_stream: bool,
    },
    /// DATA; the remaining bytes shrink as frames are cut from the front.
    Data { data: Bytes, end_stream: bool },
}

impl Chunk {
    /// True when writing the chunk's next frame needs send window.
    pub(crate) fn needs_window(&self) -> bool {
        matches!(self, Chunk::Data { data, .. } if !data.is_empty())
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Chunk::Headers { .. } => 0,
            Chunk::Data { data, .. } => data.len(),
        }
    }

    pub(crate) fn end_stream(&self) -> bool {
        match self {
            Chunk::Headers { end_stream, .. } | Chunk::Data { end_stream, .. } => *end_stream,
        }
    }
}

/// The writer's record of one outbound stream.
#[derive(Debug)]
pub(crate) struct OutStream {
    /// Assigned when opened (client) or given at registration (server).
    pub(crate) id: Option<StreamId>,
    pub(crate) state: SendState,
    pub(crate) queue: VecDeque<Chunk>,
    /// Send window (RFC 9113 §6.9): may go negative after a SETTINGS
    /// decrease (§6.9.2).
    pub(crate) window: i64,
    /// DATA bytes queued and not yet written.
    pub(crate) queued_bytes: usize,
    pub(crate) quota: Option<Arc<WriteQuota>>,
    /// An END_STREAM chunk has been queued: nothing may follow it.
    pub(crate) end_queued: bool,
    /// END_STREAM has been written.
    pub(crate) end_sent: bool,
    /// Counts against the peer's MAX_CONCURRENT_STREAMS (client streams
    /// once opened).
    pub(crate) counted: bool,
}

impl OutStream {
    pub(crate) fn new(
        id: Option<StreamId>,
        window: i64,
        quota: Option<Arc<WriteQuota>>,
    ) -> OutStream {
        OutStream {
            id,
            state: if id.is_some() {
                SendState::Empty
            } else {
                SendState::Pending
            },
            queue: VecDeque::new(),
            window,
            queued_bytes: 0,
            quota,
            end_queued: false,
            end_sent: false,
            counted: false,
        }
    }

    /// The state an opened stream should be in, given its queue and window
    /// (ignoring the connection window, which is checked when writing).
    pub(crate) fn ready_state(&self) -> SendState {
        match self.queue.front() {
            None => SendState::Empty,
            Some(chunk) if chunk.needs_window() && self.window <= 0 => SendState::WaitingOnWindow,
            Some(_) => SendState::Active,
        }
    }
}

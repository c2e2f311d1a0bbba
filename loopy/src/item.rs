//! `Item`: everything that can be put into a connection's control buffer
//! (grpc-go's controlbuf items, as one closed enum), and `StreamKey`, the
//! handle by which callers name an outbound stream.

use std::sync::Arc;

use bytes::Bytes;
use framer::hpack::HeaderList;
use framer::{GoAway, Reason, Settings, StreamId};

use crate::WriteQuota;

/// A caller's handle for an outbound stream.
///
/// A server uses the stream id the peer chose (`StreamKey::from(id)`); a
/// client takes a fresh key from
/// [`ControlBuffer::new_stream_key`](crate::ControlBuffer::new_stream_key),
/// because its stream ids are assigned when the opening HEADERS is written
/// ([`Event::Opened`](crate::Event::Opened) reports the id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey(pub u64);

impl From<StreamId> for StreamKey {
    fn from(id: StreamId) -> StreamKey {
        StreamKey(u64::from(id.value()))
    }
}

/// One command for the writer. Closed: no boxed `Any`, no stored closures.
#[derive(Debug)]
pub enum Item {
    /// Client: open a stream with these request headers. Waits in loopy
    /// while the peer's MAX_CONCURRENT_STREAMS is reached; its stream id is
    /// assigned when the HEADERS is written, in the order streams were put.
    Open {
        /// The caller's key for the stream.
        key: StreamKey,
        /// The request headers.
        fields: HeaderList,
        /// END_STREAM on the HEADERS (a request with no body).
        end_stream: bool,
        /// The stream's write quota, replenished as its DATA is written.
        quota: Option<Arc<WriteQuota>>,
    },
    /// Server: a stream the peer opened, so that its response can be
    /// queued. Sends nothing.
    Register {
        /// The caller's key (conventionally `StreamKey::from(id)`).
        key: StreamKey,
        /// The stream id the peer used.
        id: StreamId,
        /// The stream's write quota.
        quota: Option<Arc<WriteQuota>>,
    },
    /// HEADERS on an open stream: response headers, or trailers when
    /// `end_stream`. Queued behind the stream's data, so trailers go only
    /// after all of it.
    Headers {
        /// The stream.
        key: StreamKey,
        /// The fields, HPACK-encoded when written.
        fields: HeaderList,
        /// END_STREAM (trailers).
        end_stream: bool,
    },
    /// DATA for a stream: cut to the windows and MAX_FRAME_SIZE when written.
    Data {
        /// The stream.
        key: StreamKey,
        /// The bytes (any length; empty with `end_stream` is allowed).
        data: Bytes,
        /// END_STREAM on the last frame.
        end_stream: bool,
    },
    /// Reset a stream of ours (e.g. a cancelled call): RST_STREAM if it has
    /// an id, then its queue is purged and reported.
    Reset {
        /// The stream.
        key: StreamKey,
        /// The error code.
        reason: Reason,
    },
    /// RST_STREAM on a stream id loopy need not know, in response to
    /// something the peer did (refused stream, stream error). Counted for
    /// flood control.
    RstStream {
        /// The stream id.
        id: StreamId,
        /// The error code.
        reason: Reason,
    },
    /// Forget a stream without sending anything (it closed: both sides
    /// done, or the peer reset it). Releases its concurrency slot.
    Cleanup {
        /// The stream.
        key: StreamKey,
    },
    /// Our WINDOW_UPDATE (inbound flow control).
    WindowUpdate {
        /// The stream, or 0 for the connection.
        id: StreamId,
        /// The increment.
        increment: u32,
    },
    /// Our SETTINGS.
    Settings(Settings),
    /// Acknowledge the peer's SETTINGS (urgent; counted for flood control).
    SettingsAck,
    /// A PING, or the ack of the peer's (urgent; counted for flood control).
    Ping {
        /// True for an acknowledgement.
        ack: bool,
        /// The opaque payload.
        payload: [u8; 8],
    },
    /// Our GOAWAY. A client opens no streams after it.
    GoAway(GoAway),
    /// The peer's SETTINGS, to apply to the send side (initial window
    /// delta, MAX_FRAME_SIZE, MAX_CONCURRENT_STREAMS, HEADER_TABLE_SIZE,
    /// MAX_HEADER_LIST_SIZE).
    PeerSettings(Settings),
    /// The peer's WINDOW_UPDATE, to apply to a send window.
    PeerWindowUpdate {
        /// The stream, or 0 for the connection.
        id: StreamId,
        /// The increment.
        increment: u32,
    },
    /// The peer's GOAWAY: a client purges its streams above
    /// `last_stream_id` (retryable: the peer never processed them) and
    /// opens no more.
    PeerGoAway {
        /// The last stream the peer may have processed.
        last_stream_id: StreamId,
    },
}

impl Item {
    /// True for frames the peer causes us to send (SETTINGS ack, PING ack,
    /// RST_STREAM in response): counted against the flood limit.
    pub fn is_transport_response(&self) -> bool {
        matches!(
            self,
            Item::SettingsAck | Item::Ping { ack: true, .. } | Item::RstStream { .. }
        )
    }

    /// The header fields the item will send, if any.
    pub(crate) fn header_fields(&self) -> Option<&HeaderList> {
        match self {
            Item::Open { fields, .. } | Item::Headers { fields, .. } => Some(fields),
            _ => None,
        }
    }
}

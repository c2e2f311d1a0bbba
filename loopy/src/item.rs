//! `Item`: what the application puts into a connection's control buffer
//! from any thread (grpc-go's controlbuf items, as one closed enum, minus
//! those the connection now gives the writer directly), and `StreamKey`,
//! the handle by which callers name an outbound stream.

use std::sync::Arc;

use bytes::Bytes;
use framer::hpack::HeaderList;
use framer::{Reason, StreamId};

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

/// One command for the writer from the application, put into the
/// [`ControlBuffer`](crate::ControlBuffer) from any thread. Closed: no
/// boxed `Any`, no stored closures.
///
/// The connection's own commands (the peer's SETTINGS and WINDOW_UPDATEs,
/// its control frames, stream registration and cleanup) are not items:
/// the connection holds the [`Writer`](crate::Writer) and calls its methods
/// directly.
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
}

impl Item {
    /// The header fields the item will send, if any.
    pub(crate) fn header_fields(&self) -> Option<&HeaderList> {
        match self {
            Item::Open { fields, .. } | Item::Headers { fields, .. } => Some(fields),
            _ => None,
        }
    }
}

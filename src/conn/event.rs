//! `ConnEvent`: what a connection reports to its application, in order.

use bytes::Bytes;
use framer::hpack::HeaderList;
use framer::{Reason, StreamId};
use loopy::{DropCause, StreamKey};

use super::head::{RequestHead, ResponseHead};
use super::ConnViolation;

/// Why a connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// We found a connection error and sent GOAWAY with its code
    /// ([`ConnViolation::reason`]) and its text as debug data.
    LocalError(ConnViolation),
    /// The application closed the connection (GOAWAY with this code), e.g.
    /// a server stopping hard.
    Aborted {
        /// The code sent.
        reason: Reason,
        /// Why, as the application said.
        detail: String,
    },
    /// The peer sent GOAWAY with an error code.
    PeerError {
        /// The code received.
        reason: Reason,
        /// The peer's debug data, lossily as text.
        debug: String,
    },
    /// A graceful end: both sides done after GOAWAY.
    Done,
    /// The peer stopped answering keepalive pings.
    KeepaliveTimeout,
    /// The peer never acknowledged our SETTINGS.
    SettingsTimeout,
    /// The transport closed (EOF or an I/O error, reported by the driver).
    Transport(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::LocalError(violation) => {
                write!(f, "protocol error ({}): {violation}", violation.reason())
            }
            CloseReason::Aborted { reason, detail } => write!(f, "closed ({reason}): {detail}"),
            CloseReason::PeerError { reason, debug } if debug.is_empty() => {
                write!(f, "the peer sent GOAWAY {reason}")
            }
            CloseReason::PeerError { reason, debug } => {
                write!(f, "the peer sent GOAWAY {reason}: {debug}")
            }
            CloseReason::Done => f.write_str("closed after GOAWAY"),
            CloseReason::KeepaliveTimeout => f.write_str("keepalive ping not answered in time"),
            CloseReason::SettingsTimeout => f.write_str("SETTINGS not acknowledged in time"),
            CloseReason::Transport(detail) => write!(f, "transport closed: {detail}"),
        }
    }
}

/// Something that happened on a connection.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnEvent {
    /// Server: a client opened a stream with a valid request head. Its
    /// handler slot is reserved: take it with
    /// [`Connection::take_slot`](super::Connection::take_slot) while
    /// handling this event.
    Request {
        /// The stream (also its key).
        id: StreamId,
        /// The validated request.
        head: RequestHead,
        /// No body follows.
        end_stream: bool,
    },
    /// Client: our stream got its id (its HEADERS was written).
    Opened {
        /// The caller's key.
        key: StreamKey,
        /// The id.
        id: StreamId,
    },
    /// Client: response headers (1xx included; the caller decides).
    Response {
        /// The stream.
        key: StreamKey,
        /// The validated head.
        head: ResponseHead,
        /// No body or trailers follow.
        end_stream: bool,
    },
    /// DATA for a stream. Call
    /// [`Connection::release_capacity`](super::Connection::release_capacity)
    /// once consumed, to reopen the window.
    Data {
        /// The stream.
        key: StreamKey,
        /// The bytes (padding removed).
        data: Bytes,
        /// The peer's last frame on the stream.
        end_stream: bool,
    },
    /// Trailers: the peer's last frame on the stream.
    Trailers {
        /// The stream.
        key: StreamKey,
        /// The fields.
        fields: HeaderList,
    },
    /// The stream ended abnormally: the peer reset it (`remote`), or we
    /// did because it broke a rule.
    Reset {
        /// The stream.
        key: StreamKey,
        /// The code.
        reason: Reason,
        /// True if the peer sent the RST_STREAM.
        remote: bool,
    },
    /// Our side of a stream was fully written (END_STREAM sent).
    Sent {
        /// The stream.
        key: StreamKey,
    },
    /// Output for a stream was dropped (reset, GOAWAY, close): the call it
    /// belongs to failed.
    Dropped {
        /// The stream.
        key: StreamKey,
        /// Why.
        cause: DropCause,
        /// True if the stream's HEADERS had been written.
        opened: bool,
    },
    /// Both ends of a stream are done: its record is gone.
    Closed {
        /// The stream.
        key: StreamKey,
    },
    /// The peer sent GOAWAY: no new streams; those above `last_stream_id`
    /// were not processed (client calls there may be retried).
    GoAway {
        /// The last stream the peer may have processed.
        last_stream_id: StreamId,
        /// Its code.
        reason: Reason,
        /// Its debug data.
        debug_data: Bytes,
    },
    /// A PING we sent was answered.
    Pong {
        /// The payload.
        payload: [u8; 8],
    },
    /// The connection is finished; the driver should close the socket once
    /// the pending output is written.
    ConnectionClosed {
        /// Why.
        reason: CloseReason,
    },
}

//! The connection's outbound commands as the layers above it name them:
//! [`Command`] (open a stream, send headers, data or trailers, reset), the
//! refusal [`SendError`], and [`Inbox`], the handle through which other
//! threads queue commands for a connection they do not hold.
//!
//! A command becomes loopy's `Item` here and nowhere else: the server, the
//! client and the HTTP layer never name loopy's items or the control
//! buffer. Holding the connection, a session sends with
//! [`Connection::send`](super::Connection::send); from another thread, the
//! runtime's `ConnHandle::send` (which writes directly when the connection
//! is free) or an [`Inbox`].

use std::sync::Arc;

use bytes::Bytes;
use framer::hpack::HeaderList;
use framer::Reason;
use loopy::{ControlBuffer, Item, PutError, StreamKey, WriteQuota};

/// One outbound command for a stream of the connection.
#[derive(Debug)]
pub enum Command {
    /// Client: open a stream with these request headers. Waits while the
    /// peer's MAX_CONCURRENT_STREAMS is reached; its stream id is assigned
    /// when the HEADERS is written, in the order streams were opened.
    Open {
        /// The caller's key for the stream (from
        /// [`Inbox::new_stream_key`] or the runtime handle's).
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
    /// an id, then its queued output is dropped.
    Reset {
        /// The stream.
        key: StreamKey,
        /// The error code.
        reason: Reason,
    },
}

impl From<Command> for Item {
    fn from(command: Command) -> Item {
        match command {
            Command::Open {
                key,
                fields,
                end_stream,
                quota,
            } => Item::Open {
                key,
                fields,
                end_stream,
                quota,
            },
            Command::Headers {
                key,
                fields,
                end_stream,
            } => Item::Headers {
                key,
                fields,
                end_stream,
            },
            Command::Data {
                key,
                data,
                end_stream,
            } => Item::Data {
                key,
                data,
                end_stream,
            },
            Command::Reset { key, reason } => Item::Reset { key, reason },
        }
    }
}

impl From<Item> for Command {
    fn from(item: Item) -> Command {
        match item {
            Item::Open {
                key,
                fields,
                end_stream,
                quota,
            } => Command::Open {
                key,
                fields,
                end_stream,
                quota,
            },
            Item::Headers {
                key,
                fields,
                end_stream,
            } => Command::Headers {
                key,
                fields,
                end_stream,
            },
            Item::Data {
                key,
                data,
                end_stream,
            } => Command::Data {
                key,
                data,
                end_stream,
            },
            Item::Reset { key, reason } => Command::Reset { key, reason },
        }
    }
}

/// Why a command was refused. The command comes back either way; nothing
/// was queued.
#[derive(Debug)]
pub enum SendError {
    /// The connection is closed (or closing past the point of taking
    /// commands).
    Closed(Command),
    /// The command's header list is larger than the peer's
    /// SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2).
    HeaderListTooLarge {
        /// The list's size (name + value + 32 per field).
        size: usize,
        /// The peer's limit.
        limit: u32,
        /// The refused command.
        command: Command,
    },
}

impl SendError {
    /// The command that was not queued.
    pub fn into_command(self) -> Command {
        match self {
            SendError::Closed(command) | SendError::HeaderListTooLarge { command, .. } => command,
        }
    }
}

impl From<PutError> for SendError {
    fn from(err: PutError) -> SendError {
        match err {
            PutError::HeaderListTooLarge { size, limit, item } => SendError::HeaderListTooLarge {
                size,
                limit,
                command: item.into(),
            },
            // A plain put has no check to refuse it: only a closed buffer
            // does.
            PutError::Closed(item) | PutError::Rejected(item) => SendError::Closed(item.into()),
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("the connection is closed"),
            SendError::HeaderListTooLarge { size, limit, .. } => write!(
                f,
                "header list of {size} octets exceeds the peer's limit of {limit}"
            ),
        }
    }
}

impl std::error::Error for SendError {}

/// A connection's inbox for commands from threads that do not hold it:
/// what they send is written by the connection's owner at its next
/// transmit (the owner is woken if it waits). Cheap to clone.
#[derive(Clone)]
pub struct Inbox(Arc<ControlBuffer>);

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl Inbox {
    pub(super) fn new(buffer: Arc<ControlBuffer>) -> Inbox {
        Inbox(buffer)
    }

    /// A fresh key for a client stream (for [`Command::Open`]).
    pub fn new_stream_key(&self) -> StreamKey {
        self.0.new_stream_key()
    }

    /// Queues `command`, waking the connection's owner if it waits.
    pub fn send(&self, command: Command) -> Result<(), SendError> {
        Ok(self.0.put(command.into())?)
    }

    /// Queues `command` without waking the owner: for a thread that holds
    /// the connection and runs its output itself right after (the runtime's
    /// direct-write path).
    pub(crate) fn send_quiet(&self, command: Command) -> Result<(), SendError> {
        Ok(self.0.put_quiet(command.into())?)
    }
}

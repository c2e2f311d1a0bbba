//! Stream states (RFC 9113 §5.1). Push is never enabled, so the reserved
//! states never occur.
//!
//! ```text
//!                          +--------+
//!                  send H  |        |  recv H
//!                 ,--------+  idle  +--------.
//!                /         |        |         \
//!               v          +--------+          v
//!        +----------+          |           +----------+
//!        |          |          | send H /  |          |
//! ,------+ reserved |          | recv H    | reserved +------.
//! |      | (local)  |          |           | (remote) |      |
//! |      +---+------+          v           +------+---+      |
//! |          |             +--------+             |          |
//! |          |     recv ES |        | send ES     |          |
//! |   send H |     ,-------+  open  +-------.     | recv H   |
//! |          |    /        |        |        \    |          |
//! |          v   v         +---+----+         v   v          |
//! |      +----------+          |           +----------+      |
//! |      |   half-  |          |           |   half-  |      |
//! |      |  closed  |          | send R /  |  closed  |      |
//! |      | (remote) |          | recv R    | (local)  |      |
//! |      +----+-----+          |           +-----+----+      |
//! |           |                |                 |           |
//! |           | send ES /      |       recv ES / |           |
//! |           |  send R /      v        send R / |           |
//! |           |  recv R    +--------+   recv R   |           |
//! | send R /  `----------->|        |<-----------'  send R / |
//! | recv R                 | closed |               recv R   |
//! `----------------------->|        |<-----------------------'
//!                          +--------+
//! ```
//!
//! Idle streams are not stored (a peer stream id above the highest seen is
//! idle), nor are closed ones (an id at or below it with no record is
//! closed). A record exists from HEADERS until both ends have sent
//! END_STREAM, or a reset.

/// The state of a stored stream: `Open` or one of the half-closed states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Both ends may send.
    Open,
    /// We sent END_STREAM; the peer may still send.
    HalfClosedLocal,
    /// The peer sent END_STREAM; we may still send.
    HalfClosedRemote,
}

/// An end of a stream finished sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Us.
    Local,
    /// The peer.
    Remote,
}

impl StreamState {
    /// The state after `side` sends END_STREAM; `None` means closed.
    pub fn end(self, side: Side) -> Option<StreamState> {
        match (self, side) {
            (StreamState::Open, Side::Local) => Some(StreamState::HalfClosedLocal),
            (StreamState::Open, Side::Remote) => Some(StreamState::HalfClosedRemote),
            (StreamState::HalfClosedLocal, Side::Local) => Some(self),
            (StreamState::HalfClosedRemote, Side::Remote) => Some(self),
            (StreamState::HalfClosedLocal, Side::Remote)
            | (StreamState::HalfClosedRemote, Side::Local) => None,
        }
    }

    /// True while the peer may still send DATA or trailers (§5.1: a
    /// half-closed (remote) stream answers them with STREAM_CLOSED).
    pub fn peer_may_send(self) -> bool {
        matches!(self, StreamState::Open | StreamState::HalfClosedLocal)
    }
}

//! `ConnViolation`: every connection-level fault a [`Connection`] finds,
//! named, with its RFC 9113 error code — as the framer's
//! [`Violation`](framer::Violation) names frame-level rules. It is decided
//! where the fault is found, travels in
//! [`CloseReason::LocalError`](super::CloseReason::LocalError), and its
//! text is the GOAWAY's debug data (an abuse limit's text starts with the
//! limit's name; keepalive enforcement's is grpc-go's `too_many_pings`).
//!
//! [`Connection`]: super::Connection

use std::fmt;

use framer::{Reason, StreamId};

/// The abuse limits of [`AbuseLimits`](super::AbuseLimits), by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbuseLimit {
    /// `peer_resets`: rapid reset and MadeYouReset.
    PeerResets,
    /// `wasted_frames`: frames that do no work.
    WastedFrames,
    /// `empty_frames`: empty DATA frames.
    EmptyFrames,
    /// `settings`: a SETTINGS flood.
    Settings,
    /// `pings`: a PING flood.
    Pings,
}

impl AbuseLimit {
    /// The limit's field name in [`AbuseLimits`](super::AbuseLimits).
    pub fn name(self) -> &'static str {
        match self {
            AbuseLimit::PeerResets => "peer_resets",
            AbuseLimit::WastedFrames => "wasted_frames",
            AbuseLimit::EmptyFrames => "empty_frames",
            AbuseLimit::Settings => "settings",
            AbuseLimit::Pings => "pings",
        }
    }

    fn what(self) -> &'static str {
        match self {
            AbuseLimit::PeerResets => "too many streams reset by the peer",
            AbuseLimit::WastedFrames => "too many frames that do no work",
            AbuseLimit::EmptyFrames => "too many empty DATA frames",
            AbuseLimit::Settings => "too many SETTINGS frames",
            AbuseLimit::Pings => "too many PING frames",
        }
    }
}

/// A connection error we found: GOAWAY with [`ConnViolation::reason`].
///
/// ```
/// use mio_grpc::conn::{AbuseLimit, ConnViolation};
/// use mio_grpc::framer::Reason;
///
/// let v = ConnViolation::Limit(AbuseLimit::WastedFrames);
/// assert_eq!(v.reason(), Reason::ENHANCE_YOUR_CALM);
/// assert_eq!(v.to_string(), "wasted_frames: too many frames that do no work");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnViolation {
    /// A frame broke a rule the framer checks (with that frame's code).
    Frame {
        /// The framer's rule.
        violation: framer::Violation,
        /// Its code.
        reason: Reason,
    },
    /// §3.4: the peer's first frame was not SETTINGS.
    FirstFrameNotSettings,
    /// §8.4: PUSH_PROMISE, while push is disabled.
    PushPromise,
    /// §6.5.2: a server sent SETTINGS_ENABLE_PUSH = 1.
    ServerEnabledPush,
    /// §5.1: a frame other than HEADERS or PRIORITY on an idle stream.
    FrameOnIdleStream {
        /// The frame type's name (`DATA`, `RST_STREAM`, `WINDOW_UPDATE`).
        kind: &'static str,
        /// The stream.
        id: StreamId,
    },
    /// §5.1: HEADERS on a stream the peer ended with END_STREAM.
    HeadersOnClosedStream {
        /// The stream.
        id: StreamId,
    },
    /// §5.1.1: a new stream with an id below one already used.
    StreamIdWentBackwards {
        /// The stream.
        id: StreamId,
    },
    /// §5.1.1: HEADERS on a stream the peer may not open (a server's, or
    /// a client id we never used).
    UnexpectedStream {
        /// The stream.
        id: StreamId,
    },
    /// §6.9: DATA beyond the connection's receive window.
    ConnectionWindowExceeded(loopy::FlowError),
    /// §6.9.1 / §6.9.2: the peer's WINDOW_UPDATE or SETTINGS pushed a send
    /// window past 2^31−1.
    SendWindowOverflow(&'static str),
    /// Keepalive enforcement (grpc-go): pings more often than allowed.
    TooManyPings,
    /// An abuse limit fired.
    Limit(AbuseLimit),
}

impl ConnViolation {
    /// The RFC 9113 error code the GOAWAY carries.
    pub fn reason(&self) -> Reason {
        match self {
            ConnViolation::Frame { reason, .. } => *reason,
            ConnViolation::FirstFrameNotSettings
            | ConnViolation::PushPromise
            | ConnViolation::ServerEnabledPush
            | ConnViolation::FrameOnIdleStream { .. }
            | ConnViolation::StreamIdWentBackwards { .. }
            | ConnViolation::UnexpectedStream { .. } => Reason::PROTOCOL_ERROR,
            ConnViolation::HeadersOnClosedStream { .. } => Reason::STREAM_CLOSED,
            ConnViolation::ConnectionWindowExceeded(_) | ConnViolation::SendWindowOverflow(_) => {
                Reason::FLOW_CONTROL_ERROR
            }
            ConnViolation::TooManyPings | ConnViolation::Limit(_) => Reason::ENHANCE_YOUR_CALM,
        }
    }
}

impl fmt::Display for ConnViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnViolation::Frame { violation, .. } => violation.fmt(f),
            ConnViolation::FirstFrameNotSettings => f.write_str("the first frame was not SETTINGS"),
            ConnViolation::PushPromise => f.write_str("PUSH_PROMISE received (push is disabled)"),
            ConnViolation::ServerEnabledPush => f.write_str("SETTINGS_ENABLE_PUSH=1 from a server"),
            ConnViolation::FrameOnIdleStream { kind, id } => {
                write!(f, "{kind} on idle stream {id}")
            }
            ConnViolation::HeadersOnClosedStream { id } => {
                write!(f, "HEADERS on stream {id}, which has closed")
            }
            ConnViolation::StreamIdWentBackwards { id } => {
                write!(f, "HEADERS on stream {id}, below the last stream opened")
            }
            ConnViolation::UnexpectedStream { id } => {
                write!(f, "HEADERS on unexpected stream {id}")
            }
            ConnViolation::ConnectionWindowExceeded(err) => err.fmt(f),
            ConnViolation::SendWindowOverflow(detail) => f.write_str(detail),
            // grpc-go's debug data, which its clients recognise.
            ConnViolation::TooManyPings => f.write_str("too_many_pings"),
            ConnViolation::Limit(limit) => write!(f, "{}: {}", limit.name(), limit.what()),
        }
    }
}

impl std::error::Error for ConnViolation {}

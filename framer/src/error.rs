//! `FrameError`: what a peer's bytes did wrong, where it is reported
//! (connection → GOAWAY, stream → RST_STREAM), with which RFC 9113 code.
//!
//! Every rule the framer checks has its own [`Violation`] so that tests and
//! logs say *which* rule broke; the scope and [`Reason`] are decided where
//! the fault is found and travel with it.

use std::fmt;

use crate::{Kind, Reason, StreamId};

/// Where an error applies (RFC 9113 §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A connection error: send GOAWAY with the reason, then close
    /// (RFC 9113 §5.4.1).
    Connection,
    /// A stream error: send RST_STREAM on this stream; the connection goes
    /// on (RFC 9113 §5.4.2).
    Stream(StreamId),
}

/// A rule of RFC 9113 (or a local limit) that received bytes broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// §3.4: the client connection preface was not the 24 octets it must be.
    BadPreface,
    /// §4.2: a frame longer than our SETTINGS_MAX_FRAME_SIZE.
    FrameTooLarge {
        /// The frame type.
        kind: Kind,
        /// Its payload length.
        length: u32,
        /// Our advertised maximum.
        max: u32,
    },
    /// §4.2: a frame too short to hold its mandatory fields (a PADDED frame
    /// with no Pad Length octet, HEADERS with PRIORITY under 5 octets,
    /// PUSH_PROMISE under 4, GOAWAY under 8).
    FrameTooShort {
        /// The frame type.
        kind: Kind,
        /// Its payload length.
        length: u32,
    },
    /// §6.1, §6.2, §6.3, §6.4, §6.6, §6.10: a stream frame on stream 0.
    StreamIdRequired {
        /// The frame type.
        kind: Kind,
    },
    /// §6.5, §6.7, §6.8: a connection frame on a non-zero stream.
    StreamIdForbidden {
        /// The frame type.
        kind: Kind,
        /// The stream it named.
        stream_id: StreamId,
    },
    /// §6.1, §6.2, §6.6: padding as long as or longer than the payload.
    PaddingTooLong {
        /// The frame type.
        kind: Kind,
        /// The Pad Length octet.
        pad_len: u8,
        /// The frame's payload length.
        length: u32,
    },
    /// §6.3: a PRIORITY frame whose length is not 5 (a stream error).
    PriorityLength {
        /// The payload length.
        length: u32,
    },
    /// §5.3.1: a stream made to depend on itself (a stream error).
    SelfDependency,
    /// §6.4: an RST_STREAM frame whose length is not 4.
    RstStreamLength {
        /// The payload length.
        length: u32,
    },
    /// §6.5: a SETTINGS frame whose length is not a multiple of 6.
    SettingsLength {
        /// The payload length.
        length: u32,
    },
    /// §6.5: a SETTINGS acknowledgement with a payload.
    SettingsAckWithPayload {
        /// The payload length.
        length: u32,
    },
    /// §6.5.2: SETTINGS_ENABLE_PUSH other than 0 or 1.
    InvalidEnablePush {
        /// The value sent.
        value: u32,
    },
    /// RFC 8441 §3: SETTINGS_ENABLE_CONNECT_PROTOCOL other than 0 or 1.
    InvalidEnableConnectProtocol {
        /// The value sent.
        value: u32,
    },
    /// §6.5.2: SETTINGS_INITIAL_WINDOW_SIZE above 2^31 − 1.
    InvalidInitialWindowSize {
        /// The value sent.
        value: u32,
    },
    /// §6.5.2: SETTINGS_MAX_FRAME_SIZE outside 2^14 ..= 2^24 − 1.
    InvalidMaxFrameSize {
        /// The value sent.
        value: u32,
    },
    /// §6.7: a PING frame whose length is not 8.
    PingLength {
        /// The payload length.
        length: u32,
    },
    /// §6.9: a WINDOW_UPDATE frame whose length is not 4.
    WindowUpdateLength {
        /// The payload length.
        length: u32,
    },
    /// §6.9: a WINDOW_UPDATE with an increment of 0 (a stream error on a
    /// stream, a connection error on stream 0).
    ZeroWindowIncrement,
    /// §6.10: a CONTINUATION frame with no field block open.
    UnexpectedContinuation,
    /// §4.3, §6.10: a frame other than CONTINUATION on the same stream
    /// while a field block is open.
    InterruptedHeaderBlock {
        /// The type of the frame that interrupted it.
        kind: Kind,
        /// The stream it was sent on.
        stream_id: StreamId,
    },
    /// Local limit (CVE-2024-27316 class): a field block whose encoded size
    /// across HEADERS and CONTINUATION exceeds what we buffer.
    HeaderBlockTooLarge {
        /// Bytes received so far.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Local limit (CVE-2024-27316 class): too many CONTINUATION frames in
    /// one field block.
    TooManyContinuations {
        /// The limit.
        limit: usize,
    },
    /// §4.3: a field block HPACK could not decode (RFC 7541 §2.3, §4, §5,
    /// §6); the compression context is lost.
    Compression(&'static str),
    /// §6.5.2, §10.5.1: a decoded field section over our
    /// SETTINGS_MAX_HEADER_LIST_SIZE. The block was decoded in full, so the
    /// connection can go on; the stream is refused.
    HeaderListTooLarge {
        /// Size (RFC 9113 §6.5.2) counted when the limit was passed.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::BadPreface => f.write_str("invalid HTTP/2 client connection preface"),
            Violation::FrameTooLarge { kind, length, max } => {
                write!(
                    f,
                    "{kind} frame of {length} octets exceeds SETTINGS_MAX_FRAME_SIZE {max}"
                )
            }
            Violation::FrameTooShort { kind, length } => {
                write!(
                    f,
                    "{kind} frame of {length} octets is too short for its fields"
                )
            }
            Violation::StreamIdRequired { kind } => write!(f, "{kind} frame on stream 0"),
            Violation::StreamIdForbidden { kind, stream_id } => {
                write!(f, "{kind} frame on stream {stream_id}, must be stream 0")
            }
            Violation::PaddingTooLong {
                kind,
                pad_len,
                length,
            } => {
                write!(
                    f,
                    "{kind} frame pads {pad_len} octets of a {length}-octet payload"
                )
            }
            Violation::PriorityLength { length } => {
                write!(f, "PRIORITY frame of {length} octets, must be 5")
            }
            Violation::SelfDependency => f.write_str("stream depends on itself"),
            Violation::RstStreamLength { length } => {
                write!(f, "RST_STREAM frame of {length} octets, must be 4")
            }
            Violation::SettingsLength { length } => {
                write!(f, "SETTINGS frame of {length} octets, not a multiple of 6")
            }
            Violation::SettingsAckWithPayload { length } => {
                write!(f, "SETTINGS ack with a {length}-octet payload")
            }
            Violation::InvalidEnablePush { value } => {
                write!(f, "SETTINGS_ENABLE_PUSH {value}, must be 0 or 1")
            }
            Violation::InvalidEnableConnectProtocol { value } => {
                write!(
                    f,
                    "SETTINGS_ENABLE_CONNECT_PROTOCOL {value}, must be 0 or 1"
                )
            }
            Violation::InvalidInitialWindowSize { value } => {
                write!(f, "SETTINGS_INITIAL_WINDOW_SIZE {value} above 2^31-1")
            }
            Violation::InvalidMaxFrameSize { value } => {
                write!(
                    f,
                    "SETTINGS_MAX_FRAME_SIZE {value} outside 16384..=16777215"
                )
            }
            Violation::PingLength { length } => {
                write!(f, "PING frame of {length} octets, must be 8")
            }
            Violation::WindowUpdateLength { length } => {
                write!(f, "WINDOW_UPDATE frame of {length} octets, must be 4")
            }
            Violation::ZeroWindowIncrement => f.write_str("WINDOW_UPDATE with increment 0"),
            Violation::UnexpectedContinuation => {
                f.write_str("CONTINUATION with no open field block")
            }
            Violation::InterruptedHeaderBlock { kind, stream_id } => {
                write!(
                    f,
                    "{kind} frame on stream {stream_id} inside an open field block"
                )
            }
            Violation::HeaderBlockTooLarge { size, limit } => {
                write!(
                    f,
                    "field block of {size} octets exceeds the limit of {limit}"
                )
            }
            Violation::TooManyContinuations { limit } => {
                write!(
                    f,
                    "more than {limit} CONTINUATION frames in one field block"
                )
            }
            Violation::Compression(why) => write!(f, "HPACK decoding failed: {why}"),
            Violation::HeaderListTooLarge { size, limit } => {
                write!(
                    f,
                    "header list of at least {size} octets exceeds the limit of {limit}"
                )
            }
        }
    }
}

/// A received frame broke a rule: which rule, where to report it, and with
/// which RFC 9113 code.
///
/// ```
/// use bytes::BytesMut;
/// use framer::{Decoder, Reason, Scope, Violation};
///
/// // A PING frame on stream 1.
/// let mut buf = BytesMut::from(&[0, 0, 8, 6, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0][..]);
/// let err = Decoder::default().decode(&mut buf).unwrap_err();
/// assert_eq!(err.scope, Scope::Connection);
/// assert_eq!(err.reason, Reason::PROTOCOL_ERROR);
/// assert!(matches!(err.violation, Violation::StreamIdForbidden { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// Connection or stream error.
    pub scope: Scope,
    /// The code to send in GOAWAY or RST_STREAM.
    pub reason: Reason,
    /// The rule that was broken.
    pub violation: Violation,
}

impl FrameError {
    /// A connection error.
    pub const fn connection(reason: Reason, violation: Violation) -> FrameError {
        FrameError {
            scope: Scope::Connection,
            reason,
            violation,
        }
    }

    /// A stream error on `stream_id`.
    pub const fn stream(stream_id: StreamId, reason: Reason, violation: Violation) -> FrameError {
        FrameError {
            scope: Scope::Stream(stream_id),
            reason,
            violation,
        }
    }

    /// True for a connection error.
    pub const fn is_connection_error(&self) -> bool {
        matches!(self.scope, Scope::Connection)
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            Scope::Connection => write!(f, "connection error {}: {}", self.reason, self.violation),
            Scope::Stream(id) => {
                write!(
                    f,
                    "stream error {} on stream {id}: {}",
                    self.reason, self.violation
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

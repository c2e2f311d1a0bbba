//! `Reason`: the error codes of RFC 9113 §7, carried by RST_STREAM and
//! GOAWAY.
//!
//! An open newtype, not an enum: §7 says unknown codes "MUST NOT trigger any
//! special behavior" and may be treated as INTERNAL_ERROR, but they must
//! survive decoding so a peer's code can be logged and re-encoded as sent.

use std::fmt;

/// An HTTP/2 error code (RFC 9113 §7). Unknown codes are kept as they are.
///
/// ```
/// use framer::Reason;
/// assert_eq!(Reason::from(8), Reason::CANCEL);
/// assert_eq!(Reason::CANCEL.name(), Some("CANCEL"));
/// assert_eq!(Reason::from(0x99).name(), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(u32);

impl Reason {
    /// Graceful shutdown, or no error.
    pub const NO_ERROR: Reason = Reason(0x0);
    /// An unspecific protocol error.
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    /// An unexpected internal error.
    pub const INTERNAL_ERROR: Reason = Reason(0x2);
    /// The peer violated the flow-control protocol.
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    /// A SETTINGS frame was not acknowledged in time.
    pub const SETTINGS_TIMEOUT: Reason = Reason(0x4);
    /// A frame arrived after the stream was half-closed.
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    /// A frame had an invalid size.
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    /// The stream was refused before any application processing.
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: Reason = Reason(0x8);
    /// The header compression context could not be maintained.
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    /// A CONNECT request's connection was reset or closed.
    pub const CONNECT_ERROR: Reason = Reason(0xa);
    /// The peer is generating excessive load.
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);
    /// The transport's security properties are inadequate.
    pub const INADEQUATE_SECURITY: Reason = Reason(0xc);
    /// HTTP/1.1 is required instead of HTTP/2.
    pub const HTTP_1_1_REQUIRED: Reason = Reason(0xd);

    /// The raw 32-bit code.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// The RFC name of a known code, `None` for an unknown one.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl From<u32> for Reason {
    fn from(code: u32) -> Reason {
        Reason(code)
    }
}

impl From<Reason> for u32 {
    fn from(reason: Reason) -> u32 {
        reason.0
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Reason({:#x})", self.0),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown error code {:#x}", self.0),
        }
    }
}

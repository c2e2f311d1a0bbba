//! The 9-octet frame header of RFC 9113 §4.1, frame types (§6) and flags.

use bytes::BufMut;

use crate::StreamId;

/// Length of the frame header in octets.
pub const HEAD_LEN: usize = 9;

/// The largest frame payload any peer may allow, 2^24 − 1 (RFC 9113 §4.2).
pub const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;

/// The initial SETTINGS_MAX_FRAME_SIZE, 2^14 (RFC 9113 §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// A frame type (RFC 9113 §6, §11.2). Unknown types are kept (§4.1: they
/// "MUST be ignored and discarded", which is the connection's job).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// DATA, type 0x0.
    Data,
    /// HEADERS, type 0x1.
    Headers,
    /// PRIORITY, type 0x2.
    Priority,
    /// RST_STREAM, type 0x3.
    RstStream,
    /// SETTINGS, type 0x4.
    Settings,
    /// PUSH_PROMISE, type 0x5.
    PushPromise,
    /// PING, type 0x6.
    Ping,
    /// GOAWAY, type 0x7.
    GoAway,
    /// WINDOW_UPDATE, type 0x8.
    WindowUpdate,
    /// CONTINUATION, type 0x9.
    Continuation,
    /// Any other type octet.
    Unknown(u8),
}

impl Kind {
    /// The kind for a type octet.
    pub const fn from_u8(byte: u8) -> Kind {
        match byte {
            0x0 => Kind::Data,
            0x1 => Kind::Headers,
            0x2 => Kind::Priority,
            0x3 => Kind::RstStream,
            0x4 => Kind::Settings,
            0x5 => Kind::PushPromise,
            0x6 => Kind::Ping,
            0x7 => Kind::GoAway,
            0x8 => Kind::WindowUpdate,
            0x9 => Kind::Continuation,
            other => Kind::Unknown(other),
        }
    }

    /// The type octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            Kind::Data => 0x0,
            Kind::Headers => 0x1,
            Kind::Priority => 0x2,
            Kind::RstStream => 0x3,
            Kind::Settings => 0x4,
            Kind::PushPromise => 0x5,
            Kind::Ping => 0x6,
            Kind::GoAway => 0x7,
            Kind::WindowUpdate => 0x8,
            Kind::Continuation => 0x9,
            Kind::Unknown(other) => other,
        }
    }
}

/// The type's name as RFC 9113 writes it (`DATA`, `WINDOW_UPDATE`), or
/// `type 0x4f` for one it does not define.
///
/// ```
/// use framer::Kind;
/// assert_eq!(Kind::WindowUpdate.to_string(), "WINDOW_UPDATE");
/// assert_eq!(Kind::Unknown(0x4f).to_string(), "type 0x4f");
/// ```
impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Kind::Data => "DATA",
            Kind::Headers => "HEADERS",
            Kind::Priority => "PRIORITY",
            Kind::RstStream => "RST_STREAM",
            Kind::Settings => "SETTINGS",
            Kind::PushPromise => "PUSH_PROMISE",
            Kind::Ping => "PING",
            Kind::GoAway => "GOAWAY",
            Kind::WindowUpdate => "WINDOW_UPDATE",
            Kind::Continuation => "CONTINUATION",
            Kind::Unknown(byte) => return write!(f, "type {byte:#04x}"),
        };
        f.write_str(name)
    }
}

/// Frame flag bits (RFC 9113 §6). Which bits mean what depends on the type;
/// bits a type does not define are ignored on receipt.
pub mod flags {
    /// DATA, HEADERS: the last frame the sender will send on the stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the field block ends here.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a Pad Length octet and padding follow.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: the Exclusive/Stream Dependency/Weight fields are present.
    pub const PRIORITY: u8 = 0x20;
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type.
    pub kind: Kind,
    /// Flag bits as sent.
    pub flags: u8,
    /// Stream identifier, reserved bit cleared.
    pub stream_id: StreamId,
}

impl Head {
    /// Parses the 9 header octets.
    pub fn parse(octets: [u8; HEAD_LEN]) -> Head {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = octets;
        Head {
            length: u32::from_be_bytes([0, l0, l1, l2]),
            kind: Kind::from_u8(kind),
            flags,
            stream_id: StreamId::new(u32::from_be_bytes([s0, s1, s2, s3])),
        }
    }

    /// True if `flag` is set.
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }

    /// Writes the 9 header octets. `length` is truncated to 24 bits: the
    /// encoders never pass more.
    pub fn encode(&self, dst: &mut impl BufMut) {
        let [_, l0, l1, l2] = self.length.to_be_bytes();
        dst.put_slice(&[l0, l1, l2, self.kind.to_u8(), self.flags]);
        dst.put_u32(self.stream_id.value());
    }
}

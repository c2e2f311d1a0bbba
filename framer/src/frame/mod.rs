//! The `Frame` enum and one file per frame type (RFC 9113 §6).
//!
//! Each frame type has a struct with public fields, a `load(head, payload)`
//! that checks every rule a single frame of that type can break, and an
//! `encode` that writes it. Loads take the payload as `Bytes` split off the
//! read buffer, so DATA and header-block fragments are never copied.

mod continuation;
mod data;
mod goaway;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod unknown;
mod window_update;

pub use continuation::Continuation;
pub use data::Data;
pub use goaway::GoAway;
pub use headers::{HeaderBlock, Headers};
pub use ping::Ping;
pub use priority::{Priority, StreamDependency};
pub use push_promise::PushPromise;
pub use rst_stream::RstStream;
pub use settings::{Setting, SettingId, Settings};
pub use unknown::Unknown;
pub use window_update::WindowUpdate;

use bytes::{Buf, Bytes};

use crate::{FrameError, Head, Kind, Reason, StreamId, Violation};

/// One HTTP/2 frame (RFC 9113 §6), or a frame of an unknown type.
///
/// Frames from [`Decoder::decode`](crate::Decoder::decode) carry header
/// blocks decoded ([`HeaderBlock::Fields`]); frames from
/// [`decode_frame`](crate::decode_frame) carry the raw fragment
/// ([`HeaderBlock::Encoded`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// DATA (§6.1).
    Data(Data),
    /// HEADERS (§6.2).
    Headers(Headers),
    /// PRIORITY (§6.3).
    Priority(Priority),
    /// RST_STREAM (§6.4).
    RstStream(RstStream),
    /// SETTINGS (§6.5).
    Settings(Settings),
    /// PUSH_PROMISE (§6.6).
    PushPromise(PushPromise),
    /// PING (§6.7).
    Ping(Ping),
    /// GOAWAY (§6.8).
    GoAway(GoAway),
    /// WINDOW_UPDATE (§6.9).
    WindowUpdate(WindowUpdate),
    /// CONTINUATION (§6.10).
    Continuation(Continuation),
    /// A frame of a type this crate does not know (§4.1, §5.5).
    Unknown(Unknown),
}

impl Frame {
    /// The frame's type.
    pub fn kind(&self) -> Kind {
        match self {
            Frame::Data(_) => Kind::Data,
            Frame::Headers(_) => Kind::Headers,
            Frame::Priority(_) => Kind::Priority,
            Frame::RstStream(_) => Kind::RstStream,
            Frame::Settings(_) => Kind::Settings,
            Frame::PushPromise(_) => Kind::PushPromise,
            Frame::Ping(_) => Kind::Ping,
            Frame::GoAway(_) => Kind::GoAway,
            Frame::WindowUpdate(_) => Kind::WindowUpdate,
            Frame::Continuation(_) => Kind::Continuation,
            Frame::Unknown(u) => Kind::Unknown(u.kind),
        }
    }

    /// The stream the frame is on (0 for connection frames).
    pub fn stream_id(&self) -> StreamId {
        match self {
            Frame::Data(f) => f.stream_id,
            Frame::Headers(f) => f.stream_id,
            Frame::Priority(f) => f.stream_id,
            Frame::RstStream(f) => f.stream_id,
            Frame::PushPromise(f) => f.stream_id,
            Frame::WindowUpdate(f) => f.stream_id,
            Frame::Continuation(f) => f.stream_id,
            Frame::Unknown(f) => f.stream_id,
            Frame::Settings(_) | Frame::Ping(_) | Frame::GoAway(_) => StreamId::ZERO,
        }
    }

    /// Parses one frame's payload, checking every rule the frame alone can
    /// break. `payload` must be exactly `head.length` octets.
    pub(crate) fn load(head: &Head, payload: Bytes) -> Result<Frame, FrameError> {
        Ok(match head.kind {
            Kind::Data => Frame::Data(Data::load(head, payload)?),
            Kind::Headers => Frame::Headers(Headers::load(head, payload)?),
            Kind::Priority => Frame::Priority(Priority::load(head, &payload)?),
            Kind::RstStream => Frame::RstStream(RstStream::load(head, &payload)?),
            Kind::Settings => Frame::Settings(Settings::load(head, &payload)?),
            Kind::PushPromise => Frame::PushPromise(PushPromise::load(head, payload)?),
            Kind::Ping => Frame::Ping(Ping::load(head, &payload)?),
            Kind::GoAway => Frame::GoAway(GoAway::load(head, payload)?),
            Kind::WindowUpdate => Frame::WindowUpdate(WindowUpdate::load(head, &payload)?),
            Kind::Continuation => Frame::Continuation(Continuation::load(head, payload)?),
            Kind::Unknown(kind) => Frame::Unknown(Unknown::load(kind, head, payload)),
        })
    }
}

macro_rules! from_frame {
    ($($ty:ident),*) => {$(
        impl From<$ty> for Frame {
            fn from(frame: $ty) -> Frame {
                Frame::$ty(frame)
            }
        }
    )*};
}
from_frame!(
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown
);

/// Rejects a stream frame on stream 0 (§6.1, §6.2, §6.3, §6.4, §6.6, §6.10).
pub(crate) fn require_stream(head: &Head) -> Result<(), FrameError> {
    if head.stream_id.is_zero() {
        return Err(FrameError::connection(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdRequired { kind: head.kind },
        ));
    }
    Ok(())
}

/// Rejects a connection frame on a non-zero stream (§6.5, §6.7, §6.8).
pub(crate) fn forbid_stream(head: &Head) -> Result<(), FrameError> {
    if !head.stream_id.is_zero() {
        return Err(FrameError::connection(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdForbidden {
                kind: head.kind,
                stream_id: head.stream_id,
            },
        ));
    }
    Ok(())
}

/// Splits the Pad Length octet and the padding off a PADDED frame's
/// payload (§6.1, §6.2, §6.6); returns the rest and the pad length.
pub(crate) fn strip_padding(
    head: &Head,
    mut payload: Bytes,
) -> Result<(Bytes, Option<u8>), FrameError> {
    if !head.has(crate::flags::PADDED) {
        return Ok((payload, None));
    }
    if payload.is_empty() {
        return Err(FrameError::connection(
            Reason::FRAME_SIZE_ERROR,
            Violation::FrameTooShort {
                kind: head.kind,
                length: head.length,
            },
        ));
    }
    let pad_len = payload.get_u8();
    // §6.1: "If the length of the padding is the length of the frame
    // payload or greater, the recipient MUST treat this as a connection
    // error of type PROTOCOL_ERROR." The payload here excludes the octet.
    let Some(content_len) = payload.len().checked_sub(usize::from(pad_len)) else {
        return Err(FrameError::connection(
            Reason::PROTOCOL_ERROR,
            Violation::PaddingTooLong {
                kind: head.kind,
                pad_len,
                length: head.length,
            },
        ));
    };
    payload.truncate(content_len);
    Ok((payload, Some(pad_len)))
}

/// The payload length and flag a pad length adds on encode.
pub(crate) fn padding_overhead(pad_len: Option<u8>) -> (u32, u8) {
    match pad_len {
        Some(pad) => (1 + u32::from(pad), crate::flags::PADDED),
        None => (0, 0),
    }
}

/// Writes the Pad Length octet (if padded) — the padding itself is written
/// by [`put_padding`] after the content.
pub(crate) fn put_pad_len(pad_len: Option<u8>, dst: &mut bytes::BytesMut) {
    if let Some(pad) = pad_len {
        dst.extend_from_slice(&[pad]);
    }
}

/// Writes `pad_len` zero octets (§6.1: padding "MUST be set to zero when
/// sending").
pub(crate) fn put_padding(pad_len: Option<u8>, dst: &mut bytes::BytesMut) {
    if let Some(pad) = pad_len {
        bytes::BufMut::put_bytes(dst, 0, usize::from(pad));
    }
}

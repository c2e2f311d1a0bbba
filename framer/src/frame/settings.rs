//! SETTINGS (RFC 9113 §6.5): connection parameters and their
//! acknowledgement.
//!
//! Parameters are kept in the order sent, unknown identifiers included
//! (§6.5.2: they "MUST be ignored", which the accessors do); values of the
//! known parameters are checked on load.

use bytes::{BufMut, BytesMut};

use super::forbid_stream;
use crate::head::{DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE};
use crate::{flags, FrameError, Head, Kind, Reason, StreamId, Violation};

/// A SETTINGS parameter identifier (RFC 9113 §6.5.2). Open: unknown ids
/// survive a decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SettingId(pub u16);

impl SettingId {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1).
    pub const HEADER_TABLE_SIZE: SettingId = SettingId(0x1);
    /// SETTINGS_ENABLE_PUSH (0x2).
    pub const ENABLE_PUSH: SettingId = SettingId(0x2);
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
    pub const MAX_CONCURRENT_STREAMS: SettingId = SettingId(0x3);
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4).
    pub const INITIAL_WINDOW_SIZE: SettingId = SettingId(0x4);
    /// SETTINGS_MAX_FRAME_SIZE (0x5).
    pub const MAX_FRAME_SIZE: SettingId = SettingId(0x5);
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    pub const MAX_HEADER_LIST_SIZE: SettingId = SettingId(0x6);
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8, RFC 8441).
    pub const ENABLE_CONNECT_PROTOCOL: SettingId = SettingId(0x8);
}

/// One parameter: identifier and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The identifier.
    pub id: SettingId,
    /// The value.
    pub value: u32,
}

/// A SETTINGS frame, or its acknowledgement.
///
/// ```
/// use framer::{SettingId, Settings};
/// let s = Settings::new()
///     .with(SettingId::MAX_CONCURRENT_STREAMS, 100)
///     .with(SettingId::INITIAL_WINDOW_SIZE, 1 << 20);
/// assert_eq!(s.max_concurrent_streams(), Some(100));
/// assert_eq!(s.header_table_size(), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// ACK: this acknowledges the peer's SETTINGS; no parameters.
    pub ack: bool,
    /// The parameters, in the order sent.
    pub params: Vec<Setting>,
}

impl Settings {
    /// An empty (non-ACK) SETTINGS frame.
    pub fn new() -> Settings {
        Settings::default()
    }

    /// A SETTINGS acknowledgement.
    pub fn ack() -> Settings {
        Settings {
            ack: true,
            params: Vec::new(),
        }
    }

    /// Adds a parameter.
    pub fn with(mut self, id: SettingId, value: u32) -> Settings {
        self.params.push(Setting { id, value });
        self
    }

    /// The value of `id`: the last one sent, as §6.5.3 processes them in order.
    pub fn get(&self, id: SettingId) -> Option<u32> {
        self.params
            .iter()
            .rev()
            .find(|s| s.id == id)
            .map(|s| s.value)
    }

    /// SETTINGS_HEADER_TABLE_SIZE, if present.
    pub fn header_table_size(&self) -> Option<u32> {
        self.get(SettingId::HEADER_TABLE_SIZE)
    }

    /// SETTINGS_ENABLE_PUSH, if present (validated to be 0 or 1).
    pub fn enable_push(&self) -> Option<bool> {
        self.get(SettingId::ENABLE_PUSH).map(|v| v == 1)
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS, if present.
    pub fn max_concurrent_streams(&self) -> Option<u32> {
        self.get(SettingId::MAX_CONCURRENT_STREAMS)
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE, if present (≤ 2^31 − 1 once loaded).
    pub fn initial_window_size(&self) -> Option<u32> {
        self.get(SettingId::INITIAL_WINDOW_SIZE)
    }

    /// SETTINGS_MAX_FRAME_SIZE, if present (2^14 ..= 2^24 − 1 once loaded).
    pub fn max_frame_size(&self) -> Option<u32> {
        self.get(SettingId::MAX_FRAME_SIZE)
    }

    /// SETTINGS_MAX_HEADER_LIST_SIZE, if present.
    pub fn max_header_list_size(&self) -> Option<u32> {
        self.get(SettingId::MAX_HEADER_LIST_SIZE)
    }

    pub(crate) fn load(head: &Head, payload: &[u8]) -> Result<Settings, FrameError> {
        forbid_stream(head)?;
        let ack = head.has(flags::ACK);
        if ack {
            if !payload.is_empty() {
                // §6.5: "Receipt of a SETTINGS frame with the ACK flag set
                // and a length field value other than 0 MUST be treated as
                // a connection error of type FRAME_SIZE_ERROR."
                return Err(FrameError::connection(
                    Reason::FRAME_SIZE_ERROR,
                    Violation::SettingsAckWithPayload {
                        length: head.length,
                    },
                ));
            }
            return Ok(Settings::ack());
        }
        if payload.len() % 6 != 0 {
            return Err(FrameError::connection(
                Reason::FRAME_SIZE_ERROR,
                Violation::SettingsLength {
                    length: head.length,
                },
            ));
        }
        let mut params = Vec::with_capacity(payload.len() / 6);
        for chunk in payload.chunks_exact(6) {
            let Ok([i0, i1, v0, v1, v2, v3]) = <[u8; 6]>::try_from(chunk) else {
                continue; // unreachable: chunks_exact yields 6 octets
            };
            let setting = Setting {
                id: SettingId(u16::from_be_bytes([i0, i1])),
                value: u32::from_be_bytes([v0, v1, v2, v3]),
            };
            check_value(setting)?;
            params.push(setting);
        }
        Ok(Settings { ack: false, params })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let length = u32::try_from(self.params.len() * 6).unwrap_or(u32::MAX);
        let flags = if self.ack { flags::ACK } else { 0 };
        Head {
            length,
            kind: Kind::Settings,
            flags,
            stream_id: StreamId::ZERO,
        }
        .encode(dst);
        for setting in &self.params {
            dst.put_u16(setting.id.0);
            dst.put_u32(setting.value);
        }
    }
}

/// §6.5.2: the value ranges of the defined parameters.
fn check_value(setting: Setting) -> Result<(), FrameError> {
    let Setting { id, value } = setting;
    match id {
        SettingId::ENABLE_PUSH if value > 1 => Err(FrameError::connection(
            Reason::PROTOCOL_ERROR,
            Violation::InvalidEnablePush { value },
        )),
        SettingId::ENABLE_CONNECT_PROTOCOL if value > 1 => Err(FrameError::connection(
            Reason::PROTOCOL_ERROR,
            Violation::InvalidEnableConnectProtocol { value },
        )),
        SettingId::INITIAL_WINDOW_SIZE if value > 0x7fff_ffff => Err(FrameError::connection(
            Reason::FLOW_CONTROL_ERROR,
            Violation::InvalidInitialWindowSize { value },
        )),
        SettingId::MAX_FRAME_SIZE
            if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) =>
        {
            Err(FrameError::connection(
                Reason::PROTOCOL_ERROR,
                Violation::InvalidMaxFrameSize { value },
            ))
        }
        _ => Ok(()),
    }
}

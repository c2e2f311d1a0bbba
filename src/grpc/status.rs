//! gRPC status: [`Code`] (grpc/grpc `doc/statuscodes.md`) and [`Status`],
//! the outcome of every call, carried in trailers.
//!
//! Trailers (PROTOCOL-HTTP2.md "Responses"):
//!
//! ```text
//! Trailers        → Status [Status-Message] *Custom-Metadata
//! Status          → "grpc-status" 1*DIGIT
//! Status-Message  → "grpc-message" Percent-Encoded
//! ```
//!
//! plus `grpc-status-details-bin` (base64 of a serialized
//! `google.rpc.Status`, the "rich error model") when a status has details.
//!
//! The message is UTF-8, percent-encoded: every byte outside `0x20..=0x7E`,
//! and `%` itself, becomes `%XX` (uppercase hex). Decoding never fails and
//! never throws the message away, as the spec demands: a malformed `%`
//! sequence is kept literally, and bytes that are not UTF-8 after decoding
//! become U+FFFD.
//!
//! Statuses that did not come from a peer's `grpc-status` are synthesized
//! here too: from an HTTP status without `grpc-status`
//! ([`Code::from_http_status`], grpc/grpc `doc/http-grpc-status-mapping.md`)
//! and from an RST_STREAM code ([`Code::from_h2_reason`], PROTOCOL-HTTP2.md
//! "Errors").

use std::fmt;

use bytes::Bytes;
use framer::hpack::{HeaderField, HeaderList};
use framer::Reason;

use super::base64;
use super::metadata::Metadata;

/// A gRPC status code (grpc/grpc `doc/statuscodes.md`).
///
/// ```
/// use mio_grpc::grpc::Code;
///
/// assert_eq!(Code::from_i32(5), Code::NotFound);
/// assert_eq!(Code::NotFound.as_i32(), 5);
/// assert_eq!(Code::NotFound.name(), "NOT_FOUND");
/// assert_eq!(Code::NotFound.to_string(), "NOT_FOUND");
/// assert_eq!(Code::from_i32(42), Code::Unknown);
/// assert_eq!(Code::from_http_status(503), Code::Unavailable);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// Not an error; returned on success.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, e.g. a status from another address space with an
    /// unknown code, or an error without enough information.
    Unknown = 2,
    /// The client specified an invalid argument, whatever the system state.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity a client attempted to create already exists.
    AlreadyExists = 6,
    /// The caller does not have permission to execute the operation.
    PermissionDenied = 7,
    /// Some resource has been exhausted (a quota, disk space, a limit).
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted, typically by a concurrency issue.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or not supported.
    Unimplemented = 12,
    /// Internal error: some invariant expected by the system is broken.
    Internal = 13,
    /// The service is currently unavailable; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request lacks valid authentication credentials.
    Unauthenticated = 16,
}

impl Code {
    /// The code numbered `code`; [`Code::Unknown`] for a number outside
    /// `0..=16`.
    #[must_use]
    pub const fn from_i32(code: i32) -> Code {
        match code {
            0 => Code::Ok,
            1 => Code::Cancelled,
            2 => Code::Unknown,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }

    /// The code's number, as sent in `grpc-status`.
    #[must_use]
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code's name in `doc/statuscodes.md`, e.g. `"NOT_FOUND"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The `grpc-status` value: the decimal number, without allocating.
    const fn wire_value(self) -> &'static str {
        match self {
            Code::Ok => "0",
            Code::Cancelled => "1",
            Code::Unknown => "2",
            Code::InvalidArgument => "3",
            Code::DeadlineExceeded => "4",
            Code::NotFound => "5",
            Code::AlreadyExists => "6",
            Code::PermissionDenied => "7",
            Code::ResourceExhausted => "8",
            Code::FailedPrecondition => "9",
            Code::Aborted => "10",
            Code::OutOfRange => "11",
            Code::Unimplemented => "12",
            Code::Internal => "13",
            Code::Unavailable => "14",
            Code::DataLoss => "15",
            Code::Unauthenticated => "16",
        }
    }

    /// The code a client synthesizes for a response that carries an HTTP
    /// status but no `grpc-status` (grpc/grpc
    /// `doc/http-grpc-status-mapping.md`): 400 and 431 → `Internal`, 401 →
    /// `Unauthenticated`, 403 → `PermissionDenied`, 404 → `Unimplemented`,
    /// 429, 502, 503, 504 → `Unavailable`, anything else (200 included) →
    /// `Unknown`.
    ///
    /// Only for that case: a `grpc-status`, when present, always wins.
    #[must_use]
    pub const fn from_http_status(status: u16) -> Code {
        match status {
            400 | 431 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// The code a call fails with when its stream is reset with `reason`
    /// (PROTOCOL-HTTP2.md "Errors"): REFUSED_STREAM → `Unavailable` (no
    /// processing happened; the call may be retried), CANCEL → `Cancelled`,
    /// ENHANCE_YOUR_CALM → `ResourceExhausted`, INADEQUATE_SECURITY →
    /// `PermissionDenied`, the other RFC 9113 codes (NO_ERROR,
    /// STREAM_CLOSED and HTTP_1_1_REQUIRED included, as grpc-go) →
    /// `Internal`, and a code RFC 9113 does not define → `Unknown` (as
    /// grpc-go and tonic).
    #[must_use]
    pub fn from_h2_reason(reason: Reason) -> Code {
        match reason {
            Reason::REFUSED_STREAM => Code::Unavailable,
            Reason::CANCEL => Code::Cancelled,
            Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
            Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
            Reason::NO_ERROR
            | Reason::PROTOCOL_ERROR
            | Reason::INTERNAL_ERROR
            | Reason::FLOW_CONTROL_ERROR
            | Reason::SETTINGS_TIMEOUT
            | Reason::STREAM_CLOSED
            | Reason::FRAME_SIZE_ERROR
            | Reason::COMPRESSION_ERROR
            | Reason::CONNECT_ERROR
            | Reason::HTTP_1_1_REQUIRED => Code::Internal,
            _ => Code::Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<i32> for Code {
    fn from(code: i32) -> Code {
        Code::from_i32(code)
    }
}

impl From<Code> for i32 {
    fn from(code: Code) -> i32 {
        code.as_i32()
    }
}

/// The outcome of a call: a [`Code`], a message for people, optional
/// binary details (a serialized `google.rpc.Status`) and trailing
/// [`Metadata`].
///
/// ```
/// use bytes::Bytes;
/// use mio_grpc::grpc::{Code, Metadata, Status};
///
/// let mut metadata = Metadata::new();
/// metadata.insert("retry-after-ms", "250")?;
/// let status = Status::unavailable("overloaded: try again — später")
///     .with_details(Bytes::from_static(b"\x08\x0e"))
///     .with_metadata(metadata);
///
/// let mut trailers = Vec::new();
/// status.to_trailers(&mut trailers);
/// assert_eq!(&trailers[0].name[..], b"grpc-status");
/// assert_eq!(&trailers[0].value[..], b"14");
/// assert_eq!(
///     &trailers[1].value[..],
///     b"overloaded: try again %E2%80%94 sp%C3%A4ter"
/// );
///
/// let back = Status::from_trailers(&trailers);
/// assert_eq!(back, status);
/// assert_eq!(back.code(), Code::Unavailable);
/// assert_eq!(back.metadata().get("retry-after-ms"), Some("250"));
/// # Ok::<(), mio_grpc::grpc::MetadataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
    details: Bytes,
    metadata: Metadata,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(message: impl Into<String>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with `code` and `message`, no details, no metadata.
    #[must_use]
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            details: Bytes::new(),
            metadata: Metadata::new(),
        }
    }

    /// The status of a call that succeeded: [`Code::Ok`], no message.
    #[must_use]
    pub fn ok() -> Status {
        Status::new(Code::Ok, String::new())
    }

    constructors! {
        /// A status with [`Code::Cancelled`].
        cancelled => Cancelled,
        /// A status with [`Code::Unknown`].
        unknown => Unknown,
        /// A status with [`Code::InvalidArgument`].
        invalid_argument => InvalidArgument,
        /// A status with [`Code::DeadlineExceeded`].
        deadline_exceeded => DeadlineExceeded,
        /// A status with [`Code::NotFound`].
        not_found => NotFound,
        /// A status with [`Code::AlreadyExists`].
        already_exists => AlreadyExists,
        /// A status with [`Code::PermissionDenied`].
        permission_denied => PermissionDenied,
        /// A status with [`Code::ResourceExhausted`].
        resource_exhausted => ResourceExhausted,
        /// A status with [`Code::FailedPrecondition`].
        failed_precondition => FailedPrecondition,
        /// A status with [`Code::Aborted`].
        aborted => Aborted,
        /// A status with [`Code::OutOfRange`].
        out_of_range => OutOfRange,
        /// A status with [`Code::Unimplemented`].
        unimplemented => Unimplemented,
        /// A status with [`Code::Internal`].
        internal => Internal,
        /// A status with [`Code::Unavailable`].
        unavailable => Unavailable,
        /// A status with [`Code::DataLoss`].
        data_loss => DataLoss,
        /// A status with [`Code::Unauthenticated`].
        unauthenticated => Unauthenticated,
    }

    /// The status a call ends with when its stream is reset with `reason`:
    /// [`Code::from_h2_reason`], with a message naming the code.
    #[must_use]
    pub fn from_h2_reason(reason: Reason) -> Status {
        let message = match reason.name() {
            Some(name) => format!("stream reset with {name}"),
            None => format!("stream reset with unknown error code 0x{:x}", reason.code()),
        };
        Status::new(Code::from_h2_reason(reason), message)
    }

    /// This status with `details` (sent as `grpc-status-details-bin`).
    #[must_use]
    pub fn with_details(mut self, details: Bytes) -> Status {
        self.details = details;
        self
    }

    /// This status with `metadata` (sent after the status fields in the
    /// trailers).
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Status {
        self.metadata = metadata;
        self
    }

    /// The code.
    #[must_use]
    pub fn code(&self) -> Code {
        self.code
    }

    /// Whether the code is [`Code::Ok`].
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }

    /// The message (decoded; empty when there is none).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The binary details; empty when there are none.
    #[must_use]
    pub fn details(&self) -> &Bytes {
        &self.details
    }

    /// The trailing metadata.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The trailing metadata, to add to it.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Appends this status as trailer fields to `dst`, in this order:
    /// `grpc-status`; `grpc-message`, percent-encoded, unless the message
    /// is empty; `grpc-status-details-bin`, base64 without padding, unless
    /// there are no details; then the metadata ([`Metadata::to_headers`]).
    pub fn to_trailers(&self, dst: &mut HeaderList) {
        dst.push(HeaderField::new(
            GRPC_STATUS,
            Bytes::from_static(self.code.wire_value().as_bytes()),
        ));
        if !self.message.is_empty() {
            dst.push(HeaderField::new(
                GRPC_MESSAGE,
                Bytes::from(percent_encode(&self.message)),
            ));
        }
        if !self.details.is_empty() {
            dst.push(HeaderField::new(
                GRPC_STATUS_DETAILS_BIN,
                Bytes::from(base64::encode_unpadded(&self.details)),
            ));
        }
        self.metadata.to_headers(dst);
    }

    /// The status that `trailers` (or a Trailers-Only response's single
    /// header block) carry. Never fails:
    ///
    /// - `grpc-status` is a decimal number; one outside `0..=16` is
    ///   [`Code::Unknown`] with the peer's message.
    /// - A `grpc-status` that is not a number is [`Code::Unknown`], with a
    ///   message saying so.
    /// - No `grpc-status`: the code the HTTP `:status` maps to
    ///   ([`Code::from_http_status`]) when the block has one, else
    ///   [`Code::Unknown`]; either way with a message saying what was
    ///   missing.
    /// - `grpc-message` is percent-decoded ([`percent_decode`]).
    /// - `grpc-status-details-bin` that is not base64 is ignored.
    /// - The other fields that are metadata become the status's metadata
    ///   ([`Metadata::from_headers`]).
    #[must_use]
    pub fn from_trailers(trailers: &[HeaderField]) -> Status {
        let mut grpc_status = None;
        let mut grpc_message = None;
        let mut details = None;
        let mut http_status = None;
        for field in trailers {
            let slot = match field.name.as_ref() {
                b"grpc-status" => &mut grpc_status,
                b"grpc-message" => &mut grpc_message,
                b"grpc-status-details-bin" => &mut details,
                b":status" => &mut http_status,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(&field.value);
            }
        }
        let message = grpc_message.map(|m| percent_decode(m)).unwrap_or_default();
        let (code, message) = match grpc_status {
            Some(value) => match parse_status_code(value) {
                Some(code) => (Code::from_i32(code), message),
                None => {
                    let mut why = format!(
                        "malformed grpc-status {:?} from the peer",
                        String::from_utf8_lossy(value)
                    );
                    if !message.is_empty() {
                        why.push_str("; grpc-message: ");
                        why.push_str(&message);
                    }
                    (Code::Unknown, why)
                }
            },
            None => match http_status.and_then(|s| parse_http_status(s)) {
                Some(http) => (
                    Code::from_http_status(http),
                    format!("response has HTTP status {http} but no grpc-status"),
                ),
                None => (
                    Code::Unknown,
                    String::from("response trailers have no grpc-status"),
                ),
            },
        };
        let details = details
            .and_then(|d| base64::decode(d).ok())
            .map(Bytes::from)
            .unwrap_or_default();
        Status {
            code,
            message,
            details,
            metadata: Metadata::from_headers(trailers),
        }
    }
}

/// The `grpc-status` field name.
const GRPC_STATUS: &str = "grpc-status";
/// The `grpc-message` field name.
const GRPC_MESSAGE: &str = "grpc-message";
/// The `grpc-status-details-bin` field name.
const GRPC_STATUS_DETAILS_BIN: &str = "grpc-status-details-bin";

/// A `grpc-status` value: 1 to 10 ASCII digits (leading zeros tolerated)
/// that fit an `i32`.
fn parse_status_code(value: &[u8]) -> Option<i32> {
    if value.is_empty() || value.len() > 10 {
        return None;
    }
    value.iter().try_fold(0i32, |acc, &b| {
        let digit = i32::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// An HTTP `:status` value: three ASCII digits.
fn parse_http_status(value: &[u8]) -> Option<u16> {
    match *value {
        [a, b, c] if value.iter().all(u8::is_ascii_digit) => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

/// Percent-encodes a status message for `grpc-message`: every byte of its
/// UTF-8 outside `0x20..=0x7E`, and `%`, becomes `%XX` in uppercase hex.
///
/// ```
/// use mio_grpc::grpc::percent_encode;
///
/// assert_eq!(percent_encode("100% done"), "100%25 done");
/// assert_eq!(percent_encode("line\nbreak"), "line%0Abreak");
/// assert_eq!(percent_encode("€"), "%E2%82%AC");
/// ```
#[must_use]
pub fn percent_encode(message: &str) -> String {
    let bytes = message.as_bytes();
    if bytes.iter().all(|&b| is_unreserved(b)) {
        return message.to_owned();
    }
    let escaped = bytes.iter().filter(|&&b| !is_unreserved(b)).count();
    let mut out = String::with_capacity(bytes.len() + 2 * escaped);
    for &b in bytes {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_upper(b >> 4));
            out.push(hex_upper(b));
        }
    }
    out
}

/// Decodes a `grpc-message` value. Never fails: a `%` not followed by two
/// hex digits (either case) is kept as it is, and bytes that are not UTF-8
/// after decoding become U+FFFD.
///
/// ```
/// use mio_grpc::grpc::percent_decode;
///
/// assert_eq!(percent_decode(b"100%25 done"), "100% done");
/// assert_eq!(percent_decode(b"%e2%82%ac"), "€");
/// assert_eq!(percent_decode(b"50%"), "50%");
/// assert_eq!(percent_decode(b"%zz"), "%zz");
/// assert_eq!(percent_decode(b"%FF"), "\u{FFFD}");
/// ```
#[must_use]
pub fn percent_decode(value: &[u8]) -> String {
    if !value.contains(&b'%') {
        return String::from_utf8_lossy(value).into_owned();
    }
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    loop {
        rest = match *rest {
            [b'%', hi, lo, ref tail @ ..] => match (hex_value(hi), hex_value(lo)) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    tail
                }
                _ => {
                    out.push(b'%');
                    rest.get(1..).unwrap_or_default()
                }
            },
            [b, ref tail @ ..] => {
                out.push(b);
                tail
            }
            [] => break,
        };
    }
    match String::from_utf8(out) {
        Ok(message) => message,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

/// Bytes `grpc-message` carries as they are: space and VCHAR, except `%`.
const fn is_unreserved(b: u8) -> bool {
    matches!(b, 0x20..=0x7e) && b != b'%'
}

/// The uppercase hex digit of the low four bits of `n`.
fn hex_upper(n: u8) -> char {
    let n = n & 0x0f;
    char::from(if n < 10 { b'0' + n } else { b'A' + n - 10 })
}

/// The value of one hex digit, either case.
const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_code_parsing() {
        assert_eq!(parse_status_code(b"0"), Some(0));
        assert_eq!(parse_status_code(b"16"), Some(16));
        assert_eq!(parse_status_code(b"007"), Some(7));
        assert_eq!(parse_status_code(b"2147483647"), Some(i32::MAX));
        assert_eq!(parse_status_code(b"2147483648"), None);
        assert_eq!(parse_status_code(b"99999999999"), None);
        assert_eq!(parse_status_code(b""), None);
        assert_eq!(parse_status_code(b"-1"), None);
        assert_eq!(parse_status_code(b" 1"), None);
        assert_eq!(parse_status_code(b"1a"), None);
    }

    #[test]
    fn http_status_parsing() {
        assert_eq!(parse_http_status(b"200"), Some(200));
        assert_eq!(parse_http_status(b"503"), Some(503));
        assert_eq!(parse_http_status(b"20"), None);
        assert_eq!(parse_http_status(b"2000"), None);
        assert_eq!(parse_http_status(b"2x0"), None);
    }

    #[test]
    fn wire_value_is_the_number() {
        for n in 0..=16 {
            let code = Code::from_i32(n);
            assert_eq!(code.wire_value(), n.to_string());
        }
    }

    #[test]
    fn percent_decode_edge_cases() {
        assert_eq!(percent_decode(b""), "");
        assert_eq!(percent_decode(b"%"), "%");
        assert_eq!(percent_decode(b"%4"), "%4");
        assert_eq!(percent_decode(b"%%41"), "%A");
        assert_eq!(percent_decode(b"%4%41"), "%4A");
        assert_eq!(percent_decode(b"a%2"), "a%2");
        assert_eq!(percent_decode(b"%C3%A4%"), "ä%");
    }
}

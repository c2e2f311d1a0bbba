//! HTTP message validation per RFC 9113 §8: is a field section malformed?
//!
//! Owns the rules one decoded field section (a [`HeaderList`] in wire order)
//! can break: [`validate_request`], [`validate_response`] and
//! [`validate_trailers`] return the validated head, or the [`Malformed`] rule
//! broken. A malformed message is a stream error of type `PROTOCOL_ERROR`
//! (RFC 9113 §8.1.1): see [`Malformed::reason`]. [`ContentLength`] checks
//! DATA against a declared `content-length` (§8.1.1).
//!
//! Rules checked: field names and values (§8.2, §8.2.1), connection-specific
//! fields and `te` (§8.2.2), pseudo-headers — defined ones only, each once,
//! before every regular field, none in trailers (§8.1, §8.3) — request and
//! response pseudo-headers (§8.3.1, §8.3.2), CONNECT (§8.5) and extended
//! CONNECT (RFC 8441 §4), `content-length` syntax (RFC 9110 §8.6).
//!
//! Cost: one pass over the fields, no allocation. Pseudo-header values are
//! moved out, and since they must form a prefix of the list, the remaining
//! regular fields are shifted down in place: the returned `fields` is the
//! caller's `Vec`. A `Bytes` is cloned only to name a field in an error.
//!
//! Choices where the RFC leaves room:
//! - Field names must be RFC 9110 tokens (stricter than §8.2.1's byte
//!   ranges): lowercase letters, digits and ``!#$%&'*+-.^_`|~``.
//! - `te` is compared to `trailers` ASCII case-insensitively.
//! - Repeated `content-length` fields, and comma lists within one, are
//!   accepted when every element is the same decimal (RFC 9110 §8.6 allows
//!   this or rejecting); an empty element is invalid. `content-length` in
//!   trailers is not interpreted.
//! - `host` differing from `:authority` is malformed (§8.3.1: "SHOULD");
//!   compared ASCII case-insensitively, ignoring the scheme's default port
//!   (`:80`, `:443`).
//! - `:path` must be non-empty for every scheme; for `http`/`https` it must
//!   start with `/`, or be `*` on OPTIONS.
//! - `:status` is three digits, 100 to 999; 1xx (even 101) is the caller's to
//!   judge, as is whether `content-length` binds a response's DATA (HEAD, 304).
//! - `:protocol` is accepted with CONNECT; whether
//!   `SETTINGS_ENABLE_CONNECT_PROTOCOL` was sent (RFC 8441 §3) is the connection's to check.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt;
use std::mem;

use bytes::Bytes;
use framer::hpack::HeaderList;
use framer::Reason;

pub use super::head::{RequestHead, ResponseHead};

/// Why a field section is malformed: one variant per rule, so a test can say
/// which. Variants that carry `Bytes` carry a field *name*, never a value
/// (values may be credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// A field with an empty name (RFC 9113 §8.2.1; a name is an RFC 9110
    /// §5.1 token).
    EmptyName,
    /// An uppercase ASCII letter in a field name (RFC 9113 §8.2).
    UppercaseName(Bytes),
    /// A field-name byte that is not a token character: space, control,
    /// non-ASCII, or a colon outside the pseudo-header prefix (RFC 9113
    /// §8.2.1, RFC 9110 §5.6.2).
    InvalidNameChar(Bytes),
    /// NUL, CR or LF in the value of the named field (RFC 9113 §8.2.1).
    InvalidValueChar(Bytes),
    /// The value of the named field starts or ends with SP or HTAB (RFC 9113
    /// §8.2.1).
    ValueWhitespace(Bytes),
    /// A connection-specific field: `connection`, `keep-alive`,
    /// `proxy-connection`, `transfer-encoding` or `upgrade` (RFC 9113 §8.2.2).
    ConnectionSpecific(&'static str),
    /// `te` with a value other than `trailers` (RFC 9113 §8.2.2).
    TeNotTrailers,
    /// The named pseudo-header follows a regular field (RFC 9113 §8.3).
    PseudoAfterRegular(Bytes),
    /// A pseudo-header that is not defined (RFC 9113 §8.3).
    UnknownPseudo(Bytes),
    /// A pseudo-header given twice (RFC 9113 §8.3.1, §8.3.2).
    DuplicatePseudo(&'static str),
    /// A required pseudo-header is absent (RFC 9113 §8.3.1, §8.3.2, §8.5;
    /// RFC 8441 §4).
    MissingPseudo(&'static str),
    /// The named pseudo-header in a trailer section (RFC 9113 §8.1).
    PseudoInTrailers(Bytes),
    /// A request pseudo-header in a response (RFC 9113 §8.3).
    RequestPseudoInResponse(&'static str),
    /// A response pseudo-header in a request (RFC 9113 §8.3).
    ResponsePseudoInRequest(&'static str),
    /// `:method` is not a token (RFC 9113 §8.3.1, RFC 9110 §9.1).
    InvalidMethod,
    /// `:path` is empty (RFC 9113 §8.3.1).
    EmptyPath,
    /// An `http`/`https` `:path` neither starts with `/` nor is `*` on an
    /// OPTIONS request (RFC 9113 §8.3.1).
    InvalidPath,
    /// An `http`/`https` `:authority` with userinfo (`@`) (RFC 9113 §8.3.1).
    AuthorityUserinfo,
    /// `host` names another authority than `:authority` (RFC 9113 §8.3.1).
    HostAuthorityMismatch,
    /// A CONNECT request without `:protocol` carries the named `:scheme` or
    /// `:path` (RFC 9113 §8.5).
    ConnectWithSchemeOrPath(&'static str),
    /// `:protocol` on a method other than CONNECT (RFC 8441 §4).
    ProtocolWithoutConnect,
    /// `content-length` is not a decimal, or copies disagree (RFC 9113
    /// §8.1.1, RFC 9110 §8.6).
    InvalidContentLength,
    /// `:status` is not three digits from 100 to 999 (RFC 9113 §8.3.2,
    /// RFC 9110 §15).
    InvalidStatus,
    /// An interim (1xx) response head with END_STREAM (RFC 9113 §8.1).
    /// Not produced here: the connection sees the flag and reports it.
    InterimEndsStream,
    /// A HEADERS frame after the head that is not trailers, i.e. lacks
    /// END_STREAM (RFC 9113 §8.1). Not produced here: the connection sees
    /// the flag and reports it.
    HeadersWithoutEndStream,
    /// DATA went past the declared `content-length` (RFC 9113 §8.1.1).
    DataExceedsContentLength {
        /// The declared length.
        declared: u64,
        /// DATA payload octets received so far.
        received: u64,
    },
    /// The stream ended short of the declared `content-length` (RFC 9113
    /// §8.1.1).
    DataShortOfContentLength {
        /// The declared length.
        declared: u64,
        /// DATA payload octets received.
        received: u64,
    },
}

impl Malformed {
    /// The error code: a malformed message is a stream error of type
    /// `PROTOCOL_ERROR` (RFC 9113 §8.1.1), answered with `RST_STREAM`.
    #[must_use]
    pub const fn reason(&self) -> Reason {
        Reason::PROTOCOL_ERROR
    }

    /// The RFC section of the rule broken, e.g. `"RFC 9113 §8.2.2"`.
    #[must_use]
    pub fn rfc(&self) -> &'static str {
        use Malformed::*;
        match self {
            EmptyName | InvalidNameChar(_) | InvalidValueChar(_) | ValueWhitespace(_) => {
                "RFC 9113 §8.2.1"
            }
            UppercaseName(_) => "RFC 9113 §8.2",
            ConnectionSpecific(_) | TeNotTrailers => "RFC 9113 §8.2.2",
            PseudoAfterRegular(_)
            | UnknownPseudo(_)
            | RequestPseudoInResponse(_)
            | ResponsePseudoInRequest(_) => "RFC 9113 §8.3",
            PseudoInTrailers(_) | InterimEndsStream | HeadersWithoutEndStream => "RFC 9113 §8.1",
            DuplicatePseudo(STATUS) | MissingPseudo(STATUS) | InvalidStatus => "RFC 9113 §8.3.2",
            MissingPseudo(AUTHORITY) | ConnectWithSchemeOrPath(_) => "RFC 9113 §8.5",
            DuplicatePseudo(_)
            | MissingPseudo(_)
            | InvalidMethod
            | EmptyPath
            | InvalidPath
            | AuthorityUserinfo
            | HostAuthorityMismatch => "RFC 9113 §8.3.1",
            ProtocolWithoutConnect => "RFC 8441 §4",
            InvalidContentLength => "RFC 9110 §8.6",
            DataExceedsContentLength { .. } | DataShortOfContentLength { .. } => "RFC 9113 §8.1.1",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Malformed::*;
        let (what, name): (&str, &[u8]) = match self {
            EmptyName => ("empty field name", b""),
            UppercaseName(n) => ("uppercase in field name ", n),
            InvalidNameChar(n) => ("invalid character in field name ", n),
            InvalidValueChar(n) => ("NUL, CR or LF in the value of ", n),
            ValueWhitespace(n) => ("leading or trailing whitespace in the value of ", n),
            ConnectionSpecific(n) => ("connection-specific field ", n.as_bytes()),
            TeNotTrailers => ("te other than \"trailers\"", b""),
            PseudoAfterRegular(n) => ("pseudo-header after a regular field: ", n),
            UnknownPseudo(n) => ("unknown pseudo-header ", n),
            DuplicatePseudo(n) => ("pseudo-header given twice: ", n.as_bytes()),
            MissingPseudo(n) => ("pseudo-header missing: ", n.as_bytes()),
            PseudoInTrailers(n) => ("pseudo-header in trailers: ", n),
            RequestPseudoInResponse(n) => ("request pseudo-header in a response: ", n.as_bytes()),
            ResponsePseudoInRequest(n) => ("response pseudo-header in a request: ", n.as_bytes()),
            InvalidMethod => (":method is not a token", b""),
            EmptyPath => (":path is empty", b""),
            InvalidPath => (":path neither starts with '/' nor is '*' on OPTIONS", b""),
            AuthorityUserinfo => (":authority has userinfo", b""),
            HostAuthorityMismatch => ("host differs from :authority", b""),
            ConnectWithSchemeOrPath(n) => ("CONNECT with ", n.as_bytes()),
            ProtocolWithoutConnect => (":protocol without CONNECT", b""),
            InvalidContentLength => ("invalid content-length", b""),
            InvalidStatus => (":status is not three digits from 100 to 999", b""),
            InterimEndsStream => ("1xx response with END_STREAM", b""),
            HeadersWithoutEndStream => ("HEADERS after the head without END_STREAM", b""),
            DataExceedsContentLength { declared, received }
            | DataShortOfContentLength { declared, received } => {
                return write!(
                    f,
                    "malformed message: {received} DATA octets for content-length {declared} ({})",
                    self.rfc()
                );
            }
        };
        write!(
            f,
            "malformed message: {what}{} ({})",
            name.escape_ascii(),
            self.rfc()
        )
    }
}

impl std::error::Error for Malformed {}

const METHOD: &str = ":method";
const SCHEME: &str = ":scheme";
const AUTHORITY: &str = ":authority";
const PATH: &str = ":path";
const PROTOCOL: &str = ":protocol";
const STATUS: &str = ":status";

/// Validates a request's header section (RFC 9113 §8.2, §8.3.1, §8.5,
/// RFC 8441 §4) and splits out its pseudo-headers.
///
/// # Errors
/// The first rule the section breaks, as a [`Malformed`]; the stream is then
/// reset with `PROTOCOL_ERROR`.
///
/// # Example
/// ```
/// use mio_grpc::conn::validate::{validate_request, Malformed};
/// use mio_grpc::framer::hpack::HeaderField;
///
/// let head = validate_request(vec![
///     HeaderField::new(":method", "POST"),
///     HeaderField::new(":scheme", "http"),
///     HeaderField::new(":path", "/helloworld.Greeter/SayHello"),
///     HeaderField::new(":authority", "localhost:50051"),
///     HeaderField::new("content-type", "application/grpc"),
///     HeaderField::new("te", "trailers"),
/// ])?;
/// assert_eq!(head.path.as_deref(), Some(&b"/helloworld.Greeter/SayHello"[..]));
/// assert_eq!(head.fields.len(), 2);
///
/// let bad = validate_request(vec![
///     HeaderField::new(":method", "POST"),
///     HeaderField::new(":scheme", "http"),
///     HeaderField::new(":path", "/"),
///     HeaderField::new("connection", "keep-alive"),
/// ]);
/// assert_eq!(bad, Err(Malformed::ConnectionSpecific("connection")));
/// # Ok::<(), Malformed>(())
/// ```
pub fn validate_request(mut fields: HeaderList) -> Result<RequestHead, Malformed> {
    let mut p = RequestPseudo::default();
    let (prefix, content_length) = scan(&mut fields, &mut p)?;
    let method = p.method.ok_or(Malformed::MissingPseudo(METHOD))?;
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Malformed::InvalidMethod);
    }
    let connect = method.as_ref() == b"CONNECT";
    if connect && p.protocol.is_none() {
        // RFC 9113 §8.5: only :method and :authority.
        if p.scheme.is_some() {
            return Err(Malformed::ConnectWithSchemeOrPath(SCHEME));
        }
        if p.path.is_some() {
            return Err(Malformed::ConnectWithSchemeOrPath(PATH));
        }
        if p.authority.is_none() {
            return Err(Malformed::MissingPseudo(AUTHORITY));
        }
    } else {
        if !connect && p.protocol.is_some() {
            return Err(Malformed::ProtocolWithoutConnect);
        }
        let scheme = p
            .scheme
            .as_deref()
            .ok_or(Malformed::MissingPseudo(SCHEME))?;
        let path = p.path.as_deref().ok_or(Malformed::MissingPseudo(PATH))?;
        let http = is_http(scheme);
        check_path(http, path, &method)?;
        if http && p.authority.as_deref().is_some_and(|a| has_byte(a, b'@')) {
            return Err(Malformed::AuthorityUserinfo);
        }
    }
    fields.drain(..prefix);
    Ok(RequestHead {
        method,
        scheme: p.scheme,
        authority: p.authority,
        path: p.path,
        protocol: p.protocol,
        fields,
        content_length,
    })
}

/// Validates a response's header section (RFC 9113 §8.2, §8.3.2) and takes
/// out `:status`. Interim (1xx) responses pass; the caller decides (and
/// reports [`Malformed::InterimEndsStream`] if one carries END_STREAM).
///
/// # Errors
/// The first rule the section breaks, as a [`Malformed`].
///
/// # Example
/// ```
/// use mio_grpc::conn::validate::validate_response;
/// use mio_grpc::framer::hpack::HeaderField;
///
/// let head = validate_response(vec![
///     HeaderField::new(":status", "200"),
///     HeaderField::new("content-type", "application/grpc"),
/// ])?;
/// assert_eq!(head.status, 200);
/// assert_eq!(head.fields.len(), 1);
/// # Ok::<(), mio_grpc::conn::validate::Malformed>(())
/// ```
pub fn validate_response(mut fields: HeaderList) -> Result<ResponseHead, Malformed> {
    let mut p = ResponsePseudo { status: None };
    let (prefix, content_length) = scan(&mut fields, &mut p)?;
    let status = p.status.ok_or(Malformed::MissingPseudo(STATUS))?;
    fields.drain(..prefix);
    Ok(ResponseHead {
        status,
        fields,
        content_length,
    })
}

/// Validates a trailer section, either direction: no pseudo-headers (RFC
/// 9113 §8.1) and the field rules of §8.2. Returns the same list.
///
/// # Errors
/// The first rule the section breaks, as a [`Malformed`].
///
/// # Example
/// ```
/// use mio_grpc::conn::validate::{validate_trailers, Malformed};
/// use mio_grpc::framer::hpack::HeaderField;
///
/// let trailers = validate_trailers(vec![HeaderField::new("grpc-status", "0")])?;
/// assert_eq!(trailers.len(), 1);
/// assert!(validate_trailers(vec![HeaderField::new(":status", "200")]).is_err());
/// # Ok::<(), Malformed>(())
/// ```
pub fn validate_trailers(mut fields: HeaderList) -> Result<HeaderList, Malformed> {
    scan(&mut fields, &mut Trailers)?;
    Ok(fields)
}

/// Tracks DATA payload lengths against a declared `content-length`: a
/// mismatch makes the message malformed (RFC 9113 §8.1.1). Count payload
/// octets only, not padding.
///
/// # Example
/// ```
/// use mio_grpc::conn::validate::{ContentLength, Malformed};
///
/// let mut cl = ContentLength::new(Some(10));
/// cl.on_data(4)?;
/// assert_eq!(cl.on_end(), Err(Malformed::DataShortOfContentLength { declared: 10, received: 4 }));
/// cl.on_data(6)?;
/// cl.on_end()?;
/// assert!(cl.on_data(1).is_err());
/// # Ok::<(), Malformed>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentLength {
    declared: Option<u64>,
    received: u64,
}

impl ContentLength {
    /// A tracker for `declared` octets; `None` checks nothing.
    #[must_use]
    pub const fn new(declared: Option<u64>) -> Self {
        Self {
            declared,
            received: 0,
        }
    }

    /// The declared length.
    #[must_use]
    pub const fn declared(&self) -> Option<u64> {
        self.declared
    }

    /// DATA payload octets counted so far.
    #[must_use]
    pub const fn received(&self) -> u64 {
        self.received
    }

    /// Counts a DATA frame's payload of `len` octets.
    ///
    /// # Errors
    /// [`Malformed::DataExceedsContentLength`] once the total passes the
    /// declared length.
    pub fn on_data(&mut self, len: usize) -> Result<(), Malformed> {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        self.received = self.received.saturating_add(len);
        match self.declared {
            Some(declared) if self.received > declared => {
                Err(Malformed::DataExceedsContentLength {
                    declared,
                    received: self.received,
                })
            }
            _ => Ok(()),
        }
    }

    /// Checks the total at `END_STREAM`.
    ///
    /// # Errors
    /// [`Malformed::DataShortOfContentLength`] if fewer octets came than
    /// declared ([`Malformed::DataExceedsContentLength`] if more).
    pub const fn on_end(&self) -> Result<(), Malformed> {
        match self.declared {
            Some(declared) if self.received < declared => {
                Err(Malformed::DataShortOfContentLength {
                    declared,
                    received: self.received,
                })
            }
            Some(declared) if self.received > declared => {
                Err(Malformed::DataExceedsContentLength {
                    declared,
                    received: self.received,
                })
            }
            _ => Ok(()),
        }
    }
}

/// What a section does with its pseudo-headers (the leading `:` fields).
trait Pseudo {
    /// `false` for trailers: no pseudo-headers, `content-length` not read.
    const HEADER_SECTION: bool;
    /// Takes one pseudo-header; checks its value.
    fn take(&mut self, name: &Bytes, value: &mut Bytes) -> Result<(), Malformed>;
    /// Checks a `host` field against the pseudo-headers taken.
    fn host(&self, _value: &[u8]) -> Result<(), Malformed> {
        Ok(())
    }
}

#[derive(Default)]
struct RequestPseudo {
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    protocol: Option<Bytes>,
}

impl Pseudo for RequestPseudo {
    const HEADER_SECTION: bool = true;

    fn take(&mut self, name: &Bytes, value: &mut Bytes) -> Result<(), Malformed> {
        let (slot, label) = match name.as_ref() {
            b":method" => (&mut self.method, METHOD),
            b":scheme" => (&mut self.scheme, SCHEME),
            b":authority" => (&mut self.authority, AUTHORITY),
            b":path" => (&mut self.path, PATH),
            b":protocol" => (&mut self.protocol, PROTOCOL),
            b":status" => return Err(Malformed::ResponsePseudoInRequest(STATUS)),
            _ => return Err(unknown_pseudo(name)),
        };
        if slot.is_some() {
            return Err(Malformed::DuplicatePseudo(label));
        }
        check_value(name, value)?;
        *slot = Some(mem::take(value));
        Ok(())
    }

    fn host(&self, host: &[u8]) -> Result<(), Malformed> {
        match self.authority.as_deref() {
            Some(authority) if !same_authority(authority, host, self.scheme.as_deref()) => {
                Err(Malformed::HostAuthorityMismatch)
            }
            _ => Ok(()),
        }
    }
}

struct ResponsePseudo {
    status: Option<u16>,
}

impl Pseudo for ResponsePseudo {
    const HEADER_SECTION: bool = true;

    fn take(&mut self, name: &Bytes, value: &mut Bytes) -> Result<(), Malformed> {
        let request = match name.as_ref() {
            b":status" => {
                if self.status.is_some() {
                    return Err(Malformed::DuplicatePseudo(STATUS));
                }
                check_value(name, value)?;
                self.status = Some(parse_status(value).ok_or(Malformed::InvalidStatus)?);
                return Ok(());
            }
            b":method" => METHOD,
            b":scheme" => SCHEME,
            b":authority" => AUTHORITY,
            b":path" => PATH,
            b":protocol" => PROTOCOL,
            _ => return Err(unknown_pseudo(name)),
        };
        Err(Malformed::RequestPseudoInResponse(request))
    }
}

struct Trailers;

impl Pseudo for Trailers {
    const HEADER_SECTION: bool = false;

    fn take(&mut self, name: &Bytes, _value: &mut Bytes) -> Result<(), Malformed> {
        Err(Malformed::PseudoInTrailers(name.clone()))
    }
}

/// The single pass: checks every field, hands pseudo-headers to `pseudo`,
/// reads `content-length`. Returns the length of the pseudo-header prefix
/// and the declared content length.
fn scan<P: Pseudo>(
    fields: &mut HeaderList,
    pseudo: &mut P,
) -> Result<(usize, Option<u64>), Malformed> {
    let mut prefix = 0;
    let mut content_length = None;
    for (i, field) in fields.iter_mut().enumerate() {
        if field.name.first() == Some(&b':') {
            if !P::HEADER_SECTION {
                return Err(Malformed::PseudoInTrailers(field.name.clone()));
            }
            if i != prefix {
                return Err(Malformed::PseudoAfterRegular(field.name.clone()));
            }
            pseudo.take(&field.name, &mut field.value)?;
            prefix += 1;
            continue;
        }
        check_name(&field.name)?;
        check_value(&field.name, &field.value)?;
        match field.name.as_ref() {
            b"te" if !field.value.eq_ignore_ascii_case(b"trailers") => {
                return Err(Malformed::TeNotTrailers)
            }
            b"connection" => return Err(Malformed::ConnectionSpecific("connection")),
            b"keep-alive" => return Err(Malformed::ConnectionSpecific("keep-alive")),
            b"proxy-connection" => return Err(Malformed::ConnectionSpecific("proxy-connection")),
            b"transfer-encoding" => return Err(Malformed::ConnectionSpecific("transfer-encoding")),
            b"upgrade" => return Err(Malformed::ConnectionSpecific("upgrade")),
            b"host" => pseudo.host(&field.value)?,
            b"content-length" if P::HEADER_SECTION => {
                content_length = match (content_length, parse_content_length(&field.value)) {
                    (Some(a), Some(b)) if a != b => return Err(Malformed::InvalidContentLength),
                    (_, Some(b)) => Some(b),
                    (_, None) => return Err(Malformed::InvalidContentLength),
                };
            }
            _ => {}
        }
    }
    Ok((prefix, content_length))
}

/// The valid HTTP/2 field-name bytes (RFC 9113 §8.2.1): RFC 9110 §5.6.2
/// `tchar` minus uppercase, i.e. ``a-z 0-9 !#$%&'*+-.^_`|~``. Bytes from 0x80
/// are past the end, so invalid.
#[rustfmt::skip]
static NAME_BYTE: [bool; 128] = {
    const X: bool = true;
    const O: bool = false;
    [
    //  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f
        O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, // 0x00
        O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, // 0x10
        O, X, O, X, X, X, X, X, O, O, X, X, O, X, X, O, // 0x20
        X, X, X, X, X, X, X, X, X, X, O, O, O, O, O, O, // 0x30
        O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, // 0x40
        O, O, O, O, O, O, O, O, O, O, O, O, O, O, X, X, // 0x50
        X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, // 0x60
        X, X, X, X, X, X, X, X, X, X, X, O, X, O, X, O, // 0x70
    ]
};

/// Whether `b` may appear in a field name: one table load.
fn is_name_byte(b: u8) -> bool {
    NAME_BYTE.get(usize::from(b)).copied().unwrap_or(false)
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    is_name_byte(b) || b.is_ascii_uppercase()
}

/// Whether every byte of `s` is a name byte: a branch-free loop, as names
/// are almost always valid.
fn all_name_bytes(s: &[u8]) -> bool {
    // `&`, not `&&`: no branch per byte.
    s.iter().fold(true, |ok, &b| ok & is_name_byte(b))
}

/// A regular field name: a non-empty lowercase token (RFC 9113 §8.2.1).
fn check_name(name: &Bytes) -> Result<(), Malformed> {
    if name.is_empty() {
        return Err(Malformed::EmptyName);
    }
    if all_name_bytes(name) {
        return Ok(());
    }
    Err(bad_name(name, name))
}

/// The error for a pseudo-header name that matched no defined one: a bad
/// character, else unknown.
fn unknown_pseudo(name: &Bytes) -> Malformed {
    let rest = name.strip_prefix(b":").unwrap_or_default();
    if all_name_bytes(rest) {
        return Malformed::UnknownPseudo(name.clone());
    }
    bad_name(name, rest)
}

/// The error for a name whose `chars` are not all valid: uppercase if the
/// first bad byte is.
fn bad_name(name: &Bytes, chars: &[u8]) -> Malformed {
    match chars.iter().find(|&&b| !is_name_byte(b)) {
        Some(b) if b.is_ascii_uppercase() => Malformed::UppercaseName(name.clone()),
        _ => Malformed::InvalidNameChar(name.clone()),
    }
}

/// A field value: no NUL, CR or LF; no SP or HTAB at either end (RFC 9113
/// §8.2.1).
fn check_value(name: &Bytes, value: &[u8]) -> Result<(), Malformed> {
    if any_below_14(value) && value.iter().any(|&b| matches!(b, b'\0' | b'\r' | b'\n')) {
        return Err(Malformed::InvalidValueChar(name.clone()));
    }
    if matches!(value.first(), Some(b' ' | b'\t')) || matches!(value.last(), Some(b' ' | b'\t')) {
        return Err(Malformed::ValueWhitespace(name.clone()));
    }
    Ok(())
}

/// Whether any byte is below 0x0e (NUL, CR and LF are; so is HTAB): eight
/// bytes per step, the "has less than" word trick (exact for the question
/// "any?").
fn any_below_14(value: &[u8]) -> bool {
    const ONES: u64 = u64::MAX / 255;
    let below = |x: u64| x.wrapping_sub(ONES * 14) & !x & (ONES * 0x80);
    let mut chunks = value.chunks_exact(8);
    let mut found = 0;
    for chunk in &mut chunks {
        // Always 8 bytes; were it not, 0 would send us to the exact check.
        found |= below(<[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes));
    }
    let tail = chunks.remainder().iter().rev();
    found |= below(tail.fold(ONES * u64::from(b' '), |w, &b| w << 8 | u64::from(b)));
    found != 0
}

/// Whether `s` holds `byte` (a branch-free scan; `s` is short).
fn has_byte(s: &[u8], byte: u8) -> bool {
    s.iter().fold(false, |found, &b| found | (b == byte))
}

fn is_http(scheme: &[u8]) -> bool {
    matches!(scheme, b"http" | b"https")
        || scheme.eq_ignore_ascii_case(b"http")
        || scheme.eq_ignore_ascii_case(b"https")
}

/// `:path`: non-empty; for an `http`/`https` scheme, origin form (`/...`) or, on
/// OPTIONS, asterisk form (`*`) (RFC 9113 §8.3.1).
fn check_path(http: bool, path: &[u8], method: &[u8]) -> Result<(), Malformed> {
    match path {
        [] => Err(Malformed::EmptyPath),
        _ if !http => Ok(()),
        [b'/', ..] => Ok(()),
        b"*" if method == b"OPTIONS" => Ok(()),
        _ => Err(Malformed::InvalidPath),
    }
}

/// Whether `host` names the same authority as `:authority`: equal ignoring
/// ASCII case, or equal once the scheme's default port is dropped.
fn same_authority(authority: &[u8], host: &[u8], scheme: Option<&[u8]>) -> bool {
    if authority.eq_ignore_ascii_case(host) {
        return true;
    }
    let port: &[u8] = match scheme {
        Some(s) if s.eq_ignore_ascii_case(b"https") => b":443",
        Some(s) if s.eq_ignore_ascii_case(b"http") => b":80",
        _ => return false,
    };
    let a = authority.strip_suffix(port).unwrap_or(authority);
    let h = host.strip_suffix(port).unwrap_or(host);
    a.eq_ignore_ascii_case(h)
}

/// `:status`: three digits, 100 to 999.
fn parse_status(value: &[u8]) -> Option<u16> {
    match *value {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// `content-length`: `1*DIGIT`, or a comma list whose elements (OWS
/// around each) are all the same decimal (RFC 9110 §8.6). `None` if invalid
/// or past `u64`.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut length = None;
    for element in value.split(|&b| b == b',') {
        let n = parse_decimal(trim_ows(element))?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    length
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Trims RFC 9110 OWS (SP and HTAB) from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{any_below_14, is_name_byte, is_tchar};

    #[test]
    fn name_byte_table_is_lowercase_tchar() {
        for b in 0..=255u8 {
            let tchar = matches!(b,
                b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
                | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
            assert_eq!(is_tchar(b), tchar, "{b:#04x}");
            assert_eq!(
                is_name_byte(b),
                tchar && !b.is_ascii_uppercase(),
                "{b:#04x}"
            );
        }
    }

    #[test]
    fn any_below_14_finds_every_byte_at_every_position() {
        for len in 0..20 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut value = vec![b'a'; len];
                    if let Some(slot) = value.get_mut(pos) {
                        *slot = b;
                    }
                    assert_eq!(any_below_14(&value), b < 14, "len {len} pos {pos} byte {b}");
                }
            }
            assert!(!any_below_14(&vec![0xff; len]));
        }
    }
}

//! The validated heads of HTTP messages, as the connection reports them
//! ([`ConnEvent::Request`](super::ConnEvent::Request),
//! [`ConnEvent::Response`](super::ConnEvent::Response)): pseudo-headers
//! taken out, regular fields kept. Produced by [`super::validate`].

use bytes::Bytes;
use framer::hpack::HeaderList;

/// A validated request head (server side): the pseudo-headers taken out,
/// the regular fields kept in wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `:method`, a token.
    pub method: Bytes,
    /// `:scheme`; `None` only on CONNECT (RFC 9113 §8.5).
    pub scheme: Option<Bytes>,
    /// `:authority`, if sent.
    pub authority: Option<Bytes>,
    /// `:path`, non-empty; `None` only on CONNECT.
    pub path: Option<Bytes>,
    /// `:protocol` of an extended CONNECT (RFC 8441 §4).
    pub protocol: Option<Bytes>,
    /// The regular fields, in wire order (`content-length` and `host`
    /// included).
    pub fields: HeaderList,
    /// The declared `content-length`: feed it to
    /// [`ContentLength::new`](super::validate::ContentLength::new).
    pub content_length: Option<u64>,
}

/// A validated response head (client side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// `:status`, 100 to 999; a 1xx is an interim response.
    pub status: u16,
    /// The regular fields, in wire order.
    pub fields: HeaderList,
    /// The declared `content-length`. It does not bind DATA on a response
    /// defined to have no content (to HEAD, or 304; RFC 9113 §8.1.1): the
    /// caller then passes `None` to
    /// [`ContentLength::new`](super::validate::ContentLength::new).
    pub content_length: Option<u64>,
}

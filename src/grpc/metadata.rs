//! [`Metadata`]: a call's custom metadata (PROTOCOL-HTTP2.md
//! "Custom-Metadata"), sent in request headers, response headers and
//! trailers.
//!
//! ```text
//! Custom-Metadata → Binary-Header / ASCII-Header
//! Binary-Header   → {Header-Name "-bin" } {base64 encoded value}
//! ASCII-Header    → Header-Name ASCII-Value
//! Header-Name     → 1*( %x30-39 / %x61-7A / "_" / "-" / "." ) ; 0-9 a-z _ - .
//! ASCII-Value     → 1*( %x20-%x7E ) ; space and printable ASCII
//! ```
//!
//! Invariants of every [`Metadata`]:
//!
//! - Keys are valid Header-Names (lowercase; what [`Metadata::insert`]
//!   checks).
//! - A key ending in `-bin` holds binary values, kept decoded; base64 is
//!   only the wire form (we send it unpadded, and accept both forms).
//! - Any other key holds printable-ASCII values (`0x20..=0x7E`).
//! - Order is kept: entries come out in the order they went in, several
//!   values under one key included.
//!
//! Transport-owned headers are not metadata: pseudo-headers, and the names
//! grpc-go's `isReservedHeader` lists (`content-type`, `te`,
//! `grpc-encoding`, `grpc-timeout`, `grpc-status`, `grpc-message`,
//! `grpc-status-details-bin`, `grpc-message-type`, `user-agent`) plus
//! `grpc-accept-encoding` and the connection-specific headers HTTP/2
//! forbids (RFC 9113 §8.2.2). [`Metadata::insert`] refuses them and
//! [`Metadata::to_headers`] never writes them. [`Metadata::from_headers`]
//! skips them, except `user-agent`, which stays visible to handlers (as
//! grpc-go's `isWhitelistedHeader`).

use std::fmt;

use bytes::Bytes;
use framer::hpack::{HeaderField, HeaderList};

use super::base64;

/// The suffix of keys with binary values.
const BIN_SUFFIX: &[u8] = b"-bin";

/// Names that are not metadata: the transport sets and reads them.
const RESERVED: &[&[u8]] = &[
    b"content-type",
    b"te",
    b"user-agent",
    b"grpc-message-type",
    b"grpc-encoding",
    b"grpc-accept-encoding",
    b"grpc-message",
    b"grpc-status",
    b"grpc-timeout",
    b"grpc-status-details-bin",
    // RFC 9113 §8.2.2: a message carrying these is malformed.
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// Why a key or value cannot be metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// The key is empty or has a character outside `0-9 a-z _ - .`
    /// (uppercase included: keys are lowercase).
    InvalidKey(String),
    /// The key names a header the transport owns (`content-type`,
    /// `grpc-status`, `te`, …).
    ReservedKey(String),
    /// The value has a byte outside printable ASCII (`0x20..=0x7E`).
    InvalidValue {
        /// The key the value was for.
        key: String,
    },
    /// An ASCII value for a key ending in `-bin`: use
    /// [`Metadata::insert_bin`].
    BinaryKey(String),
    /// A binary value for a key not ending in `-bin`.
    NotBinaryKey(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::InvalidKey(key) => write!(
                f,
                "invalid metadata key {key:?}: keys are 0-9, a-z, '_', '-' and '.'"
            ),
            MetadataError::ReservedKey(key) => {
                write!(f, "metadata key {key:?} is reserved for the transport")
            }
            MetadataError::InvalidValue { key } => write!(
                f,
                "invalid value for metadata key {key:?}: values are printable ASCII"
            ),
            MetadataError::BinaryKey(key) => write!(
                f,
                "metadata key {key:?} ends in -bin: its values are binary"
            ),
            MetadataError::NotBinaryKey(key) => write!(
                f,
                "metadata key {key:?} does not end in -bin: its values are ASCII"
            ),
        }
    }
}

impl std::error::Error for MetadataError {}

/// One value in a [`Metadata`], as [`Metadata::iter`] yields it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataValue<'a> {
    /// The value of an ASCII key.
    Ascii(&'a str),
    /// The (decoded) value of a `-bin` key.
    Binary(&'a Bytes),
}

/// One entry: key and value, both checked (see the module invariants).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Entry {
    key: Bytes,
    value: Bytes,
}

impl Entry {
    fn key(&self) -> &str {
        ascii(&self.key)
    }

    fn is_bin(&self) -> bool {
        self.key.ends_with(BIN_SUFFIX)
    }

    fn value(&self) -> MetadataValue<'_> {
        if self.is_bin() {
            MetadataValue::Binary(&self.value)
        } else {
            MetadataValue::Ascii(ascii(&self.value))
        }
    }
}

/// A `&str` view of bytes checked to be ASCII when they were stored.
fn ascii(bytes: &Bytes) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// A call's custom metadata: an ordered multimap from lowercase keys to
/// values; keys ending in `-bin` hold binary values.
///
/// ```
/// use mio_grpc::grpc::{Metadata, MetadataError};
///
/// let mut md = Metadata::new();
/// md.insert("x-request-id", "42")?;
/// md.append("x-tag", "a")?;
/// md.append("x-tag", "b")?;
/// md.insert_bin("trace-bin", &b"\x00\x01\xff"[..])?;
///
/// assert_eq!(md.get("x-request-id"), Some("42"));
/// assert_eq!(md.get_all("x-tag").collect::<Vec<_>>(), ["a", "b"]);
/// assert_eq!(md.get_bin("trace-bin").map(|v| &v[..]), Some(&b"\x00\x01\xff"[..]));
/// assert_eq!(md.insert("Content-Type", "x"), Err(MetadataError::InvalidKey("Content-Type".into())));
/// assert_eq!(md.insert("te", "x"), Err(MetadataError::ReservedKey("te".into())));
///
/// // On the wire, binary values are base64 without padding.
/// let mut headers = Vec::new();
/// md.to_headers(&mut headers);
/// assert_eq!(&headers[3].value[..], b"AAH/");
/// assert_eq!(Metadata::from_headers(&headers), md);
/// # Ok::<(), MetadataError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Metadata {
    entries: Vec<Entry>,
}

impl Metadata {
    /// Empty metadata.
    #[must_use]
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Empty metadata with room for `capacity` entries.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Metadata {
        Metadata {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// The number of entries (values, not distinct keys).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `key` to the single ASCII `value`, replacing any values it had
    /// (the first keeps its place).
    ///
    /// # Errors
    ///
    /// [`MetadataError::InvalidKey`], [`MetadataError::ReservedKey`],
    /// [`MetadataError::BinaryKey`] (a `-bin` key: use
    /// [`Metadata::insert_bin`]) or [`MetadataError::InvalidValue`].
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let entry = ascii_entry(key, value)?;
        self.replace(entry);
        Ok(())
    }

    /// Adds the ASCII `value` under `key`, after any values it has.
    ///
    /// # Errors
    ///
    /// As [`Metadata::insert`].
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let entry = ascii_entry(key, value)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Sets the `-bin` `key` to the single binary `value`, replacing any
    /// values it had.
    ///
    /// # Errors
    ///
    /// [`MetadataError::InvalidKey`], [`MetadataError::ReservedKey`] or
    /// [`MetadataError::NotBinaryKey`] (the key does not end in `-bin`).
    pub fn insert_bin(&mut self, key: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        let entry = bin_entry(key, value.into())?;
        self.replace(entry);
        Ok(())
    }

    /// Adds the binary `value` under the `-bin` `key`, after any values it
    /// has.
    ///
    /// # Errors
    ///
    /// As [`Metadata::insert_bin`].
    pub fn append_bin(&mut self, key: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        let entry = bin_entry(key, value.into())?;
        self.entries.push(entry);
        Ok(())
    }

    /// The first value of the ASCII `key`; `None` if it has none, or if
    /// `key` is a `-bin` key (see [`Metadata::get_bin`]).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_all(key).next()
    }

    /// The first (decoded) value of the `-bin` `key`; `None` if it has
    /// none, or if `key` is not a `-bin` key.
    #[must_use]
    pub fn get_bin(&self, key: &str) -> Option<&Bytes> {
        self.get_all_bin(key).next()
    }

    /// Every value of the ASCII `key`, in order (none for a `-bin` key).
    pub fn get_all<'a, 'k>(&'a self, key: &'k str) -> GetAll<'a, 'k> {
        GetAll {
            entries: self.entries.iter(),
            key,
        }
    }

    /// Every (decoded) value of the `-bin` `key`, in order (none for an
    /// ASCII key).
    pub fn get_all_bin<'a, 'k>(&'a self, key: &'k str) -> GetAllBin<'a, 'k> {
        GetAllBin {
            entries: self.entries.iter(),
            key,
        }
    }

    /// Whether `key` has at least one value.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|entry| entry.key == key.as_bytes())
    }

    /// Removes every value of `key`; whether it had any.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|entry| entry.key != key.as_bytes());
        self.entries.len() != before
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Every entry, in order: the key and its value.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            entries: self.entries.iter(),
        }
    }

    /// Adds every entry of `other` after this one's.
    pub fn extend(&mut self, other: Metadata) {
        self.entries.extend(other.entries);
    }

    /// Adds every entry of `other` after this one's, sharing its buffers
    /// (no copy of keys or values).
    pub fn extend_from(&mut self, other: &Metadata) {
        self.entries.extend_from_slice(&other.entries);
    }

    /// Every entry, in order, in its stored form: the key, and the value as
    /// bytes (ASCII for ASCII keys, decoded for `-bin` keys). What
    /// [`Metadata::append_raw`] takes.
    pub fn iter_raw(&self) -> IterRaw<'_> {
        IterRaw {
            entries: self.entries.iter(),
        }
    }

    /// Adds a key and a value in stored form (as [`Metadata::iter_raw`]
    /// yields them) after the key's other values, sharing their buffers.
    /// A pair [`Metadata::from_headers`] would skip (an invalid key, a
    /// reserved one other than `user-agent`, an ASCII value with a byte
    /// outside `0x20..=0x7E`) is not added; returns whether it was.
    pub fn append_raw(&mut self, key: &Bytes, value: &Bytes) -> bool {
        let bin = key.ends_with(BIN_SUFFIX);
        if !is_metadata_name(key) || !(bin || is_valid_value(value)) {
            return false;
        }
        self.entries.push(Entry {
            key: key.clone(),
            value: value.clone(),
        });
        true
    }

    /// The metadata in a received header block (request headers, response
    /// headers or trailers). Never fails; what is not metadata is skipped:
    ///
    /// - pseudo-headers (`:path`, `:authority`, …) and reserved names
    ///   (see the module docs; `user-agent` is kept);
    /// - names that are not valid keys;
    /// - ASCII values with a byte outside `0x20..=0x7E`;
    /// - `-bin` values that are not base64 (padded or not). A `-bin` value
    ///   is split on `,` first (a peer may join repeated fields), and each
    ///   part decoded on its own.
    ///
    /// Names and ASCII values share the block's buffers (no copy).
    #[must_use]
    pub fn from_headers(headers: &[HeaderField]) -> Metadata {
        let mut metadata = Metadata::new();
        for field in headers {
            let name = &field.name;
            if !is_metadata_name(name) {
                continue;
            }
            if name.ends_with(BIN_SUFFIX) {
                for part in field.value.split(|&b| b == b',') {
                    if let Ok(value) = base64::decode(part.trim_ascii()) {
                        metadata.entries.push(Entry {
                            key: name.clone(),
                            value: Bytes::from(value),
                        });
                    }
                }
            } else if is_valid_value(&field.value) {
                metadata.entries.push(Entry {
                    key: name.clone(),
                    value: field.value.clone(),
                });
            }
        }
        metadata
    }

    /// Appends the metadata to `dst` as header fields, in order: ASCII
    /// values as they are, binary values base64-encoded without padding.
    /// Reserved keys (only [`Metadata::from_headers`] can have put one
    /// here: `user-agent`) are left out, so received metadata can be
    /// echoed back safely.
    pub fn to_headers(&self, dst: &mut HeaderList) {
        dst.reserve(self.entries.len());
        for entry in &self.entries {
            if is_reserved(&entry.key) {
                continue;
            }
            let value = if entry.is_bin() {
                Bytes::from(base64::encode_unpadded(&entry.value))
            } else {
                entry.value.clone()
            };
            dst.push(HeaderField::new(entry.key.clone(), value));
        }
    }

    /// Replaces the values of `entry`'s key with `entry`, at the place of
    /// the first; at the end if the key had none.
    fn replace(&mut self, entry: Entry) {
        match self.entries.iter().position(|e| e.key == entry.key) {
            Some(first) => {
                let mut index = 0;
                self.entries.retain(|e| {
                    let keep = index <= first || e.key != entry.key;
                    index += 1;
                    keep
                });
                if let Some(slot) = self.entries.get_mut(first) {
                    *slot = entry;
                }
            }
            None => self.entries.push(entry),
        }
    }
}

impl<'a> IntoIterator for &'a Metadata {
    type Item = (&'a str, MetadataValue<'a>);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The entries of a [`Metadata`], in order: [`Metadata::iter`].
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    entries: std::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, MetadataValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.entries
            .next()
            .map(|entry| (entry.key(), entry.value()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The entries of a [`Metadata`] in stored form: [`Metadata::iter_raw`].
#[derive(Clone, Debug)]
pub struct IterRaw<'a> {
    entries: std::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for IterRaw<'a> {
    type Item = (&'a Bytes, &'a Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        self.entries.next().map(|entry| (&entry.key, &entry.value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for IterRaw<'_> {}

/// The values of one ASCII key: [`Metadata::get_all`].
#[derive(Clone, Debug)]
pub struct GetAll<'a, 'k> {
    entries: std::slice::Iter<'a, Entry>,
    key: &'k str,
}

impl<'a> Iterator for GetAll<'a, '_> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let key = self.key.as_bytes();
        self.entries.find_map(|entry| match entry.value() {
            MetadataValue::Ascii(value) if entry.key == key => Some(value),
            _ => None,
        })
    }
}

/// The values of one `-bin` key: [`Metadata::get_all_bin`].
#[derive(Clone, Debug)]
pub struct GetAllBin<'a, 'k> {
    entries: std::slice::Iter<'a, Entry>,
    key: &'k str,
}

impl<'a> Iterator for GetAllBin<'a, '_> {
    type Item = &'a Bytes;

    fn next(&mut self) -> Option<&'a Bytes> {
        let key = self.key.as_bytes();
        self.entries.find_map(|entry| match entry.value() {
            MetadataValue::Binary(value) if entry.key == key => Some(value),
            _ => None,
        })
    }
}

/// An ASCII entry, checked.
fn ascii_entry(key: &str, value: &str) -> Result<Entry, MetadataError> {
    check_key(key)?;
    if key.as_bytes().ends_with(BIN_SUFFIX) {
        return Err(MetadataError::BinaryKey(key.to_owned()));
    }
    if !is_valid_value(value.as_bytes()) {
        return Err(MetadataError::InvalidValue {
            key: key.to_owned(),
        });
    }
    Ok(Entry {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    })
}

/// A binary entry, checked.
fn bin_entry(key: &str, value: Bytes) -> Result<Entry, MetadataError> {
    check_key(key)?;
    if !key.as_bytes().ends_with(BIN_SUFFIX) {
        return Err(MetadataError::NotBinaryKey(key.to_owned()));
    }
    Ok(Entry {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value,
    })
}

fn check_key(key: &str) -> Result<(), MetadataError> {
    if !is_valid_key(key.as_bytes()) {
        return Err(MetadataError::InvalidKey(key.to_owned()));
    }
    if is_reserved(key.as_bytes()) {
        return Err(MetadataError::ReservedKey(key.to_owned()));
    }
    Ok(())
}

/// A Header-Name: `1*( 0-9 / a-z / "_" / "-" / "." )`.
fn is_valid_key(key: &[u8]) -> bool {
    !key.is_empty()
        && key
            .iter()
            .all(|&b| matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'_' | b'-' | b'.'))
}

/// An ASCII-Value: space and printable ASCII (empty allowed).
fn is_valid_value(value: &[u8]) -> bool {
    value.iter().all(|&b| matches!(b, 0x20..=0x7e))
}

/// Whether a received field named `name` is metadata: a valid key (so no
/// pseudo-header), not reserved, except `user-agent`.
fn is_metadata_name(name: &[u8]) -> bool {
    is_valid_key(name) && (!is_reserved(name) || name == b"user-agent")
}

fn is_reserved(name: &[u8]) -> bool {
    RESERVED.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_in_place() {
        let mut md = Metadata::new();
        md.append("a", "1").unwrap();
        md.append("b", "2").unwrap();
        md.append("a", "3").unwrap();
        md.append("c", "4").unwrap();
        md.insert("a", "5").unwrap();
        let keys: Vec<_> = md.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(md.get_all("a").collect::<Vec<_>>(), ["5"]);
        md.insert("d", "6").unwrap();
        assert_eq!(md.len(), 4);
    }

    #[test]
    fn ascii_and_bin_views_are_disjoint() {
        let mut md = Metadata::new();
        md.insert("x-bin", "abc").unwrap_err();
        md.insert_bin("x-bin", Bytes::from_static(b"\x00")).unwrap();
        assert_eq!(md.get("x-bin"), None);
        assert_eq!(md.get_bin("x-bin").unwrap().as_ref(), b"\x00");
        md.insert("y", "1").unwrap();
        assert_eq!(md.get_bin("y"), None);
        assert!(md.contains_key("x-bin"));
        assert!(md.remove("x-bin"));
        assert!(!md.remove("x-bin"));
    }
}

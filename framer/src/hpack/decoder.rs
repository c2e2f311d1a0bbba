//! The HPACK decoder: `loona-hpack` plus the HTTP/2 rules and limits it
//! leaves to its caller (listed in the `hpack` module doc).
//!
//! `loona-hpack` does the decoding proper and keeps the dynamic table. Around
//! it this file owns:
//!
//! - the leading dynamic table size updates (RFC 7541 §4.2, §6.3): read
//!   before `loona-hpack` sees the block, checked against our setting
//!   (which is also given to `loona-hpack`, whose `set_max_table_size`
//!   asserts, so only sizes within it are ever passed), at most two, and
//!   required after our setting went below the table's size;
//! - Huffman-coded strings rewritten raw before `loona-hpack` sees the
//!   block (`wire::unhuffman`: `loona-hpack`'s Huffman decoder is slow);
//! - a walk over the field representations in step with `loona-hpack`'s
//!   callback, which finds never-indexed literals (§6.2.3) and size updates
//!   after the first field;
//! - the header list size limit (RFC 9113 §6.5.2), counting to the end of
//!   the block but keeping no field past the limit.
//!
//! Invariant: `table_size` is the table size `loona-hpack` is using and is
//! never above `max_table_size`, except between a lowered setting and the
//! next block, which must then begin with a size update
//! (`required_update` set).

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};
use loona_hpack::decoder::{DecoderError, IntegerDecodingError, StringDecodingError};
use loona_hpack::huffman::HuffmanDecoderError;

use super::wire::{self, read_integer, read_representation, starts_size_update, Representation};
use super::{huffman, HeaderField, HeaderList, HpackError, DEFAULT_TABLE_SIZE};

/// The HPACK decoder of one connection.
///
/// Decode header blocks in the order they arrive: each may change the
/// dynamic table the next one refers to. After a
/// [`HpackError::Compression`], the decoder's state is lost and the
/// connection must end.
pub struct Decoder {
    inner: loona_hpack::Decoder<'static>,
    /// Our SETTINGS_HEADER_TABLE_SIZE in force: no size update may exceed it.
    max_table_size: usize,
    /// The table size the peer's encoder last set (or the initial size).
    table_size: usize,
    /// Set when our setting went below `table_size`: the next block must
    /// start with a size update no larger than this (the smallest setting
    /// since, RFC 7541 §4.2).
    required_update: Option<usize>,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("max_table_size", &self.max_table_size)
            .field("table_size", &self.table_size)
            .field("required_update", &self.required_update)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder whose dynamic table may grow to `max_table_size` octets:
    /// our SETTINGS_HEADER_TABLE_SIZE in force now. At the start of a
    /// connection that is [`DEFAULT_TABLE_SIZE`] until the peer acknowledges
    /// ours; then call [`Decoder::set_max_table_size`].
    ///
    /// The table starts at `min(max_table_size, 4096)`, the size the peer's
    /// encoder starts with (RFC 7541 §4.2); the peer grows it with a size
    /// update.
    #[must_use]
    pub fn new(max_table_size: usize) -> Self {
        let table_size = max_table_size.min(DEFAULT_TABLE_SIZE);
        let mut inner = loona_hpack::Decoder::new();
        inner.set_max_allowed_table_size(max_table_size);
        // Within the allowed size just set: loona's assert holds.
        inner.set_max_table_size(table_size);
        Decoder {
            inner,
            max_table_size,
            table_size,
            required_update: None,
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE changed and the peer acknowledged it.
    ///
    /// If it went below the size the peer's encoder is using, the peer's
    /// next block must begin with a size update that brings the table
    /// within it (RFC 7541 §4.2), else that block is a compression error.
    pub fn set_max_table_size(&mut self, max: usize) {
        self.max_table_size = max;
        self.inner.set_max_allowed_table_size(max);
        if max < self.table_size {
            let smallest = self
                .required_update
                .map_or(max, |required| required.min(max));
            self.required_update = Some(smallest);
        }
    }

    /// Decodes one complete header block (HEADERS and CONTINUATION payloads
    /// joined), refusing a header list larger than `max_list_size`
    /// (RFC 9113 §6.5.2 sizes) with [`HpackError::ListTooLarge`], after
    /// decoding the block to its end.
    pub fn decode(&mut self, block: &[u8], max_list_size: usize) -> Result<HeaderList, HpackError> {
        let fields_start = self.read_size_updates(block)?;
        let raw = wire::unhuffman(block, fields_start).map_err(HpackError::Compression)?;
        let block = raw.as_deref().unwrap_or(block);
        let mut list = ListBuilder::new(block, fields_start, max_list_size);
        let decoded = self
            .inner
            .decode_with_cb(block, |name, value| list.push(name, value));
        decoded.map_err(|err| HpackError::Compression(describe(err)))?;
        list.finish()
    }

    /// Checks the size updates at the start of `block` (loona applies them)
    /// and returns where the field representations start.
    fn read_size_updates(&mut self, block: &[u8]) -> Result<usize, HpackError> {
        let mut at = 0;
        let mut updates = 0;
        let mut smallest = usize::MAX;
        let mut last = None;
        while let Some(rest) = block.get(at..).filter(|rest| starts_size_update(rest)) {
            let (size, len) =
                read_integer(rest, 5).ok_or(HpackError::Compression(INVALID_INTEGER))?;
            if size > self.max_table_size {
                return Err(HpackError::Compression(
                    "dynamic table size update above SETTINGS_HEADER_TABLE_SIZE",
                ));
            }
            updates += 1;
            if updates > 2 {
                return Err(HpackError::Compression(
                    "more than two dynamic table size updates",
                ));
            }
            smallest = smallest.min(size);
            last = Some(size);
            at += len;
        }
        // An empty block refers to no entry: the update may come with the next.
        if let Some(required) = self.required_update.filter(|_| !block.is_empty()) {
            if smallest > required {
                return Err(HpackError::Compression(
                    "no dynamic table size update after SETTINGS_HEADER_TABLE_SIZE was lowered",
                ));
            }
            self.required_update = None;
        }
        if let Some(size) = last {
            self.table_size = size;
        }
        Ok(at)
    }
}

const INVALID_INTEGER: &str = "invalid integer encoding";

/// `loona-hpack`'s error, as a fixed message.
fn describe(err: DecoderError) -> &'static str {
    match err {
        DecoderError::HeaderIndexOutOfBounds => "header index out of range",
        DecoderError::IntegerDecodingError(IntegerDecodingError::NotEnoughOctets) => {
            "truncated integer"
        }
        DecoderError::IntegerDecodingError(_) => INVALID_INTEGER,
        DecoderError::StringDecodingError(StringDecodingError::NotEnoughOctets) => {
            "truncated string literal"
        }
        DecoderError::StringDecodingError(StringDecodingError::HuffmanDecoderError(err)) => {
            match err {
                HuffmanDecoderError::EOSInString => huffman::EOS_IN_STRING,
                HuffmanDecoderError::PaddingTooLarge | HuffmanDecoderError::InvalidPadding => {
                    huffman::INVALID_PADDING
                }
                _ => "invalid Huffman-coded string",
            }
        }
        DecoderError::StringDecodingError(_) => "invalid string literal",
        DecoderError::InvalidMaxDynamicSize => {
            "dynamic table size update above SETTINGS_HEADER_TABLE_SIZE"
        }
        DecoderError::SizeUpdateAtEnd => "dynamic table size update at the end of a header block",
        _ => "invalid header block",
    }
}

/// Collects the fields `loona-hpack` emits, walking the representations
/// alongside to learn which are never-indexed, and stops keeping them once
/// the list is too large.
struct ListBuilder<'b> {
    /// The rest of the block from the next field representation on.
    rest: &'b [u8],
    /// Names and values are copied here, then split off as `Bytes` (one
    /// allocation for the whole list, not two per field).
    buf: BytesMut,
    fields: HeaderList,
    size: usize,
    limit: usize,
    /// A fault found by the walk, reported once loona is done.
    fault: Option<&'static str>,
}

impl<'b> ListBuilder<'b> {
    fn new(block: &'b [u8], fields_start: usize, limit: usize) -> Self {
        let rest = block.get(fields_start..).unwrap_or_default();
        // Indexed fields decode to much more than their octets: a warm gRPC
        // request is 8 octets for some 200 of names and values.
        let capacity = block.len().saturating_mul(8).clamp(256, 4096).min(limit);
        ListBuilder {
            rest,
            buf: BytesMut::with_capacity(capacity),
            // Every field takes at least one octet.
            fields: Vec::with_capacity(block.len().min(32)),
            size: 0,
            limit,
            fault: None,
        }
    }

    fn push(&mut self, name: Cow<'_, [u8]>, value: Cow<'_, [u8]>) {
        let sensitive = self.next_representation() == Some(Representation::NeverIndexed);
        let field_size = name.len() + value.len() + 32;
        let within_limit = self.size <= self.limit;
        self.size = self.size.saturating_add(field_size);
        if self.size > self.limit {
            if within_limit {
                // Passed the limit: free what was kept; keep nothing more.
                self.fields = Vec::new();
                self.buf = BytesMut::new();
            }
            return;
        }
        self.buf.put_slice(&name);
        let name = self.buf.split().freeze();
        self.buf.put_slice(&value);
        let value = self.buf.split().freeze();
        self.fields.push(HeaderField {
            name,
            value,
            sensitive,
        });
    }

    /// Steps over the representation of the field loona just emitted (and
    /// any size update before it, which is misplaced: a field came first).
    fn next_representation(&mut self) -> Option<Representation> {
        loop {
            let Some((representation, len)) = read_representation(self.rest) else {
                // loona accepted what this walk could not parse.
                self.fault.get_or_insert("invalid header block");
                return None;
            };
            self.rest = self.rest.get(len..).unwrap_or_default();
            if representation != Representation::SizeUpdate {
                return Some(representation);
            }
            self.fault
                .get_or_insert("dynamic table size update after a header field");
        }
    }

    fn finish(self) -> Result<HeaderList, HpackError> {
        if let Some(fault) = self.fault {
            return Err(HpackError::Compression(fault));
        }
        if !self.rest.is_empty() {
            // loona reports a trailing size update itself; anything else left
            // over means the walk lost step.
            return Err(HpackError::Compression("invalid header block"));
        }
        if self.size > self.limit {
            return Err(HpackError::ListTooLarge {
                size: self.size,
                limit: self.limit,
            });
        }
        Ok(self.fields)
    }
}

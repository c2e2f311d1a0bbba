//! The HPACK encoder: our own, tuned for gRPC (the indexing policy is in the
//! `hpack` module doc).
//!
//! Owns the encoder's dynamic table (RFC 7541 §2.3.2, §4: FIFO, entry size
//! name + value + 32, indices after the static table's per §2.3.3), the size
//! updates owed to the peer (§4.2, §6.3), and the wire forms: integers
//! (§5.1), string literals (§5.2), field representations (§6).
//!
//! Invariant: the table's size never exceeds its maximum, and its maximum
//! is the last size update sent (or 4096 before any), so the peer's decoder
//! holds exactly the same entries after each block.

use std::collections::VecDeque;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::static_table::{self, STATIC_TABLE_LEN};
use super::wire::put_integer;
use super::{huffman, HeaderField, DEFAULT_TABLE_SIZE};

/// The most dynamic table the encoder uses, whatever the peer allows: the
/// repeated headers of a gRPC connection fit in far less (grpc-go's encoder
/// stops at 4096 too), and a small table keeps lookups short.
pub const ENCODER_TABLE_CAP: usize = DEFAULT_TABLE_SIZE;

/// Names never indexed from the start (RFC 7541 §7.1.3: credentials).
const NEVER_INDEXED_PRESET: [&[u8]; 3] = [b"authorization", b"proxy-authorization", b"cookie"];

/// First octet and prefix length of each representation (§6).
const INDEXED: (u8, u8) = (0x80, 7);
const INCREMENTAL: (u8, u8) = (0x40, 6);
const WITHOUT_INDEXING: (u8, u8) = (0x00, 4);
const NEVER_INDEXED: (u8, u8) = (0x10, 4);
const SIZE_UPDATE: (u8, u8) = (0x20, 5);

/// The HPACK encoder of one connection.
///
/// Encode blocks in the order they go on the wire: each block may change
/// the dynamic table the next one refers to.
pub struct Encoder {
    table: DynamicTable,
    /// Size updates owed to the peer, sent at the start of the next block.
    pending: Option<PendingUpdate>,
    /// Names sent as never-indexed literals whatever the field says.
    never_indexed: Vec<&'static [u8]>,
}

/// The sizes to signal at the start of the next block (§4.2).
#[derive(Clone, Copy, Debug)]
struct PendingUpdate {
    /// The smallest size since the last block.
    smallest: usize,
    /// The size now.
    last: usize,
}

impl Default for Encoder {
    /// An encoder with the RFC's initial table size, 4096 octets.
    fn default() -> Self {
        Encoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            pending: None,
            never_indexed: NEVER_INDEXED_PRESET.to_vec(),
        }
    }
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("table_entries", &self.table.entries.len())
            .field("table_size", &self.table.size)
            .field("table_max_size", &self.table.max_size)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder with the RFC's initial table size, 4096 octets.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed (or was first
    /// received). The encoder uses `min(peer_setting, ENCODER_TABLE_CAP)`;
    /// when that changes, the next non-empty block starts with the size
    /// update(s), and entries are evicted then.
    pub fn set_max_table_size(&mut self, peer_setting: usize) {
        let size = peer_setting.min(ENCODER_TABLE_CAP);
        let current = self.table.max_size;
        self.pending = match self.pending {
            None if size == current => None,
            None => Some(PendingUpdate {
                smallest: size,
                last: size,
            }),
            Some(p) => {
                let smallest = p.smallest.min(size);
                // Back where we were without having gone lower: nothing to say.
                if smallest >= current && size == current {
                    None
                } else {
                    Some(PendingUpdate {
                        smallest,
                        last: size,
                    })
                }
            }
        };
    }

    /// Adds `name` to the names always sent as never-indexed literals
    /// (`authorization`, `proxy-authorization` and `cookie` are there from
    /// the start). Names compare ASCII case-insensitively.
    pub fn never_index(&mut self, name: &'static [u8]) {
        if !self.is_never_indexed(name) {
            self.never_indexed.push(name);
        }
    }

    /// The octets the dynamic table holds now (entries' name + value + 32).
    #[must_use]
    pub fn dynamic_table_size(&self) -> usize {
        self.table.size
    }

    /// Encodes one header block into `dst`, appending.
    ///
    /// An empty list writes nothing, not even an owed size update (a block
    /// holding only a size update is invalid to some decoders); the update
    /// goes at the start of the next non-empty block.
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = &'a HeaderField>,
        dst: &mut BytesMut,
    ) {
        let mut fields = fields.into_iter().peekable();
        if fields.peek().is_none() {
            return;
        }
        if let Some(update) = self.pending.take() {
            if update.smallest < update.last {
                put_integer(dst, SIZE_UPDATE, update.smallest);
                self.table.set_max_size(update.smallest);
            }
            put_integer(dst, SIZE_UPDATE, update.last);
            self.table.set_max_size(update.last);
        }
        for field in fields {
            self.encode_field(field, dst);
        }
    }

    fn encode_field(&mut self, field: &HeaderField, dst: &mut BytesMut) {
        let (name, value) = (field.name.as_ref(), field.value.as_ref());
        let lookup = self.find(name, value);
        if field.sensitive || self.is_never_indexed(name) {
            let name_index = match lookup {
                Lookup::Field(index) | Lookup::Name(index) => Some(index),
                Lookup::Miss => None,
            };
            put_literal(dst, NEVER_INDEXED, name_index, name, value);
            return;
        }
        let name_index = match lookup {
            Lookup::Field(index) => {
                put_integer(dst, INDEXED, index);
                return;
            }
            Lookup::Name(index) => Some(index),
            Lookup::Miss => None,
        };
        if self.should_index(field) {
            put_literal(dst, INCREMENTAL, name_index, name, value);
            self.table.insert(field.name.clone(), field.value.clone());
        } else {
            put_literal(dst, WITHOUT_INDEXING, name_index, name, value);
        }
    }

    /// The best reference for `name: value`: the whole field if a table has
    /// it, else the lowest index with its name.
    fn find(&self, name: &[u8], value: &[u8]) -> Lookup {
        let mut by_name = None;
        if let Some((index, exact)) = static_table::find(name, value) {
            if exact {
                return Lookup::Field(index);
            }
            by_name = Some(index);
        }
        // Newest first: the lowest index of a duplicate.
        for (index, entry) in (STATIC_TABLE_LEN + 1..).zip(&self.table.entries) {
            if entry.name.as_ref() == name {
                if entry.value.as_ref() == value {
                    return Lookup::Field(index);
                }
                by_name = by_name.or(Some(index));
            }
        }
        match by_name {
            Some(index) => Lookup::Name(index),
            None => Lookup::Miss,
        }
    }

    fn is_never_indexed(&self, name: &[u8]) -> bool {
        self.never_indexed
            .iter()
            .any(|never| never.eq_ignore_ascii_case(name))
    }

    /// Whether to add the field to the dynamic table (policy step 3).
    fn should_index(&self, field: &HeaderField) -> bool {
        field.list_size() <= self.table.max_size / 2 && repeats_across_calls(&field.name)
    }
}

/// Whether values of the header `name` repeat from call to call on a gRPC
/// connection, so indexing them pays.
fn repeats_across_calls(name: &[u8]) -> bool {
    if let Some(grpc) = name.strip_prefix(b"grpc-") {
        return !matches!(
            grpc,
            b"timeout"
                | b"message"
                | b"status-details-bin"
                | b"previous-rpc-attempts"
                | b"retry-pushback-ms"
                | b"trace-bin"
                | b"tags-bin"
        );
    }
    match name {
        b"te" => true,
        b"content-length"
        | b"date"
        | b"age"
        | b"etag"
        | b"expires"
        | b"last-modified"
        | b"location"
        | b"set-cookie"
        | b"if-match"
        | b"if-modified-since"
        | b"if-none-match"
        | b"if-range"
        | b"if-unmodified-since"
        | b"range"
        | b"content-range" => false,
        _ => static_table::has_name(name),
    }
}

/// What the tables hold for one field.
enum Lookup {
    /// Name and value at this index.
    Field(usize),
    /// The name (only) at this index.
    Name(usize),
    /// Neither.
    Miss,
}

/// One dynamic table entry.
struct Entry {
    name: Bytes,
    value: Bytes,
}

impl Entry {
    /// §4.1: name + value + 32.
    fn size(&self) -> usize {
        self.name.len() + self.value.len() + 32
    }
}

/// The encoder's dynamic table: newest entry first (index 62).
struct DynamicTable {
    entries: VecDeque<Entry>,
    /// Sum of the entries' sizes; never above `max_size`.
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    fn new(max_size: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// A size update: evicts oldest entries until the table fits (§4.3).
    fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Adds an entry, evicting oldest entries to make room; an entry larger
    /// than the table empties it and is not added (§4.4).
    fn insert(&mut self, name: Bytes, value: Bytes) {
        let entry = Entry { name, value };
        let size = entry.size();
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front(entry);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(evicted) => self.size = self.size.saturating_sub(evicted.size()),
                None => self.size = 0,
            }
        }
    }
}

/// A string literal (§5.2), Huffman-coded when that is shorter.
fn put_string(dst: &mut BytesMut, src: &[u8]) {
    let huffman_len = huffman::encoded_len(src);
    if huffman_len < src.len() {
        put_integer(dst, (0x80, 7), huffman_len);
        dst.reserve(huffman_len);
        huffman::encode(src, dst);
    } else {
        put_integer(dst, (0x00, 7), src.len());
        dst.put_slice(src);
    }
}

/// A literal field (§6.2), the name by index when there is one.
fn put_literal(
    dst: &mut BytesMut,
    representation: (u8, u8),
    name_index: Option<usize>,
    name: &[u8],
    value: &[u8],
) {
    match name_index {
        Some(index) => put_integer(dst, representation, index),
        None => {
            put_integer(dst, representation, 0);
            put_string(dst, name);
        }
    }
    put_string(dst, value);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn eviction_keeps_size_within_max() {
        let mut table = DynamicTable::new(100);
        table.insert(Bytes::from_static(b"a"), Bytes::from_static(b"1")); // 34
        table.insert(Bytes::from_static(b"b"), Bytes::from_static(b"2")); // 68
        table.insert(Bytes::from_static(b"c"), Bytes::from_static(b"3")); // evicts a
        assert_eq!(table.size, 68);
        assert_eq!(table.entries.len(), 2);
        assert_eq!(table.entries[0].name.as_ref(), b"c");
        table.insert(Bytes::from_static(b"big"), Bytes::from(vec![b'x'; 80]));
        assert_eq!((table.size, table.entries.len()), (0, 0));
        table.insert(Bytes::from_static(b"a"), Bytes::from_static(b"1"));
        table.set_max_size(33);
        assert_eq!((table.size, table.entries.len()), (0, 0));
    }

    #[test]
    fn size_updates_signal_the_smallest_then_the_last() {
        let field = HeaderField::new(":path", "/a");
        let mut encoder = Encoder::new();
        encoder.set_max_table_size(0);
        encoder.set_max_table_size(8192);
        let mut dst = BytesMut::new();
        encoder.encode([&field], &mut dst);
        // 0, then 4096 (capped), then the field.
        assert_eq!(&dst[..4], [0x20, 0x3f, 0xe1, 0x1f]);

        // Same as now: nothing owed.
        encoder.set_max_table_size(4096);
        dst.clear();
        encoder.encode([&field], &mut dst);
        assert_eq!(&dst[..], [0x80 | 62]);

        // Empty blocks keep the update for later.
        encoder.set_max_table_size(100);
        dst.clear();
        encoder.encode([], &mut dst);
        assert!(dst.is_empty());
        encoder.encode([&field], &mut dst);
        assert_eq!(dst[..2], [0x3f, 100 - 31]);
    }

    #[test]
    fn names_whose_values_repeat() {
        for name in [
            ":path",
            ":authority",
            "content-type",
            "user-agent",
            "te",
            "grpc-encoding",
            "grpc-status",
        ] {
            assert!(repeats_across_calls(name.as_bytes()), "{name}");
        }
        for name in [
            "grpc-timeout",
            "grpc-message",
            "content-length",
            "x-request-id",
            "date",
        ] {
            assert!(!repeats_across_calls(name.as_bytes()), "{name}");
        }
    }
}

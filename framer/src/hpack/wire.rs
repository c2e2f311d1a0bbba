//! HPACK's wire forms below the header list: integers (RFC 7541 §5.1),
//! string literals (§5.2), and the kinds of field representation (§6),
//! told apart and stepped over without decoding them.
//!
//! Also [`unhuffman`], which rewrites a block's Huffman-coded strings as raw
//! ones before `loona-hpack` sees it: `loona-hpack` builds a hash-map code
//! table for every Huffman string it decodes (some 9 µs each, so 18 µs for
//! the `grpc-timeout` literal of every gRPC request), ours decodes from two
//! small static tables. `loona-hpack` still does all the rest.
//!
//! Every function here returns `None` on input it cannot read whole; none
//! panics or reads past its input.

use bytes::BufMut;

use super::huffman;

/// The kinds of representation (RFC 7541 §6), told by the first octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Representation {
    /// `1xxxxxxx`, §6.1.
    Indexed,
    /// `01xxxxxx`, §6.2.1.
    Incremental,
    /// `001xxxxx`, §6.3.
    SizeUpdate,
    /// `0001xxxx`, §6.2.3.
    NeverIndexed,
    /// `0000xxxx`, §6.2.2.
    WithoutIndexing,
}

impl Representation {
    /// The kind of the representation starting with `first`, and the length
    /// of its integer prefix.
    fn of(first: u8) -> (Representation, u8) {
        match first {
            0x80..=0xff => (Representation::Indexed, 7),
            0x40..=0x7f => (Representation::Incremental, 6),
            0x20..=0x3f => (Representation::SizeUpdate, 5),
            0x10..=0x1f => (Representation::NeverIndexed, 4),
            0x00..=0x0f => (Representation::WithoutIndexing, 4),
        }
    }
}

/// Whether `rest` starts with a dynamic table size update.
pub(crate) fn starts_size_update(rest: &[u8]) -> bool {
    rest.first()
        .is_some_and(|&first| Representation::of(first).0 == Representation::SizeUpdate)
}

/// An integer with a `prefix_bits` prefix (§5.1): its value and length.
/// Like `loona-hpack`, at most 5 octets (values up to 2^28 and a bit).
pub(crate) fn read_integer(src: &[u8], prefix_bits: u8) -> Option<(usize, usize)> {
    let (&first, rest) = src.split_first()?;
    let max_prefix = (1usize << prefix_bits) - 1;
    let mut value = usize::from(first) & max_prefix;
    if value < max_prefix {
        return Some((value, 1));
    }
    for (i, &octet) in rest.iter().take(4).enumerate() {
        value += usize::from(octet & 0x7f) << (7 * i);
        if octet & 0x80 == 0 {
            return Some((value, i + 2));
        }
    }
    None
}

/// Appends an integer with a `prefix_bits` prefix (§5.1) after the
/// representation's `flags`.
pub(crate) fn put_integer(dst: &mut impl BufMut, (flags, prefix_bits): (u8, u8), value: usize) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

/// The kind and length of the representation at the start of `src`.
pub(crate) fn read_representation(src: &[u8]) -> Option<(Representation, usize)> {
    let (representation, prefix_bits) = Representation::of(*src.first()?);
    let (index, mut len) = read_integer(src, prefix_bits)?;
    if matches!(
        representation,
        Representation::Indexed | Representation::SizeUpdate
    ) {
        return Some((representation, len));
    }
    if index == 0 {
        len += read_string(src.get(len..)?)?.len;
    }
    len += read_string(src.get(len..)?)?.len;
    Some((representation, len))
}

/// A string literal (§5.2) as found at the start of some input.
struct StringLiteral<'a> {
    huffman: bool,
    /// The string's octets, as on the wire.
    octets: &'a [u8],
    /// The length of the whole literal, length prefix included.
    len: usize,
}

fn read_string(src: &[u8]) -> Option<StringLiteral<'_>> {
    let (octets, prefix_len) = read_integer(src, 7)?;
    let len = prefix_len.checked_add(octets)?;
    Some(StringLiteral {
        huffman: src.first()? & 0x80 != 0,
        octets: src.get(prefix_len..len)?,
        len,
    })
}

/// `block` with every Huffman-coded string literal from `fields_start` on
/// rewritten raw, or `None` if it has none (use it as it is).
///
/// Representations are copied as they are otherwise, so the block means the
/// same. Where the walk cannot read a representation it stops and copies the
/// rest unread, for `loona-hpack` to report. The result is at most 8/5 of
/// `block` plus a few octets per string (5-bit shortest code).
pub(crate) fn unhuffman(
    block: &[u8],
    fields_start: usize,
) -> Result<Option<Vec<u8>>, &'static str> {
    let mut raw: Option<Vec<u8>> = None;
    // `block[..copied]` is in `raw` already (when there is one).
    let mut copied = 0;
    let mut decoded = Vec::new();
    let mut at = fields_start;
    'walk: while let Some(rest) = block.get(at..).filter(|rest| !rest.is_empty()) {
        let (representation, prefix_bits) =
            Representation::of(rest.first().copied().unwrap_or_default());
        let Some((index, mut len)) = read_integer(rest, prefix_bits) else {
            break;
        };
        if matches!(
            representation,
            Representation::Indexed | Representation::SizeUpdate
        ) {
            at += len;
            continue;
        }
        // A literal: the name, if not by index, then the value.
        for _ in 0..if index == 0 { 2 } else { 1 } {
            let Some(string) = rest.get(len..).and_then(read_string) else {
                break 'walk;
            };
            if string.huffman {
                let raw =
                    raw.get_or_insert_with(|| Vec::with_capacity(block.len().saturating_mul(2)));
                raw.extend_from_slice(block.get(copied..at + len).unwrap_or_default());
                decoded.clear();
                huffman::decode(string.octets, &mut decoded)?;
                put_integer(raw, (0x00, 7), decoded.len());
                raw.extend_from_slice(&decoded);
                copied = at + len + string.len;
            }
            len += string.len;
        }
        at += len;
    }
    if let Some(raw) = raw.as_mut() {
        raw.extend_from_slice(block.get(copied..).unwrap_or_default());
    }
    Ok(raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn encode_int(prefix_bits: u8, value: usize) -> Vec<u8> {
        let mut dst = Vec::new();
        put_integer(&mut dst, (0, prefix_bits), value);
        dst
    }

    /// RFC 7541 C.1, both ways.
    #[test]
    fn rfc7541_c1_integers() {
        for (prefix_bits, value, wire) in [
            (5, 10, &[0x0a][..]),
            (5, 1337, &[0x1f, 0x9a, 0x0a]),
            (8, 42, &[0x2a]),
            (5, 31, &[0x1f, 0x00]),
        ] {
            assert_eq!(encode_int(prefix_bits, value), wire);
            assert_eq!(read_integer(wire, prefix_bits), Some((value, wire.len())));
        }
        assert_eq!(encode_int(7, 126), [0x7e]);
        assert_eq!(encode_int(7, 127), [0x7f, 0x00]);
    }

    #[test]
    fn integers_like_loona() {
        assert_eq!(read_integer(&[0x7f, 0x00], 7), Some((127, 2)));
        assert_eq!(
            read_integer(&[0x1f, 0xff, 0xff, 0xff, 0x7f], 5),
            Some((31 + (1 << 28) - 1, 5))
        );
        assert_eq!(read_integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x00], 5), None);
        assert_eq!(read_integer(&[0x1f], 5), None);
        assert_eq!(read_integer(&[], 5), None);
    }

    #[test]
    fn representations() {
        use Representation::*;
        assert_eq!(read_representation(&[0x82]), Some((Indexed, 1)));
        assert_eq!(
            read_representation(&[0x3f, 0xe1, 0x1f]),
            Some((SizeUpdate, 3))
        );
        // Literal, new name "a", value "b".
        assert_eq!(
            read_representation(&[0x10, 1, b'a', 1, b'b', 0x82]),
            Some((NeverIndexed, 5))
        );
        assert_eq!(
            read_representation(&[0x04, 1, b'b']),
            Some((WithoutIndexing, 3))
        );
        assert_eq!(read_representation(&[0x44, 2, b'b']), None);
    }

    #[test]
    fn unhuffman_rewrites_only_huffman_strings() {
        // RFC 7541 C.4.3 and C.3.3: the same list, with and without Huffman.
        let huffman = [
            0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f,
            0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
        ];
        let raw = b"\x82\x87\x85\xbf\x40\x0acustom-key\x0ccustom-value";
        assert_eq!(unhuffman(&huffman, 0).unwrap().unwrap(), raw);
        assert_eq!(unhuffman(raw, 0), Ok(None));
        // Size update and indexed name kept as they are; the cut tail too.
        let block = [0x20, 0x44, 0x83, 0x9b, 0xd9, 0xab, 0x0f];
        assert_eq!(
            unhuffman(&block, 1).unwrap().unwrap(),
            b"\x20\x44\x04gzip\x0f"
        );
        assert_eq!(
            unhuffman(&[0x04, 0x81, 0x00], 0),
            Err(huffman::INVALID_PADDING)
        );
    }
}

//! The decoder's limits and its answers to bad input: every malformed block
//! is a `Compression` error (never a panic), table size updates obey
//! RFC 7541 §4.2, and an oversized header list is refused without losing
//! the dynamic table or holding more than the limit in memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::BytesMut;
use framer::hpack::{Decoder, Encoder, HeaderField, HpackError};
use proptest::prelude::*;

const NO_LIMIT: usize = usize::MAX;

fn is_compression(result: Result<Vec<HeaderField>, HpackError>) -> bool {
    matches!(result, Err(HpackError::Compression(_)))
}

/// `x-big: <n octets>`, literal with incremental indexing, new name.
fn indexed_literal(value_len: usize) -> Vec<u8> {
    assert!(value_len >= 127);
    let mut block = vec![0x40, 5];
    block.extend_from_slice(b"x-big");
    // Raw string, length on a 7-bit prefix.
    let mut rest = value_len - 127;
    block.push(0x7f);
    while rest >= 0x80 {
        block.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    block.push(rest as u8);
    block.extend(vec![b'v'; value_len]);
    block
}

#[test]
fn one_octet_unfinished_size_update_is_an_error() {
    // `hpack` 0.3.0 panicked on this block.
    assert!(is_compression(Decoder::new(4096).decode(&[0x3f], NO_LIMIT)));
}

#[test]
fn huge_size_updates_are_errors() {
    for block in [
        &[0x3f, 0xe1, 0xff, 0xff, 0x07, 0x82][..], // 2^24 and a bit
        &[0x3f, 0xe1, 0xff, 0xff, 0x7f, 0x82][..], // 2^28 and a bit
        &[0x3f, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x82][..], // too many octets
    ] {
        assert!(
            is_compression(Decoder::new(4096).decode(block, NO_LIMIT)),
            "{block:02x?}"
        );
    }
}

#[test]
fn sec4_2_size_update_up_to_the_setting_only() {
    // 4096 = 31 + 4065: 0x3f 0xe1 0x1f.
    let at_max = [0x3f, 0xe1, 0x1f, 0x82];
    assert_eq!(
        Decoder::new(4096).decode(&at_max, NO_LIMIT).unwrap(),
        vec![HeaderField::new(":method", "GET")]
    );
    let above = [0x3f, 0xe2, 0x1f, 0x82];
    assert!(is_compression(Decoder::new(4096).decode(&above, NO_LIMIT)));
    assert!(is_compression(
        Decoder::new(0).decode(&[0x21, 0x82], NO_LIMIT)
    ));
    // Above 4096 once our setting allows it.
    let mut decoder = Decoder::new(4096);
    decoder.set_max_table_size(8192);
    assert!(decoder.decode(&above, NO_LIMIT).is_ok());
}

#[test]
fn sec4_2_size_update_only_at_the_start() {
    assert!(is_compression(
        Decoder::new(4096).decode(&[0x82, 0x20, 0x82], NO_LIMIT)
    ));
    assert!(is_compression(
        Decoder::new(4096).decode(&[0x82, 0x20], NO_LIMIT)
    ));
    assert!(is_compression(Decoder::new(4096).decode(&[0x20], NO_LIMIT)));
    // Two at the start is the most §4.2 allows.
    assert!(Decoder::new(4096)
        .decode(&[0x20, 0x3f, 0xe1, 0x1f, 0x82], NO_LIMIT)
        .is_ok());
    assert!(is_compression(
        Decoder::new(4096).decode(&[0x20, 0x20, 0x20, 0x82], NO_LIMIT)
    ));
}

#[test]
fn sec4_2_lowered_setting_requires_a_size_update() {
    let entry = [0x41, 1, b'a']; // :authority: a, indexed
    let mut decoder = Decoder::new(4096);
    decoder.decode(&entry, NO_LIMIT).unwrap();
    decoder.set_max_table_size(0);
    assert!(is_compression(decoder.decode(&[0x82], NO_LIMIT)));

    let mut decoder = Decoder::new(4096);
    decoder.decode(&entry, NO_LIMIT).unwrap();
    decoder.set_max_table_size(0);
    // An empty block refers to nothing: the update may wait.
    assert_eq!(decoder.decode(&[], NO_LIMIT).unwrap(), vec![]);
    assert_eq!(decoder.decode(&[0x20, 0x82], NO_LIMIT).unwrap().len(), 1);
    assert!(
        is_compression(decoder.decode(&[0xbe], NO_LIMIT)),
        "the entry was evicted"
    );

    // Down then up again: the smallest must be signalled.
    let mut decoder = Decoder::new(4096);
    decoder.set_max_table_size(100);
    decoder.set_max_table_size(4096);
    assert!(is_compression(
        decoder.decode(&[0x3f, 0xe1, 0x1f, 0x82], NO_LIMIT)
    ));
    let mut decoder = Decoder::new(4096);
    decoder.set_max_table_size(100);
    decoder.set_max_table_size(4096);
    assert!(decoder
        .decode(&[0x3f, 0x45, 0x3f, 0xe1, 0x1f, 0x82], NO_LIMIT)
        .is_ok());

    // Raising the setting asks for nothing.
    let mut decoder = Decoder::new(4096);
    decoder.set_max_table_size(65536);
    assert!(decoder.decode(&[0x82], NO_LIMIT).is_ok());
}

#[test]
fn index_out_of_range_is_an_error() {
    assert!(
        is_compression(Decoder::new(4096).decode(&[0x80], NO_LIMIT)),
        "index 0"
    );
    assert!(
        is_compression(Decoder::new(4096).decode(&[0xbe], NO_LIMIT)),
        "62, table empty"
    );
    assert!(is_compression(
        Decoder::new(4096).decode(&[0xff, 0xff, 0xff, 0xff, 0x0f], NO_LIMIT)
    ));
    // Literal whose name index is out of range.
    assert!(is_compression(
        Decoder::new(4096).decode(&[0x7f, 0x00, 0x01, b'v'], NO_LIMIT)
    ));
    assert!(is_compression(
        Decoder::new(4096).decode(&[0x0f, 0x30, 0x01, b'v'], NO_LIMIT)
    ));
}

#[test]
fn truncated_blocks_are_errors() {
    let mut literals = Vec::new();
    literals.push(vec![
        0x40, 0x0a, b'c', b'u', b's', b't', b'o', b'm', b'-', b'k', b'e', b'y', 0x01, b'v',
    ]);
    literals.push(vec![0x10, 0x03, b'k', b'e', b'y', 0x02, b'v', b'w']);
    literals.push(vec![0x44, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]); // :path, Huffman "no-cache"
    literals.push(indexed_literal(300));
    for block in literals {
        assert!(Decoder::new(4096).decode(&block, NO_LIMIT).is_ok());
        for cut in 1..block.len() {
            assert!(
                is_compression(Decoder::new(4096).decode(&block[..cut], NO_LIMIT)),
                "{cut}"
            );
        }
    }
}

#[test]
fn bad_huffman_is_an_error() {
    // Padding of zeros instead of EOS's ones.
    assert!(is_compression(
        Decoder::new(4096).decode(&[0x04, 0x81, 0x00], NO_LIMIT)
    ));
    // A whole octet of padding (more than 7 bits).
    assert!(is_compression(
        Decoder::new(4096).decode(&[0x04, 0x82, 0x1f, 0xff], NO_LIMIT)
    ));
    // EOS itself (30 ones) in the string.
    assert!(is_compression(
        Decoder::new(4096).decode(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff], NO_LIMIT)
    ));
}

#[test]
fn sec6_2_3_never_indexed_is_reported_sensitive() {
    // Never-indexed with a static name, between two other kinds.
    let block = [0x82, 0x1f, 0x08, 0x01, b't', 0x04, 0x01, b'/'];
    let list = Decoder::new(4096).decode(&block, NO_LIMIT).unwrap();
    let sensitive: Vec<bool> = list.iter().map(|f| f.sensitive).collect();
    assert_eq!(sensitive, [false, true, false]);
    assert_eq!(list[1], HeaderField::new_sensitive("authorization", "t"));
}

#[test]
fn list_too_large_keeps_the_table_in_sync() {
    let mut decoder = Decoder::new(4096);
    let mut block = vec![0x82];
    block.extend(indexed_literal(1000));
    block.push(0x84);
    match decoder.decode(&block, 200) {
        Err(HpackError::ListTooLarge { size, limit }) => {
            assert_eq!(limit, 200);
            assert_eq!(size, (7 + 3 + 32) + (5 + 1000 + 32) + (5 + 1 + 32));
        }
        other => panic!("{other:?}"),
    }
    // The entry added by the refused block is there for the next one.
    let list = decoder.decode(&[0xbe, 0x83], NO_LIMIT).unwrap();
    assert_eq!(list[0].name, "x-big");
    assert_eq!(list[0].value.len(), 1000);
    assert_eq!(list[1], HeaderField::new(":method", "POST"));
    // At the limit exactly is fine.
    assert_eq!(decoder.decode(&[0x82], 7 + 3 + 32).unwrap().len(), 1);
    assert!(matches!(
        decoder.decode(&[0x82], 7 + 3 + 31),
        Err(HpackError::ListTooLarge { .. })
    ));
}

/// A 16 KiB block of one-octet references to a 4 KiB entry decodes to
/// 64 MiB: refused, quickly, having kept at most the limit.
#[test]
fn amplification_is_refused() {
    let mut decoder = Decoder::new(4096);
    decoder
        .decode(&indexed_literal(4096 - 32 - 5), NO_LIMIT)
        .unwrap();
    let block = vec![0xbe; 16 << 10];
    let started = std::time::Instant::now();
    match decoder.decode(&block, 16 << 10) {
        Err(HpackError::ListTooLarge { size, limit }) => {
            assert_eq!(limit, 16 << 10);
            assert_eq!(size, 4096 * (16 << 10));
        }
        other => panic!("{:?}", other.map(|list| list.len())),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // Still in sync.
    assert_eq!(
        decoder.decode(&[0xbe], NO_LIMIT).unwrap()[0].value.len(),
        4096 - 32 - 5
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Anything at all: an answer, never a panic; and a decoder that said
    /// `Ok` or `ListTooLarge` goes on decoding valid blocks.
    #[test]
    fn arbitrary_bytes_never_panic(
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
        prefix in proptest::collection::vec(
            prop_oneof![Just(0x82u8), Just(0xbe), Just(0x20), Just(0x3f), Just(0x10), Just(0x40), Just(0x80)],
            0..8,
        ),
        limit in 0usize..300,
    ) {
        let mut decoder = Decoder::new(4096);
        let mut block = prefix;
        block.extend(garbage);
        match decoder.decode(&block, limit) {
            Ok(_) | Err(HpackError::ListTooLarge { .. }) => {
                prop_assert!(decoder.decode(&[0x82], NO_LIMIT).is_ok());
            }
            Err(HpackError::Compression(_)) => {}
        }
    }

    /// Blocks from our encoder, damaged: still no panic.
    #[test]
    fn damaged_blocks_never_panic(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..6),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let fields: Vec<HeaderField> =
            values.into_iter().map(|v| HeaderField::new(":path", v)).collect();
        let mut dst = BytesMut::new();
        Encoder::new().encode(&fields, &mut dst);
        let mut block = dst.to_vec();
        for (at, xor) in flips {
            let i = at.index(block.len());
            block[i] ^= xor;
        }
        let _ = Decoder::new(4096).decode(&block, 1 << 20);
    }
}

/// One piece of a generated header block.
#[derive(Clone, Debug)]
enum Piece {
    Indexed(usize),
    /// First-octet pattern (0x40, 0x00 or 0x10), name index (0: literal
    /// name), name and value as on the wire.
    Literal(u8, usize, Vec<u8>, Vec<u8>),
    SizeUpdate(usize),
    Garbage(u8),
}

fn put_int(dst: &mut Vec<u8>, flags: u8, prefix_bits: u8, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        dst.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

/// A string as on the wire: raw, RFC 7541 Appendix C Huffman, or random
/// octets flagged Huffman (mostly invalid).
fn wire_string() -> impl Strategy<Value = Vec<u8>> {
    let huffman = [
        "a8eb10649cbf",
        "9bd9ab",
        "aec3771a4b",
        "f1e3c2e5f23a6ba0ab90f4ff",
        "6402",
        "640eff",
    ];
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..6).prop_map(|raw| {
            let mut out = Vec::new();
            put_int(&mut out, 0, 7, raw.len());
            out.extend(raw);
            out
        }),
        2 => prop::sample::select(huffman.to_vec()).prop_map(|hex| {
            let octets: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            let mut out = Vec::new();
            put_int(&mut out, 0x80, 7, octets.len());
            out.extend(octets);
            out
        }),
        1 => prop::collection::vec(any::<u8>(), 0..4).prop_map(|octets| {
            let mut out = Vec::new();
            put_int(&mut out, 0x80, 7, octets.len());
            out.extend(octets);
            out
        }),
    ]
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => (0usize..70).prop_map(Piece::Indexed),
        4 => (prop::sample::select(vec![0x40u8, 0x00, 0x10]), prop_oneof![Just(0usize), 1usize..70], wire_string(), wire_string())
            .prop_map(|(kind, index, name, value)| Piece::Literal(kind, index, name, value)),
        1 => prop_oneof![0usize..300, 4000usize..4200].prop_map(Piece::SizeUpdate),
        1 => any::<u8>().prop_map(Piece::Garbage),
    ]
}

fn block_of(pieces: &[Piece]) -> Vec<u8> {
    let mut block = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Indexed(index) => put_int(&mut block, 0x80, 7, *index),
            Piece::Literal(kind, index, name, value) => {
                put_int(&mut block, *kind, if *kind == 0x40 { 6 } else { 4 }, *index);
                if *index == 0 {
                    block.extend(name);
                }
                block.extend(value);
            }
            Piece::SizeUpdate(size) => put_int(&mut block, 0x20, 5, *size),
            Piece::Garbage(octet) => block.push(*octet),
        }
    }
    block
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Our decoder against `loona-hpack`'s on the same blocks, in sequence:
    /// the same lists when both accept; ours refuses whatever loona refuses,
    /// and refuses more only for size updates that §4.2 forbids (after a
    /// field, or more than two).
    #[test]
    fn decoder_agrees_with_loona(blocks in prop::collection::vec(prop::collection::vec(piece(), 0..8), 1..4)) {
        let mut ours = Decoder::new(4096);
        let mut loona = loona_hpack::Decoder::new();
        loona.set_max_allowed_table_size(4096);
        for pieces in blocks {
            let block = block_of(&pieces);
            let leading = pieces.iter().take_while(|p| matches!(p, Piece::SizeUpdate(_))).count();
            let misplaced = leading > 2
                || pieces.iter().skip(leading).any(|p| matches!(p, Piece::SizeUpdate(_) | Piece::Garbage(0x20..=0x3f)));
            match (ours.decode(&block, NO_LIMIT), loona.decode(&block)) {
                (Ok(list), Ok(expected)) => {
                    let list: Vec<(Vec<u8>, Vec<u8>)> = list.iter().map(|f| (f.name.to_vec(), f.value.to_vec())).collect();
                    prop_assert_eq!(list, expected);
                }
                (Err(HpackError::Compression(_)), Err(_)) => break,
                (Err(HpackError::Compression(_)), Ok(_)) if misplaced => break,
                // A garbage octet shifts the parse, so a later piece's bytes
                // can read as a misplaced size update: accept our §4.2
                // refusal there (garbage-free blocks are checked strictly).
                (Err(HpackError::Compression(why)), Ok(_))
                    if why.contains("size update") && pieces.iter().any(|p| matches!(p, Piece::Garbage(_))) => break,
                (ours, loona) => prop_assert!(false, "ours {:?}, loona {:?}, block {:02x?}", ours, loona.map(|l| l.len()), block),
            }
        }
    }
}

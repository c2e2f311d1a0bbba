//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B), both ways.
//!
//! Owns the 257-entry code table, the encoded length of a string (to decide
//! whether Huffman pays), the encoding, and a decoding that checks what
//! §5.2 asks of a decoder: no EOS in the string, padding of at most 7 bits,
//! all ones (EOS's high bits). Codes are written most significant bit first.
//!
//! The code is canonical (codes of one length are consecutive and follow
//! the shorter ones; a unit test checks it), so decoding needs only, per
//! length, the first code and where its symbols start in a list of symbols
//! sorted by code.

use bytes::BufMut;

/// EOS: 30 ones. Its prefix pads the last octet.
const EOS: (u32, u8) = (0x3fff_ffff, 30);

/// `(code, bit length)` for each symbol 0..=255, then EOS (index 256),
/// right-aligned: symbol `b'a'` is `0x3` on 5 bits, i.e. `00011`.
#[rustfmt::skip]
static CODES: [(u32, u8); 257] = [
    // 0x00
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28),
    // 0x04
    (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28),
    // 0x08
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    // 0x0c
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28),
    // 0x10
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    // 0x14
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    // 0x18
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28),
    // 0x1c
    (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28),
    // 0x20
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    // 0x24
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11),
    // 0x28
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11),
    // 0x2c
    (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
    // 0x30
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6),
    // 0x34
    (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6),
    // 0x38
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    // 0x3c
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10),
    // 0x40
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7),
    // 0x44
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
    // 0x48
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7),
    // 0x4c
    (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7),
    // 0x50
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
    // 0x54
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7),
    // 0x58
    (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13),
    // 0x5c
    (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
    // 0x60
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5),
    // 0x64
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6),
    // 0x68
    (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
    // 0x6c
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5),
    // 0x70
    (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5),
    // 0x74
    (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    // 0x78
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15),
    // 0x7c
    (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28),
    // 0x80
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    // 0x84
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23),
    // 0x88
    (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    // 0x8c
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    // 0x90
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23),
    // 0x94
    (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23),
    // 0x98
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    // 0x9c
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24),
    // 0xa0
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22),
    // 0xa4
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
    // 0xa8
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24),
    // 0xac
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23),
    // 0xb0
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    // 0xb4
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23),
    // 0xb8
    (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22),
    // 0xbc
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    // 0xc0
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19),
    // 0xc4
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25),
    // 0xc8
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    // 0xcc
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25),
    // 0xd0
    (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27),
    // 0xd4
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    // 0xd8
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26),
    // 0xdc
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27),
    // 0xe0
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
    // 0xe4
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23),
    // 0xe8
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25),
    // 0xec
    (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    // 0xf0
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26),
    // 0xf4
    (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27),
    // 0xf8
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    // 0xfc
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26),
    // EOS
    (0x3fffffff, 30),
];

/// The code of one octet.
fn code(octet: u8) -> (u32, u8) {
    CODES.get(usize::from(octet)).copied().unwrap_or(EOS)
}

/// The length in octets of the Huffman encoding of `src`, padding included.
pub(crate) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&octet| usize::from(code(octet).1)).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman encoding of `src` to `dst`
/// (exactly [`encoded_len`]`(src)` octets).
pub(crate) fn encode(src: &[u8], dst: &mut impl BufMut) {
    // `pending` holds the low `bits` bits not yet written (at most 7 between
    // symbols, so at most 37 after adding a 30-bit code); higher bits are
    // stale and fall off the top or are masked by the `as u8` casts.
    let mut pending: u64 = 0;
    let mut bits: u32 = 0;
    for &octet in src {
        let (code, len) = code(octet);
        pending = (pending << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            dst.put_u8((pending >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.put_u8(((pending << pad) | ((1 << pad) - 1)) as u8);
    }
}

/// Decoding, per code length in bits: the first code of that length, how
/// many codes have it, and the index in [`SYMBOLS`] of the first one.
#[rustfmt::skip]
static LENGTHS: [(u32, u16, u16); 31] = [
    (0x0, 0, 0), // 0 bits
    (0x0, 0, 0), // 1 bits
    (0x0, 0, 0), // 2 bits
    (0x0, 0, 0), // 3 bits
    (0x0, 0, 0), // 4 bits
    (0x0, 10, 0), // 5 bits
    (0x14, 26, 10), // 6 bits
    (0x5c, 32, 36), // 7 bits
    (0xf8, 6, 68), // 8 bits
    (0x0, 0, 0), // 9 bits
    (0x3f8, 5, 74), // 10 bits
    (0x7fa, 3, 79), // 11 bits
    (0xffa, 2, 82), // 12 bits
    (0x1ff8, 6, 84), // 13 bits
    (0x3ffc, 2, 90), // 14 bits
    (0x7ffc, 3, 92), // 15 bits
    (0x0, 0, 0), // 16 bits
    (0x0, 0, 0), // 17 bits
    (0x0, 0, 0), // 18 bits
    (0x7fff0, 3, 95), // 19 bits
    (0xfffe6, 8, 98), // 20 bits
    (0x1fffdc, 13, 106), // 21 bits
    (0x3fffd2, 26, 119), // 22 bits
    (0x7fffd8, 29, 145), // 23 bits
    (0xffffea, 12, 174), // 24 bits
    (0x1ffffec, 4, 186), // 25 bits
    (0x3ffffe0, 15, 190), // 26 bits
    (0x7ffffde, 19, 205), // 27 bits
    (0xfffffe2, 29, 224), // 28 bits
    (0x0, 0, 0), // 29 bits
    (0x3ffffffc, 4, 253), // 30 bits
];
/// The symbols sorted by code (EOS is 256).
#[rustfmt::skip]
static SYMBOLS: [u16; 257] = [
    48, 49, 50, 97, 99, 101, 105, 111, 115, 116, 32, 37, 45, 46, 47, 51,
    52, 53, 54, 55, 56, 57, 61, 65, 95, 98, 100, 102, 103, 104, 108, 109,
    110, 112, 114, 117, 58, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76,
    77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 89, 106, 107, 113, 118,
    119, 120, 121, 122, 38, 42, 44, 59, 88, 90, 33, 34, 40, 41, 63, 39,
    43, 124, 35, 62, 0, 36, 64, 91, 93, 126, 94, 125, 60, 96, 123, 92,
    195, 208, 128, 130, 131, 162, 184, 194, 224, 226, 153, 161, 167, 172, 176, 177,
    179, 209, 216, 217, 227, 229, 230, 129, 132, 133, 134, 136, 146, 154, 156, 160,
    163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189, 190, 196, 198, 228, 232,
    233, 1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157,
    158, 165, 166, 168, 174, 175, 180, 182, 183, 188, 191, 197, 231, 239, 9, 142,
    144, 145, 148, 159, 171, 206, 215, 225, 236, 237, 199, 207, 234, 235, 192, 193,
    200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255, 203, 204, 211,
    212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254,
    2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20,
    21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127, 220, 249, 10, 13, 22,
    256,
];

/// `src` holds EOS (§5.2: an error).
pub(crate) const EOS_IN_STRING: &str = "EOS in a Huffman-coded string";
/// `src` ends in more than 7 bits, or in bits that are not all ones.
pub(crate) const INVALID_PADDING: &str = "invalid Huffman padding";

/// Appends the decoding of the Huffman-coded `src` to `dst`.
pub(crate) fn decode(src: &[u8], dst: &mut impl BufMut) -> Result<(), &'static str> {
    // The low `bits` bits of `pending` are the input not yet decoded.
    let mut pending: u64 = 0;
    let mut bits: u32 = 0;
    let mut input = src.iter();
    loop {
        while bits <= 56 {
            let Some(&octet) = input.next() else { break };
            pending = (pending << 8) | u64::from(octet);
            bits += 8;
        }
        let Some((symbol, len)) = next_symbol(pending, bits) else {
            break;
        };
        let Ok(octet) = u8::try_from(symbol) else {
            return Err(EOS_IN_STRING);
        };
        dst.put_u8(octet);
        bits -= len;
    }
    // What is left is padding (no code is complete in it).
    if bits > 7 || pending & ((1 << bits) - 1) != (1 << bits) - 1 {
        return Err(INVALID_PADDING);
    }
    Ok(())
}

/// The symbol whose code starts the `bits` low bits of `pending`, and its
/// length; `None` if those bits hold no whole code.
fn next_symbol(pending: u64, bits: u32) -> Option<(u16, u32)> {
    for len in 5..=bits.min(30) {
        let code = ((pending >> (bits - len)) & ((1 << len) - 1)) as u32;
        let Some(&(first, count, offset)) = LENGTHS.get(len as usize) else {
            break;
        };
        if let Some(rank) = code
            .checked_sub(first)
            .filter(|&rank| rank < u32::from(count))
        {
            return SYMBOLS
                .get(usize::from(offset) + rank as usize)
                .map(|&symbol| (symbol, len));
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn table_is_a_complete_prefix_code() {
        // Kraft: sum of 2^-len == 1 exactly (in units of 2^-30).
        let total: u64 = CODES.iter().map(|&(_, len)| 1u64 << (30 - len)).sum();
        assert_eq!(total, 1 << 30);
        // No code is a prefix of another (left-align on 32 bits and compare).
        let mut aligned: Vec<(u32, u8)> = CODES.iter().map(|&(c, l)| (c << (32 - l), l)).collect();
        aligned.sort();
        for pair in aligned.windows(2) {
            let ((a, la), (b, _)) = (pair[0], pair[1]);
            let mask = !0u32 << (32 - la);
            assert_ne!(a & mask, b & mask, "prefix clash");
        }
        assert_eq!(CODES[256], EOS);
    }

    fn huff(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(s, &mut out);
        assert_eq!(out.len(), encoded_len(s));
        out
    }

    /// RFC 7541 C.4.1 to C.4.3 and C.6.1 to C.6.3: the Huffman strings.
    #[test]
    fn rfc7541_appendix_c_huffman_strings() {
        let cases: &[(&str, &str)] = &[
            ("www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
            ("no-cache", "a8eb10649cbf"),
            ("custom-key", "25a849e95ba97d7f"),
            ("custom-value", "25a849e95bb8e8b4bf"),
            ("302", "6402"),
            ("private", "aec3771a4b"),
            ("Mon, 21 Oct 2013 20:13:21 GMT", "d07abe941054d444a8200595040b8166e082a62d1bff"),
            ("https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"),
            ("307", "640eff"),
            ("Mon, 21 Oct 2013 20:13:22 GMT", "d07abe941054d444a8200595040b8166e084a62d1bff"),
            ("gzip", "9bd9ab"),
            (
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
            ),
        ];
        for &(plain, hex) in cases {
            let want: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(huff(plain.as_bytes()), want, "{plain}");
        }
    }

    #[test]
    fn code_is_canonical_and_decode_tables_match() {
        let mut by_code: Vec<usize> = (0..257).collect();
        by_code.sort_by_key(|&symbol| (CODES[symbol].1, symbol));
        let (mut code, mut len) = (0u32, CODES[by_code[0]].1);
        for (rank, &symbol) in by_code.iter().enumerate() {
            code <<= CODES[symbol].1 - len;
            len = CODES[symbol].1;
            assert_eq!(CODES[symbol].0, code, "symbol {symbol}");
            assert_eq!(usize::from(SYMBOLS[rank]), symbol);
            let (first, count, offset) = LENGTHS[usize::from(len)];
            assert!(code >= first && code - first < u32::from(count));
            assert_eq!(usize::from(offset) + (code - first) as usize, rank);
            code += 1;
        }
        let total: usize = LENGTHS
            .iter()
            .map(|&(_, count, _)| usize::from(count))
            .sum();
        assert_eq!(total, 257);
    }

    fn unhuff(src: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        decode(src, &mut out).map(|()| out)
    }

    #[test]
    fn decode_checks_eos_and_padding() {
        assert_eq!(unhuff(&[]), Ok(vec![]));
        assert_eq!(unhuff(&[0x1f]), Ok(b"a".to_vec())); // 00011 + 111
        assert_eq!(unhuff(&[0x18]), Err(INVALID_PADDING)); // 00011 + 000
        assert_eq!(unhuff(&[0x1f, 0xff]), Err(INVALID_PADDING)); // 11 bits of padding
        assert_eq!(unhuff(&[0xff]), Err(INVALID_PADDING));
        assert_eq!(unhuff(&[0xff, 0xff, 0xff, 0xfc]), Err(EOS_IN_STRING)); // 30 ones
        assert_eq!(unhuff(&[0xff; 8]), Err(EOS_IN_STRING));
    }

    #[test]
    fn every_octet_round_trips_through_loona() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in [0, 1, 2, 7, 8, 100, all.len()] {
            let src = &all[..len];
            let decoded = loona_hpack::huffman::HuffmanDecoder::new()
                .decode(&huff(src))
                .unwrap();
            assert_eq!(decoded, src);
            assert_eq!(unhuff(&huff(src)).unwrap(), src);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod differential {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// Our decoder accepts exactly what `loona-hpack`'s accepts, with the
        /// same result, on any input (biased towards the many-ones codes).
        #[test]
        fn decode_agrees_with_loona(src in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(0xffu8), Just(0xfe), Just(0x7f)], 0..24)) {
            let mut ours = Vec::new();
            let ours = super::decode(&src, &mut ours).map(|()| ours);
            let loona = loona_hpack::huffman::HuffmanDecoder::new().decode(&src);
            prop_assert_eq!(ours.ok(), loona.ok());
        }

        /// The same on valid encodings and on encodings with one bit flipped
        /// or the last octet cut.
        #[test]
        fn decode_agrees_with_loona_near_valid(
            plain in prop::collection::vec(any::<u8>(), 0..24),
            flip in any::<prop::sample::Index>(),
            damage in 0u8..3,
        ) {
            let mut src = Vec::new();
            super::encode(&plain, &mut src);
            if !src.is_empty() {
                match damage {
                    0 => {}
                    1 => { let bit = flip.index(src.len() * 8); src[bit / 8] ^= 0x80 >> (bit % 8); }
                    _ => { src.pop(); }
                }
            }
            let mut ours = Vec::new();
            let ours = super::decode(&src, &mut ours).map(|()| ours);
            let loona = loona_hpack::huffman::HuffmanDecoder::new().decode(&src);
            if damage == 0 {
                prop_assert_eq!(ours.as_deref().ok(), Some(&plain[..]));
            }
            prop_assert_eq!(ours.ok(), loona.ok());
        }
    }
}

//! RFC 7541 Appendix C, the worked examples: every block decoded by our
//! `Decoder`, with the dynamic table checked after each one (by indexed
//! references, which do not change it), and the encoder's output compared
//! where our indexing policy makes the same choices as the RFC's encoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::BytesMut;
use framer::hpack::{Decoder, Encoder, HeaderField, HpackError};

const NO_LIMIT: usize = usize::MAX;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn fields(list: &[(&str, &str)]) -> Vec<HeaderField> {
    list.iter()
        .map(|&(n, v)| HeaderField::new(n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// Checks the dynamic table holds exactly `entries`, newest first, by
/// decoding indexed references to 62.. (which leave the table as it is).
/// The check for "nothing after" ends the decoder's life, so it comes last.
fn assert_table(decoder: &mut Decoder, entries: &[(&str, &str)]) {
    let probe: Vec<u8> = (0..entries.len()).map(|i| 0x80 | (62 + i) as u8).collect();
    assert_eq!(decoder.decode(&probe, NO_LIMIT).unwrap(), fields(entries));
}

fn assert_table_ends(mut decoder: Decoder, len: usize) {
    let past = [0x80 | (62 + len) as u8];
    assert!(matches!(
        decoder.decode(&past, NO_LIMIT),
        Err(HpackError::Compression(_))
    ));
}

#[test]
fn c2_1_literal_with_indexing() {
    let mut decoder = Decoder::new(4096);
    let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    assert_eq!(
        decoder.decode(&block, NO_LIMIT).unwrap(),
        fields(&[("custom-key", "custom-header")])
    );
    assert_table(&mut decoder, &[("custom-key", "custom-header")]);
    assert_table_ends(decoder, 1);
}

#[test]
fn c2_2_literal_without_indexing() {
    let mut decoder = Decoder::new(4096);
    let block = hex("040c 2f73 616d 706c 652f 7061 7468");
    assert_eq!(
        decoder.decode(&block, NO_LIMIT).unwrap(),
        fields(&[(":path", "/sample/path")])
    );
    assert_table_ends(decoder, 0);
}

#[test]
fn c2_3_literal_never_indexed_comes_back_sensitive() {
    let mut decoder = Decoder::new(4096);
    let block = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    let list = decoder.decode(&block, NO_LIMIT).unwrap();
    assert_eq!(list, vec![HeaderField::new_sensitive("password", "secret")]);
    assert!(list[0].sensitive);
    assert_table_ends(decoder, 0);
}

#[test]
fn c2_4_indexed() {
    let mut decoder = Decoder::new(4096);
    assert_eq!(
        decoder.decode(&hex("82"), NO_LIMIT).unwrap(),
        fields(&[(":method", "GET")])
    );
    assert_table_ends(decoder, 0);
}

const REQUEST_1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQUEST_2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];

fn decode_request_sequence(blocks: [&str; 3]) {
    let mut decoder = Decoder::new(4096);
    assert_eq!(
        decoder.decode(&hex(blocks[0]), NO_LIMIT).unwrap(),
        fields(REQUEST_1)
    );
    assert_table(&mut decoder, &[(":authority", "www.example.com")]);
    assert_eq!(
        decoder.decode(&hex(blocks[1]), NO_LIMIT).unwrap(),
        fields(REQUEST_2)
    );
    assert_table(
        &mut decoder,
        &[
            ("cache-control", "no-cache"),
            (":authority", "www.example.com"),
        ],
    );
    assert_eq!(
        decoder.decode(&hex(blocks[2]), NO_LIMIT).unwrap(),
        fields(REQUEST_3)
    );
    assert_table(
        &mut decoder,
        &[
            ("custom-key", "custom-value"),
            ("cache-control", "no-cache"),
            (":authority", "www.example.com"),
        ],
    );
    assert_table_ends(decoder, 3);
}

#[test]
fn c3_requests_without_huffman() {
    decode_request_sequence([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];

#[test]
fn c4_requests_with_huffman() {
    decode_request_sequence(C4);
}

/// Our encoder makes the RFC's choices for C.4.1 and C.4.2, octet for
/// octet (Huffman included). In C.4.3 it sends `custom-key` without
/// indexing (custom metadata, policy step 4) where the RFC indexes it.
#[test]
fn c4_our_encoder_matches_the_rfc() {
    let mut encoder = Encoder::new();
    let mut dst = BytesMut::new();
    encoder.encode(&fields(REQUEST_1), &mut dst);
    assert_eq!(&dst[..], &hex(C4[0])[..]);
    dst.clear();
    encoder.encode(&fields(REQUEST_2), &mut dst);
    assert_eq!(&dst[..], &hex(C4[1])[..]);
    dst.clear();
    encoder.encode(&fields(REQUEST_3), &mut dst);
    let mut rfc = hex(C4[2]);
    assert_eq!(rfc[4], 0x40);
    rfc[4] = 0x00;
    assert_eq!(&dst[..], &rfc[..]);
}

const DATE_1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE_2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

fn decode_response_sequence(blocks: [&str; 3]) {
    // SETTINGS_HEADER_TABLE_SIZE 256: evictions from the second response on.
    let mut decoder = Decoder::new(256);
    let response_1 = [
        (":status", "302"),
        ("cache-control", "private"),
        ("date", DATE_1),
        ("location", "https://www.example.com"),
    ];
    assert_eq!(
        decoder.decode(&hex(blocks[0]), NO_LIMIT).unwrap(),
        fields(&response_1)
    );
    assert_table(
        &mut decoder,
        &[
            ("location", "https://www.example.com"),
            ("date", DATE_1),
            ("cache-control", "private"),
            (":status", "302"),
        ],
    );

    let response_2 = [
        (":status", "307"),
        ("cache-control", "private"),
        ("date", DATE_1),
        ("location", "https://www.example.com"),
    ];
    assert_eq!(
        decoder.decode(&hex(blocks[1]), NO_LIMIT).unwrap(),
        fields(&response_2)
    );
    // ":status: 302" evicted.
    assert_table(
        &mut decoder,
        &[
            (":status", "307"),
            ("location", "https://www.example.com"),
            ("date", DATE_1),
            ("cache-control", "private"),
        ],
    );

    let response_3 = [
        (":status", "200"),
        ("cache-control", "private"),
        ("date", DATE_2),
        ("location", "https://www.example.com"),
        ("content-encoding", "gzip"),
        ("set-cookie", COOKIE),
    ];
    assert_eq!(
        decoder.decode(&hex(blocks[2]), NO_LIMIT).unwrap(),
        fields(&response_3)
    );
    // Table size 215 of 256: three entries left.
    assert_table(
        &mut decoder,
        &[
            ("set-cookie", COOKIE),
            ("content-encoding", "gzip"),
            ("date", DATE_2),
        ],
    );
    assert_table_ends(decoder, 3);
}

#[test]
fn c5_responses_without_huffman_with_eviction() {
    decode_response_sequence([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e \
         3d31",
    ]);
}

#[test]
fn c6_responses_with_huffman_with_eviction() {
    decode_response_sequence([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

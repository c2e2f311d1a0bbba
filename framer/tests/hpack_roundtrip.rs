//! Our encoder against two decoders, `loona-hpack`'s own and ours, over
//! sequences of blocks with the peer's table size changing in between: every
//! list must come back as sent (names, values, and, from ours, the
//! never-indexed flag), so both tables stay in step with the encoder's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use framer::hpack::{Decoder, Encoder, HeaderField};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    /// The decoding side's SETTINGS_HEADER_TABLE_SIZE, acknowledged: both
    /// ends learn it before the next block.
    TableSize(usize),
    Block(Vec<HeaderField>),
}

fn name() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => prop::sample::select(vec![
            ":path", ":authority", ":method", ":scheme", ":status", "content-type", "te", "user-agent",
            "grpc-encoding", "grpc-accept-encoding", "grpc-timeout", "grpc-status", "grpc-message",
            "authorization", "cookie", "content-length", "accept-encoding", "x-custom", "x-trace-id",
        ])
        .prop_map(|s: &'static str| Bytes::from_static(s.as_bytes())),
        1 => prop::collection::vec(any::<u8>(), 1..12).prop_map(Bytes::from),
    ]
}

fn value() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", "POST", "GET", "http", "200", "0", "/helloworld.Greeter/SayHello", "application/grpc",
            "trailers", "identity,gzip", "localhost:50051", "gzip, deflate",
        ])
        .prop_map(|s: &'static str| Bytes::from_static(s.as_bytes())),
        // Non-ASCII and control octets, and long ones (some past half the table).
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from),
        1 => (0usize..3000, any::<u8>()).prop_map(|(len, octet)| Bytes::from(vec![octet; len])),
    ]
}

fn field() -> impl Strategy<Value = HeaderField> {
    (name(), value(), prop::bool::weighted(0.15)).prop_map(|(name, value, sensitive)| HeaderField {
        name,
        value,
        sensitive,
    })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => prop_oneof![Just(0usize), Just(64), Just(256), Just(4096), Just(65536), 0usize..5000]
            .prop_map(Step::TableSize),
        // Repeated fields within a block come from a small pool of names and values.
        6 => prop::collection::vec(field(), 0..12).prop_map(Step::Block),
    ]
}

fn expected_sensitive(field: &HeaderField) -> bool {
    let preset = ["authorization", "proxy-authorization", "cookie"];
    field.sensitive
        || preset
            .iter()
            .any(|name| field.name.eq_ignore_ascii_case(name.as_bytes()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn encoder_round_trips_through_both_decoders(steps in prop::collection::vec(step(), 1..24)) {
        let mut encoder = Encoder::new();
        let mut ours = Decoder::new(4096);
        let mut loona = loona_hpack::Decoder::new();
        loona.set_max_allowed_table_size(4096);
        for step in steps {
            match step {
                Step::TableSize(size) => {
                    ours.set_max_table_size(size);
                    loona.set_max_allowed_table_size(size);
                    encoder.set_max_table_size(size);
                }
                Step::Block(fields) => {
                    let mut block = BytesMut::new();
                    encoder.encode(&fields, &mut block);

                    let decoded = loona.decode(&block).unwrap();
                    let sent: Vec<(Vec<u8>, Vec<u8>)> =
                        fields.iter().map(|f| (f.name.to_vec(), f.value.to_vec())).collect();
                    prop_assert_eq!(decoded, sent);

                    let decoded = ours.decode(&block, usize::MAX).unwrap();
                    let sent: Vec<HeaderField> = fields
                        .iter()
                        .map(|f| HeaderField { sensitive: expected_sensitive(f), ..f.clone() })
                        .collect();
                    prop_assert_eq!(decoded, sent);
                    prop_assert!(encoder.dynamic_table_size() <= 4096);
                }
            }
        }
    }
}

#[test]
fn peer_table_size_zero_indexes_nothing() {
    let request = [
        HeaderField::new(":path", "/a.B/C"),
        HeaderField::new("content-type", "application/grpc"),
    ];
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(4096);
    let mut first = BytesMut::new();
    encoder.encode(&request, &mut first);
    assert!(encoder.dynamic_table_size() > 0);
    decoder.decode(&first, usize::MAX).unwrap();

    encoder.set_max_table_size(0);
    decoder.set_max_table_size(0);
    for _ in 0..2 {
        let mut block = BytesMut::new();
        encoder.encode(&request, &mut block);
        assert_eq!(encoder.dynamic_table_size(), 0);
        assert_eq!(decoder.decode(&block, usize::MAX).unwrap(), request);
    }
}

#[test]
fn sensitive_fields_are_never_indexed() {
    let mut encoder = Encoder::new();
    encoder.never_index(b"x-api-key");
    let mut decoder = Decoder::new(4096);
    let fields = [
        HeaderField::new("authorization", "Bearer abc"),
        HeaderField::new("X-Api-Key", "k"),
        HeaderField::new_sensitive(":path", "/secret"),
    ];
    let mut sizes = Vec::new();
    for _ in 0..2 {
        let mut block = BytesMut::new();
        encoder.encode(&fields, &mut block);
        assert_eq!(block[0] & 0xf0, 0x10, "never-indexed literal");
        sizes.push(block.len());
        let list = decoder.decode(&block, usize::MAX).unwrap();
        assert!(list.iter().all(|f| f.sensitive));
    }
    assert_eq!(sizes[0], sizes[1]);
    assert_eq!(encoder.dynamic_table_size(), 0);
}

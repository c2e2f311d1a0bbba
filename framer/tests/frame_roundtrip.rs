//! Property tests: for every frame type, encode → decode is the identity,
//! through the connection `Decoder` (field blocks HPACK-encoded, split into
//! CONTINUATION frames when large) and through raw `decode_frame`.

use bytes::{Bytes, BytesMut};
use framer::hpack::HeaderField;
use framer::{
    decode_frame, Data, Decoder, DecoderConfig, Encoder, Frame, GoAway, HeaderBlock, Headers, Ping,
    Priority, PushPromise, Reason, RstStream, SettingId, Settings, StreamDependency, StreamId,
    Unknown, WindowUpdate,
};
use proptest::prelude::*;

fn stream_id() -> impl Strategy<Value = StreamId> {
    (1u32..=0x7fff_ffff).prop_map(StreamId::new)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn field() -> impl Strategy<Value = HeaderField> {
    // Names the encoder always treats as sensitive are left out: their
    // `sensitive` flag would not round-trip as generated.
    let name = "[a-z:][a-z0-9-]{0,20}"
        .prop_filter("always-sensitive names", |n| {
            !matches!(
                n.as_str(),
                "authorization" | "proxy-authorization" | "cookie"
            )
        })
        .prop_map(Bytes::from);
    (name, bytes(64), any::<bool>()).prop_map(|(name, value, sensitive)| HeaderField {
        name,
        value,
        sensitive,
    })
}

fn fields() -> impl Strategy<Value = Vec<HeaderField>> {
    prop_oneof![
        4 => proptest::collection::vec(field(), 0..12),
        // A block larger than one 16 KiB frame: split into CONTINUATIONs.
        1 => proptest::collection::vec(field(), 1..4).prop_map(|mut f| {
            f.push(HeaderField::new("big", vec![b'x'; 40_000]));
            f
        }),
    ]
}

fn dependency_for(id: StreamId) -> impl Strategy<Value = StreamDependency> {
    (0u32..=0x7fff_ffff, any::<u8>(), any::<bool>())
        .prop_filter("no self-dependency", move |(d, _, _)| *d != id.value())
        .prop_map(|(d, weight, exclusive)| StreamDependency {
            dependency: StreamId::new(d),
            weight,
            exclusive,
        })
}

fn reason() -> impl Strategy<Value = Reason> {
    any::<u32>().prop_map(Reason::from)
}

fn settings() -> impl Strategy<Value = Settings> {
    let param = prop_oneof![
        any::<u32>().prop_map(|v| (SettingId::HEADER_TABLE_SIZE, v)),
        (0u32..=1).prop_map(|v| (SettingId::ENABLE_PUSH, v)),
        any::<u32>().prop_map(|v| (SettingId::MAX_CONCURRENT_STREAMS, v)),
        (0u32..=0x7fff_ffff).prop_map(|v| (SettingId::INITIAL_WINDOW_SIZE, v)),
        (16_384u32..=16_777_215).prop_map(|v| (SettingId::MAX_FRAME_SIZE, v)),
        any::<u32>().prop_map(|v| (SettingId::MAX_HEADER_LIST_SIZE, v)),
        (9u16.., any::<u32>()).prop_map(|(id, v)| (SettingId(id), v)),
    ];
    prop_oneof![
        Just(Settings::ack()),
        proptest::collection::vec(param, 0..10).prop_map(|params| {
            params
                .into_iter()
                .fold(Settings::new(), |s, (id, v)| s.with(id, v))
        }),
    ]
}

/// Any frame the connection decoder can yield (no CONTINUATION; field
/// blocks decoded).
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            stream_id(),
            any::<bool>(),
            proptest::option::of(any::<u8>()),
            bytes(16_000)
        )
            .prop_map(|(stream_id, end_stream, pad_len, payload)| {
                Frame::Data(Data {
                    stream_id,
                    end_stream,
                    pad_len,
                    payload,
                })
            }),
        stream_id().prop_flat_map(|id| {
            (
                any::<bool>(),
                proptest::option::of(dependency_for(id)),
                proptest::option::of(any::<u8>()),
                fields(),
            )
                .prop_map(move |(end_stream, priority, pad_len, fields)| {
                    Frame::Headers(Headers {
                        stream_id: id,
                        end_stream,
                        end_headers: true,
                        priority,
                        pad_len,
                        block: HeaderBlock::Fields(fields),
                    })
                })
        }),
        stream_id().prop_flat_map(|id| {
            dependency_for(id).prop_map(move |dependency| {
                Frame::Priority(Priority {
                    stream_id: id,
                    dependency,
                })
            })
        }),
        (stream_id(), reason()).prop_map(|(id, r)| Frame::RstStream(RstStream::new(id, r))),
        settings().prop_map(Frame::Settings),
        (
            stream_id(),
            stream_id(),
            proptest::option::of(any::<u8>()),
            fields()
        )
            .prop_map(|(stream_id, promised_id, pad_len, fields)| {
                Frame::PushPromise(PushPromise {
                    stream_id,
                    promised_id,
                    end_headers: true,
                    pad_len,
                    block: HeaderBlock::Fields(fields),
                })
            }),
        (any::<bool>(), any::<[u8; 8]>())
            .prop_map(|(ack, payload)| Frame::Ping(Ping { ack, payload })),
        (0u32..=0x7fff_ffff, reason(), bytes(100)).prop_map(|(last, reason, debug_data)| {
            Frame::GoAway(GoAway {
                last_stream_id: StreamId::new(last),
                reason,
                debug_data,
            })
        }),
        (0u32..=0x7fff_ffff, 1u32..=0x7fff_ffff).prop_map(|(id, inc)| {
            Frame::WindowUpdate(WindowUpdate::new(StreamId::new(id), inc))
        }),
        (10u8.., any::<u8>(), 0u32..=0x7fff_ffff, bytes(100)).prop_map(
            |(kind, flags, id, payload)| {
                Frame::Unknown(Unknown {
                    kind,
                    flags,
                    stream_id: StreamId::new(id),
                    payload,
                })
            }
        ),
    ]
}

fn roomy_decoder() -> Decoder {
    Decoder::new(DecoderConfig {
        max_header_list_size: 1 << 20,
        ..Default::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A sequence of frames through one encoder and one decoder (HPACK
    /// contexts carried across frames), delivered in arbitrary chunks.
    #[test]
    fn encode_then_decode_is_identity(
        frames in proptest::collection::vec(frame(), 1..8),
        chunk in 1usize..5000,
    ) {
        let mut encoder = Encoder::new();
        let mut wire = BytesMut::new();
        for frame in &frames {
            encoder.encode(frame, &mut wire);
        }
        let mut decoder = roomy_decoder();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                decoded.push(frame);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    /// Raw frames (field blocks as encoded fragments, CONTINUATION as is)
    /// through `decode_frame`.
    #[test]
    fn raw_encode_then_decode_frame_is_identity(
        id in stream_id(),
        end_headers in any::<bool>(),
        end_stream in any::<bool>(),
        pad_len in proptest::option::of(any::<u8>()),
        fragment in bytes(2000),
    ) {
        let frames = vec![
            Frame::Headers(Headers {
                stream_id: id, end_stream, end_headers, priority: None, pad_len,
                block: HeaderBlock::Encoded(fragment.clone()),
            }),
            Frame::Continuation(framer::Continuation { stream_id: id, end_headers, fragment: fragment.clone() }),
            Frame::PushPromise(PushPromise {
                stream_id: id, promised_id: StreamId::new(2), end_headers, pad_len,
                block: HeaderBlock::Encoded(fragment),
            }),
        ];
        for frame in frames {
            let mut wire = BytesMut::new();
            Encoder::new().encode(&frame, &mut wire);
            prop_assert_eq!(decode_frame(&mut wire, 16_384).unwrap(), Some(frame));
            prop_assert!(wire.is_empty());
        }
    }
}

#[test]
fn large_header_block_is_split_at_the_peer_max_frame_size() {
    let fields = vec![HeaderField::new("x-big", vec![b'~'; 50_000])]; // 13-bit Huffman code: sent raw
    let headers = Headers::new(StreamId::new(1), HeaderBlock::Fields(fields.clone()));
    let mut wire = BytesMut::new();
    Encoder::new().encode(&headers.clone().into(), &mut wire);
    // Walk the raw frames: HEADERS then CONTINUATIONs, each ≤ 16 KiB, only
    // the last with END_HEADERS.
    let mut raw = wire.clone();
    let mut kinds = Vec::new();
    while let Some(frame) = decode_frame(&mut raw, 16_384).unwrap() {
        kinds.push(match frame {
            Frame::Headers(h) => ("HEADERS", h.end_headers),
            Frame::Continuation(c) => ("CONTINUATION", c.end_headers),
            other => panic!("unexpected {other:?}"),
        });
    }
    assert!(kinds.len() >= 4, "{kinds:?}");
    assert_eq!(kinds[0], ("HEADERS", false));
    assert!(kinds[1..kinds.len() - 1]
        .iter()
        .all(|k| *k == ("CONTINUATION", false)));
    assert_eq!(kinds[kinds.len() - 1], ("CONTINUATION", true));
    let mut decoder = roomy_decoder();
    assert_eq!(
        decoder.decode(&mut wire).unwrap(),
        Some(Frame::Headers(headers))
    );

    // A larger peer MAX_FRAME_SIZE: one frame.
    let mut encoder = Encoder::new();
    encoder.set_max_frame_size(1 << 20);
    let mut wire = BytesMut::new();
    encoder.encode(
        &Headers::new(StreamId::new(1), HeaderBlock::Fields(fields)).into(),
        &mut wire,
    );
    let frame = decode_frame(&mut wire, 1 << 20).unwrap();
    assert!(matches!(frame, Some(Frame::Headers(h)) if h.end_headers));
}

#[test]
fn header_list_over_limit_is_refused_and_the_hpack_context_survives() {
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(DecoderConfig {
        max_header_list_size: 200,
        ..Default::default()
    });
    let big = vec![
        HeaderField::new(":path", "/svc/Method"),
        HeaderField::new("x-pad", vec![b'p'; 300]),
    ];
    let mut wire = BytesMut::new();
    encoder.encode(
        &Headers::new(StreamId::new(1), HeaderBlock::Fields(big)).into(),
        &mut wire,
    );
    let err = decoder.decode(&mut wire).unwrap_err();
    assert_eq!(err.scope, framer::Scope::Stream(StreamId::new(1)));
    assert_eq!(err.reason, Reason::REFUSED_STREAM);
    assert!(matches!(
        err.violation,
        framer::Violation::HeaderListTooLarge { limit: 200, .. }
    ));
    // The next block may index what the refused one added to the table.
    let small = vec![HeaderField::new(":path", "/svc/Method")];
    let headers = Headers::new(StreamId::new(3), HeaderBlock::Fields(small));
    encoder.encode(&headers.clone().into(), &mut wire);
    assert_eq!(
        decoder.decode(&mut wire).unwrap(),
        Some(Frame::Headers(headers))
    );
}

#[test]
fn invalid_hpack_is_a_connection_compression_error() {
    // Index 70 does not exist in an empty dynamic table.
    let mut wire = BytesMut::from(&[0, 0, 1, 1, 4, 0, 0, 0, 1, 0x80 | 70][..]);
    let err = Decoder::default().decode(&mut wire).unwrap_err();
    assert_eq!(err.scope, framer::Scope::Connection);
    assert_eq!(err.reason, Reason::COMPRESSION_ERROR);
    assert!(matches!(err.violation, framer::Violation::Compression(_)));
}

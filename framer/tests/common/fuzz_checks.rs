//! The checks behind the framer's fuzz targets, shared by `fuzz/` (under
//! libFuzzer) and `tests/corpus_replay.rs` (every committed corpus input,
//! on stable, in `cargo test`). A failed check panics: that is the signal.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use arbitrary::{Arbitrary, Unstructured};
use bytes::{BufMut, BytesMut};
use framer::hpack::{self, HeaderField, HpackError};
use framer::{
    decode_frame, Decoder, DecoderConfig, Encoder, Frame, HeaderBlock, Headers, PushPromise,
};

/// Names our HPACK encoder never indexes whatever the field says, so a
/// re-encoded field comes back sensitive. The encoder compares them ASCII
/// case-insensitively (`Encoder::is_never_indexed`), so `cOokie` and
/// `AUTHORIZATION` come back sensitive too: so must the expectation.
const ALWAYS_SENSITIVE: &[&[u8]] = &[b"authorization", b"proxy-authorization", b"cookie"];

fn normalize_fields(fields: &mut [HeaderField]) {
    for field in fields {
        if ALWAYS_SENSITIVE
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&field.name))
        {
            field.sensitive = true;
        }
    }
}

fn normalize(mut frame: Frame) -> Frame {
    match &mut frame {
        Frame::Headers(Headers {
            block: HeaderBlock::Fields(f),
            ..
        })
        | Frame::PushPromise(PushPromise {
            block: HeaderBlock::Fields(f),
            ..
        }) => normalize_fields(f),
        _ => {}
    }
    frame
}

fn roomy() -> DecoderConfig {
    DecoderConfig {
        max_header_list_size: u32::MAX,
        max_header_block_size: 1 << 24,
        max_continuation_frames: 1 << 16,
        ..DecoderConfig::default()
    }
}

/// `frame_decode`: arbitrary bytes into the connection decoder and into
/// `decode_frame`; every frame that decodes must re-encode and decode to
/// the same frame (through a second encoder/decoder pair whose HPACK
/// contexts stay in step).
pub fn frame_decode(data: &[u8]) {
    let mut input = BytesMut::from(data);
    let mut decoder = Decoder::default();
    let mut encoder = Encoder::new();
    let mut check = Decoder::new(roomy());
    loop {
        match decoder.decode(&mut input) {
            Ok(Some(frame)) => {
                assert!(
                    !matches!(frame, Frame::Continuation(_)),
                    "CONTINUATION leaked"
                );
                let mut wire = BytesMut::new();
                encoder.encode(&frame, &mut wire);
                let again = check.decode(&mut wire).expect("a re-encoded frame decodes");
                assert_eq!(again, Some(normalize(frame)), "re-encoded frame differs");
                assert!(wire.is_empty(), "re-encoded frame left bytes behind");
            }
            Ok(None) => break,
            Err(e) if e.is_connection_error() => break,
            Err(_) => continue,
        }
    }

    let mut input = BytesMut::from(data);
    loop {
        match decode_frame(&mut input, framer::DEFAULT_MAX_FRAME_SIZE) {
            Ok(Some(frame)) => {
                let mut wire = BytesMut::new();
                Encoder::new().encode(&frame, &mut wire);
                let again = decode_frame(&mut wire, framer::DEFAULT_MAX_FRAME_SIZE)
                    .expect("a re-encoded raw frame decodes");
                assert_eq!(again, Some(frame), "re-encoded raw frame differs");
                assert!(wire.is_empty());
            }
            Ok(None) => break,
            Err(e) if e.is_connection_error() => break,
            Err(_) => continue,
        }
    }
}

/// `hpack_decode`: the input is a sequence of header blocks, each prefixed
/// by a length octet; the first octet picks the header list limit. Each
/// block that decodes must respect the limit and survive our encoder →
/// decoder round trip.
pub fn hpack_decode(data: &[u8]) {
    let Some((&limit_sel, mut rest)) = data.split_first() else {
        return;
    };
    let limit = 64 + usize::from(limit_sel) * 64;
    let mut decoder = hpack::Decoder::new(4096);
    let mut encoder = hpack::Encoder::new();
    let mut check = hpack::Decoder::new(4096);
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (block, tail) = tail.split_at(len);
        rest = tail;
        match decoder.decode(block, limit) {
            Ok(mut fields) => {
                let size: usize = fields.iter().map(HeaderField::list_size).sum();
                assert!(size <= limit, "list of {size} passed the limit {limit}");
                normalize_fields(&mut fields);
                let mut wire = BytesMut::new();
                encoder.encode(&fields, &mut wire);
                let again = check
                    .decode(&wire, usize::MAX)
                    .expect("our encoding decodes");
                assert_eq!(again, fields, "hpack round trip differs");
            }
            Err(HpackError::ListTooLarge { size, limit: l }) => {
                assert_eq!(l, limit);
                assert!(size > limit);
            }
            Err(HpackError::Compression(_)) => break,
        }
    }
}

/// One piece of a `header_block` input.
#[derive(Arbitrary, Debug)]
pub enum Piece {
    /// A well-formed field block: HPACK-encoded by the harness, split into
    /// HEADERS + CONTINUATION at the given sizes.
    Block {
        stream: u8,
        end_stream: bool,
        pad: Option<u8>,
        fields: Vec<(Vec<u8>, Vec<u8>, bool)>,
        splits: Vec<u8>,
    },
    /// A HEADERS frame with an arbitrary fragment and flags.
    RawHeaders {
        stream: u8,
        flags: u8,
        fragment: Vec<u8>,
    },
    /// A CONTINUATION frame with an arbitrary fragment.
    RawContinuation {
        stream: u8,
        end_headers: bool,
        fragment: Vec<u8>,
    },
    /// Any other frame.
    Other {
        kind: u8,
        flags: u8,
        stream: u8,
        payload: Vec<u8>,
    },
}

fn put_frame(dst: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    dst.put_slice(&[len[1], len[2], len[3], kind, flags]);
    dst.put_u32(stream);
    dst.put_slice(payload);
}

/// `header_block`: arbitrary sequences of HEADERS / CONTINUATION / other
/// frames into a decoder with small limits. No panic; a well-formed-only
/// input decodes to exactly the blocks put in (or the limit errors).
pub fn header_block(data: &[u8]) {
    let Ok(pieces) = Vec::<Piece>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let config = DecoderConfig {
        max_header_list_size: 1024,
        max_header_block_size: 2048,
        max_continuation_frames: 8,
        ..DecoderConfig::default()
    };
    let mut wire = BytesMut::new();
    let mut hpack = hpack::Encoder::new();
    let mut expected = Vec::new();
    let mut well_formed = true;
    for piece in &pieces {
        match piece {
            Piece::Block {
                stream,
                end_stream,
                pad,
                fields,
                splits,
            } => {
                let stream = u32::from(*stream) * 2 + 1;
                let mut fields: Vec<HeaderField> = fields
                    .iter()
                    .take(32)
                    .map(|(n, v, s)| HeaderField {
                        name: n.clone().into(),
                        value: v.clone().into(),
                        sensitive: *s,
                    })
                    .collect();
                let mut block = BytesMut::new();
                hpack.encode(&fields, &mut block);
                normalize_fields(&mut fields);
                expected.push((stream, *end_stream, fields));
                let mut rest = &block[..];
                let mut first = true;
                let mut cuts = splits.iter();
                loop {
                    let cut = cuts
                        .next()
                        .map_or(rest.len(), |c| usize::from(*c).min(rest.len()));
                    let (chunk, tail) = rest.split_at(cut);
                    rest = tail;
                    let end = if rest.is_empty() { 0x4 } else { 0 };
                    if first {
                        let mut payload = Vec::new();
                        let mut flags = end;
                        if *end_stream {
                            flags |= 0x1;
                        }
                        if let Some(p) = pad {
                            flags |= 0x8;
                            payload.push(*p);
                        }
                        payload.extend_from_slice(chunk);
                        payload.resize(payload.len() + pad.map_or(0, usize::from), 0);
                        put_frame(&mut wire, 0x1, flags, stream, &payload);
                        first = false;
                    } else {
                        put_frame(&mut wire, 0x9, end, stream, chunk);
                    }
                    if rest.is_empty() {
                        break;
                    }
                }
            }
            Piece::RawHeaders {
                stream,
                flags,
                fragment,
            } => {
                well_formed = false;
                put_frame(&mut wire, 0x1, *flags, u32::from(*stream), fragment);
            }
            Piece::RawContinuation {
                stream,
                end_headers,
                fragment,
            } => {
                well_formed = false;
                let flags = if *end_headers { 0x4 } else { 0 };
                put_frame(&mut wire, 0x9, flags, u32::from(*stream), fragment);
            }
            Piece::Other {
                kind,
                flags,
                stream,
                payload,
            } => {
                well_formed = false;
                put_frame(&mut wire, *kind, *flags, u32::from(*stream), payload);
            }
        }
    }

    let mut decoder = Decoder::new(config);
    let mut expected = expected.into_iter();
    let mut connection_error = false;
    loop {
        match decoder.decode(&mut wire) {
            Ok(Some(Frame::Headers(h))) if well_formed => {
                let (stream, end_stream, fields) =
                    expected.next().expect("no more blocks were sent");
                assert_eq!(h.stream_id.value(), stream);
                assert_eq!(h.end_stream, end_stream);
                assert_eq!(h.block, HeaderBlock::Fields(fields));
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) if e.is_connection_error() => {
                connection_error = true;
                break;
            }
            Err(_) if well_formed => {
                // A stream error on a well-formed block: the list limit.
                expected.next();
            }
            Err(_) => {}
        }
    }
    if well_formed && !connection_error {
        // Every block the harness sent came out (or was refused).
        assert!(wire.is_empty(), "{} octets left undecoded", wire.len());
        assert!(!decoder.in_header_block());
        assert!(expected.next().is_none(), "a sent block never came out");
    }
}

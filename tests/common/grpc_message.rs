//! The `grpc_message` fuzz check: a peer's stream bytes into gRPC message
//! framing (`grpc::MessageDecoder`, PROTOCOL-HTTP2.md
//! "Length-Prefixed-Message") and gzip inflation (`grpc::decompress`).
//! Shared by `fuzz/fuzz_targets/grpc_message.rs` and
//! `tests/fuzz_corpus_replay.rs` (which replays the corpus), so it uses
//! nothing but `mio_grpc` and `bytes`.
//!
//! Input layout: byte 0 picks the receive limit (bits 0–2) and whether the
//! rest is also inflated as one gzip body (bit 3); byte 1 seeds the chunk
//! sizes; the rest is the stream.
//!
//! Checked, besides no panic:
//!
//! - every message is within the limit, and the decoder holds at most one
//!   partial message and a prefix once it asks for more;
//! - framing again what was decoded gives back exactly the input up to
//!   where decoding stopped, and what is left there is an incomplete
//!   message (or the bad prefix the error names);
//! - the result does not depend on how the stream was cut into chunks;
//! - errors are sticky and release what was held;
//! - `decompress` never returns more than its limit, agrees with a larger
//!   limit, and what it inflates survives a compress → decompress trip.

use bytes::{Bytes, BytesMut};
use mio_grpc::grpc::{
    compress, decompress, encode_message, CompressionError, Encoding, MessageDecoder, MessageError,
    RawMessage, PREFIX_LEN,
};

/// The receive limits byte 0 picks from.
const LIMITS: [usize; 8] = [0, 1, 5, 16, 100, 1024, 65_536, 4 << 20];
/// The larger limit `decompress` is compared against.
const WIDE_LIMIT: usize = 1 << 20;

/// Runs one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let [mode, seed, stream @ ..] = data else {
        return;
    };
    let max_len = LIMITS[usize::from(mode & 7)];
    let (messages, end) = decode_in_chunks(stream, max_len, *seed);
    let (whole, whole_end) = decode_in_chunks(stream, max_len, 0xff);
    assert_eq!(messages, whole, "messages depend on the chunking");
    assert_eq!(end, whole_end, "the outcome depends on the chunking");
    check_reframing(stream, max_len, &messages, end);
    for message in &messages {
        if message.compressed {
            check_gzip(&message.payload, max_len);
        } else {
            check_round_trip(&message.payload, max_len);
        }
    }
    if mode & 8 == 8 {
        check_gzip(stream, max_len.min(WIDE_LIMIT / 2));
    }
}

/// Feeds `stream` in chunks of sizes from `seed` (0xff: one chunk), taking
/// messages after each; returns them and how the stream ended.
fn decode_in_chunks(
    stream: &[u8],
    max_len: usize,
    seed: u8,
) -> (Vec<RawMessage>, Result<(), MessageError>) {
    let mut decoder = MessageDecoder::new(max_len);
    let mut messages = Vec::new();
    let mut rest = stream;
    let mut turn = 0usize;
    while !rest.is_empty() {
        let size = if seed == 0xff {
            rest.len()
        } else {
            // 1..=8 octets, varied per turn: prefixes and payloads split
            // at every place.
            1 + (usize::from(seed).wrapping_add(turn * 7) % 8)
        };
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        turn += 1;
        decoder.push(Bytes::copy_from_slice(chunk));
        loop {
            match decoder.next() {
                Ok(Some(message)) => {
                    assert!(
                        message.payload.len() <= max_len,
                        "a message of {} octets passed the limit {max_len}",
                        message.payload.len()
                    );
                    messages.push(message);
                }
                Ok(None) => {
                    assert!(
                        decoder.buffered() < max_len + PREFIX_LEN,
                        "{} octets held waiting, limit {max_len}",
                        decoder.buffered()
                    );
                    break;
                }
                Err(err) => {
                    assert_eq!(decoder.buffered(), 0, "an error kept octets");
                    assert_eq!(decoder.next(), Err(err), "errors are sticky");
                    decoder.push(Bytes::from_static(b"\x00\x00\x00\x00\x00"));
                    assert_eq!(decoder.buffered(), 0, "a push after an error kept octets");
                    assert_eq!(decoder.finish(), Err(err), "errors are sticky");
                    return (messages, Err(err));
                }
            }
        }
    }
    let end = decoder.finish();
    (messages, end)
}

/// Framing the messages again gives the stream up to where decoding
/// stopped; the rest is what the outcome says it is.
fn check_reframing(
    stream: &[u8],
    max_len: usize,
    messages: &[RawMessage],
    end: Result<(), MessageError>,
) {
    let mut framed = BytesMut::new();
    for message in messages {
        encode_message(&message.payload, message.compressed, &mut framed)
            .expect("a decoded message frames");
    }
    assert!(
        stream.starts_with(&framed),
        "framing the decoded messages again differs from the stream"
    );
    let rest = &stream[framed.len()..];
    let declared =
        |prefix: &[u8]| u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    match end {
        Ok(()) => assert!(rest.is_empty(), "{} octets unaccounted for", rest.len()),
        Err(MessageError::Truncated) => {
            assert!(!rest.is_empty(), "Truncated with nothing left");
            if rest.len() >= PREFIX_LEN {
                assert!(
                    rest.len() - PREFIX_LEN < declared(rest),
                    "Truncated but the message is all there"
                );
            }
        }
        Err(MessageError::BadFlag(flag)) => {
            assert!(rest.len() >= PREFIX_LEN);
            assert_eq!(rest[0], flag);
            assert!(flag > 1);
        }
        Err(MessageError::TooLarge { len, max }) => {
            assert!(rest.len() >= PREFIX_LEN);
            assert!(rest[0] <= 1);
            assert_eq!(declared(rest), len);
            assert_eq!(max, max_len);
            assert!(len > max_len);
        }
    }
}

/// An uncompressed payload survives gzip within the limit.
fn check_round_trip(payload: &[u8], max_len: usize) {
    let packed = compress(Encoding::Gzip, payload).expect("compressing to memory");
    let unpacked = decompress(Encoding::Gzip, &packed, max_len).expect("our own gzip inflates");
    assert_eq!(&unpacked[..], payload, "gzip round trip differs");
    let copy = decompress(Encoding::Identity, payload, max_len).expect("identity within limit");
    assert_eq!(&copy[..], payload);
}

/// `data` as a gzip body: bounded by the limit, in agreement with a wider
/// limit, and what inflates survives a round trip.
fn check_gzip(data: &[u8], max_len: usize) {
    let narrow = decompress(Encoding::Gzip, data, max_len);
    if let Ok(out) = &narrow {
        assert!(
            out.len() <= max_len,
            "{} octets inflated, limit {max_len}",
            out.len()
        );
    }
    let wide = decompress(Encoding::Gzip, data, WIDE_LIMIT.max(max_len));
    match (&narrow, &wide) {
        (Ok(out), wide) => assert_eq!(wide.as_ref(), Ok(out), "a wider limit inflates otherwise"),
        (Err(CompressionError::TooLarge { max }), Ok(out)) => {
            assert_eq!(*max, max_len);
            assert!(out.len() > max_len, "TooLarge for {} octets", out.len());
        }
        (Err(CompressionError::TooLarge { .. }), Err(_)) => {}
        (Err(CompressionError::Corrupt(_)), Err(CompressionError::Corrupt(_))) => {}
        (Err(narrow), wide) => panic!("limit {max_len}: {narrow:?}, wider: {wide:?}"),
    }
    if let Ok(out) = narrow {
        check_round_trip(&out, max_len);
    }
}

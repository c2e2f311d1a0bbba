//! One test per rule a single frame can break (RFC 9113 §3.4, §4, §5.3.1,
//! §6), asserting the exact violation, scope and error code.

mod common;

use bytes::BytesMut;
use common::raw::*;
use framer::{
    decode_frame, read_preface, Decoder, DecoderConfig, Frame, FrameError, Kind, Reason, Scope,
    StreamId, Violation,
};

fn decode_one(mut buf: BytesMut) -> Result<Option<Frame>, FrameError> {
    Decoder::default().decode(&mut buf)
}

fn expect_err(buf: BytesMut) -> FrameError {
    match decode_one(buf) {
        Err(e) => e,
        Ok(frame) => panic!("expected an error, decoded {frame:?}"),
    }
}

fn conn(reason: Reason, violation: Violation) -> FrameError {
    FrameError {
        scope: Scope::Connection,
        reason,
        violation,
    }
}

fn stream(id: u32, reason: Reason, violation: Violation) -> FrameError {
    FrameError {
        scope: Scope::Stream(StreamId::new(id)),
        reason,
        violation,
    }
}

// §3.4 ----------------------------------------------------------------------

#[test]
fn sec3_4_preface_accepted_in_pieces() {
    let mut buf = BytesMut::new();
    for byte in framer::PREFACE.iter() {
        assert_eq!(read_preface(&mut buf), Ok(false));
        buf.extend_from_slice(&[*byte]);
    }
    buf.extend_from_slice(b"rest");
    assert_eq!(read_preface(&mut buf), Ok(true));
    assert_eq!(&buf[..], b"rest");
}

#[test]
fn sec3_4_invalid_preface_is_protocol_error_at_first_wrong_byte() {
    let mut buf = BytesMut::from(&b"PRI * HTTP/1.1"[..]);
    assert_eq!(
        read_preface(&mut buf),
        Err(conn(Reason::PROTOCOL_ERROR, Violation::BadPreface))
    );
}

// §4.1, §4.2 ------------------------------------------------------------------

#[test]
fn sec4_1_reserved_bit_in_stream_id_is_ignored() {
    let frame = decode_one(raw(RST_STREAM, 0, 0x8000_0005, &[0, 0, 0, 8])).unwrap();
    let Some(Frame::RstStream(rst)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(rst.stream_id, StreamId::new(5));
    assert_eq!(rst.reason, Reason::CANCEL);
}

#[test]
fn sec4_1_undefined_flags_are_ignored() {
    let frame = decode_one(raw(PING, 0xfe, 0, &[1; 8])).unwrap();
    assert_eq!(frame, Some(Frame::Ping(framer::Ping::new([1; 8]))));
}

#[test]
fn sec4_2_frame_over_max_frame_size_is_frame_size_error_before_payload() {
    // Only the 9-octet header is here: the error must not wait for 16 KiB.
    let err = expect_err(raw_len(16_385, DATA, 0, 1, &[]));
    assert_eq!(
        err,
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::FrameTooLarge {
                kind: Kind::Data,
                length: 16_385,
                max: 16_384
            }
        )
    );
}

#[test]
fn sec4_2_frame_at_max_frame_size_is_accepted() {
    let payload = vec![7u8; 16_384];
    let frame = decode_one(raw(DATA, 0, 1, &payload)).unwrap();
    let Some(Frame::Data(data)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(data.payload.len(), 16_384);
}

#[test]
fn sec4_2_raised_max_frame_size_is_honoured() {
    let mut decoder = Decoder::new(DecoderConfig {
        max_frame_size: 1 << 20,
        ..Default::default()
    });
    let mut buf = raw(DATA, 0, 1, &vec![0u8; 100_000]);
    assert!(matches!(decoder.decode(&mut buf), Ok(Some(Frame::Data(_)))));
    let err = decode_frame(&mut raw_len((1 << 20) + 1, DATA, 0, 1, &[]), 1 << 20).unwrap_err();
    assert_eq!(err.reason, Reason::FRAME_SIZE_ERROR);
}

#[test]
fn sec4_2_partial_frame_waits_for_more_bytes() {
    let whole = raw(WINDOW_UPDATE, 0, 3, &[0, 0, 0, 9]);
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::new();
    for (i, byte) in whole.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        let got = decoder.decode(&mut buf).unwrap();
        if i + 1 < whole.len() {
            assert_eq!(got, None, "after {} bytes", i + 1);
        } else {
            assert_eq!(
                got,
                Some(Frame::WindowUpdate(framer::WindowUpdate::new(
                    StreamId::new(3),
                    9
                )))
            );
        }
    }
    assert!(buf.is_empty());
}

// §6.1 DATA -------------------------------------------------------------------

#[test]
fn sec6_1_data_on_stream_zero_is_protocol_error() {
    assert_eq!(
        expect_err(raw(DATA, 0, 0, b"x")),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdRequired { kind: Kind::Data }
        )
    );
}

#[test]
fn sec6_1_data_pad_length_equal_to_payload_is_protocol_error() {
    // Payload 4 octets: pad length octet + 3; a pad length of 4 ≥ 4.
    assert_eq!(
        expect_err(raw(DATA, PADDED, 1, &[4, 0, 0, 0])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::PaddingTooLong {
                kind: Kind::Data,
                pad_len: 4,
                length: 4
            }
        )
    );
}

#[test]
fn sec6_1_data_padded_without_pad_length_octet_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(DATA, PADDED, 1, &[])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::FrameTooShort {
                kind: Kind::Data,
                length: 0
            }
        )
    );
}

#[test]
fn sec6_1_data_padding_is_stripped_and_counted_for_flow_control() {
    let frame = decode_one(raw(DATA, PADDED | END_STREAM, 1, &[3, b'h', b'i', 0, 0, 0])).unwrap();
    let Some(Frame::Data(data)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(&data.payload[..], b"hi");
    assert_eq!(data.pad_len, Some(3));
    assert!(data.end_stream);
    assert_eq!(data.flow_len(), 6);
}

#[test]
fn sec6_1_data_payload_is_not_copied() {
    let mut buf = raw(DATA, 0, 1, &[9u8; 1000]);
    let start = buf.as_ptr() as usize;
    let frame = Decoder::default().decode(&mut buf).unwrap();
    let Some(Frame::Data(data)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(
        data.payload.as_ptr() as usize,
        start + 9,
        "payload must point into the read buffer"
    );
}

// §6.2 HEADERS ----------------------------------------------------------------

#[test]
fn sec6_2_headers_on_stream_zero_is_protocol_error() {
    assert_eq!(
        expect_err(raw(HEADERS, END_HEADERS, 0, STATUS_200)),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdRequired {
                kind: Kind::Headers
            }
        )
    );
}

#[test]
fn sec6_2_headers_pad_length_too_long_is_protocol_error() {
    assert_eq!(
        expect_err(raw(HEADERS, END_HEADERS | PADDED, 1, &[2, 0x88])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::PaddingTooLong {
                kind: Kind::Headers,
                pad_len: 2,
                length: 2
            }
        )
    );
}

#[test]
fn sec6_2_headers_with_priority_flag_shorter_than_5_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(HEADERS, END_HEADERS | PRIORITY_FLAG, 1, &[0, 0, 0, 3])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::FrameTooShort {
                kind: Kind::Headers,
                length: 4
            }
        )
    );
}

#[test]
fn sec5_3_1_headers_depending_on_own_stream_is_stream_protocol_error() {
    let mut payload = vec![0, 0, 0, 3, 15];
    payload.extend_from_slice(STATUS_200);
    let mut decoder = Decoder::default();
    let mut buf = raw(HEADERS, END_HEADERS | PRIORITY_FLAG, 3, &payload);
    assert_eq!(
        decoder.decode(&mut buf).unwrap_err(),
        stream(3, Reason::PROTOCOL_ERROR, Violation::SelfDependency)
    );
    // A stream error: the decoder goes on.
    let mut next = raw(PING, 0, 0, &[0; 8]);
    assert!(matches!(
        decoder.decode(&mut next),
        Ok(Some(Frame::Ping(_)))
    ));
}

// §6.3 PRIORITY ---------------------------------------------------------------

#[test]
fn sec6_3_priority_on_stream_zero_is_protocol_error() {
    assert_eq!(
        expect_err(raw(PRIORITY, 0, 0, &[0, 0, 0, 1, 16])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdRequired {
                kind: Kind::Priority
            }
        )
    );
}

#[test]
fn sec6_3_priority_length_not_5_is_stream_frame_size_error() {
    let mut decoder = Decoder::default();
    let mut buf = raw(PRIORITY, 0, 5, &[0, 0, 0, 1]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap_err(),
        stream(
            5,
            Reason::FRAME_SIZE_ERROR,
            Violation::PriorityLength { length: 4 }
        )
    );
    assert!(buf.is_empty(), "the bad frame is consumed");
    let mut next = raw(PRIORITY, 0, 5, &[0x80, 0, 0, 1, 200]);
    let frame = decoder.decode(&mut next).unwrap();
    let Some(Frame::Priority(p)) = frame else {
        panic!("{frame:?}")
    };
    assert!(p.dependency.exclusive);
    assert_eq!(p.dependency.dependency, StreamId::new(1));
    assert_eq!(p.dependency.weight, 200);
}

#[test]
fn sec5_3_1_priority_depending_on_own_stream_is_stream_protocol_error() {
    assert_eq!(
        expect_err(raw(PRIORITY, 0, 7, &[0, 0, 0, 7, 16])),
        stream(7, Reason::PROTOCOL_ERROR, Violation::SelfDependency)
    );
}

// §6.4 RST_STREAM -------------------------------------------------------------

#[test]
fn sec6_4_rst_stream_on_stream_zero_is_protocol_error() {
    assert_eq!(
        expect_err(raw(RST_STREAM, 0, 0, &[0, 0, 0, 8])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdRequired {
                kind: Kind::RstStream
            }
        )
    );
}

#[test]
fn sec6_4_rst_stream_length_not_4_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(RST_STREAM, 0, 1, &[0, 0, 0, 0, 8])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::RstStreamLength { length: 5 }
        )
    );
}

#[test]
fn sec7_unknown_error_code_survives() {
    let frame = decode_one(raw(RST_STREAM, 0, 1, &[0, 0, 0xbe, 0xef])).unwrap();
    let Some(Frame::RstStream(rst)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(rst.reason.code(), 0xbeef);
    assert_eq!(rst.reason.name(), None);
}

// §6.5 SETTINGS ---------------------------------------------------------------

#[test]
fn sec6_5_settings_on_a_stream_is_protocol_error() {
    assert_eq!(
        expect_err(raw(SETTINGS, 0, 1, &[])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdForbidden {
                kind: Kind::Settings,
                stream_id: StreamId::new(1)
            }
        )
    );
}

#[test]
fn sec6_5_settings_length_not_multiple_of_6_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(SETTINGS, 0, 0, &[0, 3, 0, 0, 0])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::SettingsLength { length: 5 }
        )
    );
}

#[test]
fn sec6_5_settings_ack_with_payload_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(SETTINGS, ACK, 0, &[0, 3, 0, 0, 0, 1])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::SettingsAckWithPayload { length: 6 }
        )
    );
}

#[test]
fn sec6_5_settings_ack_decodes() {
    assert_eq!(
        decode_one(raw(SETTINGS, ACK, 0, &[])).unwrap(),
        Some(Frame::Settings(framer::Settings::ack()))
    );
}

#[test]
fn sec6_5_2_enable_push_above_1_is_protocol_error() {
    assert_eq!(
        expect_err(raw(SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 2])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::InvalidEnablePush { value: 2 }
        )
    );
}

#[test]
fn rfc8441_enable_connect_protocol_above_1_is_protocol_error() {
    assert_eq!(
        expect_err(raw(SETTINGS, 0, 0, &[0, 8, 0, 0, 0, 2])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::InvalidEnableConnectProtocol { value: 2 }
        )
    );
}

#[test]
fn sec6_5_2_initial_window_size_above_2_31_minus_1_is_flow_control_error() {
    assert_eq!(
        expect_err(raw(SETTINGS, 0, 0, &[0, 4, 0x80, 0, 0, 0])),
        conn(
            Reason::FLOW_CONTROL_ERROR,
            Violation::InvalidInitialWindowSize { value: 1 << 31 }
        )
    );
    // 2^31 - 1 itself is fine.
    let frame = decode_one(raw(SETTINGS, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff])).unwrap();
    let Some(Frame::Settings(s)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(s.initial_window_size(), Some(0x7fff_ffff));
}

#[test]
fn sec6_5_2_max_frame_size_below_16384_is_protocol_error() {
    assert_eq!(
        expect_err(raw(SETTINGS, 0, 0, &[0, 5, 0, 0, 0x3f, 0xff])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::InvalidMaxFrameSize { value: 16_383 }
        )
    );
}

#[test]
fn sec6_5_2_max_frame_size_above_2_24_minus_1_is_protocol_error() {
    assert_eq!(
        expect_err(raw(SETTINGS, 0, 0, &[0, 5, 0x01, 0, 0, 0])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::InvalidMaxFrameSize { value: 1 << 24 }
        )
    );
}

#[test]
fn sec6_5_2_unknown_setting_is_ignored() {
    let frame = decode_one(raw(
        SETTINGS,
        0,
        0,
        &[0xff, 0x10, 0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0, 0, 9],
    ))
    .unwrap();
    let Some(Frame::Settings(s)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(s.max_concurrent_streams(), Some(9));
    assert_eq!(s.get(framer::SettingId(0xff10)), Some(u32::MAX));
}

#[test]
fn sec6_5_3_last_value_of_a_repeated_setting_wins() {
    let frame = decode_one(raw(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 1, 0, 3, 0, 0, 0, 2])).unwrap();
    let Some(Frame::Settings(s)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(s.max_concurrent_streams(), Some(2));
}

// §6.6 PUSH_PROMISE -----------------------------------------------------------

#[test]
fn sec6_6_push_promise_on_stream_zero_is_protocol_error() {
    assert_eq!(
        expect_err(raw(PUSH_PROMISE, END_HEADERS, 0, &[0, 0, 0, 2, 0x88])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdRequired {
                kind: Kind::PushPromise
            }
        )
    );
}

#[test]
fn sec6_6_push_promise_without_promised_id_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 2])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::FrameTooShort {
                kind: Kind::PushPromise,
                length: 3
            }
        )
    );
}

#[test]
fn sec6_6_push_promise_pad_length_too_long_is_protocol_error() {
    assert_eq!(
        expect_err(raw(PUSH_PROMISE, END_HEADERS | PADDED, 1, &[5, 0, 0, 0, 2])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::PaddingTooLong {
                kind: Kind::PushPromise,
                pad_len: 5,
                length: 5
            }
        )
    );
}

// §6.7 PING -------------------------------------------------------------------

#[test]
fn sec6_7_ping_on_a_stream_is_protocol_error() {
    assert_eq!(
        expect_err(raw(PING, 0, 1, &[0; 8])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdForbidden {
                kind: Kind::Ping,
                stream_id: StreamId::new(1)
            }
        )
    );
}

#[test]
fn sec6_7_ping_length_not_8_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(PING, 0, 0, &[0; 7])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::PingLength { length: 7 }
        )
    );
}

#[test]
fn sec6_7_ping_ack_flag_is_read() {
    assert_eq!(
        decode_one(raw(PING, ACK, 0, b"abcdefgh")).unwrap(),
        Some(Frame::Ping(framer::Ping::pong(*b"abcdefgh")))
    );
}

// §6.8 GOAWAY -----------------------------------------------------------------

#[test]
fn sec6_8_goaway_on_a_stream_is_protocol_error() {
    assert_eq!(
        expect_err(raw(GOAWAY, 0, 3, &[0; 8])),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdForbidden {
                kind: Kind::GoAway,
                stream_id: StreamId::new(3)
            }
        )
    );
}

#[test]
fn sec6_8_goaway_shorter_than_8_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(GOAWAY, 0, 0, &[0; 7])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::FrameTooShort {
                kind: Kind::GoAway,
                length: 7
            }
        )
    );
}

#[test]
fn sec6_8_goaway_carries_debug_data() {
    let mut payload = vec![0x80, 0, 0, 5, 0, 0, 0, 0xb];
    payload.extend_from_slice(b"too_many_pings");
    let frame = decode_one(raw(GOAWAY, 0, 0, &payload)).unwrap();
    let Some(Frame::GoAway(g)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(g.last_stream_id, StreamId::new(5), "reserved bit ignored");
    assert_eq!(g.reason, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(&g.debug_data[..], b"too_many_pings");
}

// §6.9 WINDOW_UPDATE ----------------------------------------------------------

#[test]
fn sec6_9_window_update_length_not_4_is_frame_size_error() {
    assert_eq!(
        expect_err(raw(WINDOW_UPDATE, 0, 1, &[0, 0, 1])),
        conn(
            Reason::FRAME_SIZE_ERROR,
            Violation::WindowUpdateLength { length: 3 }
        )
    );
}

#[test]
fn sec6_9_window_update_zero_increment_on_stream_is_stream_error() {
    let mut decoder = Decoder::default();
    let mut buf = raw(WINDOW_UPDATE, 0, 1, &[0, 0, 0, 0]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap_err(),
        stream(1, Reason::PROTOCOL_ERROR, Violation::ZeroWindowIncrement)
    );
    let mut next = raw(WINDOW_UPDATE, 0, 1, &[0, 0, 0, 1]);
    assert!(matches!(
        decoder.decode(&mut next),
        Ok(Some(Frame::WindowUpdate(_)))
    ));
}

#[test]
fn sec6_9_window_update_zero_increment_on_connection_is_connection_error() {
    assert_eq!(
        expect_err(raw(WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0])),
        conn(Reason::PROTOCOL_ERROR, Violation::ZeroWindowIncrement)
    );
}

#[test]
fn sec6_9_window_update_reserved_bit_is_ignored() {
    // 0x80000000 alone: the increment is 0 once the reserved bit is masked.
    assert_eq!(
        expect_err(raw(WINDOW_UPDATE, 0, 0, &[0x80, 0, 0, 0])),
        conn(Reason::PROTOCOL_ERROR, Violation::ZeroWindowIncrement)
    );
    let frame = decode_one(raw(WINDOW_UPDATE, 0, 0, &[0xff, 0xff, 0xff, 0xff])).unwrap();
    let Some(Frame::WindowUpdate(w)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(w.increment, 0x7fff_ffff);
}

// §6.10 CONTINUATION, §4.3 -----------------------------------------------------

#[test]
fn sec6_10_continuation_without_open_block_is_protocol_error() {
    assert_eq!(
        expect_err(raw(CONTINUATION, END_HEADERS, 1, STATUS_200)),
        conn(Reason::PROTOCOL_ERROR, Violation::UnexpectedContinuation)
    );
}

#[test]
fn sec6_10_continuation_after_complete_headers_is_protocol_error() {
    let mut buf = raw(HEADERS, END_HEADERS, 1, STATUS_200);
    buf.extend_from_slice(&raw(CONTINUATION, END_HEADERS, 1, &[]));
    let mut decoder = Decoder::default();
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Frame::Headers(_)))
    ));
    assert_eq!(
        decoder.decode(&mut buf).unwrap_err(),
        conn(Reason::PROTOCOL_ERROR, Violation::UnexpectedContinuation)
    );
}

#[test]
fn sec6_10_continuation_on_stream_zero_is_protocol_error() {
    let err = decode_frame(&mut raw(CONTINUATION, 0, 0, &[]), 16_384).unwrap_err();
    assert_eq!(
        err,
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::StreamIdRequired {
                kind: Kind::Continuation
            }
        )
    );
}

#[test]
fn sec6_10_other_frame_inside_header_block_is_protocol_error() {
    let mut buf = raw(HEADERS, 0, 1, &[]);
    buf.extend_from_slice(&raw(PING, 0, 0, &[0; 8]));
    assert_eq!(
        expect_err(buf),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::InterruptedHeaderBlock {
                kind: Kind::Ping,
                stream_id: StreamId::ZERO
            }
        )
    );
}

#[test]
fn sec6_10_continuation_on_other_stream_inside_header_block_is_protocol_error() {
    let mut buf = raw(HEADERS, 0, 1, &[]);
    buf.extend_from_slice(&raw(CONTINUATION, END_HEADERS, 3, STATUS_200));
    assert_eq!(
        expect_err(buf),
        conn(
            Reason::PROTOCOL_ERROR,
            Violation::InterruptedHeaderBlock {
                kind: Kind::Continuation,
                stream_id: StreamId::new(3)
            }
        )
    );
}

#[test]
fn sec6_10_unknown_frame_inside_header_block_is_protocol_error() {
    let mut buf = raw(HEADERS, 0, 1, &[]);
    buf.extend_from_slice(&raw(0xfa, 0, 1, &[]));
    assert_eq!(
        expect_err(buf).violation,
        Violation::InterruptedHeaderBlock {
            kind: Kind::Unknown(0xfa),
            stream_id: StreamId::new(1)
        }
    );
}

#[test]
fn sec6_10_interruption_is_detected_from_the_frame_header_alone() {
    let mut buf = raw(HEADERS, 0, 1, &[]);
    // A DATA frame header claiming 16 KiB, none of its payload sent.
    buf.extend_from_slice(&raw_len(16_384, DATA, 0, 1, &[]));
    assert_eq!(expect_err(buf).reason, Reason::PROTOCOL_ERROR);
}

#[test]
fn sec4_3_continuation_flood_is_bounded_in_frame_count() {
    let config = DecoderConfig {
        max_continuation_frames: 10,
        ..Default::default()
    };
    let mut decoder = Decoder::new(config);
    let mut buf = raw(HEADERS, 0, 1, &[]);
    for _ in 0..11 {
        buf.extend_from_slice(&raw(CONTINUATION, 0, 1, &[]));
    }
    assert_eq!(
        decoder.decode(&mut buf).unwrap_err(),
        conn(
            Reason::ENHANCE_YOUR_CALM,
            Violation::TooManyContinuations { limit: 10 }
        )
    );
}

#[test]
fn sec4_3_continuation_flood_is_bounded_in_octets() {
    let config = DecoderConfig {
        max_header_block_size: 40_000,
        ..Default::default()
    };
    let mut decoder = Decoder::new(config);
    let chunk = vec![0x88u8; 16_000];
    let mut buf = raw(HEADERS, 0, 1, &chunk);
    buf.extend_from_slice(&raw(CONTINUATION, 0, 1, &chunk));
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        None,
        "32,000 octets buffered is within the limit"
    );
    buf.extend_from_slice(&raw(CONTINUATION, 0, 1, &chunk));
    assert_eq!(
        decoder.decode(&mut buf).unwrap_err(),
        conn(
            Reason::ENHANCE_YOUR_CALM,
            Violation::HeaderBlockTooLarge {
                size: 48_000,
                limit: 40_000
            }
        )
    );
}

#[test]
fn sec4_3_first_fragment_over_block_limit_is_rejected() {
    let config = DecoderConfig {
        max_header_block_size: 100,
        ..Default::default()
    };
    let mut decoder = Decoder::new(config);
    let mut buf = raw(HEADERS, 0, 1, &[0x88; 101]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap_err().violation,
        Violation::HeaderBlockTooLarge {
            size: 101,
            limit: 100
        }
    );
}

// §5.5 ------------------------------------------------------------------------

#[test]
fn sec5_5_unknown_frame_type_is_carried() {
    let frame = decode_one(raw(0x42, 0x7, 9, b"ext")).unwrap();
    let Some(Frame::Unknown(u)) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(
        (u.kind, u.flags, u.stream_id, &u.payload[..]),
        (0x42, 0x7, StreamId::new(9), &b"ext"[..])
    );
}

#[test]
fn sec4_2_unknown_frame_type_is_still_bounded_by_max_frame_size() {
    assert_eq!(
        expect_err(raw_len(20_000, 0x42, 0, 0, &[])).reason,
        Reason::FRAME_SIZE_ERROR
    );
}

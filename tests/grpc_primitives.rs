//! The shared gRPC primitives (`mio_grpc::grpc`) against the wire spec:
//! grpc/grpc `doc/PROTOCOL-HTTP2.md`, `doc/statuscodes.md` and
//! `doc/http-grpc-status-mapping.md`.
//!
//! Status codes and their mappings, percent-encoding of `grpc-message`,
//! trailers, metadata, `grpc-timeout`, length-prefixed messages across
//! arbitrary DATA boundaries, and bounded gzip.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mio_grpc::framer::hpack::{HeaderField, HeaderList};
use mio_grpc::framer::Reason;
use mio_grpc::grpc::base64;
use mio_grpc::grpc::{
    accept_encoding_header, compress, decompress, encode_message, format_timeout, message_prefix,
    parse_timeout, percent_decode, percent_encode, Code, CompressionError, Encoding,
    MessageDecoder, MessageError, Metadata, MetadataError, MetadataValue, RawMessage, Status,
    TimeoutError,
};
use proptest::prelude::*;

fn field(name: &'static str, value: impl Into<Bytes>) -> HeaderField {
    HeaderField::new(name, value)
}

fn find<'a>(headers: &'a [HeaderField], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|f| f.name.as_ref() == name.as_bytes())
        .map(|f| f.value.as_ref())
}

// ---------------------------------------------------------------------------
// Codes (statuscodes.md)

const ALL_CODES: [(i32, Code, &str); 17] = [
    (0, Code::Ok, "OK"),
    (1, Code::Cancelled, "CANCELLED"),
    (2, Code::Unknown, "UNKNOWN"),
    (3, Code::InvalidArgument, "INVALID_ARGUMENT"),
    (4, Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
    (5, Code::NotFound, "NOT_FOUND"),
    (6, Code::AlreadyExists, "ALREADY_EXISTS"),
    (7, Code::PermissionDenied, "PERMISSION_DENIED"),
    (8, Code::ResourceExhausted, "RESOURCE_EXHAUSTED"),
    (9, Code::FailedPrecondition, "FAILED_PRECONDITION"),
    (10, Code::Aborted, "ABORTED"),
    (11, Code::OutOfRange, "OUT_OF_RANGE"),
    (12, Code::Unimplemented, "UNIMPLEMENTED"),
    (13, Code::Internal, "INTERNAL"),
    (14, Code::Unavailable, "UNAVAILABLE"),
    (15, Code::DataLoss, "DATA_LOSS"),
    (16, Code::Unauthenticated, "UNAUTHENTICATED"),
];

#[test]
fn statuscodes_every_code_has_its_number_and_name() {
    for (number, code, name) in ALL_CODES {
        assert_eq!(code.as_i32(), number);
        assert_eq!(i32::from(code), number);
        assert_eq!(Code::from_i32(number), code);
        assert_eq!(Code::from(number), code);
        assert_eq!(code.name(), name);
        assert_eq!(code.to_string(), name);
    }
}

#[test]
fn statuscodes_unknown_numbers_are_unknown() {
    for number in [-1, 17, 100, i32::MAX, i32::MIN] {
        assert_eq!(Code::from_i32(number), Code::Unknown, "{number}");
    }
}

#[test]
fn http_grpc_status_mapping() {
    let table = [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (431, Code::Internal),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (200, Code::Unknown),
        (100, Code::Unknown),
        (302, Code::Unknown),
        (405, Code::Unknown),
        (415, Code::Unknown),
        (500, Code::Unknown),
        (0, Code::Unknown),
        (u16::MAX, Code::Unknown),
    ];
    for (http, code) in table {
        assert_eq!(Code::from_http_status(http), code, "HTTP {http}");
    }
}

#[test]
fn protocol_http2_errors_rst_stream_mapping() {
    let table = [
        (Reason::NO_ERROR, Code::Internal),
        (Reason::PROTOCOL_ERROR, Code::Internal),
        (Reason::INTERNAL_ERROR, Code::Internal),
        (Reason::FLOW_CONTROL_ERROR, Code::Internal),
        (Reason::SETTINGS_TIMEOUT, Code::Internal),
        (Reason::STREAM_CLOSED, Code::Internal),
        (Reason::FRAME_SIZE_ERROR, Code::Internal),
        (Reason::REFUSED_STREAM, Code::Unavailable),
        (Reason::CANCEL, Code::Cancelled),
        (Reason::COMPRESSION_ERROR, Code::Internal),
        (Reason::CONNECT_ERROR, Code::Internal),
        (Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
        (Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
        (Reason::HTTP_1_1_REQUIRED, Code::Internal),
        (Reason::from(0xe), Code::Unknown),
        (Reason::from(u32::MAX), Code::Unknown),
    ];
    for (reason, code) in table {
        assert_eq!(Code::from_h2_reason(reason), code, "{:?}", reason.name());
        assert_eq!(Status::from_h2_reason(reason).code(), code);
    }
    assert_eq!(
        Status::from_h2_reason(Reason::CANCEL).message(),
        "stream reset with CANCEL"
    );
    assert!(Status::from_h2_reason(Reason::from(0x99))
        .message()
        .contains("0x99"));
}

// ---------------------------------------------------------------------------
// Status

#[test]
fn status_constructors_one_per_code() {
    type Constructor = fn(&'static str) -> Status;
    let table: [(Constructor, Code); 16] = [
        (Status::cancelled, Code::Cancelled),
        (Status::unknown, Code::Unknown),
        (Status::invalid_argument, Code::InvalidArgument),
        (Status::deadline_exceeded, Code::DeadlineExceeded),
        (Status::not_found, Code::NotFound),
        (Status::already_exists, Code::AlreadyExists),
        (Status::permission_denied, Code::PermissionDenied),
        (Status::resource_exhausted, Code::ResourceExhausted),
        (Status::failed_precondition, Code::FailedPrecondition),
        (Status::aborted, Code::Aborted),
        (Status::out_of_range, Code::OutOfRange),
        (Status::unimplemented, Code::Unimplemented),
        (Status::internal, Code::Internal),
        (Status::unavailable, Code::Unavailable),
        (Status::data_loss, Code::DataLoss),
        (Status::unauthenticated, Code::Unauthenticated),
    ];
    for (make, code) in table {
        let status = make("why");
        assert_eq!(status.code(), code);
        assert_eq!(status.message(), "why");
        assert!(status.details().is_empty());
        assert!(status.metadata().is_empty());
        assert_eq!(status, Status::new(code, "why"));
        assert!(!status.is_ok());
    }
    let ok = Status::ok();
    assert_eq!(ok.code(), Code::Ok);
    assert_eq!(ok.message(), "");
    assert!(ok.is_ok());
    assert_eq!(ok, Status::new(Code::Ok, ""));
}

#[test]
fn status_display_and_error() {
    assert_eq!(
        Status::not_found("no user 7").to_string(),
        "NOT_FOUND: no user 7"
    );
    assert_eq!(Status::internal("").to_string(), "INTERNAL");
    let err: Box<dyn std::error::Error> = Box::new(Status::aborted("retry"));
    assert_eq!(err.to_string(), "ABORTED: retry");
}

#[test]
fn trailers_round_trip_with_details_and_metadata() {
    let mut metadata = Metadata::new();
    metadata.insert("x-retry-after", "3").unwrap();
    metadata.append("x-tag", "a").unwrap();
    metadata.append("x-tag", "b").unwrap();
    metadata
        .insert_bin("x-trace-bin", Bytes::from_static(&[0, 1, 2, 0xfe, 0xff]))
        .unwrap();
    let status = Status::resource_exhausted("quota: 100% used\n— try later 🙂")
        .with_details(Bytes::from_static(b"\x08\x08\x12\x05quota"))
        .with_metadata(metadata);

    let mut trailers = HeaderList::new();
    status.to_trailers(&mut trailers);
    let names: Vec<_> = trailers.iter().map(|f| f.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            &b"grpc-status"[..],
            b"grpc-message",
            b"grpc-status-details-bin",
            b"x-retry-after",
            b"x-tag",
            b"x-tag",
            b"x-trace-bin",
        ]
    );
    assert_eq!(find(&trailers, "grpc-status"), Some(&b"8"[..]));
    assert_eq!(
        find(&trailers, "grpc-message"),
        Some(&b"quota: 100%25 used%0A%E2%80%94 try later %F0%9F%99%82"[..])
    );
    // Unpadded base64 (the details are 10 octets: padded would end "==").
    assert_eq!(
        find(&trailers, "grpc-status-details-bin"),
        Some(&b"CAgSBXF1b3Rh"[..])
    );
    assert_eq!(find(&trailers, "x-trace-bin"), Some(&b"AAEC/v8"[..]));
    for f in &trailers {
        assert!(f.value.iter().all(|b| (0x20..=0x7e).contains(b)));
    }

    let back = Status::from_trailers(&trailers);
    assert_eq!(back, status);
    assert_eq!(
        back.metadata().get_all("x-tag").collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn trailers_ok_without_message_is_just_grpc_status() {
    let mut trailers = HeaderList::new();
    Status::ok().to_trailers(&mut trailers);
    assert_eq!(trailers, [field("grpc-status", "0")]);
    assert_eq!(Status::from_trailers(&trailers), Status::ok());
}

#[test]
fn trailers_every_code_round_trips() {
    for (number, code, _) in ALL_CODES {
        let mut trailers = HeaderList::new();
        Status::new(code, "m").to_trailers(&mut trailers);
        assert_eq!(
            find(&trailers, "grpc-status"),
            Some(number.to_string().as_bytes())
        );
        assert_eq!(Status::from_trailers(&trailers).code(), code);
    }
}

#[test]
fn trailers_missing_grpc_status_is_unknown_with_a_message() {
    let status = Status::from_trailers(&[field("grpc-message", "hi")]);
    assert_eq!(status.code(), Code::Unknown);
    assert!(status.message().contains("no grpc-status"), "{status}");

    let status = Status::from_trailers(&[]);
    assert_eq!(status.code(), Code::Unknown);
    assert!(status.message().contains("no grpc-status"), "{status}");
}

#[test]
fn trailers_only_http_status_without_grpc_status_is_mapped() {
    let block = [field(":status", "503"), field("content-type", "text/html")];
    let status = Status::from_trailers(&block);
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("503"), "{status}");
    assert!(status.metadata().is_empty());

    let status = Status::from_trailers(&[field(":status", "200")]);
    assert_eq!(status.code(), Code::Unknown);

    // grpc-status, when present, always wins over the HTTP status.
    let block = [field(":status", "404"), field("grpc-status", "0")];
    assert_eq!(Status::from_trailers(&block).code(), Code::Ok);
}

#[test]
fn trailers_malformed_grpc_status_is_unknown() {
    for value in [
        &b""[..],
        b"abc",
        b"-1",
        b"1.0",
        b" 1",
        b"99999999999999999999",
    ] {
        let block = [
            field("grpc-status", Bytes::copy_from_slice(value)),
            field("grpc-message", "peer said"),
        ];
        let status = Status::from_trailers(&block);
        assert_eq!(status.code(), Code::Unknown, "{value:?}");
        assert!(
            status.message().contains("malformed grpc-status"),
            "{status}"
        );
        assert!(status.message().contains("peer said"), "{status}");
    }
    // A number, but not a code we know: Unknown, the peer's message kept.
    let block = [
        field("grpc-status", "42"),
        field("grpc-message", "new code"),
    ];
    let status = Status::from_trailers(&block);
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(status.message(), "new code");
}

#[test]
fn trailers_first_grpc_status_wins_and_bad_details_are_ignored() {
    let block = [
        field("grpc-status", "5"),
        field("grpc-status", "13"),
        field("grpc-status-details-bin", "!!not base64!!"),
    ];
    let status = Status::from_trailers(&block);
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.details().is_empty());
    assert!(status.metadata().is_empty());

    // Padded details are accepted too.
    let block = [
        field("grpc-status", "3"),
        field("grpc-status-details-bin", "AAEC/w=="),
    ];
    assert_eq!(
        Status::from_trailers(&block).details().as_ref(),
        [0, 1, 2, 255]
    );
}

// ---------------------------------------------------------------------------
// Percent-encoding (PROTOCOL-HTTP2.md "Responses": Percent-Encoded)

#[test]
fn percent_encoding_leaves_printable_ascii_alone() {
    let printable: String = (0x20u8..=0x7e)
        .filter(|&b| b != b'%')
        .map(char::from)
        .collect();
    assert_eq!(percent_encode(&printable), printable);
    assert_eq!(percent_decode(printable.as_bytes()), printable);
}

#[test]
fn percent_encoding_control_chars_percent_and_unicode() {
    let cases = [
        ("%", "%25"),
        ("%25", "%2525"),
        ("\0", "%00"),
        ("\t", "%09"),
        ("\r\n", "%0D%0A"),
        ("\x1f", "%1F"),
        ("\x7f", "%7F"),
        ("é", "%C3%A9"),
        ("日本", "%E6%97%A5%E6%9C%AC"),
        ("🙂", "%F0%9F%99%82"),
        ("a b~", "a b~"),
    ];
    for (plain, encoded) in cases {
        assert_eq!(percent_encode(plain), encoded, "{plain:?}");
        assert_eq!(percent_decode(encoded.as_bytes()), plain, "{encoded:?}");
    }
}

#[test]
fn percent_decoding_accepts_lowercase_hex() {
    assert_eq!(percent_decode(b"%c3%a9%0a"), "é\n");
}

#[test]
fn percent_decoding_keeps_malformed_sequences_literally() {
    let cases: [(&[u8], &str); 9] = [
        (b"%", "%"),
        (b"100%", "100%"),
        (b"%4", "%4"),
        (b"%G1", "%G1"),
        (b"%1G", "%1G"),
        (b"%%", "%%"),
        (b"%%41", "%A"),
        (b"50% off%", "50% off%"),
        (b"%zz%41%", "%zzA%"),
    ];
    for (encoded, plain) in cases {
        assert_eq!(percent_decode(encoded), plain, "{encoded:?}");
    }
}

#[test]
fn percent_decoding_invalid_utf8_is_lossy() {
    assert_eq!(percent_decode(b"a%FFb"), "a\u{FFFD}b");
    assert_eq!(percent_decode(b"%C3"), "\u{FFFD}");
    // Raw bytes a broken peer sends unencoded are kept, lossily.
    assert_eq!(percent_decode(b"caf\xc3\xa9"), "café");
    assert_eq!(percent_decode(b"\xff"), "\u{FFFD}");
}

proptest! {
    #[test]
    fn percent_encoding_round_trips(message in any::<String>()) {
        let encoded = percent_encode(&message);
        prop_assert!(encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        prop_assert_eq!(percent_decode(encoded.as_bytes()), message);
    }

    #[test]
    fn percent_decoding_never_fails(value in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = percent_decode(&value);
    }
}

// ---------------------------------------------------------------------------
// Metadata (PROTOCOL-HTTP2.md "Custom-Metadata")

#[test]
fn metadata_key_validation() {
    let mut md = Metadata::new();
    for key in ["a", "x-request-id", "0.9_z-", "grpc-previous-rpc-attempts"] {
        md.insert(key, "v").unwrap();
    }
    for key in [
        "",
        "X-Upper",
        "with space",
        "a:b",
        "a/b",
        "ключ",
        "a\0",
        ":path",
    ] {
        assert_eq!(
            md.insert(key, "v"),
            Err(MetadataError::InvalidKey(key.to_owned())),
            "{key:?}"
        );
    }
    let reserved = [
        "content-type",
        "te",
        "user-agent",
        "grpc-message-type",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-message",
        "grpc-status",
        "grpc-timeout",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ];
    for key in reserved {
        assert_eq!(
            md.insert(key, "v"),
            Err(MetadataError::ReservedKey(key.to_owned()))
        );
    }
    assert_eq!(
        md.insert_bin("grpc-status-details-bin", Bytes::new()),
        Err(MetadataError::ReservedKey("grpc-status-details-bin".into()))
    );
}

#[test]
fn metadata_value_validation() {
    let mut md = Metadata::new();
    md.insert("k", "").unwrap();
    md.insert("k", " !~ printable ").unwrap();
    for value in ["a\nb", "tab\t", "\x7f", "é", "\0"] {
        assert_eq!(
            md.insert("k", value),
            Err(MetadataError::InvalidValue { key: "k".into() }),
            "{value:?}"
        );
    }
    assert_eq!(
        md.append("k-bin", "ascii"),
        Err(MetadataError::BinaryKey("k-bin".into()))
    );
    assert_eq!(
        md.append_bin("k", Bytes::new()),
        Err(MetadataError::NotBinaryKey("k".into()))
    );
    assert_eq!(md.get("k"), Some(" !~ printable "));
    assert_eq!(md.len(), 1);
}

#[test]
fn metadata_multimap_order_and_removal() {
    let mut md = Metadata::new();
    md.append("a", "1").unwrap();
    md.append_bin("b-bin", &b"\x02"[..]).unwrap();
    md.append("a", "3").unwrap();
    md.append_bin("b-bin", &b"\x04"[..]).unwrap();
    let all: Vec<_> = md.iter().collect();
    assert_eq!(
        all,
        [
            ("a", MetadataValue::Ascii("1")),
            ("b-bin", MetadataValue::Binary(&Bytes::from_static(b"\x02"))),
            ("a", MetadataValue::Ascii("3")),
            ("b-bin", MetadataValue::Binary(&Bytes::from_static(b"\x04"))),
        ]
    );
    assert_eq!(md.iter().len(), 4);
    assert_eq!((&md).into_iter().count(), 4);
    assert_eq!(md.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
    assert_eq!(md.get_all_bin("b-bin").count(), 2);
    assert_eq!(md.get_all("b-bin").count(), 0);
    assert_eq!(md.get_all_bin("a").count(), 0);
    assert_eq!(md.get("missing"), None);
    assert!(md.remove("a"));
    assert!(!md.contains_key("a"));
    assert_eq!(md.len(), 2);
    md.insert_bin("b-bin", &b"\x05"[..]).unwrap();
    assert_eq!(md.get_bin("b-bin").map(|v| v.as_ref()), Some(&b"\x05"[..]));
    assert_eq!(md.len(), 1);
    let mut other = Metadata::new();
    other.insert("c", "x").unwrap();
    md.extend(other);
    assert_eq!(md.len(), 2);
    md.clear();
    assert!(md.is_empty());
}

#[test]
fn metadata_bin_values_padded_or_unpadded() {
    let headers = [
        field("a-bin", "AAEC/w=="),
        field("b-bin", "AAEC/w"),
        field("c-bin", "AQ,Ag==, Aw"),
        field("d-bin", ""),
        field("e-bin", "!!!"),
        field("f-bin", "AQ,%%,Aw"),
    ];
    let md = Metadata::from_headers(&headers);
    let want: &[u8] = &[0, 1, 2, 255];
    assert_eq!(md.get_bin("a-bin").map(|v| v.as_ref()), Some(want));
    assert_eq!(md.get_bin("b-bin").map(|v| v.as_ref()), Some(want));
    let parts: Vec<&[u8]> = md.get_all_bin("c-bin").map(|v| v.as_ref()).collect();
    assert_eq!(parts, [&[1u8][..], &[2], &[3]]);
    assert_eq!(md.get_bin("d-bin").map(|v| v.len()), Some(0));
    assert_eq!(md.get_bin("e-bin"), None, "undecodable values are dropped");
    let parts: Vec<&[u8]> = md.get_all_bin("f-bin").map(|v| v.as_ref()).collect();
    assert_eq!(parts, [&[1u8][..], &[3]]);

    // We send unpadded.
    let mut out = HeaderList::new();
    md.to_headers(&mut out);
    assert_eq!(find(&out, "a-bin"), Some(&b"AAEC/w"[..]));
}

#[test]
fn metadata_reserved_headers_hidden() {
    let request = [
        field(":method", "POST"),
        field(":scheme", "http"),
        field(":path", "/pkg.Svc/Method"),
        field(":authority", "example.com"),
        field("te", "trailers"),
        field("content-type", "application/grpc+proto"),
        field("grpc-timeout", "1S"),
        field("grpc-encoding", "gzip"),
        field("grpc-accept-encoding", "gzip,identity"),
        field("grpc-message-type", "pkg.Req"),
        field("user-agent", "grpc-go/1.60.0"),
        field("authorization", "Bearer y235.wef315yfh138vh31hv93hv8h3v"),
        field("x-custom", "1"),
        field("x-weird!", "key with a token char outside the grammar"),
        field("x-utf8", Bytes::from_static("é".as_bytes())),
        field("x-ctl", "a\x01b"),
        // The spec's example value is 17 characters: not base64, dropped.
        field("trace-proto-bin", "jher831yy13JHy3hc"),
        field("trace-bin", "jher831yy13JHy3h"),
        field("grpc-previous-rpc-attempts", "2"),
    ];
    let md = Metadata::from_headers(&request);
    let keys: Vec<_> = md.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "user-agent",
            "authorization",
            "x-custom",
            "trace-bin",
            "grpc-previous-rpc-attempts",
        ]
    );
    assert_eq!(md.get("user-agent"), Some("grpc-go/1.60.0"));

    // Echoing received metadata back never writes a transport header.
    let mut echoed = HeaderList::new();
    md.to_headers(&mut echoed);
    let names: Vec<_> = echoed.iter().map(|f| f.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            &b"authorization"[..],
            b"x-custom",
            b"trace-bin",
            b"grpc-previous-rpc-attempts",
        ]
    );

    // Trailers: the status fields are not metadata.
    let trailers = [
        field("grpc-status", "0"),
        field("grpc-message", "ok"),
        field("grpc-status-details-bin", "AA"),
        field("x-cost", "7"),
    ];
    let md = Metadata::from_headers(&trailers);
    assert_eq!(md.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["x-cost"]);
}

#[test]
fn metadata_merge_raw_keeps_what_from_headers_keeps() {
    let received = Metadata::from_headers(&[
        field("user-agent", "grpc-go/1.60.0"),
        field("x-a", "1"),
        field("x-b-bin", "AAE"),
    ]);
    let mut merged = Metadata::new();
    merged.insert("x-first", "0").unwrap();
    for (key, value) in received.iter_raw() {
        assert!(merged.append_raw(key, value));
    }
    assert_eq!(merged.len(), 4);
    assert_eq!(merged.get("user-agent"), Some("grpc-go/1.60.0"));
    assert_eq!(
        merged.get_bin("x-b-bin").map(|v| v.as_ref()),
        Some(&[0u8, 1][..])
    );

    let mut copy = Metadata::new();
    copy.extend_from(&merged);
    assert_eq!(copy, merged);
    assert_eq!(copy.iter_raw().len(), 4);

    let bad: [(&'static [u8], &'static [u8]); 5] = [
        (b":path", b"/x"),
        (b"content-type", b"application/grpc"),
        (b"X-Upper", b"v"),
        (b"x-ctl", b"a\nb"),
        (b"", b"v"),
    ];
    for (key, value) in bad {
        assert!(
            !merged.append_raw(&Bytes::from_static(key), &Bytes::from_static(value)),
            "{key:?}"
        );
    }
    assert!(merged.append_raw(
        &Bytes::from_static(b"x-raw-bin"),
        &Bytes::from_static(b"\xff\n")
    ));
    assert_eq!(merged.len(), 5);
}

#[test]
fn metadata_from_headers_shares_buffers() {
    let value = Bytes::from_static(b"shared value");
    let md = Metadata::from_headers(&[field("x-k", value.clone())]);
    assert_eq!(md.get("x-k").map(str::as_ptr), Some(value.as_ptr()));
}

proptest! {
    #[test]
    fn metadata_bin_round_trips(values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..5)) {
        let mut md = Metadata::new();
        for value in &values {
            md.append_bin("v-bin", value.clone()).unwrap();
        }
        let mut headers = HeaderList::new();
        md.to_headers(&mut headers);
        for f in &headers {
            prop_assert!(!f.value.contains(&b'='));
        }
        prop_assert_eq!(Metadata::from_headers(&headers), md);
    }
}

// ---------------------------------------------------------------------------
// Base64

#[test]
fn base64_padded_and_unpadded() {
    assert_eq!(base64::encode_unpadded(b"\xff\xfe"), "//4");
    assert_eq!(base64::decode(b"//4=").unwrap(), b"\xff\xfe");
    assert_eq!(base64::decode(b"//4").unwrap(), b"\xff\xfe");
    assert!(base64::decode(b"//4==").is_err());
    assert!(
        base64::decode(b"-_4").is_err(),
        "URL-safe alphabet is not ours"
    );
}

// ---------------------------------------------------------------------------
// grpc-timeout (PROTOCOL-HTTP2.md "Requests": Timeout)

#[test]
fn timeout_every_unit() {
    let cases: [(&[u8], Duration); 7] = [
        (b"2H", Duration::from_secs(2 * 3600)),
        (b"3M", Duration::from_secs(180)),
        (b"4S", Duration::from_secs(4)),
        (b"5m", Duration::from_millis(5)),
        (b"6u", Duration::from_micros(6)),
        (b"7n", Duration::from_nanos(7)),
        (b"0n", Duration::ZERO),
    ];
    for (value, want) in cases {
        assert_eq!(parse_timeout(value), Ok(want), "{value:?}");
    }
}

#[test]
fn timeout_eight_digits_at_most() {
    assert_eq!(
        parse_timeout(b"99999999S"),
        Ok(Duration::from_secs(99_999_999))
    );
    assert_eq!(parse_timeout(b"00000001m"), Ok(Duration::from_millis(1)));
    assert_eq!(
        parse_timeout(b"99999999H"),
        Ok(Duration::from_secs(99_999_999 * 3600))
    );
    assert_eq!(
        parse_timeout(b"100000000S"),
        Err(TimeoutError::TooManyDigits)
    );
    assert_eq!(
        parse_timeout(b"000000001S"),
        Err(TimeoutError::TooManyDigits)
    );
    // Far past u64: refused by its length, no overflow.
    assert_eq!(
        parse_timeout(b"99999999999999999999999999999999H"),
        Err(TimeoutError::TooManyDigits)
    );
}

#[test]
fn timeout_malformed() {
    let cases: [(&[u8], TimeoutError); 12] = [
        (b"", TimeoutError::Empty),
        (b"S", TimeoutError::NoDigits),
        (b"100", TimeoutError::InvalidUnit(b'0')),
        (b"1s", TimeoutError::InvalidUnit(b's')),
        (b"1h", TimeoutError::InvalidUnit(b'h')),
        (b"1U", TimeoutError::InvalidUnit(b'U')),
        (b"1S ", TimeoutError::InvalidUnit(b' ')),
        (b" 1S", TimeoutError::InvalidDigit(b' ')),
        (b"+1S", TimeoutError::InvalidDigit(b'+')),
        (b"-1S", TimeoutError::InvalidDigit(b'-')),
        (b"1.5S", TimeoutError::InvalidDigit(b'.')),
        (b"1SS", TimeoutError::InvalidDigit(b'S')),
    ];
    for (value, err) in cases {
        assert_eq!(parse_timeout(value), Err(err), "{value:?}");
    }
}

#[test]
fn timeout_format_picks_the_finest_unit_that_fits() {
    let cases = [
        (Duration::ZERO, "0n"),
        (Duration::from_nanos(1), "1n"),
        (Duration::from_nanos(99_999_999), "99999999n"),
        (Duration::from_nanos(100_000_000), "100000u"),
        (Duration::from_nanos(100_000_001), "100001u"),
        (Duration::from_secs(1), "1000000u"),
        (Duration::from_secs(99), "99000000u"),
        (Duration::from_secs(100), "100000m"),
        (Duration::from_secs(99_999), "99999000m"),
        (Duration::from_secs(100_000), "100000S"),
        (Duration::from_secs(99_999_999), "99999999S"),
        (Duration::from_secs(100_000_000), "1666667M"),
        (Duration::from_secs(99_999_999 * 60), "99999999M"),
        (Duration::from_secs(99_999_999 * 60 + 1), "1666667H"),
        (Duration::from_secs(99_999_999 * 3600), "99999999H"),
        (Duration::from_secs(99_999_999 * 3600 + 1), "99999999H"),
        (Duration::MAX, "99999999H"),
    ];
    for (timeout, want) in cases {
        assert_eq!(format_timeout(timeout), want, "{timeout:?}");
    }
}

proptest! {
    #[test]
    fn timeout_format_parse_round_trip(secs in 0u64..(99_999_999 * 3600), nanos in 0u32..1_000_000_000) {
        let timeout = Duration::new(secs, nanos);
        let text = format_timeout(timeout);
        prop_assert!(text.len() <= 9);
        let back = parse_timeout(text.as_bytes()).unwrap();
        // Rounded up, by less than one unit.
        prop_assert!(back >= timeout);
        let unit = match text.as_bytes().last() {
            Some(b'n') => Duration::from_nanos(1),
            Some(b'u') => Duration::from_micros(1),
            Some(b'm') => Duration::from_millis(1),
            Some(b'S') => Duration::from_secs(1),
            Some(b'M') => Duration::from_secs(60),
            _ => Duration::from_secs(3600),
        };
        prop_assert!(back - timeout < unit);
        // Exact values stay exact.
        prop_assert_eq!(format_timeout(back), text);
    }

    #[test]
    fn timeout_parse_never_panics(value in proptest::collection::vec(any::<u8>(), 0..12)) {
        let _ = parse_timeout(&value);
    }
}

// ---------------------------------------------------------------------------
// Length-Prefixed-Message

fn framed(messages: &[(bool, Vec<u8>)]) -> Bytes {
    let mut stream = BytesMut::new();
    for (compressed, payload) in messages {
        encode_message(payload, *compressed, &mut stream).unwrap();
    }
    stream.freeze()
}

#[test]
fn message_prefix_is_flag_then_big_endian_length() {
    assert_eq!(message_prefix(0, false), [0, 0, 0, 0, 0]);
    assert_eq!(
        message_prefix(0x0a0b_0c0d, true),
        [1, 0x0a, 0x0b, 0x0c, 0x0d]
    );
    assert_eq!(
        message_prefix(u32::MAX as usize, false),
        [0, 0xff, 0xff, 0xff, 0xff]
    );
    // Past four octets: saturated, never wrapped to a short length.
    #[cfg(target_pointer_width = "64")]
    assert_eq!(
        message_prefix((1 << 32) + 5, false),
        [0, 0xff, 0xff, 0xff, 0xff]
    );
    let mut dst = BytesMut::from(&b"xy"[..]);
    encode_message(b"abc", true, &mut dst).unwrap();
    assert_eq!(&dst[..], b"xy\x01\x00\x00\x00\x03abc");
}

#[test]
fn message_within_one_chunk_is_zero_copy() {
    let chunk = framed(&[(false, b"first".to_vec()), (true, b"second".to_vec())]);
    let mut decoder = MessageDecoder::new(1024);
    decoder.push(chunk.clone());
    let first = decoder.next().unwrap().unwrap();
    let second = decoder.next().unwrap().unwrap();
    assert_eq!(decoder.next(), Ok(None));
    decoder.finish().unwrap();
    assert_eq!(
        first,
        RawMessage {
            compressed: false,
            payload: Bytes::from_static(b"first")
        }
    );
    assert!(second.compressed);
    // Both payloads point into the chunk.
    let base = chunk.as_ptr() as usize;
    assert_eq!(first.payload.as_ptr() as usize, base + 5);
    assert_eq!(second.payload.as_ptr() as usize, base + 5 + 5 + 5);
}

#[test]
fn message_empty_payloads() {
    let mut decoder = MessageDecoder::new(0);
    decoder.push(framed(&[(false, vec![]), (true, vec![])]));
    assert_eq!(decoder.next().unwrap().unwrap().payload.len(), 0);
    assert!(decoder.next().unwrap().unwrap().compressed);
    assert_eq!(decoder.next(), Ok(None));
    decoder.finish().unwrap();
}

#[test]
fn message_too_large_is_detected_from_the_prefix() {
    let mut decoder = MessageDecoder::new(1000);
    decoder.push(Bytes::from_static(&[0, 0, 0, 0x03]));
    assert_eq!(decoder.next(), Ok(None));
    decoder.push(Bytes::from_static(&[0xe9])); // 1001
    assert_eq!(
        decoder.next(),
        Err(MessageError::TooLarge {
            len: 1001,
            max: 1000
        })
    );
    assert_eq!(decoder.buffered(), 0);
    // Sticky.
    decoder.push(Bytes::from_static(b"more"));
    assert_eq!(decoder.buffered(), 0);
    assert!(decoder.next().is_err());
    assert!(decoder.finish().is_err());

    // The largest length the wire can say.
    let mut decoder = MessageDecoder::new(4 << 20);
    decoder.push(Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0xff]));
    assert_eq!(
        decoder.next(),
        Err(MessageError::TooLarge {
            len: u32::MAX as usize,
            max: 4 << 20
        })
    );

    // Exactly the limit is fine.
    let mut decoder = MessageDecoder::new(3);
    decoder.push(framed(&[(false, b"abc".to_vec())]));
    assert_eq!(decoder.next().unwrap().unwrap().payload.as_ref(), b"abc");
    assert_eq!(decoder.max_len(), 3);
}

#[test]
fn message_bad_flag() {
    for flag in [2u8, 0x80, 0xff] {
        let mut decoder = MessageDecoder::new(100);
        decoder.push(Bytes::copy_from_slice(&[flag, 0, 0, 0, 1, b'x']));
        assert_eq!(decoder.next(), Err(MessageError::BadFlag(flag)));
        assert_eq!(decoder.finish(), Err(MessageError::BadFlag(flag)));
    }
}

#[test]
fn message_truncation() {
    let stream = framed(&[(false, b"hello".to_vec())]);
    for cut in 1..stream.len() {
        let mut decoder = MessageDecoder::new(100);
        decoder.push(stream.slice(..cut));
        assert_eq!(decoder.next(), Ok(None), "cut at {cut}");
        assert_eq!(
            decoder.finish(),
            Err(MessageError::Truncated),
            "cut at {cut}"
        );
    }
    let mut decoder = MessageDecoder::new(100);
    decoder.finish().unwrap();
    decoder.push(Bytes::new());
    decoder.finish().unwrap();
}

fn messages_strategy() -> impl Strategy<Value = Vec<(bool, Vec<u8>)>> {
    proptest::collection::vec(
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        ),
        0..8,
    )
}

proptest! {
    #[test]
    fn message_decoder_across_arbitrary_chunk_boundaries(
        messages in messages_strategy(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let stream = framed(&messages);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        points.dedup();

        let max_len = 300;
        let mut decoder = MessageDecoder::new(max_len);
        let mut got = Vec::new();
        for pair in points.windows(2) {
            decoder.push(stream.slice(pair[0]..pair[1]));
            while let Some(message) = decoder.next().unwrap() {
                got.push((message.compressed, message.payload.to_vec()));
            }
            // Memory: at most one partial message and its prefix.
            prop_assert!(decoder.buffered() < max_len + 5);
        }
        decoder.finish().unwrap();
        prop_assert_eq!(got, messages);
    }

    #[test]
    fn message_decoder_reports_truncation_anywhere_inside_a_message(
        messages in messages_strategy(),
        cut in any::<prop::sample::Index>(),
    ) {
        let stream = framed(&messages);
        let cut = cut.index(stream.len() + 1);
        // Message boundaries in the stream.
        let mut boundaries = vec![0];
        for (_, payload) in &messages {
            boundaries.push(boundaries.last().unwrap() + 5 + payload.len());
        }
        let mut decoder = MessageDecoder::new(1 << 20);
        decoder.push(stream.slice(..cut));
        let mut count = 0;
        while decoder.next().unwrap().is_some() {
            count += 1;
        }
        if boundaries.contains(&cut) {
            decoder.finish().unwrap();
            prop_assert_eq!(boundaries[count], cut);
        } else {
            prop_assert_eq!(decoder.finish(), Err(MessageError::Truncated));
        }
    }

    #[test]
    fn message_decoder_never_panics_on_garbage(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
        max_len in 0usize..64,
    ) {
        let mut decoder = MessageDecoder::new(max_len);
        for chunk in chunks {
            decoder.push(Bytes::from(chunk));
            while let Ok(Some(message)) = decoder.next() {
                prop_assert!(message.payload.len() <= max_len);
            }
            prop_assert!(decoder.buffered() < max_len + 5 + 1);
        }
        let _ = decoder.finish();
    }
}

// ---------------------------------------------------------------------------
// Compression

#[test]
fn encoding_names() {
    assert_eq!(Encoding::from_header(b"identity"), Some(Encoding::Identity));
    assert_eq!(Encoding::from_header(b"gzip"), Some(Encoding::Gzip));
    assert_eq!(Encoding::from_header(b"GZip"), Some(Encoding::Gzip));
    assert_eq!(Encoding::from_header(b" gzip "), Some(Encoding::Gzip));
    for unknown in [
        &b"deflate"[..],
        b"snappy",
        b"zstd",
        b"br",
        b"",
        b"gzip2",
        b"gzip,identity",
    ] {
        assert_eq!(Encoding::from_header(unknown), None, "{unknown:?}");
    }
    assert_eq!(Encoding::Identity.as_str(), "identity");
    assert_eq!(Encoding::Gzip.to_string(), "gzip");
    assert_eq!(accept_encoding_header(), "gzip");
    assert!(Encoding::Gzip.accepted_by(b"identity,deflate,gzip"));
    assert!(Encoding::Gzip.accepted_by(b"deflate, gzip"));
    assert!(!Encoding::Gzip.accepted_by(b"identity"));
    assert!(!Encoding::Gzip.accepted_by(b""));
    assert!(Encoding::Identity.accepted_by(b"gzip"));
}

#[test]
fn gzip_round_trip() {
    for message in [
        Vec::new(),
        b"x".to_vec(),
        b"the quick brown fox ".repeat(1000),
        (0..=255u8).cycle().take(70_000).collect(),
    ] {
        let packed = compress(Encoding::Gzip, &message).unwrap();
        assert_eq!(&packed[..2], b"\x1f\x8b", "gzip magic");
        let unpacked = decompress(Encoding::Gzip, &packed, message.len()).unwrap();
        assert_eq!(unpacked, message);
    }
    let identity = compress(Encoding::Identity, b"plain").unwrap();
    assert_eq!(identity.as_ref(), b"plain");
    assert_eq!(
        decompress(Encoding::Identity, b"plain", 5)
            .unwrap()
            .as_ref(),
        b"plain"
    );
}

#[test]
fn gzip_zip_bomb_is_bounded() {
    // 1 MiB of zeros compresses to about 1 KiB; 1024 gzip members of it
    // (a valid multi-member stream) say 1 GiB.
    let member = compress(Encoding::Gzip, &vec![0u8; 1 << 20]).unwrap();
    assert!(member.len() < 4096, "{}", member.len());
    let bomb = member.repeat(1024);
    let max = 1 << 20;
    assert_eq!(
        decompress(Encoding::Gzip, &bomb, max - 1),
        Err(CompressionError::TooLarge { max: max - 1 })
    );
    assert_eq!(
        decompress(Encoding::Gzip, &bomb[..member.len() * 3], 3 << 20)
            .unwrap()
            .len(),
        3 << 20
    );
}

#[test]
fn gzip_corrupt_input() {
    let packed = compress(Encoding::Gzip, &b"some message ".repeat(20)).unwrap();
    // Truncated.
    assert!(matches!(
        decompress(Encoding::Gzip, &packed[..packed.len() - 4], 1 << 20),
        Err(CompressionError::Corrupt(_))
    ));
    // Empty: not even a gzip header.
    assert!(matches!(
        decompress(Encoding::Gzip, b"", 1 << 20),
        Err(CompressionError::Corrupt(_))
    ));
    // Not gzip at all.
    assert!(matches!(
        decompress(Encoding::Gzip, b"definitely not gzip", 1 << 20),
        Err(CompressionError::Corrupt(_))
    ));
    // Checksum mismatch.
    let mut bad = packed.to_vec();
    let crc = bad.len() - 8;
    bad[crc] ^= 0xff;
    assert!(matches!(
        decompress(Encoding::Gzip, &bad, 1 << 20),
        Err(CompressionError::Corrupt(_))
    ));
}

proptest! {
    #[test]
    fn gzip_decompress_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decompress(Encoding::Gzip, &data, 1024);
    }
}

//! Conformance tests for RFC 9113 §8 message validation
//! (`mio_grpc::conn::validate`): one test per rule, named after its section,
//! asserting the exact `Malformed` variant; plus the valid shapes a gRPC
//! peer sends.

use bytes::Bytes;
use mio_grpc::conn::validate::*;
use mio_grpc::framer::hpack::{HeaderField, HeaderList};
use mio_grpc::framer::Reason;

fn f(name: &'static str, value: &'static str) -> HeaderField {
    HeaderField::new(name, value)
}

fn raw(name: &'static [u8], value: &'static [u8]) -> HeaderField {
    HeaderField::new(Bytes::from_static(name), Bytes::from_static(value))
}

fn name(n: &'static str) -> Bytes {
    Bytes::from_static(n.as_bytes())
}

/// What grpc-go sends for a unary call.
fn grpc_request() -> HeaderList {
    vec![
        f(":method", "POST"),
        f(":scheme", "http"),
        f(":path", "/helloworld.Greeter/SayHello"),
        f(":authority", "localhost:50051"),
        f("content-type", "application/grpc"),
        f("user-agent", "grpc-go/1.60.0"),
        f("te", "trailers"),
        f("grpc-timeout", "999847u"),
    ]
}

/// `grpc_request` with `extra` appended.
fn request_with(extra: HeaderField) -> HeaderList {
    let mut fields = grpc_request();
    fields.push(extra);
    fields
}

/// A minimal request from pseudo-headers only.
fn request(pseudo: &[(&'static str, &'static str)]) -> Result<RequestHead, Malformed> {
    validate_request(pseudo.iter().map(|&(n, v)| f(n, v)).collect())
}

fn response_with(extra: HeaderField) -> Result<ResponseHead, Malformed> {
    validate_response(vec![f(":status", "200"), extra])
}

fn request_err(fields: HeaderList) -> Malformed {
    validate_request(fields).expect_err("request should be malformed")
}

// ---- valid messages ----

#[test]
fn sec8_3_1_typical_grpc_request_is_valid() {
    let head = validate_request(grpc_request()).unwrap();
    assert_eq!(head.method, "POST");
    assert_eq!(head.scheme.as_deref(), Some(&b"http"[..]));
    assert_eq!(
        head.path.as_deref(),
        Some(&b"/helloworld.Greeter/SayHello"[..])
    );
    assert_eq!(head.authority.as_deref(), Some(&b"localhost:50051"[..]));
    assert_eq!(head.protocol, None);
    assert_eq!(head.content_length, None);
    let names: Vec<&[u8]> = head.fields.iter().map(|f| f.name.as_ref()).collect();
    assert_eq!(
        names,
        [&b"content-type"[..], b"user-agent", b"te", b"grpc-timeout"]
    );
}

#[test]
fn sec8_3_1_request_keeps_field_values_and_sensitivity() {
    let mut fields = grpc_request();
    fields.push(HeaderField::new_sensitive("authorization", "Bearer x"));
    fields.push(raw(b"x-raw", b"\x01\xff obs-text is fine"));
    let head = validate_request(fields).unwrap();
    let last = head.fields.last().unwrap();
    assert_eq!(last.value, &b"\x01\xff obs-text is fine"[..]);
    let auth = head
        .fields
        .iter()
        .find(|f| f.name == "authorization")
        .unwrap();
    assert!(auth.sensitive);
    assert_eq!(auth.value, "Bearer x");
}

#[test]
fn sec8_3_2_typical_grpc_response_is_valid() {
    let head = validate_response(vec![
        f(":status", "200"),
        f("content-type", "application/grpc"),
        f("grpc-encoding", "identity"),
    ])
    .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.fields.len(), 2);
    assert_eq!(head.fields[0].name, "content-type");
    assert_eq!(head.content_length, None);
}

#[test]
fn sec8_1_trailers_only_response_is_valid() {
    let head = validate_response(vec![
        f(":status", "200"),
        f("content-type", "application/grpc"),
        f("grpc-status", "12"),
        f("grpc-message", "unknown service helloworld.Nope"),
    ])
    .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.fields.len(), 3);
    assert_eq!(head.fields[1].name, "grpc-status");
}

#[test]
fn sec8_1_grpc_trailers_are_valid() {
    let trailers = validate_trailers(vec![
        f("grpc-status", "0"),
        f("grpc-message", ""),
        f("grpc-status-details-bin", "CAA"), // base64 on the wire
    ])
    .unwrap();
    assert_eq!(trailers.len(), 3);
}

#[test]
fn sec8_3_2_informational_response_is_valid() {
    assert_eq!(
        validate_response(vec![f(":status", "100")]).unwrap().status,
        100
    );
    assert_eq!(
        validate_response(vec![f(":status", "999")]).unwrap().status,
        999
    );
}

#[test]
fn rfc8441_4_extended_connect_is_valid() {
    let head = request(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":path", "/chat"),
        (":authority", "server.example.com"),
    ])
    .unwrap();
    assert_eq!(head.method, "CONNECT");
    assert_eq!(head.protocol.as_deref(), Some(&b"websocket"[..]));
    assert_eq!(head.path.as_deref(), Some(&b"/chat"[..]));
    assert!(head.fields.is_empty());
}

#[test]
fn sec8_5_connect_is_valid() {
    let head = request(&[(":method", "CONNECT"), (":authority", "proxy.example:443")]).unwrap();
    assert_eq!(head.scheme, None);
    assert_eq!(head.path, None);
    assert_eq!(head.authority.as_deref(), Some(&b"proxy.example:443"[..]));
}

#[test]
fn sec8_3_1_options_asterisk_is_valid() {
    let head = request(&[
        (":method", "OPTIONS"),
        (":scheme", "https"),
        (":path", "*"),
        (":authority", "example.com"),
    ])
    .unwrap();
    assert_eq!(head.path.as_deref(), Some(&b"*"[..]));
}

#[test]
fn sec8_3_1_non_http_scheme_path_is_only_non_empty() {
    let head = request(&[(":method", "GET"), (":scheme", "foo"), (":path", "bar")]).unwrap();
    assert_eq!(head.path.as_deref(), Some(&b"bar"[..]));
}

#[test]
fn sec8_2_2_te_trailers_is_case_insensitive() {
    let mut fields = grpc_request();
    fields.retain(|f| f.name != "te");
    fields.push(f("te", "Trailers"));
    assert!(validate_request(fields).is_ok());
}

#[test]
fn sec8_3_1_host_equal_to_authority_is_valid() {
    assert!(validate_request(request_with(f("host", "LocalHost:50051"))).is_ok());
    let head = validate_request(vec![
        f(":method", "GET"),
        f(":scheme", "https"),
        f(":path", "/"),
        f(":authority", "example.com"),
        f("host", "example.com:443"),
    ])
    .unwrap();
    assert_eq!(head.fields.len(), 1);
    // No :authority: host alone is fine.
    assert!(request(&[(":method", "GET"), (":scheme", "http"), (":path", "/")]).is_ok());
    assert!(validate_request(vec![
        f(":method", "GET"),
        f(":scheme", "http"),
        f(":path", "/"),
        f("host", "anything"),
    ])
    .is_ok());
}

#[test]
fn sec8_1_1_content_length_is_parsed() {
    let head = validate_request(request_with(f("content-length", "42"))).unwrap();
    assert_eq!(head.content_length, Some(42));
    let head = response_with(f("content-length", "0")).unwrap();
    assert_eq!(head.content_length, Some(0));
    let max = validate_request(request_with(f("content-length", "18446744073709551615"))).unwrap();
    assert_eq!(max.content_length, Some(u64::MAX));
}

#[test]
fn rfc9110_8_6_equal_content_length_copies_are_accepted() {
    let head = validate_request(request_with(f("content-length", "5, 5,5"))).unwrap();
    assert_eq!(head.content_length, Some(5));
    let mut fields = request_with(f("content-length", "7"));
    fields.push(f("content-length", "007"));
    assert_eq!(validate_request(fields).unwrap().content_length, Some(7));
}

#[test]
fn sec8_1_content_length_in_trailers_is_not_interpreted() {
    assert!(validate_trailers(vec![f("content-length", "nope")]).is_ok());
}

// ---- §8.2, §8.2.1: field names and values ----

#[test]
fn sec8_2_uppercase_field_name_is_malformed() {
    let err = request_err(request_with(f("Content-Type", "application/grpc")));
    assert_eq!(err, Malformed::UppercaseName(name("Content-Type")));
    let err = validate_trailers(vec![f("grpc-Status", "0")]).unwrap_err();
    assert_eq!(err, Malformed::UppercaseName(name("grpc-Status")));
}

#[test]
fn sec8_2_uppercase_pseudo_header_name_is_malformed() {
    let err = request(&[(":Method", "GET"), (":scheme", "http"), (":path", "/")]).unwrap_err();
    assert_eq!(err, Malformed::UppercaseName(name(":Method")));
}

#[test]
fn sec8_2_1_empty_field_name_is_malformed() {
    assert_eq!(request_err(request_with(f("", "x"))), Malformed::EmptyName);
}

#[test]
fn sec8_2_1_invalid_field_name_char_is_malformed() {
    for bad in [
        &b"x y"[..],
        b"x:y",
        b"x\0",
        b"x\x7f",
        b"\xc3\xa9",
        b"x\"",
        b"(x)",
    ] {
        let field = HeaderField::new(Bytes::copy_from_slice(bad), "v");
        assert_eq!(
            request_err(request_with(field)),
            Malformed::InvalidNameChar(Bytes::copy_from_slice(bad)),
            "{:?}",
            bad.escape_ascii().to_string()
        );
    }
}

#[test]
fn sec8_2_1_tchar_punctuation_in_name_is_valid() {
    assert!(validate_request(request_with(f("x-!#$%&'*+-.^_`|~09", "v"))).is_ok());
}

#[test]
fn sec8_2_1_invalid_pseudo_header_name_char_is_malformed() {
    let err = request(&[(":me thod", "GET")]).unwrap_err();
    assert_eq!(err, Malformed::InvalidNameChar(name(":me thod")));
}

#[test]
fn sec8_2_1_nul_cr_lf_in_value_is_malformed() {
    for bad in [&b"a\0b"[..], b"a\rb", b"a\nb", b"\n"] {
        let field = HeaderField::new("x-custom", Bytes::copy_from_slice(bad));
        assert_eq!(
            request_err(request_with(field)),
            Malformed::InvalidValueChar(name("x-custom"))
        );
    }
}

#[test]
fn sec8_2_1_nul_in_pseudo_header_value_is_malformed() {
    let err = validate_request(vec![
        f(":method", "GET"),
        f(":scheme", "http"),
        raw(b":path", b"/a\0b"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::InvalidValueChar(name(":path")));
}

#[test]
fn sec8_2_1_leading_or_trailing_whitespace_in_value_is_malformed() {
    for bad in [" a", "a ", "\ta", "a\t", " ", "\t"] {
        let field = HeaderField::new("x-custom", bad);
        assert_eq!(
            request_err(request_with(field)),
            Malformed::ValueWhitespace(name("x-custom")),
            "{bad:?}"
        );
    }
    // Inner whitespace is fine.
    assert!(validate_request(request_with(f("x-custom", "a \t b"))).is_ok());
}

#[test]
fn sec8_2_1_whitespace_in_status_value_is_malformed() {
    let err = validate_response(vec![f(":status", "200 ")]).unwrap_err();
    assert_eq!(err, Malformed::ValueWhitespace(name(":status")));
}

#[test]
fn sec8_2_1_field_rules_apply_to_responses_and_trailers() {
    assert_eq!(
        response_with(f("x-bad", "a\r\nb")).unwrap_err(),
        Malformed::InvalidValueChar(name("x-bad"))
    );
    assert_eq!(
        validate_trailers(vec![f("grpc-message", "oops ")]).unwrap_err(),
        Malformed::ValueWhitespace(name("grpc-message"))
    );
}

// ---- §8.2.2: connection-specific fields ----

#[test]
fn sec8_2_2_connection_specific_field_is_malformed() {
    for n in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        let field = HeaderField::new(n, "x");
        assert_eq!(
            request_err(request_with(field.clone())),
            Malformed::ConnectionSpecific(n)
        );
        assert_eq!(
            response_with(field.clone()).unwrap_err(),
            Malformed::ConnectionSpecific(n)
        );
        assert_eq!(
            validate_trailers(vec![field]).unwrap_err(),
            Malformed::ConnectionSpecific(n)
        );
    }
}

#[test]
fn sec8_2_2_te_other_than_trailers_is_malformed() {
    for bad in ["gzip", "trailers, deflate", "trailer", ""] {
        let mut fields = grpc_request();
        fields.retain(|f| f.name != "te");
        fields.push(HeaderField::new("te", bad));
        assert_eq!(request_err(fields), Malformed::TeNotTrailers, "{bad:?}");
    }
}

// ---- §8.3: pseudo-header fields ----

#[test]
fn sec8_3_pseudo_header_after_regular_field_is_malformed() {
    let err = validate_request(vec![
        f(":method", "POST"),
        f(":scheme", "http"),
        f("content-type", "application/grpc"),
        f(":path", "/a/b"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::PseudoAfterRegular(name(":path")));
    let err = validate_response(vec![f("content-type", "x"), f(":status", "200")]).unwrap_err();
    assert_eq!(err, Malformed::PseudoAfterRegular(name(":status")));
}

#[test]
fn sec8_3_unknown_pseudo_header_is_malformed() {
    let err = request_err(vec![
        f(":method", "GET"),
        f(":scheme", "http"),
        f(":path", "/"),
        f(":foo", "bar"),
    ]);
    assert_eq!(err, Malformed::UnknownPseudo(name(":foo")));
    let err = validate_response(vec![f(":status", "200"), f(":", "x")]).unwrap_err();
    assert_eq!(err, Malformed::UnknownPseudo(name(":")));
}

#[test]
fn sec8_3_response_pseudo_header_in_request_is_malformed() {
    let mut fields = vec![f(":status", "200")];
    fields.extend(grpc_request());
    assert_eq!(
        request_err(fields),
        Malformed::ResponsePseudoInRequest(":status")
    );
}

#[test]
fn sec8_3_request_pseudo_header_in_response_is_malformed() {
    for n in [":method", ":scheme", ":authority", ":path", ":protocol"] {
        let err =
            validate_response(vec![f(":status", "200"), HeaderField::new(n, "x")]).unwrap_err();
        assert_eq!(err, Malformed::RequestPseudoInResponse(n));
    }
}

#[test]
fn sec8_1_pseudo_header_in_trailers_is_malformed() {
    let err = validate_trailers(vec![f(":status", "200"), f("grpc-status", "0")]).unwrap_err();
    assert_eq!(err, Malformed::PseudoInTrailers(name(":status")));
    let err = validate_trailers(vec![f("grpc-status", "0"), f(":path", "/")]).unwrap_err();
    assert_eq!(err, Malformed::PseudoInTrailers(name(":path")));
}

// ---- §8.3.1: request pseudo-headers ----

#[test]
fn sec8_3_1_duplicate_pseudo_header_is_malformed() {
    for n in [":method", ":scheme", ":authority", ":path"] {
        let mut fields = grpc_request();
        let copy = fields.iter().find(|f| f.name == n).unwrap().clone();
        fields.insert(1, copy);
        assert_eq!(request_err(fields), Malformed::DuplicatePseudo(n));
    }
    let err = request(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":protocol", "websocket"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::DuplicatePseudo(":protocol"));
}

#[test]
fn sec8_3_1_missing_method_is_malformed() {
    let err = request(&[(":scheme", "http"), (":path", "/")]).unwrap_err();
    assert_eq!(err, Malformed::MissingPseudo(":method"));
}

#[test]
fn sec8_3_1_missing_scheme_is_malformed() {
    let err = request(&[(":method", "POST"), (":path", "/a/b")]).unwrap_err();
    assert_eq!(err, Malformed::MissingPseudo(":scheme"));
}

#[test]
fn sec8_3_1_missing_path_is_malformed() {
    let err = request(&[(":method", "POST"), (":scheme", "http")]).unwrap_err();
    assert_eq!(err, Malformed::MissingPseudo(":path"));
}

#[test]
fn sec8_3_1_method_not_a_token_is_malformed() {
    for bad in ["", "GET /admin", "GE(T"] {
        let err = request(&[(":method", bad), (":scheme", "http"), (":path", "/")]).unwrap_err();
        assert_eq!(err, Malformed::InvalidMethod, "{bad:?}");
    }
}

#[test]
fn sec8_3_1_empty_path_is_malformed() {
    for scheme in ["http", "https", "foo"] {
        let err = request(&[(":method", "GET"), (":scheme", scheme), (":path", "")]).unwrap_err();
        assert_eq!(err, Malformed::EmptyPath);
    }
}

#[test]
fn sec8_3_1_http_path_not_starting_with_slash_is_malformed() {
    for path in ["a/b", "http://example.com/", "?q"] {
        let err =
            request(&[(":method", "GET"), (":scheme", "https"), (":path", path)]).unwrap_err();
        assert_eq!(err, Malformed::InvalidPath, "{path:?}");
    }
}

#[test]
fn sec8_3_1_asterisk_path_on_other_than_options_is_malformed() {
    let err = request(&[(":method", "GET"), (":scheme", "http"), (":path", "*")]).unwrap_err();
    assert_eq!(err, Malformed::InvalidPath);
}

#[test]
fn sec8_3_1_authority_with_userinfo_is_malformed() {
    let err = request(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/"),
        (":authority", "user:pass@example.com"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::AuthorityUserinfo);
}

#[test]
fn sec8_3_1_host_differing_from_authority_is_malformed() {
    let err = request_err(request_with(f("host", "evil.example")));
    assert_eq!(err, Malformed::HostAuthorityMismatch);
    // A default port only counts for its own scheme.
    let err = request_err(vec![
        f(":method", "GET"),
        f(":scheme", "http"),
        f(":path", "/"),
        f(":authority", "example.com"),
        f("host", "example.com:443"),
    ]);
    assert_eq!(err, Malformed::HostAuthorityMismatch);
}

// ---- §8.5, RFC 8441 §4: CONNECT ----

#[test]
fn sec8_5_connect_with_scheme_is_malformed() {
    let err = request(&[
        (":method", "CONNECT"),
        (":scheme", "https"),
        (":authority", "example.com:443"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::ConnectWithSchemeOrPath(":scheme"));
}

#[test]
fn sec8_5_connect_with_path_is_malformed() {
    let err = request(&[
        (":method", "CONNECT"),
        (":authority", "example.com:443"),
        (":path", "/"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::ConnectWithSchemeOrPath(":path"));
}

#[test]
fn sec8_5_connect_without_authority_is_malformed() {
    let err = request(&[(":method", "CONNECT")]).unwrap_err();
    assert_eq!(err, Malformed::MissingPseudo(":authority"));
}

#[test]
fn rfc8441_4_protocol_without_connect_is_malformed() {
    let err = request(&[
        (":method", "GET"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":path", "/chat"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::ProtocolWithoutConnect);
}

#[test]
fn rfc8441_4_extended_connect_without_scheme_or_path_is_malformed() {
    let err = request(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":path", "/chat"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::MissingPseudo(":scheme"));
    let err = request(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
    ])
    .unwrap_err();
    assert_eq!(err, Malformed::MissingPseudo(":path"));
}

// ---- §8.3.2: response pseudo-headers ----

#[test]
fn sec8_3_2_missing_status_is_malformed() {
    let err = validate_response(vec![f("content-type", "application/grpc")]).unwrap_err();
    assert_eq!(err, Malformed::MissingPseudo(":status"));
    assert_eq!(
        validate_response(vec![]).unwrap_err(),
        Malformed::MissingPseudo(":status")
    );
}

#[test]
fn sec8_3_2_duplicate_status_is_malformed() {
    let err = validate_response(vec![f(":status", "200"), f(":status", "200")]).unwrap_err();
    assert_eq!(err, Malformed::DuplicatePseudo(":status"));
}

#[test]
fn sec8_3_2_invalid_status_is_malformed() {
    for bad in [
        "", "20", "2000", "099", "000", "abc", "+20", "2 0", "20x", "٢٠٠",
    ] {
        let err = validate_response(vec![HeaderField::new(":status", bad)]).unwrap_err();
        assert_eq!(err, Malformed::InvalidStatus, "{bad:?}");
    }
}

// ---- §8.1.1: content-length ----

#[test]
fn sec8_1_1_invalid_content_length_is_malformed() {
    for bad in [
        "",
        "-1",
        "+1",
        "abc",
        "1 2",
        "1.0",
        "0x10",
        "5,",
        ",5",
        "5,,5",
        "5, 6",
        "18446744073709551616",
    ] {
        let err = request_err(request_with(HeaderField::new("content-length", bad)));
        assert_eq!(err, Malformed::InvalidContentLength, "{bad:?}");
    }
    let err = response_with(f("content-length", "ten")).unwrap_err();
    assert_eq!(err, Malformed::InvalidContentLength);
}

#[test]
fn sec8_1_1_differing_content_length_fields_are_malformed() {
    let mut fields = request_with(f("content-length", "5"));
    fields.push(f("content-length", "6"));
    assert_eq!(request_err(fields), Malformed::InvalidContentLength);
}

#[test]
fn sec8_1_1_data_matching_content_length_is_valid() {
    let mut cl = ContentLength::new(Some(10));
    cl.on_data(3).unwrap();
    cl.on_data(0).unwrap();
    cl.on_data(7).unwrap();
    cl.on_end().unwrap();
    assert_eq!(cl.received(), 10);
    assert_eq!(cl.declared(), Some(10));
    let empty = ContentLength::new(Some(0));
    empty.on_end().unwrap();
}

#[test]
fn sec8_1_1_data_exceeding_content_length_is_malformed() {
    let mut cl = ContentLength::new(Some(5));
    cl.on_data(4).unwrap();
    assert_eq!(
        cl.on_data(2),
        Err(Malformed::DataExceedsContentLength {
            declared: 5,
            received: 6
        })
    );
    assert!(cl.on_end().is_err());
    let mut zero = ContentLength::new(Some(0));
    assert_eq!(
        zero.on_data(1),
        Err(Malformed::DataExceedsContentLength {
            declared: 0,
            received: 1
        })
    );
}

#[test]
fn sec8_1_1_data_short_of_content_length_is_malformed() {
    let mut cl = ContentLength::new(Some(5));
    cl.on_data(4).unwrap();
    assert_eq!(
        cl.on_end(),
        Err(Malformed::DataShortOfContentLength {
            declared: 5,
            received: 4
        })
    );
    assert_eq!(
        ContentLength::new(Some(1)).on_end(),
        Err(Malformed::DataShortOfContentLength {
            declared: 1,
            received: 0
        })
    );
}

#[test]
fn sec8_1_1_no_content_length_checks_nothing() {
    let mut cl = ContentLength::new(None);
    cl.on_data(usize::MAX).unwrap();
    cl.on_data(usize::MAX).unwrap();
    cl.on_end().unwrap();
    assert_eq!(cl.received(), u64::MAX);
}

// ---- the error itself ----

#[test]
fn sec8_1_1_malformed_is_stream_protocol_error_and_says_why() {
    let err = request_err(request_with(f("connection", "close")));
    assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    assert_eq!(err.rfc(), "RFC 9113 §8.2.2");
    let text = err.to_string();
    assert!(text.contains("connection"), "{text}");
    assert!(text.contains("§8.2.2"), "{text}");
    // Names are escaped, values never shown.
    let err = request_err(request_with(raw(b"x\nname", b"secret")));
    let text = err.to_string();
    assert!(text.contains("x\\nname"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    // Reported by the connection (it sees END_STREAM), named here.
    assert_eq!(Malformed::InterimEndsStream.rfc(), "RFC 9113 §8.1");
    assert_eq!(
        Malformed::HeadersWithoutEndStream.reason(),
        Reason::PROTOCOL_ERROR
    );
    let err: Box<dyn std::error::Error> = Box::new(Malformed::EmptyPath);
    assert!(err.to_string().contains(":path"));
}

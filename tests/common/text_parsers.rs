//! The `text_parsers` fuzz check: the small text formats a peer, a
//! resolver or a user hands us, each parsed and printed back. Shared by
//! `fuzz/fuzz_targets/text_parsers.rs` and `tests/fuzz_corpus_replay.rs`
//! (which replays the corpus), so it uses nothing but `mio_grpc` and
//! `bytes`.
//!
//! Byte 0 picks the parser (modulo [`PARSERS`]); the rest is its input:
//!
//! 0. `grpc-timeout` (`grpc::parse_timeout`): what parses prints
//!    (`format_timeout`) and parses back to the same duration; any
//!    duration prints to a value that parses to no less than it, less than
//!    one unit more.
//! 1. `grpc-message` (`grpc::percent_decode` / `percent_encode`): decoding
//!    the encoding gives the text back; the encoding is printable ASCII.
//! 2. `-bin` values (`grpc::base64`): what decodes encodes (unpadded and
//!    padded) and decodes to the same bytes; any bytes encode and decode
//!    back.
//! 3. Service config JSON (`client::service_config`): what parses is
//!    valid (retry policies within their bounds, retry delays within
//!    `maxBackoff`, the throttle within its bucket), and every name it
//!    gives finds its own method config; `parse_duration` round trips.
//! 4. Channel targets (`client::target`): what parses prints in the
//!    canonical form, which parses back to the same target (with a custom
//!    scheme registered too).
//! 5. Trailers (`grpc::Status::from_trailers`): a header list (a field a
//!    line, the name up to the first space) gives a status and metadata
//!    that survive `to_trailers` → `from_trailers`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mio_grpc::client::resolver::{ResolverRegistry, StaticResolver};
use mio_grpc::client::service_config::{
    parse_duration, RetryThrottle, ServiceConfig, DEFAULT_MAX_ATTEMPTS_CAP,
};
use mio_grpc::client::target::Target;
use mio_grpc::framer::hpack::HeaderField;
use mio_grpc::grpc::{
    base64, format_timeout, parse_timeout, percent_decode, percent_encode, Metadata, Status,
};

/// How many parsers byte 0 chooses from.
pub const PARSERS: u8 = 6;

/// Runs one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let Some((&choice, input)) = data.split_first() else {
        return;
    };
    match choice % PARSERS {
        0 => timeout(input),
        1 => percent(input),
        2 => base64_values(input),
        3 => service_config(input),
        4 => target(input),
        _ => trailers(input),
    }
}

fn timeout(input: &[u8]) {
    if let Ok(parsed) = parse_timeout(input) {
        let text = format_timeout(parsed);
        assert!(text.len() <= 9, "{text:?} is too long");
        assert_eq!(
            parse_timeout(text.as_bytes()),
            Ok(parsed),
            "{:?} → {parsed:?} → {text:?}",
            String::from_utf8_lossy(input)
        );
    }
    // The input as a duration: seconds from 8 octets, nanoseconds from 4.
    let mut secs = [0u8; 8];
    let mut nanos = [0u8; 4];
    for (dst, src) in secs.iter_mut().chain(nanos.iter_mut()).zip(input) {
        *dst = *src;
    }
    let duration = Duration::new(
        u64::from_le_bytes(secs),
        u32::from_le_bytes(nanos) % 1_000_000_000,
    );
    let text = format_timeout(duration);
    let sent = parse_timeout(text.as_bytes()).expect("format_timeout's output parses");
    let max = Duration::from_secs(99_999_999 * 3600);
    if duration >= max {
        assert_eq!(sent, max, "{duration:?} → {text:?}");
        return;
    }
    assert!(sent >= duration, "{duration:?} → {text:?}: earlier");
    let unit = match text.as_bytes().last() {
        Some(b'n') => Duration::from_nanos(1),
        Some(b'u') => Duration::from_micros(1),
        Some(b'm') => Duration::from_millis(1),
        Some(b'S') => Duration::from_secs(1),
        Some(b'M') => Duration::from_secs(60),
        _ => Duration::from_secs(3600),
    };
    assert!(
        sent - duration < unit,
        "{duration:?} → {text:?}: a unit late"
    );
}

fn percent(input: &[u8]) {
    let decoded = percent_decode(input);
    let encoded = percent_encode(&decoded);
    assert!(
        encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "{encoded:?} is not printable ASCII"
    );
    assert_eq!(percent_decode(encoded.as_bytes()), decoded);
    if let Ok(text) = std::str::from_utf8(input) {
        assert_eq!(percent_decode(percent_encode(text).as_bytes()), text);
    }
}

fn base64_values(input: &[u8]) {
    if let Ok(decoded) = base64::decode(input) {
        let unpadded = base64::encode_unpadded(&decoded);
        assert_eq!(unpadded.len(), base64::encoded_len(decoded.len()));
        assert_eq!(base64::decode(unpadded.as_bytes()).as_ref(), Ok(&decoded));
        let mut padded = unpadded.clone();
        while padded.len() % 4 != 0 {
            padded.push('=');
        }
        assert_eq!(base64::decode(padded.as_bytes()).as_ref(), Ok(&decoded));
        // Same length as the input, bar padding: nothing was skipped.
        let body = input.iter().rev().skip_while(|&&b| b == b'=').count();
        assert_eq!(unpadded.len(), body);
    }
    let encoded = base64::encode_unpadded(input);
    assert_eq!(base64::decode(encoded.as_bytes()).as_deref(), Ok(input));
}

fn service_config(input: &[u8]) {
    let Some((&cap, json)) = input.split_first() else {
        return;
    };
    let Ok(json) = std::str::from_utf8(json) else {
        return;
    };
    if let Some(d) = parse_duration(json) {
        let text = format!("{}.{:09}s", d.as_secs(), d.subsec_nanos());
        assert_eq!(parse_duration(&text), Some(d), "{json:?} → {text:?}");
    }
    let cap = u32::from(cap % 8);
    let parsed = if cap == 0 {
        ServiceConfig::from_json(json).map(|c| (c, DEFAULT_MAX_ATTEMPTS_CAP))
    } else {
        ServiceConfig::from_json_with_max_attempts(json, cap).map(|c| (c, cap.max(2)))
    };
    let Ok((config, cap)) = parsed else { return };
    for (index, method) in config.method_configs().iter().enumerate() {
        for name in &method.names {
            let path = if name.service.is_empty() {
                // No service: the default; a path no service matches.
                String::from("no-slash")
            } else if name.service.contains('/') || name.method.contains('/') {
                continue;
            } else if name.method.is_empty() {
                // Service-wide: a method no name gives.
                let unnamed = "\u{0}unnamed";
                if method_named(&config, unnamed) {
                    continue;
                }
                format!("/{}/{unnamed}", name.service)
            } else {
                format!("/{}/{}", name.service, name.method)
            };
            let found = config.method_config(&path);
            assert!(
                found.is_some_and(|m| std::ptr::eq(m, &config.method_configs()[index])),
                "{path:?} does not find its own method config"
            );
        }
        if let Some(policy) = &method.retry_policy {
            assert!((2..=cap).contains(&policy.max_attempts), "{policy:?}");
            assert!(!policy.initial_backoff.is_zero() && !policy.max_backoff.is_zero());
            assert!(policy.backoff_multiplier > 0.0 && policy.backoff_multiplier.is_finite());
            assert!(!policy.retryable_status_codes.is_empty());
            assert!(policy
                .retryable_status_codes
                .windows(2)
                .all(|w| w[0] < w[1]));
            for retries in [0, 1, 7, 64, u32::MAX] {
                for unit in [0.0, 0.5, 1.0 - f64::EPSILON / 2.0] {
                    let delay = policy.retry_delay(retries, &mut || unit);
                    assert!(
                        delay <= policy.max_backoff,
                        "retry {retries} at {unit}: {delay:?} over {:?}",
                        policy.max_backoff
                    );
                }
            }
        }
    }
    if let Some(throttling) = config.retry_throttling() {
        let max = throttling.max_tokens();
        assert!(max > 0.0 && max <= 1000.0);
        assert!(throttling.token_ratio() > 0.0);
        let throttle = RetryThrottle::new(throttling);
        for step in 0..64 {
            if step % 3 == 0 {
                throttle.record_success();
            } else {
                throttle.record_failure();
            }
            assert!((0.0..=max).contains(&throttle.tokens()));
            assert_eq!(throttle.retry_allowed(), throttle.tokens() * 2.0 > max);
        }
    }
}

/// Whether some name in `config` gives the method `method`.
fn method_named(config: &ServiceConfig, method: &str) -> bool {
    config
        .method_configs()
        .iter()
        .flat_map(|m| &m.names)
        .any(|n| n.method == method)
}

fn target(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Ok(target) = Target::parse(text) {
        check_target(&target, &|s| Target::parse(s));
    }
    let mut registry = ResolverRegistry::default();
    registry.register("etcd", Arc::new(StaticResolver));
    if let Ok(target) = Target::parse_with(text, &registry) {
        check_target(&target, &|s| Target::parse_with(s, &registry));
    }
}

fn check_target(
    target: &Target,
    parse: &dyn Fn(&str) -> Result<Target, mio_grpc::client::target::TargetError>,
) {
    let canonical = target.to_string();
    assert_eq!(
        parse(&canonical).as_ref(),
        Ok(target),
        "{target:?} prints as {canonical:?}"
    );
    let _ = target.authority();
    let _ = target.scheme();
}

fn trailers(input: &[u8]) {
    let fields: Vec<HeaderField> = input
        .split(|&b| b == b'\n')
        .take(64)
        .map(|line| {
            let (name, value) = match line.iter().position(|&b| b == b' ') {
                Some(at) => (&line[..at], &line[at + 1..]),
                None => (line, &b""[..]),
            };
            HeaderField::new(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value))
        })
        .collect();
    let status = Status::from_trailers(&fields);
    let mut again = Vec::new();
    status.to_trailers(&mut again);
    let back = Status::from_trailers(&again);
    assert_eq!(back.code(), status.code());
    assert_eq!(back.message(), status.message());
    assert_eq!(back.details(), status.details());
    assert_eq!(raw(back.metadata()), sent(status.metadata()));

    let metadata = Metadata::from_headers(&fields);
    let mut headers = Vec::new();
    metadata.to_headers(&mut headers);
    assert_eq!(raw(&Metadata::from_headers(&headers)), sent(&metadata));
    let _ = status.to_string();
}

/// Metadata as (key, stored value) pairs.
fn raw(metadata: &Metadata) -> Vec<(Bytes, Bytes)> {
    metadata
        .iter_raw()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The pairs `to_headers` sends: all but the reserved `user-agent`.
fn sent(metadata: &Metadata) -> Vec<(Bytes, Bytes)> {
    raw(metadata)
        .into_iter()
        .filter(|(k, _)| k.as_ref() != b"user-agent")
        .collect()
}

//! The client's pure building blocks: target syntax (grpc/grpc
//! `doc/naming.md`), resolvers and their registry, connection backoff
//! (`doc/connection-backoff.md`), the connectivity state watch, and the
//! service config (gRFC A2, A6) with retry throttling. No sockets, no
//! network beyond the system resolver on `localhost`.

#[path = "common/wait.rs"]
mod wait;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio_grpc::client::backoff::{Backoff, BackoffConfig};
use mio_grpc::client::connectivity::{ConnectivityState, StateWatch};
use mio_grpc::client::resolver::{
    Address, DnsResolver, ResolveError, ResolveGate, ResolvedAddr, Resolver, ResolverRegistry,
    ResolverUpdate, StaticResolver,
};
use mio_grpc::client::service_config::{
    LbPolicy, RetryThrottle, RetryThrottling, ServiceConfig, ServiceConfigError,
};
use mio_grpc::client::target::{Target, TargetError};
use mio_grpc::grpc::{Code, Status};
use proptest::prelude::*;

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn dns(authority: Option<&str>, host: &str, port: u16) -> Target {
    Target::Dns {
        authority: authority.map(str::to_owned),
        host: host.to_owned(),
        port,
    }
}

// ---- targets --------------------------------------------------------------

#[test]
fn naming_dns_forms() {
    let cases = [
        ("dns:///example.com:50051", dns(None, "example.com", 50051)),
        ("dns:///example.com", dns(None, "example.com", 443)),
        ("dns:example.com:80", dns(None, "example.com", 80)),
        ("dns:/example.com:80", dns(None, "example.com", 80)),
        ("DNS:///Example.com:80", dns(None, "Example.com", 80)),
        (
            "dns://8.8.8.8:53/example.com:80",
            dns(Some("8.8.8.8:53"), "example.com", 80),
        ),
        ("dns:///[::1]:80", dns(None, "::1", 80)),
        ("dns:///127.0.0.1", dns(None, "127.0.0.1", 443)),
    ];
    for (text, want) in cases {
        assert_eq!(Target::parse(text), Ok(want), "{text}");
    }
}

#[test]
fn naming_bare_targets_default_to_dns() {
    let cases = [
        ("localhost:50051", dns(None, "localhost", 50051)),
        ("example.com", dns(None, "example.com", 443)),
        ("127.0.0.1:8080", dns(None, "127.0.0.1", 8080)),
        ("[::1]:8080", dns(None, "::1", 8080)),
        ("[::1]", dns(None, "::1", 443)),
        ("::1", dns(None, "::1", 443)),
        ("fe80::1:2", dns(None, "fe80::1:2", 443)),
        (":50051", dns(None, "localhost", 50051)),
        // An unknown scheme falls back to dns on the whole string.
        ("foo.bar:1234", dns(None, "foo.bar", 1234)),
    ];
    for (text, want) in cases {
        assert_eq!(Target::parse(text), Ok(want), "{text}");
    }
}

#[test]
fn naming_ip_lists() {
    assert_eq!(
        Target::parse("ipv4:1.2.3.4:80,5.6.7.8:81"),
        Ok(Target::Ipv4(vec![sock("1.2.3.4:80"), sock("5.6.7.8:81")]))
    );
    assert_eq!(
        Target::parse("ipv4:10.0.0.1"),
        Ok(Target::Ipv4(vec![sock("10.0.0.1:443")]))
    );
    assert_eq!(
        Target::parse("ipv4:///10.0.0.1:9"),
        Ok(Target::Ipv4(vec![sock("10.0.0.1:9")]))
    );
    assert_eq!(
        Target::parse("ipv6:[::1]:80,[::2]"),
        Ok(Target::Ipv6(vec![sock("[::1]:80"), sock("[::2]:443")]))
    );
    assert_eq!(
        Target::parse("ipv6:2607:f8b0:400e:c00::ef"),
        Ok(Target::Ipv6(vec![sock("[2607:f8b0:400e:c00::ef]:443")]))
    );
    assert_eq!(
        Target::parse("ipv6:[::]:1234"),
        Ok(Target::Ipv6(vec![sock("[::]:1234")]))
    );
}

#[test]
fn naming_unix_forms() {
    assert_eq!(
        Target::parse("unix:/tmp/a.sock"),
        Ok(Target::Unix("/tmp/a.sock".into()))
    );
    assert_eq!(
        Target::parse("unix:relative/a.sock"),
        Ok(Target::Unix("relative/a.sock".into()))
    );
    assert_eq!(
        Target::parse("unix:///tmp/a.sock"),
        Ok(Target::Unix("/tmp/a.sock".into()))
    );
    assert_eq!(
        Target::parse("unix-abstract:my-service"),
        Ok(Target::UnixAbstract(b"my-service".to_vec()))
    );
    assert_eq!(
        Target::parse("unix-abstract:"),
        Err(TargetError::MissingAddress {
            target: "unix-abstract:".into()
        })
    );
}

#[test]
fn naming_passthrough() {
    assert_eq!(
        Target::parse("passthrough:///10.0.0.1:80"),
        Ok(Target::Passthrough("10.0.0.1:80".into()))
    );
    assert_eq!(
        Target::parse("passthrough:localhost:80"),
        Ok(Target::Passthrough("localhost:80".into()))
    );
}

#[test]
fn naming_errors_are_typed() {
    assert_eq!(Target::parse(""), Err(TargetError::Empty));
    assert_eq!(
        Target::parse("etcd:///svc"),
        Err(TargetError::UnknownScheme {
            scheme: "etcd".into()
        })
    );
    for missing in [
        "dns:///",
        "dns:",
        "dns://example.com:80",
        "unix:",
        "unix://",
        "passthrough:///",
        "ipv4:",
        "ipv6:",
    ] {
        assert!(
            matches!(
                Target::parse(missing),
                Err(TargetError::MissingAddress { .. })
            ),
            "{missing}: {:?}",
            Target::parse(missing)
        );
    }
    for (text, port) in [
        ("localhost:", ""),
        ("localhost:65536", "65536"),
        ("localhost:http", "http"),
        ("localhost:-1", "-1"),
        ("dns:///[::1]:", ""),
        ("ipv4:1.2.3.4:x", "x"),
        ("ipv6:[::1]:99999", "99999"),
    ] {
        assert_eq!(
            Target::parse(text),
            Err(TargetError::BadPort { port: port.into() }),
            "{text}"
        );
    }
    for bad in [
        "ipv4:1.2.3",
        "ipv4:::1",
        "ipv4:1.2.3.4:80,,5.6.7.8",
        "ipv4:example.com:80",
        "ipv6:1.2.3.4",
        "ipv6:[::1",
        "ipv6:[::1]x",
        "ipv6:[]:80",
        "ipv6:[example.com]:80",
        "1:2:3:80x",
        "dns:///a b:80",
        "dns:///a/b:80",
        "unix-abstract:a\0b",
    ] {
        assert!(
            matches!(Target::parse(bad), Err(TargetError::BadAddress { .. })),
            "{bad:?}: {:?}",
            Target::parse(bad)
        );
    }
    assert_eq!(
        Target::parse("unix://host/tmp/a.sock"),
        Err(TargetError::UnexpectedAuthority {
            scheme: "unix".into(),
            authority: "host".into()
        })
    );
    assert!(matches!(
        Target::parse("ipv4://x/1.2.3.4"),
        Err(TargetError::UnexpectedAuthority { .. })
    ));
    // Every error explains itself.
    assert!(Target::parse("dns://example.com:80")
        .unwrap_err()
        .to_string()
        .contains("dns:///"));
}

#[test]
fn authority_header_values() {
    let cases = [
        ("dns:///example.com:50051", "example.com:50051"),
        ("example.com", "example.com:443"),
        ("[::1]:80", "[::1]:80"),
        ("ipv4:1.2.3.4:80,5.6.7.8:81", "1.2.3.4:80"),
        ("ipv6:[::1]:80", "[::1]:80"),
        ("unix:/tmp/a.sock", "localhost"),
        ("unix-abstract:x", "localhost"),
        ("passthrough:///backend:8080", "backend:8080"),
    ];
    for (text, want) in cases {
        assert_eq!(Target::parse(text).unwrap().authority(), want, "{text}");
    }
}

#[test]
fn display_is_canonical_and_parses_back() {
    let cases = [
        ("localhost:1", "dns:///localhost:1"),
        ("dns://ns:53/h:2", "dns://ns:53/h:2"),
        ("::1", "dns:///[::1]:443"),
        ("ipv4:1.2.3.4,5.6.7.8:9", "ipv4:1.2.3.4:443,5.6.7.8:9"),
        ("ipv6:::1", "ipv6:[::1]:443"),
        ("unix:/tmp/s", "unix:///tmp/s"),
        ("unix:rel/s", "unix:rel/s"),
        ("unix-abstract:name", "unix-abstract:name"),
        ("unix-abstract:///name", "unix-abstract:///name"),
        ("unix-abstract:////name", "unix-abstract:////name"),
        ("passthrough:a:1", "passthrough:///a:1"),
    ];
    for (text, canonical) in cases {
        let target = Target::parse(text).unwrap();
        assert_eq!(target.to_string(), canonical);
        assert_eq!(Target::parse(canonical), Ok(target), "{canonical}");
    }
    assert_eq!(
        "localhost:1".parse::<Target>(),
        Target::parse("localhost:1")
    );
}

#[test]
fn scheme_names() {
    for (text, scheme) in [
        ("a:1", "dns"),
        ("ipv4:1.1.1.1", "ipv4"),
        ("ipv6:::1", "ipv6"),
        ("unix:x", "unix"),
        ("unix-abstract:x", "unix-abstract"),
        ("passthrough:x", "passthrough"),
    ] {
        assert_eq!(Target::parse(text).unwrap().scheme(), scheme);
    }
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,40}") {
        let _ = Target::parse(&text);
    }

    #[test]
    fn dns_targets_round_trip(
        host in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        port: u16,
    ) {
        let target = dns(None, &host, port);
        prop_assert_eq!(Target::parse(&target.to_string()), Ok(target.clone()));
        prop_assert_eq!(Target::parse(&format!("{host}:{port}")), Ok(target));
    }

    #[test]
    fn ip_lists_round_trip(addrs in prop::collection::vec(any::<SocketAddr>(), 1..5)) {
        let v4: Vec<SocketAddr> = addrs.iter().filter(|a| a.is_ipv4()).copied().collect();
        if !v4.is_empty() {
            let target = Target::Ipv4(v4);
            prop_assert_eq!(Target::parse(&target.to_string()), Ok(target));
        }
        let v6: Vec<SocketAddr> = addrs
            .iter()
            .filter_map(|a| match a {
                SocketAddr::V6(v6) => Some(SocketAddr::new((*v6.ip()).into(), v6.port())),
                SocketAddr::V4(_) => None,
            })
            .collect();
        if !v6.is_empty() {
            let target = Target::Ipv6(v6);
            prop_assert_eq!(Target::parse(&target.to_string()), Ok(target));
        }
    }
}

// ---- resolvers ------------------------------------------------------------

#[test]
fn dns_resolves_localhost() {
    let target = Target::parse("dns:///localhost:50051").unwrap();
    let update = DnsResolver::new().resolve(&target).unwrap();
    assert!(!update.addresses.is_empty());
    for address in &update.addresses {
        let ResolvedAddr::Tcp(addr) = address.addr else {
            panic!("not tcp: {address}");
        };
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 50051);
    }
    assert_eq!(update.service_config, None);
}

#[test]
fn dns_ip_literal_needs_no_lookup() {
    let update = DnsResolver::new()
        .resolve(&Target::parse("[::1]:7").unwrap())
        .unwrap();
    assert_eq!(update.addresses, vec![Address::from(sock("[::1]:7"))]);
}

#[test]
fn dns_failure_is_unavailable() {
    let target = Target::parse("dns:///no-such-host.invalid:80").unwrap();
    let err = DnsResolver::new().resolve(&target).unwrap_err();
    assert!(err.message().contains("no-such-host.invalid"), "{err}");
    let status = err.to_status();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(Status::from(err.clone()).message(), err.message());
}

#[test]
fn dns_intervals() {
    let dns = DnsResolver::new();
    assert_eq!(dns.min_interval(), Duration::from_secs(30));
    assert_eq!(dns.refresh_interval(), Some(Duration::from_secs(1800)));
    let tuned = DnsResolver::new()
        .with_min_interval(Duration::from_secs(1))
        .with_refresh_interval(None);
    assert_eq!(tuned.min_interval(), Duration::from_secs(1));
    assert_eq!(tuned.refresh_interval(), None);
    assert_eq!(StaticResolver.min_interval(), Duration::from_secs(30));
    assert_eq!(StaticResolver.refresh_interval(), None);
}

#[test]
fn static_resolver_ip_lists_keep_order() {
    let target = Target::parse("ipv4:10.0.0.2:1,10.0.0.1:2").unwrap();
    let update = StaticResolver.resolve(&target).unwrap();
    assert_eq!(
        update.addresses,
        vec![
            Address::from(sock("10.0.0.2:1")),
            Address::from(sock("10.0.0.1:2"))
        ]
    );
    let v6 = StaticResolver
        .resolve(&Target::parse("ipv6:[::1]:1,[::2]").unwrap())
        .unwrap();
    assert_eq!(v6.addresses.len(), 2);
}

#[test]
fn static_resolver_unix_and_passthrough() {
    let unix = StaticResolver
        .resolve(&Target::parse("unix:///run/a.sock").unwrap())
        .unwrap();
    assert_eq!(
        unix.addresses,
        vec![Address::new(ResolvedAddr::Unix("/run/a.sock".into()))]
    );
    assert_eq!(unix.addresses[0].to_string(), "unix:/run/a.sock");
    let abstract_ = StaticResolver
        .resolve(&Target::parse("unix-abstract:svc").unwrap())
        .unwrap();
    assert_eq!(
        abstract_.addresses,
        vec![Address::new(ResolvedAddr::UnixAbstract(b"svc".to_vec()))]
    );
    let passthrough = StaticResolver
        .resolve(&Target::parse("passthrough:///127.0.0.1:8080").unwrap())
        .unwrap();
    assert_eq!(
        passthrough.addresses,
        vec![Address::from(sock("127.0.0.1:8080"))]
    );
    let by_name = StaticResolver
        .resolve(&Target::parse("passthrough:///localhost:8080").unwrap())
        .unwrap();
    assert!(!by_name.addresses.is_empty());
    // Passthrough hands the string to the system as is: no default port.
    assert!(StaticResolver
        .resolve(&Target::parse("passthrough:///localhost").unwrap())
        .is_err());
}

#[test]
fn default_registry_has_the_builtins() {
    let registry = ResolverRegistry::default();
    for scheme in [
        "dns",
        "ipv4",
        "ipv6",
        "unix",
        "unix-abstract",
        "passthrough",
        "DNS",
    ] {
        assert!(registry.contains(scheme), "{scheme}");
    }
    assert!(!registry.contains("etcd"));
    let update = registry
        .resolve(&Target::parse("ipv4:127.0.0.1:1").unwrap())
        .unwrap();
    assert_eq!(update.addresses, vec![Address::from(sock("127.0.0.1:1"))]);
    let localhost = registry
        .resolve(&Target::parse("localhost:1").unwrap())
        .unwrap();
    assert!(!localhost.addresses.is_empty());
    assert!(format!("{registry:?}").contains("unix-abstract"));
}

/// A resolver that counts its calls and answers from a table.
struct Table {
    calls: AtomicUsize,
}

impl Resolver for Table {
    fn resolve(&self, target: &Target) -> Result<ResolverUpdate, ResolveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match target {
            Target::Custom {
                scheme,
                authority,
                endpoint,
            } if scheme == "table" && endpoint == "db" => {
                let port = if authority.as_deref() == Some("eu") {
                    2
                } else {
                    1
                };
                Ok(ResolverUpdate::new(vec![
                    Address::from(sock(&format!("10.0.0.1:{port}"))),
                    Address::from(sock(&format!("10.0.0.2:{port}"))),
                ])
                .with_service_config(r#"{"loadBalancingPolicy":"round_robin"}"#))
            }
            Target::Dns { host, port, .. } => Ok(ResolverUpdate::new(vec![Address::from(
                SocketAddr::new([192, 0, 2, 1].into(), *port),
            )])
            .with_service_config(format!(r#"{{"host":"{host}"}}"#))),
            other => Err(ResolveError::new(format!("table: no entry for {other}"))),
        }
    }

    fn min_interval(&self) -> Duration {
        Duration::from_secs(5)
    }
}

#[test]
fn custom_resolver_registers_and_resolves() {
    let table = Arc::new(Table {
        calls: AtomicUsize::new(0),
    });
    let mut registry = ResolverRegistry::default();
    assert_eq!(
        Target::parse_with("table:///db", &registry),
        Err(TargetError::UnknownScheme {
            scheme: "table".into()
        })
    );
    assert!(registry.register("Table", table.clone()).is_none());
    let target = Target::parse_with("table:///db", &registry).unwrap();
    assert_eq!(
        target,
        Target::Custom {
            scheme: "table".into(),
            authority: None,
            endpoint: "db".into()
        }
    );
    assert_eq!(target.scheme(), "table");
    assert_eq!(target.authority(), "db");
    assert_eq!(target.to_string(), "table:///db");
    let update = registry.resolve(&target).unwrap();
    assert_eq!(update.addresses.len(), 2);
    let config = ServiceConfig::from_json(update.service_config.as_deref().unwrap()).unwrap();
    assert_eq!(config.lb_policy(), Some(LbPolicy::RoundRobin));

    let eu = Target::parse_with("TABLE://eu/db", &registry).unwrap();
    let update = registry.resolve(&eu).unwrap();
    assert_eq!(update.addresses[0], Address::from(sock("10.0.0.1:2")));

    let err = registry
        .resolve(&Target::parse_with("table:///nope", &registry).unwrap())
        .unwrap_err();
    assert_eq!(err.to_status().code(), Code::Unavailable);
    assert_eq!(
        registry.resolver_for(&eu).unwrap().min_interval(),
        Duration::from_secs(5)
    );
    assert_eq!(table.calls.load(Ordering::SeqCst), 3);
    // Built-in parsing is unaffected by the registry.
    assert!(matches!(
        Target::parse("table:///db"),
        Err(TargetError::UnknownScheme { .. })
    ));
}

#[test]
fn custom_dns_resolver_gets_dns_targets() {
    let mut registry = ResolverRegistry::default();
    let previous = registry.register(
        "dns",
        Arc::new(Table {
            calls: AtomicUsize::new(0),
        }),
    );
    assert!(previous.is_some());
    let target = Target::parse_with("example.com:8443", &registry).unwrap();
    assert_eq!(target, dns(None, "example.com", 8443));
    let update = registry.resolve(&target).unwrap();
    assert_eq!(
        update.addresses,
        vec![Address::from(sock("192.0.2.1:8443"))]
    );
    assert_eq!(
        update.service_config.as_deref(),
        Some(r#"{"host":"example.com"}"#)
    );
}

#[test]
fn empty_registry_fails_unavailable() {
    let registry = ResolverRegistry::empty();
    let err = registry
        .resolve(&Target::parse("localhost:1").unwrap())
        .unwrap_err();
    assert!(err.message().contains("dns"));
    assert_eq!(Status::from(err).code(), Code::Unavailable);
}

#[test]
fn resolve_gate_limits_re_resolution() {
    let start = Instant::now();
    let at = |secs: u64| start + Duration::from_secs(secs);
    let mut gate = ResolveGate::new(Duration::from_secs(30));
    assert_eq!(gate.min_interval(), Duration::from_secs(30));
    assert!(gate.may_resolve(start));
    assert_eq!(gate.next_allowed(), None);
    assert!(gate.try_begin(at(0)));
    // Connection lost 1 s and 29 s later: too soon.
    assert!(!gate.try_begin(at(1)));
    assert!(!gate.try_begin(at(29)));
    assert_eq!(gate.next_allowed(), Some(at(30)));
    assert!(gate.try_begin(at(30)));
    assert!(!gate.may_resolve(at(59)));
    // A forced resolution restarts the interval.
    gate.record(at(100));
    assert!(!gate.may_resolve(at(129)));
    assert!(gate.may_resolve(at(130)));
}

// ---- backoff --------------------------------------------------------------

fn assert_close(actual: Duration, want_secs: f64) {
    let diff = (actual.as_secs_f64() - want_secs).abs();
    assert!(diff < 1e-6, "{actual:?} != {want_secs}s");
}

#[test]
fn backoff_sequence_without_jitter() {
    let mut backoff = Backoff::new(BackoffConfig::default());
    let mut middle = || 0.5;
    let mut want = 1.0f64;
    for i in 0..20 {
        assert_close(backoff.next_delay(&mut middle), want);
        assert_eq!(backoff.failures(), i + 1);
        want = (want * 1.6).min(120.0);
    }
    // 1, 1.6, 2.56, 4.096, 6.5536, 10.48576, 16.777216, 26.8435456,
    // 42.94967296, 68.719476736, 109.9511627776, then 120 for ever.
    let mut backoff = Backoff::new(BackoffConfig::default());
    let seq: Vec<Duration> = (0..13).map(|_| backoff.next_delay(&mut middle)).collect();
    assert_eq!(seq[0], Duration::from_secs(1));
    assert_eq!(seq[1], Duration::from_millis(1600));
    assert_eq!(seq[2], Duration::from_millis(2560));
    assert_close(seq[10], 109.951_162_777_6);
    assert_eq!(seq[11], Duration::from_secs(120));
    assert_eq!(seq[12], Duration::from_secs(120));
}

#[test]
fn backoff_jitter_bounds() {
    let mut low = Backoff::new(BackoffConfig::default());
    let mut high = Backoff::new(BackoffConfig::default());
    // The first delay is never jittered (connection-backoff.md).
    assert_eq!(low.next_delay(&mut || 0.0), Duration::from_secs(1));
    assert_eq!(high.next_delay(&mut || 0.999_999), Duration::from_secs(1));
    let mut base = 1.0f64;
    for _ in 0..15 {
        base = (base * 1.6).min(120.0);
        assert_close(low.next_delay(&mut || 0.0), base * 0.8);
        let upper = high.next_delay(&mut || 0.999_999).as_secs_f64();
        assert!(
            upper < base * 1.2 && upper > base * 1.199,
            "{upper} vs {base}"
        );
    }
    // At the cap, jitter may take the delay past it: 120 s ± 20 %.
    assert!(high.next_delay(&mut || 0.999_999) > Duration::from_secs(143));
}

#[test]
fn backoff_virtual_rng_sequence() {
    let mut backoff = Backoff::new(BackoffConfig::default());
    let mut values = [0.25, 0.75, 0.0, 0.5].into_iter().cycle();
    let mut rng = move || values.next().unwrap_or(0.5);
    let got: Vec<f64> = (0..5)
        .map(|_| backoff.next_delay(&mut rng).as_secs_f64())
        .collect();
    // First unjittered (rng not consulted), then factors 0.9, 1.1, 0.8, 1.0.
    let want = [1.0, 1.6 * 0.9, 2.56 * 1.1, 4.096 * 0.8, 6.5536];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?}");
    }
}

#[test]
fn backoff_reset_and_connect_timeout() {
    let mut backoff = Backoff::new(BackoffConfig::default());
    let mut middle = || 0.5;
    for _ in 0..8 {
        let delay = backoff.next_delay(&mut middle);
        assert!(backoff.connect_timeout(delay) >= Duration::from_secs(20));
    }
    assert_eq!(
        backoff.connect_timeout(Duration::from_secs(1)),
        Duration::from_secs(20)
    );
    assert_eq!(
        backoff.connect_timeout(Duration::from_secs(90)),
        Duration::from_secs(90)
    );
    backoff.reset();
    assert_eq!(backoff.failures(), 0);
    assert_eq!(backoff.next_delay(&mut middle), Duration::from_secs(1));
    assert_eq!(backoff.next_delay(&mut middle), Duration::from_millis(1600));
}

#[test]
fn backoff_is_tunable() {
    let config = BackoffConfig {
        base_delay: Duration::from_millis(100),
        multiplier: 2.0,
        jitter: 0.0,
        max_delay: Duration::from_millis(500),
        min_connect_timeout: Duration::from_secs(1),
    };
    let mut backoff = Backoff::new(config);
    assert_eq!(backoff.config(), &config);
    let got: Vec<Duration> = (0..5).map(|_| backoff.next_delay(&mut || 0.9)).collect();
    let ms = |n| Duration::from_millis(n);
    assert_eq!(got, vec![ms(100), ms(200), ms(400), ms(500), ms(500)]);
    assert_eq!(backoff.connect_timeout(ms(500)), ms(1000));
}

// ---- connectivity ----------------------------------------------------------

#[test]
fn state_watch_wakes_a_waiter() {
    let watch = Arc::new(StateWatch::new(ConnectivityState::Idle));
    let waiter = {
        let watch = Arc::clone(&watch);
        thread::spawn(move || {
            let changed = watch.wait_for_change(
                ConnectivityState::Idle,
                Some(Instant::now() + wait::PATIENCE),
            );
            (changed, watch.get())
        })
    };
    // The change comes once the waiter is parked: it is woken, not early.
    assert!(wait::wait_until(|| watch.waiters() == 1, wait::PATIENCE));
    assert!(watch.set(ConnectivityState::Connecting));
    let (changed, seen) = waiter.join().unwrap();
    assert!(changed);
    assert_eq!(seen, ConnectivityState::Connecting);
}

#[test]
fn state_watch_wakes_every_waiter_without_deadline() {
    let watch = Arc::new(StateWatch::new(ConnectivityState::Connecting));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let watch = Arc::clone(&watch);
            thread::spawn(move || watch.wait_for_change(ConnectivityState::Connecting, None))
        })
        .collect();
    assert!(wait::wait_until(|| watch.waiters() == 4, wait::PATIENCE));
    watch.set(ConnectivityState::Ready);
    for waiter in waiters {
        assert!(waiter.join().unwrap());
    }
    assert_eq!(watch.waiters(), 0);
}

#[test]
fn state_watch_times_out() {
    let watch = StateWatch::new(ConnectivityState::Ready);
    let start = Instant::now();
    let changed = watch.wait_for_change(
        ConnectivityState::Ready,
        Some(start + Duration::from_millis(50)),
    );
    assert!(!changed);
    assert!(start.elapsed() >= Duration::from_millis(50));
    // Already different: returns at once, even with a past deadline.
    assert!(watch.wait_for_change(ConnectivityState::Idle, Some(start)));
}

#[test]
fn state_watch_shutdown_is_final() {
    let watch = StateWatch::default();
    assert_eq!(watch.get(), ConnectivityState::Idle);
    assert!(!watch.set(ConnectivityState::Idle));
    assert!(watch.set(ConnectivityState::TransientFailure));
    assert!(watch.set(ConnectivityState::Shutdown));
    assert!(!watch.set(ConnectivityState::Ready));
    assert_eq!(watch.get(), ConnectivityState::Shutdown);
    let names: Vec<String> = [
        ConnectivityState::Idle,
        ConnectivityState::Connecting,
        ConnectivityState::Ready,
        ConnectivityState::TransientFailure,
        ConnectivityState::Shutdown,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        names,
        [
            "IDLE",
            "CONNECTING",
            "READY",
            "TRANSIENT_FAILURE",
            "SHUTDOWN"
        ]
    );
}

// ---- service config ---------------------------------------------------------

/// gRFC A6's retry policy and throttling examples, in one config.
const A6_CONFIG: &str = r#"{
  "loadBalancingPolicy": "round_robin",
  "methodConfig": [
    {
      "name": [{"service": "example.Foo"}],
      "retryPolicy": {
        "maxAttempts": 4,
        "initialBackoff": ".1s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"]
      }
    }
  ],
  "retryThrottling": {
    "maxTokens": 10,
    "tokenRatio": 0.1
  }
}"#;

#[test]
fn a6_example_parses() {
    let config = ServiceConfig::from_json(A6_CONFIG).unwrap();
    assert_eq!(config.lb_policy(), Some(LbPolicy::RoundRobin));
    let method = config.method_config("/example.Foo/Bar").unwrap();
    let retry = method.retry_policy.as_ref().unwrap();
    assert_eq!(retry.max_attempts, 4);
    assert_eq!(retry.initial_backoff, Duration::from_millis(100));
    assert_eq!(retry.max_backoff, Duration::from_secs(1));
    assert_eq!(retry.backoff_multiplier, 2.0);
    assert_eq!(retry.retryable_status_codes, vec![Code::Unavailable]);
    assert!(retry.is_retryable(Code::Unavailable));
    assert!(!retry.is_retryable(Code::Internal));
    let throttling = config.retry_throttling().unwrap();
    assert_eq!(throttling.max_tokens(), 10.0);
    assert_eq!(throttling.token_ratio(), 0.1);
    assert!(config.method_config("/example.Other/Bar").is_none());
}

/// grpc/grpc `doc/service_config.md`'s precedence example, plus A2's
/// default name.
#[test]
fn a2_method_precedence() {
    let config = ServiceConfig::from_json(
        r#"{
      "methodConfig": [
        {"name": [{"service": "MyService"}], "timeout": "1s"},
        {"name": [{"service": "MyService", "method": "Foo"}], "timeout": "2s"},
        {"name": [{}], "timeout": "3s", "waitForReady": true},
        {"name": [{"service": "Other", "method": "A"}, {"service": "Other", "method": "B"}],
         "maxResponseMessageBytes": 10}
      ]
    }"#,
    )
    .unwrap();
    let timeout = |path| config.method_config(path).and_then(|m| m.timeout);
    assert_eq!(timeout("/MyService/Foo"), Some(Duration::from_secs(2)));
    assert_eq!(timeout("/MyService/Bar"), Some(Duration::from_secs(1)));
    assert_eq!(timeout("/Unknown/Bar"), Some(Duration::from_secs(3)));
    assert_eq!(timeout("not-a-path"), Some(Duration::from_secs(3)));
    let other_a = config.method_config("/Other/A").unwrap();
    assert_eq!(other_a.max_response_message_bytes, Some(10));
    assert_eq!(other_a.timeout, None);
    assert_eq!(config.method_config("/Other/B"), Some(other_a));
    // Other/C: no service-wide entry for Other → the default.
    assert_eq!(timeout("/Other/C"), Some(Duration::from_secs(3)));
    assert_eq!(config.method_configs().len(), 4);
    assert_eq!(config.lb_policy(), None);

    // Without a default entry, unmatched methods have no config.
    let config =
        ServiceConfig::from_json(r#"{"methodConfig":[{"name":[{"service":"S"}]}]}"#).unwrap();
    assert!(config.method_config("/T/M").is_none());
    assert!(config.method_config("/S/M").is_some());
    // `{"service": ""}` is the default name too.
    let config = ServiceConfig::from_json(
        r#"{"methodConfig":[{"name":[{"service":""}],"timeout":"0.5s"}]}"#,
    )
    .unwrap();
    assert_eq!(
        config.method_config("/x.Y/Z").unwrap().timeout,
        Some(Duration::from_millis(500))
    );
}

#[test]
fn method_config_fields() {
    let config = ServiceConfig::from_json(
        r#"{"methodConfig":[{
          "name":[{"service":"s.S","method":"M"}],
          "timeout":"1.000000001s",
          "waitForReady":false,
          "maxRequestMessageBytes":1024,
          "maxResponseMessageBytes":"2048"
        }]}"#,
    )
    .unwrap();
    let method = config.method_config("/s.S/M").unwrap();
    assert_eq!(method.timeout, Some(Duration::new(1, 1)));
    assert_eq!(method.wait_for_ready, Some(false));
    assert_eq!(method.max_request_message_bytes, Some(1024));
    assert_eq!(method.max_response_message_bytes, Some(2048));
    assert_eq!(method.retry_policy, None);
    assert_eq!(method.names.len(), 1);
    assert_eq!(method.names[0].service, "s.S");
    assert_eq!(method.names[0].method, "M");
}

#[test]
fn snake_case_and_status_numbers_are_accepted() {
    let config = ServiceConfig::from_json(
        r#"{"load_balancing_policy":"PICK_FIRST","method_config":[{"name":[{}],
          "retry_policy":{"max_attempts":"3","initial_backoff":"1s","max_backoff":"2s",
          "backoff_multiplier":1.5,"retryable_status_codes":[14,"aborted",14]}}]}"#,
    )
    .unwrap();
    assert_eq!(config.lb_policy(), Some(LbPolicy::PickFirst));
    let retry = config
        .method_config("/a/b")
        .unwrap()
        .retry_policy
        .clone()
        .unwrap();
    assert_eq!(retry.max_attempts, 3);
    assert_eq!(
        retry.retryable_status_codes,
        vec![Code::Aborted, Code::Unavailable]
    );
}

#[test]
fn load_balancing_config_first_supported_wins() {
    let pick = |json: &str| ServiceConfig::from_json(json).map(|c| c.lb_policy());
    assert_eq!(
        pick(r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#),
        Ok(Some(LbPolicy::RoundRobin))
    );
    assert_eq!(
        pick(
            r#"{"loadBalancingConfig":[{"xds_experimental":{}},{"pick_first":{"shuffleAddressList":true}},{"round_robin":{}}]}"#
        ),
        Ok(Some(LbPolicy::PickFirst))
    );
    // loadBalancingConfig beats loadBalancingPolicy.
    assert_eq!(
        pick(r#"{"loadBalancingPolicy":"pick_first","loadBalancingConfig":[{"round_robin":{}}]}"#),
        Ok(Some(LbPolicy::RoundRobin))
    );
    assert_eq!(pick("{}"), Ok(None));
    assert_eq!(
        pick(r#"{"loadBalancingConfig":[{"grpclb":{}},{"weird":{}}]}"#),
        Err(ServiceConfigError::NoSupportedLbPolicy {
            names: vec!["grpclb".into(), "weird".into()]
        })
    );
    assert_eq!(
        pick(r#"{"loadBalancingConfig":[]}"#),
        Err(ServiceConfigError::NoSupportedLbPolicy { names: vec![] })
    );
    for malformed in [
        r#"{"loadBalancingConfig":["round_robin"]}"#,
        r#"{"loadBalancingConfig":[{}]}"#,
        r#"{"loadBalancingConfig":[{"round_robin":{},"pick_first":{}}]}"#,
        r#"{"loadBalancingConfig":[{"round_robin":[]}]}"#,
    ] {
        assert!(
            matches!(
                pick(malformed),
                Err(ServiceConfigError::MalformedLbConfig { .. })
            ),
            "{malformed}"
        );
    }
    assert_eq!(
        pick(r#"{"loadBalancingPolicy":"grpclb"}"#),
        Err(ServiceConfigError::UnknownLbPolicy {
            name: "grpclb".into()
        })
    );
}

fn retry_json(policy: &str) -> String {
    format!(r#"{{"methodConfig":[{{"name":[{{"service":"s"}}],"retryPolicy":{policy}}}]}}"#)
}

#[test]
fn a6_retry_policy_validation() {
    use ServiceConfigError as E;
    let valid = r#""initialBackoff":"1s","maxBackoff":"2s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]"#;
    let cases: Vec<(String, E)> = vec![
        (
            format!(r#"{{"maxAttempts":1,{valid}}}"#),
            E::MaxAttemptsTooLow { value: 1 },
        ),
        (
            format!(r#"{{"maxAttempts":0,{valid}}}"#),
            E::MaxAttemptsTooLow { value: 0 },
        ),
        (
            format!(r#"{{{valid}}}"#),
            E::MissingField {
                field: "retryPolicy.maxAttempts",
            },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"0s","maxBackoff":"2s","backoffMultiplier":2,"retryableStatusCodes":[14]}"#.into(),
            E::NonPositiveBackoff {
                field: "retryPolicy.initialBackoff",
            },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"1s","maxBackoff":"0.0s","backoffMultiplier":2,"retryableStatusCodes":[14]}"#.into(),
            E::NonPositiveBackoff {
                field: "retryPolicy.maxBackoff",
            },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"1s","backoffMultiplier":2,"retryableStatusCodes":[14]}"#.into(),
            E::MissingField {
                field: "retryPolicy.maxBackoff",
            },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"-1s","maxBackoff":"2s","backoffMultiplier":2,"retryableStatusCodes":[14]}"#.into(),
            E::InvalidDuration {
                field: "retryPolicy.initialBackoff",
                value: "-1s".into(),
            },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"1s","maxBackoff":"2s","backoffMultiplier":0,"retryableStatusCodes":[14]}"#.into(),
            E::NonPositiveMultiplier { value: 0.0 },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"1s","maxBackoff":"2s","backoffMultiplier":-1.5,"retryableStatusCodes":[14]}"#.into(),
            E::NonPositiveMultiplier { value: -1.5 },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"1s","maxBackoff":"2s","backoffMultiplier":2,"retryableStatusCodes":[]}"#.into(),
            E::EmptyRetryableCodes,
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"1s","maxBackoff":"2s","backoffMultiplier":2}"#.into(),
            E::MissingField {
                field: "retryPolicy.retryableStatusCodes",
            },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"1s","maxBackoff":"2s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE","TEAPOT"]}"#.into(),
            E::UnknownStatusCode {
                value: "\"TEAPOT\"".into(),
            },
        ),
        (
            r#"{"maxAttempts":2,"initialBackoff":"1s","maxBackoff":"2s","backoffMultiplier":2,"retryableStatusCodes":[17]}"#.into(),
            E::UnknownStatusCode { value: "17".into() },
        ),
        (
            format!(r#"{{"maxAttempts":2.5,{valid}}}"#),
            E::InvalidNumber {
                field: "retryPolicy.maxAttempts",
                value: "2.5".into(),
            },
        ),
    ];
    for (policy, want) in cases {
        assert_eq!(
            ServiceConfig::from_json(&retry_json(&policy)),
            Err(want),
            "{policy}"
        );
    }
}

#[test]
fn a6_max_attempts_is_capped() {
    let json = retry_json(
        r#"{"maxAttempts":100,"initialBackoff":"1s","maxBackoff":"2s","backoffMultiplier":2,"retryableStatusCodes":[14]}"#,
    );
    let attempts = |config: ServiceConfig| {
        config
            .method_config("/s/m")
            .and_then(|m| m.retry_policy.as_ref())
            .map(|r| r.max_attempts)
    };
    assert_eq!(attempts(ServiceConfig::from_json(&json).unwrap()), Some(5));
    assert_eq!(
        attempts(ServiceConfig::from_json_with_max_attempts(&json, 7).unwrap()),
        Some(7)
    );
    assert_eq!(
        attempts(ServiceConfig::from_json_with_max_attempts(&json, 0).unwrap()),
        Some(2)
    );
}

#[test]
fn retry_delay_follows_a6() {
    let config = ServiceConfig::from_json(A6_CONFIG).unwrap();
    let retry = config
        .method_config("/example.Foo/X")
        .and_then(|m| m.retry_policy.clone())
        .unwrap();
    // random(0, min(0.1 × 2^n, 1)): with rng → 1 the bound itself.
    let bounds: Vec<Duration> = (0..6).map(|n| retry.retry_delay(n, &mut || 1.0)).collect();
    let ms = Duration::from_millis;
    assert_eq!(
        bounds,
        vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
    );
    assert_eq!(retry.retry_delay(3, &mut || 0.0), Duration::ZERO);
    assert_eq!(retry.retry_delay(u32::MAX, &mut || 0.5), ms(500));
}

#[test]
fn other_invalid_configs() {
    use ServiceConfigError as E;
    let err = |json: &str| ServiceConfig::from_json(json).unwrap_err();
    assert!(matches!(err(""), E::Json(_)));
    assert!(matches!(err("[]"), E::Json(_)));
    assert!(matches!(err("{"), E::Json(_)));
    assert!(matches!(err(r#"{"methodConfig":{}}"#), E::Json(_)));
    assert!(matches!(
        err(r#"{"methodConfig":[{"waitForReady":"yes"}]}"#),
        E::Json(_)
    ));
    assert_eq!(
        err(r#"{"methodConfig":[{"name":[{"method":"M"}]}]}"#),
        E::MethodWithoutService { method: "M".into() }
    );
    assert_eq!(
        err(
            r#"{"methodConfig":[{"name":[{"service":"S","method":"M"}]},{"name":[{"service":"S","method":"M"}]}]}"#
        ),
        E::DuplicateMethodName {
            service: "S".into(),
            method: "M".into()
        }
    );
    assert_eq!(
        err(r#"{"methodConfig":[{"name":[{"service":"S"},{"service":"S"}]}]}"#),
        E::DuplicateMethodName {
            service: "S".into(),
            method: String::new()
        }
    );
    assert_eq!(
        err(r#"{"methodConfig":[{"name":[{}]},{"name":[{"service":""}]}]}"#),
        E::DuplicateMethodName {
            service: String::new(),
            method: String::new()
        }
    );
    assert_eq!(
        err(r#"{"methodConfig":[{"name":[{}],"timeout":"1.5"}]}"#),
        E::InvalidDuration {
            field: "methodConfig.timeout",
            value: "1.5".into()
        }
    );
    assert_eq!(
        err(r#"{"methodConfig":[{"name":[{}],"maxRequestMessageBytes":-1}]}"#),
        E::InvalidNumber {
            field: "methodConfig.maxRequestMessageBytes",
            value: "-1".into()
        }
    );
    assert_eq!(
        err(r#"{"methodConfig":[{"name":[{}],"retryPolicy":{},"hedgingPolicy":{}}]}"#),
        E::RetryAndHedging
    );
    // Errors read as sentences.
    assert!(err(r#"{"loadBalancingPolicy":"x"}"#)
        .to_string()
        .starts_with("service config: "));
}

#[test]
fn retry_throttling_validation() {
    use ServiceConfigError as E;
    let throttling = |body: &str| {
        ServiceConfig::from_json(&format!(r#"{{"retryThrottling":{body}}}"#))
            .map(|c| c.retry_throttling())
    };
    assert!(throttling(r#"{"maxTokens":1000,"tokenRatio":0.001}"#).is_ok());
    assert!(throttling(r#"{"maxTokens":0.5,"tokenRatio":5}"#).is_ok());
    assert_eq!(
        throttling(r#"{"maxTokens":0,"tokenRatio":0.1}"#),
        Err(E::MaxTokensOutOfRange { value: 0.0 })
    );
    assert_eq!(
        throttling(r#"{"maxTokens":1000.5,"tokenRatio":0.1}"#),
        Err(E::MaxTokensOutOfRange { value: 1000.5 })
    );
    assert_eq!(
        throttling(r#"{"maxTokens":-3,"tokenRatio":0.1}"#),
        Err(E::MaxTokensOutOfRange { value: -3.0 })
    );
    assert_eq!(
        throttling(r#"{"maxTokens":10,"tokenRatio":0}"#),
        Err(E::InvalidTokenRatio { value: 0.0 })
    );
    assert_eq!(
        throttling(r#"{"maxTokens":10,"tokenRatio":-0.1}"#),
        Err(E::InvalidTokenRatio { value: -0.1 })
    );
    // Below a thousandth: truncates to 0.
    assert_eq!(
        throttling(r#"{"maxTokens":10,"tokenRatio":0.0009}"#),
        Err(E::InvalidTokenRatio { value: 0.0009 })
    );
    assert_eq!(
        throttling(r#"{"tokenRatio":0.1}"#),
        Err(E::MissingField {
            field: "retryThrottling.maxTokens"
        })
    );
    assert_eq!(
        throttling(r#"{"maxTokens":10}"#),
        Err(E::MissingField {
            field: "retryThrottling.tokenRatio"
        })
    );
    // More than 3 decimals: truncated (A6: "up to 3 decimal places are
    // supported").
    let policy = throttling(r#"{"maxTokens":10,"tokenRatio":0.1239}"#)
        .unwrap()
        .unwrap();
    assert_eq!(policy.token_ratio(), 0.123);
}

#[test]
fn a6_throttle_arithmetic() {
    // maxTokens 10, tokenRatio 0.1: threshold 5.
    let throttle = RetryThrottle::new(RetryThrottling::new(10.0, 0.1).unwrap());
    assert_eq!(throttle.tokens(), 10.0);
    assert!(throttle.retry_allowed());
    for want in [9.0, 8.0, 7.0, 6.0] {
        assert!(throttle.record_failure());
        assert_eq!(throttle.tokens(), want);
    }
    // 5 is not > 5: retries stop.
    assert!(!throttle.record_failure());
    assert_eq!(throttle.tokens(), 5.0);
    assert!(!throttle.retry_allowed());
    // One success: 5.1 > 5, retries resume.
    throttle.record_success();
    assert_eq!(throttle.tokens(), 5.1);
    assert!(throttle.retry_allowed());
    // Ten failures floor at 0; a hundred successes (×0.1) refill exactly.
    for _ in 0..10 {
        throttle.record_failure();
    }
    assert_eq!(throttle.tokens(), 0.0);
    for i in 1..=100u32 {
        throttle.record_success();
        assert_eq!(throttle.tokens(), f64::from(i) / 10.0);
    }
    throttle.record_success();
    assert_eq!(throttle.tokens(), 10.0);
    assert_eq!(throttle.policy().max_tokens(), 10.0);
}

#[test]
fn throttle_is_thread_safe() {
    let throttle = Arc::new(RetryThrottle::new(
        RetryThrottling::new(1000.0, 1.0).unwrap(),
    ));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let throttle = Arc::clone(&throttle);
            thread::spawn(move || {
                for _ in 0..100 {
                    throttle.record_failure();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(throttle.tokens(), 200.0);
    assert!(!throttle.retry_allowed());
}

proptest! {
    #[test]
    fn service_config_parse_never_panics(json in "\\PC{0,80}") {
        let _ = ServiceConfig::from_json(&json);
    }

    #[test]
    fn durations_round_trip(secs in 0u64..315_576_000_000, nanos in 0u32..1_000_000_000) {
        let text = format!("{secs}.{nanos:09}s");
        prop_assert_eq!(
            mio_grpc::client::service_config::parse_duration(&text),
            Some(Duration::new(secs, nanos))
        );
    }
}

//! Name resolution: a [`Resolver`] turns a [`Target`] into addresses (and
//! maybe a service config); a [`ResolverRegistry`] picks the resolver by
//! the target's scheme; a [`ResolveGate`] rate-limits re-resolution.
//!
//! Resolution is blocking: the channel calls [`Resolver::resolve`] on its
//! own thread, first when it leaves Idle, again when a connection is lost
//! (at most once per [`Resolver::min_interval`], which the gate enforces,
//! as grpc-go's DNS resolver waits 30 s between lookups) and on the slow
//! [`Resolver::refresh_interval`] timer if the resolver has one.
//!
//! Built in: [`DnsResolver`] (`dns`, through the system resolver, std's
//! `ToSocketAddrs`) and [`StaticResolver`] (`ipv4`, `ipv6`, `unix`,
//! `unix-abstract`, `passthrough`). A failure is a [`ResolveError`]; calls
//! that need addresses fail with it as UNAVAILABLE.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::target::Target;
use crate::grpc::Status;

/// The default minimum time between two resolutions of one target
/// (grpc-go's DNS `MinResolutionRate`).
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// How often [`DnsResolver`] re-resolves on its own (grpc-java's and
/// C-core's default DNS cache time is similar; grpc-go relies on
/// re-resolution requests only).
pub const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(30 * 60);

/// Where to connect: one resolved address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResolvedAddr {
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// A Linux abstract socket name, without the leading NUL.
    UnixAbstract(Vec<u8>),
}

impl fmt::Display for ResolvedAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolvedAddr::Tcp(addr) => write!(f, "{addr}"),
            ResolvedAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            ResolvedAddr::UnixAbstract(name) => {
                write!(f, "unix-abstract:{}", String::from_utf8_lossy(name))
            }
        }
    }
}

/// One address a resolver produced (a struct so that per-address
/// attributes can join it later; build it with [`Address::new`] or
/// `From`).
///
/// ```
/// use mio_grpc::client::resolver::{Address, ResolvedAddr};
///
/// let addr = Address::from("127.0.0.1:50051".parse::<std::net::SocketAddr>()?);
/// assert_eq!(addr.addr, ResolvedAddr::Tcp("127.0.0.1:50051".parse()?));
/// assert_eq!(addr.to_string(), "127.0.0.1:50051");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Address {
    /// Where to connect.
    pub addr: ResolvedAddr,
}

impl Address {
    /// An address for `addr`.
    #[must_use]
    pub fn new(addr: ResolvedAddr) -> Address {
        Address { addr }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address::new(ResolvedAddr::Tcp(addr))
    }
}

impl From<ResolvedAddr> for Address {
    fn from(addr: ResolvedAddr) -> Address {
        Address::new(addr)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)
    }
}

/// The outcome of one resolution: the addresses, in the resolver's order,
/// and the service config JSON if the resolver has one (parse it with
/// [`ServiceConfig::from_json`](super::service_config::ServiceConfig::from_json)).
///
/// ```
/// use mio_grpc::client::resolver::ResolverUpdate;
///
/// let update = ResolverUpdate::new(vec!["10.0.0.1:80".parse::<std::net::SocketAddr>()?.into()])
///     .with_service_config(r#"{"loadBalancingPolicy": "round_robin"}"#);
/// assert_eq!(update.addresses.len(), 1);
/// assert!(update.service_config.is_some());
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolverUpdate {
    /// The addresses, in order (pick_first tries them in this order).
    pub addresses: Vec<Address>,
    /// Service config JSON from the naming system, if any.
    pub service_config: Option<String>,
}

impl ResolverUpdate {
    /// An update with `addresses` and no service config.
    #[must_use]
    pub fn new(addresses: Vec<Address>) -> ResolverUpdate {
        ResolverUpdate {
            addresses,
            service_config: None,
        }
    }

    /// The same update carrying service config JSON.
    #[must_use]
    pub fn with_service_config(mut self, json: impl Into<String>) -> ResolverUpdate {
        self.service_config = Some(json.into());
        self
    }
}

/// Why a resolution failed. Calls waiting for addresses fail with
/// UNAVAILABLE and this message ([`ResolveError::to_status`]).
///
/// ```
/// use mio_grpc::client::resolver::ResolveError;
/// use mio_grpc::grpc::{Code, Status};
///
/// let err = ResolveError::new("dns: no such host `nowhere.invalid`");
/// let status: Status = err.into();
/// assert_eq!(status.code(), Code::Unavailable);
/// assert_eq!(status.message(), "dns: no such host `nowhere.invalid`");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveError {
    message: String,
}

impl ResolveError {
    /// An error saying `message` (shown to callers as the status message).
    #[must_use]
    pub fn new(message: impl Into<String>) -> ResolveError {
        ResolveError {
            message: message.into(),
        }
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status calls fail with: UNAVAILABLE with the message.
    #[must_use]
    pub fn to_status(&self) -> Status {
        Status::unavailable(self.message.clone())
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ResolveError {}

impl From<ResolveError> for Status {
    fn from(err: ResolveError) -> Status {
        Status::unavailable(err.message)
    }
}

/// A name resolver for one or more schemes.
///
/// Implement it to plug in a naming system, and register it in a
/// [`ResolverRegistry`]:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use mio_grpc::client::resolver::{
///     Address, ResolveError, Resolver, ResolverRegistry, ResolverUpdate,
/// };
/// use mio_grpc::client::target::Target;
///
/// /// `fleet:///name` → a fixed table.
/// struct Fleet;
///
/// impl Resolver for Fleet {
///     fn resolve(&self, target: &Target) -> Result<ResolverUpdate, ResolveError> {
///         match target {
///             Target::Custom { endpoint, .. } if endpoint == "db" => Ok(ResolverUpdate::new(vec![
///                 Address::from("10.1.0.1:5432".parse::<std::net::SocketAddr>().unwrap()),
///             ])),
///             other => Err(ResolveError::new(format!("fleet: unknown name in {other}"))),
///         }
///     }
///
///     fn refresh_interval(&self) -> Option<Duration> {
///         Some(Duration::from_secs(60))
///     }
/// }
///
/// let mut registry = ResolverRegistry::default();
/// registry.register("fleet", Arc::new(Fleet));
/// let target = Target::parse_with("fleet:///db", &registry)?;
/// let update = registry.resolve(&target)?;
/// assert_eq!(update.addresses[0].to_string(), "10.1.0.1:5432");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Resolver: Send + Sync {
    /// Resolves `target`, blocking. An empty address list should be an
    /// error instead (the built-in resolvers make it one).
    ///
    /// # Errors
    ///
    /// A [`ResolveError`] saying why, shown to callers as UNAVAILABLE.
    fn resolve(&self, target: &Target) -> Result<ResolverUpdate, ResolveError>;

    /// The least time between two resolutions of one target, however
    /// often connections are lost. Default 30 s (grpc-go's DNS resolver).
    fn min_interval(&self) -> Duration {
        DEFAULT_MIN_INTERVAL
    }

    /// How often to re-resolve when nothing asks for it; `None` (the
    /// default) for targets whose addresses never change.
    fn refresh_interval(&self) -> Option<Duration> {
        None
    }
}

/// The `dns` resolver: the system resolver (`getaddrinfo`, through std's
/// `ToSocketAddrs`) on `host:port`; an IP literal host is used as is.
///
/// A target naming a DNS server (`dns://8.8.8.8/host`) is refused: the
/// system resolver cannot be pointed at one (as C-core's native resolver).
///
/// ```no_run
/// use mio_grpc::client::resolver::{DnsResolver, Resolver};
/// use mio_grpc::client::target::Target;
///
/// let update = DnsResolver::new().resolve(&Target::parse("dns:///localhost:50051")?)?;
/// for address in &update.addresses {
///     println!("{address}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct DnsResolver {
    min_interval: Duration,
    refresh_interval: Option<Duration>,
}

impl Default for DnsResolver {
    fn default() -> DnsResolver {
        DnsResolver::new()
    }
}

impl DnsResolver {
    /// A resolver with a 30 s minimum interval and a 30 min refresh.
    #[must_use]
    pub fn new() -> DnsResolver {
        DnsResolver {
            min_interval: DEFAULT_MIN_INTERVAL,
            refresh_interval: Some(DEFAULT_DNS_REFRESH),
        }
    }

    /// Sets the minimum interval between resolutions.
    #[must_use]
    pub fn with_min_interval(mut self, interval: Duration) -> DnsResolver {
        self.min_interval = interval;
        self
    }

    /// Sets the refresh interval (`None`: only re-resolve when asked).
    #[must_use]
    pub fn with_refresh_interval(mut self, interval: Option<Duration>) -> DnsResolver {
        self.refresh_interval = interval;
        self
    }
}

impl Resolver for DnsResolver {
    fn resolve(&self, target: &Target) -> Result<ResolverUpdate, ResolveError> {
        let Target::Dns {
            authority,
            host,
            port,
        } = target
        else {
            return Err(ResolveError::new(format!(
                "dns resolver cannot resolve `{target}`"
            )));
        };
        if let Some(server) = authority {
            return Err(ResolveError::new(format!(
                "dns: choosing a DNS server (`{server}` in `{target}`) is not supported; \
                 use dns:///host:port"
            )));
        }
        let found = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|err| ResolveError::new(format!("dns: resolving `{host}`: {err}")))?;
        let mut addresses: Vec<Address> = Vec::new();
        for addr in found {
            let addr = Address::from(addr);
            if !addresses.contains(&addr) {
                addresses.push(addr);
            }
        }
        non_empty(target, addresses)
    }

    fn min_interval(&self) -> Duration {
        self.min_interval
    }

    fn refresh_interval(&self) -> Option<Duration> {
        self.refresh_interval
    }
}

/// The resolver for targets that carry their addresses: `ipv4`, `ipv6`,
/// `unix`, `unix-abstract`, and `passthrough` (whose address goes through
/// `ToSocketAddrs` once, as given). Never refreshes.
///
/// ```
/// use mio_grpc::client::resolver::{ResolvedAddr, Resolver, StaticResolver};
/// use mio_grpc::client::target::Target;
///
/// let update = StaticResolver.resolve(&Target::parse("unix:/run/app.sock")?)?;
/// assert_eq!(update.addresses[0].addr, ResolvedAddr::Unix("/run/app.sock".into()));
/// assert_eq!(StaticResolver.refresh_interval(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct StaticResolver;

impl Resolver for StaticResolver {
    fn resolve(&self, target: &Target) -> Result<ResolverUpdate, ResolveError> {
        let addresses = match target {
            Target::Ipv4(addrs) | Target::Ipv6(addrs) => {
                addrs.iter().copied().map(Address::from).collect()
            }
            Target::Unix(path) => vec![Address::new(ResolvedAddr::Unix(path.clone()))],
            Target::UnixAbstract(name) => {
                vec![Address::new(ResolvedAddr::UnixAbstract(name.clone()))]
            }
            Target::Passthrough(addr) => addr
                .as_str()
                .to_socket_addrs()
                .map_err(|err| {
                    ResolveError::new(format!("passthrough: resolving `{addr}`: {err}"))
                })?
                .map(Address::from)
                .collect(),
            Target::Dns { .. } | Target::Custom { .. } => {
                return Err(ResolveError::new(format!(
                    "static resolver cannot resolve `{target}`"
                )))
            }
        };
        non_empty(target, addresses)
    }
}

fn non_empty(target: &Target, addresses: Vec<Address>) -> Result<ResolverUpdate, ResolveError> {
    if addresses.is_empty() {
        Err(ResolveError::new(format!(
            "resolving `{target}` produced zero addresses"
        )))
    } else {
        Ok(ResolverUpdate::new(addresses))
    }
}

/// Resolvers by scheme. [`ResolverRegistry::default`] holds the built-ins;
/// [`register`](ResolverRegistry::register) adds or replaces one.
///
/// ```
/// use std::sync::Arc;
/// use mio_grpc::client::resolver::{ResolverRegistry, StaticResolver};
/// use mio_grpc::client::target::Target;
///
/// let registry = ResolverRegistry::default();
/// assert!(registry.contains("dns") && registry.contains("unix-abstract"));
/// let update = registry.resolve(&Target::parse("ipv4:127.0.0.1:1,127.0.0.2:2")?)?;
/// assert_eq!(update.addresses.len(), 2);
///
/// let mut empty = ResolverRegistry::empty();
/// assert!(empty.resolve(&Target::parse("ipv4:127.0.0.1:1")?).is_err());
/// empty.register("IPV4", Arc::new(StaticResolver)); // schemes are case-insensitive
/// assert!(empty.contains("ipv4"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ResolverRegistry {
    resolvers: HashMap<String, Arc<dyn Resolver>>,
}

impl Default for ResolverRegistry {
    /// `dns` → [`DnsResolver`]; `ipv4`, `ipv6`, `unix`, `unix-abstract`,
    /// `passthrough` → [`StaticResolver`].
    fn default() -> ResolverRegistry {
        let mut registry = ResolverRegistry::empty();
        registry.register("dns", Arc::new(DnsResolver::new()));
        let fixed: Arc<dyn Resolver> = Arc::new(StaticResolver);
        for scheme in ["ipv4", "ipv6", "unix", "unix-abstract", "passthrough"] {
            registry.register(scheme, Arc::clone(&fixed));
        }
        registry
    }
}

impl fmt::Debug for ResolverRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut schemes: Vec<&str> = self.resolvers.keys().map(String::as_str).collect();
        schemes.sort_unstable();
        f.debug_struct("ResolverRegistry")
            .field("schemes", &schemes)
            .finish()
    }
}

impl ResolverRegistry {
    /// A registry with no resolvers.
    #[must_use]
    pub fn empty() -> ResolverRegistry {
        ResolverRegistry {
            resolvers: HashMap::new(),
        }
    }

    /// Registers `resolver` for `scheme` (lowercased), returning the one it
    /// replaces. Registering a built-in scheme keeps its target syntax and
    /// swaps the resolver (a custom `dns` resolver gets [`Target::Dns`]).
    pub fn register(
        &mut self,
        scheme: impl Into<String>,
        resolver: Arc<dyn Resolver>,
    ) -> Option<Arc<dyn Resolver>> {
        let mut scheme = scheme.into();
        scheme.make_ascii_lowercase();
        self.resolvers.insert(scheme, resolver)
    }

    /// Whether a resolver is registered for `scheme` (case-insensitive).
    #[must_use]
    pub fn contains(&self, scheme: &str) -> bool {
        self.get(scheme).is_some()
    }

    /// The resolver for `scheme` (case-insensitive).
    #[must_use]
    pub fn get(&self, scheme: &str) -> Option<&Arc<dyn Resolver>> {
        match self.resolvers.get(scheme) {
            Some(resolver) => Some(resolver),
            None => self.resolvers.get(&scheme.to_ascii_lowercase()),
        }
    }

    /// The resolver for `target`'s scheme.
    ///
    /// # Errors
    ///
    /// A [`ResolveError`] if none is registered.
    pub fn resolver_for(&self, target: &Target) -> Result<Arc<dyn Resolver>, ResolveError> {
        self.get(target.scheme()).cloned().ok_or_else(|| {
            ResolveError::new(format!(
                "no resolver registered for scheme `{}`",
                target.scheme()
            ))
        })
    }

    /// Resolves `target` with the resolver for its scheme.
    ///
    /// # Errors
    ///
    /// No resolver for the scheme, or the resolver's error.
    pub fn resolve(&self, target: &Target) -> Result<ResolverUpdate, ResolveError> {
        self.resolver_for(target)?.resolve(target)
    }
}

/// Says when a re-resolution may run: at most one per `min_interval`,
/// counted from the start of the previous one. Time is a parameter.
///
/// ```
/// use std::time::{Duration, Instant};
/// use mio_grpc::client::resolver::ResolveGate;
///
/// let mut gate = ResolveGate::new(Duration::from_secs(30));
/// let t0 = Instant::now();
/// assert!(gate.try_begin(t0)); // the first one always may run
/// assert!(!gate.try_begin(t0 + Duration::from_secs(10)));
/// assert_eq!(gate.next_allowed(), Some(t0 + Duration::from_secs(30)));
/// assert!(gate.try_begin(t0 + Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug)]
pub struct ResolveGate {
    min_interval: Duration,
    last: Option<Instant>,
}

impl ResolveGate {
    /// A gate allowing one resolution per `min_interval`; the first is
    /// allowed at once.
    #[must_use]
    pub fn new(min_interval: Duration) -> ResolveGate {
        ResolveGate {
            min_interval,
            last: None,
        }
    }

    /// The minimum interval.
    #[must_use]
    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// Whether a resolution may start at `now`.
    #[must_use]
    pub fn may_resolve(&self, now: Instant) -> bool {
        self.next_allowed().is_none_or(|at| now >= at)
    }

    /// If a resolution may start at `now`, records it and returns `true`.
    pub fn try_begin(&mut self, now: Instant) -> bool {
        let allowed = self.may_resolve(now);
        if allowed {
            self.last = Some(now);
        }
        allowed
    }

    /// Records a resolution started at `now`, allowed or not (the first
    /// resolution at channel start, say).
    pub fn record(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// When the next resolution may start; `None` if it may start now
    /// whatever the time (none has run yet).
    #[must_use]
    pub fn next_allowed(&self) -> Option<Instant> {
        let last = self.last?;
        // An interval too large for Instant means "not in our lifetime".
        Some(
            last.checked_add(self.min_interval)
                .unwrap_or_else(|| far_future(last)),
        )
    }
}

/// An instant far after `from` (about 30 years; less if Instant cannot
/// hold it).
fn far_future(from: Instant) -> Instant {
    let mut step = Duration::from_secs(86_400 * 365 * 30);
    while !step.is_zero() {
        if let Some(at) = from.checked_add(step) {
            return at;
        }
        step /= 2;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_zero_interval_always_allows() {
        let mut gate = ResolveGate::new(Duration::ZERO);
        let now = Instant::now();
        assert!(gate.try_begin(now));
        assert!(gate.try_begin(now));
    }

    #[test]
    fn gate_huge_interval_never_reopens() {
        let mut gate = ResolveGate::new(Duration::MAX);
        let now = Instant::now();
        assert!(gate.try_begin(now));
        assert!(!gate.may_resolve(now + Duration::from_secs(86_400 * 365)));
    }

    #[test]
    fn dns_rejects_other_targets_and_servers() {
        let unix = Target::Unix("/x".into());
        assert!(DnsResolver::new().resolve(&unix).is_err());
        let with_server = Target::Dns {
            authority: Some("8.8.8.8".into()),
            host: "localhost".into(),
            port: 1,
        };
        let err = DnsResolver::new().resolve(&with_server);
        assert!(err.is_err_and(|e| e.message().contains("DNS server")));
    }

    #[test]
    fn static_rejects_dns() {
        let target = Target::Dns {
            authority: None,
            host: "localhost".into(),
            port: 1,
        };
        assert!(StaticResolver.resolve(&target).is_err());
    }
}

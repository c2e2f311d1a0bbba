//! Service config (grpc/grpc `doc/service_config.md`, gRFC A2 and A6): the
//! JSON a service owner (or a resolver) gives a channel, parsed and
//! validated into [`ServiceConfig`]; and the retry throttle it configures,
//! [`RetryThrottle`].
//!
//! Understood fields (lowerCamelCase, or the proto's snake_case):
//!
//! - `loadBalancingConfig`: a list of `{ "<policy>": { … } }`; the first
//!   policy we implement wins (gRFC A24); none → an error. Takes
//!   precedence over `loadBalancingPolicy`: `"pick_first"` or
//!   `"round_robin"`, case-insensitive; another name is an error.
//! - `methodConfig`: a list of `{ name: [{service, method}], timeout,
//!   waitForReady, maxRequestMessageBytes, maxResponseMessageBytes,
//!   retryPolicy }`. Lookup ([`ServiceConfig::method_config`]) follows
//!   gRFC A2: the entry naming the exact service and method, else the one
//!   naming the service alone, else the default (`{}` as a name). A name
//!   with a method but no service, or a name given twice, is an error.
//! - `retryPolicy` (gRFC A6): `maxAttempts` ≥ 2 (more than the cap, 5 by
//!   default, counts as the cap), `initialBackoff` and `maxBackoff` > 0,
//!   `backoffMultiplier` > 0, `retryableStatusCodes` non-empty (names like
//!   `"UNAVAILABLE"` or numbers). All required. `hedgingPolicy` is not
//!   implemented and ignored, but giving both is an error (A6: "only one
//!   of retryPolicy or hedgingPolicy may be set").
//! - `retryThrottling` (A6): `maxTokens` in (0, 1000], `tokenRatio` > 0.
//!   Both kept to 3 decimals (A6: "up to 3 decimal places are supported";
//!   C-core keeps thousandths and so do we, truncating); a ratio that
//!   truncates to 0 is an error.
//!
//! Durations are protobuf JSON: decimal seconds with an `s`, up to 9
//! fractional digits, e.g. `"1.5s"`, `".1s"` ([`parse_duration`]).
//! Numbers may be JSON numbers or decimal strings (protobuf JSON allows
//! both). Unknown fields are ignored. Invalid input is a
//! [`ServiceConfigError`] naming the fault; nothing here panics.
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
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::grpc::Code;

/// The default client-side cap on `maxAttempts` (gRFC A6).
pub const DEFAULT_MAX_ATTEMPTS_CAP: u32 = 5;

/// The largest protobuf `Duration`, in seconds (10 000 years).
const MAX_DURATION_SECONDS: u64 = 315_576_000_000;

/// A load-balancing policy this crate implements.
///
/// ```
/// use mio_grpc::client::service_config::LbPolicy;
///
/// assert_eq!(LbPolicy::from_name("Round_Robin"), Some(LbPolicy::RoundRobin));
/// assert_eq!(LbPolicy::PickFirst.name(), "pick_first");
/// assert_eq!(LbPolicy::from_name("grpclb"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LbPolicy {
    /// Try the addresses in order, use the first that connects.
    PickFirst,
    /// Connect to every address, spread calls in turn.
    RoundRobin,
}

impl LbPolicy {
    /// The policy's registered name (`"pick_first"`, `"round_robin"`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            LbPolicy::PickFirst => "pick_first",
            LbPolicy::RoundRobin => "round_robin",
        }
    }

    /// The policy named `name`, case-insensitive.
    #[must_use]
    pub fn from_name(name: &str) -> Option<LbPolicy> {
        [LbPolicy::PickFirst, LbPolicy::RoundRobin]
            .into_iter()
            .find(|policy| policy.name().eq_ignore_ascii_case(name))
    }
}

/// One `name` entry of a method config: empty `method` is service-wide,
/// both empty is the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MethodName {
    /// The fully qualified service, e.g. `"helloworld.Greeter"`.
    pub service: String,
    /// The method, e.g. `"SayHello"`.
    pub method: String,
}

/// Per-method settings (gRFC A2, A6). `None` fields are unset: the
/// channel's or call's own setting applies.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MethodConfig {
    /// The names this config applies to.
    pub names: Vec<MethodName>,
    /// The call timeout; a call's own deadline wins if earlier.
    pub timeout: Option<Duration>,
    /// Whether calls wait for the channel to be ready instead of failing
    /// fast in TransientFailure.
    pub wait_for_ready: Option<bool>,
    /// The largest request message, in bytes.
    pub max_request_message_bytes: Option<usize>,
    /// The largest response message, in bytes.
    pub max_response_message_bytes: Option<usize>,
    /// How failed calls are retried.
    pub retry_policy: Option<RetryPolicy>,
}

/// A validated retry policy (gRFC A6).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The most attempts, the first included; already capped.
    pub max_attempts: u32,
    /// The bound of the first retry's random delay.
    pub initial_backoff: Duration,
    /// The cap on the bound of any retry's random delay.
    pub max_backoff: Duration,
    /// The growth of the bound per retry.
    pub backoff_multiplier: f64,
    /// The codes that may be retried, sorted, without repeats.
    pub retryable_status_codes: Vec<Code>,
}

impl RetryPolicy {
    /// Whether a call that failed with `code` may be retried.
    #[must_use]
    pub fn is_retryable(&self, code: Code) -> bool {
        self.retryable_status_codes.binary_search(&code).is_ok()
    }

    /// The delay before the retry that follows `retries` earlier retries
    /// (0 for the first retry): uniform in `[0, min(initialBackoff ×
    /// multiplier^retries, maxBackoff))` (A6). `rng` yields values in
    /// `[0, 1)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mio_grpc::client::service_config::ServiceConfig;
    ///
    /// let config = ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{}],
    ///     "retryPolicy": {"maxAttempts": 4, "initialBackoff": ".1s", "maxBackoff": "1s",
    ///                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#)?;
    /// let policy = config.method_config("/a.B/C").and_then(|m| m.retry_policy.as_ref()).unwrap();
    /// let mut half = || 0.5;
    /// assert_eq!(policy.retry_delay(0, &mut half), Duration::from_millis(50));
    /// assert_eq!(policy.retry_delay(2, &mut half), Duration::from_millis(200));
    /// assert_eq!(policy.retry_delay(9, &mut half), Duration::from_millis(500)); // capped at 1 s
    /// # Ok::<(), mio_grpc::client::service_config::ServiceConfigError>(())
    /// ```
    pub fn retry_delay(&self, retries: u32, rng: &mut impl FnMut() -> f64) -> Duration {
        let max = self.max_backoff.as_secs_f64();
        let exponent = i32::try_from(retries).unwrap_or(i32::MAX);
        let bound =
            (self.initial_backoff.as_secs_f64() * self.backoff_multiplier.powi(exponent)).min(max);
        let unit = rng();
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        Duration::try_from_secs_f64(bound * unit).unwrap_or(self.max_backoff)
    }
}

/// Retry throttling parameters (gRFC A6), kept in thousandths of a token.
///
/// ```
/// use mio_grpc::client::service_config::RetryThrottling;
///
/// let policy = RetryThrottling::new(10.0, 0.1)?;
/// assert_eq!(policy.max_tokens(), 10.0);
/// assert_eq!(policy.token_ratio(), 0.1);
/// assert!(RetryThrottling::new(1001.0, 0.1).is_err());
/// # Ok::<(), mio_grpc::client::service_config::ServiceConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryThrottling {
    max_milli_tokens: u32,
    milli_token_ratio: u32,
}

impl RetryThrottling {
    /// Validated parameters: `max_tokens` in (0, 1000], `token_ratio` > 0;
    /// both truncated to 3 decimals.
    ///
    /// # Errors
    ///
    /// [`ServiceConfigError::MaxTokensOutOfRange`] or
    /// [`ServiceConfigError::InvalidTokenRatio`].
    pub fn new(max_tokens: f64, token_ratio: f64) -> Result<RetryThrottling, ServiceConfigError> {
        let max_milli_tokens = thousandths(max_tokens)
            .filter(|&m| m > 0 && m <= 1_000_000)
            .ok_or(ServiceConfigError::MaxTokensOutOfRange { value: max_tokens })?;
        let milli_token_ratio = thousandths(token_ratio)
            .filter(|&m| m > 0)
            .ok_or(ServiceConfigError::InvalidTokenRatio { value: token_ratio })?;
        Ok(RetryThrottling {
            max_milli_tokens,
            // A ratio above the bucket fills it in one success anyway.
            milli_token_ratio: milli_token_ratio.min(max_milli_tokens),
        })
    }

    /// `maxTokens`.
    #[must_use]
    pub fn max_tokens(&self) -> f64 {
        f64::from(self.max_milli_tokens) / 1000.0
    }

    /// `tokenRatio`.
    #[must_use]
    pub fn token_ratio(&self) -> f64 {
        f64::from(self.milli_token_ratio) / 1000.0
    }
}

/// `value × 1000`, truncated, if it is finite, non-negative and fits; the
/// tiny bias keeps `0.001 × 1000 = 0.99999…` from truncating to 0.
fn thousandths(value: f64) -> Option<u32> {
    let milli = (value * 1000.0 + 1e-6).floor();
    (value.is_finite() && value >= 0.0 && milli <= f64::from(u32::MAX))
        // In range and integral: the cast is exact.
        .then_some(milli as u32)
}

/// The retry throttle of one channel (gRFC A6): `token_count` starts at
/// `maxTokens`, each failure takes 1, each success adds `tokenRatio`
/// (never past `maxTokens`), and retries are allowed while `token_count >
/// maxTokens / 2`. Lock-free; share it between calls.
///
/// Only failures with a retryable code (or a pushback saying not to retry)
/// count as failures, per A6; the caller decides that.
///
/// ```
/// use mio_grpc::client::service_config::{RetryThrottle, RetryThrottling};
///
/// // A6's example: maxTokens 10, tokenRatio 0.1.
/// let throttle = RetryThrottle::new(RetryThrottling::new(10.0, 0.1)?);
/// for _ in 0..4 {
///     assert!(throttle.record_failure()); // 9, 8, 7, 6 tokens: still > 5
/// }
/// assert!(!throttle.record_failure()); // 5 tokens: not > 5, no retries
/// throttle.record_success(); // 5.1
/// assert!(throttle.retry_allowed());
/// assert_eq!(throttle.tokens(), 5.1);
/// # Ok::<(), mio_grpc::client::service_config::ServiceConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryThrottle {
    policy: RetryThrottling,
    milli_tokens: AtomicU32,
}

impl RetryThrottle {
    /// A full bucket.
    #[must_use]
    pub fn new(policy: RetryThrottling) -> RetryThrottle {
        RetryThrottle {
            policy,
            milli_tokens: AtomicU32::new(policy.max_milli_tokens),
        }
    }

    /// The parameters.
    #[must_use]
    pub fn policy(&self) -> RetryThrottling {
        self.policy
    }

    /// Counts a failed attempt (one token off, not below 0) and returns
    /// whether retries are still allowed after it.
    pub fn record_failure(&self) -> bool {
        let previous = self.update(|tokens| tokens.saturating_sub(1000));
        self.allows(previous.saturating_sub(1000))
    }

    /// Counts a successful call (`tokenRatio` back, up to `maxTokens`).
    pub fn record_success(&self) {
        let max = self.policy.max_milli_tokens;
        let ratio = self.policy.milli_token_ratio;
        self.update(|tokens| tokens.saturating_add(ratio).min(max));
    }

    /// Whether a retry (or a hedged attempt) may be sent now.
    #[must_use]
    pub fn retry_allowed(&self) -> bool {
        self.allows(self.milli_tokens.load(Ordering::Acquire))
    }

    /// The current `token_count`.
    #[must_use]
    pub fn tokens(&self) -> f64 {
        f64::from(self.milli_tokens.load(Ordering::Acquire)) / 1000.0
    }

    fn allows(&self, milli_tokens: u32) -> bool {
        u64::from(milli_tokens) * 2 > u64::from(self.policy.max_milli_tokens)
    }

    /// Applies `f` atomically, returning the value before.
    fn update(&self, f: impl Fn(u32) -> u32) -> u32 {
        match self
            .milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(f(t)))
        {
            Ok(previous) | Err(previous) => previous,
        }
    }
}

/// Indexes of method configs, for lookup without allocating.
#[derive(Clone, Debug, Default, PartialEq)]
struct ServiceEntry {
    service_wide: Option<usize>,
    methods: HashMap<String, usize>,
}

/// A parsed, validated service config.
///
/// ```
/// use std::time::Duration;
/// use mio_grpc::client::service_config::{LbPolicy, ServiceConfig};
/// use mio_grpc::grpc::Code;
///
/// let config = ServiceConfig::from_json(r#"{
///   "loadBalancingConfig": [{"grpclb": {}}, {"round_robin": {}}],
///   "methodConfig": [
///     {"name": [{"service": "helloworld.Greeter", "method": "SayHello"}], "timeout": "1.5s"},
///     {"name": [{"service": "helloworld.Greeter"}], "waitForReady": true},
///     {"name": [{}], "maxRequestMessageBytes": 1024,
///      "retryPolicy": {"maxAttempts": 9, "initialBackoff": "0.1s", "maxBackoff": "1s",
///                      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", 4]}}
///   ],
///   "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
/// }"#)?;
///
/// assert_eq!(config.lb_policy(), Some(LbPolicy::RoundRobin));
/// let exact = config.method_config("/helloworld.Greeter/SayHello").unwrap();
/// assert_eq!(exact.timeout, Some(Duration::from_millis(1500)));
/// assert_eq!(exact.wait_for_ready, None); // entries do not merge (A2)
/// let service = config.method_config("/helloworld.Greeter/SayBye").unwrap();
/// assert_eq!(service.wait_for_ready, Some(true));
/// let default = config.method_config("/other.Service/Call").unwrap();
/// let retry = default.retry_policy.as_ref().unwrap();
/// assert_eq!(retry.max_attempts, 5); // capped
/// assert!(retry.is_retryable(Code::DeadlineExceeded));
/// assert!(config.retry_throttling().is_some());
/// # Ok::<(), mio_grpc::client::service_config::ServiceConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceConfig {
    lb_policy: Option<LbPolicy>,
    method_configs: Vec<MethodConfig>,
    services: HashMap<String, ServiceEntry>,
    default_method: Option<usize>,
    retry_throttling: Option<RetryThrottling>,
}

impl ServiceConfig {
    /// Parses and validates `json`, capping `maxAttempts` at
    /// [`DEFAULT_MAX_ATTEMPTS_CAP`].
    ///
    /// # Errors
    ///
    /// A [`ServiceConfigError`] naming the first fault found.
    pub fn from_json(json: &str) -> Result<ServiceConfig, ServiceConfigError> {
        ServiceConfig::from_json_with_max_attempts(json, DEFAULT_MAX_ATTEMPTS_CAP)
    }

    /// As [`ServiceConfig::from_json`] with the client's own cap on
    /// `maxAttempts` (grpc-go's `WithMaxCallAttempts`; a cap below 2 is
    /// taken as 2).
    ///
    /// # Errors
    ///
    /// A [`ServiceConfigError`] naming the first fault found.
    pub fn from_json_with_max_attempts(
        json: &str,
        max_attempts_cap: u32,
    ) -> Result<ServiceConfig, ServiceConfigError> {
        let raw: RawServiceConfig =
            serde_json::from_str(json).map_err(|err| ServiceConfigError::Json(err.to_string()))?;
        let mut config = ServiceConfig {
            lb_policy: lb_policy(raw.load_balancing_config, raw.load_balancing_policy)?,
            retry_throttling: raw.retry_throttling.map(throttling).transpose()?,
            ..ServiceConfig::default()
        };
        for raw_method in raw.method_config.unwrap_or_default() {
            let method = method_config(raw_method, max_attempts_cap.max(2))?;
            config.add_method_config(method)?;
        }
        Ok(config)
    }

    fn add_method_config(&mut self, method: MethodConfig) -> Result<(), ServiceConfigError> {
        let index = self.method_configs.len();
        for name in &method.names {
            let fresh = if name.service.is_empty() {
                if !name.method.is_empty() {
                    return Err(ServiceConfigError::MethodWithoutService {
                        method: name.method.clone(),
                    });
                }
                self.default_method.replace(index).is_none()
            } else {
                let entry = self.services.entry(name.service.clone()).or_default();
                if name.method.is_empty() {
                    entry.service_wide.replace(index).is_none()
                } else {
                    entry.methods.insert(name.method.clone(), index).is_none()
                }
            };
            if !fresh {
                return Err(ServiceConfigError::DuplicateMethodName {
                    service: name.service.clone(),
                    method: name.method.clone(),
                });
            }
        }
        self.method_configs.push(method);
        Ok(())
    }

    /// The load-balancing policy the config chooses, if it chooses one
    /// (else the channel's default, pick_first).
    #[must_use]
    pub fn lb_policy(&self) -> Option<LbPolicy> {
        self.lb_policy
    }

    /// The config for `path` (`/package.Service/Method`), by gRFC A2
    /// precedence: exact service and method, else the service's, else
    /// the default. A malformed path gets the default.
    #[must_use]
    pub fn method_config(&self, path: &str) -> Option<&MethodConfig> {
        let split = path.strip_prefix('/').and_then(|p| p.split_once('/'));
        let index = split
            .and_then(|(service, method)| {
                let entry = self.services.get(service)?;
                entry.methods.get(method).copied().or(entry.service_wide)
            })
            .or(self.default_method)?;
        self.method_configs.get(index)
    }

    /// Every method config, in the order given.
    #[must_use]
    pub fn method_configs(&self) -> &[MethodConfig] {
        &self.method_configs
    }

    /// The retry throttling parameters, if any.
    #[must_use]
    pub fn retry_throttling(&self) -> Option<RetryThrottling> {
        self.retry_throttling
    }
}

impl std::str::FromStr for ServiceConfig {
    type Err = ServiceConfigError;

    fn from_str(json: &str) -> Result<ServiceConfig, ServiceConfigError> {
        ServiceConfig::from_json(json)
    }
}

/// Why a service config was rejected.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ServiceConfigError {
    /// Not JSON, or a field of the wrong JSON type (serde_json's message).
    Json(String),
    /// A duration that is not protobuf JSON (`"1.5s"`), or is negative.
    InvalidDuration {
        /// The field, e.g. `"methodConfig.timeout"`.
        field: &'static str,
        /// The text given.
        value: String,
    },
    /// A number field that is not a number of the right kind.
    InvalidNumber {
        /// The field.
        field: &'static str,
        /// The JSON given.
        value: String,
    },
    /// A `loadBalancingPolicy` we do not implement.
    UnknownLbPolicy {
        /// The name given.
        name: String,
    },
    /// No policy in `loadBalancingConfig` is one we implement.
    NoSupportedLbPolicy {
        /// The names given, in order.
        names: Vec<String>,
    },
    /// A `loadBalancingConfig` entry that is not `{ "name": { … } }`.
    MalformedLbConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// A method config name with a method but no service.
    MethodWithoutService {
        /// The method given.
        method: String,
    },
    /// Two method config names that are the same.
    DuplicateMethodName {
        /// The service (empty: the default name).
        service: String,
        /// The method (empty: service-wide).
        method: String,
    },
    /// A method config with both `retryPolicy` and `hedgingPolicy`.
    RetryAndHedging,
    /// A required field is absent.
    MissingField {
        /// The field, e.g. `"retryPolicy.maxBackoff"`.
        field: &'static str,
    },
    /// `retryPolicy.maxAttempts` below 2.
    MaxAttemptsTooLow {
        /// The value given.
        value: u64,
    },
    /// `initialBackoff` or `maxBackoff` zero.
    NonPositiveBackoff {
        /// The field.
        field: &'static str,
    },
    /// `backoffMultiplier` zero or negative.
    NonPositiveMultiplier {
        /// The value given.
        value: f64,
    },
    /// `retryableStatusCodes` empty.
    EmptyRetryableCodes,
    /// A status code that is neither a code name nor 0..=16.
    UnknownStatusCode {
        /// The JSON given.
        value: String,
    },
    /// `retryThrottling.maxTokens` outside (0, 1000].
    MaxTokensOutOfRange {
        /// The value given.
        value: f64,
    },
    /// `retryThrottling.tokenRatio` not above 0 (after truncation to 3
    /// decimals).
    InvalidTokenRatio {
        /// The value given.
        value: f64,
    },
}

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ServiceConfigError as E;
        f.write_str("service config: ")?;
        match self {
            E::Json(message) => write!(f, "bad JSON: {message}"),
            E::InvalidDuration { field, value } => write!(
                f,
                "{field}: `{value}` is not a duration like \"1.5s\" (non-negative)"
            ),
            E::InvalidNumber { field, value } => write!(f, "{field}: `{value}` is not valid here"),
            E::UnknownLbPolicy { name } => write!(f, "unknown loadBalancingPolicy `{name}`"),
            E::NoSupportedLbPolicy { names } => {
                write!(f, "no supported policy in loadBalancingConfig {names:?}")
            }
            E::MalformedLbConfig { reason } => write!(f, "loadBalancingConfig: {reason}"),
            E::MethodWithoutService { method } => {
                write!(f, "methodConfig name has method `{method}` but no service")
            }
            E::DuplicateMethodName { service, method } => {
                write!(
                    f,
                    "methodConfig name {{service: `{service}`, method: `{method}`}} given twice"
                )
            }
            E::RetryAndHedging => {
                f.write_str("methodConfig has both retryPolicy and hedgingPolicy")
            }
            E::MissingField { field } => write!(f, "{field} is required"),
            E::MaxAttemptsTooLow { value } => {
                write!(f, "retryPolicy.maxAttempts must be at least 2, got {value}")
            }
            E::NonPositiveBackoff { field } => write!(f, "{field} must be greater than 0"),
            E::NonPositiveMultiplier { value } => write!(
                f,
                "retryPolicy.backoffMultiplier must be greater than 0, got {value}"
            ),
            E::EmptyRetryableCodes => f.write_str("retryPolicy.retryableStatusCodes is empty"),
            E::UnknownStatusCode { value } => write!(f, "unknown status code {value}"),
            E::MaxTokensOutOfRange { value } => write!(
                f,
                "retryThrottling.maxTokens must be in (0, 1000], got {value}"
            ),
            E::InvalidTokenRatio { value } => write!(
                f,
                "retryThrottling.tokenRatio must be at least 0.001, got {value}"
            ),
        }
    }
}

impl std::error::Error for ServiceConfigError {}

/// Parses a protobuf JSON duration (`"1.5s"`, `".1s"`, `"10s"`): decimal
/// seconds, at most 9 fractional digits, then `s`; at most 315 576 000 000
/// seconds. Negative durations are refused (no service config field
/// takes one).
///
/// ```
/// use std::time::Duration;
/// use mio_grpc::client::service_config::parse_duration;
///
/// assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
/// assert_eq!(parse_duration(".000000001s"), Some(Duration::from_nanos(1)));
/// assert_eq!(parse_duration("1.5"), None);
/// assert_eq!(parse_duration("-1s"), None);
/// ```
#[must_use]
pub fn parse_duration(text: &str) -> Option<Duration> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 9
    {
        return None;
    }
    let seconds: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if seconds > MAX_DURATION_SECONDS {
        return None;
    }
    let mut nanos: u32 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    for _ in fraction.len()..9 {
        nanos *= 10;
    }
    Some(Duration::new(seconds, nanos))
}

// ---- JSON shapes --------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawServiceConfig {
    #[serde(alias = "load_balancing_policy")]
    load_balancing_policy: Option<String>,
    #[serde(alias = "load_balancing_config")]
    load_balancing_config: Option<Vec<Value>>,
    #[serde(alias = "method_config")]
    method_config: Option<Vec<RawMethodConfig>>,
    #[serde(alias = "retry_throttling")]
    retry_throttling: Option<RawThrottling>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMethodConfig {
    name: Option<Vec<RawName>>,
    timeout: Option<String>,
    #[serde(alias = "wait_for_ready")]
    wait_for_ready: Option<bool>,
    #[serde(alias = "max_request_message_bytes")]
    max_request_message_bytes: Option<Value>,
    #[serde(alias = "max_response_message_bytes")]
    max_response_message_bytes: Option<Value>,
    #[serde(alias = "retry_policy")]
    retry_policy: Option<RawRetryPolicy>,
    #[serde(alias = "hedging_policy")]
    hedging_policy: Option<Value>,
}

#[derive(Deserialize)]
struct RawName {
    service: Option<String>,
    method: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRetryPolicy {
    #[serde(alias = "max_attempts")]
    max_attempts: Option<Value>,
    #[serde(alias = "initial_backoff")]
    initial_backoff: Option<String>,
    #[serde(alias = "max_backoff")]
    max_backoff: Option<String>,
    #[serde(alias = "backoff_multiplier")]
    backoff_multiplier: Option<Value>,
    #[serde(alias = "retryable_status_codes")]
    retryable_status_codes: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawThrottling {
    #[serde(alias = "max_tokens")]
    max_tokens: Option<Value>,
    #[serde(alias = "token_ratio")]
    token_ratio: Option<Value>,
}

// ---- validation ---------------------------------------------------------

fn lb_policy(
    configs: Option<Vec<Value>>,
    policy: Option<String>,
) -> Result<Option<LbPolicy>, ServiceConfigError> {
    let Some(configs) = configs else {
        return policy
            .map(|name| {
                LbPolicy::from_name(&name).ok_or(ServiceConfigError::UnknownLbPolicy { name })
            })
            .transpose();
    };
    let mut names = Vec::with_capacity(configs.len());
    for entry in &configs {
        let malformed = |reason| ServiceConfigError::MalformedLbConfig { reason };
        let Value::Object(map) = entry else {
            return Err(malformed("each entry must be an object"));
        };
        let mut fields = map.iter();
        let (Some((name, config)), None) = (fields.next(), fields.next()) else {
            return Err(malformed("each entry must have exactly one policy name"));
        };
        if !config.is_object() {
            return Err(malformed("a policy's config must be an object"));
        }
        // Names in loadBalancingConfig are exact (gRFC A24).
        if let Some(policy) = [LbPolicy::PickFirst, LbPolicy::RoundRobin]
            .into_iter()
            .find(|p| p.name() == name)
        {
            return Ok(Some(policy));
        }
        names.push(name.clone());
    }
    Err(ServiceConfigError::NoSupportedLbPolicy { names })
}

fn throttling(raw: RawThrottling) -> Result<RetryThrottling, ServiceConfigError> {
    let max_tokens = required(raw.max_tokens, "retryThrottling.maxTokens")?;
    let token_ratio = required(raw.token_ratio, "retryThrottling.tokenRatio")?;
    RetryThrottling::new(
        json_f64(&max_tokens, "retryThrottling.maxTokens")?,
        json_f64(&token_ratio, "retryThrottling.tokenRatio")?,
    )
}

fn method_config(raw: RawMethodConfig, cap: u32) -> Result<MethodConfig, ServiceConfigError> {
    if raw.retry_policy.is_some() && raw.hedging_policy.is_some() {
        return Err(ServiceConfigError::RetryAndHedging);
    }
    let timeout = raw
        .timeout
        .map(|t| duration(&t, "methodConfig.timeout"))
        .transpose()?;
    let size = |value: Option<Value>, field| {
        value
            .map(|v| json_u64(&v, field).map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
            .transpose()
    };
    Ok(MethodConfig {
        names: raw
            .name
            .unwrap_or_default()
            .into_iter()
            .map(|name| MethodName {
                service: name.service.unwrap_or_default(),
                method: name.method.unwrap_or_default(),
            })
            .collect(),
        timeout,
        wait_for_ready: raw.wait_for_ready,
        max_request_message_bytes: size(
            raw.max_request_message_bytes,
            "methodConfig.maxRequestMessageBytes",
        )?,
        max_response_message_bytes: size(
            raw.max_response_message_bytes,
            "methodConfig.maxResponseMessageBytes",
        )?,
        retry_policy: raw.retry_policy.map(|p| retry_policy(p, cap)).transpose()?,
    })
}

fn retry_policy(raw: RawRetryPolicy, cap: u32) -> Result<RetryPolicy, ServiceConfigError> {
    use ServiceConfigError as E;
    let max_attempts = json_u64(
        &required(raw.max_attempts, "retryPolicy.maxAttempts")?,
        "retryPolicy.maxAttempts",
    )?;
    if max_attempts < 2 {
        return Err(E::MaxAttemptsTooLow {
            value: max_attempts,
        });
    }
    let backoff = |value: Option<String>, field| {
        let value = duration(&required(value, field)?, field)?;
        if value.is_zero() {
            return Err(E::NonPositiveBackoff { field });
        }
        Ok(value)
    };
    let initial_backoff = backoff(raw.initial_backoff, "retryPolicy.initialBackoff")?;
    let max_backoff = backoff(raw.max_backoff, "retryPolicy.maxBackoff")?;
    let backoff_multiplier = json_f64(
        &required(raw.backoff_multiplier, "retryPolicy.backoffMultiplier")?,
        "retryPolicy.backoffMultiplier",
    )?;
    if backoff_multiplier <= 0.0 {
        return Err(E::NonPositiveMultiplier {
            value: backoff_multiplier,
        });
    }
    let codes = required(
        raw.retryable_status_codes,
        "retryPolicy.retryableStatusCodes",
    )?;
    let mut retryable_status_codes = codes
        .iter()
        .map(status_code)
        .collect::<Result<Vec<Code>, E>>()?;
    retryable_status_codes.sort_unstable();
    retryable_status_codes.dedup();
    if retryable_status_codes.is_empty() {
        return Err(E::EmptyRetryableCodes);
    }
    Ok(RetryPolicy {
        max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX).min(cap),
        initial_backoff,
        max_backoff,
        backoff_multiplier,
        retryable_status_codes,
    })
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, ServiceConfigError> {
    value.ok_or(ServiceConfigError::MissingField { field })
}

fn duration(text: &str, field: &'static str) -> Result<Duration, ServiceConfigError> {
    parse_duration(text).ok_or_else(|| ServiceConfigError::InvalidDuration {
        field,
        value: text.to_owned(),
    })
}

fn invalid_number(value: &Value, field: &'static str) -> ServiceConfigError {
    ServiceConfigError::InvalidNumber {
        field,
        value: value.to_string(),
    }
}

/// A non-negative integer: a JSON integer, an integral float, or a
/// decimal string.
fn json_u64(value: &Value, field: &'static str) -> Result<u64, ServiceConfigError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 18_446_744_073_709_551_616.0)
                // Integral and in range: the cast is exact.
                .map(|f| f as u64)
        }),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| invalid_number(value, field))
}

/// A finite number: a JSON number or a decimal string.
fn json_f64(value: &Value, field: &'static str) -> Result<f64, ServiceConfigError> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    parsed
        .filter(|f| f.is_finite())
        .ok_or_else(|| invalid_number(value, field))
}

/// A status code: its name (`"UNAVAILABLE"`, any case) or its number.
fn status_code(value: &Value) -> Result<Code, ServiceConfigError> {
    let unknown = || ServiceConfigError::UnknownStatusCode {
        value: value.to_string(),
    };
    match value {
        Value::String(name) => (0..=16)
            .map(Code::from_i32)
            .find(|code| code.name().eq_ignore_ascii_case(name))
            .ok_or_else(unknown),
        Value::Number(n) => n
            .as_u64()
            .filter(|&n| n <= 16)
            .and_then(|n| i32::try_from(n).ok())
            .map(Code::from_i32)
            .ok_or_else(unknown),
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("1.s"), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_duration("1.123456789s"),
            Some(Duration::new(1, 123_456_789))
        );
        for bad in [
            "",
            "s",
            ".s",
            "1",
            "1.1234567890s",
            "1.2.3s",
            "+1s",
            " 1s",
            "1e3s",
            "1ms",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_duration("315576000000s"),
            Some(Duration::from_secs(315_576_000_000))
        );
        assert_eq!(parse_duration("315576000001s"), None);
        assert_eq!(parse_duration("99999999999999999999999s"), None);
    }

    #[test]
    fn thousandths_truncate() {
        assert_eq!(thousandths(0.1), Some(100));
        assert_eq!(thousandths(0.001), Some(1));
        assert_eq!(thousandths(0.0129), Some(12));
        assert_eq!(thousandths(1.001), Some(1001));
        assert_eq!(thousandths(-1.0), None);
        assert_eq!(thousandths(f64::NAN), None);
        assert_eq!(thousandths(1e12), None);
    }

    #[test]
    fn numbers() {
        let field = "f";
        assert_eq!(json_u64(&Value::from(3), field), Ok(3));
        assert_eq!(json_u64(&serde_json::json!(3.0), field), Ok(3));
        assert_eq!(json_u64(&Value::from("7"), field), Ok(7));
        assert!(json_u64(&Value::from(-1), field).is_err());
        assert!(json_u64(&serde_json::json!(2.5), field).is_err());
        assert!(json_u64(&Value::Bool(true), field).is_err());
        assert_eq!(json_f64(&Value::from("0.5"), field), Ok(0.5));
        assert!(json_f64(&Value::from("inf"), field).is_err());
    }

    #[test]
    fn status_codes() {
        assert_eq!(
            status_code(&Value::from("UNAVAILABLE")),
            Ok(Code::Unavailable)
        );
        assert_eq!(
            status_code(&Value::from("unavailable")),
            Ok(Code::Unavailable)
        );
        assert_eq!(status_code(&Value::from(14)), Ok(Code::Unavailable));
        assert!(status_code(&Value::from(17)).is_err());
        assert!(status_code(&Value::from(-1)).is_err());
        assert!(status_code(&Value::from("NOPE")).is_err());
    }

    #[test]
    fn throttle_never_negative_nor_above_max() {
        let throttle = RetryThrottle::new(RetryThrottling {
            max_milli_tokens: 2000,
            milli_token_ratio: 1500,
        });
        for _ in 0..5 {
            throttle.record_failure();
        }
        assert_eq!(throttle.tokens(), 0.0);
        for _ in 0..5 {
            throttle.record_success();
        }
        assert_eq!(throttle.tokens(), 2.0);
    }
}

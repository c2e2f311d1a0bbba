//! `ConnConfig`: every setting and limit of one HTTP/2 connection, with
//! grpc-go-like defaults: the SETTINGS we advertise, receive windows,
//! keepalive and its enforcement, and the abuse limits.

use std::time::Duration;

use framer::DecoderConfig;

/// Client keepalive (grpc-go `keepalive.ClientParameters`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientKeepalive {
    /// Ping after this long without reading anything. `None`: never
    /// (grpc-go's default, infinity). grpc-go raises values below 10 s to
    /// 10 s; so do we.
    pub time: Option<Duration>,
    /// Close the connection if the ping is not answered (nor anything else
    /// read) within this long. Default 20 s.
    pub timeout: Duration,
    /// Ping even with no active streams. Default false.
    pub permit_without_stream: bool,
}

impl Default for ClientKeepalive {
    fn default() -> Self {
        ClientKeepalive {
            time: None,
            timeout: Duration::from_secs(20),
            permit_without_stream: false,
        }
    }
}

/// Server keepalive (grpc-go `keepalive.ServerParameters`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerKeepalive {
    /// GOAWAY a connection with no active streams for this long. `None`:
    /// never (default).
    pub max_connection_idle: Option<Duration>,
    /// GOAWAY a connection this old (±10 % jitter). `None`: never (default).
    pub max_connection_age: Option<Duration>,
    /// After the age GOAWAY, close forcibly after this long. `None`: wait
    /// for the streams (default).
    pub max_connection_age_grace: Option<Duration>,
    /// Ping the client after this long without reading anything. Default
    /// 2 h (minimum 1 s).
    pub time: Duration,
    /// Close if the ping is not answered within this long. Default 20 s.
    pub timeout: Duration,
}

impl Default for ServerKeepalive {
    fn default() -> Self {
        ServerKeepalive {
            max_connection_idle: None,
            max_connection_age: None,
            max_connection_age_grace: None,
            time: Duration::from_secs(2 * 60 * 60),
            timeout: Duration::from_secs(20),
        }
    }
}

/// Server keepalive enforcement (grpc-go `keepalive.EnforcementPolicy`):
/// a client pinging more often than this earns a strike; more than two
/// strikes get GOAWAY ENHANCE_YOUR_CALM `too_many_pings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnforcementPolicy {
    /// The least time between client pings. Default 5 min.
    pub min_time: Duration,
    /// Allow pings with no active streams. Default false.
    pub permit_without_stream: bool,
}

impl Default for EnforcementPolicy {
    fn default() -> Self {
        EnforcementPolicy {
            min_time: Duration::from_secs(5 * 60),
            permit_without_stream: false,
        }
    }
}

/// A rate limit: at most `max` events in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per window.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

/// The abuse limits; each breach is counted in the stats and answered with
/// GOAWAY ENHANCE_YOUR_CALM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbuseLimits {
    /// Streams reset before they did any work (rapid reset,
    /// CVE-2023-44487, and its "MadeYouReset" variant, CVE-2025-8671).
    /// Counted: a stream the peer resets within [`rapid_reset_age`] of
    /// opening it and before we finished it, and every stream we reset
    /// because of the peer's own fault (a stream error). Each stream that
    /// completes normally takes one back, so a busy connection with
    /// occasional early cancels never trips it, and honest deadlines
    /// (resets after the stream ran for a while) never count.
    /// Default 200 per 10 s.
    ///
    /// [`rapid_reset_age`]: AbuseLimits::rapid_reset_age
    pub peer_resets: RateLimit,
    /// A peer reset of a stream younger than this counts toward
    /// [`peer_resets`](AbuseLimits::peer_resets). Default 1 ms: an attack
    /// resets in the same read as it opens; a deadline or a user's cancel
    /// comes after the call has been running.
    pub rapid_reset_age: Duration,
    /// Frames that cause no work for the application, or that we have to
    /// refuse: PRIORITY, unknown frame types, late frames on closed streams
    /// beyond the two each may get in a race, streams refused (over
    /// MAX_CONCURRENT_STREAMS, malformed, after our GOAWAY), and every
    /// stream error of the peer's making. Past it: GOAWAY
    /// ENHANCE_YOUR_CALM "wasted_frames". Default 1,000 per 10 s.
    pub wasted_frames: RateLimit,
    /// DATA frames with no payload and no END_STREAM, and other frames
    /// that carry nothing (CVE-2019-9518). Default 1,000 per 10 s.
    pub empty_frames: RateLimit,
    /// SETTINGS frames from the peer. Default 100 per 10 s.
    pub settings: RateLimit,
    /// PING frames from the peer that arrive with no HEADERS or DATA sent
    /// by us since the previous one (beyond keepalive enforcement, which
    /// only a server applies). Default 1,000 per 10 s. A PING that follows
    /// our HEADERS or DATA is what a BDP estimator sends (grpc-go's and
    /// ours ping once per round trip that carries data) and is not counted,
    /// so a busy connection is never closed for it; a flood of those is
    /// bounded by the data we send, and by the control buffer's
    /// stop-reading on queued acks.
    pub pings: RateLimit,
    /// Received DATA bytes held for the application and not yet consumed,
    /// across the connection: past it the connection stops reading until
    /// the application catches up (backpressure, not an error).
    /// Default 64 MiB.
    pub max_buffered_bytes: usize,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        let per_10s = |max| RateLimit {
            max,
            window: Duration::from_secs(10),
        };
        AbuseLimits {
            peer_resets: per_10s(200),
            rapid_reset_age: Duration::from_millis(1),
            wasted_frames: per_10s(1_000),
            empty_frames: per_10s(1_000),
            settings: per_10s(100),
            pings: per_10s(1_000),
            max_buffered_bytes: 64 << 20,
        }
    }
}

/// Everything one connection needs to know.
///
/// ```
/// use std::time::Duration;
/// use mio_grpc::conn::ConnConfig;
///
/// let mut config = ConnConfig::default();
/// config.max_concurrent_streams = 1_000;
/// config.server_keepalive.max_connection_idle = Some(Duration::from_secs(300));
/// assert_eq!(config.settings_timeout, Duration::from_secs(20));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnConfig {
    /// Our SETTINGS_MAX_CONCURRENT_STREAMS: streams the peer may open;
    /// more are refused (RST_STREAM REFUSED_STREAM). Default 100.
    pub max_concurrent_streams: u32,
    /// Our SETTINGS_MAX_FRAME_SIZE. Default 16,384.
    pub max_frame_size: u32,
    /// Our SETTINGS_MAX_HEADER_LIST_SIZE. Default 64 KiB.
    pub max_header_list_size: u32,
    /// Our SETTINGS_HEADER_TABLE_SIZE. Default 4,096.
    pub header_table_size: u32,
    /// Octets of one field block buffered across CONTINUATION frames.
    pub max_header_block_size: usize,
    /// CONTINUATION frames in one field block.
    pub max_continuation_frames: usize,
    /// Receive windows and BDP (on by default).
    pub inbound: loopy::InboundConfig,
    /// The peer must acknowledge our SETTINGS within this long, or GOAWAY
    /// SETTINGS_TIMEOUT. Default 20 s.
    pub settings_timeout: Duration,
    /// Server: the client preface and SETTINGS must arrive within this long
    /// (grpc-go's ConnectionTimeout, default 120 s).
    pub preface_timeout: Duration,
    /// Graceful shutdown: after the final GOAWAY, close when the streams
    /// end or after this long. Default 30 s.
    pub drain_grace: Duration,
    /// Client keepalive.
    pub client_keepalive: ClientKeepalive,
    /// Server keepalive.
    pub server_keepalive: ServerKeepalive,
    /// Server keepalive enforcement.
    pub enforcement: EnforcementPolicy,
    /// Abuse limits.
    pub limits: AbuseLimits,
    /// Transport responses (SETTINGS/PING acks, RST_STREAM) queued before
    /// reading stops. Default 100.
    pub max_transport_responses: usize,
    /// Server: response DATA bytes queued on this connection beyond what
    /// the peer's windows took. A stream queues at most its write quota
    /// (64 KiB) plus one message; past this cap every stream's next send
    /// waits (or reports not ready) until the writer drains. The bytes
    /// queued stay under `max_queued_bytes` plus one message. Default
    /// 16 MiB.
    pub max_queued_bytes: usize,
    /// Server: a budget shared with other connections (the whole server's
    /// cap, `ServerConfig::max_queued_bytes`). `None`: this connection's
    /// cap only.
    pub shared_send_budget: Option<loopy::SendBudget>,
}

impl Default for ConnConfig {
    fn default() -> Self {
        let framer = DecoderConfig::default();
        ConnConfig {
            max_concurrent_streams: 100,
            max_frame_size: framer.max_frame_size,
            max_header_list_size: framer.max_header_list_size,
            header_table_size: framer.header_table_size,
            max_header_block_size: framer.max_header_block_size,
            max_continuation_frames: framer.max_continuation_frames,
            inbound: loopy::InboundConfig::default(),
            settings_timeout: Duration::from_secs(20),
            preface_timeout: Duration::from_secs(120),
            drain_grace: Duration::from_secs(30),
            client_keepalive: ClientKeepalive::default(),
            server_keepalive: ServerKeepalive::default(),
            enforcement: EnforcementPolicy::default(),
            limits: AbuseLimits::default(),
            max_transport_responses: loopy::DEFAULT_MAX_TRANSPORT_RESPONSES,
            max_queued_bytes: 16 << 20,
            shared_send_budget: None,
        }
    }
}

//! `ConnStats`: the counters a benchmarker wants from one connection.

/// Counters of one connection. Frame counts are indexed by the frame type
/// octet (0 DATA … 9 CONTINUATION; 10 counts every unknown type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Frames received, by type.
    pub frames_in: [u64; 11],
    /// Bytes received, by frame type (a HEADERS counts its CONTINUATIONs).
    pub bytes_in_by_type: [u64; 11],
    /// Bytes received (everything read, preface included).
    pub bytes_in: u64,
    /// Frames sent, by type.
    pub frames_out: [u64; 11],
    /// Bytes sent, by frame type (our first SETTINGS and the client
    /// preface are counted in `bytes_out` only).
    pub bytes_out_by_type: [u64; 11],
    /// Bytes handed to the transport.
    pub bytes_out: u64,
    /// Batches produced by the writer (each is one vectored write).
    pub flushes: u64,
    /// `write`/`writev` calls made by the driver.
    pub write_syscalls: u64,
    /// `read` calls made by the driver.
    pub read_syscalls: u64,
    /// Times the driver's loop woke for this connection.
    pub wakeups: u64,
    /// Times a stream stopped on a send window (stream or connection).
    pub window_stalls: u64,
    /// Streams opened (by either side).
    pub streams_opened: u64,
    /// Streams refused (over our MAX_CONCURRENT_STREAMS, or malformed
    /// header lists).
    pub streams_refused: u64,
    /// Streams reset, by us.
    pub streams_reset_local: u64,
    /// Streams reset, by the peer.
    pub streams_reset_remote: u64,
    /// PINGs received (not acks).
    pub pings_in: u64,
    /// PINGs sent (not acks).
    pub pings_out: u64,
    /// GOAWAYs received.
    pub goaways_in: u64,
    /// GOAWAYs sent.
    pub goaways_out: u64,
    /// Keepalive enforcement strikes.
    pub ping_strikes: u64,
    /// Abuse limits breached (each one ends the connection).
    pub abuse_breaches: u64,
    /// Our first SETTINGS has been handed to the transport.
    pub initial_settings_sent: bool,
    /// Times reading stopped for the flood or buffered-bytes limit.
    pub read_throttles: u64,
}

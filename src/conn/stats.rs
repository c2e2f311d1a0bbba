//! `ConnStats`: the counters a benchmarker wants from one connection, and
//! `FrameCounts`, a count per HTTP/2 frame type by name.

/// A count per frame type (RFC 9113 §6), by name.
///
/// ```
/// use mio_grpc::conn::FrameCounts;
/// let mut counts = FrameCounts::default();
/// *counts.by_type_mut(0x3) += 2; // RST_STREAM
/// *counts.by_type_mut(0xfa) += 1; // an unknown type
/// assert_eq!((counts.rst_stream, counts.unknown, counts.total()), (2, 1, 3));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// DATA (0x0).
    pub data: u64,
    /// HEADERS (0x1).
    pub headers: u64,
    /// PRIORITY (0x2).
    pub priority: u64,
    /// RST_STREAM (0x3).
    pub rst_stream: u64,
    /// SETTINGS (0x4).
    pub settings: u64,
    /// PUSH_PROMISE (0x5).
    pub push_promise: u64,
    /// PING (0x6).
    pub ping: u64,
    /// GOAWAY (0x7).
    pub goaway: u64,
    /// WINDOW_UPDATE (0x8).
    pub window_update: u64,
    /// CONTINUATION (0x9).
    pub continuation: u64,
    /// Every type RFC 9113 does not define.
    pub unknown: u64,
}

impl FrameCounts {
    /// The count for the frame type octet `kind`.
    pub fn by_type_mut(&mut self, kind: u8) -> &mut u64 {
        match kind {
            0x0 => &mut self.data,
            0x1 => &mut self.headers,
            0x2 => &mut self.priority,
            0x3 => &mut self.rst_stream,
            0x4 => &mut self.settings,
            0x5 => &mut self.push_promise,
            0x6 => &mut self.ping,
            0x7 => &mut self.goaway,
            0x8 => &mut self.window_update,
            0x9 => &mut self.continuation,
            _ => &mut self.unknown,
        }
    }

    /// Counts indexed by type octet (0..=9), as loopy's writer keeps them.
    pub fn from_array(counts: &[u64; 10]) -> FrameCounts {
        let mut out = FrameCounts::default();
        for (kind, n) in (0u8..).zip(counts) {
            *out.by_type_mut(kind) = *n;
        }
        out
    }

    /// The sum over every type.
    pub fn total(&self) -> u64 {
        self.fields().iter().sum()
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &FrameCounts) {
        for (kind, n) in (0u8..).zip(other.fields()) {
            *self.by_type_mut(kind) += n;
        }
    }

    fn fields(&self) -> [u64; 11] {
        let FrameCounts {
            data,
            headers,
            priority,
            rst_stream,
            settings,
            push_promise,
            ping,
            goaway,
            window_update,
            continuation,
            unknown,
        } = *self;
        [
            data,
            headers,
            priority,
            rst_stream,
            settings,
            push_promise,
            ping,
            goaway,
            window_update,
            continuation,
            unknown,
        ]
    }
}

/// Counters of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Frames received, by type.
    pub frames_in: FrameCounts,
    /// Bytes received, by frame type (a HEADERS counts its CONTINUATIONs).
    pub bytes_in_by_type: FrameCounts,
    /// Bytes received (everything read, preface included).
    pub bytes_in: u64,
    /// Frames sent, by type.
    pub frames_out: FrameCounts,
    /// Bytes sent, by frame type (our first SETTINGS and the client
    /// preface are counted in `bytes_out` only).
    pub bytes_out_by_type: FrameCounts,
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
    /// Frames that did no work or had to be refused (see
    /// [`AbuseLimits::wasted_frames`](crate::conn::AbuseLimits::wasted_frames)).
    pub wasted_frames: u64,
    /// Streams reset by the peer early, or by us for the peer's fault (see
    /// [`AbuseLimits::peer_resets`](crate::conn::AbuseLimits::peer_resets)).
    pub rapid_resets: u64,
    /// Our first SETTINGS has been handed to the transport.
    pub initial_settings_sent: bool,
    /// Times reading stopped for the flood or buffered-bytes limit.
    pub read_throttles: u64,
    /// Server: response bytes queued now beyond what the peer's windows
    /// took (see [`ConnConfig::max_queued_bytes`](crate::conn::ConnConfig::max_queued_bytes)).
    pub queued_bytes: u64,
    /// Server: the most response bytes ever queued at once.
    pub queued_bytes_peak: u64,
    /// Server: requests held (and reading paused) because every handler
    /// slot was taken, then released when one freed.
    pub requests_released: u64,
}

impl ConnStats {
    /// Adds `other`'s counters to these (to total several connections);
    /// `initial_settings_sent` holds if it holds for either.
    ///
    /// ```
    /// use mio_grpc::conn::ConnStats;
    /// let mut total = ConnStats { write_syscalls: 2, ..ConnStats::default() };
    /// total.add(&ConnStats { write_syscalls: 3, ..ConnStats::default() });
    /// assert_eq!(total.write_syscalls, 5);
    /// ```
    pub fn add(&mut self, other: &ConnStats) {
        self.frames_in.add(&other.frames_in);
        self.bytes_in_by_type.add(&other.bytes_in_by_type);
        self.frames_out.add(&other.frames_out);
        self.bytes_out_by_type.add(&other.bytes_out_by_type);
        let ConnStats {
            frames_in: _,
            bytes_in_by_type: _,
            frames_out: _,
            bytes_out_by_type: _,
            bytes_in,
            bytes_out,
            flushes,
            write_syscalls,
            read_syscalls,
            wakeups,
            window_stalls,
            streams_opened,
            streams_refused,
            streams_reset_local,
            streams_reset_remote,
            pings_in,
            pings_out,
            goaways_in,
            goaways_out,
            ping_strikes,
            abuse_breaches,
            wasted_frames,
            rapid_resets,
            initial_settings_sent,
            read_throttles,
            queued_bytes,
            queued_bytes_peak,
            requests_released,
        } = other;
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
        self.flushes += flushes;
        self.write_syscalls += write_syscalls;
        self.read_syscalls += read_syscalls;
        self.wakeups += wakeups;
        self.window_stalls += window_stalls;
        self.streams_opened += streams_opened;
        self.streams_refused += streams_refused;
        self.streams_reset_local += streams_reset_local;
        self.streams_reset_remote += streams_reset_remote;
        self.pings_in += pings_in;
        self.pings_out += pings_out;
        self.goaways_in += goaways_in;
        self.goaways_out += goaways_out;
        self.ping_strikes += ping_strikes;
        self.abuse_breaches += abuse_breaches;
        self.wasted_frames += wasted_frames;
        self.rapid_resets += rapid_resets;
        self.initial_settings_sent |= initial_settings_sent;
        self.read_throttles += read_throttles;
        self.queued_bytes += queued_bytes;
        self.queued_bytes_peak += queued_bytes_peak;
        self.requests_released += requests_released;
    }
}

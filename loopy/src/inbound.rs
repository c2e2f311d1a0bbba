//! Inbound (receive-side) flow control, RFC 9113 §5.2 and §6.9: the
//! connection receive window, each stream's receive window, and
//! [`InboundFlow`], which ties the connection window to the
//! [`BdpEstimator`] (after grpc-go's `trInFlow`, `inFlow` and
//! `updateFlowControl`).
//!
//! Both windows track the peer's *credit* as we know it: what we granted
//! (initial window, SETTINGS deltas, WINDOW_UPDATEs we sent) minus the
//! flow-controlled bytes received. Our view is never smaller than the
//! peer's (its view lags ours by the updates still in flight), so
//! rejecting a frame larger than our view never rejects a legal frame,
//! and capping our view at 2^31 − 1 keeps the peer's there too (§6.9.1).
//! The one exception, a SETTINGS that *lowers* the stream window, is
//! covered by a tolerance kept until the peer acknowledges it
//! ([`StreamRecvWindow::on_settings_acked`]); [`InboundFlow`] only raises.
//!
//! - [`ConnRecvWindow`] is replenished as data *arrives*: a slow stream
//!   must not starve the others; stream windows already hold back a
//!   sender whose reader is slow.
//! - [`StreamRecvWindow`] is replenished as the application *consumes*.
//! - An update is due once the credit has fallen a quarter of the limit
//!   below its target (`limit` for the connection, `limit − unconsumed`
//!   for a stream), and it tops the credit back up to the target. Every
//!   increment returned is in `1 ..= 2^31 − 1`: never a zero
//!   WINDOW_UPDATE (a PROTOCOL_ERROR, §6.9), never an overflow.
//!
//! # Call order (the connection's side)
//!
//! 1. Create an [`InboundFlow`] from an [`InboundConfig`]. Put
//!    [`InboundFlow::stream_limit`] in our initial SETTINGS as
//!    SETTINGS_INITIAL_WINDOW_SIZE (when it is not 65,535), then send the
//!    connection WINDOW_UPDATE from [`InboundFlow::start`] right after it.
//! 2. For each stream we open or accept: [`InboundFlow::new_stream`].
//! 3. For *every* DATA frame, known stream or not (§6.9: it counts against
//!    the connection window either way):
//!    [`InboundFlow::on_data`]`(frame.flow_len())`. `Err` is a connection
//!    FLOW_CONTROL_ERROR (GOAWAY). Otherwise send its actions in order
//!    (a connection WINDOW_UPDATE, then a BDP PING).
//! 4. Then, if the stream is open: [`StreamRecvWindow::on_data_frame`]
//!    (or `on_data` + `on_padding`). `Err` is a stream FLOW_CONTROL_ERROR
//!    (RST_STREAM); an increment is a stream WINDOW_UPDATE (padding is
//!    consumed at once, it never reaches the application).
//! 5. When the application reads `n` bytes: [`StreamRecvWindow::on_consumed`];
//!    before it waits for a message of `n` bytes:
//!    [`StreamRecvWindow::pre_grant`]. Each may give a stream WINDOW_UPDATE.
//! 6. When the writer puts a PING on the wire: [`InboundFlow::on_ping_sent`].
//! 7. On a PING ACK: [`InboundFlow::on_ping_ack`] with every open stream's
//!    window. It raises those windows itself; send its actions in order
//!    (a connection WINDOW_UPDATE, then a SETTINGS frame with the new
//!    INITIAL_WINDOW_SIZE). Streams opened later get the new limit.

use std::fmt;
use std::time::Instant;

use framer::StreamId;

use crate::bdp::{BdpEstimator, BDP_LIMIT, BDP_PING_PAYLOAD};

/// The largest flow-control window, 2^31 − 1 (RFC 9113 §6.9.1).
pub const MAX_WINDOW_SIZE: u32 = 0x7fff_ffff;

/// The initial window of every stream and of the connection before any
/// SETTINGS or WINDOW_UPDATE: 65,535 (RFC 9113 §6.5.2, §6.9.2).
pub const DEFAULT_WINDOW_SIZE: u32 = 65_535;

/// The most credit [`StreamRecvWindow::pre_grant`] leaves on a stream:
/// room below 2^31 − 1 for a later SETTINGS raise up to [`BDP_LIMIT`],
/// which the peer adds to every stream window (§6.9.2 makes an overflow
/// there a connection error).
const MAX_PRE_GRANT_WINDOW: i64 = (MAX_WINDOW_SIZE - BDP_LIMIT) as i64;

/// A WINDOW_UPDATE the connection must send after an inbound-flow-control
/// step.
///
/// ```
/// use framer::StreamId;
/// use loopy::WindowUpdateNeeded;
/// let update = WindowUpdateNeeded::connection(16_384);
/// assert_eq!(update.stream_id, StreamId::ZERO);
/// let frame = framer::WindowUpdate::from(update);
/// assert_eq!(frame.increment, 16_384);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdateNeeded {
    /// The stream, or 0 for the connection window.
    pub stream_id: StreamId,
    /// The increment, `1 ..= 2^31 − 1`.
    pub increment: u32,
}

impl WindowUpdateNeeded {
    /// An update of the connection window.
    pub fn connection(increment: u32) -> WindowUpdateNeeded {
        WindowUpdateNeeded {
            stream_id: StreamId::ZERO,
            increment,
        }
    }

    /// An update of `stream_id`'s window.
    pub fn stream(stream_id: StreamId, increment: u32) -> WindowUpdateNeeded {
        WindowUpdateNeeded {
            stream_id,
            increment,
        }
    }
}

impl From<WindowUpdateNeeded> for framer::WindowUpdate {
    fn from(update: WindowUpdateNeeded) -> framer::WindowUpdate {
        framer::WindowUpdate::new(update.stream_id, update.increment)
    }
}

/// The peer sent more flow-controlled bytes than its window allowed
/// (RFC 9113 §6.9.1). From [`ConnRecvWindow`] it is a connection error
/// (GOAWAY), from [`StreamRecvWindow`] a stream error (RST_STREAM); the
/// code is FLOW_CONTROL_ERROR either way.
///
/// ```
/// use loopy::ConnRecvWindow;
/// let mut conn = ConnRecvWindow::new(65_535);
/// let err = conn.on_data(70_000).unwrap_err();
/// assert_eq!((err.received, err.window), (70_000, 65_535));
/// assert_eq!(err.to_string(), "received 70000 flow-controlled bytes with a window of 65535");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowError {
    /// The flow-controlled length of the offending frame.
    pub received: u64,
    /// The credit the peer had left when it arrived (0 if negative).
    pub window: u64,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {} flow-controlled bytes with a window of {}",
            self.received, self.window
        )
    }
}

impl std::error::Error for FlowError {}

/// Converts a credit that may be negative into the error's unsigned field.
fn non_negative(credit: i64) -> u64 {
    u64::try_from(credit).unwrap_or(0)
}

/// An increment to send when `deficit` (target credit − current credit) is
/// positive and at least a quarter of `limit`.
fn due_update(deficit: i64, limit: u32) -> Option<u32> {
    if deficit > 0 && deficit >= i64::from(limit / 4) {
        u32::try_from(deficit).ok()
    } else {
        None
    }
}

/// The connection-level receive window (grpc-go `trInFlow`): replenished
/// as data *arrives*, whatever the application does with it.
///
/// ```
/// use loopy::ConnRecvWindow;
/// let mut conn = ConnRecvWindow::new(1 << 20);
/// // After the preface and SETTINGS: raise the RFC's 65,535 to 1 MiB.
/// assert_eq!(conn.initial_update(), Some((1 << 20) - 65_535));
/// assert_eq!(conn.on_data(200_000).unwrap(), None);
/// // A quarter of the limit is now unacknowledged: top it up.
/// assert_eq!(conn.on_data(62_144).unwrap(), Some(262_144));
/// assert_eq!(conn.available(), 1 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct ConnRecvWindow {
    /// The window we keep the peer's credit topped up to; ≤ 2^31 − 1.
    limit: u32,
    /// The peer's credit as we know it; ≤ 2^31 − 1, never negative.
    window: u32,
    /// The WINDOW_UPDATE due after the preface, fixed at creation.
    initial_update: Option<u32>,
}

impl ConnRecvWindow {
    /// A connection window of `limit` bytes (clamped to 2^31 − 1). The
    /// peer starts with the RFC's 65,535; [`initial_update`] is what raises
    /// it to `limit`. A limit below 65,535 is honoured by replenishing
    /// less; the first 65,535 bytes cannot be taken back.
    ///
    /// [`initial_update`]: ConnRecvWindow::initial_update
    pub fn new(limit: u32) -> ConnRecvWindow {
        let limit = limit.min(MAX_WINDOW_SIZE);
        let initial_update = limit.checked_sub(DEFAULT_WINDOW_SIZE).filter(|&d| d > 0);
        ConnRecvWindow {
            limit,
            window: limit.max(DEFAULT_WINDOW_SIZE),
            initial_update,
        }
    }

    /// The connection WINDOW_UPDATE to send once, right after our initial
    /// SETTINGS: the increment from 65,535 to the limit given to
    /// [`new`](ConnRecvWindow::new), if it is larger. The window already
    /// counts it as sent.
    pub fn initial_update(&self) -> Option<u32> {
        self.initial_update
    }

    /// Accounts a DATA frame's flow-controlled length (padding included).
    /// A frame larger than the peer's credit is a connection
    /// FLOW_CONTROL_ERROR and changes nothing. Returns the increment of a
    /// connection WINDOW_UPDATE to send once a quarter of the limit is
    /// unacknowledged.
    pub fn on_data(&mut self, flow_len: u32) -> Result<Option<u32>, FlowError> {
        let Some(window) = self.window.checked_sub(flow_len) else {
            return Err(FlowError {
                received: u64::from(flow_len),
                window: u64::from(self.window),
            });
        };
        self.window = window;
        let update = due_update(self.deficit(), self.limit);
        if update.is_some() {
            self.window = self.limit;
        }
        Ok(update)
    }

    /// Sends everything unacknowledged now, below the quarter threshold
    /// too (grpc-go `reset`: done before a BDP PING so a proxy sees a
    /// WINDOW_UPDATE ahead of each PING).
    pub fn flush(&mut self) -> Option<u32> {
        let update = due_update(self.deficit(), 0);
        if update.is_some() {
            self.window = self.limit;
        }
        update
    }

    /// Changes the limit (BDP growth). Raising returns the increment to
    /// send now: the raise plus anything unacknowledged. Lowering sends
    /// nothing now and lets the credit drain to the new limit (credit
    /// already granted cannot be taken back); it returns an update only if
    /// the lower quarter threshold is already crossed.
    pub fn set_limit(&mut self, new_limit: u32) -> Option<u32> {
        let new_limit = new_limit.min(MAX_WINDOW_SIZE);
        let raised = new_limit > self.limit;
        self.limit = new_limit;
        let threshold = if raised { 0 } else { new_limit };
        let update = due_update(self.deficit(), threshold);
        if update.is_some() {
            self.window = self.limit;
        }
        update
    }

    /// The limit the peer's credit is kept topped up to.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The peer's remaining credit as we know it: the most it may send
    /// before our next WINDOW_UPDATE. Never negative on the connection.
    pub fn available(&self) -> i64 {
        i64::from(self.window)
    }

    /// How far the credit is below the limit (negative after a lowering).
    fn deficit(&self) -> i64 {
        i64::from(self.limit) - i64::from(self.window)
    }
}

/// One stream's receive window (grpc-go `inFlow`): replenished as the
/// application *consumes* what arrived.
///
/// ```
/// use loopy::StreamRecvWindow;
/// let mut stream = StreamRecvWindow::new(65_535);
/// stream.on_data(20_000).unwrap();
/// assert_eq!(stream.unconsumed(), 20_000);
/// assert_eq!(stream.on_consumed(10_000), None); // below a quarter
/// assert_eq!(stream.on_consumed(10_000), Some(20_000)); // top up
/// assert_eq!(stream.available(), 65_535);
/// ```
#[derive(Clone, Debug)]
pub struct StreamRecvWindow {
    /// Our SETTINGS_INITIAL_WINDOW_SIZE in force for this stream; ≤ 2^31 − 1.
    limit: u32,
    /// The peer's credit as we know it. Negative only after a lowering
    /// of the limit, exactly as the peer's own view (§6.9.2).
    window: i64,
    /// Received and not yet consumed by the application (padding included
    /// until [`StreamRecvWindow::on_padding`]).
    unconsumed: u32,
    /// Extra bytes tolerated while a SETTINGS that lowered the limit is
    /// unacknowledged: the peer may still be sending under the old window.
    lowering_slack: u32,
}

impl StreamRecvWindow {
    /// A stream whose window starts at `limit` (clamped to 2^31 − 1): the
    /// SETTINGS_INITIAL_WINDOW_SIZE we have in force.
    pub fn new(limit: u32) -> StreamRecvWindow {
        let limit = limit.min(MAX_WINDOW_SIZE);
        StreamRecvWindow {
            limit,
            window: i64::from(limit),
            unconsumed: 0,
            lowering_slack: 0,
        }
    }

    /// Accounts a DATA frame's flow-controlled length (padding included).
    /// Beyond the peer's credit (the limit plus any [`pre_grant`]) it is a
    /// stream FLOW_CONTROL_ERROR and changes nothing. Never sends an
    /// update: the window reopens only as the application consumes.
    /// A zero-length frame is always accepted.
    ///
    /// [`pre_grant`]: StreamRecvWindow::pre_grant
    pub fn on_data(&mut self, flow_len: u32) -> Result<(), FlowError> {
        if flow_len == 0 {
            return Ok(());
        }
        // The peer's credit never exceeds 2^31 − 1, whatever the slack.
        let allowed = self
            .window
            .saturating_add(i64::from(self.lowering_slack))
            .min(i64::from(MAX_WINDOW_SIZE));
        if i64::from(flow_len) > allowed {
            return Err(FlowError {
                received: u64::from(flow_len),
                window: non_negative(allowed),
            });
        }
        self.window = self.window.saturating_sub(i64::from(flow_len));
        self.unconsumed = self.unconsumed.saturating_add(flow_len);
        Ok(())
    }

    /// Accounts a whole DATA frame: [`on_data`] with its flow-controlled
    /// length, then [`on_padding`] for its padding (the Pad Length octet
    /// and the padding never reach the application). Returns the stream
    /// WINDOW_UPDATE increment due, if any.
    ///
    /// [`on_data`]: StreamRecvWindow::on_data
    /// [`on_padding`]: StreamRecvWindow::on_padding
    pub fn on_data_frame(&mut self, frame: &framer::Data) -> Result<Option<u32>, FlowError> {
        let flow_len = frame.flow_len();
        self.on_data(flow_len)?;
        let payload = u32::try_from(frame.payload.len()).unwrap_or(u32::MAX);
        Ok(self.on_padding(flow_len.saturating_sub(payload)))
    }

    /// The application read `n` bytes. Returns the increment of a stream
    /// WINDOW_UPDATE once a quarter of the limit is consumed and not yet
    /// credited back. `n` beyond what is unconsumed counts as what is.
    pub fn on_consumed(&mut self, n: u32) -> Option<u32> {
        self.unconsumed = self.unconsumed.saturating_sub(n);
        self.take_due_update()
    }

    /// Padding of `n` bytes (Pad Length octet included) arrived with a
    /// frame already passed to [`on_data`](StreamRecvWindow::on_data): it
    /// is consumed at once. Same as [`on_consumed`](Self::on_consumed).
    pub fn on_padding(&mut self, n: u32) -> Option<u32> {
        self.on_consumed(n)
    }

    /// Changes the limit because our SETTINGS_INITIAL_WINDOW_SIZE changed
    /// (RFC 9113 §6.9.2): the peer adds `new − old` to this stream's
    /// window when it processes that SETTINGS, so the credit moves by the
    /// same delta here and no WINDOW_UPDATE is needed for it.
    ///
    /// What the caller sends: the SETTINGS frame carrying the new value
    /// (once per connection, not per stream) and, if this returns an
    /// increment, a stream WINDOW_UPDATE. Raising never returns one.
    /// Lowering may (the quarter threshold drops); the peer's window may
    /// go negative, and until [`on_settings_acked`] we accept what the
    /// peer could still send under the old value.
    ///
    /// [`on_settings_acked`]: StreamRecvWindow::on_settings_acked
    pub fn set_limit(&mut self, new_limit: u32) -> Option<u32> {
        let new_limit = new_limit.min(MAX_WINDOW_SIZE);
        let delta = i64::from(new_limit) - i64::from(self.limit);
        self.window = self.window.saturating_add(delta);
        if delta < 0 {
            let lowered = u32::try_from(delta.unsigned_abs()).unwrap_or(u32::MAX);
            self.lowering_slack = self.lowering_slack.saturating_add(lowered);
        }
        self.limit = new_limit;
        self.take_due_update()
    }

    /// The peer acknowledged the SETTINGS frame carrying our newest
    /// INITIAL_WINDOW_SIZE: it now counts the lowered window too, so the
    /// tolerance kept by a lowering [`set_limit`](Self::set_limit) ends.
    pub fn on_settings_acked(&mut self) {
        self.lowering_slack = 0;
    }

    /// The application is about to wait for a message of `n` bytes (grpc-go
    /// `maybeAdjust`). When the bytes of it not yet received exceed the
    /// peer's credit, the sender could never finish it: grant the whole
    /// message now and return the stream WINDOW_UPDATE increment. The
    /// grant is paid back as the message is consumed (no updates until
    /// then), after which the window is back to normal. The credit after
    /// a grant stays below 2^31 − 1 − [`BDP_LIMIT`].
    pub fn pre_grant(&mut self, n: u32) -> Option<u32> {
        let n = n.min(MAX_WINDOW_SIZE);
        let not_received = i64::from(n) - i64::from(self.unconsumed);
        if not_received <= self.window {
            return None;
        }
        let room = MAX_PRE_GRANT_WINDOW.saturating_sub(self.window);
        let increment = i64::from(n).min(room);
        let increment = u32::try_from(increment).ok().filter(|&i| i > 0)?;
        self.window = self.window.saturating_add(i64::from(increment));
        Some(increment)
    }

    /// Our SETTINGS_INITIAL_WINDOW_SIZE in force for this stream.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Bytes received and not yet consumed by the application.
    pub fn unconsumed(&self) -> u32 {
        self.unconsumed
    }

    /// The peer's remaining credit as we know it; negative after a
    /// lowering of the limit until we credit enough back.
    pub fn available(&self) -> i64 {
        self.window
    }

    /// Raises the limit to `new_limit` if that is higher (BDP growth);
    /// never owes a WINDOW_UPDATE, see [`set_limit`](Self::set_limit).
    fn raise_limit(&mut self, new_limit: u32) {
        if new_limit > self.limit {
            // A raise leaves the deficit unchanged and the threshold higher.
            let _ = self.set_limit(new_limit);
        }
    }

    /// Tops the credit up to `limit − unconsumed` when a quarter of the
    /// limit is owed.
    fn take_due_update(&mut self) -> Option<u32> {
        let target = i64::from(self.limit) - i64::from(self.unconsumed);
        let update = due_update(target.saturating_sub(self.window), self.limit)?;
        self.window = target;
        Some(update)
    }
}

/// Receive-window settings for a connection (grpc-go `InitialWindowSize`,
/// `InitialConnWindowSize` and BDP).
///
/// ```
/// use loopy::InboundConfig;
/// let dynamic = InboundConfig::default();
/// assert!(dynamic.bdp);
/// let fixed = InboundConfig::static_windows(4 << 20, 1 << 20);
/// assert!(!fixed.bdp);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundConfig {
    /// The connection receive window. Clamped to `65,535 ..= 2^31 − 1`.
    pub conn_window: u32,
    /// Our SETTINGS_INITIAL_WINDOW_SIZE for streams. Clamped to
    /// `65,535 ..= 2^31 − 1` (like grpc-go, which ignores smaller values),
    /// so the first SETTINGS never lowers a window.
    pub stream_window: u32,
    /// Grow both windows with the BDP estimator, up to [`BDP_LIMIT`].
    pub bdp: bool,
}

impl InboundConfig {
    /// Fixed windows, BDP off (grpc-go turns BDP off when a window is set).
    pub fn static_windows(conn_window: u32, stream_window: u32) -> InboundConfig {
        InboundConfig {
            conn_window,
            stream_window,
            bdp: false,
        }
    }
}

impl Default for InboundConfig {
    /// grpc-go's defaults: 65,535-byte windows, BDP on.
    fn default() -> InboundConfig {
        InboundConfig {
            conn_window: DEFAULT_WINDOW_SIZE,
            stream_window: DEFAULT_WINDOW_SIZE,
            bdp: true,
        }
    }
}

/// Something the connection must send after an [`InboundFlow`] step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundAction {
    /// A WINDOW_UPDATE frame.
    SendWindowUpdate(WindowUpdateNeeded),
    /// A PING (not an ACK) with this payload: the BDP PING.
    SendPing([u8; 8]),
    /// A SETTINGS frame with SETTINGS_INITIAL_WINDOW_SIZE = this value.
    SendSettingsInitialWindow(u32),
}

/// The actions of one [`InboundFlow`] step, in the order to send them
/// (at most three; no allocation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboundActions {
    slots: [Option<InboundAction>; 3],
}

impl InboundActions {
    /// No action to send.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The number of actions.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// The actions, in order.
    pub fn iter(&self) -> impl Iterator<Item = &InboundAction> {
        self.slots.iter().flatten()
    }

    fn push(&mut self, action: InboundAction) {
        if let Some(slot) = self.slots.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(action);
        }
    }

    fn push_conn_update(&mut self, increment: Option<u32>) {
        if let Some(increment) = increment {
            self.push(InboundAction::SendWindowUpdate(
                WindowUpdateNeeded::connection(increment),
            ));
        }
    }
}

impl IntoIterator for InboundActions {
    type Item = InboundAction;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<InboundAction>, 3>>;

    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().flatten()
    }
}

/// The connection's inbound flow control: its [`ConnRecvWindow`], the
/// current stream limit, and the [`BdpEstimator`] when BDP is on. Stream
/// windows stay with the connection's stream records; this hands them out
/// and raises them. See the module docs for the call order.
///
/// ```
/// use std::time::{Duration, Instant};
/// use loopy::{InboundAction, InboundConfig, InboundFlow, WindowUpdateNeeded, BDP_PING_PAYLOAD};
///
/// let mut flow = InboundFlow::new(InboundConfig::default());
/// assert!(flow.start().is_empty()); // 65,535 everywhere: nothing to announce
/// let mut stream = flow.new_stream();
///
/// // The first DATA frame asks for a BDP PING.
/// let actions: Vec<_> = flow.on_data(65_535).unwrap().into_iter().collect();
/// assert_eq!(actions, [
///     InboundAction::SendWindowUpdate(WindowUpdateNeeded::connection(65_535)),
///     InboundAction::SendPing(BDP_PING_PAYLOAD),
/// ]);
/// stream.on_data(65_535).unwrap();
/// let t0 = Instant::now();
/// flow.on_ping_sent(BDP_PING_PAYLOAD, t0);
///
/// // The whole window arrived within one RTT: the windows double.
/// let acked = t0 + Duration::from_millis(5);
/// let actions: Vec<_> = flow.on_ping_ack(BDP_PING_PAYLOAD, acked, [&mut stream]).into_iter().collect();
/// assert_eq!(actions, [
///     InboundAction::SendWindowUpdate(WindowUpdateNeeded::connection(131_070 - 65_535)),
///     InboundAction::SendSettingsInitialWindow(131_070),
/// ]);
/// assert_eq!(stream.limit(), 131_070);
/// assert_eq!(flow.new_stream().limit(), 131_070);
/// ```
#[derive(Clone, Debug)]
pub struct InboundFlow {
    conn: ConnRecvWindow,
    /// Our SETTINGS_INITIAL_WINDOW_SIZE: the limit of new streams.
    stream_limit: u32,
    bdp: Option<BdpEstimator>,
}

impl InboundFlow {
    /// Inbound flow control for one connection (windows clamped to
    /// `65,535 ..= 2^31 − 1`).
    pub fn new(config: InboundConfig) -> InboundFlow {
        let clamp = |w: u32| w.clamp(DEFAULT_WINDOW_SIZE, MAX_WINDOW_SIZE);
        let stream_limit = clamp(config.stream_window);
        InboundFlow {
            conn: ConnRecvWindow::new(clamp(config.conn_window)),
            stream_limit,
            bdp: config.bdp.then(|| BdpEstimator::new(stream_limit)),
        }
    }

    /// What to send once the connection starts: SETTINGS_INITIAL_WINDOW_SIZE
    /// (to go in our initial SETTINGS frame) when it is not 65,535, then
    /// the connection WINDOW_UPDATE above 65,535.
    pub fn start(&self) -> InboundActions {
        let mut actions = InboundActions::default();
        if self.stream_limit != DEFAULT_WINDOW_SIZE {
            actions.push(InboundAction::SendSettingsInitialWindow(self.stream_limit));
        }
        actions.push_conn_update(self.conn.initial_update());
        actions
    }

    /// The receive window of a new stream, at the current stream limit.
    pub fn new_stream(&self) -> StreamRecvWindow {
        StreamRecvWindow::new(self.stream_limit)
    }

    /// Accounts a DATA frame's flow-controlled length on the connection
    /// (call for every DATA frame, before the stream's own accounting).
    /// `Err` is a connection FLOW_CONTROL_ERROR. Otherwise the actions: a
    /// connection WINDOW_UPDATE when due, and a BDP PING when one starts —
    /// preceded by a WINDOW_UPDATE of everything unacknowledged, as grpc-go
    /// does, so a PING never goes out without one ahead of it.
    pub fn on_data(&mut self, flow_len: u32) -> Result<InboundActions, FlowError> {
        let mut actions = InboundActions::default();
        actions.push_conn_update(self.conn.on_data(flow_len)?);
        let ping = self.bdp.as_mut().is_some_and(|bdp| bdp.on_data(flow_len));
        if ping {
            actions.push_conn_update(self.conn.flush());
            actions.push(InboundAction::SendPing(BDP_PING_PAYLOAD));
        }
        Ok(actions)
    }

    /// A PING with `payload` was written at `now`. Only the BDP PING
    /// matters; others are ignored.
    pub fn on_ping_sent(&mut self, payload: [u8; 8], now: Instant) {
        if payload == BDP_PING_PAYLOAD {
            if let Some(bdp) = self.bdp.as_mut() {
                bdp.on_ping_sent(now);
            }
        }
    }

    /// A PING ACK with `payload` arrived at `now`. When it closes a BDP
    /// sample and the estimate grows, the connection and stream limits
    /// rise to it: every window in `open_streams` is raised here, new
    /// streams get it, and the actions are a connection WINDOW_UPDATE and
    /// a SETTINGS frame with the new INITIAL_WINDOW_SIZE (in that order).
    /// Any other ACK (a keepalive's, or a foreign payload) gives no action.
    pub fn on_ping_ack<'a>(
        &mut self,
        payload: [u8; 8],
        now: Instant,
        open_streams: impl IntoIterator<Item = &'a mut StreamRecvWindow>,
    ) -> InboundActions {
        let mut actions = InboundActions::default();
        let Some(grown) = self
            .bdp
            .as_mut()
            .and_then(|bdp| bdp.on_ping_ack(payload, now))
        else {
            return actions;
        };
        if grown > self.conn.limit() {
            actions.push_conn_update(self.conn.set_limit(grown));
        }
        if grown > self.stream_limit {
            self.stream_limit = grown;
            for stream in open_streams {
                stream.raise_limit(grown);
            }
            actions.push(InboundAction::SendSettingsInitialWindow(grown));
        }
        actions
    }

    /// The connection window.
    pub fn conn(&self) -> &ConnRecvWindow {
        &self.conn
    }

    /// Our SETTINGS_INITIAL_WINDOW_SIZE: the limit new streams get.
    pub fn stream_limit(&self) -> u32 {
        self.stream_limit
    }

    /// The BDP estimator, when BDP is on.
    pub fn bdp(&self) -> Option<&BdpEstimator> {
        self.bdp.as_ref()
    }
}

//! Load balancing behind a trait: a [`Balancer`] says how a channel's
//! subchannels (one per resolved address) are connected and which ready
//! one gets the next call. `pick_first` and `round_robin` are provided;
//! the service config picks between them by name, or a channel can be given
//! its own balancer in `ChannelOptions::balancer`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::resolver::ResolvedAddr;
use super::service_config::LbPolicy;

/// A load-balancing policy.
///
/// ```
/// use std::sync::Arc;
/// use mio_grpc::client::balancer::{Balancer, RoundRobin};
/// use mio_grpc::client::resolver::ResolvedAddr;
///
/// let rr = RoundRobin::default();
/// let ready = [ResolvedAddr::Tcp("127.0.0.1:1".parse().unwrap()), ResolvedAddr::Tcp("127.0.0.1:2".parse().unwrap())];
/// assert_eq!((rr.pick(&ready), rr.pick(&ready), rr.pick(&ready)), (0, 1, 0));
/// assert!(rr.connects_all());
/// ```
pub trait Balancer: Send + Sync {
    /// The policy's name (`pick_first`, `round_robin`, …).
    fn name(&self) -> &str;
    /// True: connect to every address and keep them connected
    /// (round_robin). False: connect to one at a time, in address order,
    /// and reconnect only when a call needs it (pick_first).
    fn connects_all(&self) -> bool;
    /// Which of the `ready` subchannels (in address order, never empty)
    /// gets the next call: an index into `ready`.
    fn pick(&self, ready: &[ResolvedAddr]) -> usize;
}

/// `pick_first`: the first address that connects carries every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct PickFirst;

impl Balancer for PickFirst {
    fn name(&self) -> &str {
        "pick_first"
    }

    fn connects_all(&self) -> bool {
        false
    }

    fn pick(&self, _ready: &[ResolvedAddr]) -> usize {
        0
    }
}

/// `round_robin`: every address connected; calls rotate over the ready ones.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Balancer for RoundRobin {
    fn name(&self) -> &str {
        "round_robin"
    }

    fn connects_all(&self) -> bool {
        true
    }

    fn pick(&self, ready: &[ResolvedAddr]) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % ready.len().max(1)
    }
}

/// The balancer for a service-config policy.
pub fn for_policy(policy: LbPolicy) -> Arc<dyn Balancer> {
    match policy {
        LbPolicy::RoundRobin => Arc::new(RoundRobin::default()),
        _ => Arc::new(PickFirst),
    }
}

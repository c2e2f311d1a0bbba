//! The standard health service, `grpc.health.v1.Health` (Check and
//! Watch), with a [`HealthReporter`] to set each service's status.
//!
//! ```
//! use mio_grpc::server::health::{HealthReporter, ServingStatus};
//! let (reporter, service) = HealthReporter::new();
//! reporter.set_serving_status("", ServingStatus::Serving);
//! assert_eq!(service.name(), "grpc.health.v1.Health");
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::{Context, MethodDesc, ResponseSink, ServiceDesc};
use crate::grpc::Status;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    /// The service to check ("" for the server as a whole).
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// A `ServingStatus` value.
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub status: i32,
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ServingStatus {
    /// Not known.
    Unknown = 0,
    /// Serving.
    Serving = 1,
    /// Not serving.
    NotServing = 2,
    /// Watch only: the service is not known to the server.
    ServiceUnknown = 3,
}

#[derive(Default)]
struct Registry {
    statuses: HashMap<String, ServingStatus>,
    watchers: HashMap<String, Vec<Sender<ServingStatus>>>,
}

/// Sets the statuses the health service reports. Cheap to clone.
#[derive(Clone, Default)]
pub struct HealthReporter {
    registry: Arc<Mutex<Registry>>,
}

impl std::fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthReporter").finish_non_exhaustive()
    }
}

impl HealthReporter {
    /// A reporter and the service to register (every status unknown until set).
    pub fn new() -> (HealthReporter, ServiceDesc) {
        let reporter = HealthReporter::default();
        let service = reporter.service();
        (reporter, service)
    }

    /// Sets `service`'s status ("" is the whole server) and tells watchers.
    pub fn set_serving_status(&self, service: &str, status: ServingStatus) {
        let mut registry = self.registry.lock();
        registry.statuses.insert(service.to_string(), status);
        if let Some(watchers) = registry.watchers.get_mut(service) {
            watchers.retain(|tx| tx.send(status).is_ok());
        }
    }

    fn status(&self, service: &str) -> Option<ServingStatus> {
        self.registry.lock().statuses.get(service).copied()
    }

    fn watch(&self, service: &str) -> Receiver<ServingStatus> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut registry = self.registry.lock();
        let current = registry
            .statuses
            .get(service)
            .copied()
            .unwrap_or(ServingStatus::ServiceUnknown);
        let _ = tx.send(current);
        registry
            .watchers
            .entry(service.to_string())
            .or_default()
            .push(tx);
        rx
    }

    fn service(&self) -> ServiceDesc {
        let check = self.clone();
        let watch = self.clone();
        ServiceDesc::new("grpc.health.v1.Health")
            .method(MethodDesc::unary(
                "Check",
                move |_ctx: &Context, req: HealthCheckRequest| match check.status(&req.service) {
                    Some(status) => Ok(HealthCheckResponse {
                        status: status as i32,
                    }),
                    None => Err(Status::not_found(format!(
                        "unknown service {:?}",
                        req.service
                    ))),
                },
            ))
            .method(MethodDesc::server_streaming(
                "Watch",
                move |ctx: &Context,
                      req: HealthCheckRequest,
                      sink: ResponseSink<HealthCheckResponse>| {
                    let updates = watch.watch(&req.service);
                    let mut last = None;
                    loop {
                        if ctx.is_cancelled() {
                            return Err(Status::cancelled("watch cancelled"));
                        }
                        match updates.recv_timeout(Duration::from_millis(50)) {
                            Ok(status) if Some(status) != last => {
                                last = Some(status);
                                sink.send(&HealthCheckResponse {
                                    status: status as i32,
                                })?;
                            }
                            Ok(_) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(()),
                        }
                    }
                },
            ))
    }
}

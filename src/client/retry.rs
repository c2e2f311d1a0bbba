//! The retry driver of unary calls (gRFC A6): one attempt at a time, each
//! deciding in its completion callback whether to finish the handle, retry
//! per the method's policy (retryable code, not committed, attempts left,
//! throttle allows) after a jittered backoff, or retry transparently when
//! the server never saw the stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::channel::{jitter_rng, now_nanos, Inner};
use super::service_config::RetryPolicy;
use super::{CallOptions, UnaryShared};
use crate::grpc::{Code, Status};

/// Runs one attempt of a unary call and, when it ends, retries or
/// finishes the handle.
#[allow(clippy::too_many_arguments)]
pub(super) fn attempt(
    inner: Arc<Inner>,
    shared: Arc<UnaryShared>,
    method: String,
    request: Bytes,
    mut options: CallOptions,
    retry: Option<RetryPolicy>,
    number: u32,
    transparent_left: u32,
) {
    if shared.is_over() {
        // Cancelled (or dropped) while this attempt waited to start.
        return shared.finish(Err(Status::cancelled("cancelled by the client")));
    }
    options.previous_attempts = number - 1;
    let call = match inner.start(&method, &options, Some(request.clone())) {
        Ok(call) => call,
        Err(status) => return shared.finish(Err(status)),
    };
    shared.set_current(call.clone());
    let attempt_call = call.clone();
    call.on_complete(Box::new(move |status: &Status| {
        let throttle = inner.config.lock().throttle.clone();
        if status.code() == Code::Ok {
            if let Some(t) = &throttle {
                t.record_success();
            }
            return shared.finish(attempt_call.take_unary(status));
        }
        if shared.is_cancelled() {
            return shared.finish(Err(status.clone()));
        }
        let deadline_left = options.deadline().is_none_or(|d| d > Instant::now());
        // Transparent retry: the server never saw the stream.
        if attempt_call.was_unsent() && transparent_left > 0 && deadline_left {
            let again = (
                inner.clone(),
                shared.clone(),
                method.clone(),
                request.clone(),
                options.clone(),
            );
            spawn_retry(Duration::ZERO, move || {
                attempt(
                    again.0,
                    again.1,
                    again.2,
                    again.3,
                    again.4,
                    retry,
                    number,
                    transparent_left - 1,
                )
            });
            return;
        }
        let retryable = retry
            .as_ref()
            .is_some_and(|p| p.is_retryable(status.code()));
        if retryable {
            let throttled = throttle.as_ref().is_some_and(|t| !t.record_failure());
            let policy = retry.clone();
            if let Some(policy) = policy.filter(|p| {
                number < p.max_attempts && !attempt_call.committed() && !throttled && deadline_left
            }) {
                let mut rng = jitter_rng(u64::from(number) ^ now_nanos());
                let delay = policy.retry_delay(number - 1, &mut rng);
                let again = (
                    inner.clone(),
                    shared.clone(),
                    method.clone(),
                    request.clone(),
                    options.clone(),
                );
                spawn_retry(delay, move || {
                    attempt(
                        again.0,
                        again.1,
                        again.2,
                        again.3,
                        again.4,
                        Some(policy),
                        number + 1,
                        transparent_left,
                    )
                });
                return;
            }
        }
        shared.finish(Err(status.clone()));
    }));
}

fn spawn_retry(delay: Duration, f: impl FnOnce() + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name("mio-grpc-retry".into())
        .spawn(move || {
            std::thread::sleep(delay);
            f();
        });
}

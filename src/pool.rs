//! The thread pools that run handlers, in two flavours.
//!
//! - [`ElasticPool`], for blocking handlers (the gRPC server's generated
//!   traits, the HTTP/2 handler API): `min` threads always, more while
//!   every worker is busy, up to `max`; a thread past `min` exits after
//!   `idle_timeout` without work and is joined by the next
//!   [`try_submit`](ElasticPool::try_submit), spawn or
//!   [`shutdown`](ElasticPool::shutdown). It never queues silently:
//!   [`try_submit`](ElasticPool::try_submit) takes a job only when an idle
//!   worker is reserved for it or a new worker is spawned with it, and
//!   otherwise hands it back at once (the caller refuses the call).
//! - [`FixedPool`], for short callback jobs that never block: `n` threads
//!   and a FIFO queue (a queue is harmless when no job waits on another).
//!
//! Invariants of the elastic pool, all under its one state lock:
//! `idle` counts workers waiting for a job minus jobs handed to them and
//! not yet picked up, so a reservation (`idle -= 1`, then the send) is
//! never claimed twice; a worker leaves on its idle timeout only with the
//! hand-off channel empty, so no reserved job is stranded; the thread
//! handles held are the live workers plus the exited ones not yet reaped
//! (at most `max` in all). Every job runs under `catch_unwind`: a
//! panicking job is counted ([`ElasticPool::panics`]) and its worker goes
//! on.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

/// A unit of work for a pool.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// How long a thread past the elastic pool's minimum waits for work before
/// it exits, by default.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `job`, catching a panic; true if it panicked.
fn run_caught(job: Job) -> bool {
    catch_unwind(AssertUnwindSafe(job)).is_err()
}

/// Joins `handles`, skipping the calling thread's own (a job may stop
/// the pool it runs on).
fn join_all(handles: impl IntoIterator<Item = JoinHandle<()>>) {
    let me = std::thread::current().id();
    for handle in handles {
        if handle.thread().id() != me {
            let _ = handle.join();
        }
    }
}

/// A snapshot of a pool's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PoolStats {
    /// Worker threads alive.
    pub(crate) threads: usize,
    /// Workers running a job now.
    pub(crate) busy: usize,
    /// Jobs handed back because no worker could take them.
    pub(crate) refused: u64,
    /// Jobs that panicked.
    pub(crate) panics: u64,
}

/// What the elastic pool's lock protects.
struct ElasticState {
    /// Workers alive (spawned and not exited).
    alive: usize,
    /// Workers waiting for a job, minus jobs sent and not yet picked up.
    idle: usize,
    /// The hand-off channel; `None` once shut down.
    tx: Option<Sender<Job>>,
    /// Live and exited-but-unreaped workers' threads, by worker id.
    handles: HashMap<u64, JoinHandle<()>>,
    /// Workers that exited on their idle timeout, to join.
    exited: Vec<u64>,
    next_id: u64,
}

/// What the elastic pool's workers share with it.
struct ElasticShared {
    state: Mutex<ElasticState>,
    rx: Receiver<Job>,
    min: usize,
    max: usize,
    idle_timeout: Duration,
    name: String,
    busy: AtomicUsize,
    refused: AtomicU64,
    panics: AtomicU64,
}

/// The bounded elastic pool for blocking jobs. See the module
/// documentation.
pub(crate) struct ElasticPool {
    shared: Arc<ElasticShared>,
}

impl ElasticPool {
    /// A pool of `min` threads (at least 1) growing to `max` (at least
    /// `min`); threads past `min` exit after `idle_timeout` without work.
    /// `name` prefixes the threads' names.
    pub(crate) fn new(min: usize, max: usize, idle_timeout: Duration, name: &str) -> ElasticPool {
        let min = min.max(1);
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let shared = Arc::new(ElasticShared {
            state: Mutex::new(ElasticState {
                alive: 0,
                idle: 0,
                tx: Some(tx),
                handles: HashMap::new(),
                exited: Vec::new(),
                next_id: 0,
            }),
            rx,
            min,
            max: max.max(min),
            idle_timeout,
            name: name.to_string(),
            busy: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            panics: AtomicU64::new(0),
        });
        let pool = ElasticPool { shared };
        {
            let mut state = pool.shared.state.lock();
            for _ in 0..min {
                // A worker that cannot be spawned now is spawned on demand.
                if let Ok(()) = spawn_worker(&pool.shared, &mut state, None) {
                    state.idle += 1;
                }
            }
        }
        pool
    }

    /// Runs `job` on an idle worker (reserved for it under the lock, so
    /// two racing submits never claim the same one) or on a new worker if
    /// fewer than `max` are alive; otherwise hands `job` back at once.
    /// After [`shutdown`](Self::shutdown), always hands it back.
    pub(crate) fn try_submit(&self, job: Job) -> Result<(), Job> {
        let exited;
        let result = {
            let mut state = self.shared.state.lock();
            exited = take_exited(&mut state);
            self.place(&mut state, job)
        };
        join_all(exited);
        if result.is_err() {
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Hands `job` to a reserved idle worker or a new one.
    fn place(&self, state: &mut ElasticState, job: Job) -> Result<(), Job> {
        let Some(tx) = state.tx.as_ref() else {
            return Err(job);
        };
        if state.idle > 0 {
            // Sent under the lock: a worker timing out sees it in the
            // channel before it decides to leave.
            match tx.send(job) {
                Ok(()) => {
                    state.idle -= 1;
                    Ok(())
                }
                Err(e) => Err(e.0),
            }
        } else if state.alive < self.shared.max {
            spawn_worker(&self.shared, state, Some(job))
        } else {
            Err(job)
        }
    }

    /// Stops taking jobs, lets running (and queued) jobs finish, and
    /// joins every worker. Idempotent.
    pub(crate) fn shutdown(&self) {
        let handles: Vec<JoinHandle<()>> = {
            let mut state = self.shared.state.lock();
            // Workers see the channel disconnect once it is empty.
            state.tx = None;
            state.exited.clear();
            state.handles.drain().map(|(_, h)| h).collect()
        };
        join_all(handles);
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> PoolStats {
        let threads = self.shared.state.lock().alive;
        PoolStats {
            threads,
            busy: self.shared.busy.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            panics: self.shared.panics.load(Ordering::Relaxed),
        }
    }

    /// Jobs that panicked so far.
    #[cfg(test)]
    pub(crate) fn panics(&self) -> u64 {
        self.shared.panics.load(Ordering::Relaxed)
    }

    /// Joins the workers that exited, then counts the thread handles
    /// held (live workers only, after the reaping).
    #[cfg(test)]
    fn reap_and_count_handles(&self) -> usize {
        let exited = take_exited(&mut self.shared.state.lock());
        join_all(exited);
        self.shared.state.lock().handles.len()
    }
}

impl Drop for ElasticPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Removes the exited workers' handles (to join outside the lock).
fn take_exited(state: &mut ElasticState) -> Vec<JoinHandle<()>> {
    let ids = std::mem::take(&mut state.exited);
    ids.iter()
        .filter_map(|id| state.handles.remove(id))
        .collect()
}

/// Spawns a worker (counted alive) that runs `first` if given, then
/// serves the channel. On failure, `first` comes back.
fn spawn_worker(
    shared: &Arc<ElasticShared>,
    state: &mut ElasticState,
    first: Option<Job>,
) -> Result<(), Job> {
    let id = state.next_id;
    state.next_id += 1;
    // The job travels in a slot so a failed spawn can give it back.
    let slot = Arc::new(Mutex::new(first));
    let worker_slot = slot.clone();
    let worker_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("{}-{id}", shared.name))
        .spawn(move || {
            let first = worker_slot.lock().take();
            elastic_worker(&worker_shared, id, first);
        });
    match spawned {
        Ok(handle) => {
            state.alive += 1;
            state.handles.insert(id, handle);
            Ok(())
        }
        Err(_) => match slot.lock().take() {
            Some(job) => Err(job),
            None => Ok(()),
        },
    }
}

/// A worker's life: its first job, then jobs from the channel, until the idle timeout (past `min`) or shutdown.
fn elastic_worker(shared: &ElasticShared, id: u64, first: Option<Job>) {
    let mut next = first;
    loop {
        if let Some(job) = next.take() {
            shared.busy.fetch_add(1, Ordering::Relaxed);
            if run_caught(job) {
                shared.panics.fetch_add(1, Ordering::Relaxed);
            }
            // Idle before not busy: whoever sees `busy` drop may count on
            // this worker taking the next job.
            shared.state.lock().idle += 1;
            shared.busy.fetch_sub(1, Ordering::Relaxed);
        }
        match shared.rx.recv_timeout(shared.idle_timeout) {
            // `idle` was spent by the submitter that reserved us.
            Ok(job) => next = Some(job),
            Err(RecvTimeoutError::Timeout) => {
                let mut state = shared.state.lock();
                // A job sent (under this lock) after the timeout fired is
                // ours to run: its submitter counted us idle.
                if let Ok(job) = shared.rx.try_recv() {
                    next = Some(job);
                    continue;
                }
                if state.alive > shared.min {
                    state.alive -= 1;
                    state.idle -= 1;
                    state.exited.push(id);
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let mut state = shared.state.lock();
                state.alive -= 1;
                state.idle = state.idle.saturating_sub(1);
                return;
            }
        }
    }
}

/// The fixed pool for short, non-blocking callback jobs. See the module
/// documentation.
pub(crate) struct FixedPool {
    tx: Sender<Option<Job>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stopped: AtomicBool,
    busy: Arc<AtomicUsize>,
    panics: Arc<AtomicU64>,
}

impl FixedPool {
    /// `n` threads (at least 1) named `name-i`.
    pub(crate) fn new(n: usize, name: &str) -> std::io::Result<FixedPool> {
        let (tx, rx) = crossbeam_channel::unbounded::<Option<Job>>();
        let busy = Arc::new(AtomicUsize::new(0));
        let panics = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let (rx, busy, panics) = (rx.clone(), busy.clone(), panics.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    // `None` is the stop sign; jobs before it run first.
                    while let Ok(Some(job)) = rx.recv() {
                        busy.fetch_add(1, Ordering::Relaxed);
                        if run_caught(job) {
                            panics.fetch_add(1, Ordering::Relaxed);
                        }
                        busy.fetch_sub(1, Ordering::Relaxed);
                    }
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    for _ in &threads {
                        let _ = tx.send(None);
                    }
                    join_all(threads);
                    return Err(e);
                }
            }
        }
        Ok(FixedPool {
            tx,
            threads: Mutex::new(threads),
            stopped: AtomicBool::new(false),
            busy,
            panics,
        })
    }

    /// Queues `job` (FIFO); hands it back after shutdown.
    // Called through `ServerShared::submit_callback` by the session (issue 13).
    #[allow(dead_code)]
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(job);
        }
        self.tx.send(Some(job)).map_err(|e| match e.0 {
            Some(job) => job,
            None => Box::new(|| {}),
        })
    }

    /// Lets the queued jobs run, then stops and joins every thread.
    /// Idempotent.
    pub(crate) fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        for _ in &threads {
            let _ = self.tx.send(None);
        }
        join_all(threads);
    }

    /// The counters now (nothing is ever refused while running).
    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            threads: self.threads.lock().len(),
            busy: self.busy.load(Ordering::Relaxed),
            refused: 0,
            panics: self.panics.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FixedPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;

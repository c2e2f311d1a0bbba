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
//! The elastic pool hands a job straight to one idle worker: each worker
//! has its own slot and parks on it; idle workers form a stack, so the
//! most recently busy (cache-warm) one takes the next job, and the
//! hand-off is one slot write and one unpark — no shared queue, no
//! spinning or yielding (which on a loaded core steals time from the very
//! threads the job waits for).
//!
//! Invariants of the elastic pool, all under its one state lock: a worker
//! is on the idle stack only while its slot is empty; a submit pops a
//! worker and fills its slot under the lock, so a reservation is never
//! claimed twice; a worker leaves on its idle timeout only while still on
//! the stack (else its slot holds a job for it), so no reserved job is
//! stranded; the thread handles held are the live workers plus the exited
//! ones not yet reaped (at most `max` in all). Every job runs under
//! `catch_unwind`: a panicking job is counted ([`ElasticPool::panics`])
//! and its worker goes on.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::conn::Wake as _;
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
    let mut me = None;
    for handle in handles {
        let me = *me.get_or_insert_with(|| std::thread::current().id());
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

/// One elastic worker's mailbox: the job handed to it and its thread.
struct WorkerSlot {
    job: Mutex<Option<Job>>,
    /// Set by the worker when it starts (before it can be idle).
    thread: OnceLock<Thread>,
}

impl crate::conn::Wake for WorkerSlot {
    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// What the elastic pool's lock protects.
struct ElasticState {
    /// Workers alive (spawned and not exited).
    alive: usize,
    /// Workers waiting for a job, most recently idle last.
    idle: Vec<(u64, Arc<WorkerSlot>)>,
    /// Set by `shutdown`: no more jobs.
    stopped: bool,
    /// Live and exited-but-unreaped workers' threads, by worker id.
    handles: HashMap<u64, JoinHandle<()>>,
    /// Workers that exited on their idle timeout, to join.
    exited: Vec<u64>,
    next_id: u64,
}

/// What the elastic pool's workers share with it.
struct ElasticShared {
    state: Mutex<ElasticState>,
    /// `state.stopped`, readable without the lock (an idle worker looks at
    /// it each time it wakes without a job).
    stopping: AtomicBool,
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
        let shared = Arc::new(ElasticShared {
            state: Mutex::new(ElasticState {
                alive: 0,
                idle: Vec::new(),
                stopped: false,
                handles: HashMap::new(),
                exited: Vec::new(),
                next_id: 0,
            }),
            stopping: AtomicBool::new(false),
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
                let _ = spawn_worker(&pool.shared, &mut state, None);
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
        match result {
            Ok(Some(slot)) => {
                // Woken outside the lock, and on a loop thread only once
                // the connection being served is unlocked: the worker
                // (which may preempt the loop at once on a shared core)
                // then writes its answer itself instead of queueing it.
                crate::runtime::wake_after_service(slot);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(job) => {
                self.shared.refused.fetch_add(1, Ordering::Relaxed);
                Err(job)
            }
        }
    }

    /// Hands `job` to the most recently idle worker (returned, to wake) or
    /// to a new one.
    fn place(&self, state: &mut ElasticState, job: Job) -> Result<Option<Arc<WorkerSlot>>, Job> {
        if state.stopped {
            return Err(job);
        }
        if let Some((_, slot)) = state.idle.pop() {
            // Filled under the state lock: a worker timing out sees either
            // itself still idle or this job in its slot.
            *slot.job.lock() = Some(job);
            Ok(Some(slot))
        } else if state.alive < self.shared.max {
            spawn_worker(&self.shared, state, Some(job)).map(|()| None)
        } else {
            Err(job)
        }
    }

    /// Stops taking jobs, lets running (and queued) jobs finish, and
    /// joins every worker. Idempotent.
    pub(crate) fn shutdown(&self) {
        let (handles, idle): (Vec<JoinHandle<()>>, Vec<_>) = {
            let mut state = self.shared.state.lock();
            state.stopped = true;
            self.shared.stopping.store(true, Ordering::Release);
            state.exited.clear();
            (
                state.handles.drain().map(|(_, h)| h).collect(),
                std::mem::take(&mut state.idle),
            )
        };
        // Idle workers wake and leave; busy ones leave after their job.
        for (_, slot) in idle {
            slot.wake();
        }
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
/// serves its slot. On failure, `first` comes back.
fn spawn_worker(
    shared: &Arc<ElasticShared>,
    state: &mut ElasticState,
    first: Option<Job>,
) -> Result<(), Job> {
    let id = state.next_id;
    state.next_id += 1;
    // The first job travels in the slot so a failed spawn can give it back.
    let slot = Arc::new(WorkerSlot {
        job: Mutex::new(first),
        thread: OnceLock::new(),
    });
    let starts_idle = slot.job.lock().is_none();
    let worker_slot = slot.clone();
    let worker_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("{}-{id}", shared.name))
        .spawn(move || elastic_worker(&worker_shared, id, &worker_slot));
    match spawned {
        Ok(handle) => {
            state.alive += 1;
            state.handles.insert(id, handle);
            if starts_idle {
                // Idle from the start (a job may reach its slot before
                // the thread runs; it looks there first).
                state.idle.push((id, slot));
            }
            Ok(())
        }
        Err(_) => match slot.job.lock().take() {
            Some(job) => Err(job),
            None => Ok(()),
        },
    }
}

/// A worker's life: the job in its slot, if any; then idle on the stack,
/// parked until a submit fills its slot, until the idle timeout (past
/// `min`) or shutdown.
fn elastic_worker(shared: &ElasticShared, id: u64, slot: &Arc<WorkerSlot>) {
    let _ = slot.thread.set(std::thread::current());
    let mut next = slot.job.lock().take();
    if next.is_none() {
        // Spawned idle: on the stack already.
        match wait_for_job(shared, id, slot) {
            Some(job) => next = Some(job),
            None => return,
        }
    }
    loop {
        let ran = next.is_some();
        if let Some(job) = next.take() {
            shared.busy.fetch_add(1, Ordering::Relaxed);
            if run_caught(job) {
                shared.panics.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Idle before not busy: whoever sees `busy` drop may count on this
        // worker taking the next job.
        let stopped = {
            let mut state = shared.state.lock();
            if state.stopped {
                state.alive -= 1;
            } else {
                state.idle.push((id, slot.clone()));
            }
            state.stopped
        };
        if ran {
            shared.busy.fetch_sub(1, Ordering::Relaxed);
        }
        if stopped {
            return;
        }
        match wait_for_job(shared, id, slot) {
            Some(job) => next = Some(job),
            None => return,
        }
    }
}

/// Parks an idle worker until its slot holds a job (`Some`), or it leaves
/// (`None`: its idle timeout past `min`, or shutdown; it is then off the
/// stack and no longer counted alive).
fn wait_for_job(shared: &ElasticShared, id: u64, slot: &WorkerSlot) -> Option<Job> {
    let mut deadline = None;
    loop {
        if let Some(job) = slot.job.lock().take() {
            return Some(job);
        }
        let now = Instant::now();
        let deadline = deadline.get_or_insert(now + shared.idle_timeout);
        if now < *deadline && !shared.stopping.load(Ordering::Acquire) {
            std::thread::park_timeout(*deadline - now);
            continue;
        }
        let mut state = shared.state.lock();
        match state.idle.iter().position(|(i, _)| *i == id) {
            // Still idle: leave if stopping or past `min`, else wait again.
            Some(position) => {
                if state.stopped || state.alive > shared.min {
                    state.idle.remove(position);
                    state.alive -= 1;
                    if !state.stopped {
                        state.exited.push(id);
                    }
                    return None;
                }
                *deadline = now + shared.idle_timeout;
            }
            // Taken off the stack under this lock: by a submit, whose job
            // is in the slot now, or by shutdown.
            None => {
                if let Some(job) = slot.job.lock().take() {
                    return Some(job);
                }
                if state.stopped {
                    state.alive -= 1;
                    return None;
                }
                *deadline = now + shared.idle_timeout;
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

//! The worker pool that runs handlers (the HTTP/2 handler API and the gRPC
//! server): `min` threads always, more while every worker is busy (up to
//! `max`), so a handler that blocks (reading a slow body, waiting on flow
//! control) does not hold up other connections' requests; extra threads
//! exit after a minute idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// A unit of work for the pool.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The pool. See the module documentation.
pub(crate) struct Pool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    idle: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    /// Jobs submitted and not yet picked up by a worker.
    pending: Arc<AtomicUsize>,
    min: usize,
    max: usize,
    pub(crate) threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Pool {
    pub(crate) fn new(min: usize, max: usize) -> Arc<Pool> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let min = min.max(1);
        let pool = Arc::new(Pool {
            tx,
            rx,
            idle: Arc::new(AtomicUsize::new(0)),
            total: Arc::new(AtomicUsize::new(0)),
            pending: Arc::new(AtomicUsize::new(0)),
            min,
            max: max.max(min),
            threads: Mutex::new(Vec::new()),
        });
        for _ in 0..min {
            pool.spawn();
        }
        pool
    }

    fn spawn(&self) {
        let n = self.total.fetch_add(1, Ordering::SeqCst) + 1;
        self.idle.fetch_add(1, Ordering::SeqCst);
        let (rx, idle, total, pending, min) = (
            self.rx.clone(),
            self.idle.clone(),
            self.total.clone(),
            self.pending.clone(),
            self.min,
        );
        let worker = move || loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(job) => {
                    pending.fetch_sub(1, Ordering::SeqCst);
                    idle.fetch_sub(1, Ordering::SeqCst);
                    job();
                    idle.fetch_add(1, Ordering::SeqCst);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if total.load(Ordering::SeqCst) > min {
                        total.fetch_sub(1, Ordering::SeqCst);
                        idle.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        };
        match std::thread::Builder::new()
            .name(format!("mio-grpc-worker-{n}"))
            .spawn(worker)
        {
            Ok(handle) => self.threads.lock().push(handle),
            Err(_) => {
                self.total.fetch_sub(1, Ordering::SeqCst);
                self.idle.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        // More jobs waiting than idle workers to take them: grow.
        let pending = self.pending.fetch_add(1, Ordering::SeqCst) + 1;
        if pending > self.idle.load(Ordering::SeqCst)
            && self.total.load(Ordering::SeqCst) < self.max
        {
            self.spawn();
        }
        self.tx.send(job).map_err(|e| {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            e.0
        })
    }
}

//! Unit tests of the pools: refusal, reservations under racing submits,
//! panics, idle exit with joining, and flat thread counts across bursts.
//! Events are ordered by observable conditions (`wait_until`), never by
//! sleeping.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{ElasticPool, FixedPool, Job};

/// How long a condition that should hold promptly may take before the
/// test fails (a passing test never waits this long).
const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `condition` until it holds or `PATIENCE` passes.
fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    let mut polls = 0u64;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return condition();
        }
        polls += 1;
        if polls < 100 {
            std::thread::yield_now();
        } else {
            // The polling step, not a guess at how long anything takes.
            std::thread::sleep(Duration::from_micros(polls.min(1000)));
        }
    }
}

/// A job that blocks until the test sends on (or drops) the gate.
fn gated(gate: &Receiver<()>) -> Job {
    let gate = gate.clone();
    Box::new(move || {
        let _ = gate.recv();
    })
}

fn gate() -> (Sender<()>, Receiver<()>) {
    crossbeam_channel::unbounded()
}

/// Retries `try_submit` until a worker takes the job (a worker that just
/// finished counts itself idle a moment after its job returns).
fn submit_eventually(pool: &ElasticPool, mut job: Job) {
    let accepted =
        wait_until(
            || match pool.try_submit(std::mem::replace(&mut job, Box::new(|| {}))) {
                Ok(()) => true,
                Err(back) => {
                    job = back;
                    false
                }
            },
        );
    assert!(accepted, "no worker took the job");
}

#[test]
fn elastic_refuses_when_every_worker_is_busy() {
    let pool = ElasticPool::new(1, 2, Duration::from_secs(60), "t-refuse");
    let (open, gate_rx) = gate();
    assert!(pool.try_submit(gated(&gate_rx)).is_ok(), "the idle worker");
    assert!(pool.try_submit(gated(&gate_rx)).is_ok(), "a new worker");
    assert!(
        pool.try_submit(gated(&gate_rx)).is_err(),
        "full: refused at once"
    );
    assert!(wait_until(|| pool.stats().busy == 2));
    let stats = pool.stats();
    assert_eq!((stats.threads, stats.refused), (2, 1));
    drop(open);
    assert!(wait_until(|| pool.stats().busy == 0));
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    submit_eventually(&pool, Box::new(move || done_tx.send(()).unwrap()));
    assert!(done_rx.recv_timeout(PATIENCE).is_ok());
    pool.shutdown();
    assert_eq!(pool.stats().threads, 0);
}

#[test]
fn elastic_racing_submits_never_share_a_worker() {
    const MAX: usize = 4;
    const RACERS: usize = 16;
    let pool = Arc::new(ElasticPool::new(2, MAX, Duration::from_secs(60), "t-race"));
    let (open, gate_rx) = gate();
    let started = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (pool, barrier, started, gate_rx) = (
                pool.clone(),
                barrier.clone(),
                started.clone(),
                gate_rx.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                pool.try_submit(Box::new(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = gate_rx.recv();
                }))
                .is_ok()
            })
        })
        .collect();
    let accepted = racers
        .into_iter()
        .map(|r| r.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(accepted, MAX);
    // Every accepted job really runs: none waits behind another.
    assert!(wait_until(|| started.load(Ordering::SeqCst) == MAX));
    assert_eq!(pool.stats().refused, (RACERS - MAX) as u64);
    drop(open);
    pool.shutdown();
}

#[test]
fn elastic_panicking_job_is_counted_and_the_worker_survives() {
    let pool = ElasticPool::new(1, 1, Duration::from_secs(60), "t-panic");
    assert!(pool
        .try_submit(Box::new(|| panic!(
            "a handler panicked (expected by the test)"
        )))
        .is_ok());
    assert!(wait_until(|| pool.panics() == 1));
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    submit_eventually(&pool, Box::new(move || done_tx.send(()).unwrap()));
    assert!(done_rx.recv_timeout(PATIENCE).is_ok());
    assert_eq!(
        pool.stats().threads,
        1,
        "the same worker, not a replacement"
    );
    assert_eq!(pool.stats().panics, 1);
}

#[test]
fn elastic_idle_workers_exit_and_are_joined() {
    let pool = ElasticPool::new(1, 4, Duration::from_millis(20), "t-idle");
    let (open, gate_rx) = gate();
    for _ in 0..4 {
        assert!(pool.try_submit(gated(&gate_rx)).is_ok());
    }
    assert!(wait_until(|| pool.stats().busy == 4));
    assert_eq!(pool.stats().threads, 4);
    drop(open);
    assert!(
        wait_until(|| pool.stats().threads == 1),
        "extra workers exit"
    );
    assert_eq!(
        pool.reap_and_count_handles(),
        1,
        "exited workers are joined"
    );
}

#[test]
fn elastic_thread_handles_return_to_min_after_each_burst() {
    let pool = ElasticPool::new(2, 8, Duration::from_millis(10), "t-burst");
    for _ in 0..5 {
        let (open, gate_rx) = gate();
        for _ in 0..8 {
            assert!(pool.try_submit(gated(&gate_rx)).is_ok());
        }
        assert!(pool.try_submit(gated(&gate_rx)).is_err());
        assert!(wait_until(|| pool.stats().busy == 8));
        drop(open);
        // Two left, both idle again (a worker counts itself idle before
        // it stops counting as busy).
        assert!(wait_until(|| {
            let stats = pool.stats();
            stats.threads == 2 && stats.busy == 0
        }));
        assert_eq!(pool.reap_and_count_handles(), 2);
    }
    assert_eq!(pool.stats().refused, 5);
}

#[test]
fn elastic_shutdown_lets_running_jobs_finish_and_joins() {
    let pool = Arc::new(ElasticPool::new(1, 2, Duration::from_secs(60), "t-stop"));
    let (open, gate_rx) = gate();
    let finished = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let (gate_rx, finished) = (gate_rx.clone(), finished.clone());
        assert!(pool
            .try_submit(Box::new(move || {
                let _ = gate_rx.recv();
                finished.fetch_add(1, Ordering::SeqCst);
            }))
            .is_ok());
    }
    assert!(wait_until(|| pool.stats().busy == 2));
    let stopper = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.shutdown())
    };
    drop(open);
    stopper.join().unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), 2);
    assert_eq!(pool.stats().threads, 0);
    assert!(pool.try_submit(Box::new(|| {})).is_err(), "stopped");
}

#[test]
fn fixed_runs_in_fifo_order_counts_panics_and_drains_on_shutdown() {
    let pool = FixedPool::new(1, "t-fixed").unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    assert!(pool
        .submit(Box::new(|| panic!(
            "a callback panicked (expected by the test)"
        )))
        .is_ok());
    for i in 0..100 {
        let tx = tx.clone();
        assert!(pool.submit(Box::new(move || tx.send(i).unwrap())).is_ok());
    }
    pool.shutdown();
    let order: Vec<i32> = rx.try_iter().collect();
    assert_eq!(order, (0..100).collect::<Vec<_>>());
    let stats = pool.stats();
    assert_eq!((stats.panics, stats.threads), (1, 0));
    assert!(pool.submit(Box::new(|| {})).is_err(), "stopped");
}

//! Retries, error budgets and the worker pool shared by every remote client (the log-prob
//! backend and the judges).
//!
//! A batch of jobs is spread over the servers by worker threads, `per_endpoint` per server,
//! that pull the next job from a shared counter: a faster server simply takes more. Transport
//! errors, timeouts, 429 and 5xx are retried with exponential backoff and full jitter; every
//! failed attempt counts against its server's error budget, and a server over budget takes
//! no more jobs. When every server is over budget the remaining jobs fail with
//! [`RemoteError::BudgetExhausted`] while the finished ones are returned, so the caller can
//! cache them and a rerun resumes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::RemoteError;

/// How failures are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetryPolicy {
    /// New attempts after a retryable failure.
    pub retries: usize,
    /// Failed attempts a server may have before it is dropped.
    pub error_budget: usize,
    /// First backoff delay; attempt n waits up to `base·2ⁿ`.
    pub backoff_base: Duration,
    /// Longest backoff delay.
    pub backoff_max: Duration,
}

/// The failure state of a set of servers.
#[derive(Debug)]
pub(crate) struct Fleet {
    failed: Vec<AtomicUsize>,
    last_error: Mutex<String>,
    policy: RetryPolicy,
    names: Vec<String>,
}

impl Fleet {
    /// A fleet of servers named by `names` (their URLs, for log messages).
    pub fn new(names: Vec<String>, policy: RetryPolicy) -> Fleet {
        Fleet {
            failed: names.iter().map(|_| AtomicUsize::new(0)).collect(),
            last_error: Mutex::new(String::new()),
            policy,
            names,
        }
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether server `e` is still within its error budget.
    pub fn alive(&self, e: usize) -> bool {
        self.failed[e].load(Ordering::Relaxed) < self.policy.error_budget.max(1)
    }

    fn any_alive(&self) -> bool {
        (0..self.len()).any(|e| self.alive(e))
    }

    /// Runs `attempt` on server `e` until it succeeds, fails for good (a non-retryable error,
    /// or the retries are used up: `Err(Some(_))`), or the server runs out of budget while
    /// retrying (`Err(None)`: the job goes back to the queue for another server).
    pub fn attempt<T>(
        &self,
        e: usize,
        mut attempt: impl FnMut() -> Result<T, RemoteError>,
    ) -> Result<T, Option<RemoteError>> {
        let mut n = 0;
        loop {
            if !self.alive(e) {
                return Err(None);
            }
            let err = match attempt() {
                Ok(v) => return Ok(v),
                Err(err) => err,
            };
            let failed = self.failed[e].fetch_add(1, Ordering::Relaxed) + 1;
            if let Ok(mut last) = self.last_error.lock() {
                *last = err.to_string();
            }
            if failed >= self.policy.error_budget.max(1) {
                tracing::error!(
                    "{}: error budget of {} failed attempts used up; no more requests go there (last: {err})",
                    self.names[e],
                    self.policy.error_budget
                );
            }
            if !err.is_retryable() || n >= self.policy.retries {
                return Err(Some(err));
            }
            let delay = self.backoff(n);
            tracing::warn!(
                "{err}; retry {} of {} in {:.2} s",
                n + 1,
                self.policy.retries,
                delay.as_secs_f64()
            );
            std::thread::sleep(delay);
            n += 1;
        }
    }

    /// Full jitter: uniform in [0, min(max, base·2ⁿ)], so clients that failed together do not
    /// retry together.
    fn backoff(&self, attempt: usize) -> Duration {
        let cap = self
            .policy
            .backoff_base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.policy.backoff_max);
        cap.mul_f64(fastrand::f64())
    }

    /// Runs jobs `0..n_jobs` over the servers, `per_endpoint` workers each; `job(e, i)` runs
    /// job `i` on server `e` (normally through [`Fleet::attempt`]). Entry `i` of the result
    /// answers job `i`; jobs left when every server is over budget get `exhausted(i, budget,
    /// last error)`.
    pub fn run<T: Send>(
        &self,
        n_jobs: usize,
        per_endpoint: usize,
        job: impl Fn(usize, usize) -> Result<T, Option<RemoteError>> + Sync,
        exhausted: impl Fn(usize, usize, String) -> RemoteError,
    ) -> Vec<Result<T, RemoteError>> {
        let batch = Batch {
            n: n_jobs,
            next: AtomicUsize::new(0),
            requeued: Mutex::new(Vec::new()),
            results: (0..n_jobs).map(|_| Mutex::new(None)).collect(),
        };
        let workers = per_endpoint.max(1).min(n_jobs.max(1));
        let work = |e: usize| {
            while self.alive(e) {
                let Some(i) = batch.take() else { return };
                match job(e, i) {
                    Ok(v) => batch.put(i, Ok(v)),
                    Err(Some(err)) => batch.put(i, Err(err)),
                    Err(None) => {
                        if let Ok(mut q) = batch.requeued.lock() {
                            q.push(i);
                        }
                        return;
                    }
                }
            }
        };
        std::thread::scope(|s| {
            for e in 0..self.len() {
                for _ in 0..workers {
                    let work = &work;
                    s.spawn(move || work(e));
                }
            }
        });
        // A worker that hands a job back exits; if others are still alive they pick it up,
        // otherwise it is left here. Run leftovers on any server still in budget.
        while self.any_alive() {
            let pending = batch
                .requeued
                .lock()
                .map(|q| !q.is_empty())
                .unwrap_or(false);
            if !pending {
                break;
            }
            std::thread::scope(|s| {
                for e in (0..self.len()).filter(|&e| self.alive(e)) {
                    let work = &work;
                    s.spawn(move || work(e));
                }
            });
        }
        let last = self
            .last_error
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        batch
            .results
            .into_iter()
            .enumerate()
            .map(|(i, slot)| {
                slot.into_inner()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| Err(exhausted(i, self.policy.error_budget, last.clone())))
            })
            .collect()
    }
}

/// Shared state of one batch.
struct Batch<T> {
    n: usize,
    next: AtomicUsize,
    /// Jobs handed back by a worker whose server ran out of budget.
    requeued: Mutex<Vec<usize>>,
    results: Vec<Mutex<Option<Result<T, RemoteError>>>>,
}

impl<T> Batch<T> {
    fn take(&self) -> Option<usize> {
        if let Some(i) = self.requeued.lock().ok().and_then(|mut q| q.pop()) {
            return Some(i);
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.n).then_some(i)
    }

    fn put(&self, i: usize, r: Result<T, RemoteError>) {
        if let Ok(mut slot) = self.results[i].lock() {
            *slot = Some(r);
        }
    }
}

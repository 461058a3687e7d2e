//! What every route shares: the loaded model pair ([`Models`]), the limits ([`ServeConfig`]),
//! the admission gate that bounds concurrent model work, the sessions and the metrics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use padv_core::Trajectory;
use padv_engine::cancel::{with_cancel, CancelFlag};
use padv_engine::logprobs::LocalEngine;
use padv_engine::tokenize::{Rendering, TextTokenizer, TokenizeError, Tokenized};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::sessions::SessionStore;

/// Limits and switches of the service. Defaults suit one local GPU or CPU box.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Bearer token every request except `/health` must carry (default none: open).
    pub api_key: Option<String>,
    /// Largest accepted request body in bytes (default 8 MiB).
    pub max_body_bytes: usize,
    /// Largest token sequence one request may score (default 16,384). Longer requests are
    /// refused (422) rather than silently truncated.
    pub max_tokens: usize,
    /// Per-request wall-clock limit (default 120 s); past it the client gets 503 `timeout`.
    pub timeout: Duration,
    /// Model computations running at once (default 1: the models already use every core).
    pub max_concurrency: usize,
    /// Requests allowed to wait for a worker (default 64); beyond it the answer is 429.
    pub max_queue: usize,
    /// Bound on the memory held by sessions' KV caches, in bytes (default 1 GiB); the least
    /// recently used sessions are evicted beyond it.
    pub session_memory_bytes: usize,
    /// Most candidates in one `/v1/score/candidates` request (default 64).
    pub max_candidates: usize,
    /// A fitted score → P(success) map (`padv eval uq --calibrate-out`, `padv serve
    /// --calibration`): `/v1/score` then also returns the calibrated cell's score and
    /// `p_success` (default none).
    pub calibration: Option<Arc<padv_core::eval::calibration::Calibration>>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            api_key: None,
            max_body_bytes: 8 << 20,
            max_tokens: 16_384,
            timeout: Duration::from_secs(120),
            max_concurrency: 1,
            max_queue: 64,
            session_memory_bytes: 1 << 30,
            max_candidates: 64,
            calibration: None,
        }
    }
}

/// The policy/reference pair and the tokenizer they share.
///
/// The service holds the local engines themselves rather than `Arc<dyn LogprobBackend>`:
/// candidates and sessions continue from a model's KV cache (`LocalEngine::score_from`),
/// which the backend trait cannot express. `score_from` takes `&self`, so one `Arc<Models>`
/// serves concurrent requests without a lock.
#[derive(Debug)]
pub struct Models {
    /// The RL-trained policy π_θ.
    pub policy: LocalEngine,
    /// The reference π_ref.
    pub reference: LocalEngine,
    /// The policy's tokenizer (checked to match the reference's at load).
    pub tokenizer: TextTokenizer,
    /// The renderer, chat-template flags and `--max-length`, compiled once: the very
    /// [`Rendering`] `padv score` encodes with (`padv_engine::tokenize`), so a trajectory gets
    /// the same ids from the server as from the CLI under the same flags.
    pub rendering: Rendering,
    /// Name `/v1/models` reports for the policy (default `policy`).
    pub policy_name: String,
    /// Name for the reference (default `reference`).
    pub reference_name: String,
}

impl Models {
    /// Tokenises a trajectory exactly as `padv score` does with the same flags.
    pub fn encode(&self, t: &Trajectory) -> Result<Tokenized, TokenizeError> {
        self.rendering.encode(&self.tokenizer, t)
    }

    /// The engine answering to `name` (`policy`/`reference`, or their configured names);
    /// `None` picks the policy, as vLLM serves its one model when `model` is omitted.
    pub fn by_name(&self, name: Option<&str>) -> ApiResult<(&str, &LocalEngine)> {
        match name {
            None => Ok((&self.policy_name, &self.policy)),
            Some(n) if n == self.policy_name || n == "policy" => {
                Ok((&self.policy_name, &self.policy))
            }
            Some(n) if n == self.reference_name || n == "reference" => {
                Ok((&self.reference_name, &self.reference))
            }
            Some(n) => Err(ApiError::NotFound(format!(
                "model {n:?} not served; use {:?} or {:?}",
                self.policy_name, self.reference_name
            ))),
        }
    }
}

/// Bounds model work: `max_concurrency` computations run, `max_queue` more wait, and the
/// rest are refused at once with 429 so a burst cannot pile up unbounded memory.
#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
}

impl Admission {
    /// A gate with `concurrency` workers (at least 1) and a queue of `max_queue`.
    pub fn new(concurrency: usize, max_queue: usize) -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            max_queue,
        }
    }

    /// Requests waiting for a worker now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Waits for a worker slot, or refuses when the queue is full.
    pub async fn enter(&self) -> ApiResult<OwnedSemaphorePermit> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(p);
        }
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        if before >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::Overloaded(format!(
                "{} requests already waiting",
                self.max_queue
            )));
        }
        // Decrements on every exit path, including the caller's future being dropped.
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _leave = Leave(&self.waiting);
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Overloaded("server shutting down".into()))
    }
}

/// Shared state of the service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The models.
    pub models: Arc<Models>,
    /// Limits.
    pub config: Arc<ServeConfig>,
    /// The admission gate.
    pub admission: Arc<Admission>,
    /// Incremental-scoring sessions.
    pub sessions: Arc<SessionStore>,
    /// Prometheus counters.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// State for `models` under `config`.
    pub fn new(models: Models, config: ServeConfig) -> Self {
        AppState {
            admission: Arc::new(Admission::new(config.max_concurrency, config.max_queue)),
            sessions: Arc::new(SessionStore::new(config.session_memory_bytes)),
            models: Arc::new(models),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Runs `job` on the blocking pool once admitted, under the request timeout. The worker
    /// slot is held by the job itself, so the concurrency bound holds for actual CPU/GPU
    /// work; when the request times out (or its client goes away) the job's cancellation
    /// flag is raised and the engine stops at its next chunk boundary (`padv_engine::cancel`),
    /// so the slot frees within one decoder layer instead of after the abandoned work.
    pub async fn run_model<T, F>(&self, job: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Models) -> ApiResult<T> + Send + 'static,
    {
        /// Raises the flag however the request's future ends (done, timed out, dropped).
        struct CancelOnDrop(CancelFlag);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                self.0.cancel();
            }
        }
        let flag = CancelFlag::new();
        let _cancel = CancelOnDrop(flag.clone());
        let timeout = self.config.timeout;
        let work = async {
            let permit = self.admission.enter().await?;
            let models = Arc::clone(&self.models);
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                if flag.is_cancelled() {
                    return Err(ApiError::Timeout(0.0));
                }
                with_cancel(&flag, || job(&models))
            })
            .await
            .map_err(|e| ApiError::Internal(format!("model task failed: {e}")))?
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Timeout(timeout.as_secs_f64())),
        }
    }
}

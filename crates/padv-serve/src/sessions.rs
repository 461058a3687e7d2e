//! Incremental-scoring sessions: a conversation whose token ids, per-position values and both
//! models' KV caches stay in memory, so appending messages scores only the new tokens. Under a
//! chat template that rewrites earlier turns, each new action is scored in its own turn's
//! sequence (as `padv score` does), continuing from the cache of the previous one as far as the
//! two share a prefix.
//!
//! Memory is bounded by `--session-memory-mb`: the estimate counts both models' KV caches
//! (`layers × 2 × positions × kv_heads × head_dim × bytes`) plus ids and values per position.
//! Past the bound the least recently used idle sessions are evicted, and the request that
//! caused it lists them. A session is taken out of the store while a request updates it, so
//! two concurrent appends to one session get 409 instead of racing.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use padv_core::{PositionLogprobs, StatsRequest, StepLogprobs};
use padv_engine::decoder::DecoderConfig;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::scoring::PairCache;

/// Both models' values at one scored position, kept so that a position inside the prefix
/// shared with the next tokenisation is not computed again (by causality it depends on that
/// prefix alone). Records are built from them by the pair scorer's own record builder
/// (`padv_engine::pair::build_record`), through [`gather`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PosVals {
    /// log π_θ.
    pub policy: f32,
    /// Policy top-20 mean log-prob.
    pub topk_mean: f32,
    /// Policy entropy.
    pub entropy: f32,
    /// Policy vocabulary-mean log-prob.
    pub vocab_mean: f32,
    /// log π_ref.
    pub reference: f32,
}

/// Stores what the two models returned for `targets` (policy with distribution statistics,
/// reference log-probs) into `vals`, indexed by position. A result of the wrong shape is an
/// internal error; values are stored as they are (the record builder checks finiteness).
pub fn store(
    vals: &mut [Option<PosVals>],
    targets: &[usize],
    policy: &PositionLogprobs,
    reference: &PositionLogprobs,
) -> ApiResult<()> {
    let (Some(tk), Some(en), Some(vm)) = (&policy.topk_mean, &policy.entropy, &policy.vocab_mean)
    else {
        return Err(ApiError::Internal(
            "policy returned no distribution statistics".into(),
        ));
    };
    let n = targets.len();
    if [
        policy.logprob.len(),
        tk.len(),
        en.len(),
        vm.len(),
        reference.logprob.len(),
    ]
    .iter()
    .any(|&l| l != n)
    {
        return Err(ApiError::Internal(
            "a model returned the wrong number of values".into(),
        ));
    }
    for (i, &p) in targets.iter().enumerate() {
        let slot = vals
            .get_mut(p)
            .ok_or_else(|| ApiError::Internal(format!("position {p} is past the sequence")))?;
        *slot = Some(PosVals {
            policy: policy.logprob[i],
            topk_mean: tk[i],
            entropy: en[i],
            vocab_mean: vm[i],
            reference: reference.logprob[i],
        });
    }
    Ok(())
}

/// The stored values of `targets`, in order, as the policy's and the reference's results.
pub fn gather(
    vals: &[Option<PosVals>],
    targets: &[usize],
) -> ApiResult<(PositionLogprobs, PositionLogprobs)> {
    let mut pol = PositionLogprobs::with_capacity(
        targets.len(),
        StatsRequest {
            distribution_stats: true,
        },
    );
    let mut refr = PositionLogprobs::with_capacity(targets.len(), StatsRequest::default());
    for &p in targets {
        let v = vals
            .get(p)
            .copied()
            .flatten()
            .ok_or_else(|| ApiError::Internal(format!("position {p} was not scored")))?;
        pol.push(v.policy, v.topk_mean, v.entropy, v.vocab_mean);
        refr.logprob.push(v.reference);
    }
    Ok((pol, refr))
}

/// How many evicted ids are remembered, to answer "evicted" rather than "unknown".
const REMEMBER_EVICTED: usize = 4096;

/// One conversation being scored incrementally.
#[derive(Debug, Clone)]
pub struct Session {
    /// Session id.
    pub id: String,
    /// The messages so far, as the client sent them (re-read as one chat trajectory).
    pub messages: Vec<Value>,
    /// Token ids of the conversation as last tokenised.
    pub ids: Vec<u32>,
    /// Values of every scored position (`None` where nothing was scored).
    pub vals: Vec<Option<PosVals>>,
    /// Both models' caches of a prefix of `ids`.
    pub cache: PairCache,
    /// The record steps of every action so far (what the last response reported on).
    pub steps: Vec<StepLogprobs>,
    /// Whether `steps` are what each action's own turn gives, so a template that rewrites
    /// history can keep them when later messages arrive: true unless left truncation cut
    /// something (then every action is recomputed in its own turn).
    pub steps_reusable: bool,
    last_used: u64,
}

impl Session {
    /// A session with nothing computed yet.
    pub fn new(id: String, cache: PairCache) -> Self {
        Session {
            id,
            messages: Vec::new(),
            ids: Vec::new(),
            vals: Vec::new(),
            cache,
            steps: Vec::new(),
            steps_reusable: false,
            last_used: 0,
        }
    }

    /// Estimated bytes held, given the bytes one cached position costs in both models.
    pub fn bytes(&self, kv_bytes_per_position: usize) -> usize {
        self.cache.seq_len() * kv_bytes_per_position
            + self.ids.len() * 4
            + self.vals.len() * std::mem::size_of::<Option<PosVals>>()
            + self
                .steps
                .iter()
                .map(|st| st.policy.len() * 5 * 4)
                .sum::<usize>()
    }
}

/// Bytes of K and V for one position of one model.
pub fn kv_bytes_per_position(cfg: &DecoderConfig, dtype_bytes: usize) -> usize {
    cfg.num_layers() * 2 * cfg.num_kv_heads * cfg.head_dim * dtype_bytes
}

#[derive(Debug)]
enum Slot {
    Idle(Box<Session>),
    /// Taken by a request; its last known size stays reserved.
    Busy,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<String, (Slot, usize)>,
    total_bytes: usize,
    tick: u64,
    evicted: VecDeque<String>,
}

/// All sessions, under one lock held only for bookkeeping (never during model work).
#[derive(Debug)]
pub struct SessionStore {
    inner: Mutex<Inner>,
    max_bytes: usize,
    next_id: AtomicU64,
    salt: u64,
}

impl SessionStore {
    /// A store bounded to `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        SessionStore {
            inner: Mutex::new(Inner::default()),
            max_bytes,
            next_id: AtomicU64::new(1),
            salt,
        }
    }

    fn lock(&self) -> ApiResult<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| ApiError::Internal("session store lock poisoned".into()))
    }

    /// A fresh, unused session id.
    pub fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut h = padv_core::fingerprint::Fnv64::new();
        h.write_str(&format!("{}:{n}", self.salt));
        let mixed = h.finish();
        format!("sess-{n}-{mixed:016x}")
    }

    /// Number of sessions (idle and busy).
    pub fn len(&self) -> usize {
        self.lock().map(|i| i.slots.len()).unwrap_or(0)
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held by all sessions.
    pub fn total_bytes(&self) -> usize {
        self.lock().map(|i| i.total_bytes).unwrap_or(0)
    }

    /// Reserves `id` for a session being created (so it counts and cannot be taken).
    pub fn reserve(&self, id: &str) -> ApiResult<()> {
        let mut inner = self.lock()?;
        inner.slots.insert(id.to_owned(), (Slot::Busy, 0));
        Ok(())
    }

    /// Takes a session out for updating.
    pub fn take(&self, id: &str) -> ApiResult<Box<Session>> {
        let mut inner = self.lock()?;
        match inner.slots.get_mut(id) {
            Some((slot @ Slot::Idle(_), _)) => match std::mem::replace(slot, Slot::Busy) {
                Slot::Idle(s) => Ok(s),
                Slot::Busy => Err(ApiError::Internal("session slot changed under lock".into())),
            },
            Some((Slot::Busy, _)) => Err(ApiError::Conflict(format!(
                "session {id} is busy with another request"
            ))),
            None => Err(missing(&inner, id)),
        }
    }

    /// The memory bound, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Returns a taken session (or drops the reservation when `session` is `None`, e.g. the
    /// update failed and the session is unusable), then evicts least recently used idle
    /// sessions until the bound holds. Returns the evicted ids.
    pub fn put(&self, id: &str, session: Option<Box<Session>>, bytes: usize) -> Vec<String> {
        let Ok(mut inner) = self.lock() else {
            return Vec::new();
        };
        let old = inner.slots.remove(id).map_or(0, |(_, b)| b);
        inner.total_bytes = inner.total_bytes.saturating_sub(old);
        let Some(mut session) = session else {
            return Vec::new();
        };
        inner.tick += 1;
        session.last_used = inner.tick;
        inner.total_bytes += bytes;
        inner
            .slots
            .insert(id.to_owned(), (Slot::Idle(session), bytes));
        let mut evicted = Vec::new();
        while inner.total_bytes > self.max_bytes {
            // The least recently used idle session; the one just stored is the most recent,
            // so it goes last, when it alone exceeds the bound.
            let victim = inner
                .slots
                .iter()
                .filter_map(|(k, (s, _))| match s {
                    Slot::Idle(s) => Some((s.last_used, k.clone())),
                    Slot::Busy => None,
                })
                .min();
            let Some((_, victim)) = victim else { break };
            if let Some((_, b)) = inner.slots.remove(&victim) {
                inner.total_bytes = inner.total_bytes.saturating_sub(b);
            }
            inner.evicted.push_back(victim.clone());
            if inner.evicted.len() > REMEMBER_EVICTED {
                inner.evicted.pop_front();
            }
            tracing::info!(session = %victim, "evicted session under the memory bound");
            evicted.push(victim);
        }
        evicted
    }

    /// Deletes an idle session.
    pub fn remove(&self, id: &str) -> ApiResult<()> {
        let mut inner = self.lock()?;
        match inner.slots.get(id) {
            Some((Slot::Idle(_), _)) => {
                if let Some((_, b)) = inner.slots.remove(id) {
                    inner.total_bytes = inner.total_bytes.saturating_sub(b);
                }
                Ok(())
            }
            Some((Slot::Busy, _)) => Err(ApiError::Conflict(format!(
                "session {id} is busy with another request"
            ))),
            None => Err(missing(&inner, id)),
        }
    }
}

fn missing(inner: &Inner, id: &str) -> ApiError {
    if inner.evicted.iter().any(|e| e == id) {
        ApiError::NotFound(format!(
            "session {id} was evicted under the memory bound (--session-memory-mb); create it again"
        ))
    } else {
        ApiError::NotFound(format!("no session {id}"))
    }
}

//! Sessions: `POST /v1/sessions`, `POST /v1/sessions/{id}/messages`, `DELETE /v1/sessions/{id}`.
//!
//! After each append the whole conversation is re-tokenised, and only positions past the
//! prefix shared with the previous tokenisation are computed, continuing from both models' KV
//! caches. Values of positions inside that prefix are reused: by causality they depend on that
//! prefix alone. When the cache reaches past the shared prefix (left truncation moved every
//! position), the caches are rebuilt from scratch.
//!
//! A chat template that rewrites earlier turns (Qwen3 drops old reasoning) gives one sequence
//! per action, as in `padv score`: earlier actions keep their scores (an action's turn does
//! not depend on later messages) and each new action is scored in its own turn, continuing
//! from the previous turn's cache as far as the two share a prefix.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use padv_core::score::ScoreSpec;
use padv_core::score::{Method, PaMode, StepAgg, TokenAgg};
use padv_core::{LogprobRecord, StepLogprobs};
use padv_engine::tokenize::{RenderMode, Segment, Tokenized};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiJson, ApiResult};
use crate::routes::score::params;
use crate::scoring::{
    build_record, chat_trajectory, common_prefix, encode_any, report, score_targets, PairCache,
    StepReport,
};
use crate::sessions::{gather, kv_bytes_per_position, store, Session};
use crate::state::{AppState, Models};

/// Body of `POST /v1/sessions` and `POST /v1/sessions/{id}/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesRequest {
    /// Messages to start with / to append (OpenAI-style chat messages; every `assistant`
    /// message is an action step).
    pub messages: Vec<Value>,
    /// See `ScoreParams`.
    #[serde(default)]
    pub methods: Option<Vec<Method>>,
    /// See `ScoreParams`.
    #[serde(default)]
    pub token_agg: Option<TokenAgg>,
    /// See `ScoreParams`.
    #[serde(default)]
    pub step_agg: Option<StepAgg>,
    /// See `ScoreParams`.
    #[serde(default)]
    pub pa_mode: Option<PaMode>,
    /// See `ScoreParams`.
    #[serde(default)]
    pub beta: Option<f64>,
}

/// Response of the session routes that score.
#[derive(Debug, Serialize)]
pub struct SessionResponse {
    /// Session id.
    pub session_id: String,
    /// Messages in the session.
    pub n_messages: usize,
    /// Tokens in the session's sequence.
    pub n_tokens: usize,
    /// Tokens computed by this request (per model).
    pub computed_tokens: usize,
    /// Scores of the action steps among the messages this request added.
    pub new_steps: Vec<StepReport>,
    /// Method → trajectory score of the whole conversation so far.
    pub trajectory: BTreeMap<String, Option<f64>>,
    /// Sessions evicted to keep under the memory bound because of this request (may include
    /// this session when it alone exceeds the bound).
    pub evicted_sessions: Vec<String>,
}

/// Handler of `POST /v1/sessions`.
pub async fn create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<MessagesRequest>,
) -> ApiResult<(StatusCode, Json<SessionResponse>)> {
    let id = state.sessions.new_id();
    state.sessions.reserve(&id)?;
    let models = state.models.clone();
    let session = Box::new(Session::new(id.clone(), PairCache::new(&models)));
    let r = update(&state, session, req).await;
    r.map(|j| (StatusCode::CREATED, j))
}

/// Handler of `POST /v1/sessions/{id}/messages`.
pub async fn append(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MessagesRequest>,
) -> ApiResult<Json<SessionResponse>> {
    let session = state.sessions.take(&id)?;
    update(&state, session, req).await
}

/// Handler of `DELETE /v1/sessions/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.sessions.remove(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update(
    state: &AppState,
    session: Box<Session>,
    req: MessagesRequest,
) -> ApiResult<Json<SessionResponse>> {
    let id = session.id.clone();
    // Whatever happens, the session goes back: unchanged on failure, so a bad append
    // (malformed message, too many tokens) does not lose the conversation.
    let prepared = params(
        req.methods,
        req.token_agg,
        req.step_agg,
        req.pa_mode,
        req.beta,
    )
    .specs()
    .and_then(|specs| {
        let mut all = session.messages.clone();
        all.extend(req.messages.iter().cloned());
        Ok((specs, chat_trajectory(&id, &all)?, all))
    });
    let (specs, trajectory, all) = match prepared {
        Ok(x) => x,
        Err(e) => {
            restore(state, session);
            return Err(e);
        }
    };
    let old_messages = session.messages.len();
    let max_tokens = state.config.max_tokens;
    let metrics = state.metrics.clone();
    let sessions = state.sessions.clone();
    let backup_id = id.clone();
    // The job owns the session; it hands it back through the result either way.
    let max_bytes = state.sessions.max_bytes();
    let result = state
        .run_model(move |m| {
            // The update works on a copy (KV tensors are shared, not copied), so a request
            // refused after scoring leaves the conversation as it was.
            let original = session;
            let mut session = original.clone();
            let r = advance(
                m,
                &mut session,
                &trajectory,
                &all,
                max_tokens,
                &specs,
                old_messages,
            );
            if let Ok((_, _, computed)) = &r {
                metrics.add_tokens(2 * computed);
            }
            // A session larger than the whole memory bound would evict every other one and
            // then itself: refused, evicting nobody.
            let bytes = session_bytes(m, &session);
            if r.is_ok() && bytes > max_bytes {
                return Ok((
                    original,
                    Err(ApiError::TooLarge(format!(
                        "the session would hold {} bytes of KV caches and values, more than the \
                         server's whole session memory ({} bytes, --session-memory-mb); nothing \
                         was stored and no other session was evicted",
                        bytes, max_bytes
                    ))),
                ));
            }
            if r.is_err() {
                return Ok((original, r));
            }
            Ok((session, r))
        })
        .await;
    let (session, r) = match result {
        Ok(x) => x,
        Err(e) => {
            // Timed out or refused: the job (if it ran) dropped the session with it.
            sessions.put(&backup_id, None, 0);
            return Err(e);
        }
    };
    let (new_steps, trajectory, computed) = match r {
        Ok(x) => x,
        Err(e) => {
            restore(state, session);
            return Err(e);
        }
    };
    let n_messages = session.messages.len();
    let n_tokens = session.ids.len();
    let bytes = session_bytes(&state.models, &session);
    let evicted = state.sessions.put(&id, Some(session), bytes);
    state.metrics.add_evictions(evicted.len());
    Ok(Json(SessionResponse {
        session_id: id,
        n_messages,
        n_tokens,
        computed_tokens: computed,
        new_steps,
        trajectory,
        evicted_sessions: evicted,
    }))
}

fn session_bytes(models: &Models, s: &Session) -> usize {
    let dtype_bytes = models.policy.model().dtype().size_in_bytes();
    let per = kv_bytes_per_position(models.policy.model().config(), dtype_bytes)
        + kv_bytes_per_position(models.reference.model().config(), dtype_bytes);
    s.bytes(per)
}

/// Puts an unchanged session back; a session that never held messages (failed creation) is
/// dropped instead.
fn restore(state: &AppState, session: Box<Session>) {
    let id = session.id.clone();
    if session.messages.is_empty() {
        state.sessions.put(&id, None, 0);
    } else {
        let bytes = session_bytes(&state.models, &session);
        let evicted = state.sessions.put(&id, Some(session), bytes);
        state.metrics.add_evictions(evicted.len());
    }
}

type Advanced = (Vec<StepReport>, BTreeMap<String, Option<f64>>, usize);

/// Scores the new positions and commits them to the session only on success.
#[allow(clippy::too_many_arguments)]
fn advance(
    m: &Models,
    s: &mut Session,
    trajectory: &padv_core::Trajectory,
    all: &[Value],
    max_tokens: usize,
    specs: &[ScoreSpec],
    old_messages: usize,
) -> ApiResult<Advanced> {
    let tokenized = encode_any(m, trajectory, max_tokens)?;
    let (record, computed) = match tokenized.single() {
        Some(tokens) => advance_single(m, s, trajectory, tokens.clone())?,
        None => advance_per_turn(m, s, trajectory, &tokenized, old_messages)?,
    };
    let (steps, traj) = report(&record, specs)?;
    let new_steps = steps
        .into_iter()
        .filter(|st| st.message_index >= old_messages)
        .collect();
    s.messages = all.to_vec();
    s.steps = record.steps;
    s.steps_reusable = tokenized.segments.iter().all(|g| g.truncated_tokens == 0);
    Ok((new_steps, traj, computed))
}

/// One sequence: positions inside the prefix shared with the previous tokenisation keep their
/// values, the rest are computed from the KV caches.
fn advance_single(
    m: &Models,
    s: &mut Session,
    trajectory: &padv_core::Trajectory,
    tokens: Segment,
) -> ApiResult<(LogprobRecord, usize)> {
    let keep = common_prefix(&s.ids, &tokens.ids);
    let mut vals = s.vals.clone();
    vals.truncate(keep);
    vals.resize(tokens.ids.len(), None);
    let needed: Vec<usize> = tokens
        .targets()
        .into_iter()
        .filter(|&t| vals[t].is_none())
        .collect();
    let mut cache = s.cache.clone();
    let mut computed = 0;
    if let Some(&first) = needed.first() {
        if cache.seq_len() > keep || cache.seq_len() >= first {
            cache = PairCache::new(m);
        }
        let start = cache.seq_len();
        let (pol, refr) = score_targets(m, &tokens.ids, &needed, &mut cache)?;
        computed = needed.last().map_or(0, |&l| l - start);
        store(&mut vals, &needed, &pol, &refr)?;
    } else if cache.seq_len() > keep {
        cache = PairCache::new(m);
    }
    let (pol, refr) = gather(&vals, &tokens.targets())?;
    let tokens = Tokenized::from_segments(vec![tokens], RenderMode::Single);
    let record = build_record(m, trajectory, &tokens, &pol, &refr)?;
    let Some(tokens) = tokens.segments.into_iter().next() else {
        return Err(ApiError::Internal(
            "the tokenisation lost its sequence".into(),
        ));
    };
    s.ids = tokens.ids;
    s.vals = vals;
    s.cache = cache;
    Ok((record, computed))
}

/// A template that rewrites earlier turns: each action has its own sequence (its turn's
/// context, then the action). The actions already scored keep their steps (a turn's sequence
/// does not depend on later messages), unless left truncation cut something; each new action
/// is scored in its turn, continuing from the previous turn's KV cache as far as the two
/// sequences share a prefix (never past the first target − 1).
fn advance_per_turn(
    m: &Models,
    s: &mut Session,
    trajectory: &padv_core::Trajectory,
    tokenized: &Tokenized,
    old_messages: usize,
) -> ApiResult<(LogprobRecord, usize)> {
    let reuse = s.steps_reusable && tokenized.segments.iter().all(|g| g.truncated_tokens == 0);
    let mut steps: Vec<StepLogprobs> = if reuse {
        s.steps
            .iter()
            .filter(|st| st.message_index < old_messages)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let mut cache = s.cache.clone();
    let mut cached: Vec<u32> = s.ids.clone();
    let mut computed = 0;
    for seg in &tokenized.segments {
        let mine: Vec<usize> = seg
            .spans
            .iter()
            .filter(|sp| {
                sp.is_action && !steps.iter().any(|st| st.message_index == sp.message_index)
            })
            .map(|sp| sp.message_index)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let targets = seg.targets();
        let mut vals = vec![None; seg.ids.len()];
        if let Some(&first) = targets.first() {
            let keep = common_prefix(&cached, &seg.ids)
                .min(first - 1)
                .min(cache.seq_len());
            cache.truncate(keep)?;
            let (pol, refr) = score_targets(m, &seg.ids, &targets, &mut cache)?;
            computed += targets.last().map_or(0, |&l| l - keep);
            store(&mut vals, &targets, &pol, &refr)?;
            cached = seg.ids[..cache.seq_len()].to_vec();
        }
        let mut only = seg.clone();
        only.spans.retain(|sp| mine.contains(&sp.message_index));
        let (pol, refr) = gather(&vals, &only.targets())?;
        let only = Tokenized::from_segments(vec![only], RenderMode::Single);
        steps.extend(build_record(m, trajectory, &only, &pol, &refr)?.steps);
    }
    steps.sort_by_key(|st| st.message_index);
    s.ids = cached;
    s.vals = Vec::new();
    s.cache = cache;
    let (pol, refr) = gather(&[], &[])?;
    let none = Tokenized::from_segments(Vec::new(), RenderMode::PerTurn);
    let mut record = build_record(m, trajectory, &none, &pol, &refr)?;
    record.steps = steps;
    Ok((record, computed))
}

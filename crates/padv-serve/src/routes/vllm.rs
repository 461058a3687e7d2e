//! The vLLM-compatible subset: `POST /v1/completions` (token-id prompts, `prompt_logprobs`,
//! `echo`, at most one generated token), `POST /tokenize`, `GET /v1/models`.
//!
//! Shapes follow vLLM's OpenAI server, so padv's own remote backend (or any vLLM client) can
//! point at one `padv serve` for both models: `"model": "policy"` or `"reference"`.
//! Log-probs are the raw log-softmax of the logits, as vLLM's default `raw_logprobs`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use candle_core::{DType, Tensor};
use padv_core::LogprobBackend;
use padv_engine::decoder::KvCache;
use padv_engine::logprobs::{log_sum_exp, LocalEngine};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::{AppState, Models};

/// Most alternatives per position, vLLM's default `--max-logprobs`.
pub const MAX_LOGPROBS: usize = 20;

/// Body of `POST /v1/completions` (the fields padv serves; others are refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    /// `policy` (default), `reference`, or their served names.
    #[serde(default)]
    pub model: Option<String>,
    /// Token ids (`[1, 2, 3]` or `[[1, 2, 3]]`) or a string (tokenised without special
    /// tokens unless `add_special_tokens`).
    pub prompt: Value,
    /// Tokens to generate: 0 or 1 (greedy). Default 16 as in vLLM, which padv refuses.
    #[serde(default = "sixteen")]
    pub max_tokens: usize,
    /// Return the prompt in `text` and its log-probs in `logprobs`.
    #[serde(default)]
    pub echo: bool,
    /// OpenAI-style top-k in `choices[0].logprobs`.
    #[serde(default)]
    pub logprobs: Option<usize>,
    /// vLLM's prompt log-probs: top-k per prompt position plus the actual token.
    #[serde(default)]
    pub prompt_logprobs: Option<i64>,
    /// Tokens as `token_id:<id>` strings in `logprobs`.
    #[serde(default)]
    pub return_tokens_as_token_ids: bool,
    /// Accepted for compatibility; `prompt_token_ids` is always returned.
    #[serde(default)]
    pub return_token_ids: Option<bool>,
    /// For string prompts: add the tokenizer's special tokens (default true, as vLLM).
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
    /// Accepted; prompt log-probs are raw whatever the temperature, and generation is greedy.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Accepted and ignored (generation is greedy).
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Must be 1 when given.
    #[serde(default)]
    pub n: Option<usize>,
    /// Must be false when given (prompt log-probs cannot stream, as in vLLM).
    #[serde(default)]
    pub stream: Option<bool>,
    /// Accepted and ignored.
    #[serde(default)]
    pub seed: Option<i64>,
}

fn sixteen() -> usize {
    16
}

/// One position's distribution: the log-prob of every vocabulary entry is not kept, only
/// what the response needs.
#[derive(Debug, Clone)]
struct RowTop {
    /// (id, logprob), best first.
    top: Vec<(u32, f64)>,
    /// The actual next token's (id, logprob, 1-based rank); None for the generation row.
    actual: Option<(u32, f64, usize)>,
}

/// Log-softmax rows of `hidden` `[rows, H]`: keeps the top `k` and the actual token of each.
fn rows_top(
    engine: &LocalEngine,
    hidden: &Tensor,
    actual: &[Option<u32>],
    k: usize,
) -> Result<ApiResult<Vec<RowTop>>, candle_core::Error> {
    let model = engine.model();
    let n = hidden.dim(0)?;
    let mut out = Vec::with_capacity(n);
    // Bounds the logits buffer to 64 × V floats.
    for start in (0..n).step_by(64) {
        let len = (n - start).min(64);
        let logits = model
            .logits(&hidden.narrow(0, start, len)?)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?;
        for (i, row) in logits.iter().enumerate() {
            // A NaN or infinite logit makes every log-prob of the row meaningless (and the
            // greedy token arbitrary): the request fails, naming where.
            if let Some((id, z)) = row.iter().enumerate().find(|(_, z)| !z.is_finite()) {
                return Ok(Err(ApiError::NonFinite(format!(
                    "{}: the logit of token {id} at position {} is {z}, not finite",
                    engine.fingerprint(),
                    start + i + 1
                ))));
            }
            // The engine's one log-softmax: the same log-probs as `padv score`.
            let lse = log_sum_exp(row);
            let lp = |id: usize| row[id] as f64 - lse;
            let mut idx: Vec<u32> = (0..row.len() as u32).collect();
            let kk = k.min(idx.len());
            if kk > 0 && kk < idx.len() {
                idx.select_nth_unstable_by(kk - 1, |&a, &b| {
                    row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b))
                });
            }
            idx.truncate(kk);
            idx.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
            let top = idx.iter().map(|&id| (id, lp(id as usize))).collect();
            let actual = actual[start + i].map(|id| {
                let z = row[id as usize];
                let rank = 1 + row.iter().filter(|&&x| x > z).count();
                (id, lp(id as usize), rank)
            });
            out.push(RowTop { top, actual });
        }
    }
    Ok(Ok(out))
}

fn prompt_ids(models: &Models, req: &CompletionRequest) -> ApiResult<Vec<u32>> {
    let bad = || {
        ApiError::Validation(
            "prompt: expected a list of token ids, a list holding one such list, or a string"
                .into(),
        )
    };
    let ids_of = |v: &Vec<Value>| -> ApiResult<Vec<u32>> {
        v.iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(bad)
            })
            .collect()
    };
    match &req.prompt {
        Value::String(s) => models
            .tokenizer
            .inner()
            .encode(s.as_str(), req.add_special_tokens.unwrap_or(true))
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ApiError::Validation(format!("prompt: tokenising: {e}"))),
        Value::Array(a) if a.len() == 1 && a[0].is_array() => match &a[0] {
            Value::Array(inner) => ids_of(inner),
            _ => Err(bad()),
        },
        Value::Array(a) if a.iter().any(Value::is_array) => Err(ApiError::Validation(
            "prompt: padv serve takes one prompt per request".into(),
        )),
        Value::Array(a) => ids_of(a),
        _ => Err(bad()),
    }
}

fn decode(models: &Models, id: u32) -> String {
    models
        .tokenizer
        .inner()
        .decode(&[id], false)
        .unwrap_or_default()
}

/// Handler of `POST /v1/completions`.
pub async fn completions(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> ApiResult<Json<Value>> {
    if req.max_tokens > 1 {
        return Err(ApiError::Validation(format!(
            "max_tokens {}: padv serve scores prompts and generates at most 1 (greedy) token; \
             send max_tokens 0 (with echo or prompt_logprobs) or 1",
            req.max_tokens
        )));
    }
    if req.n.is_some_and(|n| n != 1) || req.stream == Some(true) {
        return Err(ApiError::Validation("n must be 1 and stream false".into()));
    }
    let k_prompt = match req.prompt_logprobs {
        None => None,
        Some(k) if (0..=MAX_LOGPROBS as i64).contains(&k) => Some(k as usize),
        Some(k) => {
            return Err(ApiError::Validation(format!(
                "prompt_logprobs {k}: must be between 0 and {MAX_LOGPROBS}"
            )))
        }
    };
    if req.logprobs.is_some_and(|k| k > MAX_LOGPROBS) {
        return Err(ApiError::Validation(format!(
            "logprobs: must be between 0 and {MAX_LOGPROBS}"
        )));
    }
    if req.max_tokens == 0 && !req.echo && k_prompt.is_none() {
        return Err(ApiError::Validation(
            "max_tokens 0 needs echo or prompt_logprobs (nothing to return otherwise)".into(),
        ));
    }
    let (name, _) = state.models.by_name(req.model.as_deref())?;
    let name = name.to_owned();
    let ids = prompt_ids(&state.models, &req)?;
    if ids.is_empty() {
        return Err(ApiError::Validation("prompt: empty".into()));
    }
    if ids.len() > state.config.max_tokens {
        return Err(ApiError::Validation(format!(
            "prompt of {} tokens exceeds max_model_len {}",
            ids.len(),
            state.config.max_tokens
        )));
    }
    let v = state.models.policy.model().config().vocab_size;
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= v) {
        return Err(ApiError::Validation(format!(
            "prompt: token id {bad} outside the vocabulary of {v}"
        )));
    }
    let need_prompt = k_prompt.is_some() || (req.echo && req.logprobs.is_some());
    let k = k_prompt.unwrap_or(0).max(req.logprobs.unwrap_or(0));
    let generate = req.max_tokens == 1;
    let metrics = state.metrics.clone();
    let model_name = req.model.clone();
    let job_ids = ids.clone();
    let rows = state
        .run_model(move |m| {
            let (_, engine) = m.by_name(model_name.as_deref())?;
            let n = job_ids.len();
            // Row r predicts position r + 1; the last row predicts the generated token.
            let first = if need_prompt { 0 } else { n - 1 };
            let last = if generate { n } else { n - 1 };
            if first >= last {
                return Ok(Vec::new());
            }
            let rows: Vec<usize> = (first..last).collect();
            let actual: Vec<Option<u32>> =
                rows.iter().map(|&r| job_ids.get(r + 1).copied()).collect();
            let input = &job_ids[..last];
            let internal = |e: candle_core::Error| ApiError::Internal(format!("forward: {e}"));
            let t = Tensor::from_slice(input, (1, input.len()), engine.model().device())
                .map_err(internal)?;
            let hidden = engine
                .model()
                .forward_rows(&t, 0, &mut KvCache::discarding(), &rows, n)
                .and_then(|h| h.squeeze(0))
                .map_err(internal)?;
            metrics.add_tokens(input.len());
            rows_top(engine, &hidden, &actual, k.max(usize::from(generate))).map_err(internal)?
        })
        .await?;
    let prompt_rows = if need_prompt {
        &rows[..ids.len() - 1]
    } else {
        &rows[..0]
    };
    let gen = if generate { rows.last() } else { None };
    Ok(Json(completion_json(
        &state.models,
        &req,
        &name,
        &ids,
        prompt_rows,
        gen,
        k_prompt,
    )))
}

fn completion_json(
    models: &Models,
    req: &CompletionRequest,
    name: &str,
    ids: &[u32],
    prompt_rows: &[RowTop],
    gen: Option<&RowTop>,
    k_prompt: Option<usize>,
) -> Value {
    let n = ids.len();
    let gen_tok = gen.and_then(|r| r.top.first().copied());
    let tok_str = |id: u32| {
        if req.return_tokens_as_token_ids {
            format!("token_id:{id}")
        } else {
            decode(models, id)
        }
    };
    let prompt_logprobs = k_prompt.map(|k| {
        let mut v = vec![Value::Null];
        for r in prompt_rows {
            let mut d = serde_json::Map::new();
            if let Some((id, lp, rank)) = r.actual {
                d.insert(
                    id.to_string(),
                    json!({"logprob": lp, "rank": rank, "decoded_token": decode(models, id)}),
                );
            }
            for (i, &(id, lp)) in r.top.iter().take(k).enumerate() {
                d.entry(id.to_string()).or_insert_with(
                    || json!({"logprob": lp, "rank": i + 1, "decoded_token": decode(models, id)}),
                );
            }
            v.push(Value::Object(d));
        }
        Value::Array(v)
    });
    let gen_text = gen_tok
        .map(|(id, _)| decode(models, id))
        .unwrap_or_default();
    let prompt_text = if req.echo {
        models
            .tokenizer
            .inner()
            .decode(ids, false)
            .unwrap_or_default()
    } else {
        String::new()
    };
    let logprobs = req.logprobs.map(|k| {
        let (mut tokens, mut lps, mut tops, mut offsets) = (vec![], vec![], vec![], vec![]);
        let mut offset = 0usize;
        let mut push = |id: u32, lp: Option<f64>, top: Option<&[(u32, f64)]>| {
            let s = tok_str(id);
            offsets.push(offset);
            offset += decode(models, id).len();
            tokens.push(s);
            lps.push(lp.map_or(Value::Null, |x| json!(x)));
            tops.push(top.map_or(Value::Null, |t| {
                let mut d = serde_json::Map::new();
                d.insert(tok_str(id), json!(lp));
                for &(tid, tlp) in t.iter().take(k) {
                    d.entry(tok_str(tid)).or_insert(json!(tlp));
                }
                Value::Object(d)
            }));
        };
        if req.echo {
            push(ids[0], None, None);
            for (r, &id) in prompt_rows.iter().zip(&ids[1..]) {
                let lp = r.actual.map(|(_, lp, _)| lp);
                push(id, lp, Some(&r.top));
            }
        }
        if let (Some(r), Some((id, lp))) = (gen, gen_tok) {
            push(id, Some(lp), Some(&r.top));
        }
        json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
    });
    let completion_tokens = usize::from(gen_tok.is_some());
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut choice = json!({
        "index": 0,
        "text": format!("{prompt_text}{gen_text}"),
        "logprobs": logprobs,
        "finish_reason": "length",
        "stop_reason": null,
        "prompt_token_ids": ids,
    });
    if let (Some(pl), Some(obj)) = (prompt_logprobs, choice.as_object_mut()) {
        obj.insert("prompt_logprobs".into(), pl);
    }
    if let (Some((id, _)), Some(obj)) = (gen_tok, choice.as_object_mut()) {
        obj.insert("token_ids".into(), json!([id]));
    }
    json!({
        "id": format!("cmpl-padv-{created}-{n}"),
        "object": "text_completion",
        "created": created,
        "model": name,
        "choices": [choice],
        "usage": {"prompt_tokens": n, "completion_tokens": completion_tokens,
                  "total_tokens": n + completion_tokens},
    })
}

/// Body of `POST /tokenize` (vLLM's completion form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    /// Ignored beyond validation: both models share one tokenizer.
    #[serde(default)]
    pub model: Option<String>,
    /// Text to tokenise.
    pub prompt: String,
    /// Add the tokenizer's special tokens (default true, as vLLM).
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
    /// Also return each token's string.
    #[serde(default)]
    pub return_token_strs: bool,
}

/// Handler of `POST /tokenize`.
pub async fn tokenize(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> ApiResult<Json<Value>> {
    state.models.by_name(req.model.as_deref())?;
    let enc = state
        .models
        .tokenizer
        .inner()
        .encode(req.prompt.as_str(), req.add_special_tokens.unwrap_or(true))
        .map_err(|e| ApiError::Validation(format!("prompt: tokenising: {e}")))?;
    let ids = enc.get_ids();
    let mut out =
        json!({"count": ids.len(), "max_model_len": state.config.max_tokens, "tokens": ids});
    if req.return_token_strs {
        if let Some(o) = out.as_object_mut() {
            o.insert("token_strs".into(), json!(enc.get_tokens()));
        }
    }
    Ok(Json(out))
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Serialize)]
struct ModelCard {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
    root: String,
    max_model_len: usize,
}

/// Handler of `GET /v1/models`.
pub async fn models(State(state): State<AppState>) -> Json<Value> {
    let m = &state.models;
    let card = |id: &str, root: &str| ModelCard {
        id: id.to_owned(),
        object: "model",
        created: 0,
        owned_by: "padv",
        root: root.to_owned(),
        max_model_len: state.config.max_tokens,
    };
    // `root` is the weights' fingerprint (content hash): a remote client keys its cache on
    // it, so a restarted server with other weights under the same name never hits old entries.
    let data: BTreeMap<_, _> = [
        (
            0,
            card(
                &m.policy_name,
                &padv_core::LogprobBackend::fingerprint(&m.policy),
            ),
        ),
        (
            1,
            card(
                &m.reference_name,
                &padv_core::LogprobBackend::fingerprint(&m.reference),
            ),
        ),
    ]
    .into_iter()
    .collect();
    Json(json!({"object": "list", "data": data.into_values().collect::<Vec<_>>()}))
}

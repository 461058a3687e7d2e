//! One server: its HTTP agent, what it serves (engine, model identity, context length) and
//! single-attempt requests. Retries and budgets live in the backend, which sees the fleet.

use std::time::Duration;

use serde_json::Value;

use crate::error::RemoteError;
use crate::http::HttpTarget;
use crate::protocol::EngineKind;

/// What an endpoint serves. Two endpoints with equal identities give the same numbers, so
/// this (not the URL) goes into the cache fingerprint: a fleet restarted on other hosts still
/// hits the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelIdentity {
    /// The engine.
    pub kind: EngineKind,
    /// Served model name (`/v1/models` `data[0].id`; sent as `model` to vLLM).
    pub name: String,
    /// The weights it was loaded from (`root` in `/v1/models`, SGLang's `model_path`).
    pub root: String,
    /// Context length: prompt plus generated tokens.
    pub max_model_len: usize,
}

/// A server of one model.
#[derive(Debug, Clone)]
pub struct Endpoint {
    http: HttpTarget,
    identity: ModelIdentity,
}

impl Endpoint {
    /// Connects to `url` (e.g. `http://10.0.0.5:8000`) and learns what it serves.
    ///
    /// With `kind` None the engine is detected: SGLang answers `GET /get_model_info`, vLLM
    /// does not. `model` picks one of the served models by its `/v1/models` id (a server
    /// can list several: vLLM with LoRA adapters beside the base, or `padv serve` with a
    /// policy and a reference); None takes the first. `max_model_len` overrides what the
    /// server reports (or supplies it when the server reports none). `api_key` is sent as a
    /// bearer token with every request (`vllm serve --api-key`, `padv serve --api-key`).
    pub fn connect(
        url: &str,
        kind: Option<EngineKind>,
        model: Option<&str>,
        max_model_len: Option<usize>,
        timeout: Duration,
        pool: usize,
        api_key: Option<&crate::http::ApiKey>,
    ) -> Result<Self, RemoteError> {
        let bearer = api_key.map(|k| k.expose().to_string());
        let mut ep = Endpoint {
            http: HttpTarget::new(url, timeout, pool, bearer)?,
            identity: ModelIdentity {
                kind: EngineKind::Vllm,
                name: String::new(),
                root: String::new(),
                max_model_len: 0,
            },
        };
        let info = ep.http.get_json("/get_model_info")?;
        let kind = match (kind, &info) {
            (Some(k), _) => k,
            (None, Some(_)) => EngineKind::Sglang,
            (None, None) => EngineKind::Vllm,
        };
        let models = ep.http.get_json("/v1/models")?;
        let cards: &[Value] = models
            .as_ref()
            .and_then(|m| m.get("data"))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let card = match model {
            None => cards.first(),
            Some(want) => {
                let found = cards
                    .iter()
                    .find(|c| c.get("id").and_then(Value::as_str) == Some(want));
                if found.is_none() {
                    let ids: Vec<&str> = cards
                        .iter()
                        .filter_map(|c| c.get("id").and_then(Value::as_str))
                        .collect();
                    return Err(ep.http.protocol(
                        "GET /v1/models",
                        &format!("no served model is called {want:?} (served: {ids:?})"),
                    ));
                }
                found
            }
        };
        let name = card
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let sglang_path = info
            .as_ref()
            .and_then(|i| i.get("model_path"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let root = card
            .and_then(|c| c.get("root"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| sglang_path.clone());
        let len = max_model_len.or_else(|| {
            card.and_then(|c| c.get("max_model_len"))
                .and_then(Value::as_u64)
                .map(|n| n as usize)
        });
        let name = match (kind, name) {
            (_, Some(n)) => n,
            (EngineKind::Sglang, None) => sglang_path.clone().unwrap_or_default(),
            (EngineKind::Vllm, None) => {
                return Err(ep.http.protocol("GET /v1/models", "data[0].id is missing"));
            }
        };
        let root = root.unwrap_or_else(|| name.clone());
        let Some(max_model_len) = len else {
            return Err(ep.http.protocol(
                "GET /v1/models",
                "data[0].max_model_len is missing; pass the context length explicitly",
            ));
        };
        if max_model_len < 2 {
            return Err(ep
                .http
                .protocol("GET /v1/models", "max_model_len is below 2"));
        }
        ep.identity = ModelIdentity {
            kind,
            name,
            root,
            max_model_len,
        };
        tracing::info!(
            "{}: {} serving {:?} (root {:?}), max_model_len {}",
            ep.http.url(),
            kind,
            ep.identity.name,
            ep.identity.root,
            max_model_len
        );
        Ok(ep)
    }

    /// Base URL.
    pub fn url(&self) -> &str {
        self.http.url()
    }

    /// What it serves.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// One `POST` of a JSON body to the scoring route; the raw answer on 2xx.
    pub fn post_score(&self, body: &[u8], what: &str) -> Result<Vec<u8>, RemoteError> {
        self.http.post(self.identity.kind.score_path(), body, what)
    }
}

//! One server: its HTTP agent, what it serves (engine, model identity, context length) and
//! single-attempt requests. Retries and budgets live in the backend, which sees the fleet.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use crate::error::RemoteError;
use crate::protocol::EngineKind;

/// Largest response body accepted: a vLLM answer carries ~21 entries of ~60 bytes per
/// prompt token, so 1 GiB covers prompts of several hundred thousand tokens.
const MAX_BODY: u64 = 1 << 30;

/// How much of an error body goes into an error message.
const ERROR_BODY_CHARS: usize = 400;

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
    url: String,
    agent: ureq::Agent,
    identity: ModelIdentity,
}

fn agent(timeout: Duration, pool: usize) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_idle_connections(pool.max(1) * 4)
        .max_idle_connections_per_host(pool.max(1))
        .build()
        .into()
}

impl Endpoint {
    /// Connects to `url` (e.g. `http://10.0.0.5:8000`) and learns what it serves.
    ///
    /// With `kind` None the engine is detected: SGLang answers `GET /get_model_info`, vLLM
    /// does not. `model` picks one of the served models by its `/v1/models` id (a server
    /// can list several: vLLM with LoRA adapters beside the base, or `padv serve` with a
    /// policy and a reference); None takes the first. `max_model_len` overrides what the
    /// server reports (or supplies it when the server reports none).
    pub fn connect(
        url: &str,
        kind: Option<EngineKind>,
        model: Option<&str>,
        max_model_len: Option<usize>,
        timeout: Duration,
        pool: usize,
    ) -> Result<Self, RemoteError> {
        let url = url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RemoteError::Config(format!(
                "endpoint {url:?} must start with http:// (padv speaks plain HTTP; put TLS in a proxy)"
            )));
        }
        let mut ep = Endpoint {
            agent: agent(timeout, pool),
            identity: ModelIdentity {
                kind: EngineKind::Vllm,
                name: String::new(),
                root: String::new(),
                max_model_len: 0,
            },
            url,
        };
        let info = ep.get_json("/get_model_info")?;
        let kind = match (kind, &info) {
            (Some(k), _) => k,
            (None, Some(_)) => EngineKind::Sglang,
            (None, None) => EngineKind::Vllm,
        };
        let models = ep.get_json("/v1/models")?;
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
                    return Err(ep.protocol(
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
                return Err(ep.protocol("GET /v1/models", "data[0].id is missing"));
            }
        };
        let root = root.unwrap_or_else(|| name.clone());
        let Some(max_model_len) = len else {
            return Err(ep.protocol(
                "GET /v1/models",
                "data[0].max_model_len is missing; pass the context length explicitly",
            ));
        };
        if max_model_len < 2 {
            return Err(ep.protocol("GET /v1/models", "max_model_len is below 2"));
        }
        ep.identity = ModelIdentity {
            kind,
            name,
            root,
            max_model_len,
        };
        tracing::info!(
            "{}: {} serving {:?} (root {:?}), max_model_len {}",
            ep.url,
            kind,
            ep.identity.name,
            ep.identity.root,
            max_model_len
        );
        Ok(ep)
    }

    /// Base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What it serves.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    fn protocol(&self, what: &str, message: &str) -> RemoteError {
        RemoteError::Protocol {
            endpoint: self.url.clone(),
            what: what.to_string(),
            message: message.to_string(),
        }
    }

    fn transport(&self, what: &str, e: impl std::fmt::Display) -> RemoteError {
        RemoteError::Transport {
            endpoint: self.url.clone(),
            what: what.to_string(),
            message: e.to_string(),
        }
    }

    /// `GET path` as JSON; None on 404 (route absent: the other engine).
    fn get_json(&self, path: &str) -> Result<Option<Value>, RemoteError> {
        let what = format!("GET {path}");
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.url))
            .call()
            .map_err(|e| self.transport(&what, e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.transport(&what, e))?;
        match status {
            404 | 405 => Ok(None),
            200..=299 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| self.protocol(&what, &format!("body is not JSON: {e}"))),
            _ => Err(self.status(&what, status, &body)),
        }
    }

    fn status(&self, what: &str, status: u16, body: &[u8]) -> RemoteError {
        let text = String::from_utf8_lossy(body);
        RemoteError::Status {
            endpoint: self.url.clone(),
            what: what.to_string(),
            status,
            body: text.chars().take(ERROR_BODY_CHARS).collect(),
        }
    }

    /// One `POST` of a JSON body to the scoring route; the raw answer on 2xx.
    pub fn post_score(&self, body: &[u8], what: &str) -> Result<Vec<u8>, RemoteError> {
        let path = self.identity.kind.score_path();
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| self.transport(what, e))?;
        let status = resp.status().as_u16();
        let mut out = Vec::new();
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY)
            .reader()
            .read_to_end(&mut out)
            .map_err(|e| self.transport(what, e))?;
        if !(200..=299).contains(&status) {
            return Err(self.status(what, status, &out));
        }
        Ok(out)
    }
}

//! Loading the model pair and running the server with graceful shutdown.

use std::future::Future;
use std::path::Path;

use padv_engine::logprobs::{EngineError, EngineOptions, LocalEngine};
use padv_engine::tokenize::{
    check_same_vocabulary, TextTokenizer, TokenizeError, TokenizeOptions, VocabMismatch,
};
use tokio::net::TcpListener;

use crate::app::app;
use crate::state::{AppState, Models};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A checkpoint failed to load.
    #[error("loading the {which} model from {path}: {source}")]
    Engine {
        /// "policy" or "reference".
        which: &'static str,
        /// Checkpoint folder.
        path: String,
        /// Cause.
        source: Box<EngineError>,
    },
    /// A tokenizer failed to load or the chat template did not compile.
    #[error("tokenizer of {path}: {source}")]
    Tokenizer {
        /// Checkpoint folder.
        path: String,
        /// Cause.
        source: Box<TokenizeError>,
    },
    /// The two models do not share token ids, so PA would compare different tokens.
    #[error("policy and reference tokenizers differ: {0}")]
    Vocabulary(Box<VocabMismatch>),
    /// Binding or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Loads the policy and reference checkpoints (folders) and the policy's tokenizer, checks
/// that both tokenizers agree, and compiles `tokenize` (renderer, chat-template flags,
/// `max_length`: the options `padv score` takes) once.
pub fn load_models(
    policy: &Path,
    reference: &Path,
    opts: EngineOptions,
    tokenize: &TokenizeOptions,
) -> Result<Models, ServeError> {
    let engine = |which, dir: &Path| {
        LocalEngine::load(dir, opts).map_err(|source| ServeError::Engine {
            which,
            path: dir.display().to_string(),
            source: Box::new(source),
        })
    };
    let tok = |dir: &Path| {
        TextTokenizer::from_dir(dir).map_err(|source| ServeError::Tokenizer {
            path: dir.display().to_string(),
            source: Box::new(source),
        })
    };
    let tokenizer = tok(policy)?;
    check_same_vocabulary(&tokenizer, &tok(reference)?)
        .map_err(|e| ServeError::Vocabulary(Box::new(e)))?;
    let rendering = tokenizer
        .rendering(tokenize)
        .map_err(|source| ServeError::Tokenizer {
            path: policy.display().to_string(),
            source: Box::new(source),
        })?;
    Ok(Models {
        policy: engine("policy", policy)?,
        reference: engine("reference", reference)?,
        tokenizer,
        rendering,
        policy_name: "policy".into(),
        reference_name: "reference".into(),
    })
}

/// Serves `state` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal: finishing in-flight requests");
}

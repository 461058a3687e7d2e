//! `padv serve`: live progress advantage over HTTP for a policy/reference pair (see the
//! README section "Live scoring (`padv serve`)").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use padv_core::eval::calibration::Calibration;
use padv_core::render::RendererKind;
use padv_engine::checkpoint::resolve_model_path;
use padv_engine::tokenize::TokenizeOptions;
use padv_serve::{load_models, serve, shutdown_signal, AppState, ServeConfig};

use super::chat_opts::ChatArgs;
use super::engine_opts::EngineArgs;

/// Arguments of `padv serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Policy checkpoint: a local Hugging Face folder, or `org/name` in the local HF cache.
    #[arg(long)]
    policy: String,
    /// Reference checkpoint.
    #[arg(long)]
    reference: String,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind (0 picks a free one; the bound address is logged).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Bearer token clients must send (`Authorization: Bearer KEY`); prefer --api-key-env,
    /// since command lines are visible to other users of the machine.
    #[arg(long)]
    api_key: Option<String>,
    /// Environment variable holding the bearer token, read when --api-key is not given.
    #[arg(long, default_value = "PADV_API_KEY")]
    api_key_env: String,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    max_body_bytes: usize,
    /// Largest token sequence one request may score (longer requests get 422).
    #[arg(long, default_value_t = 16384)]
    max_tokens: usize,
    /// Left truncation of rendered trajectories, as `padv score --max-length`.
    #[arg(long, default_value_t = 16384)]
    max_length: usize,
    /// Per-request time limit in seconds (503 `timeout` past it).
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Model computations at once (the engine already uses every core; raise it on GPUs).
    #[arg(long, default_value_t = 1)]
    max_concurrency: usize,
    /// Requests that may wait for a worker; beyond them the answer is 429.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Memory bound of incremental sessions' KV caches, in MiB (LRU eviction beyond it).
    #[arg(long, default_value_t = 1024)]
    session_memory_mb: usize,
    /// Most candidates in one /v1/score/candidates request.
    #[arg(long, default_value_t = 64)]
    max_candidates: usize,
    /// How trajectories become tokens (as `padv score --renderer`).
    #[arg(long, value_enum, default_value_t = RendererKind::Paper)]
    renderer: RendererKind,
    /// Chat-template flags, as `padv score` takes them.
    #[command(flatten)]
    chat: ChatArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// A calibration map saved by `padv eval uq --calibrate-out`: /v1/score then also returns
    /// the calibrated cell's score and its probability of success (`calibration.p_success`).
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
}

/// Run `padv serve` until SIGINT/SIGTERM; in-flight requests finish first.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if args.max_length == 0 {
        anyhow::bail!("--max-length 0 keeps no token of any trajectory: give a positive length");
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        anyhow::bail!(
            "--timeout {}: must be a positive number of seconds",
            args.timeout
        );
    }
    let api_key = args
        .api_key
        .clone()
        .or_else(|| std::env::var(&args.api_key_env).ok())
        .filter(|k| !k.is_empty());
    // Before the models: a bad file should not cost two model loads.
    let calibration = match &args.calibration {
        Some(path) => Some(Arc::new(Calibration::load(path).context("--calibration")?)),
        None => None,
    };
    let policy = resolve_model_path(&args.policy)
        .with_context(|| format!("finding checkpoint {:?}", args.policy))?;
    let reference = resolve_model_path(&args.reference)
        .with_context(|| format!("finding checkpoint {:?}", args.reference))?;
    let tokenize = TokenizeOptions {
        renderer: args.renderer,
        max_length: args.max_length,
        chat: args.chat.options()?,
    };
    let models = load_models(&policy, &reference, args.engine.options()?, &tokenize)
        .context("loading the model pair")?;
    let config = ServeConfig {
        api_key,
        max_body_bytes: args.max_body_bytes,
        max_tokens: args.max_tokens,
        timeout: Duration::from_secs_f64(args.timeout),
        max_concurrency: args.max_concurrency.max(1),
        max_queue: args.max_queue,
        session_memory_bytes: args.session_memory_mb.saturating_mul(1 << 20),
        max_candidates: args.max_candidates.max(1),
        calibration,
    };
    let auth = config.api_key.is_some();
    let state = AppState::new(models, config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("binding {}:{}", args.host, args.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        tracing::info!(
            %addr,
            policy = %policy.display(),
            reference = %reference.display(),
            auth,
            "padv serve listening"
        );
        eprintln!("padv serve listening on http://{addr}");
        serve(listener, state, shutdown_signal())
            .await
            .context("serving")
    })
}

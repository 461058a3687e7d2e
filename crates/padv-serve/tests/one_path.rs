//! One scoring path: the same trajectory under the same rendering flags gets the same token ids
//! and the same log-prob record from `padv score`'s pipeline (`padv_engine::pipeline`) and from
//! every route of `padv serve`: the ids and `/v1/score`'s record byte for byte; candidates and
//! sessions, which reuse KV caches (passes of other shapes), to rounding (≤ 1e-6 here, the
//! measured gap is printed).
//!
//! The rendering flags are the ones `padv score` takes (`--renderer`, `--chat-template`,
//! `--chat-var`, `--chat-date`, `--max-length`), given to the server as `load_models`'s
//! `TokenizeOptions`: the plain-text renderer, the fixture's own chat template, and a template
//! that rewrites earlier turns (one sequence per action) with an extra template variable and a
//! date.

mod common;

use axum::http::StatusCode;
use common::*;
use padv_core::render::RendererKind;
use padv_core::score::{step_scores, trajectory_score, Method, ScoreSpec, StepAgg, TokenAgg};
use padv_core::{LogprobRecord, Trajectory};
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pipeline::{score_trajectories, PipelineOptions};
use padv_engine::tokenize::{ChatOptions, FixedDate, TextTokenizer, TokenizeOptions};
use padv_serve::{load_models, AppState, ServeConfig};
use serde_json::{json, Value};

const METHODS: [Method; 5] = [
    Method::Pa,
    Method::PolicyLogprob,
    Method::SelfCertainty,
    Method::Deepconf,
    Method::NegEntropy,
];

fn spec(method: Method) -> ScoreSpec {
    ScoreSpec::builder()
        .method(method)
        .token_agg(TokenAgg::Mean)
        .step_agg(StepAgg::Mean)
        .build()
        .expect("valid spec")
}

/// A tokenizer folder: the qwen2 fixture's tokenizer, its own template, and the Qwen3-style
/// template that rewrites history (as `additional_chat_templates/qwen3.jinja`).
fn tokenizer_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ] {
        let from = fixture("qwen2").join(f);
        if from.exists() {
            std::fs::copy(from, dir.path().join(f)).expect("copy");
        }
    }
    std::fs::create_dir(dir.path().join("additional_chat_templates")).expect("mkdir");
    std::fs::copy(
        fixture("qwen2").join("../../tokenizer/additional_chat_templates/qwen3.jinja"),
        dir.path().join("additional_chat_templates/qwen3.jinja"),
    )
    .expect("copy qwen3 template");
    dir
}

/// The flag sets tried: (name, options).
fn flag_sets() -> Vec<(&'static str, TokenizeOptions)> {
    let mut extra = serde_json::Map::new();
    extra.insert("enable_thinking".into(), Value::Bool(true));
    vec![
        ("paper", TokenizeOptions::default()),
        (
            "chat-template",
            TokenizeOptions {
                renderer: RendererKind::ChatTemplate,
                max_length: 200,
                ..TokenizeOptions::default()
            },
        ),
        (
            "chat-template qwen3 (rewrites history)",
            TokenizeOptions {
                renderer: RendererKind::ChatTemplate,
                chat: ChatOptions {
                    template: Some("qwen3".into()),
                    extra,
                    date: FixedDate {
                        year: 2026,
                        month: 12,
                        day: 3,
                    },
                    ..ChatOptions::default()
                },
                ..TokenizeOptions::default()
            },
        ),
    ]
}

fn conversation_with_thinking() -> Vec<Value> {
    vec![
        msg("user", "What is 5 times 4?"),
        msg("assistant", "<think>\nfive fours\n</think>\n\n20."),
        msg("user", "And 6 times 3?"),
        msg("assistant", "<think>\nsix threes\n</think>\n\n18."),
        msg("user", "Thanks."),
        msg("assistant", "You are welcome."),
    ]
}

/// `padv score`'s record of `t`: the pipeline with batch size 1, as the CLI runs it.
fn cli_record(t: &Trajectory, tok: &TextTokenizer, opts: &TokenizeOptions) -> LogprobRecord {
    let policy = LocalEngine::load(&fixture("qwen2"), EngineOptions::default()).expect("policy");
    let reference =
        LocalEngine::load(&fixture("qwen2_ref"), EngineOptions::default()).expect("reference");
    let enc = tok.encoder(opts).expect("encoder");
    let run = score_trajectories(
        std::slice::from_ref(t),
        &enc,
        &policy,
        &reference,
        &PipelineOptions {
            strict: true,
            batch_size: 1,
            ..PipelineOptions::default()
        },
        &mut |_| {},
    )
    .expect("padv score's pipeline scores the trajectory");
    run.records.into_iter().next().expect("one record")
}

fn server(tok: &TextTokenizer, opts: &TokenizeOptions) -> AppState {
    let mut models = load_models(
        &fixture("qwen2"),
        &fixture("qwen2_ref"),
        EngineOptions::default(),
        &TokenizeOptions {
            chat: ChatOptions::default(),
            ..opts.clone()
        },
    )
    .expect("models load");
    // The fixture folder lacks the qwen3 template: compile the options against the copied
    // tokenizer folder (same tokenizer.json, so the same ids).
    models.rendering = tok.rendering(opts).expect("rendering compiles");
    AppState::new(models, ServeConfig::default())
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn scores_of(v: &Value) -> Vec<f64> {
    METHODS
        .iter()
        .map(|m| v[m.name()].as_f64().expect("a number"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_and_every_server_route_give_the_same_ids_and_records() {
    let dir = tokenizer_dir();
    let tok = TextTokenizer::from_dir(dir.path()).expect("tokenizer");
    let msgs = conversation_with_thinking();
    let t = chat_trajectory("t1", &msgs);
    for (name, opts) in flag_sets() {
        let st = server(&tok, &opts);
        let cli = cli_record(&t, &tok, &opts);
        assert_eq!(cli.steps.len(), 3, "{name}");

        // Ids: the server's encoder is the CLI's.
        let cli_ids = tok
            .encoder(&opts)
            .expect("encoder")
            .encode(&t)
            .expect("ids");
        assert_eq!(st.models.encode(&t).expect("ids"), cli_ids, "{name}");
        if name.contains("rewrites") {
            assert!(
                cli_ids.single().is_none(),
                "{name}: one sequence per action"
            );
        }

        // /v1/score: the record itself.
        let body = json!({"trajectory": {"id": "t1", "messages": msgs}});
        let (status, v) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{name}: {v}");
        let served: LogprobRecord =
            serde_json::from_value(v["record"].clone()).expect("record parses");
        assert_eq!(served, cli, "{name}: /v1/score's record");

        // The scores every route reports are computed from the record by core's functions, so
        // equal records give equal scores; the routes below are compared on those scores.
        let cli_steps: Vec<Vec<f64>> = {
            let per_method: Vec<Vec<(usize, f64)>> = METHODS
                .iter()
                .map(|&m| step_scores(&cli, &spec(m)).expect("step scores"))
                .collect();
            (0..cli.steps.len())
                .map(|i| per_method.iter().map(|s| s[i].1).collect())
                .collect()
        };

        // /v1/score/candidates: the last action as candidate 0 after the history.
        let history = &msgs[..msgs.len() - 1];
        let body = json!({"messages": history,
                          "candidates": [msgs[msgs.len() - 1], msg("assistant", "No.")]});
        let (status, v) = send(&st, "POST", "/v1/score/candidates", Some(body.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{name}: {v}");
        // The candidates continue from the history's KV cache in one fan-out pass, the CLI
        // runs one pass over the whole trajectory: the same computation in passes of other
        // shapes, equal to rounding (see the session check below).
        let cand = scores_of(&v["candidates"][0]["scores"]);
        let d = max_diff(&cand, &cli_steps[2]);
        println!("{name}: candidates vs padv score, max |Δ score| = {d:e}");
        assert!(
            d <= 1e-6,
            "{name}: candidates {cand:?} vs {:?}",
            cli_steps[2]
        );

        // Sessions: created with the first turn, then appended to, step by step.
        let (status, v) = send(
            &st,
            "POST",
            "/v1/sessions",
            Some(json!({"messages": msgs[..2]}).to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {v}");
        let id = v["session_id"].as_str().expect("id").to_owned();
        let mut got = vec![scores_of(&v["new_steps"][0]["scores"])];
        for range in [2..4, 4..6] {
            let (status, v) = send(
                &st,
                "POST",
                &format!("/v1/sessions/{id}/messages"),
                Some(json!({"messages": msgs[range]}).to_string()),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{name}: {v}");
            got.push(scores_of(&v["new_steps"][0]["scores"]));
            if got.len() == 3 {
                let sp = spec(Method::Pa);
                let want = trajectory_score(&cli, &sp).expect("score").expect("some");
                assert_eq!(v["trajectory"]["pa"].as_f64(), Some(want), "{name}");
            }
        }
        // Sessions continue from their KV caches in passes shorter than the CLI's one pass over
        // the whole trajectory; the engine's kernels can round the last bit of a value
        // differently in a pass of another shape, so the scores agree to rounding only (README,
        // the local engine's "Exact to the bit" note).
        let d = max_diff(
            &got.concat(),
            &cli_steps.iter().flatten().copied().collect::<Vec<_>>(),
        );
        println!("{name}: sessions vs padv score, max |Δ score| = {d:e}");
        assert!(
            d <= 1e-6,
            "{name}: sessions {got:?} vs padv score {cli_steps:?}"
        );
    }
}

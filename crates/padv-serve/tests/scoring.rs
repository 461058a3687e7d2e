//! The scoring routes give the numbers of offline `score_pair` (padv score's code path) on the
//! same trajectory, within 1e-5: one-shot, candidates (history computed once), and sessions
//! (incremental appends from KV caches).

mod common;

use axum::http::StatusCode;
use common::*;
use padv_core::render::RendererKind;
use padv_core::score::{step_scores, trajectory_score, Method, ScoreSpec, StepAgg, TokenAgg};
use serde_json::{json, Value};

fn spec(method: Method, token_agg: TokenAgg, step_agg: StepAgg) -> ScoreSpec {
    ScoreSpec::builder()
        .method(method)
        .token_agg(token_agg)
        .step_agg(step_agg)
        .build()
        .expect("valid spec")
}

const METHODS: [Method; 5] = [
    Method::Pa,
    Method::PolicyLogprob,
    Method::SelfCertainty,
    Method::Deepconf,
    Method::NegEntropy,
];

fn score_of(v: &Value, method: Method) -> f64 {
    v[method.name()].as_f64().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread")]
async fn score_equals_offline_score_pair() {
    let st = state();
    let msgs = conversation();
    let body = json!({"trajectory": {"id": "t1", "messages": msgs, "reward": 1.0},
                      "token_agg": "sum", "step_agg": "min"});
    let (status, v) = send(&st, "POST", "/v1/score", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let offline = offline_record(&chat_trajectory("t1", &msgs), RendererKind::Paper);
    // The per-token record is the offline one.
    let served: padv_core::LogprobRecord =
        serde_json::from_value(v["record"].clone()).expect("record parses");
    assert_eq!(served.steps.len(), offline.steps.len());
    assert_eq!(served.steps.len(), 3);
    for (a, b) in served.steps.iter().zip(&offline.steps) {
        assert_eq!(a.message_index, b.message_index);
        assert_eq!(a.policy.len(), b.policy.len());
        assert!(!a.policy.is_empty());
        for (x, y) in a.policy.iter().zip(&b.policy) {
            assert!(close(*x as f64, *y as f64));
        }
    }
    for m in METHODS {
        let sp = spec(m, TokenAgg::Sum, StepAgg::Min);
        let want = step_scores(&offline, &sp).expect("scores");
        for (i, (mi, w)) in want.iter().enumerate() {
            assert_eq!(v["steps"][i]["message_index"].as_u64(), Some(*mi as u64));
            let got = score_of(&v["steps"][i]["scores"], m);
            assert!(close(got, *w), "{m:?} step {i}: {got} vs {w}");
        }
        let t = trajectory_score(&offline, &sp)
            .expect("score")
            .expect("some");
        let got = score_of(&v["trajectory"], m);
        assert!(close(got, t), "{m:?}: {got} vs {t}");
    }
    // PA is not trivially zero: the two fixtures differ.
    assert!(score_of(&v["trajectory"], Method::Pa).abs() > 1e-4);
}

#[tokio::test(flavor = "multi_thread")]
async fn candidates_equal_independent_scoring_and_share_the_history() {
    let st = state();
    let history: Vec<Value> = conversation()[..4].to_vec();
    let cands = vec![
        msg("assistant", "20."),
        msg("assistant", "It is 20, since 5 times 4 is 20."),
        msg("assistant", "No idea."),
    ];
    let body = json!({"messages": history, "candidates": cands, "methods": ["pa", "deepconf"]});
    let (status, v) = send(&st, "POST", "/v1/score/candidates", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["shared_prefix_tokens"].as_u64().unwrap_or(0) > 10, "{v}");
    let mut best = (usize::MAX, f64::NEG_INFINITY);
    for (k, c) in cands.iter().enumerate() {
        let mut msgs = history.clone();
        msgs.push(c.clone());
        let offline = offline_record(&chat_trajectory("x", &msgs), RendererKind::Paper);
        let last = msgs.len() - 1;
        for m in [Method::Pa, Method::Deepconf] {
            let want = step_scores(&offline, &spec(m, TokenAgg::Mean, StepAgg::Mean))
                .expect("scores")
                .into_iter()
                .find(|(mi, _)| *mi == last)
                .expect("candidate step")
                .1;
            let got = score_of(&v["candidates"][k]["scores"], m);
            assert!(close(got, want), "candidate {k} {m:?}: {got} vs {want}");
            if m == Method::Pa && want > best.1 {
                best = (k, want);
            }
        }
    }
    assert_eq!(v["best"].as_u64(), Some(best.0 as u64));
    assert_eq!(v["best_by_method"]["pa"].as_u64(), Some(best.0 as u64));
}

async fn session_matches_one_shot(renderer: RendererKind) {
    let st = state_with(padv_serve::ServeConfig::default(), renderer);
    let msgs = conversation();
    let (status, v) = send(
        &st,
        "POST",
        "/v1/sessions",
        Some(json!({"messages": msgs[..3]}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["session_id"].as_str().expect("id").to_owned();
    let mut computed = vec![v["computed_tokens"].as_u64().unwrap_or(0)];
    for range in [3..5, 5..7] {
        let (status, v) = send(
            &st,
            "POST",
            &format!("/v1/sessions/{id}/messages"),
            Some(json!({"messages": msgs[range.clone()]}).to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        computed.push(v["computed_tokens"].as_u64().unwrap_or(0));
        // The conversation so far, scored in one shot.
        let so_far = chat_trajectory(&id, &msgs[..range.end]);
        let offline = offline_record(&so_far, renderer);
        for m in METHODS {
            let sp = spec(m, TokenAgg::Mean, StepAgg::Mean);
            let want = trajectory_score(&offline, &sp)
                .expect("score")
                .expect("some");
            let got = score_of(&v["trajectory"], m);
            assert!(
                close(got, want),
                "{renderer:?} {m:?} after {range:?}: {got} vs {want}"
            );
            let steps = step_scores(&offline, &sp).expect("steps");
            let new: Vec<_> = steps.iter().filter(|(mi, _)| *mi >= range.start).collect();
            assert_eq!(v["new_steps"].as_array().map(Vec::len), Some(new.len()));
            for (i, (mi, w)) in new.iter().enumerate() {
                assert_eq!(
                    v["new_steps"][i]["message_index"].as_u64(),
                    Some(*mi as u64)
                );
                let got = score_of(&v["new_steps"][i]["scores"], m);
                assert!(close(got, *w), "{m:?} new step {mi}: {got} vs {w}");
            }
        }
        assert_eq!(
            v["n_tokens"].as_u64(),
            Some(offline_tokens(&so_far, renderer))
        );
    }
    // Appends computed only the new tokens, fewer than the whole conversation.
    let total = offline_tokens(&chat_trajectory(&id, &msgs), renderer);
    assert!(computed[1] + computed[2] < total, "{computed:?} vs {total}");
    let (status, _) = send(&st, "DELETE", &format!("/v1/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, v) = send(
        &st,
        "POST",
        &format!("/v1/sessions/{id}/messages"),
        Some(json!({"messages": []}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

fn offline_tokens(t: &padv_core::Trajectory, renderer: RendererKind) -> u64 {
    let tok = padv_engine::tokenize::TextTokenizer::from_dir(&fixture("qwen2")).expect("tok");
    let enc = tok
        .encoder(&padv_engine::tokenize::TokenizeOptions {
            renderer,
            ..Default::default()
        })
        .expect("encoder");
    enc.encode(t).expect("encodes").total_tokens() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn session_appends_equal_one_shot_paper() {
    session_matches_one_shot(RendererKind::Paper).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn session_appends_equal_one_shot_chat_template() {
    session_matches_one_shot(RendererKind::ChatTemplate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_evicted_lru_and_reported() {
    let msgs = conversation();
    let body = json!({"messages": msgs[..3]}).to_string();
    // Measure one session's footprint, then allow one and a half of it.
    let probe = state();
    let (status, _) = send(&probe, "POST", "/v1/sessions", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let one = probe.sessions.total_bytes();
    assert!(one > 0);
    let cfg = padv_serve::ServeConfig {
        session_memory_bytes: one * 3 / 2,
        ..Default::default()
    };
    let st = state_with(cfg, RendererKind::Paper);
    let (s1, a) = send(&st, "POST", "/v1/sessions", Some(body.clone())).await;
    assert_eq!(s1, StatusCode::CREATED, "{a}");
    assert_eq!(a["evicted_sessions"], json!([]));
    let (s2, b) = send(&st, "POST", "/v1/sessions", Some(body)).await;
    assert_eq!(s2, StatusCode::CREATED, "{b}");
    let first = a["session_id"].as_str().expect("id");
    assert_eq!(b["evicted_sessions"], json!([first]), "{b}");
    assert_eq!(st.sessions.len(), 1);
    let (status, v) = send(
        &st,
        "POST",
        &format!("/v1/sessions/{first}/messages"),
        Some(json!({"messages": []}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("evicted"),
        "{v}"
    );
    let (_, metrics) = send(&st, "GET", "/metrics", None).await;
    let text = metrics.as_str().unwrap_or("");
    assert!(text.contains("padv_sessions_evicted_total 1"), "{text}");
}

/// The fixture pair served with a Qwen3-style template (it drops the reasoning of assistant
/// turns before the last user message), and the offline encoder and engines for the same.
struct Rewriting {
    _dir: tempfile::TempDir,
    state: padv_serve::AppState,
    tok: padv_engine::tokenize::TextTokenizer,
    opts: padv_engine::tokenize::TokenizeOptions,
    policy: padv_engine::logprobs::LocalEngine,
    reference: padv_engine::logprobs::LocalEngine,
}

fn rewriting() -> Rewriting {
    use padv_engine::logprobs::{EngineOptions, LocalEngine};
    use padv_engine::tokenize::{ChatOptions, TextTokenizer, TokenizeOptions};
    // The fixture model's tokenizer with the Qwen3-style template beside it.
    let dir = tempfile::tempdir().unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("qwen2").join(f), dir.path().join(f)).unwrap();
    }
    std::fs::create_dir(dir.path().join("additional_chat_templates")).unwrap();
    std::fs::copy(
        fixture("qwen2").join("../../tokenizer/additional_chat_templates/qwen3.jinja"),
        dir.path().join("additional_chat_templates/qwen3.jinja"),
    )
    .unwrap();
    let tok = TextTokenizer::from_dir(dir.path()).unwrap();
    let chat = ChatOptions {
        template: Some("qwen3".into()),
        ..ChatOptions::default()
    };
    let opts = TokenizeOptions {
        renderer: RendererKind::ChatTemplate,
        chat,
        ..TokenizeOptions::default()
    };
    let mut models = padv_serve::load_models(
        &fixture("qwen2"),
        &fixture("qwen2_ref"),
        EngineOptions::default(),
        &TokenizeOptions {
            chat: ChatOptions::default(),
            ..opts.clone()
        },
    )
    .unwrap();
    // The fixture folder has no qwen3 template: compile the one beside the copied tokenizer.
    models.rendering = tok.rendering(&opts).unwrap();
    Rewriting {
        _dir: dir,
        state: padv_serve::AppState::new(models, padv_serve::ServeConfig::default()),
        tok,
        opts,
        policy: LocalEngine::load(&fixture("qwen2"), EngineOptions::default()).unwrap(),
        reference: LocalEngine::load(&fixture("qwen2_ref"), EngineOptions::default()).unwrap(),
    }
}

impl Rewriting {
    /// `padv score`'s tokenisation of `t`.
    fn encode(&self, t: &padv_core::Trajectory) -> padv_engine::tokenize::Tokenized {
        self.tok.encoder(&self.opts).unwrap().encode(t).unwrap()
    }

    /// `padv score`'s record of the conversation, checking that the template rewrote it.
    fn offline(&mut self, msgs: &[Value]) -> padv_core::LogprobRecord {
        let t = chat_trajectory("x", msgs);
        let tokens = self.encode(&t);
        assert!(
            tokens.single().is_none(),
            "the template should rewrite this conversation's history"
        );
        padv_engine::pair::score_pair(&t, &tokens, &self.policy, &self.reference, None)
            .unwrap()
            .record
    }
}

/// A chat template that rewrites earlier turns: each candidate is scored in its own turn's
/// context, exactly as `padv score` scores that action, and that context is computed once.
#[tokio::test(flavor = "multi_thread")]
async fn candidates_under_a_history_rewriting_template_score_as_padv_score() {
    let mut rw = rewriting();
    let st = rw.state.clone();
    let history = vec![
        msg("user", "What is 5 times 4?"),
        msg("assistant", "<think>\nfive fours\n</think>\n\n20."),
        msg("user", "And 6 times 3?"),
    ];
    let cands = vec![
        msg("assistant", "<think>\nsix threes\n</think>\n\n18."),
        msg("assistant", "18."),
    ];
    let body = json!({"messages": history, "candidates": cands, "methods": ["pa"]});
    let (status, v) = send(&st, "POST", "/v1/score/candidates", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["shared_prefix_tokens"].as_u64().unwrap_or(0) > 10, "{v}");
    for (k, c) in cands.iter().enumerate() {
        let mut msgs = history.clone();
        msgs.push(c.clone());
        let offline = rw.offline(&msgs);
        let last = msgs.len() - 1;
        let want = step_scores(&offline, &spec(Method::Pa, TokenAgg::Mean, StepAgg::Mean))
            .unwrap()
            .into_iter()
            .find(|(mi, _)| *mi == last)
            .expect("candidate step")
            .1;
        let got = score_of(&v["candidates"][k]["scores"], Method::Pa);
        assert!(close(got, want), "candidate {k}: {got} vs {want}");
    }
}

/// Sessions under a history-rewriting template: every append reports what `padv score` gives
/// the whole conversation so far, and a new action continues from the previous turn's cache.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_under_a_history_rewriting_template_score_as_padv_score() {
    let mut rw = rewriting();
    let st = rw.state.clone();
    let msgs = [
        msg("user", "What is 5 times 4?"),
        msg("assistant", "<think>\nfive fours\n</think>\n\n20."),
        msg("user", "And 6 times 3?"),
        msg("assistant", "<think>\nsix threes\n</think>\n\n18."),
        msg("user", "Thanks."),
        msg("assistant", "You are welcome."),
    ];
    let body =
        |m: &[Value]| Some(json!({"messages": m, "methods": ["pa", "deepconf"]}).to_string());
    let (status, v) = send(&st, "POST", "/v1/sessions", body(&msgs[..2])).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["session_id"].as_str().unwrap().to_owned();
    let uri = format!("/v1/sessions/{id}/messages");
    for (range, new_action) in [(2..4, 3usize), (4..6, 5)] {
        let (status, v) = send(&st, "POST", &uri, body(&msgs[range.clone()])).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let offline = rw.offline(&msgs[..range.end]);
        for m in [Method::Pa, Method::Deepconf] {
            let sp = spec(m, TokenAgg::Mean, StepAgg::Mean);
            let want = step_scores(&offline, &sp).unwrap();
            let new: Vec<_> = want.iter().filter(|(mi, _)| *mi >= range.start).collect();
            assert_eq!(v["new_steps"].as_array().unwrap().len(), new.len(), "{v}");
            assert_eq!(new[0].0, new_action);
            let got = score_of(&v["new_steps"][0]["scores"], m);
            assert!(
                close(got, new[0].1),
                "{m:?} step {new_action}: {got} vs {}",
                new[0].1
            );
            let t = trajectory_score(&offline, &sp).unwrap().unwrap();
            let got = score_of(&v["trajectory"], m);
            assert!(close(got, t), "{m:?} trajectory: {got} vs {t}");
        }
        // The new turn's context shares the system/user prefix with the previous turn's.
        let computed = v["computed_tokens"].as_u64().unwrap() as usize;
        let t = chat_trajectory("x", &msgs[..range.end]);
        let tokens = rw.encode(&t);
        let last = tokens.segments.last().unwrap();
        assert!(
            computed < last.ids.len(),
            "{computed} of {} recomputed",
            last.ids.len()
        );
    }
}

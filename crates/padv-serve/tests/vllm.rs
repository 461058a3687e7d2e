//! The vLLM-compatible subset: `/v1/completions` prompt log-probs equal the engine's
//! teacher-forced log-probs, top-k agrees with the engine's top-20 mean, and the response has
//! vLLM's shape; `/tokenize` and `/v1/models`.

mod common;

use axum::http::StatusCode;
use common::*;
use padv_core::{LogprobBackend, StatsRequest};
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use serde_json::json;

fn prompt() -> Vec<u32> {
    let tok = padv_engine::tokenize::TextTokenizer::from_dir(&fixture("qwen2")).expect("tok");
    tok.encode("The sum of 2 and 3 is 5. Then 5 times 4 is 20.")
        .expect("encodes")
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_logprobs_equal_the_engine() {
    let st = state();
    let ids = prompt();
    assert!(ids.len() > 5);
    for (model, dir) in [("policy", "qwen2"), ("reference", "qwen2_ref")] {
        let body = json!({"model": model, "prompt": ids, "max_tokens": 0, "echo": true,
            "prompt_logprobs": 20, "logprobs": 0, "return_tokens_as_token_ids": true});
        let (status, v) = send(&st, "POST", "/v1/completions", Some(body.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let engine = LocalEngine::load(&fixture(dir), EngineOptions::default()).expect("load");
        let targets: Vec<usize> = (1..ids.len()).collect();
        let want = engine
            .score(
                &ids,
                &targets,
                StatsRequest {
                    distribution_stats: true,
                },
            )
            .expect("engine scores");
        let choice = &v["choices"][0];
        assert_eq!(v["model"], model);
        assert_eq!(choice["prompt_token_ids"], json!(ids));
        let pl = choice["prompt_logprobs"].as_array().expect("list");
        assert_eq!(pl.len(), ids.len());
        assert!(pl[0].is_null());
        let topk = want.topk_mean.as_ref().expect("stats");
        for (i, &t) in targets.iter().enumerate() {
            let d = pl[t].as_object().expect("dict");
            let actual = &d[&ids[t].to_string()];
            let lp = actual["logprob"].as_f64().expect("logprob");
            assert!(
                close(lp, want.logprob[i] as f64),
                "pos {t}: {lp} vs {}",
                want.logprob[i]
            );
            // Top 20 (ranks 1..=20) plus the actual token when it is not among them.
            let mut top: Vec<(u64, f64)> = d
                .values()
                .map(|e| {
                    (
                        e["rank"].as_u64().unwrap_or(0),
                        e["logprob"].as_f64().unwrap_or(0.0),
                    )
                })
                .filter(|(r, _)| *r <= 20)
                .collect();
            top.sort_by_key(|x| x.0);
            assert_eq!(top.len(), 20);
            assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
            let mean = top.iter().map(|x| x.1).sum::<f64>() / 20.0;
            assert!(
                close(mean, topk[i] as f64),
                "pos {t}: top-20 mean {mean} vs {}",
                topk[i]
            );
            let rank = actual["rank"].as_u64().expect("rank");
            assert_eq!(rank == 1, (lp - top[0].1).abs() < 1e-9, "pos {t}");
            assert!(d.len() == 20 || (d.len() == 21 && rank > 20));
        }
        // OpenAI-style echo arrays: null first, then the same log-probs.
        let lps = choice["logprobs"]["token_logprobs"]
            .as_array()
            .expect("array");
        assert!(lps[0].is_null());
        assert!(close(
            lps[1].as_f64().unwrap_or(0.0),
            want.logprob[0] as f64
        ));
        assert_eq!(
            choice["logprobs"]["tokens"][1],
            format!("token_id:{}", ids[1])
        );
        assert_eq!(v["usage"]["prompt_tokens"], ids.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_generated_token_is_the_greedy_one() {
    let st = state();
    let ids = prompt();
    let body = json!({"prompt": [ids], "max_tokens": 1, "logprobs": 1});
    let (status, v) = send(&st, "POST", "/v1/completions", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let gen = v["choices"][0]["token_ids"][0].as_u64().expect("one token") as u32;
    // Greedy = the token with the highest log-prob after the prompt, by the engine.
    let engine = LocalEngine::load(&fixture("qwen2"), EngineOptions::default()).expect("load");
    let mut best = (0u32, f32::NEG_INFINITY);
    let vocab = engine.vocab_size() as u32;
    for cand in 0..vocab {
        let mut seq = ids.clone();
        seq.push(cand);
        let lp = engine
            .score(&seq, &[ids.len()], StatsRequest::default())
            .expect("scores")
            .logprob[0];
        if lp > best.1 {
            best = (cand, lp);
        }
    }
    assert_eq!(gen, best.0);
    let lp = v["choices"][0]["logprobs"]["token_logprobs"][0]
        .as_f64()
        .expect("lp");
    assert!(close(lp, best.1 as f64));
    assert_eq!(v["usage"]["completion_tokens"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_refuse_what_they_cannot_do() {
    let st = state();
    for body in [
        json!({"prompt": [1, 2, 3]}),
        json!({"prompt": [1, 2, 3], "max_tokens": 0}),
        json!({"prompt": [1, 2, 99999], "max_tokens": 0, "prompt_logprobs": 1}),
        json!({"prompt": [1, 2, 3], "max_tokens": 0, "prompt_logprobs": 21}),
        json!({"prompt": [[1, 2], [3, 4]], "max_tokens": 0, "prompt_logprobs": 1}),
        json!({"prompt": [], "max_tokens": 0, "prompt_logprobs": 1}),
        json!({"prompt": [1, -2], "max_tokens": 0, "prompt_logprobs": 1}),
        json!({"prompt": [1, 2], "max_tokens": 1, "stream": true}),
    ] {
        let (status, v) = send(&st, "POST", "/v1/completions", Some(body.to_string())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["type"], "validation_error");
    }
    let body = json!({"model": "gpt-4", "prompt": [1, 2], "max_tokens": 1});
    let (status, v) = send(&st, "POST", "/v1/completions", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokenize_and_models() {
    let st = state();
    let (status, v) = send(
        &st,
        "POST",
        "/tokenize",
        Some(json!({"prompt": "The sum of 2 and 3 is 5. Then 5 times 4 is 20.", "add_special_tokens": false}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let tok = padv_engine::tokenize::TextTokenizer::from_dir(&fixture("qwen2")).expect("tok");
    let want = tok
        .inner()
        .encode("The sum of 2 and 3 is 5. Then 5 times 4 is 20.", false)
        .expect("encodes");
    assert_eq!(v["tokens"], json!(want.get_ids()));
    assert_eq!(v["count"], want.get_ids().len());
    let (status, v) = send(&st, "GET", "/v1/models", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["data"][0]["id"], "policy");
    assert_eq!(v["data"][1]["id"], "reference");
    assert_eq!(v["data"][0]["max_model_len"], 16384);
}

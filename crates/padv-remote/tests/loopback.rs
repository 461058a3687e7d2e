//! Remote scoring against test servers on 127.0.0.1 that answer as vLLM and SGLang document,
//! computed by padv's local engine on the fixture checkpoints: remote records must equal
//! local ones, an interrupted run must resume from the cache, and every fault must give a
//! clear error without losing finished work.

mod support;

use std::time::Duration;

use padv_core::formats::{read_file, ReadOptions};
use padv_core::record::cache::LogprobCache;
use padv_core::{LogprobBackend, LogprobRecord, Message, ScoreRequest, StatsRequest, Trajectory};
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pair::score_pair;
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions, Tokenized};
use padv_remote::{EngineKind, RemoteBackend, RemoteOptions};
use support::model::{fixture_model, ModelServer};
use support::server::{Fault, Server};

const VOCAB: usize = 512;
const STATS: StatsRequest = StatsRequest {
    distribution_stats: true,
};

fn opts() -> RemoteOptions {
    RemoteOptions {
        kind: None,
        concurrency: 4,
        timeout: Duration::from_secs(60),
        retries: 3,
        top_k: 20,
        error_budget: 20,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        max_model_len: None,
        model: None,
        api_key: None,
    }
}

fn server(model: &str, sglang: bool) -> Server {
    Server::start(ModelServer::new(model, sglang, 256))
}

fn remote(urls: &[&Server], o: RemoteOptions) -> RemoteBackend {
    let urls: Vec<String> = urls.iter().map(|s| s.url.clone()).collect();
    RemoteBackend::connect(&urls, VOCAB, o).expect("connects")
}

fn builtin(i: usize) -> Trajectory {
    let m = |role: &str, text: String, is_action| Message {
        role: role.into(),
        name: None,
        content: Some(text),
        tool_call_id: None,
        tool_calls: vec![],
        is_action,
    };
    Trajectory {
        id: format!("builtin-{i}"),
        task_id: "t".into(),
        messages: vec![
            m(
                "user",
                format!("Please book flight number {i} to Paris."),
                false,
            ),
            m(
                "assistant",
                format!("Checking availability of flight {i}."),
                true,
            ),
            m("tool", "{\"seats\": 3, \"price\": 120}".into(), false),
            m("assistant", "Booked: 1 seat for 120 EUR.".into(), true),
        ],
        reward: Some((i % 2) as f64),
        mistake_step: None,
        mistake_agent: None,
        ..Default::default()
    }
}

#[path = "../../padv-core/tests/support/shared_data.rs"]
mod shared_data;

/// Three built-in trajectories plus the first three of a real tau2-bench file when the data
/// folder (`$PADV_DATA_DIR`, or `shared/data` beside the checkout) is present.
fn trajectories() -> Vec<Trajectory> {
    let mut out: Vec<Trajectory> = (0..3).map(builtin).collect();
    if let Some(dir) = shared_data::shared_data(env!("CARGO_MANIFEST_DIR")) {
        let file = dir.join("tau2_bench_leaderboard/airline__gpt-5.4__ironshell__1trial.json");
        let r = read_file(&file, &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        out.extend(r.trajectories.into_iter().take(3));
    }
    out
}

fn tokenize(ts: &[Trajectory]) -> Vec<Tokenized> {
    let tok = TextTokenizer::from_dir(&fixture_model("qwen2")).expect("tokenizer");
    let enc = tok
        .encoder(&TokenizeOptions {
            max_length: 200,
            ..TokenizeOptions::default()
        })
        .expect("encoder");
    ts.iter().map(|t| enc.encode(t).expect("encodes")).collect()
}

fn local(model: &str) -> LocalEngine {
    LocalEngine::load(&fixture_model(model), EngineOptions::default()).expect("fixture loads")
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5,
            "{what}[{i}]: remote {x} vs local {y}"
        );
    }
}

fn compare(remote: &LogprobRecord, local: &LogprobRecord) {
    assert_eq!(remote.id, local.id);
    assert_eq!(remote.label, local.label);
    assert_eq!(remote.vocab_size, local.vocab_size);
    assert_eq!(remote.steps.len(), local.steps.len());
    for (r, l) in remote.steps.iter().zip(&local.steps) {
        assert_eq!(r.message_index, l.message_index);
        close(&r.policy, &l.policy, "policy");
        close(
            r.reference.as_deref().unwrap(),
            l.reference.as_deref().unwrap(),
            "reference",
        );
        close(
            r.policy_topk_mean.as_deref().unwrap(),
            l.policy_topk_mean.as_deref().unwrap(),
            "policy_topk_mean",
        );
        assert!(l.policy_entropy.is_some() && l.policy_vocab_mean.is_some());
        assert_eq!(r.policy_entropy, None, "a top-k cannot give the entropy");
        assert_eq!(r.policy_vocab_mean, None);
    }
}

fn remote_equals_local(sglang: bool) {
    let ts = trajectories();
    let toks = tokenize(&ts);
    let (lp, lr) = (local("qwen2"), local("qwen2_ref"));
    let (p1, p2, r1) = (
        server("qwen2", sglang),
        server("qwen2", sglang),
        server("qwen2_ref", sglang),
    );
    let rp = remote(&[&p1, &p2], opts());
    let rr = remote(&[&r1], opts());
    let want = if sglang {
        EngineKind::Sglang
    } else {
        EngineKind::Vllm
    };
    assert_eq!(rp.identity().kind, want, "engine auto-detected");
    let (mut scored, mut tokens) = (0, 0);
    for (t, tk) in ts.iter().zip(&toks) {
        let l = score_pair(t, tk, &lp, &lr, None).expect("local");
        let r = score_pair(t, tk, &rp, &rr, None).expect("remote");
        assert_eq!(r.n_targets, l.n_targets);
        compare(&r.record, &l.record);
        scored += usize::from(l.n_targets > 0);
        tokens += l.n_targets;
    }
    assert!(
        scored >= 3 && tokens > 0,
        "the comparison covered action tokens"
    );
    assert_eq!(rr.stats().requests_ok, scored as u64);

    // One concurrent batch over the two policy servers: results in request order.
    let seqs: Vec<&[u32]> = toks
        .iter()
        .map(|t| {
            t.single()
                .expect("paper rendering is one sequence")
                .ids
                .as_slice()
        })
        .collect();
    let targets: Vec<Vec<usize>> = seqs.iter().map(|ids| (1..ids.len()).collect()).collect();
    let reqs: Vec<ScoreRequest<'_>> = seqs
        .iter()
        .zip(&targets)
        .map(|(ids, g)| ScoreRequest { ids, targets: g })
        .collect();
    let before = (p1.posts(), p2.posts());
    let got = rp.score_batch(&reqs, STATS);
    assert_eq!(
        p1.posts() + p2.posts() - before.0 - before.1,
        reqs.len(),
        "one request per sequence, spread over the fleet"
    );
    for (r, g) in reqs.iter().zip(got) {
        let g = g.expect("batch entry");
        let l = lp.score(r.ids, r.targets, STATS).unwrap();
        close(&g.logprob, &l.logprob, "batch logprob");
        close(
            g.topk_mean.as_deref().unwrap(),
            l.topk_mean.as_deref().unwrap(),
            "batch topk_mean",
        );
    }
}

#[test]
fn vllm_remote_scoring_equals_local_scoring() {
    remote_equals_local(false);
}

#[test]
fn sglang_remote_scoring_equals_local_scoring() {
    remote_equals_local(true);
}

#[test]
fn top_k_below_20_gives_no_topk_mean() {
    let s = server("qwen2", false);
    let b = remote(&[&s], RemoteOptions { top_k: 5, ..opts() });
    let ids: Vec<u32> = (1..30).collect();
    let out = b.score(&ids, &[3, 10, 28], STATS).unwrap();
    let l = local("qwen2").score(&ids, &[3, 10, 28], STATS).unwrap();
    close(&out.logprob, &l.logprob, "logprob");
    assert_eq!(out.topk_mean, None);
}

#[test]
fn fingerprint_names_the_model_not_the_host() {
    let (a, b, c) = (
        server("qwen2", false),
        server("qwen2", false),
        server("qwen2_ref", false),
    );
    let fa = remote(&[&a], opts()).fingerprint();
    assert_eq!(fa, remote(&[&b], opts()).fingerprint());
    assert!(!fa.contains(&a.url[7..]), "{fa} contains the address");
    assert_ne!(fa, remote(&[&c], opts()).fingerprint());
    assert_ne!(
        fa,
        remote(&[&a], RemoteOptions { top_k: 5, ..opts() }).fingerprint()
    );
    let urls = vec![a.url.clone(), c.url.clone()];
    let e = RemoteBackend::connect(&urls, VOCAB, opts()).unwrap_err();
    assert!(e.to_string().contains("must serve the same weights"), "{e}");
}

#[test]
fn interrupted_run_resumes_from_the_cache() {
    let ts: Vec<Trajectory> = (0..4).map(builtin).collect();
    let toks = tokenize(&ts);
    let dir = tempfile::tempdir().unwrap();
    let cache = LogprobCache::open(dir.path()).unwrap();
    let (pol, refr) = (server("qwen2", false), server("qwen2_ref", false));
    // The policy server fails for good after two answers: 3 failed attempts exhaust it.
    pol.inject([Fault::Pass, Fault::Pass]);
    pol.inject((0..50).map(|_| Fault::Status(500, "{\"error\":\"engine dead\"}")));
    let o = RemoteOptions {
        retries: 2,
        error_budget: 3,
        ..opts()
    };
    let (rp, rr) = (remote(&[&pol], o.clone()), remote(&[&refr], o.clone()));
    let results: Vec<_> = ts
        .iter()
        .zip(&toks)
        .map(|(t, tk)| score_pair(t, tk, &rp, &rr, Some(&cache)))
        .collect();
    assert!(results[0].is_ok() && results[1].is_ok());
    let e2 = results[2].as_ref().unwrap_err().to_string();
    assert!(e2.contains("HTTP 500") && e2.contains(&pol.url), "{e2}");
    let e3 = results[3].as_ref().unwrap_err().to_string();
    assert!(e3.contains("error budget"), "{e3}");
    assert_eq!(
        pol.posts(),
        5,
        "2 answers + 3 failed attempts, nothing after the budget"
    );

    // A fleet restarted elsewhere (new ports) finishes only what is missing.
    let (pol2, refr2) = (server("qwen2", false), server("qwen2_ref", false));
    let (rp2, rr2) = (remote(&[&pol2], o.clone()), remote(&[&refr2], o));
    let (lp, lr) = (local("qwen2"), local("qwen2_ref"));
    for (i, (t, tk)) in ts.iter().zip(&toks).enumerate() {
        let r = score_pair(t, tk, &rp2, &rr2, Some(&cache)).unwrap();
        assert_eq!(r.cache_hits, if i < 2 { 2 } else { 0 }, "trajectory {i}");
        compare(
            &r.record,
            &score_pair(t, tk, &lp, &lr, None).unwrap().record,
        );
    }
    assert_eq!(pol2.posts(), 2);
    assert_eq!(refr2.posts(), 2);
}

/// Scores a 24-token sequence through one server with `faults` queued; returns the result
/// and the number of requests the server received.
fn with_faults(
    sglang: bool,
    faults: Vec<Fault>,
    o: RemoteOptions,
) -> (Result<padv_core::PositionLogprobs, String>, usize, String) {
    let s = server("qwen2", sglang);
    s.inject(faults);
    let b = remote(&[&s], o);
    let ids: Vec<u32> = (5..29).collect();
    let r = b
        .score(&ids, &[1, 2, 12, 23], STATS)
        .map_err(|e| e.to_string());
    if let Ok(out) = &r {
        let l = local("qwen2").score(&ids, &[1, 2, 12, 23], STATS).unwrap();
        close(&out.logprob, &l.logprob, "after faults");
    }
    (r, s.posts(), s.url.clone())
}

fn edit(f: impl Fn(&mut serde_json::Value) + Send + 'static) -> Fault {
    Fault::Edit(Box::new(f))
}

#[test]
fn protocol_faults_fail_clearly_without_retry() {
    let cases: Vec<(bool, Fault, &str)> = vec![
        (
            false,
            Fault::Body(b"{not json".to_vec()),
            "not the documented JSON",
        ),
        (
            false,
            edit(|v| {
                v["choices"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("prompt_logprobs");
            }),
            "choices[0].prompt_logprobs is missing",
        ),
        (
            false,
            edit(|v| v["choices"][0]["prompt_token_ids"][3] = 7.into()),
            "prompt_token_ids[3] is token 7 but token 8 was sent",
        ),
        (
            false,
            edit(|v| {
                v["choices"][0]["prompt_logprobs"]
                    .as_array_mut()
                    .unwrap()
                    .truncate(10)
            }),
            "has 10 entries for 24 prompt tokens",
        ),
        (
            true,
            edit(|v| {
                v["meta_info"]["input_top_logprobs"][12]
                    .as_array_mut()
                    .unwrap()
                    .truncate(3)
            }),
            "input_top_logprobs[12] lists 3 log-probs",
        ),
        (
            true,
            edit(|v| {
                v["meta_info"]
                    .as_object_mut()
                    .unwrap()
                    .remove("input_token_logprobs");
            }),
            "meta_info.input_token_logprobs is missing",
        ),
        (
            true,
            edit(|v| v["meta_info"]["input_token_logprobs"][2][1] = 9.into()),
            "input_token_logprobs (token ids)[2] is token 9 but token 7 was sent",
        ),
    ];
    for (sglang, fault, want) in cases {
        let (r, posts, url) = with_faults(sglang, vec![fault], opts());
        let e = r.unwrap_err();
        assert!(
            e.contains(want) && e.contains(&url) && e.contains("request 0"),
            "{e}"
        );
        assert_eq!(posts, 1, "{want}: a protocol error is not retried");
    }
}

#[test]
fn transient_faults_are_retried() {
    let cases: Vec<(Fault, RemoteOptions)> = vec![
        (Fault::Status(429, "{\"error\":\"busy\"}"), opts()),
        (Fault::Status(503, "overloaded"), opts()),
        (Fault::Drop, opts()),
        (
            Fault::Stall(Duration::from_secs(3)),
            RemoteOptions {
                timeout: Duration::from_millis(500),
                ..opts()
            },
        ),
    ];
    for (fault, o) in cases {
        let (r, posts, _) = with_faults(false, vec![fault], o);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(posts, 2, "one failure, one retry");
    }
}

#[test]
fn persistent_server_errors_and_client_errors_name_endpoint_and_status() {
    let o = RemoteOptions {
        retries: 2,
        ..opts()
    };
    let (r, posts, url) = with_faults(
        false,
        (0..5).map(|_| Fault::Status(500, "boom")).collect(),
        o.clone(),
    );
    let e = r.unwrap_err();
    assert!(e.contains("HTTP 500: boom") && e.contains(&url), "{e}");
    assert_eq!(posts, 3, "first attempt + 2 retries");
    let (r, posts, _) = with_faults(
        true,
        vec![Fault::Status(400, "{\"error\":\"bad input\"}")],
        o,
    );
    let e = r.unwrap_err();
    assert!(
        e.contains("HTTP 400") && e.contains("bad input") && e.contains("request 0 (24 tokens"),
        "{e}"
    );
    assert_eq!(posts, 1, "4xx is not retried");
}

#[test]
fn a_failed_request_does_not_lose_the_others() {
    let s = server("qwen2", false);
    s.inject([Fault::Pass, Fault::Status(400, "no"), Fault::Pass]);
    let b = remote(
        &[&s],
        RemoteOptions {
            concurrency: 1,
            ..opts()
        },
    );
    let ids: Vec<Vec<u32>> = (0..3).map(|i| (i + 1..i + 20).collect()).collect();
    let targets = [4usize, 9, 18];
    let reqs: Vec<_> = ids
        .iter()
        .map(|ids| ScoreRequest {
            ids,
            targets: &targets,
        })
        .collect();
    let got = b.score_batch(&reqs, STATS);
    assert!(got[0].is_ok() && got[2].is_ok(), "{got:?}");
    assert!(got[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("request 1"));
}

#[test]
fn sequences_longer_than_the_context_are_refused_before_sending() {
    let s = Server::start(ModelServer::new("qwen2", false, 16));
    let b = remote(&[&s], opts());
    assert_eq!(b.max_prompt_tokens(), 15);
    let ids: Vec<u32> = (1..40).collect();
    let e = b.score(&ids, &[3, 20], STATS).unwrap_err().to_string();
    assert!(
        e.contains("needs 21 prompt tokens") && e.contains("max_model_len is 16"),
        "{e}"
    );
    assert_eq!(s.posts(), 0);
    // Only the prefix up to the last target is sent, so early targets of a long sequence fit.
    let out = b.score(&ids, &[3, 14], STATS).unwrap();
    let l = local("qwen2").score(&ids, &[3, 14], STATS).unwrap();
    close(&out.logprob, &l.logprob, "prefix");
    assert_eq!(s.posts(), 1);
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    let e = RemoteBackend::connect(&["http://127.0.0.1:1".into()], VOCAB, opts()).unwrap_err();
    assert!(e.to_string().contains("http://127.0.0.1:1"), "{e}");
    let e = RemoteBackend::connect(&["10.0.0.1:8000".into()], VOCAB, opts()).unwrap_err();
    assert!(e.to_string().contains("http://"), "{e}");
}

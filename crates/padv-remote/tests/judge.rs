//! The judge client against a mock OpenAI-compatible server on 127.0.0.1
//! (`tests/support/mock_judge.rs`): P(correct) read from the top log-probs, the verdict-text
//! fallback and how often it is used, malformed verdicts, missing log-probs, 429/500 retried,
//! persistent failures reported per trajectory, the API key sent but never shown, and resume
//! from the cache.

mod support;

use std::time::Duration;

use padv_core::judge::cache::JudgeCache;
use padv_core::judge::prompts::{thinkprm_prompt, PrmTemplate};
use padv_core::{Message, Trajectory};
use padv_remote::judge::{run_judge, HttpJudgeKind, JudgeApi, JudgeClient, JudgeOptions};
use support::mock_judge::MockJudge;
use support::server::{Fault, Server};

fn msg(role: &str, content: &str, is_action: bool) -> Message {
    Message {
        role: role.into(),
        content: Some(content.into()),
        is_action,
        ..Default::default()
    }
}

fn trajectories() -> Vec<Trajectory> {
    (0..6)
        .map(|i| Trajectory {
            id: format!("t{i}"),
            task_id: "k".into(),
            messages: vec![
                msg("user", "Book a flight to Paris.", false),
                msg("assistant", "Searching flights.", true),
                msg(
                    "tool",
                    if i % 2 == 0 {
                        "found 3"
                    } else {
                        "error: no route"
                    },
                    false,
                ),
                msg(
                    "assistant",
                    if i < 3 {
                        "Booked flight 2."
                    } else {
                        "Sorry, I cannot book it."
                    },
                    true,
                ),
            ],
            ..Default::default()
        })
        .collect()
}

fn server(logprobs: bool) -> Server {
    Server::start(MockJudge {
        name: "mock".into(),
        logprobs,
    })
}

fn client(s: &Server, api: JudgeApi) -> JudgeClient {
    JudgeClient::connect(
        std::slice::from_ref(&s.url),
        JudgeOptions {
            api,
            model: "mock".into(),
            concurrency: 3,
            retries: 3,
            error_budget: 8,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
            timeout: Duration::from_secs(10),
            api_key: Some("sk-test-123".into()),
            ..JudgeOptions::default()
        },
    )
    .unwrap()
}

const PRM: HttpJudgeKind = HttpJudgeKind::Prm {
    template: None,
    answer_prefix: true,
};

/// The mock's P(correct) of each action step of `t`, from its own rule.
fn mock_probabilities(t: &Trajectory) -> Vec<f64> {
    let m = MockJudge {
        name: "mock".into(),
        logprobs: true,
    };
    let prompt = thinkprm_prompt(t, PrmTemplate::Agent).prompt;
    m.tokens(&prompt)
        .iter()
        .filter(|(_, top)| !top.is_empty())
        .map(|(_, top)| top[0].1.exp())
        .collect()
}

#[test]
fn prm_probabilities_come_from_the_top_logprobs() {
    let s = server(true);
    for api in [JudgeApi::Chat, JudgeApi::Completions] {
        let c = client(&s, api);
        let ts = trajectories();
        let (items, counts) = run_judge(&c, PRM, &ts, None, None, 4, &mut |_, _| {});
        assert_eq!((counts.scored, counts.failed), (6, 0), "{api:?}");
        assert_eq!(counts.prm_steps_from_logprobs, 12);
        assert_eq!(counts.prm_steps_from_text + counts.prm_steps_missing, 0);
        for (t, item) in ts.iter().zip(&items) {
            let scores = item.scores.as_ref().unwrap();
            let got: Vec<(usize, f64)> = scores
                .steps
                .iter()
                .map(|s| (s.message_index, s.score))
                .collect();
            let want = mock_probabilities(t);
            assert_eq!(got.len(), 2);
            assert_eq!((got[0].0, got[1].0), (1, 3), "action message indices");
            for ((_, g), w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{}: {g} vs {w}", t.id);
            }
        }
        // A failing step ("Sorry, I cannot...") is judged below 0.5 by the mock.
        assert!(items[4].scores.as_ref().unwrap().steps[1].score < 0.5);
        // The key went out as a bearer token, and appears in no output.
        assert_eq!(
            s.last_authorization().as_deref(),
            Some("Bearer sk-test-123")
        );
        assert!(!c.fingerprint().contains("sk-test"));
    }
}

#[test]
fn without_logprobs_the_verdict_text_is_read_and_counted() {
    let s = server(false);
    let c = client(&s, JudgeApi::Chat);
    let ts = trajectories();
    let (items, counts) = run_judge(&c, PRM, &ts, None, None, 8, &mut |_, _| {});
    assert_eq!(counts.prm_steps_from_text, 12);
    assert_eq!(
        (counts.prm_steps_from_logprobs, counts.answers_with_logprobs),
        (0, 0)
    );
    for (t, item) in ts.iter().zip(&items) {
        for (s, p) in item
            .scores
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .zip(mock_probabilities(t))
        {
            assert_eq!(s.score, if p >= 0.5 { 1.0 } else { 0.0 });
        }
    }
}

#[test]
fn malformed_verdicts_missing_logprobs_and_bad_answers() {
    let s = server(true);
    let c = client(&s, JudgeApi::Chat);
    let ts = trajectories();
    s.inject([
        // 1: log-probs dropped: the text is read.
        Fault::Edit(Box::new(|v| {
            v["choices"][0]["logprobs"] = serde_json::Value::Null
        })),
        // 2: a verdict that is neither word, and no verdict for step 2: 0.5 each.
        Fault::Edit(Box::new(|v| {
            v["choices"][0]["logprobs"] = serde_json::Value::Null;
            v["choices"][0]["message"]["content"] = "Step 1 is \\boxed{probably}".into();
        })),
        // 3: not JSON at all: a protocol error, not retried.
        Fault::Body(b"<html>oops</html>".to_vec()),
    ]);
    let (items, counts) = run_judge(&c, PRM, &ts[..3], None, None, 1, &mut |_, _| {});
    let steps = |i: usize| -> Vec<f64> {
        items[i]
            .scores
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|s| s.score)
            .collect()
    };
    assert!(steps(0).iter().all(|&p| p == 1.0 || p == 0.0));
    assert_eq!(steps(1), vec![0.5, 0.5]);
    assert_eq!(counts.prm_malformed_verdicts, 1);
    assert_eq!(counts.prm_steps_missing, 2);
    assert_eq!(counts.prm_steps_from_text, 2);
    let e = items[2].error.as_ref().unwrap();
    assert!(e.contains(&s.url) && e.contains("not JSON"), "{e}");
    assert_eq!(counts.failed, 1);
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let s = server(true);
    let c = client(&s, JudgeApi::Chat);
    let ts = trajectories();
    s.inject([
        Fault::Status(429, r#"{"error": "rate limited"}"#),
        Fault::Status(500, r#"{"error": "boom"}"#),
        Fault::Drop,
    ]);
    let (_, counts) = run_judge(&c, PRM, &ts[..2], None, None, 2, &mut |_, _| {});
    assert_eq!((counts.scored, counts.failed), (2, 0));
    assert_eq!(s.posts(), 5, "2 answers + 3 retried failures");
    // A server that keeps failing: the trajectories fail, named, after the retries.
    let s = server(true);
    let c = client(&s, JudgeApi::Chat);
    s.inject((0..40).map(|_| Fault::Status(503, "overloaded")));
    let (items, counts) = run_judge(&c, PRM, &ts[..2], None, None, 2, &mut |_, _| {});
    assert_eq!(counts.failed, 2);
    let e = items[0].error.as_ref().unwrap();
    assert!(e.contains("503") || e.contains("budget"), "{e}");
}

#[test]
fn an_interrupted_run_resumes_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = JudgeCache::open(dir.path()).unwrap();
    let ts = trajectories();
    let s = server(true);
    let c = client(&s, JudgeApi::Chat);
    // First run: the server dies (400, not retried) for two of the six requests.
    s.inject([
        Fault::Pass,
        Fault::Status(400, "bad"),
        Fault::Pass,
        Fault::Status(400, "bad"),
    ]);
    let (first, counts) = run_judge(&c, PRM, &ts, None, Some(&cache), 1, &mut |_, _| {});
    assert_eq!((counts.scored, counts.failed), (4, 2));
    let posts = s.posts();
    // Rerun: only the two missing trajectories are sent; the rest come from the cache.
    let (second, counts) = run_judge(&c, PRM, &ts, None, Some(&cache), 3, &mut |_, _| {});
    assert_eq!((counts.scored, counts.cache_hits), (6, 4));
    assert_eq!(s.posts(), posts + 2);
    for (a, b) in first.iter().zip(&second) {
        if let Some(sa) = &a.scores {
            assert_eq!(Some(sa), b.scores.as_ref());
        }
    }
    // A third run sends nothing.
    run_judge(&c, PRM, &ts, None, Some(&cache), 6, &mut |_, _| {});
    assert_eq!(s.posts(), posts + 2);
}

#[test]
fn llm_judge_probabilities_and_unparsable_answers() {
    let s = server(true);
    let c = client(&s, JudgeApi::Completions);
    let ts = trajectories();
    s.inject([Fault::Edit(Box::new(|v| {
        v["choices"][0]["text"] = "I think it went well.".into();
    }))]);
    let (items, counts) = run_judge(
        &c,
        HttpJudgeKind::LlmJudge,
        &ts,
        None,
        None,
        1,
        &mut |_, _| {},
    );
    assert_eq!((counts.llm_unparsable, counts.failed), (1, 1));
    assert!(items[0].error.as_ref().unwrap().contains("PROBABILITY"));
    // t1: "error" in a tool answer -> 0.75; t4: "error" + "Sorry" + "cannot" -> 0.45.
    let p = |i: usize| items[i].scores.as_ref().unwrap().trajectory.unwrap();
    assert!((p(1) - 0.75).abs() < 1e-9, "{}", p(1));
    assert!((p(2) - 0.9).abs() < 1e-9, "{}", p(2));
    assert!((p(5) - 0.45).abs() < 1e-9, "{}", p(5));
}

#[test]
fn a_completions_prompt_goes_through_the_templater() {
    let s = server(true);
    let c = client(&s, JudgeApi::Completions);
    let ts = trajectories();
    let templater =
        |user: &str| -> Result<String, String> { Ok(format!("<|user|>{user}<|assistant|>")) };
    let (items, _) = run_judge(&c, PRM, &ts[..1], Some(&templater), None, 1, &mut |_, _| {});
    assert!(items[0].scores.is_some());
    let failing = |_: &str| -> Result<String, String> { Err("template error".into()) };
    let (items, counts) = run_judge(&c, PRM, &ts[..1], Some(&failing), None, 1, &mut |_, _| {});
    assert!(items[0].error.as_ref().unwrap().contains("template error"));
    assert_eq!(counts.failed, 1);
}

//! Pipeline tests with a fake backend and the fixture tokenizer: skips by reason, strict
//! mode, the cache, batching and progress.

use std::path::{Path, PathBuf};

use padv_core::render::RendererKind;
use padv_core::{BackendError, Message, PositionLogprobs, StatsRequest};

use super::*;
use crate::pair::score_pair;
use crate::tokenize::{TextTokenizer, TokenizeOptions};

/// A backend whose log-prob at target t is −(ids[t] + t)/100 − offset, so every value says
/// where it came from; it fails on sequences that contain `fail_on`.
struct Fake {
    name: &'static str,
    offset: f32,
    fail_on: Option<u32>,
    calls: std::cell::Cell<usize>,
}

impl Fake {
    fn new(name: &'static str, offset: f32) -> Self {
        Fake {
            name,
            offset,
            fail_on: None,
            calls: Default::default(),
        }
    }
}

impl LogprobBackend for Fake {
    fn fingerprint(&self) -> String {
        self.name.to_string()
    }
    fn vocab_size(&self) -> usize {
        1000
    }
    fn score(
        &self,
        ids: &[u32],
        targets: &[usize],
        stats: StatsRequest,
    ) -> Result<PositionLogprobs, BackendError> {
        self.calls.set(self.calls.get() + 1);
        if let Some(bad) = self.fail_on {
            if ids.contains(&bad) {
                return Err(BackendError::Failed(format!("token {bad} refused")));
            }
        }
        let lp: Vec<f32> = targets
            .iter()
            .map(|&t| -((ids[t] as f32 + t as f32) / 100.0) - self.offset)
            .collect();
        let s = stats.distribution_stats;
        Ok(PositionLogprobs {
            topk_mean: s.then(|| lp.clone()),
            entropy: s.then(|| lp.iter().map(|x| -x).collect()),
            vocab_mean: s.then(|| lp.clone()),
            logprob: lp,
        })
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer")
}

/// The fixture tokenizer with a chat template that refuses any message whose content is `BAD`.
fn tokenizer_with_refusing_template(dir: &Path) -> TextTokenizer {
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture_dir().join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("chat_template.jinja"),
        "{%- for m in messages %}{%- if m['content'] == 'BAD' %}\
         {{- raise_exception('content BAD refused') }}{%- endif %}\
         {{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}\
         {%- endfor %}",
    )
    .unwrap();
    TextTokenizer::from_dir(dir).unwrap()
}

fn trajectory(id: &str, action: &str) -> Trajectory {
    let m = |role: &str, content: &str, is_action| Message {
        role: role.into(),
        name: None,
        content: Some(content.into()),
        is_action,
        ..Message::default()
    };
    Trajectory {
        id: id.into(),
        task_id: format!("task-{id}"),
        messages: vec![
            m("user", "hello there", false),
            m("assistant", action, true),
            m("user", "thanks", false),
            m("assistant", "done", true),
        ],
        reward: Some(1.0),
        ..Trajectory::default()
    }
}

fn run(
    trajs: &[Trajectory],
    tok: &TextTokenizer,
    renderer: RendererKind,
    policy: &mut Fake,
    reference: &mut Fake,
    opts: &PipelineOptions<'_>,
) -> (Result<ScoreRun, PipelineError>, Vec<Progress>) {
    let encoder = tok
        .encoder(&TokenizeOptions {
            renderer,
            ..TokenizeOptions::default()
        })
        .unwrap();
    let mut seen = Vec::new();
    let out = score_trajectories(
        trajs,
        &encoder,
        policy,
        reference,
        opts,
        &mut |p: &Progress| seen.push(*p),
    );
    (out, seen)
}

#[test]
fn records_match_score_pair_and_progress_counts_batches() {
    let tok = TextTokenizer::from_dir(&fixture_dir()).unwrap();
    let trajs: Vec<_> = (0..5)
        .map(|i| trajectory(&format!("t{i}"), &format!("answer number {i}")))
        .collect();
    let (mut p, mut r) = (Fake::new("p", 0.0), Fake::new("r", 0.5));
    let opts = PipelineOptions {
        batch_size: 2,
        ..PipelineOptions::default()
    };
    let (out, seen) = run(&trajs, &tok, RendererKind::Paper, &mut p, &mut r, &opts);
    let out = out.unwrap();
    assert_eq!(out.records.len(), 5);
    assert!(out.skips.is_empty());
    // Batches of 2, 2, 1.
    let done: Vec<usize> = seen.iter().map(|p| p.done).collect();
    assert_eq!(done, vec![2, 4, 5]);
    assert!(seen.iter().all(|p| p.total == 5));
    assert_eq!(seen[2].eta(), Some(Duration::ZERO));

    // Each record is what score_pair makes of the same trajectory, in input order, and the
    // counts add up over them.
    let encoder = tok.encoder(&TokenizeOptions::default()).unwrap();
    let (p2, r2) = (Fake::new("p", 0.0), Fake::new("r", 0.5));
    let (mut tokens, mut targets, mut steps) = (0, 0, 0);
    for (t, rec) in trajs.iter().zip(&out.records) {
        let toks = encoder.encode(t).unwrap();
        let want = score_pair(t, &toks, &p2, &r2, None).unwrap();
        assert_eq!(&want.record, rec);
        tokens += want.n_tokens;
        targets += want.n_targets;
        steps += want.record.steps.len();
    }
    let s = &out.stats;
    assert_eq!((s.trajectories, s.records, s.skipped), (5, 5, 0));
    assert_eq!(
        (s.tokens, s.action_tokens, s.action_steps),
        (tokens, targets, steps)
    );
    assert_eq!(s.computed_tokens, tokens, "nothing came from a cache");
    assert_eq!(s.cache_hits, 0);
    assert!(targets > 0 && steps == 10);
}

#[test]
fn failures_are_skipped_with_reasons_or_fatal_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer_with_refusing_template(dir.path());
    // The policy refuses sequences containing the first token of "poison".
    let poison = tok.inner().encode("poison", false).unwrap().get_ids()[0];
    let trajs = vec![
        trajectory("good", "fine"),
        trajectory("bad-template", "BAD"),
        trajectory("bad-backend", "poison"),
        trajectory("good2", "also fine"),
    ];
    let mut p = Fake {
        fail_on: Some(poison),
        ..Fake::new("p", 0.0)
    };
    let mut r = Fake::new("r", 0.5);
    let (out, _) = run(
        &trajs,
        &tok,
        RendererKind::ChatTemplate,
        &mut p,
        &mut r,
        &PipelineOptions::default(),
    );
    let out = out.unwrap();
    let ids: Vec<&str> = out.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["good", "good2"]);
    assert_eq!(out.stats.skipped, 2);
    let tokenize = out.skips.get(SkipReason::Tokenize).unwrap();
    assert_eq!(tokenize.count, 1);
    assert_eq!(tokenize.examples[0].id, "bad-template");
    assert!(
        tokenize.examples[0].message.contains("content BAD refused"),
        "{}",
        tokenize.examples[0].message
    );
    let backend = out.skips.get(SkipReason::Backend).unwrap();
    assert_eq!(backend.examples[0].id, "bad-backend");
    assert!(backend.examples[0].message.contains("refused"));

    // Strict: the first failure (the template, trajectory 2) ends the run and is named.
    let strict = PipelineOptions {
        strict: true,
        ..PipelineOptions::default()
    };
    let (out, _) = run(
        &trajs,
        &tok,
        RendererKind::ChatTemplate,
        &mut p,
        &mut r,
        &strict,
    );
    match out {
        Err(PipelineError::Tokenize { id, .. }) => assert_eq!(id, "bad-template"),
        other => panic!("expected a tokenize error, got {other:?}"),
    }
    let (out, _) = run(
        &trajs[2..],
        &tok,
        RendererKind::ChatTemplate,
        &mut p,
        &mut r,
        &strict,
    );
    assert!(matches!(
        out,
        Err(PipelineError::Pair(PairError::Backend { .. }))
    ));

    // Nothing left: the error carries every reason.
    let (out, _) = run(
        &trajs[1..3],
        &tok,
        RendererKind::ChatTemplate,
        &mut p,
        &mut r,
        &PipelineOptions::default(),
    );
    match out {
        Err(e @ PipelineError::NothingScored { .. }) => {
            let text = e.to_string();
            assert!(text.contains("none of the 2 trajectories"), "{text}");
            assert!(text.contains("tokenize: 1 skipped"), "{text}");
            assert!(text.contains("backend: 1 skipped"), "{text}");
        }
        other => panic!("expected NothingScored, got {other:?}"),
    }
    assert!(matches!(
        run(&[], &tok, RendererKind::Paper, &mut p, &mut r, &strict).0,
        Err(PipelineError::NoTrajectories)
    ));
}

#[test]
fn a_second_run_reads_everything_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LogprobCache::open(dir.path()).unwrap();
    let tok = TextTokenizer::from_dir(&fixture_dir()).unwrap();
    let trajs = vec![trajectory("a", "one"), trajectory("b", "two")];
    let opts = PipelineOptions {
        cache: Some(&cache),
        ..PipelineOptions::default()
    };
    let (mut p, mut r) = (Fake::new("p", 0.0), Fake::new("r", 0.5));
    let (first, _) = run(&trajs, &tok, RendererKind::Paper, &mut p, &mut r, &opts);
    let first = first.unwrap();
    assert_eq!(
        (first.stats.cache_hits, p.calls.get(), r.calls.get()),
        (0, 2, 2)
    );
    let (again, _) = run(&trajs, &tok, RendererKind::Paper, &mut p, &mut r, &opts);
    let again = again.unwrap();
    assert_eq!(
        (again.stats.cache_hits, p.calls.get(), r.calls.get()),
        (4, 2, 2)
    );
    assert_eq!(again.stats.computed_tokens, 0);
    assert_eq!(again.records, first.records);
    assert_eq!(again.stats.cache_corrupt, 0);

    // One entry's numbers change on disk (still valid JSON): it is found, counted and
    // re-scored; the records are those of the first run.
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&entry).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let x = v["value"]["logprob"][0].as_f64().unwrap();
    v["value"]["logprob"][0] = serde_json::json!(x - 0.5);
    std::fs::write(&entry, v.to_string()).unwrap();
    let (third, _) = run(&trajs, &tok, RendererKind::Paper, &mut p, &mut r, &opts);
    let third = third.unwrap();
    assert_eq!(third.stats.cache_corrupt, 1);
    // A batch is scored whole or not at all (so a resumed run equals an uninterrupted one):
    // the model with the bad entry re-scores both trajectories of the batch, the other model
    // reads both from the cache.
    assert_eq!(third.stats.cache_hits, 2);
    assert_eq!(
        p.calls.get() + r.calls.get(),
        6,
        "one model re-scored its whole batch"
    );
    assert_eq!(third.records, first.records);
}

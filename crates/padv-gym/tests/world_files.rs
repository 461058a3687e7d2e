//! The gym's world files through padv's own readers: the tokenizer directory through
//! `padv_engine::tokenize::TextTokenizer` and its chat template, and the chat JSONL through
//! `padv_core::formats` (what `padv inspect` and `padv score` read).

use padv_core::eval::SplitMix64;
use padv_core::formats::{read_file, Format, ReadOptions};
use padv_core::render::RendererKind;
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions};
use padv_gym::episode::{
    expert_episode, read_truth_jsonl, write_chat_jsonl, write_truth_jsonl, Episode, TruthRecord,
};
use padv_gym::expert::Expert;
use padv_gym::lake::{Lake, LakeConfig};
use padv_gym::solver::solve;
use padv_gym::tokenizer::{write_tokenizer_files, GymTokenizer, END_ID};
use padv_gym::truth::DEFAULT_MISTAKE_THRESHOLD;

/// Expert episodes on a few maps, with a sprinkle of odd but valid action text (spaces,
/// punctuation, digits) so the round trip is tested on more than the canonical phrases.
fn episodes() -> Vec<(Episode, TruthRecord)> {
    let config = LakeConfig::default();
    let sloppy = Expert {
        mistake_rate: 0.4,
        invalid_rate: 0.1,
    };
    let mut out = Vec::new();
    for seed in 0..12u64 {
        let lake = Lake::generate(&config, seed).unwrap();
        let values = solve(&lake);
        let mut rng = SplitMix64::new(100 + seed);
        let mut ep = expert_episode(
            &lake,
            &values,
            &sloppy,
            padv_gym::protocol::ActionStyle::Terse,
            format!("map{seed}-r0"),
            format!("map{seed}"),
            &mut rng,
        );
        if let Some(t) = ep.turns.first_mut() {
            t.text = format!(" {}!  (step 1) ", t.text);
        }
        let truth = ep.truth(&values, DEFAULT_MISTAKE_THRESHOLD);
        out.push((ep.clone(), TruthRecord::new(&ep, truth)));
    }
    out
}

#[test]
fn tokenizer_round_trips_through_the_engine_chat_template() {
    let dir = tempfile::tempdir().unwrap();
    write_tokenizer_files(dir.path()).unwrap();
    let tok = TextTokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.vocab_size(), padv_gym::tokenizer::vocab_size());
    assert_eq!(tok.special_tokens().eos_token.as_deref(), Some("<|end|>"));
    let opts = TokenizeOptions {
        renderer: RendererKind::ChatTemplate,
        max_length: 1 << 20,
        ..Default::default()
    };
    let encoder = tok.encoder(&opts).unwrap();
    let gym = GymTokenizer::new();
    for (ep, _) in episodes() {
        let t = ep.to_trajectory(None);
        let tokenized = encoder.encode(&t).unwrap();
        let enc = tokenized
            .single()
            .expect("the gym template renders one sequence");
        // The ids the agent would have produced turn by turn.
        let msgs: Vec<(&str, &str)> = t
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_deref().unwrap_or("")))
            .collect();
        let want = gym.conversation(msgs.iter().copied(), false).unwrap();
        assert_eq!(enc.ids, want, "{}", t.id);
        // Each action's tokens are exactly its characters plus <|end|>.
        let actions: Vec<_> = enc.spans.iter().filter(|s| s.is_action).collect();
        assert_eq!(actions.len(), ep.turns.len());
        for (span, turn) in actions.iter().zip(&ep.turns) {
            let ids = &enc.ids[span.start..span.end];
            let mut expect = gym.encode(&turn.text).unwrap();
            expect.push(END_ID);
            assert_eq!(
                ids,
                expect.as_slice(),
                "{} message {}",
                t.id,
                span.message_index
            );
            // Decoding the content and re-encoding gives the same ids.
            let text = gym.decode(&ids[..ids.len() - 1]).unwrap();
            assert_eq!(text, turn.text);
            let re = tok.inner().encode(text.as_str(), false).unwrap();
            assert_eq!(re.get_ids(), &ids[..ids.len() - 1]);
        }
        // The generation prompt after the task is `<|assistant|>`.
        let prompt = gym.conversation(msgs[..1].iter().copied(), true).unwrap();
        assert_eq!(&enc.ids[..prompt.len()], prompt.as_slice());
    }
}

#[test]
fn chat_jsonl_reads_back_as_padv_trajectories() {
    let dir = tempfile::tempdir().unwrap();
    let chat = dir.path().join("rollouts.jsonl");
    let side = dir.path().join("truth.jsonl");
    let eps = episodes();
    let trajectories: Vec<_> = eps
        .iter()
        .map(|(e, r)| e.to_trajectory(Some(&r.truth)))
        .collect();
    write_chat_jsonl(&chat, &trajectories).unwrap();
    let records: Vec<TruthRecord> = eps.iter().map(|(_, r)| r.clone()).collect();
    write_truth_jsonl(&side, &records).unwrap();

    let report = read_file(
        &chat,
        &ReadOptions {
            format: None,
            strict: true,
            exclude: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(report.format, Some(Format::ChatJsonl));
    assert_eq!(report.trajectories.len(), eps.len());
    let mut labelled = 0;
    for ((ep, rec), (read, written)) in eps
        .iter()
        .zip(report.trajectories.iter().zip(&trajectories))
    {
        assert_eq!(read.id, ep.id);
        assert_eq!(read.task_id, ep.task_id);
        assert_eq!(read.reward, Some(if ep.success() { 1.0 } else { 0.0 }));
        // Actions are exactly the assistant messages, at 1, 3, 5, ...
        let want: Vec<usize> = (0..ep.turns.len()).map(|k| 1 + 2 * k).collect();
        assert_eq!(read.action_indices(), want);
        assert_eq!(read.mistake_step, rec.mistake_message);
        labelled += usize::from(read.mistake_step.is_some());
        assert_eq!(read, written);
        if let Some(mi) = read.mistake_step {
            assert!(read.messages[mi].is_action && !ep.success());
        }
    }
    assert!(labelled > 0, "a sloppy expert makes decisive mistakes");
    // serde_json parses floats to within one ulp (no `float_roundtrip` feature), so the
    // solver's numbers are compared to 1e-15 and everything else exactly.
    let back = read_truth_jsonl(&side).unwrap();
    assert_eq!(back.len(), records.len());
    for (b, r) in back.iter().zip(&records) {
        assert_eq!(
            (
                &b.id,
                &b.task_id,
                b.lake_seed,
                b.status,
                &b.action_messages,
                b.mistake_message
            ),
            (
                &r.id,
                &r.task_id,
                r.lake_seed,
                r.status,
                &r.action_messages,
                r.mistake_message
            )
        );
        assert_eq!(b.truth.decisive_mistake, r.truth.decisive_mistake);
        assert_eq!(b.truth.steps.len(), r.truth.steps.len());
        for (x, y) in b.truth.steps.iter().zip(&r.truth.steps) {
            assert_eq!((x.step, x.state, x.action), (y.step, y.state, y.action));
            for (u, w) in [(x.v, y.v), (x.q, y.q), (x.advantage, y.advantage)] {
                assert!((u - w).abs() < 1e-15, "{u} vs {w}");
            }
        }
    }

    std::fs::write(&side, "{\"id\": 1}\n").unwrap();
    let err = read_truth_jsonl(&side).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
}

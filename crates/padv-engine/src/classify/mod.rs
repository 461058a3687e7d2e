//! Sequence-classification reward models (`*ForSequenceClassification`, e.g. WildReward-8B):
//! the decoder of any supported family plus a linear `score` head read at one position.
//!
//! transformers pools the head's logits at the **last non-pad token** of the sequence: the
//! largest index whose id differs from `pad_token_id` (index 0 when every token is padding),
//! or the last token when the config has no `pad_token_id` (allowed for a batch of one).
//! [`SequenceClassifier::pooled_index`] applies that rule; the decoder then runs only up to
//! that position and the head is applied to its final-normed hidden state (no logit
//! soft-capping: that belongs to the language-model head). Parity with transformers is
//! tested on tiny random checkpoints of several families (`tests/classify.rs`).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use padv_core::fingerprint::Fnv64;

use padv_core::judge::cache::JudgeCache;
use padv_core::judge::prompts::{wildreward_prompt, WILDREWARD_MAX_TOKENS};
use padv_core::judge::{outcome_rm_score, JudgeScores};
use padv_core::Trajectory;

use crate::checkpoint::{read_raw_config, Checkpoint, CheckpointError};
use crate::decoder::{DecoderModel, KvCache, ModelOptions};
use crate::logprobs::{EngineError, EngineOptions};
use crate::tokenize::TextTokenizer;

/// A loaded sequence classifier.
#[derive(Debug, Clone)]
pub struct SequenceClassifier {
    model: DecoderModel,
    /// `[num_labels, hidden]`, f32.
    score: Tensor,
    pad_token_id: Option<u32>,
    num_labels: usize,
    fingerprint: String,
}

fn candle(context: &str) -> impl FnOnce(candle_core::Error) -> EngineError + '_ {
    move |source| EngineError::Candle {
        context: context.to_string(),
        source,
    }
}

impl SequenceClassifier {
    /// Loads the classifier checkpoint `dir` (see [`Checkpoint::open_classifier`]).
    pub fn load(dir: &Path, opts: EngineOptions) -> Result<Self, EngineError> {
        let (ckpt, num_labels) = Checkpoint::open_classifier(dir)?;
        let (raw, _) = read_raw_config(dir)?;
        let pad_token_id =
            match &raw.pad_token_id {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|x| u32::try_from(x).ok()).ok_or_else(
                    || {
                        EngineError::Checkpoint(CheckpointError::InvalidField {
                            path: dir.join("config.json"),
                            field: "pad_token_id".into(),
                            reason: format!("{v} is not a token id"),
                        })
                    },
                )?),
            };
        let device = opts.device.device().map_err(candle("opening the device"))?;
        let dtype = opts.dtype.dtype();
        let vb = ckpt.var_builder(dtype, &device);
        let context = format!("loading {}", dir.display());
        let model = DecoderModel::with_prefixes(
            &ckpt.config,
            vb.pp(&ckpt.body_prefix),
            None,
            ModelOptions {
                trainable: false,
                attention: opts.attention,
            },
        )
        .map_err(candle(&context))?;
        let score = ckpt
            .weights
            .load("score.weight", None, DType::F32, &device)?;
        let mut fingerprint = ckpt.fingerprint(dtype, &device)?;
        fingerprint = fingerprint.replacen("padv-local/", "padv-classifier/", 1);
        Ok(Self {
            model,
            score,
            pad_token_id,
            num_labels,
            fingerprint,
        })
    }

    /// Number of outputs of the head.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    /// The padding token the pooling skips.
    pub fn pad_token_id(&self) -> Option<u32> {
        self.pad_token_id
    }

    /// A stable string that changes whenever the numbers could (the checkpoint's content
    /// fingerprint, as for the log-prob engine).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The vocabulary size of the model.
    pub fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    /// The position whose hidden state the head reads (see the module documentation);
    /// `None` for an empty sequence.
    pub fn pooled_index(&self, ids: &[u32]) -> Option<usize> {
        if ids.is_empty() {
            return None;
        }
        Some(match self.pad_token_id {
            None => ids.len() - 1,
            Some(pad) => ids.iter().rposition(|&t| t != pad).unwrap_or(0),
        })
    }

    /// The head's logits for the sequence `ids`.
    pub fn logits(&self, ids: &[u32]) -> Result<Vec<f32>, EngineError> {
        let p = self.pooled_index(ids).ok_or_else(|| {
            EngineError::Invalid("an empty sequence has nothing to classify".into())
        })?;
        let v = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= v) {
            return Err(EngineError::Invalid(format!(
                "token id {bad} outside the vocabulary of {v}"
            )));
        }
        let device = self.model.device();
        let input = Tensor::from_vec(ids[..=p].to_vec(), (1, p + 1), device)
            .map_err(candle("building the input"))?;
        let hidden = self
            .model
            .forward_rows(&input, 0, &mut KvCache::discarding(), &[p], p + 1)
            .map_err(candle("classifier forward"))?;
        let h = self.model.config().hidden_size;
        let logits = hidden
            .to_dtype(DType::F32)
            .and_then(|t| t.reshape((1, h)))
            .and_then(|t| t.matmul(&self.score.t()?))
            .and_then(|t| t.to_device(&Device::Cpu))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(candle("classifier head"))?;
        if let Some((i, x)) = logits.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(EngineError::Invalid(format!(
                "the classifier returned {x} as logit {i}"
            )));
        }
        Ok(logits)
    }
}

/// One trajectory's outcome-RM result: its scores and whether the logits came from the
/// cache, or why there is none.
pub type OutcomeRmResult = Result<(JudgeScores, bool), String>;

/// Scores every trajectory with an outcome reward model as the reference implementation
/// does: the WildReward prompt ([`wildreward_prompt`]), tokenised with the model's own
/// tokenizer with its special tokens, cut to the first [`WILDREWARD_MAX_TOKENS`] tokens,
/// and `1 + Σ sigmoid(logits)` ([`outcome_rm_score`]) as the trajectory value. Logits are
/// cached under the classifier's fingerprint and the ids, so a rerun resumes.
/// `progress(done, total)` is called after each trajectory.
pub fn run_outcome_rm(
    clf: &SequenceClassifier,
    tok: &TextTokenizer,
    trajectories: &[Trajectory],
    cache: Option<&JudgeCache>,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<OutcomeRmResult> {
    let mut out = Vec::with_capacity(trajectories.len());
    for (i, t) in trajectories.iter().enumerate() {
        let result = (|| {
            let mut ids = tok
                .encode_with_special_tokens(&wildreward_prompt(t))
                .map_err(|e| format!("tokenising the prompt: {e}"))?;
            ids.truncate(WILDREWARD_MAX_TOKENS);
            let key = cache_key(clf.fingerprint(), &ids);
            let (logits, cached) = match cache.and_then(|c| c.get::<Vec<f32>>(&key)) {
                Some(l) if l.len() == clf.num_labels() => (l, true),
                _ => {
                    let l = clf.logits(&ids).map_err(|e| e.to_string())?;
                    if let Some(c) = cache {
                        c.put(&key, &l)
                            .map_err(|e| format!("writing the cache {}: {e}", c.dir().display()))?;
                    }
                    (l, false)
                }
            };
            Ok((
                JudgeScores {
                    trajectory: Some(outcome_rm_score(&logits)),
                    steps: Vec::new(),
                },
                cached,
            ))
        })();
        out.push(result);
        progress(i + 1, trajectories.len());
    }
    out
}

/// A content key for caching a classifier's answer to `ids`.
pub fn cache_key(fingerprint: &str, ids: &[u32]) -> String {
    let mut h = Fnv64::new();
    h.write_str("padv-classifier-v1")
        .write_str(fingerprint)
        .write_u32s(ids);
    h.hex()
}

//! Batched rollouts of an agent in the lake: temperature sampling through the KV cache, the
//! environment loop, and the chat trajectory of each episode.
//!
//! **Exact ids.** The ids a row conditions on are the chat-template render of its
//! conversation so far, the same render `padv score --renderer chat-template` makes of the
//! written trajectory. Each turn the conversation is re-rendered with the generation prompt;
//! the gym template never rewrites history, so the new render extends the old text and only
//! its new suffix is encoded and appended. At the end of every episode the whole trajectory
//! is tokenised once more with `tokenize_chat` (the scorer's own function) and the sampler
//! checks that those ids start with exactly the ids it fed and that the action spans are
//! exactly the positions it sampled; any difference is an error, never a silent mismatch.
//!
//! **Lockstep batching.** All rows advance one position per forward call `[B, 1]`: a row
//! feeds its next known token (prompt, observation, turn header) or the token it just
//! sampled. Rows are independent sequences of equal length, so no attention mask is needed.
//! The common prefix length of the first prompts is prefilled in one call. Finished rows
//! leave the batch (their cache rows are dropped, [`KvCache::select_rows_with_room`]) once a
//! quarter of it has finished, so the work follows the live episodes rather than the longest
//! one.
//!
//! **Choosers.** What a row samples is decided by a [`TokenChooser`]: the model's own
//! distribution ([`rollout_batch`]), or the oracle's tilt of the reference
//! ([`crate::oracle`]), which needs batched work (decision probes) on the shared cache
//! before the rows choose.
//!
//! **Actions.** While acting, sampling is restricted to non-special tokens and the
//! end-of-turn token (the gym's alphabet); in the verbose style the end of the turn is also
//! masked until the remark line has ended (its newline written), the structure real agent
//! frameworks enforce on a tool call. An action that reaches `max_action_tokens` without
//! ending gets its end-of-turn token forced (recorded in [`Rollout::forced`]), and its text,
//! being cut, parses as an invalid action — a realistic failure. Log-probs are always those
//! of the full, unmasked temperature-1 distribution (what `padv score` computes).

use candle_core::{Device, Tensor};
use padv_core::eval::SplitMix64;
use padv_core::render::chat_messages;
use padv_core::{Message, Trajectory};
use padv_engine::decoder::{DecoderModel, KvCache};
use padv_engine::logprobs::row_stats;
use padv_engine::tokenize::{ChatOptions, ChatTemplate, Segment, TextTokenizer};

use crate::agent::{ctx, AgentError, Result};
use crate::episode::{Episode, Turn};
use crate::lake::{Lake, State};
use crate::protocol::{parse_action, task_message, ActionStyle};

/// Sampling settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleConfig {
    /// Softmax temperature (1 = the model's distribution; must be > 0).
    pub temperature: f64,
    /// Longest action in tokens, end-of-turn excluded.
    pub max_action_tokens: usize,
}

impl SampleConfig {
    /// Refuses a temperature that is not > 0 and a zero action length.
    pub fn validate(&self) -> Result<()> {
        if self.temperature.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || self.max_action_tokens == 0
        {
            return Err(AgentError::Invalid(format!(
                "sampling needs temperature > 0 and max_action_tokens > 0, got {self:?}"
            )));
        }
        Ok(())
    }
}

impl SampleConfig {
    /// Temperature 1 and the style's action length limit. (No `Default`: a default silently
    /// meant the terse limit, which cut every verbose action in the guided search.)
    pub fn for_style(style: ActionStyle) -> Self {
        SampleConfig {
            temperature: 1.0,
            max_action_tokens: style.max_action_tokens(),
        }
    }
}

/// One episode to play.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// The map.
    pub lake: &'a Lake,
    /// Trajectory id.
    pub id: String,
    /// Task id (rollouts of one map share it).
    pub task_id: String,
    /// Seed of this episode's two random streams (sampling and slips).
    pub seed: u64,
}

/// A played episode.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// The conversation: task, then alternating action / observation messages.
    pub trajectory: Trajectory,
    /// The scorer's tokenisation of `trajectory`: its one sequence (the gym template never
    /// rewrites history), with ids and per-message spans.
    pub tokens: Segment,
    /// Per id of `tokens.ids`: the token was sampled by the model (an action token).
    pub sampled: Vec<bool>,
    /// Per id: the token is an end-of-turn the sampler forced after `max_action_tokens`.
    pub forced: Vec<bool>,
    /// Per id: the sampler's log-prob of the sampled token under the full (unmasked,
    /// temperature 1) distribution; 0 elsewhere. For checks against the scorer.
    pub logprob: Vec<f32>,
    /// The episode (action texts and transitions), for ground truth.
    pub episode: Episode,
    /// Total reward.
    pub reward: f64,
}

/// What the sampler needs from the tokenizer, prepared once.
#[derive(Debug)]
pub struct Sampler<'a> {
    tok: &'a TextTokenizer,
    template: ChatTemplate,
    end_id: u32,
    pad_id: u32,
    newline_id: u32,
    style: ActionStyle,
    /// Tokens allowed while acting.
    allowed: Vec<bool>,
    /// The same without the end-of-turn (a verbose remark line that has not ended).
    allowed_no_end: Vec<bool>,
}

impl<'a> Sampler<'a> {
    /// Prepares sampling of `style` actions for the gym tokenizer `tok`, whose end-of-turn
    /// token is `end_token`.
    pub fn new(tok: &'a TextTokenizer, end_token: &str, style: ActionStyle) -> Result<Self> {
        let template = tok.chat_template(&ChatOptions::default())?;
        let inner = tok.inner();
        let end_id = inner.token_to_id(end_token).ok_or_else(|| {
            AgentError::Invalid(format!("tokenizer has no end-of-turn token {end_token:?}"))
        })?;
        let vocab = inner.get_vocab_size(true);
        let mut allowed = vec![true; vocab];
        for (id, added) in inner.get_added_tokens_decoder() {
            if let Some(a) = allowed.get_mut(id as usize) {
                *a = !added.special;
            }
        }
        if let Some(a) = allowed.get_mut(end_id as usize) {
            *a = true;
        }
        let pad_id = tok
            .special_tokens()
            .pad_token
            .as_deref()
            .and_then(|p| inner.token_to_id(p))
            .unwrap_or(end_id);
        let newline_id = match tok.encode("\n").as_deref() {
            Ok([id]) => *id,
            _ => {
                return Err(AgentError::Invalid(
                    "the tokenizer does not encode a newline as one token".into(),
                ))
            }
        };
        let mut allowed_no_end = allowed.clone();
        if let Some(a) = allowed_no_end.get_mut(end_id as usize) {
            *a = false;
        }
        Ok(Sampler {
            tok,
            template,
            end_id,
            pad_id,
            newline_id,
            style,
            allowed,
            allowed_no_end,
        })
    }

    /// The action style.
    pub fn style(&self) -> ActionStyle {
        self.style
    }

    /// The newline id (ends a verbose remark line).
    pub fn newline_id(&self) -> u32 {
        self.newline_id
    }

    /// Whether an action whose tokens so far are `action` is at its decision point: where
    /// its move line begins (the start of a terse action; right after the newline that ends
    /// a verbose remark line).
    pub fn at_decision_point(&self, action: &[u32]) -> bool {
        match self.style {
            ActionStyle::Terse => action.is_empty(),
            ActionStyle::Verbose => {
                action.last() == Some(&self.newline_id)
                    && action.iter().filter(|&&id| id == self.newline_id).count() == 1
            }
        }
    }

    /// The tokens a row may sample next, given its action so far.
    pub(crate) fn mask(&self, action: &[u32]) -> &[bool] {
        match self.style {
            ActionStyle::Verbose if !action.contains(&self.newline_id) => &self.allowed_no_end,
            _ => &self.allowed,
        }
    }

    /// The end-of-turn id.
    pub fn end_id(&self) -> u32 {
        self.end_id
    }

    /// The padding id (the end-of-turn id when the tokenizer has no pad token).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The compiled chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        self.tok
    }

    /// The next token of an action whose tokens so far are `action`: sampled from `logits`
    /// among the tokens [`Sampler::mask`] allows at `cfg.temperature`, or the end-of-turn,
    /// forced once the action has `cfg.max_action_tokens`. Returns the id, its log-prob
    /// under the full temperature-1 distribution, and whether it was forced.
    pub(crate) fn next_action_token(
        &self,
        logits: &[f32],
        action: &[u32],
        cfg: &SampleConfig,
        rng: &mut SplitMix64,
    ) -> (u32, f32, bool) {
        if action.len() >= cfg.max_action_tokens {
            let end = self.end_id;
            (end, log_softmax_at(logits, end as usize), true)
        } else {
            let (id, lp) = sample(logits, self.mask(action), cfg.temperature, rng);
            (id, lp, false)
        }
    }

    pub(crate) fn render(&self, t: &Trajectory) -> Result<String> {
        self.template
            .render_json(&chat_messages(t), true)
            .map(|r| r.text)
            .map_err(|e| AgentError::Invalid(format!("trajectory {}: render: {e}", t.id)))
    }

    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tok
            .encode(text)
            .map_err(|e| AgentError::Invalid(format!("encoding {text:?}: {e}")))
    }

    pub(crate) fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tok
            .inner()
            .decode(ids, false)
            .map_err(|e| AgentError::Invalid(format!("decoding {ids:?}: {e}")))
    }
}

/// Per-row state of the lockstep loop (and of one guided-search episode).
pub(crate) struct Row<'a> {
    pub(crate) job: &'a Job<'a>,
    pub(crate) traj: Trajectory,
    /// Rendered text so far (what `ids` encode).
    pub(crate) text: String,
    pub(crate) ids: Vec<u32>,
    pub(crate) sampled: Vec<bool>,
    pub(crate) forced: Vec<bool>,
    pub(crate) logprob: Vec<f32>,
    /// Ids of the action being generated.
    pub(crate) action: Vec<u32>,
    pub(crate) state: State,
    pub(crate) turns: Vec<Turn>,
    pub(crate) reward: f64,
    pub(crate) done: bool,
    pub(crate) sample_rng: SplitMix64,
    pub(crate) env_rng: SplitMix64,
}

impl<'a> Row<'a> {
    /// A row at the start of `job`: the task rendered with the generation prompt.
    pub(crate) fn new(job: &'a Job<'a>, sampler: &Sampler) -> Result<Self> {
        let mut seed_rng = SplitMix64::new(job.seed);
        let traj = Trajectory {
            id: job.id.clone(),
            task_id: job.task_id.clone(),
            messages: vec![message("user", task_message(job.lake), false)],
            reward: None,
            mistake_step: None,
            mistake_agent: None,
            action_text: Default::default(),
        };
        let text = sampler.render(&traj)?;
        let ids = sampler.encode(&text)?;
        let n = ids.len();
        Ok(Row {
            job,
            traj,
            text,
            ids,
            sampled: vec![false; n],
            forced: vec![false; n],
            logprob: vec![0.0; n],
            action: Vec::new(),
            state: job.lake.initial(),
            turns: Vec::new(),
            reward: 0.0,
            done: false,
            sample_rng: SplitMix64::new(seed_rng.next_u64()),
            env_rng: SplitMix64::new(seed_rng.next_u64()),
        })
    }
}

pub(crate) fn message(role: &str, content: String, is_action: bool) -> Message {
    Message {
        role: role.into(),
        name: None,
        content: Some(content),
        tool_call_id: None,
        tool_calls: Vec::new(),
        is_action,
    }
}

/// Decides the tokens rows sample in a lockstep batch.
pub(crate) trait TokenChooser {
    /// Called once per lockstep step before any row chooses, with the batch's cache (rows in
    /// cache order, `pos` positions) and, per row that samples now, `(cache row, slot)`;
    /// `logits[cache row]` is that row's next-token distribution. Batched work that every
    /// choosing row needs (the oracle's decision probes) runs here.
    fn prepare(
        &mut self,
        _model: &DecoderModel,
        _cache: &KvCache,
        _sampler: &Sampler,
        _rows: &[Row],
        _choosing: &[(usize, usize)],
        _logits: &[Vec<f32>],
    ) -> Result<()> {
        Ok(())
    }

    /// The next token of row `slot` (`rows[slot]`): `(id, log-prob under the full
    /// distribution the chooser samples from, forced)`.
    fn choose(
        &mut self,
        slot: usize,
        row: &mut Row,
        logits: &[f32],
        sampler: &Sampler,
        cfg: &SampleConfig,
    ) -> Result<(u32, f32, bool)>;
}

/// Samples from the model's own distribution.
struct ModelSampling;

impl TokenChooser for ModelSampling {
    fn choose(
        &mut self,
        _slot: usize,
        row: &mut Row,
        logits: &[f32],
        sampler: &Sampler,
        cfg: &SampleConfig,
    ) -> Result<(u32, f32, bool)> {
        Ok(sampler.next_action_token(logits, &row.action, cfg, &mut row.sample_rng))
    }
}

/// Plays every job to the end with `model`, all rows in one lockstep batch. Deterministic for
/// the jobs' seeds (and the batch composition).
pub fn rollout_batch(
    model: &DecoderModel,
    sampler: &Sampler,
    jobs: &[Job],
    cfg: &SampleConfig,
) -> Result<Vec<Rollout>> {
    run_lockstep(model, sampler, jobs, cfg, &mut ModelSampling)
}

/// The lockstep loop of [`rollout_batch`] with any chooser.
pub(crate) fn run_lockstep(
    model: &DecoderModel,
    sampler: &Sampler,
    jobs: &[Job],
    cfg: &SampleConfig,
    chooser: &mut dyn TokenChooser,
) -> Result<Vec<Rollout>> {
    cfg.validate()?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<Row> = jobs
        .iter()
        .map(|job| Row::new(job, sampler))
        .collect::<Result<_>>()?;
    // Slots of the rows still in the batch, in cache-row order.
    let mut live: Vec<usize> = (0..rows.len()).collect();
    // Decoding adds one position per forward: the cache grows in place instead of being
    // copied whole at every step.
    let mut cache = model.new_cache().growing();
    // Prefill the common prefix length minus one; the last known position of the shortest
    // prompt is fed in the loop, whose output is the first action's distribution.
    let prefill = rows
        .iter()
        .map(|r| r.ids.len())
        .min()
        .unwrap_or(0)
        .saturating_sub(1);
    if prefill > 0 {
        let b = rows.len();
        let flat: Vec<u32> = rows
            .iter()
            .flat_map(|r| r.ids[..prefill].to_vec())
            .collect();
        let ids = Tensor::from_vec(flat, (b, prefill), &Device::Cpu).map_err(ctx("prefill ids"))?;
        model
            .forward_rows(&ids, 0, &mut cache, &[prefill - 1], prefill)
            .map_err(ctx("prefill forward"))?;
    }
    let mut pos = prefill;
    let vocab = model.config().vocab_size;
    while !live.is_empty() {
        let b = live.len();
        let input: Vec<u32> = live
            .iter()
            .map(|&slot| {
                let r = &rows[slot];
                r.ids.get(pos).copied().unwrap_or(sampler.pad_id)
            })
            .collect();
        let ids = Tensor::from_vec(input, (b, 1), &Device::Cpu).map_err(ctx("step ids"))?;
        let hidden = model
            .forward(&ids, pos, &mut cache)
            .map_err(ctx(format!("forward at position {pos}")))?;
        let logits = model
            .logits(&hidden)
            .and_then(|l| l.reshape((b, vocab)))
            .and_then(|l| l.to_vec2::<f32>())
            .map_err(ctx("logits"))?;
        pos += 1;
        // A row samples when everything it knows has been fed.
        let choosing: Vec<(usize, usize)> = live
            .iter()
            .enumerate()
            .filter(|(_, &slot)| !rows[slot].done && rows[slot].ids.len() == pos)
            .map(|(i, &slot)| (i, slot))
            .collect();
        if !choosing.is_empty() {
            chooser.prepare(model, &cache, sampler, &rows, &choosing, &logits)?;
        }
        for &(i, slot) in &choosing {
            let row = &mut rows[slot];
            let (id, lp, forced) = chooser.choose(slot, row, &logits[i], sampler, cfg)?;
            row.ids.push(id);
            row.sampled.push(true);
            row.forced.push(forced);
            row.logprob.push(lp);
            if id != sampler.end_id {
                row.action.push(id);
                continue;
            }
            finish_action(row, sampler)?;
        }
        let done = live.iter().filter(|&&slot| rows[slot].done).count();
        if done > 0 && (done == live.len() || done * 4 >= live.len()) {
            let keep: Vec<usize> = (0..live.len()).filter(|&i| !rows[live[i]].done).collect();
            if !keep.is_empty() {
                // Copied once into buffers with the growth room `append` would leave.
                cache = cache
                    .select_rows_with_room(&keep, KvCache::growth_room(pos))
                    .map_err(ctx("dropping finished rows"))?;
            }
            live = keep.into_iter().map(|i| live[i]).collect();
        }
    }
    rows.into_iter().map(|r| finish_row(r, sampler)).collect()
}

/// The action just ended: parse it, step the environment, render the observation and the
/// next turn's header.
pub(crate) fn finish_action(row: &mut Row, sampler: &Sampler) -> Result<()> {
    let text = sampler.decode(&row.action)?;
    row.text.push_str(&text);
    row.text.push_str(&sampler.decode(&[sampler.end_id])?);
    row.action.clear();
    let action = parse_action(&text, sampler.style);
    let step = row.job.lake.step(row.state, action, &mut row.env_rng);
    row.reward += step.reward;
    row.state = step.state;
    let done = step.done();
    row.traj
        .messages
        .push(message("assistant", text.clone(), true));
    row.traj
        .messages
        .push(message("user", step.observation.clone(), false));
    row.turns.push(Turn { text, step });
    if done {
        row.done = true;
        return Ok(());
    }
    let rendered = sampler.render(&row.traj)?;
    let suffix = rendered.strip_prefix(row.text.as_str()).ok_or_else(|| {
        AgentError::Invalid(format!(
            "trajectory {}: the chat template rewrote history (turn {})",
            row.traj.id,
            row.turns.len()
        ))
    })?;
    let new = sampler.encode(suffix)?;
    let n = new.len();
    row.ids.extend(new);
    row.sampled.extend(std::iter::repeat_n(false, n));
    row.forced.extend(std::iter::repeat_n(false, n));
    row.logprob.extend(std::iter::repeat_n(0.0, n));
    row.text = rendered;
    Ok(())
}

/// Tokenises the finished trajectory with the scorer's function and checks it against what
/// was fed and sampled.
pub(crate) fn finish_row(row: Row, sampler: &Sampler) -> Result<Rollout> {
    let mut traj = row.traj;
    traj.reward = Some(row.reward);
    let tokenized = sampler
        .tok
        .tokenize_chat(&sampler.template, &traj, usize::MAX)?;
    let Some(tokens) = tokenized.single().cloned() else {
        return Err(AgentError::Invalid(format!(
            "trajectory {}: the chat template rendered it as per-turn segments (it rewrites \
             history), so the sampled ids cannot be one sequence",
            traj.id
        )));
    };
    let n = row.ids.len();
    if tokens.ids.len() < n || tokens.ids[..n] != row.ids[..] {
        return Err(AgentError::Invalid(format!(
            "trajectory {}: the scorer's ids differ from the ids the sampler fed",
            traj.id
        )));
    }
    let mut scored = vec![false; tokens.ids.len()];
    for span in tokens.spans.iter().filter(|s| s.is_action) {
        for s in tokens.action_targets(span) {
            scored[s] = true;
        }
    }
    let mut sampled = row.sampled;
    sampled.resize(tokens.ids.len(), false);
    if scored != sampled {
        return Err(AgentError::Invalid(format!(
            "trajectory {}: the scorer's action tokens differ from the sampled tokens",
            traj.id
        )));
    }
    let mut forced = row.forced;
    forced.resize(tokens.ids.len(), false);
    let mut logprob = row.logprob;
    logprob.resize(tokens.ids.len(), 0.0);
    let episode = Episode {
        id: traj.id.clone(),
        task_id: traj.task_id.clone(),
        lake_seed: row.job.lake.seed(),
        task: traj
            .messages
            .first()
            .and_then(|m| m.content.clone())
            .unwrap_or_default(),
        turns: row.turns,
    };
    Ok(Rollout {
        trajectory: traj,
        tokens,
        sampled,
        forced,
        logprob,
        episode,
        reward: row.reward,
    })
}

/// log softmax(logits)[i] over the full vocabulary, by the engine's one log-softmax
/// ([`row_stats`]), so sampled and scored log-probs are computed the same way.
pub(crate) fn log_softmax_at(logits: &[f32], i: usize) -> f32 {
    if i >= logits.len() {
        return f32::NEG_INFINITY;
    }
    row_stats(logits, i, None, false, &mut Vec::new()).logprob
}

/// Samples from softmax(logits / T) restricted to `allowed`; returns the id and its
/// log-prob under the unrestricted temperature-1 distribution.
fn sample(logits: &[f32], allowed: &[bool], temperature: f64, rng: &mut SplitMix64) -> (u32, f32) {
    let scaled: Vec<f64> = logits
        .iter()
        .zip(allowed.iter().chain(std::iter::repeat(&false)))
        .map(|(&z, &ok)| {
            if ok {
                z as f64 / temperature
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scaled.iter().map(|&z| (z - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.next_f64() * total;
    let mut pick = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            pick = i;
            break;
        }
        u -= w;
    }
    (pick as u32, log_softmax_at(logits, pick))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_respects_the_mask_and_temperature() {
        let logits = [0.0f32, 5.0, 1.0, 1.0];
        let allowed = [true, false, true, true];
        let mut rng = SplitMix64::new(7);
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[sample(&logits, &allowed, 1.0, &mut rng).0 as usize] += 1;
        }
        assert_eq!(counts[1], 0);
        // P(0) = 1 / (1 + 2e) = 0.155.
        let p0 = counts[0] as f64 / 4000.0;
        assert!((p0 - 1.0 / (1.0 + 2.0 * 1f64.exp())).abs() < 0.02, "{p0}");
        // Near-zero temperature: argmax among allowed.
        let (id, lp) = sample(&[0.0, 5.0, 1.0, 0.5], &allowed, 1e-3, &mut rng);
        assert_eq!(id, 2);
        let want = 1.0 - (1f64 + 5f64.exp() + 1f64.exp() + 0.5f64.exp()).ln();
        assert!((lp as f64 - want).abs() < 1e-5);
    }
}

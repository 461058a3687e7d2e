//! Reading judges' answers: a generative PRM's P(correct) per step, an LLM judge's success
//! probability.
//!
//! **PRM** (ThinkPRM, paper-notes §8). The verifier ends each step's critique with
//! `Step N is \boxed{correct}` or `Step N is \boxed{incorrect}`. For every `\boxed{` in the
//! answer:
//!
//! 1. its step number is the last `Step <digits>` before it on the same line; a verdict with
//!    none there is given to the step after the previous verdict's;
//! 2. with the answer's token log-probs, the position right after `\boxed{` is found and
//!    P(correct) = softmax over {correct, incorrect} of the log-probs its top-k assigns to
//!    those two words (a word absent from the top-k counts as −∞; neither present: no
//!    log-prob verdict here);
//! 3. otherwise the text itself is read: `correct` → 1, `incorrect` → 0 (the reference's
//!    fallback).
//!
//! A step with several verdicts takes its last one (the final judgement after any
//! reconsideration). A step with none gets 0.5, as in the reference. [`PrmVerdicts`] counts
//! how many steps came from log-probs, from the text, or were missing — the fallback rate is
//! part of the baseline's description and `padv judge` reports it.
//!
//! **LLM judge**: the last `PROBABILITY: p` line ([`judge_probability`]).

use serde::{Deserialize, Serialize};

/// One alternative at a generated position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopToken {
    /// Its text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f64,
}

/// One generated token with the top-k alternatives at its position (the engine's
/// `logprobs` answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedToken {
    /// The generated text of this token.
    pub token: String,
    /// The top-k alternatives at this position (usually including the token itself).
    pub top: Vec<TopToken>,
}

/// Where a step's P(correct) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictSource {
    /// The top log-probs after `\boxed{`.
    Logprobs,
    /// The verdict word in the text (log-probs absent or without either word).
    Text,
    /// No usable verdict for the step: 0.5.
    Missing,
}

/// A PRM's reading of one answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrmVerdicts {
    /// P(correct) of steps 1..=n, with its source.
    pub steps: Vec<(f64, VerdictSource)>,
    /// `\boxed{` occurrences in the answer.
    pub boxed: usize,
    /// Occurrences whose word is neither `correct` nor `incorrect` (and without log-probs).
    pub malformed: usize,
    /// Occurrences with a step number outside 1..=n (ignored).
    pub out_of_range: usize,
    /// Occurrences with no `Step N` on their line (given to the next step).
    pub unanchored: usize,
    /// Whether the answer carried token log-probs that line up with its text.
    pub had_logprobs: bool,
}

impl PrmVerdicts {
    /// Steps whose value came from `source`.
    pub fn count(&self, source: VerdictSource) -> usize {
        self.steps.iter().filter(|(_, s)| *s == source).count()
    }
}

const BOXED: &str = "\\boxed{";

/// The step number written on `line_before` (the text of the line up to the verdict): the
/// last `Step` (any case) followed by spaces and digits.
fn step_number(line_before: &str) -> Option<usize> {
    let lower = line_before.to_ascii_lowercase();
    let mut found = None;
    let mut from = 0;
    while let Some(p) = lower[from..].find("step") {
        let start = from + p + 4;
        let rest = &lower[start..];
        let digits_at = rest.len() - rest.trim_start().len();
        let digits: String = rest[digits_at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits_at > 0 && !digits.is_empty() {
            found = digits.parse().ok();
        }
        from = start;
    }
    found
}

/// The verdict word written after `\boxed{` (`after` starts right after the brace).
fn text_verdict(after: &str) -> Option<f64> {
    let inner = after.split('}').next()?.trim().to_ascii_lowercase();
    match inner.as_str() {
        "correct" => Some(1.0),
        "incorrect" => Some(0.0),
        _ => None,
    }
}

/// P(correct) at the position whose text starts at byte `at` of the answer, from the
/// tokens' top-k (`starts[i]` is the byte offset of token `i`).
fn logprob_verdict(tokens: &[GeneratedToken], starts: &[usize], at: usize) -> Option<f64> {
    // The token that contains byte `at` (or starts there).
    let i = match starts.binary_search(&at) {
        Ok(i) => i,
        Err(0) => return None,
        Err(i) => i - 1,
    };
    let tok = tokens.get(i)?;
    let prefix = tok.token.get(..at - starts[i])?;
    let (mut lc, mut li) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for alt in &tok.top {
        let Some(rest) = alt.token.strip_prefix(prefix) else {
            continue;
        };
        // A tokenizer may fuse the closing brace into the word (`correct}`).
        let word = rest.trim().trim_end_matches('}').trim_end();
        match word.to_ascii_lowercase().as_str() {
            "correct" => lc = lc.max(alt.logprob),
            "incorrect" => li = li.max(alt.logprob),
            _ => {}
        }
    }
    if lc == f64::NEG_INFINITY && li == f64::NEG_INFINITY {
        return None;
    }
    if li == f64::NEG_INFINITY {
        return Some(1.0);
    }
    if lc == f64::NEG_INFINITY {
        return Some(0.0);
    }
    // softmax over the two, computed stably.
    let m = lc.max(li);
    let (ec, ei) = ((lc - m).exp(), (li - m).exp());
    Some(ec / (ec + ei))
}

/// Reads P(correct) for steps `1..=n_steps` from a PRM's answer `text` and, when the engine
/// returned them, its generated tokens with their top-k (see the module documentation).
///
/// ```
/// use padv_core::judge::verdict::{prm_verdicts, VerdictSource};
/// let text = "Step 1 looks fine.\nStep 1 is \\boxed{correct}\nStep 2 is \\boxed{incorrect}";
/// let v = prm_verdicts(text, None, 3);
/// assert_eq!(v.steps, vec![(1.0, VerdictSource::Text), (0.0, VerdictSource::Text),
///                          (0.5, VerdictSource::Missing)]);
/// ```
pub fn prm_verdicts(text: &str, tokens: Option<&[GeneratedToken]>, n_steps: usize) -> PrmVerdicts {
    let mut out = PrmVerdicts {
        steps: vec![(0.5, VerdictSource::Missing); n_steps],
        ..PrmVerdicts::default()
    };
    // Token offsets, only if the tokens spell exactly the text.
    let aligned = tokens.and_then(|toks| {
        let mut starts = Vec::with_capacity(toks.len());
        let mut pos = 0;
        for t in toks {
            starts.push(pos);
            pos += t.token.len();
        }
        let joined: String = toks.iter().map(|t| t.token.as_str()).collect();
        (joined == text).then_some((toks, starts))
    });
    out.had_logprobs = aligned.is_some();
    let mut last_step = 0usize;
    let mut from = 0;
    while let Some(p) = text[from..].find(BOXED) {
        let at = from + p;
        let after = at + BOXED.len();
        from = after;
        out.boxed += 1;
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let step = match step_number(&text[line_start..at]) {
            Some(n) => n,
            None => {
                out.unanchored += 1;
                last_step + 1
            }
        };
        last_step = step;
        let from_lp = aligned
            .as_ref()
            .and_then(|(toks, starts)| logprob_verdict(toks, starts, after));
        let verdict = match from_lp {
            Some(p) => Some((p, VerdictSource::Logprobs)),
            None => text_verdict(&text[after..]).map(|p| (p, VerdictSource::Text)),
        };
        let Some(verdict) = verdict else {
            out.malformed += 1;
            continue;
        };
        if step == 0 || step > n_steps {
            out.out_of_range += 1;
            continue;
        }
        out.steps[step - 1] = verdict;
    }
    out
}

/// The success probability in an LLM judge's answer: the number after the last
/// `PROBABILITY:` (any case), a fraction in [0, 1] or a percentage (`73%`). None when there
/// is no such line or the number is out of range.
///
/// ```
/// use padv_core::judge::verdict::judge_probability;
/// assert_eq!(judge_probability("Looks good.\nPROBABILITY: 0.8"), Some(0.8));
/// assert_eq!(judge_probability("probability: 35%"), Some(0.35));
/// assert_eq!(judge_probability("PROBABILITY: high"), None);
/// ```
pub fn judge_probability(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let at = lower.rfind("probability:")? + "probability:".len();
    let rest = text[at..].trim_start();
    let rest = rest.strip_prefix("**").unwrap_or(rest).trim_start();
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut v: f64 = num.parse().ok()?;
    if rest[num.len()..].trim_start().starts_with('%') {
        v /= 100.0;
    }
    (v.is_finite() && (0.0..=1.0).contains(&v)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(t: &str, top: &[(&str, f64)]) -> GeneratedToken {
        GeneratedToken {
            token: t.into(),
            top: top
                .iter()
                .map(|(s, l)| TopToken {
                    token: s.to_string(),
                    logprob: *l,
                })
                .collect(),
        }
    }

    #[test]
    fn step_numbers() {
        assert_eq!(step_number("Step 3 is "), Some(3));
        assert_eq!(step_number("so step 2 and Step 12 is "), Some(12));
        assert_eq!(step_number("Steps are "), None);
        assert_eq!(step_number("Step3 is "), None);
        assert_eq!(step_number("The final "), None);
    }

    #[test]
    fn logprobs_give_the_two_word_softmax() {
        // "Step 1 is \boxed{" + "correct" + "}" with top-k at the verdict position.
        let toks = vec![
            tok("Step 1 is ", &[]),
            tok("\\boxed{", &[]),
            tok(
                "correct",
                &[("correct", -0.2), ("incorrect", -1.8), ("cor", -5.0)],
            ),
            tok("}", &[]),
            tok("\nStep 2 is \\boxed", &[]),
            tok("{incorrect", &[("{incorrect", -0.1), ("{correct", -2.4)]),
            tok("}", &[]),
        ];
        let text: String = toks.iter().map(|t| t.token.as_str()).collect();
        let v = prm_verdicts(&text, Some(&toks), 2);
        let p1 = 1.0 / (1.0 + (-1.8f64 + 0.2).exp());
        let p2 = 1.0 / (1.0 + (-0.1f64 + 2.4).exp());
        assert!((v.steps[0].0 - p1).abs() < 1e-12, "{:?}", v.steps);
        assert!((v.steps[1].0 - p2).abs() < 1e-12, "{:?}", v.steps);
        assert_eq!(v.count(VerdictSource::Logprobs), 2);
        assert!(v.had_logprobs);
    }

    #[test]
    fn fallbacks_and_counts() {
        // Tokens that do not spell the text are not used; the text is read instead.
        let toks = vec![tok("other", &[])];
        let text = "Step 1 is \\boxed{correct}\nStep 2 is \\boxed{maybe}\n\
                    Step 9 is \\boxed{correct}\nFinally \\boxed{incorrect}\nStep 1 is \\boxed{incorrect}";
        let v = prm_verdicts(text, Some(&toks), 4);
        assert!(!v.had_logprobs);
        // Step 1: last verdict "incorrect"; step 2 malformed -> missing; the unanchored
        // verdict after step 9 goes to step 10 (out of range); step 3, 4 missing.
        assert_eq!(
            v.steps,
            vec![
                (0.0, VerdictSource::Text),
                (0.5, VerdictSource::Missing),
                (0.5, VerdictSource::Missing),
                (0.5, VerdictSource::Missing)
            ]
        );
        assert_eq!(
            (v.boxed, v.malformed, v.out_of_range, v.unanchored),
            (5, 1, 2, 1)
        );
        // Only one of the two words in the top-k: the other counts as -inf.
        let toks = vec![
            tok("Step 1 is \\boxed{", &[]),
            tok("correct}", &[("correct}", -0.3)]),
        ];
        let text: String = toks.iter().map(|t| t.token.as_str()).collect();
        let v = prm_verdicts(&text, Some(&toks), 1);
        assert_eq!(v.steps, vec![(1.0, VerdictSource::Logprobs)]);
        // Neither word in the top-k: the text decides.
        let toks = vec![
            tok("Step 1 is \\boxed{", &[]),
            tok("incorrect}", &[("x", -0.3)]),
        ];
        let text: String = toks.iter().map(|t| t.token.as_str()).collect();
        let v = prm_verdicts(&text, Some(&toks), 1);
        assert_eq!(v.steps, vec![(0.0, VerdictSource::Text)]);
        // No verdict at all.
        let v = prm_verdicts("I cannot tell.", None, 2);
        assert_eq!(v.count(VerdictSource::Missing), 2);
    }

    #[test]
    fn probabilities() {
        assert_eq!(judge_probability("PROBABILITY: 1"), Some(1.0));
        assert_eq!(
            judge_probability("Probability: 0.2\nPROBABILITY: **0.6**"),
            Some(0.6)
        );
        assert_eq!(judge_probability("PROBABILITY: 1.5"), None);
        assert_eq!(judge_probability("PROBABILITY: 150%"), None);
        assert_eq!(judge_probability("no line"), None);
        assert_eq!(judge_probability("PROBABILITY: ."), None);
    }
}

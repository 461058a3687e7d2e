//! The two engines' wire formats for teacher-forced prompt log-probs, and the conversion of
//! an answer into [`PositionLogprobs`].
//!
//! Both engines take the prompt as token ids, so tokenisation and chat templating stay in
//! padv and the policy and the reference see identical ids; the echoed ids are checked
//! against those sent, which catches a server that re-tokenised or truncated the prompt.
//!
//! * vLLM, `POST /v1/completions` with `prompt_logprobs: k`: `choices[0].prompt_logprobs[t]`
//!   is `null` for t = 0, else `{"<id>": {"logprob", "rank", "decoded_token"}}` holding the
//!   k most likely tokens **and** the actual prompt token `ids[t]` (k or k + 1 entries).
//!   `choices[0].prompt_token_ids` echoes the ids.
//! * SGLang, `POST /generate` with `return_logprob`, `logprob_start_len: 0`,
//!   `top_logprobs_num: k`: `meta_info.input_token_logprobs[t] = [logprob | null, id, text]`
//!   (null for t = 0) and `meta_info.input_top_logprobs[t]` = the top-k as such triples.
//!
//! From a top-k only the DeepConf top-20 mean can be had exactly (with k ≥ 20); entropy and
//! the vocabulary mean need the whole distribution and are left `None`.

use std::fmt;

use padv_core::PositionLogprobs;

use crate::sparse::{SglangSeed, VllmSeed};
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, IgnoredAny};
use serde::{Deserialize, Serialize};

/// How many of the largest log-probs the record's `policy_topk_mean` averages (DeepConf's
/// top-20 mean, as the local engine computes it).
pub const TOPK_MEAN_K: usize = 20;

/// How far above 0 a log-probability read from a server may lie and still be taken (as read:
/// a top-1 log-prob of a near-certain token can come out as +1e-7 after the server's own
/// rounding). Anything larger, or not finite, is not a log-probability (a vLLM run that
/// returns raw logits answers +0.7 or 1e30) and the answer is refused.
pub const LOGPROB_TOLERANCE: f64 = 1e-4;

/// `value` when it is a log-probability (finite, ≤ [`LOGPROB_TOLERANCE`]), else the error
/// naming `field` and the value.
fn logprob(field: &dyn Fn() -> String, value: f64) -> Result<f64, String> {
    if value.is_finite() && value <= LOGPROB_TOLERANCE {
        return Ok(value);
    }
    Err(format!(
        "{} is {value}, not a log-probability (finite and <= {LOGPROB_TOLERANCE}); is the \
         server returning raw logits instead of log-probs (vLLM: --logprobs-mode raw_logprobs)?",
        field()
    ))
}

/// Which engine an endpoint runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// vLLM's OpenAI-compatible server.
    Vllm,
    /// SGLang's native server.
    Sglang,
}

impl EngineKind {
    /// The scoring route.
    pub fn score_path(self) -> &'static str {
        match self {
            EngineKind::Vllm => "/v1/completions",
            EngineKind::Sglang => "/generate",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Vllm => "vllm",
            EngineKind::Sglang => "sglang",
        })
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "vllm" => Ok(EngineKind::Vllm),
            "sglang" => Ok(EngineKind::Sglang),
            _ => Err(format!(
                "unknown engine kind {s:?} (expected vllm or sglang)"
            )),
        }
    }
}

#[derive(Serialize)]
struct VllmRequest<'a> {
    model: &'a str,
    prompt: &'a [u32],
    max_tokens: u32,
    prompt_logprobs: usize,
    return_tokens_as_token_ids: bool,
    return_token_ids: bool,
    add_special_tokens: bool,
    temperature: f32,
}

#[derive(Serialize)]
struct SglangSampling {
    max_new_tokens: u32,
    temperature: f32,
}

#[derive(Serialize)]
struct SglangRequest<'a> {
    input_ids: &'a [u32],
    sampling_params: SglangSampling,
    return_logprob: bool,
    logprob_start_len: usize,
    top_logprobs_num: usize,
    return_text_in_logprobs: bool,
}

/// The JSON body that asks `kind` for the prompt log-probs of `ids` with the top `k`.
///
/// One token is generated (`max_tokens: 1`): vLLM needs at least one, and it costs one decode
/// step after the prefill that computes the prompt log-probs. Temperature 1 for clarity:
/// prompt log-probs are the raw log-softmax in both engines anyway.
pub fn request_body(kind: EngineKind, model: &str, ids: &[u32], k: usize) -> Vec<u8> {
    let out = match kind {
        EngineKind::Vllm => serde_json::to_vec(&VllmRequest {
            model,
            prompt: ids,
            max_tokens: 1,
            prompt_logprobs: k,
            return_tokens_as_token_ids: true,
            return_token_ids: true,
            add_special_tokens: false,
            temperature: 1.0,
        }),
        EngineKind::Sglang => serde_json::to_vec(&SglangRequest {
            input_ids: ids,
            sampling_params: SglangSampling {
                max_new_tokens: 1,
                temperature: 1.0,
            },
            return_logprob: true,
            logprob_start_len: 0,
            top_logprobs_num: k,
            return_text_in_logprobs: false,
        }),
    };
    // Serialising integers, bools, a float and a string into a Vec cannot fail.
    out.unwrap_or_default()
}

// A vLLM answer holds ~21 entries per prompt token, so parsing it is the client's main
// cost: only target positions are parsed (`crate::sparse`), keys are borrowed and entries
// land in one small Vec per position, no map or String per entry.

#[derive(Deserialize)]
struct VllmLogprob {
    logprob: f64,
}

/// One position's `{"<id>": {"logprob": …}, …}` as (key, log-prob) pairs in answer order.
struct Entries<'a>(Vec<(&'a str, f64)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from token id to {logprob, rank, decoded_token}")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(21));
                while let Some(k) = m.next_key::<&'de str>()? {
                    out.push((k, m.next_value::<VllmLogprob>()?.logprob));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

type Triple = (Option<f64>, u32, IgnoredAny);

/// What to extract from an answer.
#[derive(Debug, Clone, Copy)]
pub struct Extract<'a> {
    /// The ids sent.
    pub ids: &'a [u32],
    /// Positions to report (ascending, ≥ 1, < `ids.len()`).
    pub targets: &'a [usize],
    /// The top-k asked for.
    pub k: usize,
    /// Whether to compute the top-20 mean (needs `k ≥ 20`).
    pub topk_mean: bool,
    /// Vocabulary size: the top-20 mean averages min(20, V) values.
    pub vocab_size: usize,
}

/// Converts an answer of `kind` into log-probs at `x.targets`. The error names the field.
pub fn parse_response(
    kind: EngineKind,
    body: &[u8],
    x: &Extract<'_>,
) -> Result<PositionLogprobs, String> {
    match kind {
        EngineKind::Vllm => parse_vllm(body, x),
        EngineKind::Sglang => parse_sglang(body, x),
    }
}

fn json_error(e: serde_json::Error) -> String {
    format!("body is not the documented JSON: {e}")
}

fn check_echo(
    field: &str,
    got: impl ExactSizeIterator<Item = u32>,
    sent: &[u32],
) -> Result<(), String> {
    if got.len() != sent.len() {
        return Err(format!(
            "{field} has {} token ids but {} were sent (the server truncated or re-tokenised the prompt)",
            got.len(),
            sent.len()
        ));
    }
    for (i, (g, s)) in got.zip(sent).enumerate() {
        if g != *s {
            return Err(format!(
                "{field}[{i}] is token {g} but token {s} was sent (tokenizer mismatch between padv and the server?)"
            ));
        }
    }
    Ok(())
}

/// Mean of the `min(20, V)` largest of `values` (f64 sum, as the local engine does).
fn topk_mean(field: &str, values: &mut [f64], vocab_size: usize) -> Result<f32, String> {
    let k = TOPK_MEAN_K.min(vocab_size.max(1));
    if values.len() < k {
        return Err(format!(
            "{field} lists {} log-probs, fewer than the {k} the top-{TOPK_MEAN_K} mean needs",
            values.len()
        ));
    }
    values.sort_unstable_by(|a, b| b.total_cmp(a));
    Ok((values[..k].iter().sum::<f64>() / k as f64) as f32)
}

fn empty_output(x: &Extract<'_>) -> PositionLogprobs {
    PositionLogprobs {
        logprob: Vec::with_capacity(x.targets.len()),
        topk_mean: x.topk_mean.then(|| Vec::with_capacity(x.targets.len())),
        entropy: None,
        vocab_mean: None,
    }
}

fn parse_vllm(body: &[u8], x: &Extract<'_>) -> Result<PositionLogprobs, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parts = VllmSeed::<Option<Entries<'_>>>(x.targets, PhantomData)
        .deserialize(&mut de)
        .and_then(|p| de.end().map(|_| p))
        .map_err(json_error)?;
    if !parts.has_choice {
        return Err("choices[0] is missing".into());
    }
    let echoed = parts.prompt_token_ids.ok_or(
        "choices[0].prompt_token_ids is missing (vLLM older than 0.10 without return_token_ids?)",
    )?;
    check_echo("choices[0].prompt_token_ids", echoed.into_iter(), x.ids)?;
    let lps = parts
        .prompt_logprobs
        .ok_or("choices[0].prompt_logprobs is missing (is prompt_logprobs supported and --max-logprobs >= k?)")?;
    if lps.len != x.ids.len() || lps.at.len() != x.targets.len() {
        return Err(format!(
            "choices[0].prompt_logprobs has {} entries for {} prompt tokens",
            lps.len,
            x.ids.len()
        ));
    }
    let mut out = empty_output(x);
    let mut scratch = Vec::with_capacity(x.k + 1);
    let mut seen: Vec<u32> = Vec::with_capacity(x.k + 1);
    for (&t, entry) in x.targets.iter().zip(&lps.at) {
        let field = || format!("choices[0].prompt_logprobs[{t}]");
        let entry = entry
            .as_ref()
            .ok_or_else(|| format!("{} is null", field()))?;
        let want = x.ids[t];
        let mut actual = None;
        scratch.clear();
        seen.clear();
        for &(key, lp) in &entry.0 {
            let id = key
                .strip_prefix("token_id:")
                .unwrap_or(key)
                .parse::<u32>()
                .map_err(|_| format!("{} has key {key:?}, not a token id", field()))?;
            // serde_json keeps the last of repeated keys: which value the server meant is
            // unknowable, so the answer is refused.
            if seen.contains(&id) {
                return Err(format!(
                    "{} lists token {id} twice (a repeated key): the answer is ambiguous",
                    field()
                ));
            }
            seen.push(id);
            let lp = logprob(&|| format!("{}[{key:?}].logprob", field()), lp)?;
            if id == want {
                actual = Some(lp);
            }
            scratch.push(lp);
        }
        let actual = actual.ok_or_else(|| {
            format!(
                "{} lacks the prompt token {want} (vLLM always includes it)",
                field()
            )
        })?;
        out.logprob.push(actual as f32);
        if let Some(m) = out.topk_mean.as_mut() {
            m.push(topk_mean(&field(), &mut scratch, x.vocab_size)?);
        }
    }
    Ok(out)
}

fn parse_sglang(body: &[u8], x: &Extract<'_>) -> Result<PositionLogprobs, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parts = SglangSeed::<Triple, Option<Vec<Triple>>>(x.targets, PhantomData)
        .deserialize(&mut de)
        .and_then(|p| de.end().map(|_| p))
        .map_err(json_error)?;
    if !parts.has_meta {
        return Err("meta_info is missing".into());
    }
    let tokens = parts
        .input_token_logprobs
        .ok_or("meta_info.input_token_logprobs is missing (was return_logprob honoured?)")?;
    check_echo(
        "meta_info.input_token_logprobs (token ids)",
        tokens.iter().map(|t| t.1),
        x.ids,
    )?;
    let top = if x.topk_mean {
        let top = parts
            .input_top_logprobs
            .ok_or("meta_info.input_top_logprobs is missing (was top_logprobs_num honoured?)")?;
        if top.len != x.ids.len() || top.at.len() != x.targets.len() {
            return Err(format!(
                "meta_info.input_top_logprobs has {} entries for {} prompt tokens",
                top.len,
                x.ids.len()
            ));
        }
        Some(top.at)
    } else {
        None
    };
    let mut out = empty_output(x);
    let mut scratch = Vec::with_capacity(x.k);
    for (j, &t) in x.targets.iter().enumerate() {
        let lp = tokens[t]
            .0
            .ok_or_else(|| format!("meta_info.input_token_logprobs[{t}][0] is null"))?;
        let lp = logprob(&|| format!("meta_info.input_token_logprobs[{t}][0]"), lp)?;
        out.logprob.push(lp as f32);
        if let (Some(m), Some(top)) = (out.topk_mean.as_mut(), top.as_ref()) {
            let field = format!("meta_info.input_top_logprobs[{t}]");
            let list = top[j].as_ref().ok_or_else(|| format!("{field} is null"))?;
            scratch.clear();
            for (i, e) in list.iter().enumerate() {
                let v = e.0.ok_or_else(|| format!("{field}[{i}][0] is null"))?;
                scratch.push(logprob(&|| format!("{field}[{i}][0]"), v)?);
            }
            m.push(topk_mean(&field, &mut scratch, x.vocab_size)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract<'a>(ids: &'a [u32], targets: &'a [usize], topk: bool) -> Extract<'a> {
        Extract {
            ids,
            targets,
            k: 2,
            topk_mean: topk,
            vocab_size: 2,
        }
    }

    #[test]
    fn vllm_answer_outside_the_top_k_is_found_and_excluded_from_the_mean() {
        // V = 2 so the top-20 mean averages the 2 largest; position 2's prompt token (id 9)
        // is listed with rank 3 beside the top-2 and must not enter the mean.
        let body = br#"{"choices":[{"prompt_token_ids":[5,7,9],"prompt_logprobs":[null,
            {"7":{"logprob":-0.5,"rank":1,"decoded_token":"token_id:7"},"8":{"logprob":-1.0,"rank":2}},
            {"1":{"logprob":-0.25,"rank":1},"2":{"logprob":-0.75,"rank":2},"token_id:9":{"logprob":-4.0,"rank":3}}]}]}"#;
        let out =
            parse_response(EngineKind::Vllm, body, &extract(&[5, 7, 9], &[1, 2], true)).unwrap();
        assert_eq!(out.logprob, vec![-0.5, -4.0]);
        assert_eq!(out.topk_mean, Some(vec![-0.75, -0.5]));
        assert_eq!(out.entropy, None);
        assert_eq!(out.vocab_mean, None);
    }

    #[test]
    fn sglang_answer_is_read_by_position() {
        let body = br#"{"text":"","meta_info":{"input_token_logprobs":[[null,5,null],[-0.5,7,null],[-4.0,9,"x"]],
            "input_top_logprobs":[null,[[-0.5,7,null],[-1.0,8,null]],[[-0.25,1,null],[-0.75,2,null]]]}}"#;
        let out =
            parse_response(EngineKind::Sglang, body, &extract(&[5, 7, 9], &[2], true)).unwrap();
        assert_eq!(out.logprob, vec![-4.0]);
        assert_eq!(out.topk_mean, Some(vec![-0.5]));
    }

    #[test]
    fn sglang_top_lists_are_counted_even_where_not_read() {
        // Position 1 is not a target, so its list is skipped unparsed; a missing list must
        // still be caught by the count, and a null meta_info is "missing".
        let body =
            br#"{"meta_info":{"input_token_logprobs":[[null,5,null],[-0.5,7,null],[-4.0,9,"x"]],
            "input_top_logprobs":[null,[[-0.25,1,null],[-0.75,2,null]]]}}"#;
        let e =
            parse_response(EngineKind::Sglang, body, &extract(&[5, 7, 9], &[2], true)).unwrap_err();
        assert!(e.contains("has 2 entries for 3 prompt tokens"), "{e}");
        let e = parse_response(
            EngineKind::Sglang,
            br#"{"meta_info":null}"#,
            &extract(&[5, 7, 9], &[2], true),
        )
        .unwrap_err();
        assert_eq!(e, "meta_info is missing");
        let e = parse_response(
            EngineKind::Sglang,
            br#"{"meta_info":{"input_token_logprobs":[[null,5,null]]}} trailing"#,
            &extract(&[5], &[], false),
        )
        .unwrap_err();
        assert!(e.contains("not the documented JSON"), "{e}");
    }

    #[test]
    fn impossible_log_probs_are_refused_naming_position_and_value() {
        let vllm = |lp: &str, other: &str| {
            format!(
                r#"{{"choices":[{{"prompt_token_ids":[5,7],"prompt_logprobs":[null,
                {{"7":{{"logprob":{lp}}},"8":{{"logprob":{other}}}}}]}}]}}"#
            )
        };
        // Raw logits (+0.7), a huge value, and a top-k entry above 0.
        for (lp, other, bad) in [
            ("0.7", "-1.0", "0.7"),
            ("1e30", "-1.0", "1e30"),
            ("-0.5", "0.2", "0.2"),
        ] {
            let body = vllm(lp, other);
            let e = parse_response(
                EngineKind::Vllm,
                body.as_bytes(),
                &extract(&[5, 7], &[1], true),
            )
            .unwrap_err();
            assert!(e.contains("prompt_logprobs[1]"), "{e}");
            assert!(e.contains("not a log-probability"), "{e}");
            let shown = bad.parse::<f64>().unwrap().to_string();
            assert!(e.contains(&shown), "{e}");
        }
        // Within the tolerance: taken as read.
        let body = vllm("0.00001", "-1.0");
        let out = parse_response(
            EngineKind::Vllm,
            body.as_bytes(),
            &extract(&[5, 7], &[1], false),
        )
        .unwrap();
        assert_eq!(out.logprob, vec![0.00001]);
        let body = br#"{"meta_info":{"input_token_logprobs":[[null,5,null],[0.7,7,null]]}}"#;
        let e =
            parse_response(EngineKind::Sglang, body, &extract(&[5, 7], &[1], false)).unwrap_err();
        assert!(e.contains("input_token_logprobs[1][0] is 0.7"), "{e}");
    }

    #[test]
    fn a_repeated_token_key_is_refused() {
        // serde_json would keep the last "7"; which one the server meant is unknowable.
        let body = br#"{"choices":[{"prompt_token_ids":[5,7],"prompt_logprobs":[null,
            {"7":{"logprob":-0.5},"8":{"logprob":-1.0},"7":{"logprob":-3.0}}]}]}"#;
        let e = parse_response(EngineKind::Vllm, body, &extract(&[5, 7], &[1], false)).unwrap_err();
        assert!(e.contains("lists token 7 twice"), "{e}");
        // "7" and "token_id:7" name the same token.
        let body = br#"{"choices":[{"prompt_token_ids":[5,7],"prompt_logprobs":[null,
            {"7":{"logprob":-0.5},"token_id:7":{"logprob":-3.0}}]}]}"#;
        let e = parse_response(EngineKind::Vllm, body, &extract(&[5, 7], &[1], false)).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn wrong_echo_is_named() {
        let body = br#"{"choices":[{"prompt_token_ids":[5,6,9],"prompt_logprobs":[null,{},{}]}]}"#;
        let e =
            parse_response(EngineKind::Vllm, body, &extract(&[5, 7, 9], &[1], false)).unwrap_err();
        assert!(
            e.contains("prompt_token_ids[1] is token 6 but token 7"),
            "{e}"
        );
    }

    #[test]
    fn missing_prompt_token_and_short_top_lists_are_errors() {
        let body = br#"{"choices":[{"prompt_token_ids":[5,7],"prompt_logprobs":[null,{"8":{"logprob":-1.0}}]}]}"#;
        let e = parse_response(EngineKind::Vllm, body, &extract(&[5, 7], &[1], false)).unwrap_err();
        assert!(e.contains("lacks the prompt token 7"), "{e}");
        let body = br#"{"meta_info":{"input_token_logprobs":[[null,5,null],[-0.5,7,null]],
            "input_top_logprobs":[null,[[-0.5,7,null]]]}}"#;
        let e =
            parse_response(EngineKind::Sglang, body, &extract(&[5, 7], &[1], true)).unwrap_err();
        assert!(e.contains("input_top_logprobs[1] lists 1 log-probs"), "{e}");
    }

    #[test]
    fn request_bodies_carry_the_documented_fields() {
        let v: serde_json::Value =
            serde_json::from_slice(&request_body(EngineKind::Vllm, "pol", &[1, 2], 20)).unwrap();
        assert_eq!(v["prompt"], serde_json::json!([1, 2]));
        assert_eq!(v["prompt_logprobs"], 20);
        assert_eq!(v["max_tokens"], 1);
        assert_eq!(v["return_tokens_as_token_ids"], true);
        assert_eq!(v["model"], "pol");
        let v: serde_json::Value =
            serde_json::from_slice(&request_body(EngineKind::Sglang, "", &[1, 2], 20)).unwrap();
        assert_eq!(v["input_ids"], serde_json::json!([1, 2]));
        assert_eq!(v["logprob_start_len"], 0);
        assert_eq!(v["top_logprobs_num"], 20);
        assert_eq!(v["sampling_params"]["max_new_tokens"], 1);
    }
}

//! Reading only the target positions of a vLLM answer.
//!
//! `choices[0].prompt_logprobs` holds ~21 `{logprob, rank, decoded_token}` objects per prompt
//! token, and parsing all of them is most of the client's work; action tokens are a fraction
//! of the prompt. These seeds walk the answer once and build entries only at the target
//! positions, skipping the rest with `IgnoredAny` (a scan without float conversion or
//! allocation), while still counting the entries so a short list is caught.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The elements of an array at `targets` (strictly ascending), and the array's length.
#[derive(Debug)]
pub struct SparseOut<T> {
    /// Number of elements.
    pub len: usize,
    /// Element `targets[j]` at `at[j]` (shorter when the array is).
    pub at: Vec<T>,
}

/// Seed for an array or `null` (read as None).
pub struct Sparse<'t, T> {
    targets: &'t [usize],
    _t: PhantomData<T>,
}

impl<'t, T> Sparse<'t, T> {
    pub fn new(targets: &'t [usize]) -> Self {
        Self {
            targets,
            _t: PhantomData,
        }
    }
}

struct SparseSeq<'t, T>(&'t [usize], PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SparseSeq<'_, T> {
    type Value = SparseOut<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array with one entry per prompt token")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let targets = self.0;
        let mut at = Vec::with_capacity(targets.len());
        let mut len = 0;
        loop {
            if at.len() < targets.len() && targets[at.len()] == len {
                match seq.next_element::<T>()? {
                    Some(v) => at.push(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            len += 1;
        }
        Ok(SparseOut { len, at })
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Sparse<'_, T> {
    type Value = Option<SparseOut<T>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array with one entry per prompt token, or null")
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(SparseSeq(self.targets, PhantomData))
            .map(Some)
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Sparse<'_, T> {
    type Value = Option<SparseOut<T>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

/// What is read from a vLLM answer.
pub struct VllmParts<T> {
    /// `choices` has an element 0.
    pub has_choice: bool,
    /// `choices[0].prompt_logprobs` at the targets.
    pub prompt_logprobs: Option<SparseOut<T>>,
    /// `choices[0].prompt_token_ids`.
    pub prompt_token_ids: Option<Vec<u32>>,
}

/// Seed for a whole vLLM `/v1/completions` answer.
pub struct VllmSeed<'t, T>(pub &'t [usize], pub PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for VllmSeed<'_, T> {
    type Value = VllmParts<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for VllmSeed<'_, T> {
    type Value = VllmParts<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a completion object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
        let mut out = VllmParts {
            has_choice: false,
            prompt_logprobs: None,
            prompt_token_ids: None,
        };
        while let Some(key) = m.next_key::<Cow<'de, str>>()? {
            if key == "choices" {
                out = m.next_value_seed(Choices(self.0, PhantomData))?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

struct Choices<'t, T>(&'t [usize], PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Choices<'_, T> {
    type Value = VllmParts<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Choices<'_, T> {
    type Value = VllmParts<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of choices")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = seq.next_element_seed(Choice(self.0, PhantomData))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(first.unwrap_or(VllmParts {
            has_choice: false,
            prompt_logprobs: None,
            prompt_token_ids: None,
        }))
    }
}

struct Choice<'t, T>(&'t [usize], PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Choice<'_, T> {
    type Value = VllmParts<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Choice<'_, T> {
    type Value = VllmParts<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a choice object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
        let mut out = VllmParts {
            has_choice: true,
            prompt_logprobs: None,
            prompt_token_ids: None,
        };
        while let Some(key) = m.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "prompt_logprobs" => {
                    out.prompt_logprobs = m.next_value_seed(Sparse::new(self.0))?;
                }
                "prompt_token_ids" => out.prompt_token_ids = m.next_value()?,
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// What is read from an SGLang answer.
pub struct SglangParts<Tok, Top> {
    /// `meta_info` is present and not null.
    pub has_meta: bool,
    /// `meta_info.input_token_logprobs`, whole (its ids are checked against those sent).
    pub input_token_logprobs: Option<Vec<Tok>>,
    /// `meta_info.input_top_logprobs` at the targets.
    pub input_top_logprobs: Option<SparseOut<Top>>,
}

/// Seed for a whole SGLang `/generate` answer. The per-token triples are read whole (every
/// echoed id is checked), the top-k lists only at the targets: they are ~20 times larger.
pub struct SglangSeed<'t, Tok, Top>(pub &'t [usize], pub PhantomData<(Tok, Top)>);

impl<'de, Tok: Deserialize<'de>, Top: Deserialize<'de>> DeserializeSeed<'de>
    for SglangSeed<'_, Tok, Top>
{
    type Value = SglangParts<Tok, Top>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, Tok: Deserialize<'de>, Top: Deserialize<'de>> Visitor<'de> for SglangSeed<'_, Tok, Top> {
    type Value = SglangParts<Tok, Top>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a generate answer object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
        let mut out = SglangParts {
            has_meta: false,
            input_token_logprobs: None,
            input_top_logprobs: None,
        };
        while let Some(key) = m.next_key::<Cow<'de, str>>()? {
            if key == "meta_info" {
                out = m.next_value_seed(OptionalMeta(self.0, PhantomData))?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// `meta_info`, or `null` (read as absent).
struct OptionalMeta<'t, Tok, Top>(&'t [usize], PhantomData<(Tok, Top)>);

impl<'de, Tok: Deserialize<'de>, Top: Deserialize<'de>> DeserializeSeed<'de>
    for OptionalMeta<'_, Tok, Top>
{
    type Value = SglangParts<Tok, Top>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, Tok: Deserialize<'de>, Top: Deserialize<'de>> Visitor<'de>
    for OptionalMeta<'_, Tok, Top>
{
    type Value = SglangParts<Tok, Top>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a meta_info object or null")
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(SglangParts {
            has_meta: false,
            input_token_logprobs: None,
            input_top_logprobs: None,
        })
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
        let mut out = SglangParts {
            has_meta: true,
            input_token_logprobs: None,
            input_top_logprobs: None,
        };
        while let Some(key) = m.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "input_token_logprobs" => out.input_token_logprobs = m.next_value()?,
                "input_top_logprobs" => {
                    out.input_top_logprobs = m.next_value_seed(Sparse::new(self.0))?;
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

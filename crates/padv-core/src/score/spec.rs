//! What to compute: the scoring method, its aggregations, PA mode and β ([`ScoreSpec`]), and
//! the aggregation grid that the evaluations sweep.

use serde::{Deserialize, Serialize};

use super::aggregate::{StepAgg, TokenAgg};
use super::names::named_enum;
use super::ScoreError;
use crate::judge::JudgeName;

named_enum! {
    /// How PA combines the two models' token arrays within a step.
    #[serde(rename_all = "snake_case")]
    pub enum PaMode ("PA mode") {
        /// `β·(agg(policy) − agg(reference))`: the reference implementation's choice.
        DiffOfAgg = "diff_of_agg",
        /// `β·agg(policy − reference)`: aggregates the per-token advantages themselves.
        /// Identical to `diff-of-agg` for mean, sum and last; different for min and max.
        AggOfDiff = "agg_of_diff",
    }
}

named_enum! {
    /// A scoring method. Every method is oriented so that a HIGHER score means the trajectory
    /// is MORE likely to succeed (except the `*_refimpl` variants, which reproduce the
    /// reference implementation's sign exactly; see each variant). β scales the log-prob
    /// methods (`pa`, `policy_logprob`, `reference_logprob`) only.
    #[serde(rename_all = "snake_case")]
    pub enum Method ("method") {
        /// Progress advantage, `β·(log π_θ − log π_ref)` per token (needs `reference`).
        Pa = "pa",
        /// `β·log π_θ`: PA without the reference (the paper's main ablation).
        PolicyLogprob = "policy_logprob",
        /// `β·log π_ref` (needs `reference`).
        ReferenceLogprob = "reference_logprob",
        /// Self-certainty (Kang et al.): per token KL(U‖p) = −vocab_mean − ln V, with V the
        /// record's `vocab_size`. When `vocab_size` is absent the constant `ln V` is omitted,
        /// which changes no ranking as long as all compared records agree on its presence
        /// and value. Needs `policy_vocab_mean`. β is not applied.
        SelfCertainty = "self_certainty",
        /// DeepConf token confidence `C = −topk_mean` (negated mean top-20 log-prob; larger =
        /// more peaked), with the chosen aggregations. Needs `policy_topk_mean`.
        Deepconf = "deepconf",
        /// DeepConf-Tail: as `deepconf` with the step aggregation forced to `last`.
        DeepconfTail = "deepconf_tail",
        /// DeepConf-B10: as `deepconf` with the step aggregation forced to `bottom10`.
        DeepconfBottom10 = "deepconf_bottom10",
        /// Negative entropy `−H` per token (needs `policy_entropy`).
        NegEntropy = "neg_entropy",
        /// The reference implementation's "self-certainty": the RAW mean top-20 log-prob
        /// (sign inverted relative to both papers: a peaked distribution scores LOWER).
        SelfCertaintyRefimpl = "self_certainty_refimpl",
        /// The reference implementation's DeepConf-Tail: raw mean top-20 log-prob, step `last`.
        DeepconfTailRefimpl = "deepconf_tail_refimpl",
        /// The reference implementation's DeepConf-B10: raw mean top-20 log-prob, `bottom10`.
        DeepconfBottom10Refimpl = "deepconf_bottom10_refimpl",
        /// An external judge's scores stored in the record (`judges.<name>`): its trajectory
        /// value, or the step aggregation of its step values. The spec's `judge` names it; the
        /// token aggregation, PA mode and β do not apply. Grids add one group of cells per
        /// judge found in the records.
        Judge = "judge",
    }
}

named_enum! {
    /// Which of a judge's values a judge cell reads.
    #[serde(rename_all = "snake_case")]
    pub enum JudgeLevel ("judge level") {
        /// The judge's one value for the whole trajectory (outcome RM, LLM judge).
        Trajectory = "trajectory",
        /// Its per-step values, aggregated with the spec's step aggregation (PRM).
        Steps = "steps",
    }
}

/// The judge a [`Method::Judge`] cell reads, and at which level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JudgeRef {
    /// The judge's name (the key in the records' `judges`).
    pub name: JudgeName,
    /// Trajectory value or step values.
    pub level: JudgeLevel,
}

/// What the per-method parts of a report group cells by: the method, and for judge cells
/// the judge (each judge is its own row, with its own cross-validated choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MethodGroup {
    pub method: Method,
    pub judge: Option<JudgeName>,
}

impl MethodGroup {
    /// The row name: the method's, or `judge:NAME`.
    pub fn name(&self) -> String {
        match self.judge {
            Some(j) => format!("judge:{j}"),
            None => self.method.name().to_string(),
        }
    }
}

impl Method {
    /// The step aggregation this method always uses, whatever the spec says.
    pub fn forced_step_agg(self) -> Option<StepAgg> {
        match self {
            Method::DeepconfTail | Method::DeepconfTailRefimpl => Some(StepAgg::Last),
            Method::DeepconfBottom10 | Method::DeepconfBottom10Refimpl => Some(StepAgg::Bottom10),
            _ => None,
        }
    }

    /// Whether steps with no tokens (truncated away) are skipped rather than scored `0.0`.
    /// Log-prob methods keep them as `0.0` (stable step count, as the reference code does);
    /// certainty methods have no value for an empty step and skip it (judges have no token
    /// steps at all).
    pub fn skips_empty_steps(self) -> bool {
        !matches!(
            self,
            Method::Pa | Method::PolicyLogprob | Method::ReferenceLogprob
        )
    }

    /// Whether [`PaMode`] affects this method (only PA).
    pub fn uses_pa_mode(self) -> bool {
        self == Method::Pa
    }

    /// Whether β multiplies this method's step values (the log-prob methods only).
    pub fn uses_beta(self) -> bool {
        !self.skips_empty_steps()
    }

    /// The record fields this method reads besides `policy`, by their JSON names.
    pub fn required_fields(self) -> &'static [&'static str] {
        match self {
            Method::Pa | Method::ReferenceLogprob => &["reference"],
            Method::PolicyLogprob => &[],
            Method::SelfCertainty => &["policy_vocab_mean"],
            Method::NegEntropy => &["policy_entropy"],
            Method::Deepconf
            | Method::DeepconfTail
            | Method::DeepconfBottom10
            | Method::SelfCertaintyRefimpl
            | Method::DeepconfTailRefimpl
            | Method::DeepconfBottom10Refimpl => &["policy_topk_mean"],
            Method::Judge => &["judges"],
        }
    }

    /// Whether the token aggregation affects this method (not for judges: a judge gives one
    /// value per step).
    pub fn uses_token_agg(self) -> bool {
        self != Method::Judge
    }
}

/// One scoring configuration: a grid cell.
///
/// Build it with [`ScoreSpec::builder`] (validates β) or write the fields directly. Scoring
/// always uses [`ScoreSpec::effective_step_agg`], so a forced step aggregation wins over
/// `step_agg`, and `pa_mode` is ignored by methods other than PA.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreSpec {
    /// The scoring method.
    pub method: Method,
    /// Token → step aggregation.
    pub token_agg: TokenAgg,
    /// Step → trajectory aggregation.
    pub step_agg: StepAgg,
    /// PA combination mode (PA only).
    pub pa_mode: PaMode,
    /// Scale of the log-prob methods' step values. Every evaluation is rank-based, so any
    /// β > 0 gives the same results; 1.0 as in the reference code.
    pub beta: f64,
    /// The judge read by [`Method::Judge`] (None for every other method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeRef>,
}

impl Default for ScoreSpec {
    /// PA, mean tokens, mean steps, diff-of-agg, β = 1: the reference implementation's default.
    fn default() -> Self {
        ScoreSpec {
            method: Method::Pa,
            token_agg: TokenAgg::Mean,
            step_agg: StepAgg::Mean,
            pa_mode: PaMode::DiffOfAgg,
            beta: 1.0,
            judge: None,
        }
    }
}

impl ScoreSpec {
    /// A builder starting from [`ScoreSpec::default`].
    pub fn builder() -> ScoreSpecBuilder {
        ScoreSpecBuilder {
            spec: ScoreSpec::default(),
        }
    }

    /// The step aggregation actually used: the method's forced one, else `step_agg`.
    pub fn effective_step_agg(&self) -> StepAgg {
        self.method.forced_step_agg().unwrap_or(self.step_agg)
    }

    /// The PA mode actually used (`diff-of-agg` for every method but PA, where it is moot).
    pub fn effective_pa_mode(&self) -> PaMode {
        if self.method.uses_pa_mode() {
            self.pa_mode
        } else {
            PaMode::DiffOfAgg
        }
    }

    /// The spec with forced / moot fields replaced by what scoring uses, so that two specs
    /// that score identically compare equal. For a judge cell the token aggregation is moot
    /// (and the step aggregation too at the trajectory level); other methods carry no judge.
    pub fn normalized(&self) -> ScoreSpec {
        let judge = if self.method == Method::Judge {
            self.judge
        } else {
            None
        };
        let token_agg = if self.method.uses_token_agg() {
            self.token_agg
        } else {
            TokenAgg::Mean
        };
        let step_agg = match judge {
            Some(JudgeRef {
                level: JudgeLevel::Trajectory,
                ..
            }) => StepAgg::Mean,
            _ => self.effective_step_agg(),
        };
        ScoreSpec {
            token_agg,
            step_agg,
            pa_mode: self.effective_pa_mode(),
            judge,
            ..*self
        }
    }

    /// The group this cell's report row belongs to.
    pub(crate) fn group(&self) -> MethodGroup {
        MethodGroup {
            method: self.method,
            judge: self
                .judge
                .filter(|_| self.method == Method::Judge)
                .map(|j| j.name),
        }
    }

    /// The spec validated and normalized as [`ScoreSpecBuilder::build`] does it: for specs
    /// that arrive whole (deserialized, or from a configuration) rather than field by field.
    pub fn validated(&self) -> Result<ScoreSpec, ScoreError> {
        ScoreSpecBuilder { spec: *self }.build()
    }

    /// A short, unique name for the cell: `method/token/step`, plus `/pa-mode` for PA,
    /// e.g. `pa/mean/min/diff-of-agg` or `deepconf_tail/mean/last`; a judge's cells are
    /// `judge:NAME` (trajectory value) and `judge:NAME/STEP-AGG` (step values). β is not part
    /// of it.
    pub fn label(&self) -> String {
        if self.method == Method::Judge {
            return match self.judge {
                None => "judge:?".to_string(),
                Some(JudgeRef {
                    name,
                    level: JudgeLevel::Trajectory,
                }) => format!("judge:{name}"),
                Some(JudgeRef {
                    name,
                    level: JudgeLevel::Steps,
                }) => format!("judge:{name}/{}", self.effective_step_agg()),
            };
        }
        let base = format!(
            "{}/{}/{}",
            self.method,
            self.token_agg,
            self.effective_step_agg()
        );
        if self.method.uses_pa_mode() {
            format!("{base}/{}", self.pa_mode)
        } else {
            base
        }
    }
}

/// Builder for [`ScoreSpec`]; each setter names its default.
#[derive(Debug, Clone)]
pub struct ScoreSpecBuilder {
    spec: ScoreSpec,
}

impl ScoreSpecBuilder {
    /// Scoring method (default `pa`).
    pub fn method(mut self, method: Method) -> Self {
        self.spec.method = method;
        self
    }

    /// Token aggregation (default `mean`).
    pub fn token_agg(mut self, agg: TokenAgg) -> Self {
        self.spec.token_agg = agg;
        self
    }

    /// Step aggregation (default `mean`; overridden by methods that force one).
    pub fn step_agg(mut self, agg: StepAgg) -> Self {
        self.spec.step_agg = agg;
        self
    }

    /// PA mode (default `diff-of-agg`).
    pub fn pa_mode(mut self, mode: PaMode) -> Self {
        self.spec.pa_mode = mode;
        self
    }

    /// β (default 1.0); must be finite, positive and at most [`MAX_BETA`], since a negative β
    /// would flip every ranking, zero would make every score 0, and a huge β overflows the
    /// scores to ±∞ (β = 1e308 turned every PA score into −∞ and AUROC into a silent 0.5).
    pub fn beta(mut self, beta: f64) -> Self {
        self.spec.beta = beta;
        self
    }

    /// The judge a [`Method::Judge`] spec reads (default none; required by that method).
    pub fn judge(mut self, judge: Option<JudgeRef>) -> Self {
        self.spec.judge = judge;
        self
    }

    /// Validate and return the normalized spec.
    pub fn build(self) -> Result<ScoreSpec, ScoreError> {
        let beta = self.spec.beta;
        if !(beta.is_finite() && beta > 0.0) {
            return Err(ScoreError::InvalidSpec(format!(
                "beta must be finite and > 0, got {beta}"
            )));
        }
        if beta > MAX_BETA {
            return Err(ScoreError::InvalidSpec(format!(
                "beta {beta:e} is above {MAX_BETA:e}: β·log-ratio summed over a trajectory could \
                 overflow to an infinite score (β only rescales PA; rankings do not change)"
            )));
        }
        if self.spec.method == Method::Judge && self.spec.judge.is_none() {
            return Err(ScoreError::InvalidSpec(
                "method `judge` needs the judge's name (e.g. --judge thinkprm)".into(),
            ));
        }
        Ok(self.spec.normalized())
    }
}

/// The largest β a [`ScoreSpec`] accepts. Log-probs are f32 (|x| < 3.4·10³⁸) and a real
/// log-ratio stays far below 10⁴ per token; with β ≤ 10⁶ a step or trajectory score of any
/// realistic length stays finite in f64 with room to spare, while anything larger is a typo
/// (β is an inverse KL coefficient, 0.001–10 in practice).
pub const MAX_BETA: f64 = 1e6;

/// The distinct methods (judges apart) of a sequence of grid cells, in first-appearance
/// order, each with the indices of its cells: how every per-method report (UQ, best-of-N,
/// FA, CV) groups a grid.
pub(crate) fn cells_by_method(
    methods: impl IntoIterator<Item = MethodGroup>,
) -> Vec<(MethodGroup, Vec<usize>)> {
    let mut groups: Vec<(MethodGroup, Vec<usize>)> = Vec::new();
    for (i, m) in methods.into_iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == m) {
            Some((_, idx)) => idx.push(i),
            None => groups.push((m, vec![i])),
        }
    }
    groups
}

/// Every cell for `methods`: all token aggregations × all step aggregations (only the forced
/// one for methods that force it) × both PA modes (PA only), with β = 1.
///
/// Both PA modes are kept even for mean, sum and last, where they are mathematically
/// identical (`tests/properties.rs` checks this), so the grid is rectangular and a reader
/// can see the equality. Repeated methods are listed once. [`Method::Judge`] contributes no
/// cell here: its cells depend on which judges the records carry ([`judge_grid`]).
pub fn grid(methods: &[Method]) -> Vec<ScoreSpec> {
    let mut seen: Vec<Method> = Vec::new();
    let mut out = Vec::new();
    for &method in methods {
        if seen.contains(&method) || method == Method::Judge {
            continue;
        }
        seen.push(method);
        let step_aggs: Vec<StepAgg> = match method.forced_step_agg() {
            Some(forced) => vec![forced],
            None => StepAgg::ALL.to_vec(),
        };
        let modes: &[PaMode] = if method.uses_pa_mode() {
            PaMode::ALL
        } else {
            &[PaMode::DiffOfAgg]
        };
        for &token_agg in TokenAgg::ALL {
            for &step_agg in &step_aggs {
                for &pa_mode in modes {
                    out.push(ScoreSpec {
                        method,
                        token_agg,
                        step_agg,
                        pa_mode,
                        beta: 1.0,
                        judge: None,
                    });
                }
            }
        }
    }
    out
}

/// The cells of one judge: its trajectory value when `has_trajectory`, and every step
/// aggregation of its step values when `has_steps` (β = 1).
pub fn judge_grid(name: JudgeName, has_trajectory: bool, has_steps: bool) -> Vec<ScoreSpec> {
    let cell = |level, step_agg| {
        ScoreSpec {
            method: Method::Judge,
            step_agg,
            judge: Some(JudgeRef { name, level }),
            ..ScoreSpec::default()
        }
        .normalized()
    };
    let mut out = Vec::new();
    if has_trajectory {
        out.push(cell(JudgeLevel::Trajectory, StepAgg::Mean));
    }
    if has_steps {
        out.extend(StepAgg::ALL.iter().map(|&a| cell(JudgeLevel::Steps, a)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_label() {
        assert_eq!(ScoreSpec::default().label(), "pa/mean/mean/diff_of_agg");
    }

    #[test]
    fn forced_step_agg_wins_in_label_and_normalization() {
        let s = ScoreSpec::builder()
            .method(Method::DeepconfTail)
            .step_agg(StepAgg::Mean)
            .pa_mode(PaMode::AggOfDiff)
            .build()
            .unwrap();
        assert_eq!(s.step_agg, StepAgg::Last);
        assert_eq!(s.pa_mode, PaMode::DiffOfAgg);
        assert_eq!(s.label(), "deepconf_tail/mean/last");
    }

    #[test]
    fn builder_rejects_bad_beta() {
        for beta in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e308, MAX_BETA * 1.5] {
            let e = ScoreSpec::builder().beta(beta).build().unwrap_err();
            assert!(e.to_string().contains("beta"), "{e}");
        }
    }

    #[test]
    fn grid_sizes() {
        // pa: 5 token x 6 step x 2 modes = 60
        assert_eq!(grid(&[Method::Pa]).len(), 60);
        // deepconf: 5 x 6 = 30; deepconf_tail: 5 x 1 = 5
        assert_eq!(grid(&[Method::Deepconf]).len(), 30);
        assert_eq!(grid(&[Method::DeepconfTail]).len(), 5);
        // all 11 log-prob methods: pa 60 + 6 free methods x 30 + 4 forced x 5 = 260 (judge
        // cells come from judge_grid, per judge in the records)
        assert_eq!(grid(Method::ALL).len(), 260);
        // repeated methods are listed once
        assert_eq!(grid(&[Method::Pa, Method::Pa]).len(), 60);
    }

    #[test]
    fn judge_specs() {
        let name = JudgeName::new("prm").unwrap();
        let cells = judge_grid(name, true, true);
        assert_eq!(cells.len(), 7);
        let labels: Vec<String> = cells.iter().map(|c| c.label()).collect();
        assert_eq!(labels[0], "judge:prm");
        assert_eq!(labels[3], "judge:prm/last");
        assert!(cells.iter().all(|c| c.token_agg == TokenAgg::Mean));
        assert_eq!(judge_grid(name, false, true).len(), 6);
        assert_eq!(judge_grid(name, true, false).len(), 1);
        // The token aggregation is moot for a judge; the judge is moot for other methods.
        let a = ScoreSpec::builder()
            .method(Method::Judge)
            .token_agg(TokenAgg::Max)
            .judge(Some(JudgeRef {
                name,
                level: JudgeLevel::Trajectory,
            }))
            .step_agg(StepAgg::Min)
            .build()
            .unwrap();
        assert_eq!(a, cells[0]);
        let p = ScoreSpec::builder()
            .judge(Some(JudgeRef {
                name,
                level: JudgeLevel::Steps,
            }))
            .build()
            .unwrap();
        assert_eq!(p, ScoreSpec::default());
        let e = ScoreSpec::builder()
            .method(Method::Judge)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("judge's name"), "{e}");
        // Serialized, a judge cell names its judge; other specs are as before.
        let json = serde_json::to_string(&cells[1]).unwrap();
        assert!(
            json.contains(r#""judge":{"name":"prm","level":"steps"}"#),
            "{json}"
        );
        let back: ScoreSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cells[1]);
    }

    #[test]
    fn grid_labels_are_unique() {
        let labels: std::collections::HashSet<String> =
            grid(Method::ALL).iter().map(|s| s.label()).collect();
        assert_eq!(labels.len(), 260);
    }

    #[test]
    fn method_names_parse_with_either_separator() {
        assert_eq!(
            "policy-logprob".parse::<Method>().unwrap(),
            Method::PolicyLogprob
        );
        assert_eq!(
            "deepconf_bottom10_refimpl".parse::<Method>().unwrap(),
            Method::DeepconfBottom10Refimpl
        );
        assert_eq!("diff_of_agg".parse::<PaMode>().unwrap(), PaMode::DiffOfAgg);
        let e = "nope".parse::<Method>().unwrap_err().to_string();
        assert!(e.contains("self_certainty"), "{e}");
    }

    #[cfg(feature = "clap")]
    #[test]
    fn clap_names_match_display() {
        use clap::ValueEnum;
        fn check<T: ValueEnum + std::fmt::Display>(all: &[T]) {
            for v in all {
                let pv = v.to_possible_value().unwrap();
                assert_eq!(pv.get_name(), v.to_string());
                assert!(T::from_str(&v.to_string(), false).is_ok());
            }
        }
        check(Method::ALL);
        check(PaMode::ALL);
        check(TokenAgg::ALL);
        check(StepAgg::ALL);
    }

    #[test]
    fn serde_is_snake_case() {
        let json = serde_json::to_string(&ScoreSpec::default()).unwrap();
        assert_eq!(
            json,
            r#"{"method":"pa","token_agg":"mean","step_agg":"mean","pa_mode":"diff_of_agg","beta":1.0}"#
        );
        let back: ScoreSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ScoreSpec::default());
    }
}

//! What a user asks an evaluation for, in the words of `padv eval`'s flags, checked and
//! turned into an [`EvalConfig`] in one place for every front end (the CLI, the Python
//! package). Keeping the checks here means a bad combination (a method with a grid, a judge
//! without a name, a grid with one fold) is refused with the same reason wherever it is made.

use crate::judge::JudgeName;
use crate::score::{JudgeLevel, JudgeRef, Method, PaMode, ScoreSpec, StepAgg, TokenAgg};

use super::EvalConfig;
use crate::eval::EvalError;

/// An evaluation request: [`EvalRequest::config`] checks it and builds the configuration.
///
/// ```
/// use padv_core::eval::EvalRequest;
/// let cfg = EvalRequest { grid: true, ..EvalRequest::default() }.config(None).unwrap();
/// assert!(cfg.grid && cfg.folds == 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    /// One method (default PA); refused together with `grid`.
    pub method: Option<Method>,
    /// Token aggregation within a step.
    pub token_agg: TokenAgg,
    /// Step aggregation within a trajectory.
    pub step_agg: StepAgg,
    /// How PA combines the two models.
    pub pa_mode: PaMode,
    /// β (> 0).
    pub beta: f64,
    /// With `method = judge`: the judge's name in the records.
    pub judge: Option<String>,
    /// With `method = judge`: trajectory or step values (default: trajectory when the records
    /// carry trajectory values, else steps).
    pub judge_level: Option<JudgeLevel>,
    /// Evaluate the grid of methods × aggregations.
    pub grid: bool,
    /// Methods of the grid (empty: all the records support); only with `grid`.
    pub methods: Vec<Method>,
    /// Bootstrap resamples (0: no intervals).
    pub bootstrap: usize,
    /// Cross-validation folds.
    pub folds: usize,
    /// Seed of the bootstrap and the folds.
    pub seed: u64,
}

impl Default for EvalRequest {
    /// `padv eval`'s defaults: PA, mean/mean, diff_of_agg, β = 1, no grid, 1000 resamples,
    /// 5 folds, seed 0.
    fn default() -> Self {
        EvalRequest {
            method: None,
            token_agg: TokenAgg::Mean,
            step_agg: StepAgg::Mean,
            pa_mode: PaMode::DiffOfAgg,
            beta: 1.0,
            judge: None,
            judge_level: None,
            grid: false,
            methods: Vec::new(),
            bootstrap: 1000,
            folds: 5,
            seed: 0,
        }
    }
}

impl EvalRequest {
    /// Checks the request and builds its configuration. A missing judge level resolves to
    /// the judge's trajectory value when `has_trajectory_values(name)` says the records carry
    /// one, else to its step values; without that knowledge (`None`) to trajectory.
    pub fn config(
        &self,
        has_trajectory_values: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<EvalConfig, EvalError> {
        let invalid = |m: String| EvalError::InvalidConfig(m);
        if self.grid {
            if let Some(m) = self.method {
                return Err(invalid(format!(
                    "method {} picks one cell, but a grid evaluates every method: drop the \
                     method, or restrict the grid's methods to {}",
                    m.name(),
                    m.name()
                )));
            }
        }
        let method = self.method.unwrap_or(Method::Pa);
        let judge = match (&self.judge, method) {
            (Some(name), Method::Judge) => Some(JudgeRef {
                name: JudgeName::new(name).map_err(|e| invalid(e.to_string()))?,
                level: self.judge_level.unwrap_or_else(|| {
                    if has_trajectory_values.is_none_or(|has| has(name)) {
                        JudgeLevel::Trajectory
                    } else {
                        JudgeLevel::Steps
                    }
                }),
            }),
            (None, Method::Judge) => {
                return Err(invalid(
                    "method judge needs a judge name (the judge's name in the records)".into(),
                ))
            }
            (Some(_), _) => {
                return Err(invalid(
                    "a judge name applies to method judge (a grid includes every judge)".into(),
                ))
            }
            _ => None,
        };
        let spec = ScoreSpec::builder()
            .method(method)
            .token_agg(self.token_agg)
            .step_agg(self.step_agg)
            .pa_mode(self.pa_mode)
            .beta(self.beta)
            .judge(judge)
            .build()?;
        if self.grid && self.folds < 2 {
            return Err(invalid(format!(
                "folds {}: a grid needs at least 2 cross-validation folds",
                self.folds
            )));
        }
        if !self.grid && !self.methods.is_empty() {
            return Err(invalid(
                "methods chooses the methods of a grid: ask for the grid too".into(),
            ));
        }
        Ok(EvalConfig {
            spec,
            grid: self.grid,
            methods: self.methods.clone(),
            bootstrap: self.bootstrap,
            folds: self.folds,
            seed: self.seed,
            cell_intervals: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_combinations_are_refused_with_their_reason() {
        let r = EvalRequest {
            grid: true,
            method: Some(Method::PolicyLogprob),
            ..EvalRequest::default()
        };
        assert!(r.config(None).unwrap_err().to_string().contains("grid"));
        let r = EvalRequest {
            method: Some(Method::Judge),
            ..EvalRequest::default()
        };
        assert!(r
            .config(None)
            .unwrap_err()
            .to_string()
            .contains("judge name"));
        let r = EvalRequest {
            grid: true,
            folds: 1,
            ..EvalRequest::default()
        };
        assert!(r.config(None).unwrap_err().to_string().contains("folds 1"));
        let r = EvalRequest {
            methods: vec![Method::Pa],
            ..EvalRequest::default()
        };
        assert!(r.config(None).is_err());
        let r = EvalRequest {
            beta: f64::NAN,
            ..EvalRequest::default()
        };
        assert!(r.config(None).is_err());
    }

    #[test]
    fn the_judge_level_follows_the_records() {
        let mut rec = crate::record::LogprobRecord::default();
        rec.judges.insert(
            "j".into(),
            crate::judge::JudgeScores {
                trajectory: None,
                steps: Vec::new(),
            },
        );
        let r = EvalRequest {
            method: Some(Method::Judge),
            judge: Some("j".into()),
            ..EvalRequest::default()
        };
        let has = |name: &str| rec.judges.get(name).is_some_and(|j| j.trajectory.is_some());
        let level = |c: Result<EvalConfig, EvalError>| c.unwrap().spec.judge.unwrap().level;
        assert_eq!(level(r.config(Some(&has))), JudgeLevel::Steps);
        assert_eq!(level(r.config(None)), JudgeLevel::Trajectory);
    }
}

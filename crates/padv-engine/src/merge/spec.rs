//! What a merge computes: [`MergeMethod`], α, density, seed and DARE's rescaling
//! ([`MergeSpec`]), and the `METHOD:ALPHA[,ALPHA…]` form `padv score --reference-merge`
//! takes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::MergeError;

/// How the task vectors τ_i = θ_i − θ_ref are combined (paper-notes §11.4,
/// formats-and-formulas §7). In every method the result is θ_ref + α·Δ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMethod {
    /// Δ = mean_i τ_i: with one task vector π_α = (1 − α)·π_ref + α·π_θ.
    Linear,
    /// Δ = Σ_i τ_i (task arithmetic, λ = α). Equals `linear` with one task vector.
    TaskArithmetic,
    /// TIES: trim each τ_i to its ⌊d·n⌋ largest magnitudes per tensor, elect a sign per entry
    /// (sign of the sum), average the entries that agree with it (disjoint mean).
    Ties,
    /// DARE: keep each entry of τ_i with probability d (seeded), rescale, sum.
    DareLinear,
    /// DARE then TIES' sign election, summing the agreeing entries (no mean).
    DareTies,
    /// EMR-Merging: elected sign, per-entry maximal agreeing magnitude, the policy's mask and
    /// its tuning-free rescale λ.
    Emr,
}

impl MergeMethod {
    /// Every method.
    pub const ALL: [MergeMethod; 6] = [
        MergeMethod::Linear,
        MergeMethod::TaskArithmetic,
        MergeMethod::Ties,
        MergeMethod::DareLinear,
        MergeMethod::DareTies,
        MergeMethod::Emr,
    ];

    /// The name on the command line and in labels.
    pub fn name(self) -> &'static str {
        match self {
            MergeMethod::Linear => "linear",
            MergeMethod::TaskArithmetic => "task_arithmetic",
            MergeMethod::Ties => "ties",
            MergeMethod::DareLinear => "dare_linear",
            MergeMethod::DareTies => "dare_ties",
            MergeMethod::Emr => "emr",
        }
    }

    /// Whether the density d applies.
    pub fn uses_density(self) -> bool {
        matches!(
            self,
            MergeMethod::Ties | MergeMethod::DareLinear | MergeMethod::DareTies
        )
    }

    /// Whether the method draws random masks (seed and rescaling apply).
    pub fn is_dare(self) -> bool {
        matches!(self, MergeMethod::DareLinear | MergeMethod::DareTies)
    }
}

impl fmt::Display for MergeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MergeMethod {
    type Err = MergeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.replace('-', "_");
        MergeMethod::ALL
            .into_iter()
            .find(|m| m.name() == norm)
            .ok_or_else(|| {
                MergeError::Spec(format!(
                    "unknown merge method {s:?}; expected one of: linear, task_arithmetic, \
                     ties, dare_linear, dare_ties, emr"
                ))
            })
    }
}

/// How DARE rescales the kept entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DareRescale {
    /// τ̂ / d: the DARE paper, mergekit before v0.1 and the reference implementation.
    #[default]
    InvDensity,
    /// τ̂ · ‖τ‖₁ / ‖τ̂‖₁ per tensor (current mergekit's `RescaleNorm.l1`; skipped when either
    /// norm is below 1e-7).
    L1,
}

impl DareRescale {
    /// The name on the command line and in labels.
    pub fn name(self) -> &'static str {
        match self {
            DareRescale::InvDensity => "inv_density",
            DareRescale::L1 => "l1",
        }
    }
}

impl FromStr for DareRescale {
    type Err = MergeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.replace('-', "_").as_str() {
            "inv_density" => Ok(DareRescale::InvDensity),
            "l1" => Ok(DareRescale::L1),
            _ => Err(MergeError::Spec(format!(
                "unknown DARE rescaling {s:?}; expected inv_density or l1"
            ))),
        }
    }
}

/// The reference code's density for TIES and DARE (p_keep = 0.2).
pub const DEFAULT_DENSITY: f64 = 0.2;

/// One merge: method, α and the parameters the method uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MergeSpec {
    /// The method.
    pub method: MergeMethod,
    /// The step from the reference towards the task models: θ = θ_ref + α·Δ.
    pub alpha: f64,
    /// Fraction of each task vector kept (TIES, DARE); 1 for the other methods.
    pub density: f64,
    /// Seed of DARE's masks; 0 for the other methods.
    pub seed: u64,
    /// DARE's rescaling; `inv_density` for the other methods.
    pub rescale: DareRescale,
}

impl MergeSpec {
    /// A validated spec; parameters a method does not use are reset to their neutral values
    /// (so two specs that merge identically compare equal and share cache entries).
    pub fn new(
        method: MergeMethod,
        alpha: f64,
        density: Option<f64>,
        seed: u64,
        rescale: DareRescale,
    ) -> Result<MergeSpec, MergeError> {
        if !alpha.is_finite() {
            return Err(MergeError::Spec(format!(
                "alpha {alpha} is not a finite number"
            )));
        }
        let density = if method.uses_density() {
            let d = density.unwrap_or(DEFAULT_DENSITY);
            if !(d > 0.0 && d <= 1.0) {
                return Err(MergeError::Spec(format!("density {d} is outside (0, 1]")));
            }
            d
        } else {
            1.0
        };
        let (seed, rescale) = if method.is_dare() {
            (seed, rescale)
        } else {
            (0, DareRescale::InvDensity)
        };
        Ok(MergeSpec {
            method,
            alpha,
            density,
            seed,
            rescale,
        })
    }

    /// A short name usable as a folder name: `linear-a0.5`, `ties-a0.5-d0.2`,
    /// `dare_ties-a1-d0.2-s0` (`-l1` for L1 rescaling), `emr-a0.25`.
    pub fn label(&self) -> String {
        let mut s = format!("{}-a{}", self.method, self.alpha);
        if self.method.uses_density() {
            s.push_str(&format!("-d{}", self.density));
        }
        if self.method.is_dare() {
            s.push_str(&format!("-s{}", self.seed));
            if self.rescale == DareRescale::L1 {
                s.push_str("-l1");
            }
        }
        s
    }

    /// Parses `METHOD:ALPHA[,ALPHA…]` into one spec per α, with the given density, seed and
    /// rescaling for the methods that use them.
    ///
    /// ```
    /// use padv_engine::merge::{DareRescale, MergeSpec};
    /// let specs = MergeSpec::parse_sweep("ties:0,0.5", Some(0.3), 0, DareRescale::InvDensity)?;
    /// assert_eq!(specs.iter().map(|s| s.label()).collect::<Vec<_>>(),
    ///            ["ties-a0-d0.3", "ties-a0.5-d0.3"]);
    /// # Ok::<(), padv_engine::merge::MergeError>(())
    /// ```
    pub fn parse_sweep(
        text: &str,
        density: Option<f64>,
        seed: u64,
        rescale: DareRescale,
    ) -> Result<Vec<MergeSpec>, MergeError> {
        let bad = |why: &str| {
            MergeError::Spec(format!(
                "{text:?}: {why} (expected METHOD:ALPHA[,ALPHA...], e.g. linear:0,0.25,0.5)"
            ))
        };
        let (method, alphas) = text.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let method: MergeMethod = method.trim().parse()?;
        let mut out = Vec::new();
        for a in alphas.split(',') {
            let a = a.trim();
            let alpha: f64 = a
                .parse()
                .map_err(|_| bad(&format!("{a:?} is not a number")))?;
            out.push(MergeSpec::new(method, alpha, density, seed, rescale)?);
        }
        if out.is_empty() {
            return Err(bad("no alpha"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_normalise_and_validate() {
        let a = MergeSpec::new(MergeMethod::Linear, 0.5, Some(0.3), 7, DareRescale::L1).unwrap();
        assert_eq!(
            (a.density, a.seed, a.rescale),
            (1.0, 0, DareRescale::InvDensity)
        );
        assert_eq!(a.label(), "linear-a0.5");
        let d = MergeSpec::new(MergeMethod::DareTies, 1.0, None, 3, DareRescale::L1).unwrap();
        assert_eq!(d.label(), "dare_ties-a1-d0.2-s3-l1");
        assert!(MergeSpec::new(MergeMethod::Ties, 0.5, Some(0.0), 0, DareRescale::L1).is_err());
        assert!(MergeSpec::new(MergeMethod::Ties, 0.5, Some(1.5), 0, DareRescale::L1).is_err());
        assert!(MergeSpec::new(MergeMethod::Emr, f64::NAN, None, 0, DareRescale::L1).is_err());
        assert_eq!(
            "dare-ties".parse::<MergeMethod>().unwrap(),
            MergeMethod::DareTies
        );
        let e = MergeSpec::parse_sweep("linear", None, 0, DareRescale::InvDensity).unwrap_err();
        assert!(e.to_string().contains("METHOD:ALPHA"), "{e}");
        let e = MergeSpec::parse_sweep("linear:0,x", None, 0, DareRescale::InvDensity).unwrap_err();
        assert!(e.to_string().contains("\"x\""), "{e}");
        assert!(MergeSpec::parse_sweep("magic:0.5", None, 0, DareRescale::InvDensity).is_err());
    }
}

//! Flags that choose how the local engine runs (`--dtype`, `--device`), shared by `score` and
//! `bench engine`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use padv_core::LogprobBackend;
use padv_engine::checkpoint::resolve_model_path;
use padv_engine::logprobs::{ComputeDType, DeviceSpec, EngineOptions, LocalEngine};

/// Compute dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DTypeArg {
    /// 32-bit floats: the reference mode on CPU.
    F32,
    /// bfloat16 (on CPU: slower than f32 and ~5e-2 off in log-prob).
    Bf16,
    /// IEEE half.
    F16,
}

/// Engine flags.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Compute dtype (weights are converted at load).
    #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
    pub dtype: DTypeArg,
    /// Device: `cpu`, `cuda`, `cuda:N`, `metal` (cuda/metal need a build with that cargo feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Rows of the LM head computed at once (bounds the logits buffer to rows × vocabulary).
    #[arg(long, default_value_t = padv_engine::logprobs::DEFAULT_CHUNK_ROWS)]
    pub chunk_rows: usize,
}

impl EngineArgs {
    /// Engine options from the flags.
    pub fn options(&self) -> anyhow::Result<EngineOptions> {
        Ok(EngineOptions {
            dtype: match self.dtype {
                DTypeArg::F32 => ComputeDType::F32,
                DTypeArg::Bf16 => ComputeDType::Bf16,
                DTypeArg::F16 => ComputeDType::F16,
            },
            device: parse_device(&self.device)?,
            chunk_rows: self.chunk_rows.max(1),
            ..EngineOptions::default()
        })
    }
}

fn parse_device(s: &str) -> anyhow::Result<DeviceSpec> {
    let (name, ordinal) = match s.split_once(':') {
        Some((n, o)) => (
            n,
            o.parse::<usize>()
                .with_context(|| format!("--device {s}: {o:?} is not a device number"))?,
        ),
        None => (s, 0),
    };
    match name {
        "cpu" => Ok(DeviceSpec::Cpu),
        "cuda" => Ok(DeviceSpec::Cuda(ordinal)),
        "metal" => Ok(DeviceSpec::Metal(ordinal)),
        _ => anyhow::bail!("--device {s}: expected cpu, cuda[:N] or metal[:N]"),
    }
}

/// Resolve `spec` (a folder or `org/name` in the local Hugging Face cache) and load it.
pub fn load_engine(
    spec: &str,
    args: &EngineArgs,
) -> anyhow::Result<(PathBuf, Box<dyn LogprobBackend>)> {
    let dir = resolve_model_path(spec).with_context(|| format!("finding checkpoint {spec:?}"))?;
    let engine = LocalEngine::load(&dir, args.options()?)
        .with_context(|| format!("loading checkpoint {}", dir.display()))?;
    Ok((dir, Box::new(engine)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cpu").unwrap(), DeviceSpec::Cpu);
        assert_eq!(parse_device("cuda:1").unwrap(), DeviceSpec::Cuda(1));
        assert_eq!(parse_device("metal").unwrap(), DeviceSpec::Metal(0));
        assert!(parse_device("tpu").is_err());
        assert!(parse_device("cuda:x").is_err());
    }
}

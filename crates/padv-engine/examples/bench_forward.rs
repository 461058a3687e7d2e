//! Times `LocalEngine::score` on a Qwen2.5-0.5B-shaped model (hidden 896, 24 layers, 14/2
//! heads, MLP 4864, vocab 151936, tied embeddings) with random weights built in memory, or
//! on a checkpoint directory, at several sequence lengths with ~30% of positions as
//! targets (action spans), printing seconds and peak RSS.
//!
//! Run (release; T=8192 takes a minute or more on 2 cores):
//!   cargo run --release -p padv-engine --example bench_forward -- \
//!       [--model DIR] [--lengths 512,2048,8192] [--no-stats] [--dtype f32|bf16]
//!
//! Peak RSS is the kernel's VmHWM, reset before each length through /proc/self/clear_refs
//! where allowed (otherwise it is the peak since start, which the note says).

#[cfg(feature = "decoder")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    bench::main()
}

#[cfg(not(feature = "decoder"))]
fn main() {
    eprintln!("bench_forward needs the `decoder` feature (on by default)");
}

#[cfg(feature = "decoder")]
mod bench {
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use candle_core::{DType, Device, Shape, Tensor};
    use candle_nn::var_builder::SimpleBackend;
    use candle_nn::{Init, VarBuilder};
    use padv_core::{LogprobBackend, StatsRequest};
    use padv_engine::checkpoint::{resolve, RawConfig};
    use padv_engine::decoder::{DecoderModel, ModelOptions};
    use padv_engine::logprobs::{ComputeDType, EngineOptions, LocalEngine};

    /// Qwen2.5-0.5B's config.json (the fields the decoder reads).
    const QWEN25_05B: &str = r#"{
      "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
      "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
      "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
      "hidden_act": "silu", "tie_word_embeddings": true, "use_sliding_window": false,
      "sliding_window": 32768, "max_window_layers": 21
    }"#;

    /// Random weights on demand: uniform with standard deviation 1/sqrt(fan_in) for matrices,
    /// the hinted constant for norms and biases. Nothing is kept, so memory holds only the
    /// model's own copy.
    struct RandomWeights;

    impl SimpleBackend for RandomWeights {
        fn get(
            &self,
            s: Shape,
            _name: &str,
            h: Init,
            dtype: DType,
            dev: &Device,
        ) -> candle_core::Result<Tensor> {
            let t = match h {
                Init::Const(c) => (Tensor::ones(&s, DType::F32, dev)? * c)?,
                _ => {
                    let fan_in = *s.dims().last().unwrap_or(&1) as f64;
                    let a = (3.0 / fan_in).sqrt();
                    Tensor::rand(-a as f32, a as f32, &s, dev)?
                }
            };
            t.to_dtype(dtype)
        }

        fn get_unchecked(
            &self,
            name: &str,
            _dtype: DType,
            _dev: &Device,
        ) -> candle_core::Result<Tensor> {
            candle_core::bail!("random backend cannot guess the shape of {name}")
        }

        fn contains_tensor(&self, _name: &str) -> bool {
            true
        }
    }

    fn status_kb(field: &str) -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn gib(kb: Option<u64>) -> String {
        kb.map_or("?".into(), |k| {
            format!("{:.2} GiB", k as f64 / 1024.0 / 1024.0)
        })
    }

    /// User + system CPU seconds of this process so far (clock ticks of 1/100 s).
    fn cpu_seconds() -> Option<f64> {
        let s = std::fs::read_to_string("/proc/self/stat").ok()?;
        let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    /// Resets VmHWM to the current RSS (Linux >= 4.0); false where not permitted.
    fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    /// Token ids and targets: spans of 70 context tokens then 30 action tokens, repeated.
    fn workload(t: usize, vocab: u32) -> (Vec<u32>, Vec<usize>) {
        let mut x: u64 = 0x2545F4914F6CDD1D;
        let ids = (0..t)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % vocab as u64) as u32
            })
            .collect();
        let targets = (1..t).filter(|p| p % 100 >= 70).collect();
        (ids, targets)
    }

    pub fn main() -> anyhow_like::Result<()> {
        let mut model_dir: Option<PathBuf> = None;
        let mut lengths = vec![512usize, 2048, 8192];
        let mut dtype = ComputeDType::F32;
        let mut chunk = 256usize;
        let mut stats = StatsRequest {
            distribution_stats: true,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--model" => model_dir = Some(PathBuf::from(value()?)),
                "--lengths" => {
                    lengths = value()?
                        .split(',')
                        .map(|s| s.trim().parse::<usize>())
                        .collect::<Result<_, _>>()?
                }
                "--dtype" => {
                    dtype = match value()?.as_str() {
                        "f32" => ComputeDType::F32,
                        "bf16" => ComputeDType::Bf16,
                        o => return Err(format!("unknown dtype {o}").into()),
                    }
                }
                "--chunk" => chunk = value()?.parse()?,
                "--no-stats" => stats.distribution_stats = false,
                other => return Err(format!("unknown argument {other}").into()),
            }
        }

        let t0 = Instant::now();
        let engine = match &model_dir {
            Some(dir) => LocalEngine::load(
                dir,
                EngineOptions {
                    dtype,
                    chunk_rows: chunk,
                    ..EngineOptions::default()
                },
            )?,
            None => {
                let raw: RawConfig = serde_json::from_str(QWEN25_05B)?;
                let cfg = resolve(&raw, Path::new("<built-in Qwen2.5-0.5B config>"))?;
                let vb =
                    VarBuilder::from_backend(Box::new(RandomWeights), dtype.dtype(), Device::Cpu);
                let model = DecoderModel::new(&cfg, vb, ModelOptions::default())?;
                LocalEngine::from_model(model, "random".into(), chunk)
            }
        };
        println!(
            "model ready in {:.1} s; RSS {} (peak {}); threads {}",
            t0.elapsed().as_secs_f64(),
            gib(status_kb("VmRSS:")),
            gib(status_kb("VmHWM:")),
            rayon::current_num_threads()
        );
        let vocab = engine.vocab_size() as u32;
        for &t in &lengths {
            let (ids, targets) = workload(t, vocab);
            let resettable = reset_peak();
            let (start, cpu0) = (Instant::now(), cpu_seconds());
            let r = engine.score(&ids, &targets, stats)?;
            let secs = start.elapsed().as_secs_f64();
            let cpu = match (cpu0, cpu_seconds()) {
                (Some(a), Some(b)) => format!("{:.1}", b - a),
                _ => "?".into(),
            };
            let mean =
                r.logprob.iter().map(|&x| x as f64).sum::<f64>() / r.logprob.len().max(1) as f64;
            println!(
                "T={t:>6}  targets={:>5}  {secs:>8.2} s (cpu {cpu} s)  peak RSS {}{}  (mean logprob {mean:.3})",
                targets.len(),
                gib(status_kb("VmHWM:")),
                if resettable { "" } else { " (since start)" },
            );
        }
        Ok(())
    }

    /// A boxed error alias so the example needs no extra dependency.
    mod anyhow_like {
        pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
    }
}

//! Times opening a checkpoint, its content fingerprint (every weight byte hashed) and a full
//! `LocalEngine::load`, printing seconds and GB/s.
//!
//! Make a Qwen2.5-0.5B-shaped f32 checkpoint (1.84 GiB of pseudo-random weights; no Python
//! needed; `--seed N` gives other weights of the same shape, e.g. a second parent for
//! `padv merge`), then time it:
//!   cargo run --release -p padv-engine --example bench_load -- --make bench-out/q05 [--seed N]
//!   cargo run --release -p padv-engine --example bench_load -- --model bench-out/q05
//!
//! The files are normally in the page cache (just written, or just loaded), which is also the
//! situation of the fingerprint inside `LocalEngine::load`; a cold read adds disk time.

#[cfg(feature = "decoder")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    bench::main()
}

#[cfg(not(feature = "decoder"))]
fn main() {
    eprintln!("bench_load needs the `decoder` feature (on by default)");
}

#[cfg(feature = "decoder")]
mod bench {
    use std::io::Write;
    use std::path::Path;
    use std::time::Instant;

    use candle_core::{DType, Device};
    use padv_engine::checkpoint::{weight_files, Checkpoint};
    use padv_engine::logprobs::{EngineOptions, LocalEngine};

    const CONFIG: &str = r#"{
      "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936,
      "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
      "num_attention_heads": 14, "num_key_value_heads": 2, "max_position_embeddings": 32768,
      "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu",
      "tie_word_embeddings": true, "use_sliding_window": false, "sliding_window": 32768,
      "max_window_layers": 21, "torch_dtype": "float32"
    }"#;

    fn tensors() -> Vec<(String, Vec<usize>)> {
        let (v, h, i, kv) = (151_936, 896, 4864, 2 * 64);
        let mut t = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
        for l in 0..24 {
            let p = format!("model.layers.{l}");
            for (n, s) in [
                ("input_layernorm.weight", vec![h]),
                ("post_attention_layernorm.weight", vec![h]),
                ("self_attn.q_proj.weight", vec![h, h]),
                ("self_attn.q_proj.bias", vec![h]),
                ("self_attn.k_proj.weight", vec![kv, h]),
                ("self_attn.k_proj.bias", vec![kv]),
                ("self_attn.v_proj.weight", vec![kv, h]),
                ("self_attn.v_proj.bias", vec![kv]),
                ("self_attn.o_proj.weight", vec![h, h]),
                ("mlp.gate_proj.weight", vec![i, h]),
                ("mlp.up_proj.weight", vec![i, h]),
                ("mlp.down_proj.weight", vec![h, i]),
            ] {
                t.push((format!("{p}.{n}"), s));
            }
        }
        t.push(("model.norm.weight".to_string(), vec![h]));
        t
    }

    fn make(dir: &Path, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("config.json"), CONFIG)?;
        let list = tensors();
        let mut header = serde_json::Map::new();
        let mut off = 0usize;
        for (name, shape) in &list {
            let n: usize = shape.iter().product::<usize>() * 4;
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}),
            );
            off += n;
        }
        let h = serde_json::to_vec(&serde_json::Value::Object(header))?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("model.safetensors"))?);
        f.write_all(&(h.len() as u64).to_le_bytes())?;
        f.write_all(&h)?;
        // xorshift64 -> uniform in [-0.05, 0.05): finite, varied bytes.
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
        if state == 0 {
            state = 1;
        }
        let mut buf = Vec::with_capacity(1 << 20);
        for (_, shape) in &list {
            let n: usize = shape.iter().product();
            for _ in 0..n {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let x = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1;
                buf.extend_from_slice(&x.to_le_bytes());
                if buf.len() >= 1 << 20 {
                    f.write_all(&buf)?;
                    buf.clear();
                }
            }
        }
        f.write_all(&buf)?;
        f.flush()?;
        println!("wrote {} ({} bytes of weights)", dir.display(), off);
        Ok(())
    }

    fn time(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let bytes: u64 = weight_files(dir)?
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()))
            .sum::<std::io::Result<u64>>()?;
        let gb = bytes as f64 / 1e9;
        println!(
            "weights: {gb:.3} GB, rayon threads: {}",
            rayon::current_num_threads()
        );
        let t = Instant::now();
        let ck = Checkpoint::open(dir)?;
        println!(
            "Checkpoint::open (headers + tensor-set check): {:.3} s",
            t.elapsed().as_secs_f64()
        );
        for run in 1..=2 {
            let t = Instant::now();
            let fp = ck.fingerprint(DType::F32, &Device::Cpu)?;
            let s = t.elapsed().as_secs_f64();
            println!(
                "fingerprint run {run}: {s:.3} s = {:.2} GB/s ({fp})",
                gb / s
            );
        }
        let t = Instant::now();
        let _engine = LocalEngine::load(dir, EngineOptions::default())?;
        println!(
            "LocalEngine::load (open + read + build + fingerprint): {:.3} s",
            t.elapsed().as_secs_f64()
        );
        Ok(())
    }

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        let args: Vec<String> = std::env::args().collect();
        match args.get(1).map(String::as_str) {
            Some("--make") if args.len() == 3 => make(Path::new(&args[2]), 0),
            Some("--make") if args.len() == 5 && args[3] == "--seed" => {
                make(Path::new(&args[2]), args[4].parse()?)
            }
            Some("--model") if args.len() == 3 => time(Path::new(&args[2])),
            _ => Err("usage: bench_load --make DIR [--seed N] | --model DIR".into()),
        }
    }
}
